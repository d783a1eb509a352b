//! `--provider docker` behind the harness's [`Provider`] and [`Environment`] traits.
//!
//! Each suite gets a fresh [`DockerEnvironment`]: the management cluster and the git server
//! start with it, the controller starts in its own container when the runner asks, and a
//! downstream cluster (API server plus its own apply agent) is created for each Cluster the
//! suite registers when the suite's agent mode is `apply`; with `simulated` or `none` the
//! controller plays the clusters as on the embedded provider, so every suite runs
//! unchanged. Faults (partitions, controller stop/start) go to the environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::DockerError;
use super::environment::{DockerEnvironment, DockerSettings};
use super::kubeconfig;
use super::run::{ClusterName, Role};
use crate::controller::{ControllerError, ControllerLaunch};
use crate::measure::resources::ResourceSource;
use crate::provider::{
    DownstreamCluster, Endpoints, Environment, EnvironmentSpec, Fault, Provider, ProviderError,
    ProxyPlacement, RunningController,
};
use crate::suite::AgentMode;

/// How often the controller container's state is checked.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The docker provider.
#[derive(Debug, Clone)]
pub struct DockerProvider {
    settings: DockerSettings,
}

impl DockerProvider {
    /// A provider starting containers with `settings`.
    pub fn new(settings: DockerSettings) -> Self {
        Self { settings }
    }

    /// Images tagged `$FLEETBENCH_IMAGE_TAG` (default `dev`), a fresh git password per run.
    pub fn from_env() -> Self {
        Self::new(DockerSettings::default())
    }
}

