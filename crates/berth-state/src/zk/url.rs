//! [`ZkUrl`]: `zk://host:port[,host:port…][/chroot]`.

use std::fmt;

use crate::StateError;
use crate::path::check_segment;

/// A parsed ZooKeeper URL: the servers of the ensemble and an optional chroot.
///
/// Accepted form: `zk://host:port[,host:port…][/chroot]`, for example
/// `zk://127.0.0.1:2181`, `zk://zk-1:2181,zk-2:2181,zk-3:2181/berth` or `zk://[::1]:2181`.
/// Every server needs a host (a name, an IPv4 address or a bracketed IPv6 address) and a port
/// from 1 to 65535; the chroot is an absolute node path without empty segments or a trailing
/// `/`. [`Display`](fmt::Display) gives the URL back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    servers: Vec<String>,
    chroot: Option<String>,
}

impl ZkUrl {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`StateError::InvalidZkUrl`] quoting the URL, saying what is wrong and showing the
    /// accepted form.
    pub fn parse(url: &str) -> Result<Self, StateError> {
        let invalid = |reason: String| StateError::InvalidZkUrl {
            url: url.to_owned(),
            reason,
        };
        let Some(rest) = url.strip_prefix("zk://") else {
            let reason = match url.split_once("://") {
                Some((scheme, _)) => format!("the scheme must be 'zk', not '{scheme}'"),
                None => "it must start with 'zk://'".to_owned(),
            };
            return Err(invalid(reason));
        };
        let (servers_text, chroot) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        if servers_text.is_empty() {
            return Err(invalid("no server is given".to_owned()));
        }
        let mut servers = Vec::new();
        for (i, server) in servers_text.split(',').enumerate() {
            servers.push(parse_server(server).map_err(|reason| {
                invalid(if server.is_empty() {
                    format!("server {} is empty (',,' or a ',' at an end)", i + 1)
                } else {
                    format!("server '{server}': {reason}")
                })
            })?);
        }
        let chroot = match chroot {
            None => None,
            Some("/") => {
                return Err(invalid(
                    "the chroot '/' ends with '/'; leave it out for the root".to_owned(),
                ));
            }
            Some(path) => {
                if path.ends_with('/') {
                    return Err(invalid(format!("the chroot '{path}' ends with '/'")));
                }
                for segment in path[1..].split('/') {
                    check_segment(segment)
                        .map_err(|reason| invalid(format!("the chroot '{path}': {reason}")))?;
                }
                if path == "/zookeeper" || path.starts_with("/zookeeper/") {
                    return Err(invalid(format!(
                        "the chroot '{path}' is inside /zookeeper, which ZooKeeper reserves"
                    )));
                }
                Some(path.to_owned())
            }
        };
        Ok(Self { servers, chroot })
    }

    /// The servers, each `host:port`.
    #[must_use]
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The chroot (`/berth`), if any.
    #[must_use]
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }

    /// The servers as a ZooKeeper connect string, without the chroot: `host:port,host:port`.
    #[must_use]
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }
}

impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "zk://{}{}",
            self.servers.join(","),
            self.chroot.as_deref().unwrap_or("")
        )
    }
}

