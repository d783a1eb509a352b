//! Where a commit's time goes: the stages between a push and every cluster running it.
//!
//! One end-to-end latency ("commit to Bundle") says that a controller is slow, not where.
//! The harness owns both ends of the pipeline, the git side (its git proxy sees every ref
//! listing, its git server records webhook deliveries) and the API side (the watch
//! recorder), so it can stamp every stage on its own clock without asking the controller
//! anything: the same observations work for the bundled controller and for an upstream
//! Fleet the harness did not start.
//!
//! Stages form a tree, not a line, because a controller may write a GitRepo's
//! `status.commit` before or after its Bundles (upstream Fleet records the commit first, the
//! bundled controller after the Bundles are written): both hang off the moment the
//! controller could first have known of the commit. Each stage is measured per object from
//! its parent's mark for that object (a BundleDeployment from its own Bundle, a Bundle from
//! its own GitRepo's notification), so a stage's percentiles are the time that stage alone
//! took.
//!
//! Stage measurements are named `<measurement>/<stage>` after the commit step's
//! `measure` (or `measure_gitrepo`), so suites can put SLOs on a single stage.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use gitserver::{GitService, RequestLogEntry};

use crate::measure::recorder::{Kind, ObjectKey, Observed};
use crate::measure::stats::Summary;
use crate::results::{Measurement, SuiteResult};
use crate::slo::{Stat, Unit};
use crate::suite::MeasurementKind;

/// One stage of a commit's way to the clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// The commit request until the git server accepted it.
    Push,
    /// Accepted until the controller was told (webhook delivered) or first listed the refs
    /// that show it, whichever came first.
    Notify,
    /// Notified until the GitRepo's `status.commit` is the commit.
    GitRepo,
    /// Notified until each of the GitRepo's Bundles carries the commit.
    Bundle,
    /// The Bundle at the commit until each of its BundleDeployments has a new
    /// `spec.deploymentID`.
    Deployment,
    /// The new deploymentID until the agent reports it applied (`status.appliedDeploymentID`).
    Applied,
    /// Applied until the BundleDeployment is ready at that deploymentID.
    Ready,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Push,
        Stage::Notify,
        Stage::GitRepo,
        Stage::Bundle,
        Stage::Deployment,
        Stage::Applied,
        Stage::Ready,
    ];

    /// The name in measurement names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Push => "push",
            Stage::Notify => "notify",
            Stage::GitRepo => "gitrepo",
            Stage::Bundle => "bundle",
            Stage::Deployment => "deployment",
            Stage::Applied => "applied",
            Stage::Ready => "ready",
        }
    }

    /// The stage named `name`.
    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The stage this one is timed from (none for the push, timed from the request).
    pub fn parent(self) -> Option<Stage> {
        match self {
            Stage::Push => None,
            Stage::Notify => Some(Stage::Push),
            Stage::GitRepo | Stage::Bundle => Some(Stage::Notify),
            Stage::Deployment => Some(Stage::Bundle),
            Stage::Applied => Some(Stage::Deployment),
            Stage::Ready => Some(Stage::Applied),
        }
    }

    /// What the stage's latency is, in words.
    pub fn description(self) -> &'static str {
        match self {
            Stage::Push => "commit request to the git server accepting it",
            Stage::Notify => {
                "accepted commit to the controller being told (webhook delivered) or first listing the refs that show it"
            }
            Stage::GitRepo => "controller notified to the GitRepo's status.commit at the commit",
            Stage::Bundle => "controller notified to each Bundle labelled with the commit",
            Stage::Deployment => {
                "Bundle at the commit to each of its BundleDeployments at a new spec.deploymentID"
            }
            Stage::Applied => "new deploymentID to the agent reporting it applied",
            Stage::Ready => "applied to ready at the new deploymentID",
        }
    }
}

/// The measurement name of `stage` of the commit measured as `base`.
pub fn measurement_name(base: &str, stage: Stage) -> String {
    format!("{base}/{}", stage.name())
}

