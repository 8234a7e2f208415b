//! How plans look to operators: the JSON of `GET /v1/plans/{plan}` and the CLI tree.
//!
//! ```text
//! deploy (serial strategy) (COMPLETE)
//! ├─ hello (serial strategy) (COMPLETE)
//! │  └─ hello-0:[server] (COMPLETE)
//! └─ world (serial strategy) (COMPLETE)
//!    ├─ world-0:[server] (COMPLETE)
//!    └─ world-1:[server] (COMPLETE)
//! ```

mod json;

pub use json::JsonCursor;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backoff::Millis;
use crate::element::{Phase, Plan, RecoveryType, Step, Work};
use crate::set::{FAILURES_FOR_ERROR, PlanSet, TaskFailures};
use crate::status::Status;
use crate::task::TaskSource;

/// A step as the API shows it (keys in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    /// Step id.
    pub id: String,
    /// Display status.
    pub status: Status,
    /// Step name.
    pub name: String,
    /// Human summary.
    pub message: String,
    /// Why the step waits for offers, when it was evaluated and has not launched (beyond
    /// the reference's shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<WaitSummary>,
}

/// Why a step waits: what the offers it was last evaluated against said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitSummary {
    /// When offers were last evaluated for the step (ms since the epoch).
    pub last_evaluated: Millis,
    /// Offers declined for the step in the last minute.
    pub declined_last_minute: u64,
    /// Those declines grouped by what refused them (stage, and rule or resource), most
    /// frequent first.
    pub reasons: Vec<WaitReason>,
    /// The offer that came closest (fewest failed stages) in the last minute, and why it
    /// failed, e.g. `cpus: requested 8.0, offered 3.8 on agent-b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest_miss: Option<String>,
    /// Set when the step was not evaluated itself: which step's evaluations stand for it
    /// (steps with the same requirements are judged alike; one evaluates each offer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_by: Option<String>,
}

/// One group of declines of a [`WaitSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitReason {
    /// What refused (`resources: cpus`, `placement: hostname:UNIQUE`).
    pub reason: String,
    /// How many offers.
    pub count: u64,
    /// From how many agents.
    pub agents: u64,
}

impl WaitSummary {
    /// One line for people: `12 offers declined in the last minute (resources: cpus ×9 on 3
    /// agents, …); closest: …`.
    #[must_use]
    pub fn line(&self) -> String {
        let groups: Vec<String> = self
            .reasons
            .iter()
            .map(|r| {
                format!(
                    "{} ×{} on {} agent{}",
                    r.reason,
                    r.count,
                    r.agents,
                    if r.agents == 1 { "" } else { "s" }
                )
            })
            .collect();
        let mut line = format!(
            "{} offer{} declined in the last minute",
            self.declined_last_minute,
            if self.declined_last_minute == 1 {
                ""
            } else {
                "s"
            }
        );
        if !groups.is_empty() {
            line.push_str(&format!(" ({})", groups.join(", ")));
        }
        if let Some(closest) = &self.closest_miss {
            line.push_str(&format!("; closest: {closest}"));
        }
        if let Some(sampled) = &self.sampled_by {
            line.push_str(&format!("; {sampled}"));
        }
        line
    }
}

/// A phase as the API shows it (keys in this order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseView {
    /// Phase id.
    pub id: String,
    /// Phase name.
    pub name: String,
    /// Its steps.
    pub steps: Vec<StepView>,
    /// Strategy name.
    pub strategy: String,
    /// Aggregate status.
    pub status: Status,
}

/// A plan as the API shows it (keys in this order; the plan has no name or id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    /// Its phases.
    pub phases: Vec<PhaseView>,
    /// Strategy name.
    pub strategy: String,
    /// Errors (configuration errors on `deploy`).
    pub errors: Vec<String>,
    /// Aggregate status.
    pub status: Status,
}

impl PlanView {
    /// The HTTP status of `GET /v1/plans/{plan}`: 200 when COMPLETE, 417 on errors, else 202.
    #[must_use]
    pub fn http_code(&self) -> u16 {
        http_code(&self.errors, self.status)
    }
}

