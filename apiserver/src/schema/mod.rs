//! Structural OpenAPI v3 schemas of CustomResourceDefinitions: compile once, then prune,
//! default and validate every write.
//!
//! kube-apiserver does three things to each custom object it stores, all driven by the
//! CRD version's `openAPIV3Schema`: it *prunes* fields the schema does not declare (unless
//! `x-kubernetes-preserve-unknown-fields`), it *defaults* missing fields, and it *validates*
//! the result (types, required, enums, formats, bounds, list-type uniqueness, and the CEL
//! rules of `x-kubernetes-validations`), answering 422 with one cause per problem. A
//! controller's writes only mean what they mean on a real cluster if the same fields
//! survive and the same values are refused, so this module follows
//! `k8s.io/apiextensions-apiserver` (structural schema rules, pruning, defaulting, the
//! kube-openapi validator's messages and field paths).
//!
//! It runs on every write (thousands per second), so a schema is compiled once into a tree
//! of [`StructuralSchema`] nodes with its regular expressions and CEL programs ready, and
//! the walks borrow the object instead of copying it; field paths are only rendered when a
//! problem is found.
//!
//! What [`StructuralSchema::from_openapi_v3`] rejects, as kube-apiserver does for a CRD:
//! a missing `type` (except under `x-kubernetes-int-or-string` or
//! `x-kubernetes-preserve-unknown-fields`), a root that is not an object or is nullable,
//! `additionalProperties` at the root or beside `properties`, an array without `items` or
//! with an array of `items`, `type: null` or an unknown type, `$ref`, `id`,
//! `additionalItems`, `patternProperties`, `definitions`, `dependencies`, `uniqueItems:
//! true`, `x-kubernetes-preserve-unknown-fields: false`, int-or-string combined with
//! preserve-unknown-fields or embedded-resource, embedded resources that are not objects,
//! root `metadata` specifying more than `name`/`generateName`, non-string `apiVersion`/`kind`
//! at a resource root, patterns that are not regular expressions, badly formed
//! `x-kubernetes-list-type`/`-list-map-keys`/`-map-type`, badly formed
//! `x-kubernetes-validations` entries, and inside `allOf`/`anyOf`/`oneOf`/`not`: `type`
//! (but for the int-or-string pattern), `default`, `nullable`, `description`, `title`,
//! `additionalProperties`, `x-kubernetes-*` extensions and nested `metadata`, plus
//! properties they name that the structural part does not specify.
//!
//! Known differences from kube-apiserver:
//! - CEL rules are not type-checked or cost-estimated when the schema compiles (a CRD
//!   whose rules kube-apiserver would refuse is accepted; ill-typed rules fail when they
//!   run, which rejects the object). There is no runtime cost budget.
//! - The CEL library is the `cel` crate's standard library with its strings, lists and
//!   math extensions: rules calling Kubernetes' own CEL functions (`isSorted`, `sum`,
//!   `indexOf` on lists, `url`, `quantity`, `ip`, `cidr`, `format`, regex `find`, ...) are
//!   skipped and listed by [`StructuralSchema::skipped_rules`]. `date-time` and `duration`
//!   strings are strings to CEL, not timestamps and durations, and `byte` strings are not
//!   bytes.
//! - Validation ratcheting on updates skips whole unchanged values, so list-type
//!   uniqueness is not re-checked inside an unchanged list (kube-apiserver re-checks it),
//!   and rules on unchanged values are skipped rather than turned into warnings.
//! - Formats that go-openapi checks through third-party validators (`email`, `uri`,
//!   `hostname`, `isbn`, `creditcard`) follow their documented rules closely but not byte
//!   for byte. After a type error a value's other checks are skipped (kube-openapi also
//!   reports, e.g., enum mismatches of a wrongly typed value).
//! - Unsupported schema keywords outside the checked list are ignored rather than refused,
//!   and `default`s are not checked against their schema when the schema compiles.

mod cel;
mod compile;
mod format;
mod path;
mod prune;
mod validate;

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde_json::Value;

use crate::validation::FieldError;

pub use self::cel::SkippedRule;

