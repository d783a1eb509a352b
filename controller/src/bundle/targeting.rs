//! Which clusters a Bundle deploys to, and with which options (fleet-behaviour.md,
//! "Targeting").
//!
//! A Bundle's `targets` are its fleet.yaml target customizations followed by its GitRepo's
//! targets; the GitRepo's targets are also its `targetRestrictions`. So the first
//! `targets.len() - targetRestrictions.len()` targets are customizations. A cluster is
//! deployed to when a non-customization target matches it (and it passes a restriction),
//! unless that target or the chosen customization says `doNotDeploy`. A target matches when
//! every criterion it sets holds — cluster name (or Rancher display name), cluster selector,
//! group name, group selector — evaluated one cluster group at a time, so a group name and a
//! group selector must hold for the same group; a target that sets no criterion matches
//! nothing. Without restrictions (a Bundle not made from a GitRepo) every target is regular.

use std::collections::BTreeMap;

use crate::selector::{self, Selector};
use fleet_api::{
    BundleDeploymentOptions, BundleSpec, Cluster, ClusterGroup, GitTarget, TargetCustomizationMode,
    labels,
};

use super::options;

/// A target's criteria, compiled.
#[derive(Clone, Debug, Default)]
pub struct Criteria {
    cluster_name: Option<String>,
    cluster_selector: Option<Selector>,
    cluster_group: Option<String>,
    cluster_group_selector: Option<Selector>,
}

impl Criteria {
    /// Compiles the matchers of a target or restriction. Empty strings count as unset, as in
    /// Fleet (`omitempty`).
    pub fn compile(target: &GitTarget) -> Result<Self, selector::Error> {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Ok(Criteria {
            cluster_name: non_empty(&target.cluster_name),
            cluster_selector: target
                .cluster_selector
                .as_ref()
                .map(Selector::compile)
                .transpose()?,
            cluster_group: non_empty(&target.cluster_group),
            cluster_group_selector: target
                .cluster_group_selector
                .as_ref()
                .map(Selector::compile)
                .transpose()?,
        })
    }

    /// Whether the target sets no criterion at all (and so matches nothing).
    pub fn is_empty(&self) -> bool {
        self.cluster_name.is_none()
            && self.cluster_selector.is_none()
            && self.cluster_group.is_none()
            && self.cluster_group_selector.is_none()
    }

    /// Whether every set criterion holds for `cluster` seen as a member of `group` (`None`
    /// for a cluster in no group: Fleet then evaluates with an empty group name and labels).
    pub fn matches(&self, cluster: &ClusterFacts<'_>, group: Option<&GroupFacts<'_>>) -> bool {
        if self.is_empty() {
            return false;
        }
        if let Some(name) = &self.cluster_name
            && name != cluster.name
            && cluster.labels.get(labels::CLUSTER_DISPLAY_NAME) != Some(name)
        {
            return false;
        }
        if let Some(selector) = &self.cluster_selector
            && !selector.matches(cluster.labels)
        {
            return false;
        }
        if let Some(wanted) = &self.cluster_group
            && group.is_none_or(|g| g.name != wanted)
        {
            return false;
        }
        if let Some(selector) = &self.cluster_group_selector {
            let empty = BTreeMap::new();
            if !selector.matches(group.map_or(&empty, |g| g.labels)) {
                return false;
            }
        }
        true
    }

    /// Whether the criteria hold for the cluster through any of its groups.
    pub fn matches_any_group(&self, cluster: &ClusterFacts<'_>, groups: &[GroupFacts<'_>]) -> bool {
        if groups.is_empty() {
            self.matches(cluster, None)
        } else {
            groups
                .iter()
                .any(|group| self.matches(cluster, Some(group)))
        }
    }

    /// The compiled cluster selector, if set.
    pub fn cluster_selector(&self) -> Option<&Selector> {
        self.cluster_selector.as_ref()
    }

    /// The compiled group selector, if set.
    pub fn cluster_group_selector(&self) -> Option<&Selector> {
        self.cluster_group_selector.as_ref()
    }

    /// The cluster name criterion, if set.
    pub fn cluster_name(&self) -> Option<&str> {
        self.cluster_name.as_deref()
    }

    /// The group name criterion, if set.
    pub fn cluster_group(&self) -> Option<&str> {
        self.cluster_group.as_deref()
    }
}

