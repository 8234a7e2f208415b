//! Uninstall on the simulated cluster: the plan, what it leaves behind (nothing), crashes at
//! every tick, a crash between the teardown and the wipe, agents that are gone, reinstall.

use std::path::Path;
use std::sync::Arc;

use crate::{Crash, json, rounds_with_a_crash};
use berth_cluster::sim::SimAgentSpec;
use berth_plan::Status;
use berth_plan::commands::{CommandTarget, PlanCommand};
use berth_scheduler::{Request, SchedulerOptions};
use berth_spec::{Env, ServiceSpec};
use berth_state::{MemPersister, Persister, root_path};
use berth_testing::{Simulation, load_package};

fn hello_world() -> ServiceSpec {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-world");
    load_package(&dir, Some("{}"), &Env::default()).unwrap()
}

const AGENTS: [&str; 4] = ["agent-0", "agent-1", "agent-2", "agent-3"];

fn deployed(persister: Arc<MemPersister>) -> Simulation {
    let mut sim = Simulation::with(
        hello_world(),
        SimAgentSpec::many(4, &["a", "b", "c"]),
        SchedulerOptions::default(),
        persister,
    )
    .unwrap();
    sim.run_until_complete("deploy", 40).unwrap();
    sim
}

fn reservations(sim: &Simulation) -> Vec<String> {
    AGENTS
        .iter()
        .flat_map(|a| sim.cluster.reservations(a))
        .collect()
}

fn volumes(sim: &Simulation) -> Vec<String> {
    AGENTS.iter().flat_map(|a| sim.cluster.volumes(a)).collect()
}

/// Offers and ticks until the uninstall plan is complete (or `rounds` pass).
fn finish(sim: &mut Simulation, rounds: usize) {
    for _ in 0..rounds {
        if sim.plan_status("deploy") == Some(Status::Complete) {
            return;
        }
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
}

fn assert_nothing_left(sim: &Simulation, persister: &MemPersister, ctx: &str) {
    assert_eq!(
        sim.plan_status("deploy"),
        Some(Status::Complete),
        "{ctx}: {:?} reservations {:?} suppressed {} orphans {:?}",
        sim.steps("deploy"),
        reservations(sim),
        sim.cluster.is_suppressed(),
        sim.core()
            .store()
            .property("orphaned-reservations")
            .map(String::from_utf8_lossy)
    );
    assert!(sim.cluster.live_tasks().is_empty(), "{ctx}: live tasks");
    assert!(
        reservations(sim).is_empty(),
        "{ctx}: {:?}",
        reservations(sim)
    );
    assert!(volumes(sim).is_empty(), "{ctx}: {:?}", volumes(sim));
    let root = root_path("hello-world").unwrap();
    assert!(
        persister.subtree(&root).unwrap().is_empty(),
        "{ctx}: state left: {:?}",
        persister
            .subtree(&root)
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect::<Vec<_>>()
    );
}

#[test]
fn uninstall_plan_removes_everything() {
    let persister = Arc::new(MemPersister::new());
    let mut sim = deployed(persister.clone());
    assert!(!reservations(&sim).is_empty());
    let reply = sim.request(Request::Uninstall).unwrap();
    assert_eq!(reply.status, 200);
    assert!(
        json(reply)["message"]
            .as_str()
            .unwrap()
            .contains("Uninstalling service hello-world")
    );
    // No update or rollback starts while the uninstall runs.
    let mut changed = hello_world();
    changed.pod_specs[0].count += 1;
    let reply = sim
        .request(Request::Update(Box::new(changed), None))
        .unwrap();
    assert_eq!(reply.status, 409, "{reply:?}");
    let reply = sim.request(Request::Rollback(None)).unwrap();
    assert_eq!(reply.status, 409, "{reply:?}");
    // The plans: only the uninstall plan, named deploy.
    let plans = json(sim.request(Request::Plans).unwrap());
    assert_eq!(plans, serde_json::json!(["deploy"]));
    let plan = json(sim.request(Request::Plan("deploy".to_owned())).unwrap());
    let phases: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases[0], "kill-tasks");
    assert_eq!(*phases.last().unwrap(), "deregister-service");
    assert!(
        phases[1..phases.len() - 1]
            .iter()
            .all(|p| p.starts_with("unreserve-resources-")),
        "{phases:?}"
    );
    let kill_steps = plan["phases"][0]["steps"].as_array().unwrap();
    assert_eq!(kill_steps.len(), 3, "one per task");
    assert!(kill_steps.iter().all(|s| {
        s["name"]
            .as_str()
            .unwrap()
            .starts_with("kill-task-hello-world__")
    }));
    // A second uninstall request is already done.
    assert_eq!(sim.request(Request::Uninstall).unwrap().status, 208);

    finish(&mut sim, 30);
    assert_nothing_left(&sim, &persister, "uninstall");
    // Health says uninstalled; changes are refused.
    let health = sim.request(Request::Health { verbose: true }).unwrap();
    assert_eq!(health.status, 200);
    let refused = sim
        .request(Request::PodRestart("hello-0".to_owned()))
        .unwrap();
    assert_eq!(refused.status, 409);

    // Reinstall: a new scheduler over the same store starts from nothing.
    sim.restart().unwrap();
    sim.run_until_complete("deploy", 40).unwrap();
    assert_eq!(sim.cluster.live_tasks().len(), 3);
    let plans = json(sim.request(Request::Plans).unwrap());
    assert!(plans.as_array().unwrap().len() > 1, "{plans}");
}

