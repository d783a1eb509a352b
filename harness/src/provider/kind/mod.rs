//! The `kind` provider: real Kubernetes clusters made with `kind create cluster`, and a real
//! Gitea started with testcontainers-modules' gitea module.
//!
//! Why it exists beside `docker`: this is where the bundled controller (or upstream Fleet,
//! with `--controller external`) meets a real kube-apiserver, real RBAC and a real Gitea,
//! which is what the nightly scale job runs. It needs `kind`, a kind node image and the
//! Gitea image, none of which can be fetched on a machine without a registry; so
//! [`preflight`] checks all of them first and stops at once with what is missing and how to
//! get it.
//!
//! - [`options`]: the `FLEETBENCH_KIND_*` variables;
//! - [`config`]: the `kind-configs/` files rendered per cluster;
//! - [`command`]: the `kind` command lines, built in one place and run with a bound;
//! - [`preflight`]: `kind` on PATH, node and Gitea images present (and `helm`, Fleet's
//!   charts and images to side-load, when asked for);
//! - [`network`]: kind's Docker network and its gateway, where the git proxy listens;
//! - [`gitea`]: Gitea's container, the harness's token, clone URLs from the nodes;
//! - [`fleet`]: upstream Fleet installed with Helm (`--controller external`);
//! - [`downstream`]: downstream kind clusters handed to Clusters as kubeconfig Secrets;
//! - [`environment`]: creating and deleting a whole run.

pub mod command;
pub mod config;
pub mod downstream;
pub mod environment;
pub mod fleet;
pub mod gitea;
pub mod network;
pub mod options;
pub mod preflight;
mod provider;

use std::path::PathBuf;

pub use environment::{KindCluster, KindClusters, KindEnvironment, KindSettings};
pub use provider::{KindEnv, KindProvider, bundled_beside_fleet, external_without_fleet};

/// Why the kind provider could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    /// No usable Docker engine (kind needs one too).
    #[error(transparent)]
    Engine(#[from] crate::provider::docker::engine::EngineError),
    /// `kind` or an image is missing.
    #[error(transparent)]
    Preflight(#[from] preflight::PreflightError),
    /// A config could not be rendered.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A `kind` command failed.
    #[error(transparent)]
    Command(#[from] command::CommandError),
    /// Gitea could not be started or set up.
    #[error(transparent)]
    Gitea(#[from] gitea::GiteaError),
    /// A `FLEETBENCH_KIND_*` variable cannot be used.
    #[error("the kind provider's settings")]
    Options(#[from] options::OptionsError),
    /// kind's network gateway (where the git proxy listens) is unknown.
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// Upstream Fleet could not be installed.
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Teardown left something behind.
    #[error("kind teardown incomplete: {0}")]
    Teardown(String),
}
