//! Tasks and their sandboxes: `GET /v1/tasks` and the files routes, in the shape of Mesos's
//! files API (`browse`, `read`, `download`), over the sandbox directories the cluster reports.
//!
//! ```text
//!  GET /v1/tasks/{id}/files/read?path=stdout&offset=0&length=4096
//!     └─ AgentControl::tasks ─▶ the run with that id ─▶ resolve(path) inside its sandbox
//!        (or a volume linked into it) ─▶ {"data": "...", "offset": 0}
//! ```
//!
//! A path is relative to the sandbox (a leading `/` is allowed). It may not leave the
//! sandbox: `..` components are refused, and a path whose real location (after symbolic
//! links) is neither in the sandbox nor in one of the task's persistent volumes gets a 400.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

/// How the scheduler's log is named in messages.
pub const LOG_NAME: &str = "the scheduler log";

/// The most bytes one `read` returns.
pub const MAX_READ: u64 = 1 << 20;

/// One run of a task, as `GET /v1/tasks` lists it, with where its files are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSandbox {
    /// Task id.
    pub id: String,
    /// Task name (`hello-0-server`).
    pub name: String,
    /// Agent id.
    pub agent: String,
    /// The agent's host name.
    pub host: String,
    /// The user the task runs as.
    pub user: String,
    /// Latest state (`TASK_RUNNING`).
    pub state: String,
    /// Whether the task is still active (not in a terminal state).
    pub active: bool,
    /// When the latest status was produced (seconds since the epoch).
    pub updated: f64,
    /// Framework id.
    pub framework_id: String,
    /// The sandbox directory.
    #[serde(skip)]
    pub sandbox: PathBuf,
    /// Host directories of persistent volumes linked into the sandbox.
    #[serde(skip)]
    pub volume_dirs: Vec<PathBuf>,
}

/// Why a files request failed: the HTTP status and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 400, 404 or 500.
    pub status: u16,
    /// For people.
    pub message: String,
}

