//! Report history for nightly runs: `reports/runs/<id>/` plus a trend index.
//!
//! Each published run keeps its own self-contained report; `history.json` keeps the SLO
//! figures of every run so `index.html` can show, per SLO, how it moved across nights
//! without re-reading every run's full results. Every publish also looks for the runs where
//! an SLO's figures shifted ([`crate::changepoint`]) and writes them to
//! `change-points.json` and the index, so a regression is dated to the run that brought it,
//! not to the night someone noticed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::changepoint;
use crate::report::html::{badge, escape, page};
use crate::report::{self, LabelledRun, svg};
use crate::results::{ResultsError, RunResults};
use crate::slo::{Comparison, Unit};
use crate::suite::Scale;

/// The index data file inside the history directory.
pub const HISTORY_FILE: &str = "history.json";
/// The index page inside the history directory.
pub const INDEX_FILE: &str = "index.html";
/// The change points of every trend line, machine-readable, inside the history directory.
pub const CHANGE_POINTS_FILE: &str = "change-points.json";

/// Every published run, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct History {
    /// The runs.
    pub runs: Vec<HistoryEntry>,
}

/// One published run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Directory name under `runs/`.
    pub id: String,
    /// When the run started.
    pub started_at: String,
    /// Provider.
    pub provider: String,
    /// fleetbench version.
    pub fleetbench_version: String,
    /// Whether every SLO passed.
    pub passed: bool,
    /// Wall time.
    pub duration_s: f64,
    /// The run's report, relative to the history directory.
    pub report: String,
    /// Every SLO's figures.
    pub slos: Vec<HistorySlo>,
}

/// One SLO figure of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistorySlo {
    /// Suite.
    pub suite: String,
    /// Provider that produced it (empty in indexes written before it was recorded: the
    /// run's provider then stands in).
    #[serde(default)]
    pub provider: String,
    /// Profile that produced it.
    pub profile: String,
    /// Scale that produced it, as [`scale_label`] writes it (empty in indexes written
    /// before it was recorded).
    #[serde(default)]
    pub scale: String,
    /// SLO.
    pub name: String,
    /// `<=` or `>=`.
    pub comparison: Comparison,
    /// Threshold.
    pub threshold: f64,
    /// Observed value.
    pub observed: Option<f64>,
    /// Unit.
    pub unit: Unit,
    /// Verdict.
    pub pass: bool,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading a run failed.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// File system error.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The existing index is damaged.
    #[error("{path} is not a fleetbench history index (move it away to start a new one)")]
    Format {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> HistoryError + 'a {
    move |source| HistoryError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl History {
    /// Reads the index of `dir`, or an empty history when there is none yet.
    pub fn load(dir: &Path) -> Result<History, HistoryError> {
        let path = dir.join(HISTORY_FILE);
        if !path.exists() {
            return Ok(History::default());
        }
        let text = std::fs::read_to_string(&path).map_err(io("cannot read", &path))?;
        serde_json::from_str(&text).map_err(|source| HistoryError::Format { path, source })
    }

    /// Writes the index data and page.
    pub fn save(&self, dir: &Path) -> Result<(), HistoryError> {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let data = dir.join(HISTORY_FILE);
        std::fs::write(
            &data,
            serde_json::to_vec_pretty(self).expect("history serialises"),
        )
        .map_err(io("cannot write", &data))?;
        let changes = change_points(self);
        let file = dir.join(CHANGE_POINTS_FILE);
        std::fs::write(
            &file,
            serde_json::to_vec_pretty(&changes).expect("change points serialise"),
        )
        .map_err(io("cannot write", &file))?;
        let index = dir.join(INDEX_FILE);
        std::fs::write(&index, render_index_with(self, &changes))
            .map_err(io("cannot write", &index))?;
        Ok(())
    }
}

/// `change-points.json`: how the detection ran, and every trend line's change points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePoints {
    /// The method, in words.
    pub method: String,
    /// Reorderings per permutation test.
    pub permutations: usize,
    /// The largest p-value reported as a change.
    pub significance: f64,
    /// The fewest runs on each side of a change.
    pub min_segment: usize,
    /// Every trend line with at least one observation, changes or not.
    pub series: Vec<SeriesChanges>,
}

