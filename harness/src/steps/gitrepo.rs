//! GitRepos: create one per repository, edit their targets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_api::{GitRepo, GitRepoSpec, labels};
use gitserver::forge::bulk::path_dir;
use gitserver::forge::types::CreateHookOption;
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};

use super::batch::create_or_patch_all;
use super::cluster::{ensure_namespace, ownership_labels};
use super::collect::{collect, write_counts};
use super::quiet::until_quiet;
use super::world::GitRepoInfo;
use super::{Context, StepError, StepOutput, World};
use crate::measure::recorder::{Change, Kind, Observed, State};
use crate::progress::Task;
use crate::results::Measurement;
use crate::slo::{Stat, Unit};
use crate::suite::{CreateGitRepos, EditTargets, Target, WaitFor};

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
            source: error.into(),
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
        create_or_patch_all(repos, CONCURRENCY, &task, |(owner, name)| {
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
                    // Polling GitRepos clone through the git proxy, which records and breaks
                    // their git traffic. A webhook names its repository by the git host's own
                    // URL, and controllers (Fleet's too) match it to GitRepos by that URL, so
                    // webhook-driven GitRepos name the git server directly.
                    repo: format!(
                        "{}/{}/{}.git",
                        if spec.webhook {
                            ctx.endpoints.git_clone_base.trim_end_matches('/')
                        } else {
                            ctx.git_proxy.url().trim_end_matches('/')
                        },
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
                    targets: spec.targets.clone(),
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
    create_or_patch_all(objects, CONCURRENCY, &task, |(name, object)| {
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

/// What the targeting oracle says an edit of targets does to the BundleDeployments of the
/// edited GitRepos, keyed by (cluster namespace, name).
#[derive(Debug, Default, PartialEq)]
struct EditPlan {
    /// BundleDeployments on clusters the GitRepos stop reaching: the controller must delete
    /// these.
    orphans: BTreeSet<(String, String)>,
    /// BundleDeployments on clusters they still reach, with their UIDs: these must stay the
    /// same objects.
    survivors: BTreeMap<(String, String), String>,
}

/// Predicts the orphans and survivors of giving `edited` the targets `targets`, from the
/// harness's own targeting oracle, and checks that what exists now is what the oracle says
/// should: a mismatch means the measurement would time the wrong objects, so it is an error
/// of the step, not a warning.
fn plan_edit(
    world: &World,
    edited: &[GitRepoInfo],
    targets: &[Target],
    state: &State,
    namespace: &str,
) -> Result<EditPlan, Mismatch> {
    let after = world.clusters_for(targets);
    let mut plan = EditPlan::default();
    let mut problems = Vec::new();
    // One pass over each kind, grouped by GitRepo: at 300 GitRepos a scan per GitRepo
    // would walk every BundleDeployment 300 times.
    let mut bundles_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (key, facts) in state.of_kind(Kind::Bundle) {
        if let Some(repo) = facts.label(labels::REPO_NAME)
            && key.namespace == namespace
        {
            bundles_of.entry(repo).or_default().insert(key.name.clone());
        }
    }
    let mut deployments_of: BTreeMap<&str, BTreeMap<(String, String), String>> = BTreeMap::new();
    for (key, facts) in state.of_kind(Kind::BundleDeployment) {
        if let Some(repo) = facts.label(labels::REPO_NAME) {
            deployments_of
                .entry(repo)
                .or_default()
                .insert((key.namespace.clone(), key.name.clone()), facts.uid.clone());
        }
    }
    for gitrepo in edited {
        let bundles = bundles_of.remove(gitrepo.name.as_str()).unwrap_or_default();
        let paths = world.repos[gitrepo.repo].paths;
        if bundles.len() != paths {
            problems.push(format!(
                "GitRepo {} has {} Bundles, its repository {} paths",
                gitrepo.name,
                bundles.len(),
                paths
            ));
            continue;
        }
        let existing = deployments_of
            .remove(gitrepo.name.as_str())
            .unwrap_or_default();
        let before = world.clusters_for(&gitrepo.targets);
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        for cluster in &before {
            let Some(info) = world.cluster(cluster) else {
                continue;
            };
            for bundle in &bundles {
                let key = (info.namespace.clone(), bundle.clone());
                if after.contains(cluster) {
                    let uid = existing.get(&key).cloned().unwrap_or_default();
                    plan.survivors.insert(key.clone(), uid);
                } else {
                    plan.orphans.insert(key.clone());
                }
                expected.insert(key);
            }
        }
        let unexpected: Vec<String> = existing
            .keys()
            .filter(|k| !expected.contains(*k))
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        let absent: Vec<String> = expected
            .iter()
            .filter(|k| !existing.contains_key(*k))
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        if !unexpected.is_empty() || !absent.is_empty() {
            problems.push(format!(
                "GitRepo {}: {} BundleDeployments its targets do not select ({}), {} it selects are absent ({})",
                gitrepo.name,
                unexpected.len(),
                first_few(&unexpected),
                absent.len(),
                first_few(&absent)
            ));
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Mismatch { problems })
    }
}

/// What exists before an edit of targets differs from what the targets select.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("; "))]
struct Mismatch {
    /// One line per GitRepo that differs.
    problems: Vec<String>,
}

fn first_few(items: &[String]) -> String {
    let mut shown = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        shown.push_str(", ...");
    }
    shown
}

/// Survivors that did not survive: deleted, recreated (a new UID under the same name) or
/// marked for deletion at any time in `events` (the log since the edit), or absent or
/// replaced in `state` now. One line per BundleDeployment.
fn lost_survivors(
    survivors: &BTreeMap<(String, String), String>,
    events: &[Observed],
    state: &State,
) -> Vec<String> {
    let mut lost: BTreeMap<(String, String), String> = BTreeMap::new();
    for observed in events {
        if observed.key.kind != Kind::BundleDeployment {
            continue;
        }
        let key = (observed.key.namespace.clone(), observed.key.name.clone());
        let Some(uid) = survivors.get(&key) else {
            continue;
        };
        let what = match observed.change {
            Change::Deleted => Some("deleted"),
            Change::Added if &observed.facts.uid != uid => Some("recreated with a new UID"),
            _ if observed.facts.deleting => Some("marked for deletion"),
            _ => None,
        };
        if let Some(what) = what {
            lost.entry(key).or_insert_with(|| what.to_string());
        }
    }
    for (key, uid) in survivors {
        let now = state.get(Kind::BundleDeployment, &key.0, &key.1);
        let what = match now {
            None => Some("gone"),
            Some(facts) if &facts.uid != uid => Some("replaced by another object"),
            Some(facts) if facts.deleting => Some("marked for deletion"),
            Some(_) => None,
        };
        if let Some(what) = what {
            lost.entry(key.clone()).or_insert_with(|| what.to_string());
        }
    }
    lost.into_iter()
        .map(|((ns, name), what)| format!("{ns}/{name}: {what}"))
        .collect()
}

/// `edit_targets`: new targets for some GitRepos; time each orphaned BundleDeployment's
/// deletion, and check that the ones that still match survive as the same objects.
pub async fn edit_targets(
    ctx: &mut Context<'_>,
    spec: &EditTargets,
    label: &str,
) -> Result<StepOutput, StepError> {
    let namespace = ctx.namespace().to_string();
    let count = spec.gitrepos.resolve(ctx.world.gitrepos.len());
    let edited: Vec<GitRepoInfo> = ctx.world.gitrepos[..count].to_vec();
    let plan = ctx
        .recorder
        .with_state(|state| plan_edit(&ctx.world, &edited, &spec.targets, state, &namespace))
        .map_err(|problem| {
            StepError::Unsupported(format!(
                "edit_targets: before the edit, the BundleDeployments differ from what the targets select: {problem}"
            ))
        })?;
    let orphans = plan.orphans;
    let api: Api<GitRepo> = Api::namespaced(ctx.kube.clone(), &namespace);
    let patch = serde_json::json!({"spec": {"targets": spec.targets}});
    let before_requests = ctx.scrape_requests().await?;
    let cursor = ctx.recorder.cursor();
    let edited_at: parking_lot::Mutex<BTreeMap<String, Instant>> =
        parking_lot::Mutex::new(BTreeMap::new());
    let task = Task::start(format!("{label}: edit targets"), Some(count as u64));
    create_or_patch_all(edited.clone(), CONCURRENCY, &task, |gitrepo| {
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
    if spec.count_writes.is_empty() && spec.measure_survivors.is_none() {
        return Ok(output);
    }
    // A delete-and-recreate of a survivor, or a write, may come after the orphans are gone.
    let quiet = until_quiet(ctx, &before_requests, spec.settle, spec.timeout, label).await?;
    output.quality.extend(quiet.problem());
    output.measurements.extend(write_counts(
        &spec.count_writes,
        &quiet.after.since(&before_requests),
        &quiet.note,
    ));
    if let Some(name) = &spec.measure_survivors {
        let lost = ctx
            .recorder
            .with_state(|state| lost_survivors(&plan.survivors, &state.log[cursor..], state));
        let mut measurement = Measurement::value(
            Unit::Count,
            format!(
                "BundleDeployments still selected after the edit ({}) that were deleted, recreated or marked for deletion after it",
                plan.survivors.len()
            ),
            lost.len() as f64,
        );
        measurement.breakdown = BTreeMap::from([
            ("survivors".to_string(), plan.survivors.len() as f64),
            ("lost".to_string(), lost.len() as f64),
        ]);
        measurement.notes.push(quiet.note);
        measurement.notes.extend(lost.into_iter().take(20));
        output.message.push_str(&format!(
            "; {} of {} surviving BundleDeployments lost",
            measurement.stat(Stat::Value).unwrap_or_default(),
            plan.survivors.len()
        ));
        output.measurements.push((name.clone(), measurement));
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::measure::recorder::{Facts, ObjectKey};
    use crate::steps::world::{ClusterInfo, RepoInfo};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn selector(pairs: &[(&str, &str)]) -> Target {
        Target {
            cluster_selector: Some(LabelSelector {
                match_labels: Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                match_expressions: None,
            }),
            ..Target::default()
        }
    }

    fn world() -> World {
        let cluster = |name: &str, shard: &str| ClusterInfo {
            name: name.into(),
            labels: BTreeMap::from([
                ("env".to_string(), "bench".to_string()),
                ("shard".to_string(), shard.to_string()),
            ]),
            namespace: format!("ns-{name}"),
        };
        World {
            clusters: vec![cluster("a", "a"), cluster("b", "b")],
            groups: Vec::new(),
            repos: vec![RepoInfo {
                owner: "o".into(),
                name: "r".into(),
                paths: 2,
                branch: "main".into(),
                head: String::new(),
                revision: 0,
                broken_since: None,
            }],
            gitrepos: vec![GitRepoInfo {
                name: "g".into(),
                repo: 0,
                targets: vec![selector(&[("env", "bench")])],
                polling_interval_s: 15.0,
            }],
            action: None,
        }
    }

    fn key(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn facts(uid: &str, rv: &str) -> Facts {
        Facts {
            uid: uid.into(),
            resource_version: rv.into(),
            labels: BTreeMap::from([(labels::REPO_NAME.to_string(), "g".to_string())]),
            ..Facts::default()
        }
    }

    /// Two Bundles of GitRepo g, deployed to both clusters.
    fn deployed() -> State {
        let mut state = State::default();
        let now = Instant::now();
        for bundle in ["g-p0", "g-p1"] {
            state.record(
                key(Kind::Bundle, "ws", bundle),
                facts(bundle, "1"),
                false,
                now,
            );
            for ns in ["ns-a", "ns-b"] {
                let uid = format!("{ns}-{bundle}");
                state.record(
                    key(Kind::BundleDeployment, ns, bundle),
                    facts(&uid, "1"),
                    false,
                    now,
                );
            }
        }
        state
    }

    fn plan(state: &State) -> Result<EditPlan, String> {
        // As text: what the step's error says.
        let world = world();
        plan_edit(
            &world,
            &world.gitrepos,
            &[selector(&[("shard", "a")])],
            state,
            "ws",
        )
        .map_err(|mismatch| mismatch.to_string())
    }

    #[test]
    fn the_oracle_names_orphans_and_survivors() {
        let plan = plan(&deployed()).unwrap();
        assert_eq!(
            plan.orphans,
            BTreeSet::from([
                ("ns-b".to_string(), "g-p0".to_string()),
                ("ns-b".to_string(), "g-p1".to_string())
            ])
        );
        assert_eq!(
            plan.survivors,
            BTreeMap::from([
                (
                    ("ns-a".to_string(), "g-p0".to_string()),
                    "ns-a-g-p0".to_string()
                ),
                (
                    ("ns-a".to_string(), "g-p1".to_string()),
                    "ns-a-g-p1".to_string()
                ),
            ])
        );
    }

    #[test]
    fn what_exists_must_match_the_oracle_before_the_edit() {
        // A controller that never deployed one BundleDeployment: the step cannot say which
        // orphans to expect, so it fails instead of measuring what happens to exist.
        let mut state = deployed();
        state.record(
            key(Kind::BundleDeployment, "ns-b", "g-p1"),
            Facts::default(),
            true,
            Instant::now(),
        );
        let error = plan(&state).unwrap_err();
        assert!(
            error.contains("1 it selects are absent (ns-b/g-p1)"),
            "{error}"
        );
        // One deployed where the targets do not reach.
        let mut state = deployed();
        state.record(
            key(Kind::BundleDeployment, "ns-c", "g-p0"),
            facts("stray", "1"),
            false,
            Instant::now(),
        );
        let error = plan(&state).unwrap_err();
        assert!(
            error.contains("1 BundleDeployments its targets do not select (ns-c/g-p0)"),
            "{error}"
        );
    }

    #[test]
    fn a_controller_that_keeps_survivors_loses_none() {
        let mut state = deployed();
        let plan = plan(&state).unwrap();
        let cursor = state.log.len();
        let now = Instant::now();
        for name in ["g-p0", "g-p1"] {
            state.record(
                key(Kind::BundleDeployment, "ns-b", name),
                Facts::default(),
                true,
                now,
            );
            // An update of a survivor (same UID) is fine.
            let uid = format!("ns-a-{name}");
            state.record(
                key(Kind::BundleDeployment, "ns-a", name),
                facts(&uid, "2"),
                false,
                now,
            );
        }
        assert!(lost_survivors(&plan.survivors, &state.log[cursor..], &state).is_empty());
    }

    #[test]
    fn a_controller_that_recreates_survivors_is_caught() {
        let mut state = deployed();
        let plan = plan(&state).unwrap();
        let cursor = state.log.len();
        let now = Instant::now();
        // Deletes every BundleDeployment of the bundle and recreates the ones that match:
        // the end state looks right, only the UIDs tell.
        state.record(
            key(Kind::BundleDeployment, "ns-a", "g-p0"),
            Facts::default(),
            true,
            now,
        );
        state.record(
            key(Kind::BundleDeployment, "ns-a", "g-p0"),
            facts("new", "5"),
            false,
            now,
        );
        let lost = lost_survivors(&plan.survivors, &state.log[cursor..], &state);
        assert_eq!(lost, ["ns-a/g-p0: deleted"]);
    }

    #[test]
    fn recreation_unseen_by_the_watch_and_pending_deletion_are_caught() {
        let mut state = deployed();
        let plan = plan(&state).unwrap();
        let cursor = state.log.len();
        let now = Instant::now();
        // The recorder turns a UID change into delete + add even without a DELETED event.
        state.record(
            key(Kind::BundleDeployment, "ns-a", "g-p0"),
            facts("new", "5"),
            false,
            now,
        );
        let mut terminating = facts("ns-a-g-p1", "6");
        terminating.deleting = true;
        state.record(
            key(Kind::BundleDeployment, "ns-a", "g-p1"),
            terminating,
            false,
            now,
        );
        let lost = lost_survivors(&plan.survivors, &state.log[cursor..], &state);
        assert_eq!(
            lost,
            ["ns-a/g-p0: deleted", "ns-a/g-p1: marked for deletion"]
        );
        // Judged on the end state alone, a survivor that is gone is lost too.
        let mut gone = deployed();
        gone.objects
            .remove(&key(Kind::BundleDeployment, "ns-a", "g-p1"));
        assert_eq!(
            lost_survivors(&plan.survivors, &[], &gone),
            ["ns-a/g-p1: gone"]
        );
    }
}
