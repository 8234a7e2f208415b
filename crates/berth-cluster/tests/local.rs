//! Integration tests of the `local` cluster backend with real executor processes.
//!
//! This test binary is its own executor: invoked as `<binary> executor --dir DIR` it runs
//! `berth_cluster::local::executor::run`; invoked as `<binary> host DIR` it plays `berth run`
//! (a cluster in a separate process, for the kill -9 test); otherwise it runs the tests
//! below, several at a time, each with its own data directory. Every process a test starts is killed by pid at
//! the end of the test (executor sessions included).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_cluster::local::{
    AgentSpec, LocalCluster, LocalConfig, LocalControl, MountSpec, PortRange, executor,
    parse_agents,
};
use berth_cluster::{
    Call, Cluster, ClusterError, Event, EventStream, FrameworkInfo, ReconcileTask,
};
use berth_mesos::{
    AgentId, CheckCommand, CheckInfo, CommandInfo, CommandUri, DiskInfo, DurationInfo, Environment,
    ExecutorId, ExecutorInfo, ExecutorType, Filters, FrameworkId, HealthCheck, KillPolicy, Label,
    Labels, LabelsHash, LaunchGroupOp, Offer, Operation, Persistence, ReservationInfo,
    ReservationType, Resource, ResourcesOp, TaskGroupInfo, TaskId, TaskInfo, TaskState, TaskStatus,
    Variable, Volume, VolumeMode, VolumesOp,
};

const ROLE: &str = "test-role";
const PRINCIPAL: &str = "test-principal";
const T: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------- harness

fn agents() -> Vec<AgentSpec> {
    ["a", "b"]
        .iter()
        .enumerate()
        .map(|(i, z)| AgentSpec {
            id: format!("agent-{z}"),
            hostname: format!("host-{z}"),
            zone: Some((*z).to_owned()),
            region: "local".to_owned(),
            attributes: Vec::new(),
            cpus: 2.0,
            mem: 1024.0,
            disk: 1024.0,
            gpus: 0.0,
            ports: vec![PortRange {
                begin: 31000 + 100 * i as u64,
                end: 31099 + 100 * i as u64,
            }],
            mounts: vec![MountSpec {
                path: PathBuf::from("mounts/disk0"),
                size: 100.0,
                profile: None,
            }],
            reserved: Vec::new(),
        })
        .collect()
}

fn framework(id: Option<FrameworkId>) -> FrameworkInfo {
    FrameworkInfo {
        id,
        name: "test".to_owned(),
        user: String::new(),
        principal: PRINCIPAL.to_owned(),
        roles: vec![ROLE.to_owned()],
        failover_timeout: 1_209_600.0,
        checkpoint: true,
        webui_url: None,
    }
}

struct Harness {
    dir: tempfile::TempDir,
    cfg: LocalConfig,
    cluster: Option<LocalCluster>,
    control: LocalControl,
    rx: EventStream,
    fw: FrameworkId,
    buf: VecDeque<Event>,
    pids: Vec<i32>,
}

/// The configuration every test uses (short intervals).
fn test_config(dir: &Path, agents: Vec<AgentSpec>) -> LocalConfig {
    let mut cfg = LocalConfig::new(dir, std::env::current_exe().expect("test binary path"));
    // The tests run many clusters at once over the same agents: each keeps its own claims.
    cfg.port_claims_dir = Some(dir.join("port-claims"));
    cfg.agents = agents;
    cfg.allocation_interval = Duration::from_millis(200);
    cfg.update_retry_interval = Duration::from_secs(1);
    cfg.heartbeat_interval = Duration::from_secs(5);
    cfg.executor_resend_interval = Duration::from_millis(500);
    cfg.executor_orphan_timeout = Duration::from_secs(60);
    cfg.default_kill_grace = Duration::from_secs(1);
    cfg
}

impl Harness {
    fn new() -> Harness {
        Harness::with(
            tempfile::tempdir().expect("temp dir"),
            agents(),
            framework(None),
        )
    }

    fn with(dir: tempfile::TempDir, agents: Vec<AgentSpec>, fw: FrameworkInfo) -> Harness {
        Harness::with_config(dir, agents, fw, |_| {})
    }

    fn with_config(
        dir: tempfile::TempDir,
        agents: Vec<AgentSpec>,
        fw: FrameworkInfo,
        tweak: impl FnOnce(&mut LocalConfig),
    ) -> Harness {
        if std::env::var_os("BERTH_TEST_TRACE").is_some() {
            eprintln!("    data dir {}", dir.path().display());
        }
        let mut cfg = test_config(dir.path(), agents);
        tweak(&mut cfg);
        let mut cluster = LocalCluster::open(cfg.clone()).expect("open cluster");
        let control = cluster.control();
        let rx = cluster.subscribe(fw).expect("subscribe");
        let mut h = Harness {
            dir,
            cfg,
            cluster: Some(cluster),
            control,
            rx,
            fw: FrameworkId::default(),
            buf: VecDeque::new(),
            pids: Vec::new(),
        };
        h.fw = h.wait("SUBSCRIBED", T, |e| match e {
            Event::Subscribed { framework_id, .. } => Some(framework_id.clone()),
            _ => None,
        });
        h
    }

    fn cluster(&mut self) -> &mut LocalCluster {
        self.cluster.as_mut().expect("cluster open")
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        self.cluster().send(call)
    }

    fn poll(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            match e {
                Event::Offers { offers } => {
                    for o in offers {
                        self.buf.push_back(Event::Offers { offers: vec![o] });
                    }
                }
                Event::Heartbeat => {}
                e => self.buf.push_back(e),
            }
        }
    }

    fn try_wait<R>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&Event) -> Option<R>,
    ) -> Option<R> {
        let deadline = Instant::now() + timeout;
        loop {
            self.poll();
            if let Some((i, r)) = self
                .buf
                .iter()
                .enumerate()
                .find_map(|(i, e)| f(e).map(|r| (i, r)))
            {
                self.buf.remove(i);
                return Some(r);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait<R>(&mut self, what: &str, timeout: Duration, f: impl FnMut(&Event) -> Option<R>) -> R {
        match self.try_wait(timeout, f) {
            Some(r) => r,
            None => panic!("timed out waiting for {what}; events: {:#?}", self.buf),
        }
    }

    fn offer(&mut self, agent: &str) -> Offer {
        self.wait(&format!("an offer from {agent}"), T, |e| match e {
            Event::Offers { offers } if offers[0].agent_id.as_str() == agent => {
                Some(offers[0].clone())
            }
            _ => None,
        })
    }

    /// Waits for an offer from `agent` matching `pred`, declining the others from that
    /// agent (so that the agent is offered again).
    fn offer_where(&mut self, agent: &str, mut pred: impl FnMut(&Offer) -> bool) -> Offer {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let o = self.wait(
                &format!("a matching offer from {agent}"),
                left,
                |e| match e {
                    Event::Offers { offers } if offers[0].agent_id.as_str() == agent => {
                        Some(offers[0].clone())
                    }
                    _ => None,
                },
            );
            if pred(&o) {
                return o;
            }
            self.decline(&o, 0.0);
        }
    }

    fn no_offer_from(&mut self, agent: &str, d: Duration) {
        if let Some(o) = self.try_wait(d, |e| match e {
            Event::Offers { offers } if offers[0].agent_id.as_str() == agent => {
                Some(offers[0].clone())
            }
            _ => None,
        }) {
            panic!("unexpected offer from {agent}: {o:#?}");
        }
    }

    fn decline(&mut self, offer: &Offer, secs: f64) {
        self.send(Call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: Filters {
                refuse_seconds: secs,
            },
        })
        .expect("decline");
    }

    /// Declines every offer received so far (for `secs`).
    fn decline_all(&mut self, secs: f64) {
        self.poll();
        let offers: Vec<Offer> = self
            .buf
            .iter()
            .filter_map(|e| match e {
                Event::Offers { offers } => Some(offers[0].clone()),
                _ => None,
            })
            .collect();
        self.buf.retain(|e| !matches!(e, Event::Offers { .. }));
        for o in offers {
            self.decline(&o, secs);
        }
    }

    fn ack(&mut self, s: &TaskStatus) {
        if let Some(uuid) = &s.uuid {
            self.send(Call::Acknowledge {
                agent_id: s.agent_id.clone().expect("agent id"),
                task_id: s.task_id.clone(),
                uuid: uuid.clone(),
            })
            .expect("ack");
        }
    }

    /// Waits for an update of `task` matching `pred`, acknowledging every update of that
    /// task on the way (and the match).
    fn update(&mut self, task: &str, mut pred: impl FnMut(&TaskStatus) -> bool) -> TaskStatus {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = self.wait(&format!("an update of {task}"), left, |e| match e {
                Event::Update { status } if status.task_id.as_str() == task => Some(status.clone()),
                _ => None,
            });
            if std::env::var_os("BERTH_TEST_TRACE").is_some() {
                eprintln!(
                    "    update {} {} healthy={:?} check={:?} reason={:?} msg={:?}",
                    task,
                    s.state.as_str(),
                    s.healthy,
                    s.check_status.as_ref().and_then(|c| c.command),
                    s.reason,
                    s.message
                );
            }
            self.ack(&s);
            if pred(&s) {
                return s;
            }
        }
    }

    fn state(&mut self, task: &str, state: TaskState) -> TaskStatus {
        self.update(task, |s| s.state == state)
    }

    fn accept(&mut self, offer: &Offer, ops: Vec<Operation>) -> Result<(), ClusterError> {
        self.send(Call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: ops,
            filters: Filters {
                refuse_seconds: 1.0,
            },
        })
    }

    fn executor_pid(&self, exec: &str) -> i32 {
        self.control
            .agents()
            .iter()
            .flat_map(|a| a.executors.iter())
            .find(|e| e.executor_id == exec)
            .and_then(|e| e.pid)
            .unwrap_or_else(|| panic!("executor {exec} has no pid"))
    }

    fn sandbox(&self, agent: &str, exec: &str, task: &str) -> PathBuf {
        self.dir
            .path()
            .join("cluster/agents")
            .join(agent)
            .join("executors")
            .join(exec)
            .join("tasks")
            .join(task)
    }

    fn remember_pids(&mut self) {
        let pids: Vec<i32> = self
            .control
            .agents()
            .iter()
            .flat_map(|a| a.executors.iter().filter_map(|e| e.pid))
            .collect();
        self.pids.extend(pids);
    }

    /// Drops the cluster (as if `berth run` died) and opens it again.
    fn reopen(&mut self) {
        self.remember_pids();
        self.cluster = None;
        let cluster = LocalCluster::open(self.cfg.clone()).expect("reopen");
        self.control = cluster.control();
        self.cluster = Some(cluster);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.remember_pids();
        self.cluster = None;
        for pid in self.pids.clone() {
            kill_session(pid);
        }
    }
}

