//! [`LockOwner`]: who holds a leader lock, as stored in its lock node.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The scheduler process holding (or waiting for) a leader lock, stored as JSON in its
/// ephemeral lock node so that tools and a second scheduler can say who runs:
///
/// ```json
/// {"pid":4242,"hostname":"node-1","started_at":"2026-01-01T00:00:00Z","listen":"http://node-1:8080"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// The process id.
    pub pid: u32,
    /// The host it runs on.
    pub hostname: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// Where its HTTP API listens, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl LockOwner {
    /// This process: its pid, this machine's host name, `started_at` formatted as RFC 3339
    /// (UTC, seconds), and `listen`.
    #[must_use]
    pub fn this_process(started_at: SystemTime, listen: Option<String>) -> Self {
        Self {
            pid: std::process::id(),
            hostname: hostname(),
            started_at: rfc3339(started_at),
            listen,
        }
    }
}

impl fmt::Display for LockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on {} (since {}",
            self.pid, self.hostname, self.started_at
        )?;
        if let Some(listen) = &self.listen {
            write!(f, ", API at {listen}")?;
        }
        f.write_str(")")
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, then `$HOSTNAME`), or `unknown`.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (UTC); times before 1970 become the epoch.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_767_225_600)),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_827_696)),
            "2000-02-29T12:34:56Z"
        );
    }

    #[test]
    fn owners_read_well_and_round_trip() {
        let owner = LockOwner {
            pid: 4242,
            hostname: "node-1".to_owned(),
            started_at: "2026-01-01T00:00:00Z".to_owned(),
            listen: Some("http://node-1:8080".to_owned()),
        };
        assert_eq!(
            owner.to_string(),
            "pid 4242 on node-1 (since 2026-01-01T00:00:00Z, API at http://node-1:8080)"
        );
        let json = serde_json::to_string(&owner).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"pid":4242,"hostname":"node-1","started_at":"2026-01-01T00:00:00Z","listen":"http://node-1:8080"}"#
        );
        assert_eq!(serde_json::from_str::<LockOwner>(&json).ok(), Some(owner));
        let me = LockOwner::this_process(UNIX_EPOCH, None);
        assert_eq!(me.pid, std::process::id());
        assert!(!me.hostname.is_empty());
        assert_eq!(
            me.to_string(),
            format!(
                "pid {} on {} (since 1970-01-01T00:00:00Z)",
                me.pid, me.hostname
            )
        );
    }
}
