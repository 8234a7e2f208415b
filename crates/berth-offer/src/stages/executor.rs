//! The executor stage, and the executor's resources.

use std::sync::Arc;

use super::{Claim, ExecKind, Pipeline, Resv, Target};
use crate::outcome::{Outcome, stage};
use crate::pool::{Amount, to_milli};
use berth_mesos::{ExecutorInfo, TaskState};

fn is_active(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskStaging | TaskState::TaskStarting | TaskState::TaskRunning
    )
}

impl<'a> Pipeline<'a> {
    fn executor_resv(&self) -> Resv<'a> {
        Resv {
            role: &self.ctx.service.role,
            pre: &self.pod.pre_reserved_role,
            principal: &self.ctx.service.principal,
        }
    }

    /// New pod: a new executor (its id is drawn when the offer is accepted).
    pub(super) fn executor_new_stage(&mut self) {
        self.exec = ExecKind::New;
        self.stages.push(Outcome::pass(
            stage::EXECUTOR,
            format!(
                "Pod {}-{} gets a new executor",
                self.pod.pod_type, self.req.index
            ),
        ));
    }

    /// Existing pod: the running executor must be in the offer; otherwise the stored one is
    /// relaunched under a new id.
    pub(super) fn executor_existing_stage(&mut self) {
        let prefix = self.prefix.as_str();
        let active = self.state.statuses.iter().find(|(name, st)| {
            is_active(st.state)
                && !name
                    .strip_prefix(prefix)
                    .is_some_and(|task| self.req.tasks_to_launch.iter().any(|t| t == task))
        });
        let stored: Option<&'a Arc<ExecutorInfo>> = {
            let mut with_id = None;
            let mut any = None;
            for t in self.state.task_infos {
                if let Some(e) = &t.executor {
                    any.get_or_insert(e);
                    if !e.executor_id.value.is_empty() && with_id.is_none() {
                        with_id = Some(e);
                    }
                    if let Some((name, _)) = active
                        && *name == t.name
                        && !e.executor_id.value.is_empty()
                    {
                        with_id = Some(e);
                    }
                }
            }
            with_id.or(any)
        };
        let pod_name = format!("{}-{}", self.pod.pod_type, self.req.index);
        let outcome = match (stored, active) {
            (None, _) => {
                self.exec = ExecKind::New;
                Outcome::pass(
                    stage::EXECUTOR,
                    format!("Pod {pod_name} has no stored executor; it gets a new executor"),
                )
            }
            (Some(e), Some((task, status))) => {
                self.exec = ExecKind::Running(e);
                let id = &e.executor_id;
                if self.offer.executor_ids.iter().any(|x| x == id) {
                    Outcome::pass(
                        stage::EXECUTOR,
                        format!(
                            "Offer contains the matching Executor ID '{id}' ({task} is {})",
                            status.state.as_str()
                        ),
                    )
                } else {
                    Outcome::fail(
                        stage::EXECUTOR,
                        format!(
                            "Offer does not contain the needed Executor ID '{id}' ({task} is {})",
                            status.state.as_str()
                        ),
                    )
                }
            }
            (Some(e), None) => {
                self.exec = ExecKind::Relaunch(e);
                Outcome::pass(
                    stage::EXECUTOR,
                    format!(
                        "No task of pod {pod_name} is running; its executor is relaunched with a new id (was '{}')",
                        e.executor_id
                    ),
                )
            }
        };
        self.stages.push(outcome);
    }

    /// New executor: cpus, mem (unreserved scalars) and disk (ROOT disk).
    pub(super) fn new_executor_resource_stages(&mut self) {
        let resv = self.executor_resv();
        let er = self.ctx.executor_resources;
        for (name, amount) in [("cpus", er.cpus), ("mem", er.mem)] {
            let milli = to_milli(amount);
            if milli > 0 {
                self.new_scalar_stage(name, milli, resv, Target::Executor, " executor");
            }
        }
        let milli = to_milli(er.disk);
        if milli == 0 {
            return;
        }
        let role = resv.pre;
        let offered = self.pool.unreserved_scalar("disk", role);
        let outcome = match self.pool.consume_root_disk(role, milli) {
            Ok(path) => {
                self.push_claim(
                    Target::Executor,
                    Claim::NewDisk {
                        milli,
                        path,
                        volume: None,
                        resv,
                    },
                );
                Outcome::pass(
                    stage::RESOURCE,
                    format!(
                        "Offer contains sufficient unreserved 'disk' with role '{role}' for new executor reservation: requested {}, offered {}",
                        Amount(milli),
                        Amount(offered)
                    ),
                )
            }
            Err(e) => Outcome::fail(
                stage::RESOURCE,
                format!(
                    "Offer lacks sufficient unreserved 'disk' with role '{role}' for new executor reservation: {e}"
                ),
            ),
        };
        self.stages.push(outcome);
    }

    /// Relaunched executor: its previous reservations, by `resource_id`.
    pub(super) fn existing_executor_resource_stages(&mut self, e: &'a ExecutorInfo) {
        for r in &e.resources {
            let Some(id) = r.resource_id() else {
                continue;
            };
            let volume = r
                .disk
                .as_ref()
                .and_then(|d| d.volume.as_ref())
                .map(|v| v.container_path.as_str());
            let source = if volume.is_some() {
                stage::VOLUME
            } else {
                stage::RESOURCE
            };
            let what = match volume {
                Some(path) => format!("for the executor volume '{path}'"),
                None => "for the executor".to_owned(),
            };
            let outcome = match self.pool.consume_reserved(id) {
                Ok(res) => {
                    self.push_claim(Target::Executor, Claim::Kept { res });
                    Outcome::pass(
                        source,
                        format!(
                            "Offer contains previously reserved '{}' with resourceId: '{id}' {what}",
                            r.name
                        ),
                    )
                }
                Err(_) => Outcome::fail(
                    source,
                    format!(
                        "Offer lacks previously reserved '{}' with resourceId: '{id}' {what}",
                        r.name
                    ),
                ),
            };
            self.stages.push(outcome);
        }
    }
}
