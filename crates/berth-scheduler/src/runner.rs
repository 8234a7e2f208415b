//! The imperative shell: feeds cluster events, API requests and timer ticks to the
//! [`Applier`] (which asks the [`Core`] and stores and sends what it decided).
//!
//! ```text
//!   API requests ─────────┐  (biased: answered first; state tree reads on another thread)
//!   backlog of events ────┤  (handled in batches of at most BATCH_BUDGET)
//!   cluster event stream ─┼──▶ select! ──▶ Applier ──▶ store, then cluster.send(calls)
//!   timer (tick, back-off,│                    └──▶ reply to the API request
//!   store retry) ─────────┘
//! ```
//!
//! The loop owns the state; nothing else touches it. It never waits on anything but its
//! inputs: a request is answered between two batches, and a request the loop cannot answer
//! within [`REQUEST_DEADLINE`] gets a 503 from its [`SchedulerHandle`]. Run it on a thread of
//! its own ([`spawn`]) so that its synchronous store calls never hold an API worker.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_cluster::Cluster;
use berth_plan::Millis;
use berth_state::Persister;
use tokio::sync::{mpsc, oneshot};

use crate::SchedulerError;
use crate::api::{Reply, Request};
use crate::applier::Applier;
use crate::core::Core;

/// Milliseconds since the Unix epoch: the system clock read once, at the first call, then
/// advanced by the monotonic clock.
///
/// Back-offs, kill retries and timeouts are deadlines in these milliseconds; a step of the
/// system clock (NTP setting a fresh machine's time, an operator's `date -s`) would otherwise
/// stretch or cut every one of them. Stored times stay close to the wall clock: they drift
/// only by the clock's adjustments since this process started.
#[must_use]
pub fn now_ms() -> Millis {
    static START: OnceLock<(Instant, Millis)> = OnceLock::new();
    let (start, wall) = START.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        (Instant::now(), wall)
    });
    wall.saturating_add(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX))
}

/// Scheduler time for the loop: [`now_ms`] at its start, advanced by tokio's clock, so a
/// test that pauses tokio's clock drives the real loop in simulated time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: tokio::time::Instant,
    wall: Millis,
}

impl Clock {
    /// A clock reading [`now_ms`] now (inside a tokio runtime: its clock, paused or not).
    #[must_use]
    pub fn new() -> Self {
        Self {
            start: tokio::time::Instant::now(),
            wall: now_ms(),
        }
    }

