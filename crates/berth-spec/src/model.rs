//! The typed, validated service specification.
//!
//! A [`ServiceSpec`] is what a rendered `svc.yml` becomes once it has been parsed and
//! validated. It is also what the scheduler stores as a target configuration (as JSON, with
//! the kebab-case keys of the reference's `/v1/configurations/{id}` shape), so every type here
//! serialises and deserialises with serde, and equality (`PartialEq`) is the comparator used to
//! decide whether a configuration changed.
//!
//! Defaults are already applied: an absent `essential` is `true`, an absent
//! `pre-reserved-role` is `*`, inline task resources become a resource set named
//! `<task>-resource-set`, and so on.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::placement::PlacementRule;

/// Ordered string map (environment variables, labels): order is kept as written.
pub type StringMap = IndexMap<String, String>;

/// A validated service: the framework, its pods and its plans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceSpec {
    /// Service (framework) name as written, possibly with slashes (`/test/hello-world`).
    pub name: String,
    /// Role used for reservations: the name with the leading `/` removed, other `/` as `__`,
    /// plus `-role`.
    pub role: String,
    /// Principal used for reservations and volumes (default `<name>-principal`).
    pub principal: String,
    /// `web-url` of the framework, if any.
    pub web_url: Option<String>,
    /// `scheduler.zookeeper` (default `master.mesos:2181`).
    pub zookeeper: String,
    /// `scheduler.user` (default `root`); the user every pod runs as unless it names its own.
    pub user: String,
    /// Service-level goal; always `RUNNING` for YAML services.
    pub goal: Goal,
    /// Region the service is pinned to, if any.
    pub region: Option<String>,
    /// Timed automatic replacement of pods that stay failed; `None` = never (the default).
    pub replacement_failure_policy: Option<ReplacementFailurePolicy>,
    /// Pods in the order written.
    pub pod_specs: Vec<PodSpec>,
    /// The `plans` section, in the order written (empty when the spec has none).
    #[serde(default)]
    pub plans: Vec<PlanSpec>,
}

impl ServiceSpec {
    /// The pod spec of the given type, if the service has one.
    #[must_use]
    pub fn pod(&self, pod_type: &str) -> Option<&PodSpec> {
        self.pod_specs.iter().find(|p| p.pod_type == pod_type)
    }

    /// The plan spec of the given name, if the `plans` section has one.
    #[must_use]
    pub fn plan(&self, name: &str) -> Option<&PlanSpec> {
        self.plans.iter().find(|p| p.name == name)
    }
}

/// Automatic replacement of pods whose tasks stay failed (`replacement-failure-policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReplacementFailurePolicy {
    /// Seconds a task must stay failed before its pod is replaced (default 1200).
    pub permanent_failure_timeout_secs: u64,
    /// Minimum seconds between two automatic replacements (default 10).
    pub min_replace_delay_secs: u64,
}

/// A pod type: `count` instances of a group of tasks sharing an agent, an executor and volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PodSpec {
    /// Pod type name (`hello`); instances are `hello-0`, `hello-1`, ….
    #[serde(rename = "type")]
    pub pod_type: String,
    /// User the pod's tasks run as.
    pub user: String,
    /// Number of instances.
    pub count: u32,
    /// Whether the count may shrink / the pod may be removed.
    pub allow_decommission: bool,
    /// Container image; berth runs tasks as host processes and refuses pods with an image.
    pub image: Option<String>,
    /// Networks the pod joins (empty = host networking).
    #[serde(default)]
    pub networks: Vec<NetworkSpec>,
    /// POSIX resource limits applied to every task of the pod.
    #[serde(default)]
    pub rlimits: Vec<RLimitSpec>,
    /// URIs fetched into every task sandbox.
    #[serde(default)]
    pub uris: Vec<String>,
    /// Pod-level volumes, shared by all tasks of an instance (reserved with the executor).
    #[serde(default)]
    pub volumes: Vec<VolumeSpec>,
    /// Role whose static reservations the pod consumes (`*` = unreserved resources).
    pub pre_reserved_role: String,
    /// Secrets made available to the tasks.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Placement rule; `None` when the spec has no (or an empty) `placement`.
    pub placement_rule: Option<PlacementRule>,
    /// Tasks of the pod, in the order written.
    pub task_specs: Vec<TaskSpec>,
    /// `share-pid-namespace`.
    #[serde(default)]
    pub share_pid_namespace: bool,
    /// Host paths exposed inside the sandbox.
    #[serde(default)]
    pub host_volumes: Vec<HostVolumeSpec>,
    /// Docker external volumes (not supported by berth's agents).
    #[serde(default)]
    pub external_volumes: Vec<ExternalVolumeSpec>,
    /// `seccomp-unconfined`.
    #[serde(default)]
    pub seccomp_unconfined: bool,
    /// `seccomp-profile-name`.
    #[serde(default)]
    pub seccomp_profile_name: Option<String>,
    /// `ipc-mode` at pod level (only `PRIVATE` is valid there).
    #[serde(default)]
    pub ipc_mode: Option<IpcMode>,
    /// `shm-size` in MB.
    #[serde(default)]
    pub shm_size: Option<u32>,
}

