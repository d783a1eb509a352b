//! Query parameters of API requests, and the filters they select.

use std::time::Duration;

use base64::Engine as _;
use fleet_api::error::chain;
use serde_json::{Value, json};

use crate::meta::ObjMeta;
use crate::registry::ResourceInfo;
use crate::status::ApiError;
use crate::store::StoredObject;
use crate::write::{FieldValidation, Propagation};

/// The parameters kube-apiserver understands (the ones this server acts on).
#[derive(Debug, Default, Clone)]
pub struct Query {
    /// `watch`.
    pub watch: bool,
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force`.
    pub force: bool,
    /// `fieldValidation`.
    pub field_validation: Option<FieldValidation>,
    /// `propagationPolicy` / `orphanDependents`.
    pub propagation: Option<Propagation>,
    /// `includeObject` of Table responses.
    pub include_object: Option<crate::table::IncludeObject>,
}

fn truthy(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

impl Query {
    /// Parses a query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "watch" => q.watch = truthy(&value),
                "labelSelector" => q.label_selector = Some(value).filter(|v| !v.is_empty()),
                "fieldSelector" => q.field_selector = Some(value).filter(|v| !v.is_empty()),
                "limit" => {
                    let n: i64 = value
                        .parse()
                        .map_err(|_| ApiError::bad_request(format!("invalid limit {value:?}")))?;
                    q.limit = usize::try_from(n.max(0)).unwrap_or(0);
                }
                "continue" => q.continue_token = Some(value).filter(|v| !v.is_empty()),
                "resourceVersion" => q.resource_version = Some(value).filter(|v| !v.is_empty()),
                "resourceVersionMatch" => {
                    q.resource_version_match = Some(value).filter(|v| !v.is_empty());
                }
                "allowWatchBookmarks" => q.bookmarks = truthy(&value),
                "sendInitialEvents" => q.send_initial_events = Some(truthy(&value)),
                "timeoutSeconds" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid timeoutSeconds {value:?}"))
                    })?;
                    q.timeout = Some(Duration::from_secs(secs));
                }
                "dryRun" => {
                    // Anything but `All` used to be taken as "no dry run", so a typo wrote
                    // for real; kube-apiserver refuses it.
                    if value != "All" {
                        return Err(invalid_dry_run(&value));
                    }
                    q.dry_run = true;
                }
                "fieldManager" => q.field_manager = Some(value).filter(|v| !v.is_empty()),
                "force" => q.force = truthy(&value),
                "fieldValidation" => {
                    q.field_validation = Some(match value.as_str() {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation parameter unsupported: {other}. Supported values: Strict, Warn, Ignore"
                            )));
                        }
                    });
                }
                "propagationPolicy" => q.propagation = Some(parse_propagation(&value)?),
                "includeObject" => {
                    q.include_object = Some(
                        crate::table::IncludeObject::parse(&value)
                            .map_err(|e| ApiError::bad_request(chain(&e)))?,
                    );
                }
                "orphanDependents" => {
                    q.propagation = Some(if truthy(&value) {
                        Propagation::Orphan
                    } else {
                        Propagation::Background
                    });
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// The answer to a `dryRun` value other than `All`.
pub fn invalid_dry_run(value: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid dryRun value {value:?}: supported values: \"All\""
    ))
}

/// Parses `propagationPolicy`.
pub fn parse_propagation(value: &str) -> Result<Propagation, ApiError> {
    match value {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(ApiError::bad_request(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        ))),
    }
}

/// A `continue` token: the list's revision and the last key served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinueToken {
    /// Revision of the first page.
    pub revision: u64,
    /// Key after which the next page starts.
    pub after: String,
}

impl ContinueToken {
    /// Encodes as kube-apiserver does (base64 of a small JSON document).
    pub fn encode(&self) -> String {
        let doc = json!({"v": "meta.k8s.io/v1", "rv": self.revision, "start": format!("{}\u{0}", self.after)});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
    }

    /// Decodes a token; `400` if it is not one of ours.
    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid())?;
        let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
        let revision = doc.get("rv").and_then(Value::as_u64).ok_or_else(invalid)?;
        let start = doc
            .get("start")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        Ok(Self {
            revision,
            after: start.trim_end_matches('\u{0}').to_string(),
        })
    }
}

/// Label and field selectors of a list or watch, ready to match objects.
pub struct Filters {
    labels: Option<crate::selector::LabelSelector>,
    fields: Option<crate::selector::FieldSelector>,
    /// Whether matching needs more than the parsed index (a field other than name and
    /// namespace).
    needs_object: bool,
    /// A `metadata.name=` requirement, for single-object watches.
    pub name: Option<String>,
    /// Field paths name `events.k8s.io/v1` fields of objects stored as core Events.
    events_v1: bool,
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filters")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Fields every resource can be selected by.
const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra selectable fields of built-in kinds (kube-apiserver's field label conversions).
fn builtin_fields(info: &ResourceInfo) -> &'static [&'static str] {
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "type",
            "reportingController",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    }
}

fn selectable(info: &ResourceInfo, field: &str) -> bool {
    if META_FIELDS.contains(&field) || builtin_fields(info).contains(&field) {
        return true;
    }
    info.custom.as_ref().is_some_and(|c| {
        c.version
            .get("selectableFields")
            .and_then(Value::as_array)
            .is_some_and(|fs| {
                fs.iter().any(|f| {
                    f.get("jsonPath")
                        .and_then(Value::as_str)
                        .map(|p| p.trim_start_matches('.'))
                        == Some(field)
                })
            })
    })
}

impl Filters {
    /// Parses the selectors of a request for a resource; `400` when they do not parse or
    /// name a field the resource cannot be selected by.
    pub fn new(info: &ResourceInfo, query: &Query) -> Result<Self, ApiError> {
        let labels = match &query.label_selector {
            Some(s) => Some(
                crate::selector::LabelSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(chain(&e)))?,
            )
            .filter(|s| !s.is_empty()),
            None => None,
        };
        let mut needs_object = false;
        let mut name = None;
        let fields = match &query.field_selector {
            Some(s) => {
                let parsed = crate::selector::FieldSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(chain(&e)))?;
                for requirement in parsed.requirements() {
                    let (field, value) = (requirement.field(), requirement.value());
                    if !selectable(info, field) {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {field}"
                        )));
                    }
                    if !META_FIELDS.contains(&field) {
                        needs_object = true;
                    }
                    if field == "metadata.name"
                        && requirement.operator() == crate::selector::FieldOperator::Equals
                    {
                        name = Some(value.to_string());
                    }
                }
                Some(parsed)
            }
            None => None,
        };
        Ok(Self {
            labels,
            fields,
            needs_object,
            name,
            events_v1: info.special == crate::registry::Kind::EventsV1,
        })
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Whether an object passes, judged by its index (and its bytes when a selected
    /// field is not in the index).
    pub fn matches(&self, meta: &ObjMeta, bytes: Option<&[u8]>) -> bool {
        if let Some(labels) = &self.labels
            && !labels.matches(&meta.labels)
        {
            return false;
        }
        if let Some(fields) = &self.fields {
            let parsed: Option<Value> = if self.needs_object {
                bytes.and_then(|b| serde_json::from_slice(b).ok())
            } else {
                None
            };
            let lookup = |field: &str| -> Option<String> {
                match field {
                    "metadata.name" => Some(meta.name.to_string()),
                    "metadata.namespace" => Some(meta.namespace.to_string()),
                    other if self.events_v1 => parsed
                        .as_ref()
                        .and_then(|o| {
                            crate::selector::field_value(o, &crate::events::core_field(other))
                        })
                        .map(|v| v.into_owned()),
                    other => parsed
                        .as_ref()
                        .and_then(|o| crate::selector::field_value(o, other))
                        .map(|v| v.into_owned()),
                }
            };
            if !fields.matches(lookup) {
                return false;
            }
        }
        true
    }

    /// [`Filters::matches`] for a stored object.
    pub fn matches_object(&self, object: &StoredObject) -> bool {
        self.matches(&object.meta, Some(&object.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = ContinueToken {
            revision: 42,
            after: "ns/name".into(),
        };
        assert_eq!(ContinueToken::decode(&token.encode()).unwrap(), token);
        assert_eq!(ContinueToken::decode("not-a-token").unwrap_err().code, 400);
    }

    #[test]
    fn parses_kube_parameters() {
        let q = Query::parse(Some("watch=1&labelSelector=a%3Db&limit=5&propagationPolicy=Foreground&fieldValidation=Strict")).unwrap();
        assert!(q.watch);
        assert_eq!(q.label_selector.as_deref(), Some("a=b"));
        assert_eq!(q.limit, 5);
        assert_eq!(q.propagation, Some(Propagation::Foreground));
        assert_eq!(q.field_validation, Some(FieldValidation::Strict));
        assert_eq!(
            Query::parse(Some("fieldValidation=Bogus"))
                .unwrap_err()
                .code,
            400
        );
    }
}
