//! The PATCH body formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and
//! Kubernetes' strategic merge patch (a subset; see below).
//!
//! Server-side apply lives in [`crate::managed`], since it depends on field ownership.
//!
//! Strategic merge patch is what kubectl sends for built-in kinds. The subset here merges
//! maps, deletes on `null`, honours `$patch: replace|delete`, `$retainKeys`,
//! `$deleteFromPrimitiveList/…` and drops `$setElementOrder/…`, and merges lists by the
//! merge keys of the common built-in fields (containers, env, volumes, ports, conditions,
//! ownerReferences; finalizers as a set). Lists of other fields are replaced, as for
//! fields without a patch strategy.

use serde_json::{Map, Value};

/// The patch formats, by their content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchType {
    /// The format of a content type, if it is a patch format.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (not an object, an unknown `$patch`
    /// directive, a list entry without its merge key); the text says how.
    #[error("{0}")]
    Malformed(String),
    /// A JSON patch is not a list of operations.
    #[error("invalid JSON patch")]
    InvalidJsonPatch(#[source] serde_json::Error),
    /// The patch is well-formed but does not apply to the object (a failed `test`, a
    /// missing path).
    #[error(transparent)]
    NotApplicable(#[from] json_patch::PatchError),
}

/// Applies a JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "merge patch must be a JSON object".into(),
        ));
    }
    json_patch::merge(target, patch);
    Ok(())
}

/// Applies a JSON patch (list of operations). On error `target` is left half patched:
/// callers patch a copy and drop it on error.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(PatchError::InvalidJsonPatch)?;
    // json_patch::patch rolls back a failed patch by applying the inverse operations, and
    // panics when an inverse cannot apply (a `move` from `/a/b` to `/a` inverts to a move
    // into itself). Every caller patches a copy, so no rollback is needed.
    Ok(json_patch::patch_unsafe(target, &ops)?)
}

/// Applies a strategic merge patch (the subset described in the module docs).
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let Some(patch) = patch.as_object() else {
        return Err(PatchError::Malformed(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    merge_map(target.as_object_mut().expect("just checked"), patch)
}

fn merge_map(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<(), PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = patch
                .iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Ok(());
        }
        Some("delete") => {
            target.clear();
            return Ok(());
        }
        Some(other) if other != "merge" => {
            return Err(PatchError::Malformed(format!(
                "unknown patch type {other:?}"
            )));
        }
        _ => {}
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(remove)) =
                (target.get_mut(field), value.as_array())
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if value.is_null() {
            target.remove(key);
            continue;
        }
        match (target.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(p)) => {
                if p.get("$patch").and_then(Value::as_str) == Some("delete") {
                    target.remove(key);
                } else {
                    merge_map(existing, p)?;
                }
            }
            (Some(Value::Array(existing)), Value::Array(p)) => merge_list(key, existing, p)?,
            (_, Value::Object(p)) => {
                let mut fresh = Map::new();
                merge_map(&mut fresh, p)?;
                target.insert(key.clone(), Value::Object(fresh));
            }
            (_, Value::Array(p)) => {
                let cleaned: Vec<Value> = p
                    .iter()
                    .filter(|item| item.get("$patch").and_then(Value::as_str) != Some("delete"))
                    .map(strip_directives)
                    .collect();
                target.insert(key.clone(), Value::Array(cleaned));
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(())
}

fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The merge key of a list field, for the built-in fields kubectl patches.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets"
        | "volumeDevices" => Some("name"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "hostAliases" => Some("ip"),
        "ports" => Some(if sample.and_then(|s| s.get("containerPort")).is_some() {
            "containerPort"
        } else {
            "port"
        }),
        _ => None,
    }
}

fn merge_list(field: &str, target: &mut Vec<Value>, patch: &[Value]) -> Result<(), PatchError> {
    if field == "finalizers" {
        for item in patch {
            if !target.contains(item) {
                target.push(item.clone());
            }
        }
        return Ok(());
    }
    if patch.len() == 1 && patch[0].get("$patch").and_then(Value::as_str) == Some("replace") {
        target.clear();
        return Ok(());
    }
    let Some(key) = merge_key(field, patch.first()) else {
        *target = patch.iter().map(strip_directives).collect();
        return Ok(());
    };
    for item in patch {
        let Some(id) = item.get(key) else {
            return Err(PatchError::Malformed(format!(
                "map in list {field} is missing its merge key {key}"
            )));
        };
        let position = target.iter().position(|t| t.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, item.as_object()) {
            (Some(i), _) if delete => {
                target.remove(i);
            }
            (None, _) if delete => {}
            (Some(i), Some(p)) => {
                if let Some(existing) = target[i].as_object_mut() {
                    merge_map(existing, p)?;
                }
            }
            (None, _) => target.push(strip_directives(item)),
            (Some(i), None) => target[i] = item.clone(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_on_null() {
        let mut doc = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut doc, &json!({"a": {"b": null, "d": 3}})).unwrap();
        assert_eq!(doc, json!({"a": {"c": 2, "d": 3}}));
    }

    #[test]
    fn json_patch_reports_failed_tests() {
        let mut doc = json!({"a": 1});
        let err =
            json_patch(&mut doc, &json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert!(matches!(err, PatchError::NotApplicable(_)));
        assert!(matches!(
            json_patch(&mut doc, &json!({"op": "x"})).unwrap_err(),
            PatchError::InvalidJsonPatch(_)
        ));
    }

    #[test]
    fn a_failing_patch_after_a_move_up_is_refused_not_a_panic() {
        // Found by fuzzing: the library's rollback of the move panicked.
        let mut doc = json!({"metadata": {"name": "x"}, "apiVersion": "v1"});
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "move", "from": "/metadata/name", "path": "/metadata"},
                {"op": "test", "path": "/apiVersion", "value": "v2"}
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::NotApplicable(_)), "{err:?}");
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}]
        }});
        strategic_merge_patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"containers": [{"name": "a", "image": "z"}]}})
        );
    }

    #[test]
    fn strategic_merge_handles_directives() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]}, "data": {"x": "1", "y": "2"}, "keep": {"a": 1, "b": 2}});
        let patch = json!({
            "metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "data": {"$patch": "replace", "z": "3"},
            "keep": {"$retainKeys": ["a"], "a": 5}
        });
        strategic_merge_patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc,
            json!({"metadata": {"finalizers": ["b"]}, "data": {"z": "3"}, "keep": {"a": 5}})
        );
    }

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }
}
