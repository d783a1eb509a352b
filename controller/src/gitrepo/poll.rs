//! The polling schedule: each GitRepo polls every `pollingInterval` plus a uniform 0..+10%
//! jitter drawn afresh each time (Fleet PR 3151).
//!
//! The schedule is its own queue, separate from the sync queue: only the scheduler puts keys
//! in it (on creation, on an interval change, on the periodic resync), so no unrelated event
//! can reset, advance or drop a GitRepo's next poll. After a poll (failed or not) the next one
//! is due one jittered interval after the previous one started. Only the legacy switch
//! `drop-gitrepo-after-error` takes a GitRepo off the schedule after a failed poll; then the
//! resync does not bring it back either, only an edit of its spec does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;

use crate::queue::WorkQueue;
use crate::store::Key;
use fleet_api::GitRepo;

use super::validate::{self, Policy};

/// The polling interval of a GitRepo: its own (Fleet's default 15s when unset or empty),
/// raised to the policy's floor.
pub fn polling_interval(repo: &GitRepo, policy: &Policy) -> Duration {
    validate::effective_interval(&repo.spec, policy)
}

/// `interval` plus a uniform jitter in `[0, 10%]` of it (none with `no_jitter`).
pub fn next_delay(interval: Duration, no_jitter: bool) -> Duration {
    if no_jitter {
        return interval;
    }
    let fraction: f64 = rand::random_range(0.0..=0.1);
    interval + interval.mul_f64(fraction)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    interval: Duration,
    disabled: bool,
    generation: i64,
}

/// Which GitRepos poll, and when.
pub struct Scheduler {
    queue: WorkQueue<Key>,
    entries: Mutex<HashMap<Key, Entry>>,
    dropped: Mutex<HashSet<Key>>,
    no_jitter: bool,
    drop_after_error: bool,
    policy: Policy,
}

