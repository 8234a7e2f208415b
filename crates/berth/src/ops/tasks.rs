//! `berth task …`: the tasks of the service, their logs and their sandboxes, over
//! `GET /v1/tasks` and the files routes.
//!
//! A FILTER picks tasks as the guide's `dcos task` does: a task whose id equals it, else
//! every task whose id contains it (`hello` matches every hello-#, `hello-0-server__3f` one
//! run by its id prefix). Commands that act on one task refuse a filter that matches several
//! and list them.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use serde_json::Value;

use super::client::{Client, encode, query};
use super::out;

/// `berth task [FILTER]` and its subcommands.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TaskArgs {
    #[command(subcommand)]
    cmd: Option<TaskCmd>,
    /// Only tasks whose id contains this, e.g. `hello` or `hello-0-server__3f`.
    filter: Option<String>,
    /// Also list finished tasks.
    #[arg(long)]
    completed: bool,
}

/// `berth task …`.
#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Print the last lines of a file of the matching tasks' sandboxes (default `stdout`),
    /// and with --follow what is written to it from then on.
    ///
    /// Example: `berth task log hello` (every hello task), `berth task log --follow
    /// hello-0-server stderr`.
    Log {
        /// Keep printing what is appended, until the task ends.
        #[arg(short, long)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
        lines: usize,
        /// Also match finished tasks.
        #[arg(long)]
        completed: bool,
        /// Tasks whose id contains this.
        filter: String,
        /// The file, relative to the sandbox.
        #[arg(default_value = "stdout")]
        file: String,
    },
    /// List a directory of one task's sandbox.
    ///
    /// Example: `berth task ls hello-0-server`, `berth task ls -l hello-0-server hello-container-path`.
    Ls {
        /// Show mode, links, owner, size and modification time.
        #[arg(short, long)]
        long: bool,
        /// Also match finished tasks.
        #[arg(long)]
        completed: bool,
        /// The task (a filter that matches one task).
        task: String,
        /// The directory, relative to the sandbox.
        path: Option<String>,
    },
    /// Run a command inside a running task: in its sandbox, with its environment and user;
    /// its output and exit code are the command's.
    ///
    /// Example: `berth task exec hello-0 ls -l hello-data`, `berth task exec -it hello-0 bash`.
    Exec {
        /// Send this terminal's input to the command.
        #[arg(short, long)]
        interactive: bool,
        /// Give the command a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        /// The task (a filter that matches one running task).
        task: String,
        /// The program and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Print a file of one task's sandbox.
    ///
    /// Example: `berth task cat hello-0-server hello-container-path/output`.
    Cat {
        /// Also match finished tasks.
        #[arg(long)]
        completed: bool,
        /// The task (a filter that matches one task).
        task: String,
        /// The file, relative to the sandbox.
        path: String,
    },
}

