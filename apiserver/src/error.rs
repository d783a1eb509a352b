//! Errors of starting and driving a server (request errors are [`crate::ApiError`]s).
//!
//! Each message says what this crate was doing; the cause is the error's `source()`
//! (write the whole chain with [`fleet_api::error::chain`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::faults::FaultError;
use crate::status::ApiError;

/// Why the server could not start or a helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The default namespaces could not be created.
    #[error("cannot create the default namespaces")]
    Bootstrap(#[source] ApiError),
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {path}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The fault configuration given at start is out of range (every problem is listed,
    /// as the HTTP endpoint lists them).
    #[error("invalid fault configuration: {}", join(.0))]
    InvalidFaults(Vec<FaultError>),
}

fn join(errors: &[FaultError]) -> String {
    let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
    listed.join("; ")
}
