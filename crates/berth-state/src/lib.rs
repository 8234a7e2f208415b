//! Durable state of the berth scheduler.
//!
//! The scheduler must never forget what it launched or reserved, and must come back after a
//! crash knowing exactly that. This crate keeps that state: which framework id berth
//! registered with, which configuration is the target (and every stored configuration), the
//! TaskInfo and latest TaskStatus of every task, operator overrides (pause, decommission) and
//! free-form properties (`uninstalling`, `last-completed-update-type`, …).
//!
//! It has two layers:
//!
//! - [`Persister`]: a tree of byte values under ZooKeeper-like paths with atomic multi-writes.
//!   Backends: [`MemPersister`] (tests, simulation), [`EmbeddedPersister`] (the default: one
//!   redb file under `--data-dir`, locked by its process, behind a write-ahead log that
//!   acknowledges each batch while a writer thread commits it into redb) and [`ZkPersister`] (ZooKeeper: one
//!   `apply` = one `multi`, split below the request limit, fenced by the leader lock of
//!   [`ZkPersister::acquire_lock`]; it also takes batches in the background,
//!   [`Persister::submit`], several in flight and chained so that a prefix of them is
//!   stored, so the scheduler decides while ZooKeeper stores). The shared test
//!   suite in `tests/` runs against all three.
//! - [`StateStore`]: the typed state of one service over any persister, with a write-through
//!   read cache loaded at startup by one bulk [`Persister::subtree`] read.
//!
//! # Flow
//!
//! ```text
//!  startup:  Persister::subtree(root) ──parse──▶ cache ──reads──▶ scheduler, HTTP API
//!
//!  offer cycle / status update:
//!    scheduler ──tx.set_task_info / set_task_status / …──▶ Transaction (typed, in memory)
//!        │ store.commit(tx)
//!        ▼
//!    encode, check names and sizes ──▶ Persister::apply(ops)   one atomic, durable batch
//!        │ Ok                                      │ Err
//!        ▼                                         ▼
//!    update the cache, then launch / ack      cache unchanged; do not act, report, stop
//! ```
//!
//! # Layout
//!
//! Compatible with the DC/OS SDK's ZooKeeper layout, so a ZooKeeper browser (or `berth`'s
//! own debug tools) shows the same tree. Task records and the framework id are Mesos protobuf,
//! as the SDK stores them (JSON, as earlier versions wrote, is read too; `berth state get` shows
//! either as JSON); the other values are human-readable text or JSON:
//!
//! ```text
//! /dcos-service-<name>/            leading '/' of the name dropped, other '/' → "__"
//!   servicename                    raw service name; another name → StateError::WrongService
//!   SchemaVersion                  "1"; anything else → StateError::UnsupportedSchemaVersion
//!   FrameworkID                    FrameworkID protobuf (`mesos.v1.FrameworkID`)
//!   ConfigTarget                   target configuration UUID (text)
//!   Configurations/<uuid>          ServiceSpec JSON (pretty)
//!   Tasks/<task-name>              empty, or `unconfirmed-launch` from a launch that made the
//!                                  task's reservations (a TaskStatus of it proves it confirmed)
//!   Tasks/<task-name>/TaskInfo     TaskInfo protobuf (`mesos.v1.TaskInfo`)
//!   Tasks/<task-name>/TaskStatus   latest TaskStatus protobuf (`mesos.v1.TaskStatus`)
//!   Tasks/<task-name>/Metadata/goal-state-override   PAUSED | DECOMMISSIONED | NONE
//!   Tasks/<task-name>/Metadata/override-status       PENDING | IN_PROGRESS | COMPLETE
//!   Properties/<key>               raw bytes (JSON for the keys berth writes)
//!   lock/                          the ZooKeeper leader lock: ephemeral leader-<id>-<seq> nodes (owner JSON)
//! ```
//!
//! Property keys and task names are single path segments (no `/`); every value the store
//! writes is at most [`MAX_VALUE_SIZE`] bytes (ZooKeeper's node limit).
//!
//! # Guarantees
//!
//! - **Atomicity.** One [`StateStore::commit`] is one [`Persister::apply`]: all of its writes
//!   are stored, or none (also across a crash). Invalid names and oversized values are
//!   rejected before anything is written.
//! - **Durability.** When `commit` returns `Ok`, the writes survive a crash: the embedded
//!   backend commits with an fsync ([`redb::Durability::Immediate`]). This is what makes the
//!   scheduler's write-ahead rule work: store the TaskInfo, *then* launch; store the status,
//!   *then* acknowledge it.
//! - **Group commit.** The cost of a commit is one fsync, whatever its size; the scheduler
//!   puts everything of one offer cycle into one transaction.
//! - **Crash safety.** A `kill -9` (or power loss) at any instant leaves each transaction
//!   entirely present or entirely absent; the next open verifies checksums and repairs what an
//!   interrupted commit left behind.
//! - **Cache coherence.** The cache changes only after the persister accepted a commit; on an
//!   error it is unchanged, so reads never show state that is not stored.
//! - **The lock.** [`EmbeddedPersister::open`] holds an exclusive lock on
//!   `<data-dir>/state.lock` (recording its pid) for the life of the value: a second berth on
//!   the same data directory fails at once with [`StateError::Locked`] ("… is in use by another
//!   berth process (pid 1234); stop it first") and writes nothing.
//! - **Uninstall.** [`StateStore::delete_all`] removes the whole root in one atomic delete.
//!
//! # Example
//!
//! ```
//! use berth_mesos::FrameworkId;
//! use berth_state::{MemPersister, StateStore};
//!
//! # fn main() -> Result<(), berth_state::StateError> {
//! let mut store = StateStore::open(MemPersister::new(), "hello-world")?;
//! let mut tx = store.transaction();
//! tx.set_framework_id(&FrameworkId::new("fw-1"))
//!     .set_property("custom", b"{\"a\":1}".to_vec());
//! store.commit(tx)?;
//! assert_eq!(store.framework_id().map(|f| f.as_str()), Some("fw-1"));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod embedded;
mod error;
pub mod layout;
mod load;
mod mem;
mod path;
mod persister;
mod record;
mod shared;
mod store;
mod wal;
pub mod zk;

pub use embedded::{EmbeddedPersister, LOCK_FILE, STATE_FILE};
pub use error::{LockHolder, StateError};
pub use layout::{MAX_VALUE_SIZE, SCHEMA_VERSION, root_path, task_status_property_key};
pub use mem::MemPersister;
pub use path::{validate_path, validate_write_path};
pub use persister::{NodeVisitor, Outcome, Persister, Submitted, WriteOp};
pub use record::readable_record;
pub use store::{
    GoalOverride, OverrideProgress, OverrideState, StateStore, Transaction, UpdateType,
};
pub use wal::WAL_FILES;
pub use zk::{LockOwner, ZkConnectionState, ZkOptions, ZkPersister, ZkUrl};
