//! The agents' side of the double (opt-in with [`crate::DoubleOptions::agent_root`]): the
//! HTTP endpoints of Mesos agents that operators' tools use for task sandboxes, logs and
//! exec, over real sandbox directories and real processes.
//!
//! ```text
//!  leader   GET /master/slaves ───────────▶ {"slaves": [{"id", "pid": "slave(n)@127.0.0.1:P", …}]}
//!  agents' listener 127.0.0.1:P (one for every agent; agent n is the n-th of the sim's agents)
//!           GET  /slave(n)/state ─────────▶ frameworks → executors → tasks, with sandboxes
//!           GET  /files/{browse,read,download}?path=…   (only paths under the agent root)
//!           POST /slave(n)/api/v1 ────────▶ LAUNCH_NESTED_CONTAINER_SESSION, ATTACH_CONTAINER_INPUT,
//!                                           WAIT_NESTED_CONTAINER (see `agent_exec`)
//!
//!  <root>/slaves/<agent>/frameworks/<framework>/executors/<executor>/runs/<container>/
//!         stdout, stderr                      the executor's (empty)
//!         tasks/<task id>/stdout, stderr      "Received task <id>\n<command>\n", "Starting <name>\n"
//! ```
//!
//! Sandboxes are made when the double sees a task launched (after each ACCEPT it applies, and
//! whenever an agent's state is asked for) and stay after the task ends. An executor gets a
//! new run (a new container id and directory) when a task is launched under it while none of
//! its earlier run's tasks is active. Each task has a container id of its own, nested under
//! its executor's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_cluster::sim::SimCluster;
use berth_mesos::TaskState;
use serde_json::{Value, json};

use crate::{Shared, agent_exec, agent_files};

/// The agents' state kept by the double: where sandboxes are and which runs they belong to.
#[derive(Debug)]
pub(crate) struct Agents {
    /// The agent root, canonical (sandboxes are made, and files served, only below it).
    pub(crate) root: PathBuf,
    /// The agents' listener.
    pub(crate) addr: SocketAddr,
    sandboxes: Mutex<Sandboxes>,
    /// Nested container sessions (exec).
    pub(crate) sessions: agent_exec::Sessions,
}

#[derive(Debug, Default)]
struct Sandboxes {
    /// Framework names by id.
    frameworks: HashMap<String, String>,
    /// Executor runs, in the order they were started.
    runs: Vec<ExecutorRun>,
    /// Tasks by id.
    tasks: HashMap<String, TaskRecord>,
}

/// One run of an executor: its container and sandbox.
#[derive(Debug)]
struct ExecutorRun {
    agent: String,
    framework: String,
    executor: String,
    name: String,
    container: String,
    dir: PathBuf,
    /// Ids of the tasks launched in this run, in order.
    tasks: Vec<String>,
}

#[derive(Debug)]
struct TaskRecord {
    /// Index of its run in `Sandboxes::runs`.
    run: usize,
    name: String,
    container: String,
    /// The states seen (STAGING left out), with when they were first seen.
    statuses: Vec<(TaskState, f64)>,
}

impl TaskRecord {
    fn observe(&mut self, state: TaskState) {
        if state != TaskState::TaskStaging && self.statuses.last().map(|s| s.0) != Some(state) {
            self.statuses.push((state, now_secs()));
        }
    }
}

/// Where a session may run: the task's sandbox.
#[derive(Debug, Clone)]
pub(crate) struct TaskContainer {
    /// The task's sandbox directory.
    pub(crate) sandbox: PathBuf,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Whether a task counts as active on its agent (not terminal, lost or unreachable).
fn is_active(state: TaskState) -> bool {
    !state.is_failed_or_lost()
}

/// Whether `id` can name a directory (Mesos refuses ids with `/` and `.`/`..` ids).
fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains('/') && !id.contains('\0')
}

/// `n` of a libprocess id `slave(n)` (1-based).
pub(crate) fn agent_number(process: &str) -> Option<usize> {
    process
        .strip_prefix("slave(")?
        .strip_suffix(')')?
        .parse()
        .ok()
        .filter(|n| *n >= 1)
}

/// The id of agent `n` (1-based, in the sim's order).
pub(crate) fn agent_id(sim: &SimCluster, n: usize) -> Option<String> {
    sim.agents()
        .into_iter()
        .nth(n.checked_sub(1)?)
        .map(|(id, _, _)| id)
}

fn write_file(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!("double: cannot write {}: {e}", path.display());
    }
}

