//! Answers to the HTTP API's [`Request`]s, in the reference's JSON shapes.

use std::collections::BTreeMap;
use std::collections::HashMap;

use berth_cluster::Call;
use berth_mesos::TaskInfo;
use berth_plan::{CommandError, CommandOutcome, Millis, Status, Work};
use berth_state::{GoalOverride, OverrideProgress, Persister};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::SchedulerError;
use crate::api::{Body, Reply, Request, proto_json};
use crate::core::Core;
use crate::pods::instance_of;
use crate::tasks::StoreTasks;

/// A read of the stored tree, answered from the persister alone (see [`Core::state_read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRead {
    /// The nodes at and below a path, with their sizes.
    Tree(String),
    /// One node's value.
    Node(String),
}

/// Files stored through `PUT /v1/state/files/{name}` are the properties `file-<name>`.
const FILE_PROPERTY_PREFIX: &str = "file-";
/// The largest file `PUT /v1/state/files/{name}` stores.
const MAX_STATE_FILE: usize = 1024;

impl StateRead {
    /// The reply: 404 for a missing node, 400 for an invalid path, 503 when the store cannot
    /// be reached.
    #[must_use]
    pub fn answer(&self, persister: &dyn Persister) -> Reply {
        let failed = |e: berth_state::StateError| {
            if e.is_retryable() {
                Reply::text(503, e.to_string())
            } else {
                Reply::text(400, e.to_string())
            }
        };
        match self {
            StateRead::Tree(path) => match crate::state_tree::tree(persister, path) {
                Ok(v) if v["nodes"].as_array().is_some_and(Vec::is_empty) => {
                    Reply::text(404, format!("Node {path} not found"))
                }
                Ok(v) => Reply::json(v),
                Err(e) => failed(e),
            },
            // A task record is stored as protobuf: people get its JSON (the stored bytes
            // when they cannot be decoded, so that a damaged record can still be looked at).
            StateRead::Node(path) => match persister.get(path) {
                Ok(Some(bytes)) => Reply {
                    status: 200,
                    body: Body::Raw(match berth_state::readable_record(path, &bytes) {
                        Ok(Some(json)) => json,
                        Ok(None) | Err(_) => bytes,
                    }),
                },
                Ok(None) => Reply::text(404, format!("Node {path} not found")),
                Err(e) => failed(e),
            },
        }
    }
}

