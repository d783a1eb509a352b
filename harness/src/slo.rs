//! SLO verdicts: a suite's thresholds applied to its measurements.
//!
//! An SLO whose measurement is missing (the step that takes it failed or never ran) fails
//! with the reason attached: a run that measured nothing must not pass. A verdict reads the
//! same wherever it is shown (JUnit, the report, the console): `SloResult`'s `Display`.
//! The words SLOs are written in are in [`vocabulary`].

pub mod vocabulary;

use std::collections::BTreeMap;
use std::fmt;

pub use vocabulary::{Comparison, Stat, StepOutcome, Unit};

use crate::results::{Measurement, SloResult};
use crate::suite::{MeasurementKind, SloSpec, Suite};

/// Judges every SLO of `suite`; `why_missing` explains absent measurements.
pub fn evaluate(
    suite: &Suite,
    measurements: &BTreeMap<String, Measurement>,
    why_missing: Option<&str>,
) -> Vec<SloResult> {
    evaluate_with(suite, measurements, why_missing, &BTreeMap::new())
}

/// Like [`evaluate`], with measurements that cannot be taken in this run for a stated
/// reason (`measurement name → why`): their SLOs are reported as not applicable instead
/// of failing, so that a comparison that never happened is neither a pass nor a failure.
pub fn evaluate_with(
    suite: &Suite,
    measurements: &BTreeMap<String, Measurement>,
    why_missing: Option<&str>,
    not_applicable: &BTreeMap<String, String>,
) -> Vec<SloResult> {
    let variables = suite.scale.variables();
    let ratios: Vec<&str> = suite
        .baseline
        .iter()
        .flat_map(|b| b.ratios.iter().map(|r| r.name.as_str()))
        .collect();
    suite
        .slos
        .iter()
        .map(|spec| {
            let mut result = evaluate_one(spec, &variables, measurements, why_missing, &ratios);
            if let Some(reason) = not_applicable.get(&spec.measurement)
                && !measurements.contains_key(&spec.measurement)
            {
                result.pass = false;
                result.error = None;
                result.not_applicable = Some(reason.clone());
            }
            result
        })
        .collect()
}

fn evaluate_one(
    spec: &SloSpec,
    variables: &BTreeMap<String, f64>,
    measurements: &BTreeMap<String, Measurement>,
    why_missing: Option<&str>,
    ratios: &[&str],
) -> SloResult {
    let measurement = measurements.get(&spec.measurement);
    let unit = unit_of(spec, measurement, ratios);
    let mut result = SloResult {
        name: spec.name.clone(),
        description: spec.description.clone(),
        measurement: spec.measurement.clone(),
        stat: spec.stat,
        comparison: spec.comparison,
        threshold: 0.0,
        threshold_expr: spec.threshold.text().to_string(),
        observed: None,
        unit,
        pass: false,
        error: None,
        not_applicable: None,
        damaged: None,
    };
    match spec.threshold.evaluate(variables) {
        Ok(threshold) => result.threshold = threshold,
        Err(error) => {
            result.error = Some(error.to_string());
            return result;
        }
    }
    let Some(measurement) = measurement else {
        result.error = Some(match why_missing {
            Some(reason) => format!("not measured: {reason}"),
            None => format!("not measured: no data for {:?}", spec.measurement),
        });
        return result;
    };
    let Some(observed) = measurement.stat(spec.stat) else {
        result.error = Some(format!(
            "{:?} has no {:?} (no samples were observed)",
            spec.measurement,
            spec.stat.as_str()
        ));
        return result;
    };
    result.observed = Some(observed);
    result.pass = spec.comparison.holds(observed, result.threshold);
    result
}

/// The unit of an SLO's threshold and observation: from the measurement when it was
/// taken, else from what the suite says it is (a ratio to a baseline has no unit of time).
fn unit_of(spec: &SloSpec, measurement: Option<&Measurement>, ratios: &[&str]) -> Unit {
    let unit = match measurement {
        Some(measurement) => measurement.unit,
        None if ratios.contains(&spec.measurement.as_str()) => Unit::Ratio,
        None => Unit::Seconds,
    };
    spec.stat.unit_in(unit)
}

/// The verdict line a person would write, `p99 of label-to-bd: 2.4s (threshold <= 2s)`:
/// JUnit's failure messages, the report's objectives and the console summary all say it
/// this way.
impl fmt::Display for SloResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threshold = self.unit.format(self.threshold);
        let comparison = self.comparison;
        write!(f, "{} of {}: ", self.stat, self.measurement)?;
        if let Some(reason) = &self.not_applicable {
            write!(
                f,
                "not applicable (threshold {comparison} {threshold}): {reason}"
            )?;
        } else if let Some(observed) = self.observed {
            let observed = self.unit.format(observed);
            write!(f, "{observed} (threshold {comparison} {threshold})")?;
        } else {
            write!(f, "not measured (threshold {comparison} {threshold})")?;
            if let Some(error) = &self.error {
                write!(f, ": {error}")?;
            }
        }
        if let Some(problem) = &self.damaged {
            write!(f, " [measurement damaged: {problem}]")?;
        }
        Ok(())
    }
}

