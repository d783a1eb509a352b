//! Suites: what runs, at what scale, with which controller settings, and which SLOs judge it.
//!
//! A suite file is data, not code: the harness ships a fixed vocabulary of steps (create
//! repos, commit in a burst, label a cluster, ...) and every suite is a sequence of them.
//! That keeps suites reviewable by people who do not read Rust, lets the command line
//! override any field (`--set scale.gitrepos=30`), and lets the same suite run against the
//! bundled controller and an upstream Fleet alike.

pub mod expr;
mod load;
mod overrides;
mod steps;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// Profiles, legacy switches and durations are spelt as the controller spells them: one
// definition, in `fleet-api`, for the controller's flags, the suite files and results.json.
pub use expr::Expr;
pub use fleet_api::duration::GoDuration;
pub use fleet_api::profile::{LegacySwitch, Profile};
pub use load::{LoadError, load_dir, load_file, parse_suite};
pub use overrides::{Override, OverrideError, apply_overrides};
pub use steps::*;

use crate::slo::{Comparison, Stat};

/// One suite file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Unique name, `[a-z0-9-]+`; results and reports are keyed by it.
    pub name: String,
    /// What the suite reproduces and why it matters, shown in reports.
    #[serde(default)]
    pub description: String,
    /// Free tags; `smoke` (small, for tests), `full` (design scale), `long` (minutes).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Providers the suite can run on (empty: every one); elsewhere `conformance` skips it
    /// and `run` refuses it with a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Scale parameters; steps default to them and thresholds may refer to them.
    #[serde(default)]
    pub scale: Scale,
    /// How the bundled controller is started for this suite.
    #[serde(default)]
    pub controller: ControllerSettings,
    /// Runs the steps a second time in a fresh environment with another profile and
    /// reports ratios between the two runs (status-write-volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
    /// What the suite does, in order.
    pub steps: Vec<Step>,
    /// The verdicts.
    pub slos: Vec<SloSpec>,
    /// The legacy switch this suite exists to catch, and the SLOs that must fail with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
}

/// Scale parameters shared by steps (and readable by threshold expressions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scale {
    /// GitRepos (one git repository each).
    pub gitrepos: u32,
    /// Paths (bundles) per repository.
    pub paths: u32,
    /// Downstream clusters registered on the management cluster.
    pub clusters: u32,
    /// `spec.pollingInterval` of the GitRepos the suite creates.
    pub polling_interval: GoDuration,
    /// Workspace namespace for GitRepos, Bundles and Clusters.
    pub namespace: String,
}

impl Default for Scale {
    fn default() -> Self {
        Self {
            gitrepos: 1,
            paths: 1,
            clusters: 1,
            polling_interval: GoDuration::from_secs(15),
            namespace: "fleet-default".to_string(),
        }
    }
}

impl Scale {
    /// The names threshold expressions may use, with durations in seconds.
    pub fn variables(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("gitrepos".to_string(), f64::from(self.gitrepos)),
            ("paths".to_string(), f64::from(self.paths)),
            ("clusters".to_string(), f64::from(self.clusters)),
            ("bundles".to_string(), f64::from(self.gitrepos * self.paths)),
            (
                "polling_interval".to_string(),
                self.polling_interval.as_secs_f64(),
            ),
        ])
    }
}

/// How the simulated downstream agent behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AgentMode {
    /// No agent: BundleDeployments keep whatever status the harness writes.
    None,
    /// The controller's built-in simulated agent marks BundleDeployments ready.
    #[default]
    Simulated,
    /// Real agents apply the bundles to real downstream clusters: the docker provider
    /// creates a downstream cluster with its own `fleet-controller agent` per Cluster (the
    /// controller itself then runs without an agent); a local controller runs its
    /// in-process apply agent on Clusters that have a kubeconfig Secret.
    Apply,
}

impl AgentMode {
    /// The `--agent` flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMode::None => "none",
            AgentMode::Simulated => "simulated",
            AgentMode::Apply => "apply",
        }
    }
}

/// Controller settings a suite runs with; recorded with the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerSettings {
    /// `--profile`; the command line's `--profile` overrides it.
    pub profile: Profile,
    /// Extra `--legacy` switches on top of the profile.
    pub legacy: Vec<LegacySwitch>,
    /// `--agent`.
    pub agent: AgentMode,
    /// Environment variables (Fleet's: `GITREPO_SYNC_PERIOD`, `*_RECONCILER_WORKERS`, ...).
    pub env: BTreeMap<String, String>,
    /// Extra command-line arguments, appended last.
    pub args: Vec<String>,
    /// How long the controller may take to become ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<GoDuration>,
}

/// A second run of the same steps under another profile, for ratios.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// The profile of the baseline run.
    pub profile: Profile,
    /// Extra legacy switches of the baseline run.
    #[serde(default)]
    pub legacy: Vec<LegacySwitch>,
    /// Ratios (this run / baseline run) published as measurements.
    pub ratios: Vec<RatioSpec>,
}

