//! `fleet-controller`: runs the bundled controller until stopped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use fleet_api::{LegacySwitch, LegacySwitches, Profile};
use fleet_controller::Controller;
use fleet_controller::config::{AgentMode, Config, DelayRange, Workers};
use fleet_controller::store::Key;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

/// The fleet.cattle.io controller bundled with fleetbench: GitRepo -> Bundle ->
/// BundleDeployment, with Fleet's API, env vars and metrics.
#[derive(Parser, Debug)]
#[command(name = "fleet-controller", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Kubeconfig of the management cluster (default: $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,

    /// Create (or update) the five fleet.cattle.io CRDs before starting; CRDs installed by
    /// someone else (Fleet's own) are left alone.
    #[arg(long)]
    install_crds: bool,

    /// In-process agent: none, simulated (plays every Cluster) or apply (deploys to Clusters
    /// with a kubeconfig Secret).
    #[arg(long, default_value = "none", value_parser = |s: &str| s.parse::<AgentMode>())]
    agent: AgentMode,

    /// current, or fleet-v0.10 (every legacy switch on).
    #[arg(long, default_value = "current", value_parser = |s: &str| s.parse::<Profile>())]
    profile: Profile,

    /// Legacy switches to turn on, comma-separated; each brings back one pre-fix algorithm.
    #[arg(long, value_enum, value_delimiter = ',')]
    legacy: Vec<LegacySwitch>,

    /// Address for /metrics, /healthz, /readyz and POST /webhook (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Write the bound listener address (host:port) to this file once the controller is ready.
    #[arg(long)]
    address_file: Option<PathBuf>,

    /// Every GitRepo is re-synced, and put back on the polling schedule, this often.
    #[arg(long, env = "GITREPO_SYNC_PERIOD", default_value = "2h", value_parser = fleet_api::duration::parse)]
    gitrepo_sync_period: Duration,

    /// GitRepo sync and poll workers.
    #[arg(long, env = "GITREPO_RECONCILER_WORKERS", default_value_t = 50)]
    gitrepo_workers: usize,

    /// Bundle reconciler workers.
    #[arg(long, env = "BUNDLE_RECONCILER_WORKERS", default_value_t = 50)]
    bundle_workers: usize,

    /// BundleDeployment workers (the in-process agent's).
    #[arg(
        long,
        env = "BUNDLEDEPLOYMENT_RECONCILER_WORKERS",
        default_value_t = 50
    )]
    bundledeployment_workers: usize,

    /// Cluster reconciler workers.
    #[arg(long, env = "CLUSTER_RECONCILER_WORKERS", default_value_t = 50)]
    cluster_workers: usize,

    /// ClusterGroup reconciler workers.
    #[arg(long, env = "CLUSTERGROUP_RECONCILER_WORKERS", default_value_t = 50)]
    clustergroup_workers: usize,

    /// Status writer workers.
    #[arg(long, default_value_t = 50)]
    status_workers: usize,

    /// Status coalescing window: at most one status write per object per window (errors are
    /// written at once). Fleet's GitRepo status reconciler delays by 3s.
    #[arg(long, default_value = "3s", value_parser = fleet_api::duration::parse)]
    status_window: Duration,

    /// Period of the legacy cluster pass that deletes orphaned BundleDeployments (with
    /// orphan-cleanup-in-cluster-pass).
    #[arg(long, default_value = "10m", value_parser = fleet_api::duration::parse)]
    legacy_cluster_pass_period: Duration,

    /// Simulated agent delay before reporting a deployment: a duration (100ms) or a uniform
    /// range (50ms..200ms).
    #[arg(long, default_value = "50ms..200ms", value_parser = |s: &str| s.parse::<DelayRange>())]
    agent_delay: DelayRange,

    /// Probability (0..1) that the simulated agent reports a deployment as failed.
    #[arg(long, default_value_t = 0.0)]
    agent_fail_rate: f64,

    /// Clusters (name or namespace/name, comma-separated) on which the simulated agent fails
    /// every deployment.
    #[arg(long, value_delimiter = ',')]
    agent_fail_clusters: Vec<String>,

    /// Directory for fetched repositories (default: a temporary directory).
    #[arg(long)]
    git_cache_dir: Option<PathBuf>,

    /// Timeout of one git operation (ls-remote, fetch).
    #[arg(long, default_value = "30s", value_parser = fleet_api::duration::parse)]
    git_timeout: Duration,

    /// Namespace of Fleet's global `gitjob-webhook` Secret.
    #[arg(long, default_value = "cattle-fleet-system")]
    webhook_secret_namespace: String,

    /// Accept file:// GitRepo repositories (local experiments only: they read this
    /// controller's disk, including other GitRepos' caches).
    #[arg(long, env = "FLEET_ALLOW_FILE_REPOS")]
    allow_file_repos: bool,

    /// GitRepo pollingInterval values below this are raised to it.
    #[arg(long, env = "FLEET_MIN_POLLING_INTERVAL", default_value = "15s", value_parser = fleet_api::duration::parse)]
    min_polling_interval: Duration,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CRDs the controller installs (YAML) and exit.
    Crds,
    /// Run a standalone apply agent for one downstream cluster.
    Agent {
        /// The Cluster to serve, as NAMESPACE/NAME.
        #[arg(long)]
        cluster: String,
        /// Kubeconfig of the management cluster (where BundleDeployments live).
        #[arg(long)]
        upstream_kubeconfig: PathBuf,
        /// Kubeconfig of the downstream cluster to deploy to.
        #[arg(long)]
        downstream_kubeconfig: PathBuf,
        /// Concurrent deployments.
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
}

