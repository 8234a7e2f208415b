//! The stored tasks seen through the planner's [`TaskSource`] lens.

use berth_plan::{GoalOverride, OverrideProgress, TaskRecord, TaskSource};
use berth_state::{Persister, StateStore};

/// Converts a stored goal override to the planner's terms (`NONE` means "returning from an
/// override", which the planner does not need to see).
pub(crate) fn plan_override(
    o: Option<berth_state::OverrideState>,
) -> Option<(GoalOverride, OverrideProgress)> {
    let (target, progress) = o?;
    let target = match target {
        berth_state::GoalOverride::Paused => GoalOverride::Paused,
        berth_state::GoalOverride::Decommissioned => GoalOverride::Decommissioned,
        berth_state::GoalOverride::None => return None,
    };
    let progress = match progress {
        berth_state::OverrideProgress::Pending => OverrideProgress::Pending,
        berth_state::OverrideProgress::InProgress => OverrideProgress::InProgress,
        berth_state::OverrideProgress::Complete => OverrideProgress::Complete,
    };
    Some((target, progress))
}

/// Whether the task's launch is not confirmed yet (see [`crate::core::UNCONFIRMED_LABEL`]).
fn unconfirmed<P: Persister>(store: &StateStore<P>, info: &berth_mesos::TaskInfo) -> bool {
    store.is_unconfirmed(&info.name) || info.labels.get(crate::core::UNCONFIRMED_LABEL).is_some()
}

/// Read-only view of a [`StateStore`]'s tasks for the planner.
pub(crate) struct StoreTasks<'a, P>(pub &'a StateStore<P>);

impl<'a, P: Persister> StoreTasks<'a, P> {
    /// A stored task as the planner sees it.
    fn record(
        &self,
        (info, status, goal_override): (
            &'a berth_mesos::TaskInfo,
            Option<&'a berth_mesos::TaskStatus>,
            Option<berth_state::OverrideState>,
        ),
    ) -> TaskRecord<'a> {
        TaskRecord {
            info,
            status,
            goal_override: plan_override(goal_override),
            unconfirmed: unconfirmed(self.0, info),
        }
    }
}

impl<P: Persister> TaskSource for StoreTasks<'_, P> {
    fn task(&self, name: &str) -> Option<TaskRecord<'_>> {
        self.0.task_record(name).map(|r| self.record(r))
    }

    fn for_each_troubled_task(&self, f: &mut dyn FnMut(TaskRecord<'_>)) {
        for r in self.0.troubled_task_records() {
            f(self.record(r));
        }
    }

    fn any_goal_override(&self) -> bool {
        self.0.has_goal_overrides()
    }

    fn for_each_task(&self, f: &mut dyn FnMut(TaskRecord<'_>)) {
        for r in self.0.task_records() {
            f(self.record(r));
        }
    }
}