impl PodSpec {
    /// The task spec with the given name.
    #[must_use]
    pub fn task(&self, name: &str) -> Option<&TaskSpec> {
        self.task_specs.iter().find(|t| t.name == name)
    }

    /// Whether the pod joins a virtual network without port mapping (ports are then not
    /// reserved).
    #[must_use]
    pub fn uses_virtual_network(&self) -> bool {
        self.networks.iter().any(|n| n.name != "mesos-bridge")
    }
}

/// One task of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TaskSpec {
    /// Task name within the pod (`server`); the full task name is `<pod>-<index>-<name>`.
    pub name: String,
    /// Goal state.
    pub goal: Goal,
    /// Whether a failure of this task restarts the whole pod (default true).
    pub essential: bool,
    /// Resources of the task (possibly shared with other tasks of the pod by id).
    pub resource_set: ResourceSet,
    /// Command and environment.
    pub command_spec: CommandSpec,
    /// Health check, if any.
    pub health_check_spec: Option<HealthCheckSpec>,
    /// Readiness check, if any.
    pub readiness_check_spec: Option<ReadinessCheckSpec>,
    /// Config templates rendered into the sandbox.
    #[serde(default)]
    pub config_files: Vec<ConfigFileSpec>,
    /// Discovery info, if any.
    pub discovery_spec: Option<DiscoverySpec>,
    /// Labels added to the TaskInfo.
    #[serde(default)]
    pub task_labels: StringMap,
    /// Seconds between SIGTERM and SIGKILL when the task is killed.
    pub kill_grace_period: u32,
    /// TLS artifacts requested for the task (not supported by berth's agents).
    #[serde(default)]
    pub transport_encryption: Vec<TransportEncryptionSpec>,
    /// `ipc-mode` of the task.
    #[serde(default)]
    pub ipc_mode: Option<IpcMode>,
    /// `shm-size` of the task in MB.
    #[serde(default)]
    pub shm_size: Option<u32>,
}

/// Goal state of a task (or of the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Goal {
    /// Keep running; an exit is a failure and is recovered.
    Running,
    /// Run to a zero exit; re-run when its configuration changes.
    Finish,
    /// Run to a zero exit once; never re-run.
    Once,
}

impl Goal {
    /// The YAML / JSON spelling (`RUNNING`, `FINISH`, `ONCE`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Running => "RUNNING",
            Goal::Finish => "FINISH",
            Goal::Once => "ONCE",
        }
    }
}

/// Command line and environment of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    /// Shell command (`sh -c`).
    pub value: String,
    /// Environment from the spec's `env`, with `TASKCFG_*` overrides applied.
    pub environment: StringMap,
}

/// Resources reserved for one or more tasks of a pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ResourceSet {
    /// Id of the set: the `resource-sets` key, or `<task>-resource-set` for inline resources.
    pub id: String,
    /// Scalar resources and ports.
    pub resource_specifications: Vec<ResourceSpec>,
    /// Persistent volumes.
    pub volume_specifications: Vec<VolumeSpec>,
    /// Optional limits above the request.
    #[serde(default)]
    pub resource_limits: Option<ResourceLimits>,
}

impl ResourceSet {
    /// The scalar amount requested for `name` (`cpus`, `mem`, `gpus`), 0 when absent.
    #[must_use]
    pub fn scalar(&self, name: &str) -> f64 {
        self.resource_specifications
            .iter()
            .filter_map(|r| match r {
                ResourceSpec::Scalar(s) if s.name == name => Some(s.value),
                _ => None,
            })
            .sum()
    }

