//! The resources of a task or of a named resource set: `cpus`, `memory`, `gpus`, `ports` (with
//! VIPs and ranges) and `resource-limits` (volumes are read in `volumes`).

use super::Converter;
use super::fields::{Fields, join};
use super::rules::PortSeen;
use super::values::U32_MAX;
use crate::model::{
    LimitValue, PortRange, PortSpec, ResourceLimits, ResourceSet, ResourceSpec, ScalarSpec,
    VipSpec, Visibility,
};
use crate::yaml::Node;

/// Keys of a resource set, and the task keys that declare resources inline (which may not be
/// combined with `resource-set`).
pub(super) const RESOURCE_KEYS: &[&str] = &[
    "cpus",
    "gpus",
    "memory",
    "ports",
    "volume",
    "volumes",
    "resource-limits",
];
/// Keys of a port.
const PORT_KEYS: &[&str] = &["port", "env-key", "advertise", "vip", "ranges"];
/// Keys of a port's `vip`.
const VIP_KEYS: &[&str] = &["port", "prefix"];
/// Keys of one of a port's `ranges`.
const RANGE_KEYS: &[&str] = &["begin", "end"];
/// Keys of `resource-limits`.
const LIMIT_KEYS: &[&str] = &["cpus", "memory"];

/// The largest port number.
pub(super) const MAX_PORT: i64 = 65_535;

/// Roles stamped on every resource of a pod.
pub(super) struct Roles {
    /// The service role.
    pub(super) role: String,
    /// The pod's `pre-reserved-role` (`*` when none).
    pub(super) pre_reserved_role: String,
    /// The service principal.
    pub(super) principal: String,
}

