//! Infrastructure steps: cut a downstream cluster off the network and bring it back, stop
//! and restart the controller (all through the environment, since only the provider knows
//! how), and wait for real agents to have applied every BundleDeployment.
//!
//! Recovery is timed from the action (the reconnect or restart call), not from the moment
//! the provider reports it done: the provider waits for `/readyz` first, and that wait is
//! part of what a user waits for. Convergence is read from the watch recorder (the agents'
//! status is kept with each BundleDeployment), stamped when each event arrived, rather
//! than from periodic lists that would round every time up to the polling period.

use std::collections::BTreeMap;
use std::time::Instant;

use fleet_api::labels;

use super::collect::Collected;
use super::world::Action;
use super::{Context, StepError, StepOutput, World};
use crate::measure::recorder::{Change, Facts, Kind, Observed};
use crate::progress::Task;
use crate::provider::Fault;
use crate::suite::{ClusterFault, StopController, WaitDeployed};

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
        .map_err(|error| StepError::Environment(Box::new(error)))?;
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

/// Starts the clock of the next `wait_deployed` now, before the action it times.
fn mark(ctx: &mut Context<'_>, what: String) {
    ctx.world.action = Some(Action {
        what,
        at: Instant::now(),
        cursor: ctx.recorder.cursor(),
    });
}

/// `heal_cluster`.
pub async fn heal_cluster(
    ctx: &mut Context<'_>,
    spec: &ClusterFault,
) -> Result<StepOutput, StepError> {
    let name = cluster_name(ctx, spec)?;
    mark(ctx, format!("the reconnect of {name}"));
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
pub async fn start_controller(ctx: &mut Context<'_>) -> Result<StepOutput, StepError> {
    mark(ctx, "the controller's restart".to_string());
    inject(ctx, Fault::StartController).await
}

/// Whether an agent has applied a BundleDeployment's current deployment and reports it
/// ready, and (when `head` is given) that deployment is of the repository's latest commit
/// (Fleet's `fleet.cattle.io/commit` label), so a controller that has not caught up yet
/// does not pass for one that has.
pub fn is_deployed(bd: &Facts, head: Option<&str>) -> bool {
    let at_head = head.is_none_or(|head| bd.label(labels::COMMIT) == Some(head));
    at_head
        && !bd.deleting
        && !bd.deployment_id.is_empty()
        && bd.applied_deployment_id == bd.deployment_id
        && bd.ready
}

/// The latest commit the suite made to the repository of the GitRepo a BundleDeployment
/// comes from (none before the first commit).
fn head_of<'w>(world: &'w World, bd: &Facts) -> Option<&'w str> {
    let gitrepo = bd.label(labels::REPO_NAME)?;
    let info = world.gitrepos.iter().find(|g| g.name == gitrepo)?;
    let head = world.repos.get(info.repo)?.head.as_str();
    (!head.is_empty()).then_some(head)
}

/// Follows the watch log: for every BundleDeployment, since when it has been deployed
/// (`None`: it is not). A BundleDeployment that was deployed, fell back and came back
/// counts from its last arrival, so convergence is the time to the state that held.
#[derive(Debug, Default)]
struct Convergence {
    position: usize,
    deployed_since: BTreeMap<String, Option<Instant>>,
}

impl Convergence {
    fn advance(&mut self, log: &[Observed], deployed: impl Fn(&Facts) -> bool) {
        for observed in log.get(self.position..).unwrap_or_default() {
            if observed.key.kind != Kind::BundleDeployment {
                continue;
            }
            let key = format!("{}/{}", observed.key.namespace, observed.key.name);
            if observed.change == Change::Deleted {
                self.deployed_since.remove(&key);
                continue;
            }
            let since = self.deployed_since.entry(key).or_insert(None);
            if !deployed(&observed.facts) {
                *since = None;
            } else if since.is_none() {
                *since = Some(observed.at);
            }
        }
        self.position = log.len();
    }

    /// `(deployed, seconds after origin, in arrival order; not deployed)`; one deployed
    /// before `origin` counts as 0.
    fn split(&self, origin: Instant) -> (Vec<(String, f64)>, Vec<String>) {
        let mut arrivals = Vec::new();
        let mut pending = Vec::new();
        for (key, since) in &self.deployed_since {
            match since {
                Some(at) => arrivals.push((
                    key.clone(),
                    at.saturating_duration_since(origin).as_secs_f64(),
                )),
                None => pending.push(key.clone()),
            }
        }
        arrivals.sort_by(|a, b| a.1.total_cmp(&b.1));
        (arrivals, pending)
    }
}

