//! ACCEPT: a framework applies operations to the offers of one agent. They are planned in
//! order on copies (of what the offers hold, the agent's total resources and its record);
//! then the launch files are written, the copies put in place and the state persisted;
//! only then are volume directories created or removed and executors started or handed
//! their tasks. A failed ACCEPT changes nothing but consumes its offers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use berth_mesos::{
    AgentId, ExecutorInfo, Filters, FrameworkId, LaunchGroupOp, OfferId, Operation,
    ReservationType, Resource, StatusSource, TaskInfo, TaskState,
};
use tracing::{error, info, warn};

use super::{Core, agent_status, invalid, millis};
use crate::local::fsutil::{mkdirs, read_json, sanitize, write_json};
use crate::local::resources::{Resources, describe, pop_reservation, same_bucket, strip_volume};
use crate::local::state::{AgentRecord, ExecutorRecord, ExecutorState, TaskRecord};
use crate::local::wire::{AgentMessage, LAUNCH_FILE, LaunchFile, TASKS_DIR};
use crate::protocol::{ClusterError, Event};

fn op_name(op: &Operation) -> &'static str {
    match op {
        Operation::Reserve { .. } => "RESERVE",
        Operation::Unreserve { .. } => "UNRESERVE",
        Operation::Create { .. } => "CREATE",
        Operation::Destroy { .. } => "DESTROY",
        Operation::LaunchGroup { .. } => "LAUNCH_GROUP",
    }
}

/// An ACCEPT being planned: copies of what it changes, and what to do once it is durable.
struct Plan {
    agent: String,
    /// What the offers still hold.
    avail: Resources,
    /// The agent's total resources, as the operations so far leave them.
    total: Resources,
    /// The agent's record, as the launches so far leave it.
    rec: AgentRecord,
    /// The next executor run number.
    next_run: u64,
    /// Volume directories to create.
    created: Vec<PathBuf>,
    /// Volume directories to remove.
    destroyed: Vec<PathBuf>,
    /// Executors to start or to hand tasks, one entry per executor.
    launches: Vec<Launch>,
}

/// Tasks for one executor.
struct Launch {
    exec: String,
    /// A new run of the executor is started (otherwise the running one takes the tasks).
    new_run: bool,
    tasks: Vec<TaskInfo>,
}

impl Plan {
    /// An operation that turns `from` into `to` (RESERVE, CREATE): the offers must hold
    /// `from`; `to` replaces it in the offers and in the agent's total.
    fn convert(&mut self, from: &Resource, to: &Resource) -> Result<(), String> {
        self.avail
            .subtract(from)
            .map_err(|e| format!("not in the offer: {e}"))?;
        self.avail.add(to);
        self.total.subtract(from)?;
        self.total.add(to);
        Ok(())
    }

    fn add_launch(&mut self, launch: Launch) {
        if let Some(l) = self.launches.iter_mut().find(|l| l.exec == launch.exec) {
            l.tasks.extend(launch.tasks);
        } else {
            self.launches.push(launch);
        }
    }
}

impl Core {
    /// An ACCEPT; when it fails, its tasks are reported `TASK_DROPPED`.
    pub(super) fn accept(
        &mut self,
        fw: &str,
        offer_ids: &[OfferId],
        operations: &[Operation],
        filters: Filters,
    ) -> Result<(), ClusterError> {
        let dropped_tasks: Vec<(String, String)> = operations
            .iter()
            .filter_map(|op| match op {
                Operation::LaunchGroup { launch_group } => Some(launch_group),
                _ => None,
            })
            .flat_map(|lg| {
                lg.task_group
                    .tasks
                    .iter()
                    .map(|t| (t.task_id.value.clone(), t.agent_id.value.clone()))
            })
            .collect();
        let res = self.accept_inner(fw, offer_ids, operations, filters);
        if let Err(e) = &res {
            warn!(error = %e, "ACCEPT refused");
            for (task, agent) in dropped_tasks {
                if task.is_empty() {
                    continue;
                }
                let mut st = agent_status(
                    &task,
                    TaskState::TaskDropped,
                    &agent,
                    None,
                    Some("REASON_INVALID_OFFERS"),
                    e.to_string(),
                    false,
                );
                st.source = Some(StatusSource::SourceMaster);
                self.emit(Some(fw), Event::Update { status: st });
            }
            self.offers.requested = true;
            let _ = self.finish();
        }
        res
    }

