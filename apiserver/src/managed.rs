//! `metadata.managedFields`: who set which field, and server-side apply on top of it.
//!
//! Field sets use the `FieldsV1` shape (`{"f:spec": {"f:repo": {}}}`). Maps are tracked
//! per key; lists and scalars are atomic leaves (kube-apiserver also tracks list items of
//! `x-kubernetes-list-type: map` lists by key; that is a documented difference). That is
//! enough to stamp managers on every write and to give server-side apply its two visible
//! effects: fields a manager stops applying are removed, and changing a field another
//! manager owns is a conflict unless forced.

use serde_json::{Map, Value, json};

use crate::meta::now_rfc3339;

/// Metadata fields the server owns; no manager is recorded for them.
const SERVER_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// The field set of an object: every leaf path it sets.
pub fn field_set(object: &Value) -> Map<String, Value> {
    let mut set = Map::new();
    let Some(root) = object.as_object() else {
        return set;
    };
    for (key, value) in root {
        if key == "apiVersion" || key == "kind" {
            continue;
        }
        if key == "metadata" {
            if let Some(meta) = value.as_object() {
                let mut meta_set = Map::new();
                for (mk, mv) in meta {
                    if !SERVER_META.contains(&mk.as_str()) {
                        meta_set.insert(format!("f:{mk}"), fields_of(mv));
                    }
                }
                if !meta_set.is_empty() {
                    set.insert("f:metadata".into(), Value::Object(meta_set));
                }
            }
            continue;
        }
        set.insert(format!("f:{key}"), fields_of(value));
    }
    set
}

fn fields_of(value: &Value) -> Value {
    match value {
        Value::Object(map) if !map.is_empty() => Value::Object(
            map.iter()
                .map(|(k, v)| (format!("f:{k}"), fields_of(v)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// Leaf paths of a field set, as key lists without the `f:` prefix.
pub fn leaves(set: &Map<String, Value>) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    collect_leaves(set, &mut Vec::new(), &mut out);
    out
}

fn collect_leaves(set: &Map<String, Value>, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (key, child) in set {
        let Some(name) = key.strip_prefix("f:") else {
            continue;
        };
        prefix.push(name.to_string());
        match child.as_object() {
            Some(map) if !map.is_empty() => collect_leaves(map, prefix, out),
            _ => out.push(prefix.clone()),
        }
        prefix.pop();
    }
}

/// Whether a set owns `path` or a field below or above it.
fn overlaps(set: &Map<String, Value>, path: &[String]) -> bool {
    let mut node = set;
    for (i, segment) in path.iter().enumerate() {
        match node.get(&format!("f:{segment}")) {
            None => return false,
            Some(Value::Object(child)) if !child.is_empty() && i + 1 < path.len() => node = child,
            Some(_) => return true,
        }
    }
    true
}

fn remove_path(set: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let key = format!("f:{first}");
    if rest.is_empty() {
        set.remove(&key);
        return;
    }
    if let Some(Value::Object(child)) = set.get_mut(&key) {
        if child.is_empty() {
            set.remove(&key);
            return;
        }
        remove_path(child, rest);
        if child.is_empty() {
            set.remove(&key);
        }
    }
}

fn insert_path(set: &mut Map<String, Value>, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let entry = set.entry(format!("f:{first}")).or_insert_with(|| json!({}));
    if rest.is_empty() {
        *entry = json!({});
        return;
    }
    if let Some(child) = entry.as_object_mut() {
        insert_path(child, rest);
    }
}

fn get_path<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |node, segment| node.get(segment))
}

fn delete_value(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for segment in parents {
        match node.get_mut(segment) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

fn entries(object: &Value) -> Vec<Value> {
    // Entries a client sent that are not objects are dropped, as kube-apiserver resets
    // malformed managedFields.
    object
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter(|e| e.is_object()).cloned().collect())
        .unwrap_or_default()
}

fn entry_set(entry: &Value) -> Map<String, Value> {
    entry
        .get("fieldsV1")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn write_entries(object: &mut Value, list: Vec<Value>) {
    let meta = crate::meta::metadata_mut(object);
    let kept: Vec<Value> = list
        .into_iter()
        .filter(|e| {
            e.get("fieldsV1")
                .and_then(Value::as_object)
                .is_some_and(|s| !s.is_empty())
        })
        .collect();
    if kept.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(kept));
    }
}

fn entry(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: Option<&str>,
    set: &Map<String, Value>,
) -> Value {
    let mut e = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": set,
    });
    if let Some(sub) = subresource {
        e["subresource"] = json!(sub);
    }
    e
}

fn same_entry(e: &Value, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some(operation)
        && e.get("subresource").and_then(Value::as_str) == subresource
}

/// Records a create or update by `manager`: it now owns every field it changed, and no
/// other manager does.
pub fn stamp_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let present: Vec<Vec<String>> = leaves(&field_set(new));
    let changed: Vec<Vec<String>> = match old {
        Some(old) => present
            .iter()
            .filter(|path| get_path(old, path) != get_path(new, path))
            .cloned()
            .collect(),
        None => present.clone(),
    };
    let mut list = if old.is_some() {
        entries(new)
    } else {
        Vec::new()
    };
    if old.is_some() && changed.is_empty() {
        return;
    }
    // Fields that disappeared are owned by nobody any more.
    for e in list.iter_mut() {
        let mut set = entry_set(e);
        for path in leaves(&set) {
            if changed.iter().any(|c| c == &path) || !present.contains(&path) {
                remove_path(&mut set, &path);
            }
        }
        e["fieldsV1"] = Value::Object(set);
    }
    let position = list
        .iter()
        .position(|e| same_entry(e, manager, "Update", subresource));
    let mut mine = position.map(|i| entry_set(&list[i])).unwrap_or_default();
    for path in &changed {
        insert_path(&mut mine, path);
    }
    let updated = entry(manager, "Update", api_version, subresource, &mine);
    match position {
        Some(i) => list[i] = updated,
        None => list.push(updated),
    }
    write_entries(new, list);
}

