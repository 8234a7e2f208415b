//! The scheduler loop (`berth_scheduler::run`) over the sim cluster, in simulated time (tokio's
//! paused clock drives the loop's own clock). Its periodic work (back-off expiry,
//! reconciliation, kill retries, automatic replacement) must happen even while API requests
//! arrive faster than the loop ticks, as they do when an operator's dashboard or a script
//! polls the API.

use std::sync::Arc;
use std::time::Duration;

use berth_cluster::Call;
use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_mesos::TaskState;
use berth_plan::BackoffPolicy;
use berth_scheduler::{
    Clock, Core, Request, RunnerOptions, SchedulerHandle, SchedulerOptions, run_with,
};
use berth_spec::ServiceSpec;
use berth_state::{MemPersister, Persister};
use berth_testing::{SharedIds, core_over, hello_world};

/// How often the test polls the API: far more often than the loop's 500 ms tick.
const POLL: Duration = Duration::from_millis(20);

fn core(spec: ServiceSpec, options: SchedulerOptions) -> Core<Arc<dyn Persister>> {
    core_over(
        Arc::new(MemPersister::new()),
        spec,
        options,
        SharedIds::default(),
    )
    .unwrap()
}

/// Runs the loop over `cluster` while `script` polls it every [`POLL`] of simulated time
/// (offers, then one API read); stops the loop when `script` returns `true` or `limit` has
/// passed.
fn drive(
    core: Core<Arc<dyn Persister>>,
    cluster: &SimCluster,
    limit: Duration,
    mut script: impl FnMut(&SimCluster, Duration) -> bool,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let mut loop_cluster = cluster.clone();
    let (handle, requests) = SchedulerHandle::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.block_on(async {
        let clock = Clock::new();
        let driver = async {
            let start = tokio::time::Instant::now();
            while start.elapsed() < limit {
                cluster.set_now(clock.now());
                cluster.offer_round();
                let reply = handle.request(Request::PodsStatus).await;
                assert_eq!(reply.status, 200);
                if script(cluster, start.elapsed()) {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
            let _ = stop.send(());
        };
        let scheduler = run_with(
            core,
            &mut loop_cluster,
            requests,
            async {
                let _ = stopped.await;
            },
            RunnerOptions {
                clock: Some(clock),
                ..RunnerOptions::default()
            },
        );
        let (result, ()) = tokio::join!(scheduler, driver);
        result.unwrap();
    });
}

fn implicit_reconciles(cluster: &SimCluster) -> usize {
    cluster
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Reconcile { tasks } if tasks.is_empty()))
        .count()
}

#[test]
fn periodic_work_runs_while_the_api_is_polled() {
    let cluster = SimCluster::new(SimAgentSpec::many(3, &[]));
    let options = SchedulerOptions {
        implicit_reconcile_interval_ms: 300,
        ..SchedulerOptions::default()
    };
    drive(
        core(hello_world().unwrap(), options),
        &cluster,
        Duration::from_secs(2),
        |_, _| false,
    );
    // One at registration, then one every 300 ms of ticks (every 500 ms at the least).
    let n = implicit_reconciles(&cluster);
    assert!(
        n >= 3,
        "{n} implicit reconciliation(s) in 2 s while the API was polled every {POLL:?}"
    );
}

#[test]
fn a_task_is_relaunched_when_its_backoff_ends_while_the_api_is_polled() {
    let cluster = SimCluster::new(SimAgentSpec::many(3, &[]));
    let options = SchedulerOptions {
        backoff: BackoffPolicy {
            enabled: true,
            initial_ms: 1_000,
            factor: 2.0,
            max_ms: 10_000,
            min_relaunch_ms: 1_000,
        },
        ..SchedulerOptions::default()
    };
    let launches = |c: &SimCluster| {
        c.launches()
            .iter()
            .filter(|t| t.name == "hello-0-server")
            .count()
    };
    let mut failed_at: Option<Duration> = None;
    let mut relaunched_after: Option<Duration> = None;
    drive(
        core(hello_world().unwrap(), options),
        &cluster,
        Duration::from_secs(20),
        |c, elapsed| match failed_at {
            None => {
                let running = c
                    .live_tasks()
                    .iter()
                    .any(|(name, _, _)| name == "hello-0-server");
                if running && launches(c) == 1 {
                    c.task_status("hello-0-server", TaskState::TaskFailed)
                        .unwrap();
                    failed_at = Some(elapsed);
                }
                false
            }
            Some(at) => {
                if launches(c) == 2 {
                    relaunched_after = Some(elapsed - at);
                    return true;
                }
                false
            }
        },
    );
    let after = relaunched_after.expect("hello-0-server was not relaunched within 20 s");
    assert!(
        after >= Duration::from_millis(1_000),
        "relaunched after {after:?}, before its 1 s back-off ended"
    );
    assert!(
        after < Duration::from_millis(2_500),
        "relaunched {after:?} after failing: the 1 s back-off ended long before"
    );
}

#[test]
fn a_budgeted_batch_stops_taking_events_once_it_holds_enough_writes() {
    use berth_scheduler::applier::{Applier, MAX_BATCH_WRITES};
    let spec = crate::parallel_pods("many", 600);
    let mut cluster = SimCluster::new(SimAgentSpec::many(300, &["a"]));
    cluster.set_lean(true);
    let mut applier = Applier::new(core(spec, SchedulerOptions::default()));
    let mut now = 1_000;
    cluster.set_now(now);
    let mut events = applier.subscribe(&mut cluster, now).unwrap().unwrap();
    let mut drain = |applier: &mut Applier<Arc<dyn Persister>>| {
        while let Ok(event) = events.try_recv() {
            applier.push_events([event]);
        }
    };
    // Registration, then rounds of offers until every pod was launched.
    for _ in 0..100 {
        drain(&mut applier);
        applier.run_backlog(&mut cluster, now, None).unwrap();
        if cluster.launch_count() >= 600 {
            break;
        }
        now += 1_000;
        cluster.set_now(now);
        applier.tick(&mut cluster, now).unwrap();
        cluster.offer_round();
    }
    assert_eq!(cluster.launch_count(), 600);
    drain(&mut applier);
    applier.run_backlog(&mut cluster, now, None).unwrap();
    // Every task fails at once: a batch with all the time in the world still stops taking
    // their statuses once storing what it holds would take long.
    for i in 0..600 {
        cluster
            .task_status(&format!("node-{i}-server"), TaskState::TaskFailed)
            .unwrap();
    }
    drain(&mut applier);
    let waiting = applier.backlog_len();
    assert!(waiting >= 600, "{waiting} events wait");
    let decision = applier
        .decide_events(now, Some(Duration::from_secs(3_600)), usize::MAX)
        .unwrap()
        .unwrap();
    assert!(
        (MAX_BATCH_WRITES..MAX_BATCH_WRITES + 8).contains(&decision.writes.len()),
        "{} writes in one batch",
        decision.writes.len()
    );
    assert!(applier.has_backlog(), "the rest waits for the next batch");
    // Without a budget (the simulated harness), one batch takes everything left.
    let first = decision.writes.len();
    applier.apply(&mut cluster, decision, now).unwrap();
    let rest = applier
        .decide_events(now, None, usize::MAX)
        .unwrap()
        .unwrap();
    assert!(!applier.has_backlog());
    assert!(
        first + rest.writes.len() >= 600,
        "{first} + {}",
        rest.writes.len()
    );
}
