//! `berth executor --dir DIR`: the per-pod-instance supervisor process.
//!
//! The local agent writes `DIR/launch.json` and starts this process in its own session. It
//! runs every task of the pod instance as `sh -c <command>` in its own process group, inside
//! a sandbox `DIR/tasks/<task-id>/` (working directory, `MESOS_SANDBOX`, `stdout` and
//! `stderr` files), and reports what happens to the agent over `DIR/executor.sock`.
//!
//! ```text
//!  launch.json ─▶ lock DIR, write executor.pid, listen on executor.sock
//!  per task:  TASK_STARTING ─▶ sandbox, volume symlinks, fetch URIs, render config templates
//!             ─▶ spawn sh -c (process group, user) ─▶ record pgid ─▶ TASK_RUNNING
//!             ─▶ health check loop (kill after N failures ─▶ TASK_FAILED healthy=false)
//!             ─▶ readiness loop (TASK_RUNNING with check_status on every exit-code change)
//!             ─▶ exit: TASK_FINISHED (0) / TASK_FAILED, or kill: SIGTERM, grace, SIGKILL ─▶ TASK_KILLED
//!  every status: persisted in executor-state.json, then sent; re-sent until acknowledged
//!  all tasks terminal + acknowledged ─▶ "idle" ─▶ agent answers "shutdown" ─▶ exit
//! ```
//!
//! # Guarantees and caveats
//!
//! - A status is on disk before it is sent, with the task's process group id, so an agent that
//!   restarts (or finds this process dead) learns every unacknowledged status and can kill
//!   what is left running.
//! - The executor keeps running without an agent; tasks keep running. It exits on its own only
//!   when all tasks are terminal and no agent has connected for the orphan timeout of the
//!   launch file.
//! - Tasks run as their CommandInfo `user` (else the framework's user) when the executor runs
//!   as root and the user exists; the sandbox (recursively) and each volume's top directory
//!   are then chowned to that user. Otherwise tasks run as the executor's user.
//! - `CommandInfo.shell = false` is also run through `sh -c` (`arguments` are not modelled).
//! - URIs: `http://`, `file://` and plain paths; `https://` is refused. A URI is saved at its
//!   `output_file` (relative to the sandbox) or, without one, as `config-templates/<last
//!   segment>` when its path contains `/v1/artifacts/template/` and as its last path segment
//!   otherwise. `extract` unpacks tar archives with `tar`, `executable` sets mode 0755.
//! - The task's environment is `PATH` (and `LANG`, `LC_ALL`, `TZ`, `HOME` when set), the
//!   TaskInfo's variables, then `MESOS_SANDBOX`, `MESOS_TASK_ID`, `MESOS_EXECUTOR_ID`,
//!   `MESOS_AGENT_ID`, `MESOS_FRAMEWORK_ID`, `MESOS_CONTAINER_IP=127.0.0.1`. Checks get the
//!   same environment plus their own CommandInfo's variables.

mod fetch;
mod task;

