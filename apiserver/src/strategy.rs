//! Which metadata rules apply to which kind: kube-apiserver's per-kind REST strategies,
//! reduced to the part fleetbench needs (the naming rule of each resource, and the
//! metadata checks every write runs).
//!
//! The rules themselves (name formats, label syntax, messages) are [`crate::validation`],
//! a library of checks that knows nothing of resources; this module knows the served
//! resources and decides where those checks apply, so that the write path
//! ([`crate::write`]) asks one question per object.

use serde_json::Value;

use crate::registry::{Kind, ResourceInfo};
use crate::status::Cause;
use crate::validation::{FieldError, NameRule, validate_object_meta};

/// The naming rule of a resource, as kube-apiserver's strategies choose it.
pub fn name_rule(info: &ResourceInfo) -> NameRule {
    match (info.special, info.group.as_str(), info.plural.as_str()) {
        (Kind::Namespace, _, _) | (_, "", "services") => NameRule::Dns1123Label,
        (_, "rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

fn cause(error: FieldError) -> Cause {
    Cause::new(error.reason.as_str(), error.field, error.message)
}

/// Metadata checks for any object (server-owned fields were already set or copied, so
/// the immutability rules of updates hold by construction).
pub fn object_meta(info: &ResourceInfo, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let _ = old;
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    validate_object_meta(&meta, info.namespaced, name_rule(info))
        .into_iter()
        .map(cause)
        .collect()
}
