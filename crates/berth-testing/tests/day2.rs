//! Day-2 operations on the simulated cluster: pod restart and replace, the recovery plan,
//! back-off, drained agents, automatic replacement, pause/resume, plan parameters, and
//! crash safety of all of them.

use std::path::Path;

use crate::{json, spec};
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::{Operation, TaskState};
use berth_plan::Status;
use berth_scheduler::{Request, SchedulerOptions};
use berth_spec::{Env, ReplacementFailurePolicy, ServiceSpec};
use berth_state::MemPersister;
use berth_testing::{Simulation, load_package};

fn hello_world(options: &str) -> ServiceSpec {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-world");
    load_package(&dir, Some(options), &Env::default()).unwrap()
}

fn agents() -> Vec<SimAgentSpec> {
    SimAgentSpec::many(4, &["a", "b", "c"])
}

fn deployed(spec: ServiceSpec) -> Simulation {
    let mut sim = Simulation::new(spec, agents()).unwrap();
    sim.run_until_complete("deploy", 40).unwrap();
    sim
}

fn with_options(spec: ServiceSpec, options: SchedulerOptions) -> Simulation {
    let mut sim = Simulation::with(
        spec,
        agents(),
        options,
        std::sync::Arc::new(MemPersister::new()),
    )
    .unwrap();
    sim.run_until_complete("deploy", 40).unwrap();
    sim
}

/// (task id, agent, resource ids, dynamic port env) of a stored task.
fn placement(sim: &Simulation, task: &str) -> (String, String, Vec<String>, Option<String>) {
    let info = sim.core().store().task_info(task).unwrap();
    let mut ids: Vec<String> = info
        .resources
        .iter()
        .filter_map(|r| r.resource_id().map(str::to_owned))
        .collect();
    ids.sort();
    let port = info
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .and_then(|e| e.get("PORT_WORLD").or_else(|| e.get("PORT_HELLO")))
        .map(str::to_owned);
    (
        info.task_id.value.clone(),
        info.agent_id.value.clone(),
        ids,
        port,
    )
}

