//! Valid specs: defaults, coercions and features the helloworld corpus does not exercise.

use crate::common;

use berth_spec::{
    Env, FileSource, NoFiles, PlacementField, PlacementOperator, PlacementRule,
    ReplacementFailurePolicy, ServiceSpec, SpecInput, Visibility, load_spec, parse_spec,
    service_role,
};
use common::env;

fn parse(yaml: &str) -> ServiceSpec {
    parse_spec("svc.yml", yaml, &Env::new(), &NoFiles).unwrap_or_else(|e| panic!("{e}"))
}

const MINIMAL: &str = "\
name: /data/store
pods:
  node:
    count: 0
    tasks:
      server:
        goal: running
        cmd: ./server
        cpus: 0.1
        memory: 32
";

#[test]
fn defaults() {
    let spec = parse(MINIMAL);
    assert_eq!(spec.name, "/data/store");
    assert_eq!(spec.role, "data__store-role");
    assert_eq!(service_role("/a/b/c"), "a__b__c-role");
    assert_eq!(spec.principal, "/data/store-principal");
    assert_eq!(spec.zookeeper, "master.mesos:2181");
    assert_eq!(spec.user, "root");
    assert_eq!(spec.web_url, None);
    assert_eq!(spec.replacement_failure_policy, None);
    let pod = &spec.pod_specs[0];
    assert_eq!(
        (pod.count, pod.user.as_str(), pod.pre_reserved_role.as_str()),
        (0, "root", "*")
    );
    assert_eq!(pod.placement_rule, None);
    let task = &pod.task_specs[0];
    assert_eq!(
        task.goal,
        berth_spec::Goal::Running,
        "goal is case-insensitive"
    );
    assert!(task.essential);
    assert_eq!(task.kill_grace_period, 0);
    assert_eq!(task.resource_set.resource_specifications.len(), 2);
    assert_eq!(task.resource_set.id, "server-resource-set");
    assert!(task.command_spec.environment.is_empty());
}

#[test]
fn scheduler_section_policy_and_web_url() {
    let spec = parse(&MINIMAL.replace(
        "pods:\n",
        "web-url: http://store.marathon.mesos:8080\nscheduler:\n  principal: store-p\n  zookeeper: zk-1:2181,zk-2:2181\n  user: store\nreplacement-failure-policy:\n  permanent-failure-timeout-secs: 600\npods:\n",
    ));
    assert_eq!(spec.principal, "store-p");
    assert_eq!(spec.zookeeper, "zk-1:2181,zk-2:2181");
    assert_eq!(spec.user, "store");
    assert_eq!(spec.pod_specs[0].user, "store");
    assert_eq!(
        spec.web_url.as_deref(),
        Some("http://store.marathon.mesos:8080")
    );
    assert_eq!(
        spec.replacement_failure_policy,
        Some(ReplacementFailurePolicy {
            permanent_failure_timeout_secs: 600,
            min_replace_delay_secs: 10
        })
    );
    let spec = parse(&MINIMAL.replace("pods:\n", "replacement-failure-policy: {}\npods:\n"));
    assert_eq!(
        spec.replacement_failure_policy,
        Some(ReplacementFailurePolicy {
            permanent_failure_timeout_secs: 1200,
            min_replace_delay_secs: 10
        })
    );
}

#[test]
fn coercions_like_the_reference() {
    let spec = parse(
        "name: s\npods:\n  p:\n    count: \"3\"\n    allow-decommission: TRUE\n    tasks:\n      t:\n        goal: ONCE\n        essential: False\n        cmd: c\n        cpus: \"0.5\"\n        memory: '64'\n        env:\n          FLOAT: 1.50\n          INT: 007\n          BOOL: true\n          EMPTY:\n          QUOTED: \"x: y\"\n",
    );
    let pod = &spec.pod_specs[0];
    assert_eq!(pod.count, 3);
    assert!(pod.allow_decommission);
    let task = &pod.task_specs[0];
    assert!(!task.essential);
    assert!((task.resource_set.scalar("cpus") - 0.5).abs() < 1e-9);
    assert!((task.resource_set.scalar("mem") - 64.0).abs() < 1e-9);
    let env: Vec<(&str, &str)> = task
        .command_spec
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("FLOAT", "1.50"),
            ("INT", "007"),
            ("BOOL", "true"),
            ("EMPTY", ""),
            ("QUOTED", "x: y")
        ]
    );
}

