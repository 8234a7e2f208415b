//! The plans of a service and how far each has got: the scheduler's planning state.
//!
//! ```text
//!             ┌──────────── PlanSet ─────────────────────────────────────────┐
//! spec ──────▶│ plans (immutable trees): deploy, recovery, [decommission],   │
//! tasks ─────▶│   custom plans (start interrupted)                           │
//!             │ step progress, interrupt flags, canaries, back-off           │
//!             └───────┬──────────────────────────────▲────────────────────────┘
//!   candidates(tasks) │ coordinator: plans in        │ mark_prepared / mark_launched /
//!                     ▼ priority order, dirty assets │ mark_complete / on_task_status /
//!               Vec<Candidate>  ──▶ scheduler ───────┘ execute(command)
//! ```
//!
//! Everything here is a pure function of its inputs: the clock (`now`) and ids are passed in.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use berth_mesos::{TaskId, TaskInfo, TaskState, TaskStatus};
use berth_spec::{ServiceSpec, StringMap};
use serde::Serialize;

use crate::backoff::{Backoff, BackoffPolicy, Millis};
use crate::decommission::decommission_plan;
use crate::element::{
    ElementId, Phase, Plan, PodLaunch, RecoveryType, Step, Strategy, UNPLACED, Work,
};
use crate::generate::{custom_plans, deploy_plan, new_id};
use crate::ids::IdGenerator;
use crate::recovery::{RecoveryNeed, recovery_needs};
use crate::status::{Status, aggregate, least_advanced};
use crate::strategy::{Canary, Child, candidates};
use crate::task::{GoalOverride, OverrideProgress, TaskSource, progress_of};

/// The maps walked for every step of every plan, keyed by ids and names berth made: a fast
/// hasher (the default one resists hash flooding, which these keys cannot bring).
type FastMap<K, V> = foldhash::HashMap<K, V>;

/// Name of the recovery plan.
pub const RECOVERY: &str = "recovery";

/// How many history entries are kept.
const HISTORY_LIMIT: usize = 1000;

/// What the plan set is built from.
pub struct PlanContext<'a> {
    /// The target configuration.
    pub spec: &'a ServiceSpec,
    /// Its id.
    pub target_config_id: &'a str,
    /// The stored tasks.
    pub tasks: &'a dyn TaskSource,
    /// Whether a deployment completed before (`last-completed-update-type` is set).
    pub deployed_before: bool,
    /// Launch back-off settings.
    pub backoff: BackoffPolicy,
    /// Configuration errors to show on the deploy plan (it then reports ERROR).
    pub config_errors: Vec<String>,
}

/// Progress of one task launched by a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskProgress {
    /// The launched task id.
    pub task_id: String,
    /// What its last status means for the step.
    pub status: Status,
}

/// The tasks a step launched, by name: a list sorted by name. A step launches a few tasks,
/// and a map's node per step cost about 600 bytes (one per task at 50,000 pods).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepTasks(Vec<(String, TaskProgress)>);

impl StepTasks {
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    /// The progress of the task `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&TaskProgress> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut TaskProgress> {
        self.position(name).ok().map(|i| &mut self.0[i].1)
    }

    fn insert(&mut self, name: String, progress: TaskProgress) {
        match self.position(&name) {
            Ok(i) => self.0[i].1 = progress,
            Err(i) => {
                // One more slot, not twice the room: a step launches a few tasks, and a plan
                // keeps one list per step.
                self.0.reserve_exact(1);
                self.0.insert(i, (name, progress));
            }
        }
    }

    fn clear(&mut self) {
        self.0 = Vec::new();
    }

    /// Task names and their progress, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TaskProgress)> {
        self.0.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The task names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    /// The tasks' progress, by name.
    pub fn values(&self) -> impl Iterator<Item = &TaskProgress> {
        self.0.iter().map(|(_, p)| p)
    }

    /// How many tasks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the step launched none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, TaskProgress)> for StepTasks {
    fn from_iter<I: IntoIterator<Item = (String, TaskProgress)>>(iter: I) -> Self {
        let mut tasks = StepTasks::default();
        for (name, progress) in iter {
            tasks.insert(name, progress);
        }
        tasks.0.shrink_to_fit();
        tasks
    }
}

#[derive(Debug, Clone, Default)]
struct StepProgress {
    status: Option<Status>,
    tasks: StepTasks,
    parameters: StringMap,
}

impl StepProgress {
    fn status(&self) -> Status {
        self.status.unwrap_or(Status::Pending)
    }
}

/// How many steps of a plan are COMPLETE and ERROR, kept as their statuses change.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    steps: u32,
    complete: u32,
    erred: u32,
}

impl Tally {
    fn add(&mut self, status: Status, by: i8) {
        let counter = match status {
            Status::Complete => &mut self.complete,
            Status::Error => &mut self.erred,
            _ => return,
        };
        *counter = counter.saturating_add_signed(i32::from(by));
    }
}

/// What the set keeps about one step of its plans, at the step's slot.
#[derive(Debug, Clone, Default)]
struct StepState {
    progress: StepProgress,
    flags: Flags,
    /// Where the step is: plan, phase and step index.
    at: [u32; 3],
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub(crate) interrupted: bool,
    errors: Vec<String>,
    canary: Option<bool>, // Some(true) = held canary, Some(false) = released canary
}

/// A step the scheduler may work on now: a place in a shared plan tree (no copy of the
/// step; a large deploy has tens of thousands of candidates).
#[derive(Debug, Clone)]
pub struct Candidate {
    plan: Arc<Plan>,
    phase: u32,
    step: u32,
    /// Its current status (`PENDING`, `PREPARED`, `STARTING`, `STARTED`).
    pub status: Status,
    /// Parameters from `plan start`, to add to the launched tasks' environment.
    pub parameters: StringMap,
}

impl Candidate {
    /// Step `step` of phase `phase` of `plan`; `None` when the plan has no such step.
    #[must_use]
    pub fn new(plan: Arc<Plan>, phase: usize, step: usize, status: Status) -> Option<Self> {
        plan.phases.get(phase)?.steps.get(step)?;
        Some(Self {
            phase: u32::try_from(phase).ok()?,
            step: u32::try_from(step).ok()?,
            plan,
            status,
            parameters: StringMap::new(),
        })
    }

    /// The step (the plan tree is shared and never changes: the place stays valid).
    #[must_use]
    pub fn step(&self) -> &Step {
        &self.plan.phases[self.phase as usize].steps[self.step as usize]
    }

