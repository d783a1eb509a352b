//! API call counts from the API server's `/metrics` (`apiserver_request_total`).
//!
//! Counting on the server side, by scraping before and after a phase, works identically on
//! the embedded apiserver, kind and any real cluster, and counts the writes of every client
//! (the controller, its agents) without instrumenting any of them.

use std::collections::BTreeMap;

use crate::results::ApiRequestCount;

/// The metric that counts requests.
pub const REQUEST_TOTAL: &str = "apiserver_request_total";

/// The label set of one `apiserver_request_total` series.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    /// Verb.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Code.
    pub code: String,
}

/// The counters of one API server process at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerTotals {
    /// Counter value per label set.
    pub counts: BTreeMap<RequestKey, f64>,
    /// `process_start_time_seconds`, when the server exports it (kube-apiserver does): a
    /// change means the process restarted even if every counter has since grown past its
    /// old value.
    pub started: Option<f64>,
}

/// The request counters of every API server replica at one moment.
///
/// Counters are kept per replica because a counter only means something against an
/// earlier value of the same process: behind a load balancer, subtracting one replica's
/// totals from another's gives noise, not writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestTotals {
    /// Counters per replica, keyed by the address scraped (`""`: the cluster's own URL,
    /// when there is one replica or the replicas could not be reached one by one).
    pub servers: BTreeMap<String, ServerTotals>,
}

/// Why `/metrics` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The request failed.
    #[error("cannot scrape the API server's /metrics{}", replica(address))]
    Request {
        /// The replica scraped directly; empty for the cluster URL.
        address: String,
        /// The client's error.
        source: fleet_api::error::Foreign<kube::Error>,
    },
    /// The request got no answer in time.
    #[error(
        "cannot scrape the API server's /metrics{}: no answer within {after:?}",
        replica(address)
    )]
    NoAnswer {
        /// The replica scraped directly; empty for the cluster URL.
        address: String,
        /// The bound.
        after: std::time::Duration,
    },
    /// The text has no `apiserver_request_total`.
    #[error(
        "the API server's /metrics has no {REQUEST_TOTAL} series (is it a Kubernetes API server?)"
    )]
    NoRequestTotals,
}

impl MetricsError {
    /// The same failure, named as a scrape of the replica at `address`.
    pub fn at_replica(self, address: &str) -> MetricsError {
        match self {
            MetricsError::Request { source, .. } => MetricsError::Request {
                address: address.to_string(),
                source,
            },
            MetricsError::NoAnswer { after, .. } => MetricsError::NoAnswer {
                address: address.to_string(),
                after,
            },
            other => other,
        }
    }
}

fn replica(address: &str) -> String {
    if address.is_empty() {
        String::new()
    } else {
        format!(": replica {address}")
    }
}

/// A gauge kube-apiserver exports: when its process started.
const PROCESS_START: &str = "process_start_time_seconds";

impl ServerTotals {
    /// Parses Prometheus text exposition, keeping `apiserver_request_total` series and the
    /// process start time.
    pub fn parse(text: &str) -> Result<ServerTotals, MetricsError> {
        let mut counts = BTreeMap::new();
        let mut started = None;
        let mut seen_family = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                // `# TYPE <family> counter`: kube-apiserver names the family with its
                // `_total`, OpenMetrics encoders without it. A server that has served
                // nothing yet has the family and no series.
                let family = line.split_whitespace().nth(2);
                if family.is_some_and(|f| {
                    f == REQUEST_TOTAL || Some(f) == REQUEST_TOTAL.strip_suffix("_total")
                }) {
                    seen_family = true;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix(PROCESS_START)
                && let Some((_, value)) = split_sample(rest)
            {
                started = value.parse::<f64>().ok();
                continue;
            }
            let Some(rest) = line.strip_prefix(REQUEST_TOTAL) else {
                continue;
            };
            let Some((labels, value)) = split_sample(rest) else {
                continue;
            };
            seen_family = true;
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let key = RequestKey {
                verb: labels.get("verb").cloned().unwrap_or_default(),
                group: labels.get("group").cloned().unwrap_or_default(),
                resource: labels.get("resource").cloned().unwrap_or_default(),
                subresource: labels.get("subresource").cloned().unwrap_or_default(),
                code: labels.get("code").cloned().unwrap_or_default(),
            };
            // Real apiservers split series by more labels (component, scope, dry_run):
            // sum them into ours.
            *counts.entry(key).or_insert(0.0) += value;
        }
        if !seen_family {
            return Err(MetricsError::NoRequestTotals);
        }
        Ok(ServerTotals { counts, started })
    }

