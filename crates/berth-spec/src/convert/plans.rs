//! `plans`: each plan's strategy and phases, each phase's pod, strategy and custom `steps`.
//!
//! Phases are checked against the pods as written (their names, counts and task names), so that
//! plan checks do not depend on whether a pod itself converted cleanly.

use super::Converter;
use super::fields::join;
use super::values::Choice;
use crate::model::{PhaseSpec, PhaseStrategy, PlanSpec, PlanStrategy, StepsEntry, StepsKey};
use crate::yaml::{Node, NodeKind};

/// Keys of a plan.
const PLAN_KEYS: &[&str] = &["strategy", "phases"];
/// Keys of a phase.
const PHASE_KEYS: &[&str] = &["pod", "strategy", "steps"];

/// The strategies of a plan.
const PLAN_STRATEGIES: Choice<PlanStrategy> = Choice {
    what: "a plan strategy",
    options: &[
        ("serial", PlanStrategy::Serial),
        ("parallel", PlanStrategy::Parallel),
    ],
    extra: " (canary strategies are only allowed on phases)",
};
/// The strategies of a phase.
const PHASE_STRATEGIES: Choice<PhaseStrategy> = Choice {
    what: "a phase strategy",
    options: &[
        ("serial", PhaseStrategy::Serial),
        ("parallel", PhaseStrategy::Parallel),
        ("serial-canary", PhaseStrategy::SerialCanary),
        ("canary", PhaseStrategy::SerialCanary),
        ("parallel-canary", PhaseStrategy::ParallelCanary),
    ],
    extra: "",
};

/// A pod as written (before conversion).
pub(super) struct WrittenPod {
    name: String,
    count: Option<u32>,
    tasks: Vec<String>,
}

/// The pods of the `pods` mapping as written.
pub(super) fn written_pods(node: &Node) -> Vec<WrittenPod> {
    let NodeKind::Map(entries) = &node.kind else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_scalar()?.to_owned();
            let count = child(v, "count")
                .and_then(|c| c.as_scalar().and_then(|t| t.trim().parse::<u32>().ok()));
            let tasks = match child(v, "tasks").map(|t| &t.kind) {
                Some(NodeKind::Map(tasks)) => tasks
                    .iter()
                    .filter_map(|(k, _)| k.as_scalar().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            Some(WrittenPod { name, count, tasks })
        })
        .collect()
}

/// The value under `key` of a mapping node (first occurrence).
fn child<'n>(map: &'n Node, key: &str) -> Option<&'n Node> {
    match &map.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

