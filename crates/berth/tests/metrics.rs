//! `GET /v1/metrics/prometheus` read with a real Prometheus parser while a deploy runs: the
//! counts move; `GET /v1/metrics` carries the same samples as JSON.

use std::time::Duration;

use crate::common::{Berth, hello_world};

/// The samples of the exposition, parsed.
fn scrape(b: &Berth) -> prometheus_parse::Scrape {
    let (code, text) = b.get_status("/v1/metrics/prometheus").expect("an answer");
    assert_eq!(code, 200, "{text}");
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{text}"))
}

/// The value of `name` (with these labels), summed over the samples that match.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(h) => h.iter().map(|b| b.count).fold(0.0, f64::max),
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[test]
fn the_exposition_parses_and_its_counts_move_as_a_deploy_runs() {
    let mut b = Berth::new(33400);
    b.start(&hello_world(), &[]);
    let before = scrape(&b);
    b.wait_complete("deploy", Duration::from_secs(90));
    let _ = b.get("/v1/plans/deploy");
    let after = scrape(&b);
    let grew = |name: &str, labels: &[(&str, &str)]| {
        let (x, y) = (value(&before, name, labels), value(&after, name, labels));
        assert!(y > x || (y > 0.0 && x > 0.0), "{name}{labels:?}: {x} → {y}");
        y
    };
    assert!(grew("berth_launches_total", &[]) >= 3.0);
    grew("berth_offers_received_total", &[]);
    grew("berth_offers_accepted_total", &[]);
    assert!(grew("berth_task_statuses_total", &[("kind", "TASK_RUNNING")]) >= 3.0);
    assert!(grew("berth_operations_total", &[("kind", "LAUNCH_GROUP")]) >= 3.0);
    assert!(grew("berth_operations_total", &[("kind", "RESERVE")]) >= 3.0);
    assert_eq!(
        value(
            &after,
            "berth_steps",
            &[("plan", "deploy"), ("status", "COMPLETE")]
        ),
        3.0
    );
    assert!(value(&after, "berth_offer_cycle_seconds_count", &[]) > 0.0);
    assert!(value(&after, "berth_store_commit_seconds_count", &[]) > 0.0);
    assert!(value(&after, "berth_store_batch_writes_count", &[]) > 0.0);
    let requests: Vec<String> = after
        .samples
        .iter()
        .filter(|x| x.metric.starts_with("berth_api_requests"))
        .map(|x| format!("{:?}", x.labels))
        .collect();
    assert!(
        value(
            &after,
            "berth_api_requests_total",
            &[("route", "/v1/plans/:plan"), ("code", "200")]
        ) >= 1.0,
        "{requests:?}"
    );
    assert!(
        value(
            &after,
            "berth_api_request_seconds_count",
            &[("route", "/v1/plans/:plan")]
        ) >= 1.0
    );
    assert_eq!(
        value(&after, "berth_agents", &[("state", "UP")])
            + value(&after, "berth_agents", &[("state", "up")]),
        3.0
    );
    // An executor whose task a loaded machine failed after the deploy is replaced by the
    // recovery plan: what counts is that the metric shows them.
    b.wait_for(
        "3 executors in the metrics",
        Duration::from_secs(60),
        || value(&scrape(&b), "berth_executors", &[]) >= 3.0,
    );
    assert_eq!(value(&after, "berth_tasks", &[]), 3.0);
    // Idle after the deploy: offers suppressed.
    b.wait_for("offers suppressed", Duration::from_secs(30), || {
        value(&scrape(&b), "berth_is_suppressed", &[]) == 1.0
    });
    // The JSON form: the same samples.
    let (code, json) = b.get("/v1/metrics");
    assert_eq!(code, 200, "{json}");
    assert!(
        json["berth_launches_total"][0]["value"]
            .as_f64()
            .unwrap_or(0.0)
            >= 3.0,
        "{json}"
    );
    b.stop();
}
