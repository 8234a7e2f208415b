//! Uninstall: the scheduler's last job for a service.
//!
//! ```text
//! POST /v1/uninstall, `berth run --uninstall`, or a stored `uninstalling` property
//!   ──▶ store `Properties/uninstalling` (irreversible)
//!   ──▶ plans replaced by the uninstall plan `deploy`:
//!         kill-tasks ─┐
//!         unreserve-resources-<host>… (every offered reservation of the role is destroyed
//!                      and unreserved; steps complete as their ids are released)
//!         deregister-service ◀── all of the above COMPLETE
//!   ──▶ the runner tears the framework down, then [`Core::finish_uninstall`] wipes the
//!       state tree; the plan reads COMPLETE
//! ```
//!
//! A restart in the middle carries on from the stored tasks: the plan is rebuilt from what
//! is left. If the framework is already gone when the scheduler subscribes (it crashed
//! between the teardown and the wipe), the wipe alone remains to be done.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use berth_cluster::Call;
use berth_plan::{Millis, PlanSet, Status, Work, uninstall_plan};
use berth_state::Persister;
use berth_state::layout::TASKS;

use crate::SchedulerError;
use crate::core::Core;
use crate::tasks::StoreTasks;

/// Property listing the reservations an uninstall saw released (JSON array of resource ids).
pub const RELEASED_PROPERTY: &str = "uninstall-released";

/// How far an uninstall has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uninstall {
    /// The uninstall plan is running.
    Running,
    /// The framework was torn down and the state wiped.
    Done,
}

impl<P: Persister> Core<P> {
    /// Whether this service is being (or was) uninstalled.
    #[must_use]
    pub fn uninstall_state(&self) -> Option<Uninstall> {
        self.uninstall
    }

    /// Starts the uninstall: stores the `uninstalling` property and replaces the plans with
    /// the uninstall plan. Calling it again does nothing.
    ///
    /// # Errors
    /// Store failures (then nothing changed).
    pub fn start_uninstall(&mut self, now: Millis) -> Result<Vec<Call>, SchedulerError> {
        if self.uninstall.is_some() {
            return Ok(Vec::new());
        }
        let mut tx = self.store.transaction();
        tx.set_uninstalling();
        self.store.stage(tx)?;
        self.enter_uninstall(now);
        self.batch_dirty = true;
        Ok(self.offer_interest(now))
    }

    /// Switches to the uninstall plan, built from the stored tasks and left-over reservations;
    /// releases confirmed by an earlier incarnation are complete already.
    pub(crate) fn enter_uninstall(&mut self, now: Millis) {
        let orphan_agents: BTreeMap<String, String> = self
            .orphans()
            .into_iter()
            .map(|(id, o)| (id, o.agent))
            .collect();
        let plan = {
            let tasks = StoreTasks(&self.store);
            uninstall_plan(&tasks, &orphan_agents, &mut *self.ids)
        };
        let steps = plan.steps().count();
        let released = self.released();
        let done: Vec<_> = plan
            .steps()
            .filter(|(_, s)| matches!(&s.work, Work::Unreserve { resource_id } if released.contains(resource_id)))
            .map(|(_, s)| s.id.clone())
            .collect();
        self.plans = PlanSet::uninstall(&self.target, &self.target_id.to_string(), plan);
        for id in done {
            self.plans.mark_complete(&id, now);
        }
        self.uninstall = Some(Uninstall::Running);
        tracing::warn!(
            "uninstalling service {}: the plan `deploy` now kills every task, releases every \
             reservation and removes the service's state ({steps} steps)",
            self.plans.spec().name
        );
    }

    /// Reservations this uninstall saw released (their agent offered without them).
    fn released(&self) -> BTreeSet<String> {
        self.store
            .property(RELEASED_PROPERTY)
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    /// Records released reservations, so that a restarted uninstall does not wait for them.
    pub(crate) fn note_released(&mut self, ids: &HashSet<String>) -> Result<(), SchedulerError> {
        let mut released = self.released();
        let before = released.len();
        released.extend(ids.iter().cloned());
        if released.len() != before {
            let mut tx = self.store.transaction();
            tx.set_property(RELEASED_PROPERTY, serde_json::to_vec(&released)?);
            self.store.stage(tx)?;
        }
        Ok(())
    }

    /// Whether the runner should now tear the framework down and call
    /// [`Core::finish_uninstall`]: every step but `deregister` is complete, and an offer
    /// cycle since then found nothing of the role left to release (reservations the store
    /// did not know about, e.g. for `berth janitor` over a wiped store, go too).
    #[must_use]
    pub fn deregister_due(&self, now: Millis) -> bool {
        self.uninstall == Some(Uninstall::Running)
            && self.uninstall_swept
            && self.only_deregister_left(now)
    }

    pub(crate) fn only_deregister_left(&self, now: Millis) -> bool {
        self.plans.plans().iter().all(|plan| {
            plan.steps().all(|(_, step)| {
                matches!(step.work, Work::Deregister)
                    || self.plans.step_status(step, now) == Status::Complete
            })
        })
    }

    /// Wipes the service's state (the framework was torn down) and completes the plan (every
    /// step: nothing of the service is left).
    ///
    /// The tree goes in steps, biggest first, so that a crash in between leaves the
    /// `uninstalling` property and the framework id for the next start to finish the job.
    ///
    /// # Errors
    /// Store failures (retry later: the wipe is idempotent).
    pub fn finish_uninstall(&mut self, now: Millis) -> Result<(), SchedulerError> {
        if self.uninstall == Some(Uninstall::Done) {
            return Ok(());
        }
        self.store.flush()?;
        let tasks = format!("{}/{TASKS}", self.store.root());
        self.store.persister().delete(&tasks)?;
        self.store.delete_all()?;
        let steps: Vec<_> = self
            .plans
            .plans()
            .iter()
            .flat_map(|p| p.steps())
            .map(|(_, s)| s.id.clone())
            .collect();
        for id in steps {
            self.plans.mark_complete(&id, now);
        }
        self.uninstall = Some(Uninstall::Done);
        self.kills.clear();
        tracing::info!(
            "service {} uninstalled: framework torn down, reservations released, state removed",
            self.plans.spec().name
        );
        Ok(())
    }
}
