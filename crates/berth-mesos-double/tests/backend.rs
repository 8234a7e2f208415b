//! The Mesos backend (`berth_cluster::mesos::MesosCluster`) against the double, below the
//! scheduler: what it does with silent masters, malformed streams, offers it cannot read,
//! maintenance windows, refusals and event types it does not know.

use std::path::Path;
use std::time::Duration;

use berth_cluster::mesos::{Maintenance, Masters, MesosCluster, MesosConfig};
use berth_cluster::sim::SimAgentSpec;
use berth_cluster::{Cluster, Event, EventStream, FrameworkInfo};
use berth_mesos::scheduler::CallType;
use berth_mesos_double::{DoubleOptions, MesosDouble, Schema};

async fn double() -> MesosDouble {
    let schema = Schema::load(&berth_mesos_double::proto::default_proto_dir(Path::new(
        env!("CARGO_MANIFEST_DIR"),
    )))
    .expect("protos");
    MesosDouble::start(
        SimAgentSpec::many(2, &["a", "b"]),
        DoubleOptions {
            heartbeat_secs: 0.1,
            offer_interval: Duration::from_secs(3600),
            schema: Some(schema),
            ..DoubleOptions::default()
        },
    )
    .await
    .expect("double")
}

fn backend(d: &MesosDouble) -> MesosCluster {
    backend_with(d, Maintenance::Decline)
}

fn backend_with(d: &MesosDouble, maintenance: Maintenance) -> MesosCluster {
    let mut config = MesosConfig::new(Masters::Urls(d.urls()));
    config.maintenance = maintenance;
    config.backoff_initial = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(200);
    config.call_timeout = Duration::from_secs(5);
    MesosCluster::new(config).expect("backend")
}

fn framework() -> FrameworkInfo {
    FrameworkInfo {
        id: None,
        name: "svc".to_owned(),
        user: "nobody".to_owned(),
        principal: "svc-principal".to_owned(),
        roles: vec!["svc-role".to_owned()],
        failover_timeout: 60.0,
        checkpoint: true,
        webui_url: None,
    }
}

/// The next event that is not a heartbeat, within `secs`.
async fn next(events: &mut EventStream, secs: u64) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Heartbeat)) => {}
            Ok(Some(e)) => return e,
            Ok(None) => panic!("the event stream ended"),
            Err(_) => panic!("no event within {secs} s"),
        }
    }
}

async fn subscribed(events: &mut EventStream) -> String {
    match next(events, 10).await {
        Event::Subscribed { framework_id, .. } => framework_id.value,
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_master_is_left_and_the_framework_subscribes_again() {
    let d = double().await;
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    d.set_silent(true);
    match next(&mut events, 5).await {
        Event::Disconnected { reason } => assert!(reason.contains("silent"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    d.set_silent(false);
    assert_eq!(subscribed(&mut events).await, id, "the same framework id");
    assert!(d.subscriptions() >= 2);
    assert!(d.violations().is_empty(), "{:?}", d.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_and_broken_framing_reset_the_connection() {
    let d = double().await;
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    assert!(d.inject_event("{not json"));
    match next(&mut events, 5).await {
        Event::Disconnected { reason } => assert!(reason.contains("cannot read"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(subscribed(&mut events).await, id);
    assert!(d.inject_bytes(b"12x\n{}".to_vec()));
    match next(&mut events, 5).await {
        Event::Disconnected { reason } => assert!(reason.contains("RecordIO"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(subscribed(&mut events).await, id);
    // An event type berth does not know is ignored; the connection stays.
    let before = d.subscriptions();
    assert!(d.inject_event(r#"{"type":"SOMETHING_NEWER"}"#));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.subscriptions(), before);
    assert!(d.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_it_cannot_read_are_declined_and_the_others_delivered() {
    let d = double().await;
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    let offer = |offer: &str, kind: &str| {
        format!(
            r#"{{"id":{{"value":"{offer}"}},"framework_id":{{"value":"{id}"}},
            "agent_id":{{"value":"agent-0"}},"hostname":"agent-0",
            "resources":[{{"name":"cpus","type":"SCALAR","scalar":{{"value":1}}}},
                         {{"name":"fpgas","type":"{kind}","scalar":{{"value":1}}}}]}}"#
        )
    };
    let event = format!(
        r#"{{"type":"OFFERS","offers":{{"offers":[{},{}]}}}}"#,
        offer("good", "SCALAR"),
        offer("strange", "DEVICES")
    );
    assert!(d.inject_event(&event));
    match next(&mut events, 5).await {
        Event::Offers { offers } => {
            let ids: Vec<&str> = offers.iter().map(|o| o.id.as_str()).collect();
            assert_eq!(ids, ["good"]);
        }
        other => panic!("expected OFFERS, got {other:?}"),
    }
    wait_until("the unreadable offer is declined", || {
        d.count(CallType::Decline) == 1
    })
    .await;
    assert!(d.is_connected());
    assert!(d.violations().is_empty(), "{:?}", d.violations());
}

fn inverse_offer(id: &str) -> String {
    format!(
        r#"{{"type":"INVERSE_OFFERS","inverse_offers":{{"inverse_offers":[{{
            "id":{{"value":"inverse-1"}},"framework_id":{{"value":"{id}"}},
            "agent_id":{{"value":"agent-1"}},
            "unavailability":{{"start":{{"nanoseconds":1764141000000000000}},
                               "duration":{{"nanoseconds":3600000000000}}}}}}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_windows_are_answered_as_configured() {
    let d = double().await;
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    assert!(d.inject_event(&inverse_offer(&id)));
    wait_until("the inverse offer is declined", || {
        d.count(CallType::DeclineInverseOffers) == 1
    })
    .await;
    drop(b);
    let mut b = backend_with(&d, Maintenance::Accept);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    assert!(d.inject_event(&inverse_offer(&id)));
    wait_until("the inverse offer is accepted", || {
        d.count(CallType::AcceptInverseOffers) == 1
    })
    .await;
    assert!(d.violations().is_empty(), "{:?}", d.violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_is_an_error_with_the_masters_words() {
    let d = double().await;
    d.refuse_subscriptions(Some((
        403,
        "Framework principal 'svc-principal' is not authorized",
    )));
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    match next(&mut events, 5).await {
        Event::Error { message } => {
            assert!(message.contains("HTTP 403"), "{message}");
            assert!(message.contains("is not authorized"), "{message}");
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_framework_gets_the_masters_error() {
    let d = double().await;
    let mut b = backend(&d);
    let mut events = b.subscribe(framework()).unwrap();
    let id = subscribed(&mut events).await;
    d.sim().remove_framework();
    d.drop_connection();
    loop {
        match next(&mut events, 5).await {
            Event::Disconnected { .. } => {}
            Event::Error { message } => {
                assert!(message.contains("Framework has been removed"), "{message}");
                break;
            }
            other => panic!("expected ERROR, got {other:?}"),
        }
    }
    assert!(!id.is_empty());
}
