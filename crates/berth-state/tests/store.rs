//! The typed store: layout, cache coherence, reopening, identity checks, key and size rules.

use crate::common;

use std::sync::Arc;

use berth_mesos::{FrameworkId, TaskId, TaskState};
use berth_state::{
    EmbeddedPersister, GoalOverride, MemPersister, OverrideProgress, Persister, StateError,
    StateStore, UpdateType, WriteOp,
};
use common::{err, ok, service_spec, task_info, task_status};
use uuid::Uuid;

const ROOT: &str = "/dcos-service-quota__hello-world";
const NAME: &str = "/quota/hello-world";

fn config_id(n: u128) -> Uuid {
    Uuid::from_u128(0x3f2b_9c4e_1a7d_4e8f_b5c6_9d0e_1f2a_3b00 + n)
}

fn raw(p: &dyn Persister, rel: &str) -> Option<String> {
    ok(p.get(&format!("{ROOT}/{rel}"))).map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Fills a store with one of everything.
fn populate<P: Persister>(store: &mut StateStore<P>) {
    let info = task_info("hello-0-server", 0);
    let info1 = task_info("hello-1-server", 1);
    let mut tx = store.transaction();
    tx.set_framework_id(&FrameworkId::new("fw-1"))
        .put_config(config_id(1), &service_spec(NAME, "nobody"))
        .put_config(config_id(2), &service_spec(NAME, "root"))
        .set_config_target(config_id(2))
        .set_task_info(&info)
        .set_task_status(
            "hello-0-server",
            &task_status(&info, TaskState::TaskRunning),
        )
        .set_task_info(&info1)
        .set_goal_override(
            "hello-1-server",
            Some((GoalOverride::Paused, OverrideProgress::InProgress)),
        )
        .set_uninstalling()
        .set_last_completed_update_type(UpdateType::Deploy)
        .set_task_status_property(
            "hello-0-server",
            &task_status(&info, TaskState::TaskRunning),
        )
        .set_property("custom", b"{\"a\":1}".to_vec());
    ok(store.commit(tx));
}

#[test]
fn layout_is_exactly_the_reference_tree() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(store.root(), ROOT);
    populate(&mut store);

    let info = task_info("hello-0-server", 0);
    let status = task_status(&info, TaskState::TaskRunning);
    let c1 = config_id(1).to_string();
    let c2 = config_id(2).to_string();
    let paths: Vec<String> = ok(p.subtree("/")).into_iter().map(|(k, _)| k).collect();
    let expected: Vec<String> = [
        "/".to_owned(),
        ROOT.to_owned(),
        format!("{ROOT}/ConfigTarget"),
        format!("{ROOT}/Configurations"),
        format!("{ROOT}/Configurations/{c1}"),
        format!("{ROOT}/Configurations/{c2}"),
        format!("{ROOT}/FrameworkID"),
        format!("{ROOT}/Properties"),
        format!("{ROOT}/Properties/custom"),
        format!("{ROOT}/Properties/hello-0-server:task-status"),
        format!("{ROOT}/Properties/last-completed-update-type"),
        format!("{ROOT}/Properties/uninstalling"),
        format!("{ROOT}/SchemaVersion"),
        format!("{ROOT}/Tasks"),
        format!("{ROOT}/Tasks/hello-0-server"),
        format!("{ROOT}/Tasks/hello-0-server/TaskInfo"),
        format!("{ROOT}/Tasks/hello-0-server/TaskStatus"),
        format!("{ROOT}/Tasks/hello-1-server"),
        format!("{ROOT}/Tasks/hello-1-server/Metadata"),
        format!("{ROOT}/Tasks/hello-1-server/Metadata/goal-state-override"),
        format!("{ROOT}/Tasks/hello-1-server/Metadata/override-status"),
        format!("{ROOT}/Tasks/hello-1-server/TaskInfo"),
        format!("{ROOT}/servicename"),
    ]
    .into();
    assert_eq!(paths, expected);

    let p: &dyn Persister = &*p;
    assert_eq!(raw(p, "servicename").as_deref(), Some(NAME));
    assert_eq!(raw(p, "SchemaVersion").as_deref(), Some("1"));
    // The framework id is protobuf `FrameworkID` bytes, as the SDK stores it.
    let fw_path = format!("{ROOT}/FrameworkID");
    let fw = ok(p.get(&fw_path)).unwrap_or_default();
    assert_eq!(fw, b"\x0a\x04fw-1");
    assert_eq!(
        ok(berth_state::readable_record(&fw_path, &fw)),
        Some(br#"{"value":"fw-1"}"#.to_vec())
    );
    assert_eq!(raw(p, "ConfigTarget"), Some(c2.clone()));
    let config = raw(p, &format!("Configurations/{c2}")).unwrap_or_default();
    assert!(
        config.starts_with("{\n  \"name\": \"/quota/hello-world\",\n"),
        "{config}"
    );
    assert!(config.contains("\"pod-specs\": []"), "{config}");
    // Task records are Mesos protobuf, as the SDK stores them; people read them as JSON.
    let info_path = format!("{ROOT}/Tasks/hello-0-server/TaskInfo");
    let stored_info = ok(p.get(&info_path)).unwrap_or_default();
    assert_eq!(stored_info, ok(berth_mesos::proto::encode_task_info(&info)));
    assert_eq!(ok(berth_mesos::proto::decode_task_info(&stored_info)), info);
    let json_len = ok(serde_json::to_vec(&info)).len();
    assert!(
        stored_info.len() * 100 < json_len * 55 && stored_info.len() > 600,
        "TaskInfo is {} bytes ({json_len} as JSON)",
        stored_info.len()
    );
    assert_eq!(
        ok(berth_state::readable_record(&info_path, &stored_info)),
        Some(ok(serde_json::to_vec_pretty(&info)))
    );
    let status_path = format!("{ROOT}/Tasks/hello-0-server/TaskStatus");
    let stored_status = ok(p.get(&status_path)).unwrap_or_default();
    assert_eq!(
        ok(berth_mesos::proto::decode_task_status(&stored_status)),
        status
    );
    let readable =
        ok(berth_state::readable_record(&status_path, &stored_status)).unwrap_or_default();
    assert!(String::from_utf8_lossy(&readable).contains(r#""state": "TASK_RUNNING""#));
    // Other nodes are text already.
    assert_eq!(
        ok(berth_state::readable_record(
            &format!("{ROOT}/ConfigTarget"),
            c2.as_bytes()
        )),
        None
    );
    assert_eq!(
        raw(p, "Tasks/hello-1-server/Metadata/goal-state-override").as_deref(),
        Some("PAUSED")
    );
    assert_eq!(
        raw(p, "Tasks/hello-1-server/Metadata/override-status").as_deref(),
        Some("IN_PROGRESS")
    );
    assert_eq!(raw(p, "Properties/uninstalling").as_deref(), Some("true"));
    assert_eq!(
        raw(p, "Properties/last-completed-update-type").as_deref(),
        Some("\"DEPLOY\"")
    );
    assert_eq!(
        raw(p, "Properties/hello-0-server:task-status"),
        Some(ok(serde_json::to_string(&status)))
    );
    assert_eq!(raw(p, "Properties/custom").as_deref(), Some("{\"a\":1}"));
    for inner in [
        "",
        "/Tasks",
        "/Tasks/hello-0-server",
        "/Configurations",
        "/Properties",
    ] {
        assert_eq!(
            ok(p.get(&format!("{ROOT}{inner}"))),
            Some(Vec::new()),
            "{inner}"
        );
    }
}

#[test]
fn reads_come_from_the_cache_and_match_a_fresh_load() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(store.framework_id(), None);
    assert_eq!(store.task_infos().count(), 0);
    populate(&mut store);

    let fresh = ok(StateStore::open(p.clone(), NAME));
    for s in [&store, &fresh] {
        assert_eq!(s.framework_id().map(FrameworkId::as_str), Some("fw-1"));
        assert_eq!(s.config_target(), Some(config_id(2)));
        assert_eq!(
            s.config_ids().collect::<Vec<_>>(),
            vec![config_id(1), config_id(2)]
        );
        assert_eq!(
            ok(s.config(config_id(1))),
            Some(&service_spec(NAME, "nobody"))
        );
        assert_eq!(ok(s.target_config()), Some(&service_spec(NAME, "root")));
        assert_eq!(ok(s.config(config_id(9))), None);
        assert_eq!(
            s.task_infos().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            vec!["hello-0-server", "hello-1-server"]
        );
        assert_eq!(
            s.task_info("hello-0-server"),
            Some(&task_info("hello-0-server", 0))
        );
        assert_eq!(
            s.task_status("hello-0-server").map(|st| st.state),
            Some(TaskState::TaskRunning)
        );
        assert_eq!(s.task_status("hello-1-server"), None);
        assert_eq!(s.task_statuses().count(), 1);
        assert_eq!(s.goal_override("hello-0-server"), None);
        assert_eq!(
            s.goal_override("hello-1-server"),
            Some((GoalOverride::Paused, OverrideProgress::InProgress))
        );
        assert_eq!(
            s.property_keys().collect::<Vec<_>>(),
            vec![
                "custom",
                "hello-0-server:task-status",
                "last-completed-update-type",
                "uninstalling"
            ]
        );
        assert_eq!(s.property("custom"), Some(&b"{\"a\":1}"[..]));
        assert!(ok(s.is_uninstalling()));
        assert_eq!(ok(s.last_completed_update_type()), Some(UpdateType::Deploy));
        assert_eq!(
            ok(s.task_status_property("hello-0-server")).map(|st| st.state),
            Some(TaskState::TaskRunning)
        );
        assert_eq!(ok(s.task_status_property("hello-1-server")), None);
        assert_eq!(
            s.config_json(config_id(2)).map(<[u8]>::len),
            ok(p.get(&format!("{ROOT}/Configurations/{}", config_id(2)))).map(|v| v.len())
        );
    }
}

#[test]
fn a_failed_commit_changes_neither_store_nor_cache() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    populate(&mut store);
    let before = ok(p.subtree("/"));

    let info = task_info("hello-2-server", 2);
    let mut tx = store.transaction();
    tx.set_task_info(&info)
        .delete_task("hello-0-server")
        .set_framework_id(&FrameworkId::new("fw-2"));
    p.fail_next_applies(1);
    let e = err(store.commit(tx.clone()));
    assert!(matches!(e, StateError::Backend { .. }), "{e}");
    assert_eq!(ok(p.subtree("/")), before);
    assert_eq!(store.task_info("hello-2-server"), None);
    assert!(store.task_info("hello-0-server").is_some());
    assert_eq!(store.framework_id().map(FrameworkId::as_str), Some("fw-1"));

    // The same transaction succeeds once the backend works again.
    ok(store.commit(tx));
    assert!(store.task_info("hello-2-server").is_some());
    assert_eq!(store.task_info("hello-0-server"), None);
    assert_eq!(store.task_status("hello-0-server"), None);
    assert_eq!(ok(p.get(&format!("{ROOT}/Tasks/hello-0-server"))), None);
}

#[test]
fn writes_of_one_transaction_apply_in_order() {
    let mut store = ok(StateStore::open(MemPersister::new(), "svc"));
    let info = task_info("t", 0);
    let mut tx = store.transaction();
    tx.set_task_info(&info)
        .set_task_status("t", &task_status(&info, TaskState::TaskStaging))
        .delete_task("t")
        .set_task_info(&info)
        .set_task_status("t", &task_status(&info, TaskState::TaskRunning))
        .set_property("k", b"1".to_vec())
        .delete_property("k")
        .set_framework_id(&FrameworkId::new("a"))
        .clear_framework_id()
        .put_config(config_id(5), &service_spec("svc", "root"))
        .delete_config(config_id(5));
    assert_eq!(tx.len(), 11);
    ok(store.commit(tx));
    fn check<P: Persister>(s: &StateStore<P>) {
        assert_eq!(
            s.task_status("t").map(|st| st.state),
            Some(TaskState::TaskRunning)
        );
        assert_eq!(s.property("k"), None);
        assert_eq!(s.framework_id(), None);
        assert_eq!(s.config_ids().count(), 0);
    }
    check(&store);
    check(&ok(StateStore::open(store.persister(), "svc")));
    ok(store.commit(store.transaction()));
}

#[test]
fn goal_overrides_set_transition_and_clear() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let meta = format!("{ROOT}/Tasks/hello-0-server/Metadata");
    let steps = [
        (
            Some((GoalOverride::Decommissioned, OverrideProgress::Pending)),
            Some(("DECOMMISSIONED", "PENDING")),
        ),
        (
            Some((GoalOverride::Paused, OverrideProgress::Complete)),
            Some(("PAUSED", "COMPLETE")),
        ),
        (
            Some((GoalOverride::None, OverrideProgress::InProgress)),
            Some(("NONE", "IN_PROGRESS")),
        ),
        (Some((GoalOverride::None, OverrideProgress::Complete)), None),
        (
            Some((GoalOverride::Paused, OverrideProgress::Pending)),
            Some(("PAUSED", "PENDING")),
        ),
        (None, None),
    ];
    let mut tx = store.transaction();
    tx.set_task_info(&info);
    ok(store.commit(tx));
    for (state, stored) in steps {
        let mut tx = store.transaction();
        tx.set_goal_override("hello-0-server", state);
        ok(store.commit(tx));
        let expect = state.filter(|s| *s != (GoalOverride::None, OverrideProgress::Complete));
        assert_eq!(store.goal_override("hello-0-server"), expect);
        let fresh = ok(StateStore::open(p.clone(), NAME));
        assert_eq!(fresh.goal_override("hello-0-server"), expect);
        let target = ok(p.get(&format!("{meta}/goal-state-override")));
        let progress = ok(p.get(&format!("{meta}/override-status")));
        match stored {
            Some((t, pr)) => {
                assert_eq!(target.as_deref(), Some(t.as_bytes()));
                assert_eq!(progress.as_deref(), Some(pr.as_bytes()));
            }
            None => assert_eq!((target, progress), (None, None)),
        }
    }
    assert!(store.task_info("hello-0-server").is_some());
}

