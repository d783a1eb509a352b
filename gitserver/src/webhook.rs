//! Signed push webhooks, delivered in the background with bounded retries, and recorded.
//!
//! Deliveries look like Gitea's: the same JSON payload, the Gitea, Gogs and GitHub event
//! headers, and `X-Gitea-Signature` / `X-Hub-Signature-256` HMAC-SHA256 signatures of the
//! payload keyed with the hook's secret, so a controller's Gitea or GitHub webhook handler
//! accepts them unchanged. Unlike Gitea, a failed delivery is retried (with doubling
//! backoff, up to a bound), because a benchmark that loses a webhook to a transient error
//! measures the wrong thing. Every delivery's outcome is kept for the harness to read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit as _, Mac as _};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::config::WebhookSettings;
use crate::metrics::Metrics;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The hex HMAC-SHA256 of `body` keyed with `secret` (`X-Gitea-Signature`; prefixed with
/// `sha256=` it is `X-Hub-Signature-256`).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex, with or without a `sha256=` prefix) is `body` signed with
/// `secret`. Compared in constant time.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let hex_part = signature.strip_prefix("sha256=").unwrap_or(signature);
    let Ok(expected) = hex::decode(hex_part) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// One webhook delivery and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery id (`X-Gitea-Delivery`, `X-GitHub-Delivery`).
    pub id: String,
    /// The hook's id.
    pub hook_id: i64,
    /// `owner/name` of the repository.
    pub repo: String,
    /// The event (`push`).
    pub event: String,
    /// The ref pushed (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The ref's new commit.
    pub after: String,
    /// Where it was sent.
    pub url: String,
    /// When the event happened (queued for delivery), RFC 3339.
    pub queued_at: String,
    /// The same, nanoseconds since the Unix epoch.
    pub queued_unix_nanos: i64,
    /// When the last attempt ended, RFC 3339.
    pub completed_at: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last HTTP status received, if any.
    pub status: Option<u16>,
    /// Whether an attempt got a 2xx answer.
    pub success: bool,
    /// The last error, if the delivery failed.
    pub error: Option<String>,
    /// From queueing to the end of the last attempt, in milliseconds.
    pub duration_ms: f64,
}

/// The recorded deliveries, bounded (oldest first out). Cloning shares it.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    inner: Arc<Mutex<VecDeque<Delivery>>>,
    capacity: usize,
}

impl DeliveryLog {
    /// An empty log keeping at most `capacity` deliveries.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.max(1),
        }
    }

    fn record(&self, delivery: Delivery) {
        let mut log = self.inner.lock();
        if log.len() == self.capacity {
            log.pop_front();
        }
        log.push_back(delivery);
    }

    /// Every recorded delivery, in completion order.
    pub fn all(&self) -> Vec<Delivery> {
        self.inner.lock().iter().cloned().collect()
    }

    /// Deliveries of one repository (`owner/name`, case-insensitive) and, optionally, hook.
    pub fn query(&self, repo: Option<&str>, hook_id: Option<i64>) -> Vec<Delivery> {
        self.inner
            .lock()
            .iter()
            .filter(|d| {
                repo.is_none_or(|r| d.repo.eq_ignore_ascii_case(r.trim_end_matches(".git")))
            })
            .filter(|d| hook_id.is_none_or(|id| d.hook_id == id))
            .cloned()
            .collect()
    }
}

/// Where and how one hook is delivered.
#[derive(Debug, Clone)]
pub(crate) struct HookTarget {
    pub id: i64,
    pub url: String,
    pub content_type: String,
    pub http_method: String,
    pub secret: String,
    pub authorization_header: String,
}

/// One payload for one hook.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryJob {
    pub target: HookTarget,
    pub repo: String,
    pub event: &'static str,
    pub ref_name: String,
    pub after: String,
    pub payload: Arc<Vec<u8>>,
    pub queued_at: jiff::Timestamp,
    pub queued: Instant,
}

/// Queues deliveries; a background task sends them.
#[derive(Debug, Clone)]
pub(crate) struct Dispatcher {
    tx: mpsc::UnboundedSender<DeliveryJob>,
}

