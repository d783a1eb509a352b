//! Git operations with libgit2: ls-remote for polls, shallow fetches into a cache for syncs.
//!
//! Polls only list refs (`Remote::create_detached` + `connect` + `list`, no repository on
//! disk), like Fleet's `LatestCommit`. Syncs fetch the one wanted ref with depth 1 into a bare
//! repository per GitRepo and read files straight from the commit's tree, so nothing is ever
//! checked out. All calls block; callers run them on the blocking pool.
//!
//! Network calls take a [`Remote`], which can only be made from a URL the
//! [`validate`](super::validate) policy accepts, so no code path hands libgit2 a local path.
//! libgit2's messages end up in GitRepo conditions, readable by the GitRepo's owner: local
//! paths in them (the cache, or whatever a bad URL pointed at) are redacted.

use std::path::Path;
use std::sync::LazyLock;

use git2::{Cred, Direction, FetchOptions, Oid, RemoteCallbacks, Repository};
use regex::Regex;

use super::validate::{self, Policy};

/// A repository URL the policy allows reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote(String);

impl Remote {
    /// Checks `url` against `policy`.
    pub fn new(url: &str, policy: &Policy) -> Result<Self, validate::Error> {
        validate::check_repo_url(url, policy)?;
        Ok(Remote(url.trim().to_owned()))
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.0
    }
}

static LOCAL_PATH: LazyLock<Regex> = LazyLock::new(|| {
    // An absolute path starts a message or follows a space, quote, bracket, '=' or ','; a
    // URL's "//host/..." follows ':' and is kept.
    Regex::new(r#"(^|[\s'"(\[=,])/[^\s'"\])]*"#).unwrap_or_else(|_| Regex::new("$^").unwrap())
});

/// `message` with absolute local paths replaced by `<local path>`.
pub fn redact(message: &str) -> String {
    LOCAL_PATH
        .replace_all(message, "${1}<local path>")
        .into_owned()
}

/// Credentials for HTTP basic auth (a `kubernetes.io/basic-auth` Secret).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

/// What to deploy: a branch's head or a fixed revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Follow a branch (Fleet's default is `master`).
    Branch(String),
    /// A commit SHA or a tag.
    Revision(String),
}

impl Target {
    /// The target of a GitRepo spec.
    pub fn of(branch: Option<&str>, revision: Option<&str>) -> Self {
        match (
            revision.filter(|r| !r.is_empty()),
            branch.filter(|b| !b.is_empty()),
        ) {
            (Some(revision), _) => Target::Revision(revision.to_owned()),
            (None, Some(branch)) => Target::Branch(branch.to_owned()),
            (None, None) => Target::Branch("master".to_owned()),
        }
    }
}

/// Git errors, with messages that say what to check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository could not be reached or listed.
    #[error(
        "cannot list refs of {url}: {message}; check spec.repo, the credentials in spec.clientSecretName and that the git server is reachable"
    )]
    Unreachable {
        /// Repository URL.
        url: String,
        /// libgit2's message.
        message: String,
    },
    /// The branch does not exist.
    #[error("branch {branch:?} not found in {url}; check spec.branch (available: {available})")]
    NoSuchBranch {
        /// Repository URL.
        url: String,
        /// Wanted branch.
        branch: String,
        /// Branches that exist.
        available: String,
    },
    /// The revision is neither a commit SHA nor a tag.
    #[error(
        "revision {revision:?} is neither a commit SHA nor a tag of {url}; check spec.revision"
    )]
    NoSuchRevision {
        /// Repository URL.
        url: String,
        /// Wanted revision.
        revision: String,
    },
    /// Fetching failed.
    #[error("cannot fetch {what} from {url}: {message}")]
    Fetch {
        /// Repository URL.
        url: String,
        /// The ref or commit.
        what: String,
        /// libgit2's message.
        message: String,
    },
    /// The local cache could not be used (its path is deliberately not shown).
    #[error("git cache: {message}")]
    Cache {
        /// libgit2's or the OS's message, local paths redacted.
        message: String,
    },
    /// The operation did not finish in time.
    #[error(
        "git operation on {url} timed out after {seconds}s; check that the git server is reachable"
    )]
    Timeout {
        /// Repository URL.
        url: String,
        /// The timeout.
        seconds: u64,
    },
}

fn callbacks(credentials: Option<&Credentials>) -> RemoteCallbacks<'_> {
    let mut callbacks = RemoteCallbacks::new();
    if let Some(creds) = credentials {
        let mut attempts = 0;
        callbacks.credentials(move |_url, _user, _allowed| {
            // libgit2 asks again after a rejection; stop after one try instead of looping.
            attempts += 1;
            if attempts > 1 {
                return Err(git2::Error::from_str(
                    "authentication failed: credentials were rejected",
                ));
            }
            Cred::userpass_plaintext(&creds.username, &creds.password)
        });
    }
    callbacks
}

