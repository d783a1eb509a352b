//! The sensitivity proof: a suite must fail with the legacy switch it exists for, on the
//! SLOs it names, and pass without it. A harness that cannot fail proves nothing.

use serde::Serialize;

use crate::results::{RunResults, SuiteStatus};
use crate::suite::Sensitivity;

/// What a suite's sensitivity proof rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProofKind {
    /// A controller-side legacy switch that brings a real bug back: the suite is shown to
    /// catch that bug.
    ControllerSwitch,
    /// Only an override of the harness's own input (the webhook suite turns the webhook
    /// off): shows the suite can fail, not that it catches any bug of a controller.
    HarnessInput,
    /// No `sensitivity` section: nothing shows the suite can fail.
    None,
}

impl ProofKind {
    /// What `sensitivity` in a suite file amounts to.
    pub fn of(sensitivity: Option<&Sensitivity>) -> ProofKind {
        match sensitivity {
            Some(s) if !s.legacy.is_empty() => ProofKind::ControllerSwitch,
            Some(_) => ProofKind::HarnessInput,
            None => ProofKind::None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            ProofKind::ControllerSwitch => "controller switch",
            ProofKind::HarnessInput => {
                "harness input only: shows the suite can fail, not that it catches a controller bug"
            }
            ProofKind::None => "no proof",
        }
    }
}

/// The verdict for one suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Suite.
    pub suite: String,
    /// What the proof rests on.
    pub proof: ProofKind,
    /// The switches it was run with.
    pub legacy: Vec<String>,
    /// SLOs that must fail with the switch.
    pub expected_failures: Vec<String>,
    /// SLOs that failed without the switch (should be none).
    pub failed_on_current: Vec<String>,
    /// SLOs that failed with the switch.
    pub failed_with_switch: Vec<String>,
    /// Errors that stopped a run.
    pub errors: Vec<String>,
    /// Everything as required.
    pub proven: bool,
}

