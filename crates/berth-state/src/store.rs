//! [`StateStore`]: the typed, cached view of a service's state, and its [`Transaction`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use berth_mesos::{FrameworkId, TaskInfo, TaskStatus, task_labels};
use berth_spec::ServiceSpec;
use uuid::Uuid;

use crate::StateError;
use crate::layout::{
    CONFIG_TARGET, CONFIGURATIONS, FRAMEWORK_ID, GOAL_STATE_OVERRIDE,
    LAST_COMPLETED_UPDATE_TYPE_PROPERTY, MAX_VALUE_SIZE, METADATA, OVERRIDE_STATUS, PROPERTIES,
    SCHEMA_VERSION, SCHEMA_VERSION_NODE, SERVICE_NAME, TASK_INFO, TASK_STATUS, TASKS,
    UNCONFIRMED_LAUNCH, UNINSTALLING_PROPERTY, check_name, root_path, task_status_property_key,
};
use crate::load::{Parsed, Record, load_subtree};
use crate::persister::{Persister, WriteOp};
use crate::record;
use crate::shared::SharedParts;

/// An operator's override of a task's goal state (`Metadata/goal-state-override`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoalOverride {
    /// No override; stored only while a task returns from an override (`NONE` with progress
    /// `PENDING`/`IN_PROGRESS`, e.g. `pod start` after `pod pause`).
    None,
    /// `PAUSED`: the task runs a sleep instead of its command.
    Paused,
    /// `DECOMMISSIONED`: the task is being removed from the service.
    Decommissioned,
}

impl GoalOverride {
    /// The stored text (`PAUSED`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GoalOverride::None => "NONE",
            GoalOverride::Paused => "PAUSED",
            GoalOverride::Decommissioned => "DECOMMISSIONED",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NONE" => Some(GoalOverride::None),
            "PAUSED" => Some(GoalOverride::Paused),
            "DECOMMISSIONED" => Some(GoalOverride::Decommissioned),
            _ => None,
        }
    }
}

impl fmt::Display for GoalOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far a goal override has got (`Metadata/override-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverrideProgress {
    /// `PENDING`: requested, not started.
    Pending,
    /// `IN_PROGRESS`: the task is being relaunched into the override.
    InProgress,
    /// `COMPLETE`: the task runs in the override.
    Complete,
}

impl OverrideProgress {
    /// The stored text (`IN_PROGRESS`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideProgress::Pending => "PENDING",
            OverrideProgress::InProgress => "IN_PROGRESS",
            OverrideProgress::Complete => "COMPLETE",
        }
    }

    /// Parses the stored text.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "PENDING" => Some(OverrideProgress::Pending),
            "IN_PROGRESS" => Some(OverrideProgress::InProgress),
            "COMPLETE" => Some(OverrideProgress::Complete),
            _ => None,
        }
    }
}

impl fmt::Display for OverrideProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A goal override and its progress. `(None, Complete)` — "no override" — is never stored:
/// writing it clears the override.
pub type OverrideState = (GoalOverride, OverrideProgress);

/// The kind of the last finished rollout (property `last-completed-update-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateType {
    /// `NONE`.
    None,
    /// `DEPLOY`: the initial deployment.
    Deploy,
    /// `UPDATE`: a configuration update.
    Update,
}

impl UpdateType {
    /// The text (`DEPLOY`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::None => "NONE",
            UpdateType::Deploy => "DEPLOY",
            UpdateType::Update => "UPDATE",
        }
    }

    /// Parses the text.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NONE" => Some(UpdateType::None),
            "DEPLOY" => Some(UpdateType::Deploy),
            "UPDATE" => Some(UpdateType::Update),
            _ => None,
        }
    }
}

/// One typed write of a [`Transaction`].
#[derive(Debug, Clone)]
enum TxOp {
    SetFrameworkId(FrameworkId),
    ClearFrameworkId,
    SetConfigTarget(Uuid),
    PutConfig(Uuid, Box<ServiceSpec>),
    DeleteConfig(Uuid),
    SetTaskInfo(Box<TaskInfo>),
    SetTaskStatus(String, Box<TaskStatus>),
    DeleteTask(String),
    SetGoalOverride(String, Option<OverrideState>),
    SetUnconfirmed(String, bool),
    SetProperty(String, Vec<u8>),
    SetTaskStatusProperty(String, Box<TaskStatus>),
    DeleteProperty(String),
}

/// A batch of typed writes, committed at once by [`StateStore::commit`] as one atomic, durable
/// [`Persister::apply`].
///
/// Writes take effect in the order they were added (a later write to the same node wins).
/// Nothing is checked or encoded until the commit: an invalid task name or property key, or a
/// value above [`MAX_VALUE_SIZE`](crate::MAX_VALUE_SIZE), fails the whole commit.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    ops: Vec<TxOp>,
}

impl Transaction {
    /// An empty transaction (the same as [`StateStore::transaction`]).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of typed writes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Stores the framework id (`FrameworkID`).
    pub fn set_framework_id(&mut self, id: &FrameworkId) -> &mut Self {
        self.push(TxOp::SetFrameworkId(id.clone()))
    }

    /// Removes the framework id.
    pub fn clear_framework_id(&mut self) -> &mut Self {
        self.push(TxOp::ClearFrameworkId)
    }

    /// Sets the target configuration id (`ConfigTarget`).
    pub fn set_config_target(&mut self, id: Uuid) -> &mut Self {
        self.push(TxOp::SetConfigTarget(id))
    }

    /// Stores a configuration (`Configurations/<id>`).
    pub fn put_config(&mut self, id: Uuid, spec: &ServiceSpec) -> &mut Self {
        self.push(TxOp::PutConfig(id, Box::new(spec.clone())))
    }

    /// Deletes a configuration.
    pub fn delete_config(&mut self, id: Uuid) -> &mut Self {
        self.push(TxOp::DeleteConfig(id))
    }