/// The controller's command line in its container (its kubeconfig and listen address are
/// the container's own). With `agent: apply` the downstream clusters carry their own
/// agents, so the controller runs none.
pub fn controller_args(launch: &ControllerLaunch) -> Vec<String> {
    let agent = match launch.agent {
        AgentMode::Apply => AgentMode::None,
        other => other,
    };
    let mut args = vec![
        "--install-crds".to_string(),
        "--agent".to_string(),
        agent.as_str().to_string(),
        "--profile".to_string(),
        launch.profile.as_str().to_string(),
    ];
    if !launch.legacy.is_empty() {
        args.push("--legacy".to_string());
        args.push(
            launch
                .legacy
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    args.extend(launch.extra_args.iter().cloned());
    args
}

/// A suite's docker environment as its handle and its controller's handle both reach it.
struct DockerEnvState {
    environment: Mutex<Option<DockerEnvironment>>,
    /// The suite's agent mode, known once the controller starts.
    agent: parking_lot::Mutex<Option<AgentMode>>,
    /// Set while a `stop_controller` fault holds the controller down.
    controller_held_down: AtomicBool,
}

impl DockerEnvState {
    /// The environment, unless it was torn down.
    async fn environment(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, DockerEnvironment>, ProviderError> {
        tokio::sync::MutexGuard::try_map(self.environment.lock().await, Option::as_mut)
            .map_err(|_| ProviderError::Unsupported("the environment was torn down".into()))
    }
}

/// A suite's docker environment.
pub struct DockerEnv {
    shared: Arc<DockerEnvState>,
    endpoints: Endpoints,
    kube: kube::Client,
    /// This machine's address on the run's network, where the controller container
    /// reaches the git proxy.
    gateway: std::net::IpAddr,
}

#[async_trait]
impl Provider for DockerProvider {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn create(
        &self,
        spec: &EnvironmentSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError> {
        std::fs::create_dir_all(&spec.work_dir).map_err(|source| ProviderError::Io {
            path: spec.work_dir.clone(),
            source,
        })?;
        let settings = self.settings.clone();
        let work_dir = spec.work_dir.clone();
        let build = async move {
            let mut environment = DockerEnvironment::create(settings).await?;
            environment.start_management().await?;
            environment.start_gitserver().await?;
            Ok::<_, DockerError>(environment)
        };
        // Dropping a half-built environment (Ctrl-C) removes its containers.
        let environment = tokio::select! {
            built = tokio::time::timeout(spec.timeout, build) => built.map_err(|_| {
                ProviderError::Unsupported(format!(
                    "the docker environment did not come up within {:?}", spec.timeout
                ))
            })??,
            () = cancel.cancelled() => {
                return Err(ProviderError::Unsupported("interrupted".to_string()));
            }
        };
        let gateway = super::network::gateway(&environment.engine().docker, environment.network())
            .await
            .map_err(DockerError::from)?;
        let management = environment.management().expect("started");
        let git = environment.git().expect("started");
        let kubeconfig_path = work_dir.join("kubeconfig");
        std::fs::write(&kubeconfig_path, &management.kubeconfig_host).map_err(|source| {
            ProviderError::Io {
                path: kubeconfig_path.clone(),
                source,
            }
        })?;
        let endpoints = Endpoints {
            kubeconfig_yaml: management.kubeconfig_host.clone(),
            kubeconfig_path,
            git_api_url: git.endpoint.host_url.clone(),
            git_clone_base: git.endpoint.network_url.clone(),
            git_user: git.user.clone(),
            git_password: git.password.clone(),
            git_extensions: true,
            repo_prefix: "bench".to_string(),
            api_faults: true,
            git_server_version: Some(format!(
                "fleetbench gitserver (Gitea API {}) in a container, image tag {}",
                gitserver::GITEA_API_VERSION,
                environment.images().tag()
            )),
        };
        let kube = kubeconfig::client(&management.kubeconfig_host)
            .await
            .map_err(ProviderError::ContainerKubeconfig)?;
        tracing::info!(suite = %spec.suite, run = %environment.run(), "docker environment ready");
        Ok(Box::new(DockerEnv {
            shared: Arc::new(DockerEnvState {
                environment: Mutex::new(Some(environment)),
                agent: parking_lot::Mutex::new(None),
                controller_held_down: AtomicBool::new(false),
            }),
            endpoints,
            kube,
            gateway,
        }))
    }
}

#[async_trait]
impl Environment for DockerEnv {
    fn provider(&self) -> &'static str {
        "docker"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn git_proxy_placement(&self) -> ProxyPlacement {
        ProxyPlacement::on(self.gateway)
    }

    async fn start_controller(
        &self,
        launch: &ControllerLaunch,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn RunningController>, ProviderError> {
        *self.shared.agent.lock() = Some(launch.agent);
        let args = controller_args(launch);
        let log = launch.work_dir.join("controller.log");
        std::fs::create_dir_all(&launch.work_dir).map_err(|source| ProviderError::Io {
            path: launch.work_dir.clone(),
            source,
        })?;
        let started = async {
            let mut environment = self.shared.environment().await?;
            let controller = environment
                .start_controller(&args, &launch.env, Some(&log))
                .await?;
            let started = (controller.host_address, controller.webhook_url());
            let container = environment.run().container_name(&Role::Controller);
            Ok::<_, ProviderError>((
                started.0,
                started.1,
                container,
                environment.engine().docker.clone(),
            ))
        };
        let (address, webhook_url, container, docker) = tokio::select! {
            started = started => started?,
            () = cancel.cancelled() => return Err(ControllerError::Cancelled.into()),
        };
        let died = Arc::new(parking_lot::Mutex::new(None));
        let resources = ResourceSource::Container {
            docker: docker.clone(),
            container: container.clone(),
        };
        let watcher = tokio::spawn(watch_controller(
            docker,
            container,
            self.shared.clone(),
            died.clone(),
        ));
        Ok(Box::new(DockerController {
            shared: self.shared.clone(),
            address,
            webhook_url,
            log,
            died,
            watcher,
            resources,
        }))
    }

    async fn downstream_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DownstreamCluster>, ProviderError> {
        if *self.shared.agent.lock() != Some(AgentMode::Apply) {
            return Ok(None);
        }
        let cluster: ClusterName =
            name.parse()
                .map_err(|source| ProviderError::DownstreamName {
                    name: name.to_string(),
                    source,
                })?;
        let secret = {
            let mut environment = self.shared.environment().await?;
            let secret = environment
                .add_downstream(cluster.clone())
                .await?
                .kubeconfig_secret(namespace);
            environment.start_agent(&cluster, namespace).await?;
            secret
        };
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        let secrets: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.kube.clone(), namespace);
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|source| ProviderError::DownstreamSecret {
                secret: format!("{namespace}/{secret_name}"),
                source: source.into(),
            })?;
        Ok(Some(DownstreamCluster {
            kubeconfig_secret: secret_name,
        }))
    }

    async fn fault(&self, fault: &Fault) -> Result<(), ProviderError> {
        let cluster = |name: &str| {
            name.parse::<ClusterName>()
                .map_err(ProviderError::ClusterName)
        };
        let environment = self.shared.environment().await?;
        match fault {
            Fault::PartitionCluster(name) => environment.partition(&cluster(name)?).await?,
            Fault::HealCluster(name) => environment.heal(&cluster(name)?).await?,
            Fault::StopController { grace } => {
                self.shared
                    .controller_held_down
                    .store(true, Ordering::SeqCst);
                environment.stop_controller(*grace).await?;
            }
            Fault::StartController => {
                environment.restart_controller().await?;
                self.shared
                    .controller_held_down
                    .store(false, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    async fn teardown(self: Box<Self>) -> Result<(), ProviderError> {
        let environment = self.shared.environment.lock().await.take();
        match environment {
            Some(environment) => {
                Box::pin(environment.teardown()).await?;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Marks the controller dead when its container stops without a `stop_controller` fault.
async fn watch_controller(
    docker: bollard::Docker,
    container: String,
    shared: Arc<DockerEnvState>,
    died: Arc<parking_lot::Mutex<Option<String>>>,
) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Ok(inspected) = docker.inspect_container(&container, None).await else {
            // Gone: removed by teardown or `stop`, which end this task too.
            continue;
        };
        let state = inspected.state.unwrap_or_default();
        if state.running != Some(true) && !shared.controller_held_down.load(Ordering::SeqCst) {
            *died.lock() = Some(format!(
                "container {container} exited with code {}",
                state.exit_code.unwrap_or(-1)
            ));
            return;
        }
    }
}

/// The controller in its container, as the runner sees it.
struct DockerController {
    shared: Arc<DockerEnvState>,
    address: std::net::SocketAddr,
    webhook_url: String,
    log: PathBuf,
    died: Arc<parking_lot::Mutex<Option<String>>>,
    watcher: tokio::task::JoinHandle<()>,
    /// Its container, sampled through the engine (so remote engines and restarts are
    /// followed too).
    resources: ResourceSource,
}

#[async_trait]
impl RunningController for DockerController {
    fn resources(&self) -> Option<ResourceSource> {
        Some(self.resources.clone())
    }

    fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    fn webhook_url(&self) -> String {
        self.webhook_url.clone()
    }

    fn log(&self) -> Option<&std::path::Path> {
        Some(&self.log)
    }

    fn check_alive(&mut self) -> Result<(), ControllerError> {
        match self.died.lock().clone() {
            Some(status) => Err(ControllerError::Died {
                status,
                log: self.log.clone(),
                tail: crate::controller::tail(&self.log),
            }),
            None => Ok(()),
        }
    }

    async fn stop(self: Box<Self>) {
        self.watcher.abort();
        let mut guard = self.shared.environment.lock().await;
        if let Some(environment) = guard.as_mut()
            && let Err(error) = environment.remove_controller().await
        {
            tracing::warn!(error = %crate::error_text(&error), "removing the controller container");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::suite::{LegacySwitch, Profile};

    fn launch(agent: AgentMode) -> ControllerLaunch {
        ControllerLaunch {
            binary: PathBuf::from("/unused/fleet-controller"),
            kubeconfig: PathBuf::from("/unused/kubeconfig"),
            profile: Profile::FleetV010,
            legacy: vec![
                LegacySwitch::NoPollJitter,
                LegacySwitch::UnthrottledStatusWrites,
            ],
            agent,
            env: BTreeMap::new(),
            extra_args: vec!["--status-window".to_string(), "1s".to_string()],
            ready_timeout: Duration::from_secs(60),
            work_dir: PathBuf::from("/tmp"),
        }
    }

    #[test]
    fn the_container_gets_the_suites_settings_but_not_host_paths() {
        let args = controller_args(&launch(AgentMode::Simulated));
        assert_eq!(
            args,
            [
                "--install-crds",
                "--agent",
                "simulated",
                "--profile",
                "fleet-v0.10",
                "--legacy",
                "no-poll-jitter,unthrottled-status-writes",
                "--status-window",
                "1s"
            ]
        );
        assert!(!args.iter().any(|a| a.contains("/unused")), "{args:?}");
    }

    #[test]
    fn with_real_agents_the_controller_runs_none() {
        let args = controller_args(&launch(AgentMode::Apply));
        assert_eq!(&args[1..3], ["--agent", "none"]);
    }
}
