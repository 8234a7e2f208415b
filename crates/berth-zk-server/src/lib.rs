//! Private ZooKeeper servers for berth's tests and benchmarks.
//!
//! berth's ZooKeeper backend (`berth_state::zk`) is tested against a real ZooKeeper, not a
//! mock: sessions, ephemeral nodes, `multi` limits and fsync'ed acknowledgements are exactly
//! what must be exercised. This crate starts one standalone server per [`ZkServer`] from the
//! jars of Debian's `zookeeper` package (install them with `scripts/install-zookeeper`), each
//! with its own temporary data directory and a free loopback port, so tests can run in
//! parallel and stop, restart or lose their server without touching anyone else's.
//!
//! # Flow
//!
//! ```text
//!  ZkServer::start()
//!    check java + jars ──▶ temp dir (zoo.cfg, data/, zookeeper.log)
//!    pick a free 127.0.0.1 port ──▶ spawn java ZooKeeperServerMain zoo.cfg
//!    poll "ruok" until "imok" and check that *our* process listens on the port
//!       (port taken by someone else? pick another port and try again)
//!  ─▶ connect_string() "127.0.0.1:PORT"
//!
//!  stop()          SIGKILL by pid, wait          (a crash: acknowledged data is on disk)
//!  start_again()   same port, same data dir      ("ZooKeeper went down and came back")
//!  drop            SIGKILL by pid, wait, remove the temp dir
//! ```
//!
//! A watchdog shell process per server kills it (and removes its directory) if the owning
//! process exits without dropping the [`ZkServer`] — e.g. a server shared by a whole test
//! binary through a `static`, which is never dropped.
//!
//! # Example
//!
//! ```no_run
//! let server = berth_zk_server::ZkServer::start()?;
//! println!("ZooKeeper at {}", server.connect_string());
//! # Ok::<(), berth_zk_server::Error>(())
//! ```

#![warn(missing_docs)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ZooKeeper jar of Debian's `zookeeper` package.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// The SLF4J binding that makes ZooKeeper write its log.
pub const SLF4J_SIMPLE_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// The configuration directory of Debian's package (log4j/logback settings).
pub const ZOOKEEPER_CONF_DIR: &str = "/etc/zookeeper/conf";

/// How often a start is retried with another port when the chosen one was taken.
const PORT_ATTEMPTS: usize = 8;
/// How long a server may take to answer `ruok` after it was spawned.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server log quoted in startup errors.
const LOG_TAIL_LINES: usize = 30;

/// Everything that can go wrong while starting or restarting a test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Java or the ZooKeeper jars are not installed.
    #[error(
        "{what} is missing; run scripts/install-zookeeper (installs Debian's 'zookeeper' package)"
    )]
    NotInstalled {
        /// What is missing (`java on PATH`, a jar path).
        what: String,
    },

    /// A file or directory of the server could not be created or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The server process could not be started or did not come up.
    #[error(
        "ZooKeeper on 127.0.0.1:{port} did not start: {reason}; log {}:\n{log_tail}",
        log.display()
    )]
    Startup {
        /// The client port.
        port: u16,
        /// What happened.
        reason: String,
        /// The server log.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
    },

    /// `start_again` was called while the server runs.
    #[error("ZooKeeper on 127.0.0.1:{port} is already running (pid {pid}); stop() it first")]
    AlreadyRunning {
        /// The client port.
        port: u16,
        /// The server's pid.
        pid: u32,
    },
}

/// Options of a [`ZkServer`]; [`ZkServer::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct ZkServerBuilder {
    base_dir: Option<PathBuf>,
    tick_time: Duration,
    min_session_timeout: Duration,
    max_session_timeout: Duration,
    startup_timeout: Duration,
}

