//! `GitRepo`: a git repository watched by Fleet, and where its content goes.

#![allow(
    clippy::duplicated_attributes,
    reason = "printcolumn(...) repeats `type_ = \"string\"` for each column of the kube derive"
)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::deployment_options::CorrectDrift;
use crate::omitempty::{is_default, is_false, is_zero_i64};
use crate::summary::{BundleSummary, ResourceCounts};
use crate::target::GitTarget;

/// Fleet's default `pollingInterval` when the spec leaves it empty.
pub const DEFAULT_POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

/// Spec of a [`GitRepo`].
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "fleet.cattle.io",
    version = "v1alpha1",
    kind = "GitRepo",
    plural = "gitrepos",
    namespaced,
    status = "GitRepoStatus",
    category = "fleet",
    printcolumn(name = "Repo", type_ = "string", json_path = ".spec.repo"),
    printcolumn(name = "Commit", type_ = "string", json_path = ".status.commit"),
    printcolumn(
        name = "BundleDeployments-Ready",
        type_ = "string",
        json_path = ".status.display.readyBundleDeployments"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message"
    ),
    doc = "GitRepo describes a git repository that is watched by Fleet."
)]
#[serde(rename_all = "camelCase")]
pub struct GitRepoSpec {
    /// URL of the git repository.
    pub repo: String,
    /// Branch to follow (default: the remote's HEAD, as `master` in Fleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A specific commit or tag to deploy instead of following a branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Namespace forced onto every resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_namespace: Option<String>,
    /// Secret (`kubernetes.io/basic-auth`) with git credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_name: Option<String>,
    /// Secret with helm repository credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_secret_name: Option<String>,
    /// Skip TLS verification when talking to the git server.
    #[serde(default, skip_serializing_if = "is_false")]
    #[serde(rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: bool,
    /// Directories of the repo that each become a Bundle (default: the repo root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Stop propagating changes; resources are marked OutOfSync instead.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    /// Service account the agents deploy with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Clusters to deploy to (default: the cluster group `default`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<GitTarget>,
    /// How often to check git for new commits (Go duration such as `15s`, `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<String>,
    /// Increment to force a redeployment of the repo's content.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub force_sync_generation: i64,
    /// Keep deployed resources when the GitRepo is deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_resources: bool,
    /// Delete the target namespace when the GitRepo is deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_namespace: bool,
    /// Drift correction for all bundles of the repo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_drift: Option<CorrectDrift>,
    /// Only webhooks trigger syncs; no polling.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_polling: bool,
    /// Name of a Secret (in the GitRepo's namespace) whose `token` key verifies webhooks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_secret: String,
}

/// Status of a [`GitRepo`], as Fleet reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepoStatus {
    /// Lowest number of ready clusters over the repo's bundles.
    #[serde(default)]
    pub ready_clusters: i32,
    /// Number of clusters that should be ready.
    #[serde(default)]
    pub desired_ready_clusters: i32,
    /// Bundle deployments per state.
    #[serde(default, skip_serializing_if = "is_default")]
    pub summary: BundleSummary,
    /// Human-readable summary.
    #[serde(default, skip_serializing_if = "is_default")]
    pub display: GitRepoDisplay,
    /// Conditions: Ready, Accepted, GitPolling, Reconciling, Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Downstream resources per state over all bundles.
    #[serde(default, skip_serializing_if = "is_default")]
    pub resource_counts: ResourceCounts,
    /// Generation of the spec last acted upon.
    #[serde(default)]
    pub observed_generation: i64,
    /// `forceSyncGeneration` last acted upon.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub update_generation: i64,
    /// Commit the Bundles were last generated from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    /// Commit announced by the last webhook.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_commit: String,
    /// When the last webhook arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_webhook_time: Option<Time>,
    /// Commit seen by the last poll.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub polling_commit: String,
    /// Status of the last sync ("Current" when it succeeded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_job_status: String,
    /// When the last poll ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_polling_triggered: Option<Time>,
}

/// `status.display` of a [`GitRepo`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepoDisplay {
    /// `ready/desired` bundle deployments.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ready_bundle_deployments: String,
    /// Worst state over the bundle deployments (empty when all are ready).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Message of the worst condition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The repo is in an error state.
    #[serde(default, skip_serializing_if = "is_false")]
    pub error: bool,
}

impl GitRepoSpec {
    /// The directories to bundle: `spec.paths`, or the repo root when none are given.
    pub fn paths_or_root(&self) -> Vec<String> {
        match &self.paths {
            Some(paths) if !paths.is_empty() => paths.clone(),
            _ => vec![String::new()],
        }
    }
}
