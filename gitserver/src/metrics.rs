//! Prometheus metrics on `/metrics`.
//!
//! `gitserver_requests_total` is labelled by repository, so its cardinality is
//! repositories × services × status codes: with the suites' 300 repositories, four services
//! and a handful of codes that is a few thousand series, which Prometheus handles easily.
//! A deployment with tens of thousands of repositories would want the per-repository
//! request log instead of this label.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    repo: String,
    service: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

type HistogramFamily = Family<ServiceLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily,
    webhook_deliveries: Family<ResultLabels, Counter>,
    pushes: Family<SourceLabels, Counter>,
    repositories: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "gitserver_requests",
            "Git smart HTTP requests by repository, service and HTTP status code",
            requests.clone(),
        );
        let request_duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "gitserver_request_duration_seconds",
            "Git smart HTTP request duration, arrival to the end of git http-backend",
            request_duration.clone(),
        );
        let webhook_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "gitserver_webhook_deliveries",
            "Webhook deliveries by final result (success, failure)",
            webhook_deliveries.clone(),
        );
        let pushes = Family::<SourceLabels, Counter>::default();
        registry.register(
            "gitserver_ref_updates",
            "Branch and tag updates by source (git push, api commit)",
            pushes.clone(),
        );
        let repositories = Gauge::default();
        registry.register(
            "gitserver_repositories",
            "Repositories served",
            repositories.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            webhook_deliveries,
            pushes,
            repositories,
        }
    }

    pub(crate) fn observe_request(&self, repo: &str, service: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                repo: repo.to_owned(),
                service: service.to_owned(),
                code: code.to_string(),
            })
            .inc();
        self.request_duration
            .get_or_create(&ServiceLabels {
                service: service.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn observe_delivery(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.webhook_deliveries
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub(crate) fn observe_ref_updates(&self, source: &str, count: usize) {
        self.pushes
            .get_or_create(&SourceLabels {
                source: source.to_owned(),
            })
            .inc_by(count as u64);
    }

    pub(crate) fn set_repositories(&self, count: usize) {
        self.repositories
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_with_their_labels() {
        let metrics = Metrics::new();
        metrics.observe_request("o/r", "upload-pack-advertisement", 200, 0.01);
        metrics.observe_request("o/r", "upload-pack-advertisement", 200, 0.01);
        metrics.observe_delivery(true);
        metrics.set_repositories(3);
        let text = metrics.encode();
        assert!(text.contains(
            r#"gitserver_requests_total{repo="o/r",service="upload-pack-advertisement",code="200"} 2"#
        ), "{text}");
        assert!(text.contains(r#"gitserver_webhook_deliveries_total{result="success"} 1"#));
        assert!(text.contains("gitserver_repositories 3"));
    }
}
