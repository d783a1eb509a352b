//! Kubernetes label selectors (`metav1.LabelSelector`) compiled for matching.
//!
//! Targeting evaluates selectors for every bundle x cluster pair, so they are compiled once
//! (operators parsed, value lists sorted) instead of interpreted from the API struct each time.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One compiled requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    /// `key` equals one of `values` (also `matchLabels`, with one value).
    In(String, Vec<String>),
    /// `key` is absent, or equals none of `values`.
    NotIn(String, Vec<String>),
    /// `key` is present.
    Exists(String),
    /// `key` is absent.
    DoesNotExist(String),
}

/// A compiled label selector. The empty selector matches every label set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// A selector that cannot be compiled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// `matchExpressions[].operator` is not In, NotIn, Exists or DoesNotExist.
    #[error("invalid label selector operator {0:?}: expected In, NotIn, Exists or DoesNotExist")]
    UnknownOperator(String),
    /// In/NotIn without values, or Exists/DoesNotExist with values.
    #[error("invalid label selector: operator {operator} on key {key:?} {problem}")]
    BadValues {
        /// The operator.
        operator: String,
        /// The key.
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl Selector {
    /// Compiles `selector`.
    pub fn compile(selector: &LabelSelector) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::In(key.clone(), vec![value.clone()]));
        }
        for expr in selector.match_expressions.iter().flatten() {
            let mut values = expr.values.clone().unwrap_or_default();
            values.sort();
            let bad = |problem| Error::BadValues {
                operator: expr.operator.clone(),
                key: expr.key.clone(),
                problem,
            };
            let requirement = match expr.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => return Err(bad("needs values")),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(bad("must not have values"));
                }
                "In" => Requirement::In(expr.key.clone(), values),
                "NotIn" => Requirement::NotIn(expr.key.clone(), values),
                "Exists" => Requirement::Exists(expr.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(expr.key.clone()),
                other => return Err(Error::UnknownOperator(other.to_owned())),
            };
            requirements.push(requirement);
        }
        Ok(Selector { requirements })
    }

    /// Whether every requirement holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                Requirement::In(key, values) => labels
                    .get(key)
                    .is_some_and(|v| values.binary_search(v).is_ok()),
                Requirement::NotIn(key, values) => labels
                    .get(key)
                    .is_none_or(|v| values.binary_search(v).is_err()),
                Requirement::Exists(key) => labels.contains_key(key),
                Requirement::DoesNotExist(key) => !labels.contains_key(key),
            })
    }

    /// Whether this selector matches every label set.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The label keys this selector reads: its result can only change when one of them does.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requirements
            .iter()
            .map(|requirement| match requirement {
                Requirement::In(key, _)
                | Requirement::NotIn(key, _)
                | Requirement::Exists(key)
                | Requirement::DoesNotExist(key) => key.as_str(),
            })
    }

    /// Whether the selector can match a label set that lacks some of its keys (NotIn or
    /// DoesNotExist), or matches everything: such selectors may match a new cluster through
    /// keys the cluster does not have, so the index keeps them apart.
    pub fn matches_absent_keys(&self) -> bool {
        self.requirements.is_empty()
            || self.requirements.iter().any(|requirement| {
                matches!(
                    requirement,
                    Requirement::NotIn(..) | Requirement::DoesNotExist(_)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn expr(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|v| (*v).to_owned()).collect())
            },
        }
    }

    #[test]
    fn match_labels_and_expressions_all_must_hold() {
        let selector = Selector::compile(&LabelSelector {
            match_labels: Some(labels(&[("env", "prod")])),
            match_expressions: Some(vec![
                expr("region", "In", &["eu", "us"]),
                expr("tier", "NotIn", &["canary"]),
                expr("managed", "Exists", &[]),
                expr("legacy", "DoesNotExist", &[]),
            ]),
        })
        .unwrap();
        let good = labels(&[("env", "prod"), ("region", "eu"), ("managed", "yes")]);
        assert!(selector.matches(&good));
        let mut canary = good.clone();
        canary.insert("tier".into(), "canary".into());
        assert!(!selector.matches(&canary));
        let mut legacy = good;
        legacy.insert("legacy".into(), "1".into());
        assert!(!selector.matches(&legacy));
        assert!(!selector.matches(&labels(&[
            ("env", "prod"),
            ("region", "ap"),
            ("managed", "")
        ])));
        assert!(!selector.matches(&labels(&[("region", "eu"), ("managed", "")])));
        assert_eq!(
            selector.keys().collect::<Vec<_>>(),
            ["env", "region", "tier", "managed", "legacy"]
        );
        assert!(selector.matches_absent_keys());
    }

    #[test]
    fn the_empty_selector_matches_everything() {
        let selector = Selector::compile(&LabelSelector::default()).unwrap();
        assert!(selector.matches(&BTreeMap::new()));
        assert!(selector.is_empty());
        assert!(selector.matches_absent_keys());
    }

    #[test]
    fn invalid_selectors_are_errors() {
        let bad = |e| {
            Selector::compile(&LabelSelector {
                match_expressions: Some(vec![e]),
                ..Default::default()
            })
        };
        assert_eq!(
            bad(expr("a", "Gt", &["1"])),
            Err(Error::UnknownOperator("Gt".into()))
        );
        assert!(bad(expr("a", "In", &[])).is_err());
        assert!(bad(expr("a", "Exists", &["x"])).is_err());
    }
}
