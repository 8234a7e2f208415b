//! The HTTP API of the berth scheduler: plans, pods, state, configurations, health, debug
//! views and the local cluster's agents.
//!
//! The API owns no state. Every handler checks its query parameters and body, turns the
//! call into a [`berth_scheduler::Request`], sends it to the scheduler loop through a
//! [`SchedulerHandle`] and turns the [`berth_scheduler::Reply`] into an HTTP response: JSON
//! pretty-printed, errors as plain text, the status code exactly the reply's (also the
//! non-standard ones of `/v1/health`, such as 318 or 320).
//!
//! ```text
//!  client ──HTTP──▶ router ──▶ check params/body ──400──▶ client
//!                      │              │
//!                      │              ▼ Request
//!                      │        SchedulerHandle ──channel──▶ scheduler loop (owns state)
//!                      │              ▲ Reply                      │
//!                      │              └────────────────────────────┘
//!                      │              ▼
//!                      │        Reply → status + JSON (pretty) / text / raw ──▶ client
//!                      └─ /v1/agents/… ──▶ AgentControl (blocking pool) ──▶ client
//! ```
//!
//! Paths follow the reference: every pod route is served as `/v1/pods/…` (as in the
//! operations guide) and as `/v1/pod/…` (as in the reference code). A request with an unknown
//! query parameter, a bad parameter value or a malformed body gets a `400` naming the
//! parameter and what is allowed; an unknown path gets a `404` naming it; a known path with
//! the wrong method gets a `405`. When the scheduler loop is gone, every scheduler route
//! answers `503`.

#![warn(missing_docs)]

mod agents;
pub mod auth;
pub mod exec;
mod metrics;
pub mod openapi;
mod params;
mod remote;
mod reply;
mod routes;
pub mod tasks;
mod tls;
mod update;

use std::future::Future;

pub use agents::{AgentControl, AgentError};
pub use auth::{Guard, Role, Token, TokenFileError, load_tokens, with_guard};
pub use metrics::with_metrics;
pub use routes::{router, with_bootstrap, with_log};
pub use tls::{TlsError, load_tls, serve_tls};
pub use update::{Renderer, UpdateSource, with_updates};

/// Serves `router` on `listener` until `shutdown` resolves; requests in flight are finished
/// first.
///
/// # Errors
/// The listener failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[doc(no_inline)]
pub use berth_scheduler::SchedulerHandle;
