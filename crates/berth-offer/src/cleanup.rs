//! Cleanup of unexpected reservations (offers not used this cycle, and uninstall).

use std::collections::HashSet;

use berth_mesos::{
    FRAMEWORK_ID_LABEL, Offer, Operation, Resource, ResourcesOp, TaskInfo, VolumesOp, task_labels,
};

/// The resource ids the service still expects to see reserved: every `resource_id` in the
/// stored TaskInfos (task and executor resources), except those of tasks marked permanently
/// failed. The caller leaves out the TaskInfos of pods being decommissioned.
#[must_use]
pub fn expected_resource_ids<'a>(tasks: impl IntoIterator<Item = &'a TaskInfo>) -> HashSet<String> {
    let mut ids = HashSet::new();
    for t in tasks {
        if t.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true") {
            continue;
        }
        let executor = t.executor.iter().flat_map(|e| e.resources.iter());
        for r in t.resources.iter().chain(executor) {
            if let Some(id) = r.resource_id() {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// Whether a reservation role belongs to `role`: equal, or refined `<pre-reserved>/<role>`.
fn role_matches(reserved_role: &str, role: &str) -> bool {
    reserved_role == role
        || reserved_role
            .strip_suffix(role)
            .is_some_and(|head| head.ends_with('/'))
}

/// Operations releasing every reservation of `role` in `offer` whose `resource_id` is not in
/// `expected`: one `DESTROY` of the persistent volumes among them, then one `UNRESERVE` of all
/// of them (volumes without their persistence), as the cluster must apply them.
///
/// Resources without a `resource_id`, of another role, or labelled with another framework's
/// `framework_id` are never touched (static reservations of an operator, other services).
/// Uninstall passes an empty `expected` set, releasing everything the service reserved.
#[must_use]
pub fn cleanup_operations(
    offer: &Offer,
    role: &str,
    expected_resource_ids: &HashSet<String>,
) -> Vec<Operation> {
    let mut destroy: Vec<Resource> = Vec::new();
    let mut unreserve: Vec<Resource> = Vec::new();
    for r in &offer.resources {
        let Some(id) = r.resource_id() else {
            continue;
        };
        let Some(resv) = r.reservation() else {
            continue;
        };
        if !role_matches(&resv.role, role) || expected_resource_ids.contains(id) {
            continue;
        }
        let other_framework = resv
            .labels
            .as_ref()
            .and_then(|l| l.get(FRAMEWORK_ID_LABEL))
            .is_some_and(|fw| !fw.is_empty() && fw != offer.framework_id.value);
        if other_framework {
            continue;
        }
        if r.persistence_id().is_some() {
            destroy.push(r.clone());
            let mut plain = r.clone();
            if let Some(d) = &mut plain.disk {
                d.persistence = None;
                d.volume = None;
                if d.source.is_none() {
                    plain.disk = None;
                }
            }
            unreserve.push(plain);
        } else {
            unreserve.push(r.clone());
        }
    }
    let mut ops = Vec::with_capacity(2);
    if !destroy.is_empty() {
        ops.push(Operation::Destroy {
            destroy: VolumesOp { volumes: destroy },
        });
    }
    if !unreserve.is_empty() {
        ops.push(Operation::Unreserve {
            unreserve: ResourcesOp {
                resources: unreserve,
            },
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_mesos::{
        AgentId, DiskInfo, FrameworkId, Label, LabelsHash, OfferId, Persistence, RESOURCE_ID_LABEL,
        ReservationInfo, ReservationType, Volume, VolumeMode,
    };

    fn reserved(name: &str, role: &str, id: &str, fw: Option<&str>) -> Resource {
        let mut r = Resource::scalar(name, 1.0);
        let mut labels = vec![Label {
            key: RESOURCE_ID_LABEL.into(),
            value: id.into(),
        }];
        if let Some(fw) = fw {
            labels.push(Label {
                key: FRAMEWORK_ID_LABEL.into(),
                value: fw.into(),
            });
        }
        r.reservations.push(ReservationInfo {
            kind: ReservationType::Dynamic,
            role: role.into(),
            principal: Some("p".into()),
            labels: Some(LabelsHash { labels }),
        });
        r
    }

    fn volume(id: &str) -> Resource {
        let mut r = reserved("disk", "svc-role", id, None);
        r.disk = Some(Box::new(DiskInfo {
            persistence: Some(Persistence {
                id: format!("pers-{id}"),
                principal: Some("p".into()),
            }),
            volume: Some(Volume {
                container_path: "data".into(),
                mode: VolumeMode::Rw,
            }),
            source: None,
        }));
        r
    }

    fn offer(resources: Vec<Resource>) -> Offer {
        Offer {
            id: OfferId::new("o"),
            framework_id: FrameworkId::new("fw"),
            agent_id: AgentId::new("a"),
            hostname: "h".into(),
            domain: None,
            attributes: vec![],
            resources,
            executor_ids: vec![],
        }
    }

    #[test]
    fn destroys_before_unreserving_and_keeps_expected_and_foreign() {
        let o = offer(vec![
            reserved("cpus", "svc-role", "keep", Some("fw")),
            reserved("cpus", "svc-role", "stale", Some("fw")),
            volume("vol"),
            reserved("mem", "other-role", "x", None),
            reserved("mem", "slave_public/svc-role", "refined", None),
            reserved("mem", "svc-role", "foreign", Some("other-fw")),
            Resource::scalar("cpus", 4.0),
        ]);
        let expected: HashSet<String> = ["keep".to_owned()].into();
        let ops = cleanup_operations(&o, "svc-role", &expected);
        assert_eq!(ops.len(), 2);
        let Operation::Destroy { destroy } = &ops[0] else {
            panic!("first op must be DESTROY: {ops:?}");
        };
        assert_eq!(destroy.volumes.len(), 1);
        assert_eq!(destroy.volumes[0].persistence_id(), Some("pers-vol"));
        let Operation::Unreserve { unreserve } = &ops[1] else {
            panic!("second op must be UNRESERVE");
        };
        let ids: Vec<_> = unreserve
            .resources
            .iter()
            .map(|r| r.resource_id().unwrap())
            .collect();
        assert_eq!(ids, vec!["stale", "vol", "refined"]);
        assert!(
            unreserve.resources[1].disk.is_none(),
            "volume unreserved without persistence"
        );
    }

    #[test]
    fn expected_ids_skip_permanently_failed_tasks() {
        use berth_mesos::{ExecutorId, ExecutorInfo, ExecutorType, Labels, TaskId};
        let task = |name: &str, ids: &[&str], failed: bool| TaskInfo {
            name: name.into(),
            task_id: TaskId::new(name),
            agent_id: AgentId::new("a"),
            resources: ids
                .iter()
                .map(|id| reserved("cpus", "svc-role", id, None))
                .collect(),
            executor: Some(std::sync::Arc::new(ExecutorInfo {
                kind: ExecutorType::Default,
                executor_id: ExecutorId::new("e"),
                framework_id: None,
                name: None,
                resources: vec![reserved("mem", "svc-role", &format!("{name}-exec"), None)],
                container: None,
            })),
            command: None,
            health_check: None,
            check: None,
            kill_policy: None,
            labels: Labels {
                labels: if failed {
                    vec![Label {
                        key: "permanently-failed".into(),
                        value: "true".into(),
                    }]
                } else {
                    vec![]
                },
            },
            discovery: None,
            container: None,
        };
        let tasks = [task("a", &["1", "2"], false), task("b", &["3"], true)];
        let ids = expected_resource_ids(&tasks);
        let mut v: Vec<_> = ids.into_iter().collect();
        v.sort();
        assert_eq!(v, vec!["1", "2", "a-exec"]);
    }

    #[test]
    fn uninstall_releases_everything_and_nothing_to_do_is_empty() {
        let o = offer(vec![reserved("cpus", "svc-role", "a", None), volume("b")]);
        let ops = cleanup_operations(&o, "svc-role", &HashSet::new());
        assert_eq!(ops.len(), 2);
        assert!(cleanup_operations(&offer(vec![]), "svc-role", &HashSet::new()).is_empty());
        assert!(!role_matches("xsvc-role", "svc-role"));
        assert!(role_matches("pre/svc-role", "svc-role"));
    }
}
