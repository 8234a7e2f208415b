//! Properties: placement rules hold while pods are placed one by one over random offers (the
//! index updated after each placement), and no offer, however odd, makes evaluation panic.

use crate::common;

use std::collections::HashMap;

use berth_mesos::{
    Attribute, DiskInfo, DiskRoot, DiskSource, DiskSourceType, FrameworkId, Label, LabelsHash,
    Offer, Range, Ranges, ReservationInfo, ReservationType, Resource, Scalar, TaskInfo, ValueType,
};
use berth_offer::{
    Evaluation, ExecutorResources, PlacementIndex, PodInstanceRequirement, PodState, RecoveryType,
    SequentialIds, ServiceContext, evaluate,
};
use berth_spec::placement::{Constraint, PlacementField, PlacementOperator, PlacementRule};
use berth_spec::{PodSpec, ServiceSpec, StringMap, VolumeType};
use common::*;
use proptest::prelude::*;

fn one_task_pod(rule: PlacementRule) -> PodSpec {
    with_placement(
        pod(
            "node",
            vec![task(
                "server",
                set("s", vec![scalar("cpus", 0.1), scalar("mem", 32.0)], vec![]),
            )],
        ),
        rule,
    )
}

fn rule(field: PlacementField, operator: PlacementOperator) -> PlacementRule {
    PlacementRule::Constraints {
        source: "generated".into(),
        constraints: vec![Constraint { field, operator }],
    }
}

struct Sim {
    svc: ServiceSpec,
    fw: FrameworkId,
    params: StringMap,
    index: PlacementIndex,
    ids: SequentialIds,
    next_index: u32,
    /// task name → zone (or hostname) key it landed on.
    placed: HashMap<String, String>,
}

impl Sim {
    fn new(p: PodSpec) -> Self {
        Self {
            svc: service(vec![p]),
            fw: FrameworkId::new("fw"),
            params: StringMap::new(),
            index: PlacementIndex::new(),
            ids: SequentialIds::new(),
            next_index: 0,
            placed: HashMap::new(),
        }
    }

    fn eval(&mut self, offer: &Offer) -> Evaluation {
        let ctx = ServiceContext {
            service: &self.svc,
            framework_id: &self.fw,
            target_config_id: "cfg",
            api_host: "api",
            api_port: 80,
            executor_resources: ExecutorResources::default(),
            local_region: None,
        };
        let req = PodInstanceRequirement {
            pod: &self.svc.pod_specs[0],
            index: self.next_index,
            tasks_to_launch: vec!["server".into()],
            recovery: RecoveryType::None,
            parameters: &self.params,
        };
        evaluate(
            &req,
            &ctx,
            &PodState::empty(),
            &self.index,
            offer,
            &mut self.ids,
        )
    }

    /// Tries the offers in order; places the next pod instance on the first that passes.
    /// Returns the key (zone, or hostname without zones) it landed on.
    fn place(&mut self, offers: &[Offer]) -> Option<String> {
        for o in offers {
            let ev = self.eval(o);
            if ev.passed() {
                for t in &ev.task_infos {
                    self.index.add_task_info(t).expect("labels");
                    let key = o.zone().map_or_else(|| o.hostname.clone(), str::to_owned);
                    self.placed.insert(t.name.clone(), key.clone());
                }
                self.next_index += 1;
                return Some(key_of(o));
            }
        }
        None
    }

    fn counts(&self) -> HashMap<String, usize> {
        let mut c = HashMap::new();
        for k in self.placed.values() {
            *c.entry(k.clone()).or_insert(0) += 1;
        }
        c
    }

    fn remove(&mut self, task_name: &str) {
        self.index.remove_task(task_name);
        self.placed.remove(task_name);
    }
}

fn key_of(o: &Offer) -> String {
    o.zone().map_or_else(|| o.hostname.clone(), str::to_owned)
}