/// Why a CRD schema cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// The schema is not a JSON object.
    #[error("openAPIV3Schema must be an object")]
    NotAnObject,
    /// The schema breaks kube-apiserver's rules for CRD schemas (not structural, or a
    /// keyword with a forbidden or malformed value). Each error's `field` is relative to
    /// the `openAPIV3Schema` (e.g. `properties[spec].type`); see
    /// [`SchemaError::field_errors`] to place them under a CRD path.
    #[error("invalid schema: {}", join_errors(.0))]
    Invalid(Vec<FieldError>),
}

fn join_errors(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl SchemaError {
    /// The problems as field errors whose paths start with `prefix` (for a CRD:
    /// `spec.versions[0].schema.openAPIV3Schema`), ready to be the causes of a 422.
    pub fn field_errors(&self, prefix: &str) -> Vec<FieldError> {
        match self {
            SchemaError::NotAnObject => vec![FieldError::type_invalid(
                prefix,
                &Value::Null,
                "must be an object",
            )],
            SchemaError::Invalid(errors) => errors
                .iter()
                .map(|e| FieldError {
                    field: path::join_field(prefix, &e.field),
                    reason: e.reason,
                    message: e.message.clone(),
                })
                .collect(),
        }
    }
}

/// A compiled structural schema of one CRD version: prunes, defaults and validates
/// objects of that version.
#[derive(Debug)]
pub struct StructuralSchema {
    root: Node,
    cel: cel::Programs,
}

impl StructuralSchema {
    /// Compiles an `openAPIV3Schema`, rejecting what kube-apiserver rejects in a CRD
    /// (see the module documentation for the list). CEL rules that cannot be compiled
    /// here are skipped and listed by [`StructuralSchema::skipped_rules`].
    pub fn from_openapi_v3(schema: &Value) -> Result<StructuralSchema, SchemaError> {
        compile::compile(schema)
    }

    /// Removes fields the schema does not declare, in place, as kube-apiserver does on
    /// every write: `apiVersion`, `kind` and `metadata` at the root are left to the caller,
    /// subtrees under `x-kubernetes-preserve-unknown-fields: true` keep unknown fields, and
    /// embedded resources keep `apiVersion`, `kind` and their `metadata`'s ObjectMeta fields.
    pub fn prune(&self, object: &mut Value) {
        prune::prune_root(&self.root, object, None);
    }

    /// Like [`StructuralSchema::prune`], and returns the paths of the fields it removed
    /// (`spec.foo`, `spec.items[0].bar`), sorted, for `fieldValidation=Strict`/`Warn`.
    pub fn prune_reporting(&self, object: &mut Value) -> Vec<String> {
        let mut removed = Vec::new();
        prune::prune_root(&self.root, object, Some(&mut removed));
        removed.sort();
        removed
    }

    /// Applies `default`s, in place, as kube-apiserver does after decoding: first drops
    /// `null`s of fields that are neither nullable nor defaulted, then fills missing (or
    /// non-nullable `null`) fields with their defaults, top-down, so defaults nested in a
    /// defaulted object apply too.
    pub fn apply_defaults(&self, object: &mut Value) {
        prune::drop_non_nullable_nulls(Some(&self.root), object);
        prune::apply_defaults(&self.root, object);
    }

    /// Validates an object being created: the schema (types, required, enum, format,
    /// bounds, lengths, counts), list-type set/map uniqueness, then the CEL rules (which,
    /// as in kube-apiserver, only run when the schema errors are not "blocking": type,
    /// required, enum, too long, too many).
    pub fn validate(&self, object: &Value) -> Vec<FieldError> {
        validate::validate(self, object, None)
    }

    /// Validates an object being updated: as [`StructuralSchema::validate`], with
    /// kube-apiserver's validation ratcheting (a value equal to the value it correlates
    /// with in `old` is not validated again, so an update does not fail on what the
    /// stored object already had), and CEL transition rules (those using `oldSelf`) run
    /// where the new value correlates with one in `old` (object fields, map entries,
    /// list-type=map items).
    pub fn validate_update(&self, object: &Value, old: &Value) -> Vec<FieldError> {
        validate::validate(self, object, Some(old))
    }

    /// The `x-kubernetes-validations` rules that could not be compiled here and are not
    /// enforced (kube-apiserver would have enforced or refused them).
    pub fn skipped_rules(&self) -> &[SkippedRule] {
        self.cel.skipped()
    }

    /// How many CEL rules are compiled and enforced.
    pub fn rule_count(&self) -> usize {
        self.cel.rule_count()
    }
}

/// A node's declared `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemaType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl SchemaType {
    fn parse(s: &str) -> Option<SchemaType> {
        Some(match s {
            "object" => SchemaType::Object,
            "array" => SchemaType::Array,
            "string" => SchemaType::String,
            "integer" => SchemaType::Integer,
            "number" => SchemaType::Number,
            "boolean" => SchemaType::Boolean,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SchemaType::Object => "object",
            SchemaType::Array => "array",
            SchemaType::String => "string",
            SchemaType::Integer => "integer",
            SchemaType::Number => "number",
            SchemaType::Boolean => "boolean",
        }
    }
}

/// What a node says about keys it does not list in `properties`.
#[derive(Debug, Default)]
pub(crate) enum Additional {
    /// No `additionalProperties`: unknown keys are pruned.
    #[default]
    Absent,
    /// `additionalProperties: true`: keys kept, their values pruned as schemaless.
    Any,
    /// `additionalProperties: false`: keys kept by pruning, refused by validation.
    Deny,
    /// `additionalProperties: {schema}`: a map whose values follow the schema.
    Schema(Box<Node>),
}

/// `x-kubernetes-list-type`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    /// `atomic` or unset.
    #[default]
    Atomic,
    /// `set`: items unique.
    Set,
    /// `map` with its `x-kubernetes-list-map-keys`: items unique by those keys.
    Map(Vec<String>),
}

