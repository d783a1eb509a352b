//! The step vocabulary suite files are written in.
//!
//! Each step is one thing an operator does to a Fleet installation (create, commit, label,
//! edit, break, heal) or one window the harness observes. Numbers default to the suite's
//! `scale`, so overriding the scale resizes every step consistently.

use std::collections::BTreeMap;

use fleet_api::GitTarget;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GoDuration, MeasurementKind};

/// How many of the suite's objects a step touches: `all` or the first N.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    /// Every object of the kind the suite created.
    #[default]
    All,
    /// The first N (in creation order).
    First(u32),
}

impl Count {
    /// Resolves against how many exist.
    pub fn resolve(self, available: usize) -> usize {
        match self {
            Count::All => available,
            Count::First(n) => (n as usize).min(available),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::All => serializer.serialize_str("all"),
            Count::First(n) => serializer.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Count::First(n)),
            Raw::Text(text) if text == "all" => Ok(Count::All),
            Raw::Text(text) => match text.parse::<u32>() {
                Ok(n) => Ok(Count::First(n)),
                Err(_) => Err(serde::de::Error::custom(format!(
                    "expected `all` or a number, found {text:?}"
                ))),
            },
        }
    }
}

/// A Fleet GitRepo target, in Fleet's own spelling so it can be pasted from a GitRepo: the
/// API type itself.
///
/// A suite may set only what the harness's targeting oracle predicts (`name`,
/// `clusterName`, `clusterSelector.matchLabels`, `clusterGroup`; see `steps/world.rs`), and a
/// misspelt field is an error, as everywhere else in a suite file (see `suite_targets`).
pub type Target = GitTarget;

/// The target fields a suite may set: those the harness's targeting oracle predicts.
const SUITE_TARGET_FIELDS: &[&str] = &["name", "clusterName", "clusterSelector", "clusterGroup"];
/// The selector fields a suite target may set (the oracle predicts `matchLabels` only).
const SUITE_SELECTOR_FIELDS: &[&str] = &["matchLabels"];

/// Reads `targets` of a suite step: Fleet's `GitTarget`s, limited to [`SUITE_TARGET_FIELDS`]
/// and [`SUITE_SELECTOR_FIELDS`], so that a typo (or a matcher the oracle cannot predict,
/// such as `matchExpressions`) fails the load instead of silently matching other clusters.
fn suite_targets<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Target>, D::Error> {
    use serde::de::Error as _;
    fn known_fields<E: serde::de::Error>(
        value: &serde_json::Value,
        allowed: &'static [&'static str],
    ) -> Result<(), E> {
        let unknown = value
            .as_object()
            .and_then(|object| object.keys().find(|key| !allowed.contains(&key.as_str())));
        match unknown {
            Some(key) => Err(E::unknown_field(key, allowed)),
            None => Ok(()),
        }
    }
    Vec::<serde_json::Value>::deserialize(deserializer)?
        .into_iter()
        .map(|target| {
            known_fields(&target, SUITE_TARGET_FIELDS)?;
            if let Some(selector) = target.get("clusterSelector") {
                known_fields(selector, SUITE_SELECTOR_FIELDS)?;
            }
            serde_json::from_value(target).map_err(D::Error::custom)
        })
        .collect()
}

/// The `matchLabels` subset of a label selector, as a suite's `create_cluster_group` writes
/// it (the harness must predict matches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Every label that must be present with this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl LabelSelector {
    /// Whether `labels` satisfy the selector (an empty selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        Self::all_match(&self.match_labels, labels)
    }

    /// Whether every `(key, value)` of `match_labels` is among `labels`.
    pub fn all_match<'a>(
        match_labels: impl IntoIterator<Item = (&'a String, &'a String)>,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        match_labels
            .into_iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// Counts API writes to some resources during a step (from the apiserver's `/metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountWrites {
    /// Measurement name (kind count).
    pub measure: String,
    /// Plural resource names (`gitrepos`, `bundles`, `bundledeployments`).
    pub resources: Vec<String>,
    /// Only this subresource (`status`); absent counts the object and all subresources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subresource: Option<String>,
}

/// Accepts one item or a list of them.
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        Many(Vec<T>),
        One(T),
    }
    Ok(match OneOrMany::<T>::deserialize(deserializer)? {
        OneOrMany::Many(items) => items,
        OneOrMany::One(item) => vec![item],
    })
}

/// What "created" means for a GitRepo before the suite moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// Don't wait.
    Nothing,
    /// Every expected Bundle exists.
    Bundles,
    /// Every expected BundleDeployment exists.
    #[default]
    Bundledeployments,
}

