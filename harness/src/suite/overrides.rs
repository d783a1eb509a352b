//! `--set key=value`: override any field of a suite from the command line.
//!
//! The suite is turned into its JSON tree, the value is set at the dotted path, and the tree
//! is read back as a suite and validated again, so an override can never produce a suite
//! that the file format itself would reject. List elements are addressed by index, by
//! `name` (SLOs) or by step action (`steps.commit.timeout` sets it on every commit step).
//! `SUITE:key=value` limits an override to one suite.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::Suite;
use super::load::validate;

/// One parsed `--set` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Only this suite, when given as `SUITE:key=value`.
    pub suite: Option<String>,
    /// The dotted path.
    pub path: Vec<String>,
    /// The value, parsed as a YAML scalar or flow collection.
    pub value: Value,
    /// The argument as given, for messages and results.
    pub text: String,
}

/// Why an override could not be applied.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OverrideError {
    /// The argument is not `key=value`.
    #[error("invalid --set {0:?}: expected key=value, e.g. --set scale.gitrepos=30")]
    Syntax(String),
    /// The value is not valid YAML.
    #[error("invalid --set {text:?}: the value is not valid YAML: {reason}")]
    Value {
        /// The argument.
        text: String,
        /// The parser's message.
        reason: String,
    },
    /// The path leads nowhere in this suite.
    #[error("--set {text:?}: suite {suite:?} has no {at}")]
    NoSuchField {
        /// The argument.
        text: String,
        /// The suite.
        suite: String,
        /// What was not found.
        at: String,
    },
    /// The overridden suite does not read back as a suite (a wrong type, an unknown name).
    #[error("--set {text:?} makes suite {suite:?} invalid")]
    Rejected {
        /// The argument.
        text: String,
        /// The suite.
        suite: String,
        /// Why it does not read back.
        source: std::sync::Arc<serde_json::Error>,
    },
    /// The overridden suite reads back, but is not consistent.
    #[error("--set {text:?} makes suite {suite:?} invalid: {reason}")]
    Invalid {
        /// The argument.
        text: String,
        /// The suite.
        suite: String,
        /// Why.
        reason: String,
    },
}

