//! Configuration updates: what changes is rolled out pod by pod, what is refused is reported
//! on the deploy plan, scale-down runs the decommission plan.

use std::path::Path;

use crate::json;
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::TaskInfo;
use berth_plan::Status;
use berth_scheduler::Request;
use berth_spec::{Env, ServiceSpec};
use berth_testing::{HarnessError, Simulation, load_package};

fn hello_world(options: &str) -> ServiceSpec {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-world");
    load_package(&dir, Some(options), &Env::default()).unwrap()
}

fn deployed() -> Simulation {
    let mut sim =
        Simulation::new(hello_world("{}"), SimAgentSpec::many(4, &["a", "b", "c"])).unwrap();
    sim.run_until_complete("deploy", 30).unwrap();
    sim
}

/// The stored TaskInfo of `task`.
fn stored<'a>(sim: &'a Simulation, task: &str) -> &'a TaskInfo {
    sim.core().store().task_info(task).unwrap()
}

fn task_id(sim: &Simulation, task: &str) -> String {
    stored(sim, task).task_id.value.clone()
}

fn cpus(sim: &Simulation, task: &str) -> f64 {
    stored(sim, task)
        .resources
        .iter()
        .filter(|r| r.name == "cpus")
        .map(berth_mesos::Resource::scalar_value)
        .sum()
}

