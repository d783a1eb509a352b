//! Merging deployment options and hashing them into a `deploymentID`.
//!
//! The deploymentID tells the agent whether it has something new to apply: it must change
//! when the manifests or the effective options for a cluster change, and only then. It is
//! `<manifestID>:<sha256 of the options>`, as in Fleet, where the manifest ID is
//! `s-<sha256 of the resources>` cut to 63 characters. Options are hashed from canonical JSON
//! (object keys sorted at every level), so map ordering (helm values read from YAML, or
//! returned by an apiserver that re-encodes them) never changes the ID.

use sha2::{Digest as _, Sha256};

use fleet_api::{BundleDeploymentOptions, BundleResource, HelmOptions};

/// Fleet's `options.Merge`: `custom` (a target customization) overrides `base` field by
/// field; helm values merge deeply; overlays append; booleans OR.
pub fn merge(
    base: &BundleDeploymentOptions,
    custom: &BundleDeploymentOptions,
) -> BundleDeploymentOptions {
    let mut result = base.clone();
    let non_empty = |value: &Option<String>| value.as_ref().filter(|v| !v.is_empty()).cloned();
    if let Some(v) = non_empty(&custom.default_namespace) {
        result.default_namespace = Some(v);
    }
    if let Some(v) = non_empty(&custom.namespace) {
        result.namespace = Some(v);
    }
    if let Some(v) = non_empty(&custom.service_account) {
        result.service_account = Some(v);
    }
    if let Some(custom_helm) = &custom.helm {
        let helm = result.helm.get_or_insert_with(HelmOptions::default);
        merge_helm(helm, custom_helm);
    }
    if let Some(custom_kustomize) = &custom.kustomize {
        let kustomize = result.kustomize.get_or_insert_with(Default::default);
        if let Some(dir) = non_empty(&custom_kustomize.dir) {
            kustomize.dir = Some(dir);
        }
    }
    if let Some(custom_yaml) = &custom.yaml {
        let yaml = result.yaml.get_or_insert_with(Default::default);
        let overlays = yaml.overlays.get_or_insert_with(Vec::new);
        overlays.extend(custom_yaml.overlays.iter().flatten().cloned());
    }
    if custom.force_sync_generation > 0 {
        result.force_sync_generation = custom.force_sync_generation;
    }
    result.keep_resources |= custom.keep_resources;
    if custom.correct_drift.is_some() {
        result.correct_drift = custom.correct_drift.clone();
    }
    result
}

fn merge_helm(helm: &mut HelmOptions, custom: &HelmOptions) {
    if custom.timeout_seconds > 0 {
        helm.timeout_seconds = custom.timeout_seconds;
    } else if custom.timeout_seconds < 0 {
        helm.timeout_seconds = 0;
    }
    match (&mut helm.values, &custom.values) {
        (None, values) => helm.values = values.clone(),
        (Some(base), Some(values)) => merge_maps(base, values),
        (Some(_), None) => {}
    }
    match (&mut helm.template_values, &custom.template_values) {
        (None, values) => helm.template_values = values.clone(),
        (Some(base), Some(values)) => base.extend(values.clone()),
        (Some(_), None) => {}
    }
    let set = |target: &mut Option<String>, value: &Option<String>| {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            *target = Some(v.clone());
        }
    };
    set(&mut helm.repo, &custom.repo);
    set(&mut helm.chart, &custom.chart);
    set(&mut helm.version, &custom.version);
    set(&mut helm.release_name, &custom.release_name);
    helm.force |= custom.force;
    helm.atomic |= custom.atomic;
    helm.take_ownership |= custom.take_ownership;
    helm.disable_pre_process |= custom.disable_pre_process;
    helm.wait_for_jobs |= custom.wait_for_jobs;
    helm.disable_dns |= custom.disable_dns;
}

