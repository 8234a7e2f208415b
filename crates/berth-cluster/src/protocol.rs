//! Calls, events and the [`Cluster`] trait.

use berth_mesos::{
    AgentId, ExecutorId, Filters, FrameworkId, Offer, OfferId, Operation, TaskId, TaskStatus,
};
use serde::{Deserialize, Serialize};

/// `FrameworkInfo`: who the scheduler is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// Framework id when re-subscribing; `None` on first registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    /// Framework (service) name.
    pub name: String,
    /// OS user tasks run as by default.
    pub user: String,
    /// Principal used for reservations.
    pub principal: String,
    /// Roles the framework subscribes with.
    pub roles: Vec<String>,
    /// Seconds the cluster keeps tasks running while the scheduler is away.
    pub failover_timeout: f64,
    /// Whether agents checkpoint the framework's tasks.
    pub checkpoint: bool,
    /// `webui_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
}

/// A task to reconcile explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileTask {
    /// The task.
    pub task_id: TaskId,
    /// Its agent, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// A call from the scheduler to the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Call {
    /// Use offers: apply `operations` in order; unused resources count as declined.
    Accept {
        /// The offers used (all from one agent).
        offer_ids: Vec<OfferId>,
        /// Operations (RESERVE, CREATE, LAUNCH_GROUP, DESTROY, UNRESERVE).
        operations: Vec<Operation>,
        /// How long unused resources are not re-offered.
        filters: Filters,
    },
    /// Refuse offers for `filters.refuse_seconds`.
    Decline {
        /// The offers.
        offer_ids: Vec<OfferId>,
        /// How long they are not re-offered.
        filters: Filters,
    },
    /// Kill a task (SIGTERM, then SIGKILL after the grace period).
    Kill {
        /// The task.
        task_id: TaskId,
        /// Its agent, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
        /// Grace period override in seconds (else the task's kill policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_period_secs: Option<f64>,
    },
    /// Ask for the latest status of tasks; an empty list asks for all known tasks.
    Reconcile {
        /// Tasks to reconcile (empty = implicit reconciliation).
        tasks: Vec<ReconcileTask>,
    },
    /// Stop sending offers.
    Suppress,
    /// Resume offers and clear decline filters.
    Revive,
    /// Acknowledge a status update that carried a `uuid`.
    Acknowledge {
        /// Agent of the task.
        agent_id: AgentId,
        /// The task.
        task_id: TaskId,
        /// The status's uuid.
        uuid: String,
    },
    /// Kill everything of this framework and forget it; its id can never be used again.
    Teardown,
}

/// An event from the cluster to the scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// Subscription accepted; always the first event.
    Subscribed {
        /// The framework id (new, or the one re-subscribed with).
        framework_id: FrameworkId,
        /// Seconds between heartbeats.
        heartbeat_interval_seconds: f64,
    },
    /// New offers.
    Offers {
        /// The offers.
        offers: Vec<Offer>,
    },
    /// An offer is no longer valid.
    Rescind {
        /// The offer.
        offer_id: OfferId,
    },
    /// A task status update.
    Update {
        /// The status.
        status: TaskStatus,
    },
    /// An agent or executor failed.
    Failure {
        /// The agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
        /// The executor.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        executor_id: Option<ExecutorId>,
        /// Exit status of the executor, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<i32>,
    },
    /// The subscription failed (e.g. `Framework has been removed`); the stream ends.
    Error {
        /// Why.
        message: String,
    },
    /// Keep-alive.
    Heartbeat,
    /// The backend lost its connection to the cluster (or cannot reach it) and is trying
    /// again; the next [`Event::Subscribed`] ends it. Not a Mesos event: health reports it.
    Disconnected {
        /// Why, for people.
        reason: String,
    },
}

/// The stream of events of one subscription.
pub type EventStream = tokio::sync::mpsc::UnboundedReceiver<Event>;

/// Errors of the cluster boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A call was made before `subscribe`.
    #[error("not subscribed: call subscribe before sending calls")]
    NotSubscribed,
    /// The framework id is unknown or was torn down.
    #[error("framework has been removed: {0}")]
    FrameworkRemoved(String),
    /// A call was invalid (unknown offer, operation that does not fit, …).
    #[error("invalid call: {0}")]
    InvalidCall(String),
    /// The backend's own state could not be read or written.
    #[error("cluster state at {path}: {message}")]
    State {
        /// File or directory involved.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Anything else the backend could not do.
    #[error("{0}")]
    Backend(String),
    /// The local cluster's agents file is invalid.
    #[error("{file}:{line}:{column}: {field}: {message}")]
    AgentsFile {
        /// The file (or `<default agents>` / `<input>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// The field, e.g. `agents[1].ports`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// An operator named an agent the cluster does not have.
    #[error("unknown agent `{id}`; known agents: {}", known.join(", "))]
    UnknownAgent {
        /// The id given.
        id: String,
        /// The ids the cluster has.
        known: Vec<String>,
    },
    /// An operator command cannot be applied to an agent in its current state.
    #[error("agent `{id}`: {message}")]
    Agent {
        /// The agent.
        id: String,
        /// Why.
        message: String,
    },
    /// A Mesos master or agent answered with an error, or could not be asked: the HTTP
    /// status to answer with (the peer's 400 or 404, else 502; 503 before a master is
    /// known) and what happened.
    #[error("{message}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// For people.
        message: String,
    },
    /// The cluster was closed (its `LocalCluster` was dropped).
    #[error("the cluster is closed")]
    Closed,
}

/// A cluster backend.
///
/// Contract:
/// - `subscribe` registers (or re-registers when `framework.id` is set) and returns the
///   event stream; the first event is [`Event::Subscribed`] or [`Event::Error`].
/// - `send` hands a call to the backend. When it returns `Ok`, an `Accept`'s operations are
///   durable in the backend (reservations, volumes) and launches are under way; status
///   updates follow as events. Updates carrying a `uuid` are re-sent until acknowledged.
/// - Offers are only sent while not suppressed; declined resources are not re-offered for
///   `refuse_seconds` unless the scheduler revives.
pub trait Cluster: Send {
    /// Subscribes the framework and returns its event stream.
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError>;
    /// Sends one call.
    fn send(&mut self, call: Call) -> Result<(), ClusterError>;
}

impl<C: Cluster + ?Sized> Cluster for Box<C> {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        (**self).subscribe(framework)
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        (**self).send(call)
    }
}
