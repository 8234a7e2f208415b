//! Between the boundary's [`Call`]/[`Event`] and the scheduler API's own messages
//! ([`wire::Call`], [`wire::Event`]), both ways: the backend turns calls into the master's
//! shape and its events back; the Mesos master double of the tests does the reverse.

use berth_mesos::scheduler::{self as wire, CallType, EventType};
use berth_mesos::{DurationInfo, FrameworkId, Offer};

use crate::protocol::{Call, Event, ReconcileTask};

/// Grace period in seconds as a `DurationInfo`.
fn duration(secs: f64) -> DurationInfo {
    DurationInfo {
        nanoseconds: (secs * 1e9).round() as i64,
    }
}

/// The master's form of `call` for `framework_id`, suppressing and reviving `roles`.
#[must_use]
pub fn call_to_wire(call: Call, framework_id: Option<FrameworkId>, roles: &[String]) -> wire::Call {
    let roles = || wire::Roles {
        roles: roles.to_vec(),
    };
    match call {
        Call::Accept {
            offer_ids,
            operations,
            filters,
        } => wire::Call {
            accept: Some(wire::Accept {
                offer_ids,
                operations,
                filters: Some(filters),
            }),
            ..wire::Call::new(CallType::Accept, framework_id)
        },
        Call::Decline { offer_ids, filters } => wire::Call {
            decline: Some(wire::Decline {
                offer_ids,
                filters: Some(filters),
            }),
            ..wire::Call::new(CallType::Decline, framework_id)
        },
        Call::Kill {
            task_id,
            agent_id,
            grace_period_secs,
        } => wire::Call {
            kill: Some(wire::Kill {
                task_id,
                agent_id,
                kill_policy: grace_period_secs.map(|s| wire::KillPolicy {
                    grace_period: duration(s),
                }),
            }),
            ..wire::Call::new(CallType::Kill, framework_id)
        },
        Call::Reconcile { tasks } => wire::Call {
            reconcile: Some(wire::Reconcile {
                tasks: tasks
                    .into_iter()
                    .map(|t| wire::ReconcileTask {
                        task_id: t.task_id,
                        agent_id: t.agent_id,
                    })
                    .collect(),
            }),
            ..wire::Call::new(CallType::Reconcile, framework_id)
        },
        Call::Suppress => wire::Call {
            suppress: Some(roles()),
            ..wire::Call::new(CallType::Suppress, framework_id)
        },
        Call::Revive => wire::Call {
            revive: Some(roles()),
            ..wire::Call::new(CallType::Revive, framework_id)
        },
        Call::Acknowledge {
            agent_id,
            task_id,
            uuid,
        } => wire::Call {
            acknowledge: Some(wire::Acknowledge {
                agent_id,
                task_id,
                uuid,
            }),
            ..wire::Call::new(CallType::Acknowledge, framework_id)
        },
        Call::Teardown => wire::Call::new(CallType::Teardown, framework_id),
    }
}

/// The boundary's form of a call the master received; `None` for calls the boundary does not
/// have (SUBSCRIBE, inverse offers, SHUTDOWN) or a call missing its body.
#[must_use]
pub fn call_from_wire(call: wire::Call) -> Option<Call> {
    let zero = berth_mesos::Filters {
        refuse_seconds: 5.0,
    };
    Some(match call.kind {
        CallType::Accept => {
            let a = call.accept?;
            Call::Accept {
                offer_ids: a.offer_ids,
                operations: a.operations,
                filters: a.filters.unwrap_or(zero),
            }
        }
        CallType::Decline => {
            let d = call.decline?;
            Call::Decline {
                offer_ids: d.offer_ids,
                filters: d.filters.unwrap_or(zero),
            }
        }
        CallType::Kill => {
            let k = call.kill?;
            Call::Kill {
                task_id: k.task_id,
                agent_id: k.agent_id,
                grace_period_secs: k
                    .kill_policy
                    .map(|p| p.grace_period.nanoseconds as f64 / 1e9),
            }
        }
        CallType::Reconcile => Call::Reconcile {
            tasks: call
                .reconcile
                .unwrap_or_default()
                .tasks
                .into_iter()
                .map(|t| ReconcileTask {
                    task_id: t.task_id,
                    agent_id: t.agent_id,
                })
                .collect(),
        },
        CallType::Suppress => Call::Suppress,
        CallType::Revive => Call::Revive,
        CallType::Acknowledge => {
            let a = call.acknowledge?;
            Call::Acknowledge {
                agent_id: a.agent_id,
                task_id: a.task_id,
                uuid: a.uuid,
            }
        }
        CallType::Teardown => Call::Teardown,
        CallType::Subscribe
        | CallType::AcceptInverseOffers
        | CallType::DeclineInverseOffers
        | CallType::Shutdown => return None,
    })
}