#[test]
fn property_keys_and_sizes_are_checked_before_anything_is_written() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let before = ok(p.subtree("/"));
    for (key, reason_part) in [
        ("a/b", "'/'"),
        ("", "empty"),
        ("..", "'..'"),
        (".", "'.'"),
        ("tab\tkey", "U+0009"),
    ] {
        let mut tx = store.transaction();
        tx.set_property("fine", b"1".to_vec())
            .set_property(key, b"v".to_vec());
        match err(store.commit(tx)) {
            StateError::InvalidKey {
                kind,
                key: k,
                reason,
            } => {
                assert_eq!(kind, "property key");
                assert_eq!(k, key);
                assert!(reason.contains(reason_part), "{reason}");
            }
            other => panic!("expected InvalidKey for {key:?}, got {other}"),
        }
        assert_eq!(ok(p.subtree("/")), before);
        assert_eq!(store.property("fine"), None);
    }
    let mut tx = store.transaction();
    tx.delete_property("a/b");
    assert!(matches!(
        err(store.commit(tx)),
        StateError::InvalidKey { .. }
    ));

    let mut tx = store.transaction();
    tx.set_property("max", vec![b'x'; 1_000_000]);
    ok(store.commit(tx));
    assert_eq!(store.property("max").map(<[u8]>::len), Some(1_000_000));

    let mut tx = store.transaction();
    tx.set_property("small", b"1".to_vec())
        .set_property("big", vec![b'x'; 1_000_001]);
    let e = err(store.commit(tx));
    match &e {
        StateError::ValueTooLarge { path, size, max } => {
            assert_eq!(path, &format!("{ROOT}/Properties/big"));
            assert_eq!((*size, *max), (1_000_001, 1_000_000));
        }
        other => panic!("expected ValueTooLarge, got {other}"),
    }
    assert!(e.to_string().contains("1000001 bytes"), "{e}");
    assert_eq!(store.property("small"), None);
    assert_eq!(ok(p.get(&format!("{ROOT}/Properties/small"))), None);

    let mut tx = store.transaction();
    tx.set_task_status(
        "bad/name",
        &task_status(&task_info("x", 0), TaskState::TaskRunning),
    );
    match err(store.commit(tx)) {
        StateError::InvalidKey { kind, .. } => assert_eq!(kind, "task name"),
        other => panic!("expected InvalidKey, got {other}"),
    }
}

