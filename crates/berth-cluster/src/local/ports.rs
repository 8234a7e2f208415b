//! Ports shared by every local cluster of this host: two `berth run`s (two services, each
//! with its own data directory) must never hand out the same port, and no cluster offers a
//! port some other process already listens on.
//!
//! ```text
//!  <claims dir>/                 $BERTH_PORT_CLAIMS_DIR, else <tmp>/berth-ports-<uid>
//!    .lock                       held while a cluster reads the others' claims and writes its own
//!    <cluster id>.json           {"owner": "<data dir>/cluster", "ports": [[begin, end], …]}
//! ```
//!
//! Before each allocation round a cluster takes the lock, reads the other clusters' claims
//! (a claim whose owner directory is gone is stale and removed), leaves those ports and the
//! ports in LISTEN state on this host (`/proc/net/tcp`, `/proc/net/tcp6`) out of its offers,
//! then writes its own claim — the ports its tasks and executors use, its reserved ports and
//! the ports it is offering — and releases the lock. A port goes back to everyone once it is
//! neither used, reserved nor offered by its cluster.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use berth_mesos::{Range, Resource};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::local::fsutil;

/// One cluster's claim file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    /// The claiming cluster's directory (`<data dir>/cluster`).
    owner: PathBuf,
    /// The claimed ports.
    ports: Vec<(u64, u64)>,
}

/// The host's port claims, seen from one cluster.
#[derive(Debug)]
pub(crate) struct PortClaims {
    dir: PathBuf,
    cluster_id: String,
    owner: PathBuf,
    /// The claim last written (rewritten only when it changes).
    written: Option<Vec<(u64, u64)>>,
    /// Ports in LISTEN state, as last read by [`refresh_listening`] (reading `/proc/net/tcp`
    /// takes tens of milliseconds on some machines: it is not done on the allocation path).
    listening: Listening,
}

/// The listening ports of this host, shared with the thread that refreshes them.
pub(crate) type Listening = std::sync::Arc<std::sync::Mutex<Vec<u64>>>;

/// Reads the ports in LISTEN state into `shared`.
pub(crate) fn refresh_listening(shared: &Listening) {
    let ports: Vec<u64> = listening_ports().into_iter().collect();
    *shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = ports;
}

/// Held while a cluster reads the claims and writes its own.
pub(crate) struct ClaimLock {
    _file: File,
}

impl PortClaims {
    /// The claims of this host, for the cluster `cluster_id` living in `owner`.
    pub(crate) fn new(cluster_id: &str, owner: &Path, dir: Option<&Path>) -> Self {
        let dir = dir.map_or_else(
            || {
                std::env::var_os("BERTH_PORT_CLAIMS_DIR").map_or_else(
                    || std::env::temp_dir().join(format!("berth-ports-{}", nix::unistd::getuid())),
                    PathBuf::from,
                )
            },
            Path::to_path_buf,
        );
        Self {
            dir,
            cluster_id: cluster_id.to_owned(),
            owner: owner.to_path_buf(),
            written: None,
            listening: Listening::default(),
        }
    }

    /// The listening ports, for the thread that refreshes them.
    pub(crate) fn listening(&self) -> Listening {
        self.listening.clone()
    }

