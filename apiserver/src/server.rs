//! Starting, addressing and stopping the server.
//!
//! Connections are served by hand rather than by `axum::serve` because that offers no
//! header read timeout and no connection limit: without them a client that sends half a
//! request, or opens thousands of sockets, holds the server's tasks and file descriptors
//! for ever. Watches are long responses, not slow requests, so neither bound cuts them.
//!
//! A server that listens beyond loopback without a configured token generates one: fault
//! injection and every write would otherwise be open to anyone who can reach the port.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Error;
use crate::faults::{FaultConfig, FaultHandle};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::ServerState;
use crate::status::{ApiError, Cause};
use crate::store::Store;

/// The Kubernetes version this server reports.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// Entry point: `ApiServer::start(config)`.
#[derive(Debug)]
pub struct ApiServer;

/// A started server; stops when [`RunningApiServer::shutdown`] is called or it is dropped.
#[derive(Debug)]
pub struct RunningApiServer {
    addr: SocketAddr,
    shared: Arc<ServerState>,
    task: Option<JoinHandle<()>>,
}

const DEFAULT_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// How long shutdown waits for open connections to finish their responses.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after a failed accept (out of file descriptors, say) before the next one, so the
/// loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Whether a server bound to `ip` is reachable from other hosts (IPv4-mapped IPv6
/// loopback counts as loopback).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The token a server on `listen` requires: the configured one, or a fresh random one
/// when the address is reachable from other hosts.
fn effective_token(listen: SocketAddr, configured: Option<String>) -> Option<String> {
    configured
        .or_else(|| (!is_loopback(listen.ip())).then(|| uuid::Uuid::new_v4().simple().to_string()))
}

/// Compares without returning early, so response times do not reveal how much of a
/// guessed token was right.
fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl ApiServer {
    /// Binds, creates the default namespaces, and serves in the background.
    pub async fn start(mut config: Config) -> Result<RunningApiServer, Error> {
        if let Err(errors) = config.faults.validate() {
            return Err(Error::InvalidFaults(errors));
        }
        let generated = config.token.is_none();
        config.token = effective_token(config.listen, config.token.take());
        if generated && config.token.is_some() {
            tracing::warn!(
                listen = %config.listen,
                "listening beyond loopback without a token: generated one; clients find it in the written kubeconfig"
            );
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let (housekeeping_tx, housekeeping_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Store::new(config.watch_history, housekeeping_tx);
        let registry = Registry::with_builtins(&store);
        let shared = Arc::new(ServerState {
            faults: FaultHandle::new(config.faults.clone()),
            config,
            store,
            registry,
            metrics: Metrics::default(),
            shutdown: CancellationToken::new(),
            terminating_namespaces: Mutex::new(HashMap::new()),
            terminating_crds: Mutex::new(HashMap::new()),
        });
        let namespaces = shared
            .registry
            .lookup("", "v1", "namespaces")
            .expect("namespaces are built in");
        for name in DEFAULT_NAMESPACES {
            let object =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let opts = crate::write::WriteOptions {
                manager: "kube-apiserver".into(),
                ..Default::default()
            };
            shared
                .create(&namespaces, None, object, &opts, false)
                .map_err(Error::Bootstrap)?;
        }
        tokio::spawn(crate::housekeeping::run(
            Arc::downgrade(&shared),
            housekeeping_rx,
        ));
        let router = router(shared.clone());
        let task = tokio::spawn(accept_loop(listener, router, shared.clone()));
        tracing::info!(%addr, "API server listening");
        Ok(RunningApiServer {
            addr,
            shared,
            task: Some(task),
        })
    }
}

impl RunningApiServer {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token clients must send, if any.
    pub fn token(&self) -> Option<&str> {
        self.shared.config.token.as_deref()
    }

    /// A kubeconfig whose current context points at this server.
    pub fn kubeconfig_yaml(&self) -> String {
        let user = match self.token() {
            Some(token) => format!(
                "\n    token: {}\n",
                serde_json::to_string(token).unwrap_or_default()
            ),
            None => " {}\n".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fleetbench\n  cluster:\n    server: {url}\ncontexts:\n- name: fleetbench\n  context:\n    cluster: fleetbench\n    user: fleetbench\n    namespace: default\ncurrent-context: fleetbench\npreferences: {{}}\nusers:\n- name: fleetbench\n  user:{user}",
            url = self.url()
        )
    }

    /// Writes [`RunningApiServer::kubeconfig_yaml`] to a file readable by its owner only
    /// (it may carry the token). The file is written beside `path` and renamed over it, so
    /// it never exists with wider permissions, nor half written.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        write_private(path, self.kubeconfig_yaml().as_bytes()).map_err(|source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Changes faults and cuts watches at run time.
    pub fn faults(&self) -> FaultHandle {
        self.shared.faults.clone()
    }

    /// The number of stored objects of each resource (`configmaps`,
    /// `gitrepos.fleet.cattle.io`).
    pub fn object_counts(&self) -> Vec<(String, usize)> {
        self.shared
            .registry
            .stores()
            .into_iter()
            .map(|(name, store)| (name, store.len()))
            .collect()
    }

    /// Serves until `signal` resolves, then shuts down.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }

    /// Stops accepting requests, ends open watches and waits for the server to stop.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Writes `contents` to `path` with mode 0600 set when the file is created.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path names no file")
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let temp = path.with_file_name(temp_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

/// Accepts connections until shutdown, at most `max_connections` at once, then waits
/// (boundedly) for the open ones to finish.
async fn accept_loop(listener: TcpListener, router: Router, shared: Arc<ServerState>) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let shutdown = shared.shutdown.clone();
    let header_read_timeout = shared.config.header_read_timeout;
    let mut connections = JoinSet::new();
    loop {
        // Waiting for a slot before accepting leaves excess clients in the kernel's
        // backlog instead of holding a task and a descriptor for each.
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            tcp,
            router.clone(),
            header_read_timeout,
            shutdown.clone(),
            permit,
        ));
    }
    drop(listener);
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, finished)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

async fn serve_connection(
    tcp: TcpStream,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let _ = tcp.set_nodelay(true);
    // HTTP/1 only, as kube-apiserver on plain HTTP: HTTP/2 detection would wait for a
    // preface with no timer running, so a silent connection would be held for ever.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Some(header_read_timeout).filter(|t| !t.is_zero()))
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(router))
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, "connection ended with an error");
    }
}

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn router(shared: Arc<ServerState>) -> Router {
    let authenticated = Router::new()
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/fleetbench/faults", get(get_faults).put(put_faults))
        .route("/fleetbench/watches/cut", post(cut_watches))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*path}", get(openapi_group_version))
        .fallback(crate::handler::api)
        .layer(middleware::from_fn_with_state(shared.clone(), authenticate));
    Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/healthz/{*check}", get(ok))
        .route("/livez/{*check}", get(ok))
        .route("/readyz/{*check}", get(ok))
        .merge(authenticated)
        .with_state(shared)
}

