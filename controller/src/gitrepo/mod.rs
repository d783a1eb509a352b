//! GitRepos: polling (ls-remote on a jittered schedule) and syncing (fetch, read each path,
//! create/update/delete one Bundle per path).
//!
//! Two queues: `gitrepo-poll`, fed only by the [`poll::Scheduler`], and `gitrepo`, the sync
//! queue, fed by spec changes, polls and webhooks that saw a new commit, the periodic resync
//! and startup. A poll patches only what a poll knows (`pollingCommit`,
//! `lastPollingTriggered`, the GitPolling condition); a sync writes `commit` and the
//! Accepted/Stalled/Reconciling conditions. Errors (unreachable repo, missing branch or path,
//! malformed fleet.yaml, missing credentials) become conditions and `display.message` with
//! what to check, and never take a GitRepo off the polling schedule (except the legacy switch).

pub mod cache;
pub mod fleetyaml;
pub mod git;
pub mod poll;
pub mod reader;
pub mod validate;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use tokio::time::Instant;

use crate::kubeutil::{is_already_exists, is_not_found};
use crate::metrics::Metrics;
use crate::queue::{Action, ReconcileFailure, WorkQueue, backoff};
use crate::status::{GitRepoFacts, PollFacts, StatusKey, StatusWriter, SyncFacts};
use crate::store::{BundleEntry, Key, Store};
use fleet_api::error::{Foreign, chain};
use fleet_api::{Bundle, GitRepo};

use git::{Credentials, Remote, Target};
use poll::Scheduler;
use validate::Policy;

/// Concurrent Bundle writes per sync.
const WRITE_CONCURRENCY: usize = 8;

/// Errors of polls and syncs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The GitRepo spec is refused (bad repo URL, polling interval or target).
    #[error(transparent)]
    Invalid(#[from] validate::Error),
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// The repository content could not be turned into Bundles.
    #[error(transparent)]
    Read(#[from] reader::Error),
    /// The `clientSecretName` Secret is missing or unusable.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The `clientSecretName` Secret could not be read.
    #[error("credentials: reading Secret {namespace}/{name}")]
    ReadCredentials {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// Writing a Bundle failed.
    #[error("{verb} Bundle {key}")]
    Bundle {
        /// create, update or delete.
        verb: &'static str,
        /// The Bundle.
        key: Key,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// The blocking git task failed (panicked or was cancelled).
    #[error("git task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Error {
    /// The condition reason this error is reported with.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Invalid(e) => e.reason(),
            Error::Read(e) => e.reason(),
            _ => "Error",
        }
    }
}

/// What the GitRepo reconcilers need.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Object cache.
    pub store: Arc<Store>,
    /// Status writes.
    pub status: Arc<StatusWriter>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The polling schedule (shared with the dispatcher).
    pub scheduler: Arc<Scheduler>,
    /// The sync queue.
    pub sync_queue: WorkQueue<Key>,
    /// Where fetched repositories are cached.
    pub cache: cache::Cache,
    /// What a GitRepo spec may ask for.
    pub policy: Policy,
    /// Timeout of one git operation.
    pub git_timeout: Duration,
}

fn status_key(key: &Key) -> StatusKey {
    StatusKey::GitRepo(key.clone())
}

/// Reads the basic-auth credentials of `spec.clientSecretName`, if set.
async fn credentials(ctx: &Context, repo: &GitRepo) -> Result<Option<Credentials>, Error> {
    let Some(name) = repo
        .spec
        .client_secret_name
        .as_deref()
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    let namespace = repo.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = match api.get(name).await {
        Ok(secret) => secret,
        Err(e) if is_not_found(&e) => {
            return Err(Error::Credentials(format!(
                "Secret {namespace}/{name} (spec.clientSecretName) not found; create a kubernetes.io/basic-auth Secret with username and password"
            )));
        }
        Err(e) => {
            return Err(Error::ReadCredentials {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source: Foreign(Box::new(e)),
            });
        }
    };
    if secret.type_.as_deref() == Some("kubernetes.io/ssh-auth") {
        return Err(Error::Credentials(format!(
            "Secret {namespace}/{name} is of type kubernetes.io/ssh-auth; only kubernetes.io/basic-auth over http(s) is supported"
        )));
    }
    let field = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .cloned()
            })
    };
    match (field("username"), field("password")) {
        (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
        _ => Err(Error::Credentials(format!(
            "Secret {namespace}/{name} lacks username or password keys (type kubernetes.io/basic-auth expected)"
        ))),
    }
}

