//! Turning a batch of [`WriteOp`]s into ZooKeeper `multi` operations: which facts to read
//! first, the operations themselves, and how to split them under ZooKeeper's request limit.
//!
//! Pure functions, so the tricky parts (ancestors, recursive deletes, order inside a batch,
//! chunk sizes) are tested without a server.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;

use crate::WriteOp;
use crate::path::{ancestors, descendant_prefix, range_end};

/// ZooKeeper's default `jute.maxbuffer`: the largest request (and node) it accepts.
pub(crate) const ZK_MAX_REQUEST: usize = 1_048_575;
/// Headroom below [`ZK_MAX_REQUEST`] for request and transaction headers.
pub(crate) const REQUEST_MARGIN: usize = 1_024;
/// The payload one `multi` carries at most (estimated, see [`ZkOp::estimated_size`]).
pub(crate) const CHUNK_LIMIT: usize = 1_000_000;
/// Estimated bytes of one operation besides its path and data: the multi header (type, done,
/// error), length prefixes, the ACL of a create (`world:anyone`, all permissions), flags and
/// version — and the same again in the transaction-log record.
pub(crate) const OP_OVERHEAD: usize = 64;

/// One ZooKeeper write inside a `multi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ZkOp<'a> {
    /// Create a persistent node.
    Create {
        /// The node path (relative to the chroot).
        path: Cow<'a, str>,
        /// Its data.
        data: &'a [u8],
    },
    /// Set the data of an existing node (any version).
    SetData {
        /// The node path.
        path: &'a str,
        /// The new data.
        data: &'a [u8],
    },
    /// Delete a node without children (any version).
    Delete {
        /// The node path.
        path: String,
    },
}

impl ZkOp<'_> {
    /// The node path.
    pub(crate) fn path(&self) -> &str {
        match self {
            ZkOp::Create { path, .. } => path,
            ZkOp::SetData { path, .. } => path,
            ZkOp::Delete { path } => path,
        }
    }

    /// Bytes this operation adds to a `multi` request, estimated; `prefix` is the length of
    /// the chroot the client puts in front of every path.
    pub(crate) fn estimated_size(&self, prefix: usize) -> usize {
        let data = match self {
            ZkOp::Create { data, .. } | ZkOp::SetData { data, .. } => data.len(),
            ZkOp::Delete { .. } => 0,
        };
        OP_OVERHEAD + prefix + self.path().len() + data
    }
}

/// What must be read before a batch can be turned into ZooKeeper operations.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Queries {
    /// Paths whose existence is unknown (set targets and their ancestors not in the cache).
    pub exists: Vec<String>,
    /// Paths of deletes: every existing node at and below each is needed.
    pub subtrees: Vec<String>,
}

/// The answers to [`Queries`].
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Whether each queried path exists.
    pub exists: HashMap<String, bool>,
    /// For each delete path, every existing node at and below it (empty when it is missing).
    pub subtrees: HashMap<String, Vec<String>>,
}

/// The reads needed to plan `ops`, given the paths `known` to exist.
pub(crate) fn queries(ops: &[WriteOp], known: &BTreeSet<String>) -> Queries {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut out = Queries::default();
    for op in ops {
        match op {
            WriteOp::Set { path, .. } => {
                for p in ancestors(path).chain(std::iter::once(path.as_str())) {
                    if !known.contains(p) && seen.insert(p) {
                        out.exists.push(p.to_owned());
                    }
                }
            }
            WriteOp::Delete { path } => {
                if !out.subtrees.contains(path) {
                    out.subtrees.push(path.clone());
                }
            }
        }
    }
    out
}

