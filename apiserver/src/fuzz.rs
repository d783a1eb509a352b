//! Property-based fuzzing of everything that decodes client input.
//!
//! Every byte a client sends passes through one of these parsers before any Kubernetes
//! logic runs, so a panic in any of them is a crash reachable from the network (axum
//! turns a handler panic into a dropped connection, and a panic while a lock is held
//! would poison shared state). The properties feed them generated input shaped like the
//! real thing (JSON with Kubernetes' keys and patch directives, selector and query
//! grammar tokens, base64 continue tokens, protobuf envelopes) plus plain noise, and
//! assert two things: nothing panics, and every refusal is a typed error with a client
//! error code. Case counts keep the whole set to a few seconds in a debug build; raise
//! `PROPTEST_CASES` to search longer.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, header};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::faults::{ErrorRule, FaultConfig, FaultHandle, LatencyDistribution, MAX_LATENCY};
use crate::query::{ContinueToken, Filters, Query};
use crate::registry::Registry;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::Store;

/// Cases per property: the whole set stays within a few seconds in a debug build.
const CASES: u32 = 2000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        // Failures are turned into named regression tests instead of files in src/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A refusal must be a `Status` a client can act on: a 4xx with a reason and a message.
fn assert_client_error(err: &ApiError) {
    assert!((400..500).contains(&err.code), "{err}");
    assert!(!err.reason.is_empty(), "{err}");
    assert!(!err.message.is_empty(), "{err}");
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "apiVersion",
            "kind",
            "metadata",
            "name",
            "namespace",
            "resourceVersion",
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "managedFields",
            "uid",
            "generation",
            "spec",
            "status",
            "data",
            "containers",
            "env",
            "conditions",
            "type",
            "$patch",
            "$retainKeys",
            "$deleteFromPrimitiveList/finalizers",
            "$setElementOrder/containers",
            "op",
            "path",
            "from",
            "value",
        ])
        .prop_map(str::to_string),
        1 => "[a-z$/~.]{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "replace",
            "delete",
            "merge",
            "add",
            "remove",
            "move",
            "copy",
            "test",
            "v1",
            "All",
            "/metadata/name",
            "/-",
            "",
            "0",
            "default",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object shaped like a stored Kubernetes object, with arbitrary values inside.
fn kube_object() -> impl Strategy<Value = Value> {
    (json_value(), json_value(), json_value()).prop_map(|(metadata, spec, extra)| {
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default", "resourceVersion": "5"}});
        if let (Some(target), Some(given)) = (object["metadata"].as_object_mut(), metadata.as_object()) {
            target.extend(given.clone());
        }
        object["spec"] = spec;
        object["data"] = extra;
        object
    })
}

fn pointer() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            key(),
            prop::sample::select(vec![
                "-",
                "0",
                "1",
                "99999999999999999999",
                "~0",
                "~1",
                "~2",
                "~",
                ""
            ])
            .prop_map(str::to_string),
        ],
        0..4,
    )
    .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect())
}

fn json_patch_document() -> impl Strategy<Value = Value> {
    let operation = (
        prop::sample::select(vec![
            "add", "remove", "replace", "move", "copy", "test", "junk",
        ]),
        pointer(),
        prop::option::of(pointer()),
        prop::option::of(json_value()),
    )
        .prop_map(|(op, path, from, value)| {
            let mut operation = json!({"op": op, "path": path});
            if let Some(from) = from {
                operation["from"] = json!(from);
            }
            if let Some(value) = value {
                operation["value"] = value;
            }
            operation
        });
    prop_oneof![
        4 => prop::collection::vec(operation, 0..6).prop_map(Value::Array),
        1 => json_value(),
    ]
}