#[test]
fn first_open_stamps_name_and_version_once() {
    let p = Arc::new(MemPersister::new());
    let store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(store.service_name(), NAME);
    assert_eq!(raw(&*p, "servicename").as_deref(), Some(NAME));
    assert_eq!(raw(&*p, "SchemaVersion").as_deref(), Some("1"));
    // A reopen writes nothing: make writes fail and open again.
    p.fail_next_applies(1);
    ok(StateStore::open(p.clone(), NAME));
}

#[test]
fn another_services_state_is_refused_and_untouched() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), "a/b"));
    let mut tx = store.transaction();
    tx.set_config_target(config_id(1));
    ok(store.commit(tx));
    let before = ok(p.subtree("/"));
    // "a__b" maps to the same root, /dcos-service-a__b.
    let e = err(StateStore::open(p.clone(), "a__b"));
    assert!(matches!(e, StateError::WrongService { .. }));
    assert!(
        e.to_string()
            .contains("this state belongs to service 'a/b', not 'a__b'"),
        "{e}"
    );
    assert_eq!(ok(p.subtree("/")), before);
}

#[test]
fn unknown_schema_versions_are_refused() {
    let p = Arc::new(MemPersister::new());
    ok(StateStore::open(p.clone(), NAME));
    ok(p.set(&format!("{ROOT}/SchemaVersion"), b"2"));
    let before = ok(p.subtree("/"));
    let e = err(StateStore::open(p.clone(), NAME));
    match &e {
        StateError::UnsupportedSchemaVersion {
            found,
            supported,
            path,
        } => {
            assert_eq!((found.as_str(), *supported), ("2", "1"));
            assert_eq!(path, &format!("{ROOT}/SchemaVersion"));
        }
        other => panic!("expected UnsupportedSchemaVersion, got {other}"),
    }
    assert!(e.to_string().contains("schema version '2'"), "{e}");
    assert!(e.to_string().contains("only version '1'"), "{e}");
    assert_eq!(ok(p.subtree("/")), before);
}

