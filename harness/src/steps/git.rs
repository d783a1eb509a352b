//! Git repositories: create them with manifests, commit to many at once, break and heal them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fleet_api::labels;
use futures::StreamExt as _;
use gitserver::RequestFilter;
use gitserver::forge::bulk::{self, ManifestLayout};
use gitserver::forge::types::{ChangeFileOperation, ChangeFilesOptions, CreateRepoOption};
use gitserver::forge::{ForgeClient, ForgeError};

use super::collect::collect;
use super::world::RepoInfo;
use super::{Context, StepError, StepOutput};
use crate::gitproxy::ProxyFault;
use crate::measure::recorder::{Kind, ObjectKey};
use crate::progress::Task;
use crate::results::Measurement;
use crate::stages;
use crate::suite::{BreakMode, BreakRepos, Commit, CreateRepos, HealRepos};

/// Concurrent forge requests when creating repositories.
const CREATE_CONCURRENCY: usize = 16;

/// Creates one repository with `paths` manifest directories; returns its default branch
/// and head commit (none when the forge's answer named no commit). (Owned arguments: the
/// future is spawned onto other threads.)
async fn create_one(
    forge: ForgeClient,
    owner: String,
    name: String,
    paths: usize,
) -> Result<(String, Option<String>), StepError> {
    let repository = forge
        .create_repo(&CreateRepoOption {
            private: false,
            ..CreateRepoOption::named(name.clone())
        })
        .await
        .map_err(StepError::forge(format!(
            "create repository {owner}/{name}"
        )))?;
    let layout = ManifestLayout {
        paths,
        ..ManifestLayout::default()
    };
    let files = ChangeFilesOptions {
        files: bulk::initial_files(&name, &layout),
        message: format!("fleetbench: {paths} paths"),
        ..ChangeFilesOptions::default()
    };
    let committed = forge
        .change_files(&owner, &name, &files)
        .await
        .map_err(StepError::forge(format!(
            "commit manifests to {owner}/{name}"
        )))?;
    let branch = if repository.default_branch.is_empty() {
        "main".to_string()
    } else {
        repository.default_branch
    };
    Ok((
        branch,
        committed
            .commit
            .map(|c| c.sha)
            .filter(|sha| !sha.is_empty()),
    ))
}

/// The measurement problem of commits whose SHA the forge did not say: nothing can be
/// matched to them (a Bundle without a commit label would match an empty one), so they are
/// left out of what the step measures, and the results say so.
fn unknown_shas(what: &str, repos: &[String]) -> Option<String> {
    (!repos.is_empty()).then(|| {
        format!(
            "the forge's answer to {} of {} named no commit SHA ({}); {what}",
            repos.len(),
            if repos.len() == 1 {
                "one commit"
            } else {
                "the commits"
            },
            repos.join(", ")
        )
    })
}

/// `create_repos`.
pub async fn create_repos(
    ctx: &mut Context<'_>,
    spec: &CreateRepos,
    label: &str,
) -> Result<StepOutput, StepError> {
    let count = spec.count.unwrap_or(ctx.suite.scale.gitrepos) as usize;
    let paths = spec.paths.unwrap_or(ctx.suite.scale.paths) as usize;
    let owner = ctx.endpoints.git_user.clone();
    let first = ctx.world.repos.len();
    let prefix = ctx.endpoints.repo_prefix.clone();
    let names: Vec<String> = (first..first + count)
        .map(|i| format!("{prefix}-{i:04}"))
        .collect();
    let task = Task::start(format!("{label}: create repositories"), Some(count as u64));
    let forge = ctx.forge.clone();
    let mut stream = futures::stream::iter(names.into_iter().map(|name| {
        let forge = forge.clone();
        let owner = owner.clone();
        async move {
            let created = create_one(forge, owner, name.clone(), paths).await;
            (name, created)
        }
    }))
    .buffered(CREATE_CONCURRENCY);
    let mut without_sha = Vec::new();
    while let Some((name, created)) = stream.next().await {
        if ctx.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        let (branch, head) = created?;
        if head.is_none() {
            without_sha.push(name.clone());
        }
        // An unknown head stays empty: later steps treat that as "not known", never as a
        // commit to match.
        let head = head.unwrap_or_default();
        ctx.world.repos.push(RepoInfo {
            owner: owner.clone(),
            name,
            paths,
            branch,
            head,
            revision: 0,
            broken_since: None,
        });
        task.inc(1);
    }
    task.finish();
    Ok(StepOutput {
        message: format!("{count} repositories with {paths} paths each"),
        quality: unknown_shas(
            "convergence to these repositories' first commit cannot be checked",
            &without_sha,
        )
        .into_iter()
        .collect(),
        ..StepOutput::default()
    })
}

