//! Object-metadata validation with kube-apiserver's rules and wording.
//!
//! Clients decide what to do from the `Status` a write returns: kubectl prints its message,
//! controllers match on the reason and on each cause's `field`. So the rules here (names,
//! label keys and values, annotation size, finalizers, owner references) and the words of
//! every message follow `k8s.io/apimachinery`'s validation as of Kubernetes 1.33, and each
//! problem is a [`FieldError`] that maps one to one onto a `StatusCause`
//! (`reason`, `message`, `field`).
//!
//! The checks are pure functions over borrowed data; regular expressions compile once per
//! process. The CRD schema validator ([`crate::schema`]) reports its findings with the same
//! [`FieldError`] type, so the server turns every kind of validation failure into a 422 the
//! same way ([`invalid_message`], [`FieldError::to_cause`]).
//!
//! Known differences from kube-apiserver: messages use Kubernetes 1.33's words (newer
//! releases say "bytes" where 1.33 says "characters", and "a valid label key" for "a
//! qualified name"); [`validate_object_meta`] reports metadata fields of the wrong JSON
//! type as `FieldValueTypeInvalid` causes, where kube-apiserver fails decoding with a 400;
//! `managedFields` is not validated.
//!
//! Where these rules apply to which kind (the naming rule of each resource, what an update
//! may change) is decided in [`crate::strategy`]; the CRD schema validator is
//! [`crate::schema`]; Go's printing of the values in messages is [`crate::goformat`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::goformat::{quote_into, render_value_into};

/// The `reason` of a Kubernetes `StatusCause`: what kind of problem one field has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseReason {
    /// The field refers to something that does not exist.
    FieldValueNotFound,
    /// A required field is missing or empty.
    FieldValueRequired,
    /// The value repeats one that must be unique.
    FieldValueDuplicate,
    /// The value breaks a rule (syntax, range, pattern, CEL rule, ...).
    FieldValueInvalid,
    /// The value is not one of an enumerated set.
    FieldValueNotSupported,
    /// The field may not be set at all, or not to this value.
    FieldValueForbidden,
    /// The value is longer than allowed.
    FieldValueTooLong,
    /// The value has more items than allowed.
    FieldValueTooMany,
    /// The value has fewer items than required.
    FieldValueTooFew,
    /// The value is shorter than allowed.
    FieldValueTooShort,
    /// The value has the wrong JSON type.
    FieldValueTypeInvalid,
    /// The server failed while validating.
    InternalError,
}

impl CauseReason {
    /// The reason as kube-apiserver writes it in `StatusCause.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseReason::FieldValueNotFound => "FieldValueNotFound",
            CauseReason::FieldValueRequired => "FieldValueRequired",
            CauseReason::FieldValueDuplicate => "FieldValueDuplicate",
            CauseReason::FieldValueInvalid => "FieldValueInvalid",
            CauseReason::FieldValueNotSupported => "FieldValueNotSupported",
            CauseReason::FieldValueForbidden => "FieldValueForbidden",
            CauseReason::FieldValueTooLong => "FieldValueTooLong",
            CauseReason::FieldValueTooMany => "FieldValueTooMany",
            CauseReason::FieldValueTooFew => "FieldValueTooFew",
            CauseReason::FieldValueTooShort => "FieldValueTooShort",
            CauseReason::FieldValueTypeInvalid => "FieldValueTypeInvalid",
            CauseReason::InternalError => "InternalError",
        }
    }

    /// The human label that starts a cause's message ("Invalid value", "Required value").
    pub fn label(self) -> &'static str {
        match self {
            CauseReason::FieldValueNotFound => "Not found",
            CauseReason::FieldValueRequired => "Required value",
            CauseReason::FieldValueDuplicate => "Duplicate value",
            CauseReason::FieldValueInvalid | CauseReason::FieldValueTypeInvalid => "Invalid value",
            CauseReason::FieldValueNotSupported => "Unsupported value",
            CauseReason::FieldValueForbidden => "Forbidden",
            CauseReason::FieldValueTooLong => "Too long",
            CauseReason::FieldValueTooMany => "Too many",
            CauseReason::FieldValueTooFew => "Too few",
            CauseReason::FieldValueTooShort => "Too short",
            CauseReason::InternalError => "Internal error",
        }
    }

    /// Parses a reason string (as CRD `x-kubernetes-validations[].reason` names them).
    pub fn parse(reason: &str) -> Option<CauseReason> {
        Some(match reason {
            "FieldValueNotFound" => CauseReason::FieldValueNotFound,
            "FieldValueRequired" => CauseReason::FieldValueRequired,
            "FieldValueDuplicate" => CauseReason::FieldValueDuplicate,
            "FieldValueInvalid" => CauseReason::FieldValueInvalid,
            "FieldValueNotSupported" => CauseReason::FieldValueNotSupported,
            "FieldValueForbidden" => CauseReason::FieldValueForbidden,
            "FieldValueTooLong" => CauseReason::FieldValueTooLong,
            "FieldValueTooMany" => CauseReason::FieldValueTooMany,
            "FieldValueTooFew" => CauseReason::FieldValueTooFew,
            "FieldValueTooShort" => CauseReason::FieldValueTooShort,
            "FieldValueTypeInvalid" => CauseReason::FieldValueTypeInvalid,
            "InternalError" => CauseReason::InternalError,
            _ => return None,
        })
    }
}

