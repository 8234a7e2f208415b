//! `berth run --state zk://…` against a real ZooKeeper (a private server per test, started
//! from Debian's package on a free loopback port and stopped by its pid): the layout of the
//! stored tree, the leader lock (test_lock) and a standby taking over after `kill -9`,
//! ZooKeeper stopped and restarted mid-deploy (test_kill_zk), uninstall (test_uninstall) and
//! bad starts.

use crate::common;

use std::time::{Duration, Instant};

use berth_state::{Persister, ZkOptions, ZkPersister, ZkUrl};
use berth_zk_server::ZkServer;
use common::{Berth, hello_world, text};

const LONG: Duration = Duration::from_secs(120);

fn zk_server() -> ZkServer {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    ZkServer::builder()
        .base_dir(base)
        .start()
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"))
}

/// A direct client of the test's server (chroot included in `url`), to look at the tree.
fn client(url: &str) -> ZkPersister {
    let url = ZkUrl::parse(url).expect("url");
    ZkPersister::connect(&url, &ZkOptions::default()).expect("connect")
}

/// A stored TaskInfo: Mesos protobuf, as the SDK stores it.
fn stored_task_info(zk: &ZkPersister, path: &str) -> berth_mesos::TaskInfo {
    let bytes = zk.get(path).expect("read").expect("the TaskInfo is stored");
    berth_mesos::proto::decode_task_info(&bytes).expect("a protobuf TaskInfo")
}

