//! The repositories, organisations and tokens this server knows, and how they persist.
//!
//! Git data lives in plain bare repositories (`{data_dir}/{owner}/{repo}.git`, lower case as
//! Gitea stores them) so `git` and libgit2 read them directly. What git does not keep (the
//! private flag, webhooks and their secrets, ids) sits beside it in a small JSON file inside
//! each bare repository, and server-wide facts (organisations, tokens) in one JSON file at
//! the top. Every file is written to a temporary name and renamed over the old one, so a
//! crash leaves either the old or the new version, never half of one. A repository is
//! built in `{data_dir}/.tmp` and renamed into place, so a half-created one is never seen;
//! a deleted one is renamed into `.trash` before it is removed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::error::{Error, MetadataError};
use crate::gitops;
use crate::names::{self, RepoPath};

/// Server-wide metadata, at the top of the data directory.
pub(crate) const SERVER_META_FILE: &str = "fleetbench-server.json";
/// Per-repository metadata, inside each bare repository (git ignores unknown files there,
/// and `git http-backend` serves only git's own paths, so secrets are not exposed).
pub(crate) const REPO_META_FILE: &str = "fleetbench.json";
/// Files holding secrets (tokens, hook secrets): read and written by the owner only.
const SECRET_FILE_MODE: u32 = 0o600;
/// Directories the server creates (the data directory, owners, `.tmp`): owner only, since
/// every repository directory below holds a metadata file with hook secrets.
const PRIVATE_DIR_MODE: u32 = 0o700;
const TMP_DIR: &str = ".tmp";
const TRASH_DIR: &str = ".trash";

/// The single user's id, as Gitea's first (admin) user has.
pub(crate) const USER_ID: i64 = 1;

/// Server-wide persisted facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ServerMeta {
    /// The next id to hand out (repositories, hooks, organisations and tokens share it).
    pub next_id: i64,
    /// When the user was first created.
    pub created_at: String,
    /// Access tokens of the user.
    pub tokens: Vec<TokenMeta>,
    /// Organisations.
    pub orgs: Vec<OrgMeta>,
}

/// An access token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TokenMeta {
    pub id: i64,
    pub name: String,
    pub token: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// An organisation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct OrgMeta {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    pub description: String,
    pub visibility: String,
    pub created_at: String,
}

/// A repository's persisted facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RepoMeta {
    pub id: i64,
    pub owner: String,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub default_branch: String,
    pub created_at: String,
    pub updated_at: String,
    pub hooks: Vec<HookMeta>,
}

/// A webhook with its secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct HookMeta {
    pub id: i64,
    pub hook_type: String,
    pub url: String,
    pub content_type: String,
    pub http_method: String,
    pub secret: String,
    pub events: Vec<String>,
    pub branch_filter: String,
    pub authorization_header: String,
    pub active: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Who owns a repository.
#[derive(Debug, Clone)]
pub(crate) enum Owner {
    /// The server's user.
    User {
        /// Its name as configured.
        name: String,
    },
    /// An organisation.
    Org(OrgMeta),
}

impl Owner {
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::User { name } => name,
            Self::Org(org) => &org.name,
        }
    }
}

/// One repository: where it is, its metadata, and the lock that orders writes to it.
#[derive(Debug)]
pub(crate) struct RepoHandle {
    /// `owner/name` in lower case.
    pub key: String,
    /// The bare repository.
    pub path: PathBuf,
    meta: RwLock<RepoMeta>,
    /// Held by every writer (a push, an API commit, a deletion) so ref changes seen
    /// before and after one writer belong to it alone.
    pub write_lock: Arc<tokio::sync::Mutex<()>>,
    empty: AtomicBool,
}

impl RepoHandle {
    /// A copy of the metadata.
    pub(crate) fn meta(&self) -> RepoMeta {
        self.meta.read().clone()
    }

    /// The `owner/name` as created (original case).
    pub(crate) fn full_name(&self) -> String {
        let meta = self.meta.read();
        format!("{}/{}", meta.owner, meta.name)
    }

