//! Plan behaviour: generation, strategies, step progress from task statuses, recovery,
//! decommission, operator commands, restart, and the API/CLI views.

use crate::support;

use berth_mesos::TaskState;
use berth_plan::{
    BackoffPolicy, CommandError, CommandOutcome, PlanCommand, PlanContext, PlanSet, SequentialIds,
    Status, TaskSource, TaskTable, render_tree,
};
use berth_spec::{Goal, PhaseStrategy, PlanStrategy, ServiceSpec};
use support::*;

/// hello and world pods of `count` instances (one `server` task each), and a plan `deploy`
/// of `strategy` with a phase per pod type: `(name, strategy)` of hello's, then world's.
fn hello_and_world(
    count: u32,
    strategy: PlanStrategy,
    phases: [(&str, PhaseStrategy); 2],
) -> ServiceSpec {
    let mut spec = service(vec![
        pod("hello", count, vec![task("server", Goal::Running, true)]),
        pod("world", count, vec![task("server", Goal::Running, true)]),
    ]);
    let [(hello, hello_strategy), (world, world_strategy)] = phases;
    spec.plans = vec![plan(
        "deploy",
        strategy,
        vec![
            phase(hello, "hello", hello_strategy, None),
            phase(world, "world", world_strategy, None),
        ],
    )];
    spec
}

#[test]
fn default_deploy_plan_is_serial_per_pod_type() {
    let spec = hello_world();
    let d = Driver::new(&spec, TaskTable::default());
    assert_eq!(d.set.plan_names(), vec!["deploy", "recovery"]);
    let v = d.view("deploy");
    assert_eq!(v.strategy, "serial");
    assert_eq!(v.status, Status::Pending);
    let phases: Vec<(&str, Vec<&str>)> = v
        .phases
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.steps.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        vec![
            ("hello", vec!["hello-0:[server]"]),
            ("world", vec!["world-0:[server]", "world-1:[server]"])
        ]
    );
}

#[test]
fn serial_deploy_runs_one_step_at_a_time_to_complete() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
    assert_eq!(d.statuses("deploy")[0].1, Status::Starting);
    // nothing else starts while hello-0 is starting
    assert!(d.launch_all().is_empty());
    d.run_all_launched();
    assert_eq!(d.statuses("deploy")[0].1, Status::Complete);
    assert_eq!(d.view("deploy").status, Status::InProgress);
    assert_eq!(d.launch_all(), vec!["world-0:[server]"]);
    d.run_all_launched();
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    d.run_all_launched();
    assert_eq!(d.view("deploy").status, Status::Complete);
    assert_eq!(d.view("deploy").http_code(), 200);
    assert!(d.set.is_idle(&d.tasks, &mut d.ids, d.now));
}

#[test]
fn readiness_keeps_a_running_task_started_until_it_passes() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    let mut info = d.tasks.task("hello-0-server").unwrap().info.clone();
    info.check = support::info("hello", 0, "server", "x", CONFIG, Goal::Running, true).check;
    d.tasks.put_info(info.clone());
    let running = status(&info.task_id.value, TaskState::TaskRunning);
    d.set.on_task_status(&info, &running, d.now);
    assert_eq!(d.statuses("deploy")[0].1, Status::Started);
    d.set
        .on_task_status(&info, &ready(&info.task_id.value), d.now);
    assert_eq!(d.statuses("deploy")[0].1, Status::Complete);
}

#[test]
fn a_status_for_another_task_id_is_ignored() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    let info = d.tasks.task("hello-0-server").unwrap().info.clone();
    d.set.on_task_status(&info, &ready("someone-else"), d.now);
    assert_eq!(d.statuses("deploy")[0].1, Status::Starting);
}

#[test]
fn failed_launch_goes_back_to_pending_or_delayed() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    // Failing at once: held back for the shortest relaunch interval, then pending.
    d.send("hello-0-server", TaskState::TaskFailed);
    assert_eq!(d.statuses("deploy")[0].1, Status::Delayed);
    d.now += 1_000;
    assert_eq!(d.statuses("deploy")[0].1, Status::Pending);
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
    d.now += 5_000;
    d.send("hello-0-server", TaskState::TaskFailed);
    assert_eq!(d.statuses("deploy")[0].1, Status::Pending);

    let on = BackoffPolicy {
        enabled: true,
        initial_ms: 60_000,
        factor: 1.15,
        max_ms: 300_000,
        min_relaunch_ms: 1_000,
    };
    let mut d = Driver::with(&spec, TaskTable::default(), on, false);
    d.launch_all();
    d.send("hello-0-server", TaskState::TaskFailed);
    assert_eq!(d.statuses("deploy")[0].1, Status::Delayed);
    assert_eq!(d.view("deploy").status, Status::Delayed);
    assert!(
        d.launch_all().is_empty(),
        "delayed steps are not candidates"
    );
    assert!(
        d.set.is_idle(&d.tasks, &mut d.ids, d.now),
        "all delayed = idle (offers suppressed)"
    );
    d.now += 60_000;
    assert_eq!(d.statuses("deploy")[0].1, Status::Pending);
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
}

