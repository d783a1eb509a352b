//! Tests of the schema module: compile checks, pruning, defaulting and validation on small
//! schemas, and on Fleet's real CRDs (`tests/fixtures/fleet-crds.yaml`).

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::*;
use crate::validation::CauseReason;

fn compile(schema: &Value) -> StructuralSchema {
    StructuralSchema::from_openapi_v3(schema)
        .unwrap_or_else(|e| panic!("schema should compile: {e}"))
}

fn compile_errors(schema: &Value) -> Vec<String> {
    match StructuralSchema::from_openapi_v3(schema) {
        Ok(_) => panic!("schema should be rejected"),
        Err(SchemaError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        Err(other) => vec![other.to_string()],
    }
}

/// A root schema with `spec` holding `props`.
fn with_spec(props: &Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": props}
        }
    })
}

fn errors(schema: &StructuralSchema, object: &Value) -> Vec<String> {
    schema
        .validate(object)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn spec(value: &Value) -> Value {
    json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": value})
}

// ---- compiling: what kube-apiserver refuses -------------------------------------------

#[test]
fn a_typical_schema_compiles() {
    let s = compile(&with_spec(&json!({
        "replicas": {"type": "integer", "format": "int32", "minimum": 0},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "items": {"type": "array", "items": {"type": "string"}},
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "anything": {"x-kubernetes-preserve-unknown-fields": true}
    })));
    assert_eq!(s.rule_count(), 0);
    assert!(s.skipped_rules().is_empty());
}

#[test]
fn missing_types_are_not_structural() {
    let errs = compile_errors(&with_spec(&json!({"a": {"description": "no type"}})));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].type: Required value: must not be empty for specified object fields"
        ]
    );
    let errs = compile_errors(&with_spec(&json!({"a": {"type": "array", "items": {}}})));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].items.type: Required value: must not be empty for specified array items"
        ]
    );
    let errs = compile_errors(&json!({"properties": {}}));
    assert_eq!(
        errs,
        ["type: Required value: must not be empty at the root"]
    );
}

#[test]
fn root_rules() {
    let errs = compile_errors(&json!({"type": "string"}));
    assert_eq!(
        errs,
        ["type: Invalid value: \"string\": must be object at the root"]
    );
    let errs =
        compile_errors(&json!({"type": "object", "additionalProperties": {"type": "string"}}));
    assert_eq!(
        errs,
        ["additionalProperties: Forbidden: must not be used at the root"]
    );
    let errs = compile_errors(&json!({"type": "object", "nullable": true}));
    assert_eq!(
        errs,
        ["nullable: Forbidden: nullable cannot be true at the root"]
    );
    assert_eq!(
        StructuralSchema::from_openapi_v3(&json!("x")).unwrap_err(),
        SchemaError::NotAnObject
    );
}

#[test]
fn root_metadata_may_only_name_name_and_generate_name() {
    compile(
        &json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}}}),
    );
    let errs = compile_errors(
        &json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
    );
    assert_eq!(
        errs,
        [
            "properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
        ]
    );
    let errs = compile_errors(
        &json!({"type": "object", "properties": {"metadata": {"type": "string"}, "kind": {"type": "integer"}}}),
    );
    assert_eq!(
        errs,
        [
            "properties[kind].type: Invalid value: \"integer\": must be string",
            "properties[metadata].type: Invalid value: \"string\": must be object"
        ]
    );
}

#[test]
fn array_rules() {
    let errs = compile_errors(&with_spec(&json!({"a": {"type": "array"}})));
    assert_eq!(
        errs,
        ["properties[spec].properties[a].items: Required value: must be specified"]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "array", "items": [{"type": "string"}]}}),
    ));
    assert!(
        errs.contains(&"properties[spec].properties[a].items: Forbidden: items must be a schema object and not an array".to_owned()),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        ]
    );
}

#[test]
fn forbidden_keywords() {
    for (keyword, value, message) in [
        ("$ref", json!("#/x"), "$ref is not supported"),
        (
            "additionalItems",
            json!(true),
            "additionalItems is not supported",
        ),
        (
            "patternProperties",
            json!({"a": {"type": "string"}}),
            "patternProperties is not supported",
        ),
        (
            "definitions",
            json!({"a": {"type": "string"}}),
            "definitions is not supported",
        ),
        (
            "dependencies",
            json!({"a": ["b"]}),
            "dependencies is not supported",
        ),
        ("id", json!("x"), "id is not supported"),
    ] {
        let mut prop = json!({"type": "string"});
        prop[keyword] = value;
        let errs = compile_errors(&with_spec(&json!({"a": prop})));
        assert_eq!(
            errs,
            [format!(
                "properties[spec].properties[a].{keyword}: Forbidden: {message}"
            )],
            "{keyword}"
        );
    }
    let errs = compile_errors(&with_spec(&json!({"a": {"type": "null"}})));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative"
        ]
    );
    let errs = compile_errors(&with_spec(&json!({"a": {"type": "map"}})));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].type: Unsupported value: \"map\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\""
        ]
    );
}

#[test]
fn additional_properties_rules() {
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": {"type": "string"}}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ]
    );
    // `true` beside properties is allowed.
    compile(&with_spec(
        &json!({"a": {"type": "object", "properties": {"b": {"type": "string"}}, "additionalProperties": true}}),
    ));
}

