//! What the local agents and `berth executor` exchange: the launch file, the socket
//! messages and the executor's state file.
//!
//! ```text
//!  agent (in berth run)                            executor (berth executor --dir DIR)
//!  writes DIR/launch.json ─── spawn (setsid) ───▶  reads launch.json, locks DIR/executor.lock,
//!                                                  writes DIR/executor.pid, listens on
//!                                                  DIR/executor.sock
//!  connects to DIR/executor.sock ───────────────▶  accepts (a newer connection replaces an
//!                                                  older one)
//!                               ◀──────────────── hello {executor_id, run, pid, tasks}
//!  launch {tasks} / kill {task_id, grace} /
//!  ack {task_id, uuid} / shutdown {grace} ──────▶
//!                               ◀──────────────── update {status} (persisted first, re-sent
//!                                                  until acked) / idle
//! ```
//!
//! Messages are JSON objects, one per line (`\n`), tagged by `type` in snake_case.
//! The executor persists every status in `DIR/executor-state.json` before sending it, with
//! each task's process group id, so an agent that comes back (or finds the executor dead)
//! can read what happened and kill what was left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_mesos::{AgentId, ExecutorId, ExecutorInfo, FrameworkId, TaskId, TaskInfo, TaskStatus};
use serde::{Deserialize, Serialize};

/// Name of the launch file in an executor directory.
pub const LAUNCH_FILE: &str = "launch.json";
/// Name of the executor's state file.
pub const STATE_FILE: &str = "executor-state.json";
/// Name of the executor's pid file.
pub const PID_FILE: &str = "executor.pid";
/// Name of the executor's socket.
pub const SOCKET_FILE: &str = "executor.sock";
/// Name of the executor's lock file.
pub const LOCK_FILE: &str = "executor.lock";
/// Directory of the task sandboxes inside an executor directory.
pub const TASKS_DIR: &str = "tasks";

/// The launch file: everything an executor needs, written by the agent before it spawns
/// the executor or hands it new tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchFile {
    /// Run number of this executor id (a new process for a gone executor is a new run).
    pub run: u64,
    /// Framework.
    pub framework_id: FrameworkId,
    /// Agent.
    pub agent_id: AgentId,
    /// Agent hostname.
    pub hostname: String,
    /// The executor.
    pub executor: ExecutorInfo,
    /// Tasks handed to this run, in order.
    pub tasks: Vec<TaskInfo>,
    /// Host directory of every persistent volume the tasks and the executor use, by
    /// persistence id.
    #[serde(default)]
    pub volumes: BTreeMap<String, PathBuf>,
    /// User tasks run as when their CommandInfo names none (the framework's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_user: Option<String>,
    /// Milliseconds between re-sends of unacknowledged updates.
    pub resend_interval_ms: u64,
    /// Milliseconds without an agent after which an executor whose tasks are all terminal
    /// exits even though some updates were never acknowledged.
    pub orphan_timeout_ms: u64,
    /// Kill grace period in milliseconds when neither the kill nor the task says.
    pub default_kill_grace_ms: u64,
    /// A task's `stdout`/`stderr` are paged past this size (bytes).
    #[serde(default = "default_log_page_bytes")]
    pub log_page_bytes: u64,
    /// Earlier pages kept of each (`stdout.1` … `stdout.N`).
    #[serde(default = "default_log_pages")]
    pub log_pages: u32,
}

fn default_log_page_bytes() -> u64 {
    2 << 20
}

fn default_log_pages() -> u32 {
    5
}

/// A message from the agent to the executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentMessage {
    /// Start these tasks (already known ones are ignored).
    Launch {
        /// The tasks.
        tasks: Vec<TaskInfo>,
    },
    /// Kill a task: SIGTERM to its process group, SIGKILL after the grace period.
    Kill {
        /// The task.
        task_id: TaskId,
        /// Grace period in seconds (else the task's kill policy, else the default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_period_secs: Option<f64>,
    },
    /// The scheduler acknowledged a status update.
    Ack {
        /// The task.
        task_id: TaskId,
        /// The status's uuid.
        uuid: String,
    },
    /// Kill every task and exit without waiting for acknowledgements.
    Shutdown {
        /// Grace period in seconds for every task (else each task's kill policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_period_secs: Option<f64>,
    },
}

/// A message from the executor to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutorMessage {
    /// Sent first on every connection.
    Hello {
        /// The executor.
        executor_id: ExecutorId,
        /// Its run.
        run: u64,
        /// Its pid.
        pid: i32,
        /// Every task it knows, with its unacknowledged statuses.
        tasks: Vec<TaskReport>,
    },
    /// A new status (or a re-send of an unacknowledged one).
    Update {
        /// The status (with `uuid`).
        status: TaskStatus,
    },
    /// All tasks are terminal and acknowledged; the agent answers with `shutdown` unless it
    /// has more to launch.
    Idle,
}

/// What an executor knows about one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// The task.
    pub task_id: TaskId,
    /// Process group of the task's command, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<i32>,
    /// Latest status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<TaskStatus>,
    /// Statuses not yet acknowledged, oldest first.
    #[serde(default)]
    pub unacked: Vec<TaskStatus>,
}

/// The executor's durable state (`DIR/executor-state.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorStateFile {
    /// The run this state belongs to.
    pub run: u64,
    /// Tasks by task id.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskReport>,
}

/// The executor's pid file (`DIR/executor.pid`), written once it holds the directory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidFile {
    /// The executor process.
    pub pid: i32,
    /// Its run.
    pub run: u64,
}