    /// Stores a TaskInfo under its name (`Tasks/<info.name>/TaskInfo`).
    pub fn set_task_info(&mut self, info: &TaskInfo) -> &mut Self {
        self.push(TxOp::SetTaskInfo(Box::new(info.clone())))
    }

    /// Stores a TaskInfo, taking it (no copy).
    pub fn put_task_info(&mut self, info: TaskInfo) -> &mut Self {
        self.push(TxOp::SetTaskInfo(Box::new(info)))
    }

    /// Stores the latest TaskStatus of a task, taking it (no copy).
    pub fn put_task_status(&mut self, task_name: &str, status: TaskStatus) -> &mut Self {
        self.push(TxOp::SetTaskStatus(task_name.to_owned(), Box::new(status)))
    }

    /// Stores the latest TaskStatus of a task (`Tasks/<task_name>/TaskStatus`).
    pub fn set_task_status(&mut self, task_name: &str, status: &TaskStatus) -> &mut Self {
        self.push(TxOp::SetTaskStatus(
            task_name.to_owned(),
            Box::new(status.clone()),
        ))
    }

    /// Deletes everything stored about a task (`Tasks/<task_name>` and below). The
    /// `<task>:task-status` property is separate: delete it with
    /// [`delete_task_status_property`](Transaction::delete_task_status_property).
    pub fn delete_task(&mut self, task_name: &str) -> &mut Self {
        self.push(TxOp::DeleteTask(task_name.to_owned()))
    }

    /// Sets (`Some`) or clears (`None`, or `Some((GoalOverride::None,
    /// OverrideProgress::Complete))`) the goal override of a task.
    pub fn set_goal_override(
        &mut self,
        task_name: &str,
        state: Option<OverrideState>,
    ) -> &mut Self {
        self.push(TxOp::SetGoalOverride(
            task_name.to_owned(),
            normalize_override(state),
        ))
    }

    /// Marks (`true`) or confirms (`false`) a task whose launch the cluster has not confirmed
    /// yet (the data of the task's node `Tasks/<name>` is `unconfirmed-launch`; see
    /// [`UNCONFIRMED_LAUNCH`](crate::layout::UNCONFIRMED_LAUNCH) for when the stored mark is
    /// cleared). Storing a status that proves the launch confirms it too.
    pub fn set_task_unconfirmed(&mut self, task_name: &str, unconfirmed: bool) -> &mut Self {
        self.push(TxOp::SetUnconfirmed(task_name.to_owned(), unconfirmed))
    }

    /// Stores a property (`Properties/<key>`): raw bytes, at most
    /// [`MAX_VALUE_SIZE`](crate::MAX_VALUE_SIZE); the key may not contain `/`.
    pub fn set_property(&mut self, key: &str, value: impl Into<Vec<u8>>) -> &mut Self {
        self.push(TxOp::SetProperty(key.to_owned(), value.into()))
    }

    /// Deletes a property.
    pub fn delete_property(&mut self, key: &str) -> &mut Self {
        self.push(TxOp::DeleteProperty(key.to_owned()))
    }

    /// Sets the property `uninstalling` to `true` (irreversible by design: nothing clears it
    /// but [`StateStore::delete_all`]).
    pub fn set_uninstalling(&mut self) -> &mut Self {
        self.set_property(UNINSTALLING_PROPERTY, b"true".to_vec())
    }

    /// Sets the property `last-completed-update-type` (a JSON string, e.g. `"DEPLOY"`).
    pub fn set_last_completed_update_type(&mut self, kind: UpdateType) -> &mut Self {
        self.set_property(
            LAST_COMPLETED_UPDATE_TYPE_PROPERTY,
            format!("\"{}\"", kind.as_str()).into_bytes(),
        )
    }

    /// Sets the property `<task>:task-status` to `status` as JSON (the latest status of the
    /// task that carried container IPs).
    pub fn set_task_status_property(&mut self, task_name: &str, status: &TaskStatus) -> &mut Self {
        self.push(TxOp::SetTaskStatusProperty(
            task_name.to_owned(),
            Box::new(status.clone()),
        ))
    }

    /// Deletes the property `<task>:task-status`.
    pub fn delete_task_status_property(&mut self, task_name: &str) -> &mut Self {
        self.delete_property(&task_status_property_key(task_name))
    }

    fn push(&mut self, op: TxOp) -> &mut Self {
        self.ops.push(op);
        self
    }
}

fn normalize_override(state: Option<OverrideState>) -> Option<OverrideState> {
    state.filter(|s| *s != (GoalOverride::None, OverrideProgress::Complete))
}

/// A stored configuration: its JSON as stored, parsed on first use.
#[derive(Debug)]
struct ConfigEntry {
    json: Vec<u8>,
    spec: OnceLock<ServiceSpec>,
}

/// What is stored about one task. The records are boxed: the task table is a B-tree whose
/// nodes hold eleven entries and are often half full, and an entry holding both records
/// inline would leave several hundred bytes a task unused.
#[derive(Debug, Default)]
struct TaskEntry {
    info: Option<Box<TaskInfo>>,
    status: Option<Box<TaskStatus>>,
    goal_override: Option<OverrideState>,
    /// The launch that made the task's reservations is not confirmed by the cluster yet.
    unconfirmed: bool,
    /// The unconfirmed-launch mark is stored: the task node's data…
    mark: bool,
    /// …or the `Metadata/unconfirmed-launch` node an earlier version wrote.
    legacy_mark: bool,
}

impl TaskEntry {
    /// Whether the task may need recovery: its TaskInfo is marked permanently failed, or the
    /// last status of its current launch is terminal, lost or unreachable.
    fn is_troubled(&self) -> bool {
        let Some(info) = &self.info else {
            return false;
        };
        self.status
            .as_ref()
            .is_some_and(|s| s.task_id == info.task_id && s.state.is_failed_or_lost())
            || info.labels.get(task_labels::PERMANENTLY_FAILED) == Some("true")
    }