impl<P: Persister> Core<P> {
    /// Answers an API request; commands may also produce calls (kills).
    ///
    /// # Errors
    /// Store failures while carrying out a command.
    pub fn request(
        &mut self,
        req: Request,
        now: Millis,
    ) -> Result<(Reply, Vec<Call>), SchedulerError> {
        if req.is_change() {
            self.candidate_cache = None;
        }
        let mut calls = Vec::new();
        if self.uninstall == Some(crate::Uninstall::Done)
            && req.is_change()
            && !matches!(req, Request::Uninstall)
        {
            let message = format!(
                "service {} was uninstalled; nothing is left to change",
                self.plans.spec().name
            );
            return Ok((Reply::text(409, message), calls));
        }
        let reply = match req {
            Request::Update(spec, options) => return self.update_target(*spec, options, now),
            Request::Rollback(to) => return self.rollback(to, now),
            Request::UpdatePreview(spec) => self.preview_update(&spec, now)?,
            Request::Metrics => Reply::json(self.metrics_snapshot(now)),
            Request::ConfigHistory => {
                let mut entries = crate::history::read(&self.store);
                entries.reverse();
                Reply::json(serde_json::to_value(entries)?)
            }
            Request::Plans => Reply::json(json!(self.plans.plan_names())),
            Request::Plan(name) => {
                match self.plans.report_of(&name, &StoreTasks(&self.store), now) {
                    None => Reply::not_found("Plan", &name),
                    Some(mut report) => {
                        // Asked once per group of alike steps that one of them speaks for;
                        // the view is made of the report off the loop.
                        let name_of = |id: &berth_plan::ElementId| {
                            self.plans.step(id).map(|(_, _, step)| step.name.clone())
                        };
                        let mut memo = HashMap::new();
                        let mut waiting = Vec::new();
                        if !self.waits.is_empty() {
                            for (n, step, status) in report.steps() {
                                if status != Status::Complete
                                    && let Some(w) =
                                        self.waits.summary(&step.id, now, name_of, &mut memo)
                                {
                                    waiting.push((n, w));
                                }
                            }
                        }
                        for (n, w) in waiting {
                            report.set_waiting(n, w);
                        }
                        Reply {
                            status: report.http_code(),
                            body: Body::Plan(Box::new(report)),
                        }
                    }
                }
            }
            Request::PlanCommand(command, target) => {
                let result = self
                    .plans
                    .execute(&command, &target, &StoreTasks(&self.store), now);
                match result {
                    Ok(CommandOutcome::Done(message)) => {
                        tracing::info!("operator command: {message}");
                        calls.extend(self.offer_interest(now));
                        Reply::json(json!({ "message": message }))
                    }
                    Ok(CommandOutcome::AlreadyDone) => Reply::already_done(),
                    Err(CommandError::NotFound(m)) => Reply::text(404, m),
                    Err(CommandError::BadRequest(m)) => Reply::text(400, m),
                }
            }
            Request::Pods => Reply::json(json!(self.pod_names())),
            Request::PodsStatus => Reply::json(self.pods_status()),
            Request::PodStatus(pod) => {
                if !self.pod_exists(&pod) {
                    Reply::not_found("Pod", &pod)
                } else {
                    Reply::json(json!({
                        "name": pod,
                        "tasks": self.pod_tasks(&pod).iter().map(|i| self.task_json(i)).collect::<Vec<_>>(),
                    }))
                }
            }
            Request::PodInfo(pod) => {
                if !self.pod_exists(&pod) {
                    Reply::not_found("Pod", &pod)
                } else {
                    let mut items = Vec::new();
                    for info in self.pod_tasks(&pod) {
                        let status = self
                            .store
                            .task_status(&info.name)
                            .filter(|s| s.task_id == info.task_id && !info.task_id.value.is_empty())
                            .map(serde_json::to_value)
                            .transpose()?
                            .map_or(Value::Null, proto_json);
                        items.push(json!({
                            "info": proto_json(serde_json::to_value(&info)?),
                            "status": status,
                        }));
                    }
                    Reply::json(Value::Array(items))
                }
            }
            Request::PodRestart(pod) => {
                let (tasks, c) = self.restart_pod(&pod, now)?;
                calls.extend(c);
                calls.extend(self.offer_interest(now));
                pod_reply(&pod, tasks)
            }
            Request::PodReplace(pod) => {
                let (tasks, c) = self.replace_pod(&pod, now)?;
                calls.extend(c);
                calls.extend(self.offer_interest(now));
                pod_reply(&pod, tasks)
            }
            Request::PodPause(pod, tasks) | Request::PodResume(pod, tasks)
                if !self.pod_exists(&pod) =>
            {
                let _ = tasks;
                Reply::not_found("Pod", &pod)
            }
            Request::PodPause(pod, tasks) => {
                self.pause_reply(&pod, &tasks, false, now, &mut calls)?
            }
            Request::PodResume(pod, tasks) => {
                self.pause_reply(&pod, &tasks, true, now, &mut calls)?
            }
            Request::FrameworkId => match self.store.framework_id() {
                Some(id) => Reply::json(json!([id.value])),
                None => Reply::text(404, "Framework ID not found"),
            },
            Request::Properties => {
                Reply::json(json!(self.store.property_keys().collect::<Vec<_>>()))
            }
            Request::Property(key) => match self.store.property(&key) {
                Some(bytes) => Reply {
                    status: 200,
                    body: Body::Raw(bytes.to_vec()),
                },
                None => Reply::not_found("Property", &key),
            },
            Request::Configurations => Reply::json(json!(
                self.store
                    .config_ids()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
            )),
            Request::Configuration(id) => match Uuid::parse_str(&id) {
                Err(_) => Reply::text(400, format!("Invalid configuration id: {id} is not a UUID")),
                Ok(uuid) => match self.store.config_json(uuid) {
                    Some(bytes) => Reply::json(serde_json::from_slice(bytes)?),
                    None => Reply::not_found("Configuration", &id),
                },
            },
            Request::TargetId => match self.store.config_target() {
                Some(id) => Reply::json(json!([id.to_string()])),
                None => Reply::text(404, "Target configuration not found"),
            },
            Request::Target => match self
                .store
                .config_target()
                .and_then(|id| self.store.config_json(id))
            {
                Some(bytes) => Reply::json(serde_json::from_slice(bytes)?),
                None => Reply::text(404, "Target configuration not found"),
            },
            Request::Health { verbose } => self.health(verbose, now),
            Request::Template {
                config,
                pod,
                task,
                name,
            } => self.template(&config, &pod, &task, &name),
            Request::Endpoints => Reply::json(json!(self.endpoints().keys().collect::<Vec<_>>())),
            Request::Endpoint(name) => match self.endpoints().remove(&name) {
                Some(endpoint) => Reply::json(endpoint.to_json()),
                None => Reply::not_found("Endpoint", &name),
            },
            Request::DebugOffers { plan, phase, step } => {
                self.debug_offers(plan.as_deref(), phase.as_deref(), step.as_deref())
            }
            Request::DebugHistory => Reply::json(json!(self.plans.history().collect::<Vec<_>>())),
            Request::StateTree(_) | Request::StateNode(_) => match self.state_read(&req) {
                Some(read) => read.answer(self.store.persister()),
                None => Reply::text(500, "not a state read"),
            },
            Request::DebugTaskStatuses { plan, phase, step } => Reply::json(
                self.debug_task_statuses(plan.as_deref(), phase.as_deref(), step.as_deref()),
            ),
            Request::DebugReservations => Reply::json(self.debug_reservations()),
            Request::StateFiles => {
                let names: Vec<&str> = self
                    .store
                    .property_keys()
                    .filter_map(|k| k.strip_prefix(FILE_PROPERTY_PREFIX))
                    .collect();
                Reply::text(200, format!("[{}]", names.join(", ")))
            }
            Request::StateFile(name) => {
                match self
                    .store
                    .property(&format!("{FILE_PROPERTY_PREFIX}{name}"))
                {
                    Some(bytes) => Reply::text(200, String::from_utf8_lossy(bytes).into_owned()),
                    None => Reply::text(404, "Failed to get the file"),
                }
            }
            Request::PutStateFile(name, bytes) => {
                if bytes.len() > MAX_STATE_FILE {
                    Reply::text(
                        400,
                        format!(
                            "The file {name} has {} bytes; files stored in the state may have at \
                             most {MAX_STATE_FILE}",
                            bytes.len()
                        ),
                    )
                } else {
                    let mut tx = self.store.transaction();
                    tx.set_property(&format!("{FILE_PROPERTY_PREFIX}{name}"), bytes);
                    self.store.stage(tx)?;
                    Reply {
                        status: 200,
                        body: Body::Empty,
                    }
                }
            }
            Request::ZoneTasks => {
                let zones: serde_json::Map<String, Value> = self
                    .store
                    .task_infos()
                    .filter_map(|i| {
                        let zone = i.labels.get(berth_mesos::task_labels::OFFER_ZONE)?;
                        Some((i.name.clone(), Value::String(zone.to_owned())))
                    })
                    .collect();
                Reply::json(Value::Object(zones))
            }
            Request::ZoneTask(task) => match self
                .store
                .task_info(&task)
                .and_then(|i| i.labels.get(berth_mesos::task_labels::OFFER_ZONE))
            {
                Some(zone) => Reply::text(200, zone.to_owned()),
                None => Reply::text(404, format!("No zone known for task {task}")),
            },
            Request::ZoneOf(pod_type, ip) => {
                let zone = self.store.task_infos().find_map(|i| {
                    let on_host =
                        i.labels.get(berth_mesos::task_labels::OFFER_HOSTNAME) == Some(ip.as_str());
                    let of_type = i.labels.get(berth_mesos::task_labels::TASK_TYPE)
                        == Some(pod_type.as_str());
                    (on_host && of_type)
                        .then(|| i.labels.get(berth_mesos::task_labels::OFFER_ZONE))
                        .flatten()
                });
                match zone {
                    Some(zone) => Reply::text(200, zone.to_owned()),
                    None => {
                        Reply::text(404, format!("No zone known for a {pod_type} task on {ip}"))
                    }
                }
            }
            Request::Tasks { completed } => Reply::json(self.task_list(completed)),
            Request::StateRefresh => {
                self.store.refresh()?;
                Reply::json(json!({"message": "Received cmd: refresh"}))
            }
            Request::Uninstall => {
                if self.uninstall.is_some() {
                    Reply::already_done()
                } else {
                    calls.extend(self.start_uninstall(now)?);
                    Reply::json(json!({
                        "message": format!("Uninstalling service {}: follow the plan `deploy`", self.plans.spec().name)
                    }))
                }
            }
        };
        Ok((reply, calls))
    }

