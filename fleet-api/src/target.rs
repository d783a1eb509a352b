//! Target matchers: which clusters a GitRepo or Bundle deploys to.
//!
//! A GitRepo's targets become a Bundle's targets and target restrictions, so the matcher
//! fields are defined once here and converted, not copied per kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::deployment_options::BundleDeploymentOptions;
use crate::omitempty::is_false;

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
