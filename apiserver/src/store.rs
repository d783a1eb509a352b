//! The in-memory object store: one global resourceVersion, one map per resource, a bounded
//! event history per resource for watches, and the uid and owner indexes that garbage
//! collection needs.
//!
//! Objects are kept as serialized JSON bytes plus a small parsed [`ObjMeta`], so a stored
//! 2 KiB object costs little more than its bytes, and a watch event is those same bytes
//! shared by the store, the history and every watcher. Each resource has its own lock,
//! held only for the map update (never across an await); the resourceVersion is drawn
//! under that lock so each resource's events are ordered by revision, which is what makes
//! "watch from revision N" exact.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::meta::{ObjMeta, metadata_mut};

/// A stored object: its JSON bytes and its parsed index. Cloning is two refcount bumps.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// The object as served.
    pub bytes: Bytes,
    /// Its parsed metadata.
    pub meta: Arc<ObjMeta>,
}

impl StoredObject {
    /// The object as a JSON tree, for the writes that need to change it.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("stored objects are valid JSON")
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, shared by the history and every watcher.
#[derive(Debug)]
pub struct WatchEvent {
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for deletions: its last state at the deletion's
    /// revision).
    pub object: StoredObject,
    /// The object's index before the change, for watchers whose selector it left or
    /// entered.
    pub prev: Option<Arc<ObjMeta>>,
}

impl WatchEvent {
    /// The revision of the change.
    pub fn rv(&self) -> u64 {
        self.object.meta.rv
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A create found the name taken.
    #[error("already exists")]
    AlreadyExists,
    /// An update or delete found no object.
    #[error("not found")]
    NotFound,
    /// The object changed since the caller read it.
    #[error("conflict")]
    Conflict,
    /// The resource is no longer served (its CRD was deleted).
    #[error("resource removed")]
    Removed,
}

/// A watch asked for a revision older than the kept history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    /// The oldest revision a watch may still start from.
    pub oldest: u64,
}

/// Work for the background controllers (garbage collection, namespace and CRD cleanup),
/// sent by the store as objects disappear.
#[derive(Debug)]
pub enum Housekeeping {
    /// An object was removed.
    Removed {
        /// Its uid.
        uid: Box<str>,
        /// Its namespace (empty if cluster-scoped).
        namespace: Box<str>,
        /// The uids of its owners (a foreground deletion may be waiting for it).
        owners: Vec<Box<str>>,
        /// The resource it belonged to.
        resource: Arc<ResourceStore>,
    },
    /// An object was written whose owners may not exist.
    CheckOwners {
        /// Its uid.
        uid: Box<str>,
    },
    /// An object entered deletion and carries a finalizer that the server itself handles
    /// (`orphan`, `foregroundDeletion`, namespace or CRD cleanup).
    Finalize {
        /// Its uid.
        uid: Box<str>,
    },
}

/// Where an object lives, found by uid.
#[derive(Debug, Clone)]
pub struct Location {
    /// Its resource.
    pub resource: Arc<ResourceStore>,
    /// Its key in that resource.
    pub key: Box<str>,
}

#[derive(Debug, Default)]
struct GlobalIndex {
    by_uid: HashMap<Box<str>, Location>,
    dependents: HashMap<Box<str>, HashSet<Box<str>>>,
}

/// The whole store: the revision counter and the cross-resource indexes.
#[derive(Debug)]
pub struct Store {
    revision: AtomicU64,
    index: Mutex<GlobalIndex>,
    housekeeping: mpsc::UnboundedSender<Housekeeping>,
    history: usize,
}

impl Store {
    /// A store keeping `history` watch events per resource, reporting removals on
    /// `housekeeping`.
    pub fn new(history: usize, housekeeping: mpsc::UnboundedSender<Housekeeping>) -> Self {
        Self {
            revision: AtomicU64::new(1),
            index: Mutex::default(),
            housekeeping,
            history: history.max(1),
        }
    }

