//! Early submission: with a store that writes in the background, a large batch hands its
//! writes over while it is still deciding — in order, one submission at a time — and no call
//! goes out before the writes it follows from are stored; a submission that fails is held
//! and retried like a failed commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_cluster::{Call, Cluster, ClusterError, EventStream, FrameworkInfo};
use berth_mesos::Operation;
use berth_scheduler::SchedulerOptions;
use berth_scheduler::applier::{Applier, EARLY_SUBMIT_WRITES};
use berth_state::{MemPersister, Persister, StateError, Submitted, WriteOp};
use berth_testing::{SharedIds, core_over};

/// A store over memory that stores what is submitted on a thread of its own, a little later,
/// and can refuse the next submission.
struct Background {
    inner: Arc<MemPersister>,
    /// The size of every submitted batch, in order.
    submitted: Mutex<Vec<usize>>,
    /// Refuse the next submission (without storing any of it).
    refuse_next: AtomicBool,
    /// Lose the next submission: its worker ends without an answer.
    lose_next: AtomicBool,
    /// A submission is running: a second one at the same time is an error of the caller.
    running: Arc<AtomicBool>,
}

impl Persister for Background {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(path)
    }
    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        self.inner.children(path)
    }
    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.inner.subtree(path)
    }
    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        assert!(
            !self.running.load(Ordering::SeqCst),
            "a commit while a submission is in flight"
        );
        self.inner.apply(ops)
    }
    fn submit(&self, ops: Vec<WriteOp>) -> Submitted {
        assert!(
            !self.running.swap(true, Ordering::SeqCst),
            "a second submission while one is in flight"
        );
        self.submitted.lock().unwrap().push(ops.len());
        let refuse = self.refuse_next.swap(false, Ordering::SeqCst);
        let lose = self.lose_next.swap(false, Ordering::SeqCst);
        let inner = self.inner.clone();
        let running = self.running.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            let result = if refuse {
                Err(StateError::Unavailable {
                    location: "test".to_owned(),
                    action: format!("committing {} writes", ops.len()),
                    message: "the connection was lost".to_owned(),
                    hint: "nothing was applied".to_owned(),
                })
            } else {
                inner.apply(&ops)
            };
            running.store(false, Ordering::SeqCst);
            if !lose {
                let _ = tx.send((result, ops));
            }
        });
        Submitted::background(rx, "test".to_owned())
    }
    fn submits_in_background(&self) -> bool {
        true
    }
}

/// The simulated cluster, checking that every launched task's TaskInfo is stored when its
/// launch is sent.
struct Checking {
    sim: SimCluster,
    store: Arc<MemPersister>,
    root: String,
    launches: usize,
}

impl Cluster for Checking {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        self.sim.subscribe(framework)
    }
    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        if let Call::Accept { operations, .. } = &call {
            for op in operations {
                if let Operation::LaunchGroup { launch_group } = op {
                    for task in &launch_group.task_group.tasks {
                        let path = format!("{}/Tasks/{}/TaskInfo", self.root, task.name);
                        assert!(
                            self.store.get(&path).unwrap().is_some(),
                            "{} was launched before its TaskInfo was stored",
                            task.name
                        );
                        self.launches += 1;
                    }
                }
            }
        }
        self.sim.send(call)
    }
}

const PODS: usize = 600;

fn setup() -> (Applier<Arc<dyn Persister>>, Arc<Background>, Checking) {
    let spec = crate::parallel_pods("early", PODS);
    let memory = Arc::new(MemPersister::new());
    let store = Arc::new(Background {
        inner: memory.clone(),
        submitted: Mutex::new(Vec::new()),
        refuse_next: AtomicBool::new(false),
        lose_next: AtomicBool::new(false),
        running: Arc::new(AtomicBool::new(false)),
    });
    let persister: Arc<dyn Persister> = store.clone();
    let core = core_over(
        persister,
        spec,
        SchedulerOptions::default(),
        SharedIds::default(),
    )
    .unwrap();
    let sim = SimCluster::new(SimAgentSpec::many(PODS, &["a"]));
    sim.set_lean(true);
    let cluster = Checking {
        sim,
        store: memory,
        root: berth_state::root_path("early").unwrap(),
        launches: 0,
    };
    (Applier::new(core), store, cluster)
}

