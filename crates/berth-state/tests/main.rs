//! The integration tests of berth-state, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod coherence;
mod common;
mod crash;
mod embedded;
mod persister;
mod store;
mod zk;