    /// A read of the stored tree (`GET /v1/state/tree`, `/v1/state/node`) that needs nothing
    /// of the core but the persister: the loop hands it to another thread, so that a large
    /// subtree read does not hold offers and statuses back.
    #[must_use]
    pub fn state_read(&self, req: &Request) -> Option<StateRead> {
        match req {
            Request::StateTree(path) => Some(StateRead::Tree(self.state_path(path.as_deref()))),
            Request::StateNode(path) => Some(StateRead::Node(self.state_path(Some(path)))),
            _ => None,
        }
    }

    /// A node path from an API argument: absolute as given, else relative to the root.
    fn state_path(&self, path: Option<&str>) -> String {
        match path
            .map(|p| p.trim_end_matches('/'))
            .filter(|p| !p.is_empty())
        {
            None => self.store.root().to_owned(),
            Some(p) if p.starts_with('/') => p.to_owned(),
            Some(p) => format!("{}/{p}", self.store.root()),
        }
    }

    fn pause_reply(
        &mut self,
        pod: &str,
        tasks: &[String],
        resume: bool,
        now: Millis,
        calls: &mut Vec<Call>,
    ) -> Result<Reply, SchedulerError> {
        match self.pause_pod(pod, tasks, resume, now) {
            Ok((names, c)) => {
                calls.extend(c);
                calls.extend(self.offer_interest(now));
                Ok(pod_reply(pod, names))
            }
            Err(SchedulerError::UnknownTask(t)) => Ok(Reply::not_found("Task", &t)),
            Err(e) => Err(e),
        }
    }

