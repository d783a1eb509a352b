//! `status_burst`: flip every BundleDeployment's status a few times (as agents reporting
//! would) and count the GitRepo and Bundle status writes the controller makes in response.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_api::{BundleDeployment, labels};
use kube::Api;
use kube::api::{Patch, PatchParams};

use super::batch::create_or_patch_all;
use super::{Context, StepError, StepOutput};
use crate::measure::metrics::count_writes;
use crate::measure::recorder::Kind;
use crate::progress::Task;
use crate::results::{ApiRequestCount, Measurement};
use crate::slo::{Stat, Unit};
use crate::suite::{CountWrites, MeasurementKind, StatusBurst};

/// Concurrent status patches.
const CONCURRENCY: usize = 32;

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
            unit: Unit::Writes,
            description: format!(
                "API writes to {}{} during the step",
                spec.resources.join(", "),
                spec.subresource
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
            stats: BTreeMap::from([(Stat::Value, total as f64)]),
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

/// Runs the step.
pub async fn status_burst(
    ctx: &mut Context<'_>,
    spec: &StatusBurst,
    label: &str,
) -> Result<StepOutput, StepError> {
    let gitrepos: BTreeSet<String> = ctx.world.gitrepos.iter().map(|g| g.name.clone()).collect();
    // (namespace, name, deploymentID, GitRepo, Bundle), sorted: the first of each GitRepo
    // is the one held back NotReady in the last round.
    let deployments: Vec<(String, String, String, String, String)> =
        ctx.recorder.with_state(|state| {
            state
                .of_kind(Kind::BundleDeployment)
                .filter_map(|(key, facts)| {
                    let repo = facts.label(labels::REPO_NAME)?;
                    gitrepos.contains(repo).then(|| {
                        (
                            key.namespace.clone(),
                            key.name.clone(),
                            facts.deployment_id.clone(),
                            repo.to_string(),
                            facts
                                .label(labels::BUNDLE_NAME)
                                .unwrap_or(&key.name)
                                .to_string(),
                        )
                    })
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
    let mut held_back: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for (namespace, name, _, repo, _) in &deployments {
        held_back.entry(repo).or_insert((namespace, name));
    }
    let held_back: BTreeSet<(String, String)> = held_back
        .values()
        .map(|(namespace, name)| (namespace.to_string(), name.to_string()))
        .collect();
    for round in 1..=spec.rounds {
        // Alternate so that the last round leaves every BundleDeployment Ready but one per
        // GitRepo: a final state no earlier round had, so a status stuck at an earlier
        // round's values cannot pass for the last one.
        let ready = (spec.rounds - round).is_multiple_of(2);
        let last = round == spec.rounds;
        let task = Task::start(
            format!(
                "{label}: round {round}/{} ({})",
                spec.rounds,
                if ready { "Ready" } else { "NotReady" }
            ),
            Some(deployments.len() as u64),
        );
        let client = ctx.kube.clone();
        let held_back = &held_back;
        create_or_patch_all(
            deployments.clone(),
            CONCURRENCY,
            &task,
            |(namespace, name, id, _, _)| {
                let api: Api<BundleDeployment> = Api::namespaced(client.clone(), &namespace);
                let ready =
                    ready && !(last && held_back.contains(&(namespace.clone(), name.clone())));
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
    let expected = FinalStatus::after_last_round(&ctx.world, &deployments, &held_back);
    let namespace = ctx.namespace().to_string();
    let deadline = started + spec.timeout.0;
    let task = Task::start(
        format!("{label}: final status reported"),
        Some(expected.gitrepos.len() as u64),
    );
    let incorrect_of = |state: &crate::measure::recorder::State| -> Vec<String> {
        let gitrepos: BTreeMap<String, String> = expected
            .gitrepos
            .keys()
            .filter_map(|name| {
                let facts = state.get(Kind::GitRepo, &namespace, name)?;
                Some((name.clone(), facts.ready_bundle_deployments.clone()))
            })
            .collect();
        let bundles: BTreeMap<String, (i32, i32)> = state
            .of_kind(Kind::Bundle)
            .filter(|(key, _)| {
                key.namespace == namespace && expected.bundles.contains_key(&key.name)
            })
            .map(|(key, facts)| {
                (
                    key.name.clone(),
                    (facts.summary_ready, facts.summary_desired_ready),
                )
            })
            .collect();
        expected.problems(&gitrepos, &bundles)
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let settled = ctx
        .recorder
        .wait_until(remaining, &ctx.cancel, |state| {
            let wrong = incorrect_of(state);
            task.set((expected.gitrepos.len().saturating_sub(wrong.len())) as u64);
            wrong.is_empty().then_some(())
        })
        .await;
    task.finish();
    if let Err(crate::measure::recorder::WaitError::Cancelled) = settled {
        return Err(StepError::Cancelled);
    }
    let super::quiet::QuietEnd {
        after,
        writes: last_total,
        went_quiet: quiet,
    } = super::quiet::wait_for_quiet(
        ctx,
        &before,
        super::quiet::Counted {
            resources: &counted.resources,
            subresource: Some("status"),
        },
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
        quality: Vec::new(),
    };
    let changes = u64::from(spec.rounds) * deployments.len() as u64;
    if let Some(name) = &spec.measure_per_change {
        let mut measurement = Measurement::value(
            Unit::WritesPerChange,
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
            Unit::Count,
            "GitRepos and Bundles whose final status is not exactly the last round's (every BundleDeployment ready but one per GitRepo)",
            incorrect.len() as f64,
        );
        measurement.notes = incorrect.into_iter().take(20).collect();
        output.measurements.push((name.clone(), measurement));
    }
    Ok(output)
}

/// The exact status the last round of a burst must leave: per GitRepo, `ready/total`
/// BundleDeployments ready (one held back), and per Bundle its ready and desired counts.
/// Exact counts, so that a summary of 0/0 or an earlier round's values never pass.
#[derive(Debug, Default, PartialEq)]
struct FinalStatus {
    /// GitRepo → (ready, total).
    gitrepos: BTreeMap<String, (usize, usize)>,
    /// Bundle → (ready, desired).
    bundles: BTreeMap<String, (i32, i32)>,
}

impl FinalStatus {
    fn after_last_round(
        world: &super::World,
        deployments: &[(String, String, String, String, String)],
        held_back: &BTreeSet<(String, String)>,
    ) -> FinalStatus {
        let mut expected = FinalStatus::default();
        for gitrepo in &world.gitrepos {
            // The harness's own targeting oracle says how many there must be.
            let total = world.expected_bundledeployments(gitrepo);
            let held = deployments
                .iter()
                .filter(|d| d.3 == gitrepo.name && held_back.contains(&(d.0.clone(), d.1.clone())))
                .count();
            expected
                .gitrepos
                .insert(gitrepo.name.clone(), (total.saturating_sub(held), total));
        }
        for (namespace, name, _, _, bundle) in deployments {
            let entry = expected.bundles.entry(bundle.clone()).or_insert((0, 0));
            entry.1 += 1;
            if !held_back.contains(&(namespace.clone(), name.clone())) {
                entry.0 += 1;
            }
        }
        expected
    }

    /// What differs from the expectation, one line each (empty: exactly as expected).
    fn problems(
        &self,
        gitrepos: &BTreeMap<String, String>,
        bundles: &BTreeMap<String, (i32, i32)>,
    ) -> Vec<String> {
        let mut wrong = Vec::new();
        for (name, (ready, total)) in &self.gitrepos {
            let want = format!("{ready}/{total}");
            match gitrepos.get(name) {
                Some(shown) if *shown == want => {}
                Some(shown) => wrong.push(format!(
                    "GitRepo {name}: readyBundleDeployments {shown:?}, expected {want:?}"
                )),
                None => wrong.push(format!("GitRepo {name}: gone")),
            }
        }
        for (name, want) in &self.bundles {
            match bundles.get(name) {
                Some(shown) if shown == want => {}
                Some((ready, desired)) => wrong.push(format!(
                    "Bundle {name}: summary ready {ready} of {desired}, expected {} of {}",
                    want.0, want.1
                )),
                None => wrong.push(format!("Bundle {name}: gone")),
            }
        }
        wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation() -> FinalStatus {
        FinalStatus {
            gitrepos: BTreeMap::from([("repo-a".to_string(), (3, 4))]),
            bundles: BTreeMap::from([
                ("repo-a-p0".to_string(), (1, 2)),
                ("repo-a-p1".to_string(), (2, 2)),
            ]),
        }
    }

    #[test]
    fn the_exact_last_round_passes() {
        let gitrepos = BTreeMap::from([("repo-a".to_string(), "3/4".to_string())]);
        let bundles = BTreeMap::from([
            ("repo-a-p0".to_string(), (1, 2)),
            ("repo-a-p1".to_string(), (2, 2)),
        ]);
        assert_eq!(
            expectation().problems(&gitrepos, &bundles),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_earlier_rounds_all_ready_state_is_caught() {
        let gitrepos = BTreeMap::from([("repo-a".to_string(), "4/4".to_string())]);
        let bundles = BTreeMap::from([
            ("repo-a-p0".to_string(), (2, 2)),
            ("repo-a-p1".to_string(), (2, 2)),
        ]);
        let problems = expectation().problems(&gitrepos, &bundles);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn an_empty_summary_is_not_a_ready_one() {
        let gitrepos = BTreeMap::from([("repo-a".to_string(), "0/0".to_string())]);
        let bundles = BTreeMap::from([
            ("repo-a-p0".to_string(), (0, 0)),
            ("repo-a-p1".to_string(), (0, 0)),
        ]);
        assert_eq!(expectation().problems(&gitrepos, &bundles).len(), 3);
        assert_eq!(
            expectation()
                .problems(&BTreeMap::new(), &BTreeMap::new())
                .len(),
            3,
            "objects that are gone are wrong"
        );
    }
}
