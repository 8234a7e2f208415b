//! `berth bench recovery --cluster local`: recovery latency with real processes.
//!
//! One pod runs `sleep` under a real `berth executor` on the local cluster, with the
//! embedded (fsync'd) store and the real scheduler loop. Each run kills the task with
//! SIGKILL and times three moments:
//!
//! ```text
//! kill ──▶ TASK_FAILED at the scheduler ──▶ offer with the pod's resources ──▶ LAUNCH_GROUP sent
//!      detect                         agent                            decide
//! ```
//!
//! "detect" is the executor noticing the exit and the agent forwarding it; "agent" is the
//! old executor shutting down so its reserved resources come back in an offer; "decide" is
//! the scheduler evaluating that offer, storing the new TaskInfo (fsync) and sending the
//! launch. "failure → launch" (agent + decide) is the figure the goal speaks of (< 100 ms
//! beyond any back-off; back-off is off here).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use berth_cluster::local::{LocalCluster, LocalConfig};
use berth_cluster::{Call, Cluster, ClusterError, Event, EventStream, FrameworkInfo};
use berth_mesos::{Operation, TaskState};
use berth_scheduler::SchedulerHandle;
use berth_spec::{Env, NoFiles, SpecInput, load_spec};
use berth_state::{EmbeddedPersister, Persister};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{TempDir, bench_core, ms, percentile};

const SPEC: &str = r"
name: bench-recovery
pods:
  node:
    count: 1
    tasks:
      server:
        goal: RUNNING
        cmd: echo $$ > {{PID_FILE}}.tmp && mv {{PID_FILE}}.tmp {{PID_FILE}} && exec sleep 100000
        cpus: 0.1
        memory: 32
";

/// When the watched moments last happened.
#[derive(Default)]
struct Moments {
    failed: Option<Instant>,
    offered: Option<Instant>,
    used_offer: Option<Instant>,
    launched: Option<Instant>,
    launches: u32,
}

/// A cluster that notes when a task failure arrives and when a launch leaves.
struct Timed {
    inner: LocalCluster,
    moments: Arc<Mutex<Moments>>,
}

impl Cluster for Timed {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        let mut events = self.inner.subscribe(framework)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let moments = self.moments.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::Update { status } = &event
                    && status.state == TaskState::TaskFailed
                {
                    lock(&moments).failed = Some(Instant::now());
                }
                if let Event::Offers { .. } = &event {
                    lock(&moments).offered = Some(Instant::now());
                }
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        let launches = match &call {
            Call::Accept { operations, .. } => operations
                .iter()
                .any(|o| matches!(o, Operation::LaunchGroup { .. })),
            _ => false,
        };
        // The moment the scheduler hands the launch over (the agent's own work follows).
        if launches {
            let mut m = lock(&self.moments);
            m.launched = Some(Instant::now());
            m.used_offer = m.offered;
            m.launches += 1;
        }
        self.inner.send(call)
    }
}

fn lock(m: &Mutex<Moments>) -> std::sync::MutexGuard<'_, Moments> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `runs` kill-and-relaunch rounds and reports the percentiles.
pub fn recovery(runs: u32) -> Result<Value> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(runs))
}

