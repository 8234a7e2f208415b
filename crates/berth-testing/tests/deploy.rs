//! Deploying hello-world on the simulated cluster, tick by tick, with scheduler restarts and
//! crashes at every point.

use crate::{Crash, rounds_with_a_crash};
use berth_cluster::Call;
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::{Operation, TaskState};
use berth_plan::Status;
use berth_scheduler::{Body, Request};
use berth_testing::{Simulation, hello_world};

fn agents() -> Vec<SimAgentSpec> {
    SimAgentSpec::many(3, &["a", "b", "c"])
}

#[test]
fn deploys_to_complete_tick_by_tick() {
    let mut sim = Simulation::new(hello_world().unwrap(), agents()).unwrap();
    sim.cluster.set_auto_run(false);
    // Registered, nothing to reconcile: ready at once.
    assert!(sim.is_ready());
    assert_eq!(sim.plan_status("deploy"), Some(Status::Pending));
    sim.expect_step("deploy", "hello-0:[server]", Status::Pending)
        .unwrap();

    // First offers: hello-0 launches on one of them.
    assert_eq!(sim.offers().unwrap(), 3);
    sim.expect_step("deploy", "hello-0:[server]", Status::Starting)
        .unwrap();
    sim.expect_step("deploy", "world-0:[server]", Status::Pending)
        .unwrap();
    let launches = sim.cluster.launches();
    assert_eq!(launches.len(), 1);
    assert_eq!(launches[0].name, "hello-0-server");
    assert!(
        launches[0]
            .task_id
            .value
            .starts_with("hello-world__hello-0-server__")
    );
    let accept = sim
        .sent
        .iter()
        .find_map(|c| match c {
            Call::Accept { operations, .. } => Some(operations.clone()),
            _ => None,
        })
        .unwrap();
    let kinds: Vec<&str> = accept
        .iter()
        .map(|o| match o {
            Operation::Reserve { .. } => "RESERVE",
            Operation::Create { .. } => "CREATE",
            Operation::LaunchGroup { .. } => "LAUNCH_GROUP",
            Operation::Unreserve { .. } => "UNRESERVE",
            Operation::Destroy { .. } => "DESTROY",
        })
        .collect();
    assert_eq!(kinds, vec!["RESERVE", "CREATE", "LAUNCH_GROUP"]);
    // The other two are kept back for world-0, which may launch once hello-0 is up.
    assert!(!sim.sent.iter().any(|c| matches!(c, Call::Decline { .. })));
    let metrics = crate::json(sim.request(Request::Metrics).unwrap());
    assert_eq!(metrics["offers_held"], 2, "{metrics}");

    // The task runs: hello has no readiness check, so RUNNING completes the step.
    sim.task_state("hello-0-server", TaskState::TaskRunning)
        .unwrap();
    sim.expect_step("deploy", "hello-0:[server]", Status::Complete)
        .unwrap();
    assert_eq!(sim.plan_status("deploy"), Some(Status::InProgress));

    // world-0: RUNNING without a passing readiness check is STARTED, not COMPLETE.
    sim.advance(5_000).unwrap();
    sim.offers().unwrap();
    sim.expect_step("deploy", "world-0:[server]", Status::Starting)
        .unwrap();
    sim.cluster.set_auto_run(true);
    sim.cluster
        .task_status("world-0-server", TaskState::TaskRunning)
        .unwrap();
    sim.pump().unwrap();
    sim.expect_step("deploy", "world-0:[server]", Status::Complete)
        .unwrap();

    sim.run_until_complete("deploy", 20).unwrap();
    assert_eq!(
        sim.steps("deploy"),
        vec![
            ("hello-0:[server]".to_owned(), Status::Complete),
            ("world-0:[server]".to_owned(), Status::Complete),
            ("world-1:[server]".to_owned(), Status::Complete),
        ]
    );
    // Idle: offers suppressed; every status acknowledged.
    assert!(sim.cluster.is_suppressed());
    assert_eq!(sim.cluster.unacknowledged(), 0);
    // hostname:UNIQUE keeps both worlds apart.
    let live = sim.cluster.live_tasks();
    let worlds: Vec<&str> = live
        .iter()
        .filter(|(n, _, _)| n.starts_with("world"))
        .map(|(_, _, a)| a.as_str())
        .collect();
    assert_eq!(worlds.len(), 2);
    assert_ne!(worlds[0], worlds[1]);
    // The health endpoint agrees.
    let reply = sim.request(Request::Health { verbose: false }).unwrap();
    assert_eq!(reply.status, 200);
}

#[test]
fn restarting_the_scheduler_at_every_tick_never_duplicates_a_launch() {
    for restart_at in 0..40 {
        let mut sim = Simulation::new(hello_world().unwrap(), agents()).unwrap();
        let mut tick = 0;
        for _ in 0..60 {
            if sim.plan_status("deploy") == Some(Status::Complete) {
                break;
            }
            sim.cluster.set_now(sim.now);
            sim.cluster.offer_round();
            while sim.step_one().unwrap() {
                tick += 1;
                if tick == restart_at || tick % 7 == restart_at % 7 {
                    sim.restart().unwrap();
                }
            }
            sim.advance(1_000).unwrap();
        }
        assert_eq!(
            sim.plan_status("deploy"),
            Some(Status::Complete),
            "restart at {restart_at}: {:?}",
            sim.steps("deploy")
        );
        for (name, n) in sim.launch_counts() {
            assert_eq!(n, 1, "restart at {restart_at}: {name} launched {n} times");
        }
        assert_eq!(sim.cluster.live_tasks().len(), 3);
    }
}

#[test]
fn a_crash_between_commit_and_send_is_recovered() {
    crash_everywhere(false);
}

#[test]
fn a_crash_before_the_writes_are_durable_is_recovered() {
    crash_everywhere(true);
}

fn crash_everywhere(before_flush: bool) {
    for crash_at in 1..30 {
        let mut sim = Simulation::new(hello_world().unwrap(), agents()).unwrap();
        let crash = if before_flush {
            Crash::BeforeFlush
        } else {
            Crash::AfterCommit
        };
        rounds_with_a_crash(&mut sim, 80, 5_000, crash_at, crash);
        assert_eq!(
            sim.plan_status("deploy"),
            Some(Status::Complete),
            "crash at {crash_at}: {:?}",
            sim.steps("deploy")
        );
        // Exactly one live copy of each task, and nothing the store does not know about.
        let live = sim.cluster.live_tasks();
        assert_eq!(live.len(), 3, "crash at {crash_at}: {live:?}");
        let reply = sim.request(Request::PodsStatus).unwrap();
        let Body::Json(json) = reply.body else {
            panic!("json")
        };
        let ids: Vec<String> = json["pods"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["instances"].as_array().unwrap().iter())
            .flat_map(|i| i["tasks"].as_array().unwrap().iter())
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        for (_, id, _) in &live {
            assert!(
                ids.contains(id),
                "crash at {crash_at}: live task {id} unknown to the store"
            );
        }
    }
}
