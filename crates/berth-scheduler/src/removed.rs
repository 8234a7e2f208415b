//! Agents removed from the cluster — drained by an operator (`TASK_GONE_BY_OPERATOR`) or
//! reported removed by a `FAILURE` event naming only the agent. Their reservations and
//! volumes went with them, so nothing may wait for them to be offered again:
//!
//! - pods with tasks stored on the agent are replaced elsewhere (also those whose tasks were
//!   already down when the agent went, which get no report of their own);
//! - reservations to release there (orphans, decommission `unreserve` steps) count as
//!   released.
//!
//! The set is stored (property `removed-agents`), so a restart remembers it.

use std::collections::{BTreeSet, HashSet};

use berth_cluster::Call;
use berth_plan::Millis;
use berth_state::Persister;

use crate::SchedulerError;
use crate::core::Core;
use crate::orphans;
use crate::pods::instance_of;

/// Property holding the ids of removed agents (a JSON array).
pub const REMOVED_AGENTS: &str = "removed-agents";

impl<P: Persister> Core<P> {
    /// Agents known to be removed from the cluster.
    pub(crate) fn removed_agents(&self) -> BTreeSet<String> {
        self.store
            .property(REMOVED_AGENTS)
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }

    /// Records that `agent` was removed: replaces the pods that ran there and forgets the
    /// reservations to release there. Does nothing for an agent already known as removed.
    pub(crate) fn agent_removed(
        &mut self,
        agent: &str,
        now: Millis,
    ) -> Result<Vec<Call>, SchedulerError> {
        let mut removed = self.removed_agents();
        if !removed.insert(agent.to_owned()) {
            return Ok(Vec::new());
        }
        tracing::warn!(
            "agent {agent} was removed from the cluster: its reservations and volumes are gone; \
             pods that ran there are replaced elsewhere"
        );
        let mut tx = self.store.transaction();
        tx.set_property(REMOVED_AGENTS, serde_json::to_vec(&removed)?);
        let mut orphans = self.orphans();
        let before = orphans.len();
        orphans.retain(|_, o| o.agent != agent);
        if orphans.len() != before {
            orphans::stage(&mut tx, &orphans)?;
        }
        self.store.stage(tx)?;
        let decommissioning = self.decommissioning_tasks();
        let pods: BTreeSet<String> = self
            .store
            .task_infos()
            .filter(|i| i.agent_id.value == agent && !i.task_id.value.is_empty())
            .filter(|i| !decommissioning.contains(&i.name))
            .filter(|i| i.labels.get(berth_mesos::task_labels::PERMANENTLY_FAILED) != Some("true"))
            .filter_map(instance_of)
            .collect();
        let mut calls = Vec::new();
        if self.uninstall.is_none() {
            for pod in pods {
                let (_, c) = self.replace_pod(&pod, now)?;
                calls.extend(c);
            }
        }
        self.batch_dirty = true;
        Ok(calls)
    }

    /// Reservation ids of stored tasks on removed agents: released with their agent.
    pub(crate) fn released_by_removal(&self) -> HashSet<String> {
        let removed = self.removed_agents();
        if removed.is_empty() {
            return HashSet::new();
        }
        self.store
            .task_infos()
            .filter(|i| removed.contains(&i.agent_id.value))
            .flat_map(crate::cycle::resource_ids)
            .map(|(id, _)| id)
            .collect()
    }
}
