//! Reading suite files: YAML parsing with file/line positions, then validation.
//!
//! A mistake in a suite file should cost the user seconds, not a 5-minute run that dies
//! half-way: everything that can be checked without a cluster (references between steps,
//! measurements and SLOs, thresholds, counts) is checked here, and every message names the
//! file, the field and, where it can be found, the line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{AgentMode, MeasurementKind, Step, Suite};
use crate::slo::{Comparison, Stat};

/// Why a suite could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not parse into a suite (syntax, unknown field, wrong type).
    #[error("invalid suite file {path}{}: {message}", location(*.line, *.column))]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line, when the parser knows it.
        line: Option<u64>,
        /// 1-based column, when the parser knows it.
        column: Option<u64>,
        /// The parser's message.
        message: String,
    },
    /// The suite parses but is inconsistent.
    #[error("invalid suite file {path}{}: {field}: {message}", location(*.line, None))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field at fault (`slos[1].measurement`).
        field: String,
        /// 1-based line of the field, when found.
        line: Option<u64>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A directory holds two suites with one name.
    #[error("two suites are named {name:?}: {first} and {second}")]
    Duplicate {
        /// The name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second file.
        second: PathBuf,
    },
}

fn location(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

/// Reads, parses and validates one suite file.
pub fn load_file(path: &Path) -> Result<Suite, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_suite(&text, path)
}

/// Every `*.yaml`/`*.yml` suite directly in `dir` (not its subdirectories), sorted by
/// file name.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, Suite)>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut suites: Vec<(PathBuf, Suite)> = Vec::new();
    for path in files {
        let suite = load_file(&path)?;
        if let Some((first, _)) = suites.iter().find(|(_, s)| s.name == suite.name) {
            return Err(LoadError::Duplicate {
                name: suite.name,
                first: first.clone(),
                second: path,
            });
        }
        suites.push((path, suite));
    }
    Ok(suites)
}

/// Parses suite YAML (`path` is for messages) and validates it.
pub fn parse_suite(text: &str, path: &Path) -> Result<Suite, LoadError> {
    let suite: Suite = serde_saphyr::from_str(text).map_err(|error| {
        let location = error.location();
        LoadError::Parse {
            path: path.to_path_buf(),
            line: location.map(|l| l.line()),
            column: location.map(|l| l.column()),
            message: first_line(&error.to_string()),
        }
    })?;
    validate(&suite).map_err(|problem| LoadError::Invalid {
        path: path.to_path_buf(),
        line: find_line(text, &problem.field, problem.needle.as_deref()),
        field: problem.field,
        message: problem.message,
    })?;
    Ok(suite)
}

/// serde-saphyr renders a snippet after the message; the message line is what users need
/// next to the file:line prefix.
fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The line of a field that failed validation: the first line containing `needle` within
/// the list entry `field` is in (`slos[2].stat` is in the third SLO, whatever the SLOs
/// before it say), else the entry's first line; outside `slos` and `steps`, the first line
/// of the file containing `needle`.
fn find_line(text: &str, field: &str, needle: Option<&str>) -> Option<u64> {
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = list_entry(field)
        .and_then(|(section, index)| entry_lines(&lines, section, index))
        .map_or((None, lines.len()), |(start, end)| (Some(start), end));
    let from = start.unwrap_or(0);
    needle
        .and_then(|needle| {
            lines[from..end]
                .iter()
                .position(|line| line.contains(needle))
                .map(|offset| from + offset)
        })
        .or(start)
        .map(|index| index as u64 + 1)
}

/// The top-level list and index a field is in: `slos[2].stat` → `("slos", 2)`.
fn list_entry(field: &str) -> Option<(&str, usize)> {
    let (section, rest) = field.split_once('[')?;
    if section != "slos" && section != "steps" {
        return None;
    }
    let (index, _) = rest.split_once(']')?;
    Some((section, index.parse().ok()?))
}