#[test]
fn restart_keeps_complete_steps_and_resumes_in_flight_ones() {
    let spec = hello_world();
    let tasks = table(
        &[
            ("hello", 0, "server", "h0", TaskState::TaskRunning),
            ("world", 0, "server", "w0", TaskState::TaskStaging),
        ],
        CONFIG,
    );
    let mut d = Driver::new(&spec, tasks);
    assert_eq!(
        d.statuses("deploy"),
        vec![
            ("hello-0:[server]".to_owned(), Status::Complete),
            ("world-0:[server]".to_owned(), Status::Starting),
            ("world-1:[server]".to_owned(), Status::Pending),
        ]
    );
    // the in-flight launch is watched, not relaunched
    assert!(d.launch_all().is_empty());
    d.send("world-0-server", TaskState::TaskRunning);
    assert_eq!(d.statuses("deploy")[1].1, Status::Complete);
    // a lost launch (reconciliation answers TASK_LOST) is relaunched
    let tasks = table(
        &[("hello", 0, "server", "h0", TaskState::TaskStaging)],
        CONFIG,
    );
    let mut d = Driver::new(&spec, tasks);
    d.send("hello-0-server", TaskState::TaskLost);
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
}

#[test]
fn tasks_on_an_old_config_are_redeployed() {
    let spec = hello_world();
    let tasks = table(
        &[("hello", 0, "server", "h0", TaskState::TaskRunning)],
        OLD_CONFIG,
    );
    let d = Driver::new(&spec, tasks);
    assert_eq!(d.statuses("deploy")[0].1, Status::Pending);
}

#[test]
fn canary_phases_wait_for_continue() {
    let spec = hello_and_world(
        4,
        PlanStrategy::Serial,
        [
            ("hello-deploy", PhaseStrategy::ParallelCanary),
            ("world-deploy", PhaseStrategy::SerialCanary),
        ],
    );
    let mut d = Driver::new(&spec, TaskTable::default());
    let v = d.view("deploy");
    assert_eq!(v.status, Status::Waiting);
    assert_eq!(v.phases[0].status, Status::Waiting);
    assert_eq!(v.phases[0].strategy, "parallel-canary");
    assert_eq!(v.phases[1].strategy, "serial-canary");
    let hello: Vec<Status> = v.phases[0].steps.iter().map(|s| s.status).collect();
    assert_eq!(
        hello,
        vec![
            Status::Waiting,
            Status::Waiting,
            Status::Pending,
            Status::Pending
        ]
    );
    assert!(d.launch_all().is_empty(), "nothing starts before continue");

    // plan-level continue releases nothing
    let _ = d.cmd(PlanCommand::Continue, "deploy", None, None);
    assert!(d.launch_all().is_empty());

    assert!(matches!(
        d.cmd(PlanCommand::Continue, "deploy", Some("hello-deploy"), None),
        Ok(CommandOutcome::Done(_))
    ));
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
    d.run_all_launched();
    assert!(d.launch_all().is_empty(), "hello-1 is still a held canary");
    assert_eq!(d.view("deploy").phases[0].status, Status::Waiting);

    d.cmd(PlanCommand::Continue, "deploy", Some("hello-deploy"), None)
        .unwrap();
    assert_eq!(
        d.launch_all(),
        vec!["hello-1:[server]", "hello-2:[server]", "hello-3:[server]"]
    );
    d.run_all_launched();
    assert_eq!(d.view("deploy").phases[0].status, Status::Complete);
    // world waits for its own continues
    assert!(d.launch_all().is_empty());
    d.cmd(PlanCommand::Continue, "deploy", Some("world-deploy"), None)
        .unwrap();
    assert_eq!(d.launch_all(), vec!["world-0:[server]"]);
    d.run_all_launched();
    d.cmd(PlanCommand::Continue, "deploy", Some("world-deploy"), None)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(d.launch_all().len(), 1, "serial after the canaries");
        d.run_all_launched();
    }
    assert_eq!(d.view("deploy").status, Status::Complete);
}

