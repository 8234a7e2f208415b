//! Resource arithmetic of the local agents (Mesos semantics, simplified).
//!
//! An agent's resources are a list of "buckets": resources that differ only in their value.
//! Two resources are in the same bucket when name, type, reservation stack (with labels) and
//! disk info are equal. Scalars add up and can be split; ranges and sets union and subtract;
//! persistent volumes and MOUNT disks are whole: they are taken all or nothing.

use berth_mesos::{
    DiskInfo, DiskSourceType, Range, Ranges, ReservationInfo, ReservationType, Resource, Scalar,
    ValueType,
};

/// Scalars are kept with three decimals, as Mesos does.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Canonical form: empty disk info and empty labels removed, ranges sorted and merged,
/// scalars rounded.
pub(crate) fn normalize(r: &Resource) -> Resource {
    let mut r = r.clone();
    if r.disk.as_deref().is_some_and(|d| *d == DiskInfo::default()) {
        r.disk = None;
    }
    for res in &mut r.reservations {
        if res.labels.as_ref().is_some_and(|l| l.labels.is_empty()) {
            res.labels = None;
        }
    }
    if let Some(s) = &mut r.scalar {
        s.value = round(s.value);
    }
    if let Some(rs) = &mut r.ranges {
        rs.range = merge_ranges(std::mem::take(&mut rs.range));
    }
    if let Some(set) = &mut r.set {
        set.item.sort();
        set.item.dedup();
    }
    r
}

