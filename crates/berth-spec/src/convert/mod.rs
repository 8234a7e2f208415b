//! Node tree → typed [`ServiceSpec`]: field checks, defaults, cross-field rules.
//!
//! The converter walks the tree with the dotted path of every field and collects every problem
//! it finds; it never stops at the first one. Unknown keys are errors everywhere except directly
//! inside a pod (where, for compatibility, they are ignored: `user:` or `container:` under a pod
//! are dropped and the pod runs as the scheduler user).
//!
//! This module holds the converter's state and the service root (`name`, `scheduler`,
//! `replacement-failure-policy`, then `pods` and `plans`). The rest is split by what it reads:
//!
//! * `fields` — one mapping: its allowed keys, the value, line and path of each key; duplicate
//!   keys and keys that are not plain names.
//! * `values` — typed readers for one value (string, boolean, integer, number, choice, labels),
//!   by node or by key of a mapping.
//! * `pod` — a pod: count, placement, networks, rlimits, URIs, secrets, resource sets, tasks.
//! * `task` — a task: goal, command, environment, configs, resource set, discovery, TLS, IPC.
//! * `resources` — cpus, memory, gpus, ports (VIPs, ranges) and resource limits of a task or a
//!   resource set.
//! * `volumes` — volumes of a task or resource set, host volumes and external volumes of a pod.
//! * `checks` — health and readiness checks.
//! * `plans` — plans, phases and steps (checked against the pods as written).
//! * `rules` — service-wide rules checked once every pod is read (port names, VIP and
//!   discovery prefixes).

mod checks;
mod fields;
mod plans;
mod pod;
mod resources;
mod rules;
mod task;
mod values;
mod volumes;

pub use pod::RLIMIT_NAMES;

use crate::error::SpecError;
use crate::model::{Goal, ReplacementFailurePolicy, ServiceSpec};
use crate::package::FileSource;
use crate::render::Env;
use crate::yaml::{Node, NodeKind};

use fields::Fields;
use plans::written_pods;
use rules::{PortSeen, PrefixSeen};

/// Keys of the spec's root mapping.
const ROOT_KEYS: &[&str] = &[
    "name",
    "web-url",
    "scheduler",
    "pods",
    "plans",
    "replacement-failure-policy",
];
/// Keys of `scheduler`.
const SCHEDULER_KEYS: &[&str] = &["principal", "zookeeper", "user"];
/// Keys of `replacement-failure-policy`.
const POLICY_KEYS: &[&str] = &["permanent-failure-timeout-secs", "min-replace-delay-secs"];

/// The derived role of a service: leading `/` removed, other `/` as `__`, plus `-role`.
#[must_use]
pub fn service_role(name: &str) -> String {
    let trimmed = name.strip_prefix('/').unwrap_or(name);
    format!("{}-role", trimmed.replace('/', "__"))
}

/// Converts one parsed spec, collecting every problem in [`Converter::errors`].
pub(crate) struct Converter<'a> {
    /// The spec's file name, for errors (its directory resolves `configs` templates).
    file: &'a str,
    /// The directory of `file`, with a trailing `/` (empty at the package root).
    spec_dir: String,
    /// The environment (`TASKCFG_*`, `SERVICE_REGION`).
    env: &'a Env,
    /// Where `configs` templates are read from.
    files: &'a dyn FileSource,
    /// Every problem found so far, in the order found.
    pub(crate) errors: Vec<SpecError>,
    /// Every port converted, for the service-wide rules.
    ports: Vec<PortSeen>,
    /// Every discovery prefix converted, for the service-wide rules.
    discovery: Vec<PrefixSeen>,
}

/// The `scheduler` section (each value absent when not written or empty).
#[derive(Default)]
struct Scheduler {
    principal: Option<String>,
    zookeeper: Option<String>,
    user: Option<String>,
}

impl<'a> Converter<'a> {
    /// A converter for the spec `file` (path relative to the package directory).
    pub(crate) fn new(file: &'a str, env: &'a Env, files: &'a dyn FileSource) -> Self {
        let spec_dir = match file.rfind('/') {
            Some(i) => file[..=i].to_owned(),
            None => String::new(),
        };
        Converter {
            file,
            spec_dir,
            env,
            files,
            errors: Vec::new(),
            ports: Vec::new(),
            discovery: Vec::new(),
        }
    }

