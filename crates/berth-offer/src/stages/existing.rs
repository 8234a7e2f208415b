//! Stages of an existing pod's resource set: previous reservations matched by `resource_id`,
//! grown or shrunk to the spec, released when they left it, new ones reserved.

use berth_spec::{PortSpec, ScalarSpec, VolumeSpec};

use super::reserve::{ordered_scalars, port_source, port_windows};
use super::{Claim, Pipeline, Resv, Target};
use crate::outcome::{Outcome, stage};
use crate::pool::{Amount, to_milli};
use crate::ranges;
use berth_mesos::{Resource, TaskInfo};

/// How a port spec of an existing set is satisfied.
enum PortPlan {
    /// By the stored reservation at this index, holding this port.
    Reserved(usize, u64),
    /// By the previous port on a virtual network (no reservation).
    Virtual(u64),
    /// By a new reservation.
    New,
}

/// The port a task had for `p` before: from its discovery info, else its `env-key` variable.
fn previous_port(stored: &TaskInfo, p: &PortSpec) -> Option<u64> {
    let from_discovery = stored
        .discovery
        .as_ref()
        .and_then(|d| d.ports.as_ref())
        .and_then(|ps| {
            ps.ports
                .iter()
                .find(|x| x.name.as_deref() == Some(p.port_name.as_str()))
        })
        .map(|x| u64::from(x.number));
    from_discovery.or_else(|| {
        let key = p.env_key.as_deref()?;
        stored
            .command
            .as_ref()?
            .environment
            .as_ref()?
            .get(key)?
            .parse()
            .ok()
    })
}

/// Marks and returns the first unused stored reservation matching `pred`.
fn take(stored: &[Resource], used: &mut [bool], pred: impl Fn(&Resource) -> bool) -> Option<usize> {
    let i = stored.iter().enumerate().position(|(i, r)| {
        !used.get(i).copied().unwrap_or(true) && r.resource_id().is_some() && pred(r)
    })?;
    if let Some(u) = used.get_mut(i) {
        *u = true;
    }
    Some(i)
}

fn holds_port(r: &Resource, port: u64) -> bool {
    r.name == "ports"
        && r.ranges
            .as_ref()
            .is_some_and(|rs| ranges::contains(&rs.range, port))
}

fn is_plain_scalar(r: &Resource, name: &str) -> bool {
    r.name == name && r.scalar.is_some() && r.disk.as_ref().is_none_or(|d| d.volume.is_none())
}

fn volume_path(r: &Resource) -> Option<&str> {
    r.disk
        .as_ref()
        .and_then(|d| d.volume.as_ref())
        .map(|v| v.container_path.as_str())
}

