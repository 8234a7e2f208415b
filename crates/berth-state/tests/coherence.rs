//! Property test: after any sequence of committed transactions, the cache reads exactly what
//! a fresh load of the stored tree reads (the cache is write-through and complete).

use crate::common;

use berth_mesos::{FrameworkId, TaskState};
use berth_state::{GoalOverride, MemPersister, OverrideProgress, Persister, StateStore};
use proptest::prelude::*;
use uuid::Uuid;

const TASKS: [&str; 4] = ["a-0-server", "a-1-server", "b-0-node", "b-0-node-x"];
const KEYS: [&str; 3] = [
    "custom",
    "a-0-server:task-status",
    "last-completed-update-type",
];
const STATES: [TaskState; 3] = [
    TaskState::TaskStaging,
    TaskState::TaskRunning,
    TaskState::TaskFailed,
];

#[derive(Debug, Clone)]
enum Op {
    SetInfo(usize, usize),
    SetStatus(usize, usize),
    DeleteTask(usize),
    Override(usize, Option<(u8, u8)>),
    SetProperty(usize, Vec<u8>),
    DeleteProperty(usize),
    FrameworkId(Option<u8>),
    Target(u8),
    PutConfig(u8),
    DeleteConfig(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TASKS.len();
    prop_oneof![
        (t.clone(), 0..100usize).prop_map(|(t, n)| Op::SetInfo(t, n)),
        (t.clone(), 0..STATES.len()).prop_map(|(t, s)| Op::SetStatus(t, s)),
        t.clone().prop_map(Op::DeleteTask),
        (t, proptest::option::of((0..3u8, 0..3u8))).prop_map(|(t, o)| Op::Override(t, o)),
        (0..KEYS.len(), proptest::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(k, v)| Op::SetProperty(k, v)),
        (0..KEYS.len()).prop_map(Op::DeleteProperty),
        proptest::option::of(0..3u8).prop_map(Op::FrameworkId),
        (0..3u8).prop_map(Op::Target),
        (0..3u8).prop_map(Op::PutConfig),
        (0..3u8).prop_map(Op::DeleteConfig),
    ]
}

fn config_id(i: u8) -> Uuid {
    Uuid::from_u128(0xabcd_0000 + u128::from(i))
}

fn goal(i: u8) -> GoalOverride {
    [
        GoalOverride::None,
        GoalOverride::Paused,
        GoalOverride::Decommissioned,
    ][usize::from(i)]
}

fn progress(i: u8) -> OverrideProgress {
    [
        OverrideProgress::Pending,
        OverrideProgress::InProgress,
        OverrideProgress::Complete,
    ][usize::from(i)]
}

/// Everything a reader can see, as comparable text.
fn snapshot<P: Persister>(s: &StateStore<P>) -> Vec<String> {
    let mut out = vec![
        format!("fw {:?}", s.framework_id()),
        format!("target {:?}", s.config_target()),
    ];
    for id in s.config_ids() {
        out.push(format!(
            "config {id} {:?} {:?}",
            s.config_json(id),
            common::ok(s.config(id)).map(|c| c.user.clone())
        ));
    }
    for name in s.task_names() {
        out.push(format!(
            "task {name} {:?} {:?} {:?}",
            s.task_info(name).map(|i| i.task_id.clone()),
            s.task_status(name).map(|st| st.state),
            s.goal_override(name)
        ));
    }
    out.push(format!(
        "infos {:?}",
        s.task_infos().map(|i| &i.name).collect::<Vec<_>>()
    ));
    // The count behind `has_goal_overrides` agrees with the tasks themselves.
    let any = s.task_names().any(|n| s.goal_override(n).is_some());
    assert_eq!(s.has_goal_overrides(), any, "has_goal_overrides");
    out.push(format!("overrides {any}"));
    // The index behind `troubled_task_records` agrees with the tasks themselves.
    let troubled: Vec<&str> = s
        .task_records()
        .filter(|(info, status, _)| {
            status.is_some_and(|st| st.task_id == info.task_id && st.state.is_failed_or_lost())
                || info
                    .labels
                    .get(berth_mesos::task_labels::PERMANENTLY_FAILED)
                    == Some("true")
        })
        .map(|(info, _, _)| info.name.as_str())
        .collect();
    let indexed: Vec<&str> = s
        .troubled_task_records()
        .map(|(info, _, _)| info.name.as_str())
        .collect();
    assert_eq!(indexed, troubled, "troubled_task_records");
    out.push(format!("troubled {troubled:?}"));
    for key in s.property_keys() {
        out.push(format!("property {key} {:?}", s.property(key)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn cache_equals_a_fresh_load(batches in proptest::collection::vec(
        proptest::collection::vec(op(), 0..8), 1..8)) {
        let persister = MemPersister::new();
        let mut store = common::ok(StateStore::open(&persister, "/group/svc"));
        for batch in batches {
            let mut tx = store.transaction();
            for op in batch {
                match op {
                    Op::SetInfo(t, n) => {
                        let mut info = common::task_info(TASKS[t], n % 50);
                        // Some TaskInfos are marked permanently failed (recovery's index).
                        if n >= 50 {
                            info.labels
                                .set(berth_mesos::task_labels::PERMANENTLY_FAILED, "true");
                        }
                        tx.set_task_info(&info);
                    }
                    Op::SetStatus(t, s) => {
                        let info = common::task_info(TASKS[t], 0);
                        tx.set_task_status(TASKS[t], &common::task_status(&info, STATES[s]));
                    }
                    Op::DeleteTask(t) => {
                        tx.delete_task(TASKS[t]);
                    }
                    Op::Override(t, o) => {
                        tx.set_goal_override(TASKS[t], o.map(|(g, p)| (goal(g), progress(p))));
                    }
                    Op::SetProperty(k, v) => {
                        tx.set_property(KEYS[k], v);
                    }
                    Op::DeleteProperty(k) => {
                        tx.delete_property(KEYS[k]);
                    }
                    Op::FrameworkId(Some(i)) => {
                        tx.set_framework_id(&FrameworkId::new(format!("fw-{i}")));
                    }
                    Op::FrameworkId(None) => {
                        tx.clear_framework_id();
                    }
                    Op::Target(i) => {
                        tx.set_config_target(config_id(i));
                    }
                    Op::PutConfig(i) => {
                        let user = format!("user-{i}");
                        tx.put_config(config_id(i), &common::service_spec("/group/svc", &user));
                    }
                    Op::DeleteConfig(i) => {
                        tx.delete_config(config_id(i));
                    }
                }
            }
            common::ok(store.commit(tx));
            let fresh = common::ok(StateStore::open(&persister, "/group/svc"));
            prop_assert_eq!(snapshot(&store), snapshot(&fresh));
        }
    }
}
