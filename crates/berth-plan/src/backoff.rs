//! Launch back-off: failing tasks wait longer and longer before they are relaunched.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch: the planner's clock, always passed in.
pub type Millis = u64;

/// Back-off settings (`ENABLE_BACKOFF`, `FRAMEWORK_INITIAL_BACKOFF`,
/// `FRAMEWORK_BACKOFF_FACTOR`, `FRAMEWORK_MAX_LAUNCH_DELAY`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BackoffPolicy {
    /// Whether failures delay relaunches at all.
    pub enabled: bool,
    /// Delay after the first failure, in ms.
    pub initial_ms: u64,
    /// Factor applied to the delay after each further failure.
    pub factor: f64,
    /// Largest delay, in ms.
    pub max_ms: u64,
    /// Shortest time between two launches of one task, in ms, also with back-off off: a
    /// task that fails at once is not relaunched in a tight loop (`MIN_RELAUNCH_INTERVAL_MS`).
    #[serde(default = "default_min_relaunch_ms")]
    pub min_relaunch_ms: u64,
}

fn default_min_relaunch_ms() -> u64 {
    1_000
}

impl Default for BackoffPolicy {
    /// Off; when turned on: 60 s, ×1.15, at most 300 s.
    fn default() -> Self {
        Self {
            enabled: false,
            initial_ms: 60_000,
            factor: 1.15,
            max_ms: 300_000,
            min_relaunch_ms: default_min_relaunch_ms(),
        }
    }
}

/// Back-off state of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TaskBackoff {
    delay_ms: u64,
    until: Millis,
}

/// Back-off state of all tasks.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    policy: BackoffPolicy,
    tasks: HashMap<String, TaskBackoff>,
    /// When each task was last launched.
    launched: HashMap<String, Millis>,
}

impl Backoff {
    /// No task delayed yet.
    #[must_use]
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            tasks: HashMap::new(),
            launched: HashMap::new(),
        }
    }

    /// When `task` was last launched, if it was.
    #[must_use]
    pub fn launched_at(&self, task: &str) -> Option<Millis> {
        self.launched.get(task).copied()
    }

    /// Records a launch of `task` at `now` (for the shortest relaunch interval).
    pub fn on_launch(&mut self, task: &str, now: Millis) {
        if let Some(at) = self.launched.get_mut(task) {
            *at = now;
        } else {
            self.launched.insert(task.to_owned(), now);
        }
    }

    /// The settings.
    #[must_use]
    pub fn policy(&self) -> BackoffPolicy {
        self.policy
    }

    /// Records a failure of `task` at `now`; returns the time until which it is delayed.
    pub fn on_failure(&mut self, task: &str, now: Millis) -> Option<Millis> {
        if !self.policy.enabled {
            // No back-off, but never more than one launch per interval.
            let until = self
                .launched
                .get(task)?
                .saturating_add(self.policy.min_relaunch_ms);
            if now >= until {
                return None;
            }
            self.tasks
                .insert(task.to_owned(), TaskBackoff { delay_ms: 0, until });
            return Some(until);
        }
        let delay_ms = match self.tasks.get(task) {
            None => self.policy.initial_ms,
            Some(b) => {
                let next = (b.delay_ms as f64 * self.policy.factor).round();
                if next.is_finite() && next >= 0.0 {
                    (next as u64).min(self.policy.max_ms)
                } else {
                    self.policy.max_ms
                }
            }
        }
        .min(self.policy.max_ms);
        let until = now.saturating_add(delay_ms);
        self.tasks
            .insert(task.to_owned(), TaskBackoff { delay_ms, until });
        Some(until)
    }

    /// Forgets `task`'s back-off (it ran fine, was replaced, restarted or its agent drained).
    pub fn clear(&mut self, task: &str) {
        self.tasks.remove(task);
    }

    /// Whether `task` may not be launched yet at `now`.
    #[must_use]
    pub fn is_delayed(&self, task: &str, now: Millis) -> bool {
        self.tasks.get(task).is_some_and(|b| now < b.until)
    }

    /// Until when `task` is delayed, if it is at `now`.
    #[must_use]
    pub fn delayed_until(&self, task: &str, now: Millis) -> Option<Millis> {
        self.tasks
            .get(task)
            .filter(|b| now < b.until)
            .map(|b| b.until)
    }

    /// The earliest time a current delay ends (so the caller can wake up then).
    #[must_use]
    pub fn next_expiry(&self, now: Millis) -> Option<Millis> {
        self.tasks
            .values()
            .map(|b| b.until)
            .filter(|u| *u > now)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> BackoffPolicy {
        BackoffPolicy {
            enabled: true,
            initial_ms: 1000,
            factor: 2.0,
            max_ms: 3000,
            min_relaunch_ms: 1_000,
        }
    }

    #[test]
    fn without_back_off_a_task_is_relaunched_at_most_once_per_interval() {
        let mut b = Backoff::new(BackoffPolicy::default());
        // Never launched (e.g. adopted after a restart): no delay.
        assert_eq!(b.on_failure("t", 500), None);
        b.on_launch("t", 1_000);
        // Failed at once: held until a second after its launch.
        assert_eq!(b.on_failure("t", 1_100), Some(2_000));
        assert!(b.is_delayed("t", 1_999));
        assert!(!b.is_delayed("t", 2_000));
        b.on_launch("t", 2_000);
        // Ran for a while: relaunched at once.
        assert_eq!(b.on_failure("t", 9_000), None);
        assert!(!b.is_delayed("t", 9_000));
        let off = BackoffPolicy {
            min_relaunch_ms: 0,
            ..BackoffPolicy::default()
        };
        let mut b = Backoff::new(off);
        b.on_launch("t", 1_000);
        assert_eq!(b.on_failure("t", 1_000), None);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let mut b = Backoff::new(on());
        assert_eq!(b.on_failure("t", 0), Some(1000));
        assert_eq!(b.on_failure("t", 1000), Some(3000));
        assert_eq!(b.on_failure("t", 3000), Some(6000));
        assert!(b.is_delayed("t", 5999));
        assert!(!b.is_delayed("t", 6000));
    }

    #[test]
    fn disabled_never_delays() {
        let mut b = Backoff::new(BackoffPolicy::default());
        assert_eq!(b.on_failure("t", 0), None);
        assert!(!b.is_delayed("t", 0));
    }

    #[test]
    fn clear_forgets() {
        let mut b = Backoff::new(on());
        b.on_failure("t", 0);
        b.clear("t");
        assert!(!b.is_delayed("t", 1));
        assert_eq!(b.on_failure("t", 10), Some(1010));
    }
}
