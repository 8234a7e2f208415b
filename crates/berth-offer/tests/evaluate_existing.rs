//! Existing-pod evaluation: relaunch on previous reservations, grow/shrink, release, running
//! executors, resource-set siblings, and the switch back to new-pod mode.

use crate::common;

use berth_mesos::{
    FrameworkId, Label, Offer, OfferId, Operation, Resource, TaskId, TaskInfo, TaskState,
    TaskStatus,
};
use berth_offer::{
    Evaluation, ExecutorResources, PlacementIndex, PodInstanceRequirement, PodMode, PodState,
    RecoveryType, SequentialIds, ServiceContext, evaluate, remainder,
};
use berth_spec::{PodSpec, ServiceSpec, StringMap, VolumeType};
use common::*;

struct Fx {
    svc: ServiceSpec,
    fw: FrameworkId,
    params: StringMap,
}

impl Fx {
    fn new(pods: Vec<PodSpec>) -> Self {
        Self {
            svc: service(pods),
            fw: FrameworkId::new("fw-1"),
            params: StringMap::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        pod_type: &str,
        tasks: &[&str],
        recovery: RecoveryType,
        stored: &[TaskInfo],
        statuses: &[(String, TaskStatus)],
        offer: &Offer,
        ids: &mut SequentialIds,
    ) -> Evaluation {
        let ctx = ServiceContext {
            service: &self.svc,
            framework_id: &self.fw,
            target_config_id: "cfg-1",
            api_host: "api",
            api_port: 80,
            executor_resources: ExecutorResources::default(),
            local_region: None,
        };
        let req = PodInstanceRequirement {
            pod: self.svc.pod(pod_type).unwrap(),
            index: 0,
            tasks_to_launch: tasks.iter().map(|t| (*t).to_owned()).collect(),
            recovery,
            parameters: &self.params,
        };
        let state = PodState {
            task_infos: stored,
            statuses,
        };
        evaluate(&req, &ctx, &state, &PlacementIndex::new(), offer, ids)
    }
}

fn hello_pod(cpus: f64, mem: f64) -> PodSpec {
    pod(
        "hello",
        vec![task(
            "server",
            set(
                "server-resource-set",
                vec![
                    scalar("cpus", cpus),
                    scalar("mem", mem),
                    port("http", 8080, None),
                    port("admin", 0, Some("ADMIN_PORT")),
                ],
                vec![volume(VolumeType::Root, "data", 25)],
            ),
        )],
    )
}

fn first_offer() -> Offer {
    offer(
        "o-1",
        "h1",
        vec![
            Resource::scalar("cpus", 4.0),
            Resource::scalar("mem", 4096.0),
            Resource::scalar("disk", 10_000.0),
            Resource::ranges("ports", vec![r(8080, 8080), r(31000, 31100)]),
        ],
    )
}

fn status(task: &str, state: TaskState) -> (String, TaskStatus) {
    (
        task.to_owned(),
        TaskStatus {
            task_id: TaskId::new(format!("x__{task}__1")),
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
        },
    )
}

fn env(t: &TaskInfo, key: &str) -> Option<String> {
    t.command
        .as_ref()?
        .environment
        .as_ref()?
        .get(key)
        .map(str::to_owned)
}

fn find<'a>(res: &'a [Resource], name: &str) -> &'a Resource {
    res.iter()
        .find(|r| r.name == name && r.disk.as_ref().is_none_or(|d| d.volume.is_none()))
        .unwrap()
}

/// Deploys hello-0 and returns the stored TaskInfos.
fn deployed(fx: &Fx, ids: &mut SequentialIds) -> Vec<TaskInfo> {
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &[],
        &[],
        &first_offer(),
        ids,
    );
    assert!(ev.passed());
    assert_eq!(ev.task_infos[0].resources.len(), 5);
    ev.task_infos
}

/// hello-0's server failed: its relaunch (transient recovery) on `o`, which must pass.
fn relaunch_after_failure(
    fx: &Fx,
    stored: &[TaskInfo],
    o: &Offer,
    ids: &mut SequentialIds,
) -> Evaluation {
    let statuses = [status("hello-0-server", TaskState::TaskFailed)];
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::Transient,
        stored,
        &statuses,
        o,
        ids,
    );
    assert!(ev.passed(), "{}", ev.render(2, &o.id, "hello-0:[server]"));
    ev
}

