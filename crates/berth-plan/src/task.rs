//! What the planner knows about stored tasks.
//!
//! The scheduler owns the task table (TaskInfos, last statuses, goal overrides); the planner
//! reads it through [`TaskSource`] and never mutates it.

use std::collections::BTreeMap;

use berth_mesos::{TaskInfo, TaskState, TaskStatus, task_labels};
use berth_spec::Goal;
use serde::{Deserialize, Serialize};

/// An operator override of a task's goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GoalOverride {
    /// `pods pause`: the task runs a sleeping placeholder instead of its command.
    Paused,
    /// The task is being removed by the decommission plan.
    Decommissioned,
}

impl GoalOverride {
    /// The stored / displayed name (`PAUSED`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GoalOverride::Paused => "PAUSED",
            GoalOverride::Decommissioned => "DECOMMISSIONED",
        }
    }

    /// The name shown while the override is being applied (`PAUSING`).
    #[must_use]
    pub fn transitioning_name(self) -> &'static str {
        match self {
            GoalOverride::Paused => "PAUSING",
            GoalOverride::Decommissioned => "DECOMMISSIONING",
        }
    }
}

/// How far an override has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OverrideProgress {
    /// Requested, nothing done yet.
    Pending,
    /// The task is being relaunched with the override.
    InProgress,
    /// The task runs with the override.
    Complete,
}

impl OverrideProgress {
    /// The stored name (`IN_PROGRESS`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideProgress::Pending => "PENDING",
            OverrideProgress::InProgress => "IN_PROGRESS",
            OverrideProgress::Complete => "COMPLETE",
        }
    }
}

/// One stored task as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct TaskRecord<'a> {
    /// The stored TaskInfo.
    pub info: &'a TaskInfo,
    /// Its last status, if any was ever received.
    pub status: Option<&'a TaskStatus>,
    /// Its goal override, if any.
    pub goal_override: Option<(GoalOverride, OverrideProgress)>,
    /// Whether the launch that made its reservations is not confirmed by the cluster yet
    /// (then, without a status, they were never made).
    pub unconfirmed: bool,
}

/// The label an older berth put on unconfirmed TaskInfos (now a node of the task's metadata).
pub const LEGACY_UNCONFIRMED_LABEL: &str = "berth_unconfirmed";

impl TaskRecord<'_> {
    /// Full task name (`hello-0-server`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Pod type, from the `task_type` label.
    #[must_use]
    pub fn pod_type(&self) -> Option<&str> {
        self.info.labels.get(task_labels::TASK_TYPE)
    }

    /// Pod instance index, from the `index` label.
    #[must_use]
    pub fn index(&self) -> Option<u32> {
        self.info
            .labels
            .get(task_labels::INDEX)
            .and_then(|i| i.parse().ok())
    }

    /// Goal, from the `goal_state` label (RUNNING when absent).
    #[must_use]
    pub fn goal(&self) -> Goal {
        match self.info.labels.get(task_labels::GOAL_STATE) {
            Some("FINISH" | "FINISHED") => Goal::Finish,
            Some("ONCE") => Goal::Once,
            _ => Goal::Running,
        }
    }

    /// Configuration id the task was launched with.
    #[must_use]
    pub fn config_id(&self) -> Option<&str> {
        self.info.labels.get(task_labels::TARGET_CONFIGURATION)
    }

    /// Whether the task is marked permanently failed (to be replaced elsewhere).
    #[must_use]
    pub fn permanently_failed(&self) -> bool {
        self.info.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true")
    }

    /// Whether the task was ever launched (a footprint-only TaskInfo has an empty id).
    #[must_use]
    pub fn launched(&self) -> bool {
        !self.info.task_id.value.is_empty()
    }

    /// Last known state of a launched task: the stored status for its task id, or
    /// `TASK_STAGING` when the launch was stored and no status arrived for it yet. `None` for
    /// a footprint-only TaskInfo (never launched).
    #[must_use]
    pub fn state(&self) -> Option<TaskState> {
        if !self.launched() {
            return None;
        }
        Some(
            self.status
                .filter(|s| s.task_id == self.info.task_id)
                .map_or(TaskState::TaskStaging, |s| s.state),
        )
    }

    /// Whether the task needs no readiness check or its last status reports it ready.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.info.check.is_none() || self.status.is_some_and(TaskStatus::readiness_passed)
    }

    /// Whether the task is down: its last state is terminal, lost or unreachable.
    #[must_use]
    pub fn is_down(&self) -> bool {
        self.state().is_some_and(TaskState::is_failed_or_lost)
    }
}

