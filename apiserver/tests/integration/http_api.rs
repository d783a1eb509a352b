//! Raw HTTP against the server: bad input gets the right 4xx `Status` and changes
//! nothing; authentication; metrics; fault injection over HTTP; discovery documents.

use crate::common;

use std::time::{Duration, Instant};

use apiserver::{Config, RunningApiServer};
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn post_json(server: &RunningApiServer, path: &str, body: &Value) -> (u16, Value) {
    send(server, "POST", path, "application/json", body.to_string()).await
}

async fn count(server: &RunningApiServer, path: &str) -> usize {
    let (code, list) = send(server, "GET", path, "application/json", "").await;
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn bad_input_gets_4xx_and_changes_nothing() {
    let server = server(Config::default()).await;
    let before = count(&server, CONFIGMAPS).await;

    let (code, body) = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/json",
        "{\"metadata\": {",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/yaml",
        "metadata: [unclosed",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(&server, "POST", CONFIGMAPS, "application/json", "[1, 2]").await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/vnd.kubernetes.protobuf",
        vec![0u8, 1, 2],
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let deployment = b"k8s\x00\x0a\x15\x0a\x07apps/v1\x12\x0aDeployment\x12\x00".to_vec();
    let (code, body) = send(
        &server,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        "application/vnd.kubernetes.protobuf",
        deployment,
    )
    .await;
    assert_status(code, &body, 415, "UnsupportedMediaType");
    let (code, body) = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/cbor",
        vec![0xa0u8],
    )
    .await;
    assert_status(code, &body, 415, "UnsupportedMediaType");

    let (code, body) = post_json(
        &server,
        "/apis/example.com/v1/namespaces/default/nothings",
        &json!({"kind": "Nothing"}),
    )
    .await;
    assert_status(code, &body, 404, "NotFound");
    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");

    let huge = "x".repeat(3 * 1024 * 1024 + 1);
    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"name": "big"}, "data": {"a": huge}}),
    )
    .await;
    assert_status(code, &body, 413, "RequestEntityTooLarge");

    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"name": "Bad_Name"}}),
    )
    .await;
    assert_status(code, &body, 422, "Invalid");
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(body["details"]["causes"][0]["reason"], "FieldValueInvalid");
    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"name": "ok", "labels": {"bad key!": "v"}}}),
    )
    .await;
    assert_status(code, &body, 422, "Invalid");
    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"name": "ok", "labels": {"k": "bad value!"}}}),
    )
    .await;
    assert_status(code, &body, 422, "Invalid");
    let (code, body) = post_json(&server, CONFIGMAPS, &json!({"metadata": {}})).await;
    assert_status(code, &body, 422, "Invalid");

    let (code, body) = send(&server, "PUT", CONFIGMAPS, "application/json", "{}").await;
    assert_status(code, &body, 405, "MethodNotAllowed");
    let (code, body) = post_json(
        &server,
        &format!("{CONFIGMAPS}?fieldValidation=Nope"),
        &json!({"metadata": {"name": "v"}}),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(
        &server,
        "GET",
        &format!("{CONFIGMAPS}?labelSelector=a%20in%20(b"),
        "application/json",
        "",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(
        &server,
        "GET",
        &format!("{CONFIGMAPS}?continue=garbage"),
        "application/json",
        "",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");

    // The object exists for patch checks.
    let (code, _) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"name": "target"}, "data": {"a": "1"}}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/target"),
        "text/plain",
        "{}",
    )
    .await;
    assert_status(code, &body, 415, "UnsupportedMediaType");
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/target"),
        "application/merge-patch+json",
        "{not json",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/target"),
        "application/apply-patch+yaml",
        "data: {a: 2}",
    )
    .await;
    assert_status(code, &body, 400, "BadRequest"); // fieldManager is required for apply
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/target"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"x":"bad value!"}}}"#,
    )
    .await;
    assert_status(code, &body, 422, "Invalid");
    let (code, body) = send(
        &server,
        "GET",
        &format!("{CONFIGMAPS}/target"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body["metadata"].get("labels").is_none(),
        "a refused patch changes nothing"
    );

    assert_eq!(count(&server, CONFIGMAPS).await, before + 1);
    server.shutdown().await;
}

