//! The state machine of the local cluster: frameworks, agents, offers, operations, status
//! updates. One mutex guards it; the allocator thread, the executor link threads, the
//! `Cluster` calls and the operator controls all take it.
//!
//! [`Core`] holds the durable [`ClusterState`] and, next to it, one part per concern, each
//! with its own module:
//!
//! - `accounting`: the agents file entries and each agent's total resources; what tasks and
//!   executors use, what is free, where volume data lives.
//! - `offers`: allocation rounds, outstanding offers, decline filters, rescinds.
//! - `operations`: ACCEPT and its operations (RESERVE, UNRESERVE, CREATE, DESTROY,
//!   LAUNCH_GROUP), planned on copies and committed at once.
//! - `scheduler`: the subscription, the calls a scheduler sends, heartbeats, teardown.
//! - `updates`: status updates (recording, re-sending, acknowledgements), reconciliation and
//!   the scheduler's kills.
//! - `executors`: executor processes: spawning, adopting, following (hello, updates, idle),
//!   their exit, killing them.
//! - `operator`: stopping, starting and draining agents; what an operator sees.
//!
//! This module builds the core, persists it and delivers what it queued: events and
//! executor messages wait in the [`Outbox`] until [`Core::finish`] has written the state.

mod accounting;
mod executors;
mod offers;
mod operations;
mod operator;
mod scheduler;
#[cfg(test)]
mod tests;
mod updates;

use crate::local::ports::PortClaims;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_mesos::{AgentId, ExecutorId, StatusSource, TaskId, TaskState, TaskStatus};
use tracing::{error, info};

use self::accounting::AgentBook;
use self::executors::Supervision;
use self::offers::OfferBook;
pub(crate) use self::operator::TakeDown;
use self::scheduler::Subscription;
use self::updates::Redelivery;
use super::LocalConfig;
use super::fsutil::{self, now_secs, read_json, state_err, write_json};
use super::resources::is_checkpointed;
use super::state::{AgentState, ClusterState, ExecutorRecord, STATE_VERSION, TaskRecord};
use super::wire::AgentMessage;
use crate::protocol::{ClusterError, Event};

/// Terminal tasks kept per agent for reconciliation once their updates are acknowledged.
const KEEP_TERMINAL_TASKS: usize = 500;

