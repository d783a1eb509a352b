//! From store changes to work: which queues a change of which kind feeds.
//!
//! This is where the scale behaviour is decided. A Cluster label change enqueues only the
//! Bundles the selector index says can change (legacy: every Bundle, marked for a re-patch);
//! a BundleDeployment status change asks for coalesced status writes of its Bundle, GitRepo
//! and Cluster (immediate when it turns into an error); status-only changes of aggregate
//! objects (our own writes) trigger nothing but group status, so writes never feed back
//! into reconciles.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::agent::simulated;
use crate::bundle::index::ClusterChange;
use crate::bundle::targeting::CompiledGroup;
use crate::gitrepo::poll::Scheduler;
use crate::queue::WorkQueue;
use crate::status::{StatusKey, StatusWriter};
use crate::store::{BundleEntry, Change, DeploymentEntry, Key, Store};
use fleet_api::{BundleState, Cluster, ClusterGroup, GitRepo, labels};

/// Everything the dispatcher feeds.
pub struct Dispatcher {
    /// The store (for index lookups).
    pub store: Arc<Store>,
    /// GitRepo syncs.
    pub sync_queue: WorkQueue<Key>,
    /// The polling schedule.
    pub scheduler: Arc<Scheduler>,
    /// Bundle reconciles.
    pub bundle_queue: WorkQueue<Key>,
    /// Bundle reconciler context (for legacy re-patch marks).
    pub bundle_ctx: Arc<crate::bundle::Context>,
    /// Cluster reconciles.
    pub cluster_queue: WorkQueue<Key>,
    /// Status writes.
    pub status: Arc<StatusWriter>,
    /// The simulated agent, when running.
    pub agent: Option<Arc<simulated::Context>>,
    /// The apply agent's queue, when running.
    pub apply_queue: Option<WorkQueue<Key>>,
    /// Legacy: any Cluster change requeues (and re-patches) every Bundle.
    pub requeue_all_on_cluster_change: bool,
}

fn labels_of(meta: &kube::api::ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn changed_keys<'a>(
    old: &'a BTreeMap<String, String>,
    new: &'a BTreeMap<String, String>,
) -> Vec<&'a str> {
    let mut keys: HashSet<&str> = HashSet::new();
    for (k, v) in old {
        if new.get(k) != Some(v) {
            keys.insert(k);
        }
    }
    for (k, v) in new {
        if old.get(k) != Some(v) {
            keys.insert(k);
        }
    }
    keys.into_iter().collect()
}

fn cluster_namespace(cluster: &Cluster) -> Option<&str> {
    cluster
        .status
        .as_ref()
        .map(|s| s.namespace.as_str())
        .filter(|ns| !ns.is_empty())
}

impl Dispatcher {
    /// Routes one change.
    pub fn dispatch(&self, change: &Change) {
        match change {
            Change::GitRepo { old, new } => self.gitrepo(old.as_deref(), new.as_deref()),
            Change::Bundle { old, new } => self.bundle(old.as_deref(), new.as_deref()),
            Change::Deployment { old, new } => self.deployment(old.as_deref(), new.as_deref()),
            Change::Cluster { old, new, groups } => {
                self.cluster(old.as_deref(), new.as_deref(), groups);
            }
            Change::ClusterGroup { old, new } => self.group(old.as_deref(), new.as_deref()),
        }
    }

    fn gitrepo(&self, old: Option<&GitRepo>, new: Option<&GitRepo>) {
        let Some(new) = new else {
            if let Some(old) = old {
                let key = Key::of(&old.metadata);
                self.scheduler.remove(&key);
                self.sync_queue.add(key);
            }
            return;
        };
        let key = Key::of(&new.metadata);
        self.scheduler.upsert(new);
        let spec_changed = old.is_none_or(|o| {
            o.metadata.generation != new.metadata.generation
                || o.spec != new.spec
                || o.metadata.deletion_timestamp != new.metadata.deletion_timestamp
        });
        if spec_changed {
            self.sync_queue.add(key);
        }
    }

    fn bundle(&self, old: Option<&BundleEntry>, new: Option<&BundleEntry>) {
        let entry = new.or(old);
        let Some(entry) = entry else { return };
        let key = entry.key.clone();
        let spec_changed = match (old, new) {
            (Some(o), Some(n)) => {
                o.content_hash != n.content_hash
                    || o.generation != n.generation
                    || o.deleting != n.deleting
            }
            _ => true,
        };
        if spec_changed {
            self.bundle_queue.add(key.clone());
        }
        let status_changed = match (old, new) {
            (Some(o), Some(n)) => o.status != n.status,
            _ => true,
        };
        if (spec_changed || status_changed)
            && let Some(repo) = entry.repo()
        {
            self.status
                .request(StatusKey::GitRepo(Key::new(key.namespace, repo)));
        }
    }

