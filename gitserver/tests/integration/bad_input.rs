//! Bad input: unknown repositories, bad credentials, path traversal, pushes to nowhere.
//! Each is refused with Gitea's status code, and nothing on disk changes.

use crate::common;

use std::path::Path;

use base64::Engine as _;
use common::{Fixture, bounded, failed, fsck, git_in, ok};
use gitserver::forge::types::{ChangeFileOperation, ChangeFilesOptions, CreateRepoOption};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sends `method path` exactly as written (no client-side normalisation of `..` or
/// percent-escapes, unlike a URL library); returns the status code.
async fn raw_status(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
) -> u16 {
    let mut stream = bounded(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    bounded(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    bounded(stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Every file under `dir`, relative, sorted (the data directory's whole state).
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn path_traversal_is_refused_and_changes_nothing() {
    let fx = Fixture::start().await;
    fx.create_repo("app", true, true).await;
    let forge = fx.forge();
    let token = format!("token {}", fx.server.token());
    // A file beside the data directory that traversal would reach.
    let outside = fx.data.path().parent().unwrap().join(format!(
        "{}-outside",
        fx.data.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(outside.join("victim.git")).unwrap();
    let before = tree(fx.data.path());

    let addr = fx.server.addr();
    let outside_name = outside.file_name().unwrap().to_string_lossy().into_owned();
    let git_paths = [
        "/../../etc/info/refs?service=git-upload-pack".to_owned(),
        "/%2e%2e/app/info/refs?service=git-upload-pack".to_owned(),
        "/alice/%2e%2e/info/refs?service=git-upload-pack".to_owned(),
        "/alice/..%2Fapp.git/info/refs?service=git-upload-pack".to_owned(),
        format!("/alice/..%2F..%2F{outside_name}%2Fvictim.git/info/refs?service=git-upload-pack"),
        format!("/%2e%2e/{outside_name}/victim.git/info/refs?service=git-upload-pack"),
        "/alice/app.git%00/info/refs?service=git-upload-pack".to_owned(),
        "/%2Fetc/passwd/info/refs?service=git-upload-pack".to_owned(),
        "/alice/app.git/info/refs".to_owned(),
    ];
    for path in &git_paths {
        let status = raw_status(addr, "GET", path, Some(&token)).await;
        assert!(status == 404 || status == 403, "{path}: {status}");
    }
    for path in [
        "/alice/%2e%2e/git-receive-pack",
        "/%2e%2e/%2e%2e/git-upload-pack",
    ] {
        let status = raw_status(addr, "POST", path, Some(&token)).await;
        assert_eq!(status, 404, "{path}");
    }
    let api_paths = [
        ("DELETE", "/api/v1/repos/%2e%2e/%2e%2e"),
        ("DELETE", "/api/v1/repos/alice/%2e%2e"),
        ("DELETE", "/api/v1/repos/alice/..%2Fapp"),
        ("GET", "/api/v1/repos/alice/..%2F..%2Fetc"),
        ("POST", "/api/v1/repos/alice/%2e%2e/hooks"),
        ("PUT", "/api/fleetbench/faults/alice/%2e%2e"),
    ];
    for (method, path) in api_paths {
        let status = raw_status(addr, method, path, Some(&token)).await;
        assert!(status == 404 || status == 422, "{method} {path}: {status}");
    }
    // Traversal in bodies: repository, organisation and file names.
    for name in ["../../evil", "..", "/abs", &format!("../{outside_name}")] {
        let err = bounded(forge.create_repo(&CreateRepoOption::named(name)))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(422), "{name}");
        let err = bounded(forge.ensure_org(name)).await.unwrap_err();
        let refused = matches!(err.status(), Some(404 | 422))
            || matches!(err, gitserver::forge::ForgeError::InvalidUrl(_));
        assert!(refused, "{name}: {err}");
    }
    for path in ["../../x", "a/../../x", "/../x", ".git/HEAD"] {
        let options = ChangeFilesOptions {
            files: vec![ChangeFileOperation::create(path, "x")],
            ..ChangeFilesOptions::default()
        };
        let err = bounded(forge.change_files("alice", "app", &options))
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(422), "{path}");
    }

    assert_eq!(
        tree(fx.data.path()),
        before,
        "the data directory is unchanged"
    );
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside"
    );
    assert!(
        outside.join("victim.git").exists(),
        "nothing deleted outside"
    );
    fsck(fx.data.path(), "alice", "app").await;
    std::fs::remove_dir_all(outside).unwrap();
}

#[tokio::test]
async fn unknown_repositories_are_404_and_bad_credentials_401() {
    let fx = Fixture::start().await;
    fx.create_repo("known", false, true).await;
    let token = format!("token {}", fx.server.token());
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:wrong")
    );
    let addr = fx.server.addr();
    let advertise = |repo: &str| format!("/alice/{repo}.git/info/refs?service=git-upload-pack");
    assert_eq!(
        raw_status(addr, "GET", &advertise("unknown"), Some(&token)).await,
        404
    );
    assert_eq!(
        raw_status(
            addr,
            "GET",
            "/nobody/x.git/info/refs?service=git-upload-pack",
            Some(&token)
        )
        .await,
        404
    );
    assert_eq!(
        raw_status(addr, "GET", "/api/v1/repos/alice/unknown", Some(&token)).await,
        404
    );
    assert_eq!(
        raw_status(addr, "GET", &advertise("known"), Some(&wrong)).await,
        401
    );
    assert_eq!(
        raw_status(addr, "GET", "/api/v1/repos/alice/known", Some(&wrong)).await,
        401
    );
    assert_eq!(
        raw_status(addr, "GET", "/api/v1/user", Some("token not-a-token")).await,
        401
    );
    assert_eq!(
        raw_status(addr, "GET", "/api/v1/user", Some("Negotiate abc")).await,
        401
    );
    // Anonymous requests for an unknown repository are challenged, as in Gitea.
    assert_eq!(
        raw_status(addr, "GET", &advertise("unknown"), None).await,
        401
    );
    let err = failed(
        fx.git(&["ls-remote", &fx.authed_url("alice", "unknown")])
            .await,
    );
    assert!(err.contains("not found"), "{err}");
    fsck(fx.data.path(), "alice", "known").await;
}

#[tokio::test]
async fn a_push_to_a_missing_repository_fails_cleanly() {
    let fx = Fixture::start().await;
    let local = fx.local_repo("local", &[("a", "a")]).await;
    let err = failed(
        git_in(
            &local,
            &["push", &fx.authed_url("alice", "missing"), "main"],
        )
        .await,
    );
    // Gitea's answer with push-to-create disabled.
    assert!(err.contains("403"), "{err}");
    let err = failed(
        git_in(
            &local,
            &["push", &fx.authed_url("nobody", "missing"), "main"],
        )
        .await,
    );
    assert!(err.contains("not found"), "{err}");
    assert!(
        !fx.data.path().join("alice").exists(),
        "no repository was created"
    );
    assert!(!fx.data.path().join("nobody").exists());
    // The same push works once the repository exists.
    fx.create_repo("missing", false, false).await;
    ok(git_in(
        &local,
        &["push", "-q", &fx.authed_url("alice", "missing"), "main"],
    )
    .await);
    fsck(fx.data.path(), "alice", "missing").await;
}

#[tokio::test]
async fn a_rejected_push_leaves_the_repository_intact() {
    let fx = Fixture::start().await;
    fx.create_repo("guarded", false, false).await;
    let url = fx.authed_url("alice", "guarded");
    let first = fx.local_repo("first", &[("a", "1")]).await;
    ok(git_in(&first, &["push", "-q", &url, "main"]).await);
    // An unrelated history: a non-fast-forward push is refused by git.
    let other = fx.local_repo("other", &[("b", "2")]).await;
    let err = failed(git_in(&other, &["push", &url, "main"]).await);
    assert!(err.contains("rejected"), "{err}");
    let head = bounded(fx.forge().branch_head("alice", "guarded", "main"))
        .await
        .unwrap();
    let expected = ok(git_in(&first, &["rev-parse", "HEAD"]).await);
    assert_eq!(head, expected.trim());
    // A garbage pack is refused without damage.
    let status = bounded(
        common::http()
            .post(format!(
                "{}/alice/guarded.git/git-receive-pack",
                fx.server.url()
            ))
            .header("Authorization", format!("token {}", fx.server.token()))
            .header("Content-Type", "application/x-git-receive-pack-request")
            .body(b"0000garbage-that-is-not-a-pack".to_vec())
            .send(),
    )
    .await
    .unwrap()
    .status();
    assert!(status.is_success() || status.is_client_error() || status.is_server_error());
    fsck(fx.data.path(), "alice", "guarded").await;
    let head_after = bounded(fx.forge().branch_head("alice", "guarded", "main"))
        .await
        .unwrap();
    assert_eq!(head_after, head);
}
