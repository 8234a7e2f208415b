//! Small file, process and socket helpers shared by the local agents and the executor.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::ClusterError;

/// Writes `bytes` to `path` durably: a temp file in the same directory, fsync, rename,
/// fsync of the directory. A crash leaves either the old or the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Serializes `value` as pretty JSON and writes it with [`write_atomic`].
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ClusterError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| state_err(path, e))?;
    write_atomic(path, &bytes).map_err(|e| state_err(path, e))
}

/// Reads a JSON file; `Ok(None)` when it does not exist.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ClusterError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| state_err(path, format!("invalid content: {e}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_err(path, e)),
    }
}

/// A [`ClusterError::State`] for `path`.
pub(crate) fn state_err(path: &Path, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Creates a directory and its parents, with a clear error.
pub(crate) fn mkdirs(path: &Path) -> Result<(), ClusterError> {
    fs::create_dir_all(path).map_err(|e| state_err(path, format!("cannot create directory: {e}")))
}

/// Turns an id into a safe file name (`[A-Za-z0-9._-]`, never `.` or `..`).
pub(crate) fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Opens `path` for appending (created if missing).
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A fresh status uuid: 16 random bytes, base64 (as Mesos JSON carries `bytes`).
pub(crate) fn new_status_uuid() -> String {
    base64(uuid::Uuid::new_v4().as_bytes())
}

/// Standard base64 with padding, as Mesos sends status uuids.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// State letter (`R`, `S`, `Z`, …).
    pub state: char,
    /// Process group.
    pub pgrp: i32,
    /// Session.
    pub session: i32,
    /// Start time in clock ticks since boot (identifies the process across pid reuse).
    pub start_time: u64,
}

/// Reads `/proc/<pid>/stat`.
pub(crate) fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.get(text.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state(3) ppid(4) pgrp(5) session(6) … starttime(22).
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` is a live (non-zombie) process, and the same one that had `start_time`.
pub(crate) fn pid_alive(pid: i32, start_time: Option<u64>) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some(st) => {
            st.state != 'Z' && st.state != 'X' && start_time.is_none_or(|t| t == st.start_time)
        }
        None => kill(Pid::from_raw(pid), None::<Signal>).is_ok() && start_time.is_none(),
    }
}

/// Sends SIGKILL to every process of session `sid` (the executor's session: its tasks,
/// checks and their children) and to the listed process groups when they still belong to
/// that session. Returns how many processes were signalled.
///
/// `start_time` is the session leader's (the executor's) start time. Linux does not reuse a
/// pid while a session or group still carries it, so when a process with pid `sid` exists
/// but started at another time, the old session is empty and nothing is done.
pub(crate) fn kill_session(sid: i32, start_time: Option<u64>, pgids: &[i32]) -> usize {
    if sid <= 1 {
        return 0;
    }
    if let (Some(st), Some(t)) = (proc_stat(sid), start_time)
        && st.start_time != t
    {
        return 0;
    }
    let me = std::process::id() as i32;
    let mut n = 0;
    for &pg in pgids {
        if pg > 1 && pg != me && proc_stat(pg).is_some_and(|s| s.session == sid) {
            let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
            n += 1;
        }
    }
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if proc_stat(pid).is_some_and(|s| s.session == sid && s.state != 'Z') {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                n += 1;
            }
        }
    }
    n
}

/// Whether no live (non-zombie) process of session `sid` is left.
pub(crate) fn session_gone(sid: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return true;
    };
    !entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
            .and_then(proc_stat)
            .is_some_and(|s| s.session == sid && s.state != 'Z' && s.state != 'X')
    })
}

/// Unix socket paths are limited to about 107 bytes; longer paths are reached through
/// `/proc/self/fd/<dir-fd>/<name>`, which needs the directory to stay open meanwhile.
fn short_path(path: &Path) -> io::Result<(PathBuf, Option<File>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no name"))?;
    let d = File::open(dir)?;
    let p = PathBuf::from(format!("/proc/self/fd/{}", d.as_raw_fd())).join(name);
    Ok((p, Some(d)))
}

/// Connects to a Unix socket, whatever the length of its path.
pub(crate) fn unix_connect(path: &Path) -> io::Result<UnixStream> {
    let (p, _dir) = short_path(path)?;
    UnixStream::connect(p)
}

/// Binds a Unix socket (removing a stale one), whatever the length of its path.
pub(crate) fn unix_bind(path: &Path) -> io::Result<UnixListener> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let (p, _dir) = short_path(path)?;
    UnixListener::bind(p)
}

/// Sends `sig` to process group `pgid`, ignoring "no such process".
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 1 {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(new_status_uuid().len(), 24);
    }

    #[test]
    fn sanitize_keeps_ids_readable() {
        assert_eq!(
            sanitize("hello__hello-0-server__1a2b"),
            "hello__hello-0-server__1a2b"
        );
        assert_eq!(sanitize("a/b c"), "a_b_c");
        assert_eq!(sanitize(".."), "_..");
        assert_eq!(sanitize(""), "_");
    }

    #[test]
    fn proc_stat_reads_this_process() {
        let st = proc_stat(std::process::id() as i32).unwrap();
        assert!(pid_alive(std::process::id() as i32, Some(st.start_time)));
        assert!(!pid_alive(
            std::process::id() as i32,
            Some(st.start_time + 1)
        ));
    }

    #[test]
    fn long_socket_paths_work() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("x".repeat(60)).join("y".repeat(60));
        fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("executor.sock");
        let l = unix_bind(&sock).unwrap();
        let _c = unix_connect(&sock).unwrap();
        let (_s, _) = l.accept().unwrap();
        assert!(sock.exists());
    }
}
