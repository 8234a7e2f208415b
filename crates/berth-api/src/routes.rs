//! The route table and its handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, get, on, post};
use berth_cluster::mesos::agents::AgentApi;
use berth_plan::{CommandTarget, PlanCommand};
use berth_scheduler::{Request, SchedulerHandle};

use crate::agents::AgentControl;
use crate::params;
use crate::reply;
use crate::tasks::{self, TaskSandbox};

/// What every handler shares.
#[derive(Clone)]
struct Api {
    handle: SchedulerHandle,
    agents: Option<Arc<dyn AgentControl>>,
    /// Mesos agents, reached through the master (task sandboxes and exec there).
    remote: Option<AgentApi>,
}

impl Api {
    async fn ask(&self, request: Request) -> Response {
        reply::to_response(self.handle.request(request).await)
    }
}

/// The query string, decoded (or why it could not be).
type Q = params::Query;

/// Checks the query against the parameters a route takes; the error is the 400 message.
fn params(query: Q, allowed: &[&str]) -> Result<BTreeMap<String, String>, String> {
    params::from_query(query, allowed)
}

/// A 400 with the message.
fn bad_request(message: String) -> Response {
    reply::text(400, message)
}

/// A route without path arguments or parameters that asks one thing.
fn ask0(filter: MethodFilter, make: fn() -> Request) -> MethodRouter<Api> {
    on(filter, move |State(api): State<Api>, query: Q| async move {
        match params(query, &[]) {
            Ok(_) => api.ask(make()).await,
            Err(m) => bad_request(m),
        }
    })
}

/// A route with one path argument and no parameters.
fn ask1(filter: MethodFilter, make: fn(String) -> Request) -> MethodRouter<Api> {
    on(
        filter,
        move |State(api): State<Api>, Path(arg): Path<String>, query: Q| async move {
            match params(query, &[]) {
                Ok(_) => api.ask(make(arg)).await,
                Err(m) => bad_request(m),
            }
        },
    )
}

/// The plan commands other than `start`, with the query parameters each takes.
#[derive(Debug, Clone, Copy)]
enum Command {
    Stop,
    Interrupt,
    Continue,
    ForceComplete,
    Restart,
}

impl Command {
    fn command(self) -> PlanCommand {
        match self {
            Command::Stop => PlanCommand::Stop,
            Command::Interrupt => PlanCommand::Interrupt,
            Command::Continue => PlanCommand::Continue,
            Command::ForceComplete => PlanCommand::ForceComplete,
            Command::Restart => PlanCommand::Restart,
        }
    }

    fn allowed(self) -> &'static [&'static str] {
        match self {
            Command::Stop => &[],
            Command::Interrupt | Command::Continue => &["phase"],
            Command::ForceComplete | Command::Restart => &["phase", "step"],
        }
    }
}

async fn plan_command(api: Api, plan: String, command: Command, query: Q) -> Response {
    let mut p = match params(query, command.allowed()) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let target = CommandTarget {
        plan,
        phase: p.remove("phase"),
        step: p.remove("step"),
    };
    api.ask(Request::PlanCommand(command.command(), target))
        .await
}

/// `POST /v1/plans/{plan}/<command>`.
fn command_route(command: Command) -> MethodRouter<Api> {
    post(
        move |State(api): State<Api>, Path(plan): Path<String>, query: Q| {
            plan_command(api, plan, command, query)
        },
    )
}

/// `POST /v1/plan/<command>` (deprecated): the command on `deploy`.
fn deprecated_command_route(command: Command) -> MethodRouter<Api> {
    post(move |State(api): State<Api>, query: Q| {
        plan_command(api, "deploy".to_owned(), command, query)
    })
}

async fn start_plan(
    State(api): State<Api>,
    Path(plan): Path<String>,
    query: Q,
    body: Bytes,
) -> Response {
    if let Err(m) = params(query, &[]) {
        return bad_request(m);
    }
    let parameters = match params::start_parameters(&body) {
        Ok(p) => p,
        Err(m) => return reply::text(400, m),
    };
    let target = CommandTarget {
        plan,
        phase: None,
        step: None,
    };
    api.ask(Request::PlanCommand(
        PlanCommand::Start(parameters.into_iter().collect()),
        target,
    ))
    .await
}

