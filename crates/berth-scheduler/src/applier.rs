//! The one applier: takes what the [`Core`] decided — the writes and the cluster calls, as a
//! [`Decision`] value — makes the writes durable, then sends the calls. `berth run`'s loop
//! ([`crate::run`]) and the simulation harness drive the same applier, so a simulation
//! exercises the real hold-and-retry path of a failing store.
//!
//! ```text
//!  events ─▶ backlog (large OFFERS split) ─┐
//!  requests ───────────────────────────────┼─▶ Core (decides, stages writes) ─▶ Decision
//!  ticks ──────────────────────────────────┘                                     │
//!      ┌──────────────────────────────────────────────────────────────────────────┘
//!      ▼
//!  persister.apply(writes) ── ok ──▶ cluster.send(calls)
//!      └── fails ──▶ hold writes and calls, refuse changes (503), retry every second;
//!                    past the outage limit: stop (SchedulerError::StoreOutage)
//! ```
//!
//! **Early submission.** With a store that writes in the background (ZooKeeper), a batch of
//! events does not wait until it is decided whole: at the end of an event, once at least
//! [`EARLY_SUBMIT_WRITES`] writes are staged and fewer than [`PARTS_IN_FLIGHT`] submissions
//! are unanswered, they are submitted with the calls decided so far, and the next events are
//! decided while the store works (the store never waits for the loop). At the batch's end, the
//! rest is submitted behind them and the loop waits for all. The store keeps submissions in
//! order and stores a prefix of them (a refused one refuses every later one), so writes
//! reach the store in the order they were made; a submission's calls go out once it is
//! stored, a refused one is held with every later one and retried like a failed commit, and
//! the batch ends with everything stored and sent, as without it. A crash in the middle
//! leaves the writes of the first events of the batch stored and their calls unsent — the
//! same state as a crash after a smaller batch. [`MAX_BATCH_WRITES`] then bounds what waits
//! to be stored, not the batch.
//!
//! An error in handling one input never ends the loop unless [`SchedulerError::is_fatal`]
//! says so: a request gets a 500 (503 while the store is unreachable), an event or tick is
//! logged. What the input staged before it failed is stored like any decision (the core's
//! memory already reflects it); its calls are dropped — as after a crash between commit and
//! send, which reconciliation, kill retries and the next offer cycle carry on from.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use berth_cluster::{Call, Cluster, ClusterError, Event, EventStream};
use berth_plan::Millis;
use berth_state::{Persister, WriteOp};

use crate::SchedulerError;
use crate::api::{Reply, Request};
use crate::core::Core;

/// What the core decided for a batch of inputs: writes to make durable, then calls to send.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decision {
    /// Node writes, in order; one atomic [`Persister::apply`].
    pub writes: Vec<WriteOp>,
    /// Calls that may only be sent once the writes are durable.
    pub calls: Vec<Call>,
}

impl<P: Persister> Core<P> {
    /// Everything staged since the last decision, with the calls that follow from it.
    #[must_use]
    pub fn decide(&mut self, calls: Vec<Call>) -> Decision {
        Decision {
            writes: self.store.take_pending(),
            calls,
        }
    }
}

/// An answer to an API request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The reply.
    pub reply: Reply,
    /// `false` when the change it reports is not durable yet (the store fails): the reply
    /// must wait until [`Applier::is_faulted`] turns `false`.
    pub durable: bool,
}

/// Most offers the core evaluates in one go: a larger `OFFERS` event is split, so that
/// requests and status updates are served between its parts.
pub const OFFER_CHUNK: usize = 32;

/// Most writes a batch with a time budget takes before it stops taking events: storing
/// thousands of writes at once (a flood of task statuses) would hold the loop for tens of
/// milliseconds after the budget is spent.
pub const MAX_BATCH_WRITES: usize = 512;

/// Room for queued events the backlog keeps once it is empty again.
const BACKLOG_KEPT: usize = 1_024;

/// Staged writes that make an early submission (see the module documentation): enough for
/// the store's fixed cost per commit to be small, few enough for several to overlap the
/// deciding of a batch.
pub const EARLY_SUBMIT_WRITES: usize = 128;

