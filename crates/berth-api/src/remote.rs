//! The files and exec routes on Mesos: the task is found in the scheduler's state, its
//! sandbox and container on its agent ([`AgentApi`]), and the agent's files API and operator
//! API do the work. Answers keep the shapes of the local cluster's: paths in `browse` are
//! relative to the sandbox, exec streams the same frames.

use axum::response::Response;
use berth_cluster::ClusterError;
use berth_cluster::mesos::agents::{AgentApi, Input, Output, TaskLocation};
use berth_scheduler::api::{Body as ReplyBody, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

use crate::exec::{EXIT, ExecRequest, STDERR, STDOUT, frame};
use crate::reply;
use crate::routes::FileOp;
use crate::tasks;

/// An error answer of the agents' side.
fn error_response(e: &ClusterError) -> Response {
    match e {
        ClusterError::Remote { status, message } => reply::text(*status, message.clone()),
        other => reply::text(502, other.to_string()),
    }
}

/// Finds task `id` in the scheduler's state and then on its agent.
async fn locate(
    handle: &berth_scheduler::SchedulerHandle,
    agents: &AgentApi,
    id: &str,
) -> Result<TaskLocation, Response> {
    let reply = handle.request(Request::Tasks { completed: true }).await;
    let tasks = match reply.body {
        ReplyBody::Json(Value::Array(tasks)) if reply.status == 200 => tasks,
        _ => return Err(reply::to_response(reply)),
    };
    let Some(task) = tasks.iter().find(|t| t["id"].as_str() == Some(id)) else {
        return Err(reply::text(404, format!("Task {id} not found")));
    };
    let field = |name: &str| task[name].as_str().unwrap_or_default().to_owned();
    agents
        .locate(&field("framework_id"), &field("agent"), id)
        .await
        .map_err(|e| error_response(&e))
}

/// `GET /v1/tasks/{id}/files/{op}` through the task's agent.
pub(crate) async fn files(
    handle: &berth_scheduler::SchedulerHandle,
    agents: &AgentApi,
    id: &str,
    op: FileOp,
    path: &str,
    (offset, length): (i64, Option<u64>),
) -> Response {
    let relative = match tasks::relative(id, path) {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(e) => return reply::text(e.status, e.message),
    };
    let location = match locate(handle, agents, id).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    if let (FileOp::Read, Ok(start)) = (op, u64::try_from(offset)) {
        // Agents cap a read (at 16 pages): read on until the length asked for is there.
        let want = length.unwrap_or(tasks::MAX_READ).min(tasks::MAX_READ);
        let mut data = String::new();
        loop {
            let got = data.len() as u64;
            let query = [
                ("offset", (start + got).to_string()),
                ("length", (want - got).to_string()),
            ];
            let answer = match agents.files(&location, "read", &relative, &query).await {
                Ok(a) => a,
                Err(e) => return error_response(&e),
            };
            if !(200..300).contains(&answer.status) {
                return agent_error(answer.status, &answer.body, id, path);
            }
            let chunk = match serde_json::from_slice::<Value>(&answer.body) {
                Ok(v) => v["data"].as_str().unwrap_or_default().to_owned(),
                Err(e) => return reply::text(502, format!("The agent's answer is not JSON: {e}")),
            };
            data.push_str(&chunk);
            if chunk.is_empty() || data.len() as u64 >= want {
                break;
            }
        }
        return reply::json(200, &serde_json::json!({"data": data, "offset": start}));
    }
    let (name, query) = match op {
        FileOp::Browse => ("browse", Vec::new()),
        FileOp::Download => ("download", Vec::new()),
        FileOp::Read => ("read", vec![("offset", offset.to_string())]),
    };
    let answer = match agents.files(&location, name, &relative, &query).await {
        Ok(a) => a,
        Err(e) => return error_response(&e),
    };
    if !(200..300).contains(&answer.status) {
        return agent_error(answer.status, &answer.body, id, path);
    }
    match op {
        FileOp::Download => {
            let file = relative.rsplit('/').next().unwrap_or("file").to_owned();
            reply::download(&file, answer.body)
        }
        FileOp::Read => match serde_json::from_slice::<Value>(&answer.body) {
            Ok(v) => reply::json(200, &v),
            Err(e) => reply::text(502, format!("The agent's answer is not JSON: {e}")),
        },
        FileOp::Browse => match serde_json::from_slice::<Value>(&answer.body) {
            Ok(v) => reply::json(200, &relative_listing(v, &location.sandbox)),
            Err(e) => reply::text(502, format!("The agent's answer is not JSON: {e}")),
        },
    }
}

/// The answer to an agent's error: its 404 names the file, its 400 is passed on, anything
/// else is a 502.
fn agent_error(status: u16, body: &[u8], id: &str, path: &str) -> Response {
    if status == 404 {
        return reply::text(
            404,
            format!("No such file or directory '{path}' in the sandbox of task {id}"),
        );
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    let status = if status == 400 { 400 } else { 502 };
    reply::text(status, format!("The agent answered: {text}"))
}

/// The agent's listing with paths relative to the sandbox, sorted, as the local cluster's.
fn relative_listing(listing: Value, sandbox: &str) -> Value {
    let prefix = format!("{}/", sandbox.trim_end_matches('/'));
    let mut entries: Vec<Value> = match listing {
        Value::Array(entries) => entries,
        _ => Vec::new(),
    };
    for e in &mut entries {
        if let Some(p) = e["path"].as_str() {
            let rel = p.strip_prefix(&prefix).unwrap_or(p).to_owned();
            e["path"] = Value::String(rel);
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Value::Array(entries)
}

/// `POST /v1/tasks/{id}/exec` through the task's agent: a nested container session.
pub(crate) async fn exec(
    handle: &berth_scheduler::SchedulerHandle,
    agents: &AgentApi,
    id: &str,
    on_upgrade: hyper::upgrade::OnUpgrade,
    request: &ExecRequest,
) -> Response {
    if request.cmd.is_empty() {
        return reply::text(
            400,
            "The command is empty: give the program and its arguments, e.g. {\"cmd\": [\"ls\", \"-l\"]}",
        );
    }
    let location = match locate(handle, agents, id).await {
        Ok(l) => l,
        Err(response) => return response,
    };
    if !location.active {
        return reply::text(409, format!("Task {id} is not running"));
    }
    let (container, output) = match agents
        .launch_session(&location, &request.cmd, request.tty)
        .await
    {
        Ok(session) => session,
        Err(e) => return error_response(&e),
    };
    let agents = agents.clone();
    // With a terminal, the end of an interactive client's input is a hang-up.
    let hang_up_on_eof = request.interactive && request.tty;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                stream(
                    TokioIo::new(upgraded),
                    &agents,
                    &location,
                    &container,
                    output,
                    hang_up_on_eof,
                )
                .await;
            }
            Err(e) => tracing::warn!("exec: the connection was not upgraded: {e}"),
        }
    });
    crate::exec::switching_protocols()
}

