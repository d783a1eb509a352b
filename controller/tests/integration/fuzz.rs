//! Property-based fuzzing of everything the controller parses from untrusted sources:
//! fleet.yaml files from git, GitRepo specs written by tenants, and webhook requests from
//! anyone who can reach the listener. Each must answer with a typed error, never a panic,
//! and the validators must agree with what they guard (a spec that passes validation
//! compiles; a signature that verifies was made with the secret).
//!
//! Case counts keep the whole file well under a minute in a debug build.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use fleet_api::duration::parse as parse_go_duration;
use fleet_api::{GitRepoSpec, GitTarget};
use fleet_controller::bundle::targeting::Criteria;
use fleet_controller::gitrepo::fleetyaml::{self, FleetYaml};
use fleet_controller::gitrepo::validate::{self, Policy};
use fleet_controller::webhook::{self, Provider};
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::{HeaderMap, HeaderName, HeaderValue};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use proptest::prelude::*;
use sha2::Sha256;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures are reported with their minimal input; no regression files are written
        // into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ----- fleet.yaml -----

/// YAML-ish text: fleet.yaml's own keys, nesting, flow collections and YAML syntax, so the
/// parser sees near-valid documents as well as noise.
fn yamlish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "defaultNamespace",
        "namespace",
        "labels",
        "helm",
        "chart",
        "values",
        "valuesFiles",
        "kustomize",
        "dir",
        "yaml",
        "overlays",
        "paused",
        "rolloutStrategy",
        "maxNew",
        "dependsOn",
        "name",
        "selector",
        "targetCustomizations",
        "clusterSelector",
        "matchLabels",
        "matchExpressions",
        "operator",
        "doNotDeploy",
        "overrideTargets",
        "targetCustomizationMode",
        "x",
    ]);
    let scalar = prop::sample::select(vec![
        "a",
        "true",
        "on",
        "1",
        "-1",
        "1e999",
        "null",
        "~",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "'",
        "&a",
        "*a",
        "!!str",
        "|",
        ">",
        "- x",
        "{a: b}",
        "[1, 2]",
        "",
        "99999999999999999999",
        "0x1F",
    ]);
    let line = (0usize..4, key, prop::bool::ANY, scalar).prop_map(|(indent, key, dash, value)| {
        format!(
            "{}{}{key}: {value}\n",
            "  ".repeat(indent),
            if dash { "- " } else { "" }
        )
    });
    prop_oneof![
        prop::collection::vec(line, 0..24).prop_map(|lines| lines.concat()),
        ".{0,300}",
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn fleet_yaml_parses_or_names_the_file(text in yamlish()) {
        match FleetYaml::parse("dir/fleet.yaml", &text) {
            Ok(parsed) => {
                // Whatever parsed is usable: values files and dependsOn are well-formed.
                let _ = parsed.values_files();
                for dep in parsed.depends_on.iter().flatten() {
                    prop_assert!(dep.name.as_deref().is_some_and(|n| !n.is_empty()) || dep.selector.is_some());
                }
            }
            Err(fleetyaml::Error::Parse { path, .. } | fleetyaml::Error::DependsOn { path, .. }) => {
                prop_assert_eq!(path, "dir/fleet.yaml");
            }
        }
    }
}

