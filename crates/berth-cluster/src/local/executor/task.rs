//! One task's life inside the executor: sandbox, volumes, fetch, templates, process, checks,
//! kill.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_mesos::{CheckInfo, CommandInfo, HealthCheck, TaskInfo, TaskState};
use indexmap::IndexMap;

use crate::local::template::render_config_templates;
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{Ev, KillReq, Shared, fetch, lock, record_pgid, report, sandbox_of, secs};
use crate::local::fsutil::{self, open_append, signal_group};
use crate::local::wire::LaunchFile;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who the task's processes run as.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    uid: Uid,
    gid: Gid,
    name: String,
    home: PathBuf,
}

enum Outcome {
    Exited(ExitStatus),
    Killed(ExitStatus, bool),
    LaunchFailed(String),
    KilledBeforeStart,
}

/// Appends an executor line to the task's `stderr`.
pub(crate) fn tlog(sandbox: &Path, msg: &str) {
    if let Ok(mut f) = open_append(&sandbox.join("stderr")) {
        let _ = writeln!(f, "[berth-executor {:.3}] {msg}", fsutil::now_secs());
    }
}

/// The task's last line on stderr (not the executor's own), shortened: what a failure
/// message quotes so that an operator sees why without opening the sandbox.
fn last_error_line(sandbox: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(sandbox.join("stderr")).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("[berth-executor"))?;
    let mut short: String = line.chars().take(200).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    Some(short)
}

fn describe_exit(st: ExitStatus) -> String {
    if let Some(code) = st.code() {
        format!("exited with status {code}")
    } else if let Some(sig) = st.signal() {
        let name = Signal::try_from(sig).map_or_else(|_| String::new(), |s| format!(" ({s})"));
        format!("was terminated by signal {sig}{name}")
    } else {
        format!("ended ({st})")
    }
}

/// Runs a task from STARTING to its terminal status.
pub(super) async fn supervise(
    sh: Shared,
    info: TaskInfo,
    mut kill_rx: mpsc::UnboundedReceiver<KillReq>,
    ev_tx: mpsc::UnboundedSender<Ev>,
) {
    let tid = info.task_id.value.clone();
    report(&sh, &tid, TaskState::TaskStarting, "starting", None);
    let (dir, launch) = {
        let ex = lock(&sh);
        (ex.dir.clone(), ex.launch.clone())
    };
    let sandbox = sandbox_of(&dir, &tid);
    let outcome = run_task(&sh, &info, &launch, &sandbox, &mut kill_rx).await;
    match outcome {
        Outcome::Exited(st) if st.success() => {
            tlog(&sandbox, "command exited with status 0");
            report(
                &sh,
                &tid,
                TaskState::TaskFinished,
                "command exited with status 0",
                None,
            );
        }
        Outcome::Exited(st) => {
            let mut m = format!("command {}", describe_exit(st));
            tlog(&sandbox, &m);
            if let Some(line) = last_error_line(&sandbox) {
                m.push_str(&format!("; last stderr line: {line}"));
            }
            report(
                &sh,
                &tid,
                TaskState::TaskFailed,
                m,
                Some("REASON_COMMAND_EXECUTOR_FAILED"),
            );
        }
        Outcome::Killed(st, true) => {
            tlog(
                &sandbox,
                &format!(
                    "killed after failed health checks; command {}",
                    describe_exit(st)
                ),
            );
            if let Some(c) = lock(&sh).tasks.get_mut(&tid) {
                c.healthy = Some(false);
            }
            report(
                &sh,
                &tid,
                TaskState::TaskFailed,
                "health check failed",
                Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
            );
        }
        Outcome::Killed(st, false) => {
            let m = format!("killed on request; command {}", describe_exit(st));
            tlog(&sandbox, &m);
            report(&sh, &tid, TaskState::TaskKilled, m, None);
        }
        Outcome::LaunchFailed(m) => {
            tlog(&sandbox, &m);
            report(
                &sh,
                &tid,
                TaskState::TaskFailed,
                m,
                Some("REASON_CONTAINER_LAUNCH_FAILED"),
            );
        }
        Outcome::KilledBeforeStart => {
            report(
                &sh,
                &tid,
                TaskState::TaskKilled,
                "killed before it started",
                None,
            );
        }
    }
    let _ = ev_tx.send(Ev::TaskDone);
}

fn grace_of(req: KillReq, info: &TaskInfo, launch: &LaunchFile) -> Duration {
    req.grace
        .or_else(|| {
            info.kill_policy
                .and_then(|k| k.grace_period)
                .map(|g| Duration::from_nanos(u64::try_from(g.nanoseconds).unwrap_or(0)))
        })
        .unwrap_or(Duration::from_millis(launch.default_kill_grace_ms))
}

