//! Status computation: pure functions from cached objects (and facts the reconcilers
//! reported) to the status Fleet would show.
//!
//! Everything here is deterministic — lists sorted, conditions only touched when they change
//! — so recomputing an unchanged status yields an identical value and the writer can skip it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use crate::bundle::targeting::CompiledGroup;
use crate::store::{BundleEntry, DeploymentEntry};
use fleet_api::{
    AgentStatus, BundleDisplay, BundleState, BundleStatus, BundleSummary, Cluster, ClusterDisplay,
    ClusterGroup, ClusterGroupDisplay, ClusterGroupStatus, ClusterStatus, Condition, GitRepo,
    GitRepoDisplay, GitRepoStatus, ModifiedStatus, NonReadyResource, NonReadyStatus,
    ResourceCounts,
};

use super::conditions;

/// At most this many non-ready resources are listed in a summary (Fleet's limit).
const MAX_NON_READY: usize = 10;

/// What the bundle reconciler found that the status needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BundleFacts {
    /// Generation the reconcile acted on.
    pub observed_generation: i64,
    /// Targeted clusters without a BundleDeployment yet (`namespace/name`), sorted.
    pub pending: Vec<String>,
    /// Targeting error (invalid selector), shown in the Ready condition.
    pub error: Option<String>,
    /// BundleDeployments created by the last reconcile.
    pub newly_created: i32,
}

/// What the poller saw.
#[derive(Clone, Debug, PartialEq)]
pub struct PollFacts {
    /// Head commit of the followed branch (`None` after an error).
    pub commit: Option<String>,
    /// When the poll started.
    pub at: Time,
    /// Why the poll failed.
    pub error: Option<String>,
}

/// What the last webhook announced.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookFacts {
    /// Announced commit.
    pub commit: String,
    /// When it arrived.
    pub at: Time,
}

/// What the last sync did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncFacts {
    /// Commit whose Bundles are in place (last successful sync).
    pub commit: Option<String>,
    /// Generation the sync acted on.
    pub observed_generation: i64,
    /// `forceSyncGeneration` the sync acted on.
    pub update_generation: i64,
    /// Why the sync failed.
    pub error: Option<String>,
    /// A sync is running.
    pub in_progress: bool,
    /// Condition reason for `error` (`Error` when unset): says which kind of problem, e.g.
    /// `InvalidPollingInterval`, so tools need not parse messages.
    pub reason: Option<&'static str>,
    /// What the commit was fetched for ([`crate::gitrepo::source_of`]): while it and the
    /// known remote commit stay the same, a sync reads the cached commit instead of
    /// fetching again.
    pub source: Option<String>,
}

/// Facts about a GitRepo from the poller, the webhook and the sync.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GitRepoFacts {
    /// Last poll.
    pub poll: Option<PollFacts>,
    /// Last webhook.
    pub webhook: Option<WebhookFacts>,
    /// Last sync.
    pub sync: Option<SyncFacts>,
    /// Set when the GitRepo's `pollingInterval` was raised to the controller's floor.
    pub polling_notice: Option<String>,
}

/// What the agent reported about a cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterFacts {
    /// When the agent last reported.
    pub last_seen: Option<Time>,
}

/// A summary entry to add.
struct Counted<'a> {
    name: String,
    state: BundleState,
    message: &'a str,
    modified: Option<&'a [ModifiedStatus]>,
    non_ready: Option<&'a [NonReadyStatus]>,
}

fn summarise<'a>(entries: impl IntoIterator<Item = Counted<'a>>) -> BundleSummary {
    let mut summary = BundleSummary::default();
    let mut non_ready = Vec::new();
    for entry in entries {
        summary.count(entry.state);
        if entry.state != BundleState::Ready && non_ready.len() < MAX_NON_READY {
            non_ready.push(NonReadyResource {
                name: Some(entry.name),
                bundle_state: Some(entry.state.as_str().to_owned()),
                message: Some(entry.message.to_owned()).filter(|m| !m.is_empty()),
                modified_status: entry.modified.map(<[_]>::to_vec),
                non_ready_status: entry.non_ready.map(<[_]>::to_vec),
            });
        }
    }
    if !non_ready.is_empty() {
        summary.non_ready_resources = Some(non_ready);
    }
    summary
}