    fn is_empty(&self) -> bool {
        self.info.is_none()
            && self.status.is_none()
            && self.goal_override.is_none()
            && !self.unconfirmed
            && !self.mark
            && !self.legacy_mark
    }
}

/// Whether a stored status proves the launch of the stored TaskInfo reached the cluster: it
/// is a status of that very task id, and not one saying the cluster never saw the launch.
/// A stored mark beside such a status needs no clearing — the status says more — so the
/// first status of a launch costs one write, not two.
fn proves_launch(task_id: Option<&str>, status: Option<(&str, bool)>) -> bool {
    matches!((task_id, status), (Some(task_id), Some((id, proving))) if proving && task_id == id)
}

/// A stored status as [`proves_launch`] reads it: its task id, and whether it can prove a
/// launch.
fn launch_evidence(status: &TaskStatus) -> (&str, bool) {
    (
        status.task_id.value.as_str(),
        !status.is_unknown_to_cluster(),
    )
}

/// What a transaction leaves of one task's unconfirmed-launch state (see [`proves_launch`]).
#[derive(Debug, Default)]
struct MarkState<'a> {
    exists: bool,
    task_id: Option<&'a str>,
    /// The latest status's task id, and whether it can prove a launch.
    status: Option<(&'a str, bool)>,
    unconfirmed: bool,
    mark: bool,
    legacy_mark: bool,
}

/// A transaction turned into node writes ([`StateStore::encode_all`]).
struct Encoded {
    writes: Vec<WriteOp>,
    /// Indexes of the writes whose bytes the cache keeps as they were stored.
    kept: Vec<usize>,
    marks: Vec<MarkOutcome>,
}

/// What [`StateStore::mark_pass`] decided for one task.
#[derive(Debug)]
struct MarkOutcome {
    name: String,
    unconfirmed: bool,
    /// Its stored mark was cleared.
    cleared: bool,
}

/// Override nodes seen while loading, per task: (target, progress).
type PartialOverrides = BTreeMap<String, (Option<GoalOverride>, Option<OverrideProgress>)>;

/// The write-through read cache: a copy of everything under the root that the store knows.
#[derive(Debug, Default)]
struct Cache {
    framework_id: Option<FrameworkId>,
    config_target: Option<Uuid>,
    configs: BTreeMap<Uuid, ConfigEntry>,
    tasks: BTreeMap<String, TaskEntry>,
    /// How many of `tasks` have a goal override.
    overridden: usize,
    /// The names of the tasks that may need recovery ([`TaskEntry::is_troubled`]): few,
    /// so that finding them does not take a walk over every task.
    troubled: BTreeSet<String>,
    properties: BTreeMap<String, Vec<u8>>,
    /// One copy of what the tasks' TaskInfos hold alike.
    shared: SharedParts,
}

/// The typed state of one service over a [`Persister`], with a write-through read cache.
///
/// Reads are served from memory; writes go through a [`Transaction`] and reach the cache only
/// after the persister has stored them. See the crate documentation for the layout.
pub struct StateStore<P = Box<dyn Persister>> {
    persister: P,
    service_name: String,
    root: String,
    cache: Cache,
    /// Writes staged with [`StateStore::stage`], not yet durable.
    pending: Vec<WriteOp>,
}

impl<P> fmt::Debug for StateStore<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("service_name", &self.service_name)
            .field("root", &self.root)
            .field("tasks", &self.cache.tasks.len())
            .field("configs", &self.cache.configs.len())
            .field("properties", &self.cache.properties.len())
            .finish_non_exhaustive()
    }
}

/// The cache of everything stored under `root`, and how many nodes were read.
fn load_cache<P: Persister + ?Sized>(
    persister: &P,
    root: &str,
) -> Result<(Cache, usize), StateError> {
    let mut cache = Cache::default();
    let mut overrides = PartialOverrides::new();
    let mut nodes = 0;
    let records = load_subtree(persister, root, &mut |path, rel, value| {
        nodes += 1;
        cache.load(path, rel, value, &mut overrides)
    })?;
    for Parsed { name, record } in records.into_iter().flatten() {
        nodes += 1;
        let entry = cache.tasks.entry(name).or_default();
        match record? {
            Record::Info(mut info) => {
                cache.shared.share(&mut info);
                entry.info = Some(info);
            }
            Record::Status(status) => entry.status = Some(Box::new(status)),
        }
    }
    // A stored mark stands unless the stored status proves the launch.
    for entry in cache.tasks.values_mut() {
        entry.unconfirmed = (entry.mark || entry.legacy_mark)
            && !proves_launch(
                entry.info.as_deref().map(|i| i.task_id.value.as_str()),
                entry.status.as_deref().map(launch_evidence),
            );
    }
    cache.load_overrides(root, overrides)?;
    cache.troubled = cache
        .tasks
        .iter()
        .filter(|(_, t)| t.is_troubled())
        .map(|(name, _)| name.clone())
        .collect();
    Ok((cache, nodes))
}

