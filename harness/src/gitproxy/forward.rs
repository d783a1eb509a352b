//! Forwarding one request to the upstream, streaming both bodies, and recording it.
//!
//! Bodies are never buffered: a clone or push of a large repository passes through in the
//! chunks it arrives in, and the log entry is written when the response body ends, so its
//! duration covers the whole transfer, as the git server's own log does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gitserver::GitService;
use gitserver::request_log::Outcome;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use super::classify::{self, GitRequest};
use super::fault::{FaultTable, ProxyFault};
use super::log::{Arrival, ProxyLog, Recorder, outcome_of};

/// Where requests go: scheme and authority of the upstream, and its path prefix (no
/// trailing `/`, `""` for none).
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub authority: Authority,
    pub prefix: String,
}

/// The proxy's configuration and records: everything a request handler needs, shared by
/// all connections.
#[derive(Debug)]
pub(crate) struct ProxyState {
    pub upstream: Upstream,
    /// The base URL clients use (no trailing `/`).
    pub public_url: String,
    /// The path prefix of the proxy's public URL, stripped before forwarding.
    pub public_prefix: String,
    pub client: Client<HttpConnector, RequestBody>,
    pub upstream_timeout: Duration,
    pub log: ProxyLog,
    pub faults: FaultTable,
}