    /// Records a problem at `line` for the field at `field`.
    fn err(&mut self, line: usize, field: &str, value: Option<&str>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line: Some(line),
            field: field.to_owned(),
            value: value.map(str::to_owned),
            message: message.into(),
        });
    }

    /// Records a value that cannot be used (see [`Self::err`]) and yields nothing in its place.
    fn reject<T>(
        &mut self,
        line: usize,
        field: &str,
        value: &str,
        message: impl Into<String>,
    ) -> Option<T> {
        self.err(line, field, Some(value), message);
        None
    }

    /// Converts the whole tree; `None` when the spec is unusable (the reasons are in
    /// [`Converter::errors`], which may hold problems even when a spec is returned).
    pub(crate) fn convert(&mut self, root: &Node) -> Option<ServiceSpec> {
        self.check_duplicates(root, "");
        if root.is_null() {
            self.err(
                root.line,
                "",
                None,
                "the spec is empty; expected a mapping with at least name and pods",
            );
            return None;
        }
        if !matches!(root.kind, NodeKind::Map(_)) {
            self.err(
                root.line,
                "",
                None,
                format!(
                    "the spec is {}; expected a mapping with at least name and pods",
                    root.describe()
                ),
            );
            return None;
        }
        let f = self.fields(root, "", root.line, ROOT_KEYS, true)?;

        let name = self.req_string(&f, "name", "the service name");
        let web_url = self.opt_string(&f, "web-url").filter(|s| !s.is_empty());
        let scheduler = self.scheduler(&f);
        let service_name = name.clone().unwrap_or_default();
        let role = service_role(&service_name);
        let principal = scheduler
            .principal
            .unwrap_or_else(|| format!("{service_name}-principal"));
        let user = scheduler.user.unwrap_or_else(|| "root".to_owned());
        let replacement_failure_policy = self.replacement_failure_policy(&f);

        let written = f.get("pods").map(written_pods).unwrap_or_default();
        let pod_specs = self.pods(&f, &role, &principal, &user);
        self.service_wide_checks();

        let plans = match f.get("plans") {
            Some(node) => self.plans(node, f.key_line("plans"), &written),
            None => Vec::new(),
        };

        let region = self
            .env
            .get("SERVICE_REGION")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());

        Some(ServiceSpec {
            name: name?,
            role,
            principal,
            web_url,
            zookeeper: scheduler
                .zookeeper
                .unwrap_or_else(|| "master.mesos:2181".to_owned()),
            user,
            goal: Goal::Running,
            region,
            replacement_failure_policy,
            pod_specs,
            plans,
        })
    }

    /// The `scheduler` section of the root.
    fn scheduler(&mut self, root: &Fields<'_>) -> Scheduler {
        let Some(s) = self.sub_fields(root, "scheduler", SCHEDULER_KEYS) else {
            return Scheduler::default();
        };
        Scheduler {
            principal: self.opt_string(&s, "principal").filter(|p| !p.is_empty()),
            zookeeper: self.opt_string(&s, "zookeeper").filter(|p| !p.is_empty()),
            user: self.opt_string(&s, "user").filter(|p| !p.is_empty()),
        }
    }

    /// The `replacement-failure-policy` section of the root (defaults: 1200 s and 10 s).
    fn replacement_failure_policy(
        &mut self,
        root: &Fields<'_>,
    ) -> Option<ReplacementFailurePolicy> {
        let p = self.sub_fields(root, "replacement-failure-policy", POLICY_KEYS)?;
        let secs = "seconds ≥ 0";
        let timeout = self
            .opt_integer(&p, "permanent-failure-timeout-secs", 0, i64::MAX, secs)
            .unwrap_or(1200);
        let delay = self
            .opt_integer(&p, "min-replace-delay-secs", 0, i64::MAX, secs)
            .unwrap_or(10);
        Some(ReplacementFailurePolicy {
            permanent_failure_timeout_secs: u64::try_from(timeout).unwrap_or(1200),
            min_replace_delay_secs: u64::try_from(delay).unwrap_or(10),
        })
    }
}