#[test]
fn uninstall_survives_kill_9_at_every_tick() {
    for crash_at in 1..60 {
        let persister = Arc::new(MemPersister::new());
        let mut sim = deployed(persister.clone());
        sim.request(Request::Uninstall).unwrap();
        rounds_with_a_crash(&mut sim, 40, 1_000, crash_at, Crash::Alternating);
        assert_nothing_left(&sim, &persister, &format!("crash at {crash_at}"));
    }
}

#[test]
fn restart_during_uninstall_continues_it() {
    let persister = Arc::new(MemPersister::new());
    let mut sim = deployed(persister.clone());
    sim.request(Request::Uninstall).unwrap();
    // Kill the scheduler right away: the `uninstalling` property brings it back uninstalling.
    sim.restart().unwrap();
    assert_eq!(
        json(sim.request(Request::Plans).unwrap()),
        serde_json::json!(["deploy"])
    );
    finish(&mut sim, 30);
    assert_nothing_left(&sim, &persister, "restart");
}

#[test]
fn crash_between_teardown_and_wipe() {
    let persister = Arc::new(MemPersister::new());
    let mut sim = deployed(persister.clone());
    sim.crash_before_wipe = true;
    sim.request(Request::Uninstall).unwrap();
    for _ in 0..30 {
        if sim.offers().and_then(|_| sim.advance(1_000)).is_err() {
            break; // the scheduler died right after the teardown
        }
    }
    assert!(sim.cluster.live_tasks().is_empty());
    let root = root_path("hello-world").unwrap();
    assert!(
        !persister.subtree(&root).unwrap().is_empty(),
        "state still there"
    );
    // The next start is told the framework is gone and only wipes.
    sim.crash_before_wipe = false;
    sim.restart().unwrap();
    assert_nothing_left(&sim, &persister, "after the crash");
}

