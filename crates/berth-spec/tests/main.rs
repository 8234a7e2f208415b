//! The integration tests of berth-spec, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod common;
mod helloworld;
mod invalid_specs;
mod no_panic;
mod packages;
mod render_diff;
mod spec_features;
mod validators;
