//! Placement tests: every operator, pass and fail, with exact reasons.

use super::*;
use berth_mesos::{
    AgentId, DomainInfo, FaultDomain, FrameworkId, Label, Labels, NamedInfo, OfferId, Scalar,
    TaskId,
};

fn offer(host: &str, zone: Option<(&str, &str)>, attributes: Vec<Attribute>) -> Offer {
    Offer {
        id: OfferId::new("o"),
        framework_id: FrameworkId::new("fw"),
        agent_id: AgentId::new(format!("agent-{host}")),
        hostname: host.into(),
        domain: zone.map(|(region, zone)| DomainInfo {
            fault_domain: Some(FaultDomain {
                region: NamedInfo {
                    name: region.into(),
                },
                zone: NamedInfo { name: zone.into() },
            }),
        }),
        attributes,
        resources: vec![],
        executor_ids: vec![],
    }
}

fn scalar_attr(name: &str, v: f64) -> Attribute {
    Attribute {
        name: name.into(),
        kind: ValueType::Scalar,
        scalar: Some(Scalar { value: v }),
        ranges: None,
        set: None,
        text: None,
    }
}

fn tp(
    task: &str,
    pod_type: &str,
    index: u32,
    host: &str,
    zone: &str,
    rack: Option<&str>,
) -> TaskPlacement {
    TaskPlacement {
        task_name: task.into(),
        pod_type: pod_type.into(),
        index,
        hostname: host.into(),
        zone: Some(zone.into()),
        region: Some("r1".into()),
        attributes: rack
            .map(|r| vec![("rack".to_owned(), r.to_owned())])
            .unwrap_or_default(),
    }
}

fn c(field: PlacementField, operator: PlacementOperator) -> Constraint {
    Constraint { field, operator }
}

fn rule(constraints: Vec<Constraint>) -> PlacementRule {
    let source = constraints
        .iter()
        .map(constraint_label)
        .collect::<Vec<_>>()
        .join(",");
    PlacementRule::Constraints {
        source,
        constraints,
    }
}

fn attr(name: &str) -> PlacementField {
    PlacementField::Attribute(name.into())
}

/// hello-0 on h1 (z1, rack r1), hello-1 on h2 (z1, rack r2), world-0 on h3 (z2).
fn index() -> PlacementIndex {
    let mut idx = PlacementIndex::new();
    idx.add_task(tp("hello-0-server", "hello", 0, "h1", "z1", Some("r1")));
    idx.add_task(tp("hello-1-server", "hello", 1, "h2", "z1", Some("r2")));
    idx.add_task(tp("world-0-server", "world", 0, "h3", "z2", None));
    idx
}

/// One child outcome of placing `pod_type`-`index` with a one-constraint rule.
fn judge(idx: &PlacementIndex, pod_type: &str, index: u32, cons: Constraint, o: &Offer) -> Outcome {
    let out = idx.evaluate_placement(Some(&rule(vec![cons])), None, pod_type, index, o);
    assert_eq!(out.children.len(), 1);
    assert_eq!(out.pass, out.children[0].pass);
    out.children[0].clone()
}

