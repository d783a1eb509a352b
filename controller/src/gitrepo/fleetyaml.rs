//! `fleet.yaml`: per-path bundle options, parsed with serde-saphyr.
//!
//! Like Fleet's `FleetYAML`, the file is a BundleSpec (deployment options, `paused`,
//! `rolloutStrategy`, `dependsOn`, `targets`, `targetCustomizationMode`) plus `name`,
//! `labels`, `targetCustomizations` and `overrideTargets`. Unknown keys are ignored (Fleet's
//! decoder is lenient too); malformed YAML or wrongly typed values are errors that name the
//! file, line and column.

use std::collections::BTreeMap;

use serde::Deserialize;

use fleet_api::{
    BundleDeploymentOptions, BundleRef, BundleTarget, GitTarget, RolloutStrategy,
    TargetCustomizationMode,
};

/// A parsed `fleet.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FleetYaml {
    /// Overrides the bundle name.
    pub name: Option<String>,
    /// Extra labels for the Bundle.
    pub labels: BTreeMap<String, String>,
    /// Deployment options (defaultNamespace, namespace, helm, kustomize, yaml, ...).
    #[serde(flatten)]
    pub options: BundleDeploymentOptions,
    /// Do not propagate changes.
    pub paused: bool,
    /// Rollout strategy.
    pub rollout_strategy: Option<RolloutStrategy>,
    /// How customizations combine.
    pub target_customization_mode: Option<TargetCustomizationMode>,
    /// Bundle targets written in fleet.yaml (treated as customizations, as in Fleet).
    pub targets: Vec<BundleTarget>,
    /// Per-cluster option overrides.
    pub target_customizations: Vec<BundleTarget>,
    /// Bundles that must be ready first.
    pub depends_on: Option<Vec<BundleRef>>,
    /// Replace the GitRepo's targets for this bundle.
    pub override_targets: Option<Vec<GitTarget>>,
}

/// A `fleet.yaml` that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The YAML is malformed or a value has the wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// Path of the file in the repository.
        path: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// A `dependsOn` entry names neither a bundle nor a selector.
    #[error("{path}: dependsOn[{index}]: must specify either 'name' or 'selector'")]
    DependsOn {
        /// Path of the file.
        path: String,
        /// Position of the entry.
        index: usize,
    },
}

/// YAML parsing options: YAML 1.2 booleans only (`true`/`false`), so that a namespace named
/// `n` or a value `on` stays a string even in flattened fields.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! { strict_booleans: true }
}

impl FleetYaml {
    /// Parses the fleet.yaml at `path` (used in messages).
    pub fn parse(path: &str, text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(FleetYaml::default());
        }
        let parsed: Option<FleetYaml> = serde_saphyr::from_str_with_options(text, yaml_options())
            .map_err(|e| Error::Parse {
            path: path.to_owned(),
            message: e.to_string().lines().next().unwrap_or_default().to_owned(),
        })?;
        let parsed = parsed.unwrap_or_default();
        for (index, dep) in parsed.depends_on.iter().flatten().enumerate() {
            if dep.name.as_deref().is_none_or(str::is_empty) && dep.selector.is_none() {
                return Err(Error::DependsOn {
                    path: path.to_owned(),
                    index,
                });
            }
        }
        Ok(parsed)
    }

    /// The helm values files, which are options rather than manifests.
    pub fn values_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        for helm in std::iter::once(&self.options.helm)
            .chain(self.targets.iter().map(|t| &t.options.helm))
            .chain(self.target_customizations.iter().map(|t| &t.options.helm))
            .flatten()
        {
            files.extend(helm.values_files.iter().flatten().cloned());
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
defaultNamespace: apps
namespace: forced
labels:
  team: web
helm:
  chart: ./chart
  releaseName: web
  values:
    replicas: 2
    image: {tag: v1}
  valuesFiles: [values-prod.yaml]
kustomize:
  dir: overlays/prod
yaml:
  overlays: [prod]
paused: true
rolloutStrategy:
  maxNew: 10
  maxUnavailable: 25%
dependsOn:
  - name: base
targetCustomizations:
  - name: prod
    clusterSelector:
      matchLabels: {env: prod}
    helm:
      values:
        replicas: 5
  - name: skip
    clusterName: legacy
    doNotDeploy: true
unknownKey: ignored
"#;

    #[test]
    fn every_supported_field_parses() {
        let fy = FleetYaml::parse("web/fleet.yaml", FULL).unwrap();
        assert_eq!(fy.options.default_namespace.as_deref(), Some("apps"));
        assert_eq!(fy.options.namespace.as_deref(), Some("forced"));
        assert_eq!(fy.labels["team"], "web");
        let helm = fy.options.helm.as_ref().unwrap();
        assert_eq!(helm.release_name.as_deref(), Some("web"));
        assert_eq!(helm.values.as_ref().unwrap()["replicas"], 2);
        assert_eq!(helm.values.as_ref().unwrap()["image"]["tag"], "v1");
        assert_eq!(
            fy.options.kustomize.as_ref().unwrap().dir.as_deref(),
            Some("overlays/prod")
        );
        assert_eq!(
            fy.options.yaml.as_ref().unwrap().overlays.as_ref().unwrap(),
            &["prod"]
        );
        assert!(fy.paused);
        assert_eq!(fy.rollout_strategy.as_ref().unwrap().max_new, Some(10));
        assert_eq!(
            fy.depends_on.as_ref().unwrap()[0].name.as_deref(),
            Some("base")
        );
        assert_eq!(fy.target_customizations.len(), 2);
        assert_eq!(
            fy.target_customizations[0]
                .options
                .helm
                .as_ref()
                .unwrap()
                .values
                .as_ref()
                .unwrap()["replicas"],
            5
        );
        assert!(fy.target_customizations[1].do_not_deploy);
        assert_eq!(fy.values_files(), ["values-prod.yaml"]);
    }

    #[test]
    fn malformed_files_name_the_file_and_line() {
        let err = FleetYaml::parse("web/fleet.yaml", "defaultNamespace: [unclosed\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("web/fleet.yaml: "), "{text}");
        let typed = FleetYaml::parse("a/fleet.yaml", "labels: 5\n").unwrap_err();
        assert!(typed.to_string().starts_with("a/fleet.yaml: "), "{typed}");
        let dep = FleetYaml::parse("a/fleet.yaml", "dependsOn:\n  - acceptedStates: [Ready]\n")
            .unwrap_err();
        assert_eq!(
            dep.to_string(),
            "a/fleet.yaml: dependsOn[0]: must specify either 'name' or 'selector'"
        );
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let fy = FleetYaml::parse("f", "namespace: n\ndefaultNamespace: on\n").unwrap();
        assert_eq!(fy.options.namespace.as_deref(), Some("n"));
        assert_eq!(fy.options.default_namespace.as_deref(), Some("on"));
    }

    #[test]
    fn empty_files_are_defaults() {
        assert_eq!(FleetYaml::parse("f", "").unwrap(), FleetYaml::default());
        assert_eq!(
            FleetYaml::parse("f", "# only a comment\n").unwrap(),
            FleetYaml::default()
        );
    }
}
