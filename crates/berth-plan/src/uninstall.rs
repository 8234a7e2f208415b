//! The uninstall plan: what removing a service does, step by step.
//!
//! When a service is uninstalled its scheduler serves one plan, named `deploy`:
//!
//! ```text
//! kill-tasks                          kill-task-<task id>…       (parallel)
//! unreserve-resources-<hostname>…     unreserve-<resource id>…   (parallel, one phase per agent)
//! deregister-service                  deregister                 (after every other phase)
//! ```
//!
//! A kill step completes once its task is down; an unreserve step once the reservation was
//! destroyed and unreserved from an offer of its agent (operators force-complete the steps
//! of an agent that is gone for good); the deregister step once the framework was torn down
//! and the state wiped.

use std::collections::{BTreeMap, BTreeSet};

use berth_mesos::task_labels;

use crate::element::{Phase, Plan, Step, Strategy, Work};
use crate::generate::new_id;
use crate::ids::IdGenerator;
use crate::task::{TaskRecord, TaskSource};

/// Name of the uninstall plan (it replaces the deploy plan).
pub const UNINSTALL_PLAN: &str = "deploy";
/// Name of the phase that kills every task.
pub const KILL_TASKS_PHASE: &str = "kill-tasks";
/// Prefix of the per-agent unreserve phases.
pub const UNRESERVE_PHASE_PREFIX: &str = "unreserve-resources-";
/// Name of the last phase.
pub const DEREGISTER_PHASE: &str = "deregister-service";

