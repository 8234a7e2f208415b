//! The `sim` backend: the cluster contract in memory, deterministic, for tests and
//! benchmarks.
//!
//! ```text
//!  harness ──offer_round / set_now / task_status / agent_down …──▶ SimCluster ──events──▶
//!  scheduler ──send(Call)──────────────────────────────────────────▶ SimCluster (applies
//!                                                                    reservations, launches)
//! ```
//!
//! Nothing happens on its own: offers are sent when the harness calls
//! [`SimCluster::offer_round`], and launched tasks report `TASK_RUNNING` (ready, when they
//! have a readiness check) right away unless [`SimCluster::set_auto_run`] turned that off.
//! Ids (offers, frameworks, status uuids) are counters, so a run is reproducible.
//!
//! Resources are modelled like the local cluster's: unreserved scalars, port ranges and MOUNT
//! disks per agent, plus the dynamic reservations made by RESERVE (merged when their
//! reservation info is identical) with volumes created on them. Reserved resources used by a
//! live task or its executor are not offered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_mesos::{
    AgentId, Attribute, CheckStatusInfo, CommandCheckStatus, DiskRoot, DiskSource, DiskSourceType,
    DomainInfo, ExecutorId, FaultDomain, FrameworkId, NamedInfo, Offer, OfferId, Operation, Range,
    Resource, StatusSource, TaskId, TaskInfo, TaskState, TaskStatus, ValueType,
};
use berth_offer::ranges;
use tokio::sync::mpsc;

use crate::protocol::{Call, Cluster, ClusterError, Event, EventStream, FrameworkInfo};

/// One simulated agent.
#[derive(Debug, Clone, PartialEq)]
pub struct SimAgentSpec {
    /// Agent id.
    pub id: String,
    /// Hostname offered.
    pub hostname: String,
    /// Fault-domain zone.
    pub zone: Option<String>,
    /// Fault-domain region.
    pub region: Option<String>,
    /// TEXT attributes.
    pub attributes: Vec<(String, String)>,
    /// CPUs.
    pub cpus: f64,
    /// Memory (MB).
    pub mem: f64,
    /// Root disk (MB).
    pub disk: f64,
    /// GPUs.
    pub gpus: f64,
    /// Port ranges.
    pub ports: Vec<Range>,
    /// MOUNT disks: (root, size MB).
    pub mounts: Vec<(String, f64)>,
}

impl SimAgentSpec {
    /// An agent with 8 CPUs, 32 GB, 100 GB disk, ports 10000–20000, one 10 GB MOUNT disk.
    #[must_use]
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            hostname: id.to_owned(),
            zone: None,
            region: None,
            attributes: Vec::new(),
            cpus: 8.0,
            mem: 32_768.0,
            disk: 100_000.0,
            gpus: 0.0,
            ports: vec![Range {
                begin: 10_000,
                end: 20_000,
            }],
            mounts: vec![(format!("/mnt/{id}/disk0"), 10_000.0)],
        }
    }

    /// `count` agents `agent-0…` spread round-robin over `zones` (none when empty).
    #[must_use]
    pub fn many(count: usize, zones: &[&str]) -> Vec<Self> {
        (0..count)
            .map(|i| {
                let mut a = Self::new(&format!("agent-{i}"));
                if !zones.is_empty() {
                    a.zone = Some(zones[i % zones.len()].to_owned());
                    a.region = Some("sim".to_owned());
                }
                a
            })
            .collect()
    }
}

/// A launched task, as [`SimCluster::tasks`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTaskView {
    /// The TaskInfo it was launched with.
    pub info: TaskInfo,
    /// Its agent's id.
    pub agent: String,
    /// Its executor's id.
    pub executor: String,
    /// Its current state.
    pub state: TaskState,
}

#[derive(Debug)]
struct SimAgent {
    spec: SimAgentSpec,
    up: bool,
    drained: bool,
    /// Dynamic reservations (each resource carries its reservation stack and labels).
    reserved: Vec<Resource>,
    filtered_until: u64,
    outstanding: Option<OfferId>,
}

#[derive(Debug, Clone)]
struct SimTask {
    info: TaskInfo,
    /// Reservation ids the task and its executor use.
    resource_ids: Vec<String>,
    /// Those of them the executor uses.
    executor_resource_ids: Vec<String>,
    agent: String,
    executor: String,
    state: TaskState,
    healthy_check: bool,
}

