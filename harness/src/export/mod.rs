//! `fleetbench export`: a run's SLO figures in the input formats of CI dashboards.
//!
//! `results.json` is fleetbench's own contract; the tools that chart figures over commits
//! each read a format of their own. Exporting from a stored run (rather than during it)
//! lets any run be charted later, and keeps the run itself free of dashboard concerns.
//!
//! What goes out: one series per SLO, carrying the value the SLO read (`observed`), in the
//! unit the results record it in. Nothing is converted: seconds stay seconds, counts stay
//! `count`, ratios stay `ratio`, so a chart and the results file always show the same number.
//!
//! Series names are `<provider>/<setup>/<suite>/<slo>`, where the setup is the controller
//! profile (`current`, `fleet-v0.10`) or `external` for a controller the harness did not
//! start, followed by `+switch` for each extra legacy switch. Two setups never share a
//! series, so a dashboard never draws one line through figures that are not comparable,
//! and the same SLO of the same setup keeps its name from run to run. The setup is not
//! [`crate::results::profile_label`]: that is a phrase for people, with spaces, not a token
//! fit for a series name.
//!
//! An SLO without an observation (not measured, not applicable, not a finite number) is
//! never exported as a number: a zero or a gap-filler would chart as a real figure. Such
//! SLOs are left out and listed, with the reason, in [`Export::skipped`].
//!
//! The formats, each in the shape its tool's own documentation gives:
//!
//! - [`Format::GithubActionBenchmark`]: the JSON array the `customSmallerIsBetter` and
//!   `customBiggerIsBetter` tools of benchmark-action/github-action-benchmark read (the
//!   action's README, where it describes custom benchmarks): `name`, `unit`, `value`, and
//!   the optional `extra` (shown in the chart's tooltip). One file feeds one tool, so it holds
//!   one direction only: [`Direction::Smaller`] (`<=` SLOs) unless asked otherwise; SLOs of
//!   the other direction are skipped with a note naming the option that exports them.
//! - [`Format::Bencher`]: Bencher Metric Format JSON (bencher.dev, the "Bencher Metric
//!   Format (BMF)" reference and its JSON schema, and "How to Track Custom Benchmarks"):
//!   benchmark name → measure slug → `{"value": n}`. Bencher sets thresholds per measure,
//!   so the measure slug carries the unit and the direction
//!   (`seconds-smaller-is-better`): one measure never mixes figures whose bounds point
//!   different ways.
//! - [`Format::Openmetrics`]: the OpenMetrics 1.0 text exposition (the OpenMetrics
//!   specification, "Text format"): gauges `fleetbench_slo_observed`,
//!   `fleetbench_slo_threshold`, `fleetbench_slo_pass` and `fleetbench_slo_damaged`, with
//!   the labels `suite`, `slo`, `provider`, `profile` (the setup) and `unit`. The
//!   specification wants a family's unit to be the suffix of its name, so figures in seconds,
//!   bytes or ratios go in `…_seconds`, `…_bytes`, `…_ratio` families with a `# UNIT` line;
//!   other units (counts, writes) have no OpenMetrics unit and go in the bare family, told
//!   apart by the `unit` label.

mod bencher;
mod github_action_benchmark;
mod openmetrics;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

use crate::results::{ResultsError, RunResults, SloResult, SuiteResult};
use crate::slo::Comparison;
use crate::suite::Profile;

/// What a dashboard tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// benchmark-action/github-action-benchmark's custom JSON (`customSmallerIsBetter`, or
    /// `customBiggerIsBetter` with `--direction bigger`).
    GithubActionBenchmark,
    /// Bencher Metric Format JSON, for `bencher run --adapter json`.
    Bencher,
    /// OpenMetrics text exposition, for Prometheus-style scrapers and importers.
    Openmetrics,
}

impl Format {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::GithubActionBenchmark => "github-action-benchmark",
            Format::Bencher => "bencher",
            Format::Openmetrics => "openmetrics",
        }
    }
}

/// Which way an SLO's figure gets better: its comparison, as a chart reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Direction {
    /// `<=` SLOs (a latency, a count of misses): smaller is better.
    Smaller,
    /// `>=` SLOs (a poll interval's lower bound, a jitter spread): bigger is better.
    Bigger,
}

impl Direction {
    /// The direction of an SLO comparison.
    pub fn of(comparison: Comparison) -> Direction {
        match comparison {
            Comparison::AtMost => Direction::Smaller,
            Comparison::AtLeast => Direction::Bigger,
        }
    }

