//! Running the real `berth` binary on the local cluster for end-to-end tests.
//!
//! Each [`Berth`] owns a temporary data directory, an agents file with port ranges of its
//! own (tests run in parallel on one machine), and the `berth run` process. Dropping it kills
//! `berth run` and every process started under its data directory (executors and tasks), by
//! PID.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The berth binary under test.
pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An agents file: three agents in zones a, b, c with 100 ports each from `port_base`.
pub fn agents_yaml(port_base: u16) -> String {
    let mut s = String::from("agents:\n");
    for (i, zone) in ["a", "b", "c"].iter().enumerate() {
        let begin = port_base + (i as u16) * 100;
        s.push_str(&format!(
            "  - id: agent-{zone}\n    zone: {zone}\n    cpus: 4\n    mem: 8192\n    disk: 65536\n    ports: [\"{begin}-{}\"]\n",
            begin + 99
        ));
    }
    s
}

/// A `berth run` under test.
pub struct Berth {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub agents: PathBuf,
    /// Extra environment of every `berth run` started.
    pub env: Vec<(String, String)>,
    /// The API token the harness's requests and CLI commands send, when auth is on.
    pub token: Option<String>,
    child: Option<Child>,
    runs: u32,
}

impl Berth {
    /// A data directory and an agents file whose ports start at `port_base`.
    pub fn new(port_base: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir()
            .expect("temp dir");
        let agents = dir.path().join("agents.yml");
        std::fs::write(&agents, agents_yaml(port_base)).expect("agents file");
        Self {
            dir,
            port: free_port(),
            agents,
            env: Vec::new(),
            token: None,
            child: None,
            runs: 0,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("run-{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Starts `berth run` on `path` with extra arguments and waits for its API. The API's
    /// port was free when it was picked; when another process of the test run took it in
    /// between, berth is started again on a new one.
    pub fn start(&mut self, path: &Path, extra: &[&str]) {
        for _ in 0..3 {
            self.spawn(path, extra);
            if !self.wait_api_or_port_taken(Duration::from_secs(30)) {
                return;
            }
            self.port = free_port();
        }
        panic!("the API port was taken three times:\n{}", self.log());
    }

    /// Starts `berth run` on `path` with extra arguments; does not wait for anything.
    pub fn spawn(&mut self, path: &Path, extra: &[&str]) {
        self.runs += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("run-{}.log", self.runs)))
            .expect("log");
        let child = Command::new(berth_bin())
            .arg("run")
            .arg("--data-dir")
            .arg(self.data())
            .arg("--agents")
            .arg(&self.agents)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(extra)
            .arg(path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("berth run starts");
        self.child = Some(child);
    }

    /// Waits for the API of the running `berth run` to answer; panics when it exits first.
    pub fn wait_api(&mut self, timeout: Duration) {
        assert!(
            !self.wait_api_or_port_taken(timeout),
            "berth run could not listen on {}:\n{}",
            self.url(),
            self.log()
        );
    }

    /// [`Self::wait_api`], except that `true` is returned when berth exited because its API
    /// port was in use.
    fn wait_api_or_port_taken(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.get_status("/v1/health").is_some() {
                return false;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let run =
                    std::fs::read_to_string(self.dir.path().join(format!("run-{}.log", self.runs)))
                        .unwrap_or_default();
                if run.contains("for the API: Address already in use") {
                    return true;
                }
                panic!("berth run exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "berth run did not answer on {}:\n{}",
            self.url(),
            self.log()
        );
    }

    /// Takes the running `berth run` out of this harness (to start another one beside it).
    pub fn detach(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// `kill -9` of `berth run` (executors and tasks keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM to `berth run`, waiting for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client")
    }

    /// `req` with the harness's token, if any.
    fn authorized(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> reqwest::blocking::RequestBuilder {
        match &self.token {
            Some(t) => req.header("Authorization", format!("Bearer {t}")),
            None => req,
        }
    }

    /// GET → (status, body text); `None` when the API does not answer.
    pub fn get_status(&self, path: &str) -> Option<(u16, String)> {
        let r = self
            .authorized(Self::client().get(format!("{}{path}", self.url())))
            .send()
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().unwrap_or_default()))
    }

    /// GET → (status, JSON).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let (code, text) = self
            .get_status(path)
            .unwrap_or_else(|| panic!("GET {path}: no answer\n{}", self.log()));
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST a JSON body → (status, JSON (or the text as a JSON string)).
    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let (code, text) = self.post(path, Some(&body.to_string()));
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// POST with an optional JSON body → (status, text).
    pub fn post(&self, path: &str, body: Option<&str>) -> (u16, String) {
        let mut req = self.authorized(Self::client().post(format!("{}{path}", self.url())));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_owned());
        }
        let r = req.send().unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// Runs a berth CLI command against this scheduler.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(berth_bin())
            .args(args)
            .env("BERTH_URL", self.url())
            .envs(self.token.iter().map(|t| ("BERTH_TOKEN", t)))
            .output()
            .expect("berth cli runs")
    }

