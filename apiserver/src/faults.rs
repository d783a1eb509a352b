//! Fault injection: added latency, injected errors and cut watches.
//!
//! Reliability suites need an API server that misbehaves on request, the way a loaded or
//! flaky kube-apiserver does: slow answers (drawn from a distribution, since constant
//! delays hide queueing effects), `500`/`429` errors at a rate, and every open watch cut at
//! once. The same [`FaultConfig`] is set at start, changed through [`FaultHandle`] at run
//! time, or over HTTP at `/fleetbench/faults`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde::{Deserialize, Serialize};

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
    /// Draws one delay.
    pub fn sample(&self) -> Duration {
        let mut rng = rand::rng();
        let ms = match *self {
            Self::Constant { ms } => ms,
            Self::Uniform { min_ms, max_ms } => {
                if max_ms > min_ms {
                    rng.random_range(min_ms..max_ms)
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
            Duration::from_secs_f64(ms / 1000.0)
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
    /// codes are answered as `500`.
    pub code: u16,
    /// Share of matching requests that fail, between 0 and 1.
    pub rate: f64,
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

    /// Replaces the faults in force.
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
            .find(|rule| rng.random_bool(rule.rate.clamp(0.0, 1.0)))
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
    fn cutting_watches_notifies_subscribers() {
        let handle = FaultHandle::new(FaultConfig::default());
        let mut rx = handle.watch_cuts();
        handle.cut_watches();
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 1);
    }
}
