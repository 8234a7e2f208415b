//! API fuzzing: random methods, paths (from the route table, with random segments), query
//! parameters, headers and bodies — empty, huge, binary, deeply nested JSON — sent over real
//! HTTP to a running scheduler with tasks (the real loop on its own thread over the sim
//! cluster). No request may crash anything or get a 5xx that is not documented, and the
//! scheduler must go on deploying and answering afterwards.
//!
//! `BERTH_FUZZ_REQUESTS` sets the count (default 20,000), `BERTH_FUZZ_SEED` the seed (a
//! failing run prints the seed and the request).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_cluster::sim::{SimAgentSpec, SimCluster};
use berth_scheduler::{Request, SchedulerOptions, now_ms};
use berth_state::{MemPersister, Persister};
use berth_testing::{RunningLoop, SharedIds, core_over, hello_world};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

/// Route templates of the API (`{}` is a path segment the fuzzer fills in). `POST
/// /v1/uninstall` is left out: it ends the service on purpose.
const ROUTES: &[&str] = &[
    "/v1/plans",
    "/v1/plans/{}",
    "/v1/plans/{}/start",
    "/v1/plans/{}/stop",
    "/v1/plans/{}/interrupt",
    "/v1/plans/{}/continue",
    "/v1/plans/{}/forceComplete",
    "/v1/plans/{}/restart",
    "/v1/plan",
    "/v1/plan/interrupt",
    "/v1/plan/continue",
    "/v1/plan/forceComplete",
    "/v1/plan/restart",
    "/v1/state/frameworkId",
    "/v1/state/properties",
    "/v1/state/properties/{}",
    "/v1/state/tree",
    "/v1/state/node",
    "/v1/configurations",
    "/v1/configurations/targetId",
    "/v1/configurations/target",
    "/v1/configurations/{}",
    "/v1/health",
    "/v1/artifacts/template/{}/{}/{}/{}",
    "/v2/debug/offers",
    "/v1/debug/plans",
    "/v1/agents",
    "/v1/agents/{}/stop",
    "/v1/agents/{}/start",
    "/v1/agents/{}/drain",
    "/v1/pods",
    "/v1/pods/status",
    "/v1/pods/{}/status",
    "/v1/pods/{}/info",
    "/v1/pods/{}/restart",
    "/v1/pods/{}/replace",
    "/v1/pods/{}/pause",
    "/v1/pods/{}/resume",
    "/v1/pod/{}/status",
    "/v1/pod/{}/restart",
    "/v1/{}",
    "/{}",
];

const NAMES: &[&str] = &[
    "deploy",
    "recovery",
    "decommission",
    "hello-0",
    "world-1",
    "world-9",
    "hello-0-server",
    "hello",
    "server",
    "world-0-server",
    "agent-a",
    "00000000-0000-4000-8000-000000000001",
    "targetId",
    "..",
    "%2e%2e",
    "%00",
    "%ff%fe",
    "a%2Fb",
    "ünïcödé",
    "{}",
    "",
    " ",
];

const QUERY_KEYS: &[&str] = &[
    "phase",
    "step",
    "path",
    "verbose",
    "completed",
    "tasks",
    "task",
    "x",
];

