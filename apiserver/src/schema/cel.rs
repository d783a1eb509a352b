//! `x-kubernetes-validations`: CEL rules compiled once per schema and evaluated per write.
//!
//! Rules are parsed with the `cel` crate (its standard library plus its strings, lists and
//! math extensions). Two rewrites make them behave like kube-apiserver's CEL and keep them
//! fast: a `.matches('<literal>')` call becomes a call of a function holding the regular
//! expression compiled once (the crate would compile it on every evaluation), and
//! `duration(x)` reads Go's `µs`/`μs` unit, which the crate does not know, as `us`.
//! A rule that cannot be parsed, calls a function this library lacks, or has a literal
//! pattern that is no regular expression, is skipped and reported by
//! [`super::StructuralSchema::skipped_rules`] (kube-apiserver would have type-checked it
//! when the CRD was created, so such a CRD is refused or enforced there). Cost budgets are
//! not computed.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::common::ast::{CallExpr, Expr, LiteralValue};
use cel::extractors::This;
use cel::objects::{Key, Map as CelMap};
use cel::parser::Expression;
use cel::{Context, Env, ExecutionError, Value as CelValue};
use regex::Regex;
use serde_json::Value;

use super::{Node, SchemaType};
use crate::validation::CauseReason;

/// An `x-kubernetes-validations` rule that is not enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// Where the rule is, relative to the `openAPIV3Schema`
    /// (`properties[spec].properties[pollingInterval].x-kubernetes-validations[0]`).
    pub path: String,
    /// The rule's CEL text.
    pub rule: String,
    /// Why it could not be compiled.
    pub reason: String,
}

/// One compiled rule.
pub(crate) struct Rule {
    /// The rule as written, trimmed.
    pub(crate) source: String,
    pub(crate) message: Option<String>,
    message_expression: Option<Expression>,
    pub(crate) reason: Option<CauseReason>,
    /// `fieldPath`, normalized to a relative `field.Path` (`spec.x`, `items[key]`).
    pub(crate) field_path: Option<String>,
    expression: Expression,
    pub(crate) uses_old_self: bool,
    pub(crate) optional_old_self: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("source", &self.source)
            .finish()
    }
}

impl Rule {
    /// kube-apiserver's `ruleErrorString`: the message, else the rule.
    pub(crate) fn error_string(&self) -> &str {
        self.message.as_deref().unwrap_or(&self.source)
    }
}

/// Every rule of one schema, and the CEL context holding their helper functions.
#[derive(Default)]
pub(crate) struct Programs {
    rules: Vec<Rule>,
    skipped: Vec<SkippedRule>,
    /// Holds the per-schema regex functions; `None` until the first rule compiles.
    context: Option<Context<'static, 'static>>,
    next_function: usize,
}

impl std::fmt::Debug for Programs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Programs")
            .field("rules", &self.rules)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The environment every rule compiles and runs in.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    for extension in [
        cel::extensions::strings as fn(&mut Env) -> Result<(), cel::DeclarationError>,
        cel::extensions::lists,
        cel::extensions::math,
    ] {
        if let Err(e) = env.add_extension(extension) {
            tracing::warn!(error = %e, "CEL extension not available");
        }
    }
    Arc::new(env)
});

/// Which function names the environment declares, probed once each.
static DECLARED: LazyLock<Mutex<HashMap<String, bool>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn env_declares(name: &str) -> bool {
    // Operators and the interpreter's internal helpers are always available.
    if name.starts_with(['_', '@', '!', '-']) {
        return true;
    }
    let mut declared = DECLARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(known) = declared.get(name) {
        return *known;
    }
    // A context refuses to add a function the environment already declares: that is
    // the only public way to ask the environment whether it has an overload.
    let mut probe = Context::with_env(ENV.clone());
    let known = probe.add_function(name, |a: i64| a).is_err();
    declared.insert(name.to_owned(), known);
    known
}

const GO_DURATION_FN: &str = "fleetbenchGoDuration";

impl Programs {
    /// The rules that are skipped.
    pub(crate) fn skipped(&self) -> &[SkippedRule] {
        &self.skipped
    }

