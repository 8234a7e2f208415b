//! Exec on the agents: the nested container sessions of the agent operator API v1
//! (`POST /slave(n)/api/v1`), run as real processes in the task's sandbox.
//!
//! ```text
//!  LAUNCH_NESTED_CONTAINER_SESSION  (application/json; Accept: application/recordio)
//!     {"container_id": {"value": NEW, "parent": <a running task's container id>},
//!      "command": CommandInfo, "container": {"tty_info": {"window_size": …}}?}
//!   ◀ 200 application/recordio, Message-Content-Type: application/json, streamed:
//!     {"type": "DATA", "data": {"type": "STDOUT"|"STDERR", "data": <base64>}} …
//!     {"type": "CONTROL", "control": {"type": "HEARTBEAT", …}} every 5 s
//!     … until the process exited and its output is drained. The connection breaking
//!     first kills it (Mesos destroys the session's container).
//!  ATTACH_CONTAINER_INPUT  (application/recordio request body, streamed)
//!     CONTAINER_ID record, then PROCESS_IO records: DATA STDIN (empty data: end of input),
//!     CONTROL TTY_INFO (resize), CONTROL HEARTBEAT      ◀ 200, empty, when the input ends
//!  WAIT_NESTED_CONTAINER {"container_id": …}
//!   ◀ 200 {"type": "WAIT_NESTED_CONTAINER", "wait_nested_container": {"exit_status": S}}
//!     S is the wait(2) status: code << 8 for an exit code, the signal number when killed.
//! ```
//!
//! The command runs with `sh -c <value>` (`shell`, the default) or as `value` with
//! `arguments` (`arguments[0]` is argv[0]), in the task's sandbox, with the command's
//! environment variables, `MESOS_SANDBOX` and (unless given) a default `PATH`; not as
//! `command.user`. With `tty_info` it gets a pseudo-terminal of its own (everything comes back
//! as STDOUT; the end of input is a Ctrl-D). When the process exits, the rest of its process
//! group is killed, as the container is destroyed.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_mesos::recordio;
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot, watch};

use crate::Shared;
use crate::agents::{Agents, agent_id, agent_number};

/// How often a session's output stream carries a heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Finished sessions whose exit status is kept for WAIT_NESTED_CONTAINER.
const KEEP_FINISHED: usize = 1000;
/// How long output is still read after the process exited.
const DRAIN: Duration = Duration::from_secs(1);
/// `PATH` when the command does not set one (Mesos's host default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The nested container sessions of all agents, by container id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    inner: Mutex<SessionMap>,
}

#[derive(Debug, Default)]
struct SessionMap {
    by_id: HashMap<String, Arc<Session>>,
    /// Finished sessions, oldest first (the oldest are forgotten beyond [`KEEP_FINISHED`]).
    finished: VecDeque<String>,
}

#[derive(Debug)]
struct Session {
    /// The agent it runs on.
    agent: String,
    input: mpsc::UnboundedSender<Input>,
    /// The wait(2) status, once the process exited.
    exit: watch::Receiver<Option<i32>>,
    /// Its process group (the process' pid).
    group: Option<i32>,
}

/// What ATTACH_CONTAINER_INPUT sends to a session.
#[derive(Debug)]
enum Input {
    Data(Vec<u8>),
    Eof,
    Resize(u16, u16),
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, SessionMap> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, agent: &str, id: &str) -> Option<Arc<Session>> {
        self.lock()
            .by_id
            .get(id)
            .filter(|s| s.agent == agent)
            .cloned()
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().by_id.contains_key(id)
    }

    fn finished(&self, id: &str) {
        let mut m = self.lock();
        m.finished.push_back(id.to_owned());
        while m.finished.len() > KEEP_FINISHED {
            if let Some(old) = m.finished.pop_front() {
                m.by_id.remove(&old);
            }
        }
    }

    /// Kills every process still running (the double is stopping).
    pub(crate) fn kill_all(&self) {
        for s in self.lock().by_id.values() {
            if s.exit.borrow().is_none() {
                kill_group(s.group);
            }
        }
    }
}