/// Every step a suite can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Register downstream Clusters (and wait for the controller to give them namespaces).
    CreateClusters(CreateClusters),
    /// Create a ClusterGroup with a label selector.
    CreateClusterGroup(CreateClusterGroup),
    /// Create git repositories with paths of manifests through the forge API.
    CreateRepos(CreateRepos),
    /// Create one GitRepo per repository and wait for its Bundles/BundleDeployments.
    CreateGitrepos(CreateGitRepos),
    /// Commit to many repositories at once and time the controller picking it up.
    Commit(Commit),
    /// Add labels to one Cluster and time the new BundleDeployments.
    LabelCluster(LabelCluster),
    /// Replace GitRepos' targets and time the orphaned BundleDeployments' deletion.
    EditTargets(EditTargets),
    /// Make repositories fail (git server fault injection).
    BreakRepos(BreakRepos),
    /// Undo `break_repos`.
    HealRepos(HealRepos),
    /// Set the apiserver's fault injection (JSON of its FaultConfig).
    ApiFaults(ApiFaults),
    /// Wait, doing nothing.
    Sleep(Sleep),
    /// Wait until the API server has seen no writes for a while (the controller is idle), so
    /// the next step's counts and timings are not polluted by the previous step's tail.
    Settle(Settle),
    /// Watch polling for a while and measure the intervals.
    ObservePolling(ObservePolling),
    /// Flip every BundleDeployment's status a few times and count the status writes.
    StatusBurst(StatusBurst),
    /// Cut a downstream cluster off the network (providers with real downstream clusters).
    PartitionCluster(ClusterFault),
    /// Connect a partitioned downstream cluster again.
    HealCluster(ClusterFault),
    /// Stop the controller (providers that run it in a container).
    StopController(StopController),
    /// Start the stopped controller again and wait until it is ready.
    StartController(StartController),
    /// Wait until every BundleDeployment is applied at its current deployment ID and ready
    /// (real agents), timing each from the step's start.
    WaitDeployed(WaitDeployed),
}

/// `partition_cluster` / `heal_cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFault {
    /// Index of the cluster (0-based, creation order).
    #[serde(default)]
    pub cluster: u32,
}

fn default_grace() -> GoDuration {
    GoDuration::from_secs(10)
}

/// `stop_controller`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopController {
    /// How long it may take to exit after SIGTERM before it is killed.
    #[serde(default = "default_grace")]
    pub grace: GoDuration,
}

/// `start_controller`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StartController {}

/// `wait_deployed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDeployed {
    /// Latency to each BundleDeployment being applied and ready, from the preceding
    /// `heal_cluster` or `start_controller` (the moment the harness began it, before the
    /// provider waited for readiness), or else from the step's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Bound on waiting for all of them, counted from the same moment.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
}

fn default_timeout() -> GoDuration {
    GoDuration::from_secs(120)
}

fn default_settle() -> GoDuration {
    GoDuration::from_secs(0)
}

/// `create_clusters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClusters {
    /// How many (default: `scale.clusters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Labels of every cluster except the last `unlabelled` ones.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How many clusters, at the end, get no labels.
    #[serde(default)]
    pub unlabelled: u32,
    /// Bound on waiting for the clusters' namespaces.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
}

/// `create_cluster_group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClusterGroup {
    /// Group name.
    pub name: String,
    /// `spec.selector.matchLabels`.
    #[serde(default)]
    pub selector: LabelSelector,
}

/// `create_repos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRepos {
    /// How many (default: `scale.gitrepos`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Paths per repository (default: `scale.paths`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<u32>,
}

/// `create_gitrepos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGitRepos {
    /// `spec.pollingInterval` (default: `scale.polling_interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<GoDuration>,
    /// `spec.disablePolling`.
    #[serde(default)]
    pub disable_polling: bool,
    /// Register a push webhook to the controller on every repository.
    #[serde(default)]
    pub webhook: bool,
    /// `spec.targets`.
    #[serde(deserialize_with = "suite_targets")]
    pub targets: Vec<Target>,
    /// What must exist before the step ends.
    #[serde(default)]
    pub wait: WaitFor,
    /// Bound on that wait.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// Latency from creating each GitRepo to each of its BundleDeployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
}

