//! Running suites: a fresh environment per suite, the controller, the recorder, the steps,
//! the verdicts, and results written after every suite so nothing is lost to a crash or a
//! Ctrl-C.
//!
//! The layers, outermost first: this module orchestrates a run (foreground and background
//! suites, and the abort after a failure that would repeat for every suite); [`suite`]
//! runs one suite (its pass, a baseline pass, the verdicts); [`pass`] runs one pass of a
//! suite in one environment; [`steps`] is that pass's step loop; [`outputs`] writes what
//! users read.

mod outputs;
mod pass;
mod steps;
mod suite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cli::ControllerMode;
use crate::controller;
use crate::provider::Provider;
use crate::results::{
    ControllerInfo, RunResults, SCHEMA_VERSION, Settings, SuiteResult, SuiteStatus, profile_label,
};
use crate::suite::{Profile, Suite};
use crate::{machine, slo};

/// Everything a run needs.
pub struct RunOptions {
    /// Suites (after overrides), with their files.
    pub suites: Vec<(PathBuf, Suite)>,
    /// The `--set` arguments, as given (recorded with the results).
    pub overrides: Vec<String>,
    /// Where environments come from.
    pub provider: Arc<dyn Provider>,
    /// Bundled or external controller.
    pub controller_mode: ControllerMode,
    /// The bundled controller's binary (checked to exist).
    pub controller_bin: Option<PathBuf>,
    /// An external controller's webhook URL.
    pub webhook_url: Option<String>,
    /// An external controller's version, as the user gave it.
    pub controller_version: Option<String>,
    /// A stored run to take baselines from for an external controller.
    pub baseline_run: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Suites with any of these tags run in the background, alongside the others.
    pub background_tags: Vec<String>,
    /// The command line (recorded).
    pub command: Vec<String>,
}

/// A run in progress, shared by the foreground loop and the background suites' tasks.
struct RunState {
    options: RunOptions,
    /// The results so far: each suite's result is stored here once, in run order.
    results: Mutex<CollectedResults>,
    /// Set when something failed that will fail every following suite too.
    abort: Mutex<Option<String>>,
    origin: Instant,
}

/// The run's results and, for each stored suite, its index among the options' suites, so
/// that a background suite that ends late still lands in run order.
struct CollectedResults {
    run: RunResults,
    indices: Vec<usize>,
}

impl CollectedResults {
    fn store(&mut self, index: usize, result: SuiteResult) {
        let position = self.indices.partition_point(|&stored| stored < index);
        self.indices.insert(position, index);
        self.run.suites.insert(position, result);
    }
}

impl RunState {
    fn bundled(&self) -> bool {
        self.options.controller_mode == ControllerMode::Bundled
    }

