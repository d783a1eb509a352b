//! One suite: its pass with the controller under test, a baseline (a second pass under the
//! baseline profile, or a stored run's) when it has ratios to one, and the verdicts. What
//! the passes measured is moved into the suite's result, not copied.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::pass::{PassOutput, SuitePass};
use super::{RunState, now, settings, subject_profile};
use crate::measure::baseline::{ratio_measurement, stored_baseline};
use crate::results::{BaselineResult, EXTERNAL_SETTINGS, SuiteResult, SuiteStatus, profile_label};
use crate::slo;
use crate::suite::{Baseline, Suite};

/// Where the measurement named in a ratio was missing on one side.
const RATIO_UNMEASURED: &str = "was not measured in this run or in the baseline run";

/// Runs `suite` and judges it.
pub(super) async fn run(
    state: &RunState,
    path: &Path,
    suite: &Suite,
    cancel: &CancellationToken,
) -> SuiteResult {
    let started_at = now();
    let started = Instant::now();
    let suite_dir = state.options.out.join("suites").join(&suite.name);
    let subject = SuitePass {
        state,
        suite,
        profile: suite.controller.profile,
        legacy: &suite.controller.legacy,
        dir: suite_dir.clone(),
        cancel,
        records_cluster_facts: true,
    }
    .run()
    .await;
    let (mut output, mut error) = match subject {
        Ok(output) => (output, None),
        Err(failure) => {
            let text = crate::error_text(&failure);
            if failure.is_fatal() {
                *state.abort.lock() = Some(format!(
                    "an earlier suite ({}) could not set up: {text}",
                    suite.name
                ));
            }
            (failure.into_partial().unwrap_or_default(), Some(text))
        }
    };
    let mut ratios = Vec::new();
    let mut not_applicable = BTreeMap::new();
    let baseline = match &suite.baseline {
        Some(spec) if error.is_none() && !cancel.is_cancelled() => {
            if state.bundled() {
                tracing::info!(suite = %suite.name, profile = %spec.profile, "baseline pass");
                let (baseline, problem) = SuitePass {
                    state,
                    suite,
                    profile: spec.profile,
                    legacy: &spec.legacy,
                    dir: suite_dir.join("baseline"),
                    cancel,
                    records_cluster_facts: false,
                }
                .measured_baseline(spec)
                .await;
                let source = baseline.source.as_deref().unwrap_or_default();
                for ratio in &spec.ratios {
                    if let Some(measurement) = ratio_measurement(
                        ratio,
                        &output.measurements,
                        &baseline.measurements,
                        profile_label(Some(suite.controller.profile)),
                        spec.profile.as_str(),
                        source,
                    ) {
                        ratios.push((ratio.name.clone(), measurement));
                    }
                }
                if let Some(problem) = problem {
                    error = Some(format!("baseline pass ({}): {problem}", spec.profile));
                }
                Some(baseline)
            } else {
                match stored_baseline(state.options.baseline_run.as_deref(), suite) {
                    Ok(stored) => {
                        for ratio in &spec.ratios {
                            match ratio_measurement(
                                ratio,
                                &output.measurements,
                                &stored.measurements,
                                EXTERNAL_SETTINGS,
                                profile_label(stored.profile),
                                stored.source.as_deref().unwrap_or_default(),
                            ) {
                                Some(measurement) => ratios.push((ratio.name.clone(), measurement)),
                                None => {
                                    not_applicable.insert(
                                        ratio.name.clone(),
                                        format!("{} {RATIO_UNMEASURED}", ratio.measurement),
                                    );
                                }
                            }
                        }
                        Some(stored)
                    }
                    Err(reason) => {
                        let reason = crate::error_text(&reason);
                        for ratio in &spec.ratios {
                            not_applicable.insert(ratio.name.clone(), reason.clone());
                        }
                        None
                    }
                }
            }
        }
        _ => None,
    };
    output.measurements.extend(ratios);
    judge(
        state,
        path,
        suite,
        Judged {
            started_at,
            duration_s: started.elapsed().as_secs_f64(),
            output,
            error,
            not_applicable,
            baseline,
        },
    )
}

impl SuitePass<'_> {
    /// The baseline pass as the suite's result records it, and why it stopped early.
    async fn measured_baseline(&self, spec: &Baseline) -> (BaselineResult, Option<String>) {
        let (output, problem) = match self.run().await {
            Ok(output) => (output, None),
            Err(failure) => {
                let text = crate::error_text(&failure);
                (failure.into_partial().unwrap_or_default(), Some(text))
            }
        };
        let mut controller = self.suite.controller.clone();
        controller.profile = spec.profile;
        controller.legacy = spec.legacy.clone();
        let baseline = BaselineResult {
            profile: Some(spec.profile),
            controller: Some(controller),
            source: Some("measured in this run".to_string()),
            measurements: output.measurements,
            steps: output.steps,
            api_requests: output.api_requests,
            resources: output.resources,
            controller_metrics: output.controller_metrics,
            error: problem.clone(),
        };
        (baseline, problem)
    }
}

/// Everything a suite's verdict is drawn from.
struct Judged {
    started_at: String,
    duration_s: f64,
    output: PassOutput,
    error: Option<String>,
    not_applicable: BTreeMap<String, String>,
    baseline: Option<BaselineResult>,
}

fn judge(state: &RunState, path: &Path, suite: &Suite, judged: Judged) -> SuiteResult {
    let Judged {
        started_at,
        duration_s,
        output,
        error,
        not_applicable,
        baseline,
    } = judged;
    let mut slos = slo::evaluate_with(
        suite,
        &output.measurements,
        error.as_deref(),
        &not_applicable,
    );
    for slo in &mut slos {
        slo.damaged = output.damaged.get(&slo.measurement).cloned();
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
        profile: subject_profile(state, suite),
        settings: settings(state, suite),
        status,
        error,
        started_at,
        duration_s,
        slos,
        measurements: output.measurements,
        steps: output.steps,
        api_requests: output.api_requests,
        resources: output.resources,
        controller_metrics: output.controller_metrics,
        baseline,
        quality: output.quality,
        concurrent_with: Vec::new(),
    }
}
