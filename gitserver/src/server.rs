//! Starting, addressing and stopping a git server.
//!
//! [`GitServer::start`] opens the data directory, checks that `git http-backend` can run,
//! binds the listener and serves until [`RunningGitServer::shutdown`]. Everything a test or
//! the harness needs to drive and observe the server is reachable from the
//! [`RunningGitServer`] handle: its URL and credentials, the request log, the faults, the
//! webhook deliveries, and a ready [`ForgeClient`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::IntoResponse as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::Error;
use crate::faults::FaultHandle;
use crate::forge::{Auth, ForgeClient};
use crate::listener::ConnectionLimits;
use crate::metrics::Metrics;
use crate::request_log::RequestLog;
use crate::store::Store;
use crate::webhook::{DeliveryLog, Dispatcher};

/// The response header that marks this server (the forge client uses it to tell it from a
/// real Gitea, which answers fleetbench-only endpoints with a plain 404).
pub const SERVER_HEADER: &str = "x-fleetbench-gitserver";

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub store: Arc<Store>,
    pub log: RequestLog,
    pub faults: FaultHandle,
    pub deliveries: DeliveryLog,
    pub dispatcher: Dispatcher,
    pub metrics: Arc<Metrics>,
    /// The URL clients see, without a trailing `/`.
    pub base_url: String,
    pub config: Arc<Config>,
}

pub(crate) type SharedState = Arc<AppState>;

impl AppState {
    /// `{base}/{owner}/{name}`, the repository's web URL.
    pub(crate) fn html_url(&self, full_name: &str) -> String {
        format!("{}/{full_name}", self.base_url)
    }

    /// `{base}/api/v1`.
    pub(crate) fn api_url(&self) -> String {
        format!("{}/api/v1", self.base_url)
    }
}

/// The git server. See [`GitServer::start`].
#[derive(Debug)]
pub struct GitServer;

impl GitServer {
    /// Starts a server for `config` and returns once it accepts connections.
    pub async fn start(mut config: Config) -> Result<RunningGitServer, Error> {
        crate::names::validate_owner(&config.user).map_err(|source| Error::InvalidUser {
            name: config.user.clone(),
            source,
        })?;
        if config.password.is_empty() {
            return Err(Error::EmptyPassword);
        }
        config.git_binary =
            resolve_program(&config.git_binary).ok_or_else(|| Error::GitMissing {
                binary: config.git_binary.clone(),
                reason: "not found on PATH".into(),
            })?;
        check_git(&config.git_binary).await?;

        let data_dir = config.data_dir.clone();
        let (user, password, token) = (
            config.user.clone(),
            config.password.clone(),
            config.token.clone(),
        );
        let (store, primary_token) = tokio::task::spawn_blocking(move || {
            Store::open(&data_dir, &user, &password, token.as_deref())
        })
        .await
        .map_err(Error::OpenPanicked)??;

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let base_url = match &config.external_url {
            Some(url) => {
                url::Url::parse(url).map_err(|source| Error::InvalidExternalUrl {
                    url: url.clone(),
                    source,
                })?;
                url.trim_end_matches('/').to_owned()
            }
            None => format!("http://{addr}"),
        };

        let metrics = Arc::new(Metrics::new());
        metrics.set_repositories(store.repo_count());
        let deliveries = DeliveryLog::new(config.delivery_log_capacity);
        let (dispatcher, dispatcher_task) =
            Dispatcher::start(config.webhooks.clone(), deliveries.clone(), metrics.clone())?;
        let state = Arc::new(AppState {
            store: Arc::new(store),
            log: RequestLog::new(config.request_log_capacity),
            faults: FaultHandle::default(),
            deliveries,
            dispatcher,
            metrics,
            base_url: base_url.clone(),
            config: Arc::new(config.clone()),
        });

        let router = router(state.clone(), &config);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let limits = ConnectionLimits {
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            max_connections: config.max_connections,
        };
        let server_task = tokio::spawn(crate::listener::serve(
            listener,
            router,
            limits,
            shutdown_rx,
        ));
        tracing::info!(%addr, url = %base_url, data_dir = %config.data_dir.display(), "git server listening");
        Ok(RunningGitServer {
            addr,
            url: base_url,
            user: config.user,
            password: config.password,
            token: primary_token,
            data_dir: config.data_dir,
            state,
            shutdown_tx: Some(shutdown_tx),
            server_task: Some(server_task),
            dispatcher_task,
        })
    }
}