/// Offers and ticks until `done` or panic.
fn settle(sim: &mut Simulation, what: &str, mut done: impl FnMut(&Simulation) -> bool) {
    for _ in 0..40 {
        if done(sim) {
            return;
        }
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    panic!(
        "{what}: deploy {:?} recovery {:?}",
        sim.steps("deploy"),
        sim.steps("recovery")
    );
}

fn live_copies(sim: &Simulation) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for (name, _, _) in sim.cluster.live_tasks() {
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

/// Settles until the recovery plan is COMPLETE and `task` runs under an id other than `old`.
fn settle_relaunched(sim: &mut Simulation, what: &str, task: &str, old: &str) {
    settle(sim, what, |s| {
        s.plan_status("recovery") == Some(Status::Complete)
            && s.cluster
                .live_tasks()
                .iter()
                .any(|(n, id, _)| n == task && id != old)
    });
}

#[test]
fn pod_restart_relaunches_in_place() {
    let mut sim = deployed(hello_world("{}"));
    let before = placement(&sim, "world-0-server");
    let reply = sim
        .request(Request::PodRestart("world-0".to_owned()))
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        json(reply),
        serde_json::json!({"pod": "world-0", "tasks": ["world-0-server"]})
    );
    settle_relaunched(&mut sim, "restart", "world-0-server", &before.0);
    let after = placement(&sim, "world-0-server");
    assert_ne!(after.0, before.0, "new task id");
    assert_eq!(after.1, before.1, "same agent");
    assert_eq!(after.2, before.2, "same reservations (volume and port)");
    assert_eq!(after.3, before.3, "same dynamic port");
    let recovery = sim.steps("recovery");
    assert_eq!(
        recovery,
        vec![("world-0:[server]".to_owned(), Status::Complete)]
    );
    assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
    assert!(live_copies(&sim).values().all(|n| *n == 1));
}

#[test]
fn pod_replace_moves_the_pod_and_releases_the_old_reservations() {
    let mut sim = deployed(hello_world("{}"));
    let before = placement(&sim, "world-0-server");
    let old_volume: String = sim
        .core()
        .store()
        .task_info("world-0-server")
        .unwrap()
        .resources
        .iter()
        .find_map(|r| r.persistence_id().map(str::to_owned))
        .unwrap();
    let reply = sim
        .request(Request::PodReplace("world-0".to_owned()))
        .unwrap();
    assert_eq!(
        json(reply),
        serde_json::json!({"pod": "world-0", "tasks": ["world-0-server"]})
    );
    settle_relaunched(&mut sim, "replace", "world-0-server", &before.0);
    let after = placement(&sim, "world-0-server");
    assert_ne!(after.0, before.0);
    assert!(
        after.2.iter().all(|r| !before.2.contains(r)),
        "fresh reservations"
    );
    let plan = json(sim.request(Request::Plan("recovery".to_owned())).unwrap());
    assert!(
        plan["phases"][0]["steps"][0]["message"]
            .as_str()
            .unwrap()
            .ends_with("RecoveryType: PERMANENT")
    );
    // The old reservations are released when their agent offers them.
    settle(&mut sim, "release", |s| {
        let left = s.cluster.reservations(&before.1);
        before.2.iter().all(|r| !left.contains(r))
    });
    assert!(
        !sim.cluster.volumes(&before.1).contains(&old_volume),
        "old volume destroyed"
    );
    // Placement still holds: the two world pods on different agents.
    let worlds: Vec<String> = ["world-0-server", "world-1-server"]
        .iter()
        .map(|t| placement(&sim, t).1)
        .collect();
    assert_ne!(worlds[0], worlds[1]);
    // Once cleaned up, nothing to do: offers suppressed.
    settle(&mut sim, "idle", |s| s.cluster.is_suppressed());
}

/// The old pod's executor may still hold its reservations when its agent next offers (a
/// real executor takes a moment to exit): they are not offered then, and must still be
/// released once it has gone, the scheduler taking offers until they are.
#[test]
fn a_replaced_pods_executor_reservations_are_released_after_it_exits() {
    let mut sim = deployed(hello_world("{}"));
    sim.cluster.set_executors_linger(true);
    let before = placement(&sim, "world-0-server");
    let exec_ids: Vec<String> = sim
        .core()
        .store()
        .task_info("world-0-server")
        .unwrap()
        .executor
        .iter()
        .flat_map(|e| e.resources.iter())
        .filter_map(|r| r.resource_id().map(str::to_owned))
        .collect();
    assert!(!exec_ids.is_empty(), "the executor has reservations");
    sim.request(Request::PodReplace("world-0".to_owned()))
        .unwrap();
    settle_relaunched(&mut sim, "replace", "world-0-server", &before.0);
    // The task's own reservations are released; the executor's are held while it lives.
    settle(&mut sim, "the task's reservations released", |s| {
        let left = s.cluster.reservations(&before.1);
        before.2.iter().all(|r| !left.contains(r))
    });
    for _ in 0..5 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    let left = sim.cluster.reservations(&before.1);
    assert!(exec_ids.iter().all(|r| left.contains(r)), "{left:?}");
    assert!(
        !sim.cluster.is_suppressed(),
        "offers suppressed while the executor's reservations wait to be released"
    );
    sim.cluster.end_idle_executors();
    settle(&mut sim, "the executor's reservations released", |s| {
        let left = s.cluster.reservations(&before.1);
        exec_ids.iter().all(|r| !left.contains(r))
    });
    settle(&mut sim, "idle", |s| s.cluster.is_suppressed());
    assert!(
        sim.core()
            .store()
            .property("orphaned-reservations")
            .is_none(),
        "nothing left to release"
    );
}

#[test]
fn replace_works_while_the_agent_is_down() {
    let mut sim = deployed(hello_world("{}"));
    let before = placement(&sim, "world-1-server");
    sim.cluster.agent_down(&before.1);
    sim.pump().unwrap();
    // In-place recovery cannot happen: the agent is gone.
    for _ in 0..3 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    assert_eq!(
        sim.step_status("recovery", "world-1:[server]"),
        Some(Status::Prepared)
    );
    sim.request(Request::PodReplace("world-1".to_owned()))
        .unwrap();
    settle(&mut sim, "replace with the agent down", |s| {
        s.cluster
            .live_tasks()
            .iter()
            .any(|(n, _, a)| n == "world-1-server" && *a != before.1)
    });
    assert_eq!(live_copies(&sim)["world-1-server"], 1);
    // The agent comes back: its stale reservations are released.
    sim.cluster.agent_up(&before.1);
    settle(&mut sim, "release after the agent returns", |s| {
        let left = s.cluster.reservations(&before.1);
        before.2.iter().all(|r| !left.contains(r))
    });
}

#[test]
fn essential_and_non_essential_failures() {
    let yaml = r"
name: svc
pods:
  hello:
    count: 1
    volume: {path: shared, type: ROOT, size: 10}
    tasks:
      essential:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        memory: 32
      nonessential:
        goal: RUNNING
        essential: false
        cmd: sleep 1000
        cpus: 0.1
        memory: 32
";
    let mut sim = deployed(spec(yaml));
    let e0 = placement(&sim, "hello-0-essential").0;
    let n0 = placement(&sim, "hello-0-nonessential").0;
    // A non-essential task fails: only it is relaunched, in the same executor.
    let exec_before = sim
        .core()
        .store()
        .task_info("hello-0-essential")
        .unwrap()
        .executor
        .as_ref()
        .unwrap()
        .executor_id
        .clone();
    sim.task_state("hello-0-nonessential", TaskState::TaskFailed)
        .unwrap();
    settle(&mut sim, "non-essential", |s| {
        placement(s, "hello-0-nonessential").0 != n0
            && s.plan_status("recovery") == Some(Status::Complete)
    });
    assert_eq!(
        placement(&sim, "hello-0-essential").0,
        e0,
        "essential task untouched"
    );
    let n1 = placement(&sim, "hello-0-nonessential");
    let exec_after = sim
        .core()
        .store()
        .task_info("hello-0-nonessential")
        .unwrap()
        .executor
        .as_ref()
        .unwrap()
        .executor_id
        .clone();
    assert_eq!(exec_after, exec_before, "same executor");
    // An essential task fails: the whole pod is relaunched.
    sim.task_state("hello-0-essential", TaskState::TaskFailed)
        .unwrap();
    settle(&mut sim, "essential", |s| {
        placement(s, "hello-0-essential").0 != e0 && placement(s, "hello-0-nonessential").0 != n1.0
    });
    assert_eq!(
        sim.steps("recovery").last().unwrap().0,
        "hello-0:[essential, nonessential]"
    );
    assert!(live_copies(&sim).values().all(|n| *n == 1));
}

#[test]
fn goal_states_finish_and_once() {
    let yaml = r"
name: svc
pods:
  world:
    count: 1
    tasks:
      server: {goal: RUNNING, cmd: sleep 1000, cpus: 0.1, memory: 32}
      finish: {goal: FINISH, cmd: echo done, cpus: 0.1, memory: 32}
      once: {goal: ONCE, cmd: echo once, cpus: 0.1, memory: 32}
plans:
  deploy:
    phases:
      server: {pod: world, steps: [default: [[server]]]}
      finish: {pod: world, steps: [default: [[finish]]]}
      once: {pod: world, steps: [default: [[once]]]}
";
    let mut sim = Simulation::new(spec(yaml), agents()).unwrap();
    sim.cluster.set_auto_run(true);
    for step in ["world-0:[server]", "world-0:[finish]", "world-0:[once]"] {
        settle(&mut sim, step, |s| {
            s.step_status("deploy", step)
                .is_some_and(|st| st == Status::Started || st == Status::Complete)
        });
        if step != "world-0:[server]" {
            let task = if step.contains("finish") {
                "world-0-finish"
            } else {
                "world-0-once"
            };
            sim.task_state(task, TaskState::TaskFinished).unwrap();
        }
    }
    settle(&mut sim, "deploy", |s| {
        s.plan_status("deploy") == Some(Status::Complete)
    });
    // Finished FINISH/ONCE tasks are never recovered.
    for _ in 0..3 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    assert!(sim.steps("recovery").is_empty());
    // A configuration change re-runs the FINISH task, not the ONCE task.
    let counts_before = sim.launch_counts();
    sim.set_spec(spec(
        &yaml
            .replace("echo done", "echo done again")
            .replace("echo once", "echo once again"),
    ));
    sim.restart().unwrap();
    assert_eq!(
        sim.step_status("deploy", "world-0:[once]"),
        Some(Status::Complete)
    );
    settle(&mut sim, "finish re-run", |s| {
        s.launch_counts()["world-0-finish"] > counts_before["world-0-finish"]
    });
    assert_eq!(
        sim.launch_counts()["world-0-once"],
        counts_before["world-0-once"]
    );
}

/// Back-off on: 10 s after a first failure, doubling, at most 40 s.
fn backoff_10s_doubling_to_40s() -> SchedulerOptions {
    let mut options = SchedulerOptions::default();
    options.backoff.enabled = true;
    options.backoff.initial_ms = 10_000;
    options.backoff.factor = 2.0;
    options.backoff.max_ms = 40_000;
    options
}

#[test]
fn back_off_delays_a_crash_loop_and_suppresses_offers() {
    let mut sim = with_options(hello_world("{}"), backoff_10s_doubling_to_40s());
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.offers().unwrap();
    assert_eq!(
        sim.step_status("recovery", "hello-0:[server]"),
        Some(Status::Delayed)
    );
    assert_eq!(sim.plan_status("recovery"), Some(Status::Delayed));
    // Everything delayed: offers suppressed, health says so.
    sim.advance(1_000).unwrap();
    assert!(sim.cluster.is_suppressed());
    assert_eq!(
        sim.request(Request::Health { verbose: false })
            .unwrap()
            .status,
        208
    );
    let launches = sim.launch_counts()["hello-0-server"];
    sim.advance(5_000).unwrap();
    sim.offers().unwrap();
    assert_eq!(
        sim.launch_counts()["hello-0-server"],
        launches,
        "relaunched before the delay"
    );
    // The delay ends: offers are revived and the task relaunched.
    sim.advance(5_000).unwrap();
    assert!(!sim.cluster.is_suppressed());
    sim.offers().unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches + 1);
    // It ran and was ready, which clears the back-off: the next failure waits the first
    // delay again.
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.advance(5_000).unwrap();
    sim.offers().unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches + 1);
    sim.advance(6_000).unwrap();
    sim.offers().unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches + 2);
    // A pod restart clears the back-off at once.
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.request(Request::PodRestart("hello-0".to_owned()))
        .unwrap();
    sim.offers().unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches + 3);
}