    /// The latest revision handed out.
    pub fn current_revision(&self) -> u64 {
        self.revision.load(Ordering::SeqCst)
    }

    fn next_revision(&self) -> u64 {
        self.revision.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A new, empty resource map.
    pub fn new_resource(
        &self,
        group: &str,
        resource: &str,
        namespaced: bool,
    ) -> Arc<ResourceStore> {
        Arc::new(ResourceStore {
            group: group.into(),
            resource: resource.into(),
            namespaced,
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                horizon: self.current_revision(),
                removed: false,
            }),
            notify: Notify::new(),
            history_cap: self.history,
        })
    }

    /// Finds a live object by uid.
    pub fn locate(&self, uid: &str) -> Option<Location> {
        self.index.lock().by_uid.get(uid).cloned()
    }

    /// Whether an object with this uid exists.
    pub fn exists(&self, uid: &str) -> bool {
        self.index.lock().by_uid.contains_key(uid)
    }

    /// The uids of the objects that name `owner` among their owners.
    pub fn dependents_of(&self, owner: &str) -> Vec<Box<str>> {
        self.index
            .lock()
            .dependents
            .get(owner)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Queues background work.
    pub fn enqueue(&self, work: Housekeeping) {
        // The receiver lives as long as the server; after shutdown the work is moot.
        let _ = self.housekeeping.send(work);
    }

    fn index_write(&self, resource: &Arc<ResourceStore>, old: Option<&ObjMeta>, new: &ObjMeta) {
        let mut index = self.index.lock();
        if old.is_none() {
            index.by_uid.insert(
                new.uid.clone(),
                Location {
                    resource: resource.clone(),
                    key: new.key().into(),
                },
            );
        }
        let old_owners: Vec<&str> = old
            .map(|o| o.owners.iter().map(|r| &*r.uid).collect())
            .unwrap_or_default();
        for owner in &old_owners {
            if !new.owners.iter().any(|r| &*r.uid == *owner)
                && let Some(set) = index.dependents.get_mut(*owner)
            {
                set.remove(&new.uid);
                if set.is_empty() {
                    index.dependents.remove(*owner);
                }
            }
        }
        let mut dangling = false;
        for owner in &new.owners {
            if !old_owners.contains(&&*owner.uid) {
                index
                    .dependents
                    .entry(owner.uid.clone())
                    .or_default()
                    .insert(new.uid.clone());
            }
            dangling |= !index.by_uid.contains_key(&owner.uid);
        }
        drop(index);
        if dangling {
            self.enqueue(Housekeeping::CheckOwners {
                uid: new.uid.clone(),
            });
        }
    }

    fn index_remove(&self, resource: &Arc<ResourceStore>, old: &ObjMeta) {
        let mut index = self.index.lock();
        index.by_uid.remove(&old.uid);
        for owner in &old.owners {
            if let Some(set) = index.dependents.get_mut(&owner.uid) {
                set.remove(&old.uid);
                if set.is_empty() {
                    index.dependents.remove(&owner.uid);
                }
            }
        }
        drop(index);
        self.enqueue(Housekeeping::Removed {
            uid: old.uid.clone(),
            namespace: old.namespace.clone(),
            owners: old.owners.iter().map(|o| o.uid.clone()).collect(),
            resource: resource.clone(),
        });
    }
}

#[derive(Debug)]
struct State {
    objects: BTreeMap<String, StoredObject>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with a revision above this one is in `history`.
    horizon: u64,
    removed: bool,
}

/// The objects of one resource (all served versions share it), with their history.
#[derive(Debug)]
pub struct ResourceStore {
    /// API group.
    pub group: Box<str>,
    /// Plural resource name.
    pub resource: Box<str>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    state: RwLock<State>,
    notify: Notify,
    history_cap: usize,
}

/// Which objects a list wants.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListRange<'a> {
    /// Only this namespace.
    pub namespace: Option<&'a str>,
    /// Start after this key (from a continue token).
    pub after: Option<&'a str>,
    /// At most this many matching objects (0: all).
    pub limit: usize,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// Matching objects in key order.
    pub items: Vec<StoredObject>,
    /// The revision the list reflects.
    pub revision: u64,
    /// Key of the last item, when more may follow.
    pub continue_after: Option<String>,
}

