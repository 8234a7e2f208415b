//! `POST /v1/tasks/{taskId}/exec`: runs a command inside a running task — in its sandbox,
//! with its environment and user — and streams it over the same connection.
//!
//! ```text
//!  client ── POST /v1/tasks/{id}/exec  Upgrade: berth-exec  {"cmd": ["sh"], "tty": true}
//!         ◀─ 101 Switching Protocols (or 4xx/5xx with a message: unknown task, not running,
//!            no such command)
//!  client ── raw bytes ──────────────▶ the command's stdin (client closes its write side at EOF)
//!         ◀─ frames: [kind u8][length u32 BE][bytes]
//!              1 stdout, 2 stderr, 3 exit (i32 BE: the exit code, 128 + signal when killed)
//! ```
//!
//! With `"tty": true` the command gets a pseudo-terminal: stdin, stdout and stderr are its
//! slave side, and everything it prints comes back as stdout.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use crate::reply;

/// The `Upgrade` protocol name.
pub const PROTOCOL: &str = "berth-exec";
/// Frame kinds.
pub const STDOUT: u8 = 1;
/// Frame kinds.
pub const STDERR: u8 = 2;
/// Frame kinds.
pub const EXIT: u8 = 3;

/// One frame of the stream: kind, big-endian length, bytes.
pub(crate) fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(5 + data.len());
    frame.push(kind);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(data);
    frame
}

/// Where a command runs inside a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    /// The working directory (the task's sandbox).
    pub dir: PathBuf,
    /// The environment (the task's).
    pub env: Vec<(String, String)>,
    /// User and group ids to run as, when not the scheduler's.
    pub user: Option<(u32, u32)>,
}

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecRequest {
    /// The program and its arguments.
    pub cmd: Vec<String>,
    /// Give it a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
    /// The client sends its input: with a tty, the end of that input is the client going
    /// away (a terminal hang-up).
    #[serde(default)]
    pub interactive: bool,
}

/// What runs: the child and its streams.
struct Running {
    child: tokio::process::Child,
    /// Signal its whole session on hang-up (it has a terminal of its own).
    session: bool,
    /// End it when the client's input ends.
    hang_up_on_eof: bool,
    /// stdin, stdout, stderr (no stderr with a tty: it is the terminal).
    input: Box<dyn AsyncWrite + Send + Unpin>,
    output: Box<dyn AsyncRead + Send + Unpin>,
    errors: Option<Box<dyn AsyncRead + Send + Unpin>>,
}

/// Starts `request.cmd` in `target`; the error is the HTTP status and message.
fn start(target: &ExecTarget, request: &ExecRequest) -> Result<Running, (u16, String)> {
    let Some((program, args)) = request.cmd.split_first() else {
        return Err((400,
            "The command is empty: give the program and its arguments, e.g. {\"cmd\": [\"ls\", \"-l\"]}".to_owned(),
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&target.dir)
        .kill_on_drop(true);
    if let Some((uid, gid)) = target.user {
        cmd.uid(uid).gid(gid);
    }
    let spawn_error = |e: std::io::Error| (400, format!("Cannot run '{program}' in the task: {e}"));
    if request.tty {
        let pty = nix::pty::openpty(None, None)
            .map_err(|e| (500, format!("Cannot open a pseudo-terminal: {e}")))?;
        let slave: OwnedFd = pty.slave;
        let clone = |fd: &OwnedFd| {
            fd.try_clone()
                .map_err(|e| (500, format!("Cannot set up the terminal: {e}")))
        };
        cmd.stdin(Stdio::from(clone(&slave)?))
            .stdout(Stdio::from(clone(&slave)?))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pty (stdin is its slave side).
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(spawn_error)?;
        let master = std::fs::File::from(pty.master);
        let reader = master
            .try_clone()
            .map_err(|e| (500, format!("Cannot set up the terminal: {e}")))?;
        Ok(Running {
            child,
            session: true,
            hang_up_on_eof: request.interactive,
            input: Box::new(tokio::fs::File::from_std(master)),
            output: Box::new(tokio::fs::File::from_std(reader)),
            errors: None,
        })
    } else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(spawn_error)?;
        let (Some(input), Some(output), Some(errors)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err((500, "The command's streams could not be opened".to_owned()));
        };
        Ok(Running {
            child,
            session: false,
            hang_up_on_eof: false,
            input: Box::new(input),
            output: Box::new(output),
            errors: Some(Box::new(errors)),
        })
    }
}

/// Starts the command, then answers 101 and streams it once the connection is upgraded.
pub(crate) fn respond(
    on_upgrade: hyper::upgrade::OnUpgrade,
    target: &ExecTarget,
    request: &ExecRequest,
) -> Response {
    let running = match start(target, request) {
        Ok(r) => r,
        Err((status, message)) => return reply::text(status, message),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => stream(TokioIo::new(upgraded), running).await,
            Err(e) => tracing::warn!("exec: the connection was not upgraded: {e}"),
        }
    });
    switching_protocols()
}

/// The 101 answer that hands the connection over to the exec stream.
pub(crate) fn switching_protocols() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    response
}

/// Copies the connection to the command's stdin and its output back as frames, then sends
/// the exit code.
async fn stream<S: AsyncRead + AsyncWrite + Send + 'static>(conn: S, running: Running) {
    let Running {
        mut child,
        session,
        hang_up_on_eof,
        mut input,
        output,
        errors,
    } = running;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(nix::unistd::Pid::from_raw);
    // The client is gone (its connection fails, or an interactive terminal hung up): the
    // command is ended rather than left running with nobody reading it.
    let (gone, mut gone_rx) = mpsc::channel::<nix::sys::signal::Signal>(2);
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let (frames, mut outgoing) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let writer_gone = gone.clone();
    let writer = tokio::spawn(async move {
        while let Some((kind, data)) = outgoing.recv().await {
            if to_client.write_all(&frame(kind, &data)).await.is_err() {
                let _ = writer_gone.try_send(nix::sys::signal::Signal::SIGKILL);
                break;
            }
            let _ = to_client.flush().await;
        }
        let _ = to_client.shutdown().await;
    });
    let stdin = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut input).await;
        let _ = input.shutdown().await;
        if hang_up_on_eof {
            let _ = gone.try_send(nix::sys::signal::Signal::SIGHUP);
        }
    });
    let pump = |mut from: Box<dyn AsyncRead + Send + Unpin>,
                kind: u8,
                frames: mpsc::Sender<(u8, Vec<u8>)>| {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if frames.send((kind, buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        })
    };
    let out = pump(output, STDOUT, frames.clone());
    let err = errors.map(|e| pump(e, STDERR, frames.clone()));
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(signal) = gone_rx.recv() => {
                if let Some(pid) = pid {
                    let target = if session { nix::unistd::Pid::from_raw(-pid.as_raw()) } else { pid };
                    let _ = nix::sys::signal::kill(target, signal);
                }
            }
        }
    };
    let code = match status {
        Ok(s) => s.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
        }),
        Err(_) => 255,
    };
    if let Some(err) = err {
        let _ = err.await;
    }
    // With a tty the master side may stay readable after the child's exit (other processes
    // holding the terminal): give what is buffered a moment, no more.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), out).await;
    let _ = frames.send((EXIT, code.to_be_bytes().to_vec())).await;
    drop(frames);
    stdin.abort();
    let _ = writer.await;
}
