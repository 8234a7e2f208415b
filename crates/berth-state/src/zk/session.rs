//! The ZooKeeper session of a [`ZkPersister`](super::ZkPersister): opening it, waiting
//! for it, re-creating it after an expiry, and closing it; how failures become
//! [`StateError`]s.

use super::*;

/// Longest wait for a new session after the old one expired (the caller retries).
const RENEW_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Inner {
    pub(super) fn prefix_len(&self) -> usize {
        self.url.chroot().map_or(0, str::len)
    }

    pub(super) fn lock_location(&self, dir: &str) -> String {
        format!(
            "zk://{}{}{dir}",
            self.url.connect_string(),
            self.url.chroot().unwrap_or("")
        )
    }

    pub(super) fn unavailable(
        &self,
        action: &str,
        message: impl Into<String>,
        hint: &str,
    ) -> StateError {
        StateError::Unavailable {
            location: self.location.clone(),
            action: action.to_owned(),
            message: message.into(),
            hint: hint.to_owned(),
        }
    }

    /// The error for a failed request.
    pub(super) fn failure(&self, action: &str, failure: Failure, hint: &str) -> StateError {
        match failure {
            Failure::Timeout => self.unavailable(
                action,
                format!(
                    "no answer within {}",
                    format_duration(self.options.request_timeout)
                ),
                hint,
            ),
            Failure::Zk(e) if transient(&e) => self.unavailable(action, e.to_string(), hint),
            Failure::Zk(e) => StateError::Backend {
                location: self.location.clone(),
                action: action.to_owned(),
                message: e.to_string(),
            },
        }
    }

    /// Awaits one answer, at most the request timeout.
    pub(super) async fn ask<T>(
        &self,
        f: impl Future<Output = Result<T, zk::Error>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.options.request_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Zk(e)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    pub(super) fn connection_state(&self) -> ZkConnectionState {
        let conn = lock(&self.conn);
        let Some(client) = &conn.client else {
            return ZkConnectionState::Expired;
        };
        match client.state() {
            zk::SessionState::SyncConnected | zk::SessionState::ConnectedReadOnly => {
                ZkConnectionState::Connected
            }
            zk::SessionState::Disconnected => {
                let since = match *lock(&self.disconnected_since) {
                    Some((generation, since)) if generation == conn.generation => since,
                    _ => Instant::now(),
                };
                ZkConnectionState::Disconnected { since }
            }
            _ => ZkConnectionState::Expired,
        }
    }

    /// Opens a session and creates the chroot when missing; the client is rooted there.
    pub(super) async fn open_session(&self) -> Result<zk::Client, zk::Error> {
        let client = zk::Client::connector()
            .with_session_timeout(self.options.session_timeout)
            .connect(&self.url.connect_string())
            .await?;
        let Some(chroot) = self.url.chroot() else {
            return Ok(client);
        };
        for path in ancestors(chroot).chain(std::iter::once(chroot)) {
            match client.create(path, &[], &persistent()).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        client
            .chroot(chroot.to_owned())
            .map_err(|_| zk::Error::UnexpectedError(format!("the chroot {chroot} is invalid")))
    }

    /// Makes `client` the current session and follows its state.
    pub(super) fn install(&self, client: zk::Client) -> (zk::Client, u64) {
        let mut conn = lock(&self.conn);
        conn.generation += 1;
        let generation = conn.generation;
        conn.client = Some(client.clone());
        drop(conn);
        let mut watcher = client.state_watcher();
        let since = self.disconnected_since.clone();
        tokio::spawn(async move {
            loop {
                let state = watcher.changed().await;
                let mut since = lock(&since);
                match state {
                    zk::SessionState::Disconnected => {
                        if since.is_none_or(|(g, _)| g != generation) {
                            *since = Some((generation, Instant::now()));
                        }
                    }
                    _ => {
                        if since.is_some_and(|(g, _)| g == generation) {
                            *since = None;
                        }
                    }
                }
                if state.is_terminated() {
                    break;
                }
            }
        });
        (client, generation)
    }

    /// The first session, made by `connect`.
    pub(super) async fn first_session(&self) -> Result<(), StateError> {
        let wait = self.options.connect_timeout;
        let message = match tokio::time::timeout(wait, self.open_session()).await {
            Ok(Ok(client)) => {
                self.install(client);
                return Ok(());
            }
            Ok(Err(e)) if !transient(&e) => {
                return Err(StateError::Backend {
                    location: self.location.clone(),
                    action: "connecting".to_owned(),
                    message: e.to_string(),
                });
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no server answered".to_owned(),
        };
        Err(StateError::Unreachable {
            servers: self.url.connect_string(),
            waited: wait,
            message: self.probe(message).await,
        })
    }

    /// What each server says to a plain TCP connection, to explain a failed connect
    /// (`127.0.0.1:2181: Connection refused (os error 111)`); `fallback` when they all accept.
    pub(super) async fn probe(&self, fallback: String) -> String {
        let mut answers = Vec::new();
        for server in self.url.servers() {
            let addr = server.trim_start_matches('[').replace("]:", ":");
            let target = if server.starts_with('[') {
                // tokio wants [v6]:port as is.
                server.clone()
            } else {
                addr
            };
            match tokio::time::timeout(
                Duration::from_secs(1),
                tokio::net::TcpStream::connect(target.as_str()),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => answers.push(format!("{server}: {e}")),
                Err(_) => answers.push(format!("{server}: no answer to a TCP connect")),
            }
        }
        if answers.is_empty() {
            format!("the servers accept connections but no session was made ({fallback})")
        } else {
            answers.join(", ")
        }
    }

    /// A connected client: the current session when connected; a new session when it
    /// expired; a retryable error while it is reconnecting or no server answers.
    pub(super) async fn client(
        &self,
        action: &str,
        hint: &str,
    ) -> Result<(zk::Client, u64), StateError> {
        let usable = |conn: &Conn| -> Result<Option<(zk::Client, u64)>, StateError> {
            let Some(client) = &conn.client else {
                return Ok(None);
            };
            match client.state() {
                zk::SessionState::SyncConnected => Ok(Some((client.clone(), conn.generation))),
                zk::SessionState::Disconnected | zk::SessionState::ConnectedReadOnly => {
                    let since = match *lock(&self.disconnected_since) {
                        Some((g, since)) if g == conn.generation => {
                            format!(" {} ago", format_duration(round_secs(since.elapsed())))
                        }
                        _ => String::new(),
                    };
                    Err(self.unavailable(
                        action,
                        format!(
                            "the connection was lost{since}; the session is still valid and the \
                             client is reconnecting"
                        ),
                        hint,
                    ))
                }
                _ => Ok(None),
            }
        };
        if let Some(found) = usable(&lock(&self.conn))? {
            return Ok(found);
        }
        let Ok(_renewing) =
            tokio::time::timeout(self.options.request_timeout, self.renew.lock()).await
        else {
            return Err(self.unavailable(action, "a new session is still being created", hint));
        };
        if let Some(found) = usable(&lock(&self.conn))? {
            return Ok(found);
        }
        // A short attempt: the caller (often the scheduler loop, with requests waiting behind
        // it) retries, so a server that stays down must not hold it for a whole timeout.
        let wait = self
            .options
            .connect_timeout
            .min(self.options.request_timeout)
            .min(RENEW_WAIT);
        match tokio::time::timeout(wait, self.open_session()).await {
            Ok(Ok(client)) => {
                let (client, generation) = self.install(client);
                tracing::info!(
                    url = %self.location,
                    session = %client.session_id(),
                    "created a new ZooKeeper session after the old one expired"
                );
                Ok((client, generation))
            }
            Ok(Err(e)) => Err(self.unavailable(
                action,
                format!("the ZooKeeper session expired and a new one could not be created: {e}"),
                hint,
            )),
            Err(_) => Err(self.unavailable(
                action,
                format!(
                    "the ZooKeeper session expired and no server answered within {}",
                    format_duration(wait)
                ),
                hint,
            )),
        }
    }

    /// Releases the lock and closes the session (best effort, briefly).
    pub(super) async fn close(&self) {
        let _ = self.release().await;
        let client = lock(&self.conn).client.take();
        if let Some(client) = client {
            let connected = client.state() == zk::SessionState::SyncConnected;
            let mut watcher = client.state_watcher();
            // The session is closed once the last handle is gone.
            drop(client);
            if connected {
                let wait = CLOSE_WAIT.min(self.options.request_timeout);
                let _ = tokio::time::timeout(wait, async {
                    while !watcher.changed().await.is_terminated() {}
                })
                .await;
            }
        }
    }
}

/// Rounds to whole seconds (for "lost 3 s ago").
pub(super) fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
