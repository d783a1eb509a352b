//! Reading request bodies within the server's bounds.
//!
//! A body is read whole before it is decoded, so two bounds protect the server: its size
//! ([`Config::body_limit`](crate::Config::body_limit)) and the time it may take to arrive
//! ([`Config::body_read_timeout`](crate::Config::body_read_timeout)), since a client that
//! trickles a body would otherwise hold a task and a connection for ever. An oversized body
//! is not refused at its first byte: the client is still writing it, and a server that
//! closes with unread data makes the client's TCP stack reset the connection, so the
//! client sees a broken pipe rather than the `413`. The server therefore reads and
//! discards up to [`Config::body_drain_limit`](crate::Config::body_drain_limit) bytes
//! first, then answers and closes.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use fleet_api::error::{Foreign, chain};
use http_body_util::BodyExt as _;

use crate::status::ApiError;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body did not arrive within the read timeout.
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    /// The connection failed while the body was being read.
    #[error("reading the request body")]
    Read(#[source] Foreign<axum::Error>),
}

impl From<BodyError> for ApiError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::TooLarge { limit } => ApiError::too_large(limit),
            BodyError::Timeout(after) => ApiError::request_timeout(after),
            // The client sees the transport's words alone, as kube-apiserver's clients do.
            BodyError::Read(source) => ApiError::bad_request(chain(&source)),
        }
    }
}

/// The bounds of one body read.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest accepted body.
    pub limit: usize,
    /// Bytes of an oversized body read and discarded before giving up.
    pub drain: usize,
    /// Time allowed for the whole body; zero for no bound.
    pub timeout: Duration,
}

impl Limits {
    /// The bounds set in a server's configuration.
    pub fn of(config: &crate::Config) -> Self {
        Self {
            limit: config.body_limit,
            drain: config.body_drain_limit.max(config.body_limit),
            timeout: config.body_read_timeout,
        }
    }
}

/// Reads a request's body whole, within `limits`. A client that announced an oversized
/// body and waits for `100 Continue` before sending it is answered at once: it has sent
/// nothing that needs draining.
pub async fn read_request(
    headers: &http::HeaderMap,
    body: Body,
    limits: Limits,
) -> Result<Bytes, BodyError> {
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let waits_for_continue = headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if waits_for_continue
        && announced.is_some_and(|length| length > u64::try_from(limits.limit).unwrap_or(u64::MAX))
    {
        return Err(BodyError::TooLarge {
            limit: limits.limit,
        });
    }
    read(body, limits).await
}

/// Reads `body` whole, within `limits`.
pub async fn read(body: Body, limits: Limits) -> Result<Bytes, BodyError> {
    if limits.timeout.is_zero() {
        return collect(body, limits).await;
    }
    tokio::time::timeout(limits.timeout, collect(body, limits))
        .await
        .map_err(|_| BodyError::Timeout(limits.timeout))?
}

async fn collect(mut body: Body, limits: Limits) -> Result<Bytes, BodyError> {
    let mut buffer = BytesMut::new();
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Read(Foreign(e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limits.drain {
            return Err(BodyError::TooLarge {
                limit: limits.limit,
            });
        }
        if seen <= limits.limit {
            buffer.extend_from_slice(&data);
        } else if !buffer.is_empty() {
            // Over the limit: keep reading to drain, but stop holding what was read.
            buffer = BytesMut::new();
        }
    }
    if seen > limits.limit {
        return Err(BodyError::TooLarge {
            limit: limits.limit,
        });
    }
    Ok(buffer.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(limit: usize, drain: usize) -> Limits {
        Limits {
            limit,
            drain,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn bodies_within_the_limit_are_returned_whole() {
        let bytes = read(Body::from("hello"), limits(5, 10)).await.unwrap();
        assert_eq!(&bytes[..], b"hello");
    }

    #[tokio::test]
    async fn a_zero_timeout_means_no_bound() {
        let limits = Limits {
            limit: 5,
            drain: 5,
            timeout: Duration::ZERO,
        };
        assert_eq!(
            &read(Body::from("hello"), limits).await.unwrap()[..],
            b"hello"
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_whether_drained_or_not() {
        for drain in [6, 100] {
            let err = read(Body::from("hello!"), limits(5, drain))
                .await
                .unwrap_err();
            assert!(matches!(err, BodyError::TooLarge { limit: 5 }), "{err:?}");
            assert_eq!(ApiError::from(err).code, 413);
        }
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let (_sender, body) = {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
            (tx, Body::from_stream(tokio_stream_from(rx)))
        };
        let err = read(
            body,
            Limits {
                limit: 10,
                drain: 10,
                timeout: Duration::from_millis(50),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BodyError::Timeout(_)), "{err:?}");
        assert_eq!(ApiError::from(err).code, 408);
    }

    fn tokio_stream_from(
        rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
    }
}