#[test]
fn placement_forms() {
    let with = |p: &str| {
        parse(&MINIMAL.replace(
            "    count: 0\n",
            &format!("    count: 0\n    placement: {p}\n"),
        ))
        .pod_specs[0]
            .placement_rule
            .clone()
    };
    assert_eq!(with("''"), None);
    assert_eq!(with("'[]'"), None);
    assert_eq!(with("[]"), None, "a YAML list is accepted too");
    let rule = with("[[\"@zone\", \"GROUP_BY\", \"3\"], [hostname, MAX_PER, 2]]");
    match rule {
        Some(PlacementRule::Constraints { constraints, .. }) => {
            assert_eq!(constraints[0].field, PlacementField::Zone);
            assert_eq!(constraints[0].operator, PlacementOperator::GroupBy(Some(3)));
            assert_eq!(constraints[1].operator, PlacementOperator::MaxPer(2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        with("\"rack:LIKE:rack-[1-3]\""),
        Some(PlacementRule::Constraints { .. })
    ));
    assert!(
        matches!(with("\"rack:BOGUS\""), Some(PlacementRule::Invalid { .. })),
        "invalid placement is not a parse error"
    );
}

#[test]
fn resources_ports_networks_and_checks() {
    let spec = parse(
        "name: s
pods:
  p:
    count: 1
    networks:
      mesos-bridge:
        host-ports: [8080, 8443]
        container-ports: [80, 443]
        labels: \"a:b\"
    resource-sets:
      shared:
        cpus: 1
        memory: 128
        gpus: 0
        ports:
          http:
            port: 8080
            ranges: [{begin: 1, end: 2}]
          dyn:
            port: 0
            vip: {port: 80}
    tasks:
      a:
        goal: RUNNING
        cmd: a
        resource-set: shared
        readiness-check: {cmd: check, interval: 5, timeout: 10}
        discovery: {prefix: web}
      b:
        goal: FINISH
        cmd: b
        resource-set: shared
        discovery: {visibility: framework}
        health-check: {cmd: h, interval: 1, grace-period: 0, max-consecutive-failures: 1, delay: 0, timeout: 1}
",
    );
    let pod = &spec.pod_specs[0];
    let net = &pod.networks[0];
    assert_eq!(
        (
            net.name.as_str(),
            net.host_ports.as_slice(),
            net.container_ports.as_slice()
        ),
        ("mesos-bridge", &[8080, 8443][..], &[80, 443][..])
    );
    assert_eq!(net.labels.get("a").map(String::as_str), Some("b"));
    let a = &pod.task_specs[0];
    let b = &pod.task_specs[1];
    assert_eq!(a.resource_set, b.resource_set, "both tasks share the set");
    assert_eq!(a.resource_set.id, "shared");
    let names: Vec<&str> = a
        .resource_set
        .resource_specifications
        .iter()
        .map(|r| match r {
            berth_spec::ResourceSpec::Scalar(s) => s.name.as_str(),
            berth_spec::ResourceSpec::Port(p) => p.port_name.as_str(),
        })
        .collect();
    assert_eq!(
        names,
        ["cpus", "mem", "http", "dyn"],
        "gpus: 0 reserves nothing"
    );
    let ports: Vec<_> = a.resource_set.ports().collect();
    assert_eq!(
        ports[0].ranges.len(),
        1,
        "ranges on a fixed port are kept as written"
    );
    assert_eq!(
        ports[1].vip.as_ref().map(|v| (v.prefix.as_str(), v.port)),
        Some(("dyn", 80)),
        "the VIP prefix defaults to the port name"
    );
    assert_eq!(ports[1].visibility, Visibility::Cluster);
    assert_eq!(
        a.readiness_check_spec.as_ref().map(|r| r.delay),
        Some(0),
        "readiness delay defaults to 0"
    );
    assert_eq!(
        a.discovery_spec.as_ref().map(|d| d.visibility),
        Some(Visibility::Cluster)
    );
    assert_eq!(
        b.discovery_spec
            .as_ref()
            .map(|d| (d.prefix.clone(), d.visibility)),
        Some((None, Visibility::Framework))
    );
    assert_eq!(
        b.health_check_spec
            .as_ref()
            .map(|h| h.max_consecutive_failures),
        Some(1)
    );
}

#[test]
fn taskcfg_and_region_from_the_environment() {
    let vars = env(&[
        ("TASKCFG_ALL_A", "all"),
        ("TASKCFG_ALL_B", "all"),
        ("TASKCFG_DATA_NODE_B", "pod"),
        ("TASKCFG_OTHER_C", "other"),
        ("SERVICE_REGION", "eu-1"),
    ]);
    let yaml = "name: s\npods:\n  data-node:\n    count: 1\n    tasks:\n      t:\n        goal: RUNNING\n        cmd: c\n        cpus: 0.1\n        memory: 32\n        env:\n          A: yaml\n          Z: yaml\n";
    let spec = parse_spec("svc.yml", yaml, &vars, &NoFiles).unwrap_or_else(|e| panic!("{e}"));
    let env: Vec<(&str, &str)> = spec.pod_specs[0].task_specs[0]
        .command_spec
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("A", "all"), ("Z", "yaml"), ("B", "pod")]);
    assert_eq!(spec.region.as_deref(), Some("eu-1"));
}