/// Early submissions a batch keeps in flight while it is still deciding: one being stored,
/// the next ones already sent behind it (measured on the 5,000-pod deploy: the loop's waits
/// for ZooKeeper 0.026–0.051 s with two, 0.024–0.034 s with four; smaller parts cost more
/// than they overlap).
pub const PARTS_IN_FLIGHT: usize = 4;

/// How often a failed store write is retried.
pub const STORE_RETRY_MS: Millis = 1_000;
/// How often a lasting store failure is logged again.
const FAULT_LOG_EVERY_MS: Millis = 15_000;

/// Time spent, for benchmarks.
#[derive(Debug, Clone, Default)]
pub struct ApplierStats {
    /// Keep every offer cycle's time in `offer_cycles` (benchmarks; off in `berth run`,
    /// where the list would only grow — the metrics' histogram has them).
    pub keep_cycles: bool,
    /// Wall time of every offer cycle (one `OFFERS` event or part of one), when kept.
    pub offer_cycles: Vec<Duration>,
    /// Wall time deciding (handling inputs) and applying.
    pub busy: Duration,
    /// Part of `busy` spent making writes durable.
    pub apply: Duration,
    /// Longest single batch (inputs, decision and apply) on the loop.
    pub longest_batch: Duration,
}

/// A submission in flight: its calls go out once it is stored.
struct InFlight {
    submitted: berth_state::Submitted,
    calls: Vec<Call>,
    /// How many writes were submitted (a backend that lost them is caught).
    writes: usize,
}

/// A lasting store failure.
#[derive(Debug, Clone)]
struct Fault {
    message: String,
    since: Millis,
    logged: Millis,
    retry_at: Millis,
}

/// The applier over a core. See the module documentation.
pub struct Applier<P: Persister> {
    core: Core<P>,
    /// Writes of decisions not durable yet, then their calls.
    held_writes: Vec<WriteOp>,
    held_calls: Vec<Call>,
    fault: Option<Fault>,
    /// Writes submitted and not stored yet, oldest first, with the calls that wait for them.
    in_flight: VecDeque<InFlight>,
    backlog: VecDeque<Event>,
    /// Timings, for benchmarks.
    pub stats: ApplierStats,
    /// What the metrics routes show.
    pub metrics: crate::metrics::LoopMetrics,
}

