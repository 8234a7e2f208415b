//! Offer evaluation for berth: does this offer fit that pod instance, and if so, which
//! operations claim it?
//!
//! The scheduler receives offers (an agent's unreserved resources plus what this service
//! reserved there earlier) and has pod instances to launch. This crate decides, as a pure
//! function, whether one offer fits one pod instance — and explains why not, stage by stage,
//! so an operator reading the scheduler log or the API sees every reason an offer was refused.
//! It owns the resource pool (scalars, ranges, reservations, volumes of one offer, in the
//! vocabulary of `berth-mesos`), the evaluation pipeline and its outcome tree, and the meaning
//! of placement rules.
//!
//! ```text
//!                    ┌──────────────────────────── evaluate() ─────────────────────────────┐
//!  Offer ──────────▶ │ ResourcePool (per offer: free scalars, ports, disks, reserved by id) │
//!  PodInstance-      │   │                                                                  │
//!  Requirement ────▶ │   ▼ stages, all of them even after a failure                         │
//!  ServiceContext    │ executor ▸ placement ▸ volumes ▸ executor resources ▸                │
//!  PodState ───────▶ │ per resource set: ports ▸ cpus/mem/gpus ▸ volumes ▸ launch           │
//!  PlacementIndex ─▶ │   │ (existing pods: matched by resource_id, grow / shrink / release) │
//!                    │   ▼                                                                  │
//!                    │ Outcome tree ──(all passed)──▶ ids drawn, operations, TaskInfos      │
//!                    └──────────────────────────────────────────────────────────────────────┘
//!         Evaluation { outcome, operations: DESTROY▸UNRESERVE▸RESERVE▸CREATE▸LAUNCH_GROUP,
//!                      task_infos (to store first), launched }  ──▶ render() for the log
//! ```
//!
//! Offers the scheduler did not use go through [`cleanup_operations`], which releases
//! reservations nobody expects any more (DESTROY before UNRESERVE).
//!
//! Nothing here does I/O, reads a clock or draws randomness: ids come from an injected
//! [`IdGenerator`], so evaluation is deterministic and replayable.
//!
//! # Where berth differs from the reference system (on purpose)
//! - Counting placement rules match the pod type exactly (`task_type` label), not by a
//!   `<type>-.*` task-name regex ([`placement`]).
//! - Operations are batched per type in apply order (DESTROY, UNRESERVE, RESERVE, CREATE,
//!   LAUNCH_GROUP) instead of one recommendation per resource.
//! - The tasks inside LAUNCH_GROUP leave `executor` unset (it is the group's); the stored
//!   TaskInfos carry it. [`Evaluation::launched`] is a view of the group's tasks.
//! - A running executor's reservations are not required in the offer (they are in use, so
//!   never offered); a relaunched executor's are, by `resource_id`.
//! - `UNLIKE` and `IS_NOT` on an attribute the offer lacks pass; every other constraint on a
//!   missing attribute, zone or region fails.
//! - Discovery VIP labels are `VIP_<n>` (n counts the task's VIP ports from 0) rather than
//!   `VIP_<uuid>`, so TaskInfos are deterministic.
//! - Health and readiness checks carry no environment of their own: the berth executor runs
//!   them in the task's environment.

#![warn(missing_docs)]

pub mod cleanup;
pub mod error;
pub mod evaluate;
pub mod ids;
pub mod naming;
pub mod outcome;
pub mod placement;
pub mod pool;
pub mod ranges;
pub mod remainder;
mod stages;

pub use cleanup::{cleanup_operations, expected_resource_ids};
pub use error::OfferError;
pub use evaluate::{
    Evaluation, ExecutorResources, PodInstanceRequirement, PodMode, PodState, RecoveryType,
    ServiceContext, evaluate, step_label,
};
pub use ids::{IdGenerator, SequentialIds, sequential_uuid};
pub use outcome::Outcome;
pub use placement::{PlacementIndex, RegionPin, TaskPlacement};
pub use pool::ResourcePool;
pub use remainder::remainder;