// ----- GitRepo specs -----

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,5})?(ns|us|µs|ms|s|m|h|d|x|)",
        "([0-9]{1,4}(h|m|s|ms)){1,4}",
        ".{0,20}",
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn polling_intervals_are_positive_and_floored_or_rejected(text in duration_text(), floor_ms in 1u64..60_000) {
        let _ = parse_go_duration(&text);
        let policy = Policy { min_polling_interval: Duration::from_millis(floor_ms), ..Policy::default() };
        let spec = GitRepoSpec {
            repo: "https://git.example.com/r".into(),
            polling_interval: Some(text.clone()),
            ..Default::default()
        };
        let effective = validate::effective_interval(&spec, &policy);
        prop_assert!(effective >= policy.min_polling_interval);
        match validate::check(&spec, &policy) {
            Ok(()) => {
                if !text.is_empty() {
                    let parsed = parse_go_duration(&text);
                    prop_assert!(parsed.is_ok_and(|d| !d.is_zero()), "{text:?} accepted");
                }
            }
            Err(e) => {
                prop_assert_eq!(e.reason(), "InvalidPollingInterval");
                prop_assert!(e.to_string().contains(&format!("{text:?}")), "names the value: {}", e);
            }
        }
    }

    #[test]
    fn accepted_repo_urls_are_remotes(url in prop_oneof![
        "(https?|ssh|file|git|ftp|HTTP|FiLe)://[a-z0-9./:@_-]{0,30}",
        "[a-z@.:/_-]{0,30}",
        "(/|\\./|\\.\\./|~/)[a-z/]{0,20}",
        ".{0,40}",
    ]) {
        let policy = Policy::default();
        if validate::check_repo_url(&url, &policy).is_ok() {
            let lower = url.trim().to_ascii_lowercase();
            prop_assert!(!lower.starts_with("file://"), "{url:?}");
            prop_assert!(!lower.starts_with('/') && !lower.starts_with('.') && !lower.starts_with('~'), "{url:?}");
            prop_assert!(
                lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("ssh://") || !lower.contains("://"),
                "{url:?}"
            );
        }
        let _ = webhook::normalize_url(&url);
    }
}

