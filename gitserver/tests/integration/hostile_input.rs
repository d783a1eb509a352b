//! Hostile input over real HTTP: option-like and malformed branch names, huge paths,
//! file/directory conflicts, unsigned identities, unbounded fault values, hostile hook
//! bodies, secrets on disk, private names in `/metrics`, and clients that send half a request
//! or hold connections. Each is refused with a 4xx (never a 500) or cut off within a bound,
//! and nothing that was refused changes a repository.

use crate::common;

use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use common::{Fixture, STEP, bounded, fsck, git_in, ok};
use gitserver::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CreateHookOption, CreateRepoOption, Identity,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the server answered to a raw ChangeFiles body.
async fn change_files_status(fx: &Fixture, repo: &str, body: &serde_json::Value) -> u16 {
    let response = bounded(
        common::http()
            .post(format!(
                "{}/api/v1/repos/alice/{repo}/contents",
                fx.server.url()
            ))
            .header("Authorization", format!("token {}", fx.server.token()))
            .json(body)
            .send(),
    )
    .await
    .unwrap();
    response.status().as_u16()
}

fn create(path: &str) -> serde_json::Value {
    json!({"operation": "create", "path": path, "content": "eA=="})
}

/// Every ref of a repository, as `git ls-remote` shows them.
async fn refs(fx: &Fixture, repo: &str) -> String {
    ok(fx.git(&["ls-remote", &fx.authed_url("alice", repo)]).await)
}

#[tokio::test]
async fn option_like_and_malformed_branch_names_are_422() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let before = refs(&fx, "r").await;
    let too_long = "b".repeat(101);
    for bad in [
        "--orphan",
        "-b",
        "HEAD",
        "a..b",
        "x.lock",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a\\b",
        "a@{0}",
        "a/",
        "/a",
        "a//b",
        ".hidden",
        "a/.b",
        "a.",
        "tab\there",
        "nul\0",
        too_long.as_str(),
    ] {
        let body = json!({"new_branch": bad, "files": [create("f.yaml")]});
        assert_eq!(
            change_files_status(&fx, "r", &body).await,
            422,
            "new_branch {bad:?}"
        );
        let body = json!({"branch": bad, "files": [create("g.yaml")]});
        assert_eq!(
            change_files_status(&fx, "r", &body).await,
            422,
            "branch {bad:?}"
        );
    }
    assert_eq!(
        refs(&fx, "r").await,
        before,
        "no refused request made a ref"
    );

    // Repository creation checks its default branch the same way.
    let forge = fx.forge();
    for bad in ["--orphan", "a..b", "x.lock"] {
        let option = CreateRepoOption {
            default_branch: bad.to_owned(),
            ..CreateRepoOption::named("fresh")
        };
        let err = bounded(forge.create_repo(&option)).await.unwrap_err();
        assert_eq!(err.status(), Some(422), "default_branch {bad:?}: {err}");
    }
    // A valid new branch still works.
    let body = json!({"new_branch": "feature/ok-1", "files": [create("f.yaml")]});
    assert_eq!(change_files_status(&fx, "r", &body).await, 201);
    fsck(fx.data.path(), "alice", "r").await;
}

#[tokio::test]
async fn path_lengths_are_bounded() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let before = refs(&fx, "r").await;
    let component_5000 = "c".repeat(5000);
    let component_256 = "c".repeat(256);
    let deep = vec!["d".repeat(200); 21].join("/");
    for bad in [component_5000.as_str(), &component_256, &deep] {
        let body = json!({"files": [create(bad)]});
        assert_eq!(
            change_files_status(&fx, "r", &body).await,
            422,
            "{}",
            bad.len()
        );
    }
    assert_eq!(refs(&fx, "r").await, before);
    let at_limit = format!("dir/{}", "c".repeat(255));
    let body = json!({"files": [create(&at_limit)]});
    assert_eq!(change_files_status(&fx, "r", &body).await, 201);
    fsck(fx.data.path(), "alice", "r").await;
}

