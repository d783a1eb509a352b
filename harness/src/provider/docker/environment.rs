//! One run's containers: the management cluster, the git server, the controller and the
//! downstream clusters on a private network, with their endpoints, faults and teardown.
//!
//! [`DockerEnvironment::create`] checks the engine and the images before anything is
//! started, so a machine without them fails at once with what is missing. Each component
//! is started on request (suites need different sets), waits until it answers its health
//! endpoint, and is reachable twice: from the host at a 127.0.0.1 port and from the other
//! containers by name. Teardown removes every container, then sweeps the run's label, so
//! nothing is left; dropping the environment without a teardown (an error, a panic, a
//! cancelled task) does the same, blocking.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::DownloadFromContainerOptionsBuilder;
use k8s_openapi::api::core::v1::Secret;
use parking_lot::Mutex;
use testcontainers::core::logs::LogFrame;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt as _};

use super::DockerError;
use super::cleanup::{self, Leftovers, Selector};
use super::containers::{self, API_PORT, CONTROLLER_PORT, GIT_PORT, KUBECONFIG_OUT, Placement};
use super::engine::{self, Engine};
use super::images::{self, ImageSet};
use super::kubeconfig;
use super::network;
use super::run::{ClusterName, Role, RunId};

/// How many lines of each container's output are kept for error messages.
const LOG_TAIL_LINES: usize = 40;

/// What a docker environment is built from.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// The images (tag).
    pub images: ImageSet,
    /// Bound on each container becoming ready.
    pub startup_timeout: Duration,
    /// The git server's user.
    pub git_user: String,
    /// Its password.
    pub git_password: String,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            images: ImageSet::from_env(),
            startup_timeout: Duration::from_secs(60),
            git_user: "fleetbench".to_string(),
            git_password: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// A server reached from two places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// From the host (`http://127.0.0.1:PORT`).
    pub host_url: String,
    /// From containers on the run's network (`http://NAME:PORT`).
    pub network_url: String,
}

/// The last lines a container printed (for error messages), filled by a log consumer that
/// also appends everything to a file when given one.
#[derive(Debug, Clone, Default)]
struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn consumer(
        &self,
        name: String,
        file: Option<std::fs::File>,
    ) -> impl Fn(&LogFrame) + Send + Sync + 'static {
        let lines = self.0.clone();
        let file = Mutex::new(file);
        move |frame: &LogFrame| {
            let (stream, bytes) = match frame {
                LogFrame::StdOut(bytes) => ("stdout", bytes),
                LogFrame::StdErr(bytes) => ("stderr", bytes),
            };
            if let Some(file) = file.lock().as_mut() {
                use std::io::Write as _;
                let _ = file.write_all(bytes);
            }
            for line in String::from_utf8_lossy(bytes).lines() {
                tracing::debug!(container = %name, stream, "{line}");
                let mut lines = lines.lock();
                if lines.len() == LOG_TAIL_LINES {
                    lines.pop_front();
                }
                lines.push_back(line.to_string());
            }
        }
    }

    fn text(&self) -> String {
        let lines = self.0.lock();
        if lines.is_empty() {
            "(no output)".to_string()
        } else {
            lines.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }
}

/// A started container with its output tail.
struct Started {
    container: ContainerAsync<GenericImage>,
    name: String,
    log: LogTail,
}

impl Started {
    fn id(&self) -> &str {
        self.container.id()
    }
}

/// The management cluster's API server.
pub struct ManagementCluster {
    started: Started,
    /// Its URLs.
    pub endpoint: Endpoint,
    /// Kubeconfig for the harness (host URL).
    pub kubeconfig_host: String,
    /// Kubeconfig for the controller and the agents (in-network URL).
    pub kubeconfig_network: String,
}

/// The git server.
pub struct GitServerContainer {
    started: Started,
    /// Its URLs.
    pub endpoint: Endpoint,
    /// Forge user.
    pub user: String,
    /// Forge password.
    pub password: String,
}

/// The controller.
pub struct ControllerContainer {
    started: Started,
    /// `/metrics` and `/webhook` as the host reaches them.
    pub host_address: SocketAddr,
    /// Its URLs.
    pub endpoint: Endpoint,
}

