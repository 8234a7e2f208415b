//! Placement rules: the syntax tree of a Marathon-style constraint string.
//!
//! This module only knows the *syntax*: it parses `hostname:UNIQUE`,
//! `[["@zone","GROUP_BY","3"]]` and friends into a [`PlacementRule`]. What a rule *means*
//! against an offer (counting tasks per key, matching attributes) lives in `berth-offer`.
//!
//! A string that does not parse still becomes a rule — [`PlacementRule::Invalid`] — so that a
//! service whose placement is broken by a configuration update keeps its previous target and
//! reports the problem through the `PlacementRuleIsValid` validator, as the reference does.

use serde::{Deserialize, Serialize};

/// A parsed placement rule: all constraints must hold (rows are ANDed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "@type")]
pub enum PlacementRule {
    /// A list of constraints, all of which must pass.
    #[serde(rename = "MarathonConstraintRule")]
    Constraints {
        /// The string as written in the spec.
        source: String,
        /// The constraints in the order written.
        constraints: Vec<Constraint>,
    },
    /// A string that could not be parsed; fails every offer.
    #[serde(rename = "InvalidPlacementRule")]
    Invalid {
        /// The string as written in the spec.
        source: String,
        /// Why it could not be parsed, for people.
        error: String,
    },
}

impl PlacementRule {
    /// The string as written in the spec.
    #[must_use]
    pub fn source(&self) -> &str {
        match self {
            PlacementRule::Constraints { source, .. } | PlacementRule::Invalid { source, .. } => {
                source
            }
        }
    }

    /// Whether any constraint reads the `@zone` field.
    #[must_use]
    pub fn references_zone(&self) -> bool {
        self.fields().any(|f| *f == PlacementField::Zone)
    }

    /// Whether any constraint reads the `@region` field.
    #[must_use]
    pub fn references_region(&self) -> bool {
        self.fields().any(|f| *f == PlacementField::Region)
    }

    fn fields(&self) -> impl Iterator<Item = &PlacementField> {
        let constraints: &[Constraint] = match self {
            PlacementRule::Constraints { constraints, .. } => constraints,
            PlacementRule::Invalid { .. } => &[],
        };
        constraints.iter().map(|c| &c.field)
    }
}

/// One `field:OPERATOR[:parameter]` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    /// What the constraint looks at.
    pub field: PlacementField,
    /// How it judges it.
    pub operator: PlacementOperator,
}

/// The field a constraint reads from an offer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementField {
    /// `hostname` or `@hostname`: the agent's hostname.
    Hostname,
    /// `@zone`: the offer's fault-domain zone.
    Zone,
    /// `@region`: the offer's fault-domain region.
    Region,
    /// Any other name: an agent attribute.
    Attribute(String),
}

/// A constraint operator with its parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PlacementOperator {
    /// At most one task of the pod type per field value.
    Unique,
    /// At most `n` tasks of the pod type per field value.
    MaxPer(u32),
    /// Field must equal the value; without one, all tasks share the first task's value.
    Cluster(Option<String>),
    /// Field must equal the value.
    Is(String),
    /// Field must not equal the value.
    IsNot(String),
    /// Field must fully match the regular expression.
    Like(String),
    /// Field must not fully match the regular expression.
    Unlike(String),
    /// Spread evenly over the field's values; with `n`, over at least `n` values.
    GroupBy(Option<u32>),
}
