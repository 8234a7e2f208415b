//! Faults the scheduler must outlive: a stored value that cannot be parsed, a store that
//! refuses writes, a store that is slow, a loop that cannot answer in time — and the few it
//! must not outlive (the leader lock lost, a store down for longer than the limit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_cluster::Call;
use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_mesos::TaskState;
use berth_scheduler::{
    Body, Core, Reply, Request, SchedulerError, SchedulerHandle, SchedulerOptions, now_ms,
};
use berth_state::{MemPersister, Persister, root_path};
use berth_testing::faults::{FaultyPersister, WriteFault};
use berth_testing::{HarnessError, RunningLoop, SharedIds, Simulation, core_over, hello_world};

const BAD_CONFIG: &str = "00000000-0000-4000-8000-00000000bad0";

/// A store holding a configuration that is not JSON (as a bad manual edit or a bit flip would
/// leave it).
fn store_with_a_corrupt_config() -> FaultyPersister {
    let mem: Arc<dyn Persister> = Arc::new(MemPersister::new());
    let root = root_path("hello-world").unwrap();
    mem.set(
        &format!("{root}/Configurations/{BAD_CONFIG}"),
        b"{\"name\": \"hello-world\", not json",
    )
    .unwrap();
    FaultyPersister::new(mem)
}

fn faulty_sim(persister: &FaultyPersister, options: SchedulerOptions) -> Simulation {
    Simulation::with(
        hello_world().unwrap(),
        SimAgentSpec::many(3, &["a", "b", "c"]),
        options,
        Arc::new(persister.clone()),
    )
    .unwrap()
}

fn text(reply: &Reply) -> String {
    match &reply.body {
        Body::Text(t) => t.clone(),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_stored_value_that_cannot_be_parsed_fails_its_request_and_nothing_else() {
    let persister = store_with_a_corrupt_config();
    let mut sim = faulty_sim(&persister, SchedulerOptions::default());
    let reply = sim
        .request(Request::Configuration(BAD_CONFIG.to_owned()))
        .expect("a failing request must not end the scheduler");
    assert_eq!(reply.status, 500, "{}", text(&reply));
    assert!(text(&reply).contains("json"), "{}", text(&reply));
    // The scheduler goes on: it answers and deploys.
    assert_eq!(sim.request(Request::Plans).unwrap().status, 200);
    sim.run_until_complete("deploy", 40).unwrap();
    assert_eq!(sim.request(Request::TargetId).unwrap().status, 200);
}

#[test]
fn while_the_store_is_down_calls_are_held_changes_refused_and_all_sent_once_it_is_back() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let mut sim = faulty_sim(&persister, SchedulerOptions::default());
    sim.run_until_complete("deploy", 40).unwrap();
    let launches = sim.launch_counts()["hello-0-server"];

    persister.set_writes(WriteFault::Unavailable);
    sim.sent.clear();
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    assert!(
        sim.applier().is_faulted(),
        "the failed write is not noticed"
    );
    let failed = persister.failed_writes();
    assert!(failed >= 1);
    assert!(
        !sim.sent
            .iter()
            .any(|c| matches!(c, Call::Acknowledge { .. })),
        "a status was acknowledged before it was stored: {:?}",
        sim.sent
    );
    assert!(
        sim.applier()
            .held_calls()
            .iter()
            .any(|c| matches!(c, Call::Acknowledge { .. })),
        "the acknowledgement is not held: {:?}",
        sim.applier().held_calls()
    );
    // Changes are refused, reads answered.
    let refused = sim
        .request(Request::PodRestart("world-0".to_owned()))
        .unwrap();
    assert_eq!(refused.status, 503, "{}", text(&refused));
    assert!(text(&refused).contains("unavailable"), "{}", text(&refused));
    assert_eq!(sim.request(Request::Plans).unwrap().status, 200);
    let health = sim.request(Request::Health { verbose: true }).unwrap();
    assert_eq!(health.status, 500, "{health:?}");
    // Retries while it is down change nothing; neither requests nor retries try a store
    // that says it cannot be reached.
    for _ in 0..3 {
        sim.advance(1_000).unwrap();
    }
    assert!(sim.applier().is_faulted());
    assert_eq!(persister.failed_writes(), failed);
    assert_eq!(sim.launch_counts()["hello-0-server"], launches);

    persister.set_writes(WriteFault::None);
    sim.advance(1_000).unwrap();
    assert!(!sim.applier().is_faulted());
    assert!(
        sim.sent
            .iter()
            .any(|c| matches!(c, Call::Acknowledge { .. })),
        "the held acknowledgement was not sent: {:?}",
        sim.sent
    );
    sim.run_until_complete("recovery", 20).unwrap();
    assert_eq!(sim.launch_counts()["hello-0-server"], launches + 1);
    assert_eq!(
        sim.request(Request::PodRestart("world-0".to_owned()))
            .unwrap()
            .status,
        200
    );
}

#[test]
fn a_store_down_for_longer_than_the_limit_stops_the_scheduler_with_the_reason() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let options = SchedulerOptions {
        store_outage_limit_ms: Some(5_000),
        ..SchedulerOptions::default()
    };
    let mut sim = faulty_sim(&persister, options);
    sim.run_until_complete("deploy", 40).unwrap();
    persister.set_writes(WriteFault::Unavailable);
    sim.task_state("hello-0-server", TaskState::TaskFailed)
        .unwrap();
    let mut waited = 0;
    let error = loop {
        match sim.advance(1_000) {
            Ok(()) => waited += 1_000,
            Err(e) => break e,
        }
        assert!(waited <= 10_000, "still running after {waited} ms");
    };
    assert!(
        (4_000..=6_000).contains(&waited),
        "stopped after {waited} ms"
    );
    match &error {
        HarnessError::Scheduler(e @ SchedulerError::StoreOutage { limit_secs: 5, .. }) => {
            assert!(e.is_fatal());
            let message = e.to_string();
            assert!(message.contains("STORE_OUTAGE_LIMIT_SECS"), "{message}");
            assert!(message.contains("connection lost"), "{message}");
        }
        other => panic!("expected a store outage, got {other}"),
    }
}

