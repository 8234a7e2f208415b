//! A per-offer mutable view of what is left to claim during one evaluation.
//!
//! Built once per offer evaluation (one pass over the offer's resources, borrowing them), then
//! every stage claims from it:
//!
//! - unreserved scalars of a role — `*` for unreserved resources, or a pre-reserved role whose
//!   resources carry only STATIC reservations;
//! - ports: a fixed port, or the lowest free port inside allowed windows (dynamic ports);
//! - ROOT disk of an exact size (from `disk` without a source, or a PATH-source disk);
//! - a whole MOUNT disk of at least a size (best fit; profiles must match when given);
//! - a previously reserved resource, by its `resource_id` (the relaunch case).
//!
//! Amounts are kept as integer milli-units (the fixed point Mesos uses), so repeated claims
//! never drift; NaN, infinite, zero and negative offered amounts count as nothing.

use crate::error::OfferError;
use crate::ranges;
use berth_mesos::{DiskSourceType, Offer, Range, ReservationType, Resource, ValueType};

/// Largest amount kept (2^53 milli-units, exactly representable as `f64`).
const MAX_MILLI: u64 = 1 << 53;

/// Converts an amount to milli-units; NaN, infinities, zero and negatives become 0.
#[must_use]
pub fn to_milli(value: f64) -> u64 {
    if !value.is_finite() || value <= 0.0 {
        return 0;
    }
    let m = (value * 1000.0).round();
    if m >= MAX_MILLI as f64 {
        MAX_MILLI
    } else {
        m as u64
    }
}

/// Converts milli-units back to an amount.
#[must_use]
pub fn from_milli(milli: u64) -> f64 {
    milli.min(MAX_MILLI) as f64 / 1000.0
}

/// Milli-units shown as people read amounts: `2.0`, `0.5`, `0.125`, `252.0` (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub u64);

impl Amount {
    /// The amount's text, laid out in `buf` (no allocation): amounts appear in every reason of
    /// every evaluated offer.
    #[must_use]
    pub fn text(self, buf: &mut [u8; 24]) -> &str {
        // u64::MAX / 1000 has 17 digits; then '.', and at most 3 decimals.
        let mut end = buf.len();
        let mut frac = self.0 % 1000;
        let mut decimals = 3;
        if frac == 0 {
            decimals = 1;
        } else {
            while frac.is_multiple_of(10) {
                frac /= 10;
                decimals -= 1;
            }
        }
        for _ in 0..decimals {
            end -= 1;
            buf[end] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        end -= 1;
        buf[end] = b'.';
        let end = crate::outcome::digits_before(self.0 / 1000, buf, end);
        // Only ASCII digits and '.' were written.
        std::str::from_utf8(&buf[end..]).unwrap_or_default()
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text(&mut [0; 24]))
    }
}

/// Formats milli-units as people read amounts (see [`Amount`]).
#[must_use]
pub fn fmt_milli(milli: u64) -> String {
    Amount(milli).to_string()
}

/// The role whose *unreserved* pool a resource belongs to: `*` when it has no reservation, the
/// static role when it carries only STATIC reservations, `None` when it is dynamically reserved.
#[must_use]
pub fn unreserved_role(resource: &Resource) -> Option<&str> {
    if resource.reservations.is_empty() {
        return Some("*");
    }
    if resource
        .reservations
        .iter()
        .all(|r| r.kind == ReservationType::Static)
    {
        resource.reservations.last().map(|r| r.role.as_str())
    } else {
        None
    }
}

#[derive(Debug)]
struct ScalarEntry<'o> {
    name: &'o str,
    role: &'o str,
    remaining: u64,
}

#[derive(Debug)]
struct PortEntry<'o> {
    role: &'o str,
    free: Vec<Range>,
}

#[derive(Debug)]
struct DiskEntry<'o> {
    resource: &'o Resource,
    role: &'o str,
    kind: DiskSourceType,
    size: u64,
    remaining: u64,
    taken: bool,
}

#[derive(Debug)]
struct ReservedEntry<'o> {
    id: &'o str,
    resource: &'o Resource,
    taken: bool,
}

