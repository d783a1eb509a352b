//! The selector index: from what a Cluster or ClusterGroup change touches to the Bundles whose
//! targeting can change.
//!
//! A label selector's result depends only on the label keys it names, so a Cluster whose
//! labels change can only change the matching of Bundles whose targets name one of the
//! changed keys; a renamed or new cluster can only change those naming it, and a group's
//! membership change only those naming the group or selecting groups by one of its label
//! keys. Selectors that match absent keys (NotIn, DoesNotExist, the empty selector) may match
//! a new cluster through keys it does not have, so they are kept in a separate "any" set
//! consulted for additions and removals only. Each bundle is indexed under every criterion of
//! every target and restriction (customizations included: they decide options and so the
//! deploymentID). A lookup costs the number of affected bundles, not the number of bundles.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::targeting::Targeting;

/// What a bundle is indexed under (all within the bundle's namespace).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum IndexKey {
    ClusterName(String),
    ClusterLabel(String),
    ClusterAny,
    GroupName(String),
    GroupLabel(String),
    GroupAny,
}

/// How a cluster changed, as far as targeting cares.
#[derive(Clone, Debug, Default)]
pub struct ClusterChange<'a> {
    /// Names the cluster is or was known by (object name, display-name label).
    pub names: Vec<&'a str>,
    /// The cluster appeared or disappeared (or became deployable): every key of `labels`
    /// counts as changed, and selectors matching absent keys are candidates.
    pub added_or_removed: bool,
    /// The cluster's labels (the new ones, or the old ones when removed).
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Label keys whose presence or value changed.
    pub changed_keys: Vec<&'a str>,
    /// Groups that gained or lost the cluster, with their labels.
    pub groups: Vec<(&'a str, &'a BTreeMap<String, String>)>,
}

/// Bundle names per index key, per namespace.
#[derive(Debug, Default)]
pub struct TargetIndex {
    by_key: HashMap<(String, IndexKey), HashSet<String>>,
    /// The keys each bundle is filed under, to unfile it.
    filed: HashMap<(String, String), Vec<IndexKey>>,
}

impl TargetIndex {
    /// Files (or re-files) bundle `namespace/name` under the criteria of `targeting`.
    pub fn upsert(&mut self, namespace: &str, name: &str, targeting: &Targeting) {
        self.remove(namespace, name);
        let mut keys = HashSet::new();
        for criteria in targeting.criteria() {
            if let Some(cluster) = criteria.cluster_name() {
                keys.insert(IndexKey::ClusterName(cluster.to_owned()));
            }
            if let Some(selector) = criteria.cluster_selector() {
                keys.extend(
                    selector
                        .keys()
                        .map(|k| IndexKey::ClusterLabel(k.to_owned())),
                );
                if selector.matches_absent_keys() {
                    keys.insert(IndexKey::ClusterAny);
                }
            }
            if let Some(group) = criteria.cluster_group() {
                keys.insert(IndexKey::GroupName(group.to_owned()));
            }
            if let Some(selector) = criteria.cluster_group_selector() {
                keys.extend(selector.keys().map(|k| IndexKey::GroupLabel(k.to_owned())));
                if selector.matches_absent_keys() {
                    keys.insert(IndexKey::GroupAny);
                }
            }
        }
        let keys: Vec<IndexKey> = keys.into_iter().collect();
        for key in &keys {
            self.by_key
                .entry((namespace.to_owned(), key.clone()))
                .or_default()
                .insert(name.to_owned());
        }
        self.filed
            .insert((namespace.to_owned(), name.to_owned()), keys);
    }