    /// Records what the subject pass of a suite learned about the cluster, the first time
    /// anything does (every suite's cluster is made the same way).
    fn record_cluster_facts(&self, facts: pass::ClusterFacts) {
        let mut results = self.results.lock();
        let run = &mut results.run;
        if run.machine.kubernetes_version.is_none() {
            run.machine.kubernetes_version = facts.kubernetes_version;
        }
        if run.machine.git_server_version.is_none() {
            run.machine.git_server_version = facts.git_server_version;
        }
        if run.controller.observed_crd_versions.is_empty() {
            run.controller.observed_crd_versions = facts.crd_versions;
        }
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Runs every suite and writes `results.json`, `junit.xml` and `report.html` into
/// `options.out` (also after each suite, so partial results survive).
pub async fn run(options: RunOptions, cancel: CancellationToken) -> RunResults {
    crate::init_crypto();
    let controller_info = match options.controller_mode {
        ControllerMode::Bundled => ControllerInfo {
            mode: "bundled".into(),
            binary: options
                .controller_bin
                .as_ref()
                .map(|p| p.display().to_string()),
            version: match &options.controller_bin {
                Some(binary) => controller::version(binary).await,
                None => None,
            },
            observed_crd_versions: BTreeMap::new(),
        },
        ControllerMode::External => ControllerInfo {
            mode: "external".into(),
            binary: None,
            version: options.controller_version.clone(),
            observed_crd_versions: BTreeMap::new(),
        },
    };
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        fleetbench_version: env!("CARGO_PKG_VERSION").to_string(),
        command: options.command.clone(),
        started_at: now(),
        finished_at: None,
        duration_s: 0.0,
        provider: options.provider.name().to_string(),
        controller: controller_info,
        machine: machine::describe(),
        suites: Vec::new(),
        passed: false,
    };
    let count = options.suites.len();
    let state = Arc::new(RunState {
        options,
        results: Mutex::new(CollectedResults {
            run: results,
            indices: Vec::new(),
        }),
        abort: Mutex::new(None),
        origin: Instant::now(),
    });
    outputs::write(&state, false);

    let (background, foreground): (Vec<usize>, Vec<usize>) = (0..count).partition(|&index| {
        let suite = &state.options.suites[index].1;
        state
            .options
            .background_tags
            .iter()
            .any(|tag| suite.has_tag(tag))
    });
    let mut handles = Vec::new();
    for index in background {
        let state = Arc::clone(&state);
        let cancel = cancel.clone();
        tracing::info!(suite = %state.options.suites[index].1.name, "started in the background");
        handles.push(tokio::spawn(async move {
            run_and_store(&state, index, &cancel).await;
        }));
    }
    for index in foreground {
        run_and_store(&state, index, &cancel).await;
    }
    for handle in handles {
        let _ = handle.await;
    }
    outputs::write(&state, true);
    match Arc::try_unwrap(state) {
        Ok(state) => state.results.into_inner().run,
        // A background task that panicked may still hold its reference.
        Err(state) => state.results.lock().run.clone(),
    }
}

async fn run_and_store(state: &Arc<RunState>, index: usize, cancel: &CancellationToken) {
    let (path, suite) = &state.options.suites[index];
    let result = if let Some(reason) = state.abort.lock().clone() {
        not_run(state, path, suite, &format!("not run: {reason}"))
    } else if cancel.is_cancelled() {
        not_run(state, path, suite, "not run: interrupted")
    } else {
        tracing::info!(suite = %suite.name, profile = %suite.controller.profile, "suite starting");
        let result = suite::run(state, path, suite, cancel).await;
        tracing::debug!(suite = %suite.name, "suite finished");
        log_verdict(&result);
        result
    };
    state.results.lock().store(index, result);
    let writing = Instant::now();
    outputs::write(state, false);
    tracing::debug!(seconds = writing.elapsed().as_secs_f64(), "outputs written");
}

fn log_verdict(result: &SuiteResult) {
    let failed: Vec<&str> = result
        .slos
        .iter()
        .filter(|s| s.failed())
        .map(|s| s.name.as_str())
        .collect();
    match result.status {
        SuiteStatus::Passed => tracing::info!(
            suite = %result.name,
            "PASSED: {} SLOs in {:.1}s",
            result.slos.len(),
            result.duration_s
        ),
        SuiteStatus::Failed => tracing::warn!(
            suite = %result.name,
            "FAILED: {} ({:.1}s)",
            failed.join(", "),
            result.duration_s
        ),
        SuiteStatus::Error => tracing::error!(
            suite = %result.name,
            "ERROR: {}",
            result.error.as_deref().unwrap_or("unknown")
        ),
    }
}

fn settings(state: &RunState, suite: &Suite) -> Settings {
    Settings {
        provider: state.options.provider.name().to_string(),
        controller: state.bundled().then(|| {
            let mut controller = suite.controller.clone();
            controller.env = pass::controller_env(suite);
            controller
        }),
        scale: suite.scale.clone(),
        overrides: state.options.overrides.clone(),
    }
}

/// The profile a suite's numbers came from: known only when the harness started the
/// controller itself.
fn subject_profile(state: &RunState, suite: &Suite) -> Option<Profile> {
    state.bundled().then_some(suite.controller.profile)
}

fn not_run(state: &RunState, path: &Path, suite: &Suite, reason: &str) -> SuiteResult {
    SuiteResult {
        name: suite.name.clone(),
        description: suite.description.clone(),
        file: Some(path.display().to_string()),
        tags: suite.tags.clone(),
        profile: subject_profile(state, suite),
        settings: settings(state, suite),
        status: SuiteStatus::Error,
        error: Some(reason.to_string()),
        started_at: now(),
        duration_s: 0.0,
        slos: slo::evaluate(suite, &BTreeMap::new(), Some(reason)),
        measurements: BTreeMap::new(),
        steps: Vec::new(),
        api_requests: Vec::new(),
        resources: None,
        controller_metrics: BTreeMap::new(),
        baseline: None,
        quality: Vec::new(),
        concurrent_with: Vec::new(),
    }
}

/// A short verdict table for the terminal.
pub fn summary(results: &RunResults) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for suite in &results.suites {
        let status = match suite.status {
            SuiteStatus::Passed => "PASS ",
            SuiteStatus::Failed => "FAIL ",
            SuiteStatus::Error => "ERROR",
        };
        let _ = writeln!(
            out,
            "{status} {} (profile {}, {:.1}s)",
            suite.name,
            profile_label(suite.profile),
            suite.duration_s
        );
        if let Some(error) = &suite.error {
            let _ = writeln!(
                out,
                "      error: {}",
                error.lines().next().unwrap_or_default()
            );
        }
        for slo in &suite.slos {
            let _ = writeln!(
                out,
                "      {} {}: {}",
                match (slo.pass, &slo.not_applicable) {
                    (true, _) => "ok  ",
                    (false, Some(_)) => "n/a ",
                    (false, None) => "FAIL",
                },
                slo.name,
                slo
            );
        }
    }
    let passed = results.slos().filter(|(_, s)| s.pass).count();
    let not_applicable = results
        .slos()
        .filter(|(_, s)| s.not_applicable.is_some())
        .count();
    let judged = results.slos().count() - not_applicable;
    let _ = writeln!(
        out,
        "{}: {passed}/{judged} SLOs passed{} in {:.1}s",
        if results.passed { "PASSED" } else { "FAILED" },
        if not_applicable > 0 {
            format!(" ({not_applicable} not applicable to this controller)")
        } else {
            String::new()
        },
        results.duration_s
    );
    out
}
