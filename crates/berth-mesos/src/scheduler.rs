//! The scheduler API's own messages (`mesos.v1.scheduler.Call` and `Event`) in the master's
//! JSON shape: a `type` plus one body field named after it (`{"type":"ACCEPT","accept":{…}}`).
//!
//! Only what berth sends and reads is modelled; an event of a type berth does not know
//! decodes as [`EventType::Unknown`] and is ignored, as the API asks of schedulers.

use serde::{Deserialize, Serialize};

use crate::{AgentId, ExecutorId, Filters, FrameworkId, Offer, OfferId, Operation, TaskId};
use crate::{DomainInfo, TaskStatus};

/// `FrameworkInfo.Capability.Type` values berth declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapabilityType {
    /// Subscribe with `roles` (a list) rather than the deprecated `role`.
    MultiRole,
    /// Reservations as a stack (`reservations[]`), needed for pre-reserved roles.
    ReservationRefinement,
    /// TASK_UNREACHABLE / TASK_GONE / TASK_DROPPED instead of TASK_LOST.
    PartitionAware,
    /// A TASK_KILLING state while a kill's grace period runs.
    TaskKillingState,
    /// Offers carry the agents' fault domains (zones and regions).
    RegionAware,
    /// Offers may carry GPUs.
    GpuResources,
    /// Any other capability (kept so a stored FrameworkInfo still decodes).
    #[serde(other)]
    Unknown,
}

/// `FrameworkInfo.Capability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// The capability.
    #[serde(rename = "type")]
    pub kind: CapabilityType,
}

/// `FrameworkInfo`: who the scheduler is, as the master sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// OS user tasks run as by default.
    pub user: String,
    /// Framework (service) name.
    pub name: String,
    /// The id, when re-subscribing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    /// Seconds the master keeps the tasks while the scheduler is away.
    pub failover_timeout: f64,
    /// Whether agents checkpoint the framework's tasks.
    pub checkpoint: bool,
    /// Roles (MULTI_ROLE).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Host the scheduler runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Principal (authentication and reservations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Link shown by the master's web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    /// Declared capabilities.
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

/// `Call.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CallType {
    /// Open the event stream.
    Subscribe,
    /// Kill everything and retire the framework id.
    Teardown,
    /// Use offers.
    Accept,
    /// Refuse offers.
    Decline,
    /// Agree to a maintenance window.
    AcceptInverseOffers,
    /// Refuse a maintenance window.
    DeclineInverseOffers,
    /// Resume offers, clear filters.
    Revive,
    /// Kill a task.
    Kill,
    /// Shut an executor down.
    Shutdown,
    /// Acknowledge a status update.
    Acknowledge,
    /// Ask for task states.
    Reconcile,
    /// Stop offers.
    Suppress,
}

/// `Call.Subscribe`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The framework.
    pub framework_info: FrameworkInfo,
}

/// `Call.Accept`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accept {
    /// Offers used (all of one agent).
    pub offer_ids: Vec<OfferId>,
    /// Operations, applied in order.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Filter for the unused resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Decline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decline {
    /// Offers refused.
    pub offer_ids: Vec<OfferId>,
    /// How long they are not re-offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.AcceptInverseOffers` / `Call.DeclineInverseOffers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffersAnswer {
    /// The inverse offers answered.
    pub inverse_offer_ids: Vec<OfferId>,
    /// How long they are not sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// `Call.Revive` / `Call.Suppress`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Roles {
    /// Roles concerned (empty: all of the framework's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `KillPolicy` of a KILL call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillPolicy {
    /// Grace period between SIGTERM and SIGKILL.
    pub grace_period: crate::DurationInfo,
}

/// `Call.Kill`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kill {
    /// The task.
    pub task_id: TaskId,
    /// Its agent, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// Overrides the task's kill policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// `Call.Shutdown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shutdown {
    /// The executor.
    pub executor_id: ExecutorId,
    /// Its agent.
    pub agent_id: AgentId,
}

/// `Call.Acknowledge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledge {
    /// Agent of the task.
    pub agent_id: AgentId,
    /// The task.
    pub task_id: TaskId,
    /// The status's uuid (base64, as received).
    pub uuid: String,
}

/// One task of `Call.Reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileTask {
    /// The task.
    pub task_id: TaskId,
    /// Its agent, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// `Call.Reconcile`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    /// Tasks (empty: implicit reconciliation of every task the master knows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<ReconcileTask>,
}

/// `mesos.v1.scheduler.Call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// The framework (every call but the first SUBSCRIBE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    /// Which call.
    #[serde(rename = "type")]
    pub kind: CallType,
    /// SUBSCRIBE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Subscribe>,
    /// ACCEPT body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<Accept>,
    /// DECLINE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    /// ACCEPT_INVERSE_OFFERS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_inverse_offers: Option<InverseOffersAnswer>,
    /// DECLINE_INVERSE_OFFERS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline_inverse_offers: Option<InverseOffersAnswer>,
    /// REVIVE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revive: Option<Roles>,
    /// SUPPRESS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppress: Option<Roles>,
    /// KILL body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<Kill>,
    /// SHUTDOWN body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<Shutdown>,
    /// ACKNOWLEDGE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledge: Option<Acknowledge>,
    /// RECONCILE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<Reconcile>,
}

