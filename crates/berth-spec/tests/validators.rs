//! Update validators (one test per rule, old/new pairs), their display format, the
//! equivalence used to skip relaunches, and the spec diff.

use crate::common;

use berth_spec::{
    ConfigValidationError, IpcMode, LimitValue, NetworkSpec, NoFiles, ServiceSpec,
    default_validators, parse_spec, pod_specs_equivalent_for_update, spec_diff, validate_update,
};
use common::env;

const BASE: &str = "\
name: hello-world
pods:
  hello:
    count: 2
    placement: hostname:UNIQUE
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.1
        memory: 32
        volume:
          path: data
          type: ROOT
          size: 100
  world:
    count: 1
    allow-decommission: true
    tasks:
      server:
        goal: RUNNING
        cmd: sleep 1000
        cpus: 0.2
        memory: 64
";

fn spec(yaml: &str) -> ServiceSpec {
    parse_spec("svc.yml", yaml, &env(&[]), &NoFiles).unwrap_or_else(|e| panic!("{e}"))
}

fn base() -> ServiceSpec {
    spec(BASE)
}

/// The findings of one named validator.
fn run(name: &str, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<String> {
    let validators = default_validators();
    let v = validators
        .iter()
        .find(|v| v.name() == name)
        .unwrap_or_else(|| panic!("no validator {name}"));
    v.validate(old, new)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn display_formats() {
    let t = ConfigValidationError::transition("f", "old", "new", "m");
    assert_eq!(
        t.to_string(),
        "Field: 'f'; Transition: 'old' => 'new'; Message: 'm'; Fatal: false"
    );
    let v = ConfigValidationError::value("f", "v", "m").fatal();
    assert_eq!(
        v.to_string(),
        "Field: 'f'; Value: 'v'; Message: 'm'; Fatal: true"
    );
}

#[test]
fn all_validators_have_distinct_names_and_run() {
    let names: Vec<&str> = default_validators().iter().map(|v| v.name()).collect();
    assert_eq!(
        names,
        [
            "ServiceNameCannotContainDoubleUnderscores",
            "ServiceNameCannotBreakDNS",
            "PodSpecsCannotShrink",
            "TaskVolumesCannotChange",
            "UserCannotChange",
            "PodSpecsCannotChangeNetworkRegime",
            "PreReservationCannotChange",
            "PlacementRuleIsValid",
            "ResourceLimitsMustExceedRequestedResources",
            "RegionCannotChange",
        ]
    );
    let b = base();
    assert!(validate_update(None, &b).is_empty());
    assert!(validate_update(Some(&b), &b).is_empty());
}

#[test]
fn service_name_cannot_contain_double_underscores() {
    let mut new = base();
    new.name = "hello__world".to_owned();
    assert_eq!(
        run("ServiceNameCannotContainDoubleUnderscores", None, &new),
        [
            "Field: 'ServiceName'; Value: 'hello__world'; Message: 'Service name may not contain double underscores: hello__world'; Fatal: false"
        ]
    );
    // Also on updates.
    assert_eq!(
        run(
            "ServiceNameCannotContainDoubleUnderscores",
            Some(&base()),
            &new
        )
        .len(),
        1
    );
    // A foldered name uses single slashes, which is fine.
    new.name = "/folder/hello-world".to_owned();
    assert!(run("ServiceNameCannotContainDoubleUnderscores", None, &new).is_empty());
}

#[test]
fn service_name_cannot_break_dns() {
    let mut new = base();
    new.name = format!("/{}/{}", "a".repeat(30), "b".repeat(33));
    assert!(
        run("ServiceNameCannotBreakDNS", None, &new).is_empty(),
        "63 without slashes is fine"
    );
    new.name = format!("/{}/{}", "a".repeat(30), "b".repeat(34));
    let errors = run("ServiceNameCannotBreakDNS", None, &new);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("Field: 'service.name'; Value: '/aaa"),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("has 64 characters; it may not exceed 63"),
        "{}",
        errors[0]
    );
    // Only a warning (nothing) on updates.
    assert!(run("ServiceNameCannotBreakDNS", Some(&base()), &new).is_empty());
}

#[test]
fn pod_specs_cannot_shrink() {
    let old = base();
    let mut new = base();
    new.pod_specs[0].count = 0;
    assert_eq!(
        run("PodSpecsCannotShrink", Some(&old), &new),
        [
            "Field: 'PodSpec[setname:hello]'; Transition: '2' => '0'; Message: 'New config's PodSpec named 'hello' has 0 tasks, expected >=2 tasks'; Fatal: false"
        ]
    );
    // The reference's scenario: hello.count 1 -> 0 without allow-decommission.
    let mut one = base();
    one.pod_specs[0].count = 1;
    let errors = validate_update(Some(&one), &new);
    assert!(
        errors.iter().any(|e| e
            .message
            .contains("PodSpec named 'hello' has 0 tasks, expected >=1 tasks")),
        "{errors:?}"
    );
    // Allowed with allow-decommission in the new spec.
    new.pod_specs[0].allow_decommission = true;
    assert!(run("PodSpecsCannotShrink", Some(&old), &new).is_empty());
    // world allows decommission: shrinking and removing it is fine.
    let mut new = base();
    new.pod_specs[1].count = 0;
    assert!(run("PodSpecsCannotShrink", Some(&old), &new).is_empty());
    new.pod_specs.truncate(1);
    assert!(run("PodSpecsCannotShrink", Some(&old), &new).is_empty());
    // Removing hello is not (its old spec does not allow decommission).
    let mut new = base();
    new.pod_specs.remove(0);
    let errors = run("PodSpecsCannotShrink", Some(&old), &new);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("Field: 'PodSpec[name:hello]'; Transition: '2' => 'null'; Message: 'New config is missing PodSpec named 'hello' (expected present with >= 2 tasks)"), "{}", errors[0]);
    // Growing and first installs are fine.
    let mut new = base();
    new.pod_specs[0].count = 5;
    assert!(run("PodSpecsCannotShrink", Some(&old), &new).is_empty());
    assert!(run("PodSpecsCannotShrink", None, &new).is_empty());
}

