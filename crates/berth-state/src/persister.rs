//! The [`Persister`] contract and the tree algorithms shared by the flat-map backends.

use std::collections::HashSet;
use std::sync::Arc;

use crate::StateError;
use crate::path::{ancestors, descendant_prefix, range_end, validate_path, validate_write_path};

/// One write of an atomic batch given to [`Persister::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set the data of `path`, creating it and any missing ancestors (with empty data).
    /// Children of an existing node are kept.
    Set {
        /// The node path.
        path: String,
        /// The new data.
        value: Vec<u8>,
    },
    /// Delete `path` and everything below it. Deleting a missing node is not an error.
    Delete {
        /// The node path.
        path: String,
    },
}

impl WriteOp {
    /// A [`WriteOp::Set`].
    #[must_use]
    pub fn set(path: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        WriteOp::Set {
            path: path.into(),
            value: value.into(),
        }
    }

    /// A [`WriteOp::Delete`].
    #[must_use]
    pub fn delete(path: impl Into<String>) -> Self {
        WriteOp::Delete { path: path.into() }
    }

    /// The path the write is about.
    #[must_use]
    pub fn path(&self) -> &str {
        match self {
            WriteOp::Set { path, .. } | WriteOp::Delete { path } => path,
        }
    }
}

/// A tree of byte values under ZooKeeper-like paths: the storage contract of berth's state.
///
/// # Semantics (identical for every backend)
///
/// - Every node has data (possibly empty) and may have children. The root `/` always exists,
///   has empty data and cannot be written or deleted.
/// - Paths follow [`validate_path`] (reads) and [`validate_write_path`] (writes); an invalid
///   path is a [`StateError::InvalidPath`] naming it.
/// - Setting a path creates its missing ancestors with empty data, and keeps the node's
///   children. Deleting a path deletes it and everything below it; deleting a missing path is
///   not an error.
/// - [`apply`](Persister::apply) runs its writes in order, **atomically** (after an error none
///   of them is visible, also after a crash) and **durably** (once it returns `Ok`, the writes
///   survive a crash of the process — and, for backends that say so, of the machine). All
///   paths are validated before anything is written, so an invalid path anywhere in the batch
///   fails the whole batch.
/// - Reads see every `apply` that returned before them, entirely or (for one running
///   concurrently) not at all.
///
/// A ZooKeeper backend maps `apply` to one `multi` (creating missing ancestors first), so a
/// batch should stay below ZooKeeper's 1 MB request limit.
pub trait Persister: Send + Sync {
    /// The data of `path`, or `None` when the node does not exist.
    ///
    /// # Errors
    /// Invalid path; backend failure.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError>;

    /// The names of the direct children of `path`, sorted (byte order); empty when the node
    /// does not exist or has no children.
    ///
    /// # Errors
    /// Invalid path; backend failure.
    fn children(&self, path: &str) -> Result<Vec<String>, StateError>;

    /// Every node at and below `path` with its data (nodes with empty data included), sorted
    /// by full path (byte order), so the node itself comes first; empty when `path` does not
    /// exist. This is the bulk load used at startup.
    ///
    /// # Errors
    /// Invalid path; backend failure.
    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError>;

    /// Hands what [`Self::subtree`] returns to `visit`, one node at a time and in the same
    /// order, with the data borrowed where the backend can lend it (the embedded store reads
    /// its file page by page instead of copying everything first). Stops at the first error
    /// `visit` returns.
    ///
    /// # Errors
    /// Invalid path; backend failure; the error of `visit`.
    fn visit_subtree(&self, path: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        for (node, data) in self.subtree(path)? {
            visit(&node, &data)?;
        }
        Ok(())
    }

    /// Applies `ops` in order, atomically and durably (see the trait documentation).
    ///
    /// # Errors
    /// Invalid path (nothing applied); backend failure (nothing applied).
    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError>;

    /// Starts [`apply`](Persister::apply)ing `ops` and returns; [`Submitted::wait`] gives the
    /// outcome and the writes back. Batches submitted one after another are stored in that
    /// order; a store that [`submits_in_background`](Persister::submits_in_background)
    /// stores a prefix of them: once one is refused, every later one is refused too,
    /// without being stored, until the next `apply`. A caller waits for every submission
    /// (oldest first) before it calls `apply`. By default the batch is applied here, before
    /// returning, so its outcome is known before the next one is submitted.
    fn submit(&self, ops: Vec<WriteOp>) -> Submitted {
        let result = self.apply(&ops);
        Submitted::ready(result, ops)
    }

