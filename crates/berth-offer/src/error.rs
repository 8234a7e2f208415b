//! The crate's one error type.
//!
//! Offer evaluation itself never fails with an error: a refused offer is an
//! [`Outcome`](crate::outcome::Outcome) tree with reasons for people. [`OfferError`] is what the smaller
//! building blocks return — a [`ResourcePool`](crate::pool::ResourcePool) that cannot give what
//! was asked, a stored TaskInfo whose labels cannot be read into the
//! [`PlacementIndex`](crate::placement::PlacementIndex) — and the stages turn it into reasons.

use crate::pool::Amount;

/// Why a pool claim or an index update could not be done.
///
/// Amounts are in milli-units (thousandths of a cpu, of a MB), as kept by the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not enough of an unreserved scalar (or ROOT disk) for the request.
    #[error("requested {}, offered {}", Amount(*requested), Amount(*offered))]
    Insufficient {
        /// Requested amount (milli-units).
        requested: u64,
        /// Largest amount the offer could give (milli-units).
        offered: u64,
    },
    /// A fixed port is not among the offer's free unreserved ports of the role.
    #[error("port {port} is not among the offered unreserved ports")]
    PortNotOffered {
        /// The port.
        port: u64,
    },
    /// No free port is left in the allowed ranges for a dynamic port.
    #[error("no free port in the allowed ranges")]
    NoFreePort,
    /// No unreserved MOUNT disk is large enough (and of a wanted profile).
    #[error("no MOUNT disk of at least {} MB{}", Amount(*requested), largest.map(|l| format!(", largest offered {}", Amount(l))).unwrap_or_default())]
    NoMountDisk {
        /// Requested size (milli-MB).
        requested: u64,
        /// Largest MOUNT disk of the role and profiles that was offered (milli-MB), if any.
        largest: Option<u64>,
    },
    /// A previously reserved resource is not (or no longer) in the offer.
    #[error("resource id '{0}' is not in the offer")]
    ReservedNotOffered(String),
    /// A stored TaskInfo lacks a label needed to place it in the index.
    #[error("TaskInfo '{task}' lacks the label '{label}'")]
    MissingLabel {
        /// Task name.
        task: String,
        /// Label key.
        label: &'static str,
    },
    /// A stored TaskInfo has a label whose value cannot be read.
    #[error("TaskInfo '{task}' has an unreadable label '{label}': '{value}'")]
    InvalidLabel {
        /// Task name.
        task: String,
        /// Label key.
        label: &'static str,
        /// The bad value.
        value: String,
    },
}
