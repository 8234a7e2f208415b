//! API authentication and the audit log: the token matrix over reading and changing routes,
//! the CLI's `--token`, the refusals at start-up.

use std::time::Duration;

use crate::common::{Berth, hello_world, text};

const LONG: Duration = Duration::from_secs(90);
const OPERATE: &str = "op-0123456789abcdef0123";
const READ: &str = "rd-0123456789abcdef0123";

/// Status of a request with `token` (`None`: without one).
fn status(b: &Berth, method: &str, path: &str, token: Option<&str>) -> (u16, Option<String>) {
    let client = reqwest::blocking::Client::new();
    let url = format!("{}{path}", b.url());
    let mut req = match method {
        "GET" => client.get(&url),
        "PUT" => client.put(&url),
        _ => client.post(&url),
    };
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let r = req.send().expect("the API answers");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), challenge)
}

#[test]
fn tokens_guard_every_route_and_changes_are_audited() {
    let mut b = Berth::new(32600);
    let tokens = b.dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("# who may do what\nalice operate {OPERATE}\nci read {READ}  # dashboards\n"),
    )
    .unwrap();
    b.token = Some(OPERATE.to_owned());
    b.start(&hello_world(), &["--auth-tokens", tokens.to_str().unwrap()]);
    let ok_read = |code: u16| code != 401 && code != 403;

    let reads = [
        "/v1/plans",
        "/v1/plans/deploy",
        "/v1/pods",
        "/v1/pods/status",
        "/v1/health",
        "/v1/configurations",
        "/v1/configurations/target",
        "/v1/configurations/history",
        "/v1/state/properties",
        "/v1/state/frameworkId",
        "/v1/endpoints",
        "/v1/tasks",
        "/v1/agents",
        "/v2/debug/offers",
        "/v1/debug/log",
        "/v1/audit",
    ];
    for path in reads {
        let (code, challenge) = status(&b, "GET", path, None);
        assert_eq!(code, 401, "GET {path} without a token");
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"berth\""),
            "{path}"
        );
        assert_eq!(
            status(&b, "GET", path, Some("wrong-token-0123456789")).0,
            401,
            "{path}"
        );
        assert!(
            ok_read(status(&b, "GET", path, Some(READ)).0),
            "GET {path} with a read token"
        );
        assert!(ok_read(status(&b, "GET", path, Some(OPERATE)).0), "{path}");
    }
    // Changes: refused without a token and with a read token, before they do anything.
    let changes = [
        ("POST", "/v1/plans/deploy/interrupt"),
        ("POST", "/v1/plans/deploy/continue"),
        ("POST", "/v1/plans/deploy/start"),
        ("POST", "/v1/plans/deploy/stop"),
        ("POST", "/v1/plans/deploy/forceComplete"),
        ("POST", "/v1/plans/deploy/restart"),
        ("POST", "/v1/pods/hello-0/restart"),
        ("POST", "/v1/pods/hello-0/replace"),
        ("POST", "/v1/pods/hello-0/pause"),
        ("POST", "/v1/pods/hello-0/resume"),
        ("POST", "/v1/update"),
        ("POST", "/v1/update/rollback"),
        ("POST", "/v1/uninstall"),
        ("POST", "/v1/agents/agent-a/stop"),
        ("POST", "/v1/agents/agent-a/drain"),
        ("PUT", "/v1/state/refresh"),
        ("PUT", "/v1/state/files/notes"),
        ("POST", "/v1/tasks/x/exec"),
    ];
    for (method, path) in changes {
        assert_eq!(status(&b, method, path, None).0, 401, "{method} {path}");
        assert_eq!(
            status(&b, method, path, Some("wrong-token-0123456789")).0,
            401,
            "{method} {path}"
        );
        assert_eq!(
            status(&b, method, path, Some(READ)).0,
            403,
            "{method} {path}"
        );
    }
    // And every operation the OpenAPI document names, the same way (path arguments made up;
    // the guard answers before any route runs).
    let (code, doc) = b.get("/v1/openapi.json");
    assert_eq!(code, 200);
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path == "/" || path.starts_with("/v1/artifacts/") {
            continue; // open: the dashboard's page, and what the agents fetch
        }
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            assert_eq!(status(&b, &m, &concrete, None).0, 401, "{m} {path}");
            let with_read = status(&b, &m, &concrete, Some(READ)).0;
            if m == "GET" {
                assert!(
                    ok_read(with_read),
                    "{m} {path} with a read token: {with_read}"
                );
            } else {
                assert_eq!(with_read, 403, "{m} {path} with a read token");
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked} operations");
    b.wait_complete("deploy", LONG);
    // An operate token changes things (harmless ones here).
    for command in ["interrupt", "continue"] {
        let (code, _) = status(
            &b,
            "POST",
            &format!("/v1/plans/deploy/{command}"),
            Some(OPERATE),
        );
        assert!(code == 200 || code == 208, "{command}: {code}");
    }
    // Huge bodies and headers are refused, not taken in.
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(format!("{}/v1/update", b.url()))
        .header("Authorization", format!("Bearer {OPERATE}"))
        .body(vec![b'x'; 5 << 20])
        .send();
    // 413, or the connection closed after it while the body was still being sent.
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    let r = client
        .get(format!("{}/v1/plans", b.url()))
        .header("Authorization", format!("Bearer {OPERATE}"))
        .header("X-Huge", "y".repeat(512 << 10))
        .send();
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 431);
    }
    assert_eq!(
        status(&b, "GET", "/v1/health", Some(READ)).0,
        200,
        "still serving"
    );
    // The CLI: --token, or $BERTH_TOKEN.
    let o = b.cli(&["plan", "show"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = b.cli(&["--token", READ, "plan", "pause", "deploy"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("403"), "{:?}", text(&o));
    let o = std::process::Command::new(crate::common::berth_bin())
        .args(["plan", "show"])
        .env("BERTH_URL", b.url())
        .env_remove("BERTH_TOKEN")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("401"), "{:?}", text(&o));

    // The audit log: every change, who, what, the answer; no token in it.
    let (code, audit) = b.get("/v1/audit");
    assert_eq!(code, 200, "{audit}");
    let entries = audit.as_array().expect("a list");
    assert!(
        entries.iter().any(|e| e["token"] == "alice"
            && e["path"] == "/v1/plans/deploy/interrupt"
            && e["status"].as_u64().is_some_and(|c| c == 200 || c == 208)),
        "{audit}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["token"] == "ci" && e["path"] == "/v1/uninstall" && e["status"] == 403),
        "{audit}"
    );
    let file = std::fs::read_to_string(b.data().join("audit.log")).unwrap();
    assert!(
        !file.contains(OPERATE) && !file.contains(READ),
        "a token was logged"
    );
    let log = std::fs::read_to_string(b.data().join("berth.log")).unwrap_or_default();
    assert!(
        !log.contains(OPERATE) && !log.contains(READ),
        "a token was logged"
    );
    assert_eq!(b.plan_status("deploy"), "COMPLETE");
    b.stop();
}

#[test]
fn starts_are_refused_without_auth_off_loopback_and_with_a_bad_token_file() {
    let b = Berth::new(32900);
    let o = b.run_berth(
        &[
            "run",
            "--data-dir",
            b.data().to_str().unwrap(),
            "--listen",
            "0.0.0.0:1",
            hello_world().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--insecure-no-auth"), "{:?}", text(&o));
    let tokens = b.dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "alice operate 0123456789abcdef0123\nbob admin 0123456789abcdef9999\n",
    )
    .unwrap();
    let o = b.run_berth(
        &[
            "run",
            "--data-dir",
            b.data().to_str().unwrap(),
            "--auth-tokens",
            tokens.to_str().unwrap(),
            hello_world().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(
        err.contains(&format!(
            "{}:2: role \"admin\" is unknown",
            tokens.display()
        )),
        "{err}"
    );
    assert!(
        !err.contains("0123456789abcdef"),
        "a token was printed: {err}"
    );
}

/// HTTPS with tokens, end to end: the CLI trusts the certificate with --ca-cert (and not
/// without), exec works through TLS; a key that is not the certificate's stops the start.
#[test]
fn https_with_tokens_end_to_end() {
    let mut b = Berth::new(33000);
    let (cert, _, _) = crate::common::self_signed(b.dir.path());
    let key = b.dir.path().join("key.pem");
    let tokens = b.dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice operate {OPERATE}\n")).unwrap();
    b.spawn(
        &hello_world(),
        &[
            "--auth-tokens",
            tokens.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://127.0.0.1:{}", b.port);
    let cli = |args: &[&str], ca: bool| {
        let mut c = std::process::Command::new(crate::common::berth_bin());
        c.args(args)
            .env("BERTH_URL", &url)
            .env("BERTH_TOKEN", OPERATE);
        if ca {
            c.env("BERTH_CA_CERT", &cert);
        }
        c.output().unwrap()
    };
    b.wait_for("the API over HTTPS", LONG, || {
        cli(&["plan", "show"], true).status.success()
    });
    b.wait_for("the deploy", LONG, || {
        text(&cli(&["plan", "show"], true))
            .0
            .starts_with("deploy (serial strategy) (COMPLETE)")
    });
    let o = cli(&["plan", "show"], false);
    assert!(!o.status.success(), "trusted without the CA");
    let o = cli(
        &["task", "exec", "hello-0", "cat", "hello-data/greetings"],
        true,
    );
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(
        text(&o).0.contains("hello from hello-0-server"),
        "{:?}",
        text(&o)
    );
    // Plain HTTP on the HTTPS port gets nothing useful.
    assert!(
        b.get_status("/v1/health")
            .is_none_or(|(code, _)| code != 200),
        "plain HTTP answered"
    );
    b.stop();

    // A key that is not the certificate's: the start is refused, naming both files.
    let other = b.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    crate::common::self_signed(&other);
    let o = b.run_berth(
        &[
            "run",
            "--data-dir",
            b.data().to_str().unwrap(),
            "--listen",
            "127.0.0.1:1",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            other.join("key.pem").to_str().unwrap(),
            hello_world().to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = text(&o).1;
    assert!(
        err.contains(cert.to_str().unwrap()) && err.contains("other/key.pem"),
        "{err}"
    );
}