    fn accept_inner(
        &mut self,
        fw: &str,
        offer_ids: &[OfferId],
        operations: &[Operation],
        filters: Filters,
    ) -> Result<(), ClusterError> {
        let (agent, offered) = self.take_offers(fw, offer_ids)?;
        let (principal, roles) = match &self.sub {
            Some(s) => (s.principal.clone(), s.roles.clone()),
            None => return Err(ClusterError::NotSubscribed),
        };
        let mut plan = self.start_plan(agent, &offered)?;
        for (i, op) in operations.iter().enumerate() {
            self.plan_operation(fw, &mut plan, op, &principal, &roles)
                .map_err(|m| invalid(format!("operation {i} ({}): {m}", op_name(op))))?;
        }
        // Launch files first (they only count once the state names them), then the state.
        self.write_launch_files(fw, &plan)?;
        let Plan {
            agent,
            avail,
            total,
            rec,
            next_run,
            created,
            destroyed,
            launches,
        } = plan;
        self.commit(&agent, rec, total, next_run)?;
        apply_volume_dirs(&created, &destroyed);
        self.dispatch_launches(&agent, launches);
        // As in Mesos, what is left of the offer counts as declined for refuse_seconds; with
        // 0 it is offered again right away (a DECLINE with 0 waits for the next round).
        let unused = avail.0;
        if !unused.is_empty() && filters.refuse_seconds > 0.0 {
            self.add_filter(&agent, fw, &unused, filters.refuse_seconds);
        }
        self.offers.requested = true;
        self.finish()
    }

    /// Checks that the offers are outstanding, made to `fw` and from one agent, then takes
    /// them (they are used up even if the ACCEPT fails later). Returns the agent and what
    /// the offers hold.
    fn take_offers(
        &mut self,
        fw: &str,
        offer_ids: &[OfferId],
    ) -> Result<(String, Vec<Resource>), ClusterError> {
        if offer_ids.is_empty() {
            return Err(invalid("ACCEPT names no offer"));
        }
        let mut agent: Option<String> = None;
        let mut offered = Vec::new();
        for id in offer_ids {
            let Some(o) = self.offers.outstanding.get(id.as_str()) else {
                return Err(invalid(format!(
                    "offer {id} is not outstanding (unknown, already used, declined or rescinded)"
                )));
            };
            if o.framework != fw {
                return Err(invalid(format!("offer {id} was made to another framework")));
            }
            if agent.as_ref().is_some_and(|a| *a != o.agent) {
                return Err(invalid("the offers of one ACCEPT must come from one agent"));
            }
            agent = Some(o.agent.clone());
            offered.extend(o.resources.iter().cloned());
        }
        for id in offer_ids {
            self.offers.outstanding.remove(id.as_str());
        }
        Ok((agent.unwrap_or_default(), offered))
    }

    /// A plan starting from the agent's current totals and record.
    fn start_plan(&self, agent: String, offered: &[Resource]) -> Result<Plan, ClusterError> {
        let (Some(total), Some(rec)) = (
            self.agents.totals.get(&agent),
            self.state.agents.get(&agent),
        ) else {
            return Err(self.unknown_agent(&agent));
        };
        Ok(Plan {
            avail: Resources::from_list(offered),
            total: total.clone(),
            rec: rec.clone(),
            next_run: self.state.next_run,
            created: Vec::new(),
            destroyed: Vec::new(),
            launches: Vec::new(),
            agent,
        })
    }

    fn plan_operation(
        &self,
        fw: &str,
        plan: &mut Plan,
        op: &Operation,
        principal: &str,
        roles: &[String],
    ) -> Result<(), String> {
        match op {
            Operation::Reserve { reserve } => {
                plan_reserve(plan, &reserve.resources, principal, roles)
            }
            Operation::Unreserve { unreserve } => plan_unreserve(plan, &unreserve.resources),
            Operation::Create { create } => self.plan_create(plan, &create.volumes),
            Operation::Destroy { destroy } => self.plan_destroy(plan, &destroy.volumes),
            Operation::LaunchGroup { launch_group } => {
                let launch = self.plan_launch(fw, plan, launch_group)?;
                plan.add_launch(launch);
                Ok(())
            }
        }
    }

