//! Who may call the API, and the audit log of every change.
//!
//! ```text
//!  request ──▶ /v1/artifacts/… (fetched by agents): open
//!          ──▶ token (Authorization: Bearer T, or token=T as the CLI sends it)
//!                none or unknown ──▶ 401 + WWW-Authenticate (reads too, unless public)
//!                read token on a change ──▶ 403
//!          ──▶ the route ──▶ a change (any method but GET/HEAD) is appended to the audit
//!              log: time, token name, method, path, query, status
//! ```
//!
//! Tokens come from a file of lines `NAME ROLE TOKEN` (ROLE `read` or `operate`; `#` starts
//! a comment). They are compared in constant time, against every token, and never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde_json::{Value, json};

use crate::reply;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Read only (GET).
    Read,
    /// Read and change.
    Operate,
}

/// A named token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Its name (in the audit log).
    pub name: String,
    /// What it may do.
    pub role: Role,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A token file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TokenFileError {
    /// The file.
    pub file: String,
    /// 1-based line (0: the file itself).
    pub line: usize,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Reads a token file.
///
/// # Errors
/// The file cannot be read, a line is not `NAME ROLE TOKEN`, a role is unknown, a name or a
/// token appears twice, a token is shorter than 16 characters, or there is no token at all.
pub fn load_tokens(path: &Path) -> Result<Vec<Token>, TokenFileError> {
    let file = path.display().to_string();
    let err = |line: usize, message: String| TokenFileError {
        file: file.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, format!("cannot read it: {e}")))?;
    let mut tokens: Vec<Token> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [name, role, secret] = fields.as_slice() else {
            return Err(err(
                i + 1,
                format!(
                    "expected NAME ROLE TOKEN (3 fields separated by spaces), found {} field(s)",
                    fields.len()
                ),
            ));
        };
        let role = match *role {
            "read" => Role::Read,
            "operate" => Role::Operate,
            other => {
                return Err(err(
                    i + 1,
                    format!("role {other:?} is unknown; expected read or operate"),
                ));
            }
        };
        if secret.chars().count() < 16 {
            return Err(err(
                i + 1,
                format!("the token of {name} is shorter than 16 characters"),
            ));
        }
        if tokens.iter().any(|t| t.name == *name) {
            return Err(err(i + 1, format!("the name {name} is used twice")));
        }
        if tokens.iter().any(|t| t.secret == secret.as_bytes()) {
            return Err(err(
                i + 1,
                format!("the token of {name} is the token of another name"),
            ));
        }
        tokens.push(Token {
            name: (*name).to_owned(),
            role,
            secret: secret.as_bytes().to_vec(),
        });
    }
    if tokens.is_empty() {
        return Err(err(
            0,
            "no token in it: add lines NAME ROLE TOKEN".to_owned(),
        ));
    }
    Ok(tokens)
}

/// Equal in time independent of where they differ (lengths may leak, contents may not).
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How the API is guarded.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// The tokens; none: no authentication (every request is allowed).
    pub tokens: Vec<Token>,
    /// Reads need no token.
    pub public_read: bool,
    /// Where changes are logged (`<data-dir>/audit.log`).
    pub audit: Option<PathBuf>,
}

#[derive(Clone)]
struct Shared {
    guard: Arc<Guard>,
    audit: Arc<Mutex<()>>,
}

/// The token a request carries: `Authorization: Bearer T` or `Authorization: token=T`.
fn presented(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    let text = std::str::from_utf8(value).ok()?.trim();
    let token = text
        .strip_prefix("Bearer ")
        .or_else(|| text.strip_prefix("bearer "))
        .or_else(|| text.strip_prefix("token="))?;
    Some(token.trim().as_bytes())
}

/// The token matching `secret`, compared against every token.
fn matching<'a>(tokens: &'a [Token], secret: &[u8]) -> Option<&'a Token> {
    let mut found = None;
    for t in tokens {
        if same(&t.secret, secret) {
            found = Some(t);
        }
    }
    found
}

fn unauthorized(message: &str) -> Response {
    let mut response = reply::text(401, message.to_owned());
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"berth\""),
    );
    response
}

