//! Types shared by several kinds: conditions, bundle summaries, resource counts, target
//! matchers and the per-deployment options.
//!
//! They live together because Fleet embeds the same Go structs in several CRDs (a
//! `BundleSummary` sits in GitRepo, Bundle, Cluster and ClusterGroup status), and a change
//! to one of them must change every kind alike or the schemas drift apart.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `skip_serializing_if` helper: Fleet's `omitempty` on a `bool`.
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// `skip_serializing_if` helper: Fleet's `omitempty` on an integer.
pub(crate) fn is_zero_i32(value: &i32) -> bool {
    *value == 0
}

/// `skip_serializing_if` helper: Fleet's `omitempty` on an `int64`.
pub(crate) fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// `skip_serializing_if` helper for structs whose default value Fleet omits.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// A status condition as Fleet writes it (wrangler's `genericcondition.GenericCondition`).
///
/// Fleet's conditions carry string timestamps and a `lastUpdateTime`, unlike
/// `metav1.Condition`, so this is not k8s-openapi's `Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `Accepted`, `GitPolling`, `Reconciling`, `Stalled`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason for the last transition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339 time of the last update of this condition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_update_time: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
}

/// Counts of bundle deployments per state, plus a sample of non-ready resources.
///
/// `ready` and `desiredReady` are always serialised, as in Fleet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleSummary {
    /// Deployments applied but not ready.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub not_ready: i32,
    /// Deployments whose new deploymentID the agent has not applied yet.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub wait_applied: i32,
    /// Deployments the agent failed to apply.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub err_applied: i32,
    /// Deployments whose staged deploymentID is not yet the deployed one.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub out_of_sync: i32,
    /// Deployments whose resources drifted on the downstream cluster.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub modified: i32,
    /// Deployments that are ready.
    #[serde(default)]
    pub ready: i32,
    /// Deployments created but not yet picked up.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub pending: i32,
    /// Deployments that should become ready.
    #[serde(default)]
    pub desired_ready: i32,
    /// Up to ten non-ready deployments with their state and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_ready_resources: Option<Vec<NonReadyResource>>,
}

/// A non-ready bundle deployment as listed in a [`BundleSummary`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonReadyResource {
    /// `namespace/name` of the deployment, or of the bundle in cluster summaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The deployment's state (one of [`BundleState`]'s names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_state: Option<String>,
    /// Why it is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Resources that drifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_status: Option<Vec<ModifiedStatus>>,
    /// Resources that are not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_ready_status: Option<Vec<NonReadyStatus>>,
}

/// A downstream resource that differs from what the bundle wants.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModifiedStatus {
    /// Kind of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// apiVersion of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Namespace of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The resource is missing downstream (Fleet's JSON name for its `Create` field).
    #[serde(default, skip_serializing_if = "is_false")]
    pub missing: bool,
    /// The resource exists but is not owned by this deployment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exist: bool,
    /// The resource exists downstream but is no longer wanted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete: bool,
    /// The JSON patch that would restore the wanted state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// A downstream resource that is not ready.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NonReadyStatus {
    /// UID of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Kind of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// apiVersion of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Namespace of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its summarised state.
    #[serde(default, skip_serializing_if = "is_default")]
    pub summary: ResourceSummary,
}

/// Summarised state of one downstream resource (Fleet's `summary.Summary`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSummary {
    /// State name, e.g. `in-progress`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// The resource is in an error state.
    #[serde(default, skip_serializing_if = "is_false")]
    pub error: bool,
    /// The resource is changing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub transitioning: bool,
    /// Messages explaining the state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message: Vec<String>,
}

/// Number of downstream resources per state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCounts {
    /// Resources that are ready.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub ready: i32,
    /// Resources that should be ready.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub desired_ready: i32,
    /// Resources not yet applied.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub wait_applied: i32,
    /// Resources that drifted.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub modified: i32,
    /// Resources that exist downstream but are no longer wanted.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub orphaned: i32,
    /// Resources that are missing downstream.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub missing: i32,
    /// Resources in an unknown state.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub unknown: i32,
    /// Resources that are not ready.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub not_ready: i32,
}

