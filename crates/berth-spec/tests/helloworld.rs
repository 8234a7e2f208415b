//! Every helloworld spec of the DC/OS SDK loads through the Universe package with its default
//! options, and the main shapes convert into the expected `ServiceSpec`s.

use crate::common;

use berth_spec::{
    Backend, Env, Goal, LimitValue, LoadedSpec, Package, PackageKind, PhaseStrategy,
    PlacementField, PlacementOperator, PlacementRule, PlanStrategy, PodSpec, PortRange,
    ServiceSpec, StepsKey, TaskSpec, VolumeType, unsupported_features, unsupported_on,
};
use common::{DirSource, env, helloworld_dir, helloworld_specs};

fn package() -> Package {
    Package::load("hello-world", &DirSource(helloworld_dir())).unwrap_or_else(|e| panic!("{e}"))
}

/// The scheduler's own environment that is not a package option.
fn extra_env() -> Env {
    env(&[
        ("PORT_API", "8080"),
        ("DEPLOY_STRATEGY", "serial"),
        ("DEPLOY_STEPS", "[[first, second], [third]]"),
    ])
}

/// Loads `dist/<name>.yml` with the package's default options (plus `service.yaml = name` and
/// any `overrides` merged into the options).
fn load_with(name: &str, overrides: serde_json::Value, extra: &Env) -> LoadedSpec {
    let pkg = package();
    let mut options = pkg.resolve_options(None).unwrap_or_else(|e| panic!("{e}"));
    merge(&mut options, &overrides);
    options["service"]["yaml"] = serde_json::Value::String(name.to_owned());
    let in_enum = pkg
        .schema
        .pointer("/properties/service/properties/yaml/enum")
        .and_then(|v| v.as_array())
        .is_some_and(|names| names.iter().any(|n| n == name));
    let result = if in_enum {
        // The public path: an options.json selecting the spec.
        pkg.load_spec(Some(&options.to_string()), extra)
    } else {
        // custom_steps and update_plan are not selectable through the schema's enum (the SDK
        // uses them in its Java tests only), so skip the options check for them.
        pkg.load_spec_from_options(&options, extra, &DirSource(helloworld_dir()))
    };
    result.unwrap_or_else(|e| panic!("{name}: {e}")).1
}

fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            match t.get_mut(k) {
                Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

fn load(name: &str) -> ServiceSpec {
    load_with(name, serde_json::json!({}), &extra_env()).spec
}

fn pod<'s>(spec: &'s ServiceSpec, name: &str) -> &'s PodSpec {
    spec.pod(name).unwrap_or_else(|| panic!("no pod {name}"))
}

fn task<'s>(spec: &'s ServiceSpec, pod_name: &str, task_name: &str) -> &'s TaskSpec {
    pod(spec, pod_name)
        .task(task_name)
        .unwrap_or_else(|| panic!("no task {pod_name}.{task_name}"))
}

fn steps(spec: &ServiceSpec, plan: &str, phase: usize) -> Vec<(StepsKey, Vec<Vec<String>>)> {
    let plan = spec.plan(plan).unwrap_or_else(|| panic!("no plan {plan}"));
    plan.phases[phase]
        .steps
        .as_ref()
        .map(|s| s.iter().map(|e| (e.key, e.tasks.clone())).collect())
        .unwrap_or_default()
}

fn groups(groups: &[&[&str]]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| g.iter().map(|t| (*t).to_owned()).collect())
        .collect()
}

#[test]
fn package_is_a_universe_package() {
    let pkg = package();
    assert_eq!(pkg.kind, PackageKind::Universe);
    assert_eq!(pkg.name, "hello-world");
    assert_eq!(pkg.version, "0.0.0");
    assert_eq!(
        pkg.spec_file(&pkg.resolve_options(None).unwrap_or_default()),
        "dist/svc.yml"
    );
}

