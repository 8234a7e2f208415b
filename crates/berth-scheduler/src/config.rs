//! The configuration flow run at every scheduler start.
//!
//! ```text
//! candidate spec ──▶ diff vs stored target (logged) ──▶ validators (always)
//!     fatal error, or any error on first install ──▶ refuse to start (nothing written)
//!     errors on an update ──▶ keep the old target; errors go to the deploy plan
//!     no errors, spec changed ──▶ store under a new UUID, make it the target
//! then: tasks whose pod is unchanged (ignoring count, placement, allow-decommission and
//! roles) are relabelled to the target (no relaunch); configurations nobody uses are deleted.
//! ```

use std::collections::BTreeSet;

use berth_mesos::task_labels;
use berth_offer::IdGenerator;
use berth_spec::{
    ConfigValidationError, ServiceSpec, pod_specs_equivalent_for_update, spec_diff, validate_update,
};
use berth_state::{Persister, StateStore, Transaction};
use uuid::Uuid;

use crate::SchedulerError;
use crate::history::{self, HistoryEntry};
use crate::options::DEFAULT_CONFIG_HISTORY;

/// What the configuration flow decided.
#[derive(Debug, Clone)]
pub struct ConfigOutcome {
    /// The target configuration id.
    pub target_id: Uuid,
    /// The target configuration.
    pub target: ServiceSpec,
    /// Validation errors of the candidate (the old target was kept).
    pub errors: Vec<ConfigValidationError>,
    /// Unified diff between the stored target and the candidate, if they differ.
    pub diff: Option<String>,
    /// Whether a new target was stored.
    pub changed: bool,
}

/// Runs the flow for `candidate` against the stored target and commits the result.
///
/// # Errors
/// [`SchedulerError::InvalidConfig`] for fatal errors or errors on first install (nothing is
/// written then); store errors.
pub fn update_configuration<P: Persister>(
    store: &mut StateStore<P>,
    candidate: ServiceSpec,
    ids: &mut dyn IdGenerator,
) -> Result<ConfigOutcome, SchedulerError> {
    configure(store, candidate, ids, DEFAULT_CONFIG_HISTORY)
}

/// [`update_configuration`] keeping `history` targets in the configuration history.
fn configure<P: Persister>(
    store: &mut StateStore<P>,
    candidate: ServiceSpec,
    ids: &mut dyn IdGenerator,
    history: usize,
) -> Result<ConfigOutcome, SchedulerError> {
    let old_id = store.config_target();
    let old = store.target_config()?.cloned();
    let diff = old.as_ref().and_then(|o| spec_diff(o, &candidate));
    if let Some(d) = &diff {
        tracing::info!("Difference between configs:\n{d}");
    }
    let errors = validate_update(old.as_ref(), &candidate);
    if errors.iter().any(|e| e.fatal) || (old.is_none() && !errors.is_empty()) {
        return Err(SchedulerError::InvalidConfig(
            errors.iter().map(ToString::to_string).collect(),
        ));
    }
    let mut tx = store.transaction();
    let (target_id, target, changed) = match (old_id, old) {
        (Some(id), Some(old)) if !errors.is_empty() => {
            for e in &errors {
                tracing::warn!("configuration update refused, keeping target {id}: {e}");
            }
            (id, old, false)
        }
        (Some(id), Some(old)) if old == candidate => (id, old, false),
        (old_id, _) => {
            let id = new_uuid(ids);
            tx.put_config(id, &candidate);
            tx.set_config_target(id);
            tracing::info!("new target configuration {id}");
            let entry = HistoryEntry {
                id: id.to_string(),
                applied: history::now_secs(),
                how: if old_id.is_some() {
                    "restart"
                } else {
                    "install"
                }
                .to_owned(),
                diff: diff.clone(),
                options: None,
                outcome: history::DEPLOYING.to_owned(),
                deployed: false,
            };
            history::record(store, &mut tx, entry, history::SUPERSEDED, history)?;
            (id, candidate, true)
        }
    };

    let mut used = relabel_unchanged_tasks(store, target_id, &target, &mut tx);
    used.extend(history::kept(store));
    // Configurations no task uses are deleted; one that fails to parse is kept for people
    // to read.
    let unused: Vec<Uuid> = store
        .config_ids()
        .filter(|id| !used.contains(id) && store.config(*id).is_ok())
        .collect();
    for id in unused {
        tx.delete_config(id);
    }
    if !tx.is_empty() {
        store.commit(tx)?;
    }
    Ok(ConfigOutcome {
        target_id,
        target,
        errors,
        diff,
        changed,
    })
}