fn stat_fields(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.first()?.chars().next()?, f.get(3)?.parse().ok()?))
}

/// SIGKILLs every process of session `sid` (an executor and what it started).
fn kill_session(sid: i32) {
    if sid <= 1 {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in entries.flatten() {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
            && stat_fields(pid).is_some_and(|(_, s)| s == sid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|(st, _)| st != 'Z' && st != 'X')
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> i32 {
    let mut pid = 0;
    wait_until(&format!("{} exists", path.display()), T, || {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(|p| pid = p)
            .is_some()
    });
    pid
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------- builders

fn reserved(mut r: Resource, id: &str) -> Resource {
    r.reservations.push(ReservationInfo {
        kind: ReservationType::Dynamic,
        role: ROLE.into(),
        principal: Some(PRINCIPAL.into()),
        labels: Some(LabelsHash {
            labels: vec![Label {
                key: "resource_id".into(),
                value: id.into(),
            }],
        }),
    });
    r
}

fn volume(size: f64, id: &str, pid: &str, path: &str) -> Resource {
    let mut v = reserved(Resource::scalar("disk", size), id);
    v.disk = Some(Box::new(DiskInfo {
        persistence: Some(Persistence {
            id: pid.to_owned(),
            principal: Some(PRINCIPAL.to_owned()),
        }),
        volume: Some(Volume {
            container_path: path.to_owned(),
            mode: VolumeMode::Rw,
        }),
        source: None,
    }));
    v
}

fn reserve(rs: Vec<Resource>) -> Operation {
    Operation::Reserve {
        reserve: ResourcesOp { resources: rs },
    }
}

fn unreserve(rs: Vec<Resource>) -> Operation {
    Operation::Unreserve {
        unreserve: ResourcesOp { resources: rs },
    }
}

fn create(vs: Vec<Resource>) -> Operation {
    Operation::Create {
        create: VolumesOp { volumes: vs },
    }
}

fn destroy(vs: Vec<Resource>) -> Operation {
    Operation::Destroy {
        destroy: VolumesOp { volumes: vs },
    }
}

fn command(cmd: &str, env: &[(&str, &str)]) -> CommandInfo {
    CommandInfo {
        shell: true,
        value: cmd.to_owned(),
        uris: Vec::new(),
        environment: Some(Environment {
            variables: env
                .iter()
                .map(|(k, v)| Variable {
                    name: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }),
        user: None,
    }
}

fn task(id: &str, agent: &str, cmd: &str, resources: Vec<Resource>) -> TaskInfo {
    TaskInfo {
        name: id.to_owned(),
        task_id: TaskId::new(id),
        agent_id: AgentId::new(agent),
        resources,
        executor: None,
        command: Some(Arc::new(command(cmd, &[("TASK_NAME", id)]))),
        health_check: None,
        check: None,
        kill_policy: None,
        labels: Labels::default(),
        discovery: None,
        container: None,
    }
}

fn launch(exec: &str, exec_resources: Vec<Resource>, tasks: Vec<TaskInfo>) -> Operation {
    Operation::LaunchGroup {
        launch_group: LaunchGroupOp {
            executor: std::sync::Arc::new(ExecutorInfo {
                kind: ExecutorType::Default,
                executor_id: ExecutorId::new(exec),
                framework_id: None,
                name: Some(exec.to_owned()),
                resources: exec_resources,
                container: None,
            }),
            task_group: TaskGroupInfo { tasks },
        },
    }
}

fn small() -> Vec<Resource> {
    vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)]
}

/// Launches `sh -c cmd` as `task` under a new executor `exec` on `agent`, with unreserved
/// resources, and waits until it runs.
fn run_simple(h: &mut Harness, agent: &str, exec: &str, id: &str, cmd: &str) -> TaskStatus {
    let o = h.offer(agent);
    h.accept(
        &o,
        vec![launch(exec, small(), vec![task(id, agent, cmd, small())])],
    )
    .expect("accept");
    h.state(id, TaskState::TaskRunning)
}

fn has_volume(o: &Offer, pid: &str) -> bool {
    o.resources.iter().any(|r| r.persistence_id() == Some(pid))
}

fn has_resource_id(o: &Offer, id: &str) -> bool {
    o.resources.iter().any(|r| r.resource_id() == Some(id))
}

// ---------------------------------------------------------------------------- tests

/// RESERVE + CREATE + LAUNCH_GROUP; the task writes to its volume; STARTING and RUNNING
/// are acknowledged; the offer names the executor; a kill with grace lets the SIGTERM trap
/// write "all clean"; the freed reservations and volume come back in an offer; the idle
/// executor exits (Failure with status 0).
fn launch_volume_kill_with_grace() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    assert_eq!(o.hostname, "host-a");
    assert_eq!(o.zone(), Some("a"));
    assert_eq!(o.region(), Some("local"));
    assert!(
        o.resources
            .iter()
            .any(|r| r.disk.as_ref().and_then(|d| d.source.as_ref()).is_some())
    );
    let cpus = reserved(Resource::scalar("cpus", 0.5), "r-cpus");
    let mem = reserved(Resource::scalar("mem", 64.0), "r-mem");
    let disk = reserved(Resource::scalar("disk", 16.0), "r-disk");
    let vol = volume(16.0, "r-disk", "vol-1", "data");
    let mut t = task(
        "t1",
        "agent-a",
        "echo \"$MESOS_TASK_ID $TASK_NAME\" > data/hello; echo \"sandbox=$MESOS_SANDBOX\"; \
         trap 'echo all clean; exit 0' TERM; while true; do sleep 0.1; done",
        vec![cpus.clone(), mem.clone(), vol.clone()],
    );
    t.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo {
            nanoseconds: 5_000_000_000,
        }),
    });
    h.accept(
        &o,
        vec![
            reserve(vec![cpus, mem, disk]),
            create(vec![vol]),
            launch("e1", small(), vec![t]),
        ],
    )
    .expect("accept");
    let starting = h.state("t1", TaskState::TaskStarting);
    assert_eq!(
        starting.executor_id.as_ref().map(ExecutorId::as_str),
        Some("e1")
    );
    assert_eq!(
        starting.agent_id.as_ref().map(AgentId::as_str),
        Some("agent-a")
    );
    assert!(starting.uuid.is_some());
    h.state("t1", TaskState::TaskRunning);
    let views = h.control.agents();
    let a = views.iter().find(|a| a.id == "agent-a").expect("agent-a");
    let v = a
        .volumes
        .iter()
        .find(|v| v.persistence_id == "vol-1")
        .expect("volume listed");
    assert_eq!(v.kind, "ROOT");
    assert!((a.reserved.cpus - 0.5).abs() < 1e-9);
    let hello = v.path.join("hello");
    wait_until("the task wrote into its volume", T, || {
        read(&hello).contains("t1 t1")
    });
    let sandbox = h.sandbox("agent-a", "e1", "t1");
    wait_until("stdout names the sandbox", T, || {
        read(&sandbox.join("stdout")).contains(&format!("sandbox={}", sandbox.display()))
    });
    let o2 = h.offer("agent-a");
    assert_eq!(o2.executor_ids, vec![ExecutorId::new("e1")]);
    assert!(
        !has_resource_id(&o2, "r-cpus"),
        "cpus in use must not be offered"
    );
    h.decline(&o2, 3600.0);
    h.send(Call::Kill {
        task_id: TaskId::new("t1"),
        agent_id: None,
        grace_period_secs: None,
    })
    .expect("kill");
    let killed = h.state("t1", TaskState::TaskKilled);
    assert!(
        killed
            .message
            .unwrap_or_default()
            .contains("killed on request")
    );
    assert!(read(&sandbox.join("stdout")).contains("all clean"));
    // The freed reservations and the volume are offered again right away.
    let o3 = h.offer_where("agent-a", |o| has_volume(o, "vol-1"));
    assert!(has_resource_id(&o3, "r-cpus") && has_resource_id(&o3, "r-mem"));
    let status = h.wait("executor failure", T, |e| match e {
        Event::Failure {
            executor_id: Some(x),
            status,
            ..
        } if x.as_str() == "e1" => Some(*status),
        _ => None,
    });
    assert_eq!(status, Some(0));
}

