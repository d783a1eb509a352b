//! The cluster reconciler: each Cluster gets its namespace on the management cluster (where
//! its BundleDeployments live), named as Fleet names it, and recorded in `status.namespace`;
//! its status summarises those BundleDeployments.
//!
//! Also home of the legacy cluster pass (`orphan-cleanup-in-cluster-pass`): before Fleet's
//! PR 3438, orphaned BundleDeployments were only deleted by a periodic pass over clusters.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::PostParams;
use kube::{Api, Client};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::bundle;
use crate::bundle::deployments::Writer;
use crate::kubeutil::is_already_exists;
use crate::names;
use crate::queue::{Action, ReconcileFailure, backoff};
use crate::status::{StatusKey, StatusWriter};
use crate::store::{Key, Store};
use fleet_api::error::Foreign;
use fleet_api::labels;

/// Errors of the cluster reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster namespace could not be created.
    #[error("creating namespace {namespace} for cluster {cluster}")]
    Namespace {
        /// The cluster.
        cluster: Key,
        /// The namespace.
        namespace: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
}

/// What the cluster reconciler needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Object cache.
    pub store: Arc<Store>,
    /// Status writes.
    pub status: Arc<StatusWriter>,
    namespaces: Mutex<HashSet<String>>,
}

impl Context {
    /// A context.
    pub fn new(client: Client, store: Arc<Store>, status: Arc<StatusWriter>) -> Self {
        Context {
            client,
            store,
            status,
            namespaces: Mutex::new(HashSet::new()),
        }
    }
}

/// The namespace a cluster's BundleDeployments live in: the recorded one, else Fleet's name.
pub fn namespace_for(cluster: &fleet_api::Cluster) -> String {
    cluster
        .status
        .as_ref()
        .map(|s| s.namespace.clone())
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| {
            names::cluster_namespace(
                cluster.metadata.namespace.as_deref().unwrap_or_default(),
                cluster.metadata.name.as_deref().unwrap_or_default(),
            )
        })
}

/// Ensures the cluster's namespace exists and its status names it.
pub async fn reconcile(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let status_key = StatusKey::Cluster(key.clone());
    let Some(cluster) = ctx.store.cluster(&key) else {
        ctx.status.forget(&status_key);
        return Ok(Action::await_change());
    };
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = namespace_for(&cluster);
    if !ctx.namespaces.lock().contains(&namespace) {
        let api: Api<Namespace> = Api::all(ctx.client.clone());
        let object = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some(BTreeMap::from([(
                    labels::MANAGED.to_owned(),
                    "true".to_owned(),
                )])),
                annotations: Some(BTreeMap::from([
                    (labels::CLUSTER_NAMESPACE.to_owned(), key.namespace.clone()),
                    (labels::CLUSTER.to_owned(), key.name.clone()),
                ])),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(e) if is_already_exists(&e) => {}
            Err(source) => {
                return Err(Error::Namespace {
                    cluster: key,
                    namespace,
                    source: Foreign(Box::new(source)),
                });
            }
        }
        ctx.namespaces.lock().insert(namespace.clone());
    }
    let recorded = cluster
        .status
        .as_ref()
        .is_some_and(|s| s.namespace == namespace);
    ctx.status.set_cluster_namespace(&key, namespace);
    if recorded {
        ctx.status.request(status_key);
    } else {
        // Bundles wait for the namespace to be recorded before deploying: write it now.
        ctx.status.request_now(status_key);
    }
    Ok(Action::await_change())
}

/// Retries namespace creation with backoff.
pub fn error_policy(
    _key: &Key,
    _error: &ReconcileFailure<Error>,
    retries: u32,
    _ctx: &Context,
) -> Action {
    Action::requeue(backoff(retries, Duration::from_secs(30)))
}

/// One legacy cluster pass: for every cluster, deletes the BundleDeployments in its
/// namespace whose bundle no longer targets it (or no longer exists). Returns how many were
/// deleted.
pub async fn orphan_pass(store: &Store, writer: &Writer) -> usize {
    let mut deleted = 0;
    for cluster in store.clusters() {
        let Some(namespace) = cluster
            .status
            .as_ref()
            .map(|s| s.namespace.clone())
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let bundles: HashSet<Key> = store
            .deployments_in_namespace(&namespace)
            .iter()
            .map(|bd| bd.bundle.clone())
            .collect();
        for bundle_key in bundles {
            let Ok(plan) = bundle::plan(store, &bundle_key, false, false) else {
                continue;
            };
            for orphan in plan
                .delete
                .iter()
                .filter(|bd| bd.key.namespace == namespace)
            {
                match writer.delete(orphan).await {
                    Ok(()) => deleted += 1,
                    Err(error) => tracing::warn!(%error, "legacy cluster pass: delete failed"),
                }
            }
        }
    }
    deleted
}

/// Runs [`orphan_pass`] every `period` until cancelled.
pub async fn run_orphan_pass(
    store: Arc<Store>,
    writer: Writer,
    period: Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = cancel.cancelled() => return,
        }
        let deleted = orphan_pass(&store, &writer).await;
        tracing::info!(
            deleted,
            "legacy cluster pass deleted orphaned BundleDeployments"
        );
    }
}
