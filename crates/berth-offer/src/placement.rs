//! Placement semantics: what the constraints of a [`PlacementRule`] mean against an offer.
//!
//! The syntax lives in `berth_spec::placement`; this module judges offers with it:
//!
//! ```text
//!  stored TaskInfos ──labels──▶ PlacementIndex (per pod type: per-key task counters,
//!        ▲                        a histogram of counts, tasks per pod instance)
//!        │ add_task / remove_task        │ O(1) / O(log n) lookups per constraint
//!  placements made by the scheduler      ▼
//!                          evaluate_placement(rule, pod instance, offer) ──▶ Outcome tree
//! ```
//!
//! # Counting
//! Counting operators (`UNIQUE`, `MAX_PER`, `GROUP_BY`, `CLUSTER` without a value) count the
//! stored tasks of the **same pod type** whose key (hostname, zone, region or attribute value)
//! equals the offer's, **excluding the tasks of the pod instance being placed** (stale copies
//! of a pod being replaced). Counts are per task, so a pod with two tasks counts 2. berth
//! matches the pod type exactly (the `task_type` label); the reference system matched task
//! names with a `<type>-.*` regex, which also caught pod types sharing a prefix (`hello` and
//! `hello-world`) — berth does not copy that quirk.
//!
//! - `UNIQUE` is `MAX_PER 1`; `MAX_PER n` passes while `1 + count ≤ n`.
//! - `CLUSTER` without a value passes when no task of the type is placed yet, or all are on
//!   the offer's key.
//! - `GROUP_BY` passes when the offer key's count is at the minimum over the known keys
//!   (keys with tasks, plus the offer's key); with `n`, while fewer than `n` keys are in use
//!   only keys without tasks pass. The minimum comes from a histogram of counts, so a check
//!   costs O(log n), not a scan.
//!
//! # Matching
//! Attribute values are compared as strings: TEXT as-is, SCALAR as `%.3f`, RANGES as
//! `[a-b,c-d]`, SET as `{a,b}`. `IS`/`CLUSTER v` on a SCALAR attribute compare numerically at
//! three decimals (`2` equals `2.000`). `LIKE`/`UNLIKE` are full matches of the regex against
//! the hostname, zone, region, or the attribute *value*.
//!
//! Offers without a zone/region fail every zone/region constraint. An offer lacking an
//! attribute fails every constraint on it except `IS_NOT` and `UNLIKE`, which pass (the
//! attribute is certainly not that value). An [`PlacementRule::Invalid`] rule fails every offer
//! with its parse error as the reason.
//!
//! Regexes are compiled once per pattern and cached in the index (not per offer).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use berth_spec::placement::{Constraint, PlacementField, PlacementOperator, PlacementRule};
use regex::Regex;

use crate::error::OfferError;
use crate::outcome::{Outcome, stage};
use crate::ranges;
use berth_mesos::{Attribute, Offer, TaskInfo, ValueType, task_labels};

/// Where one task is placed: what the counting constraints need to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlacement {
    /// Task name (`hello-0-server`), the key for [`PlacementIndex::remove_task`].
    pub task_name: String,
    /// Pod type (`hello`).
    pub pod_type: String,
    /// Pod instance index.
    pub index: u32,
    /// Agent hostname.
    pub hostname: String,
    /// Fault-domain zone, if any.
    pub zone: Option<String>,
    /// Fault-domain region, if any.
    pub region: Option<String>,
    /// Agent attributes as `(name, value)` in the string format of the module docs.
    pub attributes: Vec<(String, String)>,
}

