//! Offers: allocation rounds offer every up agent's free resources (those the subscribed
//! framework's roles may use) to that framework, one outstanding offer per agent. Declines,
//! and the unused part of an accepted offer, leave filters; taking an agent down rescinds
//! its offer.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use berth_mesos::{
    AgentId, Attribute, DomainInfo, ExecutorId, FaultDomain, FrameworkId, NamedInfo, Offer,
    OfferId, Range, Resource, Scalar, ValueType,
};
use tracing::{debug, warn};

use super::Core;
use crate::local::agents::{AgentAttribute, AgentSpec, AttributeValue};
use crate::local::ports;
use crate::local::resources::{Resources, role_matches};
use crate::local::state::AgentState;
use crate::protocol::Event;

/// An offer the framework has not answered yet.
pub(super) struct OutstandingOffer {
    pub(super) agent: String,
    pub(super) framework: String,
    pub(super) resources: Vec<Resource>,
}

/// Resources of an agent a framework declined (or left unused): they are not offered to it
/// again before `expires`, nor in the allocation round the filter was made in.
struct Filter {
    framework: String,
    resources: Resources,
    expires: Instant,
    round: u64,
}

/// Offer bookkeeping.
pub(super) struct OfferBook {
    /// Outstanding offers by offer id.
    pub(super) outstanding: BTreeMap<String, OutstandingOffer>,
    /// Filters by agent id.
    filters: BTreeMap<String, Vec<Filter>>,
    /// Whether the next tick allocates (something changed).
    pub(super) requested: bool,
    /// Number of the current periodic allocation round.
    round: u64,
    /// When the next periodic round is due.
    pub(super) next_round: Instant,
    /// Offer ids are `<id_prefix>-O<n>`; `n` of the next one.
    next_id: u64,
    id_prefix: String,
}

impl OfferBook {
    pub(super) fn new(next_round: Instant) -> OfferBook {
        let mut id_prefix = uuid::Uuid::new_v4().simple().to_string();
        id_prefix.truncate(8);
        OfferBook {
            outstanding: BTreeMap::new(),
            filters: BTreeMap::new(),
            requested: false,
            round: 0,
            next_round,
            next_id: 1,
            id_prefix,
        }
    }

    /// Forgets every filter (a new subscription).
    pub(super) fn clear_filters(&mut self) {
        self.filters.clear();
    }

    /// Forgets the filters of `fw` (it revived, or was torn down).
    pub(super) fn clear_filters_of(&mut self, fw: &str) {
        for f in self.filters.values_mut() {
            f.retain(|f| f.framework != fw);
        }
    }

    /// `next`, or the earliest filter expiry after `now` if that comes first.
    pub(super) fn next_filter_expiry(&self, now: Instant, mut next: Instant) -> Instant {
        for f in self.filters.values().flatten() {
            if f.expires > now {
                next = next.min(f.expires);
            }
        }
        next
    }

    /// Whether a filter of `fw` on `agent` holds back `offerable`.
    fn filtered(&self, agent: &str, fw: &str, offerable: &[Resource], now: Instant) -> bool {
        self.filters.get(agent).is_some_and(|fs| {
            fs.iter().any(|f| {
                f.framework == fw
                    && (now < f.expires || f.round == self.round)
                    && f.resources.contains_all(offerable)
            })
        })
    }

    fn new_offer_id(&mut self) -> String {
        let id = format!("{}-O{}", self.id_prefix, self.next_id);
        self.next_id += 1;
        id
    }
}

impl Core {
    /// Holds back `resources` of `agent` from `fw` for `refuse` seconds.
    pub(super) fn add_filter(
        &mut self,
        agent: &str,
        fw: &str,
        resources: &[Resource],
        refuse: f64,
    ) {
        let secs = if refuse.is_finite() {
            refuse.clamp(0.0, 365.0 * 86400.0)
        } else {
            0.0
        };
        let round = self.offers.round;
        self.offers
            .filters
            .entry(agent.to_owned())
            .or_default()
            .push(Filter {
                framework: fw.to_owned(),
                resources: Resources::from_list(resources),
                expires: Instant::now() + Duration::from_secs_f64(secs),
                round,
            });
    }

    /// A DECLINE: the offers end and their resources are filtered for `refuse` seconds.
    pub(super) fn decline(&mut self, fw: &str, offer_ids: &[OfferId], refuse: f64) {
        for id in offer_ids {
            if let Some(o) = self.offers.outstanding.remove(id.as_str()) {
                self.add_filter(&o.agent, fw, &o.resources, refuse);
            }
        }
    }

    /// The allocation part of a tick: a periodic round drops expired filters; a filter that
    /// just expired frees its resources right away; then an allocation runs if one is due.
    pub(super) fn allocation_round(&mut self, now: Instant) {
        let book = &mut self.offers;
        if now >= book.next_round {
            book.round += 1;
            book.next_round = now + self.cfg.allocation_interval;
            for fs in book.filters.values_mut() {
                fs.retain(|f| f.expires > now);
            }
            book.requested = true;
        }
        // A filter that just expired frees resources right away.
        let round = book.round;
        if book
            .filters
            .values()
            .flatten()
            .any(|f| f.expires <= now && f.round != round)
        {
            for fs in book.filters.values_mut() {
                fs.retain(|f| f.expires > now || f.round == round);
            }
            book.requested = true;
        }
        if book.requested {
            book.requested = false;
            self.allocate(now);
        }
    }