    /// The port requirements of the set, in the order written.
    pub fn ports(&self) -> impl Iterator<Item = &PortSpec> {
        self.resource_specifications.iter().filter_map(|r| match r {
            ResourceSpec::Port(p) => Some(p),
            ResourceSpec::Scalar(_) => None,
        })
    }
}

/// One resource requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum ResourceSpec {
    /// A scalar (`cpus`, `mem`, `gpus`).
    #[serde(rename = "DefaultResourceSpec")]
    Scalar(ScalarSpec),
    /// A port.
    #[serde(rename = "PortSpec")]
    Port(PortSpec),
}

/// A scalar resource requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ScalarSpec {
    /// `cpus`, `mem` or `gpus`.
    pub name: String,
    /// Amount (MB for `mem`).
    #[serde(with = "scalar_value")]
    pub value: f64,
    /// Service role.
    pub role: String,
    /// Pod pre-reserved role.
    pub pre_reserved_role: String,
    /// Service principal.
    pub principal: String,
}

/// A port requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PortSpec {
    /// Port name (the key under `ports`).
    pub port_name: String,
    /// Fixed port, or 0 for a dynamic one.
    pub port: u32,
    /// Environment variable receiving the assigned port.
    pub env_key: Option<String>,
    /// `EXTERNAL` when advertised, else `CLUSTER`.
    pub visibility: Visibility,
    /// Allowed ranges for a dynamic port (empty = any).
    #[serde(default)]
    pub ranges: Vec<PortRange>,
    /// Named VIP, if any.
    pub vip: Option<VipSpec>,
    /// Service role.
    pub role: String,
    /// Pod pre-reserved role.
    pub pre_reserved_role: String,
    /// Service principal.
    pub principal: String,
}

/// An inclusive port range; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    /// Lowest allowed port (None = no lower bound).
    pub begin: Option<u32>,
    /// Highest allowed port (None = no upper bound).
    pub end: Option<u32>,
}

/// A named VIP on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipSpec {
    /// VIP name prefix (default: the port name).
    pub prefix: String,
    /// VIP port.
    pub port: u32,
}

/// Discovery visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    /// Visible inside the framework only.
    Framework,
    /// Visible inside the cluster.
    Cluster,
    /// Visible outside the cluster.
    External,
}

/// Limits above the requested resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// CPU limit; `None` = unlimited.
    pub cpus: Option<LimitValue>,
    /// Memory limit in MB; `None` = not set.
    pub memory: Option<LimitValue>,
}

/// A resource limit: an amount or `unlimited`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitValue {
    /// A finite limit.
    Amount(f64),
    /// No limit.
    Unlimited,
}

/// A persistent volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VolumeSpec {
    /// `ROOT` or `MOUNT`.
    #[serde(rename = "type")]
    pub volume_type: VolumeType,
    /// Path of the volume inside the sandbox.
    pub container_path: String,
    /// Size in MB.
    pub size: u64,
    /// Disk profiles (MOUNT only).
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Service role.
    pub role: String,
    /// Pod pre-reserved role.
    pub pre_reserved_role: String,
    /// Service principal.
    pub principal: String,
}

/// Kind of persistent volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VolumeType {
    /// Exact size carved out of the agent's root disk.
    Root,
    /// A whole dedicated disk of at least the size.
    Mount,
}

/// Health check run by the executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HealthCheckSpec {
    /// Shell command; exit 0 = healthy.
    pub command: String,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds after start during which failures do not count.
    pub grace_period: u32,
    /// Failures in a row that make the task unhealthy (it is then killed).
    pub max_consecutive_failures: u32,
    /// Seconds before the first check.
    pub delay: u32,
    /// Seconds one check may take.
    pub timeout: u32,
}

/// Readiness check run by the executor; the deploy step completes once it passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReadinessCheckSpec {
    /// Shell command; exit 0 = ready.
    pub command: String,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds one check may take.
    pub timeout: u32,
    /// Seconds before the first check.
    pub delay: u32,
}

/// A config template rendered into the sandbox before the task starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConfigFileSpec {
    /// The `configs` key.
    pub name: String,
    /// Destination relative to the sandbox.
    pub relative_path: String,
    /// Template text (mustache, rendered with the task environment).
    pub template_content: String,
}

/// Discovery information of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverySpec {
    /// Name prefix; the discovery name is `<prefix>-<index>`.
    pub prefix: Option<String>,
    /// Visibility (default `CLUSTER`).
    pub visibility: Visibility,
}

