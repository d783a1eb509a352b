//! The write path: create, update, patch and delete with kube-apiserver's rules.
//!
//! Each operation reads the current object, computes the new one outside any lock, and
//! commits it only if the object is still at the revision it was computed from; patches
//! retry on a lost race (as kube-apiserver's GuaranteedUpdate does), updates that named a
//! resourceVersion get `409 Conflict`. The per-kind rules (server-set metadata, status
//! subresource, generation, finalizers, namespaces, CRDs, custom-resource schemas) are
//! applied here so HTTP handlers and background controllers share them.

use std::sync::Arc;

use bytes::Bytes;
use fleet_api::error::chain;
use serde_json::{Map, Value, json};

use crate::custom;
use crate::managed;
use crate::meta::{
    generated_name_suffix, meta_str, metadata_mut, new_uid, now_rfc3339, object_key,
};
use crate::patch::{self, PatchError, PatchType};
use crate::registry::{Kind, ResourceInfo};
use crate::state::ServerState;
use crate::status::{ApiError, Cause};
use crate::store::{Housekeeping, StoredObject, Write, WriteError};
use crate::strategy;

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (kube-apiserver's default).
    #[default]
    Warn,
    /// Reject the request.
    Strict,
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: compute but do not store.
    pub dry_run: bool,
    /// `fieldManager`, or one derived from the user agent.
    pub manager: String,
    /// `fieldValidation`.
    pub field_validation: FieldValidation,
    /// `force` (server-side apply).
    pub force: bool,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource (status changes are ignored when status is a subresource).
    Main,
    /// The `status` subresource: only status changes count.
    Status,
}

