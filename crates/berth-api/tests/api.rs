//! Every route of the API over real HTTP (127.0.0.1, ephemeral port), backed by the real
//! scheduler core in a `Simulation` (or by a fake scheduler where a reply cannot be
//! produced by the simulation, e.g. a 318).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_api::{AgentControl, AgentError, router, serve};
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::TaskState;
use berth_scheduler::{Body, Reply, Request, SchedulerHandle};
use berth_testing::{Simulation, hello_world, load_package};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

type Op = Box<dyn FnOnce(&mut Simulation) + Send>;

/// A server on 127.0.0.1:0 in front of a scheduler; stopped when dropped.
struct Server {
    base: String,
    client: reqwest::Client,
    ops: Option<mpsc::UnboundedSender<Op>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

struct Resp {
    status: u16,
    content_type: Option<String>,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

impl Server {
    async fn start(handle: SchedulerHandle, agents: Option<Arc<dyn AgentControl>>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router(handle, agents, None), async move {
            let _ = rx.await;
        }));
        Server {
            base,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            ops: None,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// A server backed by a simulation of hello-world on three agents; `setup` runs first.
    async fn sim(setup: impl FnOnce(&mut Simulation) + Send + 'static) -> Self {
        Self::sim_of(
            || hello_world().unwrap(),
            setup,
            None::<Arc<dyn AgentControl>>,
        )
        .await
    }

    async fn sim_of(
        spec: impl FnOnce() -> berth_spec::ServiceSpec + Send + 'static,
        setup: impl FnOnce(&mut Simulation) + Send + 'static,
        agents: Option<Arc<dyn AgentControl>>,
    ) -> Self {
        let (handle, mut requests) = SchedulerHandle::channel();
        let (ops_tx, mut ops_rx) = mpsc::unbounded_channel::<Op>();
        let (ready_tx, ready_rx) = oneshot::channel::<()>();
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
        ready_rx.await.unwrap();
        let mut server = Self::start(handle, agents).await;
        server.ops = Some(ops_tx);
        server
    }

    /// Runs `f` on the simulation and returns its result.
    async fn with_sim<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Simulation) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = oneshot::channel();
        self.ops
            .as_ref()
            .unwrap()
            .send(Box::new(move |sim| {
                let _ = tx.send(f(sim));
            }))
            .unwrap_or_else(|_| panic!("the simulation is gone"));
        rx.await.unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Resp {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.client.get(&url),
            "POST" => self.client.post(&url),
            "PUT" => self.client.put(&url),
            "DELETE" => self.client.delete(&url),
            other => panic!("method {other}"),
        };
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap();
        Resp {
            status,
            content_type,
            text,
        }
    }

