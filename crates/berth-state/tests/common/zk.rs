//! ZooKeeper fixtures: one private server per test binary (started on first use, killed by
//! its watchdog when the binary exits), and a fresh chroot per persister so tests never see
//! each other's nodes.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_state::{ZkOptions, ZkPersister, ZkUrl};
use berth_zk_server::ZkServer;

use super::ok;

/// The server shared by the tests of this binary that do not stop or restart it.
pub fn shared_server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| ok(start_server()))
}

/// A private server (for tests that stop and restart it), its files on the real disk.
pub fn start_server() -> Result<ZkServer, berth_zk_server::Error> {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    ZkServer::builder().base_dir(base).start()
}

/// Options for tests: short enough to fail fast, long enough for a loaded machine.
pub fn options() -> ZkOptions {
    ZkOptions {
        session_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(5),
    }
}

/// A chroot never used before in this process: `/berth-test/<tag>-<pid>-<n>`.
pub fn fresh_chroot(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/berth-test/{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL of `server` with `chroot`.
pub fn url(server: &ZkServer, chroot: &str) -> ZkUrl {
    ok(ZkUrl::parse(&format!(
        "zk://{}{chroot}",
        server.connect_string()
    )))
}

/// A persister on the shared server, in a fresh chroot.
pub fn persister(tag: &str) -> ZkPersister {
    let server = shared_server();
    ok(ZkPersister::connect(
        &url(server, &fresh_chroot(tag)),
        &options(),
    ))
}