/// The result of a write.
#[derive(Debug)]
pub struct Outcome {
    /// The object as stored (or as it would be, for dry runs).
    pub bytes: Bytes,
    /// Whether the object was created.
    pub created: bool,
    /// `Warning` headers to send.
    pub warnings: Vec<String>,
}

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents are orphaned (their owner reference removed).
    Orphan,
    /// The object goes now; dependents are collected afterwards.
    #[default]
    Background,
    /// Dependents go first, then the object.
    Foreground,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy` (or the legacy `orphanDependents`).
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; its last state.
    Gone(StoredObject),
    /// The object waits for finalizers; its current state.
    Pending(Bytes),
}

const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
/// Finalizer of foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Finalizer of orphaning deletion.
pub const ORPHAN_FINALIZER: &str = "orphan";
const MAX_RETRIES: usize = 32;

/// A `metadata.resourceVersion` must be a string (or null): kube-apiserver cannot decode
/// anything else, and treating it as absent would make a conditional write unconditional.
fn check_resource_version_type(object: &Value) -> Result<(), ApiError> {
    match object
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
    {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "couldn't decode the object: metadata.resourceVersion: expected a string, got {other}"
        ))),
    }
}

/// The metadata an update or patch result must carry to be applied as asked: a
/// `resourceVersion` that is a string (anything else would silently make the write
/// unconditional; kube-apiserver fails to decode it), and the request's namespace.
fn check_update_metadata(
    info: &ResourceInfo,
    namespace: Option<&str>,
    new: &Value,
) -> Result<(), ApiError> {
    let Some(meta) = new.get("metadata").and_then(Value::as_object) else {
        return Ok(());
    };
    check_resource_version_type(new)?;
    if info.namespaced
        && let Some(given) = meta.get("namespace").and_then(Value::as_str)
        && !given.is_empty()
        && given != namespace.unwrap_or_default()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn write_error(info: &ResourceInfo, name: &str, err: &WriteError) -> ApiError {
    match err {
        WriteError::AlreadyExists => ApiError::already_exists(&info.group, &info.plural, name),
        WriteError::NotFound | WriteError::Removed => {
            ApiError::not_found(&info.group, &info.plural, name)
        }
        WriteError::Conflict => {
            ApiError::conflict(&info.group, &info.plural, name, ApiError::MODIFIED)
        }
    }
}

fn object_root(value: &Value, what: &str) -> Result<(), ApiError> {
    if value.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} must be a JSON object"
        )))
    }
}

/// Checks `apiVersion` and `kind` of a request body and fills them in.
fn check_type_meta(info: &ResourceInfo, object: &mut Value) -> Result<(), ApiError> {
    object_root(object, "the request body")?;
    let api_version = info.api_version();
    let root = object.as_object_mut().expect("checked");
    match root.get("kind").and_then(Value::as_str) {
        Some(kind) if kind != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => {}
    }
    match root.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => {}
    }
    root.insert("kind".into(), Value::String(info.kind.clone()));
    root.insert(
        "apiVersion".into(),
        Value::String(storage_api_version(info)),
    );
    Ok(())
}

/// The apiVersion objects of this resource are stored at.
pub fn storage_api_version(info: &ResourceInfo) -> String {
    match &info.custom {
        Some(custom) if custom.storage_version != info.version => {
            format!("{}/{}", info.group, custom.storage_version)
        }
        _ => info.api_version(),
    }
}

/// Whether two objects differ in what `metadata.generation` tracks: everything but
/// metadata (and status, when status is a subresource).
fn spec_changed(info: &ResourceInfo, old: &Value, new: &Value) -> bool {
    let tracked = |k: &str| {
        k != "metadata"
            && k != "apiVersion"
            && k != "kind"
            && !(info.status_subresource && k == "status")
    };
    let empty = Map::new();
    let (a, b) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let differs = |x: &Map<String, Value>, y: &Map<String, Value>| {
        x.iter().any(|(k, v)| tracked(k) && y.get(k) != Some(v))
    };
    differs(a, b) || differs(b, a)
}

/// Compares two objects, ignoring what changes on every write (resourceVersion and
/// managedFields).
fn same_content(a: &Value, b: &Value) -> bool {
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if x.len() != y.len() {
        return false;
    }
    x.iter().all(|(k, v)| {
        let Some(w) = y.get(k) else { return false };
        if k != "metadata" {
            return v == w;
        }
        let (Some(m), Some(n)) = (v.as_object(), w.as_object()) else {
            return v == w;
        };
        let volatile = |key: &str| key == "resourceVersion" || key == "managedFields";
        m.iter().filter(|(key, _)| !volatile(key)).count()
            == n.iter().filter(|(key, _)| !volatile(key)).count()
            && m.iter()
                .filter(|(key, _)| !volatile(key))
                .all(|(key, value)| n.get(key) == Some(value))
    })
}

impl ServerState {
    /// The namespace must exist and not be terminating.
    fn check_namespace(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let namespaces = self
            .registry
            .store_of("", "namespaces")
            .expect("namespaces are built in");
        match namespaces.get(namespace) {
            None => Err(ApiError::not_found("", "namespaces", namespace)),
            Some(ns) if ns.meta.deleting => {
                let mut err = ApiError::forbidden(
                    &info.group,
                    &info.plural,
                    name,
                    &format!(
                        "unable to create new content in namespace {namespace} because it is being terminated"
                    ),
                );
                if let Some(details) = err.details.as_mut() {
                    details["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]);
                }
                Err(err)
            }
            Some(_) => Ok(()),
        }
    }

    /// Schema pruning, defaulting and validation for custom resources, and metadata
    /// validation for all; returns warnings or the 4xx to answer.
    fn admit(
        &self,
        info: &ResourceInfo,
        object: &mut Value,
        old: Option<&Value>,
        opts: &WriteOptions,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        if let Some(custom) = &info.custom
            && let Some(schema) = &custom.schema
        {
            let pruned = schema.prune(object);
            if !pruned.is_empty() {
                match opts.field_validation {
                    FieldValidation::Strict => {
                        let list: Vec<String> = pruned
                            .iter()
                            .map(|p| format!("unknown field \"{p}\""))
                            .collect();
                        return Err(ApiError::bad_request(format!(
                            "strict decoding error: {}",
                            list.join(", ")
                        )));
                    }
                    FieldValidation::Warn => {
                        warnings.extend(pruned.iter().map(|p| format!("unknown field \"{p}\"")));
                    }
                    FieldValidation::Ignore => {}
                }
            }
            schema.apply_defaults(object);
        }
        let name = meta_str(object, "name").unwrap_or_default().to_string();
        let mut causes: Vec<Cause> = strategy::object_meta(info, object, old);
        if let Some(custom) = &info.custom
            && let Some(schema) = &custom.schema
        {
            causes.extend(schema.validate(object, old));
        }
        if info.special == Kind::CustomResourceDefinition
            && let Err(more) = custom::check(object)
        {
            causes.extend(more);
        }
        if causes.is_empty() {
            Ok(warnings)
        } else {
            Err(ApiError::invalid(&info.group, &info.kind, &name, &causes))
        }
    }

    /// `POST` a new object (also the create half of server-side apply and of
    /// create-on-update).
    pub fn create(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        mut object: Value,
        opts: &WriteOptions,
        stamp_managers: bool,
    ) -> Result<Outcome, ApiError> {
        check_type_meta(info, &mut object)?;
        if !object.get("metadata").is_none_or(Value::is_object) {
            return Err(ApiError::bad_request("metadata must be a JSON object"));
        }
        check_resource_version_type(&object)?;
        let meta = metadata_mut(&mut object);
        if info.namespaced {
            let ns = namespace.unwrap_or_default();
            match meta.get("namespace").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        for key in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
        ] {
            meta.remove(key);
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if info.generation {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_string);
        let named = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if info.status_subresource
            && info.special != Kind::Namespace
            && info.special != Kind::CustomResourceDefinition
        {
            object.as_object_mut().expect("checked").remove("status");
        }
        self.prepare_create(info, &mut object);
        let name_for_errors = meta_str(&object, "name")
            .or(generate.as_deref())
            .unwrap_or_default()
            .to_string();
        let mut warnings = self.admit(info, &mut object, None, opts)?;
        if info.namespaced {
            self.check_namespace(info, namespace.unwrap_or_default(), &name_for_errors)?;
        }
        if stamp_managers {
            managed::stamp_update(None, &mut object, &opts.manager, &info.api_version(), None);
        }
        if info.special == Kind::EventsV1 {
            object = crate::events::to_core(object);
        }
        let attempts = if !named && generate.is_some() { 8 } else { 1 };
        for attempt in 0..attempts {
            let mut candidate = if attempt + 1 == attempts {
                std::mem::take(&mut object)
            } else {
                object.clone()
            };
            if !named && let Some(prefix) = &generate {
                metadata_mut(&mut candidate).insert(
                    "name".into(),
                    json!(format!("{prefix}{}", generated_name_suffix())),
                );
            }
            let name = meta_str(&candidate, "name").unwrap_or_default().to_string();
            if opts.dry_run {
                let bytes =
                    Bytes::from(serde_json::to_vec(&candidate).expect("JSON values serialize"));
                return Ok(Outcome {
                    bytes,
                    created: true,
                    warnings,
                });
            }
            match info.store.commit(&self.store, Write::Create(candidate)) {
                Ok(stored) => {
                    self.after_write(info, &stored);
                    return Ok(Outcome {
                        bytes: stored.bytes,
                        created: true,
                        warnings: std::mem::take(&mut warnings),
                    });
                }
                Err(WriteError::AlreadyExists) if attempt + 1 < attempts => continue,
                Err(err) => return Err(write_error(info, &name, &err)),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Kind-specific defaults at creation.
    fn prepare_create(&self, info: &ResourceInfo, object: &mut Value) {
        match info.special {
            Kind::Namespace => {
                let name = meta_str(object, "name").unwrap_or_default().to_string();
                let meta = metadata_mut(object);
                let labels = meta.entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
                object["spec"] = json!({"finalizers": ["kubernetes"]});
                object["status"] = json!({"phase": "Active"});
            }
            Kind::Secret => {
                fold_string_data(object);
                if object.get("type").is_none() {
                    object["type"] = json!("Opaque");
                }
            }
            Kind::CustomResourceDefinition => {
                let status = custom::established_status(object, None);
                object["status"] = status;
            }
            Kind::Plain | Kind::Custom | Kind::EventsV1 => {}
        }
    }

    /// The rules of an update: server-owned fields come from the old object, status and
    /// spec are written through their own endpoints, generation follows the spec.
    fn prepare_update(
        &self,
        info: &ResourceInfo,
        old: &Value,
        new: &mut Value,
        part: Part,
    ) -> Result<(), ApiError> {
        check_type_meta(info, new)?;
        if !new.get("metadata").is_none_or(Value::is_object) {
            return Err(ApiError::bad_request("metadata must be a JSON object"));
        }
        if part == Part::Status {
            let status = new.get("status").cloned();
            let managed = new
                .get("metadata")
                .and_then(|m| m.get("managedFields"))
                .cloned();
            *new = old.clone();
            let root = new
                .as_object_mut()
                .expect("stored objects are JSON objects");
            match status {
                Some(status) => root.insert("status".into(), status),
                None => root.remove("status"),
            };
            if let Some(managed) = managed {
                metadata_mut(new).insert("managedFields".into(), managed);
            }
        } else if info.status_subresource && info.special != Kind::Namespace {
            let root = new.as_object_mut().expect("checked");
            match old.get("status") {
                Some(status) => root.insert("status".into(), status.clone()),
                None => root.remove("status"),
            };
        }
        let old_meta = old
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let new_uid_given = meta_str(new, "uid").map(str::to_string);
        if let Some(given) = new_uid_given
            && !given.is_empty()
            && Some(given.as_str()) != old_meta.get("uid").and_then(Value::as_str)
        {
            let name = old_meta
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ApiError::conflict(
                &info.group,
                &info.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {given}, UID in object meta: {}",
                    old_meta
                        .get("uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ),
            ));
        }
        let meta = metadata_mut(new);
        for key in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(key) {
                Some(v) => meta.insert(key.into(), v.clone()),
                None => meta.remove(key),
            };
        }
        meta.remove("selfLink");
        if old_meta.contains_key("deletionTimestamp") {
            let before: Vec<&Value> = old_meta
                .get("finalizers")
                .and_then(Value::as_array)
                .map(|f| f.iter().collect())
                .unwrap_or_default();
            let added: Vec<String> = meta
                .get("finalizers")
                .and_then(Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter(|x| !before.contains(x))
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if !added.is_empty() {
                let name = old_meta
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                return Err(ApiError::invalid(
                    &info.group,
                    &info.kind,
                    name,
                    &[Cause::new(
                        "FieldValueForbidden",
                        "metadata.finalizers",
                        format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                    )],
                ));
            }
        }
        match info.special {
            Kind::Namespace => {
                // Spec finalizers change only through /finalize; phase is the server's.
                if let Some(status) = old.get("status") {
                    new["status"] = status.clone();
                }
                if let Some(spec) = old.get("spec") {
                    new["spec"] = spec.clone();
                }
                let name = meta_str(new, "name").unwrap_or_default().to_string();
                if let Some(labels) = metadata_mut(new)
                    .entry("labels")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            Kind::Secret => fold_string_data(new),
            Kind::CustomResourceDefinition => {
                let status = custom::established_status(new, old.get("status"));
                let terminating = old
                    .get("status")
                    .and_then(|s| s.get("conditions"))
                    .and_then(Value::as_array)
                    .and_then(|c| c.iter().find(|c| c["type"] == "Terminating").cloned());
                new["status"] = status;
                if let (Some(t), Some(conditions)) =
                    (terminating, new["status"]["conditions"].as_array_mut())
                {
                    conditions.push(t);
                }
            }
            Kind::Plain | Kind::Custom | Kind::EventsV1 => {}
        }
        if info.generation && part == Part::Main && spec_changed(info, old, new) {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                + 1;
            metadata_mut(new).insert("generation".into(), json!(generation));
        }
        Ok(())
    }

    /// Reads, changes and commits an object, retrying lost races when the change was
    /// not conditioned on a resourceVersion.
    #[allow(clippy::too_many_arguments)]
    pub fn update_with(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        stamp_managers: bool,
        mutate: &dyn Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Outcome, ApiError> {
        let key = object_key(namespace.unwrap_or_default(), name);
        for _ in 0..MAX_RETRIES {
            let Some(current) = info.store.get(&key) else {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            let old = match info.special {
                Kind::EventsV1 => crate::events::to_events_v1(current.to_value()),
                _ => current.to_value(),
            };
            let mut new = mutate(&old)?;
            object_root(&new, "the object")?;
            check_update_metadata(info, namespace, &new)?;
            let requested_rv = meta_str(&new, "resourceVersion")
                .filter(|rv| !rv.is_empty())
                .map(str::to_string);
            let conditional = requested_rv.is_some();
            if let Some(rv) = &requested_rv
                && rv.parse::<u64>().ok() != Some(current.meta.rv)
            {
                return Err(ApiError::conflict(
                    &info.group,
                    &info.plural,
                    name,
                    ApiError::MODIFIED,
                ));
            }
            match meta_str(&new, "name") {
                Some(given) if !given.is_empty() && given != name => {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({given}) does not match the name on the URL ({name})"
                    )));
                }
                _ => {}
            }
            self.prepare_update(info, &old, &mut new, part)?;
            let warnings = self.admit(info, &mut new, Some(&old), opts)?;
            if same_content(&old, &new) {
                return Ok(Outcome {
                    bytes: current.bytes,
                    created: false,
                    warnings,
                });
            }
            if stamp_managers {
                let sub = (part == Part::Status).then_some("status");
                managed::stamp_update(
                    Some(&old),
                    &mut new,
                    &opts.manager,
                    &info.api_version(),
                    sub,
                );
            }
            let finished = new.get("metadata").is_some_and(|m| {
                m.get("deletionTimestamp").is_some()
                    && m.get("finalizers")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
            }) && info.special != Kind::Namespace;
            if opts.dry_run {
                let bytes = Bytes::from(serde_json::to_vec(&new).expect("JSON values serialize"));
                return Ok(Outcome {
                    bytes,
                    created: false,
                    warnings,
                });
            }
            if info.special == Kind::EventsV1 {
                new = crate::events::to_core(new);
            }
            let write = if finished {
                Write::Delete {
                    key: key.clone(),
                    expected_rv: current.meta.rv,
                    last_state: Some(new),
                }
            } else {
                Write::Update {
                    expected_rv: current.meta.rv,
                    object: new,
                }
            };
            match info.store.commit(&self.store, write) {
                Ok(stored) => {
                    if !finished {
                        self.after_write(info, &stored);
                    }
                    return Ok(Outcome {
                        bytes: stored.bytes,
                        created: false,
                        warnings,
                    });
                }
                Err(WriteError::Conflict) if !conditional => continue,
                Err(err) => return Err(write_error(info, name, &err)),
            }
        }
        Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            ApiError::MODIFIED,
        ))
    }

    /// `PUT`.
    pub fn update(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        object_root(body, "the request body")?;
        self.update_with(info, namespace, name, part, opts, true, &|_| {
            Ok(body.clone())
        })
    }

    /// `PATCH` in any of the four formats.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        kind: PatchType,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        let patch_error = |e: PatchError| match e {
            PatchError::NotApplicable(_) => ApiError::invalid(
                &info.group,
                &info.kind,
                name,
                &[Cause::new("FieldValueInvalid", "", chain(&e))],
            ),
            PatchError::Malformed(_) | PatchError::InvalidJsonPatch(_) => {
                ApiError::bad_request(chain(&e))
            }
        };
        match kind {
            PatchType::Merge => self.update_with(info, namespace, name, part, opts, true, &|old| {
                let mut new = old.clone();
                patch::merge_patch(&mut new, &body).map_err(patch_error)?;
                Ok(new)
            }),
            PatchType::Json => self.update_with(info, namespace, name, part, opts, true, &|old| {
                let mut new = old.clone();
                patch::json_patch(&mut new, &body).map_err(patch_error)?;
                Ok(new)
            }),
            PatchType::Strategic => {
                if info.custom.is_some() {
                    return Err(ApiError::unsupported_media_type_patch());
                }
                self.update_with(info, namespace, name, part, opts, true, &|old| {
                    let mut new = old.clone();
                    patch::strategic_merge_patch(&mut new, &body).map_err(patch_error)?;
                    Ok(new)
                })
            }
            PatchType::Apply => self.apply(info, namespace, name, part, body, opts),
        }
    }

    fn apply(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, ApiError> {
        object_root(&body, "the applied configuration")?;
        check_resource_version_type(&body)?;
        if opts.manager.is_empty() {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let mut applied = body;
        check_type_meta(info, &mut applied)?;
        match meta_str(&applied, "name") {
            Some(given) if given != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        let sub = (part == Part::Status).then_some("status");
        let api_version = info.api_version();
        let key = object_key(namespace.unwrap_or_default(), name);
        if info.store.get(&key).is_none() {
            if part == Part::Status {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            }
            let mut fresh =
                managed::apply(None, &applied, &opts.manager, &api_version, sub, opts.force)
                    .map_err(|c| self.apply_conflict(info, name, &c))?;
            metadata_mut(&mut fresh).insert("name".into(), json!(name));
            match self.create(info, namespace, fresh, opts, false) {
                Err(e) if e.reason == "AlreadyExists" => {}
                other => return other,
            }
        }
        let applied_for_status = applied.clone();
        self.update_with(info, namespace, name, part, opts, false, &|old| {
            let source = if part == Part::Status {
                // Only the status of the applied configuration counts on /status.
                let mut only = json!({"apiVersion": applied_for_status["apiVersion"], "kind": applied_for_status["kind"]});
                if let Some(status) = applied_for_status.get("status") {
                    only["status"] = status.clone();
                }
                only
            } else {
                applied.clone()
            };
            let mut new = managed::apply(Some(old), &source, &opts.manager, &api_version, sub, opts.force)
                .map_err(|c| self.apply_conflict(info, name, &c))?;
            // Apply never preconditions on the stored revision.
            metadata_mut(&mut new).remove("resourceVersion");
            Ok(new)
        })
    }

    fn apply_conflict(
        &self,
        info: &ResourceInfo,
        name: &str,
        conflict: &managed::ApplyConflict,
    ) -> ApiError {
        let causes: Vec<Value> = conflict
            .conflicts
            .iter()
            .map(|(manager, field)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{manager}\""), "field": field}))
            .collect();
        let summary: Vec<String> = conflict
            .conflicts
            .iter()
            .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
            .collect();
        let mut err = ApiError::conflict(&info.group, &info.plural, name, "");
        err.message = format!(
            "Apply failed with {} conflict{}: {}",
            summary.len(),
            if summary.len() == 1 { "" } else { "s" },
            summary.join("\n")
        );
        if let Some(details) = err.details.as_mut() {
            details["causes"] = Value::Array(causes);
        }
        err
    }

    /// `DELETE` of one object.
    pub fn delete(
        &self,
        info: &Arc<ResourceInfo>,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let key = object_key(namespace.unwrap_or_default(), name);
        if info.special == Kind::Namespace
            && matches!(name, "default" | "kube-system" | "kube-public")
        {
            return Err(ApiError::forbidden(
                &info.group,
                &info.plural,
                name,
                "this namespace may not be deleted",
            ));
        }
        for _ in 0..MAX_RETRIES {
            let Some(current) = info.store.get(&key) else {
                return Err(ApiError::not_found(&info.group, &info.plural, name));
            };
            if let Some(uid) = &opts.uid
                && **uid != *current.meta.uid
            {
                return Err(ApiError::conflict(
                    &info.group,
                    &info.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        current.meta.uid
                    ),
                ));
            }
            if let Some(rv) = &opts.resource_version
                && rv.parse::<u64>().ok() != Some(current.meta.rv)
            {
                return Err(ApiError::conflict(
                    &info.group,
                    &info.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        current.meta.rv
                    ),
                ));
            }
            let extra = match (info.special, opts.propagation) {
                (Kind::CustomResourceDefinition, _) => Some(CRD_CLEANUP_FINALIZER),
                (_, Some(Propagation::Orphan)) => Some(ORPHAN_FINALIZER),
                (_, Some(Propagation::Foreground)) => Some(FOREGROUND_FINALIZER),
                _ => None,
            };
            let has_extra =
                extra.is_some_and(|f| current.meta.finalizers.iter().any(|x| &**x == f));
            let immediate = current.meta.finalizers.is_empty()
                && extra.is_none()
                && info.special != Kind::Namespace;
            if opts.dry_run {
                return Ok(Deleted::Pending(current.bytes));
            }
            if immediate {
                match info.store.commit(
                    &self.store,
                    Write::Delete {
                        key: key.clone(),
                        expected_rv: current.meta.rv,
                        last_state: None,
                    },
                ) {
                    Ok(stored) => return Ok(Deleted::Gone(stored)),
                    Err(WriteError::Conflict) => continue,
                    Err(err) => return Err(write_error(info, name, &err)),
                }
            }
            if current.meta.deleting && (has_extra || extra.is_none()) {
                return Ok(Deleted::Pending(current.bytes));
            }
            let mut object = current.to_value();
            let meta = metadata_mut(&mut object);
            if !current.meta.deleting {
                meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
                    meta.insert("generation".into(), json!(generation + 1));
                }
            }
            if let (Some(f), false) = (extra, has_extra) {
                let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = finalizers.as_array_mut() {
                    list.push(json!(f));
                }
            }
            match info.special {
                Kind::Namespace => object["status"] = json!({"phase": "Terminating"}),
                Kind::CustomResourceDefinition => {
                    if let Some(conditions) = object["status"]["conditions"].as_array_mut() {
                        conditions.retain(|c| c["type"] != "Terminating");
                        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": now_rfc3339()}));
                    }
                }
                _ => {}
            }
            match info.store.commit(
                &self.store,
                Write::Update {
                    expected_rv: current.meta.rv,
                    object,
                },
            ) {
                Ok(stored) => {
                    self.after_write(info, &stored);
                    return Ok(Deleted::Pending(stored.bytes));
                }
                Err(WriteError::Conflict) => continue,
                Err(err) => return Err(write_error(info, name, &err)),
            }
        }
        Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            ApiError::MODIFIED,
        ))
    }

    /// Side effects of a committed write: serving CRDs, and waking the controllers of
    /// server-handled finalizers.
    fn after_write(&self, info: &ResourceInfo, stored: &StoredObject) {
        match info.special {
            Kind::CustomResourceDefinition if !stored.meta.deleting => {
                custom::register(&self.registry, &self.store, &stored.to_value());
            }
            Kind::CustomResourceDefinition => {
                let value = stored.to_value();
                if let Ok(spec) = custom::check(&value) {
                    self.terminating_crds.lock().insert(
                        crate::status::group_resource(&spec.group, &spec.plural),
                        stored.meta.uid.to_string(),
                    );
                }
                self.store.enqueue(Housekeeping::Finalize {
                    uid: stored.meta.uid.clone(),
                });
            }
            Kind::Namespace if stored.meta.deleting => {
                self.terminating_namespaces
                    .lock()
                    .insert(stored.meta.name.to_string(), stored.meta.uid.to_string());
                self.store.enqueue(Housekeeping::Finalize {
                    uid: stored.meta.uid.clone(),
                });
            }
            _ if stored.meta.deleting
                && stored
                    .meta
                    .finalizers
                    .iter()
                    .any(|f| &**f == ORPHAN_FINALIZER || &**f == FOREGROUND_FINALIZER) =>
            {
                self.store.enqueue(Housekeeping::Finalize {
                    uid: stored.meta.uid.clone(),
                });
            }
            _ => {}
        }
    }
}

/// Secrets: `stringData` is write-only and merged into base64 `data`.
fn fold_string_data(object: &mut Value) {
    use base64::Engine as _;
    let Some(root) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = root.remove("stringData") else {
        return;
    };
    let data = root.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            if let Some(text) = v.as_str() {
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
    if !root.contains_key("type") {
        root.insert("type".into(), json!("Opaque"));
    }
}

impl ApiError {
    /// 415 for a strategic merge patch of a custom resource, as kube-apiserver words it.
    pub fn unsupported_media_type_patch() -> Self {
        let mut e = Self::unsupported_media_type("application/strategic-merge-patch+json");
        e.message = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into();
        e
    }
}
