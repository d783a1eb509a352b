//! Fault injection: added latency, injected errors and cut watches.
//!
//! Reliability suites need an API server that misbehaves on request, the way a loaded or
//! flaky kube-apiserver does: slow answers (drawn from a distribution, since constant
//! delays hide queueing effects), `500`/`429` errors at a rate, and every open watch cut at
//! once. The same [`FaultConfig`] is set at start, changed through [`FaultHandle`] at run
//! time, or over HTTP at `/fleetbench/faults`.
//!
//! A configuration arrives from other processes, so it is checked before it takes effect
//! ([`FaultConfig::validate`]): a latency of `1e300` ms or a rate of `NaN` would otherwise
//! panic in the request path of every later request. Sampling clamps as well, for
//! configurations set in-process through [`FaultHandle::set`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

/// The longest delay a latency fault may add (and the largest mean, median or bound of a
/// distribution).
pub const MAX_LATENCY: Duration = Duration::from_secs(3600);

/// The largest log-normal shape accepted: beyond it nearly every draw is either zero or
/// the [`MAX_LATENCY`] clamp, which is not a useful distribution.
const MAX_SIGMA: f64 = 10.0;

/// The verbs a latency entry may name (besides `*`).
const VERBS: &[&str] = &[
    "GET",
    "LIST",
    "WATCH",
    "CREATE",
    "UPDATE",
    "PATCH",
    "DELETE",
    "DELETECOLLECTION",
];

/// Numbers in messages as kube-apiserver prints them (`1e+300`, not 301 digits).
fn go(value: f64) -> String {
    crate::goformat::go_format_float(value)
}

/// One thing wrong with a [`FaultConfig`], naming the field as a JSON path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// A number is NaN or infinite.
    #[error("{field}: Invalid value: {}: must be a finite number", go(*value))]
    NotFinite {
        /// The field.
        field: String,
        /// The value given.
        value: f64,
    },
    /// A duration is negative or longer than [`MAX_LATENCY`].
    #[error("{field}: Invalid value: {}: must be between 0 and {} milliseconds", go(*value), go(*max))]
    Duration {
        /// The field.
        field: String,
        /// The value given, in milliseconds.
        value: f64,
        /// The largest accepted value, in milliseconds.
        max: f64,
    },
    /// A uniform distribution whose lower bound exceeds its upper bound.
    #[error("{field}: Invalid value: {}: must not exceed maxMs ({})", go(*value), go(*max))]
    Bounds {
        /// The field (`minMs`).
        field: String,
        /// The lower bound given.
        value: f64,
        /// The upper bound given.
        max: f64,
    },
    /// A distribution shape outside the range it is useful in.
    #[error("{field}: Invalid value: {}: must be between 0 and {}", go(*value), go(*max))]
    Shape {
        /// The field.
        field: String,
        /// The value given.
        value: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// A rate outside `[0, 1]`.
    #[error("{field}: Invalid value: {}: must be between 0 and 1", go(*value))]
    Rate {
        /// The field.
        field: String,
        /// The value given.
        value: f64,
    },
    /// A status code that is not a client or server error.
    #[error("{field}: Invalid value: {code}: must be an HTTP error status (400-599)")]
    Code {
        /// The field.
        field: String,
        /// The value given.
        code: u16,
    },
    /// A latency entry for a verb kube-apiserver does not have.
    #[error(
        "{field}: Unsupported value: {verb:?}: supported values: \"*\", \"GET\", \"LIST\", \"WATCH\", \"CREATE\", \"UPDATE\", \"PATCH\", \"DELETE\", \"DELETECOLLECTION\""
    )]
    Verb {
        /// The field.
        field: String,
        /// The verb given.
        verb: String,
    },
}

impl FaultError {
    /// The JSON path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            Self::NotFinite { field, .. }
            | Self::Duration { field, .. }
            | Self::Bounds { field, .. }
            | Self::Shape { field, .. }
            | Self::Rate { field, .. }
            | Self::Code { field, .. }
            | Self::Verb { field, .. } => field,
        }
    }

    /// What is wrong, without the field (a `Status` cause carries the field apart).
    pub fn detail(&self) -> String {
        let text = self.to_string();
        text.strip_prefix(self.field())
            .and_then(|rest| rest.strip_prefix(": "))
            .map_or_else(|| text.clone(), str::to_string)
    }

    /// Kubernetes' cause type for this problem.
    pub fn cause_type(&self) -> &'static str {
        match self {
            Self::Verb { .. } => "FieldValueNotSupported",
            _ => "FieldValueInvalid",
        }
    }
}

