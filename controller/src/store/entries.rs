//! Compact cached forms of Bundles and BundleDeployments.
//!
//! The controller must hold 30,000 BundleDeployments (3000 Bundles x 10 Clusters) in well
//! under 200 MiB, so it never caches the full objects: a BundleDeployment is reduced to what
//! targeting, status aggregation and the agents read (its bundle, cluster, deployment IDs, a
//! hash of the labels and spec the controller would write, and its status essentials), and a
//! Bundle loses its manifests (kept as their hash and object count).

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::Arc;

use crate::bundle::options::{canonical_json, manifest_id, resources_sha256};
use fleet_api::{
    Bundle, BundleDeployment, BundleSpec, BundleStatus, ModifiedStatus, NonReadyStatus,
    ResourceCounts, TargetCustomizationMode, labels,
};

use super::Key;

/// A Bundle without its resources.
#[derive(Clone, Debug)]
pub struct BundleEntry {
    /// Namespace and name.
    pub key: Key,
    /// UID.
    pub uid: String,
    /// resourceVersion.
    pub resource_version: String,
    /// metadata.generation.
    pub generation: i64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Being deleted.
    pub deleting: bool,
    /// The spec, with `resources` emptied.
    pub spec: BundleSpec,
    /// SHA-256 of the resources.
    pub resources_sha256: String,
    /// `s-<sha256>` cut to 63 characters.
    pub manifest_id: String,
    /// Number of Kubernetes objects in the resources (for resource counts).
    pub object_count: i32,
    /// Hash of the labels and spec (resources included, via their SHA), to skip rewriting an
    /// unchanged Bundle.
    pub content_hash: u64,
    /// The status as last observed.
    pub status: Option<BundleStatus>,
}

impl BundleEntry {
    /// Reduces a Bundle.
    pub fn from_bundle(bundle: &Bundle) -> Self {
        let resources_sha256 = resources_sha256(&bundle.spec.resources);
        let object_count = count_objects(&bundle.spec);
        let mut spec = bundle.spec.clone();
        spec.resources = Vec::new();
        // The CRD defaults the mode; treat absent and default alike.
        spec.target_customization_mode
            .get_or_insert(TargetCustomizationMode::FirstMatch);
        let labels = bundle.metadata.labels.clone().unwrap_or_default();
        let owners: Vec<&str> = bundle
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.as_str())
            .collect();
        let content_hash = bundle_content_hash(&labels, &owners, &spec, &resources_sha256);
        BundleEntry {
            key: Key::of(&bundle.metadata),
            uid: bundle.metadata.uid.clone().unwrap_or_default(),
            resource_version: bundle.metadata.resource_version.clone().unwrap_or_default(),
            generation: bundle.metadata.generation.unwrap_or_default(),
            labels,
            deleting: bundle.metadata.deletion_timestamp.is_some(),
            manifest_id: manifest_id(&resources_sha256),
            resources_sha256,
            object_count,
            content_hash,
            spec,
            status: bundle.status.clone(),
        }
    }

    /// The GitRepo the bundle comes from (`fleet.cattle.io/repo-name`).
    pub fn repo(&self) -> Option<&str> {
        self.labels.get(labels::REPO_NAME).map(String::as_str)
    }
}

/// Hash of what the controller writes into a Bundle: labels, owner UIDs, spec without
/// resources, and the resources' SHA.
pub fn bundle_content_hash(
    labels: &BTreeMap<String, String>,
    owner_uids: &[&str],
    spec_without_resources: &BundleSpec,
    resources_sha256: &str,
) -> u64 {
    let value = serde_json::json!({
        "labels": labels,
        "owners": owner_uids,
        "spec": spec_without_resources,
        "resources": resources_sha256,
    });
    hash_str(&canonical_json(&value))
}

/// Counts the YAML documents with a `kind` across plain manifests (a coarse but stable
/// measure of how many objects a bundle deploys; helm charts count as their files).
fn count_objects(spec: &BundleSpec) -> i32 {
    let mut count = 0;
    for resource in &spec.resources {
        let Some(content) = &resource.content else {
            continue;
        };
        if resource.encoding.as_deref().is_some_and(|e| !e.is_empty()) {
            count += 1;
            continue;
        }
        let name = resource.name.as_deref().unwrap_or_default();
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")) {
            continue;
        }
        if name.starts_with("overlays/") {
            continue;
        }
        count += content
            .split("\n---")
            .filter(|doc| doc.lines().any(|l| l.starts_with("kind:")))
            .count() as i32;
    }
    count
}

