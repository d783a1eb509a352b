//! Files and branches: Gitea's multi-file commit (ChangeFiles), single-file creation,
//! reading a file, and branch heads.
//!
//! ChangeFiles is the harness's fast path for bursts of commits: the commit is written
//! in-process with libgit2 under the repository's write lock and is followed by the same
//! push webhooks a `git push` gets (Gitea sends them for API commits too).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use fleet_api::error::chain;
use http::StatusCode;
use serde::Deserialize;

use super::{ApiError, GiteaJson, SignedIn, Viewer, blocking, convert, find_repo};
use crate::forge::types::{
    Branch, ChangeFileOperation, ChangeFilesOptions, CommitDateOptions, ContentsResponse,
    CreateFileOptions, FileResponse, FilesResponse, Identity,
};
use crate::gitops::{self, ChangeFilesError, CommitSpec, FileChange, Person, RefUpdate};
use crate::server::SharedState;

pub(super) fn router() -> Router<SharedState> {
    Router::new()
        .route("/api/v1/repos/{owner}/{repo}/contents", post(change_files))
        .route(
            "/api/v1/repos/{owner}/{repo}/contents/{*filepath}",
            post(create_file).get(get_contents),
        )
        .route("/api/v1/repos/{owner}/{repo}/branches", get(list_branches))
        .route(
            "/api/v1/repos/{owner}/{repo}/branches/{*branch}",
            get(get_branch),
        )
}

impl From<ChangeFilesError> for ApiError {
    fn from(error: ChangeFilesError) -> Self {
        let status = match &error {
            ChangeFilesError::BranchNotFound(_) | ChangeFilesError::FileNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            ChangeFilesError::Raced | ChangeFilesError::PathConflict { .. } => StatusCode::CONFLICT,
            ChangeFilesError::Git(_) => return ApiError::internal(chain(&error)),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, chain(&error))
    }
}

/// Author and committer as Gitea picks them: each defaults to the other, both to the user.
fn identities(author: &Identity, committer: &Identity, user: &str) -> (Person, Person) {
    let given = |identity: &Identity| {
        (!identity.name.is_empty() || !identity.email.is_empty()).then(|| Person {
            name: if identity.name.is_empty() {
                user.to_owned()
            } else {
                identity.name.clone()
            },
            email: if identity.email.is_empty() {
                convert::user_email(user)
            } else {
                identity.email.clone()
            },
        })
    };
    let doer = Person {
        name: user.to_owned(),
        email: convert::user_email(user),
    };
    match (given(author), given(committer)) {
        (Some(a), Some(c)) => (a, c),
        (Some(a), None) => (a.clone(), a),
        (None, Some(c)) => (c.clone(), c),
        (None, None) => (doer.clone(), doer),
    }
}

fn parse_date(raw: &str, field: &str) -> Result<jiff::Timestamp, ApiError> {
    if raw.is_empty() {
        return Ok(jiff::Timestamp::now());
    }
    raw.parse()
        .map_err(|e| ApiError::unprocessable(format!("[Dates.{field}]: {e}")))
}

fn decode_files(files: &[ChangeFileOperation]) -> Result<Vec<FileChange>, ApiError> {
    files
        .iter()
        .map(|file| {
            let content = base64::engine::general_purpose::STANDARD
                .decode(file.content.as_bytes())
                .map_err(|e| {
                    ApiError::unprocessable(format!(
                        "content of {:?} is not base64: {e}",
                        file.path
                    ))
                })?;
            let from_path = if file.from_path.is_empty() {
                None
            } else {
                Some(gitops::clean_tree_path(&file.from_path)?)
            };
            Ok(FileChange {
                operation: file.operation,
                path: gitops::clean_tree_path(&file.path)?,
                content,
                sha: (!file.sha.is_empty()).then(|| file.sha.clone()),
                from_path,
            })
        })
        .collect()
}

/// What one ChangeFiles request produces, before it is shaped into a response.
struct Committed {
    full_name: String,
    outcome: gitops::CommitOutcome,
}

/// Turns a ChangeFiles body into a commit, checking everything that needs no repository:
/// base64 content, paths (cleaned, bounded, not overlapping), branch names (git's rules),
/// dates. `default_branch` is the repository's, used when the body names no branch.
///
/// Every refusal is a 422: nothing a client sends makes this fail with a 500.
pub(crate) fn decode_request(
    options: &ChangeFilesOptions,
    default_branch: &str,
    user: &str,
) -> Result<CommitSpec, ApiError> {
    if options.files.is_empty() {
        return Err(ApiError::unprocessable("[Files]: Required"));
    }
    let files = decode_files(&options.files)?;
    gitops::check_overlaps(&files)?;
    let branch = if options.branch.is_empty() {
        default_branch.to_owned()
    } else {
        options.branch.clone()
    };
    crate::names::validate_branch(&branch)
        .map_err(|e| ApiError::unprocessable(format!("[BranchName]: {e}")))?;
    let new_branch = (!options.new_branch.is_empty()).then(|| options.new_branch.clone());
    if let Some(new_branch) = &new_branch {
        crate::names::validate_branch(new_branch)
            .map_err(|e| ApiError::unprocessable(format!("[NewBranchName]: {e}")))?;
    }
    let message = if options.message.trim().is_empty() {
        gitops::default_message(&files)
    } else {
        options.message.clone()
    };
    if message.contains('\0') {
        return Err(ApiError::unprocessable("[Message]: must not contain NUL"));
    }
    let (author, committer) = identities(&options.author, &options.committer, user);
    for (person, field) in [(&author, "Author"), (&committer, "Committer")] {
        gitops::check_person(person)
            .map_err(|e| ApiError::unprocessable(format!("[{field}]: {e}")))?;
    }
    let CommitDateOptions {
        author: author_date,
        committer: committer_date,
    } = &options.dates;
    Ok(CommitSpec {
        new_branch,
        branch,
        message,
        author,
        committer,
        author_time: parse_date(author_date, "Author")?,
        committer_time: parse_date(committer_date, "Committer")?,
        files,
    })
}

