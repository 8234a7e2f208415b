//! The berth scheduler: the one loop that owns a service's state.
//!
//! ```text
//!  svc.yml ─▶ ServiceSpec ─▶ config flow (§ diff, validators, target) ─▶ StateStore
//!                                                                          │
//!  Cluster ──events──▶ Core (PlanSet, placement, kills, reconciliation) ◀──┘
//!     ▲                  │  offer cycle: candidates ▸ evaluate ▸ write-ahead ▸ accept
//!     └──────calls───────┘  status: store ▸ plans ▸ acknowledge
//!  HTTP API ──Request──▶ Core ──Reply──▶ HTTP API
//! ```
//!
//! Guarantees:
//! - **Write-ahead**: TaskInfos (with their reservation ids) are committed before the launch
//!   is sent; a status update is committed before it is acknowledged. A crash at any instant
//!   leaves nothing running that the store does not know about, and the next start picks up
//!   from the store (reconciliation first, then the plans rebuilt from the stored tasks).
//! - **Group commit**: each offer cycle writes in one transaction.
//! - **One owner**: only the loop mutates state; the API sends requests through a channel.

#![warn(missing_docs)]

mod alike;
pub mod api;
pub mod applier;
pub mod config;
pub mod core;
mod cycle;
pub mod history;
mod hold;
pub mod metrics;
pub mod options;
mod orphans;
pub mod pods;
mod preview;
mod removed;
mod requests;
pub mod runner;
pub mod state_tree;
mod tasks;
pub mod uninstall;
mod update;
mod waiting;

pub use api::{Body, Reply, Request};
pub use applier::{Answer, Applier, ApplierStats, Decision};
pub use config::{
    ConfigOutcome, LAUNCH_FINGERPRINT, TARGET_OPTIONS, start_configuration, update_configuration,
};
pub use core::{Core, Counters, OfferLogEntry};
pub use options::SchedulerOptions;
pub use requests::StateRead;
pub use runner::{
    Clock, Envelope, Finished, REQUEST_DEADLINE, RunnerOptions, SchedulerHandle, now_ms, run,
    run_with, spawn,
};
pub use uninstall::Uninstall;

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// The state store failed; nothing was sent for the decision that needed the write.
    #[error("state store: {0}")]
    State(#[from] berth_state::StateError),
    /// The configuration cannot be used (fatal validation errors, or errors on first
    /// install).
    #[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    InvalidConfig(Vec<String>),
    /// The cluster no longer knows this framework (a stale id left behind by an incomplete
    /// uninstall).
    #[error(
        "the cluster says \"{message}\" for framework id {framework_id}: this service's stored \
         state belongs to a framework that was torn down. Run `berth janitor` (or `berth \
         uninstall`) to remove the old state, then start the service again"
    )]
    FrameworkRemoved {
        /// The stored framework id.
        framework_id: String,
        /// The cluster's message.
        message: String,
    },
    /// The cluster refused the subscription or closed the stream.
    #[error("cluster: {0}")]
    Cluster(String),
    /// A cluster backend error.
    #[error("cluster: {0}")]
    Backend(#[from] berth_cluster::ClusterError),
    /// A task name that the pod does not have.
    #[error("Task {0} not found")]
    UnknownTask(String),
    /// JSON encoding or decoding failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The state store refused every write for longer than the configured limit
    /// (`STORE_OUTAGE_LIMIT_SECS`).
    #[error(
        "the state store refused every write for {seconds} s, longer than the limit of \
         {limit_secs} s (STORE_OUTAGE_LIMIT_SECS); last error: {message}. Nothing was lost: the \
         calls held meanwhile were never sent, and the next start carries on from the store"
    )]
    StoreOutage {
        /// How long the store failed.
        seconds: u64,
        /// The limit.
        limit_secs: u64,
        /// The store's last error.
        message: String,
    },
}

impl SchedulerError {
    /// Whether the scheduler must stop on this error. Only a few errors end `berth run`:
    ///
    /// - the leader lock was lost (another scheduler may be running): [`berth_state::StateError::LockLost`];
    /// - the store refused every write for longer than the limit: [`SchedulerError::StoreOutage`];
    /// - the cluster no longer knows the framework, refused the subscription, sent an `ERROR`
    ///   event or closed its event stream: [`SchedulerError::FrameworkRemoved`],
    ///   [`SchedulerError::Cluster`];
    /// - the configuration cannot be used at all: [`SchedulerError::InvalidConfig`].
    ///
    /// Every other error fails the one request, event or tick that met it (an HTTP error
    /// reply and a log line) and the loop goes on.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            SchedulerError::State(e) => matches!(e, berth_state::StateError::LockLost { .. }),
            SchedulerError::StoreOutage { .. }
            | SchedulerError::FrameworkRemoved { .. }
            | SchedulerError::Cluster(_)
            | SchedulerError::InvalidConfig(_) => true,
            SchedulerError::Backend(e) => {
                matches!(e, berth_cluster::ClusterError::FrameworkRemoved(_))
            }
            SchedulerError::UnknownTask(_) | SchedulerError::Json(_) => false,
        }
    }

    /// Whether retrying the same write later may succeed (the store's backend is
    /// temporarily unavailable): the scheduler then holds its calls instead of stopping.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, SchedulerError::State(e) if e.is_retryable())
    }
}