#[test]
fn extension_rules() {
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "x-kubernetes-embedded-resource": true}}),
    ));
    assert!(
        errs.contains(&"properties[spec].properties[a].type: Invalid value: \"string\": must be object if x-kubernetes-embedded-resource is true".to_owned()),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "object", "x-kubernetes-embedded-resource": true}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
        ]
    );
    compile(&with_spec(
        &json!({"a": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}),
    ));
}

#[test]
fn list_and_map_type_rules() {
    compile(&with_spec(&json!({
        "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
        "o": {"type": "object", "x-kubernetes-map-type": "atomic"}
    })));
    let errs = compile_errors(&with_spec(
        &json!({"s": {"type": "string", "x-kubernetes-list-type": "set"}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[s].type: Invalid value: \"string\": must be array if x-kubernetes-list-type is specified"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"s": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"}}),
    ));
    assert!(errs[0].contains("Unsupported value: \"bag\""), "{errs:?}");
    let errs = compile_errors(&with_spec(
        &json!({"m": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[m].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"], "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}),
    ));
    assert!(
        errs[0].contains("entries must all be names of item properties"),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object", "properties": {"name": {"type": "string"}}}}}),
    ));
    assert!(
        errs[0].contains("must have a default or be a required property"),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object"}}}),
    ));
    assert!(
        errs[0].contains("must be atomic as item of a list with x-kubernetes-list-type=set"),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"o": {"type": "object", "x-kubernetes-map-type": "loose"}}),
    ));
    assert!(
        errs[0].contains("supported values: \"atomic\", \"granular\""),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"o": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-map-keys": ["a"]}}),
    ));
    assert!(
        errs[0].contains("must be map if x-kubernetes-list-map-keys is non-empty"),
        "{errs:?}"
    );
}

#[test]
fn junctors_hold_value_validations_only() {
    compile(&with_spec(
        &json!({"a": {"type": "string", "anyOf": [{"pattern": "^a"}, {"maxLength": 2}]}}),
    ));
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "anyOf": [{"type": "string"}]}}),
    ));
    assert_eq!(
        errs,
        ["properties[spec].properties[a].anyOf[0].type: Forbidden: must be empty to be structural"]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "allOf": [{"description": "x", "nullable": true, "default": "y"}]}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].allOf[0].default: Forbidden: must be undefined to be structural",
            "properties[spec].properties[a].allOf[0].description: Forbidden: must be empty to be structural",
            "properties[spec].properties[a].allOf[0].nullable: Forbidden: must be false to be structural"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "object", "oneOf": [{"properties": {"b": {"minLength": 1}}}]}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].properties[b]: Required value: because it is defined in properties[spec].properties[a].oneOf[0].properties[b]"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "not": {"x-kubernetes-validations": [{"rule": "true"}]}}}),
    ));
    assert!(
        errs[0]
            .ends_with("not.x-kubernetes-validations: Forbidden: must be empty to be structural"),
        "{errs:?}"
    );
}

#[test]
fn patterns_must_compile() {
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "pattern": "("}}),
    ));
    assert!(errs[0].starts_with("properties[spec].properties[a].pattern: Invalid value: \"(\": must be a valid regular expression, but isn't"), "{errs:?}");
}

#[test]
fn validation_rule_entries_are_checked() {
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "x-kubernetes-validations": [{"rule": " "}]}}),
    ));
    assert_eq!(
        errs,
        [
            "properties[spec].properties[a].x-kubernetes-validations[0].rule: Required value: rule is not specified"
        ]
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]}}),
    ));
    assert!(
        errs[0].contains("reason: Unsupported value: \"Nope\""),
        "{errs:?}"
    );
    let errs = compile_errors(&with_spec(
        &json!({"a": {"type": "string", "x-kubernetes-validations": [{"rule": "self\n== 'a'"}]}}),
    ));
    assert!(
        errs[0].contains("message must be specified if rule contains line breaks"),
        "{errs:?}"
    );
}

#[test]
fn field_errors_can_be_placed_under_a_crd_path() {
    let err = StructuralSchema::from_openapi_v3(&json!({"type": "string"})).unwrap_err();
    let placed = err.field_errors("spec.versions[0].schema.openAPIV3Schema");
    assert_eq!(
        placed[0].field,
        "spec.versions[0].schema.openAPIV3Schema.type"
    );
    assert!(
        err.to_string()
            .starts_with("invalid schema: type: Invalid value")
    );
}

// ---- validating ------------------------------------------------------------------------

