//! Property tests: strategies and aggregation hold their promises under random histories of
//! launches, task statuses and operator commands.

use crate::support;

use berth_mesos::TaskState;
use berth_plan::{PlanCommand, Status, TaskSource, TaskTable};
use berth_spec::{Goal, PhaseStrategy, PlanStrategy, ServiceSpec};
use proptest::prelude::*;
use support::*;

/// Something that can happen to a running service.
#[derive(Debug, Clone)]
enum Action {
    /// The scheduler launches every candidate.
    Launch,
    /// A launched task (picked by number) reports a state.
    Status(usize, TaskState),
    /// An operator command on a phase (picked by number) or step.
    Command(u8, usize, usize),
    /// Time passes.
    Tick(u64),
}

fn state() -> impl Strategy<Value = TaskState> {
    prop_oneof![
        Just(TaskState::TaskStarting),
        Just(TaskState::TaskRunning),
        Just(TaskState::TaskFailed),
        Just(TaskState::TaskKilled),
        Just(TaskState::TaskLost),
        Just(TaskState::TaskFinished),
        Just(TaskState::TaskUnreachable),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => Just(Action::Launch),
        6 => (0usize..16, state()).prop_map(|(i, s)| Action::Status(i, s)),
        1 => (0u8..5, 0usize..4, 0usize..8).prop_map(|(c, p, s)| Action::Command(c, p, s)),
        1 => (0u64..120_000).prop_map(Action::Tick),
    ]
}

fn spec_with(strategy: PhaseStrategy, count: u32) -> ServiceSpec {
    let mut spec = service(vec![pod(
        "node",
        count,
        vec![task("server", Goal::Running, true)],
    )]);
    spec.plans = vec![plan(
        "deploy",
        PlanStrategy::Serial,
        vec![phase("nodes", "node", strategy, None)],
    )];
    spec
}

fn apply(d: &mut Driver, a: &Action, commands: bool) {
    match a {
        Action::Launch => {
            d.launch_all();
        }
        Action::Status(i, s) => {
            let names: Vec<String> = names(&d.tasks);
            if !names.is_empty() {
                let name = names[i % names.len()].clone();
                d.send(&name, *s);
            }
        }
        Action::Command(c, p, s) if commands => {
            let view = d.view("deploy");
            let phase = &view.phases[p % view.phases.len()];
            let step = phase
                .steps
                .get(s % phase.steps.len().max(1))
                .map(|s| s.name.clone());
            let cmd = match c {
                0 => PlanCommand::ForceComplete,
                1 => PlanCommand::Restart,
                2 => PlanCommand::Interrupt,
                3 => PlanCommand::Continue,
                _ => PlanCommand::Stop,
            };
            let step = if matches!(cmd, PlanCommand::ForceComplete | PlanCommand::Restart) {
                step
            } else {
                None
            };
            let _ = d.cmd(cmd, "deploy", Some(&phase.name.clone()), step.as_deref());
        }
        Action::Command(..) => {}
        Action::Tick(ms) => d.now += ms,
    }
}

/// Steps of the deploy plan that are working right now.
fn working(d: &Driver) -> usize {
    d.view("deploy")
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter(|s| {
            matches!(
                s.status,
                Status::Prepared | Status::Starting | Status::Started
            )
        })
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Without operator commands a serial phase never has two steps at work at once.
    #[test]
    fn serial_phase_never_runs_two_steps(count in 1u32..6, actions in proptest::collection::vec(action(), 1..60)) {
        let spec = spec_with(PhaseStrategy::Serial, count);
        let mut d = Driver::new(&spec, TaskTable::default());
        for a in &actions {
            apply(&mut d, a, false);
            prop_assert!(working(&d) <= 1, "two serial steps at work after {:?}: {:?}", a, d.statuses("deploy"));
        }
    }

    /// A canary phase launches nothing until an operator says `continue`.
    #[test]
    fn canary_starts_nothing_before_continue(
        count in 1u32..6,
        parallel in any::<bool>(),
        actions in proptest::collection::vec(action(), 1..60),
    ) {
        let strategy = if parallel { PhaseStrategy::ParallelCanary } else { PhaseStrategy::SerialCanary };
        let spec = spec_with(strategy, count);
        let mut d = Driver::new(&spec, TaskTable::default());
        for a in &actions {
            if matches!(a, Action::Command(..)) { continue; }
            apply(&mut d, a, false);
            prop_assert_eq!(d.launches, 0);
            prop_assert!(names(&d.tasks).is_empty());
        }
        let status = d.view("deploy").status;
        prop_assert_eq!(status, Status::Waiting);
    }

    /// Once complete, a plan stays complete whatever its tasks do, until someone restarts it.
    #[test]
    fn complete_plan_stays_complete(count in 1u32..5, actions in proptest::collection::vec(action(), 1..60)) {
        let spec = spec_with(PhaseStrategy::Parallel, count);
        let mut d = Driver::new(&spec, TaskTable::default());
        for _ in 0..3 { d.launch_all(); d.run_all_launched(); }
        prop_assert_eq!(d.view("deploy").status, Status::Complete);
        for a in &actions {
            apply(&mut d, a, false);
            prop_assert_eq!(d.view("deploy").status, Status::Complete);
        }
        let _ = d.cmd(PlanCommand::Restart, "deploy", None, None);
        prop_assert_ne!(d.view("deploy").status, Status::Complete);
    }

    /// Aggregation never panics and never reports ERROR without an error somewhere, under any
    /// history including operator commands; recovery never duplicates a launch that another
    /// plan is doing.
    #[test]
    fn no_spurious_errors_and_no_double_work(count in 1u32..5, actions in proptest::collection::vec(action(), 1..80)) {
        let spec = spec_with(PhaseStrategy::Serial, count);
        let mut d = Driver::new(&spec, TaskTable::default());
        for a in &actions {
            apply(&mut d, a, true);
            for name in ["deploy", "recovery"] {
                let v = d.view(name);
                prop_assert_ne!(v.status, Status::Error, "{} ERROR after {:?}", name, a);
            }
            let cands = d.set.candidates(&d.tasks, &mut d.ids, d.now);
            for (i, c) in cands.iter().enumerate() {
                for o in &cands[i + 1..] {
                    if let (Some(a), Some(b)) = (c.work().launch(), o.work().launch()) {
                        prop_assert!(!a.conflicts_with(b), "two candidates on one pod: {:?} {:?}", c, o);
                    }
                }
            }
        }
        let _ = d.tasks.task("node-0-server");
    }
}