impl Dispatcher {
    /// Starts the delivery task. It stops when every `Dispatcher` clone is dropped (pending
    /// deliveries then finish) or when the returned handle is aborted.
    pub(crate) fn start(
        settings: WebhookSettings,
        log: DeliveryLog,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), crate::Error> {
        crate::tls::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.attempt_timeout)
            .connect_timeout(settings.attempt_timeout)
            .user_agent("GiteaServer")
            .build()
            .map_err(|e| crate::Error::HttpClient(fleet_api::error::Foreign(e)))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(rx, client, settings, log, metrics));
        Ok((Self { tx }, task))
    }

    /// Queues a delivery; never blocks.
    pub(crate) fn enqueue(&self, job: DeliveryJob) {
        if self.tx.send(job).is_err() {
            tracing::warn!("webhook dispatcher stopped; delivery dropped");
        }
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<DeliveryJob>,
    client: reqwest::Client,
    settings: WebhookSettings,
    log: DeliveryLog,
    metrics: Arc<Metrics>,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    while let Some(job) = rx.recv().await {
        while in_flight.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (client, settings, log, metrics) = (
            client.clone(),
            settings.clone(),
            log.clone(),
            metrics.clone(),
        );
        in_flight.spawn(async move {
            let delivery = deliver(&client, &settings, job).await;
            metrics.observe_delivery(delivery.success);
            if !delivery.success {
                tracing::warn!(hook = delivery.hook_id, url = %delivery.url, error = ?delivery.error, "webhook delivery failed");
            }
            log.record(delivery);
            drop(permit);
        });
    }
    while in_flight.join_next().await.is_some() {}
}

/// The request body and its content type for a hook's `content_type`: the JSON payload
/// itself, or (`form`) `payload=<json>` form-encoded, as Gitea posts them. The signature is
/// always over the JSON.
pub(crate) fn encode_body(content_type: &str, payload: &[u8]) -> (Vec<u8>, &'static str) {
    if content_type == "form" {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &String::from_utf8_lossy(payload))
            .finish();
        (form.into_bytes(), "application/x-www-form-urlencoded")
    } else {
        (payload.to_vec(), "application/json")
    }
}

/// Sends one job, retrying with doubling backoff; returns the record.
async fn deliver(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    job: DeliveryJob,
) -> Delivery {
    let id = uuid::Uuid::new_v4().to_string();
    let signature = sign(job.target.secret.as_bytes(), &job.payload);
    let (body, content_type) = encode_body(&job.target.content_type, &job.payload);
    let method = if job.target.http_method.eq_ignore_ascii_case("PUT") {
        reqwest::Method::PUT
    } else {
        reqwest::Method::POST
    };
    let max_attempts = settings.max_attempts.max(1);
    let mut backoff = settings.initial_backoff;
    let (mut status, mut error, mut success, mut attempts) = (None, None, false, 0);
    while attempts < max_attempts {
        attempts += 1;
        let mut request = client
            .request(method.clone(), &job.target.url)
            .header("Content-Type", content_type)
            .header("X-Gitea-Delivery", &id)
            .header("X-Gitea-Event", job.event)
            .header("X-Gitea-Event-Type", job.event)
            .header("X-Gitea-Signature", &signature)
            .header("X-Gitea-Hook-Installation-Target-Type", "repository")
            .header("X-Gogs-Delivery", &id)
            .header("X-Gogs-Event", job.event)
            .header("X-Gogs-Event-Type", job.event)
            .header("X-Gogs-Signature", &signature)
            .header("X-GitHub-Delivery", &id)
            .header("X-GitHub-Event", job.event)
            .header("X-GitHub-Event-Type", job.event)
            .header("X-GitHub-Hook-Installation-Target-Type", "repository")
            .header("X-Hub-Signature-256", format!("sha256={signature}"))
            .body(body.clone());
        if !job.target.authorization_header.is_empty() {
            request = request.header("Authorization", &job.target.authorization_header);
        }
        match request.send().await {
            Ok(response) => {
                status = Some(response.status().as_u16());
                if response.status().is_success() {
                    success = true;
                    error = None;
                    break;
                }
                error = Some(format!("HTTP {}", response.status()));
            }
            Err(e) => {
                status = None;
                error = Some(e.to_string());
            }
        }
        if attempts < max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(Duration::from_secs(60));
        }
    }
    Delivery {
        id,
        hook_id: job.target.id,
        repo: job.repo,
        event: job.event.to_owned(),
        ref_name: job.ref_name,
        after: job.after,
        url: job.target.url,
        queued_at: format!("{:.9}", job.queued_at),
        queued_unix_nanos: i64::try_from(job.queued_at.as_nanosecond()).unwrap_or(i64::MAX),
        completed_at: format!("{:.9}", jiff::Timestamp::now()),
        attempts,
        status,
        success,
        error,
        duration_ms: job.queued.elapsed().as_secs_f64() * 1000.0,
    }
}

/// The longest branch filter a hook may have, in bytes.
pub(crate) const MAX_BRANCH_FILTER: usize = 1024;
/// The most patterns a filter's `{a,b}` groups may expand to.
const MAX_FILTER_PATTERNS: usize = 256;

/// Why a branch filter was refused at hook creation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BranchFilterError {
    /// The filter is longer than [`MAX_BRANCH_FILTER`].
    #[error("branch filter is longer than {MAX_BRANCH_FILTER} bytes")]
    TooLong,
    /// Its brace groups expand to more than [`MAX_FILTER_PATTERNS`] patterns.
    #[error("branch filter expands to more than {MAX_FILTER_PATTERNS} patterns")]
    TooManyPatterns,
}

