//! Randomized fault simulation: random services (pod types, counts, tasks, placement rules,
//! ROOT and MOUNT volumes, strategies) on random agent sets, under random fault schedules
//! (task crashes; agents stopped, started and drained; the scheduler killed at random
//! instants; store writes failing; status updates lost, duplicated and reordered; offers
//! rescinded; pods restarted and replaced; configuration updates). After the faults stop and
//! the cluster settles, the invariants must hold:
//!
//! - every plan is COMPLETE (the generated services always fit what is left of the cluster);
//! - at most one live copy of every task, and no live task the store does not know;
//! - no reservation or volume leaked: every reservation on a live agent belongs to a stored
//!   task;
//! - no volume of a live pod lost: every stored task's volume exists on its agent, and a pod
//!   never replaced keeps the volume it was first given;
//! - every placement rule holds among the live tasks.
//!
//! `BERTH_CHAOS_CASES` sets the number of cases (default 500), `BERTH_CHAOS_SEED` the first
//! seed (default: from the clock). A failing case prints its seed; `BERTH_CHAOS_SEED=<seed>
//! BERTH_CHAOS_CASES=1` replays it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use berth_cluster::Event;
use berth_cluster::sim::SimAgentSpec;
use berth_mesos::{TaskInfo, TaskState, task_labels};
use berth_plan::Status;
use berth_plan::{CommandTarget, PlanCommand};
use berth_scheduler::{Request, SchedulerOptions};
use berth_spec::{Env, NoFiles, ServiceSpec, SpecInput, load_spec};
use berth_state::MemPersister;
use berth_testing::faults::{FaultyPersister, WriteFault};
use berth_testing::{HarnessError, Simulation};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

/// One pod type of a generated service.
#[derive(Debug, Clone)]
struct PodGen {
    name: String,
    count: usize,
    sidecar: bool,
    mount: bool,
    rule: &'static str,
    strategy: &'static str,
}

impl PodGen {
    /// Most instances of this pod one agent may hold: rules count tasks (a pod with a
    /// sidecar has two), and a first instance always fits.
    fn per_agent(&self) -> usize {
        let tasks = if self.sidecar { 2 } else { 1 };
        match self.rule {
            "hostname:UNIQUE" => 1,
            "hostname:MAX_PER:2" => (2 / tasks).max(1),
            _ => usize::MAX,
        }
    }
}

/// A generated service.
#[derive(Debug, Clone)]
struct ServiceGen {
    pods: Vec<PodGen>,
    strategy: &'static str,
    /// Bumped by configuration updates (an environment variable of every task).
    generation: u32,
}

impl ServiceGen {
    fn random(rng: &mut StdRng, agents: usize) -> Self {
        let kinds = rng.random_range(1..=2);
        let pods = (0..kinds)
            .map(|i| {
                let mount = rng.random_range(0..3) == 0;
                let rule = match rng.random_range(0..4) {
                    0 => "hostname:UNIQUE",
                    1 => "hostname:MAX_PER:2",
                    _ => "",
                };
                PodGen {
                    name: ["alpha", "beta"][i].to_owned(),
                    count: rng.random_range(1..=agents.min(3)),
                    sidecar: rng.random_range(0..2) == 0,
                    mount,
                    rule,
                    strategy: if rng.random_range(0..2) == 0 {
                        "serial"
                    } else {
                        "parallel"
                    },
                }
            })
            .collect();
        Self {
            pods,
            strategy: if rng.random_range(0..2) == 0 {
                "serial"
            } else {
                "parallel"
            },
            generation: 0,
        }
    }

