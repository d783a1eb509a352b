//! Gitea's REST JSON shapes (Gitea 1.22, `modules/structs`), for the subset this project uses.
//!
//! The server writes them and the client reads them, so both sides agree by construction;
//! reading is lenient (`#[serde(default)]`, unknown fields ignored) so the same types parse
//! a real Gitea's richer answers. Timestamps stay strings (RFC 3339) as Gitea sends them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerVersion {
    /// The server's version, e.g. `1.22.3`.
    pub version: String,
}

/// A user or an organisation seen as an owner (Gitea's `User`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    /// The numeric id.
    pub id: i64,
    /// The login name.
    pub login: String,
    /// The login name at the authentication source.
    pub login_name: String,
    /// The authentication source id (0: local).
    pub source_id: i64,
    /// The full name.
    pub full_name: String,
    /// The e-mail address.
    pub email: String,
    /// The avatar URL.
    pub avatar_url: String,
    /// The profile page.
    pub html_url: String,
    /// The UI language.
    pub language: String,
    /// Whether the user is a site administrator.
    pub is_admin: bool,
    /// The last login time.
    pub last_login: String,
    /// When the user was created.
    pub created: String,
    /// Whether the user is restricted.
    pub restricted: bool,
    /// Whether the user is active.
    pub active: bool,
    /// Whether login is prohibited.
    pub prohibit_login: bool,
    /// The location.
    pub location: String,
    /// The website.
    pub website: String,
    /// The description.
    pub description: String,
    /// `public`, `limited` or `private`.
    pub visibility: String,
    /// Followers.
    pub followers_count: i64,
    /// Followed users.
    pub following_count: i64,
    /// Starred repositories.
    pub starred_repos_count: i64,
    /// The login name again (Gitea's `username`).
    pub username: String,
}

/// A user's permissions on a repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    /// Administration.
    pub admin: bool,
    /// Push.
    pub push: bool,
    /// Pull.
    pub pull: bool,
}

/// A repository (Gitea's `Repository`, the fields this project reads and writes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Repository {
    /// The numeric id.
    pub id: i64,
    /// The owning user or organisation.
    pub owner: User,
    /// The name.
    pub name: String,
    /// `owner/name`.
    pub full_name: String,
    /// The description.
    pub description: String,
    /// Whether the repository has no commits.
    pub empty: bool,
    /// Whether anonymous users are kept out.
    pub private: bool,
    /// Whether it is a fork.
    pub fork: bool,
    /// Whether it is a template.
    pub template: bool,
    /// Whether it is a mirror.
    pub mirror: bool,
    /// Size in KiB.
    pub size: i64,
    /// The web page.
    pub html_url: String,
    /// The API URL.
    pub url: String,
    /// The SSH clone URL.
    pub ssh_url: String,
    /// The HTTP clone URL (`{root}/{owner}/{name}.git`).
    pub clone_url: String,
    /// The website.
    pub website: String,
    /// Stars.
    pub stars_count: i64,
    /// Forks.
    pub forks_count: i64,
    /// Watchers.
    pub watchers_count: i64,
    /// Open issues.
    pub open_issues_count: i64,
    /// The default branch.
    pub default_branch: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Creation time.
    pub created_at: String,
    /// Last update time.
    pub updated_at: String,
    /// The caller's permissions.
    pub permissions: Option<Permission>,
    /// Whether issues are enabled.
    pub has_issues: bool,
    /// Whether the wiki is enabled.
    pub has_wiki: bool,
    /// Whether pull requests are enabled.
    pub has_pull_requests: bool,
    /// The avatar.
    pub avatar_url: String,
    /// Whether it is internal.
    pub internal: bool,
    /// `sha1` or `sha256`.
    pub object_format_name: String,
}

/// `POST /user/repos` and `POST /orgs/{org}/repos`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateRepoOption {
    /// The repository name (required).
    pub name: String,
    /// The description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether the repository is private.
    pub private: bool,
    /// Whether to create an initial commit (a README).
    pub auto_init: bool,
    /// The default branch (Gitea's default: `main`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_branch: String,
    /// The README template to use with `auto_init` (`Default`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub readme: String,
    /// Whether the repository is a template.
    pub template: bool,
}

impl CreateRepoOption {
    /// A public repository called `name`, with Gitea's defaults otherwise.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// An organisation (Gitea's `Organization`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Organization {
    /// The numeric id.
    pub id: i64,
    /// The name.
    pub name: String,
    /// The full name.
    pub full_name: String,
    /// The e-mail address.
    pub email: String,
    /// The avatar.
    pub avatar_url: String,
    /// The description.
    pub description: String,
    /// The website.
    pub website: String,
    /// The location.
    pub location: String,
    /// `public`, `limited` or `private`.
    pub visibility: String,
    /// Whether repository admins may change team access.
    pub repo_admin_change_team_access: bool,
    /// The name again (Gitea's deprecated `username`).
    pub username: String,
}

