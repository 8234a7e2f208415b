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

/// Parses a placement string.
///
/// Accepted forms (rows are ANDed):
/// * a JSON list `["hostname", "MAX_PER", "2"]` (one row),
/// * a JSON list of lists `[["hostname", "UNIQUE"], ["@zone", "GROUP_BY", "3"]]`,
/// * the colon/comma form `hostname:UNIQUE,@zone:GROUP_BY:3`, where `\,` and `\:` stand for a
///   literal comma or colon (any other backslash is kept as written, so regexes survive).
///
/// Operators are case-insensitive: `UNIQUE`, `MAX_PER n`, `CLUSTER [v]`, `IS v`, `IS_NOT v`,
/// `LIKE re`, `UNLIKE re`, `GROUP_BY [n]` (`UNIQUE` ignores a parameter). Fields `hostname` and
/// `@hostname` read the agent's hostname, `@zone` and `@region` its fault domain, anything else
/// an agent attribute. `LIKE`/`UNLIKE` patterns are full-match regular expressions and must
/// compile; `MAX_PER` and `GROUP_BY` counts must be positive integers.
///
/// Returns `None` for an empty (or whitespace-only) string and for `[]`: no placement rule.
/// A string that does not parse becomes [`PlacementRule::Invalid`], never an error here — the
/// `PlacementRuleIsValid` validator reports it.
#[must_use]
pub fn parse_placement(source: &str) -> Option<PlacementRule> {
    let trimmed = source.trim();
    if trimmed.is_empty() {
        return None;
    }
    let rows = match split_rows(trimmed) {
        Ok(rows) => rows,
        Err(error) => {
            return Some(PlacementRule::Invalid {
                source: source.to_owned(),
                error,
            });
        }
    };
    if rows.is_empty() {
        return None;
    }
    let mut constraints = Vec::with_capacity(rows.len());
    for row in &rows {
        match parse_row(row) {
            Ok(c) => constraints.push(c),
            Err(error) => {
                return Some(PlacementRule::Invalid {
                    source: source.to_owned(),
                    error,
                });
            }
        }
    }
    Some(PlacementRule::Constraints {
        source: source.to_owned(),
        constraints,
    })
}

/// Splits a placement string into rows of `[field, operator, parameter?]`.
fn split_rows(s: &str) -> Result<Vec<Vec<String>>, String> {
    if s.starts_with('[')
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(s)
    {
        return json_rows(&value);
    }
    Ok(escaped_split(s, ',')
        .into_iter()
        .map(|row| escaped_split(&row, ':'))
        .collect())
}

fn json_rows(value: &serde_json::Value) -> Result<Vec<Vec<String>>, String> {
    let serde_json::Value::Array(items) = value else {
        return Err("expected a JSON list of constraints".to_owned());
    };
    if items.is_empty() {
        return Ok(Vec::new());
    }
    if items.iter().all(|i| !i.is_array()) {
        return Ok(vec![json_row(items)?]);
    }
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::Array(row) => json_row(row),
            other => Err(format!(
                "expected every entry to be a list like [\"hostname\", \"UNIQUE\"], found {other}"
            )),
        })
        .collect()
}

fn json_row(items: &[serde_json::Value]) -> Result<Vec<String>, String> {
    items
        .iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!("expected strings in a constraint, found {other}")),
        })
        .collect()
}

/// Splits on `sep`, honouring `\<sep>` as a literal separator; other backslashes are kept.
/// Parts are trimmed.
fn escaped_split(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if c != sep {
                current.push('\\');
            }
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(current.trim().to_owned());
            current.clear();
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current.trim().to_owned());
    parts
}

const OPERATORS: &str = "UNIQUE, MAX_PER, CLUSTER, IS, IS_NOT, LIKE, UNLIKE, GROUP_BY";