#[test]
fn types_are_checked_with_kube_openapi_messages() {
    let s = compile(&with_spec(&json!({
        "n": {"type": "integer"},
        "f": {"type": "number"},
        "b": {"type": "boolean"},
        "s": {"type": "string"},
        "l": {"type": "array", "items": {"type": "string"}},
        "o": {"type": "object", "properties": {"x": {"type": "string"}}}
    })));
    assert!(
        errors(
            &s,
            &spec(&json!({"n": 1, "f": 1.5, "b": true, "s": "x", "l": ["a"], "o": {"x": "y"}}))
        )
        .is_empty()
    );
    // Whole floats count as integers, integers as numbers.
    assert!(errors(&s, &spec(&json!({"n": 2.0, "f": 3}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"n": "1"}))),
        ["spec.n: Invalid value: \"string\": spec.n in body must be of type integer: \"string\""]
    );
    let errs = s.validate(&spec(
        &json!({"n": 1.5, "b": "yes", "l": "a", "o": [], "s": 1}),
    ));
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "spec.b: Invalid value: \"string\": spec.b in body must be of type boolean: \"string\"",
            "spec.l: Invalid value: \"string\": spec.l in body must be of type array: \"string\"",
            "spec.n: Invalid value: \"number\": spec.n in body must be of type integer: \"number\"",
            "spec.o: Invalid value: \"array\": spec.o in body must be of type object: \"array\"",
            "spec.s: Invalid value: \"integer\": spec.s in body must be of type string: \"integer\""
        ]
    );
    assert!(
        errs.iter()
            .all(|e| e.reason == CauseReason::FieldValueTypeInvalid)
    );
    assert_eq!(
        errors(&s, &spec(&json!({"l": ["a", 1]}))),
        [
            "spec.l[1]: Invalid value: \"integer\": spec.l[1] in body must be of type string: \"integer\""
        ]
    );
}

#[test]
fn integer_formats_name_the_expected_type() {
    let s = compile(&with_spec(
        &json!({"n": {"type": "integer", "format": "int32"}}),
    ));
    assert!(errors(&s, &spec(&json!({"n": 5_000_000_000i64}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"n": 1.5}))),
        ["spec.n: Invalid value: \"float64\": spec.n in body must be of type int32: \"float64\""]
    );
}

#[test]
fn nullable_and_null() {
    let s = compile(&with_spec(
        &json!({"a": {"type": "string", "nullable": true}, "b": {"type": "string"}}),
    ));
    assert!(errors(&s, &spec(&json!({"a": null}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"b": null}))),
        ["spec.b: Invalid value: \"null\": spec.b in body must be of type string: \"null\""]
    );
}

#[test]
fn required_fields() {
    let s = compile(
        &json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["repo", "branch"], "properties": {"repo": {"type": "string"}, "branch": {"type": "string"}}}
        }}),
    );
    assert!(errors(&s, &json!({"spec": {"repo": "r", "branch": "b"}})).is_empty());
    assert_eq!(errors(&s, &json!({})), ["spec: Required value"]);
    let errs = s.validate(&json!({"spec": {"branch": "b"}}));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.repo");
    assert_eq!(errs[0].reason, CauseReason::FieldValueRequired);
    assert_eq!(errs[0].message, "Required value");
}

#[test]
fn enums() {
    let s = compile(&with_spec(
        &json!({"mode": {"type": "string", "enum": ["FirstMatch", "AllMatches"]}, "n": {"type": "integer", "enum": [1, 2]}}),
    ));
    assert!(errors(&s, &spec(&json!({"mode": "AllMatches", "n": 2}))).is_empty());
    let errs = s.validate(&spec(&json!({"mode": "Some", "n": 3})));
    assert_eq!(errs[0].reason, CauseReason::FieldValueNotSupported);
    assert_eq!(
        errs[0].to_string(),
        "spec.mode: Unsupported value: \"Some\": supported values: \"FirstMatch\", \"AllMatches\""
    );
    assert_eq!(
        errs[1].to_string(),
        "spec.n: Unsupported value: 3: supported values: \"1\", \"2\""
    );
}

#[test]
fn string_lengths_patterns_and_formats() {
    let s = compile(&with_spec(&json!({
        "short": {"type": "string", "maxLength": 3, "minLength": 2},
        "p": {"type": "string", "pattern": "^[a-z]+$"},
        "t": {"type": "string", "format": "date-time"},
        "b": {"type": "string", "format": "byte"},
        "ignored": {"type": "string", "format": "no-such-format"}
    })));
    assert!(errors(&s, &spec(&json!({"short": "héj", "p": "abc", "t": "2024-01-01T00:00:00Z", "b": "aGk=", "ignored": "!"}))).is_empty());
    let errs = s.validate(&spec(&json!({"short": "abcd"})));
    assert_eq!(errs[0].reason, CauseReason::FieldValueTooLong);
    assert_eq!(
        errs[0].to_string(),
        "spec.short: Too long: may not be more than 3 bytes"
    );
    assert_eq!(
        errors(&s, &spec(&json!({"short": "a"}))),
        ["spec.short: Invalid value: \"a\": spec.short in body should be at least 2 chars long"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"p": "A1"}))),
        ["spec.p: Invalid value: \"A1\": spec.p in body should match '^[a-z]+$'"]
    );
    let errs = s.validate(&spec(&json!({"t": "yesterday", "b": "!!"})));
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.b: Invalid value: \"!!\": spec.b in body must be of type byte: \"!!\"",
            "spec.t: Invalid value: \"yesterday\": spec.t in body must be of type date-time: \"yesterday\""
        ]
    );
    assert_eq!(errs[0].reason, CauseReason::FieldValueTypeInvalid);
}

#[test]
fn numeric_bounds() {
    let s = compile(&with_spec(&json!({
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "x": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1.5, "exclusiveMaximum": true},
        "m": {"type": "integer", "multipleOf": 5}
    })));
    assert!(errors(&s, &spec(&json!({"n": 1, "x": 1.0, "m": 15}))).is_empty());
    assert!(errors(&s, &spec(&json!({"n": 10}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"n": 11}))),
        ["spec.n: Invalid value: 11: spec.n in body should be less than or equal to 10"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"n": 0}))),
        ["spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"x": 1.5}))),
        ["spec.x: Invalid value: 1.5: spec.x in body should be less than 1.5"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"x": 0}))),
        ["spec.x: Invalid value: 0: spec.x in body should be greater than 0"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"m": 7}))),
        ["spec.m: Invalid value: 7: spec.m in body should be a multiple of 5"]
    );
}

