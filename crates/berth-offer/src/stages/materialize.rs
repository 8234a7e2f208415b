//! Once every stage passed: draw ids, build reserved resources, operations and TaskInfos.

use std::sync::Arc;

use super::{Claim, ExecKind, Pipeline, Resv};
use crate::evaluate::Evaluation;
use crate::ids::IdGenerator;
use crate::naming;
use crate::outcome::{Outcome, stage};
use crate::pool::{from_milli, to_milli};
use berth_mesos::{
    DiskInfo, ExecutorId, ExecutorInfo, ExecutorType, FRAMEWORK_ID_LABEL, FrameworkId, Label,
    LabelsHash, LaunchGroupOp, Operation, Persistence, RESOURCE_ID_LABEL, Range, ReservationInfo,
    ReservationType, Reservations, Resource, ResourcesOp, Scalar, TaskGroupInfo, TaskId, TaskInfo,
    Volume, VolumeMode, VolumesOp,
};

/// Operations collected while realising claims, emitted in this order.
struct Ops {
    destroy: Vec<Resource>,
    unreserve: Vec<Resource>,
    reserve: Vec<Resource>,
    create: Vec<Resource>,
}

/// The reservation stack of a new reservation: DYNAMIC `<role>`, or STATIC `<pre>` refined by
/// DYNAMIC `<pre>/<role>` for a pre-reserved role.
fn reservations(resv: &Resv<'_>, id: String, fw: &FrameworkId) -> Reservations {
    let labels = Some(LabelsHash {
        labels: vec![
            Label {
                key: RESOURCE_ID_LABEL.into(),
                value: id.into(),
            },
            Label {
                key: FRAMEWORK_ID_LABEL.into(),
                value: fw.value.clone().into(),
            },
        ],
    });
    if resv.pre == "*" || resv.pre.is_empty() {
        vec![ReservationInfo {
            kind: ReservationType::Dynamic,
            role: resv.role.into(),
            principal: Some(resv.principal.into()),
            labels,
        }]
        .into()
    } else {
        vec![
            ReservationInfo {
                kind: ReservationType::Static,
                role: resv.pre.into(),
                principal: None,
                labels: None,
            },
            ReservationInfo {
                kind: ReservationType::Dynamic,
                role: format!("{}/{}", resv.pre, resv.role).into(),
                principal: Some(resv.principal.into()),
                labels,
            },
        ]
        .into()
    }
}

fn with_amount(res: &Resource, milli: u64) -> Resource {
    let mut r = res.clone();
    r.scalar = Some(Scalar {
        value: from_milli(milli),
    });
    r
}

/// The disk of a volume once DESTROYed: persistence and volume removed, source kept.
fn without_volume(res: &Resource) -> Resource {
    let mut r = res.clone();
    if let Some(d) = &mut r.disk {
        d.persistence = None;
        d.volume = None;
        if d.source.is_none() {
            r.disk = None;
        }
    }
    r
}

fn make_volume(r: &mut Resource, path: &str, principal: &str, ids: &mut dyn IdGenerator) {
    let d = r.disk.get_or_insert_default();
    d.persistence = Some(Persistence {
        id: ids.uuid(),
        principal: Some(principal.to_owned()),
    });
    d.volume = Some(Volume {
        container_path: path.to_owned(),
        mode: VolumeMode::Rw,
    });
}