    /// The raw response of a GET (headers and body not read yet).
    async fn response(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str) -> Resp {
        self.call("POST", path, None).await
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn deployed(sim: &mut Simulation) {
    sim.run_until_complete("deploy", 50).unwrap();
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

// ───────────────────────────── plans ─────────────────────────────

#[tokio::test]
async fn plans_list_and_plan_json() {
    let s = Server::sim(deployed).await;
    let r = s.get("/v1/plans").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let names = r.json();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names[0], "deploy");
    assert!(names.contains(&"recovery"), "{names:?}");
    assert!(names.contains(&"backup"), "{names:?}");

    let r = s.get("/v1/plans/deploy").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.contains("\n  \"phases\": ["),
        "pretty-printed: {}",
        r.text
    );
    let plan = r.json();
    assert_eq!(keys(&plan), ["phases", "strategy", "errors", "status"]);
    assert_eq!(plan["strategy"], "serial");
    assert_eq!(plan["errors"], json!([]));
    assert_eq!(plan["status"], "COMPLETE");
    let phases = plan["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    let hello = &phases[0];
    assert_eq!(keys(hello), ["id", "name", "steps", "strategy", "status"]);
    assert!(is_uuid(hello["id"].as_str().unwrap()));
    assert_eq!(hello["name"], "hello");
    assert_eq!(hello["strategy"], "serial");
    assert_eq!(hello["status"], "COMPLETE");
    let step = &hello["steps"][0];
    assert_eq!(keys(step), ["id", "status", "name", "message"]);
    assert_eq!(step["name"], "hello-0:[server]");
    assert_eq!(step["status"], "COMPLETE");
    let message = step["message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!(
            "hello-0:[server] [{}] with status: COMPLETE",
            step["id"].as_str().unwrap()
        )),
        "{message}"
    );
    let world = &phases[1];
    assert_eq!(world["name"], "world");
    let world_steps: Vec<&str> = world["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(world_steps, ["world-0:[server]", "world-1:[server]"]);

    // The deprecated spelling shows deploy.
    let old = s.get("/v1/plan").await;
    assert_eq!(old.status, 200);
    assert_eq!(old.json(), plan);

    // Unknown plan.
    let r = s.get("/v1/plans/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.text, "Plan nope not found");
    assert!(r.content_type.unwrap().starts_with("text/plain"));

    // Unknown parameters.
    let r = s.get("/v1/plans/deploy?verbose=true").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        "Unknown query parameter 'verbose': this endpoint takes no parameters"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_large_plan_is_streamed_and_reads_as_the_whole_json() {
    let spec = || {
        let mut spec = hello_world().unwrap();
        spec.pod_specs[1].count = 3_000;
        spec
    };
    let s = Server::sim_of(spec, |_| {}, None).await;
    let expected = s
        .with_sim(
            |sim| match sim.request(Request::Plan("deploy".to_owned())) {
                Ok(Reply {
                    body: Body::Plan(report),
                    ..
                }) => serde_json::to_string_pretty(&*report).unwrap(),
                other => panic!("{other:?}"),
            },
        )
        .await;
    assert!(expected.len() > 512 * 1024, "{} bytes", expected.len());
    let response = s.response("/v1/plans/deploy").await;
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(
        response.content_length(),
        None,
        "streamed in pieces, not sized up front"
    );
    let text = response.text().await.unwrap();
    assert_eq!(text.len(), expected.len());
    assert!(text == expected, "the streamed JSON differs");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["phases"][1]["steps"].as_array().unwrap().len(), 3_000);
    // A small plan goes whole, sized.
    let small = s.response("/v1/plans/recovery").await;
    assert!(small.content_length().is_some());
}

#[tokio::test]
async fn plan_in_progress_is_202_and_with_errors_417() {
    let s = Server::sim(|_| {}).await;
    let r = s.get("/v1/plans/deploy").await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_ne!(r.json()["status"], "COMPLETE");
    s.stop().await;

    // A volume change is refused: the deploy plan carries the error → 417.
    let s = Server::sim(|sim| {
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
    })
    .await;
    let r = s.get("/v1/plans/deploy").await;
    assert_eq!(r.status, 417, "{}", r.text);
    let plan = r.json();
    let errors = plan["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{plan}");
    // Health says the plans have errors.
    let r = s.get("/v1/health?verbose=true").await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.json()["value"], 500);
    s.stop().await;
}

#[tokio::test]
async fn plan_commands() {
    let s = Server::sim(deployed).await;

    // interrupt / continue on a complete plan: nothing to do.
    let r = s.post("/v1/plans/deploy/interrupt").await;
    assert_eq!(r.status, 208);
    assert_eq!(r.text, "Command has already been reported or completed");

    // restart a step → 200 with the reference's message, then it is PENDING.
    let r = s
        .post("/v1/plans/deploy/restart?phase=world&step=world-0:%5Bserver%5D")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"message": "Received cmd: restart for Plan: deploy, Phase: world, Step: world-0:[server]"})
    );
    let plan = s.get("/v1/plans/deploy").await;
    assert_eq!(plan.status, 202);

    // forceComplete that step by ids.
    let plan = plan.json();
    let phase_id = plan["phases"][1]["id"].as_str().unwrap().to_owned();
    let step_id = plan["phases"][1]["steps"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .post(&format!(
            "/v1/plans/deploy/forceComplete?phase={phase_id}&step={step_id}"
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["message"],
        format!("Received cmd: forceComplete for Plan: deploy, Phase: {phase_id}, Step: {step_id}")
    );
    let r = s
        .post(&format!(
            "/v1/plans/deploy/forceComplete?phase={phase_id}&step={step_id}"
        ))
        .await;
    assert_eq!(r.status, 208);
    assert_eq!(s.get("/v1/plans/deploy").await.status, 200);

    // Errors of the scheduler: missing phase, unknown plan/phase/step.
    let r = s
        .post("/v1/plans/deploy/restart?step=world-0:%5Bserver%5D")
        .await;
    assert_eq!((r.status, r.text.as_str()), (400, "Missing phase"));
    let r = s.post("/v1/plans/nope/restart").await;
    assert_eq!((r.status, r.text.as_str()), (404, "Plan nope not found"));
    let r = s.post("/v1/plans/deploy/restart?phase=nope").await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("nope"), "{}", r.text);
    let r = s
        .post("/v1/plans/deploy/forceComplete?phase=world&step=nope")
        .await;
    assert_eq!(r.status, 404);

    // Parameters checked here: unknown, repeated, empty; interrupt takes no step.
    let r = s.post("/v1/plans/deploy/interrupt?step=x").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        "Unknown query parameter 'step': this endpoint takes 'phase'"
    );
    let r = s.post("/v1/plans/deploy/restart?phase=a&phase=b").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Query parameter 'phase' is given more than once")
    );
    let r = s.post("/v1/plans/deploy/restart?phase=").await;
    assert_eq!(r.status, 400);
    let r = s.post("/v1/plans/deploy/stop?phase=hello").await;
    assert_eq!(r.status, 400);

    // backup: interrupted until started; start with parameters.
    let r = s
        .call(
            "POST",
            "/v1/plans/backup/start",
            Some(r#"{"BACKUP_NAME":"monday=1"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"message": "Received cmd: start backup with parameters: {BACKUP_NAME=monday=1}"})
    );
    // stop: interrupted and reset.
    let r = s.post("/v1/plans/backup/stop").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"message": "Received cmd: stop"}));
    // An empty body is no parameters.
    let r = s.post("/v1/plans/backup/start").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"message": "Received cmd: start backup with parameters: {}"})
    );
    // Bad bodies.
    let r = s
        .call("POST", "/v1/plans/backup/start", Some(r#"["x"]"#))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text
            .starts_with("Couldn't parse parameters: got an array"),
        "{}",
        r.text
    );
    let r = s
        .call("POST", "/v1/plans/backup/start", Some(r#"{"A": 1}"#))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("the value of A is a number"), "{}", r.text);
    let r = s
        .call("POST", "/v1/plans/backup/start", Some("{oops"))
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .call("POST", "/v1/plans/backup/start", Some(r#"{"1BAD":"x"}"#))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        "Couldn't parse parameters: 1BAD is not a valid environment variable name"
    );

    // Deprecated spellings act on deploy.
    let r = s.post("/v1/plan/restart?phase=hello").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["message"],
        "Received cmd: restart for Plan: deploy, Phase: hello, Step: null"
    );
    let r = s.post("/v1/plan/interrupt").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"message": "Received cmd: interrupt"}));
    let r = s.post("/v1/plan/interrupt").await;
    assert_eq!(r.status, 208);
    let r = s.post("/v1/plan/continue").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"message": "Received cmd: continue"}));
    let r = s.post("/v1/plan/forceComplete?phase=hello").await;
    assert_eq!(r.status, 200, "{}", r.text);
    // No start/stop under the deprecated path.
    assert_eq!(s.post("/v1/plan/stop").await.status, 404);
    s.stop().await;
}