async fn run_task(
    sh: &Shared,
    info: &TaskInfo,
    launch: &LaunchFile,
    sandbox: &Path,
    kill_rx: &mut mpsc::UnboundedReceiver<KillReq>,
) -> Outcome {
    if let Err(e) = std::fs::create_dir_all(sandbox) {
        return Outcome::LaunchFailed(format!(
            "cannot create the sandbox {}: {e}",
            sandbox.display()
        ));
    }
    let (out, err) = match (
        open_append(&sandbox.join("stdout")),
        open_append(&sandbox.join("stderr")),
    ) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            return Outcome::LaunchFailed(format!("cannot create the task's log files: {e}"));
        }
    };
    let volumes = match link_volumes(info, launch, sandbox) {
        Ok(v) => v,
        Err(m) => return Outcome::LaunchFailed(m),
    };
    let run_as = resolve_user(info, launch, sandbox);
    let env = task_env(launch, info, sandbox, run_as.as_ref());
    let uris = info
        .command
        .as_ref()
        .map(|c| c.uris.clone())
        .unwrap_or_default();
    if !uris.is_empty() {
        tokio::select! {
            r = fetch::fetch_all(&uris, sandbox) => {
                if let Err(m) = r {
                    return Outcome::LaunchFailed(m);
                }
            }
            Some(_) = kill_rx.recv() => return Outcome::KilledBeforeStart,
        }
    }
    if let Err(m) = render_config_templates(&env, sandbox, &mut |line| tlog(sandbox, line)) {
        return Outcome::LaunchFailed(m);
    }
    if let Some(u) = &run_as {
        chown_tree(sandbox, u);
        for v in &volumes {
            let _ = nix::unistd::chown(v, Some(u.uid), Some(u.gid));
        }
    }
    let cmd_text = info
        .command
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_default();
    let mut cmd = Command::new(shell());
    cmd.arg("-c")
        .arg(&cmd_text)
        .env_clear()
        .envs(&env)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    if let Some(u) = &run_as {
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::LaunchFailed(format!("cannot start `sh -c`: {e}")),
    };
    let Some(pgid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return Outcome::LaunchFailed("the command exited before it could be tracked".to_owned());
    };
    let tid = info.task_id.value.clone();
    record_pgid(sh, &tid, pgid);
    tlog(
        sandbox,
        &format!(
            "started `{cmd_text}` as pid {pgid}{}",
            run_as
                .as_ref()
                .map(|u| format!(" (user {})", u.name))
                .unwrap_or_default()
        ),
    );
    report(sh, &tid, TaskState::TaskRunning, "running", None);
    let started = Instant::now();
    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<()>();
    let health = info.health_check.clone().map(|hc| {
        tokio::spawn(health_loop(
            sh.clone(),
            tid.clone(),
            hc,
            env.clone(),
            sandbox.to_path_buf(),
            run_as.clone(),
            started,
            health_tx.clone(),
        ))
    });
    let readiness = info.check.clone().map(|c| {
        tokio::spawn(readiness_loop(
            sh.clone(),
            tid.clone(),
            c,
            env.clone(),
            sandbox.to_path_buf(),
            run_as.clone(),
        ))
    });
    let outcome = tokio::select! {
        st = child.wait() => match st {
            Ok(st) => Outcome::Exited(st),
            Err(e) => Outcome::LaunchFailed(format!("cannot wait for the command: {e}")),
        },
        Some(req) = kill_rx.recv() => {
            let grace = grace_of(req, info, launch);
            tlog(sandbox, &format!("kill requested: SIGTERM, SIGKILL after {:.1}s", grace.as_secs_f64()));
            Outcome::Killed(kill_sequence(&mut child, pgid, grace).await, false)
        }
        Some(()) = health_rx.recv() => {
            let grace = grace_of(KillReq { grace: None }, info, launch);
            tlog(sandbox, "health check failed too often: killing the task");
            Outcome::Killed(kill_sequence(&mut child, pgid, grace).await, true)
        }
    };
    for h in [health, readiness].into_iter().flatten() {
        h.abort();
    }
    // Whatever the command left behind in its process group goes with it.
    signal_group(pgid, Signal::SIGKILL);
    outcome
}

async fn kill_sequence(child: &mut Child, pgid: i32, grace: Duration) -> ExitStatus {
    signal_group(pgid, Signal::SIGTERM);
    if let Ok(Ok(st)) = tokio::time::timeout(grace, child.wait()).await {
        return st;
    }
    signal_group(pgid, Signal::SIGKILL);
    child
        .wait()
        .await
        .unwrap_or_else(|_| ExitStatus::from_raw(9))
}

