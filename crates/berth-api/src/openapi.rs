//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of every route, built from the table
//! [`ROUTES`] (method, path, parameters, body, response codes, examples). A test checks
//! both ways that the table and the routes served are the same.

use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// `get`, `post` or `put`.
    pub method: &'static str,
    /// The path, with `{name}` for path parameters.
    pub path: &'static str,
    /// The group it belongs to.
    pub tag: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Query parameters: name and meaning.
    pub query: &'static [(&'static str, &'static str)],
    /// The request body's example (JSON), when it takes one.
    pub body: Option<&'static str>,
    /// Response codes and what each means.
    pub responses: &'static [(u16, &'static str)],
    /// An example of the successful answer (JSON), when it is JSON.
    pub example: Option<&'static str>,
}

const OK: (u16, &str) = (200, "Done / the answer");
const BAD: (u16, &str) = (
    400,
    "A parameter or the body is invalid (the message says which)",
);
const NOT_FOUND: (u16, &str) = (404, "Not found (the message names it)");
const AUTH: (u16, &str) = (401, "A token is needed (with --auth-tokens)");
const FORBIDDEN: (u16, &str) = (403, "The token may only read");
const UNAVAILABLE: (u16, &str) = (503, "The scheduler cannot answer now (store down, busy)");
const ALREADY: (u16, &str) = (208, "Already done, or the plan is complete");