/// Splits a stage measurement's name into its base and stage.
pub fn split_name(name: &str) -> Option<(&str, Stage)> {
    let (base, stage) = name.rsplit_once('/')?;
    Some((base, Stage::from_name(stage)?))
}

/// One pushed commit.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The commit.
    pub sha: String,
    /// When the commit request was sent.
    pub sent: Instant,
    /// When the git server's answer arrived.
    pub accepted: Instant,
}

/// A BundleDeployment expected to move to the commit.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Its Bundle.
    pub bundle: String,
    /// Its `spec.deploymentID` when the commit was pushed.
    pub old_id: String,
}

/// What a commit step expects to move: GitRepos with their pushes, Bundles by GitRepo,
/// BundleDeployments by Bundle (the ones that existed at the push).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// By GitRepo name.
    pub pushes: BTreeMap<String, Pushed>,
    /// Bundle name → GitRepo name.
    pub bundles: BTreeMap<String, String>,
    /// BundleDeployments.
    pub deployments: BTreeMap<ObjectKey, Expected>,
}

/// How the controller came to know of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A push webhook was delivered to it.
    Webhook,
    /// It listed the refs (a poll, or the fetch a webhook started).
    RefListing,
}

/// When each object reached each stage.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    notified: BTreeMap<String, (Instant, Notice)>,
    gitrepo: BTreeMap<String, Instant>,
    bundle: BTreeMap<String, Instant>,
    spec: BTreeMap<ObjectKey, (Instant, String)>,
    applied: BTreeMap<ObjectKey, Instant>,
    ready: BTreeMap<ObjectKey, Instant>,
}

/// Whether a git request answered with the refs: a protocol v0/v1 advertisement, or a v2
/// `ls-refs` (a v2 advertisement only lists capabilities).
pub fn shows_refs(entry: &RequestLogEntry) -> bool {
    if entry.status >= 400 {
        return false;
    }
    match entry.service {
        GitService::UploadPackAdvertisement => !entry
            .protocol
            .as_deref()
            .is_some_and(|p| p.contains("version=2")),
        GitService::UploadPack => entry.command.as_deref() == Some("ls-refs"),
        GitService::ReceivePackAdvertisement | GitService::ReceivePack => false,
    }
}

/// Maps wall-clock stamps (the git proxy's and git server's logs) onto the harness's
/// monotonic clock, from one reading of both.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: Instant,
    unix_nanos: i128,
}