fn kill_group(group: Option<i32>) {
    if let Some(pid) = group.filter(|p| *p > 0) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

// The calls, as far as the double reads them.

#[derive(Debug, Deserialize)]
struct AgentCall {
    #[serde(rename = "type")]
    kind: String,
    launch_nested_container_session: Option<LaunchSession>,
    wait_nested_container: Option<WaitNested>,
    attach_container_input: Option<AttachInput>,
}

#[derive(Debug, Clone, Deserialize)]
struct ContainerId {
    value: String,
    parent: Option<Box<ContainerId>>,
}

#[derive(Debug, Deserialize)]
struct LaunchSession {
    container_id: ContainerId,
    command: Option<CommandIn>,
    container: Option<ContainerIn>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct CommandIn {
    #[serde(default = "yes")]
    shell: bool,
    value: Option<String>,
    #[serde(default)]
    arguments: Vec<String>,
    environment: Option<EnvironmentIn>,
}

#[derive(Debug, Deserialize)]
struct EnvironmentIn {
    #[serde(default)]
    variables: Vec<VariableIn>,
}

#[derive(Debug, Deserialize)]
struct VariableIn {
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct ContainerIn {
    tty_info: Option<TtyInfo>,
}

#[derive(Debug, Deserialize)]
struct TtyInfo {
    window_size: Option<WindowSize>,
}

#[derive(Debug, Deserialize)]
struct WindowSize {
    rows: u32,
    columns: u32,
}

impl WindowSize {
    fn get(&self) -> (u16, u16) {
        (
            u16::try_from(self.rows).unwrap_or(u16::MAX),
            u16::try_from(self.columns).unwrap_or(u16::MAX),
        )
    }
}

#[derive(Debug, Deserialize)]
struct WaitNested {
    container_id: ContainerId,
}

#[derive(Debug, Deserialize)]
struct AttachInput {
    #[serde(rename = "type")]
    kind: String,
    container_id: Option<ContainerId>,
    process_io: Option<ProcessIoIn>,
}

#[derive(Debug, Deserialize)]
struct ProcessIoIn {
    #[serde(rename = "type")]
    kind: String,
    data: Option<DataIn>,
    control: Option<ControlIn>,
}

#[derive(Debug, Deserialize)]
struct DataIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: String,
}

#[derive(Debug, Deserialize)]
struct ControlIn {
    #[serde(rename = "type")]
    kind: String,
    tty_info: Option<TtyInfo>,
}

fn respond(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

/// `POST /slave(n)/api/v1`.
pub(crate) async fn operator_api(
    State(shared): State<Arc<Shared>>,
    UrlPath(process): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(agents) = shared.agents.as_ref() else {
        return respond(StatusCode::NOT_FOUND, "");
    };
    let Some(agent) = agent_number(&process).and_then(|n| agent_id(&shared.sim, n)) else {
        return respond(
            StatusCode::NOT_FOUND,
            format!("No process {process} on this agent"),
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/recordio") {
        return attach_input(agents, &agent, body).await;
    }
    if !content_type.starts_with("application/json") {
        return respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expecting 'Content-Type' of application/json or application/recordio",
        );
    }
    let bytes = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => b,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                format!("Failed to read the body: {e}"),
            );
        }
    };
    let call: AgentCall = match serde_json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into Call: {e}"),
            );
        }
    };
    match call.kind.as_str() {
        "LAUNCH_NESTED_CONTAINER_SESSION" => match call.launch_nested_container_session {
            Some(launch) => launch_session(&shared, agents, &agent, &headers, launch),
            None => respond(
                StatusCode::BAD_REQUEST,
                "Expecting 'launch_nested_container_session' to be present",
            ),
        },
        "WAIT_NESTED_CONTAINER" => match call.wait_nested_container {
            Some(wait) => wait_nested(agents, &agent, &wait.container_id.value).await,
            None => respond(
                StatusCode::BAD_REQUEST,
                "Expecting 'wait_nested_container' to be present",
            ),
        },
        "ATTACH_CONTAINER_INPUT" => respond(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ATTACH_CONTAINER_INPUT is a stream: send it with 'Content-Type: application/recordio'",
        ),
        other => respond(
            StatusCode::BAD_REQUEST,
            format!("The call {other} is not supported by the double"),
        ),
    }
}

/// Whether the `Accept` header allows a RecordIO answer (absent: yes).
fn accepts_recordio(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("application/recordio") || v.contains("*/*"))
}

