//! `berth run --master` against the Mesos master double: the end-to-end scenarios of the local
//! cluster, and the faults Mesos brings. Every call berth sends and every event the double
//! sends is checked against Mesos's own `.proto` files.

use std::path::Path;
use std::time::Duration;

use berth_cluster::sim::SimAgentSpec;
use berth_mesos::scheduler::CallType;
use berth_mesos_double::{DoubleOptions, MesosDouble, Schema};

use crate::common::{Berth, hello_world};

/// A runtime for the double, kept alive for the test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn schema() -> Schema {
    let dir = berth_mesos_double::proto::default_proto_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    Schema::load(&dir).expect("Mesos protos load")
}

/// A double with `masters` masters and three agents in zones a, b, c.
fn double(rt: &tokio::runtime::Runtime, masters: usize) -> MesosDouble {
    let options = DoubleOptions {
        masters,
        heartbeat_secs: 0.5,
        schema: Some(schema()),
        ..DoubleOptions::default()
    };
    rt.block_on(MesosDouble::start(
        SimAgentSpec::many(3, &["a", "b", "c"]),
        options,
    ))
    .expect("double starts")
}

fn run_args(master: &str) -> Vec<String> {
    vec![
        "--master".to_owned(),
        master.to_owned(),
        "--failover-timeout".to_owned(),
        "30".to_owned(),
    ]
}

fn start(berth: &mut Berth, master: &str) {
    let args = run_args(master);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    berth.start(&hello_world(), &args);
}

fn assert_no_violations(d: &MesosDouble, berth: &Berth) {
    let v = d.violations();
    assert!(v.is_empty(), "proto violations: {v:#?}\n{}", berth.log());
}

/// Task name → (task id, state) of the tasks running in the double.
fn live(d: &MesosDouble) -> std::collections::BTreeMap<String, String> {
    d.sim()
        .live_tasks()
        .into_iter()
        .map(|(name, id, _agent)| (name, id))
        .collect()
}

#[test]
fn deploy_restart_and_resubscribe_with_the_same_framework() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let tasks = live(&d);
    assert_eq!(tasks.len(), 3, "hello-0, world-0, world-1: {tasks:?}");
    let api: std::collections::BTreeMap<String, String> = berth
        .task_ids()
        .into_iter()
        .map(|(name, (id, _))| (name, id))
        .collect();
    let api_ids: Vec<&String> = api.values().collect();
    for id in tasks.values() {
        assert!(api_ids.contains(&id), "{id} not in the API's tasks {api:?}");
    }
    let framework = d.sim().framework_id().expect("framework");
    assert!(d.count(CallType::Accept) >= 3);
    assert!(d.count(CallType::Acknowledge) >= 3, "{:?}", d.calls());
    let (code, _) = berth.get("/v1/health");
    assert_eq!(code, 200);

    // kill -9 and start again: the same framework id, reconciliation, no relaunch.
    berth.kill9();
    berth.wait_for("the double notices the disconnection", Duration::from_secs(10), || {
        !d.is_connected()
    });
    start(&mut berth, &d.master_arg());
    berth.wait_for("re-subscribed", Duration::from_secs(20), || {
        d.subscriptions() >= 2 && d.is_connected()
    });
    berth.wait_complete("deploy", Duration::from_secs(30));
    assert_eq!(d.sim().framework_id().as_deref(), Some(framework.as_str()));
    assert_eq!(live(&d), tasks, "nothing relaunched");
    assert!(d.count(CallType::Reconcile) >= 1);

    // The stream breaks: berth subscribes again by itself.
    let before = d.subscriptions();
    d.drop_connection();
    berth.wait_for("re-subscribed after the stream broke", Duration::from_secs(20), || {
        d.subscriptions() > before && d.is_connected()
    });
    assert_eq!(live(&d), tasks, "nothing relaunched");
    assert_no_violations(&d, &berth);
    berth.stop();
}
