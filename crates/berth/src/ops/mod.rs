//! Operator commands over the scheduler's HTTP API: `berth plan …`, `berth pods …`,
//! `berth debug …`, `berth state …`, `berth config …`, `berth agents …`, `berth health`,
//! `berth endpoints`, `berth task …`, `berth log`, `berth uninstall`.
//!
//! ```text
//!  berth plan show deploy ──GET /v1/plans/deploy──▶ berth run (API) ──▶ tree or JSON on stdout
//!        │ -v: "HTTP Query: GET …" / "Response: 200 OK (N bytes)" on stderr
//!        └─ failure: "berth: 404 Not Found: Plan x not found" on stderr, exit 1
//! ```
//!
//! Each command maps onto one endpoint; outputs follow the reference CLI (JSON as the API
//! sends it, plan and pod trees, the plan command sentences).

mod client;
mod render;
mod tasks;
mod update;

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use serde_json::Value;

pub use client::Conn;
use client::{Client, Response, encode, query};

/// Operator commands (they talk to a running `berth run` over its HTTP API).
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Show and steer plans (deploy, recovery, custom plans such as backup).
    ///
    /// Example: `berth plan show deploy`.
    Plan {
        #[command(subcommand)]
        cmd: PlanCmd,
    },
    /// Show, restart and replace pods.
    ///
    /// Example: `berth pods status`.
    #[command(visible_alias = "pod")]
    Pods {
        #[command(subcommand)]
        cmd: PodsCmd,
    },
    /// Debugging commands: why steps wait (offers), pause and resume pod tasks; config and
    /// state views.
    ///
    /// Example: `berth debug offers --plan deploy`.
    Debug {
        #[command(subcommand)]
        cmd: DebugCmd,
    },
    /// The scheduler's stored state: framework id and properties.
    ///
    /// Example: `berth state tree Tasks`.
    State {
        #[command(subcommand)]
        cmd: StateCmd,
    },
    /// The stored configurations (service specs) and the target one.
    ///
    /// Example: `berth config target`.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Configuration updates: apply new options or a new svc.yml to the running service, and
    /// steer their rollout (the deploy plan).
    ///
    /// Example: `berth update start --options new-options.json`, then `berth update status`.
    Update {
        #[command(subcommand)]
        cmd: update::UpdateCmd,
    },
    /// The local cluster's agents: list, stop, start, drain.
    ///
    /// Example: `berth agents list`.
    Agents {
        #[command(subcommand)]
        cmd: AgentsCmd,
    },
    /// The service's health (exit 0 only when healthy).
    ///
    /// Example: `berth health --url http://127.0.0.1:7070`.
    Health,
    /// The advertised endpoints: their names, or where one is served (address, dns, vip).
    ///
    /// Example: `berth endpoints` lists the names; `berth endpoints world` shows one.
    Endpoints {
        /// An endpoint (an advertised port's name).
        name: Option<String>,
    },
    /// The service's tasks (NAME HOST USER STATE ID), their logs and sandboxes.
    ///
    /// Examples: `berth task`, `berth task hello --completed`, `berth task log --follow
    /// hello-0`, `berth task ls hello-0-server`, `berth task cat hello-0-server stderr`.
    Task(tasks::TaskArgs),
    /// The scheduler's own log (its data directory's `berth.log`): the last lines, and with
    /// --follow what it logs from then on.
    ///
    /// Example: `berth log --lines 50`, `berth log --follow`.
    Log {
        /// Keep printing what is logged (Ctrl-C to stop).
        #[arg(short, long)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
        lines: usize,
    },
    /// Uninstall the service: kill every task, release every reservation and volume, remove
    /// the framework and the stored state. Irreversible.
    ///
    /// Example: `berth uninstall --timeout 300`.
    Uninstall {
        /// Return once the uninstall started instead of waiting for it to complete.
        #[arg(long)]
        no_wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        timeout: u64,
    },
}

