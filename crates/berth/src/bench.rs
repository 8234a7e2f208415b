//! `berth bench`: scheduler benchmarks on the simulated cluster with the embedded (durable,
//! fsync'd) store.
//!
//! ```text
//! berth bench deploy  --pods 5000 --agents 2000 --placement hostname:MAX_PER:3 --strategy parallel
//! berth bench deploy  --pods 500  --agents 500  --strategy serial
//! berth bench restart --tasks 10000
//! berth bench recovery --runs 200
//! berth bench recovery --cluster local --runs 50   (real executor and processes)
//! berth bench api --pods 5000 --agents 2000         (API latency over HTTP during a deploy)
//! berth bench deploy --cluster mesos-double        (the same deploy through the Mesos backend)
//! berth bench offer-decode                         (reading a typical agent's OFFERS event)
//! berth bench all                     (each scenario in its own process, for peak RSS)
//! ```
//!
//! Each run prints one line of results (and `--json` prints them as JSON). Scheduler time is
//! wall time of the real scheduler core and store; the simulated cluster answers instantly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::TaskState;
use berth_plan::Status;
use berth_scheduler::{Core, SchedulerOptions};
use berth_spec::{Env, NoFiles, ServiceSpec, SpecInput, load_spec};
use berth_state::{EmbeddedPersister, LockOwner, Persister, ZkOptions, ZkPersister, ZkUrl};
use berth_testing::Simulation;
use serde_json::{Value, json};

mod api;
mod local;
mod mesos;
mod scale;
mod stuck;

/// `berth bench …`.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Deploys one pod type of N instances and reports launches/s and offer-cycle times.
    ///
    /// Example: `berth bench deploy --pods 5000 --agents 2000 --state zk://127.0.0.1:2181`.
    Deploy {
        /// Pod instances.
        #[arg(long, default_value_t = 5000)]
        pods: u32,
        /// Simulated agents.
        #[arg(long, default_value_t = 2000)]
        agents: usize,
        /// Placement rule of the pods.
        #[arg(long, default_value = "hostname:MAX_PER:3")]
        placement: String,
        /// Phase strategy: serial or parallel.
        #[arg(long, default_value = "parallel")]
        strategy: String,
        /// Where the state goes: the embedded store in a temporary directory (default) or a
        /// running ZooKeeper, `zk://HOST:PORT[/CHROOT]` (the bench's service `bench` is removed
        /// from it before and after).
        #[arg(long, value_name = "zk://HOST:PORT[/CHROOT]")]
        state: Option<String>,
        /// `sim` (the core and the store, the cluster answering in memory) or `mesos-double`
        /// (the Mesos backend over real HTTP to the master double, the loop on its thread).
        #[arg(long, default_value = "sim", value_parser = ["sim", "mesos-double"])]
        cluster: String,
    },
    /// Restarts the scheduler over a store of N tasks: load, reconcile, first offer used.
    ///
    /// Example: `berth bench restart --tasks 100000`.
    Restart {
        /// Tasks in the store.
        #[arg(long, default_value_t = 10000)]
        tasks: u32,
        /// Where the state goes: the embedded store in a temporary directory (default) or a
        /// running ZooKeeper, `zk://HOST:PORT[/CHROOT]` (the bench's service `bench` is removed
        /// from it before and after).
        #[arg(long, value_name = "zk://HOST:PORT[/CHROOT]")]
        state: Option<String>,
    },
    /// Fails a task again and again: scheduler time from the failure to its relaunch.
    ///
    /// Example: `berth bench recovery --cluster local --runs 50`.
    Recovery {
        /// Failures to measure.
        #[arg(long, default_value_t = 200)]
        runs: u32,
        /// `sim` (scheduler and store only) or `local` (real executor and processes; the
        /// task is killed with SIGKILL).
        #[arg(long, default_value = "sim", value_parser = ["sim", "local"])]
        cluster: String,
    },
    /// API latency over real HTTP while a deploy runs (the scheduler loop on its own
    /// thread, as in `berth run`).
    ///
    /// Example: `berth bench api --pods 5000 --agents 2000`.
    Api {
        /// Pod instances.
        #[arg(long, default_value_t = 5000)]
        pods: u32,
        /// Simulated agents.
        #[arg(long, default_value_t = 2000)]
        agents: usize,
        /// Milliseconds between two requests.
        #[arg(long, default_value_t = 10)]
        every_ms: u64,
    },
    /// Decodes a typical agent's OFFERS event as the Mesos backend reads it.
    ///
    /// Example: `berth bench offer-decode --json`.
    OfferDecode {
        /// Rounds (each gives one per-offer time).
        #[arg(long, default_value_t = 30)]
        rounds: u32,
        /// Offers decoded per round.
        #[arg(long, default_value_t = 20000)]
        per_round: u32,
    },
    /// Previews (dry run) an update that changes every pod of a deployed service (the cpus
    /// of its one task): how long the scheduler takes to answer.
    ///
    /// Example: `berth bench update-preview --pods 5000 --agents 2000`.
    UpdatePreview {
        /// Pod instances deployed.
        #[arg(long, default_value_t = 5000)]
        pods: u32,
        /// Simulated agents.
        #[arg(long, default_value_t = 2000)]
        agents: usize,
        /// Previews timed.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// A service whose pods fit on no agent, offered every 5 s: the share of a core the
    /// scheduler spends finding that out again.
    ///
    /// Example: `berth bench unplaceable --pods 20000 --agents 10000`.
    Unplaceable {
        /// Pod instances (none fits).
        #[arg(long, default_value_t = 20000)]
        pods: u32,
        /// Simulated agents.
        #[arg(long, default_value_t = 10000)]
        agents: usize,
        /// Offer rounds (the first one is reported apart).
        #[arg(long, default_value_t = 6)]
        rounds: u32,
    },
    /// The scale scenarios (ZooKeeper-backed deploy, memory per task at 50,000 tasks, restart
    /// with 100,000, the loop and the API at 50,000 pods, serial deploys, unplaceable work),
    /// each in processes of its own, as one table with the goals.
    ///
    /// Example: `berth bench scale --runs 5 --heavy-runs 1`.
    Scale {
        /// Runs of each quick scenario (median and spread are reported).
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// Runs of the scenarios that take minutes (50,000 pods, 100,000 tasks).
        #[arg(long, default_value_t = 1)]
        heavy_runs: u32,
        /// A running ZooKeeper for the ZooKeeper scenario (default: a private one is started
        /// from Debian's `zookeeper` package, see `scripts/install-zookeeper`).
        #[arg(long, value_name = "zk://HOST:PORT[/CHROOT]")]
        zk: Option<String>,
    },
    /// Runs every scenario above in its own process and prints a table.
    ///
    /// Example: `berth bench all`.
    All,
}