async fn blocking<T: Send + 'static>(
    timeout: Duration,
    url: &str,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(Error::Task(join)),
        Err(_) => Err(git::Error::Timeout {
            url: url.to_owned(),
            seconds: timeout.as_secs(),
        }
        .into()),
    }
}

/// The commit a GitRepo should deploy, per an ls-remote.
async fn latest_commit(ctx: &Context, repo: &GitRepo) -> Result<String, Error> {
    let remote = Remote::new(&repo.spec.repo, &ctx.policy)?;
    let creds = credentials(ctx, repo).await?;
    let url = remote.url().to_owned();
    let target = Target::of(repo.spec.branch.as_deref(), repo.spec.revision.as_deref());
    blocking(ctx.git_timeout, &url, move || {
        let refs = git::ls_remote(&remote, creds.as_ref())?;
        Ok(git::resolve(remote.url(), &refs, &target)?)
    })
    .await
}

/// The last commit a sync deployed (from this process, else from the observed status).
fn deployed_commit(ctx: &Context, key: &Key, repo: &GitRepo) -> String {
    ctx.status
        .gitrepo_facts(key)
        .sync
        .and_then(|s| s.commit)
        .or_else(|| repo.status.as_ref().map(|s| s.commit.clone()))
        .unwrap_or_default()
}

/// Polls one GitRepo: ls-remote, record the result, sync if the commit moved, and say when
/// the next poll is due.
pub async fn poll(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let Some(repo) = ctx.store.gitrepo(&key) else {
        return Ok(Action::await_change());
    };
    if repo.spec.disable_polling || repo.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let at = Time(jiff::Timestamp::now());
    let result = latest_commit(&ctx, &repo).await;
    Metrics::count(
        &ctx.metrics.gitrepo_polls,
        if result.is_ok() { "success" } else { "error" },
    );
    let (commit, error) = match result {
        Ok(commit) => (Some(commit), None),
        Err(e) => {
            let message = chain(&e);
            tracing::info!(gitrepo = %key, error = %message, "poll failed");
            (None, Some(message))
        }
    };
    let failed = error.is_some();
    ctx.status.update_gitrepo(&key, |facts| {
        facts.poll = Some(PollFacts {
            commit: commit.clone(),
            at,
            error,
        });
    });
    ctx.status.request_now(status_key(&key));
    if let Some(commit) = commit
        && commit != deployed_commit(&ctx, &key, &repo)
    {
        ctx.sync_queue.add(key.clone());
    }
    Ok(
        match ctx.scheduler.after_poll(&key, failed, started.elapsed()) {
            Some(delay) => Action::requeue(delay),
            None => Action::await_change(),
        },
    )
}

/// Polls are never retried by the queue's backoff (a poll records its own errors); a panic
/// still leaves the GitRepo on the schedule, one interval later.
pub fn poll_error_policy(
    key: &Key,
    _error: &ReconcileFailure<Error>,
    _retries: u32,
    ctx: &Context,
) -> Action {
    match ctx.scheduler.after_poll(key, true, Duration::ZERO) {
        Some(delay) => Action::requeue(delay),
        None => Action::await_change(),
    }
}

fn record_sync_error(ctx: &Context, key: &Key, repo: &GitRepo, error: &Error) {
    let message = chain(error);
    let reason = Some(error.reason()).filter(|r| *r != "Error");
    tracing::info!(gitrepo = %key, error = %message, "sync failed");
    Metrics::count(&ctx.metrics.gitrepo_syncs, "error");
    ctx.status.update_gitrepo(key, |facts| {
        let previous = facts.sync.take().unwrap_or_default();
        facts.sync = Some(SyncFacts {
            commit: previous.commit,
            observed_generation: repo.metadata.generation.unwrap_or_default(),
            update_generation: repo.spec.force_sync_generation,
            error: Some(message),
            reason,
            in_progress: false,
            source: previous.source,
        });
    });
    ctx.status.request_now(status_key(key));
}