    /// `smaller` or `bigger`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Smaller => "smaller",
            Direction::Bigger => "bigger",
        }
    }
}

/// Why a run could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The results file is missing, unreadable or not a fleetbench results file.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// Two SLOs of the run would be written under one series name, and a dashboard would
    /// merge their figures.
    #[error("two SLOs of the run would share the series name {name:?}")]
    DuplicateSeries {
        /// The name both would get.
        name: String,
    },
    /// The export could not be serialised as JSON.
    #[error("cannot serialise the {format} export")]
    Json {
        /// The format being written.
        format: &'static str,
        /// The serialiser's error.
        source: serde_json::Error,
    },
    /// The output could not be written.
    #[error("{action} {target}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory (`standard output` for stdout).
        target: String,
        /// The error.
        source: std::io::Error,
    },
}

/// One SLO figure, ready for a format to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// `<provider>/<setup>/<suite>/<slo>`: stable across runs, distinct across setups.
    pub name: String,
    /// The provider the suite ran on.
    pub provider: &'a str,
    /// The profile (or `external`), with `+switch` for each extra legacy switch.
    pub setup: String,
    /// The suite.
    pub suite: &'a SuiteResult,
    /// The SLO.
    pub slo: &'a SloResult,
    /// The SLO's observation (always a finite number).
    pub observed: f64,
    /// Which way it gets better.
    pub direction: Direction,
}

/// An SLO left out of the export, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The series name it would have had.
    pub name: String,
    /// Why it has no number to export.
    pub reason: String,
}

/// The SLOs of a run that can be exported, and those that cannot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection<'a> {
    /// Exportable figures, in run order.
    pub series: Vec<Series<'a>>,
    /// SLOs left out, in run order.
    pub skipped: Vec<Skipped>,
    /// Things worth knowing about series that were exported.
    pub notes: Vec<String>,
}

/// A run in one format.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The format.
    pub format: Format,
    /// The direction the export was limited to, if any.
    pub direction: Option<Direction>,
    /// The file's content.
    pub text: String,
    /// How many series it holds.
    pub exported: usize,
    /// SLOs left out, and why.
    pub skipped: Vec<Skipped>,
    /// Things worth knowing about series that were exported.
    pub notes: Vec<String>,
}

impl Export {
    /// What the command tells on stderr: each skipped SLO, each note, then a summary.
    pub fn report_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .skipped
            .iter()
            .map(|skipped| format!("skipped {}: {}", skipped.name, skipped.reason))
            .collect();
        lines.extend(self.notes.iter().map(|note| format!("note: {note}")));
        lines.push(format!(
            "exported {} SLO figure{} as {}{}, skipped {}",
            self.exported,
            if self.exported == 1 { "" } else { "s" },
            self.format.as_str(),
            self.direction
                .map_or(String::new(), |d| format!(" ({} is better)", d.as_str())),
            self.skipped.len()
        ));
        lines
    }
}

/// The series-name token for a profile: its flag value, or `external` for a controller
/// whose settings the harness does not know.
pub fn profile_slug(profile: Option<Profile>) -> &'static str {
    profile.map_or("external", Profile::as_str)
}

/// What produced a suite's numbers, as a series-name token: the profile slug, then
/// `+switch` for each extra legacy switch (sorted, so the order they were given in does not
/// split a series).
pub fn setup_of(suite: &SuiteResult) -> String {
    let mut setup = profile_slug(suite.profile).to_string();
    if let Some(controller) = &suite.settings.controller {
        let mut switches: Vec<&str> = controller.legacy.iter().map(|s| s.as_str()).collect();
        switches.sort_unstable();
        switches.dedup();
        for switch in switches {
            setup.push('+');
            setup.push_str(switch);
        }
    }
    setup
}