/// Task records written as JSON (by earlier berth versions) are read as before, and the next
/// write of a record stores it as protobuf.
#[test]
fn json_records_of_earlier_versions_are_read_and_rewritten_as_protobuf() {
    let p = Arc::new(MemPersister::new());
    ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let status = task_status(&info, TaskState::TaskRunning);
    let dir = format!("{ROOT}/Tasks/hello-0-server");
    ok(p.set(&format!("{dir}/TaskInfo"), &ok(serde_json::to_vec(&info))));
    ok(p.set(
        &format!("{dir}/TaskStatus"),
        &ok(serde_json::to_vec(&status)),
    ));
    ok(p.set(&format!("{ROOT}/FrameworkID"), br#"{"value":"fw-1"}"#));
    let mut store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(store.framework_id(), Some(&FrameworkId::new("fw-1")));
    assert_eq!(store.task_info("hello-0-server"), Some(&info));
    assert_eq!(store.task_status("hello-0-server"), Some(&status));
    let mut tx = store.transaction();
    tx.set_task_status("hello-0-server", &status);
    ok(store.commit(tx));
    let stored = ok(p.get(&format!("{dir}/TaskStatus"))).unwrap_or_default();
    assert_ne!(stored.first(), Some(&b'{'));
    assert_eq!(ok(berth_mesos::proto::decode_task_status(&stored)), status);
    let reopened = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(reopened.task_info("hello-0-server"), Some(&info));
    assert_eq!(reopened.task_status("hello-0-server"), Some(&status));
}

/// A status with a reason no protobuf number exists for is stored as JSON, not refused.
#[test]
fn records_protobuf_cannot_hold_are_stored_as_json() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let mut status = task_status(&info, TaskState::TaskFailed);
    status.reason = Some("REASON_FROM_A_NEWER_MASTER".into());
    let mut tx = store.transaction();
    tx.set_task_info(&info)
        .set_task_status("hello-0-server", &status);
    ok(store.commit(tx));
    let stored = ok(p.get(&format!("{ROOT}/Tasks/hello-0-server/TaskStatus"))).unwrap_or_default();
    assert_eq!(stored, ok(serde_json::to_vec(&status)));
    let reopened = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(reopened.task_status("hello-0-server"), Some(&status));
}

#[test]
fn corrupt_values_are_named() {
    let p = Arc::new(MemPersister::new());
    ok(StateStore::open(p.clone(), NAME));
    let cases = [
        ("Tasks/t/TaskInfo", "{not json"),
        ("Tasks/t/TaskStatus", "{}"),
        ("FrameworkID", "fw-1"),
        ("ConfigTarget", "not-a-uuid"),
        ("Configurations/not-a-uuid", "{}"),
        ("Tasks/t/Metadata/goal-state-override", "SLEEPING"),
        (
            "Tasks/t/TaskInfo",
            &ok(serde_json::to_string(&task_info("other", 0))),
        ),
    ];
    let other = ok(berth_mesos::proto::encode_task_info(&task_info("other", 0)));
    // Protobuf that ends inside a field; a TaskStatus whose state is 99.
    let binary: [(&str, &[u8]); 3] = [
        ("Tasks/t/TaskInfo", &other),
        ("Tasks/t/TaskInfo", &[0x0a, 0x20, b'h']),
        (
            "Tasks/t/TaskStatus",
            &[0x0a, 0x03, 0x0a, 0x01, b't', 0x10, 0x63],
        ),
    ];
    let cases = cases
        .iter()
        .map(|(rel, v)| (*rel, v.as_bytes()))
        .chain(binary);
    for (rel, value) in cases {
        let path = format!("{ROOT}/{rel}");
        ok(p.set(&path, value));
        match err(StateStore::open(p.clone(), NAME)) {
            StateError::CorruptValue { path: at, message } => {
                assert_eq!(at, path);
                assert!(!message.is_empty());
            }
            other => panic!("{rel}: expected CorruptValue, got {other}"),
        }
        ok(p.delete(&path));
        ok(StateStore::open(p.clone(), NAME));
    }
    // An override without its progress (never written by berth) is reported too.
    ok(p.set(
        &format!("{ROOT}/Tasks/t/Metadata/goal-state-override"),
        b"PAUSED",
    ));
    assert!(matches!(
        err(StateStore::open(p.clone(), NAME)),
        StateError::CorruptValue { .. }
    ));
    ok(p.delete(&format!("{ROOT}/Tasks/t")));

    // Configurations are parsed when first read: a bad one does not stop the open.
    let id = config_id(7);
    let path = format!("{ROOT}/Configurations/{id}");
    ok(p.set(&path, b"{\"name\": 1}"));
    let store = ok(StateStore::open(p.clone(), NAME));
    match err(store.config(id)) {
        StateError::CorruptValue { path: at, .. } => assert_eq!(at, path),
        other => panic!("expected CorruptValue, got {other}"),
    }
    assert_eq!(store.config_json(id), Some(&b"{\"name\": 1}"[..]));
}

#[test]
fn property_helpers_read_plain_text_too() {
    let p = Arc::new(MemPersister::new());
    ok(p.set(
        &format!("{ROOT}/Properties/last-completed-update-type"),
        b"UPDATE",
    ));
    ok(p.set(&format!("{ROOT}/Properties/uninstalling"), b"false"));
    let store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(
        ok(store.last_completed_update_type()),
        Some(UpdateType::Update)
    );
    assert!(!ok(store.is_uninstalling()));
    ok(p.set(&format!("{ROOT}/Properties/uninstalling"), b"maybe"));
    let store = ok(StateStore::open(p.clone(), NAME));
    assert!(matches!(
        err(store.is_uninstalling()),
        StateError::CorruptValue { .. }
    ));
    assert_eq!(
        berth_state::task_status_property_key("hello-0-server"),
        "hello-0-server:task-status"
    );
}

#[test]
fn unknown_nodes_are_ignored_and_kept() {
    let p = Arc::new(MemPersister::new());
    ok(p.apply(&[
        WriteOp::set(format!("{ROOT}/lock/leases/x"), "lease"),
        WriteOp::set(format!("{ROOT}/Services/other/ConfigTarget"), "x"),
        WriteOp::set(format!("{ROOT}/Tasks/t/Extra"), "x"),
        WriteOp::set("/dcos-service-other/FrameworkID", "x"),
    ]));
    let mut store = ok(StateStore::open(p.clone(), NAME));
    assert_eq!(store.task_names().count(), 0);
    ok(store.delete_all());
    assert_eq!(ok(p.get(ROOT)), None);
    assert!(ok(p.get("/dcos-service-other/FrameworkID")).is_some());
}

#[test]
fn delete_all_removes_the_root() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    populate(&mut store);
    ok(store.delete_all());
    assert_eq!(ok(p.children("/")), Vec::<String>::new());
    assert_eq!(store.task_infos().count(), 0);
    assert_eq!(store.framework_id(), None);
    assert_eq!(store.property_keys().count(), 0);
    assert_eq!(store.config_target(), None);
}

