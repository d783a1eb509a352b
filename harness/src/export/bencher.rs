//! Bencher Metric Format (BMF) JSON: benchmark name → measure slug → `{"value": n}`, read
//! by `bencher run --adapter json`.
//!
//! A Bencher measure is a dimension with a unit, and Bencher's thresholds are set per
//! measure with an upper or a lower boundary. So the measure slug is the unit and the
//! direction (`seconds-smaller-is-better`, `count-smaller-is-better`,
//! `seconds-bigger-is-better`): a measure never holds figures whose thresholds would point
//! different ways. `lower_value`/`upper_value` (the bounds of a value) are never written:
//! an SLO reads one statistic, and the SLO's threshold is not a bound of the value.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ExportError, Series};

/// A measure slug's longest accepted length in Bencher.
const SLUG_MAX: usize = 64;

/// One metric: the required `value` only.
#[derive(Serialize)]
struct Metric {
    value: f64,
}

/// The BMF object, pretty-printed with a final newline; keys sorted, so the same run
/// always gives the same bytes.
pub(super) fn render(series: &[Series<'_>]) -> Result<String, ExportError> {
    let mut benchmarks: BTreeMap<&str, BTreeMap<String, Metric>> = BTreeMap::new();
    for series in series {
        benchmarks.entry(&series.name).or_default().insert(
            measure_slug(series.slo.unit.as_str(), series.direction),
            Metric {
                value: series.observed,
            },
        );
    }
    let mut text =
        serde_json::to_string_pretty(&benchmarks).map_err(|source| ExportError::Json {
            format: "bencher",
            source,
        })?;
    text.push('\n');
    Ok(text)
}

/// `<unit>-<smaller|bigger>-is-better`, the unit as a slug (`s` spelled `seconds`, so the
/// measure says what it holds; the values themselves are not converted).
fn measure_slug(unit: &str, direction: super::Direction) -> String {
    let suffix = format!("-{}-is-better", direction.as_str());
    let mut unit = match unit {
        "s" => "seconds".to_string(),
        other => slug(other),
    };
    if unit.is_empty() {
        unit = "value".to_string();
    }
    unit.truncate(SLUG_MAX - suffix.len());
    let unit = unit.trim_end_matches('-');
    format!("{unit}{suffix}")
}

/// Lowercase ASCII letters and digits, every other run of characters one `-`.
fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Direction, Format, render};
    use crate::results::fixtures;
    use crate::slo::Unit;

    #[test]
    fn exact_output_for_the_fixture_run() {
        let export = render(&fixtures::run(), Format::Bencher, None).unwrap();
        assert_eq!(
            export.text,
            r#"{
  "embedded/current/label-propagation/bd-p99": {
    "seconds-smaller-is-better": {
      "value": 1.49
    }
  },
  "embedded/current/polling-jitter/jitter-spread": {
    "seconds-bigger-is-better": {
      "value": 0.01
    }
  }
}
"#
        );
    }

    /// The shape of Bencher's BMF JSON schema: an object of benchmarks, each an object of
    /// measures, each an object with a numeric `value` and optional numeric
    /// `lower_value`/`upper_value`; measure slugs at most 64 characters.
    #[test]
    fn matches_the_documented_bmf_shape() {
        let mut run = fixtures::run();
        run.suites[0].slos[0].unit = Unit::Count;
        run.suites[1].slos[0].unit = Unit::WritesPerChange;
        let export = render(&run, Format::Bencher, None).unwrap();
        let value: serde_json::Value = serde_json::from_str(&export.text).unwrap();
        let benchmarks = value.as_object().expect("an object");
        assert_eq!(benchmarks.len(), 2);
        for (name, measures) in benchmarks {
            assert!(!name.is_empty());
            let measures = measures.as_object().expect("measures are objects");
            assert!(!measures.is_empty());
            for (slug, metric) in measures {
                assert!(slug.len() <= SLUG_MAX, "{slug}");
                assert!(
                    slug.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{slug}"
                );
                let metric = metric.as_object().expect("metrics are objects");
                assert!(metric["value"].is_number(), "{metric:?}");
                for key in metric.keys() {
                    assert!(
                        ["value", "lower_value", "upper_value"].contains(&key.as_str()),
                        "undocumented field {key}"
                    );
                    assert!(metric[key].is_number());
                }
            }
        }
        assert!(
            value["embedded/current/label-propagation/bd-p99"]["count-smaller-is-better"]["value"]
                .is_number()
        );
    }

    #[test]
    fn measure_slugs_name_unit_and_direction() {
        assert_eq!(
            measure_slug("s", Direction::Smaller),
            "seconds-smaller-is-better"
        );
        assert_eq!(
            measure_slug("ratio", Direction::Smaller),
            "ratio-smaller-is-better"
        );
        assert_eq!(
            measure_slug("s", Direction::Bigger),
            "seconds-bigger-is-better"
        );
        assert_eq!(
            measure_slug("Writes / GitRepo", Direction::Smaller),
            "writes-gitrepo-smaller-is-better"
        );
        assert_eq!(
            measure_slug("", Direction::Bigger),
            "value-bigger-is-better"
        );
        let long = measure_slug(&"x".repeat(100), Direction::Smaller);
        assert_eq!(long.len(), SLUG_MAX);
        assert!(long.ends_with("-smaller-is-better"));
    }
}
