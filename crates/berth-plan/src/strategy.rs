//! Strategies: which children of a plan or phase may be worked on now.
//!
//! A strategy is a pure function of the children's statuses and flags. The canary variants
//! also read which steps were held back as canaries when the phase was created.

use crate::element::Strategy;
use crate::status::Status;

/// Whether a child is a canary step, and whether an operator released it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canary {
    /// Not a canary.
    No,
    /// A canary still held back (waits for `continue`).
    Held,
    /// A canary an operator released.
    Released,
}

/// What a strategy needs to know about one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    /// The child's status (display status for steps, aggregate for phases).
    pub status: Status,
    /// Whether the child may be worked on at all: not complete, no errors, not interrupted,
    /// and (for steps) no dirty-asset conflict.
    pub eligible: bool,
    /// Canary role of the child.
    pub canary: Canary,
}

/// Indexes of the children to work on now, in order.
///
/// - `serial`: the first child that is not complete, if it is eligible. (berth does not
///   freeze the order at the first query: a step restarted after later steps completed
///   runs again before anything behind it starts.)
/// - `parallel`: every eligible child.
/// - `dependency`: every eligible child whose dependencies are all complete.
/// - canary variants: while a canary is held back, only the released canaries that are not
///   complete (one at a time for serial-canary); once none is held back, the underlying
///   strategy.
#[must_use]
pub fn candidates(strategy: &Strategy, children: &[Child]) -> Vec<usize> {
    match strategy {
        Strategy::Serial => serial(children),
        Strategy::Parallel => parallel(children),
        Strategy::Dependency(deps) => children
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.eligible
                    && deps
                        .get(*i)
                        .is_none_or(|d| d.iter().all(|j| children.get(*j).is_none_or(is_complete)))
            })
            .map(|(i, _)| i)
            .collect(),
        Strategy::Canary(inner) if children.iter().any(|c| c.canary == Canary::Held) => {
            let mut released = children
                .iter()
                .enumerate()
                .filter(|(_, c)| c.canary == Canary::Released && !is_complete(c));
            if **inner == Strategy::Serial {
                released
                    .next()
                    .filter(|(_, c)| c.eligible)
                    .map(|(i, _)| i)
                    .into_iter()
                    .collect()
            } else {
                released
                    .filter(|(_, c)| c.eligible)
                    .map(|(i, _)| i)
                    .collect()
            }
        }
        Strategy::Canary(inner) => candidates(inner, children),
    }
}

fn is_complete(c: &Child) -> bool {
    matches!(c.status, Status::Complete | Status::Paused)
}

fn serial(children: &[Child]) -> Vec<usize> {
    children
        .iter()
        .position(|c| !is_complete(c))
        .filter(|i| children[*i].eligible)
        .into_iter()
        .collect()
}

fn parallel(children: &[Child]) -> Vec<usize> {
    children
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eligible)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(status: Status) -> Child {
        Child {
            status,
            eligible: !matches!(status, Status::Complete | Status::Error | Status::Waiting),
            canary: Canary::No,
        }
    }

    fn held() -> Child {
        Child {
            status: Status::Waiting,
            eligible: false,
            canary: Canary::Held,
        }
    }

    fn released(status: Status) -> Child {
        Child {
            canary: Canary::Released,
            ..child(status)
        }
    }

    #[test]
    fn serial_takes_the_first_incomplete() {
        let c = [
            child(Status::Complete),
            child(Status::Pending),
            child(Status::Pending),
        ];
        assert_eq!(candidates(&Strategy::Serial, &c), vec![1]);
    }

    #[test]
    fn serial_blocks_behind_an_ineligible_child() {
        let mut c = [child(Status::Pending), child(Status::Pending)];
        c[0].eligible = false;
        assert!(candidates(&Strategy::Serial, &c).is_empty());
    }

    #[test]
    fn parallel_takes_all_eligible() {
        let c = [
            child(Status::Pending),
            child(Status::Complete),
            child(Status::Starting),
        ];
        assert_eq!(candidates(&Strategy::Parallel, &c), vec![0, 2]);
    }

    #[test]
    fn dependency_waits_for_dependencies() {
        let c = [
            child(Status::Starting),
            child(Status::Pending),
            child(Status::Pending),
        ];
        let s = Strategy::Dependency(vec![vec![], vec![0], vec![]]);
        assert_eq!(candidates(&s, &c), vec![0, 2]);
    }

    #[test]
    fn canary_holds_everything_until_released() {
        let c = [
            held(),
            held(),
            child(Status::Pending),
            child(Status::Pending),
        ];
        assert!(candidates(&Strategy::Canary(Box::new(Strategy::Serial)), &c).is_empty());
        assert!(candidates(&Strategy::Canary(Box::new(Strategy::Parallel)), &c).is_empty());
    }

    #[test]
    fn first_release_runs_only_the_first_canary() {
        let c = [
            released(Status::Pending),
            held(),
            child(Status::Pending),
            child(Status::Pending),
        ];
        assert_eq!(
            candidates(&Strategy::Canary(Box::new(Strategy::Serial)), &c),
            vec![0]
        );
        assert_eq!(
            candidates(&Strategy::Canary(Box::new(Strategy::Parallel)), &c),
            vec![0]
        );
    }

    #[test]
    fn second_release_lets_the_underlying_strategy_run() {
        let c = [
            released(Status::Complete),
            released(Status::Pending),
            child(Status::Pending),
            child(Status::Pending),
        ];
        assert_eq!(
            candidates(&Strategy::Canary(Box::new(Strategy::Serial)), &c),
            vec![1]
        );
        assert_eq!(
            candidates(&Strategy::Canary(Box::new(Strategy::Parallel)), &c),
            vec![1, 2, 3]
        );
    }
}
