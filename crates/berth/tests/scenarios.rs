//! The DC/OS SDK hello-world acceptance scenarios, ported to berth's local cluster with real
//! processes. The service is the original hello-world package, read unchanged from
//! `../shared/peer-specs/helloworld` and installed with its default options (plus what each
//! scenario sets). Names follow the original tests.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Berth, peer_helloworld, text};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);
/// A relaunch waits out the package's default back-off (60 s after a first failure) first.
const RELAUNCH: Duration = Duration::from_secs(150);

fn start(b: &mut Berth, options: &str) {
    let opts = b.options(options);
    b.start(&peer_helloworld(), &["--options", &opts]);
}

fn ids(b: &Berth) -> BTreeMap<String, String> {
    b.task_ids()
        .into_iter()
        .map(|(n, (id, _))| (n, id))
        .collect()
}

fn wait_running(b: &Berth, task: &str, other_than: &str) -> String {
    b.wait_relaunched(task, other_than, RELAUNCH)
}

fn wait_plans_complete(b: &Berth) {
    b.wait_complete("deploy", LONG);
    b.wait_complete("recovery", LONG);
}

fn one_copy_each(b: &Berth) {
    for (task, n) in b.live_copies() {
        assert_eq!(n, 1, "{task} has {n} live copies");
    }
}

