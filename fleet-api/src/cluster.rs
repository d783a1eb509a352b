//! `Cluster`: a downstream cluster registered in a workspace namespace.

#![allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) repeats `type_ = \"string\"` for each column of the kube derive"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::omitempty::{is_default, is_false, is_zero_i64};
use crate::summary::{BundleSummary, ResourceCounts};

/// Spec of a [`Cluster`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "fleet.cattle.io",
    version = "v1alpha1",
    kind = "Cluster",
    plural = "clusters",
    namespaced,
    status = "ClusterStatus",
    printcolumn(
        name = "Bundles-Ready",
        type_ = "string",
        json_path = ".status.display.readyBundles"
    ),
    printcolumn(
        name = "Last-Seen",
        type_ = "string",
        json_path = ".status.agent.lastSeen"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    doc = "Cluster corresponds to a Kubernetes cluster that Fleet deploys to."
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// No changes are deployed to this cluster.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Unique identifier of the cluster's agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "clientID")]
    pub client_id: Option<String>,
    /// Name of a Secret with a `value` key holding a kubeconfig for the downstream cluster
    /// (used by the `apply` agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config_secret: Option<String>,
    /// Namespace of that Secret (default: the Cluster's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config_secret_namespace: Option<String>,
    /// Bumped to redeploy the agent.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub redeploy_agent_generation: i64,
    /// Namespace the agent runs in downstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_namespace: Option<String>,
}

/// Status of a [`Cluster`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Conditions (Ready, Processed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Namespace on the management cluster that holds this cluster's BundleDeployments.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Bundle deployments per state.
    #[serde(default, skip_serializing_if = "is_default")]
    pub summary: BundleSummary,
    /// Resources per state over all deployments.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource_counts: ResourceCounts,
    /// GitRepos whose deployments on this cluster are all ready.
    #[serde(default)]
    pub ready_git_repos: i32,
    /// GitRepos with deployments on this cluster.
    #[serde(default)]
    pub desired_ready_git_repos: i32,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "is_default")]
    pub display: ClusterDisplay,
    /// What the agent last reported.
    #[serde(default, skip_serializing_if = "is_default")]
    pub agent: AgentStatus,
}

/// `status.display` of a [`Cluster`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDisplay {
    /// `ready/desired` bundles.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ready_bundles: String,
    /// Worst state over the deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `status.agent` of a [`Cluster`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// When the agent last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Time>,
    /// Namespace the agent runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
