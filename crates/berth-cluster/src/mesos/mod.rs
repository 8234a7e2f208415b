//! The `mesos` backend: the cluster boundary spoken to a Mesos master over the v1 scheduler
//! HTTP API.
//!
//! ```text
//!              ┌────────────── subscription task ──────────────┐
//!  masters ───▶│ leader? (list + 307, or ZooKeeper) ▸ SUBSCRIBE │── events ──▶ scheduler
//!  (HTTP)      │ RecordIO stream ▸ heartbeat watchdog ▸ back-off│
//!              └───────────────────────────────────────────────┘
//!  scheduler ── send(Call) ──▶ call queue ──▶ sender task ── POST + Mesos-Stream-Id ──▶ leader
//! ```
//!
//! - The subscription task finds the leader, subscribes (re-subscribing with the framework id
//!   it has), reads the event stream and hands events on. A stream that ends, breaks, or stays
//!   silent for five heartbeat intervals is dropped and the framework re-subscribes with
//!   back-off; meanwhile the scheduler gets [`Event::Disconnected`] (health reports it).
//! - A master that refuses the subscription (401, 403, a bad role or principal) ends it: the
//!   scheduler gets [`Event::Error`] with the master's own words. So does an `ERROR` event
//!   (e.g. "Framework has been removed").
//! - Calls go out in order on other connections with the current `Mesos-Stream-Id`. While no
//!   subscription is up, calls are dropped (the master would refuse them): offers die with the
//!   connection, and updates not acknowledged are sent again by the agents.
//! - Offers berth cannot read (resources of kinds it does not know) are declined; inverse
//!   offers (maintenance windows) are answered as [`Maintenance`] says: declined by default —
//!   berth keeps its tasks where their data is, and an operator replaces a pod to move it.

pub mod agents;
pub mod convert;
pub mod launch;
pub mod masters;
mod session;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_mesos::scheduler::{self as wire, Capability, CapabilityType};
use tokio::sync::mpsc;

use crate::protocol::{Call, Cluster, ClusterError, Event, EventStream, FrameworkInfo};
pub use masters::{MasterUrlError, Masters};

/// How to reach and speak to the masters.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// Where the masters are.
    pub masters: Masters,
    /// HTTP Basic credentials (principal, secret) for the master, if it asks for them.
    pub credentials: Option<(String, String)>,
    /// The host the scheduler runs on (FrameworkInfo.hostname).
    pub hostname: Option<String>,
    /// First wait before trying a master again; doubles up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Longest wait between attempts.
    pub backoff_max: Duration,
    /// Time allowed for a call, or for a subscription to be answered.
    pub call_timeout: Duration,
    /// The scheduler API as agents reach it (`http://host:port`): tasks with config
    /// templates fetch `berth` from its `/v1/artifacts/bootstrap` to render them.
    pub artifacts_url: Option<String>,
    /// How maintenance windows (inverse offers) are answered.
    pub maintenance: Maintenance,
    /// Certificates (PEM) of authorities trusted for `https://` masters, besides the
    /// system's.
    pub ca_pem: Option<Vec<u8>>,
}

/// How berth answers a maintenance window (an inverse offer: the master asks for an agent's
/// resources back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Maintenance {
    /// Refuse: the tasks stay next to their data; an operator replaces pods to move them.
    #[default]
    Decline,
    /// Agree: the operator may take the agent down; berth recovers its pods as for any lost
    /// agent.
    Accept,
}

impl MesosConfig {
    /// Defaults for `masters`: back-off from 0.5 s to 15 s, 75 s per call.
    #[must_use]
    pub fn new(masters: Masters) -> Self {
        Self {
            masters,
            credentials: None,
            hostname: None,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
            call_timeout: Duration::from_secs(75),
            artifacts_url: None,
            maintenance: Maintenance::Decline,
            ca_pem: None,
        }
    }
}

/// What the subscription and the sender share.
#[derive(Debug, Default)]
struct Session {
    /// The leading master's base URL, once known.
    leader: Option<String>,
    /// The current subscription's stream id (none while disconnected).
    stream_id: Option<String>,
    /// The framework id (given, or learned from SUBSCRIBED).
    framework_id: Option<berth_mesos::FrameworkId>,
    /// TEARDOWN was accepted: do not subscribe again.
    torn_down: bool,
}

