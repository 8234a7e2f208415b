//! Benchmarks of the Mesos backend.
//!
//! `berth bench deploy --cluster mesos-double`: the deploy goes through real HTTP — the
//! scheduler (its loop on its own thread, the embedded fsync'd store) subscribes to the Mesos
//! master double on a loopback port, reads its RecordIO event stream and POSTs every call; the
//! double offers every 100 ms and runs what is launched. Launches count once the deploy plan is
//! COMPLETE, that is once every TaskInfo and every RUNNING status is stored.
//!
//! ```text
//!  double (N agents) ──RecordIO: OFFERS, UPDATE──▶ MesosCluster ──▶ loop ──▶ store
//!         ▲                                                          │
//!         └──────────── POST ACCEPT / ACKNOWLEDGE / SUPPRESS … ◀─────┘
//! ```
//!
//! `berth bench offer-decode`: reads the OFFERS event of a typical agent (cpus, mem, disk,
//! ports, a reserved volume, a MOUNT disk, attributes, a fault domain) as the backend does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use berth_cluster::mesos::{Masters, MesosCluster, MesosConfig, convert};
use berth_cluster::sim::SimAgentSpec;
use berth_mesos_double::{DoubleOptions, MesosDouble};
use berth_scheduler::{Request, RunnerOptions, SchedulerHandle};
use berth_state::{EmbeddedPersister, Persister};
use serde_json::{Value, json};

use super::{TempDir, bench_core, bench_spec, ms, peak_rss_mb, percentile};

/// Deploys `pods` pods over `agents` agents through the double.
pub fn deploy(pods: u32, agents: usize, placement: &str, strategy: &str) -> Result<Value> {
    let dir = TempDir::new("mesos")?;
    let spec = bench_spec(pods, placement, strategy)?;
    let persister: Arc<dyn Persister> = Arc::new(EmbeddedPersister::open(&dir.0)?);
    let core = bench_core(persister, spec)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let double = runtime.block_on(MesosDouble::start(
        SimAgentSpec::many(agents, &["a", "b", "c"]),
        DoubleOptions {
            heartbeat_secs: 15.0,
            offer_interval: Duration::from_millis(100),
            resend_interval: Duration::from_secs(30),
            schema: None,
            log_calls: false,
            ..DoubleOptions::default()
        },
    ))?;
    double.sim().set_lean(true);
    let cluster = {
        let _entered = runtime.enter();
        MesosCluster::new(MesosConfig::new(Masters::Urls(double.urls())))
            .map_err(|e| anyhow!("{e}"))?
    };
    let (handle, requests) = SchedulerHandle::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let finished =
        berth_scheduler::spawn(core, cluster, requests, stopped, RunnerOptions::default())
            .context("cannot start the scheduler thread")?;
    let deployed = runtime.block_on(async {
        loop {
            if handle
                .request(Request::Plan("deploy".to_owned()))
                .await
                .status
                == 200
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                return Err(anyhow!("the deploy did not complete within 10 minutes"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let _ = stop.send(());
    let (_, result) = runtime
        .block_on(finished)
        .map_err(|_| anyhow!("the scheduler thread ended abnormally"))?;
    result?;
    let took = deployed?;
    let launched = double.sim().launch_count();
    let events = double.events_sent();
    let rate = launched as f64 / took.as_secs_f64();
    let summary = format!(
        "mesos-double deploy: {pods} pods on {agents} agents ({strategy}, {placement}): {:.2} s, \
         {rate:.0} durable launches/s over HTTP, {events} events, peak RSS {:.0} MB",
        took.as_secs_f64(),
        peak_rss_mb()
    );
    Ok(json!({
        "scenario": "deploy through the Mesos master double",
        "pods": pods, "agents": agents, "launched": launched,
        "deploy_s": took.as_secs_f64(), "launches_per_s": rate, "events": events,
        "peak_rss_mb": peak_rss_mb(),
        "summary": summary,
    }))
}

/// The OFFERS event of one typical agent, as a Mesos master sends it.
const TYPICAL_OFFER: &str = r#"{"type":"OFFERS","offers":{"offers":[{
  "id":{"value":"5b6c-O42"},"framework_id":{"value":"5b6c-0001"},
  "agent_id":{"value":"5b6c-S3"},"hostname":"10.0.0.7",
  "allocation_info":{"role":"hello-world-role"},
  "domain":{"fault_domain":{"region":{"name":"us-west-2"},"zone":{"name":"us-west-2a"}}},
  "attributes":[{"name":"rack","type":"TEXT","text":{"value":"r1"}},
                {"name":"os","type":"TEXT","text":{"value":"debian"}}],
  "resources":[
    {"name":"cpus","type":"SCALAR","scalar":{"value":3.5},"allocation_info":{"role":"hello-world-role"}},
    {"name":"mem","type":"SCALAR","scalar":{"value":14000},"allocation_info":{"role":"hello-world-role"}},
    {"name":"disk","type":"SCALAR","scalar":{"value":90000},"allocation_info":{"role":"hello-world-role"}},
    {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1025,"end":2180},{"begin":2182,"end":3887},{"begin":3889,"end":5049},{"begin":5052,"end":8079},{"begin":8082,"end":8180},{"begin":8182,"end":32000}]},
     "allocation_info":{"role":"hello-world-role"}},
    {"name":"cpus","type":"SCALAR","scalar":{"value":0.5},"allocation_info":{"role":"hello-world-role"},
     "reservations":[{"type":"DYNAMIC","role":"hello-world-role","principal":"hello-world-principal",
       "labels":{"labels":[{"key":"resource_id","value":"7d6e5f40-1b2c-4d5e-8f90-a1b2c3d4e5f6"}]}}]},
    {"name":"mem","type":"SCALAR","scalar":{"value":256},"allocation_info":{"role":"hello-world-role"},
     "reservations":[{"type":"DYNAMIC","role":"hello-world-role","principal":"hello-world-principal",
       "labels":{"labels":[{"key":"resource_id","value":"0a1b2c3d-1b2c-4d5e-8f90-a1b2c3d4e5f6"}]}}]},
    {"name":"disk","type":"SCALAR","scalar":{"value":25},"allocation_info":{"role":"hello-world-role"},
     "reservations":[{"type":"DYNAMIC","role":"hello-world-role","principal":"hello-world-principal",
       "labels":{"labels":[{"key":"resource_id","value":"9f8e7d6c-1b2c-4d5e-8f90-a1b2c3d4e5f6"}]}}],
     "disk":{"persistence":{"id":"3c2d1e0f-1b2c-4d5e-8f90-a1b2c3d4e5f6","principal":"hello-world-principal"},
             "volume":{"container_path":"hello-container-path","mode":"RW"}}},
    {"name":"disk","type":"SCALAR","scalar":{"value":20000},"allocation_info":{"role":"hello-world-role"},
     "disk":{"source":{"type":"MOUNT","mount":{"root":"/dcos/volume0"}}}}],
  "executor_ids":[{"value":"hello-world__hello__5f6e7d8c-1b2c-4d5e-8f90-a1b2c3d4e5f6"}]}]}}"#;

