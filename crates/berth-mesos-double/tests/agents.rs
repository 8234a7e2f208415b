//! The agents' side of the double over real HTTP: `/master/slaves`, `/slave(n)/state`, the
//! files API over real sandboxes, and exec (nested container sessions run as real
//! processes), driven with plain reqwest and the wire JSON.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::TaskState;
use berth_mesos::recordio;
use berth_mesos_double::{DoubleOptions, MesosDouble};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// A double with agents' endpoints and a subscribed framework.
struct Harness {
    double: MesosDouble,
    http: reqwest::Client,
    master: String,
    agents: String,
    framework_id: String,
    stream_id: String,
    events: mpsc::UnboundedReceiver<Value>,
}

/// RecordIO records of a streamed response, as JSON.
struct Records {
    response: reqwest::Response,
    decoder: recordio::Decoder,
}

impl Records {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            decoder: recordio::Decoder::new(),
        }
    }

    /// The next record; `None` at the end of the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(record) = self.decoder.next_record() {
                return Some(serde_json::from_slice(&record).expect("a JSON record"));
            }
            let chunk = self.response.chunk().await.expect("the stream")?;
            self.decoder.feed(&chunk).expect("RecordIO");
        }
    }

    /// The next DATA record: (STDOUT|STDERR, bytes); heartbeats are skipped.
    async fn next_data(&mut self) -> Option<(String, Vec<u8>)> {
        loop {
            let record = self.next().await?;
            if record["type"] == "CONTROL" {
                assert_eq!(record["control"]["type"], "HEARTBEAT", "{record}");
                continue;
            }
            assert_eq!(record["type"], "DATA", "{record}");
            let kind = record["data"]["type"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let data = base64::engine::general_purpose::STANDARD
                .decode(record["data"]["data"].as_str().unwrap_or_default())
                .expect("base64");
            return Some((kind, data));
        }
    }

    /// Everything until the end: (stdout, stderr).
    async fn collect(mut self) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((kind, data)) = self.next_data().await {
            match kind.as_str() {
                "STDOUT" => out.extend(data),
                "STDERR" => err.extend(data),
                other => panic!("unexpected stream {other}"),
            }
        }
        (
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }
}

async fn start(root: &Path) -> Harness {
    let double = MesosDouble::start(
        SimAgentSpec::many(2, &[]),
        DoubleOptions {
            offer_interval: Duration::from_millis(50),
            agent_root: Some(root.to_path_buf()),
            ..DoubleOptions::default()
        },
    )
    .await
    .expect("double");
    let http = reqwest::Client::new();
    let master = double.urls()[0].clone();
    let agents = double.agents_url().expect("the agents' listener");
    let subscribe = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "nobody", "name": "svc", "roles": ["svc-role"],
        "failover_timeout": 60.0, "checkpoint": true}}});
    let response = http
        .post(format!("{master}/api/v1/scheduler"))
        .header("Content-Type", "application/json")
        .body(subscribe.to_string())
        .send()
        .await
        .expect("subscribe");
    assert_eq!(response.status(), 200);
    let stream_id = response.headers()["Mesos-Stream-Id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut records = Records::new(response);
    let subscribed = records.next().await.expect("SUBSCRIBED");
    assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
    let framework_id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = records.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    Harness {
        double,
        http,
        master,
        agents,
        framework_id,
        stream_id,
        events,
    }
}

