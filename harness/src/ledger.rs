//! The API write ledger: per step, the writes made to what a Fleet controller owns, by
//! verb and resource, the object itself (`spec`) apart from its status.
//!
//! A change that makes a controller do more work shows up in its writes long before it
//! shows up in a latency, and the writes say what the work was: a status write per
//! BundleDeployment change, a re-patch of every Bundle on a cluster label. The ledger comes
//! from the API server's own request counters (`apiserver_request_total`, scraped around
//! each step), so it is the same for the bundled controller and for an upstream Fleet.
//! Writes the step itself makes (the harness creating GitRepos, labelling a Cluster,
//! flipping statuses as agents would) are counted too: the API server cannot tell clients
//! apart, and the step's action says what they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{ApiRequestCount, StepResult, SuiteResult};

/// What the ledger calls writes to the object itself rather than a subresource.
pub const SPEC: &str = "spec";

/// Writes of one verb to one part of one resource during a step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerLine {
    /// CREATE, UPDATE, PATCH, APPLY, DELETE, DELETECOLLECTION.
    pub verb: String,
    /// Plural resource (`bundles`).
    pub resource: String,
    /// `spec` for the object itself, else the subresource (`status`).
    pub part: String,
    /// Requests, whatever their answer (a conflict is work too).
    pub count: u64,
}

impl LedgerLine {
    /// `VERB resource/part`, the line's name in reports and comparisons.
    pub fn key(&self) -> String {
        format!("{} {}/{}", self.verb, self.resource, self.part)
    }
}

/// The ledger of a window of request counters: writes to controller-owned resources,
/// summed over response codes, sorted by resource, part and verb.
pub fn of(requests: &[ApiRequestCount]) -> Vec<LedgerLine> {
    let mut totals: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for request in requests
        .iter()
        .filter(|r| r.is_write() && r.is_controller_owned() && r.count > 0)
    {
        let part = if request.subresource.is_empty() {
            SPEC.to_string()
        } else {
            request.subresource.clone()
        };
        *totals
            .entry((request.resource.clone(), part, request.verb.clone()))
            .or_insert(0) += request.count;
    }
    totals
        .into_iter()
        .map(|((resource, part, verb), count)| LedgerLine {
            verb,
            resource,
            part,
            count,
        })
        .collect()
}

/// Total writes in a ledger.
pub fn total(lines: &[LedgerLine]) -> u64 {
    lines.iter().map(|l| l.count).sum()
}

/// Writes to status subresources in a ledger.
pub fn status_writes(lines: &[LedgerLine]) -> u64 {
    lines
        .iter()
        .filter(|l| l.part == "status")
        .map(|l| l.count)
        .sum()
}

/// A step's name in ledgers: `3 commit`.
pub fn step_label(step: &StepResult) -> String {
    format!("{} {}", step.index, step.action)
}

/// One line of the difference between two runs' ledgers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerChange {
    /// The step (`3 commit`).
    pub step: String,
    /// The line (`PATCH bundles/status`).
    pub key: String,
    /// Writes in the base run (0 when it had none).
    pub base: u64,
    /// Writes in the new run.
    pub new: u64,
}

/// The ledger difference of one suite: every line of every step that either run has,
/// steps matched by position and action (a suite file edited in between is not matched).
/// Unchanged lines are left out.
pub fn diff(base: &SuiteResult, new: &SuiteResult) -> Vec<LedgerChange> {
    let mut changes = Vec::new();
    for step in &new.steps {
        let old = base
            .steps
            .iter()
            .find(|s| s.index == step.index && s.action == step.action);
        let mut lines: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for line in &step.ledger {
            lines.entry(line.key()).or_default().1 += line.count;
        }
        for line in old.map(|s| s.ledger.as_slice()).unwrap_or_default() {
            lines.entry(line.key()).or_default().0 += line.count;
        }
        changes.extend(
            lines
                .into_iter()
                .filter(|(_, (b, n))| b != n)
                .map(|(key, (base, new))| LedgerChange {
                    step: step_label(step),
                    key,
                    base,
                    new,
                }),
        );
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;

    fn request(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        code: &str,
        count: u64,
    ) -> ApiRequestCount {
        ApiRequestCount {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            code: code.into(),
            count,
        }
    }

    #[test]
    fn the_ledger_keeps_controller_writes_and_splits_status_from_spec() {
        let fleet = "fleet.cattle.io";
        let lines = of(&[
            request("PATCH", fleet, "bundles", "status", "200", 40),
            request("PATCH", fleet, "bundles", "status", "409", 2),
            request("UPDATE", fleet, "bundles", "", "200", 5),
            request("CREATE", fleet, "bundledeployments", "", "201", 10),
            request("LIST", fleet, "bundles", "", "200", 99),
            request("UPDATE", "coordination.k8s.io", "leases", "", "200", 30),
            // Rancher's own clusters are not Fleet's.
            request("UPDATE", "management.cattle.io", "clusters", "", "200", 7),
            request("CREATE", "", "secrets", "", "201", 1),
        ]);
        let keys: Vec<(String, u64)> = lines.iter().map(|l| (l.key(), l.count)).collect();
        assert_eq!(
            keys,
            [
                ("CREATE bundledeployments/spec".to_string(), 10),
                ("UPDATE bundles/spec".to_string(), 5),
                ("PATCH bundles/status".to_string(), 42),
                ("CREATE secrets/spec".to_string(), 1),
            ]
        );
        assert_eq!(total(&lines), 58);
        assert_eq!(status_writes(&lines), 42);
    }

    #[test]
    fn the_difference_names_the_step_and_the_extra_writes() {
        let base = fixtures::run().suites[0].clone();
        let mut new = base.clone();
        new.steps[0].ledger.push(LedgerLine {
            verb: "UPDATE".into(),
            resource: "bundledeployments".into(),
            part: SPEC.into(),
            count: 27,
        });
        new.steps[0].ledger[0].count += 5;
        let changes = diff(&base, &new);
        let first = &base.steps[0].ledger[0];
        assert_eq!(
            changes,
            [
                LedgerChange {
                    step: "0 label_cluster".into(),
                    key: first.key(),
                    base: first.count,
                    new: first.count + 5,
                },
                LedgerChange {
                    step: "0 label_cluster".into(),
                    key: "UPDATE bundledeployments/spec".into(),
                    base: 0,
                    new: 27,
                },
            ]
        );
        assert!(diff(&base, &base).is_empty(), "no change, no line");
    }
}
