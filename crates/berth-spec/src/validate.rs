//! Configuration update validators: may the service move from the stored target spec to a new
//! candidate spec?
//!
//! Every validator runs on every scheduler start, also when nothing changed and also on the
//! first install (`old` = `None`). Callers decide what the errors mean: any fatal error stops
//! the scheduler; errors on a first install stop it too; otherwise the previous target stays in
//! force and the errors are shown on the deploy plan.

use std::fmt;

use crate::LimitValue;
use crate::model::{PodSpec, ResourceSpec, ServiceSpec, VolumeSpec, VolumeType};
use crate::placement::PlacementRule;

/// One reason a configuration (change) is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValidationError {
    /// The field or object concerned, e.g. `PodSpec[setname:hello]`.
    pub field: String,
    /// The previous value, for errors about a change; `None` for errors about a value.
    pub old_value: Option<String>,
    /// The new value.
    pub new_value: String,
    /// What is wrong.
    pub message: String,
    /// Whether the scheduler must stop rather than keep the previous configuration.
    pub fatal: bool,
}

impl ConfigValidationError {
    /// An error about a value.
    #[must_use]
    pub fn value(
        field: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigValidationError {
            field: field.into(),
            old_value: None,
            new_value: value.into(),
            message: message.into(),
            fatal: false,
        }
    }

    /// An error about a change from `old` to `new`.
    #[must_use]
    pub fn transition(
        field: impl Into<String>,
        old: impl Into<String>,
        new: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigValidationError {
            field: field.into(),
            old_value: Some(old.into()),
            new_value: new.into(),
            message: message.into(),
            fatal: false,
        }
    }

    /// The same error, marked fatal.
    #[must_use]
    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }
}

impl fmt::Display for ConfigValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.old_value {
            Some(old) => write!(
                f,
                "Field: '{}'; Transition: '{}' => '{}'; Message: '{}'; Fatal: {}",
                self.field, old, self.new_value, self.message, self.fatal
            ),
            None => write!(
                f,
                "Field: '{}'; Value: '{}'; Message: '{}'; Fatal: {}",
                self.field, self.new_value, self.message, self.fatal
            ),
        }
    }
}

/// A named update rule.
pub trait Validator {
    /// The rule's name, e.g. `PodSpecsCannotShrink`.
    fn name(&self) -> &'static str;
    /// The rule's findings for a move from `old` (none on first install) to `new`.
    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError>;
}

/// The service name may not contain `__` (task ids use it as a separator).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNameCannotContainDoubleUnderscores;

impl Validator for ServiceNameCannotContainDoubleUnderscores {
    fn name(&self) -> &'static str {
        "ServiceNameCannotContainDoubleUnderscores"
    }

    fn validate(
        &self,
        _old: Option<&ServiceSpec>,
        new: &ServiceSpec,
    ) -> Vec<ConfigValidationError> {
        if new.name.contains("__") {
            vec![ConfigValidationError::value(
                "ServiceName",
                &new.name,
                format!(
                    "Service name may not contain double underscores: {}",
                    new.name
                ),
            )]
        } else {
            Vec::new()
        }
    }
}

/// On first install, the service name without slashes may not exceed 63 characters (one DNS
/// label). On updates a long name is tolerated (it was accepted before).
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceNameCannotBreakDNS;

impl Validator for ServiceNameCannotBreakDNS {
    fn name(&self) -> &'static str {
        "ServiceNameCannotBreakDNS"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let length = new.name.chars().filter(|c| *c != '/').count();
        if old.is_none() && length > 63 {
            vec![ConfigValidationError::value(
                "service.name",
                &new.name,
                format!(
                    "Service name (without slashes) has {length} characters; it may not exceed 63 \
                     characters for service DNS names to work"
                ),
            )]
        } else {
            Vec::new()
        }
    }
}

/// Pod types may not disappear (unless the old spec allowed decommissioning), and counts may
/// not go down (unless the new spec allows decommissioning).
#[derive(Debug, Clone, Copy, Default)]
pub struct PodSpecsCannotShrink;

