//! The HTTP client of the operator commands: one request at a time on a current-thread
//! runtime, `-v` tracing on stderr, and errors worded for people.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

/// The global options: where the scheduler is, how to authenticate, how loud to be and
/// whether to print JSON. Accepted anywhere on the command line (`berth --url U pods
/// status`, `berth pods status --url U`).
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// The scheduler's API address.
    #[arg(
        long,
        global = true,
        env = "BERTH_URL",
        default_value = "http://127.0.0.1:7070",
        value_name = "URL"
    )]
    pub url: String,
    /// An authentication token, sent as `Authorization: token=<TOKEN>`.
    #[arg(
        long,
        global = true,
        env = "BERTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Certificates (PEM) of the authorities that sign an https:// scheduler's certificate,
    /// trusted besides the system's.
    #[arg(long, global = true, env = "BERTH_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Print the HTTP query and the response code on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print JSON instead of tables and trees.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A response: status, reason phrase and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The standard reason phrase, when the status has one.
    pub reason: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            anyhow!(
                "the scheduler answered {} with a body that is not JSON ({e}): {}",
                self.status,
                self.text().trim()
            )
        })
    }

    /// `404 Not Found` (or just `318` for a status without a standard phrase).
    pub fn status_line(&self) -> String {
        match self.reason {
            Some(r) => format!("{} {r}", self.status),
            None => self.status.to_string(),
        }
    }

    /// The error for an unexpected status: `404 Not Found: Pod hello-9 not found`.
    pub fn error(&self) -> anyhow::Error {
        let text = self.text();
        let text = text.trim();
        if text.is_empty() {
            anyhow!("{}", self.status_line())
        } else {
            anyhow!("{}: {text}", self.status_line())
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A connection to the scheduler's API.
pub struct Client {
    base: String,
    verbose: bool,
    token: Option<String>,
    /// `--json`: print JSON instead of tables and trees.
    pub json: bool,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// How long a request may take (stopping an agent waits for its processes to die).
const TIMEOUT: Duration = Duration::from_secs(120);

impl Client {
    /// A client for `conn`.
    ///
    /// # Errors
    /// A URL that is not `http://host[:port][/prefix]`, or no runtime.
    pub fn new(conn: &Conn) -> Result<Self> {
        let url = reqwest::Url::parse(conn.url.trim()).map_err(|e| {
            anyhow!(
                "invalid --url (or BERTH_URL) '{}': {e}; expected e.g. http://127.0.0.1:7070",
                conn.url
            )
        })?;
        match url.scheme() {
            "http" | "https" => {}
            other => bail!(
                "invalid --url (or BERTH_URL) '{}': scheme '{other}' is not supported; use \
                 http:// or https://",
                conn.url
            ),
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!(
                "invalid --url (or BERTH_URL) '{}': it must not have a query or fragment",
                conn.url
            );
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT);
        if let Some(file) = &conn.ca_cert {
            let pem = std::fs::read(file)
                .with_context(|| format!("--ca-cert {}: cannot read it", file.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow!("--ca-cert {}: not PEM certificates: {e}", file.display()))?;
            if certs.is_empty() {
                bail!("--ca-cert {}: no certificate in it", file.display());
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().context("cannot set up the HTTP client")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Client {
            base,
            verbose: conn.verbose,
            token: conn.token.clone(),
            json: conn.json,
            http,
            runtime,
        })
    }

    /// `GET base + path`.
    pub fn get(&self, path: &str) -> Result<Response> {
        self.send(reqwest::Method::GET, path, None)
    }

    /// `POST base + path`, with a JSON body if given.
    pub fn post(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Response> {
        self.send(reqwest::Method::POST, path, body)
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        if self.verbose {
            eprintln!("HTTP Query: {method} {url}");
        }
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.header(reqwest::header::AUTHORIZATION, format!("token={token}"));
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).context("cannot encode the request body")?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let result = self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = result.map_err(|e| self.transport_error(&e))?;
        let response = Response {
            status: status.as_u16(),
            reason: status.canonical_reason(),
            body: body.to_vec(),
        };
        if self.verbose {
            eprintln!(
                "Response: {} ({} bytes)",
                response.status_line(),
                response.body.len()
            );
        }
        Ok(response)
    }

    /// Runs a command inside a task over an upgraded connection (`POST path` with `body`):
    /// stdin goes to it when `interactive`, its stdout and stderr come back here; returns its
    /// exit code. With `tty` and a terminal on stdin, the terminal is raw meanwhile.
    pub fn exec(
        &self,
        path: &str,
        body: &serde_json::Value,
        interactive: bool,
        tty: bool,
    ) -> Result<i32> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let url = format!("{}{path}", self.base);
        if self.verbose {
            eprintln!(
                "HTTP Query: POST {url} (Upgrade: {})",
                berth_api::exec::PROTOCOL
            );
        }
        let mut request = self
            .http
            .post(&url)
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, berth_api::exec::PROTOCOL)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?);
        if let Some(token) = &self.token {
            request = request.header(reqwest::header::AUTHORIZATION, format!("token={token}"));
        }
        let raw = tty && interactive && std::io::IsTerminal::is_terminal(&std::io::stdin());
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| self.transport_error(&e))?;
            let status = response.status();
            if status != reqwest::StatusCode::SWITCHING_PROTOCOLS {
                let body = response.bytes().await.unwrap_or_default();
                return Err(Response {
                    status: status.as_u16(),
                    reason: status.canonical_reason(),
                    body: body.to_vec(),
                }
                .error());
            }
            let upgraded = response
                .upgrade()
                .await
                .context("the scheduler did not switch the connection to exec")?;
            let (mut from_task, mut to_task) = tokio::io::split(upgraded);
            let _terminal = if raw { RawTerminal::enter() } else { None };
            if interactive {
                // stdin is read on a thread of its own (a blocking read cannot be cancelled).
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
                std::thread::spawn(move || {
                    let mut stdin = std::io::stdin();
                    let mut buf = vec![0u8; 8192];
                    loop {
                        match std::io::Read::read(&mut stdin, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if tx.blocking_send(buf[..n].to_vec()).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
                tokio::spawn(async move {
                    while let Some(chunk) = rx.recv().await {
                        if to_task.write_all(&chunk).await.is_err() {
                            return;
                        }
                    }
                    let _ = to_task.shutdown().await;
                });
            } else {
                let _ = to_task.shutdown().await;
            }
            loop {
                let mut head = [0u8; 5];
                if from_task.read_exact(&mut head).await.is_err() {
                    bail!("the connection to the task ended before the command's exit code came");
                }
                let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut data = vec![0u8; len];
                from_task
                    .read_exact(&mut data)
                    .await
                    .context("the connection to the task ended in the middle of output")?;
                match head[0] {
                    berth_api::exec::STDOUT => {
                        let mut out = std::io::stdout().lock();
                        let _ = std::io::Write::write_all(&mut out, &data);
                        let _ = std::io::Write::flush(&mut out);
                    }
                    berth_api::exec::STDERR => {
                        let mut err = std::io::stderr().lock();
                        let _ = std::io::Write::write_all(&mut err, &data);
                    }
                    berth_api::exec::EXIT if data.len() == 4 => {
                        return Ok(i32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                    }
                    other => bail!("unexpected frame {other} from the task"),
                }
            }
        })
    }

    fn transport_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if e.is_connect() {
            anyhow!(
                "cannot reach the scheduler at {}: {cause} (is berth run running? set --url or BERTH_URL)",
                self.base
            )
        } else if e.is_timeout() {
            anyhow!(
                "the scheduler at {} did not answer within {} s",
                self.base,
                TIMEOUT.as_secs()
            )
        } else {
            anyhow!("request to the scheduler at {} failed: {cause}", self.base)
        }
    }
}

/// The innermost cause of an error (`Connection refused (os error 111)`).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `?a=x&b=y` from the pairs whose value is given (empty when none).
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The local terminal in raw mode (for `exec -t`), restored when dropped.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(
            encode("hello-0:[server, x]"),
            "hello-0%3A%5Bserver%2C%20x%5D"
        );
        assert_eq!(encode("a/b?c&d=é"), "a%2Fb%3Fc%26d%3D%C3%A9");
        assert_eq!(query(&[("phase", None), ("step", None)]), "");
        assert_eq!(
            query(&[("phase", Some("p 1")), ("step", None)]),
            "?phase=p%201"
        );
    }

    #[test]
    fn bad_urls() {
        for (url, want) in [
            ("nope", "invalid --url"),
            ("ftp://x", "scheme 'ftp'"),
            ("http://x/?a=1", "query or fragment"),
        ] {
            let conn = Conn {
                url: url.to_owned(),
                token: None,
                ca_cert: None,
                verbose: false,
                json: false,
            };
            let e = Client::new(&conn).err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains(want)),
                "{url}: {e:?}"
            );
        }
        let conn = Conn {
            url: "http://127.0.0.1:9/prefix/".to_owned(),
            token: None,
            ca_cert: None,
            verbose: false,
            json: false,
        };
        assert_eq!(
            Client::new(&conn).unwrap().base,
            "http://127.0.0.1:9/prefix"
        );
    }
}
