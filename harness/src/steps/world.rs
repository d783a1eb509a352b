//! What a suite has created so far, and which clusters each GitRepo should reach.
//!
//! The harness predicts Fleet's targeting for the simple targets suites use (cluster name,
//! `matchLabels`, cluster group) so that it knows how many BundleDeployments to expect and
//! which ones a label or target edit must create or orphan; the measurement then checks
//! that the controller did exactly that.
//!
//! This prediction is an oracle and is independent of the controller on purpose: it shares
//! the API types (`fleet-api`) but none of the controller's targeting code (its selector
//! compiler, target index or matching), and it is written for the few criteria suites use
//! rather than for speed. An oracle built from the code it checks would agree with that
//! code's bugs and could never catch one; two independent implementations that must agree
//! can. Keep it that way when the controller's targeting changes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as KubeSelector;

use crate::suite::{LabelSelector, Target};

/// A registered downstream cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterInfo {
    /// Object name.
    pub name: String,
    /// Current labels (as the harness set them).
    pub labels: BTreeMap<String, String>,
    /// `status.namespace`, where its BundleDeployments live.
    pub namespace: String,
}

/// A ClusterGroup.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupInfo {
    /// Name.
    pub name: String,
    /// Selector over cluster labels.
    pub selector: LabelSelector,
}

/// A git repository on the forge.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoInfo {
    /// Owner.
    pub owner: String,
    /// Name.
    pub name: String,
    /// Number of paths (bundles).
    pub paths: usize,
    /// Branch.
    pub branch: String,
    /// Current head commit.
    pub head: String,
    /// Manifest revision last committed.
    pub revision: u64,
    /// When `break_repos` broke it, until `heal_repos` heals it.
    pub broken_since: Option<jiff::Timestamp>,
}

impl RepoInfo {
    /// `owner/name`, lower case (as the git server's request log names it).
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name).to_lowercase()
    }
}

/// A GitRepo the suite created.
#[derive(Debug, Clone, PartialEq)]
pub struct GitRepoInfo {
    /// Object name.
    pub name: String,
    /// Index into [`World::repos`].
    pub repo: usize,
    /// Current targets.
    pub targets: Vec<Target>,
    /// Polling interval in seconds (for poll-interval analysis).
    pub polling_interval_s: f64,
}

/// An infrastructure action (a reconnect, a restart) that the next `wait_deployed` times
/// from: its clock must start when the action was taken, not when the provider reported it
/// done (after waiting for `/readyz`), or the time the recovery took would go unmeasured.
#[derive(Debug, Clone)]
pub struct Action {
    /// What it was, for the measurement's description.
    pub what: String,
    /// When the harness began it.
    pub at: Instant,
    /// The recorder's log length at that moment.
    pub cursor: usize,
}

/// Everything created so far.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Clusters, in creation order.
    pub clusters: Vec<ClusterInfo>,
    /// Cluster groups.
    pub groups: Vec<GroupInfo>,
    /// Repositories, in creation order.
    pub repos: Vec<RepoInfo>,
    /// GitRepos, in creation order.
    pub gitrepos: Vec<GitRepoInfo>,
    /// The last heal or restart since the previous `wait_deployed`.
    pub action: Option<Action>,
}

impl World {
    /// Whether `target` selects `cluster` (every criterion the target sets must hold; a
    /// target that sets none matches nothing, as in Fleet). Suite files set only the
    /// criteria read here (the suite loader rejects the others).
    pub fn target_matches(&self, target: &Target, cluster: &ClusterInfo) -> bool {
        let mut criteria = 0;
        if let Some(name) = &target.cluster_name {
            criteria += 1;
            if name != &cluster.name {
                return false;
            }
        }
        if let Some(selector) = &target.cluster_selector {
            criteria += 1;
            let match_labels = selector.match_labels.iter().flatten();
            if !LabelSelector::all_match(match_labels, &cluster.labels) {
                return false;
            }
        }
        if let Some(group) = &target.cluster_group {
            criteria += 1;
            let member = self
                .groups
                .iter()
                .find(|g| &g.name == group)
                .is_some_and(|g| g.selector.matches(&cluster.labels));
            if !member {
                return false;
            }
        }
        criteria > 0
    }

