//! Resource accounting: what each agent has (its agents file entry, with the dynamic
//! reservations and persistent volumes made since), what its live tasks and executors use,
//! what is left free, and where the data of its volumes lives.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use berth_mesos::{ReservationInfo, ReservationType, Resource};
use tracing::{info, warn};

use super::Core;
use crate::local::agents::AgentSpec;
use crate::local::fsutil::{mkdirs, sanitize};
use crate::local::resources::{Resources, base_form, describe};
use crate::local::state::{AgentRecord, AgentState, ClusterState};
use crate::protocol::ClusterError;

/// The agents of the agents file and what each has.
pub(super) struct AgentBook {
    /// Agents file entries by agent id.
    pub(super) specs: BTreeMap<String, AgentSpec>,
    /// Each agent's total resources, dynamic reservations and volumes included.
    pub(super) totals: BTreeMap<String, Resources>,
}

impl AgentBook {
    /// Sets up the directories of every agent of `specs`, gives each a record in `state`
    /// (a new one is up) and works out its total resources.
    ///
    /// # Errors
    /// A directory that cannot be made, or a checkpointed reservation the agents file no
    /// longer has room for.
    pub(super) fn open(
        specs: &[AgentSpec],
        root: &Path,
        state: &mut ClusterState,
    ) -> Result<AgentBook, ClusterError> {
        let mut book = AgentBook {
            specs: BTreeMap::new(),
            totals: BTreeMap::new(),
        };
        for spec in specs {
            let agent_dir = root.join("agents").join(sanitize(&spec.id));
            mkdirs(&agent_dir.join("volumes"))?;
            for m in &spec.mounts {
                mkdirs(&spec.mount_root(&agent_dir, m))?;
            }
            let rec = state
                .agents
                .entry(spec.id.clone())
                .or_insert_with(|| AgentRecord {
                    state: AgentState::Up,
                    checkpointed: Vec::new(),
                    executors: BTreeMap::new(),
                    tasks: BTreeMap::new(),
                });
            let total = agent_total(spec, &agent_dir, rec)?;
            book.specs.insert(spec.id.clone(), spec.clone());
            book.totals.insert(spec.id.clone(), total);
        }
        Ok(book)
    }

    /// The ids of the agents, for error messages.
    pub(super) fn known(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }
}

/// An agent's base resources with its checkpointed reservations and volumes applied.
fn agent_total(
    spec: &AgentSpec,
    agent_dir: &Path,
    rec: &AgentRecord,
) -> Result<Resources, ClusterError> {
    let mut total = base_resources(spec, agent_dir);
    for c in &rec.checkpointed {
        total
            .subtract(&base_form(c))
            .map_err(|e| ClusterError::Agent {
                id: spec.id.clone(),
                message: format!(
                    "its reservation {} no longer fits the agents file ({e}); restore the \
                         agent's resources in the agents file",
                    describe(c)
                ),
            })?;
        total.add(c);
    }
    Ok(total)
}

