//! Errors of starting and driving a server (request errors are [`crate::ApiError`]s).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not start or a helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The default namespaces could not be created.
    #[error("cannot create the default namespaces: {0}")]
    Bootstrap(String),
    /// The kubeconfig could not be written.
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        /// Where it was to be written.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The fault configuration given at start is out of range.
    #[error("invalid fault configuration: {0}")]
    InvalidFaults(String),
}
