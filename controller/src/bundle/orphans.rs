//! Deleting BundleDeployments in batches: one `deletecollection` per cluster namespace for
//! the orphans that bundle reconciles hand in while the previous call for that namespace is
//! in flight (group commit: the first orphan goes out at once, the ones that arrive
//! meanwhile share the next call).
//!
//! Why: a target edit across 300 GitRepos orphans thousands of BundleDeployments spread
//! over a handful of cluster namespaces, two or three per bundle. One DELETE each made the
//! request count the cost of the cleanup, on the docker provider a round trip over the
//! bridge per orphan. `deletecollection` with a label selector is standard Kubernetes for
//! custom resources, so this holds against a real kube-apiserver and Fleet's own CRDs.
//!
//! A label selector deletes whatever matches it on the server, so a batch uses one only
//! where it is exact: the selector names the bundle namespace and the orphans' bundles
//! (`fleet.cattle.io/bundle-namespace=B,fleet.cattle.io/bundle-name in (..)`), and the
//! store must show that every BundleDeployment in the namespace carrying those labels is
//! in the batch. A bundle's reconciles never run concurrently and each waits for its
//! deletions, so no BundleDeployment of a batched bundle is created while its batch is
//! in flight. Anything a selector cannot name exactly (a name that is no label value,
//! another BundleDeployment with the same labels) is deleted singly, and so is a whole
//! batch whose `deletecollection` fails (a server that refuses the verb is then not asked
//! again).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt as _};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::kubeutil::api_code;
use crate::store::{DeploymentEntry, Key};
use fleet_api::{BundleDeployment, labels};

use super::Error;
use super::deployments::Writer;

/// Most bundle names one selector carries (keeps the request URL a few KiB long).
pub const MAX_NAMES_PER_CALL: usize = 100;

struct Waiter {
    entry: Arc<DeploymentEntry>,
    done: oneshot::Sender<Result<(), Error>>,
}

#[derive(Default)]
struct Batch {
    waiting: Vec<Waiter>,
    flushing: bool,
}

/// Batches BundleDeployment deletions per cluster namespace.
pub struct OrphanDeleter {
    writer: Writer,
    batches: Mutex<HashMap<String, Batch>>,
    /// Cleared when the server refused `deletecollection` (403, 405): single deletes only.
    collections: AtomicBool,
}

impl OrphanDeleter {
    /// A deleter writing through `writer`.
    pub fn new(writer: Writer) -> Arc<Self> {
        Arc::new(OrphanDeleter {
            writer,
            batches: Mutex::new(HashMap::new()),
            collections: AtomicBool::new(true),
        })
    }

    /// Deletes `entries` (gone already is fine), batched with other callers' deletions in
    /// the same namespaces; one result per entry.
    pub async fn delete(
        self: &Arc<Self>,
        entries: Vec<Arc<DeploymentEntry>>,
    ) -> Vec<Result<(), Error>> {
        let mut receivers = Vec::new();
        let mut singles = Vec::new();
        for entry in entries {
            if !self.collections.load(Ordering::Relaxed) || !selectable(&entry) {
                singles.push(entry);
                continue;
            }
            let (done, receiver) = oneshot::channel();
            receivers.push(receiver);
            let namespace = entry.key.namespace.clone();
            let start = {
                let mut batches = self.batches.lock();
                let batch = batches.entry(namespace.clone()).or_default();
                batch.waiting.push(Waiter { entry, done });
                !std::mem::replace(&mut batch.flushing, true)
            };
            if start {
                // A task of its own: the batch carries other reconciles' orphans, so it must
                // finish even if this caller is dropped.
                tokio::spawn(self.clone().flush(namespace));
            }
        }
        let mut results = Vec::new();
        for entry in singles {
            results.push(self.writer.delete(&entry).await);
        }
        for receiver in receivers {
            // A flush task always answers; a panic in it drops the sender.
            results.push(receiver.await.unwrap_or_else(|_| {
                Err(Error::Batch {
                    message: "the batch deleting it stopped".into(),
                })
            }));
        }
        results
    }

    /// Sends what waits for `namespace` until nothing does.
    async fn flush(self: Arc<Self>, namespace: String) {
        loop {
            let waiting = {
                let mut batches = self.batches.lock();
                let Some(batch) = batches.get_mut(&namespace) else {
                    return;
                };
                if batch.waiting.is_empty() {
                    batches.remove(&namespace);
                    return;
                }
                std::mem::take(&mut batch.waiting)
            };
            self.send(&namespace, waiting).await;
        }
    }

    /// Deletes one namespace's waiters: exact groups by selector, the rest singly.
    async fn send(&self, namespace: &str, waiting: Vec<Waiter>) {
        let (groups, singles) = self.exact_groups(namespace, waiting);
        for group in groups {
            self.send_group(namespace, group).await;
        }
        for waiter in singles {
            let result = self.writer.delete(&waiter.entry).await;
            let _ = waiter.done.send(result);
        }
    }