/// Syncs one GitRepo: fetch the wanted commit, read its Bundles, write the ones that
/// changed, delete the ones that disappeared; a deleted GitRepo loses all its Bundles.
pub async fn sync(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(repo) = ctx
        .store
        .gitrepo(&key)
        .filter(|r| r.metadata.deletion_timestamp.is_none())
    else {
        delete_bundles(&ctx, &key, &HashSet::new()).await?;
        ctx.status.forget(&status_key(&key));
        if let Some(dir) = ctx.cache.forget(&key.namespace, &key.name) {
            // What the deleted GitRepo's credentials fetched does not outlive it.
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
            if let Ok(Err(e)) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(gitrepo = %key, error = %e, "removing the git cache failed");
            }
        }
        return Ok(Action::await_change());
    };
    let notice = validate::clamp_notice(&repo.spec, &ctx.policy);
    ctx.status
        .update_gitrepo(&key, |facts| facts.polling_notice = notice);
    if let Err(invalid) = validate::check(&repo.spec, &ctx.policy) {
        // Nothing is fetched or written, and existing Bundles stay: an edit that fixes the
        // spec triggers the next sync, so retrying would only repeat the message.
        record_sync_error(&ctx, &key, &repo, &Error::Invalid(invalid));
        return Ok(Action::await_change());
    }
    match fetch_and_read(&ctx, &key, &repo).await {
        Ok((commit, bundles)) => {
            let names: HashSet<String> = bundles
                .iter()
                .filter_map(|b| b.metadata.name.clone())
                .collect();
            let written = apply_bundles(&ctx, bundles).await;
            let deleted = match written {
                Ok(()) => delete_bundles(&ctx, &key, &names).await,
                Err(e) => Err(e),
            };
            if let Err(error) = deleted {
                record_sync_error(&ctx, &key, &repo, &error);
                return Err(error);
            }
            Metrics::count(&ctx.metrics.gitrepo_syncs, "success");
            ctx.status.update_gitrepo(&key, |facts| {
                facts.sync = Some(SyncFacts {
                    commit: Some(commit),
                    observed_generation: repo.metadata.generation.unwrap_or_default(),
                    update_generation: repo.spec.force_sync_generation,
                    error: None,
                    reason: None,
                    in_progress: false,
                    source: Some(source_of(&repo)),
                });
            });
            ctx.status.request_now(status_key(&key));
            Ok(Action::await_change())
        }
        Err(error) => {
            record_sync_error(&ctx, &key, &repo, &error);
            Err(error)
        }
    }
}

/// What decides the commit a sync deploys: the repository, the branch or revision, the
/// credentials and `forceSyncGeneration`. A change to anything else in the spec (targets,
/// paths' options, polling settings) can be served from the commit already fetched.
pub fn source_of(repo: &GitRepo) -> String {
    let spec = &repo.spec;
    format!(
        "{}\n{}\n{}\n{}\n{}",
        spec.repo,
        spec.branch.as_deref().unwrap_or_default(),
        spec.revision.as_deref().unwrap_or_default(),
        spec.client_secret_name.as_deref().unwrap_or_default(),
        spec.force_sync_generation
    )
}

/// The commit of the last successful sync, when nothing since says the remote moved: the
/// same source, no failed sync after it, and the last poll and webhook (if any) announced
/// that very commit. Anything else, or a restart (facts are kept in memory), fetches.
fn commit_to_reuse(facts: &GitRepoFacts, source: &str) -> Option<String> {
    let sync = facts.sync.as_ref()?;
    if sync.error.is_some() || sync.source.as_deref() != Some(source) {
        return None;
    }
    let commit = sync.commit.clone()?;
    let poll_agrees = facts
        .poll
        .as_ref()
        .is_none_or(|poll| poll.commit.as_ref().is_none_or(|c| *c == commit));
    let webhook_agrees = facts.webhook.as_ref().is_none_or(|w| w.commit == commit);
    (poll_agrees && webhook_agrees).then_some(commit)
}

