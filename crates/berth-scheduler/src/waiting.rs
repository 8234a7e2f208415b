//! Why steps wait: for every step evaluated against offers and not launched, what the offers
//! said — when it was last evaluated, the declines of the last minute grouped by the stage
//! and rule (or resource) that refused them, and the closest miss. Shown in the plan JSON
//! (`waiting`) and under the step in `berth plan show`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use berth_offer::outcome::Outcome;
use berth_plan::{ElementId, Millis, WaitReason, WaitSummary};

/// How far back declines are counted.
const WINDOW_MS: Millis = 60_000;
/// Most declines kept per step.
const MAX_DECLINES: usize = 512;

/// One declined offer.
#[derive(Debug, Clone)]
struct Decline {
    at: Millis,
    stage: Cow<'static, str>,
    rule: Cow<'static, str>,
    host: String,
}

/// The closest miss of a step.
#[derive(Debug, Clone)]
struct Miss {
    at: Millis,
    failed_stages: usize,
    text: String,
}

#[derive(Debug, Clone, Default)]
struct StepWaits {
    last_evaluated: Millis,
    declines: VecDeque<Decline>,
    closest: Option<Miss>,
}

/// The waits of every step, by step id.
#[derive(Debug, Clone, Default)]
pub(crate) struct WaitBook {
    steps: HashMap<ElementId, StepWaits>,
    /// Steps judged alike (see [`crate::alike`]): each member's group…
    members: HashMap<ElementId, usize>,
    /// … each group's size …
    sizes: Vec<usize>,
    /// … and the step whose evaluation last stood for the group.
    speakers: Vec<Option<ElementId>>,
}

/// A stage name as people read it: `ResourceEvaluationStage` → `resources`.
fn short_stage(stage: &str) -> &str {
    match stage {
        "PlacementRuleEvaluationStage" => "placement",
        "ResourceEvaluationStage" => "resources",
        "PortEvaluationStage" | "NamedVIPEvaluationStage" => "ports",
        "VolumeEvaluationStage" => "volumes",
        "ExecutorEvaluationStage" => "executor",
        "LaunchEvaluationStage" => "launch",
        "UnreserveEvaluationStage" | "DestroyEvaluationStage" => "cleanup",
        other => other,
    }
}

/// The first failing stage of an evaluation and its deepest failing part.
fn first_failure(root: &Outcome) -> Option<(&Outcome, &Outcome)> {
    let stage = root.children.iter().find(|c| !c.pass)?;
    let mut leaf = stage;
    while let Some(next) = leaf.children.iter().find(|c| !c.pass) {
        leaf = next;
    }
    Some((stage, leaf))
}

/// What refused an offer, as the declines are grouped: `resources: cpus`, `placement:
/// hostname:UNIQUE`; `None` when it passed.
pub(crate) fn failure_key(outcome: &Outcome) -> Option<String> {
    let (stage, leaf) = first_failure(outcome)?;
    let short = short_stage(&stage.source);
    Some(if std::ptr::eq(stage, leaf) {
        short.to_owned()
    } else {
        format!("{short}: {}", leaf.source)
    })
}

impl WaitBook {
    /// Offers were evaluated for the step at `now`.
    pub(crate) fn evaluated(&mut self, step: &ElementId, now: Millis) {
        if let Some(w) = self.steps.get_mut(step) {
            w.last_evaluated = now;
        } else {
            self.steps.insert(
                step.clone(),
                StepWaits {
                    last_evaluated: now,
                    ..StepWaits::default()
                },
            );
        }
    }

    /// An offer from `host` was declined for the step, as `outcome` says.
    pub(crate) fn declined(
        &mut self,
        step: &ElementId,
        now: Millis,
        outcome: &Outcome,
        host: &str,
    ) {
        let Some((stage, leaf)) = first_failure(outcome) else {
            return;
        };
        let w = self.steps.entry(step.clone()).or_default();
        w.last_evaluated = now;
        while w.declines.front().is_some_and(|d| {
            now.saturating_sub(d.at) > WINDOW_MS || w.declines.len() >= MAX_DECLINES
        }) {
            w.declines.pop_front();
        }
        w.declines.push_back(Decline {
            at: now,
            stage: stage.source.clone(),
            rule: leaf.source.clone(),
            host: host.to_owned(),
        });
        let failed = outcome.children.iter().filter(|c| !c.pass).count();
        let better = w.closest.as_ref().is_none_or(|m| {
            failed < m.failed_stages
                || (failed == m.failed_stages && now > m.at)
                || now.saturating_sub(m.at) > WINDOW_MS
        });
        if better {
            let what = if std::ptr::eq(stage, leaf) {
                leaf.reason.clone()
            } else {
                format!("{}: {}", leaf.source, leaf.reason)
            };
            w.closest = Some(Miss {
                at: now,
                failed_stages: failed,
                text: if what.contains(host) {
                    what
                } else {
                    format!("{what} on {host}")
                },
            });
        }
    }

    /// The groups of alike steps of the current candidates: member step → group, and each
    /// group's size.
    /// Whether no step was evaluated (then no step has a summary).
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub(crate) fn set_groups(&mut self, members: HashMap<ElementId, usize>, sizes: Vec<usize>) {
        self.speakers = vec![None; sizes.len()];
        self.members = members;
        self.sizes = sizes;
    }

    /// `step` evaluated the offers of a cycle for its group and none fitted.
    pub(crate) fn spoke(&mut self, group: usize, step: &ElementId) {
        if let Some(slot) = self.speakers.get_mut(group)
            && slot.as_ref() != Some(step)
        {
            *slot = Some(step.clone());
        }
    }