/// Serves one request: answer a fault, or forward it; record it if it is a git request.
pub(crate) async fn handle(
    shared: Arc<ProxyState>,
    client: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let arrived = jiff::Timestamp::now();
    let started = Instant::now();
    let relative = classify::relative_path(request.uri().path(), &shared.public_prefix);
    let git = classify::classify(relative, request.uri().query());
    let upstream_path = match request.uri().query() {
        Some(query) => format!("{}{relative}?{query}", shared.upstream.prefix),
        None => format!("{}{relative}", shared.upstream.prefix),
    };

    let command = Arc::new(OnceLock::new());
    let mut recorder = git.as_ref().map(|git| {
        let headers = request.headers();
        Recorder::new(
            shared.log.clone(),
            Arrival {
                arrived,
                started,
                repo: git.repo.clone(),
                service: git.service,
                client: client.to_string(),
                user: header_str(headers, &header::AUTHORIZATION)
                    .and_then(classify::basic_auth_user),
                protocol: header_str(headers, &HeaderName::from_static("git-protocol"))
                    .map(str::to_owned),
                command: command.clone(),
            },
        )
    });

    if let Some(GitRequest { repo, .. }) = &git {
        match shared.faults.get(repo) {
            Some(ProxyFault::Refuse) => {
                return Ok(injected(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service Unavailable (fault injected by the fleetbench git proxy)",
                    Outcome::Refused,
                    recorder,
                ));
            }
            Some(ProxyFault::NotFound) => {
                return Ok(injected(
                    StatusCode::NOT_FOUND,
                    "Repository not found (fault injected by the fleetbench git proxy)",
                    Outcome::NotFound,
                    recorder,
                ));
            }
            Some(ProxyFault::RateLimit { retry_after }) => {
                let mut response = injected(
                    StatusCode::TOO_MANY_REQUESTS,
                    "API rate limit exceeded (fault injected by the fleetbench git proxy)",
                    Outcome::Refused,
                    recorder,
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(ceil_secs(retry_after)),
                );
                return Ok(response);
            }
            // Clamped when set; if the client gives up meanwhile, this future is dropped
            // and the recorder writes the request down as abandoned.
            Some(ProxyFault::Delay(delay)) => tokio::time::sleep(delay).await,
            None => {}
        }
    }

    let sniff = git
        .as_ref()
        .filter(|git| {
            // A gzip body's first bytes are not a pkt-line.
            git.service == GitService::UploadPack
                && !request.headers().contains_key(header::CONTENT_ENCODING)
        })
        .map(|_| command);
    let Some(upstream_request) = upstream_request(
        &shared.upstream,
        &upstream_path,
        client,
        request,
        sniff,
        shared.upstream_timeout,
    ) else {
        return Ok(local_answer(
            StatusCode::BAD_REQUEST,
            "the request cannot be forwarded",
            recorder,
        ));
    };

    let answer = tokio::time::timeout(
        shared.upstream_timeout,
        shared.client.request(upstream_request),
    )
    .await;
    let response = match answer {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(upstream = %shared.upstream.authority, %error, "the upstream git server is unreachable");
            return Ok(local_answer(
                StatusCode::BAD_GATEWAY,
                "Bad Gateway: the upstream git server is unreachable",
                recorder,
            ));
        }
        Err(_) => {
            tracing::warn!(upstream = %shared.upstream.authority, timeout = ?shared.upstream_timeout, "the upstream git server did not answer in time");
            return Ok(local_answer(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway Timeout: the upstream git server did not answer in time",
                recorder,
            ));
        }
    };

    let (parts, body) = response.into_parts();
    if let Some(recorder) = recorder.as_mut() {
        recorder.answered(parts.status.as_u16(), outcome_of(parts.status));
    }
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if let Some(location) = header_str(&headers, &header::LOCATION)
        .and_then(|location| rewrite_location(location, &shared))
        .and_then(|location| HeaderValue::from_str(&location).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    let mut response = Response::new(ProxyBody {
        kind: Kind::Upstream(body, Stall::new(shared.upstream_timeout)),
        recorder,
    });
    *response.status_mut() = parts.status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The request to send upstream, or `None` if its URI cannot be built (only for paths
/// no client sends, like `OPTIONS *`).
fn upstream_request(
    upstream: &Upstream,
    path_and_query: &str,
    client: SocketAddr,
    request: Request<Incoming>,
    sniff: Option<Arc<OnceLock<String>>>,
    stall_limit: Duration,
) -> Option<Request<RequestBody>> {
    if !path_and_query.starts_with('/') {
        return None;
    }
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .ok()?;
    let (mut parts, incoming) = request.into_parts();
    parts.uri = uri;
    // The upstream connection is HTTP/1.1 whatever the client spoke.
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    // hyper already answered `Expect: 100-continue` to the client when the body was read.
    parts.headers.remove(header::EXPECT);
    // Virtual hosting and Gitea's own URL checks need the upstream's name, not ours.
    parts.headers.insert(
        header::HOST,
        HeaderValue::from_str(upstream.authority.as_str()).ok()?,
    );
    parts.headers.append(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_str(&client.ip().to_string()).ok()?,
    );
    Some(Request::from_parts(
        parts,
        RequestBody {
            inner: incoming,
            stall: Stall::new(stall_limit),
            sniff,
        },
    ))
}

/// Removes the headers that describe one connection rather than the message: they must
/// not cross the proxy (RFC 9110, section 7.6.1).
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
    ] {
        headers.remove(name);
    }
    let proxy_headers: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy_headers {
        headers.remove(name);
    }
}

/// A redirect to the upstream's own URLs, mapped onto the proxy's, so a client that
/// follows it stays behind the proxy (and in its log). `None` leaves it as it is.
fn rewrite_location(location: &str, shared: &ProxyState) -> Option<String> {
    let upstream = &shared.upstream;
    let base = format!("http://{}{}", upstream.authority, upstream.prefix);
    let rewritten = if let Some(rest) = strip_base(location, &base) {
        format!("{}{rest}", shared.public_url)
    } else if location.starts_with('/') && !location.starts_with("//") {
        let rest = strip_base(location, &upstream.prefix)?;
        format!("{}{rest}", shared.public_prefix)
    } else {
        return None;
    };
    (rewritten != location).then_some(rewritten)
}

/// `s` after `base`, if `base` ends where a path segment, query or fragment does.
fn strip_base<'a>(s: &'a str, base: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(base)?;
    (rest.is_empty() || rest.starts_with(['/', '?', '#'])).then_some(rest)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Whole seconds, rounded up, as `Retry-After` takes them.
fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// A fault's answer, recorded with `outcome` once delivered.
fn injected(
    status: StatusCode,
    message: &str,
    outcome: Outcome,
    mut recorder: Option<Recorder>,
) -> Response<ProxyBody> {
    if let Some(recorder) = recorder.as_mut() {
        recorder.answered(status.as_u16(), outcome);
    }
    text_response(status, message, recorder)
}

/// An answer the proxy gives because it could not forward: recorded as an error.
fn local_answer(
    status: StatusCode,
    message: &str,
    recorder: Option<Recorder>,
) -> Response<ProxyBody> {
    injected(status, message, Outcome::Error, recorder)
}

fn text_response(
    status: StatusCode,
    message: &str,
    recorder: Option<Recorder>,
) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody {
        kind: Kind::Full(Some(Bytes::from(format!("{message}\n")))),
        recorder,
    });
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that stopped moving: nothing arrived for the stall limit.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}")]
struct Stalled(Duration);

/// Bounds the wait for each next chunk of a streamed body, so a peer that stops sending
/// (without closing) cannot hold a request, its connection and its log entry forever.
/// The limit is the upstream timeout: a body may take any time in total while it moves.
#[derive(Debug)]
struct Stall {
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Stall {
    fn new(limit: Duration) -> Self {
        Self {
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    /// Polls `body` for its next frame, failing it once it has been silent for the limit.
    fn poll_frame(
        &mut self,
        body: &mut Incoming,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.timer
                    .as_mut()
                    .reset(tokio::time::Instant::now() + self.limit);
                Poll::Ready(frame.map(|frame| frame.map_err(BoxError::from)))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Stalled(self.limit).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The client's request body on its way upstream. It notes the protocol v2 command of an
/// upload-pack request from the first chunk as it passes, so nothing is held back.
#[derive(Debug)]
pub(crate) struct RequestBody {
    inner: Incoming,
    stall: Stall,
    sniff: Option<Arc<OnceLock<String>>>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = ready!(this.stall.poll_frame(&mut this.inner, cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Some(slot) = this.sniff.take()
            && let Some(command) = classify::v2_command(data)
        {
            let _ = slot.set(command);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body to the client: the upstream's, streamed, or the proxy's own short
/// text. It writes the request's log entry when it ends, fails or is dropped.
#[derive(Debug)]
pub(crate) struct ProxyBody {
    kind: Kind,
    recorder: Option<Recorder>,
}

#[derive(Debug)]
enum Kind {
    Upstream(Incoming, Stall),
    Full(Option<Bytes>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = match &mut this.kind {
            Kind::Upstream(body, stall) => ready!(stall.poll_frame(body, cx)),
            Kind::Full(data) => data.take().map(|data| Ok(Frame::data(data))),
        };
        match &frame {
            None => {
                if let Some(recorder) = this.recorder.take() {
                    recorder.complete();
                }
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "the upstream response body failed");
                if let Some(recorder) = this.recorder.take() {
                    recorder.fail();
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream(body, _) => body.is_end_stream(),
            Kind::Full(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream(body, _) => body.size_hint(),
            Kind::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64))
            }
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // hyper stops polling a body that says it has ended, so "dropped at its end" is a
        // completed response; dropped anywhere else, the client went away mid-body.
        if let Some(recorder) = self.recorder.take() {
            if self.is_end_stream() {
                recorder.complete();
            } else {
                recorder.fail();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_end_to_end_ones_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private-hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("proxy-authorization", "Basic eDp5"),
            ("proxy-connection", "keep-alive"),
            ("x-private-hop", "1"),
            ("authorization", "Basic YWxpY2U6c2VjcmV0"),
            ("content-type", "application/x-git-upload-pack-request"),
            ("content-encoding", "gzip"),
            ("content-length", "42"),
            ("git-protocol", "version=2"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut headers);
        let mut kept: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            vec![
                "authorization",
                "content-encoding",
                "content-length",
                "content-type",
                "git-protocol"
            ]
        );
    }

    fn shared(upstream: &str, public_url: &str, public_prefix: &str) -> ProxyState {
        let uri: Uri = upstream.parse().unwrap();
        ProxyState {
            upstream: Upstream {
                authority: uri.authority().unwrap().clone(),
                prefix: uri.path().trim_end_matches('/').to_owned(),
            },
            public_url: public_url.to_owned(),
            public_prefix: public_prefix.to_owned(),
            client: Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(HttpConnector::new()),
            upstream_timeout: Duration::from_secs(1),
            log: ProxyLog::new(1),
            faults: FaultTable::default(),
        }
    }

    #[test]
    fn redirects_to_the_upstream_point_back_at_the_proxy() {
        let plain = shared("http://gitea:3000", "http://127.0.0.1:8080", "");
        assert_eq!(
            rewrite_location("http://gitea:3000/o/new.git/info/refs?x", &plain).as_deref(),
            Some("http://127.0.0.1:8080/o/new.git/info/refs?x")
        );
        assert_eq!(
            rewrite_location("http://gitea:3000", &plain).as_deref(),
            Some("http://127.0.0.1:8080")
        );
        // Relative redirects need nothing when neither side has a prefix.
        assert_eq!(rewrite_location("/o/new", &plain), None);
        // Elsewhere, or a longer host name: untouched.
        assert_eq!(rewrite_location("https://github.com/o/r", &plain), None);
        assert_eq!(rewrite_location("http://gitea:30000/o/r", &plain), None);
        assert_eq!(rewrite_location("//gitea:3000/o/r", &plain), None);

        let prefixed = shared("http://gitea/git", "http://proxy.test/p", "/p");
        assert_eq!(
            rewrite_location("http://gitea/git/o/r", &prefixed).as_deref(),
            Some("http://proxy.test/p/o/r")
        );
        assert_eq!(
            rewrite_location("/git/o/r", &prefixed).as_deref(),
            Some("/p/o/r")
        );
        assert_eq!(rewrite_location("/gitea/o/r", &prefixed), None);
        assert_eq!(rewrite_location("http://gitea/other", &prefixed), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(ceil_secs(Duration::from_secs(30)), 30);
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }

    #[tokio::test]
    async fn a_local_answer_is_recorded_when_its_body_is_read() {
        let log = ProxyLog::new(10);
        let recorder = Recorder::new(
            log.clone(),
            Arrival {
                arrived: jiff::Timestamp::now(),
                started: Instant::now(),
                repo: "o/r".to_owned(),
                service: GitService::UploadPackAdvertisement,
                client: "127.0.0.1:9".to_owned(),
                user: Some("alice".to_owned()),
                protocol: None,
                command: Arc::default(),
            },
        );
        let response = injected(
            StatusCode::SERVICE_UNAVAILABLE,
            "no",
            Outcome::Refused,
            Some(recorder),
        );
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            log.query(&Default::default()).is_empty(),
            "not before delivery"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"no\n");
        let entries = log.query(&Default::default());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].status, 503);
        assert_eq!(entries[0].outcome, Outcome::Refused);
        assert_eq!(entries[0].user.as_deref(), Some("alice"));
    }

    #[test]
    fn a_response_dropped_before_its_body_was_sent_is_an_error() {
        let log = ProxyLog::new(10);
        let recorder = Recorder::new(
            log.clone(),
            Arrival {
                arrived: jiff::Timestamp::now(),
                started: Instant::now(),
                repo: "o/r".to_owned(),
                service: GitService::UploadPack,
                client: "127.0.0.1:9".to_owned(),
                user: None,
                protocol: None,
                command: Arc::default(),
            },
        );
        drop(injected(
            StatusCode::OK,
            "unsent",
            Outcome::Ok,
            Some(recorder),
        ));
        let entries = log.query(&Default::default());
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].status, entries[0].outcome),
            (200, Outcome::Error)
        );
    }
}