/// The ZooKeeper operations that apply `ops` in order to the tree described by `known` (a
/// cache of paths that exist) and `facts` (fresh answers to [`queries`]): missing ancestors
/// are created with empty data, existing nodes get `SetData`, deletes remove the whole
/// subtree leaf-first.
pub(crate) fn plan<'a>(
    ops: &'a [WriteOp],
    known: &BTreeSet<String>,
    facts: &Facts,
) -> Vec<ZkOp<'a>> {
    let mut view = View {
        known,
        nodes: BTreeMap::new(),
        deleted: Vec::new(),
    };
    for (path, exists) in &facts.exists {
        view.nodes.insert(path.clone(), *exists);
    }
    for (root, nodes) in &facts.subtrees {
        if nodes.is_empty() {
            view.nodes.insert(root.clone(), false);
        }
        for node in nodes {
            view.nodes.insert(node.clone(), true);
        }
    }
    let mut out = Vec::new();
    for op in ops {
        match op {
            WriteOp::Set { path, value } => {
                for ancestor in ancestors(path) {
                    if !view.exists(ancestor) {
                        out.push(ZkOp::Create {
                            path: Cow::Owned(ancestor.to_owned()),
                            data: &[],
                        });
                        view.nodes.insert(ancestor.to_owned(), true);
                    }
                }
                if view.exists(path) {
                    out.push(ZkOp::SetData { path, data: value });
                } else {
                    out.push(ZkOp::Create {
                        path: Cow::Borrowed(path),
                        data: value,
                    });
                    view.nodes.insert(path.clone(), true);
                }
            }
            WriteOp::Delete { path } => {
                let prefix = descendant_prefix(path);
                let below: Vec<String> = view
                    .nodes
                    .range(prefix.clone()..range_end(&prefix))
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut doomed: Vec<String> = below
                    .iter()
                    .filter(|k| view.nodes.get(*k) == Some(&true))
                    .cloned()
                    .collect();
                if view.exists(path) {
                    doomed.push(path.clone());
                }
                // Descending byte order puts every node after all of its descendants.
                doomed.sort_unstable_by(|a, b| b.cmp(a));
                out.extend(doomed.into_iter().map(|path| ZkOp::Delete { path }));
                for k in below {
                    view.nodes.insert(k, false);
                }
                view.nodes.insert(path.clone(), false);
                view.deleted.push(prefix);
            }
        }
    }
    out
}

/// What the planner believes about the tree while it walks a batch.
struct View<'k> {
    known: &'k BTreeSet<String>,
    /// Facts read for this batch and the batch's own effects so far.
    nodes: BTreeMap<String, bool>,
    /// Descendant prefixes of the batch's deletes so far: the cache says nothing below them.
    deleted: Vec<String>,
}

impl View<'_> {
    fn exists(&self, path: &str) -> bool {
        match self.nodes.get(path) {
            Some(exists) => *exists,
            None => {
                !self
                    .deleted
                    .iter()
                    .any(|prefix| path.starts_with(prefix.as_str()))
                    && self.known.contains(path)
            }
        }
    }
}

