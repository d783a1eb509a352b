//! Hostile input over real HTTP: fault configurations out of range, `dryRun` values other
//! than `All`, non-string resourceVersions, namespace mismatches, half-sent and oversized
//! requests, and secrets on disk. Each case asserts what a client sees and that nothing
//! was stored or broken by it.

use crate::common;

use std::time::{Duration, Instant};

use apiserver::{Config, RunningApiServer};
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn get(server: &RunningApiServer, path: &str) -> (u16, Value) {
    send(server, "GET", path, "application/json", "").await
}

async fn create_configmap(server: &RunningApiServer, name: &str) -> Value {
    let (code, body) = send(
        server,
        "POST",
        CONFIGMAPS,
        "application/json",
        json!({"metadata": {"name": name}, "data": {"k": "v0"}}).to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    body
}

#[tokio::test]
async fn out_of_range_faults_are_refused_and_the_server_keeps_serving() {
    let server = server(Config::default()).await;
    let cases = [
        (
            json!({"latency": {"GET": {"distribution": "constant", "ms": 1e300}}}),
            "latency[GET].ms",
        ),
        (
            json!({"latency": {"*": {"distribution": "exponential", "meanMs": -5}}}),
            "latency[*].meanMs",
        ),
        (
            json!({"latency": {"LIST": {"distribution": "uniform", "minMs": 10, "maxMs": 1}}}),
            "latency[LIST].minMs",
        ),
        (
            json!({"latency": {"LIST": {"distribution": "logNormal", "medianMs": 1, "sigma": 1e9}}}),
            "latency[LIST].sigma",
        ),
        (
            json!({"latency": {"get": {"distribution": "constant", "ms": 1}}}),
            "latency[get]",
        ),
        (
            json!({"errors": [{"code": 200, "rate": 0.5}]}),
            "errors[0].code",
        ),
        (
            json!({"errors": [{"code": 500, "rate": 0.5}, {"code": 429, "rate": 7}]}),
            "errors[1].rate",
        ),
    ];
    for (config, field) in cases {
        let (code, body) = send(
            &server,
            "PUT",
            "/fleetbench/faults",
            "application/json",
            config.to_string(),
        )
        .await;
        assert_status(code, &body, 422, "Invalid");
        assert_eq!(body["details"]["causes"][0]["field"], field, "{body}");
        // Nothing was put in force, and reads still answer.
        assert_eq!(server.faults().config(), apiserver::FaultConfig::default());
        let (code, namespace) = get(&server, "/api/v1/namespaces/default").await;
        assert_eq!(code, 200, "{namespace}");
    }
    // A valid configuration is still accepted.
    let (code, body) = send(
        &server,
        "PUT",
        "/fleetbench/faults",
        "application/json",
        json!({"latency": {"GET": {"distribution": "constant", "ms": 1}}}).to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // And a server cannot be started with an invalid one.
    let mut bad = apiserver::FaultConfig::default();
    bad.errors.push(apiserver::ErrorRule {
        verb: None,
        resource: None,
        code: 500,
        rate: f64::NAN,
    });
    let refused = apiserver::ApiServer::start(Config::default().with_faults(bad)).await;
    assert!(matches!(refused, Err(apiserver::Error::InvalidFaults(_))));
    server.shutdown().await;
}

#[tokio::test]
async fn dry_run_accepts_only_all() {
    let server = server(Config::default()).await;
    let existing = create_configmap(&server, "existing").await;
    for value in ["all", "true", "1", "garbage", ""] {
        let path = format!("{CONFIGMAPS}?dryRun={value}");
        let (code, body) = send(
            &server,
            "POST",
            &path,
            "application/json",
            json!({"metadata": {"name": "dry"}}).to_string(),
        )
        .await;
        assert_status(code, &body, 400, "BadRequest");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("Invalid dryRun value {value:?}")),
            "{body}"
        );
        let mut changed = existing.clone();
        changed["data"]["k"] = json!("changed");
        let (code, body) = send(
            &server,
            "PUT",
            &format!("{CONFIGMAPS}/existing?dryRun={value}"),
            "application/json",
            changed.to_string(),
        )
        .await;
        assert_status(code, &body, 400, "BadRequest");
        let (code, body) = send(
            &server,
            "DELETE",
            &format!("{CONFIGMAPS}/existing"),
            "application/json",
            json!({"dryRun": [value]}).to_string(),
        )
        .await;
        assert_status(code, &body, 400, "BadRequest");
    }
    let (code, _) = get(&server, &format!("{CONFIGMAPS}/dry")).await;
    assert_eq!(code, 404, "no dry-run create was stored");
    let (code, stored) = get(&server, &format!("{CONFIGMAPS}/existing")).await;
    assert_eq!(code, 200);
    assert_eq!(stored["data"]["k"], "v0");
    // `All` is a dry run: answered, not stored.
    let (code, body) = send(
        &server,
        "POST",
        &format!("{CONFIGMAPS}?dryRun=All"),
        "application/json",
        json!({"metadata": {"name": "dry"}}).to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, _) = get(&server, &format!("{CONFIGMAPS}/dry")).await;
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn non_string_resource_versions_are_refused_not_taken_as_unconditional() {
    let server = server(Config::default()).await;
    let created = create_configmap(&server, "rv").await;
    let path = format!("{CONFIGMAPS}/rv");
    for rv in [
        json!(1),
        json!(123_456),
        json!({"a": 1}),
        json!(true),
        json!([]),
    ] {
        let mut put = created.clone();
        put["metadata"]["resourceVersion"] = rv.clone();
        put["data"]["k"] = json!("overwritten");
        let (code, body) = send(&server, "PUT", &path, "application/json", put.to_string()).await;
        assert_status(code, &body, 400, "BadRequest");
        for (content_type, patch) in [
            (
                "application/merge-patch+json",
                json!({"metadata": {"resourceVersion": rv}, "data": {"k": "overwritten"}}),
            ),
            (
                "application/strategic-merge-patch+json",
                json!({"metadata": {"resourceVersion": rv}, "data": {"k": "overwritten"}}),
            ),
            (
                "application/json-patch+json",
                json!([
                    {"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
                    {"op": "replace", "path": "/data/k", "value": "overwritten"}
                ]),
            ),
        ] {
            let (code, body) = send(&server, "PATCH", &path, content_type, patch.to_string()).await;
            assert_status(code, &body, 400, "BadRequest");
        }
    }
    // Nor on create, where kube-apiserver fails to decode it just the same.
    let (code, body) = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/json",
        json!({"metadata": {"name": "rv-create", "resourceVersion": 5}}).to_string(),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv", "resourceVersion": 5}, "data": {"k": "overwritten"}});
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{path}?fieldManager=hostile&force=true"),
        "application/apply-patch+yaml",
        apply.to_string(),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (_, stored) = get(&server, &path).await;
    assert_eq!(stored["data"]["k"], "v0", "nothing was overwritten");
    assert_eq!(
        stored["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // A stale string resourceVersion still conflicts, and null means unconditional.
    let mut stale = stored.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = send(&server, "PUT", &path, "application/json", stale.to_string()).await;
    assert_status(code, &body, 409, "Conflict");
    let mut unconditional = stored.clone();
    unconditional["metadata"]["resourceVersion"] = Value::Null;
    unconditional["data"]["k"] = json!("v1");
    let (code, body) = send(
        &server,
        "PUT",
        &path,
        "application/json",
        unconditional.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["k"], "v1");
    server.shutdown().await;
}

#[tokio::test]
async fn namespace_mismatch_on_update_and_patch_is_a_bad_request() {
    let server = server(Config::default()).await;
    let created = create_configmap(&server, "ns").await;
    let path = format!("{CONFIGMAPS}/ns");
    let message =
        "the namespace of the provided object does not match the namespace sent on the request";
    let mut put = created.clone();
    put["metadata"]["namespace"] = json!("kube-system");
    put["data"]["k"] = json!("moved");
    let (code, body) = send(&server, "PUT", &path, "application/json", put.to_string()).await;
    assert_status(code, &body, 400, "BadRequest");
    assert_eq!(body["message"], message);
    for (content_type, patch) in [
        (
            "application/merge-patch+json",
            json!({"metadata": {"namespace": "kube-system"}, "data": {"k": "moved"}}),
        ),
        (
            "application/strategic-merge-patch+json",
            json!({"metadata": {"namespace": "kube-system"}, "data": {"k": "moved"}}),
        ),
        (
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/metadata/namespace", "value": "kube-system"}]),
        ),
    ] {
        let (code, body) = send(&server, "PATCH", &path, content_type, patch.to_string()).await;
        assert_status(code, &body, 400, "BadRequest");
        assert_eq!(body["message"], message);
    }
    let apply = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ns", "namespace": "kube-system"}, "data": {"k": "moved"}});
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{path}?fieldManager=hostile&force=true"),
        "application/apply-patch+yaml",
        apply.to_string(),
    )
    .await;
    assert_status(code, &body, 400, "BadRequest");
    let (_, stored) = get(&server, &path).await;
    assert_eq!(stored["data"]["k"], "v0");
    // The matching namespace, or none, is still fine.
    let mut same = stored.clone();
    same["data"]["k"] = json!("v1");
    let (code, body) = send(&server, "PUT", &path, "application/json", same.to_string()).await;
    assert_eq!(code, 200, "{body}");
    server.shutdown().await;
}

/// Reads until the server closes the connection; the error, if any, also counts as closed.
async fn closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn half_sent_requests_are_closed_after_the_header_timeout_but_watches_are_not() {
    let timeout = Duration::from_millis(500);
    let server = server(Config::default().with_header_read_timeout(timeout)).await;
    let started = Instant::now();
    let mut half_sent = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(b"GET /api/v1/names").await.unwrap();
        half_sent.push(stream);
    }
    // Silent connections and a stalled HTTP/2 preface are held no longer.
    for _ in 0..5 {
        half_sent.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    let mut preface = TcpStream::connect(server.addr()).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    half_sent.push(preface);
    // A watch opened now stays open past the timeout.
    let watch = within(
        "watch",
        http()
            .get(format!("{}{CONFIGMAPS}?watch=1", server.url()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(watch.status().as_u16(), 200);
    let mut events = watch.bytes_stream();
    for stream in &mut half_sent {
        within("half-sent request closed", closed(stream)).await;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout * 5,
        "closed after {elapsed:?}, timeout {timeout:?}"
    );
    tokio::time::sleep(timeout * 2).await;
    create_configmap(&server, "after-timeout").await;
    let chunk = within("watch event", events.next())
        .await
        .expect("watch still open")
        .expect("watch still readable");
    let event: Value = serde_json::from_slice(&chunk).unwrap();
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "after-timeout");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let server = server(
        Config::default()
            .with_max_connections(2)
            .with_header_read_timeout(Duration::from_secs(60)),
    )
    .await;
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        holders.push(stream);
    }
    let request = format!(
        "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    let mut third = TcpStream::connect(server.addr()).await.unwrap();
    third.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buffer)).await;
    assert!(early.is_err(), "a third connection was served: {early:?}");
    drop(holders.pop());
    let mut response = Vec::new();
    within("third served", third.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // A connection stuck in its headers would hold shutdown for its grace period.
    drop(holders);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_gets_a_413_not_a_broken_pipe() {
    let server = server(Config::default()).await;
    let huge = vec![b'x'; 10 * 1000 * 1000];
    let response = within(
        "oversized create",
        http()
            .post(format!("{}{CONFIGMAPS}", server.url()))
            .header("Content-Type", "application/json")
            .body(huge)
            .send(),
    )
    .await
    .expect("the client receives an answer, not a connection error");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.unwrap();
    assert_status(413, &body, 413, "RequestEntityTooLarge");
    // The server is fine afterwards.
    create_configmap(&server, "after-413").await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_writes_a_whole_oversized_body_before_reading_gets_the_413() {
    // Clients that send the whole request before reading the answer (curl, Python's
    // requests) used to fail with a broken pipe: the server closed without reading.
    let server = server(Config::default()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let body = vec![b'x'; 10 * 1000 * 1000];
    let head = format!(
        "POST {CONFIGMAPS} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len()
    );
    within("request written", async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await
    })
    .await
    .expect("the whole body is accepted before the answer");
    let mut response = Vec::new();
    within("answer read", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("RequestEntityTooLarge"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_body_announced_with_expect_continue_is_refused_before_it_is_sent() {
    let server = server(Config::default()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST {CONFIGMAPS} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
        server.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within("answer read", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 413"),
        "no 100 Continue first: {text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_gets_a_408() {
    let server = server(Config::default().with_body_read_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let head = format!(
        "POST {CONFIGMAPS} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"meta",
        server.addr()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within("timed-out body answered", stream.read_to_end(&mut response))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    server.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_kubeconfig_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let server = server(Config::default().with_token("secret-token")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    // Also over an existing world-readable file.
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    server.write_kubeconfig(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("secret-token")
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    server.shutdown().await;
}

#[tokio::test]
async fn fault_endpoints_require_the_token() {
    let server = server(Config::default().with_token("secret-token")).await;
    let url = server.url();
    let faults = json!({"errors": [{"code": 500, "rate": 1.0}]}).to_string();
    let anonymous = within(
        "anonymous put",
        http()
            .put(format!("{url}/fleetbench/faults"))
            .body(faults.clone())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let cut = within(
        "anonymous cut",
        http().post(format!("{url}/fleetbench/watches/cut")).send(),
    )
    .await
    .unwrap();
    assert_eq!(cut.status().as_u16(), 401);
    assert!(server.faults().config().errors.is_empty());
    let (code, _) = send(
        &server,
        "PUT",
        "/fleetbench/faults",
        "application/json",
        faults,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(server.faults().config().errors.len(), 1);
    server.shutdown().await;
}