impl Validator for PodSpecsCannotShrink {
    fn name(&self) -> &'static str {
        "PodSpecsCannotShrink"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let Some(old) = old else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for old_pod in &old.pod_specs {
            match new.pod(&old_pod.pod_type) {
                None if !old_pod.allow_decommission => {
                    errors.push(ConfigValidationError::transition(
                        format!("PodSpec[name:{}]", old_pod.pod_type),
                        old_pod.count.to_string(),
                        "null",
                        format!(
                            "New config is missing PodSpec named '{}' (expected present with >= {} \
                             tasks); removing a pod type needs allow-decommission: true in the \
                             current config",
                            old_pod.pod_type, old_pod.count
                        ),
                    ));
                }
                Some(new_pod) if new_pod.count < old_pod.count && !new_pod.allow_decommission => {
                    errors.push(ConfigValidationError::transition(
                        format!("PodSpec[setname:{}]", new_pod.pod_type),
                        old_pod.count.to_string(),
                        new_pod.count.to_string(),
                        format!(
                            "New config's PodSpec named '{}' has {} tasks, expected >={} tasks",
                            new_pod.pod_type, new_pod.count, old_pod.count
                        ),
                    ));
                }
                _ => {}
            }
        }
        errors
    }
}

/// The persistent volumes of an existing task (and of an existing pod) may not change: type,
/// size, path and profiles. Checked when the service role is unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskVolumesCannotChange;

/// The comparable part of a volume.
fn volume_key(v: &VolumeSpec) -> (&'static str, &str, u64, Vec<&str>) {
    let mut profiles: Vec<&str> = v.profiles.iter().map(String::as_str).collect();
    profiles.sort_unstable();
    (
        volume_type_name(v.volume_type),
        v.container_path.as_str(),
        v.size,
        profiles,
    )
}

fn volume_type_name(t: VolumeType) -> &'static str {
    match t {
        VolumeType::Root => "ROOT",
        VolumeType::Mount => "MOUNT",
    }
}

fn volumes_equal(a: &[VolumeSpec], b: &[VolumeSpec]) -> bool {
    let mut a: Vec<_> = a.iter().map(volume_key).collect();
    let mut b: Vec<_> = b.iter().map(volume_key).collect();
    a.sort();
    b.sort();
    a == b
}

fn show_volumes(volumes: &[VolumeSpec]) -> String {
    let shown: Vec<String> = volumes
        .iter()
        .map(|v| {
            let kind = volume_type_name(v.volume_type);
            if v.profiles.is_empty() {
                format!("{kind} {} {}MB", v.container_path, v.size)
            } else {
                format!(
                    "{kind} {} {}MB profiles={}",
                    v.container_path,
                    v.size,
                    v.profiles.join("|")
                )
            }
        })
        .collect();
    format!("[{}]", shown.join(", "))
}

impl Validator for TaskVolumesCannotChange {
    fn name(&self) -> &'static str {
        "TaskVolumesCannotChange"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let Some(old) = old else {
            return Vec::new();
        };
        if old.role != new.role {
            return Vec::new();
        }
        let mut errors = Vec::new();
        for old_pod in &old.pod_specs {
            let Some(new_pod) = new.pod(&old_pod.pod_type) else {
                continue;
            };
            if !volumes_equal(&old_pod.volumes, &new_pod.volumes) {
                errors.push(ConfigValidationError::transition(
                    format!("PodVolumes[podname:{}]", new_pod.pod_type),
                    show_volumes(&old_pod.volumes),
                    show_volumes(&new_pod.volumes),
                    "Volumes must be equal.",
                ));
            }
            for old_task in &old_pod.task_specs {
                let Some(new_task) = new_pod.task(&old_task.name) else {
                    continue;
                };
                let (a, b) = (
                    &old_task.resource_set.volume_specifications,
                    &new_task.resource_set.volume_specifications,
                );
                if !volumes_equal(a, b) {
                    errors.push(ConfigValidationError::transition(
                        format!(
                            "TaskVolumes[taskname:{}-{}]",
                            new_pod.pod_type, new_task.name
                        ),
                        show_volumes(a),
                        show_volumes(b),
                        "Volumes must be equal.",
                    ));
                }
            }
        }
        errors
    }
}