    /// Splits waiters into groups a selector names exactly (one bundle namespace each, at
    /// most [`MAX_NAMES_PER_CALL`] bundles) and the rest.
    fn exact_groups(
        &self,
        namespace: &str,
        waiting: Vec<Waiter>,
    ) -> (Vec<Vec<Waiter>>, Vec<Waiter>) {
        let batch_keys: BTreeSet<Key> = waiting.iter().map(|w| w.entry.key.clone()).collect();
        let store = &self.writer.store;
        let mut by_bundle_namespace: HashMap<String, Vec<Waiter>> = HashMap::new();
        let mut singles = Vec::new();
        let mut unexact_bundles = BTreeSet::new();
        for waiter in &waiting {
            let bundle = &waiter.entry.bundle;
            // Every BundleDeployment the selector would match in this namespace must be in
            // the batch.
            let exact = store
                .deployments_of_bundle(bundle)
                .iter()
                .filter(|bd| bd.key.namespace == namespace)
                .all(|bd| batch_keys.contains(&bd.key));
            if !exact {
                unexact_bundles.insert(bundle.clone());
            }
        }
        for waiter in waiting {
            if unexact_bundles.contains(&waiter.entry.bundle) {
                singles.push(waiter);
            } else {
                by_bundle_namespace
                    .entry(waiter.entry.bundle.namespace.clone())
                    .or_default()
                    .push(waiter);
            }
        }
        let mut groups = Vec::new();
        for (_, mut waiters) in by_bundle_namespace {
            waiters.sort_by(|a, b| a.entry.bundle.name.cmp(&b.entry.bundle.name));
            let mut group: Vec<Waiter> = Vec::new();
            let mut names = 0;
            for waiter in waiters {
                let new_name = group
                    .last()
                    .is_none_or(|last| last.entry.bundle.name != waiter.entry.bundle.name);
                if new_name && names == MAX_NAMES_PER_CALL {
                    groups.push(std::mem::take(&mut group));
                    names = 0;
                }
                if new_name {
                    names += 1;
                }
                group.push(waiter);
            }
            if !group.is_empty() {
                groups.push(group);
            }
        }
        (groups, singles)
    }

    /// One `deletecollection` for `group` (one bundle namespace); on failure each waiter is
    /// deleted singly.
    async fn send_group(&self, namespace: &str, group: Vec<Waiter>) {
        let selector = selector(
            &group[0].entry.bundle.namespace,
            group.iter().map(|w| w.entry.bundle.name.as_str()),
        );
        let api: Api<BundleDeployment> = Api::namespaced(self.writer.client.clone(), namespace);
        match api
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&selector),
            )
            .await
        {
            Ok(answer) => {
                let in_group: BTreeSet<&Key> = group.iter().map(|w| &w.entry.key).collect();
                let deleted: Vec<Key> = match answer.left() {
                    Some(list) => list
                        .items
                        .iter()
                        .map(|bd| Key::new(namespace, bd.name_any()))
                        .collect(),
                    // A server may answer with a Status only; the batch is gone either way.
                    None => in_group.iter().map(|k| (*k).clone()).collect(),
                };
                for key in &deleted {
                    self.writer
                        .metrics
                        .object_write("bundledeployments", "delete");
                    if !in_group.contains(key) {
                        // The store missed an object carrying the batch's labels (someone
                        // else's write it has not seen yet); it is gone now all the same.
                        tracing::warn!(%key, %selector, "deletecollection removed a BundleDeployment outside its batch");
                        self.writer.store.delete_deployment(key);
                    }
                }
                for waiter in group {
                    // Gone: deleted now, or already before (as a 404 of a single delete).
                    self.writer.store.delete_deployment(&waiter.entry.key);
                    let _ = waiter.done.send(Ok(()));
                }
            }
            Err(error) => {
                if matches!(api_code(&error), Some(403 | 405)) {
                    self.collections.store(false, Ordering::Relaxed);
                }
                tracing::debug!(%error, namespace, "deletecollection failed; deleting singly");
                for waiter in group {
                    let result = self.writer.delete(&waiter.entry).await;
                    let _ = waiter.done.send(result);
                }
            }
        }
    }
}

/// Whether a selector can name `entry`'s bundle: its name and namespace are label values.
fn selectable(entry: &DeploymentEntry) -> bool {
    is_label_value(&entry.bundle.name) && is_label_value(&entry.bundle.namespace)
}

/// A non-empty Kubernetes label value: at most 63 characters, alphanumerics, `-`, `_`,
/// `.`, starting and ending alphanumeric.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The selector of the BundleDeployments of bundles `names` in `bundle_namespace`.
fn selector<'a>(bundle_namespace: &str, names: impl Iterator<Item = &'a str>) -> String {
    let names: BTreeSet<&str> = names.collect();
    let names = if names.len() == 1 {
        format!("={}", names.first().copied().unwrap_or_default())
    } else {
        format!(" in ({})", names.into_iter().collect::<Vec<_>>().join(","))
    };
    format!(
        "{}={bundle_namespace},{}{names}",
        labels::BUNDLE_NAMESPACE,
        labels::BUNDLE_NAME
    )
}
