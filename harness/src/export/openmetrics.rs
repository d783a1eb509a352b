//! OpenMetrics text exposition: one gauge family per figure, a sample per SLO, `# EOF` last.
//!
//! Families: `fleetbench_slo_observed` and `fleetbench_slo_threshold` (split by unit, see
//! below), `fleetbench_slo_pass` (1 passed, 0 failed) and `fleetbench_slo_damaged` (1 when
//! the measurement the verdict reads had a problem). Every sample has the labels `suite`,
//! `slo`, `provider`, `profile` (the setup: profile or `external`, plus legacy switches) and
//! `unit`.
//!
//! The specification ties a family's unit to the suffix of its name, so figures in seconds,
//! bytes or ratios go in `…_seconds`, `…_bytes` and `…_ratio` families with a `# UNIT`
//! line, and everything else (counts, writes) in the bare family, where only the `unit`
//! label tells them apart. Values are never scaled to fit a unit.
//!
//! Samples carry no timestamp: the exposition describes one run, and whatever ingests it
//! stamps it on arrival.

use std::fmt::Write as _;

use super::{Series, number};
use crate::slo::Unit;

/// What each family says, for its `# HELP` line.
const OBSERVED_HELP: &str = "The figure an SLO read from its measurement.";
const THRESHOLD_HELP: &str =
    "The bound an SLO holds its figure to (a maximum for <= SLOs, a minimum for >= SLOs).";
const PASS_HELP: &str = "1 when the SLO passed, 0 when it failed.";
const DAMAGED_HELP: &str =
    "1 when the measurement the SLO read had a problem (the verdict is not a clean one), else 0.";

/// A metric family being collected: its samples stay together, as the format requires.
struct Family {
    name: String,
    unit: Option<&'static str>,
    help: &'static str,
    samples: Vec<String>,
}

/// The families, in first-use order, so that the same run always gives the same text.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    fn add(&mut self, base: &str, unit: Option<&'static str>, help: &'static str, sample: String) {
        let name = match unit {
            Some(unit) => format!("{base}_{unit}"),
            None => base.to_string(),
        };
        match self.0.iter_mut().find(|family| family.name == name) {
            Some(family) => family.samples.push(sample),
            None => self.0.push(Family {
                name,
                unit,
                help,
                samples: vec![sample],
            }),
        }
    }
}

/// The exposition, ending in `# EOF` and a newline.
pub(super) fn render(series: &[Series<'_>]) -> String {
    let mut observed = Families::default();
    let mut threshold = Families::default();
    let mut pass = Families::default();
    let mut damaged = Families::default();
    for series in series {
        let slo = series.slo;
        let labels = labels(&[
            ("suite", &series.suite.name),
            ("slo", &slo.name),
            ("provider", series.provider),
            ("profile", &series.setup),
            ("unit", slo.unit.as_str()),
        ]);
        let unit = openmetrics_unit(slo.unit);
        let sample = |value: f64| format!("{{{labels}}} {}", number(value));
        observed.add(
            "fleetbench_slo_observed",
            unit,
            OBSERVED_HELP,
            sample(series.observed),
        );
        threshold.add(
            "fleetbench_slo_threshold",
            unit,
            THRESHOLD_HELP,
            sample(slo.threshold),
        );
        pass.add(
            "fleetbench_slo_pass",
            None,
            PASS_HELP,
            sample(if slo.pass { 1.0 } else { 0.0 }),
        );
        damaged.add(
            "fleetbench_slo_damaged",
            None,
            DAMAGED_HELP,
            sample(if slo.damaged.is_some() { 1.0 } else { 0.0 }),
        );
    }
    let mut text = String::new();
    for family in [observed, threshold, pass, damaged]
        .into_iter()
        .flat_map(|families| families.0)
    {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "# TYPE {} gauge", family.name);
        if let Some(unit) = family.unit {
            let _ = writeln!(text, "# UNIT {} {unit}", family.name);
        }
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        for sample in &family.samples {
            let _ = writeln!(text, "{}{sample}", family.name);
        }
    }
    text.push_str("# EOF\n");
    text
}