impl fmt::Display for CauseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation problem of one field: a `StatusCause` of a 422 `Invalid` response.
///
/// `message` is what kube-apiserver puts in `StatusCause.message`: the reason's label, the
/// offending value where kube-apiserver shows it, and the detail, e.g.
/// `Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path as kube-apiserver writes it: `metadata.name`, `spec.paths[0]`,
    /// `metadata.labels`.
    pub field: String,
    /// What kind of problem it is.
    pub reason: CauseReason,
    /// The cause's message (without the field path).
    pub message: String,
}

impl FieldError {
    /// Builds an error whose message shows the bad value: `<label>: <value>: <detail>`.
    pub fn with_value(
        field: impl Into<String>,
        reason: CauseReason,
        value: &Value,
        detail: &str,
    ) -> FieldError {
        let mut message = String::with_capacity(32 + detail.len());
        message.push_str(reason.label());
        message.push_str(": ");
        render_value_into(&mut message, value);
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        FieldError {
            field: field.into(),
            reason,
            message,
        }
    }

    /// Builds an error whose message omits the value: `<label>: <detail>` (kube-apiserver
    /// does so for Required, Forbidden, TooLong and Internal errors).
    pub fn without_value(
        field: impl Into<String>,
        reason: CauseReason,
        detail: &str,
    ) -> FieldError {
        let message = if detail.is_empty() {
            reason.label().to_owned()
        } else {
            format!("{}: {detail}", reason.label())
        };
        FieldError {
            field: field.into(),
            reason,
            message,
        }
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> FieldError {
        FieldError::with_value(field, CauseReason::FieldValueInvalid, value, detail)
    }

    /// `Invalid value: "<value>": <detail>` for a string value, without building a `Value`.
    pub fn invalid_str(field: impl Into<String>, value: &str, detail: &str) -> FieldError {
        let mut message = String::with_capacity(32 + value.len() + detail.len());
        message.push_str(CauseReason::FieldValueInvalid.label());
        message.push_str(": ");
        quote_into(&mut message, value);
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        FieldError {
            field: field.into(),
            reason: CauseReason::FieldValueInvalid,
            message,
        }
    }

    /// `Invalid value: <value>: <detail>` with reason `FieldValueTypeInvalid`.
    pub fn type_invalid(field: impl Into<String>, value: &Value, detail: &str) -> FieldError {
        FieldError::with_value(field, CauseReason::FieldValueTypeInvalid, value, detail)
    }

    /// `Required value` or `Required value: <detail>`.
    pub fn required(field: impl Into<String>, detail: &str) -> FieldError {
        FieldError::without_value(field, CauseReason::FieldValueRequired, detail)
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> FieldError {
        FieldError::without_value(field, CauseReason::FieldValueForbidden, detail)
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError::with_value(field, CauseReason::FieldValueDuplicate, value, "")
    }

    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError::with_value(field, CauseReason::FieldValueNotFound, value, "")
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: &Value,
        supported: &[S],
    ) -> FieldError {
        let mut detail = String::new();
        if !supported.is_empty() {
            detail.push_str("supported values: ");
            for (i, s) in supported.iter().enumerate() {
                if i > 0 {
                    detail.push_str(", ");
                }
                quote_into(&mut detail, s.as_ref());
            }
        }
        FieldError::with_value(field, CauseReason::FieldValueNotSupported, value, &detail)
    }

    /// `Too long: may not be more than <max> bytes` (the value is never shown).
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> FieldError {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        FieldError::without_value(
            field,
            CauseReason::FieldValueTooLong,
            &format!("may not be more than {max_bytes} {unit}"),
        )
    }

    /// `Too many: <actual>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> FieldError {
        let unit = if max == 1 { "item" } else { "items" };
        FieldError::with_value(
            field,
            CauseReason::FieldValueTooMany,
            &Value::from(actual),
            &format!("must have at most {max} {unit}"),
        )
    }

    /// `Internal error: <detail>`.
    pub fn internal(field: impl Into<String>, detail: &str) -> FieldError {
        FieldError::without_value(field, CauseReason::InternalError, detail)
    }

