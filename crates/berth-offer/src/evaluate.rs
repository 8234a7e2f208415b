//! The public entry point: evaluate one pod-instance requirement against one offer.
//!
//! ```text
//!  PodInstanceRequirement ─┐
//!  ServiceContext ─────────┤                      ┌─▶ Outcome tree (always)
//!  PodState (stored tasks) ┼─▶ evaluate(offer) ───┤
//!  PlacementIndex ─────────┤   stage pipeline     └─▶ operations + TaskInfos (all stages passed)
//!  IdGenerator ────────────┘   (new or existing pod)
//! ```
//!
//! Every stage runs even after one failed, so the outcome explains every reason an offer was
//! refused. Stages only *claim* from a [`ResourcePool`](crate::pool::ResourcePool); ids,
//! reserved resources, operations and TaskInfos are built once at the end, and only when every
//! stage passed — a refused offer costs no ids and no TaskInfo building.
//!
//! # Modes
//! *New pod* when the recovery is [`RecoveryType::Permanent`], when every stored task of the
//! instance is permanently failed, or when the instance has no reserved resource yet. Stages:
//! executor (new id), placement (if the pod has a rule, or a region applies), pod volumes,
//! executor resources, then per task (alphabetical) its resource set once — static ports,
//! dynamic ports, `cpus`/`mem`/`gpus`, volumes — and a launch stage. Tasks not being launched
//! get a *footprint-only* TaskInfo (resources reserved, empty task id).
//!
//! *Existing pod* otherwise. Stages: executor (the running executor must be in the offer, else
//! its stored info with a new id), placement only for permanent recovery, executor resources by
//! `resource_id` (not required while the executor runs: a running executor's resources are in
//! use and never offered), then per resource set of the tasks to launch: unreserve what left
//! the spec, match the rest by `resource_id` (growing or shrinking scalars), reserve what is
//! new; a dynamic port keeps its previous number; then a launch stage for every task sharing
//! the set (siblings not launched get their stored TaskInfo rewritten with the new resources).
//!
//! # Operations
//! Batched, in the order the cluster must apply them: `DESTROY` (volumes leaving the spec),
//! `UNRESERVE` (resources leaving the spec, shrinks), `RESERVE` (new reservations, grows),
//! `CREATE` (new volumes), `LAUNCH_GROUP` (the launched tasks on the pod's executor, each
//! without its own `executor` field). Empty operations are left out.
//!
//! # Cost
//! A refused offer costs a few dozen allocations (the reasons). An accepted one costs what it
//! returns: every reservation twice (in RESERVE/CREATE and in its TaskInfo), each launched
//! TaskInfo twice (stored form and LAUNCH_GROUP form) and the executor once per TaskInfo — all
//! owned Mesos values (about 900 allocations for a 3-task pod with 15 reservations).

use berth_spec::{PodSpec, ServiceSpec, StringMap};
use serde::{Deserialize, Serialize};

use crate::ids::IdGenerator;
use crate::outcome::Outcome;
use crate::placement::PlacementIndex;
use crate::stages;
use berth_mesos::{FrameworkId, Offer, OfferId, Operation, TaskInfo, TaskStatus};

/// Why a pod instance is being (re)launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryType {
    /// Deployment or a plan step (not a recovery).
    None,
    /// Relaunch in place: same agent, same reservations and volumes.
    Transient,
    /// Replace: new placement, new reservations; the old ones are cleaned up.
    Permanent,
}

/// What to launch: tasks of one pod instance.
#[derive(Debug, Clone)]
pub struct PodInstanceRequirement<'a> {
    /// The pod type's spec (from the target configuration).
    pub pod: &'a PodSpec,
    /// Pod instance index.
    pub index: u32,
    /// Names of the tasks (within the pod, e.g. `server`) to launch.
    pub tasks_to_launch: Vec<String>,
    /// Recovery type.
    pub recovery: RecoveryType,
    /// Plan parameters (from `plan start`), added to the task environment.
    pub parameters: &'a StringMap,
}

/// Resources of every pod's executor (reserved with the first launch of a pod instance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutorResources {
    /// CPUs (default 0.1).
    pub cpus: f64,
    /// Memory in MB (default 32).
    pub mem: f64,
    /// Disk in MB (default 256).
    pub disk: f64,
}

impl Default for ExecutorResources {
    fn default() -> Self {
        Self {
            cpus: 0.1,
            mem: 32.0,
            disk: 256.0,
        }
    }
}

