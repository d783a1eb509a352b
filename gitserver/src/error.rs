//! The errors [`crate::GitServer::start`] and the server's library calls return.
//!
//! Request-level failures never surface here: they become HTTP status codes (as Gitea's) and
//! request-log entries. What remains is what stops a server from starting or a library
//! call from completing.

use std::path::PathBuf;

/// Why the git server could not start, or a library call on it failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created or read.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A metadata file in the data directory could not be read, parsed or written.
    #[error("metadata file {path}: {message}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `git http-backend` cannot be run (git missing or too old).
    #[error("cannot run `{binary} http-backend`: {message}")]
    GitMissing {
        /// The git executable tried.
        binary: PathBuf,
        /// What happened.
        message: String,
    },
    /// The configuration is unusable (bad user name, bad external URL).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A repository name (`owner/name`) was malformed or names no repository.
    #[error("unknown or invalid repository {0:?}")]
    UnknownRepository(String),
    /// A fault's values are out of bounds (a delay over an hour).
    #[error("invalid fault: {0}")]
    InvalidFault(#[from] crate::faults::FaultError),
    /// An HTTP client for webhook delivery could not be built.
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
