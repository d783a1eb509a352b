//! Git's smart HTTP protocol at `/{owner}/{repo}.git/...`, with Gitea's access rules.
//!
//! Each request is checked here (fault, credentials, repository, permission), logged, and
//! then handed to `git http-backend` ([`crate::cgi`]). Anonymous users may read public
//! repositories; private ones and every push need credentials, answered with a 401 and a
//! `WWW-Authenticate` challenge so git asks its credential helper, as Gitea does.
//!
//! Pushes are detected by snapshotting the refs before `git-receive-pack` runs and again
//! after it exits, under the repository's write lock (which API commits take too): the
//! difference is exactly what this push changed, whatever protocol details or rejected
//! ref updates it involved, and it drives the webhooks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::StreamExt as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::auth::{self, Authenticated};
use crate::cgi::{self, BodyStream, CgiRequest};
use crate::faults::Fault;
use crate::gitops;
use crate::metrics::Visibility;
use crate::names::RepoPath;
use crate::request_log::{GitService, Outcome, PendingRequest};
use crate::server::SharedState;

pub(crate) fn router() -> Router<SharedState> {
    Router::new()
        .route("/{owner}/{repo}/info/refs", get(info_refs))
        .route("/{owner}/{repo}/git-upload-pack", post(upload_pack))
        .route("/{owner}/{repo}/git-receive-pack", post(receive_pack))
}

/// The parts of a git request the handlers share.
struct GitRequest {
    client: SocketAddr,
    owner: String,
    repo: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Option<Body>,
}

async fn info_refs(
    State(state): State<SharedState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let service = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.into_owned())
    });
    let service = match service.as_deref() {
        Some("git-upload-pack") => GitService::UploadPackAdvertisement,
        Some("git-receive-pack") => GitService::ReceivePackAdvertisement,
        // The dumb protocol (no `service`) is not served: every client git speaks smart.
        _ => {
            return plain(
                StatusCode::FORBIDDEN,
                "the dumb HTTP protocol is not supported",
            );
        }
    };
    let request = GitRequest {
        client,
        owner,
        repo,
        query,
        headers,
        body: None,
    };
    serve(state, service, "GET", "info/refs", request).await
}

async fn upload_pack(
    State(state): State<SharedState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = GitRequest {
        client,
        owner,
        repo,
        query,
        headers,
        body: Some(body),
    };
    serve(
        state,
        GitService::UploadPack,
        "POST",
        "git-upload-pack",
        request,
    )
    .await
}

async fn receive_pack(
    State(state): State<SharedState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path((owner, repo)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = GitRequest {
        client,
        owner,
        repo,
        query,
        headers,
        body: Some(body),
    };
    serve(
        state,
        GitService::ReceivePack,
        "POST",
        "git-receive-pack",
        request,
    )
    .await
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Gitea\""),
    );
    response
}

