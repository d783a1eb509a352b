//! Every suite shipped in `suites/` parses, validates, and keeps the contracts of
//! design.md: the six suites at full scale, a smoke variant of each, a sensitivity section
//! wherever a legacy switch reintroduces the bug.

use std::path::{Path, PathBuf};

use fleetbench::slo::Stat;
use fleetbench::suite::{self, LoadError, Suite};

fn suites_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../suites")
}

fn load(dir: &Path) -> Vec<Suite> {
    suite::load_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn full_suites_cover_design_md_at_full_scale() {
    let suites = load(&suites_dir());
    let names: Vec<&str> = suites.iter().map(|s| s.name.as_str()).collect();
    for required in [
        "batch-commit-30-webhook",
        "batch-commit-30-polling",
        "label-propagation-300",
        "target-edit-cleanup",
        "polling-jitter",
        "resync-recovery",
        "status-write-volume",
    ] {
        assert!(names.contains(&required), "missing {required}: {names:?}");
    }
    let by_name = |n: &str| suites.iter().find(|s| s.name == n).unwrap();
    let label = by_name("label-propagation-300");
    assert_eq!(
        (
            label.scale.gitrepos,
            label.scale.paths,
            label.scale.clusters
        ),
        (300, 10, 10)
    );
    assert_eq!(by_name("target-edit-cleanup").scale.gitrepos, 300);
    assert_eq!(by_name("batch-commit-30-webhook").scale.gitrepos, 30);
    let jitter = by_name("polling-jitter");
    assert_eq!(jitter.scale.polling_interval.as_secs_f64(), 60.0);
    assert!(jitter.has_tag("long"), "the 5-minute suite is tagged long");
    let observed: f64 = jitter
        .steps
        .iter()
        .filter_map(|s| match s {
            suite::Step::ObservePolling(o) => Some(o.duration.as_secs_f64()),
            _ => None,
        })
        .sum();
    assert!(
        observed >= 300.0,
        "observed for at least 5 minutes: {observed}s"
    );
    let volume = by_name("status-write-volume");
    assert_eq!(
        volume.baseline.as_ref().map(|b| b.profile),
        Some(suite::Profile::FleetV010),
        "both profiles in one run"
    );
    for suite in &suites {
        assert!(suite.has_tag("full"), "{} is tagged full", suite.name);
        assert!(
            !suite.description.is_empty(),
            "{} explains itself",
            suite.name
        );
    }
}

#[test]
fn every_full_suite_has_a_smoke_variant_with_the_same_slos() {
    let full = load(&suites_dir());
    let smoke = load(&suites_dir().join("smoke"));
    assert!(smoke.iter().all(|s| s.has_tag("smoke")));
    for suite in &full {
        let stem = suite.name.trim_end_matches("-300").replace("-30-", "-");
        let variant = smoke
            .iter()
            .find(|s| s.name == format!("{stem}-smoke"))
            .unwrap_or_else(|| panic!("no smoke variant of {} ({stem}-smoke)", suite.name));
        for slo in &suite.slos {
            assert!(
                variant.slos.iter().any(|v| v.name == slo.name),
                "{} lacks SLO {} of {}",
                variant.name,
                slo.name,
                suite.name
            );
        }
        assert!(
            variant.scale.gitrepos <= 20 && variant.scale.clusters <= 3,
            "{} is small",
            variant.name
        );
    }
}

#[test]
fn sensitivity_sections_name_real_slos_and_switches() {
    for dir in [suites_dir(), suites_dir().join("smoke")] {
        for suite in load(&dir) {
            if let Some(sensitivity) = &suite.sensitivity {
                assert!(!sensitivity.fails.is_empty(), "{}", suite.name);
            }
        }
    }
}

/// Every SLO on a latency's percentiles or extremes comes with a `missing` guard: those
/// stats cover only the events that arrived, so without the guard a controller that lost
/// most of them would pass. The loader enforces it; this proves it does so for the shipped
/// files (each loads with its guards and is rejected without them).
#[test]
fn shipped_latency_slos_fail_to_load_without_their_missing_guard() {
    let mut checked = 0;
    for dir in [suites_dir(), suites_dir().join("smoke")] {
        for (path, suite) in suite::load_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let text = std::fs::read_to_string(&path).unwrap();
            let latencies: Vec<String> = suite
                .measurements()
                .into_iter()
                .filter(|(_, kind)| *kind == suite::MeasurementKind::Latency)
                .map(|(name, _)| name)
                .collect();
            for slo in &suite.slos {
                if !slo.stat.is_arrival() || !latencies.contains(&slo.measurement) {
                    continue;
                }
                // Drop the guard of this measurement from the file and load it again.
                let guard = suite
                    .slos
                    .iter()
                    .find(|g| g.measurement == slo.measurement && g.stat == Stat::Missing)
                    .unwrap_or_else(|| panic!("{}: {} has no missing guard", suite.name, slo.name));
                let start = text.find(&format!("  - name: {}\n", guard.name)).unwrap();
                let end = text[start + 4..]
                    .find("\n  - name: ")
                    .map(|i| start + 4 + i + 1)
                    .or_else(|| text[start..].find("\nsensitivity:").map(|i| start + i + 1))
                    .unwrap_or(text.len());
                let without = format!("{}{}", &text[..start], &text[end..]);
                let error = suite::parse_suite(&without, &path)
                    .expect_err(&format!("{} loads without {}", suite.name, guard.name))
                    .to_string();
                assert!(
                    error.contains("stat: missing") && error.contains(&slo.name),
                    "{error}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} guarded SLOs found");
}

/// Every bundle of the 300 GitRepos is affected by the label, so at full scale only
/// bystanders (GitRepos selected by a label the labelling does not touch) tell a controller
/// that requeues the affected bundles from one that requeues every bundle.
#[test]
fn label_propagation_suites_have_bystanders_the_label_does_not_affect() {
    for (dir, name) in [
        (suites_dir(), "label-propagation-300"),
        (suites_dir().join("smoke"), "label-propagation-smoke"),
    ] {
        let suite = load(&dir).into_iter().find(|s| s.name == name).unwrap();
        let added: Vec<String> = suite
            .steps
            .iter()
            .filter_map(|s| match s {
                suite::Step::LabelCluster(l) => Some(l.labels.keys().cloned().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        let bystanders = suite
            .steps
            .iter()
            .filter_map(|s| match s {
                suite::Step::CreateGitrepos(g) => Some(g),
                _ => None,
            })
            .filter(|g| {
                g.targets.iter().all(|t| {
                    t.cluster_name.is_none()
                        && t.cluster_group.is_none()
                        && t.cluster_selector.as_ref().is_some_and(|s| {
                            s.match_labels
                                .iter()
                                .flatten()
                                .all(|(k, _)| !added.contains(k))
                        })
                })
            })
            .count();
        assert!(bystanders > 0, "{name} has no bystander GitRepos");
        assert!(
            suite
                .slos
                .iter()
                .any(|s| s.name == "existing-bundledeployments-not-rewritten"),
            "{name} judges writes to existing BundleDeployments"
        );
    }
}

/// Every `stat:`, `max:`/`min:` and threshold unit of every shipped suite, misspelt one at a
/// time: the suite does not load, and the error names the file and the line of the typo
/// (not the first SLO that happens to read the same).
#[test]
fn a_typo_in_any_slo_is_reported_at_its_own_line() {
    let mut checked = 0;
    for dir in [suites_dir(), suites_dir().join("smoke")] {
        for (path, _) in suite::load_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let slos = lines.iter().position(|l| *l == "slos:").unwrap();
            for (index, line) in lines.iter().enumerate().skip(slos) {
                let trimmed = line.trim_start();
                let typos: Vec<String> = if trimmed.starts_with("stat: ") {
                    vec![line.replace("stat: ", "stat: P")]
                } else if trimmed.starts_with("max: ") || trimmed.starts_with("min: ") {
                    vec![
                        line.replacen("max: ", "maxi: ", 1)
                            .replacen("min: ", "mini: ", 1),
                        format!("{line} + 1parsec"),
                    ]
                } else {
                    continue;
                };
                for typo in typos {
                    let mut edited = lines.clone();
                    edited[index] = &typo;
                    let error = suite::parse_suite(&(edited.join("\n") + "\n"), &path)
                        .expect_err(&format!("{} loads with {typo:?}", path.display()));
                    let line_of_error = match &error {
                        LoadError::Parse { line, .. } | LoadError::Invalid { line, .. } => *line,
                        other => panic!("{other}"),
                    };
                    assert_eq!(
                        line_of_error,
                        Some(index as u64 + 1),
                        "{typo:?} at line {}: {error}",
                        index + 1
                    );
                    assert!(
                        error.to_string().starts_with(&format!(
                            "invalid suite file {}:{}",
                            path.display(),
                            index + 1
                        )),
                        "{error}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} typos tried");
}
