//! Go durations (`15s`, `1m30s`, `1.5h`, `250ms`): one parser and one formatter for every
//! place that reads or writes them.
//!
//! Fleet's fields (`pollingInterval`) and env vars (`GITREPO_SYNC_PERIOD`), the controller's
//! flags, the suite files and the apiserver's `format: duration` check all use Go's
//! `time.ParseDuration` notation. Separate parsers for each drifted apart (one accepted
//! `μs`, one did not; one rounded through floating point, one did not), so a value could be
//! valid in a suite and invalid for the controller. [`parse_nanos`] is Go's grammar exactly,
//! in integer nanoseconds; [`parse`] is the same for durations that cannot be negative, and
//! [`GoDuration`] is how suites hold them (also accepting a bare number of seconds).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed from Go-style text (`1h2m3.5s`, `250ms`) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct GoDuration(pub Duration);

/// Why a duration could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text was empty.
    #[error("empty duration")]
    Empty,
    /// A number was expected where the text has something else, or a number has no unit.
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ns, us, ms, s, m, h), e.g. 15s or 1m30s"
    )]
    Syntax(String),
    /// The unit after a number is not one Go knows.
    #[error("invalid duration {text:?}: unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit that was not understood.
        unit: String,
    },
    /// A negative duration where only non-negative ones make sense.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// More than Go's `time.Duration` holds (about 292 years).
    #[error("invalid duration {0:?}: out of range")]
    Overflow(String),
}

impl GoDuration {
    /// Seconds as a float, the unit every measurement uses.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Builds a duration from whole seconds.
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl From<Duration> for GoDuration {
    fn from(value: Duration) -> Self {
        Self(value)
    }
}

/// Nanoseconds per unit of a Go duration suffix (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`).
pub fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // Go accepts both the micro sign (U+00B5) and the Greek mu (U+03BC).
        "us" | "\u{00b5}s" | "\u{03bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Seconds per unit of a Go duration suffix, for arithmetic in seconds.
pub fn unit_seconds(unit: &str) -> Option<f64> {
    unit_nanos(unit).map(|nanos| nanos as f64 / 1e9)
}

/// Parses a Go duration exactly as `time.ParseDuration` does (`1h30m`, `1.5s`, `-2µs`, `0`),
/// in nanoseconds. No surrounding whitespace is allowed and every number needs a unit.
pub fn parse_nanos(text: &str) -> Result<i64, DurationError> {
    let syntax = || DurationError::Syntax(text.to_owned());
    let (negative, mut rest) = match text.as_bytes().first() {
        None => return Err(DurationError::Empty),
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(syntax());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(syntax());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(syntax());
        }
        let scale = i128::from(unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            text: text.to_owned(),
            unit: unit.to_owned(),
        })?);
        let overflow = || DurationError::Overflow(text.to_owned());
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            let mut fraction = 0i128;
            let mut divisor = 1i128;
            for digit in frac_part.bytes().take(30) {
                fraction = fraction * 10 + i128::from(digit - b'0');
                divisor *= 10;
            }
            value += fraction * scale / divisor;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > i128::from(i64::MAX) + i128::from(negative) {
            return Err(overflow());
        }
    }
    let signed = if negative { -total } else { total };
    i64::try_from(signed).map_err(|_| DurationError::Overflow(text.to_owned()))
}

/// Parses a Go duration that cannot be negative (an interval, a timeout), ignoring
/// surrounding whitespace: `15s`, `1m30s`, `1.5h`, `250ms`, `0`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_owned()));
    }
    match parse_nanos(trimmed) {
        Ok(nanos) => Ok(Duration::from_nanos(nanos.unsigned_abs())),
        Err(DurationError::Syntax(_)) => Err(DurationError::Syntax(text.to_owned())),
        Err(DurationError::Overflow(_)) => Err(DurationError::Overflow(text.to_owned())),
        Err(DurationError::UnknownUnit { unit, .. }) => Err(DurationError::UnknownUnit {
            text: text.to_owned(),
            unit,
        }),
        Err(other) => Err(other),
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;

    /// A Go duration ([`parse`]), or a bare number of seconds (`3`, `0.5`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(DurationError::Empty);
        }
        if trimmed.starts_with('-') {
            return Err(DurationError::Negative(text.to_string()));
        }
        if let Ok(secs) = trimmed.parse::<f64>() {
            return seconds_to_duration(secs, text);
        }
        parse(text).map(GoDuration)
    }
}

fn seconds_to_duration(secs: f64, text: &str) -> Result<GoDuration, DurationError> {
    if !secs.is_finite() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    if secs < 0.0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    Ok(GoDuration(Duration::from_secs_f64(secs)))
}

