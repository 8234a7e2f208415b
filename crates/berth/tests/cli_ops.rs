//! The operator commands of the real `berth` binary against a real API server on
//! 127.0.0.1 (ephemeral port), backed by the scheduler core in a `Simulation` that runs in
//! this test process.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use berth_api::{AgentControl, AgentError, router, serve};
use berth_cluster::sim::SimAgentSpec;
use berth_scheduler::{Reply, SchedulerHandle};
use berth_testing::{Simulation, hello_world, load_package};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

type Op = Box<dyn FnOnce(&mut Simulation) + Send>;

/// An API server over a simulated hello-world; stopped when dropped.
struct Harness {
    url: String,
    ops: mpsc::UnboundedSender<Op>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl Harness {
    fn start(setup: impl FnOnce(&mut Simulation) + Send + 'static) -> Self {
        Self::with(|| hello_world().unwrap(), setup, None)
    }

    fn with(
        spec: impl FnOnce() -> berth_spec::ServiceSpec + Send + 'static,
        setup: impl FnOnce(&mut Simulation) + Send + 'static,
        agents: Option<Arc<dyn AgentControl>>,
    ) -> Self {
        let (handle, mut requests) = SchedulerHandle::channel();
        let (ops, mut ops_rx) = mpsc::unbounded_channel::<Op>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            let mut sim = Simulation::new(spec(), SimAgentSpec::many(3, &["a", "b", "c"])).unwrap();
            setup(&mut sim);
            let _ = ready_tx.send(());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                loop {
                    tokio::select! {
                        envelope = requests.recv() => {
                            let Some(envelope) = envelope else { break };
                            let reply = sim
                                .request(envelope.request)
                                .unwrap_or_else(|e| Reply::text(500, e.to_string()));
                            let _ = envelope.reply.send(reply);
                        }
                        op = ops_rx.recv() => {
                            let Some(op) = op else { break };
                            op(&mut sim);
                        }
                    }
                }
            });
        });
        ready_rx.recv().unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                serve(listener, router(handle, agents, None), async move {
                    let _ = stop.await;
                })
                .await
                .unwrap();
            });
        });
        Harness {
            url,
            ops,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Runs `f` on the simulation.
    fn sim<R: Send + 'static>(&self, f: impl FnOnce(&mut Simulation) -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ops
            .send(Box::new(move |sim| {
                let _ = tx.send(f(sim));
            }))
            .unwrap_or_else(|_| panic!("the simulation is gone"));
        rx.recv().unwrap()
    }

    /// `berth ARGS` with `BERTH_URL` pointing at this server.
    fn berth(&self, args: &[&str]) -> Run {
        berth(args, &[("BERTH_URL", Some(&self.url))])
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.server.take() {
            let _ = t.join();
        }
    }
}

/// What a run of the binary printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.stderr, "", "{self:#?}");
        &self.stdout
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Exit 1 with exactly this line on stderr and nothing on stdout.
    fn fails_with(&self, line: &str) {
        assert_eq!(self.code, Some(1), "{self:#?}");
        assert_eq!(self.stderr, format!("{line}\n"), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
    }
}