impl ResourceCounts {
    /// Adds `other` into `self`, field by field.
    pub fn add(&mut self, other: &ResourceCounts) {
        self.ready += other.ready;
        self.desired_ready += other.desired_ready;
        self.wait_applied += other.wait_applied;
        self.modified += other.modified;
        self.orphaned += other.orphaned;
        self.missing += other.missing;
        self.unknown += other.unknown;
        self.not_ready += other.not_ready;
    }
}

/// The state of a bundle deployment, ranked for summaries.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BundleState {
    /// Applied and ready.
    Ready,
    /// Applied, not ready yet.
    NotReady,
    /// Created; the agent has not reported yet.
    Pending,
    /// Staged deploymentID differs from the deployed one.
    OutOfSync,
    /// Downstream resources drifted.
    Modified,
    /// The agent has not applied the current deploymentID yet.
    WaitApplied,
    /// The agent failed to apply.
    ErrApplied,
}

impl BundleState {
    /// Fleet's `StateRank`: the worst state wins when summarising (ErrApplied = 7 ... Ready = 1).
    pub fn rank(self) -> u8 {
        match self {
            BundleState::ErrApplied => 7,
            BundleState::WaitApplied => 6,
            BundleState::Modified => 5,
            BundleState::OutOfSync => 4,
            BundleState::Pending => 3,
            BundleState::NotReady => 2,
            BundleState::Ready => 1,
        }
    }

    /// The name Fleet writes into `display.state` and `bundleState`.
    pub fn as_str(self) -> &'static str {
        match self {
            BundleState::Ready => "Ready",
            BundleState::NotReady => "NotReady",
            BundleState::Pending => "Pending",
            BundleState::OutOfSync => "OutOfSync",
            BundleState::Modified => "Modified",
            BundleState::WaitApplied => "WaitApplied",
            BundleState::ErrApplied => "ErrApplied",
        }
    }
}

impl BundleSummary {
    /// Counts one deployment in `state` (also counting it as desired ready).
    pub fn count(&mut self, state: BundleState) {
        self.desired_ready += 1;
        match state {
            BundleState::Ready => self.ready += 1,
            BundleState::NotReady => self.not_ready += 1,
            BundleState::Pending => self.pending += 1,
            BundleState::OutOfSync => self.out_of_sync += 1,
            BundleState::Modified => self.modified += 1,
            BundleState::WaitApplied => self.wait_applied += 1,
            BundleState::ErrApplied => self.err_applied += 1,
        }
    }

    /// Adds the counts of `other` (not its non-ready samples).
    pub fn add_counts(&mut self, other: &BundleSummary) {
        self.not_ready += other.not_ready;
        self.wait_applied += other.wait_applied;
        self.err_applied += other.err_applied;
        self.out_of_sync += other.out_of_sync;
        self.modified += other.modified;
        self.ready += other.ready;
        self.pending += other.pending;
        self.desired_ready += other.desired_ready;
    }

    /// The worst state with a non-zero count, `None` when everything is ready (or empty).
    pub fn worst_state(&self) -> Option<BundleState> {
        [
            (BundleState::ErrApplied, self.err_applied),
            (BundleState::WaitApplied, self.wait_applied),
            (BundleState::Modified, self.modified),
            (BundleState::OutOfSync, self.out_of_sync),
            (BundleState::Pending, self.pending),
            (BundleState::NotReady, self.not_ready),
        ]
        .into_iter()
        .find(|(_, n)| *n > 0)
        .map(|(state, _)| state)
    }
}

/// Which clusters a GitRepo deploys to (Fleet's `GitTarget`); also a Bundle's target
/// restriction (`BundleTargetRestriction` has the same fields).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitTarget {
    /// Name of the target (used by target customizations and in messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Matches the Cluster with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Matches Clusters whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// Matches the Clusters of the ClusterGroup with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_group: Option<String>,
    /// Matches the Clusters of ClusterGroups whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_group_selector: Option<LabelSelector>,
}

/// Target restriction of a Bundle: a cluster must match one of them to be targeted at all.
pub type BundleTargetRestriction = GitTarget;

/// A Bundle target: matchers plus the options to use for the clusters it matches.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleTarget {
    /// Name of the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Matches the Cluster with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Matches Clusters whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// Matches the Clusters of the ClusterGroup with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_group: Option<String>,
    /// Matches the Clusters of ClusterGroups whose labels match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_group_selector: Option<LabelSelector>,
    /// Matching clusters get no BundleDeployment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub do_not_deploy: bool,
    /// Options for the matching clusters (override the bundle's options).
    #[serde(flatten)]
    pub options: BundleDeploymentOptions,
}

