//! Profiles and legacy switches: the pre-fix Fleet algorithms the suites must catch.
//!
//! `--profile fleet-v0.10` turns on every legacy switch; `--legacy a,b` turns on single ones,
//! so a suite can show which regression it detects. Each switch names one algorithm that
//! Fleet fixed (see fleet-behaviour.md, "Behaviours behind the seed reports"), and the code
//! consults the switch at exactly the place where the fixed and the pre-fix algorithm part.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A named set of legacy switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// Fleet's current algorithms (no legacy switch).
    #[default]
    Current,
    /// Fleet v0.10's algorithms: every legacy switch on.
    FleetV010,
}

impl Profile {
    /// The switches this profile turns on.
    pub fn switches(self) -> LegacySwitches {
        match self {
            Profile::Current => LegacySwitches::default(),
            Profile::FleetV010 => LegacySwitch::ALL.iter().copied().collect(),
        }
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Current => "current",
            Profile::FleetV010 => "fleet-v0.10",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Profile {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "current" => Ok(Profile::Current),
            "fleet-v0.10" => Ok(Profile::FleetV010),
            other => Err(Error::UnknownProfile(other.to_owned())),
        }
    }
}

/// One pre-fix algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LegacySwitch {
    /// Poll exactly every `pollingInterval`, without the 0..+10% jitter (before PR 3151).
    NoPollJitter,
    /// A GitRepo whose poll fails leaves the polling schedule until its spec is edited, and
    /// the periodic resync does not bring it back (issue 3138).
    DropGitRepoAfterError,
    /// Any Cluster change re-reconciles every Bundle and re-patches its status and its
    /// BundleDeployments (issue 3163, before PR 3245).
    RequeueAllBundlesOnClusterChange,
    /// Orphaned BundleDeployments are deleted only by the periodic cluster pass, not by the
    /// bundle reconcile that orphaned them (issue 3437, before PR 3438).
    OrphanCleanupInClusterPass,
    /// Every status computation is written, changed or not, without coalescing (before
    /// PRs 3245 and 3558).
    UnthrottledStatusWrites,
}

impl LegacySwitch {
    /// Every switch, in documentation order.
    pub const ALL: [LegacySwitch; 5] = [
        LegacySwitch::NoPollJitter,
        LegacySwitch::DropGitRepoAfterError,
        LegacySwitch::RequeueAllBundlesOnClusterChange,
        LegacySwitch::OrphanCleanupInClusterPass,
        LegacySwitch::UnthrottledStatusWrites,
    ];

    /// The name used by `--legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            LegacySwitch::NoPollJitter => "no-poll-jitter",
            LegacySwitch::DropGitRepoAfterError => "drop-gitrepo-after-error",
            LegacySwitch::RequeueAllBundlesOnClusterChange => {
                "requeue-all-bundles-on-cluster-change"
            }
            LegacySwitch::OrphanCleanupInClusterPass => "orphan-cleanup-in-cluster-pass",
            LegacySwitch::UnthrottledStatusWrites => "unthrottled-status-writes",
        }
    }
}

impl fmt::Display for LegacySwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LegacySwitch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LegacySwitch::ALL
            .iter()
            .copied()
            .find(|switch| switch.as_str() == s)
            .ok_or_else(|| Error::UnknownSwitch(s.to_owned()))
    }
}

/// The set of legacy switches in effect.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LegacySwitches(BTreeSet<LegacySwitch>);

impl LegacySwitches {
    /// Whether `switch` is on.
    pub fn is_on(&self, switch: LegacySwitch) -> bool {
        self.0.contains(&switch)
    }

    /// Turns `switch` on.
    pub fn insert(&mut self, switch: LegacySwitch) {
        self.0.insert(switch);
    }

    /// The switches that are on, in order.
    pub fn iter(&self) -> impl Iterator<Item = LegacySwitch> + '_ {
        self.0.iter().copied()
    }

    /// Parses a comma-separated list (`--legacy a,b`); empty items are ignored.
    pub fn parse_list(list: &str) -> Result<Self, Error> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(LegacySwitch::from_str)
            .collect()
    }
}

impl FromIterator<LegacySwitch> for LegacySwitches {
    fn from_iter<I: IntoIterator<Item = LegacySwitch>>(iter: I) -> Self {
        LegacySwitches(iter.into_iter().collect())
    }
}

impl fmt::Display for LegacySwitches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(LegacySwitch::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// A profile or switch name that does not exist.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// `--profile` got a name other than `current` or `fleet-v0.10`.
    #[error("unknown profile {0:?}: expected current or fleet-v0.10")]
    UnknownProfile(String),
    /// `--legacy` got a name that is not one of the five switches.
    #[error(
        "unknown legacy switch {0:?}: expected one of no-poll-jitter, drop-gitrepo-after-error, \
         requeue-all-bundles-on-cluster-change, orphan-cleanup-in-cluster-pass, unthrottled-status-writes"
    )]
    UnknownSwitch(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_v010_turns_on_every_switch_and_current_none() {
        let legacy = Profile::FleetV010.switches();
        for switch in LegacySwitch::ALL {
            assert!(legacy.is_on(switch), "{switch}");
        }
        assert_eq!(Profile::Current.switches().iter().count(), 0);
    }

    #[test]
    fn switch_names_round_trip_and_lists_parse() {
        for switch in LegacySwitch::ALL {
            assert_eq!(switch.as_str().parse::<LegacySwitch>(), Ok(switch));
        }
        let list =
            LegacySwitches::parse_list("no-poll-jitter, unthrottled-status-writes,").unwrap();
        assert!(list.is_on(LegacySwitch::NoPollJitter));
        assert!(list.is_on(LegacySwitch::UnthrottledStatusWrites));
        assert!(!list.is_on(LegacySwitch::DropGitRepoAfterError));
        assert_eq!(list.to_string(), "no-poll-jitter,unthrottled-status-writes");
        assert_eq!(
            LegacySwitches::parse_list("no-jitter"),
            Err(Error::UnknownSwitch("no-jitter".into()))
        );
        assert_eq!("fleet-v0.10".parse::<Profile>(), Ok(Profile::FleetV010));
        assert!("v0.10".parse::<Profile>().is_err());
    }
}