/// Service-wide facts the evaluation needs.
#[derive(Debug, Clone)]
pub struct ServiceContext<'a> {
    /// The target service spec (name, role, principal, region).
    pub service: &'a ServiceSpec,
    /// The framework id (reservation label `framework_id`, executor info).
    pub framework_id: &'a FrameworkId,
    /// Id of the target configuration (TaskInfo label `target_configuration`, template URIs).
    pub target_config_id: &'a str,
    /// Host the scheduler API is reachable at (env `SCHEDULER_API_HOSTNAME`, template URIs).
    pub api_host: &'a str,
    /// Port of the scheduler API.
    pub api_port: u16,
    /// Executor resources.
    pub executor_resources: ExecutorResources,
    /// The scheduler's own region, if the cluster has fault domains: pods whose rule does not
    /// mention `@region` are kept in it (offers without a region pass). The service's
    /// configured `region` wins over it.
    pub local_region: Option<&'a str>,
}

/// What the store knows about the pod instance being evaluated.
#[derive(Debug, Clone, Copy)]
pub struct PodState<'a> {
    /// Stored TaskInfos of this pod instance (launched and footprint-only ones).
    pub task_infos: &'a [TaskInfo],
    /// Latest status per task, keyed by full task name (`hello-0-server`).
    pub statuses: &'a [(String, TaskStatus)],
}

impl PodState<'_> {
    /// A pod instance the store knows nothing about.
    #[must_use]
    pub fn empty() -> PodState<'static> {
        PodState {
            task_infos: &[],
            statuses: &[],
        }
    }
}

/// Which pipeline ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PodMode {
    /// Fresh reservations (first launch, or permanent replacement).
    New,
    /// Relaunch on the instance's previous reservations.
    Existing,
}

/// The result of evaluating one offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Root outcome; its children are the stages in order.
    pub outcome: Outcome,
    /// Operations to accept the offer with; empty unless every stage passed.
    pub operations: Vec<Operation>,
    /// TaskInfos to store before accepting (launched, footprint-only, rewritten siblings), each
    /// with its `executor` set; empty unless every stage passed.
    pub task_infos: Vec<TaskInfo>,
    /// Which pipeline ran.
    pub mode: PodMode,
}

impl Evaluation {
    /// Whether every stage passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.outcome.pass
    }

    /// The TaskInfos launched: the tasks of the `LAUNCH_GROUP` operation (empty when nothing is
    /// launched). As Mesos requires inside a task group, they leave `executor` unset — the
    /// executor is the operation's; the copies in [`task_infos`](Self::task_infos) carry it.
    #[must_use]
    pub fn launched(&self) -> &[TaskInfo] {
        self.operations
            .iter()
            .find_map(|op| match op {
                Operation::LaunchGroup { launch_group } => Some(&launch_group.task_group.tasks[..]),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The stored form (with `executor`) of the launched task named `name`.
    #[must_use]
    pub fn task_info(&self, name: &str) -> Option<&TaskInfo> {
        self.task_infos.iter().find(|t| t.name == name)
    }

    /// `(failed stages, total stages)`.
    #[must_use]
    pub fn failed_stage_count(&self) -> (usize, usize) {
        (self.outcome.failed_children(), self.outcome.children.len())
    }

    /// The scheduler-log text of this evaluation, without a trailing newline:
    ///
    /// ```text
    /// Offer 3, <offer-id>: failed 2 of 11 evaluation stages for hello-0:[server]:
    ///   PASS(PlacementRuleEvaluationStage): …
    ///   FAIL(ResourceEvaluationStage): …
    ///     FAIL(<child>): …
    /// ```
    ///
    /// or, when every stage passed, the single line
    /// `Offer 3, <offer-id>: passed all 11 evaluation stages for hello-0:[server], returning 4 operations`.
    #[must_use]
    pub fn render(&self, offer_number: usize, offer_id: &OfferId, step_label: &str) -> String {
        let (failed, total) = self.failed_stage_count();
        if failed == 0 {
            return format!(
                "Offer {offer_number}, {offer_id}: passed all {total} evaluation stages for {step_label}, returning {} operations",
                self.operations.len()
            );
        }
        let mut s = format!(
            "Offer {offer_number}, {offer_id}: failed {failed} of {total} evaluation stages for {step_label}:\n"
        );
        self.outcome.render_children(0, &mut s);
        if s.ends_with('\n') {
            s.pop();
        }
        s
    }
}

/// The step label of the reference: `hello-0:[server, sidecar]`.
#[must_use]
pub fn step_label(pod_type: &str, index: u32, tasks: &[String]) -> String {
    format!("{pod_type}-{index}:[{}]", tasks.join(", "))
}

/// Evaluates `offer` for `req`; see the module docs. Pure: no I/O, no clock; ids come from
/// `ids` and are drawn only when the offer passes.
#[must_use]
pub fn evaluate(
    req: &PodInstanceRequirement<'_>,
    ctx: &ServiceContext<'_>,
    pod: &PodState<'_>,
    placement: &PlacementIndex,
    offer: &Offer,
    ids: &mut dyn IdGenerator,
) -> Evaluation {
    stages::run(req, ctx, pod, placement, offer, ids)
}