/// Text built from a grammar's tokens, so that most inputs get past the lexer.
fn tokens(vocabulary: Vec<&'static str>, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vocabulary).prop_map(str::to_string),
            1 => "\\PC{0,3}",
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

fn label_selector_text() -> impl Strategy<Value = String> {
    tokens(
        vec![
            "a",
            "b",
            "app",
            "x.io/k",
            "a-b_c.d",
            "=",
            "==",
            "!=",
            "!",
            " in ",
            " notin ",
            "(",
            ")",
            ",",
            "1",
            "-5",
            "99999999999999999999",
            ">",
            "<",
            " ",
            "é",
            "\u{0}",
        ],
        12,
    )
}

fn field_selector_text() -> impl Strategy<Value = String> {
    tokens(
        vec![
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "type",
            "=",
            "==",
            "!=",
            "\\",
            "\\,",
            "\\=",
            ",",
            "a",
            " ",
            "!",
            "status.phase",
        ],
        10,
    )
}

fn query_text() -> impl Strategy<Value = String> {
    let pair = (
        prop_oneof![
            4 => prop::sample::select(vec![
                "watch", "labelSelector", "fieldSelector", "limit", "continue",
                "resourceVersion", "resourceVersionMatch", "allowWatchBookmarks",
                "sendInitialEvents", "timeoutSeconds", "dryRun", "fieldManager", "force",
                "fieldValidation", "propagationPolicy", "includeObject", "orphanDependents",
            ])
            .prop_map(str::to_string),
            1 => "\\PC{0,6}",
        ],
        prop_oneof![
            prop::sample::select(vec![
                "",
                "0",
                "1",
                "-1",
                "true",
                "false",
                "All",
                "all",
                "Strict",
                "Warn",
                "Orphan",
                "Object",
                "18446744073709551616",
                "9223372036854775807",
                "1e3",
                " 5",
                "%",
            ])
            .prop_map(str::to_string),
            "\\PC{0,12}",
            label_selector_text(),
        ],
    );
    prop_oneof![
        4 => prop::collection::vec(pair, 0..6).prop_map(|pairs| {
            let mut serializer = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                serializer.append_pair(k, v);
            }
            serializer.finish()
        }),
        1 => "\\PC{0,40}",
        1 => "[%&=a-zA-Z0-9+]{0,40}",
    ]
}

fn continue_token_text() -> impl Strategy<Value = String> {
    fn encode(text: String) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
    prop_oneof![
        "\\PC{0,40}",
        json_value().prop_map(|v| encode(v.to_string())),
        (json_value(), json_value()).prop_map(|(rv, start)| {
            encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string())
        }),
        (any::<u64>(), "\\PC{0,12}").prop_map(|(rv, start)| {
            encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string())
        }),
    ]
}

fn yaml_text() -> impl Strategy<Value = String> {
    tokens(
        vec![
            "a: 1\n",
            "- x\n",
            "  ",
            "{",
            "}",
            "[",
            "]",
            ": ",
            "&a ",
            "*a",
            "!!str ",
            "!!binary ",
            "|\n",
            ">\n",
            "'",
            "\"",
            "#",
            "---\n",
            "...\n",
            "? ",
            "<<: *a\n",
            "~",
            "null",
            "\t",
            "metadata:\n  name: x\n",
            "apiVersion: v1\n",
            "kind: ConfigMap\n",
        ],
        16,
    )
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
            "application/json; charset=utf-8",
            "text/yaml",
            "",
            "*/*",
            ";;",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,20}",
    ]
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        kube_object().prop_map(|v| v.to_string().into_bytes()),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        yaml_text().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut b| {
            let mut framed = b"k8s\0".to_vec();
            framed.append(&mut b);
            framed
        }),
    ]
}

/// A store and registry with the built-in resources, shared by the cases.
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Store::new(16, tx);
        Registry::with_builtins(&store)
    })
}

fn ms() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        0.0..4e6_f64,
        prop::sample::select(vec![1e300, -1.0, f64::INFINITY, f64::NAN, f64::MAX, 3.6e6]),
    ]
}

fn latency() -> impl Strategy<Value = LatencyDistribution> {
    prop_oneof![
        ms().prop_map(|ms| LatencyDistribution::Constant { ms }),
        (ms(), ms()).prop_map(|(min_ms, max_ms)| LatencyDistribution::Uniform { min_ms, max_ms }),
        (ms(), ms())
            .prop_map(|(mean_ms, stddev_ms)| LatencyDistribution::Normal { mean_ms, stddev_ms }),
        (ms(), ms())
            .prop_map(|(median_ms, sigma)| LatencyDistribution::LogNormal { median_ms, sigma }),
        ms().prop_map(|mean_ms| LatencyDistribution::Exponential { mean_ms }),
    ]
}

fn fault_config() -> impl Strategy<Value = FaultConfig> {
    let rule = (any::<u16>(), ms(), prop::option::of("GET|LIST|[a-z]{0,4}")).prop_map(
        |(code, rate, verb)| ErrorRule {
            verb,
            resource: None,
            code,
            rate,
        },
    );
    (
        prop::collection::btree_map("GET|LIST|\\*|[a-z]{0,3}", latency(), 0..3),
        prop::collection::vec(rule, 0..3),
    )
        .prop_map(|(latency, errors)| FaultConfig {
            latency: latency.into_iter().collect::<BTreeMap<_, _>>(),
            errors,
        })
}

