//! The two tasks of a subscription: one keeps the event stream up (leader, SUBSCRIBE,
//! RecordIO, heartbeats, back-off), one sends the calls.

use std::sync::Arc;
use std::time::Duration;

use berth_mesos::recordio::Decoder;
use berth_mesos::scheduler::{self as wire, CallType};
use berth_mesos::{Filters, OfferId};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::convert::{Incoming, read_event};
use super::{Masters, MesosConfig, Shared, lock};
use crate::protocol::Event;

const API_PATH: &str = "/api/v1/scheduler";
/// Redirects followed in one attempt (a 307 to the leader, which should answer).
const MAX_REDIRECTS: usize = 3;
/// Heartbeat intervals without any event before the connection counts as dead.
const SILENT_HEARTBEATS: f64 = 5.0;

/// What both tasks need.
#[derive(Debug, Clone)]
pub(super) struct Context {
    pub config: Arc<MesosConfig>,
    pub http: reqwest::Client,
    pub shared: Shared,
    /// The call queue (the subscription declines unreadable offers through it).
    pub calls: mpsc::UnboundedSender<wire::Call>,
}

/// Why one subscription attempt ended.
enum Ended {
    /// Try again after a back-off, telling the scheduler why.
    Retry(String),
    /// Stop for good; the scheduler was told (an `ERROR`, a refusal, a teardown).
    Stop,
}

/// Keeps the subscription up until it is refused, removed or torn down.
pub(super) async fn subscription(
    ctx: Context,
    mut info: wire::FrameworkInfo,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut backoff = ctx.config.backoff_initial;
    let mut last_reason = String::new();
    loop {
        if lock(&ctx.shared).torn_down {
            return;
        }
        info.id.clone_from(&lock(&ctx.shared).framework_id);
        let (ended, subscribed) = attempt(&ctx, &info, &events).await;
        lock(&ctx.shared).stream_id = None;
        match ended {
            Ended::Stop => return,
            Ended::Retry(reason) => {
                if subscribed {
                    backoff = ctx.config.backoff_initial;
                }
                if lock(&ctx.shared).torn_down {
                    return;
                }
                if reason != last_reason || subscribed {
                    warn!("Mesos: {reason}; subscribing again in {backoff:?}");
                    if events
                        .send(Event::Disconnected {
                            reason: reason.clone(),
                        })
                        .is_err()
                    {
                        return;
                    }
                    last_reason = reason;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ctx.config.backoff_max);
            }
        }
    }
}

/// The candidates to subscribe to, leader first when known.
async fn candidates(ctx: &Context) -> Result<Vec<String>, String> {
    match &ctx.config.masters {
        Masters::Urls(urls) => {
            let mut list = Vec::with_capacity(urls.len() + 1);
            if let Some(leader) = lock(&ctx.shared).leader.clone() {
                list.push(leader);
            }
            for url in urls {
                if !list.contains(url) {
                    list.push(url.clone());
                }
            }
            Ok(list)
        }
        Masters::ZooKeeper { hosts, path } => super::masters::zk_leader(
            hosts,
            path,
            ctx.config.call_timeout.min(Duration::from_secs(10)),
        )
        .await
        .map(|leader| vec![leader]),
    }
}