    /// Milliseconds since the epoch, as the scheduler sees them.
    #[must_use]
    pub fn now(&self) -> Millis {
        self.wall
            .saturating_add(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    /// The tokio instant of a scheduler time.
    #[must_use]
    pub fn instant(&self, at: Millis) -> tokio::time::Instant {
        let now = self.now();
        tokio::time::Instant::now() + Duration::from_millis(at.saturating_sub(now))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A request with the channel its reply goes back on.
#[derive(Debug)]
pub struct Envelope {
    /// The request.
    pub request: Request,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Reply>,
}

/// How long a request may wait for the loop before its caller gets a 503.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// A cheap, cloneable handle the API uses to talk to the scheduler loop.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Envelope>,
    deadline: Duration,
}

impl SchedulerHandle {
    /// A handle and the receiving end the loop reads.
    #[must_use]
    pub fn channel() -> (Self, mpsc::Receiver<Envelope>) {
        let (tx, rx) = mpsc::channel(256);
        (
            Self {
                tx,
                deadline: REQUEST_DEADLINE,
            },
            rx,
        )
    }

    /// The same handle with another deadline for each request.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sends a request and waits for the reply: 503 when the scheduler loop is gone, or
    /// does not answer within the deadline (a change the loop had not started by then is
    /// not made: the loop skips requests whose caller stopped waiting).
    pub async fn request(&self, request: Request) -> Reply {
        let (reply, rx) = oneshot::channel();
        let ask = async {
            if self.tx.send(Envelope { request, reply }).await.is_err() {
                return Reply::text(503, "the scheduler is not running");
            }
            rx.await
                .unwrap_or_else(|_| Reply::text(503, "the scheduler stopped before answering"))
        };
        match tokio::time::timeout(self.deadline, ask).await {
            Ok(reply) => reply,
            Err(_) => Reply::text(
                503,
                format!(
                    "the scheduler did not answer within {} s; it is busy or stuck: see its log \
                     and try again",
                    self.deadline.as_secs_f64()
                ),
            ),
        }
    }
}

/// Most events taken from the stream at once.
const MAX_BATCH: usize = 4096;

/// Longest stretch of event handling before the loop answers waiting requests again (the
/// store commit of what was decided comes on top; see [`crate::applier::MAX_BATCH_WRITES`]).
pub const BATCH_BUDGET: Duration = Duration::from_millis(2);

/// How often the loop ticks when nothing happens.
pub const TICK: Duration = Duration::from_millis(500);

/// What [`run_with`] does beyond the defaults of [`run`].
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// Return as soon as an uninstall completed (`berth run --uninstall`, `berth janitor`)
    /// instead of serving the completed plan until shut down.
    pub exit_after_uninstall: bool,
    /// The clock (default: [`Clock::new`] at the start).
    pub clock: Option<Clock>,
    /// Where the loop's measures go (the API's metrics routes hold a clone).
    pub metrics: Option<crate::metrics::LoopMetrics>,
}

/// Runs the scheduler until `shutdown` resolves or a fatal error happens.
///
/// # Errors
/// Only fatal errors (see [`SchedulerError::is_fatal`]): the leader lock lost, the store
/// failing for longer than its limit, the cluster refusing the framework or closing the
/// event stream.
pub async fn run<P: Persister + Clone + 'static>(
    core: Core<P>,
    cluster: &mut dyn Cluster,
    requests: mpsc::Receiver<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedulerError> {
    run_with(core, cluster, requests, shutdown, RunnerOptions::default()).await
}

/// [`run`] with options.
///
/// # Errors
/// As [`run`].
pub async fn run_with<P: Persister + Clone + 'static>(
    core: Core<P>,
    cluster: &mut dyn Cluster,
    requests: mpsc::Receiver<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
    options: RunnerOptions,
) -> Result<(), SchedulerError> {
    let mut requests = Some(requests);
    let clock = options.clock.unwrap_or_default();
    let mut applier = Applier::new(core);
    if let Some(metrics) = options.metrics {
        applier.metrics = metrics;
    }
    let mut events = applier.subscribe(cluster, clock.now())?;
    // Replies to changes not durable yet (the store fails): sent once they are.
    let mut waiting: Vec<(oneshot::Sender<Reply>, Reply)> = Vec::new();
    // A fixed instant, not a fresh sleep per loop turn: requests and events arriving more
    // often than TICK must not postpone it.
    let mut tick_at = tokio::time::Instant::now() + TICK;
    tokio::pin!(shutdown);
    loop {
        if options.exit_after_uninstall
            && applier.core().uninstall_state() == Some(crate::Uninstall::Done)
        {
            return Ok(());
        }
        if let Some(retry_at) = applier.retry_at() {
            // The store cannot be written: no change, no call, no acknowledgement until it
            // can. Reads are still answered.
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                envelope = next_request(&mut requests) => {
                    answer(&mut applier, cluster, envelope, &clock, &mut waiting)?;
                }
                () = tokio::time::sleep_until(clock.instant(retry_at)) => {
                    if applier.retry(cluster, clock.now())? {
                        for (to, reply) in waiting.drain(..) {
                            let _ = to.send(reply);
                        }
                    }
                }
            }
            continue;
        }
        let now = clock.now();
        let wake = applier
            .core()
            .next_wakeup(now)
            .map_or(tick_at, |t| clock.instant(t).min(tick_at));
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            envelope = next_request(&mut requests) => {
                answer(&mut applier, cluster, envelope, &clock, &mut waiting)?;
            }
            () = std::future::ready(()), if applier.has_backlog() => {
                applier.run_backlog(cluster, clock.now(), Some(BATCH_BUDGET))?;
            }
            event = recv(&mut events) => {
                let Some(event) = event else {
                    return Err(SchedulerError::Cluster("the cluster closed the event stream".to_owned()));
                };
                // Group commit: take every event already waiting, decide, store once, send.
                applier.push_events([event]);
                if let Some(stream) = &mut events {
                    for _ in 0..MAX_BATCH {
                        let Ok(event) = stream.try_recv() else { break };
                        applier.push_events([event]);
                    }
                }
                applier.run_backlog(cluster, clock.now(), Some(BATCH_BUDGET))?;
            }
            () = tokio::time::sleep_until(wake) => {
                tick_at = tokio::time::Instant::now() + TICK;
                if events.is_some() {
                    applier.tick(cluster, clock.now())?;
                }
            }
        }
        if applier.deregister_if_due(cluster, clock.now())? {
            events = None;
        }
    }
}

