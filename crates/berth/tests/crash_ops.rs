//! `kill -9` of `berth run` in the middle of day-2 operations on the local cluster, at several
//! instants: a pod restart, a pod replace and a recovery each complete after the scheduler
//! starts again, with one live copy of every task, no reservation left behind and the
//! volumes of live pods kept.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Berth, hello_world};

const LONG: Duration = Duration::from_secs(90);
const ROLE: &str = "hello-world-role";

/// The greetings file the task `name` writes on its volume, with its contents.
fn greetings_of(b: &Berth, name: &str) -> Option<(PathBuf, String)> {
    b.volumes().into_iter().find_map(|v| {
        let p = v.join("greetings");
        let text = std::fs::read_to_string(&p).ok()?;
        text.contains(&format!("from {name},")).then_some((p, text))
    })
}

fn id_of(b: &Berth, task: &str) -> String {
    b.task_ids()
        .get(task)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("{task} has no status"))
}

/// Waits until every plan is complete, the reservations are back to `reserved` and the
/// volumes to `volumes` (a replaced pod's old ones are released when its agent next offers
/// them), and every task runs once.
fn settled(b: &Berth, reserved: usize, volumes: usize, when: &str) {
    b.wait_complete("deploy", LONG);
    b.wait_complete("recovery", LONG);
    b.wait_for(
        &format!("reservations back to {reserved} {when}"),
        LONG,
        || b.reserved(ROLE) == reserved && b.volumes().len() == volumes,
    );
    for (task, n) in b.live_copies() {
        assert_eq!(n, 1, "{task} has {n} live copies {when}");
    }
}

/// `pause` into an operation on `task`: `kill -9` of `berth run`, a new one, and `task` runs
/// again under an id other than `old`.
fn crash_and_restart(b: &mut Berth, pause: Duration, task: &str, old: &str, when: &str) {
    std::thread::sleep(pause);
    b.kill9();
    b.start(&hello_world(), &[]);
    eprintln!("{task}: restarted {when}");
    b.wait_relaunched(task, old, LONG);
}

#[test]
fn kill_9_during_restart_replace_and_recovery() {
    let mut b = Berth::new(28000);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let reserved = b.reserved(ROLE);
    let volumes = b.volumes().len();
    assert!(reserved > 0, "no reservation of {ROLE} after the deploy");
    assert_eq!(volumes, 3, "{:?}", b.volumes());

    // Instants after the operation was accepted: before the kill reached the task, between
    // the kill and the relaunch, and while the relaunched task starts.
    for delay_ms in [0, 40, 250] {
        let when = format!("after kill -9 {delay_ms} ms into the operation");
        let pause = Duration::from_millis(delay_ms);

        // Pod restart: in place, same volume, its contents kept.
        let old = id_of(&b, "hello-0-server");
        let agent = b.agent_of("hello-0", "hello-0-server");
        let (volume, before) = greetings_of(&b, "hello-0-server").expect("hello's greetings");
        let (code, body) = b.post("/v1/pods/hello-0/restart", None);
        assert_eq!(code, 200, "{body}");
        crash_and_restart(&mut b, pause, "hello-0-server", &old, &when);
        settled(&b, reserved, volumes, &when);
        assert_eq!(b.agent_of("hello-0", "hello-0-server"), agent, "{when}");
        let (after_volume, after) = greetings_of(&b, "hello-0-server").expect("greetings");
        assert_eq!(after_volume, volume, "hello-0 changed volume {when}");
        assert!(
            after.starts_with(&before) && after.len() > before.len(),
            "hello-0's greetings {when}: {after:?}, was {before:?}"
        );

        // Pod replace: a fresh volume; the old reservations and volume are released.
        let old = id_of(&b, "world-0-server");
        let (old_volume, _) = greetings_of(&b, "world-0-server").expect("world's greetings");
        let (code, body) = b.post("/v1/pods/world-0/replace", None);
        assert_eq!(code, 200, "{body}");
        crash_and_restart(&mut b, pause, "world-0-server", &old, &when);
        settled(&b, reserved, volumes, &when);
        assert!(
            !old_volume.exists(),
            "world-0's old volume is still there {when}"
        );

        // Recovery: the task crashes; relaunched in place with its volume.
        let old = id_of(&b, "world-1-server");
        let (volume, before) = greetings_of(&b, "world-1-server").expect("world's greetings");
        b.kill_task("world-1-server");
        crash_and_restart(&mut b, pause, "world-1-server", &old, &when);
        settled(&b, reserved, volumes, &when);
        let (after_volume, after) = greetings_of(&b, "world-1-server").expect("greetings");
        assert_eq!(after_volume, volume, "world-1 changed volume {when}");
        assert!(after.starts_with(&before), "world-1's greetings {when}");
    }
}
