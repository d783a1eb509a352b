//! Per-repository faults the proxy injects into git requests.
//!
//! The recovery suites break repositories for a while and check the controller copes. A
//! real forge cannot be told to fail one repository, so the proxy does it in front of any
//! of them, with the answers a client meets in the wild: 503 from an overloaded server,
//! 404 from a deleted or hidden repository, 429 with `Retry-After` from GitHub's rate
//! limiter, or just a slow server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::classify::normalize_repo;

/// What the proxy does to one repository's git requests instead of (or before) forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFault {
    /// Answer `503 Service Unavailable` with a short text body; recorded as
    /// [`Outcome::Refused`](gitserver::request_log::Outcome::Refused).
    Refuse,
    /// Wait this long, then forward. Longer delays are clamped to
    /// [`ProxyFault::MAX_DELAY`] when set, so no request waits unboundedly.
    Delay(Duration),
    /// Answer `404 Not Found`, as for a deleted repository; recorded as
    /// [`Outcome::NotFound`](gitserver::request_log::Outcome::NotFound).
    NotFound,
    /// Answer `429 Too Many Requests` with `Retry-After: <seconds>` (rounded up), as
    /// GitHub does; recorded as [`Outcome::Refused`](gitserver::request_log::Outcome::Refused).
    RateLimit {
        /// How long the client is told to wait.
        retry_after: Duration,
    },
}

impl ProxyFault {
    /// The longest [`ProxyFault::Delay`] applied.
    pub const MAX_DELAY: Duration = Duration::from_secs(3600);

    /// This fault with its delay clamped to [`ProxyFault::MAX_DELAY`].
    pub fn clamped(self) -> Self {
        match self {
            Self::Delay(delay) => Self::Delay(delay.min(Self::MAX_DELAY)),
            other => other,
        }
    }
}

/// The faults in force, by repository key. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultTable {
    faults: Arc<RwLock<BTreeMap<String, ProxyFault>>>,
}

impl FaultTable {
    /// Sets (or replaces) the fault of `repo` (`owner/name`, any case, optional `.git`).
    pub(crate) fn set(&self, repo: &str, fault: ProxyFault) {
        self.faults
            .write()
            .insert(normalize_repo(repo), fault.clamped());
    }

    /// Removes the fault of `repo`, if any.
    pub(crate) fn clear(&self, repo: &str) {
        self.faults.write().remove(&normalize_repo(repo));
    }

    /// The fault of a repository key as [`super::classify::classify`] produces it.
    pub(crate) fn get(&self, key: &str) -> Option<ProxyFault> {
        self.faults.read().get(key).copied()
    }

    /// Every fault, sorted by repository.
    pub(crate) fn all(&self) -> Vec<(String, ProxyFault)> {
        self.faults
            .read()
            .iter()
            .map(|(repo, fault)| (repo.clone(), *fault))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_keyed_by_normalised_repository() {
        let table = FaultTable::default();
        table.set("Alice/Demo.git", ProxyFault::Refuse);
        assert_eq!(table.get("alice/demo"), Some(ProxyFault::Refuse));
        assert_eq!(table.get("alice/other"), None);
        table.set("alice/demo", ProxyFault::NotFound);
        assert_eq!(table.get("alice/demo"), Some(ProxyFault::NotFound));
        table.clear("ALICE/DEMO");
        assert_eq!(table.get("alice/demo"), None);
        // Clearing what is not set is harmless.
        table.clear("nobody/none");
    }

    #[test]
    fn all_lists_every_fault_sorted() {
        let table = FaultTable::default();
        let limit = ProxyFault::RateLimit {
            retry_after: Duration::from_secs(30),
        };
        table.set("o/b", limit);
        table.set("o/a", ProxyFault::Refuse);
        assert_eq!(
            table.all(),
            vec![
                ("o/a".to_owned(), ProxyFault::Refuse),
                ("o/b".to_owned(), limit)
            ]
        );
    }

    #[test]
    fn delays_are_clamped_to_an_hour() {
        let table = FaultTable::default();
        table.set("o/a", ProxyFault::Delay(Duration::from_secs(10 * 3600)));
        table.set("o/b", ProxyFault::Delay(Duration::from_millis(1500)));
        assert_eq!(
            table.get("o/a"),
            Some(ProxyFault::Delay(ProxyFault::MAX_DELAY))
        );
        assert_eq!(
            table.get("o/b"),
            Some(ProxyFault::Delay(Duration::from_millis(1500)))
        );
    }
}
