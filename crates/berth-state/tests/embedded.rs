//! The embedded backend's file handling: the exclusive lock (from another process and from
//! this one), and clear errors for unusable data directories and damaged files.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use berth_state::{EmbeddedPersister, LockHolder, Persister, StateError, WriteOp};
use common::{err, ok};

/// Set in the child: the data directory to hold locked.
const HOLDER_ENV: &str = "BERTH_STATE_LOCK_HOLDER_DIR";

/// The child: not a real test; holds the state open until its stdin closes.
#[test]
fn lock_holder_child() {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let _p = ok(EmbeddedPersister::open(&dir));
    eprintln!("locked {}", std::process::id());
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn snapshot(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        ok(std::fs::read(dir.join("state.redb"))),
        ok(std::fs::read(dir.join("state.lock"))),
    )
}

#[test]
fn a_second_process_is_refused_and_writes_nothing() {
    let dir = common::temp_dir();
    {
        let p = ok(EmbeddedPersister::open(dir.path()));
        ok(p.set("/dcos-service-x/ConfigTarget", b"before"));
    }
    let mut child = ok(Command::new(ok(std::env::current_exe()))
        .args([
            "--exact",
            "embedded::lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn());
    let Some(stderr) = child.stderr.take() else {
        panic!("no stderr");
    };
    let mut lines = BufReader::new(stderr).lines();
    let locked = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("locked "));
    assert_eq!(locked, Some(format!("locked {}", child.id())));

    let before = snapshot(dir.path());
    let e = err(EmbeddedPersister::open(dir.path()));
    match &e {
        StateError::Locked { path, holder } => {
            assert_eq!(path, &dir.path().join("state.redb"));
            assert_eq!(*holder, LockHolder::Pid(child.id()));
        }
        other => panic!("expected Locked, got {other}"),
    }
    assert_eq!(
        e.to_string(),
        format!(
            "the state in {} is in use by another berth process (pid {}); stop it first",
            dir.path().join("state.redb").display(),
            child.id()
        )
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused open must not write"
    );

    // The lock goes with the process, however it ends.
    ok(child.kill());
    ok(child.wait());
    let p = ok(EmbeddedPersister::open(dir.path()));
    assert_eq!(
        ok(p.get("/dcos-service-x/ConfigTarget")).as_deref(),
        Some(&b"before"[..])
    );
}

#[test]
fn a_second_open_in_this_process_is_refused() {
    let dir = common::temp_dir();
    let first = ok(EmbeddedPersister::open(dir.path()));
    ok(first.set("/a", b"1"));
    let before = snapshot(dir.path());
    match err(EmbeddedPersister::open(dir.path())) {
        StateError::Locked { holder, .. } => {
            assert_eq!(holder, LockHolder::Pid(std::process::id()));
        }
        other => panic!("expected Locked, got {other}"),
    }
    assert_eq!(snapshot(dir.path()), before);
    drop(first);
    let again = ok(EmbeddedPersister::open(dir.path()));
    assert_eq!(ok(again.get("/a")).as_deref(), Some(&b"1"[..]));
}

/// A child process forked while the store was open keeps a copy of the lock's descriptor
/// until it executes or exits (any thread spawning a process does this). Reopening right
/// after closing must wait that out, not report the store as in use by this very process.
#[test]
fn a_reopen_waits_for_a_lock_copy_held_by_a_forking_child() {
    let dir = common::temp_dir();
    let first = ok(EmbeddedPersister::open(dir.path()));
    ok(first.set("/a", b"1"));
    // SAFETY: the child only sleeps and leaves with `_exit`: no allocation, no lock, no
    // destructor of the parent's state runs in it.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            std::thread::sleep(std::time::Duration::from_millis(300));
            unsafe { nix::libc::_exit(0) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => panic!("fork: {e}"),
    };
    drop(first);
    let again = EmbeddedPersister::open(dir.path());
    let _ = nix::sys::wait::waitpid(child, None);
    let again = ok(again);
    assert_eq!(ok(again.get("/a")).as_deref(), Some(&b"1"[..]));
}

#[test]
fn the_database_lock_is_mapped_too() {
    // Someone bypassed the lock file (deleted it, or holds the file with redb directly).
    let dir = common::temp_dir();
    let db = ok(redb::Database::create(dir.path().join("state.redb")));
    match err(EmbeddedPersister::open(dir.path())) {
        StateError::Locked { path, holder } => {
            assert_eq!(path, dir.path().join("state.redb"));
            assert_eq!(holder, LockHolder::Unknown);
        }
        other => panic!("expected Locked, got {other}"),
    }
    drop(db);
    ok(EmbeddedPersister::open(dir.path()));
}

#[test]
fn an_unusable_data_directory_is_named() {
    let dir = common::temp_dir();
    let file = dir.path().join("a-file");
    ok(std::fs::write(&file, b"not a directory"));
    let data_dir = file.join("data");
    let e = err(EmbeddedPersister::open(&data_dir));
    assert!(matches!(e, StateError::Io { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("cannot create the data directory"),
        "{message}"
    );
    assert!(
        message.contains(&data_dir.display().to_string()),
        "{message}"
    );
    assert!(message.contains("--data-dir"), "{message}");

    // The state file is a directory.
    let data_dir = dir.path().join("d");
    ok(std::fs::create_dir_all(data_dir.join("state.redb")));
    let e = err(EmbeddedPersister::open(&data_dir));
    assert!(
        e.to_string()
            .contains(&data_dir.join("state.redb").display().to_string()),
        "{e}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = common::temp_dir();
    let path = dir.path().join("state.redb");
    for garbage in [
        b"this is not a redb database, it is a note".to_vec(),
        vec![0u8; 100_000],
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect(),
    ] {
        ok(std::fs::write(&path, &garbage));
        let e = err(EmbeddedPersister::open(dir.path()));
        match &e {
            StateError::CorruptStore { path: at, .. } => assert_eq!(at, &path),
            other => panic!("expected CorruptStore, got {other}"),
        }
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("move the file aside"), "{message}");
    }
}

#[test]
fn damaged_databases_fail_cleanly() {
    let dir = common::temp_dir();
    let path = dir.path().join("state.redb");
    {
        let p = ok(EmbeddedPersister::open(dir.path()));
        for batch in 0..10 {
            let ops: Vec<_> = (0..200)
                .map(|i| berth_state::WriteOp::set(format!("/s/{batch}/{i}"), vec![b'v'; 500]))
                .collect();
            ok(p.apply(&ops));
        }
    }
    let pristine = ok(std::fs::read(&path));
    // Truncations and overwritten regions: each must open (and read) or fail with a clear
    // error — never panic.
    let len = pristine.len();
    let mut damaged: Vec<Vec<u8>> = vec![
        pristine[..len / 2].to_vec(),
        pristine[..4096].to_vec(),
        pristine[..100].to_vec(),
    ];
    for at in [0, 512, 4096, len / 4, len / 2, 3 * len / 4, len - 4096] {
        let mut d = pristine.clone();
        for b in &mut d[at..(at + 4096).min(len)] {
            *b = !*b;
        }
        damaged.push(d);
    }
    for (i, bytes) in damaged.into_iter().enumerate() {
        ok(std::fs::write(&path, &bytes));
        let opened = EmbeddedPersister::open(dir.path());
        eprintln!("damaged case {i}: {:?}", opened.as_ref().map(|_| "opened"));
        match opened {
            Ok(p) => {
                // Opened (the damage hit unused space, was repaired, or lies in pages not
                // read yet): reads work or name the damaged file.
                match p.subtree("/") {
                    Ok(_) => {}
                    Err(StateError::CorruptStore { path: at, message }) => {
                        assert_eq!(at, path, "case {i}: {message}");
                    }
                    Err(other) => {
                        let message = other.to_string();
                        assert!(
                            message.contains(&path.display().to_string()),
                            "case {i}: {message}"
                        );
                    }
                }
            }
            Err(StateError::CorruptStore { path: at, .. }) => assert_eq!(at, path, "case {i}"),
            Err(other) => {
                let message = other.to_string();
                assert!(
                    message.contains(&path.display().to_string()),
                    "case {i}: {message}"
                );
            }
        }
    }
}

#[test]
fn the_write_ahead_log_is_emptied_at_checkpoints_and_on_close() {
    let dir = common::temp_dir();
    let len = |file: &str| ok(std::fs::metadata(dir.path().join(file))).len();
    let total = || berth_state::WAL_FILES.iter().map(|f| len(f)).sum::<u64>();
    let p = ok(EmbeddedPersister::open(dir.path()));
    assert_eq!(total(), 0);
    let mut shrunk = 0;
    let mut last = 0;
    let mut used = [false; 2];
    for i in 0..4_500u32 {
        ok(p.apply(&[WriteOp::set(format!("/w/{}", i % 50), i.to_string())]));
        // Acknowledged: in the log, and read back at once.
        assert_eq!(
            ok(p.get(&format!("/w/{}", i % 50))),
            Some(i.to_string().into_bytes())
        );
        let now = total();
        // Each batch is one record more, until a checkpoint empties a file.
        shrunk += usize::from(now <= last);
        last = now;
        for (file, used) in berth_state::WAL_FILES.iter().zip(&mut used) {
            *used |= len(file) > 0;
        }
    }
    assert!(shrunk >= 2, "{shrunk} checkpoints in 4,500 batches");
    assert_eq!(used, [true, true], "both files take turns");
    assert!(last > 0);
    // A large batch is committed synced into the database, after what the log held.
    ok(p.apply(&[
        WriteOp::set("/w/0", "large"),
        WriteOp::set("/blob", vec![7u8; 5_000_000]),
    ]));
    assert_eq!(total(), 0);
    ok(p.apply(&[WriteOp::set("/w/1", "small")]));
    assert!(total() > 0);
    drop(p);
    assert_eq!(
        total(),
        0,
        "a clean close leaves everything in the database"
    );
    let p = ok(EmbeddedPersister::open(dir.path()));
    assert_eq!(ok(p.get("/w/49")), Some(b"4499".to_vec()));
    assert_eq!(ok(p.get("/w/0")), Some(b"large".to_vec()));
    assert_eq!(ok(p.get("/w/1")), Some(b"small".to_vec()));
    assert_eq!(ok(p.get("/blob")).map(|b| b.len()), Some(5_000_000));
    assert_eq!(ok(p.children("/w")).len(), 50);
}

#[test]
fn the_writer_thread_runs_at_a_lower_priority() {
    let dir = common::temp_dir();
    let p = ok(EmbeddedPersister::open(dir.path()));
    ok(p.apply(&[WriteOp::set("/a", "1")]));
    // Read back: the writer has taken the batch, so it has set its priority first.
    assert_eq!(ok(p.get("/a")), Some(b"1".to_vec()));
    // The nice value of each thread named after the writer (field 19 of its stat line);
    // other tests' writers may be starting at the same time.
    let nice: Vec<i64> = ok(std::fs::read_dir("/proc/self/task"))
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "berth-state-wri")
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            after_name.split_whitespace().nth(16)?.parse().ok()
        })
        .collect();
    assert!(!nice.is_empty(), "no writer thread found");
    assert!(nice.contains(&10), "{nice:?}");
    drop(p);
}