    pub(crate) fn is_private(&self) -> bool {
        self.meta.read().private
    }

    /// Whether the repository has no branches (Gitea's `empty`).
    pub(crate) fn is_empty(&self) -> bool {
        self.empty.load(Ordering::Relaxed)
    }

    pub(crate) fn set_empty(&self, empty: bool) {
        self.empty.store(empty, Ordering::Relaxed);
    }

    /// Changes the metadata and persists it before returning.
    pub(crate) fn update_meta<T>(
        &self,
        change: impl FnOnce(&mut RepoMeta) -> T,
    ) -> Result<T, StoreError> {
        let mut meta = self.meta.write();
        let mut updated = meta.clone();
        let result = change(&mut updated);
        write_json_atomically(&self.path.join(REPO_META_FILE), &updated)?;
        *meta = updated;
        Ok(result)
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A repository of that name exists (or is being created).
    #[error("The repository with the same name already exists.")]
    AlreadyExists,
    /// An organisation or user of that name exists.
    #[error("user already exists [name: {0}]")]
    OwnerExists(String),
    /// No such repository, owner or token.
    #[error("{0} not found")]
    NotFound(String),
    /// The file system failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// libgit2 failed.
    #[error("git")]
    Git(#[from] git2::Error),
    /// A metadata file could not be encoded.
    #[error("metadata {path}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Why it could not be encoded.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// What a new repository starts as.
#[derive(Debug, Clone)]
pub(crate) struct NewRepo {
    pub name: String,
    pub description: String,
    pub private: bool,
    pub default_branch: String,
    pub auto_init: bool,
}

#[derive(Debug, Default)]
struct Index {
    repos: HashMap<String, Arc<RepoHandle>>,
    /// Keys of repositories being created, so two concurrent creations cannot both win.
    creating: HashSet<String>,
}

/// All repositories, organisations and tokens.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    user_name: String,
    password: String,
    next_id: AtomicI64,
    server: Mutex<ServerMeta>,
    index: RwLock<Index>,
}

/// The name of the token made at first start.
const PRIMARY_TOKEN_NAME: &str = "fleetbench";

impl Store {
    /// Opens (or creates) the data directory and loads everything in it.
    ///
    /// Returns the store and the user's primary token: `token` if given (persisted so it
    /// keeps working after a restart without the flag), else the one persisted earlier,
    /// else a new random one.
    pub(crate) fn open(
        root: &Path,
        user_name: &str,
        password: &str,
        token: Option<&str>,
    ) -> Result<(Self, String), Error> {
        let data_dir_error = |source| Error::DataDir {
            path: root.to_path_buf(),
            source,
        };
        create_private_dir(root).map_err(data_dir_error)?;
        // Leftovers of creations and deletions cut short by a crash.
        for leftover in [TMP_DIR, TRASH_DIR] {
            let dir = root.join(leftover);
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(data_dir_error)?;
            }
        }
        let server_path = root.join(SERVER_META_FILE);
        let mut server: ServerMeta = if server_path.exists() {
            read_json(&server_path)?
        } else {
            ServerMeta::default()
        };
        if server.created_at.is_empty() {
            server.created_at = now_rfc3339();
        }
        let store = Self {
            root: root.to_path_buf(),
            user_name: user_name.to_owned(),
            password: password.to_owned(),
            next_id: AtomicI64::new(1),
            server: Mutex::new(server),
            index: RwLock::new(Index::default()),
        };
        store.load_repositories()?;
        let max_id = store.max_id();
        let persisted_next = store.server.lock().next_id;
        store
            .next_id
            .store((max_id + 1).max(persisted_next), Ordering::SeqCst);
        store.assign_missing_ids().map_err(|e| Error::Metadata {
            path: root.to_path_buf(),
            source: MetadataError::Write(e),
        })?;
        store.tighten_permissions().map_err(|e| Error::Metadata {
            path: root.to_path_buf(),
            source: MetadataError::Write(e),
        })?;
        let primary = store.ensure_primary_token(token)?;
        Ok((store, primary))
    }

    fn max_id(&self) -> i64 {
        let index = self.index.read();
        let server = self.server.lock();
        let repo_ids = index.repos.values().flat_map(|handle| {
            let meta = handle.meta.read();
            let hook_ids: Vec<i64> = meta.hooks.iter().map(|hook| hook.id).collect();
            std::iter::once(meta.id).chain(hook_ids)
        });
        let other_ids = server
            .orgs
            .iter()
            .map(|org| org.id)
            .chain(server.tokens.iter().map(|token| token.id));
        repo_ids.chain(other_ids).fold(USER_ID, i64::max)
    }

    fn ensure_primary_token(&self, token: Option<&str>) -> Result<String, Error> {
        let mut server = self.server.lock();
        let existing = server
            .tokens
            .iter()
            .position(|t| t.name == PRIMARY_TOKEN_NAME);
        let value = match (token, existing) {
            (Some(wanted), Some(i)) if server.tokens[i].token == wanted => return Ok(wanted.into()),
            (None, Some(i)) => return Ok(server.tokens[i].token.clone()),
            (Some(wanted), _) => wanted.to_owned(),
            (None, None) => new_token_value(),
        };
        if let Some(i) = existing {
            server.tokens.remove(i);
        }
        let id = self.allocate_id();
        server.tokens.push(TokenMeta {
            id,
            name: PRIMARY_TOKEN_NAME.to_owned(),
            token: value.clone(),
            scopes: vec!["all".to_owned()],
            created_at: now_rfc3339(),
        });
        self.persist_server(&mut server)
            .map_err(|e| Error::Metadata {
                path: self.root.join(SERVER_META_FILE),
                source: MetadataError::Write(e),
            })?;
        Ok(value)
    }

    fn load_repositories(&self) -> Result<(), Error> {
        let data_dir_error = |source| Error::DataDir {
            path: self.root.clone(),
            source,
        };
        let mut owners: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(data_dir_error)? {
            let entry = entry.map_err(data_dir_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().map_err(data_dir_error)?.is_dir() && !name.starts_with('.') {
                owners.push(entry.path());
            }
        }
        owners.sort();
        for owner_dir in owners {
            let owner_dir_name = file_name(&owner_dir);
            if names::validate_owner(&owner_dir_name).is_err() {
                tracing::warn!(dir = %owner_dir.display(), "ignoring a directory that is not a valid owner name");
                continue;
            }
            let mut repo_dirs: Vec<PathBuf> = fs::read_dir(&owner_dir)
                .map_err(data_dir_error)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir() && file_name(p).ends_with(".git"))
                .collect();
            repo_dirs.sort();
            for repo_dir in repo_dirs {
                self.load_repository(&owner_dir_name, &repo_dir)?;
            }
        }
        Ok(())
    }

    fn load_repository(&self, owner_dir_name: &str, repo_dir: &Path) -> Result<(), Error> {
        let dir_name = file_name(repo_dir);
        let repo_name = dir_name.trim_end_matches(".git");
        if names::validate_repo(repo_name).is_err() {
            tracing::warn!(dir = %repo_dir.display(), "ignoring a repository with an invalid name");
            return Ok(());
        }
        let meta_path = repo_dir.join(REPO_META_FILE);
        let git = git2::Repository::open_bare(repo_dir).map_err(|e| Error::Metadata {
            path: repo_dir.to_path_buf(),
            source: MetadataError::NotARepository(e),
        })?;
        let meta: RepoMeta = if meta_path.exists() {
            read_json(&meta_path)?
        } else {
            // A bare repository put here by hand: adopt it as a public repository.
            let default_branch = git
                .find_reference("HEAD")
                .ok()
                .and_then(|head| head.symbolic_target().ok().flatten().map(str::to_owned))
                .and_then(|target| target.strip_prefix("refs/heads/").map(str::to_owned))
                .unwrap_or_else(|| "main".to_owned());
            let now = now_rfc3339();
            let meta = RepoMeta {
                id: 0,
                owner: owner_dir_name.to_owned(),
                name: repo_name.to_owned(),
                default_branch,
                created_at: now.clone(),
                updated_at: now,
                ..RepoMeta::default()
            };
            tracing::info!(dir = %repo_dir.display(), "adopting a bare repository without metadata");
            meta
        };
        let key = format!(
            "{}/{}",
            meta.owner.to_ascii_lowercase(),
            meta.name.to_ascii_lowercase()
        );
        if key != format!("{owner_dir_name}/{repo_name}").to_ascii_lowercase() {
            return Err(Error::Metadata {
                path: meta_path,
                source: MetadataError::Misplaced {
                    owner: meta.owner,
                    name: meta.name,
                },
            });
        }
        if !meta.owner.eq_ignore_ascii_case(&self.user_name) {
            self.adopt_org(&meta.owner)?;
        }
        let handle = Arc::new(RepoHandle {
            key: key.clone(),
            path: repo_dir.to_path_buf(),
            empty: AtomicBool::new(gitops::has_no_branches(&git)),
            meta: RwLock::new(meta),
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        });
        self.index.write().repos.insert(key, handle);
        Ok(())
    }

    /// Registers an organisation for a repository directory found without one.
    fn adopt_org(&self, name: &str) -> Result<(), Error> {
        let mut server = self.server.lock();
        if server
            .orgs
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(name))
        {
            return Ok(());
        }
        server.orgs.push(OrgMeta {
            id: 0,
            name: name.to_owned(),
            visibility: "public".to_owned(),
            created_at: now_rfc3339(),
            ..OrgMeta::default()
        });
        Ok(())
    }