/// test_kill_scheduler, test_kill_hello_task, test_kill_world_executor, test_kill_all_executors
#[test]
fn recovery_from_killed_processes() {
    let mut b = Berth::new(22000);
    start(&mut b, r#"{"world": {"count": 3}}"#);
    b.wait_complete("deploy", LONG);
    let before = ids(&b);
    assert_eq!(before.len(), 4);

    // test_kill_scheduler: the scheduler restarts and relaunches nothing.
    b.kill9();
    start(&mut b, r#"{"world": {"count": 3}}"#);
    b.wait_complete("deploy", LONG);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        ids(&b),
        before,
        "a task was relaunched after a scheduler restart"
    );

    // test_kill_hello_task: relaunched in place with a new id.
    let agent = b.agent_of("hello-0", "hello-0-server");
    b.kill_task("hello-0-server");
    let new_hello = wait_running(&b, "hello-0-server", &before["hello-0-server"]);
    assert_ne!(new_hello, before["hello-0-server"]);
    assert_eq!(
        b.agent_of("hello-0", "hello-0-server"),
        agent,
        "hello moved"
    );
    wait_plans_complete(&b);
    assert_eq!(
        b.step("recovery", "hello-0:[server]").as_deref(),
        Some("COMPLETE")
    );

    // test_kill_world_executor: the executor dies, its task with it; relaunched in place.
    let pid = b
        .executor_pid("world-0-server")
        .expect("world-0's executor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let new_world = wait_running(&b, "world-0-server", &before["world-0-server"]);
    assert_ne!(new_world, before["world-0-server"]);
    wait_plans_complete(&b);

    // test_kill_all_executors: every pod comes back.
    let current = ids(&b);
    for task in current.keys() {
        if let Some(pid) = b.executor_pid(task) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for (task, id) in &current {
        wait_running(&b, task, id);
    }
    wait_plans_complete(&b);
    one_copy_each(&b);
}

/// test_pod_restart, test_pod_replace, test_pods_restart_graceful_shutdown,
/// test_pod_pause_resume
#[test]
fn pod_operations() {
    let mut b = Berth::new(22400);
    start(
        &mut b,
        r#"{"world": {"count": 3, "kill_grace_period": 30}}"#,
    );
    b.wait_complete("deploy", LONG);
    let before = ids(&b);

    // test_pod_restart: same agent, new id.
    let agent = b.agent_of("hello-0", "hello-0-server");
    let (code, body) = b.post("/v1/pods/hello-0/restart", None);
    assert_eq!(code, 200);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"pod": "hello-0", "tasks": ["hello-0-server"]})
    );
    wait_running(&b, "hello-0-server", &before["hello-0-server"]);
    assert_eq!(b.agent_of("hello-0", "hello-0-server"), agent);
    wait_plans_complete(&b);

    // test_pods_restart_graceful_shutdown: SIGTERM, the handler finishes within the grace.
    let o = b.cli(&["pods", "restart", "world-0"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_running(&b, "world-0-server", &before["world-0-server"]);
    let log = b.task_stdout(&before["world-0-server"]);
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(log.contains("all clean"), "{log}");

    // test_pod_replace: new id; deploy and recovery complete.
    let o = b.cli(&["pods", "replace", "world-1"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"pod": "world-1", "tasks": ["world-1-server"]})
    );
    wait_running(&b, "world-1-server", &before["world-1-server"]);
    wait_plans_complete(&b);
    let (_, recovery) = b.get("/v1/plans/recovery");
    assert!(
        recovery.to_string().contains("RecoveryType: PERMANENT"),
        "{recovery}"
    );

    // test_pod_pause_resume
    let hello = ids(&b)["hello-0-server"].clone();
    let o = b.cli(&["debug", "pod", "pause", "hello-0", "-t", "server"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut paused = String::new();
    b.wait_for("hello-0 paused", LONG, || {
        match b.task_ids().get("hello-0-server") {
            Some((id, s)) if *id != hello && s == "PAUSED" => {
                paused = id.clone();
                b.step("deploy", "hello-0:[server]").as_deref() == Some("PAUSED")
            }
            _ => false,
        }
    });
    assert_eq!(
        b.agent_of("hello-0", "hello-0-server"),
        agent,
        "paused in place"
    );
    let (_, info) = b.get("/v1/pods/hello-0/info");
    let server = info
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["info"]["name"] == "hello-0-server")
        .unwrap();
    assert!(
        server["info"]["command"]["value"]
            .as_str()
            .unwrap()
            .contains("This task is PAUSED")
    );
    assert_eq!(
        server["info"]["check"]["command"]["command"]["value"],
        "exit 1"
    );
    let (_, status) = b.get("/v1/pods/hello-0/status");
    assert_eq!(status["tasks"][0]["status"], "PAUSED");
    assert_eq!(b.plan_status("deploy"), "COMPLETE");
    // The paused task's recovery phase is parked; older finished recovery
    // phases may make the whole plan read IN_PROGRESS rather than STARTED.
    assert!(matches!(
        b.plan_status("recovery").as_str(),
        "STARTED" | "IN_PROGRESS"
    ));
    let o = b.cli(&["debug", "pod", "resume", "hello-0", "-t", "server"]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_running(&b, "hello-0-server", &paused);
    b.wait_for("hello-0 resumed", LONG, || {
        b.step("deploy", "hello-0:[server]").as_deref() == Some("COMPLETE")
            && b.task_ids()["hello-0-server"].1 == "RUNNING"
    });
    let (_, info) = b.get("/v1/pods/hello-0/info");
    let server = info
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["info"]["name"] == "hello-0-server")
        .unwrap();
    assert!(
        !server["info"]["command"]["value"]
            .as_str()
            .unwrap()
            .contains("PAUSED")
    );

    // Bad input: unknown pods get a 404 and a clear CLI message.
    let (code, body) = b.post("/v1/pods/nope-7/restart", None);
    assert_eq!((code, body.as_str()), (404, "Pod nope-7 not found"));
    let o = b.cli(&["pods", "replace", "nope-7"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("Pod nope-7 not found"));
    one_copy_each(&b);
}

/// test_shutdown_host, test_auto_replace_on_decommission
#[test]
fn machine_failures() {
    let mut b = Berth::with_agents(22800, 4);
    start(&mut b, "{}");
    b.wait_complete("deploy", LONG);
    let before = ids(&b);

    // test_shutdown_host: the machine of world-0 goes down; its pods are replaced elsewhere.
    let host = b.agent_of("world-0", "world-0-server");
    let on_host: Vec<(String, String)> = [
        ("hello-0", "hello-0-server"),
        ("world-0", "world-0-server"),
        ("world-1", "world-1-server"),
    ]
    .iter()
    .filter(|(pod, task)| b.agent_of(pod, task) == host)
    .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
    .collect();
    let o = b.cli(&["agents", "stop", &host]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_for("world-0 unreachable", LONG, || {
        b.get("/v1/pods/world-0/info").1[0]["status"]["state"] == "TASK_UNREACHABLE"
    });
    for (pod, task) in &on_host {
        let o = b.cli(&["pods", "replace", pod]);
        assert!(o.status.success(), "{:?}", text(&o));
        wait_running(&b, task, &before[task]);
        assert_ne!(b.agent_of(pod, task), host, "{pod} did not move");
    }
    wait_plans_complete(&b);
    // The machine comes back; its stale reservations are released.
    let o = b.cli(&["agents", "start", &host]);
    assert!(o.status.success(), "{:?}", text(&o));

    // test_auto_replace_on_decommission: a drained agent's pods move without an operator.
    let host = b.agent_of("world-1", "world-1-server");
    let o = b.cli(&["agents", "drain", &host]);
    assert!(o.status.success(), "{:?}", text(&o));
    wait_running(&b, "world-1-server", &before["world-1-server"]);
    assert_ne!(b.agent_of("world-1", "world-1-server"), host);
    wait_plans_complete(&b);
    one_copy_each(&b);

    // Bad input: an unknown agent.
    let o = b.cli(&["agents", "stop", "agent-9"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("agent-9"), "{:?}", text(&o));
}

/// The timed replacement policy (set by the package's options): a pod whose machine stays
/// down longer than the permanent-failure timeout is replaced elsewhere without an operator,
/// one pod per minimum delay.
#[test]
fn timed_auto_replace_of_a_dead_machine() {
    let mut b = Berth::with_agents(28400, 4);
    // The package turns the policy on by default (120 s); shortened here.
    start(
        &mut b,
        r#"{"service": {"external_volumes": {"pod-replacement-failure-policy":
            {"enable-automatic-pod-replacement": true,
             "permanent-failure-timeout-secs": 3, "min-replace-delay-secs": 1}}}}"#,
    );
    b.wait_complete("deploy", LONG);
    let before = ids(&b);
    let host = b.agent_of("world-0", "world-0-server");
    let on_host: Vec<&str> = ["hello-0", "world-0", "world-1"]
        .into_iter()
        .filter(|pod| b.agent_of(pod, &format!("{pod}-server")) == host)
        .collect();
    let o = b.cli(&["agents", "stop", &host]);
    assert!(o.status.success(), "{:?}", text(&o));
    for pod in &on_host {
        let task = format!("{pod}-server");
        wait_running(&b, &task, &before[&task]);
        assert_ne!(b.agent_of(pod, &task), host, "{pod} did not move");
    }
    wait_plans_complete(&b);
    let (_, recovery) = b.get("/v1/plans/recovery");
    assert!(
        recovery.to_string().contains("RecoveryType: PERMANENT"),
        "{recovery}"
    );
    assert!(b.log().contains("replacing it"), "{}", b.log());
    one_copy_each(&b);
}

/// test_nonessential_tasks
#[test]
fn nonessential_tasks() {
    let mut b = Berth::new(23200);
    start(&mut b, r#"{"service": {"yaml": "nonessential_tasks"}}"#);
    b.wait_complete("deploy", LONG);
    let before = ids(&b);
    // Killing the non-essential task relaunches only it.
    b.kill_task("hello-0-nonessential");
    wait_running(&b, "hello-0-nonessential", &before["hello-0-nonessential"]);
    wait_plans_complete(&b);
    assert_eq!(ids(&b)["hello-0-essential"], before["hello-0-essential"]);
    // Killing the essential task relaunches both, on the shared volume.
    let now = ids(&b);
    b.kill_task("hello-0-essential");
    wait_running(&b, "hello-0-essential", &now["hello-0-essential"]);
    wait_running(&b, "hello-0-nonessential", &now["hello-0-nonessential"]);
    wait_plans_complete(&b);
    let volumes: Vec<_> = std::fs::read_dir(b.data().join("cluster/agents"))
        .unwrap()
        .flatten()
        .flat_map(|a| {
            std::fs::read_dir(a.path().join("volumes"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|v| v.path())
        .collect();
    assert!(
        volumes
            .iter()
            .any(|v| v.join("essential").exists() && v.join("nonessential").exists()),
        "both tasks write to one shared volume: {volumes:?}"
    );
}

/// test_canary_strategy. The original `canary.yml` gives every hello pod the fixed port 9999,
/// which four pods cannot share on one machine; the example package's world pods (dynamic
/// ports) run the same canary rules.
#[test]
fn canary_strategy() {
    let mut b = Berth::with_agents(23600, 4);
    let opts = b.options(r#"{"world": {"count": 4, "strategy": "serial-canary"}}"#);
    b.start(&common::hello_world(), &["--options", &opts]);
    b.wait_for("hello-0", LONG, || {
        b.step("deploy", "hello-0:[server]").as_deref() == Some("COMPLETE")
    });
    std::thread::sleep(Duration::from_secs(2));
    let worlds = |b: &Berth| {
        ids(b)
            .keys()
            .filter(|k| k.starts_with("world"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(worlds(&b).is_empty(), "nothing may start before continue");
    let (_, plan) = b.get("/v1/plans/deploy");
    assert_eq!(plan["status"], "WAITING");
    assert_eq!(plan["phases"][1]["strategy"], "serial-canary");
    let statuses: Vec<&str> = plan["phases"][1]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["WAITING", "WAITING", "PENDING", "PENDING"]);
    // A plan-level continue releases nothing.
    let _ = b.cli(&["plan", "continue", "deploy"]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(worlds(&b).is_empty());
    let o = b.cli(&["plan", "continue", "deploy", "world"]);
    assert_eq!(
        text(&o).0.trim(),
        r#""deploy" plan: phase "world" has been resumed."#
    );
    b.wait_for("world-0 only", LONG, || {
        b.step("deploy", "world-0:[server]").as_deref() == Some("COMPLETE")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        worlds(&b),
        vec!["world-0-server"],
        "world-1 waits for the second continue"
    );
    assert_eq!(b.plan_status("deploy"), "WAITING");
    b.cli(&["plan", "continue", "deploy", "world"]);
    b.wait_complete("deploy", LONG);
    assert_eq!(worlds(&b).len(), 4);
}

/// test_sidecar
#[test]
fn sidecar_plans() {
    let mut b = Berth::new(24000);
    start(&mut b, r#"{"service": {"yaml": "sidecar"}}"#);
    b.wait_complete("deploy", LONG);
    let (_, deploy) = b.get("/v1/plans/deploy");
    let phases: Vec<&str> = deploy["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, vec!["server-deploy", "once-deploy"]);
    let o = b.cli(&["plan", "start", "sidecar"]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_complete("sidecar", LONG);
    let o = b.cli(&[
        "plan",
        "start",
        "sidecar-parameterized",
        "-p",
        "PLAN_PARAMETER=parameterized",
    ]);
    assert!(
        text(&o).0.contains("PLAN_PARAMETER=parameterized"),
        "{:?}",
        text(&o)
    );
    b.wait_complete("sidecar-parameterized", LONG);
    // A failing ONCE task never creates recovery work.
    b.cli(&["plan", "start", "sidecar-toxic"]);
    std::thread::sleep(Duration::from_secs(4));
    let (_, recovery) = b.get("/v1/plans/recovery");
    assert!(
        recovery["phases"].as_array().unwrap().is_empty(),
        "{recovery}"
    );
    b.kill9();
    start(&mut b, r#"{"service": {"yaml": "sidecar"}}"#);
    std::thread::sleep(Duration::from_secs(2));
    let (_, recovery) = b.get("/v1/plans/recovery");
    assert!(
        recovery["phases"].as_array().unwrap().is_empty(),
        "{recovery}"
    );
}

/// test_goal_states: a FINISH task re-runs when its configuration changes.
#[test]
fn goal_states() {
    let mut b = Berth::new(24400);
    start(&mut b, r#"{"service": {"yaml": "finish_state"}}"#);
    b.wait_complete("deploy", LONG);
    let finish = ids(&b)["world-0-finish"].clone();
    assert_eq!(b.task_ids()["world-0-finish"].1, "FINISHED");
    b.stop();
    start(
        &mut b,
        r#"{"service": {"yaml": "finish_state"}, "world": {"cpus": 0.3}}"#,
    );
    b.wait_for("finish re-run", LONG, || {
        b.task_ids()
            .get("world-0-finish")
            .is_some_and(|(id, s)| *id != finish && s == "FINISHED")
    });
    b.wait_complete("deploy", LONG);
}

/// test_backoff: a crash loop shows DELAYED and suppresses offers.
#[test]
fn backoff() {
    let mut b = Berth::new(24800);
    start(&mut b, r#"{"service": {"yaml": "crash-loop", "sleep": 1}}"#);
    b.wait_for("deploy delayed", LONG, || {
        b.plan_status("deploy") == "DELAYED"
    });
    let (code, health) = b.get("/v1/health?verbose=true");
    assert_eq!(code, 208, "{health}");
    b.wait_for("offers suppressed", LONG, || {
        b.log().contains("nothing to do: suppressing offers")
    });
    // Force the deploy step: recovery owns the task now.
    let o = b.cli(&[
        "plan",
        "force-complete",
        "deploy",
        "crash",
        "hello-0:[server]",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_for("recovery takes over", LONG, || {
        matches!(
            b.plan_status("recovery").as_str(),
            "STARTED" | "DELAYED" | "IN_PROGRESS" | "PENDING"
        )
    });
}
