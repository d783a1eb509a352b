//! Validating an object against a compiled schema, with the kube-openapi validator's
//! messages, then list-type uniqueness, then CEL rules.

use std::collections::HashMap;

use fleet_api::error::chain;
use serde_json::Value;

use super::cel::{EvalError, to_cel};
use super::path::{Path, Seg};
use super::{Additional, ListType, Node, SchemaType, StructuralSchema};
use crate::goformat::{go_format_float, quote_into};
use crate::validation::{CauseReason, FieldError};

/// Reasons that stop CEL rules from running, as in kube-apiserver's `hasBlockingErr`.
fn is_blocking(e: &FieldError) -> bool {
    matches!(
        e.reason,
        CauseReason::FieldValueNotSupported
            | CauseReason::FieldValueRequired
            | CauseReason::FieldValueTooLong
            | CauseReason::FieldValueTooMany
            | CauseReason::FieldValueTypeInvalid
    )
}

pub(super) fn validate(
    schema: &StructuralSchema,
    object: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut v = Validator {
        errors: Vec::new(),
        list_errors: Vec::new(),
        path: Path::default(),
    };
    v.node(&schema.root, object, old);
    let mut errors = v.errors;
    errors.append(&mut v.list_errors);
    if schema.root.has_rules {
        if errors.iter().any(is_blocking) {
            errors.push(FieldError::with_value(
                "<nil>",
                CauseReason::FieldValueInvalid,
                &Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            let mut runner = RuleRunner {
                schema,
                path: Path::default(),
                errors: Vec::new(),
            };
            runner.node(&schema.root, object, old);
            errors.append(&mut runner.errors);
        }
    }
    errors
}

struct Validator<'a> {
    errors: Vec<FieldError>,
    /// List-type errors come after the OpenAPI ones, as kube-apiserver runs them after.
    list_errors: Vec<FieldError>,
    path: Path<'a>,
}

/// The JSON type of a value as the OpenAPI validator names it, and its Go "format".
fn observed_type(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Number(n) if n.is_i64() || n.is_u64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
    }
}

