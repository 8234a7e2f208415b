//! Checks of query parameters and request bodies; every failure is a `400` message that names
//! the parameter (or the body) and what is allowed.

use std::collections::BTreeMap;

use serde_json::Value;

/// Query parameters, decoded, in the order given.
pub(crate) type RawParams = Vec<(String, String)>;

/// The query string as a handler receives it (decoded, or why it could not be).
pub(crate) type Query =
    Result<axum::extract::Query<RawParams>, axum::extract::rejection::QueryRejection>;

/// Checks the query against the parameters a route takes; the error is the 400 message.
pub(crate) fn from_query(
    query: Query,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, String> {
    let axum::extract::Query(raw) =
        query.map_err(|e| format!("Invalid query string: {}", e.body_text()))?;
    check(&raw, allowed)
}

/// Checks that `params` only holds names in `allowed`, each at most once and not empty.
pub(crate) fn check(
    params: &RawParams,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (name, value) in params {
        if !allowed.contains(&name.as_str()) {
            return Err(if allowed.is_empty() {
                format!("Unknown query parameter '{name}': this endpoint takes no parameters")
            } else {
                format!(
                    "Unknown query parameter '{name}': this endpoint takes {}",
                    allowed
                        .iter()
                        .map(|a| format!("'{a}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        if value.is_empty() {
            return Err(format!("Query parameter '{name}' is empty"));
        }
        if out.insert(name.clone(), value.clone()).is_some() {
            return Err(format!("Query parameter '{name}' is given more than once"));
        }
    }
    Ok(out)
}

/// A `true`/`false` parameter (absent: `false`).
pub(crate) fn boolean(params: &BTreeMap<String, String>, name: &str) -> Result<bool, String> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "Invalid value '{other}' for query parameter '{name}': expected 'true' or 'false'"
        )),
    }
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The body of `POST /v1/plans/{plan}/start`: a JSON object of strings (empty body: none).
pub(crate) fn start_parameters(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    const EXPECTED: &str = r#"expected a JSON object of strings, e.g. {"VAR": "value"}"#;
    if is_blank(body) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("Couldn't parse parameters: the body is not JSON ({e}); {EXPECTED}")
    })?;
    let Value::Object(map) = value else {
        return Err(format!(
            "Couldn't parse parameters: got {}; {EXPECTED}",
            kind(&value)
        ));
    };
    map.into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => Ok((name, s)),
            other => Err(format!(
                "Couldn't parse parameters: the value of {name} is {} ({other}); {EXPECTED}",
                kind(&other)
            )),
        })
        .collect()
}

/// The body of `POST /v1/pods/{pod}/pause|resume`: a JSON array of task names (empty body:
/// all tasks).
pub(crate) fn task_list(body: &[u8]) -> Result<Vec<String>, String> {
    const EXPECTED: &str =
        r#"expected a JSON array of task names, e.g. ["server"] or ["hello-0-server"]"#;
    if is_blank(body) {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("Couldn't parse the task list: the body is not JSON ({e}); {EXPECTED}")
    })?;
    let Value::Array(items) = value else {
        return Err(format!(
            "Couldn't parse the task list: got {}; {EXPECTED}",
            kind(&value)
        ));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) if !s.is_empty() => Ok(s),
            other => Err(format!(
                "Couldn't parse the task list: {other} is not a task name; {EXPECTED}"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawParams {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn unknown_duplicate_and_empty_parameters_are_refused() {
        assert_eq!(
            check(&raw(&[("x", "1")]), &[]).unwrap_err(),
            "Unknown query parameter 'x': this endpoint takes no parameters"
        );
        assert_eq!(
            check(&raw(&[("x", "1")]), &["phase", "step"]).unwrap_err(),
            "Unknown query parameter 'x': this endpoint takes 'phase', 'step'"
        );
        assert_eq!(
            check(&raw(&[("phase", "a"), ("phase", "b")]), &["phase"]).unwrap_err(),
            "Query parameter 'phase' is given more than once"
        );
        assert_eq!(
            check(&raw(&[("phase", "")]), &["phase"]).unwrap_err(),
            "Query parameter 'phase' is empty"
        );
        let ok = check(
            &raw(&[("phase", "hello"), ("step", "s")]),
            &["phase", "step"],
        )
        .unwrap();
        assert_eq!(ok.get("phase").map(String::as_str), Some("hello"));
    }

    #[test]
    fn booleans() {
        let p = check(&raw(&[("verbose", "maybe")]), &["verbose"]).unwrap();
        assert_eq!(
            boolean(&p, "verbose").unwrap_err(),
            "Invalid value 'maybe' for query parameter 'verbose': expected 'true' or 'false'"
        );
        let p = check(&raw(&[("verbose", "true")]), &["verbose"]).unwrap();
        assert!(boolean(&p, "verbose").unwrap());
        assert!(!boolean(&BTreeMap::new(), "verbose").unwrap());
    }

    #[test]
    fn start_bodies() {
        assert!(start_parameters(b"").unwrap().is_empty());
        assert!(start_parameters(b" \n").unwrap().is_empty());
        assert!(start_parameters(b"{}").unwrap().is_empty());
        assert_eq!(
            start_parameters(br#"{"B":"2","A":"x=y"}"#).unwrap(),
            vec![
                ("B".to_owned(), "2".to_owned()),
                ("A".to_owned(), "x=y".to_owned())
            ]
        );
        let e = start_parameters(b"[1]").unwrap_err();
        assert!(e.contains("got an array"), "{e}");
        let e = start_parameters(br#"{"A": 3}"#).unwrap_err();
        assert!(e.contains("the value of A is a number (3)"), "{e}");
        let e = start_parameters(b"{nope").unwrap_err();
        assert!(
            e.starts_with("Couldn't parse parameters: the body is not JSON"),
            "{e}"
        );
    }

    #[test]
    fn task_list_bodies() {
        assert!(task_list(b"").unwrap().is_empty());
        assert_eq!(task_list(br#"["server"]"#).unwrap(), vec!["server"]);
        assert!(
            task_list(br#"{"a":1}"#)
                .unwrap_err()
                .contains("got an object")
        );
        assert!(
            task_list(br"[1]")
                .unwrap_err()
                .contains("1 is not a task name")
        );
        assert!(task_list(b"[").unwrap_err().contains("not JSON"));
    }
}
