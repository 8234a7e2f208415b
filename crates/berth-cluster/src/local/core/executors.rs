//! Executor processes: spawning `berth executor` in its own session, adopting the ones a
//! previous `berth run` left, what their link threads report (hello, status updates, idle),
//! their exit, and killing them with everything they left behind.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Child;
use std::sync::Weak;
use std::time::{Duration, Instant};

use berth_mesos::{AgentId, ExecutorId, TaskId, TaskInfo, TaskState};
use nix::sys::signal::Signal;
use tracing::{debug, error, info, warn};

use super::{Core, Inner, LinkKey, agent_status};
use crate::local::fsutil::{self, read_json};
use crate::local::state::{ExecutorState, TaskRecord};
use crate::local::wire::{
    AgentMessage, ExecutorMessage, ExecutorStateFile, LAUNCH_FILE, LaunchFile, STATE_FILE,
    TaskReport,
};
use crate::protocol::Event;

/// The connection to an executor's socket, made by its link thread.
pub(super) struct Conn {
    /// The run it belongs to.
    run: u64,
    stream: UnixStream,
}

/// Supervision of the executor processes.
pub(super) struct Supervision {
    /// Connections by executor id.
    pub(super) conns: HashMap<String, Conn>,
    /// Kills (task id, grace period) waiting for their executor to connect.
    pub(super) pending_kills: HashMap<String, Option<f64>>,
    /// Executors told to shut down, by id: SIGKILLed when the deadline passes.
    pub(super) kill_deadlines: HashMap<String, Instant>,
    /// Executors (agent, executor id) to start in [`Core::finish`].
    pub(super) to_spawn: Vec<(String, String)>,
    /// Executor processes that need a link thread.
    to_link: Vec<LinkKey>,
    /// For the waiter threads of spawned executors, which record exit statuses.
    weak: Weak<Inner>,
}

impl Supervision {
    pub(super) fn new(weak: Weak<Inner>) -> Supervision {
        Supervision {
            conns: HashMap::new(),
            pending_kills: HashMap::new(),
            kill_deadlines: HashMap::new(),
            to_spawn: Vec::new(),
            to_link: Vec::new(),
            weak,
        }
    }

    pub(super) fn set_inner(&mut self, weak: Weak<Inner>) {
        self.weak = weak;
    }