#[test]
fn every_helloworld_spec_loads_with_default_options() {
    let names = helloworld_specs();
    assert_eq!(names.len(), 39, "{names:?}");
    for name in &names {
        let spec = load(name);
        let expected_name = if name == "foobar_service_name" {
            "foobar"
        } else {
            "hello-world"
        };
        assert_eq!(spec.name, expected_name, "{name}");
        assert!(!spec.pod_specs.is_empty(), "{name}");
        // Everything round-trips through the stored-config JSON shape.
        let json = serde_json::to_string(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: ServiceSpec =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, spec, "{name}");
        // And every spec passes the update validators against itself and on first install.
        assert!(
            berth_spec::validate_update(None, &spec).is_empty(),
            "{name}"
        );
        assert!(
            berth_spec::validate_update(Some(&spec), &spec).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn default_spec_svc() {
    let loaded = load_with("svc", serde_json::json!({}), &extra_env());
    assert!(loaded.missing.is_empty(), "{:?}", loaded.missing);
    let spec = loaded.spec;
    assert_eq!(spec.role, "hello-world-role");
    assert_eq!(spec.principal, "hello-world-principal");
    assert_eq!(spec.user, "nobody");
    assert_eq!(spec.zookeeper, "master.mesos:2181");
    assert_eq!(spec.goal, Goal::Running);
    assert_eq!(spec.region, None);
    assert!(spec.plans.is_empty());
    assert_eq!(spec.replacement_failure_policy, None);

    let hello = pod(&spec, "hello");
    assert_eq!(hello.count, 1);
    assert!(!hello.allow_decommission);
    assert_eq!(hello.user, "nobody");
    assert_eq!(hello.pre_reserved_role, "*");
    match &hello.placement_rule {
        Some(PlacementRule::Constraints {
            source,
            constraints,
        }) => {
            assert_eq!(source, "[[\"hostname\", \"UNIQUE\"]]");
            assert_eq!(constraints.len(), 1);
            assert_eq!(constraints[0].field, PlacementField::Hostname);
            assert_eq!(constraints[0].operator, PlacementOperator::Unique);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(hello.rlimits.len(), 1);
    assert_eq!(hello.rlimits[0].name, "RLIMIT_NOFILE");
    assert_eq!(
        (hello.rlimits[0].soft, hello.rlimits[0].hard),
        (Some(128_000), Some(128_000))
    );

    let server = task(&spec, "hello", "server");
    assert_eq!(server.goal, Goal::Running);
    assert!(server.essential);
    assert_eq!(server.kill_grace_period, 0);
    assert_eq!(server.resource_set.id, "server-resource-set");
    assert!((server.resource_set.scalar("cpus") - 0.1).abs() < 1e-9);
    assert!((server.resource_set.scalar("mem") - 252.0).abs() < 1e-9);
    let volumes = &server.resource_set.volume_specifications;
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].volume_type, VolumeType::Root);
    assert_eq!(volumes[0].container_path, "hello-container-path");
    assert_eq!(volumes[0].size, 25);
    assert_eq!(volumes[0].role, "hello-world-role");
    assert_eq!(volumes[0].principal, "hello-world-principal");
    let hc = server
        .health_check_spec
        .as_ref()
        .unwrap_or_else(|| panic!("health check"));
    assert_eq!(hc.command, "stat hello-container-path/output");
    assert_eq!(
        (
            hc.interval,
            hc.grace_period,
            hc.delay,
            hc.timeout,
            hc.max_consecutive_failures
        ),
        (5, 30, 0, 10, 3)
    );
    assert!(server.readiness_check_spec.is_none());
    assert!(server.task_labels.is_empty());
    let env = &server.command_spec.environment;
    assert_eq!(env.get("SLEEP_DURATION").map(String::as_str), Some("1000"));
    // TASKCFG_ALL_* of the scheduler environment reaches every task.
    assert_eq!(
        env.get("PACKAGE_VERSION_TO_FORCE_UPDATE")
            .map(String::as_str),
        Some("0.0.0")
    );

    let world = pod(&spec, "world");
    assert_eq!(world.count, 2);
    assert!(world.allow_decommission);
    let server = task(&spec, "world", "server");
    assert!(
        server
            .command_spec
            .value
            .starts_with("# for graceful shutdown\n")
    );
    assert!(
        server
            .command_spec
            .value
            .contains("trap terminated SIGTERM")
    );
    let paths: Vec<&str> = server
        .resource_set
        .volume_specifications
        .iter()
        .map(|v| v.container_path.as_str())
        .collect();
    assert_eq!(paths, ["world-container-path1", "world-container-path2"]);
    let rc = server
        .readiness_check_spec
        .as_ref()
        .unwrap_or_else(|| panic!("readiness check"));
    assert_eq!((rc.interval, rc.delay, rc.timeout), (5, 0, 10));
    assert!(
        rc.command
            .starts_with("BYTES=\"$(wc -c world-container-path2/output")
    );
    assert_eq!(server.kill_grace_period, 0);
    assert!(unsupported_features(&spec).is_empty());
}

#[test]
fn options_flow_into_the_spec() {
    let loaded = load_with(
        "svc",
        serde_json::json!({"hello": {"count": 3, "cpus": 0.5, "labels": "a:1,b:2", "kill_grace_period": 30},
                           "world": {"kill_grace_period": 20},
                           "service": {"name": "/test/integration/hello-world", "region": "us-west"}}),
        &extra_env(),
    );
    let spec = loaded.spec;
    assert_eq!(spec.name, "/test/integration/hello-world");
    assert_eq!(spec.role, "test__integration__hello-world-role");
    assert_eq!(spec.region.as_deref(), Some("us-west"));
    assert_eq!(pod(&spec, "hello").count, 3);
    let server = task(&spec, "hello", "server");
    assert!((server.resource_set.scalar("cpus") - 0.5).abs() < 1e-9);
    let labels: Vec<(&str, &str)> = server
        .task_labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("a", "1"), ("b", "2")]);
    assert_eq!(task(&spec, "world", "server").kill_grace_period, 20);
}

#[test]
fn plan_yml_has_four_plans() {
    let spec = load("plan");
    let names: Vec<&str> = spec.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["deploy", "manual-plan-0", "manual-plan-1", "manual-plan-2"]
    );
    let deploy = spec.plan("deploy").unwrap_or_else(|| panic!("deploy"));
    assert_eq!(deploy.strategy, PlanStrategy::Serial);
    let phases: Vec<(&str, &str, PhaseStrategy)> = deploy
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.pod.as_str(), p.strategy))
        .collect();
    assert_eq!(
        phases,
        [
            ("hello-deploy", "hello", PhaseStrategy::Parallel),
            ("world-deploy", "world", PhaseStrategy::Parallel)
        ]
    );
    for (i, pod_name) in ["custom-pod-A", "custom-pod-B", "custom-pod-C"]
        .iter()
        .enumerate()
    {
        let plan = spec
            .plan(&format!("manual-plan-{i}"))
            .unwrap_or_else(|| panic!("plan {i}"));
        assert_eq!(plan.strategy, PlanStrategy::Serial);
        assert_eq!(plan.phases.len(), 1);
        assert_eq!(plan.phases[0].pod, *pod_name);
        assert_eq!(plan.phases[0].strategy, PhaseStrategy::Serial);
        assert!(plan.phases[0].steps.is_none());
    }
    // A named resource set: the world task uses it, with its volume.
    let world = task(&spec, "world", "server");
    assert_eq!(world.resource_set.id, "world-resource");
    assert_eq!(
        world.resource_set.volume_specifications[0].container_path,
        "world-container-path"
    );
    let ports: Vec<(&str, u32)> = task(&spec, "hello", "server")
        .resource_set
        .ports()
        .map(|p| (p.port_name.as_str(), p.port))
        .collect();
    assert_eq!(ports, [("test", 9999)]);
}