type Shared = Arc<Mutex<Session>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Session> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Mesos backend. Its tasks run on the Tokio runtime it was created on.
#[derive(Debug)]
pub struct MesosCluster {
    config: Arc<MesosConfig>,
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    shared: Shared,
    calls: Option<mpsc::UnboundedSender<wire::Call>>,
    roles: Vec<String>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MesosCluster {
    /// A backend for these masters; nothing is contacted before `subscribe`.
    ///
    /// # Errors
    /// Outside a Tokio runtime, or when the HTTP client cannot be built.
    pub fn new(config: MesosConfig) -> Result<Self, ClusterError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| ClusterError::Backend("the Mesos backend needs a Tokio runtime".into()))?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.call_timeout.min(Duration::from_secs(10)))
            .tcp_nodelay(true);
        if let Some(pem) = &config.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClusterError::Backend(format!("the masters' CA certificates: {e}")))?;
            if certs.is_empty() {
                return Err(ClusterError::Backend(
                    "the masters' CA file holds no PEM certificate".to_owned(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| ClusterError::Backend(format!("HTTP client: {e}")))?;
        Ok(Self {
            config: Arc::new(config),
            runtime,
            http,
            shared: Arc::default(),
            calls: None,
            roles: Vec::new(),
            tasks: Vec::new(),
        })
    }

    /// Reaches the agents (task sandboxes and commands) through the leading master.
    #[must_use]
    pub fn agent_api(&self) -> agents::AgentApi {
        agents::AgentApi::new(
            Arc::clone(&self.config),
            self.http.clone(),
            Arc::clone(&self.shared),
        )
    }

    /// The leading master's URL, once a subscription found it.
    #[must_use]
    pub fn leader(&self) -> Option<String> {
        lock(&self.shared).leader.clone()
    }
}

impl Drop for MesosCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The master's FrameworkInfo for the boundary's.
fn framework_info(f: FrameworkInfo, hostname: Option<String>) -> wire::FrameworkInfo {
    let capabilities = [
        CapabilityType::MultiRole,
        CapabilityType::ReservationRefinement,
        CapabilityType::PartitionAware,
        CapabilityType::TaskKillingState,
        CapabilityType::RegionAware,
    ]
    .into_iter()
    .map(|kind| Capability { kind })
    .collect();
    wire::FrameworkInfo {
        user: f.user,
        name: f.name,
        id: f.id,
        failover_timeout: f.failover_timeout,
        checkpoint: f.checkpoint,
        roles: f.roles,
        hostname,
        principal: Some(f.principal).filter(|p| !p.is_empty()),
        webui_url: f.webui_url,
        capabilities,
    }
}

impl Cluster for MesosCluster {
    fn subscribe(&mut self, framework: FrameworkInfo) -> Result<EventStream, ClusterError> {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.roles.clone_from(&framework.roles);
        {
            let mut s = lock(&self.shared);
            s.framework_id.clone_from(&framework.id);
            s.stream_id = None;
            s.torn_down = false;
        }
        let info = framework_info(framework, self.config.hostname.clone());
        let (events, stream) = mpsc::unbounded_channel::<Event>();
        let (calls, queue) = mpsc::unbounded_channel::<wire::Call>();
        let ctx = session::Context {
            config: Arc::clone(&self.config),
            http: self.http.clone(),
            shared: Arc::clone(&self.shared),
            calls: calls.clone(),
        };
        self.tasks
            .push(self.runtime.spawn(session::send_calls(ctx.clone(), queue)));
        self.tasks
            .push(self.runtime.spawn(session::subscription(ctx, info, events)));
        self.calls = Some(calls);
        Ok(stream)
    }

    fn send(&mut self, call: Call) -> Result<(), ClusterError> {
        let Some(calls) = &self.calls else {
            return Err(ClusterError::NotSubscribed);
        };
        let call = match (&self.config.artifacts_url, call) {
            (
                Some(base),
                Call::Accept {
                    offer_ids,
                    mut operations,
                    filters,
                },
            ) => {
                launch::render_templates_first(&mut operations, base);
                Call::Accept {
                    offer_ids,
                    operations,
                    filters,
                }
            }
            (_, call) => call,
        };
        let wire = convert::call_to_wire(call, None, &self.roles);
        calls.send(wire).map_err(|_| ClusterError::Closed)
    }
}
