//! Mustache rendering with the semantics berth's specs and packages rely on.
//!
//! Two flavours share one engine:
//!
//! * [`render_env`] renders a `svc.yml` template over an environment (name → string). Values that
//!   read `true`/`false` (any case) become booleans so `{{#VAR}}…{{/VAR}}` and `{{^VAR}}…{{/VAR}}`
//!   work as conditionals; an empty string is false. `{{VAR}}` is HTML-escaped (`&` → `&amp;`
//!   unless it already starts an entity such as `&amp;` or `&#39;`, `<` → `&lt;`, `>` → `&gt;`,
//!   `"` → `&quot;`, `'` → `&#39;`, newline → `&#10;`); `{{{VAR}}}` and `{{& VAR}}` are raw.
//! * [`render_json`] renders a package template (`marathon.json.mustache`) over the install
//!   options. Nothing is HTML-escaped there; instead every string value is written JSON-escaped
//!   (without the surrounding quotes), so `"{{{hello.placement}}}"` stays valid JSON even when
//!   the value holds quotes — this is what a DC/OS package installer does. Lists and maps in a
//!   value tag are written as compact JSON (`"constraints": {{service.constraints}}`).
//!
//! Both report every value tag whose name resolves to nothing (or to `null`) as a [`Missing`]
//! (`NAME@L<line>`, the 1-based template line of the tag); such a tag renders as an empty
//! string. Sections over missing names are simply false and are not reported.
//!
//! Supported syntax: value tags, triple mustaches, `{{& }}`, sections, inverted sections,
//! comments, dotted names with context-stack lookup, the implicit iterator `{{.}}`, and
//! standalone-line removal for section, inverted, close and comment tags alone on a line (as the
//! mustache specification describes). Partials (`{{> }}`) and delimiter changes (`{{= =}}`) are
//! not supported and are reported as errors.
//!
//! Differences from the `mustache` crate (used as a test oracle): it does not escape newlines,
//! does not keep entities, treats the empty string as true in inverted sections, has no
//! numbers, panics on a boolean in a value tag, and does not report missing values.

use std::collections::HashSet;
use std::fmt;

use indexmap::IndexMap;

/// An environment: variable name → value, in insertion order.
pub type Env = IndexMap<String, String>;

/// Sections may not nest deeper than this.
const MAX_DEPTH: usize = 100;
/// Rendering stops with an error when the output grows beyond this many bytes.
const MAX_OUTPUT: usize = 32 * 1024 * 1024;

/// The data a template is rendered over.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// No value (JSON `null`); false in sections, reported when used in a value tag.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, written as JSON writes it (`1000`, `0.1`).
    Number(serde_json::Number),
    /// A string; the empty string is false in sections.
    String(String),
    /// A list: sections iterate over it; the empty list is false.
    List(Vec<Data>),
    /// A map: sections push it as the innermost context.
    Map(IndexMap<String, Data>),
}

impl Data {
    /// The data of a `svc.yml` rendering: every variable is a string, except values equal to
    /// `true` or `false` (in any case), which become booleans.
    #[must_use]
    pub fn from_env(env: &Env) -> Data {
        Data::Map(
            env.iter()
                .map(|(k, v)| {
                    let value = if v.eq_ignore_ascii_case("true") {
                        Data::Bool(true)
                    } else if v.eq_ignore_ascii_case("false") {
                        Data::Bool(false)
                    } else {
                        Data::String(v.clone())
                    };
                    (k.clone(), value)
                })
                .collect(),
        )
    }

    /// The value as JSON (for writing lists and maps in a value tag).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Data::Null => serde_json::Value::Null,
            Data::Bool(b) => serde_json::Value::Bool(*b),
            Data::Number(n) => serde_json::Value::Number(n.clone()),
            Data::String(s) => serde_json::Value::String(s.clone()),
            Data::List(items) => {
                serde_json::Value::Array(items.iter().map(Data::to_json).collect())
            }
            Data::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// Whether an inverted section over this value renders (null, false, "" and [] do).
    fn is_falsy(&self) -> bool {
        match self {
            Data::Null | Data::Bool(false) => true,
            Data::String(s) => s.is_empty(),
            Data::List(items) => items.is_empty(),
            Data::Bool(true) | Data::Number(_) | Data::Map(_) => false,
        }
    }
}

