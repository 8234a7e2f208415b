//! Operator controls: stopping an agent ("the machine lost power"), starting it again,
//! draining it for good, and the operator's view of agents, volumes and executors.
//!
//! Taking an agent down has two halves: [`Core::take_down`] SIGKILLs its executors'
//! sessions under the lock; the caller waits for the processes with [`TakeDown::wait`]
//! without it, then [`Core::finish_take_down`] reports the tasks.

use std::time::{Duration, Instant};

use berth_mesos::{AgentId, Resource, StatusSource, TaskState};
use tracing::{info, warn};

use super::accounting::mount_root_of;
use super::{Core, agent_status};
use crate::local::agents::AgentSpec;
use crate::local::fsutil;
use crate::local::resources::Resources;
use crate::local::state::{AgentRecord, AgentState, ExecutorState};
use crate::local::{AgentView, ExecutorView, ResourceSummary, TaskRun, TaskView, VolumeView};
use crate::protocol::{ClusterError, Event};

/// An agent being taken down: its executors' sessions were SIGKILLed; its tasks are reported
/// once the processes are gone.
#[derive(Debug)]
pub(crate) struct TakeDown {
    agent: String,
    state: TaskState,
    reason: String,
    message: String,
    sessions: Vec<i32>,
    /// Whether an agent `FAILURE` event follows the reports (a drained agent).
    failure_event: bool,
}