/// Sorts a run's SLOs into exportable figures and skipped ones; `only` keeps one direction.
pub fn select(run: &RunResults, only: Option<Direction>) -> Result<Selection<'_>, ExportError> {
    let mut selection = Selection::default();
    let mut names = BTreeSet::new();
    for suite in &run.suites {
        let provider = if suite.settings.provider.is_empty() {
            run.provider.as_str()
        } else {
            suite.settings.provider.as_str()
        };
        let setup = setup_of(suite);
        let mut exported_any = false;
        for slo in &suite.slos {
            let name = format!("{provider}/{setup}/{}/{}", suite.name, slo.name);
            if !names.insert(name.clone()) {
                return Err(ExportError::DuplicateSeries { name });
            }
            match exportable(slo, only) {
                Ok((observed, direction)) => {
                    exported_any = true;
                    if let Some(why) = &slo.damaged {
                        selection.notes.push(format!(
                            "{name} is exported but its measurement is damaged: {why}"
                        ));
                    }
                    selection.series.push(Series {
                        name,
                        provider,
                        setup: setup.clone(),
                        suite,
                        slo,
                        observed,
                        direction,
                    });
                }
                Err(reason) => selection.skipped.push(Skipped {
                    name,
                    reason: reason.to_string(),
                }),
            }
        }
        // Scale overrides change the figures but not the series name (a name carrying
        // arbitrary `--set` text would be neither stable nor readable): say so instead.
        if exported_any && !suite.settings.overrides.is_empty() {
            selection.notes.push(format!(
                "suite {} ran with --set {}: its series share names with runs without these overrides",
                suite.name,
                suite.settings.overrides.join(" --set ")
            ));
        }
    }
    Ok(selection)
}

/// Why an SLO has no figure to export; the selection's notes name it for each SLO left out.
#[derive(Debug, thiserror::Error)]
enum NotExportable {
    /// The SLO does not apply to the controller measured.
    #[error("not applicable: {0}")]
    NotApplicable(String),
    /// Nothing was observed (the suite's or the SLO's error says why, when known).
    #[error("{}", not_measured(.0.as_deref()))]
    NotMeasured(Option<String>),
    /// The observation is infinite or NaN.
    #[error("observation {0} is not a finite number")]
    InfiniteObservation(f64),
    /// The threshold is infinite or NaN.
    #[error("threshold {0} is not a finite number")]
    InfiniteThreshold(f64),
    /// Better is the other direction than the one asked for.
    #[error("{} is better ({comparison} {threshold}); export it with --direction {}", direction.as_str(), direction.as_str())]
    OtherDirection {
        /// The SLO's direction.
        direction: Direction,
        /// Its comparison.
        comparison: String,
        /// Its threshold, as written.
        threshold: String,
    },
}

fn not_measured(error: Option<&str>) -> String {
    match error {
        Some(error) if error.starts_with("not measured") => error.to_string(),
        Some(error) => format!("not measured: {error}"),
        None => "not measured".to_string(),
    }
}

/// The figure and direction of an SLO, or why it has none to export.
fn exportable(slo: &SloResult, only: Option<Direction>) -> Result<(f64, Direction), NotExportable> {
    if let Some(why) = &slo.not_applicable {
        return Err(NotExportable::NotApplicable(why.clone()));
    }
    let Some(observed) = slo.observed else {
        return Err(NotExportable::NotMeasured(slo.error.clone()));
    };
    if !observed.is_finite() {
        return Err(NotExportable::InfiniteObservation(observed));
    }
    if !slo.threshold.is_finite() {
        return Err(NotExportable::InfiniteThreshold(slo.threshold));
    }
    let direction = Direction::of(slo.comparison);
    if let Some(only) = only
        && only != direction
    {
        return Err(NotExportable::OtherDirection {
            direction,
            comparison: slo.comparison.to_string(),
            threshold: slo.threshold_expr.to_string(),
        });
    }
    Ok((observed, direction))
}

/// Writes a run in `format`. github-action-benchmark holds one direction per file (smaller
/// unless `direction` says bigger); the others hold both unless `direction` limits them.
pub fn render(
    run: &RunResults,
    format: Format,
    direction: Option<Direction>,
) -> Result<Export, ExportError> {
    let direction = match format {
        Format::GithubActionBenchmark => Some(direction.unwrap_or(Direction::Smaller)),
        Format::Bencher | Format::Openmetrics => direction,
    };
    let selection = select(run, direction)?;
    let text = match format {
        Format::GithubActionBenchmark => github_action_benchmark::render(&selection.series)?,
        Format::Bencher => bencher::render(&selection.series)?,
        Format::Openmetrics => openmetrics::render(&selection.series),
    };
    Ok(Export {
        format,
        direction,
        text,
        exported: selection.series.len(),
        skipped: selection.skipped,
        notes: selection.notes,
    })
}

/// Reads a run directory (or its results.json), renders it in `format` and writes it to
/// `out`, or to standard output when `out` is `None`.
pub fn export_run(
    run_dir: &Path,
    format: Format,
    direction: Option<Direction>,
    out: Option<&Path>,
) -> Result<Export, ExportError> {
    let run = RunResults::read(run_dir)?;
    let export = render(&run, format, direction)?;
    write(&export.text, out)?;
    Ok(export)
}

