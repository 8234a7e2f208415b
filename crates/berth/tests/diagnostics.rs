//! Diagnostics with real processes: `berth task` lists tasks as `dcos task` does, `berth
//! task log|ls|cat` read sandboxes through `/v1/tasks/{id}/files/…`, filters pick tasks as
//! the guide says, and bad input gets clear answers.

use crate::common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Berth, berth_bin, hello_world, text};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(90);

#[test]
fn tasks_logs_and_sandboxes_through_the_cli_and_the_api() {
    let mut b = Berth::new(28400);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let ids = b.task_ids();

    // The list, as `dcos task` shows it.
    let o = b.cli(&["task"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, ["NAME", "HOST", "USER", "STATE", "ID"]);
    for line in &lines[1..] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 5, "{line}");
        assert_eq!(cells[3], "R", "{line}");
        assert_eq!(ids[cells[0]].0, cells[4], "{line}");
    }
    let (code, listed) = b.get("/v1/tasks");
    assert_eq!(code, 200);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed:#}");
    for t in listed.as_array().unwrap() {
        assert_eq!(t["state"], "TASK_RUNNING");
        assert_eq!(t["active"], true);
        assert!(t["agent"].as_str().unwrap().starts_with("agent-"), "{t}");
        assert!(!t["user"].as_str().unwrap().is_empty(), "{t}");
    }
    // Global flags anywhere: --json before the command.
    let o = b.cli(&["--json", "task", "world"]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v:#}");

    // Files: cat through a volume link, ls, log of several tasks with headers.
    let hello = ids["hello-0-server"].0.clone();
    let o = b.cli(&["task", "cat", "hello-0", "hello-data/greetings"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("hello from hello-0-server"),
        "{:?}",
        text(&o)
    );
    let o = b.cli(&["task", "ls", "hello-0"]);
    let names: Vec<String> = text(&o).0.lines().map(str::to_owned).collect();
    for name in ["hello-data", "stderr", "stdout"] {
        assert!(names.iter().any(|n| n == name), "{:?}", text(&o));
    }
    let o = b.cli(&["task", "ls", "-l", "hello-0", "hello-data"]);
    assert!(text(&o).0.contains("greetings"), "{:?}", text(&o));
    assert!(text(&o).0.starts_with("-rw"), "{:?}", text(&o));
    // The health check fetches the greetings every 2 s: the server logs each request.
    b.wait_for("two logged requests", LONG, || {
        b.cli(&["task", "log", "hello-0", "stderr"])
            .stdout
            .split(|c| *c == b'\n')
            .filter(|l| String::from_utf8_lossy(l).contains("GET /greetings"))
            .count()
            >= 3
    });
    let o = b.cli(&["task", "log", "--lines", "2", "hello-0", "stderr"]);
    let (out, _) = text(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("GET /greetings")), "{out}");
    let o = b.cli(&["task", "log", "world", "stderr"]);
    let (out, _) = text(&o);
    assert_eq!(out.matches("===> hello-world__world-").count(), 2, "{out}");

    // Reads in the shape of Mesos's files API.
    let (code, read) = b.get(&format!(
        "/v1/tasks/{hello}/files/read?path=hello-data/greetings&offset=0&length=5"
    ));
    assert_eq!(code, 200);
    assert_eq!(read, serde_json::json!({"data": "hello", "offset": 0}));
    let (code, read) = b.get(&format!(
        "/v1/tasks/{hello}/files/read?path=stdout&offset=100000000"
    ));
    assert_eq!((code, &read["data"]), (200, &Value::String(String::new())));
    let (code, browse) = b.get(&format!("/v1/tasks/{hello}/files/browse"));
    assert_eq!(code, 200);
    assert!(
        browse
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == "stdout")
    );
    let download = reqwest::blocking::get(format!(
        "{}/v1/tasks/{hello}/files/download?path=hello-data/greetings",
        b.url()
    ))
    .unwrap();
    assert_eq!(download.status().as_u16(), 200);
    assert!(download.text().unwrap().starts_with("hello from"));

    // Bad input.
    let (code, body) = b.get(&format!(
        "/v1/tasks/{hello}/files/read?path=../../../state.json"
    ));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.as_str().unwrap().contains("leaves the sandbox"),
        "{body}"
    );
    let (code, body) = b.get(&format!("/v1/tasks/{hello}/files/read?path=nothing-here"));
    assert_eq!(code, 404, "{body}");
    let (code, body) = b.get("/v1/tasks/nope__1/files/read?path=stdout");
    assert_eq!((code, body.as_str()), (404, Some("Task nope__1 not found")));
    let (code, _) = b.get(&format!(
        "/v1/tasks/{hello}/files/read?path=stdout&offset=x"
    ));
    assert_eq!(code, 400);
    let o = b.cli(&["task", "cat", "world", "stdout"]);
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert!(
        err.contains("There are multiple tasks with ID matching [world]. Please choose one:"),
        "{err}"
    );
    assert!(
        err.contains(&format!("\t{}", ids["world-0-server"].0)),
        "{err}"
    );
    let o = b.cli(&["task", "log", "zookeeper"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("No active task matches 'zookeeper'"),
        "{:?}",
        text(&o)
    );
    let o = b.cli(&["task", "cat", "hello-0", "no-such-file"]);
    assert!(text(&o).1.contains("404"), "{:?}", text(&o));

    // Follow: new lines appear; when the task ends, the follower says so and exits 0.
    let mut follower = Command::new(berth_bin())
        .args([
            "task", "log", "--follow", "--lines", "0", "hello-0", "stderr",
        ])
        .env("BERTH_URL", b.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let (code, _) = b.post("/v1/pods/hello-0/restart", None);
    assert_eq!(code, 200);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = follower.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the follower did not end with its task"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut followed = String::new();
    let mut said = String::new();
    follower
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut followed)
        .unwrap();
    follower
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(status.success(), "{said}");
    assert!(followed.contains("GET /greetings"), "{followed}");
    assert!(said.contains(&format!("task {hello} ended")), "{said}");

    // The finished run is listed with --completed, and its sandbox is still readable.
    let new = b.wait_relaunched("hello-0-server", &hello, LONG);
    let o = b.cli(&["task", "--completed", "hello-0"]);
    let (out, _) = text(&o);
    assert!(out.contains(&hello) && out.contains(&new), "{out}");
    let o = b.cli(&["task", "hello-0"]);
    let (out, _) = text(&o);
    assert!(!out.contains(&hello) && out.contains(&new), "{out}");
    let o = b.cli(&["task", "cat", "--completed", &hello, "stderr"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("GET /greetings"));

    // The scheduler's own log, in the data directory and through the API.
    assert!(b.data().join("berth.log").exists());
    let o = b.cli(&["log", "--lines", "5"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    let o = b.cli(&["log", "--lines", "100000"]);
    assert!(text(&o).0.contains("deployment complete"), "{:?}", text(&o));
    let (code, end) = b.get("/v1/debug/log?offset=-1");
    assert_eq!(code, 200);
    assert!(end["offset"].as_u64().unwrap() > 0, "{end}");
    let mut follower = Command::new(berth_bin())
        .args(["log", "--follow", "--lines", "0"])
        .env("BERTH_URL", b.url())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = follower.stdout.take().unwrap();
    let seen = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut text = String::new();
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("world-0") {
                break;
            }
        }
        text
    });
    std::thread::sleep(Duration::from_secs(1));
    let (code, _) = b.post("/v1/pods/world-0/restart", None);
    assert_eq!(code, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let followed = seen.join().unwrap();
    assert!(followed.contains("world-0"), "{followed}");
}

/// A step whose task keeps failing says so: its message names the task, the failures in a
/// row and the last one (with the task's last stderr line); from the third, the plan lists
/// it under `errors` (417). And it is not relaunched more than once a second.
#[test]
fn a_step_that_keeps_failing_shows_why_and_is_not_relaunched_in_a_tight_loop() {
    let mut b = Berth::new(29200);
    let spec = b.dir.path().join("svc.yml");
    std::fs::write(
        &spec,
        "name: failing\npods:\n  app:\n    count: 1\n    tasks:\n      job:\n        goal: ONCE\n        cmd: echo \"cannot stat 'data/greetings'\" >&2; exit 3\n        cpus: 0.1\n        memory: 32\n",
    )
    .unwrap();
    b.start(&spec, &[]);
    let started = Instant::now();
    b.wait_for("three failures", LONG, || {
        b.get_status("/v1/plans/deploy")
            .is_some_and(|(code, _)| code == 417)
    });
    let (code, plan) = b.get("/v1/plans/deploy");
    assert_eq!(code, 417, "{plan:#}");
    let message = plan["phases"][0]["steps"][0]["message"].as_str().unwrap();
    assert!(message.contains("task app-0-job failed"), "{message}");
    assert!(
        message.contains("exited with status 3; last stderr line: cannot stat 'data/greetings'"),
        "{message}"
    );
    let errors = plan["errors"].to_string();
    assert!(
        errors.contains("Step 'app-0:[job]' of phase 'app'"),
        "{errors}"
    );
    assert!(errors.contains("times in a row"), "{errors}");
    // `berth plan show` prints the errors under the tree.
    let o = b.cli(&["plan", "show"]);
    assert!(text(&o).0.contains("cannot stat"), "{:?}", text(&o));
    // At most one launch a second.
    std::thread::sleep(Duration::from_secs(4));
    let (_, tasks) = b.get("/v1/tasks?completed=true");
    let launches = tasks.as_array().map_or(0, Vec::len) as f64;
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        launches <= seconds + 2.0,
        "{launches} launches in {seconds:.1} s\n{}",
        b.log()
    );
    assert!(launches >= 3.0, "{launches}");
}

