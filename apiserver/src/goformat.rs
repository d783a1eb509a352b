//! Go's printing of values, as Kubernetes error messages show them.
//!
//! kube-apiserver writes the offending value into a validation message with Go's `%q` and
//! `%v` (`Invalid value: "Foo"`, `must be between 0 and 1e+06`), and clients compare those
//! messages as text, so the server must print strings, floats and JSON values exactly as Go
//! does. That is a concern of its own, used by metadata validation
//! ([`crate::validation`]), the CRD schema validator, selectors, tables and fault
//! configuration alike.
//!
//! Known differences from Go: `%q` is reproduced for printable text and common escapes
//! only.

use serde_json::Value;

/// Writes `value` the way kube-apiserver shows a bad value: strings quoted, numbers and
/// booleans bare, anything else as JSON.
pub fn render_value_into(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => quote_into(out, s),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&go_format_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// Formats a float as Go's `%v` does (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest
/// digits, in exponent form (`1e+06`, `1.5e-05`) when the decimal exponent is below -4 or
/// at least 6 (Go's rule for the shortest representation).
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits: "1.5e-5", "1e6".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    format!("{f}")
}

/// Quotes a string as Go's `%q` does for the printable text kube-apiserver meets.
pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_format_float(1.5), "1.5");
        assert_eq!(go_format_float(10.0), "10");
        assert_eq!(go_format_float(123456.0), "123456");
        assert_eq!(go_format_float(1_000_000.0), "1e+06");
        assert_eq!(go_format_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_format_float(0.0001), "0.0001");
        assert_eq!(go_format_float(0.000015), "1.5e-05");
        assert_eq!(go_format_float(-2.25), "-2.25");
        let mut s = String::new();
        render_value_into(&mut s, &json!(2.5));
        assert_eq!(s, "2.5");
    }

    #[test]
    fn quoting_escapes_like_go() {
        let mut s = String::new();
        quote_into(&mut s, "a\"b\\c\nd\u{1}");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\x01\"");
    }
}
