//! Prometheus metrics, named as controller-runtime and client-go name them where such a
//! metric exists, so dashboards and Fleet's benchmark tooling read the bundled controller
//! and Fleet alike.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `controller` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Reconciler name: gitrepo, bundle, cluster, clustergroup, status, agent.
    pub controller: String,
}

/// `controller`, `result` labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Reconciler name.
    pub controller: String,
    /// `success`, `error`, `requeue` or `requeue_after`, as controller-runtime reports.
    pub result: String,
}

/// `name` label of the workqueue metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Queue name.
    pub name: String,
}

/// `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Outcome.
    pub result: String,
}

/// `resource`, `outcome` labels of `fleet_status_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusWriteLabels {
    /// Plural resource name: gitrepos, bundles, clusters, clustergroups, bundledeployments.
    pub resource: String,
    /// `issued` (a PATCH was sent) or `skipped` (nothing changed).
    pub outcome: String,
}

/// `resource`, `verb` labels of `fleet_object_writes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectWriteLabels {
    /// Plural resource name.
    pub resource: String,
    /// create, update or delete.
    pub verb: String,
}

/// Builds histograms with the given buckets (a `fn` pointer, so the family stays `Clone`).
#[derive(Clone)]
pub struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

fn latency_buckets() -> Histogram {
    // 1ms .. ~65s, like controller-runtime's reconcile_time buckets in spirit.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    /// `controller_runtime_reconcile_total{controller,result}`.
    pub reconcile_total: Family<ReconcileLabels, Counter>,
    /// `controller_runtime_reconcile_errors_total{controller}`.
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    /// `controller_runtime_reconcile_time_seconds{controller}`.
    pub reconcile_time: Family<ControllerLabels, Histogram, Buckets>,
    /// `workqueue_depth{name}`.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// `workqueue_adds_total{name}`.
    pub queue_adds: Family<QueueLabels, Counter>,
    /// `workqueue_retries_total{name}`.
    pub queue_retries: Family<QueueLabels, Counter>,
    /// `workqueue_queue_duration_seconds{name}`: time from add to processing.
    pub queue_duration: Family<QueueLabels, Histogram, Buckets>,
    /// `workqueue_work_duration_seconds{name}`.
    pub work_duration: Family<QueueLabels, Histogram, Buckets>,
    /// `fleet_gitrepo_polls_total{result}`.
    pub gitrepo_polls: Family<ResultLabels, Counter>,
    /// `fleet_gitrepo_syncs_total{result}`.
    pub gitrepo_syncs: Family<ResultLabels, Counter>,
    /// `fleet_gitrepo_fetches_total{result}`: what a sync read its commit from
    /// (`fetched`, `cached` when nothing says the remote moved, `error`).
    pub gitrepo_fetches: Family<ResultLabels, Counter>,
    /// `fleet_webhooks_total{result}`.
    pub webhooks: Family<ResultLabels, Counter>,
    /// `fleet_status_writes_total{resource,outcome}`.
    pub status_writes: Family<StatusWriteLabels, Counter>,
    /// `fleet_object_writes_total{resource,verb}`: creates, updates and deletes of
    /// Bundles and BundleDeployments.
    pub object_writes: Family<ObjectWriteLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_total = Family::default();
        let reconcile_errors = Family::default();
        let reconcile_time = Family::new_with_constructor(Buckets(latency_buckets));
        let queue_depth = Family::default();
        let queue_adds = Family::default();
        let queue_retries = Family::default();
        let queue_duration = Family::new_with_constructor(Buckets(latency_buckets));
        let work_duration = Family::new_with_constructor(Buckets(latency_buckets));
        let gitrepo_polls = Family::default();
        let gitrepo_syncs = Family::default();
        let gitrepo_fetches = Family::default();
        let webhooks = Family::default();
        let status_writes = Family::default();
        let object_writes = Family::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            queue_depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            queue_adds.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            queue_retries.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            work_duration.clone(),
        );
        registry.register(
            "fleet_gitrepo_polls",
            "GitRepo polls (ls-remote) by result",
            gitrepo_polls.clone(),
        );
        registry.register(
            "fleet_gitrepo_syncs",
            "GitRepo syncs (fetch and Bundle generation) by result",
            gitrepo_syncs.clone(),
        );
        registry.register(
            "fleet_gitrepo_fetches",
            "Where GitRepo syncs read their commit: fetched from the remote, or cached",
            gitrepo_fetches.clone(),
        );
        registry.register(
            "fleet_webhooks",
            "Webhook requests by result",
            webhooks.clone(),
        );
        registry.register(
            "fleet_status_writes",
            "Status writes issued or skipped because nothing changed",
            status_writes.clone(),
        );
        registry.register(
            "fleet_object_writes",
            "Creates, updates and deletes of Bundles and BundleDeployments",
            object_writes.clone(),
        );
        Metrics {
            registry,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            queue_depth,
            queue_adds,
            queue_retries,
            queue_duration,
            work_duration,
            gitrepo_polls,
            gitrepo_syncs,
            gitrepo_fetches,
            webhooks,
            status_writes,
            object_writes,
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records one reconcile of `controller` that took `elapsed` and ended with `result`.
    pub fn record_reconcile(&self, controller: &str, result: &str, elapsed: Duration) {
        self.reconcile_total
            .get_or_create(&ReconcileLabels {
                controller: controller.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        let labels = ControllerLabels {
            controller: controller.to_owned(),
        };
        if result == "error" {
            self.reconcile_errors.get_or_create(&labels).inc();
        }
        self.reconcile_time
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one status write of `resource` (`issued` or `skipped`).
    pub fn status_write(&self, resource: &str, issued: bool) {
        self.status_writes
            .get_or_create(&StatusWriteLabels {
                resource: resource.to_owned(),
                outcome: if issued { "issued" } else { "skipped" }.to_owned(),
            })
            .inc();
    }

    /// Counts one object write.
    pub fn object_write(&self, resource: &str, verb: &str) {
        self.object_writes
            .get_or_create(&ObjectWriteLabels {
                resource: resource.to_owned(),
                verb: verb.to_owned(),
            })
            .inc();
    }

    /// Counts a labelled event in one of the `{result}` families.
    pub fn count(family: &Family<ResultLabels, Counter>, result: &str) {
        family
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// Value of `fleet_status_writes_total{resource,outcome}` (for tests and reports).
    pub fn status_writes_of(&self, resource: &str, issued: bool) -> u64 {
        self.status_writes
            .get_or_create(&StatusWriteLabels {
                resource: resource.to_owned(),
                outcome: if issued { "issued" } else { "skipped" }.to_owned(),
            })
            .get()
    }
}

/// Shared handle.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_controller_runtime_names() {
        let metrics = Metrics::new();
        metrics.record_reconcile("bundle", "success", Duration::from_millis(3));
        metrics.record_reconcile("bundle", "error", Duration::from_millis(3));
        metrics.status_write("gitrepos", true);
        metrics.status_write("gitrepos", false);
        Metrics::count(&metrics.gitrepo_polls, "success");
        metrics
            .queue_depth
            .get_or_create(&QueueLabels {
                name: "bundle".into(),
            })
            .set(4);
        let text = metrics.encode();
        for needle in [
            "controller_runtime_reconcile_total{controller=\"bundle\",result=\"success\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"bundle\"} 1",
            "controller_runtime_reconcile_time_seconds_count{controller=\"bundle\"} 2",
            "workqueue_depth{name=\"bundle\"} 4",
            "fleet_status_writes_total{resource=\"gitrepos\",outcome=\"issued\"} 1",
            "fleet_status_writes_total{resource=\"gitrepos\",outcome=\"skipped\"} 1",
            "fleet_gitrepo_polls_total{result=\"success\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert_eq!(metrics.status_writes_of("gitrepos", true), 1);
    }
}
