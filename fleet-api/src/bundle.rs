//! `Bundle`: the deployable unit generated from one path of a GitRepo.

#![allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) repeats `type_ = \"string\"` for each column of the kube derive"
)]

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::dependency::BundleRef;
use crate::deployment_options::BundleDeploymentOptions;
use crate::omitempty::{is_default, is_false, is_zero_i32};
use crate::summary::BundleSummary;
use crate::target::{BundleTarget, BundleTargetRestriction};

/// Spec of a [`Bundle`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "fleet.cattle.io",
    version = "v1alpha1",
    kind = "Bundle",
    plural = "bundles",
    namespaced,
    status = "BundleStatus",
    printcolumn(
        name = "BundleDeployments-Ready",
        type_ = "string",
        json_path = ".status.display.readyClusters"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    doc = "Bundle contains the resources of an application and its deployment options."
)]
#[serde(rename_all = "camelCase")]
pub struct BundleSpec {
    /// Default deployment options for every targeted cluster.
    #[serde(flatten)]
    pub options: BundleDeploymentOptions,
    /// Stop propagating changes to the deployments.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Rollout strategy, stored as written in fleet.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<RolloutStrategy>,
    /// The manifests of the bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<BundleResource>,
    /// `FirstMatch` (default) or `AllMatches`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_customization_mode: Option<TargetCustomizationMode>,
    /// Targets: the fleet.yaml customizations first, then the GitRepo's targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<BundleTarget>,
    /// A cluster must match one of these (the GitRepo's targets) to be targeted at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_restrictions: Vec<BundleTargetRestriction>,
    /// Bundles that must be ready first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<BundleRef>>,
    /// Identifier of the bundle's content (hash of its resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents_id: Option<String>,
}

/// One manifest file of a bundle.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleResource {
    /// File name relative to the bundle path (e.g. `deployment.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// File content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Content encoding: empty for plain text, `base64`, `base64+gz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

/// How matching target customizations combine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TargetCustomizationMode {
    /// The first matching target supplies the options (Fleet's default).
    #[default]
    FirstMatch,
    /// Every matching target's options are merged in order.
    AllMatches,
}

/// Status of a [`Bundle`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleStatus {
    /// Conditions (Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Bundle deployments per state.
    #[serde(default, skip_serializing_if = "is_default")]
    pub summary: BundleSummary,
    /// Deployments created in the last reconcile.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub newly_created: i32,
    /// Unavailable clusters.
    #[serde(default)]
    pub unavailable: i32,
    /// Unavailable partitions.
    #[serde(default)]
    pub unavailable_partitions: i32,
    /// Allowed unavailable clusters.
    #[serde(default)]
    pub max_unavailable: i32,
    /// Allowed unavailable partitions.
    #[serde(default)]
    pub max_unavailable_partitions: i32,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "is_default")]
    pub display: BundleDisplay,
    /// Generation of the spec last acted upon.
    #[serde(default)]
    pub observed_generation: i64,
    /// SHA-256 of the bundle's resources.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resources_sha256_sum: String,
}

/// `status.display` of a [`Bundle`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleDisplay {
    /// `ready/desired` clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_clusters: Option<String>,
    /// Worst state over the deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
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
