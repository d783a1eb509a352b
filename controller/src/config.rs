//! Controller configuration: what the binary's flags and Fleet's env vars set, and what tests
//! set directly when they run the controller in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use fleet_api::{LegacySwitch, LegacySwitches};

/// Which agent runs inside the controller process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentMode {
    /// No agent: BundleDeployments stay WaitApplied until some external agent reports.
    #[default]
    None,
    /// One in-process agent plays every Cluster, reporting after a configurable delay.
    Simulated,
    /// Applies the manifests to each Cluster that has a kubeconfig Secret.
    Apply,
}

impl FromStr for AgentMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(AgentMode::None),
            "simulated" => Ok(AgentMode::Simulated),
            "apply" => Ok(AgentMode::Apply),
            other => Err(Error::UnknownAgent(other.to_owned())),
        }
    }
}

/// Worker counts per reconciler (Fleet's `*_RECONCILER_WORKERS`; chart default 50).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workers {
    /// `GITREPO_RECONCILER_WORKERS`: GitRepo syncs, and polls.
    pub gitrepo: usize,
    /// `BUNDLE_RECONCILER_WORKERS`: bundle targeting.
    pub bundle: usize,
    /// `BUNDLEDEPLOYMENT_RECONCILER_WORKERS`: the agent's BundleDeployment reconciles.
    pub bundledeployment: usize,
    /// `CLUSTER_RECONCILER_WORKERS`: cluster namespaces and the legacy cluster pass.
    pub cluster: usize,
    /// `CLUSTERGROUP_RECONCILER_WORKERS`: cluster group status.
    pub clustergroup: usize,
    /// Status writer workers (not a Fleet setting).
    pub status: usize,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            gitrepo: 50,
            bundle: 50,
            bundledeployment: 50,
            cluster: 50,
            clustergroup: 50,
            status: 50,
        }
    }
}

/// A distribution of delays: fixed, or uniform between two bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayRange {
    /// Shortest delay.
    pub min: Duration,
    /// Longest delay (equal to `min` for a fixed delay).
    pub max: Duration,
}

impl DelayRange {
    /// A fixed delay.
    pub const fn fixed(delay: Duration) -> Self {
        DelayRange {
            min: delay,
            max: delay,
        }
    }

    /// Draws one delay, uniformly in `[min, max]`.
    pub fn sample(&self) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let nanos = rand::random_range(self.min.as_nanos() as u64..=self.max.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

impl FromStr for DelayRange {
    type Err = Error;

    /// `100ms` (fixed) or `50ms..200ms` (uniform).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once("..") {
            Some((min, max)) => {
                let range = DelayRange {
                    min: duration(min.trim())?,
                    max: duration(max.trim())?,
                };
                if range.max < range.min {
                    return Err(Error::EmptyRange(s.to_owned()));
                }
                Ok(range)
            }
            None => Ok(DelayRange::fixed(duration(s.trim())?)),
        }
    }
}

/// Everything the controller needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The in-process agent.
    pub agent: AgentMode,
    /// Legacy switches in effect (the profile's plus `--legacy`).
    pub legacy: LegacySwitches,
    /// Where to serve `/metrics`, `/healthz`, `/readyz` and `POST /webhook` (none: no listener).
    pub listen: Option<SocketAddr>,
    /// Install (create or update) the five CRDs before starting.
    pub install_crds: bool,
    /// Reconciler worker counts.
    pub workers: Workers,
    /// `GITREPO_SYNC_PERIOD`: every GitRepo is re-synced (and put back on the polling
    /// schedule) this often. Fleet's chart default is 2h.
    pub gitrepo_sync_period: Duration,
    /// Status coalescing window: at most one status write per object per window, except for
    /// error states, which are written at once. Fleet's GitRepo status reconciler uses 3s.
    pub status_window: Duration,
    /// Period of the legacy cluster pass that deletes orphaned BundleDeployments
    /// (`orphan-cleanup-in-cluster-pass`).
    pub legacy_cluster_pass_period: Duration,
    /// Delay before the simulated agent reports a BundleDeployment applied.
    pub agent_delay: DelayRange,
    /// Probability that the simulated agent reports a deployment as failed.
    pub agent_fail_rate: f64,
    /// Clusters (`name` or `namespace/name`) on which every simulated deployment fails.
    pub agent_fail_clusters: Vec<String>,
    /// Where fetched repositories are cached (default: a temporary directory).
    pub git_cache_dir: Option<PathBuf>,
    /// Timeout of one git network operation (ls-remote, fetch).
    pub git_timeout: Duration,
    /// Namespace of the global `gitjob-webhook` Secret used for GitRepos without a
    /// `webhookSecret` (Fleet reads it from its own namespace).
    pub webhook_secret_namespace: String,
    /// Accept `file://` GitRepo repositories. Off by default: they read the controller's own
    /// disk, including other GitRepos' fetched caches. For local experiments only.
    pub allow_file_repos: bool,
    /// GitRepo polling intervals below this are raised to it (default 15s, Fleet's default
    /// interval); tests and short smoke suites lower it.
    pub min_polling_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent: AgentMode::None,
            legacy: LegacySwitches::default(),
            listen: None,
            install_crds: false,
            workers: Workers::default(),
            gitrepo_sync_period: Duration::from_secs(2 * 3600),
            status_window: Duration::from_secs(3),
            legacy_cluster_pass_period: Duration::from_secs(600),
            agent_delay: DelayRange {
                min: Duration::from_millis(50),
                max: Duration::from_millis(200),
            },
            agent_fail_rate: 0.0,
            agent_fail_clusters: Vec::new(),
            git_cache_dir: None,
            git_timeout: Duration::from_secs(30),
            webhook_secret_namespace: "cattle-fleet-system".to_owned(),
            allow_file_repos: false,
            min_polling_interval: Duration::from_secs(15),
        }
    }
}

impl Config {
    /// Whether a legacy switch is on.
    pub fn legacy(&self, switch: LegacySwitch) -> bool {
        self.legacy.is_on(switch)
    }
}

/// A Go duration ([`fleet_api::duration::parse`]) as a configuration value.
fn duration(text: &str) -> Result<Duration, Error> {
    fleet_api::duration::parse(text).map_err(|_| Error::BadDuration(text.to_owned()))
}

/// A configuration value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Not a Go duration.
    #[error("invalid duration {0:?}: expected a Go duration such as 15s, 1m30s or 250ms")]
    BadDuration(String),
    /// A delay range whose upper bound is below its lower bound.
    #[error("invalid delay range {0:?}: the upper bound is below the lower bound")]
    EmptyRange(String),
    /// `--agent` got an unknown mode.
    #[error("unknown agent {0:?}: expected none, simulated or apply")]
    UnknownAgent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_ranges_parse_and_samples_stay_within_bounds() {
        let range: DelayRange = "50ms..200ms".parse().unwrap();
        assert_eq!(range.min, Duration::from_millis(50));
        assert_eq!(range.max, Duration::from_millis(200));
        for _ in 0..1000 {
            let d = range.sample();
            assert!(d >= range.min && d <= range.max, "{d:?}");
        }
        assert_eq!(
            "100ms".parse::<DelayRange>(),
            Ok(DelayRange::fixed(Duration::from_millis(100)))
        );
        assert!("200ms..50ms".parse::<DelayRange>().is_err());
        assert_eq!("simulated".parse::<AgentMode>(), Ok(AgentMode::Simulated));
        assert!("real".parse::<AgentMode>().is_err());
    }
}