async fn check(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let method = request.method().clone();
    let change = !matches!(method, Method::GET | Method::HEAD);
    let g = &shared.guard;
    let mut who = "-".to_owned();
    // Open: the artifacts agents fetch, and the dashboard's page (it asks for a token).
    let open = path.starts_with("/v1/artifacts/") || path == "/";
    if !g.tokens.is_empty() && !open {
        let token = presented(&request).and_then(|s| matching(&g.tokens, s));
        match token {
            None if change || !g.public_read => {
                let message = if presented(&request).is_some() {
                    "The token is not valid"
                } else {
                    "A token is needed: send 'Authorization: Bearer <token>' (berth --token, or \
                     $BERTH_TOKEN)"
                };
                return unauthorized(message);
            }
            Some(t) if change && t.role == Role::Read => {
                audit(&shared, &t.name, &method, &path, query.as_deref(), 403);
                return reply::text(
                    403,
                    format!(
                        "The token {} may only read; changes need an operate token",
                        t.name
                    ),
                );
            }
            Some(t) => who.clone_from(&t.name),
            None => {}
        }
    }
    let response = next.run(request).await;
    if change {
        audit(
            &shared,
            &who,
            &method,
            &path,
            query.as_deref(),
            response.status().as_u16(),
        );
    }
    response
}

/// Appends a change to the audit log (failures are logged, never fatal).
fn audit(
    shared: &Shared,
    who: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    status: u16,
) {
    let Some(file) = &shared.guard.audit else {
        return;
    };
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let entry = json!({
        "time": time,
        "token": who,
        "method": method.as_str(),
        "path": path,
        "query": query,
        "status": status,
    });
    let _lock = shared
        .audit
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| writeln!(f, "{entry}"));
    if let Err(e) = written {
        tracing::error!("cannot append to the audit log {}: {e}", file.display());
    }
}

/// The audit log's entries, oldest first (the last `limit`).
fn read_audit(file: &Path, limit: usize) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let entries: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let skip = entries.len().saturating_sub(limit);
    Value::Array(entries.into_iter().skip(skip).collect())
}

/// Guards every route of `router` (added last, so that it sees every request) and serves
/// `GET /v1/audit[?limit=N]` (the last N changes, default 1000).
pub fn with_guard(router: Router, guard: Guard) -> Router {
    let shared = Shared {
        guard: Arc::new(guard),
        audit: Arc::new(Mutex::new(())),
    };
    let file = shared.guard.audit.clone();
    let router = router.route(
        "/v1/audit",
        axum::routing::get(move |query: crate::params::Query| {
            let file = file.clone();
            async move {
                let params = match crate::params::from_query(query, &["limit"]) {
                    Ok(p) => p,
                    Err(m) => return reply::text(400, m),
                };
                let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
                    None => 1000,
                    Some(Ok(n)) => n,
                    Some(Err(_)) => {
                        return reply::text(
                            400,
                            "Invalid value for 'limit': expected a whole number".to_owned(),
                        );
                    }
                };
                let Some(file) = file else {
                    return reply::json(200, &json!([]));
                };
                match tokio::task::spawn_blocking(move || read_audit(&file, limit)).await {
                    Ok(v) => reply::json(200, &v),
                    Err(e) => reply::text(500, format!("Reading the audit log failed: {e}")),
                }
            }
        }),
    );
    router.layer(middleware::from_fn_with_state(shared, check))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn token_files_are_read_and_bad_lines_named() {
        let (_d, p) = file(
            "# operators\nalice operate 0123456789abcdefXYZ\nbob read  fedcba9876543210abc # ci\n\n",
        );
        let tokens = load_tokens(&p).unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            (tokens[1].name.as_str(), tokens[1].role),
            ("bob", Role::Read)
        );
        assert!(
            !format!("{tokens:?}").contains("0123456789"),
            "tokens are never printed"
        );
        for (text, line, says) in [
            ("alice operate\n", 1, "3 fields"),
            (
                "a operate 0123456789abcdef\nb admin 0123456789abcdeg\n",
                2,
                "expected read or operate",
            ),
            ("a read short\n", 1, "shorter than 16"),
            (
                "a read 0123456789abcdef\na read 0123456789abcdeg\n",
                2,
                "used twice",
            ),
            (
                "a read 0123456789abcdef\nb read 0123456789abcdef\n",
                2,
                "token of another",
            ),
            ("# nothing\n", 0, "no token"),
        ] {
            let (_d, p) = file(text);
            let e = load_tokens(&p).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(says), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("{}:{line}:", p.display()))
            );
        }
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