#[test]
fn invalid_service_names_are_refused() {
    for name in ["", "/", "a//b", "a/", "bad\u{1}name"] {
        match err(StateStore::open(MemPersister::new(), name)) {
            StateError::InvalidKey { kind, key, .. } => {
                assert_eq!((kind, key.as_str()), ("service name", name));
            }
            other => panic!("{name:?}: expected InvalidKey, got {other}"),
        }
    }
}

#[test]
fn reopening_from_disk_restores_everything() {
    let dir = common::temp_dir();
    let (tree, infos) = {
        let mut store = ok(StateStore::open(
            ok(EmbeddedPersister::open(dir.path())),
            NAME,
        ));
        populate(&mut store);
        // Many tasks in one group commit.
        let mut tx = store.transaction();
        for n in 0..500 {
            let info = task_info(&format!("data-{n}-node"), n);
            tx.set_task_info(&info)
                .set_task_status(&info.name, &task_status(&info, TaskState::TaskRunning));
        }
        ok(store.commit(tx));
        let infos: Vec<_> = store.task_infos().cloned().collect();
        (ok(store.persister().subtree("/")), infos)
    };
    let store = ok(StateStore::open(
        ok(EmbeddedPersister::open(dir.path())),
        NAME,
    ));
    assert_eq!(ok(store.persister().subtree("/")), tree);
    assert_eq!(store.task_infos().cloned().collect::<Vec<_>>(), infos);
    assert_eq!(store.task_infos().count(), 502);
    assert_eq!(store.task_statuses().count(), 501);
    assert_eq!(store.framework_id().map(FrameworkId::as_str), Some("fw-1"));
    assert_eq!(ok(store.target_config()), Some(&service_spec(NAME, "root")));
    assert_eq!(
        store.goal_override("hello-1-server"),
        Some((GoalOverride::Paused, OverrideProgress::InProgress))
    );
    assert!(ok(store.is_uninstalling()));
}

