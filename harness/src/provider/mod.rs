//! Providers: where the management cluster, the git server and the controller run.
//!
//! A suite never talks to a provider directly; it gets an [`Environment`] with endpoints
//! (a kubeconfig, a git forge URL and credentials, which fleetbench extensions exist) and
//! hooks (start the controller where controllers run here, prepare a downstream cluster,
//! tear everything down). `embedded` runs everything on this machine; `existing` points at
//! a cluster (and optionally a Gitea) you already have; `docker` runs this project's images
//! as containers; `kind` makes real clusters and a real Gitea.
//! Every suite gets a fresh environment, so one suite's leftovers never skew the next.

pub mod docker;
mod embedded;
mod existing;
mod fault;
pub mod kind;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use embedded::EmbeddedProvider;
pub use existing::{ExistingProvider, RemoteForge};
pub use fault::Fault;

use crate::cli::{EnvironmentArgs, ProviderKind};
use crate::controller::{ControllerError, ControllerLaunch, LocalController};
use crate::measure::resources::ResourceSource;

/// Label put on every object the harness creates (so `existing` clusters can be cleaned).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "fleetbench";
/// Label naming the suite that created an object.
pub const SUITE_LABEL: &str = "fleetbench.io/suite";

/// Why an environment could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The Kubernetes API server could not be started. (Boxed: the server's own error
    /// type is that crate's business.)
    #[error("cannot start the embedded Kubernetes API server")]
    ApiServer(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The git server could not be started.
    #[error("cannot start the embedded git server")]
    GitServerStart(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The git server is not usable (named, with why).
    #[error("cannot start the embedded git server: {0}")]
    GitServer(String),
    /// A call to the git server failed.
    #[error("cannot start the embedded git server: {what}")]
    Forge {
        /// The server and the call.
        what: String,
        /// The forge client's error.
        source: gitserver::forge::ForgeError,
    },
    /// The cluster answered with an error.
    #[error("cannot reach the Kubernetes API server at {url} (kubeconfig {kubeconfig})")]
    Unreachable {
        /// Server URL.
        url: String,
        /// Kubeconfig used.
        kubeconfig: String,
        /// What went wrong.
        source: fleet_api::error::Foreign<kube::Error>,
    },
    /// The cluster does not answer at all.
    #[error(
        "cannot reach the Kubernetes API server at {url} (kubeconfig {kubeconfig}): no answer within {after:?}"
    )]
    NoAnswer {
        /// Server URL.
        url: String,
        /// Kubeconfig used.
        kubeconfig: String,
        /// The bound.
        after: Duration,
    },
    /// A kubeconfig is needed and missing or unsuitable (named, with why).
    #[error("kubeconfig problem: {0}")]
    Kubeconfig(String),
    /// A kubeconfig file cannot be read.
    #[error("kubeconfig problem: cannot read {path}")]
    KubeconfigRead {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A kubeconfig cannot be parsed or turned into a client configuration.
    #[error("kubeconfig problem: {origin}")]
    KubeconfigInvalid {
        /// Where it came from.
        origin: String,
        /// kube-rs's error.
        source: kube::config::KubeconfigError,
    },
    /// kube-rs cannot build a client from a kubeconfig.
    #[error("kubeconfig problem: {origin}")]
    KubeconfigClient {
        /// Where it came from.
        origin: String,
        /// kube-rs's error.
        source: fleet_api::error::Foreign<kube::Error>,
    },
    /// A kubeconfig with a context selected cannot be written.
    #[error("kubeconfig problem: {origin}")]
    KubeconfigWrite {
        /// Where it came from.
        origin: String,
        /// The JSON writer's error.
        source: serde_json::Error,
    },
    /// A container provider's kubeconfig is unusable.
    #[error("kubeconfig problem")]
    ContainerKubeconfig(#[source] docker::kubeconfig::KubeconfigError),
    /// A Cluster's name cannot name a downstream cluster of the environment.
    #[error("downstream cluster {name:?}")]
    DownstreamName {
        /// The Cluster's name.
        name: String,
        /// Why it cannot.
        source: docker::run::NameError,
    },
    /// A fault names a cluster the environment cannot have.
    #[error(transparent)]
    ClusterName(docker::run::NameError),
    /// The kubeconfig Secret of a downstream cluster could not be created.
    #[error("cannot create the kubeconfig Secret {secret}")]
    DownstreamSecret {
        /// The Secret (`namespace/name`, and the cluster it is for where that is not
        /// obvious).
        secret: String,
        /// The API server's error.
        source: fleet_api::error::Foreign<kube::Error>,
    },
    /// The controller could not be started.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// File system error.
    #[error("cannot prepare {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Cleaning up failed (what remains is named).
    #[error("teardown incomplete: {0}")]
    Teardown(String),
    /// The docker provider failed (engine, images, containers, network).
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
    /// The kind provider failed (kind, images, clusters, Gitea).
    #[error(transparent)]
    Kind(#[from] kind::KindError),
    /// The environment cannot do what a suite asks (e.g. a fault on the embedded provider).
    #[error("{0}")]
    Unsupported(String),
}

/// What a suite needs to reach.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Kubeconfig (YAML) for the harness.
    pub kubeconfig_yaml: String,
    /// The same, as a file, for a local controller.
    pub kubeconfig_path: PathBuf,
    /// The git forge's base URL, as the harness reaches it.
    pub git_api_url: String,
    /// Clone URLs, as the controller reaches them: `{git_clone_base}/{owner}/{repo}.git`.
    pub git_clone_base: String,
    /// Forge user.
    pub git_user: String,
    /// Forge password.
    pub git_password: String,
    /// The git server serves fleetbench's extensions (request log, per-repo faults).
    /// Informational only: the suites observe and break git through the harness's own
    /// proxy, which works in front of any git server.
    pub git_extensions: bool,
    /// Names of the repositories the suite creates start with this (`bench` on a git
    /// server made for the run; unique per suite on a shared one, so teardown deletes
    /// exactly what the run created).
    pub repo_prefix: String,
    /// The API server serves `/fleetbench/faults`.
    pub api_faults: bool,
    /// Versions, for the results' environment section.
    pub git_server_version: Option<String>,
}

impl Endpoints {
    /// A cluster's endpoints with fleetbench's git server running on this machine.
    pub fn with_local_git(
        kubeconfig_yaml: String,
        kubeconfig_path: PathBuf,
        git: &gitserver::RunningGitServer,
        api_faults: bool,
    ) -> Self {
        Endpoints {
            kubeconfig_yaml,
            kubeconfig_path,
            git_api_url: git.url().to_string(),
            git_clone_base: git.url().to_string(),
            git_user: git.user().to_string(),
            git_password: git.password().to_string(),
            git_extensions: true,
            repo_prefix: "bench".to_string(),
            api_faults,
            git_server_version: Some(format!(
                "fleetbench gitserver (Gitea API {})",
                gitserver::GITEA_API_VERSION
            )),
        }
    }
}

/// Where the harness's git proxy listens, and the URL the controller under test reaches
/// it at. GitRepos clone through the proxy, so it must sit where that controller can reach
/// this machine: loopback for a controller on this machine, a Docker network's gateway for
/// one in a container or a kind node, an address the user names for a remote cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPlacement {
    /// The address to bind (port 0: any free port).
    pub listen: SocketAddr,
    /// The URL the controller uses, when it is not `http://<bound address>`.
    pub public_url: Option<String>,
}

