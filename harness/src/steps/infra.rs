//! Infrastructure steps: cut a downstream cluster off the network and bring it back, stop
//! and restart the controller (all through the environment, since only the provider knows
//! how), and wait for real agents to have applied every BundleDeployment.
//!
//! `wait_deployed` reads BundleDeployments from the API rather than the watch log: what it
//! judges is the agents' status (`status.appliedDeploymentID` equal to
//! `spec.deploymentID`, and `status.ready`), which the recorder does not keep, and a
//! convergence measured in seconds after a partition does not need watch-event precision.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_controller::api::{BundleDeployment, labels};
use kube::Api;

use super::collect::Collected;
use super::{Context, StepError, StepOutput, World};
use crate::progress::Task;
use crate::provider::Fault;
use crate::suite::{ClusterFault, StopController, WaitDeployed};

/// How often `wait_deployed` looks.
const POLL: Duration = Duration::from_millis(250);

fn cluster_name(ctx: &Context<'_>, spec: &ClusterFault) -> Result<String, StepError> {
    ctx.world
        .clusters
        .get(spec.cluster as usize)
        .map(|c| c.name.clone())
        .ok_or_else(|| {
            StepError::Unsupported(format!(
                "cluster index {} but only {} clusters exist",
                spec.cluster,
                ctx.world.clusters.len()
            ))
        })
}

async fn inject(ctx: &Context<'_>, fault: Fault) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    ctx.environment
        .fault(&fault)
        .await
        .map_err(|e| StepError::Unsupported(e.to_string()))?;
    Ok(StepOutput {
        message: format!("{fault} ({:.1}s)", started.elapsed().as_secs_f64()),
        ..StepOutput::default()
    })
}

/// `partition_cluster`.
pub async fn partition_cluster(
    ctx: &Context<'_>,
    spec: &ClusterFault,
) -> Result<StepOutput, StepError> {
    let name = cluster_name(ctx, spec)?;
    inject(ctx, Fault::PartitionCluster(name)).await
}

/// `heal_cluster`.
pub async fn heal_cluster(ctx: &Context<'_>, spec: &ClusterFault) -> Result<StepOutput, StepError> {
    let name = cluster_name(ctx, spec)?;
    inject(ctx, Fault::HealCluster(name)).await
}

/// `stop_controller`.
pub async fn stop_controller(
    ctx: &Context<'_>,
    spec: &StopController,
) -> Result<StepOutput, StepError> {
    inject(
        ctx,
        Fault::StopController {
            grace: spec.grace.0,
        },
    )
    .await
}

/// `start_controller`.
pub async fn start_controller(ctx: &Context<'_>) -> Result<StepOutput, StepError> {
    inject(ctx, Fault::StartController).await
}

/// Whether an agent has applied a BundleDeployment's current deployment and reports it
/// ready, and (when `head` is given) that deployment is of the repository's latest commit
/// (Fleet's `fleet.cattle.io/commit` label), so a controller that has not caught up yet
/// does not pass for one that has.
pub fn is_deployed(bd: &BundleDeployment, head: Option<&str>) -> bool {
    let wanted = bd.spec.deployment_id.as_deref().unwrap_or_default();
    let at_head = head.is_none_or(|head| {
        bd.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::COMMIT))
            .is_some_and(|commit| commit == head)
    });
    at_head
        && bd.status.as_ref().is_some_and(|status| {
            !wanted.is_empty()
                && status.applied_deployment_id.as_deref() == Some(wanted)
                && status.ready
        })
}

/// The latest commit the suite made to the repository of the GitRepo a BundleDeployment
/// comes from (none before the first commit).
fn head_of<'w>(world: &'w World, bd: &BundleDeployment) -> Option<&'w str> {
    let gitrepo = bd.metadata.labels.as_ref()?.get(labels::REPO_NAME)?;
    let info = world.gitrepos.iter().find(|g| &g.name == gitrepo)?;
    let head = world.repos.get(info.repo)?.head.as_str();
    (!head.is_empty()).then_some(head)
}