#[test]
fn custom_steps_and_parallel_phases() {
    let mut spec = service(vec![pod(
        "hello",
        2,
        vec![
            task("first", Goal::Running, true),
            task("second", Goal::Running, true),
        ],
    )]);
    spec.plans = vec![plan(
        "deploy",
        PlanStrategy::Serial,
        vec![phase(
            "hello-deploy",
            "hello",
            PhaseStrategy::Parallel,
            default_steps(&[&["first"], &["second"]]),
        )],
    )];
    let mut d = Driver::new(&spec, TaskTable::default());
    let v = d.view("deploy");
    assert_eq!(v.phases[0].strategy, "dependency");
    let names: Vec<&str> = v.phases[0].steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "hello-0:[first]",
            "hello-0:[second]",
            "hello-1:[first]",
            "hello-1:[second]"
        ]
    );
    assert_eq!(d.launch_all(), vec!["hello-0:[first]", "hello-1:[first]"]);
    d.run_all_launched();
    assert_eq!(d.launch_all(), vec!["hello-0:[second]", "hello-1:[second]"]);
}

#[test]
fn custom_plans_start_interrupted_and_take_parameters() {
    let mut spec = service(vec![pod(
        "hello",
        1,
        vec![
            task("server", Goal::Running, true),
            task("backup", Goal::Once, true),
        ],
    )]);
    spec.plans = vec![
        plan(
            "deploy",
            PlanStrategy::Serial,
            vec![phase(
                "d",
                "hello",
                PhaseStrategy::Serial,
                default_steps(&[&["server"]]),
            )],
        ),
        plan(
            "backup",
            PlanStrategy::Serial,
            vec![phase(
                "b",
                "hello",
                PhaseStrategy::Serial,
                default_steps(&[&["backup"]]),
            )],
        ),
    ];
    let mut d = Driver::new(&spec, TaskTable::default());
    assert_eq!(d.set.plan_names(), vec!["deploy", "recovery", "backup"]);
    assert_eq!(d.view("backup").status, Status::Waiting);
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
    d.run_all_launched();
    assert!(d.launch_all().is_empty());

    let bad: berth_spec::StringMap = [("1BAD".to_owned(), "x".to_owned())].into_iter().collect();
    assert_eq!(
        d.cmd(PlanCommand::Start(bad), "backup", None, None),
        Err(CommandError::BadRequest(
            "Couldn't parse parameters: 1BAD is not a valid environment variable name".to_owned()
        ))
    );
    let params: berth_spec::StringMap = [("BACKUP_TARGET".to_owned(), "s3://x".to_owned())]
        .into_iter()
        .collect();
    assert_eq!(
        d.cmd(PlanCommand::Start(params), "backup", None, None),
        Ok(CommandOutcome::Done(
            "Received cmd: start backup with parameters: {BACKUP_TARGET=s3://x}".to_owned()
        ))
    );
    let cands = d.set.candidates(&d.tasks, &mut d.ids, d.now);
    let backup = cands
        .iter()
        .find(|c| c.plan_name() == "backup")
        .expect("backup step is a candidate");
    assert_eq!(
        backup.parameters.get("BACKUP_TARGET").map(String::as_str),
        Some("s3://x")
    );
    assert_eq!(d.launch_all(), vec!["hello-0:[backup]"]);
    d.send("hello-0-backup", TaskState::TaskFinished);
    assert_eq!(d.view("backup").status, Status::Complete);
}

#[test]
fn force_complete_and_restart_a_stuck_step() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    d.run_all_launched();
    d.launch_all(); // world-0 STARTING, stuck
    assert_eq!(
        d.cmd(
            PlanCommand::ForceComplete,
            "deploy",
            Some("world"),
            Some("world-0:[server]")
        ),
        Ok(CommandOutcome::Done(
            "Received cmd: forceComplete for Plan: deploy, Phase: world, Step: world-0:[server]"
                .to_owned()
        ))
    );
    assert_eq!(d.statuses("deploy")[1].1, Status::Complete);
    assert_eq!(
        d.cmd(
            PlanCommand::ForceComplete,
            "deploy",
            Some("world"),
            Some("world-0:[server]")
        ),
        Ok(CommandOutcome::AlreadyDone)
    );
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    d.run_all_launched();
    // restart the forced step by id: it goes back to PENDING and is launched again
    let id = d.view("deploy").phases[1].steps[0].id.clone();
    assert!(matches!(
        d.cmd(PlanCommand::Restart, "deploy", Some("world"), Some(&id)),
        Ok(CommandOutcome::Done(_))
    ));
    assert_eq!(d.statuses("deploy")[1].1, Status::Pending);
    assert_eq!(
        d.cmd(PlanCommand::Restart, "deploy", Some("world"), Some(&id)),
        Ok(CommandOutcome::AlreadyDone)
    );
    assert_eq!(d.launch_all(), vec!["world-0:[server]"]);
}

