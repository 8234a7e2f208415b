//! Offer evaluation: does this offer fit that pod, and if so, which operations claim it?

pub mod mesos;