/// The master's form of an event (the double sends these). `Disconnected` is the backend's
/// own note and has no wire form.
#[must_use]
pub fn event_to_wire(event: Event) -> Option<wire::Event> {
    Some(match event {
        Event::Subscribed {
            framework_id,
            heartbeat_interval_seconds,
        } => wire::Event {
            subscribed: Some(wire::Subscribed {
                framework_id,
                heartbeat_interval_seconds: Some(heartbeat_interval_seconds),
                master_info: None,
            }),
            ..wire::Event::new(EventType::Subscribed)
        },
        Event::Offers { offers } => wire::Event {
            offers: Some(wire::Offers { offers }),
            ..wire::Event::new(EventType::Offers)
        },
        Event::Rescind { offer_id } => wire::Event {
            rescind: Some(wire::Rescind { offer_id }),
            ..wire::Event::new(EventType::Rescind)
        },
        Event::Update { status } => wire::Event {
            update: Some(wire::Update { status }),
            ..wire::Event::new(EventType::Update)
        },
        Event::Failure {
            agent_id,
            executor_id,
            status,
        } => wire::Event {
            failure: Some(wire::Failure {
                agent_id,
                executor_id,
                status,
            }),
            ..wire::Event::new(EventType::Failure)
        },
        Event::Error { message } => wire::Event {
            error: Some(wire::ErrorEvent { message }),
            ..wire::Event::new(EventType::Error)
        },
        Event::Heartbeat => wire::Event::new(EventType::Heartbeat),
        Event::Disconnected { .. } => return None,
    })
}

/// What an event from the master means to the backend.
#[derive(Debug)]
pub enum Incoming {
    /// Hand this to the scheduler.
    Event(Event),
    /// Offers that could not be read (resources of kinds berth does not know): decline them.
    Unreadable {
        /// The offers to decline.
        offer_ids: Vec<berth_mesos::OfferId>,
        /// What could not be read.
        reason: String,
    },
    /// Maintenance windows (inverse offers) to answer.
    InverseOffers(Vec<wire::InverseOffer>),
    /// Nothing to do (a heartbeat is still a sign of life).
    Nothing,
}

/// An event as read from the stream: offers are kept raw and read one by one, so that one
/// offer berth cannot read does not cost the others.
#[derive(serde::Deserialize)]
struct RawEvent<'a> {
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(default)]
    subscribed: Option<wire::Subscribed>,
    #[serde(borrow, default)]
    offers: Option<RawOffers<'a>>,
    #[serde(default)]
    inverse_offers: Option<wire::InverseOffers>,
    #[serde(default)]
    rescind: Option<wire::Rescind>,
    #[serde(default)]
    update: Option<wire::Update>,
    #[serde(default)]
    failure: Option<wire::Failure>,
    #[serde(default)]
    error: Option<wire::ErrorEvent>,
}

#[derive(serde::Deserialize)]
struct RawOffers<'a> {
    #[serde(borrow, default)]
    offers: Vec<&'a serde_json::value::RawValue>,
}

/// Just the id of an offer berth could not read.
#[derive(serde::Deserialize)]
struct OfferIdOnly {
    id: berth_mesos::OfferId,
}

/// Reads one event record of the stream.
///
/// # Errors
/// A record that is not an event (the connection is then reset).
pub fn read_event(record: &[u8]) -> Result<Vec<Incoming>, String> {
    let event: RawEvent<'_> =
        serde_json::from_slice(record).map_err(|e| format!("an event berth cannot read: {e}"))?;
    let missing = |what: &str| format!("a {what} event without its body");
    Ok(match event.kind {
        EventType::Subscribed => {
            let s = event.subscribed.ok_or_else(|| missing("SUBSCRIBED"))?;
            vec![Incoming::Event(Event::Subscribed {
                framework_id: s.framework_id,
                heartbeat_interval_seconds: s.heartbeat_interval_seconds.unwrap_or(15.0),
            })]
        }
        EventType::Offers => read_offers(&event.offers.ok_or_else(|| missing("OFFERS"))?.offers),
        EventType::InverseOffers => vec![Incoming::InverseOffers(
            event
                .inverse_offers
                .ok_or_else(|| missing("INVERSE_OFFERS"))?
                .inverse_offers,
        )],
        EventType::Rescind => vec![Incoming::Event(Event::Rescind {
            offer_id: event.rescind.ok_or_else(|| missing("RESCIND"))?.offer_id,
        })],
        EventType::Update => vec![Incoming::Event(Event::Update {
            status: event.update.ok_or_else(|| missing("UPDATE"))?.status,
        })],
        EventType::Failure => {
            let f = event.failure.ok_or_else(|| missing("FAILURE"))?;
            vec![Incoming::Event(Event::Failure {
                agent_id: f.agent_id,
                executor_id: f.executor_id,
                status: f.status,
            })]
        }
        EventType::Error => vec![Incoming::Event(Event::Error {
            message: event.error.ok_or_else(|| missing("ERROR"))?.message,
        })],
        EventType::Heartbeat
        | EventType::RescindInverseOffer
        | EventType::UpdateOperationStatus
        | EventType::Message
        | EventType::Unknown => vec![Incoming::Nothing],
    })
}

/// Reads one offer of an OFFERS event.
///
/// # Errors
/// What could not be read.
pub fn read_offer(raw: &str) -> Result<Offer, serde_json::Error> {
    serde_json::from_str(raw)
}

fn read_offers(items: &[&serde_json::value::RawValue]) -> Vec<Incoming> {
    let mut offers = Vec::with_capacity(items.len());
    let mut unreadable = Vec::new();
    let mut reason = String::new();
    for item in items {
        match read_offer(item.get()) {
            Ok(offer) => offers.push(offer),
            Err(e) => {
                reason = e.to_string();
                if let Ok(only) = serde_json::from_str::<OfferIdOnly>(item.get()) {
                    unreadable.push(only.id);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(2);
    if !offers.is_empty() {
        out.push(Incoming::Event(Event::Offers { offers }));
    }
    if !unreadable.is_empty() {
        out.push(Incoming::Unreadable {
            offer_ids: unreadable,
            reason,
        });
    }
    out
}