    fn plan_create(&self, plan: &mut Plan, volumes: &[Resource]) -> Result<(), String> {
        for v in volumes {
            let Some(pid) = v.persistence_id() else {
                return Err(format!("{} has no disk.persistence", describe(v)));
            };
            if v.disk.as_ref().and_then(|d| d.volume.as_ref()).is_none() {
                return Err(format!("volume `{pid}` has no disk.volume"));
            }
            if v.name != "disk" || v.reservations.is_empty() {
                return Err(format!("volume `{pid}` must be a reserved `disk` resource"));
            }
            if plan.total.0.iter().any(|r| r.persistence_id() == Some(pid)) {
                return Err(format!(
                    "a persistent volume `{pid}` already exists on agent {}",
                    plan.agent
                ));
            }
            plan.convert(&strip_volume(v), v)?;
            if let Some(p) = self.volume_path(&plan.agent, v) {
                plan.created.push(p);
            }
        }
        Ok(())
    }

    fn plan_destroy(&self, plan: &mut Plan, volumes: &[Resource]) -> Result<(), String> {
        for v in volumes {
            let Some(pid) = v.persistence_id() else {
                return Err(format!("{} is not a persistent volume", describe(v)));
            };
            plan.avail.subtract(v).map_err(|e| {
                format!(
                    "volume `{pid}` is not in the offer (in use by a task or executor, or \
                     already destroyed): {e}"
                )
            })?;
            plan.avail.add(&strip_volume(v));
            plan.total.subtract(v)?;
            plan.total.add(&strip_volume(v));
            if let Some(p) = self.volume_path(&plan.agent, v) {
                plan.destroyed.push(p);
            }
        }
        Ok(())
    }

    /// Checks one LAUNCH_GROUP against the plan and records its executor (a new run unless
    /// a live executor of `fw` with that id takes the tasks) and its tasks in the planned
    /// agent record.
    fn plan_launch(&self, fw: &str, plan: &mut Plan, lg: &LaunchGroupOp) -> Result<Launch, String> {
        let info: &ExecutorInfo = &lg.executor;
        let exec = info.executor_id.value.clone();
        self.check_executor(fw, &plan.agent, &exec, info)?;
        if lg.task_group.tasks.is_empty() {
            return Err("the task group is empty".to_owned());
        }
        let reuse = plan
            .rec
            .executors
            .get(&exec)
            .is_some_and(|e| e.state.accepts_tasks() && e.framework_id == fw);
        if !reuse {
            for r in &info.resources {
                plan.avail
                    .subtract(r)
                    .map_err(|e| format!("executor {exec}: not in the offer: {e}"))?;
            }
        }
        self.check_tasks(plan, &lg.task_group.tasks)?;
        let new_run = !reuse;
        if new_run {
            self.record_new_run(fw, plan, &exec, info);
        }
        record_tasks(fw, plan, &exec, &lg.task_group.tasks)?;
        Ok(Launch {
            exec,
            new_run,
            tasks: lg.task_group.tasks.clone(),
        })
    }

    /// The executor of a LAUNCH_GROUP has an id, is `fw`'s and runs on no other agent.
    fn check_executor(
        &self,
        fw: &str,
        agent: &str,
        exec: &str,
        info: &ExecutorInfo,
    ) -> Result<(), String> {
        if exec.is_empty() {
            return Err("the executor has no executor_id".to_owned());
        }
        if info.framework_id.as_ref().is_some_and(|f| f.as_str() != fw) {
            return Err(format!("executor {exec} names another framework"));
        }
        for (aid, a) in &self.state.agents {
            if aid != agent && a.executors.get(exec).is_some_and(|e| e.state.alive()) {
                return Err(format!("executor {exec} is running on agent {aid}"));
            }
        }
        Ok(())
    }

    /// Each task has a unique, unused id, fits the agent, has a command, and its resources
    /// are in the offers (they are taken from `plan.avail`).
    fn check_tasks(&self, plan: &mut Plan, tasks: &[TaskInfo]) -> Result<(), String> {
        let agent = plan.agent.as_str();
        let mut seen = BTreeSet::new();
        for t in tasks {
            let tid = t.task_id.as_str();
            if tid.is_empty() {
                return Err(format!("task `{}` has no task_id", t.name));
            }
            if !seen.insert(tid) {
                return Err(format!("task id {tid} appears twice"));
            }
            if !t.agent_id.value.is_empty() && t.agent_id.as_str() != agent {
                return Err(format!(
                    "task {tid} names agent {} but the offer is from {agent}",
                    t.agent_id
                ));
            }
            if t.command.as_ref().is_none_or(|c| c.value.trim().is_empty()) {
                return Err(format!("task {tid} has no command"));
            }
            let live = plan
                .rec
                .tasks
                .get(tid)
                .is_some_and(|x| !x.latest.state.is_terminal())
                || self.state.agents.iter().any(|(aid, a)| {
                    aid != agent
                        && a.tasks
                            .get(tid)
                            .is_some_and(|x| !x.latest.state.is_terminal())
                });
            if live {
                return Err(format!("task id {tid} is already in use"));
            }
            for r in &t.resources {
                plan.avail
                    .subtract(r)
                    .map_err(|e| format!("task {tid}: not in the offer: {e}"))?;
            }
        }
        Ok(())
    }

