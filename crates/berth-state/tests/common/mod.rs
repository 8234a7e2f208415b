//! Shared test helpers: realistic records and the persister contract suite.
#![allow(dead_code)]

pub mod suite;
pub mod zk;

use berth_mesos::{
    AgentId, CommandInfo, DiskInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo,
    ExecutorType, FrameworkId, HealthCheck, KillPolicy, Label, Labels, LabelsHash, Persistence,
    Range, ReservationInfo, ReservationType, Resource, StatusSource, TaskId, TaskInfo, TaskState,
    TaskStatus, Volume, VolumeMode,
};
use berth_spec::ServiceSpec;

/// A reservation stack as berth writes it (role, principal, resource_id label).
fn reserved(mut r: Resource, n: usize, tag: &str) -> Resource {
    r.reservations = vec![ReservationInfo {
        kind: ReservationType::Dynamic,
        role: "hello-world-role".into(),
        principal: None,
        labels: Some(LabelsHash {
            labels: vec![Label {
                key: "resource_id".into(),
                value: format!("{tag}-0b6f3a51-7f4c-4a4e-9d1b-{n:012}").into(),
            }],
        }),
    }]
    .into();
    r
}

/// A TaskInfo shaped like the ones berth launches (≈2.5 KB of JSON): reserved cpus/mem/ports,
/// a persistent volume, an executor, a command with environment, a health check and labels.
pub fn task_info(name: &str, n: usize) -> TaskInfo {
    let mut volume = reserved(Resource::scalar("disk", 5000.0), n, "vol");
    volume.disk = Some(Box::new(DiskInfo {
        persistence: Some(Persistence {
            id: format!("persist-{n:08}-5c1d7e3a-4b2f-4c0e-8f6a"),
            principal: Some("hello-world-principal".to_owned()),
        }),
        volume: Some(Volume {
            container_path: "hello-container-path".to_owned(),
            mode: VolumeMode::Rw,
        }),
        source: None,
    }));
    let mut env = Environment::default();
    for (k, v) in [
        ("FRAMEWORK_NAME", "hello-world"),
        (
            "FRAMEWORK_HOST",
            "hello-world.autoip.dcos.thisdcos.directory",
        ),
        ("TASK_NAME", name),
        ("HELLO_SLEEP_DURATION", "1000"),
    ] {
        env.set(k, v);
    }
    let mut labels = Labels::default();
    for (k, v) in [
        (
            "target_configuration",
            "3f2b9c4e-1a7d-4e8f-b5c6-9d0e1f2a3b4c",
        ),
        ("task_type", "hello"),
        ("index", &n.to_string()),
        ("goal_state", "RUNNING"),
        (
            "offer_hostname",
            &format!("agent-{}.cluster.example", n % 50),
        ),
    ] {
        labels.set(k, v);
    }
    let agent = AgentId::new(format!("9e2d6b1c-3f4a-4b5c-8d7e-6f5a4b3c2d1e-S{}", n % 50));
    TaskInfo {
        name: name.to_owned(),
        task_id: TaskId::new(format!(
            "hello-world__{name}__6d8f2a1b-4c3e-4f5a-9b8c-{n:012}"
        )),
        agent_id: agent,
        resources: vec![
            reserved(Resource::scalar("cpus", 0.5), n, "cpus"),
            reserved(Resource::scalar("mem", 256.0), n, "mem"),
            reserved(
                Resource::ranges(
                    "ports",
                    vec![Range {
                        begin: 10_000 + n as u64 % 1000,
                        end: 10_000 + n as u64 % 1000,
                    }],
                ),
                n,
                "ports",
            ),
            volume,
        ],
        executor: Some(std::sync::Arc::new(ExecutorInfo {
            kind: ExecutorType::Default,
            executor_id: ExecutorId::new(format!(
                "hello-world__hello__2b4d6f8a-1c3e-4a5b-9c7d-{n:012}"
            )),
            framework_id: Some(FrameworkId::new(
                "4a5c7e0e-0bd0-4b0e-9c8e-6d1f9f6a2b3c-0001",
            )),
            name: Some(format!("hello-{n}")),
            resources: vec![reserved(Resource::scalar("cpus", 0.1), n, "ecpus")],
            container: None,
        })),
        command: Some(std::sync::Arc::new(CommandInfo {
            shell: true,
            value: "echo hello >> hello-container-path/output && sleep $HELLO_SLEEP_DURATION"
                .to_owned(),
            uris: Vec::new(),
            environment: Some(env),
            user: Some("nobody".to_owned()),
        })),
        health_check: Some(std::sync::Arc::new(HealthCheck {
            kind: "COMMAND".to_owned(),
            command: CommandInfo {
                shell: true,
                value: "stat hello-container-path/output".to_owned(),
                ..CommandInfo::default()
            },
            delay_seconds: 0.0,
            interval_seconds: 30.0,
            timeout_seconds: 20.0,
            consecutive_failures: 3,
            grace_period_seconds: 60.0,
        })),
        check: None,
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: 5_000_000_000,
            }),
        }),
        labels,
        discovery: None,
        container: None,
    }
}

/// A TaskStatus for `info` in `state`.
pub fn task_status(info: &TaskInfo, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: info.task_id.clone(),
        state,
        message: Some("Task is running".to_owned()),
        source: Some(StatusSource::SourceExecutor),
        reason: None,
        agent_id: Some(info.agent_id.clone()),
        executor_id: info.executor.as_ref().map(|e| e.executor_id.clone()),
        timestamp: 1_767_225_600.123,
        uuid: Some("b3JkZXItb2YtdGhlLXBob2VuaXg=".to_owned()),
        healthy: Some(true),
        check_status: None,
    }
}

/// `count` running tasks `hello-<n>-server` with their TaskInfo and TaskStatus (benchmarks).
pub fn records(count: usize) -> Vec<(TaskInfo, TaskStatus)> {
    (0..count)
        .map(|n| {
            let info = task_info(&format!("hello-{n}-server"), n);
            let status = task_status(&info, TaskState::TaskRunning);
            (info, status)
        })
        .collect()
}

/// A small valid ServiceSpec named `name`.
pub fn service_spec(name: &str, user: &str) -> ServiceSpec {
    let json = serde_json::json!({
        "name": name,
        "role": format!("{}-role", name.trim_start_matches('/').replace('/', "__")),
        "principal": format!("{name}-principal"),
        "web-url": null,
        "zookeeper": "master.mesos:2181",
        "user": user,
        "goal": "RUNNING",
        "region": null,
        "replacement-failure-policy": null,
        "pod-specs": [],
        "plans": [],
    });
    match serde_json::from_value(json) {
        Ok(spec) => spec,
        Err(e) => panic!("test ServiceSpec does not parse: {e}"),
    }
}

/// Unwraps with the error's message (tests only).
#[track_caller]
pub fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// The error of a result that must fail (tests only).
#[track_caller]
pub fn err<T: std::fmt::Debug, E>(r: Result<T, E>) -> E {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// A temporary directory on the real disk (under the target dir when cargo says where), so
/// fsync costs are real.
pub fn temp_dir() -> tempfile::TempDir {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    ok(tempfile::Builder::new()
        .prefix("berth-state-")
        .tempdir_in(base))
}