#[test]
fn task_volumes_cannot_change() {
    let old = base();
    let mut new = base();
    new.pod_specs[0].task_specs[0]
        .resource_set
        .volume_specifications[0]
        .size = 200;
    assert_eq!(
        run("TaskVolumesCannotChange", Some(&old), &new),
        [
            "Field: 'TaskVolumes[taskname:hello-server]'; Transition: '[ROOT data 100MB]' => '[ROOT data 200MB]'; Message: 'Volumes must be equal.'; Fatal: false"
        ]
    );
    // Adding a volume to an existing task is a change too.
    let mut new = base();
    let extra = new.pod_specs[0].task_specs[0]
        .resource_set
        .volume_specifications[0]
        .clone();
    new.pod_specs[1].task_specs[0]
        .resource_set
        .volume_specifications
        .push(extra);
    assert_eq!(run("TaskVolumesCannotChange", Some(&old), &new).len(), 1);
    // Pod volumes too.
    let mut new = base();
    let mut pod_volume = new.pod_specs[0].task_specs[0]
        .resource_set
        .volume_specifications[0]
        .clone();
    pod_volume.container_path = "shared".to_owned();
    new.pod_specs[0].volumes.push(pod_volume);
    let errors = run("TaskVolumesCannotChange", Some(&old), &new);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with(
        "Field: 'PodVolumes[podname:hello]'; Transition: '[]' => '[ROOT shared 100MB]'"
    ));
    // Role/principal changes of a volume alone are not a volume change; new tasks are free.
    let mut new = base();
    new.pod_specs[0].task_specs[0]
        .resource_set
        .volume_specifications[0]
        .principal = "other".to_owned();
    assert!(run("TaskVolumesCannotChange", Some(&old), &new).is_empty());
    assert!(run("TaskVolumesCannotChange", None, &new).is_empty());
    // With a changed service role the rule does not apply.
    let mut new = base();
    new.role = "other-role".to_owned();
    new.pod_specs[0].task_specs[0]
        .resource_set
        .volume_specifications
        .clear();
    assert!(run("TaskVolumesCannotChange", Some(&old), &new).is_empty());
}

