//! Where a service's state lives and how berth opens it.
//!
//! ```text
//! --state zk://HOST:PORT[,HOST:PORT…][/CHROOT]   ZooKeeper (leader lock: ephemeral node under <root>/lock)
//! --state DIR  (default: --data-dir)              the embedded store DIR/state.redb (lock: DIR/state.lock)
//! ```
//!
//! Schedulers (`berth run`, `berth janitor`) take the leader lock before touching anything,
//! waiting up to `--lock-wait`. The "break glass" tools (`berth state tree|get --state`,
//! `berth state delete-task`) read the store directly while no scheduler can answer;
//! `delete-task` takes the lock itself, so it refuses while a scheduler runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use berth_state::layout::{SCHEMA_VERSION_NODE, SERVICE_NAME, TASKS};
use berth_state::zk::{LockOwner, ZkOptions, ZkPersister, ZkUrl};
use berth_state::{EmbeddedPersister, Persister, SCHEMA_VERSION, StateError, root_path};
use serde_json::Value;

/// A `--state` location.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded store in this directory.
    Embedded(PathBuf),
    /// A ZooKeeper ensemble.
    Zk(ZkUrl),
}

impl Location {
    /// `zk://…` or a directory.
    ///
    /// # Errors
    /// A malformed `zk://` URL, or another URL scheme.
    pub fn parse(text: &str) -> Result<Self> {
        if text.starts_with("zk://") {
            return Ok(Location::Zk(ZkUrl::parse(text)?));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            bail!(
                "--state '{text}': unknown scheme '{scheme}'; use zk://HOST:PORT[,HOST:PORT…][/CHROOT] \
                 for ZooKeeper, or a directory for the embedded store"
            );
        }
        if text.is_empty() {
            bail!("--state is empty; use zk://HOST:PORT[/CHROOT] or a directory");
        }
        Ok(Location::Embedded(PathBuf::from(text)))
    }

    /// For messages: the URL or the state file.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Location::Embedded(dir) => dir.join(berth_state::STATE_FILE).display().to_string(),
            Location::Zk(url) => url.to_string(),
        }
    }
}

/// Who this process is, for the lock node.
fn owner(listen: Option<String>) -> LockOwner {
    LockOwner::this_process(std::time::SystemTime::now(), listen)
}

/// ZooKeeper options: defaults, with the session timeout from `BERTH_ZK_SESSION_TIMEOUT_SECS`
/// (tests shorten it to see a killed scheduler's lock go sooner).
fn zk_options() -> Result<ZkOptions> {
    let mut options = ZkOptions::default();
    if let Ok(v) = std::env::var("BERTH_ZK_SESSION_TIMEOUT_SECS") {
        let secs: u64 = v.trim().parse().map_err(|_| {
            anyhow!("BERTH_ZK_SESSION_TIMEOUT_SECS='{v}' is not a whole number of seconds")
        })?;
        if !(2..=120).contains(&secs) {
            bail!("BERTH_ZK_SESSION_TIMEOUT_SECS={secs} is out of range; allowed: 2 to 120");
        }
        options.session_timeout = Duration::from_secs(secs);
    }
    Ok(options)
}

/// Refuses a tree written for another service or with an unknown layout version, before
/// anything is written.
fn check_root(persister: &dyn Persister, service: &str) -> Result<()> {
    let root = root_path(service)?;
    let name_path = format!("{root}/{SERVICE_NAME}");
    if let Some(stored) = persister.get(&name_path)? {
        let stored = String::from_utf8_lossy(&stored).into_owned();
        if stored != service {
            return Err(StateError::WrongService {
                stored,
                requested: service.to_owned(),
                path: name_path,
            }
            .into());
        }
    }
    let version_path = format!("{root}/{SCHEMA_VERSION_NODE}");
    if let Some(stored) = persister.get(&version_path)? {
        let stored = String::from_utf8_lossy(&stored).trim().to_owned();
        if stored != SCHEMA_VERSION {
            return Err(StateError::UnsupportedSchemaVersion {
                found: stored,
                supported: SCHEMA_VERSION,
                path: version_path,
            }
            .into());
        }
    }
    Ok(())
}

/// Whether nothing was ever installed for `service` at `location`, found without taking the
/// lock or writing: `Some(true)` when the embedded store file does not exist or ZooKeeper has
/// no target configuration for it; `None` when only opening the store can tell (an existing
/// embedded file, which may be locked by a running scheduler).
///
/// # Errors
/// An unreachable ZooKeeper or a malformed service name.
pub fn is_fresh(location: &Location, service: &str) -> Result<Option<bool>> {
    let target = format!(
        "{}/{}",
        root_path(service)?,
        berth_state::layout::CONFIG_TARGET
    );
    match location {
        Location::Embedded(dir) => {
            Ok((!dir.join(berth_state::STATE_FILE).exists()).then_some(true))
        }
        Location::Zk(url) => {
            let persister = ZkPersister::connect(url, &zk_options()?)?;
            Ok(Some(persister.get(&target)?.is_none()))
        }
    }
}