#[test]
fn command_errors() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    assert_eq!(
        d.cmd(PlanCommand::Continue, "nope", None, None),
        Err(CommandError::NotFound("Plan nope not found".to_owned()))
    );
    assert_eq!(
        d.cmd(PlanCommand::Interrupt, "deploy", Some("nope"), None),
        Err(CommandError::NotFound("Phase nope not found".to_owned()))
    );
    assert_eq!(
        d.cmd(
            PlanCommand::ForceComplete,
            "deploy",
            Some("hello"),
            Some("x")
        ),
        Err(CommandError::NotFound("Step x not found".to_owned()))
    );
    assert_eq!(
        d.cmd(PlanCommand::Restart, "deploy", None, Some("x")),
        Err(CommandError::BadRequest("Missing phase".to_owned()))
    );
}

#[test]
fn interrupt_and_continue_a_phase() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    d.run_all_launched();
    assert_eq!(
        d.cmd(PlanCommand::Interrupt, "deploy", Some("world"), None),
        Ok(CommandOutcome::Done("Received cmd: interrupt".to_owned()))
    );
    assert_eq!(
        d.cmd(PlanCommand::Interrupt, "deploy", Some("world"), None),
        Ok(CommandOutcome::AlreadyDone)
    );
    assert!(d.launch_all().is_empty());
    assert_eq!(d.view("deploy").phases[1].status, Status::Waiting);
    assert_eq!(
        d.cmd(PlanCommand::Continue, "deploy", Some("world"), None),
        Ok(CommandOutcome::Done("Received cmd: continue".to_owned()))
    );
    assert_eq!(
        d.cmd(PlanCommand::Continue, "deploy", Some("world"), None),
        Ok(CommandOutcome::AlreadyDone)
    );
    assert_eq!(d.launch_all(), vec!["world-0:[server]"]);
    // interrupting a complete phase is already done
    assert_eq!(
        d.cmd(PlanCommand::Interrupt, "deploy", Some("hello"), None),
        Ok(CommandOutcome::AlreadyDone)
    );
}

fn deployed(spec: &ServiceSpec) -> Driver {
    let mut d = Driver::new(spec, TaskTable::default());
    for _ in 0..10 {
        d.launch_all();
        d.run_all_launched();
    }
    assert_eq!(d.view("deploy").status, Status::Complete);
    d
}

#[test]
fn a_failed_task_is_recovered_in_place() {
    let spec = hello_world();
    let mut d = deployed(&spec);
    // It ran for a while (a task failing at once waits the shortest relaunch interval).
    d.now += 1_000;
    d.send("world-1-server", TaskState::TaskFailed);
    assert_eq!(
        d.view("deploy").status,
        Status::Complete,
        "deploy stays complete"
    );
    let launched = d.launch_all();
    assert_eq!(launched, vec!["world-1:[server]"]);
    let v = d.view("recovery");
    assert_eq!(v.phases.len(), 1);
    assert_eq!(v.phases[0].name, "world-1:[server]");
    // The reference's message, then how the task failed (beyond the reference).
    assert!(
        v.phases[0].steps[0].message.contains(
            "RecoveryType: TRANSIENT; task world-1-server failed 1 time in a row, last: TASK_FAILED"
        ),
        "{}",
        v.phases[0].steps[0].message
    );
    d.run_all_launched();
    assert_eq!(d.view("recovery").status, Status::Complete);
    // the completed phase stays; a new failure of the same pod replaces it
    let old_id = d.view("recovery").phases[0].id.clone();
    d.send("world-1-server", TaskState::TaskKilled);
    d.launch_all();
    let v = d.view("recovery");
    assert_eq!(v.phases.len(), 1);
    assert_ne!(v.phases[0].id, old_id);
}

#[test]
fn a_task_failing_at_once_is_not_relaunched_within_the_interval() {
    let spec = hello_world();
    let mut d = deployed(&spec);
    d.now += 5_000;
    d.send("world-1-server", TaskState::TaskFailed);
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    // Fails again at once: held back until a second after its launch.
    d.send("world-1-server", TaskState::TaskFailed);
    assert!(d.launch_all().is_empty());
    d.now += 999;
    assert!(d.launch_all().is_empty());
    d.now += 1;
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
}

