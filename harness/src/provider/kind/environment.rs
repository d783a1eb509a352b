//! One run on kind: a management cluster and N downstream clusters created with `kind`,
//! Gitea beside them on kind's network, the network's gateway (where the git proxy
//! listens), and, when asked for, upstream Fleet installed with Helm.
//!
//! Creation is all-or-nothing: if any cluster fails, the ones already made are deleted
//! before the error is returned, and dropping a [`KindClusters`] without deleting it
//! deletes them too (blocking, bounded), so an interrupted run leaves no clusters behind.
//! Gitea is a testcontainers container labelled with the run like the docker provider's,
//! so the same label sweep finds it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::provider::docker::cleanup::{self, Selector};
use crate::provider::docker::engine::{self, Engine};
use crate::provider::docker::run::RunId;

use super::KindError;
use super::command::{CommandLine, Kind};
use super::config::{self, ClusterRole, RenderOptions};
use super::fleet::{self, FleetSettings};
use super::gitea::{self, ForgeAccess, GiteaSettings, RunningGitea};
use super::network;
use super::preflight::{self, Extras, KindImages};

/// Environment variable for the host address API servers are published on.
pub const API_ADDRESS_ENV: &str = "FLEETBENCH_KIND_API_ADDRESS";

/// What a kind run is built from.
#[derive(Debug, Clone)]
pub struct KindSettings {
    /// Where rendered configs and kubeconfigs go.
    pub work_dir: PathBuf,
    /// The `kind-configs` directory.
    pub configs_dir: PathBuf,
    /// Node and Gitea images.
    pub images: KindImages,
    /// Host address of the API servers (`127.0.0.1` unless `FLEETBENCH_KIND_API_ADDRESS`).
    pub api_server_address: String,
    /// How many downstream clusters.
    pub downstream: usize,
    /// Bound on creating one cluster (and on deleting one).
    pub cluster_timeout: Duration,
    /// Gitea's settings.
    pub gitea: GiteaSettings,
    /// The Docker network kind puts its nodes on (Gitea joins it; its gateway is where
    /// the git proxy listens).
    pub network: String,
    /// Upstream Fleet to install into the management cluster, if any.
    pub fleet: Option<FleetSettings>,
    /// Images to load into every cluster from this machine's Docker.
    pub load_images: Vec<String>,
}

impl KindSettings {
    /// Defaults for a run writing its files under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>, downstream: usize) -> Self {
        let network = network::network_name(std::env::var(network::NETWORK_ENV).ok().as_deref());
        Self {
            work_dir: work_dir.into(),
            configs_dir: config::configs_dir(),
            images: KindImages::from_env(),
            api_server_address: std::env::var(API_ADDRESS_ENV)
                .ok()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| "127.0.0.1".to_string()),
            downstream,
            cluster_timeout: Duration::from_secs(300),
            gitea: GiteaSettings {
                user: "fleetbench".to_string(),
                password: uuid::Uuid::new_v4().simple().to_string(),
                network: network.clone(),
                startup_timeout: Duration::from_secs(120),
            },
            network,
            fleet: None,
            load_images: Vec::new(),
        }
    }
}

/// The clusters of a run, in creation order (management first), and their names.
pub fn plan(run: &RunId, downstream: usize) -> Vec<(String, ClusterRole)> {
    std::iter::once((format!("fleetbench-{run}-mgmt"), ClusterRole::Management))
        .chain(
            (1..=downstream).map(|i| (format!("fleetbench-{run}-ds-{i}"), ClusterRole::Downstream)),
        )
        .collect()
}

/// One kind cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindCluster {
    /// kind's name for it.
    pub name: String,
    /// Management or downstream.
    pub role: ClusterRole,
    /// The rendered config it was created from.
    pub config_path: PathBuf,
    /// Its own kubeconfig file (host view).
    pub kubeconfig_path: PathBuf,
    /// Kubeconfig as the host reaches it.
    pub kubeconfig_host: String,
    /// Kubeconfig as containers on kind's network reach it (for kubeconfig Secrets).
    pub kubeconfig_internal: String,
}

/// The run's kind clusters; deleted by [`KindClusters::delete`] or, failing that, on drop.
#[derive(Debug)]
pub struct KindClusters {
    kind: Kind,
    clusters: Vec<KindCluster>,
    timeout: Duration,
    deleted: bool,
}