/// The service user and the user of every existing pod may not change (files in persistent
/// volumes belong to them). Fatal.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserCannotChange;

impl Validator for UserCannotChange {
    fn name(&self) -> &'static str {
        "UserCannotChange"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let Some(old) = old else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        if old.user != new.user {
            errors.push(
                ConfigValidationError::transition(
                    "user",
                    &old.user,
                    &new.user,
                    "Service user must remain the same across deployments.",
                )
                .fatal(),
            );
        }
        for new_pod in &new.pod_specs {
            let Some(old_pod) = old.pod(&new_pod.pod_type) else {
                continue;
            };
            if old_pod.user != new_pod.user && old.user == new.user {
                errors.push(
                    ConfigValidationError::transition(
                        "user",
                        &old_pod.user,
                        &new_pod.user,
                        format!(
                            "User for old pod type {} must remain the same across deployments.",
                            new_pod.pod_type
                        ),
                    )
                    .fatal(),
                );
            }
        }
        errors
    }
}

/// Whether a pod uses ports on the host (host networking or a port-mapping network).
fn uses_host_ports(pod: &PodSpec) -> bool {
    pod.networks.is_empty() || pod.networks.iter().any(|n| supports_port_mapping(&n.name))
}

fn supports_port_mapping(network: &str) -> bool {
    network == "mesos-bridge"
}

fn show_networks(pod: &PodSpec) -> String {
    let names: Vec<&str> = pod.networks.iter().map(|n| n.name.as_str()).collect();
    format!("[{}]", names.join(", "))
}

/// A pod may not move between networking that uses host ports (host, port mapping) and a
/// virtual network without port mapping; port mappings need a network that supports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodSpecsCannotChangeNetworkRegime;

impl Validator for PodSpecsCannotChangeNetworkRegime {
    fn name(&self) -> &'static str {
        "PodSpecsCannotChangeNetworkRegime"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let mut errors = Vec::new();
        for new_pod in &new.pod_specs {
            let offending: Vec<&str> = new_pod
                .networks
                .iter()
                .filter(|n| {
                    !supports_port_mapping(&n.name)
                        && (!n.host_ports.is_empty() || !n.container_ports.is_empty())
                })
                .map(|n| n.name.as_str())
                .collect();
            if !offending.is_empty() {
                errors.push(ConfigValidationError::value(
                    format!("PodSpec[name:{}]", new_pod.pod_type),
                    show_networks(new_pod),
                    format!(
                        "Pod {} maps ports on virtual network(s) {}, which do not support port \
                         mapping.",
                        new_pod.pod_type,
                        offending.join(", ")
                    ),
                ));
            }
            let Some(old_pod) = old.and_then(|o| o.pod(&new_pod.pod_type)) else {
                continue;
            };
            let (before, after) = (uses_host_ports(old_pod), uses_host_ports(new_pod));
            if before != after {
                errors.push(ConfigValidationError::transition(
                    format!("PodSpec[name:{}]", new_pod.pod_type),
                    show_networks(old_pod),
                    show_networks(new_pod),
                    format!(
                        "New config has pod {} moving networks from {} to {}, changing its host \
                         ports requirements from {} to {}, not allowed.",
                        new_pod.pod_type,
                        show_networks(old_pod),
                        show_networks(new_pod),
                        before,
                        after
                    ),
                ));
            }
        }
        errors
    }
}

/// The `pre-reserved-role` of an existing pod may not change.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreReservationCannotChange;

