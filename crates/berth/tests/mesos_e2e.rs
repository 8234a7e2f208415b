//! `berth run --master` against the Mesos master double: the end-to-end scenarios of the local
//! cluster, and the faults Mesos brings. Every call berth sends and every event the double
//! sends is checked against Mesos's own `.proto` files.

use std::path::Path;
use std::time::Duration;

use berth_cluster::sim::SimAgentSpec;
use berth_mesos::scheduler::CallType;
use berth_mesos_double::{DoubleOptions, MesosDouble, Schema};

use crate::common::{Berth, hello_world};

/// A runtime for the double, kept alive for the test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn schema() -> Schema {
    let dir = berth_mesos_double::proto::default_proto_dir(Path::new(env!("CARGO_MANIFEST_DIR")));
    Schema::load(&dir).expect("Mesos protos load")
}

/// A double with `masters` masters and three agents in zones a, b, c.
fn double(rt: &tokio::runtime::Runtime, masters: usize) -> MesosDouble {
    double_offering_every(rt, masters, Duration::from_millis(50))
}

fn double_offering_every(
    rt: &tokio::runtime::Runtime,
    masters: usize,
    offer_interval: Duration,
) -> MesosDouble {
    let options = DoubleOptions {
        masters,
        heartbeat_secs: 0.5,
        offer_interval,
        ..DoubleOptions::default()
    };
    double_with(rt, SimAgentSpec::many(3, &["a", "b", "c"]), options)
}

/// A double of these agents and options, checking every call and event against the protos.
fn double_with(
    rt: &tokio::runtime::Runtime,
    agents: Vec<SimAgentSpec>,
    options: DoubleOptions,
) -> MesosDouble {
    let options = DoubleOptions {
        schema: Some(schema()),
        ..options
    };
    rt.block_on(MesosDouble::start(agents, options))
        .expect("double starts")
}

/// `berth run` arguments as the `&str`s `Berth` takes.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn run_args(master: &str) -> Vec<String> {
    vec![
        "--master".to_owned(),
        master.to_owned(),
        "--failover-timeout".to_owned(),
        "30".to_owned(),
    ]
}

fn start(berth: &mut Berth, master: &str) {
    let args = run_args(master);
    let args = strs(&args);
    berth.start(&hello_world(), &args);
}

fn assert_no_violations(d: &MesosDouble, berth: &Berth) {
    let v = d.violations();
    assert!(v.is_empty(), "proto violations: {v:#?}\n{}", berth.log());
}

/// Task name → (task id, state) of the tasks running in the double.
fn live(d: &MesosDouble) -> std::collections::BTreeMap<String, String> {
    d.sim()
        .live_tasks()
        .into_iter()
        .map(|(name, id, _agent)| (name, id))
        .collect()
}

/// The agent the live task with this id runs on.
fn agent_of(d: &MesosDouble, task_id: &str) -> Option<String> {
    d.sim()
        .live_tasks()
        .into_iter()
        .find(|(_, id, _)| id == task_id)
        .map(|(_, _, agent)| agent)
}

/// The end of a scenario: healthy, no proto violation, stopped.
fn healthy_and_stopped(d: &MesosDouble, berth: &mut Berth) {
    let (code, _) = berth.get("/v1/health");
    assert_eq!(code, 200);
    assert_no_violations(d, berth);
    berth.stop();
}

