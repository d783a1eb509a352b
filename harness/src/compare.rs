//! `fleetbench compare BASE NEW`: what changed between two runs, as ratios.
//!
//! Every SLO and the headline statistics of every measurement are matched by suite and
//! name; the ratio NEW/BASE is judged in the direction that matters (a latency going up is
//! worse, a jitter spread going down is worse), with a tolerance so noise is not flagged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::ledger;
use crate::results::{Measurement, RunResults, SuiteResult};
use crate::slo::{Comparison, Stat, Unit};
use crate::stages::{self, Stage};
use crate::suite::MeasurementKind;

/// How a number moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Better beyond the tolerance.
    Better,
    /// Within the tolerance (or no preferred direction).
    Same,
    /// Worse beyond the tolerance, or an SLO went from pass to fail.
    Worse,
    /// Only one of the runs has it.
    Missing,
}

impl Change {
    /// Short word for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Better => "better",
            Change::Same => "same",
            Change::Worse => "WORSE",
            Change::Missing => "missing",
        }
    }
}

/// Which direction is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better (latencies, counts).
    Lower,
    /// Larger is better (`min` thresholds).
    Higher,
    /// Neither (informational).
    Neutral,
}

/// One compared number.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Suite name.
    pub suite: String,
    /// `slo NAME` or `MEASUREMENT STAT`.
    pub item: String,
    /// Whether this row is an SLO.
    pub is_slo: bool,
    /// Baseline value.
    pub base: Option<f64>,
    /// New value.
    pub new: Option<f64>,
    /// Unit; none for a row without figures (a suite only one run has).
    pub unit: Option<Unit>,
    /// NEW / BASE.
    pub ratio: Option<f64>,
    /// Verdicts of an SLO row (base, new).
    pub verdicts: Option<(bool, bool)>,
    /// The judgement.
    pub change: Change,
    /// The base run has this suite or SLO and the new run does not: a check that stopped
    /// being made is a regression until someone says otherwise, never a silent pass.
    pub gone: bool,
}

impl Row {
    /// A figure of this row for people, in its unit.
    pub fn format(&self, value: f64) -> String {
        self.unit
            .map_or_else(|| value.to_string(), |unit| unit.format(value))
    }
}

/// What a row says about something only the base run has.
const GONE: &str = "gone from the new run";

/// Compares two runs; `tolerance` is the relative change treated as noise (0.1 = 10%).
pub fn compare(base: &RunResults, new: &RunResults, tolerance: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    let base_suites: BTreeMap<&str, &SuiteResult> =
        base.suites.iter().map(|s| (s.name.as_str(), s)).collect();
    for suite in &new.suites {
        let Some(old) = base_suites.get(suite.name.as_str()) else {
            rows.push(Row {
                suite: suite.name.clone(),
                item: "(suite)".into(),
                is_slo: false,
                base: None,
                new: None,
                unit: None,
                ratio: None,
                verdicts: None,
                change: Change::Missing,
                gone: false,
            });
            continue;
        };
        for slo in &suite.slos {
            let previous = old.slos.iter().find(|s| s.name == slo.name);
            let direction = match slo.comparison {
                Comparison::AtLeast => Direction::Higher,
                Comparison::AtMost => Direction::Lower,
            };
            let base_value = previous.and_then(|p| p.observed);
            let mut row = row(
                &suite.name,
                format!("slo {}", slo.name),
                base_value,
                slo.observed,
                slo.unit,
                direction,
                tolerance,
            );
            row.is_slo = true;
            if let Some(previous) = previous {
                row.verdicts = Some((previous.pass, slo.pass));
                if previous.pass && slo.failed() {
                    row.change = Change::Worse;
                } else if previous.failed() && slo.pass {
                    row.change = Change::Better;
                }
            }
            rows.push(row);
        }
        for slo in old
            .slos
            .iter()
            .filter(|o| !suite.slos.iter().any(|s| s.name == o.name))
        {
            rows.push(Row {
                suite: suite.name.clone(),
                item: format!("slo {} ({GONE})", slo.name),
                is_slo: true,
                base: slo.observed,
                new: None,
                unit: Some(slo.unit),
                ratio: None,
                verdicts: None,
                change: Change::Worse,
                gone: true,
            });
        }
        for (name, measurement) in &suite.measurements {
            let previous = old.measurements.get(name);
            for &stat in headline_stats(measurement) {
                let direction = match measurement.kind {
                    MeasurementKind::Latency | MeasurementKind::Count => Direction::Lower,
                    MeasurementKind::Intervals | MeasurementKind::Value => Direction::Neutral,
                };
                let unit = stat.unit_in(measurement.unit);
                rows.push(row(
                    &suite.name,
                    format!("{name} {stat}"),
                    previous.and_then(|m| m.stat(stat)),
                    measurement.stat(stat),
                    unit,
                    direction,
                    tolerance,
                ));
            }
        }
        if let (Some(now), Some(then)) = (&suite.resources, &old.resources) {
            rows.push(row(
                &suite.name,
                "controller cpu".into(),
                Some(then.cpu_seconds),
                Some(now.cpu_seconds),
                Unit::Seconds,
                Direction::Lower,
                tolerance,
            ));
            rows.push(row(
                &suite.name,
                "controller peak rss".into(),
                Some(then.peak_rss_bytes as f64),
                Some(now.peak_rss_bytes as f64),
                Unit::Bytes,
                Direction::Lower,
                tolerance,
            ));
        }
    }
    let new_names: Vec<&str> = new.suites.iter().map(|s| s.name.as_str()).collect();
    for suite in base
        .suites
        .iter()
        .filter(|s| !new_names.contains(&s.name.as_str()))
    {
        rows.push(Row {
            suite: suite.name.clone(),
            item: format!("(suite {GONE}, with {} SLOs)", suite.slos.len()),
            is_slo: false,
            base: None,
            new: None,
            unit: None,
            ratio: None,
            verdicts: None,
            change: Change::Worse,
            gone: true,
        });
    }
    rows
}

