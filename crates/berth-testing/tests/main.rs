//! The integration tests of berth-testing, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod chaos;
mod config_update;
mod day2;
mod deploy;
mod early_submit;
mod faults;
mod hold;
mod runner;
mod uninstall;

/// The JSON body of a reply (a plan's view included); panics on any other body.
fn json(reply: berth_scheduler::Reply) -> serde_json::Value {
    let body = format!("{:?}", reply.body);
    reply
        .body
        .into_json()
        .unwrap_or_else(|| panic!("not JSON: {body}"))
}

/// The service of a `svc.yml` text (no options, no files); panics when it does not load.
fn spec(yaml: &str) -> berth_spec::ServiceSpec {
    berth_spec::load_spec(&berth_spec::SpecInput {
        file_name: "svc.yml",
        template: yaml,
        env: &berth_spec::Env::default(),
        files: &berth_spec::NoFiles,
    })
    .unwrap_or_else(|e| panic!("{e}"))
    .spec
}

/// A service of `count` small pods of one type, all deployed at once.
fn parallel_pods(name: &str, count: usize) -> berth_spec::ServiceSpec {
    small_pods(name, count, None, "parallel")
}

/// A service of `count` small pods of one type (`node`, task `server`), with a placement rule
/// if given, deployed by a phase of `strategy`.
fn small_pods(
    name: &str,
    count: usize,
    placement: Option<&str>,
    strategy: &str,
) -> berth_spec::ServiceSpec {
    let placement = placement.map_or(String::new(), |p| format!("\n    placement: '{p}'"));
    spec(&format!(
        r"
name: {name}
pods:
  node:
    count: {count}{placement}
    tasks:
      server:
        goal: RUNNING
        cmd: ./server
        cpus: 0.1
        memory: 32
plans:
  deploy:
    strategy: serial
    phases:
      nodes:
        pod: node
        strategy: {strategy}
"
    ))
}

/// How [`rounds_with_a_crash`] crashes.
#[derive(Clone, Copy)]
enum Crash {
    /// Between the store commit and the send.
    AfterCommit,
    /// Before the writes were durable.
    BeforeFlush,
    /// After the commit on even ticks, before it on odd ones.
    Alternating,
}

/// Offer rounds until the plan `deploy` is complete (at most `rounds`, `advance_ms` of
/// simulated time apart), every event delivered on its own (a tick); the `crash_at`-th tick
/// is a crash of the scheduler instead, and a restart.
fn rounds_with_a_crash(
    sim: &mut berth_testing::Simulation,
    rounds: usize,
    advance_ms: u64,
    crash_at: usize,
    crash: Crash,
) {
    let mut tick = 0;
    for _ in 0..rounds {
        if sim.plan_status("deploy") == Some(berth_plan::Status::Complete) {
            break;
        }
        sim.cluster.set_now(sim.now);
        sim.cluster.offer_round();
        loop {
            tick += 1;
            let progressed = if tick == crash_at {
                match crash {
                    Crash::AfterCommit => sim.crash_after_commit(),
                    Crash::BeforeFlush => sim.crash_before_flush(),
                    Crash::Alternating if tick % 2 == 0 => sim.crash_after_commit(),
                    Crash::Alternating => sim.crash_before_flush(),
                }
            } else {
                sim.step_one()
            }
            .unwrap();
            if !progressed {
                break;
            }
        }
        sim.advance(advance_ms).unwrap();
    }
}