fn node(zk: &ZkPersister, path: &str) -> Option<String> {
    zk.get(path)
        .expect("read")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// test_lock and failover: a second scheduler for the same service is refused, naming the
/// holder, and writes nothing; a standby waiting with `--lock-wait` takes over when the holder
/// is killed, and carries on without relaunching any task.
#[test]
fn lock_refuses_a_second_scheduler_and_a_standby_takes_over() {
    let server = zk_server();
    let url = format!("zk://{}/berth", server.connect_string());
    let mut b = Berth::new(26000);
    // A killed holder's lock goes when its session expires: keep that short.
    b.env
        .push(("BERTH_ZK_SESSION_TIMEOUT_SECS".into(), "4".into()));
    b.start(&hello_world(), &["--state", &url]);
    b.wait_complete("deploy", LONG);
    let before = b.task_ids();
    assert_eq!(before.len(), 3, "{before:?}");

    // The tree has the layout of the reference, under the chroot.
    let zk = client(&url);
    let root = "/dcos-service-hello-world";
    assert_eq!(
        node(&zk, &format!("{root}/servicename")).as_deref(),
        Some("hello-world")
    );
    assert_eq!(
        node(&zk, &format!("{root}/SchemaVersion")).as_deref(),
        Some("1")
    );
    let target = node(&zk, &format!("{root}/ConfigTarget")).expect("ConfigTarget");
    let fw = zk.get(&format!("{root}/FrameworkID")).unwrap().unwrap();
    let fw = berth_mesos::proto::decode_framework_id(&fw).expect("a protobuf FrameworkID");
    assert!(!fw.value.is_empty());
    let tasks = zk.children(&format!("{root}/Tasks")).unwrap();
    for task in ["hello-0-server", "world-0-server", "world-1-server"] {
        assert!(
            tasks.iter().any(|t| t == task),
            "{task} missing from {tasks:?}"
        );
    }
    let info = stored_task_info(&zk, &format!("{root}/Tasks/world-0-server/TaskInfo"));
    assert_eq!(info.name, "world-0-server");
    assert!(
        zk.children(&format!("{root}/Configurations"))
            .unwrap()
            .contains(&target)
    );
    assert_eq!(zk.children(&format!("{root}/lock")).unwrap().len(), 1);

    // test_lock: a second scheduler exits at once, naming the holder; nothing changes.
    let holder = b.pid().unwrap();
    let o = b.run_once(
        &hello_world(),
        &[
            "--state",
            &url,
            "--options",
            &b.options(r#"{"hello": {"cpus": 0.2}}"#),
        ],
    );
    let (_, err) = text(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("leader lock"), "{err}");
    assert!(err.contains(&format!("pid {holder}")), "{err}");
    assert_eq!(
        node(&zk, &format!("{root}/ConfigTarget")),
        Some(target.clone())
    );
    assert_eq!(zk.children(&format!("{root}/lock")).unwrap().len(), 1);
    let (_, id) = b.get("/v1/configurations/targetId");
    assert_eq!(id, serde_json::json!([target]));

    // Break glass: the stored tree straight from ZooKeeper; repairs refused while it runs.
    let direct = |args: &[&str]| {
        let mut all = vec!["state"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state", &url, "--name", "hello-world"]);
        b.run_berth(&all, &[])
    };
    let o = direct(&["tree"]);
    let tree = text(&o).0;
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(tree.starts_with("/dcos-service-hello-world\n"), "{tree}");
    for n in [
        "ConfigTarget",
        "FrameworkID",
        "world-1-server",
        "TaskStatus",
        "lock",
        "leader-",
    ] {
        assert!(tree.contains(n), "{n} missing from\n{tree}");
    }
    let o = direct(&["get", "ConfigTarget"]);
    assert_eq!(text(&o).0.trim(), target);
    let o = direct(&["delete-task", "world-0-server"]);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(err.contains(&format!("pid {holder}")), "{err}");
    assert!(node(&zk, &format!("{root}/Tasks/world-0-server/TaskInfo")).is_some());

    // Failover: a standby waits for the lock; the holder is killed; the standby takes over.
    let mut holder = b.detach().expect("holder");
    b.port = common::free_port();
    b.spawn(&hello_world(), &["--state", &url, "--lock-wait", "120"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        b.get_status("/v1/health").is_none(),
        "the standby must wait"
    );
    assert!(b.log().contains("waiting up to 120 s"), "{}", b.log());
    let killed = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();
    b.wait_api(Duration::from_secs(60));
    let took_over = killed.elapsed();
    b.wait_complete("deploy", LONG);
    let after = b.task_ids();
    assert_eq!(before, after, "tasks were relaunched by the standby");
    for (task, pids) in b.task_processes() {
        assert!(!pids.is_empty(), "{task}");
    }
    assert_eq!(node(&zk, &format!("{root}/ConfigTarget")), Some(target));
    eprintln!("standby took over {took_over:?} after kill -9 of the holder");
}

/// test_kill_zk: ZooKeeper stopped mid-deploy. The scheduler makes no change without a
/// durable write, serves reads, reports 500 on /v1/health with the reason, and finishes the
/// deploy when ZooKeeper is back, with exactly one copy of every task.
#[test]
fn zookeeper_stopped_mid_deploy_pauses_changes_and_the_deploy_resumes() {
    let mut server = zk_server();
    let url = format!("zk://{}", server.connect_string());
    let mut b = Berth::new(26400);
    let options = b.options(r#"{"service": {"sleep": 3}}"#);
    b.start(&hello_world(), &["--state", &url, "--options", &options]);
    b.wait_for("hello-0 deployed", LONG, || {
        b.step("deploy", "hello-0:[server]").as_deref() == Some("COMPLETE")
    });
    server.stop();
    let stopped = Instant::now();

    // Health says why; reads are served from memory.
    b.wait_for("health 500", Duration::from_secs(30), || {
        b.get_status("/v1/health?verbose=true")
            .is_some_and(|(code, _)| code == 500)
    });
    let (code, health) = b.get("/v1/health?verbose=true");
    assert_eq!(code, 500);
    let reasons = health["reasons"].to_string();
    assert!(reasons.contains("ZooKeeper"), "{health}");
    let (code, plan) = b.get("/v1/plans/deploy");
    assert!(code == 202 || code == 200, "{code} {plan}");
    let (code, _) = b.get("/v1/pods/status");
    assert_eq!(code, 200);
    // Changes are refused while the store is unavailable.
    let (code, body) = b.post("/v1/pods/hello-0/restart", None);
    assert_eq!(code, 503, "{body}");

    // Nothing new is launched while ZooKeeper is down (world-1 waits for world-0's
    // readiness, 3 s after its start).
    let launched = b.task_processes();
    while stopped.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(500));
        // Reads are answered from memory at once all along, not held for the store.
        let asked = Instant::now();
        let answer = b.get_status("/v1/plans/deploy");
        assert!(
            answer.is_some() && asked.elapsed() < Duration::from_secs(2),
            "GET /v1/plans/deploy took {:?} during the outage\n{}",
            asked.elapsed(),
            b.log()
        );
        let now = b.task_processes();
        for task in now.keys() {
            assert!(
                launched.contains_key(task),
                "{task} was launched while ZooKeeper was down\n{}",
                b.log()
            );
        }
    }
    assert!(!launched.contains_key("world-1-server"), "{launched:?}");

    server.start_again().expect("ZooKeeper restarts");
    b.wait_complete("deploy", LONG);
    b.wait_complete("recovery", LONG);
    let (code, _) = b.get("/v1/health");
    assert_eq!(code, 200);
    let copies = b.live_copies();
    assert_eq!(copies.len(), 3, "{copies:?}");
    for (task, n) in &copies {
        assert_eq!(*n, 1, "{task} runs {n} copies");
    }
    let ids = b.task_ids();
    let zk = client(&url);
    for (task, (id, _)) in &ids {
        let info = stored_task_info(
            &zk,
            &format!("/dcos-service-hello-world/Tasks/{task}/TaskInfo"),
        );
        assert_eq!(info.task_id.value, id.as_str(), "{task}");
    }
    assert!(b.log().contains("unavailable"), "{}", b.log());
}

/// test_uninstall with ZooKeeper: the whole `/dcos-service-<name>` tree goes, nothing is left
/// on the agents, and the service installs again from nothing.
#[test]
fn uninstall_removes_the_zookeeper_tree() {
    let server = zk_server();
    let url = format!("zk://{}/berth", server.connect_string());
    let mut b = Berth::new(26800);
    b.start(&hello_world(), &["--state", &url]);
    b.wait_complete("deploy", LONG);
    let zk = client(&url);
    assert!(zk.get("/dcos-service-hello-world").unwrap().is_some());
    let o = b.cli(&["uninstall"]);
    assert!(o.status.success(), "{:?}\n{}", text(&o), b.log());
    b.wait_no_leftovers("hello-world-role", LONG);
    assert_eq!(zk.get("/dcos-service-hello-world").unwrap(), None);
    assert_eq!(zk.children("/").unwrap(), Vec::<String>::new());
    b.stop();
    b.start(&hello_world(), &["--state", &url]);
    b.wait_complete("deploy", LONG);
    assert_eq!(b.task_ids().len(), 3);
}

/// Bad starts: unreachable ZooKeeper, malformed URLs, a tree of another service, an unknown
/// schema version. Each exits ≠ 0 with a clear message and writes nothing.
#[test]
fn bad_zookeeper_starts_write_nothing() {
    let server = zk_server();
    let b = Berth::new(27200);
    let run = |state: &str| b.run_once(&hello_world(), &["--state", state]);

    // Nobody listens on this port.
    let dead = format!("zk://127.0.0.1:{}", common::free_port());
    let o = run(&dead);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(
        err.contains("cannot reach ZooKeeper at 127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("is it running?"), "{err}");

    for (bad, says) in [
        ("zk://", "expected zk://host:port"),
        ("zk://host-without-port", "expected zk://host:port"),
        ("zk://127.0.0.1:notaport", "expected zk://host:port"),
        ("zk://127.0.0.1:2181/trailing/", "expected zk://host:port"),
        ("zookeeper://127.0.0.1:2181", "unknown scheme 'zookeeper'"),
    ] {
        let o = run(bad);
        let err = text(&o).1;
        assert!(!o.status.success(), "{bad}");
        assert!(err.contains(says), "{bad}: {err}");
    }

    // A tree written by another service, and one with an unknown layout version.
    let zk = client(&format!("zk://{}", server.connect_string()));
    let root = "/other/dcos-service-hello-world";
    zk.set(&format!("{root}/servicename"), b"hello/world")
        .unwrap();
    let o = run(&format!("zk://{}/other", server.connect_string()));
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(err.contains("hello/world"), "{err}");
    let root2 = "/newer/dcos-service-hello-world";
    zk.set(&format!("{root2}/servicename"), b"hello-world")
        .unwrap();
    zk.set(&format!("{root2}/SchemaVersion"), b"7").unwrap();
    let o = run(&format!("zk://{}/newer", server.connect_string()));
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(err.contains('7') && err.contains("SchemaVersion"), "{err}");
    // Nothing was added to either tree: no lock, no configuration, no framework id.
    for r in [root, root2] {
        let mut children = zk.children(r).unwrap();
        children.sort();
        let expected: Vec<&str> = if r == root {
            vec!["servicename"]
        } else {
            vec!["SchemaVersion", "servicename"]
        };
        assert_eq!(children, expected, "{r}");
    }
    // Nothing was written for a first install either (the unreachable and malformed cases).
    assert_eq!(
        zk.children("/").unwrap(),
        vec!["newer".to_owned(), "other".to_owned()]
    );
}