    /// Rewrites metadata files that others can read (left by an earlier version): the
    /// rewrite creates a new owner-only file and renames it over the old one.
    fn tighten_permissions(&self) -> Result<(), StoreError> {
        for handle in self.repos() {
            if readable_by_others(&handle.path.join(REPO_META_FILE)) {
                handle.update_meta(|_| ())?;
            }
        }
        if readable_by_others(&self.root.join(SERVER_META_FILE)) {
            let mut server = self.server.lock();
            self.persist_server(&mut server)?;
        }
        Ok(())
    }

    /// Gives ids to everything loaded without one, and persists what changed.
    fn assign_missing_ids(&self) -> Result<(), StoreError> {
        for handle in self.repos() {
            if handle.meta.read().id == 0 {
                let id = self.allocate_id();
                handle.update_meta(|meta| meta.id = id)?;
            }
        }
        let mut server = self.server.lock();
        let mut changed = false;
        for i in 0..server.orgs.len() {
            if server.orgs[i].id == 0 {
                server.orgs[i].id = self.allocate_id();
                changed = true;
            }
        }
        if changed {
            self.persist_server(&mut server)?;
        }
        Ok(())
    }

    pub(crate) fn allocate_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    fn persist_server(&self, server: &mut ServerMeta) -> Result<(), StoreError> {
        server.next_id = self.next_id.load(Ordering::SeqCst);
        write_json_atomically(&self.root.join(SERVER_META_FILE), server)
    }