/// One compiled schema node.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) ty: Option<SchemaType>,
    /// The format, when kube-apiserver validates it for this type.
    pub(crate) format: Option<format::Format>,
    /// The format as written, for messages and the type check.
    pub(crate) format_name: String,
    pub(crate) nullable: bool,
    pub(crate) int_or_string: bool,
    pub(crate) preserve_unknown: bool,
    pub(crate) embedded: bool,
    pub(crate) properties: BTreeMap<String, Node>,
    pub(crate) additional: Additional,
    pub(crate) items: Option<Box<Node>>,
    pub(crate) required: Vec<String>,
    pub(crate) default: Option<Value>,
    pub(crate) enum_values: Option<Vec<Value>>,
    pub(crate) pattern: Option<(String, Regex)>,
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) minimum: Option<f64>,
    pub(crate) exclusive_minimum: bool,
    pub(crate) maximum: Option<f64>,
    pub(crate) exclusive_maximum: bool,
    pub(crate) multiple_of: Option<f64>,
    pub(crate) min_items: Option<u64>,
    pub(crate) max_items: Option<u64>,
    pub(crate) min_properties: Option<u64>,
    pub(crate) max_properties: Option<u64>,
    pub(crate) list_type: ListType,
    pub(crate) all_of: Vec<Node>,
    pub(crate) any_of: Vec<Node>,
    pub(crate) one_of: Vec<Node>,
    pub(crate) not: Option<Box<Node>>,
    /// Indexes into [`cel::Programs`] of this node's rules.
    pub(crate) rules: Vec<usize>,
    /// This node or a descendant has CEL rules: the rule walk skips other subtrees.
    pub(crate) has_rules: bool,
    /// This node or a descendant has a default: the defaulting walk skips other subtrees.
    pub(crate) has_defaults: bool,
    /// The schema's root: CEL sees only `apiVersion`, `kind` and `metadata.name`/
    /// `generateName` of the object's meta fields there.
    pub(crate) is_resource_root: bool,
}

impl Node {
    /// The schema a property or map value of this node follows, if any.
    pub(crate) fn child(&self, key: &str) -> Option<&Node> {
        match self.properties.get(key) {
            Some(node) => Some(node),
            None => match &self.additional {
                Additional::Schema(node) => Some(node),
                _ => None,
            },
        }
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