    /// Waits until `GET /v1/plans/{plan}` answers 200 (COMPLETE).
    pub fn wait_complete(&self, plan: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some((200, _)) = self.get_status(&format!("/v1/plans/{plan}")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, plan_json) = self.get(&format!("/v1/plans/{plan}"));
        panic!(
            "plan {plan} not complete after {timeout:?}: {plan_json:#}\n{}",
            self.log()
        );
    }

    /// Waits until `check` holds, polling.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let (_, recovery) = self.get("/v1/plans/recovery");
        panic!(
            "timed out waiting for {what}\ntasks: {:#?}\nrecovery plan: {recovery:#}\n{}",
            self.task_ids(),
            self.log()
        );
    }

    /// Waits until `task` runs under an id other than `other_than`; returns the new id.
    pub fn wait_relaunched(&self, task: &str, other_than: &str, timeout: Duration) -> String {
        let mut id = String::new();
        let t0 = Instant::now();
        self.wait_for(&format!("{task} running again"), timeout, || {
            match self.task_ids().get(task) {
                Some((i, s)) if i != other_than && s == "RUNNING" => {
                    id = i.clone();
                    true
                }
                _ => false,
            }
        });
        eprintln!("{task} running again after {:.1?}", t0.elapsed());
        id
    }

    /// Task name → task id of every task with a status, from `GET /v1/pods/status`.
    pub fn task_ids(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let (_, status) = self.get("/v1/pods/status");
        let mut m = std::collections::BTreeMap::new();
        for pod in status["pods"].as_array().into_iter().flatten() {
            for inst in pod["instances"].as_array().into_iter().flatten() {
                for t in inst["tasks"].as_array().into_iter().flatten() {
                    if let Some(s) = t["status"].as_str() {
                        m.insert(
                            t["name"].as_str().unwrap_or_default().to_owned(),
                            (
                                t["id"].as_str().unwrap_or_default().to_owned(),
                                s.to_owned(),
                            ),
                        );
                    }
                }
            }
        }
        m
    }

    /// PIDs of live processes that run a task of this service (`TASK_NAME=<name>` in their
    /// environment) under this data directory, grouped by task name.
    pub fn task_processes(&self) -> std::collections::BTreeMap<String, Vec<i32>> {
        let data = self.data().display().to_string();
        let mut m: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
        for (pid, env) in processes() {
            let sandbox = env.iter().find_map(|e| e.strip_prefix("MESOS_SANDBOX="));
            let task = env.iter().find_map(|e| e.strip_prefix("TASK_NAME="));
            if let (Some(sandbox), Some(task)) = (sandbox, task)
                && sandbox.starts_with(&data)
            {
                m.entry(task.to_owned()).or_default().push(pid);
            }
        }
        m
    }

    /// Live copies of each task: its process groups, counted several times over a second
    /// and the least count kept. A health or readiness check runs in a process group of its
    /// own with the task's environment, so one sample may count a check as a copy; a real
    /// second copy is there in every sample.
    pub fn live_copies(&self) -> std::collections::BTreeMap<String, usize> {
        let mut least: Option<std::collections::BTreeMap<String, usize>> = None;
        for sample in 0..5 {
            if sample > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            let now: std::collections::BTreeMap<String, usize> = self
                .task_groups()
                .into_iter()
                .map(|(task, groups)| (task, groups.len()))
                .collect();
            least = Some(match least {
                None => now,
                Some(mut least) => {
                    for (task, n) in &mut least {
                        *n = (*n).min(now.get(task).copied().unwrap_or(0));
                    }
                    least
                }
            });
        }
        least.unwrap_or_default()
    }

    /// Process groups running tasks, by task name (one group per live copy of a task; see
    /// [`Berth::live_copies`] for checks).
    pub fn task_groups(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeSet<i32>> {
        self.task_processes()
            .into_iter()
            .map(|(t, pids)| {
                let groups = pids
                    .iter()
                    .filter_map(|p| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(*p))).ok())
                    .map(|g| g.as_raw())
                    .collect();
                (t, groups)
            })
            .collect()
    }
}