fn counted<'a>(name: String, bd: &'a DeploymentEntry) -> Counted<'a> {
    Counted {
        name,
        state: bd.state(),
        message: &bd.status.message,
        modified: bd.status.modified.as_deref().map(Vec::as_slice),
        non_ready: bd.status.non_ready.as_deref().map(Vec::as_slice),
    }
}

fn object_name(
    api_version: Option<&str>,
    kind: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> String {
    let kind = kind.unwrap_or_default().to_lowercase();
    let name = name.unwrap_or_default();
    let group = api_version
        .filter(|v| !v.is_empty())
        .map(|v| v.split('/').next().unwrap_or_default());
    let qualified = match group {
        Some(group) => format!("{kind}.{group}"),
        None => kind,
    };
    match namespace.filter(|n| !n.is_empty()) {
        Some(ns) => format!("{qualified} {ns}/{name}"),
        None => format!("{qualified} {name}"),
    }
}

fn modified_text(m: &ModifiedStatus) -> String {
    let name = object_name(
        m.api_version.as_deref(),
        m.kind.as_deref(),
        m.namespace.as_deref(),
        m.name.as_deref(),
    );
    if m.missing {
        if m.exist {
            format!("{name} is not owned by us")
        } else {
            format!("{name} missing")
        }
    } else if m.delete {
        format!("{name} extra")
    } else {
        format!("{name} modified {}", m.patch.as_deref().unwrap_or_default())
    }
}

fn non_ready_text(n: &NonReadyStatus) -> String {
    let name = object_name(
        n.api_version.as_deref(),
        n.kind.as_deref(),
        n.namespace.as_deref(),
        n.name.as_deref(),
    );
    let mut text = format!("{name} [{}]", n.summary.state);
    if n.summary.error {
        text.push_str(" error");
    }
    if n.summary.transitioning {
        text.push_str(" transitioning");
    }
    for message in &n.summary.message {
        text.push(' ');
        text.push_str(message);
    }
    text
}

/// Fleet's `ReadyMessage`: for each non-ready state with a count, the first listed resource
/// in that state, as `State(count) [Kind name: message]`, plus up to four of its drifted or
/// non-ready objects; sorted and joined with `; `. Empty when everything is ready.
pub fn ready_message(summary: &BundleSummary, kind: &str) -> String {
    let mut messages = Vec::new();
    for (state, count) in [
        (BundleState::OutOfSync, summary.out_of_sync),
        (BundleState::NotReady, summary.not_ready),
        (BundleState::WaitApplied, summary.wait_applied),
        (BundleState::ErrApplied, summary.err_applied),
        (BundleState::Pending, summary.pending),
        (BundleState::Modified, summary.modified),
    ] {
        if count <= 0 {
            continue;
        }
        let first = summary
            .non_ready_resources
            .iter()
            .flatten()
            .find(|r| r.bundle_state.as_deref() == Some(state.as_str()));
        let Some(resource) = first else { continue };
        let name = resource.name.as_deref().unwrap_or_default();
        match resource.message.as_deref().filter(|m| !m.is_empty()) {
            Some(message) => messages.push(format!(
                "{}({count}) [{kind} {name}: {message}]",
                state.as_str()
            )),
            None => messages.push(format!("{}({count}) [{kind} {name}]", state.as_str())),
        }
        for m in resource.modified_status.iter().flatten().take(4) {
            messages.push(modified_text(m));
        }
        for n in resource.non_ready_status.iter().flatten().take(4) {
            messages.push(non_ready_text(n));
        }
    }
    messages.sort();
    messages.join("; ")
}

/// Fleet's `SetReadyConditions`: Ready is True exactly when the ready message is empty.
fn set_ready_from_summary(conds: &mut Vec<Condition>, summary: &BundleSummary, kind: &str) {
    let message = ready_message(summary, kind);
    if message.is_empty() {
        conditions::set(conds, conditions::READY, true, "", "");
    } else {
        conditions::set(conds, conditions::READY, false, "", &message);
    }
}

fn add_counts(total: &mut ResourceCounts, deployments: &[Arc<DeploymentEntry>]) {
    for bd in deployments {
        total.add(&bd.status.resource_counts);
    }
}

/// The status of a Bundle: its targets' states (existing deployments plus pending targets).
pub fn bundle_status(
    entry: &BundleEntry,
    deployments: &[Arc<DeploymentEntry>],
    facts: Option<&BundleFacts>,
) -> BundleStatus {
    let mut sorted: Vec<&Arc<DeploymentEntry>> = deployments.iter().collect();
    sorted.sort_by(|a, b| a.cluster.cmp(&b.cluster).then(a.key.cmp(&b.key)));
    let pending = facts.map(|f| f.pending.as_slice()).unwrap_or_default();
    let entries = sorted
        .iter()
        .map(|bd| {
            let cluster = bd
                .cluster
                .as_ref()
                .map_or_else(|| bd.key.namespace.clone(), ToString::to_string);
            counted(cluster, bd)
        })
        .chain(pending.iter().map(|cluster| Counted {
            name: cluster.clone(),
            state: BundleState::Pending,
            message: "",
            modified: None,
            non_ready: None,
        }));
    let summary = summarise(entries);
    let mut status = entry.status.clone().unwrap_or_default();
    match facts.and_then(|f| f.error.as_deref()) {
        Some(error) => conditions::set(
            &mut status.conditions,
            conditions::READY,
            false,
            "Error",
            error,
        ),
        None => set_ready_from_summary(&mut status.conditions, &summary, "Cluster"),
    }
    status.display = BundleDisplay {
        ready_clusters: Some(format!("{}/{}", summary.ready, summary.desired_ready)),
        state: summary
            .non_ready_resources
            .iter()
            .flatten()
            .filter_map(|r| r.bundle_state.as_deref())
            .filter_map(parse_state)
            .max_by_key(|s| s.rank())
            .map(|s| s.as_str().to_owned()),
    };
    status.summary = summary;
    status.observed_generation =
        facts.map_or(status.observed_generation, |f| f.observed_generation);
    status.newly_created = facts.map_or(0, |f| f.newly_created);
    status.max_unavailable = status.summary.desired_ready;
    status.unavailable = deployments
        .iter()
        .filter(|bd| bd.status.applied_deployment_id != bd.deployment_id || !bd.status.ready)
        .count() as i32;
    status.resources_sha256_sum = entry.resources_sha256.clone();
    status
}

fn parse_state(s: &str) -> Option<BundleState> {
    [
        BundleState::Ready,
        BundleState::NotReady,
        BundleState::Pending,
        BundleState::OutOfSync,
        BundleState::Modified,
        BundleState::WaitApplied,
        BundleState::ErrApplied,
    ]
    .into_iter()
    .find(|state| state.as_str() == s)
}

/// The status of a GitRepo: facts from polls, webhooks and syncs over the observed status,
/// aggregates from its BundleDeployments, errors from its Bundles.
pub fn gitrepo_status(
    repo: &GitRepo,
    facts: &GitRepoFacts,
    bundles: &[Arc<BundleEntry>],
    deployments: &[Arc<DeploymentEntry>],
) -> GitRepoStatus {
    let mut status = repo.status.clone().unwrap_or_default();
    let mut error: Option<String> = None;
    let mut reason = "Error";
    if let Some(poll) = &facts.poll {
        if let Some(commit) = &poll.commit {
            status.polling_commit = commit.clone();
        }
        status.last_polling_triggered = Some(poll.at.clone());
        error = poll.error.clone();
    }
    // One write per condition: setting it twice per computation would move its timestamps
    // on every recompute.
    match (
        facts.poll.as_ref().and_then(|p| p.error.as_deref()),
        &facts.polling_notice,
    ) {
        (Some(poll_error), _) => conditions::set(
            &mut status.conditions,
            conditions::GIT_POLLING,
            false,
            "Error",
            poll_error,
        ),
        (None, Some(notice)) => conditions::set(
            &mut status.conditions,
            conditions::GIT_POLLING,
            true,
            "PollingIntervalRaised",
            notice,
        ),
        (None, None) if facts.poll.is_some() => {
            conditions::set(
                &mut status.conditions,
                conditions::GIT_POLLING,
                true,
                "",
                "",
            );
        }
        (None, None) => {}
    }
    if let Some(webhook) = &facts.webhook {
        status.webhook_commit = webhook.commit.clone();
        status.last_webhook_time = Some(webhook.at.clone());
    }
    if let Some(sync) = &facts.sync {
        if let Some(commit) = &sync.commit {
            status.commit = commit.clone();
        }
        status.observed_generation = sync.observed_generation;
        status.update_generation = sync.update_generation;
        status.git_job_status = match (&sync.error, sync.in_progress) {
            (Some(_), _) => "Failed",
            (None, true) => "InProgress",
            (None, false) => "Current",
        }
        .to_owned();
        let sync_reason = sync.reason.unwrap_or("Error");
        match sync.error.as_deref() {
            Some(message) => conditions::set(
                &mut status.conditions,
                conditions::ACCEPTED,
                false,
                sync_reason,
                message,
            ),
            None => conditions::set(&mut status.conditions, conditions::ACCEPTED, true, "", ""),
        }
        conditions::set(
            &mut status.conditions,
            conditions::RECONCILING,
            sync.in_progress,
            "",
            "",
        );
        if sync.error.is_some() {
            error = sync.error.clone();
            reason = sync_reason;
        }
    }
    match &error {
        Some(message) => conditions::set(
            &mut status.conditions,
            conditions::STALLED,
            true,
            reason,
            message,
        ),
        None => conditions::set(&mut status.conditions, conditions::STALLED, false, "", ""),
    }

    let mut sorted: Vec<&Arc<DeploymentEntry>> = deployments.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let summary = summarise(sorted.iter().map(|bd| counted(bd.key.name.clone(), bd)));
    let mut per_cluster: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut worst: Option<(BundleState, &str)> = None;
    for bd in &sorted {
        let state = bd.state();
        let cluster = bd
            .cluster
            .as_ref()
            .map_or_else(|| bd.key.namespace.clone(), ToString::to_string);
        let slot = per_cluster.entry(cluster).or_default();
        slot.0 += 1;
        if state == BundleState::Ready {
            slot.1 += 1;
        }
        if worst.is_none_or(|(w, _)| state.rank() > w.rank()) {
            worst = Some((state, bd.status.message.as_str()));
        }
    }
    status.desired_ready_clusters = per_cluster.len() as i32;
    status.ready_clusters = per_cluster.values().filter(|(n, ready)| n == ready).count() as i32;
    let mut counts = ResourceCounts::default();
    add_counts(&mut counts, deployments);
    status.resource_counts = counts;

    let (state, message) = match worst {
        Some((BundleState::Ready, _)) | None => (String::new(), String::new()),
        Some((state, message)) => (state.as_str().to_owned(), message.to_owned()),
    };
    let mut display = GitRepoDisplay {
        ready_bundle_deployments: format!("{}/{}", summary.ready, summary.desired_ready),
        error: !message.is_empty(),
        state,
        message,
    };
    if !status.git_job_status.is_empty() && status.git_job_status != "Current" {
        display.state = "GitUpdating".to_owned();
    }
    if let Some(error) = &error {
        display.error = true;
        display.message = error.clone();
    }
    status.display = display;

    // Ready: a git error wins; then a Bundle that failed (e.g. targeting); then the summary.
    let bundle_error = bundles.iter().filter_map(|b| {
        b.status
            .as_ref()
            .and_then(|s| conditions::get(&s.conditions, conditions::READY))
            .filter(|c| c.status == "False" && c.reason == "Error")
            .map(|c| c.message.clone())
    });
    let mut sorted_bundle_errors: Vec<String> = bundle_error.collect();
    sorted_bundle_errors.sort();
    if let Some(message) = &error {
        conditions::set(
            &mut status.conditions,
            conditions::READY,
            false,
            reason,
            message,
        );
    } else if let Some(message) = sorted_bundle_errors.first() {
        conditions::set(
            &mut status.conditions,
            conditions::READY,
            false,
            "Error",
            message,
        );
    } else {
        set_ready_from_summary(&mut status.conditions, &summary, "Bundle");
    }
    status.summary = summary;
    status
}

/// A cluster's summary and resource counts over the BundleDeployments in its namespace.
pub fn cluster_summary(deployments: &[Arc<DeploymentEntry>]) -> (BundleSummary, ResourceCounts) {
    let mut sorted: Vec<&Arc<DeploymentEntry>> = deployments.iter().collect();
    sorted.sort_by(|a, b| a.bundle.cmp(&b.bundle));
    let summary = summarise(sorted.iter().map(|bd| counted(bd.bundle.to_string(), bd)));
    let mut counts = ResourceCounts::default();
    add_counts(&mut counts, deployments);
    (summary, counts)
}

/// The status of a Cluster.
pub fn cluster_status(
    cluster: &Cluster,
    namespace: &str,
    facts: Option<&ClusterFacts>,
    deployments: &[Arc<DeploymentEntry>],
) -> ClusterStatus {
    let mut status = cluster.status.clone().unwrap_or_default();
    status.namespace = namespace.to_owned();
    let (summary, counts) = cluster_summary(deployments);
    let mut repos: BTreeMap<&str, bool> = BTreeMap::new();
    for bd in deployments {
        if let Some(repo) = bd.repo.as_deref() {
            let ready = repos.entry(repo).or_insert(true);
            *ready &= bd.state() == BundleState::Ready;
        }
    }
    status.desired_ready_git_repos = repos.len() as i32;
    status.ready_git_repos = repos.values().filter(|r| **r).count() as i32;
    status.display = ClusterDisplay {
        ready_bundles: format!("{}/{}", summary.ready, summary.desired_ready),
        state: summary.worst_state().map(|s| s.as_str().to_owned()),
    };
    set_ready_from_summary(&mut status.conditions, &summary, "Bundle");
    conditions::set(&mut status.conditions, conditions::PROCESSED, true, "", "");
    if let Some(seen) = facts.and_then(|f| f.last_seen.clone()) {
        status.agent = AgentStatus {
            last_seen: Some(seen),
            namespace: status.agent.namespace.clone(),
        };
    }
    status.summary = summary;
    status.resource_counts = counts;
    status
}

/// The status of a ClusterGroup, from its member clusters' summaries.
pub fn group_status(
    group: &ClusterGroup,
    clusters: &[(Arc<Cluster>, BundleSummary, ResourceCounts)],
) -> ClusterGroupStatus {
    let compiled = CompiledGroup::compile(group);
    let mut status = group.status.clone().unwrap_or_default();
    let mut summary = BundleSummary::default();
    let mut counts = ResourceCounts::default();
    let mut non_ready = BTreeSet::new();
    let mut members = 0;
    for (cluster, cluster_summary, cluster_counts) in clusters {
        let labels = cluster.metadata.labels.clone().unwrap_or_default();
        if !compiled.contains(&labels) {
            continue;
        }
        members += 1;
        summary.add_counts(cluster_summary);
        counts.add(cluster_counts);
        if cluster_summary.ready != cluster_summary.desired_ready {
            non_ready.insert(cluster.metadata.name.clone().unwrap_or_default());
        }
    }
    status.cluster_count = members;
    status.non_ready_cluster_count = non_ready.len() as i32;
    status.non_ready_clusters = if non_ready.is_empty() {
        None
    } else {
        Some(non_ready.iter().take(MAX_NON_READY).cloned().collect())
    };
    status.display = ClusterGroupDisplay {
        ready_clusters: Some(format!("{}/{}", members - non_ready.len() as i32, members)),
        ready_bundles: Some(format!("{}/{}", summary.ready, summary.desired_ready)),
        state: summary.worst_state().map(|s| s.as_str().to_owned()),
    };
    let message = if non_ready.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = non_ready
            .iter()
            .take(MAX_NON_READY)
            .map(String::as_str)
            .collect();
        format!(
            "NotReady({}) [Cluster {}]",
            non_ready.len(),
            names.join(", ")
        )
    };
    conditions::set(
        &mut status.conditions,
        conditions::READY,
        message.is_empty(),
        "",
        &message,
    );
    status.summary = summary;
    status.resource_counts = counts;
    status
}

