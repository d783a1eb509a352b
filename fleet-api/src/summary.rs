//! Status summaries: bundle deployment counts per state, non-ready samples and resource
//! counts.
//!
//! Fleet embeds the same summary structs in GitRepo, Bundle, Cluster and ClusterGroup
//! status and ranks deployment states the same way for each, so they live in one module: a
//! change to one of them must change every kind alike or the schemas drift apart.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::omitempty::{is_default, is_false, is_zero_i32};

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
