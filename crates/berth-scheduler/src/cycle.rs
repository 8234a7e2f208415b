//! The offer cycle: from candidate steps and a batch of offers to one store transaction and
//! the calls that follow it.
//!
//! ```text
//! offers ──▶ not reconciled yet? decline (short) ──▶ done
//!        ──▶ candidates (plans in priority order, dirty assets, back-off)
//!              launch step: live tasks of the pod still running? kill them, PREPARED
//!                           else evaluate offers in order; the first that passes wins:
//!                           TaskInfos + STAGING statuses into the transaction, ACCEPT
//!                           queued, step STARTING; no offer fits: PREPARED
//!              kill / erase / unreserve / no-op steps of decommission and uninstall
//!        ──▶ unused offers: unexpected reservations DESTROYed + UNRESERVEd, the rest declined
//!        ──▶ commit (one transaction) ──▶ calls: accepts, kills, declines, suppress/revive
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use berth_cluster::Call;
use berth_mesos::{
    CheckInfo, Filters, Offer, Operation, TaskInfo, TaskState, TaskStatus, task_labels,
};
use berth_offer::{
    PodInstanceRequirement, PodMode, PodState, RecoveryType, ServiceContext, TaskPlacement,
    cleanup_operations, evaluate, naming,
};
use berth_plan::{Candidate, Millis, PodLaunch, Status, Work};
use berth_spec::ServiceSpec;
use berth_state::{GoalOverride, OverrideProgress, Persister};
use uuid::Uuid;

use crate::SchedulerError;
use crate::alike::Candidates;
use crate::core::{Core, OfferLogEntry, Phase};
use crate::orphans::{self, Orphan};
use crate::tasks::StoreTasks;

/// What became of a launch step in an offer cycle.
enum Launch {
    /// Its tasks were launched.
    Sent,
    /// No offer fitted (or its old tasks are being killed first): it waits.
    Waits,
    /// It cannot be launched (marked as an error).
    Failed,
}

/// What one cycle decided; its writes are staged in the store as they are decided.
struct Cycle {
    accepts: Vec<Call>,
    kills: Vec<Call>,
    /// Reservations to release later (replaced tasks), resource id → agent id.
    new_orphans: BTreeMap<String, String>,
    /// Steps launched: (step, [(task name, task id)]).
    launched: Vec<(berth_plan::ElementId, Vec<(String, berth_mesos::TaskId)>)>,
    /// Offers a launch step evaluated and found unfit: not worth keeping back for the next
    /// steps (alike ones would find them unfit too).
    refused: HashSet<berth_mesos::OfferId>,
}

/// How long apart two offers of an agent without an orphan that was not released yet must
/// be for it to count as gone (see `Core::orphans_gone`).
pub(crate) const ORPHAN_ABSENT_MS: Millis = 2_000;