fn host_offer(n: usize, host: usize, zone: Option<usize>) -> Offer {
    let o = offer(&format!("o{n}"), &format!("host-{host}"), big_agent());
    match zone {
        Some(z) => with_domain(o, "region", &format!("zone-{z}")),
        None => o,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// UNIQUE hostname: never two tasks of the pod type on one host, also across removals.
    #[test]
    fn unique_never_doubles_a_host(
        rounds in prop::collection::vec((prop::collection::vec(0usize..6, 1..8), any::<bool>()), 1..25)
    ) {
        let mut sim = Sim::new(one_task_pod(rule(PlacementField::Hostname, PlacementOperator::Unique)));
        for (n, (hosts, remove_one)) in rounds.iter().enumerate() {
            let offers: Vec<Offer> = hosts.iter().enumerate().map(|(i, h)| host_offer(n * 10 + i, *h, None)).collect();
            sim.place(&offers);
            prop_assert!(sim.counts().values().all(|c| *c <= 1), "{:?}", sim.counts());
            if *remove_one && let Some(name) = sim.placed.keys().min().cloned() {
                sim.remove(&name);
            }
        }
    }

    /// MAX_PER n on zones: never more than n tasks of the pod type in a zone.
    #[test]
    fn max_per_is_never_exceeded(
        n in 1u32..4,
        rounds in prop::collection::vec(prop::collection::vec((0usize..12, 0usize..3), 1..6), 1..30)
    ) {
        let mut sim = Sim::new(one_task_pod(rule(PlacementField::Zone, PlacementOperator::MaxPer(n))));
        for (r, offers) in rounds.iter().enumerate() {
            let offers: Vec<Offer> = offers.iter().enumerate().map(|(i, (h, z))| host_offer(r * 10 + i, *h, Some(*z))).collect();
            sim.place(&offers);
            prop_assert!(sim.counts().values().all(|c| *c <= n as usize), "n={} {:?}", n, sim.counts());
        }
    }

    /// GROUP_BY:k over k zones, with every zone offered each round (in random order): all k
    /// zones get used first, and the spread stays within one task.
    #[test]
    fn group_by_with_count_stays_balanced(
        k in 2usize..5,
        orders in prop::collection::vec(prop::collection::vec(0usize..16, 4..10), 1..30)
    ) {
        let mut sim = Sim::new(one_task_pod(rule(PlacementField::Zone, PlacementOperator::GroupBy(Some(k as u32)))));
        for (r, order) in orders.iter().enumerate() {
            // Every zone once, then extra random ones, shuffled by the generated keys.
            let mut zones: Vec<(usize, usize)> = (0..k).map(|z| (order[z % order.len()], z)).collect();
            zones.extend(order.iter().map(|x| (*x, x % k)));
            zones.sort();
            let offers: Vec<Offer> = zones.iter().enumerate().map(|(i, (_, z))| host_offer(r * 100 + i, i, Some(*z))).collect();
            let placed = sim.place(&offers);
            prop_assert!(placed.is_some(), "an offer of every zone was available");
            let counts = sim.counts();
            let all: Vec<usize> = (0..k).map(|z| counts.get(&format!("zone-{z}")).copied().unwrap_or(0)).collect();
            let max = all.iter().max().copied().unwrap_or(0);
            let min = all.iter().min().copied().unwrap_or(0);
            prop_assert!(max - min <= 1, "unbalanced after {} placements: {:?}", r + 1, all);
        }
    }

    /// GROUP_BY without a count: each placement lands on a zone whose count was the minimum
    /// over the zones known at that time (zones with tasks, plus the offer's zone).
    #[test]
    fn group_by_places_on_a_minimal_key(
        offers in prop::collection::vec(prop::collection::vec(0usize..4, 1..6), 1..30)
    ) {
        let mut sim = Sim::new(one_task_pod(rule(PlacementField::Zone, PlacementOperator::GroupBy(None))));
        for (r, zones) in offers.iter().enumerate() {
            let before = sim.counts();
            let offers: Vec<Offer> = zones.iter().enumerate().map(|(i, z)| host_offer(r * 10 + i, i, Some(*z))).collect();
            if let Some(key) = sim.place(&offers) {
                let here = before.get(&key).copied().unwrap_or(0);
                let min_used = before.values().min().copied().unwrap_or(0);
                prop_assert!(here <= min_used, "placed on {} with {} tasks, minimum was {}", key, here, min_used);
            }
        }
    }
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(1e300),
        0.0f64..10_000.0,
        any::<f64>(),
    ]
}