impl Converter<'_> {
    /// The resource set `id` declared by the fields `f` (a task's or a resource set's); `None`
    /// when cpus, memory or gpus is invalid.
    pub(super) fn resources(
        &mut self,
        f: &Fields<'_>,
        id: String,
        roles: &Roles,
        pod_type: &str,
    ) -> Option<ResourceSet> {
        let cpus = self.read_opt(f, "cpus", |c, n, p| {
            c.number(n, p, true, "a number of CPUs > 0")
        });
        let memory = self.read_opt(f, "memory", |c, n, p| {
            c.integer(n, p, 1, U32_MAX, "an integer number of MB ≥ 1")
        });
        let gpus = self.read_opt(f, "gpus", |c, n, p| {
            c.number(n, p, false, "a number of GPUs ≥ 0")
        });
        let ok = !matches!(cpus, Some(None))
            && !matches!(memory, Some(None))
            && !matches!(gpus, Some(None));
        let (cpus, memory, gpus) = (cpus.flatten(), memory.flatten(), gpus.flatten());
        let scalar = |name: &str, value: f64| {
            ResourceSpec::Scalar(ScalarSpec {
                name: name.to_owned(),
                value,
                role: roles.role.clone(),
                pre_reserved_role: roles.pre_reserved_role.clone(),
                principal: roles.principal.clone(),
            })
        };
        let mut specs = Vec::new();
        if let Some(c) = cpus {
            specs.push(scalar("cpus", c));
        }
        let memory = memory.and_then(|m| u32::try_from(m).ok()).map(f64::from);
        if let Some(m) = memory {
            specs.push(scalar("mem", m));
        }
        if let Some(g) = gpus.filter(|g| *g > 0.0) {
            specs.push(scalar("gpus", g));
        }
        for port in self.ports(f, roles, pod_type, &id) {
            specs.push(ResourceSpec::Port(port));
        }
        let volumes = self.volumes(f, roles);
        let resource_limits = self.resource_limits(f, cpus.unwrap_or(0.0), memory.unwrap_or(0.0));
        if !ok {
            return None;
        }
        Some(ResourceSet {
            id,
            resource_specifications: specs,
            volume_specifications: volumes,
            resource_limits,
        })
    }

    /// `resource-limits`: each at least the requested amount, or unlimited.
    fn resource_limits(
        &mut self,
        f: &Fields<'_>,
        cpus: f64,
        memory: f64,
    ) -> Option<ResourceLimits> {
        let lf = self.sub_fields(f, "resource-limits", LIMIT_KEYS)?;
        let cpus = self
            .read_opt(&lf, "cpus", |c, n, p| c.limit(n, p, cpus, "CPUs"))
            .flatten();
        let memory = self
            .read_opt(&lf, "memory", |c, n, p| {
                c.limit(n, p, memory, "MB of memory")
            })
            .flatten();
        Some(ResourceLimits { cpus, memory })
    }

    /// One limit: a number ≥ `request`, or `unlimited`.
    fn limit(&mut self, node: &Node, path: &str, request: f64, unit: &str) -> Option<LimitValue> {
        let text = self.string(node, path)?;
        if text.trim().eq_ignore_ascii_case("unlimited") {
            return Some(LimitValue::Unlimited);
        }
        let expect = format!(
            "a number ≥ the requested {} {unit}, or \"unlimited\"",
            fmt_num(request)
        );
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= request => Some(LimitValue::Amount(v)),
            Ok(v) if v.is_finite() => self.reject(
                node.line,
                path,
                &text,
                format!(
                    "is below the requested {} {unit}; expected {expect}",
                    fmt_num(request)
                ),
            ),
            _ => self.reject(
                node.line,
                path,
                &text,
                format!("is not a limit; expected {expect}"),
            ),
        }
    }

    /// `ports`, by name; fixed port numbers are unique within the set. Every port is also
    /// recorded for the service-wide rules.
    fn ports(
        &mut self,
        f: &Fields<'_>,
        roles: &Roles,
        pod_type: &str,
        set_id: &str,
    ) -> Vec<PortSpec> {
        let mut out: Vec<PortSpec> = Vec::new();
        let Some((path, entries)) = self.sub_entries(f, "ports") else {
            return out;
        };
        for (name, k, v) in entries {
            let ppath = join(&path, name);
            let Some(pf) = self.fields(v, &ppath, k.line, PORT_KEYS, true) else {
                continue;
            };
            let expect = "a port from 1 to 65535, or 0 for a dynamic port";
            let port = self
                .req_int(&pf, "port", 0, MAX_PORT, expect)
                .and_then(|n| u32::try_from(n).ok());
            let env_key = self
                .opt_string(&pf, "env-key")
                .filter(|s| !s.trim().is_empty());
            let advertise = self.opt_bool(&pf, "advertise", false);
            let vip = self.vip(&pf, name);
            let ranges = self.ranges(&pf);
            let Some(port) = port else {
                continue;
            };
            if port != 0
                && let Some(other) = out.iter().find(|o| o.port == port)
            {
                self.err_at(
                    &pf,
                    "port",
                    Some(&port.to_string()),
                    format!(
                        "is already used by port {} of the same task; fixed port numbers must \
                             be unique within a task",
                        other.port_name
                    ),
                );
                continue;
            }
            self.ports.push(PortSeen {
                pod: pod_type.to_owned(),
                set: set_id.to_owned(),
                name: name.to_owned(),
                advertise,
                vip_prefix: vip.as_ref().map(|v| v.prefix.clone()),
                line: k.line,
                path: ppath,
            });
            out.push(PortSpec {
                port_name: name.to_owned(),
                port,
                env_key,
                visibility: if advertise {
                    Visibility::External
                } else {
                    Visibility::Cluster
                },
                ranges,
                vip,
                role: roles.role.clone(),
                pre_reserved_role: roles.pre_reserved_role.clone(),
                principal: roles.principal.clone(),
            });
        }
        out
    }

    /// A port's `vip` (the prefix defaults to the port's name).
    fn vip(&mut self, pf: &Fields<'_>, port_name: &str) -> Option<VipSpec> {
        let vf = self.sub_fields(pf, "vip", VIP_KEYS)?;
        let port = self
            .req_int(&vf, "port", 1, MAX_PORT, "a port from 1 to 65535")
            .and_then(|n| u32::try_from(n).ok())?;
        let prefix = self
            .opt_string(&vf, "prefix")
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| port_name.to_owned());
        Some(VipSpec { prefix, port })
    }

    /// A port's `ranges`: `{begin, end}`, either end open.
    fn ranges(&mut self, pf: &Fields<'_>) -> Vec<PortRange> {
        let mut out = Vec::new();
        let Some((path, items)) = self.sub_seq(pf, "ranges", "a list of {begin, end} ranges")
        else {
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            let rpath = format!("{path}[{i}]");
            let Some(rf) = self.fields(item, &rpath, item.line, RANGE_KEYS, true) else {
                continue;
            };
            let expect = "a port from 0 to 65535 (or nothing for an open end)";
            let begin = self.read_opt(&rf, "begin", |c, n, p| c.integer(n, p, 0, MAX_PORT, expect));
            let end = self.read_opt(&rf, "end", |c, n, p| c.integer(n, p, 0, MAX_PORT, expect));
            if matches!(begin, Some(None)) || matches!(end, Some(None)) {
                continue;
            }
            let begin = begin.flatten().and_then(|n| u32::try_from(n).ok());
            let end = end.flatten().and_then(|n| u32::try_from(n).ok());
            if let (Some(b), Some(e)) = (begin, end)
                && b > e
            {
                self.err(
                    item.line,
                    &rpath,
                    Some(&format!("{b}-{e}")),
                    "begins after it ends; expected begin ≤ end",
                );
                continue;
            }
            out.push(PortRange { begin, end });
        }
        out
    }
}

/// A requested amount as written in limit errors.
fn fmt_num(v: f64) -> String {
    v.to_string()
}
