//! The JSON of `GET /v1/plans/{plan}` written straight into one buffer: byte for byte what
//! `serde_json::to_vec_pretty` makes of a [`PlanReport`], several times faster (a deploy plan
//! of 50,000 steps is 13 MB of JSON). Every step's four strings go in with one check for
//! characters that need escaping and one copy, into a buffer sized once.

use super::{PlanReport, StepLine, WaitSummary};
use crate::element::{RecoveryType, Work};

/// Bytes a step takes, about (to size the buffer once).
const STEP_BYTES: usize = 300;

impl PlanReport {
    /// The pretty-printed JSON of this report: what `serde_json::to_vec_pretty(self)` gives.
    #[must_use]
    pub fn to_json_pretty(&self) -> Vec<u8> {
        let mut out = Out(Vec::with_capacity(1024 + self.steps.len() * STEP_BYTES));
        out.raw("{\n  \"phases\": ");
        if self.plan.phases.is_empty() {
            out.raw("[]");
        } else {
            out.raw("[");
            let mut n = 0;
            for (i, (phase, status)) in self.plan.phases.iter().zip(&self.phases).enumerate() {
                out.raw(if i == 0 { "\n    {" } else { ",\n    {" });
                out.field(6, "id", &phase.id.0, true);
                out.field(6, "name", &phase.name, false);
                out.raw(",\n      \"steps\": ");
                if phase.steps.is_empty() {
                    out.raw("[]");
                } else {
                    out.raw("[");
                    for (k, step) in phase.steps.iter().enumerate() {
                        out.raw(if k == 0 {
                            "\n        {"
                        } else {
                            ",\n        {"
                        });
                        let line = self.line(step, n);
                        out.field(10, "id", &step.id.0, true);
                        out.field(10, "status", line.display.as_str(), false);
                        out.field(10, "name", &step.name, false);
                        out.raw(",\n          \"message\": \"");
                        out.message(&line);
                        out.raw("\"");
                        if let Some(waiting) = Self::of(&self.waiting, n) {
                            out.raw(",\n          \"waiting\": ");
                            out.nested(10, waiting);
                        }
                        out.raw("\n        }");
                        n += 1;
                    }
                    out.raw("\n      ]");
                }
                out.field(6, "strategy", phase.strategy.name(), false);
                out.field(6, "status", status.as_str(), false);
                out.raw("\n    }");
            }
            out.raw("\n  ]");
        }
        out.field(2, "strategy", self.plan.strategy.name(), false);
        out.raw(",\n  \"errors\": ");
        if self.errors.is_empty() {
            out.raw("[]");
        } else {
            out.raw("[");
            for (i, error) in self.errors.iter().enumerate() {
                out.raw(if i == 0 { "\n    " } else { ",\n    " });
                out.string(error);
            }
            out.raw("\n  ]");
        }
        out.field(2, "status", self.status.as_str(), false);
        out.raw("\n}");
        out.0
    }
}

struct Out(Vec<u8>);

impl Out {
    fn raw(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    /// `"key": "value"` on a line of its own, indented by `indent` spaces; `first` in its
    /// object (no comma before it).
    fn field(&mut self, indent: usize, key: &str, value: &str, first: bool) {
        self.raw(if first { "\n" } else { ",\n" });
        self.0.resize(self.0.len() + indent, b' ');
        self.raw("\"");
        self.raw(key);
        self.raw("\": ");
        self.string(value);
    }

    /// `s` as a JSON string.
    fn string(&mut self, s: &str) {
        self.raw("\"");
        self.escaped(s);
        self.raw("\"");
    }

    /// `s` escaped as JSON does inside a string: as it is when nothing needs escaping.
    fn escaped(&mut self, s: &str) {
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            // serde_json's own escaping, without the quotes it adds.
            let mut quoted = Vec::with_capacity(s.len() + 8);
            if serde_json::to_writer(&mut quoted, s).is_ok() {
                self.0.extend_from_slice(&quoted[1..quoted.len() - 1]);
            }
        } else {
            self.raw(s);
        }
    }

    /// A step's message: what [`StepLine`]'s `Display` writes, escaped.
    fn message(&mut self, line: &StepLine<'_>) {
        let step = line.step;
        self.escaped(step.work.kind());
        self.raw(": ");
        self.escaped(&step.name);
        self.raw(" [");
        self.escaped(&step.id.0);
        self.raw("] with status: ");
        self.raw(line.status.as_str());
        if line.display != line.status {
            self.raw(" (display:");
            self.raw(line.display.as_str());
            self.raw(")");
        }
        if let Work::Launch(l) = &step.work
            && l.recovery != RecoveryType::None
        {
            self.raw(" RecoveryType: ");
            self.escaped(l.recovery.as_str());
        }
        self.escaped(line.failures.unwrap_or_default());
    }

    /// A nested value pretty-printed at `indent`: serde_json's text, its lines indented (a
    /// newline only ever separates its tokens: inside strings it is escaped).
    fn nested(&mut self, indent: usize, value: &WaitSummary) {
        let Ok(text) = serde_json::to_vec_pretty(value) else {
            self.raw("null");
            return;
        };
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                self.0.push(b'\n');
                self.0.resize(self.0.len() + indent, b' ');
            }
            self.0.extend_from_slice(line);
        }
    }
}
