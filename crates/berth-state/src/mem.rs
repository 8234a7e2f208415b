//! [`MemPersister`]: the in-memory backend for tests and the simulation.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::StateError;
use crate::persister::{
    NodeMap, NodeMapMut, NodeVisitor, Persister, WriteOp, apply_ops, children_of, get_node,
    subtree_of, validate_ops,
};

/// An in-memory [`Persister`]: a sorted map from path to data behind a lock.
///
/// Same semantics as every other backend, except that nothing survives the process. `apply` is
/// atomic (paths are validated first; nothing else can fail). For tests of the callers' error
/// paths, [`fail_next_applies`](MemPersister::fail_next_applies) makes the next writes fail
/// without changing anything, as a broken disk or a lost ZooKeeper session would.
#[derive(Debug, Default)]
pub struct MemPersister {
    nodes: RwLock<BTreeMap<String, Vec<u8>>>,
    failures: Mutex<usize>,
}

impl MemPersister {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` calls of [`apply`](Persister::apply) fail with a
    /// [`StateError::Backend`] and store nothing.
    pub fn fail_next_applies(&self, count: usize) {
        *lock_failures(&self.failures) = count;
    }

    /// Number of stored nodes (the root not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no node is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A panic while the lock was held cannot leave the map half-written (writes happen only
    // after validation, and map operations do not panic), so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.nodes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.nodes.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn lock_failures(m: &Mutex<usize>) -> MutexGuard<'_, usize> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn bounds<'a>(start: &'a str, end: &'a str) -> (Bound<&'a str>, Bound<&'a str>) {
    (Bound::Included(start), Bound::Excluded(end))
}

impl NodeMap for BTreeMap<String, Vec<u8>> {
    fn node(&self, key: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.get(key).cloned())
    }

    fn contains(&self, key: &str) -> Result<bool, StateError> {
        Ok(self.contains_key(key))
    }

    fn first_in(&self, start: &str, end: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .range::<str, _>(bounds(start, end))
            .next()
            .map(|(k, _)| k.clone()))
    }

    fn visit(&self, start: &str, end: &str, visit: &mut NodeVisitor<'_>) -> Result<(), StateError> {
        self.range::<str, _>(bounds(start, end))
            .try_for_each(|(k, v)| visit(k, v))
    }
}

impl NodeMapMut for BTreeMap<String, Vec<u8>> {
    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StateError> {
        if let Some(v) = self.get_mut(key) {
            v.clear();
            v.extend_from_slice(value);
        } else {
            self.insert(key.to_owned(), value.to_vec());
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<(), StateError> {
        BTreeMap::remove(self, key);
        Ok(())
    }

    fn remove_range(&mut self, start: &str, end: &str) -> Result<(), StateError> {
        let keys: Vec<String> = self
            .range::<str, _>(bounds(start, end))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            BTreeMap::remove(self, &k);
        }
        Ok(())
    }
}

impl Persister for MemPersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        get_node(&*self.read(), path)
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        children_of(&*self.read(), path)
    }

    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        subtree_of(&*self.read(), path)
    }

    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        validate_ops(ops)?;
        {
            let mut failures = lock_failures(&self.failures);
            if *failures > 0 {
                *failures -= 1;
                return Err(StateError::Backend {
                    location: "memory".to_owned(),
                    action: format!("committing {} writes", ops.len()),
                    message: "injected failure".to_owned(),
                });
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        // Validation was the only step that can fail; the map operations below cannot, so
        // the batch is applied entirely.
        apply_ops(&mut *self.write(), ops)
    }
}
