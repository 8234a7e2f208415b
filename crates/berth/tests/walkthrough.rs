//! The hello-world walkthrough (`examples/hello-world/README.md`) as a new user follows it:
//! every shell command of its code blocks, in order, run as written against a real `berth
//! run` (only `cargo run --release --` and `target/release/berth` become the built binary).
//! The test refuses a README whose commands it does not know, so the two stay together.

use crate::common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Berth, berth_bin, hello_world, repo};
use serde_json::Value;

const LONG: Duration = Duration::from_secs(120);

/// The shell commands of the README's `sh` blocks, continuation lines joined, comments and
/// here-documents kept as one command.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("examples/hello-world/README.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut current = String::new();
    let mut heredoc: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(end) = &heredoc {
            current.push('\n');
            current.push_str(line);
            if line == end {
                heredoc = None;
                commands.push(std::mem::take(&mut current));
            }
            continue;
        }
        let code = strip_comment(line).trim_end();
        if code.trim().is_empty() {
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(code.trim_start().trim_end_matches('\\').trim_end());
        if code.ends_with('\\') {
            continue;
        }
        if let Some((_, end)) = current.split_once("<<'") {
            heredoc = Some(end.trim_end_matches('\'').to_owned());
            continue;
        }
        commands.push(std::mem::take(&mut current));
    }
    commands
}

/// A line without its trailing `# comment` (a `#` after whitespace, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let bytes = line.as_bytes();
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || bytes[i - 1] == b' ' => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The walkthrough's working directory: `berth` on the PATH, `berth-data` the data
/// directory, `examples` the repository's.
struct Shell<'a> {
    b: &'a Berth,
    path: String,
}

impl<'a> Shell<'a> {
    fn new(b: &'a Berth) -> Self {
        let bin = b.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let _ = std::os::unix::fs::symlink(berth_bin(), bin.join("berth"));
        let _ = std::os::unix::fs::symlink(b.data(), b.dir.path().join("berth-data"));
        let _ = std::os::unix::fs::symlink(repo().join("examples"), b.dir.path().join("examples"));
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Shell { b, path }
    }

    /// Runs a README command as written (the release binary is the one under test).
    fn run(&self, command: &str) -> Output {
        let command = command.replace("target/release/berth", "berth");
        Command::new("bash")
            .args(["-c", &command])
            .current_dir(self.b.dir.path())
            .env("PATH", &self.path)
            .env("BERTH_URL", self.b.url())
            .output()
            .expect("bash runs")
    }

    /// Runs it and expects success; returns stdout.
    fn ok(&self, command: &str) -> String {
        let o = self.run(command);
        let (out, err) = common::text(&o);
        assert!(
            o.status.success(),
            "`{command}` failed: {out}\n{err}\n{}",
            self.b.log()
        );
        out
    }
}

fn env_value(info: &Value, task: &str, name: &str) -> Option<String> {
    info.as_array()?.iter().find_map(|t| {
        let ti = &t["info"];
        if ti["name"] != task {
            return None;
        }
        ti["command"]["environment"]["variables"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["value"].as_str())
            .map(str::to_owned)
    })
}

