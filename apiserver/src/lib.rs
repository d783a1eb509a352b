//! An embedded Kubernetes API server.
//!
//! fleetbench needs a real Kubernetes API on machines that have no cluster images, and one
//! whose request counts and latencies the harness can read and perturb. This crate serves
//! that API in-process or standalone: discovery, CustomResourceDefinitions with structural
//! schemas, the built-in kinds controllers need, every verb with Kubernetes semantics
//! (resourceVersion conflicts, watches with bookmarks and `410 Gone`, selectors, paging,
//! status subresources, finalizers, garbage collection), `/metrics` with kube-apiserver's
//! names, and fault injection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), apiserver::Error> {
//! let server = apiserver::ApiServer::start(apiserver::Config::default()).await?;
//! server.write_kubeconfig("/tmp/kubeconfig")?;
//! println!("serving at {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod body;
mod config;
mod custom;
mod error;
mod events;
mod faults;
#[cfg(test)]
mod fuzz;
mod goformat;
mod handler;
mod housekeeping;
pub mod jsonpath;
mod managed;
mod meta;
mod metrics;
mod openapi;
mod patch;
mod present;
mod protobuf;
mod query;
mod registry;
pub mod schema;
pub mod selector;
mod server;
mod state;
mod status;
mod store;
mod strategy;
pub mod table;
pub mod validation;
mod watch;
mod write;

pub use config::{
    Config, DEFAULT_BODY_DRAIN_LIMIT, DEFAULT_BODY_LIMIT, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
pub use error::Error;
pub use faults::{
    ErrorRule, FaultConfig, FaultError, FaultHandle, LatencyDistribution, MAX_LATENCY,
};
pub use server::{ApiServer, KUBERNETES_VERSION, RunningApiServer};
pub use status::{ApiError, Cause};
