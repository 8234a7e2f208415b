//! The `local` backend: a cluster of pretend agents on this machine that run real processes.
//!
//! `berth run` embeds a [`LocalCluster`]: a handful of agents described by an agents file
//! (see [`agents`]), each offering its cpus, memory, disk, ports and MOUNT disks. Each pod
//! instance runs under its own `berth executor` process (see [`executor`]), which starts the
//! tasks as OS processes in sandbox directories, links persistent volumes in, runs health and
//! readiness checks, honours kill grace periods and reports status updates. Executors and
//! tasks outlive `berth run`: a restarted `berth run` reopens the cluster, reconnects to them
//! and carries on.
//!
//! ```text
//!  scheduler ──Call──▶ LocalCluster::send ─┐                   ┌─ allocator thread: offers every
//!            ◀─Event── EventStream ◀───────┤   Core (mutex)    │  allocation_interval and on change,
//!                                          ├─▶ state.json ◀────┤  heartbeats, update re-sends
//!  operator ─▶ LocalControl (stop/start/  ─┘   (write-ahead)   └─ one link thread per executor:
//!              drain/agents)                                      connect DIR/executor.sock,
//!                                                                 hello/update/idle ⇄ launch/kill/ack/shutdown
//!                                        spawn (setsid) ▼                  ▲
//!                                  berth executor --dir DIR ───────────────┘
//!                                    └─ sh -c <cmd> per task (own process group), checks
//! ```
//!
//! # On disk (`<data-dir>/cluster/`)
//!
//! ```text
//! lock                                  held while a LocalCluster is open (one berth run per data dir)
//! state.json                            frameworks, agents (up/down/drained), dynamic reservations
//!                                       and volumes, executors (pid, run, dir), tasks (latest status,
//!                                       unacknowledged updates)
//! agents/<agent>/volumes/<persistence-id>/          ROOT persistent volumes
//! agents/<agent>/mounts/disk0/                      default MOUNT disk (its volumes: <root>/<persistence-id>/)
//! agents/<agent>/executors/<executor-id>/
//!     launch.json                       what the executor runs (TaskInfos, volume paths, timings)
//!     executor.pid, executor.lock, executor.sock
//!     executor-state.json               every task's process group, latest and unacked statuses
//!     stdout, stderr                    the executor's own log
//!     tasks/<task-id>/{stdout,stderr}   the task sandbox (MESOS_SANDBOX) with volume symlinks
//! ```
//!
//! # Guarantees
//!
//! - **Write-ahead.** `state.json` (and an executor's `launch.json`) are written with
//!   temp-file + fsync + rename before a call returns `Ok`, before an executor is spawned and
//!   before anything is sent to the scheduler or an executor. A `kill -9` of `berth run` at any
//!   instant leaves a state the next [`LocalCluster::open`] continues from: reservations,
//!   volumes and running executors are adopted.
//! - **Status updates** carrying a `uuid` are re-sent (the oldest unacknowledged one per task,
//!   later ones held behind it, as Mesos agents do) until the scheduler acknowledges them, also
//!   across restarts: the executor persists each status before sending it and re-sends what is
//!   unacknowledged on every reconnect.
//! - **Executor death** (e.g. `kill -9`): the processes left in its session are killed, every
//!   unfinished task is reported `TASK_FAILED` (`REASON_EXECUTOR_TERMINATED`) and
//!   [`Event::Failure`](crate::Event::Failure) carries the executor's wait status.
//! - **`stop_agent`** is "the machine lost power": its executors and all their processes are
//!   SIGKILLed, its offer is rescinded, its tasks are reported `TASK_UNREACHABLE`. Reservations
//!   and volume data stay. **`start_agent`** brings it back: the old tasks are reported
//!   `TASK_GONE` (`REASON_AGENT_RESTARTED`) and its resources, reservations and volumes are
//!   offered again. **`drain_agent`** kills everything on the agent, reports
//!   `TASK_GONE_BY_OPERATOR` and never offers the agent again.
//! - **Teardown** kills the framework's executors (gracefully, SIGKILL after a deadline) and
//!   retires its id; reservations and volumes stay, as in Mesos.
//!
//! # Ports shared with the other local clusters of this host
//!
//! Every `berth run` on this host offers ports around the ones the others hold and around
//! the ones some process listens on (see [`ports`](self) — `$BERTH_PORT_CLAIMS_DIR`, else
//! `<tmp>/berth-ports-<uid>`): two services side by side with the same agents file never
//! get the same port.
//!
//! # Caveats
//!
//! - Resources are bookkeeping: cpu and memory limits are not enforced, and all agents share
//!   this machine's network and filesystem.
//! - One subscription at a time: a new `subscribe` (of any framework) ends the previous
//!   event stream. Offers go to the subscribed framework only.
//! - One outstanding offer per agent: resources freed while an agent's offer is outstanding
//!   are offered as soon as that offer is accepted or declined (schedulers answer every
//!   offer). What remains of an accepted offer is filtered for the ACCEPT's
//!   `refuse_seconds` (none with 0); a DECLINE with 0 is re-offered at the next allocation
//!   round, not in a loop.
//! - An ACCEPT that fails validation returns [`ClusterError::InvalidCall`], consumes its
//!   offers and reports its tasks `TASK_DROPPED` (no uuid), as a Mesos master would.
//! - A kill sent while `berth run` dies before the executor received it is lost (schedulers
//!   retry kills until a terminal status arrives).
//! - A task's process group is recorded just after it starts; an executor dying in that
//!   instant leaves it to the session sweep (every process of the executor's session is
//!   killed), which misses only processes that called `setsid` themselves.
//! - If the state file cannot be written, calls fail with [`ClusterError::State`]; events
//!   from executors are still processed and the failure is logged.