pub(crate) fn hash_str(s: &str) -> u64 {
    // DefaultHasher::new() uses fixed keys: the hash is stable within and across runs.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut hasher);
    hasher.finish()
}

/// What the summaries need from a BundleDeployment's status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentStatus {
    /// `appliedDeploymentID` (the same allocation as `deploymentID` when equal).
    pub applied_deployment_id: Arc<str>,
    /// `ready`.
    pub ready: bool,
    /// `nonModified`.
    pub non_modified: bool,
    /// The Deployed condition is False (the agent failed to apply).
    pub deployed_false: bool,
    /// Fleet's "message from deployment": Deployed, else Installed (for the current ID),
    /// else Monitored condition message.
    pub message: String,
    /// Resource counts.
    pub resource_counts: ResourceCounts,
    /// Drifted resources (rare, so boxed).
    pub modified: Option<Box<Vec<ModifiedStatus>>>,
    /// Non-ready resources (rare, so boxed).
    pub non_ready: Option<Box<Vec<NonReadyStatus>>>,
}

/// A BundleDeployment reduced to what the controller reads.
#[derive(Clone, Debug)]
pub struct DeploymentEntry {
    /// Namespace (the cluster namespace) and name.
    pub key: Key,
    /// UID.
    pub uid: String,
    /// resourceVersion.
    pub resource_version: String,
    /// The bundle (`bundle-namespace`/`bundle-name` labels).
    pub bundle: Key,
    /// `repo-name` label.
    pub repo: Option<String>,
    /// The cluster (`cluster-namespace`/`cluster` labels).
    pub cluster: Option<Key>,
    /// Hash of labels + spec, comparable with [`deployment_content_hash`] of a desired one.
    pub content_hash: u64,
    /// `spec.deploymentID`.
    pub deployment_id: Arc<str>,
    /// `spec.stagedDeploymentID`.
    pub staged_deployment_id: Arc<str>,
    /// `spec.paused`.
    pub paused: bool,
    /// Being deleted.
    pub deleting: bool,
    /// Status essentials.
    pub status: DeploymentStatus,
}

/// Fingerprint of the labels and spec of a BundleDeployment, comparable between a desired
/// and an observed one. The options enter through the deployment IDs (which hash them), so
/// no JSON is built for the common case; the rarely set `dependsOn` and `correctDrift` are
/// hashed as canonical JSON when present.
pub fn deployment_content_hash(bd: &BundleDeployment) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(labels) = &bd.metadata.labels {
        for (k, v) in labels {
            k.hash(&mut hasher);
            v.hash(&mut hasher);
        }
    }
    0xfeu8.hash(&mut hasher);
    bd.spec.deployment_id.hash(&mut hasher);
    bd.spec.staged_deployment_id.hash(&mut hasher);
    bd.spec.paused.hash(&mut hasher);
    if bd.spec.depends_on.is_some() || bd.spec.correct_drift.is_some() {
        let extras = serde_json::json!({
            "dependsOn": bd.spec.depends_on,
            "correctDrift": bd.spec.correct_drift,
        });
        canonical_json(&extras).hash(&mut hasher);
    }
    hasher.finish()
}

/// `id` as one of `seen` when the text is equal, else a new allocation.
///
/// A deployment ID is `s-<sha256>:<sha256>`, 131 bytes, and every BundleDeployment carries
/// it up to three times (`deploymentID`, `stagedDeploymentID`, `appliedDeploymentID`),
/// equal once it is rolled out; the BundleDeployments of one bundle mostly share one ID too.
/// At 30,000 BundleDeployments the separate copies were the largest part of the store's
/// strings (heap profile of label-propagation-300, `reports/memory/`). Called for every
/// BundleDeployment the store takes in, so it compares against a fixed slice and allocates
/// nothing when the text is already held.
fn shared_id(id: &str, seen: &[&Arc<str>]) -> Arc<str> {
    match seen.iter().copied().find(|held| held.as_ref() == id) {
        Some(held) => Arc::clone(held),
        None => Arc::from(id),
    }
}

