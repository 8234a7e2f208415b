//! The stage pipeline behind [`evaluate`](crate::evaluate::evaluate).
//!
//! A [`Pipeline`] holds one evaluation: the requirement, the offer's [`ResourcePool`], the
//! stage outcomes so far and the *claims* each stage made. Stages live in the sibling modules:
//!
//! - `executor`: the executor stage of both modes;
//! - `reserve`: new reservations (scalars, ports, volumes) and new resource sets;
//! - `existing`: previously reserved resources matched by `resource_id`, grow, shrink,
//!   unreserve;
//! - `launch`: launch stages and TaskInfo building;
//! - `materialize`: turning claims into reserved resources, operations and TaskInfos once
//!   every stage passed.

mod executor;
mod existing;
mod launch;
mod materialize;
mod reserve;

use std::sync::Arc;

use berth_spec::{PodSpec, PortSpec, ResourceSet, TaskSpec, VolumeSpec};

use crate::evaluate::{
    Evaluation, PodInstanceRequirement, PodMode, PodState, RecoveryType, ServiceContext,
};
use crate::ids::IdGenerator;
use crate::outcome::Outcome;
use crate::placement::{PlacementIndex, RegionPin};
use crate::pool::ResourcePool;
use berth_mesos::{ExecutorInfo, Offer, Resource, TaskInfo, task_labels};

/// Who a new reservation is for: role, pre-reserved role, principal.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resv<'a> {
    pub role: &'a str,
    pub pre: &'a str,
    pub principal: &'a str,
}

