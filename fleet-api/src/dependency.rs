//! A dependency on other bundles (fleet.yaml `dependsOn`).
//!
//! Bundles declare it and BundleDeployments carry it to the agent, so both kinds share this
//! definition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