#[test]
fn every_command_of_the_hello_world_walkthrough_works_in_order() {
    let mut b = Berth::new(28800);
    let commands = readme_commands();
    let shell_dir = b.dir.path().to_path_buf();
    let mut done = Vec::new();
    let step = |b: &mut Berth, command: &str| {
        let shell = Shell::new(b);
        match command {
            "cargo run --release -- run examples/hello-world" => {
                b.start(&hello_world(), &[]);
                b.wait_complete("deploy", LONG);
            }
            "berth plan show" => {
                let out = shell.ok(command);
                assert!(
                    out.starts_with("deploy (serial strategy) (COMPLETE)"),
                    "{out}"
                );
                assert!(out.contains("world-1:[server] (COMPLETE)"), "{out}");
            }
            "berth pods status" => {
                let out = shell.ok(command);
                assert!(out.contains("hello-0-backup (NOT LAUNCHED)"), "{out}");
                assert!(out.contains("world-1-server (RUNNING)"), "{out}");
            }
            "curl http://127.0.0.1:10000/greetings" => {
                // "use the port from `pods info`"
                let (_, info) = b.get("/v1/pods/hello-0/info");
                let port = env_value(&info, "hello-0-server", "PORT_HELLO").expect("PORT_HELLO");
                let out = shell.ok(&command.replace("10000", &port));
                assert!(out.contains("hello from hello-0-server"), "{out}");
            }
            "cat berth-data/cluster/agents/*/volumes/*/greetings" => {
                let out = shell.ok(command);
                assert!(
                    out.contains("hello from") && out.contains("world from"),
                    "{out}"
                );
            }
            c if c.starts_with("pkill -f") => {
                let before = b.task_ids()["world-1-server"].0.clone();
                shell.ok(command);
                b.wait_relaunched("world-1-server", &before, LONG);
                b.wait_complete("recovery", LONG);
            }
            "berth plan show recovery" => {
                let out = shell.ok(command);
                assert!(
                    out.starts_with("recovery (parallel strategy) (COMPLETE)"),
                    "{out}"
                );
                assert!(out.contains("world-1:[server]"), "{out}");
            }
            "berth task" => {
                let out = shell.ok(command);
                assert!(out.starts_with("NAME"), "{out}");
                assert_eq!(out.lines().count(), 4, "{out}");
            }
            "berth task log world stderr" => {
                let out = shell.ok(command);
                assert_eq!(out.matches("===> hello-world__world-").count(), 2, "{out}");
            }
            "berth task ls hello-0" => {
                let out = shell.ok(command);
                assert!(out.lines().any(|l| l == "hello-data"), "{out}");
            }
            "berth task exec hello-0 cat hello-data/greetings" => {
                let out = shell.ok(command);
                assert!(out.contains("hello from hello-0-server"), "{out}");
            }
            "berth task --completed world-1" => {
                let out = shell.ok(command);
                // The run killed in step 4 and the one that replaced it.
                assert_eq!(out.lines().count(), 3, "{out}");
            }
            "berth log --lines 5" => {
                let out = shell.ok(command);
                assert_eq!(out.lines().count(), 5, "{out}");
            }
            "berth pods restart world-0"
            | "berth pods replace world-1"
            | "berth pods replace world-0" => {
                let pod = command.rsplit(' ').next().unwrap_or_default();
                let task = format!("{pod}-server");
                let before = b.task_ids()[&task].0.clone();
                let out = shell.ok(command);
                let v: Value = serde_json::from_str(&out).unwrap();
                assert_eq!(v["pod"], pod, "{out}");
                assert_eq!(v["tasks"], serde_json::json!([task]), "{out}");
                b.wait_relaunched(&task, &before, LONG);
                b.wait_complete("recovery", LONG);
            }
            "berth agents list" => {
                let out = shell.ok(command);
                assert!(out.contains("agent-b"), "{out}");
            }
            "berth agents stop agent-b" => {
                // The walkthrough says which pod ran there.
                assert_eq!(
                    b.agent_of("world-0", "world-0-server"),
                    "agent-b",
                    "{}",
                    b.log()
                );
                shell.ok(command);
            }
            "berth agents start agent-b" => {
                shell.ok(command);
            }
            "berth plan start backup -p BACKUP_NAME=monday" => {
                shell.ok(command);
                b.wait_complete("backup", LONG);
            }
            "berth plan show backup" => {
                let out = shell.ok(command);
                assert!(
                    out.starts_with("backup (serial strategy) (COMPLETE)"),
                    "{out}"
                );
            }
            "cat berth-data/cluster/agents/*/volumes/*/backup-monday" => {
                let out = shell.ok(command);
                assert!(out.contains("hello from hello-0-server"), "{out}");
            }
            c if c.starts_with("cat > my-options.json") => {
                shell.ok(command);
                assert!(shell_dir.join("my-options.json").exists());
            }
            "berth update start --dry-run --options my-options.json" => {
                b.wait_complete("deploy", LONG);
                let out = shell.ok(command);
                assert!(out.starts_with("Dry run: the update is valid"), "{out}");
                for (pod, action) in [
                    ("hello-0", "keep"),
                    ("world-0", "restart in place"),
                    ("world-2", "launch"),
                ] {
                    assert!(
                        out.lines()
                            .any(|l| l.starts_with(pod) && l.contains(action)),
                        "{pod} {action}: {out}"
                    );
                }
                assert!(out.contains("0.2 → 0.3"), "{out}");
            }
            "berth update start --options my-options.json" => {
                let out = shell.ok(command);
                assert!(out.starts_with("Update started."), "{out}");
                // Step 10 steers this rollout while it runs.
            }
            "berth config history" => {
                let out = shell.ok(command);
                assert!(out.starts_with("ID"), "{out}");
                assert!(out.contains("update") && out.contains("install"), "{out}");
            }
            "berth plan pause deploy world" => {
                shell.ok(command);
                let (_, plan) = b.get("/v1/plans/deploy");
                assert_eq!(plan["phases"][1]["status"], "WAITING", "{plan:#}");
            }
            "berth plan resume deploy world" => {
                shell.ok(command);
            }
            "berth plan force-complete deploy world 'world-2:[server]'" => {
                shell.ok(command);
                assert_eq!(
                    b.step("deploy", "world-2:[server]").as_deref(),
                    Some("COMPLETE")
                );
                assert!(
                    !b.task_ids().contains_key("world-2-server"),
                    "{:?}",
                    b.task_ids()
                );
            }
            "berth plan force-restart deploy world 'world-2:[server]'" => {
                shell.ok(command);
                b.wait_complete("deploy", LONG);
                assert!(
                    b.task_ids().contains_key("world-2-server"),
                    "{:?}",
                    b.task_ids()
                );
            }
            "berth state tree" => {
                let out = shell.ok(command);
                assert!(out.contains("ConfigTarget"), "{out}");
            }
            "berth state tree Tasks/world-0-server" => {
                let out = shell.ok(command);
                assert!(
                    out.contains("TaskInfo") && out.contains("TaskStatus"),
                    "{out}"
                );
            }
            "berth state get ConfigTarget" => {
                let out = shell.ok(command);
                let (_, target) = b.get("/v1/configurations/targetId");
                // The reference answers the target id as a one-element array.
                assert_eq!(Value::String(out.trim().to_owned()), target[0], "{out}");
            }
            c if c.starts_with("berth run --state zk://127.0.0.1:2181") => {
                // Needs a ZooKeeper on 2181 and a second scheduler: the zk and failover
                // tests run exactly this (standby, kill -9, take-over, ZooKeeper outage).
            }
            "berth uninstall" => {
                let out = shell.ok(command);
                assert!(out.contains("Uninstall complete"), "{out}");
            }
            "target/release/berth spec check --backend mesos examples/hello-world" => {
                shell.ok(command);
            }
            c if c.starts_with("target/release/berth run --master") => {
                // Needs Mesos masters: the mesos_e2e tests run this against the master double.
            }
            other => panic!(
                "examples/hello-world/README.md has a command this test does not know: \
                 {other:?}; add it here"
            ),
        }
    };
    for command in &commands {
        step(&mut b, command);
        done.push(command.clone());
    }
    assert!(done.len() >= 28, "{done:#?}");
}