#[test]
fn a_task_failing_again_and_again_is_named_in_the_step_and_the_plan_errors() {
    let spec = hello_world();
    let mut d = deployed(&spec);
    for round in 1..=3u32 {
        d.now += 5_000;
        d.send("world-1-server", TaskState::TaskFailed);
        assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
        let v = d.view("recovery");
        let message = &v.phases[0].steps[0].message;
        assert!(
            message.contains(&format!("task world-1-server failed {round} time")),
            "{message}"
        );
        if round < 3 {
            assert!(v.errors.is_empty(), "{:?}", v.errors);
        } else {
            assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
            assert!(
                v.errors[0].contains("failed 3 times in a row"),
                "{:?}",
                v.errors
            );
            assert_eq!(v.http_code(), 417);
        }
        assert_same_json(
            &d.set
                .report_of("recovery", &d.tasks, d.now)
                .expect("recovery"),
        );
        d.run_all_launched();
    }
    // A run of more than a minute that fails starts a new count.
    d.now += 120_000;
    d.send("world-1-server", TaskState::TaskFailed);
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    let v = d.view("recovery");
    assert!(v.errors.is_empty(), "{:?}", v.errors);
    assert!(
        v.phases[0].steps[0]
            .message
            .contains("failed 1 time in a row"),
        "{}",
        v.phases[0].steps[0].message
    );
}

#[test]
fn essential_and_non_essential_failures() {
    let spec = service(vec![pod(
        "hello",
        1,
        vec![
            task("essential", Goal::Running, true),
            task("nonessential", Goal::Running, false),
        ],
    )]);
    let mut d = deployed(&spec);
    d.now += 1_000;
    d.send("hello-0-nonessential", TaskState::TaskFailed);
    assert_eq!(d.launch_all(), vec!["hello-0:[nonessential]"]);
    d.run_all_launched();
    d.now += 1_000;
    d.send("hello-0-essential", TaskState::TaskFailed);
    assert_eq!(d.launch_all(), vec!["hello-0:[essential, nonessential]"]);
}

#[test]
fn permanently_failed_pods_are_replaced() {
    let spec = hello_world();
    let mut d = deployed(&spec);
    let mut info = d.tasks.task("hello-0-server").unwrap().info.clone();
    info.labels.set("permanently-failed", "true");
    d.tasks.put_info(info);
    d.send("hello-0-server", TaskState::TaskKilled);
    d.launch_all();
    let v = d.view("recovery");
    assert!(
        v.phases[0].steps[0]
            .message
            .ends_with("RecoveryType: PERMANENT")
    );
}

#[test]
fn recovery_waits_while_another_plan_works_on_the_pod() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all(); // hello-0 STARTING in deploy
    d.send("hello-0-server", TaskState::TaskKilled); // → deploy step PENDING, not dirty
    let cands = d.set.candidates(&d.tasks, &mut d.ids, d.now);
    assert!(
        cands.iter().all(|c| c.plan_name() == "deploy"),
        "deploy relaunches; recovery does not duplicate it: {cands:?}"
    );
}

#[test]
fn back_off_delays_recovery() {
    let spec = hello_world();
    let on = BackoffPolicy {
        enabled: true,
        initial_ms: 10_000,
        factor: 2.0,
        max_ms: 60_000,
        min_relaunch_ms: 1_000,
    };
    let mut d = Driver::with(&spec, TaskTable::default(), on, false);
    for _ in 0..5 {
        d.launch_all();
        d.run_all_launched();
    }
    d.send("hello-0-server", TaskState::TaskFailed);
    assert!(d.launch_all().is_empty());
    assert_eq!(d.view("recovery").status, Status::Delayed);
    assert!(d.set.is_idle(&d.tasks, &mut d.ids, d.now));
    assert_eq!(d.set.next_wakeup(d.now), Some(d.now + 10_000));
    d.now += 10_000;
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
}

#[test]
fn finish_and_once_tasks() {
    let mut spec = service(vec![pod(
        "world",
        1,
        vec![
            task("server", Goal::Running, true),
            task("finish", Goal::Finish, true),
        ],
    )]);
    spec.plans = vec![plan(
        "deploy",
        PlanStrategy::Serial,
        vec![
            phase(
                "server",
                "world",
                PhaseStrategy::Serial,
                default_steps(&[&["server"]]),
            ),
            phase(
                "finish",
                "world",
                PhaseStrategy::Serial,
                default_steps(&[&["finish"]]),
            ),
        ],
    )];
    let mut d = Driver::new(&spec, TaskTable::default());
    d.launch_all();
    d.run_all_launched();
    d.launch_all();
    d.send("world-0-finish", TaskState::TaskRunning);
    assert_eq!(d.statuses("deploy")[1].1, Status::Started);
    d.send("world-0-finish", TaskState::TaskFinished);
    assert_eq!(d.view("deploy").status, Status::Complete);
    // a finished FINISH task is never recovered
    d.launch_all();
    assert!(d.view("recovery").phases.is_empty());
}

