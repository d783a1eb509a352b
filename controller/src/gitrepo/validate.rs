//! GitRepo spec checks that run before the controller touches git or writes a Bundle.
//!
//! A GitRepo is written by whoever may create objects in its namespace, so its spec is
//! hostile input: `spec.repo` must name a remote (never a path on the controller's own disk,
//! where other tenants' fetched repositories live), `pollingInterval` must be a positive Go
//! duration and is raised to a floor (a `1ns` interval is an ls-remote storm against the git
//! host), and targets must be well-formed so a typo is reported instead of silently matching
//! nothing. A spec that fails is neither polled nor synced; the failure becomes the GitRepo's
//! Accepted/Stalled/Ready conditions with a reason per kind of problem.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::selector::{self, Selector};
use fleet_api::{DEFAULT_POLLING_INTERVAL, GitRepoSpec, GitTarget};

/// Fleet's default polling interval doubles as the floor: polling a git host more often than
/// this per GitRepo is what rate limits punish.
pub const DEFAULT_MIN_POLLING_INTERVAL: Duration = DEFAULT_POLLING_INTERVAL;

/// What the operator allows beyond the safe defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Accept `file://` repositories (local experiments only: they read the controller's
    /// own filesystem).
    pub allow_file_repos: bool,
    /// Polling intervals below this are raised to it.
    pub min_polling_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow_file_repos: false,
            min_polling_interval: DEFAULT_MIN_POLLING_INTERVAL,
        }
    }
}

/// A GitRepo spec the controller refuses.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// `spec.repo` is empty.
    #[error("spec.repo is empty; set it to an http(s)://, ssh:// or user@host:path URL")]
    RepoEmpty,
    /// `spec.repo` uses a transport other than http, https or ssh.
    #[error(
        "spec.repo {url:?}: {scheme}:// repositories are not supported; use an http(s)://, ssh:// or user@host:path URL"
    )]
    RepoScheme {
        /// The URL as written.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// `spec.repo` is a `file://` URL and the controller was not started to allow them.
    #[error(
        "spec.repo {url:?}: file:// repositories are disabled on this controller; use an http(s)://, ssh:// or user@host:path URL"
    )]
    RepoFileDisabled {
        /// The URL as written.
        url: String,
    },
    /// `spec.repo` is not a URL at all (a path, or garbage).
    #[error(
        "spec.repo {url:?} is not a remote repository URL; use an http(s)://, ssh:// or user@host:path URL"
    )]
    RepoNotRemote {
        /// The URL as written.
        url: String,
    },
    /// `spec.repo` has a remote scheme but no usable host.
    #[error("spec.repo {url:?}: {problem}")]
    RepoMalformed {
        /// The URL as written.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `spec.pollingInterval` is not a positive Go duration.
    #[error("spec.pollingInterval {value:?} is invalid: {problem}")]
    PollingInterval {
        /// The value as written.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A target is malformed.
    #[error("spec.targets[{index}]{name}: {problem}")]
    Target {
        /// Position in `spec.targets`.
        index: usize,
        /// ` (name "x")` when the target has a name, else empty.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl Error {
    /// The condition reason for this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::RepoEmpty
            | Error::RepoScheme { .. }
            | Error::RepoFileDisabled { .. }
            | Error::RepoNotRemote { .. }
            | Error::RepoMalformed { .. } => "InvalidRepo",
            Error::PollingInterval { .. } => "InvalidPollingInterval",
            Error::Target { .. } => "InvalidTarget",
        }
    }
}