fn router(state: SharedState, config: &Config) -> Router {
    let mut api = crate::api::router();
    if config.extensions {
        api = api.merge(crate::extensions::router());
    }
    let api = api.layer(DefaultBodyLimit::max(config.max_api_request_bytes));
    let mut router = Router::new();
    if config.extensions {
        router = router
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/metrics", axum::routing::get(metrics));
    }
    let router = router
        .merge(api)
        .merge(crate::smart_http::router())
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "Not found\n").into_response() });
    let router = if config.extensions {
        router.layer(axum::middleware::map_response(mark_response))
    } else {
        router
    };
    router.with_state(state)
}

async fn mark_response(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        SERVER_HEADER,
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    response
}

/// `/metrics`: everything for a signed-in reader; for an anonymous one, private (and
/// unknown) repositories' counters are summed under one `repo="(hidden)"` label, as Gitea
/// hides private repositories from anonymous users everywhere else.
async fn metrics(
    axum::extract::State(state): axum::extract::State<SharedState>,
    headers: http::HeaderMap,
    uri: http::Uri,
) -> axum::response::Response {
    let full = match crate::auth::authenticate(&state.store, &headers, uri.query()).0 {
        crate::auth::Authenticated::User(_) => true,
        crate::auth::Authenticated::Anonymous => false,
        crate::auth::Authenticated::Invalid(reason) => {
            return (http::StatusCode::UNAUTHORIZED, format!("{reason}\n")).into_response();
        }
    };
    state.metrics.set_repositories(state.store.repo_count());
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(full),
    )
        .into_response()
}

/// The absolute path of `program` (searched on `PATH` when it is a bare name).
///
/// Spawning by absolute path lets the standard library use `posix_spawn` even though the
/// CGI environment sets `PATH`; with a bare name it falls back to `fork`, which copies this
/// (large, multi-threaded) process's page tables on every git request.
fn resolve_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_absolute() {
        return std::path::absolute(program).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|found| std::path::absolute(found).ok())
}

/// Checks that `git http-backend` exists beside `git`.
async fn check_git(binary: &Path) -> Result<(), Error> {
    let missing = |reason: String| Error::GitMissing {
        binary: binary.to_path_buf(),
        reason,
    };
    let output = tokio::process::Command::new(binary)
        .arg("--exec-path")
        .output()
        .await
        .map_err(|source| Error::GitSpawn {
            binary: binary.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(missing(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let exec_path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !exec_path.join("git-http-backend").exists() {
        return Err(missing(format!(
            "{} has no git-http-backend",
            exec_path.display()
        )));
    }
    Ok(())
}

/// A started server. Dropping it stops the server in the background; prefer
/// [`RunningGitServer::shutdown`], which waits.
#[derive(Debug)]
pub struct RunningGitServer {
    addr: SocketAddr,
    url: String,
    user: String,
    password: String,
    token: String,
    data_dir: PathBuf,
    state: SharedState,
    shutdown_tx: Option<oneshot::Sender<()>>,
    server_task: Option<JoinHandle<()>>,
    dispatcher_task: JoinHandle<()>,
}

impl RunningGitServer {
    /// The base URL (`http://127.0.0.1:PORT`, or the configured external URL).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The user's name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The user's access token (for `Authorization: token ...`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `{url}/{owner}/{name}.git`.
    pub fn clone_url(&self, owner: &str, name: &str) -> String {
        format!("{}/{owner}/{name}.git", self.url)
    }

    /// The request log (shared with the server: it grows as requests complete).
    pub fn request_log(&self) -> RequestLog {
        self.state.log.clone()
    }

    /// The fault switches (shared with the server: changes apply at once).
    pub fn faults(&self) -> FaultHandle {
        self.state.faults.clone()
    }

    /// The webhook deliveries made so far (shared with the server).
    pub fn deliveries(&self) -> DeliveryLog {
        self.state.deliveries.clone()
    }

    /// Whether fleetbench's extensions are served (`false` in plain-Gitea mode).
    pub fn extensions_enabled(&self) -> bool {
        self.state.config.extensions
    }

    /// A forge client authenticated with the user's token.
    pub fn forge_client(&self) -> ForgeClient {
        ForgeClient::new(&self.url, Auth::Token(self.token.clone()))
            .expect("the server's own URL is valid")
    }

    /// Serves until `signal` completes (or the server fails), then shuts down: what a CLI
    /// does with `run_until(tokio::signal::ctrl_c())`.
    pub async fn run_until<F: Future>(mut self, signal: F) {
        if let Some(task) = self.server_task.as_mut() {
            tokio::select! {
                _ = signal => {}
                _ = task => {
                    tracing::error!("the git server stopped on its own");
                    self.server_task = None;
                }
            }
        }
        self.stop().await;
    }

    /// Stops accepting requests, lets running ones finish (for at most five seconds), and
    /// stops webhook delivery.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.server_task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
        self.dispatcher_task.abort();
    }
}

impl Drop for RunningGitServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        self.dispatcher_task.abort();
    }
}