/// `commit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// Which repositories (default: all), committed to concurrently.
    #[serde(default)]
    pub repos: Count,
    /// Latency from each commit to each of the repo's Bundles carrying the new commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Latency from each commit to its GitRepo's `status.commit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_gitrepo: Option<String>,
    /// Bound on waiting for all of them.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// API writes during the step (one counter, or a list of them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub count_writes: Vec<CountWrites>,
    /// Extra wait before the step's API counts are read.
    #[serde(default = "default_settle")]
    pub settle: GoDuration,
}

/// `label_cluster`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelCluster {
    /// Index of the cluster (0-based, creation order); default: the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<u32>,
    /// Labels to add.
    pub labels: BTreeMap<String, String>,
    /// Latency from the label to each new BundleDeployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Bound on waiting for all of them.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// API writes during the step (one counter, or a list of them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub count_writes: Vec<CountWrites>,
    /// The step's API counts are read once the controller has made no write for this long
    /// (at most `timeout` after the last new BundleDeployment), so that writes it defers
    /// are counted too; 0s reads them at once.
    #[serde(default = "default_settle")]
    pub settle: GoDuration,
    /// Measurement name (kind count) of the updates and patches of BundleDeployments
    /// themselves (not their status, which agents write) during the step: a label creates
    /// BundleDeployments on the cluster it makes match and has no reason to rewrite any
    /// that exist, of the affected bundles or of bystanders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_existing_writes: Option<String>,
}

/// `edit_targets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditTargets {
    /// Which GitRepos (default: all).
    #[serde(default)]
    pub gitrepos: Count,
    /// The new `spec.targets`.
    #[serde(deserialize_with = "suite_targets")]
    pub targets: Vec<Target>,
    /// Latency from the edit to each orphaned BundleDeployment's deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// How many BundleDeployments that still match after the edit were deleted, recreated
    /// (a new UID) or marked for deletion at any time between the edit and the end of the
    /// step (kind value): cleanup must remove the orphans only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_survivors: Option<String>,
    /// Bound on waiting for all of them.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
    /// API writes during the step (one counter, or a list of them).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub count_writes: Vec<CountWrites>,
    /// The step's API counts and the survivors are read once the controller has made no
    /// write for this long (at most `timeout` after the orphans are gone), so that work it
    /// defers is seen too; 0s reads them at once.
    #[serde(default = "default_settle")]
    pub settle: GoDuration,
}

/// How a broken repository fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BreakMode {
    /// Answer 503 to every git request.
    #[default]
    Refuse,
    /// Answer 404, as if the repository were deleted.
    Disappear,
    /// Answer 429 Too Many Requests with `Retry-After`, as a git host rate-limiting a
    /// controller's polls does.
    RateLimit,
}

/// `break_repos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakRepos {
    /// Which repositories (default: all).
    #[serde(default)]
    pub repos: Count,
    /// How they fail.
    #[serde(default)]
    pub mode: BreakMode,
}

/// `heal_repos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealRepos {
    /// Which repositories (default: all).
    #[serde(default)]
    pub repos: Count,
}

/// `api_faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFaults {
    /// The apiserver's FaultConfig as JSON (`{}` clears every fault).
    pub config: serde_json::Value,
}

/// `sleep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    /// How long.
    pub duration: GoDuration,
}

/// `settle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settle {
    /// How long without any API write counts as idle (longer than the controller's status
    /// coalescing window, 3s by default).
    #[serde(default = "default_quiet")]
    pub quiet: GoDuration,
    /// Bound on the wait.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
}

/// `observe_polling`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservePolling {
    /// How long to watch.
    pub duration: GoDuration,
    /// Measurement name (kind intervals).
    pub measure: String,
}

/// `status_burst`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBurst {
    /// How many times every BundleDeployment flips (ends Ready).
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Pause between rounds.
    #[serde(default = "default_round_pause")]
    pub pause: GoDuration,
    /// Status writes to these resources are counted.
    #[serde(default = "default_status_resources")]
    pub resources: Vec<String>,
    /// Measurement name of the write count (kind count).
    pub measure: String,
    /// Measurement name of how many GitRepos and Bundles end with a wrong status (kind value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_incorrect: Option<String>,
    /// Measurement name of the counted writes per BundleDeployment status change (kind
    /// value): an absolute figure, comparable across controllers, providers and runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure_per_change: Option<String>,
    /// The burst is over when no counted write happened for this long.
    #[serde(default = "default_quiet")]
    pub quiet: GoDuration,
    /// Bound on waiting for the final status and the quiet period.
    #[serde(default = "default_timeout")]
    pub timeout: GoDuration,
}

fn default_rounds() -> u32 {
    4
}

fn default_round_pause() -> GoDuration {
    GoDuration(std::time::Duration::from_millis(200))
}