/// What a stage took from the offer (or gives back), turned into resources and operations by
/// `materialize` once every stage passed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Claim<'a> {
    /// A new reservation of an unreserved scalar.
    NewScalar {
        name: &'a str,
        milli: u64,
        resv: Resv<'a>,
    },
    /// A new reservation of one port.
    NewPort { port: u64, resv: Resv<'a> },
    /// A new reservation of ROOT disk (executor disk, or a ROOT volume when `volume` is set);
    /// `path` is the PATH-source disk it came from, if any.
    NewDisk {
        milli: u64,
        path: Option<&'a Resource>,
        volume: Option<&'a VolumeSpec>,
        resv: Resv<'a>,
    },
    /// A new reservation of a whole MOUNT disk, made into a volume.
    NewMount {
        disk: &'a Resource,
        volume: &'a VolumeSpec,
        resv: Resv<'a>,
    },
    /// A previously reserved resource kept as is.
    Kept { res: &'a Resource },
    /// A previously reserved scalar grown by `extra`.
    Grown { res: &'a Resource, extra: u64 },
    /// A previously reserved scalar shrunk by `excess`.
    Shrunk { res: &'a Resource, excess: u64 },
    /// A previously reserved resource (or volume) that left the spec: destroyed/unreserved.
    Released { res: &'a Resource },
}

/// Where a claim goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    Executor,
    Set(usize),
}

/// One resource set being reserved (or matched) in this evaluation.
#[derive(Debug)]
pub(crate) struct SetPlan<'a> {
    pub set: &'a ResourceSet,
    pub claims: Vec<Claim<'a>>,
    /// Ports assigned, in stage order.
    pub ports: Vec<(&'a PortSpec, u64)>,
    /// The stored TaskInfo holding the set's previous reservations (existing pods).
    pub stored: Option<&'a TaskInfo>,
}

/// The pod's executor in this evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExecKind<'a> {
    /// A new executor with fresh reservations.
    New,
    /// The stored executor, relaunched under a new id on its previous reservations.
    Relaunch(&'a Arc<ExecutorInfo>),
    /// The stored executor, running on the agent: reused as is.
    Running(&'a Arc<ExecutorInfo>),
}

/// One task's launch stage.
#[derive(Debug)]
pub(crate) struct LaunchPlan<'a> {
    pub task: &'a TaskSpec,
    pub set: usize,
    pub launch: bool,
    /// Stored TaskInfo, rewritten (existing pods) when the task is not launched.
    pub stored: Option<&'a TaskInfo>,
}

/// One evaluation in progress.
pub(crate) struct Pipeline<'a> {
    pub req: &'a PodInstanceRequirement<'a>,
    pub pod: &'a PodSpec,
    pub ctx: &'a ServiceContext<'a>,
    pub state: &'a PodState<'a>,
    pub placement: &'a PlacementIndex,
    pub offer: &'a Offer,
    pub pool: ResourcePool<'a>,
    pub stages: Vec<Outcome>,
    /// `<pod>-<index>-`, the prefix of the instance's task names.
    pub prefix: String,
    pub mode: PodMode,
    pub exec: ExecKind<'a>,
    pub exec_claims: Vec<Claim<'a>>,
    pub sets: Vec<SetPlan<'a>>,
    pub launches: Vec<LaunchPlan<'a>>,
    /// Ports used by the pod (static ports of the spec, ports assigned or held), sorted.
    pub pod_ports: Vec<u64>,
    /// Whether the pod is on a virtual network without port mapping (ports not reserved).
    pub virtual_net: bool,
}

/// Whether stored TaskInfos hold any reservation.
fn has_reservations(tasks: &[TaskInfo]) -> bool {
    tasks.iter().any(|t| {
        t.resources.iter().any(|r| r.resource_id().is_some())
            || t.executor
                .as_ref()
                .is_some_and(|e| e.resources.iter().any(|r| r.resource_id().is_some()))
    })
}

fn decide_mode(req: &PodInstanceRequirement<'_>, state: &PodState<'_>) -> PodMode {
    if req.recovery == RecoveryType::Permanent {
        return PodMode::New;
    }
    let all_failed = !state.task_infos.is_empty()
        && state
            .task_infos
            .iter()
            .all(|t| t.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true"));
    if all_failed || !has_reservations(state.task_infos) {
        PodMode::New
    } else {
        PodMode::Existing
    }
}

/// Runs the pipeline of the right mode and builds the [`Evaluation`].
pub(crate) fn run<'a>(
    req: &'a PodInstanceRequirement<'a>,
    ctx: &'a ServiceContext<'a>,
    state: &'a PodState<'a>,
    placement: &'a PlacementIndex,
    offer: &'a Offer,
    ids: &mut dyn IdGenerator,
) -> Evaluation {
    let pod = req.pod;
    let mode = decide_mode(req, state);
    let mut pod_ports: Vec<u64> = pod
        .task_specs
        .iter()
        .flat_map(|t| t.resource_set.ports())
        .filter(|p| p.port != 0)
        .map(|p| u64::from(p.port))
        .collect();
    if mode == PodMode::Existing {
        for t in state.task_infos {
            for r in t.resources.iter().filter(|r| r.name == "ports") {
                if let Some(rs) = &r.ranges {
                    for range in rs
                        .range
                        .iter()
                        .filter(|x| x.end.saturating_sub(x.begin) < 64)
                    {
                        pod_ports.extend(range.begin..=range.end);
                    }
                }
            }
        }
    }
    pod_ports.sort_unstable();
    pod_ports.dedup();
    let mut p = Pipeline {
        req,
        pod,
        ctx,
        state,
        placement,
        offer,
        pool: ResourcePool::new(offer),
        stages: Vec::with_capacity(24),
        prefix: format!("{}-{}-", pod.pod_type, req.index),
        mode,
        exec: ExecKind::New,
        exec_claims: Vec::with_capacity(4),
        sets: Vec::with_capacity(pod.task_specs.len()),
        launches: Vec::with_capacity(pod.task_specs.len()),
        pod_ports,
        virtual_net: pod.uses_virtual_network(),
    };
    match mode {
        PodMode::New => p.run_new(),
        PodMode::Existing => p.run_existing(),
    }
    p.finish(ids)
}

impl<'a> Pipeline<'a> {
    /// Whether the task (name within the pod) is to be launched.
    pub fn launching(&self, task: &str) -> bool {
        self.req.tasks_to_launch.iter().any(|t| t == task)
    }

    /// The stored TaskInfo of a task (name within the pod).
    pub fn stored_task(&self, task: &str) -> Option<&'a TaskInfo> {
        let prefix = self.prefix.as_str();
        self.state
            .task_infos
            .iter()
            .find(|t| t.name.strip_prefix(prefix) == Some(task))
    }

    /// Task specs sorted by name.
    fn tasks_by_name(&self) -> Vec<&'a TaskSpec> {
        let mut tasks: Vec<&'a TaskSpec> = self.pod.task_specs.iter().collect();
        tasks.sort_by(|a, b| a.name.cmp(&b.name));
        tasks
    }

    fn push_claim(&mut self, target: Target, claim: Claim<'a>) {
        match target {
            Target::Executor => self.exec_claims.push(claim),
            Target::Set(i) => {
                if let Some(s) = self.sets.get_mut(i) {
                    s.claims.push(claim);
                }
            }
        }
    }

    fn record_port(&mut self, set: usize, spec: &'a PortSpec, port: u64) {
        if let Some(s) = self.sets.get_mut(set) {
            s.ports.push((spec, port));
        }
        if let Err(pos) = self.pod_ports.binary_search(&port) {
            self.pod_ports.insert(pos, port);
        }
    }

    fn set_index(&self, id: &str) -> Option<usize> {
        self.sets.iter().position(|s| s.set.id == id)
    }

    /// The placement stage, when the pod has a rule or a region applies.
    fn placement_stage(&mut self) {
        let rule = self.pod.placement_rule.as_ref();
        let references_region = rule.is_some_and(|r| r.references_region());
        let pin = if references_region {
            None
        } else if let Some(r) = self.ctx.service.region.as_deref() {
            Some(RegionPin {
                region: r,
                configured: true,
            })
        } else {
            self.ctx.local_region.map(|r| RegionPin {
                region: r,
                configured: false,
            })
        };
        if rule.is_none() && pin.is_none() {
            return;
        }
        let outcome = self.placement.evaluate_placement(
            rule,
            pin,
            &self.pod.pod_type,
            self.req.index,
            self.offer,
        );
        self.stages.push(outcome);
    }

    /// Fails the evaluation for task names the pod does not have.
    fn unknown_tasks_stage(&mut self) {
        for name in &self.req.tasks_to_launch {
            if self.pod.task(name).is_none() {
                self.stages.push(Outcome::fail(
                    crate::outcome::stage::LAUNCH,
                    format!(
                        "Pod type '{}' has no task named '{name}' to launch",
                        self.pod.pod_type
                    ),
                ));
            }
        }
    }

    fn run_new(&mut self) {
        self.executor_new_stage();
        self.placement_stage();
        let pod = self.pod;
        for v in &pod.volumes {
            let resv = self.executor_resv_for(v);
            self.new_volume_stage(v, resv, Target::Executor, true);
        }
        self.new_executor_resource_stages();
        for task in self.tasks_by_name() {
            let si = match self.set_index(&task.resource_set.id) {
                Some(i) => i,
                None => {
                    self.sets.push(SetPlan {
                        set: &task.resource_set,
                        claims: Vec::with_capacity(8),
                        ports: Vec::new(),
                        stored: None,
                    });
                    let i = self.sets.len() - 1;
                    self.new_set_stages(i);
                    i
                }
            };
            let launch = self.launching(&task.name);
            self.launch_stage(task, si, launch, None);
        }
        self.unknown_tasks_stage();
    }

    fn run_existing(&mut self) {
        self.executor_existing_stage();
        if self.req.recovery == RecoveryType::Permanent {
            self.placement_stage();
        }
        match self.exec {
            ExecKind::New => {
                let pod = self.pod;
                for v in &pod.volumes {
                    let resv = self.executor_resv_for(v);
                    self.new_volume_stage(v, resv, Target::Executor, true);
                }
                self.new_executor_resource_stages();
            }
            ExecKind::Relaunch(e) => self.existing_executor_resource_stages(e),
            ExecKind::Running(_) => {}
        }
        let tasks = self.tasks_by_name();
        for task in &tasks {
            if !self.launching(&task.name) || self.set_index(&task.resource_set.id).is_some() {
                continue;
            }
            let set = &task.resource_set;
            let stored = tasks
                .iter()
                .filter(|t| t.resource_set.id == set.id)
                .filter_map(|t| self.stored_task(&t.name))
                .find(|t| !t.resources.is_empty());
            self.sets.push(SetPlan {
                set,
                claims: Vec::with_capacity(8),
                ports: Vec::new(),
                stored,
            });
            let si = self.sets.len() - 1;
            self.existing_set_stages(si);
            for sibling in tasks.iter().filter(|t| t.resource_set.id == set.id) {
                let launch = self.launching(&sibling.name);
                let stored = if launch {
                    None
                } else {
                    self.stored_task(&sibling.name)
                };
                self.launch_stage(sibling, si, launch, stored);
            }
        }
        self.unknown_tasks_stage();
    }

    fn executor_resv_for(&self, v: &'a VolumeSpec) -> Resv<'a> {
        Resv {
            role: &v.role,
            pre: &v.pre_reserved_role,
            principal: &v.principal,
        }
    }
}
