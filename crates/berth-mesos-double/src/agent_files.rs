//! The agents' files API (`/files/browse`, `/files/read`, `/files/download`), with the
//! semantics of Mesos's `src/files/files.cpp`:
//!
//! ```text
//!  GET /files/browse?path=DIR                 200 [{"path", "nlink", "size", "mtime", "mode", "uid", "gid"}…]
//!  GET /files/read?path=F&offset=O&length=L   200 {"data": "<text>", "offset": O}
//!        offset missing or -1: {"data": "", "offset": <size>}; at or past the end: "" ;
//!        length capped at 16 pages (64 KiB); offset < -1 or a directory: 400
//!  GET /files/download?path=F                 200 raw bytes, application/octet-stream, attachment
//! ```
//!
//! Missing `path`: 400 "Expecting 'path=value' in query.". Only paths inside the agent root
//! (after resolving symlinks) are served; any other path is 404, as Mesos answers for a path
//! that is not attached.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

use crate::Shared;

/// The most `/files/read` returns at once: 16 pages.
pub const MAX_READ: u64 = 16 * 4096;

/// A refused request: its status and text.
type Refusal = (StatusCode, String);

fn bad_request(text: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, text.into())
}

fn not_found() -> Refusal {
    (StatusCode::NOT_FOUND, String::new())
}

/// The requested path (as given) and where it really is, when it is served.
async fn resolve(
    shared: &Shared,
    query: &HashMap<String, String>,
) -> Result<(String, PathBuf, std::fs::Metadata), Refusal> {
    let path = path_param(query)?;
    let Some(agents) = &shared.agents else {
        return Err(not_found());
    };
    let resolved = tokio::fs::canonicalize(&path)
        .await
        .map_err(|_| not_found())?;
    if !resolved.starts_with(&agents.root) {
        return Err(not_found());
    }
    let metadata = tokio::fs::metadata(&resolved)
        .await
        .map_err(|_| not_found())?;
    Ok((path, resolved, metadata))
}

fn path_param(query: &HashMap<String, String>) -> Result<String, Refusal> {
    match query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => Err(bad_request("Expecting 'path=value' in query.\n")),
    }
}

/// `drwxr-xr-x`, as Mesos shows modes.
fn mode_string(metadata: &std::fs::Metadata) -> String {
    let ft = metadata.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else {
        use std::os::unix::fs::FileTypeExt as _;
        if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else if ft.is_fifo() {
            'p'
        } else if ft.is_socket() {
            's'
        } else {
            '-'
        }
    };
    let mode = metadata.mode();
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (bit, c) in [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ] {
        s.push(if mode & bit != 0 { c } else { '-' });
    }
    s
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

/// One entry of a listing (Mesos's `FileInfo` model).
fn file_info(path: &str, metadata: &std::fs::Metadata) -> Value {
    json!({
        "path": path,
        "nlink": metadata.nlink(),
        "size": metadata.size(),
        "mtime": metadata.mtime(),
        "mode": mode_string(metadata),
        "uid": user_name(metadata.uid()),
        "gid": group_name(metadata.gid()),
    })
}

/// `GET /files/browse?path=…`: a directory's entries, sorted by path (a file: `[]`).
pub(crate) async fn browse(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (path, resolved, metadata) = match resolve(&shared, &query).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    let mut listing: Vec<(String, Value)> = Vec::new();
    if metadata.is_dir()
        && let Ok(mut entries) = tokio::fs::read_dir(&resolved).await
    {
        let base = path.trim_end_matches('/');
        while let Ok(Some(entry)) = entries.next_entry().await {
            // stat(2), as Mesos does: a symlink is shown as what it points to.
            let Ok(m) = tokio::fs::metadata(entry.path()).await else {
                continue;
            };
            let shown = format!("{base}/{}", entry.file_name().to_string_lossy());
            let info = file_info(&shown, &m);
            listing.push((shown, info));
        }
    }
    listing.sort_by(|a, b| a.0.cmp(&b.0));
    let listing: Vec<Value> = listing.into_iter().map(|(_, v)| v).collect();
    axum::Json(Value::Array(listing)).into_response()
}

/// A query number as Mesos's `numify` reads it.
fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Refusal> {
    match query.get(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n < -1 => Err(bad_request(format!("Negative {name} provided: {n}.\n"))),
            Ok(n) => Ok(Some(n)),
            Err(e) => Err(bad_request(format!("Failed to parse {name}: {e}.\n"))),
        },
    }
}

/// `GET /files/read?path=…&offset=…&length=…`.
pub(crate) async fn read(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refusal) = path_param(&query) {
        return refusal.into_response();
    }
    let offset = match number(&query, "offset") {
        Ok(o) => o.unwrap_or(-1),
        Err(refusal) => return refusal.into_response(),
    };
    let mut length = match number(&query, "length") {
        Ok(l) => l.and_then(|l| u64::try_from(l).ok()),
        Err(refusal) => return refusal.into_response(),
    };
    // offset -1 (or none): the file's size, nothing read.
    let start = if offset == -1 {
        length = Some(0);
        0
    } else {
        offset.unsigned_abs()
    };
    let (_, resolved, metadata) = match resolve(&shared, &query).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    if metadata.is_dir() {
        return bad_request("Cannot read a directory.\n").into_response();
    }
    let size = metadata.len();
    let mut data = Vec::new();
    if start < size && length != Some(0) {
        let want = length.unwrap_or(size - start).min(MAX_READ);
        let read = async {
            let mut file = tokio::fs::File::open(&resolved).await?;
            file.seek(std::io::SeekFrom::Start(start)).await?;
            file.take(want).read_to_end(&mut data).await
        };
        if let Err(e) = read.await {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read file at '{}': {e}.\n", resolved.display()),
            )
                .into_response();
        }
    }
    let shown_offset = if offset == -1 { size } else { start };
    axum::Json(json!({
        "data": String::from_utf8_lossy(&data),
        "offset": shown_offset,
    }))
    .into_response()
}

/// `GET /files/download?path=…`: the file's bytes as an attachment.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (_, resolved, metadata) = match resolve(&shared, &query).await {
        Ok(r) => r,
        Err(refusal) => return refusal.into_response(),
    };
    if metadata.is_dir() {
        return bad_request("Cannot download a directory.\n").into_response();
    }
    let bytes = match tokio::fs::read(&resolved).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read file at '{}': {e}.\n", resolved.display()),
            )
                .into_response();
        }
    };
    let name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename={name}"),
        )
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        let dir = std::env::temp_dir();
        let m = std::fs::metadata(&dir).unwrap();
        assert!(mode_string(&m).starts_with('d'));
        assert_eq!(mode_string(&m).len(), 10);
    }
}