#[test]
fn deploy_restart_and_resubscribe_with_the_same_framework() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let tasks = live(&d);
    assert_eq!(tasks.len(), 3, "hello-0, world-0, world-1: {tasks:?}");
    let api: std::collections::BTreeMap<String, String> = berth
        .task_ids()
        .into_iter()
        .map(|(name, (id, _))| (name, id))
        .collect();
    let api_ids: Vec<&String> = api.values().collect();
    for id in tasks.values() {
        assert!(api_ids.contains(&id), "{id} not in the API's tasks {api:?}");
    }
    // `berth task` on Mesos: the scheduler's own record of its tasks.
    let o = berth.cli(&["task"]);
    let (out, err) = crate::common::text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    for id in tasks.values() {
        assert!(out.contains(id.as_str()), "{id} not listed:\n{out}");
    }
    assert!(
        out.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(3) == Some("R")),
        "{out}"
    );
    let framework = d.sim().framework_id().expect("framework");
    assert!(d.count(CallType::Accept) >= 3);
    assert!(d.count(CallType::Acknowledge) >= 3, "{:?}", d.calls());
    let (code, _) = berth.get("/v1/health");
    assert_eq!(code, 200);

    // kill -9 and start again: the same framework id, reconciliation, no relaunch.
    berth.kill9();
    berth.wait_for(
        "the double notices the disconnection",
        Duration::from_secs(10),
        || !d.is_connected(),
    );
    start(&mut berth, &d.master_arg());
    berth.wait_for("re-subscribed", Duration::from_secs(20), || {
        d.subscriptions() >= 2 && d.is_connected()
    });
    berth.wait_complete("deploy", Duration::from_secs(30));
    assert_eq!(d.sim().framework_id().as_deref(), Some(framework.as_str()));
    assert_eq!(live(&d), tasks, "nothing relaunched");
    assert!(d.count(CallType::Reconcile) >= 1);

    // The stream breaks: berth subscribes again by itself.
    let before = d.subscriptions();
    d.drop_connection();
    berth.wait_for(
        "re-subscribed after the stream broke",
        Duration::from_secs(20),
        || d.subscriptions() > before && d.is_connected(),
    );
    assert_eq!(live(&d), tasks, "nothing relaunched");
    assert_no_violations(&d, &berth);
    berth.stop();
}

#[test]
fn master_failover_mid_deploy_and_an_accept_lost_with_the_connection() {
    let rt = runtime();
    // Offers come slowly, so that the leader changes while the deploy is under way.
    let d = double_offering_every(&rt, 2, Duration::from_millis(400));
    let urls = d.urls();
    // The follower first: its 307 leads to the leader.
    let master = format!("{},{}", urls[1], urls[0]);
    d.drop_connection_at_accept(2);
    let mut berth = Berth::new(crate::common::free_port());
    // No offer kept back for the next step: each step waits for the next offer.
    berth
        .env
        .push(("OFFER_HOLD_COUNT".to_owned(), "0".to_owned()));
    start(&mut berth, &master);
    berth.wait_for("a first launch", Duration::from_secs(20), || {
        d.count(CallType::Accept) >= 1
    });
    let framework = d.sim().framework_id().expect("framework");
    assert_ne!(berth.plan_status("deploy"), "COMPLETE", "still deploying");
    d.fail_over();
    berth.wait_for(
        "subscribed again after each break",
        Duration::from_secs(30),
        || d.subscriptions() >= 3 && d.is_connected(),
    );
    berth.wait_complete("deploy", Duration::from_secs(60));
    assert_eq!(d.sim().framework_id().as_deref(), Some(framework.as_str()));
    let tasks = live(&d);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    healthy_and_stopped(&d, &mut berth);
}

#[test]
fn crashed_task_is_relaunched_in_place_and_a_lost_agent_recovers_elsewhere() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let before = berth.task_ids();
    let (hello_id, _) = before["hello-0-server"].clone();
    let hello_agent = agent_of(&d, &hello_id).expect("hello runs");
    d.sim()
        .task_status("hello-0-server", berth_mesos::TaskState::TaskFailed)
        .expect("crash");
    let relaunched = berth.wait_relaunched("hello-0-server", &hello_id, Duration::from_secs(30));
    assert_eq!(agent_of(&d, &relaunched), Some(hello_agent), "in place");

    // The agent of world-0 is gone for good: the operator replaces the pod elsewhere.
    let (world_id, _) = berth.task_ids()["world-0-server"].clone();
    let world_agent = agent_of(&d, &world_id).expect("world-0 runs");
    d.sim().agent_down(&world_agent);
    berth.wait_for("world-0 unreachable", Duration::from_secs(20), || {
        berth
            .task_ids()
            .get("world-0-server")
            .is_some_and(|(_, state)| state != "RUNNING")
    });
    let (code, body) = berth.post("/v1/pod/world-0/replace", None);
    assert_eq!(code, 200, "{body}");
    let moved = berth.wait_relaunched("world-0-server", &world_id, Duration::from_secs(60));
    let agent_now = agent_of(&d, &moved).expect("world-0 runs again");
    assert_ne!(agent_now, world_agent, "replaced on another agent");
    assert_no_violations(&d, &berth);
    berth.stop();
}

