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
}

impl Default for BackoffPolicy {
    /// Off; when turned on: 60 s, ×1.15, at most 300 s.
    fn default() -> Self {
        Self {
            enabled: false,
            initial_ms: 60_000,
            factor: 1.15,
            max_ms: 300_000,
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
}

impl Backoff {
    /// No task delayed yet.
    #[must_use]
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            tasks: HashMap::new(),
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
            return None;
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
        }
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
