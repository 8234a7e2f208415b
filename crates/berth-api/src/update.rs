//! `POST /v1/update`: a configuration update of the running service. The body is
//! `{"options": {…}}` (a package's options, merged into the current ones unless
//! `"replace": true`, then checked against its schema) or `{"spec": "<svc.yml text>"}`; the
//! [`Renderer`] the binary gives turns it into a spec, and the scheduler validates it against
//! its target and rolls it out.
//!
//! ```text
//!  body ──▶ Renderer (blocking pool: files, templates) ──▶ every error: 400
//!       ──▶ Request::Update ──▶ scheduler: update validators (400), 409 uninstalling,
//!           200 {"message": "Update started", "configId": …} once stored
//! ```
//!
//! `POST /v1/update/rollback` (body empty or `{"configId": …}`) makes an earlier
//! configuration the target again: by default the newest one whose rollout completed.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use berth_scheduler::{Request, SchedulerHandle};
use berth_spec::ServiceSpec;
use serde_json::{Value, json};

use crate::reply;

/// What an update carries.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateSource {
    /// A package's options (JSON object): merged into the current ones, or with `replace`
    /// instead of them. The renderer gets them merged already (`replace: true`).
    Options {
        /// The options.
        options: Value,
        /// Whether they replace the current ones.
        replace: bool,
    },
    /// A svc.yml's text.
    Spec(String),
}

/// Renders an update into a spec, or lists every error (options against the schema with
/// their JSON pointers, template and spec errors with lines and fields).
pub type Renderer = Arc<dyn Fn(UpdateSource) -> Result<ServiceSpec, Vec<String>> + Send + Sync>;

/// What the update route holds.
#[derive(Clone)]
struct Updates {
    handle: SchedulerHandle,
    renderer: Renderer,
    /// The package options the target was rendered from (`None` for a plain svc.yml).
    options: Arc<Mutex<Option<Value>>>,
}

/// Adds `POST /v1/update` to `router`; `options` are the package options the current target
/// was rendered from (`None` for a plain svc.yml).
pub fn with_updates(
    router: Router,
    handle: SchedulerHandle,
    renderer: Renderer,
    options: Option<Value>,
) -> Router {
    router.merge(
        Router::new()
            .route("/v1/update", post(update))
            .route("/v1/update/rollback", post(rollback))
            .with_state(Updates {
                handle,
                renderer,
                options: Arc::new(Mutex::new(options)),
            }),
    )
}

/// `update` merged into `base`: objects field by field, anything else replaced.
fn merge(base: &mut Value, update: Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, v) in u {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, u) => *b = u,
    }
}

fn refused(errors: Vec<String>) -> Response {
    reply::json(
        400,
        &json!({"message": "The update was refused", "errors": errors}),
    )
}

/// The body's source, or why it cannot be one.
fn source(body: &[u8]) -> Result<UpdateSource, String> {
    let usage =
        "expected {\"options\": {…}} (a package's options) or {\"spec\": \"<svc.yml text>\"}";
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}; {usage}"))?;
    let Value::Object(mut fields) = value else {
        return Err(format!("The body is not a JSON object; {usage}"));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "options" | "spec" | "replace"))
    {
        return Err(format!("Unknown field '{unknown}' in the body; {usage}"));
    }
    let replace = match fields.remove("replace") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err("'replace' must be true or false".to_owned()),
    };
    if replace && fields.contains_key("spec") {
        return Err("'replace' applies to options; a spec replaces the target anyway".to_owned());
    }
    match (fields.remove("options"), fields.remove("spec")) {
        (Some(options @ Value::Object(_)), None) => Ok(UpdateSource::Options { options, replace }),
        (Some(_), None) => Err(format!("'options' must be a JSON object; {usage}")),
        (None, Some(Value::String(text))) => Ok(UpdateSource::Spec(text)),
        (None, Some(_)) => Err(format!(
            "'spec' must be the svc.yml text as a string; {usage}"
        )),
        (Some(_), Some(_)) => Err(format!("Give 'options' or 'spec', not both; {usage}")),
        (None, None) => Err(format!("The body is empty; {usage}")),
    }
}