#[test]
fn canary_phase_strategies() {
    let spec = load("canary");
    let deploy = spec.plan("deploy").unwrap_or_else(|| panic!("deploy"));
    let strategies: Vec<PhaseStrategy> = deploy.phases.iter().map(|p| p.strategy).collect();
    assert_eq!(
        strategies,
        [PhaseStrategy::ParallelCanary, PhaseStrategy::SerialCanary]
    );
}

#[test]
fn sidecar_once_tasks_and_plans() {
    let spec = load("sidecar");
    let hello = pod(&spec, "hello");
    let goals: Vec<(&str, Goal)> = hello
        .task_specs
        .iter()
        .map(|t| (t.name.as_str(), t.goal))
        .collect();
    assert_eq!(
        goals,
        [
            ("server", Goal::Running),
            ("once", Goal::Once),
            ("sidecar", Goal::Once),
            ("sidecar-parameterized", Goal::Once),
            ("sidecar-toxic", Goal::Once)
        ]
    );
    let plans: Vec<&str> = spec.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        plans,
        [
            "deploy",
            "sidecar",
            "sidecar-parameterized",
            "sidecar-toxic"
        ]
    );
    assert_eq!(
        steps(&spec, "deploy", 0),
        [(StepsKey::Default, groups(&[&["server"]]))]
    );
    assert_eq!(
        steps(&spec, "deploy", 1),
        [(StepsKey::Default, groups(&[&["once"]]))]
    );
    assert_eq!(
        steps(&spec, "sidecar", 0),
        [(StepsKey::Default, groups(&[&["sidecar"]]))]
    );
    // Shared resource set, pod volume.
    assert_eq!(
        task(&spec, "hello", "once").resource_set.id,
        "sidecar-resources"
    );
    assert_eq!(
        task(&spec, "hello", "sidecar").resource_set.id,
        "sidecar-resources"
    );
    assert_eq!(hello.volumes.len(), 1);
    assert_eq!(hello.volumes[0].size, 1024);
    let env = &task(&spec, "hello", "server").command_spec.environment;
    assert_eq!(env.get("SLEEP_DURATION").map(String::as_str), Some("10000"));
    assert_eq!(
        env.get("CONFIG_SLEEP_DURATION").map(String::as_str),
        Some("1000")
    );
    assert!(
        task(&spec, "hello", "sidecar-toxic")
            .command_spec
            .value
            .contains("exit 1")
    );
}