/// `POST /v1/pods/{pod}/pause|resume` with an optional JSON array of task names.
fn pause_route(make: fn(String, Vec<String>) -> Request) -> MethodRouter<Api> {
    post(
        move |State(api): State<Api>, Path(pod): Path<String>, query: Q, body: Bytes| async move {
            if let Err(m) = params(query, &[]) {
                return bad_request(m);
            }
            match params::task_list(&body) {
                Ok(tasks) => api.ask(make(pod, tasks)).await,
                Err(m) => reply::text(400, m),
            }
        },
    )
}

async fn health(State(api): State<Api>, query: Q) -> Response {
    let verbose = params(query, &["verbose"]).and_then(|p| params::boolean(&p, "verbose"));
    match verbose {
        Ok(verbose) => api.ask(Request::Health { verbose }).await,
        Err(m) => bad_request(m),
    }
}

async fn state_tree(State(api): State<Api>, query: Q) -> Response {
    match params(query, &["path"]) {
        Ok(mut p) => api.ask(Request::StateTree(p.remove("path"))).await,
        Err(m) => bad_request(m),
    }
}

async fn state_node(State(api): State<Api>, query: Q) -> Response {
    match params(query, &["path"]) {
        Ok(mut p) => match p.remove("path") {
            Some(path) => api.ask(Request::StateNode(path)).await,
            None => bad_request("Missing parameter: path".to_owned()),
        },
        Err(m) => bad_request(m),
    }
}

async fn template(
    State(api): State<Api>,
    Path((config, pod, task, name)): Path<(String, String, String, String)>,
    query: Q,
) -> Response {
    if let Err(m) = params(query, &[]) {
        return bad_request(m);
    }
    api.ask(Request::Template {
        config,
        pod,
        task,
        name,
    })
    .await
}

/// The debug routes' filters `plan`, `phase`, `step` (and `sync`, a boolean that changes
/// nothing here: every answer is current).
type ElementFilter = (Option<String>, Option<String>, Option<String>);

fn element_filter(query: Q) -> Result<ElementFilter, String> {
    let mut p = params(query, &["plan", "phase", "step", "sync"])?;
    params::boolean(&p, "sync")?;
    Ok((p.remove("plan"), p.remove("phase"), p.remove("step")))
}

/// `GET /v2/debug/offers?plan=&phase=&step=&sync=`.
async fn debug_offers(State(api): State<Api>, query: Q) -> Response {
    match element_filter(query) {
        Ok((plan, phase, step)) => api.ask(Request::DebugOffers { plan, phase, step }).await,
        Err(m) => bad_request(m),
    }
}

/// `GET /v1/debug/taskStatuses?plan=&phase=&step=&sync=`.
async fn debug_task_statuses(State(api): State<Api>, query: Q) -> Response {
    match element_filter(query) {
        Ok((plan, phase, step)) => {
            api.ask(Request::DebugTaskStatuses { plan, phase, step })
                .await
        }
        Err(m) => bad_request(m),
    }
}

/// `GET /v1/debug/reservations?plan=&phase=&step=&sync=` (the filters are accepted and, as
/// in the reference, do not narrow the answer).
async fn debug_reservations(State(api): State<Api>, query: Q) -> Response {
    match element_filter(query) {
        Ok(_) => api.ask(Request::DebugReservations).await,
        Err(m) => bad_request(m),
    }
}

/// `PUT /v1/state/files/{name}`: the multipart field `file`.
async fn put_state_file(
    State(api): State<Api>,
    Path(name): Path<String>,
    query: Q,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Err(m) = params(query, &[]) {
        return bad_request(m);
    }
    let Ok(mut multipart) = multipart else {
        return bad_request(
            "Expected a multipart/form-data body with the file in the field 'file' (curl -X PUT \
             -F file=@FILE …)"
                .to_owned(),
        );
    };
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => {
                return match field.bytes().await {
                    Ok(bytes) => api.ask(Request::PutStateFile(name, bytes.to_vec())).await,
                    Err(e) => bad_request(format!("Cannot read the field 'file': {e}")),
                };
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return bad_request("The multipart body has no field 'file'".to_owned());
            }
            Err(e) => return bad_request(format!("Malformed multipart body: {e}")),
        }
    }
}