/// Shared between the cluster handle, the control handle and the background threads.
pub(crate) struct Inner {
    /// The state machine.
    pub core: Mutex<Core>,
    /// Wakes the allocator thread.
    pub wake: Condvar,
    /// Set when the `LocalCluster` is dropped.
    pub closed: AtomicBool,
    /// Exit statuses of executors this process spawned, by pid (raw wait status).
    pub exits: Mutex<HashMap<i32, i32>>,
    /// Link threads to join on close.
    pub threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Identifies the executor process a link thread follows.
#[derive(Debug, Clone)]
pub(crate) struct LinkKey {
    pub agent: String,
    pub executor: String,
    pub run: u64,
    pub dir: PathBuf,
    pub pid: Option<i32>,
    pub start_time: Option<u64>,
}

/// What waits for the state to be durable before it leaves the core.
#[derive(Default)]
struct Outbox {
    /// Events for the scheduler, with the framework they are for (`None`: whichever is
    /// subscribed).
    events: Vec<(Option<String>, Event)>,
    /// Messages for executors, with the executor id.
    to_executors: Vec<(String, AgentMessage)>,
}

/// The local cluster's state machine.
pub(crate) struct Core {
    cfg: LocalConfig,
    /// `<data-dir>/cluster`.
    root: PathBuf,
    /// `<root>/state.json`.
    state_path: PathBuf,
    /// What survives a restart; written by [`Core::persist`].
    state: ClusterState,
    /// Whether `state` changed since it was last written.
    dirty: bool,
    /// The agents file entries and each agent's total resources.
    agents: AgentBook,
    /// Allocation rounds, outstanding offers and filters.
    offers: OfferBook,
    /// The subscribed scheduler, if any.
    sub: Option<Subscription>,
    /// When each task's unacknowledged update was last sent.
    updates: Redelivery,
    /// Executor processes: connections, spawns, links and kills.
    execs: Supervision,
    /// Events and executor messages waiting for [`Core::finish`].
    outbox: Outbox,
    /// The host's port claims (shared with the other local clusters of this host).
    ports: PortClaims,
}

fn invalid(msg: impl Into<String>) -> ClusterError {
    ClusterError::InvalidCall(msg.into())
}

/// A status the agent (or the master, once `source` is changed) makes up for a task.
fn agent_status(
    task_id: &str,
    state: TaskState,
    agent: &str,
    executor: Option<&str>,
    reason: Option<&str>,
    message: impl Into<String>,
    with_uuid: bool,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId::new(task_id),
        state,
        message: Some(message.into()),
        source: Some(StatusSource::SourceAgent),
        reason: reason.map(str::to_owned),
        agent_id: Some(AgentId::new(agent)),
        executor_id: executor.map(ExecutorId::new),
        timestamp: now_secs(),
        uuid: with_uuid.then(fsutil::new_status_uuid),
        healthy: None,
        check_status: None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads the state file, or makes a new state when there is none.
fn read_state(path: &Path) -> Result<ClusterState, ClusterError> {
    match read_json::<ClusterState>(path)? {
        Some(s) if s.version != STATE_VERSION => Err(state_err(
            path,
            format!(
                "state format version {} is not supported (this berth reads {})",
                s.version, STATE_VERSION
            ),
        )),
        Some(s) => Ok(s),
        None => Ok(ClusterState {
            version: STATE_VERSION,
            cluster_id: uuid::Uuid::new_v4().to_string(),
            next_framework: 1,
            next_run: 1,
            frameworks: BTreeMap::new(),
            agents: BTreeMap::new(),
        }),
    }
}

/// Forgets the agents the agents file no longer names, unless they still hold reservations
/// or executors.
fn forget_gone_agents(state: &mut ClusterState, agents: &AgentBook) -> Result<(), ClusterError> {
    let gone: Vec<String> = state
        .agents
        .keys()
        .filter(|id| !agents.specs.contains_key(*id))
        .cloned()
        .collect();
    for id in gone {
        let Some(rec) = state.agents.get(&id) else {
            continue;
        };
        if !rec.checkpointed.is_empty() || rec.executors.values().any(|e| e.state.alive()) {
            return Err(ClusterError::Agent {
                id,
                message: "has reservations or executors in the cluster state but is \
                          missing from the agents file; add it back (it may be stopped or \
                          drained)"
                    .to_owned(),
            });
        }
        state.agents.remove(&id);
    }
    Ok(())
}

impl Core {
    /// Loads (or creates) the state and reconciles it with the configured agents.
    pub(crate) fn load(cfg: LocalConfig, weak: Weak<Inner>) -> Result<Core, ClusterError> {
        let root = cfg.data_dir.join("cluster");
        let state_path = root.join("state.json");
        let mut state = read_state(&state_path)?;
        let agents = AgentBook::open(&cfg.agents, &root, &mut state)?;
        forget_gone_agents(&mut state, &agents)?;
        let now = Instant::now();
        let ports = PortClaims::new(&state.cluster_id, &root, cfg.port_claims_dir.as_deref());
        let mut core = Core {
            ports,
            root,
            state_path,
            state,
            dirty: true,
            agents,
            offers: OfferBook::new(now + cfg.allocation_interval),
            sub: None,
            updates: Redelivery::new(now),
            execs: Supervision::new(weak),
            outbox: Outbox::default(),
            cfg,
        };
        core.tidy_volumes()?;
        core.persist()?;
        Ok(core)
    }

    /// Gives the core the handle its executor waiter threads record exits in.
    pub(crate) fn set_inner(&mut self, weak: Weak<Inner>) {
        self.execs.set_inner(weak);
    }

    /// Executors to follow (or kill) right after opening. Returns the agents found down
    /// (or drained) whose processes were killed: report them once the processes are gone.
    pub(crate) fn adopt(&mut self) -> Vec<TakeDown> {
        let agents: Vec<(String, AgentState)> = self
            .state
            .agents
            .iter()
            .map(|(id, a)| (id.clone(), a.state))
            .collect();
        let mut taken_down = Vec::new();
        for (agent, state) in agents {
            // A crash may have come between marking the agent down (or drained) and killing
            // and reporting what ran on it: finish that now.
            match state {
                AgentState::Up => self.adopt_executors(&agent),
                AgentState::Down => taken_down.push(self.take_down(
                    &agent,
                    TaskState::TaskUnreachable,
                    "REASON_AGENT_DISCONNECTED",
                    &format!("agent {agent} is down"),
                )),
                AgentState::Drained => taken_down.push(self.take_down(
                    &agent,
                    TaskState::TaskGoneByOperator,
                    "REASON_AGENT_REMOVED_BY_OPERATOR",
                    &format!("agent {agent} was drained by an operator"),
                )),
            }
        }
        taken_down
    }

    // ------------------------------------------------------------------ lookups

    fn framework_removed(&self, fw: &str) -> bool {
        self.state.frameworks.get(fw).is_none_or(|f| f.removed)
    }

    fn executor(&self, agent: &str, exec: &str) -> Option<&ExecutorRecord> {
        self.state.agents.get(agent)?.executors.get(exec)
    }

    fn exec_mut(&mut self, agent: &str, exec: &str) -> Option<&mut ExecutorRecord> {
        self.state.agents.get_mut(agent)?.executors.get_mut(exec)
    }

    fn task(&self, agent: &str, task: &str) -> Option<&TaskRecord> {
        self.state.agents.get(agent)?.tasks.get(task)
    }

    fn find_task(&self, task: &str) -> Option<String> {
        self.state
            .agents
            .iter()
            .find(|(_, a)| a.tasks.contains_key(task))
            .map(|(id, _)| id.clone())
    }

    fn find_executor(&self, exec: &str) -> Option<String> {
        self.state
            .agents
            .iter()
            .find(|(_, a)| a.executors.contains_key(exec))
            .map(|(id, _)| id.clone())
    }

    // ------------------------------------------------------------------ the allocator thread

    /// One round of the allocator thread; returns when it wants to run again.
    pub(crate) fn tick(&mut self, now: Instant) -> Instant {
        self.allocation_round(now);
        self.heartbeat(now);
        self.retry_due_updates(now);
        self.enforce_kill_deadlines(now);
        let _ = self.finish();
        let mut next = self.offers.next_round.min(self.updates.next_retry);
        if let Some(sub) = &self.sub {
            next = next.min(sub.next_heartbeat);
        }
        next = self.offers.next_filter_expiry(now, next);
        for t in self.execs.kill_deadlines.values() {
            next = next.min(*t);
        }
        next
    }

    // ------------------------------------------------------------------ persistence

    fn persist(&mut self) -> Result<(), ClusterError> {
        for (id, total) in &self.agents.totals {
            if let Some(rec) = self.state.agents.get_mut(id) {
                rec.checkpointed = total
                    .0
                    .iter()
                    .filter(|r| is_checkpointed(r))
                    .cloned()
                    .collect();
            }
        }
        for rec in self.state.agents.values_mut() {
            let mut done: Vec<(f64, String)> = rec
                .tasks
                .iter()
                .filter(|(_, t)| t.latest.state.is_terminal() && t.pending.is_empty())
                .map(|(id, t)| (t.latest.timestamp, id.clone()))
                .collect();
            if done.len() > KEEP_TERMINAL_TASKS {
                done.sort_by(|a, b| a.0.total_cmp(&b.0));
                for (_, id) in &done[..done.len() - KEEP_TERMINAL_TASKS] {
                    rec.tasks.remove(id);
                }
            }
        }
        write_json(&self.state_path, &self.state)?;
        self.dirty = false;
        Ok(())
    }

    /// Persists pending changes, then starts executors, writes to executors and emits
    /// events (in that order: nothing leaves before it is durable).
    pub(crate) fn finish(&mut self) -> Result<(), ClusterError> {
        let mut result = Ok(());
        if self.dirty
            && let Err(e) = self.persist()
        {
            error!(error = %e, "cannot persist the local cluster state");
            result = Err(e);
        }
        let spawns = std::mem::take(&mut self.execs.to_spawn);
        for (agent, exec) in spawns {
            self.spawn_executor(&agent, &exec);
        }
        if self.dirty
            && let Err(e) = self.persist()
        {
            error!(error = %e, "cannot persist the local cluster state");
            result = Err(e);
        }
        for (exec, msg) in std::mem::take(&mut self.outbox.to_executors) {
            self.write_exec(&exec, &msg);
        }
        for (fw, ev) in std::mem::take(&mut self.outbox.events) {
            self.emit_now(fw.as_deref(), ev);
        }
        result
    }

    // ------------------------------------------------------------------ the outbox

    fn emit(&mut self, framework: Option<&str>, ev: Event) {
        self.outbox.events.push((framework.map(str::to_owned), ev));
    }

    fn send_exec(&mut self, exec: &str, msg: AgentMessage) {
        self.outbox.to_executors.push((exec.to_owned(), msg));
    }

    fn emit_now(&mut self, framework: Option<&str>, ev: Event) {
        let Some(sub) = &self.sub else { return };
        if framework.is_some_and(|f| f != sub.framework_id) {
            return;
        }
        if sub.tx.send(ev).is_err() {
            info!(
                framework = sub.framework_id,
                "the scheduler dropped its event stream"
            );
            self.sub = None;
            self.offers.outstanding.clear();
        }
    }

    /// Drops every executor connection (on close), so executors see the agent go away.
    pub(crate) fn close(&mut self) {
        self.execs.disconnect_all();
        self.sub = None;
    }
}
