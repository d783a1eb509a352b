//! Pruning unknown fields and applying defaults, in place, as
//! `apiextensions-apiserver/pkg/apiserver/schema/{pruning,defaulting}` do.

use serde_json::{Map, Value};

use super::{Additional, Node};

/// The fields `metav1.ObjectMeta` has: an embedded resource's `metadata` keeps only these,
/// as kube-apiserver's round trip through the typed ObjectMeta does.
const OBJECT_META_FIELDS: [&str; 16] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "clusterName",
];

fn is_meta_field(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata")
}

/// Where removed fields are reported, with the path of the value being pruned.
struct Report<'r> {
    removed: &'r mut Vec<String>,
    path: String,
}

impl Report<'_> {
    fn record(&mut self, key: &str) {
        if self.path.is_empty() {
            self.removed.push(key.to_owned());
        } else {
            self.removed.push(format!("{}.{key}", self.path));
        }
    }

    /// Appends a key to the path, returning the length to truncate back to.
    fn enter_key(&mut self, key: &str) -> usize {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        len
    }

    fn enter_index(&mut self, i: usize) -> usize {
        let len = self.path.len();
        self.path.push('[');
        self.path.push_str(&i.to_string());
        self.path.push(']');
        len
    }
}

/// Prunes a whole object: the root is treated as an embedded resource, so its
/// `apiVersion`, `kind` and `metadata` are left alone.
pub(super) fn prune_root(root: &Node, object: &mut Value, removed: Option<&mut Vec<String>>) {
    let mut report = removed.map(|removed| Report {
        removed,
        path: String::new(),
    });
    if root.preserve_unknown {
        skip_prune(root, object, &mut report, true);
    } else {
        prune(Some(root), object, &mut report, true);
    }
}

fn additional_schema(node: &Node) -> Option<&Node> {
    match &node.additional {
        Additional::Schema(s) => Some(s),
        _ => None,
    }
}

fn prune(node: Option<&Node>, value: &mut Value, report: &mut Option<Report<'_>>, root: bool) {
    if let Some(n) = node
        && n.preserve_unknown
    {
        skip_prune(n, value, report, root);
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(node) = node else {
                if let Some(r) = report {
                    for key in map.keys() {
                        r.record(key);
                    }
                }
                map.clear();
                return;
            };
            let embedded = root || node.embedded;
            let mut unknown: Vec<String> = Vec::new();
            for (key, child) in map.iter_mut() {
                if embedded && is_meta_field(key) {
                    if !root && key == "metadata" {
                        prune_embedded_metadata(child, report);
                    }
                    continue;
                }
                if let Some(prop) = node.properties.get(key) {
                    descend_key(report, key, |r| prune(Some(prop), child, r, false));
                } else if !matches!(node.additional, Additional::Absent) {
                    let schema = additional_schema(node);
                    descend_key(report, key, |r| prune(schema, child, r, false));
                } else {
                    unknown.push(key.clone());
                }
            }
            for key in unknown {
                if let Some(r) = report {
                    r.record(&key);
                }
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            for (i, item) in items.iter_mut().enumerate() {
                descend_index(report, i, |r| prune(item_node, item, r, false));
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, declared ones are
/// still pruned by their own schemas.
fn skip_prune(node: &Node, value: &mut Value, report: &mut Option<Report<'_>>, root: bool) {
    match value {
        Value::Object(map) => {
            let embedded = root || node.embedded;
            for (key, child) in map.iter_mut() {
                if embedded && is_meta_field(key) {
                    if !root && key == "metadata" {
                        prune_embedded_metadata(child, report);
                    }
                    continue;
                }
                if let Some(prop) = node.properties.get(key) {
                    descend_key(report, key, |r| prune(Some(prop), child, r, false));
                } else if !matches!(node.additional, Additional::Absent) {
                    let schema = additional_schema(node);
                    descend_key(report, key, |r| prune(schema, child, r, false));
                }
            }
        }
        Value::Array(items) => {
            // kube-apiserver keeps skip-pruning into the items of a preserved array.
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                descend_index(report, i, |r| skip_prune(item_node, item, r, false));
            }
        }
        _ => {}
    }
}

fn prune_embedded_metadata(metadata: &mut Value, report: &mut Option<Report<'_>>) {
    let Value::Object(map) = metadata else {
        return;
    };
    let unknown: Vec<String> = map
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in unknown {
        if let Some(r) = report {
            let len = r.enter_key("metadata");
            r.record(&key);
            r.path.truncate(len);
        }
        map.remove(&key);
    }
}

fn descend_key(
    report: &mut Option<Report<'_>>,
    key: &str,
    f: impl FnOnce(&mut Option<Report<'_>>),
) {
    let len = report.as_mut().map(|r| r.enter_key(key));
    f(report);
    if let (Some(r), Some(len)) = (report.as_mut(), len) {
        r.path.truncate(len);
    }
}

fn descend_index(
    report: &mut Option<Report<'_>>,
    i: usize,
    f: impl FnOnce(&mut Option<Report<'_>>),
) {
    let len = report.as_mut().map(|r| r.enter_index(i));
    f(report);
    if let (Some(r), Some(len)) = (report.as_mut(), len) {
        r.path.truncate(len);
    }
}

/// Drops `null` values of fields whose schema is neither nullable nor defaulted
/// (kube-apiserver's `PruneNonNullableNullsWithoutDefaults`).
pub(super) fn drop_non_nullable_nulls(node: Option<&Node>, value: &mut Value) {
    let Some(node) = node else {
        return;
    };
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                let schema = node.child(key);
                if child.is_null()
                    && let Some(s) = schema
                    && !s.nullable
                    && s.default.is_none()
                {
                    return false;
                }
                drop_non_nullable_nulls(schema, child);
                true
            });
        }
        Value::Array(items) => {
            for item in items {
                drop_non_nullable_nulls(node.items.as_deref(), item);
            }
        }
        _ => {}
    }
}

fn is_non_nullable_null(value: &Value, node: &Node) -> bool {
    value.is_null() && !node.nullable
}

/// Fills in defaults top-down (kube-apiserver's `structuraldefaulting.Default`).
pub(super) fn apply_defaults(node: &Node, value: &mut Value) {
    if !node.has_defaults {
        return;
    }
    match value {
        Value::Object(map) => default_object(node, map),
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for item in items {
                if is_non_nullable_null(item, item_node)
                    && let Some(default) = &item_node.default
                {
                    *item = default.clone();
                }
                apply_defaults(item_node, item);
            }
        }
        _ => {}
    }
}

fn default_object(node: &Node, map: &mut Map<String, Value>) {
    for (key, prop) in &node.properties {
        let Some(default) = &prop.default else {
            continue;
        };
        match map.get_mut(key) {
            None => {
                map.insert(key.clone(), default.clone());
            }
            Some(v) if is_non_nullable_null(v, prop) => *v = default.clone(),
            Some(_) => {}
        }
    }
    for (key, child) in map.iter_mut() {
        if let Some(prop) = node.properties.get(key) {
            apply_defaults(prop, child);
        } else if let Additional::Schema(schema) = &node.additional {
            if is_non_nullable_null(child, schema)
                && let Some(default) = &schema.default
            {
                *child = default.clone();
            }
            apply_defaults(schema, child);
        }
    }
}