async fn fetch_and_read(
    ctx: &Context,
    key: &Key,
    repo: &GitRepo,
) -> Result<(String, Vec<Bundle>), Error> {
    let remote = Remote::new(&repo.spec.repo, &ctx.policy)?;
    let url = remote.url().to_owned();
    let target = Target::of(repo.spec.branch.as_deref(), repo.spec.revision.as_deref());
    let cache = ctx.cache.dir_for(repo);
    if let Some(commit) = commit_to_reuse(&ctx.status.gitrepo_facts(key), &source_of(repo)) {
        // A target or option edit at scale is hundreds of syncs at once; fetching each
        // repository again would put a git round trip (and the git server's CPU) between
        // the edit and its orphans' deletion.
        let gitrepo = repo.clone();
        let cache = cache.clone();
        let wanted = commit.clone();
        let cached = blocking(ctx.git_timeout, &url, move || {
            let cache_repo = git::open_cache(&cache)?;
            let oid = git2::Oid::from_str(&wanted)
                .ok()
                .filter(|oid| cache_repo.find_commit(*oid).is_ok());
            match oid {
                Some(oid) => Ok(Some(reader::read_bundles(&cache_repo, oid, &gitrepo)?)),
                None => Ok(None),
            }
        })
        .await?;
        if let Some(bundles) = cached {
            Metrics::count(&ctx.metrics.gitrepo_fetches, "cached");
            return Ok((commit, bundles));
        }
    }
    let creds = credentials(ctx, repo).await?;
    let gitrepo = repo.clone();
    let read = blocking(ctx.git_timeout, &url, move || {
        let cache_repo = git::open_cache(&cache)?;
        let oid = git::fetch_target(&cache_repo, &remote, &target, creds.as_ref())?;
        let bundles = reader::read_bundles(&cache_repo, oid, &gitrepo)?;
        Ok((oid.to_string(), bundles))
    })
    .await;
    Metrics::count(
        &ctx.metrics.gitrepo_fetches,
        if read.is_ok() { "fetched" } else { "error" },
    );
    read
}

