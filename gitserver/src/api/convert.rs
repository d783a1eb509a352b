//! From the store's records and libgit2's objects to Gitea's JSON shapes.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::forge::types::{
    Branch, CommitMeta, CommitUser, ContentsResponse, FileCommitResponse, FileLinksResponse, Hook,
    Organization, PayloadCommit, PayloadUser, Permission, Repository, User,
};
use crate::gitops::{CommitInfo, FileEntry, PersonTime};
use crate::server::{AppState, SharedState};
use crate::store::{HookMeta, OrgMeta, Owner, RepoHandle, USER_ID};

/// The e-mail address of the server's user (Gitea's no-reply form).
pub(crate) fn user_email(user: &str) -> String {
    format!("{}@noreply.localhost", user.to_ascii_lowercase())
}

/// The server's user.
pub(crate) fn user(state: &AppState) -> User {
    let name = state.store.user_name().to_owned();
    User {
        id: USER_ID,
        login: name.clone(),
        login_name: String::new(),
        email: user_email(&name),
        avatar_url: String::new(),
        html_url: state.html_url(&name),
        language: "en-US".to_owned(),
        is_admin: true,
        last_login: state.store.user_created_at(),
        created: state.store.user_created_at(),
        active: true,
        visibility: "public".to_owned(),
        username: name,
        ..User::default()
    }
}

/// An owner as Gitea shows it in a repository.
pub(crate) fn owner_user(state: &AppState, owner: &Owner) -> User {
    match owner {
        Owner::User { .. } => user(state),
        Owner::Org(org) => User {
            id: org.id,
            login: org.name.clone(),
            full_name: org.full_name.clone(),
            html_url: state.html_url(&org.name),
            created: org.created_at.clone(),
            description: org.description.clone(),
            visibility: org.visibility.clone(),
            username: org.name.clone(),
            ..User::default()
        },
    }
}

/// An organisation.
pub(crate) fn organization(org: &OrgMeta) -> Organization {
    Organization {
        id: org.id,
        name: org.name.clone(),
        full_name: org.full_name.clone(),
        description: org.description.clone(),
        visibility: org.visibility.clone(),
        username: org.name.clone(),
        ..Organization::default()
    }
}

/// A repository as `viewer` sees it.
pub(crate) fn repository(
    state: &SharedState,
    handle: &RepoHandle,
    viewer: Option<&str>,
) -> Repository {
    let meta = handle.meta();
    let full_name = format!("{}/{}", meta.owner, meta.name);
    let owner = state
        .store
        .owner(&meta.owner)
        .map(|owner| owner_user(state, &owner))
        .unwrap_or_default();
    let signed_in = viewer.is_some();
    Repository {
        id: meta.id,
        owner,
        name: meta.name.clone(),
        full_name: full_name.clone(),
        description: meta.description.clone(),
        empty: handle.is_empty(),
        private: meta.private,
        html_url: state.html_url(&full_name),
        url: format!("{}/repos/{full_name}", state.api_url()),
        clone_url: format!("{}.git", state.html_url(&full_name)),
        default_branch: meta.default_branch.clone(),
        created_at: meta.created_at.clone(),
        updated_at: meta.updated_at,
        permissions: Some(Permission {
            admin: signed_in,
            push: signed_in,
            pull: true,
        }),
        has_issues: true,
        has_wiki: true,
        has_pull_requests: true,
        object_format_name: "sha1".to_owned(),
        ..Repository::default()
    }
}

/// A hook, without its secret (Gitea never returns it).
pub(crate) fn hook(meta: &HookMeta) -> Hook {
    let mut config = BTreeMap::new();
    config.insert("url".to_owned(), meta.url.clone());
    config.insert("content_type".to_owned(), meta.content_type.clone());
    config.insert("http_method".to_owned(), meta.http_method.clone());
    Hook {
        id: meta.id,
        hook_type: meta.hook_type.clone(),
        config,
        events: meta.events.clone(),
        authorization_header: meta.authorization_header.clone(),
        active: meta.active,
        updated_at: meta.updated_at.clone(),
        created_at: meta.created_at.clone(),
    }
}