/// `name = measurement(this run) / measurement(baseline run)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioSpec {
    /// Name of the resulting measurement.
    pub name: String,
    /// The measurement (of kind count) to divide.
    pub measurement: String,
}

/// One service-level objective.
///
/// A suite file gives exactly one of `max:` or `min:`; read, that is one comparison and
/// one threshold, so an SLO without a bound (or with two) cannot exist past loading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SloSpecFile", into = "SloSpecFile")]
pub struct SloSpec {
    /// Unique within the suite.
    pub name: String,
    /// Why this objective, in a sentence (shown in reports and JUnit).
    pub description: String,
    /// The measurement it reads.
    pub measurement: String,
    /// The statistic of that measurement (p99, max, missing, value, ...).
    pub stat: Stat,
    /// `max:` (pass when the statistic is at most the threshold) or `min:` (at least).
    pub comparison: Comparison,
    /// The threshold.
    pub threshold: Expr,
}

/// An SLO as a suite file spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SloSpecFile {
    name: String,
    #[serde(default)]
    description: String,
    measurement: String,
    stat: Stat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min: Option<Expr>,
}

impl TryFrom<SloSpecFile> for SloSpec {
    type Error = String;

    fn try_from(file: SloSpecFile) -> Result<Self, Self::Error> {
        let (comparison, threshold) = match (file.max, file.min) {
            (Some(max), None) => (Comparison::AtMost, max),
            (None, Some(min)) => (Comparison::AtLeast, min),
            _ => {
                return Err(format!(
                    "SLO {:?} needs exactly one of `max` or `min`",
                    file.name
                ));
            }
        };
        Ok(SloSpec {
            name: file.name,
            description: file.description,
            measurement: file.measurement,
            stat: file.stat,
            comparison,
            threshold,
        })
    }
}

impl From<SloSpec> for SloSpecFile {
    fn from(spec: SloSpec) -> Self {
        let (max, min) = match spec.comparison {
            Comparison::AtMost => (Some(spec.threshold), None),
            Comparison::AtLeast => (None, Some(spec.threshold)),
        };
        SloSpecFile {
            name: spec.name,
            description: spec.description,
            measurement: spec.measurement,
            stat: spec.stat,
            max,
            min,
        }
    }
}

/// What the sensitivity proof expects of this suite: with the legacy switch it targets
/// (or, where no switch applies, an override that breaks what it measures) exactly the
/// SLOs in `fails` fail, and without it every SLO passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensitivity {
    /// The switches that reintroduce the bug this suite exists for.
    #[serde(default)]
    pub legacy: Vec<LegacySwitch>,
    /// `--set`-style overrides that break what the suite measures (for suites no legacy
    /// switch affects, e.g. the webhook path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
    /// SLOs that must fail with the switch on (and pass without it).
    pub fails: Vec<String>,
}

impl Suite {
    /// Every measurement name the steps and the baseline produce, with its kind.
    pub fn measurements(&self) -> Vec<(String, MeasurementKind)> {
        let mut all: Vec<(String, MeasurementKind)> =
            self.steps.iter().flat_map(Step::measurements).collect();
        if let Some(baseline) = &self.baseline {
            all.extend(
                baseline
                    .ratios
                    .iter()
                    .map(|ratio| (ratio.name.clone(), MeasurementKind::Value)),
            );
        }
        all
    }

    /// The effective controller profile (for results).
    pub fn profile(&self) -> Profile {
        self.controller.profile
    }

    /// Whether the suite carries a tag.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// Whether the suite can run on `provider`.
    pub fn runs_on(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }
}

/// The shapes of measurement a step can produce; decides which stats an SLO may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementKind {
    /// Seconds from an action to each expected event, with how many never came.
    Latency,
    /// Seconds between consecutive polls of each repository.
    Intervals,
    /// A count (API writes), with a breakdown.
    Count,
    /// One number (a ratio, a mismatch count).
    Value,
}

impl MeasurementKind {
    /// The stats an SLO may name for this kind.
    pub fn stats(self) -> &'static [Stat] {
        match self {
            MeasurementKind::Latency => &[
                Stat::P50,
                Stat::P90,
                Stat::P99,
                Stat::Max,
                Stat::Min,
                Stat::Mean,
                Stat::Count,
                Stat::Expected,
                Stat::Missing,
            ],
            MeasurementKind::Intervals => &[
                Stat::P50,
                Stat::P90,
                Stat::P99,
                Stat::Max,
                Stat::Min,
                Stat::Mean,
                Stat::Stddev,
                Stat::Count,
                Stat::Missed,
                Stat::Mismatches,
                Stat::Repos,
                Stat::MaxAdvertisementsPerInterval,
                Stat::WithinRepoStddev,
                Stat::MinRepoStddev,
            ],
            MeasurementKind::Count | MeasurementKind::Value => &[Stat::Value],
        }
    }
}
