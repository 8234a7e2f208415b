//! A Mesos master double for berth's tests and benchmarks.
//!
//! Real HTTP on loopback ports: `POST /api/v1/scheduler` with SUBSCRIBE opens a RecordIO
//! event stream (`Mesos-Stream-Id`, heartbeats); other calls need that stream id and get
//! 202. Behind it, the agents, their resources, reservations, persistent volumes and tasks
//! are a [`SimCluster`]: reservations and volumes outlive the scheduler's connection, status
//! updates carry a base64 `uuid` and are sent again until acknowledged, reconciliation is
//! answered, and a framework that stays away longer than its failover timeout is removed
//! ("Framework has been removed"). Several masters can run: only the leader answers, the others
//! redirect (307) to it, and [`MesosDouble::fail_over`] moves the leadership.
//!
//! ```text
//!  scheduler ──POST SUBSCRIBE──▶ master 0 (leader) ──200 + RecordIO events──▶ scheduler
//!  scheduler ──POST ACCEPT…────▶ master 1 ──307 Location: //master0/api/v1/scheduler
//!                                  │
//!                        SimCluster (agents, resources, tasks) ◀── test controls
//! ```
//!
//! With [`DoubleOptions::agent_root`], the double also answers like the agents do for
//! operators' tools: `GET /master/slaves` on the masters names each agent's libprocess pid on
//! one extra listener ([`MesosDouble::agents_url`]), which serves `/slave(n)/state`, the files
//! API over real task sandboxes under that root, and exec (nested container sessions run as
//! real processes). See the `agents` module.
//!
//! With a [`Schema`], every call received and every event sent is checked against Mesos's own
//! `.proto` files; a call that does not fit gets 400, and each misfit is recorded
//! ([`MesosDouble::violations`]) so a test can insist there are none.

mod agent_exec;
mod agent_files;
mod agents;
pub mod proto;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_cluster::mesos::convert::{call_from_wire, event_to_wire};
use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_cluster::{Cluster, ClusterError, Event, FrameworkInfo};
use berth_mesos::recordio;
use berth_mesos::scheduler::{self as wire, CallType};
use tokio::sync::{Notify, mpsc};

pub use proto::Schema;

/// Errors of the double.
#[derive(Debug, thiserror::Error)]
pub enum DoubleError {
    /// The `.proto` files could not be loaded.
    #[error("Mesos protos: {0}")]
    Proto(String),
    /// A port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// How the double behaves.
#[derive(Debug, Clone)]
pub struct DoubleOptions {
    /// Masters to run (the first leads).
    pub masters: usize,
    /// `heartbeat_interval_seconds` sent in SUBSCRIBED.
    pub heartbeat_secs: f64,
    /// How often free resources are offered.
    pub offer_interval: Duration,
    /// How often unacknowledged updates are sent again.
    pub resend_interval: Duration,
    /// Check every call and event against these protos.
    pub schema: Option<Schema>,
    /// Keep the log of calls (off for benchmarks).
    pub log_calls: bool,
    /// Serve HTTPS with this certificate and PKCS#8 key (both PEM) instead of HTTP.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Also behave like the agents (their state, files and exec endpoints on one more
    /// listener, `GET /master/slaves` on the masters), with task sandboxes made in this
    /// directory (created when missing). `None`: no agents' endpoints, nothing more bound.
    pub agent_root: Option<PathBuf>,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        Self {
            masters: 1,
            heartbeat_secs: 1.0,
            offer_interval: Duration::from_millis(50),
            resend_interval: Duration::from_secs(2),
            schema: None,
            log_calls: true,
            tls: None,
            agent_root: None,
        }
    }
}

