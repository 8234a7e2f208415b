//! Operator commands on plans, as data edits: start, stop, interrupt, continue,
//! forceComplete, restart.
//!
//! Each command is recorded in the plan history with its time. Results map onto the HTTP
//! API: [`CommandOutcome::Done`] → 200 with the message, [`CommandOutcome::AlreadyDone`] →
//! 208, [`CommandError::NotFound`] → 404, [`CommandError::BadRequest`] → 400.

use berth_spec::StringMap;

use crate::backoff::Millis;
use crate::element::{ElementId, Phase, Plan, Step};
use crate::set::PlanSet;
use crate::status::Status;
use crate::task::TaskSource;

/// A plan command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanCommand {
    /// Run the plan with these parameters (restarting it first if it is complete).
    Start(StringMap),
    /// Interrupt the plan and reset all its steps to PENDING.
    Stop,
    /// Interrupt the plan or a phase (running tasks keep running).
    Interrupt,
    /// Continue the plan or a phase; on a canary phase, release the next canary step.
    Continue,
    /// Mark steps COMPLETE.
    ForceComplete,
    /// Set steps back to PENDING (their tasks are killed and relaunched).
    Restart,
}

impl PlanCommand {
    /// The wire name (`forceComplete`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            PlanCommand::Start(_) => "start",
            PlanCommand::Stop => "stop",
            PlanCommand::Interrupt => "interrupt",
            PlanCommand::Continue => "continue",
            PlanCommand::ForceComplete => "forceComplete",
            PlanCommand::Restart => "restart",
        }
    }
}

/// Which element a command is aimed at; phase and step are names or ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandTarget {
    /// Plan name.
    pub plan: String,
    /// Phase name or id.
    pub phase: Option<String>,
    /// Step name or id (needs a phase).
    pub step: Option<String>,
}

/// A command that was carried out or had nothing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Done; the message for the caller.
    Done(String),
    /// Nothing to do: already in that state, or complete.
    AlreadyDone,
}

/// A command that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Unknown plan, phase or step (`Plan x not found`).
    #[error("{0}")]
    NotFound(String),
    /// Bad arguments (`Missing phase`, an invalid parameter name).
    #[error("{0}")]
    BadRequest(String),
}

/// Whether `name` is a valid environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
#[must_use]
pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn null_or(s: Option<&String>) -> String {
    s.cloned().unwrap_or_else(|| "null".to_owned())
}

impl PlanSet {
    /// Carries out a command.
    pub fn execute(
        &mut self,
        command: &PlanCommand,
        target: &CommandTarget,
        tasks: &dyn TaskSource,
        now: Millis,
    ) -> Result<CommandOutcome, CommandError> {
        let plan = self
            .plan(&target.plan)
            .ok_or_else(|| CommandError::NotFound(format!("Plan {} not found", target.plan)))?
            .clone();
        if target.step.is_some() && target.phase.is_none() {
            return Err(CommandError::BadRequest("Missing phase".to_owned()));
        }
        let phase = match &target.phase {
            Some(p) => Some(find_phase(&plan, p)?),
            None => None,
        };
        let step = match (&target.step, phase) {
            (Some(s), Some(ph)) => Some(find_step(ph, s)?),
            _ => None,
        };
        let outcome = match command {
            PlanCommand::Start(params) => self.start(&plan, params, tasks, now)?,
            PlanCommand::Stop => self.stop(&plan),
            PlanCommand::Interrupt => self.interrupt(&plan, phase, tasks, now),
            PlanCommand::Continue => self.continue_(&plan, phase, tasks, now),
            PlanCommand::ForceComplete => {
                let steps = target_steps(&plan, phase, step);
                if steps
                    .iter()
                    .all(|s| self.step_status(s, now) == Status::Complete)
                {
                    CommandOutcome::AlreadyDone
                } else {
                    for s in &steps {
                        self.force_step_complete(&s.id);
                    }
                    CommandOutcome::Done(format!(
                        "Received cmd: forceComplete for Plan: {}, Phase: {}, Step: {}",
                        plan.name,
                        null_or(target.phase.as_ref()),
                        null_or(target.step.as_ref())
                    ))
                }
            }
            PlanCommand::Restart => {
                let steps = target_steps(&plan, phase, step);
                let all_pending = steps.iter().all(|s| {
                    self.step_status(s, now) == Status::Pending && !self.is_interrupted(&s.id)
                });
                if all_pending && !self.is_interrupted(&plan.id) {
                    CommandOutcome::AlreadyDone
                } else {
                    for s in &steps {
                        self.reset_step(&s.id);
                    }
                    self.flags_mut(&plan.id).interrupted = false;
                    if let Some(ph) = phase {
                        self.flags_mut(&ph.id).interrupted = false;
                    }
                    CommandOutcome::Done(format!(
                        "Received cmd: restart for Plan: {}, Phase: {}, Step: {}",
                        plan.name,
                        null_or(target.phase.as_ref()),
                        null_or(target.step.as_ref())
                    ))
                }
            }
        };
        if let CommandOutcome::Done(message) = &outcome {
            let id = step
                .map(|s| s.id.clone())
                .or_else(|| phase.map(|p| p.id.clone()))
                .unwrap_or_else(|| plan.id.clone());
            self.record(
                &id,
                now,
                format!("operator: {}", message.trim_start_matches("Received cmd: ")),
            );
        }
        Ok(outcome)
    }