impl<P: Persister> StateStore<P> {
    /// Opens the state of `service_name` (the raw name, e.g. `/quota/hello-world`).
    ///
    /// Reads everything under the root with one [`Persister::subtree`] call, checks
    /// `servicename` and `SchemaVersion` (writing both, in one batch, when they are missing),
    /// and fills the cache. Configurations are parsed on first use; everything else now.
    ///
    /// # Errors
    /// - [`StateError::WrongService`] when the root holds another service's state;
    /// - [`StateError::UnsupportedSchemaVersion`] when `SchemaVersion` is not `1`;
    /// - [`StateError::CorruptValue`] naming the first value that cannot be parsed;
    /// - [`StateError::InvalidKey`] for an unusable service name;
    /// - backend errors of the persister.
    pub fn open(persister: P, service_name: &str) -> Result<Self, StateError> {
        let root = root_path(service_name)?;
        let mut stamp = Vec::new();
        let name_path = format!("{root}/{SERVICE_NAME}");
        match persister.get(&name_path)? {
            Some(stored) => {
                let stored = utf8(&name_path, &stored)?;
                if stored != service_name {
                    return Err(StateError::WrongService {
                        stored: stored.to_owned(),
                        requested: service_name.to_owned(),
                        path: name_path,
                    });
                }
            }
            None => stamp.push(WriteOp::set(name_path, service_name.as_bytes())),
        }
        let version_path = format!("{root}/{SCHEMA_VERSION_NODE}");
        match persister.get(&version_path)? {
            Some(stored) => {
                let stored = utf8(&version_path, &stored)?;
                if stored.trim() != SCHEMA_VERSION {
                    return Err(StateError::UnsupportedSchemaVersion {
                        found: stored.to_owned(),
                        supported: SCHEMA_VERSION,
                        path: version_path,
                    });
                }
            }
            None => stamp.push(WriteOp::set(version_path, SCHEMA_VERSION.as_bytes())),
        }
        let (cache, nodes) = load_cache(&persister, &root)?;
        if !stamp.is_empty() {
            persister.apply(&stamp)?;
        }
        let store = Self {
            persister,
            service_name: service_name.to_owned(),
            root,
            cache,
            pending: Vec::new(),
        };
        tracing::debug!(
            root = %store.root,
            nodes,
            tasks = store.cache.tasks.len(),
            "opened state store"
        );
        Ok(store)
    }

    /// Reads the whole state again from the persister and replaces the cache with it
    /// (`PUT /v1/state/refresh`); staged writes are stored first.
    ///
    /// # Errors
    /// Backend errors, or a stored value that cannot be parsed (the cache is then kept).
    pub fn refresh(&mut self) -> Result<(), StateError> {
        self.flush()?;
        let (cache, nodes) = load_cache(&self.persister, &self.root)?;
        self.cache = cache;
        tracing::info!(
            root = %self.root,
            nodes,
            tasks = self.cache.tasks.len(),
            "state reloaded from the store"
        );
        Ok(())
    }

    /// The service name the store was opened with.
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The root node (`/dcos-service-<name>`).
    #[must_use]
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The persister underneath.
    #[must_use]
    pub fn persister(&self) -> &P {
        &self.persister
    }

    /// Gives the persister back (e.g. to reopen the store).
    #[must_use]
    pub fn into_persister(self) -> P {
        self.persister
    }