const PLAN_CMD: &[(u16, &str)] = &[OK, ALREADY, BAD, NOT_FOUND, AUTH, FORBIDDEN, UNAVAILABLE];
const READ: &[(u16, &str)] = &[OK, BAD, AUTH, UNAVAILABLE];
const READ_ONE: &[(u16, &str)] = &[OK, BAD, NOT_FOUND, AUTH, UNAVAILABLE];
const CHANGE: &[(u16, &str)] = &[OK, BAD, NOT_FOUND, AUTH, FORBIDDEN, UNAVAILABLE];
const STEP: &[(&str, &str)] = &[("phase", "Phase name or id"), ("step", "Step name or id")];
const MSG: Option<&str> = Some(r#"{"message": "Received cmd: interrupt"}"#);
const PLAN: Option<&str> = Some(
    r#"{"phases": [{"id": "…", "name": "hello", "steps": [{"id": "…", "status": "COMPLETE", "name": "hello-0:[server]", "message": "…"}], "strategy": "serial", "status": "COMPLETE"}], "strategy": "serial", "errors": [], "status": "COMPLETE"}"#,
);
const FILE_READ: Option<&str> = Some(r#"{"data": "hello\n", "offset": 0}"#);

/// Every route of the API.
pub const ROUTES: &[Op] = &[
    Op {
        method: "get",
        path: "/",
        tag: "dashboard",
        summary: "The dashboard (HTML)",
        query: &[],
        body: None,
        responses: &[OK],
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/plans",
        tag: "plans",
        summary: "The plans' names",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["deploy", "recovery"]"#),
    },
    Op {
        method: "get",
        path: "/v1/plans/{plan}",
        tag: "plans",
        summary: "A plan: phases, steps, statuses, why steps wait, errors (202 while in progress, 417 with errors)",
        query: &[],
        body: None,
        responses: &[
            OK,
            (202, "In progress"),
            (417, "With errors"),
            NOT_FOUND,
            AUTH,
        ],
        example: PLAN,
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/start",
        tag: "plans",
        summary: "Start a plan; the body's parameters reach its tasks as environment variables",
        query: &[],
        body: Some(r#"{"BACKUP_NAME": "monday"}"#),
        responses: PLAN_CMD,
        example: Some(r#"{"message": "Received cmd: start"}"#),
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/stop",
        tag: "plans",
        summary: "Interrupt a plan and reset its steps",
        query: &[],
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/interrupt",
        tag: "plans",
        summary: "Pause a plan or phase",
        query: &[("phase", "Phase name or id")],
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/continue",
        tag: "plans",
        summary: "Resume a plan or phase (releases a canary step)",
        query: &[("phase", "Phase name or id")],
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/forceComplete",
        tag: "plans",
        summary: "Mark a step complete",
        query: STEP,
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plans/{plan}/restart",
        tag: "plans",
        summary: "Restart a plan, phase or step",
        query: STEP,
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "get",
        path: "/v1/plan",
        tag: "plans",
        summary: "Deprecated: the deploy plan",
        query: &[],
        body: None,
        responses: &[OK, (202, "In progress"), (417, "With errors"), AUTH],
        example: PLAN,
    },
    Op {
        method: "post",
        path: "/v1/plan/interrupt",
        tag: "plans",
        summary: "Deprecated: pause the deploy plan",
        query: &[("phase", "Phase name or id")],
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plan/continue",
        tag: "plans",
        summary: "Deprecated: resume the deploy plan",
        query: &[("phase", "Phase name or id")],
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plan/forceComplete",
        tag: "plans",
        summary: "Deprecated: force a deploy step complete",
        query: STEP,
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "post",
        path: "/v1/plan/restart",
        tag: "plans",
        summary: "Deprecated: restart deploy steps",
        query: STEP,
        body: None,
        responses: PLAN_CMD,
        example: MSG,
    },
    Op {
        method: "get",
        path: "/v1/pods",
        tag: "pods",
        summary: "The pod instances' names",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["hello-0", "world-0", "world-1"]"#),
    },
    Op {
        method: "get",
        path: "/v1/pods/status",
        tag: "pods",
        summary: "Every pod instance with its tasks' states",
        query: &[],
        body: None,
        responses: READ,
        example: Some(
            r#"{"service": "hello-world", "pods": [{"name": "hello", "instances": [{"name": "hello-0", "tasks": [{"name": "hello-0-server", "id": "…", "status": "RUNNING"}]}]}]}"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/pods/{pod}/status",
        tag: "pods",
        summary: "One pod instance's tasks",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/pods/{pod}/info",
        tag: "pods",
        summary: "One pod instance's TaskInfos and statuses",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pods/{pod}/restart",
        tag: "pods",
        summary: "Restart in place (volumes kept)",
        query: &[],
        body: None,
        responses: CHANGE,
        example: Some(r#"{"pod": "hello-0", "tasks": ["hello-0-server"]}"#),
    },
    Op {
        method: "post",
        path: "/v1/pods/{pod}/replace",
        tag: "pods",
        summary: "Replace elsewhere (data discarded)",
        query: &[],
        body: None,
        responses: CHANGE,
        example: Some(r#"{"pod": "world-0", "tasks": ["world-0-server"]}"#),
    },
    Op {
        method: "post",
        path: "/v1/pods/{pod}/pause",
        tag: "pods",
        summary: "Pause tasks (all, or those of the body)",
        query: &[],
        body: Some(r#"["server"]"#),
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pods/{pod}/resume",
        tag: "pods",
        summary: "Resume paused tasks",
        query: &[],
        body: Some(r#"["server"]"#),
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/pod",
        tag: "pods",
        summary: "Deprecated alias of /v1/pods",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/pod/status",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/pod/{pod}/status",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/pod/{pod}/info",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pod/{pod}/restart",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: None,
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pod/{pod}/replace",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: None,
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pod/{pod}/pause",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: Some(r#"["server"]"#),
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/pod/{pod}/resume",
        tag: "pods",
        summary: "Deprecated alias",
        query: &[],
        body: Some(r#"["server"]"#),
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/state/frameworkId",
        tag: "state",
        summary: "The framework id",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: Some(r#"["…-0001"]"#),
    },
    Op {
        method: "get",
        path: "/v1/state/properties",
        tag: "state",
        summary: "The stored properties' keys",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["last-completed-update-type"]"#),
    },
    Op {
        method: "get",
        path: "/v1/state/properties/{key}",
        tag: "state",
        summary: "One property, as stored",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/state/tree",
        tag: "state",
        summary: "The stored nodes at and below a path, with sizes",
        query: &[("path", "Relative to the service's root, or absolute")],
        body: None,
        responses: READ_ONE,
        example: Some(
            r#"{"path": "/dcos-service-hello-world", "nodes": [{"path": "…/ConfigTarget", "size": 36}]}"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/state/node",
        tag: "state",
        summary: "One stored node's value (a task record or the framework id, stored as protobuf, as its JSON)",
        query: &[("path", "The node")],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/state/files",
        tag: "state",
        summary: "The stored files' names",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["notes"]"#),
    },
    Op {
        method: "get",
        path: "/v1/state/files/{name}",
        tag: "state",
        summary: "One stored file",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "put",
        path: "/v1/state/files/{name}",
        tag: "state",
        summary: "Store a file of at most 1024 bytes (multipart field `file`)",
        query: &[],
        body: Some(r#""multipart/form-data; field file""#),
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/state/zone/tasks",
        tag: "state",
        summary: "The zone of every task",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"{"hello-0-server": "a"}"#),
    },
    Op {
        method: "get",
        path: "/v1/state/zone/tasks/{task}",
        tag: "state",
        summary: "The zone of one task",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/state/zone/{pod_type}/{ip}",
        tag: "state",
        summary: "The zone of the task of that pod type on that host",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "put",
        path: "/v1/state/refresh",
        tag: "state",
        summary: "Reload the state from the store",
        query: &[],
        body: None,
        responses: CHANGE,
        example: Some(r#"{"message": "Received cmd: refresh"}"#),
    },
    Op {
        method: "get",
        path: "/v1/configurations",
        tag: "configurations",
        summary: "The stored configurations' ids",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["8c1f…"]"#),
    },
    Op {
        method: "get",
        path: "/v1/configurations/targetId",
        tag: "configurations",
        summary: "The target configuration's id",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: Some(r#"["8c1f…"]"#),
    },
    Op {
        method: "get",
        path: "/v1/configurations/target",
        tag: "configurations",
        summary: "The target configuration (service spec)",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/configurations/history",
        tag: "configurations",
        summary: "The targets applied, newest first",
        query: &[],
        body: None,
        responses: READ,
        example: Some(
            r#"[{"id": "8c1f…", "applied": 1796400000.0, "how": "update", "diff": "…", "outcome": "deployed", "deployed": true}]"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/configurations/{id}",
        tag: "configurations",
        summary: "One stored configuration",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/update",
        tag: "configurations",
        summary: "Update the running service (options merged into the current ones, or a whole svc.yml); dryRun previews it, writing nothing",
        query: &[("dryRun", "true: only preview")],
        body: Some(r#"{"options": {"world": {"count": 3}}, "replace": false}"#),
        responses: &[
            OK,
            BAD,
            AUTH,
            FORBIDDEN,
            (409, "An uninstall runs"),
            UNAVAILABLE,
        ],
        example: Some(r#"{"message": "Update started", "configId": "8c1f…"}"#),
    },
    Op {
        method: "post",
        path: "/v1/update/rollback",
        tag: "configurations",
        summary: "Roll back to an earlier configuration (default: the newest one whose rollout completed)",
        query: &[],
        body: Some(r#"{"configId": "8c1f…"}"#),
        responses: &[
            OK,
            BAD,
            NOT_FOUND,
            AUTH,
            FORBIDDEN,
            (409, "An uninstall runs"),
            UNAVAILABLE,
        ],
        example: Some(r#"{"message": "Rollback started", "configId": "8c1f…"}"#),
    },
    Op {
        method: "get",
        path: "/v1/health",
        tag: "service",
        summary: "The service's health; the status is the health code",
        query: &[("verbose", "true: with the reasons")],
        body: None,
        responses: &[OK, (202, "Deploying"), (417, "Errors"), (500, "Unhealthy")],
        example: Some(r#"{"value": 200}"#),
    },
    Op {
        method: "get",
        path: "/v1/endpoints",
        tag: "service",
        summary: "The advertised endpoints' names",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"["hello", "world"]"#),
    },
    Op {
        method: "get",
        path: "/v1/endpoints/{name}",
        tag: "service",
        summary: "Where one endpoint is served",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: Some(
            r#"{"address": ["127.0.0.1:10000"], "dns": ["hello-0-server.hello-world.autoip.dcos.thisdcos.directory:10000"]}"#,
        ),
    },
    Op {
        method: "post",
        path: "/v1/uninstall",
        tag: "service",
        summary: "Uninstall the service (irreversible)",
        query: &[],
        body: None,
        responses: CHANGE,
        example: Some(r#"{"message": "Uninstalling service hello-world"}"#),
    },
    Op {
        method: "get",
        path: "/v1/artifacts/template/{config}/{pod}/{task}/{name}",
        tag: "service",
        summary: "A config template, for the Mesos fetcher (open)",
        query: &[],
        body: None,
        responses: &[OK, NOT_FOUND],
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/artifacts/bootstrap",
        tag: "service",
        summary: "The berth executable, for the Mesos fetcher (open; served with --master)",
        query: &[],
        body: None,
        responses: &[OK],
        example: None,
    },
    Op {
        method: "get",
        path: "/v2/debug/offers",
        tag: "debug",
        summary: "The offers evaluated lately, and why they were declined",
        query: &[
            ("plan", "Only this plan's steps"),
            ("phase", "Only this phase"),
            ("step", "Only this step"),
        ],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/debug/plans",
        tag: "debug",
        summary: "The plan history (commands and transitions)",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/debug/taskStatuses",
        tag: "debug",
        summary: "The latest status of every launch step's tasks",
        query: &[
            ("plan", "Only this plan"),
            ("phase", "Only this phase"),
            ("step", "Only this step"),
        ],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/debug/reservations",
        tag: "debug",
        summary: "The tasks' reservation ids by agent",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/debug/log",
        tag: "debug",
        summary: "The scheduler's own log, read as a task's files are",
        query: &[
            ("offset", "Byte offset (-1: the size)"),
            ("length", "Bytes"),
        ],
        body: None,
        responses: READ,
        example: FILE_READ,
    },
    Op {
        method: "get",
        path: "/v1/agents",
        tag: "agents",
        summary: "The local cluster's agents",
        query: &[],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/agents/{id}/stop",
        tag: "agents",
        summary: "Stop an agent (the machine goes down)",
        query: &[],
        body: None,
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/agents/{id}/start",
        tag: "agents",
        summary: "Start a stopped agent",
        query: &[],
        body: None,
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/agents/{id}/drain",
        tag: "agents",
        summary: "Drain an agent (its pods are replaced elsewhere)",
        query: &[],
        body: None,
        responses: CHANGE,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/tasks",
        tag: "tasks",
        summary: "The tasks, active (and finished with completed=true)",
        query: &[("completed", "true: finished ones too")],
        body: None,
        responses: READ,
        example: Some(
            r#"[{"id": "hello-world__hello-0-server__…", "name": "hello-0-server", "agent": "agent-a", "host": "agent-a", "user": "root", "state": "TASK_RUNNING", "active": true}]"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/tasks/{id}/files/browse",
        tag: "tasks",
        summary: "A sandbox directory, as Mesos's files API lists it",
        query: &[("path", "Relative to the sandbox")],
        body: None,
        responses: READ_ONE,
        example: Some(
            r#"[{"path": "stdout", "nlink": 1, "size": 6, "mtime": 1796400000, "mode": "-rw-r--r--", "uid": "0", "gid": "0"}]"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/tasks/{id}/files/read",
        tag: "tasks",
        summary: "A chunk of a sandbox file",
        query: &[
            ("path", "Relative to the sandbox"),
            ("offset", "Byte offset (-1: the size)"),
            ("length", "Bytes"),
        ],
        body: None,
        responses: READ_ONE,
        example: FILE_READ,
    },
    Op {
        method: "get",
        path: "/v1/tasks/{id}/files/download",
        tag: "tasks",
        summary: "A sandbox file",
        query: &[("path", "Relative to the sandbox")],
        body: None,
        responses: READ_ONE,
        example: None,
    },
    Op {
        method: "post",
        path: "/v1/tasks/{id}/exec",
        tag: "tasks",
        summary: "Run a command in a task (an upgraded connection, protocol berth-exec)",
        query: &[],
        body: Some(r#"{"cmd": ["ls", "-l"], "tty": false, "interactive": false}"#),
        responses: &[
            (101, "Switching to the exec stream"),
            BAD,
            NOT_FOUND,
            (409, "Not running"),
            (426, "Upgrade needed"),
            AUTH,
            FORBIDDEN,
        ],
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/metrics",
        tag: "metrics",
        summary: "The metrics as JSON samples",
        query: &[],
        body: None,
        responses: READ,
        example: Some(r#"{"berth_launches_total": [{"labels": {}, "value": 3.0}]}"#),
    },
    Op {
        method: "get",
        path: "/v1/metrics/prometheus",
        tag: "metrics",
        summary: "The metrics in the Prometheus text format",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
    Op {
        method: "get",
        path: "/v1/audit",
        tag: "service",
        summary: "The last change requests (who, what, the answer)",
        query: &[("limit", "How many (default 1000)")],
        body: None,
        responses: READ,
        example: Some(
            r#"[{"time": 1796400000.0, "token": "alice", "method": "POST", "path": "/v1/pods/hello-0/restart", "query": null, "status": 200}]"#,
        ),
    },
    Op {
        method: "get",
        path: "/v1/openapi.json",
        tag: "service",
        summary: "This document",
        query: &[],
        body: None,
        responses: READ,
        example: None,
    },
];

/// The OpenAPI 3.1 document.
#[must_use]
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in ROUTES {
        let mut parameters: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        parameters.extend(op.query.iter().map(|(name, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": "string"}})
        }));
        let mut responses = Map::new();
        for (code, description) in op.responses {
            let mut r = json!({"description": description});
            if *code == 200
                && let Some(example) = op
                    .example
                    .and_then(|e| serde_json::from_str::<Value>(e).ok())
            {
                r["content"] = json!({"application/json": {"example": example}});
            }
            responses.insert(code.to_string(), r);
        }
        let mut operation = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = op.body.and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            operation["requestBody"] = json!({"content": {"application/json": {"example": body}}});
        }
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "berth",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The API of a berth scheduler: plans, pods, state, configurations, \
                            updates, tasks and their sandboxes, agents, metrics. With \
                            --auth-tokens, send `Authorization: Bearer <token>`.",
        },
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_json_and_every_operation_is_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for op in ROUTES {
            assert!(
                seen.insert((op.method, op.path)),
                "{} {} twice",
                op.method,
                op.path
            );
            for text in [op.body, op.example].into_iter().flatten() {
                assert!(
                    serde_json::from_str::<Value>(text).is_ok(),
                    "{} {}: {text}",
                    op.method,
                    op.path
                );
            }
        }
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/v1/plans/{plan}"]["get"]["parameters"][0]["name"] == "plan");
    }
}
