//! The imperative shell: feeds cluster events, API requests and timer ticks into the
//! [`Core`] and sends the calls it returns.
//!
//! ```text
//!   cluster event stream ─┐
//!   API requests ─────────┼──▶ select! ──▶ Core (commit first) ──▶ cluster.send(calls)
//!   timer (tick, back-off)┘                        └──▶ reply to the API request
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_cluster::{Call, Cluster, ClusterError};
use berth_plan::Millis;
use berth_state::Persister;
use tokio::sync::{mpsc, oneshot};

use crate::SchedulerError;
use crate::api::{Reply, Request};
use crate::core::Core;

/// Milliseconds since the Unix epoch, from the system clock.
#[must_use]
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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

/// Runs the scheduler until `shutdown` resolves or a fatal error happens.
///
/// # Errors
/// Store failures, a cluster subscription error (e.g. `Framework has been removed`), or the
/// cluster closing the event stream.
pub async fn run<P: Persister>(
    mut core: Core<P>,
    cluster: &mut dyn Cluster,
    mut requests: mpsc::Receiver<Envelope>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let mut events = cluster.subscribe(core.framework_info())?;
    tokio::pin!(shutdown);
    loop {
        let now = now_ms();
        let wake = core.next_wakeup(now).map_or(TICK, |t| {
            Duration::from_millis(t.saturating_sub(now)).min(TICK)
        });
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else {
                    return Err(SchedulerError::Cluster("the cluster closed the event stream".to_owned()));
                };
                // Group commit: take every event already waiting, decide, flush once, then send.
                let mut calls = core.on_event(event, now_ms())?;
                for _ in 0..MAX_BATCH {
                    let Ok(event) = events.try_recv() else { break };
                    calls.extend(core.on_event(event, now_ms())?);
                }
                calls.extend(core.end_batch(now_ms())?);
                core.flush()?;
                send_all(cluster, calls)?;
            }
            envelope = requests.recv() => {
                let Some(envelope) = envelope else { continue };
                let (reply, calls) = core.request(envelope.request, now_ms())?;
                core.flush()?;
                send_all(cluster, calls)?;
                let _ = envelope.reply.send(reply);
            }
            () = tokio::time::sleep(wake) => {
                let calls = core.tick(now_ms())?;
                core.flush()?;
                send_all(cluster, calls)?;
            }
            () = &mut shutdown => return Ok(()),
        }
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
