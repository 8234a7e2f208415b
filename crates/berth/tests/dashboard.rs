//! The dashboard in a real browser: headless Chromium (Debian's, installed by
//! `scripts/install-browser`) driven through chromedriver. It shows the plan and the three
//! pods of a running hello-world, a task's log, and restarts a pod through its button and
//! confirmation; screenshots go to `target/test-artifacts/`.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::common::{Berth, free_port, hello_world};

const LONG: Duration = Duration::from_secs(90);

/// chromedriver on a free loopback port, stopped (by PID) on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// Stops chromedriver and the browser it started: its whole process group, by PID.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        // Its own process group, so that the browser it starts is stopped with it.
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/install-browser installs it)");
    Driver { child, port }
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// Polls `check` (async) until it holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_dashboard_shows_the_service_and_restarts_a_pod_in_a_browser() {
    let mut b = Berth::new(33800);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let old = b.task_ids()["hello-0-server"].0.clone();
    let driver = driver();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = b.url();
    let shots = artifacts();
    let b = &b;
    rt.block_on(async move {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,800"],
            }),
        );
        let mut connected = None;
        for _ in 0..50 {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", driver.port))
                .await
            {
                Ok(c) => {
                    connected = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let c = connected.expect("a browser session");
        c.goto(&format!("{url}/")).await.expect("the dashboard loads");
        c.wait()
            .at_most(LONG)
            .for_element(Locator::Css("body[data-loaded=true]"))
            .await
            .expect("the dashboard fills in");
        // The plan and the three pods.
        let plan = c
            .find(Locator::Css(".plan[data-plan=deploy]"))
            .await
            .expect("the deploy plan")
            .text()
            .await
            .unwrap_or_default();
        assert!(plan.contains("COMPLETE"), "{plan}");
        assert!(plan.contains("world-1:[server]"), "{plan}");
        let pods = c.find_all(Locator::Css("tr.pod")).await.expect("pods");
        assert_eq!(pods.len(), 3);
        std::fs::write(shots.join("dashboard-overview.png"), c.screenshot().await.unwrap())
            .unwrap();

        // A task's log: hello-0's stderr (its web server logs each health check there).
        c.find(Locator::Css("tr.task[data-task=hello-0-server] a.task-id"))
            .await
            .expect("hello-0's task")
            .click()
            .await
            .unwrap();
        c.find(Locator::Id("log-stderr")).await.unwrap().click().await.unwrap();
        until("the log in the page", || async {
            c.execute("return document.getElementById('log').textContent", vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .is_some_and(|t| t.contains("GET /greetings"))
        })
        .await;
        std::fs::write(shots.join("dashboard-log.png"), c.screenshot().await.unwrap()).unwrap();

        // Restart hello-0 through its button and the confirmation.
        c.find(Locator::Css("button.restart[data-pod=hello-0]"))
            .await
            .expect("the restart button")
            .click()
            .await
            .unwrap();
        c.accept_alert().await.expect("the confirmation");
        until("a new task id for hello-0-server in the page", || async {
            let ids = c
                .execute(
                    "return Array.from(document.querySelectorAll('tr.task[data-task=\"hello-0-server\"] a.task-id')).map(a => a.textContent)",
                    vec![],
                )
                .await
                .ok();
            // The harness's client blocks: off the async threads.
            let api = tokio::task::block_in_place(|| b.task_ids());
            ids.and_then(|v| v.as_array().cloned()).is_some_and(|ids| {
                api.get("hello-0-server").is_some_and(|(id, state)| {
                    *id != old && state == "RUNNING" && ids.iter().any(|i| i == id.as_str())
                })
            })
        })
        .await;
        std::fs::write(shots.join("dashboard-restarted.png"), c.screenshot().await.unwrap())
            .unwrap();

        // Phone width: the page fits without sideways scrolling.
        c.set_window_size(390, 844).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        std::fs::write(shots.join("dashboard-phone.png"), c.screenshot().await.unwrap()).unwrap();
        assert!(overflow.as_i64().unwrap_or(0) <= 0, "sideways overflow {overflow}");
        c.close().await.unwrap();
    });
    drop(driver);
}