/// What targeting needs to know about a cluster.
#[derive(Clone, Copy, Debug)]
pub struct ClusterFacts<'a> {
    /// Cluster object name.
    pub name: &'a str,
    /// Cluster labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// What targeting needs to know about a cluster group.
#[derive(Clone, Copy, Debug)]
pub struct GroupFacts<'a> {
    /// Group name.
    pub name: &'a str,
    /// Group labels.
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> From<&'a Cluster> for ClusterFacts<'a> {
    fn from(cluster: &'a Cluster) -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        ClusterFacts {
            name: cluster.metadata.name.as_deref().unwrap_or_default(),
            labels: cluster.metadata.labels.as_ref().unwrap_or(&EMPTY),
        }
    }
}

/// A cluster group with its selector compiled.
#[derive(Clone, Debug)]
pub struct CompiledGroup {
    /// Group name.
    pub name: String,
    /// Group labels.
    pub labels: BTreeMap<String, String>,
    /// Its selector; `None` (no selector, or an invalid one) selects no cluster.
    pub selector: Option<Selector>,
}

impl CompiledGroup {
    /// Compiles a ClusterGroup. An invalid selector selects nothing (and is reported by the
    /// ClusterGroup's status, not here).
    pub fn compile(group: &ClusterGroup) -> Self {
        CompiledGroup {
            name: group.metadata.name.clone().unwrap_or_default(),
            labels: group.metadata.labels.clone().unwrap_or_default(),
            selector: group
                .spec
                .selector
                .as_ref()
                .and_then(|s| Selector::compile(s).ok()),
        }
    }

    /// Whether the group contains a cluster with `labels`.
    pub fn contains(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// The group as targeting sees it.
    pub fn facts(&self) -> GroupFacts<'_> {
        GroupFacts {
            name: &self.name,
            labels: &self.labels,
        }
    }
}

/// The groups of `groups` that contain a cluster with `labels`.
pub fn groups_of<'g>(
    labels: &BTreeMap<String, String>,
    groups: &'g [CompiledGroup],
) -> Vec<GroupFacts<'g>> {
    groups
        .iter()
        .filter(|g| g.contains(labels))
        .map(CompiledGroup::facts)
        .collect()
}

#[derive(Clone, Debug)]
struct CompiledTarget {
    criteria: Criteria,
    do_not_deploy: bool,
    customization: bool,
}

/// A Bundle's targets, compiled for matching many clusters.
#[derive(Clone, Debug)]
pub struct Targeting {
    targets: Vec<CompiledTarget>,
    restrictions: Vec<Criteria>,
    mode: TargetCustomizationMode,
}

/// Where and how a bundle deploys to one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    /// Index in `spec.targets` of the target that selected the cluster.
    pub target: usize,
    /// The merged options for the cluster.
    pub options: BundleDeploymentOptions,
    /// `<manifestID>:<options hash>`.
    pub deployment_id: String,
}

/// A bundle whose targets cannot be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A target or restriction has an invalid label selector.
    #[error("{which}[{index}]")]
    Selector {
        /// `targets` or `targetRestrictions`.
        which: &'static str,
        /// Position in that list.
        index: usize,
        /// The selector problem.
        source: selector::Error,
    },
}