#[test]
fn decommission_plan_for_removed_instances() {
    let mut tasks = table(
        &[
            ("hello", 0, "server", "h0", TaskState::TaskRunning),
            ("world", 0, "server", "w0", TaskState::TaskRunning),
            ("world", 1, "server", "w1", TaskState::TaskRunning),
            ("world", 2, "server", "w2", TaskState::TaskRunning),
            ("gone", 0, "server", "g0", TaskState::TaskRunning),
        ],
        CONFIG,
    );
    let mut w2 = tasks.task("world-2-server").unwrap().info.clone();
    w2.resources.push(berth_mesos::Resource {
        reservations: vec![berth_mesos::ReservationInfo {
            kind: berth_mesos::ReservationType::Dynamic,
            role: "hello-world-role".into(),
            principal: None,
            labels: Some(berth_mesos::LabelsHash {
                labels: vec![berth_mesos::Label {
                    key: "resource_id".into(),
                    value: "rid-1".into(),
                }],
            }),
        }]
        .into(),
        ..berth_mesos::Resource::scalar("cpus", 0.1)
    });
    tasks.put_info(w2);
    let spec = service(vec![
        pod("hello", 1, vec![task("server", Goal::Running, true)]),
        pod("world", 1, vec![task("server", Goal::Running, true)]),
    ]);
    let d = Driver::new(&spec, tasks);
    assert_eq!(
        d.set.plan_names(),
        vec!["deploy", "recovery", "decommission"]
    );
    let v = d.view("decommission");
    let phases: Vec<&str> = v.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, vec!["gone-0", "world-2", "world-1"]);
    let steps: Vec<&str> = v.phases[1].steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        vec![
            "kill-world-2-server",
            "unreserve-rid-1",
            "erase-world-2-server"
        ]
    );
}

#[test]
fn update_plan_replaces_deploy_after_the_first_deployment() {
    let mut spec = service(vec![pod(
        "hello",
        2,
        vec![task("server", Goal::Running, true)],
    )]);
    spec.plans = vec![
        plan(
            "deploy",
            PlanStrategy::Parallel,
            vec![phase(
                "hello-deploy",
                "hello",
                PhaseStrategy::Parallel,
                None,
            )],
        ),
        plan(
            "update",
            PlanStrategy::Serial,
            vec![phase("hello-update", "hello", PhaseStrategy::Serial, None)],
        ),
    ];
    let d = Driver::with(&spec, TaskTable::default(), BackoffPolicy::default(), false);
    assert_eq!(d.view("deploy").phases[0].name, "hello-deploy");
    assert_eq!(d.set.plan_names(), vec!["deploy", "recovery"]);
    let d = Driver::with(&spec, TaskTable::default(), BackoffPolicy::default(), true);
    assert_eq!(d.view("deploy").phases[0].name, "hello-update");
}

#[test]
fn config_errors_make_the_deploy_plan_error() {
    let spec = hello_world();
    let tasks = TaskTable::default();
    let mut ids = SequentialIds::default();
    let mut with_errors = |config_errors: Vec<String>| {
        PlanSet::new(
            &PlanContext {
                spec: &spec,
                target_config_id: CONFIG,
                tasks: &tasks,
                deployed_before: false,
                backoff: BackoffPolicy::default(),
                config_errors,
            },
            &mut ids,
            0,
        )
    };
    let set = with_errors(vec![
        "Field: 'user'; Transition: 'a' => 'b'; Message: 'no'; Fatal: true".to_owned(),
    ]);
    let odd = with_errors(vec!["a \"quoted\" \\ value\non two lines".to_owned()]);
    let v = set.view(set.plan("deploy").unwrap(), &tasks, 0);
    assert_same_json(&set.report_of("deploy", &tasks, 0).expect("deploy"));
    assert_same_json(&odd.report_of("deploy", &tasks, 0).expect("deploy"));
    assert_eq!(v.status, Status::Error);
    assert_eq!(v.http_code(), 417);
    let tree = render_tree("deploy", &v);
    assert!(
        tree.ends_with(
            "\nErrors:\n- Field: 'user'; Transition: 'a' => 'b'; Message: 'no'; Fatal: true\n"
        ),
        "{tree}"
    );
}