/// Deep merge of JSON objects: nested objects merge, anything else is replaced.
pub fn merge_maps(
    base: &mut serde_json::Map<String, serde_json::Value>,
    custom: &serde_json::Map<String, serde_json::Value>,
) {
    for (key, value) in custom {
        match (base.get_mut(key), value) {
            (Some(serde_json::Value::Object(b)), serde_json::Value::Object(c)) => {
                merge_maps(b, c);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Serialises `value` as JSON with object keys sorted at every level.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// SHA-256 (hex) of the canonical JSON of `value`.
pub fn canonical_sha256<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    hex::encode(Sha256::digest(canonical_json(&json).as_bytes()))
}

/// SHA-256 (hex) of a bundle's resources, as Fleet computes `resourcesSha256Sum` (the JSON of
/// `{"resources": [...]}`).
pub fn resources_sha256(resources: &[BundleResource]) -> String {
    canonical_sha256(&serde_json::json!({ "resources": resources }))
}

/// The manifest ID of a bundle's resources: `s-<sha256>`, cut to 63 characters.
pub fn manifest_id(resources_sha256: &str) -> String {
    let mut id = format!("s-{resources_sha256}");
    id.truncate(63);
    id
}

/// `<manifestID>:<sha256 of the options>`; diff and drift-correction options do not count,
/// as they change how drift is handled, not what is deployed.
pub fn deployment_id(manifest_id: &str, options: &BundleDeploymentOptions) -> String {
    let mut sanitized = options.clone();
    sanitized.correct_drift = None;
    format!("{manifest_id}:{}", canonical_sha256(&sanitized))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use fleet_api::{CorrectDrift, YamlOptions};

    #[allow(
        clippy::needless_pass_by_value,
        reason = "called with json! temporaries"
    )]
    fn values(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn deployment_ids_are_stable_and_change_only_with_content_or_options() {
        let sha = resources_sha256(&[BundleResource {
            name: Some("cm.yaml".into()),
            content: Some("kind: ConfigMap".into()),
            encoding: None,
        }]);
        let manifest = manifest_id(&sha);
        assert!(manifest.starts_with("s-") && manifest.len() == 63);
        let options = BundleDeploymentOptions {
            default_namespace: Some("apps".into()),
            helm: Some(HelmOptions {
                values: Some(values(serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}}))),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = deployment_id(&manifest, &options);
        assert_eq!(id, deployment_id(&manifest, &options));
        // Same values, different key order: same ID.
        let mut reordered = options.clone();
        let mut map = serde_json::Map::new();
        map.insert("b".into(), serde_json::json!({"d": 3, "c": 2}));
        map.insert("a".into(), serde_json::json!(1));
        reordered.helm.as_mut().unwrap().values = Some(map);
        assert_eq!(id, deployment_id(&manifest, &reordered));
        // Drift correction does not count.
        let mut drift = options.clone();
        drift.correct_drift = Some(CorrectDrift {
            enabled: true,
            ..Default::default()
        });
        assert_eq!(id, deployment_id(&manifest, &drift));
        // Options and content do.
        let mut other_ns = options.clone();
        other_ns.default_namespace = Some("other".into());
        assert_ne!(id, deployment_id(&manifest, &other_ns));
        let other_sha = resources_sha256(&[BundleResource {
            name: Some("cm.yaml".into()),
            content: Some("kind: Secret".into()),
            encoding: None,
        }]);
        let other_manifest = manifest_id(&other_sha);
        assert_ne!(manifest, other_manifest);
        assert_ne!(id, deployment_id(&other_manifest, &options));
        assert!(id.starts_with(&format!("{manifest}:")));
    }

    #[test]
    fn merge_overrides_fields_and_deep_merges_helm_values() {
        let base = BundleDeploymentOptions {
            default_namespace: Some("base".into()),
            namespace: Some("forced".into()),
            helm: Some(HelmOptions {
                values: Some(values(
                    serde_json::json!({"replicas": 1, "image": {"tag": "v1", "repo": "r"}}),
                )),
                release_name: Some("base".into()),
                ..Default::default()
            }),
            yaml: Some(YamlOptions {
                overlays: Some(vec!["a".into()]),
            }),
            ..Default::default()
        };
        let custom = BundleDeploymentOptions {
            default_namespace: Some("custom".into()),
            namespace: Some(String::new()),
            helm: Some(HelmOptions {
                values: Some(values(serde_json::json!({"image": {"tag": "v2"}}))),
                force: true,
                template_values: Some(BTreeMap::from([("k".into(), "v".into())])),
                ..Default::default()
            }),
            yaml: Some(YamlOptions {
                overlays: Some(vec!["b".into()]),
            }),
            keep_resources: true,
            ..Default::default()
        };
        let merged = merge(&base, &custom);
        assert_eq!(merged.default_namespace.as_deref(), Some("custom"));
        assert_eq!(
            merged.namespace.as_deref(),
            Some("forced"),
            "empty does not override"
        );
        let helm = merged.helm.unwrap();
        assert_eq!(
            serde_json::Value::Object(helm.values.unwrap()),
            serde_json::json!({"replicas": 1, "image": {"tag": "v2", "repo": "r"}})
        );
        assert_eq!(helm.release_name.as_deref(), Some("base"));
        assert!(helm.force);
        assert_eq!(helm.template_values.unwrap()["k"], "v");
        assert_eq!(merged.yaml.unwrap().overlays.unwrap(), ["a", "b"]);
        assert!(merged.keep_resources);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": [{"z": 1, "y": "x"}], "a": null});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":null,"b":[{"y":"x","z":1}]}"#
        );
    }
}
