//! Offers kept back for the next steps of a serial phase: used the moment a step may launch,
//! declined once too old or once nothing will want them, forgotten when rescinded.

use std::collections::BTreeSet;
use std::sync::Arc;

use berth_cluster::Call;
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::TaskState;
use berth_plan::Status;
use berth_scheduler::{Request, SchedulerOptions};
use berth_state::MemPersister;
use berth_testing::Simulation;

use crate::json;

fn serial(count: u32, agents: usize, options: SchedulerOptions) -> Simulation {
    let spec = crate::small_pods("serial", count as usize, Some("hostname:UNIQUE"), "serial");
    Simulation::with(
        spec,
        SimAgentSpec::many(agents, &["a", "b", "c"]),
        options,
        Arc::new(MemPersister::new()),
    )
    .unwrap()
}

fn offers_held(sim: &mut Simulation) -> u64 {
    json(sim.request(Request::Metrics).unwrap())["offers_held"]
        .as_u64()
        .unwrap()
}

/// Ids of the offers declined so far.
fn declined(sim: &Simulation) -> Vec<String> {
    sim.sent
        .iter()
        .filter_map(|c| match c {
            Call::Decline { offer_ids, .. } => Some(offer_ids.iter().map(|o| o.value.clone())),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Agent of each launched task, in launch order.
fn launch_agents(sim: &Simulation) -> Vec<String> {
    sim.cluster
        .launches()
        .iter()
        .map(|t| t.agent_id.value.clone())
        .collect()
}

#[test]
fn a_serial_phase_launches_each_next_step_on_an_offer_kept_back() {
    let mut sim = serial(5, 8, SchedulerOptions::default());
    let revives = sim.core().counters().revives;
    let start = sim.sent.len();

    // One round of offers: the first step launches on one, the next steps each on an offer
    // kept back the moment the step before is up — no REVIVE, no new round.
    assert_eq!(sim.offers().unwrap(), 8);
    assert_eq!(sim.plan_status("deploy"), Some(Status::Complete));
    assert_eq!(sim.core().counters().revives, revives, "{:?}", sim.sent);
    let agents = launch_agents(&sim);
    assert_eq!(agents.len(), 5);
    assert_eq!(
        agents.iter().collect::<BTreeSet<_>>().len(),
        5,
        "{agents:?}"
    );
    let round = &sim.sent[start..];
    assert!(
        !round.iter().any(|c| matches!(c, Call::Revive)),
        "{round:?}"
    );
    // Each launch went out after the status that let it launch was stored and acknowledged
    // in the same batch: ACCEPTs and ACKNOWLEDGEs alternate.
    let order: Vec<&str> = round
        .iter()
        .filter_map(|c| match c {
            Call::Accept { .. } => Some("accept"),
            Call::Acknowledge { .. } => Some("ack"),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "accept", "ack", "accept", "ack", "accept", "ack", "accept", "ack", "accept", "ack"
        ]
    );

    // Done: nothing will want the rest, they are declined (three left of the eight).
    assert_eq!(offers_held(&mut sim), 0);
    assert_eq!(declined(&sim).len(), 3, "{:?}", sim.sent);
    assert_eq!(sim.offers().unwrap(), 0, "suppressed");
}

#[test]
fn kept_offers_go_when_rescinded_or_too_old() {
    let mut sim = serial(3, 4, SchedulerOptions::default());
    sim.cluster.set_auto_run(false);
    assert_eq!(sim.offers().unwrap(), 4);
    // node-0 is starting; the three other offers are kept back for node-1 and node-2.
    sim.expect_step("deploy", "node-0:[server]", Status::Starting)
        .unwrap();
    assert_eq!(offers_held(&mut sim), 3);
    assert!(declined(&sim).is_empty(), "{:?}", sim.sent);

    // The master takes one back: it is forgotten, never accepted.
    let first = launch_agents(&sim)[0].clone();
    let taken_back = SimAgentSpec::many(4, &["a", "b", "c"])
        .into_iter()
        .map(|a| a.id)
        .find(|a| *a != first)
        .unwrap();
    assert!(sim.cluster.rescind(&taken_back));
    sim.pump().unwrap();
    assert_eq!(offers_held(&mut sim), 2);

    // node-0 is up: node-1 launches at once on a kept offer, not on the rescinded one.
    sim.task_state("node-0-server", TaskState::TaskRunning)
        .unwrap();
    sim.expect_step("deploy", "node-1:[server]", Status::Starting)
        .unwrap();
    let agents = launch_agents(&sim);
    assert_eq!(agents.len(), 2);
    assert!(!agents.contains(&taken_back), "{agents:?}");
    assert_eq!(offers_held(&mut sim), 1);

    // node-1 takes long to come up: the last kept offer is declined once it is 10 s old.
    sim.advance(9_000).unwrap();
    assert_eq!(offers_held(&mut sim), 1);
    assert!(declined(&sim).is_empty(), "{:?}", sim.sent);
    sim.advance(1_000).unwrap();
    assert_eq!(offers_held(&mut sim), 0);
    assert_eq!(declined(&sim).len(), 1, "{:?}", sim.sent);

    // node-2 then waits for new offers: a REVIVE once node-1 is up.
    sim.task_state("node-1-server", TaskState::TaskRunning)
        .unwrap();
    assert!(sim.sent.iter().any(|c| matches!(c, Call::Revive)));
    sim.offers().unwrap();
    sim.expect_step("deploy", "node-2:[server]", Status::Starting)
        .unwrap();
}

#[test]
fn with_holding_off_every_unused_offer_is_declined() {
    let options = SchedulerOptions {
        offer_hold: 0,
        ..SchedulerOptions::default()
    };
    let mut sim = serial(3, 4, options);
    assert_eq!(sim.offers().unwrap(), 4);
    sim.expect_step("deploy", "node-1:[server]", Status::Pending)
        .unwrap();
    assert_eq!(declined(&sim).len(), 3, "{:?}", sim.sent);
    assert_eq!(offers_held(&mut sim), 0);
    // Each step waits for a round of offers of its own.
    let mut rounds = 1;
    while sim.plan_status("deploy") != Some(Status::Complete) {
        sim.advance(1_000).unwrap();
        sim.offers().unwrap();
        rounds += 1;
    }
    assert_eq!(rounds, 3);
}
