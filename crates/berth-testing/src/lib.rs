//! The simulation harness: drive the real scheduler core, through the same
//! [`berth_scheduler::Applier`] as `berth run` (store first, then send; hold and retry while
//! the store fails), against the in-memory `sim` cluster, one deterministic tick at a time.
//! [`faults`] has a store that fails on purpose; [`running`] runs the real loop on its own
//! thread instead, for tests that talk to it through its handle; [`knobs`] reads the counts
//! and seeds of the randomized tests from the environment.
//!
//! ```text
//!  test script ──offers() / advance(ms) / fail(task) / restart() / crash_*()──▶ Simulation
//!  Simulation ──events──▶ Core ──calls──▶ SimCluster ──events──▶ …  (until quiet)
//!  assertions ◀── step_status(plan, step), live tasks, launches, reservations, replies
//! ```
//!
//! Time is simulated (milliseconds, starting at 1,000,000); ids are counters shared across
//! scheduler restarts; the store is a [`MemPersister`] (or any persister you pass) that
//! survives restarts, so a restart is exactly what a crash of `berth run` looks like.

#![warn(missing_docs)]

pub mod faults;
pub mod knobs;
pub mod running;

pub use knobs::{env_knob, env_seed};
pub use running::RunningLoop;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_cluster::{Call, Cluster, Event, EventStream};
use berth_offer::IdGenerator;
use berth_plan::{Millis, Status};
use berth_scheduler::{
    Applier, ApplierStats, Core, Decision, Reply, Request, SchedulerError, SchedulerOptions,
    update_configuration,
};
use berth_spec::{Env, Package, ServiceSpec};
use berth_state::{MemPersister, Persister, StateStore};

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The scheduler failed.
    #[error(transparent)]
    Scheduler(#[from] SchedulerError),
    /// The store could not be opened.
    #[error(transparent)]
    State(#[from] berth_state::StateError),
    /// The package or spec could not be loaded.
    #[error("{0}")]
    Spec(String),
    /// A script expectation did not hold.
    #[error("{0}")]
    Expectation(String),
    /// The scheduler thread of a [`RunningLoop`] ended without a result (it panicked).
    #[error("the scheduler thread ended abnormally")]
    LoopPanicked,
}

/// Ids `00000000-0000-4000-8000-<n>` from a counter shared by every scheduler incarnation.
#[derive(Debug, Clone, Default)]
pub struct SharedIds(Arc<AtomicU64>);

impl IdGenerator for SharedIds {
    fn uuid(&mut self) -> String {
        berth_offer::sequential_uuid(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

pub use berth_spec::DirFiles;

/// Loads a package directory with its default options (plus `extra` env).
///
/// # Errors
/// Any package, options or spec error, as text.
pub fn load_package(
    dir: &Path,
    options: Option<&str>,
    extra: &Env,
) -> Result<ServiceSpec, HarnessError> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("package");
    let files = DirFiles(dir.to_path_buf());
    let package = Package::load(name, &files).map_err(|e| HarnessError::Spec(e.to_string()))?;
    let (_, loaded) = package
        .load_spec(options, extra)
        .map_err(|e| HarnessError::Spec(e.to_string()))?;
    Ok(loaded.spec)
}

/// The repository's `examples/hello-world` package with its defaults.
///
/// # Errors
/// When it cannot be loaded.
pub fn hello_world() -> Result<ServiceSpec, HarnessError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-world");
    load_package(&dir, None, &Env::default())
}

/// A scheduler core over `persister` for `spec`, built as `berth run` builds it: the
/// configuration flow (validators, target), then the core, with ids from `ids`.
///
/// # Errors
/// Store or configuration errors.
pub fn core_over<I: IdGenerator + Clone + Send + 'static>(
    persister: Arc<dyn Persister>,
    spec: ServiceSpec,
    options: SchedulerOptions,
    ids: I,
) -> Result<Core<Arc<dyn Persister>>, HarnessError> {
    let mut store = StateStore::open(persister, &spec.name)?;
    let config = update_configuration(&mut store, spec, &mut ids.clone())?;
    Ok(Core::new(
        store,
        &config,
        options,
        Box::new(ids),
        berth_scheduler::now_ms(),
    )?)
}

/// The applier of a simulation.
type SimApplier = Applier<Arc<dyn Persister>>;

/// The sim cluster as the applier sees it: every call sent is recorded.
struct Recording<'a> {
    cluster: &'a mut SimCluster,
    sent: &'a mut Vec<Call>,
    record: bool,
    /// Time spent in the simulated cluster's calls, added up.
    cluster_time: &'a mut Duration,
}

