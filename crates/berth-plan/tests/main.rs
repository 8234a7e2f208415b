//! The integration tests of berth-plan, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod plans;
mod props;
mod support;