#[tokio::test]
async fn file_and_directory_conflicts_are_409_and_overlaps_422() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let body = json!({"files": [create("p1/cm.yaml")]});
    assert_eq!(change_files_status(&fx, "r", &body).await, 201);
    let before = refs(&fx, "r").await;

    for (what, file) in [
        ("a file under a file", create("p1/cm.yaml/x")),
        ("deep under a file", create("p1/cm.yaml/x/y/z")),
        ("a file over a directory", create("p1")),
        (
            "an update of a directory",
            json!({"operation": "update", "path": "p1", "content": "eA=="}),
        ),
        (
            "a delete of a directory",
            json!({"operation": "delete", "path": "p1"}),
        ),
        (
            "a move under a file",
            json!({"operation": "update", "path": "p1/cm.yaml/y", "from_path": "README.md", "content": "eA=="}),
        ),
    ] {
        let body = json!({"files": [file]});
        assert_eq!(change_files_status(&fx, "r", &body).await, 409, "{what}");
    }
    for (what, files) in [
        ("the same path twice", json!([create("n/a"), create("n/a")])),
        (
            "a file and one inside it",
            json!([create("n/a"), create("n/a/b")]),
        ),
        ("inside first", json!([create("n/a/b"), create("n/a")])),
    ] {
        let body = json!({ "files": files });
        assert_eq!(change_files_status(&fx, "r", &body).await, 422, "{what}");
    }
    assert_eq!(
        refs(&fx, "r").await,
        before,
        "nothing refused was committed"
    );
    // Siblings that only share a prefix are no conflict.
    let body = json!({"files": [create("p1/cm.yaml2"), create("p1/cm")]});
    assert_eq!(change_files_status(&fx, "r", &body).await, 201);
    fsck(fx.data.path(), "alice", "r").await;
}

#[tokio::test]
async fn identities_and_messages_git_cannot_write_are_422() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let forge = fx.forge();
    for (name, email) in [("<evil>", "e@example.com"), ("ok", "a>b@example.com")] {
        let option = ChangeFilesOptions {
            files: vec![ChangeFileOperation::create("f", "x")],
            author: Identity {
                name: name.into(),
                email: email.into(),
            },
            ..ChangeFilesOptions::default()
        };
        let err = bounded(forge.change_files("alice", "r", &option))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(422), "{name} {email}: {err}");
    }
    let option = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("f", "x")],
        message: "a\0b".into(),
        ..ChangeFilesOptions::default()
    };
    let err = bounded(forge.change_files("alice", "r", &option))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422), "{err}");
}

