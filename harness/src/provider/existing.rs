//! `existing`: a cluster you already have (kubeconfig), with the embedded git server on
//! this machine and the bundled controller as a local subprocess.
//!
//! This is the part of issue 6's `existing` provider that the harness needs now: it proves a
//! cluster reachable before anything runs (so an unreachable cluster is a clear error, not
//! a hang), labels what it creates, and deletes only that. A remote git server (URL and
//! token) is issue 6's.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use fleet_controller::api::{Bundle, BundleDeployment, Cluster, ClusterGroup, GitRepo, labels};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::{
    Endpoints, Environment, EnvironmentSpec, MANAGED_BY, MANAGED_BY_LABEL, Provider, ProviderError,
    SUITE_LABEL, check_reachable, kube_client,
};

/// The existing-cluster provider.
#[derive(Debug, Clone)]
pub struct ExistingProvider {
    kubeconfig: PathBuf,
}

impl ExistingProvider {
    /// Uses the current context of `kubeconfig`.
    pub fn new(kubeconfig: PathBuf) -> Self {
        Self { kubeconfig }
    }
}

/// An environment on an existing cluster.
pub struct ExistingEnvironment {
    endpoints: Endpoints,
    client: Client,
    suite: String,
    gitserver: Option<gitserver::RunningGitServer>,
}

#[async_trait]
impl Provider for ExistingProvider {
    fn name(&self) -> &'static str {
        "existing"
    }

    async fn create(
        &self,
        spec: &EnvironmentSpec,
        _cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError> {
        let kubeconfig_display = self.kubeconfig.display().to_string();
        let yaml = std::fs::read_to_string(&self.kubeconfig).map_err(|e| {
            ProviderError::Kubeconfig(format!("cannot read {kubeconfig_display}: {e}"))
        })?;
        let client = kube_client(&yaml, &kubeconfig_display).await?;
        let url = kube::config::Kubeconfig::from_yaml(&yaml)
            .ok()
            .and_then(|k| {
                k.clusters
                    .first()
                    .and_then(|c| c.cluster.as_ref()?.server.clone())
            })
            .unwrap_or_else(|| "(unknown server)".to_string());
        check_reachable(&client, &url, &kubeconfig_display).await?;
        std::fs::create_dir_all(&spec.work_dir).map_err(|source| ProviderError::Io {
            path: spec.work_dir.clone(),
            source,
        })?;
        let git = gitserver::GitServer::start(gitserver::Config::new(spec.work_dir.join("git")))
            .await
            .map_err(|e| ProviderError::GitServer(e.to_string()))?;
        let endpoints = Endpoints {
            kubeconfig_yaml: yaml,
            kubeconfig_path: self.kubeconfig.clone(),
            git_api_url: git.url().to_string(),
            git_clone_base: git.url().to_string(),
            git_user: git.user().to_string(),
            git_password: git.password().to_string(),
            git_extensions: true,
            api_faults: false,
            git_server_version: Some(format!(
                "fleetbench gitserver (Gitea API {})",
                gitserver::GITEA_API_VERSION
            )),
        };
        Ok(Box::new(ExistingEnvironment {
            endpoints,
            client,
            suite: spec.suite.clone(),
            gitserver: Some(git),
        }))
    }
}

#[async_trait]
impl Environment for ExistingEnvironment {
    fn provider(&self) -> &'static str {
        "existing"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn teardown(mut self: Box<Self>) -> Result<(), ProviderError> {
        let selector = format!(
            "{MANAGED_BY_LABEL}={MANAGED_BY},{SUITE_LABEL}={}",
            self.suite
        );
        let list = ListParams::default().labels(&selector);
        let mut problems = Vec::new();
        let deletions = async {
            let gitrepos: Api<GitRepo> = Api::all(self.client.clone());
            let clusters: Api<Cluster> = Api::all(self.client.clone());
            let groups: Api<ClusterGroup> = Api::all(self.client.clone());
            let bundles: Api<Bundle> = Api::all(self.client.clone());
            let deployments: Api<BundleDeployment> = Api::all(self.client.clone());
            let names: Vec<String> = gitrepos
                .list(&list)
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter_map(|g| g.metadata.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            // GitRepos first, while the controller runs: it deletes their Bundles and
            // BundleDeployments. Wait for those too, so the next suite, which reuses the
            // names, starts from a clean workspace.
            if let Err(e) = delete_all(&gitrepos, &list).await {
                problems.push(format!("GitRepos: {e}"));
            }
            if !names.is_empty() {
                let children = ListParams::default().labels(&format!(
                    "{} in ({})",
                    labels::REPO_NAME,
                    names.join(",")
                ));
                loop {
                    let left = gitrepos
                        .list(&list)
                        .await
                        .map(|l| l.items.len())
                        .unwrap_or(0)
                        + bundles
                            .list(&children)
                            .await
                            .map(|l| l.items.len())
                            .unwrap_or(0)
                        + deployments
                            .list(&children)
                            .await
                            .map(|l| l.items.len())
                            .unwrap_or(0);
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            if let Err(e) = delete_all(&clusters, &list).await {
                problems.push(format!("Clusters: {e}"));
            }
            if let Err(e) = delete_all(&groups, &list).await {
                problems.push(format!("ClusterGroups: {e}"));
            }
            let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::all(self.client.clone());
            if let Err(e) = delete_all(&secrets, &list).await {
                problems.push(format!("Secrets: {e}"));
            }
            while clusters
                .list(&list)
                .await
                .map(|l| l.items.len())
                .unwrap_or(0)
                > 0
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), deletions)
            .await
            .is_err()
        {
            problems.push(format!(
                "deleting objects labelled {selector} took over 60s"
            ));
        }
        if let Some(git) = self.gitserver.take() {
            git.shutdown().await;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ProviderError::Teardown(problems.join("; ")))
        }
    }
}

async fn delete_all<K>(api: &Api<K>, list: &ListParams) -> Result<(), kube::Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    for object in api.list(list).await? {
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        let name = object.meta().name.clone().unwrap_or_default();
        let scoped: Api<K> = Api::namespaced(api.clone().into_client(), &namespace);
        match scoped.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
