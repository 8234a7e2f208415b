//! Task sandboxes and commands on Mesos agents, reached as operators' tools reach them.
//!
//! ```text
//!  task id + agent id
//!   └─ leader  GET /master/slaves ─────────▶ the agent's pid  slave(1)@10.0.0.7:5051
//!   └─ agent   GET /slave(1)/state ────────▶ its executor's `directory` (+ /tasks/<id> for
//!                                            pods) and the task's container id
//!   └─ agent   GET /files/{browse,read,download}?path=<sandbox>/<file>
//!   └─ agent   POST /slave(1)/api/v1  LAUNCH_NESTED_CONTAINER_SESSION (output, RecordIO)
//!                                     ATTACH_CONTAINER_INPUT          (input, RecordIO)
//!                                     WAIT_NESTED_CONTAINER           (the exit status)
//! ```
//!
//! The master's and agents' answers are passed on with their status: a 404 of the agent
//! (a file that does not exist) stays a 404.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::{MesosConfig, Shared, lock};
use crate::protocol::ClusterError;

/// Time allowed for one request to the master or an agent (exec sessions excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a task lives on its agent.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLocation {
    /// `http://IP:PORT` of the agent.
    pub agent_url: String,
    /// The agent's libprocess id (`slave(1)`), the prefix of its own routes.
    pub process: String,
    /// The task's sandbox directory on the agent.
    pub sandbox: String,
    /// The task's container id (`{"value": …, "parent": {…}}`), when the agent reports it.
    pub container_id: Option<Value>,
    /// Whether the task is still active on the agent.
    pub active: bool,
}

/// What a files request answered: status, content type and body, as the agent sent them.
#[derive(Debug, Clone)]
pub struct FilesReply {
    /// The agent's HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
}

/// Reaches the agents through the leading master (cheap to clone).
#[derive(Debug, Clone)]
pub struct AgentApi {
    config: Arc<MesosConfig>,
    http: reqwest::Client,
    shared: Shared,
}

fn remote(status: u16, message: impl Into<String>) -> ClusterError {
    ClusterError::Remote {
        status,
        message: message.into(),
    }
}

fn unreachable(what: &str, e: &reqwest::Error) -> ClusterError {
    remote(502, format!("{what}: {}", super::session::describe(e)))
}

impl AgentApi {
    pub(super) fn new(config: Arc<MesosConfig>, http: reqwest::Client, shared: Shared) -> Self {
        Self {
            config,
            http,
            shared,
        }
    }