impl ResourceStore {
    /// `gitrepos.fleet.cattle.io` or `configmaps`.
    pub fn group_resource(&self) -> String {
        crate::status::group_resource(&self.group, &self.resource)
    }

    /// The object under `key`.
    pub fn get(&self, key: &str) -> Option<StoredObject> {
        self.state.read().objects.get(key).cloned()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    /// Whether no object is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the resource was removed (its CRD deleted).
    pub fn is_removed(&self) -> bool {
        self.state.read().removed
    }

    /// Every object in a namespace (or all, for `None`).
    pub fn all(&self, namespace: Option<&str>) -> Vec<StoredObject> {
        self.list(
            &|| 0,
            ListRange {
                namespace,
                ..Default::default()
            },
            |_| true,
        )
        .items
    }

    /// A page of objects that pass `filter`, and the revision it reflects.
    pub fn list(
        &self,
        revision: &dyn Fn() -> u64,
        range: ListRange<'_>,
        filter: impl Fn(&StoredObject) -> bool,
    ) -> ListPage {
        let state = self.state.read();
        let prefix = range
            .namespace
            .filter(|_| self.namespaced)
            .map(|ns| format!("{ns}/"));
        let lower: Bound<&str> = match (range.after, prefix.as_deref()) {
            (Some(after), _) => Bound::Excluded(after),
            (None, Some(p)) => Bound::Included(p),
            (None, None) => Bound::Unbounded,
        };
        let mut items = Vec::new();
        let mut continue_after = None;
        for (key, object) in state.objects.range::<str, _>((lower, Bound::Unbounded)) {
            if let Some(p) = &prefix
                && !key.starts_with(p.as_str())
            {
                break;
            }
            if !filter(object) {
                continue;
            }
            if range.limit > 0 && items.len() == range.limit {
                continue_after = Some(items_last_key(&items));
                break;
            }
            items.push(object.clone());
        }
        ListPage {
            items,
            revision: revision(),
            continue_after,
        }
    }

    /// Applies one write under the resource lock: draws the revision, stamps it into
    /// the object, serializes it, updates the indexes and appends the watch event.
    pub fn commit(
        self: &Arc<Self>,
        store: &Store,
        write: Write,
    ) -> Result<StoredObject, WriteError> {
        let mut state = self.state.write();
        if state.removed {
            return Err(WriteError::Removed);
        }
        let (event, key) = match write {
            Write::Create(mut object) => {
                let key = object_key_of(&object);
                if state.objects.contains_key(&key) {
                    return Err(WriteError::AlreadyExists);
                }
                let revision = store.next_revision();
                let stored = seal(&mut object, revision);
                store.index_write(self, None, &stored.meta);
                state.objects.insert(key.clone(), stored.clone());
                (
                    WatchEvent {
                        kind: EventType::Added,
                        object: stored,
                        prev: None,
                    },
                    key,
                )
            }
            Write::Update {
                expected_rv,
                mut object,
            } => {
                let key = object_key_of(&object);
                let Some(current) = state.objects.get(&key) else {
                    return Err(WriteError::NotFound);
                };
                if current.meta.rv != expected_rv {
                    return Err(WriteError::Conflict);
                }
                let prev = current.meta.clone();
                let revision = store.next_revision();
                let stored = seal(&mut object, revision);
                store.index_write(self, Some(&prev), &stored.meta);
                state.objects.insert(key.clone(), stored.clone());
                (
                    WatchEvent {
                        kind: EventType::Modified,
                        object: stored,
                        prev: Some(prev),
                    },
                    key,
                )
            }
            Write::Delete {
                key,
                expected_rv,
                last_state,
            } => {
                let Some(current) = state.objects.get(&key) else {
                    return Err(WriteError::NotFound);
                };
                if current.meta.rv != expected_rv {
                    return Err(WriteError::Conflict);
                }
                let mut object = last_state.unwrap_or_else(|| current.to_value());
                let prev = current.meta.clone();
                state.objects.remove(&key);
                let revision = store.next_revision();
                let stored = seal(&mut object, revision);
                store.index_remove(self, &prev);
                (
                    WatchEvent {
                        kind: EventType::Deleted,
                        object: stored,
                        prev: Some(prev),
                    },
                    key,
                )
            }
        };
        let _ = key;
        let stored = event.object.clone();
        state.history.push_back(Arc::new(event));
        while state.history.len() > self.history_cap {
            if let Some(evicted) = state.history.pop_front() {
                state.horizon = evicted.rv();
            }
        }
        drop(state);
        self.notify.notify_waiters();
        Ok(stored)
    }

    /// Events after `revision` (or [`TooOld`] when the history no longer reaches back), and
    /// the global revision read under the
    /// same lock: every event of this resource up to that revision is in `out` or
    /// earlier, which makes it a safe bookmark once `out` is delivered.
    pub fn events_after_at(
        &self,
        store: &Store,
        revision: u64,
        out: &mut Vec<Arc<WatchEvent>>,
    ) -> Result<u64, TooOld> {
        let state = self.state.read();
        if revision < state.horizon {
            return Err(TooOld {
                oldest: state.horizon,
            });
        }
        let start = state.history.partition_point(|e| e.rv() <= revision);
        out.extend(state.history.range(start..).cloned());
        Ok(store.current_revision())
    }

    /// Resolves once something is committed to this resource after the call.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Stops serving: later writes fail and watchers end.
    pub fn mark_removed(&self) {
        self.state.write().removed = true;
        self.notify.notify_waiters();
    }

    /// Snapshot of every object together with the revision it reflects, for watches
    /// that begin with the current state.
    pub fn snapshot(&self, store: &Store, namespace: Option<&str>) -> (Vec<StoredObject>, u64) {
        let page = self.list(
            &|| store.current_revision(),
            ListRange {
                namespace,
                ..Default::default()
            },
            |_| true,
        );
        (page.items, page.revision)
    }
}

fn items_last_key(items: &[StoredObject]) -> String {
    items.last().map(|o| o.meta.key()).unwrap_or_default()
}

fn object_key_of(object: &Value) -> String {
    let meta = ObjMeta::from_object(object);
    meta.key()
}

fn seal(object: &mut Value, revision: u64) -> StoredObject {
    metadata_mut(object).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
    let bytes = Bytes::from(serde_json::to_vec(object).expect("JSON values serialize"));
    StoredObject {
        bytes,
        meta: Arc::new(ObjMeta::from_object(object)),
    }
}

/// One change to a resource.
#[derive(Debug)]
pub enum Write {
    /// Insert a new object (fails if its key is taken).
    Create(Value),
    /// Replace the object with the same key if it is still at `expected_rv`.
    Update {
        /// The revision the caller based the new object on.
        expected_rv: u64,
        /// The new object.
        object: Value,
    },
    /// Remove the object under `key` if it is still at `expected_rv`.
    Delete {
        /// Store key.
        key: String,
        /// The revision the caller decided on.
        expected_rv: u64,
        /// The state to report in the DELETED event, when it differs from the stored one.
        last_state: Option<Value>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store() -> (Store, mpsc::UnboundedReceiver<Housekeeping>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Store::new(3, tx), rx)
    }

