//! `/metrics` with kube-apiserver's metric names, so the harness counts API calls the same
//! way against this server and a real cluster.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of `apiserver_request_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// kube-apiserver's verb (GET, LIST, WATCH, CREATE, UPDATE, PATCH, DELETE, ...).
    pub verb: String,
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource, empty for the main resource.
    pub subresource: String,
    /// HTTP status code.
    pub code: String,
}

/// Labels of `apiserver_request_duration_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    /// Verb.
    pub verb: String,
    /// API group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
}

/// Labels of `apiserver_storage_objects`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabel {
    /// `configmaps` or `gitrepos.fleet.cattle.io`.
    pub resource: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram>,
    objects: Family<ResourceLabel, Gauge>,
}

/// kube-apiserver's request duration buckets.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<DurationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(BUCKETS.iter().copied())
        });
        let objects = Family::<ResourceLabel, Gauge>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, group, version, resource, subresource and HTTP response code.",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource and subresource.",
            durations.clone(),
        );
        registry.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            objects.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            objects,
        }
    }
}

impl Metrics {
    /// Counts one finished request.
    pub fn observe(&self, labels: DurationLabels, code: u16, elapsed: Duration) {
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let request = RequestLabels {
            verb: labels.verb,
            group: labels.group,
            version: labels.version,
            resource: labels.resource,
            subresource: labels.subresource,
            code: code.to_string(),
        };
        self.requests.get_or_create(&request).inc();
    }

    /// The Prometheus text exposition, after refreshing object counts.
    pub fn render(&self, object_counts: &[(String, usize)]) -> String {
        for (resource, count) in object_counts {
            self.objects
                .get_or_create(&ResourceLabel {
                    resource: resource.clone(),
                })
                .set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_kube_apiserver_names() {
        let metrics = Metrics::default();
        let labels = DurationLabels {
            verb: "PATCH".into(),
            group: "fleet.cattle.io".into(),
            version: "v1alpha1".into(),
            resource: "gitrepos".into(),
            subresource: "status".into(),
        };
        metrics.observe(labels, 200, Duration::from_millis(3));
        let text = metrics.render(&[("gitrepos.fleet.cattle.io".into(), 4)]);
        assert!(text.contains("apiserver_request_total{verb=\"PATCH\",group=\"fleet.cattle.io\",version=\"v1alpha1\",resource=\"gitrepos\",subresource=\"status\",code=\"200\"} 1"), "{text}");
        assert!(text.contains("apiserver_request_duration_seconds_bucket"));
        assert!(
            text.contains("apiserver_storage_objects{resource=\"gitrepos.fleet.cattle.io\"} 4")
        );
    }
}
