//! The configuration history: every target applied (at a start, by an update, by a
//! rollback), newest last, with when, how, the spec diff against the target before it, the
//! options it was rendered from when known, and how its rollout ended. Kept in the property
//! [`CONFIG_HISTORY`] up to a bound ([`SchedulerOptions::config_history`]); the
//! configurations it names are not deleted while it names them.
//!
//! ```text
//!  applied ──▶ deploying ──▶ deployed (the deploy plan completed)
//!                 │      └─▶ failed   (the deploy plan ended in error)
//!                 ├─▶ superseded   (another target was applied before it completed)
//!                 └─▶ rolled back  (a rollback replaced it)
//! ```
//!
//! [`SchedulerOptions::config_history`]: crate::SchedulerOptions::config_history

use std::collections::BTreeSet;

use berth_state::{Persister, StateStore, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::SchedulerError;

/// Property holding the history (a JSON array, oldest first).
pub const CONFIG_HISTORY: &str = "config-history";

/// How a rollout ended (or that it is under way).
pub const DEPLOYING: &str = "deploying";
/// See [`DEPLOYING`].
pub const DEPLOYED: &str = "deployed";
/// See [`DEPLOYING`].
pub const FAILED: &str = "failed";
/// See [`DEPLOYING`].
pub const SUPERSEDED: &str = "superseded";
/// See [`DEPLOYING`].
pub const ROLLED_BACK: &str = "rolled back";

/// One applied target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The configuration id.
    pub id: String,
    /// When it was applied (seconds since the epoch).
    pub applied: f64,
    /// `install`, `restart` (a changed command line), `update` or `rollback`.
    pub how: String,
    /// Unified diff of the spec against the target before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The package options it was rendered from, when an update gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    /// `deploying`, `deployed`, `failed`, `superseded` or `rolled back`.
    pub outcome: String,
    /// Whether its rollout completed at some time (what a rollback may go back to).
    #[serde(default)]
    pub deployed: bool,
}

/// The history, oldest first (empty when none or unreadable).
pub(crate) fn read<P: Persister>(store: &StateStore<P>) -> Vec<HistoryEntry> {
    store
        .property(CONFIG_HISTORY)
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default()
}

/// The configurations the history names (kept from deletion).
pub(crate) fn kept<P: Persister>(store: &StateStore<P>) -> BTreeSet<Uuid> {
    read(store)
        .iter()
        .filter_map(|e| Uuid::parse_str(&e.id).ok())
        .collect()
}

/// Stages `entry` as the newest; the one before it, if still deploying, becomes `previous`
/// (`superseded`, or `rolled back`). The oldest beyond `bound` are dropped.
pub(crate) fn record<P: Persister>(
    store: &StateStore<P>,
    tx: &mut Transaction,
    entry: HistoryEntry,
    previous: &str,
    bound: usize,
) -> Result<(), SchedulerError> {
    let mut history = read(store);
    if let Some(last) = history.last_mut()
        && (last.outcome == DEPLOYING || previous == ROLLED_BACK)
    {
        last.outcome = previous.to_owned();
    }
    history.push(entry);
    let excess = history.len().saturating_sub(bound.max(2));
    history.drain(..excess);
    tx.set_property(CONFIG_HISTORY, serde_json::to_vec(&history)?);
    Ok(())
}

/// Stages `outcome` for the newest entry of `id` (when it is not that already).
pub(crate) fn mark<P: Persister>(
    store: &StateStore<P>,
    tx: &mut Transaction,
    id: Uuid,
    outcome: &str,
) -> Result<(), SchedulerError> {
    let mut history = read(store);
    let id = id.to_string();
    let Some(entry) = history.iter_mut().rev().find(|e| e.id == id) else {
        return Ok(());
    };
    if entry.outcome == outcome {
        return Ok(());
    }
    entry.outcome = outcome.to_owned();
    entry.deployed |= outcome == DEPLOYED;
    tx.set_property(CONFIG_HISTORY, serde_json::to_vec(&history)?);
    Ok(())
}

/// Now, in seconds since the epoch.
pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_state::MemPersister;

    fn entry(id: Uuid, how: &str) -> HistoryEntry {
        HistoryEntry {
            id: id.to_string(),
            applied: 1.0,
            how: how.to_owned(),
            diff: None,
            options: None,
            outcome: DEPLOYING.to_owned(),
            deployed: false,
        }
    }

    #[test]
    fn entries_are_bounded_and_outcomes_follow_the_rollouts() {
        let mut store = StateStore::open(MemPersister::new(), "svc").unwrap();
        let ids: Vec<Uuid> = (1..=4).map(Uuid::from_u128).collect();
        for (i, id) in ids.iter().enumerate() {
            let mut tx = store.transaction();
            record(&store, &mut tx, entry(*id, "update"), SUPERSEDED, 3).unwrap();
            store.commit(tx).unwrap();
            if i == 1 {
                let mut tx = store.transaction();
                mark(&store, &mut tx, *id, DEPLOYED).unwrap();
                store.commit(tx).unwrap();
            }
        }
        let h = read(&store);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(h[0].id, ids[1].to_string());
        assert_eq!((h[0].outcome.as_str(), h[0].deployed), (DEPLOYED, true));
        assert_eq!(h[1].outcome, SUPERSEDED);
        assert_eq!(h[2].outcome, DEPLOYING);
        assert!(kept(&store).contains(&ids[3]) && !kept(&store).contains(&ids[0]));
        let mut tx = store.transaction();
        record(&store, &mut tx, entry(ids[1], "rollback"), ROLLED_BACK, 3).unwrap();
        store.commit(tx).unwrap();
        let h = read(&store);
        assert_eq!(h[1].outcome, ROLLED_BACK);
        assert_eq!(h[2].how, "rollback");
    }
}