impl SimTask {
    /// The readiness result the simulated executor reports: a check command `exit N` exits
    /// with N, any other check passes.
    fn readiness_exit_code(&self) -> i32 {
        self.info
            .check
            .as_ref()
            .and_then(|c| c.command.command.value.trim().strip_prefix("exit "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[derive(Debug, Default)]
struct Sim {
    agents: BTreeMap<String, SimAgent>,
    frameworks: HashSet<String>,
    removed: HashSet<String>,
    framework: Option<String>,
    tx: Option<mpsc::UnboundedSender<Event>>,
    suppressed: bool,
    tasks: BTreeMap<String, SimTask>,
    next_offer: u64,
    next_uuid: u64,
    next_framework: u64,
    now_ms: u64,
    auto_run: bool,
    /// Whether an executor whose tasks ended keeps its resources until
    /// [`SimCluster::end_idle_executors`] (a real executor takes a moment to exit).
    executors_linger: bool,
    /// Executors that exited (when they linger).
    ended_executors: HashSet<String>,
    launches: Vec<TaskInfo>,
    launch_count: usize,
    /// Keep only what the simulation needs of each task (benchmarks); no launch log.
    lean: bool,
    calls: Vec<Call>,
    /// Updates not acknowledged yet, by uuid, with the order they were sent in.
    unacked: HashMap<String, (u64, TaskStatus)>,
    /// Task ids per agent (every task ever launched there).
    by_agent: HashMap<String, Vec<String>>,
    /// The agent each offer was made for (an offer is still valid only while its agent's
    /// `outstanding` is that offer): accepts and declines find it without a scan.
    offered: HashMap<OfferId, String>,
}

/// The simulated cluster; clones share the same state (one for the scheduler, one for the
/// harness).
#[derive(Debug, Clone)]
pub struct SimCluster {
    inner: Arc<Mutex<Sim>>,
}

fn scalar(name: &str, value: f64) -> Resource {
    Resource::scalar(name, value)
}

fn same_reservation(a: &Resource, b: &Resource) -> bool {
    a.name == b.name && a.reservations == b.reservations && a.disk == b.disk && a.kind == b.kind
}

impl SimCluster {
    /// A cluster of these agents, all up; tasks run as soon as they are launched.
    #[must_use]
    pub fn new(agents: Vec<SimAgentSpec>) -> Self {
        let sim = Sim {
            agents: agents
                .into_iter()
                .map(|spec| {
                    (
                        spec.id.clone(),
                        SimAgent {
                            spec,
                            up: true,
                            drained: false,
                            reserved: Vec::new(),
                            filtered_until: 0,
                            outstanding: None,
                        },
                    )
                })
                .collect(),
            auto_run: true,
            ..Sim::default()
        };
        Self {
            inner: Arc::new(Mutex::new(sim)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Sim> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the simulated time (ms) used for decline filters and status timestamps.
    pub fn set_now(&self, now_ms: u64) {
        self.lock().now_ms = now_ms;
    }

    /// Whether launched tasks report RUNNING on their own (default) or wait for the harness.
    pub fn set_auto_run(&self, on: bool) {
        self.lock().auto_run = on;
    }

    /// Whether an executor whose tasks all ended keeps using its resources (and so they are
    /// not offered) until [`SimCluster::end_idle_executors`]; off by default.
    pub fn set_executors_linger(&self, on: bool) {
        self.lock().executors_linger = on;
    }

    /// Lets every lingering executor without a live task exit: its resources are offered
    /// again.
    pub fn end_idle_executors(&self) {
        let mut sim = self.lock();
        let live: HashSet<String> = sim
            .tasks
            .values()
            .filter(|t| !t.state.is_failed_or_lost())
            .map(|t| t.executor.clone())
            .collect();
        let idle: Vec<String> = sim
            .tasks
            .values()
            .map(|t| t.executor.clone())
            .filter(|e| !live.contains(e))
            .collect();
        sim.ended_executors.extend(idle);
    }

    /// Sends one offer per up agent that has none outstanding and is not filtered, unless
    /// offers are suppressed. Returns how many offers were sent.
    pub fn offer_round(&self) -> usize {
        let mut sim = self.lock();
        if sim.suppressed || sim.tx.is_none() {
            return 0;
        }
        let Some(framework) = sim.framework.clone() else {
            return 0;
        };
        let now = sim.now_ms;
        let ids: Vec<String> = sim
            .agents
            .iter()
            .filter(|(_, a)| {
                a.up && !a.drained && a.outstanding.is_none() && a.filtered_until <= now
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut offers = Vec::new();
        for id in ids {
            sim.next_offer += 1;
            let offer_id = OfferId::new(format!("sim-offer-{}", sim.next_offer));
            let offer = sim.offer_for(&id, &framework, offer_id.clone());
            if let Some(a) = sim.agents.get_mut(&id) {
                a.outstanding = Some(offer_id.clone());
            }
            sim.offered.insert(offer_id, id);
            offers.push(offer);
        }
        let n = offers.len();
        if n > 0 {
            sim.emit(Event::Offers { offers });
        }
        n
    }

    /// The scheduler's connection is gone: no events until it subscribes again, and its
    /// outstanding offers are void.
    pub fn disconnect(&self) {
        let mut sim = self.lock();
        sim.tx = None;
        for a in sim.agents.values_mut() {
            a.outstanding = None;
        }
        sim.offered.clear();
    }

    /// The framework stayed away longer than its failover timeout (or an operator removed
    /// it): its tasks are killed and its id can never subscribe again.
    pub fn remove_framework(&self) {
        let mut sim = self.lock();
        sim.teardown();
    }

    /// The current framework id, if one is subscribed or was and is not removed.
    #[must_use]
    pub fn framework_id(&self) -> Option<String> {
        self.lock().framework.clone()
    }

    /// Reports `state` for the live task of that name (e.g. a crash: `TASK_FAILED`).
    ///
    /// # Errors
    /// When no task of that name was launched.
    pub fn task_status(&self, name: &str, state: TaskState) -> Result<(), ClusterError> {
        let mut sim = self.lock();
        let id = sim
            .tasks
            .iter()
            .rev()
            .find(|(_, t)| t.info.name == name)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| ClusterError::InvalidCall(format!("no task named {name}")))?;
        sim.set_state(&id, state, None);
        Ok(())
    }

    /// Takes an agent down: its tasks become `TASK_UNREACHABLE`, its offer is rescinded.
    pub fn agent_down(&self, id: &str) {
        let mut sim = self.lock();
        if let Some(a) = sim.agents.get_mut(id) {
            a.up = false;
        }
        sim.rescind_offer(id);
        let ids: Vec<String> = sim
            .tasks
            .iter()
            .filter(|(_, t)| t.agent == id && !t.state.is_failed_or_lost())
            .map(|(k, _)| k.clone())
            .collect();
        for t in ids {
            sim.set_state(
                &t,
                TaskState::TaskUnreachable,
                Some("REASON_AGENT_DISCONNECTED"),
            );
        }
    }

    /// Brings an agent back with its reservations; its tasks are gone (`TASK_LOST`).
    pub fn agent_up(&self, id: &str) {
        let mut sim = self.lock();
        if let Some(a) = sim.agents.get_mut(id) {
            a.up = true;
            a.filtered_until = 0;
        }
        let ids: Vec<String> = sim
            .tasks
            .iter()
            .filter(|(_, t)| t.agent == id && t.state == TaskState::TaskUnreachable)
            .map(|(k, _)| k.clone())
            .collect();
        for t in ids {
            sim.set_state(&t, TaskState::TaskLost, Some("REASON_AGENT_REREGISTERED"));
        }
    }

    /// Decommissions an agent: its tasks report `TASK_GONE_BY_OPERATOR`, a `FAILURE` event
    /// names the agent; it is never offered again.
    pub fn drain_agent(&self, id: &str) {
        let mut sim = self.lock();
        if let Some(a) = sim.agents.get_mut(id) {
            a.drained = true;
            a.reserved.clear();
        }
        sim.rescind_offer(id);
        let ids: Vec<String> = sim
            .tasks
            .iter()
            .filter(|(_, t)| t.agent == id && !t.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for t in ids {
            sim.set_state(
                &t,
                TaskState::TaskGoneByOperator,
                Some("REASON_AGENT_REMOVED_BY_OPERATOR"),
            );
        }
        // As a Mesos master does when an agent is removed.
        sim.emit(Event::Failure {
            agent_id: Some(AgentId::new(id)),
            executor_id: None,
            status: None,
        });
    }

    /// Keeps only what the simulation needs of each launched task and no launch or call log
    /// ([`SimCluster::launches`] and [`SimCluster::calls`] stay empty;
    /// [`SimCluster::launch_count`] still counts), so that benchmarks measure the scheduler's
    /// memory, not the simulation's.
    pub fn set_lean(&self, on: bool) {
        self.lock().lean = on;
    }

    /// How many tasks were launched so far.
    #[must_use]
    pub fn launch_count(&self) -> usize {
        self.lock().launch_count
    }

    /// Every TaskInfo launched so far, in order.
    #[must_use]
    pub fn launches(&self) -> Vec<TaskInfo> {
        self.lock().launches.clone()
    }

    /// Every call received so far, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Forgets the recorded calls and launches (to keep long runs small).
    pub fn clear_log(&self) {
        let mut sim = self.lock();
        sim.calls.clear();
        sim.launches.clear();
    }

    /// The TaskInfo a live task was launched with (the last launch of that name).
    #[must_use]
    pub fn task_info(&self, name: &str) -> Option<TaskInfo> {
        let sim = self.lock();
        sim.tasks
            .values()
            .rev()
            .find(|t| t.info.name == name && !t.state.is_failed_or_lost())
            .map(|t| t.info.clone())
    }

    /// Live (not terminal, not lost) tasks: `(name, task id, agent id)`, sorted by name.
    #[must_use]
    pub fn live_tasks(&self) -> Vec<(String, String, String)> {
        let sim = self.lock();
        let mut v: Vec<(String, String, String)> = sim
            .tasks
            .values()
            .filter(|t| !t.state.is_failed_or_lost())
            .map(|t| {
                (
                    t.info.name.clone(),
                    t.info.task_id.value.clone(),
                    t.agent.clone(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The dynamic reservations on an agent (resource ids).
    #[must_use]
    pub fn reservations(&self, agent: &str) -> Vec<String> {
        let sim = self.lock();
        sim.agents.get(agent).map_or(Vec::new(), |a| {
            a.reserved
                .iter()
                .filter_map(|r| r.resource_id().map(str::to_owned))
                .collect()
        })
    }

    /// Persistent volume ids on an agent.
    #[must_use]
    pub fn volumes(&self, agent: &str) -> Vec<String> {
        let sim = self.lock();
        sim.agents.get(agent).map_or(Vec::new(), |a| {
            a.reserved
                .iter()
                .filter_map(|r| r.persistence_id().map(str::to_owned))
                .collect()
        })
    }

    /// Whether offers are suppressed.
    #[must_use]
    pub fn is_suppressed(&self) -> bool {
        self.lock().suppressed
    }

    /// Status updates sent with a uuid and not acknowledged yet.
    #[must_use]
    pub fn unacknowledged(&self) -> usize {
        self.lock().unacked.len()
    }

    /// Sends every unacknowledged status update again, as agents retry them (also a
    /// duplicate, for updates that did arrive but whose acknowledgement is still on its way).
    /// Returns how many.
    pub fn resend_unacknowledged(&self) -> usize {
        let mut sim = self.lock();
        let mut unacked: Vec<(u64, TaskStatus)> = sim.unacked.values().cloned().collect();
        unacked.sort_by_key(|(seq, _)| *seq);
        let n = unacked.len();
        for (_, status) in unacked {
            sim.emit(Event::Update { status });
        }
        n
    }

    /// Rescinds the agent's outstanding offer, if it has one (the master took it back):
    /// accepting it afterwards is refused. Returns whether there was one.
    pub fn rescind(&self, agent: &str) -> bool {
        self.lock().rescind_offer(agent)
    }

    /// The specs the agents were created with, in the order of [`SimCluster::agents`].
    #[must_use]
    pub fn agent_specs(&self) -> Vec<SimAgentSpec> {
        self.lock()
            .agents
            .values()
            .map(|a| a.spec.clone())
            .collect()
    }

    /// Every task launched so far (terminal ones included), by task id, as its agent sees
    /// it. In lean mode ([`SimCluster::set_lean`]) the TaskInfos lack commands and executors.
    #[must_use]
    pub fn tasks(&self) -> Vec<SimTaskView> {
        self.lock()
            .tasks
            .values()
            .map(|t| SimTaskView {
                info: t.info.clone(),
                agent: t.agent.clone(),
                executor: t.executor.clone(),
                state: t.state,
            })
            .collect()
    }

    /// Agent ids, in order, with whether each is up and whether it is drained.
    #[must_use]
    pub fn agents(&self) -> Vec<(String, bool, bool)> {
        self.lock()
            .agents
            .iter()
            .map(|(id, a)| (id.clone(), a.up, a.drained))
            .collect()
    }
}

impl Sim {
    fn emit(&mut self, e: Event) {
        if let Some(tx) = &self.tx
            && tx.send(e).is_err()
        {
            self.tx = None;
        }
    }

    /// Kills every task of the framework and retires its id.
    fn teardown(&mut self) {
        let ids: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| !t.state.is_terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            if let Some(t) = self.tasks.get_mut(&id) {
                t.state = TaskState::TaskKilled;
            }
        }
        if let Some(f) = self.framework.take() {
            self.removed.insert(f);
        }
        self.tx = None;
    }

    fn uuid(&mut self) -> String {
        self.next_uuid += 1;
        // Base64 of 16 bytes, as the agents of a Mesos cluster send them.
        crate::local::fsutil::base64(uuid::Uuid::from_u128(u128::from(self.next_uuid)).as_bytes())
    }

    /// Resource ids in use by live tasks (and their executors) on an agent.
    fn agent_tasks<'a>(&'a self, agent: &str) -> impl Iterator<Item = &'a SimTask> + 'a {
        self.by_agent
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    fn in_use(&self, agent: &str) -> HashSet<String> {
        let mut used = HashSet::new();
        for t in self.agent_tasks(agent) {
            if t.state.is_failed_or_lost() {
                if self.executors_linger && !self.ended_executors.contains(&t.executor) {
                    used.extend(t.executor_resource_ids.iter().cloned());
                }
                continue;
            }
            used.extend(t.resource_ids.iter().cloned());
        }
        used
    }

    /// The executors running on an agent: those of live tasks, and lingering ones (an
    /// offer lists every running executor of the framework, idle ones too).
    fn live_executors(&self, agent: &str) -> Vec<ExecutorId> {
        let mut v: Vec<ExecutorId> = self
            .agent_tasks(agent)
            .filter(|t| {
                !t.state.is_failed_or_lost()
                    || (self.executors_linger && !self.ended_executors.contains(&t.executor))
            })
            .map(|t| ExecutorId::new(t.executor.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn offer_for(&self, agent_id: &str, framework: &str, id: OfferId) -> Offer {
        let a = &self.agents[agent_id];
        let s = &a.spec;
        let reserved_scalar = |name: &str| -> f64 {
            a.reserved
                .iter()
                .filter(|r| {
                    r.name == name && r.disk.as_ref().and_then(|d| d.source.as_ref()).is_none()
                })
                .map(Resource::scalar_value)
                .sum()
        };
        let mut resources = Vec::new();
        for (name, total) in [
            ("cpus", s.cpus),
            ("mem", s.mem),
            ("disk", s.disk),
            ("gpus", s.gpus),
        ] {
            let free = total - reserved_scalar(name);
            if free > 1e-9 {
                resources.push(scalar(name, (free * 1000.0).round() / 1000.0));
            }
        }
        let mut ports = s.ports.clone();
        for r in a.reserved.iter().filter(|r| r.name == "ports") {
            for range in r.ranges.iter().flat_map(|x| x.range.iter()) {
                ranges::subtract(&mut ports, range.begin, range.end);
            }
        }
        if !ports.is_empty() {
            resources.push(Resource::ranges("ports", ports));
        }
        for (root, size) in &s.mounts {
            let taken = a.reserved.iter().any(|r| {
                r.disk
                    .as_ref()
                    .and_then(|d| d.source.as_ref())
                    .and_then(|src| src.mount.as_ref())
                    .is_some_and(|m| &m.root == root)
            });
            if !taken {
                let mut d = scalar("disk", *size);
                d.disk = Some(Box::new(berth_mesos::DiskInfo {
                    persistence: None,
                    volume: None,
                    source: Some(DiskSource {
                        kind: DiskSourceType::Mount,
                        mount: Some(DiskRoot { root: root.clone() }),
                        path: None,
                        profile: None,
                    }),
                }));
                resources.push(d);
            }
        }
        let used = self.in_use(agent_id);
        for r in &a.reserved {
            if r.resource_id().is_none_or(|id| !used.contains(id)) {
                resources.push(r.clone());
            }
        }
        Offer {
            id,
            framework_id: FrameworkId::new(framework),
            agent_id: AgentId::new(agent_id),
            hostname: s.hostname.clone(),
            domain: match (&s.zone, &s.region) {
                (Some(z), Some(r)) => Some(DomainInfo {
                    fault_domain: Some(FaultDomain {
                        region: NamedInfo { name: r.clone() },
                        zone: NamedInfo { name: z.clone() },
                    }),
                }),
                _ => None,
            },
            attributes: s
                .attributes
                .iter()
                .map(|(k, v)| Attribute::text(k, v))
                .collect(),
            resources,
            executor_ids: self.live_executors(agent_id),
        }
    }

    fn set_state(&mut self, task_id: &str, state: TaskState, reason: Option<&str>) {
        let uuid = self.uuid();
        let now = self.now_ms;
        let Some(t) = self.tasks.get_mut(task_id) else {
            return;
        };
        t.state = state;
        let status = TaskStatus {
            task_id: t.info.task_id.clone(),
            state,
            message: None,
            source: Some(StatusSource::SourceExecutor),
            reason: reason.map(str::to_owned),
            agent_id: Some(AgentId::new(t.agent.clone())),
            executor_id: Some(ExecutorId::new(t.executor.clone())),
            timestamp: now as f64 / 1000.0,
            uuid: Some(uuid.clone()),
            healthy: None,
            check_status: (t.healthy_check && state == TaskState::TaskRunning).then(|| {
                CheckStatusInfo {
                    kind: "COMMAND".to_owned(),
                    command: Some(CommandCheckStatus {
                        exit_code: Some(t.readiness_exit_code()),
                    }),
                }
            }),
        };
        let seq = self.next_uuid;
        self.unacked.insert(uuid, (seq, status.clone()));
        self.emit(Event::Update { status });
    }

    fn reconcile_answer(&mut self, task_id: &TaskId) {
        let now = self.now_ms;
        let status = match self.tasks.get(&task_id.value) {
            Some(t) => TaskStatus {
                task_id: t.info.task_id.clone(),
                state: t.state,
                message: None,
                source: Some(StatusSource::SourceMaster),
                reason: Some("REASON_RECONCILIATION".to_owned()),
                agent_id: Some(AgentId::new(t.agent.clone())),
                executor_id: Some(ExecutorId::new(t.executor.clone())),
                timestamp: now as f64 / 1000.0,
                uuid: None,
                healthy: None,
                check_status: (t.healthy_check && t.state == TaskState::TaskRunning).then(|| {
                    CheckStatusInfo {
                        kind: "COMMAND".to_owned(),
                        command: Some(CommandCheckStatus {
                            exit_code: Some(t.readiness_exit_code()),
                        }),
                    }
                }),
            },
            None => TaskStatus {
                task_id: task_id.clone(),
                state: TaskState::TaskLost,
                message: Some("task unknown to the cluster".to_owned()),
                source: Some(StatusSource::SourceMaster),
                reason: Some("REASON_RECONCILIATION".to_owned()),
                agent_id: None,
                executor_id: None,
                timestamp: now as f64 / 1000.0,
                uuid: None,
                healthy: None,
                check_status: None,
            },
        };
        self.emit(Event::Update { status });
    }

    /// Takes back the agent's outstanding offer, if it has one (`RESCIND`); returns whether
    /// there was one.
    fn rescind_offer(&mut self, agent: &str) -> bool {
        let Some(offer_id) = self
            .agents
            .get_mut(agent)
            .and_then(|a| a.outstanding.take())
        else {
            return false;
        };
        self.offered.remove(&offer_id);
        self.emit(Event::Rescind { offer_id });
        true
    }

    /// The agent whose outstanding offer `offer_id` is; `None` when it is not outstanding
    /// any more (used, declined, rescinded or void).
    fn offered_agent(&self, offer_id: &OfferId) -> Option<String> {
        let agent = self.offered.get(offer_id)?;
        self.agents
            .get(agent)
            .is_some_and(|a| a.outstanding.as_ref() == Some(offer_id))
            .then(|| agent.clone())
    }

    /// [`Self::offered_agent`], forgetting the offer (it is used up).
    fn take_offered(&mut self, offer_id: &OfferId) -> Option<String> {
        let agent = self.offered_agent(offer_id);
        self.offered.remove(offer_id);
        agent
    }

    /// Applies one accepted offer's operations to a copy of the agent, so a failing operation
    /// leaves nothing applied.
    fn accept(
        &mut self,
        offer_ids: &[OfferId],
        operations: &[Operation],
    ) -> Result<(), ClusterError> {
        let [offer_id] = offer_ids else {
            return Err(ClusterError::InvalidCall(
                "accept exactly one offer at a time".to_owned(),
            ));
        };
        let Some(agent_id) = self.offered_agent(offer_id) else {
            // As a Mesos master does: the tasks of an accept with an invalid (e.g. rescinded)
            // offer are dropped, and the scheduler is told.
            for op in operations {
                if let Operation::LaunchGroup { launch_group } = op {
                    for t in &launch_group.task_group.tasks {
                        let status = TaskStatus {
                            task_id: t.task_id.clone(),
                            state: TaskState::TaskDropped,
                            message: Some(format!("offer {offer_id} is no longer valid")),
                            source: Some(StatusSource::SourceMaster),
                            reason: Some("REASON_INVALID_OFFERS".to_owned()),
                            agent_id: Some(t.agent_id.clone()),
                            executor_id: None,
                            timestamp: self.now_ms as f64 / 1000.0,
                            uuid: None,
                            healthy: None,
                            check_status: None,
                        };
                        self.emit(Event::Update { status });
                    }
                }
            }
            return Err(ClusterError::InvalidCall(format!(
                "offer {offer_id} is not outstanding"
            )));
        };
        let mut reserved = self.agents[&agent_id].reserved.clone();
        let mut launches: Vec<TaskInfo> = Vec::new();
        let mut executor = String::new();
        for op in operations {
            match op {
                Operation::Reserve { reserve } => {
                    for r in &reserve.resources {
                        if let Some(existing) = reserved
                            .iter_mut()
                            .find(|e| same_reservation(e, r) && e.kind == ValueType::Scalar)
                        {
                            let sum = existing.scalar_value() + r.scalar_value();
                            existing.scalar = Some(berth_mesos::Scalar { value: sum });
                        } else {
                            reserved.push(r.clone());
                        }
                    }
                }
                Operation::Unreserve { unreserve } => {
                    for r in &unreserve.resources {
                        let id = r.resource_id();
                        let pos = reserved
                            .iter()
                            .position(|e| e.name == r.name && e.resource_id() == id)
                            .ok_or_else(|| {
                                ClusterError::InvalidCall(format!(
                                    "unreserve of unknown {} {:?}",
                                    r.name, id
                                ))
                            })?;
                        if reserved[pos].persistence_id().is_some() {
                            return Err(ClusterError::InvalidCall(
                                "unreserve of a volume that still exists".to_owned(),
                            ));
                        }
                        if r.kind == ValueType::Scalar
                            && reserved[pos].scalar_value() - r.scalar_value() > 1e-9
                        {
                            let left = reserved[pos].scalar_value() - r.scalar_value();
                            reserved[pos].scalar = Some(berth_mesos::Scalar { value: left });
                        } else {
                            reserved.remove(pos);
                        }
                    }
                }
                Operation::Create { create } => {
                    for v in &create.volumes {
                        let pos = reserved
                            .iter()
                            .position(|e| {
                                e.name == "disk"
                                    && e.resource_id() == v.resource_id()
                                    && e.persistence_id().is_none()
                            })
                            .ok_or_else(|| {
                                ClusterError::InvalidCall(
                                    "create on a disk that is not reserved".to_owned(),
                                )
                            })?;
                        reserved[pos].disk = v.disk.clone();
                    }
                }
                Operation::Destroy { destroy } => {
                    for v in &destroy.volumes {
                        let pos = reserved
                            .iter()
                            .position(|e| {
                                e.persistence_id().is_some()
                                    && e.persistence_id() == v.persistence_id()
                            })
                            .ok_or_else(|| {
                                ClusterError::InvalidCall("destroy of an unknown volume".to_owned())
                            })?;
                        if let Some(d) = reserved[pos].disk.as_mut() {
                            d.persistence = None;
                            d.volume = None;
                        }
                    }
                }
                Operation::LaunchGroup { launch_group } => {
                    executor = launch_group.executor.executor_id.value.clone();
                    for t in &launch_group.task_group.tasks {
                        let mut t = t.clone();
                        if t.executor.is_none() {
                            t.executor = Some(launch_group.executor.clone());
                        }
                        launches.push(t);
                    }
                }
            }
        }
        let agent = self
            .agents
            .get_mut(&agent_id)
            .ok_or_else(|| ClusterError::InvalidCall(format!("unknown agent {agent_id}")))?;
        // Each accept copies the agent's reservations; the copy keeps no growth slack.
        reserved.shrink_to_fit();
        agent.reserved = reserved;
        agent.outstanding = None;
        self.offered.remove(offer_id);
        let auto = self.auto_run;
        // A launch under an executor that exited starts it again.
        self.ended_executors.remove(&executor);
        for info in launches {
            let id = info.task_id.value.clone();
            let healthy_check = info.check.is_some();
            self.launch_count += 1;
            let executor_resource_ids: Vec<String> = info
                .executor
                .iter()
                .flat_map(|e| e.resources.iter())
                .filter_map(|r| r.resource_id().map(str::to_owned))
                .collect();
            let mut resource_ids: Vec<String> = info
                .resources
                .iter()
                .filter_map(|r| r.resource_id().map(str::to_owned))
                .collect();
            resource_ids.extend(executor_resource_ids.iter().cloned());
            resource_ids.shrink_to_fit();
            let info = if self.lean {
                // What the simulation itself reads: names, ids and the readiness check.
                TaskInfo {
                    resources: Vec::new(),
                    executor: None,
                    command: None,
                    health_check: None,
                    labels: berth_mesos::Labels::default(),
                    discovery: None,
                    ..info
                }
            } else {
                self.launches.push(info.clone());
                info
            };
            let ids = self.by_agent.entry(agent_id.clone()).or_default();
            if !ids.contains(&id) {
                ids.push(id.clone());
            }
            self.tasks.insert(
                id.clone(),
                SimTask {
                    info,
                    resource_ids,
                    executor_resource_ids,
                    agent: agent_id.clone(),
                    executor: executor.clone(),
                    state: TaskState::TaskStaging,
                    healthy_check,
                },
            );
            if auto {
                self.set_state(&id, TaskState::TaskRunning, None);
            }
        }
        Ok(())
    }
}

impl Cluster for SimCluster {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut sim = self.lock();
        sim.tx = Some(tx);
        let id = match framework.id {
            Some(id) if sim.removed.contains(&id.value) || !sim.frameworks.contains(&id.value) => {
                sim.emit(Event::Error {
                    message: "Framework has been removed".to_owned(),
                });
                return Ok(rx);
            }
            Some(id) => id.value,
            None => {
                sim.next_framework += 1;
                format!("sim-framework-{:04}", sim.next_framework)
            }
        };
        sim.frameworks.insert(id.clone());
        sim.framework = Some(id.clone());
        // A new subscription invalidates outstanding offers.
        for a in sim.agents.values_mut() {
            a.outstanding = None;
        }
        sim.offered.clear();
        sim.suppressed = false;
        sim.emit(Event::Subscribed {
            framework_id: FrameworkId::new(id),
            heartbeat_interval_seconds: 15.0,
        });
        // Agents re-send updates that were never acknowledged.
        let mut unacked: Vec<(u64, TaskStatus)> = sim.unacked.values().cloned().collect();
        unacked.sort_by_key(|(seq, _)| *seq);
        for (_, status) in unacked {
            sim.emit(Event::Update { status });
        }
        Ok(rx)
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        let mut sim = self.lock();
        if sim.framework.is_none() {
            return Err(ClusterError::NotSubscribed);
        }
        if !sim.lean {
            sim.calls.push(call.clone());
        }
        let now = sim.now_ms;
        match call {
            Call::Accept {
                offer_ids,
                operations,
                ..
            } => sim.accept(&offer_ids, &operations),
            Call::Decline { offer_ids, filters } => {
                let refuse = (filters.refuse_seconds * 1000.0).max(0.0) as u64;
                for offer_id in &offer_ids {
                    if let Some(agent) = sim.take_offered(offer_id)
                        && let Some(a) = sim.agents.get_mut(&agent)
                    {
                        a.outstanding = None;
                        a.filtered_until = now + refuse;
                    }
                }
                Ok(())
            }
            Call::Kill { task_id, .. } => {
                let live = sim
                    .tasks
                    .get(&task_id.value)
                    .is_some_and(|t| !t.state.is_failed_or_lost());
                if live {
                    sim.set_state(
                        &task_id.value,
                        TaskState::TaskKilled,
                        Some("REASON_TASK_KILLED_DURING_LAUNCH"),
                    );
                } else if !sim.tasks.contains_key(&task_id.value) {
                    let status = TaskStatus {
                        task_id,
                        state: TaskState::TaskLost,
                        message: Some("kill of an unknown task".to_owned()),
                        source: Some(StatusSource::SourceMaster),
                        reason: None,
                        agent_id: None,
                        executor_id: None,
                        timestamp: now as f64 / 1000.0,
                        uuid: None,
                        healthy: None,
                        check_status: None,
                    };
                    sim.emit(Event::Update { status });
                }
                Ok(())
            }
            Call::Reconcile { tasks } => {
                if tasks.is_empty() {
                    let ids: Vec<TaskId> = sim
                        .tasks
                        .values()
                        .filter(|t| !t.state.is_terminal())
                        .map(|t| t.info.task_id.clone())
                        .collect();
                    for id in ids {
                        sim.reconcile_answer(&id);
                    }
                } else {
                    for t in tasks {
                        sim.reconcile_answer(&t.task_id);
                    }
                }
                Ok(())
            }
            Call::Suppress => {
                sim.suppressed = true;
                Ok(())
            }
            Call::Revive => {
                sim.suppressed = false;
                for a in sim.agents.values_mut() {
                    a.filtered_until = 0;
                }
                Ok(())
            }
            Call::Acknowledge { uuid, .. } => {
                sim.unacked.remove(&uuid);
                Ok(())
            }
            Call::Teardown => {
                sim.teardown();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_reflect_free_resources() {
        let mut c = SimCluster::new(vec![SimAgentSpec::new("a")]);
        let mut rx = c
            .subscribe(FrameworkInfo {
                id: None,
                name: "s".to_owned(),
                user: "root".to_owned(),
                principal: "p".to_owned(),
                roles: vec!["s-role".to_owned()],
                failover_timeout: 0.0,
                checkpoint: true,
                webui_url: None,
            })
            .unwrap();
        assert!(matches!(rx.try_recv(), Ok(Event::Subscribed { .. })));
        assert_eq!(c.offer_round(), 1);
        let Ok(Event::Offers { offers }) = rx.try_recv() else {
            panic!("no offer")
        };
        assert_eq!(
            offers[0].resources.len(),
            5,
            "cpus, mem, disk, ports, mount disk"
        );
        // an outstanding offer is not offered again
        assert_eq!(c.offer_round(), 0);
        c.send(Call::Decline {
            offer_ids: vec![offers[0].id.clone()],
            filters: berth_mesos::Filters {
                refuse_seconds: 5.0,
            },
        })
        .unwrap();
        assert_eq!(c.offer_round(), 0, "filtered");
        c.set_now(5_000);
        assert_eq!(c.offer_round(), 1);
    }
}