#[test]
fn unreserve_steps_of_a_dead_agent_can_be_force_completed() {
    let persister = Arc::new(MemPersister::new());
    let mut sim = deployed(persister.clone());
    // The agent of world-0 dies for good.
    let agent = sim
        .core()
        .store()
        .task_info("world-0-server")
        .unwrap()
        .agent_id
        .value
        .clone();
    sim.cluster.agent_down(&agent);
    sim.advance(1_000).unwrap();
    sim.request(Request::Uninstall).unwrap();
    finish(&mut sim, 20);
    assert_ne!(sim.plan_status("deploy"), Some(Status::Complete));
    let plan = json(sim.request(Request::Plan("deploy".to_owned())).unwrap());
    let stuck: Vec<(String, String)> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] != "COMPLETE" && p["name"] != "deregister-service")
        .flat_map(|p| {
            p["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] != "COMPLETE")
                .map(move |s| {
                    (
                        p["name"].as_str().unwrap().to_owned(),
                        s["name"].as_str().unwrap().to_owned(),
                    )
                })
        })
        .collect();
    assert!(!stuck.is_empty());
    assert!(
        stuck.iter().all(|(phase, _)| phase == "kill-tasks"
            || phase == &format!("unreserve-resources-{agent}")
            || phase.starts_with("unreserve-resources-")),
        "{stuck:?}"
    );
    for (phase, step) in stuck {
        let reply = sim
            .request(Request::PlanCommand(
                PlanCommand::ForceComplete,
                CommandTarget {
                    plan: "deploy".to_owned(),
                    phase: Some(phase),
                    step: Some(step),
                },
            ))
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    finish(&mut sim, 10);
    assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
    let root = root_path("hello-world").unwrap();
    assert!(persister.subtree(&root).unwrap().is_empty());
    // Every agent that is up has nothing reserved for the service any more.
    for a in AGENTS.iter().filter(|a| **a != agent) {
        assert!(sim.cluster.reservations(a).is_empty(), "{a}");
    }
}

/// A launch lost to a crash between its commit and its send leaves reservations that were
/// never made in the store (the relaunch reserves afresh and lists the first ones as
/// orphans): the uninstall must not wait for the cluster to offer them.
#[test]
fn uninstall_after_a_deploy_that_crashed_at_any_tick() {
    for crash_at in 1..30 {
        let persister = Arc::new(MemPersister::new());
        let mut sim = Simulation::with(
            hello_world(),
            SimAgentSpec::many(4, &["a", "b", "c"]),
            SchedulerOptions::default(),
            persister.clone(),
        )
        .unwrap();
        rounds_with_a_crash(&mut sim, 80, 5_000, crash_at, Crash::AfterCommit);
        assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
        sim.request(Request::Uninstall).unwrap();
        finish(&mut sim, 30);
        assert_nothing_left(&sim, &persister, &format!("crash at {crash_at}"));
    }
}

/// Orphaned reservations the cluster no longer holds (a replaced pod's reservations released
/// as unexpected ones before its relaunch listed them) must not keep the service taking
/// offers, nor hold an uninstall back: an agent that offers without one (twice, seconds
/// apart), running none of the service's executors, does not hold it. One on an agent where
/// an executor of the service runs may be in use by it and waits.
#[test]
fn orphans_the_cluster_no_longer_holds_are_dropped() {
    let persister = Arc::new(MemPersister::new());
    let mut sim = deployed(persister.clone());
    let busy: Vec<String> = sim
        .cluster
        .live_tasks()
        .into_iter()
        .map(|(_, _, agent)| agent)
        .collect();
    let idle = AGENTS
        .iter()
        .find(|a| !busy.iter().any(|b| b == *a))
        .expect("four agents, three pods");
    sim.stop();
    let path = format!(
        "{}/Properties/orphaned-reservations",
        root_path("hello-world").unwrap()
    );
    let ghosts = serde_json::json!({
        "ghost-idle": {"agent": idle, "released": false},
        "ghost-busy": {"agent": busy[0], "released": false},
    });
    persister
        .set(&path, serde_json::to_vec(&ghosts).unwrap().as_slice())
        .unwrap();
    sim.restart().unwrap();
    let listed = |sim: &Simulation| {
        sim.core()
            .store()
            .property("orphaned-reservations")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    // One offer without it is not enough: an exiting executor may still have held it.
    sim.offers().unwrap();
    assert!(listed(&sim).contains("ghost-idle"), "{}", listed(&sim));
    for _ in 0..15 {
        sim.advance(1_000).unwrap();
        sim.offers().unwrap();
    }
    let left = listed(&sim);
    assert!(!left.contains("ghost-idle"), "{left}");
    assert!(left.contains("ghost-busy"), "{left}");

    sim.request(Request::Uninstall).unwrap();
    finish(&mut sim, 30);
    assert_nothing_left(&sim, &persister, "ghost orphans");
}
