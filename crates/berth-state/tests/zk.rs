//! The ZooKeeper backend against a real ZooKeeper (see `berth-zk-server`): the typed store
//! over it, batches above ZooKeeper's 1 MB request limit, the leader lock and its fencing,
//! outages and session expiry, URLs and connection errors.
//!
//! The contract suite shared with the other backends runs in `tests/persister.rs`.

use crate::common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use berth_mesos::{FrameworkId, TaskState};
use berth_state::{
    LockOwner, Persister, StateError, StateStore, WriteOp, ZkConnectionState, ZkOptions,
    ZkPersister, ZkUrl,
};
use berth_zk_server::ZkServer;
use common::zk::{fresh_chroot, options, persister, shared_server, start_server, url};
use common::{err, ok, task_info, task_status};

const NAME: &str = "hello-world";
const ROOT: &str = "/dcos-service-hello-world";

fn owner(pid: u32, host: &str) -> LockOwner {
    LockOwner {
        pid,
        hostname: host.to_owned(),
        started_at: "2026-01-01T00:00:00Z".to_owned(),
        listen: Some(format!("http://{host}:8080")),
    }
}

/// Options with a short session, for expiry tests.
fn short_session() -> ZkOptions {
    ZkOptions {
        session_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(3),
    }
}

/// Calls `f` until it succeeds or fails with an error that is not retryable, for at most
/// `within`; the last result.
fn settled<T>(
    within: Duration,
    mut f: impl FnMut() -> Result<T, StateError>,
) -> Result<T, StateError> {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

/// Retries `f` while it fails with a retryable error, for at most `within`.
#[track_caller]
fn retry<T>(within: Duration, f: impl FnMut() -> Result<T, StateError>) -> T {
    ok(settled(within, f))
}

fn task_ops(root: &str, range: std::ops::Range<usize>) -> Vec<WriteOp> {
    range
        .flat_map(|n| {
            let info = task_info(&format!("hello-{n}-server"), n);
            let status = task_status(&info, TaskState::TaskRunning);
            let dir = format!("{root}/Tasks/{}", info.name);
            [
                WriteOp::set(format!("{dir}/TaskInfo"), ok(serde_json::to_vec(&info))),
                WriteOp::set(format!("{dir}/TaskStatus"), ok(serde_json::to_vec(&status))),
            ]
        })
        .collect()
}

/// The tree below `root` without the lock's ephemeral nodes.
fn tree(p: &dyn Persister, root: &str) -> Vec<(String, Vec<u8>)> {
    let lock = format!("{root}/lock/");
    ok(p.subtree(root))
        .into_iter()
        .filter(|(k, _)| !k.starts_with(&lock))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The typed store

#[test]
fn the_store_keeps_hundreds_of_tasks_across_reopening() {
    let server = shared_server();
    let chroot = fresh_chroot("store");
    let expected = {
        let p = ok(ZkPersister::connect(&url(server, &chroot), &options()));
        let mut store = ok(StateStore::open(p, NAME));
        let mut tx = store.transaction();
        tx.set_framework_id(&FrameworkId::new("fw-1"))
            .set_property("custom", b"{\"a\":1}".to_vec());
        for n in 0..300 {
            let info = task_info(&format!("hello-{n}-server"), n);
            tx.set_task_info(&info)
                .set_task_status(&info.name, &task_status(&info, TaskState::TaskRunning));
        }
        ok(store.commit(tx));
        let mut infos: Vec<_> = store.task_infos().cloned().collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    };
    let p = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    let store = ok(StateStore::open(p, NAME));
    let mut infos: Vec<_> = store.task_infos().cloned().collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(infos.len(), 300);
    assert_eq!(infos, expected);
    assert_eq!(store.task_statuses().count(), 300);
    assert_eq!(store.framework_id().map(|f| f.as_str()), Some("fw-1"));
    assert_eq!(
        store.property("custom").map(<[u8]>::to_vec),
        Some(b"{\"a\":1}".to_vec())
    );
}

#[test]
fn the_store_ignores_the_lock_subtree() {
    let server = shared_server();
    let chroot = fresh_chroot("store-lock");
    let p = Arc::new(ok(ZkPersister::connect(&url(server, &chroot), &options())));
    ok(p.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    // The lock node is in the tree the store loads …
    let names = ok(p.children(&format!("{ROOT}/lock")));
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("leader-"));
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let mut tx = store.transaction();
    tx.set_task_info(&info);
    ok(store.commit(tx));
    // … and is neither a task, a property nor an error, before or after reopening.
    let reopened = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(reopened.task_infos().count(), 1);
    assert!(reopened.property_keys().all(|k| !k.contains("leader")));
    assert_eq!(ok(p.children(&format!("{ROOT}/lock"))), names);
}

#[test]
fn under_the_lock_batches_are_planned_from_the_tree_read_at_open_and_a_stale_plan_is_redone() {
    let server = shared_server();
    let chroot = fresh_chroot("store-known");
    let p = Arc::new(ok(ZkPersister::connect(&url(server, &chroot), &options())));
    ok(p.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    // Something stored before this scheduler started.
    ok(p.apply(&task_ops(ROOT, 0..3)));
    // Opening reads the whole tree under the lock: from then on the writer plans from it.
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let other = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    // Creates, updates of nodes stored before the start, a deleted task and a new one.
    let mut tx = store.transaction();
    for n in 0..5 {
        let info = task_info(&format!("hello-{n}-server"), n + 10);
        tx.set_task_info(&info)
            .set_task_status(&info.name, &task_status(&info, TaskState::TaskRunning));
    }
    tx.delete_task("hello-1-server");
    ok(store.commit(tx));
    let mut tx = store.transaction();
    let again = task_info("hello-1-server", 42);
    tx.set_task_info(&again);
    ok(store.commit(tx));
    let reread = ok(StateStore::open(
        ok(ZkPersister::connect(&url(server, &chroot), &options())),
        NAME,
    ));
    assert_eq!(reread.task_infos().count(), 5);
    assert_eq!(reread.task_info("hello-1-server"), Some(&again));
    assert!(reread.task_status("hello-1-server").is_none());
    assert_eq!(
        reread
            .task_info("hello-4-server")
            .map(|i| i.task_id.value.clone()),
        store
            .task_info("hello-4-server")
            .map(|i| i.task_id.value.clone())
    );
    // Another process writes behind the lock's back (it must not; a plan made from the
    // cache is then refused by ZooKeeper, and the batch is planned again from what is
    // stored): a node the cache does not know, and one it knows that is gone.
    ok(other.set(&format!("{ROOT}/Properties/intruder"), b"x"));
    ok(other.delete(&format!("{ROOT}/Tasks/hello-2-server/TaskStatus")));
    let mut tx = store.transaction();
    tx.set_property("intruder", b"mine".to_vec());
    let info = task_info("hello-2-server", 7);
    tx.set_task_status(&info.name, &task_status(&info, TaskState::TaskFinished));
    ok(store.commit(tx));
    assert_eq!(
        ok(other.get(&format!("{ROOT}/Properties/intruder"))),
        Some(b"mine".to_vec())
    );
    let reread = ok(StateStore::open(other, NAME));
    assert_eq!(
        reread.task_status("hello-2-server").map(|s| s.state),
        Some(TaskState::TaskFinished)
    );
}

// ---------------------------------------------------------------------------------------
// Batches and values at ZooKeeper's limits

#[test]
fn batches_above_one_megabyte_apply_and_read_back() {
    let p = persister("big");
    let ops = task_ops(ROOT, 0..1500); // 3,000 records of ≈2.5 KB ≈ 4.5 MB
    let bytes: usize = ops
        .iter()
        .map(|op| match op {
            WriteOp::Set { value, .. } => value.len(),
            WriteOp::Delete { .. } => 0,
        })
        .sum();
    assert!(bytes > 3_000_000, "{bytes}");
    ok(p.apply(&ops));
    let stored = ok(p.subtree(&format!("{ROOT}/Tasks")));
    // Tasks + 1,500 task nodes + 3,000 records.
    assert_eq!(stored.len(), 1 + 1500 + 3000);
    for op in &ops {
        if let WriteOp::Set { path, value } = op {
            let i = ok(stored.binary_search_by(|(k, _)| k.as_str().cmp(path)));
            assert_eq!(&stored[i].1, value, "{path}");
        }
    }
    // Overwriting all of it (setData instead of create) and deleting it work too.
    ok(p.apply(&ops));
    ok(p.delete(&format!("{ROOT}/Tasks")));
    assert!(ok(p.subtree(&format!("{ROOT}/Tasks"))).is_empty());
}

#[test]
fn a_value_of_999_999_bytes_works_and_oversized_ones_are_refused_before_sending() {
    let p = persister("values");
    let value: Vec<u8> = (0..999_999u32).map(|i| (i % 251) as u8).collect();
    ok(p.apply(&[
        WriteOp::set("/a/small", "x"),
        WriteOp::set("/a/big", value.clone()),
    ]));
    assert_eq!(ok(p.get("/a/big")), Some(value));
    let e = err(p.apply(&[
        WriteOp::set("/a/new", "x"),
        WriteOp::set("/a/huge", vec![0u8; 1_048_000]),
    ]));
    match &e {
        StateError::ValueTooLarge { path, size, max } => {
            assert_eq!(path, "/a/huge");
            assert_eq!(*size, 1_048_000);
            assert!(*max >= 1_000_000 && *max < 1_048_000, "{max}");
        }
        other => panic!("expected ValueTooLarge, got {other}"),
    }
    assert!(!e.is_retryable());
    assert_eq!(ok(p.get("/a/new")), None);
}

#[test]
fn submitted_batches_are_stored_in_the_background_in_order_and_bad_ones_refused_at_once() {
    let p = persister("submit");
    assert!(p.submits_in_background());
    // A batch goes out; the caller goes on and makes the next, which builds on it (the
    // tasks' nodes of the first exist when the second sets their statuses again).
    let first = task_ops("/s", 0..200);
    let submitted = p.submit(first.clone());
    let second: Vec<WriteOp> = (0..200)
        .map(|n| WriteOp::set(format!("/s/Tasks/hello-{n}-server/TaskStatus"), "second"))
        .collect();
    let (result, back) = submitted.wait();
    ok(result);
    assert_eq!(back, first, "the writes come back with the outcome");
    let mut next = p.submit(second);
    while !next.is_done() {
        thread::sleep(Duration::from_millis(1));
    }
    ok(next.wait().0);
    assert_eq!(
        ok(p.get("/s/Tasks/hello-7-server/TaskStatus")),
        Some(b"second".to_vec())
    );
    assert!(ok(p.get("/s/Tasks/hello-7-server/TaskInfo")).is_some());
    // A batch ZooKeeper cannot take is refused before anything is sent, with its writes.
    let bad = vec![
        WriteOp::set("/s/new", "x"),
        WriteOp::set("/s/huge", vec![0u8; 1_048_000]),
    ];
    let mut refused = p.submit(bad.clone());
    assert!(refused.is_done());
    let (result, back) = refused.wait();
    assert!(matches!(err(result), StateError::ValueTooLarge { .. }));
    assert_eq!(back, bad);
    assert_eq!(ok(p.get("/s/new")), None);
}

#[test]
fn under_the_lock_batches_sent_together_are_stored_in_order_and_as_a_prefix() {
    let server = shared_server();
    let chroot = fresh_chroot("chain");
    let p = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    ok(p.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    ok(p.apply(&task_ops(ROOT, 0..3)));
    // The whole tree read under the lock: batches are planned from it, without asking.
    let _ = ok(p.subtree(ROOT));
    let node = |name: &str| format!("{ROOT}/Properties/{name}");
    // Twenty batches submitted without waiting, all writing one node: the last one's value
    // stays, and every batch's own node is there.
    let submitted: Vec<_> = (0..20)
        .map(|k| {
            p.submit(vec![
                WriteOp::set(node("k"), format!("{k}")),
                WriteOp::set(node(&format!("k{k}")), "x"),
            ])
        })
        .collect();
    for s in submitted {
        ok(s.wait().0);
    }
    assert_eq!(ok(p.get(&node("k"))), Some(b"19".to_vec()));
    assert_eq!(ok(p.children(&format!("{ROOT}/Properties"))).len(), 21);
    // Another process creates a node behind the lock's back: the first batch's plan (a
    // create, from the cache) is refused and planned again; the batches sent behind it are
    // refused with it (the chain) and stored after it or not at all — never before it.
    let other = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    ok(other.set(&node("intruder"), b"x"));
    let first = p.submit(vec![
        WriteOp::set(node("intruder"), "first"),
        WriteOp::set(node("order"), "first"),
    ]);
    let second = p.submit(vec![
        WriteOp::set(node("order"), "second"),
        WriteOp::set(node("second"), "x"),
    ]);
    let third = p.submit(vec![WriteOp::set(node("order"), "third")]);
    ok(first.wait().0);
    let second = second.wait().0;
    let third = third.wait().0;
    let order = ok(p.get(&node("order")));
    match (&second, &third) {
        (Ok(()), Ok(())) => assert_eq!(order, Some(b"third".to_vec())),
        (Ok(()), Err(_)) => assert_eq!(order, Some(b"second".to_vec())),
        (Err(e), Err(_)) => {
            assert!(e.is_retryable(), "{e}");
            assert_eq!(order, Some(b"first".to_vec()));
            assert_eq!(ok(p.get(&node("second"))), None);
        }
        (Err(_), Ok(())) => panic!("a batch was stored after one before it was refused"),
    }
    assert_eq!(ok(p.get(&node("intruder"))), Some(b"first".to_vec()));
    // `apply` (the caller waits for nothing else) goes through after any refusal.
    ok(p.apply(&[WriteOp::set(node("order"), "again")]));
    assert_eq!(ok(p.get(&node("order"))), Some(b"again".to_vec()));
    // The chain moves the lock directory's version only: its data stays empty.
    assert_eq!(ok(other.get(&format!("{ROOT}/lock"))), Some(Vec::new()));
}

#[test]
fn subtree_reads_ten_thousand_tasks_quickly() {
    let p = persister("subtree");
    for start in (0..10_000).step_by(1000) {
        ok(p.apply(&task_ops(ROOT, start..start + 1000)));
    }
    let started = Instant::now();
    let tree = ok(p.subtree(ROOT));
    let took = started.elapsed();
    assert_eq!(tree.len(), 2 + 10_000 * 3);
    eprintln!("subtree of 30,002 nodes: {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

// ---------------------------------------------------------------------------------------
// The leader lock

#[test]
fn a_second_scheduler_waits_then_fails_naming_the_holder_and_writes_nothing() {
    let server = shared_server();
    let chroot = fresh_chroot("lock");
    let a = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    let b = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    assert_eq!(ok(b.lock_holder(ROOT)), None);
    ok(a.acquire_lock(ROOT, &owner(1111, "node-a"), Duration::ZERO));
    ok(a.set(&format!("{ROOT}/ConfigTarget"), b"target-a"));
    // Acquiring again is a no-op.
    ok(a.acquire_lock(ROOT, &owner(1111, "node-a"), Duration::ZERO));
    assert_eq!(ok(b.lock_holder(ROOT)), Some(owner(1111, "node-a")));
    let before = ok(b.subtree(ROOT));

    let started = Instant::now();
    let e = err(b.acquire_lock(ROOT, &owner(2222, "node-b"), Duration::from_millis(1500)));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let location = format!("zk://{}{chroot}{ROOT}/lock", server.connect_string());
    match &e {
        StateError::LockHeld {
            location: l,
            holder,
        } => {
            assert_eq!(l, &location);
            assert_eq!(
                holder,
                "pid 1111 on node-a (since 2026-01-01T00:00:00Z, API at http://node-a:8080)"
            );
        }
        other => panic!("expected LockHeld, got {other}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "the leader lock {location} is held by pid 1111 on node-a (since \
             2026-01-01T00:00:00Z, API at http://node-a:8080); a second scheduler for the same \
             service cannot run: stop the other one first (or wait until its ZooKeeper session \
             expires)"
        )
    );
    assert!(!e.is_retryable());
    // Nothing of B's is left: the tree (lock nodes included) is as before.
    assert_eq!(ok(b.subtree(ROOT)), before);
    // With no wait at all, it fails at once.
    let started = Instant::now();
    assert!(matches!(
        err(b.acquire_lock(ROOT, &owner(2222, "node-b"), Duration::ZERO)),
        StateError::LockHeld { .. }
    ));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(ok(b.subtree(ROOT)), before);
    assert_eq!(
        ok(a.get(&format!("{ROOT}/ConfigTarget"))).as_deref(),
        Some(&b"target-a"[..])
    );
}

#[test]
fn a_waiter_gets_the_lock_when_the_holder_is_dropped_or_releases() {
    let server = shared_server();
    let chroot = fresh_chroot("lock-drop");
    let a = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    ok(a.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    let waiter_url = url(server, &chroot);
    let waiter = thread::spawn(move || {
        let b = ok(ZkPersister::connect(&waiter_url, &options()));
        let started = Instant::now();
        ok(b.acquire_lock(ROOT, &owner(2, "b"), Duration::from_secs(20)));
        (b, started.elapsed())
    });
    thread::sleep(Duration::from_millis(800));
    drop(a);
    let (b, waited) = match waiter.join() {
        Ok(r) => r,
        Err(_) => panic!("the waiter panicked"),
    };
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(ok(b.lock_holder(ROOT)), Some(owner(2, "b")));
    ok(b.set(&format!("{ROOT}/x"), b"b was here"));

    // Release hands it on as well.
    let c = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    let c_thread = thread::spawn(move || {
        ok(c.acquire_lock(ROOT, &owner(3, "c"), Duration::from_secs(20)));
        c
    });
    thread::sleep(Duration::from_millis(500));
    ok(b.release_lock());
    let c = match c_thread.join() {
        Ok(c) => c,
        Err(_) => panic!("the waiter panicked"),
    };
    assert_eq!(ok(c.lock_holder(ROOT)), Some(owner(3, "c")));
    // B no longer holds it: its writes are not fenced any more (it is a plain persister).
    ok(b.set(&format!("{ROOT}/y"), b"unfenced"));
}

#[test]
fn a_killed_holder_loses_the_lock_when_its_session_expires() {
    let server = shared_server();
    let chroot = fresh_chroot("lock-crash");
    let a = ok(ZkPersister::connect(
        &url(server, &chroot),
        &short_session(),
    ));
    ok(a.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    let b = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    let started = Instant::now();
    a.crash();
    ok(b.acquire_lock(ROOT, &owner(2, "b"), Duration::from_secs(20)));
    let waited = started.elapsed();
    // Not before the session timeout (2 s), and not much after it.
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(ok(b.lock_holder(ROOT)), Some(owner(2, "b")));
}

/// Stops `server` long enough for sessions of `short_session()` to expire on the client.
fn outage(server: &mut ZkServer, persisters: &[&ZkPersister]) {
    server.stop();
    thread::sleep(Duration::from_millis(300));
    for p in persisters {
        assert!(
            matches!(p.connection_state(), ZkConnectionState::Disconnected { .. }),
            "{:?}",
            p.connection_state()
        );
    }
    // The client gives a lost session up after 1.4 × the session timeout.
    thread::sleep(Duration::from_millis(3500));
    for p in persisters {
        assert_eq!(p.connection_state(), ZkConnectionState::Expired);
    }
    ok(server.start_again());
}

#[test]
fn after_an_expiry_a_holder_whose_lock_was_taken_can_never_write_again() {
    let mut server = ok(start_server());
    let chroot = fresh_chroot("fence-lost");
    let a = ok(ZkPersister::connect(
        &url(&server, &chroot),
        &short_session(),
    ));
    ok(a.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    ok(a.set(&format!("{ROOT}/ConfigTarget"), b"a-1"));
    outage(&mut server, &[&a]);
    // Another scheduler starts and takes the lock once A's old session expired on the server.
    let b = ok(ZkPersister::connect(&url(&server, &chroot), &options()));
    ok(b.acquire_lock(ROOT, &owner(2, "b"), Duration::from_secs(20)));
    ok(b.set(&format!("{ROOT}/ConfigTarget"), b"b-1"));
    // A comes back: its writes fail, for good, and store nothing.
    let location = format!("zk://{}{chroot}{ROOT}/lock", server.connect_string());
    for _ in 0..2 {
        let e = err(settled(Duration::from_secs(20), || {
            a.set(&format!("{ROOT}/ConfigTarget"), b"a-2")
        }));
        match &e {
            StateError::LockLost {
                location: l,
                holder,
            } => {
                assert_eq!(l, &location);
                assert_eq!(
                    holder.as_deref(),
                    Some("pid 2 on b (since 2026-01-01T00:00:00Z, API at http://b:8080)")
                );
            }
            other => panic!("expected LockLost, got {other}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "the leader lock {location} was lost (ZooKeeper session expired) and is now \
                 held by pid 2 on b (since 2026-01-01T00:00:00Z, API at http://b:8080); another \
                 scheduler may be running; this scheduler must stop"
            )
        );
        assert!(!e.is_retryable());
    }
    assert_eq!(
        ok(b.get(&format!("{ROOT}/ConfigTarget"))).as_deref(),
        Some(&b"b-1"[..])
    );
    assert_eq!(ok(b.lock_holder(ROOT)), Some(owner(2, "b")));
    // A's reads still work (a new session was made).
    assert_eq!(a.connection_state(), ZkConnectionState::Connected);
    assert_eq!(
        ok(a.get(&format!("{ROOT}/ConfigTarget"))).as_deref(),
        Some(&b"b-1"[..])
    );
}

#[test]
fn after_an_expiry_a_holder_nobody_replaced_takes_the_lock_again_and_carries_on() {
    let mut server = ok(start_server());
    let chroot = fresh_chroot("fence-back");
    let a = ok(ZkPersister::connect(
        &url(&server, &chroot),
        &short_session(),
    ));
    ok(a.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    ok(a.set(&format!("{ROOT}/ConfigTarget"), b"a-1"));
    outage(&mut server, &[&a]);
    retry(Duration::from_secs(20), || {
        a.set(&format!("{ROOT}/ConfigTarget"), b"a-2")
    });
    assert_eq!(
        ok(a.get(&format!("{ROOT}/ConfigTarget"))).as_deref(),
        Some(&b"a-2"[..])
    );
    assert_eq!(ok(a.lock_holder(ROOT)), Some(owner(1, "a")));
    // Only one lock node: the old session's is gone.
    assert_eq!(ok(a.children(&format!("{ROOT}/lock"))).len(), 1);
    // And the lock still fences: a second scheduler cannot get it.
    let b = ok(ZkPersister::connect(&url(&server, &chroot), &options()));
    assert!(matches!(
        err(b.acquire_lock(ROOT, &owner(2, "b"), Duration::from_millis(500))),
        StateError::LockHeld { .. }
    ));
}

#[test]
fn after_an_expiry_unavailable_answers_at_once_and_a_new_session_is_made_in_the_background() {
    let mut server = ok(start_server());
    let chroot = fresh_chroot("renew-bg");
    let a = ok(ZkPersister::connect(
        &url(&server, &chroot),
        &short_session(),
    ));
    ok(a.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    ok(a.set(&format!("{ROOT}/ConfigTarget"), b"a-1"));
    server.stop();
    // The client gives a lost session up after 1.4 × the session timeout.
    thread::sleep(Duration::from_millis(3800));
    assert_eq!(a.connection_state(), ZkConnectionState::Expired);
    // While no server answers, asking never waits for one (the scheduler loop asks).
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let why = a.unavailable();
        assert!(
            asked.elapsed() < Duration::from_millis(100),
            "unavailable() took {:?}",
            asked.elapsed()
        );
        let why = why.expect("an expired session is reported as unavailable");
        assert!(why.contains("session at zk://"), "{why}");
        assert!(why.contains("expired"), "{why}");
        last = Some(why);
        thread::sleep(Duration::from_millis(50));
    }
    let last = last.unwrap_or_default();
    assert!(last.contains("last attempt:"), "{last}");
    ok(server.start_again());
    // Only asking: the background attempts make the new session.
    let back = Instant::now();
    while a.unavailable().is_some() {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "no new session after {:?}",
            back.elapsed()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.connection_state(), ZkConnectionState::Connected);
    // The first write on it takes the lock again (nobody replaced this holder).
    ok(a.set(&format!("{ROOT}/ConfigTarget"), b"a-2"));
    assert_eq!(ok(a.lock_holder(ROOT)), Some(owner(1, "a")));
}

// ---------------------------------------------------------------------------------------
// Outages

#[test]
fn while_zookeeper_is_down_calls_fail_fast_and_retryable_and_a_retry_afterwards_works() {
    let mut server = ok(start_server());
    let p = ok(ZkPersister::connect(
        &url(&server, &fresh_chroot("outage")),
        &options(),
    ));
    ok(p.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    ok(p.apply(&task_ops(ROOT, 0..10)));
    server.stop();
    thread::sleep(Duration::from_millis(300));
    let batch = task_ops(ROOT, 10..20);
    for _ in 0..3 {
        let started = Instant::now();
        let e = err(p.apply(&batch));
        assert!(
            started.elapsed() < options().request_timeout,
            "{:?}",
            started.elapsed()
        );
        assert!(e.is_retryable(), "{e}");
        assert!(matches!(e, StateError::Unavailable { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("is unavailable while committing 20 writes"),
            "{text}"
        );
        assert!(
            text.contains("nothing was applied; retry the same batch"),
            "{text}"
        );
        let e = err(p.get(&format!("{ROOT}/Tasks")));
        assert!(e.is_retryable(), "{e}");
    }
    let ZkConnectionState::Disconnected { since } = p.connection_state() else {
        panic!("expected Disconnected, got {:?}", p.connection_state());
    };
    assert!(since.elapsed() >= Duration::from_millis(200));
    ok(server.start_again());
    retry(Duration::from_secs(20), || p.get(ROOT));
    // ZooKeeper is back, but a batch failed: a batch submitted after it is not sent (it
    // could be stored without the one before); the caller's `apply` goes through.
    let e = err(p.submit(batch.clone()).wait().0);
    assert!(e.to_string().contains("was not sent"), "{e}");
    assert_eq!(
        ok(p.get(&format!("{ROOT}/Tasks/hello-15-server/TaskInfo"))),
        None
    );
    retry(Duration::from_secs(20), || p.apply(&batch));
    assert_eq!(p.connection_state(), ZkConnectionState::Connected);
    ok(p.submit(task_ops(ROOT, 0..1)).wait().0);
    let mut expected = task_ops(ROOT, 0..20);
    expected.sort_by(|a, b| a.path().cmp(b.path()));
    let stored: Vec<(String, Vec<u8>)> = tree(&p, &format!("{ROOT}/Tasks"))
        .into_iter()
        .filter(|(k, _)| k.ends_with("/TaskInfo") || k.ends_with("/TaskStatus"))
        .collect();
    assert_eq!(stored.len(), 40);
    for (op, (path, value)) in expected.iter().zip(&stored) {
        let WriteOp::Set {
            path: p2,
            value: v2,
        } = op
        else {
            panic!("unexpected delete");
        };
        assert_eq!(path, p2);
        assert_eq!(value, v2);
    }
}

#[test]
fn a_batch_cut_off_by_a_crash_of_zookeeper_is_completed_exactly_by_retrying_it() {
    let mut server = ok(start_server());
    let chroot = fresh_chroot("cut");
    let p = Arc::new(ok(ZkPersister::connect(&url(&server, &chroot), &options())));
    ok(p.acquire_lock(ROOT, &owner(1, "a"), Duration::ZERO));
    // Some state that the batch partly replaces and partly deletes.
    ok(p.apply(&task_ops(ROOT, 0..200)));
    let mut batch = vec![WriteOp::delete(format!("{ROOT}/Tasks/hello-0-server"))];
    batch.extend(task_ops(ROOT, 100..1600)); // several requests
    batch.push(WriteOp::delete(format!("{ROOT}/Tasks/hello-1-server")));
    let reference = {
        let model = berth_state::MemPersister::new();
        ok(model.apply(&task_ops(ROOT, 0..200)));
        ok(model.apply(&batch));
        ok(model.subtree(&format!("{ROOT}/Tasks")))
    };
    let writer = {
        let p = p.clone();
        let batch = batch.clone();
        thread::spawn(move || p.apply(&batch))
    };
    thread::sleep(Duration::from_millis(150));
    server.stop();
    let first = match writer.join() {
        Ok(r) => r,
        Err(_) => panic!("the writer panicked"),
    };
    if let Err(e) = &first {
        assert!(e.is_retryable(), "{e}");
        eprintln!("cut off: {e}");
    }
    ok(server.start_again());
    retry(Duration::from_secs(20), || p.apply(&batch));
    assert_eq!(tree(&*p, &format!("{ROOT}/Tasks")), reference);
    // Retrying once more changes nothing.
    ok(p.apply(&batch));
    assert_eq!(tree(&*p, &format!("{ROOT}/Tasks")), reference);
}

// ---------------------------------------------------------------------------------------
// Connecting

#[test]
fn connect_creates_the_chroot() {
    let server = shared_server();
    let chroot = format!("{}/deeper/still", fresh_chroot("chroot"));
    let p = ok(ZkPersister::connect(&url(server, &chroot), &options()));
    ok(p.set("/inside", b"v"));
    let root = ok(ZkPersister::connect(
        &ok(ZkUrl::parse(&format!("zk://{}", server.connect_string()))),
        &options(),
    ));
    assert_eq!(
        ok(root.get(&format!("{chroot}/inside"))).as_deref(),
        Some(&b"v"[..])
    );
    // ZooKeeper's own node is not part of the tree.
    assert!(!ok(root.children("/")).contains(&"zookeeper".to_owned()));
    assert!(
        ok(root.subtree("/"))
            .iter()
            .all(|(k, _)| !k.starts_with("/zookeeper"))
    );
    assert_eq!(p.url().chroot(), Some(chroot.as_str()));
}

#[test]
fn an_unreachable_ensemble_fails_within_the_connect_timeout_naming_it() {
    let port = {
        let listener = ok(std::net::TcpListener::bind("127.0.0.1:0"));
        ok(listener.local_addr()).port()
    };
    let url = ok(ZkUrl::parse(&format!("zk://127.0.0.1:{port}/x")));
    let options = ZkOptions {
        connect_timeout: Duration::from_secs(1),
        ..ZkOptions::default()
    };
    let started = Instant::now();
    let e = err(ZkPersister::connect(&url, &options));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot reach ZooKeeper at 127.0.0.1:{port} within 1 s: 127.0.0.1:{port}: \
             Connection refused (os error 111); is it running?"
        )
    );
    assert!(e.is_retryable());
}

#[test]
fn malformed_urls_are_refused_with_the_accepted_form() {
    for (url, reason) in [
        (
            "zookeeper://a:1",
            "the scheme must be 'zk', not 'zookeeper'",
        ),
        ("zk://a", "server 'a': the port is missing (host:port)"),
        (
            "zk://a:0",
            "server 'a:0': the port 0 is out of range (1 to 65535)",
        ),
        (
            "zk://a:1,,b:2",
            "server 2 is empty (',,' or a ',' at an end)",
        ),
        ("zk://a:1/berth/", "the chroot '/berth/' ends with '/'"),
    ] {
        assert_eq!(
            err(ZkUrl::parse(url)).to_string(),
            format!(
                "invalid ZooKeeper URL '{url}': {reason}; expected \
                 zk://host:port[,host:port…][/chroot], e.g. zk://127.0.0.1:2181 or \
                 zk://zk-1:2181,zk-2:2181/berth"
            )
        );
    }
}

#[test]
fn it_can_be_used_and_dropped_inside_a_tokio_runtime() {
    let runtime = ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build());
    let value = runtime.block_on(async {
        let task = tokio::spawn(async {
            let p = persister("tokio");
            ok(p.set("/in/tokio", b"yes"));
            let value = ok(p.get("/in/tokio"));
            drop(p);
            value
        });
        ok(task.await)
    });
    assert_eq!(value.as_deref(), Some(&b"yes"[..]));
}

#[test]
fn owners_of_this_process_name_it() {
    let me = LockOwner::this_process(UNIX_EPOCH, Some("http://x:1".to_owned()));
    assert_eq!(me.pid, std::process::id());
    let p = persister("owner");
    ok(p.acquire_lock("/dcos-service-me", &me, Duration::ZERO));
    assert_eq!(ok(p.lock_holder("/dcos-service-me")), Some(me));
}
