//! Requests the HTTP API hands to the scheduler loop, and the replies it gets back.
//!
//! The loop owns all state; the API only sends [`Request`]s and turns [`Reply`]s into HTTP
//! responses. Reply bodies are already in the reference's JSON shapes.

use berth_plan::{CommandTarget, PlanCommand};
use berth_spec::ServiceSpec;
use serde_json::Value;

/// What the API asks of the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `GET /v1/plans`.
    Plans,
    /// `GET /v1/plans/{plan}`.
    Plan(String),
    /// `POST /v1/plans/{plan}/{command}`.
    PlanCommand(PlanCommand, CommandTarget),
    /// `GET /v1/pods`.
    Pods,
    /// `GET /v1/pods/status`.
    PodsStatus,
    /// `GET /v1/pods/{pod}/status`.
    PodStatus(String),
    /// `GET /v1/pods/{pod}/info`.
    PodInfo(String),
    /// `POST /v1/pods/{pod}/restart`.
    PodRestart(String),
    /// `POST /v1/pods/{pod}/replace`.
    PodReplace(String),
    /// `POST /v1/pods/{pod}/pause` with the tasks (all when empty).
    PodPause(String, Vec<String>),
    /// `POST /v1/pods/{pod}/resume` with the tasks (all when empty).
    PodResume(String, Vec<String>),
    /// `GET /v1/state/frameworkId`.
    FrameworkId,
    /// `GET /v1/state/properties`.
    Properties,
    /// `GET /v1/state/properties/{key}`.
    Property(String),
    /// `GET /v1/configurations`.
    Configurations,
    /// `GET /v1/configurations/{id}`.
    Configuration(String),
    /// `GET /v1/configurations/targetId`.
    TargetId,
    /// `GET /v1/configurations/target`.
    Target,
    /// `GET /v1/health[?verbose=true]`.
    Health {
        /// Include the reasons.
        verbose: bool,
    },
    /// `GET /v1/artifacts/template/{config}/{pod}/{task}/{name}`.
    Template {
        /// Configuration id.
        config: String,
        /// Pod type.
        pod: String,
        /// Task name (within the pod).
        task: String,
        /// Config file name.
        name: String,
    },
    /// `GET /v1/endpoints`: the names of the advertised ports, sorted.
    Endpoints,
    /// `GET /v1/endpoints/{name}`: where the tasks serve that port (`address`, `dns`, `vip`).
    Endpoint(String),
    /// `GET /v2/debug/offers[?plan=&phase=&step=]`: the last evaluated offers (of the
    /// steps named, case-insensitive).
    DebugOffers {
        /// Only this plan's steps.
        plan: Option<String>,
        /// Only this phase's steps.
        phase: Option<String>,
        /// Only this step.
        step: Option<String>,
    },
    /// `GET /v1/debug/plans`: the plan history (operator commands and transitions).
    DebugHistory,
    /// `POST /v1/uninstall`: start removing the service (irreversible).
    Uninstall,
    /// `GET /v1/state/tree[?path=P]`: the stored nodes at and below a path (relative to the
    /// service's root, or absolute), with their sizes.
    StateTree(Option<String>),
    /// `GET /v1/state/node?path=P`: one stored node's value, as stored.
    StateNode(String),
    /// `GET /v1/debug/taskStatuses[?plan=&phase=&step=]`: the latest status of every task of
    /// every launch step, plan by plan.
    DebugTaskStatuses {
        /// Only this plan (case-insensitive).
        plan: Option<String>,
        /// Only this phase (case-insensitive).
        phase: Option<String>,
        /// Only this step (case-insensitive).
        step: Option<String>,
    },
    /// `GET /v1/debug/reservations`: the reservation ids of the service's tasks by agent host.
    DebugReservations,
    /// `GET /v1/state/files`: the names of the files stored with `PUT /v1/state/files/{name}`.
    StateFiles,
    /// `GET /v1/state/files/{name}`: one stored file.
    StateFile(String),
    /// `PUT /v1/state/files/{name}`: stores a file of at most 1024 bytes (property
    /// `file-<name>`).
    PutStateFile(String, Vec<u8>),
    /// `GET /v1/state/zone/tasks`: the zone of every task.
    ZoneTasks,
    /// `GET /v1/state/zone/tasks/{task}`: the zone of one task.
    ZoneTask(String),
    /// `GET /v1/state/zone/{podType}/{ip}`: the zone of the task of that pod type on that
    /// host.
    ZoneOf(String, String),
    /// `PUT /v1/state/refresh`: reload the state from the store.
    StateRefresh,
    /// `POST /v1/update`: make `spec` (rendered by the API from the options or spec text)
    /// the target and roll it out with the deploy plan; a package's options it was rendered
    /// from are stored with it (the base of the next update's options).
    Update(Box<ServiceSpec>, Option<Value>),
    /// `POST /v1/update?dryRun=true`: what making `spec` the target would do, pod by pod;
    /// nothing is written.
    UpdatePreview(Box<ServiceSpec>),
    /// `POST /v1/update/rollback`: make an earlier configuration the target again (by
    /// default the newest one whose rollout completed) and roll it out.
    Rollback(Option<String>),
    /// `GET /v1/configurations/history`: the targets applied, newest first.
    ConfigHistory,
    /// `GET /v1/metrics`: the core's counters, whether offers are suppressed, and the steps
    /// of each plan by status.
    Metrics,
    /// `GET /v1/tasks[?completed=true]` when the cluster serves no task list of its own (Mesos):
    /// the launched tasks of the stored state, with their latest status.
    Tasks {
        /// Include tasks in a terminal state.
        completed: bool,
    },
}

