//! A listing of stored nodes for people: what `berth state tree` shows.

use berth_state::{Persister, StateError};
use serde_json::{Value, json};

/// The nodes at and below `path` as JSON: `{"path": …, "nodes": [{"path", "size"}…]}`,
/// sorted by path (the node itself first); no nodes when it does not exist.
///
/// # Errors
/// An invalid path or a failing store.
pub fn tree(persister: &dyn Persister, path: &str) -> Result<Value, StateError> {
    let nodes: Vec<Value> = persister
        .subtree(path)?
        .into_iter()
        .map(|(p, data)| json!({ "path": p, "size": data.len() }))
        .collect();
    Ok(json!({ "path": path, "nodes": nodes }))
}
