//! The JSONPath dialect of kubectl and CRD printer columns (client-go's `jsonpath`).
//!
//! CRD `additionalPrinterColumns` name their cells with a JSONPath each, so serving a
//! `Table` needs an evaluator; it is a module of its own because the parser and evaluator
//! are a language implementation, independent of how tables are laid out
//! ([`crate::table`]). It covers the expressions columns use (`.a.b`, `.a[0]`, `.a[*].b`,
//! `['k']`, `..k`, slices, and filters such as `[?(@.type=="Ready")].message`); a path is
//! parsed once and evaluation borrows the object.
//!
//! Known differences from client-go: no unions (`[a,b]`), no `range`/`end` templates and
//! no `&&` in filters.

use serde_json::Value;

/// Why a JSONPath could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The path has nothing to select.
    #[error("empty path")]
    Empty,
    /// Text follows a complete path.
    #[error("unexpected {0:?}")]
    Trailing(String),
    /// A `..` is not followed by a field name.
    #[error("expected a field name after '..'")]
    RecursiveWithoutName,
    /// A `.` is followed by neither a field name, `*` nor `[`.
    #[error("expected a field name at {0:?}")]
    ExpectedField(String),
    /// A character that starts no step.
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// A quoted key or literal has no closing quote.
    #[error("unterminated quoted string")]
    UnterminatedString,
    /// A `[` holds no index, slice, `*`, quoted key or filter.
    #[error("expected an index, slice, '*', key or filter at {0:?}")]
    ExpectedSubscript(String),
    /// A `[` has no matching `]`.
    #[error("expected ']' at {0:?}")]
    UnclosedBracket(String),
    /// A `[?` is not followed by `(`.
    #[error("expected '(' after '?'")]
    FilterWithoutParenthesis,
    /// A filter does not start with `@`.
    #[error("a filter must start with '@'")]
    FilterWithoutAt,
    /// A filter has no closing `)`.
    #[error("expected ')' at {0:?}")]
    UnclosedFilter(String),
    /// A comparison has no right-hand side.
    #[error("expected a literal")]
    MissingLiteral,
    /// A comparison's right-hand side is neither quoted, a boolean nor a number.
    #[error("unrecognized literal {0:?}")]
    UnrecognizedLiteral(String),
}

/// A comparison in a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One step of a path.
#[derive(Debug, Clone)]
enum Step {
    /// `.name` or `['name']`.
    Field(String),
    /// `..name`: every descendant field of that name.
    Recursive(String),
    /// `[n]`, negative counting from the end.
    Index(i64),
    /// `[start:end]`.
    Slice(Option<i64>, Option<i64>),
    /// `[*]` or `.*`: every element or value.
    Wildcard,
    /// `[?(@.path)]` or `[?(@.path op literal)]`.
    Filter {
        path: Vec<Step>,
        op: Option<(Op, Value)>,
    },
}

/// A parsed JSONPath.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    steps: Vec<Step>,
}

impl Path {
    /// Parses `.a.b[0]`, optionally wrapped in `{...}` as kubectl writes templates.
    pub(crate) fn parse(text: &str) -> Result<Path, Error> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(trimmed);
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        let mut parser = Parser {
            chars: inner.chars().collect(),
            pos: 0,
        };
        let steps = parser.steps(false)?;
        if parser.pos != parser.chars.len() {
            return Err(Error::Trailing(parser.rest()));
        }
        if steps.is_empty() {
            return Err(Error::Empty);
        }
        Ok(Path { steps })
    }

    /// The first value the path selects, if any.
    pub(crate) fn first<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        eval(&self.steps, root).into_iter().next()
    }
}

fn eval<'v>(steps: &[Step], root: &'v Value) -> Vec<&'v Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for value in current {
            apply(step, value, &mut next);
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    current
}

fn elements(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => Vec::new(),
    }
}

