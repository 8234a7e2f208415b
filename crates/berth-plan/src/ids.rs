//! Where element ids come from: always injected, so plans are reproducible in tests.
//!
//! The planner shares the id source of offer evaluation.

pub use berth_offer::{IdGenerator, SequentialIds};