impl TakeDown {
    /// Waits (briefly, at most 2 s) until the killed processes are really gone: SIGKILL is
    /// asynchronous. Call it without holding the core's lock.
    pub(crate) fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && !self.sessions.iter().all(|s| fsutil::session_gone(*s)) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Core {
    fn check_agent(&self, id: &str) -> Result<AgentState, ClusterError> {
        match self.state.agents.get(id) {
            Some(a) => Ok(a.state),
            None => Err(self.unknown_agent(id)),
        }
    }

    /// First half of taking an agent down: SIGKILLs its executors' sessions and rescinds its
    /// offer. The processes die asynchronously: wait for them with [`TakeDown::wait`]
    /// *without* holding the core's lock, then report with [`Core::finish_take_down`].
    pub(super) fn take_down(
        &mut self,
        agent: &str,
        state: TaskState,
        reason: &str,
        message: &str,
    ) -> TakeDown {
        let execs = self.live_executors(agent);
        let mut sessions = Vec::new();
        for exec in &execs {
            sessions.extend(self.kill_executor_processes(agent, exec));
            if let Some(e) = self.exec_mut(agent, exec) {
                e.state = ExecutorState::Terminated;
            }
            self.execs.kill_deadlines.remove(exec);
        }
        self.rescind_agent(agent);
        self.dirty = true;
        TakeDown {
            agent: agent.to_owned(),
            state,
            reason: reason.to_owned(),
            message: message.to_owned(),
            sessions,
            failure_event: false,
        }
    }

    /// The live tasks of `agent` (task and executor ids) whose framework is not removed,
    /// except those already in state `except`.
    fn live_tasks(&self, agent: &str, except: Option<TaskState>) -> Vec<(String, String)> {
        self.state
            .agents
            .get(agent)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|(_, t)| {
                        !t.latest.state.is_terminal()
                            && except.is_none_or(|s| t.latest.state != s)
                            && !self.framework_removed(&t.framework_id)
                    })
                    .map(|(id, t)| (id.clone(), t.executor_id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Second half of taking an agent down: reports its tasks in `state` (once their
    /// processes are gone, so their ports and files are free).
    pub(crate) fn finish_take_down(&mut self, down: TakeDown) -> Result<(), ClusterError> {
        let agent = down.agent.as_str();
        for (task, exec) in self.live_tasks(agent, Some(down.state)) {
            self.execs.pending_kills.remove(&task);
            let mut st = agent_status(
                &task,
                down.state,
                agent,
                Some(&exec),
                Some(&down.reason),
                &down.message,
                true,
            );
            st.source = Some(StatusSource::SourceMaster);
            self.ingest(agent, st, false);
        }
        if down.failure_event {
            let fw = self.sub.as_ref().map(|s| s.framework_id.clone());
            if let Some(fw) = fw {
                self.emit(
                    Some(&fw),
                    Event::Failure {
                        agent_id: Some(AgentId::new(agent)),
                        executor_id: None,
                        status: None,
                    },
                );
            }
        }
        self.dirty = true;
        self.finish()
    }

    /// Marks the agent down and kills what runs there; the caller waits for the processes
    /// outside the lock and then calls [`Core::finish_take_down`] (`None`: it was down).
    pub(crate) fn stop_agent(&mut self, id: &str) -> Result<Option<TakeDown>, ClusterError> {
        match self.check_agent(id)? {
            AgentState::Down => return Ok(None),
            AgentState::Drained => {
                return Err(ClusterError::Agent {
                    id: id.to_owned(),
                    message: "is drained; it cannot be stopped".to_owned(),
                });
            }
            AgentState::Up => {}
        }
        warn!(
            agent = id,
            "stopping agent: killing its executors and tasks"
        );
        let down = self.mark_and_take_down(
            id,
            AgentState::Down,
            TaskState::TaskUnreachable,
            "REASON_AGENT_DISCONNECTED",
            &format!("agent {id} is down"),
        )?;
        Ok(Some(down))
    }

    pub(crate) fn start_agent(&mut self, id: &str) -> Result<(), ClusterError> {
        match self.check_agent(id)? {
            AgentState::Up => return Ok(()),
            AgentState::Drained => {
                return Err(ClusterError::Agent {
                    id: id.to_owned(),
                    message: "is drained (decommissioned) and can never come back".to_owned(),
                });
            }
            AgentState::Down => {}
        }
        info!(agent = id, "starting agent");
        if let Some(a) = self.state.agents.get_mut(id) {
            a.state = AgentState::Up;
        }
        for (task, exec) in self.live_tasks(id, None) {
            let mut st = agent_status(
                &task,
                TaskState::TaskGone,
                id,
                Some(&exec),
                Some("REASON_AGENT_RESTARTED"),
                format!("agent {id} restarted; the task is gone"),
                true,
            );
            st.source = Some(StatusSource::SourceMaster);
            self.ingest(id, st, false);
        }
        self.dirty = true;
        self.offers.requested = true;
        self.finish()
    }

    /// Marks the agent drained and kills what runs there; as [`Core::stop_agent`].
    pub(crate) fn drain_agent(&mut self, id: &str) -> Result<Option<TakeDown>, ClusterError> {
        if self.check_agent(id)? == AgentState::Drained {
            return Ok(None);
        }
        warn!(
            agent = id,
            "draining agent: killing its tasks; it is never offered again"
        );
        let mut down = self.mark_and_take_down(
            id,
            AgentState::Drained,
            TaskState::TaskGoneByOperator,
            "REASON_AGENT_REMOVED_BY_OPERATOR",
            &format!("agent {id} was drained by an operator"),
        )?;
        down.failure_event = true;
        Ok(Some(down))
    }

    /// Stores the agent as `state` (before anything is killed), then takes it down: the first
    /// half of [`Core::stop_agent`] and [`Core::drain_agent`].
    fn mark_and_take_down(
        &mut self,
        id: &str,
        state: AgentState,
        task_state: TaskState,
        reason: &str,
        message: &str,
    ) -> Result<TakeDown, ClusterError> {
        if let Some(a) = self.state.agents.get_mut(id) {
            a.state = state;
        }
        self.dirty = true;
        self.persist()?;
        let down = self.take_down(id, task_state, reason, message);
        self.finish()?;
        Ok(down)
    }

    // ------------------------------------------------------------------ views

    pub(crate) fn agent_views(&self) -> Vec<AgentView> {
        let mut out = Vec::new();
        for (id, spec) in &self.agents.specs {
            let Some(rec) = self.state.agents.get(id) else {
                continue;
            };
            out.push(self.agent_view(id, spec, rec));
        }
        out
    }

    fn agent_view(&self, id: &str, spec: &AgentSpec, rec: &AgentRecord) -> AgentView {
        let total = self.agents.totals.get(id).cloned().unwrap_or_default();
        let used = Resources::from_list(&self.used(id));
        let all = |_: &Resource| true;
        let reserved = |r: &Resource| !r.reservations.is_empty();
        AgentView {
            id: id.to_owned(),
            hostname: spec.hostname.clone(),
            zone: spec.zone.clone(),
            region: spec.region.clone(),
            state: rec.state,
            total: summary(&total, &all),
            reserved: summary(&total, &reserved),
            used: summary(&used, &all),
            volumes: self.volume_views(id, &total),
            executors: executor_views(rec),
        }
    }

    /// The host's listening ports as the port claims see them (refreshed off the lock).
    pub(crate) fn listening_ports(&self) -> crate::local::ports::Listening {
        self.ports.listening()
    }

    /// Finished sandboxes kept per task, their disk budget and the collection interval.
    pub(crate) fn sandbox_gc_settings(&self) -> (usize, u64, Duration) {
        (
            self.cfg.sandboxes_kept_per_task,
            self.cfg.sandbox_disk_budget,
            self.cfg.sandbox_gc_interval,
        )
    }

    /// Every task the state remembers, with its sandbox (the user is the framework's; the
    /// caller refines it from the launch file).
    pub(crate) fn task_runs(&self) -> Vec<TaskRun> {
        let mut out = Vec::new();
        for (agent, rec) in &self.state.agents {
            let hostname = self
                .agents
                .specs
                .get(agent)
                .map_or_else(|| agent.clone(), |s| s.hostname.clone());
            for (task_id, task) in &rec.tasks {
                let dir = rec.executors.get(&task.executor_id).map_or_else(
                    || {
                        self.agent_dir(agent)
                            .join("executors")
                            .join(fsutil::sanitize(&task.executor_id))
                    },
                    |e| e.dir.clone(),
                );
                out.push(TaskRun {
                    task_id: task_id.clone(),
                    name: task.name.clone(),
                    framework_id: task.framework_id.clone(),
                    agent: agent.clone(),
                    hostname: hostname.clone(),
                    user: self
                        .state
                        .frameworks
                        .get(&task.framework_id)
                        .map(|f| f.user.clone())
                        .unwrap_or_default(),
                    state: task.latest.state,
                    updated: task.latest.timestamp,
                    sandbox: dir.join(crate::local::wire::TASKS_DIR).join(task_id),
                    volume_dirs: Vec::new(),
                });
            }
        }
        out.sort_by(|a, b| a.updated.total_cmp(&b.updated));
        out
    }

    fn volume_views(&self, agent: &str, total: &Resources) -> Vec<VolumeView> {
        total
            .0
            .iter()
            .filter_map(|r| {
                let pid = r.persistence_id()?;
                Some(VolumeView {
                    persistence_id: pid.to_owned(),
                    container_path: r
                        .disk
                        .as_ref()
                        .and_then(|d| d.volume.as_ref())
                        .map(|v| v.container_path.clone())
                        .unwrap_or_default(),
                    size: r.scalar_value(),
                    kind: if mount_root_of(r).is_some() {
                        "MOUNT"
                    } else {
                        "ROOT"
                    }
                    .to_owned(),
                    role: r.role().to_owned(),
                    path: self.volume_path(agent, r).unwrap_or_default(),
                })
            })
            .collect()
    }
}

fn summary(rs: &Resources, pred: &dyn Fn(&Resource) -> bool) -> ResourceSummary {
    ResourceSummary {
        cpus: rs.scalar_sum("cpus", pred),
        mem: rs.scalar_sum("mem", pred),
        disk: rs.scalar_sum("disk", pred),
        gpus: rs.scalar_sum("gpus", pred),
        ports: rs.ranges_of("ports", pred),
    }
}

fn executor_views(rec: &AgentRecord) -> Vec<ExecutorView> {
    rec.executors
        .iter()
        .filter(|(_, e)| e.state.alive())
        .map(|(eid, e)| ExecutorView {
            executor_id: eid.clone(),
            framework_id: e.framework_id.clone(),
            pid: e.pid,
            state: e.state,
            dir: e.dir.clone(),
            tasks: e
                .tasks
                .iter()
                .filter_map(|t| {
                    let r = rec.tasks.get(t)?;
                    Some(TaskView {
                        task_id: t.clone(),
                        name: r.name.clone(),
                        state: r.latest.state,
                    })
                })
                .collect(),
        })
        .collect()
}