fn arb_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        0u64..70_000,
        any::<u64>()
    ]
}

fn arb_resource() -> impl Strategy<Value = Resource> {
    let name = prop_oneof![
        Just("cpus"),
        Just("mem"),
        Just("disk"),
        Just("ports"),
        Just("gpus"),
        Just("odd")
    ];
    let kind = prop_oneof![
        Just(ValueType::Scalar),
        Just(ValueType::Ranges),
        Just(ValueType::Set),
        Just(ValueType::Text)
    ];
    let ranges = prop::collection::vec((arb_u64(), arb_u64()), 0..4);
    let resv = prop::option::of((
        any::<bool>(),
        prop_oneof![Just("*"), Just(ROLE), Just("slave_public"), Just("other")],
        prop::option::of(prop_oneof![Just("rid-1"), Just("rid-2"), Just("")]),
    ));
    let disk = prop::option::of((
        prop::option::of(any::<bool>()),
        prop::option::of(prop_oneof![Just("ssd"), Just("hdd")]),
        any::<bool>(),
    ));
    (name, kind, prop::option::of(arb_f64()), ranges, resv, disk).prop_map(
        |(name, kind, scalar, ranges, resv, disk)| Resource {
            name: name.into(),
            kind,
            scalar: scalar.map(|value| Scalar { value }),
            ranges: (!ranges.is_empty()).then(|| {
                Box::new(Ranges {
                    range: ranges
                        .into_iter()
                        .map(|(begin, end)| Range { begin, end })
                        .collect(),
                })
            }),
            set: None,
            reservations: resv
                .map(|(dynamic, role, id)| {
                    vec![ReservationInfo {
                        kind: if dynamic {
                            ReservationType::Dynamic
                        } else {
                            ReservationType::Static
                        },
                        role: role.into(),
                        principal: None,
                        labels: id.map(|id| LabelsHash {
                            labels: vec![Label {
                                key: "resource_id".into(),
                                value: id.into(),
                            }],
                        }),
                    }]
                })
                .unwrap_or_default()
                .into(),
            disk: disk.map(|(source, profile, volume)| {
                Box::new(DiskInfo {
                    persistence: volume.then(|| berth_mesos::Persistence {
                        id: "p".into(),
                        principal: None,
                    }),
                    volume: None,
                    source: source.map(|mount| DiskSource {
                        kind: if mount {
                            DiskSourceType::Mount
                        } else {
                            DiskSourceType::Path
                        },
                        mount: Some(DiskRoot { root: "/m".into() }),
                        path: None,
                        profile: profile.map(str::to_owned),
                    }),
                })
            }),
        },
    )
}

fn arb_offer() -> impl Strategy<Value = Offer> {
    (
        prop::collection::vec(arb_resource(), 0..12),
        prop::option::of(("[a-z]{0,3}", "[a-z]{0,3}")),
        prop::collection::vec(("[a-z]{1,3}", arb_f64(), any::<bool>()), 0..3),
        "[a-z0-9.]{0,8}",
    )
        .prop_map(|(resources, domain, attrs, host)| {
            let mut o = offer("o", &host, resources);
            if let Some((r, z)) = domain {
                o = with_domain(o, &r, &z);
            }
            o.attributes = attrs
                .into_iter()
                .map(|(name, v, text)| {
                    if text {
                        Attribute::text(&name, &format!("{v}"))
                    } else {
                        Attribute {
                            name,
                            kind: ValueType::Scalar,
                            scalar: Some(Scalar { value: v }),
                            ranges: None,
                            set: None,
                            text: None,
                        }
                    }
                })
                .collect();
            o
        })
}

