//! Ratios to a baseline: a suite's figure divided by the same figure of the controller run
//! under another profile, either measured in this run (the bundled controller, which the
//! harness can restart under any profile) or read from a stored run (an external
//! controller, which it cannot). A ratio is only meaningful between the same suite at the
//! same scale, so the stored baseline is checked for both; when there is none, the reason
//! becomes the ratio SLOs' reason for not applying.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::results::{BaselineResult, Measurement, ResultsError, RunResults};
use crate::slo::{Stat, Unit};
use crate::suite::{RatioSpec, Suite};

/// Why a suite has no stored baseline. The message is what the suite's ratio SLOs report
/// as their reason for not applying.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// No stored run was given, and an external controller cannot be re-run.
    #[error(
        "a ratio to a baseline needs the controller run under another profile, which the harness cannot do to an external controller; give a stored run with --baseline-run to compare {suite} against"
    )]
    NoStoredRun {
        /// The suite.
        suite: String,
    },
    /// The stored run cannot be read.
    #[error("--baseline-run")]
    Unreadable(#[source] ResultsError),
    /// The stored run did not run this suite.
    #[error("--baseline-run {} has no suite {suite}", run.display())]
    NoSuchSuite {
        /// The stored run.
        run: PathBuf,
        /// The suite.
        suite: String,
    },
    /// The stored run ran this suite at another scale.
    #[error(
        "--baseline-run {} ran {suite} at another scale; a ratio between different scales means nothing",
        run.display()
    )]
    OtherScale {
        /// The stored run.
        run: PathBuf,
        /// The suite.
        suite: String,
    },
    /// The suite stopped early in the stored run.
    #[error("--baseline-run {}: {suite} did not complete there ({problem})", run.display())]
    Incomplete {
        /// The stored run.
        run: PathBuf,
        /// The suite.
        suite: String,
        /// Its error there, as that run recorded it.
        problem: String,
    },
}

/// `ratio.measurement` now divided by the same in the baseline, when both were taken.
pub fn ratio_measurement(
    ratio: &RatioSpec,
    now: &BTreeMap<String, Measurement>,
    then: &BTreeMap<String, Measurement>,
    now_label: &str,
    then_label: &str,
    source: &str,
) -> Option<Measurement> {
    let now = now.get(&ratio.measurement)?.stat(Stat::Value)?;
    let then = then.get(&ratio.measurement)?.stat(Stat::Value)?;
    let value = if then > 0.0 {
        now / then
    } else {
        f64::INFINITY.min(1e9)
    };
    let mut measurement = Measurement::value(
        Unit::Ratio,
        format!(
            "{} of the controller under test ({now_label}) divided by the same of the baseline ({then_label}, {source})",
            ratio.measurement
        ),
        value,
    );
    measurement.breakdown = BTreeMap::from([
        (format!("{} ({now_label})", ratio.measurement), now),
        (format!("{} ({then_label})", ratio.measurement), then),
    ]);
    Some(measurement)
}

/// The baseline of `suite` from the stored run given with `--baseline-run`: that run's
/// own measurements of the same suite at the same scale.
pub fn stored_baseline(run: Option<&Path>, suite: &Suite) -> Result<BaselineResult, BaselineError> {
    let Some(run) = run else {
        return Err(BaselineError::NoStoredRun {
            suite: suite.name.clone(),
        });
    };
    let stored = RunResults::read(run).map_err(BaselineError::Unreadable)?;
    let Some(found) = stored.suites.into_iter().find(|s| s.name == suite.name) else {
        return Err(BaselineError::NoSuchSuite {
            run: run.to_path_buf(),
            suite: suite.name.clone(),
        });
    };
    if found.settings.scale != suite.scale {
        return Err(BaselineError::OtherScale {
            run: run.to_path_buf(),
            suite: suite.name.clone(),
        });
    }
    if let Some(problem) = found.error {
        return Err(BaselineError::Incomplete {
            run: run.to_path_buf(),
            suite: suite.name.clone(),
            problem,
        });
    }
    Ok(BaselineResult {
        profile: found.profile,
        controller: found.settings.controller,
        source: Some(format!(
            "stored run {} of {}",
            run.display(),
            stored.started_at
        )),
        measurements: found.measurements,
        steps: found.steps,
        api_requests: found.api_requests,
        resources: found.resources,
        controller_metrics: found.controller_metrics,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::results::{EXTERNAL_SETTINGS, fixtures, profile_label};
    use crate::suite::parse_suite;

    /// A suite named like the fixture run's first suite, with a ratio to a baseline.
    fn suite(gitrepos: u32) -> Suite {
        parse_suite(
            &format!(
                r#"
name: label-propagation
scale: {{gitrepos: {gitrepos}}}
controller: {{agent: none}}
baseline:
  profile: fleet-v0.10
  ratios: [{{name: write-ratio, measurement: writes}}]
steps:
  - create_clusters: {{labels: {{env: a}}}}
  - create_repos: {{}}
  - create_gitrepos: {{targets: [{{clusterSelector: {{matchLabels: {{env: a}}}}}}]}}
  - settle: {{}}
  - status_burst: {{measure: writes}}
slos:
  - {{name: fewer, measurement: write-ratio, stat: value, max: 0.4}}
"#
            ),
            Path::new("t.yaml"),
        )
        .unwrap()
    }

    #[test]
    fn a_stored_baseline_is_taken_only_from_the_same_suite_at_the_same_scale() {
        let dir = tempfile::tempdir().unwrap();
        let mut stored = fixtures::run();
        stored.suites[0].settings.scale = suite(3).scale;
        stored.suites[0].measurements.insert(
            "writes".to_string(),
            Measurement::value(Unit::Writes, "status writes", 200.0),
        );
        stored.write_to_dir(dir.path()).unwrap();

        let baseline = stored_baseline(Some(dir.path()), &suite(3)).unwrap();
        let source = baseline.source.clone().unwrap();
        assert!(
            source.contains(&dir.path().display().to_string()),
            "{source}"
        );
        assert!(source.contains(&stored.started_at), "{source}");
        let now = BTreeMap::from([(
            "writes".to_string(),
            Measurement::value(Unit::Writes, "status writes", 50.0),
        )]);
        let spec = suite(3).baseline.unwrap().ratios[0].clone();
        let ratio = ratio_measurement(
            &spec,
            &now,
            &baseline.measurements,
            EXTERNAL_SETTINGS,
            profile_label(baseline.profile),
            &source,
        )
        .unwrap();
        assert_eq!(ratio.stat(Stat::Value), Some(0.25));
        assert!(ratio.description.contains(&source), "{}", ratio.description);

        let text = |error: BaselineError| crate::error_text(&error);
        let other_scale = text(stored_baseline(Some(dir.path()), &suite(30)).unwrap_err());
        assert!(other_scale.contains("another scale"), "{other_scale}");
        let none = text(stored_baseline(None, &suite(3)).unwrap_err());
        assert!(none.contains("--baseline-run"), "{none}");
        let missing = text(stored_baseline(Some(&dir.path().join("nope")), &suite(3)).unwrap_err());
        assert!(missing.contains("--baseline-run"), "{missing}");
    }
}