#[test]
fn item_and_property_counts() {
    let s = compile(&with_spec(&json!({
        "l": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "o": {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1, "maxProperties": 2}
    })));
    assert!(errors(&s, &spec(&json!({"l": ["a"], "o": {"a": "b"}}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"l": []}))),
        ["spec.l: Invalid value: 0: spec.l in body should have at least 1 items"]
    );
    let errs = s.validate(&spec(&json!({"l": ["a", "b", "c"]})));
    assert_eq!(errs[0].reason, CauseReason::FieldValueTooMany);
    assert_eq!(
        errs[0].to_string(),
        "spec.l: Too many: 3: must have at most 2 items"
    );
    assert_eq!(
        errors(&s, &spec(&json!({"o": {}}))),
        ["spec.o: Invalid value: 0: spec.o in body should have at least 1 properties"]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"o": {"a": "1", "b": "2", "c": "3"}}))),
        ["spec.o: Too many: 3: must have at most 2 items"]
    );
}

#[test]
fn map_values_follow_additional_properties() {
    let s = compile(&with_spec(
        &json!({"labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}}}),
    ));
    assert!(errors(&s, &spec(&json!({"labels": {"a": "b"}}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"labels": {"a": 1}}))),
        [
            "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""
        ]
    );
    let deny = compile(&with_spec(
        &json!({"o": {"type": "object", "additionalProperties": false}}),
    ));
    assert_eq!(
        errors(&deny, &spec(&json!({"o": {"k": 1}}))),
        ["spec.o: Invalid value: \"k\": spec.o.k in body is a forbidden property"]
    );
}

#[test]
fn int_or_string() {
    let s = compile(&with_spec(
        &json!({"p": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}),
    ));
    assert!(errors(&s, &spec(&json!({"p": 8080}))).is_empty());
    assert!(errors(&s, &spec(&json!({"p": "25%"}))).is_empty());
    assert_eq!(
        errors(&s, &spec(&json!({"p": true}))),
        [
            "spec.p: Invalid value: \"boolean\": spec.p in body must be of type integer,string: \"boolean\""
        ]
    );
}

#[test]
fn junctors_validate() {
    let s = compile(&with_spec(&json!({
        "any": {"type": "string", "anyOf": [{"pattern": "^a"}, {"maxLength": 2}]},
        "all": {"type": "string", "allOf": [{"pattern": "^a"}, {"maxLength": 2}]},
        "one": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]},
        "not": {"type": "string", "not": {"pattern": "^x"}}
    })));
    assert!(
        errors(
            &s,
            &spec(&json!({"any": "abc", "all": "ab", "one": "ac", "not": "y"}))
        )
        .is_empty()
    );
    assert!(errors(&s, &spec(&json!({"any": "zz"}))).is_empty());
    let errs = errors(&s, &spec(&json!({"any": "zzz"})));
    assert_eq!(
        errs[0],
        "spec.any: Invalid value: \"\": \"spec.any\" must validate at least one schema (anyOf)"
    );
    assert!(errs[1].contains("should match '^a'"), "{errs:?}");
    assert_eq!(errors(&s, &spec(&json!({"all": "abc"}))).len(), 1);
    assert_eq!(
        errors(&s, &spec(&json!({"one": "ab"}))),
        [
            "spec.one: Invalid value: \"\": \"spec.one\" must validate one and only one schema (oneOf)"
        ]
    );
    assert_eq!(
        errors(&s, &spec(&json!({"not": "xy"}))),
        ["spec.not: Invalid value: \"\": \"spec.not\" must not validate the schema (not)"]
    );
}

#[test]
fn list_sets_and_maps_are_unique() {
    let s = compile(&with_spec(&json!({
        "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
              "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}},
        "a": {"type": "array", "items": {"type": "string"}}
    })));
    assert!(errors(&s, &spec(&json!({"s": ["a", "b"], "m": [{"name": "a", "v": 1}, {"name": "b", "v": 1}], "a": ["x", "x"]}))).is_empty());
    let errs = s.validate(&spec(&json!({"s": ["a", "b", "a", "a"]})));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].reason, CauseReason::FieldValueDuplicate);
    assert_eq!(errs[0].to_string(), "spec.s[2]: Duplicate value: \"a\"");
    assert_eq!(
        errors(
            &s,
            &spec(&json!({"m": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}))
        ),
        ["spec.m[1]: Duplicate value: {\"name\":\"a\"}"]
    );
}

#[test]
fn embedded_resources_need_api_version_and_kind() {
    let s = compile(&with_spec(
        &json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}),
    ));
    assert!(
        errors(
            &s,
            &spec(&json!({"template": {"apiVersion": "v1", "kind": "Pod"}}))
        )
        .is_empty()
    );
    assert_eq!(
        errors(&s, &spec(&json!({"template": {"kind": "Pod"}}))),
        ["spec.template.apiVersion: Required value: must not be empty"]
    );
}

