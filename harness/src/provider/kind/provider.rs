//! `--provider kind` behind the harness's [`Provider`] and [`Environment`] traits.
//!
//! Each suite gets a management kind cluster, `FLEETBENCH_KIND_DOWNSTREAM` downstream
//! ones and a Gitea. The controller under test is either the bundled one, run as a local
//! subprocess (so its CPU and RSS are measured as on the embedded provider) against the
//! management cluster's host kubeconfig, or upstream Fleet installed with Helm
//! (`FLEETBENCH_KIND_FLEET_CHART`, measured with `--controller external`). Either way
//! GitRepos clone through the harness's git proxy on kind's network gateway, which both a
//! local process and a pod on a kind node reach. Where kind, an image, helm or a chart is
//! missing, creating the environment fails at once with the preflight's message.

use std::net::IpAddr;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use tokio_util::sync::CancellationToken;

use super::KindError;
use super::downstream::{self, Pool};
use super::environment::{KindCluster, KindEnvironment, KindSettings};
use super::fleet::{CHART_ENV, FleetSettings};
use super::options::{KindOptions, OptionsError};
use crate::controller::{ControllerLaunch, LocalController};
use crate::provider::{
    DownstreamCluster, Endpoints, Environment, EnvironmentSpec, Provider, ProviderError,
    ProxyPlacement, RunningController,
};
use crate::suite::AgentMode;

/// Bound on creating one kubeconfig Secret.
const SECRET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The kind provider.
#[derive(Debug, Clone)]
pub struct KindProvider {
    /// The `FLEETBENCH_KIND_*` options, or why they cannot be used (reported by
    /// [`Provider::create`], since [`KindProvider::from_env`] cannot fail).
    options: Result<KindOptions, OptionsError>,
}

impl Default for KindProvider {
    fn default() -> Self {
        Self {
            options: Ok(KindOptions::default()),
        }
    }
}

impl KindProvider {
    /// Settings from the environment (`FLEETBENCH_KIND_*`).
    pub fn from_env() -> Self {
        Self {
            options: KindOptions::from_env(),
        }
    }

    /// A provider with these options.
    pub fn with_options(options: KindOptions) -> Self {
        Self {
            options: Ok(options),
        }
    }

    /// Upstream Fleet's settings, when it is to be installed.
    pub fn upstream_fleet(&self) -> Option<&FleetSettings> {
        self.options.as_ref().ok()?.fleet.as_ref()
    }

    /// Whether the controller mode fits these options, for a caller that knows the mode
    /// and wants to stop before any cluster is made (the environment itself only sees
    /// `start_controller` called or not): the bundled controller cannot run beside
    /// upstream Fleet, and an external controller on kind can only be the upstream Fleet
    /// the provider installs, since its clusters are made per suite.
    pub fn check_controller_mode(&self, bundled: bool) -> Result<(), ControllerModeError> {
        let options = self
            .options
            .as_ref()
            .map_err(|e| ControllerModeError::Options(e.clone()))?;
        match (&options.fleet, bundled) {
            (Some(fleet), true) => Err(ControllerModeError::BundledBesideFleet {
                fleet: fleet.describe(),
            }),
            (None, false) => Err(ControllerModeError::ExternalWithoutFleet),
            _ => Ok(()),
        }
    }
}

/// Why a controller mode cannot run on the kind provider as it is set up.
#[derive(Debug, thiserror::Error)]
pub enum ControllerModeError {
    /// The provider's settings cannot be used, whatever the mode.
    #[error(transparent)]
    Options(OptionsError),
    /// The bundled controller where upstream Fleet is installed.
    #[error("{}", bundled_beside_fleet(fleet))]
    BundledBesideFleet {
        /// Upstream Fleet's chart and version.
        fleet: String,
    },
    /// An external controller where no upstream Fleet is installed.
    #[error("{}", external_without_fleet())]
    ExternalWithoutFleet,
}

/// The message refusing `--controller external` on kind without upstream Fleet.
pub fn external_without_fleet() -> String {
    format!(
        "--controller external on --provider kind measures the upstream Fleet the provider installs per suite (its clusters are made per suite, so nothing else can be installed there first): set {CHART_ENV} to Fleet's chart (see kind-configs/README.md), or use --controller bundled"
    )
}

