//! `/openapi/v3`: just enough OpenAPI for kubectl.
//!
//! kubectl reads it to learn that the server validates fields itself (the
//! `fieldValidation` parameter on each PATCH operation) and which patch formats each kind
//! accepts. Custom resources also carry their schema, for `kubectl explain`. `/openapi/v2`
//! is served as a minimal protobuf document: older kubectl (1.27) refuses to apply without
//! one, and an empty schema makes it fall back to JSON merge patches and server-side
//! field validation, as for custom resources.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceInfo};

fn reversed_group(group: &str) -> String {
    if group.is_empty() {
        return "io.k8s.api.core".into();
    }
    let mut parts: Vec<&str> = group.split('.').collect();
    parts.reverse();
    parts.join(".")
}

fn schema_name(info: &ResourceInfo) -> String {
    format!(
        "{}.{}.{}",
        reversed_group(&info.group),
        info.version,
        info.kind
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v2` as gnostic's `openapi_v2.Document` protobuf: only `swagger` and
/// `info` are set.
pub fn v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        out.push((number << 3) | 2);
        out.push(u8::try_from(bytes.len()).expect("short fields"));
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, b"v1.33.0");
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}

/// `GET /openapi/v3`: the index of group-version documents.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in registry.group_versions() {
        let Some(doc) = group_version(registry, &group, &version) else {
            continue;
        };
        let mut hasher = DefaultHasher::new();
        doc.to_string().hash(&mut hasher);
        let path = gv_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}),
        );
    }
    json!({"paths": paths})
}

fn parameter(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut infos: Vec<_> = registry
        .all()
        .into_iter()
        .filter(|i| i.group == group && i.version == version)
        .collect();
    if infos.is_empty() {
        return None;
    }
    infos.sort_by(|a, b| a.plural.cmp(&b.plural));
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for info in &infos {
        let gvk = json!({"group": info.group, "version": info.version, "kind": info.kind});
        let name = schema_name(info);
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let mut patch_content = Map::new();
        for content_type in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            patch_content.insert(content_type.into(), json!({"schema": {"type": "object"}}));
        }
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let base = format!("/{}", gv_path(group, version));
        let collection = if info.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", info.plural)
        } else {
            format!("{base}/{}", info.plural)
        };
        let item = format!("{collection}/{{name}}");
        let write_params = json!([
            parameter("dryRun"),
            parameter("fieldManager"),
            parameter("fieldValidation")
        ]);
        let mut patch_params = write_params.clone();
        patch_params
            .as_array_mut()
            .expect("array")
            .push(parameter("force"));
        paths.insert(
            collection,
            json!({
                "get": {"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "post": {"x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk, "parameters": write_params,
                         "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
            }),
        );
        paths.insert(
            item,
            json!({
                "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": {"x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk, "parameters": write_params,
                        "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
                "patch": {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk, "parameters": patch_params,
                          "requestBody": {"content": patch_content}, "responses": ok},
                "delete": {"x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            }),
        );
        let mut schema = info
            .custom
            .as_ref()
            .and_then(|c| c.version.get("schema"))
            .and_then(|s| s.get("openAPIV3Schema"))
            .cloned()
            .unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