pub mod agents;
mod core;
pub mod executor;
pub(crate) mod fsutil;
mod gc;
mod link;
mod ports;
mod resources;
mod state;
pub mod template;
pub mod wire;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_mesos::{Range, TaskState};
use serde::Serialize;
use tracing::error;

pub use self::agents::{
    AgentAttribute, AgentSpec, AttributeValue, MountSpec, PortRange, StaticReservation,
    default_agents, load_agents_file, parse_agents,
};
use self::core::{Core, Inner};
pub use self::state::{AgentState, ExecutorState};
use crate::protocol::{Call, Cluster, ClusterError, EventStream, FrameworkInfo};

/// How to open a [`LocalCluster`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The data directory; the cluster lives in `<data_dir>/cluster/`.
    pub data_dir: PathBuf,
    /// The agents (from [`load_agents_file`] or [`default_agents`]).
    pub agents: Vec<AgentSpec>,
    /// The executor program (`berth`; tests use their own binary).
    pub executor_program: PathBuf,
    /// Arguments before `--dir <executor-dir>` (`["executor"]` for `berth executor`).
    pub executor_args: Vec<String>,
    /// Time between allocation rounds (offers are also sent right away when something
    /// changes). Default 1 s.
    pub allocation_interval: Duration,
    /// Time before an unacknowledged update is sent to the scheduler again. Default 10 s.
    pub update_retry_interval: Duration,
    /// Time between heartbeats. Default 15 s.
    pub heartbeat_interval: Duration,
    /// Time before an executor re-sends unacknowledged updates to the agent. Default 5 s.
    pub executor_resend_interval: Duration,
    /// How long an executor whose tasks are all terminal waits for an agent before it exits
    /// with updates still unacknowledged. Default 1 h.
    pub executor_orphan_timeout: Duration,
    /// Kill grace period when neither the kill nor the task's kill policy gives one.
    /// Default 3 s.
    pub default_kill_grace: Duration,
    /// A task's `stdout` and `stderr` are paged once they pass this size: the file moves to
    /// `stdout.1` (older pages to `.2`, …) and starts again empty. Default 2 MiB.
    pub task_log_page_bytes: u64,
    /// How many earlier pages of each are kept. Default 5.
    pub task_log_pages: u32,
    /// Finished sandboxes kept per task name (the newest). Default 5.
    pub sandboxes_kept_per_task: usize,
    /// Most bytes all finished sandboxes together may take; the oldest go first. Default
    /// 1 GiB.
    pub sandbox_disk_budget: u64,
    /// Time between two collections of finished sandboxes. Default 60 s.
    pub sandbox_gc_interval: Duration,
    /// Where the local clusters of this host share their port claims: `None` for
    /// `$BERTH_PORT_CLAIMS_DIR`, else `<tmp>/berth-ports-<uid>`. Clusters with different
    /// directories do not see each other's claims (tests that run many clusters at once).
    pub port_claims_dir: Option<PathBuf>,
}