#[test]
fn multiport_ranges_with_an_open_end() {
    let spec = load("multiport");
    let server = task(&spec, "multiport", "server");
    assert_eq!(server.goal, Goal::Once);
    let ports: Vec<_> = server.resource_set.ports().collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(
        (ports[0].port_name.as_str(), ports[0].port),
        ("port_one", 1729)
    );
    assert!(ports[0].ranges.is_empty());
    assert_eq!(
        (ports[1].port_name.as_str(), ports[1].port),
        ("port_two", 0)
    );
    assert_eq!(ports[1].env_key.as_deref(), Some("HELLO_PORT_TWO"));
    assert_eq!(
        ports[1].ranges,
        [
            PortRange {
                begin: Some(1024),
                end: Some(5000)
            },
            PortRange {
                begin: Some(5050),
                end: None
            }
        ]
    );
    // `- {{BOOTSTRAP_URI}}` renders empty by default and is dropped.
    assert!(pod(&spec, "multiport").uris.is_empty());
    assert!(server.command_spec.value.contains("-l 1729 &"));
}

#[test]
fn resource_limits_unlimited() {
    let spec = load("resource_limits");
    let limits = task(&spec, "hello", "unlimited")
        .resource_set
        .resource_limits
        .clone()
        .unwrap_or_else(|| panic!("limits"));
    assert_eq!(limits.cpus, Some(LimitValue::Unlimited));
    assert_eq!(limits.memory, Some(LimitValue::Unlimited));
}

