//! Fixtures for the end-to-end tests: an embedded apiserver and git server, a kube client,
//! the controller running in-process, and bounded waits.
#![allow(dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use apiserver::{ApiServer, RunningApiServer};
use fleet_api::{
    Bundle, BundleDeployment, Cluster, ClusterGroup, ClusterGroupSpec, ClusterSpec, GitRepo,
    GitRepoSpec, GitTarget, labels,
};
use fleet_controller::Controller;
use fleet_controller::config::{AgentMode, Config, DelayRange, Workers};
use gitserver::forge::ForgeClient;
use gitserver::forge::types::{ChangeFileOperation, ChangeFilesOptions, CreateRepoOption};
use gitserver::{GitServer, RunningGitServer};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tempfile::TempDir;

/// Bound on every wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace namespace the tests use.
pub const NS: &str = "fleet-default";

/// Awaits `future`, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Polls `check` every 25ms until it returns `Some`, failing after [`TIMEOUT`] with the last
/// observation.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}; last: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Which CRDs the apiserver serves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Crds {
    /// Generated from the controller's types (`--install-crds`).
    Ours,
    /// Fleet's own, from `apiserver/tests/fixtures/fleet-crds.yaml` (one copy for the workspace).
    Fleets,
}

/// An apiserver, a git server and clients for both.
pub struct Env {
    pub api: RunningApiServer,
    pub git: RunningGitServer,
    pub client: kube::Client,
    pub forge: ForgeClient,
    _git_data: TempDir,
}

