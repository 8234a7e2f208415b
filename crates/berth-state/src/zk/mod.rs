//! [`ZkPersister`]: the ZooKeeper backend of the [`Persister`] contract, and the leader lock
//! that keeps a second scheduler of the same service from running.
//!
//! # Flow
//!
//! ```text
//!  caller thread (scheduler worker, API handler, plain thread)
//!     │ get / children / subtree / apply / acquire_lock …   (synchronous)
//!     ▼
//!  spawn onto the persister's own runtime (thread "berth-zk") ──▶ wait for the answer
//!     │
//!     ▼  async, on one ZooKeeper session (zookeeper-client)
//!  reads:  pipelined requests (thousands in flight), every answer awaited ≤ request_timeout
//!  apply:  plan   — pipelined `exists` for unknown ancestors, listings of deleted subtrees
//!          ops    — create missing ancestors / setData / delete leaf-first, in batch order
//!          chunks — one `multi` each, ≤ ~1 MB, each starting with `check <our lock node>`
//!          commit — chunk by chunk, in order
//! ```
//!
//! # Guarantees and caveats
//!
//! - **Durability.** ZooKeeper acknowledges a `multi` after its transaction log is fsync'ed
//!   (on a quorum of an ensemble); when [`apply`](Persister::apply) returns `Ok`, the batch
//!   survives a crash of berth and of the ZooKeeper servers.
//! - **Atomicity per request.** A batch whose ZooKeeper requests fit in one `multi` (below
//!   ~1,000,000 bytes of paths and data, estimated with 64 bytes of overhead per operation) is
//!   atomic. A larger batch is split into several `multi`s, applied **in batch order, one after
//!   the other**; each is atomic, the batch as a whole is not: after an error, a prefix of the
//!   chunks may be stored (the error's hint says so). Retrying the same batch is always safe
//!   — it is planned again from what is stored, and applying a batch over its own prefix
//!   gives the same tree as applying it once — so "retry until `Ok`" restores the batch
//!   exactly, with nothing lost and nothing duplicated. The store's group commits of one
//!   offer cycle normally fit in one request.
//! - **Unknown outcome.** When ZooKeeper goes away while a `multi` is in flight, its answer
//!   is lost and it may or may not have been applied: the call fails with a retryable
//!   [`StateError::Unavailable`] saying so. Retry the same batch.
//! - **Reads** see every `apply` that returned before them (one session, FIFO order). A
//!   [`subtree`](Persister::subtree) read while another writer writes is not a snapshot; the
//!   leader lock makes berth the only writer.
//! - **Availability.** While the connection is lost but the session is still valid, every
//!   call fails at once with a retryable [`StateError::Unavailable`] and succeeds again once
//!   the client has reconnected. When the session expired, the next call creates a new one.
//!   No call waits longer than `request_timeout` for an answer.
//! - **Fencing.** Once [`acquire_lock`](ZkPersister::acquire_lock) succeeded, every `multi`
//!   starts with a `check` that this persister's lock node still exists, so a scheduler whose
//!   session expired can never write over another one's state. See
//!   [`acquire_lock`](ZkPersister::acquire_lock) for what happens after an expiry.
//! - **Values** are stored as given; a single write larger than ZooKeeper's request limit
//!   (`jute.maxbuffer`, 1,048,575 bytes, less headers) is refused before anything is sent.
//! - Without a chroot, ZooKeeper's own `/zookeeper` node is hidden from
//!   [`children`](Persister::children) and [`subtree`](Persister::subtree) of `/`.

mod owner;
mod plan;
mod url;

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use zookeeper_client as zk;

pub use self::owner::LockOwner;
use self::plan::{OP_OVERHEAD, REQUEST_MARGIN, ZK_MAX_REQUEST, ZkOp};
pub use self::url::ZkUrl;
use crate::error::format_duration;
use crate::path::{ancestors, descendant_prefix, range_end, validate_path, validate_write_path};
use crate::persister::validate_ops;
use crate::{Persister, StateError, WriteOp};

/// How often one `apply` plans again after ZooKeeper refused a `multi` because the tree was
/// not as planned (a stale existence cache, another writer).
const MAX_PLANS: usize = 4;
/// The node name prefix of lock contenders: `leader-<persister id>-<sequence>`.
const LOCK_PREFIX: &str = "leader-";
/// The longest time `Drop` waits for ZooKeeper to confirm the end of the session.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

const HINT_READ: &str = "retry once ZooKeeper is reachable again";
const HINT_NOT_APPLIED: &str =
    "nothing was applied; retry the same batch once ZooKeeper is reachable again";
const HINT_UNKNOWN: &str =
    "the batch may or may not have been applied; retry the same batch (applying it again is safe)";

/// Timeouts of a [`ZkPersister`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZkOptions {
    /// The ZooKeeper session timeout asked for (the server may grant another one within its
    /// `minSessionTimeout`..`maxSessionTimeout`). After this long without contact, ZooKeeper
    /// ends the session and removes its ephemeral nodes — the leader lock among them. Default
    /// 10 s.
    pub session_timeout: Duration,
    /// How long [`ZkPersister::connect`] (and creating a new session after an expiry) tries
    /// to reach a server. Default 10 s.
    pub connect_timeout: Duration,
    /// How long any call waits for ZooKeeper's answer to one request before it fails with a
    /// retryable error. Default 10 s.
    pub request_timeout: Duration,
}

impl Default for ZkOptions {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The state of a [`ZkPersister`]'s ZooKeeper session, for health reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZkConnectionState {
    /// Connected; calls are served.
    Connected,
    /// The connection was lost at `since`; the session is still valid and the client is
    /// reconnecting. Calls fail with a retryable error meanwhile.
    Disconnected {
        /// When the connection was lost.
        since: Instant,
    },
    /// The session expired (or was closed); the next call creates a new one. A leader lock
    /// held by the old session is gone.
    Expired,
}