    /// Pod instance names, sorted; tasks without pod labels show as `UNKNOWN_POD_<task>`.
    fn pod_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .task_infos()
            .map(|i| instance_of(i).unwrap_or_else(|| format!("UNKNOWN_POD_{}", i.name)))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// `{"name","id","status"}` of one task for the pod endpoints (no status key when none).
    fn task_json(&self, info: &TaskInfo) -> Value {
        let mut task = serde_json::Map::new();
        task.insert("id".to_owned(), json!(info.task_id.value));
        task.insert("name".to_owned(), json!(info.name));
        if info.task_id.value.is_empty() {
            return Value::Object(task);
        }
        let state = self
            .store
            .task_status(&info.name)
            .filter(|s| s.task_id == info.task_id)
            .map_or(berth_mesos::TaskState::TaskStaging, |s| s.state);
        {
            let shown = match self.store.goal_override(&info.name) {
                Some((GoalOverride::Paused, OverrideProgress::Complete)) => "PAUSED".to_owned(),
                Some((GoalOverride::Decommissioned, OverrideProgress::Complete)) => {
                    "DECOMMISSIONED".to_owned()
                }
                Some((GoalOverride::Paused, _)) => "PAUSING".to_owned(),
                Some((GoalOverride::Decommissioned, _)) => "DECOMMISSIONING".to_owned(),
                Some((GoalOverride::None, _)) => "STARTING".to_owned(),
                None => state.short_name().to_owned(),
            };
            task.insert("status".to_owned(), json!(shown));
        }
        Value::Object(task)
    }