#[test]
fn a_lost_leader_lock_stops_the_scheduler_at_once() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let mut sim = faulty_sim(&persister, SchedulerOptions::default());
    sim.run_until_complete("deploy", 40).unwrap();
    persister.set_writes(WriteFault::LockLost);
    sim.sent.clear();
    let error = sim
        .task_state("hello-0-server", TaskState::TaskFailed)
        .expect_err("a scheduler that lost its lock must stop");
    let message = error.to_string();
    assert!(message.contains("leader lock"), "{message}");
    assert!(message.contains("must stop"), "{message}");
    assert!(
        sim.sent.is_empty(),
        "calls were sent after the lock was lost: {:?}",
        sim.sent
    );
}

/// A core over `persister` for the real loop.
fn core(persister: &FaultyPersister) -> Core<Arc<dyn Persister>> {
    let persister: Arc<dyn Persister> = Arc::new(persister.clone());
    core_over(
        persister,
        hello_world().unwrap(),
        SchedulerOptions::default(),
        SharedIds::default(),
    )
    .unwrap()
}

/// The real loop on its own thread over a sim cluster, as `berth run` runs it; `script`
/// talks to it through the handle.
fn with_loop(
    persister: &FaultyPersister,
    script: impl AsyncFnOnce(SchedulerHandle, SimCluster),
) -> Result<(), HarnessError> {
    let cluster = SimCluster::new(SimAgentSpec::many(3, &["a", "b", "c"]));
    let running = RunningLoop::start(core(persister), cluster).unwrap();
    running.block_on(script(running.handle.clone(), running.cluster.clone()));
    running.stop()
}