/// Lists the refs of `url`: `(name, commit)` pairs, peeled tags as `refs/tags/x^{}`.
pub fn ls_remote(
    remote: &Remote,
    credentials: Option<&Credentials>,
) -> Result<Vec<(String, Oid)>, Error> {
    let url = remote.url();
    let unreachable = |e: git2::Error| Error::Unreachable {
        url: url.to_owned(),
        message: redact(e.message()),
    };
    let mut remote = git2::Remote::create_detached(url).map_err(unreachable)?;
    let connection = remote
        .connect_auth(Direction::Fetch, Some(callbacks(credentials)), None)
        .map_err(unreachable)?;
    let refs = connection
        .list()
        .map_err(unreachable)?
        .iter()
        .map(|head| (head.name().to_owned(), head.oid()))
        .collect();
    Ok(refs)
}

/// Resolves `target` against listed refs to a commit SHA.
pub fn resolve(url: &str, refs: &[(String, Oid)], target: &Target) -> Result<String, Error> {
    match target {
        Target::Branch(branch) => {
            let wanted = format!("refs/heads/{branch}");
            refs.iter()
                .find(|(name, _)| *name == wanted)
                .map(|(_, oid)| oid.to_string())
                .ok_or_else(|| Error::NoSuchBranch {
                    url: url.to_owned(),
                    branch: branch.clone(),
                    available: {
                        let mut names: Vec<&str> = refs
                            .iter()
                            .filter_map(|(n, _)| n.strip_prefix("refs/heads/"))
                            .collect();
                        names.sort_unstable();
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    },
                })
        }
        Target::Revision(revision) => {
            if is_sha(revision) {
                return Ok(revision.to_lowercase());
            }
            let peeled = format!("refs/tags/{revision}^{{}}");
            let plain = format!("refs/tags/{revision}");
            refs.iter()
                .find(|(name, _)| *name == peeled)
                .or_else(|| refs.iter().find(|(name, _)| *name == plain))
                .map(|(_, oid)| oid.to_string())
                .ok_or_else(|| Error::NoSuchRevision {
                    url: url.to_owned(),
                    revision: revision.clone(),
                })
        }
    }
}

/// Opens (creating if needed) the bare cache repository at `path`.
pub fn open_cache(path: &Path) -> Result<Repository, Error> {
    let cache = |e: git2::Error| Error::Cache {
        message: redact(e.message()),
    };
    match Repository::open_bare(path) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            create_private_dir(path).map_err(|e| Error::Cache {
                message: redact(&e.to_string()),
            })?;
            Repository::init_bare(path).map_err(cache)
        }
    }
}

/// Creates `path` (and missing parents) readable by this user only: a cache holds what other
/// GitRepos' credentials fetched.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

fn is_sha(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `source` (a ref or a commit SHA) into `refs/fleet/head` with depth 1 and returns
/// the commit it points to.
fn fetch_ref(
    repo: &Repository,
    url: &str,
    source: &str,
    credentials: Option<&Credentials>,
) -> Result<Oid, git2::Error> {
    let refspec = format!("+{source}:refs/fleet/head");
    // A refspec that matches nothing fetches nothing without error: start from no ref, so a
    // missing branch cannot look like the previously fetched one.
    if let Ok(mut stale) = repo.find_reference("refs/fleet/head") {
        stale.delete()?;
    }
    let attempt = |depth: Option<i32>| -> Result<(), git2::Error> {
        let mut remote = repo.remote_anonymous(url)?;
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks(credentials));
        if let Some(depth) = depth {
            options.depth(depth);
        }
        remote.fetch(&[refspec.as_str()], Some(&mut options), None)
    };
    match attempt(Some(1)) {
        // Some transports (file://) cannot fetch shallow: fetch in full.
        Err(e) if e.message().contains("shallow") => attempt(None)?,
        other => other?,
    }
    Ok(repo
        .find_reference("refs/fleet/head")?
        .peel_to_commit()?
        .id())
}