    /// The stored framework id.
    #[must_use]
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.cache.framework_id.as_ref()
    }

    /// The target configuration id.
    #[must_use]
    pub fn config_target(&self) -> Option<Uuid> {
        self.cache.config_target
    }

    /// The stored configuration `id`, parsed on first use and kept.
    ///
    /// # Errors
    /// [`StateError::CorruptValue`] when the stored JSON is not a valid ServiceSpec.
    pub fn config(&self, id: Uuid) -> Result<Option<&ServiceSpec>, StateError> {
        let Some(entry) = self.cache.configs.get(&id) else {
            return Ok(None);
        };
        if let Some(spec) = entry.spec.get() {
            return Ok(Some(spec));
        }
        let spec: ServiceSpec = serde_json::from_slice(&entry.json)
            .map_err(|e| StateError::corrupt(&self.config_path(id), e))?;
        Ok(Some(entry.spec.get_or_init(|| spec)))
    }

    /// The stored JSON of configuration `id`, byte for byte (for the configurations API).
    #[must_use]
    pub fn config_json(&self, id: Uuid) -> Option<&[u8]> {
        self.cache.configs.get(&id).map(|e| e.json.as_slice())
    }

    /// The target configuration, if a target is set and stored.
    ///
    /// # Errors
    /// As [`config`](StateStore::config).
    pub fn target_config(&self) -> Result<Option<&ServiceSpec>, StateError> {
        match self.cache.config_target {
            Some(id) => self.config(id),
            None => Ok(None),
        }
    }

    /// The ids of all stored configurations, sorted.
    pub fn config_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.cache.configs.keys().copied()
    }

    /// The names of all tasks with anything stored (TaskInfo, TaskStatus or an override),
    /// sorted.
    pub fn task_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.cache.tasks.keys().map(String::as_str)
    }

    /// The TaskInfo of a task.
    #[must_use]
    pub fn task_info(&self, task_name: &str) -> Option<&TaskInfo> {
        self.cache.tasks.get(task_name)?.info.as_deref()
    }

    /// All stored TaskInfos, sorted by task name.
    pub fn task_infos(&self) -> impl Iterator<Item = &TaskInfo> + '_ {
        self.cache.tasks.values().filter_map(|t| t.info.as_deref())
    }

    /// The stored TaskInfos whose task names start with `prefix`, sorted by task name: a
    /// range of the sorted table, without a walk over the other tasks.
    pub fn task_infos_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a TaskInfo> + 'a {
        self.cache
            .tasks
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(name, _)| name.starts_with(prefix))
            .filter_map(|(_, t)| t.info.as_deref())
    }

    /// Whether any task has a goal override (paused or decommissioned): when none has,
    /// readers need not look each task up for one.
    #[must_use]
    pub fn has_goal_overrides(&self) -> bool {
        self.cache.overridden > 0
    }

    /// A task's TaskInfo with its latest status and goal override (one lookup).
    #[must_use]
    pub fn task_record(
        &self,
        task_name: &str,
    ) -> Option<(&TaskInfo, Option<&TaskStatus>, Option<OverrideState>)> {
        let t = self.cache.tasks.get(task_name)?;
        Some((t.info.as_deref()?, t.status.as_deref(), t.goal_override))
    }

    /// Every stored TaskInfo with its latest status and goal override, sorted by task name:
    /// one walk, no lookup per task.
    pub fn task_records(
        &self,
    ) -> impl Iterator<Item = (&TaskInfo, Option<&TaskStatus>, Option<OverrideState>)> + '_ {
        self.cache.tasks.values().filter_map(|t| {
            t.info
                .as_deref()
                .map(|i| (i, t.status.as_deref(), t.goal_override))
        })
    }

    /// Like [`Self::task_records`], but only the tasks that may need recovery: every task
    /// whose TaskInfo is marked permanently failed or whose current launch's last status is
    /// terminal, lost or unreachable (kept up to date as writes land; no walk over all tasks).
    pub fn troubled_task_records(
        &self,
    ) -> impl Iterator<Item = (&TaskInfo, Option<&TaskStatus>, Option<OverrideState>)> + '_ {
        self.cache.troubled.iter().filter_map(|name| {
            let t = self.cache.tasks.get(name)?;
            t.info
                .as_deref()
                .map(|i| (i, t.status.as_deref(), t.goal_override))
        })
    }

    /// The latest TaskStatus of a task.
    #[must_use]
    pub fn task_status(&self, task_name: &str) -> Option<&TaskStatus> {
        self.cache.tasks.get(task_name)?.status.as_deref()
    }

    /// All stored TaskStatuses with their task names, sorted by task name.
    pub fn task_statuses(&self) -> impl Iterator<Item = (&str, &TaskStatus)> + '_ {
        self.cache
            .tasks
            .iter()
            .filter_map(|(n, t)| t.status.as_deref().map(|s| (n.as_str(), s)))
    }

    /// The goal override of a task; `None` when there is none.
    #[must_use]
    pub fn goal_override(&self, task_name: &str) -> Option<OverrideState> {
        self.cache.tasks.get(task_name)?.goal_override
    }

    /// Whether the task is marked as launched without the cluster's confirmation yet (see
    /// [`Transaction::set_task_unconfirmed`]).
    #[must_use]
    pub fn is_unconfirmed(&self, task_name: &str) -> bool {
        self.cache
            .tasks
            .get(task_name)
            .is_some_and(|t| t.unconfirmed)
    }

    /// A property's stored bytes.
    #[must_use]
    pub fn property(&self, key: &str) -> Option<&[u8]> {
        self.cache.properties.get(key).map(Vec::as_slice)
    }

    /// All property keys, sorted.
    pub fn property_keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.cache.properties.keys().map(String::as_str)
    }

    /// Whether the property `uninstalling` is set to `true`.
    ///
    /// # Errors
    /// [`StateError::CorruptValue`] when it holds something other than `true`/`false`.
    pub fn is_uninstalling(&self) -> Result<bool, StateError> {
        let Some(raw) = self.property(UNINSTALLING_PROPERTY) else {
            return Ok(false);
        };
        let text = utf8(&self.property_path(UNINSTALLING_PROPERTY), raw)?;
        match unquote(text) {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(StateError::corrupt(
                &self.property_path(UNINSTALLING_PROPERTY),
                format!("expected true or false, found '{other}'"),
            )),
        }
    }

    /// The property `last-completed-update-type` (stored as a JSON string; plain text such as
    /// `DEPLOY` is accepted too).
    ///
    /// # Errors
    /// [`StateError::CorruptValue`] when it names no known update type.
    pub fn last_completed_update_type(&self) -> Result<Option<UpdateType>, StateError> {
        let key = LAST_COMPLETED_UPDATE_TYPE_PROPERTY;
        let Some(raw) = self.property(key) else {
            return Ok(None);
        };
        let text = utf8(&self.property_path(key), raw)?;
        UpdateType::parse(unquote(text)).map(Some).ok_or_else(|| {
            StateError::corrupt(
                &self.property_path(key),
                format!("'{text}' is not one of NONE, DEPLOY, UPDATE"),
            )
        })
    }

    /// The property `<task>:task-status`, parsed.
    ///
    /// # Errors
    /// [`StateError::CorruptValue`] when it is not a TaskStatus (JSON, as berth writes it, or
    /// protobuf, as the SDK does).
    pub fn task_status_property(&self, task_name: &str) -> Result<Option<TaskStatus>, StateError> {
        let key = task_status_property_key(task_name);
        match self.property(&key) {
            None => Ok(None),
            Some(raw) => record::decode_status(&self.property_path(&key), raw).map(Some),
        }
    }

    /// A new, empty transaction.
    #[must_use]
    pub fn transaction(&self) -> Transaction {
        Transaction::new()
    }

    /// Stores every write of `tx` with one atomic, durable [`Persister::apply`], then updates
    /// the cache.
    ///
    /// # Errors
    /// An invalid task name or property key, a too large value, or a backend failure. Then
    /// nothing was stored and the cache is unchanged: the caller must not act as if the writes
    /// had happened (e.g. must not launch the tasks or acknowledge the statuses).
    pub fn commit(&mut self, tx: Transaction) -> Result<(), StateError> {
        if !self.pending.is_empty() {
            // Keep the order of writes: staged ones and these go down together.
            self.stage(tx)?;
            return self.flush();
        }
        if tx.ops.is_empty() {
            return Ok(());
        }
        let Encoded {
            mut writes,
            kept: encoded,
            marks,
        } = self.encode_all(&tx.ops)?;
        self.persister.apply(&writes)?;
        let mut encoded = encoded.into_iter().map(|i| match &mut writes[i] {
            WriteOp::Set { value, .. } => std::mem::take(value),
            WriteOp::Delete { .. } => Vec::new(),
        });
        for op in tx.ops {
            self.cache.apply(op, &mut encoded);
        }
        self.cache.apply_marks(marks);
        Ok(())
    }

    /// Stages every write of `tx`: the cache (and so every read) reflects them at once, and
    /// [`flush`](StateStore::flush) later stores all staged writes with **one** atomic,
    /// durable [`Persister::apply`] (group commit across many decisions).
    ///
    /// Until `flush` returns `Ok` nothing staged is durable: the caller must not act on it
    /// (launch, acknowledge). If `flush` fails the cache is ahead of the store; the caller
    /// must drop this store and open it again.
    ///
    /// # Errors
    /// An invalid task name or property key, or a too large value: then nothing was staged.
    pub fn stage(&mut self, tx: Transaction) -> Result<(), StateError> {
        if tx.ops.is_empty() {
            return Ok(());
        }
        let Encoded {
            writes,
            kept: encoded,
            marks,
        } = self.encode_all(&tx.ops)?;
        let mut copies = encoded.into_iter().map(|i| match &writes[i] {
            WriteOp::Set { value, .. } => value.clone(),
            WriteOp::Delete { .. } => Vec::new(),
        });
        for op in tx.ops {
            self.cache.apply(op, &mut copies);
        }
        self.cache.apply_marks(marks);
        self.pending.extend(writes);
        Ok(())
    }

    /// Stores every staged write with one atomic, durable [`Persister::apply`].
    ///
    /// # Errors
    /// Backend failure: nothing staged was stored, and the cache is ahead of the store —
    /// drop this store and open it again before doing anything else.
    pub fn flush(&mut self) -> Result<(), StateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.persister.apply(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// Whether writes are staged and not yet durable.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// How many writes are staged and not yet durable.
    #[must_use]
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// Takes every staged write out of the store, in order, for the caller to make durable
    /// with one [`Persister::apply`] (see [`flush`](StateStore::flush), which does just that).
    ///
    /// The cache already reflects them: until they are applied the caller must not act on
    /// them, and must apply them before anything staged later.
    #[must_use]
    pub fn take_pending(&mut self) -> Vec<WriteOp> {
        std::mem::take(&mut self.pending)
    }

    /// Deletes the whole state of the service (the root and everything below), as the last
    /// step of an uninstall, and empties the cache.
    ///
    /// Afterwards the store reads as empty. Later commits would recreate nodes under the root;
    /// a later [`open`](StateStore::open) would stamp `servicename` and `SchemaVersion` again.
    ///
    /// # Errors
    /// Backend failure (then nothing was deleted and the cache is unchanged).
    pub fn delete_all(&mut self) -> Result<(), StateError> {
        self.persister.delete(&self.root)?;
        self.pending.clear();
        self.cache = Cache::default();
        Ok(())
    }

    fn config_path(&self, id: Uuid) -> String {
        format!("{}/{CONFIGURATIONS}/{}", self.root, id.hyphenated())
    }

    fn property_path(&self, key: &str) -> String {
        format!("{}/{PROPERTIES}/{key}", self.root)
    }

    fn task_path(&self, task_name: &str) -> Result<String, StateError> {
        check_name("task name", task_name)?;
        Ok(format!("{}/{TASKS}/{task_name}", self.root))
    }

    /// The node writes of a transaction's `ops`, checked against [`MAX_VALUE_SIZE`]; the
    /// indexes of the writes whose bytes the cache keeps as they were stored; and what the
    /// transaction leaves of each touched task's unconfirmed-launch state.
    fn encode_all(&self, ops: &[TxOp]) -> Result<Encoded, StateError> {
        let mut writes = Vec::with_capacity(ops.len() + ops.len() / 2);
        let mut encoded = Vec::new();
        for op in ops {
            self.encode(op, &mut writes, &mut encoded)?;
        }
        let marks = self.mark_pass(ops, &mut writes)?;
        for w in &writes {
            if let WriteOp::Set { path, value } = w
                && value.len() > MAX_VALUE_SIZE
            {
                return Err(StateError::ValueTooLarge {
                    path: path.clone(),
                    size: value.len(),
                    max: MAX_VALUE_SIZE,
                });
            }
        }
        Ok(Encoded {
            writes,
            kept: encoded,
            marks,
        })
    }

    /// The unconfirmed-launch state `ops` leave for each task they touch, with the writes
    /// that clear stored marks no longer standing (appended to `out`): a mark stays stored
    /// while the task is unconfirmed, or while its stored status proves the launch (then it
    /// reads as confirmed, see [`proves_launch`]); a status that proves the launch confirms it.
    fn mark_pass(
        &self,
        ops: &[TxOp],
        out: &mut Vec<WriteOp>,
    ) -> Result<Vec<MarkOutcome>, StateError> {
        let mut states: BTreeMap<&str, MarkState<'_>> = BTreeMap::new();
        let stored = |name: &str| {
            self.cache
                .tasks
                .get(name)
                .map_or_else(MarkState::default, |e| MarkState {
                    exists: true,
                    task_id: e.info.as_deref().map(|i| i.task_id.value.as_str()),
                    status: e.status.as_deref().map(launch_evidence),
                    unconfirmed: e.unconfirmed,
                    mark: e.mark,
                    legacy_mark: e.legacy_mark,
                })
        };
        for op in ops {
            match op {
                TxOp::SetTaskInfo(info) => {
                    let st = states
                        .entry(&info.name)
                        .or_insert_with(|| stored(&info.name));
                    st.exists = true;
                    st.task_id = Some(&info.task_id.value);
                }
                TxOp::SetTaskStatus(name, status) => {
                    let st = states.entry(name).or_insert_with(|| stored(name));
                    st.exists = true;
                    st.status = Some(launch_evidence(status));
                }
                TxOp::DeleteTask(name) => {
                    states.insert(name, MarkState::default());
                }
                TxOp::SetUnconfirmed(name, on) => {
                    let st = states.entry(name).or_insert_with(|| stored(name));
                    if *on {
                        st.exists = true;
                        st.mark = true;
                    }
                    st.unconfirmed = *on;
                }
                _ => {}
            }
        }
        let mut outcomes = Vec::new();
        for (name, mut st) in states {
            if !st.exists {
                continue;
            }
            let proven = proves_launch(st.task_id, st.status);
            if proven {
                st.unconfirmed = false;
            }
            let clear = (st.mark || st.legacy_mark) && !st.unconfirmed && !proven;
            if clear {
                let path = self.task_path(name)?;
                if st.legacy_mark {
                    out.push(WriteOp::delete(format!(
                        "{path}/{METADATA}/{UNCONFIRMED_LAUNCH}"
                    )));
                }
                if st.mark {
                    out.push(WriteOp::set(path, Vec::new()));
                }
            }
            outcomes.push(MarkOutcome {
                name: name.to_owned(),
                unconfirmed: st.unconfirmed,
                cleared: clear,
            });
        }
        Ok(outcomes)
    }

    /// Turns one typed write into node writes.
    fn encode(
        &self,
        op: &TxOp,
        out: &mut Vec<WriteOp>,
        encoded: &mut Vec<usize>,
    ) -> Result<(), StateError> {
        let root = &self.root;
        match op {
            TxOp::SetFrameworkId(id) => {
                let path = format!("{root}/{FRAMEWORK_ID}");
                let value = record::encode_framework_id(id);
                out.push(WriteOp::Set { path, value });
            }
            TxOp::ClearFrameworkId => out.push(WriteOp::delete(format!("{root}/{FRAMEWORK_ID}"))),
            TxOp::SetConfigTarget(id) => out.push(WriteOp::set(
                format!("{root}/{CONFIG_TARGET}"),
                id.hyphenated().to_string(),
            )),
            TxOp::PutConfig(id, spec) => {
                let path = self.config_path(*id);
                let value = record::json(&path, spec, true)?;
                encoded.push(out.len());
                out.push(WriteOp::Set { path, value });
            }
            TxOp::DeleteConfig(id) => out.push(WriteOp::delete(self.config_path(*id))),
            TxOp::SetTaskInfo(info) => {
                let path = format!("{}/{TASK_INFO}", self.task_path(&info.name)?);
                let value = record::encode_info(&path, info)?;
                out.push(WriteOp::Set { path, value });
            }
            TxOp::SetTaskStatus(name, status) => {
                let path = format!("{}/{TASK_STATUS}", self.task_path(name)?);
                let value = record::encode_status(&path, status)?;
                out.push(WriteOp::Set { path, value });
            }
            TxOp::DeleteTask(name) => out.push(WriteOp::delete(self.task_path(name)?)),
            TxOp::SetGoalOverride(name, state) => {
                let meta = format!("{}/{METADATA}", self.task_path(name)?);
                let target = format!("{meta}/{GOAL_STATE_OVERRIDE}");
                let progress = format!("{meta}/{OVERRIDE_STATUS}");
                match state {
                    Some((t, p)) => {
                        out.push(WriteOp::set(target, t.as_str()));
                        out.push(WriteOp::set(progress, p.as_str()));
                    }
                    None => {
                        out.push(WriteOp::delete(target));
                        out.push(WriteOp::delete(progress));
                    }
                }
            }
            // The mark is the data of the task's own node, which the launch creates anyway:
            // marking costs no operation of its own. Whether a confirmation must clear it is
            // decided for the whole transaction (`mark_pass`).
            TxOp::SetUnconfirmed(name, on) => {
                let path = self.task_path(name)?;
                if *on {
                    out.push(WriteOp::set(path, UNCONFIRMED_LAUNCH));
                }
            }
            TxOp::SetProperty(key, value) => {
                check_name("property key", key)?;
                out.push(WriteOp::set(self.property_path(key), value.clone()));
            }
            TxOp::SetTaskStatusProperty(task_name, status) => {
                let key = task_status_property_key(task_name);
                check_name("property key", &key)?;
                let path = self.property_path(&key);
                let value = record::json(&path, status, false)?;
                encoded.push(out.len());
                out.push(WriteOp::Set { path, value });
            }
            TxOp::DeleteProperty(key) => {
                check_name("property key", key)?;
                out.push(WriteOp::delete(self.property_path(key)));
            }
        }
        Ok(())
    }
}

