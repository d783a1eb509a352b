//! A recording, fault-injecting reverse proxy for git's smart HTTP protocol.
//!
//! The suites measure a GitOps controller black-box by the git requests it makes (every
//! poll is one `GET {owner}/{repo}.git/info/refs?service=git-upload-pack`) and break
//! repositories for a while to watch it recover. fleetbench's own git server records those
//! requests and can inject faults, but a real Gitea (a container, or a user's server) can do
//! neither. Putting this proxy in front of whichever git server a provider uses, and
//! pointing GitRepos at [`GitProxy::url`], gives every provider the same observations and
//! the same faults.
//!
//! Every request (any path, any method, so Gitea's REST API works through the same URL) is
//! forwarded with its body streamed both ways. Git requests are also recorded in the shape
//! of the git server's log ([`gitserver::RequestLogEntry`]) and can be answered with a
//! [`ProxyFault`] instead. Concepts, one file each: `classify` (which requests are git
//! requests), `fault`, `log`, and `forward` (one request's round trip).

mod classify;
mod fault;
mod forward;
mod log;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gitserver::{RequestFilter, RequestLogEntry};
use http::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use fault::ProxyFault;

use fault::FaultTable;
use forward::{ProxyState, Upstream};
use log::ProxyLog;

/// How long requests in flight may take to finish once the proxy shuts down.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How long an idle upstream connection is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// The pause after a failed `accept` (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How a [`GitProxy`] is started.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Where to listen; port 0 picks an ephemeral port. The proxy binds exactly here: the
    /// caller chooses loopback, a Docker network's gateway address, and so on.
    pub listen: SocketAddr,
    /// The git server to forward to, `http://host:port` with an optional path prefix
    /// (`http://gitea.internal/git`); requests keep their path after that prefix.
    pub upstream: String,
    /// The base URL clients use to reach the proxy, when it is not `http://{listen}` (a
    /// wildcard bind, a port mapping). A path in it is stripped from requests before they
    /// are forwarded.
    pub public_url: Option<String>,
    /// How many git requests the log keeps (oldest dropped first).
    pub log_capacity: usize,
    /// The longest the upstream may take to answer a request's head (bodies then stream
    /// for as long as they take).
    pub upstream_timeout: Duration,
}

impl ProxyConfig {
    /// The defaults for forwarding to `upstream`: an ephemeral port on loopback, a
    /// million-entry log, a 60 s upstream timeout.
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: upstream.into(),
            public_url: None,
            log_capacity: 1_000_000,
            upstream_timeout: Duration::from_secs(60),
        }
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the URL clients use to reach the proxy.
    pub fn with_public_url(mut self, public_url: impl Into<String>) -> Self {
        self.public_url = Some(public_url.into());
        self
    }
}

