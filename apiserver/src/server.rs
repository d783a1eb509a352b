//! Starting, addressing and stopping the server.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use http::{StatusCode, header};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Error;
use crate::faults::{FaultConfig, FaultHandle};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::state::Shared;
use crate::status::ApiError;
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
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

const DEFAULT_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiServer {
    /// Binds, creates the default namespaces, and serves in the background.
    pub async fn start(config: Config) -> Result<RunningApiServer, Error> {
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
        let (housekeeping_tx, housekeeping_rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Store::new(config.watch_history, housekeeping_tx);
        let registry = Registry::with_builtins(&store);
        let shared = Arc::new(Shared {
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
            let opts = crate::objects::WriteOptions {
                manager: "kube-apiserver".into(),
                ..Default::default()
            };
            shared
                .create(&namespaces, None, object, &opts, false)
                .map_err(|e| Error::Bootstrap(e.to_string()))?;
        }
        tokio::spawn(crate::housekeeping::run(
            Arc::downgrade(&shared),
            housekeeping_rx,
        ));
        let router = router(shared.clone());
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let shutdown = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(err) = result {
                tracing::error!(%err, "API server stopped with an error");
            }
        });
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

    /// Writes [`RunningApiServer::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| Error::Kubeconfig {
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

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

fn router(shared: Arc<Shared>) -> Router {
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

async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(token) = &shared.config.token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if presented != Some(token.as_str()) {
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

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
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

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    json_body(&serde_json::to_value(shared.faults.config()).unwrap_or_default())
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(config) => {
            shared.faults.set(config);
            json_body(&serde_json::to_value(shared.faults.config()).unwrap_or_default())
        }
        Err(e) => {
            ApiError::bad_request(format!("invalid fault configuration: {e}")).into_response()
        }
    }
}

async fn cut_watches(State(shared): State<Arc<Shared>>) -> Response {
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

async fn openapi_index(State(shared): State<Arc<Shared>>) -> Response {
    json_body(&crate::openapi::index(&shared.registry))
}

async fn openapi_group_version(State(shared): State<Arc<Shared>>, request: Request) -> Response {
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
