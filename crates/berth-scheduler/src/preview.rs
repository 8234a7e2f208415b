//! The preview of an update (`POST /v1/update?dryRun=true`): what it would do, pod by pod,
//! without writing anything.
//!
//! ```text
//!  candidate ──▶ validators (errors) · spec diff
//!            ──▶ per pod instance (stored tasks ∪ the candidate's counts):
//!                  keep               same pod spec (as the update relabels it)
//!                  restart in place   spec changed: the fields, on its agent
//!                  launch             new instance: evaluated against the agents' last
//!                                     offers, first fit (offers taken as the cycle would)
//!                  decommission       index beyond the new count
//!                  blocked            the validators refuse the update, or no agent fits
//!            ──▶ order: the deploy plan the candidate would generate
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_mesos::{Offer, Operation, TaskInfo, task_labels};
use berth_offer::{
    PodInstanceRequirement, PodState, RecoveryType, SequentialIds, ServiceContext, evaluate,
};
use berth_plan::{Millis, PlanContext, PlanSet, Work};
use berth_spec::{ServiceSpec, pod_spec_changes, pod_specs_equivalent_for_update, spec_diff};
use berth_state::Persister;
use serde::Serialize;
use serde_json::json;

use crate::SchedulerError;
use crate::api::Reply;
use crate::core::{Core, LAST_OFFER_REFRESH_MS, LAST_OFFERS};
use crate::tasks::StoreTasks;

