//! Crash consistency: the real `fleet-controller` binary is SIGKILLed at random points while
//! GitRepos are created, targets edited, clusters relabelled and commits pushed, restarted,
//! and must converge to exactly the BundleDeployments an independent model of the world
//! expects (right namespaces, right deploymentIDs, no orphans, no duplicates).
//!
//! The controller keeps no state of its own beyond its git cache, so whatever a kill
//! interrupts (a half-done sync, a bundle reconcile that created some deployments but not
//! their orphans' deletion) must be repaired from the API alone after the restart.
//! `CRASH_SEED=<n>` replays a run; the seed is printed at the start.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Crds, Env, NS, configmap, within};
use fleet_api::BundleDeploymentOptions;
use fleet_api::{BundleResource, Cluster, GitRepoSpec, GitTarget, labels};
use fleet_controller::bundle::options::{deployment_id, manifest_id, resources_sha256};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use rand::prelude::*;
use tokio::process::{Child, Command};

/// Kill/restart rounds.
const ROUNDS: usize = 50;
/// Bound on one convergence after a restart.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
const REPOS: [&str; 3] = ["r0", "r1", "r2"];
const PATHS: [&str; 2] = ["a", "b"];
const CLUSTERS: [&str; 4] = ["c0", "c1", "c2", "c3"];
const ENVS: [&str; 3] = ["dev", "prod", "qa"];
const MAX_GITREPOS: usize = 6;

/// What the test believes the world is.
#[derive(Clone, Debug, Default)]
struct Model {
    /// repo -> path -> configmap value.
    content: BTreeMap<String, BTreeMap<String, String>>,
    /// gitrepo -> (repo, env values targeted).
    gitrepos: BTreeMap<String, (String, BTreeSet<String>)>,
    /// cluster -> env label.
    clusters: BTreeMap<String, String>,
}

impl Model {
    /// `(cluster namespace, bundle name) -> deploymentID` the controller must converge to.
    fn expected(&self) -> BTreeMap<(String, String), String> {
        let mut want = BTreeMap::new();
        for (gitrepo, (repo, envs)) in &self.gitrepos {
            for path in PATHS {
                let value = &self.content[repo][path];
                let resources = vec![BundleResource {
                    name: Some("cm.yaml".into()),
                    content: Some(configmap(&format!("{repo}-{path}"), value)),
                    encoding: None,
                }];
                let id = deployment_id(
                    &manifest_id(&resources_sha256(&resources)),
                    &BundleDeploymentOptions::default(),
                );
                for (cluster, env) in &self.clusters {
                    if envs.contains(env) {
                        want.insert(
                            (
                                fleet_controller::names::cluster_namespace(NS, cluster),
                                format!("{gitrepo}-{path}"),
                            ),
                            id.clone(),
                        );
                    }
                }
            }
        }
        want
    }
}

fn targets(envs: &BTreeSet<String>) -> Vec<GitTarget> {
    envs.iter()
        .map(|env| GitTarget {
            name: Some(env.clone()),
            cluster_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("env".to_owned(), env.clone())])),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn random_envs(rng: &mut StdRng) -> BTreeSet<String> {
    ENVS.iter()
        .filter(|_| rng.random_bool(0.5))
        .map(|e| (*e).to_owned())
        .collect()
}

/// One change to the world.
#[derive(Clone, Debug)]
enum Op {
    CreateGitRepo {
        name: String,
        repo: String,
        envs: BTreeSet<String>,
    },
    EditTargets {
        name: String,
        envs: BTreeSet<String>,
    },
    LabelCluster {
        cluster: String,
        env: String,
    },
    Commit {
        repo: String,
        path: String,
        value: String,
    },
}

