//! Plan → phase → step trees: immutable data with stable ids.
//!
//! A tree says *what* work exists and in which order; how far it has got lives separately, in
//! the [`crate::PlanSet`] that holds the tree (each step knows its slot there). Trees are rebuilt from the target
//! configuration at every scheduler start; the recovery plan's tree is rebuilt whenever its
//! work changes.

use serde::{Deserialize, Serialize};

/// Stable id of a plan, phase or step (a UUID in text form).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ElementId(pub String);

impl ElementId {
    /// The id text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ElementId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an element orders its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// One child after the other.
    Serial,
    /// All children at once.
    Parallel,
    /// Child `i` may start once every child in `deps[i]` is complete.
    Dependency(Vec<Vec<usize>>),
    /// The first two pending steps wait for one operator `continue` each; then the inner
    /// strategy runs the rest.
    Canary(Box<Strategy>),
}

impl Strategy {
    /// The name shown by the API and the CLI.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Serial => "serial",
            Strategy::Parallel => "parallel",
            Strategy::Dependency(_) => "dependency",
            Strategy::Canary(inner) => match **inner {
                Strategy::Serial => "serial-canary",
                _ => "parallel-canary",
            },
        }
    }

    /// Whether this is a canary strategy.
    #[must_use]
    pub fn is_canary(&self) -> bool {
        matches!(self, Strategy::Canary(_))
    }
}

/// Whether a launch recovers failed tasks, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecoveryType {
    /// Not a recovery (deploy or custom plan).
    None,
    /// Relaunch in place on the same reservations and volumes.
    Transient,
    /// Replace: placement re-evaluated, fresh reservations and volumes.
    Permanent,
}

impl RecoveryType {
    /// The name shown in step messages.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryType::None => "NONE",
            RecoveryType::Transient => "TRANSIENT",
            RecoveryType::Permanent => "PERMANENT",
        }
    }
}

/// Launching some tasks of one pod instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLaunch {
    /// Pod type.
    pub pod_type: String,
    /// Instance index.
    pub index: u32,
    /// Spec names of the tasks to launch, in spec order.
    pub tasks: Vec<String>,
    /// Recovery type (`None` for deploy and custom plans).
    pub recovery: RecoveryType,
    /// Configuration to launch with; `None` = the target configuration.
    pub config_id: Option<String>,
}

impl PodLaunch {
    /// The pod instance name (`hello-0`).
    #[must_use]
    pub fn instance(&self) -> String {
        instance_name(&self.pod_type, self.index)
    }

    /// Full task names (`hello-0-server`) of the tasks to launch.
    #[must_use]
    pub fn task_names(&self) -> Vec<String> {
        self.tasks
            .iter()
            .map(|t| task_name(&self.pod_type, self.index, t))
            .collect()
    }

    /// The step name: `hello-0:[server, sidecar]`.
    #[must_use]
    pub fn step_name(&self) -> String {
        format!("{}:[{}]", self.instance(), self.tasks.join(", "))
    }

    /// Whether this launch and `other` work on the same pod instance with a common task
    /// (a "dirty asset" conflict).
    #[must_use]
    pub fn conflicts_with(&self, other: &PodLaunch) -> bool {
        self.pod_type == other.pod_type
            && self.index == other.index
            && self.tasks.iter().any(|t| other.tasks.contains(t))
    }
}

/// `<pod>-<index>`.
#[must_use]
pub fn instance_name(pod_type: &str, index: u32) -> String {
    format!("{pod_type}-{index}")
}

/// `<pod>-<index>-<task>`.
#[must_use]
pub fn task_name(pod_type: &str, index: u32, task: &str) -> String {
    format!("{pod_type}-{index}-{task}")
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Launch tasks of a pod instance (deploy, custom plans, recovery).
    Launch(PodLaunch),
    /// Kill a task and wait for it to be terminal (decommission, uninstall).
    Kill {
        /// Full task name.
        task: String,
    },
    /// Unreserve one reservation (and destroy its volume) when its agent offers it.
    Unreserve {
        /// The reservation's `resource_id`.
        resource_id: String,
    },
    /// Delete a task from the state store (decommission).
    Erase {
        /// Full task name.
        task: String,
    },
    /// Remove the framework from the cluster and wipe the state (uninstall).
    Deregister,
    /// Nothing to do; completes when started.
    Noop,
}

impl Work {
    /// The pod launch, if this step launches tasks.
    #[must_use]
    pub fn launch(&self) -> Option<&PodLaunch> {
        match self {
            Work::Launch(l) => Some(l),
            _ => None,
        }
    }

    /// The kind of step, as shown in step messages.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Launch(l) if l.recovery != RecoveryType::None => "RecoveryStep",
            Work::Launch(_) => "DeploymentStep",
            Work::Kill { .. } => "KillTaskStep",
            Work::Unreserve { .. } => "UnreserveStep",
            Work::Erase { .. } => "EraseTaskStep",
            Work::Deregister => "DeregisterStep",
            Work::Noop => "NoopStep",
        }
    }
}

/// A step: one unit of work.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    /// Stable id.
    pub id: ElementId,
    /// Name (`hello-0:[server]`, `kill-hello-1-server`, …).
    pub name: String,
    /// What it does.
    pub work: Work,
    /// Where the plan set that holds the step keeps its progress (set when the step joins
    /// the set; [`UNPLACED`] until then). Not part of what the step is: equality and the
    /// serialized form leave it out.
    #[serde(skip, default = "unplaced")]
    pub(crate) slot: u32,
}

/// The slot of a step that belongs to no plan set yet.
pub(crate) const UNPLACED: u32 = u32::MAX;

fn unplaced() -> u32 {
    UNPLACED
}

impl Step {
    /// A step with a fresh id and no progress yet.
    #[must_use]
    pub fn new(id: ElementId, name: String, work: Work) -> Self {
        Self {
            id,
            name,
            work,
            slot: UNPLACED,
        }
    }
}

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.name == other.name && self.work == other.work
    }
}

impl Eq for Step {}

/// A phase: an ordered group of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Stable id.
    pub id: ElementId,
    /// Name.
    pub name: String,
    /// How its steps are ordered.
    pub strategy: Strategy,
    /// The steps.
    pub steps: Vec<Step>,
}

/// A plan: an ordered group of phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Stable id.
    pub id: ElementId,
    /// Name (`deploy`, `recovery`, `decommission`, `backup`, …).
    pub name: String,
    /// How its phases are ordered.
    pub strategy: Strategy,
    /// The phases.
    pub phases: Vec<Phase>,
}

impl Plan {
    /// All steps of the plan with their phase, in order.
    pub fn steps(&self) -> impl Iterator<Item = (&Phase, &Step)> {
        self.phases
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    }
}
