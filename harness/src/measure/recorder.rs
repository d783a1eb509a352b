//! The watch recorder: every change to Fleet objects, stamped on the harness's clock.
//!
//! Like clusterloader2, latencies are measured from the client side: the time a watch event
//! arrives at the harness, not a timestamp the controller writes. That is what a user
//! observes, it needs nothing from the controller, and it is comparable across providers.
//! The recorder keeps an append-only log (for "when did X first happen after T") and the
//! current state (for "does everything we expect exist now"), and survives watch restarts
//! by diffing the re-list against its state, so deletions during a gap are not lost.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_api::{Bundle, BundleDeployment, Cluster, GitRepo, labels};
use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The kinds the recorder watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// fleet.cattle.io GitRepo.
    GitRepo,
    /// fleet.cattle.io Bundle.
    Bundle,
    /// fleet.cattle.io BundleDeployment.
    BundleDeployment,
    /// fleet.cattle.io Cluster.
    Cluster,
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First seen.
    Added,
    /// Seen before, changed.
    Modified,
    /// Gone.
    Deleted,
}

/// Identity of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// The fields of an object the suites look at.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    /// Object UID.
    pub uid: String,
    /// resourceVersion.
    pub resource_version: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// GitRepo `status.commit`.
    pub commit: String,
    /// GitRepo `status.lastPollingTriggered` (RFC 3339).
    pub last_polling_triggered: Option<String>,
    /// GitRepo `status.display.readyBundleDeployments`.
    pub ready_bundle_deployments: String,
    /// GitRepo or Bundle `status.summary.ready`.
    pub summary_ready: i32,
    /// GitRepo or Bundle `status.summary.desiredReady`.
    pub summary_desired_ready: i32,
    /// Cluster `status.namespace`.
    pub cluster_namespace: String,
    /// BundleDeployment `spec.deploymentID`.
    pub deployment_id: String,
    /// BundleDeployment `status.appliedDeploymentID` (what the agent last applied).
    pub applied_deployment_id: String,
    /// BundleDeployment `status.ready`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set: the object is on its way out (finalizers may
    /// keep it visible for a while), which for a BundleDeployment that should survive is as
    /// bad as its deletion.
    pub deleting: bool,
}

impl Facts {
    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// One observed change.
#[derive(Debug, Clone)]
pub struct Observed {
    /// When the harness received it.
    pub at: Instant,
    /// Which object.
    pub key: ObjectKey,
    /// What happened.
    pub change: Change,
    /// The object's fields after the change (before it, for deletions).
    pub facts: Facts,
}

/// The recorder's memory.
#[derive(Debug, Default)]
pub struct State {
    /// Every change, in arrival order.
    pub log: Vec<Observed>,
    /// Current objects.
    pub objects: HashMap<ObjectKey, Facts>,
    synced: HashSet<Kind>,
    relisting: HashMap<Kind, HashSet<ObjectKey>>,
    /// Watch errors seen (they are retried; kept for diagnostics).
    pub errors: Vec<String>,
}

impl State {
    /// Current objects of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = (&ObjectKey, &Facts)> {
        self.objects.iter().filter(move |(key, _)| key.kind == kind)
    }

    /// A current object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Facts> {
        self.objects.get(&ObjectKey {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// Applies one observation: `deleted` for a deletion, otherwise the object's current
    /// fields. An unchanged resourceVersion is no change; a new UID under a known name is
    /// the old object's deletion followed by the new one's addition, so a delete-and-recreate
    /// is never mistaken for an update, even when the watch missed the deletion.
    pub fn record(&mut self, key: ObjectKey, facts: Facts, deleted: bool, at: Instant) {
        if deleted {
            if let Some(previous) = self.objects.remove(&key) {
                self.log.push(Observed {
                    at,
                    key,
                    change: Change::Deleted,
                    facts: previous,
                });
            }
            return;
        }
        let change = match self.objects.get(&key) {
            Some(previous) if previous.uid == facts.uid => {
                if previous.resource_version == facts.resource_version {
                    return;
                }
                Change::Modified
            }
            Some(_) => {
                // Same name, new object: the old one was deleted in between.
                let previous = self.objects.remove(&key).expect("present");
                self.log.push(Observed {
                    at,
                    key: key.clone(),
                    change: Change::Deleted,
                    facts: previous,
                });
                Change::Added
            }
            None => Change::Added,
        };
        self.objects.insert(key.clone(), facts.clone());
        self.log.push(Observed {
            at,
            key,
            change,
            facts,
        });
    }
}

/// Why waiting on the recorder ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The deadline passed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The run was cancelled (Ctrl-C).
    #[error("interrupted")]
    Cancelled,
}

/// What the watch tasks write and the recorder's readers and waiters read.
struct Recording {
    origin: Instant,
    state: Mutex<State>,
    changed: Notify,
}

/// Watches GitRepos, Bundles, BundleDeployments and Clusters in all namespaces.
pub struct Recorder {
    shared: Arc<Recording>,
    tasks: Vec<JoinHandle<()>>,
}

impl Recorder {
    /// Starts the watches; `origin` is time zero of the suite.
    pub fn start(client: &Client, origin: Instant) -> Recorder {
        let shared = Arc::new(Recording {
            origin,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        let tasks = vec![
            spawn_watch::<GitRepo>(client, Kind::GitRepo, &shared, gitrepo_facts),
            spawn_watch::<Bundle>(client, Kind::Bundle, &shared, bundle_facts),
            spawn_watch::<BundleDeployment>(
                client,
                Kind::BundleDeployment,
                &shared,
                bundledeployment_facts,
            ),
            spawn_watch::<Cluster>(client, Kind::Cluster, &shared, cluster_facts),
        ];
        Recorder { shared, tasks }
    }

    /// Time zero of the suite.
    pub fn origin(&self) -> Instant {
        self.shared.origin
    }

    /// Seconds from time zero to `at`.
    pub fn offset(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.shared.origin)
            .as_secs_f64()
    }

    /// Reads the state.
    pub fn with_state<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        read(&self.shared.state.lock())
    }