/// A [`Persister`] over a ZooKeeper ensemble, with the leader lock of a service.
///
/// See the [module documentation](self) for the guarantees. The value owns a small runtime
/// thread (`berth-zk`) running the asynchronous client, so its synchronous methods can be
/// called from anywhere — plain threads and tokio worker threads alike. Dropping it releases
/// the lock and closes the session (its ephemeral nodes disappear at once).
pub struct ZkPersister {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set by [`ZkPersister::crash`]: drop without closing anything.
    crashed: bool,
}

impl fmt::Debug for ZkPersister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZkPersister")
            .field("url", &self.inner.location)
            .finish_non_exhaustive()
    }
}

impl ZkPersister {
    /// Connects to the ensemble of `url` (creating its chroot when missing).
    ///
    /// # Errors
    /// - [`StateError::Unreachable`] when no server answers within `connect_timeout` ("cannot
    ///   reach ZooKeeper at 127.0.0.1:2181 within 10 s: …; is it running?");
    /// - [`StateError::Backend`] when the chroot cannot be created (e.g. ACLs) or the client
    ///   thread cannot be started.
    pub fn connect(url: &ZkUrl, options: &ZkOptions) -> Result<Self, StateError> {
        let location = url.to_string();
        let backend = |message: String| StateError::Backend {
            location: location.clone(),
            action: "starting the ZooKeeper client".to_owned(),
            message,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| backend(e.to_string()))?;
        let handle = runtime.handle().clone();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        // The runtime lives and dies on its own thread: dropping it elsewhere (e.g. inside the
        // caller's tokio runtime) would not be allowed.
        let thread = std::thread::Builder::new()
            .name("berth-zk".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| backend(e.to_string()))?;
        let inner = Arc::new(Inner {
            url: url.clone(),
            location,
            options: *options,
            id: uuid::Uuid::new_v4().simple().to_string(),
            conn: Mutex::new(Conn::default()),
            renew: tokio::sync::Mutex::new(()),
            writer: tokio::sync::Mutex::new(Writer::default()),
            disconnected_since: Arc::new(Mutex::new(None)),
        });
        let persister = Self {
            inner,
            handle,
            shutdown: Some(shutdown),
            thread: Some(thread),
            crashed: false,
        };
        let inner = persister.inner.clone();
        persister.run(async move { inner.first_session().await })?;
        tracing::debug!(url = %persister.inner.location, "connected to ZooKeeper");
        Ok(persister)
    }

    /// The URL this persister was connected with.
    #[must_use]
    pub fn url(&self) -> &ZkUrl {
        &self.inner.url
    }

    /// The state of the session, for health reporting.
    #[must_use]
    pub fn connection_state(&self) -> ZkConnectionState {
        self.inner.connection_state()
    }

    /// Acquires the leader lock of the service whose state is under `root`
    /// (`/dcos-service-<name>`), waiting at most `wait` for another holder to go.
    ///
    /// Like Curator's mutex: every contender creates an ephemeral sequential node
    /// `<root>/lock/leader-…` holding `owner` as JSON; the lowest sequence holds the lock, and
    /// a waiter watches the node just before its own. `<root>` and `<root>/lock` are created
    /// when missing. Acquiring a lock this persister holds already does nothing.
    ///
    /// Once held, every `apply` is fenced by it (see the [module documentation](self)). When
    /// the session expires while the lock is held, the next `apply` creates a new session and
    /// looks at the lock: if nobody else holds or waits for it, it takes it again and carries
    /// on; otherwise it fails with [`StateError::LockLost`] — from then on every `apply` does,
    /// until [`release_lock`](Self::release_lock). A lost lock is fatal for a scheduler: its
    /// view of the state may be stale.
    ///
    /// # Errors
    /// - [`StateError::LockHeld`] when another process holds the lock after `wait` (at once
    ///   for a zero `wait`), naming it; nothing stays written (this contender's own node is
    ///   removed again);
    /// - [`StateError::InvalidPath`] for a bad `root`, or when this persister holds the lock
    ///   of another root;
    /// - retryable [`StateError::Unavailable`] when ZooKeeper cannot be reached.
    pub fn acquire_lock(
        &self,
        root: &str,
        owner: &LockOwner,
        wait: Duration,
    ) -> Result<(), StateError> {
        validate_write_path(root)?;
        let data = serde_json::to_vec(owner).map_err(|e| StateError::Encode {
            path: format!("{root}/lock"),
            message: e.to_string(),
        })?;
        let inner = self.inner.clone();
        let root = root.to_owned();
        self.run(async move { inner.acquire(root, data, wait).await })
    }

    /// Who holds the leader lock of the service under `root`, if anyone; reads only. For
    /// tools that must refuse to work while a scheduler runs.
    ///
    /// # Errors
    /// [`StateError::InvalidPath`] for a bad `root`; [`StateError::CorruptValue`] when the
    /// holder's node does not hold a [`LockOwner`]; retryable errors when ZooKeeper cannot be
    /// reached.
    pub fn lock_holder(&self, root: &str) -> Result<Option<LockOwner>, StateError> {
        validate_path(root)?;
        let inner = self.inner.clone();
        let root = root.to_owned();
        self.run(async move { inner.holder(root).await })
    }

    /// Releases the leader lock (deletes this persister's lock node); does nothing when no
    /// lock is held. Also done on drop.
    ///
    /// # Errors
    /// Retryable errors when ZooKeeper cannot be reached; the lock node then disappears when
    /// the session ends (on drop, or when it expires).
    pub fn release_lock(&self) -> Result<(), StateError> {
        let inner = self.inner.clone();
        self.run(async move { inner.release().await })
    }