impl KindClusters {
    /// Creates the management cluster and `settings.downstream` downstream clusters; if
    /// one fails, deletes those already created and returns the failure.
    pub async fn create(
        kind: Kind,
        run: &RunId,
        settings: &KindSettings,
    ) -> Result<Self, KindError> {
        std::fs::create_dir_all(&settings.work_dir).map_err(|source| KindError::Io {
            path: settings.work_dir.clone(),
            source,
        })?;
        let mut created = KindClusters {
            kind,
            clusters: Vec::new(),
            timeout: settings.cluster_timeout,
            deleted: false,
        };
        for (name, role) in plan(run, settings.downstream) {
            match created.create_one(&name, role, settings).await {
                Ok(cluster) => created.clusters.push(cluster),
                Err(error) => {
                    // kind removes a cluster whose creation failed; the others are ours.
                    if let Err(cleanup) = created.delete_all().await {
                        tracing::error!(%cleanup, "could not delete the kind clusters created so far");
                    }
                    return Err(error);
                }
            }
        }
        Ok(created)
    }

    async fn create_one(
        &self,
        name: &str,
        role: ClusterRole,
        settings: &KindSettings,
    ) -> Result<KindCluster, KindError> {
        let template = config::load(&settings.configs_dir, role)?;
        let origin = settings.configs_dir.join(role.file_name());
        let rendered = config::render(
            &template,
            &origin.display().to_string(),
            &RenderOptions {
                name: name.to_string(),
                api_server_address: settings.api_server_address.clone(),
                api_server_port: 0,
            },
        )?;
        let config_path = settings.work_dir.join(format!("{name}.yaml"));
        std::fs::write(&config_path, rendered).map_err(|source| KindError::Io {
            path: config_path.clone(),
            source,
        })?;
        let kubeconfig_path = settings.work_dir.join(format!("{name}.kubeconfig"));
        tracing::info!(cluster = %name, "creating kind cluster");
        self.kind
            .create_cluster(
                name,
                &config_path,
                &settings.images.node,
                &kubeconfig_path,
                Duration::from_secs(120).min(self.timeout),
            )
            .run(self.timeout)
            .await?;
        // From here the cluster exists but is not in the list the cleanup walks yet.
        let finished = self
            .finish_one(name, role, settings, config_path, &kubeconfig_path)
            .await;
        if finished.is_err()
            && let Err(error) = self
                .kind
                .delete_cluster(name, &kubeconfig_path)
                .run(self.timeout)
                .await
        {
            tracing::error!(error = %crate::error_text(&error), cluster = %name, "could not delete a half-made kind cluster");
        }
        finished
    }

    /// Side-loads the images into a created cluster and reads both its kubeconfigs.
    async fn finish_one(
        &self,
        name: &str,
        role: ClusterRole,
        settings: &KindSettings,
        config_path: PathBuf,
        kubeconfig_path: &Path,
    ) -> Result<KindCluster, KindError> {
        if !settings.load_images.is_empty() {
            tracing::info!(cluster = %name, images = ?settings.load_images, "loading images");
            self.kind
                .load_images(name, &settings.load_images)
                .run(self.timeout)
                .await?;
        }
        let kubeconfig_host = self
            .kind
            .get_kubeconfig(name, false)
            .run(self.timeout)
            .await?;
        let kubeconfig_internal = self
            .kind
            .get_kubeconfig(name, true)
            .run(self.timeout)
            .await?;
        Ok(KindCluster {
            name: name.to_string(),
            role,
            config_path,
            kubeconfig_path: kubeconfig_path.to_path_buf(),
            kubeconfig_host,
            kubeconfig_internal,
        })
    }

    /// The management cluster.
    pub fn management(&self) -> &KindCluster {
        &self.clusters[0]
    }

    /// The downstream clusters.
    pub fn downstream(&self) -> &[KindCluster] {
        &self.clusters[1..]
    }

    fn delete_lines(&self) -> Vec<CommandLine> {
        self.clusters
            .iter()
            .rev()
            .map(|c| self.kind.delete_cluster(&c.name, &c.kubeconfig_path))
            .collect()
    }

    async fn delete_all(&mut self) -> Result<(), KindError> {
        let mut failures = Vec::new();
        for line in self.delete_lines() {
            if let Err(error) = line.run(self.timeout).await {
                failures.push(crate::error_text(&error));
            }
        }
        self.deleted = true;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(KindError::Teardown(failures.join("; ")))
        }
    }

    /// Deletes every cluster (downstream first).
    pub async fn delete(mut self) -> Result<(), KindError> {
        self.delete_all().await
    }
}

