//! A controller-runtime style work queue and the workers that drain it.
//!
//! Why not `kube::runtime::Controller` for every reconciler: the reconcilers here are fed by
//! cross-kind indexes (a Cluster label change enqueues exactly the Bundles whose selectors
//! reference that label; a BundleDeployment status change marks its Bundle, GitRepo and
//! Cluster for a coalesced status write), they need delayed adds that coalesce per key (the
//! status window), and the contract asks for client-go's `workqueue_depth` and
//! `workqueue_queue_duration_seconds`, which kube's scheduler does not expose. This queue
//! has client-go's semantics: a key is queued at most once; a key added while it is being
//! processed is processed again afterwards, never concurrently; delayed adds keep the
//! earliest deadline; failures back off exponentially per key.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Metrics, QueueLabels};

/// What a reconcile asks for once it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `delay` even if nothing changes.
    pub const fn requeue(delay: Duration) -> Self {
        Action {
            requeue_after: Some(delay),
        }
    }

    /// Wait for the next change.
    pub const fn await_change() -> Self {
        Action {
            requeue_after: None,
        }
    }

    /// The requested delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Exponential per-key backoff for failures: 5ms doubling up to `max` (client-go's default
/// item rate limiter, with a lower cap so that tests and suites recover within seconds).
pub fn backoff(retries: u32, max: Duration) -> Duration {
    let factor = 2u64.saturating_pow(retries.min(30));
    Duration::from_millis(5u64.saturating_mul(factor)).min(max)
}

struct State<K> {
    queue: VecDeque<K>,
    /// Keys waiting to be processed, with the time they were first added.
    dirty: HashMap<K, Instant>,
    processing: HashSet<K>,
    /// Keys with a pending delayed add, and its deadline.
    waiting: HashMap<K, Instant>,
    failures: HashMap<K, u32>,
    shutdown: bool,
}

struct Inner<K> {
    name: String,
    state: Mutex<State<K>>,
    notify: Notify,
    metrics: Arc<Metrics>,
    labels: QueueLabels,
}

/// A deduplicating, delaying work queue of keys.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
        }
    }
}