pub(crate) use task::exec_environment;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use berth_mesos::{
    CheckStatusInfo, CommandCheckStatus, StatusSource, TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::fsutil::{self, new_status_uuid, now_secs, read_json, write_atomic};
use super::wire::{
    AgentMessage, ExecutorMessage, ExecutorStateFile, LAUNCH_FILE, LOCK_FILE, LaunchFile, PID_FILE,
    PidFile, SOCKET_FILE, STATE_FILE, TaskReport,
};

/// Writes one line to the executor's own stderr (its log).
macro_rules! elog {
    ($($arg:tt)*) => {
        eprintln!("{:.3} berth-executor[{}]: {}", $crate::local::fsutil::now_secs(), std::process::id(), format!($($arg)*))
    };
}

/// Runs the executor. `args` are the arguments after the `executor` subcommand:
/// `--dir DIR` (or `--dir=DIR`); a leading `executor` is ignored.
///
/// Exit codes: 0 after a clean shutdown, 1 when the executor could not run (the reason is on
/// stderr), 2 for bad arguments.
#[must_use]
pub fn run(args: &[String]) -> ExitCode {
    let dir = match parse_args(args) {
        Ok(d) => d,
        Err(m) => {
            eprintln!("berth executor: {m}\nusage: berth executor --dir <executor-dir>");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            elog!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(main(dir)) {
        Ok(()) => {
            elog!("exiting");
            ExitCode::SUCCESS
        }
        Err(e) => {
            elog!("{e}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(args: &[String]) -> Result<PathBuf, String> {
    let mut it = args.iter().peekable();
    if it.peek().is_some_and(|a| a.as_str() == "executor") {
        it.next();
    }
    let mut dir = None;
    while let Some(a) = it.next() {
        if a == "--dir" {
            dir = Some(it.next().ok_or("--dir needs a directory")?.clone());
        } else if let Some(d) = a.strip_prefix("--dir=") {
            dir = Some(d.to_owned());
        } else {
            return Err(format!("unexpected argument `{a}`"));
        }
    }
    let dir = PathBuf::from(dir.ok_or("--dir is required")?);
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}

/// A kill request for a task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillReq {
    /// Grace period override.
    pub grace: Option<Duration>,
}

pub(crate) struct TaskCtl {
    pub kill_tx: mpsc::UnboundedSender<KillReq>,
    pub terminal: bool,
    pub healthy: Option<bool>,
    pub check: Option<Option<i32>>,
}

pub(crate) struct Exec {
    pub dir: PathBuf,
    pub launch: LaunchFile,
    pub state: ExecutorStateFile,
    pub tasks: HashMap<String, TaskCtl>,
    out: Option<mpsc::UnboundedSender<String>>,
    writer: Option<tokio::task::JoinHandle<()>>,
    conn_gen: u64,
    shutting_down: bool,
    idle_sent: bool,
    disconnected_since: Option<Instant>,
}

pub(crate) type Shared = Arc<Mutex<Exec>>;

pub(crate) fn lock(sh: &Shared) -> std::sync::MutexGuard<'_, Exec> {
    sh.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) enum Ev {
    Msg(u64, AgentMessage),
    Closed(u64),
    TaskDone,
}

impl Exec {
    fn persist(&self) {
        match serde_json::to_vec_pretty(&self.state) {
            Ok(bytes) => {
                if let Err(e) = write_atomic(&self.dir.join(STATE_FILE), &bytes) {
                    elog!("cannot write {STATE_FILE}: {e}");
                }
            }
            Err(e) => elog!("cannot encode the state: {e}"),
        }
    }

    fn send(&mut self, msg: &ExecutorMessage) {
        let Some(out) = &self.out else { return };
        match serde_json::to_string(msg) {
            Ok(mut line) => {
                line.push('\n');
                if out.send(line).is_err() {
                    self.out = None;
                }
            }
            Err(e) => elog!("cannot encode a message: {e}"),
        }
    }
}

/// Records a new status for `task` (persisted first), then sends it.
pub(crate) fn report(
    sh: &Shared,
    task: &str,
    state: TaskState,
    message: impl Into<String>,
    reason: Option<&str>,
) {
    let mut ex = lock(sh);
    let (healthy, check) = match ex.tasks.get(task) {
        Some(c) if c.terminal => return,
        Some(c) => (c.healthy, c.check),
        None => (None, None),
    };
    let status = TaskStatus {
        task_id: TaskId::new(task),
        state,
        message: Some(message.into()),
        source: Some(StatusSource::SourceExecutor),
        reason: reason.map(str::to_owned),
        agent_id: Some(ex.launch.agent_id.clone()),
        executor_id: Some(ex.launch.executor.executor_id.clone()),
        timestamp: now_secs(),
        uuid: Some(new_status_uuid()),
        healthy,
        check_status: check.map(|c| CheckStatusInfo {
            kind: "COMMAND".to_owned(),
            command: Some(CommandCheckStatus { exit_code: c }),
        }),
    };
    if state.is_terminal()
        && let Some(c) = ex.tasks.get_mut(task)
    {
        c.terminal = true;
    }
    let entry = ex
        .state
        .tasks
        .entry(task.to_owned())
        .or_insert_with(|| TaskReport {
            task_id: TaskId::new(task),
            pgid: None,
            latest: None,
            unacked: Vec::new(),
        });
    entry.latest = Some(status.clone());
    entry.unacked.push(status.clone());
    ex.persist();
    elog!("task {task}: {}", state.as_str());
    ex.send(&ExecutorMessage::Update { status });
}

/// Records the process group of a task's command.
pub(crate) fn record_pgid(sh: &Shared, task: &str, pgid: i32) {
    let mut ex = lock(sh);
    if let Some(t) = ex.state.tasks.get_mut(task) {
        t.pgid = Some(pgid);
    }
    ex.persist();
}

async fn main(dir: PathBuf) -> Result<(), String> {
    let launch: LaunchFile = read_json(&dir.join(LAUNCH_FILE))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} does not exist", dir.join(LAUNCH_FILE).display()))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock_file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lock_file.try_lock() {
            Ok(()) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(format!(
                    "another executor holds {} ({e}); giving up",
                    lock_path.display()
                ));
            }
        }
    }
    let pid = std::process::id() as i32;
    fsutil::write_json(
        &dir.join(PID_FILE),
        &PidFile {
            pid,
            run: launch.run,
        },
    )
    .map_err(|e| e.to_string())?;
    elog!(
        "executor {} run {} starting in {}",
        launch.executor.executor_id,
        launch.run,
        dir.display()
    );
    let old: Option<ExecutorStateFile> = read_json(&dir.join(STATE_FILE)).ok().flatten();
    let state = match old {
        Some(s) if s.run == launch.run => s,
        Some(s) => {
            let archived = dir.join(format!("executor-state.run-{}.json", s.run));
            let _ = std::fs::rename(dir.join(STATE_FILE), archived);
            ExecutorStateFile {
                run: launch.run,
                tasks: Default::default(),
            }
        }
        None => ExecutorStateFile {
            run: launch.run,
            tasks: Default::default(),
        },
    };
    let std_listener = fsutil::unix_bind(&dir.join(SOCKET_FILE))
        .map_err(|e| format!("cannot listen on {}: {e}", dir.join(SOCKET_FILE).display()))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    let listener =
        tokio::net::UnixListener::from_std(std_listener).map_err(|e| format!("socket: {e}"))?;
    let resend = Duration::from_millis(launch.resend_interval_ms.max(50));
    let orphan_timeout = Duration::from_millis(launch.orphan_timeout_ms);
    let tasks_to_start = launch.tasks.clone();
    let sh: Shared = Arc::new(Mutex::new(Exec {
        dir: dir.clone(),
        launch,
        state,
        tasks: HashMap::new(),
        out: None,
        writer: None,
        conn_gen: 0,
        shutting_down: false,
        idle_sent: false,
        disconnected_since: Some(Instant::now()),
    }));
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Ev>();
    recover_previous(&sh);
    for t in tasks_to_start {
        start_task(&sh, t, &ev_tx);
    }
    let mut ticker = tokio::time::interval(resend);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gen_counter = 0u64;
    loop {
        tokio::select! {
            acc = listener.accept() => {
                match acc {
                    Ok((stream, _)) => {
                        gen_counter += 1;
                        connect(&sh, stream, gen_counter, &ev_tx);
                    }
                    Err(e) => elog!("accept failed: {e}"),
                }
            }
            ev = ev_rx.recv() => {
                match ev {
                    Some(Ev::Msg(g, msg)) => {
                        if g == lock(&sh).conn_gen {
                            handle(&sh, msg, &ev_tx);
                        }
                    }
                    Some(Ev::Closed(g)) => {
                        let mut ex = lock(&sh);
                        if g == ex.conn_gen {
                            elog!("agent disconnected");
                            ex.out = None;
                            ex.disconnected_since = Some(Instant::now());
                        }
                    }
                    Some(Ev::TaskDone) | None => {}
                }
            }
            _ = ticker.tick() => {
                resend_unacked(&sh);
                page_logs(&sh);
            }
        }
        if should_exit(&sh, orphan_timeout) {
            break;
        }
    }
    let writer = {
        let mut ex = lock(&sh);
        ex.out = None;
        ex.writer.take()
    };
    if let Some(w) = writer {
        let _ = tokio::time::timeout(Duration::from_secs(2), w).await;
    }
    let _ = std::fs::remove_file(dir.join(SOCKET_FILE));
    drop(lock_file);
    Ok(())
}