    fn yaml(&self) -> String {
        let mut y = String::from("name: chaos\npods:\n");
        for p in &self.pods {
            y.push_str(&format!(
                "  {}:\n    count: {}\n    allow-decommission: true\n",
                p.name, p.count
            ));
            if !p.rule.is_empty() {
                y.push_str(&format!("    placement: '{}'\n", p.rule));
            }
            y.push_str("    tasks:\n      server:\n        goal: RUNNING\n        cmd: ./server\n");
            y.push_str("        cpus: 0.1\n        memory: 32\n");
            if p.mount {
                y.push_str("        volume:\n          path: data\n          type: MOUNT\n          size: 5000\n");
            } else {
                y.push_str("        volume:\n          path: data\n          type: ROOT\n          size: 10\n");
            }
            y.push_str("        ports:\n          api:\n            port: 0\n            env-key: PORT_API\n");
            y.push_str(&format!(
                "        env:\n          GENERATION: '{}'\n",
                self.generation
            ));
            if p.sidecar {
                y.push_str("      sidecar:\n        goal: RUNNING\n        cmd: ./sidecar\n");
                y.push_str("        cpus: 0.1\n        memory: 16\n");
            }
        }
        y.push_str(&format!(
            "plans:\n  deploy:\n    strategy: {}\n    phases:\n",
            self.strategy
        ));
        for p in &self.pods {
            y.push_str(&format!(
                "      {}-phase:\n        pod: {}\n        strategy: {}\n",
                p.name, p.name, p.strategy
            ));
        }
        y
    }

    fn spec(&self) -> ServiceSpec {
        load_spec(&SpecInput {
            file_name: "svc.yml",
            template: &self.yaml(),
            env: &Env::default(),
            files: &NoFiles,
        })
        .unwrap_or_else(|e| panic!("generated spec does not load: {e}\n{}", self.yaml()))
        .spec
    }

    /// Whether the service can be placed on `agents` agents.
    fn fits(&self, agents: usize) -> bool {
        self.agents_needed() <= agents
    }

    /// How many distinct agents the service needs at the least.
    fn agents_needed(&self) -> usize {
        self.pods
            .iter()
            .map(|p| match p.rule {
                "hostname:UNIQUE" => p.count,
                "hostname:MAX_PER:2" => p.count.div_ceil(p.per_agent()),
                _ => 1,
            })
            .max()
            .unwrap_or(1)
            .max(self.pods.iter().filter(|p| p.mount).map(|p| p.count).sum())
    }
}

/// Every value of `key` found anywhere in a task's JSON (labels `resource_id`, persistence
/// `id`).
fn collect(value: &Value, out: &mut BTreeSet<String>, what: &str) {
    match value {
        Value::Object(map) => {
            if what == "resource_id"
                && map.get("key").and_then(Value::as_str) == Some("resource_id")
                && let Some(v) = map.get("value").and_then(Value::as_str)
                && !v.is_empty()
            {
                out.insert(v.to_owned());
            }
            if what == "persistence"
                && let Some(id) = map
                    .get("persistence")
                    .and_then(|p| p.get("id"))
                    .and_then(Value::as_str)
            {
                out.insert(id.to_owned());
            }
            for v in map.values() {
                collect(v, out, what);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, out, what)),
        _ => {}
    }
}

fn ids_of(info: &TaskInfo, what: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(&serde_json::to_value(info).unwrap(), &mut out, what);
    out
}

fn pod_of(info: &TaskInfo) -> Option<String> {
    Some(format!(
        "{}-{}",
        info.labels.get(task_labels::TASK_TYPE)?,
        info.labels.get(task_labels::INDEX)?
    ))
}

/// Whether a harness error is the store being unreachable.
fn store_failure(e: &HarnessError) -> bool {
    match e {
        HarnessError::State(e) => e.is_retryable(),
        HarnessError::Scheduler(e) => e.is_retryable(),
        _ => false,
    }
}