/// The lines (0-based, end exclusive) of entry `index` of the top-level block list
/// `section`; `None` when the list is not written as a block (`slos: [...]`) or is shorter.
fn entry_lines(lines: &[&str], section: &str, index: usize) -> Option<(usize, usize)> {
    let header = lines
        .iter()
        .position(|line| line.strip_prefix(section).map(str::trim_end) == Some(":"))?;
    let is_content = |line: &&str| {
        let trimmed = line.trim_start();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    let is_item = |line: &str| {
        let trimmed = line.trim_start();
        trimmed == "-" || trimmed.starts_with("- ")
    };
    let first = (header + 1..lines.len()).find(|&i| is_content(&lines[i]))?;
    if !is_item(lines[first]) {
        return None;
    }
    let item_indent = indent(lines[first]);
    let mut starts = Vec::new();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate().skip(first) {
        if !is_content(line) {
            continue;
        }
        if indent(line) == item_indent && is_item(line) {
            starts.push(i);
        } else if indent(line) <= item_indent {
            end = i;
            break;
        }
    }
    let start = *starts.get(index)?;
    Some((start, starts.get(index + 1).copied().unwrap_or(end)))
}

/// A validation failure before the file and line are attached.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) field: String,
    pub(crate) message: String,
    /// Text to look for in the file to find the line.
    pub(crate) needle: Option<String>,
}

fn problem(field: impl Into<String>, message: impl Into<String>, needle: Option<&str>) -> Problem {
    Problem {
        field: field.into(),
        message: message.into(),
        needle: needle.map(str::to_string),
    }
}

/// Checks everything that can be checked without a cluster.
pub(crate) fn validate(suite: &Suite) -> Result<(), Problem> {
    let name_ok = !suite.name.is_empty()
        && suite
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !name_ok {
        return Err(problem(
            "name",
            format!(
                "{:?} is not a valid suite name (lowercase letters, digits, '-' and '.')",
                suite.name
            ),
            Some("name:"),
        ));
    }
    let scale = &suite.scale;
    for (field, value) in [
        ("gitrepos", scale.gitrepos),
        ("paths", scale.paths),
        ("clusters", scale.clusters),
    ] {
        if value == 0 {
            return Err(problem(
                format!("scale.{field}"),
                "must be at least 1",
                Some(&format!("{field}:")),
            ));
        }
    }
    if scale.polling_interval.0.is_zero() {
        return Err(problem(
            "scale.polling_interval",
            "must be longer than 0s",
            Some("polling_interval:"),
        ));
    }
    if suite.steps.is_empty() {
        return Err(problem("steps", "a suite needs at least one step", None));
    }
    validate_steps(suite)?;

    let mut measurements: BTreeMap<String, MeasurementKind> = BTreeMap::new();
    for (name, kind) in suite.measurements() {
        if measurements.insert(name.clone(), kind).is_some() {
            return Err(problem(
                "steps",
                format!("measurement {name:?} is produced twice; give each a unique name"),
                Some(&name),
            ));
        }
    }
    if let Some(baseline) = &suite.baseline {
        for (index, ratio) in baseline.ratios.iter().enumerate() {
            match measurements.get(&ratio.measurement) {
                Some(MeasurementKind::Count | MeasurementKind::Value) => {}
                Some(kind) => {
                    return Err(problem(
                        format!("baseline.ratios[{index}].measurement"),
                        format!(
                            "{:?} is a {kind:?} measurement; ratios divide count or value measurements",
                            ratio.measurement
                        ),
                        Some(&ratio.measurement),
                    ));
                }
                None => {
                    return Err(problem(
                        format!("baseline.ratios[{index}].measurement"),
                        unknown_measurement(&ratio.measurement, &measurements),
                        Some(&ratio.measurement),
                    ));
                }
            }
        }
    }

    let variables = scale.variables();
    let mut slo_names = BTreeSet::new();
    if suite.slos.is_empty() {
        return Err(problem(
            "slos",
            "a suite needs at least one SLO (a harness that cannot fail proves nothing)",
            None,
        ));
    }
    for (index, slo) in suite.slos.iter().enumerate() {
        let field = format!("slos[{index}]");
        if !slo_names.insert(slo.name.as_str()) {
            return Err(problem(
                format!("{field}.name"),
                format!("SLO {:?} is defined twice", slo.name),
                Some(&slo.name),
            ));
        }
        let Some(kind) = measurements.get(&slo.measurement) else {
            return Err(problem(
                format!("{field}.measurement"),
                unknown_measurement(&slo.measurement, &measurements),
                Some(&format!("measurement: {}", slo.measurement)),
            ));
        };
        if !kind.stats().contains(&slo.stat) {
            let stats: Vec<&str> = kind.stats().iter().map(|s| s.as_str()).collect();
            return Err(problem(
                format!("{field}.stat"),
                format!(
                    "{:?} is not a stat of {:?} ({kind:?}); use one of {}",
                    slo.stat.as_str(),
                    slo.measurement,
                    stats.join(", ")
                ),
                Some(&format!("stat: {}", slo.stat)),
            ));
        }
        if let Err(error) = slo.threshold.evaluate(&variables) {
            return Err(problem(
                format!("{field}.{}", slo.comparison.field()),
                error.to_string(),
                Some(slo.threshold.text()),
            ));
        }
    }
    validate_missing_guards(suite, &measurements, &variables)?;
    if let Some(sensitivity) = &suite.sensitivity {
        for name in &sensitivity.fails {
            if !slo_names.contains(name.as_str()) {
                return Err(problem(
                    "sensitivity.fails",
                    format!("no SLO named {name:?} in this suite"),
                    Some(name),
                ));
            }
        }
        if sensitivity.legacy.is_empty() && sensitivity.set.is_empty() {
            return Err(problem(
                "sensitivity.legacy",
                "name the legacy switch this suite catches (or `set:` overrides that break what it measures)",
                Some("sensitivity:"),
            ));
        }
        for (index, text) in sensitivity.set.iter().enumerate() {
            if let Err(error) = text.parse::<super::Override>() {
                return Err(problem(
                    format!("sensitivity.set[{index}]"),
                    error.to_string(),
                    Some(text),
                ));
            }
        }
    }
    Ok(())
}

