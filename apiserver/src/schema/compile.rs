//! Turning an `openAPIV3Schema` into a [`Node`] tree, with kube-apiserver's CRD schema
//! checks: the structural rules of `apiextensions-apiserver/pkg/apiserver/schema` and the
//! keyword rules of `ValidateCustomResourceDefinitionOpenAPISchema`.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::cel::Programs;
use super::format::Format;
use super::{Additional, ListType, Node, SchemaError, SchemaType, StructuralSchema};
use crate::validation::FieldError;

/// Where a node sits, for the wording of "type must not be empty" errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// How a node is being compiled.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    level: Level,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not`: value validations only.
    nested: bool,
    /// Inside `anyOf`/`oneOf`/`not`, where CEL rules are not allowed either.
    nested_without_rules: bool,
    /// Under a resource's `metadata`, `apiVersion` or `kind` (defaults forbidden there).
    in_resource_meta: bool,
}

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const RULE_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

struct Compiler {
    errors: Vec<FieldError>,
    programs: Programs,
}

pub(super) fn compile(schema: &Value) -> Result<StructuralSchema, SchemaError> {
    if !schema.is_object() {
        return Err(SchemaError::NotAnObject);
    }
    let mut compiler = Compiler {
        errors: Vec::new(),
        programs: Programs::default(),
    };
    let ctx = Ctx {
        level: Level::Root,
        nested: false,
        nested_without_rules: false,
        in_resource_meta: false,
    };
    let mut root = compiler.node(schema, "", ctx);
    root.is_resource_root = true;
    if root.nullable {
        compiler.errors.push(FieldError::forbidden(
            "nullable",
            "nullable cannot be true at the root",
        ));
    }
    if compiler.errors.is_empty() {
        Ok(StructuralSchema {
            root,
            cel: compiler.programs,
        })
    } else {
        let mut errors = compiler.errors;
        // kube-apiserver sorts structural-schema errors by their text.
        errors.sort_by_key(ToString::to_string);
        errors.dedup();
        Err(SchemaError::Invalid(errors))
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn key(path: &str, name: &str, k: &str) -> String {
    format!("{}[{k}]", child(path, name))
}

fn index(path: &str, name: &str, i: usize) -> String {
    format!("{}[{i}]", child(path, name))
}

impl Compiler {
    fn error(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn string_keyword(&mut self, s: &Map<String, Value>, path: &str, name: &str) -> Option<String> {
        match s.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(other) => {
                self.error(FieldError::type_invalid(
                    child(path, name),
                    other,
                    "must be a string",
                ));
                None
            }
        }
    }

    fn bool_keyword(&mut self, s: &Map<String, Value>, path: &str, name: &str) -> Option<bool> {
        match s.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                self.error(FieldError::type_invalid(
                    child(path, name),
                    other,
                    "must be a boolean",
                ));
                None
            }
        }
    }

    fn count_keyword(&mut self, s: &Map<String, Value>, path: &str, name: &str) -> Option<u64> {
        match s.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            }) {
                Some(n) => Some(n),
                None => {
                    self.error(FieldError::type_invalid(
                        child(path, name),
                        v,
                        "must be a non-negative integer",
                    ));
                    None
                }
            },
        }
    }

    fn number_keyword(&mut self, s: &Map<String, Value>, path: &str, name: &str) -> Option<f64> {
        match s.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_f64() {
                Some(n) => Some(n),
                None => {
                    self.error(FieldError::type_invalid(
                        child(path, name),
                        v,
                        "must be a number",
                    ));
                    None
                }
            },
        }
    }

    /// Compiles one schema object at `path` (a `field.Path` relative to the root schema).
    fn node(&mut self, schema: &Value, path: &str, ctx: Ctx) -> Node {
        let mut node = Node::default();
        let Some(s) = schema.as_object() else {
            self.error(FieldError::type_invalid(
                if path.is_empty() { "<root>" } else { path },
                schema,
                "must be a schema object",
            ));
            return node;
        };

        for (keyword, message) in [
            ("$ref", "$ref is not supported"),
            ("id", "id is not supported"),
            ("additionalItems", "additionalItems is not supported"),
            ("patternProperties", "patternProperties is not supported"),
            ("definitions", "definitions is not supported"),
            ("dependencies", "dependencies is not supported"),
        ] {
            let present = match s.get(keyword) {
                None | Some(Value::Null) => false,
                Some(Value::String(v)) => !v.is_empty(),
                Some(Value::Object(m)) => !m.is_empty(),
                Some(_) => true,
            };
            if present {
                self.error(FieldError::forbidden(child(path, keyword), message));
            }
        }

        let type_name = self.string_keyword(s, path, "type").unwrap_or_default();
        match type_name.as_str() {
            "" => {}
            "null" => self.error(FieldError::forbidden(
                child(path, "type"),
                "type cannot be set to null, use nullable as an alternative",
            )),
            other => match SchemaType::parse(other) {
                Some(t) => node.ty = Some(t),
                None => self.error(FieldError::not_supported(
                    child(path, "type"),
                    &Value::String(other.to_owned()),
                    &TYPES,
                )),
            },
        }

        node.nullable = self.bool_keyword(s, path, "nullable").unwrap_or(false);
        node.default = s.get("default").filter(|v| !v.is_null()).cloned();
        if node.default.is_some() && ctx.in_resource_meta && !ctx.nested {
            self.error(FieldError::forbidden(
                child(path, "default"),
                "must not be set in top-level metadata",
            ));
        }
        node.format_name = self.string_keyword(s, path, "format").unwrap_or_default();
        node.format = match node.ty {
            None | Some(SchemaType::String) => Format::for_string(&node.format_name),
            _ => None,
        };
        if !node.format_name.is_empty() {
            let kept = match node.ty {
                None | Some(SchemaType::String) => node.format.is_some(),
                Some(SchemaType::Integer) => {
                    matches!(node.format_name.as_str(), "int32" | "int64")
                }
                Some(SchemaType::Number) => {
                    matches!(node.format_name.as_str(), "float" | "double")
                }
                _ => false,
            };
            if !kept {
                // kube-apiserver strips formats it does not support before validating.
                node.format_name.clear();
            }
        }
        match s.get("enum") {
            None | Some(Value::Null) => {}
            Some(Value::Array(values)) => node.enum_values = Some(values.clone()),
            Some(other) => self.error(FieldError::type_invalid(
                child(path, "enum"),
                other,
                "must be an array",
            )),
        }
        node.maximum = self.number_keyword(s, path, "maximum");
        node.minimum = self.number_keyword(s, path, "minimum");
        node.exclusive_maximum = self
            .bool_keyword(s, path, "exclusiveMaximum")
            .unwrap_or(false);
        node.exclusive_minimum = self
            .bool_keyword(s, path, "exclusiveMinimum")
            .unwrap_or(false);
        node.multiple_of = self.number_keyword(s, path, "multipleOf");
        if node.multiple_of.is_some_and(|m| m <= 0.0) {
            self.error(FieldError::invalid(
                child(path, "multipleOf"),
                s.get("multipleOf").unwrap_or(&Value::Null),
                "must be greater than zero",
            ));
            node.multiple_of = None;
        }
        node.max_length = self.count_keyword(s, path, "maxLength");
        node.min_length = self.count_keyword(s, path, "minLength");
        node.max_items = self.count_keyword(s, path, "maxItems");
        node.min_items = self.count_keyword(s, path, "minItems");
        node.max_properties = self.count_keyword(s, path, "maxProperties");
        node.min_properties = self.count_keyword(s, path, "minProperties");
        if let Some(pattern) = self.string_keyword(s, path, "pattern")
            && !pattern.is_empty()
        {
            match Regex::new(&pattern) {
                Ok(re) => node.pattern = Some((pattern, re)),
                Err(e) => self.error(FieldError::invalid_str(
                    child(path, "pattern"),
                    &pattern,
                    &format!("must be a valid regular expression, but isn't: {e}"),
                )),
            }
        }
        if self.bool_keyword(s, path, "uniqueItems") == Some(true) {
            self.error(FieldError::forbidden(
                child(path, "uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ));
        }
        match s.get("required") {
            None | Some(Value::Null) => {}
            Some(Value::Array(names)) => {
                for (i, name) in names.iter().enumerate() {
                    match name.as_str() {
                        Some(n) => node.required.push(n.to_owned()),
                        None => self.error(FieldError::type_invalid(
                            index(path, "required", i),
                            name,
                            "must be a string",
                        )),
                    }
                }
            }
            Some(other) => self.error(FieldError::type_invalid(
                child(path, "required"),
                other,
                "must be an array of strings",
            )),
        }

        let preserve = self.bool_keyword(s, path, "x-kubernetes-preserve-unknown-fields");
        if preserve == Some(false) {
            self.error(FieldError::invalid(
                child(path, "x-kubernetes-preserve-unknown-fields"),
                &Value::Bool(false),
                "must be true or undefined",
            ));
        }
        node.preserve_unknown = preserve == Some(true);
        node.embedded = self
            .bool_keyword(s, path, "x-kubernetes-embedded-resource")
            .unwrap_or(false);
        node.int_or_string = self
            .bool_keyword(s, path, "x-kubernetes-int-or-string")
            .unwrap_or(false);
        let list_type = self.string_keyword(s, path, "x-kubernetes-list-type");
        let map_type = self.string_keyword(s, path, "x-kubernetes-map-type");
        let list_map_keys: Option<Vec<String>> = match s.get("x-kubernetes-list-map-keys") {
            None | Some(Value::Null) => None,
            Some(Value::Array(keys)) => Some(
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect(),
            ),
            Some(other) => {
                self.error(FieldError::type_invalid(
                    child(path, "x-kubernetes-list-map-keys"),
                    other,
                    "must be an array of strings",
                ));
                None
            }
        };

        // Children.
        match s.get("items") {
            None | Some(Value::Null) => {}
            Some(Value::Array(_)) => self.error(FieldError::forbidden(
                child(path, "items"),
                "items must be a schema object and not an array",
            )),
            Some(items) => {
                let item_ctx = Ctx {
                    level: Level::Item,
                    ..ctx
                };
                node.items = Some(Box::new(self.node(items, &child(path, "items"), item_ctx)));
            }
        }
        match s.get("properties") {
            None | Some(Value::Null) => {}
            Some(Value::Object(props)) => {
                let mut properties = BTreeMap::new();
                for (name, prop) in props {
                    let meta_field = matches!(name.as_str(), "metadata" | "apiVersion" | "kind");
                    let prop_ctx = Ctx {
                        level: Level::Field,
                        in_resource_meta: ctx.in_resource_meta
                            || (meta_field && (ctx.level == Level::Root || node.embedded)),
                        ..ctx
                    };
                    let prop_path = key(path, "properties", name);
                    if ctx.nested && name == "metadata" {
                        self.error(FieldError::forbidden(
                            prop_path.clone(),
                            "must not be specified in a nested context",
                        ));
                    }
                    let child_node = self.node(prop, &prop_path, prop_ctx);
                    properties.insert(name.clone(), child_node);
                }
                node.properties = properties;
            }
            Some(other) => self.error(FieldError::type_invalid(
                child(path, "properties"),
                other,
                "must be an object of schemas",
            )),
        }
        match s.get("additionalProperties") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(true)) => node.additional = Additional::Any,
            Some(Value::Bool(false)) => node.additional = Additional::Deny,
            Some(additional) => {
                let add_ctx = Ctx {
                    level: Level::Field,
                    ..ctx
                };
                node.additional = Additional::Schema(Box::new(self.node(
                    additional,
                    &child(path, "additionalProperties"),
                    add_ctx,
                )));
            }
        }
        for (name, target) in [("allOf", 0), ("anyOf", 1), ("oneOf", 2)] {
            match s.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(schemas)) => {
                    let nested_ctx = Ctx {
                        nested: true,
                        nested_without_rules: ctx.nested_without_rules || name != "allOf",
                        ..ctx
                    };
                    let nodes: Vec<Node> = schemas
                        .iter()
                        .enumerate()
                        .map(|(i, sub)| self.node(sub, &index(path, name, i), nested_ctx))
                        .collect();
                    match target {
                        0 => node.all_of = nodes,
                        1 => node.any_of = nodes,
                        _ => node.one_of = nodes,
                    }
                }
                Some(other) => self.error(FieldError::type_invalid(
                    child(path, name),
                    other,
                    "must be an array of schemas",
                )),
            }
        }
        if let Some(not) = s.get("not").filter(|v| !v.is_null()) {
            let nested_ctx = Ctx {
                nested: true,
                nested_without_rules: true,
                ..ctx
            };
            node.not = Some(Box::new(self.node(not, &child(path, "not"), nested_ctx)));
        }

        self.check_extensions(
            &mut node,
            s,
            path,
            list_type.as_deref(),
            map_type.as_deref(),
            list_map_keys,
        );
        if ctx.nested {
            self.check_nested(&node, s, path, ctx);
        } else {
            self.check_structural(&node, s, path, ctx, !type_name.is_empty());
            self.check_completeness(&node, path);
        }
        self.rules(&mut node, s, path, ctx);

        node.has_defaults = node.default.is_some()
            || node.properties.values().any(|p| p.has_defaults)
            || node.items.as_ref().is_some_and(|i| i.has_defaults)
            || matches!(&node.additional, Additional::Schema(a) if a.has_defaults);
        node.has_rules = !node.rules.is_empty()
            || node.properties.values().any(|p| p.has_rules)
            || node.items.as_ref().is_some_and(|i| i.has_rules)
            || matches!(&node.additional, Additional::Schema(a) if a.has_rules)
            || node.all_of.iter().any(|n| n.has_rules);
        node
    }

    fn check_extensions(
        &mut self,
        node: &mut Node,
        s: &Map<String, Value>,
        path: &str,
        list_type: Option<&str>,
        map_type: Option<&str>,
        list_map_keys: Option<Vec<String>>,
    ) {
        let type_name = node.ty.map(SchemaType::as_str).unwrap_or_default();
        if let Some(map_type) = map_type {
            if node.ty != Some(SchemaType::Object) {
                self.type_must_be(
                    path,
                    type_name,
                    "object if x-kubernetes-map-type is specified",
                );
            }
            if map_type != "atomic" && map_type != "granular" {
                self.error(FieldError::not_supported(
                    child(path, "x-kubernetes-map-type"),
                    &Value::String(map_type.to_owned()),
                    &["atomic", "granular"],
                ));
            }
        }
        if let Some(list_type) = list_type {
            if node.ty != Some(SchemaType::Array) {
                self.type_must_be(
                    path,
                    type_name,
                    "array if x-kubernetes-list-type is specified",
                );
            } else if list_type == "set"
                && let Some(items) = s.get("items").and_then(Value::as_object)
            {
                let item_type = items
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let item_list = items.get("x-kubernetes-list-type").and_then(Value::as_str);
                let item_map = items.get("x-kubernetes-map-type").and_then(Value::as_str);
                if item_type == "array" && item_list.is_some_and(|t| t != "atomic") {
                    self.error(FieldError::invalid_str(
                        format!("{}.x-kubernetes-list-type", child(path, "items")),
                        item_list.unwrap_or_default(),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
                if item_type == "object" && item_map != Some("atomic") {
                    self.error(FieldError::invalid_str(
                        format!("{}.x-kubernetes-map-type", child(path, "items")),
                        item_map.unwrap_or_default(),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
            }
            if !matches!(list_type, "atomic" | "set" | "map") {
                self.error(FieldError::not_supported(
                    child(path, "x-kubernetes-list-type"),
                    &Value::String(list_type.to_owned()),
                    &["atomic", "set", "map"],
                ));
            }
        }
        let keys = list_map_keys.unwrap_or_default();
        if !keys.is_empty() && list_type != Some("map") {
            match list_type {
                None => self.error(FieldError::required(
                    child(path, "x-kubernetes-list-type"),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )),
                Some(t) => self.error(FieldError::invalid_str(
                    child(path, "x-kubernetes-list-type"),
                    t,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )),
            }
        }
        node.list_type = match list_type {
            Some("set") => ListType::Set,
            Some("map") => {
                if keys.is_empty() {
                    self.error(FieldError::required(
                        child(path, "x-kubernetes-list-map-keys"),
                        "must not be empty if x-kubernetes-list-type is map",
                    ));
                }
                match s.get("items").and_then(Value::as_object) {
                    None => self.error(FieldError::required(
                        child(path, "items"),
                        "must have a schema if x-kubernetes-list-type is map",
                    )),
                    Some(items) => {
                        let item_type = items
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if item_type != "object" {
                            self.error(FieldError::invalid_str(
                                format!("{}.type", child(path, "items")),
                                item_type,
                                "must be object if parent array's x-kubernetes-list-type is map",
                            ));
                        } else {
                            self.check_map_keys(path, items, &keys);
                        }
                    }
                }
                ListType::Map(keys)
            }
            _ => ListType::Atomic,
        };
    }

    fn check_map_keys(&mut self, path: &str, items: &Map<String, Value>, keys: &[String]) {
        let props = items.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = items
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let keys_value = Value::from(keys.to_vec());
        let items_path = child(path, "items");
        for (i, k) in keys.iter().enumerate() {
            match props.and_then(|p| p.get(k)) {
                Some(prop) => {
                    let prop_type = prop.get("type").and_then(Value::as_str).unwrap_or_default();
                    if prop_type == "array" || prop_type == "object" {
                        self.error(FieldError::invalid_str(
                            format!("{}.type", key(&items_path, "properties", k)),
                            "object",
                            "must be a scalar type if parent array's x-kubernetes-list-type is map",
                        ));
                    }
                    if !required.contains(&k.as_str())
                        && prop.get("default").is_none_or(Value::is_null)
                    {
                        self.error(FieldError::required(
                            format!("{}.default", key(&items_path, "properties", k)),
                            "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                        ));
                    }
                    if prop.get("nullable") == Some(&Value::Bool(true)) {
                        self.error(FieldError::forbidden(
                            format!("{}.nullable", key(&items_path, "properties", k)),
                            "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                        ));
                    }
                }
                None => self.error(FieldError::invalid(
                    child(path, "x-kubernetes-list-map-keys"),
                    &keys_value,
                    "entries must all be names of item properties",
                )),
            }
            if keys[..i].contains(k) {
                self.error(FieldError::invalid(
                    child(path, "x-kubernetes-list-map-keys"),
                    &keys_value,
                    "must not contain duplicate entries",
                ));
            }
        }
    }

    fn type_must_be(&mut self, path: &str, actual: &str, detail: &str) {
        if actual.is_empty() {
            self.error(FieldError::required(
                child(path, "type"),
                &format!("must be {detail}"),
            ));
        } else {
            self.error(FieldError::invalid_str(
                child(path, "type"),
                actual,
                &format!("must be {detail}"),
            ));
        }
    }

    /// The structural rules for a node outside `allOf`/`anyOf`/`oneOf`/`not`.
    fn check_structural(
        &mut self,
        node: &Node,
        s: &Map<String, Value>,
        path: &str,
        ctx: Ctx,
        type_written: bool,
    ) {
        let type_name = node.ty.map(SchemaType::as_str).unwrap_or_default();
        if node.ty == Some(SchemaType::Array) && s.get("items").is_none_or(Value::is_null) {
            self.error(FieldError::required(
                child(path, "items"),
                "must be specified",
            ));
        }
        let has_additional = !matches!(node.additional, Additional::Absent);
        if has_additional && ctx.level == Level::Root {
            self.error(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if has_additional
            && !node.properties.is_empty()
            && !matches!(node.additional, Additional::Any)
        {
            self.error(FieldError::forbidden(
                child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if node.int_or_string && node.preserve_unknown {
            self.error(FieldError::invalid(
                child(path, "x-kubernetes-preserve-unknown-fields"),
                &Value::Bool(true),
                "must be false if x-kubernetes-int-or-string is true",
            ));
        }
        if node.int_or_string && node.embedded {
            self.error(FieldError::invalid(
                child(path, "x-kubernetes-embedded-resource"),
                &Value::Bool(true),
                "must be false if x-kubernetes-int-or-string is true",
            ));
        }
        if node.embedded && node.ty != Some(SchemaType::Object) {
            self.type_must_be(
                path,
                type_name,
                "object if x-kubernetes-embedded-resource is true",
            );
        } else if !type_written && !node.int_or_string && !node.preserve_unknown {
            let detail = match ctx.level {
                Level::Root => "must not be empty at the root",
                Level::Item => "must not be empty for specified array items",
                Level::Field => "must not be empty for specified object fields",
            };
            self.error(FieldError::required(child(path, "type"), detail));
        }
        if node.embedded && has_additional {
            self.error(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must not be used if x-kubernetes-embedded-resource is set",
            ));
        }
        if ctx.level == Level::Root && node.ty.is_some() && node.ty != Some(SchemaType::Object) {
            self.error(FieldError::invalid_str(
                child(path, "type"),
                type_name,
                "must be object at the root",
            ));
        }
        if ctx.in_resource_meta && node.embedded {
            self.error(FieldError::forbidden(
                child(path, "x-kubernetes-embedded-resource"),
                "must not be used inside of resource meta",
            ));
        }
        let check_meta = ctx.level == Level::Root || node.embedded;
        if check_meta {
            for name in ["kind", "apiVersion"] {
                if let Some(prop) = node.properties.get(name)
                    && prop.ty != Some(SchemaType::String)
                {
                    self.error(FieldError::invalid_str(
                        format!("{}.type", key(path, "properties", name)),
                        prop.ty.map(SchemaType::as_str).unwrap_or_default(),
                        "must be string",
                    ));
                }
            }
        }
        if let Some(metadata) = node.properties.get("metadata") {
            let meta_path = key(path, "properties", "metadata");
            if check_meta && metadata.ty != Some(SchemaType::Object) {
                self.error(FieldError::invalid_str(
                    format!("{meta_path}.type"),
                    metadata.ty.map(SchemaType::as_str).unwrap_or_default(),
                    "must be object",
                ));
            }
            if ctx.level == Level::Root
                && let Some(meta_schema) = s
                    .get("properties")
                    .and_then(|p| p.get("metadata"))
                    .and_then(Value::as_object)
                && !root_metadata_is_implicit(meta_schema)
            {
                self.error(FieldError::forbidden(
                    meta_path,
                    "must not specify anything other than name and generateName, but metadata is implicitly specified",
                ));
            }
        }
        if node.embedded && !node.preserve_unknown && node.properties.is_empty() {
            self.error(FieldError::required(
                child(path, "properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ));
        }
        // allOf/anyOf/oneOf/not may only hold value validations; the int-or-string
        // pattern (`anyOf: [{type: integer}, {type: string}]`, possibly as allOf[0]) is the
        // one place a type is allowed there.
        let int_or_string_any_of = is_int_or_string_any_of(s.get("anyOf"));
        let int_or_string_all_of = s
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .is_some_and(|first| is_int_or_string_any_of(first.get("anyOf")));
        self.check_junctor_types(s, path, int_or_string_any_of, int_or_string_all_of);
    }

    /// Type keywords inside junctors are only errors outside the int-or-string patterns;
    /// [`Compiler::check_nested`] skips them and they are reported here.
    fn check_junctor_types(
        &mut self,
        s: &Map<String, Value>,
        path: &str,
        skip_any_of: bool,
        skip_first_all_of_any_of: bool,
    ) {
        let check = |this: &mut Compiler, sub: &Value, sub_path: String, skip_any: bool| {
            this.junctor_type_errors(sub, &sub_path, skip_any);
        };
        if !skip_any_of && let Some(list) = s.get("anyOf").and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                check(self, sub, index(path, "anyOf", i), false);
            }
        }
        if let Some(list) = s.get("allOf").and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                check(
                    self,
                    sub,
                    index(path, "allOf", i),
                    skip_first_all_of_any_of && i == 0,
                );
            }
        }
        if let Some(list) = s.get("oneOf").and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                check(self, sub, index(path, "oneOf", i), false);
            }
        }
        if let Some(sub) = s.get("not").filter(|v| !v.is_null()) {
            check(self, sub, child(path, "not"), false);
        }
    }

    /// Reports `type` set anywhere inside one junctor branch (recursively, through its own
    /// junctors, properties and items).
    fn junctor_type_errors(&mut self, sub: &Value, path: &str, skip_any_of: bool) {
        let Some(s) = sub.as_object() else {
            return;
        };
        if s.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            self.error(FieldError::forbidden(
                child(path, "type"),
                "must be empty to be structural",
            ));
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                self.junctor_type_errors(prop, &key(path, "properties", name), false);
            }
        }
        if let Some(items) = s.get("items") {
            self.junctor_type_errors(items, &child(path, "items"), false);
        }
        if let Some(additional) = s.get("additionalProperties").filter(|v| v.is_object()) {
            self.junctor_type_errors(additional, &child(path, "additionalProperties"), false);
        }
        let skip_first = !skip_any_of
            && s.get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .is_some_and(|f| is_int_or_string_any_of(f.get("anyOf")));
        self.check_junctor_types(
            s,
            path,
            skip_any_of || is_int_or_string_any_of(s.get("anyOf")),
            skip_first,
        );
    }

    /// What `allOf`/`anyOf`/`oneOf`/`not` branches may not contain (besides `type`,
    /// reported by [`Compiler::check_junctor_types`]).
    fn check_nested(&mut self, node: &Node, s: &Map<String, Value>, path: &str, ctx: Ctx) {
        if !matches!(node.additional, Additional::Absent) {
            self.error(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must be undefined to be structural",
            ));
        }
        if node.default.is_some() {
            self.error(FieldError::forbidden(
                child(path, "default"),
                "must be undefined to be structural",
            ));
        }
        for name in ["title", "description"] {
            if s.get(name)
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty())
            {
                self.error(FieldError::forbidden(
                    child(path, name),
                    "must be empty to be structural",
                ));
            }
        }
        if node.nullable {
            self.error(FieldError::forbidden(
                child(path, "nullable"),
                "must be false to be structural",
            ));
        }
        for (name, set, detail) in [
            (
                "x-kubernetes-preserve-unknown-fields",
                node.preserve_unknown,
                "must be false to be structural",
            ),
            (
                "x-kubernetes-embedded-resource",
                node.embedded,
                "must be false to be structural",
            ),
            (
                "x-kubernetes-int-or-string",
                node.int_or_string,
                "must be false to be structural",
            ),
            (
                "x-kubernetes-list-map-keys",
                matches!(&node.list_type, ListType::Map(keys) if !keys.is_empty()),
                "must be empty to be structural",
            ),
            (
                "x-kubernetes-list-type",
                s.get("x-kubernetes-list-type")
                    .is_some_and(|v| !v.is_null()),
                "must be undefined to be structural",
            ),
            (
                "x-kubernetes-map-type",
                s.get("x-kubernetes-map-type").is_some_and(|v| !v.is_null()),
                "must be undefined to be structural",
            ),
            (
                "x-kubernetes-validations",
                ctx.nested_without_rules
                    && s.get("x-kubernetes-validations")
                        .and_then(Value::as_array)
                        .is_some_and(|r| !r.is_empty()),
                "must be empty to be structural",
            ),
        ] {
            if set {
                self.error(FieldError::forbidden(child(path, name), detail));
            }
        }
    }

    /// Properties and items named inside junctors must exist in the structural part.
    fn check_completeness(&mut self, node: &Node, path: &str) {
        let mut junctors: Vec<(&Node, String)> = Vec::new();
        for (name, list) in [
            ("allOf", &node.all_of),
            ("anyOf", &node.any_of),
            ("oneOf", &node.one_of),
        ] {
            for (i, sub) in list.iter().enumerate() {
                junctors.push((sub, index(path, name, i)));
            }
        }
        if let Some(not) = &node.not {
            junctors.push((not, child(path, "not")));
        }
        for (sub, sub_path) in junctors {
            self.complete(node, path, sub, &sub_path);
        }
    }

    fn complete(&mut self, structural: &Node, s_path: &str, value: &Node, v_path: &str) {
        for (name, v_prop) in &value.properties {
            let v_prop_path = key(v_path, "properties", name);
            let s_prop_path = key(s_path, "properties", name);
            match structural.properties.get(name) {
                Some(s_prop) => self.complete(s_prop, &s_prop_path, v_prop, &v_prop_path),
                None => self.error(FieldError::required(
                    s_prop_path,
                    &format!("because it is defined in {v_prop_path}"),
                )),
            }
        }
        if let Some(v_items) = &value.items {
            let v_items_path = child(v_path, "items");
            let s_items_path = child(s_path, "items");
            match &structural.items {
                Some(s_items) => self.complete(s_items, &s_items_path, v_items, &v_items_path),
                None => self.error(FieldError::required(
                    s_items_path,
                    &format!("because it is defined in {v_items_path}"),
                )),
            }
        }
        for (name, list) in [
            ("allOf", &value.all_of),
            ("anyOf", &value.any_of),
            ("oneOf", &value.one_of),
        ] {
            for (i, sub) in list.iter().enumerate() {
                self.complete(structural, s_path, sub, &index(v_path, name, i));
            }
        }
        if let Some(not) = &value.not {
            self.complete(structural, s_path, not, &child(v_path, "not"));
        }
    }

    fn rules(&mut self, node: &mut Node, s: &Map<String, Value>, path: &str, ctx: Ctx) {
        let Some(rules) = s.get("x-kubernetes-validations") else {
            return;
        };
        let Some(rules) = rules.as_array() else {
            if !rules.is_null() {
                self.error(FieldError::type_invalid(
                    child(path, "x-kubernetes-validations"),
                    rules,
                    "must be an array",
                ));
            }
            return;
        };
        if ctx.nested_without_rules {
            return;
        }
        let has_newline = |t: &str| t.contains(['\n', '\r']);
        for (i, rule) in rules.iter().enumerate() {
            let rule_path = index(path, "x-kubernetes-validations", i);
            let get = |k: &str| rule.get(k).and_then(Value::as_str).unwrap_or_default();
            let (text, message, message_expression) =
                (get("rule"), get("message"), get("messageExpression"));
            let mut broken = false;
            if text.trim().is_empty() {
                self.error(FieldError::required(
                    child(&rule_path, "rule"),
                    "rule is not specified",
                ));
                broken = true;
            } else if !message.is_empty() && message.trim().is_empty() {
                self.error(FieldError::invalid_str(
                    child(&rule_path, "message"),
                    message,
                    "must be non-empty if specified",
                ));
                broken = true;
            } else if has_newline(message.trim()) {
                self.error(FieldError::invalid_str(
                    child(&rule_path, "message"),
                    message,
                    "must not contain line breaks",
                ));
                broken = true;
            } else if has_newline(text.trim()) && message.trim().is_empty() {
                self.error(FieldError::required(
                    child(&rule_path, "message"),
                    "message must be specified if rule contains line breaks",
                ));
                broken = true;
            }
            if !message_expression.is_empty() && message_expression.trim().is_empty() {
                self.error(FieldError::required(
                    child(&rule_path, "messageExpression"),
                    "messageExpression must be non-empty if specified",
                ));
                broken = true;
            }
            if let Some(reason) = rule.get("reason").and_then(Value::as_str)
                && !RULE_REASONS.contains(&reason)
            {
                self.error(FieldError::not_supported(
                    child(&rule_path, "reason"),
                    &Value::String(reason.to_owned()),
                    &RULE_REASONS,
                ));
                broken = true;
            }
            let field_path = get("fieldPath");
            if !field_path.is_empty() && (field_path.trim().is_empty() || has_newline(field_path)) {
                self.error(FieldError::invalid_str(
                    child(&rule_path, "fieldPath"),
                    field_path,
                    "must be non-empty if specified",
                ));
                broken = true;
            }
            if !broken && let Some(idx) = self.programs.add(&rule_path, rule) {
                node.rules.push(idx);
            }
        }
    }
}

/// `[{type: integer}, {type: string}]`, exactly: the int-or-string `anyOf` pattern.
fn is_int_or_string_any_of(any_of: Option<&Value>) -> bool {
    let Some(list) = any_of.and_then(Value::as_array) else {
        return false;
    };
    let only_type = |v: &Value, t: &str| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.get("type").and_then(Value::as_str) == Some(t))
    };
    list.len() == 2 && only_type(&list[0], "integer") && only_type(&list[1], "string")
}

/// The root `metadata` schema may only be `type: object` with at most the `name` and
/// `generateName` properties (whose own schemas kube-apiserver does not look at here).
fn root_metadata_is_implicit(meta: &Map<String, Value>) -> bool {
    meta.iter().all(|(k, v)| match k.as_str() {
        "type" => true,
        "default" => true, // reported separately as a forbidden default
        "properties" => {
            v.as_object().is_some_and(|props| {
                !props.is_empty() && props.keys().all(|p| p == "name" || p == "generateName")
            }) || v.as_object().is_some_and(Map::is_empty)
        }
        _ => false,
    })
}
