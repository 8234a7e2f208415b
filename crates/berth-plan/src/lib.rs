//! Plans: what work the scheduler does next, and how far it has got.
//!
//! A service's work is a list of plans (`deploy`, `recovery`, `decommission`, and custom
//! plans such as `backup`), each a fixed three-level tree of phases and steps. This crate
//! keeps the trees immutable and tracks progress separately, so that operator commands
//! (force-complete, restart, interrupt, continue, start, stop) are plain data edits that can
//! be audited.
//!
//! ```text
//! ServiceSpec + stored tasks ──▶ PlanSet::new ──▶ plans + step progress
//!                                                   │
//!      candidates(tasks) ◀── strategies (serial, parallel, dependency, canary)
//!            │                 + coordinator (priority, dirty assets, back-off)
//!            ▼
//!      scheduler launches / kills ──▶ mark_launched / mark_prepared / on_task_status
//!                                                   │
//!      report_of() ──▶ PlanReport (shared tree + two statuses per step, cheap)
//!            ──▶ plan JSON (GET /v1/plans/{plan}, written off the loop)
//!            ──▶ view() ──▶ render_tree() (CLI)
//! ```
//!
//! Each step of the plans has a slot beside the trees where its progress and flags live: a
//! walk over every step reads them in order, without an id lookup per step.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: time (`now`, in ms) and ids
//! ([`IdGenerator`]) are inputs, so every plan behaviour can be replayed in tests.

#![warn(missing_docs)]

pub mod backoff;
pub mod commands;
pub mod decommission;
pub mod element;
pub mod generate;
pub mod ids;
pub mod recovery;
pub mod render;
pub mod set;
pub mod status;
pub mod strategy;
pub mod task;
pub mod uninstall;

pub use backoff::{Backoff, BackoffPolicy, Millis};
pub use commands::{CommandError, CommandOutcome, CommandTarget, PlanCommand};
pub use element::{ElementId, Phase, Plan, PodLaunch, RecoveryType, Step, Strategy, Work};
pub use ids::{IdGenerator, SequentialIds};
pub use render::{
    JsonCursor, PhaseView, PlanReport, PlanView, StepView, WaitReason, WaitSummary, render_tree,
};
pub use set::{
    Candidate, FAILURES_FOR_ERROR, HistoryEntry, OfferNeed, PlanContext, PlanSet, RECOVERY,
    StepTasks, TaskFailures, TaskProgress,
};
pub use status::Status;
pub use task::{GoalOverride, OverrideProgress, StoredTask, TaskRecord, TaskSource, TaskTable};
pub use uninstall::{UNINSTALL_PLAN, uninstall_plan};