/// `POST /orgs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateOrgOption {
    /// The organisation name (required).
    pub username: String,
    /// The full name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub full_name: String,
    /// The description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `public` (default), `limited` or `private`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub visibility: String,
}

/// A repository webhook (Gitea's `Hook`). The secret is never returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// The numeric id.
    pub id: i64,
    /// `gitea`, `gogs`, `slack`, ...
    #[serde(rename = "type")]
    pub hook_type: String,
    /// `url`, `content_type`, `http_method` (never `secret`).
    pub config: BTreeMap<String, String>,
    /// The events the hook is sent for (`push`, ...).
    pub events: Vec<String>,
    /// The `Authorization` header sent with each delivery.
    pub authorization_header: String,
    /// Whether deliveries are sent.
    pub active: bool,
    /// Last update time.
    pub updated_at: String,
    /// Creation time.
    pub created_at: String,
}

/// `POST /repos/{owner}/{repo}/hooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateHookOption {
    /// `gitea` (this server accepts `gitea` and `gogs`).
    #[serde(rename = "type")]
    pub hook_type: String,
    /// `url` and `content_type` (`json` or `form`) required; `secret`, `http_method` optional.
    pub config: BTreeMap<String, String>,
    /// Events; empty means `["push"]`.
    pub events: Vec<String>,
    /// A glob of branch names the hook fires for; empty or `*` means all.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub branch_filter: String,
    /// An `Authorization` header to send with each delivery.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub authorization_header: String,
    /// Whether deliveries are sent. Gitea's default is **false**.
    pub active: bool,
}

impl CreateHookOption {
    /// An active Gitea push hook posting JSON to `url`, signed with `secret`.
    pub fn push_json(url: impl Into<String>, secret: impl Into<String>) -> Self {
        let mut config = BTreeMap::new();
        config.insert("url".to_owned(), url.into());
        config.insert("content_type".to_owned(), "json".to_owned());
        config.insert("secret".to_owned(), secret.into());
        Self {
            hook_type: "gitea".to_owned(),
            config,
            events: vec!["push".to_owned()],
            active: true,
            ..Self::default()
        }
    }
}

/// A name and e-mail (author or committer of an API commit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

impl Identity {
    fn is_empty(&self) -> bool {
        self.name.is_empty() && self.email.is_empty()
    }
}

/// Author and committer dates of an API commit (RFC 3339; empty means now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitDateOptions {
    /// The author date.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The committer date.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub committer: String,
}

impl CommitDateOptions {
    fn is_empty(&self) -> bool {
        self.author.is_empty() && self.committer.is_empty()
    }
}

/// What a [`ChangeFileOperation`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOperation {
    /// Add a file that must not exist yet (422 if it does).
    #[default]
    Create,
    /// Replace an existing file (its blob `sha` checked when given).
    Update,
    /// Remove an existing file (its blob `sha` checked when given).
    Delete,
}

/// One file of a [`ChangeFilesOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeFileOperation {
    /// What to do.
    pub operation: FileOperation,
    /// The path in the repository.
    pub path: String,
    /// The new content, base64 (create and update).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// The blob id the file has now (update and delete; optional).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub sha: String,
    /// The old path of a moved file (update).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub from_path: String,
}

impl ChangeFileOperation {
    /// Creates `path` with `content` (encoded here).
    pub fn create(path: impl Into<String>, content: impl AsRef<[u8]>) -> Self {
        Self {
            operation: FileOperation::Create,
            path: path.into(),
            content: encode_base64(content.as_ref()),
            ..Self::default()
        }
    }

    /// Replaces `path` with `content` (encoded here), without checking its current blob.
    pub fn update(path: impl Into<String>, content: impl AsRef<[u8]>) -> Self {
        Self {
            operation: FileOperation::Update,
            path: path.into(),
            content: encode_base64(content.as_ref()),
            ..Self::default()
        }
    }

    /// Removes `path`; a non-empty `sha` must be its current blob id (checked as Gitea does).
    pub fn delete(path: impl Into<String>, sha: impl Into<String>) -> Self {
        Self {
            operation: FileOperation::Delete,
            path: path.into(),
            sha: sha.into(),
            ..Self::default()
        }
    }
}

fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `POST /repos/{owner}/{repo}/contents`: one commit changing many files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChangeFilesOptions {
    /// The files (required, at least one).
    pub files: Vec<ChangeFileOperation>,
    /// The commit message; empty gets Gitea's generated one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The branch to commit on; empty means the default branch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub branch: String,
    /// A branch to create from `branch` and commit on instead.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub new_branch: String,
    /// The author; empty means the committer, or the authenticated user.
    #[serde(skip_serializing_if = "Identity::is_empty")]
    pub author: Identity,
    /// The committer; empty means the author, or the authenticated user.
    #[serde(skip_serializing_if = "Identity::is_empty")]
    pub committer: Identity,
    /// Explicit dates.
    #[serde(skip_serializing_if = "CommitDateOptions::is_empty")]
    pub dates: CommitDateOptions,
}

/// `POST /repos/{owner}/{repo}/contents/{filepath}`: one commit creating one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateFileOptions {
    /// The content, base64 (required).
    pub content: String,
    /// The commit message.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The branch; empty means the default branch.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub branch: String,
    /// A branch to create from `branch` and commit on instead.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub new_branch: String,
    /// The author.
    #[serde(skip_serializing_if = "Identity::is_empty")]
    pub author: Identity,
    /// The committer.
    #[serde(skip_serializing_if = "Identity::is_empty")]
    pub committer: Identity,
}

/// Links of a file entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileLinksResponse {
    /// The API URL.
    #[serde(rename = "self")]
    pub self_url: Option<String>,
    /// The git blob API URL.
    pub git: Option<String>,
    /// The web URL.
    pub html: Option<String>,
}

/// A file's metadata, and its content when asked for (Gitea's `ContentsResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContentsResponse {
    /// The base name.
    pub name: String,
    /// The path in the repository.
    pub path: String,
    /// The blob id.
    pub sha: String,
    /// The last commit that touched the path.
    pub last_commit_sha: String,
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type")]
    pub entry_type: String,
    /// The size in bytes.
    pub size: i64,
    /// `base64` when `content` is set.
    pub encoding: Option<String>,
    /// The content, base64.
    pub content: Option<String>,
    /// A symlink's target.
    pub target: Option<String>,
    /// The API URL.
    pub url: Option<String>,
    /// The web URL.
    pub html_url: Option<String>,
    /// The git blob API URL.
    pub git_url: Option<String>,
    /// The raw download URL.
    pub download_url: Option<String>,
    /// A submodule's URL.
    pub submodule_git_url: Option<String>,
    /// Links.
    #[serde(rename = "_links")]
    pub links: Option<FileLinksResponse>,
}

/// A commit's id and URL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitMeta {
    /// The API URL.
    pub url: String,
    /// The object id.
    pub sha: String,
    /// When it was created.
    pub created: String,
}

/// An author or committer with a date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommitUser {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// The date (RFC 3339).
    pub date: String,
}

/// The commit an API file change made (Gitea's `FileCommitResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileCommitResponse {
    /// The API URL.
    pub url: String,
    /// The commit id.
    pub sha: String,
    /// When it was created.
    pub created: String,
    /// The web URL.
    pub html_url: String,
    /// The author.
    pub author: Option<CommitUser>,
    /// The committer.
    pub committer: Option<CommitUser>,
    /// The parents.
    pub parents: Vec<CommitMeta>,
    /// The message.
    pub message: String,
    /// The tree.
    pub tree: Option<CommitMeta>,
}

/// The answer to ChangeFiles (Gitea's `FilesResponse`): one entry per file, `None` for
/// deleted ones, and the commit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesResponse {
    /// The files after the commit, in request order.
    pub files: Vec<Option<ContentsResponse>>,
    /// The commit.
    pub commit: Option<FileCommitResponse>,
    /// Signature verification (never set here).
    pub verification: Option<PayloadCommitVerification>,
}

/// The answer to a single-file change (Gitea's `FileResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileResponse {
    /// The file after the commit.
    pub content: Option<ContentsResponse>,
    /// The commit.
    pub commit: Option<FileCommitResponse>,
    /// Signature verification (never set here).
    pub verification: Option<PayloadCommitVerification>,
}

/// A commit's author or committer in a webhook payload or branch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadUser {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// The Gitea user name, when the e-mail belongs to one.
    pub username: String,
}

/// GPG verification of a commit (never verified here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadCommitVerification {
    /// Whether it verified.
    pub verified: bool,
    /// Why (not).
    pub reason: String,
    /// The signature.
    pub signature: String,
    /// The signer.
    pub signer: Option<PayloadUser>,
    /// The signed payload.
    pub payload: String,
}