/// Two services side by side on one machine, each with its own `berth run`, data directory
/// and API port, over agents that offer the same port range: no port is handed to both, so
/// no task fails.
#[test]
fn two_services_on_one_machine_never_share_a_port() {
    let mut a = Berth::new(29800);
    let mut b = Berth::new(29800);
    let a_options = a.options(r#"{"service": {"name": "hello-a"}}"#);
    let b_options = b.options(r#"{"service": {"name": "hello-b"}}"#);
    a.start(&hello_world(), &["--options", &a_options]);
    b.start(&hello_world(), &["--options", &b_options]);
    a.wait_complete("deploy", LONG);
    b.wait_complete("deploy", LONG);
    // Both keep running: give a crash loop time to show.
    std::thread::sleep(Duration::from_secs(3));
    let mut ports = std::collections::BTreeSet::new();
    for (name, s) in [("hello-a", &a), ("hello-b", &b)] {
        let (_, tasks) = s.get("/v1/tasks?completed=true");
        let tasks = tasks.as_array().unwrap();
        assert_eq!(tasks.len(), 3, "{name}: {tasks:#?}\n{}", s.log());
        for t in tasks {
            assert_eq!(t["state"], "TASK_RUNNING", "{name}: {t}\n{}", s.log());
        }
        for pod in ["hello-0", "world-0", "world-1"] {
            let (_, info) = s.get(&format!("/v1/pods/{pod}/info"));
            let vars = info.as_array().unwrap().iter().flat_map(|t| {
                t["info"]["command"]["environment"]["variables"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            });
            for var in vars {
                let key = var["name"].as_str().unwrap_or_default();
                if key == "PORT_HELLO" || key == "PORT_WORLD" {
                    let port = var["value"].as_str().unwrap().to_owned();
                    assert!(ports.insert(port.clone()), "port {port} handed out twice");
                }
            }
        }
        let (code, _) = s.get("/v1/plans/recovery");
        assert_eq!(code, 200, "{name} recovered something:\n{}", s.log());
    }
    assert_eq!(ports.len(), 6, "{ports:?}");
}

/// Why a step waits: four world pods with `hostname:UNIQUE` on three agents — the fourth
/// waits, and the plan JSON, `berth plan show` and `berth debug offers` say why.
#[test]
fn a_waiting_step_says_why() {
    let mut b = Berth::new(30200);
    let options = b.options(r#"{"world": {"count": 4}}"#);
    b.start(&hello_world(), &["--options", &options]);
    b.wait_for("world-3 evaluated", LONG, || {
        let (_, plan) = b.get("/v1/plans/deploy");
        plan["phases"][1]["steps"][3]["waiting"]["declinedLastMinute"]
            .as_u64()
            .is_some_and(|n| n >= 3)
    });
    let (code, plan) = b.get("/v1/plans/deploy");
    assert_eq!(code, 202);
    let step = &plan["phases"][1]["steps"][3];
    assert_eq!(step["name"], "world-3:[server]");
    assert_eq!(step["status"], "PREPARED");
    let waiting = &step["waiting"];
    assert!(
        waiting["lastEvaluated"].as_u64().unwrap() > 0,
        "{waiting:#}"
    );
    let reason = waiting["reasons"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("placement"), "{waiting:#}");
    assert_eq!(waiting["reasons"][0]["agents"], 3, "{waiting:#}");
    let closest = waiting["closestMiss"].as_str().unwrap();
    assert!(closest.contains("agent-"), "{closest}");
    // Complete steps carry no summary (the reference's keys only).
    assert!(plan["phases"][1]["steps"][0].get("waiting").is_none());

    let o = b.cli(&["plan", "show"]);
    let (out, _) = text(&o);
    assert!(out.contains("world-3:[server] (PREPARED)"), "{out}");
    assert!(out.contains("waiting: "), "{out}");
    assert!(
        out.contains("declined in the last minute (placement"),
        "{out}"
    );

    let o = b.cli(&[
        "debug",
        "offers",
        "--plan",
        "deploy",
        "--step",
        "WORLD-3:[server]",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("refused by: placement"), "{out}");
    assert!(out.contains("refusing agents: agent-"), "{out}");
    assert!(out.contains("failed"), "{out}");
    let (code, offers) = b.get("/v2/debug/offers?plan=deploy&step=world-3:%5Bserver%5D");
    assert_eq!(code, 200);
    assert_eq!(offers["acceptedCount"], 0, "{offers:#}");
    assert!(offers["rejectedCount"].as_u64().unwrap() >= 3, "{offers:#}");
    for o in offers["offers"].as_array().unwrap() {
        assert_eq!(o["pod-instance-name"], "world-3:[server]");
    }
    let (code, all) = b.get("/v2/debug/offers");
    assert_eq!(code, 200);
    assert!(all["acceptedCount"].as_u64().unwrap() >= 4, "{all:#}");
    let (code, _) = b.get("/v2/debug/offers?sync=perhaps");
    assert_eq!(code, 400);
}

/// Task output is paged: past the page size `stdout` moves to `stdout.1` (older pages up),
/// only the configured number of pages is kept, and the pages are readable like any file.
#[test]
fn task_output_is_paged_and_old_pages_dropped() {
    let mut b = Berth::new(30600);
    b.env
        .push(("BERTH_TASK_LOG_PAGE_KB".to_owned(), "16".to_owned()));
    b.env
        .push(("BERTH_TASK_LOG_PAGES".to_owned(), "2".to_owned()));
    let spec = b.dir.path().join("svc.yml");
    std::fs::write(
        &spec,
        "name: chatty\npods:\n  app:\n    count: 1\n    tasks:\n      talk:\n        goal: RUNNING\n        cmd: while true; do seq 1 4000; sleep 1; done\n        cpus: 0.1\n        memory: 32\n",
    )
    .unwrap();
    b.start(&spec, &[]);
    b.wait_complete("deploy", LONG);
    let ids = b.task_ids();
    let id = ids["app-0-talk"].0.clone();
    let files = || -> Vec<String> {
        let o = b.cli(&["task", "ls", "app-0-talk"]);
        text(&o).0.lines().map(str::to_owned).collect()
    };
    b.wait_for("two pages", LONG, || {
        files().iter().any(|f| f == "stdout.2")
    });
    std::thread::sleep(Duration::from_secs(6));
    let now = files();
    assert!(now.iter().any(|f| f == "stdout.1"), "{now:?}");
    assert!(!now.iter().any(|f| f == "stdout.3"), "{now:?}");
    let (_, page) = b.get(&format!(
        "/v1/tasks/{id}/files/read?path=stdout.1&offset=0&length=100"
    ));
    assert!(
        page["data"].as_str().is_some_and(|d| d.lines().count() > 5),
        "{page}"
    );
    let (_, listing) = b.get(&format!("/v1/tasks/{id}/files/browse"));
    let size = |name: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == name)
            .and_then(|e| e["size"].as_u64())
            .unwrap_or(0)
    };
    assert!(size("stdout.1") >= 16 * 1024, "{listing:#}");
}

/// Finished sandboxes are collected: only the newest N per task stay readable; the older
/// runs are still listed, and reading them says their sandbox is gone.
#[test]
fn finished_sandboxes_are_garbage_collected() {
    let mut b = Berth::new(31000);
    b.env
        .push(("BERTH_SANDBOXES_PER_TASK".to_owned(), "2".to_owned()));
    b.env
        .push(("BERTH_SANDBOX_GC_SECS".to_owned(), "1".to_owned()));
    let spec = b.dir.path().join("svc.yml");
    std::fs::write(
        &spec,
        "name: flaky\npods:\n  app:\n    count: 1\n    tasks:\n      job:\n        goal: RUNNING\n        cmd: echo run; sleep 0.2; exit 1\n        cpus: 0.1\n        memory: 32\n",
    )
    .unwrap();
    b.start(&spec, &[]);
    b.wait_for("six runs", LONG, || {
        b.get("/v1/tasks?completed=true")
            .1
            .as_array()
            .is_some_and(|a| a.len() >= 6)
    });
    std::thread::sleep(Duration::from_secs(3));
    // The task keeps failing and restarting, so a run can finish (and the GC move on) while
    // the runs are being read: a count is trusted only when the task list did not change
    // around the reads.
    let finished = |b: &Berth| -> Vec<String> {
        let (_, tasks) = b.get("/v1/tasks?completed=true");
        tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["active"] != true)
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut counted = None;
    for _ in 0..10 {
        let before = finished(&b);
        let mut readable = 0;
        let mut gone = 0;
        for id in &before {
            let (code, body) = b.get(&format!("/v1/tasks/{id}/files/read?path=stdout"));
            match code {
                200 => readable += 1,
                404 => {
                    assert!(
                        body.as_str().unwrap().contains("garbage-collected"),
                        "{body}"
                    );
                    gone += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
        if finished(&b) == before {
            counted = Some((readable, gone));
            break;
        }
    }
    let (readable, gone) = counted.expect("the task list settled between two runs");
    // The GC runs every second: at most one run finished since the last pass.
    assert!(
        (2..=3).contains(&readable),
        "{readable} readable, {gone} gone"
    );
    assert!(gone >= 3, "{readable} readable, {gone} gone");
}

/// `berth task exec` runs a command inside a running task: its sandbox, environment, output
/// and exit code; stdin with -i; a pseudo-terminal with -t; clear answers otherwise.
#[test]
fn exec_runs_commands_inside_a_task() {
    let mut b = Berth::new(31400);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let hello = b.task_ids()["hello-0-server"].0.clone();

    let o = b.cli(&["task", "exec", "hello-0", "cat", "hello-data/greetings"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("hello from hello-0-server"),
        "{:?}",
        text(&o)
    );

    let o = b.cli(&[
        "task",
        "exec",
        "hello-0",
        "sh",
        "-c",
        "echo $TASK_NAME; pwd; echo oops >&2; exit 3",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello-0-server", "{out}");
    assert!(lines[1].ends_with(&hello), "{out}");
    assert_eq!(err.trim(), "oops");

    // -i: this process's stdin reaches the command.
    let mut child = Command::new(berth_bin())
        .args(["task", "exec", "-i", "hello-0", "tr", "a-z", "A-Z"])
        .env("BERTH_URL", b.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"piped input\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "PIPED INPUT\n");

    // -t: a pseudo-terminal.
    let o = b.cli(&["task", "exec", "-t", "hello-0", "tty"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.starts_with("/dev/pts/"), "{:?}", text(&o));

    // A session whose client goes away is hung up: nothing stays behind.
    let mut abandoned = Command::new(berth_bin())
        .args(["task", "exec", "-i", "-t", "hello-0", "sleep", "4242"])
        .env("BERTH_URL", b.url())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = || {
        Command::new("pgrep")
            .args(["-f", "^sleep 4242$"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    b.wait_for("the exec'd sleep", LONG, running);
    let _ = abandoned.kill();
    let _ = abandoned.wait();
    b.wait_for(
        "the abandoned session to end",
        Duration::from_secs(10),
        || !running(),
    );

    // Bad input.
    let o = b.cli(&["task", "exec", "world", "true"]);
    assert!(
        text(&o)
            .1
            .contains("There are multiple tasks with ID matching [world]"),
        "{:?}",
        text(&o)
    );
    let o = b.cli(&["task", "exec", "hello-0", "no-such-program"]);
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("Cannot run 'no-such-program' in the task"),
        "{:?}",
        text(&o)
    );
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/tasks/{hello}/exec", b.url()))
        .body(r#"{"cmd": ["true"]}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 426);
    let (code, _) = b.post("/v1/pods/hello-0/restart", None);
    assert_eq!(code, 200);
    b.wait_relaunched("hello-0-server", &hello, LONG);
    let o = b.cli(&["task", "exec", &hello, "true"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("is not running"), "{:?}", text(&o));
}
