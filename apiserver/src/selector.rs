//! Label and field selectors, parsed and matched as kube-apiserver does.
//!
//! Every list, watch and deletecollection can carry `labelSelector` and `fieldSelector`
//! query parameters, and Fleet's own objects carry `metav1.LabelSelector`s (a ClusterGroup's
//! `selector`, a GitRepo target's `clusterSelector`). Controllers depend on the exact
//! grammar: which whitespace is allowed, that `key in ()` means the empty value, that `!=`
//! matches objects without the label, that a malformed selector is a 400 and not "match
//! everything". So this module follows `k8s.io/apimachinery/pkg/labels` and `.../fields`
//! token for token, including their error messages, and keeps matching allocation-free so
//! a list can filter thousands of objects cheaply.
//!
//! The controller compiles the typed `metav1.LabelSelector`s of its targets with its own
//! `controller/src/selector.rs`: its errors go into GitRepo conditions and its compiled form
//! feeds the targeting index, so it shares this module's semantics but not its grammar,
//! its error texts or its JSON input.
//!
//! Known differences from kube-apiserver: requirements with the same key keep their
//! written order when sorted (Go's sort is not stable, so its printed order may differ);
//! error texts embedding Go field errors (`<nil>: Invalid value: ...`) follow Go's
//! formatting for the cases tested, not for every Go value type.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::goformat::quote_into;
use crate::validation::{label_value_problems, qualified_name_problems};

/// Why a selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The label selector string does not follow the grammar; the message is
    /// kube-apiserver's (e.g. `found 'b', expected: ',' or 'end of string'`).
    #[error("{0}")]
    Syntax(String),
    /// A requirement of a label selector has a bad key or value, or a value set that does
    /// not fit its operator; kube-apiserver's message, prefixed by
    /// `unable to parse requirement: ` when it came from a selector string.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `metav1.LabelSelector` object has the wrong shape (not an object, `matchLabels`
    /// not a map of strings, ...).
    #[error("invalid label selector: {0}")]
    MalformedLabelSelector(String),
    /// A `matchExpressions[].operator` is not `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[error("{0:?} is not a valid label selector operator")]
    UnknownOperator(String),
    /// A field selector term has no `=`, `==` or `!=` operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidFieldTerm {
        /// The whole selector string.
        selector: String,
        /// The term that could not be split.
        term: String,
    },
    /// A field selector value has a backslash escape other than `\\`, `\,` or `\=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscape(String),
    /// A field selector value has an unescaped `,` or `=`; kube-apiserver prints the
    /// character's code point.
    #[error("invalid field selector: unescaped character in value: {}", *.0 as u32)]
    UnescapedCharacter(char),
    /// The field selector names a field the resource does not support selecting on.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

/// How a label requirement compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`.
    Equals,
    /// `key==value` (same meaning as `=`, kept for printing).
    DoubleEquals,
    /// `key!=value`: also matches objects without the label.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`: also matches objects without the label.
    NotIn,
    /// `key`: the label is present.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
    /// `key>N`: the label is an integer greater than N.
    GreaterThan,
    /// `key<N`: the label is an integer less than N.
    LessThan,
}