/// Registration, then one round of offers handled as one batch (as the simulated harness
/// does); the events' stream for later rounds, or the error of that batch.
fn deploy_round(
    applier: &mut Applier<Arc<dyn Persister>>,
    cluster: &mut Checking,
    now: u64,
) -> Result<EventStream, berth_scheduler::SchedulerError> {
    cluster.sim.set_now(now);
    let mut events = applier.subscribe(cluster, now).unwrap().unwrap();
    while let Ok(event) = events.try_recv() {
        applier.push_events([event]);
    }
    applier.run_backlog(cluster, now, None).unwrap();
    cluster.sim.offer_round();
    while let Ok(event) = events.try_recv() {
        applier.push_events([event]);
    }
    applier.run_backlog(cluster, now, None)?;
    Ok(events)
}

#[test]
fn a_large_batch_is_stored_in_early_parts_and_no_launch_precedes_its_taskinfo() {
    let (mut applier, store, mut cluster) = setup();
    let _events = deploy_round(&mut applier, &mut cluster, 1_000).unwrap();
    assert_eq!(
        cluster.launches, PODS,
        "every pod launched in the first round"
    );
    let submitted = store.submitted.lock().unwrap().clone();
    assert!(
        submitted.len() >= 2,
        "the batch was submitted in parts: {submitted:?}"
    );
    assert!(
        submitted[0] >= EARLY_SUBMIT_WRITES,
        "a part waits for {EARLY_SUBMIT_WRITES} writes: {submitted:?}"
    );
    assert!(!applier.is_faulted());
    // Everything the core holds is stored: a scheduler reading the store sees the same
    // tasks.
    let stored = store
        .inner
        .children(&format!("{}/Tasks", cluster.root))
        .unwrap();
    assert_eq!(stored.len(), PODS);
}

#[test]
fn a_refused_early_part_is_held_with_its_calls_and_stored_by_the_retry() {
    let (mut applier, store, mut cluster) = setup();
    store.refuse_next.store(true, Ordering::SeqCst);
    let _events = deploy_round(&mut applier, &mut cluster, 1_000).unwrap();
    // The first part was refused: the batch went on deciding, held everything, and sent no
    // launch.
    assert!(applier.is_faulted(), "the refused part faults the store");
    assert_eq!(
        cluster.launches, 0,
        "no launch before its writes are stored"
    );
    assert_eq!(
        store.submitted.lock().unwrap().len(),
        1,
        "nothing more is submitted while the store fails"
    );
    let stored = store
        .inner
        .children(&format!("{}/Tasks", cluster.root))
        .unwrap_or_default();
    assert!(stored.is_empty(), "the refused part stored nothing");
    // The retry stores the held writes in their order, then sends every held launch.
    let retry_at = applier.retry_at().expect("a retry is due");
    assert!(applier.retry(&mut cluster, retry_at).unwrap());
    assert!(!applier.is_faulted());
    assert_eq!(cluster.launches, PODS);
    assert_eq!(
        store
            .inner
            .children(&format!("{}/Tasks", cluster.root))
            .unwrap()
            .len(),
        PODS
    );
}

#[test]
fn a_part_whose_outcome_never_comes_stops_the_scheduler_instead_of_guessing() {
    let (mut applier, store, mut cluster) = setup();
    store.lose_next.store(true, Ordering::SeqCst);
    // The writes are gone with the worker: they can be neither retried nor assumed stored.
    let Err(e) = deploy_round(&mut applier, &mut cluster, 1_000) else {
        panic!("the batch carried on");
    };
    assert!(e.to_string().contains("background worker stopped"), "{e}");
    assert_eq!(
        cluster.launches, 0,
        "nothing launched on a batch of unknown fate"
    );
}