/// The message refusing the bundled controller beside upstream Fleet.
pub fn bundled_beside_fleet(fleet: &str) -> String {
    format!(
        "upstream Fleet ({fleet}) is installed in this kind environment because {CHART_ENV} is set, so the bundled controller cannot run too: both would reconcile the same fleet.cattle.io objects. Run with `--controller external` (and `--controller-version` to record Fleet's version), or unset {CHART_ENV} to measure the bundled controller"
    )
}

/// A suite's kind environment.
pub struct KindEnv {
    environment: Option<KindEnvironment>,
    endpoints: Endpoints,
    gateway: IpAddr,
    upstream_fleet: Option<String>,
    downstream: parking_lot::Mutex<Pool>,
    agent: parking_lot::Mutex<Option<AgentMode>>,
}

impl KindEnv {
    fn new(
        environment: Option<KindEnvironment>,
        endpoints: Endpoints,
        gateway: IpAddr,
        upstream_fleet: Option<String>,
        downstream: Vec<KindCluster>,
    ) -> Self {
        Self {
            environment,
            endpoints,
            gateway,
            upstream_fleet,
            downstream: parking_lot::Mutex::new(Pool::new(downstream)),
            agent: parking_lot::Mutex::new(None),
        }
    }
}

#[async_trait]
impl Provider for KindProvider {
    fn name(&self) -> &'static str {
        "kind"
    }

    async fn create(
        &self,
        spec: &EnvironmentSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError> {
        let options = self.options.clone().map_err(KindError::from)?;
        let mut settings = KindSettings::new(spec.work_dir.join("kind"), options.downstream);
        settings.fleet = options.fleet;
        settings.load_images = options.load_images;
        let environment = tokio::select! {
            created = KindEnvironment::create(&settings) => created?,
            () = cancel.cancelled() => return Err(ProviderError::Unsupported("interrupted".to_string())),
        };
        let management = environment.clusters().management();
        let forge = environment.forge();
        let endpoints = Endpoints {
            kubeconfig_yaml: management.kubeconfig_host.clone(),
            kubeconfig_path: management.kubeconfig_path.clone(),
            git_api_url: forge.api_url.clone(),
            git_clone_base: forge.api_url.clone(),
            git_user: settings.gitea.user.clone(),
            git_password: settings.gitea.password.clone(),
            git_extensions: false,
            repo_prefix: "bench".to_string(),
            api_faults: false,
            git_server_version: Some(format!("Gitea ({})", settings.images.gitea)),
        };
        let gateway = environment.gateway();
        let upstream_fleet = environment.upstream_fleet().map(str::to_string);
        let downstream = environment.clusters().downstream().to_vec();
        Ok(Box::new(KindEnv::new(
            Some(environment),
            endpoints,
            gateway,
            upstream_fleet,
            downstream,
        )))
    }
}