    /// The step's id.
    #[must_use]
    pub fn step_id(&self) -> &ElementId {
        &self.step().id
    }

    /// The step's name.
    #[must_use]
    pub fn step_name(&self) -> &str {
        &self.step().name
    }

    /// What the step does.
    #[must_use]
    pub fn work(&self) -> &Work {
        &self.step().work
    }

    /// Its plan's name.
    #[must_use]
    pub fn plan_name(&self) -> &str {
        &self.plan.name
    }

    /// Its phase's name.
    #[must_use]
    pub fn phase_name(&self) -> &str {
        &self.plan.phases[self.phase as usize].name
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.plan.name == other.plan.name
            && self.step_id() == other.step_id()
            && self.status == other.status
            && self.parameters == other.parameters
    }
}

/// One entry of the audit trail of plan changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// When, in ms since the epoch.
    pub at: Millis,
    /// Plan.
    pub plan: String,
    /// Element (plan, phase or step name).
    pub element: String,
    /// What happened (`forceComplete`, `status RUNNING → COMPLETE`, …).
    pub what: String,
}

/// What the plans want of offers (see [`PlanSet::offer_need`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferNeed {
    /// A candidate step waits for an offer.
    Now,
    /// Steps wait for offers, but only behind steps whose tasks are starting: offers are
    /// wanted again as soon as those are up.
    Soon,
    /// No step of a runnable plan waits for offers.
    Idle,
}

/// All plans of a service with their progress.
#[derive(Debug, Clone)]
pub struct PlanSet {
    spec: ServiceSpec,
    target_config_id: String,
    /// The plan trees, shared with the reports taken of them (a tree changes — copied if a
    /// report still holds it — only when the recovery plan's phases do).
    plans: Vec<Arc<Plan>>,
    /// Flags of plans and phases (a step's are in its slot).
    flags: FastMap<ElementId, Flags>,
    /// Every step of the plans, by slot ([`Step::slot`]): the walks over all steps read
    /// these in order instead of looking each id up.
    steps: Vec<StepState>,
    /// Step id → slot, for changes that name a step.
    slots: FastMap<ElementId, u32>,
    /// Per plan (same order as `plans`): how many of its steps are COMPLETE and ERROR.
    tally: Vec<Tally>,
    backoff: Backoff,
    watchers: FastMap<String, Vec<ElementId>>,
    in_plans: HashSet<String>,
    history: VecDeque<HistoryEntry>,
    /// Plan or phase id → (plan name, element name), for the history (a step's come from
    /// its slot).
    names: FastMap<ElementId, (String, String)>,
    /// Tasks that failed (FAILED or ERROR) again and again, each run shorter than a minute,
    /// by task name; a FINISHED run ends the count.
    failures: FastMap<String, TaskFailures>,
}

/// Consecutive failures of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailures {
    /// How many in a row.
    pub count: u32,
    /// The last failure's message.
    pub last: String,
}

/// From this many failures in a row, a step's failing task is an error of its plan.
pub const FAILURES_FOR_ERROR: u32 = 3;

/// A run shorter than this that ends in a failure continues the count of failures in a row
/// (a crash loop passes through RUNNING every time); a longer one starts a new count.
const SHORT_RUN_MS: Millis = 60_000;

impl PlanSet {
    /// Builds the plans for `ctx.spec` and derives each step's status from the stored tasks.
    ///
    /// A launch step is COMPLETE when every one of its tasks reached its goal on the target
    /// configuration (RUNNING and ready; FINISH: finished; ONCE: finished on any
    /// configuration; permanently failed tasks count as done — recovery owns them); a step
    /// whose tasks are still starting or not yet ready on the target configuration resumes
    /// watching them (no relaunch); anything else is PENDING.
    pub fn new(ctx: &PlanContext<'_>, ids: &mut dyn IdGenerator, now: Millis) -> Self {
        let mut plans = vec![deploy_plan(ctx.spec, ctx.deployed_before, ids)];
        plans.push(Plan {
            id: new_id(ids),
            name: RECOVERY.to_owned(),
            strategy: Strategy::Parallel,
            phases: Vec::new(),
        });
        if let Some(p) = decommission_plan(ctx.spec, ctx.tasks, ids) {
            plans.push(p);
        }
        let customs = custom_plans(ctx.spec, ids);
        let custom_ids: Vec<ElementId> = customs.iter().map(|p| p.id.clone()).collect();
        plans.extend(customs);

        let mut set = PlanSet {
            spec: ctx.spec.clone(),
            target_config_id: ctx.target_config_id.to_owned(),
            plans: plans.into_iter().map(Arc::new).collect(),
            flags: FastMap::default(),
            steps: Vec::new(),
            slots: FastMap::default(),
            tally: Vec::new(),
            backoff: Backoff::new(ctx.backoff),
            watchers: FastMap::default(),
            in_plans: HashSet::new(),
            history: VecDeque::new(),
            names: FastMap::default(),
            failures: FastMap::default(),
        };
        set.index();
        for id in custom_ids {
            set.flags.entry(id).or_default().interrupted = true;
        }
        if let Some(deploy) = set.plans.first() {
            let id = deploy.id.clone();
            set.flags.entry(id).or_default().errors = ctx.config_errors.clone();
        }
        let mut initial: Vec<(ElementId, StepProgress)> = Vec::new();
        for plan in &set.plans {
            for (_, step) in plan.steps() {
                if let Work::Launch(launch) = &step.work {
                    set.in_plans.extend(launch.task_names());
                    initial.push((
                        step.id.clone(),
                        initial_progress(launch, ctx.target_config_id, ctx.tasks),
                    ));
                }
            }
        }
        for (id, progress) in initial {
            set.watch(&id, &progress);
            if let Some(p) = set.progress_mut(&id) {
                *p = progress;
            }
        }
        set.count();
        set.hold_canaries(now);
        set
    }

    /// The plans of a service being uninstalled: only `plan` (the uninstall plan, named
    /// `deploy`), no recovery, no custom plans.
    #[must_use]
    pub fn uninstall(spec: &ServiceSpec, target_config_id: &str, plan: Plan) -> Self {
        let mut set = PlanSet {
            spec: spec.clone(),
            target_config_id: target_config_id.to_owned(),
            plans: vec![Arc::new(plan)],
            flags: FastMap::default(),
            steps: Vec::new(),
            slots: FastMap::default(),
            tally: Vec::new(),
            backoff: Backoff::new(BackoffPolicy::default()),
            watchers: FastMap::default(),
            in_plans: HashSet::new(),
            history: VecDeque::new(),
            names: FastMap::default(),
            failures: FastMap::default(),
        };
        set.index();
        set
    }

