//! The apiserver crate's integration tests, one module per concern, built as one test
//! binary: one link of the dependency graph instead of one per file.

mod common;

mod hostile_input;
mod http_api;
mod kube_client;
mod kubectl;