impl FromStr for Override {
    type Err = OverrideError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (key, raw_value) = text
            .split_once('=')
            .ok_or_else(|| OverrideError::Syntax(text.to_string()))?;
        let (suite, key) = match key.split_once(':') {
            Some((suite, key)) => (Some(suite.trim().to_string()), key),
            None => (None, key),
        };
        let path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(OverrideError::Syntax(text.to_string()));
        }
        let value = if raw_value.trim().is_empty() {
            Value::String(String::new())
        } else {
            serde_saphyr::from_str::<Value>(raw_value).map_err(|error| OverrideError::Value {
                text: text.to_string(),
                reason: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            })?
        };
        Ok(Override {
            suite,
            path,
            value,
            text: text.to_string(),
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Override {
    /// Whether this override is meant for `suite`.
    pub fn applies_to(&self, suite: &str) -> bool {
        self.suite.as_deref().is_none_or(|name| name == suite)
    }
}

/// Applies every override meant for this suite, in order, and validates the result.
pub fn apply_overrides(suite: &Suite, overrides: &[Override]) -> Result<Suite, OverrideError> {
    let mut current = suite.clone();
    for item in overrides.iter().filter(|o| o.applies_to(&suite.name)) {
        let rejected = |source| OverrideError::Rejected {
            text: item.text.clone(),
            suite: suite.name.clone(),
            source: std::sync::Arc::new(source),
        };
        let mut tree = serde_json::to_value(&current).map_err(rejected)?;
        let matched = set_path(&mut tree, &item.path, &item.value).map_err(|NotFound(at)| {
            OverrideError::NoSuchField {
                text: item.text.clone(),
                suite: suite.name.clone(),
                at,
            }
        })?;
        debug_assert!(matched > 0);
        let invalid = |reason: String| OverrideError::Invalid {
            text: item.text.clone(),
            suite: suite.name.clone(),
            reason,
        };
        current = serde_json::from_value(tree).map_err(rejected)?;
        validate(&current)
            .map_err(|problem| invalid(format!("{}: {}", problem.field, problem.message)))?;
    }
    Ok(current)
}

/// The part of an override's path that leads nowhere, as the message names it.
struct NotFound(String);

impl NotFound {
    fn under(self, head: &str) -> NotFound {
        NotFound(format!("{head}.{}", self.0))
    }
}

/// Sets `value` at `path`; returns how many places were set, or what was not found.
fn set_path(node: &mut Value, path: &[String], value: &Value) -> Result<usize, NotFound> {
    let Some((head, rest)) = path.split_first() else {
        *node = value.clone();
        return Ok(1);
    };
    match node {
        Value::Object(map) => {
            if rest.is_empty() {
                map.insert(head.clone(), value.clone());
                return Ok(1);
            }
            match map.get_mut(head) {
                Some(child) => set_path(child, rest, value).map_err(|at| at.under(head)),
                None => {
                    // A missing optional section (skipped when empty): create it, and let
                    // deserialisation reject names that are not fields.
                    let mut child = Value::Object(Default::default());
                    let count = set_path(&mut child, rest, value)?;
                    map.insert(head.clone(), child);
                    Ok(count)
                }
            }
        }
        Value::Array(items) => {
            if let Ok(index) = head.parse::<usize>() {
                let length = items.len();
                let child = items
                    .get_mut(index)
                    .ok_or_else(|| NotFound(format!("element {index} (the list has {length})")))?;
                return set_path(child, rest, value).map_err(|at| at.under(head));
            }
            let mut count = 0;
            for item in items.iter_mut() {
                let by_name = item.get("name").and_then(Value::as_str) == Some(head.as_str());
                if by_name {
                    count += set_path(item, rest, value).map_err(|at| at.under(head))?;
                } else if let Some(inner) = item.get_mut(head.as_str()) {
                    // A step: `steps.commit.timeout` addresses every commit step.
                    count += set_path(inner, rest, value).map_err(|at| at.under(head))?;
                }
            }
            if count == 0 {
                Err(NotFound(format!(
                    "{head} (no element of this list has that name or step action)"
                )))
            } else {
                Ok(count)
            }
        }
        _ => Err(NotFound(format!(
            "field {head:?} (the value there is not a map or list)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{Profile, Step, parse_suite};
    use std::path::Path;

    fn suite() -> Suite {
        parse_suite(
            r#"
name: tiny
scale: {gitrepos: 2, clusters: 2}
steps:
  - create_clusters: {unlabelled: 1, labels: {env: bench}}
  - create_repos: {}
  - create_gitrepos: {targets: [{clusterSelector: {matchLabels: {env: bench}}}]}
  - commit: {measure: c1}
  - commit: {measure: c2}
slos:
  - {name: fast, measurement: c1, stat: p99, max: 2s}
  - {name: all, measurement: c2, stat: missing, max: 0}
  - {name: all-c1, measurement: c1, stat: missing, max: 0}
"#,
            Path::new("tiny.yaml"),
        )
        .unwrap()
    }

    fn apply(args: &[&str]) -> Result<Suite, OverrideError> {
        let overrides: Vec<Override> = args.iter().map(|a| a.parse().unwrap()).collect();
        apply_overrides(&suite(), &overrides)
    }

    #[test]
    fn sets_scale_and_controller_fields_with_typed_values() {
        let suite = apply(&[
            "scale.gitrepos=30",
            "scale.polling_interval=1m",
            "controller.profile=fleet-v0.10",
            "controller.env.GITREPO_SYNC_PERIOD=30s",
        ])
        .unwrap();
        assert_eq!(suite.scale.gitrepos, 30);
        assert_eq!(suite.scale.polling_interval.as_secs_f64(), 60.0);
        assert_eq!(suite.controller.profile, Profile::FleetV010);
        assert_eq!(suite.controller.env["GITREPO_SYNC_PERIOD"], "30s");
    }

    #[test]
    fn addresses_slos_by_name_and_steps_by_action_or_index() {
        let suite = apply(&[
            "slos.fast.max=5s",
            "steps.commit.timeout=10s",
            "steps.3.commit.repos=1",
        ])
        .unwrap();
        assert_eq!(suite.slos[0].threshold.text(), "5s");
        let timeouts: Vec<f64> = suite
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Commit(c) => Some(c.timeout.as_secs_f64()),
                _ => None,
            })
            .collect();
        assert_eq!(timeouts, vec![10.0, 10.0]);
        let Step::Commit(first) = &suite.steps[3] else {
            panic!()
        };
        assert_eq!(first.repos, crate::suite::Count::First(1));
    }

    #[test]
    fn rejects_unknown_fields_bad_values_and_invalid_results() {
        let error = apply(&["scale.gitrepoz=3"]).unwrap_err();
        assert!(matches!(error, OverrideError::Rejected { .. }), "{error}");
        let text = crate::error_text(&error);
        assert!(text.contains("gitrepoz"), "{text}");
        let error = apply(&["slos.slow.max=5s"]).unwrap_err();
        assert!(
            matches!(error, OverrideError::NoSuchField { .. }),
            "{error}"
        );
        let error = apply(&["scale.gitrepos=0"]).unwrap_err();
        assert!(error.to_string().contains("at least 1"), "{error}");
        assert!(matches!(
            "scale.gitrepos".parse::<Override>(),
            Err(OverrideError::Syntax(_))
        ));
    }

    #[test]
    fn suite_prefix_limits_the_override() {
        let only_other: Override = "other-suite:scale.gitrepos=30".parse().unwrap();
        assert_eq!(
            apply_overrides(&suite(), &[only_other])
                .unwrap()
                .scale
                .gitrepos,
            2
        );
        let mine: Override = "tiny:scale.gitrepos=30".parse().unwrap();
        assert_eq!(
            apply_overrides(&suite(), &[mine]).unwrap().scale.gitrepos,
            30
        );
    }
}