/// Runs a benchmark.
pub fn main(cmd: BenchCommand, json: bool) -> ExitCode {
    let result = match cmd {
        BenchCommand::Deploy {
            pods,
            agents,
            placement,
            strategy,
            state,
            cluster,
        } => if cluster == "mesos-double" {
            if state.is_some() {
                Err(anyhow!("--state is not used with --cluster mesos-double"))
            } else {
                mesos::deploy(pods, agents, &placement, &strategy)
            }
        } else {
            deploy(pods, agents, &placement, &strategy, state.as_deref())
        }
        .map(|v| (v, json)),
        BenchCommand::OfferDecode { rounds, per_round } => {
            mesos::offer_decode(rounds, per_round).map(|v| (v, json))
        }
        BenchCommand::Restart { tasks, state } => {
            restart(tasks, state.as_deref()).map(|v| (v, json))
        }
        BenchCommand::Recovery { runs, cluster } => if cluster == "local" {
            local::recovery(runs)
        } else {
            recovery(runs)
        }
        .map(|v| (v, json)),
        BenchCommand::Api {
            pods,
            agents,
            every_ms,
        } => api::api_latency(pods, agents, Duration::from_millis(every_ms.max(1)))
            .map(|v| (v, json)),
        BenchCommand::UpdatePreview { pods, agents, runs } => {
            update_preview(pods, agents, runs.max(1)).map(|v| (v, json))
        }
        BenchCommand::Unplaceable {
            pods,
            agents,
            rounds,
        } => stuck::unplaceable(pods, agents, rounds).map(|v| (v, json)),
        BenchCommand::Scale {
            runs,
            heavy_runs,
            zk,
        } => scale::scale(runs, heavy_runs, zk).map(|v| (v, json)),
        BenchCommand::All => all().map(|v| (v, false)),
    };
    match result {
        Ok((value, json)) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else if let Some(line) = value.get("summary").and_then(Value::as_str) {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("berth bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A temporary data directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("berth-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SPEC: &str = r"
name: bench
pods:
  node:
    count: {{COUNT}}
    placement: '{{{PLACEMENT}}}'
    tasks:
      server:
        goal: RUNNING
        cmd: ./server
        cpus: 0.1
        memory: 32
        volume:
          path: data
          type: ROOT
          size: 10
        ports:
          api:
            port: 0
            env-key: PORT_API
        readiness-check:
          cmd: ./ready
          interval: 5
          timeout: 5
plans:
  deploy:
    strategy: serial
    phases:
      nodes:
        pod: node
        strategy: {{STRATEGY}}
";

fn bench_spec(count: u32, placement: &str, strategy: &str) -> Result<ServiceSpec> {
    bench_spec_from(SPEC, count, placement, strategy)
}

fn bench_spec_from(
    template: &str,
    count: u32,
    placement: &str,
    strategy: &str,
) -> Result<ServiceSpec> {
    let env: Env = [
        ("COUNT", count.to_string()),
        ("PLACEMENT", placement.to_owned()),
        ("STRATEGY", strategy.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let loaded = load_spec(&SpecInput {
        file_name: "bench.yml",
        template,
        env: &env,
        files: &NoFiles,
    })
    .map_err(|e| anyhow!("{e}"))?;
    Ok(loaded.spec)
}

/// The bench's store: embedded in `dir`, or the service `bench` in a ZooKeeper (emptied first,
/// with the leader lock held so that every write is fenced as in `berth run`).
fn persister(dir: &TempDir, state: Option<&str>) -> Result<Arc<dyn Persister>> {
    open_persister(dir, state, true)
}

/// Leaves the ZooKeeper as the bench found it: removes the service `bench` (with a session of
/// its own, once the scheduler's, which held the leader lock inside that tree, is closed).
fn wipe_zk(state: &str) -> Result<()> {
    let zk = ZkPersister::connect(&ZkUrl::parse(state)?, &ZkOptions::default())?;
    zk.delete(&berth_state::root_path("bench")?)?;
    Ok(())
}

/// [`persister`], keeping what the store holds unless `wipe`.
fn open_persister(dir: &TempDir, state: Option<&str>, wipe: bool) -> Result<Arc<dyn Persister>> {
    let Some(state) = state else {
        return Ok(Arc::new(EmbeddedPersister::open(&dir.0)?));
    };
    let url = ZkUrl::parse(state)?;
    let zk = ZkPersister::connect(&url, &ZkOptions::default())?;
    let root = berth_state::root_path("bench")?;
    if wipe {
        zk.delete(&root)?;
    }
    zk.acquire_lock(
        &root,
        &LockOwner::this_process(std::time::SystemTime::now(), None),
        Duration::ZERO,
    )?;
    Ok(Arc::new(zk))
}

/// The scheduler options of every bench: as `berth run`'s defaults, without the offer log
/// (its bookkeeping is not what is measured).
fn bench_options() -> SchedulerOptions {
    let mut options = SchedulerOptions {
        offer_log_limit: 0,
        ..SchedulerOptions::default()
    };
    // The recovery benches fail a task right after its launch, again and again: they time
    // the path from the failure to the relaunch, not the shortest relaunch interval.
    options.backoff.min_relaunch_ms = 0;
    options
}

/// A core for `spec` over `persister` with the bench's options and random ids, for the
/// benches that run the real loop.
fn bench_core(
    persister: Arc<dyn Persister>,
    spec: ServiceSpec,
) -> Result<Core<Arc<dyn Persister>>> {
    berth_testing::core_over(persister, spec, bench_options(), || {
        uuid::Uuid::new_v4().to_string()
    })
    .map_err(|e| anyhow!("{e}"))
}

fn simulation(
    spec: ServiceSpec,
    agents: usize,
    persister: Arc<dyn Persister>,
) -> Result<Simulation> {
    let zones = ["a", "b", "c"];
    let mut sim = Simulation::with(
        spec,
        SimAgentSpec::many(agents, &zones),
        bench_options(),
        persister,
    )
    .map_err(|e| anyhow!("{e}"))?;
    sim.record = false;
    sim.cluster.set_lean(true);
    Ok(sim)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Resident memory grown between two readings (MB), in KB per task.
fn kb_per_task(before_mb: f64, after_mb: f64, tasks: u32) -> f64 {
    (after_mb - before_mb) * 1024.0 / f64::from(tasks.max(1))
}

/// Hands the memory freed so far back to the system, so that resident memory measured next
/// grows only by what is allocated after.
fn release_freed_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own heaps (the global allocator of this
    // binary); it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Peak resident memory of this process (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// Resident memory of this process now (VmRSS), in MB.
fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A memory figure of `/proc/self/status`, in MB.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

fn run_deploy(sim: &mut Simulation, max_rounds: usize) -> Result<usize> {
    let mut rounds = 0;
    while sim.plan_status("deploy") != Some(Status::Complete) {
        if rounds >= max_rounds {
            return Err(anyhow!(
                "deploy not complete after {max_rounds} offer rounds"
            ));
        }
        sim.offers().map_err(|e| anyhow!("{e}"))?;
        sim.advance(1_000).map_err(|e| anyhow!("{e}"))?;
        rounds += 1;
    }
    Ok(rounds)
}

/// Pods of the bench's spec one simulated agent takes at most: its cpus (8) over a pod's
/// (0.1 for the task, 0.1 for its executor).
const PODS_PER_AGENT_BY_CPUS: u64 = 40;

/// Refuses a deploy that cannot complete: more pods than `placement` and the agents'
/// resources allow.
fn check_fits(pods: u32, agents: usize, placement: &str) -> Result<()> {
    if pods == 0 || agents == 0 {
        return Err(anyhow!("--pods and --agents must be at least 1"));
    }
    let rule = placement.trim();
    let per_agent = if rule.eq_ignore_ascii_case("hostname:UNIQUE") {
        1
    } else if let Some(n) = rule
        .strip_prefix("hostname:MAX_PER:")
        .and_then(|n| n.trim().parse::<u64>().ok())
    {
        n.min(PODS_PER_AGENT_BY_CPUS)
    } else {
        PODS_PER_AGENT_BY_CPUS
    };
    let most = per_agent * agents as u64;
    if u64::from(pods) > most {
        return Err(anyhow!(
            "{pods} pods cannot be placed: {agents} agents take at most {most} ({per_agent} each{}); lower --pods or raise --agents",
            if per_agent < PODS_PER_AGENT_BY_CPUS {
                format!(" with placement '{rule}'")
            } else {
                " by their 8 cpus".to_owned()
            }
        ));
    }
    Ok(())
}

fn deploy(
    pods: u32,
    agents: usize,
    placement: &str,
    strategy: &str,
    state: Option<&str>,
) -> Result<Value> {
    check_fits(pods, agents, placement)?;
    let dir = TempDir::new("deploy")?;
    let spec = bench_spec(pods, placement, strategy)?;
    let store = state.unwrap_or("embedded");
    let store_handle = persister(&dir, state)?;
    let mut sim = simulation(spec, agents, store_handle.clone())?;
    let rss_before = rss_mb();
    let started = Instant::now();
    let rounds = run_deploy(&mut sim, pods as usize * 4 + 100)?;
    let elapsed = started.elapsed();
    let rss_after = rss_mb();
    let stats = sim.take_stats();
    let scheduler = stats.busy;
    let launched = sim.core().counters().tasks_launched;
    let mut cycles = stats.offer_cycles;
    cycles.sort();
    let rate = launched as f64 / scheduler.as_secs_f64();
    let wall_rate = launched as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&cycles, 0.5), percentile(&cycles, 0.99));
    let rss = peak_rss_mb();
    if let Some(state) = state {
        sim.stop();
        drop(store_handle);
        drop(sim);
        wipe_zk(state)?;
    }
    Ok(json!({
        "scenario": format!("{strategy} deploy"),
        "state": store,
        "pods": pods, "agents": agents, "placement": placement,
        "launches": launched, "scheduler_seconds": scheduler.as_secs_f64(), "store_seconds": stats.apply.as_secs_f64(), "wall_seconds": elapsed.as_secs_f64(),
        "launches_per_second": rate.round(), "launches_per_second_wall": wall_rate.round(),
        "offer_rounds": rounds, "offer_cycles": cycles.len(),
        "cycle_p50_ms": ms(p50), "cycle_p99_ms": ms(p99), "cycle_max_ms": ms(cycles.last().copied().unwrap_or_default()),
        "peak_rss_mb": rss, "rss_before_mb": rss_before, "rss_after_mb": rss_after,
        "memory_per_task_kb": kb_per_task(rss_before, rss_after, pods),
        "summary": format!(
            "{strategy} deploy of {pods} pods ({placement}) over {agents} agents, state {store}: {launched} durable launches in {:.2} s of scheduler time = {:.0} launches/s ({:.0}/s wall, simulated cluster included); offer cycle p50 {:.1} ms, p99 {:.1} ms ({} cycles); peak RSS {rss} MB",
            scheduler.as_secs_f64(), rate, wall_rate, ms(p50), ms(p99), cycles.len()
        ),
    }))
}

fn update_preview(pods: u32, agents: usize, runs: u32) -> Result<Value> {
    let dir = TempDir::new("preview")?;
    let placement = "hostname:MAX_PER:3";
    let spec = bench_spec(pods, placement, "parallel")?;
    let mut sim = simulation(spec, agents, persister(&dir, None)?)?;
    run_deploy(&mut sim, pods as usize * 4 + 100)?;
    let candidate = bench_spec_from(
        &SPEC.replace("cpus: 0.1", "cpus: 0.2"),
        pods,
        placement,
        "parallel",
    )?;
    let mut times = Vec::new();
    let mut restarted = 0;
    for _ in 0..runs {
        let request = berth_scheduler::Request::UpdatePreview(Box::new(candidate.clone()));
        let started = Instant::now();
        let reply = sim.request(request).map_err(|e| anyhow!("{e}"))?;
        times.push(started.elapsed());
        let berth_scheduler::Body::Json(body) = reply.body else {
            return Err(anyhow!("the preview answered {}", reply.status));
        };
        restarted = body["pods"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["action"] == "restart in place")
            .count();
    }
    if restarted != pods as usize {
        return Err(anyhow!(
            "the preview restarts {restarted} of {pods} pods in place"
        ));
    }
    times.sort();
    let (median, low, high) = (percentile(&times, 0.5), times[0], times[times.len() - 1]);
    Ok(json!({
        "scenario": "update preview",
        "pods": pods, "agents": agents, "runs": runs,
        "median_ms": ms(median), "min_ms": ms(low), "max_ms": ms(high),
        "summary": format!(
            "update preview (dry run) changing all {pods} pods over {agents} agents: median {:.1} ms (min {:.1}, max {:.1}; {runs} runs)",
            ms(median), ms(low), ms(high)
        ),
    }))
}

fn restart(tasks: u32, state: Option<&str>) -> Result<Value> {
    let dir = TempDir::new("restart")?;
    let spec = bench_spec(tasks, "", "parallel")?;
    let agents = (tasks as usize).div_ceil(3).max(1);
    let mut sim = simulation(spec, agents, persister(&dir, state)?)?;
    let fill = Instant::now();
    run_deploy(&mut sim, 100)?;
    let fill = fill.elapsed();
    // One task down, so the restarted scheduler has work for the first offer.
    sim.task_state("node-0-server", TaskState::TaskFailed)
        .map_err(|e| anyhow!("{e}"))?;
    let before = sim.cluster.launch_count();
    // A new process: the old scheduler and its store handle (and its ZooKeeper session, with
    // the leader lock) are gone.
    sim.stop();
    sim.set_persister(Arc::new(berth_state::MemPersister::new()));
    // What the fill (and the benches before) left for the kernel to write back is written
    // now, not while the restart is timed.
    nix::unistd::sync();
    // What the old scheduler freed goes back to the system before the new one is measured.
    release_freed_memory();
    let rss_before = rss_mb();
    let cluster_before = sim.cluster_time;
    let started = Instant::now();
    let persister = open_persister(&dir, state, false)?;
    sim.set_persister(persister.clone());
    sim.start().map_err(|e| anyhow!("{e}"))?;
    let wall = started.elapsed();
    // The simulated master answers the reconciliation on this thread, inside the calls: a
    // real master does that in its own process, so it is not the scheduler's time.
    let master = sim.cluster_time.saturating_sub(cluster_before);
    let reconciled = wall.saturating_sub(master);
    if !sim.is_ready() {
        return Err(anyhow!("the scheduler did not finish reconciliation"));
    }
    // The first offers: every agent's, as after a real restart. What counts is the
    // scheduler's time on them (the simulated cluster making thousands of offers is not
    // the scheduler's work).
    let _ = sim.take_stats();
    sim.offers().map_err(|e| anyhow!("{e}"))?;
    let first_round = sim.take_stats();
    let total = reconciled + first_round.busy;
    let relaunched = sim.cluster.launch_count() > before;
    if !relaunched {
        return Err(anyhow!("the first offers after the restart were not used"));
    }
    let rss_after = rss_mb();
    let rss = peak_rss_mb();
    let store = state.unwrap_or("embedded");
    if let Some(state) = state {
        sim.stop();
        drop(persister);
        drop(sim);
        wipe_zk(state)?;
    }
    Ok(json!({
        "scenario": "restart", "tasks": tasks, "state": store,
        "fill_seconds": fill.as_secs_f64(),
        "load_and_reconcile_ms": ms(reconciled), "restart_to_first_offer_used_ms": ms(total),
        "simulated_master_ms": ms(master),
        "first_offers_ms": ms(first_round.busy), "longest_batch_ms": ms(first_round.longest_batch),
        "peak_rss_mb": rss, "rss_before_mb": rss_before, "rss_after_mb": rss_after,
        "memory_per_task_kb": kb_per_task(rss_before, rss_after, tasks),
        "summary": format!(
            "restart with {tasks} tasks in the store ({store}): loaded and reconciled in {:.0} ms, first offer used after {:.0} ms of scheduler time ({:.0} ms on the first offers of {agents} agents; the simulated master's answers, {:.0} ms, not counted); resident memory of the new scheduler {:.0} MB ({:.1} KB a task); peak RSS {rss} MB",
            ms(reconciled), ms(total), ms(first_round.busy), ms(master),
            rss_after - rss_before, kb_per_task(rss_before, rss_after, tasks)
        ),
    }))
}

fn recovery(runs: u32) -> Result<Value> {
    let dir = TempDir::new("recovery")?;
    let spec = bench_spec(3, "hostname:UNIQUE", "parallel")?;
    let mut sim = simulation(spec, 3, persister(&dir, None)?)?;
    run_deploy(&mut sim, 100)?;
    let mut times = Vec::with_capacity(runs as usize);
    for i in 0..runs {
        let task = format!("node-{}-server", i % 3);
        let before = sim.cluster.launch_count();
        let started = Instant::now();
        sim.task_state(&task, TaskState::TaskFailed)
            .map_err(|e| anyhow!("{e}"))?;
        sim.offers().map_err(|e| anyhow!("{e}"))?;
        let took = started.elapsed();
        if sim.cluster.launch_count() <= before {
            return Err(anyhow!("{task} was not relaunched by the first offers"));
        }
        times.push(took);
        sim.advance(1_000).map_err(|e| anyhow!("{e}"))?;
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    Ok(json!({
        "scenario": "recovery", "runs": runs,
        "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(times.last().copied().unwrap_or_default()),
        "summary": format!(
            "recovery on sim (embedded store): failure → relaunch sent p50 {:.2} ms, p99 {:.2} ms over {runs} failures",
            ms(p50), ms(p99)
        ),
    }))
}

fn all() -> Result<Value> {
    let exe = std::env::current_exe()?;
    let scenarios: [&[&str]; 9] = [
        &[
            "deploy",
            "--pods",
            "5000",
            "--agents",
            "2000",
            "--placement",
            "hostname:MAX_PER:3",
            "--strategy",
            "parallel",
        ],
        &[
            "deploy",
            "--pods",
            "500",
            "--agents",
            "500",
            "--placement",
            "hostname:MAX_PER:3",
            "--strategy",
            "serial",
        ],
        &["api", "--pods", "5000", "--agents", "2000"],
        &[
            "deploy",
            "--pods",
            "5000",
            "--agents",
            "2000",
            "--cluster",
            "mesos-double",
        ],
        &["offer-decode"],
        &["update-preview", "--pods", "5000", "--agents", "2000"],
        &["restart", "--tasks", "10000"],
        &["recovery", "--runs", "200"],
        &["recovery", "--cluster", "local", "--runs", "50"],
    ];
    let mut results = Vec::new();
    for args in scenarios {
        let out = std::process::Command::new(&exe)
            .arg("bench")
            .args(args)
            .arg("--json")
            .output()?;
        if !out.status.success() {
            return Err(anyhow!(
                "bench {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let v: Value = serde_json::from_slice(&out.stdout)?;
        println!("{}", v["summary"].as_str().unwrap_or_default());
        results.push(v);
    }
    Ok(json!({ "results": results }))
}