/// Whether `url` is a remote this controller may read under `policy`.
///
/// Accepted: `http://`, `https://` and `ssh://` URLs with a host, scp-like
/// `[user@]host:path`, and `file://` only when the policy allows it. Anything else (plain
/// paths, `git://`, `ext::`, ...) is refused before libgit2 sees it, so that neither a local
/// repository nor a probe of the filesystem can be reached through a GitRepo.
pub fn check_repo_url(url: &str, policy: &Policy) -> Result<(), Error> {
    let trimmed = url.trim();
    if trimmed.is_empty() {
        return Err(Error::RepoEmpty);
    }
    let owned = || trimmed.to_owned();
    if trimmed.chars().any(char::is_control) {
        return Err(Error::RepoMalformed {
            url: owned(),
            problem: "contains control characters".to_owned(),
        });
    }
    if let Some((scheme, _)) = trimmed.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "http" | "https" | "ssh" => {
                let parsed = url::Url::parse(trimmed).map_err(|e| Error::RepoMalformed {
                    url: owned(),
                    problem: e.to_string(),
                })?;
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(Error::RepoMalformed {
                        url: owned(),
                        problem: "the URL has no host".to_owned(),
                    });
                }
                Ok(())
            }
            "file" if policy.allow_file_repos => Ok(()),
            "file" => Err(Error::RepoFileDisabled { url: owned() }),
            _ => Err(Error::RepoScheme {
                url: owned(),
                scheme,
            }),
        };
    }
    if is_scp_like(trimmed) {
        Ok(())
    } else {
        Err(Error::RepoNotRemote { url: owned() })
    }
}

/// git's scp-like syntax: `[user@]host:path`, with no `/` before the colon (otherwise git
/// reads it as a local path).
fn is_scp_like(url: &str) -> bool {
    let Some((user_host, path)) = url.split_once(':') else {
        return false;
    };
    // `transport::address` is git's remote-helper syntax, not scp.
    if path.is_empty() || path.starts_with(':') || user_host.contains('/') {
        return false;
    }
    let host = match user_host.rsplit_once('@') {
        Some((user, host)) => {
            // A user starting with '-' reads as an option to an ssh command; '.' is no
            // user name either.
            if user.is_empty()
                || user.starts_with(['-', '.'])
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c))
            {
                return false;
            }
            host
        }
        None => user_host,
    };
    !host.is_empty()
        && !host.starts_with(['-', '.'])
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// The interval the GitRepo asks for: `None` when unset or empty (Fleet's default applies).
pub fn requested_interval(spec: &GitRepoSpec) -> Result<Option<Duration>, Error> {
    let Some(value) = spec.polling_interval.as_deref() else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |problem| Error::PollingInterval {
        value: value.to_owned(),
        problem,
    };
    if value.trim_start().starts_with('-') {
        return Err(bad("must be positive"));
    }
    let interval = fleet_api::duration::parse(value)
        .map_err(|_| bad("expected a Go duration such as 15s, 1m or 1h30m"))?;
    if interval.is_zero() {
        return Err(bad("must be positive (omit it for the 15s default)"));
    }
    Ok(Some(interval))
}

/// The interval the GitRepo is actually polled at: its own (or the 15s default) raised to
/// the policy's floor. An invalid value polls at the default, though such GitRepos are not
/// polled at all ([`check`] fails for them).
pub fn effective_interval(spec: &GitRepoSpec, policy: &Policy) -> Duration {
    requested_interval(spec)
        .ok()
        .flatten()
        .unwrap_or(DEFAULT_POLLING_INTERVAL)
        .max(policy.min_polling_interval)
}

/// A message when the GitRepo's own interval was raised to the floor.
pub fn clamp_notice(spec: &GitRepoSpec, policy: &Policy) -> Option<String> {
    let requested = requested_interval(spec).ok().flatten()?;
    (requested < policy.min_polling_interval).then(|| {
        format!(
            "spec.pollingInterval {:?} is below the minimum of {}; polling every {} instead",
            spec.polling_interval.as_deref().unwrap_or_default(),
            human(policy.min_polling_interval),
            human(policy.min_polling_interval),
        )
    })
}