impl Agents {
    /// Agents' state below `root` (canonical, existing), listening on `addr`.
    pub(crate) fn new(root: PathBuf, addr: SocketAddr) -> Self {
        Self {
            root,
            addr,
            sandboxes: Mutex::new(Sandboxes::default()),
            sessions: agent_exec::Sessions::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sandboxes> {
        self.sandboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The libprocess pid of agent `n`.
    pub(crate) fn pid(&self, n: usize) -> String {
        format!("slave({n})@{}", self.addr)
    }

    /// Remembers a subscribed framework's name (for the agents' state).
    pub(crate) fn framework_subscribed(&self, id: &str, name: &str) {
        self.lock()
            .frameworks
            .insert(id.to_owned(), name.to_owned());
    }

    /// Makes sandboxes for tasks launched since the last call and notes state changes.
    /// Returns every task's current state.
    pub(crate) fn sync(&self, sim: &SimCluster) -> HashMap<String, TaskState> {
        let views = sim.tasks();
        let states: HashMap<String, TaskState> = views
            .iter()
            .map(|v| (v.info.task_id.value.clone(), v.state))
            .collect();
        let framework = sim.framework_id().unwrap_or_default();
        let mut s = self.lock();
        for v in &views {
            let id = &v.info.task_id.value;
            if let Some(record) = s.tasks.get_mut(id) {
                record.observe(v.state);
                continue;
            }
            if ![id, &v.agent, &framework, &v.executor]
                .iter()
                .all(|i| is_safe_id(i))
            {
                tracing::warn!("double: no sandbox for task {id:?}: an id cannot name a directory");
                continue;
            }
            let current = s.runs.iter().rposition(|r| {
                r.agent == v.agent && r.framework == framework && r.executor == v.executor
            });
            let run = match current {
                Some(i)
                    if s.runs[i]
                        .tasks
                        .iter()
                        .any(|t| states.get(t).is_some_and(|st| is_active(*st))) =>
                {
                    i
                }
                _ => {
                    let container = uuid::Uuid::new_v4().to_string();
                    let dir = self
                        .root
                        .join("slaves")
                        .join(&v.agent)
                        .join("frameworks")
                        .join(&framework)
                        .join("executors")
                        .join(&v.executor)
                        .join("runs")
                        .join(&container);
                    if let Err(e) = std::fs::create_dir_all(&dir) {
                        tracing::warn!("double: cannot make {}: {e}", dir.display());
                    }
                    write_file(&dir.join("stdout"), "");
                    write_file(&dir.join("stderr"), "");
                    s.runs.push(ExecutorRun {
                        agent: v.agent.clone(),
                        framework: framework.clone(),
                        executor: v.executor.clone(),
                        name: v
                            .info
                            .executor
                            .as_ref()
                            .and_then(|e| e.name.clone())
                            .unwrap_or_default(),
                        container,
                        dir,
                        tasks: Vec::new(),
                    });
                    s.runs.len() - 1
                }
            };
            let task_dir = s.runs[run].dir.join("tasks").join(id);
            if let Err(e) = std::fs::create_dir_all(&task_dir) {
                tracing::warn!("double: cannot make {}: {e}", task_dir.display());
            }
            let command = v
                .info
                .command
                .as_ref()
                .map(|c| c.value.as_str())
                .unwrap_or_default();
            write_file(
                &task_dir.join("stdout"),
                &format!("Received task {id}\n{command}\n"),
            );
            write_file(
                &task_dir.join("stderr"),
                &format!("Starting {}\n", v.info.name),
            );
            s.runs[run].tasks.push(id.clone());
            let mut record = TaskRecord {
                run,
                name: v.info.name.clone(),
                container: uuid::Uuid::new_v4().to_string(),
                statuses: Vec::new(),
            };
            record.observe(v.state);
            s.tasks.insert(id.clone(), record);
        }
        states
    }

    /// The active task of agent `agent` whose container is `container`.
    ///
    /// # Errors
    /// 404 for a container no task of the agent has, 400 for a task that is not active.
    pub(crate) fn task_container(
        &self,
        sim: &SimCluster,
        agent: &str,
        container: &str,
    ) -> Result<TaskContainer, (StatusCode, String)> {
        let states = self.sync(sim);
        let s = self.lock();
        let found = s.tasks.iter().find(|(_, t)| {
            t.container == container && s.runs.get(t.run).is_some_and(|r| r.agent == agent)
        });
        let Some((id, task)) = found else {
            return Err((
                StatusCode::NOT_FOUND,
                format!("Parent container {container} is not a task's container on this agent"),
            ));
        };
        if !states.get(id).is_some_and(|st| is_active(*st)) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Parent container {container} (task {id}) is not running"),
            ));
        }
        Ok(TaskContainer {
            sandbox: s.runs[task.run].dir.join("tasks").join(id),
        })
    }

