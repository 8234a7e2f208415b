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
//!  apply:  plan   — which nodes exist: from the cache of the whole tree when the service's
//!                   tree was read under the lock (the scheduler's start does), else
//!                   pipelined `exists` for unknown ancestors, listings of deleted subtrees
//!          ops    — create missing ancestors / setData / delete leaf-first, in batch order
//!          chunks — one `multi` each, ≤ ~1 MB, each starting with `check <our lock node>`
//!                   and `setData <lock dir>` expecting the version the one before left
//!          commit — all chunks sent at once (pipelined), answers awaited in order
//!  submit: the same apply, while the caller goes on; batches submitted one after another
//!          are sent in that order, each as soon as the one before is sent (not answered);
//!          `apply` is a submit it waits for
//! ```
//!
//! # Guarantees and caveats
//!
//! - **Durability.** ZooKeeper acknowledges a `multi` after its transaction log is fsync'ed
//!   (on a quorum of an ensemble); when [`apply`](Persister::apply) returns `Ok`, the batch
//!   survives a crash of berth and of the ZooKeeper servers.
//! - **Atomicity per request, prefixes across requests.** A batch whose ZooKeeper requests
//!   fit in one `multi` (below ~1,000,000 bytes of paths and data, estimated with 64 bytes of
//!   overhead per operation) is atomic. A larger batch is split into several `multi`s, and
//!   batches submitted one after another are sent without waiting for the answers; while the
//!   leader lock is held, every `multi` also sets the lock directory's data expecting the
//!   version the `multi` before it left, so ZooKeeper applies them **in order, and none after
//!   one it refused**: what is stored is always a prefix of what was sent (a batch as a whole
//!   is not atomic; the error's hint says how much of it may be stored). After a refusal, the
//!   oldest unanswered batch is planned again; later ones fail (unsent ones without being
//!   sent) until the caller [`apply`](Persister::apply)s again. Retrying the same batches is
//!   always safe — each is planned again from what is stored, and applying a batch over its
//!   own prefix gives the same tree as applying it once — so "retry until `Ok`" restores them
//!   exactly, with nothing lost and nothing duplicated. The lock directory's data stays
//!   empty; only its version moves. The store's group commits of one offer cycle normally
//!   fit in one request.
//! - **Unknown outcome.** When ZooKeeper goes away while a `multi` is in flight, its answer
//!   is lost and it may or may not have been applied: the call fails with a retryable
//!   [`StateError::Unavailable`] saying so. Retry the same batch.
//! - **Reads** see every `apply` that returned before them (one session, FIFO order). A
//!   [`subtree`](Persister::subtree) read while another writer writes is not a snapshot; the
//!   leader lock makes berth the only writer.
//! - **Availability.** While the connection is lost but the session is still valid, every
//!   call fails at once with a retryable [`StateError::Unavailable`] and succeeds again once
//!   the client has reconnected. When the session expired, the next call creates a new one
//!   (waiting at most 2 s for a server), and [`unavailable`](Persister::unavailable) starts
//!   creating one in the background and reports the store down until it exists, so a caller
//!   that asks first (the scheduler loop) never waits for ZooKeeper to come back. No call
//!   waits longer than `request_timeout` for an answer.
//! - **Fencing.** Once [`acquire_lock`](ZkPersister::acquire_lock) succeeded, every `multi`
//!   starts with a `check` that this persister's lock node still exists, so a scheduler whose
//!   session expired can never write over another one's state. See
//!   [`acquire_lock`](ZkPersister::acquire_lock) for what happens after an expiry.
//! - **Values** are stored as given; a single write larger than ZooKeeper's request limit
//!   (`jute.maxbuffer`, 1,048,575 bytes, less headers) is refused before anything is sent.
//! - Without a chroot, ZooKeeper's own `/zookeeper` node is hidden from
//!   [`children`](Persister::children) and [`subtree`](Persister::subtree) of `/`.