impl ProxyPlacement {
    /// 127.0.0.1 on a free port: for a controller running on this machine.
    pub fn loopback() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
        }
    }

    /// `ip` (e.g. a Docker network's gateway) on a free port.
    pub fn on(ip: std::net::IpAddr) -> Self {
        Self {
            listen: SocketAddr::new(ip, 0),
            public_url: None,
        }
    }
}

/// A downstream cluster a provider created for a Cluster object (apply-mode agents).
#[derive(Debug, Clone)]
pub struct DownstreamCluster {
    /// Name of a Secret (in the workspace namespace) holding its kubeconfig.
    pub kubeconfig_secret: String,
}

/// A controller running somewhere, as the suite sees it.
#[async_trait]
pub trait RunningController: Send {
    /// Where its CPU time and memory can be read, when they can be.
    fn resources(&self) -> Option<ResourceSource>;
    /// Where `/metrics` and `/webhook` are served (as the harness reaches it).
    fn address(&self) -> SocketAddr;
    /// The webhook URL as the git server reaches it.
    fn webhook_url(&self) -> String;
    /// The controller's log file, when there is one on this machine.
    fn log(&self) -> Option<&Path>;
    /// An error if the controller is gone.
    fn check_alive(&mut self) -> Result<(), ControllerError>;
    /// Stops it (bounded).
    async fn stop(self: Box<Self>);
}

#[async_trait]
impl RunningController for LocalController {
    fn resources(&self) -> Option<ResourceSource> {
        Some(ResourceSource::Process(LocalController::pid(self)))
    }

    fn address(&self) -> SocketAddr {
        LocalController::address(self)
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhook", LocalController::address(self))
    }

