//! Plain-Gitea mode: only what a real Gitea 1.22 offers. Git over smart HTTP, the REST
//! subset and webhooks work; every fleetbench extension is a 404 and the forge client's
//! detection finds no extensions.

use crate::common;

use common::{Fixture, Receiver, bounded, commit_files, git_in, ok};
use gitserver::forge::types::{ChangeFileOperation, ChangeFilesOptions, CreateHookOption};
use gitserver::forge::{Auth, ForgeError};

/// The header a fleetbench gitserver with extensions puts on every answer.
const MARK: &str = "x-fleetbench-gitserver";

/// Every extension endpoint, as `(method, path)`.
const EXTENSION_ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/fleetbench/info"),
    ("GET", "/api/fleetbench/requests"),
    ("GET", "/api/fleetbench/requests?repo=alice/app"),
    ("GET", "/api/fleetbench/deliveries"),
    ("GET", "/api/fleetbench/faults"),
    ("DELETE", "/api/fleetbench/faults"),
    ("PUT", "/api/fleetbench/faults/alice/app"),
    ("DELETE", "/api/fleetbench/faults/alice/app"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
];

#[tokio::test]
async fn plain_gitea_serves_git_rest_and_webhooks_and_no_extension() {
    let fx = Fixture::start_with(|config| *config = config.clone().plain_gitea(true)).await;
    assert!(!fx.server.extensions_enabled());
    let forge = fx.forge();
    let client = common::http();
    let url = fx.server.url().to_owned();
    let token = format!("token {}", fx.server.token());

    // Version discovery looks like Gitea's, without the fleetbench build suffix.
    let version = bounded(forge.version()).await.unwrap();
    assert_eq!(version.version, gitserver::GITEA_API_VERSION);
    // And so does the extension detection.
    assert!(
        bounded(forge.extensions().detect())
            .await
            .unwrap()
            .is_none()
    );
    let info = bounded(forge.extensions().info()).await.unwrap_err();
    assert!(matches!(info, ForgeError::NotFleetbench { .. }), "{info}");

    // REST: repository, webhook, ChangeFiles commit.
    fx.create_repo("app", false, true).await;
    let receiver = Receiver::start(0).await;
    let hook = CreateHookOption::push_json(receiver.url(), "plain-secret");
    bounded(forge.create_hook("alice", "app", &hook))
        .await
        .unwrap();
    let change = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("p/cm.yaml", "v: 1\n")],
        ..ChangeFilesOptions::default()
    };
    let committed = bounded(forge.change_files("alice", "app", &change))
        .await
        .unwrap();
    let commit_id = committed.commit.unwrap().sha;
    let delivered = receiver.wait_for(1).await;
    let signature = delivered[0].headers["x-gitea-signature"].to_str().unwrap();
    assert!(gitserver::webhook::verify(
        b"plain-secret",
        &delivered[0].body,
        signature
    ));

    // Git: clone what the API committed, push a commit back, and see it over REST.
    let authed = fx.authed_url("alice", "app");
    ok(fx.git(&["clone", "-q", &authed, "clone"]).await);
    let clone = fx.path("clone");
    assert_eq!(
        ok(git_in(&clone, &["rev-parse", "HEAD"]).await).trim(),
        commit_id
    );
    let pushed = commit_files(&clone, &[("p/cm.yaml", "v: 2\n")], "second").await;
    ok(git_in(&clone, &["push", "-q", "origin", "main"]).await);
    let head = bounded(forge.branch_head("alice", "app", "main"))
        .await
        .unwrap();
    assert_eq!(head, pushed);
    receiver.wait_for(2).await;

    // Gitea's health check is there; every extension is an unknown path, with or
    // without credentials, and no answer carries the fleetbench mark.
    let health = bounded(client.get(format!("{url}/api/healthz")).send())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for (method, path) in EXTENSION_ENDPOINTS {
        for auth in [None, Some(token.as_str())] {
            let mut request = client.request(method.parse().unwrap(), format!("{url}{path}"));
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            if *method == "PUT" {
                request = request.json(&serde_json::json!({"mode": "refuse"}));
            }
            let response = bounded(request.send()).await.unwrap();
            assert_eq!(response.status(), 404, "{method} {path} auth={auth:?}");
            assert!(!response.headers().contains_key(MARK), "{method} {path}");
        }
    }
    for path in [
        "/api/v1/version".to_owned(),
        "/api/v1/repos/alice/app".to_owned(),
        "/alice/app.git/info/refs?service=git-upload-pack".to_owned(),
        "/no/such/path".to_owned(),
    ] {
        let response = bounded(client.get(format!("{url}{path}")).send())
            .await
            .unwrap();
        assert!(!response.headers().contains_key(MARK), "{path}");
    }
    assert!(
        fx.server.faults().list().is_empty(),
        "the PUT above set no fault"
    );
}

#[tokio::test]
async fn extension_detection_finds_the_extensions_by_default() {
    let fx = Fixture::start().await;
    assert!(fx.server.extensions_enabled());
    let info = bounded(fx.forge().extensions().detect())
        .await
        .unwrap()
        .expect("a default server has the extensions");
    assert_eq!(info.server, "fleetbench-gitserver");
    let version = bounded(fx.forge().version()).await.unwrap();
    assert!(version.version.contains("+fleetbench."), "{version:?}");
    // Detection answers without credentials too; it is not an authorization check.
    let anonymous = fx.forge().with_auth(Auth::None).extensions();
    assert!(bounded(anonymous.detect()).await.unwrap().is_some());
}
