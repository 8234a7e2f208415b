//! Early submission: with a store that writes in the background, a large batch hands its
//! writes over while it is still deciding — in order, several submissions in flight — and no
//! call goes out before the writes it follows from are stored; a submission that fails is
//! held, with every later one, and retried like a failed commit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_cluster::{Call, Cluster, ClusterError, EventStream, FrameworkInfo};
use berth_mesos::Operation;
use berth_scheduler::SchedulerOptions;
use berth_scheduler::applier::{Applier, EARLY_SUBMIT_WRITES, PARTS_IN_FLIGHT};
use berth_state::{MemPersister, Outcome, Persister, StateError, Submitted, WriteOp};
use berth_testing::{SharedIds, core_over};

/// A store over memory that stores what is submitted on a worker thread of its own, in
/// submission order, a little later (as ZooKeeper does: once one submission is refused,
/// every later one is refused until the next `apply`), and can refuse or lose the next
/// submission.
struct Background {
    inner: Arc<MemPersister>,
    /// The size of every submitted batch, in order.
    submitted: Mutex<Vec<usize>>,
    /// Refuse the next submission (without storing any of it).
    refuse_next: AtomicBool,
    /// Lose the next submission: its outcome never comes.
    lose_next: AtomicBool,
    /// Submissions not answered yet, and the most there were at once.
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// A submission was refused: later ones are too, until an `apply`.
    refused: Arc<AtomicBool>,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

struct Job {
    ops: Vec<WriteOp>,
    answer: std::sync::mpsc::SyncSender<Outcome>,
    refuse: bool,
    lose: bool,
}

impl Background {
    fn new(inner: Arc<MemPersister>, hold_until: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let worker_store = inner.clone();
        let worker_in_flight = in_flight.clone();
        let refused = Arc::new(AtomicBool::new(false));
        let worker_refused = refused.clone();
        std::thread::spawn(move || {
            let mut first = true;
            while let Ok(job) = rx.recv() {
                if first {
                    first = false;
                    let until = Instant::now() + Duration::from_secs(2);
                    while worker_in_flight.load(Ordering::SeqCst) < hold_until
                        && Instant::now() < until
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
                if job.refuse {
                    worker_refused.store(true, Ordering::SeqCst);
                }
                let result = if worker_refused.load(Ordering::SeqCst) {
                    Err(StateError::Unavailable {
                        location: "test".to_owned(),
                        action: format!("committing {} writes", job.ops.len()),
                        message: "the connection was lost".to_owned(),
                        hint: "nothing was applied".to_owned(),
                    })
                } else {
                    worker_store.apply(&job.ops)
                };
                worker_in_flight.fetch_sub(1, Ordering::SeqCst);
                if !job.lose {
                    let _ = job.answer.send((result, job.ops));
                }
            }
        });
        Self {
            inner,
            submitted: Mutex::new(Vec::new()),
            refuse_next: AtomicBool::new(false),
            lose_next: AtomicBool::new(false),
            in_flight,
            most_in_flight: Arc::new(AtomicUsize::new(0)),
            refused,
            jobs: Mutex::new(tx),
        }
    }
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
        assert_eq!(
            self.in_flight.load(Ordering::SeqCst),
            0,
            "a commit while submissions are in flight"
        );
        self.refused.store(false, Ordering::SeqCst);
        self.inner.apply(ops)
    }
    fn submit(&self, ops: Vec<WriteOp>) -> Submitted {
        self.submitted.lock().unwrap().push(ops.len());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let (answer, rx) = std::sync::mpsc::sync_channel(1);
        let job = Job {
            ops,
            answer,
            refuse: self.refuse_next.swap(false, Ordering::SeqCst),
            lose: self.lose_next.swap(false, Ordering::SeqCst),
        };
        self.jobs.lock().unwrap().send(job).unwrap();
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

/// The service, its store (holding the first submission until `hold_until` are queued) and
/// the checking cluster.
fn setup(hold_until: usize) -> (Applier<Arc<dyn Persister>>, Arc<Background>, Checking) {
    let spec = crate::parallel_pods("early", PODS);
    let memory = Arc::new(MemPersister::new());
    let store = Arc::new(Background::new(memory.clone(), hold_until));
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
    // The store holds its first submission until the batch has sent all it may send
    // without waiting: the parts in flight while deciding, then the rest behind them.
    let (mut applier, store, mut cluster) = setup(PARTS_IN_FLIGHT + 1);
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
    assert_eq!(
        store.most_in_flight.load(Ordering::SeqCst),
        PARTS_IN_FLIGHT + 1,
        "parts are sent behind unanswered ones: {submitted:?}"
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
fn a_refused_early_part_is_held_with_every_later_one_and_stored_by_the_retry() {
    let (mut applier, store, mut cluster) = setup(PARTS_IN_FLIGHT + 1);
    store.refuse_next.store(true, Ordering::SeqCst);
    let _events = deploy_round(&mut applier, &mut cluster, 1_000).unwrap();
    // The first part was refused, and with it the parts sent behind it: the batch held
    // everything and sent no launch.
    assert!(applier.is_faulted(), "the refused part faults the store");
    assert_eq!(
        cluster.launches, 0,
        "no launch before its writes are stored"
    );
    let submitted = store.submitted.lock().unwrap().len();
    assert_eq!(
        submitted,
        PARTS_IN_FLIGHT + 1,
        "what was sent before the refusal came back, nothing after"
    );
    let stored = store
        .inner
        .children(&format!("{}/Tasks", cluster.root))
        .unwrap_or_default();
    assert!(
        stored.is_empty(),
        "the refused part and those behind it stored nothing"
    );
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
    let (mut applier, store, mut cluster) = setup(1);
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
