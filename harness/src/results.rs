//! `results.json`: everything a run measured, in one file other tools can read.
//!
//! The shape is a contract (design.md, Outputs): `suites[].slos[]` carry
//! `name/threshold/observed/unit/pass` so a CI job can read verdicts without knowing what
//! any suite does; `measurements` carry percentiles and raw samples so reports and
//! comparisons can be rebuilt from the file alone, long after the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::slo::{Comparison, Stat, StepOutcome, Unit};
use crate::suite::{ControllerSettings, MeasurementKind, Profile, Scale};

/// File name of the results in a run directory.
pub const RESULTS_FILE: &str = "results.json";

/// A whole `fleetbench run` or `conformance`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Format version of this file.
    pub schema_version: u32,
    /// fleetbench's version.
    pub fleetbench_version: String,
    /// The command line.
    pub command: Vec<String>,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// When the run finished; absent while it runs or when it was interrupted.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Wall time of the run.
    pub duration_s: f64,
    /// `embedded`, `docker`, `kind` or `existing`.
    pub provider: String,
    /// How the controller under test was run.
    pub controller: ControllerInfo,
    /// The machine the run ran on, and the versions of the servers it measured against.
    /// Serialised as `environment`, the name results files have always used.
    #[serde(rename = "environment")]
    pub machine: Machine,
    /// One entry per suite, in run order.
    pub suites: Vec<SuiteResult>,
    /// Every suite passed.
    pub passed: bool,
}

/// The controller under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ControllerInfo {
    /// `bundled` (started by the harness) or `external`.
    pub mode: String,
    /// Path of the bundled binary.
    #[serde(default)]
    pub binary: Option<String>,
    /// Its `--version` output (bundled), or what `--controller-version` said (external).
    #[serde(default)]
    pub version: Option<String>,
    /// What the harness observed of the controller's API rather than was told: the
    /// served versions of each fleet.cattle.io CRD (`gitrepos.fleet.cattle.io` → `[v1alpha1]`).
    /// Empty when the CRDs could not be read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub observed_crd_versions: BTreeMap<String, Vec<String>>,
}

/// The machine and software the numbers come from. Not the cluster under test, which is a
/// [`crate::provider::Environment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Machine {
    /// Operating system, e.g. `Linux 12 (Debian GNU/Linux 12)`.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Total memory in bytes.
    pub memory_bytes: u64,
    /// The Kubernetes API server's `/version` gitVersion, when reachable.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// The git server's version, when known.
    #[serde(default)]
    pub git_server_version: Option<String>,
}

/// Outcome of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuiteStatus {
    /// Every SLO passed.
    Passed,
    /// It ran, and at least one SLO failed.
    Failed,
    /// It could not run to the end (the error says why); SLOs without data fail.
    Error,
}

/// One suite's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    /// Suite name.
    pub name: String,
    /// Suite description.
    #[serde(default)]
    pub description: String,
    /// The suite file.
    #[serde(default)]
    pub file: Option<String>,
    /// Suite tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The controller profile that produced the numbers; absent for a controller the
    /// harness did not start (its settings are unknown).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Everything else that produced them.
    pub settings: Settings,
    /// Verdict.
    pub status: SuiteStatus,
    /// Why it stopped early, when it did.
    #[serde(default)]
    pub error: Option<String>,
    /// When the suite started (RFC 3339).
    pub started_at: String,
    /// Wall time of the suite.
    pub duration_s: f64,
    /// The verdicts.
    pub slos: Vec<SloResult>,
    /// Every measurement, by name.
    pub measurements: BTreeMap<String, Measurement>,
    /// What each step did and how long it took.
    pub steps: Vec<StepResult>,
    /// API requests over the whole suite (deltas of `apiserver_request_total`).
    #[serde(default)]
    pub api_requests: Vec<ApiRequestCount>,
    /// Controller CPU and memory over the suite (bundled controller only).
    #[serde(default)]
    pub resources: Option<ResourceUsage>,
    /// The controller's own counters at the end of the suite (`fleet_*`,
    /// `controller_runtime_*` from its `/metrics`; bundled controller only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub controller_metrics: BTreeMap<String, f64>,
    /// The comparison run under another profile, when the suite has one.
    #[serde(default)]
    pub baseline: Option<BaselineResult>,
    /// Problems with the measurements themselves (a `settle` that gave up, ...): numbers
    /// taken after such a problem are flagged, never silently trusted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<String>,
    /// Suites of the same run that ran at the same time as this one (conformance runs
    /// `long` suites alongside the others): their figures shared the machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrent_with: Vec<String>,
}