/// The same executor id after its process exited gets a new process (a new run).
fn relaunch_under_same_executor_id() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    h.accept(
        &o,
        vec![launch(
            "e2",
            small(),
            vec![task("first", "agent-a", "exit 0", small())],
        )],
    )
    .expect("accept");
    h.state("first", TaskState::TaskFinished);
    h.wait("executor exit", T, |e| {
        matches!(e, Event::Failure { executor_id: Some(x), .. } if x.as_str() == "e2").then_some(())
    });
    let o = h.offer_where("agent-a", |o| o.executor_ids.is_empty());
    h.accept(
        &o,
        vec![launch(
            "e2",
            small(),
            vec![task("second", "agent-a", "echo again; sleep 30", small())],
        )],
    )
    .expect("accept");
    h.state("second", TaskState::TaskRunning);
    let sandbox = h.sandbox("agent-a", "e2", "second");
    wait_until("second run writes", T, || {
        read(&sandbox.join("stdout")).contains("again")
    });
    // Hand a second task to the running executor.
    let o = h.offer_where("agent-a", |o| o.executor_ids == vec![ExecutorId::new("e2")]);
    h.accept(
        &o,
        vec![launch(
            "e2",
            small(),
            vec![task("third", "agent-a", "sleep 30", small())],
        )],
    )
    .expect("accept");
    h.state("third", TaskState::TaskRunning);
    let pid = h.executor_pid("e2");
    assert_eq!(
        h.control
            .agents()
            .iter()
            .flat_map(|a| a.executors.iter())
            .filter(|e| e.executor_id == "e2")
            .count(),
        1
    );
    assert!(alive(pid));
}

/// A failing health check kills the task: TASK_FAILED, healthy=false, "health check failed".
fn health_check_failure() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let mut t = task("sick", "agent-a", "echo $$ > pid; exec sleep 30", small());
    t.health_check = Some(std::sync::Arc::new(HealthCheck {
        kind: "COMMAND".to_owned(),
        command: command("test -f healthy", &[]),
        delay_seconds: 0.0,
        interval_seconds: 0.2,
        timeout_seconds: 2.0,
        consecutive_failures: 3,
        grace_period_seconds: 0.0,
    }));
    h.accept(&o, vec![launch("e-sick", small(), vec![t])])
        .expect("accept");
    h.state("sick", TaskState::TaskRunning);
    let pid = read_pid(&h.sandbox("agent-a", "e-sick", "sick").join("pid"));
    let unhealthy = h.update("sick", |s| s.healthy == Some(false));
    assert_eq!(unhealthy.state, TaskState::TaskRunning);
    let failed = h.state("sick", TaskState::TaskFailed);
    assert_eq!(failed.healthy, Some(false));
    assert_eq!(failed.message.as_deref(), Some("health check failed"));
    assert!(!alive(pid), "the unhealthy task's process must be gone");
}

/// Readiness exit codes are carried in TASK_RUNNING updates each time they change; a
/// passing health check reports healthy=true.
fn readiness_and_health_pass() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let mut t = task(
        "ready",
        "agent-a",
        "sleep 0.8; touch ready; sleep 30",
        small(),
    );
    t.check = Some(std::sync::Arc::new(CheckInfo {
        kind: "COMMAND".to_owned(),
        command: CheckCommand {
            command: command("test -f ready", &[]),
        },
        delay_seconds: 0.0,
        interval_seconds: 0.2,
        timeout_seconds: 2.0,
    }));
    t.health_check = Some(std::sync::Arc::new(HealthCheck {
        kind: "COMMAND".to_owned(),
        command: command("test -n \"$TASK_NAME\"", &[]),
        delay_seconds: 0.0,
        interval_seconds: 0.3,
        timeout_seconds: 2.0,
        consecutive_failures: 3,
        grace_period_seconds: 10.0,
    }));
    h.accept(&o, vec![launch("e-ready", small(), vec![t])])
        .expect("accept");
    let code = |s: &TaskStatus| {
        s.check_status
            .as_ref()
            .and_then(|c| c.command)
            .and_then(|c| c.exit_code)
    };
    let not_ready = h.update("ready", |s| code(s).is_some());
    assert_eq!(code(&not_ready), Some(1));
    assert!(!not_ready.readiness_passed());
    let ready = h.update("ready", |s| code(s) == Some(0));
    assert!(ready.readiness_passed());
    assert_eq!(ready.state, TaskState::TaskRunning);
    if ready.healthy != Some(true) {
        h.update("ready", |s| s.healthy == Some(true));
    }
    h.send(Call::Kill {
        task_id: TaskId::new("ready"),
        agent_id: Some(AgentId::new("agent-a")),
        grace_period_secs: Some(0.5),
    })
    .expect("kill");
    let killed = h.state("ready", TaskState::TaskKilled);
    assert!(
        killed.readiness_passed(),
        "later updates carry the latest check result"
    );
}

