//! A run's identity on the Docker engine: its id, the labels on everything it creates, and
//! the names of its network and containers.
//!
//! Everything a run creates carries `fleetbench.run=<id>`, so whatever a crash, a panic or a
//! second Ctrl-C leaves behind can be found and removed by label alone
//! ([`super::cleanup`]), without remembering ids. The owner labels (host name and process
//! id) let a later run tell an abandoned run from one that is still going on this machine.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

/// Label naming the run that created a container, network or volume.
pub const RUN_LABEL: &str = "fleetbench.run";
/// Label naming the component a container plays (`apiserver`, `gitserver`, ...).
pub const COMPONENT_LABEL: &str = "fleetbench.component";
/// Label naming the downstream cluster a container belongs to.
pub const CLUSTER_LABEL: &str = "fleetbench.cluster";
/// Label holding the host name of the machine whose process created the object.
pub const OWNER_HOST_LABEL: &str = "fleetbench.owner-host";
/// Label holding the id of the process that created the object.
pub const OWNER_PID_LABEL: &str = "fleetbench.owner-pid";

/// Prefix of every name a run gives to Docker objects.
pub const NAME_PREFIX: &str = "fleetbench";

/// Why a run id or cluster name was refused.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// A run id must be 4 to 24 characters of `[a-z0-9]`.
    #[error("invalid run id {0:?}: expected 4 to 24 characters of [a-z0-9]")]
    RunId(String),
    /// A downstream cluster name must be a DNS label that leaves room for the run's prefix.
    #[error(
        "invalid cluster name {0:?}: expected 1 to 30 characters of [a-z0-9-], starting and ending with a letter or digit"
    )]
    Cluster(String),
}

/// The id of one run: short, random, and valid in Docker names and DNS labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunId(String);

impl RunId {
    /// A fresh random id (10 hex digits).
    pub fn random() -> Self {
        let uuid = uuid::Uuid::new_v4().simple().to_string();
        Self(uuid[..10].to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The run's private network.
    pub fn network_name(&self) -> String {
        format!("{NAME_PREFIX}-{}", self.0)
    }

    /// A container's name, which is also its DNS name on the run's network.
    pub fn container_name(&self, role: &Role) -> String {
        format!("{NAME_PREFIX}-{}-{}", self.0, role.name_suffix())
    }

    /// The labels of an object this run creates in `role` (networks and volumes: `None`).
    pub fn labels(&self, role: Option<&Role>) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (RUN_LABEL.to_string(), self.0.clone()),
            (OWNER_HOST_LABEL.to_string(), this_host()),
            (OWNER_PID_LABEL.to_string(), std::process::id().to_string()),
        ]);
        if let Some(role) = role {
            labels.insert(COMPONENT_LABEL.to_string(), role.component().to_string());
            if let Some(cluster) = role.cluster() {
                labels.insert(CLUSTER_LABEL.to_string(), cluster.to_string());
            }
        }
        labels
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RunId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = (4..=24).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::RunId(s.to_string()))
        }
    }
}

/// A downstream cluster's name (a DNS label, short enough to prefix with the run's names).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterName(String);

impl ClusterName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClusterName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        let edge_ok =
            |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid = (1..=30).contains(&s.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && edge_ok(bytes.first())
            && edge_ok(bytes.last());
        if valid {
            Ok(Self(s.to_string()))
        } else {
            Err(NameError::Cluster(s.to_string()))
        }
    }
}

/// What a container does in a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// The management cluster's API server.
    Management,
    /// The git server.
    GitServer,
    /// The controller under test.
    Controller,
    /// A downstream cluster's API server (it owns the cluster's network namespace).
    DownstreamApi(ClusterName),
    /// A downstream cluster's apply agent (it shares its API server's network namespace).
    Agent(ClusterName),
}

impl Role {
    /// The `fleetbench.component` label's value.
    pub fn component(&self) -> &'static str {
        match self {
            Role::Management => "apiserver",
            Role::GitServer => "gitserver",
            Role::Controller => "controller",
            Role::DownstreamApi(_) => "downstream-apiserver",
            Role::Agent(_) => "agent",
        }
    }

    /// The downstream cluster this role belongs to.
    pub fn cluster(&self) -> Option<&ClusterName> {
        match self {
            Role::DownstreamApi(name) | Role::Agent(name) => Some(name),
            _ => None,
        }
    }

    fn name_suffix(&self) -> String {
        match self {
            Role::Management => "mgmt".to_string(),
            Role::GitServer => "git".to_string(),
            Role::Controller => "controller".to_string(),
            Role::DownstreamApi(name) => format!("ds-{name}"),
            Role::Agent(name) => format!("ds-{name}-agent"),
        }
    }
}

/// This machine's host name, as the owner label records it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str) -> ClusterName {
        name.parse().expect("valid cluster name")
    }

    #[test]
    fn random_run_ids_are_valid_and_distinct() {
        let a = RunId::random();
        let b = RunId::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<RunId>().expect("valid"), a);
    }

    #[test]
    fn run_ids_outside_the_alphabet_are_refused() {
        for bad in [
            "",
            "abc",
            "ABCD1234",
            "run-1234",
            "a".repeat(25).as_str(),
            "ab cd",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?} accepted");
        }
        assert!("0a1b2c3d4e".parse::<RunId>().is_ok());
    }

    #[test]
    fn cluster_names_must_be_short_dns_labels() {
        for good in ["a", "downstream-1", "c0"] {
            assert!(good.parse::<ClusterName>().is_ok(), "{good:?} refused");
        }
        for bad in ["", "-a", "a-", "Down", "a_b", "a.b", &"x".repeat(31)] {
            let error = bad.parse::<ClusterName>().expect_err(bad);
            assert!(
                error.to_string().contains("invalid cluster name"),
                "{error}"
            );
        }
    }

    #[test]
    fn names_carry_the_run_id_and_role() {
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        assert_eq!(run.network_name(), "fleetbench-0a1b2c3d4e");
        assert_eq!(
            run.container_name(&Role::Management),
            "fleetbench-0a1b2c3d4e-mgmt"
        );
        assert_eq!(
            run.container_name(&Role::DownstreamApi(cluster("east"))),
            "fleetbench-0a1b2c3d4e-ds-east"
        );
        assert_eq!(
            run.container_name(&Role::Agent(cluster("east"))),
            "fleetbench-0a1b2c3d4e-ds-east-agent"
        );
    }

    #[test]
    fn labels_name_run_owner_component_and_cluster() {
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let labels = run.labels(Some(&Role::Agent(cluster("east"))));
        assert_eq!(labels[RUN_LABEL], "0a1b2c3d4e");
        assert_eq!(labels[COMPONENT_LABEL], "agent");
        assert_eq!(labels[CLUSTER_LABEL], "east");
        assert_eq!(labels[OWNER_PID_LABEL], std::process::id().to_string());
        assert_eq!(labels[OWNER_HOST_LABEL], this_host());
        let network = run.labels(None);
        assert!(!network.contains_key(COMPONENT_LABEL));
        assert_eq!(network[RUN_LABEL], "0a1b2c3d4e");
    }
}
