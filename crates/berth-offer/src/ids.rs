//! Id generation, injected so that evaluation stays deterministic.

/// Source of fresh unique ids (resource ids, persistence ids, task and executor id suffixes).
///
/// The scheduler passes a generator of random UUIDs; tests pass [`SequentialIds`]. Any
/// `FnMut() -> String` closure is a generator too.
pub trait IdGenerator {
    /// A fresh id, unique for the life of the service.
    fn uuid(&mut self) -> String;
}

impl<F: FnMut() -> String> IdGenerator for F {
    fn uuid(&mut self) -> String {
        self()
    }
}

/// Deterministic UUID-shaped ids: `00000000-0000-4000-8000-000000000001`, `…002`, ….
#[derive(Debug, Clone, Default)]
pub struct SequentialIds {
    next: u64,
}

impl SequentialIds {
    /// Starts at 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts after `n` (the first id ends in `n + 1`).
    #[must_use]
    pub fn starting_after(n: u64) -> Self {
        Self { next: n }
    }

    /// How many ids were handed out so far (since the start value).
    #[must_use]
    pub fn issued(&self) -> u64 {
        self.next
    }
}

impl IdGenerator for SequentialIds {
    fn uuid(&mut self) -> String {
        self.next = self.next.wrapping_add(1);
        sequential_uuid(self.next)
    }
}

/// `00000000-0000-4000-8000-<n as 12 hex digits>` (the low 48 bits of `n`), built without
/// the formatting machinery: benchmarks draw dozens of these per evaluation.
#[must_use]
pub fn sequential_uuid(n: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    s.push_str("00000000-0000-4000-8000-");
    for shift in (0..12).rev() {
        s.push(char::from(HEX[((n >> (shift * 4)) & 0xf) as usize]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_are_uuid_shaped_and_increasing() {
        let mut ids = SequentialIds::new();
        assert_eq!(ids.uuid(), "00000000-0000-4000-8000-000000000001");
        assert_eq!(ids.uuid(), "00000000-0000-4000-8000-000000000002");
        assert_eq!(ids.issued(), 2);
        let mut from = SequentialIds::starting_after(0xff);
        assert_eq!(from.uuid(), "00000000-0000-4000-8000-000000000100");
        assert_eq!(
            sequential_uuid(0x0abc_def0_1234),
            "00000000-0000-4000-8000-0abcdef01234"
        );
        assert_eq!(
            sequential_uuid(u64::MAX),
            "00000000-0000-4000-8000-ffffffffffff"
        );
    }

    #[test]
    fn closures_are_generators() {
        let mut n = 0;
        let mut f = || {
            n += 1;
            format!("x{n}")
        };
        let g: &mut dyn IdGenerator = &mut f;
        assert_eq!(g.uuid(), "x1");
        assert_eq!(g.uuid(), "x2");
    }
}