/// Fetches what `target` names into `repo` (shallow) and returns its commit. A fetch lists
/// the remote's refs itself, so a sync costs one round of requests, not an extra ls-remote;
/// only when it fails is the remote listed, to tell a missing branch from an unreachable
/// server.
pub fn fetch_target(
    repo: &Repository,
    remote: &Remote,
    target: &Target,
    credentials: Option<&Credentials>,
) -> Result<Oid, Error> {
    let url = remote.url();
    let source = match target {
        Target::Branch(branch) => format!("refs/heads/{branch}"),
        Target::Revision(revision) if is_sha(revision) => {
            if let Ok(oid) = Oid::from_str(revision)
                && repo.find_commit(oid).is_ok()
            {
                return Ok(oid);
            }
            revision.clone()
        }
        Target::Revision(tag) => format!("refs/tags/{tag}"),
    };
    match fetch_ref(repo, url, &source, credentials) {
        Ok(oid) => Ok(oid),
        Err(e) => {
            // Diagnose: unreachable, or a missing branch/tag.
            let refs = ls_remote(remote, credentials)?;
            resolve(url, &refs, target)?;
            Err(Error::Fetch {
                url: url.to_owned(),
                what: source,
                message: redact(e.message()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u8) -> Oid {
        Oid::from_bytes(&[n; 20]).unwrap()
    }

    #[test]
    fn branches_and_revisions_resolve_from_listed_refs() {
        let refs = vec![
            ("HEAD".to_owned(), oid(1)),
            ("refs/heads/main".to_owned(), oid(1)),
            ("refs/heads/dev".to_owned(), oid(2)),
            ("refs/tags/v1".to_owned(), oid(3)),
            ("refs/tags/v1^{}".to_owned(), oid(4)),
        ];
        let url = "http://git/r.git";
        assert_eq!(
            resolve(url, &refs, &Target::Branch("dev".into())).unwrap(),
            oid(2).to_string()
        );
        assert_eq!(
            resolve(url, &refs, &Target::Revision("v1".into())).unwrap(),
            oid(4).to_string()
        );
        let sha = "a".repeat(40);
        assert_eq!(
            resolve(url, &refs, &Target::Revision(sha.clone())).unwrap(),
            sha
        );
        let err = resolve(url, &refs, &Target::Branch("nope".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "branch \"nope\" not found in http://git/r.git; check spec.branch (available: dev, main)"
        );
        assert!(resolve(url, &refs, &Target::Revision("v2".into())).is_err());
        assert_eq!(Target::of(None, None), Target::Branch("master".into()));
        assert_eq!(
            Target::of(Some("main"), Some("")),
            Target::Branch("main".into())
        );
        assert_eq!(
            Target::of(Some("main"), Some("v1")),
            Target::Revision("v1".into())
        );
    }

    #[test]
    fn an_unreachable_repo_is_an_actionable_error() {
        // Port 9 (discard) on localhost: nothing listens in the test environment.
        let remote = Remote::new("http://127.0.0.1:9/nothing.git", &Policy::default()).unwrap();
        let err = ls_remote(&remote, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot list refs of http://127.0.0.1:9/nothing.git"),
            "{text}"
        );
        assert!(text.contains("check spec.repo"), "{text}");
    }

    #[test]
    fn local_repositories_list_and_fetch_shallow() {
        let dir = tempfile::tempdir().unwrap();
        let origin = Repository::init(dir.path().join("origin")).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let blob = origin.blob(b"kind: ConfigMap\n").unwrap();
        let mut builder = origin.treebuilder(None).unwrap();
        builder.insert("cm.yaml", blob, 0o100644).unwrap();
        let tree = origin.find_tree(builder.write().unwrap()).unwrap();
        let commit = origin
            .commit(Some("refs/heads/main"), &sig, &sig, "c1", &tree, &[])
            .unwrap();
        let url = format!("file://{}", dir.path().join("origin").display());
        assert!(
            Remote::new(&url, &Policy::default()).is_err(),
            "off by default"
        );
        let allow = Policy {
            allow_file_repos: true,
            ..Policy::default()
        };
        let remote = Remote::new(&url, &allow).unwrap();
        let refs = ls_remote(&remote, None).unwrap();
        let head = resolve(&url, &refs, &Target::Branch("main".into())).unwrap();
        assert_eq!(head, commit.to_string());
        let cache = open_cache(&dir.path().join("cache")).unwrap();
        let fetched = fetch_target(&cache, &remote, &Target::Branch("main".into()), None).unwrap();
        assert_eq!(fetched, commit);
        assert!(cache.find_commit(commit).is_ok());
        // A revision already in the cache needs no fetch.
        let by_sha = fetch_target(&cache, &remote, &Target::Revision(head), None).unwrap();
        assert_eq!(by_sha, commit);
        let missing =
            fetch_target(&cache, &remote, &Target::Branch("nope".into()), None).unwrap_err();
        assert!(matches!(missing, Error::NoSuchBranch { .. }), "{missing}");
    }

    #[test]
    fn local_paths_never_reach_messages() {
        assert_eq!(
            redact("could not find repository at '/etc'"),
            "could not find repository at '<local path>'"
        );
        assert_eq!(
            redact("/var/cache/x: permission denied"),
            "<local path> permission denied"
        );
        assert_eq!(
            redact("failed to connect to http://127.0.0.1:9/nothing.git: refused"),
            "failed to connect to http://127.0.0.1:9/nothing.git: refused"
        );
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let Err(err) = open_cache(&blocker.join("sub")) else {
            panic!("a cache under a file cannot be created");
        };
        let err = err.to_string();
        assert!(!err.contains(&*dir.path().to_string_lossy()), "{err}");
    }

    #[test]
    fn cache_directories_are_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b");
        open_cache(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