    fn pods_status(&self) -> Value {
        let mut by_type: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
        for info in self.store.task_infos() {
            let pod_type = info
                .labels
                .get(berth_mesos::task_labels::TASK_TYPE)
                .unwrap_or("UNKNOWN_POD")
                .to_owned();
            let instance =
                instance_of(info).unwrap_or_else(|| format!("UNKNOWN_POD_{}", info.name));
            by_type
                .entry(pod_type)
                .or_default()
                .entry(instance)
                .or_default()
                .push(self.task_json(info));
        }
        // Pod types in spec order, then unknown ones.
        let order: Vec<String> = self
            .plans
            .spec()
            .pod_specs
            .iter()
            .map(|p| p.pod_type.clone())
            .chain(by_type.keys().cloned())
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut pods = Vec::new();
        for t in order {
            if !seen.insert(t.clone()) {
                continue;
            }
            if let Some(instances) = by_type.get(&t) {
                let mut list: Vec<(&String, &Vec<Value>)> = instances.iter().collect();
                list.sort_by_key(|(name, _)| instance_index(name));
                pods.push(json!({
                    "name": t,
                    "instances": list.into_iter().map(|(name, tasks)| json!({"name": name, "tasks": tasks})).collect::<Vec<_>>(),
                }));
            }
        }
        json!({ "service": self.plans.spec().name, "pods": pods })
    }

    /// `GET /v1/tasks` from the stored state: every launched task's latest run, in the shape
    /// of the local cluster's list (`id`, `name`, `agent`, `host`, `user`, `state`, `active`,
    /// `updated`, `framework_id`).
    fn task_list(&self, completed: bool) -> Value {
        let framework_id = self
            .store
            .framework_id()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let spec = self.plans.spec();
        let mut tasks = Vec::new();
        for info in self.store.task_infos() {
            if info.task_id.value.is_empty() {
                continue;
            }
            let status = self
                .store
                .task_status(&info.name)
                .filter(|s| s.task_id == info.task_id);
            let state = status.map_or(berth_mesos::TaskState::TaskStaging, |s| s.state);
            if state.is_terminal() && !completed {
                continue;
            }
            let pod_type = info.labels.get(berth_mesos::task_labels::TASK_TYPE);
            let user = info
                .command
                .as_ref()
                .and_then(|c| c.user.clone())
                .or_else(|| {
                    spec.pod_specs
                        .iter()
                        .find(|p| Some(p.pod_type.as_str()) == pod_type)
                        .map(|p| p.user.clone())
                })
                .unwrap_or_else(|| spec.user.clone());
            tasks.push(json!({
                "id": info.task_id.value,
                "name": info.name,
                "agent": info.agent_id.value,
                "host": info
                    .labels
                    .get(berth_mesos::task_labels::OFFER_HOSTNAME)
                    .unwrap_or(&info.agent_id.value),
                "user": user,
                "state": state.as_str(),
                "active": !state.is_terminal(),
                "updated": status.map_or(0.0, |s| s.timestamp),
                "framework_id": framework_id,
            }));
        }
        Value::Array(tasks)
    }

    /// `GET /v2/debug/offers`: the reference's summary (`acceptedCount`, `rejectedCount`,
    /// `failureReasons`, `rejectedAgents`) and the last evaluated offers, newest first; with
    /// filters, all of it for the offers evaluated for the steps named.
    fn debug_offers(&self, plan: Option<&str>, phase: Option<&str>, step: Option<&str>) -> Reply {
        let filtered = plan.is_some() || phase.is_some() || step.is_some();
        let wanted =
            |filter: Option<&str>, name: &str| filter.is_none_or(|f| f.eq_ignore_ascii_case(name));
        let steps: std::collections::HashSet<&str> = self
            .plans
            .plans()
            .iter()
            .filter(|p| wanted(plan, &p.name))
            .flat_map(|p| p.phases.iter())
            .filter(|ph| wanted(phase, &ph.name))
            .flat_map(|ph| ph.steps.iter())
            .filter(|s| wanted(step, &s.name))
            .map(|s| s.name.as_str())
            .collect();
        let offers: Vec<&crate::core::OfferLogEntry> = self
            .offer_log
            .iter()
            .rev()
            .filter(|e| !filtered || steps.contains(e.pod_instance_name.as_str()))
            .collect();
        let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
        let mut agents: BTreeMap<&str, u64> = BTreeMap::new();
        for e in &offers {
            if let Some(f) = &e.failure {
                *reasons.entry(f.as_str()).or_default() += 1;
                *agents.entry(e.hostname.as_str()).or_default() += 1;
            }
        }
        let (accepted, rejected) = if filtered {
            let passed = offers.iter().filter(|e| e.failure.is_none()).count() as u64;
            (passed, offers.len() as u64 - passed)
        } else {
            (self.counters.offers_accepted, self.counters.offers_declined)
        };
        Reply::json(json!({
            "acceptedCount": accepted,
            "rejectedCount": rejected,
            "failureReasons": reasons,
            "rejectedAgents": agents,
            "counters": self.counters,
            "offers": offers,
        }))
    }