impl From<&serde_json::Value> for Data {
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Data::Null,
            serde_json::Value::Bool(b) => Data::Bool(*b),
            serde_json::Value::Number(n) => Data::Number(n.clone()),
            serde_json::Value::String(s) => Data::String(s.clone()),
            serde_json::Value::Array(items) => Data::List(items.iter().map(Data::from).collect()),
            serde_json::Value::Object(map) => Data::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Data::from(v)))
                    .collect(),
            ),
        }
    }
}

/// How value tags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `{{x}}` is HTML-escaped, `{{{x}}}` is raw (`svc.yml` rendering).
    Html,
    /// Strings are JSON-escaped in every value tag, nothing is HTML-escaped (package templates).
    JsonString,
}

/// The result of a rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The rendered text.
    pub text: String,
    /// Value tags whose name had no value, in template order (each name and line once).
    pub missing: Vec<Missing>,
}

/// A value tag whose name had no value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Missing {
    /// The tag's name as written (`HELLO_COUNT`, `service.name`).
    pub name: String,
    /// 1-based template line of the tag.
    pub line: usize,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@L{}", self.name, self.line)
    }
}

/// A template that cannot be rendered: malformed syntax, unsupported tags, or runaway output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// 1-based template line of the offending tag.
    pub line: usize,
    /// The offending tag as written (possibly shortened), e.g. `{{#HELLO}}`.
    pub tag: String,
    /// What is wrong, phrased to follow the tag: `is never closed; expected {{/HELLO}}`.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} {}", self.line, self.tag, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Renders a `svc.yml` template over an environment (see the module docs for the semantics).
///
/// # Errors
/// A malformed template (unclosed tag or section, mismatched close tag, partials, delimiter
/// changes).
pub fn render_env(template: &str, env: &Env) -> Result<Rendered, TemplateError> {
    render(template, &Data::from_env(env), Escape::Html)
}

/// Renders a package template over JSON data (see the module docs for the semantics).
///
/// # Errors
/// A malformed template.
pub fn render_json(template: &str, data: &serde_json::Value) -> Result<Rendered, TemplateError> {
    render(template, &Data::from(data), Escape::JsonString)
}

/// Renders a template over arbitrary data with the given escaping.
///
/// # Errors
/// A malformed template.
pub fn render(template: &str, data: &Data, escape: Escape) -> Result<Rendered, TemplateError> {
    render_mapped(template, data, escape).map(|(rendered, _)| rendered)
}

/// Renders and also returns, for every rendered line (index 0 = line 1), the template line its
/// first character came from, so errors found in the output can name template lines.
pub(crate) fn render_mapped(
    template: &str,
    data: &Data,
    escape: Escape,
) -> Result<(Rendered, Vec<usize>), TemplateError> {
    let tokens = tokenize(template)?;
    let tree = build_tree(tokens)?;
    let mut r = Renderer {
        out: String::with_capacity(template.len()),
        line_map: Vec::new(),
        pending_line: true,
        missing: Vec::new(),
        seen_missing: HashSet::new(),
        escape,
        stack: vec![data],
    };
    r.render_nodes(&tree)?;
    Ok((
        Rendered {
            text: r.out,
            missing: r.missing,
        },
        r.line_map,
    ))
}