/// The current subscription.
#[derive(Debug)]
struct Subscription {
    stream_id: String,
    framework_id: String,
    close: Arc<Notify>,
    /// Bytes written to the stream as they are (test faults).
    inject: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Masters {
    addrs: Vec<SocketAddr>,
    leader: usize,
    subscription: Option<Subscription>,
    generation: u64,
    failover_timeout: f64,
    refuse: Option<(u16, String)>,
    drop_at_accept: Option<usize>,
    accepts: usize,
    calls: Vec<CallType>,
    violations: Vec<String>,
    subscriptions: usize,
    events_sent: u64,
    /// The stream sends nothing (not even heartbeats) while set.
    silent: bool,
    /// ACKNOWLEDGE calls are answered 202 but not applied while set.
    ignore_acks: bool,
    /// Offer rounds whose offers are rescinded right after they are sent.
    rescind_rounds: usize,
    /// `Authorization` every call must carry (HTTP Basic), when set.
    credentials: Option<String>,
    /// Offers rescinded so far.
    rescinded: usize,
}

#[derive(Debug)]
struct Shared {
    sim: SimCluster,
    options: DoubleOptions,
    masters: Mutex<Masters>,
    started: Instant,
    /// The agents' side, when [`DoubleOptions::agent_root`] is set.
    agents: Option<agents::Agents>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Masters> {
        self.masters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running double; dropping it stops every master.
#[derive(Debug)]
pub struct MesosDouble {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn respond(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

impl MesosDouble {
    /// Starts the masters on loopback ports with these agents.
    ///
    /// # Errors
    /// A port cannot be bound.
    pub async fn start(
        agents: Vec<SimAgentSpec>,
        options: DoubleOptions,
    ) -> Result<Self, DoubleError> {
        let sim = SimCluster::new(agents);
        let count = options.masters.max(1);
        // The agents' side: one listener for every agent, sandboxes below the root.
        let (agents_listener, agents) = match &options.agent_root {
            None => None,
            Some(root) => {
                std::fs::create_dir_all(root)?;
                let root = std::fs::canonicalize(root)?;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                Some((listener, agents::Agents::new(root, addr)))
            }
        }
        .unzip();
        let shared = Arc::new(Shared {
            sim,
            options,
            masters: Mutex::new(Masters::default()),
            started: Instant::now(),
            agents,
        });
        let acceptor = match &shared.options.tls {
            None => None,
            Some((cert, key)) => {
                let identity = tokio_native_tls::native_tls::Identity::from_pkcs8(cert, key)
                    .map_err(|e| DoubleError::Tls(e.to_string()))?;
                let acceptor = tokio_native_tls::native_tls::TlsAcceptor::new(identity)
                    .map_err(|e| DoubleError::Tls(e.to_string()))?;
                Some(tokio_native_tls::TlsAcceptor::from(acceptor))
            }
        };
        let mut tasks = Vec::new();
        for index in 0..count {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            shared.lock().addrs.push(listener.local_addr()?);
            let app = axum::Router::new()
                .route("/api/v1/scheduler", axum::routing::post(scheduler_api))
                .route("/master/slaves", axum::routing::get(master_slaves))
                .with_state((Arc::clone(&shared), index));
            tasks.push(serve(listener, acceptor.clone(), app));
        }
        if let Some(listener) = agents_listener {
            let app = agents::router(Arc::clone(&shared));
            tasks.push(serve(listener, acceptor, app));
        }
        tasks.push(tokio::spawn(drive(Arc::clone(&shared))));
        Ok(Self { shared, tasks })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS) of each master, leader first at start.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.shared.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.shared
            .lock()
            .addrs
            .iter()
            .map(|a| format!("{scheme}://{a}"))
            .collect()
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS) of the agents' listener, where agent `n`
    /// (1-based, in the order of [`SimCluster::agents`]) is `slave(n)`; `None` without
    /// [`DoubleOptions::agent_root`].
    #[must_use]
    pub fn agents_url(&self) -> Option<String> {
        let scheme = if self.shared.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        self.shared
            .agents
            .as_ref()
            .map(|a| format!("{scheme}://{}", a.addr))
    }

    /// The agent root (canonical), when the agents' side is on.
    #[must_use]
    pub fn agent_root(&self) -> Option<PathBuf> {
        self.shared.agents.as_ref().map(|a| a.root.clone())
    }

    /// The `--master` value naming every master.
    #[must_use]
    pub fn master_arg(&self) -> String {
        self.urls().join(",")
    }

    /// The simulated agents and tasks (to crash tasks, stop agents, read reservations…).
    #[must_use]
    pub fn sim(&self) -> &SimCluster {
        &self.shared.sim
    }

    /// Breaks the scheduler's event stream; it is then disconnected, and removed when it does
    /// not come back within its failover timeout.
    pub fn drop_connection(&self) {
        let m = self.shared.lock();
        if let Some(s) = &m.subscription {
            s.close.notify_waiters();
            s.close.notify_one();
        }
    }

    /// Another master becomes the leader (the next one) and the stream breaks.
    pub fn fail_over(&self) {
        {
            let mut m = self.shared.lock();
            m.leader = (m.leader + 1) % m.addrs.len();
        }
        self.drop_connection();
    }

    /// Subscriptions get this HTTP status and text (`None`: accepted again).
    pub fn refuse_subscriptions(&self, refusal: Option<(u16, &str)>) {
        self.shared.lock().refuse = refusal.map(|(c, t)| (c, t.to_owned()));
    }

    /// The `n`-th ACCEPT from now (1 = the next) is lost with the connection: not applied,
    /// the stream breaks, the caller gets 403.
    pub fn drop_connection_at_accept(&self, n: usize) {
        let mut m = self.shared.lock();
        m.drop_at_accept = Some(m.accepts + n);
    }

    /// Writes `bytes` to the event stream as they are (no RecordIO framing added, no proto
    /// check): malformed events and broken framing.
    pub fn inject_bytes(&self, bytes: Vec<u8>) -> bool {
        let m = self.shared.lock();
        m.subscription
            .as_ref()
            .is_some_and(|s| s.inject.send(bytes).is_ok())
    }

    /// Sends `json` as one RecordIO record, unchecked (events the protos allow but berth
    /// does not know, or ones it cannot read).
    pub fn inject_event(&self, json: &str) -> bool {
        self.inject_bytes(recordio::encode(json.as_bytes()))
    }

    /// Stops (or resumes) everything on the stream, heartbeats included: a master gone
    /// silent without closing the connection.
    pub fn set_silent(&self, silent: bool) {
        self.shared.lock().silent = silent;
    }

    /// While set, ACKNOWLEDGE calls are answered but not applied, so updates are sent again.
    pub fn set_ignore_acks(&self, ignore: bool) {
        self.shared.lock().ignore_acks = ignore;
    }

    /// Registers every master in a ZooKeeper group the way Mesos masters do: an ephemeral
    /// sequential node `PATH/json.info_<seq>` holding its `MasterInfo` as JSON, in the order
    /// of [`Self::urls`] (so the first is the leader). The nodes live as long as the returned
    /// client.
    ///
    /// # Errors
    /// ZooKeeper unreachable or refusing the nodes.
    pub async fn register_in_zookeeper(
        &self,
        connect: &str,
        path: &str,
    ) -> Result<zookeeper_client::Client, String> {
        let client = zookeeper_client::Client::connect(connect)
            .await
            .map_err(|e| e.to_string())?;
        let persistent = zookeeper_client::CreateMode::Persistent
            .with_acls(zookeeper_client::Acls::anyone_all());
        let mut prefix = String::new();
        for part in path.trim_matches('/').split('/') {
            prefix = format!("{prefix}/{part}");
            match client.create(&prefix, &[], &persistent).await {
                Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
                Err(e) => return Err(format!("{prefix}: {e}")),
            }
        }
        let ephemeral = zookeeper_client::CreateMode::EphemeralSequential
            .with_acls(zookeeper_client::Acls::anyone_all());
        let addrs = self.shared.lock().addrs.clone();
        for (i, addr) in addrs.iter().enumerate() {
            let info = wire::MasterInfo {
                id: format!("double-master-{i}"),
                ip: u32::from_le_bytes(match addr.ip() {
                    std::net::IpAddr::V4(v4) => v4.octets(),
                    std::net::IpAddr::V6(_) => [127, 0, 0, 1],
                }),
                port: u32::from(addr.port()),
                hostname: Some(addr.ip().to_string()),
                version: Some("1.11.0".to_owned()),
                address: Some(wire::Address {
                    hostname: Some(addr.ip().to_string()),
                    ip: Some(addr.ip().to_string()),
                    port: i32::from(addr.port()),
                }),
                domain: None,
            };
            let data = serde_json::to_vec(&info).map_err(|e| e.to_string())?;
            client
                .create(&format!("{prefix}/json.info_"), &data, &ephemeral)
                .await
                .map_err(|e| format!("{prefix}/json.info_: {e}"))?;
        }
        Ok(client)
    }

    /// The offers of the next `rounds` offer rounds are rescinded right after they are sent
    /// (a scheduler that already answered them finds its ACCEPT refused: TASK_DROPPED).
    pub fn rescind_offer_rounds(&self, rounds: usize) {
        self.shared.lock().rescind_rounds = rounds;
    }

    /// Offers rescinded so far.
    #[must_use]
    pub fn rescinded(&self) -> usize {
        self.shared.lock().rescinded
    }

    /// Every call must carry these HTTP Basic credentials (the master's
    /// `--authenticate_http_frameworks`); others get 401.
    pub fn require_credentials(&self, principal: &str, secret: &str) {
        use base64::Engine as _;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
        self.shared.lock().credentials = Some(format!("Basic {token}"));
    }

    /// Calls received, by type, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<CallType> {
        self.shared.lock().calls.clone()
    }

    /// How many calls of `kind` were received.
    #[must_use]
    pub fn count(&self, kind: CallType) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| **c == kind)
            .count()
    }