mod batch;
mod lock;
mod owner;
mod plan;
mod reads;
mod session;
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
use crate::{Persister, StateError, Submitted, WriteOp};

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
            renewal: Mutex::new(Renewal::default()),
            writer: tokio::sync::Mutex::new(Writer::default()),
            issued: std::sync::atomic::AtomicU64::new(0),
            turns: tokio::sync::watch::Sender::new(0),
            refused: std::sync::atomic::AtomicBool::new(false),
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

    /// Starts creating a new session on the client runtime unless an attempt is under way;
    /// says so, with how the last attempt failed.
    fn renew_in_background(&self) -> String {
        let mut renewal = lock(&self.inner.renewal);
        if !renewal.running {
            renewal.running = true;
            let inner = self.inner.clone();
            self.handle.spawn(async move {
                let result = inner.client("creating a new session", HINT_READ).await;
                let mut renewal = lock(&inner.renewal);
                renewal.running = false;
                renewal.last_failure = result.err().map(|e| match e {
                    StateError::Unavailable { message, .. } => message,
                    other => other.to_string(),
                });
            });
        }
        let mut text = format!(
            "the ZooKeeper session at {} expired; a new one is being created",
            self.inner.location
        );
        if let Some(failure) = &renewal.last_failure {
            text.push_str(&format!(" (last attempt: {failure})"));
        }
        text
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
            // A new session is made in the background: whoever asks (the scheduler loop
            // among them) never waits for it.
            ZkConnectionState::Expired => Some(self.renew_in_background()),
            ZkConnectionState::Connected => None,
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
        self.run(async move { inner.subtree_learning(path).await })
    }

    /// The caller waits for nothing else, so a batch refused before no longer holds this one
    /// back (see [`submit`](Persister::submit)).
    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        self.submit_as(ops.to_vec(), true).wait().0
    }

    /// The batch is planned and committed on the client runtime while the caller goes on.
    /// Batches submitted one after another are sent one after another without waiting for
    /// the answers, each `multi` chained to the one before (see the module documentation):
    /// ZooKeeper stores a prefix of what was submitted, never a later batch without an
    /// earlier one. Once a batch fails, every batch submitted after it fails too, unsent,
    /// until the caller [`apply`](Persister::apply)s again.
    fn submit(&self, ops: Vec<WriteOp>) -> Submitted {
        self.submit_as(ops, false)
    }

    fn submits_in_background(&self) -> bool {
        true
    }
}

impl ZkPersister {
    /// [`Persister::submit`]; `resume` (by `apply`): an earlier refusal is forgotten.
    fn submit_as(&self, ops: Vec<WriteOp>, resume: bool) -> Submitted {
        if let Err(e) = self.check_batch(&ops) {
            return Submitted::ready(Err(e), ops);
        }
        if ops.is_empty() {
            return Submitted::ready(Ok(()), ops);
        }
        let inner = self.inner.clone();
        // Taken here, on the caller's thread: batches are sent in the order they came.
        let turn = inner
            .issued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let result = inner.apply(&ops, turn, resume).await;
            let _ = tx.send((result, ops));
        });
        Submitted::background(rx, self.inner.location.clone())
    }

    /// Refuses a batch ZooKeeper cannot take before anything is sent: an invalid path, a
    /// value larger than one request may carry.
    fn check_batch(&self, ops: &[WriteOp]) -> Result<(), StateError> {
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
        Ok(())
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
    /// The background creation of a new session (see [`Persister::unavailable`]).
    renewal: Mutex<Renewal>,
    /// Held by writes and lock changes: one at a time, in call order.
    writer: tokio::sync::Mutex<Writer>,
    /// Turns handed to submitted batches, in submission order.
    issued: std::sync::atomic::AtomicU64,
    /// The turn whose batch may be sent now (a batch waits for its turn, then for `writer`).
    turns: tokio::sync::watch::Sender<u64>,
    /// A batch failed: later submissions are refused unsent until an `apply`.
    refused: std::sync::atomic::AtomicBool,
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

/// The background attempt at a new session after an expiry.
#[derive(Default)]
struct Renewal {
    /// An attempt is under way.
    running: bool,
    /// Why the last attempt failed, if it did.
    last_failure: Option<String>,
}

/// What writes need: the existence cache and the lock.
#[derive(Default)]
struct Writer {
    /// Paths known to exist (a cache: a wrong entry makes a `multi` fail and the batch be
    /// planned again without it).
    known: BTreeSet<String>,
    /// Set while `known` holds *every* node of the locked service's tree (read whole while
    /// the lock was held, and changed since only by this writer): a path of that tree not in
    /// `known` does not exist, and a batch is planned without asking ZooKeeper.
    complete: Option<Scope>,
    /// The session generation `known` belongs to.
    generation: u64,
    lock: LockSlot,
    /// The version the lock directory's data will have once every `multi` sent is applied
    /// (each sets it, expecting the version the one before left); `None`: read it first.
    chain: Option<i32>,
    /// Turns of the batches sent and not answered yet.
    unfinished: BTreeSet<u64>,
}

impl Writer {
    /// Drops the existence cache and the chain (after a refused `multi`, a lost session or
    /// lock).
    fn forget(&mut self) {
        self.known.clear();
        self.complete = None;
        self.chain = None;
    }
}

/// The tree a complete existence cache covers: the service root and everything below it but
/// the leader lock's directory (where other contenders create their nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    root: String,
    lock_dir: String,
}

impl Scope {
    /// Whether `path` is in the covered tree.
    fn covers(&self, path: &str) -> bool {
        let under = |base: &str| {
            path.strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        under(&self.root) && !under(&self.lock_dir)
    }
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
