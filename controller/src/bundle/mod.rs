//! The bundle reconciler: targets resolved to one BundleDeployment per matching cluster,
//! and every other BundleDeployment of the bundle deleted in the same reconcile.
//!
//! Deleting in the same reconcile is Fleet's fix for issue 3437 (PR 3438): before it,
//! orphans waited for the cluster reconciler's periodic pass, up to 10 minutes; the legacy
//! switch `orphan-cleanup-in-cluster-pass` restores that. New BundleDeployments are staged at
//! most `rolloutStrategy.maxNew` (default 50) per reconcile, as Fleet does; the rest show as
//! Pending and the bundle is requeued at once. Writes are skipped when the existing object
//! already has the desired labels and spec (compared by hash), so a reconcile triggered by an
//! unrelated change costs no API call.

pub mod deployments;
pub mod index;
pub mod options;
pub mod orphans;
pub mod targeting;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use parking_lot::Mutex;

use crate::queue::{Action, ReconcileFailure, backoff};
use crate::status::{BundleFacts, StatusKey, StatusWriter};
use crate::store::entries::deployment_content_hash;
use crate::store::{DeploymentEntry, Key, Store};
use fleet_api::error::{Foreign, chain};
use fleet_api::{BundleDeployment, Cluster};

use deployments::{Writer, desired_deployment};
use orphans::OrphanDeleter;
use targeting::{ClusterFacts, Targeting, groups_of};

/// Fleet's default `rolloutStrategy.maxNew`.
pub const DEFAULT_MAX_NEW: usize = 50;

/// How many BundleDeployment writes one reconcile runs concurrently.
const WRITE_CONCURRENCY: usize = 8;

/// Errors of a bundle reconcile (all API failures; targeting errors become status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating a BundleDeployment failed.
    #[error("creating BundleDeployment {key}")]
    Create {
        /// The BundleDeployment.
        key: Key,
        /// Client error (kube's message already names its cause).
        source: Foreign<kube::Error>,
    },
    /// Replacing a BundleDeployment failed (often a conflict with a concurrent change).
    #[error("updating BundleDeployment {key}")]
    Update {
        /// The BundleDeployment.
        key: Key,
        /// Client error (kube's message already names its cause).
        source: Foreign<kube::Error>,
    },
    /// Deleting a BundleDeployment failed.
    #[error("deleting BundleDeployment {key}")]
    Delete {
        /// The BundleDeployment.
        key: Key,
        /// Client error (kube's message already names its cause).
        source: Foreign<kube::Error>,
    },
    /// A batched deletion never answered (its task stopped).
    #[error("deleting BundleDeployments in a batch: {message}")]
    Batch {
        /// What happened.
        message: String,
    },
    /// Reading a BundleDeployment failed.
    #[error("reading BundleDeployment {key}")]
    Get {
        /// The BundleDeployment.
        key: Key,
        /// Client error (kube's message already names its cause).
        source: Foreign<kube::Error>,
    },
}

/// What the bundle reconciler needs.
pub struct Context {
    /// The object cache.
    pub store: Arc<Store>,
    /// Status writes.
    pub status: Arc<StatusWriter>,
    /// BundleDeployment writes.
    pub writer: Writer,
    /// Batched deletions of orphans.
    pub orphans: Arc<OrphanDeleter>,
    /// Legacy: leave orphans to the periodic cluster pass.
    pub orphans_in_cluster_pass: bool,
    /// Bundles to re-patch unconditionally on their next reconcile (legacy requeue-all).
    repatch: Mutex<HashSet<Key>>,
}

impl Context {
    /// A context.
    pub fn new(
        store: Arc<Store>,
        status: Arc<StatusWriter>,
        writer: Writer,
        orphans_in_cluster_pass: bool,
    ) -> Self {
        Context {
            store,
            status,
            orphans: OrphanDeleter::new(writer.clone()),
            writer,
            orphans_in_cluster_pass,
            repatch: Mutex::new(HashSet::new()),
        }
    }