#[test]
fn every_operator_pass_and_fail_reasons() {
    use PlacementField::{Hostname, Region, Zone};
    use PlacementOperator::*;
    let idx = index();
    let rack = |r: &str| vec![Attribute::text("rack", r)];
    let z1 = Some(("r1", "z1"));
    let z2 = Some(("r1", "z2"));
    let cases: Vec<(Constraint, Offer, bool, &str, &str)> = vec![
        (
            c(Hostname, Unique),
            offer("h1", z1, vec![]),
            false,
            "UniqueRule",
            "hostname:UNIQUE: hostname 'h1' already has 1 task of pod type 'hello', at most 1 allowed",
        ),
        (
            c(Hostname, Unique),
            offer("h3", z2, vec![]),
            true,
            "UniqueRule",
            "hostname:UNIQUE: hostname 'h3' has 0 tasks of pod type 'hello', at most 1 allowed",
        ),
        (
            c(Zone, MaxPer(2)),
            offer("h9", z1, vec![]),
            false,
            "MaxPerRule",
            "@zone:MAX_PER:2: zone 'z1' already has 2 tasks of pod type 'hello', at most 2 allowed",
        ),
        (
            c(Zone, MaxPer(3)),
            offer("h9", z1, vec![]),
            true,
            "MaxPerRule",
            "@zone:MAX_PER:3: zone 'z1' has 2 tasks of pod type 'hello', at most 3 allowed",
        ),
        (
            c(Zone, MaxPer(3)),
            offer("h9", None, vec![]),
            false,
            "MaxPerRule",
            "@zone:MAX_PER:3: offer has no zone",
        ),
        (
            c(Region, Unique),
            offer("h9", None, vec![]),
            false,
            "UniqueRule",
            "@region:UNIQUE: offer has no region",
        ),
        (
            c(attr("rack"), Unique),
            offer("h9", z1, rack("r1")),
            false,
            "UniqueRule",
            "rack:UNIQUE: rack 'r1' already has 1 task of pod type 'hello', at most 1 allowed",
        ),
        (
            c(attr("rack"), Unique),
            offer("h9", z1, vec![]),
            false,
            "UniqueRule",
            "rack:UNIQUE: offer has no attribute 'rack'",
        ),
        (
            c(attr("rack"), Cluster(Some("r1".into()))),
            offer("h9", z1, rack("r1")),
            true,
            "ClusterRule",
            "rack:CLUSTER:r1: rack is 'r1'",
        ),
        (
            c(attr("rack"), Cluster(Some("r1".into()))),
            offer("h9", z1, rack("r2")),
            false,
            "ClusterRule",
            "rack:CLUSTER:r1: rack is 'r2', not 'r1'",
        ),
        (
            c(Hostname, Is("h1".into())),
            offer("h1", z1, vec![]),
            true,
            "IsRule",
            "hostname:IS:h1: hostname is 'h1'",
        ),
        (
            c(Hostname, Is("h1".into())),
            offer("h2", z1, vec![]),
            false,
            "IsRule",
            "hostname:IS:h1: hostname is 'h2', not 'h1'",
        ),
        (
            c(attr("cores"), Is("4".into())),
            offer("h2", z1, vec![scalar_attr("cores", 4.0)]),
            true,
            "IsRule",
            "cores:IS:4: cores is '4.000'",
        ),
        (
            c(Hostname, IsNot("h1".into())),
            offer("h1", z1, vec![]),
            false,
            "IsNotRule",
            "hostname:IS_NOT:h1: hostname is 'h1'",
        ),
        (
            c(Hostname, IsNot("h1".into())),
            offer("h2", z1, vec![]),
            true,
            "IsNotRule",
            "hostname:IS_NOT:h1: hostname is 'h2', not 'h1'",
        ),
        (
            c(attr("rack"), IsNot("r9".into())),
            offer("h2", z1, vec![]),
            true,
            "IsNotRule",
            "rack:IS_NOT:r9: offer has no attribute 'rack'",
        ),
        (
            c(Zone, IsNot("z9".into())),
            offer("h2", None, vec![]),
            false,
            "IsNotRule",
            "@zone:IS_NOT:z9: offer has no zone",
        ),
        (
            c(Hostname, Like("h[12]".into())),
            offer("h2", z1, vec![]),
            true,
            "LikeRule",
            "hostname:LIKE:h[12]: hostname 'h2' matches 'h[12]'",
        ),
        (
            c(Hostname, Like("h[12]".into())),
            offer("h3", z1, vec![]),
            false,
            "LikeRule",
            "hostname:LIKE:h[12]: hostname 'h3' does not match 'h[12]'",
        ),
        (
            c(Hostname, Like("h".into())),
            offer("h1", z1, vec![]),
            false,
            "LikeRule",
            "hostname:LIKE:h: hostname 'h1' does not match 'h'",
        ),
        (
            c(attr("rack"), Like("r.*".into())),
            offer("h1", z1, rack("r7")),
            true,
            "LikeRule",
            "rack:LIKE:r.*: rack 'r7' matches 'r.*'",
        ),
        (
            c(attr("rack"), Like("r.*".into())),
            offer("h1", z1, vec![]),
            false,
            "LikeRule",
            "rack:LIKE:r.*: offer has no attribute 'rack'",
        ),
        (
            c(attr("rack"), Unlike("r[12]".into())),
            offer("h1", z1, vec![]),
            true,
            "UnlikeRule",
            "rack:UNLIKE:r[12]: offer has no attribute 'rack'",
        ),
        (
            c(attr("rack"), Unlike("r[12]".into())),
            offer("h1", z1, rack("r1")),
            false,
            "UnlikeRule",
            "rack:UNLIKE:r[12]: rack 'r1' matches 'r[12]'",
        ),
        (
            c(Zone, Unlike("z1".into())),
            offer("h1", z2, vec![]),
            true,
            "UnlikeRule",
            "@zone:UNLIKE:z1: zone 'z2' does not match 'z1'",
        ),
        (
            c(Zone, Like("z.*".into())),
            offer("h1", None, vec![]),
            false,
            "LikeRule",
            "@zone:LIKE:z.*: offer has no zone",
        ),
        (
            c(Hostname, GroupBy(None)),
            offer("h1", z1, vec![]),
            true,
            "GroupByRule",
            "hostname:GROUP_BY: hostname 'h1' has 1 task of pod type 'hello', the fewest of 2 known values",
        ),
        (
            c(Zone, GroupBy(None)),
            offer("h9", z2, vec![]),
            true,
            "GroupByRule",
            "@zone:GROUP_BY: zone 'z2' has 0 tasks of pod type 'hello', the fewest of 2 known values",
        ),
        (
            c(Zone, GroupBy(Some(2))),
            offer("h9", z1, vec![]),
            false,
            "GroupByRule",
            "@zone:GROUP_BY:2: zone 'z1' already has 2 tasks of pod type 'hello' while only 1 of 2 values are in use",
        ),
        (
            c(Zone, GroupBy(Some(2))),
            offer("h9", z2, vec![]),
            true,
            "GroupByRule",
            "@zone:GROUP_BY:2: zone 'z2' has no task of pod type 'hello' and only 1 of 2 values are in use",
        ),
        (
            c(Zone, GroupBy(None)),
            offer("h9", None, vec![]),
            false,
            "GroupByRule",
            "@zone:GROUP_BY: offer has no zone",
        ),
        (
            c(Hostname, Cluster(None)),
            offer("h1", z1, vec![]),
            false,
            "ClusterRule",
            "hostname:CLUSTER: tasks of pod type 'hello' are clustered on hostname 'h2', not 'h1'",
        ),
    ];
    for (cons, o, pass, source, reason) in cases {
        let out = judge(&idx, "hello", 2, cons.clone(), &o);
        assert_eq!(
            (out.pass, out.source.as_ref(), out.reason.as_str()),
            (pass, source, reason),
            "constraint {cons:?} on {}",
            o.hostname
        );
    }
}

