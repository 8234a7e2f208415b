//! Pod operations: restart, replace, pause, resume.
//!
//! - **restart**: kill every task of the instance; the recovery plan relaunches them in
//!   place (same agent, reservations, volumes and dynamic ports; new task ids).
//! - **replace**: mark every task of the instance permanently failed, then kill; the recovery
//!   plan relaunches them with placement evaluated afresh on new reservations and volumes. The
//!   old reservations are released when their agent next offers them. Works when the agent is
//!   down (its tasks are already lost). *Destructive*: the old volumes' data is discarded.
//! - **pause**: the tasks are relaunched in place running an idle command (no health check, a
//!   readiness check that never passes) until **resume** relaunches their own command.
//!
//! Each writes its intent to the store first, then sends the kills.

use berth_cluster::Call;
use berth_mesos::{TaskInfo, task_labels};
use berth_offer::naming;
use berth_plan::Millis;
use berth_state::{GoalOverride, OverrideProgress, Persister};

use crate::SchedulerError;
use crate::core::Core;

/// Result of a pod operation: `(tasks affected, calls)`; `None` tasks = unknown pod.
pub type PodOpResult = Result<(Option<Vec<String>>, Vec<Call>), SchedulerError>;

impl<P: Persister> Core<P> {
    /// Stored TaskInfos of a pod instance (`hello-0`), sorted by task name.
    pub(crate) fn pod_tasks(&self, pod: &str) -> Vec<TaskInfo> {
        // Task names are `<pod>-<index>-<task>`: the instance's tasks are among those named
        // `<pod instance>-…` (a range of the sorted table); their labels tell which are.
        let prefix = format!("{pod}-");
        self.store
            .task_infos_with_prefix(&prefix)
            .filter(|i| is_instance(i, pod))
            .cloned()
            .collect()
    }

    /// Whether the pod instance exists: stored tasks, or an index below the spec's count.
    pub(crate) fn pod_exists(&self, pod: &str) -> bool {
        if !self.pod_tasks(pod).is_empty() {
            return true;
        }
        self.plans.spec().pod_specs.iter().any(|p| {
            pod.strip_prefix(&p.pod_type)
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|i| i.parse::<u32>().ok())
                .is_some_and(|i| i < p.count)
        })
    }

    fn kill_tasks(&mut self, infos: &[TaskInfo], now: Millis) -> Vec<Call> {
        let live: Vec<TaskInfo> = infos.iter().filter(|i| self.is_live(i)).cloned().collect();
        live.into_iter()
            .filter_map(|i| {
                self.kills.remove(&i.task_id.value);
                self.kill(&i.task_id.value, Some(i.agent_id.clone()), now)
            })
            .collect()
    }

    /// `pod restart`: kill every task of the instance; recovery relaunches them in place.
    pub fn restart_pod(&mut self, pod: &str, now: Millis) -> PodOpResult {
        let infos = self.pod_tasks(pod);
        if infos.is_empty() {
            return Ok((None, Vec::new()));
        }
        for i in &infos {
            self.plans.clear_backoff(&i.name);
        }
        tracing::info!("restarting pod {pod}");
        let calls = self.kill_tasks(&infos, now);
        let names = infos.iter().map(|i| i.name.clone()).collect();
        Ok((Some(names), calls))
    }

    /// `pod replace`: mark the instance's tasks permanently failed and kill them; recovery
    /// relaunches the pod elsewhere on fresh reservations.
    pub fn replace_pod(&mut self, pod: &str, now: Millis) -> PodOpResult {
        let infos = self.pod_tasks(pod);
        if infos.is_empty() {
            return Ok((None, Vec::new()));
        }
        let mut tx = self.store.transaction();
        for i in &infos {
            let mut marked = i.clone();
            marked.labels.set(task_labels::PERMANENTLY_FAILED, "true");
            tx.set_task_info(&marked);
            self.plans.clear_backoff(&i.name);
        }
        self.store.stage(tx)?;
        tracing::warn!("replacing pod {pod}: its volumes will be discarded");
        let calls = self.kill_tasks(&infos, now);
        let names = infos.iter().map(|i| i.name.clone()).collect();
        Ok((Some(names), calls))
    }

    /// `pod pause` (`resume = false`) or `pod resume` (`resume = true`) of some tasks (all
    /// when `tasks` is empty; names may be `server` or `hello-0-server`).
    ///
    /// # Errors
    /// [`SchedulerError::UnknownTask`] naming a task the pod does not have.
    pub fn pause_pod(
        &mut self,
        pod: &str,
        tasks: &[String],
        resume: bool,
        now: Millis,
    ) -> PodOpResult {
        let infos = self.pod_tasks(pod);
        if infos.is_empty() {
            return Ok((None, Vec::new()));
        }
        let mut chosen = Vec::new();
        if tasks.is_empty() {
            chosen = infos.clone();
        } else {
            for t in tasks {
                let full = format!("{pod}-{t}");
                match infos.iter().find(|i| i.name == *t || i.name == full) {
                    Some(i) => chosen.push(i.clone()),
                    None => return Err(SchedulerError::UnknownTask(t.clone())),
                }
            }
        }
        let mut tx = self.store.transaction();
        let mut changed = Vec::new();
        for i in &chosen {
            let current = self.store.goal_override(&i.name);
            let paused = matches!(current, Some((GoalOverride::Paused, _)));
            if resume && paused {
                tx.set_goal_override(
                    &i.name,
                    Some((GoalOverride::None, OverrideProgress::Pending)),
                );
                changed.push(i.clone());
            } else if !resume && !paused {
                tx.set_goal_override(
                    &i.name,
                    Some((GoalOverride::Paused, OverrideProgress::Pending)),
                );
                changed.push(i.clone());
            }
        }
        if !tx.is_empty() {
            self.store.stage(tx)?;
        }
        tracing::info!(
            "{} pod {pod}: {}",
            if resume { "resuming" } else { "pausing" },
            changed
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let calls = self.kill_tasks(&changed, now);
        let names = chosen.iter().map(|i| i.name.clone()).collect();
        Ok((Some(names), calls))
    }
}

