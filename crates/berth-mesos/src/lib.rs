//! The Mesos v1 vocabulary berth speaks: ids, resources, offers, operations, task infos and
//! statuses. Offer evaluation, the local, simulated and Mesos clusters, and the state store all
//! use these types.
//!
//! These types use the Mesos v1 JSON field names (snake_case, ids as `{"value": …}`, enums as
//! strings such as `"TASK_RUNNING"`, empty repeated fields omitted), so that what berth stores
//! and what a Mesos master speaks map one to one. Only the subset berth uses is modelled.

#![warn(missing_docs)]

pub mod proto;
pub mod recordio;
pub mod scheduler;

/// A string of up to 24 bytes kept inline (no allocation), longer ones on the heap: the short
/// names and values a stored TaskInfo holds by the dozen (labels, environment variables,
/// roles and principals).
pub use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        pub struct $name {
            /// The id text.
            pub value: String,
        }

        impl $name {
            /// Wraps an id text.
            #[must_use]
            pub fn new(value: impl Into<String>) -> Self {
                Self { value: value.into() }
            }

            /// The id text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.value
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.value)
            }
        }
    };
}

id_type!(
    /// `FrameworkID`.
    FrameworkId
);
id_type!(
    /// `AgentID` (`slave_id` in old protos).
    AgentId
);
id_type!(
    /// `OfferID`.
    OfferId
);
id_type!(
    /// `TaskID`: `<service>__<task-name>__<uuid>`.
    TaskId
);
id_type!(
    /// `ExecutorID`: `<service>__<pod-type>__<uuid>`.
    ExecutorId
);

fn is_false(b: &bool) -> bool {
    !*b
}

/// `Value.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValueType {
    /// A number.
    Scalar,
    /// Inclusive integer ranges.
    Ranges,
    /// A set of strings.
    Set,
    /// A text (attributes only).
    Text,
}

/// `Value.Scalar`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    /// The amount.
    pub value: f64,
}

/// `Value.Range` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Range {
    /// First value.
    pub begin: u64,
    /// Last value (inclusive).
    pub end: u64,
}

/// `Value.Ranges`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ranges {
    /// The ranges.
    #[serde(default, deserialize_with = "exact_vec")]
    pub range: Vec<Range>,
}

/// `Value.Set`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Set {
    /// The items.
    #[serde(default)]
    pub item: Vec<String>,
}

/// `Value.Text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// The text.
    pub value: String,
}

/// `Label`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    /// Key: berth's own keys are constants, so they are borrowed rather than copied (also
    /// when read, see [`label_key`]).
    #[serde(deserialize_with = "de_label_key")]
    pub key: Cow<'static, str>,
    /// Value.
    #[serde(default)]
    pub value: CompactString,
}

/// `Labels`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Labels {
    /// The labels in order.
    #[serde(default, deserialize_with = "exact_vec")]
    pub labels: Vec<Label>,
}

impl Labels {
    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }

    /// Sets `key` to `value`, replacing an existing label with that key.
    pub fn set(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<CompactString>) {
        let key = key.into();
        let value = value.into();
        if let Some(l) = self.labels.iter_mut().find(|l| l.key == key) {
            l.value = value;
        } else {
            self.labels.push(Label { key, value });
        }
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.labels.len();
        self.labels.retain(|l| l.key != key);
        before != self.labels.len()
    }

    /// Whether there are no labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// A label key read from a stored record: one of berth's own keys borrowed from its constant
/// (a restart reads hundreds of thousands of them), any other key owned.
#[must_use]
pub fn label_key(key: String) -> Cow<'static, str> {
    const KNOWN: [&str; 11] = [
        RESOURCE_ID_LABEL,
        FRAMEWORK_ID_LABEL,
        task_labels::TARGET_CONFIGURATION,
        task_labels::TASK_TYPE,
        task_labels::INDEX,
        task_labels::GOAL_STATE,
        task_labels::OFFER_HOSTNAME,
        task_labels::OFFER_ATTRIBUTES,
        task_labels::OFFER_ZONE,
        task_labels::OFFER_REGION,
        task_labels::PERMANENTLY_FAILED,
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == key)
        .map_or(Cow::Owned(key), Cow::Borrowed)
}

fn de_label_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    String::deserialize(d).map(label_key)
}

