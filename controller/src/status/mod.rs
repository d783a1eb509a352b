//! The throttling status writer: every status the controller writes (GitRepo, Bundle,
//! Cluster, ClusterGroup) goes through here.
//!
//! Why one writer: Fleet's scale problems were status writes (issue 3163: most of a 2.5s
//! bundle reconcile was status patches; issue 3576: GitRepo status updates on every Bundle
//! event). So status is rebuilt deterministically from the store when it is due, compared with
//! what the object shows (and what we last wrote), and written only when it differs, as a
//! JSON merge patch of the changed fields. Requests for the same object coalesce: a write is
//! due one window after the first request of a burst, and carries the state at that time.
//! Requesters mark error transitions and discrete events (polls, syncs) as immediate, which
//! bypass the window. The legacy switch `unthrottled-status-writes` turns all of that off:
//! every request is written, changed or not.

pub mod compute;
pub mod conditions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::queue::{Action, WorkQueue, backoff};
use crate::store::{Key, Store};
use fleet_api::error::Foreign;
use fleet_api::{Bundle, Cluster, ClusterGroup, GitRepo};

pub use compute::{BundleFacts, ClusterFacts, GitRepoFacts, PollFacts, SyncFacts, WebhookFacts};

/// Which object's status.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StatusKey {
    /// A GitRepo.
    GitRepo(Key),
    /// A Bundle.
    Bundle(Key),
    /// A Cluster.
    Cluster(Key),
    /// A ClusterGroup.
    ClusterGroup(Key),
}

impl StatusKey {
    /// Plural resource name (the `resource` label of the write metrics).
    pub fn resource(&self) -> &'static str {
        match self {
            StatusKey::GitRepo(_) => "gitrepos",
            StatusKey::Bundle(_) => "bundles",
            StatusKey::Cluster(_) => "clusters",
            StatusKey::ClusterGroup(_) => "clustergroups",
        }
    }

    fn key(&self) -> &Key {
        match self {
            StatusKey::GitRepo(k)
            | StatusKey::Bundle(k)
            | StatusKey::Cluster(k)
            | StatusKey::ClusterGroup(k) => k,
        }
    }
}

/// What we last wrote for an object. The status itself is not kept: only a fingerprint,
/// since it is compared for [`WRITE_LAG_GRACE`] only and 3000 Bundles' statuses as JSON
/// values held ~30 MiB of the controller's heap at 30,000 BundleDeployments.
#[derive(Default)]
struct Written {
    fingerprint: Option<u64>,
    at: Option<Instant>,
    forced: bool,
}

/// Errors of a status write.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The PATCH of the status subresource failed.
    #[error("patching status of {resource} {key}")]
    Patch {
        /// Plural resource.
        resource: &'static str,
        /// Object.
        key: Key,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// The computed status could not be serialised (a bug).
    #[error("serialising status of {key}")]
    Serialise {
        /// Object.
        key: Key,
        /// Serde error.
        #[source]
        source: serde_json::Error,
    },
}

/// The status writer (its queue is drained by [`reconcile`] workers).
pub struct StatusWriter {
    client: Client,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    queue: WorkQueue<StatusKey>,
    window: Duration,
    unthrottled: bool,
    written: Mutex<HashMap<StatusKey, Written>>,
    gitrepo_facts: Mutex<HashMap<Key, GitRepoFacts>>,
    bundle_facts: Mutex<HashMap<Key, BundleFacts>>,
    cluster_facts: Mutex<HashMap<Key, ClusterFacts>>,
    cluster_namespaces: Mutex<HashMap<Key, String>>,
}

impl StatusWriter {
    /// A writer coalescing within `window`; `unthrottled` is the legacy switch.
    pub fn new(
        client: Client,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        window: Duration,
        unthrottled: bool,
    ) -> Self {
        StatusWriter {
            queue: WorkQueue::new("status", metrics.clone()),
            client,
            store,
            metrics,
            window,
            unthrottled,
            written: Mutex::new(HashMap::new()),
            gitrepo_facts: Mutex::new(HashMap::new()),
            bundle_facts: Mutex::new(HashMap::new()),
            cluster_facts: Mutex::new(HashMap::new()),
            cluster_namespaces: Mutex::new(HashMap::new()),
        }
    }

    /// The writer's queue (drained by the status workers).
    pub fn queue(&self) -> &WorkQueue<StatusKey> {
        &self.queue
    }

    /// Asks for a status write, coalesced within the window: the write happens one window
    /// after the first request (Fleet's forced delay), and every request until then rides
    /// along. A burst of BundleDeployment changes thus costs one write per object, issued
    /// after the burst rather than competing with it.
    pub fn request(&self, key: StatusKey) {
        if self.unthrottled {
            self.force(key);
            return;
        }
        self.queue.add_after(key, self.window);
    }

    /// Asks for a status write now (errors, polls, syncs): bypasses the window, still
    /// skipped when nothing changed.
    pub fn request_now(&self, key: StatusKey) {
        if self.unthrottled {
            self.force(key);
            return;
        }
        self.queue.cancel_delayed(&key);
        self.queue.add(key);
    }

