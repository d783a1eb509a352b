//! The bundled controller: GitRepo -> Bundle -> BundleDeployment, as Rancher Fleet does it.
//!
//! The library holds everything; the `fleet-controller` binary is a thin wrapper, so tests
//! and the harness can run the controller in-process with [`Controller::start`]. The
//! fleet.cattle.io types, the CRDs, profiles and legacy switches it acts on are defined once
//! in the `fleet-api` crate, which the harness shares.

pub mod agent;
pub mod bundle;
pub mod cluster;
pub mod clustergroup;
pub mod config;
pub mod controller;
pub mod dispatch;
pub mod gitrepo;
pub mod kubeutil;
pub mod metrics;
pub mod names;
pub mod queue;
pub mod selector;
pub mod server;
pub mod status;
pub mod store;
pub mod webhook;

pub use config::{AgentMode, Config, DelayRange};
pub use controller::Controller;