    /// Drops the connection to `exec`, if any.
    pub(super) fn disconnect(&mut self, exec: &str) {
        if let Some(c) = self.conns.remove(exec) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Drops every connection (on close), so executors see the agent go away.
    pub(super) fn disconnect_all(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// How an executor ended, from its wait status.
fn exit_description(status: Option<i32>) -> String {
    match status {
        Some(s) if s & 0x7f == 0 => format!("exited with status {}", (s >> 8) & 0xff),
        Some(s) => format!("was killed by signal {}", s & 0x7f),
        None => "is gone".to_owned(),
    }
}

impl Core {
    pub(crate) fn take_links(&mut self) -> Vec<LinkKey> {
        std::mem::take(&mut self.execs.to_link)
    }

    /// The ids of the live executors of `agent`.
    pub(super) fn live_executors(&self, agent: &str) -> Vec<String> {
        self.state
            .agents
            .get(agent)
            .map(|a| {
                a.executors
                    .iter()
                    .filter(|(_, e)| e.state.alive())
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Follows the live executors of an up agent after opening; those of a removed
    /// framework get a deadline to exit.
    pub(super) fn adopt_executors(&mut self, agent: &str) {
        let execs = self.live_executors(agent);
        for id in execs {
            let Some(e) = self.executor(agent, &id) else {
                continue;
            };
            info!(agent, executor = id, pid = ?e.pid, "adopting executor");
            let key = LinkKey {
                agent: agent.to_owned(),
                executor: id.clone(),
                run: e.run,
                dir: e.dir.clone(),
                pid: e.pid,
                start_time: e.start_time,
            };
            let removed = self.framework_removed(&e.framework_id);
            self.execs.to_link.push(key);
            if removed {
                self.execs
                    .kill_deadlines
                    .insert(id, Instant::now() + Duration::from_secs(60));
            }
        }
    }

    // ------------------------------------------------------------------ starting

    pub(super) fn spawn_executor(&mut self, agent: &str, exec: &str) {
        let Some(e) = self.executor(agent, exec).cloned() else {
            return;
        };
        let child = match self.start_process(&e.dir) {
            Ok(c) => c,
            Err(msg) => {
                self.executor_failed_to_start(agent, exec, &msg);
                return;
            }
        };
        let pid = child.id() as i32;
        let start_time = fsutil::proc_stat(pid).map(|s| s.start_time);
        info!(agent, executor = exec, pid, run = e.run, "started executor");
        self.wait_for(child, pid);
        if let Some(rec) = self.exec_mut(agent, exec) {
            rec.pid = Some(pid);
            rec.start_time = start_time;
        }
        self.dirty = true;
        self.execs.to_link.push(LinkKey {
            agent: agent.to_owned(),
            executor: exec.to_owned(),
            run: e.run,
            dir: e.dir.clone(),
            pid: Some(pid),
            start_time,
        });
    }

    /// Starts `berth executor --dir DIR` in its own session, its output appended to
    /// `DIR/stdout` and `DIR/stderr`.
    fn start_process(&self, dir: &Path) -> Result<Child, String> {
        let out = fsutil::open_append(&dir.join("stdout"));
        let err = fsutil::open_append(&dir.join("stderr"));
        let (out, err) = match (out, err) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(x), _) | (_, Err(x)) => return Err(format!("cannot open its log files: {x}")),
        };
        let mut cmd = std::process::Command::new(&self.cfg.executor_program);
        cmd.args(&self.cfg.executor_args)
            .arg("--dir")
            .arg(dir)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    nix::unistd::setsid()
                        .map(|_| ())
                        .map_err(std::io::Error::from)
                });
            }
        }
        cmd.spawn().map_err(|x| {
            format!(
                "cannot start executor `{}`: {x}",
                self.cfg.executor_program.display()
            )
        })
    }

    /// Reaps `child` on a thread of its own, which records its wait status.
    fn wait_for(&self, child: Child, pid: i32) {
        let Some(inner) = self.execs.weak.upgrade() else {
            return;
        };
        if let Ok(mut exits) = inner.exits.lock() {
            exits.remove(&pid);
        }
        let waiter = inner.clone();
        let mut child = child;
        let spawned = std::thread::Builder::new()
            .name(format!("berth-wait-{pid}"))
            .spawn(move || {
                use std::os::unix::process::ExitStatusExt;
                let status = child.wait().map(|s| s.into_raw()).unwrap_or(-1);
                if let Ok(mut exits) = waiter.exits.lock() {
                    exits.insert(pid, status);
                }
            });
        if let Err(x) = spawned {
            error!(error = %x, "cannot start a waiter thread");
        }
    }

    fn executor_failed_to_start(&mut self, agent: &str, exec: &str, msg: &str) {
        error!(agent, executor = exec, msg, "executor failed to start");
        let tasks = match self.exec_mut(agent, exec) {
            Some(e) => {
                e.state = ExecutorState::Terminated;
                e.tasks.clone()
            }
            None => return,
        };
        self.dirty = true;
        self.fail_tasks(
            agent,
            exec,
            &tasks,
            TaskRecord::uses_resources,
            "REASON_CONTAINER_LAUNCH_FAILED",
            msg,
        );
        self.offers.requested = true;
    }

    /// Reports `TASK_FAILED` for those of `tasks` that `pred` picks.
    fn fail_tasks(
        &mut self,
        agent: &str,
        exec: &str,
        tasks: &[String],
        pred: fn(&TaskRecord) -> bool,
        reason: &str,
        msg: &str,
    ) {
        for t in tasks {
            if self.task(agent, t).is_some_and(pred) {
                let st = agent_status(
                    t,
                    TaskState::TaskFailed,
                    agent,
                    Some(exec),
                    Some(reason),
                    msg,
                    true,
                );
                self.ingest(agent, st, false);
            }
        }
    }