/// Whether a number is integral (`1.0` counts, as in kube-openapi).
fn is_integral(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn format_bound(bound: f64, value_is_integer: bool) -> String {
    if value_is_integer && bound.fract() == 0.0 && bound.abs() < 9.2e18 {
        (bound as i64).to_string()
    } else {
        go_format_float(bound)
    }
}

impl<'a> Validator<'a> {
    fn name(&self) -> String {
        self.path.openapi()
    }

    fn field(&self) -> String {
        self.path.openapi_field()
    }

    fn type_error(&mut self, expected: &str, observed: &str) {
        let mut detail = format!("{} in body must be of type {expected}: ", self.name());
        quote_into(&mut detail, observed);
        self.errors.push(FieldError::type_invalid(
            self.field(),
            &Value::String(observed.to_owned()),
            &detail,
        ));
    }

    /// kube-openapi's type validator, quirks included: formats of integers/numbers name
    /// the expected type, and a string or array value passes a formatted non-numeric type.
    fn type_ok(&mut self, node: &Node, value: &Value) -> bool {
        let expected: &[&str] = if node.int_or_string {
            &["integer", "string"]
        } else {
            match node.ty {
                Some(t) => match t {
                    SchemaType::Object => &["object"],
                    SchemaType::Array => &["array"],
                    SchemaType::String => &["string"],
                    SchemaType::Integer => &["integer"],
                    SchemaType::Number => &["number"],
                    SchemaType::Boolean => &["boolean"],
                },
                None => return true,
            }
        };
        let (observed, data_format) = observed_type(value);
        let has = |t: &str| expected.contains(&t);
        let float_int = matches!(value, Value::Number(n) if !(n.is_i64() || n.is_u64()) && is_integral(n))
            && has("integer");
        let int_float = observed == "integer" && has("number");
        let string_or_array = matches!(value, Value::String(_) | Value::Array(_));
        let format = node.format_name.as_str();
        let matches_format = has(observed) || data_format == format || float_int || int_float;
        if !(string_or_array || format.is_empty() || matches_format) {
            self.type_error(format, data_format);
            return false;
        }
        let numeric = has("number") || has("integer");
        if string_or_array && !(numeric || format.is_empty()) {
            return true;
        }
        if !(has(observed) || float_int || int_float) {
            self.type_error(&expected.join(","), observed);
            return false;
        }
        true
    }

    /// Validates `value` against `node`; `old` is the correlated value of the stored object
    /// on an update. As with kube-apiserver's validation ratcheting, a value equal to its
    /// old value is not validated again: what was accepted once stays acceptable.
    fn node(&mut self, node: &'a Node, value: &'a Value, old: Option<&'a Value>) {
        if old.is_some_and(|o| json_eq(o, value)) {
            return;
        }
        if value.is_null() {
            if !node.nullable && (node.ty.is_some() || node.int_or_string) {
                let expected = if node.int_or_string {
                    "integer,string"
                } else {
                    node.ty.map(SchemaType::as_str).unwrap_or_default()
                };
                self.type_error(expected, "null");
            }
            return;
        }
        if !self.type_ok(node, value) {
            return;
        }
        if let Some(allowed) = &node.enum_values
            && !allowed.iter().any(|a| json_eq(a, value))
        {
            let supported: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            self.errors
                .push(FieldError::not_supported(self.field(), value, &supported));
        }
        match value {
            Value::String(s) => self.string(node, s, value),
            Value::Number(n) => self.number(node, n, value),
            Value::Array(items) => self.array(node, items, old),
            Value::Object(map) => self.object(node, map, old),
            _ => {}
        }
        self.junctors(node, value, old);
    }

    fn string(&mut self, node: &Node, s: &str, value: &Value) {
        if node.max_length.is_some() || node.min_length.is_some() {
            let chars = s.chars().count() as u64;
            if let Some(max) = node.max_length
                && chars > max
            {
                self.errors
                    .push(FieldError::too_long(self.field(), max as usize));
            }
            if let Some(min) = node.min_length
                && chars < min
            {
                let detail = format!(
                    "{} in body should be at least {min} chars long",
                    self.name()
                );
                self.errors
                    .push(FieldError::invalid(self.field(), value, &detail));
            }
        }
        if let Some((pattern, re)) = &node.pattern
            && !re.is_match(s)
        {
            let detail = format!("{} in body should match '{pattern}'", self.name());
            self.errors
                .push(FieldError::invalid(self.field(), value, &detail));
        }
        if let Some(format) = node.format
            && !format.accepts(s)
        {
            let mut detail = format!(
                "{} in body must be of type {}: ",
                self.name(),
                node.format_name
            );
            quote_into(&mut detail, s);
            self.errors
                .push(FieldError::type_invalid(self.field(), value, &detail));
        }
    }

    fn number(&mut self, node: &Node, n: &serde_json::Number, value: &Value) {
        let is_int = n.is_i64() || n.is_u64();
        let x = n.as_f64().unwrap_or(0.0);
        if let Some(max) = node.maximum {
            let (bad, relation) = if node.exclusive_maximum {
                (x >= max, "less than")
            } else {
                (x > max, "less than or equal to")
            };
            if bad {
                let detail = format!(
                    "{} in body should be {relation} {}",
                    self.name(),
                    format_bound(max, is_int)
                );
                self.errors
                    .push(FieldError::invalid(self.field(), value, &detail));
            }
        }
        if let Some(min) = node.minimum {
            let (bad, relation) = if node.exclusive_minimum {
                (x <= min, "greater than")
            } else {
                (x < min, "greater than or equal to")
            };
            if bad {
                let detail = format!(
                    "{} in body should be {relation} {}",
                    self.name(),
                    format_bound(min, is_int)
                );
                self.errors
                    .push(FieldError::invalid(self.field(), value, &detail));
            }
        }
        if let Some(m) = node.multiple_of {
            let q = x / m;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                let detail = format!(
                    "{} in body should be a multiple of {}",
                    self.name(),
                    format_bound(m, is_int)
                );
                self.errors
                    .push(FieldError::invalid(self.field(), value, &detail));
            }
        }
    }

    fn array(&mut self, node: &'a Node, items: &'a [Value], old: Option<&'a Value>) {
        let len = items.len();
        if let Some(min) = node.min_items
            && (len as u64) < min
        {
            let detail = format!("{} in body should have at least {min} items", self.name());
            self.errors.push(FieldError::invalid(
                self.field(),
                &Value::from(len),
                &detail,
            ));
        }
        if let Some(max) = node.max_items
            && len as u64 > max
        {
            self.errors
                .push(FieldError::too_many(self.field(), len, max as usize));
        }
        match &node.list_type {
            ListType::Atomic => {}
            ListType::Set => self.list_set(items),
            ListType::Map(keys) => self.list_map(items, keys),
        }
        if let Some(item_node) = node.items.as_deref() {
            for (i, item) in items.iter().enumerate() {
                self.path.push(Seg::Index(i));
                self.node(item_node, item, correlated_item(&node.list_type, old, item));
                self.path.pop();
            }
        }
    }

    /// Indexes of the second occurrence of each repeated value (kube's list-set check).
    fn duplicates<'v>(keys: impl Iterator<Item = String> + 'v) -> Vec<usize> {
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut out = Vec::new();
        for (i, key) in keys.enumerate() {
            let count = seen.entry(key).or_insert(0);
            *count += 1;
            if *count == 2 {
                out.push(i);
            }
        }
        out
    }

    fn list_set(&mut self, items: &[Value]) {
        if items.len() <= 1 {
            return;
        }
        for i in Self::duplicates(items.iter().map(canonical)) {
            self.path.push(Seg::Index(i));
            self.list_errors
                .push(FieldError::duplicate(self.path.field(), &items[i]));
            self.path.pop();
        }
    }

    fn list_map(&mut self, items: &[Value], keys: &[String]) {
        for (i, item) in items.iter().enumerate() {
            if !item.is_null() && !item.is_object() {
                self.path.push(Seg::Index(i));
                self.list_errors.push(FieldError::invalid(
                    self.path.field(),
                    item,
                    "must be an object for an array of list-type map",
                ));
                self.path.pop();
                return;
            }
        }
        if items.len() <= 1 {
            return;
        }
        let key_of = |item: &Value| -> Value {
            let mut key = serde_json::Map::new();
            if let Some(obj) = item.as_object() {
                for k in keys {
                    if let Some(v) = obj.get(k) {
                        key.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(key)
        };
        let key_values: Vec<Value> = items.iter().map(key_of).collect();
        for i in Self::duplicates(key_values.iter().map(canonical)) {
            self.path.push(Seg::Index(i));
            self.list_errors
                .push(FieldError::duplicate(self.path.field(), &key_values[i]));
            self.path.pop();
        }
    }

    fn object(
        &mut self,
        node: &'a Node,
        map: &'a serde_json::Map<String, Value>,
        old: Option<&'a Value>,
    ) {
        let count = map.len();
        if let Some(min) = node.min_properties
            && (count as u64) < min
        {
            let detail = format!(
                "{} in body should have at least {min} properties",
                self.name()
            );
            self.errors.push(FieldError::invalid(
                self.field(),
                &Value::from(count),
                &detail,
            ));
        }
        if let Some(max) = node.max_properties
            && count as u64 > max
        {
            self.errors
                .push(FieldError::too_many(self.field(), count, max as usize));
        }
        for (key, child) in map {
            let old_child = old.and_then(|o| o.get(key));
            if let Some(prop) = node.properties.get(key) {
                self.path.push(Seg::Prop(key));
                self.node(prop, child, old_child);
                self.path.pop();
            } else {
                match &node.additional {
                    Additional::Schema(schema) => {
                        self.path.push(Seg::Key(key));
                        self.node(schema, child, old_child);
                        self.path.pop();
                    }
                    Additional::Deny => {
                        let detail =
                            format!("{}.{key} in body is a forbidden property", self.name());
                        self.errors
                            .push(FieldError::invalid_str(self.field(), key, &detail));
                    }
                    Additional::Absent | Additional::Any => {}
                }
            }
        }
        for name in &node.required {
            if !map.contains_key(name) {
                let field = format!("{}.{name}", self.name());
                let field = field.strip_prefix('.').unwrap_or(&field).to_owned();
                self.errors.push(FieldError::required(field, ""));
            }
        }
        if node.embedded && !node.is_resource_root {
            for name in ["apiVersion", "kind"] {
                if map
                    .get(name)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    let mut field = self.path.field();
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(name);
                    self.errors
                        .push(FieldError::required(field, "must not be empty"));
                }
            }
        }
    }

    fn junctors(&mut self, node: &'a Node, value: &'a Value, old: Option<&'a Value>) {
        for sub in &node.all_of {
            self.node(sub, value, old);
        }
        if !node.any_of.is_empty() {
            let mut first_failure: Option<Vec<FieldError>> = None;
            let mut passed = false;
            for sub in &node.any_of {
                let mark = self.errors.len();
                self.node(sub, value, old);
                if self.errors.len() == mark {
                    passed = true;
                    break;
                }
                let failure: Vec<FieldError> = self.errors.drain(mark..).collect();
                first_failure.get_or_insert(failure);
            }
            if !passed {
                let mut detail = String::new();
                quote_into(&mut detail, &self.name());
                detail.push_str(" must validate at least one schema (anyOf)");
                self.errors
                    .push(FieldError::invalid_str(self.field(), "", &detail));
                self.errors.extend(first_failure.unwrap_or_default());
            }
        }
        if !node.one_of.is_empty() {
            let mut passing = 0;
            let mut first_failure: Option<Vec<FieldError>> = None;
            for sub in &node.one_of {
                let mark = self.errors.len();
                self.node(sub, value, old);
                if self.errors.len() == mark {
                    passing += 1;
                } else {
                    let failure: Vec<FieldError> = self.errors.drain(mark..).collect();
                    first_failure.get_or_insert(failure);
                }
            }
            if passing != 1 {
                let mut detail = String::new();
                quote_into(&mut detail, &self.name());
                detail.push_str(" must validate one and only one schema (oneOf)");
                self.errors
                    .push(FieldError::invalid_str(self.field(), "", &detail));
                if passing == 0 {
                    self.errors.extend(first_failure.unwrap_or_default());
                }
            }
        }
        if let Some(not) = &node.not {
            let mark = self.errors.len();
            self.node(not, value, old);
            let passed = self.errors.len() == mark;
            self.errors.truncate(mark);
            if passed {
                let mut detail = String::new();
                quote_into(&mut detail, &self.name());
                detail.push_str(" must not validate the schema (not)");
                self.errors
                    .push(FieldError::invalid_str(self.field(), "", &detail));
            }
        }
    }
}

/// The old item an array item correlates with on an update: only items of
/// `x-kubernetes-list-type: map` lists correlate, by their key fields.
fn correlated_item<'v>(
    list_type: &ListType,
    old: Option<&'v Value>,
    item: &Value,
) -> Option<&'v Value> {
    let ListType::Map(keys) = list_type else {
        return None;
    };
    old?.as_array()?.iter().find(|o| {
        keys.iter().all(|k| match (o.get(k), item.get(k)) {
            (Some(a), Some(b)) => json_eq(a, b),
            (None, None) => true,
            _ => false,
        })
    })
}