fn rich_pod() -> PodSpec {
    let mut p = pod(
        "rich",
        vec![
            task(
                "a",
                set(
                    "a",
                    vec![
                        scalar("cpus", 0.5),
                        scalar("mem", 64.0),
                        port("p", 0, Some("P")),
                        ranged_port("q", Some(100), Some(200)),
                    ],
                    vec![volume(VolumeType::Mount, "m", 10)],
                ),
            ),
            task(
                "b",
                set(
                    "b",
                    vec![scalar("gpus", 1.0), port("f", 31000, None)],
                    vec![volume(VolumeType::Root, "r", 5)],
                ),
            ),
        ],
    );
    p.placement_rule = Some(PlacementRule::Constraints {
        source: "generated".into(),
        constraints: vec![
            Constraint {
                field: PlacementField::Attribute("abc".into()),
                operator: PlacementOperator::Like("a.*".into()),
            },
            Constraint {
                field: PlacementField::Zone,
                operator: PlacementOperator::GroupBy(Some(2)),
            },
            Constraint {
                field: PlacementField::Hostname,
                operator: PlacementOperator::MaxPer(2),
            },
        ],
    });
    p
}

fn stored_with_ids() -> Vec<TaskInfo> {
    // A stored TaskInfo whose resources carry ids that the random offers sometimes hold.
    let mut cpus = Resource::scalar("cpus", 0.5);
    cpus.reservations.push(ReservationInfo {
        kind: ReservationType::Dynamic,
        role: ROLE.into(),
        principal: None,
        labels: Some(LabelsHash {
            labels: vec![Label {
                key: "resource_id".into(),
                value: "rid-1".into(),
            }],
        }),
    });
    let mut port = Resource::ranges(
        "ports",
        vec![Range {
            begin: 0,
            end: u64::MAX,
        }],
    );
    port.reservations = cpus.reservations.clone();
    port.reservations[0].labels = Some(LabelsHash {
        labels: vec![Label {
            key: "resource_id".into(),
            value: "rid-2".into(),
        }],
    });
    vec![TaskInfo {
        name: "rich-0-a".into(),
        task_id: berth_mesos::TaskId::new("x"),
        agent_id: berth_mesos::AgentId::new("a"),
        resources: vec![cpus, port],
        executor: None,
        command: None,
        health_check: None,
        check: None,
        kill_policy: None,
        labels: Default::default(),
        discovery: None,
        container: None,
    }]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary offers (NaN/negative/huge scalars, inverted and extreme ranges, odd
    /// reservations and disks) never make evaluation or cleanup panic, in either mode.
    #[test]
    fn no_panic_on_arbitrary_offers(o in arb_offer(), existing in any::<bool>(), launch_b in any::<bool>()) {
        let svc = service(vec![rich_pod()]);
        let fw = FrameworkId::new("fw");
        let params = StringMap::new();
        let ctx = ServiceContext {
            service: &svc,
            framework_id: &fw,
            target_config_id: "cfg",
            api_host: "api",
            api_port: 80,
            executor_resources: ExecutorResources { cpus: f64::NAN, mem: -1.0, disk: 1e300 },
            local_region: Some("r"),
        };
        let mut tasks = vec!["a".to_owned()];
        if launch_b {
            tasks.push("b".into());
        }
        let req = PodInstanceRequirement { pod: &svc.pod_specs[0], index: 0, tasks_to_launch: tasks, recovery: RecoveryType::Transient, parameters: &params };
        let stored = if existing { stored_with_ids() } else { vec![] };
        let state = PodState { task_infos: &stored, statuses: &[] };
        let mut index = PlacementIndex::new();
        index.add_task(berth_offer::TaskPlacement::from_offer("rich-1-a", "rich", 1, &o));
        let ev = evaluate(&req, &ctx, &state, &index, &o, &mut SequentialIds::new());
        let _ = ev.render(1, &o.id, "rich-0:[a]");
        let (failed, total) = ev.failed_stage_count();
        prop_assert!(failed <= total);
        prop_assert_eq!(ev.passed(), failed == 0);
        if !ev.passed() {
            prop_assert!(ev.operations.is_empty() && ev.task_infos.is_empty());
        }
        let _ = berth_offer::cleanup_operations(&o, ROLE, &Default::default());
    }
}