impl Scheduler {
    /// A scheduler feeding `queue` (the poll queue); `policy` sets the interval floor and
    /// which specs are refused (those are not polled).
    pub fn new(
        queue: WorkQueue<Key>,
        no_jitter: bool,
        drop_after_error: bool,
        policy: Policy,
    ) -> Self {
        Scheduler {
            queue,
            entries: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashSet::new()),
            no_jitter,
            drop_after_error,
            policy,
        }
    }

    /// What this controller accepts in a GitRepo spec.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The poll queue.
    pub fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    /// The delay until the next poll of a GitRepo with `interval`.
    pub fn next_delay(&self, interval: Duration) -> Duration {
        next_delay(interval, self.no_jitter)
    }

    /// Puts a GitRepo on the schedule, or updates it: a new GitRepo, a changed interval or
    /// re-enabled polling (re)arms its next poll; an edited spec revives a dropped GitRepo;
    /// anything else leaves the pending poll alone.
    pub fn upsert(&self, repo: &GitRepo) {
        let key = Key::of(&repo.metadata);
        // A refused spec (say, a file:// repo) must not reach git at all, not even ls-remote.
        let refused = validate::check(&repo.spec, &self.policy).is_err();
        let entry = Entry {
            interval: polling_interval(repo, &self.policy),
            disabled: repo.spec.disable_polling || refused,
            generation: repo.metadata.generation.unwrap_or_default(),
        };
        let previous = self.entries.lock().insert(key.clone(), entry.clone());
        let edited = previous
            .as_ref()
            .is_none_or(|p| p.generation != entry.generation);
        if edited {
            self.dropped.lock().remove(&key);
        }
        if entry.disabled {
            self.queue.cancel_delayed(&key);
            return;
        }
        let rearm = match &previous {
            None => true,
            Some(p) => p.interval != entry.interval || p.disabled,
        };
        if rearm {
            self.queue.cancel_delayed(&key);
            self.queue.add_after(key, self.next_delay(entry.interval));
        } else if edited && !self.queue.contains(&key) {
            self.queue.add_after(key, self.next_delay(entry.interval));
        }
    }

    /// Takes a deleted GitRepo off the schedule.
    pub fn remove(&self, key: &Key) {
        self.entries.lock().remove(key);
        self.dropped.lock().remove(key);
        self.queue.cancel_delayed(key);
    }

    /// After a poll: `Some(delay until the next one)`, or `None` when the GitRepo leaves the
    /// schedule (deleted, polling disabled, or — legacy only — the poll failed).
    pub fn after_poll(&self, key: &Key, failed: bool, elapsed: Duration) -> Option<Duration> {
        let entry = self.entries.lock().get(key).cloned()?;
        if entry.disabled {
            return None;
        }
        if failed && self.drop_after_error {
            self.dropped.lock().insert(key.clone());
            return None;
        }
        Some(self.next_delay(entry.interval).saturating_sub(elapsed))
    }

    /// The periodic resync: puts every known, polling GitRepo that is not already scheduled
    /// back on the schedule (legacy-dropped ones stay dropped).
    pub fn resync(&self) -> usize {
        let entries: Vec<(Key, Entry)> = self
            .entries
            .lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        let dropped = self.dropped.lock().clone();
        let mut rearmed = 0;
        for (key, entry) in entries {
            if entry.disabled || dropped.contains(&key) || self.queue.contains(&key) {
                continue;
            }
            self.queue.add_after(key, self.next_delay(entry.interval));
            rearmed += 1;
        }
        rearmed
    }

    /// Whether a GitRepo was dropped from the schedule (legacy only).
    pub fn is_dropped(&self, key: &Key) -> bool {
        self.dropped.lock().contains(key)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::Metrics;
    use fleet_api::GitRepoSpec;

    #[test]
    fn jitter_stays_within_zero_to_ten_percent_and_spreads() {
        let interval = Duration::from_secs(60);
        let samples: Vec<Duration> = (0..2000).map(|_| next_delay(interval, false)).collect();
        assert!(
            samples
                .iter()
                .all(|d| *d >= interval && *d <= Duration::from_secs(66))
        );
        // Uniform over [60s, 66s]: every 1-second bucket gets a share (expected ~333 each)
        // and the mean sits near 63s.
        let mut buckets = [0usize; 6];
        for d in &samples {
            let idx = ((d.as_secs_f64() - 60.0) as usize).min(5);
            buckets[idx] += 1;
        }
        assert!(buckets.iter().all(|n| *n > 200), "{buckets:?}");
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
        assert!((62.5..63.5).contains(&mean), "{mean}");
        // Drawn afresh each time: not one repeated value.
        let distinct: HashSet<u128> = samples.iter().map(Duration::as_nanos).collect();
        assert!(distinct.len() > 1900);
        assert_eq!(next_delay(interval, true), interval);
    }

    /// Lets the tests below use intervals under the production floor.
    fn test_policy() -> Policy {
        Policy {
            min_polling_interval: Duration::from_millis(1),
            ..Policy::default()
        }
    }

    fn scheduler(no_jitter: bool, drop_after_error: bool) -> Scheduler {
        Scheduler::new(
            WorkQueue::new("poll", Arc::new(Metrics::new())),
            no_jitter,
            drop_after_error,
            test_policy(),
        )
    }

    #[test]
    fn intervals_parse_go_durations_with_fleets_default_and_floor() {
        let repo = |interval: Option<&str>| {
            GitRepo::new(
                "r",
                GitRepoSpec {
                    polling_interval: interval.map(str::to_owned),
                    ..Default::default()
                },
            )
        };
        let policy = Policy::default();
        assert_eq!(
            polling_interval(&repo(Some("1m")), &policy),
            Duration::from_secs(60)
        );
        assert_eq!(
            polling_interval(&repo(None), &policy),
            Duration::from_secs(15)
        );
        assert_eq!(
            polling_interval(&repo(Some("1ns")), &policy),
            Duration::from_secs(15),
            "raised to the floor"
        );
    }

    #[tokio::test]
    async fn refused_specs_are_not_polled_until_fixed() {
        let key = Key::new("ns", "r");
        let scheduler = scheduler(false, false);
        let mut r = repo(1, "abc");
        r.spec.repo = "https://h/r".into();
        scheduler.upsert(&r);
        assert!(!scheduler.queue().is_waiting(&key), "invalid interval");
        assert_eq!(scheduler.after_poll(&key, false, Duration::ZERO), None);
        let mut file = repo(2, "10s");
        file.spec.repo = "file:///etc".into();
        scheduler.upsert(&file);
        assert!(!scheduler.queue().is_waiting(&key), "file:// repo");
        let mut fixed = repo(3, "10s");
        fixed.spec.repo = "https://h/r".into();
        scheduler.upsert(&fixed);
        assert!(scheduler.queue().is_waiting(&key));
    }

    fn repo(generation: i64, interval: &str) -> GitRepo {
        let mut r = GitRepo::new(
            "r",
            GitRepoSpec {
                repo: "https://h/r".into(),
                polling_interval: Some(interval.into()),
                ..Default::default()
            },
        );
        r.metadata.namespace = Some("ns".into());
        r.metadata.generation = Some(generation);
        r
    }

    #[tokio::test]
    async fn a_failed_poll_keeps_the_schedule_unless_the_legacy_switch_drops_it() {
        let key = Key::new("ns", "r");
        let current = scheduler(false, false);
        current.upsert(&repo(1, "10s"));
        assert!(current.queue().is_waiting(&key));
        let next = current
            .after_poll(&key, true, Duration::from_millis(100))
            .unwrap();
        assert!(next >= Duration::from_millis(9900) && next <= Duration::from_millis(10_900));

        let legacy = scheduler(true, true);
        legacy.upsert(&repo(1, "10s"));
        legacy.queue().cancel_delayed(&key);
        assert_eq!(
            legacy.after_poll(&key, false, Duration::ZERO),
            Some(Duration::from_secs(10))
        );
        assert_eq!(legacy.after_poll(&key, true, Duration::ZERO), None);
        assert!(legacy.is_dropped(&key));
        assert_eq!(legacy.resync(), 0, "the resync does not revive it");
        // An unrelated update (same generation) does not either; an edit does.
        legacy.upsert(&repo(1, "10s"));
        assert!(legacy.is_dropped(&key));
        legacy.upsert(&repo(2, "10s"));
        assert!(!legacy.is_dropped(&key));
        assert!(legacy.queue().is_waiting(&key));
    }

    #[tokio::test]
    async fn disable_polling_takes_the_gitrepo_off_the_schedule_and_back() {
        let key = Key::new("ns", "r");
        let scheduler = scheduler(false, false);
        let mut r = repo(1, "10s");
        scheduler.upsert(&r);
        assert!(scheduler.queue().is_waiting(&key));
        r.spec.disable_polling = true;
        r.metadata.generation = Some(2);
        scheduler.upsert(&r);
        assert!(!scheduler.queue().is_waiting(&key));
        assert_eq!(scheduler.after_poll(&key, false, Duration::ZERO), None);
        assert_eq!(scheduler.resync(), 0, "the resync leaves it off too");
        r.spec.disable_polling = false;
        r.metadata.generation = Some(3);
        scheduler.upsert(&r);
        assert!(scheduler.queue().is_waiting(&key));
    }

    #[tokio::test]
    async fn unrelated_updates_do_not_move_the_next_poll_but_resync_rearms_missing_ones() {
        let key = Key::new("ns", "r");
        let scheduler = scheduler(false, false);
        scheduler.upsert(&repo(1, "10s"));
        assert!(scheduler.queue().is_waiting(&key));
        // Pretend the pending poll vanished (as a lost timer would): resync puts it back.
        scheduler.queue().cancel_delayed(&key);
        assert_eq!(scheduler.resync(), 1);
        assert!(scheduler.queue().is_waiting(&key));
        assert_eq!(scheduler.resync(), 0, "already scheduled");
        scheduler.remove(&key);
        assert!(!scheduler.queue().is_waiting(&key));
        assert_eq!(scheduler.after_poll(&key, false, Duration::ZERO), None);
    }
}