async fn authenticate(
    State(shared): State<Arc<ServerState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &shared.config.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|p| same_secret(p, token)) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

async fn ok() -> &'static str {
    "ok"
}

fn json_body(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
        .into_response()
}

async fn version() -> Response {
    let (major, minor) = KUBERNETES_VERSION;
    json_body(&json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-fleetbench"),
        "gitCommit": "fleetbench",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

async fn metrics(State(shared): State<Arc<ServerState>>) -> Response {
    let counts: Vec<(String, usize)> = shared
        .registry
        .stores()
        .into_iter()
        .map(|(name, store)| (name, store.len()))
        .collect();
    let text = shared.metrics.render(&counts);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn get_faults(State(shared): State<Arc<ServerState>>) -> Response {
    json_body(&serde_json::to_value(shared.faults.config()).unwrap_or_default())
}

async fn put_faults(State(shared): State<Arc<ServerState>>, request: Request) -> Response {
    let limits = crate::body::Limits::of(&shared.config);
    let (parts, body) = request.into_parts();
    let body = match crate::body::read_request(&parts.headers, body, limits).await {
        Ok(body) => body,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let config = match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => config,
        Err(e) => {
            return ApiError::bad_request(format!("invalid fault configuration: {e}"))
                .into_response();
        }
    };
    if let Err(errors) = config.validate() {
        let causes: Vec<Cause> = errors
            .iter()
            .map(|e| Cause::new(e.cause_type(), e.field(), e.detail()))
            .collect();
        return ApiError::invalid("fleetbench", "FaultConfig", "", &causes).into_response();
    }
    shared.faults.set(config);
    json_body(&serde_json::to_value(shared.faults.config()).unwrap_or_default())
}

async fn cut_watches(State(shared): State<Arc<ServerState>>) -> Response {
    shared.faults.cut_watches();
    (StatusCode::NO_CONTENT, ()).into_response()
}

async fn openapi_v2() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )],
        crate::openapi::v2_protobuf(),
    )
        .into_response()
}

async fn openapi_index(State(shared): State<Arc<ServerState>>) -> Response {
    json_body(&crate::openapi::index(&shared.registry))
}

async fn openapi_group_version(
    State(shared): State<Arc<ServerState>>,
    request: Request,
) -> Response {
    let path = request
        .uri()
        .path()
        .trim_start_matches("/openapi/v3/")
        .to_string();
    let segments: Vec<&str> = path.split('/').collect();
    let doc = match segments.as_slice() {
        ["api", version] => crate::openapi::group_version(&shared.registry, "", version),
        ["apis", group, version] => crate::openapi::group_version(&shared.registry, group, version),
        _ => None,
    };
    match doc {
        Some(doc) => json_body(&doc),
        None => ApiError::no_route().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_generated_only_beyond_loopback() {
        let loopback: [SocketAddr; 3] = [
            "127.0.0.1:0".parse().unwrap(),
            "[::1]:0".parse().unwrap(),
            "[::ffff:127.0.0.1]:0".parse().unwrap(),
        ];
        for listen in loopback {
            assert_eq!(effective_token(listen, None), None, "{listen}");
        }
        let exposed: [SocketAddr; 3] = [
            "0.0.0.0:6443".parse().unwrap(),
            "[::]:6443".parse().unwrap(),
            "192.0.2.7:6443".parse().unwrap(),
        ];
        for listen in exposed {
            let token = effective_token(listen, None).expect("generated");
            assert_eq!(token.len(), 32);
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_ne!(Some(token), effective_token(listen, None), "random");
            assert_eq!(
                effective_token(listen, Some("given".into())).as_deref(),
                Some("given")
            );
        }
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