    /// How many rules are enforced.
    pub(crate) fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub(crate) fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    fn skip(&mut self, path: &str, rule: &str, reason: String) -> Option<usize> {
        tracing::warn!(
            path,
            rule,
            reason,
            "x-kubernetes-validations rule not enforced"
        );
        self.skipped.push(SkippedRule {
            path: path.to_owned(),
            rule: rule.to_owned(),
            reason,
        });
        None
    }

    fn context(&mut self) -> &mut Context<'static, 'static> {
        self.context.get_or_insert_with(|| {
            let mut context = Context::with_env(ENV.clone());
            let go_duration = |s: Arc<String>| -> Arc<String> {
                if s.contains(['\u{00b5}', '\u{03bc}']) {
                    Arc::new(s.replace(['\u{00b5}', '\u{03bc}'], "u"))
                } else {
                    s
                }
            };
            if let Err(e) = context.add_function(GO_DURATION_FN, go_duration) {
                tracing::warn!(error = %e, "cannot register the Go duration helper");
            }
            context
        })
    }

    /// Compiles one `x-kubernetes-validations` entry; `None` (and a [`SkippedRule`]) when
    /// it cannot be enforced.
    pub(crate) fn add(&mut self, path: &str, entry: &Value) -> Option<usize> {
        let get = |k: &str| entry.get(k).and_then(Value::as_str).map(str::trim);
        let source = get("rule").unwrap_or_default().to_owned();
        // Every rule runs in a child scope of this schema's context.
        self.context();
        let mut expression = match ENV.parser().parse(&source) {
            Ok(e) => e,
            Err(e) => return self.skip(path, &source, format!("does not parse: {e}")),
        };
        if let Err(error) = self.rewrite(&mut expression) {
            return self.skip(path, &source, fleet_api::error::chain(&error));
        }
        if let Some(reason) = self.unknown_function(&expression) {
            return self.skip(path, &source, reason);
        }
        let message_expression = match get("messageExpression").filter(|m| !m.is_empty()) {
            None => None,
            Some(text) => match ENV.parser().parse(text) {
                Ok(mut e) => {
                    if self.rewrite(&mut e).is_ok() && self.unknown_function(&e).is_none() {
                        Some(e)
                    } else {
                        tracing::warn!(path, text, "messageExpression not used");
                        None
                    }
                }
                Err(err) => {
                    tracing::warn!(path, text, error = %err, "messageExpression not used");
                    None
                }
            },
        };
        let references = expression.references();
        let uses_old_self = references.has_variable("oldSelf");
        let rule = Rule {
            message: get("message").filter(|m| !m.is_empty()).map(str::to_owned),
            message_expression,
            reason: get("reason").and_then(CauseReason::parse),
            field_path: get("fieldPath")
                .filter(|p| !p.is_empty())
                .map(normalize_field_path),
            uses_old_self,
            optional_old_self: entry.get("optionalOldSelf") == Some(&Value::Bool(true)),
            expression,
            source,
        };
        self.rules.push(rule);
        Some(self.rules.len() - 1)
    }

    fn unknown_function(&self, expression: &Expression) -> Option<String> {
        let references = expression.references();
        let helpers_prefix = "fleetbench";
        references
            .functions()
            .into_iter()
            .find(|f| !f.starts_with(helpers_prefix) && !env_declares(f))
            .map(|f| format!("calls `{f}`, which this CEL library does not provide"))
    }

