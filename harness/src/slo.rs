//! SLO verdicts: a suite's thresholds applied to its measurements.
//!
//! An SLO whose measurement is missing (the step that takes it failed or never ran) fails
//! with the reason attached: a run that measured nothing must not pass.

use std::collections::BTreeMap;

use crate::results::{Measurement, SloResult};
use crate::suite::{MeasurementKind, SloSpec, Suite};

/// Stats that count things rather than carry the measurement's unit.
const COUNT_STATS: [&str; 7] = [
    "count",
    "expected",
    "missing",
    "missed",
    "mismatches",
    "repos",
    "max-advertisements-per-interval",
];

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
    let (comparison, expr) = match (&spec.max, &spec.min) {
        (Some(max), _) => ("<=", max),
        (None, Some(min)) => (">=", min),
        (None, None) => unreachable!("validated: every SLO has max or min"),
    };
    let measurement = measurements.get(&spec.measurement);
    let unit = unit_of(spec, measurement, ratios);
    let mut result = SloResult {
        name: spec.name.clone(),
        description: spec.description.clone(),
        measurement: spec.measurement.clone(),
        stat: spec.stat.clone(),
        comparison: comparison.to_string(),
        threshold: 0.0,
        threshold_expr: expr.text().to_string(),
        observed: None,
        unit,
        pass: false,
        error: None,
        not_applicable: None,
        damaged: None,
    };
    match expr.evaluate(variables) {
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
    let Some(observed) = measurement.stat(&spec.stat) else {
        result.error = Some(format!(
            "{:?} has no {:?} (no samples were observed)",
            spec.measurement, spec.stat
        ));
        return result;
    };
    result.observed = Some(observed);
    result.pass = match comparison {
        "<=" => observed <= result.threshold,
        _ => observed >= result.threshold,
    };
    result
}

/// The unit of an SLO's threshold and observation: from the measurement when it was
/// taken, else from what the suite says it is (a ratio to a baseline has no unit of time).
fn unit_of(spec: &SloSpec, measurement: Option<&Measurement>, ratios: &[&str]) -> String {
    if COUNT_STATS.contains(&spec.stat.as_str()) {
        return "count".to_string();
    }
    match measurement {
        Some(measurement) => measurement.unit.clone(),
        None if ratios.contains(&spec.measurement.as_str()) => "ratio".to_string(),
        None => "s".to_string(),
    }
}

/// Formats a value with its unit for people: `1.25s`, `340ms`, `3000`, `38%`.
pub fn format_value(value: f64, unit: &str) -> String {
    if !value.is_finite() {
        return "n/a".to_string();
    }
    match unit {
        "s" if value.abs() < 1.0 && value != 0.0 => format!("{:.0}ms", value * 1000.0),
        "s" if value.abs() < 100.0 => format!("{}s", trim(value, 2)),
        "s" => format!("{}s", trim(value, 0)),
        "ratio" => trim(value, 3),
        "bytes" => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
        "count" | "writes" => trim(value, 0),
        other => format!("{} {other}", trim(value, 2)),
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
        assert_eq!(results[0].comparison, "<=");
        assert!(results[0].pass, "{:?}", results[0]);
        assert_eq!(results[0].unit, "s");
        assert!(results[1].pass);
        assert_eq!(results[1].unit, "count");
        assert_eq!(results[2].comparison, ">=");
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
    fn formats_values_for_people() {
        assert_eq!(format_value(0.34, "s"), "340ms");
        assert_eq!(format_value(1.25, "s"), "1.25s");
        assert_eq!(format_value(120.4, "s"), "120s");
        assert_eq!(format_value(3000.0, "count"), "3000");
        assert_eq!(format_value(0.375, "ratio"), "0.375");
        assert_eq!(format_value(f64::NAN, "s"), "n/a");
        assert_eq!(
            format_value(0.07, "writes per change"),
            "0.07 writes per change",
            "a fraction of a write is not rounded to 0"
        );
    }
}