#[test]
fn cluster_without_value_follows_the_first_task() {
    let idx = index();
    let cons = c(PlacementField::Hostname, PlacementOperator::Cluster(None));
    let out = judge(&idx, "world", 1, cons.clone(), &offer("h3", None, vec![]));
    assert!(out.pass);
    assert_eq!(
        out.reason,
        "hostname:CLUSTER: every task of pod type 'world' placed so far (1) is on hostname 'h3'"
    );
    let out = judge(&idx, "world", 1, cons.clone(), &offer("h1", None, vec![]));
    assert!(!out.pass);
    let fresh = judge(&idx, "other", 0, cons, &offer("h1", None, vec![]));
    assert!(fresh.pass);
    assert_eq!(
        fresh.reason,
        "hostname:CLUSTER: no task of pod type 'other' is placed yet; this pod fixes the hostname"
    );
}

#[test]
fn tasks_of_the_instance_being_placed_do_not_count() {
    let idx = index();
    let unique = c(PlacementField::Hostname, PlacementOperator::Unique);
    // hello-0 is on h1: re-placing hello-0 (replace) may use h1 again, hello-2 may not.
    assert!(judge(&idx, "hello", 0, unique.clone(), &offer("h1", None, vec![])).pass);
    assert!(!judge(&idx, "hello", 2, unique.clone(), &offer("h1", None, vec![])).pass);
    // Pod types are matched exactly: a "hello-world" pod type is not "hello".
    assert!(judge(&idx, "hello-world", 0, unique, &offer("h1", None, vec![])).pass);
    // CLUSTER: once hello-0 is excluded, all remaining hello tasks are on h2.
    let cluster = c(PlacementField::Hostname, PlacementOperator::Cluster(None));
    assert!(judge(&idx, "hello", 0, cluster, &offer("h2", None, vec![])).pass);
}

