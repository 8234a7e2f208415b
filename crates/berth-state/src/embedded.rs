//! [`EmbeddedPersister`]: the default backend, one durable file on local disk.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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
use crate::wal::{DIRECT_BYTES, WAL_FILE, Wal};

/// File name of the database inside the data directory.
pub const STATE_FILE: &str = "state.redb";
/// File name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "state.lock";

/// Page cache of the storage engine (the store keeps its own typed cache above it).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// The one table: full node path → data.
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");

/// What to tell an operator when a data-directory file cannot be used.
const DIR_HINT: &str = "check that --data-dir names a directory berth can create and write";

/// A [`Persister`] storing the tree in `<data-dir>/state.redb`, with
/// [redb](https://docs.rs/redb) (ACID, copy-on-write B-trees with checksums), behind a
/// write-ahead log, `<data-dir>/state.wal` (see the `wal` module).
///
/// # Guarantees
///
/// - **Atomic and durable.** One [`apply`](Persister::apply) is one record appended to the
///   log and made durable (`fdatasync`), then one redb write transaction: when `apply` returns
///   `Ok`, the batch is on disk; after a crash (`kill -9`, power loss) at any instant each
///   batch is either entirely present or entirely absent. redb itself syncs only at
///   checkpoints (every 8 MB of log or few thousand batches, and when the handle is dropped);
///   opening replays the log's batches over the last checkpoint. A small commit costs one
///   sequential write and one sync; a large one (4 MB and more) is committed synced into the
///   database directly: group many writes into one batch.
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
/// during a commit, redb may refuse further use; the caller should stop and restart.
pub struct EmbeddedPersister {
    // Field order matters: the database is closed before the lock is released.
    db: Database,
    wal: Mutex<Wal>,
    path: PathBuf,
    location: String,
    /// The directory as entered in [`open_here`], removed again on drop.
    registered: Option<PathBuf>,
    _lock: File,
}

impl Drop for EmbeddedPersister {
    fn drop(&mut self) {
        // A clean stop leaves everything in the database and the log empty.
        if let Err(e) = self.checkpoint() {
            tracing::warn!(path = %self.location, "closing the state: {e}");
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
            .field("path", &self.path)
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

    /// [`Self::open`] once: the lock, the database, the table.
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
        let wal_path = dir.join(WAL_FILE);
        let (wal, replay) = Wal::open(&wal_path).map_err(|source| StateError::Io {
            action: "open the write-ahead log",
            path: wal_path.clone(),
            hint: DIR_HINT,
            source,
        })?;
        let persister = Self {
            db,
            wal: Mutex::new(wal),
            path,
            location,
            registered: open_here()
                .insert(key.to_path_buf())
                .then(|| key.to_path_buf()),
            _lock: lock,
        };
        // Create the table so that reads never meet a missing one.
        persister.write(|_| Ok(()), "creating the node table", Durability::Immediate)?;
        // Batches acknowledged since the last checkpoint, in order; then everything is in the
        // database and the log starts again.
        if !replay.is_empty() {
            tracing::info!(
                path = %persister.location,
                "replaying {} batch(es) from the write-ahead log",
                replay.len()
            );
        }
        for ops in &replay {
            validate_ops(ops)?;
            persister.write(
                |t| apply_ops(t, ops),
                "replaying the write-ahead log",
                Durability::None,
            )?;
        }
        persister.checkpoint()?;
        tracing::debug!(path = %persister.location, "opened embedded state");
        Ok(persister)
    }

    /// The state file (`<data-dir>/state.redb`).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn backend(&self, action: &str, e: impl Display) -> StateError {
        StateError::Backend {
            location: self.location.clone(),
            action: action.to_owned(),
            message: e.to_string(),
        }
    }

    /// Makes every commit durable in the database (one synced commit) and empties the log.
    fn checkpoint(&self) -> Result<(), StateError> {
        let mut wal = self.wal();
        self.checkpoint_locked(&mut wal)
    }

    fn checkpoint_locked(&self, wal: &mut Wal) -> Result<(), StateError> {
        if wal.is_empty() {
            return Ok(());
        }
        self.write(|_| Ok(()), "checkpointing", Durability::Immediate)?;
        wal.clear()
            .map_err(|source| self.wal_error(wal, "empty the write-ahead log", source))
    }

    fn wal(&self) -> std::sync::MutexGuard<'_, Wal> {
        self.wal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wal_error(&self, wal: &Wal, action: &'static str, source: std::io::Error) -> StateError {
        StateError::Io {
            action,
            path: wal.path().to_path_buf(),
            hint: DIR_HINT,
            source,
        }
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

    /// Runs `f` on the node table in one read transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&RedbRead<'_>) -> Result<T, StateError>,
        action: &str,
    ) -> Result<T, StateError> {
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
    persister: &'a EmbeddedPersister,
}

/// Write access to the node table of one write transaction.
struct RedbMap<'a, 'txn> {
    table: &'a mut Table<'txn, &'static str, &'static [u8]>,
    persister: &'a EmbeddedPersister,
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
        self.read(|t| get_node(t, path), &reading(path))
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        self.read(|t| children_of(t, path), &reading(path))
    }

    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        self.read(|t| subtree_of(t, path), &reading(path))
    }

    fn visit_subtree(&self, path: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        self.read(|t| visit_subtree_of(t, path, visit), &reading(path))
    }

    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        validate_ops(ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let action = format!("committing {} writes", ops.len());
        let mut wal = self.wal();
        let bytes: usize = ops
            .iter()
            .map(|op| match op {
                WriteOp::Set { path, value } => path.len() + value.len(),
                WriteOp::Delete { path } => path.len(),
            })
            .sum();
        if bytes >= DIRECT_BYTES {
            // Straight into the database, synced. The log's batches go first: replaying them
            // over this batch after a crash would undo it.
            self.checkpoint_locked(&mut wal)?;
            return self.write(|t| apply_ops(t, ops), &action, Durability::Immediate);
        }
        wal.append(ops)
            .map_err(|source| self.wal_error(&wal, "append to the write-ahead log", source))?;
        let written = self.write(|t| apply_ops(t, ops), &action, Durability::None);
        if let Err(e) = written {
            // Not in the database: not in the log either (the caller holds the batch and tries
            // again, or stops).
            if let Err(undo) = wal.undo_last() {
                tracing::error!(
                    path = %wal.path().display(),
                    "cannot take a failed batch back out of the write-ahead log: {undo}"
                );
            }
            return Err(e);
        }
        if wal.checkpoint_due() {
            self.checkpoint_locked(&mut wal)?;
        }
        Ok(())
    }
}