    /// Unfiles bundle `namespace/name`.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(keys) = self.filed.remove(&(namespace.to_owned(), name.to_owned())) else {
            return;
        };
        for key in keys {
            let slot = (namespace.to_owned(), key);
            if let Some(set) = self.by_key.get_mut(&slot) {
                set.remove(name);
                if set.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
    }

    fn collect(&self, namespace: &str, key: IndexKey, out: &mut HashSet<String>) {
        if let Some(set) = self.by_key.get(&(namespace.to_owned(), key)) {
            out.extend(set.iter().cloned());
        }
    }

    /// The bundles of `namespace` whose targeting can change because of `change`.
    pub fn affected(&self, namespace: &str, change: &ClusterChange<'_>) -> HashSet<String> {
        let mut out = HashSet::new();
        for name in &change.names {
            self.collect(
                namespace,
                IndexKey::ClusterName((*name).to_owned()),
                &mut out,
            );
        }
        for key in &change.changed_keys {
            self.collect(
                namespace,
                IndexKey::ClusterLabel((*key).to_owned()),
                &mut out,
            );
        }
        if change.added_or_removed {
            for key in change.labels.into_iter().flat_map(|l| l.keys()) {
                self.collect(namespace, IndexKey::ClusterLabel(key.clone()), &mut out);
            }
            self.collect(namespace, IndexKey::ClusterAny, &mut out);
        }
        if !change.groups.is_empty() {
            for (group, labels) in &change.groups {
                self.collect(
                    namespace,
                    IndexKey::GroupName((*group).to_owned()),
                    &mut out,
                );
                for key in labels.keys() {
                    self.collect(namespace, IndexKey::GroupLabel(key.clone()), &mut out);
                }
            }
            self.collect(namespace, IndexKey::GroupAny, &mut out);
        }
        out
    }

    /// Number of bundles filed.
    pub fn len(&self) -> usize {
        self.filed.len()
    }

    /// Whether no bundle is filed.
    pub fn is_empty(&self) -> bool {
        self.filed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    use super::*;
    use fleet_api::{BundleSpec, BundleTarget, GitTarget};

    fn targeting(target: GitTarget) -> Targeting {
        Targeting::compile(&BundleSpec {
            targets: vec![BundleTarget::from(target.clone())],
            target_restrictions: vec![target],
            ..Default::default()
        })
        .unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn by_labels(pairs: &[(&str, &str)]) -> GitTarget {
        GitTarget {
            cluster_selector: Some(LabelSelector {
                match_labels: Some(labels(pairs)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn index() -> TargetIndex {
        let mut index = TargetIndex::default();
        index.upsert("ns", "env", &targeting(by_labels(&[("env", "prod")])));
        index.upsert("ns", "region", &targeting(by_labels(&[("region", "eu")])));
        index.upsert(
            "ns",
            "by-name",
            &targeting(GitTarget {
                cluster_name: Some("c1".into()),
                ..Default::default()
            }),
        );
        index.upsert(
            "ns",
            "default-group",
            &targeting(GitTarget {
                cluster_group: Some("default".into()),
                ..Default::default()
            }),
        );
        index.upsert(
            "ns",
            "not-canary",
            &targeting(GitTarget {
                cluster_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "canary".into(),
                        operator: "DoesNotExist".into(),
                        values: None,
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
        index.upsert("other-ns", "env", &targeting(by_labels(&[("env", "prod")])));
        index
    }

    fn sorted(set: HashSet<String>) -> Vec<String> {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn a_label_change_finds_only_bundles_naming_that_key() {
        let index = index();
        let change = ClusterChange {
            names: vec!["c9"],
            changed_keys: vec!["env"],
            ..Default::default()
        };
        assert_eq!(sorted(index.affected("ns", &change)), ["env"]);
        let canary = ClusterChange {
            changed_keys: vec!["canary"],
            ..Default::default()
        };
        assert_eq!(sorted(index.affected("ns", &canary)), ["not-canary"]);
    }

    #[test]
    fn a_new_cluster_finds_its_keys_its_name_and_absent_key_selectors() {
        let index = index();
        let l = labels(&[("region", "eu")]);
        let change = ClusterChange {
            names: vec!["c1"],
            added_or_removed: true,
            labels: Some(&l),
            ..Default::default()
        };
        assert_eq!(
            sorted(index.affected("ns", &change)),
            ["by-name", "not-canary", "region"]
        );
    }

    #[test]
    fn a_group_membership_change_finds_bundles_naming_the_group() {
        let index = index();
        let empty = BTreeMap::new();
        let change = ClusterChange {
            groups: vec![("default", &empty)],
            ..Default::default()
        };
        assert_eq!(sorted(index.affected("ns", &change)), ["default-group"]);
    }

    #[test]
    fn upsert_refiles_and_remove_unfiles() {
        let mut index = index();
        index.upsert("ns", "env", &targeting(by_labels(&[("tier", "gold")])));
        let env_change = ClusterChange {
            changed_keys: vec!["env"],
            ..Default::default()
        };
        assert!(index.affected("ns", &env_change).is_empty());
        index.remove("ns", "env");
        let tier_change = ClusterChange {
            changed_keys: vec!["tier"],
            ..Default::default()
        };
        assert!(index.affected("ns", &tier_change).is_empty());
        assert_eq!(index.len(), 5);
    }
}
