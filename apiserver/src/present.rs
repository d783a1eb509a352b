//! How stored objects are served: as stored, at another version of their CRD, as
//! `PartialObjectMetadata`, or as a `Table` of printer columns, depending on the URL's
//! version and the `Accept` header.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use crate::registry::{Kind, ResourceInfo};
use crate::store::StoredObject;
use crate::table::{IncludeObject, TableListMeta, TableOptions};

/// The representation a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The objects themselves.
    Json,
    /// `meta.k8s.io/v1` `PartialObjectMetadata(List)`.
    Metadata,
    /// `meta.k8s.io/v1` `Table`, with rows carrying the object as asked.
    Table(IncludeObject),
}

impl Format {
    /// Reads the `Accept` header the way kube-apiserver negotiates it.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Json;
        };
        for candidate in accept.split(',') {
            let params: Vec<&str> = candidate.split(';').map(str::trim).collect();
            let param = |name: &str| {
                params
                    .iter()
                    .find_map(|p| p.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            };
            if param("g") == Some("meta.k8s.io") && param("v") == Some("v1") {
                match param("as") {
                    Some("Table") => return Format::Table(IncludeObject::default()),
                    Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                        return Format::Metadata;
                    }
                    _ => {}
                }
            }
            if params.first().is_some_and(|m| {
                *m == "application/json" || *m == "*/*" || m.starts_with("application/*")
            }) && param("as").is_none()
            {
                return Format::Json;
            }
        }
        Format::Json
    }
}

/// Whether stored objects must be rewritten to be served at this version.
pub fn needs_conversion(info: &ResourceInfo) -> bool {
    info.special == Kind::EventsV1
        || info
            .custom
            .as_ref()
            .is_some_and(|c| c.storage_version != info.version)
}

/// The object as served at `info`'s version (CRD conversion strategy `None`: only
/// `apiVersion` changes).
pub fn object_bytes(info: &ResourceInfo, object: &StoredObject) -> Bytes {
    if !needs_conversion(info) {
        return object.bytes.clone();
    }
    let mut value = object.to_value();
    if info.special == Kind::EventsV1 {
        value = crate::events::to_events_v1(value);
    }
    value["apiVersion"] = json!(info.api_version());
    Bytes::from(serde_json::to_vec(&value).expect("JSON values serialize"))
}

/// `PartialObjectMetadata` of an object.
pub fn metadata_only(object: &StoredObject) -> Value {
    let value = object.to_value();
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// The object in the requested format, as bytes.
pub fn one(info: &ResourceInfo, format: Format, object: &StoredObject) -> Bytes {
    match format {
        Format::Json => object_bytes(info, object),
        Format::Metadata => {
            Bytes::from(serde_json::to_vec(&metadata_only(object)).expect("JSON values serialize"))
        }
        Format::Table(include) => match table(info, std::slice::from_ref(object), None, include) {
            Some(table) => Bytes::from(serde_json::to_vec(&table).expect("JSON values serialize")),
            None => object_bytes(info, object),
        },
    }
}

/// A list response, assembled from the stored bytes without re-serializing them.
pub fn list(
    info: &ResourceInfo,
    format: Format,
    items: &[StoredObject],
    revision: u64,
    continue_token: Option<String>,
) -> Bytes {
    let mut list_meta = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        list_meta["continue"] = json!(token);
    }
    if let Format::Table(include) = format
        && let Some(table) = table(info, items, Some(&list_meta), include)
    {
        return Bytes::from(serde_json::to_vec(&table).expect("JSON values serialize"));
    }
    let (api_version, kind) = match format {
        Format::Metadata => (
            "meta.k8s.io/v1".to_string(),
            "PartialObjectMetadataList".to_string(),
        ),
        _ => (info.api_version(), info.list_kind.clone()),
    };
    let total: usize = items.iter().map(|o| o.bytes.len() + 1).sum();
    let mut out = BytesMut::with_capacity(total + 256);
    out.put_slice(b"{\"apiVersion\":");
    out.put_slice(&serde_json::to_vec(&api_version).expect("strings serialize"));
    out.put_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        match format {
            Format::Metadata => out.put_slice(
                &serde_json::to_vec(&metadata_only(item)).expect("JSON values serialize"),
            ),
            _ => out.put_slice(&object_bytes(info, item)),
        }
    }
    out.put_slice(b"],\"kind\":");
    out.put_slice(&serde_json::to_vec(&kind).expect("strings serialize"));
    out.put_slice(b",\"metadata\":");
    out.put_slice(&serde_json::to_vec(&list_meta).expect("JSON values serialize"));
    out.put_u8(b'}');
    out.freeze()
}

/// Appends one watch event line: `{"type":"ADDED","object":{...}}\n`.
pub fn watch_line(out: &mut BytesMut, event_type: &str, object: &[u8]) {
    out.reserve(object.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
}

/// The `Table` of some objects.
fn table(
    info: &ResourceInfo,
    objects: &[StoredObject],
    list_meta: Option<&Value>,
    include_object: IncludeObject,
) -> Option<Value> {
    let values: Vec<Value> = objects
        .iter()
        .map(|o| serde_json::from_slice(&object_bytes(info, o)).unwrap_or(Value::Null))
        .collect();
    let list = TableListMeta {
        resource_version: list_meta
            .as_ref()
            .and_then(|m| m["resourceVersion"].as_str())
            .map(str::to_string),
        continue_token: list_meta
            .as_ref()
            .and_then(|m| m["continue"].as_str())
            .map(str::to_string),
        remaining_item_count: None,
    };
    let options = TableOptions {
        include_object,
        ..TableOptions::default()
    };
    Some(info.columns.to_table(&values, &list, &options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_select_formats() {
        assert_eq!(
            Format::from_accept(Some(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            )),
            Format::Table(IncludeObject::Metadata)
        );
        assert_eq!(
            Format::from_accept(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            Format::Metadata
        );
        assert_eq!(Format::from_accept(Some("application/json")), Format::Json);
        assert_eq!(Format::from_accept(None), Format::Json);
    }

    #[test]
    fn watch_lines_are_newline_delimited_json() {
        let mut out = BytesMut::new();
        watch_line(&mut out, "ADDED", br#"{"a":1}"#);
        let line: Value = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(line, json!({"type": "ADDED", "object": {"a": 1}}));
        assert_eq!(out.last(), Some(&b'\n'));
    }
}