impl Request {
    /// Whether the request changes anything (commands, pod operations, uninstall). While the
    /// state store is unavailable only the other requests are answered.
    #[must_use]
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Request::PlanCommand(..)
                | Request::PodRestart(_)
                | Request::PodReplace(_)
                | Request::PodPause(..)
                | Request::PodResume(..)
                | Request::PutStateFile(..)
                | Request::StateRefresh
                | Request::Uninstall
                | Request::Update(..)
                | Request::Rollback(_)
        )
    }
}

/// A reply body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON (served pretty-printed).
    Json(Value),
    /// A plan's view, served as JSON: made into text off the loop (a plan of tens of
    /// thousands of steps is megabytes of it).
    Plan(Box<berth_plan::PlanReport>),
    /// Plain text.
    Text(String),
    /// Raw bytes served with a JSON content type (stored properties).
    Raw(Vec<u8>),
    /// Nothing.
    Empty,
}

impl Body {
    /// The body as a JSON value, if it is JSON (a plan's view included).
    #[must_use]
    pub fn into_json(self) -> Option<Value> {
        match self {
            Self::Json(v) => Some(v),
            Self::Plan(report) => serde_json::to_value(&*report).ok(),
            Self::Text(_) | Self::Raw(_) | Self::Empty => None,
        }
    }
}

/// A reply: HTTP status and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Body.
    pub body: Body,
}

impl Reply {
    /// 200 with JSON.
    #[must_use]
    pub fn json(value: Value) -> Self {
        Self::json_with(200, value)
    }

    /// JSON with a status.
    #[must_use]
    pub fn json_with(status: u16, value: Value) -> Self {
        Self {
            status,
            body: Body::Json(value),
        }
    }

    /// Plain text with a status.
    #[must_use]
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::Text(text.into()),
        }
    }

    /// `404` with `<Kind> <name> not found`.
    #[must_use]
    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::text(404, format!("{kind} {name} not found"))
    }

    /// `208 Command has already been reported or completed`.
    #[must_use]
    pub fn already_done() -> Self {
        Self::text(208, "Command has already been reported or completed")
    }
}

/// The protobuf-JSON spelling the reference's pod info uses: camelCase keys, `agent_id` as
/// `slaveId`.
#[must_use]
pub fn proto_json(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = if k == "agent_id" {
                        "slaveId".to_owned()
                    } else {
                        camel(&k)
                    };
                    (key, proto_json(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(proto_json).collect()),
        other => other,
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn camel_cases_keys_and_renames_agent_id() {
        let v = proto_json(
            json!({"task_id": {"value": "x"}, "agent_id": {"value": "a"},
            "labels": {"labels": [{"key": "k", "value": "v"}]}}),
        );
        assert_eq!(
            v,
            json!({"taskId": {"value": "x"}, "slaveId": {"value": "a"},
            "labels": {"labels": [{"key": "k", "value": "v"}]}})
        );
    }
}