/// `berth plan …`.
#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    /// List the plans (JSON).
    ///
    /// Example: `berth plan list`.
    List,
    /// Show a plan as a tree, or as JSON.
    ///
    /// Example: `berth plan show recovery --json`.
    #[command(visible_alias = "status")]
    Show {
        /// Plan name.
        #[arg(default_value = "deploy")]
        plan: String,
    },
    /// Start a plan, with parameters passed to its tasks as environment variables.
    ///
    /// Example: `berth plan start backup -p BACKUP_NAME=monday`.
    Start {
        /// Plan name.
        plan: String,
        /// A parameter, VAR=value (repeatable; the value may contain '=').
        #[arg(short = 'p', long = "params", value_name = "VAR=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Stop a plan: interrupt it and reset its steps.
    ///
    /// Example: `berth plan stop backup`.
    Stop {
        /// Plan name.
        plan: String,
    },
    /// Pause a plan, or one of its phases (running tasks keep running).
    ///
    /// Example: `berth plan pause deploy world`.
    #[command(visible_alias = "interrupt")]
    Pause {
        /// Plan name.
        plan: String,
        /// Phase name or id.
        phase: Option<String>,
    },
    /// Resume a paused plan or phase.
    ///
    /// Example: `berth plan resume deploy world`.
    #[command(visible_alias = "continue")]
    Resume {
        /// Plan name.
        plan: String,
        /// Phase name or id.
        phase: Option<String>,
    },
    /// Mark a step complete.
    ///
    /// Example: `berth plan force-complete deploy world 'world-1:[server]'`.
    #[command(name = "force-complete", visible_alias = "force")]
    ForceComplete {
        /// Plan name.
        plan: String,
        /// Phase name or id.
        phase: String,
        /// Step name or id.
        step: String,
    },
    /// Restart a plan, phase or step (its tasks are killed and relaunched).
    ///
    /// Example: `berth plan force-restart deploy world 'world-1:[server]'`.
    #[command(name = "force-restart", visible_alias = "restart")]
    ForceRestart {
        /// Plan name.
        plan: String,
        /// Phase name or id.
        phase: Option<String>,
        /// Step name or id (needs a phase).
        step: Option<String>,
    },
}

/// `berth pods …`.
#[derive(Debug, Subcommand)]
pub enum PodsCmd {
    /// List the pod instances (JSON).
    ///
    /// Example: `berth pods list`.
    List,
    /// Show the status of all pods, or of one, as a tree (or JSON).
    ///
    /// Example: `berth pods status hello-0`.
    Status {
        /// Pod instance, e.g. hello-0.
        pod: Option<String>,
    },
    /// Show the tasks of a pod instance with their last status (JSON).
    ///
    /// Example: `berth pods info hello-0`.
    Info {
        /// Pod instance, e.g. hello-0.
        pod: String,
    },
    /// Restart a pod instance in place (volumes kept).
    ///
    /// Example: `berth pods restart world-0`.
    Restart {
        /// Pod instance, e.g. hello-0.
        pod: String,
    },
    /// Replace a pod instance: its data is discarded and it moves to a new place.
    ///
    /// Example: `berth pods replace world-1`.
    Replace {
        /// Pod instance, e.g. hello-0.
        pod: String,
    },
}

/// `berth debug …`.
#[derive(Debug, Subcommand)]
pub enum DebugCmd {
    /// Pause or resume the tasks of a pod instance.
    ///
    /// Example: `berth debug pod pause hello-0 -t server`.
    Pod {
        #[command(subcommand)]
        cmd: DebugPodCmd,
    },
    /// Why steps wait: the last offers evaluated (for one plan, phase or step), with the
    /// stages that refused them and the agents they came from.
    ///
    /// Example: `berth debug offers --plan deploy --step 'world-1:[server]'`.
    Offers {
        /// Only the offers evaluated for this plan's steps.
        #[arg(long)]
        plan: Option<String>,
        /// Only those of this phase's steps.
        #[arg(long)]
        phase: Option<String>,
        /// Only those of this step (e.g. `world-1:[server]`).
        #[arg(long)]
        step: Option<String>,
        /// How many of the last offers to print (with --json: all kept).
        #[arg(long, default_value_t = 10, value_name = "N")]
        last: usize,
    },
    /// The stored configurations (as `berth config`).
    ///
    /// Example: `berth debug config target-id`.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// The stored state (as `berth state`).
    ///
    /// Example: `berth debug state properties`.
    State {
        #[command(subcommand)]
        cmd: StateCmd,
    },
}

