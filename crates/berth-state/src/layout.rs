//! Node names of the state layout (`/dcos-service-<name>/…`), as a ZooKeeper browser shows them.

use crate::StateError;
use crate::path::check_segment;

/// The schema version this berth reads and writes (single-service layout).
pub const SCHEMA_VERSION: &str = "1";
/// The largest value the store writes into one node (ZooKeeper's node limit, as in the
/// reference): properties, task records, configurations.
pub const MAX_VALUE_SIZE: usize = 1_000_000;

/// `servicename`: the raw service name.
pub const SERVICE_NAME: &str = "servicename";
/// `SchemaVersion`: [`SCHEMA_VERSION`] as text.
pub const SCHEMA_VERSION_NODE: &str = "SchemaVersion";
/// `FrameworkID`: `{"value":"…"}`.
pub const FRAMEWORK_ID: &str = "FrameworkID";
/// `ConfigTarget`: the target configuration's UUID as text.
pub const CONFIG_TARGET: &str = "ConfigTarget";
/// `Configurations/<uuid>`: ServiceSpec JSON.
pub const CONFIGURATIONS: &str = "Configurations";
/// `Tasks/<task-name>/…`.
pub const TASKS: &str = "Tasks";
/// `Tasks/<task-name>/TaskInfo`: TaskInfo protobuf (JSON read too).
pub const TASK_INFO: &str = "TaskInfo";
/// `Tasks/<task-name>/TaskStatus`: TaskStatus protobuf (JSON read too).
pub const TASK_STATUS: &str = "TaskStatus";
/// `Tasks/<task-name>/Metadata/…`.
pub const METADATA: &str = "Metadata";
/// `Tasks/<task-name>/Metadata/goal-state-override`: `PAUSED`, `DECOMMISSIONED` or `NONE`.
pub const GOAL_STATE_OVERRIDE: &str = "goal-state-override";
/// `Tasks/<task-name>/Metadata/override-status`: `PENDING`, `IN_PROGRESS` or `COMPLETE`.
pub const OVERRIDE_STATUS: &str = "override-status";
/// The data of `Tasks/<task-name>` while the cluster has not confirmed the launch that made
/// the task's reservations (written with the TaskInfo): the task's node is created by the
/// launch anyway, so marking costs no ZooKeeper operation of its own. A stored status of the
/// launch (its task id, not one saying the cluster never saw it) proves the confirmation, so
/// the first status leaves the mark where it is; the mark is cleared (`SetData` to empty) when
/// the stored status stops proving it — a status saying the cluster lost the task, a new
/// TaskInfo with a new task id — or when the task was confirmed by another task of its pod
/// and has no status of its own. Earlier versions wrote a node
/// `Tasks/<task-name>/Metadata/unconfirmed-launch` instead: read, and deleted when cleared.
pub const UNCONFIRMED_LAUNCH: &str = "unconfirmed-launch";
/// `Properties/<key>`: raw bytes.
pub const PROPERTIES: &str = "Properties";
/// `lock`: reserved for the ZooKeeper backend's leader lock (never read by the store).
pub const LOCK: &str = "lock";

/// Property `uninstalling`: `true` once an uninstall has started (irreversible).
pub const UNINSTALLING_PROPERTY: &str = "uninstalling";
/// Property `last-completed-update-type`: the kind of the last finished rollout.
pub const LAST_COMPLETED_UPDATE_TYPE_PROPERTY: &str = "last-completed-update-type";
/// Suffix of the property `<task>:task-status`: the latest TaskStatus of a task that carried
/// container IPs.
pub const TASK_STATUS_PROPERTY_SUFFIX: &str = ":task-status";

/// The property key `<task>:task-status`.
#[must_use]
pub fn task_status_property_key(task_name: &str) -> String {
    format!("{task_name}{TASK_STATUS_PROPERTY_SUFFIX}")
}

/// The root node of a service's state: `/dcos-service-<name>`, where a leading `/` of the name
/// is dropped and every other `/` becomes `__` (`/quota/hello-world` →
/// `/dcos-service-quota__hello-world`).
///
/// # Errors
/// [`StateError::InvalidKey`] when the name is empty or yields an invalid path segment.
pub fn root_path(service_name: &str) -> Result<String, StateError> {
    let trimmed = service_name.strip_prefix('/').unwrap_or(service_name);
    let invalid = |reason: String| StateError::InvalidKey {
        kind: "service name",
        key: service_name.to_owned(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(invalid("a service name may not be empty".to_owned()));
    }
    if trimmed.split('/').any(str::is_empty) {
        return Err(invalid(
            "empty segments ('//', a trailing '/') are not allowed".to_owned(),
        ));
    }
    let segment = format!("dcos-service-{}", trimmed.replace('/', "__"));
    check_segment(&segment).map_err(invalid)?;
    Ok(format!("/{segment}"))
}

/// Checks a name used as one path segment (a task name, a property key).
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), StateError> {
    check_segment(name).map_err(|reason| StateError::InvalidKey {
        kind,
        key: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(
            root_path("hello-world").ok().as_deref(),
            Some("/dcos-service-hello-world")
        );
        assert_eq!(
            root_path("/quota/hello-world").ok().as_deref(),
            Some("/dcos-service-quota__hello-world")
        );
        assert!(root_path("/").is_err());
        assert!(root_path("a//b").is_err());
        assert!(root_path("a/").is_err());
    }
}