    /// Takes the claims lock (blocking other clusters' rounds for a moment); `None` when the
    /// claims directory cannot be used (then only listening ports are left out).
    pub(crate) fn lock(&self) -> Option<ClaimLock> {
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            warn!(dir = %self.dir.display(), error = %e, "cannot create the port claims directory");
            return None;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))
            .ok()?;
        file.lock().ok()?;
        Some(ClaimLock { _file: file })
    }

    /// Ports this cluster may not offer unreserved: claimed by other clusters, or listened
    /// on by some process.
    pub(crate) fn taken(&self, _lock: Option<&ClaimLock>) -> Vec<Range> {
        let mut taken: Vec<Range> = self
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|&p| Range { begin: p, end: p })
            .collect();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return merge(taken);
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if stem == self.cluster_id || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok(Some(claim)) = fsutil::read_json::<Claim>(&path) else {
                continue;
            };
            if claim.owner == self.owner {
                // An earlier cluster id of this same directory (a fresh state): not another
                // cluster.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !claim.owner.exists() {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            taken.extend(claim.ports.iter().map(|&(begin, end)| Range { begin, end }));
        }
        merge(taken)
    }

    /// Writes this cluster's claim when it changed. Not fsync'ed: a claim is rewritten every
    /// allocation round, and after a machine crash every cluster claims afresh.
    pub(crate) fn claim(&mut self, _lock: Option<&ClaimLock>, ports: &[Range]) {
        let ports: Vec<(u64, u64)> = ports.iter().map(|r| (r.begin, r.end)).collect();
        if self.written.as_ref() == Some(&ports) && self.path().exists() {
            return;
        }
        let claim = Claim {
            owner: self.owner.clone(),
            ports,
        };
        let path = self.path();
        let tmp = path.with_extension("json.tmp");
        let written = serde_json::to_vec(&claim)
            .map_err(|e| e.to_string())
            .and_then(|bytes| std::fs::write(&tmp, bytes).map_err(|e| e.to_string()))
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()));
        match written {
            Ok(()) => self.written = Some(claim.ports),
            Err(e) => warn!(error = %e, "cannot write this cluster's port claim"),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.cluster_id))
    }
}

/// Sorted, merged ranges.
pub(crate) fn merge(v: Vec<Range>) -> Vec<Range> {
    crate::local::resources::merge_ranges(v)
}

/// `r` without the ports in `taken` when it is an unreserved `ports` resource; `None` when
/// nothing of it is left.
pub(crate) fn without(r: Resource, taken: &[Range]) -> Option<Resource> {
    if r.name != "ports" || !r.reservations.is_empty() || taken.is_empty() {
        return Some(r);
    }
    let mut r = r;
    let ranges = r.ranges.take().unwrap_or_default();
    let left = crate::local::resources::ranges_subtract(&ranges.range, taken);
    if left.is_empty() {
        return None;
    }
    r.ranges = Some(Box::new(berth_mesos::Ranges { range: left }));
    Some(r)
}

/// Ports in LISTEN state on this host (TCP over IPv4 and IPv6).
fn listening_ports() -> BTreeSet<u64> {
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        ports.extend(parse_listening(&text));
    }
    ports
}

/// The local ports of the LISTEN (`0A`) rows of a `/proc/net/tcp` table.
fn parse_listening(text: &str) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            if state != "0A" {
                return None;
            }
            let port = local.rsplit(':').next()?;
            u64::from_str_radix(port, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_rows_are_read() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1\n   1: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 2\n";
        assert_eq!(parse_listening(table), vec![8080]);
    }

    #[test]
    fn taken_ports_leave_unreserved_port_ranges() {
        let r = Resource::ranges("ports", vec![Range { begin: 10, end: 20 }]);
        let left = without(r.clone(), &[Range { begin: 12, end: 13 }]).unwrap();
        assert_eq!(
            left.ranges.unwrap().range,
            vec![Range { begin: 10, end: 11 }, Range { begin: 14, end: 20 }]
        );
        assert!(without(r, &[Range { begin: 0, end: 100 }]).is_none());
    }

    #[test]
    fn claims_of_other_clusters_are_taken_and_stale_ones_dropped() {
        let root = std::env::temp_dir().join(format!("berth-claims-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        let claims = |id: &str, owner: &str| PortClaims {
            dir: root.join("claims"),
            cluster_id: id.to_owned(),
            owner: root.join(owner),
            written: None,
            listening: Listening::default(),
        };
        let mut a = claims("a1", "a");
        let b = claims("b1", "b");
        let lock = a.lock();
        a.claim(
            lock.as_ref(),
            &[Range {
                begin: 40000,
                end: 40001,
            }],
        );
        drop(lock);
        let taken = b.taken(b.lock().as_ref());
        assert!(
            taken.iter().any(|r| r.begin <= 40000 && 40001 <= r.end),
            "{taken:?}"
        );
        // Its own claim does not count.
        assert!(
            !a.taken(None)
                .iter()
                .any(|r| r.begin <= 40000 && 40000 <= r.end)
        );
        // The owner directory is gone: the claim is stale.
        std::fs::remove_dir_all(root.join("a")).unwrap();
        assert!(
            !b.taken(None)
                .iter()
                .any(|r| r.begin <= 40000 && 40000 <= r.end)
        );
        assert!(!root.join("claims/a1.json").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