fn check_finite(errors: &mut Vec<FaultError>, field: String, value: f64) -> bool {
    if value.is_finite() {
        true
    } else {
        errors.push(FaultError::NotFinite { field, value });
        false
    }
}

fn check_ms(errors: &mut Vec<FaultError>, field: String, value: f64) {
    let max = MAX_LATENCY.as_secs_f64() * 1000.0;
    if check_finite(errors, field.clone(), value) && !(0.0..=max).contains(&value) {
        errors.push(FaultError::Duration { field, value, max });
    }
}

/// The faults in force.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Latency added to requests, by verb in kube-apiserver's vocabulary (`GET`, `LIST`,
    /// `WATCH`, `CREATE`, `UPDATE`, `PATCH`, `DELETE`, `DELETECOLLECTION`) or `*` for verbs
    /// without an entry of their own.
    pub latency: BTreeMap<String, LatencyDistribution>,
    /// Injected errors; the first rule that matches a request and wins its dice roll
    /// answers it.
    pub errors: Vec<ErrorRule>,
}

/// A distribution of added latency, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "camelCase")]
pub enum LatencyDistribution {
    /// Always the same delay.
    #[serde(rename_all = "camelCase")]
    Constant {
        /// The delay.
        ms: f64,
    },
    /// Uniform between two bounds.
    #[serde(rename_all = "camelCase")]
    Uniform {
        /// Lower bound.
        min_ms: f64,
        /// Upper bound.
        max_ms: f64,
    },
    /// Normal, clamped at zero.
    #[serde(rename_all = "camelCase")]
    Normal {
        /// Mean.
        mean_ms: f64,
        /// Standard deviation.
        stddev_ms: f64,
    },
    /// Log-normal: a long tail, as real API latencies have.
    #[serde(rename_all = "camelCase")]
    LogNormal {
        /// Median.
        median_ms: f64,
        /// Shape (standard deviation of the logarithm).
        sigma: f64,
    },
    /// Exponential.
    #[serde(rename_all = "camelCase")]
    Exponential {
        /// Mean.
        mean_ms: f64,
    },
}

impl LatencyDistribution {
    fn validate(&self, field: &str, errors: &mut Vec<FaultError>) {
        let at = |name: &str| format!("{field}.{name}");
        match *self {
            Self::Constant { ms } => check_ms(errors, at("ms"), ms),
            Self::Uniform { min_ms, max_ms } => {
                let before = errors.len();
                check_ms(errors, at("minMs"), min_ms);
                check_ms(errors, at("maxMs"), max_ms);
                if errors.len() == before && min_ms > max_ms {
                    errors.push(FaultError::Bounds {
                        field: at("minMs"),
                        value: min_ms,
                        max: max_ms,
                    });
                }
            }
            Self::Normal { mean_ms, stddev_ms } => {
                check_ms(errors, at("meanMs"), mean_ms);
                check_ms(errors, at("stddevMs"), stddev_ms);
            }
            Self::LogNormal { median_ms, sigma } => {
                check_ms(errors, at("medianMs"), median_ms);
                if check_finite(errors, at("sigma"), sigma) && !(0.0..=MAX_SIGMA).contains(&sigma) {
                    errors.push(FaultError::Shape {
                        field: at("sigma"),
                        value: sigma,
                        max: MAX_SIGMA,
                    });
                }
            }
            Self::Exponential { mean_ms } => check_ms(errors, at("meanMs"), mean_ms),
        }
    }

    /// Draws one delay, at most [`MAX_LATENCY`].
    pub fn sample(&self) -> Duration {
        let mut rng = rand::rng();
        let ms = match *self {
            Self::Constant { ms } => ms,
            Self::Uniform { min_ms, max_ms } => {
                // rand panics on a range whose width overflows (found by fuzzing), so
                // sample within the bounds a delay can have at all.
                let max = MAX_LATENCY.as_secs_f64() * 1000.0;
                let (lo, hi) = (min_ms.clamp(0.0, max), max_ms.clamp(0.0, max));
                if lo.is_finite() && hi.is_finite() && hi > lo {
                    rng.random_range(lo..hi)
                } else {
                    min_ms
                }
            }
            Self::Normal { mean_ms, stddev_ms } => Normal::new(mean_ms, stddev_ms.max(0.0))
                .map(|d| d.sample(&mut rng))
                .unwrap_or(mean_ms),
            Self::LogNormal { median_ms, sigma } => {
                LogNormal::new(median_ms.max(1e-9).ln(), sigma.max(0.0))
                    .map(|d| d.sample(&mut rng))
                    .unwrap_or(median_ms)
            }
            Self::Exponential { mean_ms } => Exp::new(1.0 / mean_ms.max(1e-9))
                .map(|d| d.sample(&mut rng))
                .unwrap_or(mean_ms),
        };
        if ms.is_finite() && ms > 0.0 {
            // from_secs_f64 panics past Duration::MAX, so clamp before converting.
            Duration::from_secs_f64((ms / 1000.0).min(MAX_LATENCY.as_secs_f64()))
        } else {
            Duration::ZERO
        }
    }
}