/// Offers until the deploy plan is complete (at most 10 s).
async fn deploy(handle: &SchedulerHandle, cluster: &SimCluster) {
    for _ in 0..200 {
        cluster.set_now(now_ms());
        cluster.offer_round();
        if handle
            .request(Request::Plan("deploy".to_owned()))
            .await
            .status
            == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deploy did not complete");
}

#[test]
fn the_real_loop_answers_a_failing_request_with_500_and_carries_on() {
    let persister = store_with_a_corrupt_config();
    with_loop(&persister, async |handle, cluster| {
        let reply = handle
            .request(Request::Configuration(BAD_CONFIG.to_owned()))
            .await;
        assert_eq!(reply.status, 500, "{}", text(&reply));
        deploy(&handle, &cluster).await;
        assert_eq!(handle.request(Request::Plans).await.status, 200);
    })
    .expect("the loop ends only when asked to");
}

#[test]
fn a_request_the_loop_cannot_answer_in_time_gets_503_and_the_loop_recovers() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let slow = persister.clone();
    with_loop(&persister, async move |handle, cluster| {
        deploy(&handle, &cluster).await;
        // Every write now takes 2 s: storing a task's failure holds the loop.
        slow.set_slow_writes(Some(Duration::from_secs(2)));
        cluster
            .task_status("hello-0-server", TaskState::TaskFailed)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hurried = handle.clone().with_deadline(Duration::from_millis(300));
        let asked = Instant::now();
        let reply = hurried
            .request(Request::PodRestart("world-0".to_owned()))
            .await;
        let waited = asked.elapsed();
        assert_eq!(reply.status, 503, "{}", text(&reply));
        assert!(
            text(&reply).contains("did not answer within"),
            "{}",
            text(&reply)
        );
        assert!(waited < Duration::from_secs(1), "answered after {waited:?}");
        slow.set_slow_writes(None);
        // Once the slow write is through, the loop answers again; the restart whose caller
        // gave up was not carried out.
        assert_eq!(handle.request(Request::Plans).await.status, 200);
        let world_kills = cluster
            .calls()
            .iter()
            .filter(
                |c| matches!(c, Call::Kill { task_id, .. } if task_id.value.starts_with("world-0")),
            )
            .count();
        assert_eq!(
            world_kills, 0,
            "a restart whose caller gave up was carried out"
        );
    })
    .expect("the loop ends only when asked to");
}

#[test]
fn while_the_store_is_down_the_real_loop_answers_reads_at_once() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let down = persister.clone();
    with_loop(&persister, async move |handle, cluster| {
        deploy(&handle, &cluster).await;
        down.set_writes(WriteFault::Unavailable);
        cluster
            .task_status("hello-0-server", TaskState::TaskFailed)
            .unwrap();
        // Wait until the loop has tried to store the failure and holds it.
        for _ in 0..100 {
            if down.failed_writes() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(down.failed_writes() > 0, "the failure was never stored");
        let hurried = handle.clone().with_deadline(Duration::from_secs(1));
        // Reads are answered from memory, not held until the store is back.
        for _ in 0..5 {
            let plans = hurried.request(Request::Plans).await;
            assert_eq!(plans.status, 200, "{}", text(&plans));
            let health = hurried.request(Request::Health { verbose: true }).await;
            assert_eq!(health.status, 500, "{}", text(&health));
        }
        // Changes are refused at once.
        let refused = hurried
            .request(Request::PodRestart("world-0".to_owned()))
            .await;
        assert_eq!(refused.status, 503, "{}", text(&refused));
        assert!(text(&refused).contains("unavailable"), "{}", text(&refused));
        down.set_writes(WriteFault::None);
        deploy(&handle, &cluster).await;
    })
    .expect("the loop ends only when asked to");
}

#[test]
fn a_slow_state_tree_read_does_not_hold_the_loop() {
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let slow = persister.clone();
    with_loop(&persister, async move |handle, cluster| {
        deploy(&handle, &cluster).await;
        slow.set_slow_reads(Some(Duration::from_millis(1_500)));
        let reader = handle.clone();
        let tree = tokio::spawn(async move { reader.request(Request::StateTree(None)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let asked = Instant::now();
        let plans = handle.request(Request::Plan("deploy".to_owned())).await;
        let waited = asked.elapsed();
        assert_eq!(plans.status, 200);
        assert!(
            waited < Duration::from_millis(500),
            "a plan read waited {waited:?} behind a state tree read"
        );
        let tree = tree.await.unwrap();
        assert_eq!(tree.status, 200, "{tree:?}");
        slow.set_slow_reads(None);
    })
    .expect("the loop ends only when asked to");
}

#[test]
fn a_request_nobody_answers_gets_503_at_its_deadline() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let (handle, _requests) = SchedulerHandle::channel();
        let started = tokio::time::Instant::now();
        let reply = handle.request(Request::Plans).await;
        assert_eq!(reply.status, 503);
        assert_eq!(started.elapsed(), berth_scheduler::REQUEST_DEADLINE);
        assert!(
            text(&reply).contains("did not answer within 10 s"),
            "{}",
            text(&reply)
        );
    });
}