/// Two terminal reports of one task id (the executor's TASK_FAILED, then the agent's
/// "executor terminated") are one failure: the delay is the first one, not the second.
#[test]
fn a_second_terminal_report_of_the_same_task_is_not_another_failure() {
    let mut sim = with_options(hello_world("{}"), backoff_10s_doubling_to_40s());
    let launches = sim.launch_counts()["hello-0-server"];
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.task_state("hello-0-server", TaskState::TaskKilled)
        .unwrap();
    sim.advance(9_000).unwrap();
    sim.offers().unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches);
    sim.advance(2_000).unwrap();
    sim.offers().unwrap();
    assert_eq!(
        sim.launch_counts()["hello-0-server"],
        launches + 1,
        "the delay grew with repeated reports of one failure"
    );
}

#[test]
fn a_drained_agent_has_its_pods_replaced_elsewhere() {
    let mut sim = deployed(hello_world("{}"));
    let before = placement(&sim, "world-0-server");
    sim.cluster.drain_agent(&before.1);
    sim.pump().unwrap();
    settle(&mut sim, "replacement after drain", |s| {
        s.cluster
            .live_tasks()
            .iter()
            .any(|(n, _, a)| n == "world-0-server" && *a != before.1)
    });
    let steps = json(sim.request(Request::Plan("recovery".to_owned())).unwrap());
    assert!(
        steps.to_string().contains("RecoveryType: PERMANENT"),
        "{steps}"
    );
    settle(&mut sim, "recovery complete", |s| {
        s.plan_status("recovery") == Some(Status::Complete)
    });
}

