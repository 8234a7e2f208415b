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

use crate::SchedulerError;
use crate::api::Reply;
use crate::config::{TARGET_OPTIONS, new_uuid, relabel_unchanged_tasks};
use crate::core::{Core, revive_decommissioned};
use crate::tasks::StoreTasks;

impl<P: Persister> Core<P> {
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
        if candidate.name != self.target.name {
            return Ok((
                Reply::json_with(
                    400,
                    json!({
                        "message": "The update was refused",
                        "errors": [format!(
                            "name: the service is {}; an update cannot rename it to {}",
                            self.target.name, candidate.name
                        )],
                    }),
                ),
                Vec::new(),
            ));
        }
        let errors = validate_update(Some(&self.target), &candidate);
        if !errors.is_empty() {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            tracing::warn!(
                "configuration update refused, keeping target {}: {}",
                self.target_id,
                errors.join("; ")
            );
            return Ok((
                Reply::json_with(
                    400,
                    json!({"message": "The update was refused", "errors": errors}),
                ),
                Vec::new(),
            ));
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
        if let Some(d) = spec_diff(&self.target, &candidate) {
            tracing::info!("Difference between configs:\n{d}");
        }
        let id = new_uuid(&mut *self.ids);
        let mut tx = self.store.transaction();
        tx.put_config(id, &candidate);
        tx.set_config_target(id);
        relabel_unchanged_tasks(&self.store, id, &candidate, &mut tx);
        if let Some(options) = &options {
            tx.set_property(TARGET_OPTIONS, serde_json::to_vec(options)?);
        }
        self.store.stage(tx)?;
        revive_decommissioned(&mut self.store, &candidate)?;
        tracing::info!("new target configuration {id} (an update through the API)");

        let deployed_before = matches!(
            self.store.last_completed_update_type()?,
            Some(UpdateType::Deploy | UpdateType::Update)
        );
        let target_text = id.to_string();
        self.plans = {
            let tasks = StoreTasks(&self.store);
            PlanSet::new(
                &PlanContext {
                    spec: &candidate,
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
        self.target = std::sync::Arc::new(candidate);
        self.target_id = id;
        self.deploy_complete = false;
        self.batch_dirty = true;
        let calls = self.offer_interest(now);
        Ok((
            Reply::json(json!({
                "message": "Update started",
                "configId": target_text,
            })),
            calls,
        ))
    }
}