impl Clock {
    /// Reads both clocks now.
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            unix_nanos: jiff::Timestamp::now().as_nanosecond(),
        }
    }

    /// The instant of a wall-clock time.
    pub fn instant(&self, unix_nanos: i128) -> Instant {
        let delta = unix_nanos - self.unix_nanos;
        let magnitude =
            Duration::from_nanos(u64::try_from(delta.unsigned_abs()).unwrap_or(u64::MAX));
        if delta >= 0 {
            self.instant + magnitude
        } else {
            self.instant.checked_sub(magnitude).unwrap_or(self.instant)
        }
    }

    /// The wall-clock time of an instant.
    pub fn wall(&self, at: Instant) -> jiff::Timestamp {
        let nanos = if at >= self.instant {
            self.unix_nanos + at.duration_since(self.instant).as_nanos() as i128
        } else {
            self.unix_nanos - self.instant.duration_since(at).as_nanos() as i128
        };
        jiff::Timestamp::from_nanosecond(nanos).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

impl Marks {
    /// Records that the controller learnt of `gitrepo`'s commit at `at`; the earliest
    /// notice counts.
    pub fn notice(&mut self, gitrepo: &str, at: Instant, how: Notice) {
        let entry = self
            .notified
            .entry(gitrepo.to_string())
            .or_insert((at, how));
        if at < entry.0 {
            *entry = (at, how);
        }
    }

    /// The first ref listing in `entries` (the git proxy's log of `gitrepo`'s repository)
    /// that was requested after the commit was accepted: the git server served it with
    /// the commit in it, so from then on the controller could know.
    pub fn notice_from_git_log(
        &mut self,
        gitrepo: &str,
        pushed: &Pushed,
        entries: &[RequestLogEntry],
        clock: &Clock,
    ) {
        let listed = entries
            .iter()
            .filter(|entry| shows_refs(entry))
            .map(|entry| {
                let arrived = clock.instant(i128::from(entry.unix_nanos));
                (
                    arrived,
                    arrived + Duration::from_secs_f64(entry.duration_ms.max(0.0) / 1e3),
                )
            })
            .filter(|(arrived, _)| *arrived >= pushed.accepted)
            .map(|(_, answered)| answered)
            .min();
        if let Some(at) = listed {
            self.notice(gitrepo, at, Notice::RefListing);
        }
    }

    /// Applies one watch observation.
    pub fn observe(&mut self, plan: &Plan, observed: &Observed) {
        let facts = &observed.facts;
        let at = observed.at;
        match observed.key.kind {
            Kind::GitRepo => {
                if let Some(pushed) = plan.pushes.get(&observed.key.name)
                    && at >= pushed.sent
                    && facts.commit == pushed.sha
                {
                    self.gitrepo.entry(observed.key.name.clone()).or_insert(at);
                }
            }
            Kind::Bundle => {
                if let Some(gitrepo) = plan.bundles.get(&observed.key.name)
                    && let Some(pushed) = plan.pushes.get(gitrepo)
                    && at >= pushed.sent
                    && facts.commit == pushed.sha
                {
                    self.bundle.entry(observed.key.name.clone()).or_insert(at);
                }
            }
            Kind::BundleDeployment => {
                let Some(expected) = plan.deployments.get(&observed.key) else {
                    return;
                };
                let Some(pushed) = plan
                    .bundles
                    .get(&expected.bundle)
                    .and_then(|g| plan.pushes.get(g))
                else {
                    return;
                };
                if at < pushed.sent || facts.deleting {
                    return;
                }
                // A commit label, when the controller copies it (Fleet does), must name
                // this commit; without one, any new deploymentID is the commit's.
                let commit_agrees = facts
                    .label(fleet_api::labels::COMMIT)
                    .is_none_or(|c| c == pushed.sha);
                if !self.spec.contains_key(&observed.key)
                    && !facts.deployment_id.is_empty()
                    && facts.deployment_id != expected.old_id
                    && commit_agrees
                {
                    self.spec
                        .insert(observed.key.clone(), (at, facts.deployment_id.clone()));
                }
                let Some((_, new_id)) = self.spec.get(&observed.key) else {
                    return;
                };
                if facts.applied_deployment_id == *new_id {
                    self.applied.entry(observed.key.clone()).or_insert(at);
                    if facts.ready {
                        self.ready.entry(observed.key.clone()).or_insert(at);
                    }
                }
            }
            Kind::Cluster => {}
        }
    }

    /// How many marks are in: a number that grows while the pipeline moves.
    pub fn progress(&self) -> usize {
        self.notified.len()
            + self.gitrepo.len()
            + self.bundle.len()
            + self.spec.len()
            + self.applied.len()
            + self.ready.len()
    }

    /// Whether every expected BundleDeployment is ready at its new deploymentID.
    pub fn all_ready(&self, plan: &Plan) -> bool {
        plan.deployments.keys().all(|k| self.ready.contains_key(k))
    }

    /// The stage measurements, named after `base`.
    pub fn measurements(&self, plan: &Plan, base: &str) -> Vec<(String, Measurement)> {
        // Per object: (its mark, the mark it is timed from), for every stage.
        let mut per_stage: BTreeMap<Stage, (usize, Vec<f64>, Vec<f64>)> = BTreeMap::new();
        let mut add = |stage: Stage, expected: usize, mark: Option<(Instant, Instant, Instant)>| {
            let entry = per_stage.entry(stage).or_default();
            entry.0 += expected;
            if let Some((at, from, sent)) = mark {
                entry
                    .1
                    .push(at.saturating_duration_since(from).as_secs_f64());
                entry
                    .2
                    .push(at.saturating_duration_since(sent).as_secs_f64());
            }
        };
        let notified = |gitrepo: &str, pushed: &Pushed| {
            self.notified
                .get(gitrepo)
                .map_or(pushed.accepted, |(at, _)| *at)
        };
        for (gitrepo, pushed) in &plan.pushes {
            add(
                Stage::Push,
                1,
                Some((pushed.accepted, pushed.sent, pushed.sent)),
            );
            add(
                Stage::Notify,
                1,
                self.notified
                    .get(gitrepo)
                    .map(|(at, _)| (*at, pushed.accepted, pushed.sent)),
            );
            add(
                Stage::GitRepo,
                1,
                self.gitrepo
                    .get(gitrepo)
                    .map(|at| (*at, notified(gitrepo, pushed), pushed.sent)),
            );
        }
        for (bundle, gitrepo) in &plan.bundles {
            let Some(pushed) = plan.pushes.get(gitrepo) else {
                continue;
            };
            add(
                Stage::Bundle,
                1,
                self.bundle
                    .get(bundle)
                    .map(|at| (*at, notified(gitrepo, pushed), pushed.sent)),
            );
        }
        for (key, expected) in &plan.deployments {
            let Some(gitrepo) = plan.bundles.get(&expected.bundle) else {
                continue;
            };
            let Some(pushed) = plan.pushes.get(gitrepo) else {
                continue;
            };
            let bundle_at = self
                .bundle
                .get(&expected.bundle)
                .copied()
                .unwrap_or_else(|| notified(gitrepo, pushed));
            let spec_at = self.spec.get(key).map(|(at, _)| *at);
            add(
                Stage::Deployment,
                1,
                spec_at.map(|at| (at, bundle_at, pushed.sent)),
            );
            let applied_at = self.applied.get(key).copied();
            add(
                Stage::Applied,
                1,
                applied_at
                    .zip(spec_at)
                    .map(|(at, from)| (at, from, pushed.sent)),
            );
            add(
                Stage::Ready,
                1,
                self.ready
                    .get(key)
                    .copied()
                    .zip(applied_at)
                    .map(|(at, from)| (at, from, pushed.sent)),
            );
        }
        let webhooks = self
            .notified
            .values()
            .filter(|(_, how)| *how == Notice::Webhook)
            .count();
        Stage::ALL
            .into_iter()
            .map(|stage| {
                let (expected, samples, since) = per_stage.remove(&stage).unwrap_or_default();
                let mut measurement = stage_measurement(stage, expected, samples, &since);
                if stage == Stage::Notify {
                    measurement
                        .breakdown
                        .insert("by webhook".into(), webhooks as f64);
                    measurement.breakdown.insert(
                        "by ref listing".into(),
                        (self.notified.len() - webhooks) as f64,
                    );
                }
                (measurement_name(base, stage), measurement)
            })
            .collect()
    }
}

/// The prefix of the breakdown keys that hold a stage's latency from the commit request.
pub const SINCE_COMMIT: &str = "since commit ";

/// The breakdown key of one statistic of a stage's latency from the commit request.
pub fn since_commit(stat: Stat) -> String {
    format!("{SINCE_COMMIT}{stat}")
}

fn stage_measurement(
    stage: Stage,
    expected: usize,
    samples: Vec<f64>,
    since: &[f64],
) -> Measurement {
    let mut stats = Summary::of(&samples).to_stats();
    stats.remove(&Stat::Stddev);
    stats.insert(Stat::Expected, expected as f64);
    let missing = expected.saturating_sub(samples.len());
    stats.insert(Stat::Missing, missing as f64);
    let mut breakdown = BTreeMap::new();
    let cumulative = Summary::of(since);
    if cumulative.count > 0 {
        for (stat, value) in [
            (Stat::P50, cumulative.p50),
            (Stat::P90, cumulative.p90),
            (Stat::P99, cumulative.p99),
            (Stat::Max, cumulative.max),
        ] {
            breakdown.insert(since_commit(stat), value);
        }
    }
    let mut notes = Vec::new();
    if missing > 0 {
        notes.push(format!(
            "{missing} of {expected} not observed at this stage within the step"
        ));
    }
    Measurement {
        kind: MeasurementKind::Latency,
        unit: Unit::Seconds,
        description: format!("stage {}: {}", stage.name(), stage.description()),
        stats,
        samples,
        breakdown,
        band: None,
        notes,
    }
}

/// One stage of a suite's waterfall.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterfallStage {
    /// The stage.
    pub stage: Stage,
    /// Median time from the commit request to the parent stage (where the bar starts).
    pub start: f64,
    /// Median time from the commit request to this stage (where the bar ends).
    pub end: f64,
    /// Median of the stage's own latency.
    pub p50: f64,
    /// 99th percentile of the stage's own latency.
    pub p99: f64,
    /// Objects that reached the stage, of those expected.
    pub observed: usize,
    /// Objects expected at the stage.
    pub expected: usize,
}

