//! The integration tests of berth-testing, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod chaos;
mod config_update;
mod day2;
mod deploy;
mod faults;
mod runner;
mod uninstall;
