//! Repository webhooks: create, list, get, delete. Persisted with the repository.

use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;

use super::{ApiError, GiteaJson, SignedIn, blocking, convert, find_repo};
use crate::forge::types::{CreateHookOption, Hook};
use crate::server::SharedState;
use crate::store::{HookMeta, now_rfc3339};

pub(super) fn router() -> Router<SharedState> {
    Router::new()
        .route(
            "/api/v1/repos/{owner}/{repo}/hooks",
            get(list_hooks).post(create_hook),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/hooks/{id}",
            get(get_hook).delete(delete_hook),
        )
}

/// Hook types whose payload this server sends (Gogs' is Gitea's).
const SUPPORTED_TYPES: &[&str] = &["gitea", "gogs"];

/// Checks a creation request as Gitea's `checkCreateHookOption` does (422 on failure).
pub(crate) fn validate(option: &CreateHookOption) -> Result<(), ApiError> {
    if !SUPPORTED_TYPES.contains(&option.hook_type.as_str()) {
        return Err(ApiError::unprocessable(format!(
            "Invalid hook type: {}",
            option.hook_type
        )));
    }
    for name in ["url", "content_type"] {
        if !option.config.contains_key(name) {
            return Err(ApiError::unprocessable(format!(
                "Missing config option: {name}"
            )));
        }
    }
    if !matches!(option.config["content_type"].as_str(), "json" | "form") {
        return Err(ApiError::unprocessable("Invalid content type"));
    }
    let valid_url = url::Url::parse(&option.config["url"])
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
    if !valid_url {
        return Err(ApiError::unprocessable("Invalid url"));
    }
    let method = option
        .config
        .get("http_method")
        .map_or("POST", String::as_str);
    if !method.eq_ignore_ascii_case("POST") && !method.eq_ignore_ascii_case("PUT") {
        return Err(ApiError::unprocessable(format!(
            "Invalid http_method: {method}"
        )));
    }
    crate::webhook::check_branch_filter(&option.branch_filter)
        .map_err(|e| ApiError::unprocessable(format!("[BranchFilter]: {e}")))?;
    // Sent verbatim as a header on every delivery: a CR or LF would split it.
    if !option.authorization_header.is_empty()
        && http::HeaderValue::from_str(&option.authorization_header).is_err()
    {
        return Err(ApiError::unprocessable(
            "[AuthorizationHeader]: not a valid header value",
        ));
    }
    Ok(())
}

async fn create_hook(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
    GiteaJson(option): GiteaJson<CreateHookOption>,
) -> Result<Response, ApiError> {
    let handle = find_repo(&state, &owner, &repo, Some(&user.user)).await?;
    validate(&option)?;
    let now = now_rfc3339();
    let events = if option.events.is_empty() {
        vec!["push".to_owned()]
    } else {
        option.events
    };
    let hook = HookMeta {
        id: state.store.allocate_id(),
        hook_type: option.hook_type,
        url: option.config["url"].clone(),
        content_type: option.config["content_type"].clone(),
        http_method: option
            .config
            .get("http_method")
            .map_or_else(|| "POST".to_owned(), |m| m.to_ascii_uppercase()),
        secret: option.config.get("secret").cloned().unwrap_or_default(),
        events,
        branch_filter: option.branch_filter,
        authorization_header: option.authorization_header,
        active: option.active,
        created_at: now.clone(),
        updated_at: now,
    };
    let stored = hook.clone();
    blocking(move || {
        handle
            .update_meta(|meta| meta.hooks.push(stored))
            .map_err(ApiError::from)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(convert::hook(&hook))).into_response())
}

async fn list_hooks(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let handle = find_repo(&state, &owner, &repo, Some(&user.user)).await?;
    let hooks: Vec<Hook> = handle.meta().hooks.iter().map(convert::hook).collect();
    let total = hooks.len();
    Ok(super::with_total(hooks, total))
}

async fn get_hook(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo, id)): Path<(String, String, i64)>,
) -> Result<Json<Hook>, ApiError> {
    let handle = find_repo(&state, &owner, &repo, Some(&user.user)).await?;
    let meta = handle.meta();
    let hook = meta
        .hooks
        .iter()
        .find(|h| h.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(convert::hook(hook)))
}

async fn delete_hook(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo, id)): Path<(String, String, i64)>,
) -> Result<StatusCode, ApiError> {
    let handle = find_repo(&state, &owner, &repo, Some(&user.user)).await?;
    let removed = blocking(move || {
        handle
            .update_meta(|meta| {
                let before = meta.hooks.len();
                meta.hooks.retain(|h| h.id != id);
                meta.hooks.len() != before
            })
            .map_err(ApiError::from)
    })
    .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