#[test]
fn the_store_works_over_a_boxed_persister() {
    let boxed: Box<dyn Persister> = Box::new(MemPersister::new());
    let mut store: StateStore = ok(StateStore::open(boxed, "svc"));
    let mut tx = store.transaction();
    tx.set_framework_id(&FrameworkId::new("x"));
    ok(store.commit(tx));
    let store = ok(StateStore::open(store.into_persister(), "svc"));
    assert_eq!(store.framework_id().map(FrameworkId::as_str), Some("x"));
}

#[test]
fn a_corrupt_record_among_thousands_is_named() {
    // Large states are parsed on several threads; the error must still name the value.
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let mut tx = store.transaction();
    for n in 0..800 {
        let info = task_info(&format!("node-{n:03}-server"), n);
        tx.set_task_info(&info)
            .set_task_status(&info.name, &task_status(&info, TaskState::TaskRunning));
    }
    ok(store.commit(tx));
    assert_eq!(
        ok(StateStore::open(p.clone(), NAME))
            .task_statuses()
            .count(),
        800
    );
    for bad in ["node-000-server", "node-455-server", "node-799-server"] {
        let path = format!("{ROOT}/Tasks/{bad}/TaskStatus");
        let good = ok(p.get(&path)).unwrap_or_default();
        ok(p.set(&path, b"{\"state\":\"TASK_SLEEPING\"}"));
        match err(StateStore::open(p.clone(), NAME)) {
            StateError::CorruptValue { path: at, .. } => assert_eq!(at, path),
            other => panic!("expected CorruptValue, got {other}"),
        }
        ok(p.set(&path, &good));
    }
    ok(StateStore::open(p.clone(), NAME));
}