fn headline_stats(measurement: &Measurement) -> &'static [Stat] {
    match measurement.kind {
        MeasurementKind::Latency => &[Stat::P50, Stat::P99, Stat::Max, Stat::Missing],
        MeasurementKind::Intervals => &[Stat::P50, Stat::Min, Stat::Max, Stat::Stddev],
        MeasurementKind::Count | MeasurementKind::Value => &[Stat::Value],
    }
}

fn row(
    suite: &str,
    item: String,
    base: Option<f64>,
    new: Option<f64>,
    unit: Unit,
    direction: Direction,
    tolerance: f64,
) -> Row {
    let ratio = match (base, new) {
        (Some(b), Some(n)) if b != 0.0 => Some(n / b),
        (Some(b), Some(n)) if b == 0.0 && n == 0.0 => Some(1.0),
        _ => None,
    };
    let change = match (base, new) {
        (Some(b), Some(n)) => judge(b, n, direction, tolerance),
        _ => Change::Missing,
    };
    Row {
        suite: suite.to_string(),
        item,
        is_slo: false,
        base,
        new,
        unit: Some(unit),
        ratio,
        verdicts: None,
        change,
        gone: false,
    }
}

fn judge(base: f64, new: f64, direction: Direction, tolerance: f64) -> Change {
    if direction == Direction::Neutral {
        return Change::Same;
    }
    // Tiny absolute values (a few ms, a count of 0 or 1) are noise whatever the ratio.
    let scale = base.abs().max(new.abs());
    if scale < 1e-3 || (new - base).abs() <= tolerance * base.abs().max(1e-9) {
        return Change::Same;
    }
    let up = new > base;
    match (direction, up) {
        (Direction::Lower, true) | (Direction::Higher, false) => Change::Worse,
        _ => Change::Better,
    }
}

