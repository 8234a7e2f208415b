//! The imperative shell: feeds cluster events, API requests and timer ticks into the
//! [`Core`] and sends the calls it returns.
//!
//! ```text
//!   cluster event stream ─┐
//!   API requests ─────────┼──▶ select! ──▶ Core (commit first) ──▶ cluster.send(calls)
//!   timer (tick, back-off)┘                        └──▶ reply to the API request
//! ```

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_cluster::{Call, Cluster, ClusterError};
use berth_plan::Millis;
use berth_state::Persister;
use tokio::sync::{mpsc, oneshot};

use crate::SchedulerError;
use crate::api::{Reply, Request};
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

/// A request with the channel its reply goes back on.
#[derive(Debug)]
pub struct Envelope {
    /// The request.
    pub request: Request,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Reply>,
}

/// A cheap, cloneable handle the API uses to talk to the scheduler loop.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Envelope>,
}

impl SchedulerHandle {
    /// A handle and the receiving end the loop reads.
    #[must_use]
    pub fn channel() -> (Self, mpsc::Receiver<Envelope>) {
        let (tx, rx) = mpsc::channel(256);
        (Self { tx }, rx)
    }

    /// Sends a request and waits for the reply; 503 when the scheduler loop is gone.
    pub async fn request(&self, request: Request) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Envelope { request, reply }).await.is_err() {
            return Reply::text(503, "the scheduler is not running");
        }
        rx.await
            .unwrap_or_else(|_| Reply::text(503, "the scheduler stopped before answering"))
    }
}

/// Most events handled in one batch (one flush) before calls go out.
const MAX_BATCH: usize = 4096;

/// How often the loop ticks when nothing happens.
pub const TICK: Duration = Duration::from_millis(500);

/// How often a failed store write is retried.
pub const STORE_RETRY: Duration = Duration::from_secs(1);
/// How often a lasting store failure is logged again.
const FAULT_LOG_EVERY: Duration = Duration::from_secs(15);

/// What [`run_with`] does beyond the defaults of [`run`].
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// Return as soon as an uninstall completed (`berth run --uninstall`, `berth janitor`)
    /// instead of serving the completed plan until shut down.
    pub exit_after_uninstall: bool,
}

/// Runs the scheduler until `shutdown` resolves or a fatal error happens.
///
/// # Errors
/// Store failures that retrying cannot fix, a cluster subscription error (e.g. `Framework
/// has been removed`), or the cluster closing the event stream.
pub async fn run<P: Persister>(
    core: Core<P>,
    cluster: &mut dyn Cluster,
    requests: mpsc::Receiver<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedulerError> {
    run_with(core, cluster, requests, shutdown, RunnerOptions::default()).await
}

/// The loop's own state besides the core.
struct Shell {
    /// Calls decided by inputs whose writes are not durable yet (the store is failing).
    held: Vec<Call>,
    /// Replies to requests whose changes are not durable yet: sent once they are.
    replies: Vec<(oneshot::Sender<Reply>, Reply)>,
    /// Why the store fails, while it does.
    fault: Option<String>,
    /// When to retry the held writes next (requests in between do not postpone it).
    retry_at: tokio::time::Instant,
    /// When the store started failing, and when that was last logged.
    fault_since: tokio::time::Instant,
    fault_logged: tokio::time::Instant,
    /// The cluster's event stream; `None` once the framework was torn down.
    events: Option<berth_cluster::EventStream>,
    /// When the next periodic tick is due. A fixed instant, not a fresh sleep per loop turn:
    /// API requests and events arriving more often than [`TICK`] must not postpone it.
    tick_at: tokio::time::Instant,
}

/// [`run`] with options.
///
/// # Errors
/// As [`run`].
pub async fn run_with<P: Persister>(
    mut core: Core<P>,
    cluster: &mut dyn Cluster,
    mut requests: mpsc::Receiver<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
    options: RunnerOptions,
) -> Result<(), SchedulerError> {
    let mut shell = Shell {
        held: Vec::new(),
        replies: Vec::new(),
        fault: None,
        retry_at: tokio::time::Instant::now(),
        fault_since: tokio::time::Instant::now(),
        fault_logged: tokio::time::Instant::now(),
        events: None,
        tick_at: tokio::time::Instant::now() + TICK,
    };
    match cluster.subscribe(core.framework_info()) {
        Ok(events) => shell.events = Some(events),
        Err(ClusterError::FrameworkRemoved(m)) if core.uninstall_state().is_some() => {
            tracing::info!(
                "the framework is already gone ({m}); removing what is left of the state"
            );
            core.finish_uninstall(now_ms())?;
        }
        Err(ClusterError::FrameworkRemoved(message)) => {
            return Err(SchedulerError::FrameworkRemoved {
                framework_id: core
                    .store()
                    .framework_id()
                    .map(|id| id.value.clone())
                    .unwrap_or_default(),
                message,
            });
        }
        Err(e) => return Err(e.into()),
    }
    tokio::pin!(shutdown);
    loop {
        if core.uninstall_state() == Some(crate::Uninstall::Done) && options.exit_after_uninstall {
            return Ok(());
        }
        if shell.fault.is_some() {
            // The store cannot be written: no change, no call, no acknowledgement until it
            // can. Reads are still answered.
            tokio::select! {
                envelope = requests.recv() => {
                    let Some(envelope) = envelope else { continue };
                    let reply = if envelope.request.is_change() {
                        store_unavailable(shell.fault.as_deref().unwrap_or_default())
                    } else {
                        core.request(envelope.request, now_ms())?.0
                    };
                    let _ = envelope.reply.send(reply);
                }
                () = tokio::time::sleep_until(shell.retry_at) => {
                    shell.retry_at = tokio::time::Instant::now() + STORE_RETRY;
                    let held = std::mem::take(&mut shell.held);
                    commit_and_send(&mut core, cluster, &mut shell, held)?;
                    if shell.fault.is_none() {
                        tracing::info!("the state store is back: resuming");
                        for (to, reply) in shell.replies.drain(..) {
                            let _ = to.send(reply);
                        }
                    }
                }
                () = &mut shutdown => return Ok(()),
            }
            continue;
        }
        let now = now_ms();
        let wake = core.next_wakeup(now).map_or(shell.tick_at, |t| {
            let at = tokio::time::Instant::now() + Duration::from_millis(t.saturating_sub(now));
            at.min(shell.tick_at)
        });
        tokio::select! {
            event = recv(&mut shell.events) => {
                let Some(event) = event else {
                    return Err(SchedulerError::Cluster("the cluster closed the event stream".to_owned()));
                };
                // Group commit: take every event already waiting, decide, flush once, then send.
                let mut calls = on_event(&mut core, event)?;
                if let Some(events) = &mut shell.events {
                    for _ in 0..MAX_BATCH {
                        let Ok(event) = events.try_recv() else { break };
                        calls.extend(on_event(&mut core, event)?);
                    }
                }
                calls.extend(core.end_batch(now_ms())?);
                commit_and_send(&mut core, cluster, &mut shell, calls)?;
            }
            envelope = requests.recv() => {
                let Some(envelope) = envelope else { continue };
                if envelope.request.is_change()
                    && let Some(why) = core.store().persister().unavailable()
                {
                    // Known to fail: refuse before changing anything.
                    let _ = envelope.reply.send(store_unavailable(&why));
                    continue;
                }
                let (reply, mut calls) = core.request(envelope.request, now_ms())?;
                calls.extend(core.end_batch(now_ms())?);
                commit_and_send(&mut core, cluster, &mut shell, calls)?;
                if shell.fault.is_some() {
                    // Stored before acknowledged: the answer waits until the change is durable.
                    shell.replies.push((envelope.reply, reply));
                } else {
                    let _ = envelope.reply.send(reply);
                }
            }
            () = tokio::time::sleep_until(wake) => {
                shell.tick_at = tokio::time::Instant::now() + TICK;
                if shell.events.is_some() {
                    let calls = core.tick(now_ms())?;
                    commit_and_send(&mut core, cluster, &mut shell, calls)?;
                }
            }
            () = &mut shutdown => return Ok(()),
        }
        if shell.fault.is_none() && core.deregister_due(now_ms()) {
            tracing::info!(
                "every task is down and every reservation released: tearing the framework down"
            );
            send_all(cluster, vec![Call::Teardown])?;
            shell.events = None;
            core.finish_uninstall(now_ms())?;
        }
    }
}

/// The answer to a change requested while the state store cannot be written.
fn store_unavailable(why: &str) -> Reply {
    Reply::text(
        503,
        format!("the state store is unavailable ({why}); berth makes no changes until it is back"),
    )
}

/// The next event, or never when there is no stream any more.
async fn recv(events: &mut Option<berth_cluster::EventStream>) -> Option<berth_cluster::Event> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}

