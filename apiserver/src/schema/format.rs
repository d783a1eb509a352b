//! The string `format`s kube-apiserver checks in CRD schemas.
//!
//! kube-apiserver validates the formats of go-openapi's default registry that Kubernetes
//! 1.33 lists as supported (names compared without dashes: `date-time` is `datetime`) and
//! silently ignores every other format, as it ignores formats on non-string types except
//! `int32`/`int64` (integers) and `float`/`double` (numbers), which only affect the type
//! check. The checks here follow what each go-openapi validator accepts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

/// A string format kube-apiserver validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    BsonObjectId,
    Uri,
    Email,
    Hostname,
    Ipv4,
    Ipv6,
    Cidr,
    Mac,
    Uuid,
    Uuid3,
    Uuid4,
    Uuid5,
    Isbn,
    Isbn10,
    Isbn13,
    CreditCard,
    Ssn,
    HexColor,
    RgbColor,
    Byte,
    Password,
    Date,
    Duration,
    DateTime,
}

impl Format {
    /// The format a string-typed (or untyped) node validates, `None` when kube-apiserver
    /// ignores it.
    pub(crate) fn for_string(name: &str) -> Option<Format> {
        let normalized: String = name.chars().filter(|c| *c != '-').collect();
        Some(match normalized.as_str() {
            "bsonobjectid" => Format::BsonObjectId,
            "uri" => Format::Uri,
            "email" => Format::Email,
            "hostname" => Format::Hostname,
            "ipv4" => Format::Ipv4,
            "ipv6" => Format::Ipv6,
            "cidr" => Format::Cidr,
            "mac" => Format::Mac,
            "uuid" => Format::Uuid,
            "uuid3" => Format::Uuid3,
            "uuid4" => Format::Uuid4,
            "uuid5" => Format::Uuid5,
            "isbn" => Format::Isbn,
            "isbn10" => Format::Isbn10,
            "isbn13" => Format::Isbn13,
            "creditcard" => Format::CreditCard,
            "ssn" => Format::Ssn,
            "hexcolor" => Format::HexColor,
            "rgbcolor" => Format::RgbColor,
            "byte" => Format::Byte,
            "password" => Format::Password,
            "date" => Format::Date,
            "duration" => Format::Duration,
            "datetime" => Format::DateTime,
            _ => return None,
        })
    }

    /// Whether `s` is valid in this format.
    pub(crate) fn accepts(self, s: &str) -> bool {
        match self {
            Format::BsonObjectId => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
            Format::Uri => is_request_uri(s),
            Format::Email => is_email(s),
            Format::Hostname => is_hostname(s),
            Format::Ipv4 => s.contains('.') && parse_ip_sloppy(s).is_some(),
            Format::Ipv6 => s.contains(':') && parse_ip_sloppy(s).is_some(),
            Format::Cidr => is_cidr(s),
            Format::Mac => is_mac(s),
            Format::Uuid => uuid_re(0).is_match(s),
            Format::Uuid3 => uuid_re(3).is_match(s),
            Format::Uuid4 => uuid_re(4).is_match(s),
            Format::Uuid5 => uuid_re(5).is_match(s),
            Format::Isbn => is_isbn10(s) || is_isbn13(s),
            Format::Isbn10 => is_isbn10(s),
            Format::Isbn13 => is_isbn13(s),
            Format::CreditCard => is_credit_card(s),
            Format::Ssn => regex_match(&SSN, s),
            Format::HexColor => regex_match(&HEX_COLOR, s),
            Format::RgbColor => regex_match(&RGB_COLOR, s),
            Format::Byte => regex_match(&BASE64, s),
            Format::Password => true,
            Format::Date => is_full_date(s),
            Format::Duration => is_duration(s),
            Format::DateTime => is_date_time(s),
        }
    }
}

fn regex_match(re: &LazyLock<Regex>, s: &str) -> bool {
    re.is_match(s)
}

static SSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$").expect("static regex"));
static HEX_COLOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$").expect("static regex"));
static RGB_COLOR: LazyLock<Regex> = LazyLock::new(|| {
    let channel = r"(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])";
    Regex::new(&format!(
        r"^rgb\(\s*{channel}\s*,\s*{channel}\s*,\s*{channel}\s*\)$"
    ))
    .expect("static regex")
});
/// Standard base64 with padding; the empty string does not count.
static BASE64: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$")
        .expect("static regex")
});

fn uuid_re(version: u8) -> &'static Regex {
    static RES: LazyLock<[Regex; 4]> = LazyLock::new(|| {
        let make = |third: &str, fourth: &str| {
            Regex::new(&format!(
                "(?i)^[0-9a-f]{{8}}-?[0-9a-f]{{4}}-?{third}-?{fourth}-?[0-9a-f]{{12}}$"
            ))
            .expect("static regex")
        };
        [
            make("[0-9a-f]{4}", "[0-9a-f]{4}"),
            make("3[0-9a-f]{3}", "[0-9a-f]{4}"),
            make("4[0-9a-f]{3}", "[89ab][0-9a-f]{3}"),
            make("5[0-9a-f]{3}", "[89ab][0-9a-f]{3}"),
        ]
    });
    match version {
        3 => &RES[1],
        4 => &RES[2],
        5 => &RES[3],
        _ => &RES[0],
    }
}

/// An absolute URI (`scheme:...`) or an absolute path, as Go's `url.ParseRequestURI`
/// accepts: no spaces or control characters, well-formed `%` escapes.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if i + 2 >= bytes.len()
                || !bytes[i + 1].is_ascii_hexdigit()
                || !bytes[i + 2].is_ascii_hexdigit()
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// An address as Go's `net/mail.ParseAddress` reads one: `local@domain`, optionally as
/// `Name <local@domain>`.
fn is_email(s: &str) -> bool {
    static ADDR: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*|"[^"\\]*")@[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$"#)
            .expect("static regex")
    });
    let s = s.trim();
    if let Some(open) = s.rfind('<')
        && let Some(inner) = s[open + 1..].strip_suffix('>')
    {
        return ADDR.is_match(inner);
    }
    ADDR.is_match(s)
}

/// A host name of dot-separated labels (letters, digits, symbols and inner dashes, at most
/// 63 bytes each) whose last label, when there are several, is 2 to 63 letters; at most
/// 255 bytes in all.
fn is_hostname(s: &str) -> bool {
    static SINGLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[a-zA-Z0-9\p{S}\p{L}](-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?$")
            .expect("static regex")
    });
    static MULTI: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^([a-zA-Z0-9\p{S}\p{L}]([a-zA-Z0-9\-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?\.)+[a-zA-Z\p{L}]{2,63}$")
            .expect("static regex")
    });
    if s.len() > 255 || !(SINGLE.is_match(s) || MULTI.is_match(s)) {
        return false;
    }
    s.split('.').all(|label| label.len() <= 63)
}

