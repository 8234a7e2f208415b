//! Where the masters are (`--master`) and which one leads.
//!
//! - `http://HOST:PORT[,HOST:PORT…]` (or `https://`): the masters are tried in turn; a master
//!   that is not the leader answers 307 with the leader's address, which is followed.
//! - `zk://HOST:PORT[,HOST:PORT…]/PATH`: the masters' ZooKeeper group. Each master holds an
//!   ephemeral sequential node `PATH/json.info_<seq>` whose data is its `MasterInfo` as JSON;
//!   the leader is the one with the smallest sequence number.

use std::time::Duration;

use berth_mesos::scheduler::MasterInfo;

/// Where to find the masters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masters {
    /// Masters named directly: `scheme://host:port` of each, in order.
    Urls(Vec<String>),
    /// The masters' ZooKeeper group.
    ZooKeeper {
        /// `host:port,host:port`.
        hosts: String,
        /// The group's path, e.g. `/mesos`.
        path: String,
    },
}

/// Why a `--master` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--master {given:?}: {part}: {message}")]
pub struct MasterUrlError {
    /// The whole value given.
    pub given: String,
    /// The part that is wrong.
    pub part: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

fn host_port(given: &str, part: &str, default_port: Option<u16>) -> Result<String, MasterUrlError> {
    let err = |message: String| MasterUrlError {
        given: given.to_owned(),
        part: part.to_owned(),
        message,
    };
    if part.is_empty() {
        return Err(err("an empty host; expected HOST:PORT".to_owned()));
    }
    let (host, port) = match part.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (part, None),
    };
    if host.is_empty() {
        return Err(err("no host before the port".to_owned()));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')))
    {
        return Err(err(format!(
            "{bad:?} is not allowed in a host name (letters, digits, '.', '-', '_')"
        )));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| err(format!("port {p:?} is not a number between 1 and 65535")))?,
        None => default_port.ok_or_else(|| err("a port is needed (HOST:PORT)".to_owned()))?,
    };
    Ok(format!("{host}:{port}"))
}

impl Masters {
    /// Reads a `--master` value.
    ///
    /// # Errors
    /// A message naming the part that is wrong.
    pub fn parse(given: &str) -> Result<Self, MasterUrlError> {
        let err = |part: &str, message: &str| MasterUrlError {
            given: given.to_owned(),
            part: part.to_owned(),
            message: message.to_owned(),
        };
        let trimmed = given.trim();
        if let Some(rest) = trimmed.strip_prefix("zk://") {
            let (hosts, path) = rest.split_once('/').ok_or_else(|| {
                err(
                    rest,
                    "a ZooKeeper URL needs the masters' group path, e.g. zk://HOST:2181/mesos",
                )
            })?;
            let hosts = hosts
                .split(',')
                .map(|h| host_port(given, h, Some(2181)))
                .collect::<Result<Vec<_>, _>>()?
                .join(",");
            let path = format!("/{}", path.trim_end_matches('/'));
            if path == "/" || path.split('/').skip(1).any(str::is_empty) {
                return Err(err(
                    &path,
                    "the group path must be like /mesos (no empty parts)",
                ));
            }
            return Ok(Masters::ZooKeeper { hosts, path });
        }
        let mut urls = Vec::new();
        let mut scheme = "http";
        for (i, item) in trimmed.split(',').enumerate() {
            let item = item.trim();
            let rest = if let Some(r) = item.strip_prefix("http://") {
                scheme = "http";
                r
            } else if let Some(r) = item.strip_prefix("https://") {
                scheme = "https";
                r
            } else if item.contains("://") {
                return Err(err(
                    item,
                    "unknown scheme; use http://HOST:PORT, https://HOST:PORT or zk://HOST:PORT/PATH",
                ));
            } else if i == 0 {
                return Err(err(
                    item,
                    "a scheme is needed: http://HOST:PORT, https://HOST:PORT or zk://HOST:PORT/PATH",
                ));
            } else {
                item
            };
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                return Err(err(
                    item,
                    "a path is not allowed; give only the master's address (HOST:PORT)",
                ));
            }
            let default_port = if scheme == "https" { 443 } else { 5050 };
            urls.push(format!(
                "{scheme}://{}",
                host_port(given, rest, Some(default_port))?
            ));
        }
        Ok(Masters::Urls(urls))
    }
}

/// Finds the leading master in ZooKeeper: `http://host:port`.
///
/// # Errors
/// ZooKeeper unreachable, no master registered, or a registration berth cannot read.
pub async fn zk_leader(hosts: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let client = tokio::time::timeout(
        timeout,
        zookeeper_client::Client::connector()
            .with_session_timeout(timeout.max(Duration::from_secs(6)))
            .connect(hosts),
    )
    .await
    .map_err(|_| format!("ZooKeeper at {hosts} did not answer within {timeout:?}"))?
    .map_err(|e| format!("ZooKeeper at {hosts}: {e}"))?;
    let children = client
        .list_children(path)
        .await
        .map_err(|e| format!("ZooKeeper {hosts}{path}: {e}"))?;
    let leader = children
        .iter()
        .filter_map(|c| {
            let seq = c.strip_prefix("json.info_")?;
            seq.parse::<u64>().ok().map(|n| (n, c))
        })
        .min()
        .ok_or_else(|| format!("no master is registered under {path} in ZooKeeper at {hosts}"))?
        .1;
    let (data, _) = client
        .get_data(&format!("{path}/{leader}"))
        .await
        .map_err(|e| format!("ZooKeeper {hosts}{path}/{leader}: {e}"))?;
    let info: MasterInfo = serde_json::from_slice(&data)
        .map_err(|e| format!("{path}/{leader} does not hold a MasterInfo: {e}"))?;
    Ok(format!("http://{}", info.endpoint()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_values() {
        assert_eq!(
            Masters::parse("http://m1:5050,m2:5051").unwrap(),
            Masters::Urls(vec!["http://m1:5050".into(), "http://m2:5051".into()])
        );
        assert_eq!(
            Masters::parse("http://10.0.0.1").unwrap(),
            Masters::Urls(vec!["http://10.0.0.1:5050".into()])
        );
        assert_eq!(
            Masters::parse("zk://z1:2181,z2/mesos").unwrap(),
            Masters::ZooKeeper {
                hosts: "z1:2181,z2:2181".into(),
                path: "/mesos".into()
            }
        );
        for (bad, part) in [
            ("m1:5050", "m1:5050"),
            ("ftp://m1", "ftp://m1"),
            ("http://m1:99999", "m1:99999"),
            ("http://m1:5050/api", "http://m1:5050/api"),
            ("zk://z1:2181", "z1:2181"),
            ("zk://z1:x/mesos", "z1:x"),
            ("http://m 1:5050", "m 1:5050"),
            ("http://", ""),
        ] {
            let e = Masters::parse(bad).unwrap_err();
            assert_eq!(e.part, part, "{bad}: {e}");
        }
    }
}