    /// Asks for a write even if nothing changed (the legacy re-patch).
    pub fn force(&self, key: StatusKey) {
        self.written.lock().entry(key.clone()).or_default().forced = true;
        self.queue.add(key);
    }

    /// Updates the facts of a GitRepo.
    pub fn update_gitrepo(&self, key: &Key, update: impl FnOnce(&mut GitRepoFacts)) {
        update(self.gitrepo_facts.lock().entry(key.clone()).or_default());
    }

    /// The facts of a GitRepo.
    pub fn gitrepo_facts(&self, key: &Key) -> GitRepoFacts {
        self.gitrepo_facts
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// Records what the last reconcile of a Bundle found.
    pub fn set_bundle_facts(&self, key: &Key, facts: BundleFacts) {
        self.bundle_facts.lock().insert(key.clone(), facts);
    }

    /// Records when the agent last reported for a cluster.
    pub fn set_cluster_last_seen(&self, key: &Key, at: Time) {
        self.cluster_facts
            .lock()
            .entry(key.clone())
            .or_default()
            .last_seen = Some(at);
    }

    /// Records the namespace the cluster reconciler assigned.
    pub fn set_cluster_namespace(&self, key: &Key, namespace: String) {
        self.cluster_namespaces
            .lock()
            .insert(key.clone(), namespace);
    }

    /// Forgets everything about an object that is gone.
    pub fn forget(&self, key: &StatusKey) {
        self.written.lock().remove(key);
        let k = key.key();
        match key {
            StatusKey::GitRepo(_) => {
                self.gitrepo_facts.lock().remove(k);
            }
            StatusKey::Bundle(_) => {
                self.bundle_facts.lock().remove(k);
            }
            StatusKey::Cluster(_) => {
                self.cluster_facts.lock().remove(k);
                self.cluster_namespaces.lock().remove(k);
            }
            StatusKey::ClusterGroup(_) => {}
        }
    }

    /// Computes the status of `key` and its observed status; `None` when the object is gone
    /// or not ready for a status (a cluster without namespace).
    fn compute(&self, key: &StatusKey) -> Result<Option<(Value, Value)>, Error> {
        let k = key.key();
        let to_value = |v: &dyn erased::Ser| {
            v.to_json().map_err(|source| Error::Serialise {
                key: k.clone(),
                source,
            })
        };
        match key {
            StatusKey::GitRepo(_) => {
                let Some(repo) = self.store.gitrepo(k) else {
                    return Ok(None);
                };
                let facts = self.gitrepo_facts(k);
                let bundles = self.store.bundles_of_repo(&k.namespace, &k.name);
                let deployments: Vec<_> = bundles
                    .iter()
                    .flat_map(|b| self.store.deployments_of_bundle(&b.key))
                    .collect();
                let status = compute::gitrepo_status(&repo, &facts, &bundles, &deployments);
                Ok(Some((
                    to_value(&status)?,
                    to_value(&repo.status.clone().unwrap_or_default())?,
                )))
            }
            StatusKey::Bundle(_) => {
                let Some(entry) = self.store.bundle(k) else {
                    return Ok(None);
                };
                let facts = self.bundle_facts.lock().get(k).cloned();
                let deployments = self.store.deployments_of_bundle(k);
                let status = compute::bundle_status(&entry, &deployments, facts.as_ref());
                Ok(Some((
                    to_value(&status)?,
                    to_value(&entry.status.clone().unwrap_or_default())?,
                )))
            }
            StatusKey::Cluster(_) => {
                let Some(cluster) = self.store.cluster(k) else {
                    return Ok(None);
                };
                let namespace = self
                    .cluster_namespaces
                    .lock()
                    .get(k)
                    .cloned()
                    .or_else(|| cluster.status.as_ref().map(|s| s.namespace.clone()))
                    .filter(|ns| !ns.is_empty());
                let Some(namespace) = namespace else {
                    return Ok(None);
                };
                let facts = self.cluster_facts.lock().get(k).cloned();
                let deployments = self.store.deployments_in_namespace(&namespace);
                let status =
                    compute::cluster_status(&cluster, &namespace, facts.as_ref(), &deployments);
                Ok(Some((
                    to_value(&status)?,
                    to_value(&cluster.status.clone().unwrap_or_default())?,
                )))
            }
            StatusKey::ClusterGroup(_) => {
                let Some(group) = self.store.group(k) else {
                    return Ok(None);
                };
                let clusters: Vec<_> = self
                    .store
                    .clusters_in(&k.namespace)
                    .into_iter()
                    .map(|cluster| {
                        let namespace = cluster
                            .status
                            .as_ref()
                            .map(|s| s.namespace.clone())
                            .unwrap_or_default();
                        let (summary, counts) = if namespace.is_empty() {
                            Default::default()
                        } else {
                            compute::cluster_summary(
                                &self.store.deployments_in_namespace(&namespace),
                            )
                        };
                        (cluster, summary, counts)
                    })
                    .collect();
                let status = compute::group_status(&group, &clusters);
                Ok(Some((
                    to_value(&status)?,
                    to_value(&group.status.clone().unwrap_or_default())?,
                )))
            }
        }
    }

    async fn patch(&self, key: &StatusKey, patch: Value) -> Result<(), Error> {
        let k = key.key();
        let params = PatchParams::default();
        let body = Patch::Merge(serde_json::json!({ "status": patch }));
        let err = |source| Error::Patch {
            resource: key.resource(),
            key: k.clone(),
            source: Foreign(Box::new(source)),
        };
        match key {
            StatusKey::GitRepo(_) => {
                let api: Api<GitRepo> = Api::namespaced(self.client.clone(), &k.namespace);
                let obj = api
                    .patch_status(&k.name, &params, &body)
                    .await
                    .map_err(err)?;
                self.store.apply_gitrepo(obj);
            }
            StatusKey::Bundle(_) => {
                let api: Api<Bundle> = Api::namespaced(self.client.clone(), &k.namespace);
                let obj = api
                    .patch_status(&k.name, &params, &body)
                    .await
                    .map_err(err)?;
                self.store.apply_bundle(&obj);
            }
            StatusKey::Cluster(_) => {
                let api: Api<Cluster> = Api::namespaced(self.client.clone(), &k.namespace);
                let obj = api
                    .patch_status(&k.name, &params, &body)
                    .await
                    .map_err(err)?;
                self.store.apply_cluster(obj);
            }
            StatusKey::ClusterGroup(_) => {
                let api: Api<ClusterGroup> = Api::namespaced(self.client.clone(), &k.namespace);
                let obj = api
                    .patch_status(&k.name, &params, &body)
                    .await
                    .map_err(err)?;
                self.store.apply_group(obj);
            }
        }
        Ok(())
    }
}

/// Serialisation through a trait object, so `compute` can treat the four status types alike.
mod erased {
    pub trait Ser {
        fn to_json(&self) -> Result<serde_json::Value, serde_json::Error>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
            serde_json::to_value(self)
        }
    }
}

