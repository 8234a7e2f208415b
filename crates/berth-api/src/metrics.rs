//! `GET /v1/metrics/prometheus` (the Prometheus text format) and `GET /v1/metrics` (the same
//! figures as JSON), and the measure of every API request.
//!
//! ```text
//!  scrape ──▶ Request::Metrics (the core: counters, suppressed, steps by status per plan)
//!         ──▶ the loop's measures (offer cycles, store commits, operations, statuses)
//!         ──▶ the API's own (requests by route and code, latency by route)
//!         ──▶ the local cluster's agents and executors
//!         ──▶ one registry, encoded (JSON: the same samples, read back from the text)
//! ```

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use berth_scheduler::metrics::LoopMetrics;
use berth_scheduler::{Body, SchedulerHandle};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use crate::AgentControl;
use crate::reply;

/// A request's route (its template, e.g. `/v1/plans/{plan}`) and status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCode {
    route: String,
    code: String,
}

/// A route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

/// A plan and a step status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PlanStatus {
    plan: String,
    status: String,
}

/// An agent state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentState {
    state: String,
}

/// What the metrics routes read.
#[derive(Clone)]
struct Sources {
    handle: SchedulerHandle,
    scheduler: LoopMetrics,
    agents: Option<Arc<dyn AgentControl>>,
    requests: Family<RouteCode, Counter>,
    latency: Family<Route, Histogram>,
}

/// Adds the metrics routes, and measures every request of `router` (call before the guard,
/// after every other route is added).
pub fn with_metrics(
    router: Router,
    handle: SchedulerHandle,
    scheduler: LoopMetrics,
    agents: Option<Arc<dyn AgentControl>>,
) -> Router {
    let sources = Sources {
        handle,
        scheduler,
        agents,
        requests: Family::default(),
        latency: Family::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_5, 2.0, 14))
        }),
    };
    router
        .merge(
            Router::new()
                .route("/v1/metrics", get(metrics_json))
                .route("/v1/metrics/prometheus", get(metrics_text))
                .with_state(sources.clone()),
        )
        .layer(middleware::from_fn_with_state(sources, track))
}