    /// Length of the log (a cursor for "events after now").
    pub fn cursor(&self) -> usize {
        self.shared.state.lock().log.len()
    }

    /// Waits until `check` returns `Some`, re-checking after every change, bounded by
    /// `timeout` and `cancel`.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = check(&self.shared.state.lock()) {
                return Ok(value);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => return Err(WaitError::Timeout(timeout)),
                () = cancel.cancelled() => return Err(WaitError::Cancelled),
            }
        }
    }

    /// Waits for the initial list of every watched kind.
    pub async fn wait_synced(
        &self,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), WaitError> {
        self.wait_until(timeout, cancel, |state| {
            (state.synced.len() == 4).then_some(())
        })
        .await
    }

    /// Watch errors seen so far.
    pub fn errors(&self) -> Vec<String> {
        self.shared.state.lock().errors.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn spawn_watch<K>(
    client: &Client,
    kind: Kind,
    shared: &Arc<Recording>,
    facts: fn(&K) -> Facts,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            let at = Instant::now();
            let failed = apply_event(&shared, kind, event, facts, at);
            if failed {
                // The watcher does not back off by itself.
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                shared.changed.notify_waiters();
            }
        }
    })
}

/// Applies one watch event to the state; returns whether it was an error.
fn apply_event<K: Resource>(
    shared: &Recording,
    kind: Kind,
    event: Result<Event<K>, watcher::Error>,
    facts: fn(&K) -> Facts,
    at: Instant,
) -> bool {
    let mut state = shared.state.lock();
    match event {
        Ok(Event::Apply(object)) => {
            state.record(key_of(kind, &object), facts(&object), false, at);
        }
        Ok(Event::Delete(object)) => {
            state.record(key_of(kind, &object), facts(&object), true, at);
        }
        Ok(Event::Init) => {
            state.relisting.insert(kind, HashSet::new());
        }
        Ok(Event::InitApply(object)) => {
            let key = key_of(kind, &object);
            state.relisting.entry(kind).or_default().insert(key.clone());
            state.record(key, facts(&object), false, at);
        }
        Ok(Event::InitDone) => {
            let listed = state.relisting.remove(&kind).unwrap_or_default();
            let gone: Vec<ObjectKey> = state
                .objects
                .keys()
                .filter(|key| key.kind == kind && !listed.contains(*key))
                .cloned()
                .collect();
            for key in gone {
                state.record(key, Facts::default(), true, at);
            }
            state.synced.insert(kind);
        }
        Err(error) => {
            tracing::debug!(?kind, %error, "watch error (retried)");
            if state.errors.len() < 100 {
                state.errors.push(format!("{kind:?}: {error}"));
            }
            return true;
        }
    }
    false
}

fn key_of<K: Resource>(kind: Kind, object: &K) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: object.meta().namespace.clone().unwrap_or_default(),
        name: object.meta().name.clone().unwrap_or_default(),
    }
}

fn base_facts<K: Resource>(object: &K) -> Facts {
    Facts {
        uid: object.meta().uid.clone().unwrap_or_default(),
        resource_version: object.meta().resource_version.clone().unwrap_or_default(),
        labels: object.labels().clone(),
        deleting: object.meta().deletion_timestamp.is_some(),
        ..Facts::default()
    }
}

fn gitrepo_facts(object: &GitRepo) -> Facts {
    let mut facts = base_facts(object);
    if let Some(status) = &object.status {
        facts.commit = status.commit.clone();
        facts.last_polling_triggered = status
            .last_polling_triggered
            .as_ref()
            .map(|t| t.0.to_string());
        facts.ready_bundle_deployments = status.display.ready_bundle_deployments.clone();
        facts.summary_ready = status.summary.ready;
        facts.summary_desired_ready = status.summary.desired_ready;
    }
    facts
}