    /// Marks bundles for an unconditional re-patch (legacy `requeue-all-bundles-on-cluster-change`).
    pub fn mark_repatch(&self, keys: impl IntoIterator<Item = Key>) {
        self.repatch.lock().extend(keys);
    }
}

/// The plan of one reconcile.
#[derive(Debug, Default)]
pub struct Plan {
    /// BundleDeployments to create.
    pub create: Vec<BundleDeployment>,
    /// BundleDeployments to replace, with the resourceVersion seen.
    pub update: Vec<(BundleDeployment, String)>,
    /// Paused deployments whose deployed spec must be read first.
    pub paused: Vec<(Key, Arc<Cluster>, targeting::Resolved)>,
    /// BundleDeployments to delete.
    pub delete: Vec<Arc<DeploymentEntry>>,
    /// Targeted clusters without a BundleDeployment after this reconcile.
    pub pending: Vec<String>,
    /// More creates remain than `maxNew` allowed.
    pub more: bool,
}

/// Computes what to write for bundle `key` (pure: reads the store only).
pub fn plan(
    store: &Store,
    key: &Key,
    orphans_in_cluster_pass: bool,
    repatch: bool,
) -> Result<Plan, targeting::Error> {
    let existing: HashMap<Key, Arc<DeploymentEntry>> = store
        .deployments_of_bundle(key)
        .into_iter()
        .map(|bd| (bd.key.clone(), bd))
        .collect();
    let mut plan = Plan::default();
    let Some(bundle) = store.bundle(key).filter(|b| !b.deleting) else {
        plan.delete = existing.into_values().collect();
        return Ok(plan);
    };
    let targeting = Targeting::compile(&bundle.spec)?;
    let groups = store.compiled_groups_in(&key.namespace);
    let max_new = bundle
        .spec
        .rollout_strategy
        .as_ref()
        .and_then(|r| r.max_new)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_NEW);
    let mut clusters = store.clusters_in(&key.namespace);
    clusters.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut desired_keys = HashSet::new();
    for cluster in clusters {
        let facts = ClusterFacts::from(&*cluster);
        let member_of = groups_of(facts.labels, &groups);
        let Some(resolved) =
            targeting.resolve(&bundle.spec, &bundle.manifest_id, &facts, &member_of)
        else {
            continue;
        };
        let cluster_key = Key::of(&cluster.metadata);
        let namespace = cluster
            .status
            .as_ref()
            .map(|s| s.namespace.clone())
            .filter(|ns| !ns.is_empty());
        let Some(namespace) = namespace else {
            plan.pending.push(cluster_key.to_string());
            continue;
        };
        let bd_key = Key::new(namespace.clone(), key.name.clone());
        desired_keys.insert(bd_key.clone());
        let current = existing.get(&bd_key);
        if (cluster.spec.paused || bundle.spec.paused) && current.is_some() {
            plan.paused.push((bd_key, cluster.clone(), resolved));
            continue;
        }
        let desired = desired_deployment(&bundle, &cluster, &namespace, &resolved, None);
        match current {
            None if plan.create.len() < max_new => plan.create.push(desired),
            None => {
                plan.more = true;
                plan.pending.push(cluster_key.to_string());
            }
            Some(current) => {
                if repatch || current.content_hash != deployment_content_hash(&desired) {
                    plan.update
                        .push((desired, current.resource_version.clone()));
                }
            }
        }
    }
    if !orphans_in_cluster_pass {
        plan.delete = existing
            .into_iter()
            .filter(|(k, _)| !desired_keys.contains(k))
            .map(|(_, bd)| bd)
            .collect();
    }
    plan.pending.sort();
    Ok(plan)
}

