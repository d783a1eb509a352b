//! How a bundle is deployed to one cluster: Fleet's `BundleDeploymentOptions` and the
//! helm, kustomize, YAML and drift-correction options inside it.
//!
//! The same options are a Bundle's defaults, a target's overrides and a BundleDeployment's
//! effective values, so the three kinds share these definitions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::omitempty::{is_false, is_zero_i32, is_zero_i64};

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

/// Schema of a free-form object whose fields the apiserver must keep (helm values).
fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "x-kubernetes-preserve-unknown-fields": true
    })
}