/// Why a [`GitProxy`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum GitProxyError {
    /// The listen address could not be bound (in use, not an address of this host, ...).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The bound listener's address could not be read back.
    #[error("cannot read the proxy's bound address")]
    LocalAddr(#[source] std::io::Error),
    /// The upstream URL is not one the proxy can forward to.
    #[error("invalid upstream {upstream:?}: {reason}")]
    InvalidUpstream {
        /// The URL given.
        upstream: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The public URL is not an absolute http(s) URL.
    #[error("invalid public URL {url:?}: {reason}")]
    InvalidPublicUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A running proxy. Dropping it stops accepting connections (best effort, in the
/// background); [`GitProxy::shutdown`] also waits for requests in flight, boundedly.
#[derive(Debug)]
pub struct GitProxy {
    addr: SocketAddr,
    url: String,
    upstream: String,
    shared: Arc<ProxyState>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl GitProxy {
    /// Listens on `config.listen` and forwards to `config.upstream`, preserving the path
    /// after the upstream's own path prefix. Must be called within a Tokio runtime.
    pub async fn start(config: ProxyConfig) -> Result<GitProxy, GitProxyError> {
        let upstream = parse_upstream(&config.upstream)?;
        let public = config
            .public_url
            .as_deref()
            .map(parse_public_url)
            .transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GitProxyError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(GitProxyError::LocalAddr)?;
        let (url, public_prefix) =
            public.unwrap_or_else(|| (format!("http://{addr}"), String::new()));

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.upstream_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .build(connector);
        let shared = Arc::new(ProxyState {
            upstream,
            public_url: url.clone(),
            public_prefix,
            client,
            upstream_timeout: config.upstream_timeout,
            log: ProxyLog::new(config.log_capacity),
            faults: FaultTable::default(),
        });
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, shared.clone(), cancel.clone()));
        tracing::debug!(%addr, %url, upstream = %config.upstream, "git proxy listening");
        Ok(GitProxy {
            addr,
            url,
            upstream: config.upstream,
            shared,
            cancel,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients (the controller) use: the configured public URL, or
    /// `http://{local_addr}`, without a trailing `/`. A clone URL is
    /// `{url}/{owner}/{repo}.git` ([`GitProxy::clone_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `{url}/{owner}/{name}.git`.
    pub fn clone_url(&self, owner: &str, name: &str) -> String {
        format!("{}/{owner}/{name}.git", self.url)
    }

    /// The upstream URL, as configured.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The recorded git requests matching `filter` (repository case-insensitive with
    /// optional `.git`, arrival time, service, sequence number, limit), sorted by arrival,
    /// as the git server's own log answers it.
    pub fn requests(&self, filter: &RequestFilter) -> Vec<RequestLogEntry> {
        self.shared.log.query(filter)
    }

    /// Applies `fault` to the git requests of `repo` (`owner/name`, any case, optional
    /// `.git`) from now on, replacing any earlier one. Other requests of that repository
    /// (REST) are not affected. Delays are clamped to [`ProxyFault::MAX_DELAY`].
    pub fn set_fault(&self, repo: &str, fault: ProxyFault) {
        tracing::debug!(repo, ?fault, "git proxy fault set");
        self.shared.faults.set(repo, fault);
    }

    /// Removes the fault of `repo`, if any.
    pub fn clear_fault(&self, repo: &str) {
        tracing::debug!(repo, "git proxy fault cleared");
        self.shared.faults.clear(repo);
    }

    /// The faults in force, by repository (`owner/name`, lower case), sorted.
    pub fn faults(&self) -> Vec<(String, ProxyFault)> {
        self.shared.faults.all()
    }

    /// Stops accepting connections, lets requests in flight finish for at most five
    /// seconds, then cuts the rest.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for GitProxy {
    fn drop(&mut self) {
        // The serving task notices, closes the listener and winds connections down.
        self.cancel.cancel();
    }
}

/// Accepts connections until cancelled, then shuts them down gracefully, boundedly.
async fn serve(listener: TcpListener, shared: Arc<ProxyState>, cancel: CancellationToken) {
    let graceful = GracefulShutdown::new();
    // Owning the connection tasks here means they end with this task, even if aborted.
    let mut connections = JoinSet::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // With a timer, hyper bounds how long a client may take to send a request head (30 s),
    // so connections that never send one do not pile up.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Git's request/response turns are small; Nagle would add latency to each.
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let service = hyper::service::service_fn(move |request| {
                        forward::handle(shared.clone(), peer, request)
                    });
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    connections.spawn(graceful.watch(connection));
                }
                Err(error) => {
                    tracing::warn!(%error, "git proxy cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("git proxy connections still open after the grace period are cut");
    }
    connections.abort_all();
}

fn parse_upstream(upstream: &str) -> Result<Upstream, GitProxyError> {
    let invalid = |reason: &str| GitProxyError::InvalidUpstream {
        upstream: upstream.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = upstream
        .trim()
        .parse()
        .map_err(|_| invalid("not an absolute URL (expected http://host:port[/prefix])"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(invalid(
                "https upstreams are not supported (the proxy forwards plain http only); \
                 point it at the server's http address",
            ));
        }
        Some(_) => return Err(invalid("only http:// upstreams are supported")),
        None => {
            return Err(invalid(
                "not an absolute URL (expected http://host:port[/prefix])",
            ));
        }
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?.clone();
    if authority.host().is_empty() {
        return Err(invalid("no host"));
    }
    if authority.as_str().contains('@') {
        return Err(invalid(
            "credentials in the upstream URL are not supported: clients send their own",
        ));
    }
    if uri.query().is_some() {
        return Err(invalid("a query string is not supported"));
    }
    Ok(Upstream {
        authority,
        prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// The public URL without a trailing `/`, and its path prefix.
fn parse_public_url(url: &str) -> Result<(String, String), GitProxyError> {
    let invalid = |reason: &str| GitProxyError::InvalidPublicUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .trim()
        .parse()
        .map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("not an absolute http(s) URL"));
    }
    if uri.authority().is_none_or(|a| a.host().is_empty()) {
        return Err(invalid("no host"));
    }
    if uri.query().is_some() {
        return Err(invalid("a query string is not supported"));
    }
    Ok((
        url.trim().trim_end_matches('/').to_owned(),
        uri.path().trim_end_matches('/').to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_http_urls_with_an_optional_prefix() {
        let plain = parse_upstream("http://127.0.0.1:3000").unwrap();
        assert_eq!(plain.authority.as_str(), "127.0.0.1:3000");
        assert_eq!(plain.prefix, "");
        let slash = parse_upstream("http://gitea:3000/").unwrap();
        assert_eq!(slash.prefix, "");
        let prefixed = parse_upstream("http://gitea.example/git/").unwrap();
        assert_eq!(prefixed.authority.as_str(), "gitea.example");
        assert_eq!(prefixed.prefix, "/git");
    }

    #[test]
    fn unusable_upstreams_are_refused_with_a_reason() {
        for (upstream, reason) in [
            ("https://gitea.example", "https upstreams are not supported"),
            ("ftp://gitea.example", "only http://"),
            ("gitea.example:3000", "not an absolute URL"),
            ("", "not an absolute URL"),
            ("http://user:pw@gitea.example", "credentials"),
            ("http://gitea.example/?x=1", "query"),
            ("http:// bad", "not an absolute URL"),
        ] {
            match parse_upstream(upstream) {
                Err(GitProxyError::InvalidUpstream { reason: got, .. }) => {
                    assert!(got.contains(reason), "{upstream}: {got}");
                }
                other => panic!("{upstream}: {other:?}"),
            }
        }
    }

    #[test]
    fn public_urls_give_the_base_url_and_prefix() {
        assert_eq!(
            parse_public_url("http://172.17.0.1:8080/").unwrap(),
            ("http://172.17.0.1:8080".to_owned(), String::new())
        );
        assert_eq!(
            parse_public_url("https://proxy.example/git/").unwrap(),
            ("https://proxy.example/git".to_owned(), "/git".to_owned())
        );
        assert!(matches!(
            parse_public_url("/git"),
            Err(GitProxyError::InvalidPublicUrl { .. })
        ));
        assert!(matches!(
            parse_public_url("ssh://host/x"),
            Err(GitProxyError::InvalidPublicUrl { .. })
        ));
    }

    #[tokio::test]
    async fn start_reports_bind_and_upstream_errors() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let config = ProxyConfig::new("http://127.0.0.1:1").with_listen(addr);
        match GitProxy::start(config).await {
            Err(GitProxyError::Bind { addr: got, .. }) => assert_eq!(got, addr),
            other => panic!("expected a bind error, got {other:?}"),
        }
        let config = ProxyConfig::new("https://gitea.example");
        assert!(matches!(
            GitProxy::start(config).await,
            Err(GitProxyError::InvalidUpstream { .. })
        ));
    }

    #[tokio::test]
    async fn the_url_is_the_public_one_or_the_bound_address() {
        let proxy = GitProxy::start(ProxyConfig::new("http://127.0.0.1:1"))
            .await
            .unwrap();
        assert_eq!(proxy.url(), format!("http://{}", proxy.local_addr()));
        assert_ne!(proxy.local_addr().port(), 0);
        assert_eq!(
            proxy.clone_url("o", "r"),
            format!("http://{}/o/r.git", proxy.local_addr())
        );
        proxy.shutdown().await;

        let proxy = GitProxy::start(
            ProxyConfig::new("http://127.0.0.1:1").with_public_url("http://172.17.0.1:9999/"),
        )
        .await
        .unwrap();
        assert_eq!(proxy.url(), "http://172.17.0.1:9999");
        proxy.set_fault("O/R.git", ProxyFault::Refuse);
        assert_eq!(proxy.faults(), vec![("o/r".to_owned(), ProxyFault::Refuse)]);
        proxy.clear_fault("o/r");
        assert!(proxy.faults().is_empty());
        proxy.shutdown().await;
    }
}
