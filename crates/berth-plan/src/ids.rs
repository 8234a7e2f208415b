//! Where element ids come from: always injected, so plans are reproducible in tests.

/// A source of unique ids (UUID text in production, counters in tests).
pub trait IdGenerator {
    /// A new unique id.
    fn uuid(&mut self) -> String;
}

/// Deterministic ids `00000000-0000-4000-8000-000000000001`, `…02`, … for tests.
#[derive(Debug, Clone, Default)]
pub struct SequentialIds {
    next: u64,
}

impl IdGenerator for SequentialIds {
    fn uuid(&mut self) -> String {
        self.next += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next)
    }
}
