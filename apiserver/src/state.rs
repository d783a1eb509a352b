//! [`ServerState`]: what every request handler and background task of one server shares.
//!
//! One value per running server, behind an `Arc`, so the HTTP handlers, the watch streams
//! and the housekeeping task (garbage collection, finalizers) see the same store, registry,
//! metrics and faults without globals.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::faults::FaultHandle;
use crate::metrics::Metrics;
use crate::registry::{Registry, ResourceInfo};
use crate::store::Store;

/// The state of one running server, shared by its handlers and background tasks.
#[derive(Debug)]
pub struct ServerState {
    /// Start settings.
    pub config: Config,
    /// Objects.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// Request metrics.
    pub metrics: Metrics,
    /// Faults in force.
    pub faults: FaultHandle,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Namespaces being deleted, by name, with their uid.
    pub terminating_namespaces: Mutex<HashMap<String, String>>,
    /// Resources whose CRD is being deleted (`plural.group` → CRD uid).
    pub terminating_crds: Mutex<HashMap<String, String>>,
}

impl ServerState {
    /// Any served version of a resource, for internal writes that need its rules.
    pub fn info_for(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        let versions = self.registry.versions(group)?;
        versions
            .iter()
            .find_map(|v| self.registry.lookup(group, v, plural))
    }
}