/// Checks a branch filter before it is stored: matching it later must stay cheap, since it
/// runs for every hook on every push.
pub(crate) fn check_branch_filter(filter: &str) -> Result<(), BranchFilterError> {
    if filter.len() > MAX_BRANCH_FILTER {
        return Err(BranchFilterError::TooLong);
    }
    expand_braces(filter.trim()).map(drop)
}

/// Whether `branch` matches a Gitea branch filter (a glob with `*`, `?` and `{a,b}`;
/// empty or `*` matches everything). A filter over the bounds (only possible in metadata
/// written by hand) matches nothing.
pub(crate) fn branch_filter_matches(filter: &str, branch: &str) -> bool {
    let filter = filter.trim();
    if filter.is_empty() || filter == "*" {
        return true;
    }
    if filter.len() > MAX_BRANCH_FILTER {
        return false;
    }
    let branch: Vec<char> = branch.chars().collect();
    expand_braces(filter).is_ok_and(|patterns| {
        patterns.iter().any(|pattern| {
            let pattern: Vec<char> = pattern.chars().collect();
            glob_matches(&pattern, &branch)
        })
    })
}

/// Expands `{a,b}` groups left to right (`x{a,b}{c,d}` is four patterns), refusing to make
/// more than [`MAX_FILTER_PATTERNS`]: nested or repeated groups would otherwise multiply.
fn expand_braces(pattern: &str) -> Result<Vec<String>, BranchFilterError> {
    let mut done = Vec::new();
    let mut pending = vec![pattern.to_owned()];
    while let Some(current) = pending.pop() {
        let group = current
            .find('{')
            .and_then(|open| current[open..].find('}').map(|len| (open, open + len)));
        let Some((open, close)) = group else {
            done.push(current);
            if done.len() > MAX_FILTER_PATTERNS {
                return Err(BranchFilterError::TooManyPatterns);
            }
            continue;
        };
        let (head, tail) = (&current[..open], &current[close + 1..]);
        for alternative in current[open + 1..close].split(',') {
            pending.push(format!("{head}{alternative}{tail}"));
            if pending.len() + done.len() > MAX_FILTER_PATTERNS {
                return Err(BranchFilterError::TooManyPatterns);
            }
        }
    }
    done.reverse();
    Ok(done)
}

/// `*` (any run) and `?` (one character) matching in O(pattern × text) at worst: after a
/// mismatch only the most recent `*` is retried, which is enough because a later `*` can
/// absorb whatever an earlier one would have.
pub(crate) fn glob_matches(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                retry = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match retry {
                Some((star, start)) => {
                    p = star + 1;
                    t = start + 1;
                    retry = Some((star, start + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_right_secret() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signature = sign(b"right", body);
        assert_eq!(signature.len(), 64);
        assert!(verify(b"right", body, &signature));
        assert!(verify(b"right", body, &format!("sha256={signature}")));
        assert!(!verify(b"wrong", body, &signature));
        assert!(!verify(b"right", b"tampered", &signature));
        assert!(!verify(b"right", body, "not hex"));
    }

    #[test]
    fn known_hmac_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn branch_filters_are_globs() {
        assert!(branch_filter_matches("", "main"));
        assert!(branch_filter_matches("*", "feature/x"));
        assert!(branch_filter_matches("main", "main"));
        assert!(!branch_filter_matches("main", "mainline"));
        assert!(branch_filter_matches("{main,release/*}", "release/1.0"));
        assert!(!branch_filter_matches("{main,release/*}", "dev"));
        assert!(branch_filter_matches("fe?ture", "feature"));
        assert!(
            branch_filter_matches("r?l", "rél"),
            "? is one character, not one byte"
        );
        assert!(branch_filter_matches("a{b,c}{d,e}", "ace"));
        assert!(!branch_filter_matches("a{b,c}{d,e}", "ab"));
    }

    #[test]
    fn hostile_branch_filters_are_bounded() {
        // Exponential for a naive backtracking matcher; linear-ish here.
        let filter = "*a".repeat(40);
        assert!(!branch_filter_matches(&filter, &"a".repeat(39)));
        assert!(branch_filter_matches(&filter, &"a".repeat(41)));
        assert_eq!(
            check_branch_filter(&"{a,b}".repeat(9)),
            Err(BranchFilterError::TooManyPatterns)
        );
        assert_eq!(
            check_branch_filter(&"x".repeat(MAX_BRANCH_FILTER + 1)),
            Err(BranchFilterError::TooLong)
        );
        assert_eq!(check_branch_filter("{main,release/*}"), Ok(()));
    }
}
