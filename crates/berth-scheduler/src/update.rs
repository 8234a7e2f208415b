//! Configuration updates on a running scheduler (`POST /v1/update`).
//!
//! ```text
//!  candidate spec ──▶ update validators against the target ──▶ errors: 400, nothing written
//!                 ──▶ same as the target: 200, nothing to do
//!                 ──▶ stage: the config under a new id, the target id, unchanged tasks
//!                     relabelled ──▶ the plans are regenerated from the new target (as a
//!                     restart would) ──▶ the deploy plan rolls it out
//! ```
//!
//! The reply waits until the new target is durable (an update is a change, see
//! [`Request::is_change`](crate::Request::is_change)).

use berth_cluster::Call;
use berth_plan::{Millis, PlanContext, PlanSet};
use berth_spec::{ServiceSpec, spec_diff, validate_update};
use berth_state::{Persister, UpdateType};
use serde_json::json;
use uuid::Uuid;

use crate::SchedulerError;
use crate::api::Reply;
use crate::config::{TARGET_OPTIONS, new_uuid, relabel_unchanged_tasks};
use crate::core::{Core, revive_decommissioned};
use crate::history::{self, HistoryEntry};
use crate::tasks::StoreTasks;

/// A 400 naming every error of a refused update or rollback.
fn refused(message: &str, errors: Vec<String>) -> (Reply, Vec<Call>) {
    (
        Reply::json_with(400, json!({"message": message, "errors": errors})),
        Vec::new(),
    )
}

impl<P: Persister> Core<P> {
    /// Why `candidate` cannot replace the target: every update validator's error, and a
    /// changed service name. Empty when it can.
    pub(crate) fn update_errors(&self, candidate: &ServiceSpec) -> Vec<String> {
        let mut errors: Vec<String> = validate_update(Some(&self.target), candidate)
            .iter()
            .map(ToString::to_string)
            .collect();
        if candidate.name != self.target.name {
            errors.push(format!(
                "name: the service is {}; an update cannot rename it to {}",
                self.target.name, candidate.name
            ));
        }
        errors
    }

