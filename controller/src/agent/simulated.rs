//! The simulated agent: one in-process agent playing every Cluster.
//!
//! When a BundleDeployment gets a deploymentID it has not applied, the agent reports it
//! applied and ready after a delay drawn from `--agent-delay` (uniform in a range), or
//! failed (Deployed=False) for the clusters named in `--agent-fail-clusters` and with
//! probability `--agent-fail-rate`. Its writes are BundleDeployment status patches, like a
//! real agent's, so the controller's aggregation sees the same traffic.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::DelayRange;
use crate::kubeutil::is_not_found;
use crate::metrics::Metrics;
use crate::queue::{Action, ReconcileFailure, WorkQueue, backoff};
use crate::status::{StatusKey, StatusWriter};
use crate::store::{DeploymentEntry, Key, Store};
use fleet_api::error::Foreign;
use fleet_api::{BundleDeployment, ResourceCounts};

use super::{applied_status, failed_status};

/// How often the agent refreshes a cluster's `status.agent.lastSeen`.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// Errors of the simulated agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the BundleDeployment status failed.
    #[error("reporting status of BundleDeployment {key}")]
    Report {
        /// The BundleDeployment.
        key: Key,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
}

/// What the simulated agent needs.
pub struct Context {
    client: Client,
    store: Arc<Store>,
    status: Arc<StatusWriter>,
    metrics: Arc<Metrics>,
    queue: WorkQueue<Key>,
    delay: DelayRange,
    fail_rate: f64,
    fail_clusters: HashSet<String>,
    heartbeats: Mutex<HashMap<Key, Instant>>,
}

impl Context {
    /// A simulated agent.
    pub fn new(
        client: Client,
        store: Arc<Store>,
        status: Arc<StatusWriter>,
        metrics: Arc<Metrics>,
        delay: DelayRange,
        fail_rate: f64,
        fail_clusters: &[String],
    ) -> Self {
        Context {
            queue: WorkQueue::new("agent", metrics.clone()),
            client,
            store,
            status,
            metrics,
            delay,
            fail_rate,
            fail_clusters: fail_clusters.iter().cloned().collect(),
            heartbeats: Mutex::new(HashMap::new()),
        }
    }

    /// The agent's queue.
    pub fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    /// Schedules a BundleDeployment to be reported after a drawn delay.
    pub fn schedule(&self, key: Key) {
        self.queue.add_after(key, self.delay.sample());
    }

    /// Whether deployments on `cluster` fail (by name or namespace/name).
    fn fails_on(&self, cluster: Option<&Key>) -> bool {
        cluster.is_some_and(|c| {
            self.fail_clusters.contains(&c.name) || self.fail_clusters.contains(&c.to_string())
        })
    }
}

/// Whether the agent has something to do for this deployment.
pub fn needs_apply(bd: &DeploymentEntry) -> bool {
    !bd.deleting
        && !bd.deployment_id.is_empty()
        && (bd.status.applied_deployment_id != bd.deployment_id || !bd.status.ready)
        && !bd.status.deployed_false
}

/// Reports one BundleDeployment applied (or failed).
pub async fn reconcile(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(bd) = ctx.store.deployment(&key) else {
        return Ok(Action::await_change());
    };
    if bd.deleting
        || bd.deployment_id.is_empty()
        || (bd.status.applied_deployment_id == bd.deployment_id && bd.status.ready)
    {
        return Ok(Action::await_change());
    }
    let fail = ctx.fails_on(bd.cluster.as_ref())
        || (ctx.fail_rate > 0.0 && rand::random_bool(ctx.fail_rate.min(1.0)));
    let status = if fail {
        failed_status(
            Some(bd.status.applied_deployment_id.to_string()).filter(|s| !s.is_empty()),
            &format!(
                "simulated failure applying {} to cluster {}",
                bd.deployment_id,
                bd.cluster
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        )
    } else {
        let objects = ctx.store.bundle(&bd.bundle).map_or(0, |b| b.object_count);
        let counts = ResourceCounts {
            ready: objects,
            desired_ready: objects,
            ..Default::default()
        };
        applied_status(&bd.deployment_id, counts, true, "")
    };
    let api: Api<BundleDeployment> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    match api
        .patch_status(&key.name, &PatchParams::default(), &patch)
        .await
    {
        Ok(updated) => {
            ctx.metrics.status_write("bundledeployments", true);
            ctx.store.apply_deployment(&updated);
        }
        Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
        Err(source) => {
            return Err(Error::Report {
                key,
                source: Foreign(Box::new(source)),
            });
        }
    }
    if let Some(cluster) = &bd.cluster {
        let due = {
            let mut beats = ctx.heartbeats.lock();
            let due = beats
                .get(cluster)
                .is_none_or(|at| at.elapsed() >= HEARTBEAT);
            if due {
                beats.insert(cluster.clone(), Instant::now());
            }
            due
        };
        if due {
            ctx.status
                .set_cluster_last_seen(cluster, Time(jiff::Timestamp::now()));
            ctx.status.request(StatusKey::Cluster(cluster.clone()));
        }
    }
    Ok(Action::await_change())
}

/// Retries reports with backoff.
pub fn error_policy(
    _key: &Key,
    _error: &ReconcileFailure<Error>,
    retries: u32,
    _ctx: &Context,
) -> Action {
    Action::requeue(backoff(retries, Duration::from_secs(10)))
}