    /// The target configuration the plans were built from.
    #[must_use]
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The target configuration id.
    #[must_use]
    pub fn target_config_id(&self) -> &str {
        &self.target_config_id
    }

    /// Plan names in priority order.
    #[must_use]
    pub fn plan_names(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.name.as_str()).collect()
    }

    /// The plan of that name.
    #[must_use]
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name).map(|p| &**p)
    }

    /// The plan of that name, shared.
    pub(crate) fn shared_plan(&self, name: &str) -> Option<&Arc<Plan>> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The plans in priority order.
    #[must_use]
    pub fn plans(&self) -> &[Arc<Plan>] {
        &self.plans
    }

    /// Failures in a row of a task (by name): runs that each ended in a failure within a
    /// minute of their launch.
    #[must_use]
    pub fn task_failures(&self, task: &str) -> Option<&TaskFailures> {
        self.failures.get(task)
    }

    /// Whether any task has failures in a row.
    pub(crate) fn any_task_failures(&self) -> bool {
        !self.failures.is_empty()
    }

    /// Whether a task failed [`FAILURES_FOR_ERROR`] times in a row (its step shows an
    /// error): a rollout that keeps failing.
    #[must_use]
    pub fn has_failing_task(&self) -> bool {
        self.failures
            .values()
            .any(|f| f.count >= FAILURES_FOR_ERROR)
    }

    /// Errors attached to a plan (configuration errors on `deploy`).
    #[must_use]
    pub fn plan_errors(&self, plan: &Plan) -> &[String] {
        self.flags
            .get(&plan.id)
            .map_or(&[][..], |f| f.errors.as_slice())
    }

    /// Whether the element is interrupted.
    #[must_use]
    pub fn is_interrupted(&self, id: &ElementId) -> bool {
        self.flags_of(id).is_some_and(|f| f.interrupted)
    }

    /// The step of that id with its plan and phase.
    #[must_use]
    pub fn step(&self, id: &ElementId) -> Option<(&Plan, &Phase, &Step)> {
        let [p, h, s] = self.state(id)?.at.map(|i| i as usize);
        let plan = self.plans.get(p)?;
        let phase = plan.phases.get(h)?;
        Some((plan, phase, phase.steps.get(s)?))
    }

    /// The launched tasks a step is watching.
    #[must_use]
    pub fn step_tasks(&self, id: &ElementId) -> Option<&StepTasks> {
        self.state(id).map(|s| &s.progress.tasks)
    }

    /// Parameters given to the step by `plan start`.
    #[must_use]
    pub fn step_parameters(&self, id: &ElementId) -> Option<&StringMap> {
        self.state(id).map(|s| &s.progress.parameters)
    }

    /// The launch back-off state.
    #[must_use]
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// Forgets the back-off of a task (pod restart/replace, plan restart).
    pub fn clear_backoff(&mut self, task: &str) {
        self.backoff.clear(task);
    }

    /// The audit trail, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter()
    }

    /// Names of the tasks some deploy or custom plan launches.
    #[must_use]
    pub fn planned_tasks(&self) -> &HashSet<String> {
        &self.in_plans
    }

    // ----- statuses --------------------------------------------------------------------

    /// The status of a step as strategies see it (back-off expiry applied; an interrupted
    /// or held step that has not started shows WAITING).
    #[must_use]
    pub fn step_status(&self, step: &Step, now: Millis) -> Status {
        let state = self.state_of(step);
        let mut status = state.map_or(Status::Pending, |s| s.progress.status());
        if status == Status::Delayed && !self.step_delayed(step, now) {
            status = Status::Pending;
        }
        let flags = state.map(|s| &s.flags);
        let waiting = flags.is_some_and(|f| f.interrupted || f.canary == Some(true));
        if waiting && matches!(status, Status::Pending | Status::Prepared) {
            return Status::Waiting;
        }
        status
    }

    /// The status shown for a step: [`Self::step_status`], or PAUSING/PAUSED when every task
    /// of the step is paused.
    #[must_use]
    pub fn step_display_status(&self, step: &Step, tasks: &dyn TaskSource, now: Millis) -> Status {
        Self::display_of(step, self.step_status(step, now), tasks)
    }

    /// The status shown for a step whose [`Self::step_status`] is `status`.
    pub(crate) fn display_of(step: &Step, status: Status, tasks: &dyn TaskSource) -> Status {
        let Work::Launch(launch) = &step.work else {
            return status;
        };
        if launch.recovery != RecoveryType::None || !tasks.any_goal_override() {
            return status;
        }
        let mut any = false;
        let mut all_paused = true;
        let mut all_complete = true;
        for name in launch.task_names() {
            match tasks.task(&name).and_then(|t| t.goal_override) {
                Some((GoalOverride::Paused, progress)) => {
                    any = true;
                    all_complete &= progress == OverrideProgress::Complete;
                }
                _ => all_paused = false,
            }
        }
        if !any || !all_paused {
            return status;
        }
        if all_complete {
            Status::Paused
        } else {
            Status::Pausing
        }
    }

    fn step_delayed(&self, step: &Step, now: Millis) -> bool {
        match &step.work {
            Work::Launch(l) => l
                .task_names()
                .iter()
                .any(|t| self.backoff.is_delayed(t, now)),
            _ => false,
        }
    }

    fn canary_of(&self, step: &Step) -> Canary {
        match self.state_of(step).and_then(|s| s.flags.canary) {
            None => Canary::No,
            Some(true) => Canary::Held,
            Some(false) => Canary::Released,
        }
    }

    fn step_children(
        &self,
        phase: &Phase,
        now: Millis,
        display: Option<&dyn TaskSource>,
    ) -> Vec<Child> {
        phase
            .steps
            .iter()
            .map(|s| {
                let status = match display {
                    Some(tasks) => self.step_display_status(s, tasks, now),
                    None => self.step_status(s, now),
                };
                self.step_child(s, status)
            })
            .collect()
    }

    /// A step as its phase's strategy sees it, with its (display) status.
    pub(crate) fn step_child(&self, step: &Step, status: Status) -> Child {
        let flags = self.state_of(step).map(|s| &s.flags);
        Child {
            status,
            eligible: !matches!(
                status,
                Status::Complete | Status::Paused | Status::Error | Status::Waiting
            ) && !flags.is_some_and(|f| f.interrupted || !f.errors.is_empty()),
            canary: self.canary_of(step),
        }
    }

    /// Aggregate status of a phase.
    #[must_use]
    pub fn phase_status(&self, phase: &Phase, tasks: &dyn TaskSource, now: Millis) -> Status {
        self.phase_status_with(phase, now, Some(tasks))
    }

    /// Aggregate status of a phase; with `display`, paused steps count as PAUSED/PAUSING.
    fn phase_status_with(
        &self,
        phase: &Phase,
        now: Millis,
        display: Option<&dyn TaskSource>,
    ) -> Status {
        let children = self.step_children(phase, now, display);
        self.phase_status_of(phase, &children)
    }

    /// Aggregate status of a phase whose steps are `children`.
    pub(crate) fn phase_status_of(&self, phase: &Phase, children: &[Child]) -> Status {
        self.aggregate_children(&phase.id, &phase.strategy, children)
    }

    fn aggregate_children(
        &self,
        id: &ElementId,
        strategy: &Strategy,
        children: &[Child],
    ) -> Status {
        let statuses: Vec<Status> = children.iter().map(|c| c.status).collect();
        let cands: Vec<Status> = candidates(strategy, children)
            .into_iter()
            .map(|i| statuses[i])
            .collect();
        let flags = self.flags.get(id);
        aggregate(
            &statuses,
            &cands,
            flags.is_some_and(|f| !f.errors.is_empty()),
            flags.is_some_and(|f| f.interrupted),
        )
    }

    fn phase_children(
        &self,
        plan: &Plan,
        now: Millis,
        display: Option<&dyn TaskSource>,
    ) -> Vec<Child> {
        plan.phases
            .iter()
            .map(|p| self.phase_child(p, self.phase_status_with(p, now, display)))
            .collect()
    }

    /// A phase as its plan's strategy sees it, with its status.
    pub(crate) fn phase_child(&self, phase: &Phase, status: Status) -> Child {
        let flags = self.flags.get(&phase.id);
        Child {
            status,
            eligible: !matches!(status, Status::Complete | Status::Error)
                && !flags.is_some_and(|f| f.interrupted || !f.errors.is_empty()),
            canary: Canary::No,
        }
    }

    /// Aggregate status of a plan whose phases are `children`.
    pub(crate) fn plan_status_of(&self, plan: &Plan, children: &[Child]) -> Status {
        self.aggregate_children(&plan.id, &plan.strategy, children)
    }

    /// Aggregate status of a plan as shown to operators (paused steps show PAUSED/PAUSING).
    #[must_use]
    pub fn plan_status(&self, plan: &Plan, tasks: &dyn TaskSource, now: Millis) -> Status {
        self.plan_status_with(plan, now, Some(tasks))
    }

    /// Aggregate status of a plan for decisions: like [`Self::plan_status`] but without the
    /// paused display (a paused step is COMPLETE or STARTED), and cheaper.
    #[must_use]
    pub fn plan_progress(&self, plan: &Plan, now: Millis) -> Status {
        self.plan_status_with(plan, now, None)
    }

    fn plan_status_with(
        &self,
        plan: &Plan,
        now: Millis,
        display: Option<&dyn TaskSource>,
    ) -> Status {
        let children = self.phase_children(plan, now, display);
        self.plan_status_of(plan, &children)
    }

    // ----- the coordinator -------------------------------------------------------------

    /// The steps to work on now, in priority order (deploy, recovery, decommission, custom
    /// plans), after refreshing the recovery plan from the tasks.
    ///
    /// Interrupted plans and plans with errors give nothing. A launch step is skipped when it
    /// works on a pod instance and task that a step of another plan is already working on
    /// (PREPARED, STARTING, STARTED) or that an earlier candidate of this call claimed (dirty
    /// assets). DELAYED steps are left out.
    pub fn candidates(
        &mut self,
        tasks: &dyn TaskSource,
        ids: &mut dyn IdGenerator,
        now: Millis,
    ) -> Vec<Candidate> {
        self.candidates_covering(tasks, ids, now).0
    }

    /// [`Self::candidates`], and whether they are every unfinished step of the plans that
    /// are neither interrupted nor in error: then task statuses that do not end a task (they
    /// only complete steps) cannot make more steps candidates — only commands, time (back-off)
    /// and ended tasks can.
    pub fn candidates_covering(
        &mut self,
        tasks: &dyn TaskSource,
        ids: &mut dyn IdGenerator,
        now: Millis,
    ) -> (Vec<Candidate>, bool) {
        self.refresh_recovery(tasks, ids, now);
        let mut selected = Vec::new();
        let covering = self.visit_candidates(now, &mut |[pi, hi, si], step, status| {
            let mut cand = self
                .plans
                .get(pi)
                .and_then(|plan| Candidate::new(Arc::clone(plan), hi, si, status));
            if let (Some(c), Some(state)) = (&mut cand, self.state_of(step)) {
                c.parameters.clone_from(&state.progress.parameters);
            }
            selected.extend(cand);
            true
        });
        (selected, covering)
    }

    /// Calls `f` for each candidate step in priority order until it returns `false`
    /// (see [`Self::candidates`]; the recovery plan is not refreshed here). Returns whether
    /// every unfinished step of the plans neither interrupted nor in error was visited.
    fn visit_candidates(
        &self,
        now: Millis,
        f: &mut dyn FnMut([usize; 3], &Step, Status) -> bool,
    ) -> bool {
        let mut covering = true;
        // Launch steps at work, by pod instance, with their plan.
        let mut busy: FastMap<(&str, u32), Few<(usize, &PodLaunch)>> = FastMap::default();
        for (pi, plan) in self.plans.iter().enumerate() {
            for (_, step) in plan.steps() {
                if let Work::Launch(l) = &step.work {
                    let s = self.progress_status(step);
                    if matches!(s, Status::Prepared | Status::Starting | Status::Started) {
                        busy.entry((l.pod_type.as_str(), l.index))
                            .or_default()
                            .push((pi, l));
                    }
                }
            }
        }
        // Launch steps chosen by this walk, by pod instance.
        let mut claimed: FastMap<(&str, u32), Few<&PodLaunch>> = FastMap::default();
        for (pi, plan) in self.plans.iter().enumerate() {
            let flags = self.flags.get(&plan.id);
            if flags.is_some_and(|f| f.interrupted || !f.errors.is_empty()) {
                continue;
            }
            let phase_children = self.phase_children(plan, now, None);
            let phases = candidates(&plan.strategy, &phase_children);
            covering &= phase_children
                .iter()
                .enumerate()
                .all(|(i, c)| c.status == Status::Complete || phases.contains(&i));
            for phase_index in phases {
                let phase = &plan.phases[phase_index];
                let mut children = self.step_children(phase, now, None);
                let mut unfinished = children
                    .iter()
                    .filter(|c| c.status != Status::Complete)
                    .count();
                for (child, step) in children.iter_mut().zip(&phase.steps) {
                    if !child.eligible {
                        continue;
                    }
                    if let Work::Launch(l) = &step.work {
                        let key = (l.pod_type.as_str(), l.index);
                        let dirty = busy.get(&key).is_some_and(|v| {
                            v.iter()
                                .any(|(other, o)| *other != pi && o.conflicts_with(l))
                        }) || claimed
                            .get(&key)
                            .is_some_and(|v| v.iter().any(|o| o.conflicts_with(l)));
                        if dirty {
                            child.eligible = false;
                        }
                    }
                }
                for step_index in candidates(&phase.strategy, &children) {
                    let step = &phase.steps[step_index];
                    let status = children[step_index].status;
                    if status == Status::Delayed {
                        continue;
                    }
                    if let Work::Launch(l) = &step.work {
                        claimed
                            .entry((l.pod_type.as_str(), l.index))
                            .or_default()
                            .push(l);
                    }
                    unfinished = unfinished.saturating_sub(1);
                    if !f([pi, phase_index, step_index], step, status) {
                        return false;
                    }
                }
                covering &= unfinished == 0;
            }
        }
        covering
    }

    /// Whether no plan needs offers now: every candidate is waiting on its tasks
    /// (STARTING/STARTED) and nothing is PENDING or PREPARED. The scheduler then suppresses
    /// offers.
    pub fn is_idle(
        &mut self,
        tasks: &dyn TaskSource,
        ids: &mut dyn IdGenerator,
        now: Millis,
    ) -> bool {
        self.offer_need(tasks, ids, now) != OfferNeed::Now
    }

    /// What the plans want of offers: a candidate step waits for one ([`OfferNeed::Now`]);
    /// steps of a runnable plan wait, but only behind candidates whose tasks are starting
    /// ([`OfferNeed::Soon`], e.g. the next steps of a serial phase); or nothing waits for
    /// offers ([`OfferNeed::Idle`]).
    pub fn offer_need(
        &mut self,
        tasks: &dyn TaskSource,
        ids: &mut dyn IdGenerator,
        now: Millis,
    ) -> OfferNeed {
        self.refresh_recovery(tasks, ids, now);
        // Fast path: no step of a runnable plan waits for offers at all.
        let waiting_for_offers = self.plans.iter().any(|plan| {
            let flags = self.flags.get(&plan.id);
            !flags.is_some_and(|f| f.interrupted || !f.errors.is_empty())
                && plan.steps().any(|(_, step)| {
                    matches!(
                        self.step_status(step, now),
                        Status::Pending | Status::Prepared
                    )
                })
        });
        if !waiting_for_offers {
            return OfferNeed::Idle;
        }
        let mut need = OfferNeed::Soon;
        self.visit_candidates(now, &mut |_, _, status| {
            if matches!(status, Status::Starting | Status::Started) {
                true
            } else {
                need = OfferNeed::Now;
                false
            }
        });
        need
    }

    /// When the earliest back-off ends (the scheduler should look for work again then).
    #[must_use]
    pub fn next_wakeup(&self, now: Millis) -> Option<Millis> {
        self.backoff.next_expiry(now)
    }

    // ----- transitions -----------------------------------------------------------------

    /// The step was evaluated against offers without a match (or kills were issued).
    pub fn mark_prepared(&mut self, id: &ElementId, now: Millis) {
        let Some(p) = self.progress_mut(id) else {
            return;
        };
        if matches!(p.status(), Status::Pending | Status::Delayed) {
            self.set_status(id, Status::Prepared);
            self.record(id, now, "PENDING → PREPARED".to_owned());
        }
    }

    /// The step's tasks were launched with these ids: it is STARTING and watches them.
    pub fn mark_launched(&mut self, id: &ElementId, launched: &[(String, TaskId)], now: Millis) {
        self.unwatch(id);
        self.set_status(id, Status::Starting);
        let Some(p) = self.progress_mut(id) else {
            return;
        };
        p.tasks = launched
            .iter()
            .map(|(name, task_id)| {
                (
                    name.clone(),
                    TaskProgress {
                        task_id: task_id.value.clone(),
                        status: Status::Starting,
                    },
                )
            })
            .collect();
        let progress = p.clone();
        for (name, _) in launched {
            self.backoff.on_launch(name, now);
        }
        self.watch(id, &progress);
        self.record(id, now, format!("launched {}", launched.len()));
    }

    /// A step whose work is not a launch (kill, unreserve, erase, deregister, no-op) started.
    pub fn mark_started(&mut self, id: &ElementId, now: Millis) {
        self.mark_prepared(id, now);
    }

    /// A step finished its work.
    pub fn mark_complete(&mut self, id: &ElementId, now: Millis) {
        self.unwatch(id);
        self.set_status(id, Status::Complete);
        self.record(id, now, "COMPLETE".to_owned());
    }

    /// Marks the step ERROR with a message (e.g. a launch that can never be built).
    pub fn mark_error(&mut self, id: &ElementId, message: String, now: Millis) {
        self.set_status(id, Status::Error);
        self.flags_mut(id).errors.push(message.clone());
        self.record(id, now, format!("ERROR: {message}"));
    }

    /// A task status arrived (already stored). Updates back-off and every step watching
    /// that task id. Steps that are COMPLETE no longer watch their tasks: later failures are
    /// the recovery plan's business.
    pub fn on_task_status(&mut self, info: &TaskInfo, status: &TaskStatus, now: Millis) {
        let name = info.name.as_str();
        let ready = info.check.is_none() || status.readiness_passed();
        match status.state {
            TaskState::TaskFailed | TaskState::TaskError => {
                // A run that lasted a while before failing starts a new count.
                let short_run = self
                    .backoff
                    .launched_at(name)
                    .is_some_and(|at| now.saturating_sub(at) < SHORT_RUN_MS);
                self.backoff.on_failure(name, now);
                let f = self
                    .failures
                    .entry(name.to_owned())
                    .or_insert(TaskFailures {
                        count: 0,
                        last: String::new(),
                    });
                f.count = if short_run {
                    f.count.saturating_add(1)
                } else {
                    1
                };
                f.last = status
                    .message
                    .clone()
                    .unwrap_or_else(|| status.state.as_str().to_owned());
            }
            TaskState::TaskRunning if ready => self.backoff.clear(name),
            TaskState::TaskFinished => {
                self.failures.remove(name);
            }
            TaskState::TaskGoneByOperator => self.backoff.clear(name),
            _ => {}
        }
        let goal = crate::task::TaskRecord {
            info,
            status: Some(status),
            goal_override: None,
            unconfirmed: false,
        }
        .goal();
        let delayed = self.backoff.is_delayed(name, now);
        let Some(watching) = self.watchers.get(name).cloned() else {
            return;
        };
        for step_id in watching {
            let Some(p) = self.progress_mut(&step_id) else {
                continue;
            };
            if p.status() == Status::Complete {
                continue;
            }
            let Some(tp) = p.tasks.get_mut(name) else {
                continue;
            };
            if tp.task_id != status.task_id.value {
                continue;
            }
            let Some(new) = progress_of(status.state, goal, ready, delayed) else {
                continue;
            };
            tp.status = new;
            let before = p.status();
            let after =
                least_advanced(p.tasks.values().map(|t| t.status)).unwrap_or(Status::Pending);
            self.set_status(&step_id, after);
            if after == Status::Complete {
                self.unwatch(&step_id);
            }
            if before != after {
                self.record(
                    &step_id,
                    now,
                    format!("{before} → {after} ({})", status.state.as_str()),
                );
            }
        }
    }

    // ----- internals -------------------------------------------------------------------

    fn watch(&mut self, id: &ElementId, progress: &StepProgress) {
        if progress.status() == Status::Complete {
            return;
        }
        for name in progress.tasks.keys() {
            let list = self.watchers.entry(name.clone()).or_default();
            if !list.contains(id) {
                list.push(id.clone());
            }
        }
    }

    fn unwatch(&mut self, id: &ElementId) {
        let Some(i) = self.slots.get(id) else {
            return;
        };
        for name in self.steps[*i as usize].progress.tasks.keys() {
            if let Some(list) = self.watchers.get_mut(name) {
                list.retain(|s| s != id);
                if list.is_empty() {
                    self.watchers.remove(name);
                }
            }
        }
    }

    /// Holds back the first two pending steps of every canary phase that has none yet.
    fn hold_canaries(&mut self, _now: Millis) {
        let mut hold = Vec::new();
        for plan in &self.plans {
            for phase in &plan.phases {
                if !phase.strategy.is_canary() {
                    continue;
                }
                if phase
                    .steps
                    .iter()
                    .any(|s| self.state_of(s).is_some_and(|st| st.flags.canary.is_some()))
                {
                    continue;
                }
                hold.extend(
                    phase
                        .steps
                        .iter()
                        .filter(|s| self.progress_status(s) == Status::Pending)
                        .take(2)
                        .map(|s| s.id.clone()),
                );
            }
        }
        for id in hold {
            self.flags_mut(&id).canary = Some(true);
        }
    }

    /// Releases the next held canary step of a phase; returns whether one was released.
    pub(crate) fn release_canary(&mut self, phase: &ElementId) -> bool {
        let Some(steps) = self
            .plans
            .iter()
            .flat_map(|p| p.phases.iter())
            .find(|p| &p.id == phase)
            .map(|p| p.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>())
        else {
            return false;
        };
        for id in steps {
            if let Some(st) = self.state_mut(&id)
                && st.flags.canary == Some(true)
            {
                let f = &mut st.flags;
                f.canary = Some(false);
                return true;
            }
        }
        false
    }

    /// Whether a phase still holds back a canary step.
    pub(crate) fn holds_canary(&self, phase: &Phase) -> bool {
        phase.steps.iter().any(|s| {
            self.state_of(s)
                .is_some_and(|st| st.flags.canary == Some(true))
        })
    }

    /// The flags of a plan, phase or step, made when missing.
    pub(crate) fn flags_mut(&mut self, id: &ElementId) -> &mut Flags {
        if let Some(&i) = self.slots.get(id) {
            return &mut self.steps[i as usize].flags;
        }
        self.flags.entry(id.clone()).or_default()
    }

    /// The flags of a plan, phase or step.
    fn flags_of(&self, id: &ElementId) -> Option<&Flags> {
        match self.state(id) {
            Some(s) => Some(&s.flags),
            None => self.flags.get(id),
        }
    }

    // ----- where a step's state lives --------------------------------------------------

    /// The state of a step of these plans, read at its slot.
    fn state_of(&self, step: &Step) -> Option<&StepState> {
        match self.steps.get(step.slot as usize) {
            Some(state) => {
                debug_assert_eq!(
                    self.slots.get(&step.id),
                    Some(&step.slot),
                    "step {} is not at its slot",
                    step.id
                );
                Some(state)
            }
            None => self.state(&step.id),
        }
    }

    /// The state of the step of that id.
    fn state(&self, id: &ElementId) -> Option<&StepState> {
        self.slots.get(id).map(|&i| &self.steps[i as usize])
    }

    fn state_mut(&mut self, id: &ElementId) -> Option<&mut StepState> {
        let i = *self.slots.get(id)?;
        self.steps.get_mut(i as usize)
    }

    fn progress_mut(&mut self, id: &ElementId) -> Option<&mut StepProgress> {
        self.state_mut(id).map(|s| &mut s.progress)
    }

    /// A step's own status (no back-off expiry, flags or display applied).
    fn progress_status(&self, step: &Step) -> Status {
        self.state_of(step)
            .map_or(Status::Pending, |s| s.progress.status())
    }

    pub(crate) fn reset_step(&mut self, id: &ElementId) {
        self.unwatch(id);
        let task_names: Vec<String> = self
            .step(id)
            .and_then(|(_, _, s)| s.work.launch().map(PodLaunch::task_names))
            .unwrap_or_default();
        for t in &task_names {
            self.backoff.clear(t);
        }
        self.set_status(id, Status::Pending);
        if let Some(st) = self.state_mut(id) {
            st.progress.tasks.clear();
            st.flags.interrupted = false;
            st.flags.errors.clear();
        }
    }

    pub(crate) fn force_step_complete(&mut self, id: &ElementId) {
        self.unwatch(id);
        self.set_status(id, Status::Complete);
    }

    pub(crate) fn set_step_parameters(&mut self, id: &ElementId, parameters: &StringMap) {
        if let Some(p) = self.progress_mut(id) {
            p.parameters = parameters.clone();
        }
    }

    /// Rebuilds the element-name index used by the history.
    /// Gives every step of the plans its slot, keeping the state of the steps that had one
    /// (a step that left the plans leaves its state behind), and indexes the names of plans
    /// and phases for the history.
    fn index(&mut self) {
        let mut old = std::mem::take(&mut self.steps);
        let old_slots = std::mem::take(&mut self.slots);
        self.slots.reserve(old_slots.len());
        let total: usize = self
            .plans
            .iter()
            .flat_map(|p| p.phases.iter())
            .map(|ph| ph.steps.len())
            .sum();
        self.steps.reserve_exact(total);
        self.names.clear();
        for (pi, shared) in self.plans.iter_mut().enumerate() {
            // A tree whose steps keep their slots is left as it is (not copied away from a
            // report that shares it).
            let first = u32::try_from(self.steps.len()).unwrap_or(UNPLACED);
            let placed = shared
                .steps()
                .zip(first..)
                .all(|((_, s), slot)| s.slot == slot);
            let p = shared.as_ref();
            self.names
                .insert(p.id.clone(), (p.name.clone(), p.name.clone()));
            for (hi, ph) in p.phases.iter().enumerate() {
                self.names
                    .insert(ph.id.clone(), (p.name.clone(), ph.name.clone()));
                for (si, s) in ph.steps.iter().enumerate() {
                    let mut state = old_slots
                        .get(&s.id)
                        .map(|&i| std::mem::take(&mut old[i as usize]))
                        .unwrap_or_default();
                    state.at = [pi, hi, si].map(|i| u32::try_from(i).unwrap_or(u32::MAX));
                    let slot = u32::try_from(self.steps.len()).unwrap_or(UNPLACED);
                    self.steps.push(state);
                    self.slots.insert(s.id.clone(), slot);
                }
            }
            if !placed {
                let p = Arc::make_mut(shared);
                for (s, slot) in p
                    .phases
                    .iter_mut()
                    .flat_map(|ph| ph.steps.iter_mut())
                    .zip(first..)
                {
                    s.slot = slot;
                }
            }
        }
        self.count();
    }

    /// Counts the COMPLETE and ERROR steps of every plan afresh.
    fn count(&mut self) {
        self.tally = vec![Tally::default(); self.plans.len()];
        for st in &self.steps {
            if let Some(t) = self.tally.get_mut(st.at[0] as usize) {
                t.steps += 1;
                t.add(st.progress.status(), 1);
            }
        }
    }

    /// Sets a step's own status, keeping its plan's tally.
    fn set_status(&mut self, id: &ElementId, status: Status) {
        let Some(&slot) = self.slots.get(id) else {
            return;
        };
        let Some(st) = self.steps.get_mut(slot as usize) else {
            return;
        };
        let before = st.progress.status();
        st.progress.status = Some(status);
        if let Some(t) = self.tally.get_mut(st.at[0] as usize) {
            t.add(before, -1);
            t.add(status, 1);
        }
    }

    /// Whether the plan's progress ([`Self::plan_progress`]) may be COMPLETE or ERROR.
    /// `false` is certain — some step is neither and nothing flags the plan with an error —
    /// and takes no walk over the steps.
    #[must_use]
    pub fn may_be_settled(&self, plan: &Plan) -> bool {
        let Some(i) = self.plans.iter().position(|p| std::ptr::eq(&**p, plan)) else {
            return true;
        };
        let t = self.tally[i];
        #[cfg(debug_assertions)]
        {
            let statuses: Vec<Status> =
                plan.steps().map(|(_, s)| self.progress_status(s)).collect();
            let count = |want: Status| statuses.iter().filter(|s| **s == want).count();
            debug_assert_eq!(
                (t.steps as usize, t.complete as usize, t.erred as usize),
                (
                    statuses.len(),
                    count(Status::Complete),
                    count(Status::Error)
                ),
                "the tally of plan {} is off",
                plan.name
            );
        }
        t.complete == t.steps
            || t.erred > 0
            || self
                .flags_of(&plan.id)
                .is_some_and(|f| !f.errors.is_empty())
            || plan
                .phases
                .iter()
                .any(|ph| self.flags_of(&ph.id).is_some_and(|f| !f.errors.is_empty()))
    }

    /// The plan and the step of a slot.
    fn step_at(&self, state: &StepState) -> Option<(&Plan, &Step)> {
        let [p, h, s] = state.at.map(|i| i as usize);
        let plan = self.plans.get(p)?;
        Some((plan, plan.phases.get(h)?.steps.get(s)?))
    }

    pub(crate) fn record(&mut self, id: &ElementId, now: Millis, what: String) {
        let names = match self.state(id).and_then(|st| self.step_at(st)) {
            Some((plan, step)) => Some((plan.name.clone(), step.name.clone())),
            None => self.names.get(id).cloned(),
        };
        let (plan, element) = names.unwrap_or_default();
        self.history.push_back(HistoryEntry {
            at: now,
            plan,
            element,
            what,
        });
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }

    /// Rebuilds the recovery plan's phases from the current failures. Phases for pods that
    /// still need the same relaunch keep their ids; completed and running phases stay until a
    /// new failure of the same pod replaces them.
    fn refresh_recovery(&mut self, tasks: &dyn TaskSource, ids: &mut dyn IdGenerator, now: Millis) {
        let Some(ri) = self.plans.iter().position(|p| p.name == RECOVERY) else {
            return;
        };
        let needs = recovery_needs(&self.spec, tasks, &self.in_plans, &self.backoff, now);
        if needs.is_empty() && self.plans[ri].phases.is_empty() {
            return;
        }
        // Launch steps of other plans that are in progress make their pods off limits.
        let busy: Vec<PodLaunch> = self
            .plans
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != ri)
            .flat_map(|(_, p)| p.steps())
            .filter(|(_, s)| {
                matches!(
                    self.progress_status(s),
                    Status::Prepared | Status::Starting | Status::Started
                )
            })
            .filter_map(|(_, s)| s.work.launch().cloned())
            .collect();
        let old: Vec<Phase> = self.plans[ri].phases.clone();
        let status_of = |set: &PlanSet, phase: &Phase| {
            phase
                .steps
                .first()
                .map_or(Status::Pending, |s| set.progress_status(s))
        };
        let same_instance =
            |a: &PodLaunch, b: &PodLaunch| a.pod_type == b.pod_type && a.index == b.index;
        let mut keep: Vec<bool> = vec![true; old.len()];
        let mut added: Vec<(Phase, RecoveryNeed)> = Vec::new();
        let mut needed: Vec<bool> = vec![false; old.len()];
        for need in needs {
            if busy.iter().any(|b| b.conflicts_with(&need.launch)) {
                continue;
            }
            let existing = old.iter().enumerate().rev().find(|(_, ph)| {
                ph.steps
                    .first()
                    .and_then(|s| s.work.launch())
                    .is_some_and(|l| same_instance(l, &need.launch))
            });
            if let Some((i, ph)) = existing {
                let launch = ph.steps.first().and_then(|s| s.work.launch());
                let status = status_of(self, ph);
                let running = matches!(
                    status,
                    Status::Prepared | Status::Starting | Status::Started
                );
                let escalated = need.launch.recovery == RecoveryType::Permanent
                    && launch.is_some_and(|l| l.recovery == RecoveryType::Transient);
                if running && !escalated {
                    needed[i] = true;
                    continue;
                }
                if !running && status != Status::Complete && launch == Some(&need.launch) {
                    needed[i] = true;
                    continue;
                }
                keep[i] = false;
            }
            added.push((new_recovery_phase(&need.launch, ids), need));
        }
        // Pending phases nobody needs any more go away; finished and running ones stay.
        for (i, ph) in old.iter().enumerate() {
            if keep[i] && !needed[i] {
                let status = status_of(self, ph);
                if matches!(status, Status::Pending | Status::Delayed) {
                    keep[i] = false;
                }
            }
        }
        if added.is_empty() && keep.iter().all(|k| *k) {
            return;
        }
        let mut phases = Vec::new();
        for (i, ph) in old.into_iter().enumerate() {
            if keep[i] {
                phases.push(ph);
            } else {
                // Its steps' state goes with the next indexing.
                for s in &ph.steps {
                    self.unwatch(&s.id);
                }
                self.flags.remove(&ph.id);
            }
        }
        let mut fresh = Vec::new();
        for (phase, need) in added {
            if let Some(step) = phase.steps.first() {
                fresh.push((step.id.clone(), need.delayed));
                self.history.push_back(HistoryEntry {
                    at: now,
                    plan: RECOVERY.to_owned(),
                    element: step.name.clone(),
                    what: format!("recovery needed: {}", need.launch.recovery.as_str()),
                });
            }
            phases.push(phase);
        }
        Arc::make_mut(&mut self.plans[ri]).phases = phases;
        self.index();
        for (id, delayed) in fresh {
            let status = if delayed {
                Status::Delayed
            } else {
                Status::Pending
            };
            self.set_status(&id, status);
        }
    }
}