/// Feeds one event to the core.
fn on_event<P: Persister>(
    core: &mut Core<P>,
    event: berth_cluster::Event,
) -> Result<Vec<Call>, SchedulerError> {
    core.on_event(event, now_ms())
}

/// Makes the batch durable, then sends its calls. When the store fails in a way that may
/// pass (ZooKeeper down, disk full), the calls are held and the loop retries; other
/// failures end the loop.
fn commit_and_send<P: Persister>(
    core: &mut Core<P>,
    cluster: &mut dyn Cluster,
    shell: &mut Shell,
    calls: Vec<Call>,
) -> Result<(), SchedulerError> {
    shell.held.extend(calls);
    match core.flush() {
        Ok(()) => {
            if shell.fault.take().is_some() {
                core.set_store_fault(None);
            }
            send_all(cluster, std::mem::take(&mut shell.held))
        }
        Err(e) if e.is_retryable() => {
            let message = e.to_string();
            let now = tokio::time::Instant::now();
            if shell.fault.is_none() {
                shell.retry_at = now + STORE_RETRY;
                shell.fault_since = now;
                shell.fault_logged = now;
                tracing::error!(
                    "{message}; holding {} call(s) and making no change until the store is back",
                    shell.held.len()
                );
            } else if now.duration_since(shell.fault_logged) >= FAULT_LOG_EVERY {
                shell.fault_logged = now;
                tracing::warn!(
                    "the state store is still unavailable after {} s ({} call(s) held): {message}",
                    now.duration_since(shell.fault_since).as_secs(),
                    shell.held.len()
                );
            }
            core.set_store_fault(Some(message.clone()));
            shell.fault = Some(message);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Sends calls; a call the cluster refuses (e.g. an offer rescinded meanwhile) is logged.
///
/// # Errors
/// When the framework was removed: nothing more can be done.
pub fn send_all(cluster: &mut dyn Cluster, calls: Vec<Call>) -> Result<(), SchedulerError> {
    for call in calls {
        match cluster.send(call) {
            Ok(()) => {}
            Err(ClusterError::FrameworkRemoved(m)) => {
                return Err(SchedulerError::Cluster(format!(
                    "framework has been removed: {m}"
                )));
            }
            Err(e) => tracing::warn!("call refused by the cluster: {e}"),
        }
    }
    Ok(())
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