/// A plan as it stands at one instant, taken on the scheduler's loop at little cost: the
/// plan tree is shared, each step adds its two statuses. [`PlanReport::view`] makes the API's
/// [`PlanView`] of it (a string or three per step) wherever the caller likes — off the loop.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanReport {
    plan: Arc<Plan>,
    /// Per step, in plan order: its status and its display status.
    steps: Vec<(Status, Status)>,
    /// Per phase: its status.
    phases: Vec<Status>,
    /// What steps with failing tasks add to their message: (step number, text).
    failures: Vec<(usize, String)>,
    /// Why steps wait: (step number, summary).
    waiting: Vec<(usize, Arc<WaitSummary>)>,
    errors: Vec<String>,
    status: Status,
}

impl PlanReport {
    /// The plan's aggregate status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// The HTTP status of `GET /v1/plans/{plan}` (see [`PlanView::http_code`]).
    #[must_use]
    pub fn http_code(&self) -> u16 {
        http_code(&self.errors, self.status)
    }

    /// Every step with its number (plan order) and display status.
    pub fn steps(&self) -> impl Iterator<Item = (usize, &Step, Status)> + '_ {
        self.plan
            .steps()
            .zip(&self.steps)
            .enumerate()
            .map(|(n, ((_, step), (_, display)))| (n, step, *display))
    }

    /// Says why step number `n` waits (kept in step order; a second summary replaces the
    /// first).
    pub fn set_waiting(&mut self, n: usize, summary: Arc<WaitSummary>) {
        let at = self.waiting.partition_point(|(i, _)| *i < n);
        match self.waiting.get_mut(at) {
            Some((i, old)) if *i == n => *old = summary,
            _ => self.waiting.insert(at, (n, summary)),
        }
    }

    /// The API view: ids, names and each step's line.
    #[must_use]
    pub fn view(&self) -> PlanView {
        let mut n = 0;
        let phases = self
            .plan
            .phases
            .iter()
            .zip(&self.phases)
            .map(|(phase, status)| PhaseView {
                id: phase.id.0.clone(),
                name: phase.name.clone(),
                steps: phase
                    .steps
                    .iter()
                    .map(|step| {
                        let line = self.line(step, n);
                        let waiting = Self::of(&self.waiting, n).map(|w| WaitSummary::clone(w));
                        n += 1;
                        StepView {
                            id: step.id.0.clone(),
                            status: line.display,
                            name: step.name.clone(),
                            message: line.to_string(),
                            waiting,
                        }
                    })
                    .collect(),
                strategy: phase.strategy.name().to_owned(),
                status: *status,
            })
            .collect();
        PlanView {
            phases,
            strategy: self.plan.strategy.name().to_owned(),
            errors: self.errors.clone(),
            status: self.status,
        }
    }

    /// The line of `step`, number `n` in the plan.
    fn line<'a>(&'a self, step: &'a Step, n: usize) -> StepLine<'a> {
        let (status, display) = self
            .steps
            .get(n)
            .copied()
            .unwrap_or((Status::Pending, Status::Pending));
        StepLine {
            step,
            status,
            display,
            failures: Self::of(&self.failures, n).map(String::as_str),
        }
    }
}

/// 200 when COMPLETE, 417 on errors, else 202.
fn http_code(errors: &[String], status: Status) -> u16 {
    if !errors.is_empty() || status == Status::Error {
        417
    } else if status == Status::Complete {
        200
    } else {
        202
    }
}

/// A step's line in its plan: its kind, name, id and status, its recovery type, and what
/// its failing tasks add. Written straight into the JSON of a plan (no string per step).
struct StepLine<'a> {
    step: &'a Step,
    status: Status,
    display: Status,
    failures: Option<&'a str>,
}

impl StepLine<'_> {
    /// Hands the line's parts, in order, to `part` until it fails (the one definition of a
    /// step's message: formatted by `Display`, escaped into JSON by the `json` module).
    fn parts<E>(&self, part: &mut impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let step = self.step;
        for p in [
            step.work.kind(),
            ": ",
            &step.name,
            " [",
            &step.id.0,
            "] with status: ",
            self.status.as_str(),
        ] {
            part(p)?;
        }
        if self.display != self.status {
            for p in [" (display:", self.display.as_str(), ")"] {
                part(p)?;
            }
        }
        if let Work::Launch(l) = &step.work
            && l.recovery != RecoveryType::None
        {
            part(" RecoveryType: ")?;
            part(l.recovery.as_str())?;
        }
        part(self.failures.unwrap_or_default())
    }
}