#[test]
fn bumping_world_cpus_relaunches_only_world_pods() {
    let mut sim = deployed();
    let hello = task_id(&sim, "hello-0-server");
    let target_before = sim.core().target_id();
    sim.set_spec(hello_world(r#"{"world": {"cpus": 0.3}}"#));
    sim.restart().unwrap();
    assert_ne!(sim.core().target_id(), target_before);
    assert_eq!(
        sim.steps("deploy"),
        vec![
            ("hello-0:[server]".to_owned(), Status::Complete),
            ("world-0:[server]".to_owned(), Status::Pending),
            ("world-1:[server]".to_owned(), Status::Pending),
        ]
    );
    sim.run_until_complete("deploy", 30).unwrap();
    assert_eq!(
        task_id(&sim, "hello-0-server"),
        hello,
        "hello was relaunched"
    );
    assert_eq!(cpus(&sim, "world-0-server"), 0.3);
    assert_eq!(cpus(&sim, "world-1-server"), 0.3);
    let counts = sim.launch_counts();
    assert_eq!(counts["hello-0-server"], 1);
    assert_eq!(counts["world-0-server"], 2);
    assert_eq!(counts["world-1-server"], 2);
    // The configurations left are those of the history: the first install's (to roll back
    // to) and the target, which every task runs with.
    let configs = json(sim.request(Request::Configurations).unwrap());
    let history = json(sim.request(Request::ConfigHistory).unwrap());
    let mut kept: Vec<String> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    kept.sort();
    let mut configs: Vec<String> = serde_json::from_value(configs).unwrap();
    configs.sort();
    assert_eq!(configs, kept);
    assert_eq!(history[0]["id"], sim.core().target_id().to_string());
    assert_eq!(history[0]["how"], "restart");
    assert_eq!(history[0]["outcome"], "deployed");
    assert_eq!(history[1]["how"], "install");
    assert_eq!(sim.cluster.live_tasks().len(), 3);
}

#[test]
fn scaling_up_adds_pods_without_touching_the_others() {
    let mut sim = deployed();
    let before: Vec<String> = ["hello-0-server", "world-0-server", "world-1-server"]
        .iter()
        .map(|t| task_id(&sim, t))
        .collect();
    sim.set_spec(hello_world(r#"{"world": {"count": 3}}"#));
    sim.restart().unwrap();
    sim.run_until_complete("deploy", 30).unwrap();
    let after: Vec<String> = ["hello-0-server", "world-0-server", "world-1-server"]
        .iter()
        .map(|t| task_id(&sim, t))
        .collect();
    assert_eq!(before, after);
    assert_eq!(sim.launch_counts()["world-2-server"], 1);
    assert_eq!(sim.cluster.live_tasks().len(), 4);
}

#[test]
fn scaling_down_runs_the_decommission_plan() {
    let mut sim = deployed();
    let world1 = stored(&sim, "world-1-server").clone();
    let agent = world1.agent_id.value.clone();
    let reserved: Vec<String> = world1
        .resources
        .iter()
        .chain(world1.executor.iter().flat_map(|e| e.resources.iter()))
        .filter_map(|r| r.resource_id().map(str::to_owned))
        .collect();
    assert!(
        reserved
            .iter()
            .all(|r| sim.cluster.reservations(&agent).contains(r))
    );

    sim.set_spec(hello_world(r#"{"world": {"count": 1}}"#));
    sim.restart().unwrap();
    let plans = json(sim.request(Request::Plans).unwrap());
    assert_eq!(
        plans,
        serde_json::json!(["deploy", "recovery", "decommission", "backup"])
    );
    let steps: Vec<String> = sim
        .steps("decommission")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        steps.first().map(String::as_str),
        Some("kill-world-1-server")
    );
    assert_eq!(
        steps.last().map(String::as_str),
        Some("erase-world-1-server")
    );
    assert_eq!(steps.len(), 2 + reserved.len());
    sim.run_until_complete("decommission", 30).unwrap();
    // The task is gone, from the cluster and from the store; its reservations are released.
    assert!(sim.core().store().task_info("world-1-server").is_none());
    assert!(
        sim.cluster
            .live_tasks()
            .iter()
            .all(|(n, _, _)| n != "world-1-server")
    );
    let left = sim.cluster.reservations(&agent);
    for r in &reserved {
        assert!(!left.contains(r), "reservation {r} of world-1 not released");
    }
    assert_eq!(
        json(sim.request(Request::Pods).unwrap()),
        serde_json::json!(["hello-0", "world-0"])
    );
}

#[test]
fn a_refused_update_keeps_the_old_target_and_errors_the_deploy_plan() {
    let mut sim = deployed();
    let target = sim.core().target_id();
    let hello = task_id(&sim, "hello-0-server");
    // Volumes cannot change.
    sim.set_spec(hello_world(r#"{"hello": {"disk": 32}}"#));
    sim.restart().unwrap();
    assert_eq!(sim.core().target_id(), target);
    let reply = sim.request(Request::Plan("deploy".to_owned())).unwrap();
    assert_eq!(reply.status, 417);
    let plan = json(reply);
    assert_eq!(plan["status"], "ERROR");
    let errors = plan["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("Volumes must be equal")),
        "{errors:?}"
    );
    assert_eq!(
        sim.request(Request::Health { verbose: false })
            .unwrap()
            .status,
        500
    );
    for _ in 0..3 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    assert_eq!(
        task_id(&sim, "hello-0-server"),
        hello,
        "nothing is rolled out"
    );
    // Reverting the change clears the error.
    sim.set_spec(hello_world("{}"));
    sim.restart().unwrap();
    assert_eq!(
        sim.request(Request::Plan("deploy".to_owned()))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn a_fatal_update_stops_the_scheduler_before_it_writes() {
    let mut sim = deployed();
    sim.set_spec(hello_world(r#"{"service": {"user": "someone-else"}}"#));
    match sim.restart() {
        Err(HarnessError::Scheduler(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("Fatal: true") && text.contains("user"),
                "{text}"
            );
        }
        other => panic!("the scheduler started: {:?}", other.err()),
    }
}

#[test]
fn changing_only_the_placement_moves_nothing() {
    let mut sim = deployed();
    let before: Vec<(String, String)> = sim
        .cluster
        .live_tasks()
        .into_iter()
        .map(|(n, id, _)| (n, id))
        .collect();
    sim.set_spec(hello_world(
        r#"{"world": {"placement": "hostname:LIKE:agent-[0-9]"}}"#,
    ));
    sim.restart().unwrap();
    assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
    let after: Vec<(String, String)> = sim
        .cluster
        .live_tasks()
        .into_iter()
        .map(|(n, id, _)| (n, id))
        .collect();
    assert_eq!(before, after);
}

/// Found by the randomized fault simulation: a scale-down whose decommission released some
/// of the pod's reservations, then a scale-up before the pod was erased. The pod must start
/// afresh, not wait for reservations that are gone.
#[test]
fn scaling_back_up_during_a_decommission_starts_the_pod_afresh() {
    let mut sim = deployed();
    let old = stored(&sim, "world-1-server").clone();
    sim.set_spec(hello_world(r#"{"world": {"count": 1}}"#));
    sim.restart().unwrap();
    // Kill, then a few releases, but not all of them: offers come one agent at a time.
    for _ in 0..3 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    let agent = old.agent_id.value.clone();
    let left = sim.cluster.reservations(&agent);
    assert!(
        sim.steps("decommission")
            .iter()
            .any(|(_, s)| *s == Status::Complete),
        "the decommission did not start: {:?}",
        sim.steps("decommission")
    );
    sim.set_spec(hello_world("{}"));
    sim.restart().unwrap();
    for _ in 0..30 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
    assert_eq!(sim.plan_status("recovery"), Some(Status::Complete));
    let new = stored(&sim, "world-1-server");
    assert_ne!(new.task_id, old.task_id, "world-1 was not launched again");
    assert!(
        sim.cluster
            .live_tasks()
            .iter()
            .any(|(n, id, _)| n == "world-1-server" && *id == new.task_id.value),
        "world-1 does not run: {:?} (reservations left on {agent}: {left:?})",
        sim.cluster.live_tasks()
    );
    // It runs on reservations of its own, none of the released ones.
    let old_ids: Vec<&str> = old
        .resources
        .iter()
        .filter_map(|r| r.resource_id())
        .collect();
    assert!(
        new.resources
            .iter()
            .filter_map(|r| r.resource_id())
            .all(|id| !old_ids.contains(&id)),
        "world-1 relaunched on its old reservations"
    );
}