fn default_quiet() -> GoDuration {
    GoDuration::from_secs(5)
}

fn default_status_resources() -> Vec<String> {
    vec!["gitrepos".to_string(), "bundles".to_string()]
}

impl Step {
    /// The step's name as written in suite files.
    pub fn action(&self) -> &'static str {
        match self {
            Step::CreateClusters(_) => "create_clusters",
            Step::CreateClusterGroup(_) => "create_cluster_group",
            Step::CreateRepos(_) => "create_repos",
            Step::CreateGitrepos(_) => "create_gitrepos",
            Step::Commit(_) => "commit",
            Step::LabelCluster(_) => "label_cluster",
            Step::EditTargets(_) => "edit_targets",
            Step::BreakRepos(_) => "break_repos",
            Step::HealRepos(_) => "heal_repos",
            Step::ApiFaults(_) => "api_faults",
            Step::Sleep(_) => "sleep",
            Step::Settle(_) => "settle",
            Step::ObservePolling(_) => "observe_polling",
            Step::StatusBurst(_) => "status_burst",
            Step::PartitionCluster(_) => "partition_cluster",
            Step::HealCluster(_) => "heal_cluster",
            Step::StopController(_) => "stop_controller",
            Step::StartController(_) => "start_controller",
            Step::WaitDeployed(_) => "wait_deployed",
        }
    }

    /// The measurements this step produces.
    pub fn measurements(&self) -> Vec<(String, MeasurementKind)> {
        use MeasurementKind::{Count as Counted, Intervals, Latency, Value};
        let latency = |name: &Option<String>| name.iter().map(|n| (n.clone(), Latency)).collect();
        let writes = |count: &Vec<CountWrites>| {
            count
                .iter()
                .map(|c| (c.measure.clone(), Counted))
                .collect::<Vec<_>>()
        };
        match self {
            Step::CreateGitrepos(step) => latency(&step.measure),
            Step::Commit(step) => {
                let mut all: Vec<_> = latency(&step.measure);
                all.extend(latency(&step.measure_gitrepo));
                all.extend(writes(&step.count_writes));
                // Each stage of the commit's way to the clusters, as `<measure>/<stage>`.
                if let Some(base) = step.measure.as_ref().or(step.measure_gitrepo.as_ref()) {
                    all.extend(
                        crate::stages::Stage::ALL
                            .into_iter()
                            .map(|stage| (crate::stages::measurement_name(base, stage), Latency)),
                    );
                }
                all
            }
            Step::LabelCluster(step) => {
                let mut all: Vec<_> = latency(&step.measure);
                all.extend(writes(&step.count_writes));
                all.extend(
                    step.measure_existing_writes
                        .iter()
                        .map(|n| (n.clone(), Counted)),
                );
                all
            }
            Step::EditTargets(step) => {
                let mut all: Vec<_> = latency(&step.measure);
                all.extend(step.measure_survivors.iter().map(|n| (n.clone(), Value)));
                all.extend(writes(&step.count_writes));
                all
            }
            Step::ObservePolling(step) => vec![(step.measure.clone(), Intervals)],
            Step::StatusBurst(step) => {
                let mut all = vec![(step.measure.clone(), Counted)];
                all.extend(step.measure_incorrect.iter().map(|n| (n.clone(), Value)));
                all.extend(step.measure_per_change.iter().map(|n| (n.clone(), Value)));
                all
            }
            Step::WaitDeployed(step) => latency(&step.measure),
            Step::CreateClusters(_)
            | Step::CreateClusterGroup(_)
            | Step::CreateRepos(_)
            | Step::BreakRepos(_)
            | Step::HealRepos(_)
            | Step::ApiFaults(_)
            | Step::Sleep(_)
            | Step::Settle(_)
            | Step::PartitionCluster(_)
            | Step::HealCluster(_)
            | Step::StopController(_)
            | Step::StartController(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_resolves_against_what_exists() {
        assert_eq!(Count::All.resolve(30), 30);
        assert_eq!(Count::First(5).resolve(30), 5);
        assert_eq!(Count::First(50).resolve(30), 30);
    }

    #[test]
    fn selector_matches_on_every_label() {
        let selector = LabelSelector {
            match_labels: BTreeMap::from([("env".into(), "bench".into())]),
        };
        let mut labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
        assert!(!selector.matches(&labels));
        labels.insert("env".into(), "bench".into());
        assert!(selector.matches(&labels));
        assert!(LabelSelector::default().matches(&BTreeMap::new()));
    }
}