/// One case: generate, run the faults, settle, check. `Err` names what broke.
#[allow(clippy::too_many_lines)]
fn case(seed: u64) -> Result<(), String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let agent_count = rng.random_range(3..=6);
    let mut service = ServiceGen::random(&mut rng, agent_count);
    while !service.fits(agent_count) {
        let biggest = (0..service.pods.len())
            .max_by_key(|i| service.pods[*i].count)
            .unwrap_or(0);
        service.pods[biggest].count -= 1;
        if service.pods[biggest].count == 0 {
            service.pods[biggest].count = 1;
            service.pods[biggest].mount = false;
        }
    }
    let persister = FaultyPersister::new(Arc::new(MemPersister::new()));
    let options = SchedulerOptions {
        implicit_reconcile_interval_ms: 20_000,
        kill_retry_ms: 5_000,
        ..SchedulerOptions::default()
    };
    let mut sim = Simulation::with(
        service.spec(),
        SimAgentSpec::many(agent_count, &["a", "b", "c"]),
        options,
        Arc::new(persister.clone()),
    )
    .map_err(|e| format!("start: {e}"))?;
    sim.record = false;
    let mut log: Vec<String> = Vec::new();
    // Pods whose data may go on purpose (replaced, on a drained agent, decommissioned).
    let mut replaced: HashSet<String> = HashSet::new();
    // The volume each pod was first given.
    let mut first_volume: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut drained = 0usize;
    let mut store_down_for = 0u32;
    // A scheduler started while the store is down cannot read its state: it stays down (as
    // `berth run` exits and its supervisor starts it again) until the store is back.
    let mut scheduler_down = false;
    let steps = rng.random_range(20..60);
    let fail = |what: &str, e: &dyn std::fmt::Display, log: &[String]| {
        format!("{what}: {e}\nactions: {}", log.join(", "))
    };
    for _ in 0..steps {
        if store_down_for > 0 {
            store_down_for -= 1;
            if store_down_for == 0 {
                persister.set_writes(WriteFault::None);
                log.push("store back".to_owned());
            }
        }
        if scheduler_down {
            if store_down_for > 0 {
                continue;
            }
            log.push("start".to_owned());
            sim.start()
                .map_err(|e| fail("start after the store came back", &e, &log))?;
            scheduler_down = false;
        }
        let live = sim.cluster.live_tasks();
        let agents = sim.cluster.agents();
        let action = rng.random_range(0..100);
        let result = match action {
            0..=29 => {
                log.push("offers".to_owned());
                sim.offers().map(|_| ())
            }
            30..=41 => {
                let ms = rng.random_range(100..6_000);
                log.push(format!("advance {ms}"));
                sim.advance(ms)
            }
            42..=49 if !live.is_empty() => {
                let (name, _, _) = &live[rng.random_range(0..live.len())];
                log.push(format!("crash {name}"));
                let state = if rng.random_range(0..2) == 0 {
                    TaskState::TaskFailed
                } else {
                    TaskState::TaskKilled
                };
                sim.task_state(name, state)
            }
            50..=54 => {
                let (id, up, was_drained) = &agents[rng.random_range(0..agents.len())];
                let down = agents.iter().filter(|a| !a.1 && !a.2).count();
                if *was_drained {
                    Ok(())
                } else if *up && down == 0 {
                    log.push(format!("stop {id}"));
                    sim.cluster.agent_down(id);
                    sim.pump()
                } else if !*up {
                    log.push(format!("start {id}"));
                    sim.cluster.agent_up(id);
                    sim.pump()
                } else {
                    Ok(())
                }
            }
            55..=56 if drained == 0 && service.fits(agent_count - 1) => {
                let candidates: Vec<&(String, bool, bool)> =
                    agents.iter().filter(|a| a.1 && !a.2).collect();
                if let Some((id, _, _)) = candidates.first() {
                    drained += 1;
                    log.push(format!("drain {id}"));
                    // Its pods move elsewhere with fresh volumes: those running there and
                    // those stored there while down.
                    for (name, _, agent) in &live {
                        if agent == id
                            && let Some(info) = sim.core().store().task_info(name)
                            && let Some(pod) = pod_of(info)
                        {
                            replaced.insert(pod);
                        }
                    }
                    replaced.extend(
                        sim.core()
                            .store()
                            .task_infos()
                            .filter(|i| i.agent_id.value == *id)
                            .filter_map(pod_of),
                    );
                    sim.cluster.drain_agent(id);
                    sim.pump()
                } else {
                    Ok(())
                }
            }
            57..=63 => {
                let how = rng.random_range(0..3);
                log.push(format!("kill -9 ({how})"));
                match how {
                    0 => sim.restart(),
                    1 => sim.crash_after_commit().map(|_| ()),
                    _ => sim.crash_before_flush().map(|_| ()),
                }
            }
            64..=67 if store_down_for == 0 => {
                store_down_for = rng.random_range(1..6);
                log.push(format!("store down for {store_down_for} steps"));
                persister.set_writes(WriteFault::Unavailable);
                Ok(())
            }
            68..=72 => {
                // Status updates lost on the way (the agent re-sends them later).
                let events = sim.pending_events();
                let (updates, rest): (Vec<Event>, Vec<Event>) = events
                    .into_iter()
                    .partition(|e| matches!(e, Event::Update { .. }));
                log.push(format!("lose {} updates", updates.len()));
                sim.inject(rest)
            }
            73..=77 => {
                // Updates duplicated and reordered.
                let mut events = sim.pending_events();
                let dups: Vec<Event> = events
                    .iter()
                    .filter(|e| matches!(e, Event::Update { .. }))
                    .cloned()
                    .collect();
                events.extend(dups);
                let n = events.len();
                for i in (1..n).rev() {
                    events.swap(i, rng.random_range(0..=i));
                }
                log.push(format!("shuffle {n} events"));
                sim.inject(events)
            }
            78..=80 => {
                let (id, _, _) = &agents[rng.random_range(0..agents.len())];
                log.push(format!("rescind {id}"));
                sim.cluster.rescind(id);
                sim.pump()
            }
            81..=84 => {
                log.push("resend".to_owned());
                sim.cluster.resend_unacknowledged();
                sim.pump()
            }
            85..=89 => {
                let p = &service.pods[rng.random_range(0..service.pods.len())];
                let pod = format!("{}-{}", p.name, rng.random_range(0..p.count));
                if rng.random_range(0..3) == 0 {
                    log.push(format!("replace {pod}"));
                    replaced.insert(pod.clone());
                    sim.request(Request::PodReplace(pod)).map(|_| ())
                } else {
                    log.push(format!("restart {pod}"));
                    sim.request(Request::PodRestart(pod)).map(|_| ())
                }
            }
            90..=93 => {
                // A configuration update, rolled out by a restart with the new spec; only
                // one that fits what is left of the cluster.
                let i = rng.random_range(0..service.pods.len());
                let mut next = service.clone();
                match rng.random_range(0..3) {
                    0 if next.pods[i].count > 1 => next.pods[i].count -= 1,
                    1 if next.pods[i].count < 3 => next.pods[i].count += 1,
                    _ => {}
                }
                next.generation += 1;
                if !next.fits(agent_count - drained) {
                    next.pods[i].count = service.pods[i].count;
                }
                if next.pods[i].count < service.pods[i].count {
                    replaced.insert(format!("{}-{}", next.pods[i].name, next.pods[i].count));
                }
                service = next;
                log.push(format!(
                    "update ({} count {}, generation {})",
                    service.pods[i].name, service.pods[i].count, service.generation
                ));
                sim.set_spec(service.spec());
                sim.restart()
            }
            _ => {
                log.push("offers".to_owned());
                sim.offers().map(|_| ())
            }
        };
        match result {
            Err(e) if store_down_for > 0 && store_failure(&e) && !sim.is_running() => {
                log.push("the start failed: store down".to_owned());
                scheduler_down = true;
                continue;
            }
            other => other.map_err(|e| fail("a fault ended the scheduler", &e, &log))?,
        }
        // Remember the first volume of each pod as it is seen running.
        for (name, _, _) in sim.cluster.live_tasks() {
            if let Some(info) = sim.core().store().task_info(&name)
                && let Some(pod) = pod_of(info)
            {
                let vols = ids_of(info, "persistence");
                if !vols.is_empty() && !replaced.contains(&pod) {
                    first_volume.entry(pod).or_insert(vols);
                }
            }
        }
    }

    // Settle: the store works, stopped agents come back, updates arrive, offers flow.
    persister.set_writes(WriteFault::None);
    if scheduler_down {
        sim.start()
            .map_err(|e| fail("start after the store came back", &e, &log))?;
    }
    // The scheduler notices the store is back at its next retry.
    while sim.applier().is_faulted() {
        sim.advance(1_000).map_err(|e| fail("settling", &e, &log))?;
    }
    for (id, up, was_drained) in sim.cluster.agents() {
        if !up && !was_drained {
            sim.cluster.agent_up(&id);
        }
    }
    // Pods that ran on a drained agent move elsewhere on their own (with fresh volumes) when
    // the scheduler hears of the drain. It may not: a scheduler killed before it handled the
    // agent's FAILURE event, for a pod whose tasks were already down, gets no report of it
    // again (as with Mesos). Its step waits for the gone agent with every offer explaining
    // so, and — as the guide says for a machine that is gone for good — the operator
    // replaces the pod.
    let drained_agents: Vec<String> = sim
        .cluster
        .agents()
        .into_iter()
        .filter(|a| a.2)
        .map(|a| a.0)
        .collect();
    let stranded: BTreeSet<String> = sim
        .core()
        .store()
        .task_infos()
        .filter(|i| drained_agents.contains(&i.agent_id.value))
        .filter(|i| i.labels.get(task_labels::PERMANENTLY_FAILED) != Some("true"))
        .filter_map(pod_of)
        .collect();
    replaced.extend(
        sim.core()
            .store()
            .task_infos()
            .filter(|i| drained_agents.contains(&i.agent_id.value))
            .filter_map(pod_of),
    );
    for pod in stranded {
        let reply = sim
            .request(Request::PodReplace(pod.clone()))
            .map_err(|e| fail("settling", &e, &log))?;
        log.push(format!("operator replaces {pod} ({})", reply.status));
        if reply.status != 200 {
            return Err(format!(
                "pod replace {pod} answered {reply:?}{}",
                log.join(", ")
            ));
        }
    }
    // Likewise a decommission that waits to release reservations on the gone machine: the
    // operator force-completes those steps (as the README says).
    let gone_reservations: BTreeSet<String> = sim
        .core()
        .store()
        .task_infos()
        .filter(|i| drained_agents.contains(&i.agent_id.value))
        .flat_map(|i| ids_of(i, "resource_id"))
        .collect();
    if !gone_reservations.is_empty()
        && let Ok(reply) = sim.request(Request::Plan("decommission".to_owned()))
        && let Some(view) = reply.body.into_json()
    {
        for phase in view["phases"].as_array().into_iter().flatten() {
            for step in phase["steps"].as_array().into_iter().flatten() {
                let name = step["name"].as_str().unwrap_or_default();
                let waits_for_gone = name
                    .strip_prefix("unreserve-")
                    .is_some_and(|id| gone_reservations.contains(id));
                if step["status"] != "COMPLETE" && waits_for_gone {
                    log.push(format!("operator force-completes {name}"));
                    sim.request(Request::PlanCommand(
                        PlanCommand::ForceComplete,
                        CommandTarget {
                            plan: "decommission".to_owned(),
                            phase: phase["name"].as_str().map(str::to_owned),
                            step: Some(name.to_owned()),
                        },
                    ))
                    .map_err(|e| fail("settling", &e, &log))?;
                }
            }
        }
    }
    let plans = ["deploy", "recovery", "decommission"];
    // Settled: every plan COMPLETE and every update acknowledged for 5 rounds in a row (a
    // failure seen late creates its recovery step only when the scheduler next looks).
    let mut settled = false;
    let mut stable = 0;
    for _ in 0..300 {
        sim.cluster.resend_unacknowledged();
        sim.offers().map_err(|e| fail("settling", &e, &log))?;
        sim.advance(2_000).map_err(|e| fail("settling", &e, &log))?;
        let done = plans
            .iter()
            .all(|p| sim.plan_status(p).is_none_or(|s| s == Status::Complete));
        if done && sim.cluster.unacknowledged() == 0 {
            stable += 1;
            if stable >= 5 {
                settled = true;
                break;
            }
        } else {
            stable = 0;
        }
    }
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    let context = || {
        let offers: Vec<String> = sim
            .core()
            .offer_log()
            .rev()
            .take(6)
            .map(|o| {
                format!(
                    "{} on {}: {}",
                    o.pod_instance_name,
                    o.hostname,
                    o.explanation.join(" | ")
                )
            })
            .collect();
        let stored: Vec<String> = sim
            .core()
            .store()
            .task_infos()
            .map(|i| {
                format!(
                    "{} {} {:?} on {} {:?} {:?}",
                    i.name,
                    i.task_id.value,
                    i.labels.get(task_labels::PERMANENTLY_FAILED),
                    i.agent_id.value,
                    ids_of(i, "resource_id"),
                    sim.core().store().task_status(&i.name).map(|s| s.state)
                )
            })
            .collect();
        let reservations: Vec<(String, Vec<String>)> = sim
            .cluster
            .agents()
            .into_iter()
            .map(|(a, _, _)| (a.clone(), sim.cluster.reservations(&a)))
            .collect();
        format!(
            "\ncounters: {:?}\nlast calls: {:?}\nsuppressed: {}\nstored: {stored:#?}\nreservations: {reservations:?}\nagents: {:?}\nlast offers:\n  {}\nservice:\n{}\nactions: {}\nplans: {:?}",
            sim.core().counters(),
            sim.cluster
                .calls()
                .iter()
                .rev()
                .take(8)
                .map(|c| format!("{c:?}").chars().take(300).collect::<String>())
                .collect::<Vec<_>>(),
            sim.cluster.is_suppressed(),
            sim.cluster.agents(),
            offers.join("\n  "),
            service.yaml(),
            log.join(", "),
            plans.iter().map(|p| (p, sim.steps(p))).collect::<Vec<_>>()
        )
    };

    // Every plan COMPLETE.
    check(settled, format!("the plans did not complete{}", context()))?;

    // At most one live copy of every task; every live task is the stored one.
    let live = sim.cluster.live_tasks();
    let mut names: Vec<&str> = live.iter().map(|(n, _, _)| n.as_str()).collect();
    names.dedup();
    check(
        names.len() == live.len(),
        format!("a task runs twice: {live:?}{}", context()),
    )?;
    let store = sim.core().store();
    for (name, id, _) in &live {
        let stored = store.task_info(name).map(|i| i.task_id.value.clone());
        check(
            stored.as_deref() == Some(id.as_str()),
            format!(
                "live task {id} is not the stored one ({stored:?}){}",
                context()
            ),
        )?;
    }
    // Every task of the target runs.
    let spec = service.spec();
    for pod in &spec.pod_specs {
        for i in 0..pod.count {
            for t in &pod.task_specs {
                let name = format!("{}-{i}-{}", pod.pod_type, t.name);
                check(
                    live.iter().any(|(n, _, _)| *n == name),
                    format!("{name} does not run{}", context()),
                )?;
            }
        }
    }

    // No reservation or volume leaked; no volume of a live pod lost.
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for info in store.task_infos() {
        expected.extend(ids_of(info, "resource_id"));
    }
    for (agent, _, was_drained) in sim.cluster.agents() {
        if was_drained {
            continue;
        }
        for id in sim.cluster.reservations(&agent) {
            check(
                expected.contains(&id),
                format!("reservation {id} on {agent} leaked{}", context()),
            )?;
        }
    }
    for (name, _, agent) in &live {
        let Some(info) = store.task_info(name) else {
            continue;
        };
        let on_agent: BTreeSet<String> = sim.cluster.volumes(agent).into_iter().collect();
        let vols = ids_of(info, "persistence");
        check(
            vols.is_subset(&on_agent),
            format!(
                "{name}'s volume {vols:?} is not on {agent} ({on_agent:?}){}",
                context()
            ),
        )?;
        if let Some(pod) = pod_of(info)
            && !replaced.contains(&pod)
            && let Some(first) = first_volume.get(&pod)
        {
            check(
                !vols.is_disjoint(first) || vols.is_empty(),
                format!(
                    "pod {pod} lost its volume: first {first:?}, now {vols:?}{}",
                    context()
                ),
            )?;
        }
    }

    // Every placement rule holds among the live tasks.
    for p in &service.pods {
        let mut per_agent: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (name, _, agent) in &live {
            if let Some(rest) = name.strip_prefix(&format!("{}-", p.name))
                && let Some((index, _)) = rest.split_once('-')
            {
                per_agent.entry(agent.as_str()).or_default().insert(index);
            }
        }
        check(
            per_agent.values().all(|pods| pods.len() <= p.per_agent()),
            format!("{} breaks {}: {per_agent:?}{}", p.name, p.rule, context()),
        )?;
    }
    Ok(())
}

#[test]
fn random_faults_leave_every_invariant_intact() {
    let cases: u64 = berth_testing::env_knob("BERTH_CHAOS_CASES", 500);
    let first = berth_testing::env_seed("BERTH_CHAOS_SEED");
    println!("randomized fault simulation: {cases} cases from seed {first}");
    for seed in first..first + cases {
        if let Err(e) = case(seed) {
            panic!(
                "case with seed {seed} failed (replay: BERTH_CHAOS_SEED={seed} \
                 BERTH_CHAOS_CASES=1): {e}"
            );
        }
    }
}
