//! Configuration updates of a running service through `POST /v1/update` and `berth update`:
//! options merged and rolled out pod by pod, refused updates that change nothing, and a
//! restart with the same command line that keeps the updated target.

use std::time::Duration;

use serde_json::json;

use crate::common::{Berth, hello_world, text};

const LONG: Duration = Duration::from_secs(90);

fn target_id(b: &Berth) -> String {
    let (code, v) = b.get("/v1/configurations/targetId");
    assert_eq!(code, 200, "{v}");
    v.as_str()
        .or_else(|| v[0].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a target id: {v}"))
}

/// One pod's entry of a dry run.
fn pod_preview<'a>(preview: &'a serde_json::Value, pod: &str) -> &'a serde_json::Value {
    preview["pods"]
        .as_array()
        .and_then(|p| p.iter().find(|e| e["pod"] == pod))
        .unwrap_or_else(|| panic!("{pod} not in {preview}"))
}

/// Every stored node and its value, through the API.
fn state_dump(b: &Berth) -> Vec<(String, String)> {
    let (code, tree) = b.get("/v1/state/tree");
    assert_eq!(code, 200, "{tree}");
    let mut nodes = Vec::new();
    collect_paths(&tree, &mut nodes);
    nodes.sort();
    nodes
        .into_iter()
        .map(|path| {
            let value = b
                .get_status(&format!("/v1/state/node?path={path}"))
                .map(|(_, v)| v)
                .unwrap_or_default();
            (path, value)
        })
        .collect()
}

fn collect_paths(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(p) = m.get("path").and_then(serde_json::Value::as_str) {
                out.push(p.to_owned());
            }
            for child in m.values() {
                collect_paths(child, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|c| collect_paths(c, out)),
        _ => {}
    }
}

/// The cpus of hello's server in a stored configuration.
fn hello_cpus(config: &serde_json::Value) -> Option<f64> {
    config["pod-specs"][0]["task-specs"][0]["resource-set"]["resource-specifications"][0]
        ["value"]["scalar"]["value"]
        .as_f64()
}

fn ids(b: &Berth) -> std::collections::BTreeMap<String, String> {
    b.task_ids()
        .into_iter()
        .map(|(name, (id, _))| (name, id))
        .collect()
}

