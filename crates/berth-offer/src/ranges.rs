//! Arithmetic on inclusive `u64` ranges (`[begin, end]`), as Mesos ports are offered.
//!
//! A *normalised* list is sorted by `begin`, has no empty (`begin > end`) entries and no two
//! entries that overlap or touch. All functions are total: odd input (inverted ranges,
//! `u64::MAX` ends) is handled without overflow or panic.

use berth_mesos::Range;

/// Sorts, drops inverted ranges, and merges overlapping or adjacent ones.
pub fn normalize(ranges: &mut Vec<Range>) {
    ranges.retain(|r| r.begin <= r.end);
    if ranges.len() < 2 {
        return;
    }
    ranges.sort_unstable_by_key(|r| (r.begin, r.end));
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    *ranges = out;
}

/// Adds `other` to `ranges` and normalises the result.
pub fn merge(ranges: &mut Vec<Range>, other: &[Range]) {
    ranges.extend_from_slice(other);
    normalize(ranges);
}

/// Removes `[begin, end]` from a normalised list (keeps it normalised).
pub fn subtract(ranges: &mut Vec<Range>, begin: u64, end: u64) {
    if begin > end {
        return;
    }
    let mut i = 0;
    while i < ranges.len() {
        let r = ranges[i];
        if r.end < begin || r.begin > end {
            i += 1;
            continue;
        }
        // Overlap: keep what lies left and right of [begin, end].
        let left = (r.begin < begin).then(|| Range {
            begin: r.begin,
            end: begin - 1,
        });
        let right = (r.end > end).then(|| Range {
            begin: end + 1,
            end: r.end,
        });
        match (left, right) {
            (Some(l), Some(rt)) => {
                ranges[i] = l;
                ranges.insert(i + 1, rt);
                i += 2;
            }
            (Some(l), None) => {
                ranges[i] = l;
                i += 1;
            }
            (None, Some(rt)) => {
                ranges[i] = rt;
                i += 1;
            }
            (None, None) => {
                ranges.remove(i);
            }
        }
    }
}

/// Whether `value` lies in one of the ranges.
#[must_use]
pub fn contains(ranges: &[Range], value: u64) -> bool {
    ranges.iter().any(|r| r.begin <= value && value <= r.end)
}

/// Whether every value of `[begin, end]` lies in a normalised list.
#[must_use]
pub fn contains_all(ranges: &[Range], begin: u64, end: u64) -> bool {
    begin <= end && ranges.iter().any(|r| r.begin <= begin && end <= r.end)
}

/// Number of values covered by the ranges (saturating).
#[must_use]
pub fn count(ranges: &[Range]) -> u64 {
    ranges.iter().fold(0u64, |acc, r| {
        if r.begin > r.end {
            acc
        } else {
            acc.saturating_add((r.end - r.begin).saturating_add(1))
        }
    })
}

/// The lowest value that lies in `ranges` (normalised) and in one of `windows` (normalised),
/// is at least `min`, and is not in `excluded` (sorted).
#[must_use]
pub fn lowest_free(ranges: &[Range], windows: &[Range], min: u64, excluded: &[u64]) -> Option<u64> {
    for r in ranges {
        for w in windows {
            let lo = r.begin.max(w.begin).max(min);
            let hi = r.end.min(w.end);
            if lo > hi {
                continue;
            }
            // Skip excluded values; `excluded` is short (ports of one pod).
            let mut p = lo;
            loop {
                if excluded.binary_search(&p).is_err() {
                    return Some(p);
                }
                if p >= hi {
                    break;
                }
                p += 1;
            }
        }
    }
    None
}

/// Formats ranges as `[a-b,c-d]` (the attribute format of the placement rules).
#[must_use]
pub fn format(ranges: &[Range]) -> String {
    let mut s = String::from("[");
    for (i, r) in ranges.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&r.begin.to_string());
        s.push('-');
        s.push_str(&r.end.to_string());
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(begin: u64, end: u64) -> Range {
        Range { begin, end }
    }

    #[test]
    fn normalize_sorts_merges_and_drops_inverted() {
        let mut v = vec![r(10, 20), r(5, 9), r(30, 25), r(15, 22), r(24, 24)];
        normalize(&mut v);
        assert_eq!(v, vec![r(5, 22), r(24, 24)]);
        let mut edge = vec![r(u64::MAX, u64::MAX), r(0, u64::MAX - 1)];
        normalize(&mut edge);
        assert_eq!(edge, vec![r(0, u64::MAX)]);
    }

    #[test]
    fn subtract_splits_and_trims() {
        let mut v = vec![r(1, 10), r(20, 30)];
        subtract(&mut v, 5, 5);
        assert_eq!(v, vec![r(1, 4), r(6, 10), r(20, 30)]);
        subtract(&mut v, 8, 25);
        assert_eq!(v, vec![r(1, 4), r(6, 7), r(26, 30)]);
        subtract(&mut v, 0, 100);
        assert!(v.is_empty());
        let mut m = vec![r(0, u64::MAX)];
        subtract(&mut m, 0, 0);
        subtract(&mut m, u64::MAX, u64::MAX);
        assert_eq!(m, vec![r(1, u64::MAX - 1)]);
        subtract(&mut m, 9, 3); // inverted: no-op
        assert_eq!(m, vec![r(1, u64::MAX - 1)]);
    }

    #[test]
    fn merge_and_count() {
        let mut v = vec![r(1, 3)];
        merge(&mut v, &[r(4, 6), r(10, 10)]);
        assert_eq!(v, vec![r(1, 6), r(10, 10)]);
        assert_eq!(count(&v), 7);
        assert_eq!(count(&[r(0, u64::MAX)]), u64::MAX);
        assert!(contains(&v, 5) && !contains(&v, 7));
        assert!(contains_all(&v, 2, 6) && !contains_all(&v, 5, 10));
    }

    #[test]
    fn lowest_free_respects_windows_min_and_exclusions() {
        let offered = vec![r(1000, 1005), r(2000, 3000)];
        let any = vec![r(0, u64::MAX)];
        assert_eq!(lowest_free(&offered, &any, 1, &[]), Some(1000));
        assert_eq!(lowest_free(&offered, &any, 1, &[1000, 1001]), Some(1002));
        let all: Vec<u64> = (1000..=1005).collect();
        assert_eq!(lowest_free(&offered, &any, 1, &all), Some(2000));
        assert_eq!(lowest_free(&offered, &[r(2500, 2600)], 1, &[]), Some(2500));
        assert_eq!(lowest_free(&offered, &[r(1006, 1999)], 1, &[]), None);
        assert_eq!(lowest_free(&[r(0, 0)], &any, 1, &[]), None);
        assert_eq!(
            lowest_free(&[r(u64::MAX, u64::MAX)], &any, 1, &[u64::MAX]),
            None
        );
        assert_eq!(format(&[r(1, 2), r(5, 9)]), "[1-2,5-9]");
    }
}
