//! The controllers kube-controller-manager and kube-apiserver run in the background,
//! reduced to what API clients can observe: owner-reference garbage collection
//! (background, foreground and orphan propagation), namespace cleanup, and removal of a
//! deleted CRD's objects.
//!
//! They run as one task fed by the store: every removal, every write with possibly
//! dangling owners, and every object entering deletion with a server-handled finalizer
//! is queued, so work is proportional to what changed, never a periodic scan.

use std::sync::{Arc, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::registry::{Kind, ResourceInfo};
use crate::state::ServerState;
use crate::store::{Housekeeping, Location};
use crate::write::{
    DeleteOptions, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Part, Propagation, WriteOptions,
};

const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Runs until the server is dropped or shut down.
pub async fn run(shared: Weak<ServerState>, mut queue: mpsc::UnboundedReceiver<Housekeeping>) {
    while let Some(work) = queue.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.shutdown.is_cancelled() {
            return;
        }
        handle(&shared, work);
    }
}

fn handle(shared: &ServerState, work: Housekeeping) {
    match work {
        Housekeeping::Removed {
            uid,
            namespace,
            owners,
            resource,
        } => {
            for dependent in shared.store.dependents_of(&uid) {
                collect_dependent(shared, &dependent);
            }
            for owner in owners {
                finalize(shared, &owner);
            }
            if !namespace.is_empty() {
                let ns_uid = shared
                    .terminating_namespaces
                    .lock()
                    .get(&*namespace)
                    .cloned();
                if let Some(ns_uid) = ns_uid {
                    finalize(shared, &ns_uid);
                }
            }
            let crd_uid = shared
                .terminating_crds
                .lock()
                .get(&resource.group_resource())
                .cloned();
            if let Some(crd_uid) = crd_uid {
                finalize(shared, &crd_uid);
            }
        }
        Housekeeping::CheckOwners { uid } => collect_dependent(shared, &uid),
        Housekeeping::Finalize { uid } => finalize(shared, &uid),
    }
}

fn info_of(shared: &ServerState, location: &Location) -> Option<Arc<ResourceInfo>> {
    shared.info_for(&location.resource.group, &location.resource.resource)
}

fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

fn internal() -> WriteOptions {
    WriteOptions {
        manager: "kube-controller-manager".into(),
        ..Default::default()
    }
}

/// Deletes a dependent whose owners are all gone, or drops the references to the owners
/// that are gone while others remain.
fn collect_dependent(shared: &ServerState, uid: &str) {
    let Some(location) = shared.store.locate(uid) else {
        return;
    };
    let Some(object) = location.resource.get(&location.key) else {
        return;
    };
    let Some(info) = info_of(shared, &location) else {
        return;
    };
    let owners = &object.meta.owners;
    if owners.is_empty() {
        return;
    }
    let alive: Vec<&str> = owners
        .iter()
        .map(|o| &*o.uid)
        .filter(|u| shared.store.exists(u))
        .collect();
    let (namespace, name) = split_key(&location.key);
    if alive.is_empty() {
        if !object.meta.deleting {
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..Default::default()
            };
            if let Err(err) = shared.delete(&info, namespace, name, &opts) {
                tracing::debug!(%err, name, "garbage collection delete failed");
            }
        }
    } else if alive.len() < owners.len() {
        let alive: Vec<String> = alive.into_iter().map(str::to_string).collect();
        let result = shared.update_with(
            &info,
            namespace,
            name,
            Part::Main,
            &internal(),
            false,
            &|old| {
                let mut new = old.clone();
                if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                    refs.retain(|r| {
                        r["uid"]
                            .as_str()
                            .is_some_and(|u| alive.iter().any(|a| a == u))
                    });
                }
                Ok(new)
            },
        );
        if let Err(err) = result {
            tracing::debug!(%err, name, "dropping dangling owner references failed");
        }
    }
}

fn remove_finalizer(shared: &ServerState, info: &Arc<ResourceInfo>, key: &str, finalizer: &str) {
    let (namespace, name) = split_key(key);
    let result = shared.update_with(
        info,
        namespace,
        name,
        Part::Main,
        &internal(),
        false,
        &|old| {
            let mut new = old.clone();
            if let Some(list) = new["metadata"]["finalizers"].as_array_mut() {
                list.retain(|f| f != finalizer);
            }
            Ok(new)
        },
    );
    if let Err(err) = result {
        tracing::debug!(%err, name, finalizer, "removing finalizer failed");
    }
}

