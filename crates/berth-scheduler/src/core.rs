//! The scheduler core: one owner of a service's mutable state.
//!
//! ```text
//!  cluster events ──▶ on_event ─┐                 ┌──▶ StateStore.commit(tx)  (first)
//!  API requests ───▶ request ───┼──▶ Core ────────┤
//!  timer ──────────▶ tick ──────┘   (PlanSet,     └──▶ Vec<Call> to send      (after)
//!                                    placement,
//!                                    kills, …)
//! ```
//!
//! Every handler stages what it decided in the store and returns the calls that follow from
//! it. The caller handles a batch of inputs, then [`Core::flush`]es — one atomic, durable
//! write for the whole batch (group commit) — and only then sends the calls: TaskInfos are
//! stored before their launch is sent, statuses before they are acknowledged. If the flush
//! fails, nothing may be sent: the caller rebuilds the core from the store (the same path as
//! a restart).
//!
//! The core reads no clock and draws no random ids itself: `now` and an [`IdGenerator`] are
//! inputs, so a simulation drives it deterministically.

use std::collections::{HashMap, HashSet, VecDeque};

use berth_cluster::{Call, Event, FrameworkInfo, ReconcileTask};
use berth_mesos::{AgentId, FrameworkId, TaskId, TaskInfo, TaskState, TaskStatus, task_labels};
use berth_offer::{IdGenerator, PlacementIndex, naming};
use berth_plan::{Millis, OfferNeed, PlanContext, PlanSet, Status, Work};
use berth_spec::ServiceSpec;
use berth_state::{GoalOverride, OverrideProgress, Persister, StateStore, UpdateType};
use serde::Serialize;
use uuid::Uuid;

use crate::SchedulerError;
use crate::config::ConfigOutcome;
use crate::history;
use crate::options::SchedulerOptions;
use crate::tasks::StoreTasks;
use crate::uninstall::Uninstall;

/// Tasks launched with fresh reservations are marked unconfirmed in the store (the data of
/// their node `Tasks/<name>`, written with their TaskInfos) until the
/// cluster reports on one of the launched tasks. A pod whose tasks are all unconfirmed and
/// whose launch the cluster never heard of (e.g. `berth run` died between storing the launch
/// and sending it) is relaunched on fresh reservations: the ones named in its TaskInfos were
/// never made. Older versions marked the TaskInfo itself with this label: still read (and
/// removed on confirmation).
pub const UNCONFIRMED_LABEL: &str = berth_plan::task::LEGACY_UNCONFIRMED_LABEL;

/// Property holding reservations of replaced or erased tasks still to be released:
/// JSON `{ "<resource_id>": {"agent": "<agent_id>", "released": <bool>} }` (see the
/// `orphans` module).
pub const ORPHANED_RESERVATIONS: &str = "orphaned-reservations";

/// How many agents' last offers the core keeps for update previews.
pub(crate) const LAST_OFFERS: usize = 2_000;
/// How often an agent's kept offer is replaced by a newer one.
pub(crate) const LAST_OFFER_REFRESH_MS: Millis = 5_000;

/// Where registration and reconciliation stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for `SUBSCRIBED`.
    Registering,
    /// Explicit reconciliation under way: offers are declined until every task answered.
    Reconciling {
        /// Task ids still without an answer.
        pending: HashSet<String>,
        /// When to ask again.
        retry_at: Millis,
        /// Current retry delay.
        delay_ms: u64,
    },
    /// Registered and reconciled: offers are used.
    Ready,
}

/// A kill in flight.
#[derive(Debug, Clone)]
pub(crate) struct Kill {
    pub(crate) agent: Option<AgentId>,
    pub(crate) sent_at: Millis,
}

/// One evaluated offer, kept for `GET /v2/debug/offers`.
#[derive(Debug, Clone, Serialize)]
pub struct OfferLogEntry {
    /// When (ms since the epoch).
    pub timestamp: Millis,
    /// Pod instance evaluated (`hello-0:[server]`).
    #[serde(rename = "pod-instance-name")]
    pub pod_instance_name: String,
    /// `pass` or `fail`.
    pub outcome: &'static str,
    /// The PASS/FAIL lines.
    pub explanation: Vec<String>,
    /// Offer id.
    pub offer: String,
    /// Agent hostname.
    pub hostname: String,
    /// What refused it (`resources: cpus`), when it failed.
    #[serde(skip)]
    pub failure: Option<String>,
}

/// Counters for the debug and metrics endpoints.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Offers received.
    pub offers_received: u64,
    /// Offers accepted for launches.
    pub offers_accepted: u64,
    /// Offers declined.
    pub offers_declined: u64,
    /// Offers used for cleanup only.
    pub offers_cleaned: u64,
    /// Tasks launched.
    pub tasks_launched: u64,
    /// Status updates received.
    pub updates_received: u64,
    /// Revives sent.
    pub revives: u64,
    /// Suppresses sent.
    pub suppresses: u64,
}