/// Builds the uninstall plan from the stored tasks and from reservations known to be left
/// over (`extra`: resource id → agent id, e.g. of replaced pods).
pub fn uninstall_plan(
    tasks: &dyn TaskSource,
    extra: &BTreeMap<String, String>,
    ids: &mut dyn IdGenerator,
) -> Plan {
    let mut kills = Vec::new();
    // Agent id → hostname, learned from the tasks' offer labels.
    let mut hostnames: BTreeMap<String, String> = BTreeMap::new();
    // Agent id → resource ids.
    let mut by_agent: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    tasks.for_each_task(&mut |t: TaskRecord<'_>| {
        if t.launched() {
            kills.push((t.info.task_id.value.clone(), t.name().to_owned()));
        }
        let agent = t.info.agent_id.value.clone();
        if let Some(host) = t.info.labels.get(task_labels::OFFER_HOSTNAME) {
            hostnames.insert(agent.clone(), host.to_owned());
        }
        // A launch the cluster never confirmed, with no status since, reserved nothing.
        let never_reserved = t.unconfirmed && t.status.is_none();
        if agent.is_empty() || never_reserved {
            return;
        }
        let executor = t.info.executor.iter().flat_map(|e| e.resources.iter());
        for r in t.info.resources.iter().chain(executor) {
            if let Some(id) = r.resource_id() {
                by_agent
                    .entry(agent.clone())
                    .or_default()
                    .insert(id.to_owned());
            }
        }
    });
    for (rid, agent) in extra {
        by_agent
            .entry(agent.clone())
            .or_default()
            .insert(rid.clone());
    }

    let mut phases = vec![Phase {
        id: new_id(ids),
        name: KILL_TASKS_PHASE.to_owned(),
        strategy: Strategy::Parallel,
        steps: kills
            .into_iter()
            .map(|(task_id, task)| {
                Step::new(
                    new_id(ids),
                    format!("kill-task-{task_id}"),
                    Work::Kill { task },
                )
            })
            .collect(),
    }];
    // One phase per agent, sorted by the name shown (hostname, else agent id).
    let mut agents: Vec<(String, BTreeSet<String>)> = by_agent
        .into_iter()
        .map(|(agent, rids)| (hostnames.get(&agent).cloned().unwrap_or(agent), rids))
        .collect();
    agents.sort_by(|a, b| a.0.cmp(&b.0));
    for (host, rids) in agents {
        phases.push(Phase {
            id: new_id(ids),
            name: format!("{UNRESERVE_PHASE_PREFIX}{host}"),
            strategy: Strategy::Parallel,
            steps: rids
                .into_iter()
                .map(|resource_id| {
                    Step::new(
                        new_id(ids),
                        format!("unreserve-{resource_id}"),
                        Work::Unreserve { resource_id },
                    )
                })
                .collect(),
        });
    }
    let before: Vec<usize> = (0..phases.len()).collect();
    phases.push(Phase {
        id: new_id(ids),
        name: DEREGISTER_PHASE.to_owned(),
        strategy: Strategy::Serial,
        steps: vec![Step::new(
            new_id(ids),
            "deregister".to_owned(),
            Work::Deregister,
        )],
    });
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); phases.len() - 1];
    deps.push(before);
    Plan {
        id: new_id(ids),
        name: UNINSTALL_PLAN.to_owned(),
        strategy: Strategy::Dependency(deps),
        phases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SequentialIds;
    use crate::task::TaskTable;
    use berth_mesos::{
        AgentId, Label, Labels, LabelsHash, ReservationInfo, ReservationType, Resource, TaskId,
        TaskInfo,
    };

    fn reserved(id: &str) -> Resource {
        let mut r = Resource::scalar("cpus", 0.1);
        r.reservations = vec![ReservationInfo {
            kind: ReservationType::Dynamic,
            role: "svc-role".into(),
            principal: None,
            labels: Some(LabelsHash {
                labels: vec![Label {
                    key: "resource_id".into(),
                    value: id.into(),
                }],
            }),
        }]
        .into();
        r
    }

    fn task(name: &str, id: &str, agent: &str, host: &str, rids: &[&str]) -> TaskInfo {
        let mut labels = Labels::default();
        labels.set(task_labels::OFFER_HOSTNAME, host);
        TaskInfo {
            name: name.to_owned(),
            task_id: TaskId::new(id),
            agent_id: AgentId::new(agent),
            resources: rids.iter().map(|r| reserved(r)).collect(),
            executor: None,
            command: None,
            health_check: None,
            check: None,
            kill_policy: None,
            labels,
            discovery: None,
            container: None,
        }
    }

    #[test]
    fn phases_steps_and_dependencies() {
        let mut table = TaskTable::default();
        for t in [
            task("hello-0-server", "t1", "A", "host-b", &["r1", "r2"]),
            task("world-0-server", "t2", "B", "host-a", &["r3"]),
            task("world-1-server", "t3", "A", "host-b", &["r4"]),
        ] {
            table.put_info(t);
        }
        let extra: BTreeMap<String, String> = [("r9".to_owned(), "C".to_owned())].into();
        let plan = uninstall_plan(&table, &extra, &mut SequentialIds::default());
        assert_eq!(plan.name, "deploy");
        let names: Vec<(&str, Vec<&str>)> = plan
            .phases
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.steps.iter().map(|s| s.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "kill-tasks",
                    vec!["kill-task-t1", "kill-task-t2", "kill-task-t3"]
                ),
                ("unreserve-resources-C", vec!["unreserve-r9"]),
                ("unreserve-resources-host-a", vec!["unreserve-r3"]),
                (
                    "unreserve-resources-host-b",
                    vec!["unreserve-r1", "unreserve-r2", "unreserve-r4"]
                ),
                ("deregister-service", vec!["deregister"]),
            ]
        );
        assert_eq!(
            plan.strategy,
            Strategy::Dependency(vec![vec![], vec![], vec![], vec![], vec![0, 1, 2, 3]])
        );
    }

    #[test]
    fn nothing_stored_still_deregisters() {
        let plan = uninstall_plan(
            &TaskTable::default(),
            &BTreeMap::new(),
            &mut SequentialIds::default(),
        );
        assert_eq!(plan.phases.len(), 2);
        assert!(plan.phases[0].steps.is_empty());
        assert_eq!(plan.phases[1].steps[0].work, Work::Deregister);
    }
}
