//! [`EmbeddedPersister`]: the default backend, one durable file on local disk.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError, Table,
    TableDefinition,
};

use crate::StateError;
use crate::error::LockHolder;
use crate::persister::{
    NodeMap, NodeMapMut, NodeVisitor, Persister, WriteOp, apply_ops, children_of, get_node,
    subtree_of, validate_ops, visit_subtree_of,
};
use crate::wal::{DIRECT_BYTES, Wal};

/// File name of the database inside the data directory.
pub const STATE_FILE: &str = "state.redb";
/// File name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "state.lock";

/// Page cache of the storage engine (the store keeps its own typed cache above it, and the
/// write-ahead log takes the writes: 16 MB made no measurable difference to deploys or to a
/// restart of 100,000 tasks, and was 0.3 KB of resident memory a task at 50,000).
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Batches acknowledged and not yet taken by the writer after which `apply` waits for it.
const MAX_QUEUED: usize = 64;

/// The one table: full node path → data.
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");

/// What to tell an operator when a data-directory file cannot be used.
const DIR_HINT: &str = "check that --data-dir names a directory berth can create and write";

/// A [`Persister`] storing the tree in `<data-dir>/state.redb`, with
/// [redb](https://docs.rs/redb) (ACID, copy-on-write B-trees with checksums), behind a
/// write-ahead log, `<data-dir>/state.wal.0` and `state.wal.1` (see the `wal` module).
///
/// # Guarantees
///
/// - **Atomic and durable.** One [`apply`](Persister::apply) is one record appended to the
///   log and made durable (`fdatasync`): when `apply` returns `Ok`, the batch is on disk;
///   after a crash (`kill -9`, power loss) at any instant each batch is either entirely
///   present or entirely absent. A thread of the persister's own then commits the batches
///   into redb, in order, without syncing, and makes them durable there at checkpoints
///   (every 8 MB of log or few thousand batches, and when the handle is dropped) while
///   `apply` goes on with the log's other file; opening replays the log over the last
///   checkpoint. A small commit costs the caller one sequential write and one sync; a large
///   one (4 MB and more) is committed synced into the database directly, on the caller's
///   thread: group many writes into one batch.
/// - **Reads see every acknowledged write.** A read waits until the database holds every
///   batch acknowledged before it started (not for a checkpoint).
/// - **Bounded.** Once 64 acknowledged batches wait for the writer thread (which runs at a
///   lower priority), `apply` waits for it to take them.
/// - **Exclusive.** [`open`](EmbeddedPersister::open) takes an exclusive lock on
///   `<data-dir>/state.lock` (and writes its pid into it) for as long as the value lives, and
///   redb locks the database file itself; a second opener — another process or this one —
///   gets [`StateError::Locked`] naming the holder's pid, and writes nothing. The lock is
///   released by the operating system when the process ends, however it ends. A lock left
///   behind by a closed handle of this process (a child being spawned still holds a copy
///   of the descriptor until it executes) is waited for, up to 2 s.
/// - **Checked.** After an unclean stop redb repairs (and so checks) the file when it opens;
///   a file that is not a redb database, or a page found damaged when read, is a
///   [`StateError::CorruptStore`] naming it, never a panic. Records of the log are checked
///   too: one cut short or failing its checksum (the append a crash interrupted, never
///   acknowledged) ends the log.
///
/// Reads run in their own read transaction and never block writes. After a backend error
/// while committing into the database, every later call fails naming it: the caller should
/// stop and restart (the log still holds every acknowledged batch).
pub struct EmbeddedPersister {
    shared: Arc<Shared>,
    /// The thread that commits the log's batches into the database.
    writer: Option<JoinHandle<()>>,
    /// The directory as entered in [`open_here`], removed again on drop.
    registered: Option<PathBuf>,
    // Last: released after the writer has stopped and the database is closed.
    _lock: File,
}

/// What the caller and the writer thread share.
struct Shared {
    db: Database,
    path: PathBuf,
    location: String,
    pipe: Mutex<Pipe>,
    /// Signalled when the writer has work (batches, a stop).
    work: Condvar,
    /// Signalled when the writer has taken batches into the database or ended a checkpoint.
    done: Condvar,
}