/// Reservation label holding the reservation's unique id.
pub const RESOURCE_ID_LABEL: &str = "resource_id";
/// Reservation label holding the framework id.
pub const FRAMEWORK_ID_LABEL: &str = "framework_id";

/// `Resource.ReservationInfo.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationType {
    /// Reserved by the operator in the agent's configuration.
    Static,
    /// Reserved by a framework with RESERVE.
    Dynamic,
}

/// `Resource.ReservationInfo` (refinement format: a stack, the last entry is current).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReservationInfo {
    /// STATIC or DYNAMIC.
    #[serde(rename = "type")]
    pub kind: ReservationType,
    /// Role the resource is reserved for.
    pub role: CompactString,
    /// Principal that reserved it (dynamic reservations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<CompactString>,
    /// Labels; berth sets `resource_id` and `framework_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<LabelsHash>,
}

/// A resource's reservation stack (the last entry is current), shared between copies.
///
/// One evaluation hands each new reserved resource to its RESERVE (and CREATE) operation, the
/// stored TaskInfo and the LAUNCH_GROUP; sharing the stack makes each copy one reference count
/// instead of an allocation per role, principal and label. Empty stacks allocate nothing.
/// Serialized as the plain list.
#[derive(Debug, Clone, Default)]
pub struct Reservations(Option<Arc<[ReservationInfo]>>);

impl Reservations {
    /// Adds a reservation on top of the stack (a refinement).
    pub fn push(&mut self, reservation: ReservationInfo) {
        let mut stack = self.0.take().map(|s| s.to_vec()).unwrap_or_default();
        stack.push(reservation);
        *self = stack.into();
    }

    /// Removes the current reservation.
    pub fn pop(&mut self) -> Option<ReservationInfo> {
        let mut stack = self.0.take()?.to_vec();
        let top = stack.pop();
        *self = stack.into();
        top
    }
}

impl std::ops::Deref for Reservations {
    type Target = [ReservationInfo];
    fn deref(&self) -> &[ReservationInfo] {
        self.0.as_deref().unwrap_or_default()
    }
}

/// Changing a reservation in place copies a stack that is still shared.
impl std::ops::DerefMut for Reservations {
    fn deref_mut(&mut self) -> &mut [ReservationInfo] {
        match &mut self.0 {
            Some(stack) => Arc::make_mut(stack),
            None => &mut [],
        }
    }
}

/// The stack in one allocation of its exact size (with the reference counts).
impl From<Vec<ReservationInfo>> for Reservations {
    fn from(stack: Vec<ReservationInfo>) -> Self {
        Self((!stack.is_empty()).then(|| Arc::from(stack)))
    }
}

impl PartialEq for Reservations {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Reservations {}

impl std::hash::Hash for Reservations {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<'a> IntoIterator for &'a Reservations {
    type Item = &'a ReservationInfo;
    type IntoIter = std::slice::Iter<'a, ReservationInfo>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Reservations {
    type Item = &'a mut ReservationInfo;
    type IntoIter = std::slice::IterMut<'a, ReservationInfo>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl Serialize for Reservations {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Reservations {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<ReservationInfo>::deserialize(d).map(Self::from)
    }
}

/// Labels inside a reservation (hashable copy of [`Labels`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct LabelsHash {
    /// The labels in order.
    #[serde(default, deserialize_with = "exact_vec")]
    pub labels: Vec<Label>,
}

impl LabelsHash {
    /// The value of `key`, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }
}

/// `Resource.DiskInfo.Persistence`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Persistence {
    /// Persistence id (unique per role per agent).
    pub id: String,
    /// Principal that created the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// `Volume.Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VolumeMode {
    /// Read-write.
    #[serde(rename = "RW")]
    Rw,
    /// Read-only.
    #[serde(rename = "RO")]
    Ro,
}

/// `Volume` (as used inside `DiskInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Volume {
    /// Path inside the sandbox.
    pub container_path: String,
    /// Access mode.
    pub mode: VolumeMode,
}

/// `Resource.DiskInfo.Source.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DiskSourceType {
    /// A directory that can be split.
    Path,
    /// A whole disk, all or nothing.
    Mount,
}

/// `Resource.DiskInfo.Source.Mount` / `.Path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskRoot {
    /// Where the disk is on the agent.
    pub root: String,
}