/// `GET /v1/state/zone/{podType}/{ip}`.
async fn zone_of(
    State(api): State<Api>,
    Path((pod_type, ip)): Path<(String, String)>,
    query: Q,
) -> Response {
    match params(query, &[]) {
        Ok(_) => api.ask(Request::ZoneOf(pod_type, ip)).await,
        Err(m) => bad_request(m),
    }
}

/// What an agents route does.
#[derive(Debug, Clone, Copy)]
enum AgentOp {
    Stop,
    Start,
    Drain,
}

async fn agents_call(api: Api, op: Option<AgentOp>, id: String, query: Q) -> Response {
    if let Err(m) = params(query, &[]) {
        return bad_request(m);
    }
    let Some(control) = api.agents.clone() else {
        return reply::text(404, "Agents are not managed by this scheduler");
    };
    // Agent controls may block (a stop waits for processes to die): run them off the
    // reactor. A panicking control becomes a 500.
    let result = tokio::task::spawn_blocking(move || match op {
        None => control.list(),
        Some(AgentOp::Stop) => control.stop(&id),
        Some(AgentOp::Start) => control.start(&id),
        Some(AgentOp::Drain) => control.drain(&id),
    })
    .await;
    match result {
        Ok(Ok(value)) => reply::json(200, &value),
        Ok(Err(e)) => reply::text(e.status(), e.to_string()),
        Err(e) => reply::text(500, format!("The agent control failed: {e}")),
    }
}

/// `GET /v1/tasks[?completed=true]`: active tasks, and finished ones with `completed`.
async fn tasks_list(State(api): State<Api>, query: Q) -> Response {
    let completed =
        match params(query, &["completed"]).and_then(|p| params::boolean(&p, "completed")) {
            Ok(c) => c,
            Err(m) => return bad_request(m),
        };
    if api.agents.is_none() {
        // The cluster serves no sandboxes (Mesos): the scheduler's own record of its tasks.
        return api.ask(Request::Tasks { completed }).await;
    }
    match task_runs(&api).await {
        Ok(runs) => {
            let shown: Vec<&TaskSandbox> = runs.iter().filter(|t| completed || t.active).collect();
            reply::json(200, &serde_json::to_value(shown).unwrap_or_default())
        }
        Err(response) => response,
    }
}

/// Every task run of the cluster, read off the reactor.
async fn task_runs(api: &Api) -> Result<Vec<TaskSandbox>, Response> {
    let Some(control) = api.agents.clone() else {
        return Err(reply::text(
            404,
            "Task sandboxes are served on the local cluster only; on Mesos read them through \
             the agent's files API (the Mesos UI's Sandbox link)",
        ));
    };
    match tokio::task::spawn_blocking(move || control.tasks()).await {
        Ok(Ok(runs)) => Ok(runs),
        Ok(Err(e)) => Err(reply::text(e.status(), e.to_string())),
        Err(e) => Err(reply::text(500, format!("Listing the tasks failed: {e}"))),
    }
}

/// A read's `offset` (default 0; -1: the end) and `length` (default: as much as allowed).
fn read_range(p: &BTreeMap<String, String>) -> Result<(i64, Option<u64>), String> {
    let number = |name: &str| -> Result<Option<i64>, String> {
        p.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    format!("Invalid value '{v}' for parameter '{name}': expected an integer")
                })
            })
            .transpose()
    };
    match (number("offset")?, number("length")?) {
        (o, l) if l.is_none_or(|l| l >= 0) && o.is_none_or(|o| o >= -1) => {
            Ok((o.unwrap_or(0), l.map(i64::unsigned_abs)))
        }
        _ => Err(
            "Invalid offset or length: offset is -1 (the end) or more, length 0 or more".to_owned(),
        ),
    }
}

/// What a files route does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileOp {
    Browse,
    Read,
    Download,
}

