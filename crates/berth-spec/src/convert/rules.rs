//! Service-wide rules, checked once every pod is read: advertised port names are unique, a VIP
//! prefix is not another port's name, a discovery prefix belongs to one pod type.

use std::collections::HashMap;

use super::Converter;

/// A port seen while converting, for the service-wide checks.
pub(super) struct PortSeen {
    /// The pod type.
    pub(super) pod: String,
    /// The id of the resource set holding the port.
    pub(super) set: String,
    /// The port's name.
    pub(super) name: String,
    /// Whether the port is advertised.
    pub(super) advertise: bool,
    /// The prefix of the port's VIP, if any.
    pub(super) vip_prefix: Option<String>,
    /// The line of the port's key.
    pub(super) line: usize,
    /// The port's path.
    pub(super) path: String,
}

/// A discovery prefix seen while converting, for the service-wide checks.
pub(super) struct PrefixSeen {
    /// The pod type of the task.
    pub(super) pod: String,
    /// The prefix.
    pub(super) prefix: String,
    /// The line of the `prefix` key.
    pub(super) line: usize,
    /// The path of the `prefix` key.
    pub(super) path: String,
}

/// A problem found by a rule: line, path, message.
type Problem = (usize, String, String);

impl Converter<'_> {
    /// Reports the problems of every rule, in the order of the rules.
    pub(super) fn service_wide_checks(&mut self) {
        let mut problems = self.advertised_port_names();
        problems.extend(self.vip_prefixes());
        problems.extend(self.discovery_prefixes());
        for (line, path, message) in problems {
            self.err(line, &path, None, message);
        }
    }

    /// Advertised port names must be unique across the service.
    fn advertised_port_names(&self) -> Vec<Problem> {
        let mut advertised: HashMap<&str, (&str, &str)> = HashMap::new();
        let mut problems = Vec::new();
        for p in self.ports.iter().filter(|p| p.advertise) {
            match advertised.get(p.name.as_str()) {
                Some((pod, set)) if *pod != p.pod || *set != p.set => problems.push((
                    p.line,
                    p.path.clone(),
                    format!(
                        "is advertised, and so is the port of the same name in pod {pod}; \
                         advertised port names must be unique across the service"
                    ),
                )),
                Some(_) => {}
                None => {
                    advertised.insert(&p.name, (&p.pod, &p.set));
                }
            }
        }
        problems
    }

    /// A VIP prefix may not be the name of another port.
    fn vip_prefixes(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for p in &self.ports {
            let Some(prefix) = &p.vip_prefix else {
                continue;
            };
            if let Some(other) = self.ports.iter().find(|o| {
                &o.name == prefix && !(o.pod == p.pod && o.set == p.set && o.name == p.name)
            }) {
                problems.push((
                    p.line,
                    format!("{}.vip.prefix", p.path),
                    format!(
                        "\"{prefix}\" is also the name of port {} ({}); a VIP prefix may not be \
                         another port's name",
                        other.name, other.path
                    ),
                ));
            }
        }
        problems
    }

    /// A discovery prefix may not be shared across pod types.
    fn discovery_prefixes(&self) -> Vec<Problem> {
        let mut prefixes: HashMap<&str, &str> = HashMap::new();
        let mut problems = Vec::new();
        for seen in &self.discovery {
            match prefixes.get(seen.prefix.as_str()) {
                Some(other) if *other != seen.pod => problems.push((
                    seen.line,
                    seen.path.clone(),
                    format!(
                        "\"{}\" is also the discovery prefix of pod {other}; a prefix may not be \
                         shared across pod types",
                        seen.prefix
                    ),
                )),
                Some(_) => {}
                None => {
                    prefixes.insert(&seen.prefix, &seen.pod);
                }
            }
        }
        problems
    }
}
