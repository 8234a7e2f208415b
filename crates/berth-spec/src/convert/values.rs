//! Typed readers for one value: string, boolean, integer, number, a choice among fixed words,
//! `k:v` labels. Each reader exists by node (with the path to report) and by key of a mapping
//! (`req_*`: the key must be written; `opt_*`: absent means the default).

use super::Converter;
use super::fields::Fields;
use crate::model::StringMap;
use crate::yaml::{Node, NodeKind};

/// The largest value of a `u32` field, as the upper bound of an integer reader.
pub(super) const U32_MAX: i64 = u32::MAX as i64;

/// The fixed words a field may hold (matched case-insensitively, ignoring surrounding spaces),
/// and how the error names them: "is not {what}; allowed: {words}{extra}".
pub(super) struct Choice<T: 'static> {
    /// What the value must be, e.g. "a goal".
    pub(super) what: &'static str,
    /// The words, in the order the error lists them, with the value of each.
    pub(super) options: &'static [(&'static str, T)],
    /// Appended to the list of words in the error (e.g. where the other words are allowed).
    pub(super) extra: &'static str,
}

/// Converts a range-checked integer to `u32` (saturating; the range checks make this exact).
pub(super) fn to_u32(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Converter<'_> {
    /// A required field: reports it when absent or empty.
    pub(super) fn req<'n>(&mut self, f: &Fields<'n>, key: &str, expect: &str) -> Option<&'n Node> {
        if let Some(v) = f.get(key) {
            return Some(v);
        }
        if f.written(key) {
            let line = f.key_line(key);
            self.err(
                line,
                &f.path(key),
                None,
                format!("has no value; expected {expect}"),
            );
        } else {
            self.err(
                f.line,
                &f.path(key),
                None,
                format!("is required; expected {expect}"),
            );
        }
        None
    }

    /// Reads the value under `key` with `read` (given the node and its path): `None` when the
    /// key is absent or empty, `Some(None)` when the value was reported as invalid.
    pub(super) fn read_opt<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        read: impl FnOnce(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<Option<T>> {
        let node = f.get(key)?;
        Some(read(self, node, &f.path(key)))
    }

    /// Reads the required value under `key` with `read` (given the node and its path).
    pub(super) fn read_req<T>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        expect: &str,
        read: impl FnOnce(&mut Self, &Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = self.req(f, key, expect)?;
        read(self, node, &f.path(key))
    }

    /// A scalar as text (null = empty string).
    pub(super) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => Some(text.clone()),
            NodeKind::Null => Some(String::new()),
            _ => {
                self.wrong_kind(node, path, "a string");
                None
            }
        }
    }

    /// `true` or `false`, in any case.
    pub(super) fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let text = self.string(node, path)?;
        if text.eq_ignore_ascii_case("true") {
            Some(true)
        } else if text.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            self.reject(
                node.line,
                path,
                &text,
                "is not a boolean; allowed: true, false",
            )
        }
    }

    /// An integer from `min` to `max`; `expect` describes the range in errors.
    pub(super) fn integer(
        &mut self,
        node: &Node,
        path: &str,
        min: i64,
        max: i64,
        expect: &str,
    ) -> Option<i64> {
        let text = self.string(node, path)?;
        let trimmed = text.trim();
        match trimmed.strip_prefix('+').unwrap_or(trimmed).parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(_) => self.reject(
                node.line,
                path,
                &text,
                format!("is out of range; expected {expect}"),
            ),
            Err(_) => self.reject(
                node.line,
                path,
                &text,
                format!("is not an integer; expected {expect}"),
            ),
        }
    }

    /// A finite number ≥ 0 (> 0 when `positive`); `expect` describes it in errors.
    pub(super) fn number(
        &mut self,
        node: &Node,
        path: &str,
        positive: bool,
        expect: &str,
    ) -> Option<f64> {
        let text = self.string(node, path)?;
        match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && (if positive { n > 0.0 } else { n >= 0.0 }) => Some(n),
            Ok(n) if n.is_finite() => self.reject(
                node.line,
                path,
                &text,
                format!("is out of range; expected {expect}"),
            ),
            _ => self.reject(
                node.line,
                path,
                &text,
                format!("is not a number; expected {expect}"),
            ),
        }
    }

    /// A choice among fixed words (case-insensitive).
    pub(super) fn choice<T: Copy>(
        &mut self,
        node: &Node,
        path: &str,
        choice: &Choice<T>,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        let found = choice
            .options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()))
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = choice.options.iter().map(|(n, _)| *n).collect();
            self.err(
                node.line,
                path,
                Some(&text),
                format!(
                    "is not {}; allowed: {}{}",
                    choice.what,
                    names.join(", "),
                    choice.extra
                ),
            );
        }
        found
    }

    /// Parses `k:v,k2:v2` label strings.
    pub(super) fn labels(&mut self, node: &Node, path: &str) -> StringMap {
        let mut labels = StringMap::new();
        let Some(text) = self.string(node, path) else {
            return labels;
        };
        if text.trim().is_empty() {
            return labels;
        }
        for part in text.split(',') {
            match part.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() => {
                    if labels
                        .insert(k.trim().to_owned(), v.trim().to_owned())
                        .is_some()
                    {
                        self.err(
                            node.line,
                            path,
                            Some(&text),
                            format!("names the label \"{}\" twice", k.trim()),
                        );
                    }
                }
                _ => {
                    self.err(
                        node.line,
                        path,
                        Some(&text),
                        format!(
                            "has the entry \"{part}\" that is not key:value; expected labels like \
                             \"key1:value1,key2:value2\""
                        ),
                    );
                }
            }
        }
        labels
    }

    // -----------------------------------------------------------------------------------------
    // By key of a mapping

    /// A required string that may not be empty or blank.
    pub(super) fn req_string(&mut self, f: &Fields<'_>, key: &str, expect: &str) -> Option<String> {
        let node = self.req(f, key, expect)?;
        let s = self.string(node, &f.path(key))?;
        if s.trim().is_empty() {
            self.err(
                node.line,
                &f.path(key),
                None,
                format!("is empty; expected {expect}"),
            );
            return None;
        }
        Some(s)
    }

    /// A required integer from `min` to `max`; `expect` describes it in errors.
    pub(super) fn req_int(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        min: i64,
        max: i64,
        expect: &str,
    ) -> Option<i64> {
        self.read_req(f, key, expect, |c, n, p| c.integer(n, p, min, max, expect))
    }

    /// A required choice among fixed words; `expect` lists them when the key is missing.
    pub(super) fn req_choice<T: Copy>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        expect: &str,
        choice: &Choice<T>,
    ) -> Option<T> {
        self.read_req(f, key, expect, |c, n, p| c.choice(n, p, choice))
    }

    /// An optional string (`None` when absent, empty or invalid).
    pub(super) fn opt_string(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        self.read_opt(f, key, Self::string).flatten()
    }

    /// An optional boolean; `default` when absent, empty or invalid.
    pub(super) fn opt_bool(&mut self, f: &Fields<'_>, key: &str, default: bool) -> bool {
        self.read_opt(f, key, Self::boolean)
            .flatten()
            .unwrap_or(default)
    }

    /// An optional integer from `min` to `max` (`None` when absent, empty or invalid).
    pub(super) fn opt_integer(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        min: i64,
        max: i64,
        expect: &str,
    ) -> Option<i64> {
        self.read_opt(f, key, |c, n, p| c.integer(n, p, min, max, expect))
            .flatten()
    }

    /// An optional integer from `min` to `max`: `default` when absent or empty, `None` when
    /// invalid.
    pub(super) fn int_or(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        min: i64,
        max: i64,
        expect: &str,
        default: i64,
    ) -> Option<i64> {
        self.read_opt(f, key, |c, n, p| c.integer(n, p, min, max, expect))
            .unwrap_or(Some(default))
    }

    /// An optional choice among fixed words (`None` when absent, empty or invalid).
    pub(super) fn opt_choice<T: Copy>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        choice: &Choice<T>,
    ) -> Option<T> {
        self.read_opt(f, key, |c, n, p| c.choice(n, p, choice))
            .flatten()
    }

    /// An optional choice among fixed words: `default` when absent or empty, `None` when
    /// invalid.
    pub(super) fn choice_or<T: Copy>(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        choice: &Choice<T>,
        default: T,
    ) -> Option<T> {
        self.read_opt(f, key, |c, n, p| c.choice(n, p, choice))
            .unwrap_or(Some(default))
    }

    /// Optional `k:v` labels (empty when absent).
    pub(super) fn opt_labels(&mut self, f: &Fields<'_>, key: &str) -> StringMap {
        self.read_opt(f, key, |c, n, p| Some(c.labels(n, p)))
            .flatten()
            .unwrap_or_default()
    }
}