#[test]
fn mount_volumes() {
    let spec = load("pod-mount-volume");
    let hello = pod(&spec, "hello");
    assert_eq!(hello.volumes[0].volume_type, VolumeType::Mount);
    assert_eq!(hello.volumes[0].container_path, "pod-container-path");
    let node = task(&spec, "hello", "node");
    assert!(!node.essential);
    assert_eq!(
        node.resource_set.volume_specifications[0].volume_type,
        VolumeType::Mount
    );
    let agent = task(&spec, "hello", "agent");
    assert_eq!(
        agent.resource_set.volume_specifications[0].volume_type,
        VolumeType::Root
    );

    // Profiles: none by default (the option is empty), the option's value when set.
    let spec = load("profile-mount-volume");
    assert!(
        task(&spec, "hello", "profile")
            .resource_set
            .volume_specifications[0]
            .profiles
            .is_empty()
    );
    let spec = load_with(
        "pod-profile-mount-volume",
        serde_json::json!({"hello": {"volume_profile": "fast-ssd"}}),
        &extra_env(),
    )
    .spec;
    assert_eq!(pod(&spec, "hello").volumes[0].profiles, ["fast-ssd"]);
    let profile = task(&spec, "hello", "profile");
    assert_eq!(
        profile.resource_set.volume_specifications[0].profiles,
        ["fast-ssd"]
    );
    assert_eq!(
        profile
            .command_spec
            .environment
            .get("VOLUME_PROFILE")
            .map(String::as_str),
        Some("fast-ssd")
    );
    assert!(
        task(&spec, "hello", "noprofile")
            .resource_set
            .volume_specifications[0]
            .profiles
            .is_empty()
    );
}

#[test]
fn pre_reserved_roles() {
    for name in ["pre-reserved", "pre-reserved-sidecar"] {
        let spec = load(name);
        for p in &spec.pod_specs {
            assert_eq!(p.pre_reserved_role, "slave_public", "{name}");
            for t in &p.task_specs {
                for v in &t.resource_set.volume_specifications {
                    assert_eq!(v.pre_reserved_role, "slave_public");
                }
            }
        }
    }
    let spec = load("pre-reserved-sidecar");
    assert_eq!(
        steps(&spec, "deploy", 0),
        [(StepsKey::Default, groups(&[&["server"], &["sidecar"]]))]
    );
}

#[test]
fn enable_disable_follows_test_boolean() {
    let on = load("enable-disable");
    assert_eq!(
        steps(&on, "deploy", 0),
        [(StepsKey::Default, groups(&[&["server-a"], &["server-b"]]))]
    );
    let off = load_with(
        "enable-disable",
        serde_json::json!({"service": {"test_boolean": false}}),
        &extra_env(),
    )
    .spec;
    assert_eq!(
        steps(&off, "deploy", 0),
        [(StepsKey::Default, groups(&[&["server-b"]]))]
    );
    assert_ne!(on, off);
}

#[test]
fn custom_steps_from_the_environment() {
    let spec = load("custom_steps");
    let deploy = spec.plan("deploy").unwrap_or_else(|| panic!("deploy"));
    assert_eq!(deploy.phases[0].strategy, PhaseStrategy::Serial);
    assert_eq!(
        steps(&spec, "deploy", 0),
        [(
            StepsKey::Default,
            groups(&[&["first", "second"], &["third"]])
        )]
    );
    let parallel = load_with(
        "custom_steps",
        serde_json::json!({}),
        &env(&[
            ("DEPLOY_STRATEGY", "parallel"),
            ("DEPLOY_STEPS", "[[first], [second], [third]]"),
        ]),
    )
    .spec;
    let deploy = parallel.plan("deploy").unwrap_or_else(|| panic!("deploy"));
    assert_eq!(deploy.phases[0].strategy, PhaseStrategy::Parallel);
    assert_eq!(pod(&parallel, "hello").count, 2);
}