/// The scheduler core. See the module documentation.
pub struct Core<P: Persister = Box<dyn Persister>> {
    pub(crate) options: SchedulerOptions,
    pub(crate) store: StateStore<P>,
    pub(crate) plans: PlanSet,
    /// The target configuration, shared by the launches of a cycle.
    pub(crate) target: std::sync::Arc<ServiceSpec>,
    pub(crate) placement: PlacementIndex,
    pub(crate) target_id: Uuid,
    pub(crate) phase: Phase,
    pub(crate) suppressed: bool,
    pub(crate) kills: HashMap<String, Kill>,
    pub(crate) offer_log: VecDeque<OfferLogEntry>,
    /// Why steps wait for offers.
    pub(crate) waits: crate::waiting::WaitBook,
    pub(crate) offer_number: u64,
    /// The candidate steps of the last offer cycle, kept while only that cycle's own
    /// launches changed the plans since (see `on_offers`): a large OFFERS event is handled
    /// in parts, and walking every step of every plan for each part is what made large
    /// deploys slow. Task statuses make it stale (see [`crate::alike::Candidates::is_due`]);
    /// every other event, a request that changes something, and a tick drop it.
    pub(crate) candidate_cache: Option<crate::alike::Candidates>,
    pub(crate) counters: Counters,
    pub(crate) ids: Box<dyn IdGenerator + Send>,
    pub(crate) last_implicit_reconcile: Millis,
    pub(crate) down_since: HashMap<String, Millis>,
    pub(crate) last_auto_replace: Option<Millis>,
    pub(crate) unplanned_killed: bool,
    /// Inputs since the last [`Core::end_batch`] changed task states.
    pub(crate) batch_dirty: bool,
    /// Whether the deploy plan was complete at the last check.
    pub(crate) deploy_complete: bool,
    /// The last offer left over from each agent (at most [`LAST_OFFERS`] agents) and when:
    /// what an update preview places new pods against. Looked up for every offer left over
    /// (thousands a round), by agent ids the cluster made: a fast hasher.
    pub(crate) last_offers: foldhash::HashMap<String, (Millis, berth_mesos::Offer)>,
    /// Offers left unused by this batch's offer cycles, declined in [`Core::end_batch`].
    pub(crate) pending_declines: Vec<berth_mesos::OfferId>,
    /// Offers kept back from declining (see the `hold` module).
    pub(crate) held: crate::hold::Held,
    /// Orphans not released yet that an agent running none of the service's executors
    /// offered without, with when that was first seen (see `Core::orphans_gone`).
    pub(crate) orphans_absent: HashMap<String, Millis>,
    /// Set when the service is being uninstalled.
    pub(crate) uninstall: Option<Uninstall>,
    /// Why the state store cannot be written right now (reported by the runner).
    pub(crate) store_fault: Option<String>,
    /// Why the cluster cannot be reached, while it cannot (health reports it).
    pub(crate) cluster_fault: Option<String>,
    /// Uninstalling: whether the last offer cycle found nothing left to release while only
    /// the deregister step remained (so reservations unknown to the store are gone too).
    pub(crate) uninstall_swept: bool,
}

impl<P: Persister> std::fmt::Debug for Core<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("service", &self.plans.spec().name)
            .field("target", &self.target_id)
            .field("phase", &self.phase)
            .field("suppressed", &self.suppressed)
            .finish_non_exhaustive()
    }
}

impl<P: Persister> Core<P> {
    /// Builds the core over an opened store whose configuration flow already ran.
    pub fn new(
        mut store: StateStore<P>,
        config: &ConfigOutcome,
        options: SchedulerOptions,
        mut ids: Box<dyn IdGenerator + Send>,
        now: Millis,
    ) -> Result<Self, SchedulerError> {
        revive_decommissioned(&mut store, &config.target)?;
        let deployed_before = matches!(
            store.last_completed_update_type()?,
            Some(UpdateType::Deploy | UpdateType::Update)
        );
        let config_errors: Vec<String> = config.errors.iter().map(ToString::to_string).collect();
        let target_text = config.target_id.to_string();
        // The plans and the placement counts both read every stored task: with many tasks
        // they are built side by side.
        let (plans, (placement, bad)) = std::thread::scope(|scope| {
            let counted = std::thread::Builder::new()
                .name("berth-start".to_owned())
                .spawn_scoped(scope, || {
                    PlacementIndex::from_task_infos(store.task_infos())
                });
            let tasks = StoreTasks(&store);
            let plans = PlanSet::new(
                &PlanContext {
                    spec: &config.target,
                    target_config_id: &target_text,
                    tasks: &tasks,
                    deployed_before,
                    backoff: options.backoff,
                    config_errors,
                },
                &mut *ids,
                now,
            );
            let placement = match counted {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => PlacementIndex::from_task_infos(store.task_infos()),
            };
            (plans, placement)
        });
        for e in bad {
            tracing::warn!("task left out of placement counts: {e}");
        }
        let uninstalling = store.is_uninstalling()?;
        let mut core = Self {
            options,
            store,
            target: std::sync::Arc::new(config.target.clone()),
            plans,
            placement,
            target_id: config.target_id,
            phase: Phase::Registering,
            suppressed: false,
            kills: HashMap::new(),
            offer_log: VecDeque::new(),
            waits: crate::waiting::WaitBook::default(),
            offer_number: 0,
            candidate_cache: None,
            counters: Counters::default(),
            ids,
            last_implicit_reconcile: now,
            down_since: HashMap::new(),
            last_auto_replace: None,
            unplanned_killed: false,
            batch_dirty: false,
            deploy_complete: false,
            last_offers: foldhash::HashMap::default(),
            pending_declines: Vec::new(),
            held: crate::hold::Held::default(),
            orphans_absent: HashMap::new(),
            uninstall: None,
            store_fault: None,
            cluster_fault: None,
            uninstall_swept: false,
        };
        if uninstalling {
            core.enter_uninstall(now);
        }
        Ok(core)
    }

