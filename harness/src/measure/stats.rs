//! Summaries of samples: HdrHistogram percentiles plus exact extremes.
//!
//! Percentiles come from an HdrHistogram (microsecond resolution, 3 significant digits),
//! as clusterloader2 and most load tools report them; `min` and `max` are taken from the
//! raw samples so an SLO like "every orphan deleted within 5s" is judged on the exact worst
//! case, not a bucket's upper edge.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::slo::Stat;

/// Samples are seconds; the histogram stores microseconds.
const MICROS: f64 = 1e6;
/// One hour in microseconds is far beyond any wait the harness allows; larger saturates.
const HIGHEST_MICROS: u64 = 24 * 3600 * 1_000_000;

/// Percentiles and moments of a set of samples (seconds).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Exact smallest sample.
    pub min: f64,
    /// Exact largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub stddev: f64,
}

impl Summary {
    /// Summarises samples in seconds; negative or non-finite samples are clamped to 0.
    pub fn of(samples: &[f64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut histogram = Histogram::<u64>::new_with_bounds(1, HIGHEST_MICROS, 3)
            .expect("static histogram bounds are valid");
        let clean: Vec<f64> = samples
            .iter()
            .map(|s| if s.is_finite() && *s > 0.0 { *s } else { 0.0 })
            .collect();
        for sample in &clean {
            histogram.saturating_record((sample * MICROS).round().max(1.0) as u64);
        }
        let quantile = |q: f64| histogram.value_at_quantile(q) as f64 / MICROS;
        let count = clean.len();
        let mean = clean.iter().sum::<f64>() / count as f64;
        let variance = clean.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / count as f64;
        Summary {
            count,
            p50: quantile(0.50),
            p90: quantile(0.90),
            p99: quantile(0.99),
            min: clean.iter().copied().fold(f64::INFINITY, f64::min),
            max: clean.iter().copied().fold(0.0, f64::max),
            mean,
            stddev: variance.sqrt(),
        }
    }

    /// The summary as the named stats SLOs read.
    pub fn to_stats(&self) -> BTreeMap<Stat, f64> {
        let mut stats = BTreeMap::from([(Stat::Count, self.count as f64)]);
        if self.count > 0 {
            for (stat, value) in [
                (Stat::P50, self.p50),
                (Stat::P90, self.p90),
                (Stat::P99, self.p99),
                (Stat::Min, self.min),
                (Stat::Max, self.max),
                (Stat::Mean, self.mean),
                (Stat::Stddev, self.stddev),
            ] {
                stats.insert(stat, value);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_ramp() {
        let samples: Vec<f64> = (1..=1000).map(|i| f64::from(i) / 1000.0).collect();
        let summary = Summary::of(&samples);
        assert_eq!(summary.count, 1000);
        assert!((summary.p50 - 0.5).abs() < 0.001, "{summary:?}");
        assert!((summary.p90 - 0.9).abs() < 0.001, "{summary:?}");
        assert!((summary.p99 - 0.99).abs() < 0.001, "{summary:?}");
        assert_eq!(summary.max, 1.0);
        assert_eq!(summary.min, 0.001);
        assert!((summary.mean - 0.5005).abs() < 1e-9);
        // Uniform over [0, 1]: sd = 1/sqrt(12).
        assert!((summary.stddev - 0.2887).abs() < 0.001, "{summary:?}");
    }

    #[test]
    fn one_slow_sample_moves_p99_and_max_only() {
        let mut samples = vec![0.1; 999];
        samples.push(7.25);
        let summary = Summary::of(&samples);
        assert!((summary.p50 - 0.1).abs() < 0.001);
        assert!((summary.p99 - 0.1).abs() < 0.001);
        assert_eq!(summary.max, 7.25, "max is exact, not a bucket edge");
    }

    #[test]
    fn empty_samples_have_only_a_count() {
        let stats = Summary::of(&[]).to_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[&Stat::Count], 0.0);
    }

    #[test]
    fn bad_samples_are_clamped_not_panicking() {
        let summary = Summary::of(&[f64::NAN, -1.0, 2.0]);
        assert_eq!(summary.count, 3);
        assert_eq!(summary.min, 0.0);
        assert_eq!(summary.max, 2.0);
    }
}
