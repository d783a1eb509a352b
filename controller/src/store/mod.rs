//! The controller's view of the cluster: every Fleet object, with the indexes the
//! reconcilers query, fed by watches and by the controller's own writes.
//!
//! One store instead of a reflector per reconciler because the interesting questions cross
//! kinds: which BundleDeployments does a Bundle have, which Bundles can a Cluster label change
//! affect, which Cluster owns a namespace. Every change (from a watch event or written
//! through after a successful write) is turned into a [`Change`] and handed to the dispatcher,
//! which decides what to enqueue; the store itself has no policy. Changes are applied only
//! when the resourceVersion moves forward, so a late watch event never undoes a write-through.

pub mod entries;
mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use parking_lot::RwLock;

use crate::bundle::index::{ClusterChange, TargetIndex};
use crate::bundle::targeting::{CompiledGroup, Targeting};
use fleet_api::{Bundle, BundleDeployment, Cluster, ClusterGroup, GitRepo};

pub use entries::{BundleEntry, DeploymentEntry, DeploymentStatus};
pub use watch::spawn_watches;

/// Namespace and name of an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl Key {
    /// A key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Key {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an object.
    pub fn of(meta: &ObjectMeta) -> Self {
        Key::new(
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The five kinds the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// GitRepo.
    GitRepo,
    /// Bundle.
    Bundle,
    /// BundleDeployment.
    BundleDeployment,
    /// Cluster.
    Cluster,
    /// ClusterGroup.
    ClusterGroup,
}

/// One object that appeared, changed or disappeared: `old` is `None` for an addition,
/// `new` is `None` for a removal.
#[derive(Clone, Debug)]
pub enum Change {
    /// A GitRepo.
    GitRepo {
        /// Before.
        old: Option<Arc<GitRepo>>,
        /// After.
        new: Option<Arc<GitRepo>>,
    },
    /// A Bundle.
    Bundle {
        /// Before.
        old: Option<Arc<BundleEntry>>,
        /// After.
        new: Option<Arc<BundleEntry>>,
    },
    /// A BundleDeployment.
    Deployment {
        /// Before.
        old: Option<Arc<DeploymentEntry>>,
        /// After.
        new: Option<Arc<DeploymentEntry>>,
    },
    /// A Cluster, with the groups of its namespace (for membership diffs).
    Cluster {
        /// Before.
        old: Option<Arc<Cluster>>,
        /// After.
        new: Option<Arc<Cluster>>,
        /// The groups of the cluster's namespace.
        groups: Arc<Vec<CompiledGroup>>,
    },
    /// A ClusterGroup.
    ClusterGroup {
        /// Before.
        old: Option<Arc<ClusterGroup>>,
        /// After.
        new: Option<Arc<ClusterGroup>>,
    },
}

type Dispatch = Box<dyn Fn(&Change) + Send + Sync>;

#[derive(Default)]
struct Inner {
    gitrepos: HashMap<Key, Arc<GitRepo>>,
    bundles: HashMap<Key, Arc<BundleEntry>>,
    bundles_by_repo: HashMap<(String, String), BTreeSet<String>>,
    bundles_by_namespace: HashMap<String, BTreeSet<String>>,
    deployments: HashMap<Key, Arc<DeploymentEntry>>,
    deployments_by_bundle: HashMap<Key, BTreeSet<Key>>,
    deployments_by_namespace: HashMap<String, BTreeSet<String>>,
    clusters: HashMap<String, BTreeMap<String, Arc<Cluster>>>,
    cluster_by_namespace: HashMap<String, Key>,
    groups: HashMap<String, BTreeMap<String, Arc<ClusterGroup>>>,
    compiled_groups: HashMap<String, Arc<Vec<CompiledGroup>>>,
    index: TargetIndex,
    relisting: HashMap<Kind, HashSet<Key>>,
    synced: HashSet<Kind>,
}

/// The shared object cache.
pub struct Store {
    inner: RwLock<Inner>,
    dispatch: OnceLock<Dispatch>,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: RwLock::new(Inner::default()),
            dispatch: OnceLock::new(),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read();
        f.debug_struct("Store")
            .field("gitrepos", &inner.gitrepos.len())
            .field("bundles", &inner.bundles.len())
            .field("deployments", &inner.deployments.len())
            .finish_non_exhaustive()
    }
}