    /// Whether [`submit`](Persister::submit) stores in the background (so a caller gains by
    /// working while it waits); `false` by default.
    fn submits_in_background(&self) -> bool {
        false
    }

    /// Sets one node: `apply(&[WriteOp::Set { .. }])`.
    ///
    /// # Errors
    /// As [`apply`](Persister::apply).
    fn set(&self, path: &str, value: &[u8]) -> Result<(), StateError> {
        self.apply(&[WriteOp::set(path, value)])
    }

    /// Deletes one node recursively: `apply(&[WriteOp::Delete { .. }])`.
    ///
    /// # Errors
    /// As [`apply`](Persister::apply).
    fn delete(&self, path: &str) -> Result<(), StateError> {
        self.apply(&[WriteOp::delete(path)])
    }

    /// Why the backend cannot serve calls right now, when it knows without trying (e.g. the
    /// connection to ZooKeeper is lost): for health reports. `None` by default.
    fn unavailable(&self) -> Option<String> {
        None
    }
}

/// The outcome of [`Persister::submit`]: how the batch ended, and its writes (handed back so
/// that a failed batch can be retried without a copy).
pub type Outcome = (Result<(), StateError>, Vec<WriteOp>);

/// A batch handed to [`Persister::submit`], stored now or in the background.
#[derive(Debug)]
pub struct Submitted(Pending);

#[derive(Debug)]
enum Pending {
    Ready(Result<(), StateError>, Vec<WriteOp>),
    Background {
        answer: std::sync::mpsc::Receiver<Outcome>,
        /// The outcome, once [`Submitted::is_done`] saw it.
        seen: Option<Outcome>,
        /// Where it is stored, for the error when the background worker is gone.
        location: String,
    },
}

impl Submitted {
    /// A batch already stored (or refused).
    #[must_use]
    pub fn ready(result: Result<(), StateError>, ops: Vec<WriteOp>) -> Self {
        Self(Pending::Ready(result, ops))
    }

    /// A batch whose outcome a background worker of the store at `location` sends on
    /// `answer`.
    #[must_use]
    pub fn background(answer: std::sync::mpsc::Receiver<Outcome>, location: String) -> Self {
        Self(Pending::Background {
            answer,
            seen: None,
            location,
        })
    }

    /// Whether the batch is stored or refused by now ([`Self::wait`] would not wait).
    pub fn is_done(&mut self) -> bool {
        match &mut self.0 {
            Pending::Ready(..) => true,
            Pending::Background { answer, seen, .. } => {
                if seen.is_none() {
                    match answer.try_recv() {
                        Ok(outcome) => *seen = Some(outcome),
                        Err(std::sync::mpsc::TryRecvError::Empty) => return false,
                        // `wait` reports it.
                        Err(std::sync::mpsc::TryRecvError::Disconnected) => return true,
                    }
                }
                true
            }
        }
    }

    /// Waits until the batch is stored or refused.
    pub fn wait(self) -> Outcome {
        match self.0 {
            Pending::Ready(result, ops) => (result, ops),
            Pending::Background {
                seen: Some(outcome),
                ..
            } => outcome,
            Pending::Background {
                answer, location, ..
            } => answer.recv().unwrap_or_else(|_| {
                (
                    Err(StateError::Backend {
                        location,
                        action: "waiting for a submitted batch".to_owned(),
                        message: "the store's background worker stopped; the batch may or may not \
                                  be stored"
                            .to_owned(),
                    }),
                    Vec::new(),
                )
            }),
        }
    }
}

/// What [`Persister::visit_subtree`] calls with each node's path and data.
pub type NodeVisitor<'a> = dyn FnMut(&str, &[u8]) -> Result<(), StateError> + 'a;

macro_rules! forward_persister {
    ($($ty:ty),*) => {$(
        impl<P: Persister + ?Sized> Persister for $ty {
            fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
                (**self).get(path)
            }
            fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
                (**self).children(path)
            }
            fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
                (**self).subtree(path)
            }
            fn visit_subtree(
                &self,
                path: &str,
                visit: &mut NodeVisitor<'_>,
            ) -> Result<(), StateError> {
                (**self).visit_subtree(path, visit)
            }
            fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
                (**self).apply(ops)
            }
            fn submit(&self, ops: Vec<WriteOp>) -> Submitted {
                (**self).submit(ops)
            }
            fn submits_in_background(&self) -> bool {
                (**self).submits_in_background()
            }
            fn set(&self, path: &str, value: &[u8]) -> Result<(), StateError> {
                (**self).set(path, value)
            }
            fn delete(&self, path: &str) -> Result<(), StateError> {
                (**self).delete(path)
            }
            fn unavailable(&self) -> Option<String> {
                (**self).unavailable()
            }
        }
    )*};
}