    /// `GET /v1/debug/taskStatuses`: per plan, per phase, per step, the step's tasks with
    /// their id and latest state.
    fn debug_task_statuses(
        &self,
        plan: Option<&str>,
        phase: Option<&str>,
        step: Option<&str>,
    ) -> Value {
        let wanted =
            |filter: Option<&str>, name: &str| filter.is_none_or(|f| f.eq_ignore_ascii_case(name));
        let mut out = Vec::new();
        for p in self.plans.plans() {
            if !wanted(plan, &p.name) {
                continue;
            }
            let mut plan_object = serde_json::Map::new();
            plan_object.insert("plan".to_owned(), json!(p.name));
            for ph in &p.phases {
                if !wanted(phase, &ph.name) {
                    continue;
                }
                let mut phase_object = serde_json::Map::new();
                for s in &ph.steps {
                    if !wanted(step, &s.name) {
                        continue;
                    }
                    let berth_plan::Work::Launch(l) = &s.work else {
                        continue;
                    };
                    let tasks: Vec<Value> = l
                        .task_names()
                        .into_iter()
                        .map(|name| {
                            let mut t = serde_json::Map::new();
                            if let Some(status) = self.store.task_status(&name) {
                                t.insert(
                                    "taskId".to_owned(),
                                    json!({"value": status.task_id.value}),
                                );
                                t.insert(
                                    "latestTaskState".to_owned(),
                                    json!(status.state.as_str()),
                                );
                            }
                            t.insert("taskName".to_owned(), json!(name));
                            Value::Object(t)
                        })
                        .collect();
                    phase_object.insert(s.name.clone(), Value::Array(tasks));
                }
                plan_object.insert(ph.name.clone(), Value::Object(phase_object));
            }
            out.push(Value::Object(plan_object));
        }
        Value::Array(out)
    }

    /// `GET /v1/debug/reservations`: `{"<agent host>": ["<resource id>", …]}` from the stored
    /// TaskInfos (task and executor resources).
    fn debug_reservations(&self) -> Value {
        let mut by_host: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for info in self.store.task_infos() {
            let host = info
                .labels
                .get(berth_mesos::task_labels::OFFER_HOSTNAME)
                .map_or_else(|| info.agent_id.value.clone(), str::to_owned);
            let executor = info.executor.iter().flat_map(|e| e.resources.iter());
            let ids = info
                .resources
                .iter()
                .chain(executor)
                .filter_map(|r| r.resource_id().map(str::to_owned));
            by_host.entry(host).or_default().extend(ids);
        }
        json!(by_host)
    }