    /// Offers each agent without an outstanding offer to the subscribed framework, unless
    /// it suppressed offers.
    fn allocate(&mut self, now: Instant) {
        // Ports: read the other clusters' claims, offer around them, then claim ours — under
        // the host-wide lock, so two clusters never offer one port at the same time.
        let lock = self.ports.lock();
        let taken = self.ports.taken(lock.as_ref());
        self.offer_all(now, &taken);
        let ours = self.claimed_ports();
        self.ports.claim(lock.as_ref(), &ours);
    }

    /// Offers each free agent to the subscribed framework (see [`Self::allocate`]).
    fn offer_all(&mut self, now: Instant, taken: &[Range]) {
        let Some(sub) = &self.sub else { return };
        if sub.suppressed {
            return;
        }
        let fw = sub.framework_id.clone();
        let roles = sub.roles.clone();
        let busy: BTreeSet<String> = self
            .offers
            .outstanding
            .values()
            .map(|o| o.agent.clone())
            .collect();
        let mut offers = Vec::new();
        let agents: Vec<String> = self.agents.specs.keys().cloned().collect();
        for agent in agents {
            if busy.contains(&agent) {
                continue;
            }
            offers.extend(self.offer_agent(&agent, &fw, &roles, now, taken));
        }
        if !offers.is_empty() {
            debug!(count = offers.len(), "sending offers");
            self.emit(Some(&fw), Event::Offers { offers });
        }
    }

    /// An offer of what `agent` has free for `fw` (recorded as outstanding), unless the
    /// agent is not up, has nothing for `fw`'s roles, or a filter holds it back.
    fn offer_agent(
        &mut self,
        agent: &str,
        fw: &str,
        roles: &[String],
        now: Instant,
        taken: &[Range],
    ) -> Option<Offer> {
        let Some(rec) = self.state.agents.get(agent) else {
            warn!(
                agent,
                "agent has no record in the cluster state; not offered"
            );
            return None;
        };
        if rec.state != AgentState::Up {
            return None;
        }
        let offerable: Vec<Resource> = self
            .free(agent)
            .0
            .into_iter()
            .filter(|r| role_matches(r.reservation(), roles))
            .filter_map(|r| ports::without(r, taken))
            .collect();
        if offerable.is_empty() || self.offers.filtered(agent, fw, &offerable, now) {
            return None;
        }
        let Some(spec) = self.agents.specs.get(agent) else {
            warn!(agent, "agent is not in the agents file; not offered");
            return None;
        };
        let executor_ids = rec
            .executors
            .iter()
            .filter(|(_, e)| e.framework_id == fw && e.state.accepts_tasks())
            .map(|(id, _)| ExecutorId::new(id))
            .collect();
        let id = self.offers.new_offer_id();
        let offer = make_offer(&id, fw, agent, spec, offerable.clone(), executor_ids);
        self.offers.outstanding.insert(
            id,
            OutstandingOffer {
                agent: agent.to_owned(),
                framework: fw.to_owned(),
                resources: offerable,
            },
        );
        Some(offer)
    }

    /// The ports this cluster holds: used by tasks and executors, reserved, or offered.
    fn claimed_ports(&self) -> Vec<Range> {
        let mut held = Vec::new();
        for agent in self.agents.specs.keys() {
            let total = self.agents.totals.get(agent).cloned().unwrap_or_default();
            let all = total.ranges_of("ports", |_| true);
            let free = self
                .free(agent)
                .ranges_of("ports", |r| r.reservations.is_empty());
            held.extend(crate::local::resources::ranges_subtract(&all, &free));
        }
        for offer in self.offers.outstanding.values() {
            for r in offer.resources.iter().filter(|r| r.name == "ports") {
                held.extend(r.ranges.iter().flat_map(|x| x.range.iter().cloned()));
            }
        }
        ports::merge(held)
    }

    /// Rescinds the offer of `agent` and drops its filters (it is going down).
    pub(super) fn rescind_agent(&mut self, agent: &str) {
        let ids: Vec<String> = self
            .offers
            .outstanding
            .iter()
            .filter(|(_, o)| o.agent == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(o) = self.offers.outstanding.remove(&id) {
                self.emit(
                    Some(&o.framework),
                    Event::Rescind {
                        offer_id: OfferId::new(id),
                    },
                );
            }
        }
        self.offers.filters.remove(agent);
    }
}

fn make_offer(
    id: &str,
    fw: &str,
    agent: &str,
    spec: &AgentSpec,
    resources: Vec<Resource>,
    executor_ids: Vec<ExecutorId>,
) -> Offer {
    Offer {
        id: OfferId::new(id),
        framework_id: FrameworkId::new(fw),
        agent_id: AgentId::new(agent),
        hostname: spec.hostname.clone(),
        domain: spec.zone.as_ref().map(|z| DomainInfo {
            fault_domain: Some(FaultDomain {
                region: NamedInfo {
                    name: spec.region.clone(),
                },
                zone: NamedInfo { name: z.clone() },
            }),
        }),
        attributes: spec.attributes.iter().map(attribute).collect(),
        resources,
        executor_ids,
    }
}

fn attribute(a: &AgentAttribute) -> Attribute {
    match &a.value {
        AttributeValue::Text(t) => Attribute::text(&a.name, t),
        AttributeValue::Scalar(v) => Attribute {
            name: a.name.clone(),
            kind: ValueType::Scalar,
            scalar: Some(Scalar { value: *v }),
            ranges: None,
            set: None,
            text: None,
        },
    }
}
