//! `berth bench`: the scenarios run (small), their figures are what they claim, and bad
//! parameters or a ZooKeeper that is down end with a clear message, never a hang.

use std::process::Command;
use std::time::{Duration, Instant};

use berth_zk_server::ZkServer;
use serde_json::Value;

use crate::common::{berth_bin, free_port};

fn bench(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(berth_bin())
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run berth bench");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_deploy_with_zookeeper_state_is_stored_there_and_measured() {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let server = ZkServer::builder()
        .base_dir(base)
        .start()
        .unwrap_or_else(|e| panic!("cannot start ZooKeeper: {e}"));
    let url = format!("zk://{}", server.connect_string());
    let (ok, v, err) = bench(&[
        "deploy", "--pods", "300", "--agents", "120", "--state", &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["launches"], 300, "{v}");
    assert_eq!(v["state"], url.as_str());
    assert!(
        v["launches_per_second"].as_f64().unwrap_or(0.0) > 0.0,
        "{v}"
    );
    assert!(v["store_seconds"].as_f64().unwrap_or(0.0) > 0.0, "{v}");
    assert!(
        v["rss_after_mb"].as_f64().unwrap_or(0.0) >= v["rss_before_mb"].as_f64().unwrap_or(1e9),
        "{v}"
    );
}

#[test]
fn pods_that_fit_nowhere_cost_a_sample_and_every_step_says_why_it_waits() {
    let (ok, v, err) = bench(&[
        "unplaceable",
        "--pods",
        "300",
        "--agents",
        "100",
        "--rounds",
        "3",
    ]);
    assert!(ok, "{err}");
    assert_eq!(v["steps_explained"], 300, "{v}");
    assert_eq!(v["steps_sampled"], 299, "{v}");
    assert!(
        v["example"]
            .as_str()
            .is_some_and(|e| e.contains("node-0:[server]") && e.contains("300 waiting steps")),
        "{v}"
    );
    assert!(v["core_percent"].as_f64().is_some(), "{v}");
}

#[test]
fn impossible_parameters_and_a_zookeeper_that_is_down_are_refused_clearly() {
    let (ok, _, err) = bench(&["deploy", "--pods", "7000", "--agents", "2000"]);
    assert!(!ok);
    assert!(
        err.contains("7000 pods cannot be placed")
            && err.contains("at most 6000")
            && err.contains("hostname:MAX_PER:3"),
        "{err}"
    );
    let (ok, _, err) = bench(&[
        "deploy",
        "--pods",
        "3",
        "--agents",
        "2",
        "--placement",
        "hostname:UNIQUE",
    ]);
    assert!(!ok);
    assert!(err.contains("at most 2"), "{err}");
    let (ok, _, err) = bench(&["deploy", "--pods", "0"]);
    assert!(!ok);
    assert!(
        err.contains("--pods and --agents must be at least 1"),
        "{err}"
    );
    // Nothing listens on this port.
    let port = free_port();
    let started = Instant::now();
    let (ok, _, err) = bench(&[
        "deploy",
        "--pods",
        "10",
        "--agents",
        "10",
        "--state",
        &format!("zk://127.0.0.1:{port}"),
    ]);
    assert!(!ok);
    assert!(err.contains("cannot reach ZooKeeper"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}