forward_persister!(Box<P>, Arc<P>, &P);

/// Validates every path of a batch before anything is written.
pub(crate) fn validate_ops(ops: &[WriteOp]) -> Result<(), StateError> {
    ops.iter().try_for_each(|op| validate_write_path(op.path()))
}

/// A sorted map from full path to data: how the flat backends hold the tree. Invariant kept by
/// [`apply_ops`]: every ancestor of a stored node (other than the root) is stored too.
pub(crate) trait NodeMap {
    /// The data stored under `key`.
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Whether `key` is stored.
    fn contains(&self, key: &str) -> Result<bool, StateError>;
    /// The first stored key in `start..end`.
    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, StateError>;
    /// Hands every stored entry in `start..end` to `visit`, in key order.
    fn visit(&self, start: &str, end: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError>;
}

/// A [`NodeMap`] that can be written.
pub(crate) trait NodeMapMut: NodeMap {
    /// Stores `value` under `key`.
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StateError>;
    /// Removes `key`.
    fn remove(&mut self, key: &str) -> Result<(), StateError>;
    /// Removes every key in `start..end`.
    fn remove_range(&mut self, start: &str, end: &str) -> Result<(), StateError>;
}

/// [`Persister::get`] over a node map.
pub(crate) fn get_node(map: &impl NodeMap, path: &str) -> Result<Option<Vec<u8>>, StateError> {
    validate_path(path)?;
    if path == "/" {
        return Ok(Some(Vec::new()));
    }
    map.node(path)
}

/// [`Persister::children`] over a node map: walks the direct children and jumps over the
/// subtree of each, so the cost grows with the number of children, not of descendants.
pub(crate) fn children_of(map: &impl NodeMap, path: &str) -> Result<Vec<String>, StateError> {
    validate_path(path)?;
    let prefix = descendant_prefix(path);
    let end = range_end(&prefix);
    let mut out = Vec::new();
    let mut start = prefix.clone();
    while let Some(key) = map.first_in(&start, &end)? {
        let rest = &key[prefix.len()..];
        match rest.find('/') {
            None => {
                out.push(rest.to_owned());
                start = key.clone();
                start.push('\0');
            }
            Some(i) => {
                // A deeper descendant: skip the rest of that child's subtree (its node was
                // listed already, ancestors are always stored).
                let mut child_prefix = String::with_capacity(prefix.len() + i + 1);
                child_prefix.push_str(&key[..prefix.len() + i + 1]);
                start = range_end(&child_prefix);
            }
        }
    }
    Ok(out)
}

/// [`Persister::subtree`] over a node map.
pub(crate) fn subtree_of(
    map: &impl NodeMap,
    path: &str,
) -> Result<Vec<(String, Vec<u8>)>, StateError> {
    let mut out = Vec::new();
    visit_subtree_of(map, path, &mut |node, data| {
        out.push((node.to_owned(), data.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// [`Persister::visit_subtree`] over a node map.
pub(crate) fn visit_subtree_of(
    map: &impl NodeMap,
    path: &str,
    visit: &mut NodeVisitor<'_>,
) -> Result<(), StateError> {
    validate_path(path)?;
    if path == "/" {
        visit("/", &[])?;
    } else {
        match map.node(path)? {
            Some(data) => visit(path, &data)?,
            None => return Ok(()),
        }
    }
    let prefix = descendant_prefix(path);
    map.visit(&prefix, &range_end(&prefix), visit)
}

/// [`Persister::apply`] over a writable node map (paths must have been validated).
pub(crate) fn apply_ops(map: &mut impl NodeMapMut, ops: &[WriteOp]) -> Result<(), StateError> {
    // Paths known to exist in this batch, to check each ancestor once.
    let mut present: HashSet<String> = HashSet::new();
    for op in ops {
        match op {
            WriteOp::Set { path, value } => {
                for ancestor in ancestors(path) {
                    if present.contains(ancestor) {
                        continue;
                    }
                    if !map.contains(ancestor)? {
                        map.put(ancestor, &[])?;
                    }
                    present.insert(ancestor.to_owned());
                }
                map.put(path, value)?;
                present.insert(path.clone());
            }
            WriteOp::Delete { path } => {
                map.remove(path)?;
                let prefix = descendant_prefix(path);
                map.remove_range(&prefix, &range_end(&prefix))?;
                present.clear();
            }
        }
    }
    Ok(())
}