impl<K> WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// A new queue whose metrics carry `name`.
    pub fn new(name: &str, metrics: Arc<Metrics>) -> Self {
        WorkQueue {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashMap::new(),
                    processing: HashSet::new(),
                    waiting: HashMap::new(),
                    failures: HashMap::new(),
                    shutdown: false,
                }),
                notify: Notify::new(),
                metrics,
                labels: QueueLabels {
                    name: name.to_owned(),
                },
            }),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Queues `key` now (no-op if it is already queued).
    pub fn add(&self, key: K) {
        let mut state = self.inner.state.lock();
        if state.shutdown {
            return;
        }
        self.add_locked(&mut state, key);
    }

    fn add_locked(&self, state: &mut State<K>, key: K) {
        if let Entry::Vacant(entry) = state.dirty.entry(key.clone()) {
            entry.insert(Instant::now());
            self.inner
                .metrics
                .queue_adds
                .get_or_create(&self.inner.labels)
                .inc();
            if !state.processing.contains(&key) {
                state.queue.push_back(key);
                self.set_depth(state);
                self.inner.notify.notify_one();
            }
        }
    }

    /// Queues every key of `keys`.
    pub fn add_all(&self, keys: impl IntoIterator<Item = K>) {
        let mut state = self.inner.state.lock();
        if state.shutdown {
            return;
        }
        for key in keys {
            self.add_locked(&mut state, key);
        }
    }

    /// Queues `key` after `delay`; an earlier pending deadline for the same key wins.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let deadline = Instant::now() + delay;
        {
            let mut state = self.inner.state.lock();
            if state.shutdown {
                return;
            }
            match state.waiting.get(&key) {
                Some(existing) if *existing <= deadline => return,
                _ => {
                    state.waiting.insert(key.clone(), deadline);
                }
            }
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            let mut state = queue.inner.state.lock();
            if state.waiting.get(&key) == Some(&deadline) {
                state.waiting.remove(&key);
                if !state.shutdown {
                    queue.add_locked(&mut state, key);
                }
            }
        });
    }

    /// Whether `key` has a delayed add pending.
    pub fn is_waiting(&self, key: &K) -> bool {
        self.inner.state.lock().waiting.contains_key(key)
    }

    /// Whether `key` is queued, being processed or has a delayed add pending.
    pub fn contains(&self, key: &K) -> bool {
        let state = self.inner.state.lock();
        state.dirty.contains_key(key)
            || state.processing.contains(key)
            || state.waiting.contains_key(key)
    }

    /// Cancels a pending delayed add of `key`.
    pub fn cancel_delayed(&self, key: &K) {
        self.inner.state.lock().waiting.remove(key);
    }

    /// Number of keys queued and not yet being processed.
    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether nothing is queued, processing or delayed.
    pub fn is_idle(&self) -> bool {
        let state = self.inner.state.lock();
        state.queue.is_empty() && state.processing.is_empty() && state.waiting.is_empty()
    }

    fn set_depth(&self, state: &State<K>) {
        self.inner
            .metrics
            .queue_depth
            .get_or_create(&self.inner.labels)
            .set(state.queue.len() as i64);
    }

    /// Waits for the next key; `None` once the queue is shut down and drained of waiters.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.inner.state.lock();
                if state.shutdown {
                    return None;
                }
                if let Some(key) = state.queue.pop_front() {
                    state.processing.insert(key.clone());
                    if let Some(added) = state.dirty.remove(&key) {
                        self.inner
                            .metrics
                            .queue_duration
                            .get_or_create(&self.inner.labels)
                            .observe(added.elapsed().as_secs_f64());
                    }
                    self.set_depth(&state);
                    return Some(key);
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let mut state = self.inner.state.lock();
        state.processing.remove(key);
        if state.dirty.contains_key(key) && !state.shutdown {
            state.queue.push_back(key.clone());
            self.set_depth(&state);
            self.inner.notify.notify_one();
        }
    }

    /// Counts a failure of `key` and returns how many it had before.
    pub fn record_failure(&self, key: &K) -> u32 {
        self.inner
            .metrics
            .queue_retries
            .get_or_create(&self.inner.labels)
            .inc();
        let mut state = self.inner.state.lock();
        let count = state.failures.entry(key.clone()).or_insert(0);
        let before = *count;
        *count += 1;
        before
    }

    /// Forgets the failures of `key` (after a success).
    pub fn forget(&self, key: &K) {
        self.inner.state.lock().failures.remove(key);
    }

    /// Stops the queue: `get` returns `None`, adds are ignored.
    pub fn shutdown(&self) {
        let mut state = self.inner.state.lock();
        state.shutdown = true;
        state.waiting.clear();
        drop(state);
        self.inner.notify.notify_waiters();
    }
}

/// Spawns `workers` tasks that take keys from `queue` and run `reconcile` on them.
///
/// An `Ok(action)` forgets past failures and honours the requested requeue; an error (or a
/// panic, which is turned into an error message) goes through `error_policy`, which gets the
/// number of earlier consecutive failures of the key and decides when to retry (or, for an
/// object that is gone, not to). A panicking reconcile never takes a worker down.
pub fn spawn_workers<K, C, R, Fut, E, P>(
    queue: &WorkQueue<K>,
    workers: usize,
    ctx: &Arc<C>,
    reconcile: R,
    error_policy: P,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>>
where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    C: Send + Sync + 'static,
    R: Fn(K, Arc<C>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    E: std::error::Error + Send + 'static,
    P: Fn(&K, &ReconcileFailure<E>, u32, &C) -> Action + Send + Sync + Clone + 'static,
{
    (0..workers.max(1))
        .map(|_| {
            let queue = queue.clone();
            let ctx = ctx.clone();
            let reconcile = reconcile.clone();
            let error_policy = error_policy.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                loop {
                    let key = tokio::select! {
                        key = queue.get() => key,
                        () = cancel.cancelled() => None,
                    };
                    let Some(key) = key else { break };
                    let started = Instant::now();
                    let outcome = AssertUnwindSafe(reconcile(key.clone(), ctx.clone()))
                        .catch_unwind()
                        .await;
                    let elapsed = started.elapsed();
                    let metrics = &queue.inner.metrics;
                    metrics
                        .work_duration
                        .get_or_create(&queue.inner.labels)
                        .observe(elapsed.as_secs_f64());
                    let failure = match outcome {
                        Ok(Ok(action)) => {
                            queue.forget(&key);
                            let result = match action.requeue_after() {
                                Some(_) => "requeue_after",
                                None => "success",
                            };
                            metrics.record_reconcile(queue.name(), result, elapsed);
                            queue.done(&key);
                            if let Some(delay) = action.requeue_after() {
                                queue.add_after(key, delay);
                            }
                            continue;
                        }
                        Ok(Err(error)) => ReconcileFailure::Error(error),
                        Err(panic) => ReconcileFailure::Panic(panic_message(&*panic)),
                    };
                    metrics.record_reconcile(queue.name(), "error", elapsed);
                    let retries = queue.record_failure(&key);
                    tracing::warn!(queue = queue.name(), ?key, retries, error = %failure, "reconcile failed");
                    let action = error_policy(&key, &failure, retries, &ctx);
                    queue.done(&key);
                    if let Some(delay) = action.requeue_after() {
                        queue.add_after(key, delay);
                    }
                }
            })
        })
        .collect()
}

