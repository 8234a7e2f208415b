//! Which pods the recovery plan must relaunch, and how.
//!
//! ```text
//! stored tasks ──(down, or permanently failed; goal RUNNING; in some plan)──▶ failed tasks
//!        group by pod instance
//!        ├─ an essential task failed → relaunch every launched RUNNING task of the pod
//!        └─ only non-essential ones → relaunch just those (not the ones in back-off)
//!        type: all permanently failed → PERMANENT, none → TRANSIENT, mixed → not now
//! ```
//!
//! A recovery relaunches with the configuration the tasks last ran with; rolling out a new
//! configuration is the deploy plan's job.

use std::collections::{BTreeMap, HashSet};

use berth_spec::{Goal, ServiceSpec};

use crate::backoff::{Backoff, Millis};
use crate::element::{PodLaunch, RecoveryType};
use crate::task::{TaskRecord, TaskSource};

/// A pod instance that needs relaunching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryNeed {
    /// What to launch (with its recovery type and configuration).
    pub launch: PodLaunch,
    /// Whether some of its tasks are still in launch back-off.
    pub delayed: bool,
}

/// The recovery needs of the service.
///
/// `in_plans` holds the full names of tasks that some plan launches; tasks outside every
/// plan are never recovered.
#[must_use]
pub fn recovery_needs(
    spec: &ServiceSpec,
    tasks: &dyn TaskSource,
    in_plans: &HashSet<String>,
    backoff: &Backoff,
    now: Millis,
) -> Vec<RecoveryNeed> {
    // Failed tasks per pod instance, and the launched RUNNING tasks of those instances.
    #[derive(Default)]
    struct Instance {
        failed: Vec<(String, bool, bool)>, // (task spec name, permanently failed, essential)
        running_goal: Vec<(String, bool)>, // (task spec name, permanently failed)
        config: Option<String>,
    }
    let mut instances: BTreeMap<(String, u32), Instance> = BTreeMap::new();
    let mut all_running_goal: BTreeMap<(String, u32), Vec<(String, bool)>> = BTreeMap::new();
    tasks.for_each_task(&mut |t: TaskRecord<'_>| {
        let (Some(pod_type), Some(index)) = (t.pod_type(), t.index()) else {
            return;
        };
        let Some(pod) = spec.pod(pod_type) else {
            return;
        };
        if index >= pod.count || !t.launched() || t.goal() != Goal::Running {
            return;
        }
        let prefix_len = pod_type.len() + 1 + index.to_string().len() + 1;
        let Some(spec_name) = t.name().get(prefix_len..) else {
            return;
        };
        let Some(task_spec) = pod.task(spec_name) else {
            return;
        };
        if task_spec.goal != Goal::Running {
            return;
        }
        let key = (pod_type.to_owned(), index);
        all_running_goal
            .entry(key.clone())
            .or_default()
            .push((spec_name.to_owned(), t.permanently_failed()));
        let failed = t.status.is_some() && (t.is_down() || t.permanently_failed());
        if failed && in_plans.contains(t.name()) {
            let inst = instances.entry(key).or_default();
            inst.failed.push((
                spec_name.to_owned(),
                t.permanently_failed(),
                task_spec.essential,
            ));
            if inst.config.is_none() {
                inst.config = t.config_id().map(str::to_owned);
            }
        }
    });

    let mut needs = Vec::new();
    for ((pod_type, index), mut inst) in instances {
        inst.running_goal = all_running_goal
            .remove(&(pod_type.clone(), index))
            .unwrap_or_default();
        let full = |t: &str| crate::element::task_name(&pod_type, index, t);
        let essential_failed = inst.failed.iter().any(|(_, _, essential)| *essential);
        let (task_list, delayed): (Vec<(String, bool)>, bool) = if essential_failed {
            let delayed = inst
                .running_goal
                .iter()
                .any(|(t, _)| backoff.is_delayed(&full(t), now));
            (inst.running_goal.clone(), delayed)
        } else {
            let ready: Vec<(String, bool)> = inst
                .failed
                .iter()
                .filter(|(t, _, _)| !backoff.is_delayed(&full(t), now))
                .map(|(t, p, _)| (t.clone(), *p))
                .collect();
            if ready.is_empty() {
                let all = inst
                    .failed
                    .iter()
                    .map(|(t, p, _)| (t.clone(), *p))
                    .collect();
                (all, true)
            } else {
                (ready, false)
            }
        };
        if task_list.is_empty() {
            continue;
        }
        let permanent = task_list.iter().filter(|(_, p)| *p).count();
        let recovery = if permanent == task_list.len() {
            RecoveryType::Permanent
        } else if permanent == 0 {
            RecoveryType::Transient
        } else {
            // Some tasks are being replaced and others not: wait until the picture is clear.
            continue;
        };
        // Keep the spec's task order.
        let pod = spec.pod(&pod_type);
        let mut names: Vec<String> = task_list.into_iter().map(|(t, _)| t).collect();
        if let Some(pod) = pod {
            names.sort_by_key(|t| pod.task_specs.iter().position(|s| &s.name == t));
        }
        needs.push(RecoveryNeed {
            launch: PodLaunch {
                pod_type,
                index,
                tasks: names,
                recovery,
                config_id: inst.config,
            },
            delayed,
        });
    }
    needs
}