    /// Starts the executor again after a crash of berth run that came between recording it
    /// and spawning it. Returns the link key of the new process.
    pub(crate) fn respawn(&mut self, key: &LinkKey) -> Option<LinkKey> {
        let e = self.executor(&key.agent, &key.executor)?;
        if e.run != key.run || !e.state.alive() {
            return None;
        }
        warn!(
            executor = key.executor,
            "executor never started; starting it now"
        );
        self.spawn_executor(&key.agent, &key.executor);
        let _ = self.finish();
        let pos = self
            .execs
            .to_link
            .iter()
            .position(|k| k.executor == key.executor)?;
        Some(self.execs.to_link.remove(pos))
    }

    // ------------------------------------------------------------------ links

    /// Writes a message to a connected executor; a failed write drops the connection (its
    /// link thread connects again).
    pub(super) fn write_exec(&mut self, exec: &str, msg: &AgentMessage) {
        let Some(conn) = self.execs.conns.get_mut(exec) else {
            debug!(
                executor = exec,
                "not connected; the message is replayed on reconnect"
            );
            return;
        };
        let mut line = match serde_json::to_vec(msg) {
            Ok(l) => l,
            Err(e) => {
                error!(error = %e, "cannot encode a message to an executor");
                return;
            }
        };
        line.push(b'\n');
        if let Err(e) = conn.stream.write_all(&line) {
            warn!(executor = exec, error = %e, "write to executor failed; reconnecting");
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            self.execs.conns.remove(exec);
        }
    }

    /// Whether a link thread for `key` should keep going.
    pub(crate) fn link_wanted(&self, key: &LinkKey) -> bool {
        self.executor(&key.agent, &key.executor)
            .is_some_and(|e| e.run == key.run && e.state.alive())
    }

    pub(crate) fn on_connected(&mut self, key: &LinkKey, stream: UnixStream) -> bool {
        if !self.link_wanted(key) {
            return false;
        }
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        self.execs.conns.insert(
            key.executor.clone(),
            Conn {
                run: key.run,
                stream,
            },
        );
        true
    }

    pub(crate) fn on_disconnected(&mut self, key: &LinkKey) {
        if self
            .execs
            .conns
            .get(&key.executor)
            .is_some_and(|c| c.run == key.run)
        {
            self.execs.conns.remove(&key.executor);
        }
    }

    pub(crate) fn on_message(&mut self, key: &LinkKey, msg: ExecutorMessage) {
        if !self.link_wanted(key) {
            return;
        }
        match msg {
            ExecutorMessage::Hello {
                run, pid, tasks, ..
            } => self.on_hello(key, run, pid, tasks),
            ExecutorMessage::Update { status } => {
                self.ingest(&key.agent, status, true);
            }
            ExecutorMessage::Idle => self.on_idle(key),
        }
        let _ = self.finish();
    }

    /// An executor whose tasks are all done is told to shut down (unless new tasks came).
    fn on_idle(&mut self, key: &LinkKey) {
        let Some(rec) = self.state.agents.get(&key.agent) else {
            warn!(
                agent = key.agent,
                "idle executor on an unknown agent ignored"
            );
            return;
        };
        let Some(e) = rec.executors.get(&key.executor) else {
            warn!(
                executor = key.executor,
                "idle from an unknown executor ignored"
            );
            return;
        };
        let busy = e
            .tasks
            .iter()
            .any(|t| rec.tasks.get(t).is_some_and(TaskRecord::uses_resources));
        if !e.state.accepts_tasks() || busy {
            return;
        }
        info!(
            executor = key.executor,
            "executor is idle; shutting it down"
        );
        if let Some(e) = self.exec_mut(&key.agent, &key.executor) {
            e.state = ExecutorState::ShuttingDown;
        }
        self.dirty = true;
        self.send_exec(
            &key.executor,
            AgentMessage::Shutdown {
                grace_period_secs: None,
            },
        );
    }