/// Turns claims into the resources of a task or executor, collecting operations.
fn realize(
    claims: &[Claim<'_>],
    ops: &mut Ops,
    ids: &mut dyn IdGenerator,
    fw: &FrameworkId,
) -> Vec<Resource> {
    let mut out = Vec::with_capacity(claims.len());
    for c in claims {
        match *c {
            Claim::NewScalar { name, milli, resv } => {
                let mut r = Resource::scalar(name, from_milli(milli));
                r.reservations = reservations(&resv, ids.uuid(), fw);
                ops.reserve.push(r.clone());
                out.push(r);
            }
            Claim::NewPort { port, resv } => {
                let mut r = Resource::ranges(
                    "ports",
                    vec![Range {
                        begin: port,
                        end: port,
                    }],
                );
                r.reservations = reservations(&resv, ids.uuid(), fw);
                ops.reserve.push(r.clone());
                out.push(r);
            }
            Claim::NewDisk {
                milli,
                path,
                volume,
                resv,
            } => {
                let mut r = Resource::scalar("disk", from_milli(milli));
                if let Some(src) = path
                    .and_then(|p| p.disk.as_ref())
                    .and_then(|d| d.source.clone())
                {
                    r.disk = Some(Box::new(DiskInfo {
                        persistence: None,
                        volume: None,
                        source: Some(src),
                    }));
                }
                r.reservations = reservations(&resv, ids.uuid(), fw);
                ops.reserve.push(r.clone());
                if let Some(v) = volume {
                    make_volume(&mut r, &v.container_path, resv.principal, ids);
                    ops.create.push(r.clone());
                }
                out.push(r);
            }
            Claim::NewMount { disk, volume, resv } => {
                let mut r = disk.clone();
                r.reservations = reservations(&resv, ids.uuid(), fw);
                ops.reserve.push(r.clone());
                make_volume(&mut r, &volume.container_path, resv.principal, ids);
                ops.create.push(r.clone());
                out.push(r);
            }
            Claim::Kept { res } => out.push(res.clone()),
            Claim::Grown { res, extra } => {
                let have = to_milli(res.scalar_value());
                ops.reserve.push(with_amount(res, extra));
                out.push(with_amount(res, have.saturating_add(extra)));
            }
            Claim::Shrunk { res, excess } => {
                let have = to_milli(res.scalar_value());
                ops.unreserve.push(with_amount(res, excess));
                out.push(with_amount(res, have.saturating_sub(excess)));
            }
            Claim::Released { res } => {
                if res.persistence_id().is_some() {
                    ops.destroy.push(res.clone());
                    ops.unreserve.push(without_volume(res));
                } else {
                    ops.unreserve.push(res.clone());
                }
            }
        }
    }
    out
}

impl Pipeline<'_> {
    /// Builds the [`Evaluation`]: the outcome tree always; ids, operations and TaskInfos only
    /// when every stage passed.
    pub(crate) fn finish(self, ids: &mut dyn IdGenerator) -> Evaluation {
        let total = self.stages.len();
        let failed = self.stages.iter().filter(|s| !s.pass).count();
        let passed = failed == 0;
        let reason = if passed {
            format!("passed all {total} evaluation stages")
        } else {
            format!("failed {failed} of {total} evaluation stages")
        };
        let mode = self.mode;
        if !passed {
            return Evaluation {
                outcome: Outcome::new(false, stage::EVALUATOR, reason).with_children(self.stages),
                operations: Vec::new(),
                task_infos: Vec::new(),
                mode,
            };
        }

        let fw = self.ctx.framework_id;
        let svc = &self.ctx.service.name;
        let claims =
            self.exec_claims.len() + self.sets.iter().map(|s| s.claims.len()).sum::<usize>();
        let mut ops = Ops {
            destroy: Vec::new(),
            unreserve: Vec::new(),
            reserve: Vec::with_capacity(claims),
            create: Vec::new(),
        };
        let new_executor_id = |ids: &mut dyn IdGenerator| {
            ExecutorId::new(naming::executor_id(svc, &self.pod.pod_type, &ids.uuid()))
        };
        let executor = match self.exec {
            ExecKind::New => {
                let executor_id = new_executor_id(ids);
                Arc::new(ExecutorInfo {
                    kind: ExecutorType::Default,
                    executor_id,
                    framework_id: Some(fw.clone()),
                    name: Some(naming::pod_instance_name(
                        &self.pod.pod_type,
                        self.req.index,
                    )),
                    resources: realize(&self.exec_claims, &mut ops, ids, fw),
                    container: network_container(&self.pod.networks),
                })
            }
            ExecKind::Relaunch(e) => {
                let mut e = ExecutorInfo::clone(e);
                e.executor_id = new_executor_id(ids);
                e.framework_id = Some(fw.clone());
                e.resources = realize(&self.exec_claims, &mut ops, ids, fw);
                Arc::new(e)
            }
            // Shared by the pod's TaskInfos and the LAUNCH_GROUP: one executor, not one copy
            // per task.
            ExecKind::Running(e) => Arc::clone(e),
        };
        let set_resources: Vec<Vec<Resource>> = self
            .sets
            .iter()
            .map(|s| realize(&s.claims, &mut ops, ids, fw))
            .collect();

        let consts = self.launch_consts();
        // Each set's resources are moved into their last user, cloned for earlier ones.
        let mut users = vec![0usize; set_resources.len()];
        for lp in &self.launches {
            if let Some(u) = users.get_mut(lp.set) {
                *u += 1;
            }
        }
        let mut set_resources = set_resources;
        let mut task_infos: Vec<TaskInfo> = Vec::with_capacity(self.launches.len());
        let mut group: Vec<TaskInfo> = Vec::new();
        for lp in &self.launches {
            let resources = match (set_resources.get_mut(lp.set), users.get_mut(lp.set)) {
                (Some(r), Some(u)) => {
                    *u = u.saturating_sub(1);
                    if *u == 0 {
                        std::mem::take(r)
                    } else {
                        r.clone()
                    }
                }
                _ => Vec::new(),
            };
            match (lp.launch, lp.stored) {
                (false, Some(stored)) => task_infos.push(TaskInfo {
                    name: stored.name.clone(),
                    task_id: stored.task_id.clone(),
                    agent_id: stored.agent_id.clone(),
                    resources,
                    executor: Some(Arc::clone(&executor)),
                    command: stored.command.clone(),
                    health_check: stored.health_check.clone(),
                    check: stored.check.clone(),
                    kill_policy: stored.kill_policy,
                    labels: stored.labels.clone(),
                    discovery: stored.discovery.clone(),
                    container: stored.container.clone(),
                }),
                _ => {
                    let task_id = if lp.launch {
                        let name =
                            naming::task_name(&self.pod.pod_type, self.req.index, &lp.task.name);
                        TaskId::new(naming::task_id(svc, &name, &ids.uuid()))
                    } else {
                        TaskId::default()
                    };
                    let ports = self.sets.get(lp.set).map_or(&[][..], |s| &s.ports[..]);
                    let info = self.build_task_info(lp.task, ports, resources, task_id, &consts);
                    if lp.launch {
                        // The group's tasks leave `executor` unset: it is on the group.
                        let mut stored = info.clone();
                        stored.executor = Some(Arc::clone(&executor));
                        task_infos.push(stored);
                        group.push(info);
                    } else {
                        let mut info = info;
                        info.executor = Some(Arc::clone(&executor));
                        task_infos.push(info);
                    }
                }
            }
        }

        let mut operations = Vec::with_capacity(5);
        if !ops.destroy.is_empty() {
            operations.push(Operation::Destroy {
                destroy: VolumesOp {
                    volumes: ops.destroy,
                },
            });
        }
        if !ops.unreserve.is_empty() {
            operations.push(Operation::Unreserve {
                unreserve: ResourcesOp {
                    resources: ops.unreserve,
                },
            });
        }
        if !ops.reserve.is_empty() {
            operations.push(Operation::Reserve {
                reserve: ResourcesOp {
                    resources: ops.reserve,
                },
            });
        }
        if !ops.create.is_empty() {
            operations.push(Operation::Create {
                create: VolumesOp {
                    volumes: ops.create,
                },
            });
        }
        if !group.is_empty() {
            operations.push(Operation::LaunchGroup {
                launch_group: LaunchGroupOp {
                    executor,
                    task_group: TaskGroupInfo { tasks: group },
                },
            });
        }
        Evaluation {
            outcome: Outcome::new(true, stage::EVALUATOR, reason).with_children(self.stages),
            operations,
            task_infos,
            mode,
        }
    }
}

/// The executor's container of a pod with `networks:`: the pod's tasks share its network
/// namespace, joined to each virtual network (CNI) with its labels and port mappings.
fn network_container(networks: &[berth_spec::NetworkSpec]) -> Option<berth_mesos::ContainerInfo> {
    if networks.is_empty() {
        return None;
    }
    let network_infos = networks
        .iter()
        .map(|n| {
            let mut labels = berth_mesos::Labels::default();
            for (k, v) in &n.labels {
                labels.set(k.clone(), v.clone());
            }
            berth_mesos::NetworkInfo {
                name: Some(n.name.clone()),
                labels: (!labels.is_empty()).then_some(labels),
                port_mappings: n
                    .host_ports
                    .iter()
                    .zip(&n.container_ports)
                    .map(|(h, c)| berth_mesos::PortMapping {
                        host_port: *h,
                        container_port: *c,
                    })
                    .collect(),
            }
        })
        .collect();
    Some(berth_mesos::ContainerInfo {
        kind: berth_mesos::ContainerType::Mesos,
        mesos: None,
        network_infos,
    })
}
