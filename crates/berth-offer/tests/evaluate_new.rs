//! New-pod evaluation: reservations, volumes, ports, TaskInfo contents, rendering.

use crate::common;

use berth_mesos::{
    Attribute, CommandUri, FrameworkId, OfferId, Operation, ReservationType, TaskInfo, Variable,
};
use berth_offer::{
    Evaluation, ExecutorResources, PlacementIndex, PodInstanceRequirement, PodMode, PodState,
    RecoveryType, SequentialIds, ServiceContext, evaluate, step_label,
};
use berth_spec::placement::{Constraint, PlacementField, PlacementOperator, PlacementRule};
use berth_spec::{
    ConfigFileSpec, HealthCheckSpec, NetworkSpec, PodSpec, ReadinessCheckSpec, ServiceSpec,
    StringMap, VipSpec, VolumeType,
};
use common::*;

fn u(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

struct Fixture {
    svc: ServiceSpec,
    fw: FrameworkId,
    params: StringMap,
    local_region: Option<String>,
}

impl Fixture {
    fn new(pods: Vec<PodSpec>) -> Self {
        Self {
            svc: service(pods),
            fw: FrameworkId::new("fw-1"),
            params: StringMap::new(),
            local_region: None,
        }
    }

    fn ctx(&self) -> ServiceContext<'_> {
        ServiceContext {
            service: &self.svc,
            framework_id: &self.fw,
            target_config_id: "cfg-1",
            api_host: "api.hello-world.marathon.mesos",
            api_port: 8080,
            executor_resources: ExecutorResources::default(),
            local_region: self.local_region.as_deref(),
        }
    }

    fn req(
        &self,
        pod_type: &str,
        index: u32,
        tasks: &[&str],
        recovery: RecoveryType,
    ) -> PodInstanceRequirement<'_> {
        PodInstanceRequirement {
            pod: self.svc.pod(pod_type).expect("pod type"),
            index,
            tasks_to_launch: tasks.iter().map(|t| (*t).to_owned()).collect(),
            recovery,
            parameters: &self.params,
        }
    }

    fn eval(
        &self,
        pod_type: &str,
        tasks: &[&str],
        offer: &berth_mesos::Offer,
        ids: &mut SequentialIds,
    ) -> Evaluation {
        let req = self.req(pod_type, 0, tasks, RecoveryType::None);
        evaluate(
            &req,
            &self.ctx(),
            &PodState::empty(),
            &PlacementIndex::new(),
            offer,
            ids,
        )
    }
}

/// The hello pod: one task with a fixed and a dynamic port, cpus, mem, a ROOT volume, a
/// config template, checks, labels and env.
fn hello_pod() -> PodSpec {
    let mut t = task(
        "server",
        set(
            "server-resource-set",
            vec![
                scalar("cpus", 0.5),
                scalar("mem", 256.0),
                port("http", 8080, Some("HTTP_PORT")),
                port("admin", 0, Some("ADMIN_PORT")),
            ],
            vec![volume(VolumeType::Root, "hello-container-path", 25)],
        ),
    );
    t.command_spec.value = "echo hello >> hello-container-path/output && sleep $SLEEP".into();
    t.command_spec
        .environment
        .insert("SLEEP".into(), "1000".into());
    t.command_spec
        .environment
        .insert("TASK_NAME".into(), "overridden".into());
    t.task_labels.insert("custom".into(), "yes".into());
    t.config_files.push(ConfigFileSpec {
        name: "server.xml".into(),
        relative_path: "conf/server.xml".into(),
        template_content: "<x/>".into(),
    });
    t.health_check_spec = Some(HealthCheckSpec {
        command: "stat hello-container-path/output".into(),
        interval: 5,
        grace_period: 30,
        max_consecutive_failures: 3,
        delay: 0,
        timeout: 10,
    });
    t.readiness_check_spec = Some(ReadinessCheckSpec {
        command: "test -f ready".into(),
        interval: 5,
        timeout: 10,
        delay: 1,
    });
    t.kill_grace_period = 5;
    let mut p = pod("hello", vec![t]);
    p.uris.push("https://example.com/app.tgz".into());
    p
}