/// What is still free in one offer; see the module docs.
#[derive(Debug)]
pub struct ResourcePool<'o> {
    offer: &'o Offer,
    scalars: Vec<ScalarEntry<'o>>,
    ports: Vec<PortEntry<'o>>,
    disks: Vec<DiskEntry<'o>>,
    reserved: Vec<ReservedEntry<'o>>,
}

impl<'o> ResourcePool<'o> {
    /// Reads the offer's resources into pools.
    #[must_use]
    pub fn new(offer: &'o Offer) -> Self {
        let mut pool = Self {
            offer,
            scalars: Vec::with_capacity(8),
            ports: Vec::with_capacity(1),
            disks: Vec::new(),
            reserved: Vec::new(),
        };
        for r in &offer.resources {
            if let Some(id) = r.resource_id() {
                pool.reserved.push(ReservedEntry {
                    id,
                    resource: r,
                    taken: false,
                });
                continue;
            }
            let Some(role) = unreserved_role(r) else {
                continue;
            };
            match r.kind {
                ValueType::Scalar => pool.add_scalar(r, role),
                ValueType::Ranges if r.name == "ports" => {
                    let offered = r.ranges.as_ref().map_or(&[][..], |x| &x.range[..]);
                    match pool.ports.iter_mut().find(|p| p.role == role) {
                        Some(p) => p.free.extend_from_slice(offered),
                        None => pool.ports.push(PortEntry {
                            role,
                            free: offered.to_vec(),
                        }),
                    }
                }
                _ => {}
            }
        }
        for p in &mut pool.ports {
            ranges::normalize(&mut p.free);
        }
        pool
    }

    fn add_scalar(&mut self, r: &'o Resource, role: &'o str) {
        let m = to_milli(r.scalar_value());
        if m == 0 {
            return;
        }
        if let Some(d) = &r.disk {
            if d.persistence.is_some() || d.volume.is_some() {
                return; // a volume is never free for new claims
            }
            if let Some(src) = &d.source {
                self.disks.push(DiskEntry {
                    resource: r,
                    role,
                    kind: src.kind,
                    size: m,
                    remaining: m,
                    taken: false,
                });
                return;
            }
        }
        match self
            .scalars
            .iter_mut()
            .find(|s| s.name == r.name && s.role == role)
        {
            Some(s) => s.remaining = s.remaining.saturating_add(m).min(MAX_MILLI),
            None => self.scalars.push(ScalarEntry {
                name: &r.name,
                role,
                remaining: m,
            }),
        }
    }

