//! The words SLOs and results are written in: statistics, comparisons, units and step
//! outcomes.
//!
//! Each is a closed set, and each used to be a string compared in a dozen places: a stat
//! spelled `p99` in one file and `"P99"` in another, a comparison that was neither `<=`
//! nor `>=`, a unit nobody formats. As enums, a suite file with a typo fails to load
//! (with its file and line), a results file with an unknown word fails to read, and code
//! that matches on them is checked for every case. Serde renames keep the spelling of
//! suite files and `results.json` exactly what it was.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A statistic of a measurement: what an SLO reads, and the key of
/// [`Measurement::stats`](crate::results::Measurement::stats).
///
/// Stats order by their spelling, so a map keyed by them is written in the order the
/// string keys always were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stat {
    /// Median.
    #[serde(rename = "p50")]
    P50,
    /// 90th percentile.
    #[serde(rename = "p90")]
    P90,
    /// 99th percentile.
    #[serde(rename = "p99")]
    P99,
    /// Exact largest sample.
    #[serde(rename = "max")]
    Max,
    /// Exact smallest sample.
    #[serde(rename = "min")]
    Min,
    /// Arithmetic mean.
    #[serde(rename = "mean")]
    Mean,
    /// Population standard deviation.
    #[serde(rename = "stddev")]
    Stddev,
    /// How many samples (events that arrived, intervals seen).
    #[serde(rename = "count")]
    Count,
    /// How many events were expected.
    #[serde(rename = "expected")]
    Expected,
    /// Expected events that never arrived.
    #[serde(rename = "missing")]
    Missing,
    /// Polls that did not happen within the interval's band.
    #[serde(rename = "missed")]
    Missed,
    /// Polls the GitRepo's `status.lastPollingTriggered` disagrees with.
    #[serde(rename = "mismatches")]
    Mismatches,
    /// Repositories that were polled.
    #[serde(rename = "repos")]
    Repos,
    /// Ref listings of one repository within one interval (2 for a controller polling twice).
    #[serde(rename = "max-advertisements-per-interval")]
    MaxAdvertisementsPerInterval,
    /// Jitter within each repository's own intervals.
    #[serde(rename = "within-repo-stddev")]
    WithinRepoStddev,
    /// The smallest per-repository standard deviation.
    #[serde(rename = "min-repo-stddev")]
    MinRepoStddev,
    /// The one number of a count or value measurement.
    #[serde(rename = "value")]
    Value,
}

impl Stat {
    /// Every stat.
    pub const ALL: [Stat; 17] = [
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::Max,
        Stat::Min,
        Stat::Mean,
        Stat::Stddev,
        Stat::Count,
        Stat::Expected,
        Stat::Missing,
        Stat::Missed,
        Stat::Mismatches,
        Stat::Repos,
        Stat::MaxAdvertisementsPerInterval,
        Stat::WithinRepoStddev,
        Stat::MinRepoStddev,
        Stat::Value,
    ];

