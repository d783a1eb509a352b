//! Running suites: a fresh environment per suite, the controller, the recorder, the steps,
//! the verdicts, and results written after every suite so nothing is lost to a crash or a
//! Ctrl-C.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::cli::ControllerMode;
use crate::controller::{self, ControllerLaunch, DEFAULT_READY_TIMEOUT};
use crate::gitproxy::{GitProxy, ProxyConfig};
use crate::measure::metrics::{MetricsError, RequestTotals, writes_by_target_and_verb};
use crate::measure::recorder::Recorder;
use crate::measure::resources::ResourceSampler;
use crate::measure::scrape::RequestScraper;
use crate::provider::{self, EnvironmentSpec, Provider, RunningController};
use crate::results::{
    ApiRequestCount, BaselineResult, ControllerInfo, EXTERNAL_SETTINGS, Measurement, ResourceUsage,
    RunResults, SCHEMA_VERSION, Settings, StepResult, SuiteResult, SuiteStatus, profile_label,
};
use crate::slo::{Stat, StepOutcome, Unit};
use crate::steps::{self, Context, StepError, World};
use crate::suite::{LegacySwitch, Profile, Suite};
use crate::{junit, machine, report, slo};

/// Sampling period of controller CPU and memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Bound on tearing an environment down.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on the watch recorder's initial lists.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Git requests the proxy keeps per suite pass (a 5-minute poll of 300 repos is ~3,000).
const GIT_PROXY_LOG_CAPACITY: usize = 1_000_000;
/// Bound on the git server's answer (its response head) to one proxied request.
const GIT_PROXY_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

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
    results: Mutex<RunResults>,
    slots: Mutex<Vec<Option<SuiteResult>>>,
    /// Set when something failed that will fail every following suite too.
    abort: Mutex<Option<String>>,
    origin: Instant,
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
    let shared = Arc::new(RunState {
        options,
        results: Mutex::new(results),
        slots: Mutex::new(vec![None; count]),
        abort: Mutex::new(None),
        origin: Instant::now(),
    });
    write_outputs(&shared, false);

    let mut background = Vec::new();
    let mut foreground = Vec::new();
    for index in 0..count {
        let suite = &shared.options.suites[index].1;
        if shared
            .options
            .background_tags
            .iter()
            .any(|tag| suite.has_tag(tag))
        {
            background.push(index);
        } else {
            foreground.push(index);
        }
    }
    let mut handles = Vec::new();
    for index in background {
        let shared = Arc::clone(&shared);
        let cancel = cancel.clone();
        tracing::info!(suite = %shared.options.suites[index].1.name, "started in the background");
        handles.push(tokio::spawn(async move {
            run_and_store(&shared, index, &cancel).await;
        }));
    }
    for index in foreground {
        run_and_store(&shared, index, &cancel).await;
    }
    for handle in handles {
        let _ = handle.await;
    }
    write_outputs(&shared, true);
    shared.results.lock().clone()
}

