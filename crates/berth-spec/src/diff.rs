//! Human-readable difference between two service specs, as logged when a configuration
//! changes: a unified diff of the pretty-printed JSON of both, two lines of context.

use similar::TextDiff;

use crate::model::ServiceSpec;

/// The unified diff from `old` to `new` (headers `--- ServiceSpec.old` / `+++ ServiceSpec.new`,
/// two lines of context), or `None` when the specs are equal.
#[must_use]
pub fn spec_diff(old: &ServiceSpec, new: &ServiceSpec) -> Option<String> {
    if old == new {
        return None;
    }
    let old_json = pretty(old);
    let new_json = pretty(new);
    if old_json == new_json {
        return None;
    }
    let diff = TextDiff::from_lines(&old_json, &new_json);
    Some(
        diff.unified_diff()
            .context_radius(2)
            .header("ServiceSpec.old", "ServiceSpec.new")
            .to_string(),
    )
}

fn pretty(spec: &ServiceSpec) -> String {
    let mut text = serde_json::to_string_pretty(spec)
        .unwrap_or_else(|e| format!("<the spec could not be written as JSON: {e}>"));
    text.push('\n');
    text
}