fn launch_session(
    shared: &Arc<Shared>,
    agents: &Agents,
    agent: &str,
    headers: &HeaderMap,
    launch: LaunchSession,
) -> Response {
    if !accepts_recordio(headers) {
        return respond(
            StatusCode::NOT_ACCEPTABLE,
            "LAUNCH_NESTED_CONTAINER_SESSION answers a stream: expecting 'Accept: application/recordio'",
        );
    }
    let id = launch.container_id.value.clone();
    if id.is_empty() {
        return respond(StatusCode::BAD_REQUEST, "Expecting 'container_id.value'");
    }
    let Some(parent) = &launch.container_id.parent else {
        return respond(
            StatusCode::BAD_REQUEST,
            "Expecting 'container_id.parent': a session runs nested in a task's container",
        );
    };
    let task = match agents.task_container(&shared.sim, agent, &parent.value) {
        Ok(t) => t,
        Err((status, text)) => return respond(status, text),
    };
    if agents.sessions.contains(&id) {
        return respond(
            StatusCode::BAD_REQUEST,
            format!("Container {id} already exists"),
        );
    }
    let Some(command) = launch.command.filter(|c| c.value.is_some()) else {
        return respond(StatusCode::BAD_REQUEST, "Expecting 'command.value'");
    };
    let tty = launch
        .container
        .and_then(|c| c.tty_info)
        .map(|t| t.window_size.map(|w| w.get()));
    let spawned = match spawn(&command, &task.sandbox, tty) {
        Ok(s) => s,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                format!("Failed to launch container {id}: {e}"),
            );
        }
    };
    let (input, input_rx) = mpsc::unbounded_channel();
    let (exit_tx, exit) = watch::channel(None);
    let group = spawned.child.id().and_then(|p| i32::try_from(p).ok());
    agents.sessions.lock().by_id.insert(
        id.clone(),
        Arc::new(Session {
            agent: agent.to_owned(),
            input,
            exit,
            group,
        }),
    );
    let (records, records_rx) = mpsc::channel(64);
    let (guard, gone) = oneshot::channel();
    tokio::spawn(supervise(
        Arc::clone(shared),
        id,
        spawned,
        input_rx,
        records,
        exit_tx,
        gone,
    ));
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let output = OutputStream {
        records: records_rx,
        heartbeat,
        guard: Some(guard),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/recordio")
        .header("Message-Content-Type", "application/json")
        .body(Body::from_stream(output.into_stream()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A session's output as the response body; dropping it before the output ended (the
/// connection broke) tells the supervisor to kill the process.
struct OutputStream {
    records: mpsc::Receiver<Bytes>,
    heartbeat: tokio::time::Interval,
    guard: Option<oneshot::Sender<()>>,
}

impl OutputStream {
    fn into_stream(self) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut o| async move {
            tokio::select! {
                biased;
                r = o.records.recv() => match r {
                    Some(b) => Some((Ok(b), o)),
                    None => {
                        // Every output stream closed: the end, not a broken connection.
                        if let Some(guard) = o.guard.take() {
                            let _ = guard.send(());
                        }
                        None
                    }
                },
                _ = o.heartbeat.tick() => Some((Ok(heartbeat_record()), o)),
            }
        })
    }
}

fn heartbeat_record() -> Bytes {
    let nanos = u64::try_from(HEARTBEAT.as_nanos()).unwrap_or(u64::MAX);
    let v = json!({"type": "CONTROL", "control": {"type": "HEARTBEAT",
        "heartbeat": {"interval": {"nanoseconds": nanos}}}});
    Bytes::from(recordio::encode(v.to_string().as_bytes()))
}

fn data_record(kind: &str, bytes: &[u8]) -> Bytes {
    let v = json!({"type": "DATA", "data": {"type": kind,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes)}});
    Bytes::from(recordio::encode(v.to_string().as_bytes()))
}

/// The master side of a session's pseudo-terminal (non-blocking).
type Pty = Arc<AsyncFd<std::fs::File>>;

/// A running session process and its streams.
struct Spawned {
    child: tokio::process::Child,
    stdin: Stdin,
    stdout: Source,
    stderr: Option<Source>,
}

enum Stdin {
    Pipe(Option<tokio::process::ChildStdin>),
    Pty(Pty),
}

enum Source {
    Pipe(Box<dyn AsyncRead + Send + Unpin>),
    Pty(Pty),
}

impl Source {
    /// Reads some bytes; 0 at the end (a terminal whose every slave side closed).
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Pipe(r) => r.read(buf).await,
            Source::Pty(fd) => loop {
                let mut guard = fd.readable().await?;
                match guard.try_io(|f| f.get_ref().read(buf)) {
                    Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                    Ok(r) => return r,
                    Err(_would_block) => {}
                }
            },
        }
    }
}