#[test]
fn user_cannot_change_is_fatal() {
    let old = base();
    let new = spec(&BASE.replace(
        "name: hello-world\n",
        "name: hello-world\nscheduler:\n  user: nobody\n",
    ));
    let errors = run("UserCannotChange", Some(&old), &new);
    assert_eq!(
        errors,
        [
            "Field: 'user'; Transition: 'root' => 'nobody'; Message: 'Service user must remain the same across deployments.'; Fatal: true"
        ]
    );
    let mut new = base();
    new.pod_specs[1].user = "nobody".to_owned();
    assert_eq!(
        run("UserCannotChange", Some(&old), &new),
        [
            "Field: 'user'; Transition: 'root' => 'nobody'; Message: 'User for old pod type world must remain the same across deployments.'; Fatal: true"
        ]
    );
    assert!(validate_update(Some(&old), &new).iter().any(|e| e.fatal));
    assert!(run("UserCannotChange", None, &new).is_empty());
}

#[test]
fn pod_specs_cannot_change_network_regime() {
    let old = base();
    let mut new = base();
    new.pod_specs[0].networks.push(NetworkSpec {
        name: "dcos".to_owned(),
        host_ports: Vec::new(),
        container_ports: Vec::new(),
        labels: Default::default(),
    });
    assert_eq!(
        run("PodSpecsCannotChangeNetworkRegime", Some(&old), &new),
        [
            "Field: 'PodSpec[name:hello]'; Transition: '[]' => '[dcos]'; Message: 'New config has pod hello moving networks from [] to [dcos], changing its host ports requirements from true to false, not allowed.'; Fatal: false"
        ]
    );
    // Host networking → port-mapping bridge keeps host ports: fine.
    let mut bridge = base();
    bridge.pod_specs[0].networks.push(NetworkSpec {
        name: "mesos-bridge".to_owned(),
        host_ports: vec![8080],
        container_ports: vec![80],
        labels: Default::default(),
    });
    assert!(run("PodSpecsCannotChangeNetworkRegime", Some(&old), &bridge).is_empty());
    // Port mappings on a network without port mapping, even on first install.
    let mut mapped = base();
    mapped.pod_specs[0].networks.push(NetworkSpec {
        name: "dcos".to_owned(),
        host_ports: vec![8080],
        container_ports: vec![80],
        labels: Default::default(),
    });
    assert_eq!(
        run("PodSpecsCannotChangeNetworkRegime", None, &mapped),
        [
            "Field: 'PodSpec[name:hello]'; Value: '[dcos]'; Message: 'Pod hello maps ports on virtual network(s) dcos, which do not support port mapping.'; Fatal: false"
        ]
    );
}

#[test]
fn pre_reservation_cannot_change() {
    let old = base();
    let new = spec(&BASE.replace(
        "    count: 2\n",
        "    count: 2\n    pre-reserved-role: slave_public\n",
    ));
    assert_eq!(
        run("PreReservationCannotChange", Some(&old), &new),
        [
            "Field: 'PodSpec[pre-reserved-role:*]'; Transition: '*' => 'slave_public'; Message: 'New config has changed the pre-reserved-role of PodSpec named 'hello' (expected it to stay '*')'; Fatal: false"
        ]
    );
    assert!(run("PreReservationCannotChange", None, &new).is_empty());
}

#[test]
fn placement_rule_is_valid() {
    // An unparseable placement is not a parse error of the spec …
    let new = spec(&BASE.replace("placement: hostname:UNIQUE", "placement: hostname:UNIQU"));
    // … the validator reports it, on install and on update.
    let expected = "Field: 'PlacementRule'; Value: 'hostname:UNIQU'; Message: 'The PlacementRule for PodSpec 'hello' had invalid constraints: unknown operator \"UNIQU\" in [\"hostname\", \"UNIQU\"]; allowed: UNIQUE, MAX_PER, CLUSTER, IS, IS_NOT, LIKE, UNLIKE, GROUP_BY'; Fatal: false";
    assert_eq!(run("PlacementRuleIsValid", None, &new), [expected]);
    assert_eq!(run("PlacementRuleIsValid", Some(&base()), &new), [expected]);
    let regex = spec(&BASE.replace(
        "placement: hostname:UNIQUE",
        "placement: '[[\"rack\", \"LIKE\", \"rack-[1-\"]]'",
    ));
    let errors = run("PlacementRuleIsValid", None, &regex);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("has an invalid regular expression"),
        "{}",
        errors[0]
    );
    let max_per = spec(&BASE.replace(
        "placement: hostname:UNIQUE",
        "placement: hostname:MAX_PER:zero",
    ));
    assert!(
        run("PlacementRuleIsValid", None, &max_per)[0]
            .contains("needs a positive integer, not \"zero\"")
    );
}