/// A server's state without its HTTP side, with the default namespace, for driving the
/// write path directly.
fn shared() -> &'static crate::state::ServerState {
    static SHARED: OnceLock<crate::state::ServerState> = OnceLock::new();
    SHARED.get_or_init(|| {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Store::new(64, tx);
        let registry = Registry::with_builtins(&store);
        let shared = crate::state::ServerState {
            faults: FaultHandle::new(FaultConfig::default()),
            config: crate::Config::default(),
            store,
            registry,
            metrics: crate::metrics::Metrics::default(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            terminating_namespaces: parking_lot::Mutex::new(std::collections::HashMap::new()),
            terminating_crds: parking_lot::Mutex::new(std::collections::HashMap::new()),
        };
        let namespaces = shared
            .registry
            .lookup("", "v1", "namespaces")
            .expect("built in");
        let opts = crate::write::WriteOptions {
            manager: "fuzz".into(),
            ..Default::default()
        };
        shared
            .create(
                &namespaces,
                None,
                json!({"metadata": {"name": "default"}}),
                &opts,
                false,
            )
            .expect("the namespace is created");
        shared
    })
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn writes_of_any_body_or_patch_fail_only_with_client_errors(
        create in kube_object(),
        mut update in kube_object(),
        address_target in any::<bool>(),
        merge in json_value(),
        json_ops in json_patch_document(),
        strategic in json_value(),
        apply in kube_object(),
        resource in prop::sample::select(vec!["configmaps", "secrets", "pods", "events"]),
    ) {
        use crate::write::{Part, WriteOptions};
        use crate::patch::PatchType;
        let shared = shared();
        let info = shared.registry.lookup("", "v1", resource).expect("built in");
        let opts = WriteOptions {
            manager: "fuzz".into(),
            force: true,
            ..Default::default()
        };
        let ns = Some("default");
        let check = |result: Result<crate::write::Outcome, ApiError>| {
            if let Err(err) = result {
                assert_client_error(&err);
            }
        };
        check(shared.create(&info, ns, create, &opts, true));
        // The object the patches address exists whatever the generated create did.
        let base = json!({"metadata": {"name": "target"}, "data": {"k": "v"}});
        let _ = shared.create(&info, ns, base, &opts, true);
        if address_target && let Some(meta) = update["metadata"].as_object_mut() {
            // Most generated names differ from the URL's; reach past that check too.
            meta.insert("name".into(), json!("target"));
            meta.remove("resourceVersion");
        }
        check(shared.update(&info, ns, "target", Part::Main, &update, &opts));
        for (kind, body) in [
            (PatchType::Merge, merge),
            (PatchType::Json, json_ops),
            (PatchType::Strategic, strategic),
            (PatchType::Apply, apply),
        ] {
            check(shared.patch(&info, ns, "target", Part::Main, kind, body, &opts));
        }
    }

    #[test]
    fn object_bodies_decode_or_are_refused_with_a_client_error(
        content_type in content_type(),
        body in body_bytes(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        match crate::handler::decode_object(&headers, &body) {
            Ok(value) => prop_assert!(value.is_object()),
            Err(err) => assert_client_error(&err),
        }
        if let Err(err) = crate::handler::decode_yaml(&body) {
            assert_client_error(&err);
        }
        if let Err(err) = crate::handler::delete_options(&headers, &body, &Query::default()) {
            assert_client_error(&err);
        }
    }

    #[test]
    fn merge_patches_never_panic(mut target in kube_object(), patch in json_value()) {
        // A merge patch applies to anything; the only failure is a malformed document.
        let _ = crate::patch::merge_patch(&mut target, &patch);
    }

    #[test]
    fn json_patches_never_panic(mut target in kube_object(), patch in json_patch_document()) {
        let _ = crate::patch::json_patch(&mut target, &patch);
    }

    #[test]
    fn strategic_merge_patches_never_panic(mut target in kube_object(), patch in json_value()) {
        let _ = crate::patch::strategic_merge_patch(&mut target, &patch);
    }

    #[test]
    fn stored_metadata_of_any_shape_is_indexed(object in kube_object(), path in "[a-z.]{0,20}") {
        let meta = crate::meta::ObjMeta::from_object(&object);
        let _ = meta.key();
        let _ = crate::selector::field_value(&object, &path);
    }

    #[test]
    fn selectors_from_queries_filter_any_object(
        labels in label_selector_text(),
        fields in field_selector_text(),
        resource in prop::sample::select(vec!["configmaps", "events", "pods", "secrets", "namespaces"]),
        object in kube_object(),
    ) {
        let info = registry().lookup("", "v1", resource).expect("built in");
        let query = Query {
            label_selector: Some(labels),
            field_selector: Some(fields),
            ..Query::default()
        };
        match Filters::new(&info, &query) {
            Ok(filters) => {
                let meta = crate::meta::ObjMeta::from_object(&object);
                let bytes = serde_json::to_vec(&object).expect("values serialize");
                let _ = filters.matches(&meta, Some(&bytes));
            }
            Err(err) => assert_client_error(&err),
        }
    }

    #[test]
    fn fault_configurations_validate_and_never_panic_when_used(config in fault_config()) {
        let valid = config.validate();
        if let Err(errors) = &valid {
            prop_assert!(!errors.is_empty());
            for error in errors {
                prop_assert!(!error.field().is_empty());
                prop_assert!(!error.detail().is_empty());
            }
        }
        // Set in-process without validation, sampling must still be safe.
        let handle = FaultHandle::new(config.clone());
        for verb in ["GET", "LIST", "x"] {
            if let Some(delay) = handle.latency(verb) {
                prop_assert!(delay <= MAX_LATENCY);
            }
            if let Some(code) = handle.error(verb, "pods", "") {
                prop_assert!(code == 429 || code == 500);
            }
        }
        // What validates survives the JSON round trip of the HTTP endpoint.
        if valid.is_ok() {
            let text = serde_json::to_string(&config).expect("serializes");
            let back: FaultConfig = serde_json::from_str(&text).expect("parses");
            prop_assert!(back.validate().is_ok());
        }
    }

    #[test]
    fn fault_configuration_json_of_any_shape_is_refused_cleanly(value in json_value()) {
        if let Ok(config) = serde_json::from_value::<FaultConfig>(value) {
            let _ = config.validate();
        }
    }
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn label_selectors_parse_or_are_refused_and_print_back(text in label_selector_text()) {
        if let Ok(selector) = LabelSelector::parse(&text) {
            let printed = selector.to_string();
            let reparsed = LabelSelector::parse(&printed);
            prop_assert!(reparsed.is_ok(), "{text:?} printed as {printed:?}: {reparsed:?}");
            prop_assert_eq!(reparsed.ok(), Some(selector));
        }
    }

    #[test]
    fn field_selectors_parse_or_are_refused_and_print_back(text in field_selector_text()) {
        if let Ok(selector) = FieldSelector::parse(&text) {
            let printed = selector.to_string();
            let reparsed = FieldSelector::parse(&printed);
            prop_assert!(reparsed.is_ok(), "{text:?} printed as {printed:?}: {reparsed:?}");
            // Terms are ordered by their raw text, as kube-apiserver orders them, and `==`
            // prints as `=`, so only the set of terms survives printing.
            let terms = |s: &FieldSelector| {
                let mut terms: Vec<String> = s.requirements().iter().map(ToString::to_string).collect();
                terms.sort();
                terms
            };
            prop_assert_eq!(reparsed.ok().map(|s| terms(&s)), Some(terms(&selector)));
        }
    }

    #[test]
    fn query_strings_parse_or_are_refused_with_a_client_error(text in query_text()) {
        match Query::parse(Some(&text)) {
            Ok(query) => {
                if let Some(rv) = query.resource_version.as_deref()
                    && let Err(err) = crate::handler::parse_revision(rv)
                {
                    assert_client_error(&err);
                }
            }
            Err(err) => assert_client_error(&err),
        }
    }

    #[test]
    fn continue_tokens_decode_or_are_refused_with_a_client_error(text in continue_token_text()) {
        match ContinueToken::decode(&text) {
            Ok(token) => {
                let again = ContinueToken::decode(&token.encode());
                prop_assert_eq!(again.ok(), Some(token));
            }
            Err(err) => assert_client_error(&err),
        }
    }

    #[test]
    fn protobuf_bodies_decode_or_are_refused(body in prop::collection::vec(any::<u8>(), 0..96)) {
        let mut framed = b"k8s\0".to_vec();
        framed.extend_from_slice(&body);
        for bytes in [&body, &framed] {
            let _ = crate::protobuf::decode(bytes);
        }
    }

    #[test]
    fn negotiation_headers_of_any_shape_are_read(text in "\\PC{0,60}") {
        let _ = crate::present::Format::from_accept(Some(&text));
        let _ = crate::patch::PatchType::from_content_type(&text);
        let _ = crate::table::IncludeObject::parse(&text);
        let _ = crate::query::parse_propagation(&text);
    }
}

/// Inputs too structured for random generation to reach: an alias bomb (a few hundred
/// bytes expanding to ~430 million nodes) and nesting deep enough to overflow the stack of
/// any recursive walk. Both must be refused by the decoder, not expanded.
#[test]
fn yaml_alias_bombs_and_deep_nesting_are_refused() {
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let previous = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{previous}]\n"));
    }
    let deep_flow = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_json = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    for (what, text) in [
        ("bomb", &bomb),
        ("deep flow", &deep_flow),
        ("deep json", &deep_json),
    ] {
        let err = crate::handler::decode_yaml(text.as_bytes()).expect_err(what);
        assert_client_error(&err);
        let err = crate::handler::decode_json(text.as_bytes()).expect_err(what);
        assert_client_error(&err);
    }
}