pub(crate) fn merge_ranges(mut v: Vec<Range>) -> Vec<Range> {
    v.retain(|r| r.begin <= r.end);
    v.sort_by_key(|r| r.begin);
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

fn ranges_contain(outer: &[Range], inner: &[Range]) -> bool {
    inner
        .iter()
        .all(|i| outer.iter().any(|o| o.begin <= i.begin && i.end <= o.end))
}

pub(crate) fn ranges_subtract(outer: &[Range], inner: &[Range]) -> Vec<Range> {
    let mut cur: Vec<Range> = outer.to_vec();
    for i in inner {
        let mut next = Vec::new();
        for o in cur {
            if i.end < o.begin || i.begin > o.end {
                next.push(o);
                continue;
            }
            if o.begin < i.begin {
                next.push(Range {
                    begin: o.begin,
                    end: i.begin - 1,
                });
            }
            if i.end < o.end {
                next.push(Range {
                    begin: i.end + 1,
                    end: o.end,
                });
            }
        }
        cur = next;
    }
    cur
}

/// Whether two resources are in the same bucket.
pub(crate) fn same_bucket(a: &Resource, b: &Resource) -> bool {
    a.name == b.name && a.kind == b.kind && a.reservations == b.reservations && a.disk == b.disk
}

/// Whether the resource is taken whole (persistent volume or MOUNT disk).
pub(crate) fn is_whole(r: &Resource) -> bool {
    r.disk.as_ref().is_some_and(|d| {
        d.persistence.is_some()
            || d.source
                .as_ref()
                .is_some_and(|s| s.kind == DiskSourceType::Mount)
    })
}

fn is_empty(r: &Resource) -> bool {
    match r.kind {
        ValueType::Scalar => r.scalar.is_none_or(|s| s.value <= 0.0005),
        ValueType::Ranges => r.ranges.as_ref().is_none_or(|x| x.range.is_empty()),
        ValueType::Set => r.set.as_ref().is_none_or(|x| x.item.is_empty()),
        ValueType::Text => true,
    }
}

/// A short human description: `cpus(role:svc, resource_id:abc):0.5`.
pub(crate) fn describe(r: &Resource) -> String {
    let mut tags = Vec::new();
    if let Some(res) = r.reservation() {
        let kind = match res.kind {
            ReservationType::Static => "static",
            ReservationType::Dynamic => "dynamic",
        };
        tags.push(format!("{kind} role:{}", res.role));
        if let Some(id) = r.resource_id() {
            tags.push(format!("resource_id:{id}"));
        }
    }
    if let Some(d) = &r.disk {
        if let Some(s) = &d.source
            && s.kind == DiskSourceType::Mount
        {
            let root = s.mount.as_ref().map_or("?", |m| m.root.as_str());
            tags.push(format!("MOUNT {root}"));
        }
        if let Some(p) = &d.persistence {
            tags.push(format!("volume:{}", p.id));
        }
    }
    let value = match r.kind {
        ValueType::Scalar => format!("{}", r.scalar_value()),
        ValueType::Ranges => {
            let rs: Vec<String> = r
                .ranges
                .as_ref()
                .map(|x| {
                    x.range
                        .iter()
                        .map(|q| {
                            if q.begin == q.end {
                                q.begin.to_string()
                            } else {
                                format!("{}-{}", q.begin, q.end)
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("[{}]", rs.join(","))
        }
        ValueType::Set => format!(
            "{{{}}}",
            r.set.as_ref().map(|s| s.item.join(",")).unwrap_or_default()
        ),
        ValueType::Text => String::new(),
    };
    if tags.is_empty() {
        format!("{}:{value}", r.name)
    } else {
        format!("{}({}):{value}", r.name, tags.join(", "))
    }
}

/// A normalized list of resource buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resources(pub Vec<Resource>);

impl Resources {
    /// Builds a normalized list from arbitrary resources.
    pub(crate) fn from_list(list: &[Resource]) -> Self {
        let mut out = Resources::default();
        for r in list {
            out.add(r);
        }
        out
    }

    /// Adds a resource, merging it into its bucket.
    pub(crate) fn add(&mut self, r: &Resource) {
        let r = normalize(r);
        if is_empty(&r) && !is_whole(&r) {
            return;
        }
        if !is_whole(&r)
            && let Some(b) = self.0.iter_mut().find(|b| same_bucket(b, &r))
        {
            match r.kind {
                ValueType::Scalar => {
                    let v = round(b.scalar_value() + r.scalar_value());
                    b.scalar = Some(Scalar { value: v });
                }
                ValueType::Ranges => {
                    let mut all = b.ranges.take().unwrap_or_default().range;
                    all.extend(r.ranges.map(|x| x.range).unwrap_or_default());
                    b.ranges = Some(Box::new(Ranges {
                        range: merge_ranges(all),
                    }));
                }
                ValueType::Set => {
                    let set = b.set.get_or_insert_with(Default::default);
                    set.item.extend(r.set.map(|s| s.item).unwrap_or_default());
                    set.item.sort();
                    set.item.dedup();
                }
                ValueType::Text => {}
            }
            return;
        }
        self.0.push(r);
    }

    /// Takes `r` out of its bucket.
    ///
    /// # Errors
    /// A description of what is missing.
    pub(crate) fn subtract(&mut self, r: &Resource) -> Result<(), String> {
        let r = normalize(r);
        if is_empty(&r) && !is_whole(&r) {
            return Ok(());
        }
        let Some(idx) = self.0.iter().position(|b| same_bucket(b, &r)) else {
            return Err(format!("{} is not available", describe(&r)));
        };
        let b = &mut self.0[idx];
        let whole = is_whole(b);
        match r.kind {
            ValueType::Scalar => {
                let have = b.scalar_value();
                let want = r.scalar_value();
                if whole && (have - want).abs() > 0.0005 {
                    return Err(format!(
                        "{} must be used whole ({have} MB), not {want}",
                        describe(b)
                    ));
                }
                if want > have + 0.0005 {
                    return Err(format!(
                        "{} is not available: only {have} {} left in that bucket",
                        describe(&r),
                        r.name
                    ));
                }
                let left = round(have - want);
                if left <= 0.0005 {
                    self.0.remove(idx);
                } else {
                    b.scalar = Some(Scalar { value: left });
                }
            }
            ValueType::Ranges => {
                let have = b.ranges.clone().unwrap_or_default().range;
                let want = r.ranges.clone().unwrap_or_default().range;
                if !ranges_contain(&have, &want) {
                    return Err(format!(
                        "{} is not available (have {})",
                        describe(&r),
                        describe(b)
                    ));
                }
                let left = ranges_subtract(&have, &want);
                if left.is_empty() {
                    self.0.remove(idx);
                } else {
                    b.ranges = Some(Box::new(Ranges { range: left }));
                }
            }
            ValueType::Set => {
                let have = b.set.clone().unwrap_or_default().item;
                let want = r.set.clone().unwrap_or_default().item;
                if !want.iter().all(|w| have.contains(w)) {
                    return Err(format!("{} is not available", describe(&r)));
                }
                let left: Vec<String> = have.into_iter().filter(|h| !want.contains(h)).collect();
                if left.is_empty() {
                    self.0.remove(idx);
                } else if let Some(s) = &mut b.set {
                    s.item = left;
                }
            }
            ValueType::Text => {}
        }
        Ok(())
    }

    /// Whether every resource of `other` is in `self`.
    pub(crate) fn contains_all(&self, other: &[Resource]) -> bool {
        let mut copy = self.clone();
        other.iter().all(|r| copy.subtract(r).is_ok())
    }

    /// Whether the list is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sum of the scalar `name` over the buckets accepted by `pred`.
    pub(crate) fn scalar_sum(&self, name: &str, pred: impl Fn(&Resource) -> bool) -> f64 {
        round(
            self.0
                .iter()
                .filter(|r| r.name == name && pred(r))
                .map(Resource::scalar_value)
                .sum(),
        )
    }

    /// All ranges of `name` over the buckets accepted by `pred`.
    pub(crate) fn ranges_of(&self, name: &str, pred: impl Fn(&Resource) -> bool) -> Vec<Range> {
        merge_ranges(
            self.0
                .iter()
                .filter(|r| r.name == name && pred(r))
                .flat_map(|r| r.ranges.clone().unwrap_or_default().range)
                .collect(),
        )
    }
}

/// The resource with its current (last) reservation popped: what RESERVE consumed and
/// UNRESERVE gives back.
pub(crate) fn pop_reservation(r: &Resource) -> Resource {
    let mut p = normalize(r);
    p.reservations.pop();
    p
}

/// The resource without persistence and volume: what CREATE consumed and DESTROY gives back.
pub(crate) fn strip_volume(r: &Resource) -> Resource {
    let mut p = normalize(r);
    if let Some(d) = &mut p.disk {
        d.persistence = None;
        d.volume = None;
    }
    normalize(&p)
}

/// What a checkpointed resource (dynamic reservation or volume) was carved from: the
/// resource with its volume stripped and every DYNAMIC reservation popped.
pub(crate) fn base_form(r: &Resource) -> Resource {
    let mut p = strip_volume(r);
    while p
        .reservations
        .last()
        .is_some_and(|x| x.kind == ReservationType::Dynamic)
    {
        p.reservations.pop();
    }
    p
}

/// Whether the bucket differs from what the agents file describes (and so must be
/// checkpointed): it has a dynamic reservation or a persistent volume.
pub(crate) fn is_checkpointed(r: &Resource) -> bool {
    r.persistence_id().is_some()
        || r.reservations
            .iter()
            .any(|x| x.kind == ReservationType::Dynamic)
}

/// Whether a resource reserved for `role` may be offered to a framework with `roles`
/// (the role itself or one of its sub-roles `role/...`).
pub(crate) fn role_matches(reservation: Option<&ReservationInfo>, roles: &[String]) -> bool {
    match reservation {
        None => true,
        Some(res) => roles.iter().any(|f| {
            f == res.role
                || (f.len() > res.role.len()
                    && f.starts_with(res.role.as_str())
                    && f.as_bytes()[res.role.len()] == b'/')
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_mesos::{Label, LabelsHash, Persistence, Volume, VolumeMode};

    fn reserved(mut r: Resource, id: &str) -> Resource {
        r.reservations.push(ReservationInfo {
            kind: ReservationType::Dynamic,
            role: "svc".into(),
            principal: Some("p".into()),
            labels: Some(LabelsHash {
                labels: vec![Label {
                    key: "resource_id".into(),
                    value: id.into(),
                }],
            }),
        });
        r
    }

    #[test]
    fn scalars_merge_and_split() {
        let mut rs = Resources::default();
        rs.add(&Resource::scalar("cpus", 1.0));
        rs.add(&Resource::scalar("cpus", 0.5));
        assert_eq!(rs.0.len(), 1);
        rs.subtract(&Resource::scalar("cpus", 0.2)).unwrap();
        assert!((rs.scalar_sum("cpus", |_| true) - 1.3).abs() < 1e-9);
        assert!(rs.subtract(&Resource::scalar("cpus", 2.0)).is_err());
        rs.add(&reserved(Resource::scalar("cpus", 0.5), "a"));
        rs.add(&reserved(Resource::scalar("cpus", 0.5), "a"));
        assert_eq!(rs.0.len(), 2);
        rs.subtract(&reserved(Resource::scalar("cpus", 0.7), "a"))
            .unwrap();
        assert!(
            rs.subtract(&reserved(Resource::scalar("cpus", 0.1), "b"))
                .is_err()
        );
    }

    #[test]
    fn ranges_subtract_and_union() {
        let mut rs = Resources::from_list(&[Resource::ranges(
            "ports",
            vec![Range { begin: 10, end: 20 }],
        )]);
        rs.subtract(&Resource::ranges(
            "ports",
            vec![Range { begin: 12, end: 12 }],
        ))
        .unwrap();
        assert_eq!(
            rs.ranges_of("ports", |_| true),
            vec![Range { begin: 10, end: 11 }, Range { begin: 13, end: 20 }]
        );
        assert!(
            rs.subtract(&Resource::ranges(
                "ports",
                vec![Range { begin: 12, end: 12 }]
            ))
            .is_err()
        );
        rs.add(&Resource::ranges(
            "ports",
            vec![Range { begin: 12, end: 12 }],
        ));
        assert_eq!(
            rs.ranges_of("ports", |_| true),
            vec![Range { begin: 10, end: 20 }]
        );
    }

    #[test]
    fn volumes_are_whole() {
        let mut v = reserved(Resource::scalar("disk", 10.0), "v");
        v.disk = Some(Box::new(DiskInfo {
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
        let mut rs = Resources::from_list(std::slice::from_ref(&v));
        let mut half = v.clone();
        half.scalar = Some(Scalar { value: 5.0 });
        assert!(rs.subtract(&half).is_err());
        rs.subtract(&v).unwrap();
        assert!(rs.is_empty());
        assert_eq!(base_form(&v), Resource::scalar("disk", 10.0));
    }

    #[test]
    fn roles_match_hierarchically() {
        let res = ReservationInfo {
            kind: ReservationType::Static,
            role: "slave_public".into(),
            principal: None,
            labels: None,
        };
        assert!(role_matches(Some(&res), &["slave_public/svc".to_owned()]));
        assert!(!role_matches(Some(&res), &["slave_publicx".to_owned()]));
        assert!(role_matches(None, &["x".to_owned()]));
    }
}