async fn run_and_store(shared: &Arc<RunState>, index: usize, cancel: &CancellationToken) {
    let (path, suite) = &shared.options.suites[index];
    let result = if let Some(reason) = shared.abort.lock().clone() {
        not_run(shared, path, suite, &format!("not run: {reason}"))
    } else if cancel.is_cancelled() {
        not_run(shared, path, suite, "not run: interrupted")
    } else {
        tracing::info!(suite = %suite.name, profile = %suite.controller.profile, "suite starting");
        let result = run_suite(shared, path, suite, cancel).await;
        tracing::debug!(suite = %suite.name, "suite finished");
        log_verdict(&result);
        result
    };
    shared.slots.lock()[index] = Some(result);
    let writing = Instant::now();
    write_outputs(shared, false);
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

fn settings(shared: &RunState, suite: &Suite) -> Settings {
    Settings {
        provider: shared.options.provider.name().to_string(),
        controller: shared.bundled().then(|| {
            let mut controller = suite.controller.clone();
            controller.env = controller_env(suite);
            controller
        }),
        scale: suite.scale.clone(),
        overrides: shared.options.overrides.clone(),
    }
}

/// The profile a suite's numbers came from: known only when the harness started the
/// controller itself.
fn subject_profile(shared: &RunState, suite: &Suite) -> Option<Profile> {
    shared.bundled().then_some(suite.controller.profile)
}

impl RunState {
    fn bundled(&self) -> bool {
        self.options.controller_mode == ControllerMode::Bundled
    }
}

fn not_run(shared: &RunState, path: &Path, suite: &Suite, reason: &str) -> SuiteResult {
    SuiteResult {
        name: suite.name.clone(),
        description: suite.description.clone(),
        file: Some(path.display().to_string()),
        tags: suite.tags.clone(),
        profile: subject_profile(shared, suite),
        settings: settings(shared, suite),
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

/// Where environments keep their files (git repositories, kubeconfigs): `$FLEETBENCH_SCRATCH`,
/// else memory-backed `/dev/shm` when it exists (git writes and the removal of hundreds of
/// repositories then cost nothing measurable), else the system's temporary directory.
fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLEETBENCH_SCRATCH") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && tempfile::Builder::new()
            .prefix("fleetbench-probe-")
            .tempfile_in(shm)
            .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// One pass of a suite's steps in one environment.
#[derive(Default)]
struct Pass {
    measurements: BTreeMap<String, Measurement>,
    steps: Vec<StepResult>,
    api_requests: Vec<ApiRequestCount>,
    resources: Option<ResourceUsage>,
    controller_metrics: BTreeMap<String, f64>,
    error: Option<String>,
    /// The failure will repeat for every suite (environment or controller unusable).
    fatal: bool,
    kubernetes_version: Option<String>,
    git_server_version: Option<String>,
    /// Served versions of the fleet.cattle.io CRDs, as the cluster reports them.
    crd_versions: BTreeMap<String, Vec<String>>,
    /// Measurement-quality problems, in step order.
    quality: Vec<String>,
    /// Measurements taken by a step that had such a problem, with the problem.
    damaged: BTreeMap<String, String>,
}

async fn run_suite(
    shared: &RunState,
    path: &Path,
    suite: &Suite,
    cancel: &CancellationToken,
) -> SuiteResult {
    let started_at = now();
    let started = Instant::now();
    let suite_dir = shared.options.out.join("suites").join(&suite.name);
    let subject = run_pass(
        shared,
        suite,
        suite.controller.profile,
        &suite.controller.legacy,
        &suite_dir,
        cancel,
    )
    .await;
    let mut measurements = subject.measurements.clone();
    let mut error = subject.error.clone();
    let mut not_applicable = BTreeMap::new();
    let baseline = match (&suite.baseline, &subject.error) {
        (Some(spec), None) if !cancel.is_cancelled() && shared.bundled() => {
            tracing::info!(suite = %suite.name, profile = %spec.profile, "baseline pass");
            let pass = run_pass(
                shared,
                suite,
                spec.profile,
                &spec.legacy,
                &suite_dir.join("baseline"),
                cancel,
            )
            .await;
            let source = "measured in this run".to_string();
            for ratio in &spec.ratios {
                if let Some(measurement) = ratio_measurement(
                    ratio,
                    &subject.measurements,
                    &pass.measurements,
                    profile_label(Some(suite.controller.profile)),
                    spec.profile.as_str(),
                    &source,
                ) {
                    measurements.insert(ratio.name.clone(), measurement);
                }
            }
            if let Some(problem) = &pass.error {
                error = Some(format!("baseline pass ({}): {problem}", spec.profile));
            }
            let mut controller = suite.controller.clone();
            controller.profile = spec.profile;
            controller.legacy = spec.legacy.clone();
            Some(BaselineResult {
                profile: Some(spec.profile),
                controller: Some(controller),
                source: Some(source),
                measurements: pass.measurements,
                steps: pass.steps,
                api_requests: pass.api_requests,
                resources: pass.resources,
                controller_metrics: pass.controller_metrics,
                error: pass.error,
            })
        }
        (Some(spec), None) if !cancel.is_cancelled() => {
            match stored_baseline(shared.options.baseline_run.as_deref(), suite) {
                Ok(stored) => {
                    for ratio in &spec.ratios {
                        if let Some(measurement) = ratio_measurement(
                            ratio,
                            &subject.measurements,
                            &stored.measurements,
                            EXTERNAL_SETTINGS,
                            profile_label(stored.profile),
                            stored.source.as_deref().unwrap_or_default(),
                        ) {
                            measurements.insert(ratio.name.clone(), measurement);
                        } else {
                            not_applicable.insert(
                                ratio.name.clone(),
                                format!(
                                    "{} was not measured in this run or in the baseline run",
                                    ratio.measurement
                                ),
                            );
                        }
                    }
                    Some(stored)
                }
                Err(reason) => {
                    for ratio in &spec.ratios {
                        not_applicable.insert(ratio.name.clone(), reason.clone());
                    }
                    None
                }
            }
        }
        _ => None,
    };
    if subject.fatal {
        *shared.abort.lock() = Some(format!(
            "an earlier suite ({}) could not set up: {}",
            suite.name,
            subject.error.as_deref().unwrap_or("unknown")
        ));
    }
    {
        let mut results = shared.results.lock();
        if results.machine.kubernetes_version.is_none() {
            results.machine.kubernetes_version = subject.kubernetes_version.clone();
        }
        if results.machine.git_server_version.is_none() {
            results.machine.git_server_version = subject.git_server_version.clone();
        }
        if results.controller.observed_crd_versions.is_empty() {
            results.controller.observed_crd_versions = subject.crd_versions.clone();
        }
    }
    let mut slos = slo::evaluate_with(suite, &measurements, error.as_deref(), &not_applicable);
    for slo in &mut slos {
        slo.damaged = subject.damaged.get(&slo.measurement).cloned();
    }
    let status = if error.is_some() {
        SuiteStatus::Error
    } else if !slos.iter().any(|s| s.failed()) {
        SuiteStatus::Passed
    } else {
        SuiteStatus::Failed
    };
    SuiteResult {
        name: suite.name.clone(),
        description: suite.description.clone(),
        file: Some(path.display().to_string()),
        tags: suite.tags.clone(),
        profile: subject_profile(shared, suite),
        settings: settings(shared, suite),
        status,
        error,
        started_at,
        duration_s: started.elapsed().as_secs_f64(),
        slos,
        measurements,
        steps: subject.steps,
        api_requests: subject.api_requests,
        resources: subject.resources,
        controller_metrics: subject.controller_metrics,
        baseline,
        quality: subject.quality,
        concurrent_with: Vec::new(),
    }
}

/// `ratio.measurement` now divided by the same in the baseline, when both were taken.
fn ratio_measurement(
    ratio: &crate::suite::RatioSpec,
    now: &BTreeMap<String, Measurement>,
    then: &BTreeMap<String, Measurement>,
    now_label: &str,
    then_label: &str,
    source: &str,
) -> Option<Measurement> {
    let now = now.get(&ratio.measurement)?.stat(Stat::Value)?;
    let then = then.get(&ratio.measurement)?.stat(Stat::Value)?;
    let value = if then > 0.0 {
        now / then
    } else {
        f64::INFINITY.min(1e9)
    };
    let mut measurement = Measurement::value(
        Unit::Ratio,
        format!(
            "{} of the controller under test ({now_label}) divided by the same of the baseline ({then_label}, {source})",
            ratio.measurement
        ),
        value,
    );
    measurement.breakdown = BTreeMap::from([
        (format!("{} ({now_label})", ratio.measurement), now),
        (format!("{} ({then_label})", ratio.measurement), then),
    ]);
    Some(measurement)
}

/// The baseline of `suite` from the stored run given with `--baseline-run`: that run's
/// own measurements of the same suite at the same scale. `Err` says why there is none,
/// which is then what the ratio SLOs report as their reason for not applying.
fn stored_baseline(run: Option<&Path>, suite: &Suite) -> Result<BaselineResult, String> {
    let Some(run) = run else {
        return Err(format!(
            "a ratio to a baseline needs the controller run under another profile, which the harness cannot do to an external controller; give a stored run with --baseline-run to compare {} against",
            suite.name
        ));
    };
    let stored =
        RunResults::read(run).map_err(|e| format!("--baseline-run: {}", crate::error_text(&e)))?;
    let Some(found) = stored.suites.iter().find(|s| s.name == suite.name) else {
        return Err(format!(
            "--baseline-run {} has no suite {}",
            run.display(),
            suite.name
        ));
    };
    if found.settings.scale != suite.scale {
        return Err(format!(
            "--baseline-run {} ran {} at another scale; a ratio between different scales means nothing",
            run.display(),
            suite.name
        ));
    }
    if let Some(problem) = &found.error {
        return Err(format!(
            "--baseline-run {}: {} did not complete there ({problem})",
            run.display(),
            suite.name
        ));
    }
    Ok(BaselineResult {
        profile: found.profile,
        controller: found.settings.controller.clone(),
        source: Some(format!(
            "stored run {} of {}",
            run.display(),
            stored.started_at
        )),
        measurements: found.measurements.clone(),
        steps: found.steps.clone(),
        api_requests: found.api_requests.clone(),
        resources: found.resources.clone(),
        controller_metrics: found.controller_metrics.clone(),
        error: None,
    })
}

async fn run_pass(
    shared: &RunState,
    suite: &Suite,
    profile: Profile,
    legacy: &[LegacySwitch],
    dir: &Path,
    cancel: &CancellationToken,
) -> Pass {
    let mut pass = Pass::default();
    let origin = Instant::now();
    let scratch = match tempfile::Builder::new()
        .prefix("fleetbench-")
        .tempdir_in(scratch_root())
    {
        Ok(dir) => dir,
        Err(error) => {
            pass.error = Some(format!("cannot create a temporary directory: {error}"));
            pass.fatal = true;
            return pass;
        }
    };
    let spec = EnvironmentSpec {
        suite: suite.name.clone(),
        work_dir: scratch.path().to_path_buf(),
        timeout: Duration::from_secs(120),
    };
    let environment = match shared.options.provider.create(&spec, cancel).await {
        Ok(environment) => environment,
        Err(error) => {
            pass.error = Some(crate::error_text(&error));
            pass.fatal = true;
            return pass;
        }
    };
    pass.git_server_version = environment.endpoints().git_server_version.clone();
    let mut controller: Option<Box<dyn RunningController>> = None;
    let outcome = run_in_environment(
        shared,
        suite,
        profile,
        legacy,
        dir,
        cancel,
        &*environment,
        origin,
        &mut pass,
        &mut controller,
    )
    .await;
    if let Err(message) = outcome {
        pass.error = Some(message);
    }
    // Tear down while the controller still runs: on a real cluster it must remove its
    // finalizers and children as the harness deletes what it created.
    let teardown = Instant::now();
    match tokio::time::timeout(TEARDOWN_TIMEOUT, environment.teardown()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(suite = %suite.name, error = %crate::error_text(&error), "teardown");
        }
        Err(_) => tracing::warn!(
            suite = %suite.name,
            "teardown did not finish within {TEARDOWN_TIMEOUT:?}; moving on"
        ),
    }
    tracing::debug!(
        suite = %suite.name,
        seconds = teardown.elapsed().as_secs_f64(),
        "environment torn down"
    );
    if let Some(controller) = controller.take() {
        controller.stop().await;
    }
    let removing = Instant::now();
    let _ = tokio::task::spawn_blocking(move || drop(scratch)).await;
    tracing::debug!(
        suite = %suite.name,
        seconds = removing.elapsed().as_secs_f64(),
        "scratch directory removed"
    );
    pass
}

#[allow(clippy::too_many_arguments)]
async fn run_in_environment(
    shared: &RunState,
    suite: &Suite,
    profile: Profile,
    legacy: &[LegacySwitch],
    dir: &Path,
    cancel: &CancellationToken,
    environment: &dyn provider::Environment,
    origin: Instant,
    pass: &mut Pass,
    controller: &mut Option<Box<dyn RunningController>>,
) -> Result<(), String> {
    let endpoints = environment.endpoints();
    let config = provider::kube_config(&endpoints.kubeconfig_yaml, "the environment's kubeconfig")
        .await
        .map_err(|e| {
            pass.fatal = true;
            crate::error_text(&e)
        })?;
    let client = kube::Client::try_from(config.clone()).map_err(|e| {
        pass.fatal = true;
        format!("the environment's kubeconfig: {e}")
    })?;
    let server_url = endpoints.kubeconfig_path.display().to_string();
    pass.kubernetes_version = Some(
        provider::check_reachable(&client, &server_url, &server_url)
            .await
            .map_err(|e| {
                pass.fatal = true;
                crate::error_text(&e)
            })?,
    );
    let mut sampler = None;
    if shared.options.controller_mode == ControllerMode::Bundled {
        let Some(binary) = shared.options.controller_bin.clone() else {
            pass.fatal = true;
            return Err("no controller binary".to_string());
        };
        let launch = ControllerLaunch {
            binary,
            kubeconfig: endpoints.kubeconfig_path.clone(),
            profile,
            legacy: legacy.to_vec(),
            agent: suite.controller.agent,
            env: controller_env(suite),
            extra_args: suite.controller.args.clone(),
            ready_timeout: suite
                .controller
                .ready_timeout
                .map_or(DEFAULT_READY_TIMEOUT, |d| d.0),
            work_dir: dir.to_path_buf(),
        };
        let started = environment
            .start_controller(&launch, cancel)
            .await
            .map_err(|e| {
                pass.fatal = !cancel.is_cancelled();
                crate::error_text(&e)
            })?;
        if let Some(source) = started.resources() {
            sampler = Some(ResourceSampler::start(source, origin, SAMPLE_EVERY));
        }
        *controller = Some(started);
    }
    let webhook_url = controller
        .as_ref()
        .map(|c| c.webhook_url())
        .or_else(|| shared.options.webhook_url.clone());
    pass.crd_versions = served_fleet_crd_versions(&client).await;
    let placement = environment.git_proxy_placement();
    let git_proxy = GitProxy::start(ProxyConfig {
        listen: placement.listen,
        upstream: endpoints.git_api_url.clone(),
        public_url: placement.public_url.clone(),
        log_capacity: GIT_PROXY_LOG_CAPACITY,
        upstream_timeout: GIT_PROXY_UPSTREAM_TIMEOUT,
    })
    .await
    .map_err(|e| {
        pass.fatal = true;
        format!(
            "cannot start the git proxy in front of {}: {}",
            endpoints.git_api_url,
            crate::error_text(&e)
        )
    })?;
    tracing::debug!(proxy = %git_proxy.url(), upstream = %endpoints.git_api_url, "git proxy up");
    let scraper = RequestScraper::discover(client.clone(), &config).await;
    if let Some(problem) = scraper.problem() {
        tracing::warn!("{problem}");
    }
    let recorder = Recorder::start(&client, origin);
    let outcome = async {
        recorder
            .wait_synced(SYNC_TIMEOUT, cancel)
            .await
            .map_err(|e| {
                format!(
                    "watching fleet.cattle.io objects: {e} (are Fleet's CRDs installed? {:?})",
                    recorder.errors().first()
                )
            })?;
        let forge = gitserver::forge::ForgeClient::new(
            &endpoints.git_api_url,
            gitserver::forge::Auth::Basic {
                user: endpoints.git_user.clone(),
                password: endpoints.git_password.clone(),
            },
        )
        .map_err(|e| format!("git server at {}: {e}", endpoints.git_api_url))?;
        let mut context = Context {
            suite,
            kube: client.clone(),
            forge,
            endpoints,
            environment,
            recorder: &recorder,
            scraper: &scraper,
            git_proxy: &git_proxy,
            webhook_url,
            cancel: cancel.clone(),
            world: World::default(),
            unsettled: None,
        };
        let first = scraper.scrape().await;
        let mut result = Ok(());
        for (index, step) in suite.steps.iter().enumerate() {
            if cancel.is_cancelled() {
                result = Err("interrupted".to_string());
                break;
            }
            if let Some(controller) = controller.as_mut()
                && let Err(error) = controller.check_alive()
            {
                result = Err(crate::error_text(&error));
                break;
            }
            let before = scraper.scrape().await;
            let step_started = Instant::now();
            let watch_errors_before = recorder.errors().len();
            let outcome = steps::run(&mut context, index, step).await;
            let after = scraper.scrape().await;
            let (requests, mut step_problems) = step_writes(&before, &after, scraper.problem());
            let api_writes = writes_by_target_and_verb(&requests);
            let ledger = crate::ledger::of(&requests);
            let watch_errors = recorder.errors();
            if watch_errors.len() > watch_errors_before {
                step_problems.push(format!(
                    "the watch was interrupted {} time(s) during the step (events in a gap are stamped when the watch re-lists): {}",
                    watch_errors.len() - watch_errors_before,
                    watch_errors[watch_errors_before..].join("; ")
                ));
            }
            let quality;
            let (outcome_text, message) = match outcome {
                Ok(mut output) => {
                    output.quality.append(&mut step_problems);
                    // A measurement taken while the controller was still busy with an
                    // earlier step's work is charged with that work: flag it.
                    if let Some(problem) = &context.unsettled
                        && !output.measurements.is_empty()
                    {
                        for (_, measurement) in &mut output.measurements {
                            measurement.notes.push(format!(
                                "taken while an earlier wait for quiet had given up: {problem}"
                            ));
                        }
                        output.quality.push(format!(
                            "measured after an earlier wait for quiet gave up ({problem})"
                        ));
                    }
                    for (name, measurement) in output.measurements {
                        if !output.quality.is_empty() {
                            pass.damaged.insert(name.clone(), output.quality.join("; "));
                        }
                        pass.measurements.insert(name, measurement);
                    }
                    for problem in &output.quality {
                        pass.quality
                            .push(format!("step {index} ({}): {problem}", step.action()));
                    }
                    quality = output.quality;
                    (StepOutcome::Ok, output.message)
                }
                Err(error) => {
                    let died = controller.as_mut().and_then(|c| c.check_alive().err());
                    let message = match died {
                        Some(died) => format!(
                            "{}; {}",
                            crate::error_text(&error),
                            crate::error_text(&died)
                        ),
                        None => crate::error_text(&error),
                    };
                    result = Err(format!(
                        "step {index} ({}) failed: {message}",
                        step.action()
                    ));
                    let cancelled = matches!(error, StepError::Cancelled);
                    pass.steps.push(StepResult {
                        index,
                        action: step.action().to_string(),
                        started_s: step_started.duration_since(origin).as_secs_f64(),
                        duration_s: step_started.elapsed().as_secs_f64(),
                        outcome: if cancelled {
                            StepOutcome::Interrupted
                        } else {
                            StepOutcome::Error
                        },
                        message,
                        api_writes,
                        quality: Vec::new(),
                        ledger,
                    });
                    break;
                }
            };
            pass.steps.push(StepResult {
                index,
                action: step.action().to_string(),
                started_s: step_started.duration_since(origin).as_secs_f64(),
                duration_s: step_started.elapsed().as_secs_f64(),
                outcome: outcome_text,
                message,
                api_writes,
                quality,
                ledger,
            });
        }
        match (&first, &scraper.scrape().await) {
            (Ok(first), Ok(last)) => {
                pass.api_requests = last.since(first);
                pass.quality.extend(
                    last.restarts_since(first)
                        .into_iter()
                        .map(|problem| format!("the suite's API request counts are short: {problem}")),
                );
            }
            (Err(error), _) | (_, Err(error)) => pass.quality.push(format!(
                "the suite's API request counts are unknown: the API server's metrics could not be read ({})",
                crate::error_text(error)
            )),
        }
        if let Some(problem) = scraper.problem() {
            pass.quality.push(problem.to_string());
        }
        result
    }
    .await;
    drop(recorder);
    git_proxy.shutdown().await;
    if let Some(sampler) = sampler {
        let usage = sampler.finish();
        // No sample at all is no measurement, not a controller that used nothing.
        if usage.samples.is_empty() {
            tracing::warn!("the controller's CPU and memory could not be read; none reported");
        } else {
            pass.resources = Some(usage);
        }
    }
    if let Some(running) = controller.as_ref() {
        pass.controller_metrics = controller_metrics(running.address()).await;
    }
    outcome
}

/// A step's API requests from the scrapes around it, and what makes them unknown or short
/// (a failed scrape, a restarted API server, replicas read through a load balancer): every
/// such problem is recorded with the step, and damages the step's measurements.
fn step_writes(
    before: &Result<RequestTotals, MetricsError>,
    after: &Result<RequestTotals, MetricsError>,
    scraper_problem: Option<&str>,
) -> (Vec<ApiRequestCount>, Vec<String>) {
    let mut problems: Vec<String> = scraper_problem.map(str::to_string).into_iter().collect();
    let requests = match (before, after) {
        (Ok(before), Ok(after)) => {
            problems.extend(
                after
                    .restarts_since(before)
                    .into_iter()
                    .map(|problem| format!("the step's API writes are short: {problem}")),
            );
            after.since(before)
        }
        (Err(error), _) => {
            problems.push(format!(
                "the step's API writes are unknown: the API server's metrics could not be read before it ({})",
                crate::error_text(error)
            ));
            Vec::new()
        }
        (_, Err(error)) => {
            problems.push(format!(
                "the step's API writes are unknown: the API server's metrics could not be read after it ({})",
                crate::error_text(error)
            ));
            Vec::new()
        }
    };
    (requests, problems)
}

/// The controller's floor on polling intervals (Fleet's 15s default), which the bundled
/// controller enforces against runaway polling.
const CONTROLLER_MIN_POLLING_INTERVAL: Duration = Duration::from_secs(15);
/// The variable that lowers that floor.
const MIN_POLLING_INTERVAL_ENV: &str = "FLEET_MIN_POLLING_INTERVAL";

/// The bundled controller's environment: the suite's, plus a lower polling floor when the
/// suite polls faster than the controller allows by default (the smoke suites poll every
/// few seconds). The floor is lowered exactly to the suite's shortest interval, so it still
/// catches anything faster, and it shows in the results' settings like any other variable.
fn controller_env(suite: &Suite) -> BTreeMap<String, String> {
    let mut env = suite.controller.env.clone();
    let shortest = suite
        .steps
        .iter()
        .filter_map(|step| match step {
            crate::suite::Step::CreateGitrepos(spec) => spec.polling_interval,
            _ => None,
        })
        .chain([suite.scale.polling_interval])
        .map(|interval| interval.0)
        .min()
        .unwrap_or(CONTROLLER_MIN_POLLING_INTERVAL);
    if shortest < CONTROLLER_MIN_POLLING_INTERVAL {
        env.entry(MIN_POLLING_INTERVAL_ENV.to_string())
            .or_insert_with(|| format!("{}ms", shortest.as_millis()));
    }
    env
}

/// What the cluster serves of fleet.cattle.io: each CRD's served versions. Observed, not
/// assumed, so that results about a controller the harness did not start say at least
/// which API it spoke. Best effort: empty when CRDs cannot be listed (RBAC, timeout).
async fn served_fleet_crd_versions(client: &kube::Client) -> BTreeMap<String, Vec<String>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let listed = tokio::time::timeout(
        Duration::from_secs(15),
        api.list(&kube::api::ListParams::default()),
    )
    .await;
    let Ok(Ok(list)) = listed else {
        tracing::debug!("cannot list CRDs; the results will not name the served versions");
        return BTreeMap::new();
    };
    list.items
        .into_iter()
        .filter(|crd| crd.spec.group == crate::results::FLEET_GROUP)
        .filter_map(|crd| {
            let name = crd.metadata.name?;
            let versions = crd
                .spec
                .versions
                .into_iter()
                .filter(|v| v.served)
                .map(|v| v.name)
                .collect();
            Some((name, versions))
        })
        .collect()
}

/// The controller's own counters (best effort: an empty map when it does not answer).
async fn controller_metrics(address: std::net::SocketAddr) -> BTreeMap<String, f64> {
    crate::init_crypto();
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
    else {
        return BTreeMap::new();
    };
    let text = match client.get(format!("http://{address}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    crate::measure::metrics::samples_with_prefix(
        &text,
        &["fleet_", "controller_runtime_reconcile_total"],
    )
}

/// Writes results.json, junit.xml and report.html; `finished` stamps the end.
fn write_outputs(shared: &RunState, finished: bool) {
    let snapshot = {
        let mut results = shared.results.lock();
        results.suites = shared.slots.lock().iter().flatten().cloned().collect();
        crate::results::mark_overlaps(&mut results.suites);
        results.duration_s = shared.origin.elapsed().as_secs_f64();
        if finished {
            results.finished_at = Some(now());
        }
        results.update_verdict();
        results.clone()
    };
    let out = &shared.options.out;
    if let Err(error) = snapshot.write_to_dir(out) {
        tracing::error!(error = %crate::error_text(&error), "cannot write results");
        return;
    }
    let junit_path = out.join(junit::JUNIT_FILE);
    if let Err(error) = std::fs::write(&junit_path, junit::render(&snapshot)) {
        tracing::error!(%error, path = %junit_path.display(), "cannot write JUnit");
    }
    let html = report::render(
        &[report::LabelledRun {
            label: out.display().to_string(),
            results: snapshot,
        }],
        None,
    );
    let report_path = out.join("report.html");
    if let Err(error) = std::fs::write(&report_path, html) {
        tracing::error!(%error, path = %report_path.display(), "cannot write the report");
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::results::fixtures;
    use crate::suite::parse_suite;

    fn totals(patches: u32) -> Result<RequestTotals, MetricsError> {
        RequestTotals::parse(&format!(
            "apiserver_request_total{{verb=\"PATCH\",group=\"fleet.cattle.io\",resource=\"bundles\",subresource=\"status\",code=\"200\"}} {patches}\n"
        ))
    }

    #[test]
    fn a_steps_writes_come_from_the_scrapes_around_it() {
        let (requests, problems) = step_writes(&totals(10), &totals(25), None);
        assert_eq!(
            writes_by_target_and_verb(&requests)["bundles/status PATCH"],
            15.0
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_failed_scrape_makes_the_writes_unknown_not_zero() {
        let failed = || {
            Err(MetricsError::NoAnswer {
                address: String::new(),
                after: Duration::from_secs(5),
            })
        };
        for (before, after, when) in [
            (failed(), totals(3), "before it"),
            (totals(3), failed(), "after it"),
        ] {
            let (requests, problems) = step_writes(&before, &after, None);
            assert!(requests.is_empty());
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("unknown"), "{problems:?}");
            assert!(problems[0].contains(when), "{problems:?}");
        }
    }

    #[test]
    fn a_restart_or_a_load_balancer_damages_the_steps_writes() {
        let (requests, problems) = step_writes(&totals(25), &totals(4), None);
        assert_eq!(
            writes_by_target_and_verb(&requests)["bundles/status PATCH"],
            4.0,
            "counted from the restart"
        );
        assert!(
            problems.iter().any(|p| p.contains("restarted")),
            "{problems:?}"
        );
        let (_, problems) = step_writes(&totals(1), &totals(2), Some("read through a balancer"));
        assert_eq!(problems, ["read through a balancer"]);
    }

    /// A suite named like the fixture run's first suite, with a ratio to a baseline.
    fn suite(gitrepos: u32) -> Suite {
        parse_suite(
            &format!(
                r#"
name: label-propagation
scale: {{gitrepos: {gitrepos}}}
controller: {{agent: none}}
baseline:
  profile: fleet-v0.10
  ratios: [{{name: write-ratio, measurement: writes}}]
steps:
  - create_clusters: {{labels: {{env: a}}}}
  - create_repos: {{}}
  - create_gitrepos: {{targets: [{{clusterSelector: {{matchLabels: {{env: a}}}}}}]}}
  - settle: {{}}
  - status_burst: {{measure: writes}}
slos:
  - {{name: fewer, measurement: write-ratio, stat: value, max: 0.4}}
"#
            ),
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn a_stored_baseline_is_taken_only_from_the_same_suite_at_the_same_scale() {
        let dir = tempfile::tempdir().unwrap();
        let mut stored = fixtures::run();
        stored.suites[0].settings.scale = suite(3).scale;
        stored.suites[0].measurements.insert(
            "writes".to_string(),
            Measurement::value(Unit::Writes, "status writes", 200.0),
        );
        stored.write_to_dir(dir.path()).unwrap();

        let baseline = stored_baseline(Some(dir.path()), &suite(3)).unwrap();
        let source = baseline.source.clone().unwrap();
        assert!(
            source.contains(&dir.path().display().to_string()),
            "{source}"
        );
        assert!(source.contains(&stored.started_at), "{source}");
        let now = BTreeMap::from([(
            "writes".to_string(),
            Measurement::value(Unit::Writes, "status writes", 50.0),
        )]);
        let spec = suite(3).baseline.unwrap().ratios[0].clone();
        let ratio = ratio_measurement(
            &spec,
            &now,
            &baseline.measurements,
            EXTERNAL_SETTINGS,
            profile_label(baseline.profile),
            &source,
        )
        .unwrap();
        assert_eq!(ratio.stat(Stat::Value), Some(0.25));
        assert!(ratio.description.contains(&source), "{}", ratio.description);

        let other_scale = stored_baseline(Some(dir.path()), &suite(30)).unwrap_err();
        assert!(other_scale.contains("another scale"), "{other_scale}");
        let none = stored_baseline(None, &suite(3)).unwrap_err();
        assert!(none.contains("--baseline-run"), "{none}");
        let missing = stored_baseline(Some(&dir.path().join("nope")), &suite(3)).unwrap_err();
        assert!(missing.contains("--baseline-run"), "{missing}");
    }

    #[test]
    fn the_polling_floor_is_lowered_only_to_the_suites_shortest_interval() {
        let mut fast = suite(3);
        assert!(
            !controller_env(&fast).contains_key(MIN_POLLING_INTERVAL_ENV),
            "15s needs no change"
        );
        fast.scale.polling_interval = crate::suite::GoDuration::from_secs(5);
        assert_eq!(
            controller_env(&fast)[MIN_POLLING_INTERVAL_ENV],
            "5000ms",
            "exactly the suite's interval, so anything faster is still caught"
        );
    }
}