#[test]
fn timed_auto_replace_policy() {
    let options = SchedulerOptions {
        replacement_policy: Some(ReplacementFailurePolicy {
            permanent_failure_timeout_secs: 30,
            min_replace_delay_secs: 10,
        }),
        ..SchedulerOptions::default()
    };
    let mut sim = with_options(hello_world("{}"), options);
    let before = placement(&sim, "world-1-server");
    sim.cluster.agent_down(&before.1);
    sim.pump().unwrap();
    for _ in 0..25 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    assert!(
        sim.cluster
            .live_tasks()
            .iter()
            .all(|(n, _, _)| n != "world-1-server"),
        "replaced before the timeout"
    );
    settle(&mut sim, "auto replace", |s| {
        s.cluster
            .live_tasks()
            .iter()
            .any(|(n, _, a)| n == "world-1-server" && *a != before.1)
    });
}

#[test]
fn pause_and_resume() {
    let mut sim = deployed(hello_world("{}"));
    let before = placement(&sim, "hello-0-server");
    let reply = sim
        .request(Request::PodPause(
            "hello-0".to_owned(),
            vec!["server".to_owned()],
        ))
        .unwrap();
    assert_eq!(
        json(reply),
        serde_json::json!({"pod": "hello-0", "tasks": ["hello-0-server"]})
    );
    settle(&mut sim, "paused", |s| {
        s.cluster.task_info("hello-0-server").is_some_and(|i| {
            i.command
                .as_ref()
                .is_some_and(|c| c.value.contains("This task is PAUSED"))
        }) && s.step_status("deploy", "hello-0:[server]") == Some(Status::Paused)
    });
    let paused = placement(&sim, "hello-0-server");
    assert_eq!(paused.1, before.1, "paused in place");
    let info = sim.cluster.task_info("hello-0-server").unwrap();
    assert!(info.health_check.is_none());
    assert_eq!(info.check.unwrap().command.command.value, "exit 1");
    let status = json(
        sim.request(Request::PodStatus("hello-0".to_owned()))
            .unwrap(),
    );
    assert_eq!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "hello-0-server")
            .unwrap()["status"],
        "PAUSED"
    );
    assert_eq!(
        sim.plan_status("deploy"),
        Some(Status::Complete),
        "the phase counts a paused step complete"
    );
    assert_eq!(sim.plan_status("recovery"), Some(Status::Started));
    // Unknown pod or task: 404.
    assert_eq!(
        sim.request(Request::PodPause("nope-0".to_owned(), vec![]))
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        sim.request(Request::PodPause(
            "hello-0".to_owned(),
            vec!["nope".to_owned()]
        ))
        .unwrap()
        .status,
        404
    );
    // Resume: the original command again, RUNNING, the step complete.
    sim.request(Request::PodResume("hello-0".to_owned(), vec![]))
        .unwrap();
    settle(&mut sim, "resumed", |s| {
        s.cluster.task_info("hello-0-server").is_some_and(|i| {
            i.command
                .as_ref()
                .is_some_and(|c| !c.value.contains("PAUSED"))
        }) && s.step_status("deploy", "hello-0:[server]") == Some(Status::Complete)
    });
    let status = json(
        sim.request(Request::PodStatus("hello-0".to_owned()))
            .unwrap(),
    );
    assert_eq!(
        status["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "hello-0-server")
            .unwrap()["status"],
        "RUNNING"
    );
}