impl fmt::Display for GoDuration {
    /// Go's shortest form: `1h2m3s`, `1.5s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0;
        if total.is_zero() {
            return f.write_str("0s");
        }
        if total < Duration::from_secs(1) {
            let millis = total.as_secs_f64() * 1e3;
            return write!(f, "{}ms", trim_float(millis));
        }
        let whole = total.as_secs();
        let hours = whole / 3600;
        let minutes = (whole % 3600) / 60;
        let seconds = (whole % 60) as f64 + f64::from(total.subsec_nanos()) / 1e9;
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write!(f, "{}s", trim_float(seconds))
    }
}

/// Formats a float without trailing zeros (`1.5`, `60`, `0.001`).
fn trim_float(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_string()
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(secs) => {
                seconds_to_duration(secs, &secs.to_string()).map_err(serde::de::Error::custom)
            }
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Duration {
        text.parse::<GoDuration>().unwrap().0
    }

    #[test]
    fn parses_go_syntax() {
        assert_eq!(parse("15s"), Duration::from_secs(15));
        assert_eq!(parse("1m30s"), Duration::from_secs(90));
        assert_eq!(parse("2h"), Duration::from_secs(7200));
        assert_eq!(parse("500ms"), Duration::from_millis(500));
        assert_eq!(parse("1.5s"), Duration::from_millis(1500));
        assert_eq!(parse("3"), Duration::from_secs(3));
    }

    #[test]
    fn rejects_bad_text_with_reason() {
        assert!(matches!(
            "15 sec".parse::<GoDuration>(),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            "abc".parse::<GoDuration>(),
            Err(DurationError::Syntax(_))
        ));
        assert!(matches!(
            "-1s".parse::<GoDuration>(),
            Err(DurationError::Negative(_))
        ));
        assert_eq!("".parse::<GoDuration>(), Err(DurationError::Empty));
        assert!(matches!(
            "10".parse::<GoDuration>().map(|d| d.0),
            Ok(d) if d == Duration::from_secs(10)
        ));
    }

    #[test]
    fn nanoseconds_follow_time_parse_duration() {
        assert_eq!(parse_nanos("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_nanos("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_nanos("-2\u{00b5}s"), Ok(-2_000));
        assert_eq!(parse_nanos("3\u{03bc}s"), Ok(3_000));
        assert_eq!(parse_nanos(".5m"), Ok(30_000_000_000));
        assert_eq!(parse_nanos("0"), Ok(0));
        assert_eq!(parse_nanos("2562047h"), Ok(2_562_047 * 3_600_000_000_000));
        assert!(matches!(
            parse_nanos("2562048h"),
            Err(DurationError::Overflow(_))
        ));
        assert_eq!(parse_nanos(""), Err(DurationError::Empty));
        assert!(matches!(parse_nanos("5"), Err(DurationError::Syntax(_))));
        assert!(matches!(
            parse_nanos("5d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_nanos("."), Err(DurationError::Syntax(_))));
        assert!(parse_nanos(" 5s").is_err());
    }

    #[test]
    fn non_negative_durations_need_units_and_no_sign() {
        let cases = [
            ("15s", Duration::from_secs(15)),
            ("1m", Duration::from_secs(60)),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("2h", Duration::from_secs(7200)),
            ("10us", Duration::from_micros(10)),
            ("0", Duration::ZERO),
            (" 5s ", Duration::from_secs(5)),
        ];
        for (text, want) in cases {
            assert_eq!(super::parse(text), Ok(want), "{text}");
        }
        for bad in ["", "15", "s", "-1s", "1x", "1m-2s", "1..2s"] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            super::parse("-1s"),
            Err(DurationError::Negative("-1s".into()))
        );
    }

    #[test]
    fn units_in_seconds() {
        assert_eq!(unit_seconds("ms"), Some(1e-3));
        assert_eq!(unit_seconds("h"), Some(3600.0));
        assert_eq!(unit_seconds("ns"), Some(1e-9));
        assert_eq!(unit_seconds("us"), Some(1e-6));
        assert_eq!(unit_seconds("d"), None);
    }

    #[test]
    fn displays_shortest_form_that_round_trips() {
        for text in ["1h2m3s", "1m0s", "15s", "1.5s", "250ms", "0s"] {
            let duration: GoDuration = text.parse().unwrap();
            assert_eq!(duration.to_string(), text);
            assert_eq!(
                duration.to_string().parse::<GoDuration>().unwrap(),
                duration
            );
        }
    }
}
