//! YAML text → a small node tree that remembers where every node was written.
//!
//! The tree keeps what a spec checker needs and a serde-based loader throws away: the line and
//! column of every node, duplicate keys (so they can be reported instead of silently
//! overwritten), and whether a scalar was quoted. Aliases are resolved by copying the anchored
//! node; YAML 1.1 merge keys (`<<: *base`) are applied. Scalars stay text; they are typed only
//! when a field asks for a number or a boolean.
//!
//! Limits keep hostile input harmless: at most [`MAX_DEPTH`] levels of nesting and
//! [`MAX_NODES`] nodes after alias expansion.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle as SaphyrStyle};

/// Deepest nesting of lists and maps accepted.
pub const MAX_DEPTH: usize = 128;
/// Most nodes accepted, counting every copy made for an alias.
pub const MAX_NODES: usize = 200_000;

/// A YAML node and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// What the node is.
    pub kind: NodeKind,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    /// An empty plain value, `~` or `null`.
    Null,
    /// A scalar as written.
    Scalar {
        /// The scalar's text (quotes and escapes already resolved).
        text: String,
        /// Plain, or quoted/block (never typed as null or bool).
        style: ScalarStyle,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written, duplicates kept.
    Map(Vec<(Node, Node)>),
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    /// Unquoted.
    Plain,
    /// Single- or double-quoted, a block scalar (`|`, `>`), or tagged `!!str`.
    Quoted,
}

impl Node {
    /// The scalar text, if the node is a scalar.
    #[must_use]
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether the node is null (empty plain value, `~`, `null`).
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// A word for the kind of node, for error messages: `a mapping`, `a list`, `a string`, …
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "nothing",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The node as compact JSON text (scalars as strings, null as `null`).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match &self.kind {
            NodeKind::Null => serde_json::Value::Null,
            NodeKind::Scalar { text, .. } => serde_json::Value::String(text.clone()),
            NodeKind::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            NodeKind::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_scalar().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What the parser said.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.col, self.message
        )
    }
}

impl std::error::Error for YamlError {}

enum Frame {
    Seq {
        items: Vec<Node>,
        anchor: usize,
        line: usize,
        col: usize,
        size: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
        line: usize,
        col: usize,
        size: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

impl Builder {
    fn count(&mut self, n: usize, line: usize, col: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                line,
                col,
                message: format!(
                    "the document has more than {MAX_NODES} nodes (after expanding aliases)"
                ),
            });
        }
        Ok(())
    }

    fn attach(&mut self, node: Node, size: usize, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq {
                items, size: total, ..
            }) => {
                items.push(node);
                *total += size;
            }
            Some(Frame::Map {
                entries,
                key,
                size: total,
                ..
            }) => {
                *total += size;
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => {
                        let mut value = node;
                        // An empty value belongs to its key's line (the parser places it at
                        // the end of that line, or further down).
                        if value.is_null() && value.line != k.line {
                            value.line = k.line;
                            value.col = k.col;
                        }
                        entries.push((k, value));
                    }
                }
            }
        }
    }

    fn push(&mut self, frame: Frame, line: usize, col: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(YamlError {
                line,
                col,
                message: format!("lists and mappings nest more than {MAX_DEPTH} levels deep"),
            });
        }
        self.stack.push(frame);
        Ok(())
    }
}

/// Parses one YAML document into a node tree. An empty document yields a [`NodeKind::Null`]
/// root.
///
/// # Errors
/// Syntax errors, more than one document, unknown aliases, invalid merge keys, or input beyond
/// the limits.
pub fn parse_yaml(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut documents = 0usize;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line(),
            col: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let line = span.start.line();
        let col = span.start.col() + 1;
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError {
                        line,
                        col,
                        message: "a second YAML document starts here; a spec is one document"
                            .to_owned(),
                    });
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                b.count(1, line, col)?;
                let tagged_str = tag.as_deref().is_some_and(|t| t.suffix == "str");
                let kind = match style {
                    SaphyrStyle::Plain if !tagged_str => {
                        if matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                            NodeKind::Null
                        } else {
                            NodeKind::Scalar {
                                text: value.into_owned(),
                                style: ScalarStyle::Plain,
                            }
                        }
                    }
                    _ => NodeKind::Scalar {
                        text: value.into_owned(),
                        style: ScalarStyle::Quoted,
                    },
                };
                b.attach(Node { kind, line, col }, 1, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                b.count(1, line, col)?;
                b.push(
                    Frame::Seq {
                        items: Vec::new(),
                        anchor,
                        line,
                        col,
                        size: 1,
                    },
                    line,
                    col,
                )?;
            }
            Event::MappingStart(anchor, _) => {
                b.count(1, line, col)?;
                b.push(
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        anchor,
                        line,
                        col,
                        size: 1,
                    },
                    line,
                    col,
                )?;
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq {
                    items,
                    anchor,
                    line,
                    col,
                    size,
                }) = b.stack.pop()
                {
                    b.attach(
                        Node {
                            kind: NodeKind::Seq(items),
                            line,
                            col,
                        },
                        size,
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    entries,
                    key,
                    anchor,
                    line,
                    col,
                    size,
                }) = b.stack.pop()
                {
                    let mut entries = entries;
                    if let Some(k) = key {
                        // A key without value (should not happen with a well-formed stream).
                        let (kl, kc) = (k.line, k.col);
                        entries.push((
                            k,
                            Node {
                                kind: NodeKind::Null,
                                line: kl,
                                col: kc,
                            },
                        ));
                    }
                    let (entries, extra) = apply_merge_keys(entries)?;
                    b.count(extra, line, col)?;
                    b.attach(
                        Node {
                            kind: NodeKind::Map(entries),
                            line,
                            col,
                        },
                        size + extra,
                        anchor,
                    );
                }
            }
            Event::Alias(id) => {
                let Some((node, size)) = b.anchors.get(&id).cloned() else {
                    return Err(YamlError {
                        line,
                        col,
                        message: "this alias refers to an anchor that is not defined before it"
                            .to_owned(),
                    });
                };
                b.count(size, line, col)?;
                let mut node = node;
                node.line = line;
                node.col = col;
                b.attach(node, size, 0);
            }
        }
    }
    Ok(b.root.unwrap_or(Node {
        kind: NodeKind::Null,
        line: 1,
        col: 1,
    }))
}

