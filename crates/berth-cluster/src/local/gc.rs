//! Garbage collection of finished sandboxes: of every task name the newest
//! [`LocalConfig::sandboxes_kept_per_task`](super::LocalConfig) finished runs keep their
//! sandbox; beyond that, and whenever the finished sandboxes together pass
//! [`LocalConfig::sandbox_disk_budget`](super::LocalConfig), the oldest go. Active tasks'
//! sandboxes are never touched, and persistent volumes are links in a sandbox: removing the
//! sandbox removes the link, never the volume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::TaskRun;

/// Removes what is beyond `keep` finished runs per task and beyond `budget` bytes of
/// finished sandboxes, oldest first; returns the sandboxes removed.
pub(crate) fn collect(runs: &[TaskRun], keep: usize, budget: u64) -> Vec<PathBuf> {
    let mut finished: Vec<&TaskRun> = runs
        .iter()
        .filter(|r| r.state.is_terminal() && r.sandbox.is_dir())
        .collect();
    // Newest first.
    finished.sort_by(|a, b| b.updated.total_cmp(&a.updated));
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for run in finished {
        let n = seen.entry(run.name.as_str()).or_default();
        *n += 1;
        if *n > keep {
            remove(&run.sandbox, &mut removed);
        } else {
            kept.push((run, dir_size(&run.sandbox)));
        }
    }
    let mut total: u64 = kept.iter().map(|(_, size)| size).sum();
    // Oldest first, while over budget.
    for (run, size) in kept.iter().rev() {
        if total <= budget {
            break;
        }
        remove(&run.sandbox, &mut removed);
        total = total.saturating_sub(*size);
    }
    if !removed.is_empty() {
        info!(
            count = removed.len(),
            "removed finished sandboxes (kept {keep} per task within {budget} bytes)"
        );
    }
    removed
}

fn remove(dir: &Path, removed: &mut Vec<PathBuf>) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => removed.push(dir.to_path_buf()),
        Err(e) => warn!(dir = %dir.display(), error = %e, "cannot remove a finished sandbox"),
    }
}

/// Bytes under `dir`, links not followed.
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use berth_mesos::TaskState;

    use super::*;

    fn run(
        root: &Path,
        name: &str,
        id: &str,
        state: TaskState,
        updated: f64,
        bytes: usize,
    ) -> TaskRun {
        let sandbox = root.join(id);
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(sandbox.join("stdout"), "x".repeat(bytes)).unwrap();
        TaskRun {
            task_id: id.to_owned(),
            name: name.to_owned(),
            framework_id: "f".to_owned(),
            agent: "agent-a".to_owned(),
            hostname: "agent-a".to_owned(),
            user: "root".to_owned(),
            state,
            updated,
            sandbox,
            volume_dirs: Vec::new(),
        }
    }

    #[test]
    fn the_newest_runs_per_task_are_kept_within_the_budget() {
        let root = std::env::temp_dir().join(format!("berth-gc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let volume = root.join("volume");
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::write(volume.join("data"), "keep me").unwrap();
        let mut runs = Vec::new();
        for i in 0..4 {
            runs.push(run(
                &root,
                "a",
                &format!("a{i}"),
                TaskState::TaskFailed,
                f64::from(i),
                100,
            ));
        }
        runs.push(run(&root, "a", "a-live", TaskState::TaskRunning, 0.0, 100));
        runs.push(run(&root, "b", "b0", TaskState::TaskFinished, 10.0, 100));
        std::os::unix::fs::symlink(&volume, runs[0].sandbox.join("data")).unwrap();
        // Two per task: a0 and a1 go; then 300 bytes of budget for a2, a3, b0 (300): fine.
        let removed = collect(&runs, 2, 300);
        assert_eq!(removed, vec![root.join("a1"), root.join("a0")]);
        assert!(
            volume.join("data").exists(),
            "a volume behind a link was removed"
        );
        assert!(root.join("a-live").exists());
        // A smaller budget: the oldest finished go first, the live one stays.
        let removed = collect(&runs, 2, 150);
        assert_eq!(removed, vec![root.join("a2"), root.join("a3")]);
        assert!(root.join("b0").exists() && root.join("a-live").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
