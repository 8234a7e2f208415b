//! Offer evaluation throughput: one pod instance against many offers.
//!
//! A 3-task pod (4 ports: 2 fixed, 2 dynamic; a ROOT and a MOUNT volume; `hostname:UNIQUE`)
//! is evaluated against 1,000 distinct offers, with 10,000 deployed tasks in the
//! `PlacementIndex`. Each iteration is one pod×offer evaluation (cycling through the offers).
//!
//! - `new_pod_passing`: every offer fits (fresh hosts): full cost incl. ids, operations and
//!   TaskInfos.
//! - `new_pod_mixed`: half of the offers are on hosts that already run the pod type, so
//!   UNIQUE refuses them (explain mode still runs every stage).
//! - `new_pod_refused`: every offer is refused by UNIQUE (the common case of a busy cluster:
//!   many offers explained and declined per accepted one).
//! - `existing_relaunch`: relaunch in place on previous reservations.

#[path = "../tests/common/mod.rs"]
mod common;

/// The allocator of the `berth` binary, so the figures are the product's, counting
/// allocations (one relaxed add each) so that each scenario reports its allocations too.
#[global_allocator]
static ALLOCATOR: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

/// Allocations (incl. reallocations) per call of `f`, over `n` calls.
fn allocations_per_call(n: u64, mut f: impl FnMut()) -> u64 {
    let before = allocations();
    for _ in 0..n {
        f();
    }
    (allocations() - before) / n
}

use std::hint::black_box;

use berth_mesos::{Attribute, FrameworkId, Offer, Resource};
use berth_offer::{
    ExecutorResources, PlacementIndex, PodInstanceRequirement, PodState, RecoveryType,
    SequentialIds, ServiceContext, TaskPlacement, evaluate,
};
use berth_spec::placement::{Constraint, PlacementField, PlacementOperator, PlacementRule};
use berth_spec::{PodSpec, StringMap, VolumeType};
use common::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};

fn bench_pod() -> PodSpec {
    let p = pod(
        "bench",
        vec![
            task(
                "alpha",
                set(
                    "alpha",
                    vec![
                        scalar("cpus", 1.0),
                        scalar("mem", 1024.0),
                        port("http", 8080, Some("HTTP")),
                        port("alpha-dyn", 0, Some("ALPHA")),
                    ],
                    vec![volume(VolumeType::Root, "data", 1000)],
                ),
            ),
            task(
                "beta",
                set(
                    "beta",
                    vec![
                        scalar("cpus", 0.5),
                        scalar("mem", 512.0),
                        port("beta-dyn", 0, Some("BETA")),
                    ],
                    vec![volume(VolumeType::Mount, "logs", 500)],
                ),
            ),
            task(
                "gamma",
                set(
                    "gamma",
                    vec![
                        scalar("cpus", 0.1),
                        scalar("mem", 128.0),
                        port("admin", 9090, None),
                    ],
                    vec![],
                ),
            ),
        ],
    );
    with_placement(
        p,
        PlacementRule::Constraints {
            source: "hostname:UNIQUE".into(),
            constraints: vec![Constraint {
                field: PlacementField::Hostname,
                operator: PlacementOperator::Unique,
            }],
        },
    )
}

fn agent_offer(i: usize) -> Offer {
    let o = offer(
        &format!("offer-{i}"),
        &format!("agent-{i}"),
        vec![
            Resource::scalar("cpus", 16.0),
            Resource::scalar("mem", 65536.0),
            Resource::scalar("disk", 500_000.0),
            Resource::ranges("ports", vec![r(1025, 2180), r(2182, 32000)]),
            mount_disk(2000.0, &format!("/mnt/disk-{i}"), None),
        ],
    );
    with_attributes(
        with_domain(o, "region-1", &format!("zone-{}", i % 3)),
        vec![Attribute::text("rack", &format!("rack-{}", i % 20))],
    )
}

