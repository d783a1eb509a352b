//! Profiles and legacy switches: the pre-fix Fleet algorithms the suites must catch.
//!
//! `--profile fleet-v0.10` turns on every legacy switch; `--legacy a,b` turns on single ones,
//! so a suite can show which regression it detects. Each switch names one algorithm that
//! Fleet fixed (see fleet-behaviour.md, "Behaviours behind the seed reports"), and the code
//! consults the switch at exactly the place where the fixed and the pre-fix algorithm part.
//!
//! The controller's flags, the suite files (`controller.profile`, `legacy`, `baseline`,
//! `sensitivity`) and `results.json` all spell profiles and switches with the names defined
//! here, once: the serde names equal the flag values ([`Profile::as_str`],
//! [`LegacySwitch::as_str`]), and a test holds them equal.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A named set of legacy switches.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum Profile {
    /// Fleet's current algorithms (no legacy switch).
    #[default]
    #[serde(rename = "current")]
    Current,
    /// Fleet v0.10's algorithms: every legacy switch on.
    #[serde(rename = "fleet-v0.10")]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegacySwitch {
    /// Poll exactly every `pollingInterval`, without the 0..+10% jitter (before PR 3151).
    NoPollJitter,
    /// A GitRepo whose poll fails leaves the polling schedule until its spec is edited, and
    /// the periodic resync does not bring it back (issue 3138).
    #[serde(rename = "drop-gitrepo-after-error")]
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

    /// Every switch's name, comma-separated, in documentation order (for help and errors).
    pub fn names() -> String {
        LegacySwitch::ALL.map(LegacySwitch::as_str).join(", ")
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

/// `--legacy` flags take their possible values (listed in `--help` and in the error for an
/// unknown name) from [`LegacySwitch::ALL`].
#[cfg(feature = "clap")]
impl clap::ValueEnum for LegacySwitch {
    fn value_variants<'a>() -> &'a [Self] {
        &LegacySwitch::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
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
    #[error("unknown legacy switch {0:?}: expected one of {names}", names = LegacySwitch::names())]
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
        assert!(Error::UnknownSwitch("x".into()).to_string().ends_with(
            "expected one of no-poll-jitter, drop-gitrepo-after-error, \
                 requeue-all-bundles-on-cluster-change, orphan-cleanup-in-cluster-pass, \
                 unthrottled-status-writes"
        ));
    }

    /// Suite files and `results.json` use the serde names; flags use `as_str`. They must
    /// never drift apart.
    #[test]
    fn serde_names_are_the_flag_names() {
        for switch in LegacySwitch::ALL {
            let json = serde_json::to_value(switch).unwrap();
            assert_eq!(json, switch.as_str(), "{switch:?}");
            assert_eq!(
                serde_json::from_value::<LegacySwitch>(json).unwrap(),
                switch
            );
        }
        for profile in [Profile::Current, Profile::FleetV010] {
            let json = serde_json::to_value(profile).unwrap();
            assert_eq!(json, profile.as_str(), "{profile:?}");
            assert_eq!(serde_json::from_value::<Profile>(json).unwrap(), profile);
        }
    }
}