impl Targeting {
    /// Compiles a bundle's targets and restrictions.
    pub fn compile(spec: &BundleSpec) -> Result<Self, Error> {
        let restrictions = spec
            .target_restrictions
            .iter()
            .enumerate()
            .map(|(index, r)| {
                Criteria::compile(r).map_err(|source| Error::Selector {
                    which: "targetRestrictions",
                    index,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let customizations = if restrictions.is_empty() {
            0
        } else {
            spec.targets.len().saturating_sub(restrictions.len())
        };
        let targets = spec
            .targets
            .iter()
            .enumerate()
            .map(|(index, t)| {
                Ok(CompiledTarget {
                    criteria: Criteria::compile(&t.matcher()).map_err(|source| {
                        Error::Selector {
                            which: "targets",
                            index,
                            source,
                        }
                    })?,
                    do_not_deploy: t.do_not_deploy,
                    customization: index < customizations,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Targeting {
            targets,
            restrictions,
            mode: spec.target_customization_mode.unwrap_or_default(),
        })
    }

    /// Every compiled criterion (targets, then restrictions), for the selector index.
    pub fn criteria(&self) -> impl Iterator<Item = &Criteria> {
        self.targets
            .iter()
            .map(|t| &t.criteria)
            .chain(self.restrictions.iter())
    }

    fn passes_restrictions(
        &self,
        cluster: &ClusterFacts<'_>,
        group: Option<&GroupFacts<'_>>,
    ) -> bool {
        self.restrictions.is_empty() || self.restrictions.iter().any(|r| r.matches(cluster, group))
    }

    /// The first regular (non-customization) target that matches the cluster and passes a
    /// restriction for the same group.
    fn first_regular_match(
        &self,
        cluster: &ClusterFacts<'_>,
        groups: &[GroupFacts<'_>],
    ) -> Option<usize> {
        self.targets.iter().position(|t| {
            if t.customization {
                return false;
            }
            let check = |group: Option<&GroupFacts<'_>>| {
                self.passes_restrictions(cluster, group) && t.criteria.matches(cluster, group)
            };
            if groups.is_empty() {
                check(None)
            } else {
                groups.iter().any(|g| check(Some(g)))
            }
        })
    }

    /// Resolves the bundle for one cluster: `None` when the cluster is not targeted or a
    /// matching target or customization says `doNotDeploy`.
    pub fn resolve(
        &self,
        spec: &BundleSpec,
        manifest_id: &str,
        cluster: &ClusterFacts<'_>,
        groups: &[GroupFacts<'_>],
    ) -> Option<Resolved> {
        self.resolve_cached(
            spec,
            manifest_id,
            cluster,
            groups,
            &mut ResolveCache::default(),
        )
    }

    /// [`Targeting::resolve`], reusing merged options and deployment IDs across clusters that
    /// were selected by the same target and customizations (most clusters of a bundle are):
    /// merging and hashing options is the expensive part of resolution.
    pub fn resolve_cached(
        &self,
        spec: &BundleSpec,
        manifest_id: &str,
        cluster: &ClusterFacts<'_>,
        groups: &[GroupFacts<'_>],
        cache: &mut ResolveCache,
    ) -> Option<Resolved> {
        let target = self.first_regular_match(cluster, groups)?;
        if self.targets[target].do_not_deploy {
            return None;
        }
        let mut chosen = vec![target];
        let customizations = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.customization && t.criteria.matches_any_group(cluster, groups));
        match self.mode {
            TargetCustomizationMode::FirstMatch => {
                if let Some((index, custom)) = customizations.into_iter().next() {
                    if custom.do_not_deploy {
                        return None;
                    }
                    chosen = vec![index];
                }
            }
            TargetCustomizationMode::AllMatches => {
                for (index, custom) in customizations {
                    if custom.do_not_deploy {
                        return None;
                    }
                    chosen.push(index);
                }
            }
        }
        let (options, deployment_id) = cache
            .0
            .entry(chosen.clone())
            .or_insert_with(|| {
                let mut target_options = spec.targets[chosen[0]].options.clone();
                for index in &chosen[1..] {
                    target_options = options::merge(&target_options, &spec.targets[*index].options);
                }
                let merged = options::merge(&spec.options, &target_options);
                let id = options::deployment_id(manifest_id, &merged);
                (merged, id)
            })
            .clone();
        Some(Resolved {
            target,
            options,
            deployment_id,
        })
    }
}

/// Merged options and deployment IDs per combination of contributing targets, for one
/// bundle's resolution against many clusters.
#[derive(Debug, Default)]
pub struct ResolveCache(std::collections::HashMap<Vec<usize>, (BundleDeploymentOptions, String)>);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    use super::*;
    use fleet_api::{BundleTarget, ClusterGroupSpec};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn selector(pairs: &[(&str, &str)]) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: Some(map(pairs)),
            ..Default::default()
        })
    }

    fn group(name: &str, labels: &[(&str, &str)], selects: &[(&str, &str)]) -> CompiledGroup {
        let mut g = ClusterGroup::new(
            name,
            ClusterGroupSpec {
                selector: selector(selects),
            },
        );
        g.metadata.labels = Some(map(labels));
        CompiledGroup::compile(&g)
    }

    /// A bundle made from a GitRepo: customizations first, then the GitRepo targets, which
    /// are also the restrictions.
    fn spec(customizations: Vec<BundleTarget>, gitrepo_targets: Vec<GitTarget>) -> BundleSpec {
        let gitrepo_targets = if gitrepo_targets.is_empty() {
            vec![GitTarget {
                name: Some("default".into()),
                cluster_group: Some("default".into()),
                ..Default::default()
            }]
        } else {
            gitrepo_targets
        };
        let mut targets = customizations;
        targets.extend(gitrepo_targets.iter().cloned().map(BundleTarget::from));
        BundleSpec {
            targets,
            target_restrictions: gitrepo_targets,
            ..Default::default()
        }
    }

    fn resolve(
        spec: &BundleSpec,
        name: &str,
        labels: &BTreeMap<String, String>,
        groups: &[CompiledGroup],
    ) -> Option<Resolved> {
        let targeting = Targeting::compile(spec).unwrap();
        let cluster = ClusterFacts { name, labels };
        let member_of = groups_of(labels, groups);
        targeting.resolve(spec, "s-1", &cluster, &member_of)
    }

    #[test]
    fn no_targets_means_the_default_group() {
        let spec = spec(vec![], vec![]);
        let default = group("default", &[], &[("env", "dev")]);
        let dev = map(&[("env", "dev")]);
        let prod = map(&[("env", "prod")]);
        assert!(resolve(&spec, "c1", &dev, std::slice::from_ref(&default)).is_some());
        assert!(resolve(&spec, "c2", &prod, std::slice::from_ref(&default)).is_none());
        assert!(
            resolve(&spec, "c1", &dev, &[]).is_none(),
            "no group named default"
        );
    }

    #[test]
    fn every_criterion_a_target_sets_must_hold() {
        let target = GitTarget {
            cluster_name: Some("c1".into()),
            cluster_selector: selector(&[("env", "prod")]),
            ..Default::default()
        };
        let spec = spec(vec![], vec![target]);
        let prod = map(&[("env", "prod")]);
        assert!(resolve(&spec, "c1", &prod, &[]).is_some());
        assert!(resolve(&spec, "c2", &prod, &[]).is_none(), "wrong name");
        assert!(
            resolve(&spec, "c1", &map(&[("env", "dev")]), &[]).is_none(),
            "wrong labels"
        );
    }

    #[test]
    fn cluster_name_also_matches_rancher_display_name() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                cluster_name: Some("pretty".into()),
                ..Default::default()
            }],
        );
        let labels = map(&[(labels::CLUSTER_DISPLAY_NAME, "pretty")]);
        assert!(resolve(&spec, "c-xyz", &labels, &[]).is_some());
        assert!(resolve(&spec, "c-xyz", &map(&[]), &[]).is_none());
    }