/// Decodes, commits under the write lock, and sends the push webhooks.
async fn commit(
    state: &SharedState,
    owner: &str,
    repo: &str,
    user: &str,
    options: ChangeFilesOptions,
) -> Result<Committed, ApiError> {
    let handle = find_repo(state, owner, repo, Some(user)).await?;
    let spec = decode_request(&options, &handle.meta().default_branch, user)?;
    let base_ref = format!("refs/heads/{}", spec.branch);

    let guard = handle.write_lock.clone().lock_owned().await;
    let path = handle.path.clone();
    let outcome =
        blocking(move || gitops::change_files(&path, &spec).map_err(ApiError::from)).await;
    drop(guard);
    let outcome = outcome?;
    handle.set_empty(false);

    let mut before = BTreeMap::new();
    if let Some(old) = outcome.before {
        before.insert(outcome.ref_name.clone(), old);
    } else if let Some(parent) = outcome.commit.parents.first() {
        // A new branch: what its base branch had is not new.
        before.insert(base_ref, *parent);
    }
    let update = RefUpdate {
        name: outcome.ref_name.clone(),
        old: outcome.before,
        new: Some(outcome.commit.id),
    };
    crate::push::notify(state, &handle, vec![update], before, user, "api").await;
    Ok(Committed {
        full_name: handle.full_name(),
        outcome,
    })
}

fn files_response(state: &SharedState, committed: &Committed) -> FilesResponse {
    let outcome = &committed.outcome;
    let commit_id = outcome.commit.id.to_string();
    FilesResponse {
        files: outcome
            .files
            .iter()
            .map(|file| {
                file.as_ref().map(|entry| {
                    convert::contents(
                        state,
                        &committed.full_name,
                        &outcome.branch,
                        entry,
                        &commit_id,
                    )
                })
            })
            .collect(),
        commit: Some(convert::file_commit(
            state,
            &committed.full_name,
            &outcome.commit,
        )),
        verification: None,
    }
}

async fn change_files(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo)): Path<(String, String)>,
    GiteaJson(options): GiteaJson<ChangeFilesOptions>,
) -> Result<Response, ApiError> {
    let committed = commit(&state, &owner, &repo, &user.user, options).await?;
    Ok((
        StatusCode::CREATED,
        Json(files_response(&state, &committed)),
    )
        .into_response())
}

async fn create_file(
    State(state): State<SharedState>,
    user: SignedIn,
    Path((owner, repo, filepath)): Path<(String, String, String)>,
    GiteaJson(options): GiteaJson<CreateFileOptions>,
) -> Result<Response, ApiError> {
    let change = ChangeFilesOptions {
        files: vec![ChangeFileOperation {
            path: filepath,
            content: options.content,
            ..ChangeFileOperation::default()
        }],
        message: options.message,
        branch: options.branch,
        new_branch: options.new_branch,
        author: options.author,
        committer: options.committer,
        dates: CommitDateOptions::default(),
    };
    let committed = commit(&state, &owner, &repo, &user.user, change).await?;
    let mut files = files_response(&state, &committed);
    let body = FileResponse {
        content: files.files.pop().flatten(),
        commit: files.commit,
        verification: None,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct RefQuery {
    #[serde(rename = "ref", default)]
    reference: String,
}

async fn get_contents(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((owner, repo, filepath)): Path<(String, String, String)>,
    Query(query): Query<RefQuery>,
) -> Result<Json<ContentsResponse>, ApiError> {
    let handle = find_repo(&state, &owner, &repo, viewer.user.as_deref()).await?;
    let file_path = gitops::clean_tree_path(&filepath).map_err(|_| ApiError::not_found())?;
    let reference = if query.reference.is_empty() {
        handle.meta().default_branch
    } else {
        query.reference
    };
    let path = handle.path.clone();
    let lookup = reference.clone();
    let found =
        blocking(move || gitops::read_file(&path, &lookup, &file_path).map_err(ApiError::internal))
            .await?;
    let (entry, commit) = found.ok_or_else(ApiError::not_found)?;
    Ok(Json(convert::contents(
        &state,
        &handle.full_name(),
        &reference,
        &entry,
        &commit.to_string(),
    )))
}

async fn get_branch(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Result<Json<Branch>, ApiError> {
    let handle = find_repo(&state, &owner, &repo, viewer.user.as_deref()).await?;
    let path = handle.path.clone();
    let name = branch.clone();
    let head =
        blocking(move || gitops::branch_head(&path, &name).map_err(ApiError::internal)).await?;
    let head = head.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Branch not found"))?;
    Ok(Json(convert::branch(
        &state,
        &handle.full_name(),
        &branch,
        &head,
    )))
}

async fn list_branches(
    State(state): State<SharedState>,
    viewer: Viewer,
    Path((owner, repo)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let handle = find_repo(&state, &owner, &repo, viewer.user.as_deref()).await?;
    let path = handle.path.clone();
    let branches = blocking(move || gitops::branches(&path).map_err(ApiError::internal)).await?;
    let full_name = handle.full_name();
    let body: Vec<Branch> = branches
        .iter()
        .map(|(name, head)| convert::branch(&state, &full_name, name, head))
        .collect();
    let total = body.len();
    Ok(super::with_total(body, total))
}
