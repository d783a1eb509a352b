//! The controller crate's integration tests, one module per concern, built as one test
//! binary: one link of the dependency graph instead of one per file.
//!
//! `crash_consistency` stays a binary of its own: it kills and restarts the controller
//! binary fifty times and should not share the machine's two cores with these tests.

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod e2e;
mod fuzz;
mod hostile;
mod legacy;
mod orphans;
