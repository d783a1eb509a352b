//! Fleet's label and annotation keys.
//!
//! Fleet finds the objects that belong together by labels (a GitRepo's Bundles by
//! `repo-name`, a Bundle's BundleDeployments by `bundle-name` + `bundle-namespace`), so the
//! harness and an upstream Fleet can read what the bundled controller wrote only if the keys
//! are exactly Fleet's.

/// On Bundles and BundleDeployments: the name of the GitRepo they come from.
pub const REPO_NAME: &str = "fleet.cattle.io/repo-name";
/// On Bundles: the commit they were generated from.
pub const COMMIT: &str = "fleet.cattle.io/commit";
/// On BundleDeployments: the name of their Bundle.
pub const BUNDLE_NAME: &str = "fleet.cattle.io/bundle-name";
/// On BundleDeployments: the namespace of their Bundle.
pub const BUNDLE_NAMESPACE: &str = "fleet.cattle.io/bundle-namespace";
/// On BundleDeployments and cluster namespaces: managed by Fleet (`"true"`).
pub const MANAGED: &str = "fleet.cattle.io/managed";
/// On cluster namespaces: the namespace of the Cluster (label and annotation).
pub const CLUSTER_NAMESPACE: &str = "fleet.cattle.io/cluster-namespace";
/// On cluster namespaces: the name of the Cluster (label and annotation).
pub const CLUSTER: &str = "fleet.cattle.io/cluster";
/// On Cluster objects: the display name that `clusterName` targets may also match
/// (Rancher's `management.cattle.io/cluster-display-name`).
pub const CLUSTER_DISPLAY_NAME: &str = "management.cattle.io/cluster-display-name";
/// On Clusters: the Kubernetes name of the cluster (Fleet sets it on every Cluster;
/// `clusterName` targets match either this or the object name).
pub const CLUSTER_NAME: &str = "fleet.cattle.io/cluster-name";

/// Standard `app.kubernetes.io/managed-by` label, set on what the controller creates.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`] and the field manager name of the controller.
pub const CONTROLLER_NAME: &str = "fleet-controller";

/// The ClusterGroup a Bundle without targets deploys to.
pub const DEFAULT_CLUSTER_GROUP: &str = "default";
