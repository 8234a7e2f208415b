//! What an offer leaves free once an accepted set of operations took its share.
//!
//! The agent offers its remaining resources again only later (and not at all while offers
//! are suppressed); an update preview places new pods against the last known free
//! resources of each agent, so the scheduler keeps this remainder instead of forgetting the
//! agent.
//!
//! ```text
//! offer ── RESERVE: the reserved amounts leave the unreserved scalars and port ranges
//!       ── LAUNCH_GROUP: reserved resources the executor and tasks use (by resource id) leave
//!       ── what is left (scalars above zero, non-empty ranges) = the remainder
//! ```

use berth_mesos::{Offer, Operation, Resource};

use crate::pool::{from_milli, to_milli, unreserved_role};
use crate::ranges;

/// `offer` without what `operations` (accepted on it) reserve or use.
#[must_use]
pub fn remainder(offer: &Offer, operations: &[Operation]) -> Offer {
    let mut left = offer.clone();
    for op in operations {
        match op {
            Operation::Reserve { reserve } => {
                for r in &reserve.resources {
                    take_unreserved(&mut left.resources, r);
                }
            }
            Operation::LaunchGroup { launch_group } => {
                let used = launch_group
                    .executor
                    .resources
                    .iter()
                    .chain(
                        launch_group
                            .task_group
                            .tasks
                            .iter()
                            .flat_map(|t| t.resources.iter()),
                    )
                    .filter_map(Resource::resource_id);
                for id in used {
                    left.resources.retain(|r| r.resource_id() != Some(id));
                }
            }
            Operation::Unreserve { .. } | Operation::Create { .. } | Operation::Destroy { .. } => {}
        }
    }
    left
}

/// Takes what `reserved` claims out of the first unreserved resource of its name that holds
/// it (dropping that resource once nothing is left of it).
fn take_unreserved(resources: &mut Vec<Resource>, reserved: &Resource) {
    let Some(i) = resources.iter().position(|r| {
        r.name == reserved.name && unreserved_role(r).is_some() && holds(r, reserved)
    }) else {
        return;
    };
    let source = &mut resources[i];
    let empty = if let (Some(have), Some(want)) = (&mut source.scalar, &reserved.scalar) {
        let milli = to_milli(have.value).saturating_sub(to_milli(want.value));
        have.value = from_milli(milli);
        milli == 0
    } else if let (Some(have), Some(want)) = (&mut source.ranges, &reserved.ranges) {
        for r in &want.range {
            ranges::subtract(&mut have.range, r.begin, r.end);
        }
        have.range.is_empty()
    } else {
        false
    };
    if empty {
        resources.remove(i);
    }
}

/// Whether `source` has room for all of `reserved`.
fn holds(source: &Resource, reserved: &Resource) -> bool {
    match (
        &source.scalar,
        &reserved.scalar,
        &source.ranges,
        &reserved.ranges,
    ) {
        (Some(have), Some(want), _, _) => to_milli(have.value) >= to_milli(want.value),
        (_, _, Some(have), Some(want)) => want
            .range
            .iter()
            .all(|r| ranges::contains_all(&have.range, r.begin, r.end)),
        _ => false,
    }
}