#[test]
fn plan_json_has_the_reference_shape() {
    let spec = hello_world();
    let d = deployed(&spec);
    let json = serde_json::to_value(d.view("deploy")).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["phases", "strategy", "errors", "status"]);
    let phase = &json["phases"][0];
    let keys: Vec<&String> = phase.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["id", "name", "steps", "strategy", "status"]);
    let step = &phase["steps"][0];
    let keys: Vec<&String> = step.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["id", "status", "name", "message"]);
    assert_eq!(step["status"], "COMPLETE");
    let id = step["id"].as_str().unwrap();
    assert_eq!(
        step["message"].as_str().unwrap(),
        format!("DeploymentStep: hello-0:[server] [{id}] with status: COMPLETE")
    );
}

#[test]
fn tree_rendering() {
    let spec = hello_world();
    let d = deployed(&spec);
    assert_eq!(
        render_tree("deploy", &d.view("deploy")),
        "deploy (serial strategy) (COMPLETE)\n\
         ├─ hello (serial strategy) (COMPLETE)\n\
         │  └─ hello-0:[server] (COMPLETE)\n\
         └─ world (serial strategy) (COMPLETE)\n\
         \u{20}  ├─ world-0:[server] (COMPLETE)\n\
         \u{20}  └─ world-1:[server] (COMPLETE)\n"
    );
}

#[test]
fn history_records_operator_commands() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    d.now = 42;
    d.cmd(PlanCommand::Interrupt, "deploy", None, None).unwrap();
    let last = d.set.history().last().unwrap();
    assert_eq!(
        (last.at, last.plan.as_str(), last.what.as_str()),
        (42, "deploy", "operator: interrupt")
    );
    assert_eq!(names(&d.tasks).len(), 0);
}

#[test]
fn a_report_keeps_the_plan_as_it_was_while_the_plans_move_on() {
    let spec = hello_world();
    let mut d = deployed(&spec);
    d.now += 1_000;
    d.send("world-1-server", TaskState::TaskFailed);
    d.launch_all();
    let report = d
        .set
        .report_of("recovery", &d.tasks, d.now)
        .expect("the recovery plan exists");
    let before = report.view();
    assert_eq!(
        before,
        d.view("recovery"),
        "a report's view is the plan's view"
    );
    assert_eq!(report.http_code(), before.http_code());
    // Its JSON, written straight from the report, is its view's.
    assert_eq!(json(&report), json(&before));
    assert_same_json(&report);
    let deploy = d.set.report_of("deploy", &d.tasks, d.now).expect("deploy");
    assert_eq!(json(&deploy), json(&deploy.view()));
    assert_same_json(&deploy);
    assert!(
        json(&report)["phases"][0]["steps"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("RecoveryType: TRANSIENT; task world-1-server failed")),
        "{}",
        json(&report)
    );
    assert_eq!(
        report
            .steps()
            .map(|(n, s, _)| (n, s.name.clone()))
            .collect::<Vec<_>>(),
        vec![(0, "world-1:[server]".to_owned())]
    );
    // The recovery plan changes (its phase completes, then another pod fails: a new phase)
    // while the report is held: the report still shows the plan as it was.
    d.run_all_launched();
    d.send("hello-0-server", TaskState::TaskFailed);
    d.launch_all();
    let now = d.view("recovery");
    assert_eq!(now.phases.len(), 2, "{now:?}");
    assert_eq!(report.view(), before);
    // And the plans' own statuses are read right after the change (each step at its slot).
    assert_eq!(now.phases[0].status, Status::Complete);
    assert_eq!(now.phases[1].name, "hello-0:[server]");
}

#[test]
fn a_plan_with_steps_still_at_work_is_known_unsettled_without_a_walk() {
    let spec = hello_world();
    let mut d = Driver::new(&spec, TaskTable::default());
    let settled = |d: &Driver, plan: &str| {
        let p = d.set.plan(plan).expect("plan exists");
        d.set.may_be_settled(p)
    };
    assert!(!settled(&d, "deploy"), "nothing deployed yet");
    d.launch_all();
    assert!(!settled(&d, "deploy"));
    for _ in 0..10 {
        d.launch_all();
        d.run_all_launched();
    }
    assert_eq!(d.view("deploy").status, Status::Complete);
    assert!(settled(&d, "deploy"), "every step complete");
    // An empty recovery plan is complete; one with a failed pod to relaunch is not.
    assert!(settled(&d, "recovery"));
    d.now += 1_000;
    d.send("world-1-server", TaskState::TaskFailed);
    d.launch_all();
    assert!(!settled(&d, "recovery"));
    d.run_all_launched();
    assert!(settled(&d, "recovery"));
}

