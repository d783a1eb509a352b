//! One definition of what the controller and the harness both speak: the
//! `fleet.cattle.io/v1alpha1` types (GitRepo, Bundle, BundleDeployment, Cluster and
//! ClusterGroup, with Fleet's JSON field names), their CRDs, the controller's profiles and
//! legacy switches, and Go durations.
//!
//! These types are the contract between the controller, the harness and an upstream Fleet
//! installation: the suites write objects of these kinds and read their status, against the
//! bundled controller or against Fleet alike. Each type models a subset of Fleet's schema and
//! every field in it exists in Fleet's CRDs at the same path (checked by a unit test against
//! `apiserver/tests/fixtures/fleet-crds.yaml`), because an apiserver serving Fleet's own CRDs prunes
//! any field its schema does not know, and a status field written there would silently
//! vanish.
//!
//! The crate exists so that the harness gets these definitions without compiling the
//! controller, and so that a name (a profile, a legacy switch, a label key) or a notation (a
//! Go duration) has one spelling that the controller's flags, the suite files and
//! `results.json` all share. It holds data and parsers only: how the controller acts on
//! them (targeting, polling, status) stays in the controller, and the harness predicts
//! targeting on its own (see `harness/src/steps/world.rs`).

mod bundle;
mod bundledeployment;
mod cluster;
mod clustergroup;
mod condition;
pub mod crd;
mod dependency;
mod deployment_options;
pub mod duration;
pub mod error;
mod gitrepo;
pub mod labels;
mod omitempty;
pub mod profile;
mod summary;
mod target;

pub use bundle::{
    Bundle, BundleDisplay, BundleResource, BundleSpec, BundleStatus, RolloutStrategy,
    TargetCustomizationMode,
};
pub use bundledeployment::{
    BundleDeployment, BundleDeploymentDisplay, BundleDeploymentResource, BundleDeploymentSpec,
    BundleDeploymentStatus,
};
pub use cluster::{AgentStatus, Cluster, ClusterDisplay, ClusterSpec, ClusterStatus};
pub use clustergroup::{ClusterGroup, ClusterGroupDisplay, ClusterGroupSpec, ClusterGroupStatus};
pub use condition::Condition;
pub use dependency::BundleRef;
pub use deployment_options::{
    BundleDeploymentOptions, CorrectDrift, HelmOptions, KustomizeOptions, YamlOptions,
};
pub use gitrepo::{DEFAULT_POLLING_INTERVAL, GitRepo, GitRepoDisplay, GitRepoSpec, GitRepoStatus};
pub use summary::{
    BundleState, BundleSummary, ModifiedStatus, NonReadyResource, NonReadyStatus, ResourceCounts,
    ResourceSummary,
};
pub use target::{BundleTarget, BundleTargetRestriction, GitTarget};

pub use crd::{crds, crds_json, crds_yaml, install_crds};
pub use duration::GoDuration;
pub use profile::{LegacySwitch, LegacySwitches, Profile};

/// The API group of every Fleet kind.
pub const GROUP: &str = "fleet.cattle.io";
/// The API version this crate speaks.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every Fleet object.
pub const API_VERSION: &str = "fleet.cattle.io/v1alpha1";

#[cfg(test)]
mod schema_tests;