/// Why a reconcile failed.
#[derive(Debug)]
pub enum ReconcileFailure<E> {
    /// The reconcile returned an error.
    Error(E),
    /// The reconcile panicked (a bug); the message is kept and the key retried.
    Panic(String),
}

/// The error with its causes (the text the "reconcile failed" log line shows).
impl<E: std::error::Error> std::fmt::Display for ReconcileFailure<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReconcileFailure::Error(error) => f.write_str(&fleet_api::error::chain(error)),
            ReconcileFailure::Panic(message) => write!(f, "panic: {message}"),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn queue() -> WorkQueue<String> {
        WorkQueue::new("test", Arc::new(Metrics::new()))
    }

    #[tokio::test]
    async fn a_key_is_queued_once_and_requeued_if_added_while_processing() {
        let q = queue();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        assert_eq!(q.len(), 2);
        let first = q.get().await.unwrap();
        assert_eq!(first, "a");
        q.add("a".into()); // while processing: not queued twice, not handed out concurrently
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&first);
        assert_eq!(q.get().await.unwrap(), "a");
    }

    #[tokio::test]
    async fn delayed_adds_keep_the_earliest_deadline() {
        let q = queue();
        q.add_after("a".into(), Duration::from_millis(1000));
        q.add_after("a".into(), Duration::from_millis(100));
        q.add_after("a".into(), Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(q.is_empty());
        let got = tokio::time::timeout(Duration::from_secs(5), q.get())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("a"));
        assert!(!q.is_waiting(&"a".to_owned()));
        q.done(&"a".to_owned());
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(q.is_empty(), "later deadlines were superseded");
    }

    #[tokio::test]
    async fn errors_and_panics_are_retried_never_dropped() {
        let q = queue();
        let calls = Arc::new(AtomicUsize::new(0));
        let cancel = CancellationToken::new();
        let _workers = spawn_workers(
            &q,
            2,
            &calls,
            |key: String, calls: Arc<AtomicUsize>| async move {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                match n {
                    0 => Err(std::io::Error::other(format!("{key} failed"))),
                    1 => panic!("boom"),
                    _ => Ok(Action::await_change()),
                }
            },
            |_key: &String,
             _err: &ReconcileFailure<std::io::Error>,
             retries: u32,
             _: &AtomicUsize| {
                Action::requeue(backoff(retries, Duration::from_millis(20)))
            },
            &cancel,
        );
        q.add("x".into());
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if calls.load(Ordering::SeqCst) >= 3 {
                break;
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        cancel.cancel();
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0, Duration::from_secs(1)), Duration::from_millis(5));
        assert_eq!(
            backoff(3, Duration::from_secs(1)),
            Duration::from_millis(40)
        );
        assert_eq!(backoff(40, Duration::from_secs(1)), Duration::from_secs(1));
    }
}