    fn with_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.credentials {
            Some((user, secret)) => req.basic_auth(user, Some(secret)),
            None => req,
        }
    }

    /// A POST to the agent's operator API (`/slave(N)/api/v1`).
    fn operator_api(&self, location: &TaskLocation) -> reqwest::RequestBuilder {
        self.http.post(format!(
            "{}/{}/api/v1",
            location.agent_url, location.process
        ))
    }

    /// GET `url` as JSON; a non-2xx answer is an error with the peer's status and words.
    async fn get_json(&self, url: &str, what: &str) -> Result<Value, ClusterError> {
        let response = self
            .with_auth(self.http.get(url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(what, &e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| unreachable(what, &e))?;
        if !(200..300).contains(&status) {
            return Err(remote(
                502,
                format!(
                    "{what} answered HTTP {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| remote(502, format!("{what}: {e}")))
    }

    /// The agent's base URL and process id, from the leading master's list of agents.
    async fn agent_address(&self, agent_id: &str) -> Result<(String, String), ClusterError> {
        let Some(leader) = lock(&self.shared).leader.clone() else {
            return Err(remote(
                503,
                "Not connected to a Mesos master yet: the agents cannot be found",
            ));
        };
        let slaves = self
            .get_json(
                &format!("{leader}/master/slaves"),
                "the master's /master/slaves",
            )
            .await?;
        let agent = slaves["slaves"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"].as_str() == Some(agent_id))
            .ok_or_else(|| {
                remote(
                    404,
                    format!("Agent {agent_id} is not known to the Mesos master (it was removed)"),
                )
            })?;
        let pid = agent["pid"].as_str().unwrap_or_default();
        let (process, address) = pid.split_once('@').ok_or_else(|| {
            remote(
                502,
                format!("The master names agent {agent_id} with an unreadable pid {pid:?}"),
            )
        })?;
        let scheme = if leader.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        Ok((format!("{scheme}://{address}"), process.to_owned()))
    }

    /// Finds task `task_id` of framework `framework_id` on agent `agent_id`.
    ///
    /// # Errors
    /// [`ClusterError::Remote`]: 404 when the agent no longer knows the task (its sandbox
    /// was garbage-collected), 502/503 when the master or agent cannot be asked.
    pub async fn locate(
        &self,
        framework_id: &str,
        agent_id: &str,
        task_id: &str,
    ) -> Result<TaskLocation, ClusterError> {
        let (agent_url, process) = self.agent_address(agent_id).await?;
        let state = self
            .get_json(
                &format!("{agent_url}/{process}/state"),
                &format!("agent {agent_id}'s /state"),
            )
            .await?;
        find_task(&state, framework_id, task_id)
            .map(|(sandbox, container_id, active)| TaskLocation {
                agent_url,
                process,
                sandbox,
                container_id,
                active,
            })
            .ok_or_else(|| {
                remote(
                    404,
                    format!(
                        "Agent {agent_id} no longer knows task {task_id} (finished sandboxes \
                         are garbage-collected)"
                    ),
                )
            })
    }

    /// `GET /files/{op}` on the task's agent with `path` inside its sandbox (`path` is
    /// relative to the sandbox and was checked not to leave it) and `query` added.
    ///
    /// # Errors
    /// The agent cannot be reached (502).
    pub async fn files(
        &self,
        location: &TaskLocation,
        op: &str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<FilesReply, ClusterError> {
        let full = sandbox_path(&location.sandbox, path);
        let mut params: Vec<(&str, String)> = vec![("path", full)];
        params.extend(query.iter().cloned());
        let response = self
            .with_auth(
                self.http
                    .get(format!("{}/files/{op}", location.agent_url))
                    .query(&params),
            )
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable("the agent's files API", &e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable("the agent's files API", &e))?;
        Ok(FilesReply {
            status,
            content_type,
            body: body.to_vec(),
        })
    }

    /// Starts `cmd` in the task's container (a nested container session): returns the
    /// session's container id and its output stream (RecordIO `ProcessIO` records).
    ///
    /// # Errors
    /// The task has no container or is not active (409), the agent refuses (its status and
    /// words) or cannot be reached (502).
    pub async fn launch_session(
        &self,
        location: &TaskLocation,
        cmd: &[String],
        tty: bool,
    ) -> Result<(Value, SessionOutput), ClusterError> {
        let Some(parent) = location.container_id.clone().filter(|_| location.active) else {
            return Err(remote(
                409,
                "The task is not running on its agent: there is nothing to run a command in",
            ));
        };
        let Some((program, _)) = cmd.split_first() else {
            return Err(remote(400, "The command is empty"));
        };
        let container_id = json!({"value": uuid::Uuid::new_v4().to_string(), "parent": parent});
        let mut launch = json!({
            "container_id": container_id,
            "command": {"shell": false, "value": program, "arguments": cmd},
        });
        if tty {
            launch["container"] = json!({"type": "MESOS", "tty_info": {}});
        }
        let call = json!({
            "type": "LAUNCH_NESTED_CONTAINER_SESSION",
            "launch_nested_container_session": launch,
        });
        let response = self
            .with_auth(
                self.operator_api(location)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(reqwest::header::ACCEPT, "application/recordio")
                    .header("Message-Accept", "application/json")
                    .json(&call),
            )
            .send()
            .await
            .map_err(|e| unreachable("the agent's operator API", &e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.text().await.unwrap_or_default();
            return Err(remote(
                if status == 404 || status == 400 {
                    status
                } else {
                    502
                },
                format!(
                    "The agent refused to run '{program}' in the task: {}",
                    text.trim()
                ),
            ));
        }
        Ok((
            container_id,
            SessionOutput {
                response,
                decoder: berth_mesos::recordio::Decoder::new(),
            },
        ))
    }

    /// Streams the session's input: `input` yields stdin chunks; an empty chunk (or the end
    /// of `input`) is the end of input. Resizes come as `Err((rows, columns))`.
    ///
    /// # Errors
    /// The agent refuses the attach or cannot be reached.
    pub async fn attach_input(
        &self,
        location: &TaskLocation,
        container_id: &Value,
        input: tokio::sync::mpsc::Receiver<Input>,
    ) -> Result<(), ClusterError> {
        let first = json!({
            "type": "ATTACH_CONTAINER_INPUT",
            "attach_container_input": {"type": "CONTAINER_ID", "container_id": container_id},
        });
        let head = futures::stream::once(std::future::ready(record(&first)));
        let rest = futures::stream::unfold(input, |mut input| async move {
            let next = input.recv().await?;
            Some((input_record(&next), input))
        });
        let body = reqwest::Body::wrap_stream(
            head.chain(rest)
                .map(Ok::<Vec<u8>, std::convert::Infallible>),
        );
        let response = self
            .with_auth(
                self.operator_api(location)
                    .header(reqwest::header::CONTENT_TYPE, "application/recordio")
                    .header("Message-Content-Type", "application/json")
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(body),
            )
            .send()
            .await
            .map_err(|e| unreachable("the agent's operator API", &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(remote(
                502,
                format!("The agent refused the command's input: {}", text.trim()),
            ))
        }
    }

    /// Waits for the session to end; returns its exit code (128 + signal when killed).
    ///
    /// # Errors
    /// The agent refuses or cannot be reached.
    pub async fn wait_session(
        &self,
        location: &TaskLocation,
        container_id: &Value,
    ) -> Result<i32, ClusterError> {
        let call = json!({
            "type": "WAIT_NESTED_CONTAINER",
            "wait_nested_container": {"container_id": container_id},
        });
        let response = self
            .with_auth(
                self.operator_api(location)
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(&call),
            )
            .send()
            .await
            .map_err(|e| unreachable("the agent's operator API", &e))?;
        let status = response.status().as_u16();
        let body: Value = response
            .json()
            .await
            .map_err(|e| unreachable("the agent's operator API", &e))?;
        if !(200..300).contains(&status) {
            return Err(remote(502, format!("WAIT_NESTED_CONTAINER: HTTP {status}")));
        }
        let wait = body["wait_nested_container"]["exit_status"]
            .as_i64()
            .and_then(|s| i32::try_from(s).ok());
        Ok(wait.map_or(255, exit_code))
    }
}

/// What the client sends to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes for stdin; empty: the end of input.
    Data(Vec<u8>),
    /// The terminal was resized (rows, columns).
    Resize(u16, u16),
}

/// The RecordIO record of one JSON value.
fn record(v: &Value) -> Vec<u8> {
    berth_mesos::recordio::encode(v.to_string().as_bytes())
}

/// The ATTACH_CONTAINER_INPUT record carrying `input`.
fn input_record(input: &Input) -> Vec<u8> {
    let process_io = match input {
        Input::Data(bytes) => json!({
            "type": "DATA",
            "data": {
                "type": "STDIN",
                "data": base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }),
        Input::Resize(rows, columns) => json!({
            "type": "CONTROL",
            "control": {
                "type": "TTY_INFO",
                "tty_info": {"window_size": {"rows": rows, "columns": columns}},
            },
        }),
    };
    record(&json!({
        "type": "ATTACH_CONTAINER_INPUT",
        "attach_container_input": {"type": "PROCESS_IO", "process_io": process_io},
    }))
}

/// One chunk of a session's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes the command wrote to stdout (everything, with a terminal).
    Stdout(Vec<u8>),
    /// Bytes it wrote to stderr.
    Stderr(Vec<u8>),
}

/// A session's output stream.
#[derive(Debug)]
pub struct SessionOutput {
    response: reqwest::Response,
    decoder: berth_mesos::recordio::Decoder,
}

impl SessionOutput {
    /// The next chunk of output; `None` when the command's output has ended.
    ///
    /// # Errors
    /// The stream broke or carried something that is not a `ProcessIO` record.
    pub async fn next(&mut self) -> Result<Option<Output>, ClusterError> {
        loop {
            while let Some(record) = self.decoder.next_record() {
                if let Some(output) = read_output(&record)? {
                    return Ok(Some(output));
                }
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self
                    .decoder
                    .feed(&bytes)
                    .map_err(|e| remote(502, format!("the agent's output stream: {e}")))?,
                Ok(None) => return Ok(None),
                Err(e) => return Err(unreachable("the agent's output stream", &e)),
            }
        }
    }
}

/// Reads one `ProcessIO` record of a session's output; heartbeats and other controls are
/// skipped (`None`).
fn read_output(record: &[u8]) -> Result<Option<Output>, ClusterError> {
    let v: Value = serde_json::from_slice(record)
        .map_err(|e| remote(502, format!("the agent's output stream: {e}")))?;
    if v["type"] != "DATA" {
        return Ok(None);
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(v["data"]["data"].as_str().unwrap_or_default())
        .map_err(|e| remote(502, format!("the agent's output stream: {e}")))?;
    Ok(match v["data"]["type"].as_str() {
        Some("STDOUT") => Some(Output::Stdout(data)),
        Some("STDERR") => Some(Output::Stderr(data)),
        _ => None,
    })
}

/// The exit code of a `wait(2)` status: the code, or 128 + the signal.
fn exit_code(status: i32) -> i32 {
    if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    }
}

/// `sandbox` joined with the relative `path`.
fn sandbox_path(sandbox: &str, path: &str) -> String {
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        sandbox.to_owned()
    } else {
        format!("{}/{rel}", sandbox.trim_end_matches('/'))
    }
}

/// The sandbox, container id and activity of `task_id` in an agent's `/state`.
fn find_task(
    state: &Value,
    framework_id: &str,
    task_id: &str,
) -> Option<(String, Option<Value>, bool)> {
    let frameworks = ["frameworks", "completed_frameworks"]
        .iter()
        .flat_map(|k| state[*k].as_array().into_iter().flatten())
        .filter(|f| f["id"].as_str() == Some(framework_id));
    for framework in frameworks {
        let executors = ["executors", "completed_executors"]
            .iter()
            .flat_map(|k| framework[*k].as_array().into_iter().flatten());
        for executor in executors {
            for (key, active) in [
                ("tasks", true),
                ("queued_tasks", true),
                ("completed_tasks", false),
            ] {
                let Some(task) = executor[key]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|t| t["id"].as_str() == Some(task_id))
                else {
                    continue;
                };
                let directory = executor["directory"].as_str()?.trim_end_matches('/');
                // Tasks of a pod (the default executor) have sandboxes of their own inside
                // the executor's; a command executor's task uses the executor's.
                let sandbox = if executor["type"].as_str() == Some("DEFAULT") {
                    format!("{directory}/tasks/{task_id}")
                } else {
                    directory.to_owned()
                };
                let container = task["statuses"]
                    .as_array()
                    .and_then(|s| {
                        s.iter()
                            .rev()
                            .find_map(|st| st["container_status"]["container_id"].as_object())
                    })
                    .map(|c| Value::Object(c.clone()));
                return Some((sandbox, container, active && key == "tasks"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_task_has_its_own_sandbox_and_container() {
        let state = json!({"frameworks": [{"id": "fw", "executors": [{
            "id": "e", "directory": "/w/slaves/a/frameworks/fw/executors/e/runs/c1",
            "type": "DEFAULT", "tasks": [{"id": "t1", "statuses": [
                {"state": "TASK_STARTING"},
                {"state": "TASK_RUNNING", "container_status": {"container_id":
                    {"value": "c2", "parent": {"value": "c1"}}}}]}],
            "completed_tasks": [{"id": "t0"}]}]}]});
        let (sandbox, container, active) = find_task(&state, "fw", "t1").unwrap();
        assert_eq!(
            sandbox,
            "/w/slaves/a/frameworks/fw/executors/e/runs/c1/tasks/t1"
        );
        assert_eq!(container.unwrap()["parent"]["value"], "c1");
        assert!(active);
        let (_, container, active) = find_task(&state, "fw", "t0").unwrap();
        assert!(container.is_none() && !active);
        assert!(find_task(&state, "other", "t1").is_none());
    }

    #[test]
    fn wait_statuses_become_exit_codes() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(9), 137);
    }

    #[test]
    fn sandbox_paths_join() {
        assert_eq!(sandbox_path("/s/", "/stdout"), "/s/stdout");
        assert_eq!(sandbox_path("/s", ""), "/s");
        assert_eq!(sandbox_path("/s", "a/b"), "/s/a/b");
    }
}