/// Tasks this run's state knows from an earlier process of the same run (it was started
/// again): finished ones stay finished, ones that were running are killed and failed, ones
/// that never started are started again.
fn recover_previous(sh: &Shared) {
    let reports: Vec<TaskReport> = lock(sh).state.tasks.values().cloned().collect();
    for r in reports {
        let id = r.task_id.value.clone();
        let terminal = r.latest.as_ref().is_some_and(|s| s.state.is_terminal());
        let (kill_tx, _) = mpsc::unbounded_channel();
        if terminal {
            lock(sh).tasks.insert(
                id,
                TaskCtl {
                    kill_tx,
                    terminal: true,
                    healthy: None,
                    check: None,
                },
            );
        } else if let Some(pg) = r.pgid {
            fsutil::signal_group(pg, nix::sys::signal::Signal::SIGKILL);
            lock(sh).tasks.insert(
                id.clone(),
                TaskCtl {
                    kill_tx,
                    terminal: false,
                    healthy: None,
                    check: None,
                },
            );
            report(
                sh,
                &id,
                TaskState::TaskFailed,
                "the executor restarted while the task ran",
                Some("REASON_EXECUTOR_TERMINATED"),
            );
        } else {
            lock(sh).state.tasks.remove(&id);
        }
    }
}