impl<P: Persister> std::fmt::Debug for Applier<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applier")
            .field("core", &self.core)
            .field("held_writes", &self.held_writes.len())
            .field("held_calls", &self.held_calls.len())
            .field("fault", &self.fault.as_ref().map(|f| &f.message))
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl<P: Persister> Applier<P> {
    /// An applier over `core`.
    #[must_use]
    pub fn new(core: Core<P>) -> Self {
        Self {
            core,
            held_writes: Vec::new(),
            held_calls: Vec::new(),
            fault: None,
            in_flight: VecDeque::new(),
            backlog: VecDeque::new(),
            stats: ApplierStats::default(),
            metrics: crate::metrics::LoopMetrics::default(),
        }
    }

    /// The core.
    #[must_use]
    pub fn core(&self) -> &Core<P> {
        &self.core
    }

    /// The core, to change it outside the loop (tests, start-up).
    pub fn core_mut(&mut self) -> &mut Core<P> {
        &mut self.core
    }

    /// Takes the core back.
    #[must_use]
    pub fn into_core(self) -> Core<P> {
        self.core
    }

    /// Whether the store is failing: writes and calls are held, changes refused.
    #[must_use]
    pub fn is_faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// When to retry the held writes, while the store fails.
    #[must_use]
    pub fn retry_at(&self) -> Option<Millis> {
        self.fault.as_ref().map(|f| f.retry_at)
    }

    /// Calls held until their writes are durable.
    #[must_use]
    pub fn held_calls(&self) -> &[Call] {
        &self.held_calls
    }

    /// Subscribes to the cluster. `Ok(None)`: the framework is gone and the uninstall that
    /// tore it down is finished now (nothing is left to receive).
    ///
    /// # Errors
    /// The cluster refused the subscription (fatal).
    pub fn subscribe(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
    ) -> Result<Option<EventStream>, SchedulerError> {
        match cluster.subscribe(self.core.framework_info()) {
            Ok(events) => Ok(Some(events)),
            Err(ClusterError::FrameworkRemoved(m)) if self.core.uninstall_state().is_some() => {
                tracing::info!(
                    "the framework is already gone ({m}); removing what is left of the state"
                );
                self.core.finish_uninstall(now)?;
                Ok(None)
            }
            Err(ClusterError::FrameworkRemoved(message)) => Err(SchedulerError::FrameworkRemoved {
                framework_id: self
                    .core
                    .store()
                    .framework_id()
                    .map(|id| id.value.clone())
                    .unwrap_or_default(),
                message,
            }),
            Err(e) => Err(SchedulerError::Cluster(e.to_string())),
        }
    }

    /// Queues events; an `OFFERS` event of more than [`OFFER_CHUNK`] offers is split.
    pub fn push_events(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            match event {
                Event::Offers { offers } if offers.len() > OFFER_CHUNK => {
                    // Moved out in order, each offer once (splitting the rest off the front
                    // again and again would copy a large event over and over).
                    let mut offers = offers.into_iter();
                    loop {
                        let chunk: Vec<_> = offers.by_ref().take(OFFER_CHUNK).collect();
                        if chunk.is_empty() {
                            break;
                        }
                        self.backlog.push_back(Event::Offers { offers: chunk });
                    }
                }
                other => self.backlog.push_back(other),
            }
        }
    }

    /// How many events wait in the backlog.
    #[must_use]
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Whether queued events wait.
    #[must_use]
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// The next queued event, without handling it (a simulation's lost update).
    pub fn pop_event(&mut self) -> Option<Event> {
        self.backlog.pop_front()
    }

    /// Handles queued events as one batch — until the backlog is empty, or once `budget` has
    /// passed — then applies the decision (group commit).
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn run_backlog(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
        budget: Option<Duration>,
    ) -> Result<(), SchedulerError> {
        self.run_events(cluster, now, budget, usize::MAX)
    }

    /// Handles at most `limit` queued events as one batch (see [`Self::run_backlog`]).
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn run_events(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
        budget: Option<Duration>,
        limit: usize,
    ) -> Result<(), SchedulerError> {
        let started = Instant::now();
        let Some(decision) = self.decide_batch(now, budget, limit, Some(cluster))? else {
            return Ok(());
        };
        self.apply(cluster, decision, now)?;
        self.note_batch(started);
        Ok(())
    }

    /// Handles at most `limit` queued events (until `budget` has passed) and returns what
    /// the core decided, without storing or sending it; `None` when no event was queued.
    /// [`Self::apply`] it — or drop it, as a crash would.
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn decide_events(
        &mut self,
        now: Millis,
        budget: Option<Duration>,
        limit: usize,
    ) -> Result<Option<Decision>, SchedulerError> {
        self.decide_batch(now, budget, limit, None)
    }

    /// [`Self::decide_events`]; with the cluster, a store that writes in the background
    /// is handed the batch's writes early (see the module documentation).
    fn decide_batch(
        &mut self,
        now: Millis,
        budget: Option<Duration>,
        limit: usize,
        mut cluster: Option<&mut dyn Cluster>,
    ) -> Result<Option<Decision>, SchedulerError> {
        let started = Instant::now();
        let early = cluster.is_some() && self.core.store().persister().submits_in_background();
        // Time spent settling answered submissions (counted by `note_commit`).
        let mut waited = Duration::ZERO;
        let mut calls = Vec::new();
        let mut handled = 0;
        while handled < limit {
            let Some(event) = self.backlog.pop_front() else {
                break;
            };
            handled += 1;
            let offers = matches!(event, Event::Offers { .. });
            if let Event::Update { status } = &event {
                let kind = crate::metrics::Kind {
                    kind: status.state.as_str(),
                };
                self.metrics.task_statuses.get_or_create(&kind).inc();
            } else if matches!(event, Event::Rescind { .. }) {
                self.metrics.offers_rescinded.inc();
            }
            let cycle = Instant::now();
            let result = self.core.on_event(event, now);
            if offers {
                let took = cycle.elapsed();
                if self.stats.keep_cycles {
                    self.stats.offer_cycles.push(took);
                }
                self.metrics.offer_cycle_seconds.observe(took.as_secs_f64());
            }
            if let Some(c) = absorb("a cluster event", result)? {
                calls.extend(c);
            }
            if early
                && self.fault.is_none()
                && self.core.store().pending_writes() >= EARLY_SUBMIT_WRITES
                && let Some(cluster) = cluster.as_deref_mut()
            {
                let wait = Instant::now();
                self.settle_stored(cluster, now)?;
                waited += wait.elapsed();
                if self.fault.is_none() && self.in_flight.len() < PARTS_IN_FLIGHT {
                    let part = self.core.decide(std::mem::take(&mut calls));
                    self.submit(part);
                }
            }
            // A batch ends when its time is up, or when it holds so many writes that
            // storing them would hold the loop about as long again.
            if budget.is_some_and(|b| {
                started.elapsed() >= b || self.core.store().pending_writes() >= MAX_BATCH_WRITES
            }) {
                break;
            }
        }
        if handled == 0 {
            return Ok(None);
        }
        // A burst (a reconciliation's statuses, every agent's first offer) leaves the queue
        // with room for all of it; that room goes back once the burst is handled.
        if self.backlog.is_empty() && self.backlog.capacity() > BACKLOG_KEPT {
            self.backlog = VecDeque::new();
        }
        if let Some(c) = absorb("the end of a batch", self.core.end_batch(now))? {
            calls.extend(c);
        }
        let decision = self.core.decide(calls);
        self.stats.busy += started.elapsed().saturating_sub(waited);
        Ok(Some(decision))
    }

    /// Submits the held writes and `decision`'s, with the held calls and its calls, to be
    /// stored in the background behind what is in flight.
    fn submit(&mut self, decision: Decision) {
        self.held_writes.extend(decision.writes);
        self.held_calls.extend(decision.calls);
        let writes = std::mem::take(&mut self.held_writes);
        let calls = std::mem::take(&mut self.held_calls);
        let count = writes.len();
        let submitted = self.core.store().persister().submit(writes);
        self.in_flight.push_back(InFlight {
            submitted,
            calls,
            writes: count,
        });
    }

    /// Settles the submissions already stored (or refused), oldest first, without waiting.
    fn settle_stored(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
    ) -> Result<(), SchedulerError> {
        while self
            .in_flight
            .front_mut()
            .is_some_and(|f| f.submitted.is_done())
        {
            self.settle_next(cluster, now)?;
        }
        Ok(())
    }

    /// Waits for every submission in flight (see [`Self::settle_next`]).
    fn settle_all(&mut self, cluster: &mut dyn Cluster, now: Millis) -> Result<(), SchedulerError> {
        while !self.in_flight.is_empty() {
            self.settle_next(cluster, now)?;
        }
        Ok(())
    }

    /// Waits for the oldest submission in flight: once it is stored its calls go out; when
    /// it fails, its writes and calls and those of every later submission (which the store
    /// refuses after it, or which are stored again harmlessly) are held again, in order,
    /// before any held since, and the store is faulted, as when a commit fails.
    fn settle_next(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
    ) -> Result<(), SchedulerError> {
        let Some(flight) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let started = Instant::now();
        let (result, writes) = flight.submitted.wait();
        self.note_commit(started.elapsed(), flight.writes);
        let e = match result {
            Ok(()) => {
                self.metrics.count_calls(&flight.calls);
                return send_all(cluster, flight.calls);
            }
            Err(e) => e,
        };
        // The backend lost a batch: it cannot be retried.
        if writes.len() != flight.writes {
            return Err(SchedulerError::State(e));
        }
        let mut held_writes = writes;
        let mut held_calls = flight.calls;
        while let Some(later) = self.in_flight.pop_front() {
            let (result, writes) = later.submitted.wait();
            if writes.len() != later.writes {
                return Err(SchedulerError::State(result.err().unwrap_or(e)));
            }
            held_writes.extend(writes);
            held_calls.extend(later.calls);
        }
        held_writes.append(&mut self.held_writes);
        self.held_writes = held_writes;
        held_calls.append(&mut self.held_calls);
        self.held_calls = held_calls;
        let e = SchedulerError::State(e);
        if e.is_fatal() {
            return Err(e);
        }
        self.note_fault(e.to_string(), now)
    }

    /// Counts a commit's time and size (the loop waited that long).
    fn note_commit(&mut self, took: Duration, writes: usize) {
        self.stats.apply += took;
        self.stats.busy += took;
        self.metrics
            .store_commit_seconds
            .observe(took.as_secs_f64());
        #[allow(clippy::cast_precision_loss)]
        self.metrics.store_batch_writes.observe(writes as f64);
    }

    /// Answers an API request and applies what it decided.
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn request(
        &mut self,
        cluster: &mut dyn Cluster,
        request: Request,
        now: Millis,
    ) -> Result<Answer, SchedulerError> {
        if request.is_change() {
            let why = self
                .fault
                .as_ref()
                .map(|f| f.message.clone())
                .or_else(|| self.core.store().persister().unavailable());
            if let Some(why) = why {
                // Known to fail: refuse before changing anything.
                return Ok(Answer {
                    reply: store_unavailable(&why),
                    durable: true,
                });
            }
        }
        let started = Instant::now();
        let described = describe(&request);
        let (reply, mut calls) = match self.core.request(request, now) {
            Ok(answer) => answer,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                tracing::error!("{described} failed: {e}");
                (error_reply(&e), Vec::new())
            }
        };
        if let Some(c) = absorb("the end of a batch", self.core.end_batch(now))? {
            calls.extend(c);
        }
        let decision = self.core.decide(calls);
        // A request that changed nothing (a read) is answered from memory at once, also
        // while the store fails; a change is acknowledged only once it is durable.
        let changed = !decision.writes.is_empty() || !decision.calls.is_empty();
        self.stats.busy += started.elapsed();
        self.apply(cluster, decision, now)?;
        self.note_batch(started);
        Ok(Answer {
            reply,
            durable: !changed || self.fault.is_none(),
        })
    }

    /// Periodic work of the core, applied.
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn tick(&mut self, cluster: &mut dyn Cluster, now: Millis) -> Result<(), SchedulerError> {
        let started = Instant::now();
        let calls = absorb("periodic work", self.core.tick(now))?.unwrap_or_default();
        let decision = self.core.decide(calls);
        self.stats.busy += started.elapsed();
        self.apply(cluster, decision, now)?;
        self.note_batch(started);
        Ok(())
    }

    /// Retries the held writes (call at [`Self::retry_at`]); `true` once the store took them
    /// and the held calls went out.
    ///
    /// # Errors
    /// Fatal errors only (the outage lasted longer than the limit, the lock was lost).
    pub fn retry(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
    ) -> Result<bool, SchedulerError> {
        if let Some(f) = &mut self.fault {
            f.retry_at = now + STORE_RETRY_MS;
        }
        // A store that knows it cannot be reached is not tried: the attempt would only wait
        // (on this loop, with requests behind it) for the connection to come back.
        if self.core.store().persister().unavailable().is_some()
            && let Some(message) = self.fault.as_ref().map(|f| f.message.clone())
        {
            self.note_fault(message, now)?;
            return Ok(false);
        }
        self.flush(cluster, now)?;
        if self.fault.is_none() {
            tracing::info!("the state store is back: resuming");
        }
        Ok(self.fault.is_none())
    }

    /// Makes the decision's writes durable (after any held ones), then sends its calls; while
    /// the store fails, holds both without trying the store (that is [`Self::retry`]'s
    /// work, on its own timer: a request must not wait on a store that is down).
    ///
    /// # Errors
    /// Fatal errors only: the leader lock was lost, the store failed for longer than the
    /// limit, or the cluster no longer knows the framework.
    pub fn apply(
        &mut self,
        cluster: &mut dyn Cluster,
        decision: Decision,
        now: Millis,
    ) -> Result<(), SchedulerError> {
        self.held_writes.extend(decision.writes);
        self.held_calls.extend(decision.calls);
        if self.fault.is_some() {
            return Ok(());
        }
        self.flush(cluster, now)
    }

    /// Stores the held writes, then sends the held calls.
    fn flush(&mut self, cluster: &mut dyn Cluster, now: Millis) -> Result<(), SchedulerError> {
        if !self.in_flight.is_empty() {
            // The rest goes behind what is in flight, without waiting for it first.
            if !self.held_writes.is_empty() {
                self.submit(Decision::default());
            }
            self.settle_all(cluster, now)?;
            if self.fault.is_some() {
                return Ok(());
            }
        }
        if !self.held_writes.is_empty() {
            let started = Instant::now();
            let result = self.core.store().persister().apply(&self.held_writes);
            self.note_commit(started.elapsed(), self.held_writes.len());
            if let Err(e) = result {
                let e = SchedulerError::State(e);
                if e.is_fatal() {
                    return Err(e);
                }
                return self.note_fault(e.to_string(), now);
            }
            self.held_writes.clear();
        }
        if self.fault.take().is_some() {
            self.core.set_store_fault(None);
        }
        self.metrics.count_calls(&self.held_calls);
        send_all(cluster, std::mem::take(&mut self.held_calls))
    }

    fn note_fault(&mut self, message: String, now: Millis) -> Result<(), SchedulerError> {
        let held = self.held_calls.len();
        let fault = self.fault.get_or_insert_with(|| {
            tracing::error!(
                "{message}; holding {held} call(s) and making no change until the store is back"
            );
            Fault {
                message: message.clone(),
                since: now,
                logged: now,
                retry_at: now + STORE_RETRY_MS,
            }
        });
        let lasted = now.saturating_sub(fault.since);
        if let Some(limit) = self.core.options.store_outage_limit_ms
            && lasted >= limit
        {
            return Err(SchedulerError::StoreOutage {
                seconds: lasted / 1000,
                limit_secs: limit / 1000,
                message,
            });
        }
        if now.saturating_sub(fault.logged) >= FAULT_LOG_EVERY_MS {
            fault.logged = now;
            tracing::warn!(
                "the state store is still unavailable after {} s ({held} call(s) held): {message}",
                lasted / 1000
            );
        }
        fault.message.clone_from(&message);
        self.core.set_store_fault(Some(message));
        Ok(())
    }

    /// During an uninstall, once only deregistering is left: tears the framework down and
    /// wipes the state. `true` when it did (the event stream is over).
    ///
    /// # Errors
    /// Fatal errors only.
    pub fn deregister_if_due(
        &mut self,
        cluster: &mut dyn Cluster,
        now: Millis,
    ) -> Result<bool, SchedulerError> {
        if self.fault.is_some() || !self.core.deregister_due(now) {
            return Ok(false);
        }
        tracing::info!(
            "every task is down and every reservation released: tearing the framework down"
        );
        send_all(cluster, vec![Call::Teardown])?;
        if let Err(e) = self.core.finish_uninstall(now) {
            if e.is_fatal() {
                return Err(e);
            }
            // Torn down, state not wiped yet: the next start finishes the wipe.
            tracing::error!("the framework is torn down but its state could not be wiped: {e}");
        }
        Ok(true)
    }

    fn note_batch(&mut self, started: Instant) {
        let took = started.elapsed();
        self.metrics.loop_batch_seconds.observe(took.as_secs_f64());
        if took > self.stats.longest_batch {
            self.stats.longest_batch = took;
            self.metrics
                .loop_longest_batch_seconds
                .set(took.as_secs_f64());
        }
    }
}