/// One commit updating every manifest of a repository; returns when the request was sent,
/// when the git server's answer arrived, and the sha (none when the answer named none).
async fn commit_one(
    forge: ForgeClient,
    owner: String,
    name: String,
    paths: usize,
    revision: u64,
) -> (Instant, Instant, Result<Option<String>, StepError>) {
    let options = ChangeFilesOptions {
        files: (0..paths)
            .map(|p| {
                ChangeFileOperation::update(
                    bulk::manifest_path(p),
                    bulk::configmap_manifest(&name, p, revision),
                )
            })
            .collect(),
        message: format!("fleetbench: revision {revision}"),
        ..ChangeFilesOptions::default()
    };
    let sent = Instant::now();
    let result = forge
        .change_files(&owner, &name, &options)
        .await
        .map(|files| files.commit.map(|c| c.sha).filter(|sha| !sha.is_empty()))
        .map_err(StepError::forge(format!("commit to {owner}/{name}")));
    (sent, Instant::now(), result)
}

/// How long the stages after the Bundles may see no progress before the step stops waiting
/// for the rest (a cluster cut off, an agent that never reports): the step's own `settle`
/// when longer.
const STAGE_STALL: Duration = Duration::from_secs(5);
/// How often the stage marks are brought up to date while waiting.
const STAGE_POLL: Duration = Duration::from_millis(200);

/// The commit's BundleDeployments as they are before the push: each with its Bundle and its
/// current deploymentID, so a new one can be told from the old.
fn deployments_before(
    ctx: &Context<'_>,
    gitrepos: &BTreeSet<&String>,
) -> (
    BTreeMap<String, String>,
    BTreeMap<ObjectKey, stages::Expected>,
) {
    let namespace = ctx.namespace().to_string();
    ctx.recorder.with_state(|state| {
        let bundles: BTreeMap<String, String> = state
            .of_kind(Kind::Bundle)
            .filter_map(|(key, facts)| {
                let repo = facts.label(labels::REPO_NAME)?;
                (key.namespace == namespace && gitrepos.iter().any(|g| g.as_str() == repo))
                    .then(|| (key.name.clone(), repo.to_string()))
            })
            .collect();
        let deployments = state
            .of_kind(Kind::BundleDeployment)
            .filter_map(|(key, facts)| {
                let bundle = facts.label(labels::BUNDLE_NAME)?;
                let bundle_namespace = facts.label(labels::BUNDLE_NAMESPACE)?;
                (bundle_namespace == namespace && bundles.contains_key(bundle) && !facts.deleting)
                    .then(|| {
                        (
                            key.clone(),
                            stages::Expected {
                                bundle: bundle.to_string(),
                                old_id: facts.deployment_id.clone(),
                            },
                        )
                    })
            })
            .collect();
        (bundles, deployments)
    })
}