#[test]
fn plan_parameters_reach_the_tasks() {
    let mut sim = deployed(hello_world("{}"));
    let reply = sim
        .request(Request::PlanCommand(
            berth_plan::PlanCommand::Start(
                [("BACKUP_NAME".to_owned(), "monday".to_owned())]
                    .into_iter()
                    .collect(),
            ),
            berth_plan::CommandTarget {
                plan: "backup".to_owned(),
                ..Default::default()
            },
        ))
        .unwrap();
    assert_eq!(
        json(reply),
        serde_json::json!({"message": "Received cmd: start backup with parameters: {BACKUP_NAME=monday}"})
    );
    settle(&mut sim, "backup launched", |s| {
        s.cluster.task_info("hello-0-backup").is_some()
    });
    let info = sim.cluster.task_info("hello-0-backup").unwrap();
    let env = info.command.unwrap().environment.clone().unwrap();
    assert_eq!(env.get("BACKUP_NAME"), Some("monday"));
    sim.task_state("hello-0-backup", TaskState::TaskFinished)
        .unwrap();
    settle(&mut sim, "backup complete", |s| {
        s.plan_status("backup") == Some(Status::Complete)
    });
    // hello-0-server ran undisturbed in the same pod.
    assert_eq!(sim.launch_counts()["hello-0-server"], 1);
}