fn label_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?",
        "([a-z]{1,5}\\.)?[a-z]{1,5}/[a-zA-Z0-9]{1,6}",
        ".{0,12}",
        Just(String::new()),
    ]
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let requirement = (
        label_text(),
        prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist", "Gt", ""]),
        prop::option::of(prop::collection::vec(label_text(), 0..3)),
    )
        .prop_map(|(key, operator, values)| LabelSelectorRequirement {
            key,
            operator: operator.to_owned(),
            values,
        });
    (
        prop::option::of(prop::collection::btree_map(
            label_text(),
            label_text(),
            0..3,
        )),
        prop::option::of(prop::collection::vec(requirement, 0..3)),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

fn target() -> impl Strategy<Value = GitTarget> {
    (
        prop::option::of(label_text()),
        prop::option::of(label_text()),
        prop::option::of(selector()),
        prop::option::of(label_text()),
        prop::option::of(selector()),
    )
        .prop_map(
            |(name, cluster_name, cluster_selector, cluster_group, cluster_group_selector)| {
                GitTarget {
                    name,
                    cluster_name,
                    cluster_selector,
                    cluster_group,
                    cluster_group_selector,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn accepted_targets_compile_and_rejections_name_the_target(targets in prop::collection::vec(target(), 0..4)) {
        let spec = GitRepoSpec {
            repo: "https://git.example.com/r".into(),
            targets: targets.clone(),
            ..Default::default()
        };
        match validate::check(&spec, &Policy::default()) {
            Ok(()) => {
                for t in &targets {
                    prop_assert!(Criteria::compile(t).is_ok(), "accepted but does not compile: {t:?}");
                }
            }
            Err(e) => {
                prop_assert_eq!(e.reason(), "InvalidTarget");
                prop_assert!(e.to_string().starts_with("spec.targets["), "{}", e);
            }
        }
    }
}

// ----- webhooks -----

const PROVIDERS: [Provider; 6] = [
    Provider::GitHub,
    Provider::Gogs,
    Provider::GitLab,
    Provider::Bitbucket,
    Provider::BitbucketServer,
    Provider::Azure,
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "after",
                    "ref",
                    "repository",
                    "html_url",
                    "clone_url",
                    "project",
                    "push",
                    "changes",
                    "new",
                    "target",
                    "hash",
                    "type",
                    "name",
                    "resource",
                    "refUpdates",
                    "newObjectId",
                    "remoteUrl",
                    "links",
                    "clone",
                    "href",
                    "toHash",
                    "refId",
                    "checkout_sha",
                    "0",
                ])
                .prop_map(str::to_owned),
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn secret(pairs: &[(&str, &[u8])]) -> Secret {
    Secret {
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

fn hmac_hex(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Headers a correctly configured sender would attach for `provider`.
fn signed(provider: Provider, key: &[u8], body: &[u8]) -> (Secret, HeaderMap) {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    let text = String::from_utf8_lossy(key).into_owned();
    let secret_for = match provider {
        Provider::GitHub => {
            set(
                "x-hub-signature-256",
                format!("sha256={}", hmac_hex(key, body)),
            );
            secret(&[("github", key)])
        }
        Provider::Gogs => {
            set("x-gitea-signature", hmac_hex(key, body));
            secret(&[("gitea", key)])
        }
        Provider::BitbucketServer => {
            set("x-hub-signature", format!("sha256={}", hmac_hex(key, body)));
            secret(&[("bitbucket-server", key)])
        }
        Provider::GitLab => {
            set("x-gitlab-token", text);
            secret(&[("gitlab", key)])
        }
        Provider::Bitbucket => {
            set("x-hook-uuid", text);
            secret(&[("bitbucket", key)])
        }
        Provider::Azure => {
            let basic = base64::engine::general_purpose::STANDARD
                .encode([b"user".as_slice(), b":", key].concat());
            set("authorization", format!("Basic {basic}"));
            secret(&[("azure-username", b"user"), ("azure-password", key)])
        }
    };
    (secret_for, headers)
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn push_payloads_parse_or_fail_typed(
        provider in prop::sample::select(PROVIDERS.to_vec()),
        json in json_value(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let body = serde_json::to_vec(&json).expect("serializable");
        prop_assert!(webhook::parse(provider, &body).is_ok(), "any JSON is a (maybe empty) push");
        match webhook::parse(provider, &noise) {
            Ok(_) => prop_assert!(serde_json::from_slice::<serde_json::Value>(&noise).is_ok()),
            Err(webhook::Error::Payload { provider: p, .. }) => prop_assert_eq!(p, provider),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }

    #[test]
    fn only_the_right_secret_verifies(
        provider in prop::sample::select(PROVIDERS.to_vec()),
        key in "[a-zA-Z0-9]{1,24}",
        wrong in "[a-zA-Z0-9]{1,24}",
        body in prop::collection::vec(any::<u8>(), 0..128),
        garbage in prop::collection::btree_map(
            prop::sample::select(vec![
                "x-hub-signature-256", "x-hub-signature", "x-gitea-signature", "x-gogs-signature",
                "x-gitlab-token", "x-hook-uuid", "authorization", "x-github-event",
            ]),
            ".{0,40}",
            0..4,
        ),
    ) {
        let (right, headers) = signed(provider, key.as_bytes(), &body);
        let verified = webhook::verify(provider, &headers, &body, &right, "ns/r");
        prop_assert!(verified.is_ok(), "{:?}", verified);
        if wrong != key {
            let (wrong_secret, _) = signed(provider, wrong.as_bytes(), &body);
            let err = webhook::verify(provider, &headers, &body, &wrong_secret, "ns/r").unwrap_err();
            prop_assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
        }
        // Unsigned, garbage-signed, or a secret without this provider's key: 401, never a
        // panic and never a 500.
        let mut junk = HeaderMap::new();
        for (name, value) in &garbage {
            if let Ok(value) = HeaderValue::from_str(value) {
                junk.insert(HeaderName::from_static(name), value);
            }
        }
        let _ = webhook::provider(&junk);
        for (headers, secret_used) in [(&junk, &right), (&headers, &secret(&[("unrelated", b"k")]))] {
            match webhook::verify(provider, headers, &body, secret_used, "ns/r") {
                Ok(()) => prop_assert!(std::ptr::eq(secret_used, &right), "accepted without the secret"),
                Err(e) => prop_assert_eq!(e.status(), http::StatusCode::UNAUTHORIZED, "{}", e),
            }
        }
    }
}
