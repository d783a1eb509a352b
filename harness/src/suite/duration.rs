//! Durations as suite files and Fleet write them (`15s`, `1m30s`, `500ms`, Go's syntax).
//!
//! Suites mirror Fleet's own fields (`pollingInterval: 1m`), so the harness reads and
//! writes the same notation instead of inventing one; a bare number means seconds.

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
    /// A number was expected where the text has something else.
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
    /// Durations are never negative in suites.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
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

/// Seconds per unit of a Go duration suffix.
pub(crate) fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

impl FromStr for GoDuration {
    type Err = DurationError;

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
        let mut total = 0.0;
        let mut rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if number_len == 0 {
                return Err(DurationError::Syntax(text.to_string()));
            }
            let number: f64 = rest[..number_len]
                .parse()
                .map_err(|_| DurationError::Syntax(text.to_string()))?;
            rest = &rest[number_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            if unit.is_empty() {
                return Err(DurationError::Syntax(text.to_string()));
            }
            let scale = unit_seconds(unit).ok_or_else(|| DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })?;
            total += number * scale;
            rest = &rest[unit_len..];
        }
        seconds_to_duration(total, text)
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
