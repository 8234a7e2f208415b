//! Errors of this crate: the [`Error`] enum, and the plain data carried inside it.

use std::fmt;

use crate::render::TemplateError;

/// One problem found in a service spec: where, which field, the bad value, and what is allowed.
///
/// Displayed as `svc.yml:14: pods.hello.tasks.server.goal: "FINISHED" is not a goal; allowed:
/// RUNNING, FINISH, ONCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the spec came from (`svc.yml`, `dist/svc.yml`).
    pub file: String,
    /// 1-based line in that file (the template's line when the spec was rendered from one).
    pub line: Option<usize>,
    /// Dotted path of the field (`pods.hello.count`); empty for whole-file problems.
    pub field: String,
    /// The offending value as written, if there is one.
    pub value: Option<String>,
    /// What is wrong and what is allowed; phrased to follow the value when there is one.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        if let Some(value) = &self.value {
            write!(f, "{} ", quote(value))?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for SpecError {}

/// Quotes a value for a message: `"text"`, with quotes, backslashes and control characters
/// escaped.
#[must_use]
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// All problems found in a spec (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// Whether any error's display contains `needle` (handy in tests and callers).
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        self.0.iter().any(|e| e.to_string().contains(needle))
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// One violation of a package's options schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError {
    /// JSON pointer of the offending option (`/hello/count`; `/` for the whole document).
    pub pointer: String,
    /// What the schema says, e.g. `"three" is not of type "integer"`.
    pub message: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "options.json: {}: {}", self.pointer, self.message)
    }
}

/// The error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template (`svc.yml`, `marathon.json.mustache`) is malformed.
    #[error("{file}:{}: {} {}", .error.line, .error.tag, .error.message)]
    Template {
        /// The template's file name.
        file: String,
        /// What is wrong.
        error: TemplateError,
    },
    /// The service spec has problems (all of them are listed).
    #[error("{0}")]
    Spec(SpecErrors),
    /// `options.json` is not valid JSON.
    #[error("options.json:{line}:{column}: invalid JSON: {message}")]
    OptionsSyntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// `options.json` violates the package's schema (all violations are listed).
    #[error("{}", join_lines(.0))]
    Options(Vec<OptionsError>),
    /// A package file is missing, unreadable or malformed.
    #[error("{file}: {message}")]
    Package {
        /// The file, relative to the package directory.
        file: String,
        /// What is wrong.
        message: String,
    },
}

fn join_lines(errors: &[OptionsError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<SpecErrors> for Error {
    fn from(errors: SpecErrors) -> Self {
        Error::Spec(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_error_display() {
        let e = SpecError {
            file: "svc.yml".to_owned(),
            line: Some(14),
            field: "pods.hello.tasks.server.goal".to_owned(),
            value: Some("FINISHED".to_owned()),
            message: "is not a goal; allowed: RUNNING, FINISH, ONCE".to_owned(),
        };
        assert_eq!(
            e.to_string(),
            "svc.yml:14: pods.hello.tasks.server.goal: \"FINISHED\" is not a goal; allowed: \
             RUNNING, FINISH, ONCE"
        );
        let e = SpecError {
            file: "svc.yml".to_owned(),
            line: None,
            field: String::new(),
            value: None,
            message: "is empty".to_owned(),
        };
        assert_eq!(e.to_string(), "svc.yml: is empty");
        assert_eq!(quote("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u{1}\"");
    }
}