    /// Ends this persister the way a killed process would, for failure tests: the connection
    /// is dropped without closing the session or releasing the lock, so ZooKeeper removes the
    /// lock node only when the session expires (after the session timeout).
    pub fn crash(mut self) {
        self.crashed = true;
    }

    /// Runs `future` on the client runtime and waits for its result.
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, StateError>> + Send + 'static,
    ) -> Result<T, StateError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StateError::Backend {
                location: self.inner.location.clone(),
                action: "waiting for the ZooKeeper client".to_owned(),
                message: "the client thread stopped".to_owned(),
            })
        })
    }
}

impl Drop for ZkPersister {
    fn drop(&mut self) {
        if !self.crashed {
            let inner = self.inner.clone();
            let _ = self.run(async move {
                inner.close().await;
                Ok(())
            });
        }
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Persister for ZkPersister {
    fn unavailable(&self) -> Option<String> {
        match self.connection_state() {
            ZkConnectionState::Disconnected { since } => Some(format!(
                "the connection to ZooKeeper at {} was lost {} ago; reconnecting (the session \
                 is kept for {})",
                self.inner.location,
                format_duration(Duration::from_secs(since.elapsed().as_secs())),
                format_duration(self.inner.options.session_timeout)
            )),
            // Connected, or expired: the next call creates a new session.
            _ => None,
        }
    }

    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        validate_path(path)?;
        if path == "/" {
            return Ok(Some(Vec::new()));
        }
        let inner = self.inner.clone();
        let path = path.to_owned();
        self.run(async move { inner.get(path).await })
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        validate_path(path)?;
        let inner = self.inner.clone();
        let path = path.to_owned();
        self.run(async move { inner.children(path).await })
    }

    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        validate_path(path)?;
        let inner = self.inner.clone();
        let path = path.to_owned();
        self.run(async move { inner.subtree(path).await })
    }

    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        validate_ops(ops)?;
        let prefix = self.inner.prefix_len();
        for op in ops {
            if let WriteOp::Set { path, value } = op {
                let max = (ZK_MAX_REQUEST - REQUEST_MARGIN - OP_OVERHEAD)
                    .saturating_sub(prefix + path.len());
                if value.len() > max {
                    return Err(StateError::ValueTooLarge {
                        path: path.clone(),
                        size: value.len(),
                        max,
                    });
                }
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        let ops = ops.to_vec();
        self.run(async move { inner.apply(ops).await })
    }
}

/// The state shared by the synchronous handle and the tasks on the client runtime.
struct Inner {
    url: ZkUrl,
    /// The URL as text, for messages.
    location: String,
    options: ZkOptions,
    /// Unique per persister; marks its lock nodes.
    id: String,
    conn: Mutex<Conn>,
    /// Held while a new session is created.
    renew: tokio::sync::Mutex<()>,
    /// Held by writes and lock changes: one at a time, in call order.
    writer: tokio::sync::Mutex<Writer>,
    /// When the current session's connection was lost, if it is lost: (generation, time).
    disconnected_since: Arc<Mutex<Option<(u64, Instant)>>>,
}

/// The current session.
#[derive(Default)]
struct Conn {
    client: Option<zk::Client>,
    /// Counts sessions; the existence cache and the lock belong to one.
    generation: u64,
}

/// What writes need: the existence cache and the lock.
#[derive(Default)]
struct Writer {
    /// Paths known to exist (a cache: a wrong entry makes a `multi` fail and the batch be
    /// planned again without it).
    known: BTreeSet<String>,
    /// The session generation `known` belongs to.
    generation: u64,
    lock: LockSlot,
}

#[derive(Default)]
enum LockSlot {
    #[default]
    Free,
    Held(Held),
    /// Lost to another holder (described, when known): every write fails.
    Lost {
        /// `<root>/lock`.
        dir: String,
        /// Who holds it now, when known.
        holder: Option<String>,
    },
}

/// A held leader lock.
#[derive(Clone)]
struct Held {
    /// The service root.
    root: String,
    /// `<root>/lock`.
    dir: String,
    /// Our node's name in `dir`.
    name: String,
    /// The owner JSON.
    data: Vec<u8>,
    /// The session that created the node.
    session: i64,
}

impl Held {
    fn path(&self) -> String {
        format!("{}/{}", self.dir, self.name)
    }
}

/// Why a ZooKeeper request failed.
enum Failure {
    /// ZooKeeper's (or the client's) error.
    Zk(zk::Error),
    /// No answer within the request timeout.
    Timeout,
}

impl From<zk::Error> for Failure {
    fn from(e: zk::Error) -> Self {
        Failure::Zk(e)
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Whether a client error means "ZooKeeper is (temporarily) not there". The client reports
/// failures of the connection itself (I/O errors such as "connection reset", "no response
/// from connection in …") as custom errors.
fn transient(e: &zk::Error) -> bool {
    matches!(
        e,
        zk::Error::Custom(_)
            | zk::Error::ConnectionLoss
            | zk::Error::SessionExpired
            | zk::Error::SessionMoved
            | zk::Error::ClientClosed
            | zk::Error::Timeout
            | zk::Error::Throttled
            | zk::Error::NoHosts
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent at every await-free step; a panic elsewhere does not
    // make them unusable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `parent/name`, also for the root.
fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// The sequence number of a lock node name (`…-0000000042`).
fn sequence_of(name: &str) -> Option<i64> {
    name.rsplit('-').next().and_then(|s| s.parse().ok())
}

impl Inner {
    fn prefix_len(&self) -> usize {
        self.url.chroot().map_or(0, str::len)
    }

    fn lock_location(&self, dir: &str) -> String {
        format!(
            "zk://{}{}{dir}",
            self.url.connect_string(),
            self.url.chroot().unwrap_or("")
        )
    }

    fn unavailable(&self, action: &str, message: impl Into<String>, hint: &str) -> StateError {
        StateError::Unavailable {
            location: self.location.clone(),
            action: action.to_owned(),
            message: message.into(),
            hint: hint.to_owned(),
        }
    }

    /// The error for a failed request.
    fn failure(&self, action: &str, failure: Failure, hint: &str) -> StateError {
        match failure {
            Failure::Timeout => self.unavailable(
                action,
                format!(
                    "no answer within {}",
                    format_duration(self.options.request_timeout)
                ),
                hint,
            ),
            Failure::Zk(e) if transient(&e) => self.unavailable(action, e.to_string(), hint),
            Failure::Zk(e) => StateError::Backend {
                location: self.location.clone(),
                action: action.to_owned(),
                message: e.to_string(),
            },
        }
    }

    /// Awaits one answer, at most the request timeout.
    async fn ask<T>(&self, f: impl Future<Output = Result<T, zk::Error>>) -> Result<T, Failure> {
        match tokio::time::timeout(self.options.request_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Zk(e)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    fn connection_state(&self) -> ZkConnectionState {
        let conn = lock(&self.conn);
        let Some(client) = &conn.client else {
            return ZkConnectionState::Expired;
        };
        match client.state() {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                ZkConnectionState::Connected
            }
            zk::SessionState::Disconnected => {
                let since = match *lock(&self.disconnected_since) {
                    Some((generation, since)) if generation == conn.generation => since,
                    _ => Instant::now(),
                };
                ZkConnectionState::Disconnected { since }
            }
            _ => ZkConnectionState::Expired,
        }
    }

    /// Opens a session and creates the chroot when missing; the client is rooted there.
    async fn open_session(&self) -> Result<zk::Client, zk::Error> {
        let client = zk::Client::connector()
            .with_session_timeout(self.options.session_timeout)
            .connect(&self.url.connect_string())
            .await?;
        let Some(chroot) = self.url.chroot() else {
            return Ok(client);
        };
        for path in ancestors(chroot).chain(std::iter::once(chroot)) {
            match client.create(path, &[], &persistent()).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        client
            .chroot(chroot.to_owned())
            .map_err(|_| zk::Error::UnexpectedError(format!("the chroot {chroot} is invalid")))
    }

    /// Makes `client` the current session and follows its state.
    fn install(&self, client: zk::Client) -> (zk::Client, u64) {
        let mut conn = lock(&self.conn);
        conn.generation += 1;
        let generation = conn.generation;
        conn.client = Some(client.clone());
        drop(conn);
        let mut watcher = client.state_watcher();
        let since = self.disconnected_since.clone();
        tokio::spawn(async move {
            loop {
                let state = watcher.changed().await;
                let mut since = lock(&since);
                match state {
                    zk::SessionState::Disconnected => {
                        if since.is_none_or(|(g, _)| g != generation) {
                            *since = Some((generation, Instant::now()));
                        }
                    }
                    _ => {
                        if since.is_some_and(|(g, _)| g == generation) {
                            *since = None;
                        }
                    }
                }
                if state.is_terminated() {
                    break;
                }
            }
        });
        (client, generation)
    }

    /// The first session, made by `connect`.
    async fn first_session(&self) -> Result<(), StateError> {
        let wait = self.options.connect_timeout;
        let message = match tokio::time::timeout(wait, self.open_session()).await {
            Ok(Ok(client)) => {
                self.install(client);
                return Ok(());
            }
            Ok(Err(e)) if !transient(&e) => {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    action: "connecting".to_owned(),
                    message: e.to_string(),
                });
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no server answered".to_owned(),
        };
        Err(StateError::Unreachable {
            servers: self.url.connect_string(),
            waited: wait,
            message: self.probe(message).await,
        })
    }

    /// What each server says to a plain TCP connection, to explain a failed connect
    /// (`127.0.0.1:2181: Connection refused (os error 111)`); `fallback` when they all accept.
    async fn probe(&self, fallback: String) -> String {
        let mut answers = Vec::new();
        for server in self.url.servers() {
            let addr = server.trim_start_matches('[').replace("]:", ":");
            let target = if server.starts_with('[') {
                // tokio wants [v6]:port as is.
                server.clone()
            } else {
                addr
            };
            match tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(target.as_str()),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => answers.push(format!("{server}: {e}")),
                Err(_) => answers.push(format!("{server}: no answer to a TCP connect")),
            }
        }
        if answers.is_empty() {
            format!("the servers accept connections but no session was made ({fallback})")
        } else {
            answers.join(", ")
        }
    }

    /// A connected client: the current session when connected; a new session when it
    /// expired; a retryable error while it is reconnecting or no server answers.
    async fn client(&self, action: &str, hint: &str) -> Result<(zk::Client, u64), StateError> {
        let usable = |conn: &Conn| -> Result<Option<(zk::Client, u64)>, StateError> {
            let Some(client) = &conn.client else {
                return Ok(None);
            };
            match client.state() {
                zk::SessionState::SyncConnected => Ok(Some((client.clone(), conn.generation))),
                zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                    let since = match *lock(&self.disconnected_since) {
                        Some((g, since)) if g == conn.generation => {
                            format!(" {} ago", format_duration(round_secs(since.elapsed())))
                        }
                        _ => String::new(),
                    };
                    Err(self.unavailable(
                        action,
                        format!(
                            "the connection was lost{since}; the session is still valid and the \
                             client is reconnecting"
                        ),
                        hint,
                    ))
                }
                _ => Ok(None),
            }
        };
        if let Some(found) = usable(&lock(&self.conn))? {
            return Ok(found);
        }
        let Ok(_renewing) =
            tokio::time::timeout(self.options.request_timeout, self.renew.lock()).await
        else {
            return Err(self.unavailable(action, "a new session is still being created", hint));
        };
        if let Some(found) = usable(&lock(&self.conn))? {
            return Ok(found);
        }
        let wait = self
            .options
            .connect_timeout
            .min(self.options.request_timeout);
        match tokio::time::timeout(wait, self.open_session()).await {
            Ok(Ok(client)) => {
                let (client, generation) = self.install(client);
                tracing::info!(
                    url = %self.location,
                    session = %client.session_id(),
                    "created a new ZooKeeper session after the old one expired"
                );
                Ok((client, generation))
            }
            Ok(Err(e)) => Err(self.unavailable(
                action,
                format!("the ZooKeeper session expired and a new one could not be created: {e}"),
                hint,
            )),
            Err(_) => Err(self.unavailable(
                action,
                format!(
                    "the ZooKeeper session expired and no server answered within {}",
                    format_duration(wait)
                ),
                hint,
            )),
        }
    }

    async fn get(&self, path: String) -> Result<Option<Vec<u8>>, StateError> {
        let action = format!("reading {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        match self.ask(client.get_data(&path)).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(Failure::Zk(zk::Error::NoNode)) => Ok(None),
            Err(f) => Err(self.failure(&action, f, HINT_READ)),
        }
    }

    async fn children(&self, path: String) -> Result<Vec<String>, StateError> {
        let action = format!("listing {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        match self.ask(client.get_children(&path)).await {
            Ok((mut names, _)) => {
                if path == "/" && self.url.chroot().is_none() {
                    names.retain(|n| n != "zookeeper");
                }
                names.sort_unstable();
                Ok(names)
            }
            Err(Failure::Zk(zk::Error::NoNode)) => Ok(Vec::new()),
            Err(f) => Err(self.failure(&action, f, HINT_READ)),
        }
    }

    /// Every node at and below `path` with its data: data reads and child listings are
    /// pipelined — a node's children are asked for as soon as its data (whose stat counts
    /// them) arrives, and their data as soon as the listing arrives.
    async fn subtree(&self, path: String) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        enum Answer {
            Data(String, Result<(Vec<u8>, zk::Stat), zk::Error>),
            Children(String, Result<(Vec<String>, zk::Stat), zk::Error>),
        }
        let action = format!("reading the tree below {path}");
        let (client, _) = self.client(&action, HINT_READ).await?;
        let hide_zookeeper = self.url.chroot().is_none();
        let data = |path: String| -> BoxFuture<Answer> {
            let f = client.get_data(&path);
            Box::pin(async move { Answer::Data(path, f.await) })
        };
        let children = |path: String| -> BoxFuture<Answer> {
            let f = client.get_children(&path);
            Box::pin(async move { Answer::Children(path, f.await) })
        };
        let mut pending: FuturesUnordered<BoxFuture<Answer>> = FuturesUnordered::new();
        pending.push(data(path.clone()));
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(self.options.request_timeout, pending.next()).await;
            let answer = match next {
                Ok(Some(answer)) => answer,
                Ok(None) => break,
                Err(_) => return Err(self.failure(&action, Failure::Timeout, HINT_READ)),
            };
            match answer {
                Answer::Data(p, Ok((value, stat))) => {
                    if stat.num_children > 0 {
                        pending.push(children(p.clone()));
                    }
                    // The root (or the chroot standing for it) has empty data by contract.
                    out.push((p.clone(), if p == "/" { Vec::new() } else { value }));
                }
                Answer::Children(p, Ok((names, _))) => {
                    for name in names {
                        if p == "/" && hide_zookeeper && name == "zookeeper" {
                            continue;
                        }
                        pending.push(data(child_path(&p, &name)));
                    }
                }
                // Deleted meanwhile (or `path` is missing).
                Answer::Data(_, Err(zk::Error::NoNode))
                | Answer::Children(_, Err(zk::Error::NoNode)) => {}
                Answer::Data(_, Err(e)) | Answer::Children(_, Err(e)) => {
                    return Err(self.failure(&action, Failure::Zk(e), HINT_READ));
                }
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Answers the planner's [`plan::Queries`], all requests pipelined.
    async fn facts(
        &self,
        client: &zk::Client,
        queries: plan::Queries,
    ) -> Result<plan::Facts, Failure> {
        enum Answer {
            Exists(String, Result<Option<zk::Stat>, zk::Error>),
            Listed(usize, String, Result<(Vec<String>, zk::Stat), zk::Error>),
        }
        let listing = |i: usize, path: String| -> BoxFuture<Answer> {
            let f = client.get_children(&path);
            Box::pin(async move { Answer::Listed(i, path, f.await) })
        };
        let mut pending: FuturesUnordered<BoxFuture<Answer>> = FuturesUnordered::new();
        for path in queries.exists {
            let f = client.check_stat(&path);
            pending.push(Box::pin(async move { Answer::Exists(path, f.await) }));
        }
        for (i, root) in queries.subtrees.iter().enumerate() {
            pending.push(listing(i, root.clone()));
        }
        let mut facts = plan::Facts::default();
        let mut lists: Vec<Vec<String>> = vec![Vec::new(); queries.subtrees.len()];
        loop {
            let answer =
                match tokio::time::timeout(self.options.request_timeout, pending.next()).await {
                    Ok(Some(answer)) => answer,
                    Ok(None) => break,
                    Err(_) => return Err(Failure::Timeout),
                };
            match answer {
                Answer::Exists(path, Ok(stat)) => {
                    facts.exists.insert(path, stat.is_some());
                }
                Answer::Listed(i, path, Ok((names, _))) => {
                    for name in names {
                        pending.push(listing(i, child_path(&path, &name)));
                    }
                    lists[i].push(path);
                }
                Answer::Listed(_, _, Err(zk::Error::NoNode)) => {}
                Answer::Exists(_, Err(e)) | Answer::Listed(_, _, Err(e)) => {
                    return Err(Failure::Zk(e));
                }
            }
        }
        facts.subtrees = queries.subtrees.into_iter().zip(lists).collect();
        Ok(facts)
    }

    async fn apply(&self, ops: Vec<WriteOp>) -> Result<(), StateError> {
        let action = format!("committing {} writes", ops.len());
        let Ok(mut writer) =
            tokio::time::timeout(self.options.request_timeout, self.writer.lock()).await
        else {
            return Err(self.unavailable(
                &action,
                "another write of this persister is still running",
                HINT_NOT_APPLIED,
            ));
        };
        let prefix = self.prefix_len();
        'plan: for _ in 0..MAX_PLANS {
            if let LockSlot::Lost { dir, holder } = &writer.lock {
                return Err(StateError::LockLost {
                    location: self.lock_location(dir),
                    holder: holder.clone(),
                });
            }
            let (client, generation) = self.client(&action, HINT_NOT_APPLIED).await?;
            if writer.generation != generation {
                writer.known.clear();
                writer.generation = generation;
            }
            if let LockSlot::Held(held) = &writer.lock
                && held.session != client.session_id().0
            {
                self.restore_lock(&client, &mut writer).await?;
            }
            let fence = match &writer.lock {
                LockSlot::Held(held) => Some(held.path()),
                _ => None,
            };
            let queries = plan::queries(&ops, &writer.known);
            let facts = self
                .facts(&client, queries)
                .await
                .map_err(|f| self.failure(&action, f, HINT_NOT_APPLIED))?;
            let zk_ops = plan::plan(&ops, &writer.known, &facts);
            let fence_size = fence.as_ref().map_or(0, |f| OP_OVERHEAD + prefix + f.len());
            let ranges = plan::chunks(&zk_ops, prefix, fence_size);
            let total = ranges.len();
            for (k, range) in ranges.into_iter().enumerate() {
                let hint = if k == 0 {
                    HINT_NOT_APPLIED.to_owned()
                } else {
                    format!(
                        "the first {k} of the {total} requests of this batch were applied; \
                         retry the same batch (applying it again is safe)"
                    )
                };
                if client.state() != zk::SessionState::SyncConnected {
                    return Err(self.unavailable(&action, "the connection was lost", &hint));
                }
                let chunk = &zk_ops[range];
                let mut multi = client.new_multi_writer();
                let built = (|| -> Result<(), zk::Error> {
                    if let Some(fence) = &fence {
                        multi.add_check_version(fence, -1)?;
                    }
                    for op in chunk {
                        match op {
                            ZkOp::Create { path, data } => {
                                multi.add_create(path, data, &persistent())?;
                            }
                            ZkOp::SetData { path, data } => multi.add_set_data(path, data, None)?,
                            ZkOp::Delete { path } => multi.add_delete(path, None)?,
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = built {
                    return Err(self.failure(&action, Failure::Zk(e), &hint));
                }
                match tokio::time::timeout(self.options.request_timeout, multi.commit()).await {
                    Ok(Ok(_)) => remember(&mut writer.known, chunk),
                    Ok(Err(zk::MultiWriteError::OperationFailed { index: 0, source }))
                        if fence.is_some() =>
                    {
                        tracing::warn!(
                            lock = %fence.as_deref().unwrap_or_default(),
                            error = %source,
                            "the leader lock node is gone; looking at the lock again"
                        );
                        writer.known.clear();
                        self.restore_lock(&client, &mut writer).await?;
                        continue 'plan;
                    }
                    Ok(Err(zk::MultiWriteError::OperationFailed { index, source })) => {
                        // The tree is not as planned: a stale cache entry, or another writer.
                        tracing::debug!(
                            index,
                            error = %source,
                            "a multi was refused; planning the batch again"
                        );
                        writer.known.clear();
                        continue 'plan;
                    }
                    Ok(Err(zk::MultiWriteError::RequestFailed { source })) => {
                        writer.known.clear();
                        if matches!(source, zk::Error::SessionExpired) {
                            // Refused, not applied: a new session is made on the next round.
                            continue 'plan;
                        }
                        let hint = if k == 0 {
                            HINT_UNKNOWN.to_owned()
                        } else {
                            hint
                        };
                        return Err(self.failure(&action, Failure::Zk(source), &hint));
                    }
                    Err(_) => {
                        writer.known.clear();
                        let hint = if k == 0 {
                            HINT_UNKNOWN.to_owned()
                        } else {
                            hint
                        };
                        return Err(self.failure(&action, Failure::Timeout, &hint));
                    }
                }
            }
            return Ok(());
        }
        Err(StateError::Backend {
            location: self.location.clone(),
            action,
            message: format!(
                "ZooKeeper refused the batch {MAX_PLANS} times because the tree changed under \
                 it; is another process writing to the same nodes?"
            ),
        })
    }

    /// The lock contenders in `dir`, lowest sequence first.
    async fn contenders(&self, client: &zk::Client, dir: &str) -> Result<Vec<String>, Failure> {
        let names = match self.ask(client.get_children(dir)).await {
            Ok((names, _)) => names,
            Err(Failure::Zk(zk::Error::NoNode)) => Vec::new(),
            Err(f) => return Err(f),
        };
        let mut contenders: Vec<(i64, String)> = names
            .into_iter()
            .filter(|n| n.starts_with(LOCK_PREFIX))
            .filter_map(|n| sequence_of(&n).map(|s| (s, n)))
            .collect();
        contenders.sort_unstable();
        Ok(contenders.into_iter().map(|(_, n)| n).collect())
    }

    /// Who holds lock node `dir/name`, for messages.
    async fn describe(&self, client: &zk::Client, dir: &str, name: &str) -> String {
        let path = format!("{dir}/{name}");
        match self.ask(client.get_data(&path)).await {
            Ok((data, _)) => match serde_json::from_slice::<LockOwner>(&data) {
                Ok(owner) => owner.to_string(),
                Err(_) => format!(
                    "an unknown process (its lock node {path} does not name it: '{}')",
                    String::from_utf8_lossy(&data)
                ),
            },
            Err(_) => format!("the process of lock node {path}"),
        }
    }

    /// Creates `dir` and its missing ancestors.
    async fn mkdirs(&self, client: &zk::Client, dir: &str) -> Result<(), Failure> {
        for path in ancestors(dir).chain(std::iter::once(dir)) {
            match self.ask(client.create(path, &[], &persistent())).await {
                Ok(_) | Err(Failure::Zk(zk::Error::NodeExists)) => {}
                Err(f) => return Err(f),
            }
        }
        Ok(())
    }

    /// Creates this persister's ephemeral sequential node in `dir`; returns its name.
    async fn create_lock_node(
        &self,
        client: &zk::Client,
        dir: &str,
        data: &[u8],
    ) -> Result<String, Failure> {
        let prefix = format!("{dir}/{LOCK_PREFIX}{}-", self.id);
        let options = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
        let (_, sequence) = self.ask(client.create(&prefix, data, &options)).await?;
        Ok(format!("{LOCK_PREFIX}{}-{sequence}", self.id))
    }

    /// Deletes lock nodes of this persister left in `dir` (of an old session, or of a create
    /// whose answer was lost), except `keep`.
    async fn remove_own(
        &self,
        client: &zk::Client,
        dir: &str,
        contenders: &[String],
        keep: Option<&str>,
    ) -> Result<(), Failure> {
        for name in contenders {
            if name.contains(&self.id) && Some(name.as_str()) != keep {
                match self
                    .ask(client.delete(&format!("{dir}/{name}"), None))
                    .await
                {
                    Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => {}
                    Err(f) => return Err(f),
                }
            }
        }
        Ok(())
    }

    async fn acquire(&self, root: String, data: Vec<u8>, wait: Duration) -> Result<(), StateError> {
        let dir = format!("{root}/lock");
        let location = self.lock_location(&dir);
        let action = format!("acquiring the leader lock {location}");
        let deadline = Instant::now() + wait;
        {
            let writer = self.writer.lock().await;
            if let LockSlot::Held(held) = &writer.lock {
                if held.root == root {
                    return Ok(());
                }
                return Err(StateError::invalid_path(
                    &root,
                    format!(
                        "this persister holds the leader lock of {} already; release it first",
                        held.root
                    ),
                ));
            }
        }
        let (client, _) = self.client(&action, HINT_READ).await?;
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        let contenders = self.contenders(&client, &dir).await.map_err(fail)?;
        self.remove_own(&client, &dir, &contenders, None)
            .await
            .map_err(fail)?;
        if wait.is_zero()
            && let Some(first) = contenders.iter().find(|n| !n.contains(&self.id))
        {
            return Err(StateError::LockHeld {
                location,
                holder: self.describe(&client, &dir, first).await,
            });
        }
        self.mkdirs(&client, &dir).await.map_err(fail)?;
        let name = self
            .create_lock_node(&client, &dir, &data)
            .await
            .map_err(fail)?;
        match self
            .wait_for_turn(&client, &dir, &name, deadline, &location)
            .await
        {
            Ok(()) => {
                let mut writer = self.writer.lock().await;
                writer.lock = LockSlot::Held(Held {
                    root,
                    dir,
                    name,
                    data,
                    session: client.session_id().0,
                });
                tracing::info!(lock = %location, "acquired the leader lock");
                Ok(())
            }
            Err(e) => {
                // Leave nothing behind; should this fail too, the node goes with the session.
                let _ = self
                    .ask(client.delete(&format!("{dir}/{name}"), None))
                    .await;
                Err(e)
            }
        }
    }

    /// Waits until `name` is the lowest contender in `dir`, or `deadline`.
    async fn wait_for_turn(
        &self,
        client: &zk::Client,
        dir: &str,
        name: &str,
        deadline: Instant,
        location: &str,
    ) -> Result<(), StateError> {
        let action = format!("waiting for the leader lock {location}");
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        loop {
            let contenders = self.contenders(client, dir).await.map_err(fail)?;
            let Some(position) = contenders.iter().position(|n| n == name) else {
                return Err(self.unavailable(
                    &action,
                    format!("this process's lock node {dir}/{name} vanished (session expired?)"),
                    HINT_READ,
                ));
            };
            if position == 0 {
                return Ok(());
            }
            let held = || async {
                StateError::LockHeld {
                    location: location.to_owned(),
                    holder: self.describe(client, dir, &contenders[0]).await,
                }
            };
            let before = format!("{dir}/{}", contenders[position - 1]);
            let (stat, watcher) = self
                .ask(client.check_and_watch_stat(&before))
                .await
                .map_err(fail)?;
            if stat.is_none() {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(held().await);
            }
            if tokio::time::timeout(deadline - now, watcher.changed())
                .await
                .is_err()
            {
                return Err(held().await);
            }
        }
    }

    /// After a session expiry (or when the lock node vanished): takes the lock again when
    /// nobody else holds or waits for it; otherwise marks it lost.
    async fn restore_lock(
        &self,
        client: &zk::Client,
        writer: &mut Writer,
    ) -> Result<(), StateError> {
        let LockSlot::Held(held) = &writer.lock else {
            return Ok(());
        };
        let held = held.clone();
        let location = self.lock_location(&held.dir);
        let action = format!("re-acquiring the leader lock {location}");
        let fail = |f: Failure| self.failure(&action, f, HINT_NOT_APPLIED);
        let contenders = self.contenders(client, &held.dir).await.map_err(fail)?;
        if let Some(other) = contenders.iter().find(|n| !n.contains(&self.id)) {
            let holder = self.describe(client, &held.dir, other).await;
            tracing::error!(lock = %location, holder = %holder, "lost the leader lock");
            writer.lock = LockSlot::Lost {
                dir: held.dir.clone(),
                holder: Some(holder.clone()),
            };
            return Err(StateError::LockLost {
                location,
                holder: Some(holder),
            });
        }
        // Only our own nodes, if any (the old session's, not expired on the server yet).
        self.remove_own(client, &held.dir, &contenders, None)
            .await
            .map_err(fail)?;
        self.mkdirs(client, &held.dir).await.map_err(fail)?;
        let name = self
            .create_lock_node(client, &held.dir, &held.data)
            .await
            .map_err(fail)?;
        let contenders = self.contenders(client, &held.dir).await.map_err(fail)?;
        if contenders.first() == Some(&name) {
            tracing::warn!(lock = %location, "re-acquired the leader lock after the ZooKeeper session expired");
            writer.lock = LockSlot::Held(Held {
                name,
                session: client.session_id().0,
                ..held
            });
            return Ok(());
        }
        // Someone came in between.
        let _ = self
            .ask(client.delete(&format!("{}/{name}", held.dir), None))
            .await;
        let holder = match contenders.first() {
            Some(first) => Some(self.describe(client, &held.dir, first).await),
            None => None,
        };
        tracing::error!(lock = %location, "lost the leader lock");
        writer.lock = LockSlot::Lost {
            dir: held.dir.clone(),
            holder: holder.clone(),
        };
        Err(StateError::LockLost { location, holder })
    }

    async fn holder(&self, root: String) -> Result<Option<LockOwner>, StateError> {
        let dir = format!("{root}/lock");
        let action = format!("reading the leader lock {}", self.lock_location(&dir));
        let (client, _) = self.client(&action, HINT_READ).await?;
        let fail = |f: Failure| self.failure(&action, f, HINT_READ);
        // The lowest node may go between listing and reading it: look again.
        for _ in 0..MAX_PLANS {
            let contenders = self.contenders(&client, &dir).await.map_err(fail)?;
            let Some(first) = contenders.first() else {
                return Ok(None);
            };
            let path = format!("{dir}/{first}");
            match self.ask(client.get_data(&path)).await {
                Ok((data, _)) => {
                    return serde_json::from_slice(&data)
                        .map(Some)
                        .map_err(|e| StateError::corrupt(&path, e));
                }
                Err(Failure::Zk(zk::Error::NoNode)) => {}
                Err(f) => return Err(fail(f)),
            }
        }
        Err(self.unavailable(&action, "the lock kept changing hands", HINT_READ))
    }

    async fn release(&self) -> Result<(), StateError> {
        let mut writer = self.writer.lock().await;
        let LockSlot::Held(held) = std::mem::take(&mut writer.lock) else {
            return Ok(());
        };
        let location = self.lock_location(&held.dir);
        let client = lock(&self.conn).client.clone();
        let Some(client) = client else {
            return Ok(());
        };
        if client.session_id().0 != held.session {
            // The node belonged to an ended session: gone already, or going.
            return Ok(());
        }
        let action = format!("releasing the leader lock {location}");
        match self.ask(client.delete(&held.path(), None)).await {
            Ok(()) | Err(Failure::Zk(zk::Error::NoNode)) => {
                tracing::info!(lock = %location, "released the leader lock");
                Ok(())
            }
            Err(f) => Err(self.failure(
                &action,
                f,
                "the lock node disappears when this process's ZooKeeper session ends",
            )),
        }
    }

    /// Releases the lock and closes the session (best effort, briefly).
    async fn close(&self) {
        let _ = self.release().await;
        let client = lock(&self.conn).client.take();
        if let Some(client) = client {
            let connected = client.state() == zk::SessionState::SyncConnected;
            let mut watcher = client.state_watcher();
            // The session is closed once the last handle is gone.
            drop(client);
            if connected {
                let wait = CLOSE_WAIT.min(self.options.request_timeout);
                let _ = tokio::time::timeout(wait, async {
                    while !watcher.changed().await.is_terminated() {}
                })
                .await;
            }
        }
    }
}

/// Updates the existence cache after a `multi` succeeded.
fn remember(known: &mut BTreeSet<String>, ops: &[ZkOp<'_>]) {
    for op in ops {
        match op {
            ZkOp::Create { path, .. } => {
                known.insert(path.to_string());
            }
            ZkOp::SetData { path, .. } => {
                for ancestor in ancestors(path) {
                    if !known.contains(ancestor) {
                        known.insert(ancestor.to_owned());
                    }
                }
                known.insert((*path).to_owned());
            }
            ZkOp::Delete { path } => {
                known.remove(path);
                let prefix = descendant_prefix(path);
                let below: Vec<String> = known
                    .range(prefix.clone()..range_end(&prefix))
                    .cloned()
                    .collect();
                for k in below {
                    known.remove(&k);
                }
            }
        }
    }
}

/// Rounds to whole seconds (for "lost 3 s ago").
fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
