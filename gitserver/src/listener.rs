//! Accepting connections with bounds a hostile or broken client cannot get around.
//!
//! `axum::serve` reads request headers and bodies for as long as a client cares to dribble
//! them and accepts every connection, so a handful of half-sent requests could pin
//! connections (and file descriptors) indefinitely. This accept loop serves the same router
//! with three bounds: a header-read timeout (which also closes idle keep-alive
//! connections), a per-read idle timeout on request bodies (idle, not total, so a large
//! push that keeps streaming is never cut off), and a cap on connections served at once
//! (further ones wait in the kernel's listen backlog rather than being refused).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures::StreamExt as _;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::ServiceExt as _;

/// The bounds applied to every connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// How long a client may take to send a request's headers (and how long an idle
    /// keep-alive connection is kept).
    pub header_read_timeout: Duration,
    /// How long a request body may go without delivering data.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// A request body that stopped arriving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Nothing arrived for the configured idle time.
    #[error("the request body sent nothing for {0:?}")]
    IdleTimeout(Duration),
}

/// Serves `router` on `listener` until `shutdown` fires, then lets running requests finish
/// (the caller bounds how long it waits for that).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    mut shutdown: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Git and the Gitea API are HTTP/1.1. Serving HTTP/1 directly (not through a
    // version-sniffing builder) matters: the sniffing read has no timeout of its own, so a
    // client that connects and sends nothing would escape the header timeout.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // accepted: wait a little instead of spinning, then carry on.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Git's responses are streamed in small writes (CGI head, pkt-lines); without
        // TCP_NODELAY, Nagle's algorithm and the client's delayed ACK add ~40 ms to each.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let body_timeout = limits.body_read_timeout;
        let service =
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let mut request =
                    request.map(|incoming| with_idle_timeout(Body::new(incoming), body_timeout));
                request.extensions_mut().insert(ConnectInfo(remote));
                router.clone().oneshot(request)
            });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(client = %remote, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// `body` failing with [`BodyError::IdleTimeout`] once it goes `idle` without data. The
/// clock runs only while the handler waits for the next chunk, so a handler that pauses
/// between reads (waiting for a lock, a git process) is not counted against the client.
pub(crate) fn with_idle_timeout(body: Body, idle: Duration) -> Body {
    let chunks = body.into_data_stream();
    let guarded = futures::stream::unfold(Some(chunks), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
            Ok(Some(Err(e))) => Some((Err(axum::Error::new(e)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new(BodyError::IdleTimeout(idle))), None)),
        }
    });
    Body::from_stream(guarded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_streaming_body_passes_and_a_stalled_one_fails() {
        let chunks = futures::stream::iter(["a", "b", "c"].map(Ok::<_, std::io::Error>));
        let body = with_idle_timeout(Body::from_stream(chunks), Duration::from_secs(60));
        let bytes = axum::body::to_bytes(body, 1024).await.unwrap();
        assert_eq!(&bytes[..], b"abc");

        let stalled = futures::stream::once(async { Ok::<_, std::io::Error>("x") })
            .chain(futures::stream::pending());
        let body = with_idle_timeout(Body::from_stream(stalled), Duration::from_millis(50));
        let err = tokio::time::timeout(Duration::from_secs(60), axum::body::to_bytes(body, 1024))
            .await
            .expect("the idle timeout ends the body")
            .unwrap_err();
        assert!(format!("{err:?}").contains("IdleTimeout"), "{err:?}");
    }
}
