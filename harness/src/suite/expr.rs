//! Threshold expressions: `10s`, `0.4`, `60%`, `polling_interval * 1.1 + 2s`.
//!
//! Thresholds that depend on the suite's scale (the polling SLO is "interval x 1.1 + 2s")
//! are written as arithmetic over the scale's names, so that `--set scale.polling_interval=30s`
//! moves the threshold with the scale instead of silently checking the old number.
//! Durations evaluate to seconds, percentages to fractions.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use fleet_api::duration::unit_seconds;

/// A threshold as written in the suite, evaluated against the suite's scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    text: String,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The text does not parse.
    #[error("invalid expression {text:?}: {reason}")]
    Syntax {
        /// The expression.
        text: String,
        /// What is wrong, and where.
        reason: String,
    },
    /// A name that is not a scale field.
    #[error("invalid expression {text:?}: unknown name {name:?} (known: {known})")]
    UnknownName {
        /// The expression.
        text: String,
        /// The name not found.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// Division by zero or a result that is not a finite number.
    #[error("invalid expression {0:?}: the result is not a finite number")]
    NotFinite(String),
}

impl Expr {
    /// Wraps expression text (parsed lazily, on evaluation).
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates with `vars` (scale fields; durations in seconds).
    pub fn evaluate(&self, vars: &BTreeMap<String, f64>) -> Result<f64, ExprError> {
        let tokens = tokenize(&self.text).map_err(|reason| ExprError::Syntax {
            text: self.text.clone(),
            reason,
        })?;
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
            vars,
            text: &self.text,
        };
        let value = parser.expression()?;
        if parser.position != tokens.len() {
            return Err(parser.syntax(format!(
                "unexpected {} after the end of the expression",
                tokens[parser.position]
            )));
        }
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ExprError::NotFinite(self.text.clone()))
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A plain number stays a number in JSON so tools can read it without evaluation.
        match self.text.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => serializer.serialize_f64(number),
            _ => serializer.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Integer(i64),
            Number(f64),
            Text(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Integer(number) => Expr::new(number.to_string()),
            Raw::Number(number) => Expr::new(number.to_string()),
            Raw::Text(text) => Expr::new(text),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Operator(char),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Number(value) => write!(f, "number {value}"),
            Token::Name(name) => write!(f, "name {name:?}"),
            Token::Operator(op) => write!(f, "{op:?}"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            tokens.push(Token::Operator(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let mut value: f64 = digits
                .parse()
                .map_err(|_| format!("bad number {digits:?} at column {}", start + 1))?;
            let unit_start = i;
            while i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '%') {
                i += 1;
            }
            let unit: String = chars[unit_start..i].iter().collect();
            if unit == "%" {
                value /= 100.0;
            } else if !unit.is_empty() {
                value *= unit_seconds(&unit).ok_or_else(|| {
                    format!(
                        "unknown unit {unit:?} at column {} (use ns, us, ms, s, m, h or %)",
                        unit_start + 1
                    )
                })?;
            }
            tokens.push(Token::Number(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character {c:?} at column {}", i + 1));
        }
    }
    if tokens.is_empty() {
        return Err("empty expression".to_string());
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [Token],
    position: usize,
    vars: &'a BTreeMap<String, f64>,
    text: &'a str,
}

impl Parser<'_> {
    fn syntax(&self, reason: String) -> ExprError {
        ExprError::Syntax {
            text: self.text.to_string(),
            reason,
        }
    }

    fn peek_operator(&self) -> Option<char> {
        match self.tokens.get(self.position) {
            Some(Token::Operator(op)) => Some(*op),
            _ => None,
        }
    }

    fn expression(&mut self) -> Result<f64, ExprError> {
        let mut value = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek_operator() {
            self.position += 1;
            let rhs = self.term()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, ExprError> {
        let mut value = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek_operator() {
            self.position += 1;
            let rhs = self.factor()?;
            value = if op == '*' { value * rhs } else { value / rhs };
        }
        Ok(value)
    }

    fn factor(&mut self) -> Result<f64, ExprError> {
        let token = self
            .tokens
            .get(self.position)
            .cloned()
            .ok_or_else(|| self.syntax("the expression ends too early".to_string()))?;
        self.position += 1;
        match token {
            Token::Number(value) => Ok(value),
            Token::Name(name) => {
                self.vars
                    .get(&name)
                    .copied()
                    .ok_or_else(|| ExprError::UnknownName {
                        text: self.text.to_string(),
                        name,
                        known: self.vars.keys().cloned().collect::<Vec<_>>().join(", "),
                    })
            }
            Token::Operator('-') => Ok(-self.factor()?),
            Token::Operator('(') => {
                let value = self.expression()?;
                if self.peek_operator() != Some(')') {
                    return Err(self.syntax("missing ')'".to_string()));
                }
                self.position += 1;
                Ok(value)
            }
            other => Err(self.syntax(format!("unexpected {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("polling_interval".to_string(), 60.0),
            ("gitrepos".to_string(), 30.0),
        ])
    }

    fn eval(text: &str) -> Result<f64, ExprError> {
        Expr::new(text).evaluate(&vars())
    }

    #[test]
    fn evaluates_numbers_units_and_percent() {
        assert_eq!(eval("2s").unwrap(), 2.0);
        assert_eq!(eval("500ms").unwrap(), 0.5);
        assert_eq!(eval("1m").unwrap(), 60.0);
        assert_eq!(eval("60%").unwrap(), 0.6);
        assert_eq!(eval("0").unwrap(), 0.0);
    }

    #[test]
    fn evaluates_arithmetic_over_scale_names_with_precedence() {
        let value = eval("polling_interval * 1.1 + 2s").unwrap();
        assert!((value - 68.0).abs() < 1e-9, "{value}");
        assert_eq!(eval("(gitrepos - 10) / 4").unwrap(), 5.0);
        assert_eq!(eval("-1 + gitrepos").unwrap(), 29.0);
    }

    #[test]
    fn reports_unknown_names_and_syntax_errors() {
        match eval("intervl * 2") {
            Err(ExprError::UnknownName { name, known, .. }) => {
                assert_eq!(name, "intervl");
                assert!(known.contains("polling_interval"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(eval("2 +"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("(2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("2 3"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("5 parsecs"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("1 / 0"), Err(ExprError::NotFinite(_))));
    }
}
