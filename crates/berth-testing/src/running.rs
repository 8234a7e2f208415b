//! The real scheduler loop running on its own thread over the sim cluster, as `berth run`
//! runs it, with a tokio runtime to talk to it from: for tests and benchmarks that go through
//! the [`SchedulerHandle`] (or the HTTP API in front of it) rather than tick by tick.
//!
//! ```text
//!  block_on(script) ──handle──▶ loop (own thread, berth_scheduler::spawn) ──calls──▶ SimCluster
//!  stop() ──────────stop──────▶ loop ends ──▶ its result
//! ```

use std::future::Future;

use berth_cluster::sim::SimCluster;
use berth_scheduler::{Core, Finished, RunnerOptions, SchedulerHandle};
use berth_state::Persister;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use crate::HarnessError;

/// A scheduler loop started with [`berth_scheduler::spawn`] (default [`RunnerOptions`]) over
/// a [`SimCluster`], and a multi-threaded runtime (2 workers) for the code that talks to it.
///
/// [`Self::stop`] ends the loop and returns its result; dropping a `RunningLoop` (e.g. when a
/// test panics) ends the loop too.
pub struct RunningLoop {
    /// Sends requests to the loop (clone it for concurrent callers).
    pub handle: SchedulerHandle,
    /// What the loop measures (serve it with `berth_api::with_metrics`).
    pub metrics: berth_scheduler::metrics::LoopMetrics,
    /// The cluster the loop runs against; clones share its state (offer rounds, task
    /// statuses, the calls it received).
    pub cluster: SimCluster,
    runtime: Runtime,
    stop: oneshot::Sender<()>,
    finished: oneshot::Receiver<Finished<SimCluster>>,
}

impl RunningLoop {
    /// Starts the loop of `core` on its own thread over `cluster`.
    ///
    /// # Errors
    /// When the thread or the runtime cannot be created.
    pub fn start<P>(core: Core<P>, cluster: SimCluster) -> std::io::Result<Self>
    where
        P: Persister + Clone + 'static,
    {
        let (handle, requests) = SchedulerHandle::channel();
        let (stop, stopped) = oneshot::channel();
        let metrics = berth_scheduler::metrics::LoopMetrics::default();
        let finished = berth_scheduler::spawn(
            core,
            cluster.clone(),
            requests,
            stopped,
            RunnerOptions {
                metrics: Some(metrics.clone()),
                ..RunnerOptions::default()
            },
        )?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Self {
            handle,
            metrics,
            cluster,
            runtime,
            stop,
            finished,
        })
    }

    /// Runs `future` to completion on the runtime (while the loop goes on on its thread).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Asks the loop to stop and waits until it has.
    ///
    /// # Errors
    /// The error the loop ended with ([`HarnessError::Scheduler`]), or
    /// [`HarnessError::LoopPanicked`] when its thread ended without a result.
    pub fn stop(self) -> Result<(), HarnessError> {
        let _ = self.stop.send(());
        let (_, result) = self
            .runtime
            .block_on(self.finished)
            .map_err(|_| HarnessError::LoopPanicked)?;
        Ok(result?)
    }
}