/// Every latency measurement an SLO judges by an arrival-only stat must also be judged by
/// `missing` with `max: 0`, so that an event that never came fails the suite instead of
/// vanishing from the percentiles.
fn validate_missing_guards(
    suite: &Suite,
    measurements: &BTreeMap<String, MeasurementKind>,
    variables: &BTreeMap<String, f64>,
) -> Result<(), Problem> {
    let guarded = |measurement: &str| {
        suite.slos.iter().any(|slo| {
            slo.measurement == measurement
                && slo.stat == Stat::Missing
                && slo.comparison == Comparison::AtMost
                && slo
                    .threshold
                    .evaluate(variables)
                    .is_ok_and(|max| max == 0.0)
        })
    };
    for (index, slo) in suite.slos.iter().enumerate() {
        let latency = measurements.get(&slo.measurement) == Some(&MeasurementKind::Latency);
        if latency && slo.stat.is_arrival() && !guarded(&slo.measurement) {
            return Err(problem(
                format!("slos[{index}].stat"),
                format!(
                    "SLO {:?} judges the {} of {:?}, which counts only the events that arrived; add an SLO on the same measurement with `stat: missing` and `max: 0` so that an event that never arrives fails the suite",
                    slo.name, slo.stat, slo.measurement
                ),
                Some(&format!("name: {}", slo.name)),
            ));
        }
    }
    Ok(())
}

fn unknown_measurement(name: &str, known: &BTreeMap<String, MeasurementKind>) -> String {
    let list: Vec<&str> = known.keys().map(String::as_str).collect();
    format!(
        "no step produces a measurement named {name:?} (known: {})",
        if list.is_empty() {
            "none".to_string()
        } else {
            list.join(", ")
        }
    )
}