    /// The spelling in suite files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::Max => "max",
            Stat::Min => "min",
            Stat::Mean => "mean",
            Stat::Stddev => "stddev",
            Stat::Count => "count",
            Stat::Expected => "expected",
            Stat::Missing => "missing",
            Stat::Missed => "missed",
            Stat::Mismatches => "mismatches",
            Stat::Repos => "repos",
            Stat::MaxAdvertisementsPerInterval => "max-advertisements-per-interval",
            Stat::WithinRepoStddev => "within-repo-stddev",
            Stat::MinRepoStddev => "min-repo-stddev",
            Stat::Value => "value",
        }
    }

    /// Whether the stat counts things rather than carrying its measurement's unit.
    pub fn is_count(self) -> bool {
        matches!(
            self,
            Stat::Count
                | Stat::Expected
                | Stat::Missing
                | Stat::Missed
                | Stat::Mismatches
                | Stat::Repos
                | Stat::MaxAdvertisementsPerInterval
        )
    }

    /// Whether the stat of a latency is computed over the events that arrived only: an
    /// event that never arrives does not move it (a p99 over 10 arrivals of 3000 expected
    /// looks fine), so an SLO on one means nothing without an SLO on `missing`.
    pub fn is_arrival(self) -> bool {
        matches!(
            self,
            Stat::P50 | Stat::P90 | Stat::P99 | Stat::Max | Stat::Min | Stat::Mean
        )
    }

    /// The unit of this stat of a measurement in `unit`.
    pub fn unit_in(self, unit: Unit) -> Unit {
        if self.is_count() { Unit::Count } else { unit }
    }

    /// Whether a threshold on this stat is one a spread of samples can be drawn against
    /// (`<=` on a percentile or the maximum).
    pub fn is_spread_bound(self) -> bool {
        matches!(self, Stat::Max | Stat::P99 | Stat::P90 | Stat::P50)
    }
}

impl Ord for Stat {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Stat {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an SLO compares its observation with its threshold: `max:` or `min:` in a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparison {
    /// `max:`: pass when the observation is at most the threshold.
    #[serde(rename = "<=")]
    AtMost,
    /// `min:`: pass when the observation is at least the threshold.
    #[serde(rename = ">=")]
    AtLeast,
}

impl Comparison {
    /// `<=` or `>=`, as results spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::AtMost => "<=",
            Comparison::AtLeast => ">=",
        }
    }