impl Default for ZkServerBuilder {
    fn default() -> Self {
        Self {
            base_dir: None,
            tick_time: Duration::from_millis(500),
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(60),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

impl ZkServerBuilder {
    /// Default options: temp dir under the system temp directory, `tickTime` 500 ms, session
    /// timeouts allowed from 1 s to 60 s, 60 s to start.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the server's temporary directory under `dir` (e.g. the cargo target dir, so
    /// that fsync costs are those of the real disk).
    #[must_use]
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.base_dir = Some(dir.into());
        self
    }

    /// ZooKeeper's `tickTime` (its basic time unit: session expiry is checked once a tick).
    #[must_use]
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.tick_time = tick;
        self
    }

    /// The smallest and largest session timeouts the server grants
    /// (`minSessionTimeout`/`maxSessionTimeout`).
    #[must_use]
    pub fn session_timeouts(mut self, min: Duration, max: Duration) -> Self {
        self.min_session_timeout = min;
        self.max_session_timeout = max;
        self
    }

    /// How long to wait for `ruok` → `imok` after spawning the server.
    #[must_use]
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Starts the server (see [`ZkServer::start`]).
    ///
    /// # Errors
    /// As [`ZkServer::start`].
    pub fn start(self) -> Result<ZkServer, Error> {
        ZkServer::start_with(self)
    }
}

/// One private standalone ZooKeeper server on 127.0.0.1, killed and removed on drop.
#[derive(Debug)]
pub struct ZkServer {
    options: ZkServerBuilder,
    dir: tempfile::TempDir,
    java: PathBuf,
    port: u16,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl ZkServer {
    /// Starts a server with the default options and waits until it answers `ruok` with
    /// `imok`.
    ///
    /// # Errors
    /// - [`Error::NotInstalled`] when `java` or a jar is missing (run
    ///   `scripts/install-zookeeper`);
    /// - [`Error::Io`] when the temporary directory or a file cannot be written;
    /// - [`Error::Startup`] when the server does not come up (with the tail of its log).
    pub fn start() -> Result<ZkServer, Error> {
        ZkServerBuilder::default().start()
    }

    /// A builder for a server with other options.
    #[must_use]
    pub fn builder() -> ZkServerBuilder {
        ZkServerBuilder::default()
    }

    fn start_with(options: ZkServerBuilder) -> Result<ZkServer, Error> {
        let java = check_installed()?;
        let base = options.base_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("berth-zk-")
            .tempdir_in(&base)
            .map_err(|source| Error::Io {
                action: "create a temporary directory in",
                path: base.clone(),
                source,
            })?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|source| Error::Io {
            action: "create",
            path: data.clone(),
            source,
        })?;
        let mut server = ZkServer {
            options,
            dir,
            java,
            port: 0,
            child: None,
            watchdog: None,
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port().map_err(|source| Error::Io {
                action: "pick a free port on",
                path: PathBuf::from("127.0.0.1"),
                source,
            })?;
            server.write_config()?;
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(Launch::PortTaken(e)) => last = Some(e),
                Err(Launch::Failed(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| server.startup_error("no port could be used".to_owned())))
    }

    /// The ZooKeeper connect string, `127.0.0.1:PORT`.
    #[must_use]
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The client port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of the server process, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's temporary directory (`zoo.cfg`, `data/`, `zookeeper.log`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log file.
    #[must_use]
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("zookeeper.log")
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) | None => false,
        }
    }

    /// Kills the server (SIGKILL, by its pid) and waits for it to end: like a crash of the
    /// machine's ZooKeeper, every acknowledged write is on disk. Stopping a stopped server does
    /// nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The process may have ended already; kill then fails harmlessly.
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Starts the stopped server again on the same port with the same data directory (the
    /// data survives), and waits for `imok`.
    ///
    /// # Errors
    /// [`Error::AlreadyRunning`] when it runs; [`Error::Startup`] when it does not come up
    /// (for example because another process took the port meanwhile).
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Err(Error::AlreadyRunning {
                port: self.port,
                pid: self.pid().unwrap_or(0),
            });
        }
        self.stop();
        match self.launch() {
            Ok(()) => Ok(()),
            Err(Launch::PortTaken(e) | Launch::Failed(e)) => Err(e),
        }
    }

    fn write_config(&self) -> Result<(), Error> {
        let cfg = self.dir.path().join("zoo.cfg");
        let text = format!(
            "tickTime={tick}\n\
             dataDir={data}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             minSessionTimeout={min}\n\
             maxSessionTimeout={max}\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr\n\
             maxClientCnxns=0\n",
            tick = self.options.tick_time.as_millis().max(1),
            data = self.dir.path().join("data").display(),
            port = self.port,
            min = self.options.min_session_timeout.as_millis(),
            max = self.options.max_session_timeout.as_millis(),
        );
        std::fs::write(&cfg, text).map_err(|source| Error::Io {
            action: "write",
            path: cfg,
            source,
        })
    }

    /// Spawns the server on `self.port` and waits for it.
    fn launch(&mut self) -> Result<(), Launch> {
        let log_path = self.log_file();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| {
                Launch::Failed(Error::Io {
                    action: "open",
                    path: log_path.clone(),
                    source,
                })
            })?;
        let log_err = log.try_clone().map_err(|source| {
            Launch::Failed(Error::Io {
                action: "open",
                path: log_path.clone(),
                source,
            })
        })?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(&self.java)
            // ZooKeeper keeps its last 500 transactions in memory (`commitLogCount` cannot be
            // set lower) and berth's group commits make transactions of up to 1 MB: the heap
            // needs room for 500 MB of them, or a long run of large commits ends in garbage
            // collection pauses that drop the clients' connections. A service of 100,000
            // tasks adds half a gigabyte of data, held in memory and written out in every
            // snapshot. The heap is only taken as it is used.
            .arg("-Xmx4g")
            .arg("-cp")
            .arg(format!(
                "{ZOOKEEPER_CONF_DIR}:{ZOOKEEPER_JAR}:{SLF4J_SIMPLE_JAR}"
            ))
            .arg(format!("-Dzookeeper.log.dir={}", self.dir.path().display()))
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| Launch::Failed(self.startup_error(format!("cannot run java: {e}"))))?;
        let pid = child.id();
        self.child = Some(child);
        self.watchdog = spawn_watchdog(pid, self.dir.path());
        let deadline = Instant::now() + self.options.startup_timeout;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.stop();
                let log = read_from(&log_path, log_start);
                let reason = format!("the server process exited ({status})");
                let error = self.startup_error(reason);
                return Err(if port_in_use(&log) {
                    Launch::PortTaken(error)
                } else {
                    Launch::Failed(error)
                });
            }
            if ruok(self.port).as_deref() == Some("imok") {
                // Someone else's server may have answered on a port we failed to bind.
                match listens_on(pid, self.port) {
                    Some(false) => {
                        // Ours lost the race for the port; it exits soon (or would serve
                        // nothing): kill it and let the caller pick another port.
                        self.stop();
                        return Err(Launch::PortTaken(self.startup_error(format!(
                            "port {} belongs to another process",
                            self.port
                        ))));
                    }
                    Some(true) | None => return Ok(()),
                }
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Launch::Failed(self.startup_error(format!(
                    "no 'imok' answer to 'ruok' within {} s",
                    self.options.startup_timeout.as_secs()
                ))));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn startup_error(&self, reason: String) -> Error {
        let log = self.log_file();
        Error::Startup {
            port: self.port,
            reason,
            log_tail: tail(&log, LOG_TAIL_LINES),
            log,
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
        // The temporary directory is removed when `dir` drops.
    }
}