#[async_trait]
impl Environment for KindEnv {
    fn provider(&self) -> &'static str {
        "kind"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn start_controller(
        &self,
        launch: &ControllerLaunch,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn RunningController>, ProviderError> {
        if let Some(fleet) = &self.upstream_fleet {
            return Err(ProviderError::Unsupported(bundled_beside_fleet(fleet)));
        }
        // Decides whether Clusters registered later get a downstream cluster.
        *self.agent.lock() = Some(launch.agent);
        let controller = LocalController::start(launch, cancel).await?;
        Ok(Box::new(controller))
    }

    async fn downstream_cluster(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DownstreamCluster>, ProviderError> {
        let agent = *self.agent.lock();
        let Some(view) = downstream::secret_view(self.upstream_fleet.is_some(), agent) else {
            return Ok(None);
        };
        let Some(cluster) = self.downstream.lock().claim() else {
            return Ok(None);
        };
        let secret =
            downstream::kubeconfig_secret(namespace, name, downstream::kubeconfig(&cluster, view));
        let secret_name = downstream::secret_name(name);
        let client = crate::provider::kube_client(
            &self.endpoints.kubeconfig_yaml,
            "the kind management cluster's kubeconfig",
        )
        .await?;
        let secrets: Api<Secret> = Api::namespaced(client, namespace);
        let secret_label = format!("{namespace}/{secret_name} of kind cluster {}", cluster.name);
        tokio::time::timeout(
            SECRET_TIMEOUT,
            secrets.create(&PostParams::default(), &secret),
        )
        .await
        .map_err(|_| {
            ProviderError::Unsupported(format!(
                "cannot create the kubeconfig Secret {secret_label}: no answer within {SECRET_TIMEOUT:?}"
            ))
        })?
        .map_err(|source| ProviderError::DownstreamSecret {
            secret: secret_label,
            source: source.into(),
        })?;
        tracing::info!(cluster = %name, kind_cluster = %cluster.name, ?view, "downstream kind cluster registered");
        Ok(Some(DownstreamCluster {
            kubeconfig_secret: secret_name,
        }))
    }

    fn git_proxy_placement(&self) -> ProxyPlacement {
        ProxyPlacement::on(self.gateway)
    }

    async fn teardown(mut self: Box<Self>) -> Result<(), ProviderError> {
        if let Some(environment) = self.environment.take() {
            environment.teardown().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::provider::kind::downstream::tests::cluster;
    use crate::suite::Profile;

    fn endpoints(kubeconfig_yaml: String) -> Endpoints {
        Endpoints {
            kubeconfig_yaml,
            kubeconfig_path: PathBuf::from("/run/kind/mgmt.kubeconfig"),
            git_api_url: "http://127.0.0.1:3000".to_string(),
            git_clone_base: "http://127.0.0.1:3000".to_string(),
            git_user: "fleetbench".to_string(),
            git_password: "pw".to_string(),
            git_extensions: false,
            repo_prefix: "bench".to_string(),
            api_faults: false,
            git_server_version: None,
        }
    }

    fn launch(agent: AgentMode) -> ControllerLaunch {
        ControllerLaunch {
            binary: PathBuf::from("/nonexistent/fleet-controller"),
            kubeconfig: PathBuf::from("/run/kind/mgmt.kubeconfig"),
            profile: Profile::default(),
            legacy: Vec::new(),
            agent,
            env: BTreeMap::new(),
            extra_args: Vec::new(),
            ready_timeout: Duration::from_secs(5),
            work_dir: std::env::temp_dir(),
        }
    }

    fn gateway() -> IpAddr {
        "172.18.0.1".parse().expect("valid")
    }

    #[tokio::test]
    async fn the_bundled_controller_is_refused_beside_upstream_fleet() {
        let env = KindEnv::new(
            None,
            endpoints(String::new()),
            gateway(),
            Some("fleet/fleet 0.12.13".to_string()),
            Vec::new(),
        );
        let error = env
            .start_controller(&launch(AgentMode::Simulated), &CancellationToken::new())
            .await
            .err()
            .expect("refused");
        assert!(matches!(error, ProviderError::Unsupported(_)), "{error}");
        let text = error.to_string();
        assert!(text.contains("fleet/fleet 0.12.13"), "{text}");
        assert!(text.contains("--controller external"), "{text}");
        assert!(text.contains(CHART_ENV), "{text}");
    }

    #[tokio::test]
    async fn without_fleet_the_bundled_controller_is_started_locally() {
        let env = KindEnv::new(None, endpoints(String::new()), gateway(), None, Vec::new());
        let error = env
            .start_controller(&launch(AgentMode::Apply), &CancellationToken::new())
            .await
            .err()
            .expect("no such binary");
        // It got as far as starting the process: the refusal is for upstream Fleet only.
        assert!(matches!(error, ProviderError::Controller(_)), "{error}");
        assert_eq!(*env.agent.lock(), Some(AgentMode::Apply));
    }

    #[test]
    fn the_controller_mode_must_fit_whether_fleet_is_installed() {
        let fleet = KindProvider::with_options(
            KindOptions::from_lookup(
                &|n| (n == CHART_ENV).then(|| "fleet/fleet".to_string()),
                &|_| false,
            )
            .expect("valid"),
        );
        let error = fleet
            .check_controller_mode(true)
            .expect_err("bundled")
            .to_string();
        assert!(
            error.contains("--controller external") && error.contains("fleet/fleet"),
            "{error}"
        );
        fleet
            .check_controller_mode(false)
            .expect("external measures Fleet");
        let plain = KindProvider::default();
        plain.check_controller_mode(true).expect("bundled");
        let error = plain
            .check_controller_mode(false)
            .expect_err("nothing to measure")
            .to_string();
        assert!(error.contains(CHART_ENV), "{error}");
        let broken = KindProvider {
            options: Err(OptionsError::Needs {
                variable: "FLEETBENCH_KIND_FLEET_VERSION",
                needs: CHART_ENV,
                why: "x".to_string(),
            }),
        };
        for bundled in [true, false] {
            let error = broken
                .check_controller_mode(bundled)
                .expect_err("bad settings")
                .to_string();
            assert!(error.contains("FLEETBENCH_KIND_FLEET_VERSION"), "{error}");
        }
    }

    #[test]
    fn the_git_proxy_listens_on_kinds_gateway() {
        let env = KindEnv::new(None, endpoints(String::new()), gateway(), None, Vec::new());
        assert_eq!(env.git_proxy_placement(), ProxyPlacement::on(gateway()));
        assert_eq!(env.git_proxy_placement().listen.port(), 0);
    }

    #[tokio::test]
    async fn a_bad_variable_fails_creation_before_anything_is_made() {
        let provider = KindProvider {
            options: Err(OptionsError::Needs {
                variable: "FLEETBENCH_KIND_FLEET_VERSION",
                needs: CHART_ENV,
                why: "x".to_string(),
            }),
        };
        let work = tempfile::tempdir().expect("tempdir");
        let error = provider
            .create(
                &EnvironmentSpec {
                    suite: "s".to_string(),
                    work_dir: work.path().to_path_buf(),
                    timeout: Duration::from_secs(5),
                },
                &CancellationToken::new(),
            )
            .await
            .err()
            .expect("refused");
        // As users read it: with its causes.
        let error = crate::error_text(&error);
        assert!(error.contains("FLEETBENCH_KIND_FLEET_VERSION"), "{error}");
        assert!(
            std::fs::read_dir(work.path())
                .expect("dir")
                .next()
                .is_none(),
            "nothing written"
        );
    }

    /// Registers Clusters through the environment against the embedded API server, the
    /// way the suites' `create_clusters` step does.
    async fn register(env: &KindEnv, names: &[&str]) -> Vec<Option<DownstreamCluster>> {
        let mut out = Vec::new();
        for name in names {
            out.push(
                env.downstream_cluster("fleet-default", name)
                    .await
                    .expect("registered"),
            );
        }
        out
    }

    async fn management() -> (apiserver::RunningApiServer, String, kube::Client) {
        let api = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .expect("apiserver");
        let kubeconfig = api.kubeconfig_yaml();
        let client = crate::provider::docker::kubeconfig::client(&kubeconfig)
            .await
            .expect("client");
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": "fleet-default"}}))
                    .expect("namespace"),
            )
            .await
            .expect("namespace created");
        (api, kubeconfig, client)
    }

    #[tokio::test]
    async fn with_upstream_fleet_the_first_clusters_get_in_network_kubeconfig_secrets() {
        let (api, kubeconfig, client) = management().await;
        let env = KindEnv::new(
            None,
            endpoints(kubeconfig),
            gateway(),
            Some("fleet/fleet".to_string()),
            vec![cluster("fleetbench-0a1b2c3d4e-ds-1")],
        );
        let registered = register(&env, &["cluster-000", "cluster-001"]).await;
        assert_eq!(
            registered[0].as_ref().map(|d| d.kubeconfig_secret.as_str()),
            Some("cluster-000-kubeconfig")
        );
        assert!(
            registered[1].is_none(),
            "one kind cluster, one registration"
        );
        let secrets: Api<Secret> = Api::namespaced(client, "fleet-default");
        let secret = secrets
            .get("cluster-000-kubeconfig")
            .await
            .expect("created");
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .or_else(|| secret.string_data.as_ref()?.get("value").cloned())
            .expect("key value");
        assert_eq!(
            value,
            "server: https://fleetbench-0a1b2c3d4e-ds-1-control-plane:6443"
        );
        api.shutdown().await;
    }

    #[tokio::test]
    async fn the_bundled_controller_gets_downstream_clusters_only_for_its_apply_agent() {
        let (api, kubeconfig, client) = management().await;
        let env = KindEnv::new(
            None,
            endpoints(kubeconfig),
            gateway(),
            None,
            vec![cluster("ds-1")],
        );
        // Before a controller (and so an agent mode) is known, and with the simulated agent,
        // nothing is handed out.
        assert!(register(&env, &["cluster-000"]).await[0].is_none());
        *env.agent.lock() = Some(AgentMode::Simulated);
        assert!(register(&env, &["cluster-001"]).await[0].is_none());
        *env.agent.lock() = Some(AgentMode::Apply);
        let registered = register(&env, &["cluster-002"]).await;
        assert!(registered[0].is_some());
        let secrets: Api<Secret> = Api::namespaced(client, "fleet-default");
        let secret = secrets
            .get("cluster-002-kubeconfig")
            .await
            .expect("created");
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
            .or_else(|| secret.string_data.as_ref()?.get("value").cloned())
            .expect("key value");
        assert!(value.contains("https://127.0.0.1:40001"), "{value}");
        api.shutdown().await;
    }
}