async fn pty_write_all(fd: &Pty, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut guard = fd.writable().await?;
        match guard.try_io(|f| f.get_ref().write(data)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

fn winsize(rows: u16, columns: u16) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

fn set_window_size(fd: &Pty, rows: u16, columns: u16) {
    let size = winsize(rows, columns);
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, valid during the call.
    unsafe {
        nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ, &raw const size);
    }
}

fn set_cloexec(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// Starts the command in `dir`; `tty`: on a pseudo-terminal (of that size, when given).
fn spawn(
    command: &CommandIn,
    dir: &Path,
    tty: Option<Option<(u16, u16)>>,
) -> std::io::Result<Spawned> {
    let value = command.value.clone().unwrap_or_default();
    let mut cmd = if command.shell {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(&value);
        c
    } else {
        let mut c = tokio::process::Command::new(&value);
        if let Some((argv0, rest)) = command.arguments.split_first() {
            c.arg0(argv0).args(rest);
        }
        c
    };
    let variables = command
        .environment
        .as_ref()
        .map(|e| e.variables.as_slice())
        .unwrap_or_default();
    cmd.env_clear();
    if !variables.iter().any(|v| v.name == "PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    cmd.envs(variables.iter().map(|v| (&v.name, &v.value)))
        .env("MESOS_SANDBOX", dir)
        .current_dir(dir)
        .kill_on_drop(true);
    let Some(size) = tty else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(std::io::Error::other(
                "the process' streams could not be opened",
            ));
        };
        return Ok(Spawned {
            child,
            stdin: Stdin::Pipe(Some(stdin)),
            stdout: Source::Pipe(Box::new(stdout)),
            stderr: Some(Source::Pipe(Box::new(stderr))),
        });
    };
    let size = size.map(|(rows, columns)| winsize(rows, columns));
    let pty = nix::pty::openpty(size.as_ref(), None)?;
    // Other processes started meanwhile must not keep the terminal open.
    set_cloexec(&pty.master)?;
    set_cloexec(&pty.slave)?;
    set_nonblocking(&pty.master)?;
    cmd.stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave));
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
    let child = cmd.spawn()?;
    // The parent's copies of the slave side close with `cmd`.
    drop(cmd);
    // SAFETY: the File owns the master's descriptor, which stays open and the same until the
    // AsyncFd (which owns the File) is dropped.
    let master: Pty = Arc::new(unsafe { AsyncFd::register(std::fs::File::from(pty.master)) }?);
    Ok(Spawned {
        child,
        stdin: Stdin::Pty(Arc::clone(&master)),
        stdout: Source::Pty(master),
        stderr: None,
    })
}

/// Feeds ATTACH_CONTAINER_INPUT's input to the process.
async fn feed_input(mut inputs: mpsc::UnboundedReceiver<Input>, mut stdin: Stdin) {
    while let Some(input) = inputs.recv().await {
        match (&mut stdin, input) {
            (Stdin::Pipe(pipe), Input::Data(data)) => {
                if let Some(p) = pipe
                    && (p.write_all(&data).await.is_err() || p.flush().await.is_err())
                {
                    *pipe = None;
                }
            }
            (Stdin::Pipe(pipe), Input::Eof) => *pipe = None,
            (Stdin::Pipe(_), Input::Resize(..)) => {}
            (Stdin::Pty(fd), Input::Data(data)) => {
                let _ = pty_write_all(fd, &data).await;
            }
            // What a terminal's user types to end the input.
            (Stdin::Pty(fd), Input::Eof) => {
                let _ = pty_write_all(fd, &[0x04]).await;
            }
            (Stdin::Pty(fd), Input::Resize(rows, columns)) => set_window_size(fd, rows, columns),
        }
    }
}

/// Copies a process stream into DATA records.
async fn pump(mut from: Source, kind: &'static str, records: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if records.send(data_record(kind, &buf[..n])).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Runs one session: input in, output out, the exit status kept; kills the process when
/// the output's connection breaks first.
async fn supervise(
    shared: Arc<Shared>,
    id: String,
    spawned: Spawned,
    inputs: mpsc::UnboundedReceiver<Input>,
    records: mpsc::Sender<Bytes>,
    exit: watch::Sender<Option<i32>>,
    mut gone: oneshot::Receiver<()>,
) {
    let Spawned {
        mut child,
        stdin,
        stdout,
        stderr,
    } = spawned;
    let group = child.id().and_then(|p| i32::try_from(p).ok());
    let input = tokio::spawn(feed_input(inputs, stdin));
    let mut pumps = vec![tokio::spawn(pump(stdout, "STDOUT", records.clone()))];
    if let Some(stderr) = stderr {
        pumps.push(tokio::spawn(pump(stderr, "STDERR", records.clone())));
    }
    drop(records);
    let status = tokio::select! {
        status = child.wait() => status,
        // Dropped without a word: the connection broke. (An output that ended says so: the
        // process closed it and may still be finishing — coreutils close stdout at exit.)
        Err(_) = &mut gone => {
            tracing::debug!("double: session {id} lost its connection; killing it");
            kill_group(group);
            child.wait().await
        }
    };
    // The session's container is destroyed with its main process.
    kill_group(group);
    let status = status.map_or(nix::libc::SIGKILL, std::process::ExitStatus::into_raw);
    exit.send_replace(Some(status));
    let aborts: Vec<_> = pumps
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let drained = async {
        for p in pumps {
            let _ = p.await;
        }
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        for a in aborts {
            a.abort();
        }
    }
    input.abort();
    if let Some(agents) = &shared.agents {
        agents.sessions.finished(&id);
    }
}

async fn wait_nested(agents: &Agents, agent: &str, id: &str) -> Response {
    let Some(session) = agents.sessions.get(agent, id) else {
        return respond(
            StatusCode::NOT_FOUND,
            format!("Container {id} cannot be found"),
        );
    };
    let mut exit = session.exit.clone();
    drop(session);
    let status = exit.wait_for(Option::is_some).await.ok().and_then(|s| *s);
    let Some(status) = status else {
        return respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Container {id} was lost"),
        );
    };
    axum::Json(json!({
        "type": "WAIT_NESTED_CONTAINER",
        "wait_nested_container": {"exit_status": status},
    }))
    .into_response()
}