impl Validator for PreReservationCannotChange {
    fn name(&self) -> &'static str {
        "PreReservationCannotChange"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        let Some(old) = old else {
            return Vec::new();
        };
        let mut errors = Vec::new();
        for old_pod in &old.pod_specs {
            let Some(new_pod) = new.pod(&old_pod.pod_type) else {
                continue;
            };
            if old_pod.pre_reserved_role != new_pod.pre_reserved_role {
                errors.push(ConfigValidationError::transition(
                    format!("PodSpec[pre-reserved-role:{}]", old_pod.pre_reserved_role),
                    &old_pod.pre_reserved_role,
                    &new_pod.pre_reserved_role,
                    format!(
                        "New config has changed the pre-reserved-role of PodSpec named '{}' \
                         (expected it to stay '{}')",
                        old_pod.pod_type, old_pod.pre_reserved_role
                    ),
                ));
            }
        }
        errors
    }
}

/// Every placement rule must parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlacementRuleIsValid;

impl Validator for PlacementRuleIsValid {
    fn name(&self) -> &'static str {
        "PlacementRuleIsValid"
    }

    fn validate(
        &self,
        _old: Option<&ServiceSpec>,
        new: &ServiceSpec,
    ) -> Vec<ConfigValidationError> {
        new.pod_specs
            .iter()
            .filter_map(|pod| match &pod.placement_rule {
                Some(PlacementRule::Invalid { source, error }) => {
                    Some(ConfigValidationError::value(
                        "PlacementRule",
                        source,
                        format!(
                            "The PlacementRule for PodSpec '{}' had invalid constraints: {error}",
                            pod.pod_type
                        ),
                    ))
                }
                _ => None,
            })
            .collect()
    }
}

/// Resource limits may not be below the requested resources.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResourceLimitsMustExceedRequestedResources;

impl Validator for ResourceLimitsMustExceedRequestedResources {
    fn name(&self) -> &'static str {
        "ResourceLimitsMustExceedRequestedResources"
    }

    fn validate(
        &self,
        _old: Option<&ServiceSpec>,
        new: &ServiceSpec,
    ) -> Vec<ConfigValidationError> {
        let mut errors = Vec::new();
        for pod in &new.pod_specs {
            for task in &pod.task_specs {
                let set = &task.resource_set;
                let Some(limits) = &set.resource_limits else {
                    continue;
                };
                for (what, limit, request) in [
                    ("cpus", limits.cpus, set.scalar("cpus")),
                    ("memory", limits.memory, set.scalar("mem")),
                ] {
                    if let Some(LimitValue::Amount(amount)) = limit
                        && amount < request
                    {
                        errors.push(ConfigValidationError::value(
                            format!("ResourceLimits[{}-{}:{what}]", pod.pod_type, task.name),
                            amount.to_string(),
                            format!(
                                "The {what} limit of task {}-{} ({amount}) is below its \
                                     request ({request}); a limit must be at least the request \
                                     or unlimited.",
                                pod.pod_type, task.name
                            ),
                        ));
                    }
                }
            }
        }
        errors
    }
}

/// Once a service has a region, it may not change.
#[derive(Debug, Clone, Copy, Default)]
pub struct RegionCannotChange;

impl Validator for RegionCannotChange {
    fn name(&self) -> &'static str {
        "RegionCannotChange"
    }

    fn validate(&self, old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
        match old.and_then(|o| o.region.as_deref()) {
            Some(region) if new.region.as_deref() != Some(region) => {
                vec![ConfigValidationError::transition(
                    "region",
                    region,
                    new.region.as_deref().unwrap_or("null"),
                    "Region for old service must remain the same across deployments.",
                )]
            }
            _ => Vec::new(),
        }
    }
}