/// Why one launch failed.
enum Launch {
    /// The port was taken by another process: try another one.
    PortTaken(Error),
    /// Anything else.
    Failed(Error),
}

/// Finds `java` and checks the jars.
fn check_installed() -> Result<PathBuf, Error> {
    for jar in [ZOOKEEPER_JAR, SLF4J_SIMPLE_JAR] {
        if !Path::new(jar).exists() {
            return Err(Error::NotInstalled {
                what: jar.to_owned(),
            });
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("java"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::NotInstalled {
            what: "java (on PATH)".to_owned(),
        })
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// Sends the four-letter word `ruok`; the answer, if any.
fn ruok(port: u16) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(1000)))
        .ok()?;
    stream.write_all(b"ruok").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// Whether process `pid` has a socket listening on 127.0.0.1:`port`, from `/proc`; `None`
/// when that cannot be told (no `/proc`).
fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" {
                continue;
            }
            let local_port = fields[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let owned = fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_link(fd.path())
            .map(|target| inodes.iter().any(|i| Path::new(i) == target))
            .unwrap_or(false)
    });
    Some(owned)
}

/// Whether a server log says the port could not be bound.
fn port_in_use(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("BindException")
}

/// Starts a shell that kills the server `pid` and removes `dir` when this process is gone
/// (so that a server in a never-dropped `static` does not outlive its test binary). It ends
/// by itself when the server ends first.
fn spawn_watchdog(pid: u32, dir: &Path) -> Option<Child> {
    let script = r#"
        while kill -0 "$1" 2>/dev/null; do
            kill -0 "$2" 2>/dev/null || exit 0
            sleep 0.5
        done
        kill -9 "$2" 2>/dev/null
        sleep 0.5
        rm -rf "$3"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("berth-zk-watchdog")
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// The text of `path` from byte `offset` on (lossy), empty when unreadable.
fn read_from(path: &Path, offset: u64) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = file.read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// The last `lines` lines of `path`.
fn tail(path: &Path, lines: usize) -> String {
    let text = read_from(path, 0);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_stops_and_comes_back() {
        let mut server = match ZkServer::start() {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        assert!(server.is_running());
        assert_eq!(ruok(server.port()).as_deref(), Some("imok"));
        assert_eq!(
            server.connect_string(),
            format!("127.0.0.1:{}", server.port())
        );
        let first_pid = server.pid();
        assert!(first_pid.is_some());
        server.stop();
        assert!(!server.is_running());
        assert_eq!(server.pid(), None);
        assert_eq!(ruok(server.port()), None);
        if let Err(e) = server.start_again() {
            panic!("{e}");
        }
        assert!(server.is_running());
        assert_ne!(server.pid(), first_pid);
        assert!(matches!(
            server.start_again(),
            Err(Error::AlreadyRunning { .. })
        ));
        let dir = server.dir().to_path_buf();
        drop(server);
        assert!(!dir.exists());
    }

    #[test]
    fn parallel_starts_get_distinct_ports() {
        let handles: Vec<_> = (0..3)
            .map(|_| std::thread::spawn(ZkServer::start))
            .collect();
        let mut servers = Vec::new();
        for h in handles {
            match h.join() {
                Ok(Ok(s)) => servers.push(s),
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("a start panicked"),
            }
        }
        let mut ports: Vec<u16> = servers.iter().map(ZkServer::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3);
    }

    #[test]
    fn missing_things_are_named() {
        let e = Error::NotInstalled {
            what: ZOOKEEPER_JAR.to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "/usr/share/java/zookeeper.jar is missing; run scripts/install-zookeeper \
             (installs Debian's 'zookeeper' package)"
        );
    }

    #[test]
    fn bind_failures_are_recognised() {
        assert!(port_in_use(
            "java.net.BindException: Address already in use\n"
        ));
        assert!(!port_in_use("binding to port 0.0.0.0/0.0.0.0:2181"));
    }
}