async fn client(path: Option<&Path>) -> anyhow::Result<Client> {
    match path {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let config =
                kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .with_context(|| format!("using kubeconfig {}", path.display()))?;
            Client::try_from(config).context("building the API client")
        }
        None => Client::try_default()
            .await
            .context("no kubeconfig: pass --kubeconfig, set KUBECONFIG or run in a cluster"),
    }
}

fn write_address_file(path: &Path, addr: SocketAddr) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{addr}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // kube uses rustls with ring; when a workspace build also links aws-lc-rs (through the
    // harness's testcontainers), rustls cannot pick a provider on its own and would panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crds) => {
            let yaml = fleet_api::crds_yaml().context("rendering CRDs")?;
            match std::io::Write::write_all(&mut std::io::stdout(), yaml.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("writing to stdout")
                }
                _ => Ok(()),
            }
        }
        Some(Command::Agent {
            cluster,
            upstream_kubeconfig,
            downstream_kubeconfig,
            workers,
        }) => {
            let Some((namespace, name)) = cluster.split_once('/') else {
                bail!("--cluster must be NAMESPACE/NAME, got {cluster:?}");
            };
            let upstream = client(Some(&upstream_kubeconfig)).await?;
            let downstream = client(Some(&downstream_kubeconfig)).await?;
            let cancel = CancellationToken::new();
            let stop = cancel.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                stop.cancel();
            });
            fleet_controller::agent::apply::run_standalone(
                upstream,
                downstream,
                Key::new(namespace, name),
                workers,
                cancel,
            )
            .await
            .context("standalone agent")?;
            Ok(())
        }
        None => {
            let mut legacy: LegacySwitches = cli.profile.switches();
            for switch in cli.legacy {
                legacy.insert(switch);
            }
            if !(0.0..=1.0).contains(&cli.agent_fail_rate) {
                bail!(
                    "--agent-fail-rate must be between 0 and 1, got {}",
                    cli.agent_fail_rate
                );
            }
            let config = Config {
                agent: cli.agent,
                legacy,
                listen: Some(cli.listen),
                install_crds: cli.install_crds,
                workers: Workers {
                    gitrepo: cli.gitrepo_workers,
                    bundle: cli.bundle_workers,
                    bundledeployment: cli.bundledeployment_workers,
                    cluster: cli.cluster_workers,
                    clustergroup: cli.clustergroup_workers,
                    status: cli.status_workers,
                },
                gitrepo_sync_period: cli.gitrepo_sync_period,
                status_window: cli.status_window,
                legacy_cluster_pass_period: cli.legacy_cluster_pass_period,
                agent_delay: cli.agent_delay,
                agent_fail_rate: cli.agent_fail_rate,
                agent_fail_clusters: cli.agent_fail_clusters,
                git_cache_dir: cli.git_cache_dir,
                git_timeout: cli.git_timeout,
                webhook_secret_namespace: cli.webhook_secret_namespace,
                allow_file_repos: cli.allow_file_repos,
                min_polling_interval: cli.min_polling_interval,
            };
            tracing::info!(profile = %cli.profile, legacy = %config.legacy, agent = ?config.agent, "starting");
            let client = client(cli.kubeconfig.as_deref()).await?;
            let controller = Controller::start(client, config)
                .await
                .context("starting the controller")?;
            let addr = controller.addr();
            let ready = async {
                while !controller.wait_ready(Duration::from_secs(60)).await {
                    tracing::warn!("still waiting for caches to sync");
                }
            };
            tokio::select! {
                () = ready => {
                    if let (Some(path), Some(addr)) = (&cli.address_file, addr) {
                        write_address_file(path, addr)?;
                    }
                    tracing::info!(address = ?addr, "ready");
                    shutdown_signal().await;
                }
                () = shutdown_signal() => {}
            }
            tracing::info!("shutting down");
            controller.shutdown().await;
            Ok(())
        }
    }
}