/// Follows the commit's BundleDeployments to ready, until all are, the step's deadline
/// passes, or nothing moved for a while; then adds the git side (ref listings through the
/// proxy, webhook deliveries where the git server reports them) and returns the stage
/// measurements named after `base`.
async fn stage_measurements(
    ctx: &Context<'_>,
    plan: &stages::Plan,
    cursor: usize,
    deadline: Instant,
    stall: Duration,
    base: &str,
    clock: &stages::Clock,
) -> Result<Vec<(String, Measurement)>, StepError> {
    let mut marks = stages::Marks::default();
    let mut position = cursor;
    let mut progress = 0;
    let mut moved = Instant::now();
    loop {
        ctx.recorder.with_state(|state| {
            for observed in &state.log[position..] {
                marks.observe(plan, observed);
            }
            position = state.log.len();
        });
        if marks.all_ready(plan) || Instant::now() >= deadline {
            break;
        }
        if marks.progress() != progress {
            progress = marks.progress();
            moved = Instant::now();
        } else if moved.elapsed() >= stall {
            break;
        }
        ctx.sleep(STAGE_POLL).await?;
    }
    let mut webhook_problem = None;
    let gitrepos: BTreeMap<&String, usize> = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| (&g.name, g.repo))
        .collect();
    for (gitrepo, pushed) in &plan.pushes {
        let Some(repo) = gitrepos.get(gitrepo).and_then(|i| ctx.world.repos.get(*i)) else {
            continue;
        };
        let full_name = repo.full_name();
        let entries = ctx
            .git_proxy
            .requests(&RequestFilter::repo(full_name.clone()).since(clock.wall(pushed.accepted)));
        marks.notice_from_git_log(gitrepo, pushed, &entries, clock);
        if webhook_problem.is_some() {
            continue;
        }
        match ctx
            .forge
            .extensions()
            .deliveries(Some(&full_name), None)
            .await
        {
            Ok(deliveries) => {
                for delivery in deliveries
                    .iter()
                    .filter(|d| d.success && d.after == pushed.sha)
                {
                    let done = i128::from(delivery.queued_unix_nanos)
                        + (delivery.duration_ms.max(0.0) * 1e6) as i128;
                    marks.notice(gitrepo, clock.instant(done), stages::Notice::Webhook);
                }
            }
            Err(ForgeError::NotFleetbench { .. }) => {
                webhook_problem = Some(
                    "the git server does not report webhook deliveries (a plain Gitea): notifications are the first ref listings only".to_string(),
                );
            }
            Err(error) => {
                webhook_problem = Some(format!(
                    "webhook deliveries could not be read ({error}): notifications are the first ref listings only"
                ));
            }
        }
    }
    let mut measurements = marks.measurements(plan, base);
    if let Some(problem) = webhook_problem {
        for (name, measurement) in &mut measurements {
            if name.ends_with("/notify") {
                measurement.notes.push(problem.clone());
            }
        }
    }
    Ok(measurements)
}