impl BundleTarget {
    /// The target's matchers, without its options.
    pub fn matcher(&self) -> GitTarget {
        GitTarget {
            name: self.name.clone(),
            cluster_name: self.cluster_name.clone(),
            cluster_selector: self.cluster_selector.clone(),
            cluster_group: self.cluster_group.clone(),
            cluster_group_selector: self.cluster_group_selector.clone(),
        }
    }
}

impl From<GitTarget> for BundleTarget {
    fn from(target: GitTarget) -> Self {
        BundleTarget {
            name: target.name,
            cluster_name: target.cluster_name,
            cluster_selector: target.cluster_selector,
            cluster_group: target.cluster_group,
            cluster_group_selector: target.cluster_group_selector,
            ..BundleTarget::default()
        }
    }
}

/// How resources are deployed to one cluster (Fleet's `BundleDeploymentOptions`): the
/// bundle's defaults, overridden per target, copied into each BundleDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleDeploymentOptions {
    /// Namespace for resources that do not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_namespace: Option<String>,
    /// Namespace forced onto every resource (Fleet's Go name: `TargetNamespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Helm options, kept as written in fleet.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmOptions>,
    /// Kustomize options, kept as written in fleet.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeOptions>,
    /// Plain-YAML overlay options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yaml: Option<YamlOptions>,
    /// Service account the agent deploys with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Create the target namespace when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,
    /// Bumped to force a redeployment.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub force_sync_generation: i64,
    /// Keep resources when the deployment is deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_resources: bool,
    /// Delete the namespace when the deployment is deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_namespace: bool,
    /// Labels for the target namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_labels: Option<BTreeMap<String, String>>,
    /// Annotations for the target namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_annotations: Option<BTreeMap<String, String>>,
    /// Drift correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_drift: Option<CorrectDrift>,
}

/// Drift correction options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrectDrift {
    /// Correct drift.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// Use `--force` on helm rollback.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    /// Keep failed rollbacks in helm history.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_fail_history: bool,
}

/// Plain-YAML options: overlays are named `overlays/<name>` directories in the bundle path.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct YamlOptions {
    /// Overlay names, applied in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlays: Option<Vec<String>>,
}

/// Kustomize options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeOptions {
    /// Directory of the kustomization, relative to the bundle path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

/// Helm options (the subset of Fleet's `HelmOptions` that fleet.yaml users set most).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmOptions {
    /// Chart path, name or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Chart repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// Helm release name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    /// Chart version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Helm timeout.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub timeout_seconds: i32,
    /// Values, any YAML object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preserve_unknown_object")]
    pub values: Option<serde_json::Map<String, serde_json::Value>>,
    /// Values files in the bundle path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// Templated values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_values: Option<BTreeMap<String, String>>,
    /// `helm upgrade --force`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
    /// Take ownership of existing resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub take_ownership: bool,
    /// Helm history size.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub max_history: i32,
    /// Wait for jobs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wait_for_jobs: bool,
    /// Atomic install/upgrade.
    #[serde(default, skip_serializing_if = "is_false")]
    pub atomic: bool,
    /// Disable template pre-processing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_pre_process: bool,
    /// Disable DNS lookups in templates.
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(rename = "disableDNS")]
    pub disable_dns: bool,
    /// Skip values schema validation.
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_schema_validation: bool,
    /// Skip `helm dependency update`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_dependency_update: bool,
}

/// A Bundle's rollout strategy (Fleet's `RolloutStrategy`), stored as written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Maximum unavailable clusters (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// Maximum unavailable partitions (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable_partitions: Option<IntOrString>,
    /// Clusters per automatic partition (number or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_partition_size: Option<IntOrString>,
    /// Cluster count above which automatic partitioning starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_partition_threshold: Option<i32>,
    /// Maximum BundleDeployments created per reconcile (Fleet's default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new: Option<i32>,
}

/// A dependency on other bundles (fleet.yaml `dependsOn`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleRef {
    /// Name of the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Selector over bundle labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// States of the dependency that do not block this bundle (default `Ready`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_states: Option<Vec<String>>,
}

/// Schema of a free-form object whose fields the apiserver must keep (helm values).
fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}