impl Cluster for Recording<'_> {
    fn subscribe(
        &mut self,
        framework: berth_cluster::FrameworkInfo,
    ) -> Result<EventStream, berth_cluster::ClusterError> {
        let started = Instant::now();
        let subscribed = self.cluster.subscribe(framework);
        *self.cluster_time += started.elapsed();
        subscribed
    }

    fn send(&mut self, call: Call) -> Result<(), berth_cluster::ClusterError> {
        if self.record {
            self.sent.push(call.clone());
        }
        let started = Instant::now();
        let sent = self.cluster.send(call).inspect_err(|e| {
            tracing::debug!("sim refused a call: {e}");
        });
        *self.cluster_time += started.elapsed();
        sent
    }
}

/// A scheduler driven against a [`SimCluster`] through the same [`Applier`] as `berth run`:
/// its decisions are stored, held while the store fails and retried, then sent.
pub struct Simulation {
    /// The simulated cluster (shared with the scheduler).
    pub cluster: SimCluster,
    applier: Option<SimApplier>,
    persister: Arc<dyn Persister>,
    events: Option<EventStream>,
    /// Simulated time in ms.
    pub now: Millis,
    spec: ServiceSpec,
    options: SchedulerOptions,
    ids: SharedIds,
    /// How many times the scheduler was (re)started.
    pub starts: u32,
    /// Calls the scheduler sent, in order (all incarnations).
    pub sent: Vec<Call>,
    /// Whether to record calls in `sent` (turn off for long benchmark runs).
    pub record: bool,
    /// When set, an uninstall's teardown is sent and the scheduler then "dies" before it
    /// wipes the state (see [`Self::restart`]).
    pub crash_before_wipe: bool,
    /// Timings of every incarnation's applier, for benchmarks.
    stats: ApplierStats,
    /// Time spent inside the simulated cluster's calls, which compute its answers (offers,
    /// reconciliation, status updates) on the caller's thread: benchmarks subtract it to
    /// report the scheduler's own time.
    pub cluster_time: Duration,
}

impl Simulation {
    /// A simulation of `spec` on `agents` with default scheduler options and an in-memory
    /// store; the scheduler is started and registered.
    ///
    /// # Errors
    /// When the scheduler cannot start (e.g. an invalid spec).
    pub fn new(spec: ServiceSpec, agents: Vec<SimAgentSpec>) -> Result<Self, HarnessError> {
        Self::with(
            spec,
            agents,
            SchedulerOptions::default(),
            Arc::new(MemPersister::new()),
        )
    }

    /// A simulation with these options and this store.
    ///
    /// # Errors
    /// When the scheduler cannot start.
    pub fn with(
        spec: ServiceSpec,
        agents: Vec<SimAgentSpec>,
        options: SchedulerOptions,
        persister: Arc<dyn Persister>,
    ) -> Result<Self, HarnessError> {
        let mut sim = Simulation {
            cluster: SimCluster::new(agents),
            applier: None,
            persister,
            events: None,
            now: 1_000_000,
            spec,
            options,
            ids: SharedIds::default(),
            starts: 0,
            sent: Vec::new(),
            record: true,
            crash_before_wipe: false,
            // The benchmarks read every offer cycle's time.
            stats: ApplierStats {
                keep_cycles: true,
                ..ApplierStats::default()
            },
            cluster_time: Duration::ZERO,
        };
        sim.start()?;
        Ok(sim)
    }

    /// The running core.
    ///
    /// # Panics
    /// Never in practice: the core exists between starts.
    #[must_use]
    pub fn core(&self) -> &Core<Arc<dyn Persister>> {
        self.applier
            .as_ref()
            .expect("the scheduler is running")
            .core()
    }

