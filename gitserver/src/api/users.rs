//! The server version, the current user, organisations and access tokens.

use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use fleet_api::error::chain;
use http::StatusCode;

use super::{ApiError, GiteaJson, SignedIn, blocking, convert};
use crate::auth::Method;
use crate::forge::types::{AccessToken, CreateAccessTokenOption, CreateOrgOption, ServerVersion};
use crate::server::SharedState;
use crate::store::OrgMeta;

pub(super) fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/user", get(current_user))
        .route("/api/v1/orgs", post(create_org))
        .route("/api/v1/orgs/{org}", get(get_org))
        .route(
            "/api/v1/users/{username}/tokens",
            post(create_token).get(list_tokens),
        )
        .route(
            "/api/v1/users/{username}/tokens/{token}",
            delete(delete_token),
        )
}

/// `1.22.3+fleetbench.X.Y.Z`: the Gitea API followed, and this server's version as semver
/// build metadata (so version checks in Gitea clients pass and a human sees what it is).
pub(crate) fn version_string() -> String {
    format!(
        "{}+fleetbench.{}",
        crate::GITEA_API_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

/// Gitea's answer, in plain-Gitea mode without the `+fleetbench` suffix (a client that
/// looks for it must conclude this is a real Gitea).
async fn version(State(state): State<SharedState>) -> Json<ServerVersion> {
    let version = if state.config.extensions {
        version_string()
    } else {
        crate::GITEA_API_VERSION.to_owned()
    };
    Json(ServerVersion { version })
}

async fn current_user(
    State(state): State<SharedState>,
    _user: SignedIn,
) -> Json<crate::forge::types::User> {
    Json(convert::user(&state))
}

async fn create_org(
    State(state): State<SharedState>,
    _user: SignedIn,
    GiteaJson(option): GiteaJson<CreateOrgOption>,
) -> Result<Response, ApiError> {
    crate::names::validate_owner(&option.username)
        .map_err(|e| ApiError::unprocessable(chain(&e)))?;
    let visibility = match option.visibility.as_str() {
        "" => "public",
        v @ ("public" | "limited" | "private") => v,
        other => {
            return Err(ApiError::unprocessable(format!(
                "invalid visibility {other:?}"
            )));
        }
    };
    let org = OrgMeta {
        name: option.username,
        full_name: option.full_name,
        description: option.description,
        visibility: visibility.to_owned(),
        ..OrgMeta::default()
    };
    let store = state.store.clone();
    let org = blocking(move || store.create_org(org).map_err(ApiError::from)).await?;
    Ok((StatusCode::CREATED, Json(convert::organization(&org))).into_response())
}

async fn get_org(
    State(state): State<SharedState>,
    Path(org): Path<String>,
) -> Result<Json<crate::forge::types::Organization>, ApiError> {
    let org = state.store.org(&org).ok_or_else(ApiError::not_found)?;
    Ok(Json(convert::organization(&org)))
}

fn check_token_owner(state: &SharedState, username: &str, user: &SignedIn) -> Result<(), ApiError> {
    if !username.eq_ignore_ascii_case(state.store.user_name()) {
        return Err(ApiError::not_found());
    }
    if user.method != Method::Password {
        // Gitea manages tokens with basic auth only.
        return Err(ApiError::unauthorized(
            "auth required: basic authentication with a password",
        ));
    }
    Ok(())
}

async fn create_token(
    State(state): State<SharedState>,
    user: SignedIn,
    Path(username): Path<String>,
    GiteaJson(option): GiteaJson<CreateAccessTokenOption>,
) -> Result<Response, ApiError> {
    check_token_owner(&state, &username, &user)?;
    if option.name.trim().is_empty() {
        return Err(ApiError::unprocessable("[Name]: Required"));
    }
    let store = state.store.clone();
    let token = blocking(move || {
        store
            .create_token(&option.name, option.scopes)
            .map_err(|e| match e {
                crate::store::StoreError::AlreadyExists => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "access token name has been used already",
                ),
                other => ApiError::from(other),
            })
    })
    .await?;
    let body = AccessToken {
        id: token.id,
        name: token.name,
        token_last_eight: token.token[token.token.len().saturating_sub(8)..].to_owned(),
        sha1: token.token,
        scopes: token.scopes,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list_tokens(
    State(state): State<SharedState>,
    user: SignedIn,
    Path(username): Path<String>,
) -> Result<Json<Vec<AccessToken>>, ApiError> {
    check_token_owner(&state, &username, &user)?;
    let tokens = state
        .store
        .tokens()
        .into_iter()
        .map(|t| AccessToken {
            id: t.id,
            name: t.name,
            sha1: String::new(),
            token_last_eight: t.token[t.token.len().saturating_sub(8)..].to_owned(),
            scopes: t.scopes,
        })
        .collect();
    Ok(Json(tokens))
}

async fn delete_token(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((username, token)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    check_token_owner(&state, &username, &user)?;
    let store = state.store.clone();
    blocking(move || store.delete_token(&token).map_err(ApiError::from)).await?;
    Ok(StatusCode::NO_CONTENT)
}
