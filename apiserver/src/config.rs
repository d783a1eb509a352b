//! How an [`ApiServer`](crate::ApiServer) is set up.
//!
//! Every field has a default that suits tests (loopback, ephemeral port, no auth), so callers
//! change only what their scenario needs.

use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::FaultConfig;

/// The largest request body accepted, as etcd's request limit: 3 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Settings of one API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; `127.0.0.1:0` picks a free loopback port.
    pub listen: SocketAddr,
    /// When set, every API request must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Watch events kept per resource for watches that start from an older
    /// `resourceVersion`; a watch from before the oldest kept event gets `410 Gone`.
    pub watch_history: usize,
    /// Faults injected from the start (they can be changed at run time).
    pub faults: FaultConfig,
    /// Largest accepted request body in bytes; larger ones get `413`.
    pub body_limit: usize,
    /// How often a watch that asked for bookmarks receives one.
    pub bookmark_interval: Duration,
    /// Upper bound of the server-chosen watch timeout when the client gives none
    /// (kube-apiserver picks between its minimum request timeout and twice that).
    pub min_request_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            watch_history: 10_000,
            faults: FaultConfig::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            bookmark_interval: Duration::from_secs(10),
            min_request_timeout: Duration::from_secs(1800),
        }
    }
}

impl Config {
    /// Binds to `listen` instead of the default.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Requires this bearer token on API requests.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Keeps `events` watch events per resource.
    pub fn with_watch_history(mut self, events: usize) -> Self {
        self.watch_history = events.max(1);
        self
    }

    /// Starts with these faults.
    pub fn with_faults(mut self, faults: FaultConfig) -> Self {
        self.faults = faults;
        self
    }

    /// Sends bookmarks this often.
    pub fn with_bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }
}
