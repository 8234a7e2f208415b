//! Scheduler settings, read from the scheduler's environment like the reference's variables.

use berth_offer::ExecutorResources;
use berth_plan::BackoffPolicy;
use berth_spec::{Env, ReplacementFailurePolicy};

/// Default command of a paused task: it idles until resumed.
pub const DEFAULT_PAUSE_COMMAND: &str =
    "echo \"This task is PAUSED, sleeping ...\"; while true; do sleep 1000; done";

/// How the scheduler behaves; see [`SchedulerOptions::from_env`] for the variables.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerOptions {
    /// Launch back-off of failing tasks.
    pub backoff: BackoffPolicy,
    /// Host tasks reach the scheduler API at (`SCHEDULER_API_HOSTNAME`).
    pub api_host: String,
    /// Port of the scheduler API (`SCHEDULER_API_PORT`).
    pub api_port: u16,
    /// Seconds the cluster keeps the tasks running while the scheduler is away
    /// (FrameworkInfo `failover_timeout`; `berth run --failover-timeout`).
    pub failover_timeout_secs: f64,
    /// Resources of each pod's executor.
    pub executor_resources: ExecutorResources,
    /// Seconds declined offers stay away while there is work (default 5).
    pub decline_short_secs: f64,
    /// Seconds declined offers stay away when the service is idle (default 3600).
    pub decline_long_secs: f64,
    /// Refuse seconds of the unused part of accepted offers (default 1).
    pub accept_refuse_secs: f64,
    /// First delay before re-sending an explicit reconciliation (default 4 s).
    pub reconcile_retry_initial_ms: u64,
    /// Largest delay between explicit reconciliation attempts (default 30 s).
    pub reconcile_retry_max_ms: u64,
    /// How often kills are re-sent until the task is terminal (default 10 s).
    pub kill_retry_ms: u64,
    /// How often an implicit reconciliation is sent (default 1 h).
    pub implicit_reconcile_interval_ms: u64,
    /// Automatic replacement of pods that stay failed (overrides the spec's policy).
    pub replacement_policy: Option<ReplacementFailurePolicy>,
    /// Command a paused task runs.
    pub pause_command: String,
    /// How many evaluated offers the debug endpoint keeps.
    pub offer_log_limit: usize,
    /// How long the state store may refuse every write before the scheduler gives up and
    /// exits (`STORE_OUTAGE_LIMIT_SECS`, default 900 s; `None`, set with 0: never). Until then
    /// it holds its calls and makes no change, and carries on once the store is back.
    pub store_outage_limit_ms: Option<u64>,
    /// How many applied targets the configuration history keeps (`CONFIG_HISTORY`, default
    /// 20, at least 2); the configurations it names are kept with it.
    pub config_history: usize,
    /// How many unused offers are kept back instead of declined while the next steps of a
    /// plan wait only for tasks starting now (a serial phase), so that the next step launches
    /// the moment it may, without waiting for the cluster to offer again (`OFFER_HOLD_COUNT`,
    /// default 16; 0 turns holding off).
    pub offer_hold: usize,
    /// How long one offer is kept back at most (`OFFER_HOLD_SECS`, default 10 s); then it is
    /// declined.
    pub offer_hold_ms: u64,
}

/// Default of [`SchedulerOptions::config_history`].
pub const DEFAULT_CONFIG_HISTORY: usize = 20;

/// Default of [`SchedulerOptions::store_outage_limit_ms`], in seconds.
pub const DEFAULT_STORE_OUTAGE_LIMIT_SECS: u64 = 900;

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            backoff: BackoffPolicy::default(),
            api_host: "127.0.0.1".to_owned(),
            api_port: 7070,
            failover_timeout_secs: 1_209_600.0,
            executor_resources: ExecutorResources::default(),
            decline_short_secs: 5.0,
            decline_long_secs: 3600.0,
            accept_refuse_secs: 1.0,
            reconcile_retry_initial_ms: 4_000,
            reconcile_retry_max_ms: 30_000,
            kill_retry_ms: 10_000,
            implicit_reconcile_interval_ms: 3_600_000,
            replacement_policy: None,
            pause_command: DEFAULT_PAUSE_COMMAND.to_owned(),
            offer_log_limit: 100,
            store_outage_limit_ms: Some(DEFAULT_STORE_OUTAGE_LIMIT_SECS * 1000),
            config_history: DEFAULT_CONFIG_HISTORY,
            offer_hold: 16,
            offer_hold_ms: 10_000,
        }
    }
}

fn parse<T: std::str::FromStr>(env: &Env, name: &str, what: &str) -> Result<Option<T>, String> {
    match env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|_| format!("{name}: \"{v}\" is not {what}")),
    }
}

fn flag(env: &Env, name: &str) -> Result<Option<bool>, String> {
    match env.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v == "true" => Ok(Some(true)),
        Some(v) if v == "false" => Ok(Some(false)),
        Some(v) => Err(format!(
            "{name}: \"{v}\" is not a boolean; use true or false"
        )),
    }
}