    fn log(&self) -> Option<&Path> {
        Some(LocalController::log(self))
    }

    fn check_alive(&mut self) -> Result<(), ControllerError> {
        LocalController::check_alive(self)
    }

    async fn stop(self: Box<Self>) {
        LocalController::stop(*self).await;
    }
}

/// One suite's environment.
#[async_trait]
pub trait Environment: Send + Sync {
    /// Provider name (results).
    fn provider(&self) -> &'static str;
    /// Endpoints.
    fn endpoints(&self) -> &Endpoints;
    /// Starts the bundled controller where this environment runs controllers; by default a
    /// local subprocess with the environment's kubeconfig file.
    async fn start_controller(
        &self,
        launch: &ControllerLaunch,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn RunningController>, ProviderError> {
        let controller = LocalController::start(launch, cancel).await?;
        Ok(Box::new(controller))
    }
    /// Called before Cluster `namespace/name` is registered; providers with real downstream
    /// clusters create one (when the suite's agent mode wants them) and return its
    /// kubeconfig Secret in `namespace`. By default there is none (the controller's
    /// simulated agent plays every cluster).
    async fn downstream_cluster(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<DownstreamCluster>, ProviderError> {
        Ok(None)
    }
    /// Where the git proxy must listen for the controller under test to reach it; by
    /// default loopback (a controller on this machine).
    fn git_proxy_placement(&self) -> ProxyPlacement {
        ProxyPlacement::loopback()
    }
    /// Injects an infrastructure fault; by default the environment cannot.
    async fn fault(&self, fault: &Fault) -> Result<(), ProviderError> {
        Err(ProviderError::Unsupported(format!(
            "the {} provider cannot {fault} (--provider docker can)",
            self.provider()
        )))
    }
    /// Removes everything the environment created. Also runs (best effort) on drop.
    async fn teardown(self: Box<Self>) -> Result<(), ProviderError>;
}

/// What a provider is asked for.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    /// Suite name (labels, directory names).
    pub suite: String,
    /// A directory for this environment's files (kubeconfig, git data, logs).
    pub work_dir: PathBuf,
    /// Bound on the environment becoming usable.
    pub timeout: Duration,
}

/// Creates environments.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Name (results).
    fn name(&self) -> &'static str;
    /// Creates a fresh environment.
    async fn create(
        &self,
        spec: &EnvironmentSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError>;
}

/// The provider the command line asks for.
pub fn from_args(args: &EnvironmentArgs) -> Result<Box<dyn Provider>, ProviderError> {
    Ok(match args.provider {
        ProviderKind::Embedded => Box::new(EmbeddedProvider),
        ProviderKind::Existing => {
            let kubeconfig = args.kubeconfig.clone().ok_or_else(|| {
                ProviderError::Kubeconfig(
                    "--provider existing needs --kubeconfig FILE (or KUBECONFIG)".to_string(),
                )
            })?;
            let forge = match (&args.git_url, &args.git_user, &args.git_token) {
                (None, None, None) => None,
                (Some(url), Some(user), Some(token)) => Some(RemoteForge {
                    url: url.trim_end_matches('/').to_string(),
                    user: user.clone(),
                    token: token.clone(),
                }),
                _ => {
                    return Err(ProviderError::Unsupported(
                        "a remote git server needs all of --git-url, --git-user and --git-token (or FLEETBENCH_GIT_TOKEN); without them the embedded git server runs on this machine".to_string(),
                    ));
                }
            };
            Box::new(
                ExistingProvider::new(kubeconfig, args.context.clone(), forge)
                    .with_git_proxy(git_proxy_placement(args)?),
            )
        }
        ProviderKind::Docker => Box::new(docker::DockerProvider::from_env()),
        ProviderKind::Kind => Box::new(kind::KindProvider::from_env()),
    })
}

/// The git proxy's place from `--git-listen` and `--git-public-url` (existing provider).
fn git_proxy_placement(args: &EnvironmentArgs) -> Result<ProxyPlacement, ProviderError> {
    match (args.git_listen, &args.git_public_url) {
        (None, None) => Ok(ProxyPlacement::loopback()),
        (None, Some(_)) => Err(ProviderError::Unsupported(
            "--git-public-url names where the controller reaches the git proxy; give --git-listen too, the address of this machine the proxy binds".to_string(),
        )),
        (Some(listen), None) if listen.ip().is_unspecified() => Err(ProviderError::Unsupported(format!(
            "--git-listen {listen} binds every address, so no clone URL follows from it; give --git-public-url (e.g. http://my-host:{port}) or a specific address",
            port = listen.port()
        ))),
        (Some(listen), public_url) => {
            if let Some(url) = public_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(ProviderError::Unsupported(format!(
                    "--git-public-url {url:?} must be an http:// or https:// URL"
                )));
            }
            Ok(ProxyPlacement {
                listen,
                public_url: public_url.clone(),
            })
        }
    }
}