    /// The `StatusCause` JSON object: `{"reason", "message", "field"}`.
    pub fn to_cause(&self) -> Value {
        serde_json::json!({
            "reason": self.reason.as_str(),
            "message": self.message,
            "field": self.field,
        })
    }
}

impl fmt::Display for FieldError {
    /// `field: message`, the form kube-apiserver joins into a Status message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// The message of a 422 `Invalid` Status: `<Kind.group> "<name>" is invalid: <errors>`.
///
/// `qualified_kind` is `Kind` for the core group and `Kind.group` otherwise (kube-apiserver's
/// `GroupKind.String()`). One error is written as is, several as `[a, b]` with duplicates
/// dropped, as Kubernetes' aggregate errors do.
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut out = format!("{qualified_kind} ");
    quote_into(&mut out, name);
    out.push_str(" is invalid");
    let mut seen = std::collections::HashSet::new();
    let messages: Vec<String> = errors
        .iter()
        .map(ToString::to_string)
        .filter(|m| seen.insert(m.clone()))
        .collect();
    match messages.len() {
        0 => {}
        1 => {
            out.push_str(": ");
            out.push_str(&messages[0]);
        }
        _ => {
            out.push_str(": [");
            out.push_str(&messages.join(", "));
            out.push(']');
        }
    }
    out
}

/// Which naming rule a resource's `metadata.name` follows in kube-apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`, at most 253 bytes. Custom
    /// resources, ConfigMaps, Secrets, Leases, Events and most built-ins.
    Dns1123Subdomain,
    /// RFC 1123 label: lowercase alphanumerics and `-`, at most 63 bytes. Namespaces.
    Dns1123Label,
    /// Anything usable as one URL path segment (not `.`/`..`, no `/` or `%`). RBAC objects.
    PathSegment,
}

/// A label key's rule: an optional DNS-subdomain prefix and a `/`, then a name part.
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MAX: usize = 63;
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// Most metadata checks do not need a regex engine: the classes are ASCII and simple.
fn is_qualified_name_part(s: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{QUALIFIED_NAME_FMT}$")).expect("static regex"));
    RE.is_match(s)
}

fn is_label_value_syntax(s: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{LABEL_VALUE_FMT}$")).expect("static regex"));
    RE.is_match(s)
}

fn is_dns1123_label_syntax(s: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{DNS1123_LABEL_FMT}$")).expect("static regex"));
    RE.is_match(s)
}

fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!("^{DNS1123_SUBDOMAIN_FMT}$")).expect("static regex"));
    RE.is_match(s)
}

fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} characters")
}

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut out = String::from(msg);
    if examples.is_empty() {
        out.push_str(&format!(" (regex used for validation is '{fmt}')"));
        return out;
    }
    out.push_str(" (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// The problems of `value` as an RFC 1123 subdomain (empty when valid).
pub fn dns1123_subdomain_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain_syntax(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// The problems of `value` as an RFC 1123 label (empty when valid).
pub fn dns1123_label_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !is_dns1123_label_syntax(value) {
        if is_dns1123_subdomain_syntax(value) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// The problems of `value` as one URL path segment (empty when valid).
pub fn path_segment_problems(value: &str) -> Vec<String> {
    for bad in [".", ".."] {
        if value == bad {
            return vec![format!("may not be '{bad}'")];
        }
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if value.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// The problems of `value` as a qualified name (label key, annotation key, finalizer):
/// `[prefix/]name`, the prefix a DNS subdomain, the name at most 63 characters.
pub fn qualified_name_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut parts = value.split('/');
    let first = parts.next().unwrap_or_default();
    let second = parts.next();
    if parts.next().is_some() {
        errs.push(format!(
            "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
        return errs;
    }
    let name = match second {
        None => first,
        Some(name) => {
            if first.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    dns1123_subdomain_problems(first)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// The problems of `value` as a label value: empty, or at most 63 characters of
/// alphanumerics, `-`, `_` and `.` that start and end alphanumeric.
pub fn label_value_problems(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !is_label_value_syntax(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// kube-apiserver checks a `generateName` prefix as a name whose trailing `-` is allowed,
/// by masking it before the check (with the same two-character replacement it uses).
fn mask_trailing_dash(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() > 1 && name.ends_with('-') {
        // Byte slicing is safe: the last byte is the ASCII '-', and the one before it is
        // only dropped when it is a character boundary.
        let cut = name.len() - 2;
        if name.is_char_boundary(cut) {
            return std::borrow::Cow::Owned(format!("{}a", &name[..cut]));
        }
        return std::borrow::Cow::Owned(format!("{}a", &name[..name.len() - 1]));
    }
    std::borrow::Cow::Borrowed(name)
}

fn name_problems(name: &str, rule: NameRule, prefix: bool) -> Vec<String> {
    match rule {
        NameRule::Dns1123Subdomain => {
            let name = if prefix {
                mask_trailing_dash(name)
            } else {
                name.into()
            };
            dns1123_subdomain_problems(&name)
        }
        NameRule::Dns1123Label => {
            let name = if prefix {
                mask_trailing_dash(name)
            } else {
                name.into()
            };
            dns1123_label_problems(&name)
        }
        NameRule::PathSegment => {
            if prefix {
                // kube-apiserver only checks the characters of a prefix.
                let mut errs = Vec::new();
                for bad in ["/", "%"] {
                    if name.contains(bad) {
                        errs.push(format!("may not contain '{bad}'"));
                    }
                }
                errs
            } else {
                path_segment_problems(name)
            }
        }
    }
}

/// Validates `metadata.name` under `rule`; an empty name is `Required` (by the time the
/// server validates, a `generateName` has already produced a name).
pub fn validate_name(name: &str, rule: NameRule) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    name_problems(name, rule, false)
        .iter()
        .map(|m| FieldError::invalid_str("metadata.name", name, m))
        .collect()
}

/// Validates `metadata.generateName` as a name prefix under `rule` (empty is fine).
pub fn validate_generate_name(prefix: &str, rule: NameRule) -> Vec<FieldError> {
    if prefix.is_empty() {
        return Vec::new();
    }
    name_problems(prefix, rule, true)
        .iter()
        .map(|m| FieldError::invalid_str("metadata.generateName", prefix, m))
        .collect()
}

/// Validates `metadata.namespace` of a namespaced object: required, an RFC 1123 label.
pub fn validate_namespace_name(namespace: &str) -> Vec<FieldError> {
    if namespace.is_empty() {
        return vec![FieldError::required("metadata.namespace", "")];
    }
    dns1123_label_problems(namespace)
        .iter()
        .map(|m| FieldError::invalid_str("metadata.namespace", namespace, m))
        .collect()
}

/// Validates labels: keys are qualified names, values label values. Errors name the map
/// (`field`, e.g. `metadata.labels`), not the key, as kube-apiserver does.
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> Vec<FieldError> {
    validate_label_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())), field)
}

fn validate_label_pairs<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (key, value) in pairs {
        for m in qualified_name_problems(key) {
            errs.push(FieldError::invalid_str(field, key, &m));
        }
        for m in label_value_problems(value) {
            errs.push(FieldError::invalid_str(field, value, &m));
        }
    }
    errs
}

/// The most bytes all annotation keys and values together may take (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates annotations: keys are qualified names (case-insensitively), and keys plus
/// values take at most 256 KiB.
pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    field: &str,
) -> Vec<FieldError> {
    validate_annotation_pairs(
        annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        field,
    )
}

fn validate_annotation_pairs<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    field: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (key, value) in pairs {
        total += key.len() + value.len();
        for m in qualified_name_problems(&key.to_ascii_lowercase()) {
            errs.push(FieldError::invalid_str(field, key, &m));
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// The finalizer the garbage collector honours to orphan dependents.
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// The finalizer the garbage collector honours for foreground deletion.
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

/// Validates finalizers: each a qualified name, and not both `orphan` and
/// `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for m in qualified_name_problems(f) {
            errs.push(FieldError::invalid_str(field, f, &m));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(FieldError::invalid(
            field,
            &Value::from(finalizers.to_vec()),
            &format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// Validates `metadata.ownerReferences` (a JSON array): apiVersion, kind, name and uid
/// set, at most one controller.
pub fn validate_owner_references(refs: &[Value], field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let api_version = get("apiVersion");
        if api_version.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.apiVersion"),
                "must not be empty",
            ));
        } else if !is_valid_group_version(api_version) {
            errs.push(FieldError::invalid_str(
                format!("{path}.apiVersion"),
                api_version,
                "must be <group>/<version> or <version>",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if get(key).is_empty() {
                errs.push(FieldError::required(
                    format!("{path}.{key}"),
                    "must not be empty",
                ));
            }
        }
        if api_version == "v1" && get("kind") == "Event" {
            errs.push(FieldError::invalid(
                path.clone(),
                r,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", get("kind"), get("name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    field,
                    &Value::Array(refs.to_vec()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

fn is_valid_group_version(s: &str) -> bool {
    match s.split_once('/') {
        None => !s.is_empty(),
        Some((group, version)) => {
            !group.is_empty() && !version.is_empty() && !version.contains('/')
        }
    }
}

/// Validates a whole `metadata` object of a create, as kube-apiserver's
/// `ValidateObjectMetaAccessor` does: generateName, name (under `rule`), namespace (required
/// when `namespaced`, forbidden otherwise), non-negative generation, labels, annotations,
/// owner references and finalizers. Fields of the wrong JSON type are `FieldValueTypeInvalid`.
pub fn validate_object_meta(meta: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(obj) = meta.as_object() else {
        errs.push(FieldError::type_invalid(
            "metadata",
            meta,
            "must be an object",
        ));
        return errs;
    };
    let string_field = |errs: &mut Vec<FieldError>, key: &str| -> String {
        match obj.get(key) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                errs.push(FieldError::type_invalid(
                    format!("metadata.{key}"),
                    other,
                    "must be a string",
                ));
                String::new()
            }
        }
    };
    let generate_name = string_field(&mut errs, "generateName");
    let name = string_field(&mut errs, "name");
    let namespace = string_field(&mut errs, "namespace");
    errs.extend(validate_generate_name(&generate_name, rule));
    // A create with only a generateName gets its name after admission (a prefix that
    // passes its check plus five lowercase alphanumerics is a valid name).
    if !name.is_empty() || generate_name.is_empty() {
        errs.extend(validate_name(&name, rule));
    }
    if namespaced {
        errs.extend(validate_namespace_name(&namespace));
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(validate_common_meta(obj));
    errs
}

/// The checks shared by create and update.
fn validate_common_meta(obj: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(generation) = obj.get("generation").and_then(Value::as_i64)
        && generation < 0
    {
        errs.push(FieldError::invalid(
            "metadata.generation",
            &Value::from(generation),
            "must be greater than or equal to 0",
        ));
    }
    for (key, field) in [
        ("labels", "metadata.labels"),
        ("annotations", "metadata.annotations"),
    ] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                let mut pairs = Vec::with_capacity(map.len());
                for (k, v) in map {
                    match v {
                        Value::String(s) => pairs.push((k.as_str(), s.as_str())),
                        other => errs.push(FieldError::type_invalid(
                            format!("{field}.{k}"),
                            other,
                            "must be a string",
                        )),
                    }
                }
                if key == "labels" {
                    errs.extend(validate_label_pairs(pairs.into_iter(), field));
                } else {
                    errs.extend(validate_annotation_pairs(pairs.into_iter(), field));
                }
            }
            Some(other) => errs.push(FieldError::type_invalid(
                field,
                other,
                "must be an object of strings",
            )),
        }
    }
    match obj.get("ownerReferences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(refs)) => {
            errs.extend(validate_owner_references(refs, "metadata.ownerReferences"));
        }
        Some(other) => errs.push(FieldError::type_invalid(
            "metadata.ownerReferences",
            other,
            "must be an array",
        )),
    }
    match obj.get("finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let mut finalizers = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => finalizers.push(s.clone()),
                    other => errs.push(FieldError::type_invalid(
                        format!("metadata.finalizers[{i}]"),
                        other,
                        "must be a string",
                    )),
                }
            }
            errs.extend(validate_finalizers(&finalizers, "metadata.finalizers"));
        }
        Some(other) => errs.push(FieldError::type_invalid(
            "metadata.finalizers",
            other,
            "must be an array",
        )),
    }
    errs
}

/// Validates the `metadata` of an update against the stored object's, as kube-apiserver's
/// `ValidateObjectMetaAccessorUpdate` does: name, namespace, uid, creationTimestamp,
/// deletionTimestamp and deletionGracePeriodSeconds are immutable, resourceVersion must be
/// given, generation may not decrease, no finalizer may be added once deletion started, and
/// labels, annotations, owner references and finalizers follow the create rules.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (Some(new_obj), Some(old_obj)) = (new.as_object(), old.as_object()) else {
        errs.push(FieldError::type_invalid(
            "metadata",
            new,
            "must be an object",
        ));
        return errs;
    };
    let null = Value::Null;
    let get = |o: &'_ serde_json::Map<String, Value>, k: &str| -> Value {
        match o.get(k) {
            // An empty string and an absent field are the same to Go's typed ObjectMeta.
            Some(Value::String(s)) if s.is_empty() => null.clone(),
            Some(v) => v.clone(),
            None => null.clone(),
        }
    };
    if !get(old_obj, "deletionTimestamp").is_null() {
        let old_finalizers = string_list(old_obj.get("finalizers"));
        let mut extra: Vec<String> = string_list(new_obj.get("finalizers"))
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list = extra
                .iter()
                .map(|f| {
                    let mut q = String::new();
                    quote_into(&mut q, f);
                    q
                })
                .collect::<Vec<_>>()
                .join(", ");
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"
                ),
            ));
        }
    }
    let resource_version = get(new_obj, "resourceVersion");
    if resource_version.is_null() {
        errs.push(FieldError::invalid_str(
            "metadata.resourceVersion",
            "",
            "must be specified for an update",
        ));
    }
    let new_generation = new_obj
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let old_generation = old_obj
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if new_generation < old_generation {
        errs.push(FieldError::invalid(
            "metadata.generation",
            &Value::from(new_generation),
            "must not be decremented",
        ));
    }
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let mut new_value = get(new_obj, key);
        if new_value != get(old_obj, key) {
            if new_value.is_null() && matches!(key, "name" | "namespace" | "uid") {
                // Go shows an unset string field as "".
                new_value = Value::String(String::new());
            }
            errs.push(FieldError::invalid(
                format!("metadata.{key}"),
                &new_value,
                "field is immutable",
            ));
        }
    }
    errs.extend(validate_common_meta(new_obj));
    errs
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cause_reasons_use_kubernetes_strings() {
        assert_eq!(
            CauseReason::FieldValueRequired.as_str(),
            "FieldValueRequired"
        );
        assert_eq!(
            CauseReason::FieldValueTypeInvalid.as_str(),
            "FieldValueTypeInvalid"
        );
        assert_eq!(
            CauseReason::FieldValueNotSupported.label(),
            "Unsupported value"
        );
        assert_eq!(
            CauseReason::parse("FieldValueForbidden"),
            Some(CauseReason::FieldValueForbidden)
        );
        assert_eq!(CauseReason::parse("Nope"), None);
    }

    #[test]
    fn error_messages_follow_field_error_body() {
        let e = FieldError::invalid_str("metadata.name", "Foo", "bad");
        assert_eq!(e.message, "Invalid value: \"Foo\": bad");
        assert_eq!(e.to_string(), "metadata.name: Invalid value: \"Foo\": bad");
        let e = FieldError::required("spec.repo", "");
        assert_eq!(e.message, "Required value");
        let e = FieldError::not_supported("spec.mode", &json!("x"), &["a", "b"]);
        assert_eq!(
            e.message,
            "Unsupported value: \"x\": supported values: \"a\", \"b\""
        );
        let e = FieldError::too_long("metadata.annotations", 262144);
        assert_eq!(e.message, "Too long: may not be more than 262144 bytes");
        let e = FieldError::too_many("spec.items", 5, 3);
        assert_eq!(e.message, "Too many: 5: must have at most 3 items");
        let e = FieldError::invalid("spec.n", &json!(5), "too big");
        assert_eq!(e.message, "Invalid value: 5: too big");
        let e = FieldError::duplicate("spec.l[1]", &json!({"name": "a"}));
        assert_eq!(e.message, "Duplicate value: {\"name\":\"a\"}");
        assert_eq!(
            e.to_cause(),
            json!({"reason": "FieldValueDuplicate", "message": e.message, "field": "spec.l[1]"})
        );
    }

    #[test]
    fn invalid_message_aggregates_like_kubernetes() {
        let one = [FieldError::required("spec.repo", "")];
        assert_eq!(
            invalid_message("GitRepo.fleet.cattle.io", "x", &one),
            "GitRepo.fleet.cattle.io \"x\" is invalid: spec.repo: Required value"
        );
        let two = [
            FieldError::required("spec.repo", ""),
            FieldError::required("spec.repo", ""),
            FieldError::required("spec.b", ""),
        ];
        assert_eq!(
            invalid_message("ConfigMap", "x", &two),
            "ConfigMap \"x\" is invalid: [spec.repo: Required value, spec.b: Required value]"
        );
        assert_eq!(
            invalid_message("ConfigMap", "x", &[]),
            "ConfigMap \"x\" is invalid"
        );
    }

    #[test]
    fn subdomain_names() {
        assert!(validate_name("my-app.v1", NameRule::Dns1123Subdomain).is_empty());
        assert!(validate_name("0abc", NameRule::Dns1123Subdomain).is_empty());
        let errs = validate_name("Foo", NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(errs[0].reason, CauseReason::FieldValueInvalid);
        assert_eq!(
            errs[0].message,
            "Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert_eq!(validate_name("a-", NameRule::Dns1123Subdomain).len(), 1);
        assert_eq!(validate_name("a..b", NameRule::Dns1123Subdomain).len(), 1);
        let long = "a".repeat(254);
        let errs = validate_name(&long, NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .ends_with("must be no more than 253 characters")
        );
        assert!(validate_name(&"a".repeat(253), NameRule::Dns1123Subdomain).is_empty());
    }

    #[test]
    fn empty_name_is_required() {
        let errs = validate_name("", NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, CauseReason::FieldValueRequired);
        assert_eq!(
            errs[0].message,
            "Required value: name or generateName is required"
        );
    }

    #[test]
    fn label_names_reject_dots_with_their_own_message() {
        assert!(validate_name("kube-system", NameRule::Dns1123Label).is_empty());
        let errs = validate_name("a.b", NameRule::Dns1123Label);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.ends_with(": must not contain dots"));
        let errs = validate_name("A_b", NameRule::Dns1123Label);
        assert!(errs[0].message.contains("a lowercase RFC 1123 label"));
        assert_eq!(
            validate_name(&"a".repeat(64), NameRule::Dns1123Label).len(),
            1
        );
    }

    #[test]
    fn path_segment_names() {
        assert!(validate_name("system:controller", NameRule::PathSegment).is_empty());
        assert!(validate_name("UPPER ok", NameRule::PathSegment).is_empty());
        let errs = validate_name("..", NameRule::PathSegment);
        assert_eq!(errs[0].message, "Invalid value: \"..\": may not be '..'");
        let errs = validate_name("a/b%c", NameRule::PathSegment);
        assert_eq!(errs.len(), 2);
        assert!(validate_generate_name("..", NameRule::PathSegment).is_empty());
        assert_eq!(validate_generate_name("a/", NameRule::PathSegment).len(), 1);
    }

    #[test]
    fn generate_name_allows_a_trailing_dash() {
        assert!(validate_generate_name("my-app-", NameRule::Dns1123Subdomain).is_empty());
        assert!(validate_generate_name("ns-", NameRule::Dns1123Label).is_empty());
        assert!(validate_generate_name("", NameRule::Dns1123Subdomain).is_empty());
        let errs = validate_generate_name("My-", NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.generateName");
        assert!(errs[0].message.starts_with("Invalid value: \"My-\": "));
        // A lone dash is still invalid.
        assert_eq!(
            validate_generate_name("-", NameRule::Dns1123Subdomain).len(),
            1
        );
    }

    #[test]
    fn namespace_names() {
        assert!(validate_namespace_name("fleet-local").is_empty());
        let errs = validate_namespace_name("");
        assert_eq!(errs[0].reason, CauseReason::FieldValueRequired);
        assert_eq!(errs[0].field, "metadata.namespace");
        let errs = validate_namespace_name("fleet.local");
        assert_eq!(errs[0].reason, CauseReason::FieldValueInvalid);
    }

    #[test]
    fn label_keys_and_values() {
        let ok = labels(&[
            ("app", "web"),
            ("fleet.cattle.io/repo-name", "simple"),
            ("a.b/C_d-e.f", ""),
            ("x", &"v".repeat(63)),
        ]);
        assert!(validate_labels(&ok, "metadata.labels").is_empty());

        let errs = validate_labels(&labels(&[("-bad", "ok")]), "metadata.labels");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.labels");
        assert_eq!(
            errs[0].message,
            // The doubled spaces are kube-apiserver's own.
            "Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );

        let errs = validate_labels(&labels(&[("Bad.Prefix/x", "ok")]), "metadata.labels");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .contains("prefix part a lowercase RFC 1123 subdomain")
        );
        let errs = validate_labels(&labels(&[("/x", "ok")]), "metadata.labels");
        assert!(errs[0].message.ends_with("prefix part must be non-empty"));
        let errs = validate_labels(&labels(&[("a/b/c", "ok")]), "metadata.labels");
        assert!(errs[0].message.contains("a qualified name must consist of"));
        let errs = validate_labels(&labels(&[("a/", "ok")]), "metadata.labels");
        assert!(errs[0].message.contains("name part must be non-empty"));
        let errs = validate_labels(&labels(&[(&"k".repeat(64), "ok")]), "metadata.labels");
        assert!(
            errs[0]
                .message
                .ends_with("name part must be no more than 63 characters")
        );

        let errs = validate_labels(&labels(&[("k", "bad value")]), "metadata.labels");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .starts_with("Invalid value: \"bad value\": a valid label must be an empty string")
        );
        let errs = validate_labels(&labels(&[("k", &"v".repeat(64))]), "metadata.labels");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .ends_with("must be no more than 63 characters")
        );
        let errs = validate_labels(&labels(&[("k", "-v")]), "metadata.labels");
        assert_eq!(errs.len(), 1);
    }

    #[test]
    fn annotations_keys_are_case_insensitive_and_size_is_capped() {
        let ok = labels(&[("Example.COM/Some-Key", "any value at all: {\"json\": true}")]);
        assert!(validate_annotations(&ok, "metadata.annotations").is_empty());
        let errs = validate_annotations(&labels(&[("bad key", "v")]), "metadata.annotations");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .message
                .starts_with("Invalid value: \"bad key\": name part")
        );

        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let errs = validate_annotations(&labels(&[("k", &big)]), "metadata.annotations");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, CauseReason::FieldValueTooLong);
        assert_eq!(
            errs[0].message,
            "Too long: may not be more than 262144 bytes"
        );
        let fits = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1);
        assert!(validate_annotations(&labels(&[("k", &fits)]), "metadata.annotations").is_empty());
    }

    #[test]
    fn finalizers() {
        let ok = vec![
            "fleet.cattle.io/gitrepo-finalizer".to_owned(),
            "orphan".to_owned(),
        ];
        assert!(validate_finalizers(&ok, "metadata.finalizers").is_empty());
        let errs = validate_finalizers(&["bad finalizer".to_owned()], "metadata.finalizers");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.finalizers");
        let both = vec!["orphan".to_owned(), "foregroundDeletion".to_owned()];
        let errs = validate_finalizers(&both, "metadata.finalizers");
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            "Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"
        );
    }

    #[test]
    fn owner_references() {
        let good = json!([{"apiVersion": "fleet.cattle.io/v1alpha1", "kind": "GitRepo", "name": "a", "uid": "1", "controller": true}]);
        assert!(
            validate_owner_references(good.as_array().unwrap(), "metadata.ownerReferences")
                .is_empty()
        );
        let bad = json!([
            {"apiVersion": "a/b/c", "kind": "", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "b", "uid": "2", "controller": true},
        ]);
        let errs = validate_owner_references(bad.as_array().unwrap(), "metadata.ownerReferences");
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.ownerReferences[0].apiVersion",
                "metadata.ownerReferences[0].kind",
                "metadata.ownerReferences"
            ]
        );
        assert!(errs[2].message.contains("Only one reference can have Controller set to true. Found \"true\" in references for /a and ConfigMap/b"));
        let event = json!([{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1"}]);
        assert_eq!(
            validate_owner_references(event.as_array().unwrap(), "m").len(),
            1
        );
    }

    #[test]
    fn object_meta_on_create() {
        let meta = json!({"name": "a", "namespace": "default", "labels": {"a": "b"}, "finalizers": ["x.io/y"]});
        assert!(validate_object_meta(&meta, true, NameRule::Dns1123Subdomain).is_empty());
        let errs = validate_object_meta(&meta, false, NameRule::Dns1123Subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.namespace");
        assert_eq!(errs[0].message, "Forbidden: not allowed on this type");

        let meta = json!({"generateName": "Bad-", "labels": {"k": 1}, "annotations": "x", "generation": -1});
        let errs = validate_object_meta(&meta, true, NameRule::Dns1123Subdomain);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.generateName",
                "metadata.namespace",
                "metadata.generation",
                "metadata.labels.k",
                "metadata.annotations"
            ],
            "a generateName stands in for the name: its prefix is what is wrong"
        );
        assert_eq!(errs[3].reason, CauseReason::FieldValueTypeInvalid);
        let nameless = validate_object_meta(
            &json!({"namespace": "default"}),
            true,
            NameRule::Dns1123Subdomain,
        );
        assert_eq!(nameless.len(), 1);
        assert_eq!(nameless[0].field, "metadata.name");
        assert_eq!(
            validate_object_meta(&json!("x"), true, NameRule::Dns1123Subdomain)[0].reason,
            CauseReason::FieldValueTypeInvalid
        );
    }

    #[test]
    fn object_meta_on_update() {
        let old = json!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 3,
                         "creationTimestamp": "2024-01-01T00:00:00Z"});
        let mut new = old.clone();
        assert!(validate_object_meta_update(&new, &old).is_empty());

        new["name"] = json!("b");
        new["uid"] = json!("u2");
        new["generation"] = json!(2);
        new["resourceVersion"] = json!("");
        let errs = validate_object_meta_update(&new, &old);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.resourceVersion",
                "metadata.generation",
                "metadata.name",
                "metadata.uid"
            ]
        );
        assert_eq!(errs[2].message, "Invalid value: \"b\": field is immutable");

        let mut deleting = old;
        deleting["deletionTimestamp"] = json!("2024-01-02T00:00:00Z");
        deleting["finalizers"] = json!(["a.io/x"]);
        let mut new = deleting.clone();
        assert!(validate_object_meta_update(&new, &deleting).is_empty());
        new["finalizers"] = json!(["a.io/x", "b.io/y"]);
        let errs = validate_object_meta_update(&new, &deleting);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, CauseReason::FieldValueForbidden);
        assert!(
            errs[0]
                .message
                .contains("found new finalizers []string{\"b.io/y\"}")
        );
        // Removing finalizers while deleting is what lets deletion finish: allowed.
        new["finalizers"] = json!([]);
        assert!(validate_object_meta_update(&new, &deleting).is_empty());
    }
}