    /// The data directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The user's name as configured.
    pub(crate) fn user_name(&self) -> &str {
        &self.user_name
    }

    /// When the user was created.
    pub(crate) fn user_created_at(&self) -> String {
        self.server.lock().created_at.clone()
    }

    /// Checks the user's password (constant time is not a goal of a test server).
    pub(crate) fn check_password(&self, user: &str, password: &str) -> bool {
        user.eq_ignore_ascii_case(&self.user_name) && password == self.password
    }

    /// Whether `token` is one of the user's access tokens.
    pub(crate) fn check_token(&self, token: &str) -> bool {
        !token.is_empty() && self.server.lock().tokens.iter().any(|t| t.token == token)
    }

    /// The user or organisation called `name` (case-insensitive).
    pub(crate) fn owner(&self, name: &str) -> Option<Owner> {
        if name.eq_ignore_ascii_case(&self.user_name) {
            return Some(Owner::User {
                name: self.user_name.clone(),
            });
        }
        self.org(name).map(Owner::Org)
    }

    /// The user or organisation with this id.
    pub(crate) fn owner_by_id(&self, id: i64) -> Option<Owner> {
        if id == USER_ID {
            return self.owner(&self.user_name);
        }
        self.server
            .lock()
            .orgs
            .iter()
            .find(|o| o.id == id)
            .cloned()
            .map(Owner::Org)
    }

