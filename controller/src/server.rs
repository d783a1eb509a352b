//! The HTTP listener: `/metrics`, `/healthz`, `/readyz` and `POST /webhook`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::webhook;

/// Largest webhook body accepted (GitHub caps payloads at 25 MB; pushes are far smaller).
const MAX_WEBHOOK_BODY: usize = 5 * 1024 * 1024;

/// Shared state of the HTTP handlers.
pub struct ServerState {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Set once caches are synced and workers run.
    pub ready: Arc<AtomicBool>,
    /// Webhook handling, once the controller runs.
    pub webhook: Arc<tokio::sync::OnceCell<Arc<webhook::Context>>>,
}

async fn metrics(State(state): State<Arc<ServerState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<ServerState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

async fn handle_webhook(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    match state.webhook.get() {
        Some(ctx) => webhook::handle(ctx, &headers, &body).await,
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "controller not ready".to_owned(),
        ),
    }
}

/// Binds `addr` and serves until `cancel` fires; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    state: Arc<ServerState>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .route("/readyz", get(readyz))
        .route("/webhook", post(handle_webhook))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(state);
    let handle = tokio::spawn(async move {
        let shutdown = async move { cancel.cancelled().await };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "HTTP listener failed");
        }
    });
    Ok((bound, handle))
}