async fn measure(runs: u32) -> Result<Value> {
    let dir = TempDir::new("recovery-local")?;
    let pid_file = dir.0.join("task.pid");
    let env: Env = [("PID_FILE".to_owned(), pid_file.display().to_string())]
        .into_iter()
        .collect();
    let spec = load_spec(&SpecInput {
        file_name: "bench-recovery.yml",
        template: SPEC,
        env: &env,
        files: &NoFiles,
    })
    .map_err(|e| anyhow!("{e}"))?
    .spec;
    let persister: Arc<dyn Persister> = Arc::new(EmbeddedPersister::open(&dir.0)?);
    let core = bench_core(persister, spec)?;
    let executor = std::env::current_exe().context("cannot find the berth executable")?;
    let inner =
        LocalCluster::open(LocalConfig::new(&dir.0, executor)).map_err(|e| anyhow!("{e}"))?;
    let moments = Arc::new(Mutex::new(Moments::default()));
    let mut cluster = Timed {
        inner,
        moments: moments.clone(),
    };
    let (_handle, requests) = SchedulerHandle::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rounds = tokio::spawn(rounds(runs, pid_file, moments.clone(), stop));
    berth_scheduler::run(core, &mut cluster, requests, async move {
        let _ = stopped.await;
    })
    .await?;
    let outcome = rounds.await?;
    // Stop the task and its executor before the data directory goes away.
    let last_pid = outcome.as_ref().map_or(None, |r| r.last_pid);
    let _ = cluster.inner.send(Call::Teardown);
    if let Some(pid) = last_pid {
        wait_gone(pid, Duration::from_secs(15)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(cluster);
    let result = outcome?;
    report(runs, result)
}

struct Rounds {
    detect: Vec<Duration>,
    agent: Vec<Duration>,
    decide: Vec<Duration>,
    scheduler: Vec<Duration>,
    total: Vec<Duration>,
    last_pid: Option<i32>,
}

async fn rounds(
    runs: u32,
    pid_file: PathBuf,
    moments: Arc<Mutex<Moments>>,
    stop: tokio::sync::oneshot::Sender<()>,
) -> Result<Rounds> {
    let result = kill_loop(runs, &pid_file, &moments).await;
    let _ = stop.send(());
    result
}

async fn kill_loop(runs: u32, pid_file: &Path, moments: &Mutex<Moments>) -> Result<Rounds> {
    let mut r = Rounds {
        detect: Vec::new(),
        agent: Vec::new(),
        decide: Vec::new(),
        scheduler: Vec::new(),
        total: Vec::new(),
        last_pid: None,
    };
    let mut previous = None;
    for _ in 0..runs {
        let pid = wait_new_pid(pid_file, previous, Duration::from_secs(30)).await?;
        r.last_pid = Some(pid);
        // Let the launch settle (RUNNING acknowledged) so only the failure path is timed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let launches = lock(moments).launches;
        lock(moments).failed = None;
        kill(Pid::from_raw(pid), Signal::SIGKILL)
            .map_err(|e| anyhow!("cannot kill task process {pid}: {e}"))?;
        let killed = Instant::now();
        let deadline = killed + Duration::from_secs(30);
        let (failed, offered, launched) = loop {
            {
                let m = lock(moments);
                if m.launches > launches
                    && let (Some(f), Some(o), Some(l)) = (m.failed, m.used_offer, m.launched)
                {
                    break (f, o, l);
                }
            }
            if Instant::now() > deadline {
                return Err(anyhow!("task {pid} was not relaunched within 30 s"));
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        r.detect.push(failed.saturating_duration_since(killed));
        r.agent.push(offered.saturating_duration_since(failed));
        r.decide.push(launched.saturating_duration_since(offered));
        r.scheduler.push(launched.saturating_duration_since(failed));
        r.total.push(launched.saturating_duration_since(killed));
        previous = Some(pid);
    }
    let pid = wait_new_pid(pid_file, previous, Duration::from_secs(30)).await?;
    r.last_pid = Some(pid);
    Ok(r)
}

async fn wait_new_pid(file: &Path, previous: Option<i32>, timeout: Duration) -> Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse::<i32>()
            && Some(pid) != previous
            && kill(Pid::from_raw(pid), None).is_ok()
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "the task did not start within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn wait_gone(pid: i32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while kill(Pid::from_raw(pid), None).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn report(runs: u32, mut r: Rounds) -> Result<Value> {
    for v in [
        &mut r.detect,
        &mut r.agent,
        &mut r.decide,
        &mut r.scheduler,
        &mut r.total,
    ] {
        v.sort();
    }
    let p = |v: &[Duration], q| ms(percentile(v, q));
    Ok(json!({
        "scenario": "recovery-local", "runs": runs,
        "scheduler_p50_ms": p(&r.scheduler, 0.5), "scheduler_p99_ms": p(&r.scheduler, 0.99),
        "detect_p50_ms": p(&r.detect, 0.5), "detect_p99_ms": p(&r.detect, 0.99),
        "agent_p50_ms": p(&r.agent, 0.5), "agent_p99_ms": p(&r.agent, 0.99),
        "decide_p50_ms": p(&r.decide, 0.5), "decide_p99_ms": p(&r.decide, 0.99),
        "total_p50_ms": p(&r.total, 0.5), "total_p99_ms": p(&r.total, 0.99),
        "summary": format!(
            "recovery on local (real processes, embedded store), {runs} kills: TASK_FAILED → relaunch sent p50 {:.1} ms, p99 {:.1} ms (offer → launch p50 {:.2} ms, p99 {:.2} ms); kill → relaunch sent p50 {:.1} ms, p99 {:.1} ms",
            p(&r.scheduler, 0.5), p(&r.scheduler, 0.99), p(&r.decide, 0.5), p(&r.decide, 0.99),
            p(&r.total, 0.5), p(&r.total, 0.99)
        ),
    }))
}
