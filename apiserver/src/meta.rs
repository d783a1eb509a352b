//! The small parsed index kept beside each stored object.
//!
//! Objects are stored as their serialized JSON (one allocation, shared by the store, the
//! watch history and every watcher); the few metadata fields that list filtering, watch
//! filtering, garbage collection and deletion need are parsed once per write into an
//! [`ObjMeta`], so reads never parse JSON.

use std::collections::BTreeMap;

use rand::RngExt;
use serde_json::{Map, Value};

/// A reference from a dependent to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// The owner's uid, what garbage collection keys on.
    pub uid: Box<str>,
    /// The owner's kind (for messages).
    pub kind: Box<str>,
    /// The owner's name.
    pub name: Box<str>,
    /// Whether the owner's foreground deletion waits for this dependent.
    pub block_owner_deletion: bool,
}

/// Parsed metadata of a stored object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjMeta {
    /// `metadata.name`.
    pub name: Box<str>,
    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub namespace: Box<str>,
    /// `metadata.uid`.
    pub uid: Box<str>,
    /// `metadata.resourceVersion`.
    pub rv: u64,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerRef>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<Box<str>>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl ObjMeta {
    /// Reads the index fields of an object.
    pub fn from_object(object: &Value) -> Self {
        let meta = object.get("metadata").and_then(Value::as_object);
        let text = |key: &str| -> Box<str> {
            meta.and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into()
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let owners = meta
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .map(|r| OwnerRef {
                        uid: r
                            .get("uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        kind: r
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        name: r
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        block_owner_deletion: r
                            .get("blockOwnerDeletion")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let finalizers = meta
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(Value::as_str).map(Into::into).collect())
            .unwrap_or_default();
        Self {
            name: text("name"),
            namespace: text("namespace"),
            uid: text("uid"),
            rv: text("resourceVersion").parse().unwrap_or(0),
            labels,
            owners,
            finalizers,
            deleting: meta
                .and_then(|m| m.get("deletionTimestamp"))
                .is_some_and(|v| !v.is_null()),
        }
    }

    /// The store key: `namespace/name`, or `name` for cluster-scoped objects.
    pub fn key(&self) -> String {
        object_key(&self.namespace, &self.name)
    }
}

/// The store key of a name in a namespace (`""` for cluster-scoped).
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

/// Now, as Kubernetes writes timestamps (RFC 3339, second precision, UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A fresh object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The random suffix kube-apiserver appends to `generateName` (5 characters from an
/// alphabet without vowels or look-alikes).
pub fn generated_name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `metadata` of an object, created if absent or not an object.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    let root = object
        .as_object_mut()
        .expect("objects are checked to be JSON objects on entry");
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(key)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_index_fields() {
        let object = json!({"metadata": {
            "name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "42",
            "labels": {"x": "y"}, "finalizers": ["f"], "deletionTimestamp": "2024-01-01T00:00:00Z",
            "ownerReferences": [{"uid": "o", "kind": "K", "name": "n", "blockOwnerDeletion": true}]
        }});
        let meta = ObjMeta::from_object(&object);
        assert_eq!(meta.key(), "ns/a");
        assert_eq!(meta.rv, 42);
        assert_eq!(meta.labels.get("x").map(String::as_str), Some("y"));
        assert_eq!(meta.finalizers, vec![Box::from("f")]);
        assert!(meta.deleting);
        assert!(meta.owners[0].block_owner_deletion);
    }

    #[test]
    fn generated_suffixes_use_kubernetes_alphabet() {
        let s = generated_name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
