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

/// Failed and running tasks of one pod instance.
#[derive(Default)]
struct Instance {
    /// (task spec name, permanently failed, essential)
    failed: Vec<(String, bool, bool)>,
    /// (task spec name, permanently failed) of its launched RUNNING-goal tasks
    running_goal: Vec<(String, bool)>,
    config: Option<String>,
}

/// The pod spec, index and task spec of a stored task, if the target spec still has them.
fn locate<'s>(
    spec: &'s ServiceSpec,
    t: &TaskRecord<'_>,
) -> Option<(&'s berth_spec::PodSpec, u32, &'s berth_spec::TaskSpec)> {
    let pod_type = t.pod_type()?;
    let index = t.index()?;
    let pod = spec.pod(pod_type)?;
    if index >= pod.count {
        return None;
    }
    let spec_name = t
        .name()
        .strip_prefix(pod_type)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.split_once('-'))
        .map(|(_, task)| task)?;
    let task_spec = pod.task(spec_name)?;
    (task_spec.goal == Goal::Running).then_some((pod, index, task_spec))
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
    // Failed tasks per pod instance: (task spec name, permanently failed, essential).
    let mut instances: BTreeMap<(String, u32), Instance> = BTreeMap::new();
    tasks.for_each_troubled_task(&mut |t: TaskRecord<'_>| {
        // Cheap checks first.
        let failed = t.status.is_some() && (t.is_down() || t.permanently_failed());
        if !failed || !t.launched() || t.goal() != Goal::Running || !in_plans.contains(t.name()) {
            return;
        }
        let Some((pod, index, task_spec)) = locate(spec, &t) else {
            return;
        };
        let inst = instances.entry((pod.pod_type.clone(), index)).or_default();
        inst.failed.push((
            task_spec.name.clone(),
            t.permanently_failed(),
            task_spec.essential,
        ));
        if inst.config.is_none() {
            inst.config = t.config_id().map(str::to_owned);
        }
    });
    // For those instances only: their launched RUNNING tasks.
    for ((pod_type, index), inst) in &mut instances {
        let Some(pod) = spec.pod(pod_type) else {
            continue;
        };
        for task_spec in pod.task_specs.iter().filter(|t| t.goal == Goal::Running) {
            let name = crate::element::task_name(pod_type, *index, &task_spec.name);
            if let Some(t) = tasks.task(&name)
                && t.launched()
                && t.goal() == Goal::Running
            {
                inst.running_goal
                    .push((task_spec.name.clone(), t.permanently_failed()));
            }
        }
    }

    let mut needs = Vec::new();
    for ((pod_type, index), inst) in instances {
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