#[test]
fn staged_writes_are_read_at_once_and_stored_by_one_flush() {
    let persister = std::sync::Arc::new(MemPersister::new());
    let mut store = StateStore::open(persister.clone(), "hello-world").unwrap();
    let mut tx = store.transaction();
    tx.set_property("a", b"1".to_vec());
    store.stage(tx).unwrap();
    let mut tx = store.transaction();
    tx.set_property("b", b"2".to_vec());
    store.stage(tx).unwrap();
    // Visible through the store, not yet in the persister.
    assert_eq!(store.property("a"), Some(&b"1"[..]));
    assert!(store.has_pending());
    assert_eq!(
        persister
            .get("/dcos-service-hello-world/Properties/a")
            .unwrap(),
        None
    );
    store.flush().unwrap();
    assert!(!store.has_pending());
    assert_eq!(
        persister
            .get("/dcos-service-hello-world/Properties/b")
            .unwrap(),
        Some(b"2".to_vec())
    );
    // A failing flush keeps the writes pending and stores nothing of them.
    let mut tx = store.transaction();
    tx.set_property("c", b"3".to_vec());
    store.stage(tx).unwrap();
    persister.fail_next_applies(1);
    assert!(store.flush().is_err());
    assert!(store.has_pending());
    assert_eq!(
        persister
            .get("/dcos-service-hello-world/Properties/c")
            .unwrap(),
        None
    );
    // A reopen sees only what was flushed.
    let reopened = StateStore::open(persister.clone(), "hello-world").unwrap();
    assert_eq!(reopened.property("c"), None);
    assert_eq!(reopened.property("a"), Some(&b"1"[..]));
}

#[test]
fn an_unconfirmed_launch_is_the_data_of_the_task_node() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let mut tx = store.transaction();
    tx.set_task_unconfirmed("hello-0-server", true)
        .set_task_info(&info);
    ok(store.commit(tx));
    let mark = "Tasks/hello-0-server";
    assert_eq!(raw(&*p, mark).as_deref(), Some("unconfirmed-launch"));
    assert_eq!(raw(&*p, "Tasks/hello-0-server/Metadata"), None);
    assert!(store.is_unconfirmed("hello-0-server"));
    assert!(!store.is_unconfirmed("hello-1-server"));
    // Read back on open.
    let reopened = ok(StateStore::open(p.clone(), NAME));
    assert!(reopened.is_unconfirmed("hello-0-server"));
    // A status saying the cluster never saw the launch confirms nothing.
    let mut lost = task_status(&info, TaskState::TaskLost);
    lost.reason = Some("REASON_RECONCILIATION".to_owned());
    let mut tx = store.transaction();
    tx.set_task_status("hello-0-server", &lost);
    ok(store.commit(tx));
    assert!(store.is_unconfirmed("hello-0-server"));
    assert!(ok(StateStore::open(p.clone(), NAME)).is_unconfirmed("hello-0-server"));
    // Confirmed by a status of the launch: the status proves it, so neither the mark nor the
    // TaskInfo is rewritten — the status is the one write.
    let before = raw(&*p, "Tasks/hello-0-server/TaskInfo");
    let mut tx = store.transaction();
    tx.set_task_status(
        "hello-0-server",
        &task_status(&info, TaskState::TaskRunning),
    )
    .set_task_unconfirmed("hello-0-server", false);
    ok(store.commit(tx));
    assert_eq!(raw(&*p, mark).as_deref(), Some("unconfirmed-launch"));
    assert!(!store.is_unconfirmed("hello-0-server"));
    assert!(!ok(StateStore::open(p.clone(), NAME)).is_unconfirmed("hello-0-server"));
    assert_eq!(raw(&*p, "Tasks/hello-0-server/TaskInfo"), before);
    // A later status that proves nothing (the cluster lost the task) clears the mark, so that
    // the launch stays confirmed after a restart.
    let mut tx = store.transaction();
    tx.set_task_status("hello-0-server", &lost);
    ok(store.commit(tx));
    assert_eq!(raw(&*p, mark).as_deref(), Some(""));
    assert!(!store.is_unconfirmed("hello-0-server"));
    assert!(!ok(StateStore::open(p.clone(), NAME)).is_unconfirmed("hello-0-server"));
    // Deleting a task deletes its mark.
    let mut tx = store.transaction();
    tx.set_task_unconfirmed("hello-0-server", true);
    ok(store.commit(tx));
    assert!(store.is_unconfirmed("hello-0-server"));
    let mut tx = store.transaction();
    tx.delete_task("hello-0-server");
    ok(store.commit(tx));
    assert_eq!(raw(&*p, mark), None);
    assert!(!store.is_unconfirmed("hello-0-server"));
    assert!(!ok(StateStore::open(p, NAME)).is_unconfirmed("hello-0-server"));
}