impl<'a> Pipeline<'a> {
    /// The stages of a resource set of an existing pod; see the module docs.
    pub(super) fn existing_set_stages(&mut self, si: usize) {
        let Some((set, stored)) = self.sets.get(si).map(|s| (s.set, s.stored)) else {
            return;
        };
        let stored_res: &'a [Resource] = stored.map_or(&[][..], |t| &t.resources[..]);
        let mut used = vec![false; stored_res.len()];
        // Match every spec to a stored reservation first, then run the stages in order.
        let mut ports: Vec<(&'a PortSpec, PortPlan)> = Vec::new();
        for p in set.ports().filter(|p| p.port != 0) {
            let port = u64::from(p.port);
            let plan = match take(stored_res, &mut used, |r| holds_port(r, port)) {
                Some(i) => PortPlan::Reserved(i, port),
                None => PortPlan::New,
            };
            ports.push((p, plan));
        }
        for p in set.ports().filter(|p| p.port == 0) {
            let windows = port_windows(p);
            let prev = stored
                .and_then(|t| previous_port(t, p))
                .filter(|port| ranges::contains(&windows, *port));
            let plan = match prev {
                Some(port) if self.virtual_net => PortPlan::Virtual(port),
                Some(port) => match take(stored_res, &mut used, |r| holds_port(r, port)) {
                    Some(i) => PortPlan::Reserved(i, port),
                    None => PortPlan::New,
                },
                None => PortPlan::New,
            };
            ports.push((p, plan));
        }
        let mut scalars: Vec<(&'a ScalarSpec, Option<usize>)> = Vec::new();
        for s in ordered_scalars(&set.resource_specifications) {
            if to_milli(s.value) == 0 {
                continue;
            }
            let name = s.name.as_str();
            scalars.push((s, take(stored_res, &mut used, |r| is_plain_scalar(r, name))));
        }
        let mut volumes: Vec<(&'a VolumeSpec, Option<usize>)> = Vec::new();
        for v in &set.volume_specifications {
            let path = v.container_path.as_str();
            volumes.push((
                v,
                take(stored_res, &mut used, |r| volume_path(r) == Some(path)),
            ));
        }

        for (i, r) in stored_res.iter().enumerate() {
            if !used[i] && r.resource_id().is_some() {
                self.release_stage(si, r);
            }
        }
        for (p, plan) in ports {
            match plan {
                PortPlan::Reserved(i, port) => self.kept_port_stage(si, p, &stored_res[i], port),
                PortPlan::Virtual(port) => {
                    self.record_port(si, p, port);
                    self.stages.push(Outcome::pass(
                        port_source(p),
                        format!(
                            "Kept port {port} for dynamic port '{}' on a virtual network (no reservation)",
                            p.port_name
                        ),
                    ));
                }
                PortPlan::New => self.new_port_stage(p, si),
            }
        }
        for (s, m) in scalars {
            match m {
                Some(i) => self.update_scalar_stage(si, s, &stored_res[i]),
                None => {
                    let resv = Resv {
                        role: &s.role,
                        pre: &s.pre_reserved_role,
                        principal: &s.principal,
                    };
                    self.new_scalar_stage(&s.name, to_milli(s.value), resv, Target::Set(si), "");
                }
            }
        }
        for (v, m) in volumes {
            match m {
                Some(i) => self.kept_volume_stage(si, v, &stored_res[i]),
                None => {
                    let resv = Resv {
                        role: &v.role,
                        pre: &v.pre_reserved_role,
                        principal: &v.principal,
                    };
                    self.new_volume_stage(v, resv, Target::Set(si), false);
                }
            }
        }
    }

    /// A stored reservation that left the spec: DESTROY (volume) and UNRESERVE if offered.
    fn release_stage(&mut self, si: usize, r: &'a Resource) {
        let Some(id) = r.resource_id() else {
            return;
        };
        let name = &r.name;
        let volume = volume_path(r);
        let source = if volume.is_some() {
            stage::DESTROY
        } else {
            stage::UNRESERVE
        };
        let outcome = match self.pool.consume_reserved(id) {
            Ok(res) => {
                self.push_claim(Target::Set(si), Claim::Released { res });
                match volume {
                    Some(path) => Outcome::pass(
                        source,
                        format!(
                            "Destroying volume '{path}' and unreserving '{name}' with resourceId: '{id}': no longer in the spec"
                        ),
                    ),
                    None => Outcome::pass(
                        source,
                        format!(
                            "Unreserving '{name}' with resourceId: '{id}': no longer in the spec"
                        ),
                    ),
                }
            }
            Err(_) => Outcome::pass(
                source,
                format!(
                    "Previously reserved '{name}' with resourceId: '{id}' is no longer in the spec and not in this offer; it is cleaned up when offered"
                ),
            ),
        };
        self.stages.push(outcome);
    }

    fn kept_port_stage(&mut self, si: usize, p: &'a PortSpec, stored: &Resource, port: u64) {
        let id = stored.resource_id().unwrap_or_default();
        let name = &p.port_name;
        let source = port_source(p);
        self.record_port(si, p, port);
        let outcome = match self.pool.consume_reserved(id) {
            Ok(res) => {
                self.push_claim(Target::Set(si), Claim::Kept { res });
                Outcome::pass(
                    source,
                    format!(
                        "Offer contains previously reserved port {port} for '{name}' with resourceId: '{id}'"
                    ),
                )
            }
            Err(_) => Outcome::fail(
                source,
                format!(
                    "Offer lacks previously reserved 'ports' with resourceId: '{id}' (port {port} for '{name}')"
                ),
            ),
        };
        self.stages.push(outcome);
    }

    fn update_scalar_stage(&mut self, si: usize, s: &'a ScalarSpec, stored: &Resource) {
        let id = stored.resource_id().unwrap_or_default();
        let name = s.name.as_str();
        let res = match self.pool.consume_reserved(id) {
            Ok(res) => res,
            Err(_) => {
                self.stages.push(Outcome::fail(
                    stage::RESOURCE,
                    format!("Offer lacks previously reserved '{name}' with resourceId: '{id}'"),
                ));
                return;
            }
        };
        let have = to_milli(res.scalar_value());
        let want = to_milli(s.value);
        let role = s.pre_reserved_role.as_str();
        let outcome = if want == have {
            self.push_claim(Target::Set(si), Claim::Kept { res });
            Outcome::pass(
                stage::RESOURCE,
                format!("Offer contains previously reserved '{name}' with resourceId: '{id}'"),
            )
        } else if want > have {
            let extra = want - have;
            let offered = self.pool.unreserved_scalar(name, role);
            match self.pool.consume_scalar(name, role, extra) {
                Ok(()) => {
                    self.push_claim(Target::Set(si), Claim::Grown { res, extra });
                    Outcome::pass(
                        stage::RESOURCE,
                        format!(
                            "Offer contains previously reserved '{name}' with resourceId: '{id}' and sufficient unreserved '{name}' with role '{role}' to grow it from {} to {}: requested {}, offered {}",
                            Amount(have),
                            Amount(want),
                            Amount(extra),
                            Amount(offered)
                        ),
                    )
                }
                Err(_) => Outcome::fail(
                    stage::RESOURCE,
                    format!(
                        "Offer contains previously reserved '{name}' with resourceId: '{id}' but lacks sufficient unreserved '{name}' with role '{role}' to grow it from {} to {}: requested {}, offered {}",
                        Amount(have),
                        Amount(want),
                        Amount(extra),
                        Amount(offered)
                    ),
                ),
            }
        } else {
            let excess = have - want;
            self.push_claim(Target::Set(si), Claim::Shrunk { res, excess });
            Outcome::pass(
                stage::RESOURCE,
                format!(
                    "Offer contains previously reserved '{name}' with resourceId: '{id}'; unreserving {} to shrink it from {} to {}",
                    Amount(excess),
                    Amount(have),
                    Amount(want)
                ),
            )
        };
        self.stages.push(outcome);
    }

    fn kept_volume_stage(&mut self, si: usize, v: &'a VolumeSpec, stored: &Resource) {
        let id = stored.resource_id().unwrap_or_default();
        let path = &v.container_path;
        let outcome = match self.pool.consume_reserved(id) {
            Ok(res) => {
                self.push_claim(Target::Set(si), Claim::Kept { res });
                Outcome::pass(
                    stage::VOLUME,
                    format!(
                        "Offer contains previously reserved 'disk' with resourceId: '{id}' for volume '{path}'"
                    ),
                )
            }
            Err(_) => Outcome::fail(
                stage::VOLUME,
                format!(
                    "Offer lacks previously reserved 'disk' with resourceId: '{id}' for volume '{path}'"
                ),
            ),
        };
        self.stages.push(outcome);
    }
}
