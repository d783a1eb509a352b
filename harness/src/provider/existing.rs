//! `existing`: a cluster you already have (a kubeconfig and, optionally, one of its
//! contexts), with either the embedded git server on this machine or a Gitea you already
//! have (`--git-url`, `--git-user`, `--git-token`). The bundled controller runs as a local
//! subprocess with the same kubeconfig context.
//!
//! A shared cluster and a shared forge hold other people's things, so the provider proves
//! the cluster reachable before anything runs (an unreachable cluster is a clear error, not
//! a hang), labels every object it creates and deletes only those, and names its
//! repositories with a prefix unique to the suite's run, deleting exactly those at the end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use fleet_api::{Bundle, BundleDeployment, Cluster, ClusterGroup, GitRepo, labels};
use gitserver::forge::{Auth, ForgeClient};
use kube::api::{DeleteParams, ListParams};
use kube::config::Kubeconfig;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use super::{
    Endpoints, Environment, EnvironmentSpec, MANAGED_BY, MANAGED_BY_LABEL, Provider, ProviderError,
    ProxyPlacement, SUITE_LABEL, check_reachable, kube_client,
};

/// A Gitea-compatible server the suites create their repositories on.
#[derive(Clone)]
pub struct RemoteForge {
    /// Base URL (the API is under `/api/v1`; clone URLs are `{url}/{owner}/{repo}.git`).
    pub url: String,
    /// The user that owns the repositories.
    pub user: String,
    /// Its access token (or password); sent as HTTP basic auth, which Gitea accepts for
    /// the API and for git.
    pub token: String,
}

impl std::fmt::Debug for RemoteForge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteForge")
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl RemoteForge {
    fn client(&self) -> Result<ForgeClient, ProviderError> {
        ForgeClient::new(
            &self.url,
            Auth::Basic {
                user: self.user.clone(),
                password: self.token.clone(),
            },
        )
        .map_err(|source| ProviderError::Forge {
            what: self.url.clone(),
            source,
        })
    }
}

/// The existing-cluster provider.
#[derive(Debug, Clone)]
pub struct ExistingProvider {
    kubeconfig: PathBuf,
    context: Option<String>,
    forge: Option<RemoteForge>,
    git_proxy: ProxyPlacement,
}

impl ExistingProvider {
    /// Uses `context` of `kubeconfig` (its current context when `None`), and `forge` for
    /// repositories (the embedded git server when `None`).
    pub fn new(kubeconfig: PathBuf, context: Option<String>, forge: Option<RemoteForge>) -> Self {
        Self {
            kubeconfig,
            context,
            forge,
            git_proxy: ProxyPlacement::loopback(),
        }
    }

    /// Where the git proxy listens (`--git-listen`, `--git-public-url`): loopback unless
    /// the controller under test runs elsewhere.
    pub fn with_git_proxy(mut self, placement: ProxyPlacement) -> Self {
        self.git_proxy = placement;
        self
    }
}

