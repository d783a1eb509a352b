//! Collecting latencies from the watch log: for each expected event, the time from its
//! action to its first matching arrival.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use super::{Context, StepError};
use crate::measure::recorder::{Observed, WaitError};
use crate::measure::stats::Summary;
use crate::progress::Task;
use crate::results::{ApiRequestCount, Measurement};
use crate::slo::{Stat, Unit};
use crate::suite::{CountWrites, MeasurementKind};

/// What [`collect`] found.
#[derive(Debug)]
pub struct Collected<K> {
    /// Latency per key, in arrival order.
    pub arrivals: Vec<(K, f64)>,
    /// How many were expected.
    pub expected: usize,
    /// Whether the wait ended on its bound.
    pub timed_out: bool,
}

impl<K: Debug> Collected<K> {
    /// How many never arrived.
    pub fn missing(&self) -> usize {
        self.expected.saturating_sub(self.arrivals.len())
    }

    /// The latency measurement.
    pub fn measurement(&self, description: &str, missing_keys: Vec<String>) -> Measurement {
        let samples: Vec<f64> = self.arrivals.iter().map(|(_, s)| *s).collect();
        let mut stats = Summary::of(&samples).to_stats();
        stats.remove(&Stat::Stddev);
        stats.insert(Stat::Expected, self.expected as f64);
        stats.insert(Stat::Missing, self.missing() as f64);
        let mut notes = Vec::new();
        if self.missing() > 0 {
            notes.push(format!(
                "{} of {} never observed{}",
                self.missing(),
                self.expected,
                if self.timed_out {
                    " before the step's timeout"
                } else {
                    ""
                }
            ));
            notes.extend(
                missing_keys
                    .into_iter()
                    .take(20)
                    .map(|k| format!("missing: {k}")),
            );
        }
        Measurement {
            kind: MeasurementKind::Latency,
            unit: Unit::Seconds,
            description: description.to_string(),
            stats,
            samples,
            breakdown: BTreeMap::new(),
            band: None,
            notes,
        }
    }
}

/// Scans the watch log from `cursor` until `expected` distinct keys matched or `timeout`.
/// `matcher` maps an observed change to its key and the instant its action started.
pub async fn collect<K>(
    ctx: &Context<'_>,
    cursor: usize,
    expected: usize,
    timeout: Duration,
    task: &Task,
    mut matcher: impl FnMut(&Observed) -> Option<(K, Instant)>,
) -> Result<Collected<K>, StepError>
where
    K: Ord + Clone + Debug,
{
    let mut found: BTreeMap<K, ()> = BTreeMap::new();
    let mut arrivals: Vec<(K, f64)> = Vec::new();
    let mut position = cursor;
    let outcome = ctx
        .recorder
        .wait_until(timeout, &ctx.cancel, |state| {
            for observed in &state.log[position..] {
                if let Some((key, start)) = matcher(observed)
                    && observed.at >= start
                    && !found.contains_key(&key)
                {
                    found.insert(key.clone(), ());
                    arrivals.push((key, observed.at.duration_since(start).as_secs_f64()));
                }
            }
            position = state.log.len();
            task.set(arrivals.len() as u64);
            (arrivals.len() >= expected).then_some(())
        })
        .await;
    let timed_out = match outcome {
        Ok(()) => false,
        Err(WaitError::Timeout(_)) => true,
        Err(WaitError::Cancelled) => return Err(StepError::Cancelled),
    };
    Ok(Collected {
        arrivals,
        expected,
        timed_out,
    })
}

/// The `count_writes` measurements of a step, with `note` (how long they were counted).
pub fn write_counts(
    counts: &[CountWrites],
    requests: &[ApiRequestCount],
    note: &str,
) -> Vec<(String, Measurement)> {
    counts
        .iter()
        .map(|count| {
            let (name, mut measurement) = super::status::writes_measurement(count, requests);
            measurement.notes.push(note.to_string());
            (name, measurement)
        })
        .collect()
}

/// Updates and patches of BundleDeployment objects (not of their status, which agents
/// write): what a controller does when it rewrites BundleDeployments that exist, as
/// opposed to creating new ones.
pub fn existing_bundledeployment_writes(
    requests: &[ApiRequestCount],
) -> (u64, BTreeMap<String, f64>) {
    let mut breakdown = BTreeMap::new();
    let mut total = 0;
    for request in requests.iter().filter(|r| {
        r.is_controller_owned()
            && r.resource == "bundledeployments"
            && r.subresource.is_empty()
            && matches!(r.verb.as_str(), "UPDATE" | "PATCH" | "APPLY")
    }) {
        total += request.count;
        *breakdown
            .entry(format!("{} {}", request.verb, request.code))
            .or_insert(0.0) += request.count as f64;
    }
    (total, breakdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(verb: &str, resource: &str, subresource: &str, count: u64) -> ApiRequestCount {
        ApiRequestCount {
            verb: verb.into(),
            group: "fleet.cattle.io".into(),
            resource: resource.into(),
            subresource: subresource.into(),
            code: "200".into(),
            count,
        }
    }

    #[test]
    fn existing_bundledeployment_writes_leave_out_creations_and_status() {
        let requests = [
            request("CREATE", "bundledeployments", "", 3000),
            request("PATCH", "bundledeployments", "status", 3000),
            request("PATCH", "bundles", "status", 3000),
            request("UPDATE", "bundledeployments", "", 27000),
            request("GET", "bundledeployments", "", 5),
        ];
        let (total, breakdown) = existing_bundledeployment_writes(&requests);
        assert_eq!(
            total, 27000,
            "a controller rewriting every BundleDeployment"
        );
        assert_eq!(breakdown["UPDATE 200"], 27000.0);
        assert_eq!(existing_bundledeployment_writes(&requests[..3]).0, 0);
    }
}
