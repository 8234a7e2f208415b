//! Uninstall, janitor and the state tools against real processes on the local cluster, with
//! the embedded store (the ZooKeeper variants are in `zk.rs`).

use crate::common;

use std::time::Duration;

use common::{Berth, hello_world, text};

const LONG: Duration = Duration::from_secs(120);

/// `berth uninstall` (test_uninstall): plan `deploy` becomes the uninstall plan, runs to
/// COMPLETE, and nothing is left: no task, executor, reservation, volume or state. The same
/// service then installs again from nothing.
#[test]
fn uninstall_removes_everything_and_reinstall_starts_fresh() {
    let mut b = Berth::new(24000);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let (_, fw) = b.get("/v1/state/frameworkId");
    let before = b.task_ids();
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(!b.leftovers("hello-world-role").is_empty());

    // State browsing through the API while the scheduler runs.
    let o = b.cli(&["state", "tree"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let tree = text(&o).0;
    assert!(tree.starts_with("/dcos-service-hello-world\n"), "{tree}");
    for node in [
        "ConfigTarget",
        "FrameworkID",
        "Tasks",
        "hello-0-server",
        "TaskInfo",
        "TaskStatus",
        "servicename (11 B)",
    ] {
        assert!(tree.contains(node), "{node} missing from\n{tree}");
    }
    let o = b.cli(&["state", "get", "servicename"]);
    assert_eq!(text(&o).0.trim(), "hello-world");
    // A task record is stored as protobuf and shown as its JSON.
    let o = b.cli(&["state", "get", "Tasks/hello-0-server/TaskInfo"]);
    let shown: serde_json::Value = serde_json::from_str(&text(&o).0).expect("JSON");
    assert_eq!(shown["name"], "hello-0-server");
    assert_eq!(
        shown["task_id"]["value"].as_str(),
        before.get("hello-0-server").map(|(id, _)| id.as_str())
    );
    let o = b.cli(&["state", "get", "Tasks/nope/TaskInfo"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("not found"), "{:?}", text(&o));

    let o = b.cli(&["uninstall"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}\n{}", b.log());
    assert!(out.contains("Uninstalling service hello-world"), "{out}");
    assert!(out.contains("kill-tasks: 3/3 complete"), "{out}");
    assert!(out.contains("Uninstall complete"), "{out}");
    // The plan stays served as COMPLETE; only the uninstall plan exists.
    let (code, plans) = b.get("/v1/plans");
    assert_eq!((code, plans), (200, serde_json::json!(["deploy"])));
    let (code, plan) = b.get("/v1/plans/deploy");
    assert_eq!(code, 200);
    let phases: Vec<&str> = plan["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"kill-tasks"));
    assert_eq!(phases.last(), Some(&"deregister-service"));
    assert!(
        phases
            .iter()
            .any(|p| p.starts_with("unreserve-resources-agent-"))
    );
    b.wait_no_leftovers("hello-world-role", LONG);
    // No state node is left.
    let (code, _) = b.get("/v1/state/tree");
    assert_eq!(code, 404);
    // Changes are refused now; a second uninstall is already done.
    let (code, _) = b.post("/v1/pods/hello-0/restart", None);
    assert_eq!(code, 409);
    let (code, _) = b.post("/v1/uninstall", None);
    assert_eq!(code, 208);
    b.stop();

    // Reinstall: a new framework, new tasks.
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let (_, fw2) = b.get("/v1/state/frameworkId");
    assert_ne!(fw, fw2);
    let after = b.task_ids();
    assert_eq!(after.len(), 3);
    for (task, (id, _)) in &after {
        assert_ne!(&before[task].0, id, "{task} kept its id");
    }
}

/// `berth run --uninstall` after `kill -9` of the scheduler: it finishes the job and exits;
/// a later plain start of an uninstalling service is refused.
#[test]
fn run_uninstall_finishes_and_exits() {
    let mut b = Berth::new(24400);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    // Start the uninstall, then kill the scheduler in the middle of it.
    let (code, _) = b.post("/v1/uninstall", None);
    assert_eq!(code, 200);
    b.kill9();
    // A plain start now says what to do and writes nothing.
    let o = b.run_once(&hello_world(), &[]);
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(err.contains("is being uninstalled"), "{err}");
    assert!(err.contains("berth run --uninstall"), "{err}");

    b.start(&hello_world(), &["--uninstall"]);
    let status = b.wait_exit(LONG);
    assert!(status.success(), "{}", b.log());
    assert!(b.log().contains("hello-world uninstalled"), "{}", b.log());
    assert_eq!(b.leftovers("hello-world-role"), Vec::<String>::new());
    // Nothing stored any more.
    let o = b.run_berth(
        &[
            "state",
            "tree",
            "--state",
            &b.data().display().to_string(),
            "--name",
            "hello-world",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("nothing is stored at /dcos-service-hello-world"),
        "{:?}",
        text(&o)
    );
}

/// `berth janitor` with no scheduler: the scheduler was removed (kill -9) without an
/// uninstall; the janitor kills the tasks and releases everything.
#[test]
fn janitor_cleans_up_without_a_scheduler() {
    let mut b = Berth::new(24800);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    b.kill9();
    assert!(!b.task_processes().is_empty());
    // Bad input first: an unknown data directory.
    let o = b.run_berth(
        &[
            "janitor",
            "--name",
            "hello-world",
            "--data-dir",
            "/nonexistent/berth",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("does not exist"), "{:?}", text(&o));

    let o = b.janitor(&[]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("hello-world removed"), "{out}");
    assert_eq!(b.leftovers("hello-world-role"), Vec::<String>::new());
    assert!(b.task_processes().is_empty());
}

/// `berth state tree|get --state DIR` while the scheduler is down, and `delete-task`: it
/// refuses while a scheduler runs; afterwards the scheduler relaunches the task afresh.
#[test]
fn state_tools_read_and_delete_with_the_scheduler_down() {
    let mut b = Berth::new(25200);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let data = b.data().display().to_string();
    // `berth state … --state DATA --name hello-world`: straight from the store.
    let direct = |args: &[&str]| {
        let mut all = vec!["state"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state", &data, "--name", "hello-world"]);
        std::process::Command::new(common::berth_bin())
            .args(&all)
            .output()
            .expect("berth runs")
    };
    let before = b.task_ids();

    // While the scheduler runs, the direct tools refuse (the store is locked).
    let o = direct(&["delete-task", "world-0-server"]);
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(err.contains("in use by another berth process"), "{err}");
    assert!(err.contains("stop it first"), "{err}");

    b.stop();
    let o = direct(&["tree", "Tasks"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let tree = text(&o).0;
    assert!(
        tree.starts_with("/dcos-service-hello-world/Tasks\n"),
        "{tree}"
    );
    assert!(tree.contains("world-0-server"), "{tree}");
    let o = b.run_berth(
        &[
            "state",
            "get",
            "/dcos-service-hello-world/servicename",
            "--state",
            &data,
        ],
        &[],
    );
    assert_eq!(text(&o).0.trim(), "hello-world");
    // Bad input.
    let o = b.run_berth(&["state", "tree", "--state", "etcd://x:1"], &[]);
    assert!(
        text(&o).1.contains("unknown scheme 'etcd'"),
        "{:?}",
        text(&o)
    );
    let o = b.run_berth(&["state", "tree", "--state", &data], &[]);
    assert!(text(&o).1.contains("give --name SERVICE"), "{:?}", text(&o));
    let o = direct(&["delete-task", "nope-0-server"]);
    assert!(
        text(&o).1.contains("no task nope-0-server is stored"),
        "{:?}",
        text(&o)
    );

    let o = direct(&["delete-task", "world-0-server"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("Deleted task world-0-server"),
        "{:?}",
        text(&o)
    );

    // The restarted scheduler kills the old copy (unknown to it), releases its
    // reservations and launches world-0 afresh.
    b.start(&hello_world(), &[]);
    b.wait_for("world-0 relaunched", LONG, || {
        b.task_ids()
            .get("world-0-server")
            .is_some_and(|(id, s)| *id != before["world-0-server"].0 && s == "RUNNING")
    });
    b.wait_complete("deploy", LONG);
    b.wait_for("one copy of each task", LONG, || {
        let groups = b.task_groups();
        groups.len() == 3 && groups.values().all(|g| g.len() == 1)
    });
    assert_eq!(b.task_ids()["hello-0-server"].0, before["hello-0-server"].0);
}

/// "Framework has been removed": state left behind by a service whose framework was torn
/// down. The scheduler says exactly that and how to clean up, and exits; `berth janitor`
/// removes the stale state; then the service installs from nothing.
#[test]
fn stale_state_of_a_removed_framework_is_reported_and_the_janitor_clears_it() {
    let mut b = Berth::new(25600);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    b.stop();
    let state = b.data().join("state.redb");
    let stale = b.dir.path().join("state.redb.old");
    std::fs::copy(&state, &stale).unwrap();
    b.start(&hello_world(), &[]);
    let o = b.cli(&["uninstall"]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_no_leftovers("hello-world-role", LONG);
    b.stop();
    // The old state comes back (e.g. restored from a backup of the data directory).
    std::fs::copy(&stale, &state).unwrap();
    b.spawn(&hello_world(), &[]);
    let status = b.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    let log = b.log();
    assert!(log.contains("Framework has been removed"), "{log}");
    assert!(log.contains("berth janitor"), "{log}");
    // Nothing was launched for it.
    assert!(b.task_processes().is_empty());

    let o = b.janitor(&[]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    assert_eq!(b.task_ids().len(), 3);
}
