//! The state machine of the local cluster: frameworks, agents, offers, operations, status
//! updates. One mutex guards it; the allocator thread, the executor link threads, the
//! `Cluster` calls and the operator controls all take it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_mesos::{
    AgentId, Attribute, DomainInfo, ExecutorId, FaultDomain, FrameworkId, LaunchGroupOp, NamedInfo,
    Offer, OfferId, Operation, ReservationInfo, ReservationType, Resource, Scalar, StatusSource,
    TaskId, TaskInfo, TaskState, TaskStatus, ValueType,
};
use nix::sys::signal::Signal;
use tracing::{debug, error, info, warn};

use super::agents::{AgentSpec, AttributeValue};
use super::fsutil::{self, mkdirs, now_secs, read_json, sanitize, state_err, write_json};
use super::resources::{
    Resources, base_form, describe, is_checkpointed, pop_reservation, role_matches, same_bucket,
    strip_volume,
};
use super::state::{
    AgentRecord, AgentState, ClusterState, ExecutorRecord, ExecutorState, FrameworkRecord,
    STATE_VERSION, TaskRecord,
};
use super::wire::{
    AgentMessage, ExecutorMessage, ExecutorStateFile, LAUNCH_FILE, LaunchFile, TaskReport,
};
use super::{AgentView, ExecutorView, LocalConfig, ResourceSummary, TaskView, VolumeView};
use crate::protocol::{Call, ClusterError, Event, FrameworkInfo, ReconcileTask};
use berth_mesos::Filters;

/// Terminal tasks kept per agent for reconciliation once their updates are acknowledged.
const KEEP_TERMINAL_TASKS: usize = 500;
/// Acknowledged uuids remembered per task.
const KEEP_ACKED: usize = 32;

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

struct OfferRt {
    agent: String,
    framework: String,
    resources: Vec<Resource>,
}

struct Filter {
    framework: String,
    resources: Resources,
    expires: Instant,
    tick: u64,
}

struct Subscription {
    framework_id: String,
    roles: Vec<String>,
    principal: String,
    suppressed: bool,
    tx: tokio::sync::mpsc::UnboundedSender<Event>,
}

struct Conn {
    run: u64,
    stream: UnixStream,
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

/// The local cluster's state machine.
pub(crate) struct Core {
    pub cfg: LocalConfig,
    root: PathBuf,
    state_path: PathBuf,
    pub state: ClusterState,
    specs: BTreeMap<String, AgentSpec>,
    totals: BTreeMap<String, Resources>,
    offers: BTreeMap<String, OfferRt>,
    filters: BTreeMap<String, Vec<Filter>>,
    sub: Option<Subscription>,
    conns: HashMap<String, Conn>,
    pending_kills: HashMap<String, Option<f64>>,
    last_sent: HashMap<String, Instant>,
    kill_deadlines: HashMap<String, Instant>,
    pub alloc_requested: bool,
    dirty: bool,
    outbox: Vec<(Option<String>, Event)>,
    exec_outbox: Vec<(String, AgentMessage)>,
    to_spawn: Vec<(String, String)>,
    to_link: Vec<LinkKey>,
    tick_no: u64,
    next_offer: u64,
    offer_prefix: String,
    next_periodic: Instant,
    next_heartbeat: Instant,
    next_retry: Instant,
    pub weak: Weak<Inner>,
    /// Agents found down at start whose processes were killed: reported once they are gone.
    pub taken_down: Vec<TakeDown>,
}

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

fn invalid(msg: impl Into<String>) -> ClusterError {
    ClusterError::InvalidCall(msg.into())
}

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

fn op_name(op: &Operation) -> &'static str {
    match op {
        Operation::Reserve { .. } => "RESERVE",
        Operation::Unreserve { .. } => "UNRESERVE",
        Operation::Create { .. } => "CREATE",
        Operation::Destroy { .. } => "DESTROY",
        Operation::LaunchGroup { .. } => "LAUNCH_GROUP",
    }
}

/// The resources an agent's file entry describes (before dynamic reservations).
pub(crate) fn base_resources(spec: &AgentSpec, agent_dir: &Path) -> Resources {
    let mut rs = Resources::default();
    let reserved = |role: &str| {
        vec![ReservationInfo {
            kind: ReservationType::Static,
            role: role.to_owned(),
            principal: None,
            labels: None,
        }]
    };
    let (mut c, mut m, mut d) = (spec.cpus, spec.mem, spec.disk);
    let mut ports = Resources::from_list(&[Resource::ranges(
        "ports",
        spec.ports
            .iter()
            .map(|p| berth_mesos::Range {
                begin: p.begin,
                end: p.end,
            })
            .collect(),
    )]);
    for r in &spec.reserved {
        c -= r.cpus;
        m -= r.mem;
        d -= r.disk;
        for (name, v) in [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)] {
            if v > 0.0 {
                let mut res = Resource::scalar(name, v);
                res.reservations = reserved(&r.role).into();
                rs.add(&res);
            }
        }
        if !r.ports.is_empty() {
            let ranges: Vec<_> = r
                .ports
                .iter()
                .map(|p| berth_mesos::Range {
                    begin: p.begin,
                    end: p.end,
                })
                .collect();
            let _ = ports.subtract(&Resource::ranges("ports", ranges.clone()));
            let mut res = Resource::ranges("ports", ranges);
            res.reservations = reserved(&r.role).into();
            rs.add(&res);
        }
    }
    rs.add(&Resource::scalar("cpus", c));
    rs.add(&Resource::scalar("mem", m));
    rs.add(&Resource::scalar("disk", d));
    if spec.gpus > 0.0 {
        rs.add(&Resource::scalar("gpus", spec.gpus));
    }
    for p in ports.0 {
        rs.add(&p);
    }
    for mount in &spec.mounts {
        let mut res = Resource::scalar("disk", mount.size);
        res.disk = Some(berth_mesos::DiskInfo {
            persistence: None,
            volume: None,
            source: Some(berth_mesos::DiskSource {
                kind: berth_mesos::DiskSourceType::Mount,
                mount: Some(berth_mesos::DiskRoot {
                    root: spec.mount_root(agent_dir, mount).display().to_string(),
                }),
                path: None,
                profile: mount.profile.clone(),
            }),
        });
        rs.add(&res);
    }
    rs
}

fn mount_root_of(r: &Resource) -> Option<&str> {
    r.disk
        .as_ref()?
        .source
        .as_ref()?
        .mount
        .as_ref()
        .map(|m| m.root.as_str())
}

