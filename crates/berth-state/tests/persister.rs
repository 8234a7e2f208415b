//! The persister contract suite, run against every backend.

use crate::common;

use berth_state::{EmbeddedPersister, MemPersister};
use common::suite::Fixture;

fn mem_fixture() -> Fixture {
    Fixture::new(MemPersister::new())
}

fn embedded_fixture() -> Fixture {
    let dir = common::temp_dir();
    let persister = common::ok(EmbeddedPersister::open(dir.path()));
    Fixture {
        persister: Box::new(persister),
        keep: Some(Box::new(dir)),
    }
}

mod mem {
    crate::common::suite::persister_suite!(crate::persister::mem_fixture);
}

mod embedded {
    crate::common::suite::persister_suite!(crate::persister::embedded_fixture);
}

/// A fresh chroot on the test binary's ZooKeeper server.
fn zk_fixture() -> Fixture {
    Fixture::new(common::zk::persister("suite"))
}

mod zk {
    crate::common::suite::persister_suite!(crate::persister::zk_fixture);
}

/// Backend-specific: an injected failure stores nothing.
#[test]
fn mem_injected_failure_stores_nothing() {
    use berth_state::{Persister, StateError, WriteOp};
    let p = MemPersister::new();
    common::ok(p.set("/a", b"1"));
    p.fail_next_applies(1);
    let e = common::err(p.apply(&[WriteOp::set("/a", "2"), WriteOp::set("/b", "3")]));
    assert!(matches!(e, StateError::Backend { .. }), "{e}");
    assert_eq!(common::ok(p.get("/a")).as_deref(), Some(&b"1"[..]));
    assert_eq!(common::ok(p.get("/b")), None);
    common::ok(p.set("/b", b"3"));
    assert_eq!(p.len(), 2);
}

/// Backend-specific: what was applied is still there after reopening the file.
#[test]
fn embedded_reopen_keeps_everything() {
    use berth_state::{Persister, WriteOp};
    let dir = common::temp_dir();
    let expected = {
        let p = common::ok(EmbeddedPersister::open(dir.path()));
        common::ok(p.apply(&[
            WriteOp::set("/s/a/b", "1"),
            WriteOp::set("/s/c", vec![0u8, 255]),
            WriteOp::set("/s/d", ""),
        ]));
        common::ok(p.delete("/s/d"));
        common::ok(p.subtree("/"))
    };
    let p = common::ok(EmbeddedPersister::open(dir.path()));
    assert_eq!(common::ok(p.subtree("/")), expected);
    assert_eq!(p.path(), dir.path().join("state.redb"));
}