/// `GET /v1/tasks/{taskId}/files/{browse,read,download}?path=…`.
async fn task_files(api: Api, id: String, op: FileOp, query: Q) -> Response {
    let allowed: &[&str] = match op {
        FileOp::Read => &["path", "offset", "length"],
        FileOp::Browse | FileOp::Download => &["path"],
    };
    let p = match params(query, allowed) {
        Ok(p) => p,
        Err(m) => return bad_request(m),
    };
    let (offset, length) = match read_range(&p) {
        Ok(range) => range,
        Err(m) => return bad_request(m),
    };
    let path = p.get("path").cloned().unwrap_or_default();
    if path.is_empty() && !matches!(op, FileOp::Browse) {
        return bad_request(
            "Missing parameter 'path': the file to read, e.g. path=stdout".to_owned(),
        );
    }
    if let (None, Some(remote)) = (&api.agents, &api.remote) {
        return crate::remote::files(&api.handle, remote, &id, op, &path, (offset, length)).await;
    }
    let runs = match task_runs(&api).await {
        Ok(runs) => runs,
        Err(response) => return response,
    };
    let Some(task) = runs.into_iter().rev().find(|t| t.id == id) else {
        return reply::text(404, format!("Task {id} not found"));
    };
    let result = tokio::task::spawn_blocking(move || match op {
        FileOp::Browse => tasks::browse(&task, &path).map(|v| reply::json(200, &v)),
        FileOp::Read => tasks::read(&task, &path, offset, length).map(|v| reply::json(200, &v)),
        FileOp::Download => tasks::download(&task, &path).map(|bytes| {
            let name = path.rsplit('/').next().unwrap_or("file").to_owned();
            reply::download(&name, bytes)
        }),
    })
    .await;
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => reply::text(e.status, e.message),
        Err(e) => reply::text(500, format!("Reading the sandbox failed: {e}")),
    }
}

/// `POST /v1/tasks/{taskId}/exec` (see [`crate::exec`]).
async fn task_exec(
    State(api): State<Api>,
    Path(id): Path<String>,
    query: Q,
    mut request: HttpRequest,
) -> Response {
    if let Err(m) = params(query, &[]) {
        return bad_request(m);
    }
    let upgrade = request
        .headers()
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(crate::exec::PROTOCOL));
    let on_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>();
    let (true, Some(on_upgrade)) = (upgrade, on_upgrade) else {
        return reply::text(
            426,
            format!(
                "Exec streams over an upgraded connection: send 'Connection: Upgrade' and \
                 'Upgrade: {}' (berth task exec does)",
                crate::exec::PROTOCOL
            ),
        );
    };
    let body = match axum::body::to_bytes(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return bad_request(format!("Cannot read the request body: {e}")),
    };
    let exec: crate::exec::ExecRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad_request(format!(
                "Invalid body: {e}; expected {{\"cmd\": [\"program\", \"arg\", …], \"tty\": false}}"
            ));
        }
    };
    let Some(control) = api.agents.clone() else {
        if let Some(remote) = &api.remote {
            tracing::info!(task = %id, cmd = ?exec.cmd, tty = exec.tty, "exec in a task on Mesos");
            return crate::remote::exec(&api.handle, remote, &id, on_upgrade, &exec).await;
        }
        return reply::text(404, "Tasks are not served by this scheduler");
    };
    let task = id.clone();
    let target = match tokio::task::spawn_blocking(move || control.exec_target(&task)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return reply::text(e.status(), e.to_string()),
        Err(e) => return reply::text(500, format!("Finding the task failed: {e}")),
    };
    tracing::info!(task = %id, cmd = ?exec.cmd, tty = exec.tty, "exec in a task");
    crate::exec::respond(on_upgrade, &target, &exec)
}

fn files_route(op: FileOp) -> MethodRouter<Api> {
    get(
        move |State(api): State<Api>, Path(id): Path<String>, query: Q| {
            task_files(api, id, op, query)
        },
    )
}

fn agent_route(op: AgentOp) -> MethodRouter<Api> {
    post(
        move |State(api): State<Api>, Path(id): Path<String>, query: Q| {
            agents_call(api, Some(op), id, query)
        },
    )
}