/// `commit`: one commit to each selected repository, all at once, then time the controller
/// picking each up (Bundles relabelled with the commit, GitRepo `status.commit`).
pub async fn commit(
    ctx: &mut Context<'_>,
    spec: &Commit,
    label: &str,
) -> Result<StepOutput, StepError> {
    let count = spec.repos.resolve(ctx.world.repos.len());
    // Which GitRepo watches which repository.
    let gitrepo_of: BTreeMap<usize, String> = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| (g.repo, g.name.clone()))
        .collect();
    let before_requests = ctx.scrape_requests().await?;
    let committed_gitrepos: BTreeSet<&String> =
        (0..count).filter_map(|i| gitrepo_of.get(&i)).collect();
    let (plan_bundles, plan_deployments) = deployments_before(ctx, &committed_gitrepos);
    let clock = stages::Clock::now();
    let cursor = ctx.recorder.cursor();
    let forge = ctx.forge.clone();
    let jobs: Vec<_> = (0..count)
        .map(|index| {
            let repo = &ctx.world.repos[index];
            commit_one(
                forge.clone(),
                repo.owner.clone(),
                repo.name.clone(),
                repo.paths,
                repo.revision + 1,
            )
        })
        .collect();
    // Every commit in flight at once: the burst is the point.
    let results = futures::future::join_all(jobs).await;
    // (sha, sent) per GitRepo.
    let mut commits: BTreeMap<String, (String, Instant)> = BTreeMap::new();
    let mut plan = stages::Plan {
        bundles: plan_bundles,
        deployments: plan_deployments,
        ..stages::Plan::default()
    };
    let mut failures = Vec::new();
    let mut without_sha = Vec::new();
    for (index, (sent, accepted, result)) in results.into_iter().enumerate() {
        match result {
            Ok(sha) => {
                let repo = &mut ctx.world.repos[index];
                repo.revision += 1;
                let Some(sha) = sha else {
                    // Empty means "not known" to later steps.
                    repo.head = String::new();
                    without_sha.push(repo.full_name());
                    continue;
                };
                repo.head = sha.clone();
                if let Some(gitrepo) = gitrepo_of.get(&index) {
                    commits.insert(gitrepo.clone(), (sha.clone(), sent));
                    plan.pushes.insert(
                        gitrepo.clone(),
                        stages::Pushed {
                            sha,
                            sent,
                            accepted,
                        },
                    );
                }
            }
            Err(error) => failures.push(crate::error_text(&error)),
        }
    }
    // What cannot be matched to a commit is not expected of it.
    plan.bundles
        .retain(|_, gitrepo| plan.pushes.contains_key(gitrepo));
    let known_bundles: BTreeSet<String> = plan.bundles.keys().cloned().collect();
    plan.deployments
        .retain(|_, expected| known_bundles.contains(&expected.bundle));
    if !failures.is_empty() {
        return Err(StepError::Unsupported(format!(
            "{} of {count} commits failed: {}",
            failures.len(),
            failures.join("; ")
        )));
    }
    let namespace = ctx.namespace().to_string();
    let bundles: BTreeSet<(String, String)> = ctx.recorder.with_state(|state| {
        state
            .of_kind(Kind::Bundle)
            .filter_map(|(key, facts)| {
                let repo = facts.label(labels::REPO_NAME)?;
                (key.namespace == namespace && commits.contains_key(repo))
                    .then(|| (repo.to_string(), key.name.clone()))
            })
            .collect()
    });
    let mut output = StepOutput::default();
    output.quality.extend(unknown_shas(
        "their GitRepos, Bundles and stages are not measured",
        &without_sha,
    ));
    let task = Task::start(
        format!("{label}: {count} commits picked up"),
        Some(bundles.len() as u64),
    );
    let bundle_names: BTreeSet<&String> = bundles.iter().map(|(_, b)| b).collect();
    let deadline = Instant::now() + spec.timeout.0;
    let by_bundle = collect(
        ctx,
        cursor,
        bundles.len(),
        spec.timeout.0,
        &task,
        |observed| {
            if observed.key.kind != Kind::Bundle || !bundle_names.contains(&observed.key.name) {
                return None;
            }
            let repo = observed.facts.label(labels::REPO_NAME)?;
            let (sha, sent) = commits.get(repo)?;
            (observed.facts.commit == *sha).then(|| (observed.key.name.clone(), *sent))
        },
    )
    .await?;
    task.finish();
    let remaining = deadline.saturating_duration_since(Instant::now());
    let gitrepo_task = Task::start(
        format!("{label}: GitRepos at the new commit"),
        Some(commits.len() as u64),
    );
    let by_gitrepo = collect(
        ctx,
        cursor,
        commits.len(),
        remaining,
        &gitrepo_task,
        |observed| {
            if observed.key.kind != Kind::GitRepo || observed.key.namespace != namespace {
                return None;
            }
            let (sha, sent) = commits.get(&observed.key.name)?;
            (observed.facts.commit == *sha).then(|| (observed.key.name.clone(), *sent))
        },
    )
    .await?;
    gitrepo_task.finish();
    // Every commit gets its stages, named after the step's measurement so SLOs can name
    // them; a step that measures nothing still shows them, under its own label.
    let base = spec
        .measure
        .clone()
        .or_else(|| spec.measure_gitrepo.clone())
        .unwrap_or_else(|| label.replace(' ', "-"));
    output.measurements.extend(
        stage_measurements(
            ctx,
            &plan,
            cursor,
            deadline,
            spec.settle.0.max(STAGE_STALL),
            &base,
            &clock,
        )
        .await?,
    );
    output.message = format!(
        "{count} commits: {}/{} Bundles and {}/{} GitRepos at the new commit",
        by_bundle.arrivals.len(),
        bundles.len(),
        by_gitrepo.arrivals.len(),
        commits.len()
    );
    if let Some(name) = &spec.measure {
        let arrived: BTreeSet<&String> = by_bundle.arrivals.iter().map(|(k, _)| k).collect();
        let missing = bundles
            .iter()
            .filter(|(_, b)| !arrived.contains(b))
            .map(|(_, b)| b.clone())
            .collect();
        output.measurements.push((
            name.clone(),
            by_bundle.measurement(
                "commit to each of the repository's Bundles labelled with the new commit",
                missing,
            ),
        ));
    }
    if let Some(name) = &spec.measure_gitrepo {
        let arrived: BTreeSet<&String> = by_gitrepo.arrivals.iter().map(|(k, _)| k).collect();
        let missing = commits
            .keys()
            .filter(|g| !arrived.contains(g))
            .cloned()
            .collect();
        output.measurements.push((
            name.clone(),
            by_gitrepo.measurement("commit to the GitRepo's status.commit", missing),
        ));
    }
    if !spec.count_writes.is_empty() {
        // Until the controller's writes stop (bounded), so deferred work is charged to the
        // commit that caused it.
        let quiet =
            super::quiet::until_quiet(ctx, &before_requests, spec.settle, spec.timeout, label)
                .await?;
        output.quality.extend(quiet.problem());
        output.measurements.extend(super::collect::write_counts(
            &spec.count_writes,
            &quiet.after.since(&before_requests),
            &quiet.note,
        ));
    }
    Ok(output)
}