    /// Rewrites `x.matches('lit')` to a precompiled matcher and wraps `duration(x)`'s
    /// argument to accept Go's micro sign.
    fn rewrite(&mut self, e: &mut Expression) -> Result<(), RewriteError> {
        match &mut e.expr {
            Expr::Call(call) => {
                if let Some(target) = call.target.as_mut() {
                    self.rewrite(target)?;
                }
                for arg in &mut call.args {
                    self.rewrite(arg)?;
                }
                let literal_pattern = match call.args.as_slice() {
                    [arg] => match &arg.expr {
                        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_owned()),
                        _ => None,
                    },
                    _ => None,
                };
                if call.func_name == "matches"
                    && call.target.is_some()
                    && let Some(pattern) = literal_pattern
                {
                    let regex = Regex::new(&pattern)
                        .map_err(|source| RewriteError::Pattern { pattern, source })?;
                    let name = format!("fleetbenchMatches{}", self.next_function);
                    self.next_function += 1;
                    let matcher = move |This(s): This<Arc<String>>| regex.is_match(&s);
                    self.context().add_function(&name, matcher)?;
                    call.func_name = name;
                    call.args.clear();
                } else if call.func_name == "duration"
                    && call.target.is_none()
                    && call.args.len() == 1
                {
                    self.context();
                    let inner = std::mem::take(&mut call.args[0]);
                    call.args[0] = Expression {
                        id: inner.id,
                        expr: Expr::Call(CallExpr {
                            func_name: GO_DURATION_FN.to_owned(),
                            target: None,
                            args: vec![inner],
                        }),
                    };
                }
            }
            Expr::Comprehension(c) => {
                for part in [
                    &mut c.iter_range,
                    &mut c.accu_init,
                    &mut c.loop_cond,
                    &mut c.loop_step,
                    &mut c.result,
                ] {
                    self.rewrite(part)?;
                }
            }
            Expr::List(list) => {
                for element in &mut list.elements {
                    self.rewrite(element)?;
                }
            }
            Expr::Select(select) => self.rewrite(&mut select.operand)?,
            Expr::Map(map) => {
                for entry in &mut map.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(m) = &mut entry.expr {
                        self.rewrite(&mut m.key)?;
                        self.rewrite(&mut m.value)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `oldSelf` for an `optionalOldSelf` rule: `optional.of(old)` or `optional.none()`.
    pub(crate) fn optional(&self, old: Option<CelValue>) -> Option<CelValue> {
        static OF: LazyLock<Option<Expression>> =
            LazyLock::new(|| ENV.parser().parse("optional.of(x)").ok());
        static NONE: LazyLock<Option<Expression>> =
            LazyLock::new(|| ENV.parser().parse("optional.none()").ok());
        let root = self.context.as_ref()?;
        let mut context = root.new_inner_scope();
        let expression = match old {
            Some(old) => {
                context.add_variable_from_value("x", old);
                OF.as_ref()?
            }
            None => NONE.as_ref()?,
        };
        CelValue::resolve(expression, &context).ok()
    }

    /// Runs rule `index` with `self` (and `oldSelf`); `Ok(true)` when it holds.
    pub(crate) fn eval(
        &self,
        index: usize,
        this: CelValue,
        old: Option<CelValue>,
    ) -> Result<bool, EvalError> {
        let Some(root) = &self.context else {
            return Ok(true);
        };
        let rule = &self.rules[index];
        let mut context = root.new_inner_scope();
        context.add_variable_from_value("self", this);
        if let Some(old) = old {
            context.add_variable_from_value("oldSelf", old);
        }
        match CelValue::resolve(&rule.expression, &context) {
            Ok(CelValue::Bool(b)) => Ok(b),
            Ok(other) => Err(EvalError::NotBoolean(other)),
            Err(ExecutionError::NoSuchOverload(e)) => Err(EvalError::NoSuchOverload(e)),
            Err(e) => Err(EvalError::Other(e)),
        }
    }

    /// Evaluates rule `index`'s messageExpression, if it has one and it yields a string.
    pub(crate) fn message(
        &self,
        index: usize,
        this: CelValue,
        old: Option<CelValue>,
    ) -> Option<String> {
        let root = self.context.as_ref()?;
        let expression = self.rules[index].message_expression.as_ref()?;
        let mut context = root.new_inner_scope();
        context.add_variable_from_value("self", this);
        if let Some(old) = old {
            context.add_variable_from_value("oldSelf", old);
        }
        match CelValue::resolve(expression, &context) {
            Ok(CelValue::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        }
    }
}

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum EvalError {
    /// No overload of a function accepts the argument types.
    #[error(transparent)]
    NoSuchOverload(cel::OverloadError),
    /// The rule produced a value that is not a boolean.
    #[error("rule evaluated to {0:?}, not a boolean")]
    NotBoolean(CelValue),
    /// Any other runtime error (bad duration, missing key, overflow, ...).
    #[error(transparent)]
    Other(ExecutionError),
}

/// Why a parsed rule could not be prepared for evaluation.
#[derive(Debug, thiserror::Error)]
enum RewriteError {
    /// A `matches()` pattern is not a regular expression this library compiles.
    #[error("pattern {pattern:?} does not compile")]
    Pattern {
        /// The pattern as written.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },
    /// The precompiled matcher could not be registered with the CEL context.
    #[error(transparent)]
    Register(#[from] cel::DeclarationError),
}

/// `fieldPath` as `field.Path` text: `.spec.x` → `spec.x`, `['a.b']` → `[a.b]`.
fn normalize_field_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            out.push('[');
            out.push_str(&r[..end]);
            out.push(']');
            rest = r.get(end + 2..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            out.push('[');
            out.push_str(&r[..end]);
            out.push(']');
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&r[..end]);
            rest = &r[end..];
        }
    }
    out
}

/// Converts a JSON value to the CEL value a rule sees as `self`, typed by its schema:
/// `number` fields are doubles even when whole, `integer` fields ints; at a resource root
/// only `apiVersion`, `kind` and `metadata.name`/`generateName` of the meta fields are
/// visible, as in kube-apiserver.
pub(crate) fn to_cel(node: Option<&Node>, value: &Value) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Number(n) => {
            let ty = node.and_then(|n| n.ty);
            if ty == Some(SchemaType::Number) {
                CelValue::Float(n.as_f64().unwrap_or(0.0))
            } else if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if ty == Some(SchemaType::Integer) && f.fract() == 0.0 && f.abs() < 9.2e18 {
                    CelValue::Int(f as i64)
                } else {
                    CelValue::Float(f)
                }
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            CelValue::List(Arc::new(
                items.iter().map(|v| to_cel(item_node, v)).collect(),
            ))
        }
        Value::Object(map) => {
            let is_root = node.is_some_and(|n| n.is_resource_root || n.embedded);
            let mut out: HashMap<Key, CelValue> = HashMap::with_capacity(map.len());
            for (k, v) in map {
                let child = node.and_then(|n| n.child(k));
                let converted = if is_root && k == "metadata" {
                    let mut meta: HashMap<Key, CelValue> = HashMap::new();
                    for field in ["name", "generateName"] {
                        if let Some(s) = v.get(field).and_then(Value::as_str) {
                            meta.insert(
                                Key::String(Arc::new(field.to_owned())),
                                CelValue::String(Arc::new(s.to_owned())),
                            );
                        }
                    }
                    CelValue::Map(CelMap {
                        map: Arc::new(meta),
                    })
                } else {
                    to_cel(child, v)
                };
                out.insert(Key::String(Arc::new(k.clone())), converted);
            }
            CelValue::Map(CelMap { map: Arc::new(out) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FLEET_DURATION_RULE: &str = "self == '0' || (self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) <= duration('2562047h'))";

    fn compile(rule: &str) -> (Programs, Option<usize>) {
        let mut programs = Programs::default();
        let idx = programs.add("x", &json!({"rule": rule}));
        (programs, idx)
    }

    fn string(s: &str) -> CelValue {
        CelValue::String(Arc::new(s.to_owned()))
    }

    #[test]
    fn fleet_duration_rule_behaves_like_kubernetes() {
        let (programs, idx) = compile(FLEET_DURATION_RULE);
        let idx = idx.expect("compiles");
        for ok in ["0", "15s", "1h30m", "1.5h", "3µs", "300ms", "2562047h"] {
            assert_eq!(programs.eval(idx, string(ok), None), Ok(true), "{ok}");
        }
        for bad in ["2d", "1w", "abc", "15", ""] {
            assert_eq!(programs.eval(idx, string(bad), None), Ok(false), "{bad}");
        }
        // Past Go's largest duration the rule errors, which rejects the value too.
        assert!(matches!(
            programs.eval(idx, string("9999999h"), None),
            Err(EvalError::Other(_))
        ));
    }

    #[test]
    fn rules_see_typed_values_and_old_self() {
        let (programs, idx) = compile("self.replicas >= 1 && self.name.startsWith('a')");
        let idx = idx.unwrap();
        let this = to_cel(None, &json!({"replicas": 2, "name": "abc"}));
        assert_eq!(programs.eval(idx, this, None), Ok(true));
        let this = to_cel(None, &json!({"replicas": 0, "name": "abc"}));
        assert_eq!(programs.eval(idx, this, None), Ok(false));

        let (programs, idx) = compile("self >= oldSelf");
        let idx = idx.unwrap();
        assert!(programs.rule(idx).uses_old_self);
        assert_eq!(
            programs.eval(idx, CelValue::Int(3), Some(CelValue::Int(2))),
            Ok(true)
        );
        assert_eq!(
            programs.eval(idx, CelValue::Int(1), Some(CelValue::Int(2))),
            Ok(false)
        );
    }

    #[test]
    fn macros_and_extensions_work() {
        let (programs, idx) = compile("self.all(x, x.size() < 5) && self.exists(x, x == 'ab')");
        let idx = idx.unwrap();
        assert_eq!(
            programs.eval(idx, to_cel(None, &json!(["ab", "cd"])), None),
            Ok(true)
        );
        let (programs, idx) = compile("self.lowerAscii() == 'abc' && has(self.x) == false || true");
        assert!(idx.is_some(), "{:?}", programs.skipped());
    }

    #[test]
    fn uncompilable_rules_are_skipped_not_fatal() {
        let (programs, idx) = compile("self.size( >");
        assert!(idx.is_none());
        assert_eq!(programs.skipped().len(), 1);
        assert!(programs.skipped()[0].reason.starts_with("does not parse"));

        let (programs, idx) = compile("self.isSorted()");
        assert!(idx.is_none());
        assert!(programs.skipped()[0].reason.contains("`isSorted`"));

        let (programs, idx) = compile("self.matches('(')");
        assert!(idx.is_none());
        assert!(programs.skipped()[0].reason.contains("does not compile"));
    }

    #[test]
    fn runtime_type_errors_are_reported() {
        let (programs, idx) = compile("self + 1 > 0");
        let idx = idx.unwrap();
        assert!(matches!(
            programs.eval(idx, string("x"), None),
            Err(EvalError::NoSuchOverload(_)) | Err(EvalError::Other(_))
        ));
    }

    #[test]
    fn messages_and_field_paths() {
        let mut programs = Programs::default();
        let idx = programs
            .add(
                "x",
                &json!({"rule": "self.a == 1", "messageExpression": "'a is ' + string(self.a)", "fieldPath": ".a", "reason": "FieldValueForbidden"}),
            )
            .unwrap();
        let rule = programs.rule(idx);
        assert_eq!(rule.field_path.as_deref(), Some("a"));
        assert_eq!(rule.reason, Some(CauseReason::FieldValueForbidden));
        assert_eq!(rule.error_string(), "self.a == 1");
        assert_eq!(
            programs.message(idx, to_cel(None, &json!({"a": 2})), None),
            Some("a is 2".to_owned())
        );
        assert_eq!(normalize_field_path(".spec.x['a.b'][0]"), "spec.x[a.b][0]");
    }

    #[test]
    fn root_objects_hide_metadata_fields() {
        let node = Node {
            is_resource_root: true,
            ..Node::default()
        };
        let v = to_cel(
            Some(&node),
            &json!({"metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {}}),
        );
        let (programs, idx) = compile("self.metadata.name == 'n' && !has(self.metadata.labels)");
        assert_eq!(programs.eval(idx.unwrap(), v, None), Ok(true));
    }

    #[test]
    fn number_fields_are_doubles() {
        let node = Node {
            ty: Some(SchemaType::Number),
            ..Node::default()
        };
        assert_eq!(to_cel(Some(&node), &json!(2)), CelValue::Float(2.0));
        let node = Node {
            ty: Some(SchemaType::Integer),
            ..Node::default()
        };
        assert_eq!(to_cel(Some(&node), &json!(2.0)), CelValue::Int(2));
        assert_eq!(to_cel(None, &json!(2)), CelValue::Int(2));
    }
}
