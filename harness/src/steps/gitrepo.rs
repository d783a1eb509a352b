//! GitRepos: create one per repository, edit their targets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_controller::api::{GitRepo, GitRepoSpec, labels};
use gitserver::forge::bulk::path_dir;
use gitserver::forge::types::CreateHookOption;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};

use super::cluster::{create_all, ensure_namespace, ownership_labels};
use super::collect::collect;
use super::world::{GitRepoInfo, to_git_target};
use super::{Context, StepError, StepOutput};
use crate::measure::recorder::{Change, Kind};
use crate::progress::Task;
use crate::suite::{CreateGitRepos, EditTargets, WaitFor};

/// Concurrent API calls when creating or editing many GitRepos.
const CONCURRENCY: usize = 16;

/// Name of the Secret holding the webhook secret (`spec.webhookSecret`).
const WEBHOOK_SECRET_NAME: &str = "fleetbench-webhook";
/// The HMAC key the git server signs pushes with and the controller checks them against.
const WEBHOOK_SECRET: &str = "fleetbench-webhook-secret";

/// The Secret `spec.webhookSecret` names, with the key under each provider's name as Fleet
/// reads it (`gogs` for Gitea, `github`), so signed webhooks are verified, not waved through.
async fn create_webhook_secret(ctx: &Context<'_>, namespace: &str) -> Result<(), StepError> {
    use k8s_openapi::api::core::v1::Secret;
    let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(WEBHOOK_SECRET_NAME.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(ownership_labels(&ctx.suite.name)),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([
            ("gogs".to_string(), WEBHOOK_SECRET.to_string()),
            ("github".to_string(), WEBHOOK_SECRET.to_string()),
        ])),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(StepError::Kube {
            action: format!("create the webhook Secret {namespace}/{WEBHOOK_SECRET_NAME}"),
            source: error,
        }),
    }
}