#[test]
fn group_by_balances_and_respects_the_minimum() {
    let mut idx = index();
    let by_host = c(PlacementField::Hostname, PlacementOperator::GroupBy(None));
    idx.add_task(tp("hello-3-server", "hello", 3, "h1", "z1", None));
    let out = judge(
        &idx,
        "hello",
        4,
        by_host.clone(),
        &offer("h1", None, vec![]),
    );
    assert!(!out.pass);
    assert_eq!(
        out.reason,
        "hostname:GROUP_BY: hostname 'h1' has 2 tasks of pod type 'hello' but another value has only 1"
    );
    assert!(
        judge(
            &idx,
            "hello",
            4,
            by_host.clone(),
            &offer("h2", None, vec![])
        )
        .pass
    );
    // Re-placing hello-3 (on h1): without it h1 and h2 are level again.
    assert!(
        judge(
            &idx,
            "hello",
            3,
            by_host.clone(),
            &offer("h1", None, vec![])
        )
        .pass
    );
    // Removing hello-1 leaves h2 without tasks: h1 (2) fails against... only known keys.
    assert!(idx.remove_task("hello-1-server"));
    assert!(!idx.remove_task("hello-1-server"));
    let out = judge(&idx, "hello", 4, by_host, &offer("h1", None, vec![]));
    assert!(out.pass, "only h1 is known now: {}", out.reason);
}

#[test]
fn stage_reasons_invalid_rules_and_regions() {
    let idx = index();
    let two = rule(vec![
        c(PlacementField::Hostname, PlacementOperator::Unique),
        c(PlacementField::Zone, PlacementOperator::MaxPer(5)),
    ]);
    let out = idx.evaluate_placement(
        Some(&two),
        None,
        "hello",
        2,
        &offer("h1", Some(("r1", "z1")), vec![]),
    );
    assert!(!out.pass);
    assert_eq!(out.source, stage::PLACEMENT);
    assert_eq!(
        out.reason,
        "Offer fails 1 of 2 constraints of placement rule 'hostname:UNIQUE,@zone:MAX_PER:5'"
    );
    let ok = idx.evaluate_placement(
        Some(&two),
        None,
        "hello",
        2,
        &offer("h7", Some(("r1", "z1")), vec![]),
    );
    assert_eq!(
        ok.reason,
        "Offer passes placement rule 'hostname:UNIQUE,@zone:MAX_PER:5'"
    );

    let invalid = PlacementRule::Invalid {
        source: "hostname:FOO".into(),
        error: "unknown operator 'FOO'".into(),
    };
    let out = idx.evaluate_placement(Some(&invalid), None, "hello", 0, &offer("h1", None, vec![]));
    assert!(!out.pass);
    assert_eq!(
        out.reason,
        "Invalid placement rule 'hostname:FOO': unknown operator 'FOO'"
    );

    let pin = RegionPin {
        region: "r1",
        configured: false,
    };
    let out = idx.evaluate_placement(
        None,
        Some(pin),
        "hello",
        0,
        &offer("h1", Some(("r2", "z")), vec![]),
    );
    assert!(!out.pass);
    assert_eq!(
        out.children[0].reason,
        "Offer region 'r2' is not the scheduler's local region 'r1'"
    );
    assert_eq!(out.children[0].source, "IsLocalRegionRule");
    let out = idx.evaluate_placement(None, Some(pin), "hello", 0, &offer("h1", None, vec![]));
    assert!(out.pass);
    assert_eq!(out.reason, "Offer passes the region requirement");
}

#[test]
fn invalid_regex_fails_and_precompile_reports_it() {
    let idx = index();
    let bad = c(
        PlacementField::Hostname,
        PlacementOperator::Like("(".into()),
    );
    let out = judge(&idx, "hello", 0, bad.clone(), &offer("h1", None, vec![]));
    assert!(!out.pass);
    assert!(
        out.reason
            .starts_with("hostname:LIKE:(: invalid regular expression '(':"),
        "{}",
        out.reason
    );
    let errors = idx.precompile(&rule(vec![bad]));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "(");
    // Cloning keeps compiled patterns.
    let copy = idx.clone();
    assert_eq!(copy.len(), 3);
}

#[test]
fn attribute_values_are_formatted_for_matching() {
    let ranges = Attribute {
        name: "ports".into(),
        kind: ValueType::Ranges,
        scalar: None,
        ranges: Some(berth_mesos::Ranges {
            range: vec![
                berth_mesos::Range { begin: 1, end: 2 },
                berth_mesos::Range { begin: 5, end: 9 },
            ],
        }),
        set: None,
        text: None,
    };
    let set = Attribute {
        name: "disks".into(),
        kind: ValueType::Set,
        scalar: None,
        ranges: None,
        set: Some(berth_mesos::Set {
            item: vec!["a".into(), "b".into()],
        }),
        text: None,
    };
    assert_eq!(attribute_value(&ranges), "[1-2,5-9]");
    assert_eq!(attribute_value(&set), "{a,b}");
    assert_eq!(attribute_value(&scalar_attr("x", 1.5)), "1.500");
    let o = offer(
        "h",
        None,
        vec![Attribute::text("rack", "r1"), scalar_attr("cores", 8.0)],
    );
    assert_eq!(offer_attributes_label(&o), "rack:r1;cores:8.000");
    let placed = TaskPlacement::from_offer("t-0-x", "t", 0, &o);
    assert_eq!(
        placed.attributes,
        vec![
            ("rack".into(), "r1".into()),
            ("cores".into(), "8.000".into())
        ]
    );
}

