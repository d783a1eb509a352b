//! The errors [`crate::GitServer::start`] and the server's library calls return.
//!
//! Request-level failures never surface here: they become HTTP status codes (as Gitea's) and
//! request-log entries. What remains is what stops a server from starting or a library
//! call from completing.
//!
//! Each message says what this crate was doing; the cause is the error's `source()`
//! (write the whole chain with [`fleet_api::error::chain`]).

use std::path::PathBuf;

use fleet_api::error::Foreign;

/// Why the git server could not start, or a library call on it failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created or read.
    #[error("data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A metadata file in the data directory could not be read or parsed.
    #[error("metadata file {path}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Why it could not be used.
        #[source]
        source: MetadataError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `git http-backend` cannot be run (git missing or too old).
    #[error("cannot run `{binary} http-backend`: {reason}")]
    GitMissing {
        /// The git executable tried.
        binary: PathBuf,
        /// What is wrong with it (not found, its own error output).
        reason: String,
    },
    /// `git --exec-path` could not be started.
    #[error("cannot run `{binary} http-backend`")]
    GitSpawn {
        /// The git executable tried.
        binary: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configured user name is not a valid Gitea user name.
    #[error("invalid configuration: user name {name:?}")]
    InvalidUser {
        /// The name.
        name: String,
        /// Why it is invalid.
        #[source]
        source: crate::names::NameError,
    },
    /// The configured password is empty.
    #[error("invalid configuration: the password must not be empty")]
    EmptyPassword,
    /// The configured external URL does not parse.
    #[error("invalid configuration: external URL {url:?}")]
    InvalidExternalUrl {
        /// The URL as given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: url::ParseError,
    },
    /// Opening the data directory panicked.
    #[error("invalid configuration: opening the data directory panicked")]
    OpenPanicked(#[source] tokio::task::JoinError),
    /// A repository name (`owner/name`) was malformed or names no repository.
    #[error("unknown or invalid repository {0:?}")]
    UnknownRepository(String),
    /// A fault's values are out of bounds (a delay over an hour).
    #[error("invalid fault")]
    InvalidFault(#[from] crate::faults::FaultError),
    /// An HTTP client for webhook delivery could not be built.
    #[error("cannot build the webhook HTTP client")]
    HttpClient(#[source] Foreign<reqwest::Error>),
}

/// Why a metadata file of the data directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// It could not be read.
    #[error(transparent)]
    Read(std::io::Error),
    /// It is not the JSON expected.
    #[error(transparent)]
    Parse(serde_json::Error),
    /// It could not be written (or the data it describes could not be updated).
    #[error(transparent)]
    Write(crate::store::StoreError),
    /// A repository directory is not a bare git repository.
    #[error("not a bare git repository")]
    NotARepository(#[source] git2::Error),
    /// A repository's metadata names another owner or repository than its directory.
    #[error("names {owner}/{name} but lives elsewhere")]
    Misplaced {
        /// The owner the metadata names.
        owner: String,
        /// The repository name the metadata names.
        name: String,
    },
}