/// Go's `ParseIPSloppy`: IPv4 parts may have leading zeros.
fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(IpAddr::V4(Ipv4Addr::from(octets)))
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, prefix)) = s.split_once('/') else {
        return false;
    };
    let Some(ip) = parse_ip_sloppy(ip) else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    !prefix.is_empty()
        && prefix.len() <= 3
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && prefix.parse::<u32>().is_ok_and(|p| p <= max)
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx...`.
fn is_mac(s: &str) -> bool {
    let octet_counts = [6, 8, 20];
    if s.contains('.') {
        let groups: Vec<&str> = s.split('.').collect();
        return octet_counts.contains(&(groups.len() * 2))
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    for sep in [':', '-'] {
        if s.contains(sep) {
            let groups: Vec<&str> = s.split(sep).collect();
            return octet_counts.contains(&groups.len())
                && groups
                    .iter()
                    .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    false
}

fn isbn_digits(s: &str) -> Vec<char> {
    s.chars().filter(|c| *c != ' ' && *c != '-').collect()
}

fn is_isbn10(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 10
        || !d[..9].iter().all(char::is_ascii_digit)
        || !(d[9].is_ascii_digit() || d[9] == 'X')
    {
        return false;
    }
    let sum: u32 = d
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = if *c == 'X' {
                10
            } else {
                c.to_digit(10).unwrap_or(0)
            };
            (i as u32 + 1) * v
        })
        .sum();
    sum.is_multiple_of(11)
}

fn is_isbn13(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 13 || !d.iter().all(char::is_ascii_digit) {
        return false;
    }
    let sum: u32 = d[..12]
        .iter()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    (10 - sum % 10) % 10 == d[12].to_digit(10).unwrap_or(99)
}

/// A number of a known card scheme (dashes and spaces ignored) with a valid Luhn digit.
fn is_credit_card(s: &str) -> bool {
    static SCHEMES: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$")
            .expect("static regex")
    });
    let digits: String = s.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if !SCHEMES.is_match(&digits) {
        return false;
    }
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut v = c.to_digit(10).unwrap_or(0);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `YYYY-MM-DD`, a real calendar date (Go's `time.Parse("2006-01-02", s)`).
pub(crate) fn is_full_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    (1..=12).contains(&month) && day >= 1 && day <= days_in_month(i64::from(year), month)
}

/// go-openapi's `IsDateTime`: a full date, `T` (any case), then
/// `hh:mm:ss[.frac](Z|±hh:mm)` with hours up to 23 and minutes and seconds up to 59.
pub(crate) fn is_date_time(s: &str) -> bool {
    static TIME: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$")
            .expect("static regex")
    });
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return false;
    };
    if !is_full_date(date) {
        return false;
    }
    let Some(caps) = TIME.captures(time) else {
        return false;
    };
    &caps[1] <= "23" && &caps[2] <= "59" && &caps[3] <= "59"
}

/// go-openapi's duration format: a Go duration, or any text holding `<digits> <unit>`
/// pairs with units like `d`, `days`, `w`, `hr`, `sec` (its Scala-compatible fallback).
fn is_duration(s: &str) -> bool {
    static PAIR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(\d+)\s*([A-Za-zµ]+)").expect("static regex"));
    const UNITS: &[&[&str]] = &[
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    // The Go grammar is `time.ParseDuration`'s, shared with the controller and the suites.
    if fleet_api::duration::parse_nanos(s).is_ok() {
        return true;
    }
    PAIR.captures_iter(s).any(|caps| {
        if caps[1].parse::<i64>().is_err() {
            return false;
        }
        let unit = caps[2].trim().to_lowercase();
        UNITS.iter().any(|variants| {
            let last = variants.len() - 1;
            variants
                .iter()
                .enumerate()
                .any(|(i, v)| (i == last && unit.starts_with(v)) || v.eq_ignore_ascii_case(&unit))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(format: &str, s: &str) -> bool {
        Format::for_string(format)
            .unwrap_or_else(|| panic!("{format} is supported"))
            .accepts(s)
    }

    #[test]
    fn names_are_normalized_and_unknown_formats_ignored() {
        assert_eq!(Format::for_string("date-time"), Some(Format::DateTime));
        assert_eq!(Format::for_string("datetime"), Some(Format::DateTime));
        assert_eq!(Format::for_string("int32"), None);
        assert_eq!(Format::for_string("k8s-short-name"), None);
        assert_eq!(Format::for_string("whatever"), None);
    }

    #[test]
    fn date_time() {
        for good in [
            "2024-01-02T03:04:05Z",
            "2024-01-02t03:04:05.123456z",
            "2024-02-29T23:59:59+05:30",
            "2024-01-02T03:04:05-07:00",
        ] {
            assert!(ok("date-time", good), "{good}");
        }
        for bad in [
            "2024-01-02",
            "2024-01-02T24:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-02T03:04:05",
            "2024-1-02T03:04:05Z",
            "yesterday",
            "",
        ] {
            assert!(!ok("date-time", bad), "{bad}");
        }
    }

    #[test]
    fn date() {
        assert!(ok("date", "2024-12-31"));
        assert!(!ok("date", "2024-13-01"));
        assert!(!ok("date", "2024-12-31T00:00:00Z"));
    }

    #[test]
    fn byte() {
        assert!(ok("byte", "aGVsbG8="));
        assert!(ok("byte", "aGVsbG8h"));
        assert!(!ok("byte", "aGVsbG8"));
        assert!(!ok("byte", "not base64!"));
        assert!(!ok("byte", ""));
    }

    #[test]
    fn network_formats() {
        assert!(ok("ipv4", "10.0.0.1"));
        assert!(ok("ipv4", "010.000.000.001"));
        assert!(!ok("ipv4", "256.0.0.1"));
        assert!(!ok("ipv4", "::1"));
        assert!(ok("ipv6", "::1"));
        assert!(!ok("ipv6", "10.0.0.1"));
        assert!(ok("cidr", "10.0.0.0/8"));
        assert!(ok("cidr", "fd00::/64"));
        assert!(!ok("cidr", "10.0.0.0/33"));
        assert!(!ok("cidr", "10.0.0.0"));
        assert!(ok("mac", "00:1a:2B:3c:4d:5e"));
        assert!(ok("mac", "00-1a-2b-3c-4d-5e"));
        assert!(ok("mac", "001a.2b3c.4d5e"));
        assert!(!ok("mac", "00:1a:2b"));
        assert!(ok("hostname", "example.com"));
        assert!(ok("hostname", "localhost"));
        assert!(!ok("hostname", "-bad.example.com"));
        assert!(!ok("hostname", "example.c0m"));
        assert!(ok("uri", "https://example.com/x?y=1"));
        assert!(ok("uri", "/absolute/path"));
        assert!(!ok("uri", "relative/path"));
        assert!(!ok("uri", "http://bad host"));
        assert!(ok("email", "a.b@example.com"));
        assert!(ok("email", "Someone <a@example.com>"));
        assert!(!ok("email", "not-an-email"));
    }

    #[test]
    fn identifiers() {
        assert!(ok("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(ok("uuid", "123E4567E89B12D3A456426614174000"));
        assert!(!ok("uuid", "123e4567"));
        assert!(ok("uuid4", "123e4567-e89b-42d3-a456-426614174000"));
        assert!(!ok("uuid4", "123e4567-e89b-12d3-a456-426614174000"));
        assert!(ok("uuid3", "123e4567-e89b-32d3-a456-426614174000"));
        assert!(ok("uuid5", "123e4567-e89b-52d3-a456-426614174000"));
        assert!(ok("bsonobjectid", "507f1f77bcf86cd799439011"));
        assert!(!ok("bsonobjectid", "507f1f77bcf86cd79943901"));
        assert!(ok("isbn10", "0-321-75104-3"));
        assert!(!ok("isbn10", "0321751044"));
        assert!(ok("isbn13", "978-0321751041"));
        assert!(ok("isbn", "978-0321751041"));
        assert!(!ok("isbn13", "9780321751042"));
        assert!(ok("creditcard", "4111 1111 1111 1111"));
        assert!(!ok("creditcard", "4111 1111 1111 1112"));
        assert!(ok("ssn", "123-45-6789"));
        assert!(!ok("ssn", "123-456-789"));
        assert!(ok("hexcolor", "#FFF"));
        assert!(!ok("hexcolor", "#FFFF"));
        assert!(ok("rgbcolor", "rgb(255, 0, 10)"));
        assert!(!ok("rgbcolor", "rgb(256,0,0)"));
        assert!(ok("password", "anything"));
    }

    #[test]
    fn durations() {
        for go in ["1h30m", "1.5s", "-2\u{00b5}s", "3\u{03bc}s", ".5m", "0"] {
            assert!(ok("duration", go), "{go}");
        }
        assert!(!ok("duration", "."));
        assert!(!ok("duration", ""));
        assert!(ok("duration", "15s"));
        // go-openapi's fallback accepts day and week units.
        assert!(ok("duration", "3 days"));
        assert!(ok("duration", "2w"));
        assert!(!ok("duration", "soon"));
    }
}
