//! Benchmarks of the embedded store on the real disk (the target directory):
//!
//! - `commit/group_1000_tasks`: durable task records (TaskInfo + TaskStatus of a realistic
//!   ≈2.5 KB TaskInfo) committed 1,000 per transaction — the scheduler's group commit;
//! - `commit/one_task_per_tx`: the same records, one transaction (one fsync) each;
//! - `open/restart_10000_tasks`: the restart path with 10,000 stored tasks: open the file
//!   (lock, integrity check) and `StateStore::open` (bulk read, parse, cache);
//! - `open/load_10000_tasks`: `StateStore::open` alone over an already open file.
//!
//! Run: `cargo bench -p berth-state --bench store`. Throughput is reported in records/s.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::hint::black_box;
use std::time::Duration;

use berth_state::{EmbeddedPersister, StateStore};
use criterion::{Criterion, criterion_group, criterion_main};

const SERVICE: &str = "hello-world";
const TASKS: usize = 10_000;

fn commit(c: &mut Criterion) {
    let records = common::records(TASKS);
    let mut group = c.benchmark_group("commit");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15));

    let dir = common::temp_dir();
    let mut store = common::ok(StateStore::open(
        common::ok(EmbeddedPersister::open(dir.path())),
        SERVICE,
    ));
    support::commits(&mut group, &mut store, &records);
    group.finish();
}

fn open(c: &mut Criterion) {
    let dir = common::temp_dir();
    {
        let mut store = common::ok(StateStore::open(
            common::ok(EmbeddedPersister::open(dir.path())),
            SERVICE,
        ));
        for chunk in common::records(TASKS).chunks(support::GROUP) {
            let mut tx = store.transaction();
            for (info, status) in chunk {
                tx.set_task_info(info).set_task_status(&info.name, status);
            }
            common::ok(store.commit(tx));
        }
    }
    let mut group = c.benchmark_group("open");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(15));
    group.bench_function("restart_10000_tasks", |b| {
        b.iter(|| {
            let persister = common::ok(EmbeddedPersister::open(dir.path()));
            let store = common::ok(StateStore::open(persister, SERVICE));
            assert_eq!(store.task_infos().count(), TASKS);
            black_box(store)
        });
    });
    let persister = common::ok(EmbeddedPersister::open(dir.path()));
    group.bench_function("load_10000_tasks", |b| {
        b.iter(|| {
            let store = common::ok(StateStore::open(&persister, SERVICE));
            assert_eq!(store.task_statuses().count(), TASKS);
            black_box(store)
        });
    });
    group.finish();
}

criterion_group!(benches, commit, open);
criterion_main!(benches);
