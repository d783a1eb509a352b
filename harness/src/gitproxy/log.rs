//! The proxy's bounded log of git requests, in the git server's own entry shape.
//!
//! Suites already read [`gitserver::RequestLogEntry`] lists from the embedded server; the
//! proxy produces the same entries for any upstream, so measurements do not care which
//! one they come from. An entry is written when its response body has been delivered (or
//! has failed), with the arrival time stamped by the harness's clock.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use gitserver::request_log::Outcome;
use gitserver::{GitService, RequestFilter, RequestLogEntry};
use http::StatusCode;
use parking_lot::Mutex;

/// The status recorded for a request whose client went away before any answer: nginx's
/// "client closed request", since no real status was sent.
pub(crate) const CLIENT_CLOSED: u16 = 499;

/// The bounded log. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct ProxyLog {
    inner: Arc<Mutex<LogState>>,
    capacity: usize,
}

#[derive(Debug)]
struct LogState {
    entries: VecDeque<RequestLogEntry>,
    next_seq: u64,
}

/// What is known about a git request when it arrives.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub arrived: jiff::Timestamp,
    pub started: Instant,
    pub repo: String,
    pub service: GitService,
    pub client: String,
    pub user: Option<String>,
    pub protocol: Option<String>,
    /// Filled in by the request body as it streams past (see `v2_command`).
    pub command: Arc<OnceLock<String>>,
}

impl ProxyLog {
    /// An empty log keeping at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Mutex::new(LogState {
                // Grows on demand: a million-entry default must not cost memory up front.
                entries: VecDeque::with_capacity(capacity.min(4096)),
                next_seq: 1,
            })),
            capacity,
        }
    }

    /// Appends the entry of a finished request, dropping the oldest beyond capacity.
    pub(crate) fn record(&self, arrival: Arrival, status: u16, outcome: Outcome) {
        let duration_ms = arrival.started.elapsed().as_secs_f64() * 1000.0;
        let mut entry = RequestLogEntry {
            seq: 0,
            time: format!("{:.9}", arrival.arrived),
            unix_nanos: i64::try_from(arrival.arrived.as_nanosecond()).unwrap_or(i64::MAX),
            repo: arrival.repo,
            service: arrival.service,
            command: arrival.command.get().cloned(),
            client: arrival.client,
            user: arrival.user,
            protocol: arrival.protocol,
            status,
            outcome,
            duration_ms,
        };
        tracing::trace!(repo = %entry.repo, service = %entry.service, status, ?outcome, "git request");
        let mut state = self.inner.lock();
        // Numbered under the lock, so sequence order is the log's order.
        entry.seq = state.next_seq;
        state.next_seq += 1;
        if state.entries.len() >= self.capacity {
            state.entries.pop_front();
        }
        state.entries.push_back(entry);
    }

    /// The entries matching `filter`, sorted by arrival (ties by sequence number), as the
    /// git server's log answers the same filter.
    pub(crate) fn query(&self, filter: &RequestFilter) -> Vec<RequestLogEntry> {
        let repo = filter.repo.as_deref().map(super::classify::normalize_repo);
        let since = filter.since.map(|t| t.as_nanosecond());
        let mut found: Vec<RequestLogEntry> = self
            .inner
            .lock()
            .entries
            .iter()
            .filter(|entry| {
                repo.as_deref().is_none_or(|repo| entry.repo == repo)
                    && since.is_none_or(|since| i128::from(entry.unix_nanos) >= since)
                    && filter
                        .service
                        .is_none_or(|service| entry.service == service)
                    && filter.after_seq.is_none_or(|after| entry.seq > after)
            })
            .cloned()
            .collect();
        found.sort_by_key(|entry| (entry.unix_nanos, entry.seq));
        if let Some(limit) = filter.limit {
            found.truncate(limit);
        }
        found
    }
}

/// How a response status is recorded when the proxy forwarded the request.
pub(crate) fn outcome_of(status: StatusCode) -> Outcome {
    match status.as_u16() {
        200..=299 => Outcome::Ok,
        401 => Outcome::Unauthorized,
        403 => Outcome::Forbidden,
        404 => Outcome::NotFound,
        503 => Outcome::Refused,
        _ => Outcome::Error,
    }
}

/// Writes one request's entry exactly once: when its response completes, or, if it is
/// dropped first (client gone, body failed), with [`Outcome::Error`].
#[derive(Debug)]
pub(crate) struct Recorder {
    log: ProxyLog,
    arrival: Option<Arrival>,
    status: u16,
    outcome: Outcome,
}

impl Recorder {
    pub(crate) fn new(log: ProxyLog, arrival: Arrival) -> Self {
        Self {
            log,
            arrival: Some(arrival),
            status: CLIENT_CLOSED,
            outcome: Outcome::Error,
        }
    }

    /// The status answered, and the outcome to record if its body completes.
    pub(crate) fn answered(&mut self, status: u16, outcome: Outcome) {
        self.status = status;
        self.outcome = outcome;
    }

    /// The response was delivered whole.
    pub(crate) fn complete(mut self) {
        let outcome = self.outcome;
        self.write(outcome);
    }

    /// The response failed or was abandoned.
    pub(crate) fn fail(mut self) {
        self.write(Outcome::Error);
    }

