//! Scheduler failover with the embedded store: the store's file lock is the leader lock.
//! (The ZooKeeper variant is in `zk.rs`.)

use crate::common;

use std::time::Duration;

use common::{Berth, hello_world, text};

const LONG: Duration = Duration::from_secs(120);

/// A second `berth run` on the same data directory is refused naming the holder, and writes
/// nothing; with `--lock-wait` it waits, takes over after `kill -9` of the first, and carries
/// on with the same tasks.
#[test]
fn a_standby_takes_over_the_embedded_store_after_kill_9() {
    let mut b = Berth::new(27600);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let before = b.task_ids();
    let (_, target) = b.get("/v1/configurations/targetId");
    let holder = b.pid().expect("running");

    let o = b.run_once(
        &hello_world(),
        &["--options", &b.options(r#"{"hello": {"cpus": 0.2}}"#)],
    );
    let err = text(&o).1;
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("in use by another berth process"), "{err}");
    assert!(err.contains(&holder.to_string()), "{err}");
    let (_, still) = b.get("/v1/configurations/targetId");
    assert_eq!(still, target);

    let mut first = b.detach().expect("first");
    b.port = common::free_port();
    b.spawn(&hello_world(), &["--lock-wait", "120"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        b.get_status("/v1/health").is_none(),
        "the standby must wait"
    );
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    b.wait_api(Duration::from_secs(60));
    b.wait_complete("deploy", LONG);
    assert_eq!(b.task_ids(), before, "tasks were relaunched by the standby");
    let (_, after) = b.get("/v1/configurations/targetId");
    assert_eq!(after, target);
}
