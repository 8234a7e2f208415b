//! A task's `health-check` and `readiness-check`.

use super::Converter;
use super::fields::Fields;
use super::values::{U32_MAX, to_u32};
use crate::model::{HealthCheckSpec, ReadinessCheckSpec};

/// Keys of `health-check`.
const HEALTH_KEYS: &[&str] = &[
    "cmd",
    "interval",
    "grace-period",
    "max-consecutive-failures",
    "delay",
    "timeout",
];
/// Keys of `readiness-check`.
const READINESS_KEYS: &[&str] = &["cmd", "interval", "timeout", "delay"];

impl Converter<'_> {
    /// A task's `health-check` (every field required).
    pub(super) fn health_check(&mut self, task: &Fields<'_>) -> Option<HealthCheckSpec> {
        let hf = self.sub_fields(task, "health-check", HEALTH_KEYS)?;
        let command = self.req_string(&hf, "cmd", "a shell command");
        let secs = "seconds ≥ 0";
        let interval = self.req_int(&hf, "interval", 1, U32_MAX, "seconds ≥ 1");
        let grace = self.req_int(&hf, "grace-period", 0, U32_MAX, secs);
        let max = self.req_int(
            &hf,
            "max-consecutive-failures",
            1,
            U32_MAX,
            "an integer ≥ 1",
        );
        let delay = self.req_int(&hf, "delay", 0, U32_MAX, secs);
        let timeout = self.req_int(&hf, "timeout", 1, U32_MAX, "seconds ≥ 1");
        Some(HealthCheckSpec {
            command: command?,
            interval: to_u32(interval?),
            grace_period: to_u32(grace?),
            max_consecutive_failures: to_u32(max?),
            delay: to_u32(delay?),
            timeout: to_u32(timeout?),
        })
    }

    /// A task's `readiness-check` (`delay` defaults to 0).
    pub(super) fn readiness_check(&mut self, task: &Fields<'_>) -> Option<ReadinessCheckSpec> {
        let rf = self.sub_fields(task, "readiness-check", READINESS_KEYS)?;
        let command = self.req_string(&rf, "cmd", "a shell command");
        let interval = self.req_int(&rf, "interval", 1, U32_MAX, "seconds ≥ 1");
        let timeout = self.req_int(&rf, "timeout", 1, U32_MAX, "seconds ≥ 1");
        let delay = self.int_or(&rf, "delay", 0, U32_MAX, "seconds ≥ 0", 0);
        Some(ReadinessCheckSpec {
            command: command?,
            interval: to_u32(interval?),
            timeout: to_u32(timeout?),
            delay: to_u32(delay?),
        })
    }
}
