//! Building plans from a service spec: the default deploy plan and plans written in YAML.
//!
//! - No `plans` section: a serial `deploy` plan with one serial phase per pod type (named
//!   after it) and one step per instance launching all of the pod's tasks.
//! - A YAML plan: one phase per entry; without `steps`, one step per instance with all
//!   tasks; with `steps`, per instance the listed task groups (the entry for that index, or
//!   `default`), one step each. A serial phase orders them instance by instance
//!   (`pod-0` groups, then `pod-1` groups, …); a parallel phase runs instances in parallel but
//!   the groups of one instance in order (dependency strategy). Canary strategies wrap these.
//! - An `update` plan replaces `deploy` (keeping the name `deploy`) once a deployment has
//!   completed before.

use berth_spec::{
    PhaseSpec, PhaseStrategy, PlanSpec, PlanStrategy, PodSpec, ServiceSpec, StepsKey,
};

use crate::element::{ElementId, Phase, Plan, PodLaunch, RecoveryType, Step, Strategy, Work};
use crate::ids::IdGenerator;

/// Name of the deploy plan.
pub const DEPLOY: &str = "deploy";
/// Name of the optional update plan (replaces deploy after the first deployment).
pub const UPDATE: &str = "update";

/// The deploy plan for `spec`. `deployed_before` tells whether a deployment already
/// completed once (then a YAML `update` plan, if any, is used instead of `deploy`).
pub fn deploy_plan(spec: &ServiceSpec, deployed_before: bool, ids: &mut dyn IdGenerator) -> Plan {
    let yaml = if deployed_before {
        spec.plan(UPDATE).or_else(|| spec.plan(DEPLOY))
    } else {
        spec.plan(DEPLOY)
    };
    match yaml {
        Some(p) => yaml_plan(DEPLOY, p, spec, ids),
        None => default_deploy_plan(spec, ids),
    }
}

/// Plans of the `plans` section other than `deploy` and `update`, in the order written.
pub fn custom_plans(spec: &ServiceSpec, ids: &mut dyn IdGenerator) -> Vec<Plan> {
    spec.plans
        .iter()
        .filter(|p| p.name != DEPLOY && p.name != UPDATE)
        .map(|p| yaml_plan(&p.name, p, spec, ids))
        .collect()
}

fn default_deploy_plan(spec: &ServiceSpec, ids: &mut dyn IdGenerator) -> Plan {
    let phases = spec
        .pod_specs
        .iter()
        .map(|pod| Phase {
            id: new_id(ids),
            name: pod.pod_type.clone(),
            strategy: Strategy::Serial,
            steps: (0..pod.count)
                .map(|i| launch_step(pod, i, all_tasks(pod), ids))
                .collect(),
        })
        .collect();
    Plan {
        id: new_id(ids),
        name: DEPLOY.to_owned(),
        strategy: Strategy::Serial,
        phases,
    }
}

/// A plan from its YAML spec, named `name`.
pub fn yaml_plan(
    name: &str,
    plan: &PlanSpec,
    spec: &ServiceSpec,
    ids: &mut dyn IdGenerator,
) -> Plan {
    let phases = plan
        .phases
        .iter()
        .map(|phase| yaml_phase(phase, spec, ids))
        .collect();
    Plan {
        id: new_id(ids),
        name: name.to_owned(),
        strategy: match plan.strategy {
            PlanStrategy::Serial => Strategy::Serial,
            PlanStrategy::Parallel => Strategy::Parallel,
        },
        phases,
    }
}

fn yaml_phase(phase: &PhaseSpec, spec: &ServiceSpec, ids: &mut dyn IdGenerator) -> Phase {
    let Some(pod) = spec.pod(&phase.pod) else {
        // The spec validator rejects this; keep an empty phase rather than failing here.
        return Phase {
            id: new_id(ids),
            name: phase.name.clone(),
            strategy: Strategy::Serial,
            steps: Vec::new(),
        };
    };
    // Steps grouped per instance, in order.
    let mut per_instance: Vec<Vec<Vec<String>>> = Vec::new();
    for index in 0..pod.count {
        let groups = match &phase.steps {
            None => vec![all_tasks(pod)],
            Some(entries) => entries
                .iter()
                .find(|e| e.key == StepsKey::Index(index))
                .or_else(|| entries.iter().find(|e| e.key == StepsKey::Default))
                .map(|e| e.tasks.clone())
                .unwrap_or_default(),
        };
        per_instance.push(groups);
    }
    let mut steps = Vec::new();
    let mut deps: Vec<Vec<usize>> = Vec::new();
    let multi_step = per_instance.iter().any(|g| g.len() > 1);
    for (index, groups) in (0u32..).zip(per_instance) {
        let mut previous: Option<usize> = None;
        for tasks in groups {
            deps.push(previous.into_iter().collect());
            previous = Some(steps.len());
            steps.push(launch_step(pod, index, order_like_spec(pod, tasks), ids));
        }
    }
    // Kept for the plan's life, one per pod instance: no room left over from growing.
    steps.shrink_to_fit();
    let parallel = if multi_step {
        Strategy::Dependency(deps)
    } else {
        Strategy::Parallel
    };
    let strategy = match phase.strategy {
        PhaseStrategy::Serial => Strategy::Serial,
        PhaseStrategy::Parallel => parallel,
        PhaseStrategy::SerialCanary => Strategy::Canary(Box::new(Strategy::Serial)),
        PhaseStrategy::ParallelCanary => Strategy::Canary(Box::new(parallel)),
    };
    Phase {
        id: new_id(ids),
        name: phase.name.clone(),
        strategy,
        steps,
    }
}

/// Keeps the order the operator wrote for a group; only drops names the pod does not have.
fn order_like_spec(pod: &PodSpec, tasks: Vec<String>) -> Vec<String> {
    tasks
        .into_iter()
        .filter(|t| pod.task(t).is_some())
        .collect()
}

fn all_tasks(pod: &PodSpec) -> Vec<String> {
    pod.task_specs.iter().map(|t| t.name.clone()).collect()
}

fn launch_step(pod: &PodSpec, index: u32, tasks: Vec<String>, ids: &mut dyn IdGenerator) -> Step {
    let launch = PodLaunch {
        pod_type: pod.pod_type.clone(),
        index,
        tasks,
        recovery: RecoveryType::None,
        config_id: None,
    };
    Step::new(new_id(ids), launch.step_name(), Work::Launch(launch))
}

pub(crate) fn new_id(ids: &mut dyn IdGenerator) -> ElementId {
    ElementId(ids.uuid())
}
