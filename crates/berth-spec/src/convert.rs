//! Node tree → typed [`ServiceSpec`]: field checks, defaults, cross-field rules.
//!
//! The converter walks the tree with the dotted path of every field and collects every problem
//! it finds; it never stops at the first one. Unknown keys are errors everywhere except directly
//! inside a pod (where, for compatibility, they are ignored: `user:` or `container:` under a pod
//! are dropped and the pod runs as the scheduler user).

use std::collections::HashMap;

use crate::error::SpecError;
use crate::model::{
    CommandSpec, ConfigFileSpec, DiscoverySpec, ExternalVolumeSpec, Goal, HealthCheckSpec,
    HostVolumeSpec, IpcMode, LimitValue, NetworkSpec, PhaseSpec, PhaseStrategy, PlanSpec,
    PlanStrategy, PodSpec, PortRange, PortSpec, RLimitSpec, ReadinessCheckSpec,
    ReplacementFailurePolicy, ResourceLimits, ResourceSet, ResourceSpec, ScalarSpec, SecretSpec,
    ServiceSpec, StepsEntry, StepsKey, StringMap, TaskSpec, TransportEncryptionSpec,
    TransportEncryptionType, VipSpec, Visibility, VolumeSpec, VolumeType,
};
use crate::package::FileSource;
use crate::placement::parse_placement;
use crate::render::Env;
use crate::yaml::{Node, NodeKind};

const ROOT_KEYS: &[&str] = &[
    "name",
    "web-url",
    "scheduler",
    "pods",
    "plans",
    "replacement-failure-policy",
];
const SCHEDULER_KEYS: &[&str] = &["principal", "zookeeper", "user"];
const POLICY_KEYS: &[&str] = &["permanent-failure-timeout-secs", "min-replace-delay-secs"];
const POD_KEYS: &[&str] = &[
    "count",
    "allow-decommission",
    "placement",
    "image",
    "networks",
    "rlimits",
    "uris",
    "volume",
    "volumes",
    "pre-reserved-role",
    "secrets",
    "share-pid-namespace",
    "host-volumes",
    "external-volumes",
    "seccomp-unconfined",
    "seccomp-profile-name",
    "ipc-mode",
    "shm-size",
    "resource-sets",
    "tasks",
];
const TASK_KEYS: &[&str] = &[
    "goal",
    "essential",
    "cmd",
    "env",
    "labels",
    "configs",
    "cpus",
    "gpus",
    "memory",
    "ports",
    "volume",
    "volumes",
    "resource-set",
    "resource-limits",
    "health-check",
    "readiness-check",
    "discovery",
    "transport-encryption",
    "kill-grace-period",
    "ipc-mode",
    "shm-size",
];
/// Task keys that declare resources inline (not allowed together with `resource-set`).
const INLINE_RESOURCE_KEYS: &[&str] = &[
    "cpus",
    "gpus",
    "memory",
    "ports",
    "volume",
    "volumes",
    "resource-limits",
];
const RESOURCE_SET_KEYS: &[&str] = &[
    "cpus",
    "gpus",
    "memory",
    "ports",
    "volume",
    "volumes",
    "resource-limits",
];
const PORT_KEYS: &[&str] = &["port", "env-key", "advertise", "vip", "ranges"];
const VIP_KEYS: &[&str] = &["port", "prefix"];
const RANGE_KEYS: &[&str] = &["begin", "end"];
const VOLUME_KEYS: &[&str] = &["path", "type", "size", "profiles"];
const HEALTH_KEYS: &[&str] = &[
    "cmd",
    "interval",
    "grace-period",
    "max-consecutive-failures",
    "delay",
    "timeout",
];
const READINESS_KEYS: &[&str] = &["cmd", "interval", "timeout", "delay"];
const DISCOVERY_KEYS: &[&str] = &["prefix", "visibility"];
const TLS_KEYS: &[&str] = &["name", "type"];
const CONFIG_KEYS: &[&str] = &["template", "dest"];
const LIMIT_KEYS: &[&str] = &["cpus", "memory"];
const NETWORK_KEYS: &[&str] = &["host-ports", "container-ports", "labels"];
const RLIMIT_KEYS: &[&str] = &["soft", "hard"];
const SECRET_KEYS: &[&str] = &["secret", "env-key", "file"];
const HOST_VOLUME_KEYS: &[&str] = &["host-path", "container-path", "mode"];
const EXTERNAL_VOLUME_KEYS: &[&str] = &[
    "type",
    "volume-name",
    "volume-mode",
    "driver-name",
    "driver-options",
    "container-path",
];
const PLAN_KEYS: &[&str] = &["strategy", "phases"];
const PHASE_KEYS: &[&str] = &["pod", "strategy", "steps"];

/// The resource limit names accepted under `rlimits`.
pub const RLIMIT_NAMES: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

const MAX_PORT: i64 = 65_535;
const MAX_KILL_GRACE: i64 = 3_600;

/// The derived role of a service: leading `/` removed, other `/` as `__`, plus `-role`.
#[must_use]
pub fn service_role(name: &str) -> String {
    let trimmed = name.strip_prefix('/').unwrap_or(name);
    format!("{}-role", trimmed.replace('/', "__"))
}

/// The fields of one mapping, first occurrence of each key (duplicates are reported by a
/// separate pass over the whole tree).
struct Fields<'n> {
    path: String,
    line: usize,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn empty(path: &str, line: usize) -> Self {
        Fields {
            path: path.to_owned(),
            line,
            entries: Vec::new(),
        }
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value under `key`, `None` when absent or null.
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_null())
    }

    /// Whether `key` is written (even with an empty value).
    fn written(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    fn key_line(&self, key: &str) -> usize {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(self.line, |(_, k, _)| k.line)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A pod as written (before conversion), so that plan checks do not depend on whether the
/// pod itself converted cleanly.
struct WrittenPod {
    name: String,
    count: Option<u32>,
    tasks: Vec<String>,
}

fn written_pods(node: &Node) -> Vec<WrittenPod> {
    let NodeKind::Map(entries) = &node.kind else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_scalar()?.to_owned();
            let count = child(v, "count")
                .and_then(|c| c.as_scalar().and_then(|t| t.trim().parse::<u32>().ok()));
            let tasks = match child(v, "tasks").map(|t| &t.kind) {
                Some(NodeKind::Map(tasks)) => tasks
                    .iter()
                    .filter_map(|(k, _)| k.as_scalar().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            Some(WrittenPod { name, count, tasks })
        })
        .collect()
}

/// The value under `key` of a mapping node (first occurrence).
fn child<'n>(map: &'n Node, key: &str) -> Option<&'n Node> {
    match &map.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// Roles stamped on every resource of a pod.
struct Roles {
    role: String,
    pre_reserved_role: String,
    principal: String,
}

/// A port seen while converting, for the service-wide checks.
struct PortSeen {
    pod: String,
    set: String,
    name: String,
    advertise: bool,
    vip_prefix: Option<String>,
    line: usize,
    path: String,
}

pub(crate) struct Converter<'a> {
    file: &'a str,
    spec_dir: String,
    env: &'a Env,
    files: &'a dyn FileSource,
    pub(crate) errors: Vec<SpecError>,
    ports: Vec<PortSeen>,
    discovery: Vec<(String, String, usize, String)>,
}

impl<'a> Converter<'a> {
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

    fn err(&mut self, line: usize, field: &str, value: Option<&str>, message: impl Into<String>) {
        self.errors.push(SpecError {
            file: self.file.to_owned(),
            line: Some(line),
            field: field.to_owned(),
            value: value.map(str::to_owned),
            message: message.into(),
        });
    }

    // -----------------------------------------------------------------------------------------
    // Generic helpers

