//! How a git server is started.
//!
//! Everything has a default that suits a test (an ephemeral port on loopback), so a caller
//! sets only the data directory; the CLI fills the rest from its flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The configuration of a [`crate::GitServer`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Default `127.0.0.1:0` (an ephemeral port on loopback).
    pub listen: SocketAddr,
    /// Where the bare repositories and their metadata live (`{data_dir}/{owner}/{repo}.git`).
    /// Created if missing; reused, with every repository and hook, on restart.
    pub data_dir: PathBuf,
    /// The one user of this server; repositories created through `/user/repos` live under it.
    pub user: String,
    /// That user's password (HTTP basic auth, git and REST).
    pub password: String,
    /// The user's access token. `None` keeps the token persisted in `data_dir` from an earlier
    /// run, or makes and persists a new random one.
    pub token: Option<String>,
    /// The URL clients see (`clone_url`, `html_url`, webhook payloads), like Gitea's
    /// `ROOT_URL`. `None` uses `http://{bound address}`.
    pub external_url: Option<String>,
    /// Webhook delivery: retries, backoff, timeouts and parallelism.
    pub webhooks: WebhookSettings,
    /// The `git` executable whose `http-backend` serves the smart HTTP protocol.
    pub git_binary: PathBuf,
    /// The longest a single git request (one `git http-backend` process) may run.
    pub git_timeout: Duration,
    /// The largest git request body accepted (a push pack), in bytes.
    pub max_git_request_bytes: u64,
    /// The largest REST request body accepted (ChangeFiles carries base64 content), in bytes.
    pub max_api_request_bytes: usize,
    /// How many git requests the request log keeps (oldest dropped first).
    pub request_log_capacity: usize,
    /// How many webhook deliveries are kept for inspection (oldest dropped first).
    pub delivery_log_capacity: usize,
    /// The longest a client may take to send a request's headers, and the longest an idle
    /// keep-alive connection is kept; then the connection is closed. Default 30 s.
    pub header_read_timeout: Duration,
    /// The longest a request body may go without sending anything (per read, not in
    /// total, so a large push that keeps streaming is never cut). Default 60 s.
    pub body_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog until one
    /// closes. Default 1024.
    pub max_connections: usize,
    /// Whether fleetbench's extensions are served: `/api/fleetbench/...` (request log,
    /// deliveries, faults), `/metrics`, `/healthz`, the `X-Fleetbench-Gitserver` header and
    /// the `+fleetbench` version suffix. `false` is plain-Gitea mode (see
    /// [`Config::plain_gitea`]). Default `true`.
    pub extensions: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: PathBuf::from("gitserver-data"),
            user: "fleetbench".to_owned(),
            password: "fleetbench".to_owned(),
            token: None,
            external_url: None,
            webhooks: WebhookSettings::default(),
            git_binary: PathBuf::from("git"),
            git_timeout: Duration::from_secs(600),
            max_git_request_bytes: 1 << 30,
            max_api_request_bytes: 64 << 20,
            request_log_capacity: 200_000,
            delivery_log_capacity: 50_000,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
            extensions: true,
        }
    }
}

impl Config {
    /// The defaults, serving repositories from `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// Sets the user and password (as `--user NAME:PASSWORD` does).
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.user = credentials.user;
        self.password = credentials.password;
        self
    }

    /// Plain-Gitea mode: with `true` the server offers only what a real Gitea 1.22 offers
    /// on the wire (its REST subset, git over smart HTTP, webhooks) and none of fleetbench's
    /// extensions, which answer 404 as unknown paths do on Gitea. This is what proves the
    /// harness works against a real Gitea without running one.
    pub fn plain_gitea(mut self, plain: bool) -> Self {
        self.extensions = !plain;
        self
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }
}

/// How push webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Attempts per delivery, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub initial_backoff: Duration,
    /// The longest one attempt may take (connect, send, response headers).
    pub attempt_timeout: Duration,
    /// Deliveries in flight at once, across all hooks.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            attempt_timeout: Duration::from_secs(5),
            concurrency: 64,
        }
    }
}

/// A `NAME:PASSWORD` pair, as the CLI's `--user` flag takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

/// Why a `NAME:PASSWORD` string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// There is no `:` between name and password.
    #[error("expected NAME:PASSWORD, found no ':'")]
    MissingColon,
    /// The name is not a valid Gitea user name.
    #[error("invalid user name")]
    InvalidName(#[from] crate::names::NameError),
    /// The password is empty.
    #[error("the password must not be empty")]
    EmptyPassword,
}

impl FromStr for Credentials {
    type Err = CredentialsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (user, password) = s.split_once(':').ok_or(CredentialsError::MissingColon)?;
        crate::names::validate_owner(user)?;
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword);
        }
        Ok(Self {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_name_and_password_with_colons() {
        let creds: Credentials = "alice:pa:ss".parse().unwrap();
        assert_eq!(creds.user, "alice");
        assert_eq!(creds.password, "pa:ss");
    }

    #[test]
    fn credentials_reject_bad_input() {
        assert_eq!(
            "alice".parse::<Credentials>(),
            Err(CredentialsError::MissingColon)
        );
        assert_eq!(
            "alice:".parse::<Credentials>(),
            Err(CredentialsError::EmptyPassword)
        );
        assert!(matches!(
            "../x:pw".parse::<Credentials>(),
            Err(CredentialsError::InvalidName(_))
        ));
    }

    #[test]
    fn default_listens_on_loopback() {
        assert!(Config::default().listen.ip().is_loopback());
    }

    #[test]
    fn plain_gitea_turns_extensions_off_and_back_on() {
        assert!(Config::default().extensions);
        assert!(!Config::default().plain_gitea(true).extensions);
        assert!(
            Config::default()
                .plain_gitea(true)
                .plain_gitea(false)
                .extensions
        );
    }
}