/// Builds a kube client from kubeconfig YAML.
pub async fn kube_client(
    kubeconfig_yaml: &str,
    origin: &str,
) -> Result<kube::Client, ProviderError> {
    let config = kube_config(kubeconfig_yaml, origin).await?;
    kube::Client::try_from(config).map_err(|source| ProviderError::KubeconfigClient {
        origin: origin.to_string(),
        source: source.into(),
    })
}

/// The client configuration [`kube_client`] uses: the kubeconfig's current context, with
/// bounded connects and reads.
pub async fn kube_config(
    kubeconfig_yaml: &str,
    origin: &str,
) -> Result<kube::Config, ProviderError> {
    let invalid = |source| ProviderError::KubeconfigInvalid {
        origin: origin.to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig_yaml).map_err(invalid)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(invalid)?;
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(295));
    Ok(config)
}

/// Asks the API server for `/version` (bounded); the first thing done with any cluster,
/// so an unreachable one fails with a clear message before anything else happens.
pub async fn check_reachable(
    client: &kube::Client,
    url: &str,
    kubeconfig: &str,
) -> Result<String, ProviderError> {
    const BOUND: Duration = Duration::from_secs(15);
    match tokio::time::timeout(BOUND, client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(source)) => Err(ProviderError::Unreachable {
            url: url.to_string(),
            kubeconfig: kubeconfig.to_string(),
            source: source.into(),
        }),
        Err(_) => Err(ProviderError::NoAnswer {
            url: url.to_string(),
            kubeconfig: kubeconfig.to_string(),
            after: BOUND,
        }),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn env_args(extra: &[&str]) -> EnvironmentArgs {
        let mut argv = vec!["fleetbench", "run", "s.yaml"];
        argv.extend_from_slice(extra);
        let Command::Run(run) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed a run")
        };
        run.env
    }

    #[test]
    fn existing_needs_a_kubeconfig() {
        let error = from_args(&EnvironmentArgs {
            kubeconfig: None,
            ..env_args(&["--provider", "existing"])
        })
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("--kubeconfig"), "{error}");
    }

    #[test]
    fn the_git_proxy_binds_where_told_and_needs_a_url_for_every_address() {
        let placement = |extra: &[&str]| git_proxy_placement(&env_args(extra));
        assert_eq!(placement(&[]).unwrap(), ProxyPlacement::loopback());
        let given = placement(&["--git-listen", "192.0.2.10:7000"]).unwrap();
        assert_eq!(given.listen, "192.0.2.10:7000".parse().unwrap());
        assert_eq!(given.public_url, None);
        let error = placement(&["--git-listen", "0.0.0.0:7000"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--git-public-url"), "{error}");
        let behind_nat = placement(&[
            "--git-listen",
            "0.0.0.0:7000",
            "--git-public-url",
            "http://bench-host:7000",
        ])
        .unwrap();
        assert_eq!(
            behind_nat.public_url.as_deref(),
            Some("http://bench-host:7000")
        );
        for wrong in [
            &["--git-public-url", "http://x"][..],
            &["--git-listen", "192.0.2.1:1", "--git-public-url", "git://x"],
        ] {
            assert!(placement(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn a_remote_forge_needs_url_user_and_token_together() {
        for partial in [
            &["--git-url", "http://gitea"][..],
            &["--git-url", "http://gitea", "--git-user", "alice"],
            &["--git-user", "alice", "--git-token", "t"],
        ] {
            let mut args = env_args(
                &[
                    &["--provider", "existing", "--kubeconfig", "k"][..],
                    partial,
                ]
                .concat(),
            );
            if !partial.contains(&"--git-token") {
                args.git_token = None;
            }
            let error = from_args(&args).err().unwrap().to_string();
            assert!(
                error.contains("--git-url, --git-user and --git-token"),
                "{partial:?}: {error}"
            );
        }
        let whole = env_args(&[
            "--provider",
            "existing",
            "--kubeconfig",
            "k",
            "--git-url",
            "http://gitea/",
            "--git-user",
            "alice",
            "--git-token",
            "t",
            "--context",
            "c",
        ]);
        assert!(from_args(&whole).is_ok());
    }
}