/// `berth debug pod …`.
#[derive(Debug, Subcommand)]
pub enum DebugPodCmd {
    /// Pause the tasks of a pod instance (all, or those given with -t).
    ///
    /// Example: `berth debug pod pause hello-0 -t server`.
    Pause {
        /// Pod instance, e.g. hello-0.
        pod: String,
        /// A task to pause (`server` or `hello-0-server`); repeatable.
        #[arg(short = 't', long = "task", value_name = "TASK")]
        tasks: Vec<String>,
    },
    /// Resume paused tasks of a pod instance (all, or those given with -t).
    ///
    /// Example: `berth debug pod resume hello-0`.
    Resume {
        /// Pod instance, e.g. hello-0.
        pod: String,
        /// A task to resume (`server` or `hello-0-server`); repeatable.
        #[arg(short = 't', long = "task", value_name = "TASK")]
        tasks: Vec<String>,
    },
}

/// `berth state …`.
#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// The framework id (JSON).
    ///
    /// Example: `berth state framework-id`.
    #[command(name = "framework-id", visible_alias = "framework_id")]
    FrameworkId,
    /// The property keys (JSON).
    ///
    /// Example: `berth state properties`.
    Properties,
    /// One property's stored value, as stored.
    ///
    /// Example: `berth state property last-completed-update-type`.
    Property {
        /// Property key, e.g. last-completed-update-type.
        key: String,
    },
    /// The stored tree (ZooKeeper layout) at and below PATH, with value sizes.
    ///
    /// Example: `berth state tree Tasks/world-0-server` (or with the scheduler down: `berth state tree --state berth-data --name hello-world`.
    Tree {
        /// A path relative to the service's root (`Tasks`), or absolute
        /// (`/dcos-service-hello-world/Tasks`); the root when absent.
        path: Option<String>,
        #[command(flatten)]
        direct: DirectState,
    },
    /// One stored node's value, as stored.
    ///
    /// Example: `berth state get ConfigTarget`.
    Get {
        /// A path relative to the service's root (`ConfigTarget`), or absolute.
        path: String,
        #[command(flatten)]
        direct: DirectState,
    },
    /// Last resort: delete a task from the stored state ("Deleting a task in ZooKeeper").
    /// Works on the store directly and refuses while a scheduler runs; when the scheduler
    /// starts again it releases the task's reservations and launches it afresh.
    ///
    /// Example: `berth state delete-task world-1-server --state berth-data --name hello-world`.
    #[command(name = "delete-task")]
    DeleteTask {
        /// Task name, e.g. hello-0-server.
        task: String,
        #[command(flatten)]
        direct: DirectState,
    },
}

/// Reading the store directly instead of through the API (the scheduler may be down).
#[derive(Debug, Clone, clap::Args)]
pub struct DirectState {
    /// The store: `zk://HOST:PORT[,HOST:PORT…][/CHROOT]`, or the data directory of an
    /// embedded store. Without it the running scheduler's API is asked.
    #[arg(long, value_name = "URL|DIR")]
    pub state: Option<String>,
    /// The service name (its root is `/dcos-service-<name>`); needed with --state.
    #[arg(long)]
    pub name: Option<String>,
}

/// `berth config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// The ids of the stored configurations (JSON).
    ///
    /// Example: `berth config list`.
    List,
    /// One stored configuration (JSON).
    ///
    /// Example: `berth config show "$(berth config target-id | tr -d '[]\" ')"`.
    Show {
        /// Configuration id (a UUID).
        id: String,
    },
    /// The target configuration (JSON).
    ///
    /// Example: `berth config target`.
    Target,
    /// The target configuration's id (JSON).
    ///
    /// Example: `berth config target-id`.
    #[command(name = "target-id", visible_alias = "target_id")]
    TargetId,
    /// The targets applied, newest first: when, how (install, restart, update, rollback),
    /// how their rollout ended, and how much of the spec changed (`--json`: with the diffs
    /// and options).
    ///
    /// Example: `berth config history`.
    History,
}