impl Core {
    /// Loads (or creates) the state and reconciles it with the configured agents.
    pub(crate) fn load(cfg: LocalConfig, weak: Weak<Inner>) -> Result<Core, ClusterError> {
        let root = cfg.data_dir.join("cluster");
        let state_path = root.join("state.json");
        let mut state = match read_json::<ClusterState>(&state_path)? {
            Some(s) => {
                if s.version != STATE_VERSION {
                    return Err(state_err(
                        &state_path,
                        format!(
                            "state format version {} is not supported (this berth reads {})",
                            s.version, STATE_VERSION
                        ),
                    ));
                }
                s
            }
            None => ClusterState {
                version: STATE_VERSION,
                cluster_id: uuid::Uuid::new_v4().to_string(),
                next_framework: 1,
                next_run: 1,
                frameworks: BTreeMap::new(),
                agents: BTreeMap::new(),
            },
        };
        let mut specs = BTreeMap::new();
        let mut totals = BTreeMap::new();
        for spec in &cfg.agents {
            let agent_dir = root.join("agents").join(sanitize(&spec.id));
            mkdirs(&agent_dir.join("volumes"))?;
            for m in &spec.mounts {
                mkdirs(&spec.mount_root(&agent_dir, m))?;
            }
            let rec = state
                .agents
                .entry(spec.id.clone())
                .or_insert_with(|| AgentRecord {
                    state: AgentState::Up,
                    checkpointed: Vec::new(),
                    executors: BTreeMap::new(),
                    tasks: BTreeMap::new(),
                });
            let mut total = base_resources(spec, &agent_dir);
            for c in &rec.checkpointed {
                total
                    .subtract(&base_form(c))
                    .map_err(|e| ClusterError::Agent {
                        id: spec.id.clone(),
                        message: format!(
                            "its reservation {} no longer fits the agents file ({e}); restore the \
                         agent's resources in the agents file",
                            describe(c)
                        ),
                    })?;
                total.add(c);
            }
            specs.insert(spec.id.clone(), spec.clone());
            totals.insert(spec.id.clone(), total);
        }
        let gone: Vec<String> = state
            .agents
            .keys()
            .filter(|id| !specs.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            let rec = &state.agents[&id];
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
        let now = Instant::now();
        let mut core = Core {
            root,
            state_path,
            state,
            specs,
            totals,
            offers: BTreeMap::new(),
            filters: BTreeMap::new(),
            sub: None,
            conns: HashMap::new(),
            pending_kills: HashMap::new(),
            last_sent: HashMap::new(),
            kill_deadlines: HashMap::new(),
            taken_down: Vec::new(),
            alloc_requested: false,
            dirty: true,
            outbox: Vec::new(),
            exec_outbox: Vec::new(),
            to_spawn: Vec::new(),
            to_link: Vec::new(),
            tick_no: 0,
            next_offer: 1,
            offer_prefix: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
            next_periodic: now + cfg.allocation_interval,
            next_heartbeat: now + cfg.heartbeat_interval,
            next_retry: now,
            weak,
            cfg,
        };
        // Volume directories of existing volumes (a crash may have come before mkdir).
        let mut vols = Vec::new();
        for (agent, total) in &core.totals {
            for r in &total.0 {
                if let Some(p) = core.volume_path(agent, r) {
                    vols.push(p);
                }
            }
        }
        for v in vols {
            mkdirs(&v)?;
        }
        core.persist()?;
        Ok(core)
    }

    /// Executors to follow (or kill) right after opening.
    pub(crate) fn adopt(&mut self) {
        let agents: Vec<String> = self.state.agents.keys().cloned().collect();
        for agent in agents {
            let up = self.state.agents[&agent].state == AgentState::Up;
            let execs: Vec<String> = self.state.agents[&agent]
                .executors
                .iter()
                .filter(|(_, e)| e.state.alive())
                .map(|(id, _)| id.clone())
                .collect();
            if !up {
                // A crash may have come between marking the agent down (or drained) and
                // killing and reporting what ran on it: finish that now.
                let (state, reason, msg) = if self.state.agents[&agent].state == AgentState::Down {
                    (
                        TaskState::TaskUnreachable,
                        "REASON_AGENT_DISCONNECTED",
                        format!("agent {agent} is down"),
                    )
                } else {
                    (
                        TaskState::TaskGoneByOperator,
                        "REASON_AGENT_REMOVED_BY_OPERATOR",
                        format!("agent {agent} was drained by an operator"),
                    )
                };
                let down = self.take_down(&agent, state, reason, &msg);
                self.taken_down.push(down);
                continue;
            }
            for id in execs {
                {
                    let e = &self.state.agents[&agent].executors[&id];
                    info!(agent, executor = id, pid = ?e.pid, "adopting executor");
                    self.to_link.push(LinkKey {
                        agent: agent.clone(),
                        executor: id.clone(),
                        run: e.run,
                        dir: e.dir.clone(),
                        pid: e.pid,
                        start_time: e.start_time,
                    });
                    if self.framework_removed(&e.framework_id.clone()) {
                        self.kill_deadlines
                            .insert(id.clone(), Instant::now() + Duration::from_secs(60));
                    }
                }
            }
        }
    }

    pub(crate) fn take_links(&mut self) -> Vec<LinkKey> {
        std::mem::take(&mut self.to_link)
    }

    fn agent_dir(&self, agent: &str) -> PathBuf {
        self.root.join("agents").join(sanitize(agent))
    }

    fn volume_path(&self, agent: &str, r: &Resource) -> Option<PathBuf> {
        let pid = r.persistence_id()?;
        Some(match mount_root_of(r) {
            Some(root) => PathBuf::from(root).join(sanitize(pid)),
            None => self.agent_dir(agent).join("volumes").join(sanitize(pid)),
        })
    }

    fn framework_removed(&self, fw: &str) -> bool {
        self.state.frameworks.get(fw).is_none_or(|f| f.removed)
    }

    fn exec_mut(&mut self, agent: &str, exec: &str) -> Option<&mut ExecutorRecord> {
        self.state.agents.get_mut(agent)?.executors.get_mut(exec)
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

    // ------------------------------------------------------------------ persistence

    fn persist(&mut self) -> Result<(), ClusterError> {
        for (id, total) in &self.totals {
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
        let spawns = std::mem::take(&mut self.to_spawn);
        for (agent, exec) in spawns {
            self.spawn_executor(&agent, &exec);
        }
        if self.dirty
            && let Err(e) = self.persist()
        {
            error!(error = %e, "cannot persist the local cluster state");
            result = Err(e);
        }
        for (exec, msg) in std::mem::take(&mut self.exec_outbox) {
            self.write_exec(&exec, &msg);
        }
        for (fw, ev) in std::mem::take(&mut self.outbox) {
            self.emit_now(fw.as_deref(), ev);
        }
        result
    }

    fn emit(&mut self, framework: Option<&str>, ev: Event) {
        self.outbox.push((framework.map(str::to_owned), ev));
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
            self.offers.clear();
        }
    }

    fn write_exec(&mut self, exec: &str, msg: &AgentMessage) {
        let Some(conn) = self.conns.get_mut(exec) else {
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
            self.conns.remove(exec);
        }
    }

    // ------------------------------------------------------------------ subscription

    pub(crate) fn subscribe(
        &mut self,
        fw: FrameworkInfo,
    ) -> Result<crate::protocol::EventStream, ClusterError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // A new subscription ends the previous one; offers never survive it.
        self.sub = None;
        self.offers.clear();
        let id = match &fw.id {
            None => {
                let id = format!("{}-{:04}", self.state.cluster_id, self.state.next_framework);
                self.state.next_framework += 1;
                id
            }
            Some(id) => {
                if self.framework_removed(id.as_str()) {
                    info!(framework = %id, "subscription refused: framework has been removed");
                    let _ = tx.send(Event::Error {
                        message: "Framework has been removed".to_owned(),
                    });
                    return Ok(rx);
                }
                id.value.clone()
            }
        };
        self.state.frameworks.insert(
            id.clone(),
            FrameworkRecord {
                name: fw.name.clone(),
                user: fw.user.clone(),
                principal: fw.principal.clone(),
                roles: fw.roles.clone(),
                removed: false,
            },
        );
        self.dirty = true;
        self.persist()?;
        info!(framework = id, name = fw.name, "framework subscribed");
        let _ = tx.send(Event::Subscribed {
            framework_id: FrameworkId::new(&id),
            heartbeat_interval_seconds: self.cfg.heartbeat_interval.as_secs_f64(),
        });
        self.sub = Some(Subscription {
            framework_id: id.clone(),
            roles: fw.roles.clone(),
            principal: fw.principal.clone(),
            suppressed: false,
            tx,
        });
        self.filters.clear();
        // Unacknowledged updates are sent again to the new subscription.
        let now = Instant::now();
        let mut heads = Vec::new();
        for rec in self.state.agents.values() {
            for (tid, t) in &rec.tasks {
                if t.framework_id == id
                    && let Some(h) = t.pending.first()
                {
                    heads.push((tid.clone(), h.clone()));
                }
            }
        }
        for (tid, h) in heads {
            self.last_sent.insert(tid, now);
            self.emit(Some(&id), Event::Update { status: h });
        }
        self.next_heartbeat = now + self.cfg.heartbeat_interval;
        self.alloc_requested = true;
        Ok(rx)
    }

    pub(crate) fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        let Some(sub) = &self.sub else {
            return Err(ClusterError::NotSubscribed);
        };
        let fw = sub.framework_id.clone();
        match call {
            Call::Accept {
                offer_ids,
                operations,
                filters,
            } => self.accept(&fw, &offer_ids, &operations, filters),
            Call::Decline { offer_ids, filters } => {
                for id in offer_ids {
                    if let Some(o) = self.offers.remove(id.as_str()) {
                        self.add_filter(&o.agent, &fw, &o.resources, filters.refuse_seconds);
                    }
                }
                Ok(())
            }
            Call::Kill {
                task_id,
                grace_period_secs,
                ..
            } => {
                self.kill(&fw, task_id.as_str(), grace_period_secs);
                Ok(())
            }
            Call::Reconcile { tasks } => {
                self.reconcile(&fw, &tasks);
                Ok(())
            }
            Call::Suppress => {
                if let Some(s) = &mut self.sub {
                    s.suppressed = true;
                }
                Ok(())
            }
            Call::Revive => {
                if let Some(s) = &mut self.sub {
                    s.suppressed = false;
                }
                for f in self.filters.values_mut() {
                    f.retain(|f| f.framework != fw);
                }
                self.alloc_requested = true;
                Ok(())
            }
            Call::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => {
                self.acknowledge(agent_id.as_str(), task_id.as_str(), &uuid);
                Ok(())
            }
            Call::Teardown => {
                self.teardown(&fw);
                Ok(())
            }
        }
    }