    /// The organisation called `name` (case-insensitive).
    pub(crate) fn org(&self, name: &str) -> Option<OrgMeta> {
        self.server
            .lock()
            .orgs
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// Creates an organisation.
    pub(crate) fn create_org(&self, mut org: OrgMeta) -> Result<OrgMeta, StoreError> {
        let mut server = self.server.lock();
        if org.name.eq_ignore_ascii_case(&self.user_name)
            || server
                .orgs
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&org.name))
        {
            return Err(StoreError::OwnerExists(org.name));
        }
        org.id = self.allocate_id();
        org.created_at = now_rfc3339();
        server.orgs.push(org.clone());
        self.persist_server(&mut server)?;
        Ok(org)
    }

    /// The user's tokens.
    pub(crate) fn tokens(&self) -> Vec<TokenMeta> {
        self.server.lock().tokens.clone()
    }

    /// Makes a new access token called `name`.
    pub(crate) fn create_token(
        &self,
        name: &str,
        scopes: Vec<String>,
    ) -> Result<TokenMeta, StoreError> {
        let mut server = self.server.lock();
        if server.tokens.iter().any(|t| t.name == name) {
            return Err(StoreError::AlreadyExists);
        }
        let token = TokenMeta {
            id: self.allocate_id(),
            name: name.to_owned(),
            token: new_token_value(),
            scopes,
            created_at: now_rfc3339(),
        };
        server.tokens.push(token.clone());
        self.persist_server(&mut server)?;
        Ok(token)
    }

    /// Deletes the token with this id or name.
    pub(crate) fn delete_token(&self, id_or_name: &str) -> Result<(), StoreError> {
        let mut server = self.server.lock();
        let position = server
            .tokens
            .iter()
            .position(|t| t.name == id_or_name || t.id.to_string() == id_or_name)
            .ok_or_else(|| StoreError::NotFound(format!("token {id_or_name}")))?;
        server.tokens.remove(position);
        self.persist_server(&mut server)
    }

    /// The repository at `path`, if it exists.
    pub(crate) fn repo(&self, path: &RepoPath) -> Option<Arc<RepoHandle>> {
        self.index.read().repos.get(&path.key()).cloned()
    }

    /// Every repository, in creation (id) order.
    pub(crate) fn repos(&self) -> Vec<Arc<RepoHandle>> {
        let mut repos: Vec<Arc<RepoHandle>> = self.index.read().repos.values().cloned().collect();
        repos.sort_by_key(|handle| handle.meta.read().id);
        repos
    }

    /// How many repositories exist.
    pub(crate) fn repo_count(&self) -> usize {
        self.index.read().repos.len()
    }

    /// Creates a bare repository (blocking: call it off the async runtime).
    pub(crate) fn create_repo(
        &self,
        owner: &Owner,
        new: &NewRepo,
        signature: &gitops::Person,
    ) -> Result<Arc<RepoHandle>, StoreError> {
        let owner_dir = self.root.join(owner.name().to_ascii_lowercase());
        let final_path = owner_dir.join(format!("{}.git", new.name.to_ascii_lowercase()));
        let key = format!(
            "{}/{}",
            owner.name().to_ascii_lowercase(),
            new.name.to_ascii_lowercase()
        );
        {
            let mut index = self.index.write();
            if index.repos.contains_key(&key)
                || index.creating.contains(&key)
                || final_path.exists()
            {
                return Err(StoreError::AlreadyExists);
            }
            index.creating.insert(key.clone());
        }
        let result = self.build_repo(owner, new, signature, &owner_dir, &final_path, &key);
        let mut index = self.index.write();
        index.creating.remove(&key);
        let handle = result?;
        index.repos.insert(key, handle.clone());
        Ok(handle)
    }

    fn build_repo(
        &self,
        owner: &Owner,
        new: &NewRepo,
        signature: &gitops::Person,
        owner_dir: &Path,
        final_path: &Path,
        key: &str,
    ) -> Result<Arc<RepoHandle>, StoreError> {
        let tmp_root = self.root.join(TMP_DIR);
        create_private_dir(&tmp_root).map_err(StoreError::io("creating .tmp"))?;
        let tmp_path = tmp_root.join(format!("{}.git", uuid::Uuid::new_v4().simple()));
        let built = (|| {
            let git = gitops::init_bare(&tmp_path, &new.default_branch)?;
            let mut empty = true;
            if new.auto_init {
                let readme = format!("# {}\n\n{}", new.name, new.description);
                gitops::initial_commit(
                    &git,
                    &new.default_branch,
                    &[("README.md", readme.as_bytes())],
                    signature,
                    "Initial commit",
                )?;
                empty = false;
            }
            let now = now_rfc3339();
            let meta = RepoMeta {
                id: self.allocate_id(),
                owner: owner.name().to_owned(),
                name: new.name.clone(),
                description: new.description.clone(),
                private: new.private,
                default_branch: new.default_branch.clone(),
                created_at: now.clone(),
                updated_at: now,
                hooks: Vec::new(),
            };
            write_json_atomically(&tmp_path.join(REPO_META_FILE), &meta)?;
            create_private_dir(owner_dir)
                .map_err(StoreError::io("creating the owner directory"))?;
            if final_path.exists() {
                return Err(StoreError::AlreadyExists);
            }
            fs::rename(&tmp_path, final_path)
                .map_err(StoreError::io("moving the new repository into place"))?;
            Ok(Arc::new(RepoHandle {
                key: key.to_owned(),
                path: final_path.to_path_buf(),
                meta: RwLock::new(meta),
                write_lock: Arc::new(tokio::sync::Mutex::new(())),
                empty: AtomicBool::new(empty),
            }))
        })();
        if built.is_err() && tmp_path.exists() {
            let _ = fs::remove_dir_all(&tmp_path);
        }
        built
    }

    /// Deletes a repository (blocking). The caller holds its write lock.
    pub(crate) fn delete_repo(&self, handle: &RepoHandle) -> Result<(), StoreError> {
        let removed = self.index.write().repos.remove(&handle.key);
        if removed.is_none() {
            return Err(StoreError::NotFound(handle.key.clone()));
        }
        let trash_root = self.root.join(TRASH_DIR);
        create_private_dir(&trash_root).map_err(StoreError::io("creating .trash"))?;
        let trash = trash_root.join(uuid::Uuid::new_v4().simple().to_string());
        fs::rename(&handle.path, &trash)
            .map_err(StoreError::io("moving the repository to .trash"))?;
        fs::remove_dir_all(&trash).map_err(StoreError::io("removing the repository"))
    }
}

