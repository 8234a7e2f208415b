//! One thread per executor process: connects to its socket (again and again, as long as the
//! process lives), feeds its messages to the core, and reports its death.

use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, error, warn};

use super::core::{Inner, LinkKey};
use super::fsutil::{self, read_json};
use super::wire::{ExecutorMessage, PID_FILE, PidFile, SOCKET_FILE};
use super::with_core;

/// Starts the link thread of `key`.
pub(crate) fn start(inner: &Arc<Inner>, key: LinkKey) {
    let i = inner.clone();
    let name = format!("berth-link-{}", key.executor);
    match thread::Builder::new()
        .name(name)
        .spawn(move || run(&i, key))
    {
        Ok(h) => {
            let mut ts = inner
                .threads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ts.retain(|h| !h.is_finished());
            ts.push(h);
        }
        Err(e) => error!(error = %e, "cannot start an executor link thread"),
    }
}

fn closed(inner: &Inner) -> bool {
    inner.closed.load(Ordering::SeqCst)
}

fn exit_status(inner: &Inner, pid: i32) -> Option<i32> {
    inner
        .exits
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&pid)
        .copied()
}

/// Whether the executor lives; when not, its wait status if this process reaped it.
fn alive(inner: &Inner, key: &LinkKey, pid: i32) -> (bool, Option<i32>) {
    if let Some(s) = exit_status(inner, pid) {
        return (false, Some(s));
    }
    if fsutil::pid_alive(pid, key.start_time) {
        return (true, None);
    }
    // A child of ours may be a zombie its waiter thread has not reaped yet.
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(10));
        if let Some(s) = exit_status(inner, pid) {
            return (false, Some(s));
        }
    }
    (false, None)
}

fn run(inner: &Arc<Inner>, mut key: LinkKey) {
    let sock = key.dir.join(SOCKET_FILE);
    let mut delay = Duration::from_millis(20);
    loop {
        if closed(inner) {
            return;
        }
        let Some(pid) = key.pid else {
            // Recorded but maybe never spawned (berth run died in between): wait for the
            // pid file a little, then start it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !closed(inner) {
                if let Ok(Some(pf)) = read_json::<PidFile>(&key.dir.join(PID_FILE))
                    && pf.run == key.run
                    && fsutil::pid_alive(pf.pid, None)
                {
                    key.pid = Some(pf.pid);
                    key.start_time = fsutil::proc_stat(pf.pid).map(|s| s.start_time);
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            if key.pid.is_none() {
                match with_core(inner, |c| c.respawn(&key)) {
                    Some(k) => key = k,
                    None => return,
                }
            }
            continue;
        };
        let (ok, status) = alive(inner, &key, pid);
        if !ok {
            with_core(inner, |c| c.on_exit(&key, status));
            return;
        }
        match fsutil::unix_connect(&sock) {
            Ok(stream) => {
                delay = Duration::from_millis(20);
                serve(inner, &key, stream);
            }
            Err(e) => {
                debug!(executor = key.executor, error = %e, "executor socket not ready");
                thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(250));
            }
        }
        if !with_core(inner, |c| c.link_wanted(&key)) {
            return;
        }
    }
}

fn serve(inner: &Arc<Inner>, key: &LinkKey, stream: UnixStream) {
    if stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return;
    }
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    if !with_core(inner, |c| c.on_connected(key, writer)) {
        return;
    }
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {
                if !buf.ends_with(b"\n") {
                    continue;
                }
                match serde_json::from_slice::<ExecutorMessage>(&buf) {
                    Ok(msg) => with_core(inner, |c| c.on_message(key, msg)),
                    Err(e) => warn!(
                        executor = key.executor,
                        error = %e,
                        "unreadable message from executor ignored"
                    ),
                }
                buf.clear();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if closed(inner) {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    with_core(inner, |c| c.on_disconnected(key));
}