fn berth(args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.args(args)
        .env_remove("BERTH_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn deployed(sim: &mut Simulation) {
    sim.run_until_complete("deploy", 50).unwrap();
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const DEPLOYED_TREE: &str = "deploy (serial strategy) (COMPLETE)
├─ hello (serial strategy) (COMPLETE)
│  └─ hello-0:[server] (COMPLETE)
└─ world (serial strategy) (COMPLETE)
   ├─ world-0:[server] (COMPLETE)
   └─ world-1:[server] (COMPLETE)
";

const ALREADY: &str =
    "berth: Cannot execute command. Command has already been issued or the plan has completed";

#[test]
fn plan_list_and_show() {
    let h = Harness::start(deployed);
    let plans = h.berth(&["plan", "list"]).json();
    let names: Vec<&str> = plans
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.starts_with(&["deploy"]), "{names:?}");
    assert!(names.contains(&"recovery") && names.contains(&"backup"));

    assert_eq!(h.berth(&["plan", "show"]).ok(), DEPLOYED_TREE);
    assert_eq!(h.berth(&["plan", "show", "deploy"]).ok(), DEPLOYED_TREE);
    assert_eq!(h.berth(&["plan", "status", "deploy"]).ok(), DEPLOYED_TREE);
    let plan = h.berth(&["plan", "show", "deploy", "--json"]).json();
    assert_eq!(
        plan.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["phases", "strategy", "errors", "status"]
    );
    assert_eq!(plan["status"], "COMPLETE");
    assert_eq!(
        h.berth(&["plan", "show", "backup"]).ok(),
        "backup (serial strategy) (WAITING)\n└─ backup (serial strategy) (PENDING)\n   └─ hello-0:[backup] (PENDING)\n"
    );
    h.berth(&["plan", "show", "nope"])
        .fails_with("berth: 404 Not Found: Plan nope not found");
}

#[test]
fn plan_show_in_progress_and_with_errors() {
    let h = Harness::start(|_| {});
    let tree = h.berth(&["plan", "show"]);
    let tree = tree.ok();
    assert!(tree.starts_with("deploy (serial strategy) ("), "{tree}");
    assert!(
        !tree.starts_with("deploy (serial strategy) (COMPLETE)"),
        "{tree}"
    );
    drop(h);

    // A refused volume change: the deploy plan carries errors (417), still shown.
    let h = Harness::start(|sim| {
        deployed(sim);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello-world");
        let bigger = load_package(
            &dir,
            Some(r#"{"hello": {"disk": 512}}"#),
            &Default::default(),
        )
        .unwrap();
        sim.set_spec(bigger);
        sim.restart().unwrap();
    });
    let out = h.berth(&["plan", "show", "deploy"]);
    let tree = out.ok();
    assert!(tree.contains("\nErrors:\n- "), "{tree}");
    let plan = h.berth(&["plan", "show", "deploy", "--json"]).json();
    assert!(!plan["errors"].as_array().unwrap().is_empty());
    // Health: plans with errors → 500, exit 1.
    let health = h.berth(&["health"]);
    assert_eq!(health.code, Some(1), "{health:#?}");
    let value: Value = serde_json::from_str(&health.stdout).unwrap();
    assert_eq!(value["value"], 500);
}

#[test]
fn plan_commands() {
    let h = Harness::start(deployed);
    // A complete plan cannot be paused.
    h.berth(&["plan", "pause", "deploy"]).fails_with(ALREADY);
    // Restart a step, a phase, the plan.
    assert_eq!(
        h.berth(&[
            "plan",
            "force-restart",
            "deploy",
            "world",
            "world-0:[server]"
        ])
        .ok(),
        "\"deploy\" plan: step \"world-0:[server]\" in phase \"world\" has been restarted.\n"
    );
    assert_eq!(
        h.berth(&["plan", "force", "deploy", "world", "world-0:[server]"])
            .ok(),
        "\"deploy\" plan: step \"world-0:[server]\" in phase \"world\" has been forced to complete.\n"
    );
    h.berth(&[
        "plan",
        "force-complete",
        "deploy",
        "world",
        "world-0:[server]",
    ])
    .fails_with(ALREADY);
    assert_eq!(
        h.berth(&["plan", "restart", "deploy", "hello"]).ok(),
        "\"deploy\" plan: phase \"hello\" has been restarted.\n"
    );
    assert_eq!(
        h.berth(&["plan", "interrupt", "deploy"]).ok(),
        "\"deploy\" plan has been paused.\n"
    );
    h.berth(&["plan", "pause", "deploy"]).fails_with(ALREADY);
    assert_eq!(
        h.berth(&["plan", "continue", "deploy"]).ok(),
        "\"deploy\" plan has been resumed.\n"
    );
    assert_eq!(
        h.berth(&["plan", "pause", "deploy", "hello"]).ok(),
        "\"deploy\" plan: phase \"hello\" has been paused.\n"
    );
    assert_eq!(
        h.berth(&["plan", "resume", "deploy", "hello"]).ok(),
        "\"deploy\" plan: phase \"hello\" has been resumed.\n"
    );
    assert_eq!(
        h.berth(&["plan", "force-restart", "deploy"]).ok(),
        "\"deploy\" plan has been restarted.\n"
    );
    // Phase and step ids work as names do.
    let plan = h.berth(&["plan", "show", "--json"]).json();
    let phase = plan["phases"][0]["id"].as_str().unwrap().to_owned();
    let step = plan["phases"][0]["steps"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.berth(&["plan", "force", "deploy", &phase, &step]).ok(),
        format!(
            "\"deploy\" plan: step \"{step}\" in phase \"{phase}\" has been forced to complete.\n"
        )
    );
    // Unknown plan, phase, step.
    h.berth(&["plan", "pause", "nope"])
        .fails_with("berth: 404 Not Found: Plan nope not found");
    let r = h.berth(&["plan", "restart", "deploy", "nope"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with("berth: 404 Not Found: "), "{r:#?}");
    let r = h.berth(&["plan", "force", "deploy", "world", "nope"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with("berth: 404 Not Found: "), "{r:#?}");

    // start / stop print the JSON reply; parameter values may contain '='.
    let r = h.berth(&[
        "plan",
        "start",
        "backup",
        "-p",
        "BACKUP_NAME=monday=1",
        "--params",
        "OTHER=x",
    ]);
    assert_eq!(
        r.json(),
        json!({"message": "Received cmd: start backup with parameters: {BACKUP_NAME=monday=1, OTHER=x}"})
    );
    assert_eq!(
        h.berth(&["plan", "stop", "backup"]).json(),
        json!({"message": "Received cmd: stop"})
    );
    assert_eq!(
        h.berth(&["plan", "start", "backup"]).json(),
        json!({"message": "Received cmd: start backup with parameters: {}"})
    );
    h.berth(&["plan", "start", "backup", "-p", "1BAD=x"]).fails_with(
        "berth: 400 Bad Request: Couldn't parse parameters: 1BAD is not a valid environment variable name",
    );
    h.berth(&["plan", "start", "nope"])
        .fails_with("berth: 404 Not Found: Plan nope not found");
    // Bad arguments: clap's message, exit 2.
    let r = h.berth(&["plan", "start", "backup", "-p", "NOEQUALS"]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    assert!(
        r.stderr.contains("expected VAR=VALUE, got 'NOEQUALS'"),
        "{r:#?}"
    );
    let r = h.berth(&["plan", "force", "deploy", "world"]);
    assert_eq!(r.code, Some(2), "{r:#?}");
    let r = h.berth(&["plan", "bogus"]);
    assert_eq!(r.code, Some(2), "{r:#?}");
}

#[test]
fn pods_commands() {
    let h = Harness::start(deployed);
    for pods in ["pods", "pod"] {
        assert_eq!(
            h.berth(&[pods, "list"]).json(),
            json!(["hello-0", "world-0", "world-1"])
        );
    }
    assert_eq!(
        h.berth(&["pods", "status"]).ok(),
        "hello-world
├─ hello
│  └─ hello-0
│     ├─ hello-0-backup (NOT LAUNCHED)
│     └─ hello-0-server (RUNNING)
└─ world
   ├─ world-0
   │  └─ world-0-server (RUNNING)
   └─ world-1
      └─ world-1-server (RUNNING)
"
    );
    assert_eq!(
        h.berth(&["pod", "status", "world-1"]).ok(),
        "world-1\n└─ world-1-server (RUNNING)\n"
    );
    let status = h.berth(&["pods", "status", "--json"]).json();
    assert_eq!(status["service"], "hello-world");
    let id = status["pods"][1]["instances"][0]["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("hello-world__world-0-server__"), "{id}");
    let one = h.berth(&["pods", "status", "world-0", "--json"]).json();
    assert_eq!(one["name"], "world-0");
    assert_eq!(one["tasks"][0]["id"], json!(id));
    h.berth(&["pods", "status", "hello-9"])
        .fails_with("berth: 404 Not Found: Pod hello-9 not found");

    let info = h.berth(&["pods", "info", "world-0"]).json();
    assert_eq!(info[0]["info"]["taskId"]["value"], json!(id));
    assert!(info[0]["info"]["slaveId"]["value"].is_string());
    assert_eq!(info[0]["status"]["taskId"]["value"], json!(id));
    h.berth(&["pods", "info", "hello-9"])
        .fails_with("berth: 404 Not Found: Pod hello-9 not found");

    assert_eq!(
        h.berth(&["pods", "restart", "world-0"]).json(),
        json!({"pod": "world-0", "tasks": ["world-0-server"]})
    );
    assert_eq!(
        h.berth(&["pod", "replace", "world-1"]).json(),
        json!({"pod": "world-1", "tasks": ["world-1-server"]})
    );
    h.berth(&["pods", "restart", "hello-9"])
        .fails_with("berth: 404 Not Found: Pod hello-9 not found");
    h.berth(&["pods", "replace", "hello-9"])
        .fails_with("berth: 404 Not Found: Pod hello-9 not found");
    let r = h.berth(&["pods", "restart"]);
    assert_eq!(r.code, Some(2), "{r:#?}");

    // debug pod pause/resume, with and without tasks.
    h.sim(|sim| {
        sim.run_until_complete("deploy", 50).unwrap();
        sim.run_until_complete("recovery", 50).unwrap();
    });
    assert_eq!(
        h.berth(&["debug", "pod", "pause", "world-0", "-t", "server"])
            .json(),
        json!({"pod": "world-0", "tasks": ["world-0-server"]})
    );
    h.sim(|sim| {
        for _ in 0..5 {
            sim.offers().unwrap();
            sim.advance(1_000).unwrap();
        }
    });
    let tree = h.berth(&["pods", "status", "world-0"]);
    let tree = tree.ok();
    assert!(
        tree == "world-0\n└─ world-0-server (PAUSED)\n"
            || tree == "world-0\n└─ world-0-server (PAUSING)\n",
        "{tree}"
    );
    assert_eq!(
        h.berth(&["debug", "pod", "resume", "world-0"]).json(),
        json!({"pod": "world-0", "tasks": ["world-0-server"]})
    );
    let r = h.berth(&["debug", "pod", "pause", "world-0", "--task", "nope"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with("berth: 404 Not Found: "), "{r:#?}");
    assert!(r.stderr.contains("nope"), "{r:#?}");
    h.berth(&["debug", "pod", "resume", "nope-0"])
        .fails_with("berth: 404 Not Found: Pod nope-0 not found");
}

#[test]
fn state_and_config_commands() {
    let h = Harness::start(deployed);
    let id = h.berth(&["state", "framework-id"]).json();
    assert_eq!(id.as_array().unwrap().len(), 1);
    assert_eq!(h.berth(&["state", "framework_id"]).json(), id);
    assert_eq!(h.berth(&["debug", "state", "framework-id"]).json(), id);
    let props = h.berth(&["state", "properties"]).json();
    let key = props[0].as_str().unwrap().to_owned();
    let raw = h.sim({
        let key = key.clone();
        move |sim| {
            sim.core()
                .store()
                .property(&key)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        }
    });
    let mut expected = raw.unwrap();
    if !expected.ends_with('\n') {
        expected.push('\n');
    }
    assert_eq!(h.berth(&["state", "property", &key]).ok(), expected);
    h.berth(&["state", "property", "nope"])
        .fails_with("berth: 404 Not Found: Property nope not found");

    let ids = h.berth(&["config", "list"]).json();
    assert_eq!(ids.as_array().unwrap().len(), 1);
    assert_eq!(h.berth(&["config", "target-id"]).json(), ids);
    assert_eq!(h.berth(&["config", "target_id"]).json(), ids);
    assert_eq!(h.berth(&["debug", "config", "target-id"]).json(), ids);
    let target = h.berth(&["config", "target"]).json();
    assert_eq!(target["name"], "hello-world");
    let id = ids[0].as_str().unwrap();
    assert_eq!(h.berth(&["config", "show", id]).json(), target);
    h.berth(&["config", "show", "xyz"])
        .fails_with("berth: 400 Bad Request: Invalid configuration id: xyz is not a UUID");
    h.berth(&["config", "show", "00000000-0000-4000-8000-00000000ffff"])
        .fails_with(
            "berth: 404 Not Found: Configuration 00000000-0000-4000-8000-00000000ffff not found",
        );
}

#[test]
fn health_command() {
    let h = Harness::start(|_| {});
    let r = h.berth(&["health"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["value"], 204);
    h.sim(deployed);
    let v = h.berth(&["health"]).json();
    assert_eq!(v, json!({"value": 200, "reasons": []}));
}

#[test]
fn verbose_url_and_connection_failures() {
    let h = Harness::start(deployed);
    // -v: the query before, the response after, on stderr; output unchanged.
    for args in [
        &["pods", "list", "-v"][..],
        &["pods", "-v", "list"][..],
        &["pods", "--verbose", "list"][..],
    ] {
        let r = h.berth(args);
        assert_eq!(r.code, Some(0), "{r:#?}");
        let body = "[\n  \"hello-0\",\n  \"world-0\",\n  \"world-1\"\n]";
        assert_eq!(r.stdout, format!("{body}\n"));
        assert_eq!(
            r.stderr,
            format!(
                "HTTP Query: GET {}/v1/pods\nResponse: 200 OK ({} bytes)\n",
                h.url,
                body.len()
            )
        );
    }
    let r = h.berth(&["plan", "pause", "deploy", "-v"]);
    assert_eq!(
        r.stderr,
        format!(
            "HTTP Query: POST {}/v1/plans/deploy/interrupt\nResponse: 208 Already Reported ({} bytes)\n{ALREADY}\n",
            h.url,
            "Command has already been reported or completed".len()
        )
    );
    let r = h.berth(&["plan", "force", "deploy", "world", "world-0:[server]", "-v"]);
    assert!(
        r.stderr.starts_with(&format!(
            "HTTP Query: POST {}/v1/plans/deploy/forceComplete?phase=world&step=world-0%3A%5Bserver%5D\n",
            h.url
        )),
        "{r:#?}"
    );

    // --url wins over BERTH_URL; BERTH_URL wins over the default.
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let r = berth(
        &["plan", "list", "--url", &h.url],
        &[("BERTH_URL", Some(&dead))],
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    let r = berth(
        &["plan", "list", "-v"],
        &[("BERTH_URL", Some(&format!("{}/", h.url)))],
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stderr
            .starts_with(&format!("HTTP Query: GET {}/v1/plans\n", h.url))
    );
    let r = berth(&["health", "-v", "--url", &dead], &[]);
    assert!(
        r.stderr
            .starts_with(&format!("HTTP Query: GET {dead}/v1/health?verbose=true\n"))
    );
    // Default address.
    let r = berth(&["plan", "list", "-v"], &[]);
    assert!(
        r.stderr
            .starts_with("HTTP Query: GET http://127.0.0.1:7070/v1/plans\n"),
        "{r:#?}"
    );

    // Nothing listening.
    let r = berth(&["pods", "list"], &[("BERTH_URL", Some(&dead))]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stdout, "");
    let prefix = format!("berth: cannot reach the scheduler at {dead}: ");
    assert!(r.stderr.starts_with(&prefix), "{r:#?}");
    assert!(
        r.stderr
            .ends_with(" (is berth run running? set --url or BERTH_URL)\n"),
        "{r:#?}"
    );
    assert!(r.stderr.to_lowercase().contains("refused"), "{r:#?}");

    // A bad URL.
    berth(&["pods", "list", "--url", "localhost:7070"], &[]).fails_with(
        "berth: invalid --url (or BERTH_URL) 'localhost:7070': scheme 'localhost' is not supported; use http:// or https://",
    );
}

/// Agents that are always there, for the `berth agents` commands.
#[derive(Default)]
struct FakeAgents {
    down: Mutex<Vec<String>>,
}

impl FakeAgents {
    fn check(&self, id: &str) -> Result<(), AgentError> {
        if id == "agent-a" || id == "agent-b" {
            Ok(())
        } else {
            Err(AgentError::UnknownAgent {
                id: id.to_owned(),
                known: vec!["agent-a".to_owned(), "agent-b".to_owned()],
            })
        }
    }
}

impl AgentControl for FakeAgents {
    fn list(&self) -> Result<Value, AgentError> {
        let down = self.down.lock().unwrap();
        let state = |id: &str| {
            if down.iter().any(|d| d == id) {
                "down"
            } else {
                "up"
            }
        };
        Ok(json!([
            {"id": "agent-a", "hostname": "agent-a", "zone": "a", "region": "local", "state": state("agent-a"),
             "total": {"cpus": 4.0, "mem": 8192.0, "disk": 65536.0, "gpus": 0.0, "ports": []},
             "reserved": {"cpus": 1.1, "mem": 1280.0, "disk": 16.0, "gpus": 0.0, "ports": []},
             "used": {"cpus": 1.0, "mem": 1024.0, "disk": 0.0, "gpus": 0.0, "ports": []},
             "volumes": [], "executors": [{"executor_id": "e1"}]},
            {"id": "agent-b", "hostname": "agent-b", "zone": "b", "region": "local", "state": state("agent-b"),
             "total": {"cpus": 4.0, "mem": 8192.0, "disk": 65536.0, "gpus": 0.0, "ports": []},
             "reserved": {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0, "ports": []},
             "used": {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0, "ports": []},
             "volumes": [], "executors": []}
        ]))
    }

    fn stop(&self, id: &str) -> Result<Value, AgentError> {
        self.check(id)?;
        let mut down = self.down.lock().unwrap();
        if down.iter().any(|d| d == id) {
            return Err(AgentError::Conflict(format!("agent {id} is already down")));
        }
        down.push(id.to_owned());
        Ok(json!({"agent": id, "state": "DOWN", "message": format!("agent {id} stopped")}))
    }

    fn start(&self, id: &str) -> Result<Value, AgentError> {
        self.check(id)?;
        self.down.lock().unwrap().retain(|d| d != id);
        Ok(json!({"agent": id, "state": "UP"}))
    }

    fn drain(&self, id: &str) -> Result<Value, AgentError> {
        self.check(id)?;
        Err(AgentError::Failed(
            "cannot write the agents state".to_owned(),
        ))
    }
}

#[test]
fn agents_commands() {
    let h = Harness::start(|_| {});
    h.berth(&["agents", "list"])
        .fails_with("berth: 404 Not Found: Agents are not managed by this scheduler");
    drop(h);

    let h = Harness::with(
        || hello_world().unwrap(),
        |_| {},
        Some(Arc::new(FakeAgents::default())),
    );
    assert_eq!(
        h.berth(&["agents", "list"]).ok(),
        "ID       HOSTNAME  ZONE  STATE  CPUS RES/USED/TOTAL  MEM MB RES/USED/TOTAL  EXECUTORS
agent-a  agent-a   a     up     1.1/1/4              1280/1024/8192         1
agent-b  agent-b   b     up     0/0/4                0/0/8192               0
"
    );
    let list = h.berth(&["agents", "list", "--json"]).json();
    assert_eq!(list[0]["id"], "agent-a");
    assert_eq!(
        h.berth(&["agents", "stop", "agent-a"]).ok(),
        "agent agent-a stopped\n"
    );
    assert!(
        h.berth(&["agents", "list"])
            .ok()
            .contains("\nagent-a  agent-a   a     down ")
    );
    h.berth(&["agents", "stop", "agent-a"])
        .fails_with("berth: 409 Conflict: agent agent-a is already down");
    // Without a message, the CLI says what it did.
    assert_eq!(
        h.berth(&["agents", "start", "agent-a"]).ok(),
        "Agent \"agent-a\" has been started.\n"
    );
    h.berth(&["agents", "drain", "agent-b"])
        .fails_with("berth: 500 Internal Server Error: cannot write the agents state");
    h.berth(&["agents", "stop", "agent-z"]).fails_with(
        "berth: 404 Not Found: Agent agent-z not found; known agents: agent-a, agent-b",
    );
}

#[test]
fn help_lists_the_operator_commands() {
    let r = berth(&["--help"], &[]);
    assert_eq!(r.code, Some(0), "{r:#?}");
    for cmd in [
        "plan", "pods", "debug", "state", "config", "agents", "health",
    ] {
        assert!(
            r.stdout.contains(&format!("  {cmd} ")),
            "{cmd}: {}",
            r.stdout
        );
    }
    let r = berth(&["plan", "--help"], &[]);
    assert!(r.stdout.contains("--url <URL>"), "{}", r.stdout);
    assert!(r.stdout.contains("env: BERTH_URL"), "{}", r.stdout);
}

/// A service with an advertised port behind a VIP and a port that is not advertised.
fn web_spec() -> berth_spec::ServiceSpec {
    let yaml = "name: web\npods:\n  front:\n    count: 2\n    placement: '[[\"hostname\", \"UNIQUE\"]]'\n    tasks:\n      server:\n        goal: RUNNING\n        cmd: serve\n        cpus: 0.1\n        memory: 32\n        ports:\n          http:\n            port: 0\n            advertise: true\n            vip:\n              prefix: web\n              port: 80\n          admin:\n            port: 0\n";
    berth_spec::load_spec(&berth_spec::SpecInput {
        file_name: "svc.yml",
        template: yaml,
        env: &berth_spec::Env::new(),
        files: &berth_spec::NoFiles,
    })
    .unwrap()
    .spec
}

#[test]
fn endpoints_command() {
    let h = Harness::with(web_spec, deployed, None);
    assert_eq!(h.berth(&["endpoints"]).json(), json!(["http"]));
    let v = h.berth(&["endpoints", "http"]).json();
    let address = v["address"].as_array().expect("address");
    let dns = v["dns"].as_array().expect("dns");
    assert_eq!(address.len(), 2, "{v:#}");
    assert_eq!(dns.len(), 2, "{v:#}");
    let ports: Vec<&str> = address
        .iter()
        .map(|a| {
            let a = a.as_str().unwrap();
            assert!(a.starts_with("agent-"), "{a}");
            a.rsplit_once(':').unwrap().1
        })
        .collect();
    for d in dns {
        let d = d.as_str().unwrap();
        let (name, port) = d.rsplit_once(':').unwrap();
        assert!(ports.contains(&port), "{d} vs {ports:?}");
        assert!(
            name == "front-0-server.web.autoip.dcos.thisdcos.directory"
                || name == "front-1-server.web.autoip.dcos.thisdcos.directory",
            "{d}"
        );
    }
    assert_eq!(v["vip"], "web.web.l4lb.thisdcos.directory:80");
    // A port that is not advertised, and one that does not exist.
    h.berth(&["endpoints", "admin"])
        .fails_with("berth: 404 Not Found: Endpoint admin not found");
    let response = reqwest::blocking::get(format!("{}/v1/endpoints/nope", h.url)).unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

/// The SDK's remaining state and debug routes, in its shapes and codes.
#[test]
fn state_files_zones_refresh_and_debug_routes() {
    let h = Harness::start(deployed);
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let r = http.get(format!("{}{path}", h.url)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // Files: none, then one stored through a multipart PUT, then too large.
    assert_eq!(get("/v1/state/files"), (200, "[]".to_owned()));
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(b"port=4044".to_vec()).file_name("ports"),
    );
    let r = http
        .put(format!("{}/v1/state/files/ports", h.url))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get("/v1/state/files"), (200, "[ports]".to_owned()));
    assert_eq!(get("/v1/state/files/ports"), (200, "port=4044".to_owned()));
    assert_eq!(
        get("/v1/state/files/nope"),
        (404, "Failed to get the file".to_owned())
    );
    let (code, props) = get("/v1/state/properties");
    assert_eq!(code, 200);
    assert!(props.contains("file-ports"), "{props}");
    let big = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(vec![b'x'; 1025]).file_name("big"),
    );
    let r = http
        .put(format!("{}/v1/state/files/big", h.url))
        .multipart(big)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = http
        .put(format!("{}/v1/state/files/raw", h.url))
        .body("not multipart")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Zones: every task's, one task's, and by pod type and host.
    let (code, zones) = get("/v1/state/zone/tasks");
    assert_eq!(code, 200);
    let zones: Value = serde_json::from_str(&zones).unwrap();
    let zone = zones["hello-0-server"].as_str().expect("a zone").to_owned();
    // The backup task is stored (footprint) with its pod, so it has a zone too.
    assert_eq!(zones.as_object().unwrap().len(), 4, "{zones}");
    assert_eq!(
        get("/v1/state/zone/tasks/hello-0-server"),
        (200, zone.clone())
    );
    assert_eq!(get("/v1/state/zone/tasks/nope").0, 404);
    let (_, info) = get("/v1/pods/hello-0/info");
    let info: Value = serde_json::from_str(&info).unwrap();
    let host = info[0]["info"]["labels"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "offer_hostname")
        .and_then(|l| l["value"].as_str())
        .unwrap()
        .to_owned();
    assert_eq!(get(&format!("/v1/state/zone/hello/{host}")), (200, zone));
    assert_eq!(get("/v1/state/zone/world/nohost").0, 404);

    // Refresh.
    let r = http
        .put(format!("{}/v1/state/refresh", h.url))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().unwrap(),
        json!({"message": "Received cmd: refresh"})
    );
    assert_eq!(get("/v1/state/files/ports"), (200, "port=4044".to_owned()));

    // Task statuses per plan, phase and step; filters are case-insensitive.
    let (code, statuses) = get("/v1/debug/taskStatuses?plan=DEPLOY&phase=world");
    assert_eq!(code, 200);
    let statuses: Value = serde_json::from_str(&statuses).unwrap();
    assert_eq!(statuses.as_array().unwrap().len(), 1, "{statuses:#}");
    let world = &statuses[0]["world"];
    let step = world["world-1:[server]"].as_array().expect("step");
    assert_eq!(step[0]["taskName"], "world-1-server");
    assert_eq!(step[0]["latestTaskState"], "TASK_RUNNING");
    assert!(
        step[0]["taskId"]["value"]
            .as_str()
            .unwrap()
            .contains("world-1-server")
    );
    assert!(statuses[0].get("hello").is_none(), "{statuses:#}");
    assert_eq!(get("/v1/debug/taskStatuses?sync=maybe").0, 400);

    // Reservations by agent host.
    let (code, reservations) = get("/v1/debug/reservations");
    assert_eq!(code, 200);
    let reservations: Value = serde_json::from_str(&reservations).unwrap();
    let ids: usize = reservations
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert!(ids >= 6, "{reservations:#}");
}