    /// Reports duplicate keys anywhere in the tree.
    fn check_duplicates(&mut self, node: &Node, path: &str) {
        match &node.kind {
            NodeKind::Map(entries) => {
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for (k, v) in entries {
                    let Some(key) = k.as_scalar() else {
                        continue;
                    };
                    let child = join(path, key);
                    if let Some(first) = seen.get(key) {
                        let first = *first;
                        self.err(
                            k.line,
                            &child,
                            None,
                            format!(
                                "is defined twice (first on line {first}); keys must be unique"
                            ),
                        );
                    } else {
                        seen.insert(key, k.line);
                    }
                    self.check_duplicates(v, &child);
                }
            }
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_duplicates(item, &format!("{path}[{i}]"));
                }
            }
            NodeKind::Null | NodeKind::Scalar { .. } => {}
        }
    }

    /// The entries of a mapping (first occurrence of each key). Null = empty mapping.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        match &node.kind {
            NodeKind::Null => Some(Vec::new()),
            NodeKind::Map(entries) => {
                let mut out: Vec<(&'n str, &'n Node, &'n Node)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match k.as_scalar() {
                        Some(key) => {
                            if !out.iter().any(|(seen, _, _)| *seen == key) {
                                out.push((key, k, v));
                            }
                        }
                        None => self.err(
                            k.line,
                            path,
                            None,
                            format!(
                                "has a key that is {}; keys must be plain names",
                                k.describe()
                            ),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_kind(node, path, "a mapping");
                None
            }
        }
    }

    /// The fields of a mapping, checking keys against `allowed` (unknown keys are errors when
    /// `strict`, silently dropped otherwise).
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        line: usize,
        allowed: &[&str],
        strict: bool,
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, path)?;
        let mut fields = Fields::empty(path, line);
        for (key, k, v) in entries {
            if allowed.contains(&key) {
                fields.entries.push((key, k, v));
            } else if strict {
                self.err(
                    k.line,
                    &join(path, key),
                    None,
                    format!("is not a known field; allowed: {}", allowed.join(", ")),
                );
            }
        }
        Some(fields)
    }

    /// Reports a value of the wrong kind (a list where a mapping belongs, …).
    fn wrong_kind(&mut self, node: &Node, path: &str, expected: &str) {
        match &node.kind {
            NodeKind::Scalar { text, .. } => {
                self.err(node.line, path, Some(text), format!("is not {expected}"));
            }
            NodeKind::Null => self.err(
                node.line,
                path,
                None,
                format!("is empty; expected {expected}"),
            ),
            NodeKind::Seq(_) | NodeKind::Map(_) => self.err(
                node.line,
                path,
                None,
                format!("is {}, not {expected}", node.describe()),
            ),
        }
    }

    /// A required field: reports it when absent or empty.
    fn req<'n>(&mut self, f: &Fields<'n>, key: &str, expect: &str) -> Option<&'n Node> {
        if let Some(v) = f.get(key) {
            return Some(v);
        }
        if f.written(key) {
            let line = f.key_line(key);
            self.err(
                line,
                &f.path(key),
                None,
                format!("has no value; expected {expect}"),
            );
        } else {
            self.err(
                f.line,
                &f.path(key),
                None,
                format!("is required; expected {expect}"),
            );
        }
        None
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => Some(text.clone()),
            NodeKind::Null => Some(String::new()),
            _ => {
                self.wrong_kind(node, path, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let text = self.string(node, path)?;
        if text.eq_ignore_ascii_case("true") {
            Some(true)
        } else if text.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.err(
                node.line,
                path,
                Some(&text),
                "is not a boolean; allowed: true, false",
            );
            None
        }
    }

    fn integer(
        &mut self,
        node: &Node,
        path: &str,
        min: i64,
        max: i64,
        expect: &str,
    ) -> Option<i64> {
        let text = self.string(node, path)?;
        let trimmed = text.trim();
        match trimmed.strip_prefix('+').unwrap_or(trimmed).parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(_) => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!("is out of range; expected {expect}"),
                );
                None
            }
            Err(_) => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!("is not an integer; expected {expect}"),
                );
                None
            }
        }
    }

    fn opt_integer(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        min: i64,
        max: i64,
        expect: &str,
    ) -> Option<i64> {
        let node = f.get(key)?;
        self.integer(node, &f.path(key), min, max, expect)
    }

    fn number(&mut self, node: &Node, path: &str, positive: bool, expect: &str) -> Option<f64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && (if positive { n > 0.0 } else { n >= 0.0 }) => Some(n),
            Ok(n) if n.is_finite() => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!("is out of range; expected {expect}"),
                );
                None
            }
            _ => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!("is not a number; expected {expect}"),
                );
                None
            }
        }
    }

    fn opt_string(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        let node = f.get(key)?;
        self.string(node, &f.path(key))
    }

    fn opt_bool(&mut self, f: &Fields<'_>, key: &str, default: bool) -> bool {
        match f.get(key) {
            Some(node) => self.boolean(node, &f.path(key)).unwrap_or(default),
            None => default,
        }
    }

    fn req_string(&mut self, f: &Fields<'_>, key: &str, expect: &str) -> Option<String> {
        let node = self.req(f, key, expect)?;
        let s = self.string(node, &f.path(key))?;
        if s.trim().is_empty() {
            self.err(
                node.line,
                &f.path(key),
                None,
                format!("is empty; expected {expect}"),
            );
            return None;
        }
        Some(s)
    }

    /// A choice among fixed words (case-insensitive).
    fn choice<T: Copy>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
        options: &[(&str, T)],
        extra: &str,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        let found = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            self.err(
                node.line,
                path,
                Some(&text),
                format!("is not {what}; allowed: {}{extra}", names.join(", ")),
            );
        }
        found
    }

    /// Parses `k:v,k2:v2` label strings.
    fn labels(&mut self, node: &Node, path: &str) -> StringMap {
        let mut labels = StringMap::new();
        let Some(text) = self.string(node, path) else {
            return labels;
        };
        if text.trim().is_empty() {
            return labels;
        }
        for part in text.split(',') {
            match part.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() => {
                    if labels
                        .insert(k.trim().to_owned(), v.trim().to_owned())
                        .is_some()
                    {
                        self.err(
                            node.line,
                            path,
                            Some(&text),
                            format!("names the label \"{}\" twice", k.trim()),
                        );
                    }
                }
                _ => {
                    self.err(
                        node.line,
                        path,
                        Some(&text),
                        format!(
                            "has the entry \"{part}\" that is not key:value; expected labels like \
                             \"key1:value1,key2:value2\""
                        ),
                    );
                }
            }
        }
        labels
    }

    // -----------------------------------------------------------------------------------------
    // Service

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

        let mut principal = None;
        let mut zookeeper = None;
        let mut user = None;
        if let Some(node) = f.get("scheduler") {
            let line = f.key_line("scheduler");
            if let Some(s) = self.fields(node, "scheduler", line, SCHEDULER_KEYS, true) {
                principal = self.opt_string(&s, "principal").filter(|p| !p.is_empty());
                zookeeper = self.opt_string(&s, "zookeeper").filter(|p| !p.is_empty());
                user = self.opt_string(&s, "user").filter(|p| !p.is_empty());
            }
        }
        let service_name = name.clone().unwrap_or_default();
        let role = service_role(&service_name);
        let principal = principal.unwrap_or_else(|| format!("{service_name}-principal"));
        let user = user.unwrap_or_else(|| "root".to_owned());

        let replacement_failure_policy = f.get("replacement-failure-policy").and_then(|node| {
            let line = f.key_line("replacement-failure-policy");
            let p = self.fields(node, "replacement-failure-policy", line, POLICY_KEYS, true)?;
            let timeout = self
                .opt_integer(
                    &p,
                    "permanent-failure-timeout-secs",
                    0,
                    i64::MAX,
                    "seconds ≥ 0",
                )
                .unwrap_or(1200);
            let delay = self
                .opt_integer(&p, "min-replace-delay-secs", 0, i64::MAX, "seconds ≥ 0")
                .unwrap_or(10);
            Some(ReplacementFailurePolicy {
                permanent_failure_timeout_secs: u64::try_from(timeout).unwrap_or(1200),
                min_replace_delay_secs: u64::try_from(delay).unwrap_or(10),
            })
        });

        let mut pod_specs = Vec::new();
        let written = f.get("pods").map(written_pods).unwrap_or_default();
        if let Some(node) = self.req(&f, "pods", "a mapping of pod types")
            && let Some(entries) = self.entries(node, "pods")
        {
            if entries.is_empty() {
                self.err(
                    f.key_line("pods"),
                    "pods",
                    None,
                    "is empty; a service needs at least one pod type",
                );
            }
            for (pod_type, key, value) in entries {
                if let Some(pod) = self.pod(pod_type, key, value, &role, &principal, &user) {
                    pod_specs.push(pod);
                }
            }
        }
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
            zookeeper: zookeeper.unwrap_or_else(|| "master.mesos:2181".to_owned()),
            user,
            goal: Goal::Running,
            region,
            replacement_failure_policy,
            pod_specs,
            plans,
        })
    }

    fn service_wide_checks(&mut self) {
        // Advertised port names must be unique across the service.
        let mut advertised: HashMap<String, (String, String)> = HashMap::new();
        let mut problems = Vec::new();
        for p in &self.ports {
            if !p.advertise {
                continue;
            }
            match advertised.get(&p.name) {
                Some((pod, set)) if pod != &p.pod || set != &p.set => problems.push((
                    p.line,
                    p.path.clone(),
                    format!(
                        "is advertised, and so is the port of the same name in pod {pod}; \
                         advertised port names must be unique across the service"
                    ),
                )),
                Some(_) => {}
                None => {
                    advertised.insert(p.name.clone(), (p.pod.clone(), p.set.clone()));
                }
            }
        }
        // A VIP prefix may not be the name of another port.
        for p in &self.ports {
            let Some(prefix) = &p.vip_prefix else {
                continue;
            };
            if let Some(other) = self.ports.iter().find(|o| {
                &o.name == prefix && !(o.pod == p.pod && o.set == p.set && o.name == p.name)
            }) {
                problems.push((
                    p.line,
                    format!("{}.vip.prefix", p.path),
                    format!(
                        "\"{prefix}\" is also the name of port {} ({}); a VIP prefix may not be \
                         another port's name",
                        other.name, other.path
                    ),
                ));
            }
        }
        // A discovery prefix may not be shared across pod types.
        let mut prefixes: HashMap<&str, &str> = HashMap::new();
        for (pod, prefix, line, path) in &self.discovery {
            match prefixes.get(prefix.as_str()) {
                Some(other) if other != pod => problems.push((
                    *line,
                    path.clone(),
                    format!(
                        "\"{prefix}\" is also the discovery prefix of pod {other}; a prefix may \
                         not be shared across pod types"
                    ),
                )),
                Some(_) => {}
                None => {
                    prefixes.insert(prefix, pod);
                }
            }
        }
        for (line, path, message) in problems {
            self.err(line, &path, None, message);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Pods

    fn pod(
        &mut self,
        pod_type: &str,
        key: &Node,
        node: &Node,
        role: &str,
        principal: &str,
        user: &str,
    ) -> Option<PodSpec> {
        let path = join("pods", pod_type);
        let f = self.fields(node, &path, key.line, POD_KEYS, false)?;
        let count = self
            .req(&f, "count", "an integer ≥ 0")
            .and_then(|n| {
                self.integer(
                    n,
                    &f.path("count"),
                    0,
                    i64::from(u32::MAX),
                    "an integer ≥ 0",
                )
            })
            .and_then(|n| u32::try_from(n).ok());
        let allow_decommission = self.opt_bool(&f, "allow-decommission", false);
        let placement_rule = f.get("placement").and_then(|n| match &n.kind {
            NodeKind::Scalar { text, .. } => parse_placement(text),
            NodeKind::Seq(_) => parse_placement(&n.to_json().to_string()),
            _ => {
                self.wrong_kind(
                    n,
                    &f.path("placement"),
                    "a placement string like '[[\"hostname\", \"UNIQUE\"]]'",
                );
                None
            }
        });
        let image = self
            .opt_string(&f, "image")
            .filter(|s| !s.trim().is_empty());
        let pre_reserved_role = self
            .opt_string(&f, "pre-reserved-role")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "*".to_owned());
        let roles = Roles {
            role: role.to_owned(),
            pre_reserved_role: pre_reserved_role.clone(),
            principal: principal.to_owned(),
        };

        let networks = self.networks(&f);
        let rlimits = self.rlimits(&f);
        let uris = self.uris(&f);
        let volumes = self.volumes(&f, &roles);
        let secrets = self.secrets(&f);
        let share_pid_namespace = self.opt_bool(&f, "share-pid-namespace", false);
        let host_volumes = self.host_volumes(&f);
        let external_volumes = self.external_volumes(&f);
        let seccomp_unconfined = self.opt_bool(&f, "seccomp-unconfined", false);
        let seccomp_profile_name = self
            .opt_string(&f, "seccomp-profile-name")
            .filter(|s| !s.trim().is_empty());
        if seccomp_unconfined && seccomp_profile_name.is_some() {
            self.err(
                f.key_line("seccomp-profile-name"),
                &f.path("seccomp-profile-name"),
                seccomp_profile_name.as_deref(),
                "may not be combined with seccomp-unconfined: true; choose one",
            );
        }
        let ipc_mode = f.get("ipc-mode").and_then(|n| {
            self.choice(
                n,
                &f.path("ipc-mode"),
                "an IPC mode for a pod",
                &[("PRIVATE", IpcMode::Private)],
                " (SHARE_PARENT is only allowed on tasks)",
            )
        });
        let shm_size = self
            .opt_integer(&f, "shm-size", 0, i64::from(u32::MAX), "a size in MB ≥ 0")
            .and_then(|n| u32::try_from(n).ok());

        // Named resource sets.
        let mut resource_sets: Vec<(String, ResourceSet)> = Vec::new();
        if let Some(node) = f.get("resource-sets") {
            let sets_path = f.path("resource-sets");
            if let Some(entries) = self.entries(node, &sets_path) {
                for (id, k, v) in entries {
                    let set_path = join(&sets_path, id);
                    if let Some(sf) = self.fields(v, &set_path, k.line, RESOURCE_SET_KEYS, true)
                        && let Some(set) = self.resources(&sf, id.to_owned(), &roles, pod_type)
                    {
                        resource_sets.push((id.to_owned(), set));
                    }
                }
            }
        }

        let mut task_specs = Vec::new();
        if let Some(node) = self.req(&f, "tasks", "a mapping of tasks") {
            let tasks_path = f.path("tasks");
            if let Some(entries) = self.entries(node, &tasks_path) {
                if entries.is_empty() {
                    self.err(
                        f.key_line("tasks"),
                        &tasks_path,
                        None,
                        "is empty; a pod needs at least one task",
                    );
                }
                for (name, k, v) in entries {
                    if let Some(task) = self.task(pod_type, name, k, v, &roles, &resource_sets) {
                        task_specs.push(task);
                    }
                }
            }
        }

        Some(PodSpec {
            pod_type: pod_type.to_owned(),
            user: user.to_owned(),
            count: count?,
            allow_decommission,
            image,
            networks,
            rlimits,
            uris,
            volumes,
            pre_reserved_role,
            secrets,
            placement_rule,
            task_specs,
            share_pid_namespace,
            host_volumes,
            external_volumes,
            seccomp_unconfined,
            seccomp_profile_name,
            ipc_mode,
            shm_size,
        })
    }

    fn networks(&mut self, f: &Fields<'_>) -> Vec<NetworkSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("networks") else {
            return out;
        };
        let path = f.path("networks");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let npath = join(&path, name);
            let Some(nf) = self.fields(v, &npath, k.line, NETWORK_KEYS, true) else {
                continue;
            };
            let host_ports = self.port_list(&nf, "host-ports");
            let container_ports = self.port_list(&nf, "container-ports");
            if !host_ports.is_empty()
                && !container_ports.is_empty()
                && host_ports.len() != container_ports.len()
            {
                self.err(
                    nf.key_line("container-ports"),
                    &nf.path("container-ports"),
                    None,
                    format!(
                        "has {} ports but host-ports has {}; each host port maps to one container \
                         port",
                        container_ports.len(),
                        host_ports.len()
                    ),
                );
            }
            let labels = match nf.get("labels") {
                Some(n) => self.labels(n, &nf.path("labels")),
                None => StringMap::new(),
            };
            out.push(NetworkSpec {
                name: name.to_owned(),
                host_ports,
                container_ports,
                labels,
            });
        }
        out
    }

    fn port_list(&mut self, f: &Fields<'_>, key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let Some(node) = f.get(key) else {
            return out;
        };
        let path = f.path(key);
        match &node.kind {
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(n) = self.integer(
                        item,
                        &format!("{path}[{i}]"),
                        0,
                        MAX_PORT,
                        "a port from 0 to 65535",
                    ) {
                        out.push(u32::try_from(n).unwrap_or_default());
                    }
                }
            }
            _ => self.wrong_kind(node, &path, "a list of ports"),
        }
        out
    }

    fn rlimits(&mut self, f: &Fields<'_>) -> Vec<RLimitSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("rlimits") else {
            return out;
        };
        let path = f.path("rlimits");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let rpath = join(&path, name);
            if !RLIMIT_NAMES.contains(&name) {
                self.err(
                    k.line,
                    &rpath,
                    None,
                    format!(
                        "is not a known resource limit; allowed: {}",
                        RLIMIT_NAMES.join(", ")
                    ),
                );
                continue;
            }
            let Some(rf) = self.fields(v, &rpath, k.line, RLIMIT_KEYS, true) else {
                continue;
            };
            let expect = "an integer ≥ 0, or -1 for unlimited";
            let soft = rf
                .get("soft")
                .map(|n| self.integer(n, &rf.path("soft"), -1, i64::MAX, expect));
            let hard = rf
                .get("hard")
                .map(|n| self.integer(n, &rf.path("hard"), -1, i64::MAX, expect));
            let (soft, hard) = match (soft, hard) {
                (None, None) => (None, None),
                (Some(Some(s)), Some(Some(h))) => {
                    let s = u64::try_from(s).ok();
                    let h = u64::try_from(h).ok();
                    let too_high = match (s, h) {
                        (None, Some(_)) => true,
                        (Some(s), Some(h)) => s > h,
                        _ => false,
                    };
                    if too_high {
                        self.err(
                            rf.key_line("soft"),
                            &rf.path("soft"),
                            None,
                            format!(
                                "is above the hard limit ({} > {}); the soft limit must be ≤ the \
                                 hard limit",
                                s.map_or_else(|| "unlimited".to_owned(), |v| v.to_string()),
                                h.map_or_else(|| "unlimited".to_owned(), |v| v.to_string()),
                            ),
                        );
                    }
                    (s, h)
                }
                (Some(None), _) | (_, Some(None)) => continue,
                (Some(_), None) | (None, Some(_)) => {
                    self.err(
                        k.line,
                        &rpath,
                        None,
                        "sets only one of soft and hard; set both, or neither for unlimited",
                    );
                    continue;
                }
            };
            out.push(RLimitSpec {
                name: name.to_owned(),
                soft,
                hard,
            });
        }
        out
    }

    fn uris(&mut self, f: &Fields<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let Some(node) = f.get("uris") else {
            return out;
        };
        let path = f.path("uris");
        match &node.kind {
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    match &item.kind {
                        NodeKind::Null => {}
                        NodeKind::Scalar { text, .. } => {
                            if !text.trim().is_empty() {
                                out.push(text.trim().to_owned());
                            }
                        }
                        _ => self.wrong_kind(item, &format!("{path}[{i}]"), "a URI"),
                    }
                }
            }
            _ => self.wrong_kind(node, &path, "a list of URIs"),
        }
        out
    }

    fn secrets(&mut self, f: &Fields<'_>) -> Vec<SecretSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("secrets") else {
            return out;
        };
        let path = f.path("secrets");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let spath = join(&path, name);
            let Some(sf) = self.fields(v, &spath, k.line, SECRET_KEYS, true) else {
                continue;
            };
            if !sf.written("secret") {
                self.err(
                    sf.line,
                    &sf.path("secret"),
                    None,
                    "is required; expected a secret path",
                );
                continue;
            }
            // An empty secret path is kept (templates often leave it unset by default).
            let secret_path = self.opt_string(&sf, "secret").unwrap_or_default();
            let env_key = self.opt_string(&sf, "env-key").filter(|s| !s.is_empty());
            let mut file_path = self.opt_string(&sf, "file").filter(|s| !s.is_empty());
            if env_key.is_none() && file_path.is_none() && !secret_path.is_empty() {
                file_path = Some(secret_path.clone());
            }
            out.push(SecretSpec {
                secret_path,
                env_key,
                file_path,
            });
        }
        out
    }

    fn host_volumes(&mut self, f: &Fields<'_>) -> Vec<HostVolumeSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("host-volumes") else {
            return out;
        };
        let path = f.path("host-volumes");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let hpath = join(&path, name);
            let Some(hf) = self.fields(v, &hpath, k.line, HOST_VOLUME_KEYS, true) else {
                continue;
            };
            let host_path = self.req_string(&hf, "host-path", "a path on the agent");
            let container_path = self.req_string(&hf, "container-path", "a path in the sandbox");
            let mode = self.access_mode(&hf, "mode");
            if let (Some(host_path), Some(container_path), Some(mode)) =
                (host_path, container_path, mode)
            {
                out.push(HostVolumeSpec {
                    name: name.to_owned(),
                    host_path,
                    container_path,
                    mode,
                });
            }
        }
        out
    }

    fn access_mode(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        match f.get(key) {
            None => Some("RW".to_owned()),
            Some(n) => self
                .choice(
                    n,
                    &f.path(key),
                    "an access mode",
                    &[("RW", "RW"), ("RO", "RO")],
                    "",
                )
                .map(str::to_owned),
        }
    }

    fn external_volumes(&mut self, f: &Fields<'_>) -> Vec<ExternalVolumeSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("external-volumes") else {
            return out;
        };
        let path = f.path("external-volumes");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let epath = join(&path, name);
            let Some(ef) = self.fields(v, &epath, k.line, EXTERNAL_VOLUME_KEYS, true) else {
                continue;
            };
            let volume_type = self.req(&ef, "type", "DOCKER").and_then(|n| {
                self.choice(
                    n,
                    &ef.path("type"),
                    "an external volume type",
                    &[("DOCKER", "DOCKER")],
                    "",
                )
            });
            let container_path = self.req_string(&ef, "container-path", "a path in the sandbox");
            let driver_name = self.req_string(&ef, "driver-name", "a Docker volume driver name");
            let volume_mode = self.access_mode(&ef, "volume-mode");
            let volume_name = self
                .opt_string(&ef, "volume-name")
                .filter(|s| !s.is_empty());
            let driver_options = self
                .opt_string(&ef, "driver-options")
                .filter(|s| !s.is_empty());
            if let (Some(volume_type), Some(container_path), Some(driver_name), Some(volume_mode)) =
                (volume_type, container_path, driver_name, volume_mode)
            {
                out.push(ExternalVolumeSpec {
                    name: name.to_owned(),
                    volume_type: volume_type.to_owned(),
                    volume_name,
                    volume_mode,
                    driver_name,
                    driver_options,
                    container_path,
                });
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Resources

    fn resources(
        &mut self,
        f: &Fields<'_>,
        id: String,
        roles: &Roles,
        pod_type: &str,
    ) -> Option<ResourceSet> {
        let mut specs = Vec::new();
        let mut ok = true;
        let scalar = |name: &str, value: f64| {
            ResourceSpec::Scalar(ScalarSpec {
                name: name.to_owned(),
                value,
                role: roles.role.clone(),
                pre_reserved_role: roles.pre_reserved_role.clone(),
                principal: roles.principal.clone(),
            })
        };
        let cpus = match f.get("cpus") {
            Some(n) => {
                let v = self.number(n, &f.path("cpus"), true, "a number of CPUs > 0");
                ok &= v.is_some();
                v
            }
            None => None,
        };
        let memory = match f.get("memory") {
            Some(n) => {
                let v = self.integer(
                    n,
                    &f.path("memory"),
                    1,
                    i64::from(u32::MAX),
                    "an integer number of MB ≥ 1",
                );
                ok &= v.is_some();
                v
            }
            None => None,
        };
        let gpus = match f.get("gpus") {
            Some(n) => {
                let v = self.number(n, &f.path("gpus"), false, "a number of GPUs ≥ 0");
                ok &= v.is_some();
                v
            }
            None => None,
        };
        if let Some(c) = cpus {
            specs.push(scalar("cpus", c));
        }
        let memory = memory.and_then(|m| u32::try_from(m).ok()).map(f64::from);
        if let Some(m) = memory {
            specs.push(scalar("mem", m));
        }
        if let Some(g) = gpus.filter(|g| *g > 0.0) {
            specs.push(scalar("gpus", g));
        }
        for port in self.ports(f, roles, pod_type, &id) {
            specs.push(ResourceSpec::Port(port));
        }
        let volumes = self.volumes(f, roles);
        let resource_limits = self.resource_limits(f, cpus.unwrap_or(0.0), memory.unwrap_or(0.0));
        if !ok {
            return None;
        }
        Some(ResourceSet {
            id,
            resource_specifications: specs,
            volume_specifications: volumes,
            resource_limits,
        })
    }

    fn resource_limits(
        &mut self,
        f: &Fields<'_>,
        cpus: f64,
        memory: f64,
    ) -> Option<ResourceLimits> {
        let node = f.get("resource-limits")?;
        let line = f.key_line("resource-limits");
        let lf = self.fields(node, &f.path("resource-limits"), line, LIMIT_KEYS, true)?;
        let cpus = lf
            .get("cpus")
            .and_then(|n| self.limit(n, &lf.path("cpus"), cpus, "CPUs"));
        let memory = lf
            .get("memory")
            .and_then(|n| self.limit(n, &lf.path("memory"), memory, "MB of memory"));
        Some(ResourceLimits { cpus, memory })
    }

    fn limit(&mut self, node: &Node, path: &str, request: f64, unit: &str) -> Option<LimitValue> {
        let text = self.string(node, path)?;
        if text.trim().eq_ignore_ascii_case("unlimited") {
            return Some(LimitValue::Unlimited);
        }
        let expect = format!(
            "a number ≥ the requested {} {unit}, or \"unlimited\"",
            fmt_num(request)
        );
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= request => Some(LimitValue::Amount(v)),
            Ok(v) if v.is_finite() => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!(
                        "is below the requested {} {unit}; expected {expect}",
                        fmt_num(request)
                    ),
                );
                None
            }
            _ => {
                self.err(
                    node.line,
                    path,
                    Some(&text),
                    format!("is not a limit; expected {expect}"),
                );
                None
            }
        }
    }

    fn ports(
        &mut self,
        f: &Fields<'_>,
        roles: &Roles,
        pod_type: &str,
        set_id: &str,
    ) -> Vec<PortSpec> {
        let mut out: Vec<PortSpec> = Vec::new();
        let Some(node) = f.get("ports") else {
            return out;
        };
        let path = f.path("ports");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let ppath = join(&path, name);
            let Some(pf) = self.fields(v, &ppath, k.line, PORT_KEYS, true) else {
                continue;
            };
            let port = self
                .req(
                    &pf,
                    "port",
                    "a port from 1 to 65535, or 0 for a dynamic port",
                )
                .and_then(|n| {
                    self.integer(
                        n,
                        &pf.path("port"),
                        0,
                        MAX_PORT,
                        "a port from 1 to 65535, or 0 for a dynamic port",
                    )
                })
                .and_then(|n| u32::try_from(n).ok());
            let env_key = self
                .opt_string(&pf, "env-key")
                .filter(|s| !s.trim().is_empty());
            let advertise = self.opt_bool(&pf, "advertise", false);
            let vip = pf.get("vip").and_then(|n| {
                let vf = self.fields(n, &pf.path("vip"), pf.key_line("vip"), VIP_KEYS, true)?;
                let vport = self
                    .req(&vf, "port", "a port from 1 to 65535")
                    .and_then(|n| {
                        self.integer(n, &vf.path("port"), 1, MAX_PORT, "a port from 1 to 65535")
                    })
                    .and_then(|n| u32::try_from(n).ok())?;
                let prefix = self
                    .opt_string(&vf, "prefix")
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| name.to_owned());
                Some(VipSpec {
                    prefix,
                    port: vport,
                })
            });
            let ranges = self.ranges(&pf);
            let Some(port) = port else {
                continue;
            };
            if port != 0
                && let Some(other) = out.iter().find(|o| o.port == port)
            {
                self.err(
                    pf.key_line("port"),
                    &pf.path("port"),
                    Some(&port.to_string()),
                    format!(
                        "is already used by port {} of the same task; fixed port numbers must \
                             be unique within a task",
                        other.port_name
                    ),
                );
                continue;
            }
            self.ports.push(PortSeen {
                pod: pod_type.to_owned(),
                set: set_id.to_owned(),
                name: name.to_owned(),
                advertise,
                vip_prefix: vip.as_ref().map(|v| v.prefix.clone()),
                line: k.line,
                path: ppath.clone(),
            });
            out.push(PortSpec {
                port_name: name.to_owned(),
                port,
                env_key,
                visibility: if advertise {
                    Visibility::External
                } else {
                    Visibility::Cluster
                },
                ranges,
                vip,
                role: roles.role.clone(),
                pre_reserved_role: roles.pre_reserved_role.clone(),
                principal: roles.principal.clone(),
            });
        }
        out
    }

    fn ranges(&mut self, pf: &Fields<'_>) -> Vec<PortRange> {
        let mut out = Vec::new();
        let Some(node) = pf.get("ranges") else {
            return out;
        };
        let path = pf.path("ranges");
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_kind(node, &path, "a list of {begin, end} ranges");
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let rpath = format!("{path}[{i}]");
            let Some(rf) = self.fields(item, &rpath, item.line, RANGE_KEYS, true) else {
                continue;
            };
            let expect = "a port from 0 to 65535 (or nothing for an open end)";
            let begin = rf
                .get("begin")
                .map(|n| self.integer(n, &rf.path("begin"), 0, MAX_PORT, expect));
            let end = rf
                .get("end")
                .map(|n| self.integer(n, &rf.path("end"), 0, MAX_PORT, expect));
            if matches!(begin, Some(None)) || matches!(end, Some(None)) {
                continue;
            }
            let begin = begin.flatten().and_then(|n| u32::try_from(n).ok());
            let end = end.flatten().and_then(|n| u32::try_from(n).ok());
            if let (Some(b), Some(e)) = (begin, end)
                && b > e
            {
                self.err(
                    item.line,
                    &rpath,
                    Some(&format!("{b}-{e}")),
                    "begins after it ends; expected begin ≤ end",
                );
                continue;
            }
            out.push(PortRange { begin, end });
        }
        out
    }

    fn volumes(&mut self, f: &Fields<'_>, roles: &Roles) -> Vec<VolumeSpec> {
        let mut out: Vec<VolumeSpec> = Vec::new();
        if f.get("volume").is_some() && f.get("volumes").is_some() {
            self.err(
                f.key_line("volumes"),
                &f.path("volumes"),
                None,
                "may not be combined with volume; use either one volume or a map of volumes",
            );
            return out;
        }
        let mut found: Vec<(VolumeSpec, usize, String)> = Vec::new();
        if let Some(node) = f.get("volume") {
            let path = f.path("volume");
            if let Some(v) = self.volume(node, &path, f.key_line("volume"), roles) {
                found.push((v, f.key_line("volume"), path));
            }
        }
        if let Some(node) = f.get("volumes") {
            let path = f.path("volumes");
            if let Some(entries) = self.entries(node, &path) {
                for (name, k, v) in entries {
                    let vpath = join(&path, name);
                    if let Some(spec) = self.volume(v, &vpath, k.line, roles) {
                        found.push((spec, k.line, vpath));
                    }
                }
            }
        }
        for (spec, line, path) in found {
            if out.iter().any(|o| o.container_path == spec.container_path) {
                self.err(
                    line,
                    &format!("{path}.path"),
                    Some(&spec.container_path),
                    "is already the path of another volume here; volume paths must be unique",
                );
                continue;
            }
            out.push(spec);
        }
        out
    }

    fn volume(
        &mut self,
        node: &Node,
        path: &str,
        line: usize,
        roles: &Roles,
    ) -> Option<VolumeSpec> {
        let vf = self.fields(node, path, line, VOLUME_KEYS, true)?;
        let container_path = self.req_string(&vf, "path", "a sandbox-relative directory name");
        if let Some(p) = &container_path
            && !valid_volume_path(p)
        {
            self.err(
                vf.key_line("path"),
                &vf.path("path"),
                Some(p),
                "is not a valid volume path; expected a sandbox-relative name matching \
                     [a-zA-Z0-9]+([a-zA-Z0-9_-]*)*",
            );
        }
        let volume_type = self.req(&vf, "type", "ROOT or MOUNT").and_then(|n| {
            self.choice(
                n,
                &vf.path("type"),
                "a volume type",
                &[("ROOT", VolumeType::Root), ("MOUNT", VolumeType::Mount)],
                "",
            )
        });
        let size = self
            .req(&vf, "size", "a size in MB ≥ 1")
            .and_then(|n| self.integer(n, &vf.path("size"), 1, i64::MAX, "a size in MB ≥ 1"))
            .and_then(|n| u64::try_from(n).ok());
        let mut profiles: Vec<String> = Vec::new();
        let mut profiles_ok = true;
        if let Some(pnode) = vf.get("profiles") {
            let ppath = vf.path("profiles");
            match &pnode.kind {
                NodeKind::Seq(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let ipath = format!("{ppath}[{i}]");
                        match &item.kind {
                            NodeKind::Null => {}
                            NodeKind::Scalar { text, .. } => {
                                if !valid_profile(text) {
                                    self.err(
                                        item.line,
                                        &ipath,
                                        Some(text),
                                        "is not a valid profile name; expected 1 to 128 of \
                                         a-z, A-Z, 0-9, '_', '.', '-'",
                                    );
                                    profiles_ok = false;
                                } else if profiles.contains(text) {
                                    self.err(
                                        item.line,
                                        &ipath,
                                        Some(text),
                                        "is listed twice; profiles must be unique",
                                    );
                                    profiles_ok = false;
                                } else {
                                    profiles.push(text.clone());
                                }
                            }
                            _ => {
                                self.wrong_kind(item, &ipath, "a profile name");
                                profiles_ok = false;
                            }
                        }
                    }
                }
                _ => {
                    self.wrong_kind(pnode, &ppath, "a list of profile names");
                    profiles_ok = false;
                }
            }
        }
        if !profiles.is_empty() && volume_type == Some(VolumeType::Root) {
            self.err(
                vf.key_line("profiles"),
                &vf.path("profiles"),
                None,
                "are only allowed on MOUNT volumes; this volume is ROOT",
            );
            profiles_ok = false;
        }
        let container_path = container_path.filter(|p| valid_volume_path(p))?;
        if !profiles_ok {
            return None;
        }
        Some(VolumeSpec {
            volume_type: volume_type?,
            container_path,
            size: size?,
            profiles,
            role: roles.role.clone(),
            pre_reserved_role: roles.pre_reserved_role.clone(),
            principal: roles.principal.clone(),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Tasks

    fn task(
        &mut self,
        pod_type: &str,
        name: &str,
        key: &Node,
        node: &Node,
        roles: &Roles,
        resource_sets: &[(String, ResourceSet)],
    ) -> Option<TaskSpec> {
        let path = join(&join("pods", pod_type), &format!("tasks.{name}"));
        let f = self.fields(node, &path, key.line, TASK_KEYS, true)?;
        let goal = self
            .req(&f, "goal", "RUNNING, FINISH or ONCE")
            .and_then(|n| {
                self.choice(
                    n,
                    &f.path("goal"),
                    "a goal",
                    &[
                        ("RUNNING", Goal::Running),
                        ("FINISH", Goal::Finish),
                        ("ONCE", Goal::Once),
                    ],
                    "",
                )
            });
        let essential = self.opt_bool(&f, "essential", true);
        let cmd = self.req_string(&f, "cmd", "a shell command");

        let mut environment = StringMap::new();
        if let Some(env_node) = f.get("env") {
            let env_path = f.path("env");
            if let Some(entries) = self.entries(env_node, &env_path) {
                for (k, knode, v) in entries {
                    if k.trim().is_empty() {
                        self.err(knode.line, &env_path, None, "has an empty variable name");
                        continue;
                    }
                    match &v.kind {
                        NodeKind::Null => {
                            environment.insert(k.to_owned(), String::new());
                        }
                        NodeKind::Scalar { text, .. } => {
                            environment.insert(k.to_owned(), text.clone());
                        }
                        _ => self.wrong_kind(v, &join(&env_path, k), "a value (string or number)"),
                    }
                }
            }
        }
        for (k, v) in self.taskcfg(pod_type) {
            environment.insert(k, v);
        }

        let task_labels = match f.get("labels") {
            Some(n) => self.labels(n, &f.path("labels")),
            None => StringMap::new(),
        };
        let config_files = self.configs(&f);

        let resource_set = if f.written("resource-set") {
            let inline: Vec<&str> = INLINE_RESOURCE_KEYS
                .iter()
                .copied()
                .filter(|k| f.written(k))
                .collect();
            if !inline.is_empty() {
                self.err(
                    f.key_line("resource-set"),
                    &f.path("resource-set"),
                    None,
                    format!(
                        "may not be combined with resources declared on the task ({}); declare \
                         them in the resource set",
                        inline.join(", ")
                    ),
                );
                None
            } else {
                let id = self.req_string(
                    &f,
                    "resource-set",
                    "the id of one of the pod's resource-sets",
                );
                id.and_then(|id| {
                    let found = resource_sets
                        .iter()
                        .find(|(sid, _)| *sid == id)
                        .map(|(_, s)| s.clone());
                    if found.is_none() {
                        let known: Vec<&str> =
                            resource_sets.iter().map(|(s, _)| s.as_str()).collect();
                        let allowed = if known.is_empty() {
                            "the pod has no resource-sets".to_owned()
                        } else {
                            format!("allowed: {}", known.join(", "))
                        };
                        self.err(
                            f.key_line("resource-set"),
                            &f.path("resource-set"),
                            Some(&id),
                            format!("is not a resource set of pod {pod_type}; {allowed}"),
                        );
                    }
                    found
                })
            }
        } else {
            self.resources(&f, format!("{name}-resource-set"), roles, pod_type)
        };

        let health_check_spec = f.get("health-check").and_then(|n| {
            let hf = self.fields(
                n,
                &f.path("health-check"),
                f.key_line("health-check"),
                HEALTH_KEYS,
                true,
            )?;
            let command = self.req_string(&hf, "cmd", "a shell command");
            let secs = "seconds ≥ 0";
            let interval = self.req(&hf, "interval", "seconds ≥ 1").and_then(|n| {
                self.integer(
                    n,
                    &hf.path("interval"),
                    1,
                    i64::from(u32::MAX),
                    "seconds ≥ 1",
                )
            });
            let grace = self.req(&hf, "grace-period", secs).and_then(|n| {
                self.integer(n, &hf.path("grace-period"), 0, i64::from(u32::MAX), secs)
            });
            let max = self
                .req(&hf, "max-consecutive-failures", "an integer ≥ 1")
                .and_then(|n| {
                    self.integer(
                        n,
                        &hf.path("max-consecutive-failures"),
                        1,
                        i64::from(u32::MAX),
                        "an integer ≥ 1",
                    )
                });
            let delay = self
                .req(&hf, "delay", secs)
                .and_then(|n| self.integer(n, &hf.path("delay"), 0, i64::from(u32::MAX), secs));
            let timeout = self.req(&hf, "timeout", "seconds ≥ 1").and_then(|n| {
                self.integer(
                    n,
                    &hf.path("timeout"),
                    1,
                    i64::from(u32::MAX),
                    "seconds ≥ 1",
                )
            });
            Some(HealthCheckSpec {
                command: command?,
                interval: to_u32(interval?),
                grace_period: to_u32(grace?),
                max_consecutive_failures: to_u32(max?),
                delay: to_u32(delay?),
                timeout: to_u32(timeout?),
            })
        });
        let readiness_check_spec = f.get("readiness-check").and_then(|n| {
            let rf = self.fields(
                n,
                &f.path("readiness-check"),
                f.key_line("readiness-check"),
                READINESS_KEYS,
                true,
            )?;
            let command = self.req_string(&rf, "cmd", "a shell command");
            let interval = self.req(&rf, "interval", "seconds ≥ 1").and_then(|n| {
                self.integer(
                    n,
                    &rf.path("interval"),
                    1,
                    i64::from(u32::MAX),
                    "seconds ≥ 1",
                )
            });
            let timeout = self.req(&rf, "timeout", "seconds ≥ 1").and_then(|n| {
                self.integer(
                    n,
                    &rf.path("timeout"),
                    1,
                    i64::from(u32::MAX),
                    "seconds ≥ 1",
                )
            });
            let delay = match rf.get("delay") {
                Some(n) => {
                    self.integer(n, &rf.path("delay"), 0, i64::from(u32::MAX), "seconds ≥ 0")
                }
                None => Some(0),
            };
            Some(ReadinessCheckSpec {
                command: command?,
                interval: to_u32(interval?),
                timeout: to_u32(timeout?),
                delay: to_u32(delay?),
            })
        });
        let discovery_spec = f.get("discovery").and_then(|n| {
            let df = self.fields(
                n,
                &f.path("discovery"),
                f.key_line("discovery"),
                DISCOVERY_KEYS,
                true,
            )?;
            let prefix = self
                .opt_string(&df, "prefix")
                .filter(|s| !s.trim().is_empty());
            if let Some(p) = &prefix {
                self.discovery.push((
                    pod_type.to_owned(),
                    p.clone(),
                    df.key_line("prefix"),
                    df.path("prefix"),
                ));
            }
            let visibility = match df.get("visibility") {
                Some(v) => self.choice(
                    v,
                    &df.path("visibility"),
                    "a visibility",
                    &[
                        ("FRAMEWORK", Visibility::Framework),
                        ("CLUSTER", Visibility::Cluster),
                        ("EXTERNAL", Visibility::External),
                    ],
                    "",
                )?,
                None => Visibility::Cluster,
            };
            Some(DiscoverySpec { prefix, visibility })
        });
        let transport_encryption = self.transport_encryption(&f);
        let kill_grace_period = match f.get("kill-grace-period") {
            Some(n) => self
                .integer(
                    n,
                    &f.path("kill-grace-period"),
                    0,
                    MAX_KILL_GRACE,
                    "seconds from 0 to 3600",
                )
                .map(to_u32),
            None => Some(0),
        };
        let ipc_mode = f.get("ipc-mode").and_then(|n| {
            self.choice(
                n,
                &f.path("ipc-mode"),
                "an IPC mode",
                &[
                    ("PRIVATE", IpcMode::Private),
                    ("SHARE_PARENT", IpcMode::ShareParent),
                ],
                "",
            )
        });
        let shm_size = self
            .opt_integer(&f, "shm-size", 0, i64::from(u32::MAX), "a size in MB ≥ 0")
            .map(to_u32);
        if ipc_mode == Some(IpcMode::ShareParent) && shm_size.is_some() {
            self.err(
                f.key_line("shm-size"),
                &f.path("shm-size"),
                None,
                "may not be set with ipc-mode: SHARE_PARENT (the task uses its parent's /dev/shm)",
            );
        }

        Some(TaskSpec {
            name: name.to_owned(),
            goal: goal?,
            essential,
            resource_set: resource_set?,
            command_spec: CommandSpec {
                value: cmd?,
                environment,
            },
            health_check_spec,
            readiness_check_spec,
            config_files,
            discovery_spec,
            task_labels,
            kill_grace_period: kill_grace_period?,
            transport_encryption,
            ipc_mode,
            shm_size,
        })
    }

    /// `TASKCFG_ALL_<K>` and `TASKCFG_<POD>_<K>` entries of the environment for a pod type
    /// (pod-specific ones win).
    fn taskcfg(&self, pod_type: &str) -> Vec<(String, String)> {
        let pod_prefix = format!("TASKCFG_{}_", pod_type.to_uppercase().replace('-', "_"));
        let mut out: Vec<(String, String)> = Vec::new();
        for prefix in ["TASKCFG_ALL_", pod_prefix.as_str()] {
            for (k, v) in self.env {
                if let Some(name) = k.strip_prefix(prefix)
                    && !name.is_empty()
                {
                    out.push((name.to_owned(), v.clone()));
                }
            }
        }
        out
    }

    fn configs(&mut self, f: &Fields<'_>) -> Vec<ConfigFileSpec> {
        let mut out = Vec::new();
        let Some(node) = f.get("configs") else {
            return out;
        };
        let path = f.path("configs");
        let Some(entries) = self.entries(node, &path) else {
            return out;
        };
        for (name, k, v) in entries {
            let cpath = join(&path, name);
            let Some(cf) = self.fields(v, &cpath, k.line, CONFIG_KEYS, true) else {
                continue;
            };
            let template = self.req_string(&cf, "template", "a template file relative to the spec");
            let dest = self.req_string(&cf, "dest", "a destination relative to the sandbox");
            let (Some(template), Some(dest)) = (template, dest) else {
                continue;
            };
            let full = if template.starts_with('/') {
                template.clone()
            } else {
                format!("{}{}", self.spec_dir, template.trim_start_matches("./"))
            };
            match self.files.read(&full) {
                Ok(Some(content)) => out.push(ConfigFileSpec {
                    name: name.to_owned(),
                    relative_path: dest,
                    template_content: content,
                }),
                Ok(None) => self.err(
                    cf.key_line("template"),
                    &cf.path("template"),
                    Some(&template),
                    format!("was not found (looked for {full})"),
                ),
                Err(e) => self.err(
                    cf.key_line("template"),
                    &cf.path("template"),
                    Some(&template),
                    format!("could not be read ({full}): {e}"),
                ),
            }
        }
        out
    }

    fn transport_encryption(&mut self, f: &Fields<'_>) -> Vec<TransportEncryptionSpec> {
        let mut out: Vec<TransportEncryptionSpec> = Vec::new();
        let Some(node) = f.get("transport-encryption") else {
            return out;
        };
        let path = f.path("transport-encryption");
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_kind(node, &path, "a list of {name, type} entries");
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let Some(tf) = self.fields(item, &ipath, item.line, TLS_KEYS, true) else {
                continue;
            };
            let name = self.req_string(&tf, "name", "an artifact name");
            let kind = self.req(&tf, "type", "TLS or KEYSTORE").and_then(|n| {
                self.choice(
                    n,
                    &tf.path("type"),
                    "a transport encryption type",
                    &[
                        ("TLS", TransportEncryptionType::Tls),
                        ("KEYSTORE", TransportEncryptionType::Keystore),
                    ],
                    "",
                )
            });
            if let (Some(name), Some(kind)) = (name, kind) {
                if out.iter().any(|o| o.name == name) {
                    self.err(
                        tf.key_line("name"),
                        &tf.path("name"),
                        Some(&name),
                        "is used twice; artifact names must be unique within a task",
                    );
                    continue;
                }
                out.push(TransportEncryptionSpec { name, kind });
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------------
    // Plans

    fn plans(&mut self, node: &Node, line: usize, pods: &[WrittenPod]) -> Vec<PlanSpec> {
        let mut out = Vec::new();
        let Some(entries) = self.entries(node, "plans") else {
            return out;
        };
        if entries.is_empty() {
            return out;
        }
        if !entries.iter().any(|(name, _, _)| *name == "deploy") {
            let names: Vec<&str> = entries.iter().map(|(n, _, _)| *n).collect();
            self.err(
                line,
                "plans",
                None,
                format!(
                    "No deploy plan provided; a plans section must define a plan named deploy \
                     (found: {})",
                    names.join(", ")
                ),
            );
        }
        for (name, k, v) in entries {
            let ppath = join("plans", name);
            let Some(pf) = self.fields(v, &ppath, k.line, PLAN_KEYS, true) else {
                continue;
            };
            let strategy = match pf.get("strategy") {
                Some(n) => self.choice(
                    n,
                    &pf.path("strategy"),
                    "a plan strategy",
                    &[
                        ("serial", PlanStrategy::Serial),
                        ("parallel", PlanStrategy::Parallel),
                    ],
                    " (canary strategies are only allowed on phases)",
                ),
                None => Some(PlanStrategy::Serial),
            };
            let mut phases = Vec::new();
            if let Some(phases_node) = self.req(&pf, "phases", "a mapping of phases") {
                let phases_path = pf.path("phases");
                if let Some(phase_entries) = self.entries(phases_node, &phases_path) {
                    if phase_entries.is_empty() {
                        self.err(
                            pf.key_line("phases"),
                            &phases_path,
                            None,
                            "is empty; a plan needs at least one phase",
                        );
                    }
                    for (phase_name, pk, pv) in phase_entries {
                        if let Some(phase) = self.phase(phase_name, pk, pv, &phases_path, pods) {
                            phases.push(phase);
                        }
                    }
                }
            }
            if let Some(strategy) = strategy {
                out.push(PlanSpec {
                    name: name.to_owned(),
                    strategy,
                    phases,
                });
            }
        }
        out
    }

    fn phase(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
        phases_path: &str,
        pods: &[WrittenPod],
    ) -> Option<PhaseSpec> {
        let path = join(phases_path, name);
        let f = self.fields(node, &path, key.line, PHASE_KEYS, true)?;
        let pod_name = self.req_string(&f, "pod", "the pod type the phase deploys");
        let pod = pod_name.as_ref().and_then(|p| {
            let found = pods.iter().find(|s| &s.name == p);
            if found.is_none() {
                let known: Vec<&str> = pods.iter().map(|s| s.name.as_str()).collect();
                self.err(
                    f.key_line("pod"),
                    &f.path("pod"),
                    Some(p),
                    format!("is not a pod of this service; pods: {}", known.join(", ")),
                );
            }
            found
        });
        let strategy = match f.get("strategy") {
            Some(n) => self.choice(
                n,
                &f.path("strategy"),
                "a phase strategy",
                &[
                    ("serial", PhaseStrategy::Serial),
                    ("parallel", PhaseStrategy::Parallel),
                    ("serial-canary", PhaseStrategy::SerialCanary),
                    ("canary", PhaseStrategy::SerialCanary),
                    ("parallel-canary", PhaseStrategy::ParallelCanary),
                ],
                "",
            ),
            None => Some(PhaseStrategy::Serial),
        };
        let steps = match f.get("steps") {
            Some(n) => Some(self.steps(n, &f.path("steps"), f.key_line("steps"), pod)?),
            None => None,
        };
        Some(PhaseSpec {
            name: name.to_owned(),
            pod: pod_name?,
            strategy: strategy?,
            steps,
        })
    }

    fn steps(
        &mut self,
        node: &Node,
        path: &str,
        line: usize,
        pod: Option<&WrittenPod>,
    ) -> Option<Vec<StepsEntry>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_kind(node, path, "a list of entries like \"- default: [[task]]\"");
            return None;
        };
        let mut out: Vec<StepsEntry> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            let entries = match &item.kind {
                NodeKind::Map(entries) if entries.len() == 1 => entries,
                _ => {
                    self.err(
                        item.line,
                        &ipath,
                        None,
                        "expected a one-key mapping: a pod index or default, then a list of \
                         steps, e.g. \"- default: [[first], [second]]\"",
                    );
                    ok = false;
                    continue;
                }
            };
            let Some((k, v)) = entries.first() else {
                continue;
            };
            let key_text = k.as_scalar().unwrap_or_default().trim().to_owned();
            let epath = format!("{ipath}.{key_text}");
            let key = if key_text == "default" {
                StepsKey::Default
            } else {
                match key_text.parse::<u32>() {
                    Ok(n) => StepsKey::Index(n),
                    Err(_) => {
                        self.err(
                            k.line,
                            &ipath,
                            Some(&key_text),
                            "is not a pod index or default; expected an integer ≥ 0 or default",
                        );
                        ok = false;
                        continue;
                    }
                }
            };
            if out.iter().any(|e| e.key == key) {
                self.err(
                    k.line,
                    &epath,
                    None,
                    "has an entry already; each pod index (and default) may appear once",
                );
                ok = false;
                continue;
            }
            let mut groups = Vec::new();
            let NodeKind::Seq(steps) = &v.kind else {
                self.wrong_kind(v, &epath, "a list of steps like [[first], [second]]");
                ok = false;
                continue;
            };
            for (j, step) in steps.iter().enumerate() {
                let spath = format!("{epath}[{j}]");
                let NodeKind::Seq(tasks) = &step.kind else {
                    self.wrong_kind(step, &spath, "a list of task names like [server]");
                    ok = false;
                    continue;
                };
                if tasks.is_empty() {
                    self.err(
                        step.line,
                        &spath,
                        None,
                        "is an empty step; a step launches at least one task",
                    );
                    ok = false;
                    continue;
                }
                let mut names = Vec::new();
                for task in tasks {
                    let Some(t) = task.as_scalar() else {
                        self.wrong_kind(task, &spath, "a task name");
                        ok = false;
                        continue;
                    };
                    if let Some(pod) = pod
                        && !pod.tasks.iter().any(|known| known == t)
                    {
                        let known: Vec<&str> = pod.tasks.iter().map(String::as_str).collect();
                        self.err(
                            task.line,
                            &spath,
                            Some(t),
                            format!(
                                "is not a task of pod {}: step refers to a task that does not \
                                     exist; tasks: {}",
                                pod.name,
                                known.join(", ")
                            ),
                        );
                        ok = false;
                        continue;
                    }
                    names.push(t.to_owned());
                }
                groups.push(names);
            }
            out.push(StepsEntry { key, tasks: groups });
        }
        if let Some(pod) = pod
            && let Some(count) = pod.count
            && ok
            && !out.iter().any(|e| e.key == StepsKey::Default)
        {
            for index in 0..count {
                if !out.iter().any(|e| e.key == StepsKey::Index(index)) {
                    self.err(
                        line,
                        path,
                        None,
                        format!(
                            "has no entry for pod index {index} and no default entry; pod {} has \
                                 {count} instance{}",
                            pod.name,
                            if count == 1 { "" } else { "s" }
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn fmt_num(v: f64) -> String {
    v.to_string()
}

fn valid_volume_path(p: &str) -> bool {
    let mut chars = p.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_profile(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}