impl std::fmt::Display for StepLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.parts(&mut |p| f.write_str(p))
    }
}

impl PlanReport {
    /// Step number `n`'s entry in a list sorted by step number.
    fn of<T>(list: &[(usize, T)], n: usize) -> Option<&T> {
        list.binary_search_by_key(&n, |(i, _)| *i)
            .ok()
            .map(|i| &list[i].1)
    }
}

/// The JSON of a report is that of its view, written without making the view.
impl Serialize for PlanReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut plan = serializer.serialize_struct("PlanView", 4)?;
        plan.serialize_field("phases", &PhasesOf(self))?;
        plan.serialize_field("strategy", self.plan.strategy.name())?;
        plan.serialize_field("errors", &self.errors)?;
        plan.serialize_field("status", &self.status)?;
        plan.end()
    }
}

struct PhasesOf<'a>(&'a PlanReport);

impl Serialize for PhasesOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let report = self.0;
        let mut seq = serializer.serialize_seq(Some(report.plan.phases.len()))?;
        let mut first = 0;
        for (phase, status) in report.plan.phases.iter().zip(&report.phases) {
            seq.serialize_element(&PhaseOf {
                report,
                phase,
                status: *status,
                first,
            })?;
            first += phase.steps.len();
        }
        seq.end()
    }
}

struct PhaseOf<'a> {
    report: &'a PlanReport,
    phase: &'a Phase,
    status: Status,
    /// The number of its first step in the plan.
    first: usize,
}

impl Serialize for PhaseOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut phase = serializer.serialize_struct("PhaseView", 5)?;
        phase.serialize_field("id", &self.phase.id.0)?;
        phase.serialize_field("name", &self.phase.name)?;
        phase.serialize_field("steps", &StepsOf(self))?;
        phase.serialize_field("strategy", self.phase.strategy.name())?;
        phase.serialize_field("status", &self.status)?;
        phase.end()
    }
}

struct StepsOf<'a>(&'a PhaseOf<'a>);

impl Serialize for StepsOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        let PhaseOf {
            report,
            phase,
            first,
            ..
        } = self.0;
        let mut seq = serializer.serialize_seq(Some(phase.steps.len()))?;
        for (k, step) in phase.steps.iter().enumerate() {
            let n = first + k;
            seq.serialize_element(&StepOf {
                line: report.line(step, n),
                waiting: PlanReport::of(&report.waiting, n).map(|w| &**w),
            })?;
        }
        seq.end()
    }
}

struct StepOf<'a> {
    line: StepLine<'a>,
    waiting: Option<&'a WaitSummary>,
}

impl Serialize for StepOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let step = self.line.step;
        let mut out = serializer.serialize_struct("StepView", 5)?;
        out.serialize_field("id", &step.id.0)?;
        out.serialize_field("status", &self.line.display)?;
        out.serialize_field("name", &step.name)?;
        out.serialize_field("message", &Collected(&self.line))?;
        if let Some(waiting) = self.waiting {
            out.serialize_field("waiting", waiting)?;
        } else {
            out.skip_field("waiting")?;
        }
        out.end()
    }
}

/// A [`Display`](std::fmt::Display) value serialized as a string, written as it is formatted.
struct Collected<'a, T>(&'a T);

impl<T: std::fmt::Display> Serialize for Collected<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl PlanSet {
    /// The API view of a plan.
    #[must_use]
    pub fn view(&self, plan: &Plan, tasks: &dyn TaskSource, now: Millis) -> PlanView {
        match self.shared_plan(&plan.name) {
            Some(shared) if std::ptr::eq(&**shared, plan) => self.report(shared, tasks, now),
            _ => self.report(&Arc::new(plan.clone()), tasks, now),
        }
        .view()
    }

