//! Builders for plan tests: small specs, TaskInfos and statuses.
#![allow(dead_code)]

use berth_mesos::{
    AgentId, CheckCommand, CheckInfo, CheckStatusInfo, CommandCheckStatus, CommandInfo, Labels,
    TaskId, TaskInfo, TaskState, TaskStatus, task_labels,
};
use berth_plan::{
    BackoffPolicy, CommandError, CommandOutcome, CommandTarget, PlanCommand, PlanContext, PlanSet,
    SequentialIds, Status, TaskSource, TaskTable, Work,
};
use berth_spec::{
    CommandSpec, Goal, PhaseSpec, PhaseStrategy, PlanSpec, PlanStrategy, PodSpec, ResourceSet,
    ServiceSpec, StepsEntry, StepsKey, TaskSpec,
};

pub const CONFIG: &str = "11111111-1111-4111-8111-111111111111";
pub const OLD_CONFIG: &str = "22222222-2222-4222-8222-222222222222";

pub fn task(name: &str, goal: Goal, essential: bool) -> TaskSpec {
    TaskSpec {
        name: name.to_owned(),
        goal,
        essential,
        resource_set: ResourceSet {
            id: format!("{name}-resource-set"),
            resource_specifications: Vec::new(),
            volume_specifications: Vec::new(),
            resource_limits: None,
        },
        command_spec: CommandSpec {
            value: "sleep 1000".to_owned(),
            environment: Default::default(),
        },
        health_check_spec: None,
        readiness_check_spec: None,
        config_files: Vec::new(),
        discovery_spec: None,
        task_labels: Default::default(),
        kill_grace_period: 0,
        transport_encryption: Vec::new(),
        ipc_mode: None,
        shm_size: None,
    }
}

pub fn pod(name: &str, count: u32, tasks: Vec<TaskSpec>) -> PodSpec {
    PodSpec {
        pod_type: name.to_owned(),
        user: "root".to_owned(),
        count,
        allow_decommission: true,
        image: None,
        networks: Vec::new(),
        rlimits: Vec::new(),
        uris: Vec::new(),
        volumes: Vec::new(),
        pre_reserved_role: "*".to_owned(),
        secrets: Vec::new(),
        placement_rule: None,
        task_specs: tasks,
        share_pid_namespace: false,
        host_volumes: Vec::new(),
        external_volumes: Vec::new(),
        seccomp_unconfined: false,
        seccomp_profile_name: None,
        ipc_mode: None,
        shm_size: None,
    }
}

pub fn service(pods: Vec<PodSpec>) -> ServiceSpec {
    ServiceSpec {
        name: "hello-world".to_owned(),
        role: "hello-world-role".to_owned(),
        principal: "hello-world-principal".to_owned(),
        web_url: None,
        zookeeper: "master.mesos:2181".to_owned(),
        user: "root".to_owned(),
        goal: Goal::Running,
        region: None,
        replacement_failure_policy: None,
        pod_specs: pods,
        plans: Vec::new(),
    }
}

/// hello ×1 and world ×2, one RUNNING task `server` each.
pub fn hello_world() -> ServiceSpec {
    service(vec![
        pod("hello", 1, vec![task("server", Goal::Running, true)]),
        pod("world", 2, vec![task("server", Goal::Running, true)]),
    ])
}

pub fn phase(
    name: &str,
    pod: &str,
    strategy: PhaseStrategy,
    steps: Option<Vec<StepsEntry>>,
) -> PhaseSpec {
    PhaseSpec {
        name: name.to_owned(),
        pod: pod.to_owned(),
        strategy,
        steps,
    }
}

pub fn plan(name: &str, strategy: PlanStrategy, phases: Vec<PhaseSpec>) -> PlanSpec {
    PlanSpec {
        name: name.to_owned(),
        strategy,
        phases,
    }
}

pub fn default_steps(groups: &[&[&str]]) -> Option<Vec<StepsEntry>> {
    Some(vec![StepsEntry {
        key: StepsKey::Default,
        tasks: groups
            .iter()
            .map(|g| g.iter().map(|t| (*t).to_owned()).collect())
            .collect(),
    }])
}

pub fn info(
    pod: &str,
    index: u32,
    task: &str,
    id: &str,
    config: &str,
    goal: Goal,
    check: bool,
) -> TaskInfo {
    let mut labels = Labels::default();
    labels.set(task_labels::TARGET_CONFIGURATION, config);
    labels.set(task_labels::TASK_TYPE, pod);
    labels.set(task_labels::INDEX, index.to_string());
    labels.set(task_labels::GOAL_STATE, goal.as_str());
    TaskInfo {
        name: format!("{pod}-{index}-{task}"),
        task_id: TaskId::new(id),
        agent_id: AgentId::new("agent-a"),
        resources: Vec::new(),
        executor: None,
        command: Some(Default::default()),
        health_check: None,
        check: check
            .then(|| CheckInfo {
                kind: "COMMAND".to_owned(),
                command: CheckCommand {
                    command: CommandInfo::default(),
                },
                delay_seconds: 0.0,
                interval_seconds: 5.0,
                timeout_seconds: 10.0,
            })
            .map(std::sync::Arc::new),
        kill_policy: None,
        labels,
        discovery: None,
        container: None,
    }
}

