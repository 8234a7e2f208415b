//! `berth bench unplaceable`: a service whose pods fit on no agent, offered again and again.
//! What it costs the scheduler to keep finding that out.

use std::time::Instant;

use anyhow::{Result, anyhow};
use berth_plan::Status;
use serde_json::{Value, json};

use super::{TempDir, bench_spec_from, ms, persister, simulation};

/// Each pod asks for more cpus than any simulated agent has (8).
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
        cpus: 16
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      nodes:
        pod: node
        strategy: {{STRATEGY}}
";

/// Seconds between two offers of an agent: the scheduler declines unused offers for 5 s
/// while it has work (`decline_short_secs`).
const OFFER_EVERY_SECS: u64 = 5;

/// Offers every agent `rounds` times, 5 simulated seconds apart (one tick a second, as in
/// `berth run`); the share of one core the scheduler used is its busy time over the
/// simulated time.
pub(super) fn unplaceable(pods: u32, agents: usize, rounds: u32) -> Result<Value> {
    let dir = TempDir::new("unplaceable")?;
    let spec = bench_spec_from(SPEC, pods, "", "parallel")?;
    let mut sim = simulation(spec, agents, persister(&dir, None)?)?;
    let mut busy = Vec::new();
    let started = Instant::now();
    for _ in 0..rounds.max(2) {
        let _ = sim.take_stats();
        let offered = sim.offers().map_err(|e| anyhow!("{e}"))?;
        if offered == 0 {
            return Err(anyhow!("the simulated cluster made no offers"));
        }
        for _ in 0..OFFER_EVERY_SECS {
            sim.advance(1_000).map_err(|e| anyhow!("{e}"))?;
        }
        busy.push(sim.take_stats().busy);
    }
    let wall = started.elapsed();
    if sim.cluster.launch_count() > 0 || sim.plan_status("deploy") == Some(Status::Complete) {
        return Err(anyhow!("pods that fit nowhere were launched"));
    }
    // Every step says why it waits; the steps not evaluated themselves say whose
    // evaluations stand for them.
    let reply = sim
        .request(berth_scheduler::Request::Plan("deploy".to_owned()))
        .map_err(|e| anyhow!("{e}"))?;
    let status = reply.status;
    let Some(plan) = reply.body.into_json() else {
        return Err(anyhow!("the deploy plan answered {status}"));
    };
    let steps: Vec<&Value> = plan["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["steps"].as_array().into_iter().flatten())
        .collect();
    let explained = steps
        .iter()
        .filter(|s| s["waiting"]["declinedLastMinute"].as_u64().unwrap_or(0) > 0)
        .count();
    let sampled = steps
        .iter()
        .filter(|s| s["waiting"]["sampledBy"].is_string())
        .count();
    let example = steps
        .last()
        .and_then(|s| s["waiting"]["sampledBy"].as_str())
        .unwrap_or_default()
        .to_owned();
    // The first round builds what later rounds reuse; the steady state is what stays.
    let steady = &busy[1..];
    let per_round = steady.iter().sum::<std::time::Duration>() / steady.len() as u32;
    #[allow(clippy::cast_precision_loss)]
    let share = per_round.as_secs_f64() / OFFER_EVERY_SECS as f64 * 100.0;
    Ok(json!({
        "scenario": "unplaceable",
        "pods": pods, "agents": agents, "rounds": busy.len(),
        "first_round_ms": ms(busy[0]), "round_ms": ms(per_round),
        "core_percent": (share * 100.0).round() / 100.0,
        "steps_explained": explained, "steps_sampled": sampled,
        "wall_seconds": wall.as_secs_f64(),
        "example": example,
        "summary": format!(
            "{pods} pods that fit nowhere, {agents} agents offering every {OFFER_EVERY_SECS} s: {:.1} ms of scheduler time per round of offers (first round {:.1} ms) = {share:.2} % of a core; {explained} of {} steps say why they wait ({sampled} judged by a sample)",
            ms(per_round), ms(busy[0]), steps.len()
        ),
    }))
}
