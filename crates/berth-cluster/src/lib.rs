//! The cluster boundary: how the scheduler talks to the machines that run its tasks.
//!
//! The vocabulary is the Mesos v1 scheduler API's: the scheduler subscribes, receives
//! [`Event`]s (offers, rescinds, status updates, failures, errors) and sends [`Call`]s
//! (accept with operations, decline, kill, reconcile, suppress, revive, acknowledge,
//! teardown). A backend implements [`Cluster`]:
//!
//! ```text
//!            subscribe(FrameworkInfo) ──▶ EventStream (Subscribed, Offers, Update, …)
//! scheduler ─────────────────────────────────────────────────────────────────▶ backend
//!            send(Call::Accept / Decline / Kill / Reconcile / Acknowledge / …)
//! ```
//!
//! Backends: `local` (agents on this machine running real processes under `berth executor`),
//! `mesos` (a Mesos master, over the v1 scheduler HTTP API) and `sim` (deterministic, in
//! memory, for tests and benchmarks).

pub mod local;
pub mod mesos;
pub mod protocol;
pub mod sim;

pub use protocol::*;