/// Advances the server-handled finalizers of an object being deleted.
fn finalize(shared: &ServerState, uid: &str) {
    let Some(location) = shared.store.locate(uid) else {
        return;
    };
    let Some(object) = location.resource.get(&location.key) else {
        return;
    };
    if !object.meta.deleting {
        return;
    }
    let Some(info) = info_of(shared, &location) else {
        return;
    };
    let has = |f: &str| object.meta.finalizers.iter().any(|x| &**x == f);
    if has(ORPHAN_FINALIZER) {
        for dependent in shared.store.dependents_of(uid) {
            let Some(dep_location) = shared.store.locate(&dependent) else {
                continue;
            };
            let Some(dep_info) = info_of(shared, &dep_location) else {
                continue;
            };
            let (namespace, name) = split_key(&dep_location.key);
            let owner = uid.to_string();
            let _ = shared.update_with(
                &dep_info,
                namespace,
                name,
                Part::Main,
                &internal(),
                false,
                &|old| {
                    let mut new = old.clone();
                    if let Some(refs) = new["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"] != owner.as_str());
                        if refs.is_empty() {
                            new["metadata"]
                                .as_object_mut()
                                .map(|m| m.remove("ownerReferences"));
                        }
                    }
                    Ok(new)
                },
            );
        }
        remove_finalizer(shared, &info, &location.key, ORPHAN_FINALIZER);
        return;
    }
    if has(FOREGROUND_FINALIZER) {
        let mut blocking = false;
        for dependent in shared.store.dependents_of(uid) {
            let Some(dep_location) = shared.store.locate(&dependent) else {
                continue;
            };
            let Some(dep) = dep_location.resource.get(&dep_location.key) else {
                continue;
            };
            let Some(dep_info) = info_of(shared, &dep_location) else {
                continue;
            };
            blocking |= dep
                .meta
                .owners
                .iter()
                .any(|o| &*o.uid == uid && o.block_owner_deletion);
            if !dep.meta.deleting {
                let (namespace, name) = split_key(&dep_location.key);
                let opts = DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    ..Default::default()
                };
                let _ = shared.delete(&dep_info, namespace, name, &opts);
            }
        }
        if !blocking {
            remove_finalizer(shared, &info, &location.key, FOREGROUND_FINALIZER);
        }
        return;
    }
    match info.special {
        Kind::Namespace => finalize_namespace(shared, &info, &object.meta.name),
        Kind::CustomResourceDefinition => {
            finalize_crd(shared, &info, &location.key, &object.to_value());
        }
        _ => {}
    }
}

/// Deletes what a terminating namespace holds; removes the namespace once it is empty.
fn finalize_namespace(shared: &ServerState, info: &Arc<ResourceInfo>, namespace: &str) {
    for (_, store) in shared.registry.stores() {
        if !store.namespaced {
            continue;
        }
        let objects = store.all(Some(namespace));
        if objects.is_empty() {
            continue;
        }
        let Some(resource_info) = shared.info_for(&store.group, &store.resource) else {
            continue;
        };
        for object in objects.iter().filter(|o| !o.meta.deleting) {
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..Default::default()
            };
            let _ = shared.delete(&resource_info, Some(namespace), &object.meta.name, &opts);
        }
    }
    let left: usize = shared
        .registry
        .stores()
        .iter()
        .filter(|(_, s)| s.namespaced)
        .map(|(_, s)| s.all(Some(namespace)).len())
        .sum();
    if left > 0 {
        return;
    }
    // Empty: the namespace's own finalizer is done; remove it (or leave it to other
    // finalizers in metadata.finalizers).
    let result = shared.update_with(
        info,
        None,
        namespace,
        Part::Main,
        &internal(),
        false,
        &|old| {
            let mut new = old.clone();
            new["spec"] = json!({});
            Ok(new)
        },
    );
    let _ = result;
    let Some(current) = info.store.get(namespace) else {
        shared.terminating_namespaces.lock().remove(namespace);
        return;
    };
    if current.meta.finalizers.is_empty() {
        let key = namespace.to_string();
        let _ = info.store.commit(
            &shared.store,
            crate::store::Write::Delete {
                key,
                expected_rv: current.meta.rv,
                last_state: None,
            },
        );
        shared.terminating_namespaces.lock().remove(namespace);
    }
}

/// Deletes a terminating CRD's objects; stops serving the resource once none is left.
fn finalize_crd(shared: &ServerState, info: &Arc<ResourceInfo>, key: &str, crd: &Value) {
    let Ok(spec) = crate::custom::check(crd) else {
        remove_finalizer(shared, info, key, CRD_CLEANUP_FINALIZER);
        return;
    };
    if let Some(resource_info) = shared.info_for(&spec.group, &spec.plural) {
        let objects = resource_info.store.all(None);
        for object in objects.iter().filter(|o| !o.meta.deleting) {
            let namespace = (!object.meta.namespace.is_empty()).then_some(&*object.meta.namespace);
            let _ = shared.delete(
                &resource_info,
                namespace,
                &object.meta.name,
                &DeleteOptions::default(),
            );
        }
        if !resource_info.store.is_empty() {
            return;
        }
        for removed in shared.registry.remove_resource(&spec.group, &spec.plural) {
            removed.store.mark_removed();
        }
    }
    shared
        .terminating_crds
        .lock()
        .remove(&crate::status::group_resource(&spec.group, &spec.plural));
    remove_finalizer(shared, info, key, CRD_CLEANUP_FINALIZER);
}
