//! Status updates: recording what executors report (and what the agent makes up for them),
//! re-sending the oldest unacknowledged update of each task until the scheduler acknowledges
//! it, acknowledgements (passed on to the executor), reconciliation, and the scheduler's
//! kills of tasks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use berth_mesos::{StatusSource, TaskId, TaskState, TaskStatus};
use tracing::{debug, info, warn};

use super::{Core, agent_status};
use crate::local::state::{AgentState, TaskRecord};
use crate::local::wire::AgentMessage;
use crate::protocol::{Event, ReconcileTask};

/// Acknowledged uuids remembered per task.
const KEEP_ACKED: usize = 32;

/// When updates were sent, for re-sending them.
pub(super) struct Redelivery {
    /// When the head of each task's unacknowledged updates was last sent, by task id.
    last_sent: HashMap<String, Instant>,
    /// When the next check for updates to re-send is due.
    pub(super) next_retry: Instant,
}

impl Redelivery {
    pub(super) fn new(next_retry: Instant) -> Redelivery {
        Redelivery {
            last_sent: HashMap::new(),
            next_retry,
        }
    }
}

/// Whether `status` is new to `t`; when it is not, `Err` says whether to acknowledge it to
/// the executor anyway (it was acknowledged, or comes after a terminal status).
fn admit(t: &TaskRecord, status: &TaskStatus, from_executor: bool) -> Result<(), bool> {
    if let Some(u) = &status.uuid {
        if t.acked.contains(u) {
            return Err(true);
        }
        if t.pending.iter().any(|s| s.uuid.as_ref() == Some(u)) {
            return Err(false);
        }
    }
    // A terminal state is final: stale updates (e.g. unacknowledged STARTING/RUNNING read
    // back from an exited executor's state file) must not bring the task back to life.
    if t.latest.state.is_terminal() && (from_executor || !status.state.is_terminal()) {
        debug!(
            task = status.task_id.as_str(),
            "update after a terminal status ignored"
        );
        return Err(true);
    }
    Ok(())
}

impl Core {
    /// Records a status (from an executor, or made by the agent) and queues it for the
    /// scheduler. Returns whether it was new.
    pub(super) fn ingest(&mut self, agent: &str, status: TaskStatus, from_executor: bool) -> bool {
        let task = status.task_id.value.clone();
        let removed_fw = self
            .task(agent, &task)
            .map(|t| self.framework_removed(&t.framework_id));
        let Some(t) = self
            .state
            .agents
            .get_mut(agent)
            .and_then(|a| a.tasks.get_mut(&task))
        else {
            warn!(agent, task, "status update for an unknown task ignored");
            self.ack_to_executor(&status, from_executor);
            return false;
        };
        if let Err(ack) = admit(t, &status, from_executor) {
            if ack {
                self.ack_to_executor(&status, from_executor);
            }
            return false;
        }
        let was = t.uses_resources();
        t.latest = status.clone();
        let freed = was && !t.uses_resources();
        let fw = t.framework_id.clone();
        let mut head = false;
        let mut ack = false;
        if let Some(u) = &status.uuid {
            if removed_fw == Some(true) {
                t.acked.push(u.clone());
                ack = true;
            } else {
                t.pending.push(status.clone());
                head = t.pending.len() == 1;
            }
        }
        if ack {
            self.ack_to_executor(&status, from_executor);
        }
        if freed {
            self.offers.requested = true;
            self.execs.pending_kills.remove(&task);
        }
        self.dirty = true;
        debug!(agent, task, state = status.state.as_str(), "status update");
        if head {
            self.updates.last_sent.insert(task, Instant::now());
            self.emit(Some(&fw), Event::Update { status });
        }
        true
    }

    /// Acknowledges `status` to the executor that sent it (when it came from one, with a
    /// uuid): the scheduler's acknowledgement is not needed for it.
    fn ack_to_executor(&mut self, status: &TaskStatus, from_executor: bool) {
        if from_executor && let (Some(u), Some(e)) = (&status.uuid, &status.executor_id) {
            self.send_exec(
                e.as_str(),
                AgentMessage::Ack {
                    task_id: TaskId::new(status.task_id.as_str()),
                    uuid: u.clone(),
                },
            );
        }
    }

    /// The re-send part of a tick: every so often, the updates unacknowledged for
    /// `update_retry_interval` are sent again.
    pub(super) fn retry_due_updates(&mut self, now: Instant) {
        if now >= self.updates.next_retry {
            self.updates.next_retry =
                now + (self.cfg.update_retry_interval / 4).max(Duration::from_millis(50));
            self.retry_updates(now);
        }
    }

    fn retry_updates(&mut self, now: Instant) {
        let Some(sub) = &self.sub else { return };
        let fw = sub.framework_id.clone();
        let mut due = Vec::new();
        for rec in self.state.agents.values() {
            for (tid, t) in &rec.tasks {
                if t.framework_id != fw {
                    continue;
                }
                if let Some(h) = t.pending.first() {
                    let last = self.updates.last_sent.get(tid);
                    if last.is_none_or(|l| now.duration_since(*l) >= self.cfg.update_retry_interval)
                    {
                        due.push((tid.clone(), h.clone()));
                    }
                }
            }
        }
        for (tid, h) in due {
            debug!(task = tid, "re-sending unacknowledged update");
            self.updates.last_sent.insert(tid, now);
            self.emit(Some(&fw), Event::Update { status: h });
        }
    }