/// Opens the store for a scheduler of `service`, holding the leader lock. A second
/// scheduler waits up to `wait` for the lock, then fails naming the holder.
///
/// # Errors
/// Unreachable store, the lock held by another scheduler, a tree of another service.
pub fn open_for_scheduler(
    location: &Location,
    service: &str,
    wait: Duration,
    listen: Option<String>,
) -> Result<Box<dyn Persister>> {
    match location {
        Location::Embedded(dir) => {
            let deadline = Instant::now() + wait;
            let mut announced = false;
            loop {
                match EmbeddedPersister::open(dir) {
                    Ok(p) => {
                        check_root(&p, service)?;
                        return Ok(Box::new(p));
                    }
                    Err(e @ StateError::Locked { .. }) if Instant::now() < deadline => {
                        if !announced {
                            tracing::warn!("{e}; waiting up to {} s for it", wait.as_secs());
                            announced = true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Location::Zk(url) => {
            let persister = ZkPersister::connect(url, &zk_options()?)?;
            check_root(&persister, service)?;
            let root = root_path(service)?;
            if wait > Duration::ZERO
                && let Some(holder) = persister.lock_holder(&root)?
            {
                tracing::warn!(
                    "the leader lock of {service} is held by {holder}; waiting up to {} s for it",
                    wait.as_secs()
                );
            }
            persister.acquire_lock(&root, &owner(listen), wait)?;
            Ok(Box::new(persister))
        }
    }
}

/// Opens the store without the leader lock, for reading while no scheduler can answer.
fn open_for_reading(location: &Location) -> Result<Box<dyn Persister>> {
    match location {
        Location::Embedded(dir) => {
            if !dir.join(berth_state::STATE_FILE).exists() {
                bail!(
                    "no berth state in {}: {} does not exist",
                    dir.display(),
                    berth_state::STATE_FILE
                );
            }
            match EmbeddedPersister::open(dir) {
                Ok(p) => Ok(Box::new(p)),
                Err(e @ StateError::Locked { .. }) => Err(anyhow!(
                    "{e}. While the scheduler runs, ask it instead: leave out --state"
                )),
                Err(e) => Err(e.into()),
            }
        }
        Location::Zk(url) => Ok(Box::new(ZkPersister::connect(url, &zk_options()?)?)),
    }
}

/// A node path: absolute as given, else relative to the service's root (needs `name`).
fn node_path(name: Option<&str>, path: Option<&str>) -> Result<String> {
    let path = path.map(|p| p.trim_end_matches('/')).unwrap_or_default();
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    let Some(name) = name else {
        bail!(
            "give --name SERVICE (its root is /dcos-service-<name>), or an absolute path such as \
             /dcos-service-hello-world/Tasks"
        );
    };
    let root = root_path(name)?;
    Ok(if path.is_empty() {
        root
    } else {
        format!("{root}/{path}")
    })
}

/// `berth state tree --state …`: the same JSON as `GET /v1/state/tree`.
///
/// # Errors
/// Bad location or path; unreachable store; nothing stored there.
pub fn tree(state: &str, name: Option<&str>, path: Option<&str>) -> Result<Value> {
    let location = Location::parse(state)?;
    let path = node_path(name, path)?;
    let persister = open_for_reading(&location)?;
    let listing = berth_scheduler::state_tree::tree(&*persister, &path)?;
    if listing["nodes"].as_array().is_none_or(Vec::is_empty) {
        bail!("nothing is stored at {path} in {}", location.describe());
    }
    Ok(listing)
}

/// `berth state get PATH --state …`: one node's value (a task record as its JSON).
///
/// # Errors
/// Bad location or path; unreachable store; no such node.
pub fn get(state: &str, name: Option<&str>, path: &str) -> Result<Vec<u8>> {
    let location = Location::parse(state)?;
    let path = node_path(name, Some(path))?;
    let persister = open_for_reading(&location)?;
    let bytes = persister
        .get(&path)?
        .ok_or_else(|| anyhow!("no node {path} in {}", location.describe()))?;
    // A task record is stored as protobuf: shown as its JSON, as the API shows it.
    Ok(berth_state::readable_record(&path, &bytes)
        .ok()
        .flatten()
        .unwrap_or(bytes))
}

/// `berth state delete-task TASK --state … --name …`: removes the task's subtree; refuses
/// while a scheduler holds the lock. Returns how many nodes were deleted.
///
/// # Errors
/// A running scheduler, an unknown task, an unreachable store.
pub fn delete_task(state: &str, name: Option<&str>, task: &str) -> Result<usize> {
    let Some(name) = name else {
        bail!("give --name SERVICE: the service whose task to delete");
    };
    if task.is_empty() || task.contains('/') {
        bail!("'{task}' is not a task name (e.g. hello-0-server)");
    }
    let location = Location::parse(state)?;
    let persister = open_for_scheduler(&location, name, Duration::ZERO, None).map_err(|e| {
        anyhow!("{e:#}\nrefusing to delete {task} while a scheduler runs: stop it first")
    })?;
    let root = root_path(name)?;
    let path = format!("{root}/{TASKS}/{task}");
    let nodes = persister.subtree(&path)?;
    if nodes.is_empty() {
        let known = persister.children(&format!("{root}/{TASKS}"))?;
        bail!(
            "no task {task} is stored for {name}; stored tasks: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    persister
        .delete(&path)
        .with_context(|| format!("cannot delete {path}"))?;
    Ok(nodes.len())
}

/// The data directory as the embedded store location when `--state` is not given.
#[must_use]
pub fn default_location(data_dir: &Path) -> Location {
    Location::Embedded(data_dir.to_path_buf())
}