impl TaskPlacement {
    /// Reads a stored TaskInfo's labels: `task_type`, `index`, `offer_hostname` (required),
    /// `offer_zone`, `offer_region`, `offer_attributes` (`name:value;name:value`, optional).
    ///
    /// # Errors
    /// [`OfferError::MissingLabel`] / [`OfferError::InvalidLabel`] for unreadable labels.
    pub fn from_task_info(task: &TaskInfo) -> Result<Self, OfferError> {
        let get = |label: &'static str| {
            task.labels
                .get(label)
                .ok_or_else(|| OfferError::MissingLabel {
                    task: task.name.clone(),
                    label,
                })
        };
        let pod_type = get(task_labels::TASK_TYPE)?;
        let index_text = get(task_labels::INDEX)?;
        let index = index_text
            .parse::<u32>()
            .map_err(|_| OfferError::InvalidLabel {
                task: task.name.clone(),
                label: task_labels::INDEX,
                value: index_text.to_owned(),
            })?;
        let hostname = get(task_labels::OFFER_HOSTNAME)?;
        let attributes = task
            .labels
            .get(task_labels::OFFER_ATTRIBUTES)
            .map(parse_attributes)
            .unwrap_or_default();
        Ok(Self {
            task_name: task.name.clone(),
            pod_type: pod_type.to_owned(),
            index,
            hostname: hostname.to_owned(),
            zone: task.labels.get(task_labels::OFFER_ZONE).map(str::to_owned),
            region: task
                .labels
                .get(task_labels::OFFER_REGION)
                .map(str::to_owned),
            attributes,
        })
    }

    /// The placement of a task of `pod_type`-`index` on `offer`'s agent.
    #[must_use]
    pub fn from_offer(task_name: &str, pod_type: &str, index: u32, offer: &Offer) -> Self {
        Self {
            task_name: task_name.to_owned(),
            pod_type: pod_type.to_owned(),
            index,
            hostname: offer.hostname.clone(),
            zone: offer.zone().map(str::to_owned),
            region: offer.region().map(str::to_owned),
            attributes: offer
                .attributes
                .iter()
                .map(|a| (a.name.clone(), attribute_value(a).into_owned()))
                .collect(),
        }
    }

    fn key(&self, field: &PlacementField) -> Option<&str> {
        match field {
            PlacementField::Hostname => Some(&self.hostname),
            PlacementField::Zone => self.zone.as_deref(),
            PlacementField::Region => self.region.as_deref(),
            PlacementField::Attribute(name) => self
                .attributes
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
        }
    }
}

/// Parses an `offer_attributes` label (`name:value;name:value`). Values may contain `:`.
fn parse_attributes(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|kv| kv.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// An attribute's value as a string: TEXT as-is, SCALAR `%.3f`, RANGES `[a-b,c-d]`, SET `{a,b}`.
#[must_use]
pub fn attribute_value(attr: &Attribute) -> Cow<'_, str> {
    match attr.kind {
        ValueType::Text => Cow::Borrowed(attr.text.as_ref().map_or("", |t| t.value.as_str())),
        ValueType::Scalar => Cow::Owned(format!("{:.3}", attr.scalar.map_or(0.0, |s| s.value))),
        ValueType::Ranges => Cow::Owned(ranges::format(
            attr.ranges.as_ref().map_or(&[][..], |r| &r.range[..]),
        )),
        ValueType::Set => {
            let items = attr.set.as_ref().map_or(&[][..], |s| &s.item[..]);
            Cow::Owned(format!("{{{}}}", items.join(",")))
        }
    }
}

/// The `offer_attributes` label of a TaskInfo placed on `offer`: `name:value;name:value`.
#[must_use]
pub fn offer_attributes_label(offer: &Offer) -> String {
    let mut s = String::new();
    for (i, a) in offer.attributes.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(&a.name);
        s.push(':');
        s.push_str(&attribute_value(a));
    }
    s
}

/// Task counts per key, plus a histogram `count → number of keys with that count`.
#[derive(Debug, Clone, Default)]
struct KeyCounter {
    counts: HashMap<String, u32>,
    hist: BTreeMap<u32, u32>,
}

impl KeyCounter {
    fn get(&self, key: &str) -> u32 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    fn hist_inc(&mut self, level: u32) {
        *self.hist.entry(level).or_insert(0) += 1;
    }

    fn hist_dec(&mut self, level: u32) {
        if let Some(m) = self.hist.get_mut(&level) {
            *m = m.saturating_sub(1);
            if *m == 0 {
                self.hist.remove(&level);
            }
        }
    }