fn new_recovery_phase(launch: &PodLaunch, ids: &mut dyn IdGenerator) -> Phase {
    let name = launch.step_name();
    Phase {
        id: new_id(ids),
        name: name.clone(),
        strategy: Strategy::Serial,
        steps: vec![Step::new(new_id(ids), name, Work::Launch(launch.clone()))],
    }
}

/// The progress of a launch step derived from the stored tasks (see [`PlanSet::new`]).
fn initial_progress(launch: &PodLaunch, target: &str, tasks: &dyn TaskSource) -> StepProgress {
    let mut progress = StepProgress::default();
    for name in launch.task_names() {
        let Some(t) = tasks.task(&name) else {
            return StepProgress::default();
        };
        if !t.launched() {
            return StepProgress::default();
        }
        let status = if t.permanently_failed() {
            Status::Complete
        } else {
            let goal = t.goal();
            let on_target = t.config_id() == Some(target) || goal == berth_spec::Goal::Once;
            match t.state() {
                Some(state) if on_target => match progress_of(state, goal, t.ready(), false) {
                    Some(s @ (Status::Complete | Status::Started | Status::Starting)) => s,
                    _ => Status::Pending,
                },
                _ => Status::Pending,
            }
        };
        if status == Status::Pending {
            return StepProgress::default();
        }
        progress.tasks.insert(
            name,
            TaskProgress {
                task_id: t.info.task_id.value.clone(),
                status,
            },
        );
    }
    progress.status = least_advanced(progress.tasks.values().map(|t| t.status));
    progress
}

