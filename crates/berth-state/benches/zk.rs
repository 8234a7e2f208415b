//! Benchmarks of the ZooKeeper backend against a real, private ZooKeeper server (started from
//! Debian's package by `berth-zk-server`; its data directory on the real disk, so every
//! acknowledged `multi` was fsync'ed):
//!
//! - `zk_commit/group_1000_tasks`: durable task records (TaskInfo + TaskStatus of a realistic
//!   ≈2.5 KB TaskInfo) committed 1,000 per transaction — the scheduler's group commit of one
//!   offer cycle, split into `multi`s below ZooKeeper's 1 MB request limit;
//! - `zk_commit/one_task_per_tx`: the same records, one transaction (one `multi`) each;
//! - `zk_open/load_10000_tasks`: `StateStore::open` over 10,000 stored tasks (the restart
//!   path: one pipelined subtree read, parse, cache).
//!
//! Run: `cargo bench -p berth-state --bench zk` (needs `scripts/install-zookeeper`).
//! Throughput is reported in records/s.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::hint::black_box;
use std::time::Duration;

use berth_state::{StateStore, ZkPersister};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SERVICE: &str = "hello-world";
const TASKS: usize = 10_000;

/// A persister in a fresh chroot of the binary's server.
fn persister(tag: &str) -> ZkPersister {
    common::zk::persister(tag)
}

fn commit(c: &mut Criterion) {
    let records = common::records(TASKS);
    let mut group = c.benchmark_group("zk_commit");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(20));

    let mut store = common::ok(StateStore::open(persister("bench-commit"), SERVICE));
    support::commits(&mut group, &mut store, &records);
    group.finish();
}

fn open(c: &mut Criterion) {
    let persister = persister("bench-open");
    {
        let mut store = common::ok(StateStore::open(&persister, SERVICE));
        for chunk in common::records(TASKS).chunks(support::GROUP) {
            let mut tx = store.transaction();
            for (info, status) in chunk {
                tx.set_task_info(info).set_task_status(&info.name, status);
            }
            common::ok(store.commit(tx));
        }
    }
    let mut group = c.benchmark_group("zk_open");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(TASKS as u64));
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
