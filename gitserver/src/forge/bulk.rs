//! Many repositories at once: create N repositories of M manifest paths, and commit to
//! many of them in one burst, with bounded concurrency.
//!
//! Built only on [`ForgeClient`]'s Gitea calls, so the same burst runs against the embedded
//! server and a real Gitea. A repository is made in two calls (create, then one ChangeFiles
//! commit of all its files) and a burst commit is one ChangeFiles call a repository, which
//! is what makes "commit to 30 repositories at once" land within a second.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::client::ForgeClient;
use super::error::ForgeError;
use super::types::{ChangeFileOperation, ChangeFilesOptions, CreateRepoOption, Repository};

/// A repository addressed by owner and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoRef {
    /// The owning user or organisation.
    pub owner: String,
    /// The repository name.
    pub name: String,
}

impl RepoRef {
    /// `owner/name`.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// What each created repository contains: `paths` directories `path-{i}/` with a ConfigMap
/// manifest each, and optionally a `fleet.yaml` in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLayout {
    /// How many paths (bundles) a repository has.
    pub paths: usize,
    /// The content of `path-{i}/fleet.yaml`, if any (the same in every path).
    pub fleet_yaml: Option<String>,
    /// Whether repositories are private.
    pub private: bool,
}

impl Default for ManifestLayout {
    fn default() -> Self {
        Self {
            paths: 1,
            fleet_yaml: None,
            private: false,
        }
    }
}

/// The directory of path `index`: `path-{index}`.
pub fn path_dir(index: usize) -> String {
    format!("path-{index}")
}

/// The manifest file of path `index`: `path-{index}/configmap.yaml`.
pub fn manifest_path(index: usize) -> String {
    format!("{}/configmap.yaml", path_dir(index))
}

/// The ConfigMap of path `index` of `repo` at `revision`; a new revision changes only the
/// `revision` value, so a burst commit changes every bundle's content.
pub fn configmap_manifest(repo: &str, index: usize, revision: u64) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {repo}-path-{index}\ndata:\n  repo: {repo}\n  path: \"{index}\"\n  revision: \"{revision}\"\n"
    )
}

/// The files of a fresh repository of `layout` at revision 0.
pub fn initial_files(repo: &str, layout: &ManifestLayout) -> Vec<ChangeFileOperation> {
    let mut files = Vec::with_capacity(layout.paths * 2);
    for index in 0..layout.paths {
        files.push(ChangeFileOperation::create(
            manifest_path(index),
            configmap_manifest(repo, index, 0),
        ));
        if let Some(fleet_yaml) = &layout.fleet_yaml {
            files.push(ChangeFileOperation::create(
                format!("{}/fleet.yaml", path_dir(index)),
                fleet_yaml,
            ));
        }
    }
    files
}

/// A repository made by [`create_repos`].
#[derive(Debug, Clone)]
pub struct CreatedRepo {
    /// The repository as the server reports it (with its `clone_url`).
    pub repository: Repository,
    /// The commit holding the manifests.
    pub head: String,
}

/// Why a bulk operation failed, and on which repository.
#[derive(Debug, thiserror::Error)]
#[error("{repo}")]
pub struct BulkError {
    /// `owner/name`.
    pub repo: String,
    /// The failing call's error.
    #[source]
    pub source: ForgeError,
}