fn segment(rng: &mut StdRng) -> String {
    match rng.random_range(0..10) {
        0..=5 => NAMES[rng.random_range(0..NAMES.len())].to_owned(),
        6 => "x".repeat(rng.random_range(1..5_000)),
        7 => format!("{}", rng.random::<i64>()),
        _ => {
            let bytes: Vec<u8> = (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
            bytes.iter().map(|b| format!("%{b:02X}")).collect()
        }
    }
}

fn value(rng: &mut StdRng) -> String {
    match rng.random_range(0..8) {
        0 => String::new(),
        1 => "true".to_owned(),
        2 => "/dcos-service-hello-world/Tasks".to_owned(),
        3 => "../../etc/passwd".to_owned(),
        4 => "y".repeat(rng.random_range(1..3_000)),
        _ => segment(rng),
    }
}

fn nested(depth: usize) -> Vec<u8> {
    let mut body = "[".repeat(depth).into_bytes();
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

fn body(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..12) {
        0..=3 => Vec::new(),
        4 => br#"{"FOO": "bar", "N": "1"}"#.to_vec(),
        5 => br#"["hello-0-server"]"#.to_vec(),
        6 => nested(rng.random_range(100..20_000)),
        7 => br#"{"a": {"b": {"c": [1, 2, {"d": null}]}}, "e": 1e400}"#.to_vec(),
        8 if rng.random_range(0..10) == 0 => vec![b'z'; 2_000_000],
        9 => b"{\"unterminated\": ".to_vec(),
        _ => {
            let mut bytes = vec![0u8; rng.random_range(1..4_096)];
            rng.fill_bytes(&mut bytes);
            bytes
        }
    }
}

/// One random request: (method, path and query, content type, body).
fn request(rng: &mut StdRng) -> (reqwest::Method, String, Option<String>, Vec<u8>) {
    let template = ROUTES[rng.random_range(0..ROUTES.len())];
    let command = [
        "start",
        "stop",
        "interrupt",
        "continue",
        "forceComplete",
        "restart",
        "replace",
        "pause",
        "resume",
        "drain",
    ]
    .iter()
    .any(|c| template.ends_with(c));
    let method = match rng.random_range(0..10) {
        0..=6 if command => reqwest::Method::POST,
        0..=6 => reqwest::Method::GET,
        7 => reqwest::Method::PUT,
        8 => reqwest::Method::DELETE,
        _ => reqwest::Method::from_bytes(b"FROB").unwrap(),
    };
    let mut path = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            path.push_str(&segment(rng));
        }
        path.push_str(part);
    }
    if rng.random_range(0..4) == 0 {
        let pairs: Vec<String> = (0..rng.random_range(1..4))
            .map(|_| {
                let key = QUERY_KEYS[rng.random_range(0..QUERY_KEYS.len())];
                format!("{key}={}", value(rng))
            })
            .collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    let content_type = match rng.random_range(0..5) {
        0 => None,
        1 => Some("text/plain".to_owned()),
        2 => Some("application/octet-stream; charset=\u{7f}".replace('\u{7f}', "x")),
        _ => Some("application/json".to_owned()),
    };
    (method, path, content_type, body(rng))
}

/// Whether a 5xx is one the API documents: health reports its state as its status code
/// (500 while a plan has errors; 503 when the deploy plan is not complete for none of the
/// named reasons, e.g. a step paused by the fuzzer).
fn documented_5xx(path: &str, status: u16) -> bool {
    matches!(status, 500 | 503) && path.starts_with("/v1/health")
}