/// `berth agents …`.
#[derive(Debug, Subcommand)]
pub enum AgentsCmd {
    /// List the agents with their state, resources and executors.
    ///
    /// Example: `berth agents list --json`.
    List,
    /// Stop an agent ("the machine goes down").
    ///
    /// Example: `berth agents stop agent-b`.
    Stop {
        /// Agent id.
        agent: String,
    },
    /// Start a stopped agent again.
    ///
    /// Example: `berth agents start agent-b`.
    Start {
        /// Agent id.
        agent: String,
    },
    /// Drain an agent: its tasks are killed and it is never offered again.
    ///
    /// Example: `berth agents drain agent-c`.
    Drain {
        /// Agent id.
        agent: String,
    },
}

/// `VAR=value` (the value may contain `=`).
fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected VAR=VALUE, got '{s}'")),
    }
}

/// Runs an operator command: 0 on success, 1 on any failure (message on stderr).
pub fn main(cmd: OpsCommand, conn: &Conn) -> ExitCode {
    match run(cmd, conn) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout, ending with one newline; a closed pipe is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    let _ = stdout.flush();
}

/// Prints a 2xx body as it came (the API pretty-prints JSON), or fails with the API's
/// message.
fn print_body(response: &Response) -> Result<()> {
    if !response.is_success() {
        return Err(response.error());
    }
    out(&response.text());
    Ok(())
}

fn run(cmd: OpsCommand, conn: &Conn) -> Result<ExitCode> {
    let client = Client::new(conn)?;
    match cmd {
        OpsCommand::Plan { cmd } => plan(&client, cmd),
        OpsCommand::Update { cmd } => update::run(&client, cmd),
        OpsCommand::Pods { cmd } => pods(&client, cmd),
        OpsCommand::Debug { cmd } => match cmd {
            DebugCmd::Pod { cmd } => debug_pod(&client, cmd),
            DebugCmd::Offers {
                plan,
                phase,
                step,
                last,
            } => debug_offers(
                &client,
                plan.as_deref(),
                phase.as_deref(),
                step.as_deref(),
                last,
            ),
            DebugCmd::Config { cmd } => config(&client, cmd),
            DebugCmd::State { cmd } => state(&client, cmd),
        },
        OpsCommand::State { cmd } => state(&client, cmd),
        OpsCommand::Config { cmd } => config(&client, cmd),
        OpsCommand::Agents { cmd } => agents(&client, cmd),
        OpsCommand::Health => health(&client),
        OpsCommand::Endpoints { name } => {
            let path = match name {
                Some(name) => format!("/v1/endpoints/{}", encode(&name)),
                None => "/v1/endpoints".to_owned(),
            };
            print_body(&client.get(&path)?)?;
            Ok(ExitCode::SUCCESS)
        }
        OpsCommand::Task(args) => tasks::run(&client, args),
        OpsCommand::Log { follow, lines } => scheduler_log(&client, follow, lines),
        OpsCommand::Uninstall { no_wait, timeout } => uninstall(&client, no_wait, timeout),
    }
}