/// What the update would do to one pod instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PodPreview {
    /// `hello-0`.
    pub pod: String,
    /// `keep`, `restart in place`, `launch`, `decommission` or `blocked`.
    pub action: String,
    /// The agent (host) it runs on, or would be launched on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The fields that changed (restart in place).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Why it is blocked, or how the agent was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl<P: Persister> Core<P> {
    /// The preview of making `candidate` the target; nothing is written.
    ///
    /// # Errors
    /// JSON encoding failures only.
    pub(crate) fn preview_update(
        &self,
        candidate: &ServiceSpec,
        now: Millis,
    ) -> Result<Reply, SchedulerError> {
        let mut errors = self.update_errors(candidate);
        if self.uninstall.is_some() {
            errors.push("the service is being uninstalled: no update can start".to_owned());
        }
        let mut pods = self.pod_actions(candidate, now);
        if !errors.is_empty() {
            for p in pods.iter_mut().filter(|p| p.action != "keep") {
                p.reason = Some(format!("the update is refused: {}", errors.join("; ")));
                p.action = "blocked".to_owned();
            }
        }
        let order = self.rollout_order(candidate, &pods, now);
        let body = json!({
            "dryRun": true,
            "valid": errors.is_empty(),
            "errors": errors,
            "diff": spec_diff(&self.target, candidate),
            "pods": pods,
            "order": order,
        });
        Ok(Reply::json(body))
    }

    /// Every pod instance of the stored tasks and of the candidate, with its action.
    fn pod_actions(&self, candidate: &ServiceSpec, now: Millis) -> Vec<PodPreview> {
        // Stored pod instances: (type, index) → their task infos.
        let mut stored: BTreeMap<(String, u32), Vec<&TaskInfo>> = BTreeMap::new();
        for info in self.store.task_infos() {
            let (Some(pod_type), Some(index)) = (
                info.labels.get(task_labels::TASK_TYPE),
                info.labels
                    .get(task_labels::INDEX)
                    .and_then(|i| i.parse::<u32>().ok()),
            ) else {
                continue;
            };
            if info.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true") {
                continue;
            }
            stored
                .entry((pod_type.to_owned(), index))
                .or_default()
                .push(info);
        }
        // The last offer declined from each agent, and those kept back (an agent's resources
        // held are not in the declined ones).
        let held = self.held.offers();
        let mut offers: Vec<&(Millis, berth_mesos::Offer)> = self
            .last_offers
            .iter()
            .filter(|(agent, _)| !held.clone().any(|(_, o)| o.agent_id.value == **agent))
            .map(|(_, seen)| seen)
            .chain(held.clone())
            .collect();
        offers.sort_by(|a, b| a.1.hostname.cmp(&b.1.hostname));
        let mut taken: BTreeSet<String> = BTreeSet::new();
        let mut verdicts: HashMap<&str, HashMap<Option<uuid::Uuid>, Option<Vec<String>>>> =
            HashMap::new();
        let mut out = Vec::new();
        let types: BTreeSet<&str> = candidate
            .pod_specs
            .iter()
            .map(|p| p.pod_type.as_str())
            .chain(stored.keys().map(|(t, _)| t.as_str()))
            .collect();
        // In the candidate's order of pod types, then the ones it dropped.
        let mut ordered: Vec<&str> = candidate
            .pod_specs
            .iter()
            .map(|p| p.pod_type.as_str())
            .collect();
        ordered.extend(types.iter().filter(|t| candidate.pod(t).is_none()));
        for pod_type in ordered {
            let new_pod = candidate.pod(pod_type);
            let new_count = new_pod.map_or(0, |p| p.count);
            let old_max = stored
                .keys()
                .filter(|(t, _)| t == pod_type)
                .map(|(_, i)| i + 1)
                .max()
                .unwrap_or(0);
            for index in 0..new_count.max(old_max) {
                let name = format!("{pod_type}-{index}");
                let infos = stored.get(&(pod_type.to_owned(), index));
                let preview = match (infos, new_pod) {
                    (Some(infos), Some(new_pod)) if index < new_count => {
                        self.existing(&name, infos, new_pod, verdicts.entry(pod_type).or_default())
                    }
                    (Some(infos), _) => PodPreview {
                        pod: name,
                        action: "decommission".to_owned(),
                        agent: hostname(infos),
                        changes: Vec::new(),
                        reason: None,
                    },
                    (None, Some(new_pod)) => self.placed(
                        candidate,
                        (new_pod, index, &name),
                        (&offers, &mut taken),
                        now,
                    ),
                    (None, None) => continue,
                };
                out.push(preview);
            }
        }
        out
    }

    /// A stored pod instance the candidate keeps: unchanged, or restarted in place. What a
    /// configuration's pod spec changes is worked out once per configuration (`verdicts`:
    /// `None` keeps, `Some(changes)` restarts).
    fn existing(
        &self,
        name: &str,
        infos: &[&TaskInfo],
        new_pod: &berth_spec::PodSpec,
        verdicts: &mut HashMap<Option<uuid::Uuid>, Option<Vec<String>>>,
    ) -> PodPreview {
        // The configuration its running tasks have: the target once any was launched with it
        // (tasks that do not run in a deploy, such as a backup, keep an older one).
        let mut labels = infos
            .iter()
            .filter_map(|i| i.labels.get(task_labels::TARGET_CONFIGURATION))
            .filter_map(|c| uuid::Uuid::parse_str(c).ok());
        let first = labels.next();
        let config = if first == Some(self.target_id) || labels.any(|c| c == self.target_id) {
            None
        } else {
            first
        };
        let verdict = verdicts.entry(config).or_insert_with(|| {
            let old_spec = config.and_then(|c| self.store.config(c).ok().flatten());
            let old_pod = old_spec
                .and_then(|s| s.pod(&new_pod.pod_type))
                .or_else(|| self.target.pod(&new_pod.pod_type));
            match old_pod {
                Some(old) if pod_specs_equivalent_for_update(old, new_pod) => None,
                Some(old) => Some(pod_spec_changes(old, new_pod)),
                None => Some(vec!["the pod type is new".to_owned()]),
            }
        });
        PodPreview {
            pod: name.to_owned(),
            action: if verdict.is_some() {
                "restart in place"
            } else {
                "keep"
            }
            .to_owned(),
            agent: hostname(infos),
            changes: verdict.clone().unwrap_or_default(),
            reason: None,
        }
    }

    /// A new pod instance, placed against the agents' last offers (first fit).
    fn placed(
        &self,
        candidate: &ServiceSpec,
        (pod, index, name): (&berth_spec::PodSpec, u32, &str),
        (offers, taken): (&[&(Millis, berth_mesos::Offer)], &mut BTreeSet<String>),
        now: Millis,
    ) -> PodPreview {
        let launch = |agent: Option<String>, reason: String| PodPreview {
            pod: name.to_owned(),
            action: "launch".to_owned(),
            agent,
            changes: Vec::new(),
            reason: Some(reason),
        };
        let available: Vec<&&(Millis, berth_mesos::Offer)> = offers
            .iter()
            .filter(|(_, o)| !taken.contains(&o.agent_id.value))
            .collect();
        if available.is_empty() {
            return launch(
                None,
                "no agent's free resources are known now: placed when offers come".to_owned(),
            );
        }
        let parameters = berth_spec::StringMap::default();
        let req = PodInstanceRequirement {
            pod,
            index,
            tasks_to_launch: pod
                .task_specs
                .iter()
                .filter(|t| t.goal == berth_spec::Goal::Running)
                .map(|t| t.name.clone())
                .collect(),
            recovery: RecoveryType::None,
            parameters: &parameters,
        };
        let framework_id = self.store.framework_id().cloned().unwrap_or_default();
        let ctx = ServiceContext {
            service: candidate,
            framework_id: &framework_id,
            target_config_id: "preview",
            api_host: &self.options.api_host,
            api_port: self.options.api_port,
            executor_resources: self.options.executor_resources,
            local_region: None,
        };
        let state = PodState {
            task_infos: &[],
            statuses: &[],
        };
        let mut ids = SequentialIds::default();
        let mut misses: HashMap<String, usize> = HashMap::new();
        for (seen, offer) in available.iter().map(|e| (e.0, &e.1)) {
            let eval = evaluate(&req, &ctx, &state, &self.placement, offer, &mut ids);
            if eval.passed() {
                taken.insert(offer.agent_id.value.clone());
                return launch(
                    Some(offer.hostname.clone()),
                    format!(
                        "fits the resources {} offered {} s ago",
                        offer.hostname,
                        now.saturating_sub(seen) / 1000
                    ),
                );
            }
            let key = crate::waiting::failure_key(&eval.outcome).unwrap_or_else(|| "?".to_owned());
            *misses.entry(key).or_default() += 1;
        }
        let placement_misses: usize = misses
            .iter()
            .filter(|(k, _)| k.starts_with("placement"))
            .map(|(_, n)| n)
            .sum();
        let mut reasons: Vec<String> = misses
            .iter()
            .map(|(k, n)| format!("{k} ({n} agent(s))"))
            .collect();
        reasons.sort();
        let rule = pod
            .placement_rule
            .as_ref()
            .map(|r| {
                let source = match r {
                    berth_spec::PlacementRule::Constraints { source, .. }
                    | berth_spec::PlacementRule::Invalid { source, .. } => source.clone(),
                };
                format!(
                    " placement '{source}': {} of {} agent(s) qualify;",
                    available.len() - placement_misses,
                    available.len()
                )
            })
            .unwrap_or_default();
        PodPreview {
            pod: name.to_owned(),
            action: "blocked".to_owned(),
            agent: None,
            changes: Vec::new(),
            reason: Some(format!(
                "none of the {} agent(s) whose free resources were last seen fits it:{rule} {}",
                available.len(),
                reasons.join(", ")
            )),
        }
    }

    /// The pod instances the candidate's deploy plan would work on, in its order.
    fn rollout_order(
        &self,
        candidate: &ServiceSpec,
        pods: &[PodPreview],
        now: Millis,
    ) -> Vec<String> {
        let acting: BTreeSet<&str> = pods
            .iter()
            .filter(|p| p.action != "keep")
            .map(|p| p.pod.as_str())
            .collect();
        let deployed_before = matches!(
            self.store.last_completed_update_type(),
            Ok(Some(
                berth_state::UpdateType::Deploy | berth_state::UpdateType::Update
            ))
        );
        let mut ids = SequentialIds::default();
        let plans = {
            let tasks = StoreTasks(&self.store);
            PlanSet::new(
                &PlanContext {
                    spec: candidate,
                    target_config_id: "preview",
                    tasks: &tasks,
                    deployed_before,
                    backoff: self.options.backoff,
                    config_errors: Vec::new(),
                },
                &mut ids,
                now,
            )
        };
        let mut order: Vec<String> = Vec::new();
        let Some(deploy) = plans.plan(berth_plan::generate::DEPLOY) else {
            return order;
        };
        for (_, step) in deploy.steps() {
            let instance = match &step.work {
                Work::Launch(l) => l.instance(),
                Work::Kill { task } | Work::Erase { task } => self
                    .store
                    .task_info(task)
                    .and_then(|i| {
                        Some(format!(
                            "{}-{}",
                            i.labels.get(task_labels::TASK_TYPE)?,
                            i.labels.get(task_labels::INDEX)?
                        ))
                    })
                    .unwrap_or_else(|| task.clone()),
                _ => continue,
            };
            if acting.contains(instance.as_str()) && !order.contains(&instance) {
                order.push(instance);
            }
        }
        // Instances the plan leaves out (decommissions of other shapes): last.
        for p in pods.iter().filter(|p| p.action != "keep") {
            if !order.contains(&p.pod) {
                order.push(p.pod.clone());
            }
        }
        order
    }
}