/// Controller settings for tests: simulated agent, short delays and windows.
pub fn test_config() -> Config {
    Config {
        agent: AgentMode::Simulated,
        listen: Some("127.0.0.1:0".parse().unwrap()),
        install_crds: false,
        workers: Workers {
            gitrepo: 4,
            bundle: 4,
            bundledeployment: 4,
            cluster: 2,
            clustergroup: 2,
            status: 4,
        },
        status_window: Duration::from_millis(200),
        agent_delay: DelayRange {
            min: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        git_timeout: Duration::from_secs(10),
        // The tests poll every second or two to stay fast.
        min_polling_interval: Duration::from_millis(500),
        ..Config::default()
    }
}

impl Env {
    /// Starts both servers and installs `crds`.
    pub async fn start(crds: Crds) -> Env {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = within(
            "apiserver start",
            ApiServer::start(apiserver::Config::default()),
        )
        .await
        .expect("apiserver starts");
        let git_data = tempfile::tempdir().unwrap();
        let mut git_config = gitserver::Config::new(git_data.path());
        git_config.user = "fleet".into();
        git_config.password = "fleet-password".into();
        let git = within("gitserver start", GitServer::start(git_config))
            .await
            .expect("gitserver starts");
        let mut config = kube::Config::new(api.url().parse().unwrap());
        config.default_namespace = "default".into();
        config.read_timeout = Some(Duration::from_secs(60));
        let client = kube::Client::try_from(config).unwrap();
        let forge = git.forge_client();
        let env = Env {
            api,
            git,
            client,
            forge,
            _git_data: git_data,
        };
        match crds {
            Crds::Ours => within("install CRDs", fleet_api::install_crds(&env.client))
                .await
                .unwrap(),
            Crds::Fleets => env.install_fleet_crds().await,
        }
        env.create_namespace(NS).await;
        env
    }

    /// Installs Fleet's own CRDs from the reference file.
    pub async fn install_fleet_crds(&self) {
        let text = include_str!("../../../apiserver/tests/fixtures/fleet-crds.yaml");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).unwrap();
        let api: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
            Api::all(self.client.clone());
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let crd = serde_json::from_value(doc).unwrap();
            within("create Fleet CRD", api.create(&PostParams::default(), &crd))
                .await
                .unwrap();
        }
    }

    pub async fn create_namespace(&self, name: &str) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let _ = within("create namespace", api.create(&PostParams::default(), &ns)).await;
    }

    /// Starts the controller with `config`.
    pub async fn controller(&self, config: Config) -> Controller {
        let controller = within(
            "controller start",
            Controller::start(self.client.clone(), config),
        )
        .await
        .expect("controller starts");
        assert!(
            controller.wait_ready(TIMEOUT).await,
            "controller became ready"
        );
        controller
    }

    // ----- git -----

    /// Creates repository `name` with `files` in one commit; returns its clone URL.
    pub async fn repo(&self, name: &str, files: &[(&str, &str)]) -> String {
        let repo = within(
            "create repo",
            self.forge.create_repo(&CreateRepoOption::named(name)),
        )
        .await
        .unwrap();
        self.commit(name, files, &[]).await;
        repo.clone_url
    }

    /// Commits `files` (created or updated) and `deleted` paths to `repo`; returns the SHA.
    pub async fn commit(&self, repo: &str, files: &[(&str, &str)], deleted: &[&str]) -> String {
        let owner = self.git.user().to_owned();
        let mut operations = Vec::new();
        for (path, content) in files {
            let exists = within("get file", self.forge.get_file(&owner, repo, path, None)).await;
            operations.push(match exists {
                Ok(_) => ChangeFileOperation::update(*path, content),
                Err(_) => ChangeFileOperation::create(*path, content),
            });
        }
        for path in deleted {
            let file = within("get file", self.forge.get_file(&owner, repo, path, None))
                .await
                .unwrap();
            operations.push(ChangeFileOperation::delete(*path, file.sha));
        }
        let response = within(
            "commit",
            self.forge.change_files(
                &owner,
                repo,
                &ChangeFilesOptions {
                    files: operations,
                    message: "test commit".into(),
                    ..ChangeFilesOptions::default()
                },
            ),
        )
        .await
        .unwrap();
        response.commit.map(|c| c.sha).unwrap_or_default()
    }

    // ----- fleet objects -----

    pub async fn cluster(&self, name: &str, cluster_labels: &[(&str, &str)]) -> Cluster {
        let mut cluster = Cluster::new(name, ClusterSpec::default());
        cluster.metadata.namespace = Some(NS.into());
        cluster.metadata.labels = Some(to_map(cluster_labels));
        let api: Api<Cluster> = Api::namespaced(self.client.clone(), NS);
        within(
            "create cluster",
            api.create(&PostParams::default(), &cluster),
        )
        .await
        .unwrap()
    }

    pub async fn label_cluster(&self, name: &str, cluster_labels: &[(&str, &str)]) {
        let api: Api<Cluster> = Api::namespaced(self.client.clone(), NS);
        let patch = serde_json::json!({"metadata": {"labels": to_map(cluster_labels)}});
        within(
            "label cluster",
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await
        .unwrap();
    }

    pub async fn group(&self, name: &str, selects: &[(&str, &str)]) {
        let group = ClusterGroup::new(
            name,
            ClusterGroupSpec {
                selector: Some(LabelSelector {
                    match_labels: Some(to_map(selects)),
                    ..Default::default()
                }),
            },
        );
        let api: Api<ClusterGroup> = Api::namespaced(self.client.clone(), NS);
        let mut group = group;
        group.metadata.namespace = Some(NS.into());
        within("create group", api.create(&PostParams::default(), &group))
            .await
            .unwrap();
    }

    pub async fn gitrepo(&self, name: &str, spec: GitRepoSpec) -> GitRepo {
        let mut repo = GitRepo::new(name, spec);
        repo.metadata.namespace = Some(NS.into());
        let api: Api<GitRepo> = Api::namespaced(self.client.clone(), NS);
        within("create gitrepo", api.create(&PostParams::default(), &repo))
            .await
            .unwrap()
    }

    pub async fn patch_gitrepo_spec(&self, name: &str, spec: serde_json::Value) {
        let api: Api<GitRepo> = Api::namespaced(self.client.clone(), NS);
        let patch = serde_json::json!({ "spec": spec });
        within(
            "patch gitrepo",
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
        )
        .await
        .unwrap();
    }

    pub async fn get_gitrepo(&self, name: &str) -> GitRepo {
        let api: Api<GitRepo> = Api::namespaced(self.client.clone(), NS);
        within("get gitrepo", api.get(name)).await.unwrap()
    }

    pub async fn delete_gitrepo(&self, name: &str) {
        let api: Api<GitRepo> = Api::namespaced(self.client.clone(), NS);
        within("delete gitrepo", api.delete(name, &DeleteParams::default()))
            .await
            .unwrap();
    }

    /// Bundles of GitRepo `repo`, by name.
    pub async fn bundles(&self, repo: &str) -> BTreeMap<String, Bundle> {
        let api: Api<Bundle> = Api::namespaced(self.client.clone(), NS);
        let list = within(
            "list bundles",
            api.list(&ListParams::default().labels(&format!("{}={repo}", labels::REPO_NAME))),
        )
        .await
        .unwrap();
        list.items
            .into_iter()
            .map(|b| (b.metadata.name.clone().unwrap(), b))
            .collect()
    }

    /// Every BundleDeployment, as `(bundle name, cluster name)` pairs.
    pub async fn deployments(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .deployment_objects()
            .await
            .iter()
            .map(|bd| {
                let l = bd.metadata.labels.clone().unwrap_or_default();
                (l[labels::BUNDLE_NAME].clone(), l[labels::CLUSTER].clone())
            })
            .collect();
        pairs.sort();
        pairs
    }

    pub async fn deployment_objects(&self) -> Vec<BundleDeployment> {
        let api: Api<BundleDeployment> = Api::all(self.client.clone());
        within("list bundledeployments", api.list(&ListParams::default()))
            .await
            .unwrap()
            .items
    }

    /// Waits until the BundleDeployments are exactly `want`.
    pub async fn wait_deployments(&self, want: &[(&str, &str)]) {
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(b, c)| ((*b).to_owned(), (*c).to_owned()))
            .collect();
        want.sort();
        eventually("BundleDeployments", || async {
            let got = self.deployments().await;
            if got == want {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        })
        .await;
    }

    pub async fn shutdown(self) {
        self.git.shutdown().await;
        self.api.shutdown().await;
    }
}

pub fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A GitRepo spec for `url` and `paths`, polling every `interval`.
pub fn spec(url: &str, paths: &[&str], targets: Vec<GitTarget>, interval: &str) -> GitRepoSpec {
    GitRepoSpec {
        repo: url.to_owned(),
        branch: Some("main".into()),
        paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
        targets,
        polling_interval: Some(interval.to_owned()),
        ..GitRepoSpec::default()
    }
}

/// A target selecting clusters by labels.
pub fn by_labels(pairs: &[(&str, &str)]) -> GitTarget {
    GitTarget {
        cluster_selector: Some(LabelSelector {
            match_labels: Some(to_map(pairs)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A ConfigMap manifest.
pub fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}