    /// The offer this pool was built from.
    #[must_use]
    pub fn offer(&self) -> &'o Offer {
        self.offer
    }

    /// Unclaimed unreserved amount of scalar `name` for `role` (milli-units); `disk` counts only
    /// disks without a source.
    #[must_use]
    pub fn unreserved_scalar(&self, name: &str, role: &str) -> u64 {
        self.scalars
            .iter()
            .find(|s| s.name == name && s.role == role)
            .map_or(0, |s| s.remaining)
    }

    /// Claims `milli` of unreserved scalar `name` for `role`.
    ///
    /// # Errors
    /// [`OfferError::Insufficient`] with what is left when it is not enough.
    pub fn consume_scalar(&mut self, name: &str, role: &str, milli: u64) -> Result<(), OfferError> {
        if milli == 0 {
            return Ok(());
        }
        match self
            .scalars
            .iter_mut()
            .find(|s| s.name == name && s.role == role)
        {
            Some(s) if s.remaining >= milli => {
                s.remaining -= milli;
                Ok(())
            }
            other => Err(OfferError::Insufficient {
                requested: milli,
                offered: other.map_or(0, |s| s.remaining),
            }),
        }
    }

    /// Free unreserved port ranges of `role` (normalised).
    #[must_use]
    pub fn free_ports(&self, role: &str) -> &[Range] {
        self.ports
            .iter()
            .find(|p| p.role == role)
            .map_or(&[][..], |p| &p.free[..])
    }

    /// Claims the fixed port `port` from the unreserved ports of `role`.
    ///
    /// # Errors
    /// [`OfferError::PortNotOffered`] when it is not free.
    pub fn consume_port(&mut self, role: &str, port: u64) -> Result<(), OfferError> {
        match self.ports.iter_mut().find(|p| p.role == role) {
            Some(p) if ranges::contains(&p.free, port) => {
                ranges::subtract(&mut p.free, port, port);
                Ok(())
            }
            _ => Err(OfferError::PortNotOffered { port }),
        }
    }

    /// Claims the lowest free port (≥ 1) of `role` inside `windows` (normalised) that is not in
    /// `excluded` (sorted).
    ///
    /// # Errors
    /// [`OfferError::NoFreePort`] when there is none.
    pub fn consume_dynamic_port(
        &mut self,
        role: &str,
        windows: &[Range],
        excluded: &[u64],
    ) -> Result<u64, OfferError> {
        let Some(p) = self.ports.iter_mut().find(|p| p.role == role) else {
            return Err(OfferError::NoFreePort);
        };
        match ranges::lowest_free(&p.free, windows, 1, excluded) {
            Some(port) => {
                ranges::subtract(&mut p.free, port, port);
                Ok(port)
            }
            None => Err(OfferError::NoFreePort),
        }
    }

    /// Claims `milli` MB of ROOT disk for `role`: from `disk` without a source first, else from
    /// the first PATH-source disk with room. Returns the PATH disk used, if any (its source
    /// must be carried in the reservation).
    ///
    /// # Errors
    /// [`OfferError::Insufficient`] with the largest amount available in one place.
    pub fn consume_root_disk(
        &mut self,
        role: &str,
        milli: u64,
    ) -> Result<Option<&'o Resource>, OfferError> {
        if self.consume_scalar("disk", role, milli).is_ok() {
            return Ok(None);
        }
        let mut largest = self.unreserved_scalar("disk", role);
        for d in &mut self.disks {
            if d.kind != DiskSourceType::Path || d.role != role {
                continue;
            }
            if d.remaining >= milli {
                d.remaining -= milli;
                return Ok(Some(d.resource));
            }
            largest = largest.max(d.remaining);
        }
        Err(OfferError::Insufficient {
            requested: milli,
            offered: largest,
        })
    }

    /// Claims a whole unreserved MOUNT disk of `role` of at least `milli` MB whose profile is
    /// one of `profiles` (any profile when empty); the smallest that fits.
    ///
    /// # Errors
    /// [`OfferError::NoMountDisk`] with the largest suitable disk offered, if any.
    pub fn consume_mount_disk(
        &mut self,
        role: &str,
        milli: u64,
        profiles: &[String],
    ) -> Result<&'o Resource, OfferError> {
        let mut best: Option<usize> = None;
        let mut largest: Option<u64> = None;
        for (i, d) in self.disks.iter().enumerate() {
            if d.kind != DiskSourceType::Mount || d.role != role || d.taken {
                continue;
            }
            if !profiles.is_empty() {
                let profile = d
                    .resource
                    .disk
                    .as_ref()
                    .and_then(|x| x.source.as_ref())
                    .and_then(|s| s.profile.as_deref());
                if !profile.is_some_and(|p| profiles.iter().any(|w| w == p)) {
                    continue;
                }
            }
            largest = Some(largest.map_or(d.size, |l| l.max(d.size)));
            if d.size >= milli && best.is_none_or(|b| self.disks[b].size > d.size) {
                best = Some(i);
            }
        }
        match best {
            Some(i) => {
                let d = &mut self.disks[i];
                d.taken = true;
                d.remaining = 0;
                Ok(d.resource)
            }
            None => Err(OfferError::NoMountDisk {
                requested: milli,
                largest,
            }),
        }
    }

    /// Whether the offer holds the (unclaimed) reserved resource `resource_id`.
    #[must_use]
    pub fn has_reserved(&self, resource_id: &str) -> bool {
        self.reserved
            .iter()
            .any(|r| !r.taken && r.id == resource_id)
    }

    /// Claims the previously reserved resource with `resource_id`.
    ///
    /// # Errors
    /// [`OfferError::ReservedNotOffered`] when the offer lacks it (or it was claimed already).
    pub fn consume_reserved(&mut self, resource_id: &str) -> Result<&'o Resource, OfferError> {
        match self
            .reserved
            .iter_mut()
            .find(|r| !r.taken && r.id == resource_id)
        {
            Some(r) => {
                r.taken = true;
                Ok(r.resource)
            }
            None => Err(OfferError::ReservedNotOffered(resource_id.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_mesos::{
        AgentId, DiskInfo, DiskRoot, DiskSource, FrameworkId, LabelsHash, OfferId, Persistence,
        ReservationInfo, Volume, VolumeMode,
    };
    use berth_mesos::{Label, RESOURCE_ID_LABEL};

    fn offer(resources: Vec<Resource>) -> Offer {
        Offer {
            id: OfferId::new("o1"),
            framework_id: FrameworkId::new("fw"),
            agent_id: AgentId::new("a1"),
            hostname: "h1".into(),
            domain: None,
            attributes: vec![],
            resources,
            executor_ids: vec![],
        }
    }

    fn r(begin: u64, end: u64) -> Range {
        Range { begin, end }
    }

    fn static_role(mut res: Resource, role: &str) -> Resource {
        res.reservations.push(ReservationInfo {
            kind: ReservationType::Static,
            role: role.into(),
            principal: None,
            labels: None,
        });
        res
    }

    fn disk_with(kind: DiskSourceType, size: f64, profile: Option<&str>) -> Resource {
        let mut d = Resource::scalar("disk", size);
        d.disk = Some(Box::new(DiskInfo {
            persistence: None,
            volume: None,
            source: Some(DiskSource {
                kind,
                mount: (kind == DiskSourceType::Mount).then(|| DiskRoot {
                    root: "/mnt/d".into(),
                }),
                path: (kind == DiskSourceType::Path).then(|| DiskRoot { root: "/p".into() }),
                profile: profile.map(str::to_owned),
            }),
        }));
        d
    }

    fn reserved(name: &str, value: f64, id: &str) -> Resource {
        let mut res = Resource::scalar(name, value);
        res.reservations.push(ReservationInfo {
            kind: ReservationType::Dynamic,
            role: "svc-role".into(),
            principal: Some("p".into()),
            labels: Some(LabelsHash {
                labels: vec![Label {
                    key: RESOURCE_ID_LABEL.into(),
                    value: id.into(),
                }],
            }),
        });
        res
    }

    #[test]
    fn milli_conversions() {
        assert_eq!(to_milli(0.1), 100);
        assert_eq!(to_milli(f64::NAN), 0);
        assert_eq!(to_milli(-3.0), 0);
        assert_eq!(to_milli(f64::INFINITY), 0);
        assert_eq!(to_milli(1e300), MAX_MILLI);
        assert_eq!(fmt_milli(2000), "2.0");
        assert_eq!(fmt_milli(500), "0.5");
        assert_eq!(fmt_milli(125), "0.125");
        assert_eq!(fmt_milli(252_000), "252.0");
        assert_eq!(fmt_milli(1_050), "1.05");
        assert_eq!(fmt_milli(7), "0.007");
        assert_eq!(fmt_milli(0), "0.0");
        assert_eq!(fmt_milli(u64::MAX), "18446744073709551.615");
        assert!((from_milli(100) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn scalars_per_role_aggregate_and_never_drift() {
        let o = offer(vec![
            Resource::scalar("cpus", 0.3),
            Resource::scalar("cpus", 0.2),
            static_role(Resource::scalar("cpus", 4.0), "slave_public"),
            Resource::scalar("mem", f64::NAN),
        ]);
        let mut p = ResourcePool::new(&o);
        assert_eq!(p.unreserved_scalar("cpus", "*"), 500);
        for _ in 0..5 {
            p.consume_scalar("cpus", "*", 100).unwrap();
        }
        assert_eq!(
            p.consume_scalar("cpus", "*", 100),
            Err(OfferError::Insufficient {
                requested: 100,
                offered: 0
            })
        );
        assert_eq!(p.unreserved_scalar("cpus", "slave_public"), 4000);
        assert!(p.consume_scalar("mem", "*", 1).is_err());
        assert!(p.consume_scalar("gpus", "*", 0).is_ok());
    }

    #[test]
    fn ports_fixed_and_dynamic() {
        let o = offer(vec![
            Resource::ranges("ports", vec![r(2000, 2002), r(1000, 1001)]),
            Resource::ranges("ports", vec![r(1002, 1003), r(9, 3)]),
        ]);
        let mut p = ResourcePool::new(&o);
        assert_eq!(p.free_ports("*"), &[r(1000, 1003), r(2000, 2002)]);
        p.consume_port("*", 1001).unwrap();
        assert_eq!(
            p.consume_port("*", 1001),
            Err(OfferError::PortNotOffered { port: 1001 })
        );
        let any = [r(0, u64::MAX)];
        assert_eq!(p.consume_dynamic_port("*", &any, &[1000]), Ok(1002));
        assert_eq!(p.consume_dynamic_port("*", &[r(1500, 2001)], &[]), Ok(2000));
        assert_eq!(
            p.consume_dynamic_port("*", &[r(1, 999)], &[]),
            Err(OfferError::NoFreePort)
        );
        assert_eq!(
            p.consume_dynamic_port("role", &any, &[]),
            Err(OfferError::NoFreePort)
        );
    }

    #[test]
    fn root_disk_prefers_plain_disk_then_path() {
        let o = offer(vec![
            Resource::scalar("disk", 100.0),
            disk_with(DiskSourceType::Path, 500.0, None),
            disk_with(DiskSourceType::Mount, 1000.0, None),
        ]);
        let mut p = ResourcePool::new(&o);
        assert_eq!(p.consume_root_disk("*", 50_000), Ok(None));
        let path = p.consume_root_disk("*", 300_000).unwrap();
        assert!(path.is_some());
        assert_eq!(
            p.consume_root_disk("*", 300_000),
            Err(OfferError::Insufficient {
                requested: 300_000,
                offered: 200_000
            })
        );
    }

    #[test]
    fn mount_disk_best_fit_and_profiles() {
        let o = offer(vec![
            disk_with(DiskSourceType::Mount, 5000.0, Some("ssd")),
            disk_with(DiskSourceType::Mount, 2000.0, Some("hdd")),
            disk_with(DiskSourceType::Mount, 3000.0, None),
        ]);
        let mut p = ResourcePool::new(&o);
        let d = p.consume_mount_disk("*", 1_000_000, &[]).unwrap();
        assert_eq!(d.scalar_value(), 2000.0);
        let ssd = p
            .consume_mount_disk("*", 1_000_000, &["ssd".into()])
            .unwrap();
        assert_eq!(ssd.scalar_value(), 5000.0);
        assert_eq!(
            p.consume_mount_disk("*", 4_000_000, &[]),
            Err(OfferError::NoMountDisk {
                requested: 4_000_000,
                largest: Some(3_000_000)
            })
        );
        assert_eq!(
            p.consume_mount_disk("*", 1, &["nvme".into()]),
            Err(OfferError::NoMountDisk {
                requested: 1,
                largest: None
            })
        );
    }

    #[test]
    fn reserved_by_id_once() {
        let mut vol = reserved("disk", 10.0, "v1");
        vol.disk = Some(Box::new(DiskInfo {
            persistence: Some(Persistence {
                id: "p1".into(),
                principal: None,
            }),
            volume: Some(Volume {
                container_path: "data".into(),
                mode: VolumeMode::Rw,
            }),
            source: None,
        }));
        let o = offer(vec![reserved("cpus", 1.0, "c1"), vol]);
        let mut p = ResourcePool::new(&o);
        assert_eq!(p.unreserved_scalar("cpus", "*"), 0);
        assert!(p.has_reserved("c1"));
        assert_eq!(p.consume_reserved("c1").unwrap().name, "cpus");
        assert!(!p.has_reserved("c1"));
        assert_eq!(
            p.consume_reserved("c1"),
            Err(OfferError::ReservedNotOffered("c1".into()))
        );
        assert_eq!(
            p.consume_reserved("v1").unwrap().persistence_id(),
            Some("p1")
        );
    }
}