impl Drop for KindClusters {
    fn drop(&mut self) {
        if self.deleted || self.clusters.is_empty() {
            return;
        }
        for line in self.delete_lines() {
            if let Err(error) = run_blocking(&line, self.timeout) {
                tracing::error!(error = %crate::error_text(&error), command = %line, "could not delete a kind cluster on drop");
            }
        }
    }
}

/// Why a command run without a runtime failed.
#[derive(Debug, thiserror::Error)]
enum BlockingRunError {
    /// It could not be started or waited for.
    #[error("cannot run it")]
    Io(#[from] std::io::Error),
    /// It exited unsuccessfully.
    #[error("exited with {0}")]
    Failed(std::process::ExitStatus),
    /// It ran too long.
    #[error("killed after {0:?}")]
    Killed(Duration),
}

/// Runs `line` without a runtime (for `Drop`), killing it after `timeout`.
fn run_blocking(line: &CommandLine, timeout: Duration) -> Result<(), BlockingRunError> {
    let mut child = std::process::Command::new(&line.program)
        .args(&line.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(BlockingRunError::Failed(status))
            };
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BlockingRunError::Killed(timeout));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A whole kind run: clusters, Gitea, and upstream Fleet when asked for.
pub struct KindEnvironment {
    // Gitea goes first (its container is removed on drop), then the clusters.
    gitea: Option<RunningGitea>,
    clusters: Option<KindClusters>,
    engine: Engine,
    run: RunId,
    gateway: IpAddr,
    upstream_fleet: Option<String>,
}

impl KindEnvironment {
    /// Checks the engine, `kind`, the images and what upstream Fleet needs (stopping at
    /// once with everything that is missing), then creates the clusters, finds kind's
    /// network gateway, starts Gitea on that network and installs upstream Fleet. On any
    /// failure what was made is removed (the clusters and Gitea clean up when dropped).
    pub async fn create(settings: &KindSettings) -> Result<Self, KindError> {
        let engine = engine::preflight().await?;
        let tools = preflight::check_all(
            std::env::var_os("PATH").as_deref(),
            &engine.docker,
            &settings.images,
            Extras {
                fleet: settings.fleet.as_ref(),
                load_images: &settings.load_images,
            },
            &|p| p.exists(),
        )
        .await?;
        let run = RunId::random();
        let clusters = KindClusters::create(tools.kind, &run, settings).await?;
        // kind made the network with the first cluster; now it can be asked about.
        let gateway = network::gateway(&engine.docker, &settings.network).await?;
        let gitea = gitea::start(&run, &settings.gitea).await?;
        let mut upstream_fleet = None;
        if let (Some(fleet_settings), Some(helm)) = (&settings.fleet, &tools.helm) {
            let management = clusters.management();
            fleet::install(
                helm,
                fleet_settings,
                &management.kubeconfig_path,
                &management.kubeconfig_host,
                &management.kubeconfig_internal,
                &settings.work_dir,
            )
            .await?;
            upstream_fleet = Some(fleet_settings.describe());
        }
        Ok(Self {
            gitea: Some(gitea),
            clusters: Some(clusters),
            engine,
            run,
            gateway,
            upstream_fleet,
        })
    }

    /// The IPv4 gateway of kind's network: this machine as the nodes reach it.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// The upstream Fleet installed (chart and version), if any.
    pub fn upstream_fleet(&self) -> Option<&str> {
        self.upstream_fleet.as_deref()
    }

    /// The run's id.
    pub fn run(&self) -> &RunId {
        &self.run
    }

    /// The clusters.
    pub fn clusters(&self) -> &KindClusters {
        self.clusters.as_ref().expect("present until teardown")
    }

    /// Gitea's URLs and the harness's token.
    pub fn forge(&self) -> &ForgeAccess {
        &self.gitea.as_ref().expect("present until teardown").access
    }