    fn add(&mut self, key: &str) {
        let old = match self.counts.get_mut(key) {
            Some(c) => {
                let old = *c;
                *c = c.saturating_add(1);
                old
            }
            None => {
                self.counts.insert(key.to_owned(), 1);
                0
            }
        };
        if old > 0 {
            self.hist_dec(old);
        }
        self.hist_inc(old.saturating_add(1));
    }

    fn remove(&mut self, key: &str) {
        let Some(c) = self.counts.get_mut(key) else {
            return;
        };
        let old = *c;
        if old > 1 {
            *c = old - 1;
            self.hist_dec(old);
            self.hist_inc(old - 1);
        } else {
            self.counts.remove(key);
            self.hist_dec(old);
        }
    }
}

/// Counters of one pod type.
#[derive(Debug, Clone, Default)]
struct PodTypeIndex {
    hostname: KeyCounter,
    zone: KeyCounter,
    region: KeyCounter,
    attributes: HashMap<String, KeyCounter>,
    instances: HashMap<u32, Vec<TaskPlacement>>,
}

impl PodTypeIndex {
    fn counter(&self, field: &PlacementField) -> Option<&KeyCounter> {
        match field {
            PlacementField::Hostname => Some(&self.hostname),
            PlacementField::Zone => Some(&self.zone),
            PlacementField::Region => Some(&self.region),
            PlacementField::Attribute(name) => self.attributes.get(name),
        }
    }

    fn count(&mut self, t: &TaskPlacement, add: bool) {
        let apply = |c: &mut KeyCounter, key: &str| {
            if add { c.add(key) } else { c.remove(key) }
        };
        apply(&mut self.hostname, &t.hostname);
        if let Some(z) = &t.zone {
            apply(&mut self.zone, z);
        }
        if let Some(r) = &t.region {
            apply(&mut self.region, r);
        }
        for (name, value) in &t.attributes {
            let c = match self.attributes.get_mut(name) {
                Some(c) => c,
                None => self.attributes.entry(name.clone()).or_default(),
            };
            apply(c, value);
        }
    }
}

type RegexCache = HashMap<String, Result<Arc<Regex>, String>>;

/// Per-pod-type task counters used by the counting constraints; kept up to date by the
/// scheduler as tasks are placed and removed, so that no offer evaluation rescans all tasks.
#[derive(Debug, Default)]
pub struct PlacementIndex {
    pod_types: HashMap<String, PodTypeIndex>,
    tasks: HashMap<String, (String, u32)>,
    regexes: RwLock<RegexCache>,
}

impl Clone for PlacementIndex {
    fn clone(&self) -> Self {
        let regexes = self
            .regexes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Self {
            pod_types: self.pod_types.clone(),
            tasks: self.tasks.clone(),
            regexes: RwLock::new(regexes),
        }
    }
}

/// A region every placement of the service must respect (the service's pinned region, or the
/// scheduler's local region when the pod's rule does not mention `@region`). Offers without a
/// region pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionPin<'a> {
    /// The required region.
    pub region: &'a str,
    /// `true` for the service's configured region, `false` for the local region.
    pub configured: bool,
}