#[test]
fn random_requests_never_crash_the_scheduler_nor_get_undocumented_errors() {
    let count: usize = berth_testing::env_knob("BERTH_FUZZ_REQUESTS", 20_000);
    let seed = berth_testing::env_seed("BERTH_FUZZ_SEED");
    println!("API fuzzing: {count} requests, seed {seed}");

    let persister: Arc<dyn Persister> = Arc::new(MemPersister::new());
    let core = core_over(
        persister,
        hello_world().unwrap(),
        SchedulerOptions::default(),
        SharedIds::default(),
    )
    .unwrap();
    let cluster = SimCluster::new(SimAgentSpec::many(4, &["a", "b", "c"]));
    let running = RunningLoop::start(core, cluster).unwrap();
    let (handle, cluster) = (running.handle.clone(), running.cluster.clone());
    running.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let api = tokio::spawn(berth_api::serve(
            listener,
            berth_api::router(handle.clone(), None, None),
            std::future::pending(),
        ));
        // The cluster keeps offering while the fuzzer runs: the scheduler keeps deploying
        // and recovering whatever the fuzzer restarted, replaced or paused.
        let offers = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                loop {
                    cluster.set_now(now_ms());
                    cluster.offer_round();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let started = Instant::now();
        let workers = 4;
        let mut tasks = Vec::new();
        for w in 0..workers {
            let client = client.clone();
            let fresh = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let base = base.clone();
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(w as u64));
            let n = count / workers + usize::from(w < count % workers);
            tasks.push(tokio::spawn(async move {
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for i in 0..n {
                    let (method, path, content_type, body) = request(&mut rng);
                    let send = |client: &reqwest::Client| {
                        let mut req = client
                            .request(method.clone(), format!("{base}{path}"))
                            .body(body.clone());
                        if let Some(ct) = &content_type {
                            req = req.header("content-type", ct.clone());
                        }
                        req.send()
                    };
                    let shown = || {
                        let short: String = path.chars().take(200).collect();
                        format!(
                            "worker {w} request {i}: {method} {short} ({} body bytes)",
                            body.len()
                        )
                    };
                    // The server answers a request it refuses (404, 405, 413) without reading
                    // a large body, and closes that connection: the client may then see a
                    // broken pipe on it, or on the next request that reused it. Such a
                    // request is sent again once on a fresh connection.
                    let response = match send(&client).await {
                        Ok(r) => r,
                        Err(_) => match send(&fresh).await {
                            Ok(r) => r,
                            Err(_) if body.len() > 1_000_000 => {
                                *statuses.entry(413).or_default() += 1;
                                continue;
                            }
                            Err(e) => panic!("{}: no answer: {e:?}", shown()),
                        },
                    };
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    assert!(
                        status < 500 || documented_5xx(&path, status),
                        "{}: {status} {}",
                        shown(),
                        text.chars().take(300).collect::<String>()
                    );
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            }));
        }
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for t in tasks {
            for (code, n) in t.await.unwrap() {
                *statuses.entry(code).or_default() += n;
            }
        }
        println!(
            "{count} requests in {:.1} s; status codes: {statuses:?}",
            started.elapsed().as_secs_f64()
        );
        assert!(statuses.keys().any(|c| *c == 200), "no request succeeded");

        // Afterwards the scheduler still answers and deploys: whatever the fuzzer stopped,
        // paused or interrupted is set going again, and every plan completes.
        for pod in ["hello-0", "world-0", "world-1"] {
            let _ = handle
                .request(Request::PodResume(pod.to_owned(), Vec::new()))
                .await;
        }
        for plan in ["deploy", "recovery"] {
            let _ = client
                .post(format!("{base}/v1/plans/{plan}/continue"))
                .send()
                .await;
            let _ = client
                .post(format!("{base}/v1/plans/{plan}/start"))
                .send()
                .await;
            // A phase the fuzzer interrupted stays so after the plan's `continue` (as in the
            // reference): continue each one.
            let shown: serde_json::Value =
                match client.get(format!("{base}/v1/plans/{plan}")).send().await {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => serde_json::Value::Null,
                };
            for phase in shown["phases"].as_array().into_iter().flatten() {
                if let Some(name) = phase["name"].as_str() {
                    let _ = client
                        .post(format!("{base}/v1/plans/{plan}/continue"))
                        .query(&[("phase", name)])
                        .send()
                        .await;
                }
            }
        }
        let complete = async || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let deploy = client
                    .get(format!("{base}/v1/plans/deploy"))
                    .send()
                    .await
                    .unwrap();
                let recovery = client
                    .get(format!("{base}/v1/plans/recovery"))
                    .send()
                    .await
                    .unwrap();
                if deploy.status() == 200 && recovery.status() == 200 {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the plans did not complete after fuzzing: deploy {}, recovery {}",
                    deploy.text().await.unwrap_or_default(),
                    recovery.text().await.unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        complete().await;
        let before = cluster.task_info("world-0-server").map(|t| t.task_id);
        let restart = client
            .post(format!("{base}/v1/pods/world-0/restart"))
            .send()
            .await
            .unwrap();
        assert_eq!(restart.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(60);
        while cluster.task_info("world-0-server").map(|t| t.task_id) == before {
            assert!(Instant::now() < deadline, "world-0 was not restarted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        complete().await;
        let live = cluster.live_tasks();
        let mut names: Vec<&str> = live.iter().map(|(name, _, _)| name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a task runs twice: {live:?}");
        offers.abort();
        api.abort();
    });
    running
        .stop()
        .expect("the scheduler loop ended with an error");
}