impl DeploymentEntry {
    /// Reduces a BundleDeployment; `None` when it does not carry Fleet's bundle labels.
    pub fn from_deployment(bd: &BundleDeployment) -> Option<Self> {
        let labels = bd.metadata.labels.as_ref()?;
        let bundle = Key::new(
            labels.get(labels::BUNDLE_NAMESPACE)?,
            labels.get(labels::BUNDLE_NAME)?,
        );
        let cluster = match (
            labels.get(labels::CLUSTER_NAMESPACE),
            labels.get(labels::CLUSTER),
        ) {
            (Some(ns), Some(name)) => Some(Key::new(ns, name)),
            _ => None,
        };
        let status = bd.status.as_ref();
        let condition = |type_: &str| {
            status
                .into_iter()
                .flat_map(|s| s.conditions.iter())
                .find(|c| c.type_ == type_)
        };
        let applied = status
            .and_then(|s| s.applied_deployment_id.as_deref())
            .unwrap_or_default();
        let deployment_id = bd.spec.deployment_id.as_deref().unwrap_or_default();
        let deployment_id: Arc<str> = Arc::from(deployment_id);
        let staged_deployment_id = shared_id(
            bd.spec.staged_deployment_id.as_deref().unwrap_or_default(),
            &[&deployment_id],
        );
        let applied = shared_id(applied, &[&deployment_id, &staged_deployment_id]);
        let message = [
            condition("Deployed").map(|c| c.message.clone()),
            if applied == deployment_id {
                condition("Installed").map(|c| c.message.clone())
            } else {
                None
            },
            condition("Monitored").map(|c| c.message.clone()),
        ]
        .into_iter()
        .flatten()
        .find(|m| !m.is_empty())
        .unwrap_or_default();
        Some(DeploymentEntry {
            key: Key::of(&bd.metadata),
            uid: bd.metadata.uid.clone().unwrap_or_default(),
            resource_version: bd.metadata.resource_version.clone().unwrap_or_default(),
            bundle,
            repo: labels.get(labels::REPO_NAME).cloned(),
            cluster,
            content_hash: deployment_content_hash(bd),
            staged_deployment_id,
            deployment_id,
            paused: bd.spec.paused,
            deleting: bd.metadata.deletion_timestamp.is_some(),
            status: DeploymentStatus {
                applied_deployment_id: applied,
                ready: status.is_some_and(|s| s.ready),
                non_modified: status.is_some_and(|s| s.non_modified),
                deployed_false: condition("Deployed").is_some_and(|c| c.status == "False"),
                message,
                resource_counts: status
                    .map(|s| s.resource_counts.clone())
                    .unwrap_or_default(),
                modified: status
                    .and_then(|s| s.modified_status.clone())
                    .filter(|v| !v.is_empty())
                    .map(Box::new),
                non_ready: status
                    .and_then(|s| s.non_ready_status.clone())
                    .filter(|v| !v.is_empty())
                    .map(Box::new),
            },
        })
    }

    /// Takes `other`'s allocation for every deployment ID whose text equals one of its IDs
    /// (the store passes a sibling of the same bundle, or this entry's previous version).
    pub fn share_ids_with(&mut self, other: &DeploymentEntry) {
        let held = [
            &other.deployment_id,
            &other.staged_deployment_id,
            &other.status.applied_deployment_id,
        ];
        self.deployment_id = shared_id(&self.deployment_id, &held);
        self.staged_deployment_id = shared_id(&self.staged_deployment_id, &held);
        self.status.applied_deployment_id = shared_id(&self.status.applied_deployment_id, &held);
    }