/// The resources an agent's file entry describes (before dynamic reservations).
pub(crate) fn base_resources(spec: &AgentSpec, agent_dir: &Path) -> Resources {
    let mut rs = Resources::default();
    let reserved = |role: &str| {
        vec![ReservationInfo {
            kind: ReservationType::Static,
            role: role.into(),
            principal: None,
            labels: None,
        }]
    };
    let (mut c, mut m, mut d) = (spec.cpus, spec.mem, spec.disk);
    let mut ports = Resources::from_list(&[Resource::ranges(
        "ports",
        spec.ports
            .iter()
            .map(|p| berth_mesos::Range {
                begin: p.begin,
                end: p.end,
            })
            .collect(),
    )]);
    for r in &spec.reserved {
        c -= r.cpus;
        m -= r.mem;
        d -= r.disk;
        for (name, v) in [("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)] {
            if v > 0.0 {
                let mut res = Resource::scalar(name, v);
                res.reservations = reserved(&r.role).into();
                rs.add(&res);
            }
        }
        if !r.ports.is_empty() {
            let ranges: Vec<_> = r
                .ports
                .iter()
                .map(|p| berth_mesos::Range {
                    begin: p.begin,
                    end: p.end,
                })
                .collect();
            let _ = ports.subtract(&Resource::ranges("ports", ranges.clone()));
            let mut res = Resource::ranges("ports", ranges);
            res.reservations = reserved(&r.role).into();
            rs.add(&res);
        }
    }
    rs.add(&Resource::scalar("cpus", c));
    rs.add(&Resource::scalar("mem", m));
    rs.add(&Resource::scalar("disk", d));
    if spec.gpus > 0.0 {
        rs.add(&Resource::scalar("gpus", spec.gpus));
    }
    for p in ports.0 {
        rs.add(&p);
    }
    for mount in &spec.mounts {
        rs.add(&mount_disk(spec, agent_dir, mount));
    }
    rs
}

/// The MOUNT disk resource of one of an agent's mounts.
fn mount_disk(spec: &AgentSpec, agent_dir: &Path, mount: &crate::local::MountSpec) -> Resource {
    let mut res = Resource::scalar("disk", mount.size);
    res.disk = Some(Box::new(berth_mesos::DiskInfo {
        persistence: None,
        volume: None,
        source: Some(berth_mesos::DiskSource {
            kind: berth_mesos::DiskSourceType::Mount,
            mount: Some(berth_mesos::DiskRoot {
                root: spec.mount_root(agent_dir, mount).display().to_string(),
            }),
            path: None,
            profile: mount.profile.clone(),
        }),
    }));
    res
}

/// The root of the MOUNT disk `r` is on, if it is on one.
pub(super) fn mount_root_of(r: &Resource) -> Option<&str> {
    r.disk
        .as_ref()?
        .source
        .as_ref()?
        .mount
        .as_ref()
        .map(|m| m.root.as_str())
}

impl Core {
    /// `<root>/agents/<agent>`.
    pub(super) fn agent_dir(&self, agent: &str) -> PathBuf {
        self.root.join("agents").join(sanitize(agent))
    }

    /// Where the data of persistent volume `r` lives (`None`: `r` is no volume).
    pub(super) fn volume_path(&self, agent: &str, r: &Resource) -> Option<PathBuf> {
        let pid = r.persistence_id()?;
        Some(match mount_root_of(r) {
            Some(root) => PathBuf::from(root).join(sanitize(pid)),
            None => self.agent_dir(agent).join("volumes").join(sanitize(pid)),
        })
    }

    /// Brings the volume directories in line with the state after a start: makes those of
    /// existing volumes (a crash may have come between the state's commit and the mkdir) and
    /// removes those of destroyed ones (a crash between the commit and the removal). Only
    /// directories berth owns are swept: each agent's `volumes/` and the MOUNT disks that lie
    /// inside the agent's directory; an absolute MOUNT path of the operator's is left alone.
    pub(super) fn tidy_volumes(&self) -> Result<(), ClusterError> {
        let mut live: HashSet<PathBuf> = HashSet::new();
        for (agent, total) in &self.agents.totals {
            for r in &total.0 {
                if let Some(p) = self.volume_path(agent, r) {
                    live.insert(p);
                }
            }
        }
        for v in &live {
            mkdirs(v)?;
        }
        for (id, spec) in &self.agents.specs {
            let agent_dir = self.agent_dir(id);
            let mut roots = vec![agent_dir.join("volumes")];
            roots.extend(
                spec.mounts
                    .iter()
                    .filter(|m| m.path.is_relative())
                    .map(|m| spec.mount_root(&agent_dir, m)),
            );
            for root in roots {
                let Ok(entries) = std::fs::read_dir(&root) else {
                    continue;
                };
                for e in entries.flatten() {
                    let p = e.path();
                    if e.file_type().is_ok_and(|t| t.is_dir()) && !live.contains(&p) {
                        info!(path = %p.display(), "removing the directory of a destroyed volume");
                        if let Err(err) = std::fs::remove_dir_all(&p) {
                            warn!(path = %p.display(), error = %err, "cannot remove it");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// What the live tasks and executors of `agent` use.
    pub(super) fn used(&self, agent: &str) -> Vec<Resource> {
        let Some(rec) = self.state.agents.get(agent) else {
            return Vec::new();
        };
        let mut used = Vec::new();
        for t in rec.tasks.values() {
            if t.uses_resources() {
                used.extend(t.resources.iter().cloned());
            }
        }
        for e in rec.executors.values() {
            if e.state.alive() {
                used.extend(e.info.resources.iter().cloned());
            }
        }
        used
    }

    /// What `agent` has that nothing uses.
    pub(super) fn free(&self, agent: &str) -> Resources {
        let mut free = self.agents.totals.get(agent).cloned().unwrap_or_default();
        for u in self.used(agent) {
            if let Err(e) = free.subtract(&u) {
                warn!(agent, error = e, "resource accounting mismatch");
            }
        }
        free
    }

    /// The error for an agent id the core has no (complete) record of.
    pub(super) fn unknown_agent(&self, id: &str) -> ClusterError {
        ClusterError::UnknownAgent {
            id: id.to_owned(),
            known: self.agents.known(),
        }
    }
}