/// The stages of one commit step, read back from a suite's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Waterfall {
    /// The commit step's measurement name.
    pub base: String,
    /// Stages that saw at least one object, in pipeline order.
    pub stages: Vec<WaterfallStage>,
}

impl Waterfall {
    /// The stage whose own median latency is the largest.
    pub fn dominant(&self) -> Option<&WaterfallStage> {
        self.stages
            .iter()
            .filter(|s| s.observed > 0)
            .max_by(|a, b| a.p50.total_cmp(&b.p50))
    }

    /// The median from the commit request to the last stage reached.
    pub fn total(&self) -> f64 {
        self.stages.iter().map(|s| s.end).fold(0.0, f64::max)
    }
}

/// Every commit step's waterfall in a suite, in measurement-name order.
pub fn waterfalls(suite: &SuiteResult) -> Vec<Waterfall> {
    waterfalls_of(&suite.measurements)
}

/// The waterfalls in a set of measurements.
pub fn waterfalls_of(measurements: &BTreeMap<String, Measurement>) -> Vec<Waterfall> {
    let bases: BTreeSet<&str> = measurements
        .keys()
        .filter_map(|name| split_name(name).map(|(base, _)| base))
        .collect();
    bases
        .into_iter()
        .filter_map(|base| {
            let get = |stage: Stage| measurements.get(&measurement_name(base, stage));
            let since_p50 = |stage: Stage| {
                get(stage).and_then(|m| m.breakdown.get(&since_commit(Stat::P50)).copied())
            };
            let stages: Vec<WaterfallStage> = Stage::ALL
                .into_iter()
                .filter_map(|stage| {
                    let measurement = get(stage)?;
                    let observed = measurement.stat(Stat::Count)? as usize;
                    let end = since_p50(stage)?;
                    let start = stage.parent().and_then(since_p50).unwrap_or(0.0);
                    Some(WaterfallStage {
                        stage,
                        start: start.min(end),
                        end,
                        p50: measurement.stat(Stat::P50).unwrap_or(0.0),
                        p99: measurement.stat(Stat::P99).unwrap_or(0.0),
                        observed,
                        expected: measurement.stat(Stat::Expected).unwrap_or(0.0) as usize,
                    })
                })
                .collect();
            (!stages.is_empty()).then(|| Waterfall {
                base: base.to_string(),
                stages,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Stage measurements as a commit step writes them, for report and compare tests.

    use super::*;
    use crate::measure::recorder::{Change, Facts};

    /// The stages of one commit of one repository with one Bundle on one cluster, each
    /// stage taking `stage_ms[i]` milliseconds (push, notify, bundle, deployment, applied,
    /// ready; the GitRepo status comes 50 ms after the notice).
    pub fn measurements(base: &str, stage_ms: [u64; 6]) -> Vec<(String, Measurement)> {
        let origin = Instant::now();
        let mut t = origin;
        let mut next = |i: usize| {
            t += Duration::from_millis(stage_ms[i]);
            t
        };
        let accepted = next(0);
        let notified = next(1);
        let bundle_at = next(2);
        let spec_at = next(3);
        let applied_at = next(4);
        let ready_at = next(5);
        let bd = ObjectKey {
            kind: Kind::BundleDeployment,
            namespace: "cluster-1".into(),
            name: "r-a".into(),
        };
        let plan = Plan {
            pushes: BTreeMap::from([(
                "r".to_string(),
                Pushed {
                    sha: "new".into(),
                    sent: origin,
                    accepted,
                },
            )]),
            bundles: BTreeMap::from([("r-a".to_string(), "r".to_string())]),
            deployments: BTreeMap::from([(
                bd.clone(),
                Expected {
                    bundle: "r-a".into(),
                    old_id: "old".into(),
                },
            )]),
        };
        let mut marks = Marks::default();
        marks.notice("r", notified, Notice::RefListing);
        let observe = |marks: &mut Marks, at: Instant, key: ObjectKey, facts: Facts| {
            marks.observe(
                &plan,
                &Observed {
                    at,
                    key,
                    change: Change::Modified,
                    facts,
                },
            );
        };
        let at_commit = Facts {
            commit: "new".into(),
            ..Facts::default()
        };
        let gitrepo = ObjectKey {
            kind: Kind::GitRepo,
            namespace: "ns".into(),
            name: "r".into(),
        };
        let bundle = ObjectKey {
            kind: Kind::Bundle,
            namespace: "ns".into(),
            name: "r-a".into(),
        };
        observe(
            &mut marks,
            notified + Duration::from_millis(50),
            gitrepo,
            at_commit.clone(),
        );
        observe(&mut marks, bundle_at, bundle, at_commit);
        let deployment = |applied: &str, ready: bool| Facts {
            deployment_id: "new-id".into(),
            applied_deployment_id: applied.into(),
            ready,
            ..Facts::default()
        };
        observe(&mut marks, spec_at, bd.clone(), deployment("old", false));
        observe(
            &mut marks,
            applied_at,
            bd.clone(),
            deployment("new-id", false),
        );
        observe(&mut marks, ready_at, bd, deployment("new-id", true));
        marks.measurements(&plan, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::recorder::{Change, Facts};
    use gitserver::request_log::Outcome;

    fn key(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn seen(at: Instant, key: ObjectKey, facts: Facts) -> Observed {
        Observed {
            at,
            key,
            change: Change::Modified,
            facts,
        }
    }

    fn ms(origin: Instant, millis: u64) -> Instant {
        origin + Duration::from_millis(millis)
    }

    fn plan(origin: Instant) -> Plan {
        Plan {
            pushes: BTreeMap::from([(
                "repo-0".to_string(),
                Pushed {
                    sha: "new".into(),
                    sent: origin,
                    accepted: ms(origin, 100),
                },
            )]),
            bundles: BTreeMap::from([("repo-0-a".to_string(), "repo-0".to_string())]),
            deployments: BTreeMap::from([(
                key(Kind::BundleDeployment, "cluster-1", "repo-0-a"),
                Expected {
                    bundle: "repo-0-a".into(),
                    old_id: "s-old:1".into(),
                },
            )]),
        }
    }

    fn bd(id: &str, applied: &str, ready: bool, commit: Option<&str>) -> Facts {
        Facts {
            deployment_id: id.into(),
            applied_deployment_id: applied.into(),
            ready,
            labels: commit
                .map(|c| BTreeMap::from([(fleet_api::labels::COMMIT.to_string(), c.to_string())]))
                .unwrap_or_default(),
            ..Facts::default()
        }
    }

    fn stat(measurements: &[(String, Measurement)], name: &str, stat: Stat) -> Option<f64> {
        measurements
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, m)| m.stat(stat))
    }

    #[test]
    fn each_stage_is_timed_from_its_own_parent() {
        let origin = Instant::now();
        let plan = plan(origin);
        let mut marks = Marks::default();
        marks.notice("repo-0", ms(origin, 300), Notice::RefListing);
        marks.notice("repo-0", ms(origin, 250), Notice::Webhook);
        let bd_key = key(Kind::BundleDeployment, "cluster-1", "repo-0-a");
        let log = [
            // The bundled controller writes the Bundle before the GitRepo's status.
            seen(
                ms(origin, 400),
                key(Kind::Bundle, "ns", "repo-0-a"),
                Facts {
                    commit: "new".into(),
                    ..Facts::default()
                },
            ),
            seen(
                ms(origin, 900),
                key(Kind::GitRepo, "ns", "repo-0"),
                Facts {
                    commit: "new".into(),
                    ..Facts::default()
                },
            ),
            // The old deploymentID again (a status write): not the commit yet.
            seen(
                ms(origin, 950),
                bd_key.clone(),
                bd("s-old:1", "s-old:1", true, None),
            ),
            seen(
                ms(origin, 1000),
                bd_key.clone(),
                bd("s-new:1", "s-old:1", true, Some("new")),
            ),
            seen(
                ms(origin, 1500),
                bd_key.clone(),
                bd("s-new:1", "s-new:1", false, Some("new")),
            ),
            seen(
                ms(origin, 2500),
                bd_key,
                bd("s-new:1", "s-new:1", true, Some("new")),
            ),
        ];
        for observed in &log {
            marks.observe(&plan, observed);
        }
        assert!(marks.all_ready(&plan));
        let m = marks.measurements(&plan, "c");
        let p50 = |stage: &str| stat(&m, &format!("c/{stage}"), Stat::P50).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 0.002;
        assert!(close(p50("push"), 0.1));
        assert!(close(p50("notify"), 0.15), "the webhook came first");
        assert!(
            close(p50("bundle"), 0.15),
            "from the notice, not from the GitRepo"
        );
        assert!(close(p50("gitrepo"), 0.65));
        assert!(close(p50("deployment"), 0.6), "from its own Bundle");
        assert!(close(p50("applied"), 0.5));
        assert!(close(p50("ready"), 1.0));
        let ready = &m.iter().find(|(n, _)| n == "c/ready").unwrap().1;
        assert!(close(ready.breakdown[&since_commit(Stat::P50)], 2.5));
        let notify = &m.iter().find(|(n, _)| n == "c/notify").unwrap().1;
        assert_eq!(notify.breakdown["by webhook"], 1.0);
        for (_, measurement) in &m {
            assert_eq!(measurement.stat(Stat::Missing), Some(0.0));
        }
    }

    #[test]
    fn another_commit_or_a_missing_stage_is_not_counted() {
        let origin = Instant::now();
        let mut plan = plan(origin);
        let pushed = plan.pushes.get_mut("repo-0").unwrap();
        pushed.sent = ms(origin, 100);
        pushed.accepted = ms(origin, 200);
        let mut marks = Marks::default();
        let bd_key = key(Kind::BundleDeployment, "cluster-1", "repo-0-a");
        // A Bundle event from before the push is history.
        let bundle = Facts {
            commit: "new".into(),
            ..Facts::default()
        };
        marks.observe(
            &plan,
            &seen(origin, key(Kind::Bundle, "ns", "repo-0-a"), bundle),
        );
        // A new deploymentID labelled with another commit is not this commit's.
        let other = bd("s-x:1", "s-x:1", true, Some("other"));
        marks.observe(&plan, &seen(ms(origin, 500), bd_key, other));
        assert!(!marks.all_ready(&plan));
        assert_eq!(marks.progress(), 0);
        let m = marks.measurements(&plan, "c");
        for stage in [
            "notify",
            "gitrepo",
            "bundle",
            "deployment",
            "applied",
            "ready",
        ] {
            assert_eq!(
                stat(&m, &format!("c/{stage}"), Stat::Missing),
                Some(1.0),
                "{stage}"
            );
            assert_eq!(
                stat(&m, &format!("c/{stage}"), Stat::Count),
                Some(0.0),
                "{stage}"
            );
        }
        assert_eq!(stat(&m, "c/push", Stat::Missing), Some(0.0));
    }

    fn entry(
        unix_nanos: i64,
        service: GitService,
        protocol: Option<&str>,
        command: Option<&str>,
    ) -> RequestLogEntry {
        RequestLogEntry {
            seq: 1,
            time: String::new(),
            unix_nanos,
            repo: "o/r".into(),
            service,
            command: command.map(Into::into),
            client: "127.0.0.1:1".into(),
            user: None,
            protocol: protocol.map(Into::into),
            status: 200,
            outcome: Outcome::Ok,
            duration_ms: 20.0,
        }
    }

    #[test]
    fn only_listings_after_the_push_was_accepted_notify() {
        let clock = Clock::now();
        let origin = clock.instant(clock.unix_nanos);
        let plan = plan(origin);
        let pushed = &plan.pushes["repo-0"];
        let at = |millis: i64| i64::try_from(clock.unix_nanos).unwrap() + millis * 1_000_000;
        let entries = [
            // Before the push was accepted: it cannot have shown the commit.
            entry(at(50), GitService::UploadPackAdvertisement, None, None),
            // A v2 advertisement lists capabilities, not refs.
            entry(
                at(200),
                GitService::UploadPackAdvertisement,
                Some("version=2"),
                None,
            ),
            entry(
                at(300),
                GitService::UploadPack,
                Some("version=2"),
                Some("fetch"),
            ),
            entry(
                at(400),
                GitService::UploadPack,
                Some("version=2"),
                Some("ls-refs"),
            ),
        ];
        let mut marks = Marks::default();
        marks.notice_from_git_log("repo-0", pushed, &entries, &clock);
        let m = marks.measurements(&plan, "c");
        let notify = stat(&m, "c/notify", Stat::P50).unwrap();
        // Answered at 420 ms, accepted at 100 ms.
        assert!((notify - 0.32).abs() < 0.002, "{notify}");
        assert_eq!(
            m.iter().find(|(n, _)| n == "c/notify").unwrap().1.breakdown["by ref listing"],
            1.0
        );
    }

    #[test]
    fn stage_names_round_trip_and_waterfalls_read_back() {
        assert_eq!(
            split_name("commit-to-bundle/notify"),
            Some(("commit-to-bundle", Stage::Notify))
        );
        assert_eq!(split_name("commit-to-bundle"), None);
        assert_eq!(split_name("a/unknown"), None);
        let origin = Instant::now();
        let plan = plan(origin);
        let mut marks = Marks::default();
        marks.notice("repo-0", ms(origin, 3100), Notice::RefListing);
        marks.observe(
            &plan,
            &seen(
                ms(origin, 3300),
                key(Kind::Bundle, "ns", "repo-0-a"),
                Facts {
                    commit: "new".into(),
                    ..Facts::default()
                },
            ),
        );
        let measurements: BTreeMap<String, Measurement> =
            marks.measurements(&plan, "c").into_iter().collect();
        let waterfalls = waterfalls_of(&measurements);
        assert_eq!(waterfalls.len(), 1);
        let waterfall = &waterfalls[0];
        assert_eq!(waterfall.base, "c");
        let names: Vec<&str> = waterfall.stages.iter().map(|s| s.stage.name()).collect();
        assert_eq!(
            names,
            ["push", "notify", "bundle"],
            "stages nobody reached have no bar"
        );
        assert_eq!(
            waterfall.dominant().unwrap().stage,
            Stage::Notify,
            "a poll 3 s after the push"
        );
        let bundle = &waterfall.stages[2];
        assert!(
            (bundle.start - 3.1).abs() < 0.01 && (bundle.end - 3.3).abs() < 0.01,
            "{bundle:?}"
        );
        assert!((waterfall.total() - 3.3).abs() < 0.01);
    }
}