    fn cm(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")}})
    }

    #[test]
    fn revisions_are_global_and_increasing() {
        let (store, _rx) = store();
        let a = store.new_resource("", "configmaps", true);
        let b = store.new_resource("", "secrets", true);
        let first = a.commit(&store, Write::Create(cm("x"))).unwrap();
        let second = b.commit(&store, Write::Create(cm("x"))).unwrap();
        assert!(second.meta.rv > first.meta.rv);
        assert_eq!(store.current_revision(), second.meta.rv);
    }

    #[test]
    fn stale_update_conflicts() {
        let (store, _rx) = store();
        let r = store.new_resource("", "configmaps", true);
        let created = r.commit(&store, Write::Create(cm("x"))).unwrap();
        r.commit(
            &store,
            Write::Update {
                expected_rv: created.meta.rv,
                object: cm("x"),
            },
        )
        .unwrap();
        let stale = r.commit(
            &store,
            Write::Update {
                expected_rv: created.meta.rv,
                object: cm("x"),
            },
        );
        assert_eq!(stale.unwrap_err(), WriteError::Conflict);
        assert_eq!(
            r.commit(&store, Write::Create(cm("x"))).unwrap_err(),
            WriteError::AlreadyExists
        );
    }

    #[test]
    fn history_is_bounded_and_reports_too_old() {
        let (store, _rx) = store();
        let r = store.new_resource("", "configmaps", true);
        let start = store.current_revision();
        for i in 0..5 {
            r.commit(&store, Write::Create(cm(&format!("o{i}"))))
                .unwrap();
        }
        let mut out = Vec::new();
        assert!(r.events_after_at(&store, start, &mut out).is_err());
        let latest = store.current_revision();
        r.events_after_at(&store, latest - 3, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.windows(2).all(|w| w[0].rv() < w[1].rv()));
    }

