//! Kubernetes label selectors (`metav1.LabelSelector`) compiled for matching.
//!
//! Targeting evaluates selectors for every bundle x cluster pair, so they are compiled once
//! (operators parsed, value lists sorted) instead of interpreted from the API struct each time.
//!
//! The apiserver has its own label selectors (`apiserver/src/selector.rs`), and the two are
//! kept apart on purpose: that one parses the `labelSelector` query string and answers with
//! kube-apiserver's exact error texts (a 400 a client may match on), while this one reads the
//! typed `metav1.LabelSelector` of targets, explains a bad one in a GitRepo condition, and
//! gives the targeting index what it needs ([`Selector::keys`],
//! [`Selector::matches_absent_keys`]). They share the matching rule of four operators and
//! nothing else; neither is in `fleet-api`, which holds data, not the controller's logic.

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
    /// A key Kubernetes would reject (Kubernetes rejects such selectors, so no cluster label
    /// could ever match it).
    #[error("invalid label key {key:?}: {problem}")]
    BadKey {
        /// The key.
        key: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A value no label can have.
    #[error("invalid label value {value:?} for key {key:?}: {problem}")]
    BadValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is wrong.
        problem: &'static str,
    },
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// Why `name` is not a label name segment (63 characters of `[A-Za-z0-9_.-]`, alphanumeric
/// at both ends), if it is not.
fn name_segment_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the name part must not be empty");
    }
    if name.len() > 63 {
        return Some("the name part must be at most 63 characters");
    }
    let bytes = name.as_bytes();
    if !bytes.iter().all(|b| is_name_char(*b))
        || !bytes[0].is_ascii_alphanumeric()
        || !bytes[bytes.len() - 1].is_ascii_alphanumeric()
    {
        return Some(
            "the name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
        );
    }
    None
}

/// Why `key` is not a valid label key (`[prefix/]name`, prefix a DNS-1123 subdomain), if it
/// is not.
pub fn label_key_problem(key: &str) -> Option<&'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !prefix_ok {
                return Some(
                    "the prefix must be a DNS-1123 subdomain (lowercase, e.g. example.com)",
                );
            }
            name
        }
        None => key,
    };
    name_segment_problem(name)
}

/// Why `value` is not a valid label value (empty, or a name segment), if it is not.
pub fn label_value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        return None;
    }
    name_segment_problem(value)
}

fn check_key(key: &str) -> Result<(), Error> {
    match label_key_problem(key) {
        Some(problem) => Err(Error::BadKey {
            key: key.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_values(key: &str, values: &[String]) -> Result<(), Error> {
    for value in values {
        if let Some(problem) = label_value_problem(value) {
            return Err(Error::BadValue {
                key: key.to_owned(),
                value: value.clone(),
                problem,
            });
        }
    }
    Ok(())
}

impl Selector {
    /// Compiles `selector`.
    pub fn compile(selector: &LabelSelector) -> Result<Self, Error> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            check_key(key)?;
            check_values(key, std::slice::from_ref(value))?;
            requirements.push(Requirement::In(key.clone(), vec![value.clone()]));
        }
        for expr in selector.match_expressions.iter().flatten() {
            check_key(&expr.key)?;
            let mut values = expr.values.clone().unwrap_or_default();
            check_values(&expr.key, &values)?;
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
        assert!(matches!(
            bad(expr("", "Exists", &[])),
            Err(Error::BadKey { .. })
        ));
        assert!(matches!(
            bad(expr("a b/c!", "Exists", &[])),
            Err(Error::BadKey { .. })
        ));
        assert!(matches!(
            bad(expr("a", "In", &["no spaces"])),
            Err(Error::BadValue { .. })
        ));
        let bad_match_labels = Selector::compile(&LabelSelector {
            match_labels: Some(labels(&[("a b/c!", "x")])),
            ..Default::default()
        });
        assert!(
            matches!(bad_match_labels, Err(Error::BadKey { ref key, .. }) if key == "a b/c!"),
            "{bad_match_labels:?}"
        );
    }

    #[test]
    fn label_keys_follow_kubernetes_syntax() {
        for good in ["env", "example.com/env", "a.b-c_d", "k8s.io/x", "A1"] {
            assert_eq!(label_key_problem(good), None, "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "/x",
            "x/",
            "-a",
            "a-",
            "a b",
            "Example.com/x",
            long.as_str(),
            "a/b/c",
        ] {
            assert!(label_key_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(label_value_problem(""), None);
        assert!(label_value_problem("../../x").is_some());
    }
}