impl Verdict {
    /// The verdict of a suite that has no proof (it is not run).
    pub fn without_proof(suite: &str) -> Verdict {
        Verdict {
            suite: suite.to_string(),
            proof: ProofKind::None,
            legacy: Vec::new(),
            expected_failures: Vec::new(),
            failed_on_current: Vec::new(),
            failed_with_switch: Vec::new(),
            errors: Vec::new(),
            proven: false,
        }
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        if self.proof == ProofKind::None {
            return format!(
                "NO PROOF {}: no `sensitivity` section, so nothing shows this suite can fail",
                self.suite
            );
        }
        if self.proven {
            format!(
                "PROVEN ({}) {}: passes on current; with {} fails exactly {}",
                self.proof.label(),
                self.suite,
                self.legacy.join(","),
                self.failed_with_switch.join(", ")
            )
        } else {
            let mut problems = Vec::new();
            if !self.failed_on_current.is_empty() {
                problems.push(format!(
                    "fails on current: {}",
                    self.failed_on_current.join(", ")
                ));
            }
            let missing: Vec<&String> = self
                .expected_failures
                .iter()
                .filter(|s| !self.failed_with_switch.contains(s))
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "with {} these should fail but pass: {}",
                    self.legacy.join(","),
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let extra: Vec<&String> = self
                .failed_with_switch
                .iter()
                .filter(|s| !self.expected_failures.contains(s))
                .collect();
            if !extra.is_empty() {
                problems.push(format!(
                    "with {} these fail too (wrong reason?): {}",
                    self.legacy.join(","),
                    extra
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            problems.extend(self.errors.iter().cloned());
            format!(
                "NOT PROVEN ({}) {}: {}",
                self.proof.label(),
                self.suite,
                problems.join("; ")
            )
        }
    }
}

/// Judges the two runs (`[current, with switch]`) of one suite.
pub fn judge(suite: &str, sensitivity: &Sensitivity, runs: &[RunResults]) -> Verdict {
    let failed = |run: Option<&RunResults>| -> (Vec<String>, Vec<String>) {
        let Some(run) = run else {
            return (
                Vec::new(),
                vec!["the run did not happen (interrupted)".to_string()],
            );
        };
        let mut failed = Vec::new();
        let mut errors = Vec::new();
        for result in &run.suites {
            if result.status == SuiteStatus::Error {
                errors.push(format!(
                    "{}: {}",
                    result.name,
                    result.error.as_deref().unwrap_or("error")
                ));
            }
            failed.extend(
                result
                    .slos
                    .iter()
                    .filter(|s| s.failed())
                    .map(|s| s.name.clone()),
            );
        }
        (failed, errors)
    };
    let (failed_on_current, mut errors) = failed(runs.first());
    let (failed_with_switch, more) = failed(runs.get(1));
    errors.extend(more);
    let mut expected = sensitivity.fails.clone();
    expected.sort();
    let mut got = failed_with_switch.clone();
    got.sort();
    let proven = errors.is_empty() && failed_on_current.is_empty() && expected == got;
    Verdict {
        suite: suite.to_string(),
        proof: ProofKind::of(Some(sensitivity)),
        legacy: sensitivity
            .legacy
            .iter()
            .map(|s| s.to_string())
            .chain(sensitivity.set.iter().map(|s| format!("--set {s}")))
            .collect(),
        expected_failures: sensitivity.fails.clone(),
        failed_on_current,
        failed_with_switch,
        errors,
        proven,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;
    use crate::suite::LegacySwitch;

    fn sensitivity(fails: &[&str]) -> Sensitivity {
        Sensitivity {
            legacy: vec![LegacySwitch::NoPollJitter],
            set: Vec::new(),
            fails: fails.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn passing() -> RunResults {
        let mut run = fixtures::run();
        run.suites.truncate(1);
        run
    }

    fn failing(slo: &str) -> RunResults {
        let mut run = passing();
        run.suites[0].slos[0].name = slo.into();
        run.suites[0].slos[0].pass = false;
        run
    }

    #[test]
    fn every_suite_says_what_its_proof_rests_on() {
        use crate::suite::LegacySwitch;
        let switch = Sensitivity {
            legacy: vec![LegacySwitch::NoPollJitter],
            set: Vec::new(),
            fails: vec!["x".into()],
        };
        let input = Sensitivity {
            legacy: Vec::new(),
            set: vec!["steps.create_gitrepos.webhook=false".into()],
            fails: vec!["x".into()],
        };
        assert_eq!(ProofKind::of(Some(&switch)), ProofKind::ControllerSwitch);
        assert_eq!(ProofKind::of(Some(&input)), ProofKind::HarnessInput);
        assert_eq!(ProofKind::of(None), ProofKind::None);
        let none = Verdict::without_proof("downstream-partition");
        assert!(!none.proven);
        assert!(
            none.line().starts_with("NO PROOF downstream-partition"),
            "{}",
            none.line()
        );
        let run = fixtures::run();
        let verdict = judge("s", &input, &[run.clone(), run]);
        assert!(
            verdict.line().contains("harness input only"),
            "{}",
            verdict.line()
        );
    }

    #[test]
    fn proven_when_exactly_the_named_slos_fail_with_the_switch() {
        let verdict = judge(
            "s",
            &sensitivity(&["jitter"]),
            &[passing(), failing("jitter")],
        );
        assert!(verdict.proven, "{}", verdict.line());
        assert!(verdict.line().starts_with("PROVEN (controller switch) s"));
    }

    #[test]
    fn not_proven_when_the_switch_changes_nothing() {
        let verdict = judge("s", &sensitivity(&["jitter"]), &[passing(), passing()]);
        assert!(!verdict.proven);
        assert!(
            verdict.line().contains("should fail but pass: jitter"),
            "{}",
            verdict.line()
        );
    }

    #[test]
    fn not_proven_when_it_fails_for_another_reason_or_on_current() {
        let verdict = judge(
            "s",
            &sensitivity(&["jitter"]),
            &[passing(), failing("latency")],
        );
        assert!(!verdict.proven);
        assert!(
            verdict.line().contains("fail too (wrong reason?): latency"),
            "{}",
            verdict.line()
        );
        let verdict = judge(
            "s",
            &sensitivity(&["jitter"]),
            &[failing("jitter"), failing("jitter")],
        );
        assert!(!verdict.proven);
        assert!(
            verdict.line().contains("fails on current"),
            "{}",
            verdict.line()
        );
    }

    #[test]
    fn an_interrupted_proof_is_not_proven() {
        let verdict = judge("s", &sensitivity(&["jitter"]), &[passing()]);
        assert!(!verdict.proven);
    }
}