/// The base URL a 307 points to: `Location` is `//host:port/api/v1/scheduler` (or absolute).
fn redirect_target(current: &str, location: &str) -> Option<String> {
    let scheme = current.split("://").next().unwrap_or("http");
    let rest = location
        .strip_prefix("//")
        .or_else(|| location.split_once("://").map(|(_, r)| r))?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

fn post(
    ctx: &Context,
    base: &str,
    body: Vec<u8>,
    stream_id: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = ctx
        .http
        .post(format!("{base}{API_PATH}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(body);
    if let Some(id) = stream_id {
        req = req.header("Mesos-Stream-Id", id);
    }
    if let Some((user, secret)) = &ctx.config.credentials {
        req = req.basic_auth(user, Some(secret));
    }
    req
}

/// One subscription: returns why it ended and whether it got as far as SUBSCRIBED.
async fn attempt(
    ctx: &Context,
    info: &wire::FrameworkInfo,
    events: &mpsc::UnboundedSender<Event>,
) -> (Ended, bool) {
    let masters = match candidates(ctx).await {
        Ok(m) => m,
        Err(e) => {
            return (
                Ended::Retry(format!("cannot find the leading master: {e}")),
                false,
            );
        }
    };
    let call = wire::Call {
        subscribe: Some(wire::Subscribe {
            framework_info: info.clone(),
        }),
        ..wire::Call::new(CallType::Subscribe, info.id.clone())
    };
    let body = match serde_json::to_vec(&call) {
        Ok(b) => b,
        Err(e) => return (Ended::Retry(format!("cannot encode SUBSCRIBE: {e}")), false),
    };
    let mut failures = Vec::new();
    for first in masters {
        let mut base = first.clone();
        for _ in 0..=MAX_REDIRECTS {
            let sent = tokio::time::timeout(
                ctx.config.call_timeout,
                post(ctx, &base, body.clone(), None).send(),
            )
            .await;
            let response = match sent {
                Err(_) => {
                    failures.push(format!(
                        "{base}: no answer within {:?}",
                        ctx.config.call_timeout
                    ));
                    break;
                }
                Ok(Err(e)) => {
                    failures.push(format!("{base}: {}", describe(&e)));
                    break;
                }
                Ok(Ok(r)) => r,
            };
            let status = response.status().as_u16();
            match status {
                200 => return read_stream(ctx, &base, response, events).await,
                307 => {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .and_then(|l| redirect_target(&base, l));
                    match location {
                        Some(next) => {
                            debug!("Mesos: {base} is not the leader; following to {next}");
                            base = next;
                        }
                        None => {
                            failures.push(format!("{base}: a redirect without a usable Location"));
                            break;
                        }
                    }
                }
                503 => {
                    failures.push(format!("{base}: no leading master elected yet (503)"));
                    break;
                }
                _ => {
                    let text = response.text().await.unwrap_or_default();
                    let text = text.trim();
                    let message = format!(
                        "the Mesos master at {base} refused the subscription (HTTP {status}): {}",
                        if text.is_empty() {
                            "no reason given"
                        } else {
                            text
                        }
                    );
                    if (500..600).contains(&status) {
                        failures.push(message);
                        break;
                    }
                    let _ = events.send(Event::Error { message });
                    return (Ended::Stop, false);
                }
            }
        }
    }
    (
        Ended::Retry(format!(
            "no Mesos master reachable: {}",
            failures.join("; ")
        )),
        false,
    )
}

pub(super) fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Reads the event stream of an accepted subscription until it ends.
async fn read_stream(
    ctx: &Context,
    base: &str,
    mut response: reqwest::Response,
    events: &mpsc::UnboundedSender<Event>,
) -> (Ended, bool) {
    let stream_id = response
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut decoder = Decoder::new();
    let mut silence = ctx.config.call_timeout;
    let mut subscribed = false;
    loop {
        let chunk = match tokio::time::timeout(silence, response.chunk()).await {
            Err(_) => {
                return (
                    Ended::Retry(format!(
                        "the master at {base} has been silent for {silence:?}"
                    )),
                    subscribed,
                );
            }
            Ok(Err(e)) => {
                return (
                    Ended::Retry(format!(
                        "the event stream from {base} broke: {}",
                        describe(&e)
                    )),
                    subscribed,
                );
            }
            Ok(Ok(None)) => {
                let end = if lock(&ctx.shared).torn_down {
                    Ended::Stop
                } else {
                    Ended::Retry(format!("the master at {base} closed the event stream"))
                };
                return (end, subscribed);
            }
            Ok(Ok(Some(chunk))) => chunk,
        };
        if let Err(e) = decoder.feed(&chunk) {
            warn!("Mesos: {e}; resetting the connection");
            return (Ended::Retry(format!("{base}: {e}")), subscribed);
        }
        while let Some(record) = decoder.next_record() {
            let incoming = match read_event(&record) {
                Ok(i) => i,
                Err(e) => {
                    warn!(
                        "Mesos: {e} ({}); resetting the connection",
                        String::from_utf8_lossy(&record[..record.len().min(200)])
                    );
                    return (Ended::Retry(format!("{base}: {e}")), subscribed);
                }
            };
            for item in incoming {
                match item {
                    Incoming::Event(event) => {
                        match &event {
                            Event::Subscribed {
                                framework_id,
                                heartbeat_interval_seconds,
                            } => {
                                subscribed = true;
                                let mut s = lock(&ctx.shared);
                                s.stream_id.clone_from(&stream_id);
                                s.framework_id = Some(framework_id.clone());
                                s.leader = Some(base.to_owned());
                                silence = Duration::from_secs_f64(
                                    (heartbeat_interval_seconds * SILENT_HEARTBEATS)
                                        .clamp(0.05, 3600.0),
                                );
                                info!("Mesos: subscribed to {base} as {framework_id}");
                            }
                            Event::Error { message } => {
                                warn!("Mesos: the master sent ERROR: {message}");
                                let _ = events.send(event);
                                return (Ended::Stop, subscribed);
                            }
                            _ => {}
                        }
                        if events.send(event).is_err() {
                            return (Ended::Stop, subscribed);
                        }
                    }
                    Incoming::Unreadable { offer_ids, reason } => {
                        warn!(
                            "Mesos: declining {} offer(s) berth cannot read: {reason}",
                            offer_ids.len()
                        );
                        let _ = ctx.calls.send(wire::Call {
                            decline: Some(wire::Decline {
                                offer_ids,
                                filters: Some(Filters {
                                    refuse_seconds: 5.0,
                                }),
                            }),
                            ..wire::Call::new(CallType::Decline, None)
                        });
                    }
                    Incoming::InverseOffers(list) => answer_inverse(ctx, list),
                    Incoming::Nothing => {}
                }
            }
        }
    }
}

/// Answers maintenance windows as configured (never leaves one unanswered).
fn answer_inverse(ctx: &Context, list: Vec<wire::InverseOffer>) {
    let accept = ctx.config.maintenance == super::Maintenance::Accept;
    let ids: Vec<OfferId> = list
        .iter()
        .map(|o| {
            info!(
                "Mesos: agent {} asks for its resources back from {} ns (maintenance); {}",
                o.agent_id.as_ref().map_or("?", |a| a.as_str()),
                o.unavailability.start.nanoseconds,
                if accept {
                    "accepted — its pods are recovered elsewhere when it goes down"
                } else {
                    "declined — replace its pods to move them"
                }
            );
            o.id.clone()
        })
        .collect();
    if ids.is_empty() {
        return;
    }
    let answer = Some(wire::InverseOffersAnswer {
        inverse_offer_ids: ids,
        filters: None,
    });
    let call = if accept {
        wire::Call {
            accept_inverse_offers: answer,
            ..wire::Call::new(CallType::AcceptInverseOffers, None)
        }
    } else {
        wire::Call {
            decline_inverse_offers: answer,
            ..wire::Call::new(CallType::DeclineInverseOffers, None)
        }
    };
    let _ = ctx.calls.send(call);
}

/// Calls of these kinds commute (each names its own offers or status), so several may be in
/// flight at once; any other call waits for those before it, and goes alone.
fn commutes(kind: CallType) -> bool {
    matches!(
        kind,
        CallType::Accept
            | CallType::Decline
            | CallType::Acknowledge
            | CallType::AcceptInverseOffers
            | CallType::DeclineInverseOffers
    )
}

/// Calls in flight at once, at most.
const MAX_IN_FLIGHT: usize = 16;

/// Sends the queued calls to the leader with the current stream id: in order, except that
/// consecutive ACCEPT, DECLINE and ACKNOWLEDGE calls overlap.
pub(super) async fn send_calls(ctx: Context, mut queue: mpsc::UnboundedReceiver<wire::Call>) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(mut call) = queue.recv().await {
        let (leader, stream_id, framework_id) = {
            let s = lock(&ctx.shared);
            (
                s.leader.clone(),
                s.stream_id.clone(),
                s.framework_id.clone(),
            )
        };
        let (Some(leader), Some(stream_id)) = (leader, stream_id) else {
            debug!("Mesos: not subscribed; dropping a {:?} call", call.kind);
            continue;
        };
        call.framework_id = framework_id;
        if commutes(call.kind) {
            while in_flight.len() >= MAX_IN_FLIGHT {
                in_flight.join_next().await;
            }
            in_flight.spawn(post_call(ctx.clone(), call, leader, stream_id));
        } else {
            while in_flight.join_next().await.is_some() {}
            post_call(ctx.clone(), call, leader, stream_id).await;
        }
    }
}

/// POSTs one call and logs a refusal.
async fn post_call(ctx: Context, call: wire::Call, leader: String, stream_id: String) {
    let kind = call.kind;
    if kind == CallType::Teardown {
        // The master ends the stream as it removes the framework: that end is final.
        lock(&ctx.shared).torn_down = true;
    }
    let body = match serde_json::to_vec(&call) {
        Ok(b) => b,
        Err(e) => {
            warn!("Mesos: cannot encode a {kind:?} call: {e}");
            return;
        }
    };
    let sent = tokio::time::timeout(
        ctx.config.call_timeout,
        post(&ctx, &leader, body, Some(&stream_id)).send(),
    )
    .await;
    match sent {
        Ok(Ok(r)) if r.status().is_success() => {
            if kind == CallType::Teardown {
                info!("Mesos: the framework was torn down");
            }
        }
        Ok(Ok(r)) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            warn!(
                "Mesos: {kind:?} refused by {leader} (HTTP {status}): {}",
                text.trim()
            );
        }
        Ok(Err(e)) => warn!("Mesos: {kind:?} to {leader} failed: {}", describe(&e)),
        Err(_) => warn!(
            "Mesos: {kind:?} to {leader}: no answer within {:?}",
            ctx.config.call_timeout
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::redirect_target;

    #[test]
    fn redirects_keep_the_scheme() {
        assert_eq!(
            redirect_target("http://a:5050", "//b:5051/api/v1/scheduler").as_deref(),
            Some("http://b:5051")
        );
        assert_eq!(
            redirect_target("https://a:5050", "http://b:5051/api/v1/scheduler").as_deref(),
            Some("https://b:5051")
        );
        assert_eq!(redirect_target("http://a", "b:5051"), None);
    }
}