/// The batches between the log and the database.
struct Pipe {
    wal: Wal,
    /// Acknowledged batches the database does not hold yet, in order.
    queue: Vec<Vec<WriteOp>>,
    /// Batches acknowledged so far, and of them taken into the database.
    appended: u64,
    applied: u64,
    /// A checkpoint is running (the database syncing, without the lock).
    checkpointing: bool,
    /// Why the database cannot take batches any more.
    failed: Option<String>,
    stop: bool,
}

impl Drop for EmbeddedPersister {
    fn drop(&mut self) {
        // A clean stop leaves everything in the database and the log empty.
        self.shared.pipe().stop = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.shared.location, "the state's writer thread panicked");
        }
        if let Some(key) = &self.registered {
            open_here().remove(key);
        }
    }
}

/// How long a lock taken under this process's pid, but by no handle of it, is waited for.
const INHERITED_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Data directories this process has open.
fn open_here() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    static OPEN_HERE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
    OPEN_HERE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a lock held by `holder` may be a descriptor inherited by a child being spawned:
/// recorded under this process's pid (or unknown: redb's own lock) and no handle here has
/// `key` open.
fn inherited(key: &Path, holder: LockHolder) -> bool {
    (matches!(holder, LockHolder::Unknown) || holder == LockHolder::Pid(std::process::id()))
        && !open_here().contains(key)
}

impl std::fmt::Debug for EmbeddedPersister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPersister")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

