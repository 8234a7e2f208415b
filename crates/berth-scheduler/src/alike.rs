//! Launch steps that an offer judges alike, so that one of them evaluates the offers of a
//! cycle for all of them.
//!
//! Fresh pod instances (nothing stored for any task of the instance) of one pod type that
//! launch the same tasks, with the same configuration and recovery type and no plan
//! parameters, are evaluated from the same inputs: the pod's requirements, the offer, and the
//! placement of *other* instances (never the instance's own index). An offer that refuses
//! one of them refuses all. So, in an offer cycle, the first of such a group evaluates the
//! offers; once it found none that fits, the others are not evaluated against them (their
//! why-waiting summary says whose evaluation stands for them). A service with 20,000 pods
//! that fit nowhere then costs one evaluation per offer, not 20,000. A launch changes what is
//! free and where instances are: every group is judged afresh after one.

use std::collections::HashMap;

use berth_plan::{Candidate, ElementId, RecoveryType, Status, Work};

/// The candidate steps of an offer cycle with their groups.
#[derive(Debug, Default)]
pub(crate) struct Candidates {
    /// The candidates, in priority order.
    pub list: Vec<Candidate>,
    /// The group of each candidate (an index below `groups`), `None` when it is judged alone.
    pub group: Vec<Option<usize>>,
    /// How many groups.
    pub groups: usize,
    /// Since when task statuses may have changed what the plans offer (see
    /// [`Self::is_due`]).
    pub stale_since: Option<berth_plan::Millis>,
    /// Whether some candidate may still launch.
    pub launchable: bool,
    /// Whether some plan has unreserve steps (they wait for reservations to go).
    pub unreserving: bool,
    /// Whether the list holds every unfinished step of the runnable plans: then statuses
    /// of starting or running tasks cannot add candidates, and do not make these stale.
    pub covering: bool,
}

/// How long candidates may serve after statuses of starting or running tasks came in, while
/// some of them may still launch: such a status never makes a waiting candidate unfit (it
/// reports on launched tasks), it only makes more steps fit — those wait this long at most.
/// (A task that ended drops the candidates: recovery and back-off change what may launch.)
pub(crate) const STALE_MS: berth_plan::Millis = 250;

/// What makes launch steps alike.
#[derive(Hash, PartialEq, Eq)]
struct Key<'a> {
    pod_type: &'a str,
    tasks: &'a [String],
    config_id: Option<&'a str>,
    recovery: RecoveryType,
}

impl Candidates {
    /// Groups `list`; `fresh` says whether a launch step's pod instance has nothing stored.
    pub(crate) fn new(
        list: Vec<Candidate>,
        fresh: impl Fn(&berth_plan::PodLaunch) -> bool,
    ) -> Self {
        let mut ids: HashMap<Key<'_>, usize> = HashMap::new();
        let mut group = Vec::with_capacity(list.len());
        for cand in &list {
            // Only steps that wait for offers are judged against them (the others are at
            // work already): only they need a group.
            let waits = matches!(cand.status, Status::Pending | Status::Prepared);
            let id = match cand.work() {
                Work::Launch(l) if waits && cand.parameters.is_empty() && fresh(l) => {
                    let next = ids.len();
                    Some(
                        *ids.entry(Key {
                            pod_type: &l.pod_type,
                            tasks: &l.tasks,
                            config_id: l.config_id.as_deref(),
                            recovery: l.recovery,
                        })
                        .or_insert(next),
                    )
                }
                _ => None,
            };
            group.push(id);
        }
        let groups = ids.len();
        Self {
            list,
            group,
            groups,
            stale_since: None,
            launchable: true,
            unreserving: true,
            covering: false,
        }
    }

    /// Statuses of starting or running tasks came in at `now`.
    pub(crate) fn statuses_changed(&mut self, now: berth_plan::Millis) {
        if !self.covering {
            self.stale_since.get_or_insert(now);
        }
    }

    /// Whether the plans must be walked again: statuses came in and nothing cached may
    /// launch any more, or they came in [`STALE_MS`] ago.
    pub(crate) fn is_due(&self, now: berth_plan::Millis) -> bool {
        self.stale_since
            .is_some_and(|since| !self.launchable || now.saturating_sub(since) >= STALE_MS)
    }

    /// The step id of every grouped candidate with its group, and each group's size.
    pub(crate) fn members(&self) -> (HashMap<ElementId, usize>, Vec<usize>) {
        let mut sizes = vec![0; self.groups];
        let members = self
            .list
            .iter()
            .zip(&self.group)
            .filter_map(|(c, g)| {
                let g = (*g)?;
                sizes[g] += 1;
                Some((c.step_id().clone(), g))
            })
            .collect();
        (members, sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_plan::{Phase, Plan, PodLaunch, Step, Strategy};

    fn cand(id: &str, pod_type: &str, index: u32, tasks: &[&str]) -> Candidate {
        let step = Step::new(
            ElementId(id.to_owned()),
            format!("{pod_type}-{index}"),
            Work::Launch(PodLaunch {
                pod_type: pod_type.to_owned(),
                index,
                tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
                recovery: RecoveryType::None,
                config_id: None,
            }),
        );
        let plan = Plan {
            id: ElementId("plan".to_owned()),
            name: "deploy".to_owned(),
            strategy: Strategy::Parallel,
            phases: vec![Phase {
                id: ElementId("phase".to_owned()),
                name: "p".to_owned(),
                strategy: Strategy::Parallel,
                steps: vec![step],
            }],
        };
        Candidate::new(std::sync::Arc::new(plan), 0, 0, Status::Pending)
            .unwrap_or_else(|| panic!("the plan has its step"))
    }

    #[test]
    fn fresh_instances_of_one_pod_type_and_tasks_are_grouped() {
        let mut with_parameters = cand("e", "node", 4, &["server"]);
        with_parameters
            .parameters
            .insert("A".to_owned(), "1".to_owned());
        let list = vec![
            cand("a", "node", 0, &["server"]),
            cand("b", "node", 1, &["server"]),
            cand("c", "node", 2, &["server", "sidecar"]),
            cand("d", "node", 3, &["server"]),
            with_parameters,
            cand("f", "web", 0, &["server"]),
            cand("g", "node", 5, &["server"]),
        ];
        // Instance 3 has something stored: judged alone.
        let c = Candidates::new(list, |l| l.index != 3);
        assert_eq!(
            c.group,
            vec![Some(0), Some(0), Some(1), None, None, Some(2), Some(0)]
        );
        assert_eq!(c.groups, 3);
        let (members, sizes) = c.members();
        assert_eq!(sizes, vec![3, 1, 1]);
        assert_eq!(members[&ElementId("g".to_owned())], 0);
        assert!(!members.contains_key(&ElementId("d".to_owned())));
    }
}
