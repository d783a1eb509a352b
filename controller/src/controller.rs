//! Wiring: starts the watches, the reconcilers, the agent and the HTTP listener, and hands
//! back a handle. Tests and the binary both start the controller through
//! [`Controller::start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, Client};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::{apply, simulated};
use crate::bundle::deployments::Writer;
use crate::config::{AgentMode, Config};
use crate::dispatch::Dispatcher;
use crate::gitrepo::poll::Scheduler;
use crate::metrics::Metrics;
use crate::queue::{WorkQueue, spawn_workers};
use crate::server::{self, ServerState};
use crate::status::StatusWriter;
use crate::store::{Store, spawn_watches};
use crate::{bundle, cluster, clustergroup, gitrepo, status, webhook};
use fleet_api::error::Foreign;
use fleet_api::profile::LegacySwitch;
use fleet_api::{GitRepo, install_crds};

/// Errors starting the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Installing a CRD failed.
    #[error(transparent)]
    InstallCrd(#[from] fleet_api::crd::Error),
    /// The Fleet API did not become available.
    #[error("the fleet.cattle.io API is not served (install the CRDs, e.g. with --install-crds)")]
    ApiUnavailable(#[source] Foreign<Box<kube::Error>>),
    /// The listener could not bind.
    #[error("listening on {addr}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The git cache directory could not be created.
    #[error("git cache directory")]
    CacheDir(#[source] std::io::Error),
    /// The git cache's key could not be read or created.
    #[error(transparent)]
    Cache(#[from] gitrepo::cache::Error),
}

/// Waits (up to `timeout`) until the GitRepo API answers a list.
async fn wait_for_api(client: &Client, timeout: Duration) -> Result<(), Error> {
    let api: Api<GitRepo> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(Error::ApiUnavailable(Foreign(Box::new(e))));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A running controller.
pub struct Controller {
    addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    store: Arc<Store>,
    ready: Arc<AtomicBool>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _cache_dir: Option<tempfile::TempDir>,
}

impl Controller {
    /// Starts the controller against `client`'s cluster. Returns once the listener (if
    /// any) is bound; reconciling starts as soon as every watch has listed its kind.
    pub async fn start(client: Client, config: Config) -> Result<Controller, Error> {
        // Downstream clients (apply agent) use rustls; make sure a provider is chosen even
        // when both ring and aws-lc-rs are linked (no-op if one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        if config.install_crds {
            install_crds(&client).await?;
        }
        wait_for_api(&client, Duration::from_secs(30)).await?;
        let config = Arc::new(config);
        let cancel = CancellationToken::new();
        let metrics = Arc::new(Metrics::new());
        let store = Store::new();
        let ready = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();

        let (cache_dir, temp) = match &config.git_cache_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(Error::CacheDir)?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("fleet-controller-git-")
                    .tempdir()
                    .map_err(Error::CacheDir)?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };

        let status = Arc::new(StatusWriter::new(
            client.clone(),
            store.clone(),
            metrics.clone(),
            config.status_window,
            config.legacy(LegacySwitch::UnthrottledStatusWrites),
        ));
        let writer = Writer {
            client: client.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
        };
        let bundle_queue = WorkQueue::new("bundle", metrics.clone());
        let cluster_queue = WorkQueue::new("cluster", metrics.clone());
        let sync_queue = WorkQueue::new("gitrepo", metrics.clone());
        let policy = gitrepo::validate::Policy {
            allow_file_repos: config.allow_file_repos,
            min_polling_interval: config.min_polling_interval,
        };
        let scheduler = Arc::new(Scheduler::new(
            WorkQueue::new("gitrepo-poll", metrics.clone()),
            config.legacy(LegacySwitch::NoPollJitter),
            config.legacy(LegacySwitch::DropGitRepoAfterError),
            policy,
        ));
        let bundle_ctx = Arc::new(bundle::Context::new(
            store.clone(),
            status.clone(),
            writer.clone(),
            config.legacy(LegacySwitch::OrphanCleanupInClusterPass),
        ));
        let cluster_ctx = Arc::new(cluster::Context::new(
            client.clone(),
            store.clone(),
            status.clone(),
        ));
        let gitrepo_ctx = Arc::new(gitrepo::Context {
            client: client.clone(),
            store: store.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            scheduler: scheduler.clone(),
            sync_queue: sync_queue.clone(),
            cache: gitrepo::cache::Cache::open(&cache_dir).map_err(Error::Cache)?,
            policy,
            git_timeout: config.git_timeout,
        });
        let agent = (config.agent == AgentMode::Simulated).then(|| {
            Arc::new(simulated::Context::new(
                client.clone(),
                store.clone(),
                status.clone(),
                metrics.clone(),
                config.agent_delay,
                config.agent_fail_rate,
                &config.agent_fail_clusters,
            ))
        });
        let apply_ctx = (config.agent == AgentMode::Apply).then(|| {
            Arc::new(apply::Context::new(
                client.clone(),
                store.clone(),
                Some(status.clone()),
                metrics.clone(),
                apply::Targets::AllClusters,
            ))
        });
        let dispatcher = Dispatcher {
            store: store.clone(),
            sync_queue: sync_queue.clone(),
            scheduler: scheduler.clone(),
            bundle_queue: bundle_queue.clone(),
            bundle_ctx: bundle_ctx.clone(),
            cluster_queue: cluster_queue.clone(),
            status: status.clone(),
            agent: agent.clone(),
            apply_queue: apply_ctx.as_ref().map(|a| a.queue().clone()),
            requeue_all_on_cluster_change: config
                .legacy(LegacySwitch::RequeueAllBundlesOnClusterChange),
        };
        store.set_dispatcher(move |change| dispatcher.dispatch(change));

        let webhook_cell = Arc::new(tokio::sync::OnceCell::new());
        let addr = match config.listen {
            Some(listen) => {
                let state = Arc::new(ServerState {
                    metrics: metrics.clone(),
                    ready: ready.clone(),
                    webhook: webhook_cell.clone(),
                });
                let (bound, handle) =
                    server::serve(listen, state, cancel.clone())
                        .await
                        .map_err(|source| Error::Listen {
                            addr: listen,
                            source,
                        })?;
                tasks.push(handle);
                tracing::info!(address = %bound, "listening");
                Some(bound)
            }
            None => None,
        };
        let _ = webhook_cell.set(Arc::new(webhook::Context {
            client: client.clone(),
            store: store.clone(),
            status: status.clone(),
            metrics: metrics.clone(),
            sync_queue: sync_queue.clone(),
            global_secret_namespace: config.webhook_secret_namespace.clone(),
        }));

        tasks.extend(spawn_watches(&client, &store, &cancel));

        // Reconcilers start once every kind is listed: a bundle reconciled against a
        // half-loaded cache would delete BundleDeployments it simply has not seen yet.
        let starter = {
            let store = store.clone();
            let cancel = cancel.clone();
            let ready = ready.clone();
            let config = config.clone();
            let client = client.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                while !store.is_synced() {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(20)) => {}
                        () = cancel.cancelled() => return,
                    }
                }
                let w = &config.workers;
                let mut workers = Vec::new();
                workers.extend(spawn_workers(
                    status.queue(),
                    w.status,
                    &status,
                    status::reconcile,
                    status::error_policy,
                    &cancel,
                ));
                workers.extend(spawn_workers(
                    &bundle_queue,
                    w.bundle,
                    &bundle_ctx,
                    bundle::reconcile,
                    bundle::error_policy,
                    &cancel,
                ));
                workers.extend(spawn_workers(
                    &cluster_queue,
                    w.cluster,
                    &cluster_ctx,
                    cluster::reconcile,
                    cluster::error_policy,
                    &cancel,
                ));
                workers.extend(spawn_workers(
                    &sync_queue,
                    w.gitrepo,
                    &gitrepo_ctx,
                    gitrepo::sync,
                    gitrepo::sync_error_policy,
                    &cancel,
                ));
                workers.extend(spawn_workers(
                    scheduler.queue(),
                    w.gitrepo,
                    &gitrepo_ctx,
                    gitrepo::poll,
                    gitrepo::poll_error_policy,
                    &cancel,
                ));
                if let Some(agent) = &agent {
                    workers.extend(spawn_workers(
                        agent.queue(),
                        w.bundledeployment,
                        agent,
                        simulated::reconcile,
                        simulated::error_policy,
                        &cancel,
                    ));
                }
                if let Some(apply_ctx) = &apply_ctx {
                    workers.extend(spawn_workers(
                        apply_ctx.queue(),
                        w.bundledeployment,
                        apply_ctx,
                        apply::reconcile,
                        apply::error_policy,
                        &cancel,
                    ));
                }
                let group_ctx = Arc::new(clustergroup::Context {
                    status: status.clone(),
                    metrics: metrics.clone(),
                });
                workers.push(tokio::spawn(clustergroup::run(
                    client,
                    group_ctx,
                    w.clustergroup,
                    cancel.clone(),
                )));
                if config.legacy(LegacySwitch::OrphanCleanupInClusterPass) {
                    workers.push(tokio::spawn(cluster::run_orphan_pass(
                        store.clone(),
                        writer.clone(),
                        config.legacy_cluster_pass_period,
                        cancel.clone(),
                    )));
                }
                // BundleDeployments whose Bundle vanished while we were away.
                for key in store.bundle_keys() {
                    bundle_queue.add(key);
                }
                for cluster in store.clusters() {
                    for bd in
                        store.deployments_in_namespace(cluster::namespace_for(&cluster).as_str())
                    {
                        if store.bundle(&bd.bundle).is_none() {
                            bundle_queue.add(bd.bundle.clone());
                        }
                    }
                }
                // The resync: now (for GitRepos deleted while we were away) and every period.
                let period = config.gitrepo_sync_period;
                let resync_ctx = gitrepo_ctx.clone();
                let resync_cancel = cancel.clone();
                workers.push(tokio::spawn(async move {
                    loop {
                        gitrepo::resync(&resync_ctx);
                        tokio::select! {
                            () = tokio::time::sleep(period) => {}
                            () = resync_cancel.cancelled() => return,
                        }
                    }
                }));
                ready.store(true, Ordering::Release);
                tracing::info!("caches synced; reconcilers running");
                cancel.cancelled().await;
                for queue_shutdown in [
                    bundle_queue.clone(),
                    cluster_queue.clone(),
                    sync_queue.clone(),
                ] {
                    queue_shutdown.shutdown();
                }
                scheduler.queue().shutdown();
                status.queue().shutdown();
                for worker in workers {
                    let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
                }
            })
        };
        tasks.push(starter);

        Ok(Controller {
            addr,
            metrics,
            store,
            ready,
            cancel,
            tasks,
            _cache_dir: temp,
        })
    }

    /// The bound listener address (with `listen` configured).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The controller's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The controller's object cache.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// Whether caches are synced and reconcilers run.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Waits until ready, at most `timeout`; returns whether it became ready.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }

    /// Stops everything and waits (boundedly) for the tasks to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