// ───────────────────────────── pods ─────────────────────────────

#[tokio::test]
async fn pods_under_both_spellings() {
    let s = Server::sim(deployed).await;
    for prefix in ["/v1/pods", "/v1/pod"] {
        let r = s.get(prefix).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), json!(["hello-0", "world-0", "world-1"]));

        let r = s.get(&format!("{prefix}/status")).await;
        assert_eq!(r.status, 200);
        let status = r.json();
        assert_eq!(keys(&status), ["service", "pods"]);
        assert_eq!(status["service"], "hello-world");
        let pods = status["pods"].as_array().unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(keys(&pods[0]), ["name", "instances"]);
        assert_eq!(pods[0]["name"], "hello");
        assert_eq!(pods[1]["name"], "world");
        let instance = &pods[0]["instances"][0];
        assert_eq!(keys(instance), ["name", "tasks"]);
        assert_eq!(instance["name"], "hello-0");
        // hello-0 has its server (running) and its backup task (in the backup plan,
        // never launched: no status key).
        let tasks = instance["tasks"].as_array().unwrap();
        let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["hello-0-backup", "hello-0-server"]);
        assert_eq!(keys(&tasks[0]), ["id", "name"]);
        let task = &tasks[1];
        assert_eq!(keys(task), ["id", "name", "status"]);
        assert_eq!(task["name"], "hello-0-server");
        assert_eq!(task["status"], "RUNNING");
        let id = task["id"].as_str().unwrap();
        let uuid = id
            .strip_prefix("hello-world__hello-0-server__")
            .unwrap_or_else(|| panic!("task id {id}"));
        assert!(is_uuid(uuid), "{id}");
        let worlds: Vec<&str> = pods[1]["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(worlds, ["world-0", "world-1"]);

        let r = s.get(&format!("{prefix}/world-1/status")).await;
        assert_eq!(r.status, 200);
        let one = r.json();
        assert_eq!(keys(&one), ["name", "tasks"]);
        assert_eq!(one["name"], "world-1");
        assert_eq!(one["tasks"][0]["name"], "world-1-server");
        assert_eq!(one["tasks"][0]["status"], "RUNNING");

        let r = s.get(&format!("{prefix}/hello-9/status")).await;
        assert_eq!((r.status, r.text.as_str()), (404, "Pod hello-9 not found"));

        let r = s.get(&format!("{prefix}/hello-0/info")).await;
        assert_eq!(r.status, 200);
        let info = r.json();
        let items = info.as_array().unwrap();
        assert_eq!(items.len(), 2, "{info}");
        assert_eq!(keys(&items[0]), ["info", "status"]);
        assert_eq!(items[0]["info"]["name"], "hello-0-backup");
        assert_eq!(items[0]["status"], Value::Null);
        let task_info = &items[1]["info"];
        assert_eq!(task_info["name"], "hello-0-server");
        assert_eq!(task_info["taskId"]["value"], json!(id));
        assert!(task_info["slaveId"]["value"].is_string(), "{task_info}");
        assert!(task_info.get("task_id").is_none());
        let st = &items[1]["status"];
        assert_eq!(st["taskId"]["value"], json!(id));
        let r = s.get(&format!("{prefix}/nope-0/info")).await;
        assert_eq!((r.status, r.text.as_str()), (404, "Pod nope-0 not found"));

        // No parameters on pod routes.
        assert_eq!(s.get(&format!("{prefix}?x=1")).await.status, 400);
        // GET on a command → 405, POST on a view → 405.
        assert_eq!(
            s.get(&format!("{prefix}/hello-0/restart")).await.status,
            405
        );
        assert_eq!(s.post(&format!("{prefix}/status")).await.status, 405);
    }
    s.stop().await;
}

