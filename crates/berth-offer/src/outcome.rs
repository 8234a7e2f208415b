//! The outcome tree of an evaluation: one node per stage, with child nodes for the parts of a
//! stage (placement constraints), and its text rendering for the scheduler log.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Names of the stages (the `source` of a top-level [`Outcome`]).
pub mod stage {
    /// The pod's executor: new, relaunched, or already running on the agent.
    pub const EXECUTOR: &str = "ExecutorEvaluationStage";
    /// The pod's placement rule (children: one per constraint).
    pub const PLACEMENT: &str = "PlacementRuleEvaluationStage";
    /// A scalar resource (`cpus`, `mem`, `gpus`, executor `disk`).
    pub const RESOURCE: &str = "ResourceEvaluationStage";
    /// A port.
    pub const PORT: &str = "PortEvaluationStage";
    /// A port with a named VIP.
    pub const NAMED_VIP: &str = "NamedVIPEvaluationStage";
    /// A persistent volume.
    pub const VOLUME: &str = "VolumeEvaluationStage";
    /// A previously reserved resource that is no longer in the spec.
    pub const UNRESERVE: &str = "UnreserveEvaluationStage";
    /// A previously created volume that is no longer in the spec.
    pub const DESTROY: &str = "DestroyEvaluationStage";
    /// The TaskInfo of one task (launched, or footprint only).
    pub const LAUNCH: &str = "LaunchEvaluationStage";
    /// The root of the tree.
    pub const EVALUATOR: &str = "OfferEvaluator";
}

/// The decimal text of `n`, laid out in `buf` (no allocation). Evaluation writes a reason for
/// every stage of every offer; the frequent ones are joined from pieces (`[..].concat()`, one
/// allocation of the exact size), which costs a fraction of the formatting machinery.
#[must_use]
pub fn number(n: u64, buf: &mut [u8; 20]) -> &str {
    let start = digits_before(n, buf, 20);
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

/// Writes the decimal digits of `n` into `buf` so that they end just before `end`; returns
/// where they start. `buf[..end]` must have room for them (20 digits at most).
pub(crate) fn digits_before(mut n: u64, buf: &mut [u8], mut end: usize) -> usize {
    loop {
        end -= 1;
        buf[end] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return end;
        }
    }
}

/// One node of the outcome tree.
///
/// Serialises as `{"pass":true,"source":"…","reason":"…","children":[…]}` (children omitted
/// when empty) for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether this part accepted the offer.
    pub pass: bool,
    /// What judged: a stage name (see [`stage`]) or a placement rule name.
    pub source: Cow<'static, str>,
    /// Why, for people.
    pub reason: String,
    /// Parts of this judgement (a stage's constraints), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Outcome>,
}

impl Outcome {
    /// A passing node.
    #[must_use]
    pub fn pass(source: &'static str, reason: String) -> Self {
        Self {
            pass: true,
            source: Cow::Borrowed(source),
            reason,
            children: Vec::new(),
        }
    }

    /// A failing node.
    #[must_use]
    pub fn fail(source: &'static str, reason: String) -> Self {
        Self {
            pass: false,
            source: Cow::Borrowed(source),
            reason,
            children: Vec::new(),
        }
    }

    /// A node passing or failing by `pass`.
    #[must_use]
    pub fn new(pass: bool, source: &'static str, reason: String) -> Self {
        Self {
            pass,
            source: Cow::Borrowed(source),
            reason,
            children: Vec::new(),
        }
    }

    /// Sets the children.
    #[must_use]
    pub fn with_children(mut self, children: Vec<Outcome>) -> Self {
        self.children = children;
        self
    }

    /// Number of failing nodes among the direct children.
    #[must_use]
    pub fn failed_children(&self) -> usize {
        self.children.iter().filter(|c| !c.pass).count()
    }

    /// Appends `  PASS(source): reason` lines for the children of this node, indented by
    /// `2 * (depth + 1)` spaces, recursively.
    pub fn render_children(&self, depth: usize, out: &mut String) {
        for c in &self.children {
            for _ in 0..=depth {
                out.push_str("  ");
            }
            let _ = writeln!(
                out,
                "{}({}): {}",
                if c.pass { "PASS" } else { "FAIL" },
                c.source,
                c.reason
            );
            c.render_children(depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_their_decimal_digits() {
        let mut buf = [0; 20];
        assert_eq!(number(0, &mut buf), "0");
        assert_eq!(number(10_250, &mut buf), "10250");
        assert_eq!(number(u64::MAX, &mut buf), u64::MAX.to_string());
        assert_eq!(
            ["port ", number(8080, &mut [0; 20]), " for '", "web", "'"].concat(),
            "port 8080 for 'web'"
        );
    }

    #[test]
    fn renders_nested_and_serialises_without_empty_children() {
        let tree = Outcome::fail(stage::EVALUATOR, "x".into()).with_children(vec![
            Outcome::pass(stage::EXECUTOR, "ok".into()),
            Outcome::fail(stage::PLACEMENT, "no".into())
                .with_children(vec![Outcome::fail("UniqueRule", "taken".into())]),
        ]);
        let mut s = String::new();
        tree.render_children(0, &mut s);
        assert_eq!(
            s,
            "  PASS(ExecutorEvaluationStage): ok\n  FAIL(PlacementRuleEvaluationStage): no\n    FAIL(UniqueRule): taken\n"
        );
        assert_eq!(tree.failed_children(), 1);
        let json = serde_json::to_string(&tree.children[0]).unwrap();
        assert_eq!(
            json,
            r#"{"pass":true,"source":"ExecutorEvaluationStage","reason":"ok"}"#
        );
        let back: Outcome = serde_json::from_str(&serde_json::to_string(&tree).unwrap()).unwrap();
        assert_eq!(back, tree);
    }
}