impl Operator {
    /// The operator as `metav1` / `selection.Operator` names it (`in`, `!=`, `exists`, `gt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and without duplicates, as kube's string sets are.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking the key, the values and that the value count suits
    /// the operator (kube's `labels.NewRequirement`).
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Requirement, SelectorError> {
        let key = key.into();
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        let mut problems: Vec<String> = Vec::new();
        let key_problems = qualified_name_problems(&key);
        if !key_problems.is_empty() {
            problems.push(invalid_text("key", &key, &key_problems.join("; ")));
        }
        let values_text = || {
            let quoted: Vec<String> = values
                .iter()
                .map(|v| {
                    let mut q = String::new();
                    quote_into(&mut q, v);
                    q
                })
                .collect();
            format!("[{}]", quoted.join(","))
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => problems.push(format!(
                "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                values_text()
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                problems.push(format!(
                    "values: Invalid value: {}: exact-match compatibility requires one single value",
                    values_text()
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                problems.push(format!(
                    "values: Invalid value: {}: values set must be empty for exists and does not exist",
                    values_text()
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    problems.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        values_text()
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        problems.push(invalid_text(
                            &format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_problems = label_value_problems(v);
            if !value_problems.is_empty() {
                problems.push(invalid_text(
                    &format!("values[{i}][{key}]"),
                    v,
                    &value_problems.join("; "),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(SelectorError::InvalidRequirement(aggregate(&problems)));
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and without duplicates (empty for `Exists`/`DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, value: &str) -> bool {
        // Value sets are tiny; a binary search on the sorted list is cheapest.
        self.values
            .binary_search_by(|v| v.as_str().cmp(value))
            .is_ok()
    }

    /// Whether a label set, seen through `get`, satisfies this requirement.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        let found = get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                found.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => !found.is_some_and(|v| self.has_value(v)),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(actual)) = found.map(str::parse::<i64>) else {
                    return false;
                };
                let Some(Ok(bound)) = self.values.first().map(|v| v.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The canonical text kube-apiserver prints (`a in (x,y)`, `!b`, `c!=d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => ("=", false),
            Operator::DoubleEquals => ("==", false),
            Operator::NotEquals => ("!=", false),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// `<path>: Invalid value: "<value>": <detail>`, the text of a Go `field.Error`.
fn invalid_text(path: &str, value: &str, detail: &str) -> String {
    let mut out = format!("{path}: Invalid value: ");
    quote_into(&mut out, value);
    out.push_str(": ");
    out.push_str(detail);
    out
}

/// Kubernetes' aggregate error text: one message bare, several as `[a, b]`.
fn aggregate(messages: &[String]) -> String {
    if messages.len() == 1 {
        messages[0].clone()
    } else {
        format!("[{}]", messages.join(", "))
    }
}

/// A label selector: requirements that must all hold (AND), or "nothing" for a null
/// `metav1.LabelSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key (stably), as kube-apiserver sorts them.
    requirements: Vec<Requirement>,
    matches_nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (the empty string).
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    /// The selector that matches no object (what a null `metav1.LabelSelector` means).
    pub fn nothing() -> LabelSelector {
        LabelSelector {
            requirements: Vec::new(),
            matches_nothing: true,
        }
    }

    /// Builds a selector from requirements (sorted by key for matching and printing).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> LabelSelector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            matches_nothing: false,
        }
    }

    /// Parses a `labelSelector` string: comma-separated requirements, each `k=v`, `k==v`,
    /// `k!=v`, `k in (v1,v2)`, `k notin (v1,v2)`, `k`, `!k`, `k>N` or `k<N`.
    pub fn parse(selector: &str) -> Result<LabelSelector, SelectorError> {
        let tokens = lex(selector);
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
        };
        let requirements = parser.parse()?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Converts a `metav1.LabelSelector` object (`matchLabels` and `matchExpressions`):
    /// `null` matches nothing, `{}` matches everything (kube's `LabelSelectorAsSelector`).
    pub fn from_label_selector_json(selector: &Value) -> Result<LabelSelector, SelectorError> {
        let obj = match selector {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError::MalformedLabelSelector(format!(
                    "expected an object, found {other}"
                )));
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (key, value) in labels {
                    let Some(value) = value.as_str() else {
                        return Err(SelectorError::MalformedLabelSelector(format!(
                            "matchLabels[{key}] must be a string"
                        )));
                    };
                    requirements.push(Requirement::new(
                        key.clone(),
                        Operator::Equals,
                        [value.to_owned()],
                    )?);
                }
            }
            Some(_) => {
                return Err(SelectorError::MalformedLabelSelector(
                    "matchLabels must be an object of strings".to_owned(),
                ));
            }
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for (i, expr) in expressions.iter().enumerate() {
                    let malformed = |what: &str| {
                        SelectorError::MalformedLabelSelector(format!(
                            "matchExpressions[{i}] {what}"
                        ))
                    };
                    let key = expr
                        .get("key")
                        .and_then(Value::as_str)
                        .ok_or_else(|| malformed("needs a string key"))?;
                    let operator = expr
                        .get("operator")
                        .and_then(Value::as_str)
                        .ok_or_else(|| malformed("needs a string operator"))?;
                    let operator = match operator {
                        "In" => Operator::In,
                        "NotIn" => Operator::NotIn,
                        "Exists" => Operator::Exists,
                        "DoesNotExist" => Operator::DoesNotExist,
                        other => return Err(SelectorError::UnknownOperator(other.to_owned())),
                    };
                    let values = match expr.get("values") {
                        None | Some(Value::Null) => Vec::new(),
                        Some(Value::Array(values)) => values
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| malformed("values must be strings"))?,
                        Some(_) => return Err(malformed("values must be an array")),
                    };
                    requirements.push(Requirement::new(key, operator, values)?);
                }
            }
            Some(_) => {
                return Err(SelectorError::MalformedLabelSelector(
                    "matchExpressions must be an array".to_owned(),
                ));
            }
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// True when the selector has no requirements and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty() && !self.matches_nothing
    }

    /// True for the selector that matches no object.
    pub fn matches_nothing(&self) -> bool {
        self.matches_nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether the labels of a JSON `metadata.labels` object (or null/absent) match; values
    /// that are not strings count as absent.
    pub fn matches_json(&self, labels: Option<&Value>) -> bool {
        let map = labels.and_then(Value::as_object);
        self.matches_with(|k| map.and_then(|m| m.get(k)).and_then(Value::as_str))
    }

    /// Whether the labels seen through `get` (key to value) satisfy every requirement.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        if self.matches_nothing {
            return false;
        }
        self.requirements.iter().all(|r| r.matches_with(&get))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical selector string: requirements sorted by key, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

/// The tokens of kube's label selector lexer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Identifier,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    EndOfString,
    Equals,
    GreaterThan,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn special_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits a selector into tokens the way kube's lexer does: identifiers run to the next
/// whitespace or special character, special characters combine greedily (`!=`, `==`).
fn lex(input: &str) -> Vec<(Token, &str)> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while i < bytes.len() && is_whitespace(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            tokens.push((Token::EndOfString, ""));
            return tokens;
        }
        let start = i;
        if is_special(bytes[i]) {
            let mut best: Option<(Token, usize)> = None;
            let mut end = i;
            while end < bytes.len() && is_special(bytes[end]) {
                end += 1;
                match special_token(&input[start..end]) {
                    Some(t) => best = Some((t, end)),
                    None if best.is_some() => break,
                    None => {}
                }
            }
            // Every special character is a token on its own, so `best` is set.
            let (token, end) = best.unwrap_or((Token::Identifier, end));
            tokens.push((token, &input[start..end]));
            i = end;
        } else {
            while i < bytes.len() && !is_whitespace(bytes[i]) && !is_special(bytes[i]) {
                i += 1;
            }
            let word = &input[start..i];
            let token = match word {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            tokens.push((token, word));
        }
    }
}

/// Where the parser is: in "values" context `in`/`notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'t, 's> {
    tokens: &'t [(Token, &'s str)],
    position: usize,
}

impl<'s> Parser<'_, 's> {
    fn lookahead(&self, context: Context) -> (Token, &'s str) {
        let (token, literal) = self.tokens[self.position.min(self.tokens.len() - 1)];
        (Self::in_context(token, context), literal)
    }

    fn consume(&mut self, context: Context) -> (Token, &'s str) {
        let item = self.lookahead(context);
        if self.position < self.tokens.len() - 1 {
            self.position += 1;
        }
        item
    }

    fn in_context(token: Token, context: Context) -> Token {
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => token,
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self.parse_requirement().map_err(|e| match e {
                        SelectorError::Syntax(m) => {
                            SelectorError::Syntax(format!("unable to parse requirement: {m}"))
                        }
                        SelectorError::InvalidRequirement(m) => SelectorError::InvalidRequirement(
                            format!("unable to parse requirement: {m}"),
                        ),
                        other => other,
                    })?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, next_literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(SelectorError::Syntax(format!(
                                    "found '{next_literal}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            )));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    )));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Requirement::new(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => vec![self.parse_exact_value()?],
        };
        Requirement::new(key, operator, values)
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(&'s str, Option<Operator>), SelectorError> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(SelectorError::Syntax(format!(
                "found '{literal}', expected: identifier"
            )));
        }
        let problems = qualified_name_problems(literal);
        if !problems.is_empty() {
            return Err(SelectorError::InvalidRequirement(invalid_text(
                "<nil>",
                literal,
                &problems.join("; "),
            )));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(SelectorError::Syntax(format!(
                    "found '{literal}', expected: in, notin, =, ==, !=, gt, lt"
                )));
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(SelectorError::Syntax(format!(
                "found '{literal}' expected: '('"
            )));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(SelectorError::Syntax(format!(
                        "found '{literal}', expected: ')'"
                    )));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(SelectorError::Syntax(format!(
                "found '{literal}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal.to_owned());
                    let (next, next_literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => {
                            return Err(SelectorError::Syntax(format!(
                                "found '{next_literal}', expected: ',' or ')'"
                            )));
                        }
                    }
                }
                Token::Comma => {
                    // `(,a`, `a,)` and `a,,b` each name the empty value.
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new());
                    }
                }
                _ => {
                    return Err(SelectorError::Syntax(format!(
                        "found '{literal}', expected: ',', or identifier"
                    )));
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<String, SelectorError> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(String::new());
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(literal.to_owned())
        } else {
            Err(SelectorError::Syntax(format!(
                "found '{literal}', expected: identifier"
            )))
        }
    }
}

/// How a field selector term compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    field: String,
    operator: FieldOperator,
    value: String,
}

impl FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The operator.
    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    /// The value, unescaped.
    pub fn value(&self) -> &str {
        &self.value
    }

    fn matches_value(&self, actual: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => actual == self.value,
            FieldOperator::NotEquals => actual != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A field selector: terms that must all hold. A field an object does not have counts as
/// the empty string, as in kube-apiserver.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// Parses a `fieldSelector` string: comma-separated `field=value`, `field==value` or
    /// `field!=value` terms; `\,`, `\=` and `\\` escape inside values. Field names are not
    /// checked here: use [`FieldSelector::check_supported`] with the resource's fields.
    pub fn parse(selector: &str) -> Result<FieldSelector, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw_value)) = split_term(term) else {
                return Err(SelectorError::InvalidFieldTerm {
                    selector: selector.to_owned(),
                    term: term.to_owned(),
                });
            };
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                operator,
                value: unescape_field_value(raw_value)?.into_owned(),
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms, sorted by their text as kube-apiserver sorts them.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// True when the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Fails with [`SelectorError::UnsupportedField`] (kube-apiserver answers 400 with
    /// its message) when a term names a field outside `supported`.
    pub fn check_supported(&self, supported: &[&str]) -> Result<(), SelectorError> {
        match self
            .requirements
            .iter()
            .find(|r| !supported.contains(&r.field.as_str()))
        {
            Some(r) => Err(SelectorError::UnsupportedField(r.field.clone())),
            None => Ok(()),
        }
    }

    /// Whether the fields seen through `get` (field path to value; `None` for a missing
    /// field, which counts as `""`) satisfy every term.
    pub fn matches<F, S>(&self, get: F) -> bool
    where
        F: Fn(&str) -> Option<S>,
        S: AsRef<str>,
    {
        self.requirements.iter().all(|r| match get(&r.field) {
            Some(value) => r.matches_value(value.as_ref()),
            None => r.matches_value(""),
        })
    }

    /// Whether a JSON object satisfies every term, reading each dotted field path
    /// (`metadata.name`, `status.phase`, `spec.nodeName`) from it; booleans and numbers
    /// compare by their JSON text (`true`, `3`).
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(|path| field_value(object, path))
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical text: terms sorted, `==` written as `=`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Reads a dotted path from a JSON object as a string: strings as they are, booleans and
/// numbers as their JSON text; objects, arrays, null and missing fields are `None`.
pub fn field_value<'v>(object: &'v Value, path: &str) -> Option<Cow<'v, str>> {
    let mut current = object;
    for segment in path.split('.') {
        current = current.as_object()?.get(segment)?;
    }
    match current {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Splits on commas that are not escaped by a backslash.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::with_capacity(1);
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at its first operator (`!=` before `==` before `=` at each position).
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_field_value(s: &str) -> Result<Cow<'_, str>, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => return Err(SelectorError::InvalidEscape(format!("\\{other}"))),
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => return Err(SelectorError::UnescapedCharacter(c)),
            other => out.push(other),
        }
    }
    if escaped {
        return Err(SelectorError::InvalidEscape("\\".to_owned()));
    }
    Ok(Cow::Owned(out))
}