/// (pid, environment) of every process we can read.
fn processes() -> Vec<(i32, Vec<String>)> {
    let mut v = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let env = env
            .split(|b| *b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        v.push((pid, env));
    }
    v
}

/// Kills every process whose command line, working directory or sandbox lies under `dir`.
pub fn kill_under(dir: &Path) {
    let dir = dir.display().to_string();
    for _ in 0..3 {
        let mut found = false;
        for (pid, env) in processes() {
            if pid == std::process::id() as i32 {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let in_sandbox = env
                .iter()
                .any(|e| e.starts_with("MESOS_SANDBOX=") && e.contains(&dir));
            if cmdline.contains(&dir) || cwd.starts_with(&dir) || in_sandbox {
                found = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill9();
        kill_under(self.dir.path());
    }
}

/// Output as text for assertions.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// berth's own hello-world example package (`examples/hello-world`).
pub fn hello_world() -> PathBuf {
    repo().join("examples/hello-world")
}

/// The original hello-world package of the DC/OS SDK, read from `../shared` unchanged.
pub fn peer_helloworld() -> PathBuf {
    repo().join("../shared/peer-specs/helloworld")
}

/// An agents file of `count` agents (agent-0…) with 100 ports each from `port_base`, zones
/// a, b, c in turn.
pub fn agents_yaml_n(port_base: u16, count: usize) -> String {
    let mut s = String::from("agents:\n");
    for i in 0..count {
        let zone = ["a", "b", "c"][i % 3];
        let begin = port_base + (i as u16) * 100;
        s.push_str(&format!(
            "  - id: agent-{i}\n    zone: {zone}\n    cpus: 4\n    mem: 8192\n    disk: 65536\n    ports: [\"{begin}-{}\"]\n",
            begin + 99
        ));
    }
    s
}

impl Berth {
    /// A berth with `count` agents.
    pub fn with_agents(port_base: u16, count: usize) -> Self {
        let b = Self::new(port_base);
        std::fs::write(&b.agents, agents_yaml_n(port_base, count)).expect("agents file");
        b
    }

    /// Writes options JSON into the test directory and returns its path as a string.
    pub fn options(&self, json: &str) -> String {
        let p = self
            .dir
            .path()
            .join(format!("options-{}.json", self.runs + 1));
        std::fs::write(&p, json).expect("options");
        p.display().to_string()
    }

    /// The agent a task runs on (from its TaskInfo).
    pub fn agent_of(&self, pod: &str, task: &str) -> String {
        let (_, info) = self.get(&format!("/v1/pods/{pod}/info"));
        info.as_array()
            .into_iter()
            .flatten()
            .find(|i| i["info"]["name"] == task)
            .and_then(|i| i["info"]["slaveId"]["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    }

    /// The pid of the executor running `task`, from `GET /v1/agents`.
    pub fn executor_pid(&self, task: &str) -> Option<i32> {
        let (_, agents) = self.get("/v1/agents");
        agents.as_array().into_iter().flatten().find_map(|a| {
            a["executors"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|e| {
                    let runs = e["tasks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|t| t["name"] == task && t["state"] == "TASK_RUNNING");
                    if runs {
                        e["pid"].as_i64().map(|p| p as i32)
                    } else {
                        None
                    }
                })
        })
    }

    /// `kill -9` of every process of a task (its whole process group): the task crashes.
    pub fn kill_task(&self, task: &str) {
        let groups = self.task_groups();
        let set = groups
            .get(task)
            .unwrap_or_else(|| panic!("no process for {task}: {groups:?}"));
        for g in set {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*g),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// The status of a plan's step, by name.
    pub fn step(&self, plan: &str, step: &str) -> Option<String> {
        let (_, p) = self.get(&format!("/v1/plans/{plan}"));
        p["phases"].as_array().into_iter().flatten().find_map(|ph| {
            ph["steps"].as_array().into_iter().flatten().find_map(|s| {
                (s["name"] == step).then(|| s["status"].as_str().unwrap_or_default().to_owned())
            })
        })
    }

    /// The status of a plan.
    pub fn plan_status(&self, plan: &str) -> String {
        let (_, p) = self.get(&format!("/v1/plans/{plan}"));
        p["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The stdout of the current run of `task` (its sandbox's `stdout`).
    pub fn task_stdout(&self, task_id: &str) -> String {
        let data = self.data();
        let mut out = String::new();
        for agent in std::fs::read_dir(data.join("cluster/agents"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for ex in std::fs::read_dir(agent.path().join("executors"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = ex.path().join("tasks").join(task_id).join("stdout");
                if let Ok(t) = std::fs::read_to_string(p) {
                    out.push_str(&t);
                }
            }
        }
        out
    }
}

impl Berth {
    /// Waits for `berth run` to exit by itself (e.g. `--uninstall`), returning its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "berth run did not exit within {timeout:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of the running `berth run`, if any.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Runs `berth ARGS…` to its end (not against the API), with the environment given.
    pub fn run_berth(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(berth_bin())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("berth runs")
    }

    /// Runs another `berth run` on this data directory and agents (a fresh API port) to its
    /// end, with `extra` arguments before PATH — for starts that must fail.
    pub fn run_once(&self, path: &Path, extra: &[&str]) -> Output {
        let data = self.data().display().to_string();
        let agents = self.agents.display().to_string();
        let listen = format!("127.0.0.1:{}", free_port());
        let path = path.display().to_string();
        let mut args = vec![
            "run",
            "--data-dir",
            &data,
            "--agents",
            &agents,
            "--listen",
            &listen,
        ];
        args.extend_from_slice(extra);
        args.push(&path);
        self.run_berth(&args, &[])
    }

    /// Runs `berth janitor --name hello-world` on this data directory and agents.
    pub fn janitor(&self, extra: &[&str]) -> Output {
        let data = self.data().display().to_string();
        let agents = self.agents.display().to_string();
        let mut args = vec!["janitor", "--name", "hello-world", "--data-dir", &data];
        args.extend_from_slice(&["--agents", &agents]);
        args.extend_from_slice(extra);
        self.run_berth(&args, &[])
    }

    /// Waits until [`Berth::leftovers`] is empty; panics listing what is left.
    pub fn wait_no_leftovers(&self, role: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.leftovers(role);
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still left after {timeout:?}: {left:#?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How many reservations of `role` the local cluster's agents hold (their checkpointed
    /// resources in `cluster/state.json`; task and executor history holds none).
    pub fn reserved(&self, role: &str) -> usize {
        let state: Value = std::fs::read(self.data().join("cluster/state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        state["agents"]
            .as_object()
            .into_iter()
            .flat_map(|agents| agents.values())
            .map(|agent| count_role(&agent["checkpointed"], role))
            .sum()
    }

    /// The persistent volume directories on every agent.
    pub fn volumes(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for agent in std::fs::read_dir(self.data().join("cluster/agents"))
            .into_iter()
            .flatten()
            .flatten()
        {
            for vol in std::fs::read_dir(agent.path().join("volumes"))
                .into_iter()
                .flatten()
                .flatten()
            {
                v.push(vol.path());
            }
        }
        v.sort();
        v
    }

    /// What a service left on the local cluster: reservations of `role` in the cluster's
    /// state, persistent volume directories, and processes (executors, tasks) under the data
    /// directory other than `berth run` itself. Empty when everything is gone.
    pub fn leftovers(&self, role: &str) -> Vec<String> {
        let mut left = Vec::new();
        let reserved = self.reserved(role);
        if reserved > 0 {
            left.push(format!(
                "{reserved} reservation(s) of {role} in cluster/state.json"
            ));
        }
        for v in self.volumes() {
            left.push(format!("volume {}", v.display()));
        }
        let data = self.data();
        let me = self.pid();
        let dir = data.display().to_string();
        for (pid, env) in processes() {
            if Some(pid) == me || pid == std::process::id() as i32 {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let in_sandbox = env
                .iter()
                .any(|e| e.starts_with("MESOS_SANDBOX=") && e.contains(&dir));
            let is_run = cmdline.contains(" run ") || cmdline.contains(" janitor ");
            if (cmdline.contains(&dir) && !is_run) || in_sandbox {
                left.push(format!("process {pid}: {cmdline}"));
            }
        }
        left
    }
}

/// How many objects under `v` have `"role": role` (reservations name their role so).
fn count_role(v: &Value, role: &str) -> usize {
    match v {
        Value::Object(m) => {
            usize::from(m.get("role").and_then(Value::as_str) == Some(role))
                + m.values().map(|c| count_role(c, role)).sum::<usize>()
        }
        Value::Array(a) => a.iter().map(|c| count_role(c, role)).sum(),
        _ => 0,
    }
}

/// A throwaway certificate for 127.0.0.1 and its PKCS#8 key (PEM), made with `openssl`.
pub fn self_signed(dir: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (scripts/install-build-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read(&cert).expect("cert");
    let key = std::fs::read(&key).expect("key");
    (cert, pem, key)
}
