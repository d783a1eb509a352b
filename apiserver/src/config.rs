//! How an [`ApiServer`](crate::ApiServer) is set up.
//!
//! Every field has a default that suits tests (loopback, ephemeral port, no auth), so callers
//! change only what their scenario needs. The connection bounds exist because the server
//! also runs on shared hosts and in containers listening on every interface: a client that
//! sends half a request, or opens thousands of sockets, must not hold the server's
//! resources for ever.

use std::net::SocketAddr;
use std::time::Duration;

use crate::faults::FaultConfig;

/// The largest request body accepted, as etcd's request limit: 3 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// How long a client may take to send a request's headers (kube-apiserver allows 32 s).
/// It also bounds how long an idle keep-alive connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections served at once; more wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How much of an oversized body is read and discarded before the `413` is sent, so that
/// the client, still writing, reads the answer instead of a connection reset.
pub const DEFAULT_BODY_DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Settings of one API server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind; `127.0.0.1:0` picks a free loopback port.
    pub listen: SocketAddr,
    /// When set, every API request must carry `Authorization: Bearer <token>`. When unset
    /// and `listen` is not a loopback address, the server generates one at start (see
    /// [`RunningApiServer::token`](crate::RunningApiServer::token)).
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
    /// Time allowed to send a request's headers; the connection is closed after it.
    /// `Duration::ZERO` disables the bound.
    pub header_read_timeout: Duration,
    /// Time allowed to send a request's body; `408` after it. `Duration::ZERO` disables
    /// the bound.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Bytes of an oversized body read and discarded before answering `413`.
    pub body_drain_limit: usize,
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
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            body_drain_limit: DEFAULT_BODY_DRAIN_LIMIT,
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

    /// Closes connections that take longer than `timeout` to send a request's headers.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Answers `408` to requests whose body takes longer than `timeout` to arrive.
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Serves at most `connections` connections at once (at least one).
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }
}