    /// Records that the state store cannot be written (`Some(reason)`) or works again
    /// (`None`); health reports it.
    pub fn set_store_fault(&mut self, fault: Option<String>) {
        self.store_fault = fault;
    }

    /// The target configuration.
    #[must_use]
    pub fn spec(&self) -> &ServiceSpec {
        self.plans.spec()
    }

    /// The target configuration id.
    #[must_use]
    pub fn target_id(&self) -> Uuid {
        self.target_id
    }

    /// The store (read-only).
    #[must_use]
    pub fn store(&self) -> &StateStore<P> {
        &self.store
    }

    /// The plans.
    #[must_use]
    pub fn plans(&self) -> &PlanSet {
        &self.plans
    }

    /// The last evaluated offers, oldest first (what `GET /v2/debug/offers` shows).
    pub fn offer_log(&self) -> impl DoubleEndedIterator<Item = &OfferLogEntry> {
        self.offer_log.iter()
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether offers are suppressed.
    #[must_use]
    pub fn is_suppressed(&self) -> bool {
        self.suppressed
    }

    /// Whether registration and reconciliation are done.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Work done once per batch of inputs rather than per input: records a completed
    /// deployment, and suppresses or revives offers. Call it after a batch, before
    /// [`Core::flush`].
    ///
    /// # Errors
    /// Store failures.
    pub fn end_batch(&mut self, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        if !std::mem::take(&mut self.batch_dirty) {
            return Ok(Vec::new());
        }
        self.note_deploy_completion(now)?;
        self.settle_offers(now)
    }

    /// Declines the offers this batch left unused, or keeps some back for work that will
    /// want them soon (using those kept earlier as soon as work wants them), and suppresses or
    /// revives offers.
    ///
    /// # Errors
    /// Store failures (of an offer cycle over the offers kept back).
    pub(crate) fn settle_offers(&mut self, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        let mut calls = Vec::new();
        let mut need = self.offer_need(now);
        if need == OfferNeed::Now && self.held.any() {
            let offers = self.held.take();
            calls.extend(self.on_offers(offers, now)?);
            need = self.offer_need(now);
        }
        self.hold_or_decline_unused(need, now);
        let idle = need != OfferNeed::Now;
        if !self.pending_declines.is_empty() {
            let offer_ids = std::mem::take(&mut self.pending_declines);
            self.counters.offers_declined += offer_ids.len() as u64;
            calls.push(Call::Decline {
                offer_ids,
                filters: berth_mesos::Filters {
                    refuse_seconds: if idle {
                        self.options.decline_long_secs
                    } else {
                        self.options.decline_short_secs
                    },
                },
            });
        }
        calls.extend(self.offer_interest_when(idle));
        Ok(calls)
    }

    /// Makes every staged write durable (one transaction). Calls returned by the handlers since
    /// the last flush may only be sent after this returns `Ok`.
    ///
    /// # Errors
    /// The store failed: drop this core, reopen the store and start again.
    pub fn flush(&mut self) -> Result<(), SchedulerError> {
        self.store.flush()?;
        Ok(())
    }

    /// Takes the store back (e.g. to reopen the core after a failure).
    #[must_use]
    pub fn into_store(self) -> StateStore<P> {
        self.store
    }

    /// The status of a plan (`None` if no such plan).
    #[must_use]
    pub fn plan_status(&self, name: &str, now: Millis) -> Option<Status> {
        let plan = self.plans.plan(name)?;
        Some(self.plans.plan_status(plan, &StoreTasks(&self.store), now))
    }

    /// `FrameworkInfo` to subscribe with: the stored framework id, if any.
    #[must_use]
    pub fn framework_info(&self) -> FrameworkInfo {
        let spec = self.plans.spec();
        FrameworkInfo {
            id: self.store.framework_id().cloned(),
            name: spec.name.clone(),
            user: spec.user.clone(),
            principal: spec.principal.clone(),
            roles: vec![spec.role.clone()],
            failover_timeout: self.options.failover_timeout_secs,
            checkpoint: true,
            webui_url: spec.web_url.clone(),
        }
    }

    // ----- events -------------------------------------------------------------------------

    /// Handles one cluster event.
    ///
    /// # Errors
    /// Store failures (no call may be sent then), and a cluster `ERROR` event such as
    /// `Framework has been removed` (the scheduler cannot go on).
    pub fn on_event(&mut self, event: Event, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        if self.uninstall == Some(Uninstall::Done) {
            // Nothing is left to act on (and nothing may be written again).
            return Ok(Vec::new());
        }
        match (&event, &mut self.candidate_cache) {
            (Event::Offers { .. } | Event::Heartbeat | Event::Rescind { .. }, _) | (_, None) => {}
            // A task that starts or runs only completes steps; one that ends may put steps
            // back (recovery, back-off): those are worked out afresh.
            (Event::Update { status }, Some(cached)) if !status.state.is_terminal() => {
                cached.statuses_changed(now);
            }
            _ => self.candidate_cache = None,
        }
        match event {
            Event::Subscribed { framework_id, .. } => {
                self.cluster_fault = None;
                // Offers of an earlier connection are gone with it.
                self.held.forget_all();
                self.on_subscribed(framework_id, now)
            }
            Event::Disconnected { reason } => {
                tracing::warn!("cluster connection lost: {reason}");
                self.held.forget_all();
                self.cluster_fault = Some(reason);
                Ok(Vec::new())
            }
            Event::Offers { offers } => {
                self.counters.offers_received += offers.len() as u64;
                self.on_offers(offers, now)
            }
            Event::Rescind { offer_id } => {
                self.held.forget(&offer_id);
                Ok(Vec::new())
            }
            Event::Heartbeat => Ok(Vec::new()),
            Event::Update { status } => self.on_update(status, now),
            Event::Failure {
                agent_id: Some(agent),
                executor_id: None,
                ..
            } => self.agent_removed(&agent.value, now),
            Event::Failure {
                agent_id,
                executor_id,
                status,
            } => {
                tracing::warn!(
                    agent = ?agent_id.map(|a| a.value),
                    executor = ?executor_id.map(|e| e.value),
                    status = ?status,
                    "executor or agent failure"
                );
                Ok(Vec::new())
            }
            Event::Error { message } => {
                if message.contains("removed") && self.uninstall.is_some() {
                    // Torn down before the state was wiped (a crash in between): only the
                    // wipe is left.
                    tracing::info!(
                        "the framework is already gone; removing what is left of the state"
                    );
                    self.finish_uninstall(now)?;
                    Ok(Vec::new())
                } else if message.contains("removed") {
                    Err(SchedulerError::FrameworkRemoved {
                        framework_id: self
                            .store
                            .framework_id()
                            .map(|f| f.value.clone())
                            .unwrap_or_default(),
                        message,
                    })
                } else {
                    Err(SchedulerError::Cluster(message))
                }
            }
        }
    }

    fn on_subscribed(&mut self, id: FrameworkId, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        if self.store.framework_id() != Some(&id) {
            let mut tx = self.store.transaction();
            tx.set_framework_id(&id);
            self.store.stage(tx)?;
            tracing::info!("registered with framework id {id}");
        } else {
            tracing::info!("re-registered with framework id {id}");
        }
        self.suppressed = false;
        // Every launched task not known to be over, including launches stored but never
        // reported on (the status held is that of an earlier task id): the cluster may not
        // have seen them at all, and answers TASK_LOST for those.
        // One walk of the tasks, each with its status (no lookup per task).
        let mut tasks: Vec<ReconcileTask> = self
            .store
            .task_records()
            .filter(|(info, status, _)| {
                !info.task_id.value.is_empty()
                    && status
                        .filter(|s| s.task_id == info.task_id)
                        .is_none_or(|s| !s.state.is_terminal())
            })
            .map(|(info, _, _)| ReconcileTask {
                task_id: info.task_id.clone(),
                agent_id: Some(info.agent_id.clone()),
            })
            .collect();
        let mut calls = Vec::new();
        if tasks.is_empty() {
            calls.extend(self.finish_reconciliation(now));
        } else {
            tracing::info!("reconciling {} tasks before using offers", tasks.len());
            tasks.sort_unstable_by(|a, b| a.task_id.cmp(&b.task_id));
            let pending: HashSet<String> = tasks.iter().map(|t| t.task_id.value.clone()).collect();
            calls.push(Call::Reconcile { tasks });
            self.phase = Phase::Reconciling {
                pending,
                retry_at: now + self.options.reconcile_retry_initial_ms,
                delay_ms: self.options.reconcile_retry_initial_ms,
            };
        }
        Ok(calls)
    }

    fn reconcile_call(&self, pending: &HashSet<String>) -> Call {
        let mut tasks: Vec<ReconcileTask> = pending
            .iter()
            .map(|id| ReconcileTask {
                task_id: TaskId::new(id.clone()),
                agent_id: naming::task_name_of_id(id)
                    .and_then(|n| self.store.task_info(n))
                    .map(|i| i.agent_id.clone()),
            })
            .collect();
        tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Call::Reconcile { tasks }
    }

    fn finish_reconciliation(&mut self, now: Millis) -> Vec<Call> {
        tracing::info!("reconciliation complete; using offers");
        self.phase = Phase::Ready;
        self.last_implicit_reconcile = now;
        let mut calls = vec![Call::Reconcile { tasks: Vec::new() }, Call::Revive];
        self.counters.revives += 1;
        if !self.unplanned_killed {
            self.unplanned_killed = true;
            calls.extend(self.kill_unplanned_tasks(now));
        }
        calls
    }

    /// Tasks that no plan launches any more (e.g. removed from every step) are killed once
    /// after registration; their reservations stay.
    fn kill_unplanned_tasks(&mut self, now: Millis) -> Vec<Call> {
        let planned = self.plans.planned_tasks();
        let decommissioning: HashSet<String> = self.decommissioning_tasks();
        let victims: Vec<(String, Option<AgentId>)> = self
            .store
            .task_infos()
            .filter(|i| !i.task_id.value.is_empty())
            .filter(|i| !planned.contains(&i.name) && !decommissioning.contains(&i.name))
            .filter(|i| self.is_live(i))
            .map(|i| (i.task_id.value.clone(), Some(i.agent_id.clone())))
            .collect();
        victims
            .into_iter()
            .filter_map(|(id, agent)| {
                tracing::info!("killing {id}: no plan launches this task any more");
                self.kill(&id, agent, now)
            })
            .collect()
    }

    /// Names of every task of the pod instance `info` belongs to, per the target spec.
    pub(crate) fn instance_task_names(&self, info: &TaskInfo) -> Vec<String> {
        let (Some(pod_type), Some(index)) = (
            info.labels.get(task_labels::TASK_TYPE),
            info.labels.get(task_labels::INDEX),
        ) else {
            return Vec::new();
        };
        self.plans.spec().pod(pod_type).map_or(Vec::new(), |pod| {
            pod.task_specs
                .iter()
                .map(|t| format!("{pod_type}-{index}-{}", t.name))
                .collect()
        })
    }

    /// Whether a stored task may still be running: launched and its last state is not
    /// terminal/lost.
    pub(crate) fn is_live(&self, info: &TaskInfo) -> bool {
        if info.task_id.value.is_empty() {
            return false;
        }
        match self.store.task_status(&info.name) {
            Some(s) if s.task_id == info.task_id => !s.state.is_failed_or_lost(),
            Some(_) | None => true,
        }
    }

    /// A kill call for a task, unless one was sent recently.
    pub(crate) fn kill(
        &mut self,
        task_id: &str,
        agent: Option<AgentId>,
        now: Millis,
    ) -> Option<Call> {
        if let Some(k) = self.kills.get(task_id)
            && now.saturating_sub(k.sent_at) < self.options.kill_retry_ms
        {
            return None;
        }
        self.kills.insert(
            task_id.to_owned(),
            Kill {
                agent: agent.clone(),
                sent_at: now,
            },
        );
        Some(Call::Kill {
            task_id: TaskId::new(task_id),
            agent_id: agent,
            grace_period_secs: None,
        })
    }

    pub(crate) fn decommissioning_tasks(&self) -> HashSet<String> {
        self.plans
            .plan(berth_plan::decommission::DECOMMISSION)
            .map(|p| {
                p.steps()
                    .filter_map(|(_, s)| match &s.work {
                        Work::Kill { task } | Work::Erase { task } => Some(task.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn on_update(&mut self, status: TaskStatus, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        self.counters.updates_received += 1;
        let mut calls = Vec::new();
        let ack = status.uuid.clone().map(|uuid| Call::Acknowledge {
            agent_id: status.agent_id.clone().unwrap_or_default(),
            task_id: status.task_id.clone(),
            uuid,
        });
        let id = status.task_id.value.clone();
        let name = naming::task_name_of_id(&id).map(str::to_owned);
        let known = name
            .as_deref()
            .and_then(|n| self.store.task_info(n))
            .is_some_and(|i| i.task_id == status.task_id);
        self.reconciled(&id, now, &mut calls);
        if !known {
            // A task this service does not know (any more): kill it, unless it is already
            // gone or this is the answer to one of our own kills.
            let ours = self.kills.remove(&id).is_some();
            if !ours && !status.state.is_failed_or_lost() {
                tracing::warn!("killing unknown task {id} ({})", status.state.as_str());
                calls.extend(self.kill(&id, status.agent_id.clone(), now));
            }
            calls.extend(ack);
            return Ok(calls);
        }
        let name = name.unwrap_or_default();
        // After a terminal state a task id has no future: a second terminal report (the
        // executor's TASK_FAILED, then the agent's "executor terminated") or a later "lost"
        // changes nothing, and must not count as another failure for the back-off. Only a
        // drained agent (TASK_GONE_BY_OPERATOR) still matters: the pod must move.
        let stale = self.store.task_status(&name).is_some_and(|p| {
            p.task_id == status.task_id
                && p.state.is_terminal()
                && status.state != TaskState::TaskGoneByOperator
                && (status.state.is_terminal()
                    || matches!(
                        status.state,
                        TaskState::TaskLost | TaskState::TaskUnknown | TaskState::TaskUnreachable
                    ))
        });
        // A reconciliation answer that only repeats what is stored changes nothing.
        let repeated = status.uuid.is_none()
            && self.store.task_status(&name).is_some_and(|p| {
                p.task_id == status.task_id
                    && p.state == status.state
                    && p.readiness_passed() == status.readiness_passed()
                    && p.healthy == status.healthy
            });
        if stale || repeated {
            calls.extend(ack);
            return Ok(calls);
        }
        let mut tx = self.store.transaction();
        tx.put_task_status(&name, status.clone());
        // The cluster never saw the launch (reconciliation does not know the task), or
        // dropped the whole ACCEPT (its offer was rescinded meanwhile): no operation of it
        // was applied, so reservations made for it do not exist.
        let unknown_to_cluster = status.is_unknown_to_cluster();
        let (unconfirmed, gone_by_operator) =
            self.store.task_info(&name).map_or((false, false), |_| {
                (
                    self.is_unconfirmed(&name) && !unknown_to_cluster,
                    status.state == TaskState::TaskGoneByOperator,
                )
            });
        if unconfirmed || gone_by_operator {
            let Some(info) = self.store.task_info(&name) else {
                return Ok(calls);
            };
            if unconfirmed {
                // The launch reached the cluster: its reservations exist — for every task
                // of the pod instance launched with it. Only the small mark is deleted
                // (a TaskInfo of an older berth carries it as a label: rewritten without).
                for n in self.instance_task_names(info) {
                    if !self.is_unconfirmed(&n) {
                        continue;
                    }
                    tx.set_task_unconfirmed(&n, false);
                    if n != name
                        && let Some(sibling) = self
                            .store
                            .task_info(&n)
                            .filter(|i| i.labels.get(UNCONFIRMED_LABEL).is_some())
                    {
                        let mut sibling = sibling.clone();
                        sibling.labels.remove(UNCONFIRMED_LABEL);
                        tx.put_task_info(sibling);
                    }
                }
            }
            let legacy = unconfirmed && info.labels.get(UNCONFIRMED_LABEL).is_some();
            if legacy || gone_by_operator {
                let mut changed = info.clone();
                changed.labels.remove(UNCONFIRMED_LABEL);
                if gone_by_operator {
                    // The agent was drained: the pod must be replaced elsewhere.
                    changed.labels.set(task_labels::PERMANENTLY_FAILED, "true");
                }
                tx.put_task_info(changed);
            }
        }
        match (self.store.goal_override(&name), status.state) {
            (
                Some((GoalOverride::Paused, OverrideProgress::InProgress)),
                TaskState::TaskRunning,
            ) => {
                tx.set_goal_override(
                    &name,
                    Some((GoalOverride::Paused, OverrideProgress::Complete)),
                );
            }
            (Some((GoalOverride::None, _)), TaskState::TaskRunning) => {
                tx.set_goal_override(&name, None);
            }
            _ => {}
        }
        self.store.stage(tx)?;
        if status.state.is_failed_or_lost() {
            self.kills.remove(&id);
            self.down_since.entry(name.clone()).or_insert(now);
        } else if status.state == TaskState::TaskRunning {
            self.down_since.remove(&name);
        }
        if let Some(info) = self.store.task_info(&name) {
            self.plans.on_task_status(info, &status, now);
        }
        // An uninstall ends every task on purpose: no line per task for that.
        if status.state.is_failed_or_lost() && self.uninstall.is_none() {
            let why = status.message.as_deref().unwrap_or_default();
            match self.plans.backoff().delayed_until(&name, now) {
                Some(until) => tracing::info!(
                    "{id}: {} {why}; relaunch held back {:.1} s",
                    status.state.as_str(),
                    until.saturating_sub(now) as f64 / 1000.0
                ),
                None => tracing::info!("{id}: {} {why}", status.state.as_str()),
            }
        }
        self.complete_kill_steps(&name, status.state, now)?;
        if gone_by_operator && let Some(agent) = &status.agent_id {
            calls.extend(self.agent_removed(&agent.value, now)?);
        }
        self.batch_dirty = true;
        calls.extend(ack);
        Ok(calls)
    }

    fn reconciled(&mut self, task_id: &str, now: Millis, calls: &mut Vec<Call>) {
        if let Phase::Reconciling { pending, .. } = &mut self.phase {
            pending.remove(task_id);
            if pending.is_empty() {
                calls.extend(self.finish_reconciliation(now));
            }
        }
    }

    /// Decommission/uninstall kill steps complete once their task is down.
    fn complete_kill_steps(
        &mut self,
        name: &str,
        state: TaskState,
        now: Millis,
    ) -> Result<(), SchedulerError> {
        if !state.is_failed_or_lost() {
            return Ok(());
        }
        let done: Vec<berth_plan::ElementId> = self
            .plans
            .plans()
            .iter()
            .flat_map(|p| p.steps())
            .filter(|(_, s)| matches!(&s.work, Work::Kill { task } if task == name))
            .map(|(_, s)| s.id.clone())
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        if self.uninstall.is_none()
            && let Some(info) = self.store.task_info(name).cloned()
        {
            // A decommission's kill step done by the task's own end: mark the pod as the step
            // would have.
            self.mark_decommissioning(&info, false)?;
        }
        for id in done {
            self.plans.mark_complete(&id, now);
        }
        Ok(())
    }

    /// When the deploy plan has just completed: records `last-completed-update-type` (the
    /// first time) and deletes configurations no task uses any more.
    fn note_deploy_completion(&mut self, now: Millis) -> Result<(), SchedulerError> {
        if self.uninstall.is_some() {
            return Ok(());
        }
        // Worked out only when it may have settled (a walk over every step otherwise, at the
        // end of every batch of a large deploy).
        let progress = self.plans.plan(berth_plan::generate::DEPLOY).map(|p| {
            if self.plans.may_be_settled(p) {
                self.plans.plan_progress(p, now)
            } else {
                Status::InProgress
            }
        });
        if progress == Some(Status::Error) || self.plans.has_failing_task() {
            let target = self.target_id;
            if history::read(&self.store)
                .last()
                .is_some_and(|e| e.id == target.to_string() && e.outcome == history::DEPLOYING)
            {
                let mut tx = self.store.transaction();
                history::mark(&self.store, &mut tx, target, history::FAILED)?;
                self.store.stage(tx)?;
            }
        }
        let complete = progress == Some(Status::Complete);
        if !complete || std::mem::replace(&mut self.deploy_complete, true) {
            self.deploy_complete = complete;
            return Ok(());
        }
        let mut tx = self.store.transaction();
        if self.store.last_completed_update_type()?.is_none() {
            tx.set_last_completed_update_type(UpdateType::Deploy);
        }
        history::mark(&self.store, &mut tx, self.target_id, history::DEPLOYED)?;
        let mut used: std::collections::HashSet<String> = self
            .store
            .task_infos()
            .filter_map(|i| i.labels.get(task_labels::TARGET_CONFIGURATION))
            .map(str::to_owned)
            .collect();
        used.extend(history::kept(&self.store).iter().map(Uuid::to_string));
        let target = self.target_id;
        let unused: Vec<Uuid> = self
            .store
            .config_ids()
            .filter(|id| *id != target && !used.contains(&id.to_string()))
            .collect();
        for id in &unused {
            tx.delete_config(*id);
        }
        self.store.stage(tx)?;
        tracing::info!(
            "deployment complete{}",
            if unused.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} configuration(s) no task uses were deleted",
                    unused.len()
                )
            }
        );
        Ok(())
    }

    // ----- time -------------------------------------------------------------------------

    /// Periodic work: reconciliation retries, kill retries, implicit reconciliation,
    /// automatic replacement, back-off expiry (revive), suppress when idle.
    ///
    /// # Errors
    /// Store failures.
    pub fn tick(&mut self, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        self.candidate_cache = None;
        let mut calls = Vec::new();
        if self.uninstall == Some(Uninstall::Done) {
            return Ok(calls);
        }
        match &mut self.phase {
            Phase::Registering => return Ok(calls),
            Phase::Reconciling {
                pending,
                retry_at,
                delay_ms,
            } => {
                if now >= *retry_at {
                    *delay_ms = (*delay_ms * 2).min(self.options.reconcile_retry_max_ms);
                    *retry_at = now + *delay_ms;
                    let pending = pending.clone();
                    tracing::info!("still reconciling {} tasks; asking again", pending.len());
                    calls.push(self.reconcile_call(&pending));
                }
                return Ok(calls);
            }
            Phase::Ready => {}
        }
        // Re-send kills that were not answered.
        let retry: Vec<(String, Option<AgentId>)> = self
            .kills
            .iter()
            .filter(|(_, k)| now.saturating_sub(k.sent_at) >= self.options.kill_retry_ms)
            .map(|(id, k)| (id.clone(), k.agent.clone()))
            .collect();
        for (id, agent) in retry {
            calls.extend(self.kill(&id, agent, now));
        }
        if now.saturating_sub(self.last_implicit_reconcile)
            >= self.options.implicit_reconcile_interval_ms
        {
            self.last_implicit_reconcile = now;
            calls.push(Call::Reconcile { tasks: Vec::new() });
        }
        if self.uninstall.is_none() {
            calls.extend(self.auto_replace(now)?);
        }
        calls.extend(self.settle_offers(now)?);
        Ok(calls)
    }

    /// Suppresses offers when no plan needs any, revives when work appears.
    pub(crate) fn offer_interest(&mut self, now: Millis) -> Vec<Call> {
        if self.phase != Phase::Ready {
            return Vec::new();
        }
        let idle = self.offer_need(now) != OfferNeed::Now;
        self.offer_interest_when(idle)
    }

    /// SUPPRESS or REVIVE when `idle` (no work wants offers) changed what the cluster was told.
    fn offer_interest_when(&mut self, idle: bool) -> Vec<Call> {
        if self.phase != Phase::Ready {
            return Vec::new();
        }
        if idle && !self.suppressed {
            self.suppressed = true;
            self.counters.suppresses += 1;
            tracing::info!("nothing to do: suppressing offers");
            vec![Call::Suppress]
        } else if !idle && self.suppressed {
            self.suppressed = false;
            self.counters.revives += 1;
            tracing::info!("work to do: reviving offers");
            vec![Call::Revive]
        } else {
            Vec::new()
        }
    }

    /// What the service wants of offers: plan work, or orphaned reservations to release (not
    /// before registration and reconciliation are done: then nothing is launched yet, and
    /// offers are declined briefly).
    pub(crate) fn offer_need(&mut self, now: Millis) -> OfferNeed {
        if self.phase != Phase::Ready {
            return OfferNeed::Now;
        }
        // The candidates of the last offer cycle still serve and some of them wait for
        // offers: not idle, without walking every plan (a large deploy ends many batches).
        if self
            .candidate_cache
            .as_ref()
            .is_some_and(|c| c.launchable && !c.is_due(now))
        {
            return OfferNeed::Now;
        }
        if !self.orphans().is_empty() {
            return OfferNeed::Now;
        }
        let tasks = StoreTasks(&self.store);
        self.plans.offer_need(&tasks, &mut *self.ids, now)
    }

    /// Whether the launch that made the task's reservations is not confirmed by the cluster
    /// yet: marked in the store (or, written by an older berth, a label of its TaskInfo).
    pub(crate) fn is_unconfirmed(&self, task_name: &str) -> bool {
        self.store.is_unconfirmed(task_name)
            || self
                .store
                .task_info(task_name)
                .is_some_and(|i| i.labels.get(UNCONFIRMED_LABEL).is_some())
    }

    /// When the core next wants a `tick` (back-off expiry), if sooner than the usual period.
    #[must_use]
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        self.plans.next_wakeup(now)
    }

    /// Replaces pods whose tasks stayed down longer than the replacement policy allows.
    fn auto_replace(&mut self, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        let Some(policy) = self
            .options
            .replacement_policy
            .clone()
            .or_else(|| self.plans.spec().replacement_failure_policy.clone())
        else {
            return Ok(Vec::new());
        };
        if self
            .last_auto_replace
            .is_some_and(|t| now.saturating_sub(t) < policy.min_replace_delay_secs * 1000)
        {
            return Ok(Vec::new());
        }
        let timeout = policy.permanent_failure_timeout_secs * 1000;
        let victim = self
            .down_since
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= timeout)
            .filter_map(|(name, _)| self.store.task_info(name))
            .find(|info| info.labels.get(task_labels::PERMANENTLY_FAILED) != Some("true"))
            .and_then(|info| {
                let pod = info.labels.get(task_labels::TASK_TYPE)?;
                let index = info.labels.get(task_labels::INDEX)?;
                Some(format!("{pod}-{index}"))
            });
        let Some(pod) = victim else {
            return Ok(Vec::new());
        };
        tracing::warn!(
            "pod {pod} stayed failed for more than {}s: replacing it",
            policy.permanent_failure_timeout_secs
        );
        self.last_auto_replace = Some(now);
        let (_, calls) = self.replace_pod(&pod, now)?;
        Ok(calls)
    }
}

/// Tasks whose decommission had started and whose pod is in the target again (the count went
/// down and back up before the decommission finished): some of their reservations may be
/// released already, so the pod starts afresh on new reservations, and what is left of the
/// old ones is released as unexpected.
pub(crate) fn revive_decommissioned<P: Persister>(
    store: &mut StateStore<P>,
    target: &ServiceSpec,
) -> Result<(), SchedulerError> {
    let instance = |info: &TaskInfo| -> Option<(String, u32)> {
        Some((
            info.labels.get(task_labels::TASK_TYPE)?.to_owned(),
            info.labels.get(task_labels::INDEX)?.parse().ok()?,
        ))
    };
    // Pod instances back in the target of which a task's decommission had started.
    let revived: HashSet<(String, u32)> = store
        .task_infos()
        .filter(|i| {
            matches!(
                store.goal_override(&i.name),
                Some((GoalOverride::Decommissioned, _))
            )
        })
        .filter_map(instance)
        .filter(|(pod_type, index)| target.pod(pod_type).is_some_and(|p| *index < p.count))
        .collect();
    if revived.is_empty() {
        return Ok(());
    }
    // Every task of such a pod starts afresh, also those the decommission had not reached.
    let mut tx = store.transaction();
    for info in store.task_infos() {
        if !instance(info).is_some_and(|i| revived.contains(&i)) {
            continue;
        }
        let mut marked = info.clone();
        marked.labels.set(task_labels::PERMANENTLY_FAILED, "true");
        tx.put_task_info(marked);
        if store.goal_override(&info.name).is_some() {
            tx.set_goal_override(&info.name, None);
        }
        tracing::info!(
            "{}: back in the configuration before its decommission finished; it starts afresh",
            info.name
        );
    }
    store.stage(tx)?;
    Ok(())
}