/// Creates `repos` (organisations made as needed; an owner equal to the client's user
/// means the user's own repositories), each with `layout`'s manifests in one commit.
/// At most `concurrency` repositories are in flight. Fails on the first error (others
/// already started complete), returning the repositories in `repos` order otherwise.
pub async fn create_repos(
    client: &ForgeClient,
    repos: &[RepoRef],
    layout: &ManifestLayout,
    concurrency: usize,
) -> Result<Vec<CreatedRepo>, BulkError> {
    let user = client
        .current_user()
        .await
        .map_err(|source| BulkError {
            repo: String::new(),
            source,
        })?
        .login;
    let mut orgs: Vec<&str> = repos
        .iter()
        .map(|r| r.owner.as_str())
        .filter(|owner| !owner.eq_ignore_ascii_case(&user))
        .collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        client.ensure_org(org).await.map_err(|source| BulkError {
            repo: org.to_owned(),
            source,
        })?;
    }
    let results: Vec<Result<CreatedRepo, BulkError>> = futures::stream::iter(repos.iter())
        .map(|repo| {
            let is_user = repo.owner.eq_ignore_ascii_case(&user);
            async move {
                create_one(client, repo, is_user, layout)
                    .await
                    .map_err(|source| BulkError {
                        repo: repo.full_name(),
                        source,
                    })
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn create_one(
    client: &ForgeClient,
    repo: &RepoRef,
    is_user: bool,
    layout: &ManifestLayout,
) -> Result<CreatedRepo, ForgeError> {
    let option = CreateRepoOption {
        private: layout.private,
        ..CreateRepoOption::named(&repo.name)
    };
    let repository = if is_user {
        client.create_repo(&option).await?
    } else {
        client.create_org_repo(&repo.owner, &option).await?
    };
    let files = ChangeFilesOptions {
        files: initial_files(&repo.name, layout),
        message: format!("fleetbench: {} paths", layout.paths),
        ..ChangeFilesOptions::default()
    };
    let committed = client.change_files(&repo.owner, &repo.name, &files).await?;
    Ok(CreatedRepo {
        repository,
        head: committed.commit.map(|c| c.sha).unwrap_or_default(),
    })
}

/// One commit of a burst.
#[derive(Debug)]
pub struct CommitResult {
    /// The repository.
    pub repo: RepoRef,
    /// When the request was sent.
    pub sent: Instant,
    /// How long the server took to answer.
    pub latency: Duration,
    /// The new commit id, or why there is none.
    pub result: Result<String, ForgeError>,
}

/// Commits `change(repo)` to each repository, at most `concurrency` at once, and reports
/// each commit's id and latency (in `repos` order). Failures are reported, not fatal.
pub async fn commit_to_many<F>(
    client: &ForgeClient,
    repos: &[RepoRef],
    change: F,
    concurrency: usize,
) -> Vec<CommitResult>
where
    F: Fn(&RepoRef) -> ChangeFilesOptions,
{
    futures::stream::iter(repos.iter())
        .map(|repo| {
            let options = change(repo);
            async move {
                let sent = Instant::now();
                let result = client
                    .change_files(&repo.owner, &repo.name, &options)
                    .await
                    .map(|files| files.commit.map(|c| c.sha).unwrap_or_default());
                CommitResult {
                    repo: repo.clone(),
                    sent,
                    latency: sent.elapsed(),
                    result,
                }
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await
}

/// Commits revision `revision` of every path's ConfigMap to each repository (one commit a
/// repository, `paths` files each): the suites' "commit to N repositories at once".
pub async fn bump_revision(
    client: &ForgeClient,
    repos: &[RepoRef],
    layout: &ManifestLayout,
    revision: u64,
    concurrency: usize,
) -> Vec<CommitResult> {
    commit_to_many(
        client,
        repos,
        |repo| ChangeFilesOptions {
            files: (0..layout.paths)
                .map(|index| {
                    ChangeFileOperation::update(
                        manifest_path(index),
                        configmap_manifest(&repo.name, index, revision),
                    )
                })
                .collect(),
            message: format!("fleetbench: revision {revision}"),
            ..ChangeFilesOptions::default()
        },
        concurrency,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::types::FileOperation;

    #[test]
    fn layouts_produce_one_manifest_per_path_and_optional_fleet_yaml() {
        let layout = ManifestLayout {
            paths: 3,
            fleet_yaml: Some("namespace: x\n".into()),
            private: false,
        };
        let files = initial_files("r", &layout);
        assert_eq!(files.len(), 6);
        assert_eq!(files[0].path, "path-0/configmap.yaml");
        assert_eq!(files[1].path, "path-0/fleet.yaml");
        assert!(files.iter().all(|f| f.operation == FileOperation::Create));
        let manifest = configmap_manifest("r", 2, 7);
        assert!(manifest.contains("name: r-path-2"));
        assert!(manifest.contains("revision: \"7\""));
    }
}