    /// Calls and events that did not fit the protos.
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        self.shared.lock().violations.clone()
    }

    /// How many SUBSCRIBE calls were accepted.
    #[must_use]
    pub fn subscriptions(&self) -> usize {
        self.shared.lock().subscriptions
    }

    /// Whether a scheduler's event stream is open.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.shared.lock().subscription.is_some()
    }

    /// Events sent on streams so far.
    #[must_use]
    pub fn events_sent(&self) -> u64 {
        self.shared.lock().events_sent
    }
}

impl Drop for MesosDouble {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(agents) = &self.shared.agents {
            agents.sessions.kill_all();
        }
    }
}

/// Serves `app` on `listener`, over TLS when an acceptor is given.
fn serve(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_native_tls::TlsAcceptor>,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    match acceptor {
        None => tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
        Some(acceptor) => tokio::spawn(serve_tls(listener, acceptor, app)),
    }
}

/// Serves `app` over TLS: each accepted connection is handshaken, then served by hyper.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_native_tls::TlsAcceptor,
    app: axum::Router,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(tls),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .await;
        });
    }
}

/// Offers free resources and sends unacknowledged updates again, on the double's clock.
async fn drive(shared: Arc<Shared>) {
    let mut offers = tokio::time::interval(shared.options.offer_interval);
    let mut resend = tokio::time::interval(shared.options.resend_interval);
    // The first ticks are immediate: skip them, so the first offers come one interval in.
    offers.tick().await;
    resend.tick().await;
    loop {
        tokio::select! {
            _ = offers.tick() => {
                shared.sim.set_now(shared.started.elapsed().as_millis() as u64);
                if shared.lock().subscription.is_some() && shared.sim.offer_round() > 0 {
                    rescind_round(&shared);
                }
            }
            _ = resend.tick() => {
                if shared.lock().subscription.is_some() {
                    shared.sim.resend_unacknowledged();
                }
            }
        }
    }
}