async fn update(
    State(updates): State<Updates>,
    query: crate::params::Query,
    body: Bytes,
) -> Response {
    let dry_run = match crate::params::from_query(query, &["dryRun"])
        .and_then(|p| crate::params::boolean(&p, "dryRun"))
    {
        Ok(d) => d,
        Err(m) => return reply::text(400, m),
    };
    let mut source = match source(&body) {
        Ok(s) => s,
        Err(m) => return reply::text(400, m),
    };
    // Options are rendered merged into the current ones (unless they replace them).
    let effective = match &mut source {
        UpdateSource::Options { options, replace } => {
            if !*replace {
                let current = lock(&updates.options).clone();
                if let Some(mut merged) = current {
                    merge(&mut merged, std::mem::take(options));
                    *options = merged;
                }
            }
            *replace = true;
            Some(options.clone())
        }
        UpdateSource::Spec(_) => None,
    };
    let renderer = Arc::clone(&updates.renderer);
    let spec = match tokio::task::spawn_blocking(move || renderer(source)).await {
        Ok(Ok(spec)) => spec,
        Ok(Err(errors)) => return refused(errors),
        Err(e) => return reply::text(500, format!("Rendering the update failed: {e}")),
    };
    if dry_run {
        return reply::to_response(
            updates
                .handle
                .request(Request::UpdatePreview(Box::new(spec)))
                .await,
        );
    }
    let answer = updates
        .handle
        .request(Request::Update(Box::new(spec), effective.clone()))
        .await;
    if answer.status == 200 && effective.is_some() {
        *lock(&updates.options) = effective;
    }
    reply::to_response(answer)
}

/// `POST /v1/update/rollback`, body empty or `{"configId": "<id>"}`.
async fn rollback(
    State(updates): State<Updates>,
    query: crate::params::Query,
    body: Bytes,
) -> Response {
    if let Err(m) = crate::params::from_query(query, &[]) {
        return reply::text(400, m);
    }
    let to = match rollback_target(&body) {
        Ok(to) => to,
        Err(m) => return reply::text(400, m),
    };
    let answer = updates.handle.request(Request::Rollback(to)).await;
    if answer.status == 200
        && let berth_scheduler::Body::Json(v) = &answer.body
        && let Some(options) = v.get("options")
    {
        *lock(&updates.options) = Some(options.clone());
    }
    reply::to_response(answer)
}

/// The configuration a rollback body names (`None`: the default).
fn rollback_target(body: &[u8]) -> Result<Option<String>, String> {
    let usage = "expected no body, or {\"configId\": \"<id>\"}";
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("Invalid JSON body: {e}; {usage}"))?;
    let Value::Object(fields) = value else {
        return Err(format!("The body is not a JSON object; {usage}"));
    };
    if let Some(unknown) = fields.keys().find(|k| *k != "configId") {
        return Err(format!("Unknown field '{unknown}' in the body; {usage}"));
    }
    match fields.get("configId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id.clone())),
        Some(_) => Err(format!("'configId' must be a string; {usage}")),
    }
}

fn lock(options: &Mutex<Option<Value>>) -> std::sync::MutexGuard<'_, Option<Value>> {
    options
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_merge_field_by_field() {
        let mut base = json!({"hello": {"cpus": 0.1, "count": 1}, "service": {"name": "x"}});
        merge(
            &mut base,
            json!({"hello": {"count": 2}, "world": {"count": 3}}),
        );
        assert_eq!(
            base,
            json!({"hello": {"cpus": 0.1, "count": 2}, "service": {"name": "x"}, "world": {"count": 3}})
        );
    }

    #[test]
    fn rollback_bodies() {
        assert_eq!(rollback_target(b""), Ok(None));
        assert_eq!(rollback_target(b"{}"), Ok(None));
        assert_eq!(
            rollback_target(br#"{"configId": "x"}"#),
            Ok(Some("x".to_owned()))
        );
        assert!(
            rollback_target(br#"{"id": "x"}"#)
                .unwrap_err()
                .contains("Unknown field")
        );
        assert!(
            rollback_target(br#"{"configId": 1}"#)
                .unwrap_err()
                .contains("string")
        );
    }

    #[test]
    fn bodies_name_what_is_wrong() {
        assert_eq!(
            source(br#"{"options": {"a": 1}}"#),
            Ok(UpdateSource::Options {
                options: json!({"a": 1}),
                replace: false
            })
        );
        assert_eq!(
            source(br#"{"options": {"a": 1}, "replace": true}"#),
            Ok(UpdateSource::Options {
                options: json!({"a": 1}),
                replace: true
            })
        );
        assert_eq!(
            source(br#"{"spec": "name: x"}"#),
            Ok(UpdateSource::Spec("name: x".to_owned()))
        );
        for (body, says) in [
            (&br#"{"options": 3}"#[..], "must be a JSON object"),
            (br#"{"spec": 3}"#, "must be the svc.yml text"),
            (br#"{"options": {}, "spec": ""}"#, "not both"),
            (br#"{}"#, "empty"),
            (br#"{"opts": {}}"#, "Unknown field 'opts'"),
            (b"[1]", "not a JSON object"),
            (b"{", "Invalid JSON"),
            (br#"{"options": {}, "replace": 1}"#, "true or false"),
        ] {
            let e = source(body).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