/// Exit 0 → FINISHED, exit 3 → FAILED naming the status; the freed resources are offered
/// again right away (timings printed).
fn exit_status_and_reoffer() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let res = vec![reserved(Resource::scalar("cpus", 0.25), "x-cpus")];
    h.accept(
        &o,
        vec![
            reserve(res.clone()),
            launch(
                "e-exit",
                small(),
                vec![
                    task("ok", "agent-a", "exit 0", small()),
                    task(
                        "bad",
                        "agent-a",
                        "sleep 2; date +%s.%N > exit_time; exit 3",
                        res,
                    ),
                ],
            ),
        ],
    )
    .expect("accept");
    h.update("bad", |s| s.state == TaskState::TaskRunning);
    let fin = h.state("ok", TaskState::TaskFinished);
    assert!(fin.message.unwrap_or_default().contains("status 0"));
    // Keep the rest of agent-a quiet so the next offer is the freed reservation.
    if let Some(o) = h.try_wait(Duration::from_millis(1500), |e| match e {
        Event::Offers { offers } if offers[0].agent_id.as_str() == "agent-a" => {
            Some(offers[0].clone())
        }
        _ => None,
    }) {
        h.decline(&o, 3600.0);
    }
    let failed = h.update("bad", |s| s.state == TaskState::TaskFailed);
    let t_failed = Instant::now();
    let failed_wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("status 3"),
        "{failed:?}"
    );
    assert_eq!(
        failed.reason.as_deref(),
        Some("REASON_COMMAND_EXECUTOR_FAILED")
    );
    h.offer_where("agent-a", |o| has_resource_id(o, "x-cpus"));
    let t_offer = Instant::now();
    let exited: f64 = read(&h.sandbox("agent-a", "e-exit", "bad").join("exit_time"))
        .trim()
        .parse()
        .expect("exit time");
    eprintln!(
        "    timing: task exit → TASK_FAILED event {:.1} ms; TASK_FAILED → offer of its resources {:.1} ms",
        (failed_wall - exited) * 1000.0,
        t_offer.duration_since(t_failed).as_secs_f64() * 1000.0
    );
    assert!(t_offer.duration_since(t_failed) < Duration::from_millis(500));
}

