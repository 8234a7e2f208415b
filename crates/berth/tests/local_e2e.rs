//! `berth run` on the local cluster with real processes: hello-world deploys, survives
//! `kill -9` of the scheduler at any point, and the API answers in the reference's shapes.

use crate::common;

use std::time::Duration;

use common::{Berth, hello_world, text};
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map_or(Vec::new(), |o| o.keys().cloned().collect())
}

#[test]
fn hello_world_deploys_with_real_processes_and_the_api_answers() {
    let mut b = Berth::new(21000);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", Duration::from_secs(60));

    // Plans.
    let (code, plans) = b.get("/v1/plans");
    assert_eq!(code, 200);
    assert_eq!(plans, serde_json::json!(["deploy", "recovery", "backup"]));
    let (code, deploy) = b.get("/v1/plans/deploy");
    assert_eq!(code, 200);
    assert_eq!(
        keys(&deploy),
        vec!["phases", "strategy", "errors", "status"]
    );
    assert_eq!(deploy["status"], "COMPLETE");
    let phase = &deploy["phases"][0];
    assert_eq!(
        keys(phase),
        vec!["id", "name", "steps", "strategy", "status"]
    );
    assert_eq!(
        keys(&phase["steps"][0]),
        vec!["id", "status", "name", "message"]
    );
    assert_eq!(phase["steps"][0]["name"], "hello-0:[server]");
    let (code, backup) = b.get("/v1/plans/backup");
    assert_eq!((code, backup["status"].as_str()), (202, Some("WAITING")));
    let (code, body) = b.get("/v1/plans/nope");
    assert_eq!(
        (code, body),
        (404, Value::String("Plan nope not found".to_owned()))
    );

    // Pods: three tasks running, ids like hello-world__hello-0-server__<uuid>.
    let (code, pods) = b.get("/v1/pods");
    assert_eq!(code, 200);
    assert_eq!(pods, serde_json::json!(["hello-0", "world-0", "world-1"]));
    let (_, legacy) = b.get("/v1/pod");
    assert_eq!(legacy, pods);
    let (_, status) = b.get("/v1/pods/status");
    assert_eq!(keys(&status), vec!["service", "pods"]);
    assert_eq!(status["service"], "hello-world");
    let ids = b.task_ids();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for (name, (id, state)) in &ids {
        assert_eq!(state, "RUNNING");
        let rest = id
            .strip_prefix(&format!("hello-world__{name}__"))
            .unwrap_or_else(|| panic!("task id {id}"));
        assert_eq!(rest.len(), 36, "uuid suffix in {id}");
    }
    let (_, info) = b.get("/v1/pods/hello-0/info");
    let server = info
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["info"]["name"] == "hello-0-server")
        .unwrap();
    assert_eq!(
        server["info"]["taskId"]["value"],
        ids["hello-0-server"].0.as_str()
    );
    assert!(server["info"]["slaveId"]["value"].is_string());
    assert_eq!(server["status"]["state"], "TASK_RUNNING");
    let (code, _) = b.get("/v1/pods/hello-9/status");
    assert_eq!(code, 404);

    // The hello server answers on its dynamic port, with the greeting on its volume.
    let env = server["info"]["command"]["environment"]["variables"]
        .as_array()
        .unwrap();
    let port = env
        .iter()
        .find(|v| v["name"] == "PORT_HELLO")
        .and_then(|v| v["value"].as_str())
        .unwrap()
        .to_owned();
    let greeting = reqwest::blocking::get(format!("http://127.0.0.1:{port}/greetings"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        greeting.starts_with("hello from hello-0-server"),
        "{greeting}"
    );
    let volumes: Vec<_> = walk(&b.data().join("cluster/agents"))
        .into_iter()
        .filter(|p| p.ends_with("greetings"))
        .collect();
    assert_eq!(
        volumes.len(),
        3,
        "one greetings file per volume: {volumes:?}"
    );

    // State and configurations.
    let (code, fid) = b.get("/v1/state/frameworkId");
    assert_eq!(code, 200);
    assert_eq!(fid.as_array().map(Vec::len), Some(1));
    let (_, props) = b.get("/v1/state/properties");
    assert!(
        props
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "last-completed-update-type")
    );
    let (_, target) = b.get("/v1/configurations/targetId");
    let target = target[0].as_str().unwrap().to_owned();
    let (_, configs) = b.get("/v1/configurations");
    assert_eq!(configs, serde_json::json!([target]));
    let (code, spec) = b.get(&format!("/v1/configurations/{target}"));
    assert_eq!(code, 200);
    assert_eq!(spec["name"], "hello-world");
    assert_eq!(spec["pod-specs"][0]["type"], "hello");
    let (code, _) = b.get("/v1/configurations/not-a-uuid");
    assert_eq!(code, 400);
    let (code, health) = b.get("/v1/health");
    assert_eq!((code, &health["value"]), (200, &serde_json::json!(200)));

    // The CLI over the same API.
    let (out, _) = text(&b.cli(&["plan", "show", "deploy"]));
    assert!(
        out.starts_with("deploy (serial strategy) (COMPLETE)\n"),
        "{out}"
    );
    let (out, _) = text(&b.cli(&["pods", "status"]));
    assert!(out.contains("hello-0-server (RUNNING)"), "{out}");
    assert!(out.contains("hello-0-backup (NOT LAUNCHED)"), "{out}");
    let o = b.cli(&["config", "target-id"]);
    assert!(o.status.success());
    assert!(text(&o).0.contains(&target));
    let o = b.cli(&["pods", "info", "nope-0"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("Pod nope-0 not found"),
        "{:?}",
        text(&o)
    );

    // The log shows the offer evaluations in the PASS/FAIL form.
    let log = b.log();
    assert!(
        log.contains("evaluation stages for hello-0:[server]"),
        "{log}"
    );
    assert!(log.contains("API at http://127.0.0.1:"), "{log}");
}