    // ------------------------------------------------------------------ offers

    fn add_filter(&mut self, agent: &str, fw: &str, resources: &[Resource], refuse: f64) {
        let secs = if refuse.is_finite() {
            refuse.clamp(0.0, 365.0 * 86400.0)
        } else {
            0.0
        };
        self.filters
            .entry(agent.to_owned())
            .or_default()
            .push(Filter {
                framework: fw.to_owned(),
                resources: Resources::from_list(resources),
                expires: Instant::now() + Duration::from_secs_f64(secs),
                tick: self.tick_no,
            });
    }

    fn used(&self, agent: &str) -> Vec<Resource> {
        let Some(rec) = self.state.agents.get(agent) else {
            return Vec::new();
        };
        let mut used = Vec::new();
        for t in rec.tasks.values() {
            if t.uses_resources() {
                used.extend(t.resources.iter().cloned());
            }
        }
        for e in rec.executors.values() {
            if e.state.alive() {
                used.extend(e.info.resources.iter().cloned());
            }
        }
        used
    }

    fn free(&self, agent: &str) -> Resources {
        let mut free = self.totals.get(agent).cloned().unwrap_or_default();
        for u in self.used(agent) {
            if let Err(e) = free.subtract(&u) {
                warn!(agent, error = e, "resource accounting mismatch");
            }
        }
        free
    }

    fn allocate(&mut self, now: Instant) {
        let Some(sub) = &self.sub else { return };
        if sub.suppressed {
            return;
        }
        let fw = sub.framework_id.clone();
        let roles = sub.roles.clone();
        let busy: BTreeSet<String> = self.offers.values().map(|o| o.agent.clone()).collect();
        let mut offers = Vec::new();
        let agents: Vec<String> = self.specs.keys().cloned().collect();
        for agent in agents {
            if busy.contains(&agent) || self.state.agents[&agent].state != AgentState::Up {
                continue;
            }
            let offerable: Vec<Resource> = self
                .free(&agent)
                .0
                .into_iter()
                .filter(|r| role_matches(r.reservation(), &roles))
                .collect();
            if offerable.is_empty() {
                continue;
            }
            let tick = self.tick_no;
            let filtered = self.filters.get(&agent).is_some_and(|fs| {
                fs.iter().any(|f| {
                    f.framework == fw
                        && (now < f.expires || f.tick == tick)
                        && f.resources.contains_all(&offerable)
                })
            });
            if filtered {
                continue;
            }
            let spec = &self.specs[&agent];
            let id = format!("{}-O{}", self.offer_prefix, self.next_offer);
            self.next_offer += 1;
            let executor_ids = self.state.agents[&agent]
                .executors
                .iter()
                .filter(|(_, e)| e.framework_id == fw && e.state.accepts_tasks())
                .map(|(id, _)| ExecutorId::new(id))
                .collect();
            let offer = Offer {
                id: OfferId::new(&id),
                framework_id: FrameworkId::new(&fw),
                agent_id: AgentId::new(&agent),
                hostname: spec.hostname.clone(),
                domain: spec.zone.as_ref().map(|z| DomainInfo {
                    fault_domain: Some(FaultDomain {
                        region: NamedInfo {
                            name: spec.region.clone(),
                        },
                        zone: NamedInfo { name: z.clone() },
                    }),
                }),
                attributes: spec
                    .attributes
                    .iter()
                    .map(|a| match &a.value {
                        AttributeValue::Text(t) => Attribute::text(&a.name, t),
                        AttributeValue::Scalar(v) => Attribute {
                            name: a.name.clone(),
                            kind: ValueType::Scalar,
                            scalar: Some(Scalar { value: *v }),
                            ranges: None,
                            set: None,
                            text: None,
                        },
                    })
                    .collect(),
                resources: offerable.clone(),
                executor_ids,
            };
            self.offers.insert(
                id,
                OfferRt {
                    agent: agent.clone(),
                    framework: fw.clone(),
                    resources: offerable,
                },
            );
            offers.push(offer);
        }
        if !offers.is_empty() {
            debug!(count = offers.len(), "sending offers");
            self.emit(Some(&fw), Event::Offers { offers });
        }
    }