/// Splits `ops` into consecutive ranges, one `multi` each, in order: each range's estimated
/// size plus `per_chunk` (the fencing check) stays within [`CHUNK_LIMIT`]; an operation too big
/// to share a request goes alone.
pub(crate) fn chunks(ops: &[ZkOp<'_>], prefix: usize, per_chunk: usize) -> Vec<Range<usize>> {
    let budget = CHUNK_LIMIT.saturating_sub(per_chunk);
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, op) in ops.iter().enumerate() {
        let n = op.estimated_size(prefix);
        if i > start && size + n > budget {
            out.push(start..i);
            start = i;
            size = 0;
        }
        size += n;
    }
    if start < ops.len() {
        out.push(start..ops.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(paths: &[&str]) -> BTreeSet<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    fn render(ops: &[ZkOp<'_>]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                ZkOp::Create { path, data } => {
                    format!("create {path} {}", String::from_utf8_lossy(data))
                }
                ZkOp::SetData { path, data } => {
                    format!("set {path} {}", String::from_utf8_lossy(data))
                }
                ZkOp::Delete { path } => format!("delete {path}"),
            })
            .collect()
    }

    #[test]
    fn queries_skip_known_paths_and_repeat_nothing() {
        let ops = [
            WriteOp::set("/a/b/c", "1"),
            WriteOp::set("/a/b/d", "2"),
            WriteOp::delete("/x"),
            WriteOp::delete("/x"),
        ];
        let q = queries(&ops, &known(&["/a"]));
        assert_eq!(q.exists, vec!["/a/b", "/a/b/c", "/a/b/d"]);
        assert_eq!(q.subtrees, vec!["/x"]);
    }

    #[test]
    fn sets_create_missing_ancestors_and_update_existing_nodes() {
        let ops = [WriteOp::set("/a/b/c", "1"), WriteOp::set("/a", "top")];
        let mut facts = Facts::default();
        facts.exists.insert("/a/b".to_owned(), false);
        facts.exists.insert("/a/b/c".to_owned(), false);
        let planned = plan(&ops, &known(&["/a"]), &facts);
        assert_eq!(
            render(&planned),
            vec!["create /a/b ", "create /a/b/c 1", "set /a top"]
        );
    }

    #[test]
    fn deletes_are_recursive_leaf_first_and_later_sets_recreate() {
        let ops = [
            WriteOp::set("/t/x/1", "one"),
            WriteOp::delete("/t/x"),
            WriteOp::set("/t/x/3", "three"),
            WriteOp::delete("/missing"),
        ];
        let mut facts = Facts::default();
        facts.exists.insert("/t".to_owned(), true);
        facts.exists.insert("/t/x".to_owned(), true);
        facts.exists.insert("/t/x/1".to_owned(), false);
        facts.exists.insert("/t/x/3".to_owned(), false);
        facts.subtrees.insert(
            "/t/x".to_owned(),
            vec![
                "/t/x".to_owned(),
                "/t/x/2".to_owned(),
                "/t/x/2/deep".to_owned(),
            ],
        );
        facts.subtrees.insert("/missing".to_owned(), Vec::new());
        let planned = plan(&ops, &BTreeSet::new(), &facts);
        assert_eq!(
            render(&planned),
            vec![
                "create /t/x/1 one",
                "delete /t/x/2/deep",
                "delete /t/x/2",
                "delete /t/x/1",
                "delete /t/x",
                "create /t/x ",
                "create /t/x/3 three",
            ]
        );
    }

    #[test]
    fn the_cache_says_nothing_below_a_deleted_path() {
        // "/a/b" is cached as existing; after deleting "/a" it must be created again.
        let ops = [WriteOp::delete("/a"), WriteOp::set("/a/b/c", "v")];
        let mut facts = Facts::default();
        facts
            .subtrees
            .insert("/a".to_owned(), vec!["/a".to_owned(), "/a/b".to_owned()]);
        facts.exists.insert("/a/b/c".to_owned(), false);
        let planned = plan(&ops, &known(&["/a", "/a/b", "/a/zz"]), &facts);
        assert_eq!(
            render(&planned),
            vec![
                "delete /a/b",
                "delete /a",
                "create /a ",
                "create /a/b ",
                "create /a/b/c v"
            ]
        );
    }

    #[test]
    fn lookalike_siblings_are_not_deleted() {
        let ops = [WriteOp::delete("/a/b")];
        let mut facts = Facts::default();
        facts.subtrees.insert(
            "/a/b".to_owned(),
            vec!["/a/b".to_owned(), "/a/b/c".to_owned()],
        );
        facts.exists.insert("/a/b-1".to_owned(), true);
        facts.exists.insert("/a/b0".to_owned(), true);
        let planned = plan(&ops, &BTreeSet::new(), &facts);
        assert_eq!(render(&planned), vec!["delete /a/b/c", "delete /a/b"]);
    }

    #[test]
    fn chunks_stay_under_the_limit_in_order() {
        let big = vec![b'x'; 400_000];
        let huge = vec![b'y'; 999_999];
        let ops = vec![
            ZkOp::SetData {
                path: "/a",
                data: &big,
            },
            ZkOp::SetData {
                path: "/b",
                data: &big,
            },
            ZkOp::SetData {
                path: "/c",
                data: &big,
            },
            ZkOp::SetData {
                path: "/d",
                data: &huge,
            },
            ZkOp::Delete {
                path: "/e".to_owned(),
            },
        ];
        let ranges = chunks(&ops, 6, 100);
        assert_eq!(ranges, vec![0..2, 2..3, 3..4, 4..5]);
        for r in &ranges {
            let size: usize = ops[r.clone()].iter().map(|o| o.estimated_size(6)).sum();
            assert!(r.len() == 1 || size + 100 <= CHUNK_LIMIT);
        }
        assert!(chunks(&[], 0, 0).is_empty());
    }
}