fn human(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Kubernetes object names (Cluster, ClusterGroup): a DNS-1123 subdomain.
pub fn dns1123_subdomain_problem(name: &str) -> Option<&'static str> {
    if name.len() > 253 {
        return Some("must be at most 253 characters");
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    (!ok).then_some(
        "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (a DNS-1123 subdomain)",
    )
}

fn selector_problem(field: &str, selector: &LabelSelector) -> Option<String> {
    Selector::compile(selector)
        .err()
        .map(|e: selector::Error| format!("{field}: {e}"))
}

/// The first problem of one target, if any.
pub fn target_problem(target: &GitTarget) -> Option<String> {
    if let Some(name) = target.cluster_name.as_deref().filter(|n| !n.is_empty())
        && dns1123_subdomain_problem(name).is_some()
        && selector::label_value_problem(name).is_some()
    {
        // A display name (the Rancher label) is a label value, so either form is accepted.
        return Some(format!(
            "clusterName {name:?} is neither a Cluster name (a DNS-1123 subdomain) nor a cluster display name (a label value)"
        ));
    }
    if let Some(group) = target.cluster_group.as_deref().filter(|n| !n.is_empty())
        && let Some(problem) = dns1123_subdomain_problem(group)
    {
        return Some(format!(
            "clusterGroup {group:?} is not a ClusterGroup name: {problem}"
        ));
    }
    if let Some(selector) = &target.cluster_selector
        && let Some(problem) = selector_problem("clusterSelector", selector)
    {
        return Some(problem);
    }
    if let Some(selector) = &target.cluster_group_selector
        && let Some(problem) = selector_problem("clusterGroupSelector", selector)
    {
        return Some(problem);
    }
    None
}

/// Checks a GitRepo spec: repository URL, polling interval, targets (first problem wins).
pub fn check(spec: &GitRepoSpec, policy: &Policy) -> Result<(), Error> {
    check_repo_url(&spec.repo, policy)?;
    requested_interval(spec)?;
    for (index, target) in spec.targets.iter().enumerate() {
        if let Some(problem) = target_problem(target) {
            let name = target
                .name
                .as_deref()
                .filter(|n| !n.is_empty())
                .map(|n| format!(" (name {n:?})"))
                .unwrap_or_default();
            return Err(Error::Target {
                index,
                name,
                problem,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn only_network_remotes_are_accepted_by_default() {
        for good in [
            "https://github.com/rancher/fleet-examples",
            "http://127.0.0.1:3000/fleet/repo.git",
            "ssh://git@github.com/rancher/fleet.git",
            "git@github.com:rancher/fleet.git",
            "github.com:rancher/fleet.git",
        ] {
            assert_eq!(check_repo_url(good, &policy()), Ok(()), "{good}");
        }
        assert!(matches!(
            check_repo_url("file:///some/local/repo.git", &policy()),
            Err(Error::RepoFileDisabled { .. })
        ));
        assert!(matches!(
            check_repo_url("FILE:///etc", &policy()),
            Err(Error::RepoFileDisabled { .. })
        ));
        for bad in [
            "/etc",
            "./repo",
            "../x",
            "repo.git",
            "@h:x",
            "-oProxyCommand=x:y",
        ] {
            let err = check_repo_url(bad, &policy()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::RepoNotRemote { .. } | Error::RepoMalformed { .. }
                ),
                "{bad}: {err}"
            );
        }
        for bad in ["git://host/x", "ext::sh -c touch% /tmp/x", "ftp://h/x"] {
            assert!(check_repo_url(bad, &policy()).is_err(), "{bad}");
        }
        assert!(matches!(
            check_repo_url("https://", &policy()),
            Err(Error::RepoMalformed { .. })
        ));
        assert_eq!(check_repo_url("  ", &policy()), Err(Error::RepoEmpty));
        let allow = Policy {
            allow_file_repos: true,
            ..policy()
        };
        assert_eq!(check_repo_url("file:///tmp/r.git", &allow), Ok(()));
        // Allowing file:// does not turn bare paths into repositories.
        assert!(check_repo_url("/tmp/r.git", &allow).is_err());
    }

    fn spec_with_interval(value: Option<&str>) -> GitRepoSpec {
        GitRepoSpec {
            repo: "https://h/r".into(),
            polling_interval: value.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn invalid_intervals_are_rejected_naming_field_and_value() {
        for (value, problem) in [
            ("abc", "expected a Go duration"),
            ("-5s", "must be positive"),
            ("0s", "must be positive"),
            ("0", "must be positive"),
        ] {
            let err = check(&spec_with_interval(Some(value)), &policy()).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.reason(), "InvalidPollingInterval");
            assert!(
                text.starts_with(&format!("spec.pollingInterval {value:?} is invalid: ")),
                "{text}"
            );
            assert!(text.contains(problem), "{text}");
        }
        assert_eq!(check(&spec_with_interval(None), &policy()), Ok(()));
        assert_eq!(check(&spec_with_interval(Some("")), &policy()), Ok(()));
    }

    #[test]
    fn short_intervals_are_raised_to_the_floor_and_say_so() {
        let fast = spec_with_interval(Some("1ns"));
        assert_eq!(
            effective_interval(&fast, &policy()),
            Duration::from_secs(15)
        );
        let notice = clamp_notice(&fast, &policy()).unwrap();
        assert!(notice.contains("\"1ns\""), "{notice}");
        assert!(notice.contains("minimum of 15s"), "{notice}");
        let slow = spec_with_interval(Some("1m"));
        assert_eq!(
            effective_interval(&slow, &policy()),
            Duration::from_secs(60)
        );
        assert_eq!(clamp_notice(&slow, &policy()), None);
        assert_eq!(
            effective_interval(&spec_with_interval(None), &policy()),
            Duration::from_secs(15)
        );
        let lowered = Policy {
            min_polling_interval: Duration::from_secs(1),
            ..policy()
        };
        let two = spec_with_interval(Some("2s"));
        assert_eq!(effective_interval(&two, &lowered), Duration::from_secs(2));
        assert_eq!(clamp_notice(&two, &lowered), None);
    }

    fn target(name: Option<&str>, edit: impl FnOnce(&mut GitTarget)) -> GitRepoSpec {
        let mut t = GitTarget {
            name: name.map(str::to_owned),
            ..Default::default()
        };
        edit(&mut t);
        GitRepoSpec {
            repo: "https://h/r".into(),
            targets: vec![
                GitTarget {
                    cluster_group: Some("default".into()),
                    ..Default::default()
                },
                t,
            ],
            ..Default::default()
        }
    }

    fn labels(key: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_owned(), "x".to_owned())])),
            ..Default::default()
        }
    }

    fn expression(key: &str, operator: &str, values: Option<Vec<&str>>) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: values.map(|v| v.into_iter().map(str::to_owned).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn malformed_targets_are_named_by_index_and_name() {
        let cases: Vec<(GitRepoSpec, &str)> = vec![
            (
                target(Some("prod"), |t| {
                    t.cluster_selector = Some(labels("a b/c!"));
                }),
                "spec.targets[1] (name \"prod\"): clusterSelector: invalid label key \"a b/c!\"",
            ),
            (
                target(None, |t| {
                    t.cluster_selector = Some(expression("env", "In", Some(vec![])));
                }),
                "spec.targets[1]: clusterSelector: invalid label selector: operator In on key \"env\" needs values",
            ),
            (
                target(None, |t| {
                    t.cluster_selector = Some(expression("env", "NotIn", None));
                }),
                "operator NotIn on key \"env\" needs values",
            ),
            (
                target(None, |t| {
                    t.cluster_selector = Some(expression("env", "Exists", Some(vec!["x"])));
                }),
                "operator Exists on key \"env\" must not have values",
            ),
            (
                target(None, |t| {
                    t.cluster_group_selector = Some(expression("", "Exists", None));
                }),
                "spec.targets[1]: clusterGroupSelector: invalid label key \"\"",
            ),
            (
                target(Some("t"), |t| t.cluster_name = Some("../../x".into())),
                "spec.targets[1] (name \"t\"): clusterName \"../../x\" is neither a Cluster name",
            ),
            (
                target(None, |t| t.cluster_group = Some("Bad Group".into())),
                "spec.targets[1]: clusterGroup \"Bad Group\" is not a ClusterGroup name",
            ),
        ];
        for (spec, want) in cases {
            let err = check(&spec, &policy()).unwrap_err();
            assert_eq!(err.reason(), "InvalidTarget");
            assert!(
                err.to_string().starts_with(want) || err.to_string().contains(want),
                "{err}"
            );
        }
        let display = target(None, |t| t.cluster_name = Some("My_Cluster".into()));
        assert_eq!(
            check(&display, &policy()),
            Ok(()),
            "display names are label values"
        );
        let fine = target(Some("ok"), |t| {
            t.cluster_selector = Some(labels("example.com/env"));
        });
        assert_eq!(check(&fine, &policy()), Ok(()));
    }
}
