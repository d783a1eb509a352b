//! Infrastructure faults a suite can inject through its environment: cutting a downstream
//! cluster off the network and back, stopping and restarting the controller.
//!
//! They are the environment's business (only a provider knows what a "network" is for its
//! clusters), so suites name them and providers that can do them do; the others answer
//! [`super::ProviderError::Unsupported`], and a suite that needs them says which providers
//! it runs on.

use std::fmt;
use std::time::Duration;

/// One fault (or its undoing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Cut the downstream cluster registered as this Cluster off the network.
    PartitionCluster(String),
    /// Connect it again.
    HealCluster(String),
    /// Stop the controller (SIGTERM, then SIGKILL after the grace period).
    StopController {
        /// How long it may take to exit.
        grace: Duration,
    },
    /// Start the stopped controller again and wait until it is ready.
    StartController,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::PartitionCluster(name) => write!(f, "partition cluster {name}"),
            Fault::HealCluster(name) => write!(f, "heal cluster {name}"),
            Fault::StopController { grace } => write!(f, "stop the controller (grace {grace:?})"),
            Fault::StartController => f.write_str("start the controller"),
        }
    }
}