    fn rescind_agent(&mut self, agent: &str) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(o) = self.offers.remove(&id) {
                self.emit(
                    Some(&o.framework),
                    Event::Rescind {
                        offer_id: OfferId::new(id),
                    },
                );
            }
        }
        self.filters.remove(agent);
    }

    /// One round of the allocator thread; returns when it wants to run again.
    pub(crate) fn tick(&mut self, now: Instant) -> Instant {
        if now >= self.next_periodic {
            self.tick_no += 1;
            self.next_periodic = now + self.cfg.allocation_interval;
            for fs in self.filters.values_mut() {
                fs.retain(|f| f.expires > now);
            }
            self.alloc_requested = true;
        }
        // A filter that just expired frees resources right away.
        if self
            .filters
            .values()
            .flatten()
            .any(|f| f.expires <= now && f.tick != self.tick_no)
        {
            for fs in self.filters.values_mut() {
                fs.retain(|f| f.expires > now || f.tick == self.tick_no);
            }
            self.alloc_requested = true;
        }
        if self.alloc_requested {
            self.alloc_requested = false;
            self.allocate(now);
        }
        if self.sub.is_some() && now >= self.next_heartbeat {
            self.next_heartbeat = now + self.cfg.heartbeat_interval;
            self.emit(None, Event::Heartbeat);
        }
        if now >= self.next_retry {
            self.next_retry =
                now + (self.cfg.update_retry_interval / 4).max(Duration::from_millis(50));
            self.retry_updates(now);
        }
        let due: Vec<String> = self
            .kill_deadlines
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(e, _)| e.clone())
            .collect();
        for exec in due {
            self.kill_deadlines.remove(&exec);
            if let Some(agent) = self.find_executor(&exec) {
                warn!(
                    executor = exec,
                    "executor did not shut down in time; killing it"
                );
                self.kill_executor_processes(&agent, &exec);
            }
        }
        let _ = self.finish();
        let mut next = self.next_periodic.min(self.next_retry);
        if self.sub.is_some() {
            next = next.min(self.next_heartbeat);
        }
        for f in self.filters.values().flatten() {
            if f.expires > now {
                next = next.min(f.expires);
            }
        }
        for t in self.kill_deadlines.values() {
            next = next.min(*t);
        }
        next
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
                    let last = self.last_sent.get(tid);
                    if last.is_none_or(|l| now.duration_since(*l) >= self.cfg.update_retry_interval)
                    {
                        due.push((tid.clone(), h.clone()));
                    }
                }
            }
        }
        for (tid, h) in due {
            debug!(task = tid, "re-sending unacknowledged update");
            self.last_sent.insert(tid, now);
            self.emit(Some(&fw), Event::Update { status: h });
        }
    }

    // ------------------------------------------------------------------ accept

    fn accept(
        &mut self,
        fw: &str,
        offer_ids: &[OfferId],
        operations: &[Operation],
        filters: Filters,
    ) -> Result<(), ClusterError> {
        let dropped_tasks: Vec<(String, String)> = operations
            .iter()
            .filter_map(|op| match op {
                Operation::LaunchGroup { launch_group } => Some(launch_group),
                _ => None,
            })
            .flat_map(|lg| {
                lg.task_group
                    .tasks
                    .iter()
                    .map(|t| (t.task_id.value.clone(), t.agent_id.value.clone()))
            })
            .collect();
        let res = self.accept_inner(fw, offer_ids, operations, filters);
        if let Err(e) = &res {
            warn!(error = %e, "ACCEPT refused");
            for (task, agent) in dropped_tasks {
                if task.is_empty() {
                    continue;
                }
                let mut st = agent_status(
                    &task,
                    TaskState::TaskDropped,
                    &agent,
                    None,
                    Some("REASON_INVALID_OFFERS"),
                    e.to_string(),
                    false,
                );
                st.source = Some(StatusSource::SourceMaster);
                self.emit(Some(fw), Event::Update { status: st });
            }
            self.alloc_requested = true;
            let _ = self.finish();
        }
        res
    }

    fn accept_inner(
        &mut self,
        fw: &str,
        offer_ids: &[OfferId],
        operations: &[Operation],
        filters: Filters,
    ) -> Result<(), ClusterError> {
        if offer_ids.is_empty() {
            return Err(invalid("ACCEPT names no offer"));
        }
        let mut agent: Option<String> = None;
        let mut offered = Vec::new();
        for id in offer_ids {
            let Some(o) = self.offers.get(id.as_str()) else {
                return Err(invalid(format!(
                    "offer {id} is not outstanding (unknown, already used, declined or rescinded)"
                )));
            };
            if o.framework != fw {
                return Err(invalid(format!("offer {id} was made to another framework")));
            }
            if agent.as_ref().is_some_and(|a| *a != o.agent) {
                return Err(invalid("the offers of one ACCEPT must come from one agent"));
            }
            agent = Some(o.agent.clone());
            offered.extend(o.resources.iter().cloned());
        }
        let agent = agent.unwrap_or_default();
        for id in offer_ids {
            self.offers.remove(id.as_str());
        }
        let (principal, roles) = match &self.sub {
            Some(s) => (s.principal.clone(), s.roles.clone()),
            None => return Err(ClusterError::NotSubscribed),
        };
        let mut avail = Resources::from_list(&offered);
        let mut total = self.totals[&agent].clone();
        let mut rec = self.state.agents[&agent].clone();
        let mut next_run = self.state.next_run;
        let mut created = Vec::new();
        let mut destroyed = Vec::new();
        let mut launches: Vec<(String, bool, Vec<TaskInfo>)> = Vec::new();
        for (i, op) in operations.iter().enumerate() {
            let ctx = |m: String| invalid(format!("operation {i} ({}): {m}", op_name(op)));
            match op {
                Operation::Reserve { reserve } => {
                    for r in &reserve.resources {
                        let Some(last) = r.reservations.last() else {
                            return Err(ctx(format!("{} carries no reservation", describe(r))));
                        };
                        if last.kind != ReservationType::Dynamic {
                            return Err(ctx(format!(
                                "{}: RESERVE makes DYNAMIC reservations only",
                                describe(r)
                            )));
                        }
                        if !roles.contains(&last.role) {
                            return Err(ctx(format!(
                                "role `{}` is not one of the framework's roles {:?}",
                                last.role, roles
                            )));
                        }
                        if last.principal.as_ref().is_some_and(|p| *p != principal) {
                            return Err(ctx(format!(
                                "principal {:?} is not the framework's principal `{principal}`",
                                last.principal
                            )));
                        }
                        if r.persistence_id().is_some() {
                            return Err(ctx(format!(
                                "{}: RESERVE cannot carry a volume; use CREATE after it",
                                describe(r)
                            )));
                        }
                        let pre = pop_reservation(r);
                        avail
                            .subtract(&pre)
                            .map_err(|e| ctx(format!("not in the offer: {e}")))?;
                        avail.add(r);
                        total.subtract(&pre).map_err(&ctx)?;
                        total.add(r);
                    }
                }
                Operation::Unreserve { unreserve } => {
                    for r in &unreserve.resources {
                        if r.reservations
                            .last()
                            .is_none_or(|x| x.kind != ReservationType::Dynamic)
                        {
                            return Err(ctx(format!(
                                "{}: only DYNAMIC reservations can be unreserved",
                                describe(r)
                            )));
                        }
                        if let Some(pid) = r.persistence_id() {
                            return Err(ctx(format!(
                                "{} is persistent volume `{pid}`: DESTROY it before UNRESERVE",
                                describe(r)
                            )));
                        }
                        if let Err(e) = avail.subtract(r) {
                            let plain = strip_volume(r);
                            if let Some(v) = total.0.iter().find(|v| {
                                v.persistence_id().is_some()
                                    && same_bucket(&strip_volume(v), &plain)
                            }) {
                                return Err(ctx(format!(
                                    "persistent volume `{}` still exists on this reservation; \
                                     DESTROY it before UNRESERVE",
                                    v.persistence_id().unwrap_or_default()
                                )));
                            }
                            return Err(ctx(format!("not in the offer: {e}")));
                        }
                        let pre = pop_reservation(r);
                        avail.add(&pre);
                        total.subtract(r).map_err(&ctx)?;
                        total.add(&pre);
                    }
                }
                Operation::Create { create } => {
                    for v in &create.volumes {
                        let Some(pid) = v.persistence_id() else {
                            return Err(ctx(format!("{} has no disk.persistence", describe(v))));
                        };
                        if v.disk.as_ref().and_then(|d| d.volume.as_ref()).is_none() {
                            return Err(ctx(format!("volume `{pid}` has no disk.volume")));
                        }
                        if v.name != "disk" || v.reservations.is_empty() {
                            return Err(ctx(format!(
                                "volume `{pid}` must be a reserved `disk` resource"
                            )));
                        }
                        if total.0.iter().any(|r| r.persistence_id() == Some(pid)) {
                            return Err(ctx(format!(
                                "a persistent volume `{pid}` already exists on agent {agent}"
                            )));
                        }
                        let base = strip_volume(v);
                        avail
                            .subtract(&base)
                            .map_err(|e| ctx(format!("not in the offer: {e}")))?;
                        avail.add(v);
                        total.subtract(&base).map_err(&ctx)?;
                        total.add(v);
                        if let Some(p) = self.volume_path(&agent, v) {
                            created.push(p);
                        }
                    }
                }
                Operation::Destroy { destroy } => {
                    for v in &destroy.volumes {
                        let Some(pid) = v.persistence_id() else {
                            return Err(ctx(format!("{} is not a persistent volume", describe(v))));
                        };
                        avail.subtract(v).map_err(|e| {
                            ctx(format!(
                                "volume `{pid}` is not in the offer (in use by a task or \
                                 executor, or already destroyed): {e}"
                            ))
                        })?;
                        avail.add(&strip_volume(v));
                        total.subtract(v).map_err(&ctx)?;
                        total.add(&strip_volume(v));
                        if let Some(p) = self.volume_path(&agent, v) {
                            destroyed.push(p);
                        }
                    }
                }
                Operation::LaunchGroup { launch_group } => {
                    let (exec, new_run, tasks) = self
                        .plan_launch(
                            fw,
                            &agent,
                            &mut avail,
                            &mut rec,
                            launch_group,
                            &mut next_run,
                        )
                        .map_err(ctx)?;
                    if let Some(l) = launches.iter_mut().find(|l| l.0 == exec) {
                        l.2.extend(tasks);
                    } else {
                        launches.push((exec, new_run, tasks));
                    }
                }
            }
        }
        // Launch files first (they only count once the state names them), then the state.
        let user = self.state.frameworks.get(fw).map(|f| f.user.clone());
        for (exec, new_run, tasks) in &launches {
            let e = &rec.executors[exec];
            mkdirs(&e.dir.join(super::wire::TASKS_DIR))?;
            let path = e.dir.join(LAUNCH_FILE);
            let mut lf = if *new_run {
                None
            } else {
                read_json::<LaunchFile>(&path)?.filter(|l| l.run == e.run)
            }
            .unwrap_or_else(|| LaunchFile {
                run: e.run,
                framework_id: FrameworkId::new(fw),
                agent_id: AgentId::new(&agent),
                hostname: self.specs[&agent].hostname.clone(),
                executor: e.info.clone(),
                tasks: Vec::new(),
                volumes: BTreeMap::new(),
                default_user: user.clone().filter(|u| !u.is_empty()),
                resend_interval_ms: millis(self.cfg.executor_resend_interval),
                orphan_timeout_ms: millis(self.cfg.executor_orphan_timeout),
                default_kill_grace_ms: millis(self.cfg.default_kill_grace),
            });
            for r in e
                .info
                .resources
                .iter()
                .chain(tasks.iter().flat_map(|t| t.resources.iter()))
            {
                if let (Some(pid), Some(p)) = (r.persistence_id(), self.volume_path(&agent, r)) {
                    lf.volumes.insert(pid.to_owned(), p);
                }
            }
            lf.tasks.extend(tasks.iter().cloned());
            write_json(&path, &lf)?;
        }
        let old_rec = self.state.agents.insert(agent.clone(), rec);
        let old_total = self.totals.insert(agent.clone(), total);
        let old_run = self.state.next_run;
        self.state.next_run = next_run;
        if let Err(e) = self.persist() {
            if let Some(r) = old_rec {
                self.state.agents.insert(agent.clone(), r);
            }
            if let Some(t) = old_total {
                self.totals.insert(agent.clone(), t);
            }
            self.state.next_run = old_run;
            return Err(e);
        }
        for p in destroyed {
            info!(path = %p.display(), "destroying volume");
            if let Err(e) = fs::remove_dir_all(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                error!(path = %p.display(), error = %e, "cannot remove the volume directory");
            }
        }
        for p in created {
            if let Err(e) = mkdirs(&p) {
                error!(error = %e, "cannot create the volume directory");
            }
        }
        for (exec, new_run, tasks) in launches {
            if new_run {
                // A previous run of this id may still be exiting: nothing for the new run
                // may go over its connection.
                if let Some(c) = self.conns.remove(&exec) {
                    let _ = c.stream.shutdown(std::net::Shutdown::Both);
                }
                self.to_spawn.push((agent.clone(), exec));
            } else {
                self.exec_outbox
                    .push((exec, AgentMessage::Launch { tasks }));
            }
        }
        // As in Mesos, what is left of the offer counts as declined for refuse_seconds; with
        // 0 it is offered again right away (a DECLINE with 0 waits for the next round).
        let unused = avail.0;
        if !unused.is_empty() && filters.refuse_seconds > 0.0 {
            self.add_filter(&agent, fw, &unused, filters.refuse_seconds);
        }
        self.alloc_requested = true;
        self.finish()
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_launch(
        &self,
        fw: &str,
        agent: &str,
        avail: &mut Resources,
        rec: &mut AgentRecord,
        lg: &LaunchGroupOp,
        next_run: &mut u64,
    ) -> Result<(String, bool, Vec<TaskInfo>), String> {
        let info = &lg.executor;
        let exec = info.executor_id.value.clone();
        if exec.is_empty() {
            return Err("the executor has no executor_id".to_owned());
        }
        if info.framework_id.as_ref().is_some_and(|f| f.as_str() != fw) {
            return Err(format!("executor {exec} names another framework"));
        }
        for (aid, a) in &self.state.agents {
            if aid != agent && a.executors.get(&exec).is_some_and(|e| e.state.alive()) {
                return Err(format!("executor {exec} is running on agent {aid}"));
            }
        }
        if lg.task_group.tasks.is_empty() {
            return Err("the task group is empty".to_owned());
        }
        let reuse = rec
            .executors
            .get(&exec)
            .is_some_and(|e| e.state.accepts_tasks() && e.framework_id == fw);
        if !reuse {
            for r in &info.resources {
                avail
                    .subtract(r)
                    .map_err(|e| format!("executor {exec}: not in the offer: {e}"))?;
            }
        }
        let mut seen = BTreeSet::new();
        for t in &lg.task_group.tasks {
            let tid = t.task_id.as_str();
            if tid.is_empty() {
                return Err(format!("task `{}` has no task_id", t.name));
            }
            if !seen.insert(tid) {
                return Err(format!("task id {tid} appears twice"));
            }
            if !t.agent_id.value.is_empty() && t.agent_id.as_str() != agent {
                return Err(format!(
                    "task {tid} names agent {} but the offer is from {agent}",
                    t.agent_id
                ));
            }
            if t.command.as_ref().is_none_or(|c| c.value.trim().is_empty()) {
                return Err(format!("task {tid} has no command"));
            }
            let live = rec
                .tasks
                .get(tid)
                .is_some_and(|x| !x.latest.state.is_terminal())
                || self.state.agents.iter().any(|(aid, a)| {
                    aid != agent
                        && a.tasks
                            .get(tid)
                            .is_some_and(|x| !x.latest.state.is_terminal())
                });
            if live {
                return Err(format!("task id {tid} is already in use"));
            }
            for r in &t.resources {
                avail
                    .subtract(r)
                    .map_err(|e| format!("task {tid}: not in the offer: {e}"))?;
            }
        }
        let new_run = !reuse;
        if new_run {
            let run = *next_run;
            *next_run += 1;
            rec.executors.insert(
                exec.clone(),
                ExecutorRecord {
                    framework_id: fw.to_owned(),
                    info: berth_mesos::ExecutorInfo::clone(info),
                    dir: self
                        .agent_dir(agent)
                        .join("executors")
                        .join(sanitize(&exec)),
                    run,
                    pid: None,
                    start_time: None,
                    state: ExecutorState::Launching,
                    tasks: Vec::new(),
                },
            );
        }
        let e = rec
            .executors
            .get_mut(&exec)
            .ok_or("executor record vanished")?;
        for t in &lg.task_group.tasks {
            e.tasks.push(t.task_id.value.clone());
            let mut st = agent_status(
                t.task_id.as_str(),
                TaskState::TaskStaging,
                agent,
                Some(&exec),
                None,
                "launch accepted",
                false,
            );
            st.source = Some(StatusSource::SourceMaster);
            rec.tasks.insert(
                t.task_id.value.clone(),
                TaskRecord {
                    framework_id: fw.to_owned(),
                    executor_id: exec.clone(),
                    name: t.name.clone(),
                    resources: t.resources.clone(),
                    latest: st,
                    pending: Vec::new(),
                    acked: Vec::new(),
                },
            );
        }
        Ok((exec, new_run, lg.task_group.tasks.clone()))
    }

    // ------------------------------------------------------------------ kill, reconcile, ack

    fn kill(&mut self, fw: &str, task: &str, grace: Option<f64>) {
        let agent = self
            .find_task(task)
            .filter(|a| self.state.agents[a].tasks[task].framework_id == fw);
        let Some(agent) = agent else {
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
        let agent_state = self.state.agents[&agent].state;
        let t = &self.state.agents[&agent].tasks[task];
        let exec = t.executor_id.clone();
        if !t.uses_resources() || agent_state != AgentState::Up {
            let mut st = t.latest.clone();
            st.uuid = None;
            st.reason = Some("REASON_RECONCILIATION".to_owned());
            self.emit(Some(fw), Event::Update { status: st });
            return;
        }
        let exec_alive = self.state.agents[&agent]
            .executors
            .get(&exec)
            .is_some_and(|e| e.state.alive());
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
        if self.conns.contains_key(&exec) {
            self.exec_outbox.push((
                exec,
                AgentMessage::Kill {
                    task_id: TaskId::new(task),
                    grace_period_secs: grace,
                },
            ));
        } else {
            self.pending_kills.insert(task.to_owned(), grace);
        }
    }

    fn reconcile(&mut self, fw: &str, tasks: &[ReconcileTask]) {
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

    fn acknowledge(&mut self, agent: &str, task: &str, uuid: &str) {
        let agent = if self
            .state
            .agents
            .get(agent)
            .is_some_and(|a| a.tasks.contains_key(task))
        {
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
        let exec = st.executor_id.clone().map(|e| e.value);
        self.dirty = true;
        if st.source == Some(StatusSource::SourceExecutor)
            && let Some(exec) = exec
        {
            self.exec_outbox.push((
                exec,
                AgentMessage::Ack {
                    task_id: TaskId::new(task),
                    uuid: uuid.to_owned(),
                },
            ));
        }
        self.last_sent.remove(task);
        if let Some(n) = next {
            self.last_sent.insert(task.to_owned(), Instant::now());
            self.emit(Some(&fw), Event::Update { status: n });
        }
    }

    /// Records a status (from an executor, or made by the agent) and queues it for the
    /// scheduler. Returns whether it was new.
    fn ingest(&mut self, agent: &str, status: TaskStatus, from_executor: bool) -> bool {
        let task = status.task_id.value.clone();
        let uuid = status.uuid.clone();
        let exec = status.executor_id.clone().map(|e| e.value);
        let ack_back = |core: &mut Core| {
            if from_executor && let (Some(u), Some(e)) = (&uuid, &exec) {
                core.exec_outbox.push((
                    e.clone(),
                    AgentMessage::Ack {
                        task_id: TaskId::new(&task),
                        uuid: u.clone(),
                    },
                ));
            }
        };
        let removed_fw = self
            .state
            .agents
            .get(agent)
            .and_then(|a| a.tasks.get(&task))
            .map(|t| self.framework_removed(&t.framework_id));
        let Some(t) = self
            .state
            .agents
            .get_mut(agent)
            .and_then(|a| a.tasks.get_mut(&task))
        else {
            warn!(agent, task, "status update for an unknown task ignored");
            ack_back(self);
            return false;
        };
        if let Some(u) = &uuid {
            if t.acked.contains(u) {
                ack_back(self);
                return false;
            }
            if t.pending.iter().any(|s| s.uuid.as_ref() == Some(u)) {
                return false;
            }
        }
        // A terminal state is final: stale updates (e.g. unacknowledged STARTING/RUNNING read
        // back from an exited executor's state file) must not bring the task back to life.
        if t.latest.state.is_terminal() && (from_executor || !status.state.is_terminal()) {
            debug!(task, "update after a terminal status ignored");
            ack_back(self);
            return false;
        }
        let was = t.uses_resources();
        t.latest = status.clone();
        let fw = t.framework_id.clone();
        let mut head = false;
        if let Some(u) = &uuid {
            if removed_fw == Some(true) {
                t.acked.push(u.clone());
                ack_back(self);
            } else {
                t.pending.push(status.clone());
                head = t.pending.len() == 1;
            }
        }
        let Some(t) = self
            .state
            .agents
            .get_mut(agent)
            .and_then(|a| a.tasks.get_mut(&task))
        else {
            return false;
        };
        if was && !t.uses_resources() {
            self.alloc_requested = true;
            self.pending_kills.remove(&task);
        }
        self.dirty = true;
        debug!(agent, task, state = status.state.as_str(), "status update");
        if head {
            self.last_sent.insert(task.clone(), Instant::now());
            self.emit(Some(&fw), Event::Update { status });
        }
        true
    }

    // ------------------------------------------------------------------ teardown

    fn teardown(&mut self, fw: &str) {
        info!(framework = fw, "tearing down framework");
        if let Some(f) = self.state.frameworks.get_mut(fw) {
            f.removed = true;
        }
        self.dirty = true;
        let mut to_shutdown = Vec::new();
        for (aid, a) in &mut self.state.agents {
            for t in a.tasks.values_mut() {
                if t.framework_id == fw {
                    t.pending.clear();
                }
            }
            for (eid, e) in &mut a.executors {
                if e.framework_id == fw && e.state.alive() {
                    e.state = ExecutorState::ShuttingDown;
                    to_shutdown.push((aid.clone(), eid.clone()));
                }
            }
        }
        let deadline = Instant::now()
            + self.cfg.default_kill_grace.max(Duration::from_secs(1)) * 2
            + Duration::from_secs(5);
        for (_, exec) in to_shutdown {
            self.exec_outbox.push((
                exec.clone(),
                AgentMessage::Shutdown {
                    grace_period_secs: None,
                },
            ));
            self.kill_deadlines.insert(exec, deadline);
        }
        self.offers.retain(|_, o| o.framework != fw);
        for fs in self.filters.values_mut() {
            fs.retain(|f| f.framework != fw);
        }
        if let Err(e) = self.persist() {
            error!(error = %e, "cannot persist the teardown");
        }
        self.sub = None;
    }

    // ------------------------------------------------------------------ executors

    fn spawn_executor(&mut self, agent: &str, exec: &str) {
        let Some(e) = self.exec_mut(agent, exec).cloned() else {
            return;
        };
        let out = fsutil::open_append(&e.dir.join("stdout"));
        let err = fsutil::open_append(&e.dir.join("stderr"));
        let (out, err) = match (out, err) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(x), _) | (_, Err(x)) => {
                self.executor_failed_to_start(
                    agent,
                    exec,
                    &format!("cannot open its log files: {x}"),
                );
                return;
            }
        };
        let mut cmd = std::process::Command::new(&self.cfg.executor_program);
        cmd.args(&self.cfg.executor_args)
            .arg("--dir")
            .arg(&e.dir)
            .current_dir(&e.dir)
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
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(x) => {
                let msg = format!(
                    "cannot start executor `{}`: {x}",
                    self.cfg.executor_program.display()
                );
                self.executor_failed_to_start(agent, exec, &msg);
                return;
            }
        };
        let pid = child.id() as i32;
        let start_time = fsutil::proc_stat(pid).map(|s| s.start_time);
        info!(agent, executor = exec, pid, run = e.run, "started executor");
        if let Some(inner) = self.weak.upgrade() {
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
        if let Some(rec) = self.exec_mut(agent, exec) {
            rec.pid = Some(pid);
            rec.start_time = start_time;
        }
        self.dirty = true;
        self.to_link.push(LinkKey {
            agent: agent.to_owned(),
            executor: exec.to_owned(),
            run: e.run,
            dir: e.dir.clone(),
            pid: Some(pid),
            start_time,
        });
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
        for t in tasks {
            if self.state.agents[agent]
                .tasks
                .get(&t)
                .is_some_and(TaskRecord::uses_resources)
            {
                let st = agent_status(
                    &t,
                    TaskState::TaskFailed,
                    agent,
                    Some(exec),
                    Some("REASON_CONTAINER_LAUNCH_FAILED"),
                    msg,
                    true,
                );
                self.ingest(agent, st, false);
            }
        }
        self.alloc_requested = true;
    }

    /// Starts the executor again after a crash of berth run that came between recording it
    /// and spawning it. Returns the link key of the new process.
    pub(crate) fn respawn(&mut self, key: &LinkKey) -> Option<LinkKey> {
        let e = self
            .state
            .agents
            .get(&key.agent)?
            .executors
            .get(&key.executor)?;
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
            .to_link
            .iter()
            .position(|k| k.executor == key.executor)?;
        Some(self.to_link.remove(pos))
    }

    /// Whether a link thread for `key` should keep going.
    pub(crate) fn link_wanted(&self, key: &LinkKey) -> bool {
        self.state
            .agents
            .get(&key.agent)
            .and_then(|a| a.executors.get(&key.executor))
            .is_some_and(|e| e.run == key.run && e.state.alive())
    }

    pub(crate) fn on_connected(&mut self, key: &LinkKey, stream: UnixStream) -> bool {
        if !self.link_wanted(key) {
            return false;
        }
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        self.conns.insert(
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
            .conns
            .get(&key.executor)
            .is_some_and(|c| c.run == key.run)
        {
            self.conns.remove(&key.executor);
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
            ExecutorMessage::Idle => {
                let rec = &self.state.agents[&key.agent];
                let e = &rec.executors[&key.executor];
                let busy = e
                    .tasks
                    .iter()
                    .any(|t| rec.tasks.get(t).is_some_and(TaskRecord::uses_resources));
                if e.state.accepts_tasks() && !busy {
                    info!(
                        executor = key.executor,
                        "executor is idle; shutting it down"
                    );
                    if let Some(e) = self.exec_mut(&key.agent, &key.executor) {
                        e.state = ExecutorState::ShuttingDown;
                    }
                    self.dirty = true;
                    self.exec_outbox.push((
                        key.executor.clone(),
                        AgentMessage::Shutdown {
                            grace_period_secs: None,
                        },
                    ));
                }
            }
        }
        let _ = self.finish();
    }

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
        let exec = key.executor.clone();
        let fw;
        let state;
        {
            let Some(e) = self.exec_mut(&key.agent, &exec) else {
                return;
            };
            if e.pid != Some(pid) {
                e.pid = Some(pid);
                e.start_time = fsutil::proc_stat(pid).map(|s| s.start_time);
            }
            if e.state == ExecutorState::Launching {
                e.state = ExecutorState::Running;
            }
            fw = e.framework_id.clone();
            state = e.state;
        }
        self.dirty = true;
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
        if self.framework_removed(&fw) || state == ExecutorState::ShuttingDown {
            self.exec_outbox.push((
                exec,
                AgentMessage::Shutdown {
                    grace_period_secs: None,
                },
            ));
            return;
        }
        let rec = &self.state.agents[&key.agent];
        let missing: Vec<String> = rec.executors[&exec]
            .tasks
            .iter()
            .filter(|t| {
                !known.contains(*t) && rec.tasks.get(*t).is_some_and(TaskRecord::uses_resources)
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            match read_json::<LaunchFile>(&key.dir.join(LAUNCH_FILE)) {
                Ok(Some(lf)) => {
                    let tasks: Vec<TaskInfo> = lf
                        .tasks
                        .into_iter()
                        .filter(|t| missing.contains(&t.task_id.value))
                        .collect();
                    if !tasks.is_empty() {
                        self.exec_outbox
                            .push((exec.clone(), AgentMessage::Launch { tasks }));
                    }
                }
                Ok(None) => error!(executor = exec, "launch file missing"),
                Err(e) => error!(executor = exec, error = %e, "cannot read the launch file"),
            }
        }
        let kills: Vec<(String, Option<f64>)> = self
            .pending_kills
            .iter()
            .filter(|(t, _)| {
                self.state.agents[&key.agent].executors[&exec]
                    .tasks
                    .contains(*t)
            })
            .map(|(t, g)| (t.clone(), *g))
            .collect();
        for (t, g) in kills {
            self.pending_kills.remove(&t);
            self.exec_outbox.push((
                exec.clone(),
                AgentMessage::Kill {
                    task_id: TaskId::new(t),
                    grace_period_secs: g,
                },
            ));
        }
    }

    /// The executor process of `key` is gone: read what it left, kill what it left running,
    /// fail the tasks it did not finish, and tell the scheduler.
    pub(crate) fn on_exit(&mut self, key: &LinkKey, status: Option<i32>) {
        self.on_disconnected(key);
        if !self.link_wanted(key) {
            return;
        }
        let exec = key.executor.clone();
        let agent = key.agent.clone();
        let state_file: Option<ExecutorStateFile> =
            read_json(&key.dir.join(super::wire::STATE_FILE))
                .ok()
                .flatten()
                .filter(|s: &ExecutorStateFile| s.run == key.run);
        let mut pgids = Vec::new();
        if let Some(sf) = state_file {
            for (_, tr) in sf.tasks {
                pgids.extend(tr.pgid);
                for s in tr.unacked {
                    self.ingest(&agent, s, false);
                }
            }
        }
        if let Some(pid) = key.pid {
            let n = fsutil::kill_session(pid, key.start_time, &pgids);
            if n > 0 {
                info!(
                    executor = exec,
                    processes = n,
                    "killed processes the executor left behind"
                );
            }
        }
        let desc = match status {
            Some(s) if s & 0x7f == 0 => format!("exited with status {}", (s >> 8) & 0xff),
            Some(s) => format!("was killed by signal {}", s & 0x7f),
            None => "is gone".to_owned(),
        };
        let log = key.dir.join("stderr");
        info!(agent, executor = exec, "executor {desc}");
        let (fw, tasks) = match self.exec_mut(&agent, &exec) {
            Some(e) => {
                e.state = ExecutorState::Terminated;
                (e.framework_id.clone(), e.tasks.clone())
            }
            None => return,
        };
        for t in tasks {
            if self.state.agents[&agent]
                .tasks
                .get(&t)
                .is_some_and(|x| !x.latest.state.is_terminal())
            {
                let st = agent_status(
                    &t,
                    TaskState::TaskFailed,
                    &agent,
                    Some(&exec),
                    Some("REASON_EXECUTOR_TERMINATED"),
                    format!("executor {exec} {desc} (its log: {})", log.display()),
                    true,
                );
                self.ingest(&agent, st, false);
            }
        }
        self.kill_deadlines.remove(&exec);
        self.dirty = true;
        self.alloc_requested = true;
        self.emit(
            Some(&fw),
            Event::Failure {
                agent_id: Some(AgentId::new(&agent)),
                executor_id: Some(ExecutorId::new(&exec)),
                status,
            },
        );
        let _ = self.finish();
    }

    /// SIGKILLs an executor and everything in its session; returns the session id.
    fn kill_executor_processes(&mut self, agent: &str, exec: &str) -> Option<i32> {
        let e = self
            .state
            .agents
            .get(agent)
            .and_then(|a| a.executors.get(exec))?;
        let mut pgids = Vec::new();
        if let Ok(Some(sf)) = read_json::<ExecutorStateFile>(&e.dir.join(super::wire::STATE_FILE)) {
            pgids.extend(sf.tasks.values().filter_map(|t| t.pgid));
        }
        if let Some(pid) = e.pid {
            if fsutil::pid_alive(pid, e.start_time) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            fsutil::kill_session(pid, e.start_time, &pgids);
        }
        let sid = e.pid;
        if let Some(c) = self.conns.remove(exec) {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        sid
    }

    // ------------------------------------------------------------------ operator controls

    fn check_agent(&self, id: &str) -> Result<AgentState, ClusterError> {
        match self.state.agents.get(id) {
            Some(a) => Ok(a.state),
            None => Err(ClusterError::UnknownAgent {
                id: id.to_owned(),
                known: self.specs.keys().cloned().collect(),
            }),
        }
    }

    /// First half of taking an agent down: SIGKILLs its executors' sessions and rescinds its
    /// offer. The processes die asynchronously: wait for them with [`TakeDown::wait`]
    /// *without* holding the core's lock, then report with [`Core::finish_take_down`].
    fn take_down(
        &mut self,
        agent: &str,
        state: TaskState,
        reason: &str,
        message: &str,
    ) -> TakeDown {
        let execs: Vec<String> = self
            .state
            .agents
            .get(agent)
            .map(|a| {
                a.executors
                    .iter()
                    .filter(|(_, e)| e.state.alive())
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut sessions = Vec::new();
        for exec in &execs {
            sessions.extend(self.kill_executor_processes(agent, exec));
            if let Some(e) = self.exec_mut(agent, exec) {
                e.state = ExecutorState::Terminated;
            }
            self.kill_deadlines.remove(exec);
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

    /// Second half of taking an agent down: reports its tasks in `state` (once their
    /// processes are gone, so their ports and files are free).
    pub(crate) fn finish_take_down(&mut self, down: TakeDown) -> Result<(), ClusterError> {
        let agent = down.agent.as_str();
        let tasks: Vec<(String, String)> = self
            .state
            .agents
            .get(agent)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|(_, t)| {
                        !t.latest.state.is_terminal()
                            && t.latest.state != down.state
                            && !self.framework_removed(&t.framework_id)
                    })
                    .map(|(id, t)| (id.clone(), t.executor_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (task, exec) in tasks {
            self.pending_kills.remove(&task);
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
        if let Some(a) = self.state.agents.get_mut(id) {
            a.state = AgentState::Down;
        }
        self.dirty = true;
        self.persist()?;
        let down = self.take_down(
            id,
            TaskState::TaskUnreachable,
            "REASON_AGENT_DISCONNECTED",
            &format!("agent {id} is down"),
        );
        self.finish()?;
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
        let gone: Vec<(String, String)> = self.state.agents[id]
            .tasks
            .iter()
            .filter(|(_, t)| {
                !t.latest.state.is_terminal() && !self.framework_removed(&t.framework_id)
            })
            .map(|(tid, t)| (tid.clone(), t.executor_id.clone()))
            .collect();
        for (task, exec) in gone {
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
        self.alloc_requested = true;
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
        if let Some(a) = self.state.agents.get_mut(id) {
            a.state = AgentState::Drained;
        }
        self.dirty = true;
        self.persist()?;
        let mut down = self.take_down(
            id,
            TaskState::TaskGoneByOperator,
            "REASON_AGENT_REMOVED_BY_OPERATOR",
            &format!("agent {id} was drained by an operator"),
        );
        down.failure_event = true;
        self.finish()?;
        Ok(Some(down))
    }

    pub(crate) fn agent_views(&self) -> Vec<AgentView> {
        let mut out = Vec::new();
        for (id, spec) in &self.specs {
            let Some(rec) = self.state.agents.get(id) else {
                continue;
            };
            let total = self.totals.get(id).cloned().unwrap_or_default();
            let used = Resources::from_list(&self.used(id));
            let summary = |rs: &Resources, pred: &dyn Fn(&Resource) -> bool| ResourceSummary {
                cpus: rs.scalar_sum("cpus", pred),
                mem: rs.scalar_sum("mem", pred),
                disk: rs.scalar_sum("disk", pred),
                gpus: rs.scalar_sum("gpus", pred),
                ports: rs.ranges_of("ports", pred),
            };
            let all = |_: &Resource| true;
            let reserved = |r: &Resource| !r.reservations.is_empty();
            let volumes = total
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
                        path: self.volume_path(id, r).unwrap_or_default(),
                    })
                })
                .collect();
            let executors = rec
                .executors
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
                .collect();
            out.push(AgentView {
                id: id.clone(),
                hostname: spec.hostname.clone(),
                zone: spec.zone.clone(),
                region: spec.region.clone(),
                state: rec.state,
                total: summary(&total, &all),
                reserved: summary(&total, &reserved),
                used: summary(&used, &all),
                volumes,
                executors,
            });
        }
        out
    }

    /// Drops every executor connection (on close), so executors see the agent go away.
    pub(crate) fn close(&mut self) {
        for (_, c) in self.conns.drain() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.sub = None;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