/// Maps a rendered line to the template line it came from.
pub(crate) fn template_line(line_map: &[usize], rendered_line: usize) -> usize {
    if rendered_line == 0 {
        return 0;
    }
    match line_map.get(rendered_line - 1) {
        Some(l) => *l,
        None => match line_map.last() {
            Some(last) => last + (rendered_line - line_map.len()),
            None => rendered_line,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Var { raw: bool },
    Open { inverted: bool },
    Close,
    Comment,
}

#[derive(Debug)]
enum Token<'t> {
    /// Template text `[start, end)` of the original, beginning on `line`.
    Text { text: &'t str, line: usize },
    Tag {
        kind: TagKind,
        name: &'t str,
        src: &'t str,
        line: usize,
    },
}

/// A shortened tag for error messages.
fn short(src: &str) -> String {
    const MAX: usize = 40;
    let one_line: String = src
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if one_line.chars().count() > MAX {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

fn tokenize(template: &str) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < template.len() {
        let rest = &template[pos..];
        let Some(open_rel) = rest.find("{{") else {
            tokens.push(Token::Text { text: rest, line });
            break;
        };
        if open_rel > 0 {
            let text = &rest[..open_rel];
            tokens.push(Token::Text { text, line });
            line += count_newlines(text);
        }
        let open = pos + open_rel;
        let after = &template[open + 2..];
        let (kind, content, end) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find("}}}") {
                Some(close) => (
                    TagKind::Var { raw: true },
                    &inner[..close],
                    open + 3 + close + 3,
                ),
                None => {
                    return Err(TemplateError {
                        line,
                        tag: short(&template[open..]),
                        message: "is never closed; expected \"}}}\"".to_owned(),
                    });
                }
            }
        } else {
            match after.find("}}") {
                Some(close) => {
                    let content = &after[..close];
                    let end = open + 2 + close + 2;
                    match content.chars().next() {
                        Some('#') => (TagKind::Open { inverted: false }, &content[1..], end),
                        Some('^') => (TagKind::Open { inverted: true }, &content[1..], end),
                        Some('/') => (TagKind::Close, &content[1..], end),
                        Some('!') => (TagKind::Comment, &content[1..], end),
                        Some('&') => (TagKind::Var { raw: true }, &content[1..], end),
                        Some('>') => {
                            return Err(TemplateError {
                                line,
                                tag: short(&template[open..end]),
                                message: "is a partial; partials are not supported".to_owned(),
                            });
                        }
                        Some('=') => {
                            return Err(TemplateError {
                                line,
                                tag: short(&template[open..end]),
                                message: "changes the delimiters; delimiter changes are not \
                                          supported"
                                    .to_owned(),
                            });
                        }
                        _ => (TagKind::Var { raw: false }, content, end),
                    }
                }
                None => {
                    return Err(TemplateError {
                        line,
                        tag: short(&template[open..]),
                        message: "is never closed; expected \"}}\"".to_owned(),
                    });
                }
            }
        };
        let src = &template[open..end];
        let name = content.trim();
        if name.is_empty() && kind != TagKind::Comment {
            return Err(TemplateError {
                line,
                tag: short(src),
                message: "has no name".to_owned(),
            });
        }
        tokens.push(Token::Tag {
            kind,
            name,
            src,
            line,
        });
        line += count_newlines(src);
        pos = end;
    }
    apply_standalone(&mut tokens);
    Ok(tokens)
}

fn count_newlines(s: &str) -> usize {
    s.bytes().filter(|b| *b == b'\n').count()
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// Removes the lines of section, inverted, close and comment tags that stand alone on a line
/// (only whitespace around them): the indentation before and the rest of the line including
/// its newline.
fn apply_standalone(tokens: &mut [Token<'_>]) {
    let n = tokens.len();
    // (trim_front_to, trim_back_to) in bytes for each text token, decided on the original text.
    let mut cut_front: Vec<Option<usize>> = vec![None; n];
    let mut cut_back: Vec<Option<usize>> = vec![None; n];
    for i in 0..n {
        let Some(Token::Tag { kind, .. }) = tokens.get(i) else {
            continue;
        };
        if matches!(kind, TagKind::Var { .. }) {
            continue;
        }
        // Before the tag: template start, or text whose last line is blank.
        let before = if i == 0 {
            Some(None)
        } else {
            match tokens.get(i - 1) {
                Some(Token::Text { text, .. }) => match text.rfind('\n') {
                    Some(nl) if is_blank(&text[nl + 1..]) => Some(Some((i - 1, nl + 1))),
                    None if i - 1 == 0 && is_blank(text) => Some(Some((i - 1, 0))),
                    _ => None,
                },
                _ => None,
            }
        };
        // After the tag: template end, or text whose first line is blank.
        let after = if i + 1 == n {
            Some(None)
        } else {
            match tokens.get(i + 1) {
                Some(Token::Text { text, .. }) => match text.find('\n') {
                    Some(nl) if is_blank(&text[..nl]) => Some(Some((i + 1, nl + 1))),
                    None if i + 2 == n && is_blank(text) => Some(Some((i + 1, text.len()))),
                    _ => None,
                },
                _ => None,
            }
        };
        if let (Some(before), Some(after)) = (before, after) {
            if let Some((j, at)) = before
                && let Some(slot) = cut_back.get_mut(j)
            {
                *slot = Some(at);
            }
            if let Some((j, at)) = after
                && let Some(slot) = cut_front.get_mut(j)
            {
                *slot = Some(at);
            }
        }
    }
    for (i, token) in tokens.iter_mut().enumerate() {
        if let Token::Text { text, line } = token {
            let front = cut_front.get(i).copied().flatten().unwrap_or(0);
            let back = cut_back.get(i).copied().flatten().unwrap_or(text.len());
            let back = back.max(front);
            *line += count_newlines(&text[..front]);
            *text = &text[front..back];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tree

#[derive(Debug)]
enum Node<'t> {
    Text {
        text: &'t str,
        line: usize,
    },
    Var {
        name: &'t str,
        raw: bool,
        line: usize,
    },
    Section {
        name: &'t str,
        inverted: bool,
        line: usize,
        children: Vec<Node<'t>>,
    },
}

struct OpenSection<'t> {
    name: &'t str,
    inverted: bool,
    line: usize,
    src: &'t str,
    children: Vec<Node<'t>>,
}

fn build_tree(tokens: Vec<Token<'_>>) -> Result<Vec<Node<'_>>, TemplateError> {
    let mut root: Vec<Node<'_>> = Vec::new();
    let mut stack: Vec<OpenSection<'_>> = Vec::new();
    for token in tokens {
        let node = match token {
            Token::Text { text, line } => {
                if text.is_empty() {
                    continue;
                }
                Node::Text { text, line }
            }
            Token::Tag {
                kind: TagKind::Comment,
                ..
            } => continue,
            Token::Tag {
                kind: TagKind::Var { raw },
                name,
                line,
                ..
            } => Node::Var { name, raw, line },
            Token::Tag {
                kind: TagKind::Open { inverted },
                name,
                src,
                line,
            } => {
                if stack.len() >= MAX_DEPTH {
                    return Err(TemplateError {
                        line,
                        tag: short(src),
                        message: format!("nests sections more than {MAX_DEPTH} levels deep"),
                    });
                }
                stack.push(OpenSection {
                    name,
                    inverted,
                    line,
                    src,
                    children: Vec::new(),
                });
                continue;
            }
            Token::Tag {
                kind: TagKind::Close,
                name,
                src,
                line,
            } => {
                let Some(open) = stack.pop() else {
                    return Err(TemplateError {
                        line,
                        tag: short(src),
                        message: "closes a section that was never opened".to_owned(),
                    });
                };
                if open.name != name {
                    return Err(TemplateError {
                        line,
                        tag: short(src),
                        message: format!(
                            "does not close the open section {} from line {}; expected {{{{/{}}}}}",
                            short(open.src),
                            open.line,
                            open.name
                        ),
                    });
                }
                Node::Section {
                    name: open.name,
                    inverted: open.inverted,
                    line: open.line,
                    children: open.children,
                }
            }
        };
        match stack.last_mut() {
            Some(open) => open.children.push(node),
            None => root.push(node),
        }
    }
    if let Some(open) = stack.pop() {
        return Err(TemplateError {
            line: open.line,
            tag: short(open.src),
            message: format!("is never closed; expected {{{{/{}}}}}", open.name),
        });
    }
    Ok(root)
}

// ---------------------------------------------------------------------------------------------
// Rendering

struct Renderer<'d> {
    out: String,
    line_map: Vec<usize>,
    /// Whether the next written character starts a new output line.
    pending_line: bool,
    missing: Vec<Missing>,
    seen_missing: HashSet<(String, usize)>,
    escape: Escape,
    stack: Vec<&'d Data>,
}

impl<'d> Renderer<'d> {
    fn render_nodes(&mut self, nodes: &[Node<'_>]) -> Result<(), TemplateError> {
        for node in nodes {
            match node {
                Node::Text { text, line } => self.write_text(text, *line)?,
                Node::Var { name, raw, line } => self.render_var(name, *raw, *line)?,
                Node::Section {
                    name,
                    inverted,
                    line,
                    children,
                } => self.render_section(name, *inverted, *line, children)?,
            }
        }
        Ok(())
    }

    fn check_size(&self, line: usize, tag: &str) -> Result<(), TemplateError> {
        if self.out.len() > MAX_OUTPUT {
            return Err(TemplateError {
                line,
                tag: tag.to_owned(),
                message: format!("makes the output larger than {MAX_OUTPUT} bytes"),
            });
        }
        Ok(())
    }

    /// Writes template text that starts on template line `line`.
    fn write_text(&mut self, text: &str, line: usize) -> Result<(), TemplateError> {
        let mut current = line;
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                self.out.push('\n');
                current += 1;
                self.pending_line = true;
            }
            if !piece.is_empty() {
                if self.pending_line {
                    self.line_map.push(current);
                    self.pending_line = false;
                }
                self.out.push_str(piece);
            }
        }
        self.check_size(line, "text")
    }

    /// Writes a substituted value from a tag on template line `line`.
    fn write_value(&mut self, value: &str, line: usize) {
        for (i, piece) in value.split('\n').enumerate() {
            if i > 0 {
                self.out.push('\n');
                self.pending_line = true;
            }
            if !piece.is_empty() {
                if self.pending_line {
                    self.line_map.push(line);
                    self.pending_line = false;
                }
                self.out.push_str(piece);
            }
        }
    }

    fn lookup(&self, name: &str) -> Option<&'d Data> {
        if name == "." {
            return self.stack.last().copied();
        }
        let mut parts = name.split('.');
        let first = parts.next()?;
        let mut value = self.stack.iter().rev().find_map(|ctx| match ctx {
            Data::Map(map) => map.get(first),
            _ => None,
        })?;
        for part in parts {
            value = match value {
                Data::Map(map) => map.get(part)?,
                _ => return None,
            };
        }
        Some(value)
    }

    fn render_var(&mut self, name: &str, raw: bool, line: usize) -> Result<(), TemplateError> {
        let value = match self.lookup(name) {
            None | Some(Data::Null) => {
                let key = (name.to_owned(), line);
                if self.seen_missing.insert(key) {
                    self.missing.push(Missing {
                        name: name.to_owned(),
                        line,
                    });
                }
                return Ok(());
            }
            Some(v) => v,
        };
        let text = match (self.escape, value) {
            (_, Data::Null) => String::new(),
            (_, Data::Bool(b)) => b.to_string(),
            (_, Data::Number(n)) => n.to_string(),
            (Escape::Html, Data::String(s)) => {
                if raw {
                    s.clone()
                } else {
                    html_escape(s)
                }
            }
            (Escape::JsonString, Data::String(s)) => json_escape(s),
            (Escape::Html, Data::List(_) | Data::Map(_)) => {
                let json = value.to_json().to_string();
                if raw { json } else { html_escape(&json) }
            }
            (Escape::JsonString, Data::List(_) | Data::Map(_)) => value.to_json().to_string(),
        };
        self.write_value(&text, line);
        self.check_size(line, name)
    }

    fn render_section(
        &mut self,
        name: &str,
        inverted: bool,
        line: usize,
        children: &[Node<'_>],
    ) -> Result<(), TemplateError> {
        let value = self.lookup(name);
        if inverted {
            if value.is_none_or(Data::is_falsy) {
                self.render_nodes(children)?;
            }
            return Ok(());
        }
        let Some(value) = value else {
            return Ok(());
        };
        match value {
            Data::Null | Data::Bool(false) => {}
            Data::String(s) if s.is_empty() => {}
            Data::List(items) => {
                for item in items {
                    self.stack.push(item);
                    let result = self.render_nodes(children);
                    self.stack.pop();
                    result?;
                    self.check_size(line, name)?;
                }
            }
            Data::Bool(true) | Data::String(_) | Data::Number(_) | Data::Map(_) => {
                self.stack.push(value);
                let result = self.render_nodes(children);
                self.stack.pop();
                result?;
            }
        }
        Ok(())
    }
}

/// HTML-escapes a value the way berth's spec rendering does (see the module docs).
#[must_use]
pub fn html_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for (i, c) in value.char_indices() {
        match c {
            '&' => {
                if starts_entity(&value[i + 1..]) {
                    out.push('&');
                } else {
                    out.push_str("&amp;");
                }
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether the text after an `&` is an entity or character reference (`amp;`, `#39;`).
fn starts_entity(rest: &str) -> bool {
    for (i, c) in rest.char_indices() {
        match c {
            ';' => return i > 0,
            '#' if i == 0 => {}
            c if c.is_alphanumeric() => {}
            _ => return false,
        }
    }
    false
}

/// JSON-escapes a string without the surrounding quotes.
fn json_escape(value: &str) -> String {
    let quoted = serde_json::Value::String(value.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_owned)
        .unwrap_or(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn r(template: &str, pairs: &[(&str, &str)]) -> String {
        match render_env(template, &env(pairs)) {
            Ok(rendered) => rendered.text,
            Err(e) => format!("ERROR {e}"),
        }
    }

    #[test]
    fn values_and_escaping() {
        assert_eq!(r("a {{X}} b", &[("X", "1")]), "a 1 b");
        assert_eq!(
            r("{{X}}", &[("X", "<a href=\"x\">'&'</a>")]),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            r("{{X}}", &[("X", "&amp; &#39; &x y")]),
            "&amp; &#39; &amp;x y"
        );
        assert_eq!(r("{{X}}", &[("X", "a\nb")]), "a&#10;b");
        assert_eq!(r("{{{X}}}", &[("X", "[\"a\"]\n")]), "[\"a\"]\n");
        assert_eq!(r("{{& X}}", &[("X", "<")]), "<");
        assert_eq!(r("{{ X }}", &[("X", "v")]), "v");
        assert_eq!(r("{{X}}", &[("X", "TRUE")]), "true");
    }

    #[test]
    fn entity_detection() {
        assert!(starts_entity("amp;"));
        assert!(starts_entity("#39;"));
        assert!(!starts_entity(";"));
        assert!(!starts_entity("a b;"));
        assert!(!starts_entity("a#;"));
        assert!(!starts_entity("abc"));
    }

    #[test]
    fn sections_over_env() {
        let t = "{{#B}}yes{{/B}}{{^B}}no{{/B}}";
        assert_eq!(r(t, &[("B", "true")]), "yes");
        assert_eq!(r(t, &[("B", "False")]), "no");
        assert_eq!(r(t, &[("B", "")]), "no");
        assert_eq!(r(t, &[]), "no");
        assert_eq!(r(t, &[("B", "x")]), "yes");
        assert_eq!(r("{{#B}}[{{.}}]{{/B}}", &[("B", "x")]), "[x]");
    }

    #[test]
    fn standalone_lines() {
        let t = "a:\n  {{#B}}\n  b: 1\n  {{/B}}\n  {{! note }}\nc: 2\n";
        assert_eq!(r(t, &[("B", "true")]), "a:\n  b: 1\nc: 2\n");
        assert_eq!(r(t, &[("B", "false")]), "a:\nc: 2\n");
        // Not standalone: other content on the line.
        assert_eq!(r("x {{#B}}y{{/B}}\n", &[("B", "true")]), "x y\n");
        assert_eq!(r("{{#B}}\ny\n{{/B}}", &[("B", "true")]), "y\n");
        assert_eq!(r("  {{#B}}  \r\ny\n{{/B}}", &[("B", "true")]), "y\n");
    }

    #[test]
    fn standalone_lines_follow_the_mustache_specification() {
        let t = |template: &str| r(template, &[("B", "true"), ("F", "false")]);
        // Standalone lines.
        assert_eq!(
            t("| This Is\n{{#B}}\n|\n{{/B}}\n| A Line"),
            "| This Is\n|\n| A Line"
        );
        // Indented standalone lines.
        assert_eq!(
            t("| This Is\n  {{#B}}\n|\n  {{/B}}\n| A Line"),
            "| This Is\n|\n| A Line"
        );
        // Standalone line endings.
        assert_eq!(t("|\r\n{{#B}}\r\n{{/B}}\r\n|"), "|\r\n|");
        // Standalone without previous line / without newline.
        assert_eq!(t("  {{#B}}\n#{{/B}}\n/"), "#\n/");
        assert_eq!(t("#{{#B}}\n/\n  {{/B}}"), "#\n/\n");
        // Tab indentation, and a section whose content is only indentation.
        assert_eq!(t("\t{{#B}}\n\t{{/B}}\n"), "");
        assert_eq!(t("{{#B}}\n {{/B}}\n"), "");
        // Inverted and comment tags.
        assert_eq!(t("a\n {{^F}}\nb\n {{/F}}\n {{! c }}\nd"), "a\nb\nd");
        // Not standalone: other tags or text on the line.
        assert_eq!(t("{{#B}}{{/B}}\n"), "\n");
        assert_eq!(t(" {{#B}}x\n{{/B}}"), " x\n");
    }

    #[test]
    fn missing_values_are_reported_with_lines() {
        let rendered = render_env(
            "a: {{A}}\nb: {{B}}\n{{#C}}{{D}}{{/C}}\nx: {{A}}",
            &env(&[("B", "1")]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rendered.text, "a: \nb: 1\n\nx: ");
        let shown: Vec<String> = rendered.missing.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["A@L1", "A@L4"]);
    }

    #[test]
    fn malformed_templates() {
        let e = render_env("a\n{{#A}}\nb", &Env::new()).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("line 2: {{#A}} is never closed; expected {{/A}}".to_owned())
        );
        let e = render_env("{{#A}}{{/B}}", &Env::new()).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some(
                "line 1: {{/B}} does not close the open section {{#A}} from line 1; expected {{/A}}"
                    .to_owned()
            )
        );
        let e = render_env("x\n\n{{/B}}", &Env::new()).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("line 3: {{/B}} closes a section that was never opened".to_owned())
        );
        let e = render_env("x {{A", &Env::new()).err();
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("line 1: {{A is never closed; expected \"}}\"".to_owned())
        );
        assert!(render_env("{{{A}}", &Env::new()).is_err());
        assert!(render_env("{{> p}}", &Env::new()).is_err());
        assert!(render_env("{{=<% %>=}}", &Env::new()).is_err());
        assert!(render_env("{{}}", &Env::new()).is_err());
    }

    #[test]
    fn json_data() {
        let data = serde_json::json!({
            "service": {"name": "hello", "sleep": 1000, "factor": 1.15, "cpus": 0.1,
                        "constraints": [["hostname", "UNIQUE"]], "on": true, "off": false,
                        "placement": "[[\"hostname\", \"UNIQUE\"]]"},
            "items": [{"n": "a"}, {"n": "b"}],
        });
        let t = "{{service.name}} {{service.sleep}} {{service.factor}} {{service.cpus}} \
                 {{service.constraints}} \"{{{service.placement}}}\" {{#items}}<{{n}}>{{/items}} \
                 {{#service.on}}on{{/service.on}}{{#service.off}}off{{/service.off}}{{missing.x}}";
        let rendered = render_json(t, &data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rendered.text,
            "hello 1000 1.15 0.1 [[\"hostname\",\"UNIQUE\"]] \"[[\\\"hostname\\\", \\\"UNIQUE\\\"]]\" <a><b> on"
        );
        assert_eq!(rendered.missing.len(), 1);
    }

    #[test]
    fn dotted_names_and_context_stack() {
        let data =
            serde_json::json!({"a": {"b": {"c": "deep"}}, "x": "outer", "m": {"y": "inner"}});
        let t = "{{a.b.c}}|{{#m}}{{x}}-{{y}}{{/m}}|{{#a.b}}{{c}}{{/a.b}}|{{a.z.c}}";
        let rendered = render_json(t, &data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rendered.text, "deep|outer-inner|deep|");
    }

    #[test]
    fn line_map_follows_template_lines() {
        let t = "a: 1\n{{#B}}\nb: 2\n{{/B}}\nc: {{{V}}}\nd: 4\n";
        let (rendered, map) = render_mapped(
            t,
            &Data::from_env(&env(&[("B", "true"), ("V", "x\ny")])),
            Escape::Html,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rendered.text, "a: 1\nb: 2\nc: x\ny\nd: 4\n");
        assert_eq!(map, vec![1, 3, 5, 5, 6]);
        assert_eq!(template_line(&map, 5), 6);
        assert_eq!(template_line(&map, 6), 7);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let t = "{{#a}}".repeat(1000);
        assert!(render_env(&t, &Env::new()).is_err());
    }
}