fn task_info(name: &str, labels: &[(&str, &str)]) -> TaskInfo {
    TaskInfo {
        name: name.into(),
        task_id: TaskId::new(format!("svc__{name}__1")),
        agent_id: AgentId::new("a"),
        resources: vec![],
        executor: None,
        command: None,
        health_check: None,
        check: None,
        kill_policy: None,
        labels: Labels {
            labels: labels
                .iter()
                .map(|(k, v)| Label {
                    key: (*k).to_owned().into(),
                    value: (*v).into(),
                })
                .collect(),
        },
        discovery: None,
        container: None,
    }
}

#[test]
fn index_reads_task_info_labels() {
    let good = task_info(
        "hello-0-server",
        &[
            ("task_type", "hello"),
            ("index", "0"),
            ("offer_hostname", "h1"),
            ("offer_zone", "z1"),
            ("offer_region", "r1"),
            ("offer_attributes", "rack:r1;url:http://x:1"),
        ],
    );
    let placed = TaskPlacement::from_task_info(&good).unwrap();
    assert_eq!(placed.zone.as_deref(), Some("z1"));
    assert_eq!(
        placed.attributes,
        vec![
            ("rack".into(), "r1".into()),
            ("url".into(), "http://x:1".into())
        ]
    );
    let missing = task_info("hello-1-server", &[("task_type", "hello"), ("index", "1")]);
    let bad_index = task_info(
        "hello-x-server",
        &[
            ("task_type", "hello"),
            ("index", "x"),
            ("offer_hostname", "h"),
        ],
    );
    let (idx, errors) = PlacementIndex::from_task_infos([&good, &missing, &bad_index]);
    assert_eq!(idx.len(), 1);
    assert_eq!(
        errors,
        vec![
            OfferError::MissingLabel {
                task: "hello-1-server".into(),
                label: "offer_hostname"
            },
            OfferError::InvalidLabel {
                task: "hello-x-server".into(),
                label: "index",
                value: "x".into()
            }
        ]
    );
    assert_eq!(idx.count("hello", &PlacementField::Hostname, "h1"), 1);
    assert_eq!(idx.count("hello", &attr("rack"), "r1"), 1);
    // Re-adding the same task name replaces it.
    let mut idx = idx;
    let mut moved = good.clone();
    moved.labels.set("offer_hostname", "h2");
    idx.add_task_info(&moved).unwrap();
    assert_eq!(idx.len(), 1);
    assert_eq!(idx.count("hello", &PlacementField::Hostname, "h1"), 0);
    assert_eq!(idx.count("hello", &PlacementField::Hostname, "h2"), 1);
    assert!(idx.remove_task("hello-0-server"));
    assert!(idx.is_empty());
    assert_eq!(idx.count("hello", &PlacementField::Hostname, "h2"), 0);
}

/// The histogram-based minimum agrees with a brute-force scan.
#[test]
fn key_counter_histogram_matches_brute_force() {
    let mut kc = KeyCounter::default();
    let mut brute: HashMap<String, u32> = HashMap::new();
    let mut x: u64 = 7;
    for step in 0..2000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = format!("k{}", (x >> 33) % 7);
        if (x >> 20).is_multiple_of(3) {
            kc.remove(&key);
            if let Some(c) = brute.get_mut(&key) {
                *c -= 1;
                if *c == 0 {
                    brute.remove(&key);
                }
            }
        } else {
            kc.add(&key);
            *brute.entry(key).or_insert(0) += 1;
        }
        let hist_min = kc.hist.keys().next().copied();
        assert_eq!(hist_min, brute.values().min().copied(), "step {step}");
        assert_eq!(kc.counts, brute);
        let levels: u32 = kc.hist.values().sum();
        assert_eq!(levels as usize, brute.len());
    }
}