    /// Whether any of `targets` selects `cluster`.
    pub fn matches(&self, targets: &[Target], cluster: &ClusterInfo) -> bool {
        targets.iter().any(|t| self.target_matches(t, cluster))
    }

    /// Names of the clusters a GitRepo with `targets` reaches.
    pub fn clusters_for(&self, targets: &[Target]) -> BTreeSet<String> {
        self.clusters
            .iter()
            .filter(|c| self.matches(targets, c))
            .map(|c| c.name.clone())
            .collect()
    }

    /// BundleDeployments expected for a GitRepo.
    pub fn expected_bundledeployments(&self, gitrepo: &GitRepoInfo) -> usize {
        self.repos[gitrepo.repo].paths * self.clusters_for(&gitrepo.targets).len()
    }

    /// A cluster by name.
    pub fn cluster(&self, name: &str) -> Option<&ClusterInfo> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// A suite selector as Kubernetes' type.
pub fn to_kube_selector(selector: &LabelSelector) -> KubeSelector {
    KubeSelector {
        match_labels: Some(selector.match_labels.clone()),
        match_expressions: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn world() -> World {
        World {
            clusters: vec![
                ClusterInfo {
                    name: "a".into(),
                    labels: labels(&[("env", "bench"), ("team", "x")]),
                    namespace: "ns-a".into(),
                },
                ClusterInfo {
                    name: "b".into(),
                    labels: labels(&[("env", "bench")]),
                    namespace: "ns-b".into(),
                },
                ClusterInfo {
                    name: "c".into(),
                    labels: BTreeMap::new(),
                    namespace: "ns-c".into(),
                },
            ],
            groups: vec![GroupInfo {
                name: "team-x".into(),
                selector: LabelSelector {
                    match_labels: labels(&[("team", "x")]),
                },
            }],
            repos: vec![RepoInfo {
                owner: "Fleetbench".into(),
                name: "Bench-0".into(),
                paths: 3,
                branch: "main".into(),
                head: String::new(),
                revision: 0,
                broken_since: None,
            }],
            gitrepos: Vec::new(),
            action: None,
        }
    }

    fn selector(pairs: &[(&str, &str)]) -> Option<KubeSelector> {
        Some(KubeSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        })
    }

    #[test]
    fn every_set_criterion_must_hold() {
        let world = world();
        let by_label = Target {
            cluster_selector: selector(&[("env", "bench")]),
            ..Target::default()
        };
        assert_eq!(
            world.clusters_for(std::slice::from_ref(&by_label)),
            BTreeSet::from(["a".into(), "b".into()])
        );
        let label_and_name = Target {
            cluster_name: Some("b".into()),
            ..by_label
        };
        assert_eq!(
            world.clusters_for(&[label_and_name]),
            BTreeSet::from(["b".into()])
        );
        let group = Target {
            cluster_group: Some("team-x".into()),
            ..Target::default()
        };
        assert_eq!(world.clusters_for(&[group]), BTreeSet::from(["a".into()]));
        let unknown_group = Target {
            cluster_group: Some("nope".into()),
            ..Target::default()
        };
        assert!(world.clusters_for(&[unknown_group]).is_empty());
    }

    #[test]
    fn a_target_without_criteria_matches_nothing_but_empty_selector_matches_all() {
        let world = world();
        assert!(world.clusters_for(&[Target::default()]).is_empty());
        let all = Target {
            cluster_selector: selector(&[]),
            ..Target::default()
        };
        assert_eq!(world.clusters_for(&[all]).len(), 3);
    }

    #[test]
    fn expected_bundledeployments_is_paths_times_clusters() {
        let mut world = world();
        world.gitrepos.push(GitRepoInfo {
            name: "g".into(),
            repo: 0,
            targets: vec![Target {
                cluster_selector: selector(&[("env", "bench")]),
                ..Target::default()
            }],
            polling_interval_s: 15.0,
        });
        assert_eq!(world.expected_bundledeployments(&world.gitrepos[0]), 6);
        assert_eq!(world.repos[0].full_name(), "fleetbench/bench-0");
    }
}
