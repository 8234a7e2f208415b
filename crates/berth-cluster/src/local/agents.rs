//! The agents file: which machines the local cluster pretends to have.
//!
//! Every agent shares this machine, so its "resources" are bookkeeping: the cluster offers
//! them, reserves them and accounts for what tasks use, but it does not enforce cpu or memory
//! limits. Ports are real, though (tasks bind them on this machine's network), which is why
//! port ranges must not overlap across agents.
//!
//! ```yaml
//! agents:
//!   - id: agent-a              # required, unique; also the Mesos agent id
//!     hostname: agent-a        # default: the id; unique
//!     zone: a                  # optional; with region it forms the offer's fault domain
//!     region: local            # default: local
//!     attributes:              # optional; text values become TEXT attributes,
//!       rack: r1               #   numbers become SCALAR attributes
//!       weight: 3
//!     cpus: 4                  # required, > 0
//!     mem: 8192                # MB, required, > 0
//!     disk: 65536              # MB of ROOT disk, required, > 0
//!     gpus: 0                  # default 0
//!     ports: ["10000-10999", {begin: 20000, end: 20099}]
//!     mounts:                  # MOUNT disks, each backed by a directory
//!       - {path: mounts/disk0, size: 4096, profile: fast}   # relative = under the agent's dir
//!     reserved:                # static reservations, carved out of the totals above
//!       - {role: slave_public, cpus: 1, mem: 1024, disk: 1024, ports: ["10900-10999"]}
//! ```
//!
//! Without a file, [`default_agents`] describes three agents `agent-a`, `agent-b` and
//! `agent-c` in zones `a`, `b` and `c` of region `local`, each with 4 cpus, 8192 MB of
//! memory, 65536 MB of disk, the ports 10000–10999, 11000–11999 and 12000–12999
//! respectively, and one 4096 MB MOUNT disk at `mounts/disk0` under the agent's directory.
//!
//! Errors name the file, the line and column, and the field (`agents[1].ports`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::protocol::ClusterError;

/// The name used in errors for the built-in default agents.
pub const DEFAULT_AGENTS_SOURCE: &str = "<default agents>";

/// One agent of the local cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// Agent id (also the Mesos `agent_id`).
    pub id: String,
    /// Hostname put into offers.
    pub hostname: String,
    /// Fault-domain zone, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Fault-domain region.
    pub region: String,
    /// Attributes in file order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AgentAttribute>,
    /// CPUs.
    pub cpus: f64,
    /// Memory in MB.
    pub mem: f64,
    /// ROOT disk in MB.
    pub disk: f64,
    /// GPUs.
    #[serde(default)]
    pub gpus: f64,
    /// Port ranges.
    #[serde(default)]
    pub ports: Vec<PortRange>,
    /// MOUNT disks.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Static reservations.
    #[serde(default)]
    pub reserved: Vec<StaticReservation>,
}

/// An agent attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAttribute {
    /// Name.
    pub name: String,
    /// Value.
    pub value: AttributeValue,
}

/// The value of an agent attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A number (SCALAR attribute).
    Scalar(f64),
    /// A text (TEXT attribute).
    Text(String),
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    /// First port.
    pub begin: u64,
    /// Last port (inclusive).
    pub end: u64,
}

/// A MOUNT disk backed by a directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Directory; a relative path is under the agent's directory
    /// (`<data-dir>/cluster/agents/<id>/`).
    pub path: PathBuf,
    /// Size in MB.
    pub size: f64,
    /// Disk profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// Resources statically reserved for a role (offered with a STATIC `ReservationInfo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaticReservation {
    /// The role.
    pub role: String,
    /// CPUs.
    #[serde(default)]
    pub cpus: f64,
    /// Memory in MB.
    #[serde(default)]
    pub mem: f64,
    /// ROOT disk in MB.
    #[serde(default)]
    pub disk: f64,
    /// Port ranges; they must lie within the agent's `ports`.
    #[serde(default)]
    pub ports: Vec<PortRange>,
}