fn apply<'v>(step: &Step, value: &'v Value, out: &mut Vec<&'v Value>) {
    match step {
        Step::Field(name) => {
            if let Some(v) = value.as_object().and_then(|m| m.get(name)) {
                out.push(v);
            }
        }
        Step::Recursive(name) => collect_recursive(value, name, out),
        Step::Index(i) => {
            if let Some(items) = value.as_array() {
                let len = items.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&idx) {
                    out.push(&items[idx as usize]);
                }
            }
        }
        Step::Slice(start, end) => {
            if let Some(items) = value.as_array() {
                let len = items.len() as i64;
                let clamp = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let s = start.map_or(0, clamp);
                let e = end.map_or(len, clamp);
                for item in items.iter().take(e.max(0) as usize).skip(s.max(0) as usize) {
                    out.push(item);
                }
            }
        }
        Step::Wildcard => out.extend(elements(value)),
        Step::Filter { path, op } => {
            for element in elements(value) {
                let found = eval(path, element);
                let keep = match op {
                    None => !found.is_empty(),
                    Some((op, literal)) => found.iter().any(|v| compare(v, *op, literal)),
                };
                if keep {
                    out.push(element);
                }
            }
        }
    }
}

fn collect_recursive<'v>(value: &'v Value, name: &str, out: &mut Vec<&'v Value>) {
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(name) {
                out.push(v);
            }
            for v in map.values() {
                collect_recursive(v, name, out);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_recursive(v, name, out);
            }
        }
        _ => {}
    }
}