// ---- CEL rules -------------------------------------------------------------------------

fn duration_field() -> Value {
    json!({
        "type": "string", "maxLength": 32, "minLength": 1, "nullable": true,
        "x-kubernetes-validations": [{
            "message": "must be a valid Go duration using units ns, us, µs, ms, s, m, h (e.g. 15s, 5m, 2h, 1h30m); units like d (days) or w (weeks) are not supported",
            "rule": "self == '0' || (self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('2562047h'))"
        }]
    })
}

#[test]
fn cel_rules_report_their_message_at_the_field() {
    let s = compile(&with_spec(&json!({"pollingInterval": duration_field()})));
    assert_eq!(s.rule_count(), 1);
    assert!(errors(&s, &spec(&json!({"pollingInterval": "15s"}))).is_empty());
    assert!(errors(&s, &spec(&json!({"pollingInterval": null}))).is_empty());
    let errs = s.validate(&spec(&json!({"pollingInterval": "1d"})));
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.pollingInterval");
    assert_eq!(errs[0].reason, CauseReason::FieldValueInvalid);
    assert_eq!(
        errs[0].message,
        "Invalid value: \"1d\": must be a valid Go duration using units ns, us, µs, ms, s, m, h (e.g. 15s, 5m, 2h, 1h30m); units like d (days) or w (weeks) are not supported"
    );
}

#[test]
fn cel_rules_do_not_run_after_blocking_errors() {
    let s = compile(&with_spec(
        &json!({"pollingInterval": duration_field(), "n": {"type": "integer"}}),
    ));
    let errs = errors(&s, &spec(&json!({"pollingInterval": "1d", "n": "x"})));
    assert_eq!(
        errs,
        [
            "spec.n: Invalid value: \"string\": spec.n in body must be of type integer: \"string\"",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );
}

#[test]
fn cel_rule_options() {
    let s = compile(&with_spec(&json!({
        "o": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}},
              "x-kubernetes-validations": [
                  {"rule": "self.min <= self.max", "messageExpression": "'min ' + string(self.min) + ' exceeds max'", "fieldPath": ".min"},
                  {"rule": "self.max < 100", "reason": "FieldValueForbidden", "message": "max too big"}
              ]},
        "plain": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0"}]}
    })));
    assert!(errors(&s, &spec(&json!({"o": {"min": 1, "max": 2}, "plain": 1}))).is_empty());
    let errs = s.validate(&spec(&json!({"o": {"min": 300, "max": 200}, "plain": 0})));
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "spec.o.min: Invalid value: min 300 exceeds max",
            "spec.o: Forbidden: max too big",
            "spec.plain: Invalid value: 0: failed rule: self > 0"
        ]
    );
}

#[test]
fn cel_transition_rules_run_on_update_only() {
    let s = compile(&with_spec(
        &json!({"v": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >= oldSelf", "message": "may not decrease"}]}}),
    ));
    assert!(errors(&s, &spec(&json!({"v": 1}))).is_empty());
    assert!(
        s.validate_update(&spec(&json!({"v": 3})), &spec(&json!({"v": 2})))
            .is_empty()
    );
    let errs = s.validate_update(&spec(&json!({"v": 1})), &spec(&json!({"v": 2})));
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "spec.v: Invalid value: 1: may not decrease"
    );
    // No old value to correlate with: the rule does not run.
    assert!(
        s.validate_update(&spec(&json!({"v": 1})), &spec(&json!({})))
            .is_empty()
    );
}

#[test]
fn cel_optional_old_self() {
    let s = compile(&with_spec(
        &json!({"v": {"type": "string", "x-kubernetes-validations": [{"rule": "!oldSelf.hasValue() || oldSelf.value() == self", "message": "immutable", "optionalOldSelf": true}]}}),
    ));
    assert!(errors(&s, &spec(&json!({"v": "a"}))).is_empty());
    assert!(
        s.validate_update(&spec(&json!({"v": "a"})), &spec(&json!({"v": "a"})))
            .is_empty()
    );
    assert_eq!(
        s.validate_update(&spec(&json!({"v": "b"})), &spec(&json!({"v": "a"})))
            .len(),
        1
    );
}

#[test]
fn cel_runtime_errors_reject() {
    let s = compile(&with_spec(
        &json!({"d": {"type": "string", "x-kubernetes-validations": [{"rule": "duration(self) > duration('1s')"}]}}),
    ));
    let errs = errors(&s, &spec(&json!({"d": "soon"})));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("spec.d: Invalid value: \"string\": ")
            && errs[0].ends_with(" evaluating rule: duration(self) > duration('1s')"),
        "{errs:?}"
    );
}

#[test]
fn cel_rules_on_list_map_items_correlate_by_key() {
    let s = compile(&with_spec(&json!({"m": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                  "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may not decrease"}]}
    }})));
    let old = spec(&json!({"m": [{"name": "a", "v": 5}, {"name": "b", "v": 1}]}));
    let new =
        spec(&json!({"m": [{"name": "b", "v": 2}, {"name": "a", "v": 4}, {"name": "c", "v": 0}]}));
    let errs = errors_update(&s, &new, &old);
    assert_eq!(errs, ["spec.m[1]: Invalid value: v may not decrease"]);
}