#[test]
fn various_shapes() {
    // Pod-level `user:` and `container:` are ignored; the pod runs as the scheduler user.
    let spec = load("graceful-shutdown");
    assert_eq!(spec.user, "root");
    assert_eq!(pod(&spec, "hello").user, "root");
    assert_eq!(task(&spec, "hello", "server").kill_grace_period, 0);
    let spec = load("gpu_resource");
    assert!(pod(&spec, "hello").networks.is_empty());
    assert!((task(&spec, "hello", "server").resource_set.scalar("gpus") - 1.0).abs() < 1e-9);

    let spec = load("host-volume");
    let hv = &pod(&spec, "hello").host_volumes;
    assert_eq!(hv.len(), 1);
    assert_eq!(
        (
            hv[0].host_path.as_str(),
            hv[0].container_path.as_str(),
            hv[0].mode.as_str()
        ),
        ("/etc", "host-volume-etc", "RW")
    );
    assert_eq!(pod(&spec, "world").host_volumes.len(), 2);

    let spec = load("external-volumes");
    let ev = &pod(&spec, "hello").external_volumes[0];
    assert_eq!(
        (
            ev.volume_type.as_str(),
            ev.driver_name.as_str(),
            ev.volume_mode.as_str()
        ),
        ("DOCKER", "pxd", "RW")
    );
    assert_eq!(
        (ev.driver_options.as_deref(), ev.volume_name.as_deref()),
        (None, None)
    );

    let spec = load("overlay");
    let vip_pod = pod(&spec, "overlay-vip");
    assert_eq!(vip_pod.networks[0].name, "dcos");
    let labels: Vec<(&str, &str)> = vip_pod.networks[0]
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(labels, [("key0", "val0"), ("key1", "val1")]);
    assert!(pod(&spec, "overlay").networks[0].labels.is_empty());
    let port = task(&spec, "overlay-vip", "server")
        .resource_set
        .ports()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("port"));
    assert_eq!(port.visibility, berth_spec::Visibility::External);
    assert_eq!(
        port.vip.as_ref().map(|v| (v.prefix.as_str(), v.port)),
        Some(("overlay-vip", 80))
    );
    assert_eq!(port.env_key.as_deref(), Some("PORT_OVERLAY_VIP"));
    let host_port = task(&spec, "host", "server")
        .resource_set
        .ports()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("port"));
    assert_eq!(host_port.visibility, berth_spec::Visibility::Cluster);
    assert!(pod(&spec, "host").networks.is_empty());
    assert_eq!(pod(&spec, "getter").networks[0].name, "dcos");

    let spec = load("secrets");
    let s = &pod(&spec, "hello").secrets;
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].env_key.as_deref(), Some("HELLO_SECRET1_ENV"));
    assert_eq!(s[0].file_path.as_deref(), Some("HELLO_SECRET1_FILE"));
    assert_eq!(pod(&spec, "world").secrets.len(), 3);
    let spec = load_with(
        "secrets",
        serde_json::json!({"world": {"secret3": "path/to/s3"}}),
        &extra_env(),
    )
    .spec;
    let s3 = &pod(&spec, "world").secrets[2];
    assert_eq!(s3.secret_path, "path/to/s3");
    assert_eq!(
        s3.file_path.as_deref(),
        Some("path/to/s3"),
        "no env-key nor file: file = secret path"
    );

    let spec = load("tls");
    assert_eq!(
        steps(&spec, "deploy", 4),
        [(StepsKey::Index(0), groups(&[&["first"], &["second"]]))]
    );
    assert_eq!(
        task(&spec, "discovery", "node")
            .discovery_spec
            .as_ref()
            .and_then(|d| d.prefix.as_deref()),
        Some("discovered")
    );
    assert_eq!(
        task(&spec, "artifacts", "node").transport_encryption.len(),
        2
    );
    assert!(pod(&spec, "artifacts").uris.is_empty());
    assert_eq!(
        pod(&spec, "nginx").image.as_deref(),
        Some("mesosphere/dcos-commons-tls-nginx:0.1")
    );

    let spec = load("shm");
    let hello = pod(&spec, "hello");
    assert_eq!(
        (hello.ipc_mode, hello.shm_size),
        (Some(berth_spec::IpcMode::Private), Some(128))
    );
    assert_eq!(
        task(&spec, "hello", "server").ipc_mode,
        Some(berth_spec::IpcMode::ShareParent)
    );

    let spec = load("seccomp");
    assert!(!pod(&spec, "hello").seccomp_unconfined);
    assert_eq!(pod(&spec, "hello").seccomp_profile_name, None);
    assert!(load("share_pid_namespace").pod_specs[0].share_pid_namespace);

    let spec = load("web-url");
    assert_eq!(
        spec.web_url.as_deref(),
        Some("http://hello-world.marathon.mesos:8080")
    );
    let spec = load("uri");
    assert_eq!(pod(&spec, "hello").uris.len(), 2);
    assert_eq!(pod(&spec, "world").uris.len(), 1);

    let spec = load("discovery");
    for t in ["once", "server"] {
        let d = task(&spec, "hello", t)
            .discovery_spec
            .clone()
            .unwrap_or_else(|| panic!("discovery"));
        assert_eq!(d.prefix.as_deref(), Some("hello"));
        assert_eq!(d.visibility, berth_spec::Visibility::Cluster);
    }
    let spec = load("custom_tld");
    let port = task(&spec, "hello", "resolution")
        .resource_set
        .ports()
        .next()
        .cloned()
        .unwrap_or_else(|| panic!("port"));
    assert_eq!(
        (port.port, port.visibility),
        (0, berth_spec::Visibility::External)
    );

    assert_eq!(
        task(&load("finish_state"), "world", "finish").goal,
        Goal::Finish
    );
    assert_eq!(
        task(&load("non_recoverable_state"), "hello", "server").goal,
        Goal::Finish
    );
    let spec = load("update_plan");
    let plans: Vec<(&str, PlanStrategy)> = spec
        .plans
        .iter()
        .map(|p| (p.name.as_str(), p.strategy))
        .collect();
    assert_eq!(
        plans,
        [
            ("deploy", PlanStrategy::Parallel),
            ("update", PlanStrategy::Serial)
        ]
    );
    assert!(!task(&load("nonessential_tasks"), "hello", "nonessential").essential);
    let spec = load("foobar_service_name");
    assert_eq!(
        (spec.role.as_str(), spec.principal.as_str()),
        ("foobar-role", "foobar-principal")
    );
    assert_eq!(
        steps(&load("multistep_plan"), "deploy", 0),
        [(StepsKey::Default, groups(&[&["first"], &["second"]]))]
    );
    assert_eq!(
        steps(&load("pause"), "deploy", 0),
        [(StepsKey::Default, groups(&[&["server"], &["companion"]]))]
    );
    let spec = load("executor_volume");
    assert_eq!(
        pod(&spec, "world").volumes[0].container_path,
        "world-container-path"
    );
    assert_eq!(spec.plan("sidecar").map(|p| p.phases.len()), Some(1));
    assert_eq!(
        task(&load("crash-loop"), "hello", "server")
            .readiness_check_spec
            .as_ref()
            .map(|r| r.command.as_str()),
        Some("exit 1")
    );
    assert_eq!(
        task(&load("taskcfg"), "world", "server")
            .command_spec
            .environment
            .get("PACKAGE_VERSION_TO_FORCE_UPDATE")
            .map(String::as_str),
        Some("0.0.0")
    );
}