#[test]
fn relaunch_in_place_reuses_every_reservation_and_the_dynamic_port() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    let stored = deployed(&fx, &mut ids);
    let before = ids.issued();
    // The agent now also offers lower unreserved ports: the dynamic port must not move.
    let o = reoffer(
        "o-2",
        "h1",
        &stored,
        vec![
            Resource::ranges("ports", vec![r(30000, 30100)]),
            Resource::scalar("cpus", 1.0),
        ],
    );
    let ev = relaunch_after_failure(&fx, &stored, &o, &mut ids);
    assert_eq!(ev.mode, PodMode::Existing);
    assert_eq!(op_types(&ev.operations), ["LAUNCH_GROUP"]);
    let t = &ev.task_infos[0];
    assert_eq!(ev.launched()[0].task_id, t.task_id);
    assert_eq!(
        t.resources, stored[0].resources,
        "same resources, same resource ids"
    );
    assert_eq!(env(t, "ADMIN_PORT").as_deref(), Some("31000"));
    assert_ne!(t.task_id, stored[0].task_id);
    let old_exec = stored[0].executor.as_ref().unwrap();
    let new_exec = t.executor.as_ref().unwrap();
    assert_ne!(
        new_exec.executor_id, old_exec.executor_id,
        "a relaunched executor gets a new id"
    );
    assert_eq!(new_exec.resources, old_exec.resources);
    assert_eq!(ids.issued() - before, 2, "one executor id and one task id");
    let reasons: Vec<&str> = ev
        .outcome
        .children
        .iter()
        .map(|c| c.reason.as_str())
        .collect();
    let admin_id = stored[0]
        .resources
        .iter()
        .find(|r| r.ranges.as_ref().is_some_and(|x| x.range[0].begin == 31000))
        .unwrap()
        .resource_id()
        .unwrap();
    assert!(reasons.contains(&format!("Offer contains previously reserved port 31000 for 'admin' with resourceId: '{admin_id}'").as_str()), "{reasons:#?}");
    assert!(reasons[0].starts_with("No task of pod hello-0 is running; its executor is relaunched with a new id (was 'hello-world__hello__"));
}

#[test]
fn relaunch_requires_the_previous_reservations() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    let stored = deployed(&fx, &mut ids);
    let cpus_id = find(&stored[0].resources, "cpus")
        .resource_id()
        .unwrap()
        .to_owned();
    let mut o = reoffer("o-2", "h1", &stored, big_agent());
    o.resources
        .retain(|r| r.resource_id() != Some(cpus_id.as_str()));
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::Transient,
        &stored,
        &[],
        &o,
        &mut ids,
    );
    assert!(!ev.passed());
    let failed: Vec<&str> = ev
        .outcome
        .children
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.reason.as_str())
        .collect();
    assert_eq!(
        failed,
        [format!("Offer lacks previously reserved 'cpus' with resourceId: '{cpus_id}'").as_str()]
    );
    // Another agent cannot serve a relaunch in place at all.
    let elsewhere = offer("o-3", "h2", big_agent());
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::Transient,
        &stored,
        &[],
        &elsewhere,
        &mut ids,
    );
    assert_eq!(
        ev.failed_stage_count().0,
        3 + 2 + 2 + 1,
        "executor x3, ports x2, cpus, mem, volume"
    );
}

