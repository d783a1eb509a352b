//! Fixtures shared by the integration tests: a started server, clients for it, and a
//! small CRD.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use apiserver::{ApiServer, Config, RunningApiServer};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Bound on every network wait in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Starts a server with `config`.
pub async fn server(config: Config) -> RunningApiServer {
    // kube brings rustls with ring; a workspace build also links aws-lc-rs (the
    // harness's testcontainers), and with both rustls cannot choose on its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ApiServer::start(config).await.expect("server starts")
}

/// A kube client for a server.
pub fn client(server: &RunningApiServer) -> kube::Client {
    let mut config = kube::Config::new(server.url().parse().expect("server url is a URI"));
    config.default_namespace = "default".into();
    if let Some(token) = server.token() {
        config.auth_info.token = Some(token.to_string().into());
    }
    kube::Client::try_from(config).expect("client builds")
}

/// An HTTP client for raw requests.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("reqwest builds")
}

/// Awaits `future`, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Polls `check` until it returns `Some`, failing after [`TIMEOUT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `widgets.example.com`: namespaced, status subresource, a small structural schema.
pub fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0},
                                "color": {"type": "string", "enum": ["red", "green", "blue"]},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {"ready": {"type": "boolean"}, "observedGeneration": {"type": "integer"}}
                        }
                    }
                }}
            }]
        }
    })
}

/// Installs the widget CRD and waits until it is established.
pub async fn install_widgets(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(widget_crd()).expect("CRD fixture parses");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("CRD is accepted");
    let established = kube::runtime::wait::await_condition(
        crds,
        "widgets.example.com",
        kube::runtime::wait::conditions::is_crd_established(),
    );
    within("CRD established", established)
        .await
        .expect("condition wait works");
}

/// The API resource of widgets, for dynamic clients.
pub fn widget_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// A widget object.
pub fn widget(name: &str, size: i64) -> kube::api::DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size}
    }))
    .expect("widget fixture parses")
}

/// Sends a request with a body of `content_type` (and the server's token, if it has one);
/// returns the status code and the JSON answer (`Null` when the answer is not JSON).
pub async fn send(
    server: &RunningApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let mut request = http()
        .request(method.parse().unwrap(), format!("{}{path}", server.url()))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(token) = server.token() {
        request = request.bearer_auth(token);
    }
    let response = within("request", request.send()).await.unwrap();
    let code = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (code, body)
}

/// Asserts a Kubernetes `Status` failure with this code and reason.
pub fn assert_status(code: u16, body: &Value, expected_code: u16, reason: &str) {
    assert_eq!(code, expected_code, "{body}");
    assert_eq!(body["kind"], "Status", "{body}");
    assert_eq!(body["status"], "Failure", "{body}");
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["code"], expected_code, "{body}");
}
