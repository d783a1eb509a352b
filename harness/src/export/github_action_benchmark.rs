//! benchmark-action/github-action-benchmark's custom JSON: one array of
//! `{"name", "unit", "value", "extra"}`, read by its `customSmallerIsBetter` and
//! `customBiggerIsBetter` tools.
//!
//! The optional `range` (a variance, shown as `± x`) is never written: an SLO reads one
//! statistic, and a spread that was not measured must not be invented. `extra` is free text
//! the action shows in its chart tooltips; it carries the SLO as written and its verdict, so
//! a point on the chart can be read without opening the run.

use serde::Serialize;

use super::{ExportError, Series};

/// One entry of the array, in the field order the action's documentation shows.
#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    unit: &'a str,
    value: f64,
    extra: String,
}

/// The array, pretty-printed with a final newline (files in CI diffs read better so).
pub(super) fn render(series: &[Series<'_>]) -> Result<String, ExportError> {
    let entries: Vec<Entry<'_>> = series
        .iter()
        .map(|series| Entry {
            name: &series.name,
            unit: series.slo.unit.as_str(),
            value: series.observed,
            extra: extra(series),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&entries).map_err(|source| ExportError::Json {
        format: "github-action-benchmark",
        source,
    })?;
    text.push('\n');
    Ok(text)
}

/// `p99 of label-to-bd <= 10s (= 10 s): pass`, then the damage when there is one.
fn extra(series: &Series<'_>) -> String {
    let slo = series.slo;
    let mut text = format!(
        "{} of {} {} {} (= {} {}): {}",
        slo.stat,
        slo.measurement,
        slo.comparison,
        slo.threshold_expr,
        super::number(slo.threshold),
        slo.unit,
        if slo.pass { "pass" } else { "fail" }
    );
    if let Some(why) = &slo.damaged {
        text.push_str("; measurement damaged: ");
        text.push_str(why);
    }
    text
}

#[cfg(test)]
mod tests {
    use crate::export::{Direction, Format, render};
    use crate::results::fixtures;

    #[test]
    fn exact_output_for_the_fixture_run() {
        let run = fixtures::run();
        let smaller = render(&run, Format::GithubActionBenchmark, None).unwrap();
        assert_eq!(
            smaller.text,
            r#"[
  {
    "name": "embedded/current/label-propagation/bd-p99",
    "unit": "s",
    "value": 1.49,
    "extra": "p99 of label-to-bd <= 10s (= 10 s): pass"
  }
]
"#
        );
        let bigger = render(&run, Format::GithubActionBenchmark, Some(Direction::Bigger)).unwrap();
        assert_eq!(
            bigger.text,
            r#"[
  {
    "name": "embedded/current/polling-jitter/jitter-spread",
    "unit": "s",
    "value": 0.01,
    "extra": "stddev of poll-interval >= 0.5s (= 0.5 s): fail"
  }
]
"#
        );
    }

    /// The shape the action's documentation gives for custom tools: an array of objects
    /// with a string `name`, a string `unit` and a numeric `value`; `range` and `extra`, when
    /// present, are strings.
    #[test]
    fn matches_the_documented_custom_tool_shape() {
        let mut run = fixtures::run();
        run.suites[0].slos[0].damaged = Some("the wait for quiet \"gave up\"".into());
        for direction in [Direction::Smaller, Direction::Bigger] {
            let export = render(&run, Format::GithubActionBenchmark, Some(direction)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&export.text).unwrap();
            let entries = value.as_array().expect("an array");
            assert_eq!(entries.len(), 1);
            for entry in entries {
                let object = entry.as_object().expect("objects");
                assert!(object["name"].is_string(), "{entry}");
                assert!(object["unit"].is_string(), "{entry}");
                assert!(object["value"].is_number(), "{entry}");
                for optional in ["range", "extra"] {
                    if let Some(field) = object.get(optional) {
                        assert!(field.is_string(), "{optional}: {entry}");
                    }
                }
                for key in object.keys() {
                    assert!(
                        ["name", "unit", "value", "range", "extra"].contains(&key.as_str()),
                        "undocumented field {key}"
                    );
                }
            }
        }
        let smaller = render(&run, Format::GithubActionBenchmark, None).unwrap();
        let value: serde_json::Value = serde_json::from_str(&smaller.text).unwrap();
        assert_eq!(
            value[0]["extra"],
            "p99 of label-to-bd <= 10s (= 10 s): pass; measurement damaged: the wait for quiet \"gave up\""
        );
    }

    #[test]
    fn an_empty_selection_is_an_empty_array() {
        let mut run = fixtures::run();
        run.suites.clear();
        let export = render(&run, Format::GithubActionBenchmark, None).unwrap();
        assert_eq!(export.text, "[]\n");
        assert_eq!(export.exported, 0);
    }
}