/// The kind of measurement an SLO reads (for reports choosing a chart).
pub fn kind_of(
    measurements: &BTreeMap<String, Measurement>,
    name: &str,
) -> Option<MeasurementKind> {
    measurements.get(name).map(|m| m.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures::latency;
    use crate::suite::parse_suite;
    use std::path::Path;

    fn suite() -> Suite {
        parse_suite(
            r#"
name: t
scale: {clusters: 2, polling_interval: 10s}
steps:
  - create_clusters: {unlabelled: 1, labels: {env: a}}
  - create_repos: {}
  - create_gitrepos: {targets: [{clusterSelector: {matchLabels: {env: a}}}]}
  - label_cluster: {labels: {env: a}, measure: lat}
slos:
  - {name: p99, measurement: lat, stat: p99, max: polling_interval * 0.2}
  - {name: all, measurement: lat, stat: missing, max: 0}
  - {name: some, measurement: lat, stat: count, min: 3}
"#,
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn judges_max_and_min_thresholds() {
        let measurements = BTreeMap::from([("lat".to_string(), latency(vec![0.5, 1.0, 1.5], 3))]);
        let results = evaluate(&suite(), &measurements, None);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].threshold, 2.0);
        assert_eq!(results[0].comparison, Comparison::AtMost);
        assert!(results[0].pass, "{:?}", results[0]);
        assert_eq!(results[0].unit, Unit::Seconds);
        assert!(results[1].pass);
        assert_eq!(results[1].unit, Unit::Count);
        assert_eq!(results[2].comparison, Comparison::AtLeast);
        assert!(results[2].pass);
    }

    #[test]
    fn fails_when_over_threshold_or_events_missing() {
        let measurements = BTreeMap::from([("lat".to_string(), latency(vec![0.5, 2.5], 3))]);
        let results = evaluate(&suite(), &measurements, None);
        assert!(!results[0].pass, "p99 2.5s > 2s");
        assert_eq!(results[1].observed, Some(1.0));
        assert!(!results[1].pass, "one event never arrived");
        assert!(!results[2].pass, "2 < 3");
    }

    #[test]
    fn missing_measurement_fails_with_the_reason() {
        let results = evaluate(
            &suite(),
            &BTreeMap::new(),
            Some("step 3 (label_cluster) failed: timeout"),
        );
        assert!(results.iter().all(|r| !r.pass && r.observed.is_none()));
        assert!(
            results[0]
                .error
                .as_deref()
                .unwrap()
                .contains("label_cluster")
        );
    }

    #[test]
    fn no_samples_means_no_percentile_and_a_failure() {
        let measurements = BTreeMap::from([("lat".to_string(), latency(vec![], 3))]);
        let results = evaluate(&suite(), &measurements, None);
        assert!(!results[0].pass);
        assert!(results[0].error.as_deref().unwrap().contains("no samples"));
        assert_eq!(results[1].observed, Some(3.0));
    }

    #[test]
    fn a_measurement_that_cannot_be_taken_is_not_applicable_not_passed() {
        let measurements = BTreeMap::from([("lat".to_string(), latency(vec![0.5], 1))]);
        let why = BTreeMap::from([("lat".to_string(), "no baseline".to_string())]);
        let results = evaluate_with(&suite(), &measurements, None, &why);
        assert!(
            results.iter().all(|r| r.not_applicable.is_none()),
            "a measurement that was taken is judged"
        );
        let results = evaluate_with(&suite(), &BTreeMap::new(), None, &why);
        for result in &results {
            assert!(!result.pass, "never a pass: {result:?}");
            assert!(!result.failed(), "never a failure either: {result:?}");
            assert_eq!(result.not_applicable.as_deref(), Some("no baseline"));
            assert_eq!(result.error, None);
        }
    }

    #[test]
    fn a_verdict_reads_as_a_person_would_write_it() {
        let mut slo = crate::results::fixtures::slo("bd-p99", "label-to-bd", Stat::P99, 2.0, 2.4);
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: 2.4s (threshold <= 2s)"
        );
        slo.comparison = Comparison::AtLeast;
        slo.observed = Some(0.01);
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: 10ms (threshold >= 2s)"
        );
        slo.damaged = Some("settle gave up".into());
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: 10ms (threshold >= 2s) [measurement damaged: settle gave up]"
        );
        slo.damaged = None;
        slo.observed = None;
        slo.error = Some("not measured: step 3 failed".into());
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: not measured (threshold >= 2s): not measured: step 3 failed"
        );
        slo.error = None;
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: not measured (threshold >= 2s)"
        );
        slo.not_applicable = Some("no baseline".into());
        slo.unit = Unit::Ratio;
        slo.threshold = 0.5;
        assert_eq!(
            slo.to_string(),
            "p99 of label-to-bd: not applicable (threshold >= 0.5): no baseline"
        );
        slo.stat = Stat::Missing;
        slo.unit = Unit::Count;
        slo.not_applicable = None;
        slo.observed = Some(3.0);
        slo.threshold = 0.0;
        slo.comparison = Comparison::AtMost;
        assert_eq!(
            slo.to_string(),
            "missing of label-to-bd: 3 (threshold <= 0)"
        );
    }
}