    /// An executor (re)connected: takes in its report, then tells it to shut down (its
    /// framework is gone, or it was asked to) or hands it what it missed: the tasks it
    /// should run but does not know, and the kills held for it.
    fn on_hello(&mut self, key: &LinkKey, run: u64, pid: i32, tasks: Vec<TaskReport>) {
        if run != key.run {
            warn!(
                executor = key.executor,
                run,
                expected = key.run,
                "hello from another run"
            );
            self.on_disconnected(key);
            return;
        }
        let Some((fw, state)) = self.hello_record(key, pid) else {
            return;
        };
        self.dirty = true;
        let known = self.hello_tasks(key, tasks);
        if self.framework_removed(&fw) || state == ExecutorState::ShuttingDown {
            self.send_exec(
                &key.executor,
                AgentMessage::Shutdown {
                    grace_period_secs: None,
                },
            );
            return;
        }
        let Some(exec_tasks) = self
            .executor(&key.agent, &key.executor)
            .map(|e| e.tasks.clone())
        else {
            warn!(
                executor = key.executor,
                "executor record gone during its hello"
            );
            return;
        };
        self.relaunch_missing(key, &exec_tasks, &known);
        self.deliver_pending_kills(&key.executor, &exec_tasks);
    }

    /// Records the pid a hello reports; a launching executor now runs. Returns its
    /// framework and state.
    fn hello_record(&mut self, key: &LinkKey, pid: i32) -> Option<(String, ExecutorState)> {
        let e = self.exec_mut(&key.agent, &key.executor)?;
        if e.pid != Some(pid) {
            e.pid = Some(pid);
            e.start_time = fsutil::proc_stat(pid).map(|s| s.start_time);
        }
        if e.state == ExecutorState::Launching {
            e.state = ExecutorState::Running;
        }
        Some((e.framework_id.clone(), e.state))
    }

    /// Takes in the tasks a hello reports: their unacknowledged updates, and their latest
    /// status when it is newer than what the core has. Returns the task ids it reports.
    fn hello_tasks(&mut self, key: &LinkKey, tasks: Vec<TaskReport>) -> BTreeSet<String> {
        let mut known = BTreeSet::new();
        for tr in tasks {
            known.insert(tr.task_id.value.clone());
            let unacked: BTreeSet<Option<String>> =
                tr.unacked.iter().map(|s| s.uuid.clone()).collect();
            for s in tr.unacked {
                self.ingest(&key.agent, s, true);
            }
            if let Some(latest) = tr.latest
                && !unacked.contains(&latest.uuid)
                && let Some(t) = self
                    .state
                    .agents
                    .get_mut(&key.agent)
                    .and_then(|a| a.tasks.get_mut(&latest.task_id.value))
                && t.latest.uuid != latest.uuid
                && !t.latest.state.is_terminal()
                && latest.timestamp >= t.latest.timestamp
            {
                t.latest = latest;
            }
        }
        known
    }