/// Symlinks every persistent volume of the task and the executor into the sandbox; returns
/// the volumes' host directories.
fn link_volumes(
    info: &TaskInfo,
    launch: &LaunchFile,
    sandbox: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut hosts = Vec::new();
    for r in info
        .resources
        .iter()
        .chain(launch.executor.resources.iter())
    {
        let (Some(pid), Some(vol)) = (
            r.persistence_id(),
            r.disk.as_ref().and_then(|d| d.volume.as_ref()),
        ) else {
            continue;
        };
        let host = launch
            .volumes
            .get(pid)
            .ok_or_else(|| format!("volume `{pid}` has no directory on this agent"))?;
        std::fs::create_dir_all(host)
            .map_err(|e| format!("cannot create volume directory {}: {e}", host.display()))?;
        let rel = vol.container_path.trim_start_matches('/');
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            return Err(format!(
                "volume `{pid}` has an invalid container_path `{}`",
                vol.container_path
            ));
        }
        let link = sandbox.join(rel);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        if std::fs::symlink_metadata(&link).is_ok() {
            let _ = std::fs::remove_file(&link);
        }
        std::os::unix::fs::symlink(host, &link)
            .map_err(|e| format!("cannot link volume `{pid}` at {}: {e}", link.display()))?;
        hosts.push(host.clone());
    }
    Ok(hosts)
}

fn resolve_user(info: &TaskInfo, launch: &LaunchFile, sandbox: &Path) -> Option<RunAs> {
    let name = info
        .command
        .as_ref()
        .and_then(|c| c.user.clone())
        .or_else(|| launch.default_user.clone())?;
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name(&name) {
        Ok(Some(u)) if u.uid.is_root() => None,
        Ok(Some(u)) => Some(RunAs {
            uid: u.uid,
            gid: u.gid,
            name,
            home: u.dir,
        }),
        _ => {
            tlog(
                sandbox,
                &format!("user `{name}` does not exist here; running as root"),
            );
            None
        }
    }
}

fn chown_tree(path: &Path, u: &RunAs) {
    let _ = nix::unistd::chown(path, Some(u.uid), Some(u.gid));
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => chown_tree(&p, u),
                Ok(t) if t.is_symlink() => {
                    let _ = nix::unistd::fchownat(
                        nix::fcntl::AT_FDCWD,
                        &p,
                        Some(u.uid),
                        Some(u.gid),
                        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                    );
                }
                Ok(_) => {
                    let _ = nix::unistd::chown(&p, Some(u.uid), Some(u.gid));
                }
                Err(_) => {}
            }
        }
    }
}

/// Where and how a command runs inside a task (`berth task exec`): the task's environment,
/// and the user it runs as (`None`: this process's).
pub(crate) fn exec_environment(
    launch: &LaunchFile,
    info: &TaskInfo,
    sandbox: &Path,
) -> (IndexMap<String, String>, Option<(u32, u32)>) {
    let run_as = resolve_user(info, launch, sandbox);
    let env = task_env(launch, info, sandbox, run_as.as_ref());
    (env, run_as.map(|u| (u.uid.as_raw(), u.gid.as_raw())))
}

/// The task's environment (see the module doc).
fn task_env(
    launch: &LaunchFile,
    info: &TaskInfo,
    sandbox: &Path,
    run_as: Option<&RunAs>,
) -> IndexMap<String, String> {
    let mut env = IndexMap::new();
    env.insert(
        "PATH".to_owned(),
        std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()),
    );
    for k in ["LANG", "LC_ALL", "TZ"] {
        if let Ok(v) = std::env::var(k) {
            env.insert(k.to_owned(), v);
        }
    }
    match run_as {
        Some(u) => {
            env.insert("HOME".to_owned(), u.home.display().to_string());
            env.insert("USER".to_owned(), u.name.clone());
        }
        None => {
            if let Ok(v) = std::env::var("HOME") {
                env.insert("HOME".to_owned(), v);
            }
        }
    }
    if let Some(e) = info.command.as_ref().and_then(|c| c.environment.as_ref()) {
        for v in &e.variables {
            env.insert(v.name.to_string(), v.value.to_string());
        }
    }
    env.insert("MESOS_SANDBOX".to_owned(), sandbox.display().to_string());
    env.insert("MESOS_TASK_ID".to_owned(), info.task_id.value.clone());
    env.insert(
        "MESOS_EXECUTOR_ID".to_owned(),
        launch.executor.executor_id.value.clone(),
    );
    env.insert("MESOS_AGENT_ID".to_owned(), launch.agent_id.value.clone());
    env.insert(
        "MESOS_FRAMEWORK_ID".to_owned(),
        launch.framework_id.value.clone(),
    );
    env.insert("MESOS_CONTAINER_IP".to_owned(), "127.0.0.1".to_owned());
    env
}