/// `create_gitrepos`: one GitRepo per repository that has none yet.
pub async fn create_gitrepos(
    ctx: &mut Context<'_>,
    spec: &CreateGitRepos,
    label: &str,
) -> Result<StepOutput, StepError> {
    let namespace = ctx.namespace().to_string();
    ensure_namespace(ctx, &namespace).await?;
    let interval = spec
        .polling_interval
        .unwrap_or(ctx.suite.scale.polling_interval);
    let taken: BTreeSet<usize> = ctx.world.gitrepos.iter().map(|g| g.repo).collect();
    let todo: Vec<usize> = (0..ctx.world.repos.len())
        .filter(|i| !taken.contains(i))
        .collect();
    let webhook = if spec.webhook {
        Some(ctx.webhook_url.clone().ok_or_else(|| {
            StepError::Unsupported(
                "create_gitrepos with webhook: true needs the controller's webhook URL (bundled controller, or --webhook-url with --controller external)".to_string(),
            )
        })?)
    } else {
        None
    };
    if webhook.is_some() {
        create_webhook_secret(ctx, &namespace).await?;
    }
    if let Some(url) = &webhook {
        let task = Task::start(
            format!("{label}: register webhooks"),
            Some(todo.len() as u64),
        );
        let forge = ctx.forge.clone();
        let repos: Vec<(String, String)> = todo
            .iter()
            .map(|i| {
                (
                    ctx.world.repos[*i].owner.clone(),
                    ctx.world.repos[*i].name.clone(),
                )
            })
            .collect();
        create_all(repos, CONCURRENCY, &task, |(owner, name)| {
            let forge = forge.clone();
            let url = url.clone();
            async move {
                forge
                    .create_hook(
                        &owner,
                        &name,
                        &CreateHookOption::push_json(url, WEBHOOK_SECRET),
                    )
                    .await
                    .map(|_| ())
                    .map_err(StepError::forge(format!(
                        "register a webhook on {owner}/{name}"
                    )))
            }
        })
        .await?;
        task.finish();
    }
    let api: Api<GitRepo> = Api::namespaced(ctx.kube.clone(), &namespace);
    let targets: Vec<_> = spec.targets.iter().map(to_git_target).collect();
    let mut objects = Vec::new();
    let mut infos = Vec::new();
    for index in &todo {
        let repo = &ctx.world.repos[*index];
        let name = repo.name.to_lowercase();
        objects.push((
            name.clone(),
            GitRepo {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    labels: Some(ownership_labels(&ctx.suite.name)),
                    ..ObjectMeta::default()
                },
                spec: GitRepoSpec {
                    repo: format!(
                        "{}/{}/{}.git",
                        ctx.git_proxy.url().trim_end_matches('/'),
                        repo.owner,
                        repo.name
                    ),
                    branch: Some(repo.branch.clone()),
                    paths: Some((0..repo.paths).map(path_dir).collect()),
                    polling_interval: Some(interval.to_string()),
                    disable_polling: spec.disable_polling,
                    webhook_secret: if spec.webhook {
                        WEBHOOK_SECRET_NAME.to_string()
                    } else {
                        String::new()
                    },
                    targets: targets.clone(),
                    ..GitRepoSpec::default()
                },
                status: None,
            },
        ));
        infos.push(GitRepoInfo {
            name,
            repo: *index,
            targets: spec.targets.clone(),
            polling_interval_s: interval.as_secs_f64(),
        });
    }
    let created_at: parking_lot::Mutex<BTreeMap<String, Instant>> =
        parking_lot::Mutex::new(BTreeMap::new());
    let cursor = ctx.recorder.cursor();
    let task = Task::start(
        format!("{label}: create GitRepos"),
        Some(objects.len() as u64),
    );
    create_all(objects, CONCURRENCY, &task, |(name, object)| {
        let api = api.clone();
        let created_at = &created_at;
        let namespace = namespace.clone();
        async move {
            let sent = Instant::now();
            api.create(&PostParams::default(), &object)
                .await
                .map_err(StepError::kube(format!(
                    "create GitRepo {namespace}/{name}"
                )))?;
            created_at.lock().insert(name, sent);
            Ok(())
        }
    })
    .await?;
    task.finish();
    let created_at = created_at.into_inner();
    ctx.world.gitrepos.extend(infos.iter().cloned());

    let expected_bundles: usize = infos.iter().map(|g| ctx.world.repos[g.repo].paths).sum();
    let expected_bds: usize = infos
        .iter()
        .map(|g| ctx.world.expected_bundledeployments(g))
        .sum();
    let names: BTreeSet<String> = infos.iter().map(|g| g.name.clone()).collect();
    let mut output = StepOutput {
        message: format!(
            "{} GitRepos ({} Bundles, {} BundleDeployments expected)",
            infos.len(),
            expected_bundles,
            expected_bds
        ),
        ..StepOutput::default()
    };
    match spec.wait {
        WaitFor::Nothing => {}
        WaitFor::Bundles => {
            let task = Task::start(format!("{label}: Bundles"), Some(expected_bundles as u64));
            let seen = ctx
                .recorder
                .wait_until(spec.timeout.0, &ctx.cancel, |state| {
                    let count = state
                        .of_kind(Kind::Bundle)
                        .filter(|(key, facts)| {
                            key.namespace == namespace
                                && facts
                                    .label(labels::REPO_NAME)
                                    .is_some_and(|r| names.contains(r))
                        })
                        .count();
                    task.set(count as u64);
                    (count >= expected_bundles).then_some(count)
                })
                .await;
            task.finish();
            seen.map_err(|e| {
                StepError::from_wait(
                    e,
                    "Bundles for the new GitRepos",
                    format!("{expected_bundles} expected"),
                )
            })?;
        }
        WaitFor::Bundledeployments => {
            let task = Task::start(
                format!("{label}: BundleDeployments"),
                Some(expected_bds as u64),
            );
            let collected = collect(
                ctx,
                cursor,
                expected_bds,
                spec.timeout.0,
                &task,
                |observed| {
                    if observed.key.kind != Kind::BundleDeployment
                        || observed.change != Change::Added
                    {
                        return None;
                    }
                    let repo = observed.facts.label(labels::REPO_NAME)?;
                    let start = created_at.get(repo)?;
                    Some((
                        (observed.key.namespace.clone(), observed.key.name.clone()),
                        *start,
                    ))
                },
            )
            .await?;
            task.finish();
            if collected.missing() > 0 {
                return Err(StepError::Timeout {
                    what: "BundleDeployments for the new GitRepos".to_string(),
                    after: spec.timeout.0,
                    progress: format!("{} of {expected_bds} exist", collected.arrivals.len()),
                });
            }
            if let Some(name) = &spec.measure {
                output.measurements.push((
                    name.clone(),
                    collected.measurement(
                        "GitRepo creation to each of its BundleDeployments",
                        Vec::new(),
                    ),
                ));
            }
        }
    }
    Ok(output)
}

