//! The protobuf messages of the TaskInfo and TaskStatus subset berth stores, with Mesos's own
//! field numbers and types (`mesos.proto`, package `mesos.v1`; v0's `mesos` package has the same
//! numbers). Enumerations are kept as their numbers, converted in the parent module.
//!
//! Fields berth does not model are left out: decoding skips them.

use prost::Message;

/// `TaskID`, `AgentID`, `ExecutorID`, `FrameworkID`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Id {
    #[prost(string, required, tag = "1")]
    pub value: String,
}

/// `Value.Scalar`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Scalar {
    #[prost(double, required, tag = "1")]
    pub value: f64,
}

/// `Value.Range`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Range {
    #[prost(uint64, required, tag = "1")]
    pub begin: u64,
    #[prost(uint64, required, tag = "2")]
    pub end: u64,
}

/// `Value.Ranges`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Ranges {
    #[prost(message, repeated, tag = "1")]
    pub range: Vec<Range>,
}

/// `Value.Set`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Set {
    #[prost(string, repeated, tag = "1")]
    pub item: Vec<String>,
}

/// `Label`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Label {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `Labels`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Labels {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
}

/// `Resource.ReservationInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct ReservationInfo {
    #[prost(int32, optional, tag = "4")]
    pub kind: Option<i32>,
    #[prost(string, optional, tag = "3")]
    pub role: Option<String>,
    #[prost(string, optional, tag = "1")]
    pub principal: Option<String>,
    #[prost(message, optional, tag = "2")]
    pub labels: Option<Labels>,
}

/// `Resource.DiskInfo.Persistence`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Persistence {
    #[prost(string, required, tag = "1")]
    pub id: String,
    #[prost(string, optional, tag = "2")]
    pub principal: Option<String>,
}

/// `Volume` (the part a disk resource uses).
#[derive(Clone, PartialEq, Message)]
pub(super) struct Volume {
    #[prost(int32, required, tag = "3")]
    pub mode: i32,
    #[prost(string, required, tag = "1")]
    pub container_path: String,
}

/// `Resource.DiskInfo.Source.Path` and `.Mount`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DiskRoot {
    #[prost(string, optional, tag = "1")]
    pub root: Option<String>,
}

/// `Resource.DiskInfo.Source`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DiskSource {
    #[prost(int32, required, tag = "1")]
    pub kind: i32,
    #[prost(message, optional, tag = "2")]
    pub path: Option<DiskRoot>,
    #[prost(message, optional, tag = "3")]
    pub mount: Option<DiskRoot>,
    #[prost(string, optional, tag = "6")]
    pub profile: Option<String>,
}

/// `Resource.DiskInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DiskInfo {
    #[prost(message, optional, tag = "1")]
    pub persistence: Option<Persistence>,
    #[prost(message, optional, tag = "2")]
    pub volume: Option<Volume>,
    #[prost(message, optional, tag = "3")]
    pub source: Option<DiskSource>,
}

/// `Resource`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Resource {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(int32, required, tag = "2")]
    pub kind: i32,
    #[prost(message, optional, tag = "3")]
    pub scalar: Option<Scalar>,
    #[prost(message, optional, tag = "4")]
    pub ranges: Option<Ranges>,
    #[prost(message, optional, tag = "5")]
    pub set: Option<Set>,
    /// The pre-refinement role (deprecated; read, never written).
    #[prost(string, optional, tag = "6")]
    pub role: Option<String>,
    /// The pre-refinement reservation (deprecated; read, never written).
    #[prost(message, optional, tag = "8")]
    pub reservation: Option<ReservationInfo>,
    #[prost(message, repeated, tag = "13")]
    pub reservations: Vec<ReservationInfo>,
    #[prost(message, optional, tag = "7")]
    pub disk: Option<DiskInfo>,
}

/// `CommandInfo.URI`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CommandUri {
    #[prost(string, required, tag = "1")]
    pub value: String,
    #[prost(bool, optional, tag = "2")]
    pub executable: Option<bool>,
    /// Defaults to `true` when absent.
    #[prost(bool, optional, tag = "3")]
    pub extract: Option<bool>,
    #[prost(string, optional, tag = "5")]
    pub output_file: Option<String>,
}

/// `Environment.Variable`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Variable {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// `Environment`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Environment {
    #[prost(message, repeated, tag = "1")]
    pub variables: Vec<Variable>,
}

/// `CommandInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CommandInfo {
    #[prost(message, repeated, tag = "1")]
    pub uris: Vec<CommandUri>,
    #[prost(message, optional, tag = "2")]
    pub environment: Option<Environment>,
    /// Defaults to `true` when absent.
    #[prost(bool, optional, tag = "6")]
    pub shell: Option<bool>,
    #[prost(string, optional, tag = "3")]
    pub value: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub user: Option<String>,
}

/// `HealthCheck`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct HealthCheck {
    #[prost(double, optional, tag = "2")]
    pub delay_seconds: Option<f64>,
    #[prost(double, optional, tag = "3")]
    pub interval_seconds: Option<f64>,
    #[prost(double, optional, tag = "4")]
    pub timeout_seconds: Option<f64>,
    #[prost(uint32, optional, tag = "5")]
    pub consecutive_failures: Option<u32>,
    #[prost(double, optional, tag = "6")]
    pub grace_period_seconds: Option<f64>,
    #[prost(int32, optional, tag = "8")]
    pub kind: Option<i32>,
    #[prost(message, optional, tag = "7")]
    pub command: Option<CommandInfo>,
}

