//! Chaos soak with real processes: two services (hello-world and a second copy of it under
//! another name, each with its own `berth run`, data directory, API port and agents) on the
//! local cluster, while random faults hit them: `kill -9` of tasks, of executors and of
//! `berth run` itself (started again at once), agents stopped and started. Afterwards, with
//! every agent back:
//!
//! - every plan completes and every task of both services runs, one copy each;
//! - every greetings file on every volume still holds all the lines it ever held (each
//!   start of a server appends one; nothing may be lost or rewritten);
//! - the reservations are what they were after the first deploy (nothing leaked).
//!
//! `BERTH_SOAK_SECS` sets how long faults are injected (default 25 s in the test command;
//! the README reports a 10-minute run), `BERTH_SOAK_SEED` the seed (default: from the clock;
//! the run prints it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::common::{Berth, hello_world};

const TASKS: [&str; 3] = ["hello-0-server", "world-0-server", "world-1-server"];

/// One service under test.
struct Service {
    berth: Berth,
    args: Vec<String>,
    role: String,
    /// Agent stopped by the soak, to start again.
    stopped: Option<String>,
    reserved_after_deploy: usize,
}

impl Service {
    fn start(port_base: u16, name: &str) -> Self {
        let mut berth = Berth::new(port_base);
        let options = berth.options(&format!(r#"{{"service": {{"name": "{name}"}}}}"#));
        let args = vec!["--options".to_owned(), options];
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        berth.start(&hello_world(), &refs);
        Self {
            berth,
            args,
            role: format!("{name}-role"),
            stopped: None,
            reserved_after_deploy: 0,
        }
    }

    fn restart(&mut self) {
        let refs: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.berth.start(&hello_world(), &refs);
    }
}

/// Every greetings file on the volumes of the services, with its content.
fn greetings(services: &[Service]) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for s in services {
        for volume in s.berth.volumes() {
            let file = volume.join("greetings");
            if let Ok(text) = std::fs::read_to_string(&file) {
                files.insert(file, text);
            }
        }
    }
    files
}

/// Checks that no greetings file lost a line since last seen, and remembers the new content.
fn check_greetings(services: &[Service], seen: &mut BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut violations = Vec::new();
    for (file, text) in greetings(services) {
        if let Some(before) = seen.get(&file)
            && !text.starts_with(before.as_str())
        {
            violations.push(format!(
                "{} lost lines: had {:?}, now {:?}",
                file.display(),
                before,
                text
            ));
        }
        seen.insert(file, text);
    }
    violations
}

#[test]
fn chaos_soak_keeps_every_service_whole() {
    let secs: u64 = berth_testing::env_knob("BERTH_SOAK_SECS", 25);
    let seed = berth_testing::env_seed("BERTH_SOAK_SEED");
    println!("chaos soak: {secs} s of faults, seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut services = vec![
        Service::start(29_000, "hello-world"),
        Service::start(29_400, "hello-two"),
    ];
    for s in &mut services {
        s.berth.wait_complete("deploy", Duration::from_secs(120));
        s.reserved_after_deploy = s.berth.reserved(&s.role);
    }
    let mut seen = BTreeMap::new();
    let mut violations = check_greetings(&services, &mut seen);
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let s = &mut services[rng.random_range(0..2)];
        let task = TASKS[rng.random_range(0..TASKS.len())];
        match rng.random_range(0..10) {
            0..=3 => {
                if s.berth.task_groups().contains_key(task) {
                    s.berth.kill_task(task);
                    *faults.entry("task killed").or_default() += 1;
                }
            }
            4..=5 => {
                if let Some(pid) = s.berth.executor_pid(task) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    *faults.entry("executor killed").or_default() += 1;
                }
            }
            6..=7 => {
                std::thread::sleep(Duration::from_millis(rng.random_range(0..300)));
                s.berth.kill9();
                *faults.entry("berth run killed").or_default() += 1;
                s.restart();
            }
            _ => match s.stopped.take() {
                Some(agent) => {
                    let (code, body) = s.berth.post(&format!("/v1/agents/{agent}/start"), None);
                    assert_eq!(code, 200, "start {agent}: {body}");
                    *faults.entry("agent started").or_default() += 1;
                }
                None => {
                    let agent = ["agent-a", "agent-b", "agent-c"][rng.random_range(0..3)];
                    let (code, body) = s.berth.post(&format!("/v1/agents/{agent}/stop"), None);
                    assert_eq!(code, 200, "stop {agent}: {body}");
                    s.stopped = Some(agent.to_owned());
                    *faults.entry("agent stopped").or_default() += 1;
                }
            },
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(500..2_500)));
        violations.extend(check_greetings(&services, &mut seen));
    }

    // Settle: every agent back; every plan complete; one copy of every task.
    for s in &mut services {
        if let Some(agent) = s.stopped.take() {
            let (code, body) = s.berth.post(&format!("/v1/agents/{agent}/start"), None);
            assert_eq!(code, 200, "start {agent}: {body}");
        }
    }
    for s in &services {
        s.berth.wait_complete("deploy", Duration::from_secs(180));
        s.berth.wait_complete("recovery", Duration::from_secs(180));
        s.berth
            .wait_for("every task running", Duration::from_secs(120), || {
                let ids = s.berth.task_ids();
                TASKS
                    .iter()
                    .all(|t| ids.get(*t).is_some_and(|(_, state)| state == "RUNNING"))
            });
    }
    for s in &services {
        let copies = s.berth.live_copies();
        for task in TASKS {
            let n = copies.get(task).copied().unwrap_or(0);
            if n != 1 {
                violations.push(format!("{task} runs {n} times: {copies:?}"));
            }
        }
        let reserved = s.berth.reserved(&s.role);
        if reserved != s.reserved_after_deploy {
            violations.push(format!(
                "{}: {reserved} reservations, {} after the first deploy",
                s.role, s.reserved_after_deploy
            ));
        }
    }
    violations.extend(check_greetings(&services, &mut seen));
    let injected: usize = faults.values().sum();
    println!(
        "chaos soak: {injected} faults injected in {secs} s {faults:?}; {} greetings files \
         checked; invariants violated: {}",
        seen.len(),
        violations.len()
    );
    assert!(
        violations.is_empty(),
        "invariants violated (seed {seed}):\n{}",
        violations.join("\n")
    );
    for s in &mut services {
        s.berth.stop();
    }
}