impl PlacementIndex {
    /// An empty index.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of stored TaskInfos; returns the errors of TaskInfos that could not be read
    /// (those are left out).
    pub fn from_task_infos<'t>(
        tasks: impl IntoIterator<Item = &'t TaskInfo>,
    ) -> (Self, Vec<OfferError>) {
        let mut index = Self::new();
        let mut errors = Vec::new();
        for t in tasks {
            if let Err(e) = index.add_task_info(t) {
                errors.push(e);
            }
        }
        (index, errors)
    }

    /// Adds (or replaces, by task name) a stored TaskInfo.
    ///
    /// # Errors
    /// When its placement labels cannot be read; the index is then unchanged.
    pub fn add_task_info(&mut self, task: &TaskInfo) -> Result<(), OfferError> {
        let placement = TaskPlacement::from_task_info(task)?;
        self.add_task(placement);
        Ok(())
    }

    /// Adds a task (replacing an earlier entry of the same task name).
    pub fn add_task(&mut self, task: TaskPlacement) {
        self.remove_task(&task.task_name);
        self.tasks
            .insert(task.task_name.clone(), (task.pod_type.clone(), task.index));
        let pt = match self.pod_types.get_mut(&task.pod_type) {
            Some(pt) => pt,
            None => self.pod_types.entry(task.pod_type.clone()).or_default(),
        };
        pt.count(&task, true);
        let list = pt.instances.entry(task.index).or_default();
        // Most pods have one task: room for exactly the tasks added, not four.
        list.reserve_exact(1);
        list.push(task);
    }

    /// Removes a task by name; returns whether it was known.
    pub fn remove_task(&mut self, task_name: &str) -> bool {
        let Some((pod_type, index)) = self.tasks.remove(task_name) else {
            return false;
        };
        let Some(pt) = self.pod_types.get_mut(&pod_type) else {
            return true;
        };
        let mut removed = None;
        if let Some(list) = pt.instances.get_mut(&index) {
            if let Some(pos) = list.iter().position(|t| t.task_name == task_name) {
                removed = Some(list.swap_remove(pos));
            }
            if list.is_empty() {
                pt.instances.remove(&index);
            }
        }
        if let Some(t) = removed {
            pt.count(&t, false);
        }
        true
    }

    /// Number of tasks in the index.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the index holds no task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Number of tasks of `pod_type` whose `field` equals `key` (all instances).
    #[must_use]
    pub fn count(&self, pod_type: &str, field: &PlacementField, key: &str) -> u32 {
        self.pod_types
            .get(pod_type)
            .and_then(|pt| pt.counter(field))
            .map_or(0, |c| c.get(key))
    }

    /// Compiles (and caches) the regexes of a rule ahead of the first offer; returns the
    /// patterns that do not compile, with the error.
    pub fn precompile(&self, rule: &PlacementRule) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        if let PlacementRule::Constraints { constraints, .. } = rule {
            for c in constraints {
                if let PlacementOperator::Like(re) | PlacementOperator::Unlike(re) = &c.operator
                    && let Err(e) = self.regex(re)
                {
                    bad.push((re.clone(), e));
                }
            }
        }
        bad
    }

    fn regex(&self, pattern: &str) -> Result<Arc<Regex>, String> {
        {
            let cache = self
                .regexes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(r) = cache.get(pattern) {
                return r.clone();
            }
        }
        let compiled = Regex::new(&format!("^(?:{pattern})$"))
            .map(Arc::new)
            .map_err(|e| e.to_string());
        let mut cache = self
            .regexes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= 4096 {
            cache.clear(); // patterns come from specs; this only bounds pathological growth
        }
        cache.insert(pattern.to_owned(), compiled.clone());
        compiled
    }

    /// The placement stage: judges `offer` for instance `index` of `pod_type` against `rule`
    /// (one child outcome per constraint) and, when given, the region pin (one more child).
    #[must_use]
    pub fn evaluate_placement(
        &self,
        rule: Option<&PlacementRule>,
        region: Option<RegionPin<'_>>,
        pod_type: &str,
        index: u32,
        offer: &Offer,
    ) -> Outcome {
        let pt = self.pod_types.get(pod_type);
        let instance = pt
            .and_then(|p| p.instances.get(&index))
            .map_or(&[][..], |v| &v[..]);
        let ctx = Ctx {
            index: self,
            pt,
            pod_type,
            instance,
            offer,
        };
        let mut children = Vec::new();
        let what = match rule {
            Some(PlacementRule::Invalid { source, error }) => {
                return Outcome::fail(
                    stage::PLACEMENT,
                    format!("Invalid placement rule '{source}': {error}"),
                );
            }
            Some(PlacementRule::Constraints {
                source,
                constraints,
            }) => {
                children.reserve(constraints.len() + 1);
                children.extend(constraints.iter().map(|c| ctx.constraint(c)));
                Cow::Owned(format!("placement rule '{source}'"))
            }
            None => Cow::Borrowed("the region requirement"),
        };
        if let Some(pin) = region {
            children.push(region_outcome(pin, offer));
        }
        let failed = children.iter().filter(|c| !c.pass).count();
        let reason = if failed == 0 {
            format!("Offer passes {what}")
        } else {
            format!(
                "Offer fails {failed} of {} constraints of {what}",
                children.len()
            )
        };
        Outcome::new(failed == 0, stage::PLACEMENT, reason).with_children(children)
    }
}