/// Runs `berth task …`.
pub fn run(client: &Client, args: TaskArgs) -> Result<ExitCode> {
    match args.cmd {
        None => list(client, args.filter.as_deref(), args.completed),
        Some(TaskCmd::Log {
            follow,
            lines,
            completed,
            filter,
            file,
        }) => log(client, &filter, &file, lines, follow, completed),
        Some(TaskCmd::Ls {
            long,
            completed,
            task,
            path,
        }) => ls(
            client,
            &task,
            path.as_deref().unwrap_or(""),
            long,
            completed,
        ),
        Some(TaskCmd::Exec {
            interactive,
            tty,
            task,
            cmd,
        }) => {
            let task = running_one(client, &task)?;
            let body = serde_json::json!({ "cmd": cmd, "tty": tty, "interactive": interactive });
            let code = client.exec(
                &format!("/v1/tasks/{}/exec", encode(&task.id)),
                &body,
                interactive,
                tty,
            )?;
            Ok(ExitCode::from(
                u8::try_from(code.clamp(0, 255)).unwrap_or(255),
            ))
        }
        Some(TaskCmd::Cat {
            completed,
            task,
            path,
        }) => {
            let task = one(client, &task, completed)?;
            let response = client.get(&format!(
                "/v1/tasks/{}/files/download{}",
                encode(&task.id),
                query(&[("path", Some(&path))])
            ))?;
            if !response.is_success() {
                return Err(response.error());
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&response.body);
            let _ = stdout.flush();
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A task as the list shows it.
#[derive(Debug, Clone)]
struct Task {
    id: String,
    name: String,
    host: String,
    user: String,
    state: String,
    active: bool,
}

impl Task {
    fn from_json(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Task {
            id: s("id"),
            name: s("name"),
            host: s("host"),
            user: s("user"),
            state: s("state"),
            active: v.get("active").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn fetch(client: &Client, completed: bool) -> Result<(Value, Vec<Task>)> {
    let path = if completed {
        "/v1/tasks?completed=true"
    } else {
        "/v1/tasks"
    };
    let response = client.get(path)?;
    if !response.is_success() {
        return Err(response.error());
    }
    let value = response.json()?;
    let tasks = value
        .as_array()
        .map(|a| a.iter().map(Task::from_json).collect())
        .unwrap_or_default();
    Ok((value, tasks))
}

/// The tasks `filter` picks: the one whose id it is, else all whose id contains it — the id
/// without the service's name in front (`hello-0-server__3f…` of
/// `hello-world__hello-0-server__3f…`), so that `world` picks the world tasks only.
fn matching<'a>(tasks: &'a [Task], filter: &str) -> Vec<&'a Task> {
    if let Some(exact) = tasks.iter().find(|t| t.id == filter) {
        return vec![exact];
    }
    tasks
        .iter()
        .filter(|t| short_id(&t.id).contains(filter))
        .collect()
}

/// A task id without the service name in front (ids are `<service>__<task>__<uuid>`).
fn short_id(id: &str) -> &str {
    match id.split_once("__") {
        Some((_, rest)) if rest.contains("__") => rest,
        _ => id,
    }
}

fn no_match(filter: &str, completed: bool) -> anyhow::Error {
    if completed {
        anyhow!("No task matches '{filter}' (`berth task --completed` lists them)")
    } else {
        anyhow!(
            "No active task matches '{filter}' (`berth task` lists them; add --completed for \
             finished ones)"
        )
    }
}

/// The one task `filter` picks; several are an error listing them, as the guide shows.
fn one(client: &Client, filter: &str, completed: bool) -> Result<Task> {
    let (_, tasks) = fetch(client, completed)?;
    let found = matching(&tasks, filter);
    match found.as_slice() {
        [] => Err(no_match(filter, completed)),
        [task] => Ok((*task).clone()),
        many => {
            let ids: Vec<String> = many.iter().map(|t| format!("\t{}", t.id)).collect();
            bail!(
                "There are multiple tasks with ID matching [{filter}]. Please choose one:\n{}",
                ids.join("\n")
            )
        }
    }
}

/// The one running task `filter` picks; a finished one is named as not running.
fn running_one(client: &Client, filter: &str) -> Result<Task> {
    match one(client, filter, false) {
        Ok(task) => Ok(task),
        Err(e) => {
            let (_, all) = fetch(client, true)?;
            let finished: Vec<&Task> = matching(&all, filter);
            match finished.as_slice() {
                [task] if !task.active => bail!(
                    "Task {} is not running ({}); a command can only run inside a running task",
                    task.id,
                    task.state
                ),
                _ => Err(e),
            }
        }
    }
}

/// `berth task [FILTER]`: NAME HOST USER STATE ID.
fn list(client: &Client, filter: Option<&str>, completed: bool) -> Result<ExitCode> {
    let (value, tasks) = fetch(client, completed)?;
    let shown: Vec<&Task> = match filter {
        Some(f) => matching(&tasks, f),
        None => tasks.iter().collect(),
    };
    if client.json {
        let ids: Vec<&str> = shown.iter().map(|t| t.id.as_str()).collect();
        let picked: Vec<&Value> = value
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|v| {
                        v.get("id")
                            .and_then(Value::as_str)
                            .is_some_and(|id| ids.contains(&id))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out(&serde_json::to_string_pretty(&picked)?);
        return Ok(ExitCode::SUCCESS);
    }
    out(&table(&shown));
    Ok(ExitCode::SUCCESS)
}

/// The task table.
fn table(tasks: &[&Task]) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        ["NAME", "HOST", "USER", "STATE", "ID"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    ];
    rows.extend(tasks.iter().map(|t| {
        vec![
            t.name.clone(),
            t.host.clone(),
            t.user.clone(),
            short_state(&t.state).to_owned(),
            t.id.clone(),
        ]
    }));
    super::render::columns(&rows)
        .trim_end_matches('\n')
        .to_owned()
}

/// The one-letter state `dcos task` shows.
fn short_state(state: &str) -> &str {
    match state {
        "TASK_RUNNING" => "R",
        "TASK_STAGING" | "TASK_STARTING" => "S",
        "TASK_KILLING" => "K",
        "TASK_FINISHED" => "F",
        "TASK_KILLED" => "K",
        "TASK_FAILED" | "TASK_ERROR" => "E",
        "TASK_LOST"
        | "TASK_UNREACHABLE"
        | "TASK_GONE"
        | "TASK_GONE_BY_OPERATOR"
        | "TASK_DROPPED"
        | "TASK_UNKNOWN" => "L",
        other => other,
    }
}

/// The read URL of a task's sandbox file.
fn file_url(task: &str, file: &str) -> String {
    format!(
        "/v1/tasks/{}/files/read{}",
        encode(task),
        query(&[("path", Some(file))])
    )
}

/// Reads from a read endpoint (`…/files/read?path=…`, `/v1/debug/log`): the data and the
/// offset it starts at.
pub(super) fn read_at(
    client: &Client,
    url: &str,
    offset: i64,
    length: Option<u64>,
) -> Result<(String, u64)> {
    let mut url = format!(
        "{url}{}offset={offset}",
        if url.contains('?') { '&' } else { '?' }
    );
    if let Some(l) = length {
        url.push_str(&format!("&length={l}"));
    }
    let response = client.get(&url)?;
    if !response.is_success() {
        return Err(response.error());
    }
    let v = response.json()?;
    let data = v
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let at = v.get("offset").and_then(Value::as_u64).unwrap_or(0);
    Ok((data, at))
}

/// The last `lines` lines behind a read endpoint and where it ends.
pub(super) fn tail(client: &Client, url: &str, lines: usize) -> Result<(String, u64)> {
    let (_, size) = read_at(client, url, -1, None)?;
    let mut chunk: u64 = 8 * 1024;
    loop {
        let start = size.saturating_sub(chunk);
        let (data, _) = read_at(client, url, i64::try_from(start)?, Some(size - start))?;
        let newlines = data.matches('\n').count();
        if start == 0 || newlines > lines {
            let body = data.strip_suffix('\n').unwrap_or(&data);
            let kept: Vec<&str> = body.rsplit('\n').take(lines).collect();
            let mut text: String = kept.into_iter().rev().collect::<Vec<_>>().join("\n");
            if lines > 0 && !text.is_empty() && data.ends_with('\n') {
                text.push('\n');
            }
            if lines == 0 {
                text.clear();
            }
            return Ok((text, size));
        }
        chunk *= 4;
    }
}

/// `berth task log`.
fn log(
    client: &Client,
    filter: &str,
    file: &str,
    lines: usize,
    follow: bool,
    completed: bool,
) -> Result<ExitCode> {
    let (_, tasks) = fetch(client, completed)?;
    let found: Vec<Task> = matching(&tasks, filter).into_iter().cloned().collect();
    if found.is_empty() {
        return Err(no_match(filter, completed));
    }
    let headers = found.len() > 1;
    let mut followed: Vec<(Task, u64)> = Vec::new();
    let mut stdout = std::io::stdout().lock();
    for task in found {
        let (text, end) = tail(client, &file_url(&task.id, file), lines)?;
        if headers {
            let _ = writeln!(stdout, "===> {} <===", task.id);
        }
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        followed.push((task, end));
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last_shown = followed.len().saturating_sub(1);
    let mut checked = Instant::now();
    while !followed.is_empty() {
        std::thread::sleep(Duration::from_millis(300));
        let ended: Vec<(String, String)> = if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            let (_, now) = fetch(client, true)?;
            followed
                .iter()
                .filter_map(|(t, _)| {
                    let current = now.iter().find(|n| n.id == t.id)?;
                    (!current.active).then(|| (t.id.clone(), current.state.clone()))
                })
                .collect()
        } else {
            Vec::new()
        };
        for (i, (task, offset)) in followed.iter_mut().enumerate() {
            let (data, at) = read_at(
                client,
                &file_url(&task.id, file),
                i64::try_from(*offset)?,
                None,
            )?;
            if data.is_empty() {
                continue;
            }
            if headers && last_shown != i {
                let _ = writeln!(stdout, "===> {} <===", task.id);
                last_shown = i;
            }
            let _ = stdout.write_all(data.as_bytes());
            let _ = stdout.flush();
            *offset = at + data.len() as u64;
        }
        for (id, state) in ended {
            eprintln!("berth: task {id} ended ({state}); its log is complete");
            followed.retain(|(t, _)| t.id != id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth task ls`.
fn ls(client: &Client, filter: &str, path: &str, long: bool, completed: bool) -> Result<ExitCode> {
    let task = one(client, filter, completed)?;
    let response = client.get(&format!(
        "/v1/tasks/{}/files/browse{}",
        encode(&task.id),
        query(&[("path", (!path.is_empty()).then_some(path))])
    ))?;
    if !response.is_success() {
        return Err(response.error());
    }
    let value = response.json()?;
    if client.json {
        out(&serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for entry in value.as_array().into_iter().flatten() {
        let path = entry.get("path").and_then(Value::as_str).unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or(path);
        if long {
            // Seconds; Mesos agents may send a fraction.
            let mtime = entry
                .get("mtime")
                .and_then(|m| m.as_u64().or_else(|| m.as_f64().map(|f| f.max(0.0) as u64)))
                .unwrap_or(0);
            let when = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(mtime));
            text.push_str(&format!(
                "{} {:>3} {:>6} {:>6} {:>10}  {when}  {name}\n",
                entry.get("mode").and_then(Value::as_str).unwrap_or("?"),
                entry.get("nlink").and_then(Value::as_u64).unwrap_or(0),
                entry.get("uid").and_then(Value::as_str).unwrap_or("?"),
                entry.get("gid").and_then(Value::as_str).unwrap_or("?"),
                entry.get("size").and_then(Value::as_u64).unwrap_or(0),
            ));
        } else {
            text.push_str(name);
            text.push('\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Task {
        Task {
            id: id.to_owned(),
            name: id.split("__").next().unwrap_or(id).to_owned(),
            host: "h".to_owned(),
            user: "root".to_owned(),
            state: "TASK_RUNNING".to_owned(),
            active: true,
        }
    }

    #[test]
    fn filters_pick_as_the_guide_says() {
        let tasks = [
            task("broker-0__81f5"),
            task("broker-0__75bc"),
            task("broker-1__6bf1"),
            task("broker-10__aaaa"),
            task("kafka-world__zk-0-node__bbbb"),
        ];
        let ids =
            |f: &str| -> Vec<String> { matching(&tasks, f).iter().map(|t| t.id.clone()).collect() };
        assert_eq!(ids("broker").len(), 4);
        assert_eq!(ids("zk"), ["kafka-world__zk-0-node__bbbb"]);
        assert!(ids("world").is_empty());
        assert_eq!(ids("kafka-world__zk-0-node__bbbb").len(), 1);
        assert_eq!(ids("broker-0"), ["broker-0__81f5", "broker-0__75bc"]);
        assert_eq!(ids("broker-0__75"), ["broker-0__75bc"]);
        assert_eq!(ids("broker-1__6bf1"), ["broker-1__6bf1"]);
        assert!(ids("zookeeper").is_empty());
        let table = table(&tasks[..4].iter().collect::<Vec<_>>());
        assert!(
            table.starts_with(
                "NAME       HOST  USER  STATE  ID\nbroker-0   h     root  R      broker-0__81f5"
            ),
            "{table}"
        );
    }
}
