//! The harness crate's integration tests, one module per concern, built as one test
//! binary: one link of the dependency graph instead of one per file.
//!
//! The tests that run suites end to end (`smoke_e2e`, `black_box`, `docker_*`) stay
//! binaries of their own: cargo runs binaries one after another, and those runs share the
//! machine's cores and the Docker engine, so they must not overlap one another.

#[path = "../common/mod.rs"]
mod common;

mod cli_bad_input;
mod export;
mod git_proxy;
mod report_chromium;
mod servers_and_signals;
mod suite_files;