#[test]
fn taskcfg_variables_override_yaml_env() {
    let extra = env(&[
        ("PORT_API", "8080"),
        ("TASKCFG_ALL_OUTPUT_FILENAME", "output"),
        ("TASKCFG_ALL_SLEEP_DURATION", "5"),
        ("TASKCFG_WORLD_SLEEP_DURATION", "7"),
    ]);
    let spec = load_with("taskcfg", serde_json::json!({}), &extra).spec;
    let hello = &task(&spec, "hello", "server").command_spec.environment;
    assert_eq!(
        hello.get("OUTPUT_FILENAME").map(String::as_str),
        Some("output")
    );
    assert_eq!(hello.get("SLEEP_DURATION").map(String::as_str), Some("5"));
    let world = &task(&spec, "world", "server").command_spec.environment;
    assert_eq!(world.get("SLEEP_DURATION").map(String::as_str), Some("7"));
    // TASKCFG overrides win over the YAML env.
    let spec = load_with("svc", serde_json::json!({}), &extra).spec;
    assert_eq!(
        task(&spec, "hello", "server")
            .command_spec
            .environment
            .get("SLEEP_DURATION")
            .map(String::as_str),
        Some("5")
    );
}

#[test]
fn unsupported_features_per_spec() {
    let expected: &[(&str, &[&str])] = &[
        (
            "external-volumes",
            &[
                "pods.hello.external-volumes.hello-volume",
                "pods.world.external-volumes.world-volume",
            ],
        ),
        ("host-volume", &["pods.hello.image"]),
        (
            "overlay",
            &[
                "pods.overlay-vip.image",
                "pods.overlay-vip.networks.dcos",
                "pods.overlay.image",
                "pods.overlay.networks.dcos",
                "pods.host-vip.image",
                "pods.host.image",
                "pods.getter.networks.dcos",
            ],
        ),
        (
            "secrets",
            &[
                "pods.hello.image",
                "pods.hello.secrets",
                "pods.hello.secrets",
                "pods.world.secrets",
                "pods.world.secrets",
                "pods.world.secrets",
            ],
        ),
        (
            "shm",
            &[
                "pods.hello.ipc-mode",
                "pods.hello.shm-size",
                "pods.hello.tasks.server.ipc-mode",
            ],
        ),
        (
            "tls",
            &[
                "pods.artifacts.tasks.node.transport-encryption",
                "pods.artifacts.tasks.node.transport-encryption",
                "pods.keystore.networks.dcos",
                "pods.keystore.tasks.webserver.transport-encryption",
                "pods.nginx.image",
                "pods.nginx.networks.dcos",
                "pods.nginx.tasks.nginx.transport-encryption",
                "pods.discovery.tasks.node.transport-encryption",
                "pods.multi.tasks.first.transport-encryption",
                "pods.multi.tasks.first.transport-encryption",
                "pods.multi.tasks.second.transport-encryption",
                "pods.multi.tasks.second.transport-encryption",
            ],
        ),
    ];
    for name in helloworld_specs() {
        let spec = load(&name);
        let found: Vec<String> = unsupported_features(&spec)
            .into_iter()
            .map(|u| u.field)
            .collect();
        let want: Vec<String> = expected
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fields)| fields.iter().map(|f| (*f).to_owned()).collect())
            .unwrap_or_default();
        assert_eq!(found, want, "{name}");
    }
    // On Mesos, images and virtual networks run; secrets and TLS artifacts stay refused.
    assert!(unsupported_on(&load("overlay"), Backend::Mesos).is_empty());
    assert!(unsupported_on(&load("host-volume"), Backend::Mesos).is_empty());
    let on_mesos: Vec<String> = unsupported_on(&load("secrets"), Backend::Mesos)
        .into_iter()
        .map(|u| u.field)
        .collect();
    assert_eq!(on_mesos.len(), 5, "{on_mesos:?}");
    assert!(on_mesos.iter().all(|f| f.ends_with(".secrets")));
    let shown: Vec<String> = unsupported_features(&load("host-volume"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "pods.hello.image: container images are not supported: berth runs tasks as host processes (they run on Mesos: berth run --master) (\"ubuntu:14.04\")"
        ]
    );
    // Seccomp is reported once it is used.
    let spec = load_with(
        "seccomp",
        serde_json::json!({"hello": {"seccomp-profile-name": "strict"}}),
        &extra_env(),
    )
    .spec;
    let shown: Vec<String> = unsupported_features(&spec)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        [
            "pods.hello.seccomp-profile-name: seccomp settings are not supported: berth runs tasks as host processes without a seccomp sandbox (\"strict\")"
        ]
    );
    let tls: Vec<String> = unsupported_features(&load("tls"))
        .iter()
        .take(1)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        tls,
        [
            "pods.artifacts.tasks.node.transport-encryption: TLS artifacts are not supported: berth's agents have no certificate authority to issue them (\"secure-tls-pod\")"
        ]
    );
}

#[test]
fn missing_values_name_template_lines() {
    let loaded = load_with(
        "pod-profile-mount-volume",
        serde_json::json!({}),
        &extra_env(),
    );
    let shown: Vec<String> = loaded.missing.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "HELLO_VOLUME_PROFILE@L10",
            "HELLO_VOLUME_PROFILE@L30",
            "HELLO_VOLUME_PROFILE@L33",
            "HELLO_VOLUME_PROFILE@L52"
        ]
    );
    // web-url without PORT_API: the YAML error points at the template line and names the value.
    let pkg = package();
    let err = pkg
        .load_spec(Some(r#"{"service": {"yaml": "web-url"}}"#), &Env::new())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("dist/web-url.yml:5: invalid YAML"), "{err}");
    assert!(
        err.ends_with("(the template value PORT_API was not set)"),
        "{err}"
    );
}
