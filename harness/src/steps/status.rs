//! `status_burst`: flip every BundleDeployment's status a few times (as agents reporting
//! would) and count the GitRepo and Bundle status writes the controller makes in response.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fleet_controller::api::{BundleDeployment, labels};
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::cluster::create_all;
use super::{Context, StepError, StepOutput};
use crate::measure::metrics::RequestTotals;
use crate::measure::metrics::count_writes;
use crate::measure::recorder::Kind;
use crate::progress::Task;
use crate::results::{ApiRequestCount, Measurement};
use crate::suite::{CountWrites, MeasurementKind, Settle, StatusBurst};

/// Concurrent status patches.
const CONCURRENCY: usize = 32;
/// How often the API server's counters are read while waiting for quiet.
const QUIET_POLL: Duration = Duration::from_millis(500);

/// A count measurement of writes to some resources.
pub fn writes_measurement(
    spec: &CountWrites,
    requests: &[ApiRequestCount],
) -> (String, Measurement) {
    let (total, breakdown) = count_writes(requests, &spec.resources, spec.subresource.as_deref());
    (
        spec.measure.clone(),
        Measurement {
            kind: MeasurementKind::Count,
            unit: "writes".into(),
            description: format!(
                "API writes to {}{} during the step",
                spec.resources.join(", "),
                spec.subresource
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            stats: BTreeMap::from([("value".to_string(), total as f64)]),
            samples: Vec::new(),
            breakdown,
            band: None,
            notes: Vec::new(),
        },
    )
}

fn status_patch(deployment_id: &str, ready: bool) -> serde_json::Value {
    let now = jiff::Timestamp::now().to_string();
    let state = if ready { "Ready" } else { "NotReady" };
    let flag = if ready { "True" } else { "False" };
    serde_json::json!({
        "status": {
            "appliedDeploymentID": deployment_id,
            "ready": ready,
            "nonModified": true,
            "display": {"deployed": "True", "monitored": flag, "state": state},
            "conditions": [
                {"type": "Deployed", "status": "True", "lastUpdateTime": now},
                {"type": "Ready", "status": flag, "lastUpdateTime": now},
                {"type": "Monitored", "status": flag, "lastUpdateTime": now}
            ]
        }
    })
}

/// Waits until no counted write happened for `quiet` (or `deadline`); returns the last
/// scrape, the count since `before`, and whether it went quiet (false: the deadline came
/// first). `resources` empty counts every write to what a
/// Fleet controller owns (never Leases, Events or other clients' kinds, which on a real
/// cluster never go quiet).
pub async fn wait_for_quiet(
    ctx: &Context<'_>,
    before: &RequestTotals,
    resources: &[String],
    subresource: Option<&str>,
    quiet: Duration,
    deadline: Instant,
    label: &str,
) -> Result<(RequestTotals, u64, bool), StepError> {
    let task = Task::start(label.to_string(), None);
    let mut last_total = u64::MAX;
    let mut quiet_since = Instant::now();
    let mut after = ctx.scrape_requests().await?;
    let mut went_quiet = false;
    loop {
        let requests = after.since(before);
        let total = if resources.is_empty() {
            requests
                .iter()
                .filter(|r| {
                    r.is_write()
                        && r.is_controller_owned()
                        && subresource.is_none_or(|s| r.subresource == s)
                })
                .map(|r| r.count)
                .sum()
        } else {
            count_writes(&requests, resources, subresource).0
        };
        if total != last_total {
            last_total = total;
            quiet_since = Instant::now();
        }
        task.message(format!("{total} writes so far"));
        if quiet_since.elapsed() >= quiet {
            went_quiet = true;
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        ctx.sleep(QUIET_POLL).await?;
        after = ctx.scrape_requests().await?;
    }
    task.finish();
    Ok((after, last_total, went_quiet))
}

/// `settle`: wait until the API server has seen no write for `quiet`.
pub async fn settle(
    ctx: &mut Context<'_>,
    spec: &Settle,
    label: &str,
) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    let before = ctx.scrape_requests().await?;
    let (_, writes, idle) = wait_for_quiet(
        ctx,
        &before,
        &[],
        None,
        spec.quiet.0,
        started + spec.timeout.0,
        &format!("{label}: waiting for the controller to go idle"),
    )
    .await?;
    let mut quality = Vec::new();
    if idle {
        ctx.unsettled = None;
    } else {
        let problem = format!(
            "the controller was still writing after {} ({writes} writes to fleet.cattle.io objects, namespaces and secrets)",
            spec.timeout
        );
        quality.push(format!("settle gave up: {problem}"));
        ctx.unsettled = Some(problem);
    }
    Ok(StepOutput {
        quality,
        message: if idle {
            format!(
                "idle after {:.1}s ({writes} writes meanwhile, then none for {})",
                started.elapsed().as_secs_f64(),
                spec.quiet
            )
        } else {
            format!(
                "still writing after {} ({writes} writes); moving on",
                spec.timeout
            )
        },
        ..StepOutput::default()
    })
}

/// Runs the step.
pub async fn status_burst(
    ctx: &mut Context<'_>,
    spec: &StatusBurst,
    label: &str,
) -> Result<StepOutput, StepError> {
    let gitrepos: BTreeSet<String> = ctx.world.gitrepos.iter().map(|g| g.name.clone()).collect();
    let deployments: Vec<(String, String, String)> = ctx.recorder.with_state(|state| {
        state
            .of_kind(Kind::BundleDeployment)
            .filter(|(_, facts)| {
                facts
                    .label(labels::REPO_NAME)
                    .is_some_and(|r| gitrepos.contains(r))
            })
            .map(|(key, facts)| {
                (
                    key.namespace.clone(),
                    key.name.clone(),
                    facts.deployment_id.clone(),
                )
            })
            .collect()
    });
    if deployments.is_empty() {
        return Err(StepError::Unsupported(
            "status_burst found no BundleDeployments of the suite's GitRepos".to_string(),
        ));
    }
    let counted = CountWrites {
        measure: spec.measure.clone(),
        resources: spec.resources.clone(),
        subresource: Some("status".to_string()),
    };
    let before = ctx.scrape_requests().await?;
    let started = Instant::now();
    for round in 1..=spec.rounds {
        // Alternate so that the last round leaves every BundleDeployment Ready.
        let ready = (spec.rounds - round).is_multiple_of(2);
        let task = Task::start(
            format!(
                "{label}: round {round}/{} ({})",
                spec.rounds,
                if ready { "Ready" } else { "NotReady" }
            ),
            Some(deployments.len() as u64),
        );
        let client = ctx.kube.clone();
        create_all(
            deployments.clone(),
            CONCURRENCY,
            &task,
            |(namespace, name, id)| {
                let api: Api<BundleDeployment> = Api::namespaced(client.clone(), &namespace);
                async move {
                    api.patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&status_patch(&id, ready)),
                    )
                    .await
                    .map(|_| ())
                    .map_err(StepError::kube(format!(
                        "patch status of BundleDeployment {namespace}/{name}"
                    )))
                }
            },
        )
        .await?;
        task.finish();
        if round < spec.rounds {
            ctx.sleep(spec.pause.0).await?;
        }
    }
    // Wait for the final status to be reported, then for the writes to stop.
    let expected: BTreeMap<String, usize> = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| (g.name.clone(), ctx.world.expected_bundledeployments(g)))
        .collect();
    let namespace = ctx.namespace().to_string();
    let deadline = started + spec.timeout.0;
    let task = Task::start(
        format!("{label}: final status reported"),
        Some(expected.len() as u64),
    );
    let incorrect_of = |state: &crate::measure::recorder::State| -> Vec<String> {
        let mut wrong = Vec::new();
        for (name, count) in &expected {
            let want = format!("{count}/{count}");
            match state.get(Kind::GitRepo, &namespace, name) {
                Some(facts) if facts.ready_bundle_deployments == want => {}
                Some(facts) => wrong.push(format!(
                    "GitRepo {name}: readyBundleDeployments {:?}, expected {want:?}",
                    facts.ready_bundle_deployments
                )),
                None => wrong.push(format!("GitRepo {name}: gone")),
            }
        }
        for (key, facts) in state.of_kind(Kind::Bundle) {
            let ours = facts
                .label(labels::REPO_NAME)
                .is_some_and(|r| expected.contains_key(r));
            if ours
                && key.namespace == namespace
                && facts.summary_ready != facts.summary_desired_ready
            {
                wrong.push(format!(
                    "Bundle {}: summary ready {} of {}",
                    key.name, facts.summary_ready, facts.summary_desired_ready
                ));
            }
        }
        wrong
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let settled = ctx
        .recorder
        .wait_until(remaining, &ctx.cancel, |state| {
            let wrong = incorrect_of(state);
            task.set((expected.len().saturating_sub(wrong.len())) as u64);
            wrong.is_empty().then_some(())
        })
        .await;
    task.finish();
    if let Err(crate::measure::recorder::WaitError::Cancelled) = settled {
        return Err(StepError::Cancelled);
    }
    let (after, last_total, quiet) = wait_for_quiet(
        ctx,
        &before,
        &counted.resources,
        Some("status"),
        spec.quiet.0,
        deadline,
        &format!("{label}: waiting for status writes to stop"),
    )
    .await?;
    let incorrect = ctx.recorder.with_state(incorrect_of);
    let (name, mut writes) = writes_measurement(&counted, &after.since(&before));
    writes.description = format!(
        "GitRepo and Bundle status writes caused by {} rounds of status changes on {} BundleDeployments",
        spec.rounds,
        deployments.len()
    );
    let mut output = StepOutput {
        message: format!(
            "{} rounds on {} BundleDeployments: {} status writes to {}; {} objects with a wrong final status",
            spec.rounds,
            deployments.len(),
            last_total,
            spec.resources.join("+"),
            incorrect.len()
        ),
        measurements: vec![(name, writes)],
    };
    let changes = u64::from(spec.rounds) * deployments.len() as u64;
    if let Some(name) = &spec.measure_per_change {
        let mut measurement = Measurement::value(
            "writes",
            format!(
                "{} status writes per BundleDeployment status change ({last_total} writes for {} rounds x {} BundleDeployments)",
                spec.resources.join("+"),
                spec.rounds,
                deployments.len()
            ),
            last_total as f64 / changes as f64,
        );
        measurement.breakdown = BTreeMap::from([
            ("writes".to_string(), last_total as f64),
            ("status changes".to_string(), changes as f64),
        ]);
        output.measurements.push((name.clone(), measurement));
    }
    if !quiet {
        output.quality.push(format!(
            "status writes had not stopped {} after the burst began; the count may be short",
            spec.timeout
        ));
    }
    if let Some(name) = &spec.measure_incorrect {
        let mut measurement = Measurement::value(
            "count",
            "GitRepos and Bundles whose final status does not show every BundleDeployment ready",
            incorrect.len() as f64,
        );
        measurement.notes = incorrect.into_iter().take(20).collect();
        output.measurements.push((name.clone(), measurement));
    }
    Ok(output)
}