/// How recently a write must have happened for "equal to what we last wrote" to count as
/// "already written" while the watch has not delivered it yet.
const WRITE_LAG_GRACE: Duration = Duration::from_secs(5);

/// Writes the status of one object if it changed (or if forced).
pub async fn reconcile(key: StatusKey, writer: Arc<StatusWriter>) -> Result<Action, Error> {
    let Some((desired, observed)) = writer.compute(&key)? else {
        if !matches!(key, StatusKey::Cluster(_)) {
            writer.forget(&key);
        }
        return Ok(Action::await_change());
    };
    let fingerprint = status_fingerprint(&desired);
    let (forced, recently_written) = {
        let mut written = writer.written.lock();
        let entry = written.entry(key.clone()).or_default();
        let forced = std::mem::take(&mut entry.forced) || writer.unthrottled;
        let recent = entry.fingerprint == Some(fingerprint)
            && entry.at.is_some_and(|at| at.elapsed() < WRITE_LAG_GRACE);
        (forced, recent)
    };
    let patch = if forced {
        Some(desired)
    } else if recently_written {
        None
    } else {
        compute::merge_diff(&observed, &desired)
    };
    let Some(patch) = patch else {
        writer.metrics.status_write(key.resource(), false);
        return Ok(Action::await_change());
    };
    writer.patch(&key, patch).await?;
    writer.metrics.status_write(key.resource(), true);
    let mut written = writer.written.lock();
    let entry = written.entry(key).or_default();
    entry.fingerprint = Some(fingerprint);
    entry.at = Some(Instant::now());
    Ok(Action::await_change())
}

/// A fingerprint of a status: the hash of its JSON text (serde_json's maps are ordered, so
/// equal statuses give equal text). A collision could only skip one write inside the grace
/// period, after which the observed status is compared in full again.
fn status_fingerprint(status: &Value) -> u64 {
    crate::store::entries::hash_str(&status.to_string())
}

/// Retries failed writes with backoff; a vanished object is forgotten.
pub fn error_policy(
    key: &StatusKey,
    error: &crate::queue::ReconcileFailure<Error>,
    retries: u32,
    writer: &StatusWriter,
) -> Action {
    if let crate::queue::ReconcileFailure::Error(Error::Patch { source, .. }) = error
        && crate::kubeutil::is_not_found(&source.0)
    {
        writer.forget(key);
        return Action::await_change();
    }
    Action::requeue(backoff(retries, Duration::from_secs(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_statuses_share_a_fingerprint_and_a_changed_field_does_not() {
        let a = serde_json::json!({"summary": {"ready": 3, "desiredReady": 3}, "display": {"readyClusters": "1/1"}});
        let mut b = serde_json::Map::new();
        b.insert(
            "display".into(),
            serde_json::json!({"readyClusters": "1/1"}),
        );
        b.insert(
            "summary".into(),
            serde_json::json!({"desiredReady": 3, "ready": 3}),
        );
        assert_eq!(
            status_fingerprint(&a),
            status_fingerprint(&Value::Object(b))
        );
        let c = serde_json::json!({"summary": {"ready": 2, "desiredReady": 3}, "display": {"readyClusters": "1/1"}});
        assert_ne!(status_fingerprint(&a), status_fingerprint(&c));
    }
}