/// Property: the package options the target was rendered from by an update through the API
/// (JSON); the base the next update's options are merged into. A start with a changed
/// command line removes it (its options file is the base then).
pub const TARGET_OPTIONS: &str = "target-options";

/// Property: a fingerprint of the configuration `berth run` was last started with (its
/// command line's spec and options, rendered).
pub const LAUNCH_FINGERPRINT: &str = "launch-fingerprint";

/// The configuration flow of a start: `candidate` is what the command line gives. When it is
/// the same as at the last start, the stored target stays, so that an update applied through
/// the API (`POST /v1/update`) is not undone by a restart with the command line it started
/// with; a changed command line is an update, as always.
///
/// # Errors
/// As [`update_configuration`].
pub fn start_configuration<P: Persister>(
    store: &mut StateStore<P>,
    candidate: ServiceSpec,
    ids: &mut dyn IdGenerator,
    history: usize,
) -> Result<ConfigOutcome, SchedulerError> {
    let fingerprint = fingerprint(&candidate)?;
    let unchanged = store.property(LAUNCH_FINGERPRINT) == Some(fingerprint.as_bytes());
    let candidate = match (unchanged, store.target_config()?) {
        (true, Some(target)) => {
            tracing::info!(
                "the command line's configuration is the one of the last start: the stored \
                 target stays"
            );
            target.clone()
        }
        _ => candidate,
    };
    let outcome = configure(store, candidate, ids, history)?;
    // A refused command line is not remembered: the next start shows its errors again.
    if !unchanged && outcome.errors.is_empty() {
        let mut tx = store.transaction();
        tx.set_property(LAUNCH_FINGERPRINT, fingerprint);
        if store.property(TARGET_OPTIONS).is_some() {
            tx.delete_property(TARGET_OPTIONS);
        }
        store.commit(tx)?;
    }
    Ok(outcome)
}

/// FNV-1a (64 bits, hex) of the spec's JSON.
fn fingerprint(spec: &ServiceSpec) -> Result<String, SchedulerError> {
    let json = serde_json::to_vec(spec)?;
    let hash = json.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    Ok(format!("{hash:016x}"))
}

/// Relabels to `target_id` the tasks whose pod did not change in a way that needs a
/// relaunch (and permanently failed ones); returns the configurations still in use.
pub(crate) fn relabel_unchanged_tasks<P: Persister>(
    store: &StateStore<P>,
    target_id: Uuid,
    target: &ServiceSpec,
    tx: &mut Transaction,
) -> BTreeSet<Uuid> {
    let target_text = target_id.to_string();
    let mut used: BTreeSet<Uuid> = BTreeSet::new();
    used.insert(target_id);
    for info in store.task_infos() {
        let Some(config) = info.labels.get(task_labels::TARGET_CONFIGURATION) else {
            continue;
        };
        if config == target_text {
            continue;
        }
        let Ok(config_id) = Uuid::parse_str(config) else {
            continue;
        };
        let permanently_failed = info.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true");
        let equivalent = info
            .labels
            .get(task_labels::TASK_TYPE)
            .and_then(|pod_type| {
                let old_pod = store.config(config_id).ok().flatten()?.pod(pod_type)?;
                let new_pod = target.pod(pod_type)?;
                Some(pod_specs_equivalent_for_update(old_pod, new_pod))
            })
            .unwrap_or(false);
        if equivalent || permanently_failed {
            let mut relabelled = info.clone();
            relabelled
                .labels
                .set(task_labels::TARGET_CONFIGURATION, target_text.clone());
            tx.set_task_info(&relabelled);
        } else {
            used.insert(config_id);
        }
    }
    used
}

/// A UUID from the id generator (which hands out UUID-shaped text).
pub(crate) fn new_uuid(ids: &mut dyn IdGenerator) -> Uuid {
    let text = ids.uuid();
    Uuid::parse_str(&text).unwrap_or_else(|_| {
        // Not UUID text: derive one deterministically (FNV-1a over the text).
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u128, |h, b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        });
        Uuid::from_u128(hash)
    })
}