#[test]
fn uninstall_ends_in_teardown_and_releases_everything() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let reserved: usize = (0..3)
        .map(|i| d.sim().reservations(&format!("agent-{i}")).len())
        .sum();
    assert!(reserved > 0);
    berth.stop();
    let args = run_args(&d.master_arg());
    let mut args = strs(&args);
    args.push("--uninstall");
    let out = berth.run_once(&hello_world(), &args);
    let (stdout, stderr) = crate::common::text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("uninstalled"), "{stdout}");
    assert_eq!(d.count(CallType::Teardown), 1, "{:?}", d.calls());
    let left: Vec<String> = (0..3)
        .flat_map(|i| d.sim().reservations(&format!("agent-{i}")))
        .collect();
    assert!(left.is_empty(), "reservations left: {left:?}");
    assert!(live(&d).is_empty(), "tasks left: {:?}", live(&d));
    assert_no_violations(&d, &berth);
}

#[test]
fn unreachable_refusing_and_malformed_masters() {
    let rt = runtime();
    // Unreachable: the API answers, health says why, nothing is lost.
    let mut berth = Berth::new(crate::common::free_port());
    let nobody = format!("http://127.0.0.1:{}", crate::common::free_port());
    start(&mut berth, &nobody);
    berth.wait_for("health names the master", Duration::from_secs(20), || {
        matches!(berth.get_status("/v1/health?verbose=true"),
            Some((500, body)) if body.contains("no Mesos master reachable"))
    });
    berth.stop();

    // Refused (401): berth exits with the master's own words.
    let d = double(&rt, 1);
    d.refuse_subscriptions(Some((401, "Unauthorized: the secret does not match")));
    let mut refused = Berth::new(crate::common::free_port());
    let args = run_args(&d.master_arg());
    let args = strs(&args);
    refused.spawn(&hello_world(), &args);
    let status = refused.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let log = refused.log();
    assert!(
        log.contains("HTTP 401") && log.contains("Unauthorized: the secret does not match"),
        "{log}"
    );

    // A master that asks for credentials: refused without them, subscribed with them.
    let d = double(&rt, 1);
    d.require_credentials("hello-world-principal", "s3cret");
    let mut authed = Berth::new(crate::common::free_port());
    let secret = authed.dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").expect("secret file");
    let mut args = run_args(&d.master_arg());
    args.extend(["--secret-file".to_owned(), secret.display().to_string()]);
    let args = strs(&args);
    authed.start(&hello_world(), &args);
    authed.wait_complete("deploy", Duration::from_secs(60));
    assert_no_violations(&d, &authed);
    authed.stop();

    // Malformed --master values: the part that is wrong is named, nothing starts.
    for (bad, part) in [
        ("zk://z1:x/mesos", "z1:x"),
        ("m1:5050", "a scheme is needed"),
        ("http://m1:5050/api", "a path is not allowed"),
    ] {
        let out = refused.run_once(&hello_world(), &["--master", bad]);
        let (_, stderr) = crate::common::text(&out);
        assert!(!out.status.success());
        assert!(stderr.contains(part), "{bad}: {stderr}");
    }
}

#[test]
fn leader_found_in_zookeeper_and_updates_sent_again_until_acknowledged() {
    let rt = runtime();
    let options = DoubleOptions {
        masters: 2,
        heartbeat_secs: 0.5,
        resend_interval: Duration::from_millis(300),
        ..DoubleOptions::default()
    };
    let d = double_with(&rt, SimAgentSpec::many(3, &["a", "b", "c"]), options);
    let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, Into::into);
    let zk = berth_zk_server::ZkServer::builder()
        .base_dir(base)
        .start()
        .expect("ZooKeeper starts");
    let _registration = rt
        .block_on(d.register_in_zookeeper(&zk.connect_string(), "/mesos"))
        .expect("masters registered");
    // Acknowledgements are lost for a while: the agents send the updates again and again.
    d.set_ignore_acks(true);
    let mut berth = Berth::new(crate::common::free_port());
    let master = format!("zk://{}/mesos", zk.connect_string());
    start(&mut berth, &master);
    berth.wait_complete("deploy", Duration::from_secs(60));
    let tasks = live(&d);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    std::thread::sleep(Duration::from_millis(1200));
    assert!(d.sim().unacknowledged() > 0, "updates still unacknowledged");
    assert_eq!(live(&d), tasks, "duplicates change nothing");
    d.set_ignore_acks(false);
    berth.wait_for("every update acknowledged", Duration::from_secs(20), || {
        d.sim().unacknowledged() == 0
    });
    assert_eq!(live(&d), tasks, "nothing relaunched");
    healthy_and_stopped(&d, &mut berth);
}

