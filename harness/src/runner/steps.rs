//! A pass's step loop: each step in order, with the API server's request counters scraped
//! around it (so every step reports the writes it caused) and every problem that makes a
//! step's figures doubtful recorded with the step and with the measurements it took.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::controller::ControllerError;
use crate::measure::metrics::{MetricsError, RequestTotals, writes_by_target_and_verb};
use crate::provider::RunningController;
use crate::results::{ApiRequestCount, Measurement, StepResult};
use crate::slo::StepOutcome;
use crate::steps::{self, Context, StepError};

/// What the steps measured, and why they stopped early if they did.
#[derive(Debug, Default)]
pub(super) struct StepsOutcome {
    pub measurements: BTreeMap<String, Measurement>,
    pub steps: Vec<StepResult>,
    pub api_requests: Vec<ApiRequestCount>,
    pub quality: Vec<String>,
    pub damaged: BTreeMap<String, String>,
    pub stopped: Option<StepsStopped>,
}

/// Why the steps stopped before the last one.
#[derive(Debug)]
pub(super) enum StepsStopped {
    /// Ctrl-C between steps.
    Interrupted,
    /// The controller exited between steps.
    ControllerDied(ControllerError),
    /// A step failed.
    Step {
        index: usize,
        action: String,
        /// How the controller had exited, if it had.
        died: Option<String>,
        source: StepError,
    },
}

/// Runs the suite's steps in `context`, checking before each that the controller (when
/// the harness runs it) is alive.
pub(super) async fn run(
    context: &mut Context<'_>,
    mut controller: Option<&mut Box<dyn RunningController>>,
    origin: Instant,
) -> StepsOutcome {
    let mut outcome = StepsOutcome::default();
    let (suite, scraper, recorder) = (context.suite, context.scraper, context.recorder);
    let first = scraper.scrape().await;
    for (index, step) in suite.steps.iter().enumerate() {
        if context.cancel.is_cancelled() {
            outcome.stopped = Some(StepsStopped::Interrupted);
            break;
        }
        if let Some(controller) = controller.as_deref_mut()
            && let Err(error) = controller.check_alive()
        {
            outcome.stopped = Some(StepsStopped::ControllerDied(error));
            break;
        }
        let before = scraper.scrape().await;
        let step_started = Instant::now();
        let watch_errors_before = recorder.errors().len();
        let result = steps::run(context, index, step).await;
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
        let mut step_result = StepResult {
            index,
            action: step.action().to_string(),
            started_s: step_started.duration_since(origin).as_secs_f64(),
            duration_s: step_started.elapsed().as_secs_f64(),
            outcome: StepOutcome::Ok,
            message: String::new(),
            api_writes,
            quality: Vec::new(),
            ledger,
        };
        match result {
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
                        outcome
                            .damaged
                            .insert(name.clone(), output.quality.join("; "));
                    }
                    outcome.measurements.insert(name, measurement);
                }
                for problem in &output.quality {
                    outcome
                        .quality
                        .push(format!("step {index} ({}): {problem}", step.action()));
                }
                step_result.quality = output.quality;
                step_result.message = output.message;
                outcome.steps.push(step_result);
            }
            Err(error) => {
                let died = controller
                    .as_deref_mut()
                    .and_then(|c| c.check_alive().err())
                    .map(|died| crate::error_text(&died));
                let message = crate::error_text(&error);
                step_result.message = match &died {
                    Some(died) => format!("{message}; {died}"),
                    None => message,
                };
                step_result.outcome = if matches!(error, StepError::Cancelled) {
                    StepOutcome::Interrupted
                } else {
                    StepOutcome::Error
                };
                outcome.steps.push(step_result);
                outcome.stopped = Some(StepsStopped::Step {
                    index,
                    action: step.action().to_string(),
                    died,
                    source: error,
                });
                break;
            }
        }
    }
    match (&first, &scraper.scrape().await) {
        (Ok(first), Ok(last)) => {
            outcome.api_requests = last.since(first);
            outcome.quality.extend(
                last.restarts_since(first)
                    .into_iter()
                    .map(|problem| format!("the suite's API request counts are short: {problem}")),
            );
        }
        (Err(error), _) | (_, Err(error)) => outcome.quality.push(format!(
            "the suite's API request counts are unknown: the API server's metrics could not be read ({})",
            crate::error_text(error)
        )),
    }
    if let Some(problem) = scraper.problem() {
        outcome.quality.push(problem.to_string());
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
}