impl Call {
    /// A call of `kind` with no body, for `framework_id`.
    #[must_use]
    pub fn new(kind: CallType, framework_id: Option<FrameworkId>) -> Self {
        Self {
            framework_id,
            kind,
            subscribe: None,
            accept: None,
            decline: None,
            accept_inverse_offers: None,
            decline_inverse_offers: None,
            revive: None,
            suppress: None,
            kill: None,
            shutdown: None,
            acknowledge: None,
            reconcile: None,
        }
    }
}

/// `Event.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// The subscription is accepted.
    Subscribed,
    /// New offers.
    Offers,
    /// Maintenance windows asking for resources back.
    InverseOffers,
    /// An offer is withdrawn.
    Rescind,
    /// An inverse offer is withdrawn.
    RescindInverseOffer,
    /// A task status update.
    Update,
    /// A status of an offer operation that carried an id.
    UpdateOperationStatus,
    /// A message from an executor.
    Message,
    /// An agent or executor failed.
    Failure,
    /// The subscription failed; the stream ends.
    Error,
    /// Keep-alive.
    Heartbeat,
    /// A type this scheduler does not know (ignored).
    #[serde(other)]
    Unknown,
}

/// `MasterInfo` (the parts berth reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterInfo {
    /// Master id.
    pub id: String,
    /// IPv4 address as a number in network order.
    pub ip: u32,
    /// Port.
    pub port: u32,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Mesos version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where to reach it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// The master's fault domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<DomainInfo>,
}

/// `Address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// IP address text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Port.
    pub port: i32,
}

impl MasterInfo {
    /// `host:port` to reach this master: the address's host name or IP, else the hostname,
    /// else the numeric IP.
    #[must_use]
    pub fn endpoint(&self) -> String {
        if let Some(a) = &self.address
            && let Some(host) = a.hostname.as_ref().or(a.ip.as_ref())
        {
            return format!("{host}:{}", a.port);
        }
        let host = self.hostname.clone().unwrap_or_else(|| {
            let b = self.ip.to_le_bytes();
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        });
        format!("{host}:{}", self.port)
    }
}

/// `Event.Subscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    /// The framework id.
    pub framework_id: FrameworkId,
    /// Seconds between heartbeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    /// The leading master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

/// `Event.Offers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offers {
    /// The offers.
    #[serde(default)]
    pub offers: Vec<Offer>,
}

/// `Unavailability` of a maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unavailability {
    /// Start (`TimeInfo`).
    pub start: TimeInfo,
    /// Length, if bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<crate::DurationInfo>,
}

/// `TimeInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeInfo {
    /// Nanoseconds since the epoch.
    pub nanoseconds: i64,
}

/// `URL` (the parts berth reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    /// `http`, `https`.
    pub scheme: String,
    /// Host and port.
    pub address: Address,
    /// Path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `InverseOffer`: the master asks for an agent's resources back for maintenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffer {
    /// Its id.
    pub id: OfferId,
    /// The agent's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    /// The framework.
    pub framework_id: FrameworkId,
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// The maintenance window.
    pub unavailability: Unavailability,
}

/// `Event.InverseOffers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffers {
    /// The inverse offers.
    #[serde(default)]
    pub inverse_offers: Vec<InverseOffer>,
}

/// `Event.Rescind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rescind {
    /// The offer.
    pub offer_id: OfferId,
}

/// `Event.RescindInverseOffer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescindInverseOffer {
    /// The inverse offer.
    pub inverse_offer_id: OfferId,
}

/// `Event.Update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The status.
    pub status: TaskStatus,
}

/// `Event.Failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// The executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// The executor's wait status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// `Event.Error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Why.
    pub message: String,
}

/// `mesos.v1.scheduler.Event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Which event.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// SUBSCRIBED body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<Subscribed>,
    /// OFFERS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offers: Option<Offers>,
    /// INVERSE_OFFERS body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse_offers: Option<InverseOffers>,
    /// RESCIND body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind: Option<Rescind>,
    /// RESCIND_INVERSE_OFFER body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rescind_inverse_offer: Option<RescindInverseOffer>,
    /// UPDATE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<Update>,
    /// FAILURE body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// ERROR body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorEvent>,
}

impl Event {
    /// An event of `kind` with no body.
    #[must_use]
    pub fn new(kind: EventType) -> Self {
        Self {
            kind,
            subscribed: None,
            offers: None,
            inverse_offers: None,
            rescind: None,
            rescind_inverse_offer: None,
            update: None,
            failure: None,
            error: None,
        }
    }
}
