//! The `docker` provider: this project's own servers as containers on a private Docker
//! network, started with testcontainers from images `make images` builds locally.
//!
//! Why containers when the embedded provider runs the same servers in-process: a real
//! network between the parts. Downstream clusters are separate containers that can be cut
//! off and brought back, the controller is a container that can be stopped and restarted,
//! and every call crosses a network stack, as in a real Fleet installation; nothing has to
//! be pulled, so it runs wherever a Docker engine does.
//!
//! - [`engine`]: which engine, whether its API is new enough, a negotiated client;
//! - [`images`]: the images, and the check that they exist before anything starts;
//! - [`run`]: the run id, labels and names;
//! - [`containers`]: what each container is (command lines, ports, files), unit-tested;
//! - [`environment`]: starting them, their endpoints and kubeconfigs, faults, teardown;
//! - [`network`]: the private network and partitions;
//! - [`kubeconfig`]: one kubeconfig per vantage point (host, network, inside the cluster);
//! - [`cleanup`]: the label sweeper for whatever a crash leaves behind.

pub mod cleanup;
pub mod containers;
pub mod engine;
pub mod environment;
pub mod images;
pub mod kubeconfig;
pub mod network;
mod provider;
pub mod run;

use std::time::Duration;

pub use environment::{
    ControllerContainer, DockerEnvironment, DockerSettings, DownstreamCluster, Endpoint,
    GitServerContainer, ManagementCluster,
};
pub use provider::{DockerEnv, DockerProvider, controller_args};
pub use run::{ClusterName, Role, RunId};

/// Why the docker provider could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No usable engine.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// Images are missing.
    #[error(transparent)]
    Images(#[from] images::ImageError),
    /// Creating, connecting or disconnecting the network failed.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// The label sweep failed.
    #[error(transparent)]
    Cleanup(#[from] cleanup::CleanupError),
    /// A container did not start or become ready.
    // The output goes before the cause, which error_text appends.
    #[error(
        "container {container} did not start\n--- its last output ---\n{output}\n--- why it did not start"
    )]
    Start {
        /// The container.
        container: String,
        /// testcontainers' error.
        source: Box<fleet_api::error::Foreign<testcontainers::TestcontainersError>>,
        /// Its last lines of output.
        output: String,
    },
    /// Stopping or starting a container failed.
    #[error("cannot {action} container {container}")]
    Container {
        /// What was being done.
        action: &'static str,
        /// The container.
        container: String,
        /// testcontainers' error.
        source: Box<fleet_api::error::Foreign<testcontainers::TestcontainersError>>,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}\n--- last output ---\n{output}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
        /// The container's last lines of output.
        output: String,
    },
    /// A kubeconfig read from a container is unusable.
    #[error("kubeconfig of {container}")]
    Kubeconfig {
        /// The container.
        container: String,
        /// Why.
        source: kubeconfig::KubeconfigError,
    },
    /// No free local port.
    #[error("cannot find a free port on 127.0.0.1")]
    Port(#[source] std::io::Error),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An HTTP client could not be built.
    #[error("cannot build an HTTP client")]
    Http(#[source] fleet_api::error::Foreign<reqwest::Error>),
    /// A component is needed that was not started.
    #[error("{0} is not started")]
    NotStarted(&'static str),
    /// A component was started twice.
    #[error("{0} is already started")]
    AlreadyStarted(&'static str),
    /// No downstream cluster has this name.
    #[error("no downstream cluster named {0:?} in this run")]
    UnknownCluster(String),
    /// A downstream cluster with this name exists.
    #[error("a downstream cluster named {0:?} already exists in this run")]
    DuplicateCluster(String),
    /// Teardown left something behind (named).
    #[error("teardown incomplete: {0}")]
    Teardown(String),
}