impl Cache {
    /// Takes one stored node other than a task record (`rel` is its path below the root) into
    /// the cache.
    fn load(
        &mut self,
        path: &str,
        rel: &str,
        value: &[u8],
        overrides: &mut PartialOverrides,
    ) -> Result<(), StateError> {
        let mut parts = rel.split('/');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        match (first, rest.as_slice()) {
            (FRAMEWORK_ID, []) => {
                self.framework_id = Some(record::decode_framework_id(path, value)?);
            }
            (CONFIG_TARGET, []) => {
                self.config_target = Some(parse_uuid(path, utf8(path, value)?.trim())?);
            }
            (CONFIGURATIONS, [id]) => {
                let id = parse_uuid(path, id)?;
                self.configs.insert(
                    id,
                    ConfigEntry {
                        json: value.to_vec(),
                        spec: OnceLock::new(),
                    },
                );
            }
            (TASKS, [name, METADATA, GOAL_STATE_OVERRIDE]) => {
                let text = utf8(path, value)?;
                let target = GoalOverride::parse(text.trim()).ok_or_else(|| {
                    StateError::corrupt(
                        path,
                        format!("'{text}' is not one of PAUSED, DECOMMISSIONED, NONE"),
                    )
                })?;
                overrides.entry((*name).to_owned()).or_default().0 = Some(target);
            }
            (TASKS, [name]) if value == UNCONFIRMED_LAUNCH.as_bytes() => {
                self.task(name).mark = true;
            }
            (TASKS, [name, METADATA, UNCONFIRMED_LAUNCH]) => {
                self.task(name).legacy_mark = true;
            }
            (TASKS, [name, METADATA, OVERRIDE_STATUS]) => {
                let text = utf8(path, value)?;
                let progress = OverrideProgress::parse(text.trim()).ok_or_else(|| {
                    StateError::corrupt(
                        path,
                        format!("'{text}' is not one of PENDING, IN_PROGRESS, COMPLETE"),
                    )
                })?;
                overrides.entry((*name).to_owned()).or_default().1 = Some(progress);
            }
            (PROPERTIES, [key]) => {
                self.properties.insert((*key).to_owned(), value.to_vec());
            }
            // Inner nodes (`Tasks`, `Tasks/<name>`, …), `servicename`, `SchemaVersion`,
            // `lock` and anything unknown: nothing to cache.
            _ => {}
        }
        Ok(())
    }