impl AgentSpec {
    /// The directory of a MOUNT disk, resolved against the agent's directory.
    #[must_use]
    pub fn mount_root(&self, agent_dir: &Path, mount: &MountSpec) -> PathBuf {
        if mount.path.is_absolute() {
            mount.path.clone()
        } else {
            agent_dir.join(&mount.path)
        }
    }
}

/// The documented default: three agents `agent-a`, `agent-b`, `agent-c` in zones `a`, `b`,
/// `c` of region `local`, each 4 cpus, 8192 MB mem, 65536 MB disk, ports
/// 10000–10999 / 11000–11999 / 12000–12999, and one 4096 MB MOUNT disk at `mounts/disk0`.
#[must_use]
pub fn default_agents() -> Vec<AgentSpec> {
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, zone)| AgentSpec {
            id: format!("agent-{zone}"),
            hostname: format!("agent-{zone}"),
            zone: Some((*zone).to_owned()),
            region: "local".to_owned(),
            attributes: Vec::new(),
            cpus: 4.0,
            mem: 8192.0,
            disk: 65536.0,
            gpus: 0.0,
            ports: vec![PortRange {
                begin: 10000 + 1000 * i as u64,
                end: 10999 + 1000 * i as u64,
            }],
            mounts: vec![MountSpec {
                path: PathBuf::from("mounts/disk0"),
                size: 4096.0,
                profile: None,
            }],
            reserved: Vec::new(),
        })
        .collect()
}

/// Reads and validates an agents file.
///
/// # Errors
/// [`ClusterError::AgentsFile`] naming the file, line, column and field.
pub fn load_agents_file(path: &Path) -> Result<Vec<AgentSpec>, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(|e| ClusterError::AgentsFile {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        field: "agents".to_owned(),
        message: format!("cannot read the file: {e}"),
    })?;
    parse_agents(&text, &path.display().to_string())
}

/// Parses and validates the text of an agents file; `source` names it in errors.
///
/// # Errors
/// [`ClusterError::AgentsFile`] naming the source, line, column and field.
pub fn parse_agents(text: &str, source: &str) -> Result<Vec<AgentSpec>, ClusterError> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let plain = e.without_snippet().to_string();
        let message = match plain.rfind(" at line ") {
            Some(i) => plain[..i].to_owned(),
            None => plain,
        };
        ClusterError::AgentsFile {
            file: source.to_owned(),
            line,
            column,
            field: field_at(text, line),
            message,
        }
    })?;
    validate(raw, source)
}