/// Fills every suite's `concurrent_with` from the suites' start times and durations.
pub fn mark_overlaps(suites: &mut [SuiteResult]) {
    let span = |suite: &SuiteResult| -> Option<(i128, i128)> {
        let start = suite
            .started_at
            .parse::<jiff::Timestamp>()
            .ok()?
            .as_nanosecond();
        let length = (suite.duration_s.max(0.0) * 1e9) as i128;
        (length > 0).then_some((start, start + length))
    };
    let spans: Vec<Option<(i128, i128)>> = suites.iter().map(span).collect();
    let names: Vec<String> = suites.iter().map(|s| s.name.clone()).collect();
    for (index, suite) in suites.iter_mut().enumerate() {
        suite.concurrent_with = match spans[index] {
            Some((start, end)) => spans
                .iter()
                .enumerate()
                .filter(|(other, span)| {
                    *other != index
                        && span.is_some_and(|(other_start, other_end)| {
                            other_start < end && start < other_end
                        })
                })
                .map(|(other, _)| names[other].clone())
                .collect(),
            None => Vec::new(),
        };
    }
}

/// Says what a suite's numbers are about: the profile, or that it is unknown.
pub fn profile_label(profile: Option<Profile>) -> &'static str {
    profile.map_or(EXTERNAL_SETTINGS, Profile::as_str)
}

/// What results and reports say instead of settings the harness never applied.
pub const EXTERNAL_SETTINGS: &str = "settings unknown (external)";

/// What produced a suite's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Provider.
    pub provider: String,
    /// Controller settings after overrides; absent for an external controller, whose
    /// settings the harness neither chose nor can see.
    #[serde(default)]
    pub controller: Option<ControllerSettings>,
    /// Scale after overrides.
    pub scale: Scale,
    /// The `--set` overrides applied.
    #[serde(default)]
    pub overrides: Vec<String>,
}

/// One SLO verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    /// SLO name.
    pub name: String,
    /// Why it exists.
    #[serde(default)]
    pub description: String,
    /// The measurement read.
    pub measurement: String,
    /// Its statistic.
    pub stat: Stat,
    /// `<=` or `>=`.
    pub comparison: Comparison,
    /// Threshold value (seconds for durations).
    pub threshold: f64,
    /// The threshold as written in the suite (`polling_interval * 1.1 + 2s`).
    pub threshold_expr: String,
    /// Observed value; absent when the measurement was not taken.
    pub observed: Option<f64>,
    /// Unit of threshold and observed value.
    pub unit: Unit,
    /// The verdict.
    pub pass: bool,
    /// Why there is no observation, when there is none.
    #[serde(default)]
    pub error: Option<String>,
    /// Why the SLO does not apply to this run (a same-run ratio for a controller the
    /// harness cannot run under another profile, with no stored baseline given). Such an
    /// SLO neither passes nor fails: it is not judged, and says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_applicable: Option<String>,
    /// What was wrong with the measurement this verdict reads (the step that took it had a
    /// measurement problem: a wait for quiet that gave up, an interrupted watch, unreadable
    /// metrics). The verdict stands, but it is never shown as a clean one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