    /// Pairs the loaded `goal-state-override` and `override-status` nodes of each task.
    fn load_overrides(
        &mut self,
        root: &str,
        overrides: PartialOverrides,
    ) -> Result<(), StateError> {
        for (name, pair) in overrides {
            let meta = format!("{root}/{TASKS}/{name}/{METADATA}");
            let state = match pair {
                (Some(target), Some(progress)) => (target, progress),
                (Some(_), None) => {
                    return Err(StateError::corrupt(
                        &format!("{meta}/{GOAL_STATE_OVERRIDE}"),
                        format!("{OVERRIDE_STATUS} is missing beside it"),
                    ));
                }
                (None, _) => {
                    return Err(StateError::corrupt(
                        &format!("{meta}/{OVERRIDE_STATUS}"),
                        format!("{GOAL_STATE_OVERRIDE} is missing beside it"),
                    ));
                }
            };
            if let Some(state) = normalize_override(Some(state)) {
                self.set_override(&name, Some(state));
            }
        }
        Ok(())
    }

    fn task(&mut self, name: &str) -> &mut TaskEntry {
        self.tasks.entry(name.to_owned()).or_default()
    }

    /// Sets or clears a task's goal override, keeping count of the tasks that have one.
    fn set_override(&mut self, name: &str, state: Option<OverrideState>) {
        let entry = if state.is_some() {
            self.task(name)
        } else if let Some(entry) = self.tasks.get_mut(name) {
            entry
        } else {
            return;
        };
        let had = entry.goal_override.is_some();
        entry.goal_override = state;
        match (had, state.is_some()) {
            (false, true) => self.overridden += 1,
            (true, false) => self.overridden -= 1,
            _ => {}
        }
        if state.is_none() {
            self.drop_if_empty(name);
        }
    }