fn plan_ops(rng: &mut StdRng, model: &mut Model, round: usize) -> Vec<Op> {
    let count = rng.random_range(1..=3);
    let mut ops = Vec::new();
    for i in 0..count {
        let op = match rng.random_range(0..4) {
            0 if model.gitrepos.len() < MAX_GITREPOS => {
                let name = format!("g{}", model.gitrepos.len());
                let repo = REPOS[rng.random_range(0..REPOS.len())].to_owned();
                Op::CreateGitRepo {
                    name,
                    repo,
                    envs: random_envs(rng),
                }
            }
            0 | 1 => {
                let names: Vec<&String> = model.gitrepos.keys().collect();
                let name = names[rng.random_range(0..names.len())].clone();
                Op::EditTargets {
                    name,
                    envs: random_envs(rng),
                }
            }
            2 => Op::LabelCluster {
                cluster: CLUSTERS[rng.random_range(0..CLUSTERS.len())].to_owned(),
                env: ENVS[rng.random_range(0..ENVS.len())].to_owned(),
            },
            _ => Op::Commit {
                repo: REPOS[rng.random_range(0..REPOS.len())].to_owned(),
                path: PATHS[rng.random_range(0..PATHS.len())].to_owned(),
                value: format!("v{round}-{i}"),
            },
        };
        match &op {
            Op::CreateGitRepo { name, repo, envs } => {
                model
                    .gitrepos
                    .insert(name.clone(), (repo.clone(), envs.clone()));
            }
            Op::EditTargets { name, envs } => {
                if let Some(entry) = model.gitrepos.get_mut(name) {
                    entry.1 = envs.clone();
                }
            }
            Op::LabelCluster { cluster, env } => {
                model.clusters.insert(cluster.clone(), env.clone());
            }
            Op::Commit { repo, path, value } => {
                model
                    .content
                    .get_mut(repo)
                    .map(|paths| paths.insert(path.clone(), value.clone()));
            }
        }
        ops.push(op);
    }
    ops
}

fn gitrepo_spec(url: &str, envs: &BTreeSet<String>) -> GitRepoSpec {
    GitRepoSpec {
        repo: url.to_owned(),
        branch: Some("main".into()),
        paths: Some(PATHS.iter().map(|p| (*p).to_owned()).collect()),
        targets: targets(envs),
        polling_interval: Some("1s".into()),
        ..Default::default()
    }
}

async fn apply(env: &Env, urls: &BTreeMap<String, String>, op: &Op) {
    match op {
        Op::CreateGitRepo { name, repo, envs } => {
            env.gitrepo(name, gitrepo_spec(&urls[repo], envs)).await;
        }
        Op::EditTargets { name, envs } => {
            // A merge patch replaces the whole list, so an empty set clears it; an empty
            // target list would mean the default group, which these clusters are not in.
            env.patch_gitrepo_spec(name, serde_json::json!({ "targets": targets(envs) }))
                .await;
        }
        Op::LabelCluster {
            cluster,
            env: value,
        } => {
            env.label_cluster(cluster, &[("env", value)]).await;
        }
        Op::Commit { repo, path, value } => {
            let file = format!("{path}/cm.yaml");
            env.commit(
                repo,
                &[(&file, &configmap(&format!("{repo}-{path}"), value))],
                &[],
            )
            .await;
        }
    }
}

struct Binary {
    kubeconfig: PathBuf,
    cache: PathBuf,
    address_file: PathBuf,
}

