//! The one error type of this crate.

use std::fmt;
use std::path::PathBuf;

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