#[test]
fn scaling_down_decommissions_the_pod_and_releases_its_reservations() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let reserved = |d: &MesosDouble| -> usize {
        (0..3)
            .map(|i| d.sim().reservations(&format!("agent-{i}")).len())
            .sum()
    };
    let before = reserved(&d);
    berth.stop();
    let options = berth.options(r#"{"world": {"count": 1}}"#);
    let mut args = run_args(&d.master_arg());
    args.extend(["--options".to_owned(), options]);
    let args = strs(&args);
    berth.start(&hello_world(), &args);
    berth.wait_complete("decommission", Duration::from_secs(60));
    berth.wait_complete("deploy", Duration::from_secs(30));
    let names: Vec<String> = live(&d).into_keys().collect();
    assert_eq!(names, ["hello-0-server", "world-0-server"]);
    berth.wait_for(
        "world-1's reservations released",
        Duration::from_secs(20),
        || reserved(&d) < before,
    );
    assert_no_violations(&d, &berth);
    berth.stop();
}

#[test]
fn images_and_virtual_networks_run_on_mesos_only() {
    let peer = crate::common::peer_helloworld();
    let berth = Berth::new(crate::common::free_port());
    let options = berth.options(r#"{"service": {"yaml": "overlay"}}"#);
    // The check says which backend runs what.
    let local = berth.run_berth(
        &[
            "spec",
            "check",
            "--options",
            &options,
            &peer.display().to_string(),
        ],
        &[],
    );
    let (_, stderr) = crate::common::text(&local);
    assert!(!local.status.success());
    assert!(
        stderr.contains("not supported by berth on the local cluster: pods.overlay.image")
            && stderr.contains("they run on Mesos: berth run --master"),
        "{stderr}"
    );
    let mesos = berth.run_berth(
        &[
            "spec",
            "check",
            "--backend",
            "mesos",
            "--options",
            &options,
            &peer.display().to_string(),
        ],
        &[],
    );
    let (stdout, stderr) = crate::common::text(&mesos);
    assert!(mesos.status.success(), "{stdout}{stderr}");

    let rt = runtime();
    // The spec asks for fixed host ports (4044, 4045): agents offer ports as Mesos agents do.
    let agents = SimAgentSpec::many(3, &["a", "b", "c"])
        .into_iter()
        .map(|mut a| {
            a.ports = vec![berth_mesos::Range {
                begin: 1025,
                end: 32000,
            }];
            a
        })
        .collect();
    let d = double_with(&rt, agents, DoubleOptions::default());
    let mut berth = berth;
    let mut args = run_args(&d.master_arg());
    args.extend(["--options".to_owned(), options]);
    let args = strs(&args);
    berth.start(&peer, &args);
    // The getter checks the others and finishes (the double runs no commands: it says so).
    berth.wait_for("the getter runs", Duration::from_secs(60), || {
        d.sim().task_info("getter-0-check-comm").is_some()
    });
    d.sim()
        .task_status("getter-0-check-comm", berth_mesos::TaskState::TaskFinished)
        .expect("getter finishes");
    berth.wait_complete("deploy", Duration::from_secs(60));
    let launches = d.sim().launches();
    let server = launches
        .iter()
        .find(|t| t.name == "overlay-vip-0-server")
        .expect("overlay-vip launched");
    let image = server
        .container
        .as_ref()
        .and_then(|c| c.mesos.as_ref())
        .and_then(|m| m.image.as_ref())
        .and_then(|i| i.docker.as_ref())
        .map(|d| d.name.as_str());
    assert_eq!(image, Some("python:3.7"));
    assert_no_violations(&d, &berth);
    // The pod's executor joins the network (the ACCEPT the double checked carried it).
    let (_, info) = berth.get("/v1/pod/overlay-vip-0/info");
    let text = info.to_string();
    assert!(
        text.contains(
            r#""networkInfos":[{"name":"dcos","labels":{"labels":[{"key":"key0","value":"val0"}"#
        ),
        "{text}"
    );
    berth.stop();
}

/// What the Mesos fetcher and default executor do with a launched task, done by hand: fetch
/// every URI into the sandbox, then run the command's first step (`./berth-bootstrap
/// bootstrap`) with the task's environment.
fn fetch_and_bootstrap(task: &berth_mesos::TaskInfo, sandbox: &Path) -> std::process::Output {
    let command = task.command.as_ref().expect("command");
    let client = reqwest::blocking::Client::new();
    for uri in &command.uris {
        let bytes = client
            .get(&uri.value)
            .send()
            .and_then(reqwest::blocking::Response::error_for_status)
            .and_then(reqwest::blocking::Response::bytes)
            .unwrap_or_else(|e| panic!("fetch {}: {e}", uri.value));
        let out = sandbox.join(uri.output_file.as_deref().expect("output_file"));
        std::fs::create_dir_all(out.parent().expect("parent")).expect("dir");
        std::fs::write(&out, &bytes).expect("write");
        if uri.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
    let first = command.value.split(" && ").next().expect("first step");
    assert_eq!(first, "./berth-bootstrap bootstrap");
    let env = command.environment.as_ref().expect("environment");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(first)
        .current_dir(sandbox)
        .env_clear()
        .env("MESOS_SANDBOX", sandbox)
        .envs(env.variables.iter().map(|v| (&v.name, &v.value)))
        .output()
        .expect("bootstrap runs")
}

#[test]
fn config_templates_are_fetched_from_the_advertised_scheduler_and_rendered() {
    let rt = runtime();
    let d = double(&rt, 1);
    let mut berth = Berth::new(crate::common::free_port());
    let dir = berth.dir.path().join("templated");
    std::fs::create_dir_all(dir.join("templates")).expect("dir");
    std::fs::write(
        dir.join("svc.yml"),
        "name: templated\npods:\n  app:\n    count: 1\n    tasks:\n      server:\n        \
         goal: RUNNING\n        cmd: exec sleep 1000\n        cpus: 0.1\n        memory: 32\n        \
         env:\n          GREETING: hello\n        configs:\n          app:\n            \
         template: templates/app.conf\n            dest: conf/app.conf\n",
    )
    .expect("svc.yml");
    std::fs::write(
        dir.join("templates/app.conf"),
        "greeting={{GREETING}}\ntask={{TASK_NAME}}\nport={{SCHEDULER_API_PORT}}\n",
    )
    .expect("template");
    let advertised = berth.url();
    let mut args = run_args(&d.master_arg());
    args.extend(["--advertise-url".to_owned(), advertised.clone()]);
    let args = strs(&args);
    berth.start(&dir.join("svc.yml"), &args);
    berth.wait_complete("deploy", Duration::from_secs(60));
    let task = d
        .sim()
        .launches()
        .into_iter()
        .find(|t| t.name == "app-0-server")
        .expect("launched");
    let uris: Vec<&str> = task
        .command
        .as_ref()
        .expect("command")
        .uris
        .iter()
        .map(|u| u.value.as_str())
        .collect();
    assert!(
        uris.iter().all(|u| u.starts_with(&advertised)),
        "every artifact from the advertised URL: {uris:?}"
    );
    let sandbox = berth.dir.path().join("sandbox");
    std::fs::create_dir_all(&sandbox).expect("sandbox");
    let out = fetch_and_bootstrap(&task, &sandbox);
    let (stdout, stderr) = crate::common::text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let rendered = std::fs::read_to_string(sandbox.join("conf/app.conf")).expect("rendered");
    assert_eq!(
        rendered,
        format!("greeting=hello\ntask=app-0-server\nport={}\n", berth.port)
    );
    assert_no_violations(&d, &berth);
    berth.stop();
}

#[test]
fn restart_rescinds_an_agent_removed_by_the_operator_and_the_failover_timeout() {
    let rt = runtime();
    let d = double(&rt, 1);
    // The first offer rounds are rescinded as soon as they are sent.
    d.rescind_offer_rounds(3);
    let mut berth = Berth::new(crate::common::free_port());
    let args = [
        "--master".to_owned(),
        d.master_arg(),
        "--failover-timeout".to_owned(),
        "2".to_owned(),
    ];
    let args = strs(&args);
    berth.start(&hello_world(), &args);
    berth.wait_complete("deploy", Duration::from_secs(60));
    assert!(d.rescinded() > 0, "offers were rescinded");
    assert_eq!(live(&d).len(), 3);

    // pod restart: relaunched in place.
    let before = berth.task_ids();
    let (hello_id, _) = before["hello-0-server"].clone();
    let hello_agent = agent_of(&d, &hello_id).expect("hello runs");
    let (code, body) = berth.post("/v1/pod/hello-0/restart", None);
    assert_eq!(code, 200, "{body}");
    let restarted = berth.wait_relaunched("hello-0-server", &hello_id, Duration::from_secs(30));
    assert_eq!(
        agent_of(&d, &restarted),
        Some(hello_agent),
        "restarted in place"
    );

    // The operator removes world-0's agent (TASK_GONE_BY_OPERATOR): world-0 moves elsewhere.
    let (world_id, _) = berth.task_ids()["world-0-server"].clone();
    let world_agent = agent_of(&d, &world_id).expect("world-0 runs");
    d.sim().drain_agent(&world_agent);
    let moved = berth.wait_relaunched("world-0-server", &world_id, Duration::from_secs(60));
    let now_on = agent_of(&d, &moved).expect("world-0 runs again");
    assert_ne!(now_on, world_agent);

    // Away longer than the failover timeout: Mesos removed the framework; berth says so.
    berth.kill9();
    berth.wait_for("the framework removed", Duration::from_secs(20), || {
        d.sim().framework_id().is_none()
    });
    berth.spawn(&hello_world(), &args);
    let status = berth.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let log = berth.log();
    assert!(log.contains("Framework has been removed"), "{log}");
    assert_no_violations(&d, &berth);
}

#[test]
fn https_masters_with_a_trusted_authority() {
    let rt = runtime();
    let mut berth = Berth::new(crate::common::free_port());
    let (cert_file, cert, key) = crate::common::self_signed(berth.dir.path());
    let options = DoubleOptions {
        tls: Some((cert, key)),
        ..DoubleOptions::default()
    };
    let d = double_with(&rt, SimAgentSpec::many(3, &["a", "b", "c"]), options);
    assert!(d.master_arg().starts_with("https://"));
    // Not trusted: nothing is launched, health names the failure.
    start(&mut berth, &d.master_arg());
    berth.wait_for(
        "health names the TLS failure",
        Duration::from_secs(20),
        || {
            matches!(berth.get_status("/v1/health?verbose=true"),
            Some((500, body)) if body.contains("no Mesos master reachable"))
        },
    );
    assert_eq!(d.subscriptions(), 0);
    berth.stop();
    // Trusted with --master-ca-file: deployed over HTTPS.
    let mut args = run_args(&d.master_arg());
    args.extend([
        "--master-ca-file".to_owned(),
        cert_file.display().to_string(),
    ]);
    let args = strs(&args);
    berth.start(&hello_world(), &args);
    berth.wait_complete("deploy", Duration::from_secs(60));
    assert_eq!(live(&d).len(), 3);
    healthy_and_stopped(&d, &mut berth);
}

/// On Mesos, `berth task log|ls|cat|exec` and the files routes reach the task's agent: its
/// address from the master, the sandbox from the agent's state, the files from its files API,
/// commands through nested container sessions of its operator API.
#[test]
fn sandboxes_logs_and_exec_through_the_agents() {
    let rt = runtime();
    let root = tempfile::tempdir().expect("temp dir");
    let options = DoubleOptions {
        heartbeat_secs: 0.5,
        offer_interval: Duration::from_millis(50),
        agent_root: Some(root.path().to_path_buf()),
        ..DoubleOptions::default()
    };
    let d = double_with(&rt, SimAgentSpec::many(3, &["a", "b", "c"]), options);
    let mut berth = Berth::new(crate::common::free_port());
    start(&mut berth, &d.master_arg());
    berth.wait_complete("deploy", Duration::from_secs(60));
    let hello = berth.task_ids()["hello-0-server"].0.clone();
    let ok = |o: &std::process::Output| {
        let (out, err) = crate::common::text(o);
        assert!(o.status.success(), "{out}\n{err}");
        out
    };

    // Logs and files, as on the local cluster.
    let out = ok(&berth.cli(&["task", "log", "hello-0"]));
    assert!(out.contains(&format!("Received task {hello}")), "{out}");
    let out = ok(&berth.cli(&["task", "ls", "hello-0"]));
    assert!(out.lines().any(|l| l.trim() == "stdout"), "{out}");
    assert!(out.lines().any(|l| l.trim() == "stderr"), "{out}");
    let out = ok(&berth.cli(&["task", "cat", "hello-0", "stderr"]));
    assert!(out.contains("Starting hello-0-server"), "{out}");
    let (code, v) = berth.get(&format!(
        "/v1/tasks/{hello}/files/read?path=stdout&offset=-1"
    ));
    assert_eq!(code, 200, "{v}");
    let size = v["offset"].as_u64().expect("the size");
    assert!(size > 0, "{v}");
    let (code, v) = berth.get(&format!(
        "/v1/tasks/{hello}/files/read?path=stdout&offset={}",
        size + 10
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"], "");
    let (code, body) = berth
        .get_status(&format!("/v1/tasks/{hello}/files/download?path=stdout"))
        .expect("download");
    assert_eq!(code, 200);
    assert_eq!(body.len() as u64, size);
    assert!(body.contains(&format!("Received task {hello}")), "{body}");
    let (code, body) = berth.get(&format!("/v1/tasks/{hello}/files/read?path=../../x"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = berth.get(&format!("/v1/tasks/{hello}/files/read?path=no-such-file"));
    assert_eq!(code, 404, "{body}");
    assert!(body.to_string().contains("no-such-file"), "{body}");
    let o = berth.cli(&["task", "cat", "hello-0", "no-such-file"]);
    assert!(!o.status.success());

    // Exec: output, errors and the exit code; input; a terminal; the task's sandbox.
    let o = berth.cli(&[
        "task",
        "exec",
        "hello-0",
        "sh",
        "-c",
        "echo out; echo err >&2; pwd; exit 3",
    ]);
    let (out, err) = crate::common::text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(out.starts_with("out\n"), "{out}");
    assert!(out.trim_end().ends_with(&format!("tasks/{hello}")), "{out}");
    assert!(err.contains("err"), "{err}");
    let mut child = std::process::Command::new(crate::common::berth_bin())
        .args(["task", "exec", "-i", "hello-0", "tr", "a-z", "A-Z"])
        .env("BERTH_URL", berth.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("exec -i");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello mesos\n").expect("write");
    }
    let o = child.wait_with_output().expect("exec -i ends");
    assert!(
        o.status.success(),
        "{:?} {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        berth.log()
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "HELLO MESOS\n");
    let out = ok(&berth.cli(&["task", "exec", "-t", "hello-0", "tty"]));
    assert!(out.contains("/dev/pts/"), "{out}");
    // A session whose client goes away ends on the agent too.
    let mut abandoned = std::process::Command::new(crate::common::berth_bin())
        .args(["task", "exec", "-i", "-t", "hello-0", "sleep", "4343"])
        .env("BERTH_URL", berth.url())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("exec -i -t");
    let running = || {
        std::process::Command::new("pgrep")
            .args(["-f", "^sleep 4343$"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    berth.wait_for("the exec'd sleep", Duration::from_secs(30), running);
    let _ = abandoned.kill();
    let _ = abandoned.wait();
    berth.wait_for(
        "the abandoned session to end",
        Duration::from_secs(10),
        || !running(),
    );
    let o = berth.cli(&["task", "exec", "hello-0", "no-such-program"]);
    assert!(!o.status.success());
    assert!(
        crate::common::text(&o).1.contains("no-such-program"),
        "{:?}",
        crate::common::text(&o)
    );
    healthy_and_stopped(&d, &mut berth);
}