/// Rescinds every outstanding offer, when a test asked for it.
fn rescind_round(shared: &Shared) {
    {
        let mut m = shared.lock();
        if m.rescind_rounds == 0 {
            return;
        }
        m.rescind_rounds -= 1;
    }
    let rescinded = shared
        .sim
        .agents()
        .iter()
        .filter(|(id, _, _)| shared.sim.rescind(id))
        .count();
    shared.lock().rescinded += rescinded;
}

/// A redirect (307) to the leader's `path` when master `index` does not lead.
fn redirect_to_leader(shared: &Shared, index: usize, path: &str) -> Option<Response> {
    let m = shared.lock();
    if m.leader == index {
        return None;
    }
    let leader = m.addrs[m.leader];
    Some(
        Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, format!("//{leader}{path}"))
            .body(Body::empty())
            .unwrap_or_default(),
    )
}

/// 401 when credentials are required and the request does not carry them.
fn check_credentials(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let expected = shared.lock().credentials.clone()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if given == Some(expected.as_str()) {
        return None;
    }
    Some(
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"mesos\"")
            .body(Body::from("Unauthorized: the credentials do not match"))
            .unwrap_or_default(),
    )
}

/// `GET /master/slaves`: the agents with their pids on the agents' listener (404 without
/// [`DoubleOptions::agent_root`]).
async fn master_slaves(
    State((shared, index)): State<(Arc<Shared>, usize)>,
    headers: HeaderMap,
) -> Response {
    if let Some(redirect) = redirect_to_leader(&shared, index, "/master/slaves") {
        return redirect;
    }
    if let Some(refusal) = check_credentials(&shared, &headers) {
        return refusal;
    }
    match &shared.agents {
        Some(agents) => axum::Json(agents.slaves(&shared.sim)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn scheduler_api(
    State((shared, index)): State<(Arc<Shared>, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(redirect) = redirect_to_leader(&shared, index, "/api/v1/scheduler") {
        return redirect;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/x-protobuf",
        );
    }
    if let Some(refusal) = check_credentials(&shared, &headers) {
        return refusal;
    }
    if let Some(schema) = &shared.options.schema
        && let Err(e) = schema.check_call(&body)
    {
        shared.lock().violations.push(format!("call: {e}"));
        return respond(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate call: {e}"),
        );
    }
    let call: wire::Call = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into Call: {e}"),
            );
        }
    };
    if shared.options.log_calls {
        shared.lock().calls.push(call.kind);
    }
    if call.kind == CallType::Subscribe {
        return subscribe(&shared, &headers, call);
    }
    other_call(&shared, &headers, call)
}