    /// Sends the oldest unacknowledged update of each task of `fw` (a new subscription).
    pub(super) fn resend_pending(&mut self, fw: &str, now: Instant) {
        let mut heads = Vec::new();
        for rec in self.state.agents.values() {
            for (tid, t) in &rec.tasks {
                if t.framework_id == fw
                    && let Some(h) = t.pending.first()
                {
                    heads.push((tid.clone(), h.clone()));
                }
            }
        }
        for (tid, h) in heads {
            self.updates.last_sent.insert(tid, now);
            self.emit(Some(fw), Event::Update { status: h });
        }
    }

    /// ACKNOWLEDGE: the update leaves the task's unacknowledged ones (the executor is told
    /// when the update is its own); the next one, if any, is sent.
    pub(super) fn acknowledge(&mut self, agent: &str, task: &str, uuid: &str) {
        let agent = if self.task(agent, task).is_some() {
            agent.to_owned()
        } else {
            match self.find_task(task) {
                Some(a) => a,
                None => {
                    debug!(task, uuid, "acknowledgement for an unknown task ignored");
                    return;
                }
            }
        };
        let Some(t) = self
            .state
            .agents
            .get_mut(&agent)
            .and_then(|a| a.tasks.get_mut(task))
        else {
            return;
        };
        let Some(pos) = t
            .pending
            .iter()
            .position(|s| s.uuid.as_deref() == Some(uuid))
        else {
            debug!(
                task,
                uuid, "acknowledgement of an unknown or already acknowledged update"
            );
            return;
        };
        let st = t.pending.remove(pos);
        t.acked.push(uuid.to_owned());
        if t.acked.len() > KEEP_ACKED {
            t.acked.remove(0);
        }
        let next = if pos == 0 {
            t.pending.first().cloned()
        } else {
            None
        };
        let fw = t.framework_id.clone();
        self.dirty = true;
        if st.source == Some(StatusSource::SourceExecutor)
            && let Some(exec) = &st.executor_id
        {
            self.send_exec(
                exec.as_str(),
                AgentMessage::Ack {
                    task_id: TaskId::new(task),
                    uuid: uuid.to_owned(),
                },
            );
        }
        self.updates.last_sent.remove(task);
        if let Some(n) = next {
            self.updates
                .last_sent
                .insert(task.to_owned(), Instant::now());
            self.emit(Some(&fw), Event::Update { status: n });
        }
    }

    /// RECONCILE: the latest status of the named tasks (`TASK_LOST` for unknown ones), or
    /// of every task of `fw` that is live or has unacknowledged updates.
    pub(super) fn reconcile(&mut self, fw: &str, tasks: &[ReconcileTask]) {
        let answer = |t: &TaskRecord| {
            let mut st = t.latest.clone();
            st.uuid = None;
            st.reason = Some("REASON_RECONCILIATION".to_owned());
            st.source = Some(StatusSource::SourceMaster);
            st
        };
        let mut out = Vec::new();
        if tasks.is_empty() {
            for rec in self.state.agents.values() {
                for t in rec.tasks.values() {
                    if t.framework_id == fw
                        && (!t.latest.state.is_terminal() || !t.pending.is_empty())
                    {
                        out.push(answer(t));
                    }
                }
            }
        } else {
            for rt in tasks {
                let found = self.state.agents.values().find_map(|a| {
                    a.tasks
                        .get(rt.task_id.as_str())
                        .filter(|t| t.framework_id == fw)
                });
                match found {
                    Some(t) => out.push(answer(t)),
                    None => {
                        let mut st = agent_status(
                            rt.task_id.as_str(),
                            TaskState::TaskLost,
                            "",
                            None,
                            Some("REASON_RECONCILIATION"),
                            "Reconciliation: task is unknown",
                            false,
                        );
                        st.agent_id = rt.agent_id.clone();
                        st.source = Some(StatusSource::SourceMaster);
                        out.push(st);
                    }
                }
            }
        }
        for st in out {
            self.emit(Some(fw), Event::Update { status: st });
        }
    }

    /// KILL of a task: passed on to its executor (or held until the executor connects);
    /// answered right away for tasks that are unknown, finished, on an agent that is not up,
    /// or whose executor is gone.
    pub(super) fn kill(&mut self, fw: &str, task: &str, grace: Option<f64>) {
        let found = self
            .state
            .agents
            .iter()
            .find_map(|(aid, a)| a.tasks.get(task).map(|t| (aid, a, t)))
            .filter(|(_, _, t)| t.framework_id == fw);
        let Some((agent, a, t)) = found else {
            let mut st = agent_status(
                task,
                TaskState::TaskLost,
                "",
                None,
                Some("REASON_TASK_UNKNOWN"),
                "kill of an unknown task",
                false,
            );
            st.agent_id = None;
            st.source = Some(StatusSource::SourceMaster);
            self.emit(Some(fw), Event::Update { status: st });
            return;
        };
        let agent = agent.clone();
        let exec = t.executor_id.clone();
        let exec_alive = a.executors.get(&exec).is_some_and(|e| e.state.alive());
        if !t.uses_resources() || a.state != AgentState::Up {
            let mut st = t.latest.clone();
            st.uuid = None;
            st.reason = Some("REASON_RECONCILIATION".to_owned());
            self.emit(Some(fw), Event::Update { status: st });
            return;
        }
        if !exec_alive {
            let st = agent_status(
                task,
                TaskState::TaskKilled,
                &agent,
                Some(&exec),
                None,
                "killed: its executor is gone",
                true,
            );
            self.ingest(&agent, st, false);
            return;
        }
        info!(task, executor = exec, ?grace, "killing task");
        if self.execs.conns.contains_key(&exec) {
            self.send_exec(
                &exec,
                AgentMessage::Kill {
                    task_id: TaskId::new(task),
                    grace_period_secs: grace,
                },
            );
        } else {
            self.execs.pending_kills.insert(task.to_owned(), grace);
        }
    }
}
