//! `GET /v1/openapi.json` and the routes served are the same set: every documented
//! operation is answered by a route (probed with a parameter no route takes, so nothing is
//! changed), and every route in the API's source is documented.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{Berth, hello_world, repo};

/// The paths the API's source registers (`.route("…"` and the pod routes built from their
/// two prefixes).
fn served_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let dir = repo().join("crates/berth-api/src");
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let arg = rest.trim_start();
            if let Some(literal) = arg.strip_prefix('"') {
                if let Some(end) = literal.find('"') {
                    paths.insert(literal[..end].to_owned());
                }
            } else if let Some(literal) = arg.strip_prefix("&format!(\"{prefix}") {
                if let Some(end) = literal.find('"') {
                    let suffix = literal[..end].replace("{{", "{").replace("}}", "}");
                    for prefix in ["/v1/pods", "/v1/pod"] {
                        paths.insert(format!("{prefix}{suffix}"));
                    }
                }
            } else if arg.starts_with("prefix,") {
                paths.insert("/v1/pods".to_owned());
                paths.insert("/v1/pod".to_owned());
            }
        }
    }
    paths
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_served() {
    let mut b = Berth::new(34200);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", Duration::from_secs(90));
    let (code, doc) = b.get("/v1/openapi.json");
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<String> = paths.keys().cloned().collect();

    let served = served_paths();
    assert!(served.len() > 50, "the source scan found {served:?}");
    let missing: Vec<&String> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
            if op["summary"]
                .as_str()
                .is_some_and(|s| s.contains("served with --master"))
            {
                continue;
            }
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{}{concrete}?probe-only=1", b.url());
            let req = match method.as_str() {
                "get" => client.get(&url),
                "post" => client.post(&url),
                "put" => client.put(&url),
                other => panic!("{other} {path}: an unexpected method"),
            };
            let r = req
                .send()
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let status = r.status().as_u16();
            assert_ne!(status, 405, "{method} {path} is documented but not served");
            if status == 404 {
                let text = r.text().unwrap_or_default();
                assert!(
                    !text.starts_with("Unknown path"),
                    "{method} {path} is documented but not served: {text}"
                );
            }
        }
    }
    // The probes changed nothing.
    assert_eq!(b.plan_status("deploy"), "COMPLETE");
    assert_eq!(b.task_ids().len(), 3);
    b.stop();
}