impl Binary {
    fn start(&self) -> Child {
        let _ = std::fs::remove_file(&self.address_file);
        Command::new(env!("CARGO_BIN_EXE_fleet-controller"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args([
                "--agent",
                "none",
                "--listen",
                "127.0.0.1:0",
                "--status-window",
                "200ms",
            ])
            .arg("--address-file")
            .arg(&self.address_file)
            .arg("--git-cache-dir")
            .arg(&self.cache)
            .env("FLEET_MIN_POLLING_INTERVAL", "1s")
            .env("GITREPO_RECONCILER_WORKERS", "4")
            .env("BUNDLE_RECONCILER_WORKERS", "4")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("fleet-controller starts")
    }
}

/// Every BundleDeployment as `(namespace, name) -> deploymentID`; duplicates fail the test
/// (a name is unique per namespace, so a duplicate would be a second object for one bundle
/// and cluster under another name, caught by the label check).
async fn actual(env: &Env) -> Result<BTreeMap<(String, String), String>, String> {
    let api: Api<fleet_api::BundleDeployment> = Api::all(env.client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    let mut got = BTreeMap::new();
    let mut pairs = BTreeSet::new();
    for bd in list.items {
        let l = bd.metadata.labels.clone().unwrap_or_default();
        let pair = (
            l.get(labels::BUNDLE_NAME).cloned().unwrap_or_default(),
            l.get(labels::CLUSTER).cloned().unwrap_or_default(),
        );
        if !pairs.insert(pair.clone()) {
            return Err(format!("duplicate BundleDeployment for {pair:?}"));
        }
        got.insert(
            (
                bd.metadata.namespace.clone().unwrap_or_default(),
                bd.metadata.name.clone().unwrap_or_default(),
            ),
            bd.spec.deployment_id.clone().unwrap_or_default(),
        );
    }
    Ok(got)
}

fn describe_diff(
    want: &BTreeMap<(String, String), String>,
    got: &BTreeMap<(String, String), String>,
) -> String {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let orphans: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let stale: Vec<_> = want
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .collect();
    format!("missing {missing:?}; orphans {orphans:?}; wrong deploymentID {stale:?}")
}

/// Waits until the BundleDeployments are exactly `want`; returns the time since `started`.
async fn converge(
    env: &Env,
    want: &BTreeMap<(String, String), String>,
    started: Instant,
) -> Result<Duration, String> {
    let mut last = String::new();
    while started.elapsed() < CONVERGE_WITHIN {
        match actual(env).await {
            Ok(got) if &got == want => return Ok(started.elapsed()),
            Ok(got) => last = describe_diff(want, &got),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

async fn wait_address(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "controller did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_converges_exactly() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash consistency: CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let env = Env::start(Crds::Ours).await;
    let dir = tempfile::tempdir().unwrap();
    let binary = Binary {
        kubeconfig: dir.path().join("kubeconfig"),
        cache: dir.path().join("cache"),
        address_file: dir.path().join("address"),
    };
    std::fs::write(&binary.kubeconfig, env.api.kubeconfig_yaml()).unwrap();

    let mut model = Model::default();
    let mut urls = BTreeMap::new();
    for repo in REPOS {
        let mut files = Vec::new();
        let mut paths = BTreeMap::new();
        for path in PATHS {
            paths.insert(path.to_owned(), "v0".to_owned());
            files.push((
                format!("{path}/cm.yaml"),
                configmap(&format!("{repo}-{path}"), "v0"),
            ));
        }
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        urls.insert(repo.to_owned(), env.repo(repo, &refs).await);
        model.content.insert(repo.to_owned(), paths);
    }
    for (i, cluster) in CLUSTERS.iter().enumerate() {
        let value = ENVS[i % ENVS.len()];
        env.cluster(cluster, &[("env", value)]).await;
        model
            .clusters
            .insert((*cluster).to_owned(), value.to_owned());
    }
    let initial = Op::CreateGitRepo {
        name: "g0".into(),
        repo: "r0".into(),
        envs: BTreeSet::from(["prod".to_owned(), "dev".to_owned()]),
    };
    if let Op::CreateGitRepo { name, repo, envs } = &initial {
        model
            .gitrepos
            .insert(name.clone(), (repo.clone(), envs.clone()));
    }
    apply(&env, &urls, &initial).await;

    let mut child = binary.start();
    wait_address(&binary.address_file).await;
    let first = converge(&env, &model.expected(), Instant::now()).await;
    let first = first.unwrap_or_else(|e| panic!("seed {seed}: initial state: {e}"));
    eprintln!("initial convergence {:.2}s", first.as_secs_f64());

    let test_started = Instant::now();
    let mut times = Vec::new();
    let mut interrupted = 0;
    for round in 0..ROUNDS {
        let ops = plan_ops(&mut rng, &mut model, round + 1);
        let kill_after = Duration::from_millis(rng.random_range(0..400));
        // The changes and the kill race: the kill lands before, between or after them.
        let changes = async {
            for op in &ops {
                apply(&env, &urls, op).await;
            }
        };
        let kill = async {
            tokio::time::sleep(kill_after).await;
            child.start_kill().expect("SIGKILL");
            let _ = within("controller exit", child.wait()).await;
        };
        tokio::join!(changes, kill);
        let want = model.expected();
        // Rounds where the kill left the world unconverged are the ones that test recovery;
        // count them so a run shows it exercised more than clean restarts.
        if actual(&env).await.is_ok_and(|got| got != want) {
            interrupted += 1;
        }
        // Measured from the restart, process start-up and cache sync included.
        let restarted = Instant::now();
        child = binary.start();
        wait_address(&binary.address_file).await;
        match converge(&env, &want, restarted).await {
            Ok(took) => times.push(took),
            Err(diff) => panic!(
                "seed {seed} round {round}: not converged within {CONVERGE_WITHIN:?} after {ops:?} (killed at {kill_after:?}): {diff}"
            ),
        }
    }
    let _ = child.start_kill();
    let _ = child.wait().await;
    let max = times.iter().max().copied().unwrap_or_default();
    let mean = times.iter().sum::<Duration>() / u32::try_from(times.len().max(1)).unwrap_or(1);
    eprintln!(
        "crash consistency: seed {seed}, {ROUNDS} rounds ({interrupted} left unconverged by the kill) in {:.1}s; convergence after restart: mean {:.2}s, max {:.2}s",
        test_started.elapsed().as_secs_f64(),
        mean.as_secs_f64(),
        max.as_secs_f64()
    );
    // Sanity: the clusters the model labelled are the API's clusters.
    let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), NS);
    let listed = clusters.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), CLUSTERS.len());
    env.shutdown().await;
}