/// Reconciles one bundle.
pub async fn reconcile(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let repatch = ctx.repatch.lock().remove(&key);
    let status_key = StatusKey::Bundle(key.clone());
    let bundle = ctx.store.bundle(&key);
    let plan = match plan(&ctx.store, &key, ctx.orphans_in_cluster_pass, repatch) {
        Ok(plan) => plan,
        Err(error) => {
            ctx.status.set_bundle_facts(
                &key,
                BundleFacts {
                    observed_generation: bundle.as_ref().map_or(0, |b| b.generation),
                    error: Some(format!("invalid targets: {}", chain(&error))),
                    ..Default::default()
                },
            );
            ctx.status.request_now(status_key);
            return Ok(Action::await_change());
        }
    };
    let newly_created = plan.create.len() as i32;
    let more = plan.more;
    let pending = plan.pending.clone();
    execute(&ctx, plan, bundle.as_deref()).await?;
    match bundle.filter(|b| !b.deleting) {
        Some(bundle) => {
            ctx.status.set_bundle_facts(
                &key,
                BundleFacts {
                    observed_generation: bundle.generation,
                    pending,
                    error: None,
                    newly_created,
                },
            );
            if repatch {
                ctx.status.force(status_key);
            } else {
                ctx.status.request(status_key);
            }
        }
        None => ctx.status.forget(&status_key),
    }
    Ok(if more {
        Action::requeue(Duration::ZERO)
    } else {
        Action::await_change()
    })
}

async fn execute(
    ctx: &Context,
    plan: Plan,
    bundle: Option<&crate::store::BundleEntry>,
) -> Result<(), Error> {
    let writer = &ctx.writer;
    let mut results: Vec<Result<(), Error>> = Vec::new();
    // Paused deployments: their deployed spec is not cached, read it first.
    let mut paused_updates = Vec::new();
    if let Some(bundle) = bundle {
        for (bd_key, cluster, resolved) in &plan.paused {
            if let Some(current) = writer.get(bd_key).await? {
                let desired = desired_deployment(
                    bundle,
                    cluster,
                    &bd_key.namespace,
                    resolved,
                    Some(&current.spec),
                );
                if deployment_content_hash(&desired) != deployment_content_hash(&current) {
                    paused_updates.push((
                        desired,
                        current.metadata.resource_version.unwrap_or_default(),
                    ));
                }
            }
        }
    }
    let creates = plan
        .create
        .into_iter()
        .map(|bd| WriteOp::Create(Box::new(bd)));
    let updates = plan
        .update
        .into_iter()
        .chain(paused_updates)
        .map(|(bd, rv)| WriteOp::Update(Box::new(bd), rv));
    let writes = async {
        let mut stream = futures::stream::iter(creates.chain(updates))
            .map(|op| async move {
                match op {
                    WriteOp::Create(bd) => writer.create(*bd).await,
                    WriteOp::Update(bd, rv) => writer.replace(*bd, rv).await,
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY);
        let mut results = Vec::new();
        while let Some(result) = stream.next().await {
            results.push(result);
        }
        results
    };
    // Deletions share one call per cluster namespace with other reconciles' (orphans.rs).
    let deletes = async {
        if plan.delete.is_empty() {
            Vec::new()
        } else {
            ctx.orphans.delete(plan.delete).await
        }
    };
    let (written, deleted) = futures::join!(writes, deletes);
    results.extend(written);
    results.extend(deleted);
    results.into_iter().collect()
}

enum WriteOp {
    Create(Box<BundleDeployment>),
    Update(Box<BundleDeployment>, String),
}

/// Retries with per-key exponential backoff (conflicts resolve once the cache catches up).
pub fn error_policy(
    _key: &Key,
    _error: &ReconcileFailure<Error>,
    retries: u32,
    _ctx: &Context,
) -> Action {
    Action::requeue(backoff(retries, Duration::from_secs(30)))
}

/// Bundles of `namespace` that reference `cluster`'s BundleDeployments (for cluster
/// removals: their BundleDeployments there became orphans).
pub fn bundles_with_deployments_in(store: &Store, namespace: &str) -> Vec<Key> {
    let mut keys: BTreeMap<Key, ()> = BTreeMap::new();
    for bd in store.deployments_in_namespace(namespace) {
        keys.insert(bd.bundle.clone(), ());
    }
    keys.into_keys().collect()
}
