//! Prometheus metrics on `/metrics`.
//!
//! `gitserver_requests_total` is labelled by repository, so its cardinality is
//! repositories × services × status codes: with the suites' 300 repositories, four services
//! and a handful of codes that is a few thousand series, which Prometheus handles easily.
//! A deployment with tens of thousands of repositories would want the per-repository
//! request log instead of this label.
//!
//! Repository names are private information for private repositories (Gitea answers 404 to
//! anonymous users who name one), so anonymous scrapers get a second view in which every
//! repository that was not public when the request was served is counted under one
//! `repo="(hidden)"` label. Requests naming no repository at all are counted under
//! `repo="(unknown)"` in both views: anyone can make up names, and a label per made-up name
//! would let a client grow the series (and this process's memory) without bound.

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

/// The `repo` label anonymous readers see for repositories they may not see.
pub(crate) const HIDDEN_REPO: &str = "(hidden)";
/// The `repo` label of requests that named no repository.
pub(crate) const UNKNOWN_REPO: &str = "(unknown)";

/// Who may see a repository's name in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Everyone: a public repository.
    Public,
    /// Signed-in readers only: a private repository, or one hidden by a fault.
    Private,
    /// Nobody: the name names no repository.
    Unknown,
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The same metrics with private repositories' names summed under [`HIDDEN_REPO`].
    public_registry: Registry,
    requests: Family<RequestLabels, Counter>,
    public_requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily,
    webhook_deliveries: Family<ResultLabels, Counter>,
    pushes: Family<SourceLabels, Counter>,
    repositories: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let public_requests = Family::<RequestLabels, Counter>::default();
        let request_duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        let webhook_deliveries = Family::<ResultLabels, Counter>::default();
        let pushes = Family::<SourceLabels, Counter>::default();
        let repositories = Gauge::default();
        // Both registries hold the same shared metrics except the per-repository counter.
        let build = |requests: &Family<RequestLabels, Counter>| {
            let mut registry = Registry::default();
            registry.register(
                "gitserver_requests",
                "Git smart HTTP requests by repository, service and HTTP status code",
                requests.clone(),
            );
            registry.register(
                "gitserver_request_duration_seconds",
                "Git smart HTTP request duration, arrival to the end of git http-backend",
                request_duration.clone(),
            );
            registry.register(
                "gitserver_webhook_deliveries",
                "Webhook deliveries by final result (success, failure)",
                webhook_deliveries.clone(),
            );
            registry.register(
                "gitserver_ref_updates",
                "Branch and tag updates by source (git push, api commit)",
                pushes.clone(),
            );
            registry.register(
                "gitserver_repositories",
                "Repositories served",
                repositories.clone(),
            );
            registry
        };
        let registry = build(&requests);
        let public_registry = build(&public_requests);
        Self {
            registry,
            public_registry,
            requests,
            public_requests,
            request_duration,
            webhook_deliveries,
            pushes,
            repositories,
        }
    }

    /// Counts one git request for `repo`, labelled as `visibility` allows.
    pub(crate) fn observe_request(
        &self,
        repo: &str,
        service: &str,
        code: u16,
        seconds: f64,
        visibility: Visibility,
    ) {
        let mut labels = RequestLabels {
            repo: match visibility {
                Visibility::Unknown => UNKNOWN_REPO.to_owned(),
                Visibility::Public | Visibility::Private => repo.to_owned(),
            },
            service: service.to_owned(),
            code: code.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        if visibility == Visibility::Private {
            HIDDEN_REPO.clone_into(&mut labels.repo);
        }
        self.public_requests.get_or_create(&labels).inc();
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

    /// The Prometheus text exposition: `full` for a signed-in reader, else the view with
    /// non-public repositories hidden.
    pub(crate) fn encode(&self, full: bool) -> String {
        let registry = if full {
            &self.registry
        } else {
            &self.public_registry
        };
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
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
        metrics.observe_request(
            "o/r",
            "upload-pack-advertisement",
            200,
            0.01,
            Visibility::Public,
        );
        metrics.observe_request(
            "o/r",
            "upload-pack-advertisement",
            200,
            0.01,
            Visibility::Public,
        );
        metrics.observe_delivery(true);
        metrics.set_repositories(3);
        for full in [true, false] {
            let text = metrics.encode(full);
            assert!(text.contains(
                r#"gitserver_requests_total{repo="o/r",service="upload-pack-advertisement",code="200"} 2"#
            ), "{text}");
            assert!(text.contains(r#"gitserver_webhook_deliveries_total{result="success"} 1"#));
            assert!(text.contains("gitserver_repositories 3"));
        }
    }

    #[test]
    fn private_repositories_are_summed_for_anonymous_readers() {
        let metrics = Metrics::new();
        metrics.observe_request("o/secret-a", "upload-pack", 200, 0.01, Visibility::Private);
        metrics.observe_request("o/secret-b", "upload-pack", 200, 0.01, Visibility::Private);
        let anonymous = metrics.encode(false);
        assert!(!anonymous.contains("secret"), "{anonymous}");
        assert!(
            anonymous.contains(
                r#"gitserver_requests_total{repo="(hidden)",service="upload-pack",code="200"} 2"#
            ),
            "{anonymous}"
        );
        let full = metrics.encode(true);
        assert!(full.contains(r#"repo="o/secret-a""#), "{full}");
        assert!(!full.contains("(hidden)"), "{full}");
    }

    #[test]
    fn made_up_names_share_one_series_in_both_views() {
        let metrics = Metrics::new();
        for i in 0..100 {
            metrics.observe_request(
                &format!("o/nope-{i}"),
                "upload-pack",
                404,
                0.0,
                Visibility::Unknown,
            );
        }
        for full in [true, false] {
            let text = metrics.encode(full);
            assert!(!text.contains("nope-"), "{text}");
            assert!(text.contains(
                r#"gitserver_requests_total{repo="(unknown)",service="upload-pack",code="404"} 100"#
            ), "{text}");
        }
    }
}