fn header_string(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records the end of a request that never reached `git http-backend`.
fn finish_early(
    state: &SharedState,
    pending: PendingRequest,
    outcome: Outcome,
    response: Response,
) -> Response {
    let status = response.status().as_u16();
    let entry = state.log.complete(pending, status, outcome);
    state.metrics.observe_request(
        &entry.repo,
        entry.service.as_str(),
        status,
        entry.duration_ms / 1000.0,
        visibility(state, &entry.repo),
    );
    response
}

/// Who may see `key` (`owner/name`) in the metrics: anonymous readers only public
/// repositories not hidden by a `missing` fault; nobody sees names that name no repository.
fn visibility(state: &SharedState, key: &str) -> Visibility {
    let Some(handle) = RepoPath::parse(key)
        .ok()
        .and_then(|path| state.store.repo(&path))
    else {
        return Visibility::Unknown;
    };
    if handle.is_private() || matches!(state.faults.get_key(key), Some(Fault::Missing)) {
        Visibility::Private
    } else {
        Visibility::Public
    }
}

async fn serve(
    state: SharedState,
    service: GitService,
    method: &str,
    suffix: &str,
    request: GitRequest,
) -> Response {
    let name = request.repo.strip_suffix(".git").unwrap_or(&request.repo);
    let Ok(path) = RepoPath::new(&request.owner, name) else {
        return plain(StatusCode::NOT_FOUND, "Repository not found");
    };
    let key = path.key();
    let mut pending = PendingRequest {
        arrived: jiff::Timestamp::now(),
        started: Instant::now(),
        repo: key.clone(),
        service,
        command: None,
        client: request.client.to_string(),
        user: None,
        protocol: header_string(&request.headers, "git-protocol"),
    };

    match state.faults.get_key(&key) {
        Some(Fault::Refuse) => {
            let response = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable (fault injected)",
            );
            return finish_early(&state, pending, Outcome::Refused, response);
        }
        Some(Fault::Missing) => {
            let response = plain(StatusCode::NOT_FOUND, "Repository not found");
            return finish_early(&state, pending, Outcome::NotFound, response);
        }
        Some(delay @ Fault::Delay { .. }) => {
            tokio::time::sleep(delay.wait()).await;
        }
        None => {}
    }

    let (authenticated, _) =
        auth::authenticate(&state.store, &request.headers, request.query.as_deref());
    let user = match authenticated {
        Authenticated::Invalid(reason) => {
            return finish_early(&state, pending, Outcome::Unauthorized, unauthorized(reason));
        }
        Authenticated::User(user) => Some(user),
        Authenticated::Anonymous => None,
    };
    pending.user.clone_from(&user);
    let is_push = matches!(
        service,
        GitService::ReceivePack | GitService::ReceivePackAdvertisement
    );
    let handle = state.store.repo(&path);
    let needs_auth = is_push || handle.as_ref().is_none_or(|h| h.is_private());
    if needs_auth && user.is_none() {
        return finish_early(
            &state,
            pending,
            Outcome::Unauthorized,
            unauthorized("authentication required"),
        );
    }
    let Some(handle) = handle else {
        let (status, outcome, message) = if is_push && state.store.owner(path.owner()).is_some() {
            // Gitea's answer with push-to-create disabled (its default).
            (
                StatusCode::FORBIDDEN,
                Outcome::Forbidden,
                "Push to create is not enabled for users.",
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                Outcome::NotFound,
                "Repository not found",
            )
        };
        return finish_early(&state, pending, outcome, plain(status, message));
    };

    let mut body: Option<BodyStream> = request
        .body
        .map(|b| Box::pin(b.into_data_stream()) as BodyStream);
    let content_encoding = header_string(&request.headers, header::CONTENT_ENCODING);
    if service == GitService::UploadPack
        && content_encoding.is_none()
        && let Some(stream) = body.take()
    {
        let (command, stream) = peek_command(stream).await;
        pending.command = command;
        body = Some(stream);
    }

    // A push holds the write lock from its ref snapshot to the one after it.
    let push_guard = if service == GitService::ReceivePack {
        let guard = handle.write_lock.clone().lock_owned().await;
        let path = handle.path.clone();
        match tokio::task::spawn_blocking(move || gitops::snapshot_refs(&path)).await {
            Ok(Ok(before)) => Some((guard, before)),
            failed => {
                tracing::error!(repo = %key, ?failed, "cannot read refs before a push");
                let response = plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot read the repository",
                );
                return finish_early(&state, pending, Outcome::Error, response);
            }
        }
    } else {
        None
    };

    let on_disk = handle
        .path
        .strip_prefix(state.store.root())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{key}.git"));
    let cgi_request = CgiRequest {
        git_binary: state.config.git_binary.clone(),
        project_root: state.store.root().to_path_buf(),
        path_info: format!("/{on_disk}/{suffix}"),
        method: method.to_owned(),
        query: request.query.clone().unwrap_or_default(),
        content_type: header_string(&request.headers, header::CONTENT_TYPE),
        content_length: header_string(&request.headers, header::CONTENT_LENGTH),
        content_encoding,
        git_protocol: pending.protocol.clone(),
        remote_user: user.clone(),
        remote_addr: request.client.ip().to_string(),
        body,
        max_request_bytes: state.config.max_git_request_bytes,
        timeout: state.config.git_timeout,
    };
    let response = match cgi::run(cgi_request).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(repo = %key, error = %fleet_api::error::chain(&e), "git http-backend failed");
            let response = plain(StatusCode::INTERNAL_SERVER_ERROR, "git http-backend failed");
            return finish_early(&state, pending, Outcome::Error, response);
        }
    };
    let status = response.status;
    let finished = response.finished;
    let completion_state = state.clone();
    let pusher = user.unwrap_or_default();
    tokio::spawn(async move {
        let exit = finished.await.unwrap_or_else(|e| cgi::CgiExit {
            success: false,
            detail: Some(format!("waiting task failed: {e}")),
        });
        let outcome = if exit.success && status.is_success() {
            Outcome::Ok
        } else {
            if let Some(detail) = &exit.detail {
                tracing::warn!(repo = %pending.repo, service = %pending.service, %detail, "git request failed");
            }
            Outcome::Error
        };
        let entry = completion_state
            .log
            .complete(pending, status.as_u16(), outcome);
        completion_state.metrics.observe_request(
            &entry.repo,
            entry.service.as_str(),
            entry.status,
            entry.duration_ms / 1000.0,
            if handle.is_private() {
                Visibility::Private
            } else {
                Visibility::Public
            },
        );
        if let Some((guard, before)) = push_guard {
            after_push(&completion_state, &handle, before, guard, &pusher).await;
        }
    });

    let mut http_response = Response::new(response.body);
    *http_response.status_mut() = status;
    *http_response.headers_mut() = response.headers;
    http_response
}

