//! The kind provider's options, from `FLEETBENCH_KIND_*` environment variables.
//!
//! Why variables and not flags: the kind provider is chosen with `--provider kind` and
//! everything else about it is specific to it (how many downstream clusters, which images
//! to side-load, whether upstream Fleet is installed), so it stays out of the shared
//! command line. [`KindProvider::from_env`](super::KindProvider::from_env) cannot fail, so
//! a bad value is kept and reported when an environment is created, before any cluster
//! exists. Parsing goes through a lookup function, so tests never touch the process
//! environment.

use std::path::Path;

use super::fleet::FleetSettings;

/// How many downstream kind clusters each environment gets.
pub const DOWNSTREAM_ENV: &str = "FLEETBENCH_KIND_DOWNSTREAM";
/// Images to load into every kind cluster from this machine's Docker (`kind load
/// docker-image`), comma- or space-separated: for nodes that cannot pull them.
pub const LOAD_IMAGES_ENV: &str = "FLEETBENCH_KIND_LOAD_IMAGES";
/// More downstream clusters than this is a typo, not a benchmark on one machine.
pub const MAX_DOWNSTREAM: usize = 50;

/// A variable's name to its value (`None`: unset or blank).
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Why the kind provider's variables cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// A variable's value cannot be used.
    #[error("{variable}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what would do.
        reason: String,
    },
    /// A variable is set that only means something with another one.
    #[error("{variable} is set but {needs} is not: {why}")]
    Needs {
        /// The variable that is set.
        variable: &'static str,
        /// The one it needs.
        needs: &'static str,
        /// Why.
        why: String,
    },
}

/// What the variables ask of the kind provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KindOptions {
    /// Upstream Fleet, when `FLEETBENCH_KIND_FLEET_CHART` is set.
    pub fleet: Option<FleetSettings>,
    /// Downstream kind clusters per environment: [`DOWNSTREAM_ENV`], else 1 with upstream
    /// Fleet (so its manager-initiated registration and agents are exercised) and 0 without
    /// (the bundled controller's simulated agent plays every cluster).
    pub downstream: usize,
    /// Images to load into every cluster.
    pub load_images: Vec<String>,
}

/// The process environment as a [`Lookup`], blank values counting as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl KindOptions {
    /// Reads the options from the process environment.
    pub fn from_env() -> Result<Self, OptionsError> {
        Self::from_lookup(&process_env, &|p| p.exists())
    }

    /// Reads the options through `lookup`; `exists` tells a chart path from a repository
    /// chart of the same spelling.
    pub fn from_lookup(
        lookup: &Lookup<'_>,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Result<Self, OptionsError> {
        let fleet = FleetSettings::from_lookup(lookup, exists)?;
        let downstream = match lookup(DOWNSTREAM_ENV) {
            None => usize::from(fleet.is_some()),
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if n <= MAX_DOWNSTREAM => n,
                _ => {
                    return Err(OptionsError::Invalid {
                        variable: DOWNSTREAM_ENV,
                        value,
                        reason: format!("expected a number of clusters from 0 to {MAX_DOWNSTREAM}"),
                    });
                }
            },
        };
        let load_images = lookup(LOAD_IMAGES_ENV)
            .map(|v| {
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|i| !i.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            fleet,
            downstream,
            load_images,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::provider::kind::fleet::{CHART_ENV, ChartRef};

    fn read(vars: &[(&str, &str)]) -> Result<KindOptions, OptionsError> {
        let vars: BTreeMap<&str, &str> = vars.iter().copied().collect();
        KindOptions::from_lookup(&|n| vars.get(n).map(|v| v.to_string()), &|_| false)
    }

    #[test]
    fn nothing_set_means_the_bundled_controller_and_no_downstream_clusters() {
        assert_eq!(read(&[]).expect("valid"), KindOptions::default());
    }

    #[test]
    fn upstream_fleet_brings_one_downstream_cluster_unless_told() {
        let options = read(&[(CHART_ENV, "fleet/fleet")]).expect("valid");
        assert_eq!(
            options.fleet.as_ref().map(|f| &f.chart),
            Some(&ChartRef::Repo("fleet/fleet".into()))
        );
        assert_eq!(options.downstream, 1);
        let options = read(&[(CHART_ENV, "fleet/fleet"), (DOWNSTREAM_ENV, "3")]).expect("valid");
        assert_eq!(options.downstream, 3);
        let options = read(&[(DOWNSTREAM_ENV, "2")]).expect("valid");
        assert_eq!((options.fleet, options.downstream), (None, 2));
    }

    #[test]
    fn images_to_load_are_split_on_commas_and_spaces() {
        let options = read(&[(
            LOAD_IMAGES_ENV,
            "rancher/fleet:v0.12.13, rancher/fleet-agent:v0.12.13\nbusybox",
        )])
        .expect("valid");
        assert_eq!(
            options.load_images,
            [
                "rancher/fleet:v0.12.13",
                "rancher/fleet-agent:v0.12.13",
                "busybox"
            ]
        );
    }

    #[test]
    fn a_bad_count_names_the_variable_and_the_range() {
        for bad in ["-1", "many", "51"] {
            let error = read(&[(DOWNSTREAM_ENV, bad)]).expect_err(bad).to_string();
            assert!(
                error.contains(DOWNSTREAM_ENV) && error.contains("0 to 50"),
                "{error}"
            );
        }
    }
}