/// How long a rate-limited repository tells clients to wait (`Retry-After`).
const RATE_LIMIT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// `break_repos`: the git proxy fails every git request of the first repositories, the
/// same way in front of any git server.
pub async fn break_repos(
    ctx: &mut Context<'_>,
    spec: &BreakRepos,
) -> Result<StepOutput, StepError> {
    let count = spec.repos.resolve(ctx.world.repos.len());
    let fault = match spec.mode {
        BreakMode::Refuse => ProxyFault::Refuse,
        BreakMode::Disappear => ProxyFault::NotFound,
        BreakMode::RateLimit => ProxyFault::RateLimit {
            retry_after: RATE_LIMIT_RETRY_AFTER,
        },
    };
    let since = jiff::Timestamp::now();
    for repo in &mut ctx.world.repos[..count] {
        ctx.git_proxy.set_fault(&repo.full_name(), fault);
        repo.broken_since = Some(since);
    }
    Ok(StepOutput {
        message: format!("{count} repositories now {:?}", spec.mode),
        ..StepOutput::default()
    })
}

/// `heal_repos`: clears the faults, after checking in the proxy's log that the controller
/// really met them: a hiccup nobody ran into tested nothing, so the step fails then.
pub async fn heal_repos(ctx: &mut Context<'_>, spec: &HealRepos) -> Result<StepOutput, StepError> {
    let count = spec.repos.resolve(ctx.world.repos.len());
    let mut unexercised = Vec::new();
    let mut failed_requests = 0;
    for repo in &mut ctx.world.repos[..count] {
        let full_name = repo.full_name();
        ctx.git_proxy.clear_fault(&full_name);
        let Some(since) = repo.broken_since.take() else {
            continue;
        };
        let refused = ctx
            .git_proxy
            .requests(&RequestFilter::repo(full_name.clone()).since(since))
            .iter()
            .filter(|entry| entry.status >= 400)
            .count();
        if refused == 0 {
            unexercised.push(full_name);
        }
        failed_requests += refused;
    }
    if !unexercised.is_empty() {
        return Err(StepError::Unsupported(format!(
            "the controller made no git request to {} of the {count} broken repositories while they were broken ({}), so the hiccup tested nothing; lengthen the break or shorten the polling interval",
            unexercised.len(),
            unexercised.join(", ")
        )));
    }
    Ok(StepOutput {
        message: format!(
            "{count} repositories healed ({failed_requests} git requests failed while they were broken)"
        ),
        ..StepOutput::default()
    })
}