/// `wait_deployed`: times every BundleDeployment to applied-and-ready from the last heal or
/// restart (or from the step's start when none preceded it).
pub async fn wait_deployed(
    ctx: &mut Context<'_>,
    spec: &WaitDeployed,
    label: &str,
) -> Result<StepOutput, StepError> {
    let expected: usize = ctx
        .world
        .gitrepos
        .iter()
        .map(|g| ctx.world.expected_bundledeployments(g))
        .sum();
    let action = ctx.world.action.take().unwrap_or_else(|| Action {
        what: "the step's start".to_string(),
        at: Instant::now(),
        cursor: ctx.recorder.cursor(),
    });
    let task = Task::start(
        format!("{label}: BundleDeployments applied"),
        Some(expected as u64),
    );
    let world = &ctx.world;
    let deployed = |facts: &Facts| is_deployed(facts, head_of(world, facts));
    // The whole log, so that what was deployed before the action is known; the bound
    // counts from the action, like the latencies.
    let mut convergence = Convergence::default();
    let remaining = spec.timeout.0.saturating_sub(action.at.elapsed());
    let outcome = ctx
        .recorder
        .wait_until(remaining, &ctx.cancel, |state| {
            convergence.advance(&state.log, deployed);
            let (arrivals, pending) = convergence.split(action.at);
            task.set(arrivals.len() as u64);
            (pending.is_empty() && arrivals.len() >= expected).then_some(())
        })
        .await;
    task.finish();
    let timed_out = match outcome {
        Ok(()) => false,
        Err(crate::measure::recorder::WaitError::Timeout(_)) => true,
        Err(crate::measure::recorder::WaitError::Cancelled) => return Err(StepError::Cancelled),
    };
    let (arrivals, pending) = convergence.split(action.at);
    let collected = Collected {
        arrivals,
        expected: expected.max(convergence.deployed_since.len()),
        timed_out,
    };
    let message = format!(
        "{} of {} BundleDeployments applied and ready{} (clock from {})",
        collected.arrivals.len(),
        collected.expected,
        if timed_out {
            format!(" after {} (timed out)", spec.timeout)
        } else {
            format!(" within {:.1}s", action.at.elapsed().as_secs_f64())
        },
        action.what
    );
    let mut output = StepOutput {
        message,
        ..StepOutput::default()
    };
    if let Some(name) = &spec.measure {
        output.measurements.push((
            name.clone(),
            collected.measurement(
                &format!(
                    "{} to each BundleDeployment applied at its current deployment ID and ready (watch events)",
                    capitalise(&action.what)
                ),
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

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measure::recorder::{ObjectKey, State};

    fn bd(wanted: &str, applied: &str, ready: bool) -> Facts {
        Facts {
            uid: "u".into(),
            deployment_id: wanted.into(),
            applied_deployment_id: applied.into(),
            ready,
            labels: BTreeMap::from([(labels::COMMIT.to_string(), "c1".to_string())]),
            ..Facts::default()
        }
    }

    #[test]
    fn deployed_means_the_current_id_applied_and_ready() {
        assert!(is_deployed(&bd("s-1:abc", "s-1:abc", true), None));
        assert!(!is_deployed(&bd("s-2:abc", "s-1:abc", true), None), "stale");
        assert!(
            !is_deployed(&bd("s-1:abc", "s-1:abc", false), None),
            "not ready"
        );
        assert!(
            !is_deployed(&bd("", "", true), None),
            "nothing to deploy yet"
        );
        let mut leaving = bd("s-1:abc", "s-1:abc", true);
        leaving.deleting = true;
        assert!(!is_deployed(&leaving, None), "on its way out");
    }

    #[test]
    fn a_deployment_of_an_older_commit_is_not_deployed_yet() {
        let applied = bd("s-1:abc", "s-1:abc", true);
        assert!(is_deployed(&applied, Some("c1")));
        assert!(
            !is_deployed(&applied, Some("c2")),
            "the controller has not caught up with commit c2"
        );
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            kind: Kind::BundleDeployment,
            namespace: "cluster-a".into(),
            name: name.into(),
        }
    }

    fn version(mut facts: Facts, rv: &str) -> Facts {
        facts.resource_version = rv.into();
        facts
    }

    #[test]
    fn convergence_is_timed_from_the_action_not_from_when_it_returned() {
        // A restart that takes 8s to answer /readyz, then the agent applies at 9s: the
        // user waited 9s, not the 1s left after the provider returned.
        let action = Instant::now();
        let mut state = State::default();
        state.record(
            key("a"),
            version(bd("s-2", "s-1", true), "1"),
            false,
            action,
        );
        state.record(
            key("b"),
            version(bd("s-2", "s-2", true), "1"),
            false,
            action,
        );
        let returned = action + Duration::from_secs(8);
        state.record(
            key("a"),
            version(bd("s-2", "s-2", true), "2"),
            false,
            action + Duration::from_secs(9),
        );
        let mut convergence = Convergence::default();
        convergence.advance(&state.log, |f| is_deployed(f, None));
        let (arrivals, pending) = convergence.split(action);
        assert!(pending.is_empty());
        assert_eq!(arrivals[1], ("cluster-a/a".to_string(), 9.0));
        assert_eq!(arrivals[0].1, 0.0, "already deployed at the action");
        // The old clock, started when the provider returned, would have said 1s.
        assert_eq!(convergence.split(returned).0[1].1, 1.0);
    }

    #[test]
    fn a_deployment_that_falls_back_counts_from_its_last_arrival() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut state = State::default();
        state.record(key("a"), version(bd("s-1", "s-1", true), "1"), false, at(1));
        state.record(
            key("a"),
            version(bd("s-1", "s-1", false), "2"),
            false,
            at(2),
        );
        let mut convergence = Convergence::default();
        convergence.advance(&state.log, |f| is_deployed(f, None));
        assert_eq!(convergence.split(t0).1, ["cluster-a/a"], "not ready now");
        state.record(key("a"), version(bd("s-1", "s-1", true), "3"), false, at(5));
        state.record(
            key("gone"),
            version(bd("s-1", "s-1", true), "1"),
            false,
            at(5),
        );
        state.record(key("gone"), Facts::default(), true, at(6));
        convergence.advance(&state.log, |f| is_deployed(f, None));
        let (arrivals, pending) = convergence.split(t0);
        assert_eq!(arrivals, [("cluster-a/a".to_string(), 5.0)]);
        assert!(pending.is_empty(), "a deleted one is neither");
    }
}
