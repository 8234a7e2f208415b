//! Offers kept back instead of declined, for work that will want them soon.
//!
//! A serial phase launches one step, then waits for its tasks to come up before the next
//! one may launch. Declining every offer meanwhile (and suppressing, as nothing can use
//! them) means the next step waits for the cluster to offer again after a REVIVE — an
//! allocation interval on a real master, and every agent's offer to look through again. So
//! while the plans' only waiting steps are behind tasks starting now
//! ([`OfferNeed::Soon`]), up to [`SchedulerOptions::offer_hold`] unused offers are kept
//! back, each for at most [`SchedulerOptions::offer_hold_ms`]; the batch that brings the
//! status completing a step evaluates them for the next one at once (its launch is stored
//! in the same commit as the status).
//!
//! ```text
//! offer cycle: unused offer ── room left? ──▶ kept for the end of the batch
//!                                        └──▶ declined at the end of the batch
//! end of batch / tick: need NOW  and offers held ──▶ offer cycle over them
//!                      need SOON ──▶ keep (at most the count, not older than the limit)
//!                      otherwise ──▶ decline
//! RESCIND ──▶ forgotten;  re-subscription, disconnection ──▶ all forgotten
//! ```
//!
//! [`SchedulerOptions::offer_hold`]: crate::options::SchedulerOptions::offer_hold
//! [`SchedulerOptions::offer_hold_ms`]: crate::options::SchedulerOptions::offer_hold_ms

use berth_mesos::{Offer, OfferId};
use berth_plan::{Millis, OfferNeed};
use berth_state::Persister;

use crate::core::Core;

/// Offers kept back, and the unused offers of the current batch that may join them.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Kept back, each with when it arrived.
    kept: Vec<(Millis, Offer)>,
    /// Unused by this batch's offer cycles, not declined yet (with when they arrived: now,
    /// or earlier for offers kept before).
    unused: Vec<(Millis, Offer)>,
    /// When the offers handed back to an offer cycle by [`Held::take`] arrived.
    taken: Vec<(OfferId, Millis)>,
}

impl Held {
    /// Whether offers are kept back.
    pub(crate) fn any(&self) -> bool {
        !self.kept.is_empty()
    }

    /// The offers kept back, each with when it arrived.
    pub(crate) fn offers(&self) -> impl Iterator<Item = &(Millis, Offer)> + Clone {
        self.kept.iter()
    }

    /// How many offers are kept back.
    pub(crate) fn len(&self) -> usize {
        self.kept.len()
    }

    /// The offers kept back, for an offer cycle (what it leaves unused comes back through
    /// [`Core::leave_unused`], remembering when it arrived).
    pub(crate) fn take(&mut self) -> Vec<Offer> {
        self.taken = self
            .kept
            .iter()
            .map(|(since, o)| (o.id.clone(), *since))
            .collect();
        self.kept.drain(..).map(|(_, o)| o).collect()
    }

    /// An offer the cluster rescinded.
    pub(crate) fn forget(&mut self, id: &OfferId) {
        self.kept.retain(|(_, o)| o.id != *id);
        self.unused.retain(|(_, o)| o.id != *id);
    }

    /// Every offer (the connection they came on is gone).
    pub(crate) fn forget_all(&mut self) {
        self.kept.clear();
        self.unused.clear();
        self.taken.clear();
    }
}

impl<P: Persister> Core<P> {
    /// An offer no step used and no cleanup needs: kept until the end of the batch while
    /// there is room to hold it, else declined then.
    pub(crate) fn leave_unused(&mut self, offer: Offer, now: Millis) {
        let held = &mut self.held;
        if held.kept.len() + held.unused.len() < self.options.offer_hold {
            let since = held
                .taken
                .iter()
                .find(|(id, _)| *id == offer.id)
                .map_or(now, |(_, since)| *since);
            held.unused.push((since, offer));
        } else {
            self.decline_later(offer, now);
        }
    }

    /// Keeps this batch's unused offers back while work wants offers soon (up to the count,
    /// none older than the limit); declines the others, and every kept one once nothing will
    /// want them.
    pub(crate) fn hold_or_decline_unused(&mut self, need: OfferNeed, now: Millis) {
        let keep = need == OfferNeed::Soon && self.uninstall.is_none();
        let limit = self.options.offer_hold_ms;
        // Those kept before first, then this batch's; each kept again only while wanted,
        // within the count and younger than the limit.
        let mut offers = std::mem::take(&mut self.held.kept);
        offers.append(&mut self.held.unused);
        self.held.taken.clear();
        for (since, offer) in offers {
            if keep
                && self.held.kept.len() < self.options.offer_hold
                && now.saturating_sub(since) < limit
            {
                self.held.kept.push((since, offer));
            } else {
                self.decline_later(offer, now);
            }
        }
    }
}