/// Decodes the typical agent's OFFERS event `rounds` × `per_round` times.
pub fn offer_decode(rounds: u32, per_round: u32) -> Result<Value> {
    let record = TYPICAL_OFFER.as_bytes();
    let first = convert::read_event(record).map_err(|e| anyhow!(e))?;
    let resources = match first.first() {
        Some(convert::Incoming::Event(berth_cluster::Event::Offers { offers })) => {
            offers[0].resources.len()
        }
        _ => return Err(anyhow!("the typical offer did not decode as an offer")),
    };
    let mut per_offer = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        for _ in 0..per_round.max(1) {
            let decoded = convert::read_event(std::hint::black_box(record));
            std::hint::black_box(decoded.map_err(|e| anyhow!(e))?);
        }
        per_offer.push(t.elapsed() / per_round.max(1));
    }
    per_offer.sort();
    let (p50, min, max) = (
        percentile(&per_offer, 0.5),
        per_offer[0],
        per_offer[per_offer.len() - 1],
    );
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let summary = format!(
        "offer decode ({} bytes, {resources} resources): median {:.2} µs per offer \
         ({:.2}–{:.2} µs over {rounds} rounds), {:.0} offers/s",
        record.len(),
        us(p50),
        us(min),
        us(max),
        1.0 / p50.as_secs_f64()
    );
    Ok(json!({
        "scenario": "offer decode", "bytes": record.len(), "resources": resources,
        "median_us": us(p50), "min_us": us(min), "max_us": us(max),
        "offers_per_s": 1.0 / p50.as_secs_f64(), "p50_ms": ms(p50),
        "summary": summary,
    }))
}