impl<P: Persister> Core<P> {
    pub(crate) fn on_offers(
        &mut self,
        offers: Vec<Offer>,
        now: Millis,
    ) -> Result<Vec<Call>, SchedulerError> {
        if self.phase != Phase::Ready {
            self.counters.offers_declined += offers.len() as u64;
            return Ok(vec![Call::Decline {
                offer_ids: offers.into_iter().map(|o| o.id).collect(),
                filters: Filters {
                    refuse_seconds: self.options.decline_short_secs,
                },
            }]);
        }
        // Orphaned reservations their agent no longer offers are gone: stop waiting for
        // them (see `orphans_gone`).
        let mut orphans = self.orphans();
        let orphans_at_start = orphans.clone();
        let removed = self.removed_agents();
        orphans.retain(|_, o| !removed.contains(&o.agent));
        let gone = if orphans.is_empty() {
            self.orphans_absent.clear();
            HashSet::new()
        } else {
            self.orphans_gone(&mut orphans, &offers, now)
        };
        let mut candidates = match self.candidate_cache.take() {
            Some(cached) if !cached.is_due(now) => cached,
            _ => self.fresh_candidates(now),
        };
        let absent = if candidates.unreserving {
            self.unreserves_not_offered(&offers, now)
        } else {
            HashSet::new()
        };
        let mut remaining = offers;
        let mut cycle = Cycle {
            accepts: Vec::new(),
            kills: Vec::new(),
            new_orphans: BTreeMap::new(),
            launched: Vec::new(),
            refused: HashSet::new(),
        };
        // Whether the plans changed only by this cycle's launches and waits: then the same
        // candidates (those launched now marked as started) serve the next part of the
        // offers.
        let mut reusable = true;
        // Groups of alike steps whose first step found no fitting offer in this cycle.
        let mut refused = vec![false; candidates.groups];
        // Whether a candidate is left that may launch later.
        let mut launchable = false;
        let Candidates { list, group, .. } = &mut candidates;
        for (cand, group) in list.iter_mut().zip(group.iter()) {
            if !matches!(cand.status, Status::Pending | Status::Prepared) {
                continue;
            }
            match cand.work() {
                Work::Launch(_) if remaining.is_empty() || group.is_some_and(|g| refused[g]) => {
                    // Every offer of this cycle is taken, or refused an alike step: the step
                    // waits for the next ones.
                    if cand.status == Status::Pending {
                        self.plans.mark_prepared(cand.step_id(), now);
                        cand.status = Status::Prepared;
                    }
                }
                Work::Launch(launch) => {
                    let launch = launch.clone();
                    match self.launch_step(cand, &launch, &mut remaining, &mut cycle, now)? {
                        Launch::Sent => {
                            cand.status = Status::Starting;
                            // What is free and where instances are changed: judge afresh.
                            refused.fill(false);
                        }
                        Launch::Waits => {
                            cand.status = Status::Prepared;
                            if let Some(g) = *group {
                                refused[g] = true;
                                self.waits.spoke(g, cand.step_id());
                            }
                        }
                        Launch::Failed => reusable = false,
                    }
                }
                Work::Kill { task } => {
                    reusable = false;
                    self.kill_step(cand, task, &mut cycle, now)?;
                }
                Work::Erase { task } => {
                    reusable = false;
                    if let Some(info) = self.store.task_info(task) {
                        for (rid, agent) in resource_ids(info) {
                            cycle.new_orphans.insert(rid, agent);
                        }
                    }
                    let mut tx = self.store.transaction();
                    tx.delete_task(task);
                    self.store.stage(tx)?;
                    self.placement.remove_task(task);
                    self.plans.mark_complete(cand.step_id(), now);
                }
                Work::Unreserve { .. } | Work::Deregister => {
                    reusable = false;
                    self.plans.mark_started(cand.step_id(), now);
                }
                Work::Noop => {
                    reusable = false;
                    self.plans.mark_complete(cand.step_id(), now);
                }
            }
            launchable |= matches!(cand.work(), Work::Launch(_))
                && matches!(cand.status, Status::Pending | Status::Prepared);
        }
        if reusable {
            candidates.launchable = launchable;
            self.candidate_cache = Some(candidates);
        }

        // Reservations nobody expects any more are released from the offers left over.
        // Only offers that carry reservations need the set of expected ones (a scan of every
        // stored task): most leftover offers of a large deploy carry none.
        let expected = if remaining
            .iter()
            .any(|o| o.resources.iter().any(|r| r.resource_id().is_some()))
        {
            self.expected_resource_ids()
        } else {
            HashSet::new()
        };
        // A new orphan may have been released already (a replaced pod's reservations go as
        // unexpected ones before its relaunch): what is known of it stays.
        for (id, agent) in &cycle.new_orphans {
            orphans
                .entry(id.clone())
                .or_insert_with(|| Orphan::on(agent.clone()));
        }
        let mut released: HashSet<String> = HashSet::new();
        let role = self.plans.spec().role.clone();
        for offer in remaining {
            let ops = cleanup_operations(&offer, &role, &expected);
            if ops.is_empty() {
                if cycle.refused.contains(&offer.id) {
                    self.decline_later(offer, now);
                } else {
                    self.leave_unused(offer, now);
                }
                continue;
            }
            for op in &ops {
                if let Operation::Unreserve { unreserve } = op {
                    for r in &unreserve.resources {
                        if let Some(id) = r.resource_id() {
                            released.insert(id.to_owned());
                            if self.uninstall.is_some() || orphans.contains_key(id) {
                                // Remembered until the agent offers without it, so that an
                                // uninstall restarted before the release was confirmed
                                // still completes the step.
                                orphans.insert(
                                    id.to_owned(),
                                    Orphan {
                                        agent: offer.agent_id.value.clone(),
                                        released: true,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            tracing::info!(
                "releasing {} unexpected reservation operation(s) on {}",
                ops.len(),
                offer.hostname
            );
            self.counters.offers_cleaned += 1;
            cycle.accepts.push(Call::Accept {
                offer_ids: vec![offer.id],
                operations: ops,
                filters: Filters {
                    refuse_seconds: self.options.accept_refuse_secs,
                },
            });
        }
        // Orphans leave the list only once their agent offers without them (at the top of a
        // later cycle): a release decided here might never be sent if berth stops now.
        if orphans != orphans_at_start {
            let mut tx = self.store.transaction();
            orphans::stage(&mut tx, &orphans)?;
            self.store.stage(tx)?;
        }
        // Unreserve steps complete once their reservation was released (or, uninstalling,
        // once a release decided earlier shows as done: the agent offers without it).
        if self.uninstall.is_some() && !gone.is_empty() {
            self.note_released(&gone)?;
            released.extend(gone);
        }
        // Reservations on agents removed from the cluster went with them; those their agent
        // offers without are gone too.
        released.extend(self.released_by_removal());
        released.extend(absent);
        let unreserve_done: Vec<berth_plan::ElementId> = if released.is_empty() {
            Vec::new()
        } else {
            self.plans
                .plans()
                .iter()
                .flat_map(|p| p.steps())
                .filter(|(_, s)| matches!(&s.work, Work::Unreserve { resource_id } if released.contains(resource_id)))
                .map(|(_, s)| s.id.clone())
                .collect()
        };

        for (step, tasks) in &cycle.launched {
            self.plans.mark_launched(step, tasks, now);
        }
        for id in unreserve_done {
            self.plans.mark_complete(&id, now);
        }
        if self.uninstall.is_some() {
            self.uninstall_swept = released.is_empty() && self.only_deregister_left(now);
        }
        // Unused offers are declined in `end_batch`, once the batch knows whether the service
        // is idle (long refusal) or still has work (short refusal).
        self.batch_dirty = true;
        let mut calls = cycle.kills;
        calls.extend(cycle.accepts);
        Ok(calls)
    }

    /// Takes out of `orphans` those this batch shows gone, and returns them: an agent that
    /// offers without an orphan no longer holds it once its release was decided. One not
    /// released yet may be in use by an executor of the service: it is gone only when its
    /// agent offered without it, running none of the service's executors, twice at least
    /// [`ORPHAN_ABSENT_MS`] apart (reserved resources nobody uses are always offered; an
    /// executor that was exiting the first time has let them go by the second). An agent
    /// with an offer kept back is judged on none of its offers (that one may hold the
    /// orphan).
    fn orphans_gone(
        &mut self,
        orphans: &mut orphans::Orphans,
        offers: &[Offer],
        now: Millis,
    ) -> HashSet<String> {
        struct Seen<'a> {
            present: HashSet<&'a str>,
            executors: bool,
        }
        let held: HashSet<&str> = self
            .held
            .offers()
            .map(|(_, o)| o.agent_id.value.as_str())
            .collect();
        let mut agents: HashMap<&str, Seen> = HashMap::new();
        for offer in offers {
            let seen = agents
                .entry(offer.agent_id.value.as_str())
                .or_insert_with(|| Seen {
                    present: HashSet::new(),
                    executors: false,
                });
            seen.present
                .extend(offer.resources.iter().filter_map(|r| r.resource_id()));
            seen.executors |= !offer.executor_ids.is_empty();
        }
        let mut gone = HashSet::new();
        let absent = &mut self.orphans_absent;
        orphans.retain(|id, o| {
            let Some(seen) = agents.get(o.agent.as_str()) else {
                return true;
            };
            if held.contains(o.agent.as_str()) {
                return true;
            }
            if seen.present.contains(id.as_str()) {
                absent.remove(id);
                return true;
            }
            if !o.released {
                if seen.executors {
                    absent.remove(id);
                    return true;
                }
                let since = *absent.entry(id.clone()).or_insert(now);
                if now.saturating_sub(since) < ORPHAN_ABSENT_MS {
                    return true;
                }
            }
            absent.remove(id);
            gone.insert(id.clone());
            false
        });
        absent.retain(|id, _| orphans.contains_key(id));
        gone
    }

    /// Reservations that decommission steps still wait to release, of tasks no longer
    /// running, which their agent now offers without: never made (the launch was lost
    /// before it reached the cluster) or gone already. Nothing is left to release of them.
    /// (Had one still been in use, it would be released later as unexpected.)
    fn unreserves_not_offered(&self, offers: &[Offer], now: Millis) -> HashSet<String> {
        let pending: HashSet<&str> = self
            .plans
            .plans()
            .iter()
            .flat_map(|p| p.steps())
            .filter_map(|(_, s)| match &s.work {
                Work::Unreserve { resource_id }
                    if self.plans.step_status(s, now) != Status::Complete =>
                {
                    Some(resource_id.as_str())
                }
                _ => None,
            })
            .collect();
        if pending.is_empty() {
            return HashSet::new();
        }
        let waiting: Vec<(String, String)> = self
            .store
            .task_infos()
            .filter(|i| !self.is_live(i))
            .flat_map(resource_ids)
            .filter(|(id, _)| pending.contains(id.as_str()))
            .collect();
        let mut absent = HashSet::new();
        for offer in offers {
            let present: HashSet<&str> = offer
                .resources
                .iter()
                .filter_map(|r| r.resource_id())
                .collect();
            for (id, agent) in &waiting {
                if *agent == offer.agent_id.value && !present.contains(id.as_str()) {
                    absent.insert(id.clone());
                }
            }
        }
        absent
    }

    /// Resource ids that must stay reserved: those of stored TaskInfos (this cycle's staged
    /// writes included), except tasks that are permanently failed or being decommissioned.
    pub(crate) fn expected_resource_ids(&self) -> HashSet<String> {
        if self.uninstall.is_some() {
            // Uninstalling: every reservation of the role goes.
            return HashSet::new();
        }
        let decommissioning = self.decommissioning_tasks();
        let mut expected = HashSet::new();
        for info in self.store.task_infos() {
            // A decommission releases a pod's reservations only once its kill step marked
            // the pod (so that, should the pod come back, it starts afresh).
            let released_by_decommission = decommissioning.contains(&info.name)
                && matches!(
                    self.store.goal_override(&info.name),
                    Some((GoalOverride::Decommissioned, _))
                );
            if released_by_decommission
                || info.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true")
            {
                continue;
            }
            for (rid, _) in resource_ids(info) {
                expected.insert(rid);
            }
        }
        expected
    }

    fn kill_step(
        &mut self,
        cand: &Candidate,
        task: &str,
        cycle: &mut Cycle,
        now: Millis,
    ) -> Result<(), SchedulerError> {
        let Some(info) = self.store.task_info(task).cloned() else {
            self.plans.mark_complete(cand.step_id(), now);
            return Ok(());
        };
        let live = self.is_live(&info);
        self.mark_decommissioning(&info, live)?;
        if !live {
            self.plans.mark_complete(cand.step_id(), now);
            return Ok(());
        }
        cycle
            .kills
            .extend(self.kill(&info.task_id.value, Some(info.agent_id.clone()), now));
        self.plans.mark_started(cand.step_id(), now);
        Ok(())
    }

    /// Marks the pod of a task whose decommission starts (its kill step): from here on the
    /// pod's reservations — its executor's, shared by its tasks, too — may be released, so
    /// every task of the pod is permanently failed (should the pod come back into the
    /// configuration before all of it is erased, it starts afresh) and carries the
    /// `DECOMMISSIONED` override (which lets its reservations go, see
    /// [`Core::expected_resource_ids`]).
    pub(crate) fn mark_decommissioning(
        &mut self,
        info: &TaskInfo,
        live: bool,
    ) -> Result<(), SchedulerError> {
        let same_pod = |i: &&TaskInfo| {
            i.labels.get(task_labels::TASK_TYPE) == info.labels.get(task_labels::TASK_TYPE)
                && i.labels.get(task_labels::INDEX) == info.labels.get(task_labels::INDEX)
        };
        let mut tx = self.store.transaction();
        let pod: Vec<TaskInfo> = self.store.task_infos().filter(same_pod).cloned().collect();
        for mut marked in pod {
            if marked.labels.get(task_labels::PERMANENTLY_FAILED) != Some("true") {
                marked.labels.set(task_labels::PERMANENTLY_FAILED, "true");
                tx.put_task_info(marked.clone());
            }
            let progress = if marked.name != info.name || live {
                OverrideProgress::InProgress
            } else {
                OverrideProgress::Complete
            };
            if marked.name == info.name
                || !matches!(
                    self.store.goal_override(&marked.name),
                    Some((GoalOverride::Decommissioned, _))
                )
            {
                tx.set_goal_override(&marked.name, Some((GoalOverride::Decommissioned, progress)));
            }
        }
        self.store.stage(tx)?;
        Ok(())
    }

    /// The spec a launch uses: its own configuration (recovery) or the target.
    /// The candidate steps of the plans now, grouped (see [`crate::alike`]); the wait book
    /// learns the groups.
    fn fresh_candidates(&mut self, now: Millis) -> Candidates {
        let (list, covering) = {
            let tasks = StoreTasks(&self.store);
            self.plans.candidates_covering(&tasks, &mut *self.ids, now)
        };
        let candidates = Candidates::new(list, |launch| {
            // Nothing stored under the instance's task names (`<pod>-<index>-<task>`): one
            // range of the sorted task table. (A task of another pod type whose name starts
            // alike only makes the step judged on its own.)
            let prefix = naming::task_name(&launch.pod_type, launch.index, "");
            self.store.task_infos_with_prefix(&prefix).next().is_none()
        });
        let (members, sizes) = candidates.members();
        self.waits.set_groups(members, sizes);
        let mut candidates = candidates;
        candidates.covering = covering;
        candidates.unreserving = self
            .plans
            .plans()
            .iter()
            .flat_map(|p| p.steps())
            .any(|(_, s)| matches!(s.work, Work::Unreserve { .. }));
        candidates
    }

    fn launch_spec(&self, launch: &PodLaunch) -> Arc<ServiceSpec> {
        launch
            .config_id
            .as_deref()
            .and_then(|id| Uuid::parse_str(id).ok())
            .filter(|id| *id != self.target_id)
            .and_then(|id| self.store.config(id).ok().flatten().cloned())
            .map_or_else(|| Arc::clone(&self.target), Arc::new)
    }

    fn launch_step(
        &mut self,
        cand: &Candidate,
        launch: &PodLaunch,
        offers: &mut Vec<Offer>,
        cycle: &mut Cycle,
        now: Millis,
    ) -> Result<Launch, SchedulerError> {
        let spec = self.launch_spec(launch);
        let config_id = launch
            .config_id
            .clone()
            .filter(|c| spec.name == self.plans.spec().name && Uuid::parse_str(c).is_ok())
            .unwrap_or_else(|| self.target_id.to_string());
        let Some(pod) = spec.pod(&launch.pod_type) else {
            self.plans.mark_error(
                cand.step_id(),
                format!("pod type '{}' is not in the configuration", launch.pod_type),
                now,
            );
            return Ok(Launch::Failed);
        };
        let instance: Vec<String> = pod
            .task_specs
            .iter()
            .map(|t| naming::task_name(&pod.pod_type, launch.index, &t.name))
            .collect();

        // Tasks that must be down before the launch: the ones being launched and those sharing
        // their resource sets; for a replacement, the whole pod.
        let permanent = launch.recovery == berth_plan::RecoveryType::Permanent;
        let sets: HashSet<&str> = launch
            .tasks
            .iter()
            .filter_map(|t| pod.task(t))
            .map(|t| t.resource_set.id.as_str())
            .collect();
        let must_be_down: Vec<String> = pod
            .task_specs
            .iter()
            .filter(|t| permanent || sets.contains(t.resource_set.id.as_str()))
            .map(|t| naming::task_name(&pod.pod_type, launch.index, &t.name))
            .collect();
        let live: Vec<TaskInfo> = must_be_down
            .iter()
            .filter_map(|n| self.store.task_info(n))
            .filter(|i| self.is_live(i))
            .cloned()
            .collect();
        if !live.is_empty() {
            for info in live {
                tracing::info!(
                    "{}: killing {} before relaunching it",
                    cand.step_name(),
                    info.task_id
                );
                cycle.kills.extend(self.kill(
                    &info.task_id.value,
                    Some(info.agent_id.clone()),
                    now,
                ));
            }
            self.plans.mark_prepared(cand.step_id(), now);
            return Ok(Launch::Waits);
        }

        let mut infos: Vec<TaskInfo> = instance
            .iter()
            .filter_map(|n| self.store.task_info(n).cloned())
            .collect();
        // Reservations that were never confirmed by the cluster do not exist: start afresh.
        if !infos.is_empty() && infos.iter().all(|i| self.is_unconfirmed(&i.name)) {
            tracing::info!(
                "{}: the cluster never saw the previous launch; using fresh reservations",
                cand.step_name()
            );
            infos.clear();
        }
        // Launched tasks without a status yet count as TASK_STAGING.
        let statuses: Vec<(String, TaskStatus)> = infos
            .iter()
            .filter(|i| !i.task_id.value.is_empty())
            .map(|i| {
                let status = self
                    .store
                    .task_status(&i.name)
                    .filter(|s| s.task_id == i.task_id)
                    .cloned()
                    .unwrap_or_else(|| staging(i));
                (i.name.clone(), status)
            })
            .collect();
        let recovery = match launch.recovery {
            berth_plan::RecoveryType::None => RecoveryType::None,
            berth_plan::RecoveryType::Transient => RecoveryType::Transient,
            berth_plan::RecoveryType::Permanent => RecoveryType::Permanent,
        };
        let req = PodInstanceRequirement {
            pod,
            index: launch.index,
            tasks_to_launch: launch.tasks.clone(),
            recovery,
            parameters: &cand.parameters,
        };
        let framework_id = self.store.framework_id().cloned().unwrap_or_default();
        let ctx = ServiceContext {
            service: &spec,
            framework_id: &framework_id,
            target_config_id: &config_id,
            api_host: &self.options.api_host,
            api_port: self.options.api_port,
            executor_resources: self.options.executor_resources,
            local_region: None,
        };
        let pod_state = PodState {
            task_infos: &infos,
            statuses: &statuses,
        };
        // The PASS/FAIL tree is rendered when it is logged or kept for the debug endpoint.
        let explain = self.options.offer_log_limit > 0 || tracing::enabled!(tracing::Level::INFO);
        let mut chosen = None;
        let mut evaluated = Vec::new();
        self.waits.evaluated(cand.step_id(), now);
        for (i, offer) in offers.iter().enumerate() {
            self.offer_number += 1;
            let eval = evaluate(
                &req,
                &ctx,
                &pod_state,
                &self.placement,
                offer,
                &mut *self.ids,
            );
            if explain {
                let text = eval.render(self.offer_number as usize, &offer.id, cand.step_name());
                tracing::info!("{text}");
                evaluated.push((
                    offer.id.value.clone(),
                    offer.hostname.clone(),
                    crate::waiting::failure_key(&eval.outcome),
                    text,
                ));
            }
            if eval.passed() {
                chosen = Some((i, eval));
                break;
            }
            self.waits
                .declined(cand.step_id(), now, &eval.outcome, &offer.hostname);
            if self.options.offer_hold > 0 {
                cycle.refused.insert(offer.id.clone());
            }
        }
        for (offer, hostname, failure, text) in evaluated {
            self.log_offer(now, cand.step_name(), offer, hostname, failure, &text);
        }
        let Some((index, mut eval)) = chosen else {
            self.plans.mark_prepared(cand.step_id(), now);
            return Ok(Launch::Waits);
        };
        let offer = offers.remove(index);
        // What the agent has free now, for update previews: the offer less what the launch
        // takes (it offers the rest again only later, or not while offers are suppressed).
        self.note_remainder(&offer, &eval.operations, now);
        self.waits.clear(cand.step_id());

        // Paused tasks run the pause command instead of their own.
        let paused: HashSet<String> = eval
            .launched()
            .iter()
            .filter(|i| {
                matches!(
                    self.store.goal_override(&i.name),
                    Some((GoalOverride::Paused, _))
                )
            })
            .map(|i| i.name.clone())
            .collect();
        if !paused.is_empty() {
            let cmd = self.options.pause_command.clone();
            for info in &mut eval.task_infos {
                if paused.contains(&info.name) && !info.task_id.value.is_empty() {
                    pause(info, &cmd);
                }
            }
            for op in &mut eval.operations {
                if let Operation::LaunchGroup { launch_group } = op {
                    for info in &mut launch_group.task_group.tasks {
                        if paused.contains(&info.name) {
                            pause(info, &cmd);
                        }
                    }
                }
            }
        }

        // A replacement leaves the old reservations behind: remember them for release.
        if eval.mode == PodMode::New {
            let kept: HashSet<String> = eval
                .task_infos
                .iter()
                .flat_map(|i| resource_ids(i).into_iter().map(|(id, _)| id))
                .collect();
            for old in &infos {
                for (rid, agent) in resource_ids(old) {
                    if !kept.contains(&rid) {
                        cycle.new_orphans.insert(rid, agent);
                    }
                }
            }
        }

        let mut launched_ids = Vec::new();
        let mut tx = self.store.transaction();
        for info in std::mem::take(&mut eval.task_infos) {
            if let Ok(p) = TaskPlacement::from_task_info(&info) {
                self.placement.add_task(p);
            }
            // New reservations: not to be relied on until the cluster confirms the launch.
            if eval.mode == PodMode::New {
                tx.set_task_unconfirmed(&info.name, true);
            }
            tx.put_task_info(info);
        }
        // A launched TaskInfo without a status for its task id reads as TASK_STAGING: no
        // status is written at launch.
        for info in eval.launched() {
            let name = &info.name;
            match self.store.goal_override(name) {
                Some((GoalOverride::Paused, _)) => {
                    tx.set_goal_override(
                        name,
                        Some((GoalOverride::Paused, OverrideProgress::InProgress)),
                    );
                }
                Some((GoalOverride::None, _)) => {
                    tx.set_goal_override(
                        name,
                        Some((GoalOverride::None, OverrideProgress::InProgress)),
                    );
                }
                _ => {}
            }
            launched_ids.push((name.clone(), info.task_id.clone()));
        }
        self.store.stage(tx)?;
        self.counters.offers_accepted += 1;
        self.counters.tasks_launched += launched_ids.len() as u64;
        cycle.launched.push((cand.step_id().clone(), launched_ids));
        cycle.accepts.push(Call::Accept {
            offer_ids: vec![offer.id],
            operations: eval.operations,
            filters: Filters {
                refuse_seconds: self.options.accept_refuse_secs,
            },
        });
        Ok(Launch::Sent)
    }

    fn log_offer(
        &mut self,
        now: Millis,
        step: &str,
        offer: String,
        hostname: String,
        failure: Option<String>,
        text: &str,
    ) {
        if self.options.offer_log_limit == 0 {
            return;
        }
        self.offer_log.push_back(OfferLogEntry {
            timestamp: now,
            pod_instance_name: step.to_owned(),
            outcome: if failure.is_none() { "pass" } else { "fail" },
            explanation: text.lines().map(str::to_owned).collect(),
            offer,
            hostname,
            failure,
        });
        while self.offer_log.len() > self.options.offer_log_limit {
            self.offer_log.pop_front();
        }
    }
}

/// The status a stored launch has before the cluster reports on it.
fn staging(info: &TaskInfo) -> TaskStatus {
    TaskStatus {
        task_id: info.task_id.clone(),
        state: TaskState::TaskStaging,
        message: None,
        source: None,
        reason: None,
        agent_id: Some(info.agent_id.clone()),
        executor_id: info.executor.as_ref().map(|e| e.executor_id.clone()),
        timestamp: 0.0,
        uuid: None,
        healthy: None,
        check_status: None,
    }
}

/// Every `resource_id` of a TaskInfo (task and executor resources) with the agent id.
pub(crate) fn resource_ids(info: &TaskInfo) -> Vec<(String, String)> {
    let executor = info.executor.iter().flat_map(|e| e.resources.iter());
    info.resources
        .iter()
        .chain(executor)
        .filter_map(|r| r.resource_id())
        .map(|id| (id.to_owned(), info.agent_id.value.clone()))
        .collect()
}

/// Turns a TaskInfo into its paused form: the pause command, no health check, and a
/// readiness check that never passes (so the pod shows as paused, not ready).
fn pause(info: &mut TaskInfo, command: &str) {
    let cmd = std::sync::Arc::make_mut(info.command.get_or_insert_with(Default::default));
    cmd.value = command.to_owned();
    cmd.shell = true;
    info.health_check = None;
    info.check = Some(std::sync::Arc::new(CheckInfo::shell(
        "exit 1", 0.0, 5.0, 10.0,
    )));
}
