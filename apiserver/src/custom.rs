//! CustomResourceDefinitions: checking them, serving their resources, and their status.
//!
//! A CRD is accepted when its names and versions are consistent and every version's
//! schema compiles; it is then Established at once (kube-apiserver takes a few
//! milliseconds, clients wait for the condition either way). Its resources share one
//! store across versions; deleting the CRD deletes its objects and stops serving them.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::meta::now_rfc3339;
use crate::registry::{CustomVersion, Kind, Registry, ResourceInfo};
use crate::schema::StructuralSchema;
use crate::status::Cause;
use crate::store::Store;
use crate::validation::FieldError;

/// A CRD version's compiled structural schema.
#[derive(Debug)]
pub struct CompiledSchema {
    schema: StructuralSchema,
}

fn causes(errors: Vec<FieldError>) -> Vec<Cause> {
    errors
        .into_iter()
        .map(|e| Cause::new(e.reason.as_str(), e.field, e.message))
        .collect()
}

impl CompiledSchema {
    /// Compiles an `openAPIV3Schema`; the error lists 422 causes under `prefix`.
    pub fn compile(schema: &Value, prefix: &str) -> Result<Self, Vec<Cause>> {
        StructuralSchema::from_openapi_v3(schema)
            .map(|schema| Self { schema })
            .map_err(|e| causes(e.field_errors(prefix)))
    }

    /// Removes fields the schema does not know; returns their paths.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        self.schema.prune_reporting(object)
    }

    /// Fills in defaults.
    pub fn apply_defaults(&self, object: &mut Value) {
        self.schema.apply_defaults(object);
    }

    /// Checks the object against the schema (and CEL transition rules on updates).
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        causes(match old {
            Some(old) => self.schema.validate_update(object, old),
            None => self.schema.validate(object),
        })
    }
}

/// The parts of a CRD the server acts on.
#[derive(Debug)]
pub struct CrdSpec {
    /// `spec.group`.
    pub group: String,
    /// `spec.names.plural`.
    pub plural: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// Whether the scope is `Namespaced`.
    pub namespaced: bool,
}

fn s<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Checks a CRD; returns its spec or the 422 causes.
pub fn check(crd: &Value) -> Result<CrdSpec, Vec<Cause>> {
    let mut causes = Vec::new();
    let group = s(crd, &["spec", "group"]);
    let plural = s(crd, &["spec", "names", "plural"]);
    let kind = s(crd, &["spec", "names", "kind"]);
    let scope = s(crd, &["spec", "scope"]);
    let name = s(crd, &["metadata", "name"]);
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    } else if !group.contains('.') {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let versions = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array);
    match versions {
        None => causes.push(Cause::new(
            "FieldValueRequired",
            "spec.versions",
            "Required value",
        )),
        Some(versions) if versions.is_empty() => {
            causes.push(Cause::new(
                "FieldValueRequired",
                "spec.versions",
                "Required value",
            ));
        }
        Some(versions) => {
            let storage = versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .count();
            if storage != 1 {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.versions",
                    "must have exactly one version marked as storage version",
                ));
            }
            for (i, version) in versions.iter().enumerate() {
                if version
                    .get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        format!("spec.versions[{i}].name"),
                        "Required value",
                    ));
                }
                if let Some(schema) = version.get("schema").and_then(|s| s.get("openAPIV3Schema"))
                    && let Err(more) = CompiledSchema::compile(
                        schema,
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    )
                {
                    causes.extend(more);
                }
            }
        }
    }
    if causes.is_empty() {
        Ok(CrdSpec {
            group: group.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced: scope == "Namespaced",
        })
    } else {
        Err(causes)
    }
}

/// The status kube-apiserver's CRD controllers would write: names accepted, Established.
pub fn established_status(crd: &Value, previous: Option<&Value>) -> Value {
    let now = now_rfc3339();
    let keep_time = |kind: &str| -> String {
        previous
            .and_then(|p| p.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == kind && c["status"] == "True")
            })
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .map_or_else(|| now.clone(), str::to_string)
    };
    let names = crd
        .get("spec")
        .and_then(|s| s.get("names"))
        .filter(|n| n.is_object())
        .cloned()
        .unwrap_or(json!({}));
    let mut accepted = names;
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(s(crd, &["spec", "names", "kind"]).to_ascii_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{}List", s(crd, &["spec", "names", "kind"])));
    }
    let storage = crd["spec"]["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["storage"] == true))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut stored: Vec<Value> = previous
        .and_then(|p| p.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !stored.iter().any(|v| v == storage.as_str()) {
        stored.push(json!(storage));
    }
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep_time("NamesAccepted")},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep_time("Established")},
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    })
}

/// Serves (or re-serves, after an update) the resources of a CRD.
pub fn register(registry: &Registry, store: &Store, crd: &Value) {
    let Ok(spec) = check(crd) else { return };
    let names = &crd["spec"]["names"];
    let versions = crd["spec"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let shared = registry
        .store_of(&spec.group, &spec.plural)
        .filter(|existing| !existing.is_removed() && existing.namespaced == spec.namespaced)
        .unwrap_or_else(|| store.new_resource(&spec.group, &spec.plural, spec.namespaced));
    // Drop versions no longer served, then (re)insert the served ones.
    for info in registry.all() {
        if info.group == spec.group && info.plural == spec.plural {
            let still = versions
                .iter()
                .any(|v| v["name"] == info.version.as_str() && v["served"] != false);
            if !still {
                registry.remove_version(&info.group, &info.version, &info.plural);
            }
        }
    }
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    for version in versions.iter().filter(|v| v["served"] != false) {
        let schema = version
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .and_then(|schema| CompiledSchema::compile(schema, "").ok());
        registry.insert(ResourceInfo {
            group: spec.group.clone(),
            version: version["name"].as_str().unwrap_or_default().to_string(),
            plural: spec.plural.clone(),
            singular: names["singular"]
                .as_str()
                .map_or_else(|| spec.kind.to_ascii_lowercase(), str::to_string),
            kind: spec.kind.clone(),
            list_kind: names["listKind"]
                .as_str()
                .map_or_else(|| format!("{}List", spec.kind), str::to_string),
            namespaced: spec.namespaced,
            short_names: strings("shortNames"),
            categories: strings("categories"),
            status_subresource: version
                .get("subresources")
                .and_then(|s| s.get("status"))
                .is_some(),
            generation: true,
            special: Kind::Custom,
            custom: Some(Arc::new(CustomVersion {
                schema,
                version: version.clone(),
                storage_version: storage_version.clone(),
            })),
            store: shared.clone(),
            columns: crate::table::PrinterColumns::for_resource(
                &spec.group,
                &spec.plural,
                Some(version),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn accepts_a_consistent_crd() {
        let spec = check(&crd()).unwrap();
        assert_eq!(
            (spec.group.as_str(), spec.plural.as_str(), spec.namespaced),
            ("example.com", "widgets", true)
        );
    }

    #[test]
    fn rejects_a_name_that_does_not_match() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("gadgets.example.com");
        bad["spec"]["versions"][0]["storage"] = json!(false);
        let causes = check(&bad).unwrap_err();
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "spec.versions"]);
    }

    #[test]
    fn status_is_established_with_accepted_names() {
        let status = established_status(&crd(), None);
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["conditions"][1]["status"], "True");
        assert_eq!(status["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(status["storedVersions"], json!(["v1"]));
    }
}