    /// Records a new run of `exec` (in the state `Launching`) in the planned record.
    fn record_new_run(&self, fw: &str, plan: &mut Plan, exec: &str, info: &ExecutorInfo) {
        let run = plan.next_run;
        plan.next_run += 1;
        plan.rec.executors.insert(
            exec.to_owned(),
            ExecutorRecord {
                framework_id: fw.to_owned(),
                info: info.clone(),
                dir: self
                    .agent_dir(&plan.agent)
                    .join("executors")
                    .join(sanitize(exec)),
                run,
                pid: None,
                start_time: None,
                state: ExecutorState::Launching,
                tasks: Vec::new(),
            },
        );
    }

    /// Writes (or extends) the launch file of each executor of the plan.
    fn write_launch_files(&self, fw: &str, plan: &Plan) -> Result<(), ClusterError> {
        for l in &plan.launches {
            let Some(e) = plan.rec.executors.get(&l.exec) else {
                return Err(ClusterError::Backend(format!(
                    "executor {} is missing from the planned record of agent {}",
                    l.exec, plan.agent
                )));
            };
            mkdirs(&e.dir.join(TASKS_DIR))?;
            let path = e.dir.join(LAUNCH_FILE);
            let existing = if l.new_run {
                None
            } else {
                read_json::<LaunchFile>(&path)?.filter(|f| f.run == e.run)
            };
            let mut lf = match existing {
                Some(lf) => lf,
                None => self.new_launch_file(fw, &plan.agent, e)?,
            };
            for r in e
                .info
                .resources
                .iter()
                .chain(l.tasks.iter().flat_map(|t| t.resources.iter()))
            {
                if let (Some(pid), Some(p)) = (r.persistence_id(), self.volume_path(&plan.agent, r))
                {
                    lf.volumes.insert(pid.to_owned(), p);
                }
            }
            lf.tasks.extend(l.tasks.iter().cloned());
            write_json(&path, &lf)?;
        }
        Ok(())
    }

    /// The launch file of a new run of `e`, without tasks yet.
    fn new_launch_file(
        &self,
        fw: &str,
        agent: &str,
        e: &ExecutorRecord,
    ) -> Result<LaunchFile, ClusterError> {
        let Some(spec) = self.agents.specs.get(agent) else {
            return Err(self.unknown_agent(agent));
        };
        let user = self.state.frameworks.get(fw).map(|f| f.user.clone());
        Ok(LaunchFile {
            run: e.run,
            framework_id: FrameworkId::new(fw),
            agent_id: AgentId::new(agent),
            hostname: spec.hostname.clone(),
            executor: e.info.clone(),
            tasks: Vec::new(),
            volumes: BTreeMap::new(),
            default_user: user.filter(|u| !u.is_empty()),
            resend_interval_ms: millis(self.cfg.executor_resend_interval),
            orphan_timeout_ms: millis(self.cfg.executor_orphan_timeout),
            default_kill_grace_ms: millis(self.cfg.default_kill_grace),
            log_page_bytes: self.cfg.task_log_page_bytes,
            log_pages: self.cfg.task_log_pages,
        })
    }

    /// Puts the planned record and totals of `agent` in place and persists them; puts the
    /// old ones back if that fails.
    fn commit(
        &mut self,
        agent: &str,
        rec: AgentRecord,
        total: Resources,
        next_run: u64,
    ) -> Result<(), ClusterError> {
        let old_rec = self.state.agents.insert(agent.to_owned(), rec);
        let old_total = self.agents.totals.insert(agent.to_owned(), total);
        let old_run = self.state.next_run;
        self.state.next_run = next_run;
        if let Err(e) = self.persist() {
            if let Some(r) = old_rec {
                self.state.agents.insert(agent.to_owned(), r);
            }
            if let Some(t) = old_total {
                self.agents.totals.insert(agent.to_owned(), t);
            }
            self.state.next_run = old_run;
            return Err(e);
        }
        Ok(())
    }