impl Converter<'_> {
    /// The `plans` mapping (its key on `line`); when not empty it must hold a `deploy` plan.
    pub(super) fn plans(&mut self, node: &Node, line: usize, pods: &[WrittenPod]) -> Vec<PlanSpec> {
        let mut out = Vec::new();
        let Some(entries) = self.entries(node, "plans") else {
            return out;
        };
        if entries.is_empty() {
            return out;
        }
        if !entries.iter().any(|(name, _, _)| *name == "deploy") {
            let names: Vec<&str> = entries.iter().map(|(n, _, _)| *n).collect();
            self.err(
                line,
                "plans",
                None,
                format!(
                    "No deploy plan provided; a plans section must define a plan named deploy \
                     (found: {})",
                    names.join(", ")
                ),
            );
        }
        for (name, k, v) in entries {
            if let Some(plan) = self.plan(name, k, v, pods) {
                out.push(plan);
            }
        }
        out
    }

    /// One plan: its strategy (serial by default) and phases (at least one).
    fn plan(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
        pods: &[WrittenPod],
    ) -> Option<PlanSpec> {
        let ppath = join("plans", name);
        let pf = self.fields(node, &ppath, key.line, PLAN_KEYS, true)?;
        let strategy = self.choice_or(&pf, "strategy", &PLAN_STRATEGIES, PlanStrategy::Serial);
        let mut phases = Vec::new();
        if let Some(phases_node) = self.req(&pf, "phases", "a mapping of phases") {
            let phases_path = pf.path("phases");
            if let Some(phase_entries) = self.entries(phases_node, &phases_path) {
                if phase_entries.is_empty() {
                    self.err_at(
                        &pf,
                        "phases",
                        None,
                        "is empty; a plan needs at least one phase",
                    );
                }
                for (phase_name, pk, pv) in phase_entries {
                    if let Some(phase) = self.phase(phase_name, pk, pv, &phases_path, pods) {
                        phases.push(phase);
                    }
                }
            }
        }
        Some(PlanSpec {
            name: name.to_owned(),
            strategy: strategy?,
            phases,
        })
    }

    /// One phase: the pod it deploys (one of `pods`), its strategy and custom steps.
    fn phase(
        &mut self,
        name: &str,
        key: &Node,
        node: &Node,
        phases_path: &str,
        pods: &[WrittenPod],
    ) -> Option<PhaseSpec> {
        let path = join(phases_path, name);
        let f = self.fields(node, &path, key.line, PHASE_KEYS, true)?;
        let pod_name = self.req_string(&f, "pod", "the pod type the phase deploys");
        let pod = pod_name.as_ref().and_then(|p| {
            let found = pods.iter().find(|s| &s.name == p);
            if found.is_none() {
                let known: Vec<&str> = pods.iter().map(|s| s.name.as_str()).collect();
                self.err_at(
                    &f,
                    "pod",
                    Some(p),
                    format!("is not a pod of this service; pods: {}", known.join(", ")),
                );
            }
            found
        });
        let strategy = self.choice_or(&f, "strategy", &PHASE_STRATEGIES, PhaseStrategy::Serial);
        let steps = match f.get("steps") {
            Some(n) => Some(self.steps(n, &f.path("steps"), f.key_line("steps"), pod)?),
            None => None,
        };
        Some(PhaseSpec {
            name: name.to_owned(),
            pod: pod_name?,
            strategy: strategy?,
            steps,
        })
    }

    /// A phase's `steps` at `path` (its key on `line`): one entry per pod index (or default),
    /// each a list of steps, each a list of task names of `pod`. Every pod index needs an entry
    /// unless there is a default one. `None` when anything is wrong (all of it reported).
    fn steps(
        &mut self,
        node: &Node,
        path: &str,
        line: usize,
        pod: Option<&WrittenPod>,
    ) -> Option<Vec<StepsEntry>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_kind(node, path, "a list of entries like \"- default: [[task]]\"");
            return None;
        };
        let mut out: Vec<StepsEntry> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}[{i}]");
            if let Some(entry) = self.steps_entry(item, &ipath, &out, pod, &mut ok) {
                out.push(entry);
            }
        }
        if let Some(pod) = pod
            && let Some(count) = pod.count
            && ok
            && !out.iter().any(|e| e.key == StepsKey::Default)
        {
            for index in 0..count {
                if !out.iter().any(|e| e.key == StepsKey::Index(index)) {
                    self.err(
                        line,
                        path,
                        None,
                        format!(
                            "has no entry for pod index {index} and no default entry; pod {} has \
                                 {count} instance{}",
                            pod.name,
                            if count == 1 { "" } else { "s" }
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// One entry of `steps` at `path` (`earlier`: the entries before it). `None` when the
    /// entry is rejected; a problem in one of its steps keeps the entry (its key still counts)
    /// but clears `ok`.
    fn steps_entry(
        &mut self,
        item: &Node,
        path: &str,
        earlier: &[StepsEntry],
        pod: Option<&WrittenPod>,
        ok: &mut bool,
    ) -> Option<StepsEntry> {
        let single = match &item.kind {
            NodeKind::Map(entries) if entries.len() == 1 => entries.first(),
            _ => None,
        };
        let Some((k, v)) = single else {
            self.err(
                item.line,
                path,
                None,
                "expected a one-key mapping: a pod index or default, then a list of steps, e.g. \
                 \"- default: [[first], [second]]\"",
            );
            *ok = false;
            return None;
        };
        let key_text = k.as_scalar().unwrap_or_default().trim().to_owned();
        let epath = format!("{path}.{key_text}");
        let key = if key_text == "default" {
            StepsKey::Default
        } else if let Ok(n) = key_text.parse::<u32>() {
            StepsKey::Index(n)
        } else {
            self.err(
                k.line,
                path,
                Some(&key_text),
                "is not a pod index or default; expected an integer ≥ 0 or default",
            );
            *ok = false;
            return None;
        };
        if earlier.iter().any(|e| e.key == key) {
            self.err(
                k.line,
                &epath,
                None,
                "has an entry already; each pod index (and default) may appear once",
            );
            *ok = false;
            return None;
        }
        let NodeKind::Seq(steps) = &v.kind else {
            self.wrong_kind(v, &epath, "a list of steps like [[first], [second]]");
            *ok = false;
            return None;
        };
        let mut groups = Vec::new();
        for (j, step) in steps.iter().enumerate() {
            if let Some(names) = self.step(step, &format!("{epath}[{j}]"), pod, ok) {
                groups.push(names);
            }
        }
        Some(StepsEntry { key, tasks: groups })
    }

    /// One step at `path`: the names of the tasks it launches together (unknown ones reported
    /// and left out, clearing `ok`). `None` when the step is rejected.
    fn step(
        &mut self,
        step: &Node,
        path: &str,
        pod: Option<&WrittenPod>,
        ok: &mut bool,
    ) -> Option<Vec<String>> {
        let NodeKind::Seq(tasks) = &step.kind else {
            self.wrong_kind(step, path, "a list of task names like [server]");
            *ok = false;
            return None;
        };
        if tasks.is_empty() {
            self.err(
                step.line,
                path,
                None,
                "is an empty step; a step launches at least one task",
            );
            *ok = false;
            return None;
        }
        let mut names = Vec::new();
        for task in tasks {
            let Some(t) = task.as_scalar() else {
                self.wrong_kind(task, path, "a task name");
                *ok = false;
                continue;
            };
            if let Some(pod) = pod
                && !pod.tasks.iter().any(|known| known == t)
            {
                let known: Vec<&str> = pod.tasks.iter().map(String::as_str).collect();
                self.err(
                    task.line,
                    path,
                    Some(t),
                    format!(
                        "is not a task of pod {}: step refers to a task that does not exist; \
                         tasks: {}",
                        pod.name,
                        known.join(", ")
                    ),
                );
                *ok = false;
                continue;
            }
            names.push(t.to_owned());
        }
        Some(names)
    }
}