fn region_outcome(pin: RegionPin<'_>, offer: &Offer) -> Outcome {
    let source = if pin.configured {
        "RegionRule"
    } else {
        "IsLocalRegionRule"
    };
    let which = if pin.configured {
        "the service's region"
    } else {
        "the scheduler's local region"
    };
    match offer.region() {
        None => Outcome::pass(source, "Offer has no region".to_owned()),
        Some(r) if r == pin.region => {
            Outcome::pass(source, format!("Offer region '{r}' is {which}"))
        }
        Some(r) => Outcome::fail(
            source,
            format!("Offer region '{r}' is not {which} '{}'", pin.region),
        ),
    }
}

/// `hostname:UNIQUE`, `@zone:GROUP_BY:3`, `rack:LIKE:r[12]`.
#[must_use]
pub fn constraint_label(c: &Constraint) -> String {
    ConstraintLabel(c).to_string()
}

/// [`constraint_label`] as a `Display` (no allocation).
struct ConstraintLabel<'a>(&'a Constraint);

impl std::fmt::Display for ConstraintLabel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.0;
        let field: &str = match &c.field {
            PlacementField::Hostname => "hostname",
            PlacementField::Zone => "@zone",
            PlacementField::Region => "@region",
            PlacementField::Attribute(n) => n,
        };
        match &c.operator {
            PlacementOperator::Unique => write!(f, "{field}:UNIQUE"),
            PlacementOperator::MaxPer(n) => write!(f, "{field}:MAX_PER:{n}"),
            PlacementOperator::Cluster(None) => write!(f, "{field}:CLUSTER"),
            PlacementOperator::Cluster(Some(v)) => write!(f, "{field}:CLUSTER:{v}"),
            PlacementOperator::Is(v) => write!(f, "{field}:IS:{v}"),
            PlacementOperator::IsNot(v) => write!(f, "{field}:IS_NOT:{v}"),
            PlacementOperator::Like(v) => write!(f, "{field}:LIKE:{v}"),
            PlacementOperator::Unlike(v) => write!(f, "{field}:UNLIKE:{v}"),
            PlacementOperator::GroupBy(None) => write!(f, "{field}:GROUP_BY"),
            PlacementOperator::GroupBy(Some(n)) => write!(f, "{field}:GROUP_BY:{n}"),
        }
    }
}

fn field_desc(field: &PlacementField) -> Cow<'_, str> {
    match field {
        PlacementField::Hostname => Cow::Borrowed("hostname"),
        PlacementField::Zone => Cow::Borrowed("zone"),
        PlacementField::Region => Cow::Borrowed("region"),
        PlacementField::Attribute(n) => Cow::Borrowed(n.as_str()),
    }
}

/// `1 task`, `2 tasks` (no allocation).
struct Plural<'a>(u32, &'a str);

impl std::fmt::Display for Plural<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 1 {
            write!(f, "1 {}", self.1)
        } else {
            write!(f, "{} {}s", self.0, self.1)
        }
    }
}

struct Ctx<'x> {
    index: &'x PlacementIndex,
    pt: Option<&'x PodTypeIndex>,
    pod_type: &'x str,
    instance: &'x [TaskPlacement],
    offer: &'x Offer,
}

/// A counter seen without the tasks of the instance being placed.
struct Adjusted<'x> {
    counter: Option<&'x KeyCounter>,
    /// `(key, tasks of the instance with that key)`, each key once.
    removed: Vec<(&'x str, u32)>,
}