/// Sends calls; a call the cluster refuses (e.g. an offer rescinded meanwhile) is logged.
///
/// # Errors
/// When the framework was removed: nothing more can be done.
pub fn send_all(cluster: &mut dyn Cluster, calls: Vec<Call>) -> Result<(), SchedulerError> {
    for call in calls {
        match cluster.send(call) {
            Ok(()) => {}
            Err(ClusterError::FrameworkRemoved(m)) => {
                return Err(SchedulerError::Cluster(format!(
                    "framework has been removed: {m}"
                )));
            }
            Err(e) => tracing::warn!("call refused by the cluster: {e}"),
        }
    }
    Ok(())
}

/// Fatal errors pass; others are logged (`None`).
fn absorb<T>(what: &str, result: Result<T, SchedulerError>) -> Result<Option<T>, SchedulerError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_fatal() => Err(e),
        Err(e) => {
            tracing::error!("handling {what} failed: {e}; the scheduler carries on");
            Ok(None)
        }
    }
}

/// The reply to a request whose handling failed: 503 while the store is unreachable, else
/// 500 with the error.
fn error_reply(e: &SchedulerError) -> Reply {
    if e.is_retryable() {
        Reply::text(503, format!("the state store is unavailable: {e}"))
    } else {
        Reply::text(500, format!("the scheduler could not answer: {e}"))
    }
}

/// The answer to a change requested while the state store cannot be written.
#[must_use]
pub fn store_unavailable(why: &str) -> Reply {
    Reply::text(
        503,
        format!("the state store is unavailable ({why}); berth makes no changes until it is back"),
    )
}

/// A request as a log line names it.
fn describe(request: &Request) -> String {
    let text = format!("{request:?}");
    let mut short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("the API request {short}")
}