    /// Keeps `troubled` in step with a task that changed.
    fn track(&mut self, name: &str, troubled: bool) {
        if troubled {
            if !self.troubled.contains(name) {
                self.troubled.insert(name.to_owned());
            }
        } else if !self.troubled.is_empty() {
            self.troubled.remove(name);
        }
    }

    /// Sets what [`StateStore::mark_pass`] decided, once its writes are stored or staged.
    fn apply_marks(&mut self, marks: Vec<MarkOutcome>) {
        for m in marks {
            if let Some(entry) = self.tasks.get_mut(&m.name) {
                entry.unconfirmed = m.unconfirmed;
                if m.cleared {
                    entry.mark = false;
                    entry.legacy_mark = false;
                }
            }
            self.drop_if_empty(&m.name);
        }
    }

    fn drop_if_empty(&mut self, name: &str) {
        if self.tasks.get(name).is_some_and(TaskEntry::is_empty) {
            self.tasks.remove(name);
        }
    }

    /// Replays one committed write.
    /// `encoded` yields, in order, the stored bytes of the writes that keep them (configs,
    /// task-status properties).
    fn apply(&mut self, op: TxOp, encoded: &mut impl Iterator<Item = Vec<u8>>) {
        match op {
            TxOp::SetFrameworkId(id) => self.framework_id = Some(id),
            TxOp::ClearFrameworkId => self.framework_id = None,
            TxOp::SetConfigTarget(id) => self.config_target = Some(id),
            TxOp::PutConfig(id, spec) => {
                let json = encoded.next().unwrap_or_default();
                self.configs.insert(
                    id,
                    ConfigEntry {
                        json,
                        spec: OnceLock::from(*spec),
                    },
                );
            }
            TxOp::DeleteConfig(id) => {
                self.configs.remove(&id);
            }
            TxOp::SetTaskInfo(mut info) => {
                self.shared.share(&mut info);
                let name = info.name.clone();
                let entry = self.task(&name);
                entry.info = Some(info);
                let troubled = entry.is_troubled();
                self.track(&name, troubled);
            }
            TxOp::SetTaskStatus(name, status) => {
                let entry = self.task(&name);
                entry.status = Some(status);
                let troubled = entry.is_troubled();
                self.track(&name, troubled);
            }
            TxOp::DeleteTask(name) => {
                self.troubled.remove(&name);
                if self
                    .tasks
                    .remove(&name)
                    .is_some_and(|t| t.goal_override.is_some())
                {
                    self.overridden -= 1;
                }
            }
            TxOp::SetGoalOverride(name, state) => self.set_override(&name, state),
            TxOp::SetUnconfirmed(name, on) => {
                if on {
                    let entry = self.task(&name);
                    entry.unconfirmed = true;
                    entry.mark = true;
                } else if let Some(entry) = self.tasks.get_mut(&name) {
                    entry.unconfirmed = false;
                }
            }
            TxOp::SetProperty(key, value) => {
                self.properties.insert(key, value);
            }
            TxOp::SetTaskStatusProperty(task_name, _) => {
                let value = encoded.next().unwrap_or_default();
                self.properties
                    .insert(task_status_property_key(&task_name), value);
            }
            TxOp::DeleteProperty(key) => {
                self.properties.remove(&key);
            }
        }
    }
}

fn utf8<'a>(path: &str, value: &'a [u8]) -> Result<&'a str, StateError> {
    std::str::from_utf8(value).map_err(|e| StateError::corrupt(path, e))
}

fn unquote(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
}

fn parse_uuid(path: &str, text: &str) -> Result<Uuid, StateError> {
    Uuid::parse_str(text)
        .map_err(|e| StateError::corrupt(path, format!("'{text}' is not a UUID: {e}")))
}
