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

pub mod api;
pub mod config;
pub mod core;
mod cycle;
pub mod options;
pub mod pods;
mod requests;
pub mod runner;
pub mod state_tree;
mod tasks;
pub mod uninstall;

pub use api::{Body, Reply, Request};
pub use config::{ConfigOutcome, update_configuration};
pub use core::{Core, Counters, OfferLogEntry};
pub use options::SchedulerOptions;
pub use runner::{Envelope, RunnerOptions, SchedulerHandle, now_ms, run, run_with};
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
}

impl SchedulerError {
    /// Whether retrying the same write later may succeed (the store's backend is
    /// temporarily unavailable): the scheduler then holds its calls instead of stopping.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, SchedulerError::State(e) if e.is_retryable())
    }
}