/// A short list whose first item needs no allocation (most pod instances have one step at
/// work; a large deploy has tens of thousands of instances).
#[derive(Default)]
enum Few<T> {
    #[default]
    Empty,
    One(T),
    More(Vec<T>),
}

impl<T> Few<T> {
    fn push(&mut self, item: T) {
        *self = match std::mem::take(self) {
            Few::Empty => Few::One(item),
            Few::One(first) => Few::More(vec![first, item]),
            Few::More(mut all) => {
                all.push(item);
                Few::More(all)
            }
        };
    }

    fn iter(&self) -> std::slice::Iter<'_, T> {
        match self {
            Few::Empty => [].iter(),
            Few::One(item) => std::slice::from_ref(item).iter(),
            Few::More(all) => all.iter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(id: &str, status: Status) -> TaskProgress {
        TaskProgress {
            task_id: id.to_owned(),
            status,
        }
    }

    #[test]
    fn step_tasks_keep_names_sorted_and_one_entry_each() {
        let mut tasks: StepTasks = [
            ("node-0-server".to_owned(), progress("a", Status::Starting)),
            ("node-0-agent".to_owned(), progress("b", Status::Starting)),
            ("node-0-server".to_owned(), progress("c", Status::Started)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            tasks.keys().map(String::as_str).collect::<Vec<_>>(),
            ["node-0-agent", "node-0-server"]
        );
        assert_eq!(
            tasks.get("node-0-server"),
            Some(&progress("c", Status::Started))
        );
        assert_eq!(tasks.get("node-0-sidecar"), None);
        if let Some(p) = tasks.get_mut("node-0-agent") {
            p.status = Status::Complete;
        }
        tasks.insert("node-0-backup".to_owned(), progress("d", Status::Pending));
        assert_eq!(
            tasks.iter().map(|(n, p)| (n, p.status)).collect::<Vec<_>>(),
            [
                ("node-0-agent", Status::Complete),
                ("node-0-backup", Status::Pending),
                ("node-0-server", Status::Started),
            ]
        );
        assert_eq!(tasks.len(), 3);
        tasks.clear();
        assert!(tasks.is_empty());
    }
}