/// `Resource.DiskInfo.Source`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DiskSource {
    /// PATH or MOUNT.
    #[serde(rename = "type")]
    pub kind: DiskSourceType,
    /// Mount root (MOUNT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<DiskRoot>,
    /// Path root (PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<DiskRoot>,
    /// Disk profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// `Resource.DiskInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct DiskInfo {
    /// Set on persistent volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    /// Where the volume appears in the sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Volume>,
    /// Set on MOUNT (and PATH) disks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DiskSource>,
}

/// A list read from JSON in an allocation of its exact size: stored TaskInfos are read by the
/// hundred thousand at a restart and kept, and a growing `Vec` leaves up to half its room unused.
fn exact_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut items = Vec::<T>::deserialize(d)?;
    items.shrink_to_fit();
    Ok(items)
}

/// A resource name: the well-known ones borrowed from constants (resources are copied into
/// every operation and TaskInfo that carries them), any other name owned.
#[must_use]
pub fn resource_name(name: &str) -> Cow<'static, str> {
    known_resource_name(name).map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed)
}

fn known_resource_name(name: &str) -> Option<&'static str> {
    ["cpus", "mem", "disk", "ports", "gpus"]
        .into_iter()
        .find(|k| *k == name)
}

fn de_resource_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
    struct Name;
    impl serde::de::Visitor<'_> for Name {
        type Value = Cow<'static, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a resource name")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(resource_name(v))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(known_resource_name(&v).map_or(Cow::Owned(v), Cow::Borrowed))
        }
    }
    d.deserialize_str(Name)
}

/// `Resource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// `cpus`, `mem`, `disk`, `ports`, `gpus` (these borrowed, see [`resource_name`]).
    #[serde(deserialize_with = "de_resource_name")]
    pub name: Cow<'static, str>,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Scalar value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    /// Ranges value (boxed: most resources are scalars, and a stored TaskInfo and every
    /// agent's reservations hold many).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Box<Ranges>>,
    /// Set value (boxed, as `ranges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Box<Set>>,
    /// Reservation stack; empty = unreserved.
    #[serde(default, skip_serializing_if = "<[ReservationInfo]>::is_empty")]
    pub reservations: Reservations,
    /// Disk details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Box<DiskInfo>>,
}

impl Resource {
    /// An unreserved scalar resource.
    #[must_use]
    pub fn scalar(name: &str, value: f64) -> Self {
        Self {
            name: resource_name(name),
            kind: ValueType::Scalar,
            scalar: Some(Scalar { value }),
            ranges: None,
            set: None,
            reservations: Reservations::default(),
            disk: None,
        }
    }

    /// An unreserved ranges resource.
    #[must_use]
    pub fn ranges(name: &str, ranges: Vec<Range>) -> Self {
        Self {
            name: resource_name(name),
            kind: ValueType::Ranges,
            scalar: None,
            ranges: Some(Box::new(Ranges { range: ranges })),
            set: None,
            reservations: Reservations::default(),
            disk: None,
        }
    }

    /// The scalar amount (0 when not a scalar).
    #[must_use]
    pub fn scalar_value(&self) -> f64 {
        self.scalar.map_or(0.0, |s| s.value)
    }

    /// The current (last) reservation, if reserved.
    #[must_use]
    pub fn reservation(&self) -> Option<&ReservationInfo> {
        self.reservations.last()
    }

    /// The `resource_id` label of the current reservation, if any.
    #[must_use]
    pub fn resource_id(&self) -> Option<&str> {
        self.reservation()
            .and_then(|r| r.labels.as_ref())
            .and_then(|l| l.get(RESOURCE_ID_LABEL))
            .filter(|id| !id.is_empty())
    }

    /// The persistence id, if this is a persistent volume.
    #[must_use]
    pub fn persistence_id(&self) -> Option<&str> {
        self.disk
            .as_ref()
            .and_then(|d| d.persistence.as_ref())
            .map(|p| p.id.as_str())
    }

    /// The role the resource is reserved for, or `*` when unreserved.
    #[must_use]
    pub fn role(&self) -> &str {
        self.reservation().map_or("*", |r| r.role.as_str())
    }
}

/// `DomainInfo.FaultDomain.ZoneInfo` / `RegionInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedInfo {
    /// Zone or region name.
    pub name: String,
}

/// `DomainInfo.FaultDomain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultDomain {
    /// Region.
    pub region: NamedInfo,
    /// Zone.
    pub zone: NamedInfo,
}