fn start_task(sh: &Shared, info: TaskInfo, ev_tx: &mpsc::UnboundedSender<Ev>) {
    let id = info.task_id.value.clone();
    let (kill_tx, kill_rx) = mpsc::unbounded_channel();
    {
        let mut ex = lock(sh);
        if ex.tasks.contains_key(&id) {
            return;
        }
        ex.tasks.insert(
            id.clone(),
            TaskCtl {
                kill_tx,
                terminal: false,
                healthy: None,
                check: None,
            },
        );
        ex.state.tasks.insert(
            id.clone(),
            TaskReport {
                task_id: info.task_id.clone(),
                pgid: None,
                latest: None,
                unacked: Vec::new(),
            },
        );
        ex.idle_sent = false;
        ex.persist();
    }
    tokio::spawn(task::supervise(sh.clone(), info, kill_rx, ev_tx.clone()));
}

fn connect(
    sh: &Shared,
    stream: tokio::net::UnixStream,
    generation: u64,
    ev_tx: &mpsc::UnboundedSender<Ev>,
) {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let evs = ev_tx.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(rd).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            match serde_json::from_str::<AgentMessage>(&l) {
                Ok(m) => {
                    if evs.send(Ev::Msg(generation, m)).is_err() {
                        break;
                    }
                }
                Err(e) => elog!("unreadable message from the agent ignored: {e}"),
            }
        }
        let _ = evs.send(Ev::Closed(generation));
    });
    let mut ex = lock(sh);
    elog!("agent connected");
    ex.out = Some(tx);
    if let Some(old) = ex.writer.replace(writer) {
        old.abort();
    }
    ex.conn_gen = generation;
    ex.disconnected_since = None;
    ex.idle_sent = false;
    let hello = ExecutorMessage::Hello {
        executor_id: ex.launch.executor.executor_id.clone(),
        run: ex.launch.run,
        pid: std::process::id() as i32,
        tasks: ex.state.tasks.values().cloned().collect(),
    };
    ex.send(&hello);
}

fn handle(sh: &Shared, msg: AgentMessage, ev_tx: &mpsc::UnboundedSender<Ev>) {
    match msg {
        AgentMessage::Launch { tasks } => {
            if lock(sh).shutting_down {
                elog!("launch refused: shutting down");
                return;
            }
            for t in tasks {
                start_task(sh, t, ev_tx);
            }
        }
        AgentMessage::Kill {
            task_id,
            grace_period_secs,
        } => {
            let ex = lock(sh);
            match ex.tasks.get(task_id.as_str()) {
                Some(c) if !c.terminal => {
                    elog!("kill of task {task_id} requested");
                    let _ = c.kill_tx.send(KillReq {
                        grace: grace_period_secs.and_then(secs),
                    });
                }
                Some(_) => elog!("kill of finished task {task_id} ignored"),
                None => elog!("kill of unknown task {task_id} ignored"),
            }
        }
        AgentMessage::Ack { task_id, uuid } => {
            let mut ex = lock(sh);
            if let Some(t) = ex.state.tasks.get_mut(task_id.as_str()) {
                let before = t.unacked.len();
                t.unacked
                    .retain(|s| s.uuid.as_deref() != Some(uuid.as_str()));
                if t.unacked.len() != before {
                    ex.persist();
                }
            }
        }
        AgentMessage::Shutdown { grace_period_secs } => {
            let mut ex = lock(sh);
            elog!("shutdown requested");
            ex.shutting_down = true;
            for c in ex.tasks.values() {
                if !c.terminal {
                    let _ = c.kill_tx.send(KillReq {
                        grace: grace_period_secs.and_then(secs),
                    });
                }
            }
        }
    }
}