/// A TLS artifact request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportEncryptionSpec {
    /// Artifact base name.
    pub name: String,
    /// `TLS` or `KEYSTORE`.
    #[serde(rename = "type")]
    pub kind: TransportEncryptionType,
}

/// Kind of TLS artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransportEncryptionType {
    /// PEM certificate, key and CA.
    Tls,
    /// Java keystore and truststore.
    Keystore,
}

/// IPC namespace mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IpcMode {
    /// Own IPC namespace.
    Private,
    /// Share the parent's IPC namespace.
    ShareParent,
}

/// A network the pod joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NetworkSpec {
    /// Network name (`dcos`, `mesos-bridge`, …).
    pub name: String,
    /// Host ports mapped (port-mapping networks).
    #[serde(default)]
    pub host_ports: Vec<u32>,
    /// Container ports mapped (port-mapping networks).
    #[serde(default)]
    pub container_ports: Vec<u32>,
    /// CNI labels.
    #[serde(default)]
    pub labels: StringMap,
}

/// A POSIX resource limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RLimitSpec {
    /// Limit name, e.g. `RLIMIT_NOFILE`.
    pub name: String,
    /// Soft limit; `None` = unlimited.
    pub soft: Option<u64>,
    /// Hard limit; `None` = unlimited.
    pub hard: Option<u64>,
}

/// A secret exposed to the tasks of a pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SecretSpec {
    /// Secret store path.
    pub secret_path: String,
    /// Environment variable receiving the value.
    pub env_key: Option<String>,
    /// File (relative to the sandbox) receiving the value.
    pub file_path: Option<String>,
}

/// A host path made visible in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HostVolumeSpec {
    /// The `host-volumes` key.
    pub name: String,
    /// Path on the agent.
    pub host_path: String,
    /// Path inside the sandbox.
    pub container_path: String,
    /// `RW` or `RO`.
    pub mode: String,
}

/// A Docker external volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExternalVolumeSpec {
    /// The `external-volumes` key.
    pub name: String,
    /// Only `DOCKER`.
    #[serde(rename = "type")]
    pub volume_type: String,
    /// Volume name (defaults to `<pod>-<index>` when absent).
    pub volume_name: Option<String>,
    /// `RW` or `RO`.
    pub volume_mode: String,
    /// Docker volume driver.
    pub driver_name: String,
    /// Driver options.
    pub driver_options: Option<String>,
    /// Path inside the sandbox.
    pub container_path: String,
}

/// A plan from the `plans` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Plan name (`deploy`, `update`, `backup`, …).
    pub name: String,
    /// Plan-level strategy: serial or parallel only.
    pub strategy: PlanStrategy,
    /// Phases in the order written.
    pub phases: Vec<PhaseSpec>,
}

/// A phase of a YAML plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpec {
    /// Phase name.
    pub name: String,
    /// Pod type the phase works on.
    pub pod: String,
    /// Phase-level strategy.
    pub strategy: PhaseStrategy,
    /// Custom steps; `None` = one step per instance launching all tasks.
    pub steps: Option<Vec<StepsEntry>>,
}

/// One entry of a phase's `steps` list: which task groups to launch for a pod index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepsEntry {
    /// Pod index the entry applies to, or the `default` entry.
    pub key: StepsKey,
    /// Each inner list is one step launching those tasks.
    pub tasks: Vec<Vec<String>>,
}

/// Key of a [`StepsEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepsKey {
    /// Applies to one pod index.
    Index(u32),
    /// Applies to every index without its own entry.
    Default,
}

/// Plan-level strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanStrategy {
    /// One phase after the other.
    Serial,
    /// All phases at once.
    Parallel,
}

/// Phase-level strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseStrategy {
    /// One step after the other.
    Serial,
    /// All steps at once.
    Parallel,
    /// The first two steps wait for an operator `continue` each, then serial.
    SerialCanary,
    /// The first two steps wait for an operator `continue` each, then parallel.
    ParallelCanary,
}

/// Serde helper: a scalar amount written as a Mesos `Value` (`{"type":"SCALAR","scalar":{…}}`).
mod scalar_value {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Scalar {
        value: f64,
    }

    #[derive(Serialize, Deserialize)]
    struct Value {
        #[serde(rename = "type")]
        kind: String,
        scalar: Scalar,
    }

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        Value {
            kind: "SCALAR".to_owned(),
            scalar: Scalar { value: *v },
        }
        .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Value::deserialize(d)?.scalar.value)
    }
}
