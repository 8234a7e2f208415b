//! The integration tests of berth-offer, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod common;
mod evaluate_existing;
mod evaluate_new;
mod props;
