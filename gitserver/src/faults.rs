//! Per-repository fault injection, switched at run time.
//!
//! The resync-recovery suite makes repositories fail for a while and checks that every
//! GitRepo recovers. A fault applies to both git requests and the repository's REST
//! endpoints; clearing it restores the repository exactly as it was (nothing on disk is
//! touched, the `missing` fault only hides it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::names::RepoPath;

/// The longest delay a `delay` fault may impose: an hour is far beyond any suite's need,
/// and a bound keeps a typo (or `u64::MAX`) from parking requests forever.
pub const MAX_FAULT_DELAY: Duration = Duration::from_secs(3600);

/// What happens to requests for a faulted repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", try_from = "UncheckedFault")]
pub enum Fault {
    /// Answer 503 Service Unavailable (git and REST).
    Refuse,
    /// Wait `delay_ms` before serving each request.
    Delay {
        /// The wait, in milliseconds (at most [`MAX_FAULT_DELAY`]).
        delay_ms: u64,
    },
    /// Answer 404 as if the repository did not exist; it comes back intact when cleared.
    Missing,
}

/// Why a fault was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// A delay longer than [`MAX_FAULT_DELAY`].
    #[error("delay_ms {delay_ms} is more than the limit of {} ms", MAX_FAULT_DELAY.as_millis())]
    DelayTooLong {
        /// The delay asked for.
        delay_ms: u64,
    },
}

/// The wire form, decoded before its values are checked.
#[derive(Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
enum UncheckedFault {
    Refuse,
    Delay { delay_ms: u64 },
    Missing,
}

impl TryFrom<UncheckedFault> for Fault {
    type Error = FaultError;

    fn try_from(raw: UncheckedFault) -> Result<Self, FaultError> {
        let fault = match raw {
            UncheckedFault::Refuse => Self::Refuse,
            UncheckedFault::Delay { delay_ms } => Self::Delay { delay_ms },
            UncheckedFault::Missing => Self::Missing,
        };
        fault.validate()?;
        Ok(fault)
    }
}

impl Fault {
    /// A delay fault; delays over [`MAX_FAULT_DELAY`] are cut to it.
    pub fn delay(delay: Duration) -> Self {
        Self::Delay {
            delay_ms: u64::try_from(delay.min(MAX_FAULT_DELAY).as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Checks the fault's values against their bounds (decoding does this too).
    pub fn validate(&self) -> Result<(), FaultError> {
        match *self {
            Self::Delay { delay_ms } if u128::from(delay_ms) > MAX_FAULT_DELAY.as_millis() => {
                Err(FaultError::DelayTooLong { delay_ms })
            }
            _ => Ok(()),
        }
    }

    /// How long a request waits under this fault (zero for other modes), never more than
    /// [`MAX_FAULT_DELAY`] even for a value built in-process without [`Fault::validate`].
    pub(crate) fn wait(&self) -> Duration {
        match *self {
            Self::Delay { delay_ms } => Duration::from_millis(delay_ms).min(MAX_FAULT_DELAY),
            _ => Duration::ZERO,
        }
    }
}

/// A fault as listed, with the repository it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFault {
    /// `owner/name` (lower case).
    pub repo: String,
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
}

/// The faults in force. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    faults: Arc<RwLock<BTreeMap<String, Fault>>>,
}

impl FaultHandle {
    /// Sets the fault of `repo` (`owner/name`), replacing any earlier one. A delay over
    /// [`MAX_FAULT_DELAY`] (only constructible in-process) waits [`MAX_FAULT_DELAY`].
    pub fn set(&self, repo: &RepoPath, fault: Fault) {
        self.faults.write().insert(repo.key(), fault);
    }

    /// Sets a fault by `owner/name`; refuses a malformed name or an out-of-bounds fault.
    pub fn set_by_name(&self, full_name: &str, fault: Fault) -> Result<(), crate::Error> {
        fault.validate()?;
        let path = RepoPath::parse(full_name)
            .map_err(|_| crate::Error::UnknownRepository(full_name.to_owned()))?;
        self.set(&path, fault);
        Ok(())
    }

    /// Clears the fault of `repo`; returns whether there was one.
    pub fn clear(&self, repo: &RepoPath) -> bool {
        self.faults.write().remove(&repo.key()).is_some()
    }

    /// Clears a fault by `owner/name`.
    pub fn clear_by_name(&self, full_name: &str) -> bool {
        RepoPath::parse(full_name).is_ok_and(|path| self.clear(&path))
    }

    /// Clears every fault.
    pub fn clear_all(&self) {
        self.faults.write().clear();
    }

    /// The fault of `repo`, if any.
    pub fn get(&self, repo: &RepoPath) -> Option<Fault> {
        self.get_key(&repo.key())
    }

    pub(crate) fn get_key(&self, key: &str) -> Option<Fault> {
        let faults = self.faults.read();
        if faults.is_empty() {
            return None;
        }
        faults.get(key).copied()
    }

    /// Every fault in force, by repository.
    pub fn list(&self) -> Vec<RepoFault> {
        self.faults
            .read()
            .iter()
            .map(|(repo, fault)| RepoFault {
                repo: repo.clone(),
                fault: *fault,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_keyed_case_insensitively_and_clear() {
        let faults = FaultHandle::default();
        faults.set_by_name("Team/Repo", Fault::Refuse).unwrap();
        assert_eq!(
            faults.get(&RepoPath::parse("team/repo").unwrap()),
            Some(Fault::Refuse)
        );
        assert!(faults.clear_by_name("TEAM/REPO"));
        assert!(faults.list().is_empty());
        assert!(faults.set_by_name("../etc", Fault::Missing).is_err());
    }

    #[test]
    fn fault_json_matches_the_http_api() {
        let delay: Fault = serde_json::from_str(r#"{"mode":"delay","delay_ms":250}"#).unwrap();
        assert_eq!(delay, Fault::delay(Duration::from_millis(250)));
        let missing: Fault = serde_json::from_str(r#"{"mode":"missing"}"#).unwrap();
        assert_eq!(missing, Fault::Missing);
        let listed = serde_json::to_value(RepoFault {
            repo: "o/r".into(),
            fault: Fault::Refuse,
        })
        .unwrap();
        assert_eq!(listed, serde_json::json!({"repo": "o/r", "mode": "refuse"}));
    }

    #[test]
    fn delays_are_bounded_when_decoded_set_and_applied() {
        let hour = MAX_FAULT_DELAY.as_millis();
        let ok: Fault =
            serde_json::from_str(&format!(r#"{{"mode":"delay","delay_ms":{hour}}}"#)).unwrap();
        assert_eq!(ok.wait(), MAX_FAULT_DELAY);
        let too_long = format!(r#"{{"mode":"delay","delay_ms":{}}}"#, hour + 1);
        let err = serde_json::from_str::<Fault>(&too_long).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        assert!(
            serde_json::from_str::<Fault>(&format!(
                r#"{{"mode":"delay","delay_ms":{}}}"#,
                u64::MAX
            ))
            .is_err()
        );
        assert_eq!(
            Fault::delay(Duration::MAX),
            Fault::Delay {
                delay_ms: u64::try_from(hour).unwrap()
            }
        );
        let handle = FaultHandle::default();
        assert!(matches!(
            handle.set_by_name("o/r", Fault::Delay { delay_ms: u64::MAX }),
            Err(crate::Error::InvalidFault(FaultError::DelayTooLong { .. }))
        ));
        assert!(handle.list().is_empty());
        assert_eq!(Fault::Delay { delay_ms: u64::MAX }.wait(), MAX_FAULT_DELAY);
    }
}