impl EmbeddedPersister {
    /// Opens (creating if missing) the state in `data_dir`: the directory, its lock file and
    /// `state.redb`.
    ///
    /// # Errors
    /// - [`StateError::Locked`] when another process (or another handle in this process) has
    ///   it open;
    /// - [`StateError::Io`] when the directory or a file cannot be created or opened;
    /// - [`StateError::CorruptStore`] when `state.redb` is not a redb database, is damaged, or
    ///   has a file format this berth cannot read;
    /// - [`StateError::Backend`] for other storage failures.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<Self, StateError> {
        let dir = data_dir.as_ref();
        let path = dir.join(STATE_FILE);
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            action: "create the data directory",
            path: dir.to_path_buf(),
            hint: DIR_HINT,
            source,
        })?;
        // A lock found taken under this process's own pid while no handle of this process
        // holds the directory is a just-closed handle's descriptor, still held by a child
        // process that another thread is spawning until it executes: wait that out.
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let deadline = Instant::now() + INHERITED_LOCK_WAIT;
        loop {
            match Self::open_locked(dir, path.clone(), &key) {
                Err(StateError::Locked { holder, .. })
                    if Instant::now() < deadline && inherited(&key, holder) =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    /// [`Self::open`] once: the lock, the database, the table, the log replayed.
    fn open_locked(dir: &Path, path: PathBuf, key: &Path) -> Result<Self, StateError> {
        let lock = acquire_lock(dir, &path)?;

        let opened = catch_unwind(AssertUnwindSafe(|| {
            // No full checksum walk on open: after an unclean stop redb repairs (and so
            // verifies) the file itself, and after a clean one the walk would read every page
            // once more before the scheduler reads them all (0.9 s at 100,000 tasks). A page
            // damaged on disk since is met by the reads, which report it as corrupt.
            Database::builder()
                // Keep memory bounded: the scheduler caches what it reads itself.
                .set_cache_size(CACHE_BYTES)
                .create(&path)
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(map_open_error(e, &path)),
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                return Err(StateError::CorruptStore { path, message });
            }
        };
        let location = path.display().to_string();
        let (wal, replay) = Wal::open(dir).map_err(|source| StateError::Io {
            action: "open the write-ahead log",
            path: dir.to_path_buf(),
            hint: DIR_HINT,
            source,
        })?;
        let shared = Arc::new(Shared {
            db,
            path,
            location,
            pipe: Mutex::new(Pipe {
                wal,
                queue: Vec::new(),
                appended: 0,
                applied: 0,
                checkpointing: false,
                failed: None,
                stop: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        // Create the table so that reads never meet a missing one.
        shared.write(|_| Ok(()), "creating the node table", Durability::Immediate)?;
        // Batches acknowledged since the last checkpoint, in order; then everything is in the
        // database and the log starts again.
        if !replay.is_empty() {
            tracing::info!(
                path = %shared.location,
                "replaying {} batch(es) from the write-ahead log",
                replay.len()
            );
        }
        for ops in &replay {
            validate_ops(ops)?;
            shared.write(
                |t| apply_ops(t, ops),
                "replaying the write-ahead log",
                Durability::None,
            )?;
        }
        shared.checkpoint(&mut shared.pipe())?;
        let writer = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("berth-state-writer".to_owned())
                .spawn(move || shared.run_writer())
                .map_err(|source| StateError::Io {
                    action: "start the state's writer thread",
                    path: dir.join(STATE_FILE),
                    hint: DIR_HINT,
                    source,
                })?
        };
        tracing::debug!(path = %shared.location, "opened embedded state");
        Ok(Self {
            shared,
            writer: Some(writer),
            registered: open_here()
                .insert(key.to_path_buf())
                .then(|| key.to_path_buf()),
            _lock: lock,
        })
    }

    /// The state file (`<data-dir>/state.redb`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl Shared {
    fn backend(&self, action: &str, e: impl Display) -> StateError {
        StateError::Backend {
            location: self.location.clone(),
            action: action.to_owned(),
            message: e.to_string(),
        }
    }

    fn pipe(&self) -> MutexGuard<'_, Pipe> {
        self.pipe.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error every call gets once the database could not take a batch.
    fn failed(&self, pipe: &Pipe) -> Result<(), StateError> {
        match &pipe.failed {
            Some(message) => Err(StateError::Backend {
                location: self.location.clone(),
                action: "committing into the database (restart berth: the write-ahead log \
                         holds every acknowledged batch)"
                    .to_owned(),
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    fn wal_error(&self, path: &Path, action: &'static str, source: std::io::Error) -> StateError {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            hint: DIR_HINT,
            source,
        }
    }

    /// Makes every commit durable in the database (one synced commit) and empties the log,
    /// holding the lock (the writer must be idle: nothing queued, no checkpoint running).
    fn checkpoint(&self, pipe: &mut Pipe) -> Result<(), StateError> {
        if pipe.wal.is_empty() {
            return Ok(());
        }
        self.write(|_| Ok(()), "checkpointing", Durability::Immediate)?;
        pipe.wal
            .clear()
            .map_err(|source| self.wal_error(pipe.wal.path(), "empty the write-ahead log", source))
    }

    /// Waits until the database holds every batch acknowledged so far (and, with
    /// `no_checkpoint`, no checkpoint is running); fails once the writer has failed.
    fn settled<'a>(
        &'a self,
        mut pipe: MutexGuard<'a, Pipe>,
        no_checkpoint: bool,
    ) -> Result<MutexGuard<'a, Pipe>, StateError> {
        let target = pipe.appended;
        while pipe.failed.is_none()
            && (pipe.applied < target || (no_checkpoint && pipe.checkpointing))
        {
            pipe = self.done.wait(pipe).unwrap_or_else(PoisonError::into_inner);
        }
        self.failed(&pipe)?;
        Ok(pipe)
    }

    /// The writer thread: takes queued batches into the database (all that are waiting in
    /// one transaction, not synced), checkpoints when the log has grown enough, and on stop
    /// takes the rest and checkpoints once more.
    fn run_writer(&self) {
        lower_priority();
        let mut pipe = self.pipe();
        loop {
            if pipe.failed.is_some() {
                return;
            }
            if !pipe.queue.is_empty() {
                let batches = std::mem::take(&mut pipe.queue);
                drop(pipe);
                let result = self.write(
                    |t| batches.iter().try_for_each(|ops| apply_ops(t, ops)),
                    &format!("committing {} batch(es)", batches.len()),
                    Durability::None,
                );
                pipe = self.pipe();
                match result {
                    Ok(()) => pipe.applied += batches.len() as u64,
                    Err(e) => self.fail(&mut pipe, &e),
                }
                self.done.notify_all();
                continue;
            }
            if pipe.stop {
                if let Err(e) = self.checkpoint(&mut pipe) {
                    tracing::warn!(path = %self.location, "closing the state: {e}");
                }
                return;
            }
            if pipe.wal.checkpoint_due()
                && let Some(sealed) = pipe.wal.seal()
            {
                // Every batch in the sealed file is in the database: sync it, while appends
                // go on in the other file.
                pipe.checkpointing = true;
                drop(pipe);
                let result = self.write(|_| Ok(()), "checkpointing", Durability::Immediate);
                pipe = self.pipe();
                pipe.checkpointing = false;
                let result = result.and_then(|()| {
                    pipe.wal.clear_sealed(sealed).map_err(|source| {
                        let path = pipe.wal.segment_path(sealed).to_path_buf();
                        self.wal_error(&path, "empty the write-ahead log", source)
                    })
                });
                if let Err(e) = result {
                    self.fail(&mut pipe, &e);
                }
                self.done.notify_all();
                continue;
            }
            pipe = self.work.wait(pipe).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn fail(&self, pipe: &mut Pipe, e: &StateError) {
        tracing::error!(path = %self.location, "the state cannot take writes any more: {e}");
        pipe.failed = Some(e.to_string());
    }

    /// Runs `f` on the node table in one write transaction committed with `durability`.
    fn write(
        &self,
        f: impl FnOnce(&mut RedbMap<'_, '_>) -> Result<(), StateError>,
        action: &str,
        durability: Durability,
    ) -> Result<(), StateError> {
        guarded(&self.path, || {
            let mut txn = self.db.begin_write().map_err(|e| self.backend(action, e))?;
            txn.set_durability(durability)
                .map_err(|e| self.backend(action, e))?;
            {
                let mut table = txn.open_table(NODES).map_err(|e| self.backend(action, e))?;
                f(&mut RedbMap {
                    table: &mut table,
                    persister: self,
                })?;
            }
            // Dropping an uncommitted transaction (early return above) aborts it.
            txn.commit().map_err(|e| self.backend(action, e))
        })
    }

    /// Runs `f` on the node table in one read transaction, once the database holds every
    /// batch acknowledged so far.
    fn read<T>(
        &self,
        f: impl FnOnce(&RedbRead<'_>) -> Result<T, StateError>,
        action: &str,
    ) -> Result<T, StateError> {
        drop(self.settled(self.pipe(), false)?);
        guarded(&self.path, || {
            let txn = self.db.begin_read().map_err(|e| self.backend(action, e))?;
            let table = txn.open_table(NODES).map_err(|e| self.backend(action, e))?;
            f(&RedbRead {
                table: &table,
                persister: self,
            })
        })
    }
}

/// Gives the calling thread a lower CPU priority (nice 10): the writer's work is durable
/// already and may wait, while the scheduler's loop and the API answer people.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    let lowered = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid.cast_unsigned(), 10)
    };
    if lowered != 0 {
        tracing::debug!(
            "cannot lower the state writer's priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Runs `f`, reporting a panic of the storage engine (which it may raise on a page damaged
/// on disk) as [`StateError::CorruptStore`].
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StateError>) -> Result<T, StateError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(StateError::CorruptStore {
            path: path.to_path_buf(),
            message: panic_message(panic.as_ref()),
        })
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the storage engine could not read it".to_owned())
}

/// Opens and locks `<dir>/state.lock`, then records this process's pid in it.
fn acquire_lock(dir: &Path, db_path: &Path) -> Result<File, StateError> {
    let lock_path = dir.join(LOCK_FILE);
    let io_err = |action: &'static str, source| StateError::Io {
        action,
        path: lock_path.clone(),
        hint: DIR_HINT,
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| io_err("open the lock file", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                path: db_path.to_path_buf(),
                holder: read_holder(&mut file),
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err("lock the lock file", e)),
    }
    let record = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        file.flush()
    };
    record(&mut file).map_err(|e| io_err("write the lock file", e))?;
    Ok(file)
}

/// The pid recorded in a lock file held by someone else.
fn read_holder(file: &mut File) -> LockHolder {
    let mut text = String::new();
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_to_string(&mut text).is_err() {
        return LockHolder::Unknown;
    }
    text.trim()
        .parse::<u32>()
        .map_or(LockHolder::Unknown, LockHolder::Pid)
}

fn map_open_error(e: DatabaseError, path: &Path) -> StateError {
    let corrupt = |message: String| StateError::CorruptStore {
        path: path.to_path_buf(),
        message,
    };
    match e {
        // The lock file is ours at this point, so it cannot name the holder of the database
        // file (a process that bypassed the lock file, e.g. after it was deleted).
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StateError::Locked {
                path: path.to_path_buf(),
                holder: LockHolder::Unknown,
            }
        }
        DatabaseError::UpgradeRequired(version) => corrupt(format!(
            "it uses the old redb file format {version}, which must be upgraded first"
        )),
        DatabaseError::Storage(StorageError::Corrupted(message)) => corrupt(message),
        DatabaseError::Storage(StorageError::Io(source)) => {
            if source.kind() == std::io::ErrorKind::InvalidData
                || source.kind() == std::io::ErrorKind::UnexpectedEof
            {
                corrupt(source.to_string())
            } else {
                StateError::Io {
                    action: "open the state file",
                    path: path.to_path_buf(),
                    hint: DIR_HINT,
                    source,
                }
            }
        }
        other => StateError::Backend {
            location: path.display().to_string(),
            action: "opening".to_owned(),
            message: other.to_string(),
        },
    }
}

/// Read access to the node table of one transaction.
struct RedbRead<'a> {
    table: &'a dyn ReadNodes,
    persister: &'a Shared,
}

/// Write access to the node table of one write transaction.
struct RedbMap<'a, 'txn> {
    table: &'a mut Table<'txn, &'static str, &'static [u8]>,
    persister: &'a Shared,
}

/// The read operations the tree algorithms need, for both table kinds.
trait ReadNodes {
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, redb::StorageError>;
    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, redb::StorageError>;
    /// Hands each entry in `start..end` to `visit`; `fail` turns the engine's errors into
    /// the store's.
    fn visit(
        &self,
        start: &str,
        end: &str,
        visit: &mut NodeVisitor<'_>,
        fail: &dyn Fn(redb::StorageError) -> StateError,
    ) -> Result<(), StateError>;
}

impl<T: ReadableTable<&'static str, &'static [u8]>> ReadNodes for T {
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, redb::StorageError> {
        Ok(self.get(key)?.map(|v| v.value().to_vec()))
    }

    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, redb::StorageError> {
        match self.range::<&str>(start..end)?.next() {
            Some(entry) => Ok(Some(entry?.0.value().to_owned())),
            None => Ok(None),
        }
    }

    fn visit(
        &self,
        start: &str,
        end: &str,
        visit: &mut NodeVisitor<'_>,
        fail: &dyn Fn(redb::StorageError) -> StateError,
    ) -> Result<(), StateError> {
        for entry in self.range::<&str>(start..end).map_err(fail)? {
            let (k, v) = entry.map_err(fail)?;
            visit(k.value(), v.value())?;
        }
        Ok(())
    }
}

fn reading(key: &str) -> String {
    format!("reading {key}")
}

impl NodeMap for RedbRead<'_> {
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.table
            .node(key)
            .map_err(|e| self.persister.backend(&reading(key), e))
    }

    fn contains(&self, key: &str) -> Result<bool, StateError> {
        self.node(key).map(|v| v.is_some())
    }

    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, StateError> {
        self.table
            .first_in(start, end)
            .map_err(|e| self.persister.backend(&reading(start), e))
    }

    fn visit(&self, start: &str, end: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        self.table.visit(start, end, visit, &|e| {
            self.persister.backend(&reading(start), e)
        })
    }
}

impl NodeMap for RedbMap<'_, '_> {
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        ReadNodes::node(&*self.table, key).map_err(|e| self.persister.backend(&reading(key), e))
    }

    fn contains(&self, key: &str) -> Result<bool, StateError> {
        self.table
            .get(key)
            .map(|v| v.is_some())
            .map_err(|e| self.persister.backend(&reading(key), e))
    }

    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, StateError> {
        ReadNodes::first_in(&*self.table, start, end)
            .map_err(|e| self.persister.backend(&reading(start), e))
    }

    fn visit(&self, start: &str, end: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        ReadNodes::visit(&*self.table, start, end, visit, &|e| {
            self.persister.backend(&reading(start), e)
        })
    }
}

impl NodeMapMut for RedbMap<'_, '_> {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StateError> {
        self.table
            .insert(key, value)
            .map(|_| ())
            .map_err(|e| self.persister.backend(&format!("writing {key}"), e))
    }

    fn remove(&mut self, key: &str) -> Result<(), StateError> {
        self.table
            .remove(key)
            .map(|_| ())
            .map_err(|e| self.persister.backend(&format!("deleting {key}"), e))
    }

    fn remove_range(&mut self, start: &str, end: &str) -> Result<(), StateError> {
        self.table
            .retain_in::<&str, _>(start..end, |_, _| false)
            .map_err(|e| {
                self.persister
                    .backend(&format!("deleting below {start}"), e)
            })
    }
}

impl Persister for EmbeddedPersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.shared.read(|t| get_node(t, path), &reading(path))
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        self.shared.read(|t| children_of(t, path), &reading(path))
    }

    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.shared.read(|t| subtree_of(t, path), &reading(path))
    }

    fn visit_subtree(&self, path: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        self.shared
            .read(|t| visit_subtree_of(t, path, visit), &reading(path))
    }

    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        validate_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let shared = &*self.shared;
        let mut pipe = shared.pipe();
        shared.failed(&pipe)?;
        let bytes: usize = ops
            .iter()
            .map(|op| match op {
                WriteOp::Set { path, value } => path.len() + value.len(),
                WriteOp::Delete { path } => path.len(),
            })
            .sum();
        if bytes >= DIRECT_BYTES {
            // Straight into the database, synced, holding the lock (the writer waits). The
            // log's batches go first: replaying them over this batch after a crash would
            // undo it.
            let mut pipe = shared.settled(pipe, true)?;
            shared.checkpoint(&mut pipe)?;
            let action = format!("committing {} writes", ops.len());
            return shared.write(|t| apply_ops(t, ops), &action, Durability::Immediate);
        }
        pipe.wal.append(ops).map_err(|source| {
            shared.wal_error(pipe.wal.path(), "append to the write-ahead log", source)
        })?;
        // Durable: the writer takes it into the database.
        pipe.queue.push(ops.to_vec());
        pipe.appended += 1;
        shared.work.notify_one();
        // The writer may fall behind (it yields to the scheduler): once too many batches
        // wait for it, the caller waits too, so that they never pile up in memory.
        while pipe.queue.len() > MAX_QUEUED && pipe.failed.is_none() {
            pipe = shared
                .done
                .wait(pipe)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn apply_waits_once_the_writer_is_far_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = Arc::new(EmbeddedPersister::open(dir.path()).unwrap());
        // Hold redb's single write transaction: the writer thread cannot take batches. It
        // takes a first one and waits for the transaction.
        let held = p.shared.db.begin_write().unwrap();
        p.apply(&[WriteOp::set("/first", "x")]).unwrap();
        while !p.shared.pipe().queue.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let done = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (p, done) = (Arc::clone(&p), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..200 {
                    p.apply(&[WriteOp::set(format!("/b/{i}"), "x")]).unwrap();
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Each apply syncs the log: on a slow disk 64 of them take a while.
        let deadline = Instant::now() + Duration::from_secs(60);
        while done.load(Ordering::SeqCst) < MAX_QUEUED && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        let stalled = done.load(Ordering::SeqCst);
        assert!(
            (MAX_QUEUED..=MAX_QUEUED + 2).contains(&stalled),
            "{stalled} batches acknowledged while the writer was held"
        );
        drop(held);
        writer.join().unwrap();
        assert_eq!(p.children("/b").unwrap().len(), 200);
        assert_eq!(p.get("/first").unwrap(), Some(b"x".to_vec()));
    }
}
