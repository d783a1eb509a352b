//! The `fleet.cattle.io/v1alpha1` types: GitRepo, Bundle, BundleDeployment, Cluster and
//! ClusterGroup, with Fleet's JSON field names.
//!
//! These types are the contract between the controller, the harness and an upstream Fleet
//! installation: the suites write objects of these kinds and read their status, against the
//! bundled controller or against Fleet alike. Each type models a subset of Fleet's schema and
//! every field in it exists in Fleet's CRDs at the same path (checked by a unit test against
//! `apiserver/tests/fixtures/fleet-crds.yaml`), because an apiserver serving Fleet's own CRDs prunes
//! any field its schema does not know, and a status field written there would silently
//! vanish.

mod bundle;
mod bundledeployment;
mod cluster;
mod clustergroup;
mod common;
mod gitrepo;
pub mod labels;

pub use bundle::{
    Bundle, BundleDisplay, BundleResource, BundleSpec, BundleStatus, TargetCustomizationMode,
};
pub use bundledeployment::{
    BundleDeployment, BundleDeploymentDisplay, BundleDeploymentResource, BundleDeploymentSpec,
    BundleDeploymentStatus,
};
pub use cluster::{AgentStatus, Cluster, ClusterDisplay, ClusterSpec, ClusterStatus};
pub use clustergroup::{ClusterGroup, ClusterGroupDisplay, ClusterGroupSpec, ClusterGroupStatus};
pub use common::{
    BundleDeploymentOptions, BundleRef, BundleState, BundleSummary, BundleTarget,
    BundleTargetRestriction, Condition, CorrectDrift, GitTarget, HelmOptions, KustomizeOptions,
    ModifiedStatus, NonReadyResource, NonReadyStatus, ResourceCounts, ResourceSummary,
    RolloutStrategy, YamlOptions,
};
pub use gitrepo::{DEFAULT_POLLING_INTERVAL, GitRepo, GitRepoDisplay, GitRepoSpec, GitRepoStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every Fleet kind.
pub const GROUP: &str = "fleet.cattle.io";
/// The API version this crate speaks.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every Fleet object.
pub const API_VERSION: &str = "fleet.cattle.io/v1alpha1";

/// The CRDs of the five kinds, generated from the Rust types, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        GitRepo::crd(),
        Bundle::crd(),
        BundleDeployment::crd(),
        Cluster::crd(),
        ClusterGroup::crd(),
    ];
    for crd in &mut crds {
        // The apiserver defaults listKind; Fleet's CRDs spell it out, and so do we.
        crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
        crd.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(
                labels::MANAGED_BY.to_owned(),
                labels::CONTROLLER_NAME.to_owned(),
            );
    }
    crds
}

/// Renders [`crds`] as a multi-document YAML stream (what `--install-crds --dry-run` prints
/// and what `kubectl apply -f` accepts).
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// Renders [`crds`] as a JSON `List`.
pub fn crds_json() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": crds(),
    })
}

#[cfg(test)]
mod schema_tests;