pub fn status(id: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId::new(id),
        state,
        message: None,
        source: None,
        reason: None,
        agent_id: None,
        executor_id: None,
        timestamp: 0.0,
        uuid: None,
        healthy: None,
        check_status: None,
    }
}

pub fn ready(id: &str) -> TaskStatus {
    TaskStatus {
        check_status: Some(CheckStatusInfo {
            kind: "COMMAND".to_owned(),
            command: Some(CommandCheckStatus { exit_code: Some(0) }),
        }),
        ..status(id, TaskState::TaskRunning)
    }
}

/// A task table with tasks in the given states, all on `config`.
pub fn table(entries: &[(&str, u32, &str, &str, TaskState)], config: &str) -> TaskTable {
    let mut t = TaskTable::default();
    for (pod, index, task, id, state) in entries {
        t.put_info(info(pod, *index, task, id, config, Goal::Running, false));
        t.put_status(&format!("{pod}-{index}-{task}"), status(id, *state));
    }
    t
}

pub fn names(tasks: &dyn TaskSource) -> Vec<String> {
    let mut v = Vec::new();
    tasks.for_each_task(&mut |t| v.push(t.name().to_owned()));
    v
}

/// A tiny stand-in for the scheduler: launches candidates and feeds statuses back.
pub struct Driver {
    pub set: PlanSet,
    pub tasks: TaskTable,
    pub ids: SequentialIds,
    pub now: u64,
    pub launches: u32,
}

impl Driver {
    pub fn new(spec: &ServiceSpec, tasks: TaskTable) -> Self {
        Self::with(spec, tasks, BackoffPolicy::default(), false)
    }

    pub fn with(
        spec: &ServiceSpec,
        tasks: TaskTable,
        backoff: BackoffPolicy,
        deployed: bool,
    ) -> Self {
        let mut ids = SequentialIds::default();
        let set = PlanSet::new(
            &PlanContext {
                spec,
                target_config_id: CONFIG,
                tasks: &tasks,
                deployed_before: deployed,
                backoff,
                config_errors: Vec::new(),
            },
            &mut ids,
            1_000,
        );
        Driver {
            set,
            tasks,
            ids,
            now: 1_000,
            launches: 0,
        }
    }

    /// Launches every PENDING/PREPARED launch candidate; returns the step names launched.
    pub fn launch_all(&mut self) -> Vec<String> {
        let cands = self.set.candidates(&self.tasks, &mut self.ids, self.now);
        let mut launched = Vec::new();
        for c in cands {
            if !matches!(c.status, Status::Pending | Status::Prepared) {
                continue;
            }
            let Work::Launch(l) = c.work() else { continue };
            let mut ids = Vec::new();
            for t in &l.tasks {
                self.launches += 1;
                let id = format!("{}-{}-{t}__{}", l.pod_type, l.index, self.launches);
                let goal = self
                    .set
                    .spec()
                    .pod(&l.pod_type)
                    .and_then(|p| p.task(t))
                    .map_or(Goal::Running, |t| t.goal);
                let mut info = info(
                    &l.pod_type,
                    l.index,
                    t,
                    &id,
                    l.config_id.as_deref().unwrap_or(CONFIG),
                    goal,
                    false,
                );
                if let Some(old) = self.tasks.task(&info.name) {
                    info.labels = old.info.labels.clone();
                    info.labels.remove("permanently-failed");
                    info.labels.set(
                        "target_configuration",
                        l.config_id.as_deref().unwrap_or(CONFIG),
                    );
                }
                let name = info.name.clone();
                self.tasks.put_info(info);
                self.tasks
                    .put_status(&name, status(&id, TaskState::TaskStaging));
                ids.push((name, TaskId::new(&id)));
            }
            self.set.mark_launched(c.step_id(), &ids, self.now);
            launched.push(c.step_name().to_owned());
        }
        launched
    }

    /// Sends `state` for the current task id of `name`.
    pub fn send(&mut self, name: &str, state: TaskState) {
        let info = self.tasks.task(name).expect("task exists").info.clone();
        let st = if state == TaskState::TaskRunning {
            ready(&info.task_id.value)
        } else {
            status(&info.task_id.value, state)
        };
        self.tasks.put_status(name, st.clone());
        self.set.on_task_status(&info, &st, self.now);
    }

    pub fn run_all_launched(&mut self) {
        let names: Vec<String> = self
            .tasks
            .tasks
            .iter()
            .filter(|(_, t)| {
                t.status
                    .as_ref()
                    .is_some_and(|s| s.state == TaskState::TaskStaging)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            self.send(&n, TaskState::TaskRunning);
        }
    }

    pub fn view(&self, plan: &str) -> berth_plan::PlanView {
        let p = self.set.plan(plan).expect("plan exists");
        self.set.view(p, &self.tasks, self.now)
    }

    pub fn statuses(&self, plan: &str) -> Vec<(String, Status)> {
        self.view(plan)
            .phases
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| (s.name.clone(), s.status)))
            .collect()
    }

    pub fn cmd(
        &mut self,
        command: PlanCommand,
        plan: &str,
        phase: Option<&str>,
        step: Option<&str>,
    ) -> Result<CommandOutcome, CommandError> {
        let target = CommandTarget {
            plan: plan.to_owned(),
            phase: phase.map(str::to_owned),
            step: step.map(str::to_owned),
        };
        self.set.execute(&command, &target, &self.tasks, self.now)
    }
}
