//! The JSON of `GET /v1/plans/{plan}` written straight into buffers: byte for byte what
//! `serde_json::to_vec_pretty` makes of a [`PlanReport`], several times faster (a deploy plan
//! of 50,000 steps is 13 MB of JSON). Every step's four strings go in with one check for
//! characters that need escaping and one copy; whole into one buffer sized once, or in
//! pieces written as a response body is sent ([`JsonCursor`]).

use super::{PlanReport, StepLine, WaitSummary};
use crate::element::Step;
use crate::status::Status;

/// Bytes a step takes, about (to size the buffer once).
const STEP_BYTES: usize = 300;

impl PlanReport {
    /// The pretty-printed JSON of this report: what `serde_json::to_vec_pretty(self)` gives.
    #[must_use]
    pub fn to_json_pretty(&self) -> Vec<u8> {
        let mut out = Out(Vec::with_capacity(1024 + self.steps.len() * STEP_BYTES));
        let mut cursor = JsonCursor::default();
        while cursor.piece(self, &mut out) {}
        out.0
    }
}

/// Where a report's JSON is written up to: [`JsonCursor::next_chunk`] hands it out in pieces
/// of about `chunk` bytes, written only as they are asked for (a response body streamed as
/// the client reads it, with no buffer of the whole text). The pieces, concatenated, are
/// [`PlanReport::to_json_pretty`].
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonCursor {
    at: At,
    /// The number of the next step in the plan.
    n: usize,
}

#[derive(Debug, Default, Clone, Copy)]
enum At {
    #[default]
    Head,
    Phase(usize),
    Step(usize, usize),
    PhaseEnd(usize),
    Tail,
    Done,
}

impl JsonCursor {
    /// The next piece of `report`'s JSON, of about `chunk` bytes (at least one step);
    /// `None` once all of it was handed out. Pass the same report every time.
    pub fn next_chunk(&mut self, report: &PlanReport, chunk: usize) -> Option<Vec<u8>> {
        let mut out = Out(Vec::with_capacity(chunk + 4 * STEP_BYTES));
        while out.0.len() < chunk && self.piece(report, &mut out) {}
        (!out.0.is_empty()).then_some(out.0)
    }

    /// Writes the next piece (the head, a phase's start, a step, a phase's end or the tail);
    /// `false` when there was none left.
    fn piece(&mut self, report: &PlanReport, out: &mut Out) -> bool {
        let phases = &report.plan.phases;
        self.at = match self.at {
            At::Head => {
                out.raw("{\n  \"phases\": ");
                if phases.is_empty() {
                    out.raw("[]");
                    At::Tail
                } else {
                    out.raw("[");
                    At::Phase(0)
                }
            }
            At::Phase(i) => {
                let phase = &phases[i];
                out.raw(if i == 0 { "\n    {" } else { ",\n    {" });
                out.field(6, "id", &phase.id.0, true);
                out.field(6, "name", &phase.name, false);
                out.raw(",\n      \"steps\": ");
                if phase.steps.is_empty() {
                    out.raw("[]");
                    At::PhaseEnd(i)
                } else {
                    out.raw("[");
                    At::Step(i, 0)
                }
            }
            At::Step(i, k) => {
                let steps = &phases[i].steps;
                out.step(report, &steps[k], self.n, k == 0);
                self.n += 1;
                if k + 1 < steps.len() {
                    At::Step(i, k + 1)
                } else {
                    out.raw("\n      ]");
                    At::PhaseEnd(i)
                }
            }
            At::PhaseEnd(i) => {
                let status = report.phases.get(i).copied().unwrap_or(Status::Pending);
                out.field(6, "strategy", phases[i].strategy.name(), false);
                out.field(6, "status", status.as_str(), false);
                out.raw("\n    }");
                if i + 1 < phases.len() {
                    At::Phase(i + 1)
                } else {
                    out.raw("\n  ]");
                    At::Tail
                }
            }
            At::Tail => {
                out.field(2, "strategy", report.plan.strategy.name(), false);
                out.raw(",\n  \"errors\": ");
                if report.errors.is_empty() {
                    out.raw("[]");
                } else {
                    out.raw("[");
                    for (i, error) in report.errors.iter().enumerate() {
                        out.raw(if i == 0 { "\n    " } else { ",\n    " });
                        out.string(error);
                    }
                    out.raw("\n  ]");
                }
                out.field(2, "status", report.status.as_str(), false);
                out.raw("\n}");
                At::Done
            }
            At::Done => return false,
        };
        true
    }
}

struct Out(Vec<u8>);

impl Out {
    /// Step number `n` of the plan; `first` in its phase.
    fn step(&mut self, report: &PlanReport, step: &Step, n: usize, first: bool) {
        self.raw(if first { "\n        {" } else { ",\n        {" });
        let line = report.line(step, n);
        self.field(10, "id", &step.id.0, true);
        self.field(10, "status", line.display.as_str(), false);
        self.field(10, "name", &step.name, false);
        self.raw(",\n          \"message\": \"");
        self.message(&line);
        self.raw("\"");
        if let Some(waiting) = PlanReport::of(&report.waiting, n) {
            self.raw(",\n          \"waiting\": ");
            self.nested(10, waiting);
        }
        self.raw("\n        }");
    }

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
        let _ = line.parts(&mut |p| {
            self.escaped(p);
            Ok::<(), std::convert::Infallible>(())
        });
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
