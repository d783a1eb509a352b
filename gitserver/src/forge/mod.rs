//! The git-forge client the harness drives git servers with: this crate's server and a real
//! Gitea, through the same calls.
//!
//! [`ForgeClient`] speaks the Gitea REST subset (Gitea 1.22's paths, JSON and status codes)
//! and nothing else, so whatever works against the embedded server works against Gitea.
//! It is cheap to clone (one connection pool shared by the clones) and safe to use from
//! many tasks at once. [`Extensions`] reaches the fleetbench-only endpoints and fails with
//! [`ForgeError::NotFleetbench`] on a real Gitea. [`bulk`] builds on both to create
//! hundreds of manifest repositories and commit to many of them at once.

pub mod bulk;
mod client;
mod error;
mod extensions;
pub mod types;

pub use client::{Auth, ForgeClient};
pub use error::ForgeError;
pub use extensions::{Extensions, ServerInfo};