impl Adjusted<'_> {
    fn raw(&self, key: &str) -> u32 {
        self.counter.map_or(0, |c| c.get(key))
    }

    fn get(&self, key: &str) -> u32 {
        let minus = self
            .removed
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, n)| *n);
        self.raw(key).saturating_sub(minus)
    }

    fn keys_in_use(&self) -> usize {
        let total = self.counter.map_or(0, |c| c.counts.len());
        let emptied = self
            .removed
            .iter()
            .filter(|(k, n)| self.raw(k) > 0 && self.raw(k) <= *n)
            .count();
        total.saturating_sub(emptied)
    }

    /// Minimum count over keys with tasks and the offer's key (count `offer_count`).
    fn min_known(&self, offer_count: u32) -> u32 {
        let mut min = offer_count;
        if let Some(c) = self.counter {
            for (&level, &mult) in &c.hist {
                if level >= min {
                    break;
                }
                let moved = self
                    .removed
                    .iter()
                    .filter(|(k, _)| c.get(k) == level)
                    .count() as u32;
                if mult > moved {
                    min = level;
                    break;
                }
            }
        }
        for (k, _) in &self.removed {
            let a = self.get(k);
            if a > 0 && a < min {
                min = a;
            }
        }
        min
    }

    /// Some key other than `key` that has tasks.
    fn other_key(&self, key: &str) -> Option<&str> {
        self.counter?
            .counts
            .keys()
            .map(String::as_str)
            .find(|k| *k != key && self.get(k) > 0)
    }
}

impl<'x> Ctx<'x> {
    fn adjusted(&self, field: &PlacementField) -> Adjusted<'x> {
        let counter = self.pt.and_then(|p| p.counter(field));
        let mut removed: Vec<(&'x str, u32)> = Vec::new();
        for t in self.instance {
            if let Some(k) = t.key(field) {
                match removed.iter_mut().find(|(rk, _)| *rk == k) {
                    Some((_, n)) => *n += 1,
                    None => removed.push((k, 1)),
                }
            }
        }
        Adjusted { counter, removed }
    }