fn node_size(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Null | NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(node_size).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| node_size(k) + node_size(v))
                .sum::<usize>()
        }
    }
}

/// Applies `<<` merge keys: the entries of the merged mapping(s) are added unless the mapping
/// already has the key. Returns the new entries and how many nodes were added.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Result<(Vec<(Node, Node)>, usize), YamlError> {
    let is_merge = |k: &Node| matches!(&k.kind, NodeKind::Scalar { text, style: ScalarStyle::Plain } if text == "<<");
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return Ok((entries, 0));
    }
    let mut own = Vec::new();
    let mut sources = Vec::new();
    for (k, v) in entries {
        if is_merge(&k) {
            match v.kind {
                NodeKind::Map(inner) => sources.push(inner),
                NodeKind::Seq(items) => {
                    for item in items {
                        match item.kind {
                            NodeKind::Map(inner) => sources.push(inner),
                            _ => {
                                return Err(YamlError {
                                    line: item.line,
                                    col: item.col,
                                    message: "a merge key (<<) takes a mapping or a list of \
                                              mappings"
                                        .to_owned(),
                                });
                            }
                        }
                    }
                }
                _ => {
                    return Err(YamlError {
                        line: v.line,
                        col: v.col,
                        message: "a merge key (<<) takes a mapping or a list of mappings"
                            .to_owned(),
                    });
                }
            }
        } else {
            own.push((k, v));
        }
    }
    let mut added = 0;
    for source in sources {
        for (k, v) in source {
            let exists = own
                .iter()
                .any(|(ok, _)| ok.as_scalar().is_some() && ok.as_scalar() == k.as_scalar());
            if !exists {
                added += node_size(&k) + node_size(&v);
                own.push((k, v));
            }
        }
    }
    Ok((own, added))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        parse_yaml(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn map(node: &Node) -> &[(Node, Node)] {
        match &node.kind {
            NodeKind::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keeps_lines_duplicates_and_styles() {
        let root = parse("a: 1\nb:\n  c: 'x'\na: ~\nd:\n");
        let entries = map(&root);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[0].0.as_scalar(), Some("a"));
        assert_eq!(entries[2].0.as_scalar(), Some("a"));
        assert_eq!(entries[2].0.line, 4);
        assert!(entries[2].1.is_null());
        assert!(entries[3].1.is_null());
        assert_eq!(entries[3].1.line, 5);
        let inner = map(&entries[1].1);
        assert_eq!(
            inner[0].1.kind,
            NodeKind::Scalar {
                text: "x".to_owned(),
                style: ScalarStyle::Quoted
            }
        );
        assert_eq!(inner[0].1.line, 3);
    }

    #[test]
    fn aliases_and_merge_keys() {
        let root = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\ncopy: *b\n");
        let entries = map(&root);
        let other = map(&entries[1].1);
        let keys: Vec<_> = other
            .iter()
            .map(|(k, v)| (k.as_scalar(), v.as_scalar()))
            .collect();
        assert_eq!(keys, [(Some("y"), Some("3")), (Some("x"), Some("1"))]);
        assert_eq!(map(&entries[2].1).len(), 2);
        assert_eq!(entries[2].1.line, 5);
    }

    #[test]
    fn errors() {
        let e = parse_yaml("a: b: c\n").err();
        assert_eq!(
            e.map(|e| (e.line, e.col)),
            Some((1, 5)),
            "mapping values are not allowed"
        );
        assert!(parse_yaml("a: *nope\n").is_err());
        assert!(parse_yaml("a: 1\n---\nb: 2\n").is_err());
        assert!(parse_yaml(&"[".repeat(500)).is_err());
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
        assert!(parse_yaml(bomb).is_err());
    }

    #[test]
    fn empty_document_is_null() {
        assert!(parse("").is_null());
        assert!(parse("# only a comment\n").is_null());
    }
}
