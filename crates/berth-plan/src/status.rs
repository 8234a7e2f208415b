//! Statuses of plans, phases and steps, and how a parent's status follows from its children.

use serde::{Deserialize, Serialize};

/// Status of a plan element.
///
/// Steps are `PENDING`, `PREPARED`, `STARTING`, `STARTED`, `COMPLETE`, `ERROR` or `DELAYED`;
/// `WAITING` and `IN_PROGRESS` only appear as aggregates (or on interrupted steps), and
/// `PAUSING`/`PAUSED` only on steps whose tasks are being paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// The element could not be built, or its configuration is invalid.
    Error,
    /// The element (or a child) is interrupted and waits for `continue`.
    Waiting,
    /// Waiting for offers / work.
    Pending,
    /// Evaluated against offers without a match yet, or a kill was issued.
    Prepared,
    /// Launch sent, waiting for the task to run.
    Starting,
    /// Task running but not ready yet (or a FINISH/ONCE task still running).
    Started,
    /// Goal reached.
    Complete,
    /// In launch back-off after failures.
    Delayed,
    /// Some children done, some in progress (aggregate only).
    InProgress,
    /// Step running while its tasks are being paused (display only).
    Pausing,
    /// Step's tasks are all paused (display only).
    Paused,
}

impl Status {
    /// The wire name (`IN_PROGRESS`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Error => "ERROR",
            Status::Waiting => "WAITING",
            Status::Pending => "PENDING",
            Status::Prepared => "PREPARED",
            Status::Starting => "STARTING",
            Status::Started => "STARTED",
            Status::Complete => "COMPLETE",
            Status::Delayed => "DELAYED",
            Status::InProgress => "IN_PROGRESS",
            Status::Pausing => "PAUSING",
            Status::Paused => "PAUSED",
        }
    }

    /// Whether work is under way (`PREPARED`, `STARTING`, `STARTED`, `IN_PROGRESS`).
    #[must_use]
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Status::Prepared | Status::Starting | Status::Started | Status::InProgress
        )
    }

    /// Rank for "least advanced wins": a lower rank is less advanced.
    /// ERROR < DELAYED < PENDING < PREPARED < STARTING < STARTED < COMPLETE.
    #[must_use]
    pub fn progress_rank(self) -> u8 {
        match self {
            Status::Error => 0,
            Status::Delayed => 1,
            Status::Pending | Status::Waiting => 2,
            Status::Prepared => 3,
            Status::Starting => 4,
            Status::Started | Status::InProgress | Status::Pausing => 5,
            Status::Complete | Status::Paused => 6,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The least advanced of `statuses` (COMPLETE only if all are COMPLETE); `None` when empty.
#[must_use]
pub fn least_advanced(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
    statuses.into_iter().min_by_key(|s| s.progress_rank())
}

/// Aggregate status of a plan or phase.
///
/// `children` are the statuses of all children, `candidates` those of the children the
/// strategy would work on now; `has_errors` tells whether the parent itself has errors and
/// `interrupted` whether it is interrupted. The first matching rule wins:
///
/// 1. any error on the parent or any child ERROR → ERROR
/// 2. all children COMPLETE (or no children) → COMPLETE
/// 3. parent interrupted → WAITING
/// 4. all candidates and all children DELAYED → DELAYED
/// 5. any child PREPARED → IN_PROGRESS
/// 6. any candidate WAITING → WAITING
/// 7. any candidate IN_PROGRESS → IN_PROGRESS
/// 8. some child COMPLETE and some candidate PENDING/STARTING/STARTED → IN_PROGRESS
/// 9. any candidate PENDING → PENDING
/// 10. any child WAITING → WAITING
/// 11. any candidate STARTING → STARTING; any candidate STARTED → STARTED
/// 12. otherwise ERROR (should not happen)
#[must_use]
pub fn aggregate(
    children: &[Status],
    candidates: &[Status],
    has_errors: bool,
    interrupted: bool,
) -> Status {
    let any = |list: &[Status], s: Status| list.contains(&s);
    let child_complete = |s: &Status| matches!(s, Status::Complete | Status::Paused);
    if has_errors || any(children, Status::Error) {
        return Status::Error;
    }
    if children.iter().all(child_complete) {
        return Status::Complete;
    }
    if interrupted {
        return Status::Waiting;
    }
    if !candidates.is_empty()
        && candidates.iter().all(|s| *s == Status::Delayed)
        && children
            .iter()
            .all(|s| *s == Status::Delayed || child_complete(s))
    {
        return Status::Delayed;
    }
    if any(children, Status::Prepared) {
        return Status::InProgress;
    }
    if any(candidates, Status::Waiting) {
        return Status::Waiting;
    }
    if candidates
        .iter()
        .any(|s| matches!(s, Status::InProgress | Status::Pausing))
    {
        return Status::InProgress;
    }
    if children.iter().any(child_complete)
        && candidates
            .iter()
            .any(|s| matches!(s, Status::Pending | Status::Starting | Status::Started))
    {
        return Status::InProgress;
    }
    if any(candidates, Status::Pending) {
        return Status::Pending;
    }
    if any(children, Status::Waiting) {
        return Status::Waiting;
    }
    if any(candidates, Status::Starting) {
        return Status::Starting;
    }
    if any(candidates, Status::Started) {
        return Status::Started;
    }
    // The work that would run next is in back-off (e.g. a serial plan blocked on a delayed
    // phase), or every child is delayed or done: the element waits for a back-off to expire.
    if !candidates.is_empty() && candidates.iter().all(|s| *s == Status::Delayed) {
        return Status::Delayed;
    }
    if children
        .iter()
        .all(|s| *s == Status::Delayed || child_complete(s))
    {
        return Status::Delayed;
    }
    // Children in progress that the strategy does not offer as candidates (e.g. a serial phase
    // whose running step waits on its tasks) are in progress.
    if children.iter().any(|s| {
        matches!(
            s,
            Status::Starting | Status::Started | Status::InProgress | Status::Pausing
        )
    }) {
        return Status::InProgress;
    }
    if children
        .iter()
        .any(|s| matches!(s, Status::Pending | Status::Delayed))
    {
        return Status::Pending;
    }
    Status::Error
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn errors_win() {
        assert_eq!(aggregate(&[Complete, Error], &[], false, false), Error);
        assert_eq!(aggregate(&[Complete], &[], true, false), Error);
    }

    #[test]
    fn all_complete_is_complete_even_when_interrupted() {
        assert_eq!(aggregate(&[Complete, Complete], &[], false, true), Complete);
        assert_eq!(aggregate(&[], &[], false, false), Complete);
    }

    #[test]
    fn interrupted_parent_waits() {
        assert_eq!(aggregate(&[Pending, Complete], &[], false, true), Waiting);
    }

    #[test]
    fn all_delayed() {
        assert_eq!(
            aggregate(&[Delayed, Delayed], &[Delayed], false, false),
            Delayed
        );
    }

    #[test]
    fn prepared_child_is_in_progress() {
        assert_eq!(
            aggregate(&[Prepared, Pending], &[Pending], false, false),
            InProgress
        );
    }

    #[test]
    fn mix_of_complete_and_pending_is_in_progress() {
        assert_eq!(
            aggregate(&[Complete, Pending], &[Pending], false, false),
            InProgress
        );
    }

    #[test]
    fn pending_candidates() {
        assert_eq!(
            aggregate(&[Pending, Pending], &[Pending], false, false),
            Pending
        );
    }

    #[test]
    fn waiting_child_without_candidates() {
        assert_eq!(aggregate(&[Waiting, Pending], &[], false, false), Waiting);
    }

    #[test]
    fn starting_and_started() {
        assert_eq!(
            aggregate(&[Starting, Pending], &[Starting], false, false),
            Starting
        );
        assert_eq!(
            aggregate(&[Started, Pending], &[Started], false, false),
            Started
        );
    }

    #[test]
    fn least_advanced_orders_statuses() {
        assert_eq!(
            least_advanced([Complete, Starting, Started]),
            Some(Starting)
        );
        assert_eq!(least_advanced([Complete, Delayed, Pending]), Some(Delayed));
        assert_eq!(least_advanced([Complete, Complete]), Some(Complete));
        assert_eq!(least_advanced([]), None);
    }
}