/// Escapes `\`, `,` and `=` in a field selector value.
pub fn escape_field_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', ',', '=']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
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

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(parsed) => panic!("{s:?} should not parse, got {parsed}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = sel("");
        assert!(s.is_empty());
        assert!(s.matches(&labels(&[])));
        assert!(s.matches(&labels(&[("a", "b")])));
        assert_eq!(s.to_string(), "");
        assert!(sel("   ").is_empty());
    }

    #[test]
    fn equality_operators() {
        let l = labels(&[("env", "prod"), ("tier", "web")]);
        assert!(sel("env=prod").matches(&l));
        assert!(sel("env==prod").matches(&l));
        assert!(!sel("env=dev").matches(&l));
        assert!(sel("env!=dev").matches(&l));
        assert!(!sel("env!=prod").matches(&l));
        // != and notin match objects that lack the label.
        assert!(sel("missing!=x").matches(&l));
        assert!(!sel("missing=x").matches(&l));
        assert!(sel("env=prod,tier=web").matches(&l));
        assert!(!sel("env=prod,tier=db").matches(&l));
    }

    #[test]
    fn set_operators() {
        let l = labels(&[("env", "prod")]);
        assert!(sel("env in (prod,dev)").matches(&l));
        assert!(sel("env in(prod)").matches(&l));
        assert!(!sel("env in (dev, qa)").matches(&l));
        assert!(sel("env notin (dev,qa)").matches(&l));
        assert!(!sel("env notin (prod)").matches(&l));
        assert!(sel("other notin (prod)").matches(&l));
        assert!(!sel("other in (prod)").matches(&l));
    }

    #[test]
    fn existence_operators() {
        let l = labels(&[("env", "")]);
        assert!(sel("env").matches(&l));
        assert!(!sel("!env").matches(&l));
        assert!(sel("!other").matches(&l));
        assert!(!sel("other").matches(&l));
        assert!(sel("env,!other").matches(&l));
        assert!(sel(" env , ! other ").matches(&l));
    }

    #[test]
    fn empty_values() {
        let l = labels(&[("env", "")]);
        assert!(sel("env=").matches(&l));
        assert!(sel("env=,x!=").matches(&labels(&[("env", ""), ("x", "y")])));
        assert!(sel("env in ()").matches(&l));
        assert!(sel("env in (,a)").matches(&l));
        assert!(sel("env in (a,)").matches(&l));
        assert!(sel("env in (a,,b)").matches(&l));
        assert_eq!(
            sel("env in (a,,b)").requirements()[0].values(),
            ["", "a", "b"]
        );
        assert!(!sel("env in (a,b)").matches(&l));
    }

    #[test]
    fn integer_comparisons() {
        let l = labels(&[("replicas", "5"), ("name", "x")]);
        assert!(sel("replicas>3").matches(&l));
        assert!(!sel("replicas>5").matches(&l));
        assert!(sel("replicas<6").matches(&l));
        assert!(!sel("name>1").matches(&l));
        assert!(!sel("missing<1").matches(&l));
        assert_eq!(
            err("replicas>abc"),
            "unable to parse requirement: values[0]: Invalid value: \"abc\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn keywords_are_plain_words_in_value_position() {
        let l = labels(&[("in", "notin")]);
        assert!(sel("in=notin").matches(&l));
        assert!(sel("in in (notin)").matches(&l));
        assert!(sel("in").matches(&l));
    }

    #[test]
    fn canonical_display_sorts_by_key_and_values() {
        assert_eq!(
            sel("z=1, a in (y,x,x), !m, k").to_string(),
            "a in (x,y),k,!m,z=1"
        );
        assert_eq!(
            sel("a==b,c!=d,e notin (f)").to_string(),
            "a==b,c!=d,e notin (f)"
        );
        assert_eq!(sel("a>1,b<2").to_string(), "a>1,b<2");
        // The display parses back to the same selector.
        let s = sel("tier notin (web,db),env in (prod),app");
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
        assert_eq!(
            "app=x".parse::<LabelSelector>().unwrap().to_string(),
            "app=x"
        );
    }

    #[test]
    fn syntax_errors_use_kubernetes_messages() {
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (="),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert!(err("a==,").contains("expected: identifier after ','"));
    }

    #[test]
    fn invalid_keys_and_values_are_rejected() {
        let e = err("-a=b");
        assert!(
            e.starts_with("unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of"),
            "{e}"
        );
        let e = err("a=-b");
        assert!(
            e.starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be"),
            "{e}"
        );
        let e = err(&format!("a={}", "v".repeat(64)));
        assert!(e.contains("must be no more than 63 characters"), "{e}");
        assert!(LabelSelector::parse("a/b/c").is_err());
        assert!(LabelSelector::parse("example.com/app=web").is_ok());
    }

    #[test]
    fn requirement_constructor_checks_value_counts() {
        assert!(Requirement::new("a", Operator::In, Vec::new()).is_err());
        assert!(Requirement::new("a", Operator::Equals, vec!["x".into(), "y".into()]).is_err());
        assert!(Requirement::new("a", Operator::Exists, vec!["x".into()]).is_err());
        assert!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]).is_err()
        );
        let r = Requirement::new("a", Operator::NotIn, vec!["y".into(), "x".into()]).unwrap();
        assert_eq!(r.key(), "a");
        assert_eq!(r.operator(), Operator::NotIn);
        assert_eq!(r.values(), ["x", "y"]);
        assert_eq!(Operator::NotIn.as_str(), "notin");
    }

    #[test]
    fn label_selector_objects() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"env": "prod"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "legacy", "operator": "DoesNotExist"},
                {"key": "region", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "env=prod,!legacy,region,tier in (api,web),zone notin (b)"
        );
        assert!(s.matches(&labels(&[
            ("env", "prod"),
            ("tier", "web"),
            ("region", "eu")
        ])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[
            ("env", "prod"),
            ("tier", "web"),
            ("region", "eu"),
            ("legacy", "1")
        ])));

        let everything = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(everything.is_empty());
        assert!(everything.matches(&labels(&[("a", "b")])));
        let nothing = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(nothing.matches_nothing());
        assert!(!nothing.is_empty());
        assert!(!nothing.matches(&labels(&[])));
    }

    #[test]
    fn label_selector_object_errors() {
        let e = LabelSelector::from_label_selector_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        let e = LabelSelector::from_label_selector_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("values set can't be empty"), "{e}");
        let e = LabelSelector::from_label_selector_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("values set must be empty"), "{e}");
        assert!(matches!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {"a": 1}})),
            Err(SelectorError::MalformedLabelSelector(_))
        ));
        assert!(matches!(
            LabelSelector::from_label_selector_json(&json!("a=b")),
            Err(SelectorError::MalformedLabelSelector(_))
        ));
        assert!(
            LabelSelector::from_label_selector_json(&json!({"matchLabels": {"-bad": "x"}}))
                .is_err()
        );
    }

    #[test]
    fn matching_json_labels() {
        let s = sel("app=web,!legacy");
        assert!(s.matches_json(Some(&json!({"app": "web"}))));
        assert!(!s.matches_json(Some(&json!({"app": "db"}))));
        assert!(!s.matches_json(None));
        assert!(sel("!app").matches_json(None));
        assert!(sel("!app").matches_json(Some(&Value::Null)));
    }

    #[test]
    fn field_selectors_parse_and_match() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}, "spec": {"unschedulable": true, "replicas": 3}});
        let s = FieldSelector::parse("metadata.name=a").unwrap();
        assert!(s.matches_object(&obj));
        assert!(
            FieldSelector::parse("metadata.name==a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name!=a")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.namespace=ns,status.phase!=Failed")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace=ns,status.phase=Failed")
                .unwrap()
                .matches_object(&obj)
        );
        // A missing field is "".
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("spec.nodeName!=x")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("spec.unschedulable=true")
                .unwrap()
                .matches_object(&obj)
        );
        assert!(
            FieldSelector::parse("spec.replicas=3")
                .unwrap()
                .matches_object(&obj)
        );
        let everything = FieldSelector::parse("").unwrap();
        assert!(everything.is_empty());
        assert!(everything.matches_object(&obj));
        assert!(FieldSelector::parse(",").unwrap().is_empty());
        // The closure API.
        assert!(s.matches(|f| (f == "metadata.name").then_some("a")));
        assert!(!s.matches(|_| None::<&str>));
    }

    #[test]
    fn field_selectors_escape_values() {
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(s.requirements()[0].value(), r"a,b=c\d");
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d");
        assert!(s.matches(|_| Some(r"a,b=c\d")));
        assert_eq!(
            FieldSelector::parse(r"a=b\x").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \x"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn field_selector_errors_and_support() {
        assert_eq!(
            FieldSelector::parse("metadata.name")
                .unwrap_err()
                .to_string(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        let s = FieldSelector::parse("status.phase=Running,metadata.name=a").unwrap();
        // Terms are sorted by their text.
        assert_eq!(s.to_string(), "metadata.name=a,status.phase=Running");
        assert_eq!(s.requirements()[1].field(), "status.phase");
        assert_eq!(s.requirements()[1].operator(), FieldOperator::Equals);
        assert!(
            s.check_supported(&["metadata.name", "status.phase"])
                .is_ok()
        );
        assert_eq!(
            s.check_supported(&["metadata.name", "metadata.namespace"])
                .unwrap_err()
                .to_string(),
            "field label not supported: status.phase"
        );
        assert_eq!(FieldSelector::parse("a!=b").unwrap().to_string(), "a!=b");
    }
}
