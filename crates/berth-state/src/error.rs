//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while reading or writing berth's state.
///
/// Every variant names what it is about (a file, a node path, a key) so that the message can be
/// shown to an operator as it is. A failed write never leaves a partial change behind: when a
/// commit or `apply` returns an error, nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory of the embedded store could not be created, opened or read.
    #[error("cannot {action} {}: {source}; {hint}", path.display())]
    Io {
        /// What berth was doing (`create the data directory`, `open the state file`, …).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The storage backend failed while reading or committing. The change (if any) was not
    /// stored; the backend may be unusable afterwards (a disk that fails stays failed), so the
    /// scheduler should stop and be restarted once the cause is fixed.
    #[error("the state store {location} failed while {action}: {message}")]
    Backend {
        /// The store (a file path, `memory`, a ZooKeeper connect string).
        location: String,
        /// What was being done (`reading /a/b`, `committing 12 writes`, …).
        action: String,
        /// The backend's own error text.
        message: String,
    },

    /// The state file is not a berth state database, or it is damaged.
    #[error(
        "{} is not a readable berth state database ({message}); stop berth, move the file aside \
         (or restore it from a backup) and start again",
        path.display()
    )]
    CorruptStore {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A stored value could not be understood (bad JSON, unknown enum text, not a UUID).
    #[error("the value stored at {path} is corrupt: {message}")]
    CorruptValue {
        /// The node path of the value.
        path: String,
        /// The parse error.
        message: String,
    },

    /// A value could not be turned into its stored form (JSON).
    #[error("cannot encode the value for {path}: {message}")]
    Encode {
        /// The node path the value was meant for.
        path: String,
        /// The serializer's error.
        message: String,
    },

    /// The state under this root was written for another service.
    #[error(
        "this state belongs to service '{stored}', not '{requested}' (stored in {path}); use the \
         right service name or another state location"
    )]
    WrongService {
        /// The service name stored in `servicename`.
        stored: String,
        /// The service name berth was started with.
        requested: String,
        /// The `servicename` node path.
        path: String,
    },

    /// The state was written with a layout this berth does not understand.
    #[error(
        "the state at {path} has schema version '{found}', but this berth supports only version \
         '{supported}'; use a berth release that supports it"
    )]
    UnsupportedSchemaVersion {
        /// What `SchemaVersion` holds.
        found: String,
        /// The version this berth reads and writes.
        supported: &'static str,
        /// The `SchemaVersion` node path.
        path: String,
    },

    /// A node path breaks the path rules (see [`crate::validate_path`]).
    #[error("invalid state path '{path}': {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// A name used as one path segment (task name, property key) is not allowed.
    #[error("invalid {kind} '{key}': {reason}")]
    InvalidKey {
        /// What the name is (`task name`, `property key`).
        kind: &'static str,
        /// The offending name.
        key: String,
        /// Which rule it breaks.
        reason: String,
    },

    /// A value is larger than a node may hold.
    #[error("the value for {path} is {size} bytes; at most {max} bytes are allowed")]
    ValueTooLarge {
        /// The node path the value was meant for.
        path: String,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },

    /// Another process holds the state.
    #[error("the state in {} is in use by another berth process ({holder}); stop it first", path.display())]
    Locked {
        /// The state file.
        path: PathBuf,
        /// Who holds it, as far as known.
        holder: LockHolder,
    },

    /// A ZooKeeper URL (`zk://host:port[,host:port…][/chroot]`) is malformed.
    #[error(
        "invalid ZooKeeper URL '{url}': {reason}; expected zk://host:port[,host:port…][/chroot], \
         e.g. zk://127.0.0.1:2181 or zk://zk-1:2181,zk-2:2181/berth"
    )]
    InvalidZkUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// No ZooKeeper server of the ensemble could be reached in time when connecting.
    /// Retryable: ZooKeeper may still be starting.
    #[error(
        "cannot reach ZooKeeper at {servers} within {}: {message}; is it running?",
        format_duration(*waited)
    )]
    Unreachable {
        /// The servers tried (`host:port,host:port`).
        servers: String,
        /// How long berth tried.
        waited: Duration,
        /// What the servers answered (connection errors per server).
        message: String,
    },

    /// ZooKeeper is temporarily unavailable (connection lost, no answer in time, session being
    /// re-created). Retryable: see [`StateError::is_retryable`]; `hint` says whether a write may
    /// have been applied.
    #[error("ZooKeeper at {location} is unavailable while {action}: {message}; {hint}")]
    Unavailable {
        /// The ensemble (`zk://…`).
        location: String,
        /// What was being done (`reading /a/b`, `committing 12 writes`, …).
        action: String,
        /// What went wrong.
        message: String,
        /// What to do about it, and what is known about the write's outcome.
        hint: String,
    },

    /// Another scheduler holds the leader lock of this service.
    #[error(
        "the leader lock {location} is held by {holder}; a second scheduler for the same service \
         cannot run: stop the other one first (or wait until its ZooKeeper session expires)"
    )]
    LockHeld {
        /// The lock node (`zk://…/dcos-service-<name>/lock`).
        location: String,
        /// Who holds it (pid, host, since when), as recorded in its lock node.
        holder: String,
    },

    /// The leader lock this process held is gone (its ZooKeeper session expired and another
    /// scheduler may have taken over). Fatal: the scheduler must stop; nothing more is written.
    #[error(
        "the leader lock {location} was lost (ZooKeeper session expired){}; another scheduler \
         may be running; this scheduler must stop",
        holder.as_ref().map(|h| format!(" and is now held by {h}")).unwrap_or_default()
    )]
    LockLost {
        /// The lock node (`zk://…/dcos-service-<name>/lock`).
        location: String,
        /// Who holds it now, when known.
        holder: Option<String>,
    },
}

/// `10 s`, `1.5 s`, `250 ms`: durations as people read them in messages.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms >= 1000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{ms} ms")
    }
}

/// The process holding a state lock, as recorded in its lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// The pid written into the lock file by the holder.
    Pid(u32),
    /// The lock file names no (readable) pid.
    Unknown,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockHolder::Pid(pid) => write!(f, "pid {pid}"),
            LockHolder::Unknown => f.write_str("pid unknown"),
        }
    }
}

impl StateError {
    /// Whether the failure is temporary: the backend could not be reached or did not answer
    /// ([`StateError::Unavailable`], [`StateError::Unreachable`]). The same call may be retried
    /// later, and a write retried with the same batch (applying a batch twice is the same as
    /// applying it once). Everything else — invalid input, corrupt data, a lost or held lock,
    /// a failed disk — is not retryable.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StateError::Unavailable { .. } | StateError::Unreachable { .. }
        )
    }

    /// A [`StateError::CorruptValue`] for `path`.
    pub(crate) fn corrupt(path: &str, message: impl fmt::Display) -> Self {
        StateError::CorruptValue {
            path: path.to_owned(),
            message: message.to_string(),
        }
    }

    /// A [`StateError::InvalidPath`] for `path`.
    pub(crate) fn invalid_path(path: &str, reason: impl Into<String>) -> Self {
        StateError::InvalidPath {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}
