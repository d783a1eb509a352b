//! `junit.xml`: one test suite per fleetbench suite, one test case per SLO.
//!
//! CI systems show JUnit natively; an SLO that failed appears as a failed test whose
//! message is the verdict line a person would write (`SloResult`'s `Display`).

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::results::{EXTERNAL_SETTINGS, RunResults, SuiteStatus, profile_label};

/// File name of the JUnit report in a run directory.
pub const JUNIT_FILE: &str = "junit.xml";

/// Renders the run as JUnit XML.
pub fn render(results: &RunResults) -> String {
    let mut report = Report::new("fleetbench");
    report.set_time(Duration::from_secs_f64(results.duration_s.max(0.0)));
    for suite in &results.suites {
        let mut test_suite = TestSuite::new(suite.name.as_str());
        test_suite.set_time(Duration::from_secs_f64(suite.duration_s.max(0.0)));
        test_suite.add_properties([
            Property::new("profile", profile_label(suite.profile)),
            Property::new("provider", suite.settings.provider.as_str()),
            Property::new(
                "agent",
                suite
                    .settings
                    .controller
                    .as_ref()
                    .map_or(EXTERNAL_SETTINGS, |c| c.agent.as_str()),
            ),
        ]);
        for slo in &suite.slos {
            let status = if slo.pass {
                TestCaseStatus::success()
            } else if let Some(reason) = &slo.not_applicable {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!("not applicable: {reason}"));
                status
            } else {
                let mut status = TestCaseStatus::non_success(if slo.observed.is_some() {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                });
                status.set_message(slo.to_string());
                if let Some(error) = &slo.error {
                    status.set_description(error.as_str());
                }
                status
            };
            let mut case = TestCase::new(slo.name.as_str(), status);
            case.set_classname(format!("fleetbench.{}", suite.name));
            if !slo.description.is_empty() {
                case.set_system_out(slo.description.as_str());
            }
            test_suite.add_test_case(case);
        }
        if suite.status == SuiteStatus::Error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(suite.error.clone().unwrap_or_else(|| "suite error".into()));
            let mut case = TestCase::new("suite-completed", status);
            case.set_classname(format!("fleetbench.{}", suite.name));
            test_suite.add_test_case(case);
        }
        report.add_test_suite(test_suite);
    }
    report
        .to_string()
        .expect("JUnit serialisation into a string cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixtures;

    #[test]
    fn a_damaged_or_inapplicable_verdict_says_so() {
        let mut results = fixtures::run();
        let slo = &mut results.suites[0].slos[0];
        slo.damaged = Some("settle gave up".into());
        let line = slo.to_string();
        assert!(
            line.ends_with("[measurement damaged: settle gave up]"),
            "{line}"
        );
        slo.damaged = None;
        slo.pass = false;
        slo.not_applicable = Some("no baseline".into());
        assert!(slo.to_string().contains("not applicable"));
        let xml = render(&results);
        assert!(xml.contains("<skipped"), "{xml}");
    }

    #[test]
    fn one_case_per_slo_with_failures_marked() {
        let xml = render(&fixtures::run());
        assert!(
            xml.contains(
                r#"<testsuites name="fleetbench" tests="2" skipped="0" failures="1" errors="0""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="label-propagation" tests="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testcase name="bd-p99" classname="fleetbench.label-propagation""#),
            "{xml}"
        );
        assert!(
            xml.contains("stddev of poll-interval: 10ms (threshold &gt;= 500ms)"),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<property name="profile" value="current"/>"#),
            "{xml}"
        );
    }

    #[test]
    fn suite_errors_and_unmeasured_slos_are_errors() {
        let mut results = fixtures::run();
        results.suites[0].status = SuiteStatus::Error;
        results.suites[0].error = Some("controller never became ready".into());
        results.suites[0].slos[0].observed = None;
        results.suites[0].slos[0].pass = false;
        results.suites[0].slos[0].error = Some("not measured: step failed".into());
        let xml = render(&results);
        assert!(xml.contains(r#"errors="2""#), "{xml}");
        assert!(xml.contains("controller never became ready"), "{xml}");
        assert!(xml.contains("not measured"), "{xml}");
    }
}