/// The OpenMetrics base unit a results unit is, when it is one.
fn openmetrics_unit(unit: Unit) -> Option<&'static str> {
    match unit {
        Unit::Seconds => Some("seconds"),
        Unit::Bytes => Some("bytes"),
        Unit::Ratio => Some("ratio"),
        Unit::Count | Unit::Writes | Unit::WritesPerChange => None,
    }
}

/// `name="value",...` with values escaped as the text format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Escapes a label value: backslash, double quote and line feed are the three characters
/// the text format gives escapes for.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::export::{Format, render};
    use crate::results::fixtures;

    const FIXTURE: &str = r#"# TYPE fleetbench_slo_observed_seconds gauge
# UNIT fleetbench_slo_observed_seconds seconds
# HELP fleetbench_slo_observed_seconds The figure an SLO read from its measurement.
fleetbench_slo_observed_seconds{suite="label-propagation",slo="bd-p99",provider="embedded",profile="current",unit="s"} 1.49
fleetbench_slo_observed_seconds{suite="polling-jitter",slo="jitter-spread",provider="embedded",profile="current",unit="s"} 0.01
# TYPE fleetbench_slo_threshold_seconds gauge
# UNIT fleetbench_slo_threshold_seconds seconds
# HELP fleetbench_slo_threshold_seconds The bound an SLO holds its figure to (a maximum for <= SLOs, a minimum for >= SLOs).
fleetbench_slo_threshold_seconds{suite="label-propagation",slo="bd-p99",provider="embedded",profile="current",unit="s"} 10
fleetbench_slo_threshold_seconds{suite="polling-jitter",slo="jitter-spread",provider="embedded",profile="current",unit="s"} 0.5
# TYPE fleetbench_slo_pass gauge
# HELP fleetbench_slo_pass 1 when the SLO passed, 0 when it failed.
fleetbench_slo_pass{suite="label-propagation",slo="bd-p99",provider="embedded",profile="current",unit="s"} 1
fleetbench_slo_pass{suite="polling-jitter",slo="jitter-spread",provider="embedded",profile="current",unit="s"} 0
# TYPE fleetbench_slo_damaged gauge
# HELP fleetbench_slo_damaged 1 when the measurement the SLO read had a problem (the verdict is not a clean one), else 0.
fleetbench_slo_damaged{suite="label-propagation",slo="bd-p99",provider="embedded",profile="current",unit="s"} 0
fleetbench_slo_damaged{suite="polling-jitter",slo="jitter-spread",provider="embedded",profile="current",unit="s"} 0
# EOF
"#;

    #[test]
    fn exact_output_for_the_fixture_run() {
        let export = render(&fixtures::run(), Format::Openmetrics, None).unwrap();
        assert_eq!(export.text, FIXTURE);
        check(&export.text).unwrap();
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape("line\nbreak"), r"line\nbreak");
        assert_eq!(escape("plain (external) ü"), "plain (external) ü");
        let mut run = fixtures::run();
        run.suites[0].name = "odd \"suite\"\\name\nwith a break".into();
        let export = render(&run, Format::Openmetrics, None).unwrap();
        assert!(
            export
                .text
                .contains(r#"{suite="odd \"suite\"\\name\nwith a break",slo="bd-p99","#),
            "{}",
            export.text
        );
        let samples = check(&export.text).unwrap();
        assert!(
            samples.contains_key(&(
                "fleetbench_slo_pass".to_string(),
                BTreeMap::from([
                    (
                        "suite".to_string(),
                        "odd \"suite\"\\name\nwith a break".to_string()
                    ),
                    ("slo".to_string(), "bd-p99".to_string()),
                    ("provider".to_string(), "embedded".to_string()),
                    ("profile".to_string(), "current".to_string()),
                    ("unit".to_string(), "s".to_string()),
                ])
            )),
            "{samples:?}"
        );
    }

    #[test]
    fn units_without_an_openmetrics_name_share_the_bare_family() {
        let mut run = fixtures::run();
        let template = run.suites[0].slos[0].clone();
        run.suites[0].slos = vec![
            crate::results::SloResult {
                name: "missing".into(),
                unit: Unit::Count,
                observed: Some(0.0),
                threshold: 0.0,
                ..template.clone()
            },
            crate::results::SloResult {
                name: "writes".into(),
                unit: Unit::Writes,
                observed: Some(11.0),
                threshold: 20.0,
                damaged: Some("settle gave up".into()),
                ..template.clone()
            },
            crate::results::SloResult {
                name: "ratio".into(),
                unit: Unit::Ratio,
                observed: Some(0.25),
                threshold: 0.4,
                ..template
            },
        ];
        let text = render(&run, Format::Openmetrics, None).unwrap().text;
        let samples = check(&text).unwrap();
        let value = |family: &str, slo: &str| {
            samples
                .iter()
                .find(|((name, labels), _)| name == family && labels["slo"] == slo)
                .map(|(_, value)| *value)
        };
        assert_eq!(value("fleetbench_slo_observed", "missing"), Some(0.0));
        assert_eq!(value("fleetbench_slo_observed", "writes"), Some(11.0));
        assert_eq!(value("fleetbench_slo_threshold", "writes"), Some(20.0));
        assert_eq!(value("fleetbench_slo_observed_ratio", "ratio"), Some(0.25));
        assert_eq!(value("fleetbench_slo_damaged", "writes"), Some(1.0));
        assert_eq!(value("fleetbench_slo_damaged", "missing"), Some(0.0));
        assert!(text.contains("# UNIT fleetbench_slo_observed_ratio ratio\n"));
        assert!(!text.contains("# UNIT fleetbench_slo_observed "));
    }

    #[test]
    fn an_empty_selection_is_just_the_end_marker() {
        let mut run = fixtures::run();
        run.suites.clear();
        let text = render(&run, Format::Openmetrics, None).unwrap().text;
        assert_eq!(text, "# EOF\n");
        check(&text).unwrap();
    }

    #[test]
    fn the_checker_refuses_what_the_format_forbids() {
        let good = "# TYPE a gauge\na{x=\"1\"} 1\n# EOF\n";
        check(good).unwrap();
        for (bad, why) in [
            ("a{x=\"1\"} 1\n# EOF\n", "sample before TYPE"),
            ("# TYPE a gauge\na{x=\"1\"} 1\n", "no EOF"),
            ("# TYPE a gauge\n# EOF\na{x=\"1\"} 1\n", "EOF not last"),
            (
                "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n# EOF\n",
                "duplicate",
            ),
            ("# TYPE a gauge\na{x=\"1} 1\n# EOF\n", "unterminated"),
            ("# TYPE a gauge\na{x=\"\\t\"} 1\n# EOF\n", "bad escape"),
            ("# TYPE a gauge\na{x=\"1\"} one\n# EOF\n", "not a number"),
            (
                "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n# EOF\n",
                "interleaved",
            ),
            (
                "# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n",
                "unit not a suffix",
            ),
            ("# TYPE a gauge\na{x=\"1\"} 1\n\n# EOF\n", "blank line"),
        ] {
            assert!(check(bad).is_err(), "accepted ({why}): {bad:?}");
        }
    }

    /// A sample's identity: family name and labels.
    pub(crate) type SeriesKey = (String, BTreeMap<String, String>);

    /// A strict reading of the OpenMetrics text format, as far as these exports use it:
    /// `# TYPE`/`# UNIT`/`# HELP` lines precede their family's samples, a family's samples
    /// are contiguous, a `# UNIT` is the suffix of its family's name, every sample line is
    /// `name{labels} value` with escaped label values, no series appears twice, and `# EOF`
    /// is the last line. Returns the samples.
    pub(crate) fn check(text: &str) -> Result<BTreeMap<SeriesKey, f64>, String> {
        let body = text
            .strip_suffix("# EOF\n")
            .ok_or("the text does not end with \"# EOF\" and a newline")?;
        let mut samples = BTreeMap::new();
        let mut typed: BTreeSet<String> = BTreeSet::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut current: Option<String> = None;
        for (number, line) in body.lines().enumerate() {
            let fail = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (kind, name, value) = (
                    parts.next().unwrap_or_default(),
                    parts
                        .next()
                        .ok_or_else(|| fail("metadata without a name"))?,
                    parts
                        .next()
                        .ok_or_else(|| fail("metadata without a value"))?,
                );
                valid_name(name).map_err(|why| fail(&why))?;
                match kind {
                    "TYPE" => {
                        if value != "gauge" {
                            return Err(fail("only gauges are expected"));
                        }
                        if !typed.insert(name.to_string()) {
                            return Err(fail("a second TYPE for a family"));
                        }
                        if let Some(previous) = current.replace(name.to_string()) {
                            finished.insert(previous);
                        }
                    }
                    "UNIT" | "HELP" => {
                        if current.as_deref() != Some(name) {
                            return Err(fail("metadata outside its family"));
                        }
                        if kind == "UNIT" && !name.ends_with(&format!("_{value}")) {
                            return Err(fail("the unit is not the suffix of the name"));
                        }
                    }
                    _ => return Err(fail("unknown metadata")),
                }
                continue;
            }
            let (name, labels, value) = sample(line).map_err(|why| fail(&why))?;
            if current.as_deref() != Some(name.as_str()) {
                return Err(fail(if finished.contains(&name) {
                    "a family's samples are interleaved with another's"
                } else {
                    "a sample before its family's TYPE line"
                }));
            }
            if samples.insert((name, labels), value).is_some() {
                return Err(fail("the same series twice"));
            }
        }
        Ok(samples)
    }

    fn valid_name(name: &str) -> Result<(), String> {
        let mut chars = name.chars();
        let first = chars.next().ok_or("an empty name")?;
        if (first.is_ascii_alphabetic() || first == '_' || first == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            Ok(())
        } else {
            Err(format!("{name:?} is not a metric name"))
        }
    }

    /// `name{label="value",...} number`, label values unescaped.
    fn sample(line: &str) -> Result<(String, BTreeMap<String, String>, f64), String> {
        let name_end = line.find(['{', ' ']).ok_or("no value after the name")?;
        let name = &line[..name_end];
        valid_name(name)?;
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            loop {
                let start = chars.peek().map(|(i, _)| *i).ok_or("unterminated labels")?;
                if inner[start..].starts_with('}') {
                    rest = &inner[start + 1..];
                    break;
                }
                let eq = inner[start..].find("=\"").ok_or("a label without =\"")? + start;
                let label = &inner[start..eq];
                valid_name(label)?;
                while chars.peek().is_some_and(|(i, _)| *i < eq + 2) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next().ok_or("an unterminated label value")?.1 {
                        '"' => break,
                        '\n' => return Err("a raw line feed in a label value".into()),
                        '\\' => match chars.next().ok_or("an unterminated escape")?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => return Err(format!("an unknown escape \\{other}")),
                        },
                        other => value.push(other),
                    }
                }
                if labels.insert(label.to_string(), value).is_some() {
                    return Err(format!("label {label} twice"));
                }
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    _ => return Err("labels not separated by commas".into()),
                }
            }
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or("no single space before the value")?;
        let value: f64 = value
            .parse()
            .map_err(|_| format!("{value:?} is not a number"))?;
        Ok((name.to_string(), labels, value))
    }
}