/// Explicit reconciliation answers known tasks (no uuid, REASON_RECONCILIATION) and
/// TASK_LOST for unknown ones; implicit answers every live task; unknown kills give LOST.
fn reconcile_explicit_and_implicit() {
    let mut h = Harness::new();
    run_simple(&mut h, "agent-a", "e-rec", "rec", "sleep 30");
    h.send(Call::Reconcile {
        tasks: vec![
            ReconcileTask {
                task_id: TaskId::new("rec"),
                agent_id: None,
            },
            ReconcileTask {
                task_id: TaskId::new("nope"),
                agent_id: None,
            },
        ],
    })
    .expect("reconcile");
    let known = h.wait("reconcile of rec", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "rec" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(known.state, TaskState::TaskRunning);
    assert_eq!(known.uuid, None);
    assert_eq!(known.reason.as_deref(), Some("REASON_RECONCILIATION"));
    let unknown = h.wait("reconcile of nope", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "nope" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(unknown.state, TaskState::TaskLost);
    h.send(Call::Reconcile { tasks: vec![] }).expect("implicit");
    let implicit = h.wait("implicit reconcile", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "rec" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(implicit.state, TaskState::TaskRunning);
    h.send(Call::Kill {
        task_id: TaskId::new("ghost"),
        agent_id: None,
        grace_period_secs: None,
    })
    .expect("kill unknown");
    let lost = h.wait("LOST for unknown kill", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "ghost" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(lost.state, TaskState::TaskLost);
}

/// Declined resources come back after refuse_seconds; suppress stops offers; revive brings
/// them back at once.
fn decline_filters_suppress_revive() {
    let mut h = Harness::new();
    let a = h.offer("agent-a");
    let b = h.offer("agent-b");
    let t0 = Instant::now();
    h.decline(&a, 1.2);
    h.decline(&b, 3600.0);
    h.no_offer_from("agent-a", Duration::from_millis(900));
    h.offer("agent-a");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1100) && waited < Duration::from_millis(2500),
        "{waited:?}"
    );
    h.decline_all(0.0);
    h.send(Call::Suppress).expect("suppress");
    std::thread::sleep(Duration::from_millis(100));
    h.decline_all(0.0);
    h.no_offer_from("agent-a", Duration::from_millis(800));
    h.no_offer_from("agent-b", Duration::from_millis(10));
    let t1 = Instant::now();
    h.send(Call::Revive).expect("revive");
    h.offer("agent-b");
    assert!(
        t1.elapsed() < Duration::from_millis(300),
        "revive must offer at once"
    );
}

/// kill -9 of the executor: its task's process group is killed, TASK_FAILED with
/// REASON_EXECUTOR_TERMINATED, and a Failure with the signal status.
fn executor_kill9() {
    let mut h = Harness::new();
    run_simple(
        &mut h,
        "agent-a",
        "e-k9",
        "k9",
        "echo $$ > pid; exec sleep 30",
    );
    let task_pid = read_pid(&h.sandbox("agent-a", "e-k9", "k9").join("pid"));
    let exec_pid = h.executor_pid("e-k9");
    assert!(alive(task_pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(exec_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 executor");
    let failed = h.state("k9", TaskState::TaskFailed);
    assert_eq!(failed.reason.as_deref(), Some("REASON_EXECUTOR_TERMINATED"));
    let status = h.wait("executor Failure", T, |e| match e {
        Event::Failure {
            executor_id: Some(x),
            status,
            ..
        } if x.as_str() == "e-k9" => Some(*status),
        _ => None,
    });
    assert_eq!(status, Some(9));
    wait_until("the orphaned task is killed", T, || !alive(task_pid));
}

/// Dropping the cluster (berth run dies) leaves executor and task running; reopening adopts
/// them, re-delivers the unacknowledged update with its uuid, and kills still work. An
/// unacknowledged update is also re-sent by the retry timer.
fn reopen_adopts_and_redelivers() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let vol_res = reserved(Resource::scalar("disk", 8.0), "ro-disk");
    let vol = volume(8.0, "ro-disk", "vol-r", "data");
    h.accept(
        &o,
        vec![
            reserve(vec![vol_res]),
            create(vec![vol.clone()]),
            launch(
                "e-re",
                small(),
                vec![task("re", "agent-a", "echo $$ > pid; exec sleep 30", {
                    let mut r = small();
                    r.push(vol);
                    r
                })],
            ),
        ],
    )
    .expect("accept");
    // STARTING is not acknowledged: the retry timer sends it again with the same uuid.
    let first = h.wait("STARTING", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "re" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(first.state, TaskState::TaskStarting);
    let again = h.wait("STARTING re-sent", Duration::from_secs(3), |e| match e {
        Event::Update { status } if status.task_id.as_str() == "re" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(again.uuid, first.uuid);
    h.ack(&again);
    let running = h.wait("RUNNING", T, |e| match e {
        Event::Update { status }
            if status.task_id.as_str() == "re" && status.state == TaskState::TaskRunning =>
        {
            Some(status.clone())
        }
        _ => None,
    });
    let task_pid = read_pid(&h.sandbox("agent-a", "e-re", "re").join("pid"));
    let exec_pid = h.executor_pid("e-re");
    // berth run "dies" with RUNNING unacknowledged.
    h.reopen();
    assert!(
        alive(task_pid) && alive(exec_pid),
        "executor and task survive"
    );
    let fw = h.fw.clone();
    h.rx = h
        .cluster()
        .subscribe(framework(Some(fw.clone())))
        .expect("resubscribe");
    h.buf.clear();
    let id = h.wait("SUBSCRIBED", T, |e| match e {
        Event::Subscribed { framework_id, .. } => Some(framework_id.clone()),
        _ => None,
    });
    assert_eq!(id, fw);
    let redelivered = h.wait("RUNNING re-delivered", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "re" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(redelivered.state, TaskState::TaskRunning);
    assert_eq!(redelivered.uuid, running.uuid);
    h.ack(&redelivered);
    let o = h.offer_where("agent-a", |o| {
        o.executor_ids == vec![ExecutorId::new("e-re")]
    });
    assert!(!has_volume(&o, "vol-r"), "the volume is in use");
    h.decline(&o, 3600.0);
    assert_eq!(h.executor_pid("e-re"), exec_pid);
    h.send(Call::Kill {
        task_id: TaskId::new("re"),
        agent_id: None,
        grace_period_secs: Some(0.2),
    })
    .expect("kill");
    h.state("re", TaskState::TaskKilled);
    assert!(!alive(task_pid));
    h.offer_where("agent-a", |o| has_volume(o, "vol-r"));
}

/// stop_agent: TASK_UNREACHABLE, processes gone, no offers; start_agent: TASK_GONE and the
/// reservations and volume are offered again; drain_agent: TASK_GONE_BY_OPERATOR and never
/// offered again; unknown agents are named.
fn stop_start_drain_agent() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let cpus = reserved(Resource::scalar("cpus", 0.2), "s-cpus");
    let disk = reserved(Resource::scalar("disk", 8.0), "s-disk");
    let vol = volume(8.0, "s-disk", "vol-s", "data");
    h.accept(
        &o,
        vec![
            reserve(vec![cpus.clone(), disk]),
            create(vec![vol.clone()]),
            launch(
                "e-s",
                small(),
                vec![task(
                    "s",
                    "agent-a",
                    "echo $$ > pid; echo kept > data/f; exec sleep 30",
                    vec![cpus, vol],
                )],
            ),
        ],
    )
    .expect("accept");
    h.state("s", TaskState::TaskRunning);
    let task_pid = read_pid(&h.sandbox("agent-a", "e-s", "s").join("pid"));
    let exec_pid = h.executor_pid("e-s");
    h.decline_all(3600.0);
    h.send(Call::Revive).expect("revive");
    let outstanding = h.offer("agent-a");
    h.control.stop_agent("agent-a").expect("stop");
    let rescinded = h.wait("RESCIND", T, |e| match e {
        Event::Rescind { offer_id } => Some(offer_id.clone()),
        _ => None,
    });
    assert_eq!(rescinded, outstanding.id);
    let e = h.accept(&outstanding, vec![]).expect_err("rescinded offer");
    assert!(e.to_string().contains("not outstanding"), "{e}");
    let un = h.state("s", TaskState::TaskUnreachable);
    assert!(un.uuid.is_some());
    assert!(
        !alive(task_pid) && !alive(exec_pid),
        "stop_agent returns once they are gone"
    );
    let view = h.control.agents();
    assert_eq!(view[0].state, berth_cluster::local::AgentState::Down);
    h.send(Call::Revive).expect("revive");
    h.no_offer_from("agent-a", Duration::from_millis(600));
    h.control.start_agent("agent-a").expect("start");
    let gone = h.state("s", TaskState::TaskGone);
    assert_eq!(gone.reason.as_deref(), Some("REASON_AGENT_RESTARTED"));
    let o = h.offer_where("agent-a", |o| {
        has_volume(o, "vol-s") && has_resource_id(o, "s-cpus")
    });
    assert!(o.executor_ids.is_empty());
    let vpath = h.control.agents()[0].volumes[0].path.clone();
    assert_eq!(
        read(&vpath.join("f")).trim(),
        "kept",
        "volume data survives"
    );
    // Drain agent-b with a task on it.
    h.decline_all(3600.0);
    h.send(Call::Revive).expect("revive");
    run_simple(
        &mut h,
        "agent-b",
        "e-d",
        "d",
        "echo $$ > pid; exec sleep 30",
    );
    let dpid = read_pid(&h.sandbox("agent-b", "e-d", "d").join("pid"));
    h.control.drain_agent("agent-b").expect("drain");
    h.state("d", TaskState::TaskGoneByOperator);
    assert!(!alive(dpid));
    h.send(Call::Revive).expect("revive");
    h.no_offer_from("agent-b", Duration::from_millis(600));
    let e = h
        .control
        .start_agent("agent-b")
        .expect_err("drained agents never come back");
    assert!(e.to_string().contains("drained"), "{e}");
    let e = h.control.stop_agent("agent-x").expect_err("unknown agent");
    assert_eq!(
        e.to_string(),
        "unknown agent `agent-x`; known agents: agent-a, agent-b"
    );
}

/// UNRESERVE refuses a reservation whose volume exists; DESTROY + UNRESERVE removes the
/// volume directory and returns the resources unreserved.
fn destroy_unreserve_removes_volume() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let mount = o
        .resources
        .iter()
        .find(|r| r.disk.as_ref().and_then(|d| d.source.as_ref()).is_some())
        .cloned()
        .expect("a MOUNT disk is offered");
    let mut mount_res = mount.clone();
    mount_res.reservations = reserved(Resource::scalar("disk", 1.0), "m-disk").reservations;
    let mut mount_vol = mount_res.clone();
    if let Some(d) = &mut mount_vol.disk {
        d.persistence = Some(Persistence {
            id: "vol-m".to_owned(),
            principal: Some(PRINCIPAL.to_owned()),
        });
        d.volume = Some(Volume {
            container_path: "mnt".to_owned(),
            mode: VolumeMode::Rw,
        });
    }
    let disk = reserved(Resource::scalar("disk", 10.0), "d-disk");
    let vol = volume(10.0, "d-disk", "vol-d", "data");
    h.accept(
        &o,
        vec![
            reserve(vec![disk.clone(), mount_res.clone()]),
            create(vec![vol.clone(), mount_vol.clone()]),
        ],
    )
    .expect("accept");
    let views = h.control.agents();
    let paths: Vec<(String, PathBuf)> = views[0]
        .volumes
        .iter()
        .map(|v| (v.kind.clone(), v.path.clone()))
        .collect();
    assert_eq!(paths.len(), 2);
    for (_, p) in &paths {
        assert!(p.is_dir(), "{} exists", p.display());
    }
    assert!(paths.iter().any(|(k, _)| k == "MOUNT"));
    let o = h.offer_where("agent-a", |o| {
        has_volume(o, "vol-d") && has_volume(o, "vol-m")
    });
    let e = h
        .accept(&o, vec![unreserve(vec![disk.clone()])])
        .expect_err("volume exists");
    assert!(e.to_string().contains("DESTROY"), "{e}");
    let o = h.offer_where("agent-a", |o| has_volume(o, "vol-d"));
    h.accept(
        &o,
        vec![
            destroy(vec![vol, mount_vol]),
            unreserve(vec![disk, mount_res]),
        ],
    )
    .expect("destroy + unreserve");
    for (_, p) in &paths {
        assert!(!p.exists(), "{} is removed", p.display());
    }
    let o = h.offer("agent-a");
    assert!(
        o.resources.iter().all(|r| r.reservations.is_empty()),
        "{o:#?}"
    );
    assert!(h.control.agents()[0].volumes.is_empty());
}

/// A `kill -9` between the commit of a DESTROY and the removal of the volume's directory
/// leaves the directory behind; the next start removes it and keeps the live volumes.
fn reopen_removes_directories_of_destroyed_volumes() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let disk = reserved(Resource::scalar("disk", 10.0), "keep-disk");
    let vol = volume(10.0, "keep-disk", "vol-keep", "data");
    h.accept(&o, vec![reserve(vec![disk]), create(vec![vol])])
        .expect("accept");
    let live = h.control.agents()[0].volumes[0].path.clone();
    std::fs::write(live.join("data"), "kept").expect("write the live volume");
    let agent_dir = h.dir.path().join("cluster/agents/agent-a");
    let stale = [
        agent_dir.join("volumes/vol-gone"),
        agent_dir.join("mounts/disk0/vol-gone-too"),
    ];
    for p in &stale {
        std::fs::create_dir_all(p).expect("make a stale volume directory");
        std::fs::write(p.join("old"), "old data").expect("write it");
    }
    h.reopen();
    for p in &stale {
        assert!(
            !p.exists(),
            "{} is still there after the start",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(live.join("data")).expect("the live volume"),
        "kept"
    );
}

/// Teardown kills the framework's tasks; re-subscribing with its id gets "Framework has been
/// removed".
fn teardown_then_removed() {
    let mut h = Harness::new();
    run_simple(
        &mut h,
        "agent-a",
        "e-td",
        "td",
        "echo $$ > pid; exec sleep 30",
    );
    let pid = read_pid(&h.sandbox("agent-a", "e-td", "td").join("pid"));
    let exec_pid = h.executor_pid("e-td");
    h.send(Call::Teardown).expect("teardown");
    wait_until("teardown kills the task and executor", T, || {
        !alive(pid) && !alive(exec_pid)
    });
    let fw = h.fw.clone();
    let mut rx = h
        .cluster()
        .subscribe(framework(Some(fw)))
        .expect("subscribe");
    let deadline = Instant::now() + T;
    let ev = loop {
        if let Ok(e) = rx.try_recv() {
            break e;
        }
        assert!(Instant::now() < deadline, "no event");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        ev,
        Event::Error {
            message: "Framework has been removed".to_owned()
        }
    );
    let mut rx = h
        .cluster()
        .subscribe(framework(None))
        .expect("subscribe anew");
    std::thread::sleep(Duration::from_millis(50));
    match rx.try_recv() {
        Ok(Event::Subscribed { framework_id, .. }) => assert_ne!(framework_id, h.fw),
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
}

/// ACCEPT validation: unknown offers and operations that do not fit are refused clearly;
/// the refused launch is reported TASK_DROPPED.
fn accept_validation() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let e = h
        .send(Call::Accept {
            offer_ids: vec![berth_mesos::OfferId::new("no-such-offer")],
            operations: vec![],
            filters: Filters {
                refuse_seconds: 1.0,
            },
        })
        .expect_err("unknown offer");
    assert!(matches!(e, ClusterError::InvalidCall(_)), "{e}");
    assert!(e.to_string().contains("no-such-offer"), "{e}");
    let e = h
        .accept(
            &o,
            vec![launch(
                "e-big",
                small(),
                vec![task(
                    "big",
                    "agent-a",
                    "true",
                    vec![Resource::scalar("cpus", 64.0)],
                )],
            )],
        )
        .expect_err("too big");
    assert!(e.to_string().contains("task big: not in the offer"), "{e}");
    let dropped = h.wait("TASK_DROPPED", T, |ev| match ev {
        Event::Update { status } if status.task_id.as_str() == "big" => Some(status.clone()),
        _ => None,
    });
    assert_eq!(dropped.state, TaskState::TaskDropped);
    let e = h.accept(&o, vec![]).expect_err("offer already used");
    assert!(e.to_string().contains("not outstanding"), "{e}");
    let o = h.offer("agent-a");
    let mut wrong_role = reserved(Resource::scalar("cpus", 0.1), "w");
    wrong_role.reservations[0].role = "other".into();
    let e = h
        .accept(&o, vec![reserve(vec![wrong_role])])
        .expect_err("foreign role");
    assert!(
        e.to_string().contains("not one of the framework's roles"),
        "{e}"
    );
}

/// HTTP fetch of a config template from a scheduler-like server, rendered with the task
/// environment into its destination; a failing fetch names the URI.
fn fetch_and_render_template() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("addr").port();
    let served = Arc::new(Mutex::new(0usize));
    let count = served.clone();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 2048];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let (status, body) =
                if req.starts_with("GET /v1/artifacts/template/cfg-1/hello/server/app ") {
                    (
                        "200 OK",
                        "port={{PORT_API}}\n{{#TLS}}tls\n{{/TLS}}name={{TASK_NAME}}\n",
                    )
                } else {
                    ("404 Not Found", "no such artifact")
                };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            *count
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        }
    });
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let url = format!("http://127.0.0.1:{port}/v1/artifacts/template/cfg-1/hello/server/app");
    let mut t = task("tpl", "agent-a", "cp conf/app.conf rendered.txt", small());
    t.command = Some(Arc::new(CommandInfo {
        uris: vec![CommandUri {
            value: url,
            executable: false,
            extract: false,
            output_file: Some("config-templates/app".to_owned()),
        }],
        ..command(
            "cp conf/app.conf rendered.txt",
            &[
                ("TASK_NAME", "hello-0-server"),
                ("PORT_API", "31005"),
                ("TLS", "false"),
                ("CONFIG_TEMPLATE_APP", "config-templates/app,conf/app.conf"),
            ],
        )
    }));
    let mut bad = task("bad-uri", "agent-a", "true", small());
    if let Some(c) = &mut bad.command {
        Arc::make_mut(c).uris = vec![CommandUri {
            value: format!("http://127.0.0.1:{port}/missing/file"),
            executable: false,
            extract: false,
            output_file: None,
        }];
    }
    h.accept(&o, vec![launch("e-tpl", small(), vec![t, bad])])
        .expect("accept");
    h.state("tpl", TaskState::TaskFinished);
    let rendered = read(&h.sandbox("agent-a", "e-tpl", "tpl").join("rendered.txt"));
    assert_eq!(rendered, "port=31005\nname=hello-0-server\n");
    let failed = h.state("bad-uri", TaskState::TaskFailed);
    let msg = failed.message.unwrap_or_default();
    assert!(
        msg.contains(&format!("http://127.0.0.1:{port}/missing/file")) && msg.contains("404"),
        "{msg}"
    );
    let _ = server.join();
    assert_eq!(
        *served
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        2
    );
}

/// As root, a task with `user: nobody` runs as nobody and can write its volume.
fn run_as_user() {
    if !nix::unistd::geteuid().is_root()
        || nix::unistd::User::from_name("nobody")
            .ok()
            .flatten()
            .is_none()
    {
        eprintln!("    skipped: needs root and a `nobody` user");
        return;
    }
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    let disk = reserved(Resource::scalar("disk", 4.0), "u-disk");
    let vol = volume(4.0, "u-disk", "vol-u", "data");
    let mut t = task(
        "who",
        "agent-a",
        "id -un > whoami && echo x > data/written",
        vec![vol.clone()],
    );
    if let Some(c) = &mut t.command {
        Arc::make_mut(c).user = Some("nobody".to_owned());
    }
    h.accept(
        &o,
        vec![
            reserve(vec![disk]),
            create(vec![vol]),
            launch("e-who", small(), vec![t]),
        ],
    )
    .expect("accept");
    h.state("who", TaskState::TaskFinished);
    assert_eq!(
        read(&h.sandbox("agent-a", "e-who", "who").join("whoami")).trim(),
        "nobody"
    );
    let vpath = h.control.agents()[0].volumes[0].path.clone();
    assert_eq!(read(&vpath.join("written")).trim(), "x");
}

/// Agents files: errors name file, line, column and field; bad configs are refused at open.
fn agents_file_errors() {
    let e = parse_agents(
        "agents:\n  - id: a\n    cpus: 1\n    mem: 1\n    disk: x\n",
        "agents.yml",
    )
    .expect_err("bad disk");
    assert!(e.to_string().starts_with("agents.yml:5:11: disk: "), "{e}");
    let text = "agents:\n  - id: a\n    cpus: 1\n    mem: 1\n    disk: 1\n    ports: [\"1000-2000\"]\n  - id: b\n    cpus: 1\n    mem: 1\n    disk: 1\n    ports: [{begin: 2000, end: 2100}]\n";
    let e = parse_agents(text, "agents.yml").expect_err("overlap");
    assert!(
        e.to_string().starts_with("agents.yml:11:13: agents[1].ports[0]: port range 2000-2100 overlaps 1000-2000 of agent `a`"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = LocalConfig::new(dir.path(), "/nonexistent");
    cfg.agents[1].ports = cfg.agents[0].ports.clone();
    let e = LocalCluster::open(cfg).expect_err("overlapping ports");
    assert!(e.to_string().contains("overlaps"), "{e}");
    // The data directory lock keeps a second berth run out.
    let cfg = LocalConfig::new(dir.path(), "/nonexistent");
    let _first = LocalCluster::open(cfg.clone()).expect("open");
    let e = LocalCluster::open(cfg).expect_err("locked");
    assert!(e.to_string().contains("in use by another berth run"), "{e}");
}

/// A missing executor program fails the tasks with a clear message.
fn missing_executor_program() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cfg = LocalConfig::new(dir.path(), "/nonexistent/berth");
    cfg.agents = agents();
    cfg.allocation_interval = Duration::from_millis(200);
    let mut cluster = LocalCluster::open(cfg).expect("open");
    let mut rx = cluster.subscribe(framework(None)).expect("subscribe");
    let deadline = Instant::now() + T;
    let mut offer = None;
    let mut failed = None;
    while Instant::now() < deadline && failed.is_none() {
        match rx.try_recv() {
            Ok(Event::Offers { offers }) if offer.is_none() => {
                let o = offers[0].clone();
                let agent = o.agent_id.value.clone();
                cluster
                    .send(Call::Accept {
                        offer_ids: vec![o.id.clone()],
                        operations: vec![launch(
                            "e-none",
                            small(),
                            vec![task("none", &agent, "true", small())],
                        )],
                        filters: Filters {
                            refuse_seconds: 1.0,
                        },
                    })
                    .expect("accept");
                offer = Some(o);
            }
            Ok(Event::Update { status }) if status.state == TaskState::TaskFailed => {
                failed = Some(status)
            }
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    let failed = failed.expect("TASK_FAILED");
    assert!(
        failed
            .message
            .unwrap_or_default()
            .contains("/nonexistent/berth")
    );
    assert_eq!(
        failed.reason.as_deref(),
        Some("REASON_CONTAINER_LAUNCH_FAILED")
    );
}

/// RESERVE into an existing reservation merges (scalars add up); UNRESERVE takes part of it.
fn grow_and_shrink_reservation() {
    let mut h = Harness::new();
    let o = h.offer("agent-a");
    h.accept(
        &o,
        vec![reserve(vec![reserved(Resource::scalar("cpus", 0.3), "g")])],
    )
    .expect("reserve");
    let o = h.offer_where("agent-a", |o| has_resource_id(o, "g"));
    h.accept(
        &o,
        vec![reserve(vec![reserved(Resource::scalar("cpus", 0.2), "g")])],
    )
    .expect("grow");
    let bucket = |o: &Offer| -> Vec<f64> {
        o.resources
            .iter()
            .filter(|r| r.resource_id() == Some("g"))
            .map(Resource::scalar_value)
            .collect()
    };
    let o = h.offer_where("agent-a", |o| bucket(o) == vec![0.5]);
    h.accept(
        &o,
        vec![unreserve(vec![reserved(
            Resource::scalar("cpus", 0.1),
            "g",
        )])],
    )
    .expect("shrink");
    let o = h.offer_where("agent-a", |o| bucket(o) == vec![0.4]);
    let unreserved: f64 = o
        .resources
        .iter()
        .filter(|r| r.name == "cpus" && r.reservations.is_empty())
        .map(Resource::scalar_value)
        .sum();
    assert!((unreserved - 1.6).abs() < 1e-9, "{unreserved}");
    let e = h
        .accept(
            &o,
            vec![unreserve(vec![reserved(
                Resource::scalar("cpus", 0.5),
                "g",
            )])],
        )
        .expect_err("more than reserved");
    assert!(e.to_string().contains("only 0.4 cpus left"), "{e}");
}

/// Static reservations of the agents file are offered with a STATIC reservation to a
/// framework of a sub-role, and can be refined with a DYNAMIC reservation and given back;
/// attributes and the fault domain are in the offer.
fn static_reservation_refinement() {
    let mut specs = parse_agents(
        "agents:\n  - id: pub\n    zone: z1\n    region: r1\n    attributes: {rack: r7, weight: 3}\n    cpus: 2\n    mem: 512\n    disk: 512\n    ports: [\"32000-32009\"]\n    reserved:\n      - {role: slave_public, cpus: 1, mem: 128, ports: [\"32005-32009\"]}\n",
        "agents.yml",
    )
    .expect("agents file");
    assert_eq!(specs.len(), 1);
    specs[0].hostname = "pub-host".to_owned();
    let mut fw = framework(None);
    fw.roles = vec![ROLE.to_owned(), format!("slave_public/{ROLE}")];
    let mut h = Harness::with(tempfile::tempdir().expect("temp dir"), specs, fw);
    let o = h.offer("pub");
    assert_eq!(o.hostname, "pub-host");
    assert_eq!((o.zone(), o.region()), (Some("z1"), Some("r1")));
    assert_eq!(o.attributes.len(), 2);
    assert_eq!(
        o.attributes[0].text.as_ref().map(|t| t.value.as_str()),
        Some("r7")
    );
    assert_eq!(o.attributes[1].scalar.map(|s| s.value), Some(3.0));
    let static_cpus = o
        .resources
        .iter()
        .find(|r| {
            r.name == "cpus"
                && r.reservation()
                    .is_some_and(|x| x.kind == ReservationType::Static && x.role == "slave_public")
        })
        .cloned()
        .expect("statically reserved cpus are offered");
    assert_eq!(static_cpus.scalar_value(), 1.0);
    let ports: Vec<_> = o
        .resources
        .iter()
        .filter(|r| r.name == "ports")
        .map(|r| {
            (
                r.role().to_owned(),
                r.ranges.clone().unwrap_or_default().range,
            )
        })
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    let mut refined = static_cpus.clone();
    refined.scalar = Some(berth_mesos::Scalar { value: 0.5 });
    refined.reservations.push(ReservationInfo {
        kind: ReservationType::Dynamic,
        role: format!("slave_public/{ROLE}").into(),
        principal: Some(PRINCIPAL.into()),
        labels: Some(LabelsHash {
            labels: vec![Label {
                key: "resource_id".into(),
                value: "refined".into(),
            }],
        }),
    });
    h.accept(&o, vec![reserve(vec![refined.clone()])])
        .expect("refine");
    let o = h.offer_where("pub", |o| has_resource_id(o, "refined"));
    let r = o
        .resources
        .iter()
        .find(|r| r.resource_id() == Some("refined"))
        .expect("refined bucket");
    assert_eq!(r.reservations.len(), 2);
    let left_static: f64 = o
        .resources
        .iter()
        .filter(|r| r.name == "cpus" && r.reservations.len() == 1)
        .map(Resource::scalar_value)
        .sum();
    assert_eq!(left_static, 0.5);
    let e = h
        .accept(&o, vec![unreserve(vec![static_cpus.clone()])])
        .expect_err("static reservations stay");
    assert!(e.to_string().contains("only DYNAMIC reservations"), "{e}");
    let o = h.offer_where("pub", |o| has_resource_id(o, "refined"));
    h.accept(&o, vec![unreserve(vec![refined])])
        .expect("give back");
    let o = h.offer_where("pub", |o| !has_resource_id(o, "refined"));
    let back: f64 = o
        .resources
        .iter()
        .filter(|r| r.name == "cpus" && r.role() == "slave_public")
        .map(Resource::scalar_value)
        .sum();
    assert_eq!(back, 1.0);
}

/// `<binary> host DIR`: a stand-in for `berth run` in its own process. It opens the cluster
/// in DIR, launches a long task, a short task (it finishes while the host is dead) and a
/// stream of one-second tasks, acknowledging everything, until it is killed.
fn host_main(args: &[String]) -> ExitCode {
    let dir = PathBuf::from(&args[0]);
    let Ok(mut cluster) = LocalCluster::open(test_config(&dir, agents())) else {
        return ExitCode::from(3);
    };
    let Ok(mut rx) = cluster.subscribe(framework(None)) else {
        return ExitCode::from(3);
    };
    let mut launched = 0u32;
    let mut running = std::collections::BTreeSet::new();
    let mut ready_written = false;
    loop {
        let Some(ev) = rx.blocking_recv() else {
            return ExitCode::from(4);
        };
        match ev {
            Event::Subscribed { framework_id, .. } => {
                let _ = std::fs::write(dir.join("fw-id"), framework_id.as_str());
            }
            Event::Offers { offers } => {
                for o in offers {
                    let agent = o.agent_id.value.clone();
                    let mut tasks = Vec::new();
                    if launched == 0 && agent == "agent-a" {
                        tasks.push(task("long", &agent, "exec sleep 30", small()));
                        tasks.push(task("short", &agent, "sleep 1.5", small()));
                    } else if launched < 40 {
                        tasks.push(task(
                            &format!("cycle-{launched}"),
                            &agent,
                            "sleep 1",
                            small(),
                        ));
                    }
                    if tasks.is_empty() {
                        let _ = cluster.send(Call::Decline {
                            offer_ids: vec![o.id],
                            filters: Filters {
                                refuse_seconds: 0.0,
                            },
                        });
                        continue;
                    }
                    let exec = format!("host-e{launched}");
                    launched += 1;
                    let _ = cluster.send(Call::Accept {
                        offer_ids: vec![o.id],
                        operations: vec![launch(&exec, small(), tasks)],
                        filters: Filters {
                            refuse_seconds: 0.0,
                        },
                    });
                }
            }
            Event::Update { status } => {
                if status.state == TaskState::TaskRunning {
                    running.insert(status.task_id.value.clone());
                }
                if let Some(uuid) = status.uuid.clone() {
                    let _ = cluster.send(Call::Acknowledge {
                        agent_id: status.agent_id.clone().unwrap_or_default(),
                        task_id: status.task_id.clone(),
                        uuid,
                    });
                }
                if !ready_written && running.contains("long") && running.contains("short") {
                    ready_written = true;
                    let _ = std::fs::write(dir.join("ready"), "ready");
                }
            }
            _ => {}
        }
    }
}

/// kill -9 of a separate process running the cluster, at a random instant while it
/// launches and acknowledges: the state reopens, the framework re-subscribes, the long task
/// is adopted, the task that finished meanwhile is reported, and all resources come back.
fn kill9_of_berth_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut host = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .arg("host")
        .arg(dir.path())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start host");
    let ready = dir.path().join("ready");
    let deadline = Instant::now() + T;
    while !ready.exists() {
        if Instant::now() >= deadline || host.try_wait().ok().flatten().is_some() {
            let _ = host.kill();
            let _ = host.wait();
            panic!("the host process did not get ready");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_nanos()
            % 400,
    );
    std::thread::sleep(Duration::from_millis(jitter));
    host.kill().expect("kill -9 host");
    let _ = host.wait();
    let fw = FrameworkId::new(read(&dir.path().join("fw-id")).trim());
    let mut h = Harness::with(dir, agents(), framework(Some(fw.clone())));
    assert_eq!(h.fw, fw, "same framework after the crash");
    h.send(Call::Reconcile {
        tasks: vec![ReconcileTask {
            task_id: TaskId::new("long"),
            agent_id: None,
        }],
    })
    .expect("reconcile");
    let long = h.wait("reconcile of long", T, |e| match e {
        Event::Update { status } if status.task_id.as_str() == "long" && status.uuid.is_none() => {
            Some(status.clone())
        }
        _ => None,
    });
    assert_eq!(long.state, TaskState::TaskRunning, "{long:?}");
    h.update("short", |s| s.state == TaskState::TaskFinished);
    h.send(Call::Kill {
        task_id: TaskId::new("long"),
        agent_id: None,
        grace_period_secs: Some(0.2),
    })
    .expect("kill");
    h.state("long", TaskState::TaskKilled);
    // Acknowledge whatever else comes until nothing runs and every resource is free again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        h.poll();
        let updates: Vec<TaskStatus> = h
            .buf
            .iter()
            .filter_map(|e| match e {
                Event::Update { status } => Some(status.clone()),
                _ => None,
            })
            .collect();
        h.buf.retain(|e| !matches!(e, Event::Update { .. }));
        for u in &updates {
            h.ack(u);
        }
        h.decline_all(0.0);
        let views = h.control.agents();
        if views
            .iter()
            .all(|a| a.executors.is_empty() && a.used.cpus == 0.0)
        {
            break;
        }
        assert!(Instant::now() < deadline, "still in use: {views:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for agent in ["agent-a", "agent-b"] {
        let o = h.offer_where(agent, |o| {
            o.resources
                .iter()
                .filter(|r| r.name == "cpus")
                .map(Resource::scalar_value)
                .sum::<f64>()
                == 2.0
        });
        assert!(o.executor_ids.is_empty());
    }
}

// ---------------------------------------------------------------------------- runner

/// A crash between marking an agent down and killing what ran on it: reopening finishes
/// the job (processes killed, tasks reported unreachable).
fn reopen_finishes_an_interrupted_stop() {
    let mut h = Harness::new();
    run_simple(
        &mut h,
        "agent-b",
        "e-int",
        "int",
        "echo $$ > pid; exec sleep 30",
    );
    let task_pid = read_pid(&h.sandbox("agent-b", "e-int", "int").join("pid"));
    h.remember_pids();
    h.cluster = None;
    let path = h.dir.path().join("cluster/state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&read(&path)).expect("state.json is JSON");
    state["agents"]["agent-b"]["state"] = serde_json::Value::from("down");
    std::fs::write(&path, serde_json::to_vec(&state).expect("encode")).expect("write state");
    let mut cluster = LocalCluster::open(h.cfg.clone()).expect("reopen");
    h.control = cluster.control();
    let fw = h.fw.clone();
    h.rx = cluster.subscribe(framework(Some(fw))).expect("subscribe");
    h.cluster = Some(cluster);
    h.buf.clear();
    let un = h.state("int", TaskState::TaskUnreachable);
    assert_eq!(un.reason.as_deref(), Some("REASON_AGENT_DISCONNECTED"));
    assert!(!alive(task_pid));
    assert!(h.control.agents()[1].executors.is_empty());
}

/// An executor left without an agent exits after its orphan timeout once its tasks are
/// done; the unacknowledged final status it left on disk is delivered after reopening.
fn orphaned_executor_exits() {
    let mut h = Harness::with_config(
        tempfile::tempdir().expect("temp dir"),
        agents(),
        framework(None),
        |c| c.executor_orphan_timeout = Duration::from_millis(800),
    );
    run_simple(&mut h, "agent-a", "e-orph", "orph", "sleep 0.5");
    let exec_pid = h.executor_pid("e-orph");
    h.remember_pids();
    h.cluster = None;
    wait_until("the orphaned executor exits", T, || !alive(exec_pid));
    let mut cluster = LocalCluster::open(h.cfg.clone()).expect("reopen");
    h.control = cluster.control();
    let fw = h.fw.clone();
    h.rx = cluster.subscribe(framework(Some(fw))).expect("subscribe");
    h.cluster = Some(cluster);
    h.buf.clear();
    let fin = h.state("orph", TaskState::TaskFinished);
    assert_eq!(fin.source, Some(berth_mesos::StatusSource::SourceExecutor));
    assert!(h.control.agents()[0].executors.is_empty());
}

/// Reaps every child that has exited (all clusters are closed by now).
fn reap_orphans() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    std::thread::sleep(Duration::from_millis(100));
    while let Ok(st) = waitpid(nix::unistd::Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if st == WaitStatus::StillAlive {
            break;
        }
    }
}

type Test = (&'static str, fn());

fn tests() -> Vec<Test> {
    vec![
        (
            "launch_volume_kill_with_grace",
            launch_volume_kill_with_grace,
        ),
        (
            "relaunch_under_same_executor_id",
            relaunch_under_same_executor_id,
        ),
        ("health_check_failure", health_check_failure),
        ("readiness_and_health_pass", readiness_and_health_pass),
        ("exit_status_and_reoffer", exit_status_and_reoffer),
        (
            "reconcile_explicit_and_implicit",
            reconcile_explicit_and_implicit,
        ),
        (
            "decline_filters_suppress_revive",
            decline_filters_suppress_revive,
        ),
        ("executor_kill9", executor_kill9),
        ("reopen_adopts_and_redelivers", reopen_adopts_and_redelivers),
        ("stop_start_drain_agent", stop_start_drain_agent),
        (
            "destroy_unreserve_removes_volume",
            destroy_unreserve_removes_volume,
        ),
        (
            "reopen_removes_directories_of_destroyed_volumes",
            reopen_removes_directories_of_destroyed_volumes,
        ),
        ("teardown_then_removed", teardown_then_removed),
        ("accept_validation", accept_validation),
        ("fetch_and_render_template", fetch_and_render_template),
        ("run_as_user", run_as_user),
        ("agents_file_errors", agents_file_errors),
        ("missing_executor_program", missing_executor_program),
        ("grow_and_shrink_reservation", grow_and_shrink_reservation),
        (
            "static_reservation_refinement",
            static_reservation_refinement,
        ),
        ("kill9_of_berth_run", kill9_of_berth_run),
        (
            "reopen_finishes_an_interrupted_stop",
            reopen_finishes_an_interrupted_stop,
        ),
        ("orphaned_executor_exits", orphaned_executor_exits),
    ]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("executor") {
        return executor::run(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("host") {
        return host_main(&args[2..]);
    }
    // Orphans (tasks of SIGKILLed executors, executors of the killed host) come to this
    // process instead of an init that may not reap them; they are reaped at the end.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let filters: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<Test> = tests()
        .into_iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    let total = selected.len();
    println!("\nrunning {total} tests");
    let started = Instant::now();
    let queue = Arc::new(Mutex::new(selected));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: usize = std::env::var("BERTH_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    std::panic::set_hook(Box::new(|info| {
        eprintln!("    panic: {info}");
    }));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let queue = queue.clone();
            let failures = failures.clone();
            std::thread::spawn(move || {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop();
                    let Some((name, f)) = next else { break };
                    let t0 = Instant::now();
                    let ok = catch_unwind(AssertUnwindSafe(f)).is_ok();
                    let took = t0.elapsed();
                    if ok {
                        println!("test {name} ... ok ({:.1}s)", took.as_secs_f64());
                    } else {
                        println!("test {name} ... FAILED ({:.1}s)", took.as_secs_f64());
                        failures
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(name.to_owned());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    reap_orphans();
    let failed = failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let passed = total - failed.len();
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            println!("    {f}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