    /// `GET /master/slaves`.
    pub(crate) fn slaves(&self, sim: &SimCluster) -> Value {
        let slaves: Vec<Value> = sim
            .agents()
            .into_iter()
            .zip(sim.agent_specs())
            .enumerate()
            .map(|(i, ((id, up, drained), spec))| {
                json!({
                    "id": id,
                    "pid": self.pid(i + 1),
                    "hostname": spec.hostname,
                    "port": self.addr.port(),
                    "active": up && !drained,
                })
            })
            .collect();
        json!({ "slaves": slaves })
    }

    /// `GET /slave(n)/state`, or `None` for an agent that does not exist.
    pub(crate) fn state(&self, sim: &SimCluster, n: usize) -> Option<Value> {
        let spec = sim.agent_specs().into_iter().nth(n.checked_sub(1)?)?;
        let states = self.sync(sim);
        let s = self.lock();
        let mut frameworks: Vec<(String, Vec<Value>, Vec<Value>)> = Vec::new();
        for run in s.runs.iter().filter(|r| r.agent == spec.id) {
            let mut active = Vec::new();
            let mut completed = Vec::new();
            for id in &run.tasks {
                let Some(task) = s.tasks.get(id) else {
                    continue;
                };
                let state = states.get(id).copied().unwrap_or(TaskState::TaskLost);
                let container_status = json!({"container_id": {
                    "value": task.container,
                    "parent": {"value": run.container},
                }});
                let statuses: Vec<Value> = task
                    .statuses
                    .iter()
                    .map(|(st, at)| {
                        json!({
                            "state": st.as_str(),
                            "timestamp": at,
                            "container_status": container_status,
                        })
                    })
                    .collect();
                let t = json!({
                    "id": id,
                    "name": task.name,
                    "framework_id": run.framework,
                    "executor_id": run.executor,
                    "slave_id": run.agent,
                    "state": state.as_str(),
                    "statuses": statuses,
                });
                if is_active(state) {
                    active.push(t);
                } else {
                    completed.push(t);
                }
            }
            let has_active = !active.is_empty();
            let executor = json!({
                "id": run.executor,
                "name": run.name,
                "container": run.container,
                "directory": run.dir.to_string_lossy(),
                "type": "DEFAULT",
                "tasks": active,
                "queued_tasks": [],
                "completed_tasks": completed,
            });
            let index = match frameworks.iter().position(|f| f.0 == run.framework) {
                Some(i) => i,
                None => {
                    frameworks.push((run.framework.clone(), Vec::new(), Vec::new()));
                    frameworks.len() - 1
                }
            };
            if has_active {
                frameworks[index].1.push(executor);
            } else {
                frameworks[index].2.push(executor);
            }
        }
        let frameworks: Vec<Value> = frameworks
            .into_iter()
            .map(|(id, executors, completed)| {
                json!({
                    "id": id,
                    "name": s.frameworks.get(&id).cloned().unwrap_or_default(),
                    "executors": executors,
                    "completed_executors": completed,
                })
            })
            .collect();
        Some(json!({
            "id": spec.id,
            "pid": self.pid(n),
            "hostname": spec.hostname,
            "version": "1.11.0",
            "frameworks": frameworks,
            "completed_frameworks": [],
        }))
    }
}

/// The routes of the agents' listener.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{process}/state", axum::routing::get(agent_state))
        .route(
            "/{process}/api/v1",
            axum::routing::post(agent_exec::operator_api),
        )
        .route("/files/browse", axum::routing::get(agent_files::browse))
        .route("/files/read", axum::routing::get(agent_files::read))
        .route("/files/download", axum::routing::get(agent_files::download))
        .with_state(shared)
}

async fn agent_state(
    State(shared): State<Arc<Shared>>,
    UrlPath(process): UrlPath<String>,
) -> Response {
    let state = shared
        .agents
        .as_ref()
        .zip(agent_number(&process))
        .and_then(|(agents, n)| agents.state(&shared.sim, n));
    match state {
        Some(state) => axum::Json(state).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("No process {process} on this agent"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libprocess_ids_name_agents_from_one() {
        assert_eq!(agent_number("slave(1)"), Some(1));
        assert_eq!(agent_number("slave(12)"), Some(12));
        assert_eq!(agent_number("slave(0)"), None);
        assert_eq!(agent_number("slave(x)"), None);
        assert_eq!(agent_number("master"), None);
    }

    #[test]
    fn ids_that_cannot_name_a_directory_are_refused() {
        assert!(is_safe_id("hello-0-server__1234"));
        assert!(!is_safe_id(".."));
        assert!(!is_safe_id("a/b"));
        assert!(!is_safe_id(""));
    }
}