/// Writes `text` to a file (creating its directory) or to standard output.
fn write(text: &str, out: Option<&Path>) -> Result<(), ExportError> {
    let Some(path) = out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|source| ExportError::Io {
                action: "cannot write to",
                target: "standard output".to_string(),
                source,
            });
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| ExportError::Io {
            action: "cannot create",
            target: display(parent),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| ExportError::Io {
        action: "cannot write",
        target: display(path),
        source,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Formats a figure the same way in every text output: Rust's shortest round-trip form, so
/// the exported number reads back as exactly the number in results.json.
fn number(value: f64) -> String {
    format!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;
    use crate::suite::{ControllerSettings, LegacySwitch};

    #[test]
    fn names_carry_provider_setup_suite_and_slo() {
        let run = fixtures::run();
        let selection = select(&run, None).unwrap();
        let names: Vec<&str> = selection.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "embedded/current/label-propagation/bd-p99",
                "embedded/current/polling-jitter/jitter-spread"
            ]
        );
        assert_eq!(selection.series[1].direction, Direction::Bigger);
        assert!(selection.skipped.is_empty());
    }

    #[test]
    fn different_setups_never_share_a_series() {
        let mut run = fixtures::run();
        let mut external = run.suites[0].clone();
        external.name = "external-run".into();
        external.profile = None;
        external.settings.controller = None;
        external.settings.provider = "existing".into();
        let mut legacy = run.suites[0].clone();
        legacy.name = "legacy-run".into();
        legacy.settings.controller = Some(ControllerSettings {
            legacy: vec![
                LegacySwitch::UnthrottledStatusWrites,
                LegacySwitch::NoPollJitter,
                LegacySwitch::NoPollJitter,
            ],
            ..ControllerSettings::default()
        });
        run.suites.push(external);
        run.suites.push(legacy);
        let selection = select(&run, None).unwrap();
        let names: Vec<&str> = selection.series.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"existing/external/external-run/bd-p99"),
            "{names:?}"
        );
        assert!(
            names.contains(
                &"embedded/current+no-poll-jitter+unthrottled-status-writes/legacy-run/bd-p99"
            ),
            "{names:?}"
        );
    }

    #[test]
    fn a_suite_without_its_own_provider_takes_the_runs() {
        let mut run = fixtures::run();
        run.suites[0].settings.provider.clear();
        run.provider = "kind".into();
        let selection = select(&run, None).unwrap();
        assert_eq!(
            selection.series[0].name,
            "kind/current/label-propagation/bd-p99"
        );
    }

    #[test]
    fn slos_without_an_observation_are_skipped_with_the_reason() {
        let mut run = fixtures::run();
        let template = run.suites[0].slos[0].clone();
        run.suites[0].slos.push(SloResult {
            name: "not-measured".into(),
            observed: None,
            pass: false,
            error: Some("not measured: the label_cluster step failed".into()),
            ..template.clone()
        });
        run.suites[0].slos.push(SloResult {
            name: "not-applicable".into(),
            observed: None,
            pass: false,
            not_applicable: Some("no baseline for an external controller".into()),
            ..template.clone()
        });
        run.suites[0].slos.push(SloResult {
            name: "no-stat".into(),
            observed: None,
            pass: false,
            error: Some("\"x\" has no \"p99\" (no samples were observed)".into()),
            ..template.clone()
        });
        run.suites[0].slos.push(SloResult {
            name: "infinite".into(),
            observed: Some(f64::INFINITY),
            ..template
        });
        for format in [
            Format::GithubActionBenchmark,
            Format::Bencher,
            Format::Openmetrics,
        ] {
            let export = render(&run, format, None).unwrap();
            let skipped: Vec<(&str, &str)> = export
                .skipped
                .iter()
                .map(|s| (s.name.as_str(), s.reason.as_str()))
                .collect();
            let prefix = "embedded/current/label-propagation/";
            assert_eq!(
                skipped.len(),
                4 + usize::from(format == Format::GithubActionBenchmark)
            );
            assert_eq!(
                skipped[..4],
                [
                    (
                        &*format!("{prefix}not-measured"),
                        "not measured: the label_cluster step failed"
                    ),
                    (
                        &*format!("{prefix}not-applicable"),
                        "not applicable: no baseline for an external controller"
                    ),
                    (
                        &*format!("{prefix}no-stat"),
                        "not measured: \"x\" has no \"p99\" (no samples were observed)"
                    ),
                    (
                        &*format!("{prefix}infinite"),
                        "observation inf is not a finite number"
                    ),
                ]
            );
            for skipped in &export.skipped {
                let slo = skipped.name.rsplit('/').next().unwrap();
                assert!(
                    !export.text.contains(slo),
                    "{} exported {slo}:\n{}",
                    format.as_str(),
                    export.text
                );
            }
            assert!(export.text.contains("bd-p99"));
            let lines = export.report_lines();
            assert!(
                lines.iter().any(|l| l
                    == "skipped embedded/current/label-propagation/not-applicable: not applicable: no baseline for an external controller"),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn github_action_benchmark_holds_one_direction_and_says_where_the_other_went() {
        let run = fixtures::run();
        let smaller = render(&run, Format::GithubActionBenchmark, None).unwrap();
        assert_eq!(smaller.direction, Some(Direction::Smaller));
        assert_eq!(smaller.exported, 1);
        assert_eq!(
            smaller.skipped,
            [Skipped {
                name: "embedded/current/polling-jitter/jitter-spread".into(),
                reason: "bigger is better (>= 0.5s); export it with --direction bigger".into(),
            }]
        );
        let bigger = render(&run, Format::GithubActionBenchmark, Some(Direction::Bigger)).unwrap();
        assert_eq!(bigger.exported, 1);
        assert!(bigger.text.contains("jitter-spread"));
        assert!(!bigger.text.contains("bd-p99"));
        assert!(
            bigger
                .report_lines()
                .last()
                .unwrap()
                .contains("(bigger is better)"),
            "{:?}",
            bigger.report_lines()
        );
    }

    #[test]
    fn other_formats_hold_both_directions_unless_limited() {
        let run = fixtures::run();
        for format in [Format::Bencher, Format::Openmetrics] {
            assert_eq!(render(&run, format, None).unwrap().exported, 2);
            let limited = render(&run, format, Some(Direction::Smaller)).unwrap();
            assert_eq!(limited.exported, 1);
            assert_eq!(limited.skipped.len(), 1);
        }
    }

    #[test]
    fn two_slos_under_one_name_are_refused() {
        let mut run = fixtures::run();
        let copy = run.suites[0].slos[0].clone();
        run.suites[0].slos.push(copy);
        let error = render(&run, Format::Bencher, None).unwrap_err();
        assert!(matches!(error, ExportError::DuplicateSeries { .. }));
        assert!(
            error
                .to_string()
                .contains("embedded/current/label-propagation/bd-p99"),
            "{error}"
        );
    }

    #[test]
    fn damaged_measurements_and_overrides_are_noted() {
        let mut run = fixtures::run();
        run.suites[0].slos[0].damaged = Some("settle gave up".into());
        let export = render(&run, Format::Openmetrics, None).unwrap();
        assert_eq!(
            export.notes,
            [
                "embedded/current/label-propagation/bd-p99 is exported but its measurement is damaged: settle gave up",
                "suite label-propagation ran with --set scale.gitrepos=3: its series share names with runs without these overrides",
                "suite polling-jitter ran with --set scale.gitrepos=3: its series share names with runs without these overrides",
            ]
        );
    }

    #[test]
    fn missing_and_invalid_results_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let error = export_run(dir.path(), Format::Bencher, None, None).unwrap_err();
        assert!(
            matches!(error, ExportError::Results(ResultsError::Io { .. })),
            "{error:?}"
        );
        assert!(error.to_string().contains("results.json"), "{error}");
        std::fs::write(dir.path().join("results.json"), "[1, 2]").unwrap();
        let error = export_run(dir.path(), Format::Bencher, None, None).unwrap_err();
        assert!(
            matches!(error, ExportError::Results(ResultsError::Format { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn writes_the_file_creating_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        fixtures::run().write_to_dir(dir.path()).unwrap();
        let out = dir.path().join("charts/bench.json");
        let export = export_run(dir.path(), Format::Bencher, None, Some(&out)).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), export.text);
    }

    #[test]
    fn numbers_read_back_exactly() {
        for value in [
            1.49,
            0.01,
            10.0,
            5.300000000000001,
            1e-7,
            123456789.125,
            -0.5,
        ] {
            assert_eq!(number(value).parse::<f64>().unwrap(), value);
        }
        assert_eq!(number(10.0), "10");
    }
}