/// Answers one request: state tree reads on a blocking thread, the rest through the applier.
fn answer<P: Persister + Clone + 'static>(
    applier: &mut Applier<P>,
    cluster: &mut dyn Cluster,
    envelope: Envelope,
    clock: &Clock,
    waiting: &mut Vec<(oneshot::Sender<Reply>, Reply)>,
) -> Result<(), SchedulerError> {
    if envelope.reply.is_closed() {
        // Its caller stopped waiting (the deadline passed): do not act on it any more.
        return Ok(());
    }
    if let Some(read) = applier.core().state_read(&envelope.request) {
        let persister = applier.core().store().persister().clone();
        let to = envelope.reply;
        tokio::task::spawn_blocking(move || {
            let _ = to.send(read.answer(&persister));
        });
        return Ok(());
    }
    let answer = applier.request(cluster, envelope.request, clock.now())?;
    if answer.durable {
        let _ = envelope.reply.send(answer.reply);
    } else {
        // Stored before acknowledged: the answer waits until the change is durable.
        waiting.push((envelope.reply, answer.reply));
    }
    Ok(())
}

/// The next request; never once every handle is gone.
async fn next_request(requests: &mut Option<mpsc::Receiver<Envelope>>) -> Envelope {
    if let Some(rx) = requests {
        if let Some(envelope) = rx.recv().await {
            return envelope;
        }
        *requests = None;
    }
    std::future::pending().await
}

/// The next event, or never when there is no stream any more.
async fn recv(events: &mut Option<berth_cluster::EventStream>) -> Option<berth_cluster::Event> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}

/// What a scheduler thread hands back when it ends: the cluster and how the loop ended.
pub type Finished<C> = (C, Result<(), SchedulerError>);

/// Runs the loop on a thread of its own (a single-threaded tokio runtime), so that its
/// synchronous store calls (ZooKeeper, fsync) never hold the threads that serve the API.
/// The loop stops when `shutdown` fires (or its sender is dropped); the receiver returned
/// gets the cluster back with the loop's result.
///
/// # Errors
/// The thread or its runtime cannot be started.
pub fn spawn<P, C>(
    core: Core<P>,
    mut cluster: C,
    requests: mpsc::Receiver<Envelope>,
    shutdown: oneshot::Receiver<()>,
    options: RunnerOptions,
) -> std::io::Result<oneshot::Receiver<Finished<C>>>
where
    P: Persister + Clone + 'static,
    C: Cluster + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name("berth-scheduler".to_owned())
        .spawn(move || {
            let result = runtime.block_on(run_with(
                core,
                &mut cluster,
                requests,
                async {
                    let _ = shutdown.await;
                },
                options,
            ));
            let _ = done.send((cluster, result));
        })?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_ms_follows_the_wall_clock_and_never_goes_back() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut last = now_ms();
        assert!(
            last.abs_diff(wall) < 5_000,
            "{last} vs the wall clock {wall}"
        );
        for _ in 0..1000 {
            let now = now_ms();
            assert!(now >= last, "{now} < {last}");
            last = now;
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(now_ms() >= last + 20);
    }
}
