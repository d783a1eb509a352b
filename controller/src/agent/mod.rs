//! Agents: what reports BundleDeployments applied and ready.
//!
//! Fleet's agent runs in each downstream cluster and writes BundleDeployment status on the
//! management cluster. Here, `simulated` plays every cluster in-process (after a configurable
//! delay, failing some on request), so suites can run thousands of clusters on a laptop;
//! `apply` really applies the manifests to downstream API servers from the Clusters'
//! kubeconfig Secrets. Both report through the same status fields Fleet's agent writes.

pub mod apply;
pub mod simulated;

use crate::status::conditions;
use fleet_api::{BundleDeploymentDisplay, BundleDeploymentStatus, Condition, ResourceCounts};

/// The status an agent writes for a successful deployment of `deployment_id`.
pub fn applied_status(
    deployment_id: &str,
    counts: ResourceCounts,
    ready: bool,
    message: &str,
) -> BundleDeploymentStatus {
    let now = conditions::now_rfc3339();
    let cond = |type_: &str, ok: bool, message: &str| Condition {
        type_: type_.to_owned(),
        status: if ok { "True" } else { "False" }.to_owned(),
        reason: String::new(),
        message: message.to_owned(),
        last_update_time: now.clone(),
        last_transition_time: now.clone(),
    };
    BundleDeploymentStatus {
        conditions: vec![
            cond(conditions::READY, ready, message),
            cond("Installed", true, ""),
            cond("Deployed", true, ""),
            cond("Monitored", ready, message),
        ],
        applied_deployment_id: Some(deployment_id.to_owned()),
        ready,
        non_modified: true,
        display: Some(BundleDeploymentDisplay {
            deployed: Some("Yes".to_owned()),
            monitored: Some(if ready {
                "Yes".to_owned()
            } else {
                message.to_owned()
            }),
            state: Some(if ready { "Ready" } else { "NotReady" }.to_owned()),
        }),
        resource_counts: counts,
        ..Default::default()
    }
}

/// The status an agent writes when applying failed: Deployed False with the error, the
/// applied ID unchanged (so Fleet's state is ErrApplied).
pub fn failed_status(previous_applied: Option<String>, error: &str) -> BundleDeploymentStatus {
    let now = conditions::now_rfc3339();
    let cond = |type_: &str| Condition {
        type_: type_.to_owned(),
        status: "False".to_owned(),
        reason: "Error".to_owned(),
        message: error.to_owned(),
        last_update_time: now.clone(),
        last_transition_time: now.clone(),
    };
    BundleDeploymentStatus {
        conditions: vec![cond(conditions::READY), cond("Deployed")],
        applied_deployment_id: previous_applied,
        ready: false,
        non_modified: true,
        display: Some(BundleDeploymentDisplay {
            deployed: Some(format!("Error: {error}")),
            monitored: None,
            state: Some("ErrApplied".to_owned()),
        }),
        ..Default::default()
    }
}