/// RFC 7386 JSON merge patch turning `old` into `new` (`None` when they are equal): changed
/// fields are set, removed fields are nulled, objects recurse, anything else is replaced.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            let mut patch = serde_json::Map::new();
            for (key, new_value) in new_map {
                match old_map.get(key) {
                    Some(old_value) => {
                        if let Some(sub) = merge_diff(old_value, new_value) {
                            patch.insert(key.clone(), sub);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), new_value.clone());
                    }
                }
            }
            for key in old_map.keys() {
                if !new_map.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            if patch.is_empty() {
                None
            } else {
                Some(Value::Object(patch))
            }
        }
        _ if old == new => None,
        // A non-object replacing an object (or vice versa) is set whole; nulls inside a new
        // object value would mean "delete" in a merge patch, and our statuses never hold any.
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::store::{DeploymentStatus, Key};
    use fleet_api::{BundleSpec, ClusterGroupSpec, ClusterSpec, GitRepoSpec};

    fn bd(bundle: &str, cluster: &str, repo: &str, ready: bool) -> Arc<DeploymentEntry> {
        Arc::new(DeploymentEntry {
            key: Key::new(format!("cluster-{cluster}"), bundle),
            uid: String::new(),
            resource_version: "1".into(),
            bundle: Key::new("fleet-default", bundle),
            repo: Some(repo.into()),
            cluster: Some(Key::new("fleet-default", cluster)),
            content_hash: 0,
            deployment_id: "s-1:a".into(),
            staged_deployment_id: "s-1:a".into(),
            paused: false,
            deleting: false,
            status: DeploymentStatus {
                applied_deployment_id: if ready { "s-1:a".into() } else { "".into() },
                ready,
                non_modified: ready,
                resource_counts: ResourceCounts {
                    ready: i32::from(ready),
                    desired_ready: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
        })
    }

    fn bundle_entry() -> BundleEntry {
        let mut bundle = fleet_api::Bundle::new("b1", BundleSpec::default());
        bundle.metadata.namespace = Some("fleet-default".into());
        bundle.metadata.generation = Some(3);
        BundleEntry::from_bundle(&bundle)
    }

    #[test]
    fn bundle_status_counts_deployments_and_pending_targets() {
        let deployments = vec![bd("b1", "c1", "r", true), bd("b1", "c2", "r", false)];
        let facts = BundleFacts {
            observed_generation: 3,
            pending: vec!["fleet-default/c3".into()],
            ..Default::default()
        };
        let status = bundle_status(&bundle_entry(), &deployments, Some(&facts));
        assert_eq!(status.summary.ready, 1);
        assert_eq!(status.summary.wait_applied, 1);
        assert_eq!(status.summary.pending, 1);
        assert_eq!(status.summary.desired_ready, 3);
        assert_eq!(status.display.ready_clusters.as_deref(), Some("1/3"));
        assert_eq!(status.display.state.as_deref(), Some("WaitApplied"));
        assert_eq!(status.observed_generation, 3);
        let ready = conditions::get(&status.conditions, conditions::READY).unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message,
            "Pending(1) [Cluster fleet-default/c3]; WaitApplied(1) [Cluster fleet-default/c2]"
        );
    }

    #[test]
    fn recomputing_an_unchanged_status_gives_an_identical_value() {
        let deployments = vec![bd("b1", "c1", "r", true)];
        let facts = BundleFacts::default();
        let mut entry = bundle_entry();
        let first = bundle_status(&entry, &deployments, Some(&facts));
        entry.status = Some(first.clone());
        let second = bundle_status(&entry, &deployments, Some(&facts));
        assert_eq!(first, second);
        let a = serde_json::to_value(&first).unwrap();
        let b = serde_json::to_value(&second).unwrap();
        assert_eq!(merge_diff(&a, &b), None);
    }

    #[test]
    fn gitrepo_status_aggregates_clusters_and_reports_errors() {
        let mut repo = GitRepo::new(
            "r",
            GitRepoSpec {
                repo: "http://git/r".into(),
                ..Default::default()
            },
        );
        repo.metadata.namespace = Some("fleet-default".into());
        let deployments = vec![
            bd("r-a", "c1", "r", true),
            bd("r-b", "c1", "r", false),
            bd("r-a", "c2", "r", true),
        ];
        let facts = GitRepoFacts {
            sync: Some(SyncFacts {
                commit: Some("abc".into()),
                observed_generation: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = gitrepo_status(&repo, &facts, &[], &deployments);
        assert_eq!(status.commit, "abc");
        assert_eq!(status.desired_ready_clusters, 2);
        assert_eq!(status.ready_clusters, 1);
        assert_eq!(status.display.ready_bundle_deployments, "2/3");
        assert_eq!(status.display.state, "WaitApplied");
        assert_eq!(status.git_job_status, "Current");
        assert_eq!(status.resource_counts.desired_ready, 3);
        assert_eq!(status.resource_counts.ready, 2);
        let accepted = conditions::get(&status.conditions, conditions::ACCEPTED).unwrap();
        assert_eq!(accepted.status, "True");

        let failing = GitRepoFacts {
            poll: Some(PollFacts {
                commit: None,
                at: Time(jiff::Timestamp::UNIX_EPOCH),
                error: Some("cannot reach http://git/r".into()),
            }),
            ..facts
        };
        let status = gitrepo_status(&repo, &failing, &[], &deployments);
        let polling = conditions::get(&status.conditions, conditions::GIT_POLLING).unwrap();
        assert_eq!(
            (polling.status.as_str(), polling.message.as_str()),
            ("False", "cannot reach http://git/r")
        );
        let stalled = conditions::get(&status.conditions, conditions::STALLED).unwrap();
        assert_eq!(stalled.status, "True");
        let ready = conditions::get(&status.conditions, conditions::READY).unwrap();
        assert_eq!(ready.message, "cannot reach http://git/r");
        assert!(status.display.error);
        assert_eq!(status.commit, "abc", "an error keeps the last good commit");
    }

    #[test]
    fn refused_specs_and_raised_intervals_show_their_reason() {
        let mut repo = GitRepo::new("r", GitRepoSpec::default());
        repo.metadata.namespace = Some("fleet-default".into());
        let refused = GitRepoFacts {
            sync: Some(SyncFacts {
                error: Some("spec.pollingInterval \"abc\" is invalid: ...".into()),
                reason: Some("InvalidPollingInterval"),
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = gitrepo_status(&repo, &refused, &[], &[]);
        for type_ in [conditions::READY, conditions::STALLED, conditions::ACCEPTED] {
            let c = conditions::get(&status.conditions, type_).unwrap();
            assert_eq!(c.reason, "InvalidPollingInterval", "{type_}");
            assert!(
                c.message.contains("spec.pollingInterval \"abc\""),
                "{type_}"
            );
        }
        let raised = GitRepoFacts {
            poll: Some(PollFacts {
                commit: Some("abc".into()),
                at: Time(jiff::Timestamp::UNIX_EPOCH),
                error: None,
            }),
            polling_notice: Some("raised to 15s".into()),
            ..Default::default()
        };
        let first = gitrepo_status(&repo, &raised, &[], &[]);
        let polling = conditions::get(&first.conditions, conditions::GIT_POLLING).unwrap();
        assert_eq!(
            (
                polling.status.as_str(),
                polling.reason.as_str(),
                polling.message.as_str()
            ),
            ("True", "PollingIntervalRaised", "raised to 15s")
        );
        repo.status = Some(first.clone());
        assert_eq!(gitrepo_status(&repo, &raised, &[], &[]), first, "stable");
    }

    #[test]
    fn cluster_and_group_status() {
        let mut cluster = Cluster::new("c1", ClusterSpec::default());
        cluster.metadata.namespace = Some("fleet-default".into());
        cluster.metadata.labels = Some(BTreeMap::from([("env".to_owned(), "prod".to_owned())]));
        let deployments = vec![bd("r-a", "c1", "r", true), bd("r-b", "c1", "r2", false)];
        let status = cluster_status(&cluster, "cluster-ns", None, &deployments);
        assert_eq!(status.namespace, "cluster-ns");
        assert_eq!(status.display.ready_bundles, "1/2");
        assert_eq!(status.desired_ready_git_repos, 2);
        assert_eq!(status.ready_git_repos, 1);

        let (summary, counts) = cluster_summary(&deployments);
        let group = ClusterGroup::new(
            "prod",
            ClusterGroupSpec {
                selector: Some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                        match_labels: Some(BTreeMap::from([("env".to_owned(), "prod".to_owned())])),
                        ..Default::default()
                    },
                ),
            },
        );
        let g = group_status(&group, &[(Arc::new(cluster), summary, counts)]);
        assert_eq!(g.cluster_count, 1);
        assert_eq!(g.non_ready_cluster_count, 1);
        assert_eq!(
            g.non_ready_clusters.as_deref(),
            Some(&["c1".to_owned()][..])
        );
        assert_eq!(g.display.ready_clusters.as_deref(), Some("0/1"));
        assert_eq!(g.display.ready_bundles.as_deref(), Some("1/2"));
    }

    #[test]
    fn merge_diff_sets_changes_and_nulls_removals() {
        let old = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": [1], "d": "same"});
        let new = json!({"a": 2, "b": {"x": 1}, "c": [1, 2], "d": "same", "e": true});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"a": 2, "b": {"y": null}, "c": [1, 2], "e": true}))
        );
        assert_eq!(merge_diff(&new, &new), None);
    }
}