/// Whether resourceVersion `new` is later than `old`. resourceVersions are opaque, but every
/// apiserver we talk to issues increasing integers; anything else is treated as newer when
/// different.
fn is_newer(new: &str, old: &str) -> bool {
    match (new.parse::<u64>(), old.parse::<u64>()) {
        (Ok(n), Ok(o)) => n > o,
        _ => new != old,
    }
}

fn rv(meta: &ObjectMeta) -> &str {
    meta.resource_version.as_deref().unwrap_or_default()
}

impl Store {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Store::default())
    }

    /// Sets the function that receives every change (once).
    pub fn set_dispatcher(&self, dispatch: impl Fn(&Change) + Send + Sync + 'static) {
        let _ = self.dispatch.set(Box::new(dispatch));
    }

    fn emit(&self, change: Option<Change>) {
        if let (Some(change), Some(dispatch)) = (change, self.dispatch.get()) {
            dispatch(&change);
        }
    }

    fn note_seen(inner: &mut Inner, kind: Kind, key: &Key) {
        if let Some(seen) = inner.relisting.get_mut(&kind) {
            seen.insert(key.clone());
        }
    }

    // ----- GitRepos -----

    /// Stores a GitRepo.
    pub fn apply_gitrepo(&self, repo: GitRepo) {
        let key = Key::of(&repo.metadata);
        let change = {
            let mut inner = self.inner.write();
            Self::note_seen(&mut inner, Kind::GitRepo, &key);
            let old = inner.gitrepos.get(&key).cloned();
            if old
                .as_ref()
                .is_some_and(|o| !is_newer(rv(&repo.metadata), rv(&o.metadata)))
            {
                None
            } else {
                let new = Arc::new(repo);
                inner.gitrepos.insert(key, new.clone());
                Some(Change::GitRepo {
                    old,
                    new: Some(new),
                })
            }
        };
        self.emit(change);
    }

    /// Forgets a GitRepo.
    pub fn delete_gitrepo(&self, key: &Key) {
        let old = self.inner.write().gitrepos.remove(key);
        self.emit(old.map(|old| Change::GitRepo {
            old: Some(old),
            new: None,
        }));
    }

    /// A GitRepo.
    pub fn gitrepo(&self, key: &Key) -> Option<Arc<GitRepo>> {
        self.inner.read().gitrepos.get(key).cloned()
    }

    /// Every GitRepo.
    pub fn gitrepos(&self) -> Vec<Arc<GitRepo>> {
        self.inner.read().gitrepos.values().cloned().collect()
    }

    // ----- Bundles -----

    /// Stores a Bundle (reduced to a [`BundleEntry`]).
    pub fn apply_bundle(&self, bundle: &Bundle) {
        let key = Key::of(&bundle.metadata);
        {
            let mut inner = self.inner.write();
            Self::note_seen(&mut inner, Kind::Bundle, &key);
            if let Some(old) = inner.bundles.get(&key)
                && !is_newer(rv(&bundle.metadata), &old.resource_version)
            {
                return;
            }
        }
        let entry = Arc::new(BundleEntry::from_bundle(bundle));
        let targeting = Targeting::compile(&entry.spec).ok();
        let change = {
            let mut inner = self.inner.write();
            if let Some(old) = inner.bundles.get(&key)
                && !is_newer(&entry.resource_version, &old.resource_version)
            {
                return;
            }
            let old = inner.bundles.insert(key.clone(), entry.clone());
            if let Some(old_repo) = old.as_ref().and_then(|o| o.repo().map(str::to_owned))
                && entry.repo() != Some(old_repo.as_str())
            {
                remove_from(
                    &mut inner.bundles_by_repo,
                    &(key.namespace.clone(), old_repo),
                    &key.name,
                );
            }
            if let Some(repo) = entry.repo() {
                inner
                    .bundles_by_repo
                    .entry((key.namespace.clone(), repo.to_owned()))
                    .or_default()
                    .insert(key.name.clone());
            }
            inner
                .bundles_by_namespace
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.name.clone());
            match &targeting {
                Some(t) => inner.index.upsert(&key.namespace, &key.name, t),
                None => inner.index.remove(&key.namespace, &key.name),
            }
            Change::Bundle {
                old,
                new: Some(entry),
            }
        };
        self.emit(Some(change));
    }

    /// Forgets a Bundle.
    pub fn delete_bundle(&self, key: &Key) {
        let change = {
            let mut inner = self.inner.write();
            let Some(old) = inner.bundles.remove(key) else {
                return;
            };
            if let Some(repo) = old.repo() {
                remove_from(
                    &mut inner.bundles_by_repo,
                    &(key.namespace.clone(), repo.to_owned()),
                    &key.name,
                );
            }
            remove_from(&mut inner.bundles_by_namespace, &key.namespace, &key.name);
            inner.index.remove(&key.namespace, &key.name);
            Change::Bundle {
                old: Some(old),
                new: None,
            }
        };
        self.emit(Some(change));
    }

    /// A Bundle.
    pub fn bundle(&self, key: &Key) -> Option<Arc<BundleEntry>> {
        self.inner.read().bundles.get(key).cloned()
    }

    /// The Bundles of GitRepo `namespace/repo`.
    pub fn bundles_of_repo(&self, namespace: &str, repo: &str) -> Vec<Arc<BundleEntry>> {
        let inner = self.inner.read();
        inner
            .bundles_by_repo
            .get(&(namespace.to_owned(), repo.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|name| {
                inner
                    .bundles
                    .get(&Key::new(namespace, name.clone()))
                    .cloned()
            })
            .collect()
    }

    /// Names of the Bundles in `namespace`.
    pub fn bundle_names_in(&self, namespace: &str) -> Vec<String> {
        self.inner
            .read()
            .bundles_by_namespace
            .get(namespace)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Keys of every Bundle.
    pub fn bundle_keys(&self) -> Vec<Key> {
        self.inner.read().bundles.keys().cloned().collect()
    }

    /// The Bundles of `namespace` whose targeting `change` can affect.
    pub fn affected_bundles(&self, namespace: &str, change: &ClusterChange<'_>) -> HashSet<String> {
        self.inner.read().index.affected(namespace, change)
    }

    // ----- BundleDeployments -----

    /// Stores a BundleDeployment (reduced); one without Fleet's labels is ignored.
    pub fn apply_deployment(&self, bd: &BundleDeployment) {
        let key = Key::of(&bd.metadata);
        {
            let mut inner = self.inner.write();
            Self::note_seen(&mut inner, Kind::BundleDeployment, &key);
            if let Some(old) = inner.deployments.get(&key)
                && !is_newer(rv(&bd.metadata), &old.resource_version)
            {
                return;
            }
        }
        let Some(mut entry) = DeploymentEntry::from_deployment(bd) else {
            return;
        };
        let change = {
            let mut inner = self.inner.write();
            if let Some(old) = inner.deployments.get(&key)
                && !is_newer(&entry.resource_version, &old.resource_version)
            {
                return;
            }
            if entry.cluster.is_none() {
                entry.cluster = inner.cluster_by_namespace.get(&key.namespace).cloned();
            }
            // Share the deployment IDs with the bundle's other BundleDeployments (or this
            // one's previous version): equal IDs, one allocation.
            let sibling = inner.deployments.get(&key).cloned().or_else(|| {
                let first = inner.deployments_by_bundle.get(&entry.bundle)?.first()?;
                inner.deployments.get(first).cloned()
            });
            if let Some(sibling) = sibling {
                entry.share_ids_with(&sibling);
            }
            let entry = Arc::new(entry);
            let old = inner.deployments.insert(key.clone(), entry.clone());
            if let Some(old) = &old
                && old.bundle != entry.bundle
            {
                remove_from(&mut inner.deployments_by_bundle, &old.bundle, &key);
            }
            inner
                .deployments_by_bundle
                .entry(entry.bundle.clone())
                .or_default()
                .insert(key.clone());
            inner
                .deployments_by_namespace
                .entry(key.namespace)
                .or_default()
                .insert(key.name);
            Change::Deployment {
                old,
                new: Some(entry),
            }
        };
        self.emit(Some(change));
    }

    /// Forgets a BundleDeployment.
    pub fn delete_deployment(&self, key: &Key) {
        let change = {
            let mut inner = self.inner.write();
            let Some(old) = inner.deployments.remove(key) else {
                return;
            };
            remove_from(&mut inner.deployments_by_bundle, &old.bundle, key);
            remove_from(
                &mut inner.deployments_by_namespace,
                &key.namespace,
                &key.name,
            );
            Change::Deployment {
                old: Some(old),
                new: None,
            }
        };
        self.emit(Some(change));
    }

    /// A BundleDeployment.
    pub fn deployment(&self, key: &Key) -> Option<Arc<DeploymentEntry>> {
        self.inner.read().deployments.get(key).cloned()
    }

    /// The BundleDeployments of a Bundle.
    pub fn deployments_of_bundle(&self, bundle: &Key) -> Vec<Arc<DeploymentEntry>> {
        let inner = self.inner.read();
        inner
            .deployments_by_bundle
            .get(bundle)
            .into_iter()
            .flatten()
            .filter_map(|key| inner.deployments.get(key).cloned())
            .collect()
    }

    /// The BundleDeployments in namespace `namespace` (a cluster namespace).
    pub fn deployments_in_namespace(&self, namespace: &str) -> Vec<Arc<DeploymentEntry>> {
        let inner = self.inner.read();
        inner
            .deployments_by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .filter_map(|name| {
                inner
                    .deployments
                    .get(&Key::new(namespace, name.clone()))
                    .cloned()
            })
            .collect()
    }

    /// Number of BundleDeployments.
    pub fn deployment_count(&self) -> usize {
        self.inner.read().deployments.len()
    }

    // ----- Clusters and groups -----

    /// Stores a Cluster.
    pub fn apply_cluster(&self, cluster: Cluster) {
        let key = Key::of(&cluster.metadata);
        let change = {
            let mut inner = self.inner.write();
            Self::note_seen(&mut inner, Kind::Cluster, &key);
            let old = inner
                .clusters
                .get(&key.namespace)
                .and_then(|m| m.get(&key.name))
                .cloned();
            if old
                .as_ref()
                .is_some_and(|o| !is_newer(rv(&cluster.metadata), rv(&o.metadata)))
            {
                return;
            }
            if let Some(ns) = old
                .as_ref()
                .and_then(|o| o.status.as_ref())
                .map(|s| s.namespace.clone())
                && !ns.is_empty()
            {
                inner.cluster_by_namespace.remove(&ns);
            }
            if let Some(ns) = cluster.status.as_ref().map(|s| s.namespace.clone())
                && !ns.is_empty()
            {
                inner.cluster_by_namespace.insert(ns, key.clone());
            }
            let new = Arc::new(cluster);
            inner
                .clusters
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.name.clone(), new.clone());
            let groups = Self::compiled_groups_locked(&mut inner, &key.namespace);
            Change::Cluster {
                old,
                new: Some(new),
                groups,
            }
        };
        self.emit(Some(change));
    }

    /// Forgets a Cluster.
    pub fn delete_cluster(&self, key: &Key) {
        let change = {
            let mut inner = self.inner.write();
            let Some(old) = inner
                .clusters
                .get_mut(&key.namespace)
                .and_then(|m| m.remove(&key.name))
            else {
                return;
            };
            if let Some(ns) = old.status.as_ref().map(|s| s.namespace.clone())
                && inner.cluster_by_namespace.get(&ns) == Some(key)
            {
                inner.cluster_by_namespace.remove(&ns);
            }
            let groups = Self::compiled_groups_locked(&mut inner, &key.namespace);
            Change::Cluster {
                old: Some(old),
                new: None,
                groups,
            }
        };
        self.emit(Some(change));
    }

    /// A Cluster.
    pub fn cluster(&self, key: &Key) -> Option<Arc<Cluster>> {
        self.inner
            .read()
            .clusters
            .get(&key.namespace)
            .and_then(|m| m.get(&key.name))
            .cloned()
    }

    /// The Clusters of `namespace`, by name.
    pub fn clusters_in(&self, namespace: &str) -> Vec<Arc<Cluster>> {
        self.inner
            .read()
            .clusters
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every Cluster.
    pub fn clusters(&self) -> Vec<Arc<Cluster>> {
        self.inner
            .read()
            .clusters
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// The Cluster whose `status.namespace` is `namespace`.
    pub fn cluster_for_namespace(&self, namespace: &str) -> Option<Key> {
        self.inner
            .read()
            .cluster_by_namespace
            .get(namespace)
            .cloned()
    }

    /// Stores a ClusterGroup.
    pub fn apply_group(&self, group: ClusterGroup) {
        let key = Key::of(&group.metadata);
        let change = {
            let mut inner = self.inner.write();
            Self::note_seen(&mut inner, Kind::ClusterGroup, &key);
            let old = inner
                .groups
                .get(&key.namespace)
                .and_then(|m| m.get(&key.name))
                .cloned();
            if old
                .as_ref()
                .is_some_and(|o| !is_newer(rv(&group.metadata), rv(&o.metadata)))
            {
                return;
            }
            let new = Arc::new(group);
            inner
                .groups
                .entry(key.namespace.clone())
                .or_default()
                .insert(key.name.clone(), new.clone());
            inner.compiled_groups.remove(&key.namespace);
            Change::ClusterGroup {
                old,
                new: Some(new),
            }
        };
        self.emit(Some(change));
    }

    /// Forgets a ClusterGroup.
    pub fn delete_group(&self, key: &Key) {
        let change = {
            let mut inner = self.inner.write();
            let Some(old) = inner
                .groups
                .get_mut(&key.namespace)
                .and_then(|m| m.remove(&key.name))
            else {
                return;
            };
            inner.compiled_groups.remove(&key.namespace);
            Change::ClusterGroup {
                old: Some(old),
                new: None,
            }
        };
        self.emit(Some(change));
    }

    /// A ClusterGroup.
    pub fn group(&self, key: &Key) -> Option<Arc<ClusterGroup>> {
        self.inner
            .read()
            .groups
            .get(&key.namespace)
            .and_then(|m| m.get(&key.name))
            .cloned()
    }

    /// The ClusterGroups of `namespace`.
    pub fn groups_in(&self, namespace: &str) -> Vec<Arc<ClusterGroup>> {
        self.inner
            .read()
            .groups
            .get(namespace)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn compiled_groups_locked(inner: &mut Inner, namespace: &str) -> Arc<Vec<CompiledGroup>> {
        if let Some(groups) = inner.compiled_groups.get(namespace) {
            return groups.clone();
        }
        let groups: Arc<Vec<CompiledGroup>> = Arc::new(
            inner
                .groups
                .get(namespace)
                .map(|m| m.values().map(|g| CompiledGroup::compile(g)).collect())
                .unwrap_or_default(),
        );
        inner
            .compiled_groups
            .insert(namespace.to_owned(), groups.clone());
        groups
    }

    /// The ClusterGroups of `namespace` with compiled selectors (cached until a group of the
    /// namespace changes).
    pub fn compiled_groups_in(&self, namespace: &str) -> Arc<Vec<CompiledGroup>> {
        if let Some(groups) = self.inner.read().compiled_groups.get(namespace) {
            return groups.clone();
        }
        Self::compiled_groups_locked(&mut self.inner.write(), namespace)
    }

    // ----- Deletes seen by watches -----

    /// The resourceVersion of the stored object of `kind` at `key`.
    fn stored_rv(&self, kind: Kind, key: &Key) -> Option<String> {
        let inner = self.inner.read();
        match kind {
            Kind::GitRepo => inner.gitrepos.get(key).map(|o| rv(&o.metadata).to_owned()),
            Kind::Bundle => inner.bundles.get(key).map(|o| o.resource_version.clone()),
            Kind::BundleDeployment => inner
                .deployments
                .get(key)
                .map(|o| o.resource_version.clone()),
            Kind::Cluster => inner
                .clusters
                .get(&key.namespace)
                .and_then(|m| m.get(&key.name))
                .map(|o| rv(&o.metadata).to_owned()),
            Kind::ClusterGroup => inner
                .groups
                .get(&key.namespace)
                .and_then(|m| m.get(&key.name))
                .map(|o| rv(&o.metadata).to_owned()),
        }
    }

    /// Whether a deletion a watch reports at resourceVersion `deleted_rv` still applies: not
    /// if we have since written a newer object under the same name (a watch lagging behind
    /// our own delete-and-recreate must not erase the recreated object).
    pub fn deletion_applies(&self, kind: Kind, key: &Key, deleted_rv: &str) -> bool {
        self.stored_rv(kind, key)
            .is_none_or(|stored| !is_newer(&stored, deleted_rv))
    }

    // ----- Relists and readiness -----

    /// A watch starts (re)listing `kind`: objects not seen before [`Store::end_relist`] are
    /// then removed.
    pub fn begin_relist(&self, kind: Kind) {
        self.inner.write().relisting.insert(kind, HashSet::new());
    }

    /// A (re)list of `kind` is complete: removes what it did not contain, marks `kind` synced.
    pub fn end_relist(&self, kind: Kind) {
        let (seen, stale) = {
            let mut inner = self.inner.write();
            let seen = inner.relisting.remove(&kind).unwrap_or_default();
            let stale: Vec<Key> = match kind {
                Kind::GitRepo => inner.gitrepos.keys().cloned().collect(),
                Kind::Bundle => inner.bundles.keys().cloned().collect(),
                Kind::BundleDeployment => inner.deployments.keys().cloned().collect(),
                Kind::Cluster => inner
                    .clusters
                    .iter()
                    .flat_map(|(ns, m)| m.keys().map(|n| Key::new(ns.clone(), n.clone())))
                    .collect(),
                Kind::ClusterGroup => inner
                    .groups
                    .iter()
                    .flat_map(|(ns, m)| m.keys().map(|n| Key::new(ns.clone(), n.clone())))
                    .collect(),
            };
            inner.synced.insert(kind);
            (seen, stale)
        };
        for key in stale.into_iter().filter(|k| !seen.contains(k)) {
            match kind {
                Kind::GitRepo => self.delete_gitrepo(&key),
                Kind::Bundle => self.delete_bundle(&key),
                Kind::BundleDeployment => self.delete_deployment(&key),
                Kind::Cluster => self.delete_cluster(&key),
                Kind::ClusterGroup => self.delete_group(&key),
            }
        }
    }

    /// Whether every kind has been listed once.
    pub fn is_synced(&self) -> bool {
        self.inner.read().synced.len() == 5
    }
}

fn remove_from<K, V>(map: &mut HashMap<K, BTreeSet<V>>, key: &K, value: &V)
where
    K: Eq + std::hash::Hash,
    V: Ord,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use fleet_api::{BundleDeploymentSpec, labels};

    fn bd(rv: &str) -> BundleDeployment {
        let mut bd = BundleDeployment::new("b", BundleDeploymentSpec::default());
        bd.metadata.namespace = Some("cluster-ns".into());
        bd.metadata.resource_version = Some(rv.into());
        bd.metadata.labels = Some(
            [
                (labels::BUNDLE_NAME.to_owned(), "b".to_owned()),
                (labels::BUNDLE_NAMESPACE.to_owned(), "ns".to_owned()),
            ]
            .into(),
        );
        bd
    }

    #[test]
    fn stale_watch_events_do_not_undo_newer_writes() {
        let store = Store::new();
        let changes = Arc::new(AtomicUsize::new(0));
        let counter = changes.clone();
        store.set_dispatcher(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let key = Key::new("cluster-ns", "b");
        // Our create of generation 2 of the object is written through at rv 300 ...
        store.apply_deployment(&bd("300"));
        assert_eq!(changes.load(Ordering::SeqCst), 1);
        // ... then a lagging watch delivers the add (rv 100) and delete (rv 150) of its
        // previous incarnation: neither applies.
        store.apply_deployment(&bd("100"));
        assert!(!store.deletion_applies(Kind::BundleDeployment, &key, "150"));
        assert_eq!(store.deployment(&key).unwrap().resource_version, "300");
        // The echo of our own write is not a change either.
        store.apply_deployment(&bd("300"));
        assert_eq!(changes.load(Ordering::SeqCst), 1);
        // Its real deletion (rv 350) applies.
        assert!(store.deletion_applies(Kind::BundleDeployment, &key, "350"));
        store.delete_deployment(&key);
        assert!(store.deployment(&key).is_none());
        assert!(store.deletion_applies(Kind::BundleDeployment, &key, "1"));
        assert_eq!(store.deployments_of_bundle(&Key::new("ns", "b")).len(), 0);
    }

    #[test]
    fn a_bundles_deployments_hold_one_copy_of_an_equal_deployment_id() {
        let store = Store::new();
        let with_id = |namespace: &str, id: &str| {
            let mut bd = bd("1");
            bd.metadata.namespace = Some(namespace.into());
            bd.spec.deployment_id = Some(id.into());
            bd.spec.staged_deployment_id = Some(id.into());
            bd
        };
        store.apply_deployment(&with_id("cluster-a", "s-1:x"));
        store.apply_deployment(&with_id("cluster-b", "s-1:x"));
        store.apply_deployment(&with_id("cluster-c", "s-2:y"));
        let entry = |namespace: &str| store.deployment(&Key::new(namespace, "b")).unwrap();
        let (a, b, c) = (entry("cluster-a"), entry("cluster-b"), entry("cluster-c"));
        assert!(Arc::ptr_eq(&a.deployment_id, &b.deployment_id));
        assert!(Arc::ptr_eq(&b.deployment_id, &b.staged_deployment_id));
        // A different ID keeps its own text.
        assert_eq!(&*c.deployment_id, "s-2:y");
        assert!(!Arc::ptr_eq(&a.deployment_id, &c.deployment_id));
    }

    #[test]
    fn a_relist_removes_what_it_no_longer_contains() {
        let store = Store::new();
        let mut other = bd("5");
        other.metadata.name = Some("gone".into());
        store.apply_deployment(&bd("1"));
        store.apply_deployment(&other);
        assert!(!store.is_synced());
        store.begin_relist(Kind::BundleDeployment);
        store.apply_deployment(&bd("1"));
        store.end_relist(Kind::BundleDeployment);
        assert!(store.deployment(&Key::new("cluster-ns", "b")).is_some());
        assert!(store.deployment(&Key::new("cluster-ns", "gone")).is_none());
    }
}
