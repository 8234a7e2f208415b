//! One mapping of the tree: which keys it may hold, and the value, line and dotted path of each
//! key; plus the checks that hold for every mapping (duplicate keys, keys that are not plain
//! names) and the report of a value of the wrong kind.
//!
//! Each kind of mapping declares its keys once, in a `*_KEYS` list next to the function that
//! reads it; that list is what unknown keys are checked against, and its order is the order of
//! the "allowed:" list in the error. Readers then name a key once: the lookup gives the value,
//! the key's line and its path. Looking up a key the list does not declare is a bug, caught by a
//! debug assertion in every test that reads that mapping.

use std::collections::HashMap;

use super::Converter;
use crate::yaml::{Node, NodeKind};

/// One key of a mapping as written: the key's text, the key node, the value node.
pub(super) type Entry<'n> = (&'n str, &'n Node, &'n Node);

/// The fields of one mapping, first occurrence of each key (duplicates are reported by a
/// separate pass over the whole tree).
pub(super) struct Fields<'n> {
    /// The mapping's own path (empty for the root).
    path: String,
    /// The line of the mapping's key (where "is required" problems are reported).
    pub(super) line: usize,
    /// The keys the mapping may hold.
    allowed: &'static [&'static str],
    /// The allowed keys that are written.
    entries: Vec<Entry<'n>>,
}

impl<'n> Fields<'n> {
    /// The path of `key` in this mapping.
    pub(super) fn path(&self, key: &str) -> String {
        self.declared(key);
        join(&self.path, key)
    }

    /// The value under `key`, `None` when absent or null.
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.declared(key);
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
            .filter(|v| !v.is_null())
    }

    /// Whether `key` is written (even with an empty value).
    pub(super) fn written(&self, key: &str) -> bool {
        self.declared(key);
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    /// The line of `key`, or of the mapping when `key` is not written.
    pub(super) fn key_line(&self, key: &str) -> usize {
        self.declared(key);
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(self.line, |(_, k, _)| k.line)
    }

    /// Asserts (in debug builds) that `key` is one of the mapping's declared keys.
    fn declared(&self, key: &str) {
        debug_assert!(
            self.allowed.contains(&key),
            "{key} is read at {} but is not one of its declared keys {:?}",
            self.path,
            self.allowed
        );
    }
}

/// `path.key`, or `key` at the root.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Converter<'_> {
    /// Reports duplicate keys anywhere in the tree.
    pub(super) fn check_duplicates(&mut self, node: &Node, path: &str) {
        match &node.kind {
            NodeKind::Map(entries) => {
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for (k, v) in entries {
                    let Some(key) = k.as_scalar() else {
                        continue;
                    };
                    let child = join(path, key);
                    if let Some(first) = seen.get(key) {
                        let first = *first;
                        self.err(
                            k.line,
                            &child,
                            None,
                            format!(
                                "is defined twice (first on line {first}); keys must be unique"
                            ),
                        );
                    } else {
                        seen.insert(key, k.line);
                    }
                    self.check_duplicates(v, &child);
                }
            }
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_duplicates(item, &format!("{path}[{i}]"));
                }
            }
            NodeKind::Null | NodeKind::Scalar { .. } => {}
        }
    }

    /// The entries of a mapping (first occurrence of each key). Null = empty mapping.
    pub(super) fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Option<Vec<Entry<'n>>> {
        match &node.kind {
            NodeKind::Null => Some(Vec::new()),
            NodeKind::Map(entries) => {
                let mut out: Vec<Entry<'n>> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    match k.as_scalar() {
                        Some(key) => {
                            if !out.iter().any(|(seen, _, _)| *seen == key) {
                                out.push((key, k, v));
                            }
                        }
                        None => self.err(
                            k.line,
                            path,
                            None,
                            format!(
                                "has a key that is {}; keys must be plain names",
                                k.describe()
                            ),
                        ),
                    }
                }
                Some(out)
            }
            _ => {
                self.wrong_kind(node, path, "a mapping");
                None
            }
        }
    }

    /// The fields of a mapping, checking keys against `allowed` (unknown keys are errors when
    /// `strict`, silently dropped otherwise).
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        line: usize,
        allowed: &'static [&'static str],
        strict: bool,
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, path)?;
        let mut fields = Fields {
            path: path.to_owned(),
            line,
            allowed,
            entries: Vec::new(),
        };
        for (key, k, v) in entries {
            if allowed.contains(&key) {
                fields.entries.push((key, k, v));
            } else if strict {
                self.err(
                    k.line,
                    &join(path, key),
                    None,
                    format!("is not a known field; allowed: {}", allowed.join(", ")),
                );
            }
        }
        Some(fields)
    }

    /// The fields of the mapping under `key` of `f` (strict), `None` when absent or not a
    /// mapping.
    pub(super) fn sub_fields<'n>(
        &mut self,
        f: &Fields<'n>,
        key: &str,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let node = f.get(key)?;
        self.fields(node, &f.path(key), f.key_line(key), allowed, true)
    }

    /// The path and entries of the mapping under `key` of `f`, `None` when absent or not a
    /// mapping.
    pub(super) fn sub_entries<'n>(
        &mut self,
        f: &Fields<'n>,
        key: &str,
    ) -> Option<(String, Vec<Entry<'n>>)> {
        let node = f.get(key)?;
        let path = f.path(key);
        let entries = self.entries(node, &path)?;
        Some((path, entries))
    }

    /// The path and items of the list under `key` of `f`, `None` when absent or (reported)
    /// not a list; `expected` names the list in that report.
    pub(super) fn sub_seq<'n>(
        &mut self,
        f: &Fields<'n>,
        key: &str,
        expected: &str,
    ) -> Option<(String, &'n [Node])> {
        let node = f.get(key)?;
        let path = f.path(key);
        match &node.kind {
            NodeKind::Seq(items) => Some((path, items)),
            _ => {
                self.wrong_kind(node, &path, expected);
                None
            }
        }
    }

    /// Reports a value of the wrong kind (a list where a mapping belongs, …).
    pub(super) fn wrong_kind(&mut self, node: &Node, path: &str, expected: &str) {
        match &node.kind {
            NodeKind::Scalar { text, .. } => {
                self.err(node.line, path, Some(text), format!("is not {expected}"));
            }
            NodeKind::Null => self.err(
                node.line,
                path,
                None,
                format!("is empty; expected {expected}"),
            ),
            NodeKind::Seq(_) | NodeKind::Map(_) => self.err(
                node.line,
                path,
                None,
                format!("is {}, not {expected}", node.describe()),
            ),
        }
    }

    /// Records a problem with `key` of `f`, at the key's line.
    pub(super) fn err_at(
        &mut self,
        f: &Fields<'_>,
        key: &str,
        value: Option<&str>,
        message: impl Into<String>,
    ) {
        self.err(f.key_line(key), &f.path(key), value, message);
    }
}