#[tokio::test]
async fn fault_values_are_bounded() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let client = common::http();
    let url = format!("{}/api/fleetbench/faults/alice/r", fx.server.url());
    let token = format!("token {}", fx.server.token());
    for delay in [u64::MAX, 3_600_001] {
        let response = bounded(
            client
                .put(&url)
                .header("Authorization", &token)
                .json(&json!({"mode": "delay", "delay_ms": delay}))
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 422, "delay_ms {delay}");
    }
    assert!(fx.server.faults().list().is_empty(), "nothing was set");
    let response = bounded(
        client
            .put(&url)
            .header("Authorization", &token)
            .json(&json!({"mode": "delay", "delay_ms": 3_600_000}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "an hour is the limit, inclusive");
    assert!(fx.server.faults().clear_by_name("alice/r"));
}

#[tokio::test]
async fn hostile_hook_bodies_are_422() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let forge = fx.forge();
    let base = CreateHookOption::push_json("http://127.0.0.1:9/hook", "s");
    let filter_bomb = CreateHookOption {
        branch_filter: "{a,b}".repeat(20),
        ..base.clone()
    };
    let long_filter = CreateHookOption {
        branch_filter: "x".repeat(5000),
        ..base.clone()
    };
    let split_header = CreateHookOption {
        authorization_header: "Bearer x\r\nX-Injected: 1".into(),
        ..base.clone()
    };
    for (what, option) in [
        ("brace bomb", filter_bomb),
        ("long filter", long_filter),
        ("header split", split_header),
    ] {
        let err = bounded(forge.create_hook("alice", "r", &option))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(422), "{what}: {err}");
    }
    assert!(
        bounded(forge.list_hooks("alice", "r"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn secret_files_are_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");
    let server = bounded(gitserver::GitServer::start(common::test_config(&data)))
        .await
        .unwrap();
    let forge = server.forge_client();
    bounded(forge.create_repo(&CreateRepoOption::named("r")))
        .await
        .unwrap();
    let hook = CreateHookOption::push_json("http://127.0.0.1:9/hook", "hook-secret");
    bounded(forge.create_hook("alice", "r", &hook))
        .await
        .unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let server_meta = data.join("fleetbench-server.json");
    let repo_meta = data.join("alice/r.git/fleetbench.json");
    assert!(
        std::fs::read_to_string(&server_meta)
            .unwrap()
            .contains(server.token())
    );
    assert!(
        std::fs::read_to_string(&repo_meta)
            .unwrap()
            .contains("hook-secret")
    );
    assert_eq!(mode(&server_meta), 0o600, "the token file");
    assert_eq!(mode(&repo_meta), 0o600, "the hook secrets");
    assert_eq!(mode(&data), 0o700, "the data directory it created");
    assert_eq!(mode(&data.join("alice")), 0o700);
    server.shutdown().await;
}

#[tokio::test]
async fn anonymous_metrics_hide_private_repository_names() {
    let fx = Fixture::start().await;
    fx.create_repo("secret-plans", true, true).await;
    fx.create_repo("open", false, true).await;
    ok(fx
        .git(&["ls-remote", &fx.authed_url("alice", "secret-plans")])
        .await);
    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "open")])
        .await);
    // Made-up names, as a scanner would send: no series of their own in either view.
    for i in 0..3 {
        let url = fx.authed_url("alice", &format!("made-up-{i}"));
        common::failed(fx.git(&["ls-remote", &url]).await);
    }
    let log = fx.server.request_log();
    common::wait_for(|| (log.len() >= 6).then_some(())).await;

    let client = common::http();
    let url = format!("{}/metrics", fx.server.url());
    let anonymous = bounded(bounded(client.get(&url).send()).await.unwrap().text())
        .await
        .unwrap();
    assert!(!anonymous.contains("secret-plans"), "{anonymous}");
    assert!(anonymous.contains(r#"repo="alice/open""#), "{anonymous}");
    assert!(anonymous.contains(r#"repo="(hidden)""#), "{anonymous}");

    let with_token = client
        .get(&url)
        .header("Authorization", format!("token {}", fx.server.token()));
    let with_password = client
        .get(&url)
        .basic_auth(fx.server.user(), Some(fx.server.password()));
    for request in [with_token, with_password] {
        let text = bounded(bounded(request.send()).await.unwrap().text())
            .await
            .unwrap();
        assert!(text.contains(r#"repo="alice/secret-plans""#), "{text}");
        assert!(!text.contains("made-up"), "{text}");
        assert!(text.contains(r#"repo="(unknown)""#), "{text}");
    }
    assert!(!anonymous.contains("made-up"), "{anonymous}");
    let wrong = bounded(
        client
            .get(&url)
            .header("Authorization", "token wrong")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
}

/// Connects, sends `bytes`, and reads until the server closes; returns what it answered and
/// how long it took.
async fn send_and_wait_for_close(addr: std::net::SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = bounded(tokio::net::TcpStream::connect(addr)).await.unwrap();
    bounded(stream.write_all(bytes)).await.unwrap();
    let mut answer = Vec::new();
    // A reset also ends the connection; either way the server let go.
    let _ = bounded(stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn half_sent_headers_and_silent_connections_are_cut_off() {
    let fx = Fixture::start_with(|config| {
        config.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = fx.server.addr();
    for (what, bytes) in [
        (
            "half a header",
            &b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\nX-Slow"[..],
        ),
        ("nothing at all", &b""[..]),
    ] {
        let (_, took) = send_and_wait_for_close(addr, bytes).await;
        // Generous: the bound is 1 s; without it the connection stays open for good.
        assert!(took < Duration::from_secs(20), "{what}: {took:?}");
    }
    // Whole requests are still served.
    let version = bounded(fx.forge().version()).await.unwrap();
    assert!(version.version.starts_with("1.22.3"));
}

#[tokio::test]
async fn stalled_request_bodies_are_cut_off() {
    let fx = Fixture::start_with(|config| {
        config.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    fx.create_repo("pub", false, true).await;
    let addr = fx.server.addr();
    let token = fx.server.token().to_owned();
    for (path, content_type, must_fail) in [
        ("/api/v1/user/repos", "application/json", true),
        // git http-backend may have sent its head already; what matters is the close.
        (
            "/alice/pub.git/git-upload-pack",
            "application/x-git-upload-pack-request",
            false,
        ),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: token {token}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 1000\r\n\r\n{{\"name\":"
        );
        let (answer, took) = send_and_wait_for_close(addr, head.as_bytes()).await;
        assert!(took < Duration::from_secs(20), "{path}: {took:?}");
        if must_fail {
            assert!(!answer.starts_with("HTTP/1.1 2"), "{path}: {answer}");
        }
    }
    let repos = bounded(fx.forge().list_my_repos()).await.unwrap();
    assert_eq!(repos.len(), 1, "the half-sent creation made nothing");
}

#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let fx = Fixture::start_with(|config| {
        config.max_connections = 2;
        config.header_read_timeout = STEP;
    })
    .await;
    let addr = fx.server.addr();
    let idle_a = bounded(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let idle_b = bounded(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let url = format!("{}/api/v1/version", fx.server.url());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let refused = impatient.get(&url).send().await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_timeout),
        "a third connection is not served while two are held: {refused:?}"
    );
    drop(idle_a);
    let served = bounded(common::http().get(&url).send()).await.unwrap();
    assert_eq!(served.status(), 200, "served once a slot is free");
    drop(idle_b);
}

#[tokio::test]
async fn a_large_push_streams_past_short_idle_timeouts() {
    let fx = Fixture::start_with(|config| {
        config.header_read_timeout = Duration::from_secs(1);
        config.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    fx.create_repo("big", false, false).await;
    let local = fx.path("local");
    std::fs::create_dir_all(&local).unwrap();
    ok(git_in(&local, &["init", "-q", "-b", "main"]).await);
    // Incompressible, so the pack is as large as the data: many reads, each of which must
    // arrive within the 1 s idle bound, while the whole push may take longer.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..12 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::write(local.join("blob.bin"), &noise).unwrap();
    ok(git_in(&local, &["add", "-A"]).await);
    ok(git_in(&local, &["commit", "-q", "-m", "big"]).await);
    let url = fx.authed_url("alice", "big");
    ok(git_in(&local, &["push", "-q", &url, "main"]).await);
    ok(fx.git(&["clone", "-q", &url, "copy"]).await);
    assert_eq!(std::fs::read(fx.path("copy/blob.bin")).unwrap(), noise);
}

#[tokio::test]
async fn huge_page_numbers_are_an_empty_page() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    let client = common::http();
    for path in [
        "/api/v1/user/repos",
        "/api/v1/users/alice/repos",
        "/api/v1/repos/search",
    ] {
        let url = format!("{}{path}?page={}&limit=50", fx.server.url(), u64::MAX);
        let response = bounded(
            client
                .get(&url)
                .header("Authorization", format!("token {}", fx.server.token()))
                .send(),
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: the server dropped the request: {e}"));
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = bounded(response.json()).await.unwrap();
        let items = body.get("data").unwrap_or(&body);
        assert_eq!(items.as_array().map(Vec::len), Some(0), "{path}: {body}");
    }
}