    /// A report of the plan of that name (see [`PlanReport`]).
    #[must_use]
    pub fn report_of(&self, name: &str, tasks: &dyn TaskSource, now: Millis) -> Option<PlanReport> {
        self.shared_plan(name)
            .map(|plan| self.report(plan, tasks, now))
    }

    fn report(&self, plan: &Arc<Plan>, tasks: &dyn TaskSource, now: Millis) -> PlanReport {
        // Each step's status is worked out once; the phases' and the plan's come from them.
        let mut errors = self.plan_errors(plan).to_vec();
        let mut steps = Vec::with_capacity(plan.phases.iter().map(|p| p.steps.len()).sum());
        let mut phases = Vec::with_capacity(plan.phases.len());
        let mut phase_children = Vec::with_capacity(plan.phases.len());
        let mut step_children = Vec::new();
        let mut failures = Vec::new();
        let any_failures = self.any_task_failures();
        for phase in &plan.phases {
            step_children.clear();
            for step in &phase.steps {
                let status = self.step_status(step, now);
                let display = Self::display_of(step, status, tasks);
                step_children.push(self.step_child(step, display));
                if any_failures && status != Status::Complete {
                    let text = self.failure_text(phase, step, &mut errors);
                    if !text.is_empty() {
                        failures.push((steps.len(), text));
                    }
                }
                steps.push((status, display));
            }
            let status = self.phase_status_of(phase, &step_children);
            phase_children.push(self.phase_child(phase, status));
            phases.push(status);
        }
        PlanReport {
            plan: Arc::clone(plan),
            steps,
            phases,
            failures,
            waiting: Vec::new(),
            errors,
            status: self.plan_status_of(plan, &phase_children),
        }
    }

    /// What a step's failing tasks add to its line (their repeated failures are also added
    /// to `errors`).
    fn failure_text(&self, phase: &Phase, step: &Step, errors: &mut Vec<String>) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (task, f) in self.step_failures(step) {
            let _ = write!(
                text,
                "; task {task} failed {} time{} in a row, last: {}",
                f.count,
                if f.count == 1 { "" } else { "s" },
                f.last
            );
            if f.count >= FAILURES_FOR_ERROR {
                errors.push(format!(
                    "Step '{}' of phase '{}': task {task} failed {} times in a row; the \
                     last failure: {}",
                    step.name, phase.name, f.count, f.last
                ));
            }
        }
        text
    }
}

impl PlanSet {
    /// The failing tasks of a launch step, with their failures in a row.
    fn step_failures<'a>(&'a self, step: &'a Step) -> Vec<(String, &'a TaskFailures)> {
        let Work::Launch(l) = &step.work else {
            return Vec::new();
        };
        l.task_names()
            .into_iter()
            .filter_map(|t| {
                let f = self.task_failures(&t)?;
                Some((t, f))
            })
            .collect()
    }
}

/// The CLI tree of a plan view named `name`, followed by its errors, if any.
#[must_use]
pub fn render_tree(name: &str, plan: &PlanView) -> String {
    let mut out = format!("{name} ({} strategy) ({})\n", plan.strategy, plan.status);
    let phase_count = plan.phases.len();
    for (pi, phase) in plan.phases.iter().enumerate() {
        let last_phase = pi + 1 == phase_count;
        let (branch, indent) = if last_phase {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        out.push_str(&format!(
            "{branch}{} ({} strategy) ({})\n",
            phase.name, phase.strategy, phase.status
        ));
        let step_count = phase.steps.len();
        for (si, step) in phase.steps.iter().enumerate() {
            let (step_branch, step_indent) = if si + 1 == step_count {
                ("└─ ", "   ")
            } else {
                ("├─ ", "│  ")
            };
            out.push_str(&format!(
                "{indent}{step_branch}{} ({})\n",
                step.name, step.status
            ));
            if let Some(waiting) = &step.waiting {
                out.push_str(&format!(
                    "{indent}{step_indent}   waiting: {}\n",
                    waiting.line()
                ));
            }
        }
    }
    if !plan.errors.is_empty() {
        out.push_str("\nErrors:\n");
        for e in &plan.errors {
            out.push_str(&format!("- {e}\n"));
        }
    }
    out
}