#[test]
fn kill_9_of_the_scheduler_mid_deploy_and_after_completion_loses_nothing() {
    let mut b = Berth::new(21400);
    let options = b.dir.path().join("options.json");
    // Each server waits 2 s before serving, so world steps stay STARTING for a while.
    std::fs::write(&options, r#"{"service": {"sleep": 2}}"#).unwrap();
    let opts = options.display().to_string();
    b.start(&hello_world(), &["--options", &opts]);
    b.wait_for("hello-0 to run", Duration::from_secs(60), || {
        b.task_ids().contains_key("hello-0-server")
    });
    let hello = b.task_ids()["hello-0-server"].0.clone();
    b.kill9();

    // Restart mid-deploy: the deploy finishes, hello-0 is not relaunched.
    b.start(&hello_world(), &["--options", &opts]);
    b.wait_complete("deploy", Duration::from_secs(90));
    let ids = b.task_ids();
    assert_eq!(
        ids["hello-0-server"].0, hello,
        "a healthy task was relaunched"
    );
    assert_eq!(ids.len(), 3);
    let copies = b.live_copies();
    for t in ["hello-0-server", "world-0-server", "world-1-server"] {
        assert_eq!(copies.get(t), Some(&1), "live copies of {t}: {copies:?}");
    }
    let greetings_before = greetings(&b);

    // Restart after completion: nothing is relaunched, volumes are untouched.
    b.kill9();
    b.start(&hello_world(), &["--options", &opts]);
    b.wait_complete("deploy", Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(b.task_ids(), ids, "tasks changed after a restart");
    assert_eq!(greetings(&b), greetings_before, "volume contents changed");
    let copies = b.live_copies();
    for t in ["hello-0-server", "world-0-server", "world-1-server"] {
        assert_eq!(copies.get(t), Some(&1), "live copies of {t}: {copies:?}");
    }
    assert!(b.log().contains("reconciling 3 tasks"), "{}", b.log());
}

#[test]
fn bad_starts_write_nothing_and_say_why() {
    let b = Berth::new(21800);
    let run = |args: &[&str]| {
        let o = std::process::Command::new(common::berth_bin())
            .arg("run")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let data = b.data().display().to_string();
    let agents = b.agents.display().to_string();
    let hw = hello_world().display().to_string();

    // A spec that is not there.
    let (code, err) = run(&["--data-dir", &data, "/nonexistent/svc.yml"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("/nonexistent/svc.yml does not exist; give a svc.yml or a package"),
        "{err}"
    );

    // A port in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (code, err) = run(&[
        "--data-dir",
        &data,
        "--agents",
        &agents,
        "--listen",
        &addr,
        &hw,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(!b.data().exists(), "nothing may be written");

    // A malformed agents file.
    let bad_agents = b.dir.path().join("bad-agents.yml");
    std::fs::write(&bad_agents, "agents:\n  - id: x\n    cpus: lots\n").unwrap();
    let port = format!("127.0.0.1:{}", common::free_port());
    let (code, err) = run(&[
        "--data-dir",
        &data,
        "--agents",
        &bad_agents.display().to_string(),
        "--listen",
        &port,
        &hw,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad-agents.yml"), "{err}");
    assert!(!b.data().exists());

    // An invalid spec at first install.
    let spec = b.dir.path().join("svc.yml");
    std::fs::write(
        &spec,
        "name: broken\npods:\n  p:\n    count: 1\n    placement: 'hostname:NOPE'\n    tasks:\n      t:\n        goal: RUNNING\n        cmd: sleep 1\n        cpus: 0.1\n        memory: 32\n",
    )
    .unwrap();
    let (code, err) = run(&[
        "--data-dir",
        &data,
        "--agents",
        &agents,
        "--listen",
        &port,
        &spec.display().to_string(),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("PlacementRule") && err.contains("NOPE"),
        "{err}"
    );
    assert!(
        !b.data().join("state.redb").exists(),
        "nothing may be written"
    );

    // A data directory that cannot be created.
    let file = b.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("data").display().to_string();
    let (code, err) = run(&[
        "--data-dir",
        &under_file,
        "--agents",
        &agents,
        "--listen",
        &port,
        &hw,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot create the data directory"), "{err}");

    // A corrupt store.
    std::fs::create_dir_all(b.data()).unwrap();
    std::fs::write(b.data().join("state.redb"), b"this is not a database").unwrap();
    let (code, err) = run(&[
        "--data-dir",
        &data,
        "--agents",
        &agents,
        "--listen",
        &port,
        &hw,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("state.redb"), "{err}");
    assert_eq!(
        std::fs::read(b.data().join("state.redb")).unwrap(),
        b"this is not a database"
    );

    // A package option of the wrong type.
    let options = b.dir.path().join("options.json");
    std::fs::write(&options, r#"{"hello": {"count": "three"}}"#).unwrap();
    let fresh = b.dir.path().join("fresh").display().to_string();
    let (code, err) = run(&[
        "--data-dir",
        &fresh,
        "--options",
        &options.display().to_string(),
        "--listen",
        &port,
        &hw,
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("/hello/count"), "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn greetings(b: &Berth) -> Vec<String> {
    let mut v: Vec<String> = walk(&b.data().join("cluster/agents"))
        .into_iter()
        .filter(|p| p.ends_with("greetings") && p.display().to_string().contains("/volumes/"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    v.sort();
    v
}

/// A config template whose file name is built from options (`jvm_{{GC_KIND}}.options`) is
/// read once the spec is rendered, for every value of the option; a missing one is named.
#[test]
fn config_templates_named_by_options_are_found() {
    let b = Berth::new(29600);
    let pkg = b.dir.path().join("pkg");
    let copy = std::process::Command::new("cp")
        .args(["-r"])
        .arg(common::repo().join("examples/hello-world"))
        .arg(&pkg)
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::create_dir_all(pkg.join("conf")).unwrap();
    std::fs::write(pkg.join("conf/jvm_g1.options"), "-XX:+UseG1GC\n").unwrap();
    std::fs::write(pkg.join("conf/jvm_zgc.options"), "-XX:+UseZGC\n").unwrap();
    let svc = std::fs::read_to_string(pkg.join("svc.yml")).unwrap().replacen(
        "        health-check:",
        "        configs:\n          jvm:\n            template: conf/jvm_{{GC_KIND}}.options\n            dest: jvm.options\n        health-check:",
        1,
    );
    std::fs::write(pkg.join("svc.yml"), svc).unwrap();
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(pkg.join("config.json")).unwrap()).unwrap();
    config["properties"]["service"]["properties"]["gc_kind"] =
        serde_json::json!({"type": "string", "default": "g1", "description": "GC"});
    std::fs::write(pkg.join("config.json"), config.to_string()).unwrap();
    let mut env = std::fs::read_to_string(pkg.join("env.yml")).unwrap();
    env.push_str("GC_KIND: service.gc_kind\n");
    std::fs::write(pkg.join("env.yml"), env).unwrap();
    let pkg_arg = pkg.display().to_string();
    // `berth spec <command> --options <gc_kind = gc> <package>`.
    let spec = |command: &str, gc: &str| {
        let options = b.dir.path().join(format!("{gc}.json"));
        std::fs::write(&options, format!(r#"{{"service": {{"gc_kind": "{gc}"}}}}"#)).unwrap();
        let options = options.display().to_string();
        b.run_berth(&["spec", command, "--options", &options, &pkg_arg], &[])
    };

    for gc in ["g1", "zgc"] {
        let o = spec("check", gc);
        assert!(o.status.success(), "{gc}: {:?}", text(&o));
        let o = spec("render", gc);
        assert!(
            text(&o).0.contains(&format!("jvm_{gc}.options")),
            "{:?}",
            text(&o)
        );
    }
    let o = spec("check", "cms");
    assert!(!o.status.success());
    assert!(
        text(&o)
            .1
            .contains("\"conf/jvm_cms.options\" was not found"),
        "{:?}",
        text(&o)
    );
}
