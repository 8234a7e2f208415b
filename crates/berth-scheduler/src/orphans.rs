//! Reservations left behind by replaced or erased tasks, kept under the
//! [`ORPHANED_RESERVATIONS`](crate::core::ORPHANED_RESERVATIONS) property until they are
//! released.
//!
//! While any is listed the scheduler keeps taking offers (it does not suppress), so that the
//! agent holding one offers it and it can be released. An offer of the agent *without* one
//! means it is gone once its release was decided. Before that, the old task or its executor
//! may still be using it (resources in use are not offered), and dropping it then would
//! leave it reserved with nobody asking for offers — unless the agent offers without it
//! twice, some seconds apart, running none of the service's executors: reserved resources
//! nobody uses are always offered, so it was released already (e.g. as an unexpected
//! reservation before the relaunch that listed it).

use std::collections::BTreeMap;

use berth_state::{Persister, Transaction};
use serde::{Deserialize, Serialize};

use crate::SchedulerError;
use crate::core::{Core, ORPHANED_RESERVATIONS};

/// A reservation waiting to be released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Stored")]
pub(crate) struct Orphan {
    /// The agent that holds it.
    pub agent: String,
    /// Whether an UNRESERVE of it was decided (stored before it was sent).
    pub released: bool,
}

impl Orphan {
    /// One still to be released, on `agent`.
    pub(crate) fn on(agent: impl Into<String>) -> Orphan {
        Orphan {
            agent: agent.into(),
            released: false,
        }
    }
}

/// What the property holds: the agent id alone (as written by earlier versions), or the
/// whole record.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Agent(String),
    Full {
        agent: String,
        #[serde(default)]
        released: bool,
    },
}

impl From<Stored> for Orphan {
    fn from(s: Stored) -> Orphan {
        match s {
            Stored::Agent(agent) => Orphan::on(agent),
            Stored::Full { agent, released } => Orphan { agent, released },
        }
    }
}

/// Orphans by resource id.
pub(crate) type Orphans = BTreeMap<String, Orphan>;

impl<P: Persister> Core<P> {
    /// Reservations waiting to be released (see [`ORPHANED_RESERVATIONS`]).
    pub(crate) fn orphans(&self) -> Orphans {
        self.store
            .property(ORPHANED_RESERVATIONS)
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or_default()
    }
}

/// Stages `orphans` as the new list (deleting the property when it is empty).
pub(crate) fn stage(tx: &mut Transaction, orphans: &Orphans) -> Result<(), SchedulerError> {
    if orphans.is_empty() {
        tx.delete_property(ORPHANED_RESERVATIONS);
    } else {
        tx.set_property(ORPHANED_RESERVATIONS, serde_json::to_vec(orphans)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_form_reads_as_not_yet_released() {
        let old: Orphans = serde_json::from_str(r#"{"r1": "agent-a"}"#).unwrap();
        assert_eq!(old["r1"], Orphan::on("agent-a"));
        let new: Orphans =
            serde_json::from_str(r#"{"r1": {"agent": "agent-b", "released": true}}"#).unwrap();
        assert_eq!(
            new["r1"],
            Orphan {
                agent: "agent-b".to_owned(),
                released: true
            }
        );
        let back: Orphans = serde_json::from_slice(&serde_json::to_vec(&new).unwrap()).unwrap();
        assert_eq!(back, new);
    }
}