/// Counts the request by route and code and times it.
async fn track(State(sources): State<Sources>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| route_label(p.as_str()));
    let started = Instant::now();
    let response = next.run(request).await;
    sources
        .latency
        .get_or_create(&Route {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    sources
        .requests
        .get_or_create(&RouteCode {
            route,
            code: response.status().as_u16().to_string(),
        })
        .inc();
    response
}

/// A route template as a label: `/v1/plans/{plan}` → `/v1/plans/:plan` (braces inside label
/// values trip up some parsers of the format).
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// A non-negative JSON number as a counter value.
fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Every metric, in the Prometheus text format.
async fn exposition(sources: &Sources) -> Result<String, Response> {
    let reply = sources
        .handle
        .request(berth_scheduler::Request::Metrics)
        .await;
    let core = match reply.body {
        Body::Json(v) if reply.status == 200 => v,
        _ => return Err(reply::to_response(reply)),
    };
    let mut registry = Registry::with_prefix("berth");
    let c = &core["counters"];
    for (name, key, help) in [
        (
            "offers_received",
            "offers_received",
            "Offers received from the cluster",
        ),
        (
            "offers_accepted",
            "offers_accepted",
            "Offers accepted for launches",
        ),
        ("offers_declined", "offers_declined", "Offers declined"),
        (
            "offers_cleaned",
            "offers_cleaned",
            "Offers used to release unexpected reservations",
        ),
        ("launches", "tasks_launched", "Tasks launched"),
        (
            "status_updates",
            "updates_received",
            "Task status updates handled",
        ),
        ("revives", "revives", "REVIVE calls sent"),
        ("suppresses", "suppresses", "SUPPRESS calls sent"),
    ] {
        registry.register(name, help, ConstCounter::new(count(&c[key])));
    }
    let s = &sources.scheduler;
    registry.register(
        "offers_rescinded",
        "Offers the cluster rescinded",
        s.offers_rescinded.clone(),
    );
    registry.register(
        "is_suppressed",
        "1 while offers are suppressed (nothing to do)",
        ConstGauge::new(i64::from(core["is_suppressed"] == true)),
    );
    registry.register(
        "offers_held",
        "Unused offers kept back for the next steps of a serial phase",
        ConstGauge::new(i64::try_from(count(&core["offers_held"])).unwrap_or(i64::MAX)),
    );
    registry.register(
        "tasks",
        "Launched tasks in the store",
        ConstGauge::new(i64::try_from(count(&core["tasks"])).unwrap_or(i64::MAX)),
    );
    registry.register(
        "operations",
        "Operations sent in ACCEPT calls, by type",
        s.operations.clone(),
    );
    registry.register(
        "task_statuses",
        "Task status updates received, by state",
        s.task_statuses.clone(),
    );
    registry.register(
        "offer_cycle_seconds",
        "Time to evaluate one batch of offers",
        s.offer_cycle_seconds.clone(),
    );
    registry.register(
        "loop_batch_seconds",
        "Time each stretch of work held the scheduler loop (events, a request or a tick)",
        s.loop_batch_seconds.clone(),
    );
    registry.register(
        "loop_longest_batch_seconds",
        "The longest stretch of work on the scheduler loop since the start",
        s.loop_longest_batch_seconds.clone(),
    );
    registry.register(
        "store_commit_seconds",
        "Time the scheduler loop waited for one batch of writes to be durable (a batch submitted early is stored while the loop works)",
        s.store_commit_seconds.clone(),
    );
    registry.register(
        "store_batch_writes",
        "Writes per durable batch",
        s.store_batch_writes.clone(),
    );
    let steps: Family<PlanStatus, Gauge> = Family::default();
    for (plan, by_status) in core["steps"].as_object().into_iter().flatten() {
        for (status, n) in by_status.as_object().into_iter().flatten() {
            steps
                .get_or_create(&PlanStatus {
                    plan: plan.clone(),
                    status: status.clone(),
                })
                .set(i64::try_from(count(n)).unwrap_or(i64::MAX));
        }
    }
    registry.register("steps", "Steps by status, per plan", steps);
    registry.register(
        "api_requests",
        "API requests by route and status code",
        sources.requests.clone(),
    );
    registry.register(
        "api_request_seconds",
        "API request latency by route",
        sources.latency.clone(),
    );
    if let Some(control) = sources.agents.clone() {
        let listed = tokio::task::spawn_blocking(move || control.list()).await;
        if let Ok(Ok(list)) = listed {
            let agents: Family<AgentState, Gauge> = Family::default();
            let mut executors = 0_i64;
            for a in list.as_array().into_iter().flatten() {
                let state = a["state"].as_str().unwrap_or("unknown").to_owned();
                agents.get_or_create(&AgentState { state }).inc();
                executors += a["executors"]
                    .as_array()
                    .map_or(0, |e| i64::try_from(e.len()).unwrap_or(0));
            }
            registry.register("agents", "Agents of the local cluster, by state", agents);
            registry.register(
                "executors",
                "Executors running on the local cluster",
                ConstGauge::new(executors),
            );
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .map_err(|e| reply::text(500, format!("Encoding the metrics failed: {e}")))?;
    Ok(text)
}

async fn metrics_text(State(sources): State<Sources>) -> Response {
    match exposition(&sources).await {
        Ok(text) => {
            let mut response = reply::text(200, text);
            if let Ok(v) = axum::http::HeaderValue::from_str(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ) {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_TYPE, v);
            }
            response
        }
        Err(response) => response,
    }
}

async fn metrics_json(State(sources): State<Sources>) -> Response {
    match exposition(&sources).await {
        Ok(text) => reply::json(200, &samples(&text)),
        Err(response) => response,
    }
}

/// The samples of a text exposition as JSON: `{"berth_launches_total": [{"labels": {},
/// "value": 3}], …}`.
fn samples(text: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = serde_json::Map::new();
        for pair in split_labels(labels) {
            if let Some((k, v)) = pair.split_once('=') {
                map.insert(k.to_owned(), Value::String(v.trim_matches('"').to_owned()));
            }
        }
        let value = value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number);
        if let Value::Array(list) = out
            .entry(name.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(json!({"labels": map, "value": value}));
        }
    }
    Value::Object(out)
}

/// `a="x",b="y,z"` → `a="x"`, `b="y,z"` (commas inside quotes kept).
fn split_labels(labels: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, ch) in labels.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_samples_become_json() {
        let v = samples(
            "# HELP x y\nberth_launches_total 3\nberth_steps{plan=\"deploy\",status=\"COMPLETE\"} 2\n# EOF\n",
        );
        assert_eq!(v["berth_launches_total"][0]["value"], 3.0);
        assert_eq!(v["berth_steps"][0]["labels"]["plan"], "deploy");
        assert_eq!(
            split_labels(r#"a="x,y",b="z""#),
            vec![r#"a="x,y""#, r#"b="z""#]
        );
    }
}