    /// `GET /v1/health`: the reference's priority of codes.
    fn health(&self, verbose: bool, now: Millis) -> Reply {
        let tasks = StoreTasks(&self.store);
        let mut reasons: Vec<String> = Vec::new();
        let code = 'code: {
            if let Some(fault) = self
                .store_fault
                .clone()
                .or_else(|| self.store.persister().unavailable())
            {
                reasons.push(format!("state store unavailable: {fault}"));
                break 'code 500;
            }
            if let Some(fault) = &self.cluster_fault {
                reasons.push(format!("cluster unreachable: {fault}"));
                break 'code 500;
            }
            if self.uninstall == Some(crate::Uninstall::Done) {
                reasons.push("uninstalled".to_owned());
                break 'code 200;
            }
            for plan in self.plans.plans() {
                let status = self.plans.plan_status(plan, &tasks, now);
                if !self.plans.plan_errors(plan).is_empty() || status == Status::Error {
                    reasons.push(format!("plan {} has errors", plan.name));
                    break 'code 500;
                }
            }
            if self.store.framework_id().is_none() {
                reasons.push("not registered yet (no framework id)".to_owned());
                break 'code 318;
            }
            let step_statuses = |name: &str| -> Vec<Status> {
                self.plans.plan(name).map_or(Vec::new(), |p| {
                    p.steps()
                        .map(|(_, s)| self.plans.step_status(s, now))
                        .collect()
                })
            };
            let deploy = step_statuses("deploy");
            if deploy.contains(&Status::Delayed) {
                reasons.push("deploy plan: a step is in launch back-off".to_owned());
                break 'code 208;
            }
            if deploy
                .iter()
                .any(|s| matches!(s, Status::Pending | Status::Prepared))
            {
                reasons.push("deploy plan: steps are pending".to_owned());
                break 'code 204;
            }
            if deploy
                .iter()
                .any(|s| matches!(s, Status::Starting | Status::Started))
            {
                reasons.push("deploy plan: steps are starting".to_owned());
                break 'code 202;
            }
            if let Some(plan) = self.plans.plan("deploy") {
                let interrupted = self.plans.is_interrupted(&plan.id)
                    || plan
                        .steps()
                        .any(|(_, s)| self.plans.step_status(s, now) == Status::Waiting);
                if interrupted {
                    reasons.push("deploy plan is interrupted".to_owned());
                    break 'code 207;
                }
            }
            let recovery = step_statuses("recovery");
            if recovery.contains(&Status::Delayed) {
                reasons.push("recovery plan: a step is in launch back-off".to_owned());
                break 'code 208;
            }
            if recovery
                .iter()
                .any(|s| matches!(s, Status::Pending | Status::Prepared))
            {
                reasons.push("recovery plan: steps are pending".to_owned());
                break 'code 203;
            }
            if recovery
                .iter()
                .any(|s| matches!(s, Status::Starting | Status::Started))
            {
                reasons.push("recovery plan: steps are starting".to_owned());
                break 'code 205;
            }
            if self.plan_status("deploy", now) == Some(Status::Complete) {
                let running = |needle: &str| {
                    self.plans.plans().iter().any(|p| {
                        p.name.contains(needle)
                            && self.plans.plan_status(p, &tasks, now).is_running()
                    })
                };
                if running("restor") {
                    reasons.push("a restore plan is running".to_owned());
                    break 'code 321;
                }
                if running("back") {
                    reasons.push("a backup plan is running".to_owned());
                    break 'code 320;
                }
                break 'code 200;
            }
            reasons.push("deploy plan is not complete".to_owned());
            503
        };
        let mut body = json!({ "value": code });
        if verbose {
            body["reasons"] = json!(reasons);
        }
        Reply::json_with(code, body)
    }

    /// The advertised ports of every launched task, by port name: where each task serves it
    /// (its agent's host name), its autoip name, and the port's VIP when it has one.
    fn endpoints(&self) -> BTreeMap<String, Endpoint> {
        let service = &self.plans.spec().name;
        let autoip = berth_offer::naming::autoip_domain(service);
        let vip_domain = berth_offer::naming::vip_domain(service);
        let mut out: BTreeMap<String, Endpoint> = BTreeMap::new();
        for info in self.store.task_infos() {
            if info.task_id.value.is_empty() {
                continue;
            }
            let Some(discovery) = &info.discovery else {
                continue;
            };
            let host = info
                .labels
                .get(berth_mesos::task_labels::OFFER_HOSTNAME)
                .unwrap_or(info.agent_id.as_str());
            let dns_name = discovery.name.as_deref().unwrap_or(&info.name);
            for port in discovery.ports.iter().flat_map(|p| &p.ports) {
                if port.visibility.as_deref() != Some("EXTERNAL") {
                    continue;
                }
                let Some(name) = &port.name else { continue };
                let entry = out.entry(name.clone()).or_default();
                entry.address.insert(format!("{host}:{}", port.number));
                entry
                    .dns
                    .insert(format!("{dns_name}.{autoip}:{}", port.number));
                let vip = port
                    .labels
                    .iter()
                    .flat_map(|l| &l.labels)
                    .find_map(|l| l.key.starts_with("VIP_").then_some(l.value.as_str()));
                if let Some((prefix, vip_port)) = vip.and_then(|v| v.rsplit_once(':')) {
                    entry.vip = Some(format!("{prefix}.{vip_domain}:{vip_port}"));
                }
            }
        }
        out
    }

    fn template(&self, config: &str, pod: &str, task: &str, name: &str) -> Reply {
        let Ok(id) = Uuid::parse_str(config) else {
            return Reply::text(
                400,
                format!("Invalid configuration id: {config} is not a UUID"),
            );
        };
        let Ok(Some(spec)) = self.store.config(id) else {
            return Reply::not_found("Configuration", config);
        };
        let content = spec
            .pod(pod)
            .and_then(|p| p.task(task))
            .and_then(|t| t.config_files.iter().find(|c| c.name == name))
            .map(|c| c.template_content.clone());
        match content {
            Some(c) => Reply::text(200, c),
            None => Reply::text(
                404,
                format!("Template {pod}/{task}/{name} not found in configuration {config}"),
            ),
        }
    }

    /// Whether every step of a plan is complete (used by tests and benchmarks).
    #[must_use]
    pub fn plan_complete(&self, name: &str, now: Millis) -> bool {
        self.plan_status(name, now) == Some(Status::Complete)
    }

    /// The core's side of `GET /v1/metrics`.
    fn metrics_snapshot(&self, now: Millis) -> Value {
        let mut plans = serde_json::Map::new();
        for name in self.plans.plan_names() {
            let mut by_status: std::collections::BTreeMap<&str, u64> =
                std::collections::BTreeMap::new();
            for (_, status) in self.step_statuses(name, now) {
                *by_status.entry(status.as_str()).or_default() += 1;
            }
            plans.insert(name.to_owned(), json!(by_status));
        }
        json!({
            "counters": self.counters,
            "is_suppressed": self.suppressed,
            "offers_held": self.held.len(),
            "steps": plans,
            "tasks": self.store.task_infos().filter(|i| !i.task_id.value.is_empty()).count(),
        })
    }

    /// Names of the steps of a plan with their status, in order (for tests and the CLI).
    #[must_use]
    pub fn step_statuses(&self, plan: &str, now: Millis) -> Vec<(String, Status)> {
        let tasks = StoreTasks(&self.store);
        self.plans.plan(plan).map_or(Vec::new(), |p| {
            p.steps()
                .map(|(_, s)| {
                    (
                        s.name.clone(),
                        self.plans.step_display_status(s, &tasks, now),
                    )
                })
                .collect()
        })
    }

    /// Whether a step works on something (for assertions on decommission/uninstall plans).
    #[must_use]
    pub fn has_work(&self, plan: &str) -> bool {
        self.plans
            .plan(plan)
            .is_some_and(|p| p.steps().any(|(_, s)| !matches!(s.work, Work::Noop)))
    }
}

fn pod_reply(pod: &str, tasks: Option<Vec<String>>) -> Reply {
    match tasks {
        None => Reply::not_found("Pod", pod),
        Some(tasks) => Reply::json(json!({ "pod": pod, "tasks": tasks })),
    }
}

/// Index part of `hello-3` for natural ordering (`world-2` before `world-10`).
fn instance_index(name: &str) -> (String, u64) {
    match name.rsplit_once('-') {
        Some((t, i)) => (t.to_owned(), i.parse().unwrap_or(u64::MAX)),
        None => (name.to_owned(), u64::MAX),
    }
}

/// One endpoint of `GET /v1/endpoints/{name}`.
#[derive(Debug, Default)]
struct Endpoint {
    address: std::collections::BTreeSet<String>,
    dns: std::collections::BTreeSet<String>,
    vip: Option<String>,
}

impl Endpoint {
    fn to_json(&self) -> Value {
        let mut v = json!({ "address": self.address, "dns": self.dns });
        if let Some(vip) = &self.vip {
            v["vip"] = json!(vip);
        }
        v
    }
}