async fn apply_bundles(ctx: &Context, bundles: Vec<Bundle>) -> Result<(), Error> {
    let results: Vec<Result<(), Error>> = futures::stream::iter(bundles)
        .map(|bundle| apply_bundle(ctx, bundle))
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn apply_bundle(ctx: &Context, mut bundle: Bundle) -> Result<(), Error> {
    let key = Key::of(&bundle.metadata);
    let api: Api<Bundle> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let wanted = BundleEntry::from_bundle(&bundle).content_hash;
    let existing = ctx.store.bundle(&key);
    let err = |verb, source| Error::Bundle {
        verb,
        key: key.clone(),
        source: Foreign(Box::new(source)),
    };
    let rv = match existing {
        Some(current) if current.content_hash == wanted => return Ok(()),
        Some(current) => Some(current.resource_version.clone()),
        None => match api.create(&PostParams::default(), &bundle).await {
            Ok(created) => {
                ctx.metrics.object_write("bundles", "create");
                ctx.store.apply_bundle(&created);
                return Ok(());
            }
            Err(e) if is_already_exists(&e) => {
                let current = api.get(&key.name).await.map_err(|e| err("read", e))?;
                current.metadata.resource_version
            }
            Err(e) => return Err(err("create", e)),
        },
    };
    bundle.metadata.resource_version = rv;
    let updated = api
        .replace(&key.name, &PostParams::default(), &bundle)
        .await
        .map_err(|e| err("update", e))?;
    ctx.metrics.object_write("bundles", "update");
    ctx.store.apply_bundle(&updated);
    Ok(())
}

/// Deletes the Bundles of GitRepo `key` not named in `keep`.
async fn delete_bundles(ctx: &Context, key: &Key, keep: &HashSet<String>) -> Result<(), Error> {
    let api: Api<Bundle> = Api::namespaced(ctx.client.clone(), &key.namespace);
    for bundle in ctx.store.bundles_of_repo(&key.namespace, &key.name) {
        if keep.contains(&bundle.key.name) {
            continue;
        }
        match api.delete(&bundle.key.name, &DeleteParams::default()).await {
            Ok(_) => ctx.metrics.object_write("bundles", "delete"),
            Err(e) if is_not_found(&e) => {}
            Err(source) => {
                return Err(Error::Bundle {
                    verb: "delete",
                    key: bundle.key.clone(),
                    source: Foreign(Box::new(source)),
                });
            }
        }
        ctx.store.delete_bundle(&bundle.key);
    }
    Ok(())
}

/// Sync errors are retried with backoff (up to 5 minutes apart); polls keep running anyway.
pub fn sync_error_policy(
    _key: &Key,
    _error: &ReconcileFailure<Error>,
    retries: u32,
    _ctx: &Context,
) -> Action {
    Action::requeue(backoff(retries.saturating_add(8), Duration::from_secs(300)))
}

/// The periodic resync: every GitRepo is synced again and put back on the polling schedule
/// if it fell off. (Bundles of GitRepos deleted while the controller was down are collected
/// by the apiserver: they carry an owner reference to their GitRepo.)
pub fn resync(ctx: &Context) {
    let repos = ctx.store.gitrepos();
    for repo in &repos {
        ctx.scheduler.upsert(repo);
    }
    let rearmed = ctx.scheduler.resync();
    let keys: Vec<Key> = repos.iter().map(|r| Key::of(&r.metadata)).collect();
    tracing::info!(gitrepos = keys.len(), rearmed, "resync");
    ctx.sync_queue.add_all(keys);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::WebhookFacts;
    use fleet_api::GitRepoSpec;

    fn repo() -> GitRepo {
        GitRepo::new(
            "r",
            GitRepoSpec {
                repo: "http://git/r".into(),
                branch: Some("main".into()),
                ..Default::default()
            },
        )
    }

    fn synced(commit: &str, source: &str) -> GitRepoFacts {
        GitRepoFacts {
            sync: Some(SyncFacts {
                commit: Some(commit.into()),
                source: Some(source.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn polled(commit: Option<&str>) -> Option<PollFacts> {
        Some(PollFacts {
            commit: commit.map(Into::into),
            at: Time(jiff::Timestamp::UNIX_EPOCH),
            error: None,
        })
    }

    #[test]
    fn only_what_picks_the_commit_is_part_of_the_source() {
        let base = source_of(&repo());
        let mut targets_edited = repo();
        targets_edited.spec.polling_interval = Some("1m".into());
        targets_edited.spec.paths = Some(vec!["other".into()]);
        assert_eq!(source_of(&targets_edited), base);
        for edit in [
            |r: &mut GitRepo| r.spec.repo = "http://git/other".into(),
            |r: &mut GitRepo| r.spec.branch = Some("dev".into()),
            |r: &mut GitRepo| r.spec.revision = Some("v1".into()),
            |r: &mut GitRepo| r.spec.client_secret_name = Some("creds".into()),
            |r: &mut GitRepo| r.spec.force_sync_generation = 1,
        ] {
            let mut edited = repo();
            edit(&mut edited);
            assert_ne!(source_of(&edited), base, "{:?}", edited.spec);
        }
    }

    #[test]
    fn the_synced_commit_is_reused_while_nothing_says_the_remote_moved() {
        let source = source_of(&repo());
        let mut facts = synced("abc", &source);
        assert_eq!(commit_to_reuse(&facts, &source).as_deref(), Some("abc"));
        facts.poll = polled(Some("abc"));
        facts.webhook = Some(WebhookFacts {
            commit: "abc".into(),
            at: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        assert_eq!(commit_to_reuse(&facts, &source).as_deref(), Some("abc"));
        // A failed poll knows nothing new.
        facts.poll = polled(None);
        assert_eq!(commit_to_reuse(&facts, &source).as_deref(), Some("abc"));
    }

    #[test]
    fn anything_that_says_otherwise_fetches() {
        let source = source_of(&repo());
        assert_eq!(commit_to_reuse(&GitRepoFacts::default(), &source), None);

        let mut newer_poll = synced("abc", &source);
        newer_poll.poll = polled(Some("def"));
        assert_eq!(commit_to_reuse(&newer_poll, &source), None);

        let mut newer_webhook = synced("abc", &source);
        newer_webhook.webhook = Some(WebhookFacts {
            commit: "def".into(),
            at: Time(jiff::Timestamp::UNIX_EPOCH),
        });
        assert_eq!(commit_to_reuse(&newer_webhook, &source), None);

        let mut failed = synced("abc", &source);
        failed.sync.as_mut().unwrap().error = Some("unreachable".into());
        assert_eq!(commit_to_reuse(&failed, &source), None);

        assert_eq!(commit_to_reuse(&synced("abc", "elsewhere"), &source), None);
    }
}