/// The change points of one trend line (one SLO of one suite on one provider, profile and
/// scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesChanges {
    /// Suite.
    pub suite: String,
    /// SLO.
    pub slo: String,
    /// Provider.
    pub provider: String,
    /// Profile.
    pub profile: String,
    /// Scale.
    pub scale: String,
    /// Unit of the figures.
    pub unit: Unit,
    /// `<=` or `>=`: which direction is worse.
    pub comparison: Comparison,
    /// Runs with an observation in the line.
    pub runs: usize,
    /// Where the line shifted, oldest first.
    pub changes: Vec<ChangeRecord>,
}

/// One shift of a trend line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The first run after the shift (its id under `runs/`).
    pub run: String,
    /// When that run started.
    pub started_at: String,
    /// Its report, relative to the history directory.
    pub report: String,
    /// Its position among the line's observations (0 = oldest).
    pub position: usize,
    /// Mean of the segment before the shift.
    pub before_mean: f64,
    /// Mean of the segment from this run on (to the next shift).
    pub after_mean: f64,
    /// `after_mean - before_mean`.
    pub change: f64,
    /// The change relative to `before_mean` (absent when that is 0).
    pub relative_change: Option<f64>,
    /// The permutation test's p-value.
    pub p_value: f64,
    /// `1 - p_value`.
    pub confidence: f64,
    /// `worse` or `better`, by the SLO's comparison.
    pub direction: String,
}

/// Change points of every trend line of `history`.
pub fn change_points(history: &History) -> ChangePoints {
    let settings = changepoint::Settings::default();
    let series = trend_keys(history)
        .into_iter()
        .filter_map(|key| {
            let points: Vec<(&HistoryEntry, &HistorySlo, f64)> = history
                .runs
                .iter()
                .filter_map(|run| {
                    let slo = run.slos.iter().find(|s| TrendKey::of(run, s) == key)?;
                    let value = slo.observed.filter(|v| v.is_finite())?;
                    Some((run, slo, value))
                })
                .collect();
            let (_, last, _) = points.last()?;
            let values: Vec<f64> = points.iter().map(|(_, _, v)| *v).collect();
            let seed = changepoint::seed_of(&format!(
                "{}/{}/{}/{}/{}",
                key.suite, key.name, key.provider, key.profile, key.scale
            ));
            let changes = changepoint::detect(&values, &settings, seed)
                .into_iter()
                .map(|change| {
                    let (run, _, _) = points[change.index];
                    let up = change.change() > 0.0;
                    let worse = match last.comparison {
                        Comparison::AtLeast => !up,
                        Comparison::AtMost => up,
                    };
                    ChangeRecord {
                        run: run.id.clone(),
                        started_at: run.started_at.clone(),
                        report: run.report.clone(),
                        position: change.index,
                        before_mean: change.before_mean,
                        after_mean: change.after_mean,
                        change: change.change(),
                        relative_change: change.relative_change(),
                        p_value: change.p_value,
                        confidence: change.confidence(),
                        direction: if worse { "worse" } else { "better" }.to_string(),
                    }
                })
                .collect();
            Some(SeriesChanges {
                suite: key.suite.clone(),
                slo: key.name.clone(),
                provider: key.provider.clone(),
                profile: key.profile.clone(),
                scale: key.scale.clone(),
                unit: last.unit,
                comparison: last.comparison,
                runs: values.len(),
                changes,
            })
        })
        .collect();
    ChangePoints {
        method:
            "E-divisive means (energy distance, alpha 1), hierarchical, permutation test per split"
                .into(),
        permutations: settings.permutations,
        significance: settings.significance,
        min_segment: settings.min_segment,
        series,
    }
}

