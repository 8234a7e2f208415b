//! The durable state of the local cluster (`<data-dir>/cluster/state.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_mesos::{ExecutorInfo, Resource, TaskState, TaskStatus};
use serde::{Deserialize, Serialize};

/// Version of the state file format.
pub(crate) const STATE_VERSION: u32 = 1;

/// Everything that must survive a restart of `berth run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClusterState {
    pub version: u32,
    /// Random id of this cluster; framework ids are `<cluster_id>-<NNNN>`.
    pub cluster_id: String,
    /// Next framework number.
    pub next_framework: u64,
    /// Next executor run number (unique across the cluster).
    #[serde(default)]
    pub next_run: u64,
    /// Frameworks by id.
    #[serde(default)]
    pub frameworks: BTreeMap<String, FrameworkRecord>,
    /// Agents by id.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentRecord>,
}

/// A framework the cluster has seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FrameworkRecord {
    pub name: String,
    pub user: String,
    pub principal: String,
    pub roles: Vec<String>,
    /// Torn down: its id can never be used again.
    #[serde(default)]
    pub removed: bool,
}

/// Whether an agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Running and offering.
    Up,
    /// Stopped by an operator ("the machine is down").
    Down,
    /// Drained/decommissioned: never offered again.
    Drained,
}

/// One agent's durable state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AgentRecord {
    pub state: AgentState,
    /// Dynamic reservations and persistent volumes (with their reservation stacks).
    #[serde(default)]
    pub checkpointed: Vec<Resource>,
    /// Executors by id.
    #[serde(default)]
    pub executors: BTreeMap<String, ExecutorRecord>,
    /// Tasks by id.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRecord>,
}

/// Lifecycle of an executor process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorState {
    /// Recorded; the process is being started.
    Launching,
    /// Running.
    Running,
    /// Told to exit (idle, or its framework was torn down).
    ShuttingDown,
    /// Gone.
    Terminated,
}

impl ExecutorState {
    /// Whether new tasks can be handed to it.
    pub(crate) fn accepts_tasks(self) -> bool {
        matches!(self, ExecutorState::Launching | ExecutorState::Running)
    }
    /// Whether its process may still exist (and its resources are in use).
    pub(crate) fn alive(self) -> bool {
        self != ExecutorState::Terminated
    }
}

/// One executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ExecutorRecord {
    pub framework_id: String,
    pub info: ExecutorInfo,
    /// The executor directory.
    pub dir: PathBuf,
    pub run: u64,
    #[serde(default)]
    pub pid: Option<i32>,
    /// `/proc/<pid>/stat` start time, to tell the process from a later one with its pid.
    #[serde(default)]
    pub start_time: Option<u64>,
    pub state: ExecutorState,
    /// Tasks handed to the current run.
    #[serde(default)]
    pub tasks: Vec<String>,
}

/// One task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskRecord {
    pub framework_id: String,
    pub executor_id: String,
    pub name: String,
    pub resources: Vec<Resource>,
    /// Latest status (TASK_STAGING until the executor reports).
    pub latest: TaskStatus,
    /// Updates with a uuid not yet acknowledged, oldest first; only the first is sent.
    #[serde(default)]
    pub pending: Vec<TaskStatus>,
    /// Uuids already acknowledged (most recent last, bounded).
    #[serde(default)]
    pub acked: Vec<String>,
}

impl TaskRecord {
    /// Whether the task's resources are in use.
    pub(crate) fn uses_resources(&self) -> bool {
        matches!(
            self.latest.state,
            TaskState::TaskStaging
                | TaskState::TaskStarting
                | TaskState::TaskRunning
                | TaskState::TaskKilling
        )
    }
}