impl ControllerContainer {
    /// The webhook URL as the git server (on the network) reaches it.
    pub fn webhook_url(&self) -> String {
        format!("{}/webhook", self.endpoint.network_url)
    }
}

/// A downstream cluster: an API server container and, once started, its agent container in
/// the same network namespace.
pub struct DownstreamCluster {
    // Declared first so it is dropped (removed) before the container whose network
    // namespace it uses.
    agent: Option<Started>,
    apiserver: Started,
    /// The cluster's name.
    pub name: ClusterName,
    /// Its API's URLs.
    pub endpoint: Endpoint,
    /// Kubeconfig for the harness (host URL).
    pub kubeconfig_host: String,
    /// Kubeconfig as containers on the network reach it: what its kubeconfig Secret in the
    /// management cluster holds.
    pub kubeconfig_network: String,
    /// Kubeconfig for its own agent (127.0.0.1 inside the shared network namespace).
    pub kubeconfig_local: String,
}

impl DownstreamCluster {
    /// The container name of its API server (what a partition disconnects).
    pub fn container_name(&self) -> &str {
        &self.apiserver.name
    }

    /// Whether its agent container was started.
    pub fn has_agent(&self) -> bool {
        self.agent.is_some()
    }

    /// Name of the Secret holding its kubeconfig in the management cluster.
    pub fn kubeconfig_secret_name(&self) -> String {
        format!("{}-kubeconfig", self.name)
    }

    /// The kubeconfig Secret to create in `namespace` of the management cluster (key
    /// `value`, as Fleet's `spec.kubeConfigSecret` expects), with the in-network URL.
    pub fn kubeconfig_secret(&self, namespace: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(self.kubeconfig_secret_name()),
                namespace: Some(namespace.to_string()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "fleetbench".to_string(),
                )])),
                ..Default::default()
            },
            string_data: Some(BTreeMap::from([(
                "value".to_string(),
                self.kubeconfig_network.clone(),
            )])),
            ..Default::default()
        }
    }
}

/// One run on the Docker engine.
pub struct DockerEnvironment {
    // Drop order matters: downstream clusters (agents first), controller, git server,
    // management cluster; then `Drop` sweeps the network.
    downstream: Vec<DownstreamCluster>,
    controller: Option<ControllerContainer>,
    git: Option<GitServerContainer>,
    management: Option<ManagementCluster>,
    engine: Engine,
    placement: Placement,
    token: String,
    settings: DockerSettings,
    swept: bool,
}

impl std::fmt::Debug for DockerEnvironment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEnvironment")
            .field("run", &self.placement.run)
            .field("network", &self.placement.network)
            .field("downstream", &self.downstream.len())
            .finish_non_exhaustive()
    }
}