    /// Fleet's `GetDeploymentState`.
    pub fn state(&self) -> fleet_api::BundleState {
        use fleet_api::BundleState;
        if self.status.applied_deployment_id != self.deployment_id {
            if self.status.deployed_false {
                BundleState::ErrApplied
            } else {
                BundleState::WaitApplied
            }
        } else if !self.status.ready {
            BundleState::NotReady
        } else if self.deployment_id != self.staged_deployment_id {
            BundleState::OutOfSync
        } else if !self.status.non_modified {
            BundleState::Modified
        } else {
            BundleState::Ready
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_api::{
        BundleDeploymentSpec, BundleDeploymentStatus, BundleResource, BundleState, Condition,
    };

    fn bd(spec_id: &str, staged: &str, status: BundleDeploymentStatus) -> BundleDeployment {
        let mut bd = BundleDeployment::new(
            "b",
            BundleDeploymentSpec {
                deployment_id: Some(spec_id.into()),
                staged_deployment_id: Some(staged.into()),
                ..Default::default()
            },
        );
        bd.metadata.namespace = Some("cluster-ns".into());
        bd.metadata.labels = Some(BTreeMap::from([
            (labels::BUNDLE_NAME.to_owned(), "b".to_owned()),
            (
                labels::BUNDLE_NAMESPACE.to_owned(),
                "fleet-default".to_owned(),
            ),
        ]));
        bd.status = Some(status);
        bd
    }

    fn cond(type_: &str, status: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn deployment_states_follow_fleets_rules() {
        let state = |bd: BundleDeployment| DeploymentEntry::from_deployment(&bd).unwrap().state();
        assert_eq!(
            state(bd("a", "a", Default::default())),
            BundleState::WaitApplied
        );
        let failed = BundleDeploymentStatus {
            conditions: vec![cond("Deployed", "False", "boom")],
            ..Default::default()
        };
        let entry = DeploymentEntry::from_deployment(&bd("a", "a", failed)).unwrap();
        assert_eq!(entry.state(), BundleState::ErrApplied);
        assert_eq!(entry.status.message, "boom");
        let applied = |ready, non_modified| BundleDeploymentStatus {
            applied_deployment_id: Some("a".into()),
            ready,
            non_modified,
            ..Default::default()
        };
        assert_eq!(
            state(bd("a", "a", applied(false, true))),
            BundleState::NotReady
        );
        assert_eq!(
            state(bd("a", "b", applied(true, true))),
            BundleState::OutOfSync
        );
        assert_eq!(
            state(bd("a", "a", applied(true, false))),
            BundleState::Modified
        );
        assert_eq!(state(bd("a", "a", applied(true, true))), BundleState::Ready);
    }

    #[test]
    fn equal_deployment_ids_share_one_allocation() {
        let rolled_out = BundleDeploymentStatus {
            applied_deployment_id: Some("s-1:a".into()),
            ..Default::default()
        };
        let entry = DeploymentEntry::from_deployment(&bd("s-1:a", "s-1:a", rolled_out)).unwrap();
        assert!(Arc::ptr_eq(
            &entry.deployment_id,
            &entry.staged_deployment_id
        ));
        assert!(Arc::ptr_eq(
            &entry.deployment_id,
            &entry.status.applied_deployment_id
        ));

        // A sibling's equal ID is reused; a different one keeps its own text.
        let mut sibling =
            DeploymentEntry::from_deployment(&bd("s-1:a", "s-2:b", Default::default())).unwrap();
        sibling.share_ids_with(&entry);
        assert!(Arc::ptr_eq(&sibling.deployment_id, &entry.deployment_id));
        assert_eq!(&*sibling.staged_deployment_id, "s-2:b");
        assert_eq!(&*sibling.status.applied_deployment_id, "");
        assert_eq!(sibling.state(), BundleState::WaitApplied);
    }

    #[test]
    fn bundle_entries_drop_resources_but_keep_their_hash() {
        let mut bundle = Bundle::new(
            "b",
            BundleSpec {
                resources: vec![BundleResource {
                    name: Some("cm.yaml".into()),
                    content: Some("kind: ConfigMap\n---\nkind: Secret\n".into()),
                    encoding: None,
                }],
                ..Default::default()
            },
        );
        bundle.metadata.namespace = Some("ns".into());
        let entry = BundleEntry::from_bundle(&bundle);
        assert!(entry.spec.resources.is_empty());
        assert_eq!(entry.object_count, 2);
        assert!(entry.manifest_id.starts_with("s-"));
        bundle.spec.resources[0].content = Some("kind: ConfigMap\n".into());
        let changed = BundleEntry::from_bundle(&bundle);
        assert_ne!(changed.manifest_id, entry.manifest_id);
        assert_ne!(changed.content_hash, entry.content_hash);
    }
}