impl LocalConfig {
    /// A configuration with the default agents and timings.
    #[must_use]
    pub fn new(data_dir: impl Into<PathBuf>, executor_program: impl Into<PathBuf>) -> Self {
        LocalConfig {
            data_dir: data_dir.into(),
            agents: default_agents(),
            executor_program: executor_program.into(),
            executor_args: vec!["executor".to_owned()],
            allocation_interval: Duration::from_secs(1),
            update_retry_interval: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            executor_resend_interval: Duration::from_secs(5),
            executor_orphan_timeout: Duration::from_secs(3600),
            default_kill_grace: Duration::from_secs(3),
            task_log_page_bytes: 2 << 20,
            task_log_pages: 5,
            sandboxes_kept_per_task: 5,
            sandbox_disk_budget: 1 << 30,
            sandbox_gc_interval: Duration::from_secs(60),
            port_claims_dir: None,
        }
    }
}

/// Totals of one kind of resources on an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSummary {
    /// CPUs.
    pub cpus: f64,
    /// Memory (MB).
    pub mem: f64,
    /// Disk (MB), ROOT and MOUNT.
    pub disk: f64,
    /// GPUs.
    pub gpus: f64,
    /// Port ranges.
    pub ports: Vec<Range>,
}

/// A persistent volume on an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeView {
    /// Persistence id.
    pub persistence_id: String,
    /// Path inside the sandboxes.
    pub container_path: String,
    /// Size in MB.
    pub size: f64,
    /// `ROOT` or `MOUNT`.
    pub kind: String,
    /// Role it is reserved for.
    pub role: String,
    /// Where its data is.
    pub path: PathBuf,
}

/// A task as an operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    /// Task id.
    pub task_id: String,
    /// Task name.
    pub name: String,
    /// Latest state.
    pub state: TaskState,
}

/// One run of a task, active or finished, with where its sandbox is: what `GET /v1/tasks`
/// lists and what the sandbox file routes read.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    /// Task id.
    pub task_id: String,
    /// Task name.
    pub name: String,
    /// Framework.
    pub framework_id: String,
    /// Agent id.
    pub agent: String,
    /// The agent's hostname.
    pub hostname: String,
    /// The user the task runs as.
    pub user: String,
    /// Latest state.
    pub state: TaskState,
    /// When the latest status was produced (seconds since the epoch).
    pub updated: f64,
    /// The sandbox directory.
    pub sandbox: PathBuf,
    /// The host directories of the persistent volumes linked into the sandbox: reading
    /// through those links stays inside the task.
    pub volume_dirs: Vec<PathBuf>,
}

/// Where a command runs inside a running task (`berth task exec`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExecTarget {
    /// The task's sandbox (the command's working directory).
    pub sandbox: PathBuf,
    /// The task's environment.
    pub env: Vec<(String, String)>,
    /// The user and group the task runs as, when not this process's.
    pub user: Option<(u32, u32)>,
}