fn subscribe(shared: &Arc<Shared>, headers: &HeaderMap, call: wire::Call) -> Response {
    if headers.contains_key("Mesos-Stream-Id") {
        return respond(
            StatusCode::BAD_REQUEST,
            "Expecting 'Mesos-Stream-Id' header to be absent in SUBSCRIBE",
        );
    }
    let Some(sub) = call.subscribe else {
        return respond(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    let info = sub.framework_info;
    if let Some((code, text)) = shared.lock().refuse.clone() {
        return respond(
            StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN),
            text,
        );
    }
    if info.roles.iter().any(|r| r == "*") || info.roles.is_empty() {
        return respond(
            StatusCode::BAD_REQUEST,
            "Framework subscribed with role '*' or no role, which cannot reserve resources",
        );
    }
    let framework = FrameworkInfo {
        id: info.id.clone(),
        name: info.name.clone(),
        user: info.user.clone(),
        principal: info.principal.clone().unwrap_or_default(),
        roles: info.roles.clone(),
        failover_timeout: info.failover_timeout,
        checkpoint: info.checkpoint,
        webui_url: info.webui_url.clone(),
    };
    // A new subscription replaces the old one (whose stream is closed).
    let close = Arc::new(Notify::new());
    let (stream_id, generation) = {
        let mut m = shared.lock();
        if let Some(old) = m.subscription.take() {
            old.close.notify_one();
        }
        m.generation += 1;
        m.failover_timeout = info.failover_timeout;
        m.subscriptions += 1;
        (uuid::Uuid::new_v4().to_string(), m.generation)
    };
    let mut sim = shared.sim.clone();
    let events = match sim.subscribe(framework) {
        Ok(rx) => rx,
        Err(e) => return respond(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let framework_id = sim.framework_id().unwrap_or_default();
    if let Some(agents) = &shared.agents {
        agents.framework_subscribed(&framework_id, &info.name);
    }
    let (inject, injected) = mpsc::unbounded_channel();
    shared.lock().subscription = Some(Subscription {
        stream_id: stream_id.clone(),
        framework_id,
        close: Arc::clone(&close),
        inject,
    });
    let stream = EventStream {
        shared: Arc::clone(shared),
        events,
        injected,
        close,
        heartbeat: tokio::time::interval(Duration::from_secs_f64(
            shared.options.heartbeat_secs.max(0.01),
        )),
        generation,
        ended: false,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Mesos-Stream-Id", stream_id)
        .body(Body::from_stream(stream.into_stream()))
        .unwrap_or_default()
}

fn other_call(shared: &Arc<Shared>, headers: &HeaderMap, call: wire::Call) -> Response {
    let stream_id = headers.get("Mesos-Stream-Id").and_then(|v| v.to_str().ok());
    let drop_now = {
        let mut m = shared.lock();
        let Some(sub) = &m.subscription else {
            return respond(StatusCode::FORBIDDEN, "Framework is not subscribed");
        };
        if call.framework_id.as_ref().map(|f| f.as_str()) != Some(sub.framework_id.as_str()) {
            return respond(StatusCode::BAD_REQUEST, "Framework cannot be found");
        }
        match stream_id {
            None => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
                );
            }
            Some(id) if id != sub.stream_id => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The stream ID '{id}' included in this request didn't match the stream ID \
                         currently associated with framework ID {}",
                        sub.framework_id
                    ),
                );
            }
            Some(_) => {}
        }
        if call.kind == CallType::Accept {
            m.accepts += 1;
            m.drop_at_accept == Some(m.accepts)
        } else {
            false
        }
    };
    if drop_now {
        let m = shared.lock();
        if let Some(s) = &m.subscription {
            s.close.notify_one();
        }
        return respond(StatusCode::FORBIDDEN, "Framework is not subscribed");
    }
    let kind = call.kind;
    if kind == CallType::Acknowledge && shared.lock().ignore_acks {
        return StatusCode::ACCEPTED.into_response();
    }
    let Some(call) = call_from_wire(call) else {
        // Inverse offers and SHUTDOWN: nothing in the simulation to apply them to.
        return StatusCode::ACCEPTED.into_response();
    };
    let mut sim = shared.sim.clone();
    match sim.send(call) {
        Ok(()) => {
            if kind == CallType::Accept
                && let Some(agents) = &shared.agents
            {
                agents.sync(&shared.sim);
            }
            if kind == CallType::Teardown {
                let mut m = shared.lock();
                if let Some(s) = m.subscription.take() {
                    s.close.notify_one();
                }
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(ClusterError::NotSubscribed) => {
            respond(StatusCode::FORBIDDEN, "Framework is not subscribed")
        }
        Err(e) => respond(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// One subscriber's stream: events as RecordIO records, heartbeats in between.
struct EventStream {
    shared: Arc<Shared>,
    events: mpsc::UnboundedReceiver<Event>,
    injected: mpsc::UnboundedReceiver<Vec<u8>>,
    close: Arc<Notify>,
    heartbeat: tokio::time::Interval,
    generation: u64,
    ended: bool,
}

impl EventStream {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut s| async move {
            if s.ended {
                return None;
            }
            while s.shared.lock().silent {
                tokio::select! {
                    () = s.close.notified() => return None,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
            let event = tokio::select! {
                () = s.close.notified() => return None,
                raw = s.injected.recv() => match raw {
                    Some(raw) => return Some((Ok(Bytes::from(raw)), s)),
                    None => return None,
                },
                e = s.events.recv() => match e {
                    Some(e) => e,
                    None => return None,
                },
                _ = s.heartbeat.tick() => Event::Heartbeat,
            };
            let event = match event {
                Event::Error { .. } => {
                    s.ended = true;
                    event
                }
                // The interval this double really keeps.
                Event::Subscribed { framework_id, .. } => Event::Subscribed {
                    framework_id,
                    heartbeat_interval_seconds: s.shared.options.heartbeat_secs,
                },
                other => other,
            };
            let wire = event_to_wire(event)?;
            let json = serde_json::to_vec(&wire).ok()?;
            if let Some(schema) = &s.shared.options.schema
                && let Err(e) = schema.check_event(&json)
            {
                s.shared.lock().violations.push(format!("event: {e}"));
            }
            s.shared.lock().events_sent += 1;
            Some((Ok(Bytes::from(recordio::encode(&json))), s))
        })
    }
}

impl Drop for EventStream {
    /// The connection is gone: the framework is disconnected and, unless it subscribes again
    /// within its failover timeout, removed.
    fn drop(&mut self) {
        let shared = Arc::clone(&self.shared);
        let generation = self.generation;
        let timeout = {
            let mut m = shared.lock();
            if m.generation != generation {
                return;
            }
            m.subscription = None;
            m.failover_timeout
        };
        shared.sim.disconnect();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(Duration::from_secs_f64(timeout.clamp(0.0, 1e7))).await;
                if shared.lock().generation == generation {
                    tracing::info!("double: failover timeout passed; removing the framework");
                    shared.sim.remove_framework();
                }
            });
        }
    }
}