pub(crate) fn secs(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

fn resend_unacked(sh: &Shared) {
    let mut ex = lock(sh);
    if ex.out.is_none() {
        return;
    }
    let pending: Vec<TaskStatus> = ex
        .state
        .tasks
        .values()
        .flat_map(|t| t.unacked.iter().cloned())
        .collect();
    for status in pending {
        ex.send(&ExecutorMessage::Update { status });
    }
}

fn should_exit(sh: &Shared, orphan_timeout: Duration) -> bool {
    let mut ex = lock(sh);
    if !ex.tasks.values().all(|c| c.terminal) {
        return false;
    }
    if ex.shutting_down {
        return true;
    }
    let all_acked = ex.state.tasks.values().all(|t| t.unacked.is_empty());
    if all_acked && ex.out.is_some() && !ex.idle_sent {
        ex.idle_sent = true;
        ex.send(&ExecutorMessage::Idle);
    }
    ex.disconnected_since
        .is_some_and(|d| d.elapsed() >= orphan_timeout)
}

/// The sandbox of a task.
/// Pages the `stdout` and `stderr` of every live task that passed the page size.
fn page_logs(sh: &Shared) {
    let (dir, page, pages, live) = {
        let ex = lock(sh);
        let live: Vec<String> = ex
            .tasks
            .iter()
            .filter(|(_, t)| !t.terminal)
            .map(|(id, _)| id.clone())
            .collect();
        (
            ex.dir.clone(),
            ex.launch.log_page_bytes,
            ex.launch.log_pages,
            live,
        )
    };
    for task in live {
        let sandbox = sandbox_of(&dir, &task);
        for name in ["stdout", "stderr"] {
            if let Err(e) = page_file(&sandbox.join(name), page, pages) {
                elog!("cannot page {name} of {task}: {e}");
            }
        }
    }
}

/// Once `path` holds `page` bytes or more: its pages move up (`.1` → `.2`, …, dropping the
/// oldest beyond `pages`), it is copied to `.1` and emptied. The task writes in append mode,
/// so it carries on at the start of the emptied file; lines written between the copy and the
/// truncation are lost (as with logrotate's copytruncate).
pub(crate) fn page_file(path: &Path, page: u64, pages: u32) -> std::io::Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.len() < page.max(1) {
        return Ok(());
    }
    let numbered = |n: u32| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if pages > 0 {
        let _ = std::fs::remove_file(numbered(pages));
        for n in (1..pages).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        std::fs::copy(path, numbered(1))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(0)
}

pub(crate) fn sandbox_of(dir: &Path, task: &str) -> PathBuf {
    dir.join(super::wire::TASKS_DIR)
        .join(fsutil::sanitize(task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_paged_past_the_page_size_and_old_pages_dropped() {
        let dir = std::env::temp_dir().join(format!("berth-paging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("stdout");
        let numbered = |n: u32| dir.join(format!("stdout.{n}"));
        // Below the page size: nothing moves.
        std::fs::write(&out, "a".repeat(50)).unwrap();
        page_file(&out, 100, 2).unwrap();
        assert!(!numbered(1).exists());
        for round in 1..=3 {
            std::fs::write(&out, format!("{round}").repeat(150)).unwrap();
            page_file(&out, 100, 2).unwrap();
            assert_eq!(std::fs::metadata(&out).unwrap().len(), 0);
        }
        assert_eq!(
            std::fs::read_to_string(numbered(1)).unwrap(),
            "3".repeat(150)
        );
        assert_eq!(
            std::fs::read_to_string(numbered(2)).unwrap(),
            "2".repeat(150)
        );
        assert!(!numbered(3).exists());
        // Writes in append mode carry on at the start of the emptied file.
        let mut f = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
        std::io::Write::write_all(&mut f, b"next").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "next");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