/// An executor as an operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutorView {
    /// Executor id.
    pub executor_id: String,
    /// Framework.
    pub framework_id: String,
    /// Process id, once started.
    pub pid: Option<i32>,
    /// Lifecycle state.
    pub state: ExecutorState,
    /// Its directory (sandboxes under `tasks/`).
    pub dir: PathBuf,
    /// Its tasks.
    pub tasks: Vec<TaskView>,
}

/// An agent as an operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Hostname.
    pub hostname: String,
    /// Zone.
    pub zone: Option<String>,
    /// Region.
    pub region: String,
    /// Up, down or drained.
    pub state: AgentState,
    /// Everything the agent has.
    pub total: ResourceSummary,
    /// The part that is reserved (statically or dynamically).
    pub reserved: ResourceSummary,
    /// The part live tasks and executors use.
    pub used: ResourceSummary,
    /// Persistent volumes.
    pub volumes: Vec<VolumeView>,
    /// Live executors.
    pub executors: Vec<ExecutorView>,
}

/// Runs `f` on the core, then starts the link threads it asked for and wakes the allocator.
pub(crate) fn with_core<R>(inner: &Arc<Inner>, f: impl FnOnce(&mut Core) -> R) -> R {
    let (r, links) = {
        let mut core = inner.core.lock().unwrap_or_else(PoisonError::into_inner);
        let r = f(&mut core);
        (r, core.take_links())
    };
    if !inner.closed.load(Ordering::SeqCst) {
        for k in links {
            link::start(inner, k);
        }
    }
    inner.wake.notify_all();
    r
}

/// The local cluster backend. Dropping it stops its threads but leaves executors and tasks
/// running (as a dying `berth run` would); reopening adopts them.
pub struct LocalCluster {
    inner: Arc<Inner>,
    allocator: Option<JoinHandle<()>>,
    _lock: File,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster").finish_non_exhaustive()
    }
}