fn parse_row(row: &[String]) -> Result<Constraint, String> {
    let shown = format!("{row:?}");
    let (field, operator, parameter) = match row {
        [f, o] => (f, o, None),
        [f, o, p] => (f, o, Some(p.as_str())),
        _ => {
            return Err(format!(
                "constraint {shown} has {} entries; expected field, operator and an optional \
                 parameter",
                row.len()
            ));
        }
    };
    if field.is_empty() {
        return Err(format!("constraint {shown} has an empty field name"));
    }
    let field = match field.as_str() {
        "hostname" | "@hostname" => PlacementField::Hostname,
        "@zone" => PlacementField::Zone,
        "@region" => PlacementField::Region,
        other => PlacementField::Attribute(other.to_owned()),
    };
    let required = |what: &str| -> Result<String, String> {
        match parameter {
            Some(p) if !p.is_empty() => Ok(p.to_owned()),
            _ => Err(format!("operator {operator} in {shown} needs {what}")),
        }
    };
    let count = |p: &str| -> Result<u32, String> {
        match p.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "operator {operator} in {shown} needs a positive integer, not \"{p}\""
            )),
        }
    };
    let regex = |p: String| -> Result<String, String> {
        match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(_) => Ok(p),
            Err(e) => Err(format!(
                "operator {operator} in {shown} has an invalid regular expression: {e}"
            )),
        }
    };
    let op = match operator.to_ascii_uppercase().as_str() {
        "UNIQUE" => PlacementOperator::Unique,
        "MAX_PER" => PlacementOperator::MaxPer(count(&required("a positive integer")?)?),
        "CLUSTER" => {
            PlacementOperator::Cluster(parameter.filter(|p| !p.is_empty()).map(str::to_owned))
        }
        "IS" => PlacementOperator::Is(required("a value")?),
        "IS_NOT" => PlacementOperator::IsNot(required("a value")?),
        "LIKE" => PlacementOperator::Like(regex(required("a regular expression")?)?),
        "UNLIKE" => PlacementOperator::Unlike(regex(required("a regular expression")?)?),
        "GROUP_BY" => PlacementOperator::GroupBy(match parameter.filter(|p| !p.is_empty()) {
            Some(p) => Some(count(p)?),
            None => None,
        }),
        _ => {
            return Err(format!(
                "unknown operator \"{operator}\" in {shown}; allowed: {OPERATORS}"
            ));
        }
    };
    Ok(Constraint {
        field,
        operator: op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<Constraint> {
        match parse_placement(s) {
            Some(PlacementRule::Constraints { constraints, .. }) => constraints,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn invalid(s: &str) -> String {
        match parse_placement(s) {
            Some(PlacementRule::Invalid { error, .. }) => error,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn empty_is_none() {
        assert_eq!(parse_placement(""), None);
        assert_eq!(parse_placement("  "), None);
        assert_eq!(parse_placement("[]"), None);
    }

    #[test]
    fn forms() {
        let unique = Constraint {
            field: PlacementField::Hostname,
            operator: PlacementOperator::Unique,
        };
        assert_eq!(ok("[[\"hostname\", \"UNIQUE\"]]"), vec![unique.clone()]);
        assert_eq!(ok("[\"hostname\", \"unique\"]"), vec![unique.clone()]);
        assert_eq!(ok("hostname:UNIQUE"), vec![unique.clone()]);
        assert_eq!(
            ok("@hostname:unique, @zone:GROUP_BY:3,rack:MAX_PER:2,@region:IS:us-east-1"),
            vec![
                unique,
                Constraint {
                    field: PlacementField::Zone,
                    operator: PlacementOperator::GroupBy(Some(3)),
                },
                Constraint {
                    field: PlacementField::Attribute("rack".to_owned()),
                    operator: PlacementOperator::MaxPer(2),
                },
                Constraint {
                    field: PlacementField::Region,
                    operator: PlacementOperator::Is("us-east-1".to_owned()),
                },
            ]
        );
        assert_eq!(
            ok("[[\"rack\", \"MAX_PER\", 2], [\"hostname\", \"CLUSTER\"]]"),
            vec![
                Constraint {
                    field: PlacementField::Attribute("rack".to_owned()),
                    operator: PlacementOperator::MaxPer(2),
                },
                Constraint {
                    field: PlacementField::Hostname,
                    operator: PlacementOperator::Cluster(None),
                },
            ]
        );
        assert_eq!(
            ok(r"hostname:LIKE:10\.0\.0\.[0-9]+\,x\:y"),
            vec![Constraint {
                field: PlacementField::Hostname,
                operator: PlacementOperator::Like(r"10\.0\.0\.[0-9]+,x:y".to_owned()),
            }]
        );
        assert_eq!(
            ok("rack:UNLIKE:rack-[7-9],rack:IS_NOT:r1"),
            vec![
                Constraint {
                    field: PlacementField::Attribute("rack".to_owned()),
                    operator: PlacementOperator::Unlike("rack-[7-9]".to_owned()),
                },
                Constraint {
                    field: PlacementField::Attribute("rack".to_owned()),
                    operator: PlacementOperator::IsNot("r1".to_owned()),
                },
            ]
        );
    }

    #[test]
    fn invalid_rules() {
        assert!(invalid("hostname:UNIQU").contains("unknown operator \"UNIQU\""));
        assert!(invalid("hostname:MAX_PER").contains("needs a positive integer"));
        assert!(invalid("hostname:MAX_PER:0").contains("positive integer"));
        assert!(invalid("hostname:MAX_PER:two").contains("positive integer"));
        assert!(invalid("hostname:LIKE:[").contains("invalid regular expression"));
        assert!(invalid("hostname").contains("has 1 entries"));
        assert!(invalid("a:b:c:d").contains("has 4 entries"));
        assert!(invalid("[[\"hostname\", \"UNIQUE\"], \"x\"]").contains("expected every entry"));
        assert!(invalid("hostname:IS").contains("needs a value"));
        assert!(invalid("hostname:GROUP_BY:-1").contains("positive integer"));
    }

    #[test]
    fn references() {
        let rule = parse_placement("@zone:GROUP_BY");
        assert!(rule.as_ref().is_some_and(PlacementRule::references_zone));
        assert!(!rule.as_ref().is_some_and(PlacementRule::references_region));
    }
}