    /// Whether the process behind `self` is not the one `before` was read from: its start
    /// time changed, or a counter went down (counters only fall when a process restarts).
    pub fn restarted_since(&self, before: &ServerTotals) -> bool {
        let start_changed =
            matches!((self.started, before.started), (Some(now), Some(then)) if now != then);
        start_changed
            || before
                .counts
                .iter()
                .any(|(key, then)| self.counts.get(key).copied().unwrap_or(0.0) < *then)
    }
}

impl RequestTotals {
    /// One server's text exposition, as the counters of the cluster's own URL.
    pub fn parse(text: &str) -> Result<RequestTotals, MetricsError> {
        Ok(RequestTotals::single(ServerTotals::parse(text)?))
    }

    /// `totals` as the cluster's only replica.
    pub fn single(totals: ServerTotals) -> RequestTotals {
        RequestTotals {
            servers: BTreeMap::from([(String::new(), totals)]),
        }
    }

    /// What happened between `before` and `self`, non-zero entries only, summed over
    /// replicas. A replica that restarted in between is counted from its restart (all it
    /// counted before is gone with the process); [`RequestTotals::restarts_since`] says
    /// which did, since what it served between `before` and its restart is lost.
    pub fn since(&self, before: &RequestTotals) -> Vec<ApiRequestCount> {
        let empty = ServerTotals::default();
        let mut summed: BTreeMap<&RequestKey, f64> = BTreeMap::new();
        for (server, after) in &self.servers {
            let previous = before.servers.get(server).unwrap_or(&empty);
            let restarted = after.restarted_since(previous);
            for (key, count) in &after.counts {
                let delta = if restarted {
                    *count
                } else {
                    count - previous.counts.get(key).copied().unwrap_or(0.0)
                };
                *summed.entry(key).or_insert(0.0) += delta;
            }
        }
        summed
            .into_iter()
            .filter(|(_, delta)| *delta >= 0.5)
            .map(|(key, delta)| ApiRequestCount {
                verb: key.verb.clone(),
                group: key.group.clone(),
                resource: key.resource.clone(),
                subresource: key.subresource.clone(),
                code: key.code.clone(),
                count: delta.round() as u64,
            })
            .collect()
    }

    /// Problems that make [`RequestTotals::since`] short: replicas that restarted between
    /// the two scrapes, and replicas `before` had that `self` lacks.
    pub fn restarts_since(&self, before: &RequestTotals) -> Vec<String> {
        let name = |server: &str| {
            if server.is_empty() {
                "the API server".to_string()
            } else {
                format!("the API server at {server}")
            }
        };
        let mut problems = Vec::new();
        for (server, previous) in &before.servers {
            match self.servers.get(server) {
                Some(after) if after.restarted_since(previous) => problems.push(format!(
                    "{} restarted (its request counters went back): the requests it served before the restart are not counted",
                    name(server)
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "{} was not scraped the second time: its requests are not counted",
                    name(server)
                )),
            }
        }
        problems
    }
}

/// Splits `{labels} value [timestamp]` (or ` value`) into labels and value.
fn split_sample(rest: &str) -> Option<(BTreeMap<String, String>, &str)> {
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        // A longer metric name with our prefix (apiserver_request_total_foo): not ours.
        return None;
    }
    let rest = rest.trim_start();
    if let Some(body) = rest.strip_prefix('{') {
        let (labels, after) = parse_labels(body)?;
        let value = after.split_whitespace().next()?;
        Some((labels, value))
    } else {
        Some((BTreeMap::new(), rest.split_whitespace().next()?))
    }
}

/// Parses `a="x",b="y\"z"}` and returns the labels and what follows the `}`.
fn parse_labels(body: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after_name) = rest.split_once('=')?;
        let mut chars = after_name.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (index, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break index,
                other => value.push(other),
            }
        };
        labels.insert(name.trim().to_string(), value);
        rest = &after_name[1 + end + 1..];
    }
}

/// Every sample of the families whose name starts with one of `prefixes`, keyed
/// `name{label="value",...}` (labels sorted), summed over identical keys. Histogram buckets
/// are left out (their `_sum` and `_count` stay).
pub fn samples_with_prefix(text: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if name.ends_with("_bucket") || !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let Some((labels, value)) = split_sample(&line[name_end..]) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            let rendered: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            format!("{name}{{{}}}", rendered.join(","))
        };
        *samples.entry(key).or_insert(0.0) += value;
    }
    samples
}

/// Writes in `requests` grouped as `resource[/subresource] VERB` (for step breakdowns).
pub fn writes_by_target_and_verb(requests: &[ApiRequestCount]) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for request in requests.iter().filter(|r| r.is_write()) {
        *totals
            .entry(format!("{} {}", request.target(), request.verb))
            .or_insert(0.0) += request.count as f64;
    }
    totals
}