/// The shell commands run in: bash when the machine has it — service specs are written for
/// agents whose `/bin/sh` is bash (e.g. `trap … SIGTERM`, which dash refuses) — else `sh`.
fn shell() -> &'static str {
    static SHELL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    SHELL.get_or_init(|| {
        if Path::new("/bin/bash").exists() {
            "/bin/bash"
        } else {
            "sh"
        }
    })
}

/// Runs a check command; `None` when it timed out or could not start.
async fn run_check(
    cmd: &CommandInfo,
    env: &IndexMap<String, String>,
    sandbox: &Path,
    run_as: Option<&RunAs>,
    timeout: Duration,
) -> Option<i32> {
    let mut c = Command::new(shell());
    c.arg("-c")
        .arg(&cmd.value)
        .env_clear()
        .envs(env)
        .current_dir(sandbox)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(e) = &cmd.environment {
        for v in &e.variables {
            c.env(&v.name, &v.value);
        }
    }
    if let Some(u) = run_as {
        c.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    let mut child = c.spawn().ok()?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let limit = if timeout.is_zero() {
        Duration::from_secs(20)
    } else {
        timeout
    };
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(st)) => Some(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))),
        Ok(Err(_)) => None,
        Err(_) => {
            if let Some(pg) = pgid {
                signal_group(pg, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn health_loop(
    sh: Shared,
    tid: String,
    hc: Arc<HealthCheck>,
    env: IndexMap<String, String>,
    sandbox: PathBuf,
    run_as: Option<RunAs>,
    started: Instant,
    fail_tx: mpsc::UnboundedSender<()>,
) {
    tokio::time::sleep(secs(hc.delay_seconds).unwrap_or_default()).await;
    let interval = secs(hc.interval_seconds)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(50));
    let timeout = secs(hc.timeout_seconds).unwrap_or_default();
    let grace = secs(hc.grace_period_seconds).unwrap_or_default();
    let max = hc.consecutive_failures.max(1);
    let mut failures = 0u32;
    let mut ever_ok = false;
    loop {
        let code = run_check(&hc.command, &env, &sandbox, run_as.as_ref(), timeout).await;
        let healthy_before = lock(&sh).tasks.get(&tid).and_then(|c| c.healthy);
        if code == Some(0) {
            failures = 0;
            ever_ok = true;
            if healthy_before != Some(true) {
                if let Some(c) = lock(&sh).tasks.get_mut(&tid) {
                    c.healthy = Some(true);
                }
                report(
                    &sh,
                    &tid,
                    TaskState::TaskRunning,
                    "health check passed",
                    Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
                );
            }
        } else if ever_ok || started.elapsed() >= grace {
            failures += 1;
            let what = code.map_or_else(|| "timed out".to_owned(), |c| format!("exited with {c}"));
            tlog(&sandbox, &format!("health check {what} ({failures}/{max})"));
            if failures >= max {
                let _ = fail_tx.send(());
                return;
            }
            if healthy_before != Some(false) {
                if let Some(c) = lock(&sh).tasks.get_mut(&tid) {
                    c.healthy = Some(false);
                }
                report(
                    &sh,
                    &tid,
                    TaskState::TaskRunning,
                    format!("health check {what}"),
                    Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
                );
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn readiness_loop(
    sh: Shared,
    tid: String,
    check: Arc<CheckInfo>,
    env: IndexMap<String, String>,
    sandbox: PathBuf,
    run_as: Option<RunAs>,
) {
    tokio::time::sleep(secs(check.delay_seconds).unwrap_or_default()).await;
    let interval = secs(check.interval_seconds)
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(50));
    let timeout = secs(check.timeout_seconds).unwrap_or_default();
    let mut last: Option<Option<i32>> = None;
    loop {
        let code = run_check(
            &check.command.command,
            &env,
            &sandbox,
            run_as.as_ref(),
            timeout,
        )
        .await;
        if last != Some(code) {
            last = Some(code);
            if let Some(c) = lock(&sh).tasks.get_mut(&tid) {
                c.check = Some(code);
            }
            let what = code.map_or_else(|| "timed out".to_owned(), |c| format!("exit code {c}"));
            report(
                &sh,
                &tid,
                TaskState::TaskRunning,
                format!("readiness check: {what}"),
                Some("REASON_TASK_CHECK_STATUS_UPDATED"),
            );
        }
        tokio::time::sleep(interval).await;
    }
}