struct Files;

impl FileSource for Files {
    fn read(&self, path: &str) -> Result<Option<String>, String> {
        match path {
            "dist/conf/app.conf.mustache" => Ok(Some("port={{PORT_HTTP}}\n".to_owned())),
            "dist/secret.conf" => Err("permission denied".to_owned()),
            _ => Ok(None),
        }
    }
}

#[test]
fn config_templates_are_read_relative_to_the_spec() {
    let yaml = "name: s\npods:\n  p:\n    count: 1\n    tasks:\n      t:\n        goal: RUNNING\n        cmd: c\n        cpus: 0.1\n        memory: 32\n        configs:\n          app:\n            template: conf/app.conf.mustache\n            dest: app.conf\n";
    let loaded = load_spec(&SpecInput {
        file_name: "dist/svc.yml",
        template: yaml,
        env: &Env::new(),
        files: &Files,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let config = &loaded.spec.pod_specs[0].task_specs[0].config_files[0];
    assert_eq!(
        (config.name.as_str(), config.relative_path.as_str()),
        ("app", "app.conf")
    );
    // Config templates are not rendered by the scheduler.
    assert_eq!(config.template_content, "port={{PORT_HTTP}}\n");
    let err = load_spec(&SpecInput {
        file_name: "dist/svc.yml",
        template: &yaml.replace("conf/app.conf.mustache", "secret.conf"),
        env: &Env::new(),
        files: &Files,
    })
    .err()
    .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some(
            "dist/svc.yml:13: pods.p.tasks.t.configs.app.template: \"secret.conf\" could not be read (dist/secret.conf): permission denied"
        )
    );
}

#[test]
fn mount_volume_profiles_and_pod_keys_ignored() {
    let spec = parse(
        "name: s\npods:\n  p:\n    count: 1\n    strategy: ignored\n    container: {image: x}\n    volume: {path: data, type: MOUNT, size: 1000, profiles: [fast, slow-disk.v2]}\n    tasks:\n      t: {goal: RUNNING, cmd: c, cpus: 0.1, memory: 32}\n",
    );
    let pod = &spec.pod_specs[0];
    assert_eq!(pod.volumes[0].profiles, ["fast", "slow-disk.v2"]);
    assert_eq!(pod.image, None, "container: under a pod is ignored");
}