/// The JSON the API sends for a report (written directly) is byte for byte serde_json's.
fn assert_same_json(report: &berth_plan::PlanReport) {
    let fast = report.to_json_pretty();
    let serde = serde_json::to_vec_pretty(report).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&serde)
    );
    // In pieces as well, whatever their size.
    for chunk in [1, 300, 1 << 20] {
        let mut cursor = berth_plan::JsonCursor::default();
        let mut pieces = Vec::new();
        while let Some(piece) = cursor.next_chunk(report, chunk) {
            assert!(!piece.is_empty());
            pieces.push(piece);
        }
        assert_eq!(pieces.concat(), serde, "pieces of {chunk} bytes");
        assert!(cursor.next_chunk(report, chunk).is_none(), "ends once");
    }
}

/// A value as JSON.
fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_report_says_why_steps_wait_in_step_order() {
    use berth_plan::WaitSummary;
    use std::sync::Arc;
    let spec = hello_world();
    let d = Driver::new(&spec, TaskTable::default());
    let mut report = d.set.report_of("deploy", &d.tasks, d.now).expect("deploy");
    let summary = |n: u64| {
        Arc::new(WaitSummary {
            last_evaluated: n,
            declined_last_minute: n,
            reasons: Vec::new(),
            closest_miss: None,
            sampled_by: None,
        })
    };
    report.set_waiting(2, summary(2));
    report.set_waiting(0, summary(0));
    report.set_waiting(2, summary(3));
    // Text that needs escaping, nested at the step's depth.
    let mut odd = WaitSummary::clone(&summary(1));
    odd.reasons.push(berth_plan::WaitReason {
        reason: "placement: \"quoted\"\\ and\nnew line\u{1}".to_owned(),
        count: 2,
        agents: 1,
    });
    odd.closest_miss = Some("cpus: é ✓ \t".to_owned());
    odd.sampled_by = Some("hello-0:[server]".to_owned());
    report.set_waiting(1, Arc::new(odd));
    assert_same_json(&report);
    let view = report.view();
    let waiting: Vec<Option<u64>> = view
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .map(|s| s.waiting.as_ref().map(|w| w.declined_last_minute))
        .collect();
    assert_eq!(waiting, vec![Some(0), Some(1), Some(3)]);
    assert_eq!(json(&report), json(&view));
}

#[test]
fn candidates_say_whether_they_are_every_unfinished_step() {
    let covering = |d: &mut Driver| d.set.candidates_covering(&d.tasks, &mut d.ids, d.now);
    // A parallel plan of parallel phases: every step is a candidate from the start, and
    // stays one while it starts.
    let spec = hello_and_world(
        2,
        PlanStrategy::Parallel,
        [
            ("hello", PhaseStrategy::Parallel),
            ("world", PhaseStrategy::Parallel),
        ],
    );
    let mut d = Driver::new(&spec, TaskTable::default());
    let (list, all) = covering(&mut d);
    assert_eq!((list.len(), all), (4, true));
    assert_eq!(d.launch_all().len(), 4);
    assert!(covering(&mut d).1, "starting steps are candidates too");
    d.run_all_launched();
    let (list, all) = covering(&mut d);
    assert_eq!((list.len(), all), (0, true), "nothing left to do");

    // Serial phases: the second phase's steps wait behind the first.
    let mut d = Driver::new(&hello_world(), TaskTable::default());
    let (list, all) = covering(&mut d);
    assert_eq!((list.len(), all), (1, false));
    // A serial phase: the next step waits behind the one starting.
    assert_eq!(d.launch_all(), vec!["hello-0:[server]"]);
    d.run_all_launched();
    assert_eq!(d.launch_all(), vec!["world-0:[server]"]);
    assert!(!covering(&mut d).1, "world-1 waits behind world-0");
    d.run_all_launched();
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    assert!(covering(&mut d).1, "the last step is the only one left");
    // A step delayed by back-off is not a candidate: time brings it back, not a status.
    d.run_all_launched();
    d.now += 1_000;
    d.send("world-1-server", TaskState::TaskFailed);
    assert_eq!(d.launch_all(), vec!["world-1:[server]"]);
    d.send("world-1-server", TaskState::TaskFailed);
    let (list, all) = covering(&mut d);
    assert!(list.is_empty(), "delayed: {list:?}");
    assert!(!all, "a delayed step is left out");
}