/// A commit in a webhook payload or branch (Gitea's `PayloadCommit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PayloadCommit {
    /// The commit id.
    pub id: String,
    /// The message.
    pub message: String,
    /// The web URL.
    pub url: String,
    /// The author.
    pub author: Option<PayloadUser>,
    /// The committer.
    pub committer: Option<PayloadUser>,
    /// Signature verification.
    pub verification: Option<PayloadCommitVerification>,
    /// The commit time (RFC 3339).
    pub timestamp: String,
    /// Paths added.
    pub added: Option<Vec<String>>,
    /// Paths removed.
    pub removed: Option<Vec<String>>,
    /// Paths modified.
    pub modified: Option<Vec<String>>,
}

/// A branch and its head commit (Gitea's `Branch`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Branch {
    /// The branch name.
    pub name: String,
    /// Its head commit.
    pub commit: Option<PayloadCommit>,
    /// Whether it is protected.
    pub protected: bool,
    /// Approvals required to merge.
    pub required_approvals: i64,
    /// Whether status checks are enabled.
    pub enable_status_check: bool,
    /// The status check contexts.
    pub status_check_contexts: Vec<String>,
    /// Whether the caller may push.
    pub user_can_push: bool,
    /// Whether the caller may merge.
    pub user_can_merge: bool,
    /// The protection rule in effect.
    pub effective_branch_protection_name: String,
}

/// The push event payload (Gitea's `PushPayload`; GitHub's field names for the shared part).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushPayload {
    /// The full ref, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The ref's old commit (forty zeros for a new ref).
    pub before: String,
    /// The ref's new commit.
    pub after: String,
    /// A compare page between the two (empty for a new ref).
    pub compare_url: String,
    /// The pushed commits, oldest first, at most five (Gitea's `FeedMaxCommitNum`).
    pub commits: Vec<PayloadCommit>,
    /// How many commits were pushed.
    pub total_commits: i64,
    /// The newest commit.
    pub head_commit: Option<PayloadCommit>,
    /// The repository.
    pub repository: Option<Repository>,
    /// Who pushed.
    pub pusher: Option<User>,
    /// Who pushed (again, as Gitea sends it).
    pub sender: Option<User>,
}

/// An access token (Gitea's `AccessToken`); `sha1` is the secret, shown once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessToken {
    /// The numeric id.
    pub id: i64,
    /// The token's name.
    pub name: String,
    /// The token itself (only in the answer to its creation).
    pub sha1: String,
    /// The token's last eight characters.
    pub token_last_eight: String,
    /// The scopes.
    pub scopes: Vec<String>,
}

/// `POST /users/{username}/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateAccessTokenOption {
    /// The token's name (required, unique per user).
    pub name: String,
    /// Scopes, e.g. `write:repository`, `write:user`, `write:organization`.
    pub scopes: Vec<String>,
}

/// `GET /repos/search`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchResults {
    /// Whether the search ran.
    pub ok: bool,
    /// The repositories found.
    pub data: Vec<Repository>,
}

/// Gitea's error body (`APIError`; 404s also carry `errors`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiErrorBody {
    /// What went wrong.
    pub message: String,
    /// Gitea's documentation link.
    pub url: String,
    /// Details (404s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_files_serialises_with_gitea_field_names() {
        let opts = ChangeFilesOptions {
            files: vec![
                ChangeFileOperation::create("a/b.yaml", "x: 1\n"),
                ChangeFileOperation::delete("c", "0123"),
            ],
            message: "msg".into(),
            branch: "main".into(),
            ..ChangeFilesOptions::default()
        };
        let json = serde_json::to_value(&opts).unwrap();
        assert_eq!(json["files"][0]["operation"], "create");
        assert_eq!(json["files"][0]["content"], "eDogMQo=");
        assert_eq!(json["files"][1]["operation"], "delete");
        assert_eq!(json["files"][1]["sha"], "0123");
        assert_eq!(json["branch"], "main");
        assert!(json.get("author").is_none(), "empty identities are omitted");
    }

    #[test]
    fn lenient_parsing_of_richer_gitea_answers() {
        let repo: Repository = serde_json::from_str(
            r#"{"id":3,"name":"r","full_name":"o/r","owner":{"id":1,"login":"o"},
                "clone_url":"http://h/o/r.git","unknown_field":{"nested":true},
                "permissions":{"admin":true,"push":true,"pull":true}}"#,
        )
        .unwrap();
        assert_eq!(repo.owner.login, "o");
        assert_eq!(repo.clone_url, "http://h/o/r.git");
        assert!(repo.permissions.unwrap().push);
    }

    #[test]
    fn hook_type_is_renamed() {
        let hook = CreateHookOption::push_json("http://x", "s");
        let json = serde_json::to_value(&hook).unwrap();
        assert_eq!(json["type"], "gitea");
        assert_eq!(json["active"], true);
        assert_eq!(json["config"]["content_type"], "json");
    }
}
