//! Unit tests of the core without executor processes: what happens when it is asked about
//! an agent or executor it has no record of. Nothing public removes a record while the
//! cluster is open, so the tests remove one by hand; the core must answer with an error or
//! skip it, never panic (a panic under the lock would leave half-applied state behind).

use std::path::Path;
use std::sync::Weak;
use std::time::Instant;

use berth_mesos::{ExecutorId, Filters, FrameworkId, Offer, OfferId};

use super::{Core, LinkKey};
use crate::local::LocalConfig;
use crate::local::wire::ExecutorMessage;
use crate::protocol::{Call, ClusterError, Event, EventStream, FrameworkInfo};

fn core(dir: &Path) -> Core {
    let cfg = LocalConfig::new(dir, "/nonexistent/berth");
    Core::load(cfg, Weak::new()).expect("load the core")
}

fn framework() -> FrameworkInfo {
    FrameworkInfo {
        id: None,
        name: "test".to_owned(),
        user: String::new(),
        principal: "test-principal".to_owned(),
        roles: vec!["test-role".to_owned()],
        failover_timeout: 0.0,
        checkpoint: true,
        webui_url: None,
    }
}

/// Subscribes; returns the event stream and the framework id.
fn subscribe(core: &mut Core) -> (EventStream, FrameworkId) {
    let mut rx = core.subscribe(framework()).expect("subscribe");
    core.finish().expect("finish");
    match rx.try_recv() {
        Ok(Event::Subscribed { framework_id, .. }) => (rx, framework_id),
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
}

/// Runs an allocation and returns the offers it made.
fn offers(core: &mut Core, rx: &mut EventStream) -> Vec<Offer> {
    core.tick(Instant::now());
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let Event::Offers { offers } = ev {
            out.extend(offers);
        }
    }
    out
}

#[test]
fn accept_of_an_offer_whose_agent_has_no_record_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut core = core(dir.path());
    let (mut rx, _) = subscribe(&mut core);
    let offer = offers(&mut core, &mut rx)
        .into_iter()
        .next()
        .expect("an offer");
    let agent = offer.agent_id.value.clone();
    core.state.agents.remove(&agent);
    let r = core.send(Call::Accept {
        offer_ids: vec![OfferId::new(offer.id.as_str())],
        operations: Vec::new(),
        filters: Filters {
            refuse_seconds: 0.0,
        },
    });
    match r {
        Err(ClusterError::UnknownAgent { id, .. }) => assert_eq!(id, agent),
        other => panic!("expected UnknownAgent, got {other:?}"),
    }
    // The offer is used up, and the agent without a record is not shown.
    assert!(!core.offers.outstanding.contains_key(offer.id.as_str()));
    assert!(core.agent_views().iter().all(|a| a.id != agent));
}

#[test]
fn allocation_skips_an_agent_without_a_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut core = core(dir.path());
    core.state.agents.remove("agent-b");
    let (mut rx, _) = subscribe(&mut core);
    let mut agents: Vec<String> = offers(&mut core, &mut rx)
        .into_iter()
        .map(|o| o.agent_id.value)
        .collect();
    agents.sort();
    assert_eq!(agents, ["agent-a", "agent-c"]);
    assert!(matches!(
        core.start_agent("agent-b"),
        Err(ClusterError::UnknownAgent { .. })
    ));
}

#[test]
fn executor_messages_about_unknown_executors_are_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut core = core(dir.path());
    let (mut rx, _) = subscribe(&mut core);
    let key = LinkKey {
        agent: "agent-a".to_owned(),
        executor: "no-such-executor".to_owned(),
        run: 1,
        dir: dir.path().join("nowhere"),
        pid: None,
        start_time: None,
    };
    core.on_message(
        &key,
        ExecutorMessage::Hello {
            executor_id: ExecutorId::new("no-such-executor"),
            run: 1,
            pid: 1,
            tasks: Vec::new(),
        },
    );
    core.on_message(&key, ExecutorMessage::Idle);
    core.on_exit(&key, Some(0));
    let gone = LinkKey {
        agent: "no-such-agent".to_owned(),
        ..key
    };
    core.on_message(&gone, ExecutorMessage::Idle);
    core.on_exit(&gone, None);
    assert_eq!(core.respawn(&gone).map(|k| k.executor), None);
    // Nothing was reported about them.
    core.tick(Instant::now());
    while let Ok(ev) = rx.try_recv() {
        assert!(
            !matches!(ev, Event::Failure { .. } | Event::Update { .. }),
            "unexpected {ev:?}"
        );
    }
}