/// Starts a day-2 operation on world-0: `restart`, `replace`, or `recover` (its task fails).
fn begin(sim: &mut Simulation, operation: &str) {
    match operation {
        "restart" => {
            sim.request(Request::PodRestart("world-0".to_owned()))
                .unwrap();
        }
        "replace" => {
            sim.request(Request::PodReplace("world-0".to_owned()))
                .unwrap();
        }
        _ => sim
            .task_state("world-0-server", TaskState::TaskFailed)
            .unwrap(),
    }
}

/// Crash safety: kill the scheduler at every tick of a restart, a replace and a recovery; at
/// the end exactly one live copy of each task, every live task known to the store, no
/// reservation the store does not expect, and the volume of every live pod still there.
#[test]
fn kill_9_at_every_tick_of_pod_operations() {
    for operation in ["restart", "replace", "recover"] {
        for crash_at in 1..25 {
            let mut sim = deployed(hello_world("{}"));
            begin(&mut sim, operation);
            let mut tick = 0;
            let mut crashed = false;
            for _ in 0..40 {
                sim.cluster.set_now(sim.now);
                sim.cluster.offer_round();
                loop {
                    tick += 1;
                    let progressed = if tick == crash_at && !crashed {
                        crashed = true;
                        if tick % 2 == 0 {
                            sim.crash_after_commit().unwrap()
                        } else {
                            sim.crash_before_flush().unwrap()
                        }
                    } else {
                        sim.step_one().unwrap()
                    };
                    if !progressed {
                        break;
                    }
                }
                sim.advance(2_000).unwrap();
                if sim.plan_status("recovery") == Some(Status::Complete)
                    && sim.cluster.is_suppressed()
                {
                    break;
                }
            }
            let ctx = format!("{operation}, crash at {crash_at}");
            assert_eq!(
                sim.plan_status("recovery"),
                Some(Status::Complete),
                "{ctx}: {:?}",
                sim.steps("recovery")
            );
            assert_eq!(sim.plan_status("deploy"), Some(Status::Complete), "{ctx}");
            let copies = live_copies(&sim);
            assert_eq!(copies.len(), 3, "{ctx}: {copies:?}");
            assert!(copies.values().all(|n| *n == 1), "{ctx}: {copies:?}");
            // Every live task is the one the store knows.
            for (name, id, _) in sim.cluster.live_tasks() {
                assert_eq!(
                    sim.core().store().task_info(&name).unwrap().task_id.value,
                    id,
                    "{ctx}"
                );
            }
            // No reservation leaked: every reservation on every agent is expected by the store.
            let expected: std::collections::HashSet<String> = sim
                .core()
                .store()
                .task_infos()
                .flat_map(|i| {
                    i.resources
                        .iter()
                        .chain(i.executor.iter().flat_map(|e| e.resources.iter()))
                        .filter_map(|r| r.resource_id().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect();
            for a in 0..4 {
                for r in sim.cluster.reservations(&format!("agent-{a}")) {
                    assert!(
                        expected.contains(&r),
                        "{ctx}: leaked reservation {r} on agent-{a}"
                    );
                }
            }
            // The volumes of live pods exist.
            for (name, _, agent) in sim.cluster.live_tasks() {
                let info = sim.core().store().task_info(&name).unwrap();
                for r in &info.resources {
                    if let Some(p) = r.persistence_id() {
                        assert!(
                            sim.cluster.volumes(&agent).contains(&p.to_owned()),
                            "{ctx}: volume of {name} lost"
                        );
                    }
                }
            }
        }
    }
}

/// The task id the store holds for a task.
fn stored_id(sim: &Simulation, task: &str) -> String {
    sim.core()
        .store()
        .task_info(task)
        .unwrap()
        .task_id
        .value
        .clone()
}

/// `berth run` and its local cluster die together: a launch stored by the scheduler may
/// never reach the cluster. After the restart that launch is reconciled (the cluster answers
/// TASK_LOST for a task it never saw) and the pod is launched again.
#[test]
fn a_launch_the_cluster_never_saw_is_relaunched_after_a_restart() {
    for operation in ["restart", "replace", "recover"] {
        let mut sim = deployed(hello_world("{}"));
        let old = stored_id(&sim, "world-0-server");
        begin(&mut sim, operation);
        sim.pump().unwrap();
        // The next offers: the relaunch is stored, then the scheduler dies before the ACCEPT
        // goes out.
        let mut stored = old.clone();
        for _ in 0..10 {
            sim.advance(2_000).unwrap();
            sim.cluster.set_now(sim.now);
            if sim.cluster.offer_round() > 0 {
                sim.crash_after_commit().unwrap();
                stored = stored_id(&sim, "world-0-server");
                if stored != old {
                    break;
                }
            }
        }
        assert_ne!(stored, old, "{operation}: no relaunch was stored");
        assert!(
            !sim.cluster
                .live_tasks()
                .iter()
                .any(|(_, id, _)| *id == stored),
            "{operation}: the cluster saw the launch"
        );
        for plan in ["deploy", "recovery"] {
            sim.run_until_complete(plan, 20)
                .unwrap_or_else(|e| panic!("{operation}: {e}"));
        }
        let live: Vec<(String, String, String)> = sim
            .cluster
            .live_tasks()
            .into_iter()
            .filter(|(n, _, _)| n == "world-0-server")
            .collect();
        assert_eq!(
            live.len(),
            1,
            "{operation}: {live:?}; recovery {:?}; deploy {:?}; status {:?}",
            sim.steps("recovery"),
            sim.steps("deploy"),
            sim.core().store().task_status("world-0-server")
        );
        assert_eq!(stored_id(&sim, "world-0-server"), live[0].1, "{operation}");
    }
}

#[test]
fn accepts_carry_destroy_before_unreserve() {
    let mut sim = deployed(hello_world("{}"));
    sim.request(Request::PodReplace("world-0".to_owned()))
        .unwrap();
    settle(&mut sim, "replace", |s| {
        s.plan_status("recovery") == Some(Status::Complete)
    });
    settle(&mut sim, "cleanup", |s| s.cluster.is_suppressed());
    let cleanup = sim.sent.iter().find_map(|c| match c {
        berth_cluster::Call::Accept { operations, .. }
            if operations
                .iter()
                .any(|o| matches!(o, Operation::Unreserve { .. })) =>
        {
            Some(operations.clone())
        }
        _ => None,
    });
    let ops = cleanup.expect("a cleanup accept");
    let destroy = ops
        .iter()
        .position(|o| matches!(o, Operation::Destroy { .. }));
    let unreserve = ops
        .iter()
        .position(|o| matches!(o, Operation::Unreserve { .. }));
    assert!(destroy < unreserve, "{ops:?}");
}

/// Found by the randomized fault simulation: a launch whose ACCEPT reaches the cluster after
/// its offer was rescinded. The cluster drops its tasks (TASK_DROPPED, invalid offers): the
/// reservations it was to make do not exist, and the pod is launched again on fresh ones.
#[test]
fn a_launch_on_a_rescinded_offer_is_dropped_and_launched_again() {
    use berth_cluster::Call;
    let persister = std::sync::Arc::new(MemPersister::new());
    let mut sim = Simulation::with(
        hello_world("{}"),
        agents(),
        SchedulerOptions::default(),
        persister,
    )
    .unwrap();
    // One offer round, with every launch's offer taken back before the accept arrives: the
    // accepts are handled as they would be once in flight.
    sim.cluster.offer_round();
    for (id, _, _) in sim.cluster.agents() {
        sim.cluster.rescind(&id);
    }
    let events = sim.pending_events();
    let offers: Vec<_> = events
        .into_iter()
        .filter(|e| matches!(e, berth_cluster::Event::Offers { .. }))
        .collect();
    sim.inject(offers).unwrap();
    assert!(
        sim.sent.iter().any(|c| matches!(c, Call::Accept { .. })),
        "nothing was launched"
    );
    assert!(sim.cluster.live_tasks().is_empty());
    sim.run_until_complete("deploy", 30).unwrap();
    assert_eq!(sim.cluster.live_tasks().len(), 3);
}

/// Found by the randomized fault simulation: a pod whose task was already down when its
/// agent was removed gets no report of its own; the agent's FAILURE event moves it.
#[test]
fn a_pod_down_when_its_agent_is_removed_is_replaced_elsewhere() {
    let mut sim = deployed(hello_world("{}"));
    let info = sim
        .core()
        .store()
        .task_info("world-0-server")
        .unwrap()
        .clone();
    let agent = info.agent_id.value.clone();
    // The task fails while its agent is down (so its relaunch waits for that agent), then
    // the agent is removed: there is no task left there to report on.
    sim.cluster.agent_down(&agent);
    sim.pump().unwrap();
    sim.task_state("world-0-server", TaskState::TaskFailed)
        .unwrap();
    sim.cluster.drain_agent(&agent);
    sim.pump().unwrap();
    for _ in 0..20 {
        sim.offers().unwrap();
        sim.advance(1_000).unwrap();
    }
    let moved = sim.core().store().task_info("world-0-server").unwrap();
    assert_ne!(
        moved.agent_id.value, agent,
        "world-0 still waits for {agent}"
    );
    assert!(
        sim.cluster
            .live_tasks()
            .iter()
            .any(|(n, id, a)| n == "world-0-server" && *id == moved.task_id.value && *a != agent)
    );
    assert_eq!(sim.plan_status("recovery"), Some(Status::Complete));
}

#[test]
fn pods_that_fit_nowhere_are_judged_by_one_of_them_and_launch_once_an_agent_fits() {
    let yaml = "
name: big
pods:
  node:
    count: 6
    tasks:
      server:
        goal: RUNNING
        cmd: ./server
        cpus: 16
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      nodes:
        pod: node
        strategy: parallel
";
    let mut roomy = SimAgentSpec::new("roomy");
    roomy.cpus = 200.0;
    let mut all = SimAgentSpec::many(3, &["a", "b", "c"]);
    all.push(roomy);
    let mut sim = Simulation::new(spec(yaml), all).unwrap();
    sim.cluster.agent_down("roomy");
    for _ in 0..3 {
        sim.offers().unwrap();
        sim.advance(5_000).unwrap();
    }
    assert_eq!(sim.cluster.launch_count(), 0);
    let reply = sim.request(Request::Plan("deploy".to_owned())).unwrap();
    let Some(plan) = reply.body.clone().into_json() else {
        panic!("{reply:?}")
    };
    let steps: Vec<&serde_json::Value> = plan["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(steps.len(), 6);
    // The first step evaluated every offer; its verdict stands for the five others, and
    // each of them says so, with the first one's reasons.
    let first = &steps[0]["waiting"];
    assert!(first["sampledBy"].is_null(), "{first}");
    assert_eq!(first["reasons"][0]["reason"], "resources", "{first}");
    assert!(
        first["closestMiss"]
            .as_str()
            .unwrap_or_default()
            .contains("cpus"),
        "{first}"
    );
    assert_eq!(first["reasons"][0]["agents"], 3, "{first}");
    for step in &steps[1..] {
        let waiting = &step["waiting"];
        let sampled = waiting["sampledBy"].as_str().unwrap_or_default();
        assert!(
            sampled.contains("node-0:[server]") && sampled.contains("6 waiting steps"),
            "{waiting}"
        );
        assert_eq!(waiting["reasons"], first["reasons"]);
    }
    // An agent that fits comes: every pod launches on it.
    sim.cluster.agent_up("roomy");
    sim.run_until_complete("deploy", 40).unwrap();
    let agents: std::collections::BTreeSet<String> =
        sim.cluster.tasks().into_iter().map(|t| t.agent).collect();
    assert_eq!(sim.cluster.launch_count(), 6);
    assert_eq!(agents.into_iter().collect::<Vec<_>>(), vec!["roomy"]);
}