/// `DomainInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    /// The fault domain, if the agent has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_domain: Option<FaultDomain>,
}

/// `Attribute` of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Scalar value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    /// Ranges value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Ranges>,
    /// Set value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Set>,
    /// Text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
}

impl Attribute {
    /// A text attribute.
    #[must_use]
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: ValueType::Text,
            scalar: None,
            ranges: None,
            set: None,
            text: Some(Text {
                value: value.to_owned(),
            }),
        }
    }
}

/// `Offer`: resources of one agent offered to this framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Offer id.
    pub id: OfferId,
    /// Framework the offer is for.
    pub framework_id: FrameworkId,
    /// Agent offering.
    pub agent_id: AgentId,
    /// Agent hostname.
    pub hostname: String,
    /// Fault domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
    /// Agent attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    /// Offered resources (unreserved, and reserved for this framework's role).
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Executors of this framework already running on the agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
}

impl Offer {
    /// The offer's zone, if the agent has a fault domain.
    #[must_use]
    pub fn zone(&self) -> Option<&str> {
        self.fault_domain().map(|f| f.zone.name.as_str())
    }

    /// The offer's region, if the agent has a fault domain.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.fault_domain().map(|f| f.region.name.as_str())
    }

    fn fault_domain(&self) -> Option<&FaultDomain> {
        self.domain.as_ref().and_then(|d| d.fault_domain.as_ref())
    }
}

/// `Environment.Variable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Name.
    pub name: CompactString,
    /// Value.
    #[serde(default)]
    pub value: CompactString,
}

/// `Environment`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Environment {
    /// Variables in order.
    #[serde(default, deserialize_with = "exact_vec")]
    pub variables: Vec<Variable>,
}

impl Environment {
    /// The value of `name`, if set.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }

    /// Sets `name`, replacing an existing variable with that name.
    pub fn set(&mut self, name: &str, value: impl Into<CompactString>) {
        let value = value.into();
        if let Some(v) = self.variables.iter_mut().find(|v| v.name == name) {
            v.value = value;
        } else {
            self.variables.push(Variable {
                name: name.into(),
                value,
            });
        }
    }
}

/// `CommandInfo.URI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandUri {
    /// Where to fetch from.
    pub value: String,
    /// Mark the fetched file executable.
    #[serde(default, skip_serializing_if = "is_false")]
    pub executable: bool,
    /// Extract archives. Always written: a master reads a missing `extract` as `true`.
    #[serde(default)]
    pub extract: bool,
    /// File name (relative to the sandbox) to fetch into, instead of the URI's base name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

/// `CommandInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandInfo {
    /// Run `value` through `sh -c`.
    #[serde(default)]
    pub shell: bool,
    /// The command.
    #[serde(default)]
    pub value: String,
    /// URIs fetched into the sandbox first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<CommandUri>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// User to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `HealthCheck` (COMMAND type only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Always `COMMAND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The command.
    pub command: CommandInfo,
    /// Seconds before the first check.
    pub delay_seconds: f64,
    /// Seconds between checks.
    pub interval_seconds: f64,
    /// Seconds a check may take.
    pub timeout_seconds: f64,
    /// Failures in a row before the task is killed.
    pub consecutive_failures: u32,
    /// Seconds after start during which failures do not count.
    pub grace_period_seconds: f64,
}

/// `CheckInfo.Command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCommand {
    /// The command.
    pub command: CommandInfo,
}

/// `CheckInfo` (COMMAND type only): berth's readiness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckInfo {
    /// Always `COMMAND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The command.
    pub command: CheckCommand,
    /// Seconds before the first check.
    pub delay_seconds: f64,
    /// Seconds between checks.
    pub interval_seconds: f64,
    /// Seconds a check may take.
    pub timeout_seconds: f64,
}

impl CheckInfo {
    /// A check that runs `command` in a shell: first after `delay` seconds, then every
    /// `interval`, each allowed `timeout`.
    #[must_use]
    pub fn shell(command: &str, delay: f64, interval: f64, timeout: f64) -> Self {
        Self {
            kind: "COMMAND".to_owned(),
            command: CheckCommand {
                command: CommandInfo {
                    shell: true,
                    value: command.to_owned(),
                    ..CommandInfo::default()
                },
            },
            delay_seconds: delay,
            interval_seconds: interval,
            timeout_seconds: timeout,
        }
    }
}