#[tokio::test]
async fn pod_restart_replace_pause_resume() {
    let s = Server::sim(deployed).await;
    let r = s.post("/v1/pods/world-0/restart").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert_eq!(keys(&body), ["pod", "tasks"]);
    assert_eq!(body, json!({"pod": "world-0", "tasks": ["world-0-server"]}));
    let r = s.post("/v1/pod/hello-0/replace").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"pod": "hello-0", "tasks": ["hello-0-backup", "hello-0-server"]})
    );
    let r = s.post("/v1/pods/hello-7/restart").await;
    assert_eq!((r.status, r.text.as_str()), (404, "Pod hello-7 not found"));
    let r = s.post("/v1/pod/hello-7/replace").await;
    assert_eq!(r.status, 404);

    // Bring everything back, then pause one task by its short name.
    s.with_sim(|sim| sim.run_until_complete("deploy", 50).map(|_| ()))
        .await
        .unwrap();
    s.with_sim(|sim| sim.run_until_complete("recovery", 50).map(|_| ()))
        .await
        .unwrap();
    let r = s
        .call("POST", "/v1/pods/world-1/pause", Some(r#"["server"]"#))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"pod": "world-1", "tasks": ["world-1-server"]})
    );
    s.with_sim(|sim| {
        for _ in 0..5 {
            sim.offers().unwrap();
            sim.advance(1_000).unwrap();
        }
    })
    .await;
    let r = s.get("/v1/pods/world-1/status").await;
    let status = r.json()["tasks"][0]["status"].as_str().unwrap().to_owned();
    assert!(status == "PAUSED" || status == "PAUSING", "{}", r.text);
    // Resume all tasks (no body).
    let r = s.post("/v1/pod/world-1/resume").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"pod": "world-1", "tasks": ["world-1-server"]})
    );
    // Bad bodies and unknown tasks/pods.
    let r = s
        .call("POST", "/v1/pods/world-1/pause", Some("[oops"))
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.text.starts_with("Couldn't parse the task list"),
        "{}",
        r.text
    );
    let r = s
        .call(
            "POST",
            "/v1/pods/world-1/pause",
            Some(r#"{"task":"server"}"#),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = s
        .call("POST", "/v1/pods/world-1/pause", Some(r#"["nope"]"#))
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("nope"), "{}", r.text);
    let r = s.post("/v1/pods/world-9/pause").await;
    assert_eq!((r.status, r.text.as_str()), (404, "Pod world-9 not found"));
    s.stop().await;
}

// ───────────────────────── state and configurations ─────────────────────────

#[tokio::test]
async fn state_and_configurations() {
    let s = Server::sim(deployed).await;
    let r = s.get("/v1/state/frameworkId").await;
    assert_eq!(r.status, 200);
    let id = r.json();
    assert_eq!(id.as_array().unwrap().len(), 1);
    assert!(id[0].is_string());

    let r = s.get("/v1/state/properties").await;
    assert_eq!(r.status, 200);
    let props = r.json();
    let props: Vec<String> = props
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut sorted = props.clone();
    sorted.sort();
    assert_eq!(props, sorted);
    assert!(!props.is_empty());
    let key = props[0].clone();
    let r = s.get(&format!("/v1/state/properties/{key}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let expected = s
        .with_sim(move |sim| sim.core().store().property(&key).map(<[u8]>::to_vec))
        .await
        .unwrap();
    assert_eq!(r.text.as_bytes(), expected);
    let r = s.get("/v1/state/properties/nope").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "Property nope not found")
    );

    let r = s.get("/v1/configurations").await;
    assert_eq!(r.status, 200);
    let ids = r.json();
    assert_eq!(ids.as_array().unwrap().len(), 1);
    let r = s.get("/v1/configurations/targetId").await;
    assert_eq!(r.status, 200);
    let target_id = r.json();
    assert_eq!(target_id, ids);
    let target_id = target_id[0].as_str().unwrap().to_owned();
    assert!(is_uuid(&target_id));
    let r = s.get("/v1/configurations/target").await;
    assert_eq!(r.status, 200);
    let target = r.json();
    assert_eq!(target["name"], "hello-world");
    assert!(target["pod-specs"].is_array(), "{target}");
    let r = s.get(&format!("/v1/configurations/{target_id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), target);
    let r = s.get("/v1/configurations/not-a-uuid").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, "Invalid configuration id: not-a-uuid is not a UUID")
    );
    let r = s
        .get("/v1/configurations/00000000-0000-4000-8000-00000000ffff")
        .await;
    assert_eq!(r.status, 404);

    // Artifacts: bad id, unknown config, unknown template.
    let r = s.get("/v1/artifacts/template/xyz/hello/server/conf").await;
    assert_eq!(r.status, 400);
    let r = s
        .get("/v1/artifacts/template/00000000-0000-4000-8000-00000000ffff/hello/server/conf")
        .await;
    assert_eq!(r.status, 404);
    let r = s
        .get(&format!(
            "/v1/artifacts/template/{target_id}/hello/server/nope"
        ))
        .await;
    assert_eq!(r.status, 404);
    assert!(r.text.contains("hello/server/nope"), "{}", r.text);
    s.stop().await;
}

// ───────────────────────────── health ─────────────────────────────

#[tokio::test]
async fn health_codes() {
    // Nothing launched yet: 204, no body.
    let s = Server::sim(|_| {}).await;
    let r = s.get("/v1/health").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.text, "");
    let r = s.get("/v1/health?verbose=maybe").await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text,
        "Invalid value 'maybe' for query parameter 'verbose': expected 'true' or 'false'"
    );
    assert_eq!(s.get("/v1/health?verbos=true").await.status, 400);
    // In progress: 202 while tasks start.
    s.with_sim(|sim| {
        sim.cluster.set_auto_run(false);
        sim.offers().unwrap();
    })
    .await;
    let r = s.get("/v1/health?verbose=true").await;
    assert!(matches!(r.status, 202 | 204), "{} {}", r.status, r.text);
    // Deployed: 200.
    s.with_sim(|sim| {
        sim.cluster.set_auto_run(true);
        sim.task_state("hello-0-server", TaskState::TaskRunning)?;
        sim.run_until_complete("deploy", 50).map(|_| ())
    })
    .await
    .unwrap();
    let r = s.get("/v1/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"value": 200}));
    let r = s.get("/v1/health?verbose=true").await;
    assert_eq!(r.json(), json!({"value": 200, "reasons": []}));
    let r = s.get("/v1/health?verbose=false").await;
    assert_eq!(r.json(), json!({"value": 200}));
    // A crashed task: recovery pending → 203.
    s.with_sim(|sim| {
        sim.task_state("world-1-server", TaskState::TaskFailed)
            .unwrap()
    })
    .await;
    let r = s.get("/v1/health?verbose=true").await;
    assert!(
        matches!(r.status, 203 | 205 | 208),
        "{} {}",
        r.status,
        r.text
    );
    let body = r.json();
    assert_eq!(body["value"], r.status);
    assert!(!body["reasons"].as_array().unwrap().is_empty());
    s.stop().await;
}

/// A scheduler that answers every request with `answer`, counting requests.
fn fake(
    answer: impl Fn(Request) -> Reply + Send + Sync + 'static,
) -> (SchedulerHandle, Arc<AtomicUsize>) {
    let (handle, mut rx) = SchedulerHandle::channel();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Some(envelope) = rx.recv().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = envelope.reply.send(answer(envelope.request));
        }
    });
    (handle, count)
}