/// The kubeconfig YAML to use: the file as it is, or, when a context is chosen, the same
/// config with that context made current (so the harness and the controller, which only
/// reads current contexts, agree on the cluster).
pub fn select_context(
    yaml: &str,
    context: Option<&str>,
    origin: &str,
) -> Result<String, ProviderError> {
    let Some(context) = context else {
        return Ok(yaml.to_string());
    };
    let mut config =
        Kubeconfig::from_yaml(yaml).map_err(|source| ProviderError::KubeconfigInvalid {
            origin: origin.to_string(),
            source,
        })?;
    if !config.contexts.iter().any(|c| c.name == context) {
        let known: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        return Err(ProviderError::Kubeconfig(format!(
            "{origin} has no context {context:?} (it has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    }
    config.current_context = Some(context.to_string());
    // JSON is YAML, and every kubeconfig reader takes it.
    serde_json::to_string_pretty(&config).map_err(|source| ProviderError::KubeconfigWrite {
        origin: origin.to_string(),
        source,
    })
}

/// The server URL of the current context, for messages.
fn current_server(yaml: &str) -> String {
    Kubeconfig::from_yaml(yaml)
        .ok()
        .and_then(|config| {
            let context = config.current_context.clone()?;
            let cluster = config
                .contexts
                .iter()
                .find(|c| c.name == context)?
                .context
                .as_ref()?
                .cluster
                .clone();
            config
                .clusters
                .iter()
                .find(|c| c.name == cluster)?
                .cluster
                .as_ref()?
                .server
                .clone()
        })
        .unwrap_or_else(|| "(unknown server)".to_string())
}

/// An environment on an existing cluster.
pub struct ExistingEnvironment {
    endpoints: Endpoints,
    client: Client,
    suite: String,
    gitserver: Option<gitserver::RunningGitServer>,
    remote_forge: Option<ForgeClient>,
    git_proxy: ProxyPlacement,
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
        let origin = match &self.context {
            Some(context) => format!("{} (context {context})", self.kubeconfig.display()),
            None => self.kubeconfig.display().to_string(),
        };
        let file = std::fs::read_to_string(&self.kubeconfig).map_err(|source| {
            ProviderError::KubeconfigRead {
                path: self.kubeconfig.clone(),
                source,
            }
        })?;
        let yaml = select_context(&file, self.context.as_deref(), &origin)?;
        let client = kube_client(&yaml, &origin).await?;
        check_reachable(&client, &current_server(&yaml), &origin).await?;
        std::fs::create_dir_all(&spec.work_dir).map_err(|source| ProviderError::Io {
            path: spec.work_dir.clone(),
            source,
        })?;
        let kubeconfig_path = if self.context.is_some() {
            let path = spec.work_dir.join("kubeconfig");
            write_private(&path, &yaml)?;
            path
        } else {
            self.kubeconfig.clone()
        };
        let (endpoints, gitserver, remote_forge) = match &self.forge {
            None => {
                let git =
                    gitserver::GitServer::start(gitserver::Config::new(spec.work_dir.join("git")))
                        .await
                        .map_err(|e| ProviderError::GitServerStart(e.into()))?;
                let endpoints = Endpoints::with_local_git(yaml, kubeconfig_path, &git, false);
                (endpoints, Some(git), None)
            }
            Some(remote) => {
                let forge = remote.client()?;
                let version = bounded(&remote.url, forge.version()).await?;
                // The token must work before anything is created with it.
                let user = bounded(&remote.url, forge.current_user())
                    .await
                    .map_err(|error| match error {
                        ProviderError::Forge { source, .. } => ProviderError::Forge {
                            what: format!(
                                "the token of --git-user {} is not accepted",
                                remote.user
                            ),
                            source,
                        },
                        other => other,
                    })?;
                if user.login != remote.user {
                    return Err(ProviderError::GitServer(format!(
                        "{}: the token belongs to {:?}, not --git-user {:?}",
                        remote.url, user.login, remote.user
                    )));
                }
                let endpoints = Endpoints {
                    kubeconfig_yaml: yaml,
                    kubeconfig_path,
                    git_api_url: remote.url.clone(),
                    git_clone_base: remote.url.clone(),
                    git_user: remote.user.clone(),
                    git_password: remote.token.clone(),
                    git_extensions: false,
                    repo_prefix: repo_prefix(&spec.suite),
                    api_faults: false,
                    git_server_version: Some(format!("Gitea API {}", version.version)),
                };
                (endpoints, None, Some(forge))
            }
        };
        Ok(Box::new(ExistingEnvironment {
            endpoints,
            client,
            suite: spec.suite.clone(),
            gitserver,
            remote_forge,
            git_proxy: self.git_proxy.clone(),
        }))
    }
}

/// A forge call with a bound, its error naming the server.
async fn bounded<T>(
    url: &str,
    call: impl Future<Output = Result<T, gitserver::forge::ForgeError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(Duration::from_secs(15), call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(ProviderError::Forge {
            what: url.to_string(),
            source,
        }),
        Err(_) => Err(ProviderError::GitServer(format!(
            "{url}: no answer within 15s"
        ))),
    }
}

/// `fb-<suite>-<10 hex digits>`, cut to leave room for `-NNNN` within Gitea's 100
/// characters.
fn repo_prefix(suite: &str) -> String {
    let id = super::docker::run::RunId::random();
    let suite: String = suite.chars().take(60).collect();
    format!("fb-{suite}-{id}")
}

fn write_private(path: &Path, contents: &str) -> Result<(), ProviderError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| ProviderError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)
}

#[async_trait]
impl Environment for ExistingEnvironment {
    fn provider(&self) -> &'static str {
        "existing"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn git_proxy_placement(&self) -> ProxyPlacement {
        self.git_proxy.clone()
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
            // A list that fails must not read as "nothing left": the next suite reuses
            // these names, so every failure is a teardown problem.
            let names: Vec<String> = match gitrepos.list(&list).await {
                Ok(listed) => listed
                    .items
                    .iter()
                    .filter_map(|g| g.metadata.name.clone())
                    .collect(),
                Err(e) => {
                    problems.push(format!("listing GitRepos: {e}"));
                    Vec::new()
                }
            };
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
                    let left = async {
                        Ok::<_, kube::Error>(
                            gitrepos.list(&list).await?.items.len()
                                + bundles.list(&children).await?.items.len()
                                + deployments.list(&children).await?.items.len(),
                        )
                    };
                    match left.await {
                        Ok(0) => break,
                        Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                        Err(e) => {
                            problems.push(format!(
                                "listing what is left of the GitRepos, Bundles and BundleDeployments: {e}"
                            ));
                            break;
                        }
                    }
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
            loop {
                match clusters.list(&list).await {
                    Ok(left) if left.items.is_empty() => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Err(e) => {
                        problems.push(format!("listing what is left of the Clusters: {e}"));
                        break;
                    }
                }
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
        if let Some(forge) = self.remote_forge.take() {
            let prefix = format!("{}-", self.endpoints.repo_prefix);
            let removal = async {
                let mine: Vec<String> = forge
                    .list_my_repos()
                    .await
                    .map_err(|e| {
                        format!("listing {}'s repositories: {e}", self.endpoints.git_user)
                    })?
                    .into_iter()
                    .filter(|repo| repo.name.starts_with(&prefix))
                    .map(|repo| repo.name)
                    .collect();
                let mut failed = Vec::new();
                for name in &mine {
                    if let Err(e) = forge.delete_repo(&self.endpoints.git_user, name).await
                        && !e.is_not_found()
                    {
                        failed.push(format!("{name}: {e}"));
                    }
                }
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(format!("deleting repositories: {}", failed.join("; ")))
                }
            };
            match tokio::time::timeout(Duration::from_secs(60), removal).await {
                Ok(Ok(())) => {}
                Ok(Err(problem)) => problems.push(problem),
                Err(_) => problems.push(format!("deleting repositories {prefix}* took over 60s")),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_CONTEXTS: &str = "apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: 'http://127.0.0.1:1111'}
- name: b
  cluster: {server: 'http://127.0.0.1:2222'}
contexts:
- name: first
  context: {cluster: a, user: u}
- name: second
  context: {cluster: b, user: u}
current-context: first
users:
- name: u
  user: {token: t}
";

    #[test]
    fn a_chosen_context_becomes_the_current_one_and_nothing_else_changes() {
        let yaml = select_context(TWO_CONTEXTS, Some("second"), "test").unwrap();
        assert_eq!(current_server(&yaml), "http://127.0.0.1:2222");
        let config = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(config.clusters.len(), 2);
        assert_eq!(config.contexts.len(), 2);
        assert_eq!(config.auth_infos.len(), 1);
    }

    #[test]
    fn without_a_context_the_file_is_used_as_it_is() {
        let yaml = select_context(TWO_CONTEXTS, None, "test").unwrap();
        assert_eq!(yaml, TWO_CONTEXTS);
        assert_eq!(current_server(&yaml), "http://127.0.0.1:1111");
    }

    #[test]
    fn an_unknown_context_names_the_ones_there_are() {
        let error = select_context(TWO_CONTEXTS, Some("third"), "kc")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no context \"third\""), "{error}");
        assert!(error.contains("first, second"), "{error}");
    }

    #[test]
    fn repository_prefixes_are_unique_per_run_and_fit_gitea_names() {
        let (one, two) = (
            repo_prefix("label-propagation"),
            repo_prefix("label-propagation"),
        );
        assert_ne!(one, two);
        assert!(one.starts_with("fb-label-propagation-"), "{one}");
        let long = repo_prefix(&"x".repeat(300));
        assert!(long.len() + "-0000".len() <= 100, "{}", long.len());
    }

    #[test]
    fn the_token_is_never_printed() {
        let forge = RemoteForge {
            url: "http://gitea".to_string(),
            user: "alice".to_string(),
            token: "s3cret".to_string(),
        };
        assert!(!format!("{forge:?}").contains("s3cret"));
    }

    /// A workspace on a cluster the harness did not make (an embedded API server, returned
    /// with the directory it lives in), with one GitRepo of suite `s`.
    async fn workspace_with_a_gitrepo() -> (
        apiserver::RunningApiServer,
        tempfile::TempDir,
        Box<dyn Environment>,
    ) {
        let api = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .unwrap();
        let tempdir = tempfile::tempdir().unwrap();
        let dir = tempdir.path();
        let kubeconfig = dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).unwrap();
        let environment = ExistingProvider::new(kubeconfig, None, None)
            .create(
                &EnvironmentSpec {
                    suite: "s".into(),
                    work_dir: dir.join("work"),
                    timeout: Duration::from_secs(30),
                },
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        let client = kube_client(&api.kubeconfig_yaml(), "test").await.unwrap();
        fleet_api::install_crds(&client).await.unwrap();
        let gitrepo: GitRepo = serde_json::from_value(serde_json::json!({
            "apiVersion": "fleet.cattle.io/v1alpha1",
            "kind": "GitRepo",
            "metadata": {"name": "repo-0", "namespace": "fleet-local",
                         "labels": {MANAGED_BY_LABEL: MANAGED_BY, SUITE_LABEL: "s"}},
            "spec": {"repo": "https://example.com/r.git"}
        }))
        .unwrap();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "fleet-local"}}))
                .unwrap();
        match namespaces.create(&Default::default(), &namespace).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => panic!("creating namespace fleet-local: {error}"),
        }
        Api::<GitRepo>::namespaced(client, "fleet-local")
            .create(&Default::default(), &gitrepo)
            .await
            .unwrap();
        (api, tempdir, environment)
    }

    #[tokio::test]
    async fn teardown_removes_the_suites_objects() {
        let (api, _dir, environment) = workspace_with_a_gitrepo().await;
        environment.teardown().await.unwrap();
        let client = kube_client(&api.kubeconfig_yaml(), "test").await.unwrap();
        assert!(
            Api::<GitRepo>::all(client)
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_list_that_fails_during_teardown_is_a_problem_not_a_clean_workspace() {
        let (api, _dir, environment) = workspace_with_a_gitrepo().await;
        api.faults().set(apiserver::FaultConfig {
            errors: vec![apiserver::ErrorRule {
                verb: Some("LIST".into()),
                resource: Some("bundledeployments".into()),
                code: 500,
                rate: 1.0,
            }],
            ..Default::default()
        });
        let error = environment.teardown().await.unwrap_err().to_string();
        assert!(error.contains("listing what is left"), "{error}");
    }
}