/// Read access to the stored tasks.
pub trait TaskSource {
    /// The task of that full name.
    fn task(&self, name: &str) -> Option<TaskRecord<'_>>;
    /// Calls `f` for every stored task, in name order.
    fn for_each_task(&self, f: &mut dyn FnMut(TaskRecord<'_>));
    /// Calls `f`, in name order, for the tasks that may need recovery: at least every task
    /// whose current launch is down (terminal, lost or unreachable) and every task marked
    /// permanently failed. A source that keeps such tasks apart spares the walk over all of
    /// them; the default walks all.
    fn for_each_troubled_task(&self, f: &mut dyn FnMut(TaskRecord<'_>)) {
        self.for_each_task(f);
    }
    /// Whether any task may have a goal override; `false` spares the per-task lookups of
    /// display statuses (PAUSED, PAUSING).
    fn any_goal_override(&self) -> bool {
        true
    }
}

/// A stored task: what a [`TaskTable`] holds per name.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTask {
    /// The TaskInfo.
    pub info: TaskInfo,
    /// The last status.
    pub status: Option<TaskStatus>,
    /// The goal override.
    pub goal_override: Option<(GoalOverride, OverrideProgress)>,
}

/// A simple in-memory task table implementing [`TaskSource`].
#[derive(Debug, Clone, Default)]
pub struct TaskTable {
    /// Tasks by full name.
    pub tasks: BTreeMap<String, StoredTask>,
}

impl TaskTable {
    /// Stores (or replaces) a TaskInfo, keeping its status only if the task id is unchanged.
    pub fn put_info(&mut self, info: TaskInfo) {
        match self.tasks.get_mut(&info.name) {
            Some(t) => {
                if t.info.task_id != info.task_id {
                    t.status = None;
                }
                t.info = info;
            }
            None => {
                self.tasks.insert(
                    info.name.clone(),
                    StoredTask {
                        info,
                        status: None,
                        goal_override: None,
                    },
                );
            }
        }
    }

    /// Stores a status for the task of that name (ignored for unknown tasks).
    pub fn put_status(&mut self, name: &str, status: TaskStatus) {
        if let Some(t) = self.tasks.get_mut(name) {
            t.status = Some(status);
        }
    }
}

impl TaskSource for TaskTable {
    fn task(&self, name: &str) -> Option<TaskRecord<'_>> {
        self.tasks.get(name).map(|t| TaskRecord {
            info: &t.info,
            status: t.status.as_ref(),
            goal_override: t.goal_override,
            unconfirmed: t.info.labels.get(LEGACY_UNCONFIRMED_LABEL).is_some(),
        })
    }

    fn for_each_task(&self, f: &mut dyn FnMut(TaskRecord<'_>)) {
        for t in self.tasks.values() {
            f(TaskRecord {
                info: &t.info,
                status: t.status.as_ref(),
                goal_override: t.goal_override,
                unconfirmed: t.info.labels.get(LEGACY_UNCONFIRMED_LABEL).is_some(),
            });
        }
    }
}

/// The step progress a task status means, for a task with this goal.
///
/// STAGING/STARTING → STARTING; RUNNING → COMPLETE for a RUNNING goal once ready, else
/// STARTED; FINISHED → COMPLETE for FINISH/ONCE goals, PENDING (relaunch) for RUNNING;
/// FAILED/ERROR → DELAYED when the task is held back (back-off, or the shortest relaunch
/// interval), else PENDING; KILLED, KILLING, LOST, GONE,
/// DROPPED, UNREACHABLE, GONE_BY_OPERATOR → PENDING; UNKNOWN → no change (`None`).
#[must_use]
pub fn progress_of(
    state: TaskState,
    goal: Goal,
    ready: bool,
    delayed: bool,
) -> Option<crate::Status> {
    use crate::Status;
    Some(match state {
        TaskState::TaskStaging | TaskState::TaskStarting => Status::Starting,
        TaskState::TaskRunning => {
            if goal == Goal::Running && ready {
                Status::Complete
            } else {
                Status::Started
            }
        }
        TaskState::TaskFinished => {
            if goal == Goal::Running {
                Status::Pending
            } else {
                Status::Complete
            }
        }
        TaskState::TaskFailed | TaskState::TaskError => {
            if delayed {
                Status::Delayed
            } else {
                Status::Pending
            }
        }
        TaskState::TaskKilled
        | TaskState::TaskKilling
        | TaskState::TaskLost
        | TaskState::TaskGone
        | TaskState::TaskDropped
        | TaskState::TaskUnreachable
        | TaskState::TaskGoneByOperator => Status::Pending,
        TaskState::TaskUnknown => return None,
    })
}
