//! The cluster group reconciler: keeps `clusterCount`, `nonReadyClusterCount` and `display`
//! of every ClusterGroup current.
//!
//! This is the one reconciler run by `kube::runtime::Controller` as is: its inputs are small,
//! self-contained kinds (its own watch of ClusterGroups, and of Clusters mapped to the groups
//! of their namespace), and its output goes to the status writer, which does the coalescing
//! and skipping. BundleDeployment status changes reach group status through the dispatcher,
//! which asks the status writer directly. Worker count comes from
//! `CLUSTERGROUP_RECONCILER_WORKERS` via `Config::concurrency`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::runtime::controller::{self, Action as KubeAction, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::status::{StatusKey, StatusWriter};
use crate::store::Key;
use fleet_api::{Cluster, ClusterGroup};

/// Errors of the cluster group reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ClusterGroup object has no namespace or name (cannot happen for a watched object).
    #[error("ClusterGroup without namespace or name")]
    Unnamed,
}

/// What the cluster group reconciler needs.
pub struct Context {
    /// Status writes.
    pub status: Arc<StatusWriter>,
    /// Metrics (reconciles are counted like the other reconcilers').
    pub metrics: Arc<Metrics>,
}

/// Requests a (coalesced) status rebuild of the group.
pub async fn reconcile(group: Arc<ClusterGroup>, ctx: Arc<Context>) -> Result<KubeAction, Error> {
    let started = Instant::now();
    let (Some(namespace), Some(name)) = (&group.metadata.namespace, &group.metadata.name) else {
        return Err(Error::Unnamed);
    };
    ctx.status.request(StatusKey::ClusterGroup(Key::new(
        namespace.clone(),
        name.clone(),
    )));
    ctx.metrics
        .record_reconcile("clustergroup", "success", started.elapsed());
    Ok(KubeAction::await_change())
}

/// Logs and retries later.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature kube::runtime::Controller::run requires"
)]
pub fn error_policy(_group: Arc<ClusterGroup>, error: &Error, ctx: Arc<Context>) -> KubeAction {
    ctx.metrics
        .record_reconcile("clustergroup", "error", Duration::ZERO);
    tracing::warn!(%error, "cluster group reconcile failed");
    KubeAction::requeue(Duration::from_secs(5))
}

/// Runs the controller until `cancel` fires.
pub async fn run(client: Client, ctx: Arc<Context>, workers: usize, cancel: CancellationToken) {
    let api: Api<ClusterGroup> = Api::all(client.clone());
    let config =
        controller::Config::default().concurrency(u16::try_from(workers).unwrap_or(u16::MAX));
    let controller = Controller::new(api, watcher::Config::default()).with_config(config);
    let groups = controller.store();
    let clusters: Api<Cluster> = Api::all(client);
    controller
        .watches(clusters, watcher::Config::default(), move |cluster| {
            let namespace = cluster.metadata.namespace.unwrap_or_default();
            groups
                .state()
                .into_iter()
                .filter(|g| g.metadata.namespace.as_deref() == Some(namespace.as_str()))
                .map(|g| ObjectRef::from(&*g))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(cancel.cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "cluster group controller");
            }
        })
        .await;
}