/// `DurationInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationInfo {
    /// Nanoseconds.
    pub nanoseconds: i64,
}

/// `KillPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillPolicy {
    /// Time between SIGTERM and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

/// `Port` of a `DiscoveryInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryPort {
    /// Port number.
    pub number: u32,
    /// Port name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `FRAMEWORK`, `CLUSTER` or `EXTERNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    /// Labels (VIPs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// `Ports` of a `DiscoveryInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiscoveryPorts {
    /// The ports.
    #[serde(default, deserialize_with = "exact_vec")]
    pub ports: Vec<DiscoveryPort>,
}

/// `DiscoveryInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    /// `FRAMEWORK`, `CLUSTER` or `EXTERNAL`.
    pub visibility: String,
    /// Discovery name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<DiscoveryPorts>,
}

/// `Image.Docker`: an image by name (`repository/name:tag`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerImage {
    /// The image name.
    pub name: String,
}

/// `Image.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImageType {
    /// A Docker (OCI) image.
    Docker,
}

/// `Image`: a container image the Mesos containerizer provisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The kind of image.
    #[serde(rename = "type")]
    pub kind: ImageType,
    /// The Docker image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
}

/// `ContainerInfo.MesosInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MesosContainer {
    /// The image the container runs in (none: the host's filesystem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// `NetworkInfo.PortMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Port on the agent.
    pub host_port: u32,
    /// Port inside the container.
    pub container_port: u32,
}

/// `NetworkInfo`: a virtual network (CNI) the container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    /// The CNI network's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels handed to the CNI plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// Host ports mapped into the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

/// `ContainerInfo.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerType {
    /// The Mesos containerizer.
    Mesos,
}

/// `ContainerInfo`: how the Mesos containerizer runs a task or an executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// The containerizer.
    #[serde(rename = "type")]
    pub kind: ContainerType,
    /// Mesos containerizer settings (the image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosContainer>,
    /// Virtual networks joined (on the executor: the pod's network namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
}

/// `ExecutorInfo.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutorType {
    /// The default (pod) executor.
    Default,
    /// A custom executor.
    Custom,
}

/// `ExecutorInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// DEFAULT for pods.
    #[serde(rename = "type")]
    pub kind: ExecutorType,
    /// Executor id; empty before the first launch.
    pub executor_id: ExecutorId,
    /// Framework id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    /// Name (the pod instance name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Executor resources (cpus, mem, disk, pod volumes).
    #[serde(default, deserialize_with = "exact_vec")]
    pub resources: Vec<Resource>,
    /// The executor's container: the pod's virtual networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
}

/// `TaskInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Task name (`hello-0-server`).
    pub name: String,
    /// Task id; empty for a footprint-only TaskInfo (resources reserved, task not launched).
    pub task_id: TaskId,
    /// Agent the task is placed on.
    pub agent_id: AgentId,
    /// Task resources (reserved, with `resource_id` labels).
    #[serde(default, deserialize_with = "exact_vec")]
    pub resources: Vec<Resource>,
    /// The pod's executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Arc<ExecutorInfo>>,
    /// Command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Arc<CommandInfo>>,
    /// Health check (shared, like the command, with the task's launch-group copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Arc<HealthCheck>>,
    /// Readiness check (shared with the task's launch-group copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Arc<CheckInfo>>,
    /// Kill policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    /// Labels (see the `*_LABEL` constants of [`task_labels`]).
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Discovery (shared with the task's launch-group copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Arc<DiscoveryInfo>>,
    /// The task's container: its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Arc<ContainerInfo>>,
}

/// Label keys berth puts on TaskInfos.
pub mod task_labels {
    /// Id of the target configuration the task was launched with.
    pub const TARGET_CONFIGURATION: &str = "target_configuration";
    /// Pod type.
    pub const TASK_TYPE: &str = "task_type";
    /// Pod instance index.
    pub const INDEX: &str = "index";
    /// Goal state (`RUNNING`, `FINISH`, `ONCE`).
    pub const GOAL_STATE: &str = "goal_state";
    /// Hostname of the offer the task was placed with.
    pub const OFFER_HOSTNAME: &str = "offer_hostname";
    /// Attributes of that offer (`name:value;…`).
    pub const OFFER_ATTRIBUTES: &str = "offer_attributes";
    /// Zone of that offer.
    pub const OFFER_ZONE: &str = "offer_zone";
    /// Region of that offer.
    pub const OFFER_REGION: &str = "offer_region";
    /// Set to `true` when the task (and its pod) must be replaced elsewhere.
    pub const PERMANENTLY_FAILED: &str = "permanently-failed";
}