#[test]
fn updates_ratchet_unchanged_values() {
    let s = compile(&with_spec(&json!({
        "name": {"type": "string", "maxLength": 3},
        "other": {"type": "string"},
        "interval": duration_field(),
        "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
              "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}, "v": {"type": "integer", "maximum": 5}}}}
    })));
    // Stored before the schema got stricter: too long, a bad duration, an item over 5.
    let old = spec(
        &json!({"name": "toolong", "other": "a", "interval": "1d", "m": [{"k": "a", "v": 9}]}),
    );
    // Changing another field keeps the old problems acceptable...
    let new = spec(
        &json!({"name": "toolong", "other": "b", "interval": "1d", "m": [{"k": "a", "v": 9}, {"k": "b", "v": 1}]}),
    );
    assert!(
        errors_update(&s, &new, &old).is_empty(),
        "{:?}",
        errors_update(&s, &new, &old)
    );
    assert!(s.validate_update(&old, &old).is_empty());
    // ...but changed values are validated, and creates are not ratcheted.
    let changed = spec(
        &json!({"name": "toolong2", "other": "a", "interval": "2d", "m": [{"k": "a", "v": 10}]}),
    );
    assert_eq!(
        errors_update(&s, &changed, &old),
        [
            "spec.m[0].v: Invalid value: 10: spec.m[0].v in body should be less than or equal to 5",
            "spec.name: Too long: may not be more than 3 bytes",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );
    assert_eq!(errors(&s, &old).len(), 3);
}

fn errors_update(s: &StructuralSchema, new: &Value, old: &Value) -> Vec<String> {
    s.validate_update(new, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn uncompilable_rules_are_listed() {
    let s = compile(&with_spec(
        &json!({"l": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-validations": [{"rule": "self.isSorted()"}]}}),
    ));
    assert_eq!(s.rule_count(), 0);
    assert_eq!(s.skipped_rules().len(), 1);
    assert_eq!(
        s.skipped_rules()[0].path,
        "properties[spec].properties[l].x-kubernetes-validations[0]"
    );
    assert!(errors(&s, &spec(&json!({"l": [2, 1]}))).is_empty());
}

// ---- pruning and defaulting ------------------------------------------------------------

#[test]
fn pruning_removes_unknown_fields_and_keeps_preserved_ones() {
    let s = compile(&with_spec(&json!({
        "known": {"type": "string"},
        "nested": {"type": "object", "properties": {"a": {"type": "string"}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}}
    })));
    let mut object = json!({
        "apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a", "anything": "kept for the server"},
        "status": {"x": 1},
        "spec": {
            "known": "k", "unknown": 1,
            "nested": {"a": "x", "b": "y"},
            "list": [{"a": "1", "b": "2"}],
            "map": {"k": {"a": "1", "b": "2"}},
            "values": {"free": {"deep": [1, {"x": 2}]}, "typed": {"a": "1", "b": "2"}}
        }
    });
    let removed = s.prune_reporting(&mut object);
    assert_eq!(
        removed,
        [
            "spec.list[0].b",
            "spec.map.k.b",
            "spec.nested.b",
            "spec.unknown",
            "spec.values.typed.b",
            "status"
        ]
    );
    assert_eq!(
        object,
        json!({
            "apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a", "anything": "kept for the server"},
            "spec": {
                "known": "k",
                "nested": {"a": "x"},
                "list": [{"a": "1"}],
                "map": {"k": {"a": "1"}},
                "values": {"free": {"deep": [1, {"x": 2}]}, "typed": {"a": "1"}}
            }
        })
    );
    // Pruning twice changes nothing.
    let before = object.clone();
    s.prune(&mut object);
    assert_eq!(object, before);
}

#[test]
fn pruning_embedded_resources_keeps_type_meta_and_object_meta() {
    let s = compile(&with_spec(
        &json!({"template": {"type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}}}),
    ));
    let mut object = spec(
        &json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1}, "spec": {"x": "1", "y": 2}, "extra": true}}),
    );
    let removed = s.prune_reporting(&mut object);
    assert_eq!(
        removed,
        [
            "spec.template.extra",
            "spec.template.metadata.bogus",
            "spec.template.spec.y"
        ]
    );
    assert_eq!(
        object["spec"]["template"],
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1"}})
    );
}

#[test]
fn whole_preserved_root_keeps_everything() {
    let s = compile(&json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let mut object = json!({"spec": {"a": 1}, "x": [1]});
    let before = object.clone();
    assert!(s.prune_reporting(&mut object).is_empty());
    assert_eq!(object, before);
}

#[test]
fn defaults_fill_missing_and_non_nullable_null_fields() {
    let s = compile(&with_spec(&json!({
        "mode": {"type": "string", "default": "FirstMatch"},
        "nullableWithDefault": {"type": "string", "nullable": true, "default": "d"},
        "plainNull": {"type": "string"},
        "nullableNull": {"type": "string", "nullable": true},
        "obj": {"type": "object", "default": {}, "properties": {"inner": {"type": "integer", "default": 5}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": "integer", "default": 1}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"z": {"type": "boolean", "default": true}}}}
    })));
    let mut object = spec(&json!({
        "nullableWithDefault": null,
        "plainNull": null,
        "nullableNull": null,
        "list": [{}, {"w": 3}],
        "map": {"a": {}}
    }));
    s.apply_defaults(&mut object);
    assert_eq!(
        object["spec"],
        json!({
            "mode": "FirstMatch",
            "nullableWithDefault": null,
            "nullableNull": null,
            "obj": {"inner": 5},
            "list": [{"w": 1}, {"w": 3}],
            "map": {"a": {"z": true}}
        })
    );
    // Explicit values are kept.
    let mut object = spec(&json!({"mode": "AllMatches", "obj": {"inner": 7}}));
    s.apply_defaults(&mut object);
    assert_eq!(object["spec"]["mode"], "AllMatches");
    assert_eq!(object["spec"]["obj"]["inner"], 7);
}

// ---- Fleet's CRDs ----------------------------------------------------------------------

static FLEET_CRDS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fleet-crds.yaml"
    );
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("fixture parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
});

/// The compiled schema of `plural.fleet.cattle.io`, version v1alpha1.
fn fleet_schema(plural: &str) -> StructuralSchema {
    let name = format!("{plural}.fleet.cattle.io");
    let crd = FLEET_CRDS
        .iter()
        .find(|c| c["metadata"]["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} in fixture"));
    let version = crd["spec"]["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "v1alpha1"))
        .expect("v1alpha1");
    compile(&version["schema"]["openAPIV3Schema"])
}

#[test]
fn every_fleet_crd_version_compiles() {
    assert_eq!(FLEET_CRDS.len(), 14);
    let mut rules = 0;
    for crd in FLEET_CRDS.iter() {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default();
        for version in crd["spec"]["versions"].as_array().expect("versions") {
            let schema = &version["schema"]["openAPIV3Schema"];
            let compiled = StructuralSchema::from_openapi_v3(schema)
                .unwrap_or_else(|e| panic!("{name} {}: {e}", version["name"]));
            assert!(
                compiled.skipped_rules().is_empty(),
                "{name}: {:?}",
                compiled.skipped_rules()
            );
            rules += compiled.rule_count();
        }
    }
    // Six pollingInterval-like duration fields carry a CEL rule; all are enforced.
    assert_eq!(rules, 6);
}

fn gitrepo() -> Value {
    json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": "simple", "namespace": "fleet-local", "labels": {"team": "a"}},
        "spec": {
            "repo": "https://github.com/rancher/fleet-examples",
            "branch": "master",
            "paths": ["simple", "multi-cluster/helm"],
            "pollingInterval": "15s",
            "targets": [
                {"name": "dev", "clusterSelector": {"matchLabels": {"env": "dev"}}},
                {"clusterGroup": "prod", "clusterSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}}
            ]
        },
        "status": {
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "observedGeneration": 2,
            "readyClusters": 1,
            "desiredReadyClusters": 1,
            "lastPollingTriggered": "2024-05-01T10:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastUpdateTime": "2024-05-01T10:00:00Z"}],
            "display": {"readyBundleDeployments": "1/1"},
            "summary": {"ready": 1, "desiredReady": 1}
        }
    })
}

#[test]
fn a_realistic_gitrepo_validates_and_survives_pruning() {
    let s = fleet_schema("gitrepos");
    let mut object = gitrepo();
    assert!(s.validate(&object).is_empty(), "{:?}", s.validate(&object));
    let removed = s.prune_reporting(&mut object);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(object, gitrepo());
}

#[test]
fn gitrepo_errors_name_the_right_fields() {
    let s = fleet_schema("gitrepos");
    let mut object = gitrepo();
    object["spec"]["paths"] = json!("simple");
    object["spec"]["pollingInterval"] = json!("1d");
    let errs = errors(&s, &object);
    assert_eq!(
        errs,
        [
            "spec.paths: Invalid value: \"string\": spec.paths in body must be of type array: \"string\"",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );

    let mut object = gitrepo();
    object["spec"].as_object_mut().expect("spec").remove("repo");
    // A missing required field is a blocking error: CEL rules do not run.
    assert_eq!(
        errors(&s, &object),
        [
            "spec.repo: Required value",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        ]
    );

    let mut object = gitrepo();
    object["spec"]["pollingInterval"] = json!("1d");
    object["spec"]["targets"][0]["clusterSelector"]["matchExpressions"] =
        json!([{"key": "a", "operator": "In", "values": "x"}]);
    let errs = errors(&s, &object);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(
        errs[0],
        "spec.targets[0].clusterSelector.matchExpressions[0].values: Invalid value: \"string\": spec.targets[0].clusterSelector.matchExpressions[0].values in body must be of type array: \"string\""
    );

    let mut object = gitrepo();
    object["spec"]["pollingInterval"] = json!("1d");
    let errs = s.validate(&object);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec.pollingInterval");
    assert!(
        errs[0]
            .message
            .starts_with("Invalid value: \"1d\": must be a valid Go duration")
    );

    for ok in ["0", "1h30m", "500ms", "2562047h"] {
        let mut object = gitrepo();
        object["spec"]["pollingInterval"] = json!(ok);
        assert!(s.validate(&object).is_empty(), "{ok}");
    }
    let mut object = gitrepo();
    object["spec"]["pollingInterval"] = json!("2562048h");
    let errs = errors(&s, &object);
    assert!(errs[0].ends_with("evaluating rule: must be a valid Go duration using units ns, us, µs, ms, s, m, h (e.g. 15s, 5m, 2h, 1h30m); units like d (days) or w (weeks) are not supported"), "{errs:?}");
}

#[test]
fn gitrepo_unknown_fields_are_pruned() {
    let s = fleet_schema("gitrepos");
    let mut object = gitrepo();
    object["spec"]["notAField"] = json!(true);
    object["spec"]["targets"][0]["bogus"] = json!("x");
    object["status"]["madeUp"] = json!(1);
    let removed = s.prune_reporting(&mut object);
    assert_eq!(
        removed,
        ["spec.notAField", "spec.targets[0].bogus", "status.madeUp"]
    );
    assert_eq!(object, gitrepo());
}

fn bundle() -> Value {
    json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "Bundle",
        "metadata": {"name": "simple-simple", "namespace": "fleet-local"},
        "spec": {
            "defaultNamespace": "default",
            "resources": [
                {"name": "configmap.yaml", "content": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"},
                {"name": "chart.tgz", "content": "H4sIAAAA", "encoding": "base64+gz"}
            ],
            "helm": {"releaseName": "x", "values": {"replicas": 2, "image": {"tag": "v1", "extra": [1, 2, {"deep": true}]}}},
            "targets": [{"name": "all", "clusterSelector": {}}],
            "targetRestrictions": [{"clusterGroup": "prod"}],
            "rolloutStrategy": {"maxUnavailable": "10%", "maxUnavailablePartitions": 0, "autoPartitionSize": 25}
        }
    })
}

#[test]
fn a_realistic_bundle_validates_defaults_and_keeps_helm_values() {
    let s = fleet_schema("bundles");
    let mut object = bundle();
    object["spec"]["helm"]["values"]["unknownToFleet"] = json!({"anything": ["goes"]});
    assert!(s.prune_reporting(&mut object).is_empty());
    assert_eq!(
        object["spec"]["helm"]["values"]["unknownToFleet"],
        json!({"anything": ["goes"]})
    );
    s.apply_defaults(&mut object);
    assert_eq!(object["spec"]["targetCustomizationMode"], "FirstMatch");
    assert!(s.validate(&object).is_empty(), "{:?}", s.validate(&object));

    object["spec"]["targetCustomizationMode"] = json!("Sometimes");
    object["spec"]["rolloutStrategy"]["maxUnavailable"] = json!(false);
    let errs = s.validate(&object);
    let texts: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "spec.rolloutStrategy.maxUnavailable: Invalid value: \"boolean\": spec.rolloutStrategy.maxUnavailable in body must be of type integer,string: \"boolean\"",
            "spec.targetCustomizationMode: Unsupported value: \"Sometimes\": supported values: \"FirstMatch\", \"AllMatches\""
        ]
    );
}