    /// Removes Gitea (and anything else labelled with the run) and deletes the clusters.
    pub async fn teardown(mut self) -> Result<(), KindError> {
        let mut failures = Vec::new();
        if let Some(gitea) = self.gitea.take()
            && let Err(error) = gitea.container.rm().await
        {
            failures.push(format!("Gitea container: {}", crate::error_text(&error)));
        }
        if let Err(error) =
            cleanup::sweep(&self.engine.docker, &Selector::Run(self.run.clone())).await
        {
            failures.push(crate::error_text(&error));
        }
        if let Some(clusters) = self.clusters.take()
            && let Err(error) = clusters.delete().await
        {
            failures.push(crate::error_text(&error));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(KindError::Teardown(failures.join("; ")))
        }
    }
}

/// The path of a rendered config in `work_dir` (for messages and tests).
pub fn rendered_config_path(work_dir: &Path, cluster: &str) -> PathBuf {
    work_dir.join(format!("{cluster}.yaml"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A stand-in for `kind` (a shell script) that records its arguments, writes a
    /// kubeconfig pointing at `server` on create, prints the host or internal kubeconfig,
    /// and fails creating any cluster whose name contains `fail_on` (loading images into
    /// any whose name contains `fail_load`).
    struct FakeKind {
        dir: tempfile::TempDir,
    }

    impl FakeKind {
        fn new(server: &str, fail_on: &str) -> Self {
            Self::failing(server, fail_on, "never")
        }

        fn failing(server: &str, fail_on: &str, fail_load: &str) -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = dir.path().join("calls.log");
            let script = format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
cmd="$1 $2"; shift 2
name=""; kubeconfig=""; internal=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name="$2"; shift 2;;
    --kubeconfig) kubeconfig="$2"; shift 2;;
    --internal) internal=1; shift;;
    *) shift;;
  esac
done
config() {{
  printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: kind-%s\n  cluster:\n    server: %s\ncontexts:\n- name: kind-%s\n  context:\n    cluster: kind-%s\n    user: kind-%s\ncurrent-context: kind-%s\nusers:\n- name: kind-%s\n  user:\n    username: fleetbench\n' "$name" "$1" "$name" "$name" "$name" "$name" "$name"
}}
case "$cmd" in
  "create cluster")
    case "$name" in *'{fail_on}'*) echo "ERROR: failed to create cluster: node image not present" >&2; exit 1;; esac
    config '{server}' > "$kubeconfig";;
  "get kubeconfig")
    if [ -n "$internal" ]; then config "https://$name-control-plane:6443"; else config '{server}'; fi;;
  "load docker-image")
    case "$name" in *'{fail_load}'*) echo "ERROR: image: rancher/fleet:v0.12.13 not present locally" >&2; exit 1;; esac;;
  "delete cluster") ;;
  *) echo "unexpected: $cmd" >&2; exit 2;;
