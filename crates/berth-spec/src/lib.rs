//! Service specifications: from a `svc.yml` template to a validated [`ServiceSpec`].
//!
//! ```text
//! svc.yml template ──render (mustache, env)──▶ YAML text ──parse──▶ node tree (lines kept)
//!        ▲                                                          │ validate, defaults
//! package options ──schema check, defaults──▶ env                   ▼
//!                                                              ServiceSpec
//!                                   old target ──update validators, diff──▶ errors / diff
//! ```
//!
//! Nothing in this crate does I/O: callers hand in file contents (or a [`package::FileSource`])
//! and get values back.

pub mod model;
pub mod placement;

pub use model::*;
