//! Service specifications: from a `svc.yml` template to a validated [`ServiceSpec`].
//!
//! An operator describes a service once, in a `svc.yml` template, and configures each install
//! with options. This crate turns both into the typed [`ServiceSpec`] the scheduler deploys,
//! and decides whether a new spec may replace the one already deployed.
//!
//! ```text
//! options.json ──schema check, defaults──▶ options ──env.yml | marathon.json.mustache──▶ env
//!                                                                                        │
//! svc.yml template ──render (mustache, env)──▶ YAML text ──parse──▶ node tree (lines kept)
//!                                                                   │ check fields, defaults
//!                                                                   ▼
//!                                                              ServiceSpec
//!                        stored target spec ──update validators, diff──▶ errors / diff
//! ```
//!
//! * [`render`] — the mustache renderer ([`render_env`] for specs, [`render_json`] for package
//!   templates), reporting values that were not set.
//! * [`yaml`] — YAML → node tree with line numbers, duplicate keys kept.
//! * [`spec`] — [`load_spec`] / [`parse_spec`]: the spec pipeline; every problem is reported
//!   with file, template line, field path, value and what is allowed.
//! * [`placement`] — placement rule syntax ([`parse_placement`]).
//! * [`package`] — berth and DC/OS Universe packages: options, defaults, environment.
//! * [`validate`] — configuration update rules ([`validate_update`]).
//! * [`diff`] — [`spec_diff`], the unified diff logged on a configuration change.
//! * [`unsupported`] — [`unsupported_features`]: what berth's local agents cannot run.
//!
//! Nothing in this crate does I/O but [`DirFiles`], which reads a package directory: callers
//! hand in file contents (or a [`FileSource`]) and get values back.
//!
//! ```
//! use berth_spec::{load_spec, Env, NoFiles, SpecInput};
//!
//! let template = "name: {{NAME}}\npods:\n  hello:\n    count: 1\n    tasks:\n      server:\n        \
//!                 goal: RUNNING\n        cmd: sleep 1000\n        cpus: 0.1\n        memory: 32\n";
//! let mut env = Env::new();
//! env.insert("NAME".to_owned(), "hello-world".to_owned());
//! let loaded = load_spec(&SpecInput { file_name: "svc.yml", template, env: &env, files: &NoFiles })
//!     .expect("a valid spec");
//! assert_eq!(loaded.spec.role, "hello-world-role");
//! assert_eq!(loaded.spec.pod_specs[0].task_specs[0].resource_set.id, "server-resource-set");
//! ```

#![warn(missing_docs)]

mod convert;
pub mod diff;
mod error;
pub mod model;
pub mod package;
pub mod placement;
pub mod render;
pub mod spec;
pub mod unsupported;
pub mod validate;
pub mod yaml;

pub use convert::{RLIMIT_NAMES, service_role};
pub use diff::spec_diff;
pub use error::{Error, OptionsError, SpecError, SpecErrors, quote};
pub use model::*;
pub use package::{DirFiles, FileSource, NoFiles, Package, PackageKind};
pub use placement::{
    Constraint, PlacementField, PlacementOperator, PlacementRule, parse_placement,
};
pub use render::{Env, Missing, Rendered, TemplateError, render_env, render_json};
pub use spec::{LoadedSpec, SpecInput, load_spec, parse_spec};
pub use unsupported::{Backend, Unsupported, unsupported_features, unsupported_on};
pub use validate::{
    ConfigValidationError, Validator, default_validators, pod_spec_changes,
    pod_specs_equivalent_for_update, validate_update,
};