impl Harness {
    /// Launches one task (a pod of one on executor `executor`) with `command` on the agent
    /// of the next offer; returns that agent's id.
    async fn launch(&mut self, name: &str, task_id: &str, executor: &str, command: &str) -> String {
        let offer = loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("an offer in time")
                .expect("the event stream");
            if event["type"] == "OFFERS" {
                break event["offers"]["offers"][0].clone();
            }
        };
        let agent = offer["agent_id"]["value"].as_str().unwrap().to_owned();
        let accept = json!({
            "type": "ACCEPT",
            "framework_id": {"value": self.framework_id},
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                    "executor": {"type": "DEFAULT", "executor_id": {"value": executor},
                                 "name": "pod-0", "resources": []},
                    "task_group": {"tasks": [{
                        "name": name, "task_id": {"value": task_id},
                        "agent_id": {"value": agent}, "resources": [],
                        "command": {"shell": true, "value": command}}]}}}],
                "filters": {"refuse_seconds": 0.0}}});
        let response = self
            .http
            .post(format!("{}/api/v1/scheduler", self.master))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .body(accept.to_string())
            .send()
            .await
            .expect("accept");
        assert_eq!(response.status(), 202, "{:?}", response.text().await);
        agent
    }

    async fn get_json(&self, url: &str) -> Value {
        let response = self.http.get(url).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{url}");
        response.json().await.expect("JSON")
    }

    /// The process id (`slave(n)`) of an agent, from the master's list.
    async fn process_of(&self, agent: &str) -> String {
        let slaves = self
            .get_json(&format!("{}/master/slaves", self.master))
            .await;
        let pid = slaves["slaves"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == agent)
            .expect("the agent is listed")["pid"]
            .as_str()
            .unwrap()
            .to_owned();
        pid.split_once('@').unwrap().0.to_owned()
    }

    /// The executor entry and task entry of `task_id` in its agent's state.
    async fn find_task(&self, agent: &str, task_id: &str) -> (Value, Value, &'static str) {
        let process = self.process_of(agent).await;
        let state = self
            .get_json(&format!("{}/{process}/state", self.agents))
            .await;
        for framework in state["frameworks"].as_array().unwrap() {
            for key in ["executors", "completed_executors"] {
                for executor in framework[key].as_array().unwrap() {
                    for tasks in ["tasks", "completed_tasks"] {
                        if let Some(t) = executor[tasks]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|t| t["id"] == task_id)
                        {
                            let place = if tasks == "tasks" {
                                "active"
                            } else {
                                "completed"
                            };
                            return (executor.clone(), t.clone(), place);
                        }
                    }
                }
            }
        }
        panic!("task {task_id} not in {state}");
    }

    /// The task's sandbox and container id.
    async fn sandbox(&self, agent: &str, task_id: &str) -> (String, Value) {
        let (executor, task, _) = self.find_task(agent, task_id).await;
        let dir = format!(
            "{}/tasks/{task_id}",
            executor["directory"].as_str().unwrap()
        );
        let container = task["statuses"][0]["container_status"]["container_id"].clone();
        (dir, container)
    }

    async fn call(&self, process: &str, call: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/{process}/api/v1", self.agents))
            .header("Content-Type", "application/json")
            .header("Accept", "application/recordio")
            .header("Message-Accept", "application/json")
            .body(call.to_string())
            .send()
            .await
            .expect("agent call")
    }

    /// LAUNCH_NESTED_CONTAINER_SESSION of `command` in `parent`; the session's container id
    /// and the response.
    async fn launch_session(
        &self,
        process: &str,
        parent: &Value,
        command: Value,
        tty: Option<(u32, u32)>,
    ) -> (Value, reqwest::Response) {
        let container_id = json!({"value": uuid::Uuid::new_v4().to_string(), "parent": parent});
        let mut launch = json!({"container_id": container_id, "command": command});
        if let Some((rows, columns)) = tty {
            launch["container"] = json!({"type": "MESOS",
                "tty_info": {"window_size": {"rows": rows, "columns": columns}}});
        }
        let response = self
            .call(
                process,
                &json!({"type": "LAUNCH_NESTED_CONTAINER_SESSION",
                        "launch_nested_container_session": launch}),
            )
            .await;
        (container_id, response)
    }

    async fn wait_session(&self, process: &str, container_id: &Value) -> i64 {
        let response = self
            .call(
                process,
                &json!({"type": "WAIT_NESTED_CONTAINER",
                        "wait_nested_container": {"container_id": container_id}}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "WAIT_NESTED_CONTAINER");
        body["wait_nested_container"]["exit_status"]
            .as_i64()
            .expect("exit_status")
    }

    /// Starts ATTACH_CONTAINER_INPUT for `container_id`; records sent on the returned channel
    /// are streamed (closing it ends the request), the handle yields the HTTP status.
    fn attach(
        &self,
        process: &str,
        container_id: &Value,
    ) -> (
        mpsc::UnboundedSender<Value>,
        tokio::task::JoinHandle<reqwest::StatusCode>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel::<Value>();
        let first = json!({"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {
            "type": "CONTAINER_ID", "container_id": container_id}});
        tx.send(first).unwrap();
        let body = futures::stream::unfold(rx, |mut rx| async move {
            let record = rx.recv().await?;
            Some((
                Ok::<_, std::convert::Infallible>(recordio::encode(record.to_string().as_bytes())),
                rx,
            ))
        });
        let request = self
            .http
            .post(format!("{}/{process}/api/v1", self.agents))
            .header("Content-Type", "application/recordio")
            .header("Message-Content-Type", "application/json")
            .body(reqwest::Body::wrap_stream(body));
        let handle = tokio::spawn(async move { request.send().await.expect("attach").status() });
        (tx, handle)
    }
}

