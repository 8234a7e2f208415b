//! A store that fails on purpose: wraps any [`Persister`] and, when told, refuses writes the
//! way ZooKeeper does when it is down (retryable), as a lost leader lock does (fatal), or
//! answers slowly — to test what the scheduler does with each.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_state::{Persister, StateError, WriteOp};

/// What writes do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteFault {
    /// They work.
    #[default]
    None,
    /// They fail as while ZooKeeper is unreachable (retryable).
    Unavailable,
    /// They fail as after the leader lock was lost (fatal).
    LockLost,
}

#[derive(Debug, Default)]
struct Faults {
    writes: WriteFault,
    slow_writes: Option<Duration>,
    slow_reads: Option<Duration>,
    failed_writes: u64,
}

/// A [`Persister`] with switchable faults; clones share the store and the switches.
#[derive(Clone)]
pub struct FaultyPersister {
    inner: Arc<dyn Persister>,
    faults: Arc<Mutex<Faults>>,
}

impl std::fmt::Debug for FaultyPersister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyPersister")
            .field("faults", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl FaultyPersister {
    /// Wraps `inner`, with no fault switched on.
    #[must_use]
    pub fn new(inner: Arc<dyn Persister>) -> Self {
        Self {
            inner,
            faults: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets what writes do from now on.
    pub fn set_writes(&self, fault: WriteFault) {
        self.lock().writes = fault;
    }

    /// Makes every write (`Some`) or no write (`None`) take this long first.
    pub fn set_slow_writes(&self, delay: Option<Duration>) {
        self.lock().slow_writes = delay;
    }

    /// Makes every subtree read take this long first.
    pub fn set_slow_reads(&self, delay: Option<Duration>) {
        self.lock().slow_reads = delay;
    }

    /// How many writes were refused so far.
    #[must_use]
    pub fn failed_writes(&self) -> u64 {
        self.lock().failed_writes
    }
}

impl Persister for FaultyPersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.get(path)
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StateError> {
        self.inner.children(path)
    }

    fn subtree(&self, path: &str) -> Result<Vec<(String, Vec<u8>)>, StateError> {
        let delay = self.lock().slow_reads;
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        self.inner.subtree(path)
    }

    fn apply(&self, ops: &[WriteOp]) -> Result<(), StateError> {
        let (fault, delay) = {
            let faults = self.lock();
            (faults.writes, faults.slow_writes)
        };
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let location = "zk://faulty:2181".to_owned();
        let error = match fault {
            WriteFault::None => return self.inner.apply(ops),
            WriteFault::Unavailable => StateError::Unavailable {
                location,
                action: format!("committing {} writes", ops.len()),
                message: "connection lost (injected)".to_owned(),
                hint: "nothing was written".to_owned(),
            },
            WriteFault::LockLost => StateError::LockLost {
                location,
                holder: Some("pid 4242 on another host (injected)".to_owned()),
            },
        };
        self.lock().failed_writes += 1;
        Err(error)
    }

    fn unavailable(&self) -> Option<String> {
        (self.lock().writes == WriteFault::Unavailable)
            .then(|| "ZooKeeper is unreachable (injected)".to_owned())
    }
}