/// The dashboard: one page of our own (HTML, CSS and JavaScript built into the binary, no
/// network needed) that polls the API every 2 s.
async fn dashboard() -> Response {
    let mut response = reply::text(200, include_str!("dashboard.html"));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

async fn not_found(uri: Uri) -> Response {
    reply::text(404, format!("Unknown path: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    reply::text(
        405,
        format!("Method {method} is not allowed on {}", uri.path()),
    )
}

async fn log_request(request: HttpRequest, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        "{method} {uri} → {} ({} µs)",
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
    response
}

/// The API's router: every route of the reference's plans, pods, state, configurations,
/// artifacts, health and debug endpoints, plus `/v1/agents` when `agents` is given.
///
/// | method | path | scheduler request |
/// |---|---|---|
/// | GET | `/v1/plans` | `Plans` |
/// | GET | `/v1/plans/{plan}` | `Plan` (200 complete, 202 in progress, 417 errors) |
/// | POST | `/v1/plans/{plan}/start` | `PlanCommand(Start)`; body: JSON object of strings |
/// | POST | `/v1/plans/{plan}/stop` | `PlanCommand(Stop)` |
/// | POST | `/v1/plans/{plan}/interrupt`, `continue` | `?phase=` |
/// | POST | `/v1/plans/{plan}/forceComplete`, `restart` | `?phase=&step=` |
/// | GET / POST | `/v1/plan`, `/v1/plan/{continue,interrupt,forceComplete,restart}` | the same on `deploy` (deprecated) |
/// | GET | `/v1/pods` and `/v1/pod` | `Pods` |
/// | GET | `/v1/pods/status`, `/v1/pods/{pod}/status`, `/v1/pods/{pod}/info` | `PodsStatus`, `PodStatus`, `PodInfo` |
/// | POST | `/v1/pods/{pod}/restart`, `replace` | `PodRestart`, `PodReplace` |
/// | POST | `/v1/pods/{pod}/pause`, `resume` | body: optional JSON array of task names |
/// | GET | `/v1/state/frameworkId`, `/v1/state/properties`, `/v1/state/properties/{key}` | state |
/// | GET | `/v1/state/tree?path=`, `/v1/state/node?path=` | `StateTree`, `StateNode` (stored nodes; path relative to the service root, or absolute) |
/// | POST | `/v1/uninstall` | `Uninstall` |
/// | GET | `/v1/configurations`, `/{id}`, `/targetId`, `/target` | configurations |
/// | GET | `/v1/configurations/history` | `ConfigHistory`: the targets applied, newest first |
/// | POST | `/v1/update`, `/v1/update/rollback` (see [`crate::with_updates`]) | `Update`, `Rollback` |
/// | GET | `/v1/health` | `?verbose=true\|false`; the status is the health code |
/// | GET | `/v1/endpoints`, `/v1/endpoints/{name}` | `Endpoints`, `Endpoint` (advertised ports by name; 404 unknown) |
/// | GET | `/v1/artifacts/template/{config}/{pod}/{task}/{name}` | `Template` |
/// | GET | `/v1/artifacts/bootstrap` | the berth executable (see [`with_bootstrap`]) |
/// | GET | `/v2/debug/offers?plan=&phase=&step=`, `/v1/debug/plans` | `DebugOffers`, `DebugHistory` |
/// | GET | `/v1/debug/taskStatuses?plan=&phase=&step=`, `/v1/debug/reservations` | `DebugTaskStatuses`, `DebugReservations` |
/// | GET / PUT | `/v1/state/files`, `/v1/state/files/{name}` (PUT: multipart field `file`, ≤ 1024 bytes) | `StateFiles`, `StateFile`, `PutStateFile` |
/// | GET | `/v1/state/zone/tasks`, `/v1/state/zone/tasks/{task}`, `/v1/state/zone/{podType}/{ip}` | `ZoneTasks`, `ZoneTask`, `ZoneOf` |
/// | PUT | `/v1/state/refresh` | `StateRefresh` |
/// | GET | `/v1/agents` | [`AgentControl::list`] |
/// | POST | `/v1/agents/{id}/stop`, `start`, `drain` | [`AgentControl`] |
/// | GET | `/v1/tasks?completed=` | [`AgentControl::tasks`]: active tasks (and finished ones); on Mesos the scheduler's own record |
/// | GET | `/v1/tasks/{id}/files/browse`, `read`, `download` | the task's sandbox; on Mesos through the agent's files API |
/// | POST | `/v1/tasks/{id}/exec` (upgraded connection, see [`crate::exec`]) | [`AgentControl::exec_target`]; on Mesos a nested container session on the agent |
/// | GET | `/v1/tasks/{id}/files/browse?path=`, `read?path=&offset=&length=`, `download?path=` | a task's sandbox (see [`crate::tasks`]) |
///
/// Every pod route is served under both `/v1/pods` and `/v1/pod`.
pub fn router(
    handle: SchedulerHandle,
    agents: Option<Arc<dyn AgentControl>>,
    remote: Option<AgentApi>,
) -> Router {
    use MethodFilter as M;
    let mut r: Router<Api> = Router::new()
        // Plans.
        .route("/v1/plans", ask0(M::GET, || Request::Plans))
        .route("/v1/plans/{plan}", ask1(M::GET, Request::Plan))
        .route("/v1/plans/{plan}/start", post(start_plan))
        .route("/v1/plans/{plan}/stop", command_route(Command::Stop))
        .route(
            "/v1/plans/{plan}/interrupt",
            command_route(Command::Interrupt),
        )
        .route(
            "/v1/plans/{plan}/continue",
            command_route(Command::Continue),
        )
        .route(
            "/v1/plans/{plan}/forceComplete",
            command_route(Command::ForceComplete),
        )
        .route("/v1/plans/{plan}/restart", command_route(Command::Restart))
        // Deprecated plan routes, on `deploy`.
        .route(
            "/v1/plan",
            ask0(M::GET, || Request::Plan("deploy".to_owned())),
        )
        .route(
            "/v1/plan/interrupt",
            deprecated_command_route(Command::Interrupt),
        )
        .route(
            "/v1/plan/continue",
            deprecated_command_route(Command::Continue),
        )
        .route(
            "/v1/plan/forceComplete",
            deprecated_command_route(Command::ForceComplete),
        )
        .route(
            "/v1/plan/restart",
            deprecated_command_route(Command::Restart),
        )
        // State.
        .route(
            "/v1/state/frameworkId",
            ask0(M::GET, || Request::FrameworkId),
        )
        .route("/v1/state/properties", ask0(M::GET, || Request::Properties))
        .route(
            "/v1/state/properties/{key}",
            ask1(M::GET, Request::Property),
        )
        .route("/v1/state/tree", get(state_tree))
        .route("/v1/state/node", get(state_node))
        // The dashboard and this API's description.
        .route("/", get(dashboard))
        .route(
            "/v1/openapi.json",
            get(|| async { reply::json(200, &crate::openapi::document()) }),
        )
        // Uninstall.
        .route("/v1/uninstall", ask0(M::POST, || Request::Uninstall))
        // Configurations.
        .route(
            "/v1/configurations",
            ask0(M::GET, || Request::Configurations),
        )
        .route(
            "/v1/configurations/targetId",
            ask0(M::GET, || Request::TargetId),
        )
        .route(
            "/v1/configurations/target",
            ask0(M::GET, || Request::Target),
        )
        .route(
            "/v1/configurations/history",
            ask0(M::GET, || Request::ConfigHistory),
        )
        .route(
            "/v1/configurations/{id}",
            ask1(M::GET, Request::Configuration),
        )
        // Health, artifacts, debug.
        .route("/v1/health", get(health))
        .route(
            "/v1/artifacts/template/{config}/{pod}/{task}/{name}",
            get(template),
        )
        .route("/v1/endpoints", ask0(M::GET, || Request::Endpoints))
        .route("/v1/endpoints/{name}", ask1(M::GET, Request::Endpoint))
        .route("/v2/debug/offers", get(debug_offers))
        .route("/v1/debug/plans", ask0(M::GET, || Request::DebugHistory))
        .route("/v1/debug/taskStatuses", get(debug_task_statuses))
        .route("/v1/debug/reservations", get(debug_reservations))
        // State files, zones, refresh.
        .route("/v1/state/files", ask0(M::GET, || Request::StateFiles))
        .route(
            "/v1/state/files/{name}",
            ask1(M::GET, Request::StateFile).put(put_state_file),
        )
        .route("/v1/state/zone/tasks", ask0(M::GET, || Request::ZoneTasks))
        .route(
            "/v1/state/zone/tasks/{task}",
            ask1(M::GET, Request::ZoneTask),
        )
        .route("/v1/state/zone/{pod_type}/{ip}", get(zone_of))
        .route("/v1/state/refresh", ask0(M::PUT, || Request::StateRefresh))
        // Agents.
        .route(
            "/v1/agents",
            get(|State(api): State<Api>, query: Q| agents_call(api, None, String::new(), query)),
        )
        .route("/v1/agents/{id}/stop", agent_route(AgentOp::Stop))
        .route("/v1/agents/{id}/start", agent_route(AgentOp::Start))
        .route("/v1/agents/{id}/drain", agent_route(AgentOp::Drain))
        // Tasks and sandboxes.
        .route("/v1/tasks", get(tasks_list))
        .route("/v1/tasks/{id}/files/browse", files_route(FileOp::Browse))
        .route("/v1/tasks/{id}/files/read", files_route(FileOp::Read))
        .route(
            "/v1/tasks/{id}/files/download",
            files_route(FileOp::Download),
        )
        .route("/v1/tasks/{id}/exec", post(task_exec));
    // Pods, under both spellings.
    for prefix in ["/v1/pods", "/v1/pod"] {
        r = r
            .route(prefix, ask0(M::GET, || Request::Pods))
            .route(
                &format!("{prefix}/status"),
                ask0(M::GET, || Request::PodsStatus),
            )
            .route(
                &format!("{prefix}/{{pod}}/status"),
                ask1(M::GET, Request::PodStatus),
            )
            .route(
                &format!("{prefix}/{{pod}}/info"),
                ask1(M::GET, Request::PodInfo),
            )
            .route(
                &format!("{prefix}/{{pod}}/restart"),
                ask1(M::POST, Request::PodRestart),
            )
            .route(
                &format!("{prefix}/{{pod}}/replace"),
                ask1(M::POST, Request::PodReplace),
            )
            .route(
                &format!("{prefix}/{{pod}}/pause"),
                pause_route(Request::PodPause),
            )
            .route(
                &format!("{prefix}/{{pod}}/resume"),
                pause_route(Request::PodResume),
            );
    }
    r.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_request))
        .with_state(Api {
            handle,
            agents,
            remote,
        })
}