/// `TaskState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskState {
    /// Accepted by the master, not yet on the agent.
    TaskStaging,
    /// The executor is starting it.
    TaskStarting,
    /// Running.
    TaskRunning,
    /// Being killed.
    TaskKilling,
    /// Exited 0 on its own.
    TaskFinished,
    /// Exited non-zero or could not start.
    TaskFailed,
    /// Killed on request.
    TaskKilled,
    /// Invalid task description.
    TaskError,
    /// Lost (agent gone or unknown).
    TaskLost,
    /// Dropped before launch.
    TaskDropped,
    /// Agent unreachable; may come back.
    TaskUnreachable,
    /// Definitely gone.
    TaskGone,
    /// Agent marked gone by an operator.
    TaskGoneByOperator,
    /// Unknown to the master.
    TaskUnknown,
}

impl TaskState {
    /// Whether the task can no longer run: FINISHED, FAILED, KILLED, ERROR, DROPPED, GONE,
    /// GONE_BY_OPERATOR (LOST/UNREACHABLE/UNKNOWN are "maybe" and not terminal here).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }

    /// Whether the task should be treated as not running (terminal, lost or unreachable).
    #[must_use]
    pub fn is_failed_or_lost(self) -> bool {
        self.is_terminal()
            || matches!(
                self,
                TaskState::TaskLost | TaskState::TaskUnreachable | TaskState::TaskUnknown
            )
    }

    /// The Mesos name (`TASK_RUNNING`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::TaskStaging => "TASK_STAGING",
            TaskState::TaskStarting => "TASK_STARTING",
            TaskState::TaskRunning => "TASK_RUNNING",
            TaskState::TaskKilling => "TASK_KILLING",
            TaskState::TaskFinished => "TASK_FINISHED",
            TaskState::TaskFailed => "TASK_FAILED",
            TaskState::TaskKilled => "TASK_KILLED",
            TaskState::TaskError => "TASK_ERROR",
            TaskState::TaskLost => "TASK_LOST",
            TaskState::TaskDropped => "TASK_DROPPED",
            TaskState::TaskUnreachable => "TASK_UNREACHABLE",
            TaskState::TaskGone => "TASK_GONE",
            TaskState::TaskGoneByOperator => "TASK_GONE_BY_OPERATOR",
            TaskState::TaskUnknown => "TASK_UNKNOWN",
        }
    }

    /// The name without the `TASK_` prefix (`RUNNING`), as the pods API shows it.
    #[must_use]
    pub fn short_name(self) -> &'static str {
        &self.as_str()[5..]
    }
}

/// `TaskStatus.Source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusSource {
    /// Generated by the master.
    SourceMaster,
    /// Generated by the agent.
    SourceAgent,
    /// Generated by the executor.
    SourceExecutor,
}

/// `CheckStatusInfo.Command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCheckStatus {
    /// Exit code of the last check run, if one completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `CheckStatusInfo` (COMMAND type): readiness results carried in status updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatusInfo {
    /// Always `COMMAND`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The command check result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheckStatus>,
}

/// `TaskStatus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: TaskId,
    /// Its state.
    pub state: TaskState,
    /// Human text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who generated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<StatusSource>,
    /// Mesos reason (`REASON_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// Seconds since the epoch.
    pub timestamp: f64,
    /// Set when the status must be acknowledged (base64 text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Health check result, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Readiness check result, if the task has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_status: Option<CheckStatusInfo>,
}

impl TaskStatus {
    /// Whether the status says the cluster never saw the task's launch: reconciliation does
    /// not know the task, or the whole ACCEPT was dropped (its offer was rescinded meanwhile)
    /// — lost, unknown or dropped, for `REASON_RECONCILIATION` or `REASON_INVALID_OFFERS`. No
    /// operation of that launch was applied.
    #[must_use]
    pub fn is_unknown_to_cluster(&self) -> bool {
        matches!(
            self.state,
            TaskState::TaskLost | TaskState::TaskUnknown | TaskState::TaskDropped
        ) && matches!(
            self.reason.as_deref(),
            Some("REASON_RECONCILIATION" | "REASON_INVALID_OFFERS")
        )
    }