#[tokio::test]
async fn non_standard_codes_and_bodies_travel_as_given() {
    let (handle, _) = fake(|req| match req {
        Request::Health { verbose: true } => Reply::json_with(
            318,
            json!({"value": 318, "reasons": ["not registered yet (no framework id)"]}),
        ),
        Request::Health { verbose: false } => Reply::json_with(321, json!({"value": 321})),
        Request::Template {
            config,
            pod,
            task,
            name,
        } => Reply::text(200, format!("{config}/{pod}/{task}/{name}: {{{{X}}}}")),
        Request::Property(k) => Reply {
            status: 200,
            body: Body::Raw(format!("\"raw {k}\"").into_bytes()),
        },
        Request::DebugOffers { .. } => {
            Reply::json(json!({"acceptedCount": 1, "rejectedCount": 2, "offers": []}))
        }
        Request::DebugHistory => Reply::json(json!([])),
        _ => Reply {
            status: 500,
            body: Body::Empty,
        },
    });
    let s = Server::start(handle, None).await;
    let r = s.get("/v1/health?verbose=true").await;
    assert_eq!(r.status, 318);
    assert_eq!(
        r.json(),
        json!({"value": 318, "reasons": ["not registered yet (no framework id)"]})
    );
    let r = s.get("/v1/health").await;
    assert_eq!(r.status, 321);
    let r = s
        .get("/v1/artifacts/template/c/hello/server/my%20conf")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, "c/hello/server/my conf: {{X}}");
    assert!(r.content_type.unwrap().starts_with("text/plain"));
    let r = s.get("/v1/state/properties/a:b").await;
    assert_eq!(r.text, "\"raw a:b\"");
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let r = s.get("/v2/debug/offers").await;
    assert_eq!(
        keys(&r.json()),
        ["acceptedCount", "rejectedCount", "offers"]
    );
    assert_eq!(s.get("/v1/debug/plans").await.json(), json!([]));
    // An empty 500.
    let r = s.get("/v1/plans").await;
    assert_eq!((r.status, r.text.as_str()), (500, ""));
    s.stop().await;
}

