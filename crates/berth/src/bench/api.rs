//! `berth bench api`: how long the HTTP API takes to answer while a large deploy runs.
//!
//! ```text
//!  sim cluster (N agents) ◀──calls── scheduler loop (own thread, embedded store) ◀── handle
//!        └── offer round every 100 ms ──▶ events                                      ▲
//!  HTTP client ── GET plans, health, pods, frameworkId every 10 ms ──▶ berth-api ─────┘
//! ```
//!
//! Latency is measured end to end over real HTTP on a loopback port, from the first offer
//! round until the deploy plan is COMPLETE.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_scheduler::{Request, SchedulerHandle, now_ms};
use berth_state::{EmbeddedPersister, Persister};
use berth_testing::RunningLoop;
use serde_json::{Value, json};

use super::{TempDir, bench_core, bench_spec, ms, percentile};

/// The routes a dashboard or an operator's script polls, in turn.
const ROUTES: [&str; 5] = [
    "/v1/plans/deploy",
    "/v1/health",
    "/v1/pods/node-7/status",
    "/v1/plans",
    "/v1/state/frameworkId",
];

/// Runs the benchmark: `pods` pods on `agents` agents, requests every `every`.
pub fn api_latency(pods: u32, agents: usize, every: Duration) -> Result<Value> {
    if pods == 0 || agents == 0 {
        return Err(anyhow!("--pods and --agents must be at least 1"));
    }
    let dir = TempDir::new("api")?;
    let spec = bench_spec(pods, "hostname:MAX_PER:3", "parallel")?;
    if u64::from(pods) > 3 * agents as u64 {
        return Err(anyhow!(
            "{pods} pods cannot be placed on {agents} agents with at most 3 per agent"
        ));
    }
    let persister: Arc<dyn Persister> = Arc::new(EmbeddedPersister::open(&dir.0)?);
    let core = bench_core(persister, spec)?;
    let cluster = SimCluster::new(SimAgentSpec::many(agents, &["a", "b", "c"]));
    cluster.set_lean(true);
    let running = RunningLoop::start(core, cluster).context("cannot start the scheduler thread")?;
    let outcome = running.block_on(measure(
        pods,
        running.handle.clone(),
        running.metrics.clone(),
        running.cluster.clone(),
        every,
    ));
    running.stop()?;
    let (mut latencies, deploy, launched, errors, routes, longest) = outcome?;
    let longest_ms = (longest * 1e6).round() / 1e3;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let max = latencies.last().copied().unwrap_or_default();
    let summary = format!(
        "api latency during a {pods}-pod deploy on {agents} agents: {} requests, p50 {} ms, \
         p99 {} ms, max {} ms, {errors} errors; deploy {:.2} s ({:.0} launches/s); longest \
         stretch of work on the loop {longest_ms} ms",
        latencies.len(),
        ms(p50),
        ms(p99),
        ms(max),
        deploy.as_secs_f64(),
        launched as f64 / deploy.as_secs_f64()
    );
    Ok(json!({
        "scenario": "api latency during deploy",
        "pods": pods, "agents": agents,
        "requests": latencies.len(), "errors": errors,
        "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max),
        "deploy_s": deploy.as_secs_f64(),
        "longest_loop_batch_ms": longest_ms,
        "routes": routes,
        "summary": summary,
    }))
}

type Measured = (Vec<Duration>, Duration, u64, u64, Vec<Value>, f64);

async fn measure(
    pods: u32,
    handle: SchedulerHandle,
    metrics: berth_scheduler::metrics::LoopMetrics,
    cluster: SimCluster,
    every: Duration,
) -> Result<Measured> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(berth_api::serve(
        listener,
        berth_api::with_metrics(
            berth_api::router(handle.clone(), None, None),
            handle.clone(),
            metrics,
            None,
        ),
        async move {
            let _ = api_stopped.await;
        },
    ));
    let started = Instant::now();
    let offers = {
        let cluster = cluster.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            loop {
                cluster.set_now(now_ms());
                cluster.offer_round();
                // The deploy plan is asked for only once every pod was launched: this
                // feeder's own checks are not the load being measured.
                if cluster.launch_count() >= pods as usize {
                    let plan = handle.request(Request::Plan("deploy".to_owned())).await;
                    if plan.status == 200 {
                        return Ok(started.elapsed());
                    }
                }
                if started.elapsed() > Duration::from_secs(600) {
                    return Err(anyhow!("the deploy did not complete within 10 minutes"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    let mut by_route: Vec<Vec<Duration>> = vec![Vec::new(); ROUTES.len()];
    let mut errors = 0u64;
    let mut next = tokio::time::Instant::now();
    let mut i = 0usize;
    while !offers.is_finished() {
        let route = i % ROUTES.len();
        let url = format!("{base}{}", ROUTES[route]);
        i += 1;
        let asked = Instant::now();
        let ok = match client.get(&url).send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.is_ok() && !status.is_server_error()
            }
            Err(_) => false,
        };
        latencies.push(asked.elapsed());
        by_route[route].push(asked.elapsed());
        if !ok {
            errors += 1;
        }
        next += every;
        tokio::time::sleep_until(next).await;
    }
    let deploy = offers.await??;
    let launched = cluster.launch_count() as u64;
    // The longest stretch of work the loop did in one go (the metrics the loop keeps).
    let metrics = client
        .get(format!("{base}/v1/metrics/prometheus"))
        .send()
        .await?
        .text()
        .await?;
    let longest = metrics
        .lines()
        .find_map(|l| l.strip_prefix("berth_loop_longest_batch_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| anyhow!("the metrics have no berth_loop_longest_batch_seconds"))?;
    let _ = stop_api.send(());
    let _ = api.await;
    let routes = ROUTES
        .iter()
        .zip(by_route)
        .map(|(route, mut times)| {
            times.sort();
            json!({"route": route, "requests": times.len(),
                "p50_ms": ms(percentile(&times, 0.5)), "p99_ms": ms(percentile(&times, 0.99))})
        })
        .collect();
    Ok((latencies, deploy, launched, errors, routes, longest))
}