impl SloResult {
    /// Judged and failed (an SLO that does not apply is neither passed nor failed).
    pub fn failed(&self) -> bool {
        !self.pass && self.not_applicable.is_none()
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Shape of the data.
    pub kind: MeasurementKind,
    /// Unit of the samples and most stats (`s`, `writes`, `ratio`, ...).
    pub unit: Unit,
    /// What was measured, in words.
    pub description: String,
    /// Named statistics (what SLOs read): p50, p90, p99, max, count, missing, value, ...
    pub stats: BTreeMap<Stat, f64>,
    /// Raw samples, in arrival order (latencies, intervals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
    /// Breakdown of a count (`bundles/status PATCH` → n), or per-repo figures.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: BTreeMap<String, f64>,
    /// Acceptable band for samples, when the SLOs define one (poll intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub band: Option<[f64; 2]>,
    /// Notes worth reading (which keys never arrived, cross-check disagreements).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Measurement {
    /// A single number.
    pub fn value(unit: Unit, description: impl Into<String>, value: f64) -> Measurement {
        Measurement {
            kind: MeasurementKind::Value,
            unit,
            description: description.into(),
            stats: BTreeMap::from([(Stat::Value, value)]),
            samples: Vec::new(),
            breakdown: BTreeMap::new(),
            band: None,
            notes: Vec::new(),
        }
    }

    /// A stat, if present.
    pub fn stat(&self, stat: Stat) -> Option<f64> {
        self.stats.get(&stat).copied()
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Position in the suite.
    pub index: usize,
    /// `commit`, `label_cluster`, ...
    pub action: String,
    /// Seconds from the suite's start.
    pub started_s: f64,
    /// How long the step took.
    pub duration_s: f64,
    /// `ok`, `error` or `interrupted`.
    pub outcome: StepOutcome,
    /// Details (counts, or the error).
    #[serde(default)]
    pub message: String,
    /// API writes during the step, by `resource[/subresource] VERB`.
    #[serde(default)]
    pub api_writes: BTreeMap<String, f64>,
    /// Problems with what this step measured or waited for (see [`SuiteResult::quality`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<String>,
    /// The step's writes to what a Fleet controller owns, by verb, resource and part
    /// (`spec` or `status`); empty when the API server's counters could not be read
    /// around the step (its `quality` then says so).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<crate::ledger::LedgerLine>,
}

/// A delta of `apiserver_request_total` for one label set.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ApiRequestCount {
    /// GET, LIST, WATCH, CREATE, UPDATE, PATCH, DELETE, DELETECOLLECTION.
    pub verb: String,
    /// API group (empty for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`) or empty.
    pub subresource: String,
    /// HTTP status code.
    pub code: String,
    /// Requests in the window.
    pub count: u64,
}

impl ApiRequestCount {
    /// Whether the verb changes state.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "CREATE" | "UPDATE" | "PATCH" | "DELETE" | "DELETECOLLECTION" | "APPLY"
        )
    }

    /// Whether the request touched what a Fleet controller owns: the fleet.cattle.io kinds,
    /// and the namespaces and secrets it creates for clusters. Everything else on a real
    /// cluster (Leases, Events, Node heartbeats, other operators) is noise to a suite.
    pub fn is_controller_owned(&self) -> bool {
        self.group == FLEET_GROUP
            || (self.group.is_empty()
                && CONTROLLER_CORE_RESOURCES.contains(&self.resource.as_str()))
    }

    /// `resource` or `resource/subresource`.
    pub fn target(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// Controller CPU and memory over a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResourceUsage {
    /// Seconds between samples.
    pub interval_s: f64,
    /// The samples.
    pub samples: Vec<ResourceSample>,
    /// CPU time the controller used over the suite.
    pub cpu_seconds: f64,
    /// Largest resident set seen.
    pub peak_rss_bytes: u64,
}

/// One sample of the controller process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResourceSample {
    /// Seconds from the suite's start.
    pub t_s: f64,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: f64,
    /// Resident set size.
    pub rss_bytes: u64,
}