esac
"#,
                log = log.display(),
            );
            let path = dir.path().join("kind");
            std::fs::write(&path, script).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            Self { dir }
        }

        fn kind(&self) -> Kind {
            Kind::new(self.dir.path().join("kind"))
        }

        fn calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls.log"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    fn settings(work_dir: &Path, downstream: usize) -> KindSettings {
        let mut settings = KindSettings::new(work_dir, downstream);
        settings.configs_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("kind-configs");
        settings.images = KindImages {
            node: "kindest/node:v1.33.1".to_string(),
            gitea: "gitea/gitea:1.22.3-rootless".to_string(),
        };
        settings.api_server_address = "127.0.0.1".to_string();
        settings.cluster_timeout = Duration::from_secs(30);
        settings
    }

    #[test]
    fn a_run_plans_one_management_and_n_downstream_clusters() {
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        assert_eq!(
            plan(&run, 2),
            [
                (
                    "fleetbench-0a1b2c3d4e-mgmt".to_string(),
                    ClusterRole::Management
                ),
                (
                    "fleetbench-0a1b2c3d4e-ds-1".to_string(),
                    ClusterRole::Downstream
                ),
                (
                    "fleetbench-0a1b2c3d4e-ds-2".to_string(),
                    ClusterRole::Downstream
                ),
            ]
        );
        for (name, _) in plan(&run, 99) {
            config::validate_name(&name).expect("kind accepts the planned names");
        }
    }

    #[tokio::test]
    async fn clusters_are_created_from_rendered_configs_and_deleted_in_reverse() {
        let api = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .expect("apiserver");
        let fake = FakeKind::new(&api.url(), "never");
        let work = tempfile::tempdir().expect("tempdir");
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let clusters = KindClusters::create(fake.kind(), &run, &settings(work.path(), 2))
            .await
            .expect("created");
        assert_eq!(clusters.downstream().len(), 2);
        let management = clusters.management();
        assert_eq!(management.name, "fleetbench-0a1b2c3d4e-mgmt");
        let rendered = std::fs::read_to_string(rendered_config_path(work.path(), &management.name))
            .expect("config rendered");
        assert!(
            rendered.contains("name: fleetbench-0a1b2c3d4e-mgmt"),
            "{rendered}"
        );
        assert!(rendered.contains("cluster-role: management"), "{rendered}");
        let calls = fake.calls();
        assert_eq!(
            calls[0],
            format!(
                "create cluster --name fleetbench-0a1b2c3d4e-mgmt --config {} --image kindest/node:v1.33.1 --kubeconfig {} --wait 30s",
                management.config_path.display(),
                management.kubeconfig_path.display()
            )
        );
        assert_eq!(calls[1], "get kubeconfig --name fleetbench-0a1b2c3d4e-mgmt");
        assert_eq!(
            calls[2],
            "get kubeconfig --name fleetbench-0a1b2c3d4e-mgmt --internal"
        );
        // The host kubeconfig reaches the cluster; the internal one names the node.
        let client = crate::provider::docker::kubeconfig::client(&management.kubeconfig_host)
            .await
            .expect("client");
        tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
            .await
            .expect("bounded")
            .expect("reachable");
        assert_eq!(
            crate::provider::docker::kubeconfig::server_of(
                &clusters.downstream()[1].kubeconfig_internal
            )
            .expect("server"),
            "https://fleetbench-0a1b2c3d4e-ds-2-control-plane:6443"
        );
        clusters.delete().await.expect("deleted");
        let deletes: Vec<String> = fake
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("delete cluster"))
            .map(|c| c.split_whitespace().nth(3).unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            deletes,
            [
                "fleetbench-0a1b2c3d4e-ds-2",
                "fleetbench-0a1b2c3d4e-ds-1",
                "fleetbench-0a1b2c3d4e-mgmt"
            ]
        );
        api.shutdown().await;
    }

    #[tokio::test]
    async fn a_failed_cluster_deletes_the_ones_before_it_and_says_why() {
        let fake = FakeKind::new("http://127.0.0.1:1", "ds-2");
        let work = tempfile::tempdir().expect("tempdir");
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let error = KindClusters::create(fake.kind(), &run, &settings(work.path(), 3))
            .await
            .expect_err("ds-2 fails")
            .to_string();
        assert!(error.contains("node image not present"), "{error}");
        assert!(
            error.contains("--name fleetbench-0a1b2c3d4e-ds-2"),
            "{error}"
        );
        let calls = fake.calls();
        assert!(!calls.iter().any(|c| c.contains("ds-3")), "{calls:?}");
        let deleted: Vec<&String> = calls.iter().filter(|c| c.starts_with("delete")).collect();
        assert_eq!(deleted.len(), 2, "{calls:?}");
        assert!(
            deleted[0].contains("ds-1") && deleted[1].contains("mgmt"),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn images_are_loaded_into_each_cluster_and_a_failed_load_deletes_it_too() {
        let fake = FakeKind::failing("http://127.0.0.1:1", "never", "ds-2");
        let work = tempfile::tempdir().expect("tempdir");
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let mut settings = settings(work.path(), 2);
        settings.load_images = vec!["rancher/fleet:v0.12.13".to_string()];
        let error = KindClusters::create(fake.kind(), &run, &settings)
            .await
            .expect_err("loading into ds-2 fails")
            .to_string();
        assert!(error.contains("not present locally"), "{error}");
        let calls = fake.calls();
        let loads: Vec<&String> = calls.iter().filter(|c| c.starts_with("load")).collect();
        assert_eq!(
            loads,
            [
                "load docker-image --name fleetbench-0a1b2c3d4e-mgmt rancher/fleet:v0.12.13",
                "load docker-image --name fleetbench-0a1b2c3d4e-ds-1 rancher/fleet:v0.12.13",
                "load docker-image --name fleetbench-0a1b2c3d4e-ds-2 rancher/fleet:v0.12.13",
            ]
        );
        // The half-made ds-2 is deleted first, then the ones before it.
        let deleted: Vec<String> = calls
            .iter()
            .filter(|c| c.starts_with("delete cluster"))
            .map(|c| c.split_whitespace().nth(3).unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            deleted,
            [
                "fleetbench-0a1b2c3d4e-ds-2",
                "fleetbench-0a1b2c3d4e-ds-1",
                "fleetbench-0a1b2c3d4e-mgmt"
            ]
        );
    }

    #[test]
    fn gitea_joins_the_network_kind_uses() {
        let settings = KindSettings::new("/tmp/w", 0);
        assert_eq!(settings.gitea.network, settings.network);
        assert_eq!(settings.fleet, None);
        assert!(settings.load_images.is_empty());
    }

    #[tokio::test]
    async fn dropping_undeleted_clusters_deletes_them() {
        let fake = FakeKind::new("http://127.0.0.1:1", "never");
        let work = tempfile::tempdir().expect("tempdir");
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let clusters = KindClusters::create(fake.kind(), &run, &settings(work.path(), 1))
            .await
            .expect("created");
        drop(clusters);
        let deletes = fake
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("delete cluster"))
            .count();
        assert_eq!(deletes, 2);
    }
}
