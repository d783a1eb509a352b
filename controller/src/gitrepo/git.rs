//! Git operations with libgit2: ls-remote for polls, shallow fetches into a cache for syncs.
//!
//! Polls only list refs (`Remote::create_detached` + `connect` + `list`, no repository on
//! disk), like Fleet's `LatestCommit`. Syncs fetch the one wanted ref with depth 1 into a bare
//! repository per GitRepo and read files straight from the commit's tree, so nothing is ever
//! checked out. All calls block; callers run them on the blocking pool.

use std::path::Path;

use git2::{Cred, Direction, FetchOptions, Oid, RemoteCallbacks, Repository};

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
    /// The local cache could not be used.
    #[error("git cache {path}: {message}")]
    Cache {
        /// Cache path.
        path: String,
        /// libgit2's message.
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
    url: &str,
    credentials: Option<&Credentials>,
) -> Result<Vec<(String, Oid)>, Error> {
    let unreachable = |e: git2::Error| Error::Unreachable {
        url: url.to_owned(),
        message: e.message().to_owned(),
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
        path: path.display().to_string(),
        message: e.message().to_owned(),
    };
    match Repository::open_bare(path) {
        Ok(repo) => Ok(repo),
        Err(_) => {
            std::fs::create_dir_all(path).map_err(|e| Error::Cache {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            Repository::init_bare(path).map_err(cache)
        }
    }
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
    url: &str,
    target: &Target,
    credentials: Option<&Credentials>,
) -> Result<Oid, Error> {
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
            let refs = ls_remote(url, credentials)?;
            resolve(url, &refs, target)?;
            Err(Error::Fetch {
                url: url.to_owned(),
                what: source,
                message: e.message().to_owned(),
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
        let err = ls_remote("http://127.0.0.1:9/nothing.git", None).unwrap_err();
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
        let refs = ls_remote(&url, None).unwrap();
        let head = resolve(&url, &refs, &Target::Branch("main".into())).unwrap();
        assert_eq!(head, commit.to_string());
        let cache = open_cache(&dir.path().join("cache")).unwrap();
        let fetched = fetch_target(&cache, &url, &Target::Branch("main".into()), None).unwrap();
        assert_eq!(fetched, commit);
        assert!(cache.find_commit(commit).is_ok());
        // A revision already in the cache needs no fetch.
        let by_sha = fetch_target(&cache, &url, &Target::Revision(head), None).unwrap();
        assert_eq!(by_sha, commit);
        let missing = fetch_target(&cache, &url, &Target::Branch("nope".into()), None).unwrap_err();
        assert!(matches!(missing, Error::NoSuchBranch { .. }), "{missing}");
    }
}