/// A server-side apply that changes fields other managers own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    /// `(manager, field path)` pairs in conflict.
    pub conflicts: Vec<(String, String)>,
}

/// Server-side apply of `applied` by `manager` onto `current` (None: create).
pub fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
    force: bool,
) -> Result<Value, ApplyConflict> {
    let applied_set = field_set(applied);
    let applied_leaves = leaves(&applied_set);
    let mut list = current.map(entries).unwrap_or_default();
    let mut result = current.cloned().unwrap_or_else(|| json!({}));
    if let Some(current) = current {
        let mut conflicts = Vec::new();
        for e in &list {
            if same_entry(e, manager, "Apply", subresource) {
                continue;
            }
            let set = entry_set(e);
            for path in &applied_leaves {
                if overlaps(&set, path) && get_path(current, path) != get_path(applied, path) {
                    let who = e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    conflicts.push((who, format!(".{}", path.join("."))));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(ApplyConflict { conflicts });
        }
    }
    let position = list
        .iter()
        .position(|e| same_entry(e, manager, "Apply", subresource));
    let previous = position.map(|i| entry_set(&list[i])).unwrap_or_default();
    merge_applied(&mut result, applied);
    // Fields this manager applied before and no longer applies go, unless another
    // manager also owns them.
    for path in leaves(&previous) {
        if applied_leaves.contains(&path) {
            continue;
        }
        let shared = list
            .iter()
            .enumerate()
            .any(|(i, e)| Some(i) != position && overlaps(&entry_set(e), &path));
        if !shared {
            delete_value(&mut result, &path);
        }
    }
    for (i, e) in list.iter_mut().enumerate() {
        if Some(i) == position {
            continue;
        }
        let mut set = entry_set(e);
        for path in &applied_leaves {
            if overlaps(&set, path)
                && (force || current.and_then(|c| get_path(c, path)) != get_path(applied, path))
            {
                remove_path(&mut set, path);
            }
        }
        e["fieldsV1"] = Value::Object(set);
    }
    let mine = entry(manager, "Apply", api_version, subresource, &applied_set);
    match position {
        Some(i) => list[i] = mine,
        None => list.push(mine),
    }
    write_entries(&mut result, list);
    Ok(result)
}

/// Merges an applied configuration: maps merge key by key, everything else replaces.
fn merge_applied(target: &mut Value, applied: &Value) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (key, value) in a {
                if key == "managedFields" {
                    continue;
                }
                match t.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_applied(existing, value);
                    }
                    _ => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (t, a) => *t = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_stamps_changed_fields_for_the_manager() {
        let old = json!({"metadata": {"name": "a"}, "spec": {"x": 1, "y": 2}});
        let mut new = json!({"metadata": {"name": "a", "managedFields": old["metadata"]["managedFields"].clone()}, "spec": {"x": 1, "y": 3}});
        new["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        stamp_update(Some(&old), &mut new, "kubectl", "v1", None);
        let fields = &new["metadata"]["managedFields"][0];
        assert_eq!(fields["manager"], "kubectl");
        assert_eq!(fields["fieldsV1"], json!({"f:spec": {"f:y": {}}}));
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let first = apply(
            None,
            &json!({"spec": {"a": 1, "b": 2}}),
            "m",
            "v1",
            None,
            false,
        )
        .unwrap();
        let second = apply(
            Some(&first),
            &json!({"spec": {"a": 1}}),
            "m",
            "v1",
            None,
            false,
        )
        .unwrap();
        assert_eq!(second["spec"], json!({"a": 1}));
        assert_eq!(second["metadata"]["managedFields"][0]["operation"], "Apply");
    }

    #[test]
    fn apply_conflicts_with_another_manager_unless_forced() {
        let first = apply(None, &json!({"spec": {"a": 1}}), "one", "v1", None, false).unwrap();
        let err = apply(
            Some(&first),
            &json!({"spec": {"a": 2}}),
            "two",
            "v1",
            None,
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.conflicts,
            vec![("one".to_string(), ".spec.a".to_string())]
        );
        let forced = apply(
            Some(&first),
            &json!({"spec": {"a": 2}}),
            "two",
            "v1",
            None,
            true,
        )
        .unwrap();
        assert_eq!(forced["spec"]["a"], 2);
        // Ownership moved: "one" no longer owns spec.a.
        let one = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == "one");
        assert!(one.is_none());
    }

    #[test]
    fn apply_keeps_fields_another_manager_shares() {
        let first = apply(
            None,
            &json!({"spec": {"a": 1, "b": 1}}),
            "one",
            "v1",
            None,
            false,
        )
        .unwrap();
        let both = apply(
            Some(&first),
            &json!({"spec": {"b": 1}}),
            "two",
            "v1",
            None,
            false,
        )
        .unwrap();
        let after = apply(
            Some(&both),
            &json!({"spec": {"a": 1}}),
            "one",
            "v1",
            None,
            false,
        )
        .unwrap();
        assert_eq!(after["spec"], json!({"a": 1, "b": 1}));
    }
}