impl FileError {
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// `path` (a leading `/` allowed) as a path relative to a sandbox, without `.` parts.
///
/// # Errors
/// 400 when it has `..` parts: it would leave the sandbox of task `task_id`.
pub fn relative(task_id: &str, path: &str) -> Result<PathBuf, FileError> {
    let mut out = PathBuf::new();
    for component in Path::new(path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(FileError::new(
                    400,
                    format!(
                        "The path '{path}' leaves the sandbox of task {task_id}: '..' is not \
                         allowed"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The real location of `path` in the sandbox of `task`.
///
/// # Errors
/// 400 for a path that leaves the sandbox, 404 for one that does not exist.
pub fn resolve(task: &TaskSandbox, path: &str) -> Result<PathBuf, FileError> {
    let joined = task.sandbox.join(relative(&task.id, path)?);
    let not_found = || {
        FileError::new(
            404,
            format!(
                "No such file or directory '{path}' in the sandbox of task {}",
                task.id
            ),
        )
    };
    let sandbox = task.sandbox.canonicalize().map_err(|_| {
        FileError::new(
            404,
            format!(
                "The sandbox of task {} is gone (finished sandboxes are garbage-collected)",
                task.id
            ),
        )
    })?;
    let real = joined.canonicalize().map_err(|_| not_found())?;
    let inside = real.starts_with(&sandbox)
        || task
            .volume_dirs
            .iter()
            .filter_map(|d| d.canonicalize().ok())
            .any(|d| real.starts_with(d));
    if !inside {
        return Err(FileError::new(
            400,
            format!(
                "The path '{path}' leaves the sandbox of task {} (it links to {})",
                task.id,
                real.display()
            ),
        ));
    }
    Ok(real)
}

/// `browse`: the entries of a directory (or the one entry of a file), as Mesos lists them:
/// `path` (relative to the sandbox), `nlink`, `size`, `mtime`, `mode`, `uid`, `gid`.
///
/// # Errors
/// As [`resolve`]; 500 when the directory cannot be read.
pub fn browse(task: &TaskSandbox, path: &str) -> Result<Value, FileError> {
    let real = resolve(task, path)?;
    let base = path.trim_start_matches('/').trim_end_matches('/');
    let meta = std::fs::metadata(&real).map_err(|e| io_error(path, &e))?;
    if !meta.is_dir() {
        return Ok(json!([entry(base, &meta)]));
    }
    let mut entries = Vec::new();
    let dir = std::fs::read_dir(&real).map_err(|e| io_error(path, &e))?;
    for item in dir.flatten() {
        let name = item.file_name().to_string_lossy().into_owned();
        // Follow links (volumes are linked in), as a listing inside the task shows them.
        let Ok(meta) = std::fs::metadata(item.path()) else {
            continue;
        };
        let relative = if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        };
        entries.push((relative, meta));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(
        entries.iter().map(|(p, m)| entry(p, m)).collect(),
    ))
}

fn entry(path: &str, meta: &std::fs::Metadata) -> Value {
    json!({
        "path": path,
        "nlink": meta.nlink(),
        "size": meta.len(),
        "mtime": meta.mtime(),
        "mode": mode_string(meta),
        "uid": meta.uid().to_string(),
        "gid": meta.gid().to_string(),
    })
}

/// `drwxr-xr-x`, as `ls -l` shows it.
fn mode_string(meta: &std::fs::Metadata) -> String {
    let mode = meta.permissions().mode();
    let kind = if meta.is_dir() { 'd' } else { '-' };
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// `read`: up to `length` bytes (at most [`MAX_READ`]) from `offset`, as
/// `{"data": "…", "offset": N}`; an `offset` of -1 answers the file's size as the offset
/// with no data (where a follower starts). Reading at or past the end gives empty data.
///
/// # Errors
/// As [`resolve`]; 400 for a directory.
pub fn read(
    task: &TaskSandbox,
    path: &str,
    offset: i64,
    length: Option<u64>,
) -> Result<Value, FileError> {
    let real = resolve(task, path)?;
    read_file(&real, path, offset, length)
}

/// [`read`] of a file given by its real location; `path` names it in messages.
///
/// # Errors
/// 400 for a directory, 404 for a missing file, 500 when it cannot be read.
pub fn read_file(
    real: &Path,
    path: &str,
    offset: i64,
    length: Option<u64>,
) -> Result<Value, FileError> {
    if !real.exists() {
        return Err(FileError::new(404, format!("No such file: {path}")));
    }
    let mut file = open_file(real, path)?;
    let size = file.metadata().map_err(|e| io_error(path, &e))?.len();
    if offset < 0 {
        return Ok(json!({"data": "", "offset": size}));
    }
    let offset = offset.unsigned_abs();
    let want = length.unwrap_or(MAX_READ).min(MAX_READ);
    let mut data = Vec::new();
    if offset < size {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| io_error(path, &e))?;
        file.take(want)
            .read_to_end(&mut data)
            .map_err(|e| io_error(path, &e))?;
    }
    Ok(json!({"data": String::from_utf8_lossy(&data), "offset": offset}))
}

/// `download`: the whole file.
///
/// # Errors
/// As [`resolve`]; 400 for a directory.
pub fn download(task: &TaskSandbox, path: &str) -> Result<Vec<u8>, FileError> {
    let real = resolve(task, path)?;
    let mut file = open_file(&real, path)?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| io_error(path, &e))?;
    Ok(data)
}

fn open_file(real: &Path, path: &str) -> Result<std::fs::File, FileError> {
    if real.is_dir() {
        return Err(FileError::new(
            400,
            format!("'{path}' is a directory; browse it instead"),
        ));
    }
    std::fs::File::open(real).map_err(|e| io_error(path, &e))
}

fn io_error(path: &str, e: &std::io::Error) -> FileError {
    FileError::new(500, format!("Cannot read '{path}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(dir: &Path) -> TaskSandbox {
        TaskSandbox {
            id: "hello-0-server__1".to_owned(),
            name: "hello-0-server".to_owned(),
            agent: "agent-a".to_owned(),
            host: "localhost".to_owned(),
            user: "root".to_owned(),
            state: "TASK_RUNNING".to_owned(),
            active: true,
            updated: 0.0,
            framework_id: "f".to_owned(),
            sandbox: dir.join("sandbox"),
            volume_dirs: vec![dir.join("volume")],
        }
    }

    fn setup() -> (PathBuf, TaskSandbox) {
        let dir = std::env::temp_dir().join(format!(
            "berth-api-files-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let t = task(&dir);
        std::fs::create_dir_all(t.sandbox.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("volume")).unwrap();
        std::fs::create_dir_all(dir.join("secret")).unwrap();
        std::fs::write(t.sandbox.join("stdout"), "hello\nworld\n").unwrap();
        std::fs::write(dir.join("volume/data"), "kept").unwrap();
        std::fs::write(dir.join("secret/key"), "no").unwrap();
        std::os::unix::fs::symlink(dir.join("volume"), t.sandbox.join("data")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), t.sandbox.join("out")).unwrap();
        (dir, t)
    }

    #[test]
    fn reads_browses_and_stays_inside() {
        let (dir, t) = setup();
        assert_eq!(
            read(&t, "stdout", 0, None).unwrap(),
            json!({"data": "hello\nworld\n", "offset": 0})
        );
        assert_eq!(
            read(&t, "/stdout", 6, Some(3)).unwrap(),
            json!({"data": "wor", "offset": 6})
        );
        assert_eq!(
            read(&t, "stdout", 100, None).unwrap(),
            json!({"data": "", "offset": 100})
        );
        assert_eq!(
            read(&t, "stdout", -1, None).unwrap(),
            json!({"data": "", "offset": 12})
        );
        assert_eq!(read(&t, "data/data", 0, None).unwrap()["data"], "kept");
        let listing = browse(&t, "").unwrap();
        let names: Vec<&str> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["data", "out", "stdout", "sub"]);
        assert_eq!(browse(&t, "sub").unwrap(), json!([]));
        assert_eq!(browse(&t, "stdout").unwrap()[0]["size"], 12);
        for bad in ["../x", "sub/../../secret/key", "out/key"] {
            let e = read(&t, bad, 0, None).unwrap_err();
            assert_eq!(e.status, 400, "{bad}: {}", e.message);
        }
        assert_eq!(read(&t, "nothing", 0, None).unwrap_err().status, 404);
        assert_eq!(read(&t, "sub", 0, None).unwrap_err().status, 400);
        assert_eq!(download(&t, "stdout").unwrap(), b"hello\nworld\n");
        let _ = std::fs::remove_dir_all(dir);
    }
}