    /// The step launched (or is gone): nothing to explain any more.
    pub(crate) fn clear(&mut self, step: &ElementId) {
        self.steps.remove(step);
    }

    /// The summary of a step, if it was evaluated — or of the step whose evaluations stand
    /// for it, saying so. `memo` keeps the latter between calls (one per speaker), so that a
    /// plan of many alike steps is summarised once.
    pub(crate) fn summary(
        &self,
        step: &ElementId,
        now: Millis,
        name_of: impl Fn(&ElementId) -> Option<String>,
        memo: &mut HashMap<ElementId, Option<Arc<WaitSummary>>>,
    ) -> Option<Arc<WaitSummary>> {
        let group = self.members.get(step).copied();
        let speaker = group
            .and_then(|g| self.speakers.get(g))
            .and_then(Option::as_ref)
            .filter(|s| *s != step && self.steps.contains_key(*s));
        let (Some(speaker), Some(group)) = (speaker, group) else {
            return self.own_summary(step, now).map(Arc::new);
        };
        memo.entry(speaker.clone())
            .or_insert_with(|| {
                let mut summary = self.own_summary(speaker, now)?;
                let size = self.sizes.get(group).copied().unwrap_or(0);
                let name = name_of(speaker).unwrap_or_else(|| speaker.0.clone());
                summary.sampled_by = Some(format!(
                    "sampled: {name} evaluates each offer for the {size} waiting steps of the \
                     same pod type, tasks and configuration (an offer that refuses one refuses \
                     all); its declines stand for this step"
                ));
                Some(Arc::new(summary))
            })
            .clone()
    }

    fn own_summary(&self, step: &ElementId, now: Millis) -> Option<WaitSummary> {
        let w = self.steps.get(step)?;
        let recent: Vec<&Decline> = w
            .declines
            .iter()
            .filter(|d| now.saturating_sub(d.at) <= WINDOW_MS)
            .collect();
        let mut groups: BTreeMap<String, (u64, BTreeSet<&str>)> = BTreeMap::new();
        for d in &recent {
            let stage = short_stage(&d.stage);
            let key = if d.rule == d.stage {
                stage.to_owned()
            } else {
                format!("{stage}: {}", d.rule)
            };
            let g = groups.entry(key).or_default();
            g.0 += 1;
            g.1.insert(d.host.as_str());
        }
        let mut reasons: Vec<WaitReason> = groups
            .into_iter()
            .map(|(reason, (count, agents))| WaitReason {
                reason,
                count,
                agents: agents.len() as u64,
            })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        Some(WaitSummary {
            last_evaluated: w.last_evaluated,
            declined_last_minute: recent.len() as u64,
            reasons,
            closest_miss: w
                .closest
                .as_ref()
                .filter(|m| now.saturating_sub(m.at) <= WINDOW_MS)
                .map(|m| m.text.clone()),
            sampled_by: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stage of a test outcome: its name, whether it passed, and a failing part.
    type Stage<'a> = (&'static str, bool, Option<(&'static str, &'a str)>);

    fn failing(stages: &[Stage<'_>]) -> Outcome {
        Outcome::fail("OfferEvaluator", String::new()).with_children(
            stages
                .iter()
                .map(|(stage, pass, child)| {
                    let node = if *pass {
                        Outcome::pass(stage, "ok".to_owned())
                    } else {
                        Outcome::fail(stage, format!("{stage} failed"))
                    };
                    match child {
                        Some((rule, reason)) => {
                            node.with_children(vec![Outcome::fail(rule, (*reason).to_owned())])
                        }
                        None => node,
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn declines_are_grouped_and_the_closest_miss_kept() {
        let step = ElementId("s".to_owned());
        let mut book = WaitBook::default();
        let cpus = failing(&[
            ("PlacementRuleEvaluationStage", true, None),
            (
                "ResourceEvaluationStage",
                false,
                Some(("cpus", "requested 8.0, offered 3.8")),
            ),
        ]);
        let both = failing(&[
            (
                "PlacementRuleEvaluationStage",
                false,
                Some(("hostname:UNIQUE", "agent-a holds world-0")),
            ),
            (
                "ResourceEvaluationStage",
                false,
                Some(("cpus", "requested 8.0, offered 1.0")),
            ),
        ]);
        book.declined(&step, 1_000, &both, "agent-a");
        book.declined(&step, 1_000, &cpus, "agent-b");
        book.declined(&step, 2_000, &cpus, "agent-c");
        let s = book
            .summary(&step, 2_000, |_| None, &mut HashMap::new())
            .unwrap();
        assert_eq!(s.declined_last_minute, 3);
        assert_eq!(s.last_evaluated, 2_000);
        assert_eq!(
            s.reasons,
            vec![
                WaitReason {
                    reason: "resources: cpus".to_owned(),
                    count: 2,
                    agents: 2
                },
                WaitReason {
                    reason: "placement: hostname:UNIQUE".to_owned(),
                    count: 1,
                    agents: 1
                },
            ]
        );
        assert_eq!(
            s.closest_miss.as_deref(),
            Some("cpus: requested 8.0, offered 3.8 on agent-c")
        );
        assert!(
            s.line().starts_with(
                "3 offers declined in the last minute (resources: cpus ×2 on 2 agents"
            )
        );
        // A minute later the declines are old news.
        let later = book
            .summary(&step, 70_000, |_| None, &mut HashMap::new())
            .unwrap();
        assert_eq!(later.declined_last_minute, 0);
        assert_eq!(later.closest_miss, None);
        book.clear(&step);
        assert!(
            book.summary(&step, 70_000, |_| None, &mut HashMap::new())
                .is_none()
        );
    }
}