impl SchedulerOptions {
    /// Reads the settings from the scheduler environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `ENABLE_BACKOFF` | launch back-off on task failures | `false` |
    /// | `FRAMEWORK_INITIAL_BACKOFF` | first delay, seconds | 60 |
    /// | `FRAMEWORK_BACKOFF_FACTOR` | growth per failure | 1.15 |
    /// | `FRAMEWORK_MAX_LAUNCH_DELAY` | largest delay, seconds | 300 |
    /// | `MIN_RELAUNCH_INTERVAL_MS` | shortest time between two launches of a task, also with back-off off, ms | 1000 |
    /// | `EXECUTOR_CPUS`, `EXECUTOR_MEM_MB`, `EXECUTOR_DISK_MB` | executor resources | 0.1, 32, 256 |
    /// | `ENABLE_AUTOMATIC_POD_REPLACEMENT` | replace pods that stay failed | `false` |
    /// | `PERMANENT_FAILURE_TIMEOUT_SECS`, `MIN_REPLACE_DELAY_SECS` | its timings | 1200, 10 |
    /// | `PAUSE_OVERRIDE_CMD` | command of paused tasks | a sleep loop |
    /// | `OFFER_HOLD_COUNT`, `OFFER_HOLD_SECS` | unused offers kept back for the next steps of a serial phase, and for how long | 16, 10 |
    ///
    /// Every error names the variable, the bad value and what is expected.
    pub fn from_env(env: &Env) -> Result<Self, Vec<String>> {
        let mut o = SchedulerOptions::default();
        let mut errors = Vec::new();
        let mut take = |r: Result<(), String>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        take(flag(env, "ENABLE_BACKOFF").map(|v| {
            if let Some(v) = v {
                o.backoff.enabled = v;
            }
        }));
        take(
            parse::<u64>(
                env,
                "FRAMEWORK_INITIAL_BACKOFF",
                "a whole number of seconds",
            )
            .map(|v| {
                if let Some(v) = v {
                    o.backoff.initial_ms = v.saturating_mul(1000);
                }
            }),
        );
        take(
            parse::<f64>(env, "FRAMEWORK_BACKOFF_FACTOR", "a number ≥ 1").and_then(|v| match v {
                Some(f) if !(1.0..=1000.0).contains(&f) => Err(format!(
                    "FRAMEWORK_BACKOFF_FACTOR: {f} is not a number between 1 and 1000"
                )),
                Some(f) => {
                    o.backoff.factor = f;
                    Ok(())
                }
                None => Ok(()),
            }),
        );
        take(
            parse::<u64>(
                env,
                "FRAMEWORK_MAX_LAUNCH_DELAY",
                "a whole number of seconds",
            )
            .map(|v| {
                if let Some(v) = v {
                    o.backoff.max_ms = v.saturating_mul(1000);
                }
            }),
        );
        take(
            parse::<u64>(
                env,
                "MIN_RELAUNCH_INTERVAL_MS",
                "a whole number of milliseconds",
            )
            .map(|v| {
                if let Some(v) = v {
                    o.backoff.min_relaunch_ms = v;
                }
            }),
        );
        take(parse::<f64>(env, "EXECUTOR_CPUS", "a number").map(|v| {
            if let Some(v) = v {
                o.executor_resources.cpus = v;
            }
        }));
        take(
            parse::<f64>(env, "EXECUTOR_MEM_MB", "a number of MB").map(|v| {
                if let Some(v) = v {
                    o.executor_resources.mem = v;
                }
            }),
        );
        take(
            parse::<f64>(env, "EXECUTOR_DISK_MB", "a number of MB").map(|v| {
                if let Some(v) = v {
                    o.executor_resources.disk = v;
                }
            }),
        );
        let auto = flag(env, "ENABLE_AUTOMATIC_POD_REPLACEMENT");
        let timeout = parse::<u64>(
            env,
            "PERMANENT_FAILURE_TIMEOUT_SECS",
            "a whole number of seconds",
        );
        let delay = parse::<u64>(env, "MIN_REPLACE_DELAY_SECS", "a whole number of seconds");
        match (auto, timeout, delay) {
            (Ok(Some(true)), Ok(t), Ok(d)) => {
                o.replacement_policy = Some(ReplacementFailurePolicy {
                    permanent_failure_timeout_secs: t.unwrap_or(1200),
                    min_replace_delay_secs: d.unwrap_or(10),
                });
            }
            (a, t, d) => {
                for e in [a.err(), t.err(), d.err()].into_iter().flatten() {
                    take(Err(e));
                }
            }
        }
        take(
            parse::<u64>(env, "STORE_OUTAGE_LIMIT_SECS", "a whole number of seconds").map(|v| {
                if let Some(v) = v {
                    o.store_outage_limit_ms = (v > 0).then(|| v.saturating_mul(1000));
                }
            }),
        );
        take(
            parse::<usize>(env, "CONFIG_HISTORY", "a whole number of configurations").and_then(
                |v| match v {
                    Some(n) if !(2..=1000).contains(&n) => Err(format!(
                        "CONFIG_HISTORY: {n} is not between 2 and 1000 (the current target and \
                         at least one to roll back to)"
                    )),
                    Some(n) => {
                        o.config_history = n;
                        Ok(())
                    }
                    None => Ok(()),
                },
            ),
        );
        take(
            parse::<usize>(env, "OFFER_HOLD_COUNT", "a whole number of offers").and_then(
                |v| match v {
                    Some(n) if n > 1000 => Err(format!(
                        "OFFER_HOLD_COUNT: {n} is more than 1000 (offers kept back are resources \
                         no other framework can use meanwhile)"
                    )),
                    Some(n) => {
                        o.offer_hold = n;
                        Ok(())
                    }
                    None => Ok(()),
                },
            ),
        );
        take(
            parse::<u64>(env, "OFFER_HOLD_SECS", "a whole number of seconds").and_then(
                |v| match v {
                    Some(n) if n > 3600 => {
                        Err(format!("OFFER_HOLD_SECS: {n} is more than 3600 (one hour)"))
                    }
                    Some(n) => {
                        o.offer_hold_ms = n * 1000;
                        Ok(())
                    }
                    None => Ok(()),
                },
            ),
        );
        if let Some(cmd) = env
            .get("PAUSE_OVERRIDE_CMD")
            .filter(|c| !c.trim().is_empty())
        {
            o.pause_command = cmd.clone();
        }
        if errors.is_empty() {
            Ok(o)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let o = SchedulerOptions::from_env(&Env::default()).unwrap();
        assert!(!o.backoff.enabled);
        assert_eq!(o.replacement_policy, None);
        assert_eq!(o.store_outage_limit_ms, Some(900_000));
    }

    #[test]
    fn store_outage_limit_is_read_and_zero_means_never() {
        let o = SchedulerOptions::from_env(&env(&[("STORE_OUTAGE_LIMIT_SECS", "30")])).unwrap();
        assert_eq!(o.store_outage_limit_ms, Some(30_000));
        let o = SchedulerOptions::from_env(&env(&[("STORE_OUTAGE_LIMIT_SECS", "0")])).unwrap();
        assert_eq!(o.store_outage_limit_ms, None);
        let errors =
            SchedulerOptions::from_env(&env(&[("STORE_OUTAGE_LIMIT_SECS", "-1")])).unwrap_err();
        assert_eq!(
            errors,
            vec!["STORE_OUTAGE_LIMIT_SECS: \"-1\" is not a whole number of seconds".to_owned()]
        );
    }

    #[test]
    fn reads_backoff_and_replacement() {
        let o = SchedulerOptions::from_env(&env(&[
            ("ENABLE_BACKOFF", "TRUE"),
            ("FRAMEWORK_INITIAL_BACKOFF", "2"),
            ("FRAMEWORK_BACKOFF_FACTOR", "2.5"),
            ("FRAMEWORK_MAX_LAUNCH_DELAY", "10"),
            ("ENABLE_AUTOMATIC_POD_REPLACEMENT", "true"),
            ("PERMANENT_FAILURE_TIMEOUT_SECS", "30"),
        ]))
        .unwrap();
        assert!(o.backoff.enabled);
        assert_eq!((o.backoff.initial_ms, o.backoff.max_ms), (2000, 10_000));
        assert_eq!(o.backoff.factor, 2.5);
        assert_eq!(
            o.replacement_policy,
            Some(ReplacementFailurePolicy {
                permanent_failure_timeout_secs: 30,
                min_replace_delay_secs: 10
            })
        );
    }

    #[test]
    fn every_bad_value_is_named() {
        let errors = SchedulerOptions::from_env(&env(&[
            ("ENABLE_BACKOFF", "yes"),
            ("FRAMEWORK_INITIAL_BACKOFF", "soon"),
            ("FRAMEWORK_BACKOFF_FACTOR", "0.5"),
        ]))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "ENABLE_BACKOFF: \"yes\" is not a boolean; use true or false".to_owned(),
                "FRAMEWORK_INITIAL_BACKOFF: \"soon\" is not a whole number of seconds".to_owned(),
                "FRAMEWORK_BACKOFF_FACTOR: 0.5 is not a number between 1 and 1000".to_owned(),
            ]
        );
    }

    #[test]
    fn offer_hold_is_read_and_bounded() {
        let o = SchedulerOptions::from_env(&Env::default()).unwrap();
        assert_eq!((o.offer_hold, o.offer_hold_ms), (16, 10_000));
        let o = SchedulerOptions::from_env(&env(&[
            ("OFFER_HOLD_COUNT", "0"),
            ("OFFER_HOLD_SECS", "3"),
        ]))
        .unwrap();
        assert_eq!((o.offer_hold, o.offer_hold_ms), (0, 3_000));
        let errors = SchedulerOptions::from_env(&env(&[
            ("OFFER_HOLD_COUNT", "5000"),
            ("OFFER_HOLD_SECS", "a while"),
        ]))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "OFFER_HOLD_COUNT: 5000 is more than 1000 (offers kept back are resources no \
                 other framework can use meanwhile)"
                    .to_owned(),
                "OFFER_HOLD_SECS: \"a while\" is not a whole number of seconds".to_owned(),
            ]
        );
    }
}