/// The key written on line `line` of `text` (`cpus` for `    cpus: lots`), for errors.
fn field_at(text: &str, line: u64) -> String {
    let Some(l) = line
        .checked_sub(1)
        .and_then(|i| text.lines().nth(usize::try_from(i).ok()?))
    else {
        return "agents".to_owned();
    };
    let t = l.trim_start().trim_start_matches('-').trim_start();
    match t.find(':') {
        Some(i)
            if i > 0
                && t[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            t[..i].to_owned()
        }
        _ => "agents".to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    agents: Vec<Spanned<RawAgent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    id: Spanned<String>,
    #[serde(default)]
    hostname: Option<Spanned<String>>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    attributes: IndexMap<String, RawAttr>,
    cpus: Spanned<f64>,
    mem: Spanned<f64>,
    disk: Spanned<f64>,
    #[serde(default)]
    gpus: Option<Spanned<f64>>,
    #[serde(default)]
    ports: Vec<Spanned<RawPorts>>,
    #[serde(default)]
    mounts: Vec<Spanned<RawMount>>,
    #[serde(default)]
    reserved: Vec<Spanned<RawReserved>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAttr {
    Num(f64),
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    path: String,
    size: f64,
    #[serde(default)]
    profile: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReserved {
    role: String,
    #[serde(default)]
    cpus: f64,
    #[serde(default)]
    mem: f64,
    #[serde(default)]
    disk: f64,
    #[serde(default)]
    ports: Vec<Spanned<RawPorts>>,
}

/// A port range as written: `"10000-10999"`, `"10000"`, `10000` or `{begin, end}`.
struct RawPorts(Result<PortRange, String>);

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPorts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port range: \"begin-end\" text or {begin, end}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPorts, E> {
                Ok(RawPorts(Ok(PortRange { begin: v, end: v })))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPorts, E> {
                Ok(RawPorts(u64::try_from(v).map_or_else(
                    |_| Err(format!("port {v} is negative")),
                    |v| Ok(PortRange { begin: v, end: v }),
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPorts, E> {
                Ok(RawPorts(parse_port_text(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPorts, A::Error> {
                let mut begin = None;
                let mut end = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "begin" => begin = Some(map.next_value::<u64>()?),
                        "end" => end = Some(map.next_value::<u64>()?),
                        other => {
                            return Err(de::Error::unknown_field(other, &["begin", "end"]));
                        }
                    }
                }
                Ok(RawPorts(match (begin, end) {
                    (Some(begin), Some(end)) => Ok(PortRange { begin, end }),
                    _ => Err("a port range map needs both `begin` and `end`".to_owned()),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_port_text(v: &str) -> Result<PortRange, String> {
    let bad = || format!("`{v}` is not a port range; write `begin-end` (e.g. `10000-10999`)");
    let (a, b) = match v.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (v.trim(), v.trim()),
    };
    let begin = a.parse::<u64>().map_err(|_| bad())?;
    let end = b.parse::<u64>().map_err(|_| bad())?;
    Ok(PortRange { begin, end })
}

fn err_at(
    source: &str,
    loc: serde_saphyr::Location,
    field: String,
    message: String,
) -> ClusterError {
    ClusterError::AgentsFile {
        file: source.to_owned(),
        line: loc.line(),
        column: loc.column(),
        field,
        message,
    }
}

fn ports_of(
    source: &str,
    field: &str,
    raw: Vec<Spanned<RawPorts>>,
) -> Result<Vec<(PortRange, serde_saphyr::Location)>, ClusterError> {
    let mut out = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let f = format!("{field}[{i}]");
        let range = p
            .value
            .0
            .map_err(|m| err_at(source, p.referenced, f.clone(), m))?;
        if range.begin == 0 || range.end > 65535 || range.begin > range.end {
            return Err(err_at(
                source,
                p.referenced,
                f,
                format!(
                    "invalid port range {}-{}: ports are 1..=65535 and begin <= end",
                    range.begin, range.end
                ),
            ));
        }
        out.push((range, p.referenced));
    }
    Ok(out)
}

fn overlaps(a: PortRange, b: PortRange) -> bool {
    a.begin <= b.end && b.begin <= a.end
}

fn validate(raw: RawFile, source: &str) -> Result<Vec<AgentSpec>, ClusterError> {
    if raw.agents.is_empty() {
        return Err(ClusterError::AgentsFile {
            file: source.to_owned(),
            line: 1,
            column: 1,
            field: "agents".to_owned(),
            message: "the list of agents is empty; describe at least one agent".to_owned(),
        });
    }
    let mut ids = BTreeMap::new();
    let mut hosts = BTreeMap::new();
    let mut all_ports: Vec<(PortRange, String)> = Vec::new();
    let mut mount_paths: BTreeSet<(String, PathBuf)> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, agent) in raw.agents.into_iter().enumerate() {
        let a = agent.value;
        let at = |field: &str| format!("agents[{i}].{field}");
        let id = a.id.value.clone();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            || id.starts_with('.')
        {
            return Err(err_at(
                source,
                a.id.referenced,
                at("id"),
                format!(
                    "`{id}` is not a valid agent id: use letters, digits, `-`, `_` and `.` \
                     (not starting with `.`)"
                ),
            ));
        }
        if let Some(prev) = ids.insert(id.clone(), i) {
            return Err(err_at(
                source,
                a.id.referenced,
                at("id"),
                format!("duplicate agent id `{id}` (also agents[{prev}].id); ids must be unique"),
            ));
        }
        let (hostname, host_loc) = match a.hostname {
            Some(h) => (h.value, h.referenced),
            None => (id.clone(), a.id.referenced),
        };
        if hostname.is_empty() {
            return Err(err_at(
                source,
                host_loc,
                at("hostname"),
                "the hostname is empty".to_owned(),
            ));
        }
        if let Some(prev) = hosts.insert(hostname.clone(), i) {
            return Err(err_at(
                source,
                host_loc,
                at("hostname"),
                format!(
                    "duplicate hostname `{hostname}` (also agents[{prev}]); hostnames must be \
                     unique"
                ),
            ));
        }
        for (name, v) in [("cpus", &a.cpus), ("mem", &a.mem), ("disk", &a.disk)] {
            if !(v.value.is_finite() && v.value > 0.0) {
                return Err(err_at(
                    source,
                    v.referenced,
                    at(name),
                    format!("{} must be a positive number", v.value),
                ));
            }
        }
        let gpus = match a.gpus {
            Some(g) if !(g.value.is_finite() && g.value >= 0.0) => {
                return Err(err_at(
                    source,
                    g.referenced,
                    at("gpus"),
                    format!("{} must be zero or a positive number", g.value),
                ));
            }
            Some(g) => g.value,
            None => 0.0,
        };
        let ports = ports_of(source, &at("ports"), a.ports)?;
        for (j, (p, loc)) in ports.iter().enumerate() {
            for (q, _) in &ports[..j] {
                if overlaps(*p, *q) {
                    return Err(err_at(
                        source,
                        *loc,
                        at(&format!("ports[{j}]")),
                        format!(
                            "port range {}-{} overlaps {}-{} of the same agent",
                            p.begin, p.end, q.begin, q.end
                        ),
                    ));
                }
            }
            for (q, owner) in &all_ports {
                if overlaps(*p, *q) {
                    return Err(err_at(
                        source,
                        *loc,
                        at(&format!("ports[{j}]")),
                        format!(
                            "port range {}-{} overlaps {}-{} of agent `{owner}`; all agents \
                             share this machine's network, so their port ranges must not \
                             overlap",
                            p.begin, p.end, q.begin, q.end
                        ),
                    ));
                }
            }
        }
        let mut mounts = Vec::new();
        for (j, m) in a.mounts.into_iter().enumerate() {
            let f = at(&format!("mounts[{j}]"));
            let mv = m.value;
            if mv.path.is_empty() {
                return Err(err_at(
                    source,
                    m.referenced,
                    format!("{f}.path"),
                    "empty path".into(),
                ));
            }
            if !(mv.size.is_finite() && mv.size > 0.0) {
                return Err(err_at(
                    source,
                    m.referenced,
                    format!("{f}.size"),
                    format!("{} must be a positive number of MB", mv.size),
                ));
            }
            let path = PathBuf::from(&mv.path);
            let key = if path.is_absolute() {
                (String::new(), path.clone())
            } else {
                (id.clone(), path.clone())
            };
            if !mount_paths.insert(key) {
                return Err(err_at(
                    source,
                    m.referenced,
                    format!("{f}.path"),
                    format!(
                        "mount path `{}` is used twice; mount paths must be unique",
                        mv.path
                    ),
                ));
            }
            mounts.push(MountSpec {
                path,
                size: mv.size,
                profile: mv.profile,
            });
        }
        let mut reserved = Vec::new();
        let (mut rc, mut rm, mut rd) = (0.0, 0.0, 0.0);
        for (j, r) in a.reserved.into_iter().enumerate() {
            let f = at(&format!("reserved[{j}]"));
            let rv = r.value;
            if rv.role.is_empty() || rv.role == "*" {
                return Err(err_at(
                    source,
                    r.referenced,
                    format!("{f}.role"),
                    format!("`{}` is not a role a reservation can be made for", rv.role),
                ));
            }
            for (name, v) in [("cpus", rv.cpus), ("mem", rv.mem), ("disk", rv.disk)] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err_at(
                        source,
                        r.referenced,
                        format!("{f}.{name}"),
                        format!("{v} must be zero or a positive number"),
                    ));
                }
            }
            rc += rv.cpus;
            rm += rv.mem;
            rd += rv.disk;
            let rports = ports_of(source, &format!("{f}.ports"), rv.ports)?;
            for (k, (p, loc)) in rports.iter().enumerate() {
                if !ports
                    .iter()
                    .any(|(q, _)| q.begin <= p.begin && p.end <= q.end)
                {
                    return Err(err_at(
                        source,
                        *loc,
                        format!("{f}.ports[{k}]"),
                        format!(
                            "reserved ports {}-{} must lie within one of the agent's port ranges",
                            p.begin, p.end
                        ),
                    ));
                }
            }
            reserved.push(StaticReservation {
                role: rv.role,
                cpus: rv.cpus,
                mem: rv.mem,
                disk: rv.disk,
                ports: rports.into_iter().map(|(p, _)| p).collect(),
            });
        }
        for (name, total, sum) in [
            ("cpus", a.cpus.value, rc),
            ("mem", a.mem.value, rm),
            ("disk", a.disk.value, rd),
        ] {
            if sum > total + 1e-9 {
                return Err(err_at(
                    source,
                    agent.referenced,
                    at("reserved"),
                    format!("static reservations take {sum} {name} but the agent has {total}"),
                ));
            }
        }
        for (p, _) in &ports {
            all_ports.push((*p, id.clone()));
        }
        out.push(AgentSpec {
            id,
            hostname,
            zone: a.zone,
            region: a.region.unwrap_or_else(|| "local".to_owned()),
            attributes: a
                .attributes
                .into_iter()
                .map(|(name, v)| AgentAttribute {
                    name,
                    value: match v {
                        RawAttr::Num(n) => AttributeValue::Scalar(n),
                        RawAttr::Bool(b) => AttributeValue::Text(b.to_string()),
                        RawAttr::Text(t) => AttributeValue::Text(t),
                    },
                })
                .collect(),
            cpus: a.cpus.value,
            mem: a.mem.value,
            disk: a.disk.value,
            gpus,
            ports: ports.into_iter().map(|(p, _)| p).collect(),
            mounts,
            reserved,
        });
    }
    Ok(out)
}

/// Checks a list of agents built in code (as [`parse_agents`] checks a file).
///
/// # Errors
/// [`ClusterError::AgentsFile`] with source `<config>` and no line.
pub fn validate_specs(agents: &[AgentSpec]) -> Result<(), ClusterError> {
    let fail = |i: usize, field: &str, message: String| ClusterError::AgentsFile {
        file: "<config>".to_owned(),
        line: 0,
        column: 0,
        field: format!("agents[{i}].{field}"),
        message,
    };
    if agents.is_empty() {
        return Err(fail(0, "id", "no agents configured".to_owned()));
    }
    let mut ids = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let mut ports: Vec<(PortRange, &str)> = Vec::new();
    for (i, a) in agents.iter().enumerate() {
        if a.id.is_empty() || a.id.contains('/') || a.id.starts_with('.') {
            return Err(fail(i, "id", format!("`{}` is not a valid agent id", a.id)));
        }
        if !ids.insert(a.id.as_str()) {
            return Err(fail(i, "id", format!("duplicate agent id `{}`", a.id)));
        }
        if !hosts.insert(a.hostname.as_str()) {
            return Err(fail(
                i,
                "hostname",
                format!("duplicate hostname `{}`", a.hostname),
            ));
        }
        for (name, v) in [("cpus", a.cpus), ("mem", a.mem), ("disk", a.disk)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(fail(i, name, format!("{v} must be a positive number")));
            }
        }
        for p in &a.ports {
            if let Some((q, owner)) = ports.iter().find(|(q, _)| overlaps(*p, *q)) {
                return Err(fail(
                    i,
                    "ports",
                    format!(
                        "port range {}-{} overlaps {}-{} of agent `{owner}`",
                        p.begin, p.end, q.begin, q.end
                    ),
                ));
            }
        }
        for p in &a.ports {
            ports.push((*p, a.id.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_agents(text, "agents.yml").unwrap_err().to_string()
    }

    #[test]
    fn parses_full_example() {
        let text = r#"
agents:
  - id: agent-a
    zone: a
    attributes: {rack: r1, weight: 3, ssd: true}
    cpus: 4
    mem: 8192
    disk: 65536
    ports: ["10000-10999", {begin: 20000, end: 20099}, 30000]
    mounts:
      - {path: mounts/disk0, size: 4096, profile: fast}
    reserved:
      - {role: slave_public, cpus: 1, mem: 1024, ports: ["10900-10999"]}
  - id: agent-b
    hostname: host-b
    region: east
    cpus: 2
    mem: 1024
    disk: 1024
    ports: ["11000-11999"]
"#;
        let agents = parse_agents(text, "agents.yml").unwrap();
        assert_eq!(agents.len(), 2);
        let a = &agents[0];
        assert_eq!(a.hostname, "agent-a");
        assert_eq!(a.region, "local");
        assert_eq!(a.zone.as_deref(), Some("a"));
        assert_eq!(a.ports.len(), 3);
        assert_eq!(
            a.ports[2],
            PortRange {
                begin: 30000,
                end: 30000
            }
        );
        assert_eq!(a.attributes[1].value, AttributeValue::Scalar(3.0));
        assert_eq!(a.attributes[2].value, AttributeValue::Text("true".into()));
        assert_eq!(a.mounts[0].profile.as_deref(), Some("fast"));
        assert_eq!(a.reserved[0].role, "slave_public");
        assert_eq!(agents[1].hostname, "host-b");
        assert_eq!(agents[1].region, "east");
    }

    #[test]
    fn default_agents_are_valid() {
        let d = default_agents();
        validate_specs(&d).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[2].ports[0],
            PortRange {
                begin: 12000,
                end: 12999
            }
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let e = err("agents:\n  - id: a\n    cpus: lots\n    mem: 1\n    disk: 1\n");
        assert!(e.starts_with("agents.yml:3:11: cpus: "), "{e}");
        let e = err("agents:\n  - id: a\n    cpu: 4\n");
        assert!(
            e.contains("agents.yml:3:5: cpu: unknown field `cpu`"),
            "{e}"
        );
        let e = err("agents: [\n");
        assert!(e.starts_with("agents.yml:1:"), "{e}");
    }

    #[test]
    fn rejects_bad_values() {
        let base = |extra: &str| {
            format!(
                "agents:\n  - id: a\n    cpus: 1\n    mem: 1\n    disk: 1\n    ports: \
                 [\"100-200\"]\n{extra}"
            )
        };
        let e = err(&base("  - id: a\n    cpus: 1\n    mem: 1\n    disk: 1\n"));
        assert!(e.contains("agents[1].id: duplicate agent id `a`"), "{e}");
        assert!(e.starts_with("agents.yml:7:"), "{e}");
        let e = err(&base(
            "  - id: b\n    cpus: 1\n    mem: 1\n    disk: 1\n    ports: [\"150-160\"]\n",
        ));
        assert!(
            e.contains("agents[1].ports[0]: port range 150-160 overlaps 100-200"),
            "{e}"
        );
        let e = err(&base(
            "  - id: b\n    hostname: a\n    cpus: 1\n    mem: 1\n    disk: 1\n",
        ));
        assert!(e.contains("duplicate hostname `a`"), "{e}");
        let e = err(&base("  - id: b\n    cpus: 0\n    mem: 1\n    disk: 1\n"));
        assert!(
            e.contains("agents[1].cpus: 0 must be a positive number"),
            "{e}"
        );
        let e = err(&base(
            "  - id: b\n    cpus: 1\n    mem: 1\n    disk: 1\n    ports: [\"x\"]\n",
        ));
        assert!(e.contains("`x` is not a port range"), "{e}");
        let e = err(&base(
            "  - id: b\n    cpus: 1\n    mem: 1\n    disk: 1\n    mounts: [{path: m, size: 1}, \
             {path: m, size: 2}]\n",
        ));
        assert!(
            e.contains("agents[1].mounts[1].path: mount path `m` is used twice"),
            "{e}"
        );
        let e = err(&base(
            "  - id: b\n    cpus: 1\n    mem: 1\n    disk: 1\n    reserved: [{role: r, cpus: 2}]\n",
        ));
        assert!(e.contains("static reservations take 2 cpus"), "{e}");
    }
}
