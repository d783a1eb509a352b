//! Every git request per repository, with when, who and how it ended.
//!
//! The polling suites measure a controller black-box from here: one `ls-remote` or fetch
//! starts with an upload-pack advertisement (`GET info/refs?service=git-upload-pack`), so
//! the time between two advertisements of a repository is one observed poll interval.
//! Entries carry the arrival time (RFC 3339 with nanoseconds, and Unix nanoseconds) and are
//! recorded when the request completes, with its status. The log is bounded (oldest first
//! out) and cheap to append to from many requests at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Which git service a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitService {
    /// `GET info/refs?service=git-upload-pack`: the start of every ls-remote, fetch or clone
    /// (one per poll).
    UploadPackAdvertisement,
    /// `POST git-upload-pack`: the fetch itself (or, with protocol v2, also `ls-refs`; see
    /// [`RequestLogEntry::command`]).
    UploadPack,
    /// `GET info/refs?service=git-receive-pack`: the start of a push.
    ReceivePackAdvertisement,
    /// `POST git-receive-pack`: the push itself.
    ReceivePack,
}

impl GitService {
    /// The name used in JSON, query strings and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UploadPackAdvertisement => "upload-pack-advertisement",
            Self::UploadPack => "upload-pack",
            Self::ReceivePackAdvertisement => "receive-pack-advertisement",
            Self::ReceivePack => "receive-pack",
        }
    }

    /// The inverse of [`GitService::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::UploadPackAdvertisement,
            Self::UploadPack,
            Self::ReceivePackAdvertisement,
            Self::ReceivePack,
        ]
        .into_iter()
        .find(|service| service.as_str() == s)
    }
}

impl std::fmt::Display for GitService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Served (2xx and `git http-backend` exited cleanly).
    Ok,
    /// No or bad credentials (401).
    Unauthorized,
    /// Not allowed (403).
    Forbidden,
    /// No such repository, or hidden by the `missing` fault (404).
    NotFound,
    /// Refused by the `refuse` fault (503).
    Refused,
    /// `git http-backend` failed, timed out or the request was too large.
    Error,
}

/// One git request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestLogEntry {
    /// Sequence number, increasing in completion order.
    pub seq: u64,
    /// When the request arrived, RFC 3339 with nanoseconds (UTC).
    pub time: String,
    /// When the request arrived, nanoseconds since the Unix epoch.
    pub unix_nanos: i64,
    /// `owner/name` as addressed (lower case).
    pub repo: String,
    /// The service.
    pub service: GitService,
    /// The protocol v2 command (`ls-refs`, `fetch`) of an upload-pack POST, when readable.
    pub command: Option<String>,
    /// The client's address (`ip:port`).
    pub client: String,
    /// The authenticated user, if any.
    pub user: Option<String>,
    /// The `Git-Protocol` header (`version=2`), if sent.
    pub protocol: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// From arrival to the end of `git http-backend`, in milliseconds.
    pub duration_ms: f64,
}

/// Which entries to read. Every field narrows; the default reads everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestFilter {
    /// Only this repository (`owner/name`, case-insensitive).
    pub repo: Option<String>,
    /// Only requests that arrived at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only this service.
    pub service: Option<GitService>,
    /// Only entries with a sequence number above this.
    pub after_seq: Option<u64>,
    /// At most this many (the oldest matching ones).
    pub limit: Option<usize>,
}

impl RequestFilter {
    /// Everything about one repository.
    pub fn repo(full_name: impl Into<String>) -> Self {
        Self {
            repo: Some(full_name.into()),
            ..Self::default()
        }
    }

    /// Narrows to one service.
    pub fn service(mut self, service: GitService) -> Self {
        self.service = Some(service);
        self
    }

    /// Narrows to requests that arrived at or after `since`.
    pub fn since(mut self, since: jiff::Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    fn matches(
        &self,
        entry: &RequestLogEntry,
        repo_lower: Option<&str>,
        since_nanos: Option<i128>,
    ) -> bool {
        repo_lower.is_none_or(|repo| entry.repo == repo)
            && since_nanos.is_none_or(|since| i128::from(entry.unix_nanos) >= since)
            && self.service.is_none_or(|service| entry.service == service)
            && self.after_seq.is_none_or(|after| entry.seq > after)
    }
}

/// The bounded request log. Cloning shares it.
#[derive(Debug, Clone)]
pub struct RequestLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: Mutex<VecDeque<RequestLogEntry>>,
    capacity: usize,
    next_seq: AtomicU64,
}

/// A request being served, to be completed into a [`RequestLogEntry`].
#[derive(Debug, Clone)]
pub(crate) struct PendingRequest {
    pub arrived: jiff::Timestamp,
    pub started: std::time::Instant,
    pub repo: String,
    pub service: GitService,
    pub command: Option<String>,
    pub client: String,
    pub user: Option<String>,
    pub protocol: Option<String>,
}