fn compare(left: &Value, op: Op, right: &Value) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ordering) {
        (Op::Eq, Some(o)) => o.is_eq(),
        (Op::Ne, Some(o)) => o.is_ne(),
        (Op::Ne, None) => true,
        (Op::Lt, Some(o)) => o.is_lt(),
        (Op::Le, Some(o)) => o.is_le(),
        (Op::Gt, Some(o)) => o.is_gt(),
        (Op::Ge, Some(o)) => o.is_ge(),
        _ => false,
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn rest(&self) -> String {
        self.chars[self.pos..].iter().collect()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.pos += 1;
        }
    }

    /// Steps until the end, or (inside a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Result<Vec<Step>, Error> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                None => break,
                Some('.') => {
                    self.pos += 1;
                    if self.eat('.') {
                        let name = self.identifier();
                        if name.is_empty() {
                            return Err(Error::RecursiveWithoutName);
                        }
                        steps.push(Step::Recursive(name));
                    } else if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        let name = self.identifier();
                        if name.is_empty() {
                            // A lone `.` (as in `{.}`) selects the value itself.
                            if self.peek().is_none() && steps.is_empty() {
                                continue;
                            }
                            if self.peek() != Some('[') {
                                return Err(Error::ExpectedField(self.rest()));
                            }
                        } else {
                            steps.push(Step::Field(name));
                        }
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                }
                Some(' ' | '=' | '!' | '<' | '>' | ')') if in_filter => break,
                Some(c) => return Err(Error::UnexpectedCharacter(c)),
            }
        }
        Ok(steps)
    }

    fn identifier(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' || c == '/' {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn quoted(&mut self, quote: char) -> Result<String, Error> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(Error::UnterminatedString),
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn integer(&mut self) -> Option<i64> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() || text == "-" {
            self.pos = start;
            return None;
        }
        text.parse().ok()
    }

    /// After `[`: an index, slice, wildcard, quoted key or filter, through `]`.
    fn bracket(&mut self) -> Result<Step, Error> {
        self.skip_spaces();
        let step = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Step::Wildcard
            }
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                Step::Field(self.quoted(q)?)
            }
            Some('?') => {
                self.pos += 1;
                self.filter()?
            }
            _ => {
                let start = self.integer();
                self.skip_spaces();
                if self.eat(':') {
                    self.skip_spaces();
                    let end = self.integer();
                    Step::Slice(start, end)
                } else {
                    Step::Index(start.ok_or_else(|| Error::ExpectedSubscript(self.rest()))?)
                }
            }
        };
        self.skip_spaces();
        if !self.eat(']') {
            return Err(Error::UnclosedBracket(self.rest()));
        }
        Ok(step)
    }

    /// After `[?`: `(@.path)` or `(@.path op literal)`.
    fn filter(&mut self) -> Result<Step, Error> {
        if !self.eat('(') {
            return Err(Error::FilterWithoutParenthesis);
        }
        self.skip_spaces();
        if !self.eat('@') {
            return Err(Error::FilterWithoutAt);
        }
        let path = self.steps(true)?;
        self.skip_spaces();
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('=')) => Some(Op::Eq),
            (Some('!'), Some('=')) => Some(Op::Ne),
            (Some('<'), Some('=')) => Some(Op::Le),
            (Some('>'), Some('=')) => Some(Op::Ge),
            (Some('<'), _) => Some(Op::Lt),
            (Some('>'), _) => Some(Op::Gt),
            _ => None,
        };
        let op = match op {
            None => None,
            Some(op) => {
                self.pos += if matches!(op, Op::Lt | Op::Gt) { 1 } else { 2 };
                self.skip_spaces();
                Some((op, self.literal()?))
            }
        };
        self.skip_spaces();
        if !self.eat(')') {
            return Err(Error::UnclosedFilter(self.rest()));
        }
        Ok(Step::Filter { path, op })
    }

    fn literal(&mut self) -> Result<Value, Error> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                Ok(Value::String(self.quoted(q)?))
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                match text.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "" => Err(Error::MissingLiteral),
                    number => serde_json::from_str::<serde_json::Number>(number)
                        .map(Value::Number)
                        .map_err(|_| Error::UnrecognizedLiteral(number.to_owned())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(path: &str, v: &Value) -> Option<Value> {
        Path::parse(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .first(v)
            .cloned()
    }

    #[test]
    fn fields_indexes_and_wildcards() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": 2}], "x.y": "dotted"}, "k": "v"});
        assert_eq!(first(".k", &v), Some(json!("v")));
        assert_eq!(first("{.k}", &v), Some(json!("v")));
        assert_eq!(first("$.k", &v), Some(json!("v")));
        assert_eq!(first(".a.b[1].c", &v), Some(json!(2)));
        assert_eq!(first(".a.b[-1].c", &v), Some(json!(2)));
        assert_eq!(first(".a.b[*].c", &v), Some(json!(1)));
        assert_eq!(first(".a.b[1:].c", &v), Some(json!(2)));
        assert_eq!(first(".a['x.y']", &v), Some(json!("dotted")));
        assert_eq!(first("..c", &v), Some(json!(1)));
        assert_eq!(first(".a.*", &v), Some(json!([{"c": 1}, {"c": 2}])));
        assert_eq!(first(".a.b[5].c", &v), None);
        assert_eq!(first(".missing.deeper", &v), None);
        assert_eq!(first(".k.deeper", &v), None);
    }

    #[test]
    fn filters() {
        let v = json!({"status": {"conditions": [
            {"type": "Reconciling", "status": "False", "message": "no"},
            {"type": "Ready", "status": "True", "message": "all good", "n": 3}
        ]}});
        assert_eq!(
            first(".status.conditions[?(@.type==\"Ready\")].message", &v),
            Some(json!("all good"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type=='Ready')].status", &v),
            Some(json!("True"))
        );
        assert_eq!(
            first(".status.conditions[?(@.type != \"Ready\")].message", &v),
            Some(json!("no"))
        );
        assert_eq!(
            first(".status.conditions[?(@.n)].type", &v),
            Some(json!("Ready"))
        );
        assert_eq!(
            first(".status.conditions[?(@.n >= 3)].type", &v),
            Some(json!("Ready"))
        );
        assert_eq!(first(".status.conditions[?(@.n < 3)].type", &v), None);
        assert_eq!(
            first(".status.conditions[?(@.type==\"Stalled\")].message", &v),
            None
        );
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            ".a[",
            ".a[x]",
            ".a[?(@.b==)]",
            ".a[?(b)]",
            ".a b",
            ".a[?(@.b==\"x\"]",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