fn rfc3339(time: jiff::Timestamp) -> String {
    format!("{time:.0}")
}

fn payload_user(state: &AppState, person: &PersonTime) -> PayloadUser {
    let user_name = state.store.user_name();
    let username = if person.email.eq_ignore_ascii_case(&user_email(user_name)) {
        user_name.to_owned()
    } else {
        String::new()
    };
    PayloadUser {
        name: person.name.clone(),
        email: person.email.clone(),
        username,
    }
}

/// A commit in a webhook payload or branch.
pub(crate) fn payload_commit(
    state: &AppState,
    full_name: &str,
    info: &CommitInfo,
) -> PayloadCommit {
    PayloadCommit {
        id: info.id.to_string(),
        message: info.message.clone(),
        url: format!("{}/commit/{}", state.html_url(full_name), info.id),
        author: Some(payload_user(state, &info.author)),
        committer: Some(payload_user(state, &info.committer)),
        verification: None,
        timestamp: rfc3339(info.committer.time),
        added: Some(info.added.clone()),
        removed: Some(info.removed.clone()),
        modified: Some(info.modified.clone()),
    }
}

/// A branch and its head commit.
pub(crate) fn branch(state: &AppState, full_name: &str, name: &str, head: &CommitInfo) -> Branch {
    Branch {
        name: name.to_owned(),
        commit: Some(payload_commit(state, full_name, head)),
        user_can_push: true,
        user_can_merge: true,
        ..Branch::default()
    }
}

/// The commit a file API call made.
pub(crate) fn file_commit(
    state: &AppState,
    full_name: &str,
    info: &CommitInfo,
) -> FileCommitResponse {
    let api = format!("{}/repos/{full_name}/git", state.api_url());
    let person = |p: &PersonTime| CommitUser {
        name: p.name.clone(),
        email: p.email.clone(),
        date: rfc3339(p.time),
    };
    FileCommitResponse {
        url: format!("{api}/commits/{}", info.id),
        sha: info.id.to_string(),
        created: rfc3339(info.committer.time),
        html_url: format!("{}/commit/{}", state.html_url(full_name), info.id),
        author: Some(person(&info.author)),
        committer: Some(person(&info.committer)),
        parents: info
            .parents
            .iter()
            .map(|parent| CommitMeta {
                url: format!("{api}/commits/{parent}"),
                sha: parent.to_string(),
                created: String::new(),
            })
            .collect(),
        message: info.message.clone(),
        tree: Some(CommitMeta {
            url: format!("{api}/trees/{}", info.tree),
            sha: info.tree.to_string(),
            created: rfc3339(info.committer.time),
        }),
    }
}

/// A file's metadata and content, as of `reference` (a branch) and `last_commit`.
pub(crate) fn contents(
    state: &AppState,
    full_name: &str,
    reference: &str,
    entry: &FileEntry,
    last_commit: &str,
) -> ContentsResponse {
    let api = format!("{}/repos/{full_name}", state.api_url());
    let html = state.html_url(full_name);
    let self_url = format!("{api}/contents/{}?ref={reference}", entry.path);
    let git_url = format!("{api}/git/blobs/{}", entry.sha);
    let html_url = format!("{html}/src/branch/{reference}/{}", entry.path);
    ContentsResponse {
        name: entry.path.rsplit('/').next().unwrap_or_default().to_owned(),
        path: entry.path.clone(),
        sha: entry.sha.to_string(),
        last_commit_sha: last_commit.to_owned(),
        entry_type: "file".to_owned(),
        size: i64::try_from(entry.size).unwrap_or(i64::MAX),
        encoding: Some("base64".to_owned()),
        content: Some(base64::engine::general_purpose::STANDARD.encode(&entry.content)),
        target: None,
        url: Some(self_url.clone()),
        html_url: Some(html_url.clone()),
        git_url: Some(git_url.clone()),
        download_url: Some(format!("{html}/raw/branch/{reference}/{}", entry.path)),
        submodule_git_url: None,
        links: Some(FileLinksResponse {
            self_url: Some(self_url),
            git: Some(git_url),
            html: Some(html_url),
        }),
    }
}
