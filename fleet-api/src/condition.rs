//! The status condition every kind carries.
//!
//! It is its own module because all five kinds embed it and the controller, the harness and
//! Fleet read it the same way (wrangler's `GenericCondition`, not `metav1.Condition`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A status condition as Fleet writes it (wrangler's `genericcondition.GenericCondition`).
///
/// Fleet's conditions carry string timestamps and a `lastUpdateTime`, unlike
/// `metav1.Condition`, so this is not k8s-openapi's `Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type: `Ready`, `Accepted`, `GitPolling`, `Reconciling`, `Stalled`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason for the last transition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339 time of the last update of this condition.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_update_time: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_transition_time: String,
}