/// Order and counts: steps must come after what they act on.
fn validate_steps(suite: &Suite) -> Result<(), Problem> {
    let mut clusters = 0u32;
    let mut repos = 0u32;
    let mut gitrepos = false;
    for (index, step) in suite.steps.iter().enumerate() {
        let field = format!("steps[{index}].{}", step.action());
        let needle = Some(step.action());
        let require = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(problem(
                    field.clone(),
                    format!("needs {what} earlier in the suite"),
                    needle,
                ))
            }
        };
        match step {
            Step::CreateClusters(step) => {
                let count = step.count.unwrap_or(suite.scale.clusters);
                if count == 0 || step.unlabelled > count {
                    return Err(problem(
                        field,
                        format!(
                            "count {count} must be at least 1 and at least unlabelled ({})",
                            step.unlabelled
                        ),
                        needle,
                    ));
                }
                clusters += count;
            }
            Step::CreateRepos(step) => {
                if step.count == Some(0) || step.paths == Some(0) {
                    return Err(problem(field, "count and paths must be at least 1", needle));
                }
                repos += step.count.unwrap_or(suite.scale.gitrepos);
            }
            Step::CreateGitrepos(step) => {
                require(repos > 0, "create_repos")?;
                if step.targets.is_empty() {
                    return Err(problem(
                        field,
                        "give at least one target (Fleet's default targets the `default` group, which fleetbench does not create)",
                        needle,
                    ));
                }
                gitrepos = true;
            }
            Step::Commit(_) => require(gitrepos, "create_gitrepos")?,
            Step::EditTargets(step) => {
                require(gitrepos, "create_gitrepos")?;
                if step.measure_survivors.is_some() && step.settle.0 < Duration::from_secs(1) {
                    return Err(problem(
                        format!("{field}.settle"),
                        "measure_survivors needs `settle` of at least 1s: survivors are judged once the controller's writes have stopped for that long, so a recreation it defers is still seen",
                        needle,
                    ));
                }
            }
            Step::LabelCluster(step) => {
                require(gitrepos, "create_gitrepos")?;
                if let Some(cluster) = step.cluster
                    && cluster >= clusters
                {
                    return Err(problem(
                        format!("{field}.cluster"),
                        format!(
                            "cluster index {cluster} but only {clusters} clusters exist by then (0-based)"
                        ),
                        Some("cluster: "),
                    ));
                }
                require(clusters > 0, "create_clusters")?;
            }
            Step::BreakRepos(_) | Step::HealRepos(_) => require(repos > 0, "create_repos")?,
            Step::ObservePolling(step) => {
                require(gitrepos, "create_gitrepos")?;
                if step.duration.0.is_zero() {
                    return Err(problem(field, "duration must be longer than 0s", needle));
                }
            }
            Step::StatusBurst(step) => {
                require(gitrepos, "create_gitrepos")?;
                if suite.controller.agent != AgentMode::None {
                    return Err(problem(
                        field,
                        "the harness writes BundleDeployment status itself; set `controller.agent: none` so no agent competes with it",
                        needle,
                    ));
                }
                if step.rounds == 0 {
                    return Err(problem(field, "rounds must be at least 1", needle));
                }
            }
            Step::PartitionCluster(step) | Step::HealCluster(step) => {
                require(clusters > 0, "create_clusters")?;
                if step.cluster >= clusters {
                    return Err(problem(
                        format!("{field}.cluster"),
                        format!(
                            "cluster index {} but only {clusters} clusters exist by then (0-based)",
                            step.cluster
                        ),
                        Some("cluster: "),
                    ));
                }
            }
            Step::WaitDeployed(_) => require(gitrepos, "create_gitrepos")?,
            Step::CreateClusterGroup(_)
            | Step::ApiFaults(_)
            | Step::Sleep(_)
            | Step::Settle(_)
            | Step::StopController(_)
            | Step::StartController(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
name: tiny
description: a tiny suite
tags: [smoke]
scale:
  gitrepos: 2
  paths: 3
  clusters: 2
  polling_interval: 5s
controller:
  env:
    GITREPO_SYNC_PERIOD: 1m
steps:
  - create_clusters:
      labels: {env: bench}
      unlabelled: 1
  - create_repos: {}
  - create_gitrepos:
      targets:
        - clusterSelector:
            matchLabels: {env: bench}
  - label_cluster:
      labels: {env: bench}
      measure: label-to-bd
slos:
  - name: bd-latency
    measurement: label-to-bd
    stat: p99
    max: polling_interval * 1.1 + 2s
  - name: bd-all
    measurement: label-to-bd
    stat: missing
    max: 0
"#;

    fn parse(text: &str) -> Result<Suite, LoadError> {
        parse_suite(text, Path::new("suites/tiny.yaml"))
    }

    #[test]
    fn parses_a_valid_suite_with_defaults() {
        let suite = parse(VALID).unwrap();
        assert_eq!(suite.name, "tiny");
        assert_eq!(suite.scale.gitrepos, 2);
        assert_eq!(suite.scale.namespace, "fleet-default");
        assert_eq!(suite.controller.agent, AgentMode::Simulated);
        assert_eq!(suite.steps.len(), 4);
        let Step::LabelCluster(label) = &suite.steps[3] else {
            panic!("{:?}", suite.steps[3]);
        };
        assert_eq!(label.timeout.0, Duration::from_secs(120));
        assert_eq!(
            suite.slos[0]
                .threshold
                .evaluate(&suite.scale.variables())
                .unwrap(),
            7.5
        );
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let text = VALID.replace("  paths: 3", "  pathz: 3");
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LoadError::Parse { line: Some(7), .. }),
            "{message}"
        );
        assert!(
            message.starts_with("invalid suite file suites/tiny.yaml:7:"),
            "{message}"
        );
        assert!(message.contains("pathz"), "{message}");
    }

    #[test]
    fn targets_are_fleet_targets_limited_to_what_the_oracle_predicts() {
        let suite = parse(VALID).unwrap();
        let Step::CreateGitrepos(step) = &suite.steps[2] else {
            panic!("{:?}", suite.steps[2]);
        };
        assert_eq!(
            serde_json::to_value(&step.targets).unwrap(),
            serde_json::json!([{"clusterSelector": {"matchLabels": {"env": "bench"}}}])
        );
        for (bad, named) in [
            ("clusterSelectr:", "clusterSelectr"),
            ("clusterGroupSelector:", "clusterGroupSelector"),
        ] {
            let text = VALID.replace("- clusterSelector:", &format!("- {bad}"));
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains(named), "{message}");
            assert!(message.contains("clusterName"), "{message}");
        }
        let text = VALID.replace(
            "matchLabels: {env: bench}\n  - label_cluster",
            "matchExpressions: [{key: env, operator: Exists}]\n  - label_cluster",
        );
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains("matchExpressions") && message.contains("matchLabels"),
            "{message}"
        );
    }

    #[test]
    fn wrong_type_is_a_parse_error_with_line() {
        let text = VALID.replace("gitrepos: 2", "gitrepos: many");
        let error = parse(&text).unwrap_err();
        assert!(
            matches!(error, LoadError::Parse { line: Some(6), .. }),
            "{error}"
        );
    }

    #[test]
    fn unknown_step_is_rejected() {
        let text = VALID.replace("- create_repos: {}", "- create_repoz: {}");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("create_repoz"), "{message}");
    }

    #[test]
    fn slo_on_missing_measurement_points_at_the_line() {
        let text = VALID.replace(
            "measurement: label-to-bd\n    stat: missing",
            "measurement: label-to-bdx\n    stat: missing",
        );
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "slos[1].measurement");
                assert_eq!(*line, Some(31), "{message}");
            }
            other => panic!("{other}"),
        }
        assert!(
            message.contains("label-to-bd"),
            "lists the known ones: {message}"
        );
    }

    #[test]
    fn an_slo_can_name_one_stage_of_a_commit() {
        let commit = "  - commit:\n      measure: commit-to-bundle\nslos:\n  - name: notice\n    measurement: commit-to-bundle/notify\n    stat: p99\n    max: 2s\n  - name: notice-all\n    measurement: commit-to-bundle/notify\n    stat: missing\n    max: 0\n";
        let text = VALID.replace("slos:\n", commit);
        let suite = parse(&text).unwrap();
        assert_eq!(suite.slos[0].measurement, "commit-to-bundle/notify");
        let typo = text.replace("commit-to-bundle/notify", "commit-to-bundle/notified");
        let message = parse(&typo).unwrap_err().to_string();
        assert!(
            message.contains("commit-to-bundle/notify"),
            "lists the stages: {message}"
        );
        // Like any latency, a stage's p99 needs its `missing` guard.
        let unguarded = text.replace(
            "    measurement: commit-to-bundle/notify\n    stat: missing",
            "    measurement: commit-to-bundle\n    stat: missing",
        );
        assert!(parse(&unguarded).is_err());
    }

    #[test]
    fn stat_must_fit_the_measurement_kind() {
        let text = VALID.replace("stat: p99", "stat: value");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("slos[0].stat"), "{message}");
        assert!(
            message.contains("p99"),
            "suggests the valid stats: {message}"
        );
    }

    /// The line `needle` is on in `text`, counting from 1, the last one when it repeats.
    fn line_of(text: &str, needle: &str) -> u64 {
        let lines: Vec<&str> = text.lines().collect();
        lines
            .iter()
            .rposition(|line| line.contains(needle))
            .unwrap() as u64
            + 1
    }

    #[test]
    fn a_misspelt_stat_is_rejected_at_its_line() {
        let text = VALID.replace("stat: missing", "stat: mising");
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LoadError::Parse { line: Some(32), .. }),
            "{message}"
        );
        assert!(
            message.starts_with("invalid suite file suites/tiny.yaml:32:"),
            "{message}"
        );
        assert!(message.contains("mising"), "{message}");
    }

    #[test]
    fn a_misspelt_comparison_is_rejected_at_its_line() {
        let text = VALID.replace("    max: 0\n", "    maks: 0\n");
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, LoadError::Parse { line: Some(33), .. }),
            "{message}"
        );
        assert!(message.contains("maks"), "{message}");
    }

    #[test]
    fn a_misspelt_unit_is_rejected_at_its_line() {
        let text = VALID.replace("1.1 + 2s", "1.1 + 2sec");
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "slos[0].max");
                assert_eq!(*line, Some(29), "{message}");
            }
            other => panic!("{other}"),
        }
        assert!(message.contains("sec"), "{message}");
    }

    #[test]
    fn a_problem_points_at_its_own_entry_not_an_earlier_one_that_reads_the_same() {
        // The third SLO says `stat: missing` like the second, but of a count measurement.
        let text = VALID.replace(
            "      measure: label-to-bd\n",
            "      measure: label-to-bd\n      count_writes: {measure: writes, resources: [bundles]}\n",
        ) + "  - name: no-writes-missing\n    measurement: writes\n    stat: missing\n    max: 0\n";
        let error = parse(&text).unwrap_err();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "slos[2].stat");
                assert_eq!(*line, Some(line_of(&text, "stat: missing")), "{error}");
            }
            other => panic!("{other}"),
        }
        // An SLO named like the start of an earlier one's name: `bd` is not `bd-latency`.
        let text = VALID.replace(
            "  - label_cluster:",
            "  - commit: {measure: c}\n  - label_cluster:",
        ) + "  - name: bd\n    measurement: c\n    stat: p50\n    max: 1s\n";
        let error = parse(&text).unwrap_err();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "slos[2].stat");
                assert_eq!(*line, Some(line_of(&text, "name: bd")), "{error}");
            }
            other => panic!("{other}"),
        }
        // Steps too: the second `label_cluster` is the one at fault.
        let text = VALID.replace(
            "slos:\n",
            "  - label_cluster:\n      cluster: 7\n      labels: {env: b}\nslos:\n",
        );
        let error = parse(&text).unwrap_err();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "steps[4].label_cluster.cluster");
                assert_eq!(*line, Some(line_of(&text, "cluster: 7")), "{error}");
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn list_entries_are_found_in_block_lists_only() {
        let lines: Vec<&str> = VALID.lines().collect();
        assert_eq!(entry_lines(&lines, "slos", 0), Some((25, 29)));
        assert_eq!(entry_lines(&lines, "slos", 1), Some((29, 33)));
        assert_eq!(entry_lines(&lines, "slos", 2), None);
        assert_eq!(entry_lines(&lines, "steps", 3), Some((21, 24)));
        let flow = ["slos: [{name: a}]"];
        assert_eq!(entry_lines(&flow, "slos", 0), None);
        assert_eq!(list_entry("slos[12].max"), Some(("slos", 12)));
        assert_eq!(list_entry("baseline.ratios[0].measurement"), None);
    }

    #[test]
    fn thresholds_must_evaluate() {
        let text = VALID.replace("polling_interval * 1.1", "pollinginterval * 1.1");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("slos[0].max"), "{message}");
        assert!(message.contains("pollinginterval"), "{message}");
    }

    #[test]
    fn steps_must_follow_what_they_act_on() {
        let text = VALID.replace("  - create_repos: {}\n", "");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("steps[1].create_gitrepos"), "{message}");
        assert!(message.contains("create_repos"), "{message}");
    }

    #[test]
    fn label_cluster_index_must_exist() {
        let text = VALID.replace(
            "      labels: {env: bench}\n      measure",
            "      cluster: 5\n      labels: {env: bench}\n      measure",
        );
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("cluster index 5"), "{message}");
    }

    #[test]
    fn slo_needs_exactly_one_bound() {
        let text = VALID.replace("    max: 0\n", "");
        let message = parse(&text).unwrap_err().to_string();
        assert!(
            message.contains("exactly one of `max` or `min`"),
            "{message}"
        );
    }

    #[test]
    fn status_burst_requires_no_agent() {
        let text = VALID.replace(
            "  - label_cluster:",
            "  - status_burst:\n      measure: writes\n  - label_cluster:",
        );
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("agent: none"), "{message}");
    }

    #[test]
    fn an_arrival_stat_without_a_missing_guard_is_rejected_with_its_line() {
        // The p99 alone would pass a controller that delivered 1 event of 3000.
        let text = VALID.replace(
            "  - name: bd-all\n    measurement: label-to-bd\n    stat: missing\n    max: 0\n",
            "",
        );
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        match &error {
            LoadError::Invalid { field, line, .. } => {
                assert_eq!(field, "slos[0].stat");
                assert_eq!(*line, Some(26), "{message}");
            }
            other => panic!("{other}"),
        }
        assert!(message.contains("stat: missing"), "{message}");
        assert!(
            message.starts_with("invalid suite file suites/tiny.yaml:26:"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_guard_must_allow_no_missing_event() {
        for (bound, why) in [
            ("max: 1", "a guard that tolerates a lost event"),
            ("max: bundles", "a guard that tolerates many"),
        ] {
            let text = VALID.replace(
                "    stat: missing\n    max: 0\n",
                &format!("    stat: missing\n    {bound}\n"),
            );
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains("slos[0].stat"), "{why}: {message}");
        }
        let at_least = VALID.replace(
            "    stat: missing\n    max: 0\n",
            "    stat: missing\n    min: 0\n",
        );
        assert!(
            parse(&at_least).is_err(),
            "a `min` on missing guards nothing"
        );
    }

    #[test]
    fn missing_guards_apply_to_latency_only() {
        // A count measurement has no arrivals to lose.
        let text = VALID.replace(
            "      measure: label-to-bd\n",
            "      measure: label-to-bd\n      count_writes: {measure: writes, resources: [bundles]}\n",
        ) + "  - name: few-writes\n    measurement: writes\n    stat: value\n    max: 10\n";
        parse(&text).unwrap();
    }

    #[test]
    fn load_dir_rejects_duplicate_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), VALID).unwrap();
        std::fs::write(dir.path().join("b.yaml"), VALID).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let error = load_dir(dir.path()).unwrap_err();
        assert!(matches!(error, LoadError::Duplicate { .. }), "{error}");
        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        assert_eq!(load_dir(dir.path()).unwrap().len(), 1);
    }
}
