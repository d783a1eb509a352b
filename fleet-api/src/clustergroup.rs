//! `ClusterGroup`: a named set of Clusters chosen by a label selector.

#![allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) repeats `type_ = \"string\"` for each column of the kube derive"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::omitempty::is_default;
use crate::summary::{BundleSummary, ResourceCounts};

/// Spec of a [`ClusterGroup`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "fleet.cattle.io",
    version = "v1alpha1",
    kind = "ClusterGroup",
    plural = "clustergroups",
    namespaced,
    status = "ClusterGroupStatus",
    category = "fleet",
    printcolumn(
        name = "Clusters-Ready",
        type_ = "string",
        json_path = ".status.display.readyClusters"
    ),
    printcolumn(
        name = "Bundles-Ready",
        type_ = "string",
        json_path = ".status.display.readyBundles"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    doc = "ClusterGroup is a re-usable selector over the Clusters of its namespace."
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGroupSpec {
    /// Selector over Cluster labels; a group without a selector has no clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Status of a [`ClusterGroup`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGroupStatus {
    /// Clusters in the group.
    #[serde(default)]
    pub cluster_count: i32,
    /// Clusters in the group that are not ready.
    #[serde(default)]
    pub non_ready_cluster_count: i32,
    /// Names of up to ten non-ready clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_ready_clusters: Option<Vec<String>>,
    /// Conditions (Ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Bundle deployments per state over the group's clusters.
    #[serde(default, skip_serializing_if = "is_default")]
    pub summary: BundleSummary,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "is_default")]
    pub display: ClusterGroupDisplay,
    /// Resources per state over the group's clusters.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource_counts: ResourceCounts,
}

/// `status.display` of a [`ClusterGroup`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGroupDisplay {
    /// `ready/total` clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_clusters: Option<String>,
    /// `ready/desired` bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_bundles: Option<String>,
    /// Worst state over the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}