/// Answers a share of matching requests with an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRule {
    /// Verb to match (kube-apiserver's vocabulary); absent matches every verb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Resource to match: its plural (`gitrepos`) or plural and group
    /// (`gitrepos.fleet.cattle.io`); absent matches every resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// HTTP status to answer with: `500` (InternalError) or `429` (TooManyRequests); other
    /// error codes (400-599) are answered as `500`.
    pub code: u16,
    /// Share of matching requests that fail, between 0 and 1.
    pub rate: f64,
}

impl FaultConfig {
    /// Every problem of this configuration, each naming its field; `Ok` when it can be
    /// put in force.
    pub fn validate(&self) -> Result<(), Vec<FaultError>> {
        let mut errors = Vec::new();
        for (verb, distribution) in &self.latency {
            let field = format!("latency[{verb}]");
            if verb != "*" && !VERBS.contains(&verb.as_str()) {
                errors.push(FaultError::Verb {
                    field: field.clone(),
                    verb: verb.clone(),
                });
            }
            distribution.validate(&field, &mut errors);
        }
        for (i, rule) in self.errors.iter().enumerate() {
            if !(400..=599).contains(&rule.code) {
                errors.push(FaultError::Code {
                    field: format!("errors[{i}].code"),
                    code: rule.code,
                });
            }
            let field = format!("errors[{i}].rate");
            if check_finite(&mut errors, field.clone(), rule.rate)
                && !(0.0..=1.0).contains(&rule.rate)
            {
                errors.push(FaultError::Rate {
                    field,
                    value: rule.rate,
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl ErrorRule {
    fn matches(&self, verb: &str, resource: &str, group: &str) -> bool {
        let verb_ok = self
            .verb
            .as_deref()
            .is_none_or(|v| v.eq_ignore_ascii_case(verb));
        let resource_ok = self
            .resource
            .as_deref()
            .is_none_or(|r| match r.split_once('.') {
                Some((plural, g)) => plural == resource && g == group,
                None => r == resource,
            });
        verb_ok && resource_ok
    }
}

/// A handle to change faults and cut watches at run time; cheap to clone.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    inner: Arc<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    config: RwLock<FaultConfig>,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl FaultHandle {
    pub(crate) fn new(config: FaultConfig) -> Self {
        let (cuts, _) = tokio::sync::watch::channel(0);
        Self {
            inner: Arc::new(FaultState {
                config: RwLock::new(config),
                cuts,
            }),
        }
    }

    /// The faults in force.
    pub fn config(&self) -> FaultConfig {
        self.inner.config.read().clone()
    }

    /// Replaces the faults in force. Values out of range are clamped when used; callers
    /// that take configurations from outside should [`FaultConfig::validate`] them first.
    pub fn set(&self, config: FaultConfig) {
        *self.inner.config.write() = config;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.set(FaultConfig::default());
    }

    /// Ends every open watch now, as a restarting or overloaded API server does; clients
    /// must re-watch from their last resourceVersion.
    pub fn cut_watches(&self) {
        self.inner.cuts.send_modify(|n| *n += 1);
    }

    pub(crate) fn watch_cuts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.cuts.subscribe()
    }

    /// The latency to add to a request of `verb`, if any.
    pub(crate) fn latency(&self, verb: &str) -> Option<Duration> {
        let config = self.inner.config.read();
        if config.latency.is_empty() {
            return None;
        }
        let dist = config
            .latency
            .get(verb)
            .or_else(|| config.latency.get("*"))?;
        Some(dist.sample()).filter(|d| !d.is_zero())
    }

    /// The error code to answer a request with, if a rule fires.
    pub(crate) fn error(&self, verb: &str, resource: &str, group: &str) -> Option<u16> {
        let config = self.inner.config.read();
        if config.errors.is_empty() {
            return None;
        }
        let mut rng = rand::rng();
        config
            .errors
            .iter()
            .filter(|rule| rule.matches(verb, resource, group))
            .find(|rule| {
                // NaN survives clamp, and random_bool panics on it.
                let rate = if rule.rate.is_nan() { 0.0 } else { rule.rate };
                rng.random_bool(rate.clamp(0.0, 1.0))
            })
            .map(|rule| if rule.code == 429 { 429 } else { 500 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_json() {
        let json = serde_json::json!({
            "latency": {"GET": {"distribution": "uniform", "minMs": 1.0, "maxMs": 2.0}},
            "errors": [{"verb": "PATCH", "resource": "gitrepos.fleet.cattle.io", "code": 429, "rate": 1.0}]
        });
        let config: FaultConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), json);
    }

    #[test]
    fn uniform_latency_stays_within_bounds() {
        let dist = LatencyDistribution::Uniform {
            min_ms: 5.0,
            max_ms: 10.0,
        };
        for _ in 0..100 {
            let d = dist.sample();
            assert!(
                d >= Duration::from_millis(5) && d < Duration::from_millis(10),
                "{d:?}"
            );
        }
    }

    #[test]
    fn error_rules_match_verb_and_group_resource() {
        let handle = FaultHandle::new(FaultConfig {
            latency: BTreeMap::new(),
            errors: vec![ErrorRule {
                verb: Some("PATCH".into()),
                resource: Some("gitrepos.fleet.cattle.io".into()),
                code: 429,
                rate: 1.0,
            }],
        });
        assert_eq!(
            handle.error("PATCH", "gitrepos", "fleet.cattle.io"),
            Some(429)
        );
        assert_eq!(handle.error("GET", "gitrepos", "fleet.cattle.io"), None);
        assert_eq!(handle.error("PATCH", "gitrepos", "other.io"), None);
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        let config: FaultConfig = serde_json::from_value(serde_json::json!({
            "latency": {
                "GET": {"distribution": "constant", "ms": 1e300},
                "get": {"distribution": "uniform", "minMs": 5, "maxMs": 1},
                "*": {"distribution": "logNormal", "medianMs": 1, "sigma": 50}
            },
            "errors": [{"code": 200, "rate": 1.5}]
        }))
        .unwrap();
        let errors = config.validate().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(FaultError::field).collect();
        assert_eq!(
            fields,
            [
                "latency[*].sigma",
                "latency[GET].ms",
                "latency[get]",
                "latency[get].minMs",
                "errors[0].code",
                "errors[0].rate"
            ]
        );
        assert_eq!(
            errors[1].to_string(),
            "latency[GET].ms: Invalid value: 1e+300: must be between 0 and 3.6e+06 milliseconds"
        );
        assert_eq!(
            errors[1].detail(),
            "Invalid value: 1e+300: must be between 0 and 3.6e+06 milliseconds"
        );
        assert!(FaultConfig::default().validate().is_ok());
    }

    #[test]
    fn sampling_never_panics_on_values_set_in_process() {
        let huge = [
            LatencyDistribution::Constant { ms: 1e300 },
            LatencyDistribution::Constant { ms: f64::INFINITY },
            LatencyDistribution::Uniform {
                min_ms: 0.0,
                max_ms: f64::INFINITY,
            },
            // Found by fuzzing: finite bounds whose distance overflows.
            LatencyDistribution::Uniform {
                min_ms: -4.4e305,
                max_ms: f64::MAX,
            },
            LatencyDistribution::Normal {
                mean_ms: 1e300,
                stddev_ms: f64::NAN,
            },
            LatencyDistribution::LogNormal {
                median_ms: 1e300,
                sigma: 1e10,
            },
            LatencyDistribution::Exponential { mean_ms: 1e300 },
        ];
        for dist in huge {
            assert!(dist.sample() <= MAX_LATENCY, "{dist:?}");
        }
        let handle = FaultHandle::new(FaultConfig {
            latency: BTreeMap::new(),
            errors: vec![ErrorRule {
                verb: None,
                resource: None,
                code: 500,
                rate: f64::NAN,
            }],
        });
        assert_eq!(handle.error("GET", "pods", ""), None);
    }

    #[test]
    fn cutting_watches_notifies_subscribers() {
        let handle = FaultHandle::new(FaultConfig::default());
        let mut rx = handle.watch_cuts();
        handle.cut_watches();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 1);
    }
}