    fn offer_key(&self, field: &PlacementField) -> Option<Cow<'x, str>> {
        let offer = self.offer;
        match field {
            PlacementField::Hostname => Some(Cow::Borrowed(offer.hostname.as_str())),
            PlacementField::Zone => offer.zone().map(Cow::Borrowed),
            PlacementField::Region => offer.region().map(Cow::Borrowed),
            PlacementField::Attribute(name) => offer
                .attributes
                .iter()
                .find(|a| a.name == *name)
                .map(attribute_value),
        }
    }

    fn constraint(&self, c: &Constraint) -> Outcome {
        let label = ConstraintLabel(c);
        let source = match &c.operator {
            PlacementOperator::Unique => "UniqueRule",
            PlacementOperator::MaxPer(_) => "MaxPerRule",
            PlacementOperator::Cluster(_) => "ClusterRule",
            PlacementOperator::Is(_) => "IsRule",
            PlacementOperator::IsNot(_) => "IsNotRule",
            PlacementOperator::Like(_) => "LikeRule",
            PlacementOperator::Unlike(_) => "UnlikeRule",
            PlacementOperator::GroupBy(_) => "GroupByRule",
        };
        let field = field_desc(&c.field);
        let key = self.offer_key(&c.field);
        let Some(key) = key else {
            // Missing key: certainly "not v" for attributes; everything else fails.
            let negated = matches!(
                c.operator,
                PlacementOperator::IsNot(_) | PlacementOperator::Unlike(_)
            ) && matches!(c.field, PlacementField::Attribute(_));
            let missing = match &c.field {
                PlacementField::Attribute(n) => Cow::Owned(format!("attribute '{n}'")),
                _ => field,
            };
            return Outcome::new(negated, source, format!("{label}: offer has no {missing}"));
        };
        let pt = self.pod_type;
        let (pass, reason) = match &c.operator {
            PlacementOperator::Unique => self.max_per(&c.field, &key, 1, &field),
            PlacementOperator::MaxPer(n) => self.max_per(&c.field, &key, *n, &field),
            PlacementOperator::Cluster(Some(v)) | PlacementOperator::Is(v) => {
                if self.equals(&c.field, &key, v) {
                    (true, format!("{field} is '{key}'"))
                } else {
                    (false, format!("{field} is '{key}', not '{v}'"))
                }
            }
            PlacementOperator::IsNot(v) => {
                if self.equals(&c.field, &key, v) {
                    (false, format!("{field} is '{key}'"))
                } else {
                    (true, format!("{field} is '{key}', not '{v}'"))
                }
            }
            PlacementOperator::Like(re) | PlacementOperator::Unlike(re) => {
                let like = matches!(c.operator, PlacementOperator::Like(_));
                match self.index.regex(re) {
                    Err(e) => (false, format!("invalid regular expression '{re}': {e}")),
                    Ok(rx) => {
                        let m = rx.is_match(&key);
                        let verb = if m { "matches" } else { "does not match" };
                        (m == like, format!("{field} '{key}' {verb} '{re}'"))
                    }
                }
            }
            PlacementOperator::Cluster(None) => {
                let adj = self.adjusted(&c.field);
                let in_use = adj.keys_in_use();
                let here = adj.get(&key);
                if in_use == 0 {
                    (
                        true,
                        format!(
                            "no task of pod type '{pt}' is placed yet; this pod fixes the {field}"
                        ),
                    )
                } else if in_use == 1 && here > 0 {
                    (
                        true,
                        format!(
                            "every task of pod type '{pt}' placed so far ({here}) is on {field} '{key}'"
                        ),
                    )
                } else {
                    let other = adj.other_key(&key).unwrap_or("?");
                    (
                        false,
                        format!(
                            "tasks of pod type '{pt}' are clustered on {field} '{other}', not '{key}'"
                        ),
                    )
                }
            }
            PlacementOperator::GroupBy(n) => {
                let adj = self.adjusted(&c.field);
                let here = adj.get(&key);
                let in_use = adj.keys_in_use();
                let tasks = Plural(here, "task");
                match n {
                    Some(n) if in_use < *n as usize => {
                        if here == 0 {
                            (
                                true,
                                format!(
                                    "{field} '{key}' has no task of pod type '{pt}' and only {in_use} of {n} values are in use"
                                ),
                            )
                        } else {
                            (
                                false,
                                format!(
                                    "{field} '{key}' already has {tasks} of pod type '{pt}' while only {in_use} of {n} values are in use"
                                ),
                            )
                        }
                    }
                    _ => {
                        let min = adj.min_known(here);
                        if here <= min {
                            (
                                true,
                                format!(
                                    "{field} '{key}' has {tasks} of pod type '{pt}', the fewest of {} known values",
                                    in_use + usize::from(here == 0)
                                ),
                            )
                        } else {
                            (
                                false,
                                format!(
                                    "{field} '{key}' has {tasks} of pod type '{pt}' but another value has only {min}"
                                ),
                            )
                        }
                    }
                }
            }
        };
        Outcome::new(pass, source, format!("{label}: {reason}"))
    }

    fn max_per(&self, field: &PlacementField, key: &str, n: u32, desc: &str) -> (bool, String) {
        let here = self.adjusted(field).get(key);
        let pt = self.pod_type;
        let tasks = Plural(here, "task");
        if u64::from(here) < u64::from(n) {
            (
                true,
                format!("{desc} '{key}' has {tasks} of pod type '{pt}', at most {n} allowed"),
            )
        } else {
            (
                false,
                format!(
                    "{desc} '{key}' already has {tasks} of pod type '{pt}', at most {n} allowed"
                ),
            )
        }
    }

    fn equals(&self, field: &PlacementField, key: &str, value: &str) -> bool {
        if key == value {
            return true;
        }
        if let PlacementField::Attribute(name) = field {
            let scalar = self
                .offer
                .attributes
                .iter()
                .any(|a| a.name == *name && a.kind == ValueType::Scalar);
            if scalar && let Ok(v) = value.trim().parse::<f64>() {
                return format!("{v:.3}") == key;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests;