/// Every trend line of `history`, in order of first appearance.
fn trend_keys(history: &History) -> Vec<TrendKey> {
    let mut keys: Vec<TrendKey> = Vec::new();
    for run in &history.runs {
        for slo in &run.slos {
            let key = TrendKey::of(run, slo);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// A directory name for a run: its start time, file-name safe, unique in `history`.
fn run_id(results: &RunResults, history: &History) -> String {
    let base: String = format!("{}-{}", results.started_at, results.provider)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut id = base.clone();
    let mut n = 2;
    while history.runs.iter().any(|r| r.id == id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

/// Copies each run (results, junit, a fresh report) into `dir/runs/<id>/`, appends it to the
/// index, keeps the newest `keep` runs and rewrites `index.html`.
pub fn publish(run_dirs: &[PathBuf], dir: &Path, keep: usize) -> Result<History, HistoryError> {
    let mut history = History::load(dir)?;
    for run_dir in run_dirs {
        let results = RunResults::read(run_dir)?;
        if history
            .runs
            .iter()
            .any(|r| r.started_at == results.started_at && r.provider == results.provider)
        {
            tracing::info!(run = %run_dir.display(), "already published; skipped");
            continue;
        }
        let id = run_id(&results, &history);
        let target = dir.join("runs").join(&id);
        std::fs::create_dir_all(&target).map_err(io("cannot create", &target))?;
        results.write_to_dir(&target)?;
        let junit = run_dir.join(crate::junit::JUNIT_FILE);
        if junit.exists() {
            let copy = target.join(crate::junit::JUNIT_FILE);
            std::fs::copy(&junit, &copy).map_err(io("cannot copy", &junit))?;
        }
        let html = report::render(
            &[LabelledRun {
                label: id.clone(),
                results: results.clone(),
            }],
            None,
        );
        let report_path = target.join("report.html");
        std::fs::write(&report_path, html).map_err(io("cannot write", &report_path))?;
        history.runs.push(HistoryEntry {
            id: id.clone(),
            started_at: results.started_at.clone(),
            provider: results.provider.clone(),
            fleetbench_version: results.fleetbench_version.clone(),
            passed: results.passed,
            duration_s: results.duration_s,
            report: format!("runs/{id}/report.html"),
            slos: results
                .slos()
                .map(|(suite, slo)| HistorySlo {
                    suite: suite.name.clone(),
                    provider: suite.settings.provider.clone(),
                    profile: crate::results::profile_label(suite.profile).to_string(),
                    scale: scale_label(&suite.settings.scale),
                    name: slo.name.clone(),
                    comparison: slo.comparison,
                    threshold: slo.threshold,
                    observed: slo.observed,
                    unit: slo.unit,
                    pass: slo.pass,
                })
                .collect(),
        });
    }
    history.runs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    if history.runs.len() > keep {
        let drop = history.runs.len() - keep;
        for old in history.runs.drain(..drop) {
            let path = dir.join("runs").join(&old.id);
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(io("cannot remove", &path))?;
            }
        }
    }
    history.save(dir)?;
    Ok(history)
}

/// A scale in one line, the part of a trend's key that says how big the run was.
pub fn scale_label(scale: &Scale) -> String {
    format!(
        "{} GitRepos x {} paths x {} clusters, polling {}",
        scale.gitrepos, scale.paths, scale.clusters, scale.polling_interval
    )
}

/// What one trend line holds: figures of one SLO from runs that are comparable, i.e. of
/// the same suite on the same provider with the same profile at the same scale. Mixing
/// them would draw an embedded run next to a kind run, or a smoke scale next to a full one,
/// as if the controller had changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct TrendKey {
    suite: String,
    name: String,
    provider: String,
    profile: String,
    scale: String,
}

impl TrendKey {
    fn of(run: &HistoryEntry, slo: &HistorySlo) -> TrendKey {
        TrendKey {
            suite: slo.suite.clone(),
            name: slo.name.clone(),
            provider: if slo.provider.is_empty() {
                run.provider.clone()
            } else {
                slo.provider.clone()
            },
            profile: slo.profile.clone(),
            scale: slo.scale.clone(),
        }
    }
}

/// The trend index page.
pub fn render_index(history: &History) -> String {
    render_index_with(history, &change_points(history))
}

/// The change-point summary of a figure: `+35% (1.2 s → 1.6 s)`.
fn describe_change(change: &ChangeRecord, unit: Unit) -> String {
    let relative = change
        .relative_change
        .map_or(String::new(), |r| format!("{:+.0}% ", r * 100.0));
    format!(
        "{relative}({} → {})",
        unit.format(change.before_mean),
        unit.format(change.after_mean)
    )
}

/// The trend index page, with `changes` marked.
pub fn render_index_with(history: &History, changes: &ChangePoints) -> String {
    let mut body = String::new();
    let latest = history.runs.last();
    let verdict = match latest {
        Some(run) if run.passed => r#"<span class="verdict pass">latest run: PASS</span>"#,
        Some(_) => r#"<span class="verdict fail">latest run: FAIL</span>"#,
        None => "",
    };
    let _ = write!(
        body,
        r#"<header class="top"><div class="inner"><h1>fleetbench history</h1>{verdict}<div class="meta"><b>{}</b> published runs</div></div></header><main>"#,
        history.runs.len()
    );
    let shifts: Vec<(&SeriesChanges, &ChangeRecord)> = changes
        .series
        .iter()
        .flat_map(|series| series.changes.iter().map(move |c| (series, c)))
        .collect();
    let _ = write!(
        body,
        r#"<h2 id="change-points">Change points</h2><p class="lead">Runs where an SLO's figures shifted and stayed shifted: {method}, p ≤ {significance} with {permutations} permutations, at least {min} runs on each side (so a shift shows once {min} runs carry it). Machine-readable in <a href="{file}">{file}</a>.</p>"#,
        method = escape(&changes.method),
        significance = changes.significance,
        permutations = changes.permutations,
        min = changes.min_segment,
        file = CHANGE_POINTS_FILE,
    );
    if shifts.is_empty() {
        body.push_str(r#"<p class="meta">No shift found in any trend line.</p>"#);
    } else {
        body.push_str(r#"<table class="change-points"><thead><tr><th>Shift began in run</th><th>Suite</th><th>SLO</th><th>Provider, profile, scale</th><th>Size</th><th class="num">Confidence</th><th>Direction</th></tr></thead><tbody>"#);
        for (series, change) in shifts {
            let _ = write!(
                body,
                r#"<tr class="{class}"><td><a href="{href}">{started}</a></td><td>{suite}</td><td>{slo}</td><td>{context}</td><td>{size}</td><td class="num">{confidence:.1}% (p = {p:.3})</td><td>{direction}</td></tr>"#,
                class = if change.direction == "worse" {
                    "fail"
                } else {
                    ""
                },
                href = escape(&change.report),
                started = escape(&change.started_at),
                suite = escape(&series.suite),
                slo = escape(&series.slo),
                context = escape(&format!(
                    "{}, {}, {}",
                    series.provider, series.profile, series.scale
                )),
                size = escape(&describe_change(change, series.unit)),
                confidence = change.confidence * 100.0,
                p = change.p_value,
                direction = escape(&change.direction),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str(r#"<h2>Trends per SLO</h2><p class="lead">Observed value of each SLO across published runs, oldest on the left; red dots are failed runs, dashed red lines the change points. "Passed" counts the runs that met the SLO. One line per suite, SLO, provider, profile and scale: only comparable runs share a line.</p><table><thead><tr><th>Suite</th><th>SLO</th><th>Provider, profile, scale</th><th class="num">Threshold</th><th>Trend</th><th class="num">Latest</th><th class="num">Passed</th><th>Last shift</th></tr></thead><tbody>"#);
    for key in trend_keys(history) {
        let points: Vec<Option<&HistorySlo>> = history
            .runs
            .iter()
            .map(|run| run.slos.iter().find(|s| TrendKey::of(run, s) == key))
            .collect();
        let values: Vec<f64> = points
            .iter()
            .map(|p| p.and_then(|s| s.observed).unwrap_or(f64::NAN))
            .collect();
        let failed: Vec<bool> = points.iter().map(|p| p.is_some_and(|s| !s.pass)).collect();
        let present: Vec<&HistorySlo> = points.iter().flatten().copied().collect();
        let Some(last) = present.last() else { continue };
        let series = changes.series.iter().find(|s| {
            s.suite == key.suite
                && s.slo == key.name
                && s.provider == key.provider
                && s.profile == key.profile
                && s.scale == key.scale
        });
        // Change points count observations; the sparkline has a slot per run.
        let shift_runs: Vec<usize> = series
            .map(|s| {
                s.changes
                    .iter()
                    .filter_map(|c| history.runs.iter().position(|r| r.id == c.run))
                    .collect()
            })
            .unwrap_or_default();
        let last_shift = series
            .and_then(|s| s.changes.last().map(|c| (s, c)))
            .map_or(String::new(), |(s, c)| {
                format!(
                    r#"<a href="{href}">{started}</a>: {size}, {confidence:.0}%"#,
                    href = escape(&c.report),
                    started = escape(&c.started_at),
                    size = escape(&describe_change(c, s.unit)),
                    confidence = c.confidence * 100.0
                )
            });
        let passed = present.iter().filter(|s| s.pass).count();
        let context = [
            key.provider.as_str(),
            key.profile.as_str(),
            key.scale.as_str(),
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
        let _ = write!(
            body,
            r#"<tr class="{class}"><td>{suite}</td><td>{name}</td><td>{context}</td><td class="num">{cmp} {threshold}</td><td>{spark}</td><td class="num">{latest} {badge}</td><td class="num">{passed}/{total}</td><td>{last_shift}</td></tr>"#,
            class = if last.pass { "" } else { "fail" },
            suite = escape(&key.suite),
            name = escape(&key.name),
            context = escape(&context),
            cmp = escape(last.comparison.as_str()),
            threshold = last.unit.format(last.threshold),
            spark = svg::sparkline_marked(&values, &failed, &shift_runs),
            latest = last
                .observed
                .map_or("–".to_string(), |v| last.unit.format(v)),
            badge = badge(last.pass),
            total = present.len()
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(r#"<h2>Runs</h2><table><thead><tr><th>Started</th><th>Verdict</th><th>Provider</th><th class="num">SLOs passed</th><th class="num">Took</th><th>Report</th></tr></thead><tbody>"#);
    for run in history.runs.iter().rev() {
        let passed = run.slos.iter().filter(|s| s.pass).count();
        let _ = write!(
            body,
            r#"<tr><td>{started}</td><td>{badge}</td><td>{provider}</td><td class="num">{passed}/{total}</td><td class="num">{took}</td><td><a href="{href}">report</a></td></tr>"#,
            started = escape(&run.started_at),
            badge = badge(run.passed),
            provider = escape(&run.provider),
            total = run.slos.len(),
            took = Unit::Seconds.format(run.duration_s),
            href = escape(&run.report)
        );
    }
    body.push_str("</tbody></table><footer>Generated by fleetbench. Self-contained: no scripts, no external requests; each run's report is in its own folder.</footer></main>");
    page("fleetbench history", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;

    fn write_run(root: &Path, name: &str, started: &str, observed: f64) -> PathBuf {
        let dir = root.join(name);
        let mut results = fixtures::run();
        results.started_at = started.into();
        results.suites[0].slos[0].observed = Some(observed);
        results.write_to_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn publishing_builds_a_trend_index_and_keeps_reports() {
        let tmp = tempfile::tempdir().unwrap();
        let reports = tmp.path().join("reports");
        let a = write_run(tmp.path(), "a", "2026-08-01T01:00:00Z", 1.2);
        let b = write_run(tmp.path(), "b", "2026-08-02T01:00:00Z", 1.6);
        let history = publish(&[b, a.clone()], &reports, 10).unwrap();
        assert_eq!(history.runs.len(), 2);
        assert_eq!(
            history.runs[0].started_at, "2026-08-01T01:00:00Z",
            "sorted oldest first"
        );
        for run in &history.runs {
            assert!(reports.join(&run.report).exists(), "{}", run.report);
            assert!(
                reports
                    .join("runs")
                    .join(&run.id)
                    .join("results.json")
                    .exists()
            );
        }
        let index = std::fs::read_to_string(reports.join(INDEX_FILE)).unwrap();
        assert!(index.contains("fleetbench history"));
        assert!(index.contains("<svg class=\"spark\""), "a trend per SLO");
        assert!(index.contains(">bd-p99<"));
        assert!(index.contains("2/2"), "passed count");
        assert!(!index.contains("<script"));

        // Publishing the same run again changes nothing.
        let again = publish(&[a], &reports, 10).unwrap();
        assert_eq!(again.runs.len(), 2);
    }

    #[test]
    fn keep_drops_the_oldest_runs_and_their_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let reports = tmp.path().join("reports");
        let runs: Vec<PathBuf> = (1..=3)
            .map(|d| {
                write_run(
                    tmp.path(),
                    &format!("r{d}"),
                    &format!("2026-08-0{d}T01:00:00Z"),
                    1.0,
                )
            })
            .collect();
        let history = publish(&runs, &reports, 2).unwrap();
        assert_eq!(history.runs.len(), 2);
        assert_eq!(history.runs[0].started_at, "2026-08-02T01:00:00Z");
        assert_eq!(std::fs::read_dir(reports.join("runs")).unwrap().count(), 2);
    }

    #[test]
    fn trends_keep_providers_profiles_and_scales_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let reports = tmp.path().join("reports");
        let embedded = write_run(tmp.path(), "a", "2026-08-01T01:00:00Z", 1.2);
        let mut docker = fixtures::run();
        docker.started_at = "2026-08-02T01:00:00Z".into();
        docker.provider = "docker".into();
        for suite in &mut docker.suites {
            suite.settings.provider = "docker".into();
        }
        docker.write_to_dir(&tmp.path().join("b")).unwrap();
        let mut bigger = fixtures::run();
        bigger.started_at = "2026-08-03T01:00:00Z".into();
        for suite in &mut bigger.suites {
            suite.settings.scale.gitrepos *= 10;
        }
        bigger.write_to_dir(&tmp.path().join("c")).unwrap();
        let history = publish(
            &[embedded, tmp.path().join("b"), tmp.path().join("c")],
            &reports,
            10,
        )
        .unwrap();
        let index = render_index(&history);
        let lines = index.matches(">bd-p99<").count();
        assert_eq!(lines, 3, "one trend line per provider and scale: {index}");
        assert!(index.matches("1/1").count() >= 3, "each line holds one run");
    }

    #[test]
    fn an_index_written_before_provider_and_scale_were_recorded_still_reads() {
        let old = r#"{"runs":[{"id":"r1","started_at":"2026-08-01T01:00:00Z","provider":"embedded","fleetbench_version":"0.1.0","passed":true,"duration_s":3.0,"report":"runs/r1/report.html","slos":[{"suite":"s","profile":"current","name":"n","comparison":"<=","threshold":1.0,"observed":0.5,"unit":"s","pass":true}]}]}"#;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(HISTORY_FILE), old).unwrap();
        let history = History::load(tmp.path()).unwrap();
        let slo = &history.runs[0].slos[0];
        assert_eq!((slo.provider.as_str(), slo.scale.as_str()), ("", ""));
        let key = TrendKey::of(&history.runs[0], slo);
        assert_eq!(key.provider, "embedded", "the run's provider stands in");
        assert!(render_index(&history).contains(">n<"));
    }

    #[test]
    fn publishing_marks_the_run_where_a_shift_began() {
        let tmp = tempfile::tempdir().unwrap();
        let reports = tmp.path().join("reports");
        // Ten runs near 1.2 s, then six near 2.4 s: the seventh-from-last run brought it.
        let observed = |i: usize| if i < 10 { 1.2 } else { 2.4 } + (i % 3) as f64 * 0.02;
        let runs: Vec<PathBuf> = (0..16)
            .map(|i| {
                write_run(
                    tmp.path(),
                    &format!("r{i}"),
                    &format!("2026-08-{:02}T01:00:00Z", i + 1),
                    observed(i),
                )
            })
            .collect();
        let history = publish(&runs, &reports, 100).unwrap();
        let file: ChangePoints =
            serde_json::from_slice(&std::fs::read(reports.join(CHANGE_POINTS_FILE)).unwrap())
                .unwrap();
        let line = file
            .series
            .iter()
            .find(|s| s.slo == "bd-p99")
            .expect("the shifted SLO has a line");
        assert_eq!(line.runs, 16);
        assert_eq!(line.changes.len(), 1, "{line:?}");
        let change = &line.changes[0];
        assert_eq!(change.run, history.runs[10].id);
        assert_eq!(change.started_at, "2026-08-11T01:00:00Z");
        assert_eq!(change.direction, "worse", "a latency going up");
        assert!(
            (change.relative_change.unwrap() - 1.0).abs() < 0.05,
            "{change:?}"
        );
        assert!(change.confidence >= 0.99);
        let steady = file
            .series
            .iter()
            .find(|s| s.slo == "jitter-spread")
            .unwrap();
        assert!(steady.changes.is_empty(), "a flat line has no change point");
        let index = std::fs::read_to_string(reports.join(INDEX_FILE)).unwrap();
        assert!(index.contains(r#"id="change-points""#));
        assert!(index.contains("2026-08-11T01:00:00Z"), "the run is named");
        assert!(index.contains("+99%"), "with the size of the shift");
        assert!(index.contains("spark-shift"), "and marked on the trend");
    }

    #[test]
    fn a_damaged_index_is_reported_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(HISTORY_FILE), "garbage").unwrap();
        let error = History::load(tmp.path()).unwrap_err();
        assert!(error.to_string().contains("move it away"), "{error}");
    }
}
