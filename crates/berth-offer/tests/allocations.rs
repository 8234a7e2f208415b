//! Allocation budget of one evaluation (a guard against needless copies on the hot path).
//!
//! Counts heap allocations with a counting global allocator (this test binary only).

mod common;

use berth_mesos::{FrameworkId, Offer, Resource};
use berth_offer::{
    ExecutorResources, PlacementIndex, PodInstanceRequirement, PodState, RecoveryType,
    SequentialIds, ServiceContext, TaskPlacement, evaluate,
};
use berth_spec::placement::{Constraint, PlacementField, PlacementOperator, PlacementRule};
use berth_spec::{StringMap, VolumeType};
use common::*;

#[global_allocator]
static GLOBAL: Counting<std::alloc::System> = Counting(std::alloc::System);

#[test]
fn evaluation_allocation_budget() {
    let p = with_placement(
        pod(
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
        ),
        PlacementRule::Constraints {
            source: "hostname:UNIQUE".into(),
            constraints: vec![Constraint {
                field: PlacementField::Hostname,
                operator: PlacementOperator::Unique,
            }],
        },
    );
    let svc = service(vec![p]);
    let fw = FrameworkId::new("fw");
    let params = StringMap::new();
    let ctx = ServiceContext {
        service: &svc,
        framework_id: &fw,
        target_config_id: "cfg",
        api_host: "api",
        api_port: 80,
        executor_resources: ExecutorResources::default(),
        local_region: None,
    };
    let req = PodInstanceRequirement {
        pod: &svc.pod_specs[0],
        index: 0,
        tasks_to_launch: vec!["alpha".into(), "beta".into(), "gamma".into()],
        recovery: RecoveryType::None,
        parameters: &params,
    };
    let mk = |host: &str| -> Offer {
        offer(
            "o",
            host,
            vec![
                Resource::scalar("cpus", 16.0),
                Resource::scalar("mem", 65536.0),
                Resource::scalar("disk", 500_000.0),
                Resource::ranges("ports", vec![r(1025, 32000)]),
                mount_disk(2000.0, "/mnt/d", None),
            ],
        )
    };
    let good = mk("free-host");
    let taken = mk("busy-host");
    let mut index = PlacementIndex::new();
    index.add_task(TaskPlacement::from_offer(
        "bench-1-alpha",
        "bench",
        1,
        &taken,
    ));
    let mut ids = SequentialIds::new();

    let count = |o: &Offer, ids: &mut SequentialIds| {
        let before = allocations();
        let ev = evaluate(&req, &ctx, &PodState::empty(), &index, o, ids);
        let n = allocations() - before;
        (ev.passed(), n)
    };
    let (passed, pass_allocs) = count(&good, &mut ids);
    assert!(passed);
    let (passed, fail_allocs) = count(&taken, &mut ids);
    assert!(!passed);
    println!("allocations: passing {pass_allocs}, refused {fail_allocs}");
    assert!(fail_allocs < 70, "refused offer: {fail_allocs} allocations");
    assert!(
        pass_allocs < 1000,
        "accepted offer: {pass_allocs} allocations"
    );
}