/// Whether a stored task belongs to the pod instance `pod` (`hello-0`), by its labels.
fn is_instance(info: &TaskInfo, pod: &str) -> bool {
    let (Some(pod_type), Some(index)) = (
        info.labels.get(task_labels::TASK_TYPE),
        info.labels.get(task_labels::INDEX),
    ) else {
        return false;
    };
    pod.strip_prefix(pod_type)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|i| i.parse::<u32>().ok())
        .is_some_and(|i| index.parse::<u32>().ok() == Some(i))
}

/// `<pod>-<index>` of a stored task, from its labels.
pub(crate) fn instance_of(info: &TaskInfo) -> Option<String> {
    let pod = info.labels.get(task_labels::TASK_TYPE)?;
    let index: u32 = info.labels.get(task_labels::INDEX)?.parse().ok()?;
    Some(naming::pod_instance_name(pod, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(name: &str) -> TaskInfo {
        serde_json::from_value(serde_json::json!({
            "name": name, "task_id": {"value": ""}, "agent_id": {"value": ""}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn info(name: &str, pod_type: &str, index: &str) -> TaskInfo {
        let mut info = bare(name);
        info.labels.set(task_labels::TASK_TYPE, pod_type);
        info.labels.set(task_labels::INDEX, index);
        info
    }

    #[test]
    fn a_task_belongs_to_the_instance_its_labels_name() {
        assert!(is_instance(
            &info("hello-1-server", "hello", "1"),
            "hello-1"
        ));
        assert!(!is_instance(
            &info("hello-10-server", "hello", "10"),
            "hello-1"
        ));
        // A pod type whose name looks like another pod's instance.
        assert!(!is_instance(
            &info("hello-1-0-server", "hello-1", "0"),
            "hello-1"
        ));
        assert!(is_instance(
            &info("hello-1-0-server", "hello-1", "0"),
            "hello-1-0"
        ));
        assert!(!is_instance(&bare("hello-1-server"), "hello-1"));
    }
}