/// Applies one ATTACH_CONTAINER_INPUT record; the session is found by the first.
fn attach_record(
    agents: &Agents,
    agent: &str,
    session: &mut Option<Arc<Session>>,
    record: &[u8],
) -> Result<(), (StatusCode, String)> {
    let bad = |text: String| (StatusCode::BAD_REQUEST, text);
    let call: AgentCall = serde_json::from_slice(record)
        .map_err(|e| bad(format!("Failed to parse the record into Call: {e}")))?;
    let Some(attach) = call
        .attach_container_input
        .filter(|_| call.kind == "ATTACH_CONTAINER_INPUT")
    else {
        return Err(bad(
            "Expecting every record to be an ATTACH_CONTAINER_INPUT call".to_owned(),
        ));
    };
    let Some(s) = session else {
        let Some(id) = attach
            .container_id
            .filter(|_| attach.kind == "CONTAINER_ID")
        else {
            return Err(bad(
                "Expecting the first record to be of type CONTAINER_ID, with 'container_id'"
                    .to_owned(),
            ));
        };
        *session = Some(agents.sessions.get(agent, &id.value).ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("Container {} cannot be found", id.value),
            )
        })?);
        return Ok(());
    };
    let Some(io) = attach.process_io.filter(|_| attach.kind == "PROCESS_IO") else {
        return Err(bad(
            "Expecting the records after the first to be of type PROCESS_IO, with 'process_io'"
                .to_owned(),
        ));
    };
    let input = match (io.kind.as_str(), io.data, io.control) {
        ("DATA", Some(data), _) => {
            if data.kind != "STDIN" {
                return Err(bad(format!("Expecting STDIN data, not {}", data.kind)));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.data.as_bytes())
                .map_err(|e| bad(format!("The data is not base64: {e}")))?;
            if bytes.is_empty() {
                Input::Eof
            } else {
                Input::Data(bytes)
            }
        }
        ("CONTROL", _, Some(control)) => match (control.kind.as_str(), control.tty_info) {
            (
                "TTY_INFO",
                Some(TtyInfo {
                    window_size: Some(w),
                }),
            ) => {
                let (rows, columns) = w.get();
                Input::Resize(rows, columns)
            }
            ("HEARTBEAT", _) => return Ok(()),
            (kind, _) => return Err(bad(format!("Unexpected control message {kind}"))),
        },
        (kind, _, _) => return Err(bad(format!("Unexpected ProcessIO message {kind}"))),
    };
    // A process that exited takes no more input.
    let _ = s.input.send(input);
    Ok(())
}

/// `ATTACH_CONTAINER_INPUT`: reads the streamed records as they come.
async fn attach_input(agents: &Agents, agent: &str, body: Body) -> Response {
    let mut chunks = body.into_data_stream();
    let mut decoder = recordio::Decoder::new();
    let mut session = None;
    loop {
        while let Some(record) = decoder.next_record() {
            if let Err(refusal) = attach_record(agents, agent, &mut session, &record) {
                return refusal.into_response();
            }
        }
        match chunks.next().await {
            Some(Ok(bytes)) => {
                if let Err(e) = decoder.feed(&bytes) {
                    return respond(StatusCode::BAD_REQUEST, e.to_string());
                }
            }
            Some(Err(e)) => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    format!("The input stream broke: {e}"),
                );
            }
            None => break,
        }
    }
    if session.is_none() {
        return respond(
            StatusCode::BAD_REQUEST,
            "Expecting a CONTAINER_ID record first",
        );
    }
    StatusCode::OK.into_response()
}
