//! Collecting latencies from the watch log: for each expected event, the time from its
//! action to its first matching arrival.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use super::{Context, StepError};
use crate::measure::recorder::{Observed, WaitError};
use crate::measure::stats::Summary;
use crate::progress::Task;
use crate::results::Measurement;
use crate::suite::MeasurementKind;

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
        stats.remove("stddev");
        stats.insert("expected".into(), self.expected as f64);
        stats.insert("missing".into(), self.missing() as f64);
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
            unit: "s".into(),
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