/// `berth uninstall`: start the uninstall, then follow the plan until it is complete.
fn uninstall(client: &Client, no_wait: bool, timeout: u64) -> Result<ExitCode> {
    let response = client.post("/v1/uninstall", None)?;
    match response.status {
        200 => {
            let message = response
                .json()
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
            out(&message.unwrap_or_else(|| "Uninstall started".to_owned()));
        }
        208 => out("The service is already being uninstalled."),
        _ => return Err(response.error()),
    }
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let mut last = String::new();
    loop {
        let response = client.get("/v1/plans/deploy").map_err(|e| {
            anyhow!(
                "{e:#}\nthe scheduler stopped before the uninstall completed; finish it with \
                 `berth run --uninstall …` (or `berth janitor`)"
            )
        })?;
        if !matches!(response.status, 200 | 202 | 417) {
            return Err(response.error());
        }
        let plan = response.json()?;
        let summary = uninstall_progress(&plan);
        if summary != last {
            out(&summary);
            last = summary;
        }
        if plan["status"] == "COMPLETE" {
            out("Uninstall complete: tasks, reservations, volumes and state are gone.");
            return Ok(ExitCode::SUCCESS);
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "the uninstall did not complete within {timeout} s; see `berth plan show deploy` \
                 (steps of agents that are gone for good can be force-completed)"
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// One line per phase: `kill-tasks: 3/3 complete`.
fn uninstall_progress(plan: &Value) -> String {
    let phases = plan["phases"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    phases
        .iter()
        .map(|p| {
            let steps = p["steps"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            let done = steps.iter().filter(|s| s["status"] == "COMPLETE").count();
            format!(
                "  {}: {done}/{} complete ({})",
                p["name"].as_str().unwrap_or("?"),
                steps.len(),
                p["status"].as_str().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

const ALREADY_DONE: &str =
    "Cannot execute command. Command has already been issued or the plan has completed";

/// What a plan command did, for its sentence.
struct Sentence<'a> {
    plan: &'a str,
    phase: Option<&'a str>,
    step: Option<&'a str>,
    /// `paused`, `resumed`, `restarted`, `forced to complete`.
    done: &'a str,
}

impl Sentence<'_> {
    fn subject(&self) -> String {
        match (self.phase, self.step) {
            (Some(phase), Some(step)) => {
                format!(
                    "\"{}\" plan: step \"{step}\" in phase \"{phase}\"",
                    self.plan
                )
            }
            (Some(phase), None) => format!("\"{}\" plan: phase \"{phase}\"", self.plan),
            _ => format!("\"{}\" plan", self.plan),
        }
    }
}

/// `POST /v1/plans/{plan}/{command}`: the sentence on success, the reference's message on
/// 208, the API's message otherwise.
fn plan_command(client: &Client, command: &str, s: &Sentence<'_>) -> Result<ExitCode> {
    let path = format!(
        "/v1/plans/{}/{command}{}",
        encode(s.plan),
        query(&[("phase", s.phase), ("step", s.step)])
    );
    let response = client.post(&path, None)?;
    match response.status {
        200 => {
            let has_message = response
                .json()
                .ok()
                .is_some_and(|v| v.get("message").is_some());
            if has_message {
                out(&format!("{} has been {}.", s.subject(), s.done));
                Ok(ExitCode::SUCCESS)
            } else {
                bail!("{} could not be {}.", s.subject(), s.done)
            }
        }
        208 => bail!(ALREADY_DONE),
        _ => Err(response.error()),
    }
}

fn plan(client: &Client, cmd: PlanCmd) -> Result<ExitCode> {
    match cmd {
        PlanCmd::List => print_body(&client.get("/v1/plans")?)?,
        PlanCmd::Show { plan } => {
            let response = client.get(&format!("/v1/plans/{}", encode(&plan)))?;
            // 202 (in progress) and 417 (errors) still carry the plan.
            if !matches!(response.status, 200 | 202 | 417) {
                return Err(response.error());
            }
            if client.json {
                out(&response.text());
            } else {
                let view: berth_plan::PlanView =
                    serde_json::from_slice(&response.body).map_err(|e| {
                        anyhow!("the scheduler's plan JSON could not be read ({e}); try --json")
                    })?;
                out(&berth_plan::render_tree(&plan, &view));
            }
        }
        PlanCmd::Start { plan, params } => {
            let body: serde_json::Map<String, Value> = params
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let response = client.post(
                &format!("/v1/plans/{}/start", encode(&plan)),
                Some(&Value::Object(body)),
            )?;
            if response.status == 208 {
                bail!(ALREADY_DONE);
            }
            print_body(&response)?;
        }
        PlanCmd::Stop { plan } => {
            let response = client.post(&format!("/v1/plans/{}/stop", encode(&plan)), None)?;
            if response.status == 208 {
                bail!(ALREADY_DONE);
            }
            print_body(&response)?;
        }
        PlanCmd::Pause { plan, phase } => {
            return plan_command(
                client,
                "interrupt",
                &Sentence {
                    plan: &plan,
                    phase: phase.as_deref(),
                    step: None,
                    done: "paused",
                },
            );
        }
        PlanCmd::Resume { plan, phase } => {
            return plan_command(
                client,
                "continue",
                &Sentence {
                    plan: &plan,
                    phase: phase.as_deref(),
                    step: None,
                    done: "resumed",
                },
            );
        }
        PlanCmd::ForceComplete { plan, phase, step } => {
            return plan_command(
                client,
                "forceComplete",
                &Sentence {
                    plan: &plan,
                    phase: Some(&phase),
                    step: Some(&step),
                    done: "forced to complete",
                },
            );
        }
        PlanCmd::ForceRestart { plan, phase, step } => {
            return plan_command(
                client,
                "restart",
                &Sentence {
                    plan: &plan,
                    phase: phase.as_deref(),
                    step: step.as_deref(),
                    done: "restarted",
                },
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pods(client: &Client, cmd: PodsCmd) -> Result<ExitCode> {
    match cmd {
        PodsCmd::List => print_body(&client.get("/v1/pods")?)?,
        PodsCmd::Status { pod } => {
            let path = match &pod {
                Some(p) => format!("/v1/pods/{}/status", encode(p)),
                None => "/v1/pods/status".to_owned(),
            };
            let response = client.get(&path)?;
            if client.json || !response.is_success() {
                print_body(&response)?;
            } else {
                let value = response.json()?;
                out(&match pod {
                    Some(_) => render::pod_tree(&value),
                    None => render::pods_tree(&value),
                });
            }
        }
        PodsCmd::Info { pod } => {
            print_body(&client.get(&format!("/v1/pods/{}/info", encode(&pod)))?)?;
        }
        PodsCmd::Restart { pod } => {
            print_body(&client.post(&format!("/v1/pods/{}/restart", encode(&pod)), None)?)?;
        }
        PodsCmd::Replace { pod } => {
            print_body(&client.post(&format!("/v1/pods/{}/replace", encode(&pod)), None)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth log`: the tail of the scheduler's log, then (with `follow`) what is appended; a
/// rotation (the file shrank) starts over at the new file's beginning.
fn scheduler_log(client: &Client, follow: bool, lines: usize) -> Result<ExitCode> {
    const URL: &str = "/v1/debug/log";
    let (text, mut offset) = tasks::tail(client, URL, lines)?;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let (_, size) = tasks::read_at(client, URL, -1, None)?;
        if size < offset {
            offset = 0;
        }
        let (data, at) = tasks::read_at(client, URL, i64::try_from(offset)?, None)?;
        if !data.is_empty() {
            let _ = stdout.write_all(data.as_bytes());
            let _ = stdout.flush();
            offset = at + data.len() as u64;
        }
    }
}

/// `berth debug offers`: the summary, then the last offers' PASS/FAIL trees.
fn debug_offers(
    client: &Client,
    plan: Option<&str>,
    phase: Option<&str>,
    step: Option<&str>,
    last: usize,
) -> Result<ExitCode> {
    let path = format!(
        "/v2/debug/offers{}",
        query(&[("plan", plan), ("phase", phase), ("step", step)])
    );
    let response = client.get(&path)?;
    if client.json || !response.is_success() {
        print_body(&response)?;
        return Ok(ExitCode::SUCCESS);
    }
    out(&render::offers(&response.json()?, last));
    Ok(ExitCode::SUCCESS)
}

fn debug_pod(client: &Client, cmd: DebugPodCmd) -> Result<ExitCode> {
    let (action, pod, tasks) = match cmd {
        DebugPodCmd::Pause { pod, tasks } => ("pause", pod, tasks),
        DebugPodCmd::Resume { pod, tasks } => ("resume", pod, tasks),
    };
    let body = (!tasks.is_empty()).then(|| Value::from(tasks));
    let path = format!("/v1/pods/{}/{action}", encode(&pod));
    print_body(&client.post(&path, body.as_ref())?)?;
    Ok(ExitCode::SUCCESS)
}

fn state(client: &Client, cmd: StateCmd) -> Result<ExitCode> {
    let path = match cmd {
        StateCmd::FrameworkId => "/v1/state/frameworkId".to_owned(),
        StateCmd::Properties => "/v1/state/properties".to_owned(),
        StateCmd::Property { key } => format!("/v1/state/properties/{}", encode(&key)),
        StateCmd::Tree { path, direct } => {
            if let Some(state) = &direct.state {
                let tree =
                    crate::state_access::tree(state, direct.name.as_deref(), path.as_deref())?;
                out(&render::state_tree(&tree));
                return Ok(ExitCode::SUCCESS);
            }
            let response = client.get(&format!(
                "/v1/state/tree{}",
                query(&[("path", path.as_deref())])
            ))?;
            if !response.is_success() {
                return Err(response.error());
            }
            out(&render::state_tree(&response.json()?));
            return Ok(ExitCode::SUCCESS);
        }
        StateCmd::Get { path, direct } => {
            if let Some(state) = &direct.state {
                let value = crate::state_access::get(state, direct.name.as_deref(), &path)?;
                out(&String::from_utf8_lossy(&value));
                return Ok(ExitCode::SUCCESS);
            }
            format!("/v1/state/node{}", query(&[("path", Some(path.as_str()))]))
        }
        StateCmd::DeleteTask { task, direct } => {
            let Some(state) = &direct.state else {
                bail!(
                    "delete-task works on the store directly: give --state (zk://… or the data \
                     directory) and --name, with the scheduler stopped"
                );
            };
            let deleted = crate::state_access::delete_task(state, direct.name.as_deref(), &task)?;
            out(&format!(
                "Deleted task {task} ({deleted} nodes). Start the scheduler again: it releases the \
                 task's old reservations and launches it afresh."
            ));
            return Ok(ExitCode::SUCCESS);
        }
    };
    print_body(&client.get(&path)?)?;
    Ok(ExitCode::SUCCESS)
}

fn config(client: &Client, cmd: ConfigCmd) -> Result<ExitCode> {
    let path = match cmd {
        ConfigCmd::List => "/v1/configurations".to_owned(),
        ConfigCmd::Show { id } => format!("/v1/configurations/{}", encode(&id)),
        ConfigCmd::Target => "/v1/configurations/target".to_owned(),
        ConfigCmd::TargetId => "/v1/configurations/targetId".to_owned(),
        ConfigCmd::History => {
            let response = client.get("/v1/configurations/history")?;
            if client.json || !response.is_success() {
                print_body(&response)?;
            } else {
                out(&render::history_table(&response.json()?));
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    print_body(&client.get(&path)?)?;
    Ok(ExitCode::SUCCESS)
}

fn agents(client: &Client, cmd: AgentsCmd) -> Result<ExitCode> {
    let (agent, action, done) = match cmd {
        AgentsCmd::List => {
            let response = client.get("/v1/agents")?;
            if client.json || !response.is_success() {
                print_body(&response)?;
            } else {
                out(&render::agents_table(&response.json()?));
            }
            return Ok(ExitCode::SUCCESS);
        }
        AgentsCmd::Stop { agent } => (agent, "stop", "stopped"),
        AgentsCmd::Start { agent } => (agent, "start", "started"),
        AgentsCmd::Drain { agent } => (agent, "drain", "drained"),
    };
    let response = client.post(&format!("/v1/agents/{}/{action}", encode(&agent)), None)?;
    if !response.is_success() {
        return Err(response.error());
    }
    let message = response
        .json()
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    out(&message.unwrap_or_else(|| format!("Agent \"{agent}\" has been {done}.")));
    Ok(ExitCode::SUCCESS)
}

/// `GET /v1/health?verbose=true`: prints `{"value", "reasons"}`; exit 0 only on 200.
fn health(client: &Client) -> Result<ExitCode> {
    let response = client.get("/v1/health?verbose=true")?;
    let value = if response.status == 204 {
        // A 204 carries no body; its only cause is a pending deploy step.
        serde_json::json!({"value": 204, "reasons": ["deploy plan: steps are pending"]})
    } else {
        match response.json() {
            Ok(v) if v.get("value").is_some() => v,
            _ => return Err(response.error()),
        }
    };
    out(&serde_json::to_string_pretty(&value)?);
    Ok(if response.status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_at_the_first_equals() {
        assert_eq!(
            parse_param("A=b=c").unwrap(),
            ("A".to_owned(), "b=c".to_owned())
        );
        assert_eq!(parse_param("A=").unwrap(), ("A".to_owned(), String::new()));
        assert!(parse_param("A").is_err());
        assert!(parse_param("=x").is_err());
    }

    #[test]
    fn sentences() {
        let s = |phase, step, done| {
            Sentence {
                plan: "deploy",
                phase,
                step,
                done,
            }
            .subject()
                + " has been "
                + done
                + "."
        };
        assert_eq!(s(None, None, "paused"), "\"deploy\" plan has been paused.");
        assert_eq!(
            s(Some("world"), None, "resumed"),
            "\"deploy\" plan: phase \"world\" has been resumed."
        );
        assert_eq!(
            s(Some("p"), Some("s"), "forced to complete"),
            "\"deploy\" plan: step \"s\" in phase \"p\" has been forced to complete."
        );
    }
}