/// Writes in `requests` to any of `resources` (and `subresource`, when given).
pub fn count_writes(
    requests: &[ApiRequestCount],
    resources: &[String],
    subresource: Option<&str>,
) -> (u64, BTreeMap<String, f64>) {
    let selected: Vec<ApiRequestCount> = requests
        .iter()
        .filter(|r| r.is_write() && r.is_controller_owned() && resources.contains(&r.resource))
        .filter(|r| subresource.is_none_or(|s| r.subresource == s))
        .cloned()
        .collect();
    let total = selected.iter().map(|r| r.count).sum();
    (total, writes_by_target_and_verb(&selected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = r#"# HELP apiserver_request_total Counter of apiserver requests.
# TYPE apiserver_request_total counter
apiserver_request_total{verb="PATCH",group="fleet.cattle.io",version="v1alpha1",resource="bundles",subresource="status",code="200"} 10
apiserver_request_total{verb="CREATE",group="fleet.cattle.io",version="v1alpha1",resource="bundledeployments",subresource="",code="201"} 5
apiserver_request_total{verb="LIST",group="fleet.cattle.io",version="v1alpha1",resource="bundles",subresource="",code="200"} 3
apiserver_request_duration_seconds_bucket{verb="LIST",le="0.1"} 3
"#;

    const AFTER: &str = r#"apiserver_request_total{verb="PATCH",group="fleet.cattle.io",version="v1alpha1",resource="bundles",subresource="status",code="200"} 25 1712345678
apiserver_request_total{verb="CREATE",group="fleet.cattle.io",version="v1alpha1",resource="bundledeployments",subresource="",code="201"} 305
apiserver_request_total{verb="CREATE",group="fleet.cattle.io",version="v1alpha1",resource="bundledeployments",subresource="",code="409",component="x"} 2
apiserver_request_total{verb="LIST",group="fleet.cattle.io",version="v1alpha1",resource="bundles",subresource="",code="200"} 3
apiserver_request_total{verb="UPDATE",group="fleet.cattle.io",version="v1alpha1",resource="gitrepos",subresource="status",code="200",note="a \"quoted\", value"} 7
"#;

    #[test]
    fn deltas_between_two_scrapes() {
        let before = RequestTotals::parse(BEFORE).unwrap();
        let after = RequestTotals::parse(AFTER).unwrap();
        let deltas = after.since(&before);
        let get = |verb: &str, resource: &str, code: &str| {
            deltas
                .iter()
                .find(|d| d.verb == verb && d.resource == resource && d.code == code)
                .map(|d| d.count)
        };
        assert_eq!(get("PATCH", "bundles", "200"), Some(15));
        assert_eq!(get("CREATE", "bundledeployments", "201"), Some(300));
        assert_eq!(get("CREATE", "bundledeployments", "409"), Some(2));
        assert_eq!(
            get("UPDATE", "gitrepos", "200"),
            Some(7),
            "escaped label values parse"
        );
        assert_eq!(
            get("LIST", "bundles", "200"),
            None,
            "unchanged series are dropped"
        );
    }

    #[test]
    fn counts_writes_by_resource_and_subresource() {
        let deltas = RequestTotals::parse(AFTER)
            .unwrap()
            .since(&RequestTotals::default());
        let status = ["gitrepos".to_string(), "bundles".to_string()];
        let (total, breakdown) = count_writes(&deltas, &status, Some("status"));
        assert_eq!(total, 32);
        assert_eq!(breakdown["bundles/status PATCH"], 25.0);
        assert_eq!(breakdown["gitrepos/status UPDATE"], 7.0);
        let (bds, _) = count_writes(&deltas, &["bundledeployments".to_string()], None);
        assert_eq!(bds, 307);
    }

    #[test]
    fn counts_only_what_a_fleet_controller_owns() {
        let text = r#"apiserver_request_total{verb="PATCH",group="fleet.cattle.io",resource="bundles",subresource="status",code="200"} 4
apiserver_request_total{verb="PATCH",group="other.example.com",resource="bundles",subresource="status",code="200"} 100
apiserver_request_total{verb="UPDATE",group="coordination.k8s.io",resource="leases",subresource="",code="200"} 50
apiserver_request_total{verb="CREATE",group="",resource="events",subresource="",code="201"} 30
apiserver_request_total{verb="CREATE",group="",resource="secrets",subresource="",code="201"} 2
"#;
        let deltas = RequestTotals::parse(text)
            .unwrap()
            .since(&RequestTotals::default());
        let (bundles, _) = count_writes(&deltas, &["bundles".to_string()], Some("status"));
        assert_eq!(bundles, 4, "another group's bundles are not Fleet's");
        let owned: u64 = deltas
            .iter()
            .filter(|r| r.is_write() && r.is_controller_owned())
            .map(|r| r.count)
            .sum();
        assert_eq!(
            owned, 6,
            "leases and events are noise; secrets are the controller's"
        );
    }

    #[test]
    fn text_without_request_totals_is_an_error() {
        assert!(matches!(
            RequestTotals::parse("process_cpu_seconds_total 1\n"),
            Err(MetricsError::NoRequestTotals)
        ));
        assert!(RequestTotals::parse("# TYPE apiserver_request_total counter\n").is_ok());
        let fresh = RequestTotals::parse(
            "# HELP apiserver_request Counter of apiserver requests.\n# TYPE apiserver_request counter\n",
        )
        .expect("an OpenMetrics family without series is a server that has served nothing yet");
        assert!(fresh.since(&RequestTotals::default()).is_empty());
        assert!(matches!(
            RequestTotals::parse("# HELP apiserver_request_duration_seconds x\n"),
            Err(MetricsError::NoRequestTotals)
        ));
    }

    #[test]
    fn samples_by_prefix_keep_labels_and_skip_buckets() {
        let text = "# TYPE fleet_status_writes_total counter\nfleet_status_writes_total{resource=\"bundles\",outcome=\"issued\"} 12\nfleet_status_writes_total{outcome=\"skipped\",resource=\"bundles\"} 30\ncontroller_runtime_reconcile_time_seconds_bucket{le=\"1\"} 3\ncontroller_runtime_reconcile_time_seconds_sum 0.5\nprocess_cpu_seconds_total 9\n";
        let samples = samples_with_prefix(text, &["fleet_", "controller_runtime_"]);
        assert_eq!(
            samples["fleet_status_writes_total{outcome=\"issued\",resource=\"bundles\"}"],
            12.0
        );
        assert_eq!(
            samples["fleet_status_writes_total{outcome=\"skipped\",resource=\"bundles\"}"],
            30.0
        );
        assert_eq!(
            samples["controller_runtime_reconcile_time_seconds_sum"],
            0.5
        );
        assert_eq!(samples.len(), 3, "{samples:?}");
    }

    #[test]
    fn a_restarted_server_is_counted_from_its_restart_and_reported() {
        let before = RequestTotals::parse(AFTER).unwrap();
        let after = RequestTotals::parse(BEFORE).unwrap();
        let deltas = after.since(&before);
        let count = |verb: &str, resource: &str| {
            deltas
                .iter()
                .find(|d| d.resource == resource && d.verb == verb)
                .map(|d| d.count)
        };
        assert_eq!(count("PATCH", "bundles"), Some(10));
        assert_eq!(
            count("LIST", "bundles"),
            Some(3),
            "a series that did not go down is still counted whole after a restart"
        );
        let problems = after.restarts_since(&before);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("restarted"), "{problems:?}");
        assert!(
            RequestTotals::parse(AFTER)
                .unwrap()
                .restarts_since(&before)
                .is_empty()
        );
    }

    #[test]
    fn a_new_start_time_is_a_restart_even_when_counters_grew_past_their_old_values() {
        let before = RequestTotals::parse(&format!("{PROCESS_START} 1000\n{BEFORE}")).unwrap();
        let after = RequestTotals::parse(&format!("{PROCESS_START} 2000\n{AFTER}")).unwrap();
        let patches = after
            .since(&before)
            .into_iter()
            .find(|d| d.verb == "PATCH")
            .map(|d| d.count);
        assert_eq!(patches, Some(25), "counted from the restart, not 25 - 10");
        assert_eq!(after.restarts_since(&before).len(), 1);
        let same = RequestTotals::parse(&format!("{PROCESS_START} 1000\n{AFTER}")).unwrap();
        assert!(same.restarts_since(&before).is_empty());
    }

    #[test]
    fn replicas_are_subtracted_each_from_itself() {
        let replica = |patches: f64| ServerTotals {
            counts: BTreeMap::from([(
                RequestKey {
                    verb: "PATCH".into(),
                    group: "fleet.cattle.io".into(),
                    resource: "bundles".into(),
                    subresource: "status".into(),
                    code: "200".into(),
                },
                patches,
            )]),
            started: None,
        };
        let totals = |a: f64, b: f64| RequestTotals {
            servers: BTreeMap::from([
                ("10.0.0.1:6443".to_string(), replica(a)),
                ("10.0.0.2:6443".to_string(), replica(b)),
            ]),
        };
        // Replica b has served far more than a over its life; the step's writes are
        // 3 on a and 4 on b, whatever the totals.
        let deltas = totals(103.0, 5004.0).since(&totals(100.0, 5000.0));
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].count, 7);
        let mut lost = totals(103.0, 5004.0);
        lost.servers.remove("10.0.0.2:6443");
        let problems = lost.restarts_since(&totals(100.0, 5000.0));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("10.0.0.2:6443"), "{problems:?}");
    }
}
