//! Repositories: create (for the user or an organisation), get, delete, list, search.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use fleet_api::error::chain;
use http::StatusCode;
use serde::Deserialize;

use super::{
    ApiError, GiteaJson, Page, SignedIn, Viewer, blocking, convert, find_repo, with_total,
};
use crate::faults::Fault;
use crate::forge::types::{CreateRepoOption, Repository, SearchResults};
use crate::gitops::Person;
use crate::server::SharedState;
use crate::store::{NewRepo, Owner, RepoHandle};

pub(super) fn router() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/user/repos",
            get(list_my_repos).post(create_user_repo),
        )
        .route(
            "/api/v1/orgs/{org}/repos",
            get(list_org_repos).post(create_org_repo),
        )
        .route("/api/v1/users/{username}/repos", get(list_user_repos))
        .route("/api/v1/repos/search", get(search_repos))
        .route(
            "/api/v1/repos/{owner}/{repo}",
            get(get_repo).delete(delete_repo),
        )
}

/// Gitea's `MaxSize(2048)` on descriptions.
const MAX_DESCRIPTION: usize = 2048;

/// Checks a repository creation body as Gitea's bindings do (`AlphaDashDot;MaxSize(100)`
/// name, `MaxSize(2048)` description, `GitRefName;MaxSize(100)` default branch); every
/// refusal is a 422.
pub(crate) fn decode_create(option: CreateRepoOption) -> Result<NewRepo, ApiError> {
    crate::names::validate_repo(&option.name).map_err(|e| ApiError::unprocessable(chain(&e)))?;
    if option.description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::unprocessable("[Description]: MaxSize"));
    }
    let default_branch = if option.default_branch.is_empty() {
        "main".to_owned()
    } else {
        option.default_branch.clone()
    };
    crate::names::validate_branch(&default_branch)
        .map_err(|e| ApiError::unprocessable(format!("[DefaultBranch]: {e}")))?;
    Ok(NewRepo {
        name: option.name,
        description: option.description,
        private: option.private,
        default_branch,
        auto_init: option.auto_init,
    })
}

async fn create_repo(
    state: &SharedState,
    owner: Owner,
    option: CreateRepoOption,
    user: &str,
) -> Result<Response, ApiError> {
    let new = decode_create(option)?;
    let person = Person {
        name: user.to_owned(),
        email: convert::user_email(user),
    };
    let store = state.store.clone();
    let handle = blocking(move || {
        store
            .create_repo(&owner, &new, &person)
            .map_err(ApiError::from)
    })
    .await?;
    state.metrics.set_repositories(state.store.repo_count());
    let body = convert::repository(state, &handle, Some(user));
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn create_user_repo(
    State(state): State<SharedState>,
    user: SignedIn,
    GiteaJson(option): GiteaJson<CreateRepoOption>,
) -> Result<Response, ApiError> {
    let owner = state
        .store
        .owner(&user.user)
        .ok_or_else(|| ApiError::internal("the server's user has no owner entry"))?;
    create_repo(&state, owner, option, &user.user).await
}

async fn create_org_repo(
    State(state): State<SharedState>,
    user: SignedIn,
    Path(org): Path<String>,
    GiteaJson(option): GiteaJson<CreateRepoOption>,
) -> Result<Response, ApiError> {
    let org = state.store.org(&org).ok_or_else(ApiError::not_found)?;
    create_repo(&state, Owner::Org(org), option, &user.user).await
}

async fn get_repo(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Json<Repository>, ApiError> {
    let handle = find_repo(&state, &owner, &repo, viewer.user.as_deref()).await?;
    Ok(Json(convert::repository(
        &state,
        &handle,
        viewer.user.as_deref(),
    )))
}

async fn delete_repo(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let handle = find_repo(&state, &owner, &repo, Some(&user.user)).await?;
    // Wait for a running push or commit to finish rather than delete under it.
    let guard = handle.write_lock.clone().lock_owned().await;
    let store = state.store.clone();
    let deleting = handle.clone();
    blocking(move || store.delete_repo(&deleting).map_err(ApiError::from)).await?;
    drop(guard);
    if let Ok(path) = crate::names::RepoPath::new(&owner, &repo) {
        state.faults.clear(&path);
    }
    state.metrics.set_repositories(state.store.repo_count());
    Ok(StatusCode::NO_CONTENT)
}

/// The repositories `viewer` may see, in id order, hidden ones (`missing` fault) left out.
fn visible(
    state: &SharedState,
    viewer: Option<&str>,
    keep: impl Fn(&RepoHandle) -> bool,
) -> Vec<Arc<RepoHandle>> {
    state
        .store
        .repos()
        .into_iter()
        .filter(|h| viewer.is_some() || !h.is_private())
        .filter(|h| state.faults.get_key(&h.key) != Some(Fault::Missing))
        .filter(|h| keep(h))
        .collect()
}

fn page_of(
    state: &SharedState,
    viewer: Option<&str>,
    repos: Vec<Arc<RepoHandle>>,
    page: Page,
) -> Response {
    let (repos, total) = page.apply(repos);
    let body: Vec<Repository> = repos
        .iter()
        .map(|h| convert::repository(state, h, viewer))
        .collect();
    with_total(body, total)
}

async fn list_my_repos(
    State(state): State<SharedState>,
    user: SignedIn,
    Query(page): Query<Page>,
) -> Response {
    // The only user owns every organisation, so it sees every repository.
    let repos = visible(&state, Some(&user.user), |_| true);
    page_of(&state, Some(&user.user), repos, page)
}

fn owned_by(owner: &str) -> impl Fn(&RepoHandle) -> bool + '_ {
    move |h| h.meta().owner.eq_ignore_ascii_case(owner)
}

async fn list_org_repos(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path(org): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    state.store.org(&org).ok_or_else(ApiError::not_found)?;
    let user = viewer.user.as_deref();
    let repos = visible(&state, user, owned_by(&org));
    Ok(page_of(&state, user, repos, page))
}

async fn list_user_repos(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path(username): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ApiError> {
    state
        .store
        .owner(&username)
        .ok_or_else(ApiError::not_found)?;
    let user = viewer.user.as_deref();
    let repos = visible(&state, user, owned_by(&username));
    Ok(page_of(&state, user, repos, page))
}

#[derive(Debug, Default, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    uid: Option<i64>,
    private: Option<bool>,
    page: Option<usize>,
    limit: Option<usize>,
}

async fn search_repos(
    State(state): State<SharedState>,
    viewer: Viewer,
    Query(query): Query<SearchQuery>,
) -> Response {
    let keyword = query.q.to_ascii_lowercase();
    let owner_name = query
        .uid
        .and_then(|uid| state.store.owner_by_id(uid))
        .map(|owner| owner.name().to_owned());
    if query.uid.is_some() && owner_name.is_none() {
        return with_total(
            SearchResults {
                ok: true,
                data: Vec::new(),
            },
            0,
        );
    }
    let user = viewer.user.as_deref();
    let repos = visible(&state, user, |h| {
        let meta = h.meta();
        meta.name.to_ascii_lowercase().contains(&keyword)
            && owner_name
                .as_ref()
                .is_none_or(|o| meta.owner.eq_ignore_ascii_case(o))
            && query.private.is_none_or(|private| meta.private == private)
    });
    let (repos, total) = Page::new(query.page, query.limit).apply(repos);
    let data = repos
        .iter()
        .map(|h| convert::repository(&state, h, user))
        .collect();
    with_total(SearchResults { ok: true, data }, total)
}