#[test]
fn resource_limits_must_exceed_requested_resources() {
    let mut new = base();
    new.pod_specs[0].task_specs[0].resource_set.resource_limits =
        Some(berth_spec::ResourceLimits {
            cpus: Some(LimitValue::Amount(0.05)),
            memory: Some(LimitValue::Unlimited),
        });
    assert_eq!(
        run("ResourceLimitsMustExceedRequestedResources", None, &new),
        [
            "Field: 'ResourceLimits[hello-server:cpus]'; Value: '0.05'; Message: 'The cpus limit of task hello-server (0.05) is below its request (0.1); a limit must be at least the request or unlimited.'; Fatal: false"
        ]
    );
    // Parsing already rejects such specs, with a line.
    let yaml = BASE.replace(
        "        memory: 32\n",
        "        memory: 32\n        resource-limits:\n          memory: 16\n",
    );
    let err = parse_spec("svc.yml", &yaml, &env(&[]), &NoFiles)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "svc.yml:13: pods.hello.tasks.server.resource-limits.memory: \"16\" is below the requested 32 MB of memory; expected a number ≥ the requested 32 MB of memory, or \"unlimited\""
    );
}

#[test]
fn region_cannot_change() {
    let mut old = base();
    let mut new = base();
    new.region = Some("us-east".to_owned());
    // No region before: setting one is fine.
    assert!(run("RegionCannotChange", Some(&old), &new).is_empty());
    old.region = Some("us-west".to_owned());
    assert_eq!(
        run("RegionCannotChange", Some(&old), &new),
        [
            "Field: 'region'; Transition: 'us-west' => 'us-east'; Message: 'Region for old service must remain the same across deployments.'; Fatal: false"
        ]
    );
    new.region = None;
    assert_eq!(run("RegionCannotChange", Some(&old), &new).len(), 1);
}

#[test]
fn equivalence_ignores_count_placement_decommission_and_roles() {
    let old = base();
    let mut new = base();
    let (a, b) = (&old.pod_specs[0], &mut new.pod_specs[0]);
    b.count = 7;
    b.placement_rule = None;
    b.allow_decommission = true;
    for r in &mut b.task_specs[0].resource_set.resource_specifications {
        if let berth_spec::ResourceSpec::Scalar(s) = r {
            s.role = "new-role".to_owned();
            s.pre_reserved_role = "slave_public".to_owned();
        }
    }
    b.task_specs[0].resource_set.volume_specifications[0].role = "new-role".to_owned();
    assert!(pod_specs_equivalent_for_update(a, b));
    b.task_specs[0].command_spec.value = "sleep 2000".to_owned();
    assert!(!pod_specs_equivalent_for_update(a, b));
    let mut c = a.clone();
    c.ipc_mode = Some(IpcMode::Private);
    assert!(!pod_specs_equivalent_for_update(a, &c));
}

#[test]
fn diff_of_specs() {
    let old = base();
    assert_eq!(spec_diff(&old, &old), None);
    let new = spec(&BASE.replace("        memory: 64\n", "        memory: 128\n"));
    let diff = spec_diff(&old, &new).unwrap_or_default();
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(lines[0], "--- ServiceSpec.old");
    assert_eq!(lines[1], "+++ ServiceSpec.new");
    assert!(lines[2].starts_with("@@ -"), "{diff}");
    let changed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        changed,
        [
            "-                    \"value\": 64.0",
            "+                    \"value\": 128.0"
        ],
        "{diff}"
    );
    // Two lines of context around the change.
    assert_eq!(lines.len(), 3 + 2 + 2 + 2, "{diff}");
}