#[tokio::test]
async fn debug_views_from_the_simulation() {
    let s = Server::sim(deployed).await;
    let r = s.get("/v2/debug/offers").await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert!(body["acceptedCount"].as_u64().unwrap() >= 3, "{body}");
    assert!(body["rejectedCount"].is_u64());
    assert!(body["offers"].is_array());
    let r = s.get("/v1/debug/plans").await;
    assert_eq!(r.status, 200);
    assert!(r.json().is_array());
    s.stop().await;
}

// ───────────────────── unknown paths, methods, scheduler gone ─────────────────────

#[tokio::test]
async fn unknown_paths_methods_and_a_stopped_scheduler() {
    let (handle, rx) = SchedulerHandle::channel();
    let s = Server::start(handle, None).await;
    let r = s.get("/v1/nope").await;
    assert_eq!((r.status, r.text.as_str()), (404, "Unknown path: /v1/nope"));
    let r = s.get("/v1/plans/deploy/bogus").await;
    assert_eq!(r.status, 404);
    let r = s.post("/v1/plans/deploy/bogus").await;
    assert_eq!(r.status, 404);
    let r = s.call("DELETE", "/v1/plans", None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.text, "Method DELETE is not allowed on /v1/plans");
    let r = s.get("/v1/plans/deploy/start").await;
    assert_eq!(r.status, 405);
    let r = s.call("PUT", "/v1/health", None).await;
    assert_eq!(r.status, 405);
    // The scheduler loop is gone: 503 everywhere.
    drop(rx);
    let r = s.get("/v1/plans").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text, "the scheduler is not running");
    let r = s.post("/v1/pods/hello-0/restart").await;
    assert_eq!(r.status, 503);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_never_reaches_the_scheduler() {
    let (handle, count) = fake(|_| Reply::json(json!("ok")));
    let s = Server::start(handle, None).await;
    for (method, path, body) in [
        ("GET", "/v1/plans?x", None),
        ("GET", "/v1/health?verbose=yes", None),
        ("GET", "/v1/health?verbose=true&verbose=true", None),
        ("POST", "/v1/plans/deploy/start", Some("[1,2]")),
        ("POST", "/v1/plans/deploy/start", Some("\"x\"")),
        ("POST", "/v1/plans/deploy/start?phase=a", None),
        ("POST", "/v1/plans/deploy/continue?phase=a&step=b", None),
        ("POST", "/v1/pods/hello-0/pause", Some("{}")),
        ("POST", "/v1/pods/hello-0/resume", Some("[\"\"]")),
        ("POST", "/v1/pods/hello-0/restart?now=1", None),
        ("GET", "/v1/configurations/target?x=1", None),
        ("GET", "/v1/state/properties?x=1", None),
        ("GET", "/v1/plans?%FF=1", None),
    ] {
        let r = s.call(method, path, body).await;
        assert_eq!(r.status, 400, "{method} {path} {body:?}: {}", r.text);
        assert!(!r.text.is_empty());
    }
    assert_eq!(count.load(Ordering::SeqCst), 0);
    // A binary, non-UTF-8 body is refused, not a panic.
    let r = s
        .client
        .post(format!("{}/v1/plans/deploy/start", s.base))
        .body(vec![0xff_u8, 0xfe, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // The good ones do.
    assert_eq!(s.get("/v1/plans").await.status, 200);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    s.stop().await;
}

// ───────────────────────────── agents ─────────────────────────────

#[derive(Default)]
struct FakeAgents {
    down: std::sync::Mutex<Vec<String>>,
}

impl AgentControl for FakeAgents {
    fn list(&self) -> Result<Value, AgentError> {
        let down = self.down.lock().unwrap();
        Ok(json!(["agent-a", "agent-b"]
            .iter()
            .map(|id| json!({"id": id, "state": if down.iter().any(|d| d == id) { "down" } else { "up" }}))
            .collect::<Vec<_>>()))
    }

    fn stop(&self, id: &str) -> Result<Value, AgentError> {
        match id {
            "agent-a" | "agent-b" => {
                let mut down = self.down.lock().unwrap();
                if down.iter().any(|d| d == id) {
                    return Err(AgentError::Conflict(format!("Agent {id} is already down")));
                }
                down.push(id.to_owned());
                Ok(json!({"message": format!("Agent {id} has been stopped.")}))
            }
            "boom" => panic!("the control panicked"),
            _ => Err(AgentError::UnknownAgent {
                id: id.to_owned(),
                known: vec!["agent-a".to_owned(), "agent-b".to_owned()],
            }),
        }
    }

    fn start(&self, id: &str) -> Result<Value, AgentError> {
        self.down.lock().unwrap().retain(|d| d != id);
        Ok(json!({"message": format!("Agent {id} has been started.")}))
    }

    fn drain(&self, _id: &str) -> Result<Value, AgentError> {
        Err(AgentError::Failed(
            "the state could not be written".to_owned(),
        ))
    }
}

#[tokio::test]
async fn agents_routes() {
    let (handle, count) = fake(|_| Reply::json(json!([])));
    let s = Server::start(handle.clone(), None).await;
    let r = s.get("/v1/agents").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (404, "Agents are not managed by this scheduler")
    );
    assert_eq!(s.post("/v1/agents/agent-a/stop").await.status, 404);
    s.stop().await;

    let s = Server::start(handle, Some(Arc::new(FakeAgents::default()))).await;
    let r = s.get("/v1/agents").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([{"id": "agent-a", "state": "up"}, {"id": "agent-b", "state": "up"}])
    );
    let r = s.post("/v1/agents/agent-a/stop").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"message": "Agent agent-a has been stopped."})
    );
    assert_eq!(s.get("/v1/agents").await.json()[0]["state"], "down");
    let r = s.post("/v1/agents/agent-a/stop").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (409, "Agent agent-a is already down")
    );
    let r = s.post("/v1/agents/agent-z/stop").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            404,
            "Agent agent-z not found; known agents: agent-a, agent-b"
        )
    );
    let r = s.post("/v1/agents/agent-a/start").await;
    assert_eq!(r.status, 200);
    let r = s.post("/v1/agents/agent-a/drain").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (500, "the state could not be written")
    );
    let r = s.post("/v1/agents/boom/stop").await;
    assert_eq!(r.status, 500);
    assert!(r.text.starts_with("The agent control failed"), "{}", r.text);
    // Still serving after a panicking control.
    assert_eq!(s.get("/v1/agents").await.status, 200);
    assert_eq!(s.get("/v1/agents/agent-a/stop").await.status, 405);
    assert_eq!(s.post("/v1/agents/agent-a/reboot").await.status, 404);
    assert_eq!(s.get("/v1/agents?all=1").await.status, 400);
    // None of this asked the scheduler.
    assert_eq!(count.load(Ordering::SeqCst), 0);
    s.stop().await;
}