    /// Queues the start of new executor runs, and the tasks of running executors.
    fn dispatch_launches(&mut self, agent: &str, launches: Vec<Launch>) {
        for Launch {
            exec,
            new_run,
            tasks,
        } in launches
        {
            if new_run {
                // A previous run of this id may still be exiting: nothing for the new run
                // may go over its connection.
                self.execs.disconnect(&exec);
                self.execs.to_spawn.push((agent.to_owned(), exec));
            } else {
                self.send_exec(&exec, AgentMessage::Launch { tasks });
            }
        }
    }
}

/// RESERVE: each resource's last reservation is a DYNAMIC one for one of the framework's
/// roles (and its principal), made on resources the offers hold.
fn plan_reserve(
    plan: &mut Plan,
    resources: &[Resource],
    principal: &str,
    roles: &[String],
) -> Result<(), String> {
    for r in resources {
        let Some(last) = r.reservations.last() else {
            return Err(format!("{} carries no reservation", describe(r)));
        };
        if last.kind != ReservationType::Dynamic {
            return Err(format!(
                "{}: RESERVE makes DYNAMIC reservations only",
                describe(r)
            ));
        }
        if !roles.iter().any(|r| *r == last.role) {
            return Err(format!(
                "role `{}` is not one of the framework's roles {:?}",
                last.role, roles
            ));
        }
        if last.principal.as_ref().is_some_and(|p| p != principal) {
            return Err(format!(
                "principal {:?} is not the framework's principal `{principal}`",
                last.principal
            ));
        }
        if r.persistence_id().is_some() {
            return Err(format!(
                "{}: RESERVE cannot carry a volume; use CREATE after it",
                describe(r)
            ));
        }
        plan.convert(&pop_reservation(r), r)?;
    }
    Ok(())
}

/// UNRESERVE: dynamic reservations without volumes, held by the offers.
fn plan_unreserve(plan: &mut Plan, resources: &[Resource]) -> Result<(), String> {
    for r in resources {
        if r.reservations
            .last()
            .is_none_or(|x| x.kind != ReservationType::Dynamic)
        {
            return Err(format!(
                "{}: only DYNAMIC reservations can be unreserved",
                describe(r)
            ));
        }
        if let Some(pid) = r.persistence_id() {
            return Err(format!(
                "{} is persistent volume `{pid}`: DESTROY it before UNRESERVE",
                describe(r)
            ));
        }
        if let Err(e) = plan.avail.subtract(r) {
            let plain = strip_volume(r);
            if let Some(v) = plan
                .total
                .0
                .iter()
                .find(|v| v.persistence_id().is_some() && same_bucket(&strip_volume(v), &plain))
            {
                return Err(format!(
                    "persistent volume `{}` still exists on this reservation; DESTROY it \
                     before UNRESERVE",
                    v.persistence_id().unwrap_or_default()
                ));
            }
            return Err(format!("not in the offer: {e}"));
        }
        let pre = pop_reservation(r);
        plan.avail.add(&pre);
        plan.total.subtract(r)?;
        plan.total.add(&pre);
    }
    Ok(())
}

/// Records each task of a launch (`TASK_STAGING`) in the planned record, and in its
/// executor's task list.
fn record_tasks(fw: &str, plan: &mut Plan, exec: &str, tasks: &[TaskInfo]) -> Result<(), String> {
    let agent = plan.agent.as_str();
    let e = plan
        .rec
        .executors
        .get_mut(exec)
        .ok_or("executor record vanished")?;
    for t in tasks {
        e.tasks.push(t.task_id.value.clone());
        let mut st = agent_status(
            t.task_id.as_str(),
            TaskState::TaskStaging,
            agent,
            Some(exec),
            None,
            "launch accepted",
            false,
        );
        st.source = Some(StatusSource::SourceMaster);
        plan.rec.tasks.insert(
            t.task_id.value.clone(),
            TaskRecord {
                framework_id: fw.to_owned(),
                executor_id: exec.to_owned(),
                name: t.name.clone(),
                resources: t.resources.clone(),
                latest: st,
                pending: Vec::new(),
                acked: Vec::new(),
            },
        );
    }
    Ok(())
}

/// Removes the directories of destroyed volumes and makes those of created ones (after the
/// state is durable; failures are logged).
fn apply_volume_dirs(created: &[PathBuf], destroyed: &[PathBuf]) {
    for p in destroyed {
        info!(path = %p.display(), "destroying volume");
        if let Err(e) = fs::remove_dir_all(p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            error!(path = %p.display(), error = %e, "cannot remove the volume directory");
        }
    }
    for p in created {
        if let Err(e) = mkdirs(p) {
            error!(error = %e, "cannot create the volume directory");
        }
    }
}