    /// Makes `candidate` the target when every update validator accepts it, and rolls it out.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn update_target(
        &mut self,
        candidate: ServiceSpec,
        options: Option<serde_json::Value>,
        now: Millis,
    ) -> Result<(Reply, Vec<Call>), SchedulerError> {
        if self.uninstall.is_some() {
            return Ok((
                Reply::text(
                    409,
                    format!(
                        "service {} is being uninstalled: no update can start",
                        self.plans.spec().name
                    ),
                ),
                Vec::new(),
            ));
        }
        let errors = self.update_errors(&candidate);
        if !errors.is_empty() {
            tracing::warn!(
                "configuration update refused, keeping target {}: {}",
                self.target_id,
                errors.join("; ")
            );
            return Ok(refused("The update was refused", errors));
        }
        if *self.target == candidate {
            return Ok((
                Reply::json(json!({
                    "message": "The configuration is the target already: nothing to update",
                    "configId": self.target_id.to_string(),
                })),
                Vec::new(),
            ));
        }
        let id = new_uuid(&mut *self.ids);
        let calls = self.switch_target(id, candidate, options, "update", now)?;
        Ok((
            Reply::json(json!({
                "message": "Update started",
                "configId": id.to_string(),
            })),
            calls,
        ))
    }

    /// Makes an earlier configuration the target again: `to`, or the newest one whose rollout
    /// completed. Validated as any update; pods still on it are not relaunched.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn rollback(
        &mut self,
        to: Option<String>,
        now: Millis,
    ) -> Result<(Reply, Vec<Call>), SchedulerError> {
        let refuse = |status: u16, message: String| Ok((Reply::text(status, message), Vec::new()));
        if self.uninstall.is_some() {
            return refuse(
                409,
                format!(
                    "service {} is being uninstalled: nothing can be rolled back",
                    self.plans.spec().name
                ),
            );
        }
        let entries = history::read(&self.store);
        let current = self.target_id.to_string();
        let deployed = |id: &str| entries.iter().any(|e| e.id == id && e.deployed);
        let id = match to {
            Some(text) => {
                let Ok(id) = Uuid::parse_str(text.trim()) else {
                    return refuse(
                        400,
                        format!(
                            "'{text}' is not a configuration id (a UUID, see `berth config history`)"
                        ),
                    );
                };
                if self.store.config(id).ok().flatten().is_none() {
                    return refuse(404, format!("Configuration {id} not found"));
                }
                if !deployed(&id.to_string()) {
                    return refuse(
                        400,
                        format!(
                            "Configuration {id} never completed its rollout: roll back to one \
                             that did (`berth config history` shows them as deployed)"
                        ),
                    );
                }
                id
            }
            None => match entries
                .iter()
                .rev()
                .filter(|e| e.deployed && e.id != current)
                .find_map(|e| Uuid::parse_str(&e.id).ok())
            {
                Some(id) => id,
                None => {
                    return refuse(
                        400,
                        "No earlier configuration completed its rollout: there is nothing to roll \
                         back to"
                            .to_owned(),
                    );
                }
            },
        };
        if id == self.target_id {
            return refuse(400, format!("Configuration {id} is the target already"));
        }
        let Some(spec) = self.store.config(id).ok().flatten().cloned() else {
            return refuse(404, format!("Configuration {id} not found"));
        };
        let errors = self.update_errors(&spec);
        if !errors.is_empty() {
            return Ok(refused("The rollback was refused", errors));
        }
        let options = entries
            .iter()
            .rev()
            .find(|e| e.id == id.to_string())
            .and_then(|e| e.options.clone());
        let calls = self.switch_target(id, spec, options.clone(), "rollback", now)?;
        let mut body = json!({"message": "Rollback started", "configId": id.to_string()});
        if let Some(o) = options {
            body["options"] = o;
        }
        Ok((Reply::json(body), calls))
    }

    /// Makes `spec` the target under `id` (stored under it first unless it is stored already),
    /// records it in the history (`how`: `update`, `rollback`), and regenerates the plans
    /// from it as a restart would.
    pub(crate) fn switch_target(
        &mut self,
        id: Uuid,
        spec: ServiceSpec,
        options: Option<serde_json::Value>,
        how: &str,
        now: Millis,
    ) -> Result<Vec<Call>, SchedulerError> {
        let diff = spec_diff(&self.target, &spec);
        if let Some(d) = &diff {
            tracing::info!("Difference between configs:\n{d}");
        }
        let mut tx = self.store.transaction();
        if self.store.config(id).ok().flatten().is_none() {
            tx.put_config(id, &spec);
        }
        tx.set_config_target(id);
        relabel_unchanged_tasks(&self.store, id, &spec, &mut tx);
        if let Some(options) = &options {
            tx.set_property(TARGET_OPTIONS, serde_json::to_vec(options)?);
        }
        let entry = HistoryEntry {
            id: id.to_string(),
            applied: history::now_secs(),
            how: how.to_owned(),
            diff,
            options,
            outcome: history::DEPLOYING.to_owned(),
            deployed: false,
        };
        let previous = if how == "rollback" {
            history::ROLLED_BACK
        } else {
            history::SUPERSEDED
        };
        history::record(
            &self.store,
            &mut tx,
            entry,
            previous,
            self.options.config_history,
        )?;
        self.store.stage(tx)?;
        revive_decommissioned(&mut self.store, &spec)?;
        tracing::info!("new target configuration {id} ({how} through the API)");

        let deployed_before = matches!(
            self.store.last_completed_update_type()?,
            Some(UpdateType::Deploy | UpdateType::Update)
        );
        let target_text = id.to_string();
        self.plans = {
            let tasks = StoreTasks(&self.store);
            PlanSet::new(
                &PlanContext {
                    spec: &spec,
                    target_config_id: &target_text,
                    tasks: &tasks,
                    deployed_before,
                    backoff: self.options.backoff,
                    config_errors: Vec::new(),
                },
                &mut *self.ids,
                now,
            )
        };
        self.target = std::sync::Arc::new(spec);
        self.target_id = id;
        self.deploy_complete = false;
        self.batch_dirty = true;
        Ok(self.offer_interest(now))
    }
}