fn stdin_record(data: &[u8]) -> Value {
    json!({"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {"type": "PROCESS_IO",
        "process_io": {"type": "DATA", "data": {"type": "STDIN",
            "data": base64::engine::general_purpose::STANDARD.encode(data)}}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_names_the_agents_and_their_state_shows_task_sandboxes() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch(
            "pod-0-server",
            "pod-0-server__1",
            "pod-0__e1",
            "./server --port 1",
        )
        .await;

    let slaves = h.get_json(&format!("{}/master/slaves", h.master)).await;
    let port = h.agents.rsplit(':').next().unwrap().to_owned();
    let list = slaves["slaves"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for (i, s) in list.iter().enumerate() {
        assert_eq!(s["id"], format!("agent-{i}"));
        assert_eq!(s["pid"], format!("slave({})@127.0.0.1:{port}", i + 1));
        assert_eq!(s["hostname"], format!("agent-{i}"));
        assert_eq!(s["port"].to_string(), port);
        assert_eq!(s["active"], true);
    }

    let process = h.process_of(&agent).await;
    let state = h.get_json(&format!("{}/{process}/state", h.agents)).await;
    assert_eq!(state["id"], agent.as_str());
    assert_eq!(state["pid"], format!("{process}@127.0.0.1:{port}"));
    assert_eq!(state["completed_frameworks"], json!([]));
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], h.framework_id.as_str());
    assert_eq!(framework["name"], "svc");
    let executor = &framework["executors"][0];
    assert_eq!(executor["id"], "pod-0__e1");
    assert_eq!(executor["type"], "DEFAULT");
    let container = executor["container"].as_str().unwrap();
    let dir = executor["directory"].as_str().unwrap();
    let canonical_root = std::fs::canonicalize(root.path()).unwrap();
    assert_eq!(
        Path::new(dir),
        canonical_root.join(format!(
            "slaves/{agent}/frameworks/{}/executors/pod-0__e1/runs/{container}",
            h.framework_id
        ))
    );
    assert!(Path::new(dir).join("stdout").is_file());
    let task = &executor["tasks"][0];
    assert_eq!(task["id"], "pod-0-server__1");
    assert_eq!(task["name"], "pod-0-server");
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["slave_id"], agent.as_str());
    assert_eq!(task["framework_id"], h.framework_id.as_str());
    let status = &task["statuses"][0];
    assert_eq!(status["state"], "TASK_RUNNING");
    assert!(status["timestamp"].as_f64().unwrap() > 1.0e9);
    let task_container = &status["container_status"]["container_id"];
    assert_eq!(task_container["parent"]["value"], container);
    assert_ne!(task_container["value"], container);
    assert!(
        Path::new(dir)
            .join("tasks/pod-0-server__1/stderr")
            .is_file()
    );

    // A task that ends moves to completed_tasks, and its executor with no task left to
    // completed_executors; the sandbox stays.
    h.double
        .sim()
        .task_status("pod-0-server", TaskState::TaskFailed)
        .unwrap();
    let (executor, task, place) = h.find_task(&agent, "pod-0-server__1").await;
    assert_eq!(place, "completed");
    assert_eq!(task["state"], "TASK_FAILED");
    assert_eq!(task["statuses"].as_array().unwrap().len(), 2);
    let state = h.get_json(&format!("{}/{process}/state", h.agents)).await;
    assert_eq!(state["frameworks"][0]["executors"], json!([]));
    assert_eq!(
        state["frameworks"][0]["completed_executors"][0]["id"],
        "pod-0__e1"
    );
    assert!(
        Path::new(executor["directory"].as_str().unwrap())
            .join("tasks/pod-0-server__1/stdout")
            .is_file()
    );

    // An unknown agent process.
    let response = h
        .http
        .get(format!("{}/slave(9)/state", h.agents))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_api_reads_browses_and_downloads_sandbox_files() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch(
            "pod-0-server",
            "pod-0-server__1",
            "pod-0__e1",
            "./server --port 1",
        )
        .await;
    let (sandbox, _) = h.sandbox(&agent, "pod-0-server__1").await;
    let stdout = format!("{sandbox}/stdout");
    let expected = "Received task pod-0-server__1\n./server --port 1\n";
    let read = |query: Vec<(&'static str, String)>| {
        let request = h.http.get(format!("{}/files/read", h.agents)).query(&query);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let json = |text: &str| -> Value { serde_json::from_str(text).unwrap() };

    let (status, body) = read(vec![("path", stdout.clone()), ("offset", "0".into())]).await;
    assert_eq!(status, 200);
    assert_eq!(json(&body), json!({"data": expected, "offset": 0}));
    let (_, body) = read(vec![("path", stdout.clone()), ("offset", "-1".into())]).await;
    assert_eq!(json(&body), json!({"data": "", "offset": expected.len()}));
    let (_, body) = read(vec![("path", stdout.clone())]).await;
    assert_eq!(json(&body)["offset"], expected.len());
    let (_, body) = read(vec![
        ("path", stdout.clone()),
        ("offset", "9".into()),
        ("length", "4".into()),
    ])
    .await;
    assert_eq!(json(&body), json!({"data": "task", "offset": 9}));
    let (_, body) = read(vec![
        ("path", stdout.clone()),
        ("offset", expected.len().to_string()),
    ])
    .await;
    assert_eq!(json(&body), json!({"data": "", "offset": expected.len()}));
    let (_, body) = read(vec![("path", stdout.clone()), ("offset", "1000".into())]).await;
    assert_eq!(json(&body), json!({"data": "", "offset": 1000}));

    // Reads are capped at 16 pages.
    let big = format!("{sandbox}/big");
    std::fs::write(&big, vec![b'x'; 100_000]).unwrap();
    let (_, body) = read(vec![("path", big.clone()), ("offset", "0".into())]).await;
    assert_eq!(json(&body)["data"].as_str().unwrap().len(), 65_536);

    let (status, body) = read(vec![("offset", "0".into())]).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "Expecting 'path=value' in query.\n")
    );
    let (status, _) = read(vec![("path", stdout.clone()), ("offset", "-2".into())]).await;
    assert_eq!(status, 400);
    let (status, _) = read(vec![("path", stdout.clone()), ("offset", "x".into())]).await;
    assert_eq!(status, 400);
    let (status, _) = read(vec![("path", sandbox.clone()), ("offset", "0".into())]).await;
    assert_eq!(status, 400, "a directory");
    let (status, _) = read(vec![("path", format!("{sandbox}/nothing"))]).await;
    assert_eq!(status, 404);
    let outside = tempfile::NamedTempFile::new().unwrap();
    let (status, _) = read(vec![("path", outside.path().display().to_string())]).await;
    assert_eq!(status, 404, "a path outside the agent root");
    let (status, _b) = read(vec![("path", format!("{sandbox}{}", "/..".repeat(20)))]).await;
    assert_eq!(status, 404, "a path that climbs out of the root: {_b}");
    std::os::unix::fs::symlink(outside.path(), format!("{sandbox}/link")).unwrap();
    let (status, _) = read(vec![("path", format!("{sandbox}/link"))]).await;
    assert_eq!(status, 404, "a symlink out of the root");

    // browse
    let listing = h
        .http
        .get(format!("{}/files/browse", h.agents))
        .query(&[("path", &sandbox)])
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 200);
    let listing: Value = listing.json().await.unwrap();
    let entries = listing.as_array().unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    // Sorted; the link is listed (as what it points to), though reading through it is not
    // served.
    assert_eq!(
        paths,
        [
            format!("{sandbox}/big"),
            format!("{sandbox}/link"),
            format!("{sandbox}/stderr"),
            format!("{sandbox}/stdout")
        ]
    );
    let out = entries
        .iter()
        .find(|e| e["path"] == stdout.as_str())
        .unwrap();
    assert_eq!(out["size"], expected.len());
    assert_eq!(out["nlink"], 1);
    assert!(out["mode"].as_str().unwrap().starts_with("-rw"), "{out}");
    assert!(out["mtime"].as_i64().unwrap() > 1_000_000_000);
    assert!(out["uid"].is_string() && out["gid"].is_string());
    let missing = h
        .http
        .get(format!("{}/files/browse", h.agents))
        .query(&[("path", format!("{sandbox}/nothing"))])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // download
    let download = h
        .http
        .get(format!("{}/files/download", h.agents))
        .query(&[("path", &stdout)])
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(
        download.headers()["Content-Type"],
        "application/octet-stream"
    );
    assert_eq!(
        download.headers()["Content-Disposition"],
        "attachment; filename=stdout"
    );
    assert_eq!(download.bytes().await.unwrap(), expected.as_bytes());
    let directory = h
        .http
        .get(format!("{}/files/download", h.agents))
        .query(&[("path", &sandbox)])
        .send()
        .await
        .unwrap();
    assert_eq!(directory.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_streams_its_output_and_wait_gives_its_status() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch("pod-0-server", "pod-0-server__1", "pod-0__e1", "./server")
        .await;
    let process = h.process_of(&agent).await;
    let (sandbox, parent) = h.sandbox(&agent, "pod-0-server__1").await;

    let (id, response) = h
        .launch_session(
            &process,
            &parent,
            json!({"value": "echo hi; echo err >&2; echo \"$MESOS_SANDBOX $FOO\"; pwd; exit 3",
                   "environment": {"variables": [{"name": "FOO", "value": "bar"}]}}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["Content-Type"], "application/recordio");
    assert_eq!(
        response.headers()["Message-Content-Type"],
        "application/json"
    );
    let (out, err) = Records::new(response).collect().await;
    assert_eq!(out, format!("hi\n{sandbox} bar\n{sandbox}\n"));
    assert_eq!(err, "err\n");
    assert_eq!(h.wait_session(&process, &id).await, 3 << 8);
    // The status stays for later waits.
    assert_eq!(h.wait_session(&process, &id).await, 768);

    // Without a shell: value is the program, arguments[0] its argv[0].
    let (id, response) = h
        .launch_session(
            &process,
            &parent,
            json!({"shell": false, "value": "sh",
                   "arguments": ["my-sh", "-c", "tr '\\0' ' ' < /proc/$$/cmdline; echo $0", "x"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        Records::new(response).collect().await.0,
        "my-sh -c tr '\\0' ' ' < /proc/$$/cmdline; echo $0 x x\n"
    );
    assert_eq!(h.wait_session(&process, &id).await, 0);

    // A program that does not exist is refused.
    let (_, response) = h
        .launch_session(
            &process,
            &parent,
            json!({"shell": false, "value": "/no/such/program", "arguments": ["x"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("No such file"));

    // A parent that is no task's container.
    let (_, response) = h
        .launch_session(
            &process,
            &json!({"value": "nope"}),
            json!({"value": "true"}),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    // An unknown session.
    let response = h
        .call(
            &process,
            &json!({"type": "WAIT_NESTED_CONTAINER",
                    "wait_nested_container": {"container_id": {"value": "nope"}}}),
        )
        .await;
    assert_eq!(response.status(), 404);
    // Calls the double does not know.
    let response = h.call(&process, &json!({"type": "GET_STATE"})).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("not supported by the double")
    );

    // A task that ended has no container to run in.
    h.double
        .sim()
        .task_status("pod-0-server", TaskState::TaskFinished)
        .unwrap();
    let (_, response) = h
        .launch_session(&process, &parent, json!({"value": "true"}), None)
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_input_reaches_the_session() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch("pod-0-server", "pod-0-server__1", "pod-0__e1", "./server")
        .await;
    let process = h.process_of(&agent).await;
    let (_, parent) = h.sandbox(&agent, "pod-0-server__1").await;

    let (id, response) = h
        .launch_session(
            &process,
            &parent,
            json!({"shell": false, "value": "cat", "arguments": ["cat"]}),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut output = Records::new(response);
    let (input, attach) = h.attach(&process, &id);
    input.send(stdin_record(b"hello\n")).unwrap();
    // Echoed while the input is still open.
    let (kind, data) = tokio::time::timeout(Duration::from_secs(10), output.next_data())
        .await
        .expect("the echo in time")
        .expect("output");
    assert_eq!(
        (kind.as_str(), data.as_slice()),
        ("STDOUT", &b"hello\n"[..])
    );
    input
        .send(
            json!({"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {
            "type": "PROCESS_IO", "process_io": {"type": "CONTROL", "control": {
                "type": "HEARTBEAT", "heartbeat": {"interval": {"nanoseconds": 1000}}}}}}),
        )
        .unwrap();
    input.send(stdin_record(b"again\n")).unwrap();
    // The end of input.
    input.send(stdin_record(b"")).unwrap();
    drop(input);
    let (out, _) = output.collect().await;
    assert_eq!(out, "again\n");
    assert_eq!(attach.await.unwrap(), 200);
    assert_eq!(h.wait_session(&process, &id).await, 0);

    // Attaching to an unknown container.
    let (input, attach) = h.attach(&process, &json!({"value": "nope"}));
    drop(input);
    assert_eq!(attach.await.unwrap(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_a_tty_runs_on_a_pseudo_terminal() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch("pod-0-server", "pod-0-server__1", "pod-0__e1", "./server")
        .await;
    let process = h.process_of(&agent).await;
    let (_, parent) = h.sandbox(&agent, "pod-0-server__1").await;

    let (id, response) = h
        .launch_session(
            &process,
            &parent,
            json!({"value": "tty; stty size; echo err >&2"}),
            Some((24, 80)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let (out, err) = Records::new(response).collect().await;
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("24 80\r\n"), "{out:?}");
    assert!(out.contains("err"), "everything is STDOUT: {out:?}");
    assert_eq!(err, "");
    assert_eq!(h.wait_session(&process, &id).await, 0);

    // A resize reaches the terminal.
    let (id, response) = h
        .launch_session(&process, &parent, json!({"value": "sh"}), Some((24, 80)))
        .await;
    assert_eq!(response.status(), 200);
    let mut output = Records::new(response);
    let (input, attach) = h.attach(&process, &id);
    input
        .send(
            json!({"type": "ATTACH_CONTAINER_INPUT", "attach_container_input": {
            "type": "PROCESS_IO", "process_io": {"type": "CONTROL", "control": {
                "type": "TTY_INFO", "tty_info": {"window_size": {"rows": 30, "columns": 100}}}}}}),
        )
        .unwrap();
    input.send(stdin_record(b"stty size; exit 7\n")).unwrap();
    let mut out = String::new();
    while let Some((_, data)) = tokio::time::timeout(Duration::from_secs(10), output.next_data())
        .await
        .expect("output in time")
    {
        out.push_str(&String::from_utf8_lossy(&data));
    }
    assert!(out.contains("30 100\r\n"), "{out:?}");
    drop(input);
    assert_eq!(attach.await.unwrap(), 200);
    assert_eq!(h.wait_session(&process, &id).await, 7 << 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_connection_breaks_is_killed() {
    let root = tempfile::tempdir().unwrap();
    let mut h = start(root.path()).await;
    let agent = h
        .launch("pod-0-server", "pod-0-server__1", "pod-0__e1", "./server")
        .await;
    let process = h.process_of(&agent).await;
    let (_, parent) = h.sandbox(&agent, "pod-0-server__1").await;
    let (id, response) = h
        .launch_session(&process, &parent, json!({"value": "sleep 60"}), None)
        .await;
    assert_eq!(response.status(), 200);
    drop(response);
    let status = tokio::time::timeout(Duration::from_secs(10), h.wait_session(&process, &id))
        .await
        .expect("killed in time");
    assert_eq!(status, 9, "SIGKILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_slaves_follows_the_leader_and_the_credentials() {
    let root = tempfile::tempdir().unwrap();
    let d = MesosDouble::start(
        SimAgentSpec::many(1, &[]),
        DoubleOptions {
            masters: 2,
            agent_root: Some(root.path().to_path_buf()),
            ..DoubleOptions::default()
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let urls = d.urls();
    let response = http
        .get(format!("{}/master/slaves", urls[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        response.headers()["Location"],
        format!("//{}/master/slaves", urls[0].trim_start_matches("http://"))
    );
    d.require_credentials("ops", "secret");
    let response = http
        .get(format!("{}/master/slaves", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = http
        .get(format!("{}/master/slaves", urls[0]))
        .basic_auth("ops", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let slaves: Value = response.json().await.unwrap();
    assert_eq!(
        slaves["slaves"][0]["pid"]
            .as_str()
            .unwrap()
            .split('@')
            .next(),
        Some("slave(1)")
    );

    // Off by default: nothing more is bound and the masters do not list agents.
    let plain = MesosDouble::start(SimAgentSpec::many(1, &[]), DoubleOptions::default())
        .await
        .unwrap();
    assert!(plain.agents_url().is_none());
    let response = http
        .get(format!("{}/master/slaves", plain.urls()[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
