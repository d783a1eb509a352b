//! Noise, measured: the spread of every SLO's observed value over repeated runs of the
//! same suites (`fleetbench run --repeat N`).
//!
//! One run of a suite is one sample of a noisy process (a shared machine, a scheduler, a
//! garbage collector). Before a figure is quoted, or a threshold is judged tight or loose,
//! the reader needs to know how much it moves between identical runs: the median, the range
//! and the coefficient of variation say that in three numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{RunResults, profile_label};
use crate::slo::Unit;

/// File name of the spread summary in a repeated run's directory.
pub const SPREAD_FILE: &str = "spread.json";

/// The spread of one SLO's observed value over the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Suite name.
    pub suite: String,
    /// SLO name.
    pub slo: String,
    /// Profile, or that the controller's settings are unknown.
    pub profile: String,
    /// Unit of the values.
    pub unit: Unit,
    /// The observed value of each run that observed one, in run order.
    pub values: Vec<f64>,
    /// Runs in which the SLO had no observation (not measured, not applicable).
    pub unobserved: usize,
    /// Runs in which the SLO failed.
    pub failures: usize,
    /// Median of `values`.
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Standard deviation divided by the mean (population form); absent when the mean
    /// is zero, where it means nothing.
    pub cv: Option<f64>,
}

/// The spread of every SLO over `runs`, keyed by suite, profile and SLO so that runs of
/// other setups never mix. SLOs observed in no run are listed with empty values.
pub fn spreads(runs: &[RunResults]) -> Vec<Spread> {
    /// One series' observations so far.
    struct Series {
        unit: Unit,
        values: Vec<f64>,
        unobserved: usize,
        failures: usize,
    }
    let mut grouped: BTreeMap<(String, String, String), Series> = BTreeMap::new();
    for run in runs {
        for (suite, slo) in run.slos() {
            let key = (
                suite.name.clone(),
                profile_label(suite.profile).to_string(),
                slo.name.clone(),
            );
            let series = grouped.entry(key).or_insert_with(|| Series {
                unit: slo.unit,
                values: Vec::new(),
                unobserved: 0,
                failures: 0,
            });
            match slo.observed {
                Some(value) if value.is_finite() => series.values.push(value),
                _ => series.unobserved += 1,
            }
            if slo.failed() {
                series.failures += 1;
            }
        }
    }
    grouped
        .into_iter()
        .map(|((suite, profile, slo), series)| {
            let (median, min, max, cv) = summarise(&series.values);
            Spread {
                suite,
                slo,
                profile,
                unit: series.unit,
                values: series.values,
                unobserved: series.unobserved,
                failures: series.failures,
                median,
                min,
                max,
                cv,
            }
        })
        .collect()
}

/// (median, min, max, coefficient of variation) of `values`; NaN for an empty set.
fn summarise(values: &[f64]) -> (f64, f64, f64, Option<f64>) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, None);
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
    let cv = (mean != 0.0).then(|| variance.sqrt() / mean.abs());
    (median, sorted[0], sorted[n - 1], cv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;

    fn run_with(value: f64, pass: bool) -> RunResults {
        let mut run = fixtures::run();
        run.suites.truncate(1);
        let slo = &mut run.suites[0].slos[0];
        slo.observed = Some(value);
        slo.pass = pass;
        run
    }

    #[test]
    fn median_range_and_variation_over_runs() {
        let runs = [
            run_with(1.0, true),
            run_with(3.0, true),
            run_with(2.0, true),
            run_with(10.0, false),
        ];
        let all = spreads(&runs);
        assert_eq!(all.len(), 1);
        let spread = &all[0];
        assert_eq!(spread.values, [1.0, 3.0, 2.0, 10.0]);
        assert_eq!(spread.median, 2.5);
        assert_eq!((spread.min, spread.max), (1.0, 10.0));
        assert_eq!(spread.failures, 1);
        let cv = spread.cv.unwrap();
        // mean 4, population stddev sqrt(12.5)
        assert!((cv - 12.5_f64.sqrt() / 4.0).abs() < 1e-12, "{cv}");
    }

    #[test]
    fn unobserved_runs_are_counted_not_averaged_in() {
        let mut missing = run_with(0.0, false);
        missing.suites[0].slos[0].observed = None;
        let all = spreads(&[run_with(2.0, true), missing]);
        assert_eq!(all[0].values, [2.0]);
        assert_eq!(all[0].unobserved, 1);
        assert_eq!(all[0].median, 2.0);
        let none = spreads(&[{
            let mut run = run_with(0.0, false);
            run.suites[0].slos[0].observed = None;
            run
        }]);
        assert!(none[0].median.is_nan());
        assert_eq!(none[0].cv, None);
    }

    #[test]
    fn other_profiles_are_other_series() {
        let mut legacy = run_with(5.0, true);
        legacy.suites[0].profile = Some(crate::suite::Profile::FleetV010);
        let all = spreads(&[run_with(1.0, true), legacy]);
        assert_eq!(all.len(), 2, "{all:?}");
    }
}