/// The host a stored pod instance runs on.
fn hostname(infos: &[&TaskInfo]) -> Option<String> {
    infos
        .iter()
        .find_map(|i| i.labels.get(task_labels::OFFER_HOSTNAME))
        .map(str::to_owned)
}

/// The last offer seen from each agent, which an update preview places new pods against.
impl<P: Persister> Core<P> {
    /// Keeps what `offer` leaves free once `operations` are accepted on it as its agent's
    /// last offer (where the agent is kept, or there is room).
    pub(crate) fn note_remainder(&mut self, offer: &Offer, operations: &[Operation], now: Millis) {
        let agent = &offer.agent_id.value;
        if self.last_offers.contains_key(agent) || self.last_offers.len() < LAST_OFFERS {
            let left = berth_offer::remainder(offer, operations);
            self.last_offers.insert(agent.clone(), (now, left));
        }
    }

    /// Declines `offer` at the end of the batch; kept as its agent's last offer for update
    /// previews, refreshed at most every few seconds per agent (offers come far more often
    /// than that during a deploy).
    pub(crate) fn decline_later(&mut self, offer: Offer, now: Millis) {
        let agent = &offer.agent_id.value;
        let known = self.last_offers.get(agent).map(|(seen, _)| *seen);
        let due = known.is_none_or(|seen| now.saturating_sub(seen) >= LAST_OFFER_REFRESH_MS);
        if due && (known.is_some() || self.last_offers.len() < LAST_OFFERS) {
            self.pending_declines.push(offer.id.clone());
            self.last_offers.insert(agent.clone(), (now, offer));
        } else {
            self.pending_declines.push(offer.id);
        }
    }
}