    fn deployment(&self, old: Option<&DeploymentEntry>, new: Option<&DeploymentEntry>) {
        let Some(entry) = new.or(old) else { return };
        let relevant = match (old, new) {
            (Some(o), Some(n)) => {
                o.state() != n.state()
                    || o.status != n.status
                    || o.deployment_id != n.deployment_id
                    || o.cluster != n.cluster
            }
            _ => true,
        };
        if relevant {
            let into_error = new.is_some_and(|n| n.state() == BundleState::ErrApplied)
                && old.is_none_or(|o| o.state() != BundleState::ErrApplied);
            let request = |key: StatusKey| {
                if into_error {
                    self.status.request_now(key);
                } else {
                    self.status.request(key);
                }
            };
            request(StatusKey::Bundle(entry.bundle.clone()));
            if let Some(repo) = &entry.repo {
                request(StatusKey::GitRepo(Key::new(
                    entry.bundle.namespace.clone(),
                    repo.clone(),
                )));
            }
            if let Some(cluster) = &entry.cluster {
                request(StatusKey::Cluster(cluster.clone()));
                for group in self.store.groups_in(&cluster.namespace) {
                    self.status
                        .request(StatusKey::ClusterGroup(Key::of(&group.metadata)));
                }
            }
        }
        if new.is_none() {
            // Deleted from outside, or by an orphan cleanup: the bundle decides whether it
            // must exist.
            self.bundle_queue.add(entry.bundle.clone());
        }
        if let Some(new) = new {
            let id_changed = old.is_none_or(|o| o.deployment_id != new.deployment_id);
            let needs = !new.deleting
                && !new.deployment_id.is_empty()
                && (new.status.applied_deployment_id != new.deployment_id || !new.status.ready);
            if id_changed && needs {
                if let Some(agent) = &self.agent {
                    agent.schedule(new.key.clone());
                }
                if let Some(queue) = &self.apply_queue {
                    queue.add(new.key.clone());
                }
            }
        }
    }

    fn cluster(&self, old: Option<&Cluster>, new: Option<&Cluster>, groups: &[CompiledGroup]) {
        let Some(cluster) = new.or(old) else { return };
        let key = Key::of(&cluster.metadata);
        let namespace = key.namespace.clone();
        let old_labels = old.map(|c| labels_of(&c.metadata)).unwrap_or_default();
        let new_labels = new.map(|c| labels_of(&c.metadata)).unwrap_or_default();
        let old_ns = old.and_then(cluster_namespace);
        let new_ns = new.and_then(cluster_namespace);
        let spec_or_labels_changed = match (old, new) {
            (Some(o), Some(n)) => {
                o.spec != n.spec
                    || old_labels != new_labels
                    || o.metadata.generation != n.metadata.generation
            }
            _ => true,
        };

        if new.is_some() && (old.is_none() || new_ns.is_none() || spec_or_labels_changed) {
            self.cluster_queue.add(key.clone());
        } else if new.is_none() {
            self.status.forget(&StatusKey::Cluster(key.clone()));
        }

        // Group membership before and after.
        let member = |labels: &BTreeMap<String, String>, present: bool| -> HashSet<String> {
            if !present {
                return HashSet::new();
            }
            groups
                .iter()
                .filter(|g| g.contains(labels))
                .map(|g| g.name.clone())
                .collect()
        };
        let before = member(&old_labels, old.is_some() && old_ns.is_some());
        let after = member(&new_labels, new.is_some() && new_ns.is_some());
        let moved: Vec<&CompiledGroup> = groups
            .iter()
            .filter(|g| before.contains(&g.name) != after.contains(&g.name))
            .collect();
        if self.requeue_all_on_cluster_change {
            if spec_or_labels_changed || old_ns != new_ns {
                let all: Vec<Key> = self.store.bundle_keys();
                self.bundle_ctx.mark_repatch(all.iter().cloned());
                self.bundle_queue.add_all(all);
            }
            return;
        }

        // Only bundles whose matching can change.
        let became_deployable = old_ns.is_none() && new_ns.is_some();
        let gone = new.is_none() || (old_ns.is_some() && new_ns.is_none());
        let mut names: Vec<&str> = vec![key.name.as_str()];
        for l in [&old_labels, &new_labels] {
            if let Some(display) = l.get(labels::CLUSTER_DISPLAY_NAME) {
                names.push(display);
            }
        }
        let labels_for_add = if gone { &old_labels } else { &new_labels };
        let change = ClusterChange {
            names,
            added_or_removed: became_deployable || gone,
            labels: Some(labels_for_add),
            changed_keys: changed_keys(&old_labels, &new_labels),
            groups: moved.iter().map(|g| (g.name.as_str(), &g.labels)).collect(),
        };
        let relevant = spec_or_labels_changed || became_deployable || gone;
        if !relevant {
            return;
        }
        let mut affected: HashSet<Key> = self
            .store
            .affected_bundles(&namespace, &change)
            .into_iter()
            .map(|name| Key::new(namespace.clone(), name))
            .collect();
        // Bundles already deployed there: paused changes, or removal orphans them.
        let paused_changed = old.map(|c| c.spec.paused) != new.map(|c| c.spec.paused);
        if gone || paused_changed {
            for ns in [old_ns, new_ns].into_iter().flatten() {
                affected.extend(crate::bundle::bundles_with_deployments_in(&self.store, ns));
            }
        }
        self.bundle_queue.add_all(affected);
    }

    fn group(&self, old: Option<&ClusterGroup>, new: Option<&ClusterGroup>) {
        let Some(group) = new.or(old) else { return };
        let key = Key::of(&group.metadata);
        let changed = match (old, new) {
            (Some(o), Some(n)) => o.spec != n.spec || o.metadata.labels != n.metadata.labels,
            _ => true,
        };
        if new.is_none() {
            self.status.forget(&StatusKey::ClusterGroup(key.clone()));
        }
        if !changed {
            return;
        }
        let old_labels = old.map(|g| labels_of(&g.metadata)).unwrap_or_default();
        let new_labels = new.map(|g| labels_of(&g.metadata)).unwrap_or_default();
        let change = ClusterChange {
            groups: vec![
                (key.name.as_str(), &old_labels),
                (key.name.as_str(), &new_labels),
            ],
            ..Default::default()
        };
        let affected = self.store.affected_bundles(&key.namespace, &change);
        self.bundle_queue.add_all(
            affected
                .into_iter()
                .map(|name| Key::new(key.namespace.clone(), name)),
        );
    }
}