/// 10,000 deployed tasks: 3,000 instances of the bench pod (3 tasks each) and 1,000 others.
/// The first `occupied` instances sit on the offer hosts `agent-0..occupied`.
fn deployed_index(occupied: u32) -> PlacementIndex {
    let mut index = PlacementIndex::new();
    for i in 0..3000u32 {
        let host = if i < occupied {
            format!("agent-{i}")
        } else {
            format!("deployed-{i}")
        };
        for t in ["alpha", "beta", "gamma"] {
            index.add_task(TaskPlacement {
                task_name: format!("bench-{}-{t}", i + 1),
                pod_type: "bench".into(),
                index: i + 1,
                hostname: host.clone(),
                zone: Some(format!("zone-{}", i % 3)),
                region: Some("region-1".into()),
                attributes: vec![("rack".into(), format!("rack-{}", i % 20))],
            });
        }
    }
    for i in 0..1000u32 {
        index.add_task(TaskPlacement {
            task_name: format!("other-{i}-server"),
            pod_type: "other".into(),
            index: i,
            hostname: format!("agent-{i}"),
            zone: None,
            region: None,
            attributes: vec![],
        });
    }
    assert_eq!(index.len(), 10_000);
    index
}

/// Prints the allocations of one evaluation (the mean over 1,000), then benchmarks it;
/// `one(i)` evaluates the `i`-th case.
fn bench_case<R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut one: impl FnMut(usize) -> R,
) {
    let mut k = 0usize;
    let allocs = allocations_per_call(1000, || {
        black_box(one(k));
        k += 1;
    });
    eprintln!("evaluate/{name}: {allocs} allocations per evaluation");
    let mut i = 0usize;
    group.bench_function(name, |b| {
        b.iter(|| {
            let r = one(i);
            i += 1;
            r
        });
    });
}

fn benches(c: &mut Criterion) {
    let svc = service(vec![bench_pod()]);
    let fw = FrameworkId::new("fw-bench");
    let params = StringMap::new();
    let ctx = ServiceContext {
        service: &svc,
        framework_id: &fw,
        target_config_id: "cfg",
        api_host: "api.bench.marathon.mesos",
        api_port: 8080,
        executor_resources: ExecutorResources::default(),
        local_region: None,
    };
    let all = vec!["alpha".to_owned(), "beta".to_owned(), "gamma".to_owned()];
    let req = PodInstanceRequirement {
        pod: &svc.pod_specs[0],
        index: 0,
        tasks_to_launch: all.clone(),
        recovery: RecoveryType::None,
        parameters: &params,
    };
    let offers: Vec<Offer> = (0..1000).map(agent_offer).collect();
    let mut group = c.benchmark_group("evaluate");

    for (name, occupied) in [
        ("new_pod_passing", 0),
        ("new_pod_mixed", 500),
        ("new_pod_refused", 1000),
    ] {
        let index = deployed_index(occupied);
        let mut ids = SequentialIds::new();
        let passing = offers
            .iter()
            .filter(|o| evaluate(&req, &ctx, &PodState::empty(), &index, o, &mut ids).passed())
            .count();
        assert_eq!(passing, 1000 - occupied as usize);
        bench_case(&mut group, name, |i| {
            let o = &offers[i % offers.len()];
            evaluate(
                &req,
                &ctx,
                &PodState::empty(),
                &index,
                black_box(o),
                &mut ids,
            )
        });
    }

    // Relaunch in place: each offer re-offers the reservations of a pod deployed on it.
    let index = deployed_index(0);
    let mut ids = SequentialIds::new();
    let deployed: Vec<(Offer, Vec<berth_mesos::TaskInfo>)> = offers
        .iter()
        .take(200)
        .map(|o| {
            let ev = evaluate(&req, &ctx, &PodState::empty(), &index, o, &mut ids);
            assert!(ev.passed());
            let mut again = reoffer(
                &o.id.value,
                &o.hostname,
                &ev.task_infos,
                vec![Resource::scalar("cpus", 2.0)],
            );
            again.attributes = o.attributes.clone();
            again.domain = o.domain.clone();
            (again, ev.task_infos)
        })
        .collect();
    let transient = PodInstanceRequirement {
        recovery: RecoveryType::Transient,
        ..req.clone()
    };
    bench_case(&mut group, "existing_relaunch", |i| {
        let (o, stored) = &deployed[i % deployed.len()];
        let state = PodState {
            task_infos: stored,
            statuses: &[],
        };
        evaluate(&transient, &ctx, &state, &index, black_box(o), &mut ids)
    });
    group.finish();
}

criterion_group!(evaluate_benches, benches);
criterion_main!(evaluate_benches);