    fn start(
        &mut self,
        plan: &Plan,
        params: &StringMap,
        tasks: &dyn TaskSource,
        now: Millis,
    ) -> Result<CommandOutcome, CommandError> {
        if let Some(bad) = params.keys().find(|k| !is_env_name(k)) {
            return Err(CommandError::BadRequest(format!(
                "Couldn't parse parameters: {bad} is not a valid environment variable name"
            )));
        }
        if self.plan_status(plan, tasks, now) == Status::Complete {
            for (_, s) in plan.steps() {
                self.reset_step(&s.id);
            }
        }
        for (_, s) in plan.steps() {
            self.set_step_parameters(&s.id, params);
        }
        self.flags_mut(&plan.id).interrupted = false;
        let rendered: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Ok(CommandOutcome::Done(format!(
            "Received cmd: start {} with parameters: {{{}}}",
            plan.name,
            rendered.join(", ")
        )))
    }

    fn stop(&mut self, plan: &Plan) -> CommandOutcome {
        for (_, s) in plan.steps() {
            self.reset_step(&s.id);
        }
        self.flags_mut(&plan.id).interrupted = true;
        CommandOutcome::Done("Received cmd: stop".to_owned())
    }

    fn interrupt(
        &mut self,
        plan: &Plan,
        phase: Option<&Phase>,
        tasks: &dyn TaskSource,
        now: Millis,
    ) -> CommandOutcome {
        let (id, complete) = match phase {
            Some(ph) => (
                ph.id.clone(),
                self.phase_status(ph, tasks, now) == Status::Complete,
            ),
            None => (
                plan.id.clone(),
                self.plan_status(plan, tasks, now) == Status::Complete,
            ),
        };
        if complete || self.is_interrupted(&id) {
            return CommandOutcome::AlreadyDone;
        }
        self.flags_mut(&id).interrupted = true;
        CommandOutcome::Done("Received cmd: interrupt".to_owned())
    }

    fn continue_(
        &mut self,
        plan: &Plan,
        phase: Option<&Phase>,
        tasks: &dyn TaskSource,
        now: Millis,
    ) -> CommandOutcome {
        match phase {
            Some(ph) => {
                let interrupted = self.is_interrupted(&ph.id);
                let held = self.holds_canary(ph);
                if !interrupted && !held {
                    return CommandOutcome::AlreadyDone;
                }
                self.flags_mut(&ph.id).interrupted = false;
                if !interrupted && held {
                    self.release_canary(&ph.id);
                }
                CommandOutcome::Done("Received cmd: continue".to_owned())
            }
            None => {
                let status = self.plan_status(plan, tasks, now);
                if !self.is_interrupted(&plan.id)
                    && (status == Status::Complete || status.is_running())
                {
                    return CommandOutcome::AlreadyDone;
                }
                self.flags_mut(&plan.id).interrupted = false;
                CommandOutcome::Done("Received cmd: continue".to_owned())
            }
        }
    }
}

fn find_phase<'a>(plan: &'a Plan, key: &str) -> Result<&'a Phase, CommandError> {
    plan.phases
        .iter()
        .find(|p| p.id.as_str() == key)
        .or_else(|| plan.phases.iter().find(|p| p.name == key))
        .ok_or_else(|| CommandError::NotFound(format!("Phase {key} not found")))
}

fn find_step<'a>(phase: &'a Phase, key: &str) -> Result<&'a Step, CommandError> {
    if let Some(s) = phase.steps.iter().find(|s| s.id.as_str() == key) {
        return Ok(s);
    }
    let mut matching = phase.steps.iter().filter(|s| s.name == key);
    match (matching.next(), matching.next()) {
        (Some(s), None) => Ok(s),
        (Some(_), Some(_)) => Err(CommandError::BadRequest(format!(
            "Step {key} is ambiguous in phase {}: use its id",
            phase.name
        ))),
        (None, _) => Err(CommandError::NotFound(format!("Step {key} not found"))),
    }
}

fn target_steps<'a>(
    plan: &'a Plan,
    phase: Option<&'a Phase>,
    step: Option<&'a Step>,
) -> Vec<&'a Step> {
    match (phase, step) {
        (_, Some(s)) => vec![s],
        (Some(ph), None) => ph.steps.iter().collect(),
        (None, None) => plan.steps().map(|(_, s)| s).collect(),
    }
}

/// An element id, for callers that hold one.
#[must_use]
pub fn id_of(s: &str) -> ElementId {
    ElementId(s.to_owned())
}