    /// Whether a scheduler is running (a start can fail, e.g. while the store is down).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.applier.is_some()
    }

    /// The running applier (held calls, store fault).
    ///
    /// # Panics
    /// Never in practice: the applier exists between starts.
    #[must_use]
    pub fn applier(&self) -> &SimApplier {
        self.applier.as_ref().expect("the scheduler is running")
    }

    /// Timings of the appliers so far (all incarnations).
    #[must_use]
    pub fn stats(&self) -> &ApplierStats {
        self.applier.as_ref().map_or(&self.stats, |a| &a.stats)
    }

    /// Takes the timings collected so far.
    pub fn take_stats(&mut self) -> ApplierStats {
        let fresh = ApplierStats {
            keep_cycles: true,
            ..ApplierStats::default()
        };
        match &mut self.applier {
            Some(a) => std::mem::replace(&mut a.stats, fresh),
            None => std::mem::replace(&mut self.stats, fresh),
        }
    }

    fn applier_mut(&mut self) -> Result<&mut SimApplier, HarnessError> {
        self.applier
            .as_mut()
            .ok_or_else(|| HarnessError::Expectation("the scheduler is not running".to_owned()))
    }

    /// The applier and the cluster it sends to.
    fn parts(&mut self) -> Result<(&mut SimApplier, Recording<'_>), HarnessError> {
        let applier = self
            .applier
            .as_mut()
            .ok_or_else(|| HarnessError::Expectation("the scheduler is not running".to_owned()))?;
        Ok((
            applier,
            Recording {
                cluster: &mut self.cluster,
                sent: &mut self.sent,
                record: self.record,
                cluster_time: &mut self.cluster_time,
            },
        ))
    }

    /// Starts a scheduler over the store (as `berth run` does): config flow, core, subscribe,
    /// and processes what follows.
    ///
    /// # Errors
    /// Configuration or store errors.
    pub fn start(&mut self) -> Result<(), HarnessError> {
        let mut store = StateStore::open(self.persister.clone(), &self.spec.name)?;
        let mut ids = self.ids.clone();
        let config = update_configuration(&mut store, self.spec.clone(), &mut ids)?;
        let core = Core::new(
            store,
            &config,
            self.options.clone(),
            Box::new(self.ids.clone()),
            self.now,
        )?;
        let mut applier = Applier::new(core);
        applier.stats = std::mem::take(&mut self.stats);
        self.applier = Some(applier);
        let now = self.now;
        let (applier, mut cluster) = self.parts()?;
        let events = applier.subscribe(&mut cluster, now)?;
        // The start's own writes go down before anything is sent.
        let decision = applier.core_mut().decide(Vec::new());
        applier.apply(&mut cluster, decision, now)?;
        self.events = events;
        self.starts += 1;
        self.pump()
    }

    /// Stops the scheduler without any cleanup, as a `kill -9` would (see [`Self::restart`]).
    pub fn stop(&mut self) {
        if let Some(applier) = self.applier.take() {
            self.stats = applier.stats;
        }
        self.events = None;
    }

    /// Replaces the store handle (e.g. to reopen an embedded store as a new process would);
    /// the scheduler must be stopped.
    pub fn set_persister(&mut self, persister: Arc<dyn Persister>) {
        self.persister = persister;
    }

    /// Stops the scheduler without any cleanup (a `kill -9`) and starts a new one.
    ///
    /// # Errors
    /// As [`Self::start`].
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start()
    }

    /// Replaces the spec the next start uses (a configuration update).
    pub fn set_spec(&mut self, spec: ServiceSpec) {
        self.spec = spec;
    }

    /// Moves every event the cluster sent into the applier's backlog; `false` when none.
    fn take_events(&mut self) -> bool {
        let mut any = false;
        if let (Some(stream), Some(applier)) = (self.events.as_mut(), self.applier.as_mut()) {
            while let Ok(event) = stream.try_recv() {
                applier.push_events([event]);
                any = true;
            }
        }
        any
    }

    /// Delivers every queued event to the scheduler and sends its calls, until quiet. While
    /// the store fails, events wait (as in `berth run`); [`Self::advance`] retries.
    ///
    /// # Errors
    /// Fatal scheduler errors.
    pub fn pump(&mut self) -> Result<(), HarnessError> {
        loop {
            if self.applier.as_ref().is_none_or(Applier::is_faulted) {
                return Ok(());
            }
            let backlog = self.applier.as_ref().is_some_and(Applier::has_backlog);
            if !self.take_events() && !backlog {
                return Ok(());
            }
            let now = self.now;
            let (applier, mut cluster) = self.parts()?;
            // A batch: every event waiting now, one store write, then the calls.
            applier.run_backlog(&mut cluster, now, None)?;
            self.deregister_if_due()?;
        }
    }

    /// During an uninstall, once every other step is complete: tears the framework down and
    /// wipes the state, as the runner does (unless [`Self::crash_before_wipe`] is set).
    fn deregister_if_due(&mut self) -> Result<(), HarnessError> {
        let now = self.now;
        if self.crash_before_wipe
            && self
                .applier
                .as_ref()
                .is_some_and(|a| !a.is_faulted() && a.core().deregister_due(now))
        {
            // The teardown went out, then the scheduler died before wiping the state.
            let (_, mut cluster) = self.parts()?;
            let _ = cluster.send(Call::Teardown);
            self.stop();
            return Ok(());
        }
        if self.applier.is_none() {
            return Ok(());
        }
        let (applier, mut cluster) = self.parts()?;
        if applier.deregister_if_due(&mut cluster, now)? {
            self.events = None;
        }
        Ok(())
    }

    /// The next event: from the backlog, else from the cluster's stream.
    fn next_event(&mut self) -> bool {
        if self.applier.as_ref().is_some_and(Applier::has_backlog) {
            return true;
        }
        let event = self.events.as_mut().and_then(|e| e.try_recv().ok());
        match (event, self.applier.as_mut()) {
            (Some(event), Some(applier)) => {
                applier.push_events([event]);
                true
            }
            _ => false,
        }
    }

    /// Delivers only the next queued event and **drops** the calls it produced, then restarts
    /// the scheduler: a crash after the store commit and before anything was sent.
    ///
    /// # Errors
    /// Scheduler errors.
    pub fn crash_after_commit(&mut self) -> Result<bool, HarnessError> {
        if !self.next_event() {
            return Ok(false);
        }
        let now = self.now;
        let (applier, mut cluster) = self.parts()?;
        if let Some(decision) = applier.decide_events(now, None, 1)? {
            let writes = Decision {
                writes: decision.writes,
                calls: Vec::new(),
            };
            applier.apply(&mut cluster, writes, now)?;
        }
        self.restart()?;
        Ok(true)
    }

    /// Delivers only the next queued event, then stops the scheduler before its writes were
    /// made durable (a crash in the middle of a batch), and starts a new one.
    ///
    /// # Errors
    /// Scheduler errors.
    pub fn crash_before_flush(&mut self) -> Result<bool, HarnessError> {
        if !self.next_event() {
            return Ok(false);
        }
        let now = self.now;
        let _ = self.applier_mut()?.decide_events(now, None, 1)?;
        self.restart()?;
        Ok(true)
    }

    /// Delivers the next queued event only (one tick of the script).
    ///
    /// # Errors
    /// Scheduler errors.
    pub fn step_one(&mut self) -> Result<bool, HarnessError> {
        if !self.next_event() {
            return Ok(false);
        }
        let now = self.now;
        let (applier, mut cluster) = self.parts()?;
        applier.run_events(&mut cluster, now, None, 1)?;
        self.deregister_if_due()?;
        Ok(true)
    }

    /// One round of offers (one per eligible agent), processed.
    ///
    /// # Errors
    /// Scheduler errors.
    pub fn offers(&mut self) -> Result<usize, HarnessError> {
        self.cluster.set_now(self.now);
        let n = self.cluster.offer_round();
        self.pump()?;
        Ok(n)
    }

    /// Lets `ms` pass and runs the scheduler's periodic work (while the store fails: retries
    /// the held writes when due, as `berth run` does).
    ///
    /// # Errors
    /// Fatal scheduler errors.
    pub fn advance(&mut self, ms: u64) -> Result<(), HarnessError> {
        self.now += ms;
        self.cluster.set_now(self.now);
        let now = self.now;
        let (applier, mut cluster) = self.parts()?;
        if let Some(at) = applier.retry_at() {
            if now < at || !applier.retry(&mut cluster, now)? {
                return Ok(());
            }
        } else {
            applier.tick(&mut cluster, now)?;
        }
        self.deregister_if_due()?;
        self.pump()
    }

    /// Offers and 1 s ticks until `plan` is COMPLETE; returns the rounds it took.
    ///
    /// # Errors
    /// When it is not complete after `max_rounds`.
    pub fn run_until_complete(
        &mut self,
        plan: &str,
        max_rounds: usize,
    ) -> Result<usize, HarnessError> {
        for round in 0..max_rounds {
            if self.plan_status(plan) == Some(Status::Complete) {
                return Ok(round);
            }
            self.offers()?;
            self.advance(1_000)?;
        }
        if self.plan_status(plan) == Some(Status::Complete) {
            return Ok(max_rounds);
        }
        Err(HarnessError::Expectation(format!(
            "plan {plan} not complete after {max_rounds} rounds: {:?}",
            self.core().step_statuses(plan, self.now)
        )))
    }

    /// The status of a plan.
    #[must_use]
    pub fn plan_status(&self, plan: &str) -> Option<Status> {
        self.core().plan_status(plan, self.now)
    }

    /// The display status of a step.
    #[must_use]
    pub fn step_status(&self, plan: &str, step: &str) -> Option<Status> {
        self.core()
            .step_statuses(plan, self.now)
            .into_iter()
            .find(|(n, _)| n == step)
            .map(|(_, s)| s)
    }

    /// All steps of a plan with their display status.
    #[must_use]
    pub fn steps(&self, plan: &str) -> Vec<(String, Status)> {
        self.core().step_statuses(plan, self.now)
    }

    /// Asserts a step status.
    ///
    /// # Errors
    /// When it differs.
    pub fn expect_step(&self, plan: &str, step: &str, status: Status) -> Result<(), HarnessError> {
        let got = self.step_status(plan, step);
        if got == Some(status) {
            Ok(())
        } else {
            Err(HarnessError::Expectation(format!(
                "expected {plan}/{step} {status}, got {got:?}; steps: {:?}",
                self.steps(plan)
            )))
        }
    }

    /// Sends an API request to the scheduler and the resulting calls to the cluster.
    ///
    /// # Errors
    /// Fatal scheduler errors.
    pub fn request(&mut self, request: Request) -> Result<Reply, HarnessError> {
        let now = self.now;
        let (applier, mut cluster) = self.parts()?;
        let answer = applier.request(&mut cluster, request, now)?;
        self.deregister_if_due()?;
        self.pump()?;
        Ok(answer.reply)
    }

    /// Makes a live task report `state` (e.g. a crash), then lets the scheduler react.
    ///
    /// # Errors
    /// Unknown task or scheduler errors.
    pub fn task_state(
        &mut self,
        name: &str,
        state: berth_mesos::TaskState,
    ) -> Result<(), HarnessError> {
        self.cluster
            .task_status(name, state)
            .map_err(|e| HarnessError::Expectation(e.to_string()))?;
        self.pump()
    }

    /// Launches sent by the scheduler per task name.
    #[must_use]
    pub fn launch_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut m = std::collections::BTreeMap::new();
        for info in self.cluster.launches() {
            *m.entry(info.name).or_insert(0) += 1;
        }
        m
    }

    /// The event stream is drained and the scheduler registered (useful after a restart).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.core().is_ready()
    }

    /// Hands events to the scheduler as if the cluster had sent them now (after
    /// [`Self::pending_events`]: duplicated, reordered), and lets it handle them.
    ///
    /// # Errors
    /// Fatal scheduler errors.
    pub fn inject(&mut self, events: Vec<Event>) -> Result<(), HarnessError> {
        self.applier_mut()?.push_events(events);
        self.pump()
    }

    /// Takes every event not handled yet (queued in the scheduler or in the cluster's
    /// stream) without handling it: lost updates.
    #[must_use]
    pub fn pending_events(&mut self) -> Vec<Event> {
        let mut v = Vec::new();
        if let Some(applier) = self.applier.as_mut() {
            while let Some(e) = applier.pop_event() {
                v.push(e);
            }
        }
        while let Some(e) = self.events.as_mut().and_then(|e| e.try_recv().ok()) {
            v.push(e);
        }
        v
    }
}