/// `CheckInfo.Command`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CheckCommand {
    #[prost(message, required, tag = "1")]
    pub command: CommandInfo,
}

/// `CheckInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CheckInfo {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub command: Option<CheckCommand>,
    #[prost(double, optional, tag = "4")]
    pub delay_seconds: Option<f64>,
    #[prost(double, optional, tag = "5")]
    pub interval_seconds: Option<f64>,
    #[prost(double, optional, tag = "6")]
    pub timeout_seconds: Option<f64>,
}

/// `DurationInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DurationInfo {
    #[prost(int64, required, tag = "1")]
    pub nanoseconds: i64,
}

/// `KillPolicy`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct KillPolicy {
    #[prost(message, optional, tag = "1")]
    pub grace_period: Option<DurationInfo>,
}

/// `Port`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Port {
    #[prost(uint32, required, tag = "1")]
    pub number: u32,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub protocol: Option<String>,
    #[prost(int32, optional, tag = "4")]
    pub visibility: Option<i32>,
    #[prost(message, optional, tag = "5")]
    pub labels: Option<Labels>,
}

/// `Ports`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Ports {
    #[prost(message, repeated, tag = "1")]
    pub ports: Vec<Port>,
}

/// `DiscoveryInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DiscoveryInfo {
    #[prost(int32, required, tag = "1")]
    pub visibility: i32,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "6")]
    pub ports: Option<Ports>,
}

/// `Image.Docker`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct DockerImage {
    #[prost(string, required, tag = "1")]
    pub name: String,
}

/// `Image`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct Image {
    #[prost(int32, required, tag = "1")]
    pub kind: i32,
    #[prost(message, optional, tag = "3")]
    pub docker: Option<DockerImage>,
}

/// `ContainerInfo.MesosInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct MesosContainer {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
}

/// `NetworkInfo.PortMapping`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct PortMapping {
    #[prost(uint32, required, tag = "1")]
    pub host_port: u32,
    #[prost(uint32, required, tag = "2")]
    pub container_port: u32,
}

/// `NetworkInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct NetworkInfo {
    #[prost(string, optional, tag = "6")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "4")]
    pub labels: Option<Labels>,
    #[prost(message, repeated, tag = "7")]
    pub port_mappings: Vec<PortMapping>,
}

/// `ContainerInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct ContainerInfo {
    #[prost(int32, required, tag = "1")]
    pub kind: i32,
    #[prost(message, optional, tag = "5")]
    pub mesos: Option<MesosContainer>,
    #[prost(message, repeated, tag = "7")]
    pub network_infos: Vec<NetworkInfo>,
}

/// `ExecutorInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct ExecutorInfo {
    #[prost(int32, optional, tag = "15")]
    pub kind: Option<i32>,
    #[prost(message, required, tag = "1")]
    pub executor_id: Id,
    #[prost(message, optional, tag = "8")]
    pub framework_id: Option<Id>,
    #[prost(message, repeated, tag = "5")]
    pub resources: Vec<Resource>,
    #[prost(string, optional, tag = "9")]
    pub name: Option<String>,
    #[prost(message, optional, tag = "11")]
    pub container: Option<ContainerInfo>,
}

/// `TaskInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TaskInfo {
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(message, required, tag = "2")]
    pub task_id: Id,
    #[prost(message, required, tag = "3")]
    pub agent_id: Id,
    #[prost(message, repeated, tag = "4")]
    pub resources: Vec<Resource>,
    #[prost(message, optional, tag = "5")]
    pub executor: Option<ExecutorInfo>,
    #[prost(message, optional, tag = "7")]
    pub command: Option<CommandInfo>,
    #[prost(message, optional, tag = "9")]
    pub container: Option<ContainerInfo>,
    #[prost(message, optional, tag = "8")]
    pub health_check: Option<HealthCheck>,
    #[prost(message, optional, tag = "13")]
    pub check: Option<CheckInfo>,
    #[prost(message, optional, tag = "12")]
    pub kill_policy: Option<KillPolicy>,
    #[prost(message, optional, tag = "10")]
    pub labels: Option<Labels>,
    #[prost(message, optional, tag = "11")]
    pub discovery: Option<DiscoveryInfo>,
}

/// `CheckStatusInfo.Command`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CommandCheckStatus {
    #[prost(int32, optional, tag = "1")]
    pub exit_code: Option<i32>,
}

/// `CheckStatusInfo`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct CheckStatusInfo {
    #[prost(int32, optional, tag = "1")]
    pub kind: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub command: Option<CommandCheckStatus>,
}

/// `TaskStatus`.
#[derive(Clone, PartialEq, Message)]
pub(super) struct TaskStatus {
    #[prost(message, required, tag = "1")]
    pub task_id: Id,
    #[prost(int32, required, tag = "2")]
    pub state: i32,
    #[prost(string, optional, tag = "4")]
    pub message: Option<String>,
    #[prost(int32, optional, tag = "9")]
    pub source: Option<i32>,
    #[prost(int32, optional, tag = "10")]
    pub reason: Option<i32>,
    #[prost(message, optional, tag = "5")]
    pub agent_id: Option<Id>,
    #[prost(message, optional, tag = "7")]
    pub executor_id: Option<Id>,
    #[prost(double, optional, tag = "6")]
    pub timestamp: Option<f64>,
    #[prost(bytes = "vec", optional, tag = "11")]
    pub uuid: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "8")]
    pub healthy: Option<bool>,
    #[prost(message, optional, tag = "15")]
    pub check_status: Option<CheckStatusInfo>,
}