impl std::str::FromStr for ZkUrl {
    type Err = StateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Checks one `host:port`; returns it as given, or what is wrong.
fn parse_server(server: &str) -> Result<String, String> {
    if server.is_empty() {
        return Err("empty".to_owned());
    }
    let port = if let Some(rest) = server.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return Err("an IPv6 address needs a closing ']'".to_owned());
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("'[{v6}]' is not an IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(port) => port,
            None => return Err("the port is missing (host:port)".to_owned()),
        }
    } else {
        match server.rsplit_once(':') {
            Some((host, port)) => {
                if host.is_empty() {
                    return Err("the host is missing (host:port)".to_owned());
                }
                if let Some(c) = host
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
                {
                    return Err(format!(
                        "the host '{host}' contains '{c}' (allowed: letters, digits, '.', '-', '_', \
                         or an IPv6 address in brackets)"
                    ));
                }
                port
            }
            None => return Err("the port is missing (host:port)".to_owned()),
        }
    };
    if port.is_empty() {
        return Err("the port is missing (host:port)".to_owned());
    }
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("the port '{port}' is not a number"));
    }
    match port.parse::<u32>() {
        Ok(n) if (1..=65_535).contains(&n) => Ok(server.to_owned()),
        _ => Err(format!("the port {port} is out of range (1 to 65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match ZkUrl::parse(url) {
            Err(StateError::InvalidZkUrl {
                url: quoted,
                reason,
            }) => {
                assert_eq!(quoted, url);
                reason
            }
            other => panic!("{url}: expected InvalidZkUrl, got {other:?}"),
        }
    }

    #[test]
    fn good_urls_round_trip() {
        for url in [
            "zk://127.0.0.1:2181",
            "zk://zk-1:2181,zk-2:2182,zk-3.example.com:2183/berth",
            "zk://localhost:1/a/b-c/d.e",
            "zk://[::1]:2181/x",
            "zk://h:65535",
        ] {
            let parsed = match ZkUrl::parse(url) {
                Ok(p) => p,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(parsed.to_string(), url);
        }
        let parsed = ZkUrl::parse("zk://a:1,b:2/root").ok();
        assert_eq!(
            parsed.as_ref().map(ZkUrl::servers),
            Some(&["a:1".to_owned(), "b:2".to_owned()][..])
        );
        assert_eq!(parsed.as_ref().and_then(ZkUrl::chroot), Some("/root"));
        assert_eq!(
            parsed.map(|p| p.connect_string()).as_deref(),
            Some("a:1,b:2")
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(reason("http://a:1"), "the scheme must be 'zk', not 'http'");
        assert_eq!(reason("a:1"), "it must start with 'zk://'");
        assert_eq!(reason("zk://"), "no server is given");
        assert_eq!(reason("zk:///chroot"), "no server is given");
        assert_eq!(
            reason("zk://:2181"),
            "server ':2181': the host is missing (host:port)"
        );
        assert_eq!(
            reason("zk://host"),
            "server 'host': the port is missing (host:port)"
        );
        assert_eq!(
            reason("zk://host:"),
            "server 'host:': the port is missing (host:port)"
        );
        assert_eq!(
            reason("zk://host:abc"),
            "server 'host:abc': the port 'abc' is not a number"
        );
        assert_eq!(
            reason("zk://host:0"),
            "server 'host:0': the port 0 is out of range (1 to 65535)"
        );
        assert_eq!(
            reason("zk://host:65536"),
            "server 'host:65536': the port 65536 is out of range (1 to 65535)"
        );
        assert_eq!(
            reason("zk://a:1,,b:2"),
            "server 2 is empty (',,' or a ',' at an end)"
        );
        assert_eq!(
            reason("zk://a:1,"),
            "server 2 is empty (',,' or a ',' at an end)"
        );
        assert_eq!(
            reason("zk://a:1/"),
            "the chroot '/' ends with '/'; leave it out for the root"
        );
        assert_eq!(
            reason("zk://a:1/berth/"),
            "the chroot '/berth/' ends with '/'"
        );
        assert_eq!(
            reason("zk://a:1/a//b"),
            "the chroot '/a//b': empty segments ('//' or a trailing '/') are not allowed"
        );
        assert_eq!(
            reason("zk://a b:1"),
            "server 'a b:1': the host 'a b' contains ' ' (allowed: letters, digits, '.', '-', \
             '_', or an IPv6 address in brackets)"
        );
        assert_eq!(
            reason("zk://a:1/zookeeper"),
            "the chroot '/zookeeper' is inside /zookeeper, which ZooKeeper reserves"
        );
        assert_eq!(
            reason("zk://[::1:2181"),
            "server '[::1:2181': an IPv6 address needs a closing ']'"
        );
    }

    #[test]
    fn the_message_shows_the_accepted_form() {
        let message = match ZkUrl::parse("zk://host") {
            Err(e) => e.to_string(),
            Ok(u) => panic!("parsed {u}"),
        };
        assert_eq!(
            message,
            "invalid ZooKeeper URL 'zk://host': server 'host': the port is missing (host:port); \
             expected zk://host:port[,host:port…][/chroot], e.g. zk://127.0.0.1:2181 or \
             zk://zk-1:2181,zk-2:2181/berth"
        );
    }
}