#[tokio::test]
async fn custom_resources_are_validated_against_their_schema() {
    let server = server(Config::default()).await;
    let (code, body) = post_json(
        &server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &widget_crd(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"]["conditions"][1]["type"], "Established");
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let mk = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});

    let (code, body) = post_json(&server, widgets, &mk(json!({"size": "big"}))).await;
    assert_status(code, &body, 422, "Invalid");
    assert_eq!(body["details"]["causes"][0]["field"], "spec.size", "{body}");
    let (code, body) = post_json(&server, widgets, &mk(json!({"color": "red"}))).await;
    assert_status(code, &body, 422, "Invalid");
    assert_eq!(
        body["details"]["causes"][0]["reason"], "FieldValueRequired",
        "{body}"
    );
    let (code, body) =
        post_json(&server, widgets, &mk(json!({"size": 1, "color": "purple"}))).await;
    assert_status(code, &body, 422, "Invalid");
    assert_eq!(
        body["details"]["causes"][0]["reason"], "FieldValueNotSupported",
        "{body}"
    );
    let (code, body) = post_json(
        &server,
        &format!("{widgets}?fieldValidation=Strict"),
        &mk(json!({"size": 1, "bogus": 1})),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    assert_eq!(count(&server, widgets).await, 0);

    // Unknown fields are pruned, except under preserve-unknown-fields.
    let (code, body) = post_json(
        &server,
        widgets,
        &mk(json!({"size": 1, "bogus": 1, "extra": {"anything": [1]}})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"], json!({"size": 1, "extra": {"anything": [1]}}));

    // A CRD whose schema is not structural is refused.
    let mut bad = widget_crd();
    bad["metadata"]["name"] = json!("gadgets.example.com");
    bad["spec"]["names"] = json!({"plural": "gadgets", "kind": "Gadget"});
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] =
        json!({"properties": {"a": {"type": "string"}}});
    let (code, body) = post_json(
        &server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &bad,
    )
    .await;
    assert_status(code, &body, 422, "Invalid");

    // Deleting the CRD removes its objects and stops serving it.
    let (code, _) = send(
        &server,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    eventually("resource no longer served", || async {
        let (code, _) = send(&server, "GET", widgets, "application/json", "").await;
        (code == 404).then_some(())
    })
    .await;
    eventually("CRD removed", || async {
        let (code, _) = send(
            &server,
            "GET",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            "application/json",
            "",
        )
        .await;
        (code == 404).then_some(())
    })
    .await;
    let (_, groups) = send(&server, "GET", "/apis", "application/json", "").await;
    assert!(
        !groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bearer_token_is_required_when_configured() {
    let server = server(Config::default().with_token("s3cret")).await;
    let url = server.url();
    let anonymous = within("anonymous", http().get(format!("{url}{CONFIGMAPS}")).send())
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["reason"], "Unauthorized");
    let wrong = within(
        "wrong",
        http()
            .get(format!("{url}{CONFIGMAPS}"))
            .bearer_auth("nope")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = within(
        "right",
        http()
            .get(format!("{url}{CONFIGMAPS}"))
            .bearer_auth("s3cret")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    let health = within("health", http().get(format!("{url}/healthz")).send())
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(server.kubeconfig_yaml().contains("token: \"s3cret\""));
    // kube-rs works with the token from the server.
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client(&server), "default");
    cms.list(&Default::default()).await.unwrap();
    assert!(server.addr().ip().is_loopback());
    // The kubeconfig it writes works for kube-rs too.
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let from_file: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(kube::Client::try_from(config).unwrap());
    assert_eq!(
        from_file
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_use_kube_apiserver_names() {
    let server = server(Config::default()).await;
    let (code, _) = post_json(&server, CONFIGMAPS, &json!({"metadata": {"name": "m"}})).await;
    assert_eq!(code, 201);
    let (code, _) = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/m"),
        "application/merge-patch+json",
        r#"{"data":{"a":"1"}}"#,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(
        &server,
        "GET",
        &format!("{CONFIGMAPS}/missing"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 404);
    let text = within(
        "metrics",
        http().get(format!("{}/metrics", server.url())).send(),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    for expected in [
        r#"apiserver_request_total{verb="CREATE",group="",version="v1",resource="configmaps",subresource="",code="201"} 1"#,
        r#"apiserver_request_total{verb="PATCH",group="",version="v1",resource="configmaps",subresource="",code="200"} 1"#,
        r#"apiserver_request_total{verb="GET",group="",version="v1",resource="configmaps",subresource="",code="404"} 1"#,
        r#"apiserver_storage_objects{resource="configmaps"} 1"#,
        r#"apiserver_storage_objects{resource="namespaces"} 4"#,
        "apiserver_request_duration_seconds_bucket{",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn faults_over_http() {
    let server = server(Config::default()).await;
    let url = server.url();
    let faults = json!({
        "latency": {"GET": {"distribution": "constant", "ms": 200.0}},
        "errors": [{"verb": "LIST", "resource": "configmaps", "code": 429, "rate": 1.0}]
    });
    let put = within(
        "put faults",
        http()
            .put(format!("{url}/fleetbench/faults"))
            .body(faults.to_string())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let current: Value = within(
        "get faults",
        http().get(format!("{url}/fleetbench/faults")).send(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(current, faults);

    let list = within("list", http().get(format!("{url}{CONFIGMAPS}")).send())
        .await
        .unwrap();
    assert_eq!(list.status().as_u16(), 429);
    assert_eq!(list.headers().get("retry-after").unwrap(), "1");
    let secrets = within(
        "other resource",
        http()
            .get(format!("{url}/api/v1/namespaces/default/secrets"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(secrets.status().as_u16(), 200);
    let started = Instant::now();
    let get = within(
        "slow get",
        http()
            .get(format!("{url}/api/v1/namespaces/default"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(get.status().as_u16(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "latency was injected"
    );

    let bad = within(
        "bad faults",
        http()
            .put(format!("{url}/fleetbench/faults"))
            .body("{\"latency\": 3}")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    server.faults().clear();

    // Cutting watches ends open watch streams.
    let watch = within(
        "watch",
        http()
            .get(format!("{url}{CONFIGMAPS}?watch=1&resourceVersion=0"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(watch.status().as_u16(), 200);
    let mut stream = watch.bytes_stream();
    let cut = within(
        "cut",
        http().post(format!("{url}/fleetbench/watches/cut")).send(),
    )
    .await
    .unwrap();
    assert_eq!(cut.status().as_u16(), 204);
    let end = within("stream ends", async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    let () = end;
    server.shutdown().await;
}

#[tokio::test]
async fn discovery_documents() {
    let server = server(Config::default()).await;
    let (code, api) = send(&server, "GET", "/api", "application/json", "").await;
    assert_eq!((code, api["versions"].clone()), (200, json!(["v1"])));
    let (_, core) = send(&server, "GET", "/api/v1", "application/json", "").await;
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in [
        "namespaces",
        "configmaps",
        "secrets",
        "events",
        "serviceaccounts",
        "services",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let (_, groups) = send(&server, "GET", "/apis", "application/json", "").await;
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for group in [
        "apps",
        "coordination.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
    ] {
        assert!(group_names.contains(&group), "{group} missing");
    }
    let (code, version) = send(&server, "GET", "/version", "application/json", "").await;
    assert_eq!((code, version["major"].as_str()), (200, Some("1")));
    let (code, openapi) = send(&server, "GET", "/openapi/v3", "application/json", "").await;
    assert_eq!(code, 200);
    let core_url = openapi["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, doc) = send(&server, "GET", &core_url, "application/json", "").await;
    assert_eq!(code, 200);
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    // Tables for kubectl.
    let table = within(
        "table",
        http()
            .get(format!("{}/api/v1/namespaces", server.url()))
            .header(
                "Accept",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            )
            .send(),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(table["kind"], "Table", "{table}");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"].as_array().unwrap().len(), 4);
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let partial = within(
        "metadata list",
        http()
            .get(format!("{}/api/v1/namespaces", server.url()))
            .header(
                "Accept",
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
            )
            .send(),
    )
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(partial["kind"], "PartialObjectMetadataList");
    assert_eq!(partial["items"][0]["kind"], "PartialObjectMetadata");
    assert!(partial["items"][0].get("spec").is_none());
    // kube-rs discovery sees the same.
    let discovery = kube::discovery::Discovery::new(client(&server))
        .run()
        .await
        .unwrap();
    assert!(discovery.has_group("coordination.k8s.io"));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_objects_never_break_the_server() {
    let server = server(Config::default()).await;
    let (code, _) = post_json(
        &server,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        &widget_crd(),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = post_json(&server, CONFIGMAPS, &json!({"metadata": {"name": "base"}})).await;
    assert_eq!(code, 201);
    let weird_metadata = [
        json!({"name": "w", "labels": ["a"]}),
        json!({"name": "w", "labels": {"a": 1}}),
        json!({"name": "w", "annotations": "x"}),
        json!({"name": "w", "finalizers": "x"}),
        json!({"name": "w", "finalizers": [1, {}]}),
        json!({"name": "w", "ownerReferences": {"uid": "x"}}),
        json!({"name": "w", "ownerReferences": [{"uid": 5}]}),
        json!({"name": "w", "managedFields": ["junk", 3]}),
        json!({"name": "w", "managedFields": [{"fieldsV1": "x", "manager": 1}]}),
        json!({"name": 5}),
        json!({"name": "w", "namespace": 3}),
        json!({"name": "w", "generateName": ["x"]}),
        json!({"name": "w", "deletionTimestamp": "yesterday", "uid": 7, "resourceVersion": "abc"}),
        json!("metadata as a string"),
    ];
    let targets = [
        (
            CONFIGMAPS.to_string(),
            json!({"apiVersion": "v1", "kind": "ConfigMap"}),
        ),
        (
            "/apis/example.com/v1/namespaces/default/widgets".to_string(),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 1}}),
        ),
        (
            "/api/v1/namespaces".to_string(),
            json!({"apiVersion": "v1", "kind": "Namespace"}),
        ),
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions".to_string(),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "spec": {"names": "x", "versions": "y"}}),
        ),
    ];
    for (path, template) in &targets {
        for metadata in &weird_metadata {
            let mut body = template.clone();
            body["metadata"] = metadata.clone();
            let (code, response) = post_json(&server, path, &body).await;
            assert!(code < 500, "POST {path} {body} -> {code} {response}");
            for (content_type, patch) in [
                (
                    "application/merge-patch+json",
                    json!({"metadata": metadata}),
                ),
                (
                    "application/strategic-merge-patch+json",
                    json!({"metadata": metadata}),
                ),
                (
                    "application/json-patch+json",
                    json!([{"op": "add", "path": "/metadata", "value": metadata}]),
                ),
                (
                    "application/json-patch+json",
                    json!([{"op": "replace", "path": "", "value": 3}]),
                ),
            ] {
                let (code, response) = send(
                    &server,
                    "PATCH",
                    &format!("{CONFIGMAPS}/base"),
                    content_type,
                    patch.to_string(),
                )
                .await;
                assert!(
                    code < 500,
                    "PATCH {content_type} {patch} -> {code} {response}"
                );
            }
            let mut put = json!({"apiVersion": "v1", "kind": "ConfigMap"});
            put["metadata"] = metadata.clone();
            let (code, response) = send(
                &server,
                "PUT",
                &format!("{CONFIGMAPS}/base"),
                "application/json",
                put.to_string(),
            )
            .await;
            assert!(code < 500, "PUT {put} -> {code} {response}");
            let (code, response) = send(
                &server,
                "PATCH",
                &format!("{CONFIGMAPS}/base?fieldManager=t"),
                "application/apply-patch+yaml",
                put.to_string(),
            )
            .await;
            assert!(code < 500, "APPLY {put} -> {code} {response}");
        }
    }
    let (code, base) = send(
        &server,
        "GET",
        &format!("{CONFIGMAPS}/base"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200, "{base}");
    let (code, _) = send(
        &server,
        "DELETE",
        &format!("{CONFIGMAPS}/base"),
        "application/json",
        "{\"propagationPolicy\": 3}",
    )
    .await;
    assert!((400..500).contains(&code));
    server.shutdown().await;
}

#[tokio::test]
async fn generate_name_creates_distinct_names_and_a_bad_prefix_is_refused() {
    let server = server(Config::default()).await;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let (code, created) = post_json(
            &server,
            CONFIGMAPS,
            &json!({"metadata": {"generateName": "job-"}}),
        )
        .await;
        assert_eq!(code, 201, "{created}");
        let name = created["metadata"]["name"].as_str().unwrap().to_string();
        assert!(
            name.starts_with("job-") && name.len() == "job-".len() + 5,
            "{name}"
        );
        names.insert(name);
    }
    assert_eq!(names.len(), 3, "{names:?}");
    let (code, body) = post_json(
        &server,
        CONFIGMAPS,
        &json!({"metadata": {"generateName": "Bad_"}}),
    )
    .await;
    assert_status(code, &body, 422, "Invalid");
    let (code, body) = post_json(&server, CONFIGMAPS, &json!({"metadata": {}})).await;
    assert_status(code, &body, 422, "Invalid");
    assert_eq!(count(&server, CONFIGMAPS).await, 3);
}
