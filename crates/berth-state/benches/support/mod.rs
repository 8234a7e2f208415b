//! What the store benchmarks share: durable task records committed 1,000 per transaction
//! (the scheduler's group commit) and one per transaction, on any persister.

use std::hint::black_box;

use berth_mesos::{TaskInfo, TaskStatus};
use berth_state::{Persister, StateStore};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Throughput};

/// Records per group commit.
pub const GROUP: usize = 1_000;

/// Registers `group_1000_tasks` and `one_task_per_tx` in `group`, writing `records` (cycled)
/// through `store`.
pub fn commits<P: Persister>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    store: &mut StateStore<P>,
    records: &[(TaskInfo, TaskStatus)],
) {
    let mut next = 0;
    group.throughput(Throughput::Elements(GROUP as u64));
    group.bench_function("group_1000_tasks", |b| {
        b.iter(|| {
            let mut tx = store.transaction();
            for _ in 0..GROUP {
                let (info, status) = &records[next % records.len()];
                tx.set_task_info(info).set_task_status(&info.name, status);
                next += 1;
            }
            super::common::ok(store.commit(black_box(tx)));
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_task_per_tx", |b| {
        b.iter(|| {
            let (info, status) = &records[next % records.len()];
            let mut tx = store.transaction();
            tx.set_task_info(info).set_task_status(&info.name, status);
            super::common::ok(store.commit(black_box(tx)));
            next += 1;
        });
    });
}