/// `edit_targets`: new targets for some GitRepos; time each orphaned BundleDeployment's
/// deletion.
pub async fn edit_targets(
    ctx: &mut Context<'_>,
    spec: &EditTargets,
    label: &str,
) -> Result<StepOutput, StepError> {
    let namespace = ctx.namespace().to_string();
    let count = spec.gitrepos.resolve(ctx.world.gitrepos.len());
    let edited: Vec<GitRepoInfo> = ctx.world.gitrepos[..count].to_vec();
    // Clusters each edited GitRepo stops reaching.
    let mut orphan_namespaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for gitrepo in &edited {
        let before = ctx.world.clusters_for(&gitrepo.targets);
        let after = ctx.world.clusters_for(&spec.targets);
        let lost: BTreeSet<String> = before
            .difference(&after)
            .filter_map(|c| ctx.world.cluster(c).map(|c| c.namespace.clone()))
            .collect();
        orphan_namespaces.insert(gitrepo.name.clone(), lost);
    }
    let orphans: BTreeSet<(String, String)> = ctx.recorder.with_state(|state| {
        state
            .of_kind(Kind::BundleDeployment)
            .filter(|(key, facts)| {
                facts
                    .label(labels::REPO_NAME)
                    .and_then(|r| orphan_namespaces.get(r))
                    .is_some_and(|lost| lost.contains(&key.namespace))
            })
            .map(|(key, _)| (key.namespace.clone(), key.name.clone()))
            .collect()
    });
    let expected: usize = edited
        .iter()
        .map(|g| ctx.world.repos[g.repo].paths * orphan_namespaces[&g.name].len())
        .sum();
    if orphans.len() != expected {
        tracing::warn!(
            found = orphans.len(),
            expected,
            "BundleDeployments that the edit orphans differ from the prediction; measuring the ones that exist"
        );
    }
    let api: Api<GitRepo> = Api::namespaced(ctx.kube.clone(), &namespace);
    let targets: Vec<_> = spec.targets.iter().map(to_git_target).collect();
    let patch = serde_json::json!({"spec": {"targets": targets}});
    let before_requests = ctx.scrape_requests().await?;
    let cursor = ctx.recorder.cursor();
    let edited_at: parking_lot::Mutex<BTreeMap<String, Instant>> =
        parking_lot::Mutex::new(BTreeMap::new());
    let task = Task::start(format!("{label}: edit targets"), Some(count as u64));
    create_all(edited.clone(), CONCURRENCY, &task, |gitrepo| {
        let api = api.clone();
        let patch = patch.clone();
        let edited_at = &edited_at;
        async move {
            let sent = Instant::now();
            api.patch(
                &gitrepo.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(StepError::kube(format!(
                "edit targets of GitRepo {}",
                gitrepo.name
            )))?;
            edited_at.lock().insert(gitrepo.name, sent);
            Ok(())
        }
    })
    .await?;
    task.finish();
    let edited_at = edited_at.into_inner();
    for gitrepo in &mut ctx.world.gitrepos[..count] {
        gitrepo.targets = spec.targets.clone();
    }
    let task = Task::start(
        format!("{label}: orphans deleted"),
        Some(orphans.len() as u64),
    );
    let collected = collect(
        ctx,
        cursor,
        orphans.len(),
        spec.timeout.0,
        &task,
        |observed| {
            if observed.key.kind != Kind::BundleDeployment || observed.change != Change::Deleted {
                return None;
            }
            let key = (observed.key.namespace.clone(), observed.key.name.clone());
            if !orphans.contains(&key) {
                return None;
            }
            let repo = observed.facts.label(labels::REPO_NAME)?;
            Some((key, *edited_at.get(repo)?))
        },
    )
    .await?;
    task.finish();
    let mut output = StepOutput {
        message: format!(
            "edited {count} GitRepos: {}/{} orphaned BundleDeployments deleted",
            collected.arrivals.len(),
            orphans.len()
        ),
        ..StepOutput::default()
    };
    if let Some(name) = &spec.measure {
        let arrived: BTreeSet<&(String, String)> =
            collected.arrivals.iter().map(|(k, _)| k).collect();
        let missing = orphans
            .iter()
            .filter(|k| !arrived.contains(k))
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        output.measurements.push((
            name.clone(),
            collected.measurement(
                "target edit to each orphaned BundleDeployment's deletion (watch DELETED)",
                missing,
            ),
        ));
    }
    if !spec.count_writes.is_empty() {
        ctx.sleep(spec.settle.0).await?;
        let after = ctx.scrape_requests().await?;
        for count in &spec.count_writes {
            output.measurements.push(super::status::writes_measurement(
                count,
                &after.since(&before_requests),
            ));
        }
    }
    Ok(output)
}
