//! The integration tests of berth, linked into one test binary: one link and one file
//! on disk instead of one per test file. Each module is one former test file.

mod api_fuzz;
mod auth;
mod bench;
mod chaos_soak;
mod cli_ops;
mod common;
mod crash_ops;
mod dashboard;
mod diagnostics;
mod failover;
mod local_e2e;
mod mesos_e2e;
mod metrics;
mod openapi;
mod scenarios;
mod uninstall;
mod updates;
mod walkthrough;
mod zk;