/// Reads the refs again after `git-receive-pack` exited and sends webhooks for the changes.
async fn after_push(
    state: &SharedState,
    handle: &Arc<crate::store::RepoHandle>,
    before: gitops::RefSnapshot,
    guard: tokio::sync::OwnedMutexGuard<()>,
    pusher: &str,
) {
    let path = handle.path.clone();
    let after = tokio::task::spawn_blocking(move || gitops::snapshot_refs(&path)).await;
    drop(guard);
    let after = match after {
        Ok(Ok(after)) => after,
        failed => {
            tracing::error!(repo = %handle.key, ?failed, "cannot read refs after a push");
            return;
        }
    };
    handle.set_empty(!after.keys().any(|name| name.starts_with("refs/heads/")));
    let updates = gitops::diff_refs(&before, &after);
    crate::push::notify(state, handle, updates, before, pusher, "push").await;
}

/// Reads the first chunk of an upload-pack request to find its protocol v2 command
/// (`command=ls-refs`, `command=fetch`), and gives back a stream that still yields it.
async fn peek_command(mut stream: BodyStream) -> (Option<String>, BodyStream) {
    let first = match tokio::time::timeout(std::time::Duration::from_secs(30), stream.next()).await
    {
        Ok(Some(Ok(chunk))) => chunk,
        Ok(Some(Err(e))) => {
            let rest = futures::stream::once(async move { Err(e) }).chain(stream);
            return (None, Box::pin(rest));
        }
        Ok(None) | Err(_) => return (None, stream),
    };
    let command = parse_v2_command(&first);
    let rest = futures::stream::once(async move { Ok::<Bytes, axum::Error>(first) }).chain(stream);
    (command, Box::pin(rest))
}

/// The command of a protocol v2 request: its first pkt-line, `command=NAME`.
pub(crate) fn parse_v2_command(chunk: &[u8]) -> Option<String> {
    let length = usize::from_str_radix(std::str::from_utf8(chunk.get(..4)?).ok()?, 16).ok()?;
    let line = chunk.get(4..length)?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    line.strip_prefix("command=").map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_commands_are_read_from_the_first_pkt_line() {
        assert_eq!(
            parse_v2_command(b"0014command=ls-refs\n0000").as_deref(),
            Some("ls-refs")
        );
        assert_eq!(
            parse_v2_command(b"0012command=fetch\n").as_deref(),
            Some("fetch")
        );
        // A protocol v0 fetch starts with `want`.
        assert_eq!(
            parse_v2_command(b"0032want 0123456789012345678901234567890123456789\n"),
            None
        );
        assert_eq!(parse_v2_command(b"00"), None);
        assert_eq!(parse_v2_command(b"zzzzcommand"), None);
    }
}
