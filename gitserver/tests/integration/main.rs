//! The gitserver crate's integration tests, one module per concern, built as one test
//! binary: one link of the dependency graph instead of one per file.

mod common;

mod bad_input;
mod bulk;
mod faults;
mod git_cli;
mod hostile_input;
mod plain_gitea;
mod rest_api;
mod restart;
mod webhooks;