    #[test]
    fn lists_page_in_key_order_within_a_namespace() {
        let (store, _rx) = store();
        let r = store.new_resource("", "configmaps", true);
        for name in ["c", "a", "b"] {
            r.commit(&store, Write::Create(cm(name))).unwrap();
        }
        let rev = || 7;
        let page = r.list(
            &rev,
            ListRange {
                namespace: Some("ns"),
                after: None,
                limit: 2,
            },
            |_| true,
        );
        let names: Vec<_> = page.items.iter().map(|o| o.meta.name.to_string()).collect();
        assert_eq!(names, ["a", "b"]);
        let after = page.continue_after.unwrap();
        let rest = r.list(
            &rev,
            ListRange {
                namespace: Some("ns"),
                after: Some(&after),
                limit: 2,
            },
            |_| true,
        );
        assert_eq!(rest.items.len(), 1);
        assert!(rest.continue_after.is_none());
        let other = r.list(
            &rev,
            ListRange {
                namespace: Some("n"),
                after: None,
                limit: 0,
            },
            |_| true,
        );
        assert!(other.items.is_empty());
    }

    #[test]
    fn removal_updates_indexes_and_queues_housekeeping() {
        let (store, mut rx) = store();
        let r = store.new_resource("", "configmaps", true);
        let mut owned = cm("child");
        owned["metadata"]["ownerReferences"] =
            json!([{"uid": "uid-parent", "kind": "ConfigMap", "name": "parent"}]);
        r.commit(&store, Write::Create(cm("parent"))).unwrap();
        let child = r.commit(&store, Write::Create(owned)).unwrap();
        assert_eq!(
            store.dependents_of("uid-parent"),
            vec![Box::from("uid-child")]
        );
        r.commit(
            &store,
            Write::Delete {
                key: "ns/child".into(),
                expected_rv: child.meta.rv,
                last_state: None,
            },
        )
        .unwrap();
        assert!(store.dependents_of("uid-parent").is_empty());
        assert!(!store.exists("uid-child"));
        assert!(matches!(
            rx.try_recv().unwrap(),
            Housekeeping::Removed { .. }
        ));
    }
}