    /// Hands the executor again the live tasks of `exec_tasks` it does not know (e.g. a
    /// crash came before it read them).
    fn relaunch_missing(&mut self, key: &LinkKey, exec_tasks: &[String], known: &BTreeSet<String>) {
        let missing: Vec<String> = exec_tasks
            .iter()
            .filter(|t| {
                !known.contains(*t)
                    && self
                        .task(&key.agent, t)
                        .is_some_and(TaskRecord::uses_resources)
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let exec = key.executor.as_str();
        match read_json::<LaunchFile>(&key.dir.join(LAUNCH_FILE)) {
            Ok(Some(lf)) => {
                let tasks: Vec<TaskInfo> = lf
                    .tasks
                    .into_iter()
                    .filter(|t| missing.contains(&t.task_id.value))
                    .collect();
                if !tasks.is_empty() {
                    self.send_exec(exec, AgentMessage::Launch { tasks });
                }
            }
            Ok(None) => error!(executor = exec, "launch file missing"),
            Err(e) => error!(executor = exec, error = %e, "cannot read the launch file"),
        }
    }

    /// Sends the kills of `exec_tasks` that waited for the executor to connect.
    fn deliver_pending_kills(&mut self, exec: &str, exec_tasks: &[String]) {
        let kills: Vec<(String, Option<f64>)> = self
            .execs
            .pending_kills
            .iter()
            .filter(|(t, _)| exec_tasks.contains(*t))
            .map(|(t, g)| (t.clone(), *g))
            .collect();
        for (t, g) in kills {
            self.execs.pending_kills.remove(&t);
            self.send_exec(
                exec,
                AgentMessage::Kill {
                    task_id: TaskId::new(t),
                    grace_period_secs: g,
                },
            );
        }
    }

    // ------------------------------------------------------------------ ending

    /// The executor process of `key` is gone: read what it left, kill what it left running,
    /// fail the tasks it did not finish, and tell the scheduler.
    pub(crate) fn on_exit(&mut self, key: &LinkKey, status: Option<i32>) {
        self.on_disconnected(key);
        if !self.link_wanted(key) {
            return;
        }
        let exec = key.executor.as_str();
        let agent = key.agent.as_str();
        self.sweep_exited(key);
        let desc = exit_description(status);
        let log = key.dir.join("stderr");
        info!(agent, executor = exec, "executor {desc}");
        let (fw, tasks) = match self.exec_mut(agent, exec) {
            Some(e) => {
                e.state = ExecutorState::Terminated;
                (e.framework_id.clone(), e.tasks.clone())
            }
            None => return,
        };
        let msg = format!("executor {exec} {desc} (its log: {})", log.display());
        self.fail_tasks(
            agent,
            exec,
            &tasks,
            |t| !t.latest.state.is_terminal(),
            "REASON_EXECUTOR_TERMINATED",
            &msg,
        );
        self.execs.kill_deadlines.remove(exec);
        self.dirty = true;
        self.offers.requested = true;
        self.emit(
            Some(&fw),
            Event::Failure {
                agent_id: Some(AgentId::new(agent)),
                executor_id: Some(ExecutorId::new(exec)),
                status,
            },
        );
        let _ = self.finish();
    }

    /// Takes in the unacknowledged updates an exited executor left in its state file, and
    /// kills the processes it left behind.
    fn sweep_exited(&mut self, key: &LinkKey) {
        let state_file: Option<ExecutorStateFile> = read_json(&key.dir.join(STATE_FILE))
            .ok()
            .flatten()
            .filter(|s: &ExecutorStateFile| s.run == key.run);
        let mut pgids = Vec::new();
        if let Some(sf) = state_file {
            for (_, tr) in sf.tasks {
                pgids.extend(tr.pgid);
                for s in tr.unacked {
                    self.ingest(&key.agent, s, false);
                }
            }
        }
        if let Some(pid) = key.pid {
            let n = fsutil::kill_session(pid, key.start_time, &pgids);
            if n > 0 {
                info!(
                    executor = key.executor,
                    processes = n,
                    "killed processes the executor left behind"
                );
            }
        }
    }

    /// SIGKILLs an executor and everything in its session; returns the session id.
    pub(super) fn kill_executor_processes(&mut self, agent: &str, exec: &str) -> Option<i32> {
        let e = self.executor(agent, exec)?;
        let mut pgids = Vec::new();
        if let Ok(Some(sf)) = read_json::<ExecutorStateFile>(&e.dir.join(STATE_FILE)) {
            pgids.extend(sf.tasks.values().filter_map(|t| t.pgid));
        }
        if let Some(pid) = e.pid {
            if fsutil::pid_alive(pid, e.start_time) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            fsutil::kill_session(pid, e.start_time, &pgids);
        }
        let sid = e.pid;
        self.execs.disconnect(exec);
        sid
    }

    /// The kill part of a tick: executors told to shut down that missed their deadline are
    /// SIGKILLed.
    pub(super) fn enforce_kill_deadlines(&mut self, now: Instant) {
        let due: Vec<String> = self
            .execs
            .kill_deadlines
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(e, _)| e.clone())
            .collect();
        for exec in due {
            self.execs.kill_deadlines.remove(&exec);
            if let Some(agent) = self.find_executor(&exec) {
                warn!(
                    executor = exec,
                    "executor did not shut down in time; killing it"
                );
                self.kill_executor_processes(&agent, &exec);
            }
        }
    }
}