fn bundle_facts(object: &Bundle) -> Facts {
    let mut facts = base_facts(object);
    facts.commit = object
        .labels()
        .get(labels::COMMIT)
        .cloned()
        .unwrap_or_default();
    if let Some(status) = &object.status {
        facts.summary_ready = status.summary.ready;
        facts.summary_desired_ready = status.summary.desired_ready;
    }
    facts
}

fn bundledeployment_facts(object: &BundleDeployment) -> Facts {
    let mut facts = base_facts(object);
    facts.deployment_id = object.spec.deployment_id.clone().unwrap_or_default();
    if let Some(status) = &object.status {
        facts.applied_deployment_id = status.applied_deployment_id.clone().unwrap_or_default();
        facts.ready = status.ready;
    }
    facts
}

fn cluster_facts(object: &Cluster) -> Facts {
    let mut facts = base_facts(object);
    if let Some(status) = &object.status {
        facts.cluster_namespace = status.namespace.clone();
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            kind: Kind::BundleDeployment,
            namespace: "cluster-a".into(),
            name: name.into(),
        }
    }

    fn facts(uid: &str, rv: &str) -> Facts {
        Facts {
            uid: uid.into(),
            resource_version: rv.into(),
            ..Facts::default()
        }
    }

    #[test]
    fn state_classifies_adds_modifications_and_deletes() {
        let mut state = State::default();
        let now = Instant::now();
        state.record(key("a"), facts("u1", "1"), false, now);
        state.record(key("a"), facts("u1", "1"), false, now);
        state.record(key("a"), facts("u1", "2"), false, now);
        state.record(key("a"), facts("u1", "2"), true, now);
        state.record(key("missing"), facts("u9", "1"), true, now);
        let changes: Vec<Change> = state.log.iter().map(|o| o.change).collect();
        assert_eq!(changes, [Change::Added, Change::Modified, Change::Deleted]);
        assert!(state.objects.is_empty());
    }

    #[test]
    fn a_deletion_during_a_watch_gap_is_found_by_the_relist() {
        let shared = Recording {
            origin: Instant::now(),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        };
        let now = Instant::now();
        let bd = |name: &str, uid: &str| {
            let mut bd = BundleDeployment::new(name, Default::default());
            bd.metadata.namespace = Some("cluster-a".into());
            bd.metadata.uid = Some(uid.into());
            bd.metadata.resource_version = Some("1".into());
            bd
        };
        let apply = |event: Event<BundleDeployment>| {
            apply_event(
                &shared,
                Kind::BundleDeployment,
                Ok(event),
                bundledeployment_facts,
                now,
            )
        };
        apply(Event::Init);
        apply(Event::InitApply(bd("gone", "u1")));
        apply(Event::InitApply(bd("kept", "u2")));
        apply(Event::InitApply(bd("recreated", "u3")));
        apply(Event::InitDone);
        // The watch restarts; meanwhile one object was deleted and one recreated.
        apply(Event::Init);
        apply(Event::InitApply(bd("kept", "u2")));
        apply(Event::InitApply(bd("recreated", "u4")));
        apply(Event::InitDone);
        let state = shared.state.lock();
        let deleted: Vec<(&str, &str)> = state
            .log
            .iter()
            .filter(|o| o.change == Change::Deleted)
            .map(|o| (o.key.name.as_str(), o.facts.uid.as_str()))
            .collect();
        assert_eq!(deleted, [("recreated", "u3"), ("gone", "u1")]);
        assert_eq!(state.objects.len(), 2);
    }

    #[test]
    fn bundledeployment_facts_keep_status_and_deletion() {
        use fleet_api::BundleDeploymentStatus;
        let mut bd = BundleDeployment::new("b", Default::default());
        bd.status = Some(BundleDeploymentStatus {
            applied_deployment_id: Some("s-1:abc".into()),
            ready: true,
            ..Default::default()
        });
        let facts = bundledeployment_facts(&bd);
        assert_eq!(facts.applied_deployment_id, "s-1:abc");
        assert!(facts.ready);
        assert!(!facts.deleting);
        bd.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
        );
        assert!(bundledeployment_facts(&bd).deleting);
    }

    #[test]
    fn a_recreated_object_is_a_delete_then_an_add() {
        let mut state = State::default();
        let now = Instant::now();
        state.record(key("a"), facts("u1", "1"), false, now);
        state.record(key("a"), facts("u2", "5"), false, now);
        let changes: Vec<Change> = state.log.iter().map(|o| o.change).collect();
        assert_eq!(changes, [Change::Added, Change::Deleted, Change::Added]);
        assert_eq!(
            state
                .get(Kind::BundleDeployment, "cluster-a", "a")
                .unwrap()
                .uid,
            "u2"
        );
    }
}
