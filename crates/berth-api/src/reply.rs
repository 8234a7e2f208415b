//! Turning scheduler replies into HTTP responses.

use axum::body::Body as HttpBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_scheduler::{Body, Reply};
use futures::StreamExt as _;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// A status from a number; anything outside 100–999 becomes a 500 (never a panic).
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<HttpBody>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A plain-text response.
pub(crate) fn text(code: u16, message: impl Into<String>) -> Response {
    with_type(status(code), TEXT, message.into())
}

/// A pretty-printed JSON response.
pub(crate) fn json<T: serde::Serialize + ?Sized>(code: u16, value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(s) => with_type(status(code), JSON, s),
        Err(e) => text(500, format!("cannot encode the reply: {e}")),
    }
}

/// A file to save: its bytes with `Content-Disposition: attachment`.
pub(crate) fn download(name: &str, bytes: Vec<u8>) -> Response {
    let mut response = with_type(StatusCode::OK, "application/octet-stream", bytes);
    let disposition = format!("attachment; filename=\"{}\"", name.replace('"', ""));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Bytes of a plan's JSON written at a time: a large plan is streamed in pieces of this size
/// as the client reads them (written while the earlier ones travel), a small one sent whole.
const PLAN_CHUNK: usize = 256 * 1024;

/// A plan's JSON (the same bytes as [`json`] would make, written directly).
fn plan(code: StatusCode, report: Box<berth_plan::PlanReport>) -> Response {
    let mut cursor = berth_plan::JsonCursor::default();
    let Some(first) = cursor.next_chunk(&report, PLAN_CHUNK) else {
        return with_type(code, JSON, Vec::new());
    };
    let Some(second) = cursor.next_chunk(&report, PLAN_CHUNK) else {
        return with_type(code, JSON, first);
    };
    let rest = futures::stream::unfold((report, cursor), |(report, mut cursor)| async move {
        let piece = cursor.next_chunk(&report, PLAN_CHUNK)?;
        Some((Ok::<_, std::convert::Infallible>(piece), (report, cursor)))
    });
    let pieces = futures::stream::iter([Ok(first), Ok(second)]).chain(rest);
    with_type(code, JSON, HttpBody::from_stream(pieces))
}

/// The HTTP response of a scheduler reply: its status (also non-standard codes) and its body.
/// Statuses that carry no body (1xx, 204, 304) are sent without one.
pub(crate) fn to_response(reply: Reply) -> Response {
    let code = status(reply.status);
    if code.is_informational() || code == StatusCode::NO_CONTENT || code == StatusCode::NOT_MODIFIED
    {
        return code.into_response();
    }
    match reply.body {
        Body::Json(value) => json(code.as_u16(), &value),
        Body::Plan(report) => plan(code, report),
        Body::Text(t) => with_type(code, TEXT, t),
        Body::Raw(bytes) => with_type(code, JSON, bytes),
        Body::Empty => code.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn odd_codes_and_bodyless_codes() {
        let r = to_response(Reply::json_with(318, json!({"value": 318})));
        assert_eq!(r.status().as_u16(), 318);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
        let r = to_response(Reply::json_with(204, json!({"value": 204})));
        assert_eq!(r.status().as_u16(), 204);
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
        let r = to_response(Reply::text(42, "bad"));
        assert_eq!(r.status().as_u16(), 500);
        let r = to_response(Reply {
            status: 200,
            body: Body::Empty,
        });
        assert_eq!(r.status().as_u16(), 200);
    }
}
