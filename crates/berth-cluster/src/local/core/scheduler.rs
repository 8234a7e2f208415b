//! The scheduler's side of the core: its subscription (one at a time), the calls it sends,
//! the heartbeats it gets, and the teardown of its framework.

use std::time::{Duration, Instant};

use berth_mesos::FrameworkId;
use tracing::{error, info};

use super::Core;
use crate::local::state::{ExecutorState, FrameworkRecord};
use crate::local::wire::AgentMessage;
use crate::protocol::{Call, ClusterError, Event, EventStream, FrameworkInfo};

/// The subscribed scheduler.
pub(super) struct Subscription {
    pub(super) framework_id: String,
    pub(super) roles: Vec<String>,
    pub(super) principal: String,
    /// It suppressed offers.
    pub(super) suppressed: bool,
    pub(super) tx: tokio::sync::mpsc::UnboundedSender<Event>,
    /// When the next heartbeat is due.
    pub(super) next_heartbeat: Instant,
}

impl Core {
    pub(crate) fn subscribe(&mut self, fw: FrameworkInfo) -> Result<EventStream, ClusterError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // A new subscription ends the previous one; offers never survive it.
        self.sub = None;
        self.offers.outstanding.clear();
        let id = match &fw.id {
            None => {
                let id = format!("{}-{:04}", self.state.cluster_id, self.state.next_framework);
                self.state.next_framework += 1;
                id
            }
            Some(id) => {
                if self.framework_removed(id.as_str()) {
                    info!(framework = %id, "subscription refused: framework has been removed");
                    let _ = tx.send(Event::Error {
                        message: "Framework has been removed".to_owned(),
                    });
                    return Ok(rx);
                }
                id.value.clone()
            }
        };
        self.state.frameworks.insert(
            id.clone(),
            FrameworkRecord {
                name: fw.name.clone(),
                user: fw.user.clone(),
                principal: fw.principal.clone(),
                roles: fw.roles.clone(),
                removed: false,
            },
        );
        self.dirty = true;
        self.persist()?;
        info!(framework = id, name = fw.name, "framework subscribed");
        let _ = tx.send(Event::Subscribed {
            framework_id: FrameworkId::new(&id),
            heartbeat_interval_seconds: self.cfg.heartbeat_interval.as_secs_f64(),
        });
        let now = Instant::now();
        self.sub = Some(Subscription {
            framework_id: id.clone(),
            roles: fw.roles.clone(),
            principal: fw.principal.clone(),
            suppressed: false,
            tx,
            next_heartbeat: now + self.cfg.heartbeat_interval,
        });
        self.offers.clear_filters();
        // Unacknowledged updates are sent again to the new subscription.
        self.resend_pending(&id, now);
        self.offers.requested = true;
        Ok(rx)
    }

    pub(crate) fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        let Some(sub) = &self.sub else {
            return Err(ClusterError::NotSubscribed);
        };
        let fw = sub.framework_id.clone();
        match call {
            Call::Accept {
                offer_ids,
                operations,
                filters,
            } => return self.accept(&fw, &offer_ids, &operations, filters),
            Call::Decline { offer_ids, filters } => {
                self.decline(&fw, &offer_ids, filters.refuse_seconds);
            }
            Call::Kill {
                task_id,
                grace_period_secs,
                ..
            } => self.kill(&fw, task_id.as_str(), grace_period_secs),
            Call::Reconcile { tasks } => self.reconcile(&fw, &tasks),
            Call::Suppress => {
                if let Some(s) = &mut self.sub {
                    s.suppressed = true;
                }
            }
            Call::Revive => {
                if let Some(s) = &mut self.sub {
                    s.suppressed = false;
                }
                self.offers.clear_filters_of(&fw);
                self.offers.requested = true;
            }
            Call::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => self.acknowledge(agent_id.as_str(), task_id.as_str(), &uuid),
            Call::Teardown => self.teardown(&fw),
        }
        Ok(())
    }

    /// The heartbeat part of a tick.
    pub(super) fn heartbeat(&mut self, now: Instant) {
        let Some(sub) = &mut self.sub else { return };
        if now >= sub.next_heartbeat {
            sub.next_heartbeat = now + self.cfg.heartbeat_interval;
            self.emit(None, Event::Heartbeat);
        }
    }

    /// TEARDOWN: the framework is retired for good; its executors are told to shut down
    /// (and killed if they are not gone in time), its offers and filters dropped and its
    /// subscription ended. Reservations and volumes stay.
    fn teardown(&mut self, fw: &str) {
        info!(framework = fw, "tearing down framework");
        if let Some(f) = self.state.frameworks.get_mut(fw) {
            f.removed = true;
        }
        self.dirty = true;
        let mut to_shutdown = Vec::new();
        for a in self.state.agents.values_mut() {
            for t in a.tasks.values_mut() {
                if t.framework_id == fw {
                    t.pending.clear();
                }
            }
            for (eid, e) in &mut a.executors {
                if e.framework_id == fw && e.state.alive() {
                    e.state = ExecutorState::ShuttingDown;
                    to_shutdown.push(eid.clone());
                }
            }
        }
        let deadline = Instant::now()
            + self.cfg.default_kill_grace.max(Duration::from_secs(1)) * 2
            + Duration::from_secs(5);
        for exec in to_shutdown {
            self.send_exec(
                &exec,
                AgentMessage::Shutdown {
                    grace_period_secs: None,
                },
            );
            self.execs.kill_deadlines.insert(exec, deadline);
        }
        self.offers.outstanding.retain(|_, o| o.framework != fw);
        self.offers.clear_filters_of(fw);
        if let Err(e) = self.persist() {
            error!(error = %e, "cannot persist the teardown");
        }
        self.sub = None;
    }
}