/// Plain-text table for the terminal.
pub fn render_text(rows: &[Row]) -> String {
    let mut out = String::new();
    let headers = ["suite", "item", "base", "new", "new/base", "change"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.suite.clone(),
                r.item.clone(),
                r.base.map_or("-".into(), |v| r.format(v)),
                r.new.map_or("-".into(), |v| r.format(v)),
                r.ratio.map_or("-".into(), |v| format!("{v:.2}x")),
                match r.verdicts {
                    Some((b, n)) if b != n => format!(
                        "{} ({} -> {})",
                        r.change.as_str(),
                        if b { "pass" } else { "FAIL" },
                        if n { "pass" } else { "FAIL" }
                    ),
                    _ => r.change.as_str().to_string(),
                },
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |out: &mut String, row: &[String]| {
        for (i, cell) in row.iter().enumerate() {
            if (2..=4).contains(&i) {
                let _ = write!(out, "{cell:>w$}  ", w = widths[i]);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    };
    line(&mut out, &headers.map(str::to_string));
    for row in &cells {
        line(&mut out, row);
    }
    let worse = rows.iter().filter(|r| r.change == Change::Worse).count();
    let better = rows.iter().filter(|r| r.change == Change::Better).count();
    let gone = rows.iter().filter(|r| r.gone).count();
    let _ = writeln!(
        out,
        "\n{worse} worse ({gone} {GONE}), {better} better, {} compared",
        rows.len()
    );
    out
}

/// One suite's ledger difference between two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerDiff {
    /// Suite name.
    pub suite: String,
    /// The lines that changed, step by step.
    pub changes: Vec<ledger::LedgerChange>,
}

/// The API write ledgers of the suites both runs have: the lines that changed. Writes are
/// counts, not timings, so every change is shown, with no tolerance: a write that appears
/// or disappears is what a reviewer wants to see.
pub fn compare_ledgers(base: &RunResults, new: &RunResults) -> Vec<LedgerDiff> {
    new.suites
        .iter()
        .filter_map(|suite| {
            let old = base.suites.iter().find(|s| s.name == suite.name)?;
            let changes = ledger::diff(old, suite);
            (!changes.is_empty()).then(|| LedgerDiff {
                suite: suite.name.clone(),
                changes,
            })
        })
        .collect()
}

/// The ledger difference as a terminal table.
pub fn render_ledger_text(diffs: &[LedgerDiff]) -> String {
    let mut out =
        String::from("\nAPI write ledger (controller-owned writes per step that changed):\n");
    if diffs.is_empty() {
        out.push_str("  no change\n");
        return out;
    }
    for diff in diffs {
        for change in &diff.changes {
            let delta = change.new as i128 - change.base as i128;
            let _ = writeln!(
                out,
                "  {suite}  step {step}  {key}: {base} -> {new} ({delta:+})",
                suite = diff.suite,
                step = change.step,
                key = change.key,
                base = change.base,
                new = change.new,
            );
        }
    }
    out
}

/// One stage of one commit step in both runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChange {
    /// Suite name.
    pub suite: String,
    /// The commit step's measurement.
    pub base_name: String,
    /// The stage.
    pub stage: Stage,
    /// Its own median in the base run.
    pub base_p50: Option<f64>,
    /// Its own median in the new run.
    pub new_p50: Option<f64>,
    /// Whether it dominates the base run's waterfall.
    pub dominated_before: bool,
    /// Whether it dominates the new run's waterfall.
    pub dominates_now: bool,
}

/// Per stage of every commit step both runs measured: the stage's own median in each, and
/// which stage dominates in each.
pub fn compare_stages(base: &RunResults, new: &RunResults) -> Vec<StageChange> {
    let mut changes = Vec::new();
    for suite in &new.suites {
        let Some(old) = base.suites.iter().find(|s| s.name == suite.name) else {
            continue;
        };
        let before = stages::waterfalls(old);
        for waterfall in stages::waterfalls(suite) {
            let previous = before.iter().find(|w| w.base == waterfall.base);
            let dominant_now = waterfall.dominant().map(|s| s.stage);
            let dominant_before = previous.and_then(|w| w.dominant()).map(|s| s.stage);
            for stage in Stage::ALL {
                let now = waterfall.stages.iter().find(|s| s.stage == stage);
                let then = previous.and_then(|w| w.stages.iter().find(|s| s.stage == stage));
                if now.is_none() && then.is_none() {
                    continue;
                }
                changes.push(StageChange {
                    suite: suite.name.clone(),
                    base_name: waterfall.base.clone(),
                    stage,
                    base_p50: then.map(|s| s.p50),
                    new_p50: now.map(|s| s.p50),
                    dominated_before: dominant_before == Some(stage),
                    dominates_now: dominant_now == Some(stage),
                });
            }
        }
    }
    changes
}

/// The stage comparison as a terminal table.
pub fn render_stages_text(changes: &[StageChange]) -> String {
    let mut out = String::from("\nCommit stages (each stage's own median; * dominant):\n");
    if changes.is_empty() {
        out.push_str("  no commit stages in both runs\n");
        return out;
    }
    let mark = |dominant: bool| if dominant { "*" } else { " " };
    for change in changes {
        let ratio = match (change.base_p50, change.new_p50) {
            (Some(b), Some(n)) if b > 0.0 => format!("{:.2}x", n / b),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {suite}  {name}/{stage:<10} {base:>10}{bm} -> {new:>10}{nm}  {ratio}",
            suite = change.suite,
            name = change.base_name,
            stage = change.stage.name(),
            base = change
                .base_p50
                .map_or("-".into(), |v| Unit::Seconds.format(v)),
            bm = mark(change.dominated_before),
            new = change
                .new_p50
                .map_or("-".into(), |v| Unit::Seconds.format(v)),
            nm = mark(change.dominates_now),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;

    fn find<'a>(rows: &'a [Row], suite: &str, item: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.suite == suite && r.item == item)
            .unwrap_or_else(|| panic!("no row {suite} {item}: {rows:#?}"))
    }

    #[test]
    fn stages_show_their_own_change_and_the_dominant_stage_moving() {
        let mut base = fixtures::run();
        let mut new = fixtures::run();
        base.suites[0]
            .measurements
            .extend(stages::fixtures::measurements(
                "c",
                [20, 3000, 100, 40, 200, 10],
            ));
        new.suites[0]
            .measurements
            .extend(stages::fixtures::measurements(
                "c",
                [20, 200, 4000, 40, 200, 10],
            ));
        let changes = compare_stages(&base, &new);
        let stage = |s: Stage| changes.iter().find(|c| c.stage == s).unwrap();
        let notify = stage(Stage::Notify);
        assert!(notify.dominated_before && !notify.dominates_now);
        assert!((notify.base_p50.unwrap() - 3.0).abs() < 0.01);
        let bundle = stage(Stage::Bundle);
        assert!(!bundle.dominated_before && bundle.dominates_now);
        assert!((bundle.new_p50.unwrap() - 4.0).abs() < 0.01);
        assert_eq!(changes.len(), Stage::ALL.len());
        let text = render_stages_text(&changes);
        assert!(text.contains("c/bundle"), "{text}");
        assert!(text.contains("40.0"), "{text}");
        // The stage measurements are compared like any other, so a slower stage is WORSE.
        let rows = compare(&base, &new, 0.1);
        assert_eq!(
            find(&rows, "label-propagation", "c/bundle p50").change,
            Change::Worse
        );
    }

    #[test]
    fn the_ledger_difference_lists_only_what_changed() {
        let base = fixtures::run();
        let mut new = fixtures::run();
        new.suites[0].steps[0].ledger[1].count = 3000;
        let diffs = compare_ledgers(&base, &new);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].suite, "label-propagation");
        assert_eq!(diffs[0].changes.len(), 1);
        let text = render_ledger_text(&diffs);
        assert!(
            text.contains("step 0 label_cluster  PATCH bundles/status: 45 -> 3000 (+2955)"),
            "{text}"
        );
        assert!(render_ledger_text(&compare_ledgers(&base, &base)).contains("no change"));
    }

    #[test]
    fn identical_runs_compare_as_same() {
        let run = fixtures::run();
        let rows = compare(&run, &run, 0.1);
        assert!(rows.iter().all(|r| r.change == Change::Same), "{rows:#?}");
        assert_eq!(
            find(&rows, "label-propagation", "slo bd-p99").ratio,
            Some(1.0)
        );
    }

    #[test]
    fn slower_latency_is_worse_with_its_ratio() {
        let base = fixtures::run();
        let mut new = base.clone();
        new.suites[0].slos[0].observed = Some(2.98);
        let p99 = new.suites[0].measurements.get_mut("label-to-bd").unwrap();
        p99.stats.insert(Stat::P99, 3.0);
        let rows = compare(&base, &new, 0.1);
        let slo = find(&rows, "label-propagation", "slo bd-p99");
        assert_eq!(slo.change, Change::Worse);
        assert!((slo.ratio.unwrap() - 2.0).abs() < 0.01, "{slo:?}");
        assert_eq!(
            find(&rows, "label-propagation", "label-to-bd p99").change,
            Change::Worse
        );
        let text = render_text(&rows);
        assert!(text.contains("2.00x"), "{text}");
        assert!(text.contains("WORSE"), "{text}");
    }

    #[test]
    fn higher_is_better_for_min_thresholds_and_flips_count() {
        let base = fixtures::run();
        let mut new = base.clone();
        new.suites[1].slos[0].observed = Some(1.2);
        new.suites[1].slos[0].pass = true;
        let rows = compare(&base, &new, 0.1);
        let spread = find(&rows, "polling-jitter", "slo jitter-spread");
        assert_eq!(spread.change, Change::Better);
        assert_eq!(spread.verdicts, Some((false, true)));
    }

    #[test]
    fn suites_and_slos_gone_from_the_new_run_are_worse() {
        let base = fixtures::run();
        let mut new = base.clone();
        // The new run dropped an SLO of one suite and a whole suite: both checks stopped
        // being made, which must not read as "nothing got worse".
        let dropped = new.suites[0].slos.remove(0);
        let suite = new.suites.remove(1);
        let rows = compare(&base, &new, 0.1);
        let slo = find(
            &rows,
            "label-propagation",
            &format!("slo {} (gone from the new run)", dropped.name),
        );
        assert_eq!(slo.change, Change::Worse);
        assert!(slo.gone && slo.is_slo);
        let whole = rows
            .iter()
            .find(|r| r.suite == suite.name)
            .unwrap_or_else(|| panic!("{rows:#?}"));
        assert_eq!(whole.change, Change::Worse);
        assert!(whole.item.contains("gone from the new run"), "{whole:?}");
        let text = render_text(&rows);
        assert!(text.contains("2 worse (2 gone from the new run)"), "{text}");
    }

    #[test]
    fn small_changes_are_noise_and_missing_suites_are_flagged() {
        let base = fixtures::run();
        let mut new = base.clone();
        new.suites[0].slos[0].observed = Some(1.5);
        new.suites[1].name = "renamed".into();
        let rows = compare(&base, &new, 0.1);
        assert_eq!(
            find(&rows, "label-propagation", "slo bd-p99").change,
            Change::Same
        );
        assert_eq!(find(&rows, "renamed", "(suite)").change, Change::Missing);
    }
}