#[test]
fn a_realistic_bundledeployment_and_cluster_validate() {
    let bd = fleet_schema("bundledeployments");
    let object = json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "BundleDeployment",
        "metadata": {"name": "simple", "namespace": "cluster-fleet-local-local-1a2b"},
        "spec": {
            "deploymentID": "s-abc:123",
            "stagedDeploymentID": "s-abc:123",
            "options": {"defaultNamespace": "default", "helm": {"values": {"a": 1}}},
            "stagedOptions": {"defaultNamespace": "default"}
        },
        "status": {
            "appliedDeploymentID": "s-abc:123",
            "ready": true,
            "nonModified": true,
            "display": {"deployed": "Yes", "monitored": "Yes", "state": "Ready"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    });
    let mut pruned = object.clone();
    assert!(bd.prune_reporting(&mut pruned).is_empty());
    assert!(
        bd.validate(&object).is_empty(),
        "{:?}",
        bd.validate(&object)
    );
    let mut bad = object;
    bad["status"]["ready"] = json!("yes");
    bad["status"]["conditions"] = json!([{"type": "Ready"}]);
    let texts: Vec<String> = bd.validate(&bad).iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "status.conditions[0].status: Required value",
            "status.ready: Invalid value: \"string\": status.ready in body must be of type boolean: \"string\""
        ]
    );

    let cluster = fleet_schema("clusters");
    let object = json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "local", "namespace": "fleet-local", "labels": {"env": "dev"}},
        "spec": {"kubeConfigSecret": "local-kubeconfig", "agentNamespace": "cattle-fleet-local-system",
                 "templateValues": {"free": {"form": [1, "x"]}}},
        "status": {"namespace": "cluster-fleet-local-local-1a2b", "readyGitRepos": 1, "desiredReadyGitRepos": 1,
                   "summary": {"ready": 1, "desiredReady": 1}, "display": {"readyBundles": "1/1"}}
    });
    let mut pruned = object.clone();
    assert!(cluster.prune_reporting(&mut pruned).is_empty());
    assert_eq!(pruned, object);
    assert!(
        cluster.validate(&object).is_empty(),
        "{:?}",
        cluster.validate(&object)
    );
}

#[test]
fn compiled_schemas_can_be_shared_across_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<StructuralSchema>();
    let s = std::sync::Arc::new(compile(&with_spec(
        &json!({"pollingInterval": duration_field()}),
    )));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let s = s.clone();
            std::thread::spawn(move || {
                let value = if i % 2 == 0 { "15s" } else { "1d" };
                s.validate(&spec(&json!({"pollingInterval": value}))).len()
            })
        })
        .collect();
    let counts: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert_eq!(counts, [0, 1, 0, 1]);
}