    fn write(&mut self, outcome: Outcome) {
        if let Some(arrival) = self.arrival.take() {
            self.log.record(arrival, self.status, outcome);
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.write(Outcome::Error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(repo: &str, service: GitService, arrived: jiff::Timestamp) -> Arrival {
        Arrival {
            arrived,
            started: Instant::now(),
            repo: repo.to_owned(),
            service,
            client: "127.0.0.1:1".to_owned(),
            user: None,
            protocol: None,
            command: Arc::default(),
        }
    }

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    #[test]
    fn the_log_keeps_the_newest_entries_up_to_capacity() {
        let log = ProxyLog::new(3);
        for second in 0..5 {
            log.record(
                arrival("o/a", GitService::UploadPack, at(second)),
                200,
                Outcome::Ok,
            );
        }
        let entries = log.query(&RequestFilter::default());
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(entries[0].time, "2023-11-14T22:13:22.000000000Z");
        assert_eq!(entries[0].unix_nanos, 1_700_000_002_000_000_000);
    }

    #[test]
    fn a_zero_capacity_still_keeps_the_latest_entry() {
        let log = ProxyLog::new(0);
        log.record(
            arrival("o/a", GitService::UploadPack, at(0)),
            200,
            Outcome::Ok,
        );
        log.record(
            arrival("o/b", GitService::UploadPack, at(1)),
            200,
            Outcome::Ok,
        );
        let entries = log.query(&RequestFilter::default());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].repo, "o/b");
    }

    #[test]
    fn queries_filter_like_the_git_servers_log_and_sort_by_arrival() {
        let log = ProxyLog::new(100);
        // Completed out of arrival order: seq 1 arrived last.
        log.record(
            arrival("o/b", GitService::UploadPackAdvertisement, at(2)),
            200,
            Outcome::Ok,
        );
        log.record(
            arrival("o/b", GitService::UploadPackAdvertisement, at(0)),
            503,
            Outcome::Refused,
        );
        log.record(
            arrival("o/a", GitService::ReceivePack, at(1)),
            200,
            Outcome::Ok,
        );
        log.record(
            arrival("o/b", GitService::UploadPack, at(3)),
            200,
            Outcome::Ok,
        );

        let b = log.query(&RequestFilter::repo("O/B.git"));
        let order: Vec<(i64, u64)> = b.iter().map(|e| (e.unix_nanos, e.seq)).collect();
        assert_eq!(order.len(), 3);
        assert!(order.is_sorted(), "{order:?}");
        assert_eq!(b[0].seq, 2);

        let adverts =
            log.query(&RequestFilter::repo("o/b").service(GitService::UploadPackAdvertisement));
        assert_eq!(adverts.len(), 2);

        let since = log.query(&RequestFilter::default().since(at(2)));
        assert_eq!(since.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 4]);

        let after = log.query(&RequestFilter {
            after_seq: Some(2),
            ..RequestFilter::default()
        });
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);

        let limited = log.query(&RequestFilter {
            limit: Some(2),
            ..RequestFilter::default()
        });
        assert_eq!(
            limited.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );

        assert!(log.query(&RequestFilter::repo("o/none")).is_empty());
    }

    #[test]
    fn a_recorder_writes_once_with_the_outcome_of_how_it_ended() {
        let log = ProxyLog::new(10);
        let command = Arc::new(OnceLock::new());
        let mut first = arrival("o/a", GitService::UploadPack, at(0));
        first.command = command.clone();
        let mut completed = Recorder::new(log.clone(), first);
        completed.answered(200, Outcome::Ok);
        command.set("fetch".to_owned()).unwrap();
        completed.complete();

        let mut failed = Recorder::new(log.clone(), arrival("o/a", GitService::UploadPack, at(1)));
        failed.answered(200, Outcome::Ok);
        failed.fail();

        let mut dropped = Recorder::new(log.clone(), arrival("o/a", GitService::UploadPack, at(2)));
        dropped.answered(404, Outcome::NotFound);
        drop(dropped);

        drop(Recorder::new(
            log.clone(),
            arrival("o/a", GitService::UploadPack, at(3)),
        ));

        let entries = log.query(&RequestFilter::default());
        let summary: Vec<(u16, Outcome, Option<&str>)> = entries
            .iter()
            .map(|e| (e.status, e.outcome, e.command.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (200, Outcome::Ok, Some("fetch")),
                (200, Outcome::Error, None),
                (404, Outcome::Error, None),
                (CLIENT_CLOSED, Outcome::Error, None),
            ]
        );
    }

    #[test]
    fn statuses_map_to_the_git_servers_outcomes() {
        for (status, outcome) in [
            (200, Outcome::Ok),
            (204, Outcome::Ok),
            (401, Outcome::Unauthorized),
            (403, Outcome::Forbidden),
            (404, Outcome::NotFound),
            (503, Outcome::Refused),
            (429, Outcome::Error),
            (500, Outcome::Error),
            (502, Outcome::Error),
            (301, Outcome::Error),
        ] {
            assert_eq!(
                outcome_of(StatusCode::from_u16(status).unwrap()),
                outcome,
                "{status}"
            );
        }
    }
}