fn hello_offer() -> berth_mesos::Offer {
    let o = offer(
        "o-1",
        "10.0.0.1",
        vec![
            Resource::scalar("cpus", 4.0),
            Resource::scalar("mem", 8192.0),
            Resource::scalar("disk", 10_000.0),
            Resource::ranges("ports", vec![r(8080, 8080), r(31000, 32000)]),
        ],
    );
    with_attributes(
        with_domain(o, "us-west-2", "us-west-2a"),
        vec![Attribute::text("rack", "r1")],
    )
}

use berth_mesos::Resource;

fn env_pairs(t: &TaskInfo) -> Vec<(String, String)> {
    t.command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e| {
            e.variables
                .iter()
                .map(|Variable { name, value }| (name.to_string(), value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn new_pod_reserves_creates_and_launches() {
    let mut fx = Fixture::new(vec![hello_pod()]);
    fx.params.insert("PLAN_PARAM".into(), "x".into());
    let mut ids = SequentialIds::new();
    let ev = fx.eval("hello", &["server"], &hello_offer(), &mut ids);
    assert!(
        ev.passed(),
        "{}",
        ev.render(1, &OfferId::new("o-1"), "hello-0:[server]")
    );
    assert_eq!(ev.mode, PodMode::New);
    assert_eq!(
        op_types(&ev.operations),
        ["RESERVE", "CREATE", "LAUNCH_GROUP"]
    );
    assert_eq!(ev.failed_stage_count(), (0, 10));
    assert_eq!(
        ev.render(
            1,
            &OfferId::new("o-1"),
            &step_label("hello", 0, &["server".into()])
        ),
        "Offer 1, o-1: passed all 10 evaluation stages for hello-0:[server], returning 3 operations"
    );

    // Reservations: executor cpus, mem, disk; then http, admin, cpus, mem, volume disk.
    let reserved = reserved_in(&ev.operations);
    let names: Vec<_> = reserved.iter().map(|r| r.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "cpus", "mem", "disk", "ports", "ports", "cpus", "mem", "disk"
        ]
    );
    let ids_used: Vec<_> = reserved
        .iter()
        .map(|r| r.resource_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids_used, (2..=9).map(u).collect::<Vec<_>>());
    for res in &reserved {
        let resv = res.reservation().unwrap();
        assert_eq!(resv.kind, ReservationType::Dynamic);
        assert_eq!(resv.role, ROLE);
        assert_eq!(resv.principal.as_deref(), Some(PRINCIPAL));
        assert_eq!(
            resv.labels.as_ref().unwrap().get("framework_id"),
            Some("fw-1")
        );
        assert!(
            res.disk.as_ref().is_none_or(|d| d.persistence.is_none()),
            "RESERVE carries no volume"
        );
    }
    let created = created_in(&ev.operations);
    assert_eq!(created.len(), 1);
    let vol = &created[0];
    assert_eq!(vol.resource_id(), Some(u(9).as_str()));
    assert_eq!(vol.persistence_id(), Some(u(10).as_str()));
    let disk = vol.disk.as_ref().unwrap();
    assert_eq!(
        disk.persistence.as_ref().unwrap().principal.as_deref(),
        Some(PRINCIPAL)
    );
    assert_eq!(
        disk.volume.as_ref().unwrap().container_path,
        "hello-container-path"
    );
    assert_eq!(vol.scalar_value(), 25.0);

    // The TaskInfo.
    assert_eq!(ev.launched().len(), 1);
    let t = &ev.task_infos[0];
    let mut without_executor = t.clone();
    without_executor.executor = None;
    assert_eq!(
        ev.launched(),
        &[without_executor][..],
        "the group's tasks leave executor unset"
    );
    assert_eq!(t.name, "hello-0-server");
    assert_eq!(
        t.task_id.as_str(),
        format!("hello-world__hello-0-server__{}", u(11))
    );
    assert_eq!(t.agent_id.as_str(), "agent-10.0.0.1");
    let exec = t.executor.as_ref().unwrap();
    assert_eq!(
        exec.executor_id.as_str(),
        format!("hello-world__hello__{}", u(1))
    );
    assert_eq!(exec.name.as_deref(), Some("hello-0"));
    assert_eq!(exec.framework_id.as_ref().unwrap().as_str(), "fw-1");
    assert_eq!(exec.resources.len(), 3);
    assert_eq!(t.resources.len(), 5);
    assert_eq!(
        t.resources[4], created[0],
        "the task holds the created volume"
    );
    let Operation::LaunchGroup { launch_group } = &ev.operations[2] else {
        unreachable!()
    };
    assert_eq!(&launch_group.executor, exec);
    assert_eq!(launch_group.task_group.tasks, ev.launched());
    let group_json = serde_json::to_value(&ev.operations[2]).unwrap();
    assert!(
        group_json["launch_group"]["task_group"]["tasks"][0]
            .get("executor")
            .is_none()
    );

    let command = t.command.as_ref().unwrap();
    assert!(command.shell);
    assert_eq!(command.user.as_deref(), Some("nobody"));
    assert_eq!(
        command.uris,
        vec![
            CommandUri {
                value: "https://example.com/app.tgz".into(),
                executable: false,
                extract: true,
                output_file: None
            },
            CommandUri {
                value: "http://api.hello-world.marathon.mesos:8080/v1/artifacts/template/cfg-1/hello/server/server.xml".into(),
                executable: false,
                extract: false,
                output_file: Some("config-templates/server.xml".into())
            }
        ]
    );
    let env = env_pairs(t);
    let expected: Vec<(&str, &str)> = vec![
        ("TASK_NAME", "overridden"),
        ("hello-0-server", "true"),
        ("POD_INSTANCE_INDEX", "0"),
        ("FRAMEWORK_NAME", "hello-world"),
        (
            "FRAMEWORK_HOST",
            "hello-world.autoip.dcos.thisdcos.directory",
        ),
        ("FRAMEWORK_VIP_HOST", "hello-world.l4lb.thisdcos.directory"),
        ("SCHEDULER_API_HOSTNAME", "api.hello-world.marathon.mesos"),
        ("SCHEDULER_API_PORT", "8080"),
        ("PLACEMENT_REFERENCED_REGION", "false"),
        ("PLACEMENT_REFERENCED_ZONE", "false"),
        ("REGION", "us-west-2"),
        ("ZONE", "us-west-2a"),
        (
            "CONFIG_TEMPLATE_SERVER_XML",
            "config-templates/server.xml,conf/server.xml",
        ),
        ("HTTP_PORT", "8080"),
        ("ADMIN_PORT", "31000"),
        ("PLAN_PARAM", "x"),
        ("SLEEP", "1000"),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
    assert_eq!(env, expected);

    let labels: Vec<(&str, &str)> = t
        .labels
        .labels
        .iter()
        .map(|l| (l.key.as_ref(), l.value.as_str()))
        .collect();
    assert_eq!(
        labels,
        vec![
            ("target_configuration", "cfg-1"),
            ("task_type", "hello"),
            ("index", "0"),
            ("goal_state", "RUNNING"),
            ("offer_hostname", "10.0.0.1"),
            ("offer_attributes", "rack:r1"),
            ("offer_zone", "us-west-2a"),
            ("offer_region", "us-west-2"),
            ("custom", "yes"),
        ]
    );
    let hc = t.health_check.as_ref().unwrap();
    assert_eq!(hc.kind, "COMMAND");
    assert_eq!(hc.command.value, "stat hello-container-path/output");
    assert!(
        hc.command.environment.is_none(),
        "checks run in the task's environment"
    );
    assert_eq!(
        (
            hc.interval_seconds,
            hc.grace_period_seconds,
            hc.consecutive_failures,
            hc.timeout_seconds
        ),
        (5.0, 30.0, 3, 10.0)
    );
    let check = t.check.as_ref().unwrap();
    assert_eq!(check.command.command.value, "test -f ready");
    assert_eq!(check.delay_seconds, 1.0);
    assert_eq!(
        t.kill_policy.unwrap().grace_period.unwrap().nanoseconds,
        5_000_000_000
    );
    let d = t.discovery.as_ref().unwrap();
    assert_eq!(d.name.as_deref(), Some("hello-0-server"));
    assert_eq!(d.visibility, "CLUSTER");
    let ports: Vec<(u32, &str)> = d
        .ports
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .map(|p| (p.number, p.name.as_deref().unwrap()))
        .collect();
    assert_eq!(ports, vec![(8080, "http"), (31000, "admin")]);

    // JSON stays Mesos-shaped.
    let json = serde_json::to_value(&ev.operations[2]).unwrap();
    assert_eq!(json["type"], "LAUNCH_GROUP");
    assert_eq!(json["launch_group"]["executor"]["type"], "DEFAULT");
    assert_eq!(
        json["launch_group"]["task_group"]["tasks"][0]["command"]["uris"][1]["output_file"],
        "config-templates/server.xml"
    );
    let outcome = serde_json::to_value(&ev.outcome).unwrap();
    assert_eq!(outcome["pass"], true);
    assert_eq!(outcome["children"][0]["source"], "ExecutorEvaluationStage");
}

#[test]
fn refused_offer_runs_every_stage_renders_all_reasons_and_draws_no_ids() {
    let fx = Fixture::new(vec![hello_pod()]);
    let mut ids = SequentialIds::new();
    let o = offer(
        "o-3",
        "10.0.0.3",
        vec![
            Resource::scalar("cpus", 0.5),
            Resource::scalar("mem", 4096.0),
            Resource::scalar("disk", 1000.0),
            Resource::ranges("ports", vec![r(31000, 31010)]),
        ],
    );
    let ev = fx.eval("hello", &["server"], &o, &mut ids);
    assert!(!ev.passed());
    assert!(ev.operations.is_empty() && ev.task_infos.is_empty() && ev.launched().is_empty());
    assert_eq!(ids.issued(), 0);
    assert_eq!(ev.failed_stage_count(), (2, 10));
    let text = ev.render(3, &OfferId::new("o-3"), "hello-0:[server]");
    let expected = "\
Offer 3, o-3: failed 2 of 10 evaluation stages for hello-0:[server]:
  PASS(ExecutorEvaluationStage): Pod hello-0 gets a new executor
  PASS(ResourceEvaluationStage): Offer contains sufficient unreserved 'cpus' with role '*' for new executor reservation: requested 0.1, offered 0.5
  PASS(ResourceEvaluationStage): Offer contains sufficient unreserved 'mem' with role '*' for new executor reservation: requested 32.0, offered 4096.0
  PASS(ResourceEvaluationStage): Offer contains sufficient unreserved 'disk' with role '*' for new executor reservation: requested 256.0, offered 1000.0
  FAIL(PortEvaluationStage): Offer lacks unreserved port 8080 for 'http' with role '*': offered [31000-31010]
  PASS(PortEvaluationStage): Offer contains unreserved port 31000 for dynamic port 'admin' with role '*'
  FAIL(ResourceEvaluationStage): Offer lacks sufficient unreserved 'cpus' with role '*' for new reservation: requested 0.5, offered 0.4
  PASS(ResourceEvaluationStage): Offer contains sufficient unreserved 'mem' with role '*' for new reservation: requested 256.0, offered 4064.0
  PASS(VolumeEvaluationStage): Offer contains sufficient unreserved 'disk' with role '*' for new ROOT volume 'hello-container-path': requested 25.0
  PASS(LaunchEvaluationStage): Added launch operation for hello-0-server";
    assert_eq!(text, expected);
}

fn unique_rule() -> PlacementRule {
    PlacementRule::Constraints {
        source: "hostname:UNIQUE".into(),
        constraints: vec![Constraint {
            field: PlacementField::Hostname,
            operator: PlacementOperator::Unique,
        }],
    }
}

#[test]
fn placement_failure_renders_nested_children() {
    let p = with_placement(
        pod(
            "world",
            vec![task("server", set("s", vec![scalar("cpus", 1.0)], vec![]))],
        ),
        unique_rule(),
    );
    let fx = Fixture::new(vec![p]);
    let mut index = PlacementIndex::new();
    let o = offer("o-9", "10.0.0.9", big_agent());
    index.add_task(berth_offer::TaskPlacement::from_offer(
        "world-0-server",
        "world",
        0,
        &o,
    ));
    let req = fx.req("world", 1, &["server"], RecoveryType::None);
    let ev = evaluate(
        &req,
        &fx.ctx(),
        &PodState::empty(),
        &index,
        &o,
        &mut SequentialIds::new(),
    );
    let text = ev.render(7, &o.id, "world-1:[server]");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "Offer 7, o-9: failed 1 of 7 evaluation stages for world-1:[server]:"
    );
    assert_eq!(
        lines[2],
        "  FAIL(PlacementRuleEvaluationStage): Offer fails 1 of 1 constraints of placement rule 'hostname:UNIQUE'"
    );
    assert_eq!(
        lines[3],
        "    FAIL(UniqueRule): hostname:UNIQUE: hostname '10.0.0.9' already has 1 task of pod type 'world', at most 1 allowed"
    );
    // Another agent passes, and the env says the rule does not mention zone or region.
    let other = offer("o-10", "10.0.0.10", big_agent());
    let ev = evaluate(
        &req,
        &fx.ctx(),
        &PodState::empty(),
        &index,
        &other,
        &mut SequentialIds::new(),
    );
    assert!(ev.passed());
}

#[test]
fn tasks_not_launched_get_footprint_only_task_infos_and_shared_sets_are_reserved_once() {
    let shared = set("shared", vec![scalar("cpus", 0.2)], vec![]);
    let p = pod(
        "multi",
        vec![
            task("third", shared.clone()),
            task(
                "first",
                set("first-resource-set", vec![scalar("cpus", 0.1)], vec![]),
            ),
            task("second", shared),
        ],
    );
    let fx = Fixture::new(vec![p]);
    let mut ids = SequentialIds::new();
    let ev = fx.eval("multi", &["first"], &offer("o", "h", big_agent()), &mut ids);
    assert!(ev.passed());
    let names: Vec<_> = ev.task_infos.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["multi-0-first", "multi-0-second", "multi-0-third"]);
    assert_eq!(ev.launched().len(), 1);
    assert!(!ev.task_infos[0].task_id.as_str().is_empty());
    assert!(ev.task_infos[1].task_id.as_str().is_empty());
    assert!(ev.task_infos[2].task_id.as_str().is_empty());
    assert_eq!(
        ev.task_infos[1].resources, ev.task_infos[2].resources,
        "one reservation for a shared set"
    );
    assert_eq!(reserved_in(&ev.operations).len(), 3 + 1 + 1);
    let launches: Vec<_> = ev
        .outcome
        .children
        .iter()
        .filter(|c| c.source == "LaunchEvaluationStage")
        .map(|c| c.reason.as_str())
        .collect();
    assert_eq!(
        launches,
        [
            "Added launch operation for multi-0-first",
            "Added a footprint-only TaskInfo for multi-0-second (resources reserved, not launched)",
            "Added a footprint-only TaskInfo for multi-0-third (resources reserved, not launched)",
        ]
    );
}

#[test]
fn mount_volumes_take_a_whole_disk_and_root_volumes_an_exact_size() {
    let p = pod(
        "db",
        vec![task(
            "node",
            set(
                "node-resource-set",
                vec![scalar("cpus", 1.0)],
                vec![
                    volume(VolumeType::Mount, "data", 1000),
                    volume(VolumeType::Root, "logs", 10),
                ],
            ),
        )],
    );
    let fx = Fixture::new(vec![p]);
    let mut resources = big_agent();
    resources.push(mount_disk(500.0, "/mnt/small", None));
    resources.push(mount_disk(2000.0, "/mnt/big", None));
    let ev = fx.eval(
        "db",
        &["node"],
        &offer("o", "h", resources),
        &mut SequentialIds::new(),
    );
    assert!(ev.passed());
    let created = created_in(&ev.operations);
    assert_eq!(created.len(), 2);
    let mount = &created[0];
    assert_eq!(
        mount.scalar_value(),
        2000.0,
        "the whole MOUNT disk is reserved"
    );
    let src = mount.disk.as_ref().unwrap().source.as_ref().unwrap();
    assert_eq!(src.mount.as_ref().unwrap().root, "/mnt/big");
    assert_eq!(
        mount
            .disk
            .as_ref()
            .unwrap()
            .volume
            .as_ref()
            .unwrap()
            .container_path,
        "data"
    );
    assert_eq!(created[1].scalar_value(), 10.0);
    assert!(created[1].disk.as_ref().unwrap().source.is_none());

    // Profiles must match.
    let mut p = fx.svc.pod_specs[0].clone();
    p.task_specs[0].resource_set.volume_specifications[0].profiles = vec!["ssd".into()];
    let fx = Fixture::new(vec![p]);
    let mut resources = big_agent();
    resources.push(mount_disk(2000.0, "/mnt/big", Some("hdd")));
    let ev = fx.eval(
        "db",
        &["node"],
        &offer("o", "h", resources),
        &mut SequentialIds::new(),
    );
    assert!(!ev.passed());
    let fail = ev.outcome.children.iter().find(|c| !c.pass).unwrap();
    assert_eq!(
        fail.reason,
        "Offer lacks an unreserved MOUNT disk with profile ssd with role '*' for new volume 'data': no MOUNT disk of at least 1000.0 MB"
    );
}

#[test]
fn pre_reserved_roles_are_refined() {
    let pre = "slave_public";
    let mut portspec = port_spec("http", 0, Some("PORT"));
    portspec.pre_reserved_role = pre.into();
    let mut p = pod(
        "edge",
        vec![task(
            "proxy",
            set(
                "proxy-resource-set",
                vec![
                    scalar_pre("cpus", 1.0, pre),
                    berth_spec::ResourceSpec::Port(portspec),
                ],
                vec![volume_pre(VolumeType::Root, "state", 100, pre)],
            ),
        )],
    );
    p.pre_reserved_role = pre.into();
    let fx = Fixture::new(vec![p]);
    let resources = vec![
        Resource::scalar("cpus", 0.01),
        statically_reserved(Resource::scalar("cpus", 4.0), pre),
        statically_reserved(Resource::scalar("mem", 4096.0), pre),
        statically_reserved(Resource::scalar("disk", 10_000.0), pre),
        statically_reserved(Resource::ranges("ports", vec![r(80, 80), r(443, 443)]), pre),
    ];
    let ev = fx.eval(
        "edge",
        &["proxy"],
        &offer("o", "public-1", resources),
        &mut SequentialIds::new(),
    );
    assert!(
        ev.passed(),
        "{}",
        ev.render(1, &OfferId::new("o"), "edge-0:[proxy]")
    );
    for res in reserved_in(&ev.operations) {
        assert_eq!(res.reservations.len(), 2);
        assert_eq!(res.reservations[0].kind, ReservationType::Static);
        assert_eq!(res.reservations[0].role, pre);
        assert_eq!(res.reservations[1].kind, ReservationType::Dynamic);
        assert_eq!(res.reservations[1].role, format!("{pre}/{ROLE}"));
        assert!(res.resource_id().is_some());
    }
    let env = env_pairs(&ev.launched()[0]);
    assert!(env.contains(&("PORT".into(), "80".into())));

    // Unreserved '*' resources do not satisfy a pre-reserved pod.
    let ev = fx.eval(
        "edge",
        &["proxy"],
        &offer("o", "private-1", big_agent()),
        &mut SequentialIds::new(),
    );
    assert!(!ev.passed());
    assert!(ev.outcome.children.iter().any(|c| c.reason
        == "Offer lacks sufficient unreserved 'cpus' with role 'slave_public' for new reservation: requested 1.0, offered 0.0"));
}

#[test]
fn dynamic_ports_take_the_lowest_free_port_within_ranges_avoiding_pod_ports() {
    let p = pod(
        "ports",
        vec![
            task("a", set("a", vec![port("dyn", 0, Some("DYN"))], vec![])),
            task(
                "b",
                set(
                    "b",
                    vec![
                        port("fixed", 31000, None),
                        ranged_port("ranged", Some(31005), None),
                    ],
                    vec![],
                ),
            ),
            task(
                "c",
                set("c", vec![ranged_port("low", None, Some(30000))], vec![]),
            ),
        ],
    );
    let fx = Fixture::new(vec![p.clone()]);
    let o = offer(
        "o",
        "h",
        vec![
            Resource::scalar("cpus", 1.0),
            Resource::scalar("mem", 1024.0),
            Resource::scalar("disk", 1024.0),
            Resource::ranges("ports", vec![r(31000, 31010)]),
        ],
    );
    let ev = fx.eval("ports", &["a", "b", "c"], &o, &mut SequentialIds::new());
    let reasons: Vec<_> = ev
        .outcome
        .children
        .iter()
        .filter(|c| c.source == "PortEvaluationStage")
        .map(|c| (c.pass, c.reason.as_str()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                true,
                "Offer contains unreserved port 31001 for dynamic port 'dyn' with role '*'"
            ),
            (
                true,
                "Offer contains unreserved port 31000 for 'fixed' with role '*'"
            ),
            (
                true,
                "Offer contains unreserved port 31005 for dynamic port 'ranged' with role '*'"
            ),
            (
                false,
                "Offer lacks a free unreserved port for dynamic port 'low' with role '*' within [-30000]: offered [31002-31004,31006-31010]"
            ),
        ]
    );

    // On a virtual network ports are not reserved; dynamic ones come from 1025-2025.
    let mut vp = p;
    vp.networks.push(NetworkSpec {
        name: "dcos".into(),
        host_ports: vec![],
        container_ports: vec![],
        labels: StringMap::new(),
    });
    vp.task_specs.truncate(1);
    vp.task_specs.push(task(
        "f",
        set("f", vec![port("fixed", 1025, Some("FIXED"))], vec![]),
    ));
    let fx = Fixture::new(vec![vp]);
    let ev = fx.eval("ports", &["a", "f"], &o, &mut SequentialIds::new());
    assert!(ev.passed(), "{}", ev.render(1, &o.id, "x"));
    assert!(
        reserved_in(&ev.operations)
            .iter()
            .all(|r| r.name != "ports")
    );
    assert!(env_pairs(&ev.launched()[0]).contains(&("DYN".into(), "1026".into())));
    assert!(env_pairs(&ev.launched()[1]).contains(&("FIXED".into(), "1025".into())));
    let scope = ev.launched()[0].discovery.as_ref().unwrap();
    assert_eq!(scope.ports.as_ref().unwrap().ports[0].number, 1026);
}

#[test]
fn vips_discovery_prefix_and_region_env() {
    let mut ps = port_spec("web", 0, None);
    ps.vip = Some(VipSpec {
        prefix: "web".into(),
        port: 80,
    });
    ps.visibility = berth_spec::Visibility::External;
    let mut t = task(
        "server",
        set("s", vec![berth_spec::ResourceSpec::Port(ps)], vec![]),
    );
    t.discovery_spec = Some(berth_spec::DiscoverySpec {
        prefix: Some("front".into()),
        visibility: berth_spec::Visibility::Framework,
    });
    let mut p = pod("hello", vec![t]);
    p.placement_rule = Some(PlacementRule::Constraints {
        source: "@zone:GROUP_BY".into(),
        constraints: vec![Constraint {
            field: PlacementField::Zone,
            operator: PlacementOperator::GroupBy(None),
        }],
    });
    let fx = Fixture::new(vec![p]);
    let o = with_domain(offer("o", "h", big_agent()), "r1", "z1");
    let ev = fx.eval("hello", &["server"], &o, &mut SequentialIds::new());
    assert!(ev.passed());
    assert_eq!(
        ev.outcome.children[1].source,
        "PlacementRuleEvaluationStage"
    );
    assert_eq!(ev.outcome.children[5].source, "NamedVIPEvaluationStage");
    let t = &ev.task_infos[0];
    let d = t.discovery.as_ref().unwrap();
    assert_eq!(d.name.as_deref(), Some("front-0"));
    assert_eq!(d.visibility, "FRAMEWORK");
    let port = &d.ports.as_ref().unwrap().ports[0];
    assert_eq!(port.visibility.as_deref(), Some("EXTERNAL"));
    let labels = port.labels.as_ref().unwrap();
    assert_eq!(labels.get("VIP_0"), Some("web:80"));
    assert_eq!(labels.get("network-scope"), Some("host"));
    let env = env_pairs(t);
    assert!(env.contains(&("PLACEMENT_REFERENCED_ZONE".into(), "true".into())));
    assert!(env.contains(&("ZONE".into(), "z1".into())));
}

#[test]
fn local_region_keeps_pods_home_unless_the_rule_names_a_region() {
    let p = pod(
        "hello",
        vec![task("server", set("s", vec![scalar("cpus", 0.1)], vec![]))],
    );
    let mut fx = Fixture::new(vec![p]);
    fx.local_region = Some("home".into());
    let away = with_domain(offer("o", "h", big_agent()), "away", "z");
    let ev = fx.eval("hello", &["server"], &away, &mut SequentialIds::new());
    assert!(!ev.passed());
    let placement = &ev.outcome.children[1];
    assert_eq!(
        placement.children[0].reason,
        "Offer region 'away' is not the scheduler's local region 'home'"
    );
    let home = with_domain(offer("o", "h", big_agent()), "home", "z");
    assert!(
        fx.eval("hello", &["server"], &home, &mut SequentialIds::new())
            .passed()
    );
}

#[test]
fn unknown_tasks_fail_the_evaluation() {
    let fx = Fixture::new(vec![hello_pod()]);
    let ev = fx.eval(
        "hello",
        &["nope"],
        &hello_offer(),
        &mut SequentialIds::new(),
    );
    assert!(!ev.passed());
    let last = ev.outcome.children.last().unwrap();
    assert_eq!(
        last.reason,
        "Pod type 'hello' has no task named 'nope' to launch"
    );
}

#[test]
fn offers_with_only_a_path_disk_serve_root_volumes_from_it() {
    let p = pod(
        "hello",
        vec![task(
            "server",
            set("s", vec![], vec![volume(VolumeType::Root, "data", 100)]),
        )],
    );
    let fx = Fixture::new(vec![p]);
    let mut path = mount_disk(1000.0, "/var/lib/path", None);
    if let Some(src) = path.disk.as_mut().and_then(|d| d.source.as_mut()) {
        src.kind = berth_mesos::DiskSourceType::Path;
        src.path = src.mount.take();
    }
    let o = offer(
        "o",
        "h",
        vec![
            Resource::scalar("cpus", 1.0),
            Resource::scalar("mem", 64.0),
            path,
        ],
    );
    let ev = fx.eval("hello", &["server"], &o, &mut SequentialIds::new());
    assert!(ev.passed(), "{}", ev.render(1, &o.id, "x"));
    let created = created_in(&ev.operations);
    let src = created[0].disk.as_ref().unwrap().source.as_ref().unwrap();
    assert_eq!(src.kind, berth_mesos::DiskSourceType::Path);
}