/// The comparison run of a suite with a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    /// Profile of the baseline run (absent when it measured an external controller).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Its controller settings (absent when unknown).
    #[serde(default)]
    pub controller: Option<ControllerSettings>,
    /// Where the baseline comes from: measured in this run, or a stored run given with
    /// `--baseline-run` (its directory and start time).
    #[serde(default)]
    pub source: Option<String>,
    /// Its measurements.
    pub measurements: BTreeMap<String, Measurement>,
    /// Its steps.
    pub steps: Vec<StepResult>,
    /// Its API requests.
    #[serde(default)]
    pub api_requests: Vec<ApiRequestCount>,
    /// Its controller resource use.
    #[serde(default)]
    pub resources: Option<ResourceUsage>,
    /// Its controller's own counters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub controller_metrics: BTreeMap<String, f64>,
    /// Why it stopped early, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// Why results could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// File system error.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a results file of this format.
    #[error("{path} is not a fleetbench results file")]
    Format {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// The API group of Fleet's kinds.
pub const FLEET_GROUP: &str = "fleet.cattle.io";
/// Core resources a Fleet controller writes besides its own kinds.
pub const CONTROLLER_CORE_RESOURCES: [&str; 2] = ["namespaces", "secrets"];

/// The current `schema_version`.
pub const SCHEMA_VERSION: u32 = 1;

impl RunResults {
    /// Recomputes `passed` from the suites.
    pub fn update_verdict(&mut self) {
        self.passed = !self.suites.is_empty()
            && self
                .suites
                .iter()
                .all(|suite| suite.status == SuiteStatus::Passed);
    }

    /// Writes `results.json` into `dir` atomically (a temp file, then a rename), so a
    /// crash never leaves a half-written file where the previous partial results were.
    pub fn write_to_dir(&self, dir: &Path) -> Result<PathBuf, ResultsError> {
        std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
            action: "cannot create",
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(RESULTS_FILE);
        let temp = dir.join(format!(".{RESULTS_FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self).expect("results serialise to JSON");
        std::fs::write(&temp, json).map_err(|source| ResultsError::Io {
            action: "cannot write",
            path: temp.clone(),
            source,
        })?;
        std::fs::rename(&temp, &path).map_err(|source| ResultsError::Io {
            action: "cannot write",
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Reads `results.json` from a run directory (or the file itself).
    pub fn read(path: &Path) -> Result<RunResults, ResultsError> {
        let is_file = path.is_file() || path.extension().is_some_and(|e| e == "json");
        let file = if is_file {
            path.to_path_buf()
        } else {
            path.join(RESULTS_FILE)
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ResultsError::Io {
            action: "cannot read",
            path: file.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ResultsError::Format { path: file, source })
    }

    /// Every SLO verdict of every suite, as `(suite, slo)`.
    pub fn slos(&self) -> impl Iterator<Item = (&SuiteResult, &SloResult)> {
        self.suites
            .iter()
            .flat_map(|suite| suite.slos.iter().map(move |slo| (suite, slo)))
    }
}

impl SuiteResult {
    /// API writes over the suite grouped by `resource[/subresource]`.
    pub fn writes_by_resource(&self) -> BTreeMap<String, u64> {
        writes_by_resource(&self.api_requests)
    }
}

/// API writes grouped by `resource[/subresource]`.
pub fn writes_by_resource(requests: &[ApiRequestCount]) -> BTreeMap<String, u64> {
    let mut totals = BTreeMap::new();
    for request in requests.iter().filter(|r| r.is_write()) {
        *totals.entry(request.target()).or_insert(0) += request.count;
    }
    totals
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Results as a run would write them, for report, junit and compare tests.

    use super::*;
    use crate::measure::stats::Summary;

    /// A latency measurement from samples.
    pub fn latency(samples: Vec<f64>, expected: usize) -> Measurement {
        let mut stats = Summary::of(&samples).to_stats();
        stats.insert(Stat::Expected, expected as f64);
        stats.insert(Stat::Missing, expected.saturating_sub(samples.len()) as f64);
        Measurement {
            kind: MeasurementKind::Latency,
            unit: Unit::Seconds,
            description: "label to each new BundleDeployment".into(),
            stats,
            samples,
            breakdown: BTreeMap::new(),
            band: None,
            notes: Vec::new(),
        }
    }

    /// An SLO verdict.
    pub fn slo(
        name: &str,
        measurement: &str,
        stat: Stat,
        threshold: f64,
        observed: f64,
    ) -> SloResult {
        SloResult {
            name: name.into(),
            description: format!("{stat} of {measurement}"),
            measurement: measurement.into(),
            stat,
            comparison: Comparison::AtMost,
            threshold,
            threshold_expr: format!("{threshold}s"),
            observed: Some(observed),
            unit: Unit::Seconds,
            pass: observed <= threshold,
            error: None,
            not_applicable: None,
            damaged: None,
        }
    }

    /// A finished run of two suites, one passing, one failing.
    pub fn run() -> RunResults {
        let fast = latency((1..=300).map(|i| f64::from(i) / 200.0).collect(), 300);
        let poll = Measurement {
            kind: MeasurementKind::Intervals,
            unit: Unit::Seconds,
            description: "seconds between polls".into(),
            stats: Summary::of(&[60.5, 62.0, 65.9, 61.2]).to_stats(),
            samples: vec![60.5, 62.0, 65.9, 61.2],
            breakdown: BTreeMap::new(),
            band: Some([60.0, 66.0]),
            notes: Vec::new(),
        };
        let settings = Settings {
            provider: "embedded".into(),
            controller: Some(ControllerSettings::default()),
            scale: Scale::default(),
            overrides: vec!["scale.gitrepos=3".into()],
        };
        let label = SuiteResult {
            name: "label-propagation".into(),
            description: "label a cluster".into(),
            file: Some("suites/label.yaml".into()),
            tags: vec!["full".into()],
            profile: Some(Profile::Current),
            settings,
            status: SuiteStatus::Passed,
            error: None,
            started_at: "2026-08-01T10:00:00Z".into(),
            duration_s: 12.5,
            slos: vec![slo("bd-p99", "label-to-bd", Stat::P99, 10.0, 1.49)],
            measurements: BTreeMap::from([("label-to-bd".to_string(), fast)]),
            steps: vec![StepResult {
                index: 0,
                action: "label_cluster".into(),
                started_s: 1.0,
                duration_s: 1.6,
                outcome: StepOutcome::Ok,
                message: "300 new BundleDeployments".into(),
                api_writes: BTreeMap::from([("bundledeployments CREATE".to_string(), 300.0)]),
                quality: Vec::new(),
                ledger: vec![
                    crate::ledger::LedgerLine {
                        verb: "CREATE".into(),
                        resource: "bundledeployments".into(),
                        part: "spec".into(),
                        count: 300,
                    },
                    crate::ledger::LedgerLine {
                        verb: "PATCH".into(),
                        resource: "bundles".into(),
                        part: "status".into(),
                        count: 45,
                    },
                ],
            }],
            api_requests: vec![
                ApiRequestCount {
                    verb: "CREATE".into(),
                    group: "fleet.cattle.io".into(),
                    resource: "bundledeployments".into(),
                    subresource: String::new(),
                    code: "201".into(),
                    count: 300,
                },
                ApiRequestCount {
                    verb: "PATCH".into(),
                    group: "fleet.cattle.io".into(),
                    resource: "bundles".into(),
                    subresource: "status".into(),
                    code: "200".into(),
                    count: 45,
                },
                ApiRequestCount {
                    verb: "LIST".into(),
                    group: "fleet.cattle.io".into(),
                    resource: "bundles".into(),
                    subresource: String::new(),
                    code: "200".into(),
                    count: 4,
                },
            ],
            resources: Some(ResourceUsage {
                interval_s: 0.5,
                samples: (0..20)
                    .map(|i| ResourceSample {
                        t_s: f64::from(i) * 0.5,
                        cpu_percent: f64::from(i % 7) * 12.0,
                        rss_bytes: 40_000_000 + u64::from(i as u32) * 1_000_000,
                    })
                    .collect(),
                cpu_seconds: 3.2,
                peak_rss_bytes: 59_000_000,
            }),
            controller_metrics: BTreeMap::from([
                (
                    "fleet_status_writes_total{outcome=\"issued\",resource=\"bundles\"}"
                        .to_string(),
                    45.0,
                ),
                (
                    "fleet_status_writes_total{outcome=\"skipped\",resource=\"bundles\"}"
                        .to_string(),
                    300.0,
                ),
            ]),
            baseline: None,
            quality: Vec::new(),
            concurrent_with: Vec::new(),
        };
        let mut jitter = label.clone();
        jitter.name = "polling-jitter".into();
        jitter.status = SuiteStatus::Failed;
        jitter.slos = vec![SloResult {
            comparison: Comparison::AtLeast,
            pass: false,
            ..slo("jitter-spread", "poll-interval", Stat::Stddev, 0.5, 0.01)
        }];
        jitter.measurements = BTreeMap::from([("poll-interval".to_string(), poll)]);
        let mut results = RunResults {
            schema_version: SCHEMA_VERSION,
            fleetbench_version: "0.1.0".into(),
            command: vec!["fleetbench".into(), "run".into()],
            started_at: "2026-08-01T10:00:00Z".into(),
            finished_at: Some("2026-08-01T10:01:00Z".into()),
            duration_s: 60.0,
            provider: "embedded".into(),
            controller: ControllerInfo {
                mode: "bundled".into(),
                binary: Some("target/debug/fleet-controller".into()),
                version: Some("fleet-controller 0.1.0".into()),
                observed_crd_versions: BTreeMap::new(),
            },
            machine: Machine {
                os: "Linux 12 (Debian GNU/Linux 12)".into(),
                kernel: "6.1.0".into(),
                arch: "x86_64".into(),
                cpu_model: "Test CPU @ 2.0GHz".into(),
                cpus: 2,
                memory_bytes: 24 << 30,
                kubernetes_version: Some("v1.33.0-fleetbench".into()),
                git_server_version: Some("1.22.0".into()),
            },
            suites: vec![label, jitter],
            passed: false,
        };
        results.update_verdict();
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_that_overlapped_in_time_name_each_other() {
        let mut run = fixtures::run();
        let mut third = run.suites[0].clone();
        third.name = "later".into();
        run.suites[0].started_at = "2026-08-01T10:00:00Z".into();
        run.suites[0].duration_s = 60.0;
        run.suites[1].started_at = "2026-08-01T10:00:30Z".into();
        run.suites[1].duration_s = 300.0;
        third.started_at = "2026-08-01T10:02:00Z".into();
        third.duration_s = 10.0;
        run.suites.push(third);
        mark_overlaps(&mut run.suites);
        assert_eq!(run.suites[0].concurrent_with, ["polling-jitter"]);
        assert_eq!(
            run.suites[1].concurrent_with,
            ["label-propagation", "later"]
        );
        assert_eq!(run.suites[2].concurrent_with, ["polling-jitter"]);
    }

    #[test]
    fn round_trips_through_a_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        let results = fixtures::run();
        let path = results.write_to_dir(dir.path()).unwrap();
        assert_eq!(path, dir.path().join(RESULTS_FILE));
        assert_eq!(RunResults::read(dir.path()).unwrap(), results);
        assert_eq!(RunResults::read(&path).unwrap(), results);
    }

    #[test]
    fn json_carries_the_contract_fields() {
        let json = serde_json::to_value(fixtures::run()).unwrap();
        let suite = &json["suites"][0];
        assert_eq!(suite["name"], "label-propagation");
        assert_eq!(suite["profile"], "current");
        let slo = &suite["slos"][0];
        for field in ["name", "threshold", "observed", "unit", "pass"] {
            assert!(slo.get(field).is_some(), "slo lacks {field}: {slo}");
        }
        assert_eq!(
            suite["measurements"]["label-to-bd"]["stats"]["p99"]
                .as_f64()
                .map(|v| v > 0.0),
            Some(true)
        );
        assert_eq!(
            suite["measurements"]["label-to-bd"]["samples"]
                .as_array()
                .unwrap()
                .len(),
            300
        );
        assert_eq!(json["environment"]["cpus"], 2);
        assert_eq!(json["passed"], false);
    }

    #[test]
    fn stats_comparisons_units_and_outcomes_are_written_as_strings() {
        let json = serde_json::to_value(fixtures::run()).unwrap();
        let suite = &json["suites"][1];
        assert_eq!(suite["slos"][0]["stat"], "stddev");
        assert_eq!(suite["slos"][0]["comparison"], ">=");
        assert_eq!(suite["slos"][0]["unit"], "s");
        assert_eq!(suite["steps"][0]["outcome"], "ok");
        assert_eq!(json["suites"][0]["slos"][0]["comparison"], "<=");
        assert_eq!(suite["measurements"]["poll-interval"]["unit"], "s");
        assert!(suite["measurements"]["poll-interval"]["stats"]["stddev"].is_number());
    }

    /// The published runs (written when stats, comparisons, units and step outcomes were
    /// strings) read and write back byte for byte.
    #[test]
    fn stored_results_files_write_back_unchanged() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let runs = root.join("../reports/runs");
        for entry in std::fs::read_dir(&runs).unwrap() {
            files.push(entry.unwrap().path().join(RESULTS_FILE));
        }
        assert!(!files.is_empty(), "no published runs in {}", runs.display());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let results = RunResults::read(&file).unwrap();
            let written = serde_json::to_string_pretty(&results).unwrap();
            let first_change = written
                .lines()
                .zip(text.lines())
                .position(|(now, then)| now != then);
            assert_eq!(
                (first_change, written.lines().count()),
                (None, text.trim_end().lines().count()),
                "{} changed when read and written back: {:?}",
                file.display(),
                first_change.map(|i| (text.lines().nth(i), written.lines().nth(i)))
            );
        }
    }

    #[test]
    fn verdict_requires_every_suite_to_pass() {
        let mut results = fixtures::run();
        results.update_verdict();
        assert!(!results.passed);
        results.suites.truncate(1);
        results.update_verdict();
        assert!(results.passed);
        results.suites.clear();
        results.update_verdict();
        assert!(!results.passed, "a run of nothing proves nothing");
    }

    #[test]
    fn writes_group_by_resource_and_skip_reads() {
        let writes = fixtures::run().suites[0].writes_by_resource();
        assert_eq!(writes.get("bundledeployments"), Some(&300));
        assert_eq!(writes.get("bundles/status"), Some(&45));
        assert_eq!(writes.len(), 2);
    }

    #[test]
    fn reading_garbage_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RESULTS_FILE), "{\"not\": 1}").unwrap();
        let error = RunResults::read(dir.path()).unwrap_err();
        assert!(error.to_string().contains("results.json"), "{error}");
        let error = RunResults::read(&dir.path().join("missing")).unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
    }
}