/// A confirmed launch whose stored status no longer proves it — a relaunch in place (a new
/// task id on the same reservations), or a sibling confirmed by another task's status —
/// gets its mark cleared, so that a restart reads what the scheduler knew.
#[test]
fn a_mark_the_stored_status_no_longer_proves_is_cleared() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let a = task_info("hello-0-server", 0);
    let mut b = task_info("hello-0-sidecar", 1);
    b.task_id = TaskId::new("hello-world__hello-0-sidecar__launched-with-server");
    let mut tx = store.transaction();
    for info in [&a, &b] {
        tx.set_task_unconfirmed(&info.name, true)
            .set_task_info(info);
    }
    ok(store.commit(tx));
    // The server's status confirms the pod's launch: both marks go in memory; the sidecar has
    // no status to prove it, so its stored mark is cleared.
    let mut tx = store.transaction();
    tx.set_task_status("hello-0-server", &task_status(&a, TaskState::TaskRunning))
        .set_task_unconfirmed("hello-0-server", false)
        .set_task_unconfirmed("hello-0-sidecar", false);
    ok(store.commit(tx));
    assert_eq!(
        raw(&*p, "Tasks/hello-0-server").as_deref(),
        Some("unconfirmed-launch")
    );
    assert_eq!(raw(&*p, "Tasks/hello-0-sidecar").as_deref(), Some(""));
    let reopened = ok(StateStore::open(p.clone(), NAME));
    assert!(!reopened.is_unconfirmed("hello-0-server"));
    assert!(!reopened.is_unconfirmed("hello-0-sidecar"));
    // Relaunched in place: a new task id, the old status stays until the new one comes.
    let mut relaunched = a.clone();
    relaunched.task_id = TaskId::new("hello-world__hello-0-server__relaunched");
    let mut tx = store.transaction();
    tx.set_task_info(&relaunched);
    ok(store.commit(tx));
    assert_eq!(raw(&*p, "Tasks/hello-0-server").as_deref(), Some(""));
    assert!(!ok(StateStore::open(p, NAME)).is_unconfirmed("hello-0-server"));
}

/// The mark as earlier versions wrote it (a node of its own under `Metadata`) is read, and
/// deleted when the launch is confirmed.
#[test]
fn an_unconfirmed_launch_node_of_an_earlier_version_is_read_and_removed() {
    let p = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(p.clone(), NAME));
    let info = task_info("hello-0-server", 0);
    let mut tx = store.transaction();
    tx.set_task_info(&info);
    ok(store.commit(tx));
    let legacy = format!("{ROOT}/Tasks/hello-0-server/Metadata/unconfirmed-launch");
    ok(p.set(&legacy, b"true"));
    let mut store = ok(StateStore::open(p.clone(), NAME));
    assert!(store.is_unconfirmed("hello-0-server"));
    let mut tx = store.transaction();
    tx.set_task_unconfirmed("hello-0-server", false);
    ok(store.commit(tx));
    assert_eq!(ok(p.get(&legacy)), None);
    assert!(!ok(StateStore::open(p, NAME)).is_unconfirmed("hello-0-server"));
}

#[test]
fn tasks_alike_share_one_copy_of_their_readiness_check_also_after_reopening() {
    use berth_mesos::CheckInfo;
    let check = |command: &str| Some(Arc::new(CheckInfo::shell(command, 0.0, 5.0, 5.0)));
    let persister = Arc::new(MemPersister::new());
    let mut store = ok(StateStore::open(persister.clone(), NAME));
    let mut tx = store.transaction();
    for (n, command) in ["./ready", "./ready", "./other"].into_iter().enumerate() {
        let mut info = task_info(&format!("hello-{n}-server"), n);
        info.check = check(command);
        tx.put_task_info(info);
    }
    ok(store.commit(tx));
    let shared = |store: &StateStore<Arc<MemPersister>>| {
        let get = |n: usize| {
            store
                .task_info(&format!("hello-{n}-server"))
                .and_then(|i| i.check.clone())
                .unwrap()
        };
        let (a, b, c) = (get(0), get(1), get(2));
        assert_eq!(a.command.command.value, "./ready");
        assert_eq!(c.command.command.value, "./other");
        Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&a, &c)
    };
    assert!(shared(&store), "equal checks are one copy in the cache");
    let reopened = ok(StateStore::open(persister, NAME));
    assert!(shared(&reopened), "and after reading the store again");
}