/// Creates `dir` and any missing parents with mode 0700; an existing directory is left as
/// it is (its mode is the operator's choice).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// Whether a metadata file written before secrets were kept owner-only is readable by
/// others, so it is rewritten (a new file, created 0600) at start.
fn readable_by_others(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A new random token: 40 hex digits, the shape of Gitea's tokens.
fn new_token_value() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{}", &b[..8])
}

/// Now, as RFC 3339 with seconds (Gitea's API timestamps).
pub(crate) fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let bytes = fs::read(path).map_err(|e| Error::Metadata {
        path: path.to_path_buf(),
        source: MetadataError::Read(e),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
        path: path.to_path_buf(),
        source: MetadataError::Parse(e),
    })
}

/// Writes `value` as JSON to a temporary file beside `path`, syncs it and renames it over
/// `path`: readers and crashes see the old or the new file, never a torn one.
pub(crate) fn write_json_atomically<T: Serialize>(
    path: &Path,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Metadata {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        // The metadata holds tokens and hook secrets: owner-only from the moment it exists
        // (a chmod afterwards would leave a window, and the rename keeps this mode).
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_FILE_MODE)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        StoreError::Io {
            context: format!("writing {}", path.display()),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> gitops::Person {
        gitops::Person {
            name: "t".into(),
            email: "t@example.com".into(),
        }
    }

    fn new_repo(name: &str) -> NewRepo {
        NewRepo {
            name: name.into(),
            description: String::new(),
            private: true,
            default_branch: "main".into(),
            auto_init: true,
        }
    }

    #[test]
    fn repositories_and_tokens_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (store, token) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        let owner = store.owner("Alice").unwrap();
        let handle = store
            .create_repo(&owner, &new_repo("Repo"), &person())
            .unwrap();
        assert!(!handle.is_empty());
        assert!(dir.path().join("alice/repo.git/HEAD").exists());
        let hook_id = store.allocate_id();
        handle
            .update_meta(|meta| {
                meta.hooks.push(HookMeta {
                    id: hook_id,
                    secret: "s3cret".into(),
                    ..HookMeta::default()
                });
            })
            .unwrap();
        drop(store);

        let (store, token_again) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        assert_eq!(token, token_again);
        let handle = store
            .repo(&RepoPath::new("alice", "REPO").unwrap())
            .unwrap();
        let meta = handle.meta();
        assert_eq!(meta.name, "Repo");
        assert!(meta.private);
        assert_eq!(meta.hooks[0].secret, "s3cret");
        assert!(store.allocate_id() > hook_id, "ids are not reused");
    }

    #[test]
    fn duplicate_names_are_refused_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        let owner = store.owner("alice").unwrap();
        store
            .create_repo(&owner, &new_repo("r"), &person())
            .unwrap();
        assert!(matches!(
            store.create_repo(&owner, &new_repo("R"), &person()),
            Err(StoreError::AlreadyExists)
        ));
        assert_eq!(store.repo_count(), 1);
        assert!(!dir.path().join(TMP_DIR).read_dir().unwrap().any(|_| true));
    }

    #[test]
    fn deleted_repositories_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        let owner = store.owner("alice").unwrap();
        let handle = store
            .create_repo(&owner, &new_repo("r"), &person())
            .unwrap();
        store.delete_repo(&handle).unwrap();
        assert!(!handle.path.exists());
        assert!(store.repo(&RepoPath::new("alice", "r").unwrap()).is_none());
        // The name is free again.
        store
            .create_repo(&owner, &new_repo("r"), &person())
            .unwrap();
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secrets_are_owner_only_and_old_files_are_tightened() {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("data");
        let (store, _) = Store::open(&root, "alice", "pw", None).unwrap();
        let owner = store.owner("alice").unwrap();
        let handle = store
            .create_repo(&owner, &new_repo("r"), &person())
            .unwrap();
        let server_file = root.join(SERVER_META_FILE);
        let repo_file = handle.path.join(REPO_META_FILE);
        assert_eq!(mode(&server_file), 0o600);
        assert_eq!(mode(&repo_file), 0o600);
        assert_eq!(mode(&root), 0o700, "created by the server");
        assert_eq!(mode(&root.join("alice")), 0o700);
        drop(store);

        // As an earlier version left them.
        for file in [&server_file, &repo_file] {
            fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let (_store, _) = Store::open(&root, "alice", "pw", None).unwrap();
        assert_eq!(mode(&server_file), 0o600);
        assert_eq!(mode(&repo_file), 0o600);
    }

    #[test]
    fn a_configured_token_replaces_the_persisted_one() {
        let dir = tempfile::tempdir().unwrap();
        let (store, generated) = Store::open(dir.path(), "alice", "pw", None).unwrap();
        assert_eq!(generated.len(), 40);
        drop(store);
        let (store, token) = Store::open(dir.path(), "alice", "pw", Some("fixed")).unwrap();
        assert_eq!(token, "fixed");
        assert!(store.check_token("fixed"));
        assert!(!store.check_token(&generated));
    }
}