impl RequestLog {
    /// An empty log keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
                capacity: capacity.max(1),
                next_seq: AtomicU64::new(1),
            }),
        }
    }

    /// Records a completed request; returns the entry.
    pub(crate) fn complete(
        &self,
        pending: PendingRequest,
        status: u16,
        outcome: Outcome,
    ) -> RequestLogEntry {
        let entry = RequestLogEntry {
            seq: 0,
            time: format!("{:.9}", pending.arrived),
            unix_nanos: i64::try_from(pending.arrived.as_nanosecond()).unwrap_or(i64::MAX),
            repo: pending.repo,
            service: pending.service,
            command: pending.command,
            client: pending.client,
            user: pending.user,
            protocol: pending.protocol,
            status,
            outcome,
            duration_ms: pending.started.elapsed().as_secs_f64() * 1000.0,
        };
        let mut entries = self.inner.entries.lock();
        let mut entry = entry;
        entry.seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        if entries.len() == self.inner.capacity {
            entries.pop_front();
        }
        entries.push_back(entry.clone());
        entry
    }

    /// The entries matching `filter`, in arrival order.
    pub fn query(&self, filter: &RequestFilter) -> Vec<RequestLogEntry> {
        let repo_lower = filter
            .repo
            .as_ref()
            .map(|r| r.trim_end_matches(".git").to_ascii_lowercase());
        let since_nanos = filter.since.map(|t| t.as_nanosecond());
        let mut found: Vec<RequestLogEntry> = self
            .inner
            .entries
            .lock()
            .iter()
            .filter(|entry| filter.matches(entry, repo_lower.as_deref(), since_nanos))
            .cloned()
            .collect();
        found.sort_by_key(|entry| (entry.unix_nanos, entry.seq));
        if let Some(limit) = filter.limit {
            found.truncate(limit);
        }
        found
    }

    /// Every entry, in arrival order.
    pub fn entries(&self) -> Vec<RequestLogEntry> {
        self.query(&RequestFilter::default())
    }

    /// How many entries are kept now.
    pub fn len(&self) -> usize {
        self.inner.entries.lock().len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Arrival times of one repository's upload-pack advertisements: its polls.
    pub fn poll_times(&self, full_name: &str) -> Vec<jiff::Timestamp> {
        self.query(&RequestFilter::repo(full_name).service(GitService::UploadPackAdvertisement))
            .into_iter()
            .filter_map(|entry| jiff::Timestamp::from_nanosecond(i128::from(entry.unix_nanos)).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(repo: &str, service: GitService, arrived: jiff::Timestamp) -> PendingRequest {
        PendingRequest {
            arrived,
            started: std::time::Instant::now(),
            repo: repo.into(),
            service,
            command: None,
            client: "127.0.0.1:1".into(),
            user: None,
            protocol: None,
        }
    }

    #[test]
    fn query_filters_and_orders_by_arrival() {
        let log = RequestLog::new(10);
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let t1 = t0 + jiff::SignedDuration::from_millis(1500);
        // Completed out of arrival order.
        log.complete(
            pending("o/b", GitService::UploadPackAdvertisement, t1),
            200,
            Outcome::Ok,
        );
        log.complete(
            pending("o/b", GitService::UploadPackAdvertisement, t0),
            200,
            Outcome::Ok,
        );
        log.complete(
            pending("o/a", GitService::ReceivePack, t1),
            200,
            Outcome::Ok,
        );
        let b = log.query(&RequestFilter::repo("O/B.git"));
        assert_eq!(b.len(), 2);
        assert!(b[0].unix_nanos < b[1].unix_nanos);
        assert_eq!(b[0].time, "2023-11-14T22:13:20.000000000Z");
        assert_eq!(log.query(&RequestFilter::default().since(t1)).len(), 2);
        assert_eq!(
            log.query(&RequestFilter::default().service(GitService::ReceivePack))
                .len(),
            1
        );
        assert_eq!(log.poll_times("o/b"), vec![t0, t1]);
    }

    #[test]
    fn the_log_is_bounded() {
        let log = RequestLog::new(3);
        let now = jiff::Timestamp::now();
        for _ in 0..5 {
            log.complete(
                pending("o/a", GitService::UploadPack, now),
                200,
                Outcome::Ok,
            );
        }
        let entries = log.entries();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].seq, 3, "the oldest were dropped");
    }

    #[test]
    fn services_round_trip_through_their_names() {
        for service in [
            GitService::UploadPackAdvertisement,
            GitService::UploadPack,
            GitService::ReceivePackAdvertisement,
            GitService::ReceivePack,
        ] {
            assert_eq!(GitService::parse(service.as_str()), Some(service));
            assert_eq!(serde_json::to_value(service).unwrap(), service.as_str());
        }
    }
}