/// Adds `GET /v1/debug/log?offset=&length=`: the scheduler's own log file at `path`, read as
/// a task's files are (`{"data": …, "offset": …}`; `offset=-1` answers its size).
pub fn with_log(router: Router, path: std::path::PathBuf) -> Router {
    let path = Arc::new(path);
    router.route(
        "/v1/debug/log",
        get(move |query: Q| {
            let path = Arc::clone(&path);
            async move {
                let p = match params(query, &["offset", "length"]) {
                    Ok(p) => p,
                    Err(m) => return bad_request(m),
                };
                let (offset, length) = match read_range(&p) {
                    Ok(range) => range,
                    Err(m) => return bad_request(m),
                };
                let result = tokio::task::spawn_blocking(move || {
                    tasks::read_file(&path, crate::tasks::LOG_NAME, offset, length)
                })
                .await;
                match result {
                    Ok(Ok(v)) => reply::json(200, &v),
                    Ok(Err(e)) => reply::text(e.status, e.message),
                    Err(e) => reply::text(500, format!("Reading the log failed: {e}")),
                }
            }
        }),
    )
}

/// Adds `GET /v1/artifacts/bootstrap`, serving the file at `executable` (the running `berth`):
/// on Mesos, tasks with config templates fetch it and run `berth bootstrap` to render them.
pub fn with_bootstrap(router: Router, executable: std::path::PathBuf) -> Router {
    let executable = Arc::new(executable);
    router.route(
        "/v1/artifacts/bootstrap",
        get(move || {
            let executable = Arc::clone(&executable);
            async move {
                match tokio::fs::read(executable.as_path()).await {
                    Ok(bytes) => axum::response::IntoResponse::into_response((
                        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
                        bytes,
                    )),
                    Err(e) => axum::response::IntoResponse::into_response((
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot read {}: {e}", executable.display()),
                    )),
                }
            }
        }),
    )
}
