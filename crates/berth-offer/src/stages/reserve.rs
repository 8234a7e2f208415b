//! Stages making new reservations: scalars, ports, volumes, and whole new resource sets.

use std::borrow::Cow;

use berth_spec::{PortSpec, ResourceSpec, ScalarSpec, VolumeSpec, VolumeType};

use super::{Claim, Pipeline, Resv, Target};
use crate::outcome::{Outcome, number, stage};
use crate::pool::{Amount, to_milli};
use crate::ranges;
use berth_mesos::Range;

/// Scalar stage order within a resource set.
const SCALAR_ORDER: [&str; 3] = ["cpus", "mem", "gpus"];

fn scalar_rank(name: &str) -> usize {
    SCALAR_ORDER
        .iter()
        .position(|n| *n == name)
        .unwrap_or(SCALAR_ORDER.len())
}

/// The scalars of a set in stage order: cpus, mem, gpus, then the others as written.
pub(super) fn ordered_scalars(specs: &[ResourceSpec]) -> impl Iterator<Item = &ScalarSpec> + '_ {
    (0..=SCALAR_ORDER.len()).flat_map(move |rank| {
        specs.iter().filter_map(move |r| match r {
            ResourceSpec::Scalar(s) if scalar_rank(&s.name) == rank => Some(s),
            _ => None,
        })
    })
}

/// Every port.
const ANY_PORT: [Range; 1] = [Range {
    begin: 0,
    end: u64::MAX,
}];

/// The allowed windows of a dynamic port (normalised); any port when `ranges` is empty.
pub(super) fn port_windows(p: &PortSpec) -> Cow<'static, [Range]> {
    if p.ranges.is_empty() {
        return Cow::Borrowed(&ANY_PORT);
    }
    let mut w: Vec<Range> = p
        .ranges
        .iter()
        .map(|r| Range {
            begin: r.begin.map_or(0, u64::from),
            end: r.end.map_or(u64::MAX, u64::from),
        })
        .collect();
    ranges::normalize(&mut w);
    Cow::Owned(w)
}

