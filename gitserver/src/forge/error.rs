//! What a forge call can fail with: the transport, or the server's answer by status.

use fleet_api::error::Foreign;

/// Why a forge call failed.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The base URL or a derived URL is malformed.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// The request did not complete (connection, timeout, TLS).
    #[error("request to {url} failed")]
    Transport {
        /// The URL.
        url: String,
        /// The transport error (its `Display` is what is printed of it).
        #[source]
        source: Foreign<reqwest::Error>,
    },
    /// 401: missing or wrong credentials.
    #[error("unauthorized (401): {message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// 403: not allowed.
    #[error("forbidden (403): {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 404: no such repository, owner, hook, branch or file (or hidden from the caller).
    #[error("not found (404): {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// 409: the repository exists already.
    #[error("conflict (409): {message}")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// 422: invalid input (a name, a path, a file that exists, a sha that does not match).
    #[error("unprocessable (422): {message}")]
    Unprocessable {
        /// The server's message.
        message: String,
    },
    /// 503: the server refuses service (on the embedded server: the `refuse` fault).
    #[error("service unavailable (503): {message}")]
    Unavailable {
        /// The server's message.
        message: String,
    },
    /// Any other non-success status.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("cannot decode the answer from {url}")]
    Decode {
        /// The URL.
        url: String,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A fleetbench-only endpoint was called on a server that is not a fleetbench gitserver
    /// (a real Gitea).
    #[error("{url} is not a fleetbench gitserver endpoint (the server is probably a real Gitea)")]
    NotFleetbench {
        /// The URL.
        url: String,
    },
}

impl ForgeError {
    /// Maps a non-success status and the server's message to a variant.
    pub(crate) fn from_status(status: u16, message: String) -> Self {
        match status {
            401 => Self::Unauthorized { message },
            403 => Self::Forbidden { message },
            404 => Self::NotFound { message },
            409 => Self::Conflict { message },
            422 => Self::Unprocessable { message },
            503 => Self::Unavailable { message },
            status => Self::Status { status, message },
        }
    }

    /// The HTTP status of an answer that was an error, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Conflict { .. } => Some(409),
            Self::Unprocessable { .. } => Some(422),
            Self::Unavailable { .. } => Some(503),
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}