    /// `≤` or `≥`, as people write it.
    pub fn sign(self) -> &'static str {
        match self {
            Comparison::AtMost => "≤",
            Comparison::AtLeast => "≥",
        }
    }

    /// The suite file's field for it: `max` or `min`.
    pub fn field(self) -> &'static str {
        match self {
            Comparison::AtMost => "max",
            Comparison::AtLeast => "min",
        }
    }

    /// Whether `observed` meets `threshold`.
    pub fn holds(self, observed: f64, threshold: f64) -> bool {
        match self {
            Comparison::AtMost => observed <= threshold,
            Comparison::AtLeast => observed >= threshold,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of a measurement, an SLO's threshold and its observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Seconds (latencies, intervals, durations).
    #[serde(rename = "s")]
    Seconds,
    /// Things counted (events, polls, objects).
    #[serde(rename = "count")]
    Count,
    /// API writes.
    #[serde(rename = "writes")]
    Writes,
    /// API writes per status change.
    #[serde(rename = "writes per change")]
    WritesPerChange,
    /// This run's figure divided by a baseline's.
    #[serde(rename = "ratio")]
    Ratio,
    /// Bytes (memory).
    #[serde(rename = "bytes")]
    Bytes,
}

impl Unit {
    /// The spelling in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Count => "count",
            Unit::Writes => "writes",
            Unit::WritesPerChange => "writes per change",
            Unit::Ratio => "ratio",
            Unit::Bytes => "bytes",
        }
    }

    /// A value in this unit for people: `1.25s`, `340ms`, `3000`, `0.375`, `38.1 MiB`.
    pub fn format(self, value: f64) -> String {
        if !value.is_finite() {
            return "n/a".to_string();
        }
        match self {
            Unit::Seconds if value.abs() < 1.0 && value != 0.0 => {
                format!("{:.0}ms", value * 1000.0)
            }
            Unit::Seconds if value.abs() < 100.0 => format!("{}s", trim(value, 2)),
            Unit::Seconds => format!("{}s", trim(value, 0)),
            Unit::Ratio => trim(value, 3),
            Unit::Bytes => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
            Unit::Count | Unit::Writes => trim(value, 0),
            Unit::WritesPerChange => format!("{} {}", trim(value, 2), self.as_str()),
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn trim(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It did what it does.
    Ok,
    /// It failed; the step's message says why, and the suite stopped there.
    Error,
    /// The run was interrupted (Ctrl-C) while it ran.
    Interrupted,
}

impl StepOutcome {
    /// The spelling in results.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Error => "error",
            StepOutcome::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_word_round_trips_as_the_string_it_always_was() {
        for stat in Stat::ALL {
            let json = serde_json::to_string(&stat).unwrap();
            assert_eq!(json, format!("\"{}\"", stat.as_str()));
            assert_eq!(serde_json::from_str::<Stat>(&json).unwrap(), stat);
            assert_eq!(stat.to_string(), stat.as_str());
        }
        for (comparison, text) in [(Comparison::AtMost, "<="), (Comparison::AtLeast, ">=")] {
            let json = serde_json::to_string(&comparison).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<Comparison>(&json).unwrap(),
                comparison
            );
        }
        for unit in [
            Unit::Seconds,
            Unit::Count,
            Unit::Writes,
            Unit::WritesPerChange,
            Unit::Ratio,
            Unit::Bytes,
        ] {
            let json = serde_json::to_string(&unit).unwrap();
            assert_eq!(json, format!("\"{}\"", unit.as_str()));
            assert_eq!(serde_json::from_str::<Unit>(&json).unwrap(), unit);
        }
        for outcome in [
            StepOutcome::Ok,
            StepOutcome::Error,
            StepOutcome::Interrupted,
        ] {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(serde_json::from_str::<StepOutcome>(&json).unwrap(), outcome);
        }
        assert!(serde_json::from_str::<Stat>("\"P99\"").is_err());
        assert!(serde_json::from_str::<Comparison>("\"==\"").is_err());
        assert!(serde_json::from_str::<Unit>("\"seconds\"").is_err());
    }

    #[test]
    fn a_map_keyed_by_stat_is_written_in_the_order_of_its_strings() {
        let stats: BTreeMap<Stat, f64> = Stat::ALL.into_iter().map(|s| (s, 1.0)).collect();
        let json = serde_json::to_string(&stats).unwrap();
        let strings: BTreeMap<&str, f64> =
            Stat::ALL.into_iter().map(|s| (s.as_str(), 1.0)).collect();
        assert_eq!(json, serde_json::to_string(&strings).unwrap());
        assert_eq!(
            serde_json::from_str::<BTreeMap<Stat, f64>>(&json).unwrap(),
            stats
        );
    }

    #[test]
    fn count_stats_are_counted_whatever_the_measurement() {
        assert_eq!(Stat::Missing.unit_in(Unit::Seconds), Unit::Count);
        assert_eq!(
            Stat::MaxAdvertisementsPerInterval.unit_in(Unit::Seconds),
            Unit::Count
        );
        assert_eq!(Stat::P99.unit_in(Unit::Seconds), Unit::Seconds);
        assert_eq!(Stat::Value.unit_in(Unit::Writes), Unit::Writes);
    }

    #[test]
    fn comparisons_hold_inclusively() {
        assert!(Comparison::AtMost.holds(2.0, 2.0));
        assert!(!Comparison::AtMost.holds(2.1, 2.0));
        assert!(Comparison::AtLeast.holds(2.0, 2.0));
        assert!(!Comparison::AtLeast.holds(1.9, 2.0));
    }

    #[test]
    fn formats_values_for_people() {
        assert_eq!(Unit::Seconds.format(0.34), "340ms");
        assert_eq!(Unit::Seconds.format(1.25), "1.25s");
        assert_eq!(Unit::Seconds.format(120.4), "120s");
        assert_eq!(Unit::Count.format(3000.0), "3000");
        assert_eq!(Unit::Ratio.format(0.375), "0.375");
        assert_eq!(Unit::Seconds.format(f64::NAN), "n/a");
        assert_eq!(
            Unit::WritesPerChange.format(0.07),
            "0.07 writes per change",
            "a fraction of a write is not rounded to 0"
        );
    }
}