/// All validators, in the order they run.
#[must_use]
pub fn default_validators() -> Vec<Box<dyn Validator>> {
    vec![
        Box::new(ServiceNameCannotContainDoubleUnderscores),
        Box::new(ServiceNameCannotBreakDNS),
        Box::new(PodSpecsCannotShrink),
        Box::new(TaskVolumesCannotChange),
        Box::new(UserCannotChange),
        Box::new(PodSpecsCannotChangeNetworkRegime),
        Box::new(PreReservationCannotChange),
        Box::new(PlacementRuleIsValid),
        Box::new(ResourceLimitsMustExceedRequestedResources),
        Box::new(RegionCannotChange),
    ]
}

/// Runs every validator (always all of them) and returns all findings.
#[must_use]
pub fn validate_update(old: Option<&ServiceSpec>, new: &ServiceSpec) -> Vec<ConfigValidationError> {
    default_validators()
        .iter()
        .flat_map(|v| v.validate(old, new))
        .collect()
}

/// Whether a task running with the `old` pod spec is already up to date with `new`: the specs
/// are equal ignoring `count`, the placement rule, `allow-decommission`, and the role and
/// pre-reserved role of resources and volumes. Such tasks only get their configuration id
/// updated; others are relaunched.
#[must_use]
pub fn pod_specs_equivalent_for_update(old: &PodSpec, new: &PodSpec) -> bool {
    normalized(old) == normalized(new)
}

/// What differs between two pod specs where [`pod_specs_equivalent_for_update`] looks, one
/// line per changed value: `task-specs[server].resource-set.resource-specifications[cpus]
/// .value.scalar.value: 0.1 → 0.3` (list items are named by their `name`, `type` or
/// `port-name` when they have one).
#[must_use]
pub fn pod_spec_changes(old: &PodSpec, new: &PodSpec) -> Vec<String> {
    let (Ok(old), Ok(new)) = (
        serde_json::to_value(normalized(old)),
        serde_json::to_value(normalized(new)),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    json_changes("", &old, &new, &mut out);
    out
}

/// The name a list item goes by in a change's path.
fn item_key(v: &serde_json::Value, index: usize) -> String {
    ["name", "port-name", "type", "container-path"]
        .iter()
        .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
        .map_or_else(|| index.to_string(), str::to_owned)
}

fn json_changes(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let null = Value::Null;
                json_changes(
                    &join(k),
                    a.get(k).unwrap_or(&null),
                    b.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let keyed = |list: &[Value]| -> Vec<(String, Value)> {
                list.iter()
                    .enumerate()
                    .map(|(i, v)| (item_key(v, i), v.clone()))
                    .collect()
            };
            let (a, b) = (keyed(a), keyed(b));
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in &a {
                seen.insert(k.clone());
                let other = b.iter().find(|(kb, _)| kb == k).map(|(_, v)| v);
                json_changes(
                    &format!("{path}[{k}]"),
                    v,
                    other.unwrap_or(&Value::Null),
                    out,
                );
            }
            for (k, v) in b.iter().filter(|(k, _)| !seen.contains(k)) {
                json_changes(&format!("{path}[{k}]"), &Value::Null, v, out);
            }
        }
        (a, b) => out.push(format!("{path}: {} → {}", short_json(a), short_json(b))),
    }
}

/// A value as a change line shows it (long ones cut).
fn short_json(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::Null => "(none)".to_owned(),
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn normalized(pod: &PodSpec) -> PodSpec {
    let mut pod = pod.clone();
    pod.count = 0;
    pod.placement_rule = None;
    pod.allow_decommission = false;
    let clear_volume = |v: &mut VolumeSpec| {
        v.role.clear();
        v.pre_reserved_role.clear();
    };
    pod.volumes.iter_mut().for_each(clear_volume);
    for task in &mut pod.task_specs {
        task.resource_set
            .volume_specifications
            .iter_mut()
            .for_each(clear_volume);
        for r in &mut task.resource_set.resource_specifications {
            match r {
                ResourceSpec::Scalar(s) => {
                    s.role.clear();
                    s.pre_reserved_role.clear();
                }
                ResourceSpec::Port(p) => {
                    p.role.clear();
                    p.pre_reserved_role.clear();
                }
            }
        }
    }
    pod
}