    /// Whether the status carries a readiness result with exit code 0.
    #[must_use]
    pub fn readiness_passed(&self) -> bool {
        self.check_status
            .as_ref()
            .and_then(|c| c.command)
            .and_then(|c| c.exit_code)
            == Some(0)
    }
}

/// `Filters`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// Seconds before the declined resources are offered again.
    pub refuse_seconds: f64,
}

/// `TaskGroupInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskGroupInfo {
    /// Tasks launched together.
    pub tasks: Vec<TaskInfo>,
}

/// Body of a RESERVE / UNRESERVE operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcesOp {
    /// Resources to (un)reserve, exactly as offered / required.
    pub resources: Vec<Resource>,
}

/// Body of a CREATE / DESTROY operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumesOp {
    /// Volumes to create / destroy.
    pub volumes: Vec<Resource>,
}

/// Body of a LAUNCH_GROUP operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroupOp {
    /// The pod's executor.
    pub executor: Arc<ExecutorInfo>,
    /// The tasks.
    pub task_group: TaskGroupInfo,
}

/// `Offer.Operation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Reserve resources.
    Reserve {
        /// Body.
        reserve: ResourcesOp,
    },
    /// Unreserve resources.
    Unreserve {
        /// Body.
        unreserve: ResourcesOp,
    },
    /// Create persistent volumes.
    Create {
        /// Body.
        create: VolumesOp,
    },
    /// Destroy persistent volumes.
    Destroy {
        /// Body.
        destroy: VolumesOp,
    },
    /// Launch a task group on the default executor.
    LaunchGroup {
        /// Body.
        launch_group: LaunchGroupOp,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamic(role: &str) -> ReservationInfo {
        ReservationInfo {
            kind: ReservationType::Dynamic,
            role: role.into(),
            principal: Some("p".into()),
            labels: None,
        }
    }

    #[test]
    fn reservations_serialize_as_the_plain_stack_and_copies_do_not_see_changes() {
        let mut r = Resource::scalar("cpus", 1.0);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"name":"cpus","type":"SCALAR","scalar":{"value":1.0}}"#
        );
        r.reservations.push(dynamic("a"));
        let copy = r.clone();
        r.reservations.push(dynamic("a/b"));
        r.reservations[0].role = "changed".into();
        assert_eq!(copy.reservations.len(), 1);
        assert_eq!(copy.reservations[0].role, "a");
        let json = serde_json::to_string(&copy).unwrap();
        assert!(
            json.contains(r#""reservations":[{"type":"DYNAMIC","role":"a","principal":"p"}]"#),
            "{json}"
        );
        let back: Resource = serde_json::from_str(&json).unwrap();
        assert_eq!(back, copy);
        assert_eq!(r.reservations.pop().map(|x| x.role), Some("a/b".into()));
        assert!(r.reservations.pop().is_some());
        assert!(r.reservations.pop().is_none());
        assert_eq!(r.reservations, Reservations::from(Vec::new()));
        assert_eq!(r, Resource::scalar("cpus", 1.0));
    }

    #[test]
    fn lists_read_from_json_take_no_more_room_than_they_need() {
        let json = r#"{"name":"t","task_id":{"value":"i"},"agent_id":{"value":"a"},
            "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1.0},
              "reservations":[{"type":"DYNAMIC","role":"r","labels":{"labels":[
                {"key":"resource_id","value":"x"},{"key":"framework_id","value":"f"}]}}]},
              {"name":"mem","type":"SCALAR","scalar":{"value":1.0}},
              {"name":"disk","type":"SCALAR","scalar":{"value":1.0}},
              {"name":"gpus","type":"SCALAR","scalar":{"value":1.0}},
              {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":2}]}}],
            "labels":{"labels":[{"key":"a","value":"1"}]}}"#;
        let info: TaskInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info.resources.len(), 5);
        assert_eq!(info.resources.capacity(), 5);
        assert_eq!(info.labels.labels.capacity(), 1);
        let reservation = info.resources[0].reservation().unwrap();
        let labels = &reservation.labels.as_ref().unwrap().labels;
        assert_eq!((labels.len(), labels.capacity()), (2, 2));
        assert_eq!(info.resources[0].resource_id(), Some("x"));
        let ranges = info.resources[4].ranges.as_ref().unwrap();
        assert_eq!(ranges.range.capacity(), 1);
    }
}