/// `wait_deployed`.
pub async fn wait_deployed(
    ctx: &Context<'_>,
    spec: &WaitDeployed,
    label: &str,
) -> Result<StepOutput, StepError> {
    let expected: usize = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| ctx.world.expected_bundledeployments(g))
        .sum();
    let api: Api<BundleDeployment> = Api::all(ctx.kube.clone());
    let task = Task::start(
        format!("{label}: BundleDeployments applied"),
        Some(expected as u64),
    );
    let started = Instant::now();
    let deadline = started + spec.timeout.0;
    let mut arrivals: BTreeMap<String, f64> = BTreeMap::new();
    let mut pending: Vec<String> = Vec::new();
    let timed_out = loop {
        match api.list(&Default::default()).await {
            Ok(list) => {
                pending.clear();
                for bd in &list.items {
                    let key = format!(
                        "{}/{}",
                        bd.metadata.namespace.as_deref().unwrap_or_default(),
                        bd.metadata.name.as_deref().unwrap_or_default()
                    );
                    if is_deployed(bd, head_of(&ctx.world, bd)) {
                        arrivals
                            .entry(key)
                            .or_insert_with(|| started.elapsed().as_secs_f64());
                    } else {
                        pending.push(key);
                    }
                }
                task.set(arrivals.len() as u64);
                if pending.is_empty() && arrivals.len() >= expected {
                    break false;
                }
            }
            // The management cluster may be briefly unreachable right after a fault.
            Err(error) => tracing::debug!(%error, "listing BundleDeployments"),
        }
        if Instant::now() >= deadline {
            break true;
        }
        ctx.sleep(POLL).await?;
    };
    task.finish();
    let mut ordered: Vec<(String, f64)> = arrivals.into_iter().collect();
    ordered.sort_by(|a, b| a.1.total_cmp(&b.1));
    let collected = Collected {
        arrivals: ordered,
        expected: expected.max(pending.len()),
        timed_out,
    };
    let message = format!(
        "{} of {} BundleDeployments applied and ready{}",
        collected.arrivals.len(),
        collected.expected,
        if timed_out {
            format!(" after {} (timed out)", spec.timeout)
        } else {
            format!(" within {:.1}s", started.elapsed().as_secs_f64())
        }
    );
    let mut output = StepOutput {
        message,
        ..StepOutput::default()
    };
    if let Some(name) = &spec.measure {
        output.measurements.push((
            name.clone(),
            collected.measurement(
                "step start to each BundleDeployment applied at its current deployment ID and ready",
                pending,
            ),
        ));
    } else if timed_out {
        return Err(StepError::Timeout {
            what: "BundleDeployments applied".to_string(),
            after: spec.timeout.0,
            progress: format!("{} of {}", collected.arrivals.len(), collected.expected),
        });
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use fleet_controller::api::{BundleDeploymentSpec, BundleDeploymentStatus};

    use super::*;

    fn bd(wanted: Option<&str>, applied: Option<&str>, ready: bool) -> BundleDeployment {
        let mut bd = BundleDeployment::new(
            "bd",
            BundleDeploymentSpec {
                deployment_id: wanted.map(str::to_string),
                ..Default::default()
            },
        );
        bd.status = Some(BundleDeploymentStatus {
            applied_deployment_id: applied.map(str::to_string),
            ready,
            ..Default::default()
        });
        bd.metadata.labels = Some(BTreeMap::from([(
            labels::COMMIT.to_string(),
            "c1".to_string(),
        )]));
        bd
    }

    #[test]
    fn deployed_means_the_current_id_applied_and_ready() {
        assert!(is_deployed(
            &bd(Some("s-1:abc"), Some("s-1:abc"), true),
            None
        ));
        assert!(
            !is_deployed(&bd(Some("s-2:abc"), Some("s-1:abc"), true), None),
            "stale"
        );
        assert!(
            !is_deployed(&bd(Some("s-1:abc"), Some("s-1:abc"), false), None),
            "not ready"
        );
        assert!(
            !is_deployed(&bd(None, None, true), None),
            "nothing to deploy yet"
        );
        let mut none = bd(Some("s-1:abc"), None, false);
        none.status = None;
        assert!(!is_deployed(&none, None), "no status");
    }

    #[test]
    fn a_deployment_of_an_older_commit_is_not_deployed_yet() {
        let applied = bd(Some("s-1:abc"), Some("s-1:abc"), true);
        assert!(is_deployed(&applied, Some("c1")));
        assert!(
            !is_deployed(&applied, Some("c2")),
            "the controller has not caught up with commit c2"
        );
    }
}
