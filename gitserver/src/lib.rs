//! An embedded git server.
//!
//! The suites need hundreds of repositories they can create, commit to in bursts, break on
//! purpose and watch being polled. This crate serves them over smart HTTP with a Gitea
//! compatible REST subset, so the harness drives it and a real Gitea with the same client
//! ([`forge::ForgeClient`]).
//!
//! What it is made of, one module a concept:
//! - [`server`]: [`GitServer::start`] binds the listener and wires everything together;
//! - `smart_http`: clone, fetch, ls-remote and push through the real `git http-backend`
//!   (the same CGI program Fleet's own e2e git server uses), one process per request;
//! - `api`: the Gitea REST subset (`/api/v1/...`), including the multi-file commit API;
//! - [`webhook`]: signed Gitea/GitHub push webhooks with bounded, recorded retries;
//! - [`request_log`]: every advertisement, fetch and push per repository, with timestamps;
//! - [`faults`]: refuse, delay or hide a repository at run time;
//! - `listener`: the accept loop, with header and body read timeouts and a connection cap,
//!   so half-sent requests cannot hold connections;
//! - [`forge`]: the Gitea API client, the fleetbench extensions client and bulk helpers.

pub mod config;
pub mod error;
pub mod faults;
pub mod forge;
pub mod names;
pub mod request_log;
pub mod server;
pub mod webhook;

mod api;
mod auth;
mod cgi;
mod extensions;
#[cfg(test)]
mod fuzz;
mod gitops;
mod listener;
mod metrics;
mod push;
mod smart_http;
mod store;
mod tls;

pub use config::{Config, Credentials, WebhookSettings};
pub use error::Error;
pub use faults::{Fault, FaultError, FaultHandle, MAX_FAULT_DELAY};
pub use request_log::{GitService, RequestFilter, RequestLog, RequestLogEntry};
pub use server::{GitServer, RunningGitServer};
pub use webhook::{Delivery, DeliveryLog};

/// The Gitea release whose REST API this server follows (paths, JSON shapes, status codes).
///
/// It is the release testcontainers-modules' `gitea` module runs, so the forge client is
/// exercised against the same API on both servers.
pub const GITEA_API_VERSION: &str = "1.22.3";