/// A canonical text of a value for uniqueness checks (object keys are sorted).
fn canonical(value: &Value) -> String {
    value.to_string()
}

/// The CEL pass: walks only subtrees that hold rules.
struct RuleRunner<'a> {
    schema: &'a StructuralSchema,
    path: Path<'a>,
    errors: Vec<FieldError>,
}

impl<'a> RuleRunner<'a> {
    fn node(&mut self, node: &'a Node, value: &'a Value, old: Option<&'a Value>) {
        if !node.has_rules || value.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        for &index in &node.rules {
            self.run(node, index, value, old);
        }
        for sub in &node.all_of {
            self.node(sub, value, old);
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let (seg, schema) = match node.properties.get(key) {
                        Some(prop) => (Seg::Prop(key), prop),
                        None => match &node.additional {
                            Additional::Schema(s) => (Seg::Key(key), &**s),
                            _ => continue,
                        },
                    };
                    if !schema.has_rules {
                        continue;
                    }
                    let old_child = old.and_then(|o| o.get(key));
                    self.path.push(seg);
                    self.node(schema, child, old_child);
                    self.path.pop();
                }
            }
            Value::Array(items) => {
                let Some(item_node) = node.items.as_deref().filter(|n| n.has_rules) else {
                    return;
                };
                for (i, item) in items.iter().enumerate() {
                    let old_item = correlated_item(&node.list_type, old, item);
                    self.path.push(Seg::Index(i));
                    self.node(item_node, item, old_item);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }

    fn run(&mut self, node: &Node, index: usize, value: &Value, old: Option<&Value>) {
        let programs = &self.schema.cel;
        let rule = programs.rule(index);
        if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
            // Transition rules only run on updates where an old value correlates.
            return;
        }
        if !rule.uses_old_self && old.is_some_and(|o| json_eq(o, value)) {
            // Ratcheting: an unchanged value is not held to rules it was accepted under.
            return;
        }
        let this = to_cel(Some(node), value);
        let old_cel = if !rule.uses_old_self {
            None
        } else if rule.optional_old_self {
            programs.optional(old.map(|o| to_cel(Some(node), o)))
        } else {
            old.map(|o| to_cel(Some(node), o))
        };
        let type_name = Value::String(
            node.ty
                .map(SchemaType::as_str)
                .unwrap_or_default()
                .to_owned(),
        );
        let field = self.path.field();
        match programs.eval(index, this.clone(), old_cel.clone()) {
            Ok(true) => {}
            Ok(false) => {
                let field = match &rule.field_path {
                    Some(relative) => super::path::join_field(&field, relative),
                    None => field,
                };
                let detail = programs
                    .message(index, this, old_cel)
                    .or_else(|| rule.message.clone())
                    .unwrap_or_else(|| format!("failed rule: {}", rule.source));
                let scalar = !matches!(value, Value::Object(_) | Value::Array(_));
                let error = match rule.reason {
                    Some(CauseReason::FieldValueForbidden) => FieldError::forbidden(field, &detail),
                    Some(CauseReason::FieldValueRequired) => FieldError::required(field, &detail),
                    Some(CauseReason::FieldValueDuplicate) if scalar => {
                        FieldError::duplicate(field, value)
                    }
                    Some(CauseReason::FieldValueDuplicate) => {
                        FieldError::without_value(field, CauseReason::FieldValueDuplicate, "")
                    }
                    _ if scalar => FieldError::invalid(field, value, &detail),
                    _ => FieldError::without_value(field, CauseReason::FieldValueInvalid, &detail),
                };
                self.errors.push(error);
            }
            Err(EvalError::NoSuchOverload(e)) => self.errors.push(FieldError::invalid(
                field,
                &type_name,
                &format!(
                    "'{}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                    chain(&e),
                    rule.error_string()
                ),
            )),
            Err(e) => self.errors.push(FieldError::invalid(
                field,
                &type_name,
                &format!("{} evaluating rule: {}", chain(&e), rule.error_string()),
            )),
        }
    }
}