fn windows_text(p: &PortSpec) -> String {
    if p.ranges.is_empty() {
        return "any range".to_owned();
    }
    let parts: Vec<String> = p
        .ranges
        .iter()
        .map(|r| {
            format!(
                "{}-{}",
                r.begin.map_or(String::new(), |b| b.to_string()),
                r.end.map_or(String::new(), |e| e.to_string())
            )
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// Ports on a virtual network without port mapping are drawn from here, unreserved.
const VIRTUAL_PORTS: [Range; 1] = [Range {
    begin: 1025,
    end: 2025,
}];

pub(super) fn port_source(p: &PortSpec) -> &'static str {
    if p.vip.is_some() {
        stage::NAMED_VIP
    } else {
        stage::PORT
    }
}

impl<'a> Pipeline<'a> {
    /// A new reservation of `milli` of unreserved `name` of the pre-reserved role.
    pub(super) fn new_scalar_stage(
        &mut self,
        name: &'a str,
        milli: u64,
        resv: Resv<'a>,
        target: Target,
        who: &str,
    ) {
        let role = resv.pre;
        let offered = self.pool.unreserved_scalar(name, role);
        let pass = self.pool.consume_scalar(name, role, milli).is_ok();
        if pass {
            self.push_claim(target, Claim::NewScalar { name, milli, resv });
        }
        let outcome = Outcome::new(
            pass,
            stage::RESOURCE,
            [
                if pass {
                    "Offer contains sufficient unreserved '"
                } else {
                    "Offer lacks sufficient unreserved '"
                },
                name,
                "' with role '",
                role,
                "' for new",
                who,
                " reservation: requested ",
                Amount(milli).text(&mut [0; 24]),
                ", offered ",
                Amount(offered).text(&mut [0; 24]),
            ]
            .concat(),
        );
        self.stages.push(outcome);
    }

    /// A new persistent volume: ROOT (exact size) or MOUNT (a whole disk of at least the size).
    pub(super) fn new_volume_stage(
        &mut self,
        v: &'a VolumeSpec,
        resv: Resv<'a>,
        target: Target,
        pod_level: bool,
    ) {
        let role = resv.pre;
        let milli = v.size.saturating_mul(1000);
        let path = &v.container_path;
        let scope = if pod_level { "pod " } else { "" };
        let outcome = match v.volume_type {
            VolumeType::Root => match self.pool.consume_root_disk(role, milli) {
                Ok(disk) => {
                    self.push_claim(
                        target,
                        Claim::NewDisk {
                            milli,
                            path: disk,
                            volume: Some(v),
                            resv,
                        },
                    );
                    Outcome::pass(
                        stage::VOLUME,
                        [
                            "Offer contains sufficient unreserved 'disk' with role '",
                            role,
                            "' for new ROOT ",
                            scope,
                            "volume '",
                            path,
                            "': requested ",
                            Amount(milli).text(&mut [0; 24]),
                        ]
                        .concat(),
                    )
                }
                Err(e) => Outcome::fail(
                    stage::VOLUME,
                    format!(
                        "Offer lacks sufficient unreserved 'disk' with role '{role}' for new ROOT {scope}volume '{path}': {e}"
                    ),
                ),
            },
            VolumeType::Mount => match self.pool.consume_mount_disk(role, milli, &v.profiles) {
                Ok(disk) => {
                    self.push_claim(
                        target,
                        Claim::NewMount {
                            disk,
                            volume: v,
                            resv,
                        },
                    );
                    Outcome::pass(
                        stage::VOLUME,
                        [
                            "Offer contains an unreserved MOUNT disk of ",
                            Amount(to_milli(disk.scalar_value())).text(&mut [0; 24]),
                            " with role '",
                            role,
                            "' for new ",
                            scope,
                            "volume '",
                            path,
                            "': requested ",
                            Amount(milli).text(&mut [0; 24]),
                        ]
                        .concat(),
                    )
                }
                Err(e) => {
                    let profiles = if v.profiles.is_empty() {
                        String::new()
                    } else {
                        format!(" with profile {}", v.profiles.join("|"))
                    };
                    Outcome::fail(
                        stage::VOLUME,
                        format!(
                            "Offer lacks an unreserved MOUNT disk{profiles} with role '{role}' for new {scope}volume '{path}': {e}"
                        ),
                    )
                }
            },
        };
        self.stages.push(outcome);
    }

    /// A port: a fixed one, or the lowest free one in its ranges (dynamic).
    pub(super) fn new_port_stage(&mut self, p: &'a PortSpec, set: usize) {
        let role = p.pre_reserved_role.as_str();
        let name = &p.port_name;
        let source = port_source(p);
        let resv = Resv {
            role: &p.role,
            pre: role,
            principal: &p.principal,
        };
        let outcome = if p.port != 0 {
            let port = u64::from(p.port);
            if self.virtual_net {
                self.record_port(set, p, port);
                Outcome::pass(
                    source,
                    format!(
                        "Port {port} for '{name}' is on a virtual network and needs no reservation"
                    ),
                )
            } else {
                match self.pool.consume_port(role, port) {
                    Ok(()) => {
                        self.record_port(set, p, port);
                        self.push_claim(Target::Set(set), Claim::NewPort { port, resv });
                        Outcome::pass(
                            source,
                            [
                                "Offer contains unreserved port ",
                                number(port, &mut [0; 20]),
                                " for '",
                                name,
                                "' with role '",
                                role,
                                "'",
                            ]
                            .concat(),
                        )
                    }
                    Err(_) => Outcome::fail(
                        source,
                        format!(
                            "Offer lacks unreserved port {port} for '{name}' with role '{role}': offered {}",
                            ranges::format(self.pool.free_ports(role))
                        ),
                    ),
                }
            }
        } else {
            let windows = port_windows(p);
            if self.virtual_net {
                match ranges::lowest_free(&VIRTUAL_PORTS, &windows, 1, &self.pod_ports) {
                    Some(port) => {
                        self.record_port(set, p, port);
                        Outcome::pass(
                            source,
                            format!(
                                "Selected port {port} for dynamic port '{name}' on a virtual network (no reservation)"
                            ),
                        )
                    }
                    None => Outcome::fail(
                        source,
                        format!(
                            "No free virtual-network port in [1025-2025] for dynamic port '{name}' within {}",
                            windows_text(p)
                        ),
                    ),
                }
            } else {
                match self
                    .pool
                    .consume_dynamic_port(role, &windows, &self.pod_ports)
                {
                    Ok(port) => {
                        self.record_port(set, p, port);
                        self.push_claim(Target::Set(set), Claim::NewPort { port, resv });
                        Outcome::pass(
                            source,
                            [
                                "Offer contains unreserved port ",
                                number(port, &mut [0; 20]),
                                " for dynamic port '",
                                name,
                                "' with role '",
                                role,
                                "'",
                            ]
                            .concat(),
                        )
                    }
                    Err(_) => Outcome::fail(
                        source,
                        format!(
                            "Offer lacks a free unreserved port for dynamic port '{name}' with role '{role}' within {}: offered {}",
                            windows_text(p),
                            ranges::format(self.pool.free_ports(role))
                        ),
                    ),
                }
            }
        };
        self.stages.push(outcome);
    }

    /// All stages of a resource set reserved afresh: static ports, dynamic ports, scalars
    /// (cpus, mem, gpus, others), volumes.
    pub(super) fn new_set_stages(&mut self, si: usize) {
        let Some(set) = self.sets.get(si).map(|s| s.set) else {
            return;
        };
        for p in set.ports().filter(|p| p.port != 0) {
            self.new_port_stage(p, si);
        }
        for p in set.ports().filter(|p| p.port == 0) {
            self.new_port_stage(p, si);
        }
        for s in ordered_scalars(&set.resource_specifications) {
            let milli = to_milli(s.value);
            if milli == 0 {
                continue;
            }
            let resv = Resv {
                role: &s.role,
                pre: &s.pre_reserved_role,
                principal: &s.principal,
            };
            self.new_scalar_stage(&s.name, milli, resv, Target::Set(si), "");
        }
        for v in &set.volume_specifications {
            let resv = Resv {
                role: &v.role,
                pre: &v.pre_reserved_role,
                principal: &v.principal,
            };
            self.new_volume_stage(v, resv, Target::Set(si), false);
        }
    }
}
