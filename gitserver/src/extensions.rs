//! fleetbench's own endpoints under `/api/fleetbench` (not in Gitea): the request log,
//! webhook deliveries and fault switches, for when the server runs in another process or
//! a container and the library handle is out of reach.

use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;

use crate::api::{ApiError, GiteaJson, SignedIn};
use crate::faults::{Fault, RepoFault};
use crate::forge::ServerInfo;
use crate::names::RepoPath;
use crate::request_log::{GitService, RequestFilter, RequestLogEntry};
use crate::server::SharedState;
use crate::webhook::Delivery;

pub(crate) fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/fleetbench/info", get(info))
        .route("/api/fleetbench/requests", get(requests))
        .route("/api/fleetbench/deliveries", get(deliveries))
        .route(
            "/api/fleetbench/faults",
            get(list_faults).delete(clear_faults),
        )
        .route(
            "/api/fleetbench/faults/{owner}/{repo}",
            put(set_fault).delete(clear_fault),
        )
}

async fn info() -> Json<ServerInfo> {
    Json(ServerInfo {
        server: "fleetbench-gitserver".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        gitea_api: crate::GITEA_API_VERSION.to_owned(),
    })
}

#[derive(Debug, Default, Deserialize)]
struct RequestsQuery {
    repo: Option<String>,
    since: Option<String>,
    service: Option<String>,
    after_seq: Option<u64>,
    limit: Option<usize>,
}

async fn requests(
    State(state): State<SharedState>,
    _user: SignedIn,
    Query(query): Query<RequestsQuery>,
) -> Result<Json<Vec<RequestLogEntry>>, ApiError> {
    let since = query
        .since
        .as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .map_err(|e| ApiError::unprocessable(format!("since: {e}")))
        })
        .transpose()?;
    let service = query
        .service
        .as_deref()
        .map(|s| {
            GitService::parse(s)
                .ok_or_else(|| ApiError::unprocessable(format!("unknown service {s:?}")))
        })
        .transpose()?;
    let filter = RequestFilter {
        repo: query.repo,
        since,
        service,
        after_seq: query.after_seq,
        limit: query.limit,
    };
    Ok(Json(state.log.query(&filter)))
}

#[derive(Debug, Default, Deserialize)]
struct DeliveriesQuery {
    repo: Option<String>,
    hook_id: Option<i64>,
}

async fn deliveries(
    State(state): State<SharedState>,
    _user: SignedIn,
    Query(query): Query<DeliveriesQuery>,
) -> Json<Vec<Delivery>> {
    Json(state.deliveries.query(query.repo.as_deref(), query.hook_id))
}

async fn list_faults(State(state): State<SharedState>, _user: SignedIn) -> Json<Vec<RepoFault>> {
    Json(state.faults.list())
}

async fn clear_faults(State(state): State<SharedState>, _user: SignedIn) -> StatusCode {
    state.faults.clear_all();
    StatusCode::NO_CONTENT
}

async fn set_fault(
    State(state): State<SharedState>,
    _user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
    GiteaJson(fault): GiteaJson<Fault>,
) -> Result<Json<RepoFault>, ApiError> {
    let path = RepoPath::new(&owner, &repo).map_err(|_| ApiError::not_found())?;
    if state.store.repo(&path).is_none() {
        return Err(ApiError::not_found());
    }
    state.faults.set(&path, fault);
    Ok(Json(RepoFault {
        repo: path.key(),
        fault,
    }))
}

async fn clear_fault(
    State(state): State<SharedState>,
    _user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let path = RepoPath::new(&owner, &repo).map_err(|_| ApiError::not_found())?;
    state.faults.clear(&path);
    Ok(StatusCode::NO_CONTENT)
}
