//! The Gitea REST subset at `/api/v1`, with Gitea 1.22's paths, JSON and status codes.
//!
//! Only what the harness needs is served (see the crate README for the list); the forge
//! client uses exactly this subset, so the same code drives a real Gitea. Access follows
//! Gitea: anonymous users see public repositories only (a private one is a 404, not a
//! 403), every write needs credentials, and wrong credentials are a 401 even where
//! anonymous access would do.

pub(crate) mod contents;
pub(crate) mod convert;
pub(crate) mod hooks;
pub(crate) mod repos;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use fleet_api::error::chain;
use http::StatusCode;
use serde::de::DeserializeOwned;

use crate::auth::{self, Authenticated, Method};
use crate::faults::Fault;
use crate::forge::types::ApiErrorBody;
use crate::names::RepoPath;
use crate::server::SharedState;
use crate::store::{RepoHandle, StoreError};

pub(crate) fn router() -> Router<SharedState> {
    Router::new()
        .merge(users::router())
        .merge(repos::router())
        .merge(hooks::router())
        .merge(contents::router())
        .route("/api/healthz", axum::routing::get(healthz))
}

/// Gitea's health check (`/api/healthz`), so readiness probes written for Gitea work here.
async fn healthz() -> Response {
    let body = serde_json::json!({
        "status": "pass",
        "description": "Gitea: Git with a cup of tea",
        "checks": {},
    });
    (
        [(http::header::CONTENT_TYPE, "application/health+json")],
        body.to_string(),
    )
        .into_response()
}

/// A Gitea API error: its status and message, as Gitea's `APIError` JSON.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The status answered.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "The target couldn't be found.")
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error in the REST API");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let errors = (self.status == StatusCode::NOT_FOUND).then(Vec::new);
        let body = ApiErrorBody {
            message: self.message,
            url: "/api/swagger".to_owned(),
            errors,
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists => Self::new(StatusCode::CONFLICT, chain(&error)),
            StoreError::OwnerExists(_) => Self::unprocessable(chain(&error)),
            StoreError::NotFound(_) => Self::not_found(),
            other => Self::internal(chain(&other)),
        }
    }
}

/// Runs blocking work (git, files) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(chain(&e)))?
}

/// The caller, if any (wrong credentials are rejected with 401 here).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub user: Option<String>,
    pub method: Method,
}

impl FromRequestParts<SharedState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        match auth::authenticate(&state.store, &parts.headers, parts.uri.query()) {
            (Authenticated::Invalid(reason), _) => Err(ApiError::unauthorized(reason)),
            (Authenticated::User(user), method) => Ok(Self {
                user: Some(user),
                method,
            }),
            (Authenticated::Anonymous, method) => Ok(Self { user: None, method }),
        }
    }
}

/// A signed-in caller (anonymous requests get Gitea's 401 `token is required`).
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub user: String,
    pub method: Method,
}

impl FromRequestParts<SharedState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        match viewer.user {
            Some(user) => Ok(Self {
                user,
                method: viewer.method,
            }),
            None => Err(ApiError::unauthorized("token is required")),
        }
    }
}

/// A JSON body whose rejections are Gitea's: 422 for anything malformed, 413 for too big.
#[derive(Debug)]
pub(crate) struct GiteaJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for GiteaJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, rejection.body_text()),
            ),
            Err(rejection) => Err(ApiError::unprocessable(rejection.body_text())),
        }
    }
}

/// Looks a repository up for a REST call: applies its fault, hides private repositories
/// from anonymous callers, and treats invalid names as unknown (404).
pub(crate) async fn find_repo(
    state: &SharedState,
    owner: &str,
    name: &str,
    viewer: Option<&str>,
) -> Result<Arc<RepoHandle>, ApiError> {
    let path = RepoPath::new(owner, name).map_err(|_| ApiError::not_found())?;
    apply_fault(state, &path).await?;
    let handle = state.store.repo(&path).ok_or_else(ApiError::not_found)?;
    if handle.is_private() && viewer.is_none() {
        return Err(ApiError::not_found());
    }
    Ok(handle)
}

/// Applies a repository's fault to a REST call.
pub(crate) async fn apply_fault(state: &SharedState, path: &RepoPath) -> Result<(), ApiError> {
    match state.faults.get(path) {
        Some(Fault::Refuse) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable (fault injected)",
        )),
        Some(Fault::Missing) => Err(ApiError::not_found()),
        Some(delay @ Fault::Delay { .. }) => {
            tokio::time::sleep(delay.wait()).await;
            Ok(())
        }
        None => Ok(()),
    }
}

/// Gitea's `page` / `limit` query parameters (default 30 a page, at most 50).
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub(crate) struct Page {
    page: Option<usize>,
    limit: Option<usize>,
}

impl Page {
    pub(crate) fn new(page: Option<usize>, limit: Option<usize>) -> Self {
        Self { page, limit }
    }

    /// The slice of `items` this page shows, and the `X-Total-Count` header value.
    pub(crate) fn apply<T>(self, items: Vec<T>) -> (Vec<T>, usize) {
        let total = items.len();
        let limit = match self.limit {
            Some(0) | None => 30,
            Some(limit) => limit.min(50),
        };
        let page = self.page.unwrap_or(1).max(1);
        let items = items
            .into_iter()
            // A hostile `page` must not overflow: past the end is simply empty.
            .skip((page - 1).saturating_mul(limit))
            .take(limit)
            .collect();
        (items, total)
    }
}

/// A JSON answer with Gitea's `X-Total-Count` header.
pub(crate) fn with_total<T: serde::Serialize>(items: T, total: usize) -> Response {
    let mut response = axum::Json(items).into_response();
    response
        .headers_mut()
        .insert("x-total-count", http::HeaderValue::from(total));
    response
}