#[test]
fn updates_roll_out_merge_options_refuse_bad_ones_and_survive_a_restart() {
    let mut b = Berth::new(31800);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let first = ids(&b);
    let first_target = target_id(&b);

    // A dry run changes nothing and says what the update will do.
    let options = b.dir.path().join("update.json");
    std::fs::write(&options, r#"{"hello": {"cpus": 0.3}}"#).unwrap();
    let before = state_dump(&b);
    let (code, preview) = b.post_json(
        "/v1/update?dryRun=true",
        &json!({"options": {"hello": {"cpus": 0.3}}}),
    );
    assert_eq!(code, 200, "{preview}");
    assert_eq!(preview["valid"], true, "{preview}");
    let hello_preview = pod_preview(&preview, "hello-0");
    assert_eq!(hello_preview["action"], "restart in place", "{preview}");
    assert!(
        hello_preview["changes"].to_string().contains("0.3"),
        "{preview}"
    );
    for world in ["world-0", "world-1"] {
        assert_eq!(pod_preview(&preview, world)["action"], "keep", "{preview}");
    }
    assert_eq!(preview["order"], json!(["hello-0"]));
    assert!(preview["diff"].as_str().unwrap_or_default().contains("0.3"));
    let o = b.cli(&[
        "update",
        "start",
        "--dry-run",
        "--options",
        options.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.starts_with("Dry run: the update is valid"), "{out}");
    assert!(
        out.contains("restart in place") && out.contains("Order: hello-0."),
        "{out}"
    );
    assert_eq!(state_dump(&b), before, "a dry run changed the stored state");
    assert_eq!(target_id(&b), first_target);
    assert_eq!(ids(&b), first);

    // The CLI: new cpus for hello; only hello-0 is relaunched, on its agent.
    let o = b.cli(&["update", "start", "--options", options.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.starts_with("Update started. Please use `berth update status` to view progress."),
        "{out}"
    );
    let second_target = target_id(&b);
    assert_ne!(second_target, first_target);
    let agent = b.agent_of("hello-0", "hello-0-server");
    b.wait_relaunched("hello-0-server", &first["hello-0-server"], LONG);
    b.wait_complete("deploy", LONG);
    assert_eq!(b.agent_of("hello-0", "hello-0-server"), agent);
    let second = ids(&b);
    for world in ["world-0-server", "world-1-server"] {
        assert_eq!(second[world], first[world], "{world} was relaunched");
    }
    let (_, target) = b.get("/v1/configurations/target");
    assert_eq!(hello_cpus(&target), Some(0.3), "{target}");
    let o = b.cli(&["update", "status"]);
    assert!(text(&o).0.starts_with("deploy ("), "{:?}", text(&o));

    // The API: options are merged into the current ones (hello keeps 0.3 cpus). The dry
    // run's prediction is what happens.
    let (code, preview) = b.post_json(
        "/v1/update?dryRun=true",
        &json!({"options": {"world": {"count": 3}}}),
    );
    assert_eq!(code, 200, "{preview}");
    assert_eq!(
        pod_preview(&preview, "hello-0")["action"],
        "keep",
        "{preview}"
    );
    let world2 = pod_preview(&preview, "world-2");
    assert_eq!(world2["action"], "launch", "{preview}");
    assert_eq!(preview["order"], json!(["world-2"]), "{preview}");
    let (code, body) = b.post(
        "/v1/update",
        Some(&json!({"options": {"world": {"count": 3}}}).to_string()),
    );
    assert_eq!(code, 200, "{body}");
    b.wait_for("world-2 runs", LONG, || {
        ids(&b).contains_key("world-2-server")
    });
    b.wait_complete("deploy", LONG);
    if let Some(predicted) = world2["agent"].as_str() {
        let (_, info) = b.get("/v1/pods/world-2/info");
        let host = info.to_string();
        assert!(host.contains(predicted), "predicted {predicted}: {info}");
    }
    let third = ids(&b);
    // Previews of what cannot happen: a fourth world pod has no agent left that the
    // placement rule allows; a validator refuses hello's count of 0.
    let (_, preview) = b.post_json(
        "/v1/update?dryRun=true",
        &json!({"options": {"world": {"count": 4}}}),
    );
    let world3 = pod_preview(&preview, "world-3");
    if world3["action"] == "blocked" {
        assert!(
            world3["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("hostname:UNIQUE"),
            "{preview}"
        );
    } else {
        assert_eq!(world3["action"], "launch", "{preview}");
        assert!(world3["agent"].is_null(), "{preview}");
    }
    let (code, preview) = b.post_json(
        "/v1/update?dryRun=true",
        &json!({"options": {"hello": {"count": 0}}}),
    );
    assert_eq!(code, 200, "{preview}");
    assert_eq!(preview["valid"], false, "{preview}");
    assert_eq!(
        pod_preview(&preview, "hello-0")["action"],
        "blocked",
        "{preview}"
    );
    assert!(!preview["errors"].as_array().unwrap().is_empty());
    assert_eq!(
        third["hello-0-server"], second["hello-0-server"],
        "hello relaunched"
    );
    let (_, target) = b.get("/v1/configurations/target");
    assert_eq!(hello_cpus(&target), Some(0.3), "{target}");
    assert_eq!(
        target["pod-specs"][1]["count"].as_u64(),
        Some(3),
        "{target}"
    );
    let third_target = target_id(&b);

    // Refused: options the schema does not allow, and a change the update validators
    // refuse. Nothing changes.
    let (code, body) = b.post(
        "/v1/update",
        Some(&json!({"options": {"hello": {"cpus": "lots"}}}).to_string()),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("/hello/cpus"), "{body}");
    let (code, body) = b.post(
        "/v1/update",
        Some(&json!({"options": {"hello": {"count": 0}}}).to_string()),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("hello"), "{body}");
    std::fs::write(&options, r#"{"hello": {"disk": 99}}"#).unwrap();
    let o = b.cli(&["update", "start", "--options", options.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("the update was refused"),
        "{:?}",
        text(&o)
    );
    // A CI gate: `spec check --against` runs the update validators against the target.
    let package = hello_world();
    let url = b.url();
    let check = |options: &str| {
        let file = b.dir.path().join("check.json");
        std::fs::write(&file, options).unwrap();
        b.cli(&[
            "spec",
            "check",
            "--against",
            &url,
            "--options",
            file.to_str().unwrap(),
            package.to_str().unwrap(),
        ])
    };
    let o = check(r#"{"hello": {"count": 0}}"#);
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("hello"), "{:?}", text(&o));
    let o = check(r#"{"hello": {"cpus": 0.5}}"#);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = b.cli(&[
        "spec",
        "check",
        "--against",
        "nope",
        package.to_str().unwrap(),
    ]);
    assert!(
        text(&o).1.contains("expected the URL of a running berth"),
        "{:?}",
        text(&o)
    );
    let (code, body) = b.post("/v1/update", Some(r#"{"opts": {}}"#));
    assert_eq!(code, 400, "{body}");
    assert_eq!(target_id(&b), third_target);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ids(&b), third, "a refused update relaunched tasks");

    // A rollback in the middle of a rollout relaunches only the pods already updated. The
    // canary strategy holds the world phase before each of its first two steps.
    let (code, body) = b.post(
        "/v1/update",
        Some(
            &json!({"options": {"world": {"cpus": 0.25, "strategy": "serial-canary"}}}).to_string(),
        ),
    );
    assert_eq!(code, 200, "{body}");
    let canary_target = target_id(&b);
    let o = b.cli(&["plan", "resume", "deploy", "world"]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_relaunched("world-0-server", &third["world-0-server"], LONG);
    b.wait_for("world-0 ready and world-1 held", LONG, || {
        b.step("deploy", "world-0:[server]").as_deref() == Some("COMPLETE")
    });
    let canaried = ids(&b);
    assert_eq!(canaried["world-1-server"], third["world-1-server"]);
    let o = b.cli(&["update", "rollback"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&third_target),
        "rolled back to the last deployed: {out}"
    );
    assert_eq!(target_id(&b), third_target);
    b.wait_relaunched("world-0-server", &canaried["world-0-server"], LONG);
    b.wait_complete("deploy", LONG);
    let rolled_back = ids(&b);
    for task in ["hello-0-server", "world-1-server", "world-2-server"] {
        assert_eq!(
            rolled_back[task], third[task],
            "{task} was relaunched by the rollback"
        );
    }
    let (code, history) = b.get("/v1/configurations/history");
    assert_eq!(code, 200);
    assert_eq!(history[0]["id"], third_target.as_str(), "{history}");
    assert_eq!(history[0]["how"], "rollback");
    assert_eq!(history[0]["outcome"], "deployed", "{history}");
    assert_eq!(history[1]["id"], canary_target.as_str());
    assert_eq!(history[1]["outcome"], "rolled back");
    assert!(
        history[1]["diff"]
            .as_str()
            .unwrap_or_default()
            .contains("0.25"),
        "{history}"
    );
    let o = b.cli(&["config", "history"]);
    let (out, _) = text(&o);
    assert!(out.starts_with("ID"), "{out}");
    assert!(
        out.contains("rolled back") && out.contains("install"),
        "{out}"
    );
    let (code, body) = b.post("/v1/update/rollback", Some(r#"{"configId": "nope"}"#));
    assert_eq!(code, 400, "{body}");
    let (code, body) = b.post(
        "/v1/update/rollback",
        Some(r#"{"configId": "00000000-0000-0000-0000-000000000001"}"#),
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = b.post(
        "/v1/update/rollback",
        Some(&json!({"configId": canary_target}).to_string()),
    );
    assert_eq!(code, 400, "never deployed: {body}");
    assert!(body.contains("never completed"), "{body}");
    let third = rolled_back;

    // The environment: `service.sleep` sets START_DELAY in every pod.
    std::fs::write(&options, r#"{"service": {"sleep": 1}}"#).unwrap();
    let o = b.cli(&["update", "start", "--options", options.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_for("every pod relaunched", LONG, || {
        let now = ids(&b);
        third.iter().all(|(task, id)| now.get(task) != Some(id))
    });
    b.wait_complete("deploy", LONG);
    let o = b.cli(&["task", "exec", "world-1", "printenv", "START_DELAY"]);
    assert_eq!(text(&o).0.trim(), "1", "{:?}", text(&o));
    let third = ids(&b);
    let third_target = target_id(&b);

    // A spec that does not parse: every error, with its line.
    let (code, body) = b.post_json(
        "/v1/update",
        &json!({"spec": "name: hello-world\npods:\n  hello:\n    count: many\n"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string().contains("svc.yml:4: pods.hello.count"),
        "{body}"
    );
    assert_eq!(target_id(&b), third_target);

    // A restart with the same command line keeps the updated target; nothing relaunches.
    b.stop();
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    assert_eq!(target_id(&b), third_target);
    assert_eq!(ids(&b), third);
}

/// Runs of a task the local cluster remembers (active and finished).
fn runs(b: &Berth, task: &str) -> usize {
    let (_, tasks) = b.get("/v1/tasks?completed=true");
    tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["name"] == task)
        .count()
}

/// `kill -9` of `berth run` right after an update, and right after a rollback, was accepted:
/// the next start (same command line) carries the rollout on, each pod relaunched once.
#[test]
fn kill_9_during_an_update_and_a_rollback() {
    let mut b = Berth::new(32200);
    b.start(&hello_world(), &[]);
    b.wait_complete("deploy", LONG);
    let first_target = target_id(&b);
    let worlds = ["world-0-server", "world-1-server"];
    for w in worlds {
        assert_eq!(runs(&b, w), 1);
    }

    for (step, (path, body)) in [
        ("/v1/update", r#"{"options": {"world": {"cpus": 0.3}}}"#),
        ("/v1/update/rollback", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let (code, answer) = b.post(path, Some(body).filter(|b| !b.is_empty()));
        assert_eq!(code, 200, "{answer}");
        std::thread::sleep(Duration::from_millis(150));
        b.kill9();
        b.start(&hello_world(), &[]);
        b.wait_complete("deploy", LONG);
        // Every world pod ran once more, and only once.
        b.wait_for("the rollout's runs", LONG, || {
            worlds.iter().all(|w| runs(&b, w) == step + 2)
        });
        std::thread::sleep(Duration::from_secs(1));
        for w in worlds {
            assert_eq!(runs(&b, w), step + 2, "{w} after the {body:?} and kill -9");
        }
        assert_eq!(runs(&b, "hello-0-server"), 1, "hello was relaunched");
        let target = target_id(&b);
        if step == 0 {
            assert_ne!(target, first_target, "the update was lost");
        } else {
            assert_eq!(target, first_target, "the rollback was lost");
        }
    }
    let (_, history) = b.get("/v1/configurations/history");
    assert_eq!(history[0]["how"], "rollback", "{history}");
    assert_eq!(history[0]["outcome"], "deployed", "{history}");
    assert_eq!(history[1]["outcome"], "rolled back", "{history}");

    // A new svc.yml whose world servers crash at once: the rollout is recorded as failed,
    // and a rollback brings the service back.
    let template = std::fs::read_to_string(hello_world().join("svc.yml")).unwrap();
    assert!(template.contains("cd world-data\n"));
    let broken = template.replacen("cd world-data\n", "cd world-data && exit 3\n", 1);
    let (code, body) = b.post_json("/v1/update", &json!({ "spec": broken }));
    assert_eq!(code, 200, "{body}");
    b.wait_for("the rollout recorded as failed", LONG, || {
        let (_, history) = b.get("/v1/configurations/history");
        history[0]["outcome"] == "failed"
    });
    let o = b.cli(&["update", "rollback"]);
    assert!(o.status.success(), "{:?}", text(&o));
    b.wait_complete("deploy", LONG);
    assert_eq!(target_id(&b), first_target);
}
