//! The decommission plan: removing pod instances the spec no longer has.
//!
//! A stored task is decommissioned when its pod type is gone from the spec or its index is
//! at or above the pod's count. Each such pod instance gets one serial phase `<pod>-<index>`:
//!
//! ```text
//! kill-<task>…  →  unreserve-<resource_id>…  →  erase-<task>…
//! ```
//!
//! Phases are ordered pod types in reverse spec order (types unknown to the spec first,
//! alphabetically), then indexes descending, so the newest instances go first.

use std::collections::{BTreeMap, BTreeSet};

use berth_spec::ServiceSpec;

use crate::element::{Phase, Plan, Step, Strategy, Work};
use crate::generate::new_id;
use crate::ids::IdGenerator;
use crate::task::{TaskRecord, TaskSource};

/// Name of the decommission plan.
pub const DECOMMISSION: &str = "decommission";

/// Task names and reservation ids of one pod instance to remove.
type Doomed = (Vec<String>, BTreeSet<String>);

/// The decommission plan, or `None` when nothing is to be decommissioned.
pub fn decommission_plan(
    spec: &ServiceSpec,
    tasks: &dyn TaskSource,
    ids: &mut dyn IdGenerator,
) -> Option<Plan> {
    let mut doomed: BTreeMap<(String, u32), Doomed> = BTreeMap::new();
    tasks.for_each_task(&mut |t: TaskRecord<'_>| {
        let (Some(pod_type), Some(index)) = (t.pod_type(), t.index()) else {
            return;
        };
        let keep = spec.pod(pod_type).is_some_and(|p| index < p.count);
        if keep {
            return;
        }
        let entry = doomed.entry((pod_type.to_owned(), index)).or_default();
        entry.0.push(t.name().to_owned());
        let executor_resources = t.info.executor.iter().flat_map(|e| e.resources.iter());
        for r in t.info.resources.iter().chain(executor_resources) {
            if let Some(id) = r.resource_id() {
                entry.1.insert(id.to_owned());
            }
        }
    });
    if doomed.is_empty() {
        return None;
    }
    let spec_rank = |pod_type: &str| {
        spec.pod_specs
            .iter()
            .position(|p| p.pod_type == pod_type)
            .map_or(0, |i| spec.pod_specs.len() - i)
    };
    let mut instances: Vec<((String, u32), Doomed)> = doomed.into_iter().collect();
    // Unknown types (rank 0) first alphabetically, then reverse spec order; indexes descending.
    instances.sort_by(|((ta, ia), _), ((tb, ib), _)| {
        spec_rank(ta)
            .cmp(&spec_rank(tb))
            .then_with(|| ta.cmp(tb))
            .then_with(|| ib.cmp(ia))
    });
    let phases = instances
        .into_iter()
        .map(|((pod_type, index), (task_names, resource_ids))| {
            let mut steps = Vec::new();
            for task in &task_names {
                steps.push(Step::new(
                    new_id(ids),
                    format!("kill-{task}"),
                    Work::Kill { task: task.clone() },
                ));
            }
            for resource_id in resource_ids {
                steps.push(Step::new(
                    new_id(ids),
                    format!("unreserve-{resource_id}"),
                    Work::Unreserve { resource_id },
                ));
            }
            for task in task_names {
                steps.push(Step::new(
                    new_id(ids),
                    format!("erase-{task}"),
                    Work::Erase { task },
                ));
            }
            Phase {
                id: new_id(ids),
                name: format!("{pod_type}-{index}"),
                strategy: Strategy::Serial,
                steps,
            }
        })
        .collect();
    Some(Plan {
        id: new_id(ids),
        name: DECOMMISSION.to_owned(),
        strategy: Strategy::Serial,
        phases,
    })
}