#[test]
fn spec_changes_grow_shrink_release_and_add_reservations() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    let stored = deployed(&fx, &mut ids);
    // New target: more cpus, less mem, no more http port, gpus added.
    let mut p = hello_pod(1.0, 128.0);
    let specs = &mut p.task_specs[0].resource_set.resource_specifications;
    specs.retain(|s| !matches!(s, berth_spec::ResourceSpec::Port(ps) if ps.port_name == "http"));
    specs.push(scalar("gpus", 1.0));
    let fx2 = Fx::new(vec![p]);
    let o = reoffer(
        "o-2",
        "h1",
        &stored,
        vec![Resource::scalar("cpus", 2.0), Resource::scalar("gpus", 1.0)],
    );
    let ev = fx2.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &stored,
        &[],
        &o,
        &mut ids,
    );
    assert!(ev.passed(), "{}", ev.render(2, &o.id, "hello-0:[server]"));
    assert_eq!(
        op_types(&ev.operations),
        ["UNRESERVE", "RESERVE", "LAUNCH_GROUP"]
    );

    let old = &stored[0].resources;
    let http = old
        .iter()
        .find(|r| r.ranges.as_ref().is_some_and(|x| x.range[0].begin == 8080))
        .unwrap();
    let unres = unreserved_in(&ev.operations);
    assert_eq!(unres.len(), 2);
    assert_eq!(&unres[0], http, "the port that left the spec");
    assert_eq!(unres[1].name, "mem");
    assert_eq!(unres[1].scalar_value(), 128.0, "the excess memory");
    assert_eq!(
        unres[1].reservations,
        find(old, "mem").reservations,
        "same reservation labels"
    );

    let res = reserved_in(&ev.operations);
    assert_eq!(res.len(), 2);
    assert_eq!(res[0].name, "cpus");
    assert_eq!(res[0].scalar_value(), 0.5, "the difference");
    assert_eq!(res[0].reservations, find(old, "cpus").reservations);
    assert_eq!(res[1].name, "gpus");
    assert!(res[1].resource_id().is_some());

    let t = &ev.launched()[0].resources;
    assert_eq!(find(t, "cpus").scalar_value(), 1.0);
    assert_eq!(
        find(t, "cpus").resource_id(),
        find(old, "cpus").resource_id()
    );
    assert_eq!(find(t, "mem").scalar_value(), 128.0);
    assert_eq!(find(t, "gpus").scalar_value(), 1.0);
    assert_eq!(t.iter().filter(|r| r.name == "ports").count(), 1);

    let stage_reasons: Vec<&str> = ev
        .outcome
        .children
        .iter()
        .map(|c| c.reason.as_str())
        .collect();
    let cpus_id = find(old, "cpus").resource_id().unwrap();
    assert!(stage_reasons.contains(&format!("Offer contains previously reserved 'cpus' with resourceId: '{cpus_id}' and sufficient unreserved 'cpus' with role '*' to grow it from 0.5 to 1.0: requested 0.5, offered 2.0").as_str()), "{stage_reasons:#?}");

    // Without unreserved cpus on the agent the grow fails, naming the amounts.
    let o = reoffer("o-3", "h1", &stored, vec![Resource::scalar("gpus", 1.0)]);
    let ev = fx2.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &stored,
        &[],
        &o,
        &mut ids,
    );
    assert!(!ev.passed());
    let failed: Vec<&str> = ev
        .outcome
        .children
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.reason.as_str())
        .collect();
    assert_eq!(failed, [format!("Offer contains previously reserved 'cpus' with resourceId: '{cpus_id}' but lacks sufficient unreserved 'cpus' with role '*' to grow it from 0.5 to 1.0: requested 0.5, offered 0.0").as_str()]);
}

#[test]
fn volumes_leaving_the_spec_are_destroyed_before_unreserved() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    let stored = deployed(&fx, &mut ids);
    let mut p = hello_pod(0.5, 256.0);
    p.task_specs[0].resource_set.volume_specifications.clear();
    let fx2 = Fx::new(vec![p]);
    let o = reoffer("o-2", "h1", &stored, vec![]);
    let ev = fx2.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &stored,
        &[],
        &o,
        &mut ids,
    );
    assert!(ev.passed());
    assert_eq!(
        op_types(&ev.operations),
        ["DESTROY", "UNRESERVE", "LAUNCH_GROUP"]
    );
    let Operation::Destroy { destroy } = &ev.operations[0] else {
        unreachable!()
    };
    assert!(destroy.volumes[0].persistence_id().is_some());
    let unres = unreserved_in(&ev.operations);
    assert!(
        unres[0].disk.is_none(),
        "unreserved as plain disk once destroyed"
    );
    assert_eq!(unres[0].resource_id(), destroy.volumes[0].resource_id());
}

fn multi_pod() -> PodSpec {
    let shared = set(
        "shared",
        vec![scalar("cpus", 0.2)],
        vec![volume(VolumeType::Root, "shared-data", 10)],
    );
    pod(
        "multi",
        vec![
            task(
                "first",
                set("first-resource-set", vec![scalar("cpus", 0.1)], vec![]),
            ),
            task("second", shared.clone()),
            task("third", shared),
        ],
    )
}

#[test]
fn running_executor_must_be_in_the_offer_and_siblings_are_rewritten() {
    let fx = Fx::new(vec![multi_pod()]);
    let mut ids = SequentialIds::new();
    let first = fx.eval(
        "multi",
        &["first"],
        RecoveryType::None,
        &[],
        &[],
        &offer("o-1", "h1", big_agent()),
        &mut ids,
    );
    assert!(first.passed());
    let stored = first.task_infos.clone();
    let exec_id = stored[0].executor.as_ref().unwrap().executor_id.clone();
    let running = [status("multi-0-first", TaskState::TaskRunning)];

    // The executor runs: its resources are in use (not offered); the offer must name it.
    let mut o = reoffer("o-2", "h1", &stored[1..], vec![]);
    let ev = fx.eval(
        "multi",
        &["second"],
        RecoveryType::None,
        &stored,
        &running,
        &o,
        &mut ids,
    );
    assert!(!ev.passed());
    assert_eq!(ev.mode, PodMode::Existing);
    assert_eq!(
        ev.outcome.children[0].reason,
        format!(
            "Offer does not contain the needed Executor ID '{exec_id}' (multi-0-first is TASK_RUNNING)"
        )
    );
    o = with_executor(o, &exec_id);
    let before = ids.issued();
    let ev = fx.eval(
        "multi",
        &["second"],
        RecoveryType::None,
        &stored,
        &running,
        &o,
        &mut ids,
    );
    assert!(ev.passed(), "{}", ev.render(2, &o.id, "multi-0:[second]"));
    assert_eq!(ids.issued() - before, 1, "only the task id");
    assert_eq!(op_types(&ev.operations), ["LAUNCH_GROUP"]);
    assert_eq!(ev.launched().len(), 1);
    assert_eq!(
        ev.task_infos[0].executor.as_ref().unwrap().executor_id,
        exec_id
    );
    let Operation::LaunchGroup { launch_group } = &ev.operations[0] else {
        unreachable!()
    };
    assert_eq!(launch_group.executor.executor_id, exec_id);
    // The sibling sharing the set is stored again, rewritten, still not launched.
    let names: Vec<_> = ev.task_infos.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["multi-0-second", "multi-0-third"]);
    let third = &ev.task_infos[1];
    assert!(third.task_id.as_str().is_empty());
    assert_eq!(third.resources, ev.launched()[0].resources);
    assert_eq!(third.resources, stored[2].resources);
    let last = ev.outcome.children.last().unwrap();
    assert_eq!(
        last.reason,
        "Updated the stored TaskInfo of multi-0-third with its resource set's new resources (not launched)"
    );
}

