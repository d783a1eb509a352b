//! `BundleDeployment`: one Bundle on one Cluster, in that cluster's namespace.

#![allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) repeats `type_ = \"string\"` for each column of the kube derive"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::dependency::BundleRef;
use crate::deployment_options::{BundleDeploymentOptions, CorrectDrift};
use crate::omitempty::{is_default, is_false};
use crate::summary::{ModifiedStatus, NonReadyStatus, ResourceCounts};

/// Spec of a [`BundleDeployment`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "fleet.cattle.io",
    version = "v1alpha1",
    kind = "BundleDeployment",
    plural = "bundledeployments",
    namespaced,
    status = "BundleDeploymentStatus",
    printcolumn(
        name = "Deployed",
        type_ = "string",
        json_path = ".status.display.deployed"
    ),
    printcolumn(
        name = "Monitored",
        type_ = "string",
        json_path = ".status.display.monitored"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    doc = "BundleDeployment is the state of one Bundle on one downstream cluster."
)]
#[serde(rename_all = "camelCase")]
pub struct BundleDeploymentSpec {
    /// Do not deploy changes (the bundle is paused).
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Options of the staged (not yet deployed) content.
    #[serde(default, skip_serializing_if = "is_default")]
    pub staged_options: BundleDeploymentOptions,
    /// Staged deployment ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "stagedDeploymentID")]
    pub staged_deployment_id: Option<String>,
    /// Options for this cluster.
    #[serde(default, skip_serializing_if = "is_default")]
    pub options: BundleDeploymentOptions,
    /// Content and options identifier: `<contentsID>:<options hash>`; changes exactly when
    /// the manifests or the options do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "deploymentID")]
    pub deployment_id: Option<String>,
    /// Bundles that must be ready before this deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<BundleRef>>,
    /// Drift correction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_drift: Option<CorrectDrift>,
}

/// Status of a [`BundleDeployment`], written by the agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleDeploymentStatus {
    /// Conditions: Ready, Installed, Deployed, Monitored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The deployment ID the agent last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "appliedDeploymentID")]
    pub applied_deployment_id: Option<String>,
    /// Helm release (`namespace/name:version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Every resource is ready.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ready: bool,
    /// No resource drifted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub non_modified: bool,
    /// Resources that are not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_ready_status: Option<Vec<NonReadyStatus>>,
    /// Resources that drifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_status: Option<Vec<ModifiedStatus>>,
    /// The non-ready and modified lists were truncated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete_state: bool,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<BundleDeploymentDisplay>,
    /// `forceSyncGeneration` last acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_generation: Option<i64>,
    /// Resources deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<BundleDeploymentResource>>,
    /// Deployed resources per state.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource_counts: ResourceCounts,
}

/// `status.display` of a [`BundleDeployment`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleDeploymentDisplay {
    /// `Yes` or the error of the Deployed condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed: Option<String>,
    /// `Yes` or the error of the Monitored condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitored: Option<String>,
    /// The deployment's state (Ready, NotReady, ErrApplied, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A resource deployed by a [`BundleDeployment`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleDeploymentResource {
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// apiVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Creation time downstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
}