    #[test]
    fn group_name_and_group_selector_must_hold_for_the_same_group() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                cluster_group: Some("g1".into()),
                cluster_group_selector: selector(&[("tier", "gold")]),
                ..Default::default()
            }],
        );
        let labels = map(&[("env", "prod")]);
        let g1_plain = group("g1", &[], &[("env", "prod")]);
        let g2_gold = group("g2", &[("tier", "gold")], &[("env", "prod")]);
        assert!(
            resolve(&spec, "c", &labels, &[g1_plain, g2_gold]).is_none(),
            "name via g1 and selector via g2 is not a match"
        );
        let g1_gold = group("g1", &[("tier", "gold")], &[("env", "prod")]);
        assert!(resolve(&spec, "c", &labels, &[g1_gold]).is_some());
    }

    #[test]
    fn a_group_selector_target_matches_members_of_matching_groups() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                cluster_group_selector: selector(&[("region", "eu")]),
                ..Default::default()
            }],
        );
        let eu = group("eu-clusters", &[("region", "eu")], &[("geo", "eu")]);
        assert!(
            resolve(
                &spec,
                "c",
                &map(&[("geo", "eu")]),
                std::slice::from_ref(&eu)
            )
            .is_some()
        );
        assert!(resolve(&spec, "c", &map(&[("geo", "us")]), &[eu]).is_none());
    }

    #[test]
    fn a_target_without_criteria_matches_nothing() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                name: Some("empty".into()),
                ..Default::default()
            }],
        );
        assert!(resolve(&spec, "c", &map(&[("env", "prod")]), &[]).is_none());
        // Empty strings are unset criteria too.
        let spec = spec_with_blank_name();
        assert!(resolve(&spec, "c", &map(&[]), &[]).is_none());
    }

    fn spec_with_blank_name() -> BundleSpec {
        spec(
            vec![],
            vec![GitTarget {
                cluster_name: Some(String::new()),
                ..Default::default()
            }],
        )
    }

    #[test]
    fn an_empty_selector_matches_every_cluster() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                cluster_selector: Some(LabelSelector::default()),
                ..Default::default()
            }],
        );
        assert!(resolve(&spec, "any", &map(&[]), &[]).is_some());
    }

    #[test]
    fn first_matching_gitrepo_target_decides_and_do_not_deploy_skips() {
        let spec = spec(
            vec![],
            vec![
                GitTarget {
                    name: Some("skip-canary".into()),
                    cluster_selector: selector(&[("canary", "true")]),
                    ..Default::default()
                },
                GitTarget {
                    name: Some("all".into()),
                    cluster_selector: Some(LabelSelector::default()),
                    ..Default::default()
                },
            ],
        );
        let mut spec = spec;
        spec.targets[0].do_not_deploy = true;
        assert!(resolve(&spec, "c", &map(&[("canary", "true")]), &[]).is_none());
        let resolved = resolve(&spec, "c", &map(&[]), &[]).unwrap();
        assert_eq!(resolved.target, 1);
    }

    #[test]
    fn customizations_first_match_wins_and_never_target_by_themselves() {
        let custom = |name: &str, labels: &[(&str, &str)], ns: &str| BundleTarget {
            name: Some(name.into()),
            cluster_selector: selector(labels),
            options: BundleDeploymentOptions {
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let spec = spec(
            vec![
                custom("prod", &[("env", "prod")], "prod-ns"),
                custom("eu", &[("region", "eu")], "eu-ns"),
            ],
            vec![GitTarget {
                cluster_selector: selector(&[("fleet", "yes")]),
                ..Default::default()
            }],
        );
        let both = map(&[("fleet", "yes"), ("env", "prod"), ("region", "eu")]);
        let resolved = resolve(&spec, "c", &both, &[]).unwrap();
        assert_eq!(resolved.options.namespace.as_deref(), Some("prod-ns"));
        let eu = map(&[("fleet", "yes"), ("region", "eu")]);
        assert_eq!(
            resolve(&spec, "c", &eu, &[])
                .unwrap()
                .options
                .namespace
                .as_deref(),
            Some("eu-ns")
        );
        // A customization alone does not target a cluster outside the GitRepo targets.
        assert!(resolve(&spec, "c", &map(&[("env", "prod")]), &[]).is_none());
        // No customization matches: the bundle's own options.
        let plain = resolve(&spec, "c", &map(&[("fleet", "yes")]), &[]).unwrap();
        assert_eq!(plain.options.namespace, None);
        assert_ne!(plain.deployment_id, resolved.deployment_id);
    }

    #[test]
    fn customization_do_not_deploy_skips_the_cluster() {
        let mut skip = BundleTarget {
            cluster_name: Some("c-skip".into()),
            ..Default::default()
        };
        skip.do_not_deploy = true;
        let spec = spec(
            vec![skip],
            vec![GitTarget {
                cluster_selector: Some(LabelSelector::default()),
                ..Default::default()
            }],
        );
        assert!(resolve(&spec, "c-skip", &map(&[]), &[]).is_none());
        assert!(resolve(&spec, "c-other", &map(&[]), &[]).is_some());
    }

    #[test]
    fn all_matches_mode_merges_every_matching_customization() {
        let custom = |labels: &[(&str, &str)], opts: BundleDeploymentOptions| BundleTarget {
            cluster_selector: selector(labels),
            options: opts,
            ..Default::default()
        };
        let mut spec = spec(
            vec![
                custom(
                    &[("env", "prod")],
                    BundleDeploymentOptions {
                        namespace: Some("prod".into()),
                        ..Default::default()
                    },
                ),
                custom(
                    &[("region", "eu")],
                    BundleDeploymentOptions {
                        service_account: Some("eu-sa".into()),
                        ..Default::default()
                    },
                ),
            ],
            vec![GitTarget {
                cluster_selector: Some(LabelSelector::default()),
                ..Default::default()
            }],
        );
        spec.target_customization_mode = Some(TargetCustomizationMode::AllMatches);
        let resolved =
            resolve(&spec, "c", &map(&[("env", "prod"), ("region", "eu")]), &[]).unwrap();
        assert_eq!(resolved.options.namespace.as_deref(), Some("prod"));
        assert_eq!(resolved.options.service_account.as_deref(), Some("eu-sa"));
    }

    #[test]
    fn restrictions_limit_targets_of_bundles_without_gitrepo_targets_in_targets() {
        // A bundle whose targets are not all restrictions: the extra (leading) ones are
        // customizations; a cluster must pass a restriction.
        let spec = BundleSpec {
            targets: vec![
                BundleTarget {
                    cluster_selector: Some(LabelSelector::default()),
                    ..Default::default()
                },
                BundleTarget {
                    cluster_selector: Some(LabelSelector::default()),
                    ..Default::default()
                },
            ],
            target_restrictions: vec![GitTarget {
                cluster_selector: selector(&[("allowed", "yes")]),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(resolve(&spec, "c", &map(&[]), &[]).is_none());
        assert!(resolve(&spec, "c", &map(&[("allowed", "yes")]), &[]).is_some());
        // Without any restriction every target is regular.
        let free = BundleSpec {
            targets: vec![BundleTarget {
                cluster_selector: Some(LabelSelector::default()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(resolve(&free, "c", &map(&[]), &[]).is_some());
    }

    #[test]
    fn bundle_options_are_the_base_of_the_merge() {
        let mut spec = spec(
            vec![],
            vec![GitTarget {
                cluster_selector: Some(LabelSelector::default()),
                ..Default::default()
            }],
        );
        spec.options.default_namespace = Some("apps".into());
        let resolved = resolve(&spec, "c", &map(&[]), &[]).unwrap();
        assert_eq!(resolved.options.default_namespace.as_deref(), Some("apps"));
        assert!(resolved.deployment_id.starts_with("s-1:"));
    }

    #[test]
    fn invalid_selectors_are_reported_with_their_position() {
        let spec = spec(
            vec![],
            vec![GitTarget {
                cluster_selector: Some(LabelSelector {
                    match_expressions: Some(vec![
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                            key: "a".into(),
                            operator: "Bad".into(),
                            values: None,
                        },
                    ]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        );
        let err = Targeting::compile(&spec).unwrap_err();
        let text = fleet_api::error::chain(&err);
        assert!(text.starts_with("targetRestrictions[0]: "), "{text}");
    }
}