/// Copies the client's input to the session and its output back as frames, then the exit
/// code. A client that goes away drops the output stream, which ends the session on the
/// agent.
async fn stream<S>(
    conn: S,
    agents: &AgentApi,
    location: &TaskLocation,
    container: &Value,
    mut output: berth_cluster::mesos::agents::SessionOutput,
    hang_up_on_eof: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut from_client, mut to_client) = tokio::io::split(conn);
    let (input, input_rx) = mpsc::channel::<Input>(16);
    // An interactive client whose input ends has hung up (as on the local cluster).
    let (hung_up, mut hang_up) = mpsc::channel::<()>(1);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.send(Input::Data(buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = input.send(Input::Data(Vec::new())).await;
        if hang_up_on_eof {
            let _ = hung_up.send(()).await;
        }
    });
    let attach = {
        let agents = agents.clone();
        let location = location.clone();
        let container = container.clone();
        tokio::spawn(async move {
            if let Err(e) = agents.attach_input(&location, &container, input_rx).await {
                tracing::warn!("exec: {e}");
            }
        })
    };
    let mut client_gone = false;
    loop {
        let next = tokio::select! {
            next = output.next() => next,
            Some(()) = hang_up.recv() => {
                client_gone = true;
                break;
            }
        };
        let (kind, data) = match next {
            Ok(Some(Output::Stdout(d))) => (STDOUT, d),
            Ok(Some(Output::Stderr(d))) => (STDERR, d),
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("exec: {e}");
                break;
            }
        };
        if write_frame(&mut to_client, kind, &data).await.is_err() {
            client_gone = true;
            break;
        }
    }
    drop(output);
    if !client_gone {
        let code = agents
            .wait_session(location, container)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("exec: {e}");
                255
            });
        let _ = write_frame(&mut to_client, EXIT, &code.to_be_bytes()).await;
        let _ = to_client.shutdown().await;
    }
    reader.abort();
    attach.abort();
}

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    to: &mut W,
    kind: u8,
    data: &[u8],
) -> std::io::Result<()> {
    to.write_all(&frame(kind, data)).await?;
    to.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_name_paths_inside_the_sandbox() {
        let v = serde_json::json!([
            {"path": "/w/s/stdout", "size": 3},
            {"path": "/w/s/data", "size": 0},
        ]);
        let out = relative_listing(v, "/w/s");
        assert_eq!(out[0]["path"], "data");
        assert_eq!(out[1]["path"], "stdout");
    }
}
