//! Crash safety of the embedded store: a child process commits numbered multi-writes in a
//! loop; the parent kills it with SIGKILL at random moments, reopens the store and checks that
//! every transaction is all-or-nothing, that acknowledged commits are there, and that the
//! counter never goes backwards.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_state::{EmbeddedPersister, Persister, WriteOp};
use common::ok;

/// Set in the child: the data directory to write to.
const CHILD_ENV: &str = "BERTH_STATE_CRASH_CHILD_DIR";
/// Related keys written by every transaction.
const KEYS: usize = 16;
const ITERATIONS: usize = 30;

/// The value of key `j` in transaction `counter` (≈2 KB, like a TaskInfo).
fn value(counter: u64, j: usize) -> Vec<u8> {
    format!("{counter}:{j}:{}", "x".repeat(2000 + j * 17)).into_bytes()
}

fn counter_of(value: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(value);
    text.split(':')
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The child: not a real test; does nothing unless started by `kill_9_*` below.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    // The parent's last handle may still be held for a moment by a process another test
    // thread of the parent is spawning (it inherits the lock until it executes): retry.
    let deadline = Instant::now() + Duration::from_secs(5);
    let p = loop {
        match EmbeddedPersister::open(&dir) {
            Err(berth_state::StateError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break ok(other),
        }
    };
    let mut counter = ok(p.get("/crash/k/0")).map_or(0, |v| counter_of(&v));
    let mut seed = u64::from(std::process::id()) | 1;
    loop {
        counter += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut ops: Vec<WriteOp> = (0..KEYS)
            .map(|j| WriteOp::set(format!("/crash/k/{j}"), value(counter, j)))
            .collect();
        ops.push(WriteOp::delete("/crash/tmp"));
        ops.push(WriteOp::set(
            format!("/crash/tmp/{counter}/a"),
            counter.to_string(),
        ));
        ops.push(WriteOp::set(
            format!("/crash/tmp/{counter}/b"),
            counter.to_string(),
        ));
        // A blob of varying size, so that commits vary in length.
        // One in sixteen is large enough to skip the write-ahead log.
        let blob_len = if seed % 16 == 0 {
            4_500_000
        } else {
            (seed % 300_000) as usize
        };
        let mut blob = format!("{counter}:").into_bytes();
        blob.resize(blob_len.max(blob.len()), b'b');
        ops.push(WriteOp::set("/crash/blob", blob));
        ok(p.apply(&ops));
        // Acknowledged only after apply returned: this commit must survive. One write call,
        // so that a kill cannot cut the line.
        let line = format!("committed {counter}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

fn check(p: &EmbeddedPersister, last_acked: u64, last_seen: u64, iteration: usize) -> u64 {
    let values: Vec<u64> = (0..KEYS)
        .map(|j| ok(p.get(&format!("/crash/k/{j}"))).map_or(0, |v| counter_of(&v)))
        .collect();
    let counter = values[0];
    assert!(
        values.iter().all(|&c| c == counter),
        "iteration {iteration}: a transaction was torn: {values:?}"
    );
    if counter > 0 {
        for j in 0..KEYS {
            assert_eq!(
                ok(p.get(&format!("/crash/k/{j}"))),
                Some(value(counter, j)),
                "iteration {iteration}: key {j}"
            );
        }
        assert_eq!(ok(p.children("/crash/tmp")), vec![counter.to_string()]);
        assert_eq!(
            ok(p.children(&format!("/crash/tmp/{counter}"))),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(
            ok(p.get("/crash/blob")).map(|b| counter_of(&b)),
            Some(counter)
        );
    }
    assert!(
        counter >= last_acked,
        "iteration {iteration}: commit {last_acked} was acknowledged but only {counter} survived"
    );
    assert!(
        counter >= last_seen,
        "iteration {iteration}: the counter went back from {last_seen} to {counter}"
    );
    counter
}

#[test]
fn kill_9_leaves_every_transaction_whole() {
    let dir = common::temp_dir();
    let exe = ok(std::env::current_exe());
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut last_seen = 0;
    let mut slowest_open = Duration::ZERO;
    // Kills that left acknowledged batches in the write-ahead log only, to be replayed.
    let mut replayed = 0;
    for iteration in 0..ITERATIONS {
        let mut child = ok(Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn());
        let stderr = child.stderr.take();
        let (first_tx, first_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = 0u64;
            let Some(stderr) = stderr else { return last };
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("committed ").and_then(|n| n.parse().ok()) {
                    if last == 0 {
                        let _ = first_tx.send(());
                    }
                    last = n;
                } else if !line.trim().is_empty() {
                    eprintln!("child: {line}");
                }
            }
            last
        });
        if iteration % 5 == 4 {
            // Sometimes kill early: during start-up, open and repair.
            std::thread::sleep(Duration::from_millis(rand(30)));
        } else {
            let started = first_rx.recv_timeout(Duration::from_secs(60));
            assert!(
                started.is_ok(),
                "iteration {iteration}: the child never committed"
            );
            std::thread::sleep(Duration::from_micros(rand(60_000)));
        }
        ok(child.kill());
        let status = ok(child.wait());
        let last_acked = reader.join().unwrap_or(0);
        assert!(!status.success(), "the child must have been killed");

        let in_log = berth_state::WAL_FILES
            .iter()
            .any(|f| std::fs::metadata(dir.path().join(f)).is_ok_and(|m| m.len() > 0));
        if in_log {
            replayed += 1;
        }
        let opened = Instant::now();
        let p = ok(EmbeddedPersister::open(dir.path()));
        slowest_open = slowest_open.max(opened.elapsed());
        last_seen = check(&p, last_acked, last_seen, iteration);
    }
    eprintln!(
        "crash test: {ITERATIONS} kills ({replayed} with batches in the write-ahead log), final \
         counter {last_seen}, slowest reopen {slowest_open:?}"
    );
    assert!(last_seen > 0);
    // Most kills leave batches in the log on a fast disk; a slow disk spends longer in the
    // large synced commits that empty it, so only a few are required.
    assert!(
        replayed >= ITERATIONS / 6,
        "only {replayed} of {ITERATIONS} kills left batches in the log"
    );
}