impl DockerEnvironment {
    /// Checks the engine and the images, removes runs abandoned by dead processes of this
    /// machine, and creates the run's network. Nothing else is started yet.
    pub async fn create(settings: DockerSettings) -> Result<Self, DockerError> {
        let engine = engine::preflight().await?;
        images::require(&engine.docker, &settings.images.all(), images::BUILD_REMEDY).await?;
        match cleanup::sweep_abandoned(&engine.docker).await {
            Ok(runs) if !runs.is_empty() => {
                tracing::info!(
                    runs = runs.len(),
                    "removed runs abandoned by earlier processes"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(
                    error = %crate::error_text(&error),
                    "could not check for abandoned runs"
                );
            }
        }
        let run = RunId::random();
        let network = network::create(&engine.docker, &run).await?;
        tracing::info!(run = %run, network = %network, engine = %engine.info.engine_version, "docker environment created");
        Ok(Self {
            downstream: Vec::new(),
            controller: None,
            git: None,
            management: None,
            placement: Placement {
                run,
                network,
                images: settings.images.clone(),
                startup_timeout: settings.startup_timeout,
            },
            engine,
            token: uuid::Uuid::new_v4().simple().to_string(),
            settings,
            swept: false,
        })
    }

    /// The run's id (the value of every object's `fleetbench.run` label).
    pub fn run(&self) -> &RunId {
        &self.placement.run
    }

    /// The run's network.
    pub fn network(&self) -> &str {
        &self.placement.network
    }

    /// The engine and its negotiated client.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The images containers start from.
    pub fn images(&self) -> &ImageSet {
        &self.placement.images
    }

    /// The management cluster, once started.
    pub fn management(&self) -> Option<&ManagementCluster> {
        self.management.as_ref()
    }

    /// The git server, once started.
    pub fn git(&self) -> Option<&GitServerContainer> {
        self.git.as_ref()
    }

    /// The controller, once started.
    pub fn controller(&self) -> Option<&ControllerContainer> {
        self.controller.as_ref()
    }

    /// A downstream cluster by name.
    pub fn downstream(&self, name: &ClusterName) -> Option<&DownstreamCluster> {
        self.downstream.iter().find(|d| &d.name == name)
    }

    fn endpoint(&self, role: &Role, port: u16, host_port: u16) -> Endpoint {
        Endpoint {
            host_url: format!("http://127.0.0.1:{host_port}"),
            network_url: format!("http://{}:{port}", self.placement.dns_name(role)),
        }
    }

    async fn start(
        &self,
        role: &Role,
        request: ContainerRequest<GenericImage>,
        log_file: Option<&Path>,
    ) -> Result<Started, DockerError> {
        let name = self.placement.run.container_name(role);
        let log = LogTail::default();
        let file = match log_file {
            Some(path) => Some(
                std::fs::File::create(path).map_err(|source| DockerError::Io {
                    path: path.to_path_buf(),
                    source,
                })?,
            ),
            None => None,
        };
        let request = request.with_log_consumer(log.consumer(name.clone(), file));
        match request.start().await {
            Ok(container) => Ok(Started {
                container,
                name,
                log,
            }),
            Err(source) => {
                // Give the log stream a moment to deliver the container's last words.
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(DockerError::Start {
                    container: name,
                    source: Box::new(source.into()),
                    output: log.text(),
                })
            }
        }
    }

    /// Reads the kubeconfig an API server container wrote (it appears right after the
    /// server answers `/readyz`).
    async fn read_kubeconfig(&self, started: &Started) -> Result<String, DockerError> {
        let deadline = tokio::time::Instant::now() + self.settings.startup_timeout;
        loop {
            match read_file(&self.engine.docker, started.id(), KUBECONFIG_OUT).await {
                Ok(bytes) if !bytes.is_empty() => {
                    return String::from_utf8(bytes).map_err(|e| DockerError::Kubeconfig {
                        container: started.name.clone(),
                        source: kubeconfig::KubeconfigError::NotUtf8(e),
                    });
                }
                outcome => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(DockerError::Timeout {
                            what: format!(
                                "{KUBECONFIG_OUT} in {} ({})",
                                started.name,
                                outcome
                                    .err()
                                    .map_or_else(|| "empty".to_string(), |e| crate::error_text(&e))
                            ),
                            after: self.settings.startup_timeout,
                            output: started.log.text(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn rewrite(&self, started: &Started, yaml: &str, server: &str) -> Result<String, DockerError> {
        kubeconfig::with_server(yaml, server).map_err(|source| DockerError::Kubeconfig {
            container: started.name.clone(),
            source,
        })
    }

    /// Starts the management cluster's API server.
    pub async fn start_management(&mut self) -> Result<&ManagementCluster, DockerError> {
        if self.management.is_none() {
            let role = Role::Management;
            let host_port = containers::free_local_port().map_err(DockerError::Port)?;
            let request = containers::apiserver(&self.placement, &role, host_port, &self.token);
            let started = self.start(&role, request, None).await?;
            let endpoint = self.endpoint(&role, API_PORT, host_port);
            let written = self.read_kubeconfig(&started).await?;
            let kubeconfig_host = self.rewrite(&started, &written, &endpoint.host_url)?;
            let kubeconfig_network = self.rewrite(&started, &written, &endpoint.network_url)?;
            tracing::info!(host = %endpoint.host_url, network = %endpoint.network_url, "management cluster up");
            self.management = Some(ManagementCluster {
                started,
                endpoint,
                kubeconfig_host,
                kubeconfig_network,
            });
        }
        Ok(self.management.as_ref().expect("just started"))
    }

    /// Starts the git server.
    pub async fn start_gitserver(&mut self) -> Result<&GitServerContainer, DockerError> {
        if self.git.is_none() {
            let role = Role::GitServer;
            let host_port = containers::free_local_port().map_err(DockerError::Port)?;
            let request = containers::gitserver(
                &self.placement,
                host_port,
                &self.settings.git_user,
                &self.settings.git_password,
            );
            let started = self.start(&role, request, None).await?;
            let endpoint = self.endpoint(&role, GIT_PORT, host_port);
            tracing::info!(host = %endpoint.host_url, network = %endpoint.network_url, "git server up");
            self.git = Some(GitServerContainer {
                started,
                endpoint,
                user: self.settings.git_user.clone(),
                password: self.settings.git_password.clone(),
            });
        }
        Ok(self.git.as_ref().expect("just started"))
    }

    /// Starts the controller against the management cluster (which must be up), with
    /// `args` (profile, legacy switches, agent mode) and `env` (Fleet's variables); its
    /// output also goes to `log_file` when given.
    pub async fn start_controller(
        &mut self,
        args: &[String],
        env: &BTreeMap<String, String>,
        log_file: Option<&Path>,
    ) -> Result<&ControllerContainer, DockerError> {
        if self.controller.is_some() {
            return Err(DockerError::AlreadyStarted("the controller"));
        }
        let kubeconfig = self
            .management
            .as_ref()
            .ok_or(DockerError::NotStarted("the management cluster"))?
            .kubeconfig_network
            .clone();
        let role = Role::Controller;
        let host_port = containers::free_local_port().map_err(DockerError::Port)?;
        let request = containers::controller(&self.placement, host_port, &kubeconfig, args, env);
        let started = self.start(&role, request, log_file).await?;
        let endpoint = self.endpoint(&role, CONTROLLER_PORT, host_port);
        tracing::info!(host = %endpoint.host_url, "controller up");
        self.controller = Some(ControllerContainer {
            started,
            host_address: SocketAddr::from(([127, 0, 0, 1], host_port)),
            endpoint,
        });
        Ok(self.controller.as_ref().expect("just started"))
    }

    /// Removes the controller container (the management cluster keeps what it wrote).
    pub async fn remove_controller(&mut self) -> Result<(), DockerError> {
        let Some(controller) = self.controller.take() else {
            return Ok(());
        };
        let name = controller.started.name.clone();
        controller
            .started
            .container
            .rm()
            .await
            .map_err(|source| DockerError::Container {
                action: "remove",
                container: name,
                source: Box::new(source.into()),
            })
    }

    /// Stops the controller container (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_controller(&self, grace: Duration) -> Result<(), DockerError> {
        let controller = self
            .controller
            .as_ref()
            .ok_or(DockerError::NotStarted("the controller"))?;
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        controller
            .started
            .container
            .stop_with_timeout(Some(seconds))
            .await
            .map_err(|source| DockerError::Container {
                action: "stop",
                container: controller.started.name.clone(),
                source: Box::new(source.into()),
            })
    }

    /// Starts the stopped controller container again and waits until it is ready.
    pub async fn restart_controller(&self) -> Result<(), DockerError> {
        let controller = self
            .controller
            .as_ref()
            .ok_or(DockerError::NotStarted("the controller"))?;
        controller
            .started
            .container
            .start()
            .await
            .map_err(|source| DockerError::Container {
                action: "start",
                container: controller.started.name.clone(),
                source: Box::new(source.into()),
            })?;
        self.wait_http(
            &format!("{}/readyz", controller.endpoint.host_url),
            &controller.started,
        )
        .await
    }

    /// Adds a downstream cluster: its API server container, on the run's network.
    pub async fn add_downstream(
        &mut self,
        name: ClusterName,
    ) -> Result<&DownstreamCluster, DockerError> {
        if self.downstream(&name).is_some() {
            return Err(DockerError::DuplicateCluster(name.to_string()));
        }
        let role = Role::DownstreamApi(name.clone());
        let host_port = containers::free_local_port().map_err(DockerError::Port)?;
        let request = containers::apiserver(&self.placement, &role, host_port, &self.token);
        let apiserver = self.start(&role, request, None).await?;
        let endpoint = self.endpoint(&role, API_PORT, host_port);
        let written = self.read_kubeconfig(&apiserver).await?;
        let kubeconfig_host = self.rewrite(&apiserver, &written, &endpoint.host_url)?;
        let kubeconfig_network = self.rewrite(&apiserver, &written, &endpoint.network_url)?;
        let kubeconfig_local = self.rewrite(
            &apiserver,
            &written,
            &format!("http://127.0.0.1:{API_PORT}"),
        )?;
        tracing::info!(cluster = %name, host = %endpoint.host_url, network = %endpoint.network_url, "downstream cluster up");
        self.downstream.push(DownstreamCluster {
            agent: None,
            apiserver,
            name,
            endpoint,
            kubeconfig_host,
            kubeconfig_network,
            kubeconfig_local,
        });
        Ok(self.downstream.last().expect("just pushed"))
    }

    /// Starts the apply agent of downstream cluster `name`, serving the Cluster
    /// `namespace/name` of the management cluster. Docker restarts it while it fails (for
    /// instance before the Cluster exists), like a pod's container.
    pub async fn start_agent(
        &mut self,
        name: &ClusterName,
        namespace: &str,
    ) -> Result<(), DockerError> {
        let upstream = self
            .management
            .as_ref()
            .ok_or(DockerError::NotStarted("the management cluster"))?
            .kubeconfig_network
            .clone();
        let index = self
            .downstream
            .iter()
            .position(|d| &d.name == name)
            .ok_or_else(|| DockerError::UnknownCluster(name.to_string()))?;
        if self.downstream[index].agent.is_some() {
            return Err(DockerError::AlreadyStarted("the agent"));
        }
        let cluster = &self.downstream[index];
        let request = containers::agent(
            &self.placement,
            name,
            namespace,
            cluster.apiserver.id(),
            &upstream,
            &cluster.kubeconfig_local,
        );
        let agent = self
            .start(&Role::Agent(name.clone()), request, None)
            .await?;
        self.downstream[index].agent = Some(agent);
        Ok(())
    }

    fn cluster(&self, name: &ClusterName) -> Result<&DownstreamCluster, DockerError> {
        self.downstream(name)
            .ok_or_else(|| DockerError::UnknownCluster(name.to_string()))
    }

    /// Cuts downstream cluster `name` off the network: its API server and agent lose the
    /// management cluster and the git server, and the host loses its mapped port.
    pub async fn partition(&self, name: &ClusterName) -> Result<(), DockerError> {
        let cluster = self.cluster(name)?;
        network::disconnect(
            &self.engine.docker,
            self.network(),
            cluster.container_name(),
        )
        .await?;
        tracing::info!(cluster = %name, "downstream cluster partitioned");
        Ok(())
    }

    /// Connects downstream cluster `name` again and waits until its API answers from the
    /// host.
    pub async fn heal(&self, name: &ClusterName) -> Result<(), DockerError> {
        let cluster = self.cluster(name)?;
        network::connect(
            &self.engine.docker,
            self.network(),
            cluster.container_name(),
            &[],
        )
        .await?;
        self.wait_http(
            &format!("{}/readyz", cluster.endpoint.host_url),
            &cluster.apiserver,
        )
        .await?;
        tracing::info!(cluster = %name, "downstream cluster healed");
        Ok(())
    }

    /// Whether downstream cluster `name` is attached to the run's network.
    pub async fn is_connected(&self, name: &ClusterName) -> Result<bool, DockerError> {
        let cluster = self.cluster(name)?;
        Ok(network::is_connected(
            &self.engine.docker,
            self.network(),
            cluster.container_name(),
        )
        .await?)
    }

    async fn wait_http(&self, url: &str, started: &Started) -> Result<(), DockerError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| DockerError::Http(e.into()))?;
        let timeout = self.settings.startup_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(response) = client.get(url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DockerError::Timeout {
                    what: format!("{url} ({})", started.name),
                    after: timeout,
                    output: started.log.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines a container of this run printed (for diagnostics).
    pub fn output_of(&self, role: &Role) -> Option<String> {
        let started = match role {
            Role::Management => self.management.as_ref().map(|m| &m.started),
            Role::GitServer => self.git.as_ref().map(|g| &g.started),
            Role::Controller => self.controller.as_ref().map(|c| &c.started),
            Role::DownstreamApi(name) => self.downstream(name).map(|d| &d.apiserver),
            Role::Agent(name) => self.downstream(name).and_then(|d| d.agent.as_ref()),
        };
        started.map(|s| s.log.text())
    }

    /// Removes every container (agents first), then everything still labelled with the
    /// run (the network), and checks that nothing is left. Returns what the sweep removed.
    pub async fn teardown(mut self) -> Result<Leftovers, DockerError> {
        let mut started: Vec<Started> = Vec::new();
        for cluster in self.downstream.drain(..) {
            started.extend(cluster.agent);
            started.push(cluster.apiserver);
        }
        started.extend(self.controller.take().map(|c| c.started));
        started.extend(self.git.take().map(|g| g.started));
        started.extend(self.management.take().map(|m| m.started));
        let mut failures = Vec::new();
        for container in started {
            let name = container.name.clone();
            if let Err(error) = container.container.rm().await {
                failures.push(format!("{name}: {}", crate::error_text(&error)));
            }
        }
        let selector = Selector::Run(self.placement.run.clone());
        let removed = cleanup::sweep(&self.engine.docker, &selector).await?;
        self.swept = true;
        let left = cleanup::find(&self.engine.docker, &selector).await?;
        if !left.is_empty() {
            failures.push(format!("still there after the sweep: {left}"));
        }
        if failures.is_empty() {
            tracing::info!(run = %self.placement.run, "docker environment removed");
            Ok(removed)
        } else {
            Err(DockerError::Teardown(failures.join("; ")))
        }
    }
}

/// The content of the regular file at `path` in `container` (through the negotiated
/// client: testcontainers' own copy is not `Send`, and environments are used across tasks).
pub async fn read_file(
    docker: &Docker,
    container: &str,
    path: &str,
) -> Result<Vec<u8>, ReadFileError> {
    use futures::StreamExt as _;
    use tokio::io::AsyncReadExt as _;

    let options = DownloadFromContainerOptionsBuilder::new()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut archive = Vec::new();
    let engine = |source: bollard::errors::Error| ReadFileError::Engine {
        path: path.to_string(),
        source: source.into(),
    };
    let archive_error = |source| ReadFileError::Archive {
        path: path.to_string(),
        source,
    };
    while let Some(chunk) = stream.next().await {
        archive.extend_from_slice(&chunk.map_err(engine)?);
    }
    let mut archive = tokio_tar::Archive::new(archive.as_slice());
    let mut entries = archive.entries().map_err(archive_error)?;
    while let Some(entry) = entries.next().await {
        let mut entry = entry.map_err(archive_error)?;
        if entry.header().entry_type().is_file() {
            let mut content = Vec::new();
            entry
                .read_to_end(&mut content)
                .await
                .map_err(archive_error)?;
            return Ok(content);
        }
    }
    Err(ReadFileError::NotAFile {
        path: path.to_string(),
    })
}

/// Why a file could not be read out of a container.
#[derive(Debug, thiserror::Error)]
pub enum ReadFileError {
    /// The engine's copy of it failed.
    #[error("reading {path}")]
    Engine {
        /// The file.
        path: String,
        /// The engine's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
    /// The archive the engine sent cannot be read.
    #[error("reading {path}")]
    Archive {
        /// The file.
        path: String,
        /// The archive reader's error.
        source: std::io::Error,
    },
    /// It is there, but not as a regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The file.
        path: String,
    },
}

impl Drop for DockerEnvironment {
    fn drop(&mut self) {
        if self.swept {
            return;
        }
        let mut started: Vec<Started> = Vec::new();
        for cluster in self.downstream.drain(..) {
            started.extend(cluster.agent);
            started.push(cluster.apiserver);
        }
        started.extend(self.controller.take().map(|c| c.started));
        started.extend(self.git.take().map(|g| g.started));
        started.extend(self.management.take().map(|m| m.started));
        if tokio::runtime::Handle::try_current().is_ok() {
            // testcontainers removes each container as its handle drops.
            drop(started);
        } else {
            // Its drop needs a runtime; the sweep below removes them instead.
            std::mem::forget(started);
        }
        match cleanup::sweep_blocking(&self.placement.run) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(run = %self.placement.run, removed = %removed, "docker environment removed on drop");
            }
            Ok(_) => {}
            Err(error) => tracing::error!(
                run = %self.placement.run,
                error = %crate::error_text(&error),
                "could not remove the docker environment; run images/cleanup.sh"
            ),
        }
    }
}