impl LocalCluster {
    /// Opens (or creates) the cluster in `<data_dir>/cluster/`, adopts running executors and
    /// starts the allocator.
    ///
    /// # Errors
    /// Invalid agents, another `berth run` holding the data directory, unreadable state, or
    /// reservations that no longer fit the agents file.
    pub fn open(config: LocalConfig) -> Result<LocalCluster, ClusterError> {
        agents::validate_specs(&config.agents)?;
        let root = config.data_dir.join("cluster");
        fsutil::mkdirs(&root)?;
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fsutil::state_err(&lock_path, e))?;
        // A process killed a moment ago may still hold the lock through a child caught
        // between fork and exec (the descriptor closes on exec): wait a little for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while let Err(e) = lock.try_lock() {
            if std::time::Instant::now() >= deadline {
                return Err(fsutil::state_err(
                    &lock_path,
                    format!("the data directory is in use by another berth run ({e})"),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let core = Core::load(config, std::sync::Weak::new())?;
        let inner = Arc::new(Inner {
            core: Mutex::new(core),
            wake: Condvar::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            exits: Mutex::new(std::collections::HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&inner);
        let taken_down = with_core(&inner, |c| {
            c.set_inner(weak);
            let taken_down = c.adopt();
            c.finish().map(|()| taken_down)
        })?;
        for down in taken_down {
            down.wait();
            with_core(&inner, |c| c.finish_take_down(down))?;
        }
        let i = inner.clone();
        let allocator = std::thread::Builder::new()
            .name("berth-allocator".to_owned())
            .spawn(move || allocator(&i))
            .map_err(|e| ClusterError::Backend(format!("cannot start the allocator: {e}")))?;
        let i = inner.clone();
        let listening = inner
            .core
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .listening_ports();
        ports::refresh_listening(&listening);
        let watcher = std::thread::Builder::new()
            .name("berth-ports".to_owned())
            .spawn(move || {
                // Every 2 s, checking for the close every 200 ms.
                let mut ticks = 0u32;
                while !i.closed.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        ports::refresh_listening(&listening);
                    }
                }
            })
            .map_err(|e| ClusterError::Backend(format!("cannot start the port watcher: {e}")))?;
        inner
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(watcher);
        let i = inner.clone();
        let gc = std::thread::Builder::new()
            .name("berth-sandbox-gc".to_owned())
            .spawn(move || sandbox_gc(&i))
            .map_err(|e| ClusterError::Backend(format!("cannot start the sandbox GC: {e}")))?;
        inner
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(gc);
        Ok(LocalCluster {
            inner,
            allocator: Some(allocator),
            _lock: lock,
        })
    }

    /// A handle for operator controls, usable from any thread.
    #[must_use]
    pub fn control(&self) -> LocalControl {
        LocalControl {
            inner: self.inner.clone(),
        }
    }
}

/// Collects finished sandboxes every `sandbox_gc_interval` (see [`gc`]); the runs are read
/// under the core's lock, the disk is walked without it.
fn sandbox_gc(inner: &Arc<Inner>) {
    loop {
        let (runs, keep, budget, interval) = {
            let core = inner.core.lock().unwrap_or_else(PoisonError::into_inner);
            let (keep, budget, interval) = core.sandbox_gc_settings();
            (core.task_runs(), keep, budget, interval)
        };
        gc::collect(&runs, keep, budget);
        let until = Instant::now() + interval;
        while Instant::now() < until {
            if inner.closed.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn allocator(inner: &Arc<Inner>) {
    let mut guard = inner.core.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        let next = guard.tick(now);
        let links = guard.take_links();
        if !links.is_empty() {
            drop(guard);
            for k in links {
                link::start(inner, k);
            }
            guard = inner.core.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let wait = next
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(5), Duration::from_millis(500));
        guard = match inner.wake.wait_timeout(guard, wait) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        };
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        {
            let mut core = self
                .inner
                .core
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            core.close();
        }
        self.inner.wake.notify_all();
        if let Some(h) = self.allocator.take()
            && h.join().is_err()
        {
            error!("the allocator thread panicked");
        }
        let threads = std::mem::take(
            &mut *self
                .inner
                .threads
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for h in threads {
            let _ = h.join();
        }
    }
}

impl Cluster for LocalCluster {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        with_core(&self.inner, |c| {
            let r = c.subscribe(framework);
            let f = c.finish();
            let rx = r?;
            f.map(|()| rx)
        })
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        with_core(&self.inner, |c| {
            let r = c.send(call);
            let f = c.finish();
            r.and(f)
        })
    }
}

/// Operator controls of a [`LocalCluster`]: cheap, cloneable, thread-safe.
#[derive(Clone)]
pub struct LocalControl {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalControl").finish_non_exhaustive()
    }
}

impl LocalControl {
    fn open(&self) -> Result<(), ClusterError> {
        if self.inner.closed.load(Ordering::SeqCst) {
            Err(ClusterError::Closed)
        } else {
            Ok(())
        }
    }

    /// Every task run the cluster remembers (active ones and the most recent finished ones
    /// of every agent), oldest update first; empty once closed.
    #[must_use]
    pub fn task_runs(&self) -> Vec<TaskRun> {
        if self.open().is_err() {
            return Vec::new();
        }
        let mut runs = with_core(&self.inner, |c| c.task_runs());
        // Who each task runs as is in its executor's launch file; read outside the lock.
        let mut launches: BTreeMap<PathBuf, Option<wire::LaunchFile>> = BTreeMap::new();
        for run in &mut runs {
            let Some(dir) = run.sandbox.parent().and_then(Path::parent) else {
                continue;
            };
            let launch = launches.entry(dir.to_path_buf()).or_insert_with(|| {
                fsutil::read_json::<wire::LaunchFile>(&dir.join(wire::LAUNCH_FILE))
                    .ok()
                    .flatten()
            });
            if let Some(launch) = launch {
                if let Some(user) = launch
                    .tasks
                    .iter()
                    .find(|t| t.task_id.value == run.task_id)
                    .and_then(|t| t.command.as_ref()?.user.clone())
                    .or_else(|| launch.default_user.clone())
                {
                    run.user = user;
                }
                run.volume_dirs = launch.volumes.values().cloned().collect();
            }
        }
        runs
    }

    /// Where a command runs inside the task `task_id`: its sandbox, environment and user.
    ///
    /// # Errors
    /// [`ClusterError::InvalidCall`] naming the task when it is unknown or not running, or
    /// when its launch file cannot be read.
    pub fn exec_target(&self, task_id: &str) -> Result<ExecTarget, ClusterError> {
        self.open()?;
        let Some(run) = self.task_runs().into_iter().find(|r| r.task_id == task_id) else {
            return Err(ClusterError::InvalidCall(format!(
                "Task {task_id} not found"
            )));
        };
        if run.state != TaskState::TaskRunning {
            return Err(ClusterError::InvalidCall(format!(
                "Task {task_id} is not running ({}): a command can only run inside a running task",
                run.state.as_str()
            )));
        }
        let executor_dir = run
            .sandbox
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let launch = fsutil::read_json::<wire::LaunchFile>(&executor_dir.join(wire::LAUNCH_FILE))?
            .ok_or_else(|| {
                ClusterError::InvalidCall(format!("the launch file of task {task_id} is gone"))
            })?;
        let info = launch
            .tasks
            .iter()
            .find(|t| t.task_id.value == task_id)
            .ok_or_else(|| {
                ClusterError::InvalidCall(format!("task {task_id} is not in its launch file"))
            })?;
        let (env, user) = executor::exec_environment(&launch, info, &run.sandbox);
        Ok(ExecTarget {
            sandbox: run.sandbox,
            env: env.into_iter().collect(),
            user,
        })
    }

    /// Every agent with its state, resources, volumes and executors (empty once closed).
    #[must_use]
    pub fn agents(&self) -> Vec<AgentView> {
        if self.open().is_err() {
            return Vec::new();
        }
        with_core(&self.inner, |c| c.agent_views())
    }

    /// The machine "goes down": its executors and their processes are SIGKILLed, its offer
    /// is rescinded and its tasks are reported `TASK_UNREACHABLE`. Reservations and volumes
    /// stay. Stopping a stopped agent does nothing.
    ///
    /// # Errors
    /// [`ClusterError::UnknownAgent`] (listing the known ids), a drained agent, or a state
    /// write failure.
    pub fn stop_agent(&self, id: &str) -> Result<(), ClusterError> {
        self.open()?;
        let down = with_core(&self.inner, |c| c.stop_agent(id))?;
        self.finish_take_down(down)
    }

    /// Waits for the processes of an agent being taken down — without the core's lock, so the
    /// scheduler's calls and the allocator go on meanwhile — then reports its tasks.
    fn finish_take_down(&self, down: Option<core::TakeDown>) -> Result<(), ClusterError> {
        let Some(down) = down else { return Ok(()) };
        down.wait();
        with_core(&self.inner, |c| c.finish_take_down(down))
    }

    /// The machine comes back with its reservations and volumes; tasks that ran on it are
    /// reported `TASK_GONE` and its resources are offered again.
    ///
    /// # Errors
    /// [`ClusterError::UnknownAgent`], a drained agent, or a state write failure.
    pub fn start_agent(&self, id: &str) -> Result<(), ClusterError> {
        self.open()?;
        with_core(&self.inner, |c| c.start_agent(id))
    }

    /// Decommissions the agent: kills its tasks, reports `TASK_GONE_BY_OPERATOR` and never
    /// offers it again.
    ///
    /// # Errors
    /// [`ClusterError::UnknownAgent`] or a state write failure.
    pub fn drain_agent(&self, id: &str) -> Result<(), ClusterError> {
        self.open()?;
        let down = with_core(&self.inner, |c| c.drain_agent(id))?;
        self.finish_take_down(down)
    }
}