#[test]
fn permanent_recovery_and_permanently_failed_pods_start_afresh() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    let stored = deployed(&fx, &mut ids);
    let old_ids: Vec<String> = stored[0]
        .resources
        .iter()
        .map(|r| r.resource_id().unwrap().to_owned())
        .collect();
    let elsewhere = offer("o-2", "h2", first_offer().resources);
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::Permanent,
        &stored,
        &[],
        &elsewhere,
        &mut ids,
    );
    assert!(ev.passed());
    assert_eq!(ev.mode, PodMode::New);
    assert!(
        ev.launched()[0]
            .resources
            .iter()
            .all(|r| !old_ids.contains(&r.resource_id().unwrap().to_owned()))
    );
    assert_eq!(ev.launched()[0].agent_id.as_str(), "agent-h2");

    let mut failed = stored.clone();
    failed[0].labels.labels.push(Label {
        key: "permanently-failed".into(),
        value: "true".into(),
    });
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::Transient,
        &failed,
        &[],
        &elsewhere,
        &mut ids,
    );
    assert_eq!(ev.mode, PodMode::New);
    assert!(ev.passed());
    assert!(ev.launched()[0].labels.get("permanently-failed").is_none());
}

#[test]
fn offer_id_is_rendered() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &[],
        &[],
        &first_offer(),
        &mut SequentialIds::new(),
    );
    assert!(
        ev.render(1, &OfferId::new("abc"), "hello-0:[server]")
            .starts_with("Offer 1, abc: passed all")
    );
}

#[test]
fn the_remainder_of_an_accepted_offer_is_what_the_launch_left_free() {
    let fx = Fx::new(vec![hello_pod(0.5, 256.0)]);
    let mut ids = SequentialIds::new();
    // A new pod: its reservations (executor and task, volume included) leave the unreserved
    // pool, and its ports leave the ranges.
    let o = first_offer();
    let ev = fx.eval(
        "hello",
        &["server"],
        RecoveryType::None,
        &[],
        &[],
        &o,
        &mut ids,
    );
    assert!(ev.passed());
    let left = remainder(&o, &ev.operations);
    let scalar = |name: &str| {
        left.resources
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.scalar.as_ref())
            .map(|s| s.value)
    };
    let exec = ExecutorResources::default();
    assert_eq!(scalar("cpus"), Some(4.0 - 0.5 - exec.cpus));
    assert_eq!(scalar("mem"), Some(4096.0 - 256.0 - exec.mem));
    assert_eq!(scalar("disk"), Some(10_000.0 - 25.0 - exec.disk));
    let ports = left
        .resources
        .iter()
        .find(|r| r.name == "ports")
        .and_then(|r| r.ranges.as_ref())
        .map(|r| r.range.clone());
    assert_eq!(ports, Some(vec![r(31001, 31100)]), "8080 and 31000 taken");
    assert!(left.resources.iter().all(|r| r.resource_id().is_none()));
    assert_eq!(o.resources.len(), 4, "the offer itself is unchanged");

    // A relaunch in place uses the pod's own reservations: they leave by id, the agent's
    // unreserved resources stay as offered.
    let stored = ev.task_infos;
    let o = reoffer("o-2", "h1", &stored, vec![Resource::scalar("cpus", 1.0)]);
    let ev = relaunch_after_failure(&fx, &stored, &o, &mut ids);
    let left = remainder(&o, &ev.operations);
    assert_eq!(left.resources, vec![Resource::scalar("cpus", 1.0)]);
}
