//! The git proxy end to end: the real `git` CLI talks to the embedded git server through
//! `fleetbench::gitproxy`, and the proxy's log, faults and streaming are checked against
//! what git and the server itself saw.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fleetbench::gitproxy::{GitProxy, ProxyConfig, ProxyFault};
use gitserver::forge::types::CreateRepoOption;
use gitserver::forge::{Auth, ForgeClient};
use gitserver::request_log::Outcome;
use gitserver::{Config, GitServer, GitService, RequestFilter, RequestLogEntry, RunningGitServer};
use tempfile::TempDir;

/// The longest any single step may take.
const STEP: Duration = Duration::from_secs(120);
const USER: &str = "alice";
const PASSWORD: &str = "alice-password";

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .expect("a test step took longer than its bound")
}

/// Polls `check` every 20 ms until it holds, for at most [`STEP`].
async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Env {
    server: RunningGitServer,
    proxy: GitProxy,
    _data: TempDir,
    scratch: TempDir,
}

impl Env {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::new(data.path());
        config.user = USER.to_owned();
        config.password = PASSWORD.to_owned();
        let server = bounded(GitServer::start(config)).await.unwrap();
        let proxy = GitProxy::start(ProxyConfig::new(server.url()))
            .await
            .unwrap();
        Self {
            server,
            proxy,
            _data: data,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    /// A forge client that reaches the server's REST API through the proxy.
    fn forge(&self) -> ForgeClient {
        ForgeClient::new(
            self.proxy.url(),
            Auth::Token(self.server.token().to_owned()),
        )
        .unwrap()
    }

    async fn create_repo(&self, name: &str) {
        let option = CreateRepoOption {
            auto_init: true,
            ..CreateRepoOption::named(name)
        };
        bounded(self.forge().create_repo(&option)).await.unwrap();
    }

    fn url(&self, name: &str) -> String {
        self.proxy.clone_url(USER, name)
    }

    fn authed_url(&self, name: &str) -> String {
        authed(&self.proxy, name)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    async fn git(&self, args: &[&str]) -> Output {
        git_in(self.scratch.path(), args).await
    }

    fn entries(&self, repo: &str) -> Vec<RequestLogEntry> {
        self.proxy.requests(&RequestFilter::repo(repo))
    }
}

fn authed(proxy: &GitProxy, name: &str) -> String {
    format!(
        "http://{USER}:{PASSWORD}@{}/{USER}/{name}.git",
        proxy.local_addr()
    )
}

/// Runs `git` in `dir` with a configuration isolated from the machine's.
async fn git_in(dir: &Path, args: &[&str]) -> Output {
    let home = std::env::temp_dir().join("fleetbench-git-proxy-test-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = tokio::process::Command::new("git");
    command
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(["-c", "init.defaultBranch=main", "-c", "credential.helper="])
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .kill_on_drop(true);
    bounded(command.output()).await.unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "git failed: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(
        !output.status.success(),
        "git unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

/// Commits `files` in the work tree `dir`.
async fn commit(dir: &Path, files: &[(&str, &[u8])], message: &str) {
    for (path, content) in files {
        std::fs::write(dir.join(path), content).unwrap();
    }
    ok(git_in(dir, &["add", "-A"]).await);
    ok(git_in(dir, &["commit", "-q", "-m", message]).await);
}

fn summary(entries: &[RequestLogEntry]) -> Vec<(GitService, u16, Outcome)> {
    entries
        .iter()
        .map(|e| (e.service, e.status, e.outcome))
        .collect()
}

#[tokio::test]
async fn git_traffic_passes_through_and_is_recorded_like_the_git_servers_log() {
    let env = Env::start().await;
    env.create_repo("demo").await;
    assert!(
        env.proxy.requests(&RequestFilter::default()).is_empty(),
        "REST requests are forwarded but not recorded"
    );

    // ls-remote, anonymously, with the repository named in another case.
    let mixed = format!("{}/Alice/Demo.git", env.proxy.url());
    let refs = ok(env.git(&["ls-remote", &mixed]).await);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    wait_until("the ls-remote is recorded", || {
        env.entries("alice/demo").len() >= 2
    })
    .await;
    let entries = env.entries("alice/demo");
    assert_eq!(
        summary(&entries),
        vec![
            (GitService::UploadPackAdvertisement, 200, Outcome::Ok),
            (GitService::UploadPack, 200, Outcome::Ok),
        ]
    );
    let advert = &entries[0];
    assert_eq!(advert.repo, "alice/demo");
    assert_eq!(advert.user, None);
    assert_eq!(advert.protocol.as_deref(), Some("version=2"));
    assert!(advert.client.starts_with("127.0.0.1:"), "{}", advert.client);
    assert_eq!(entries[1].command.as_deref(), Some("ls-refs"));

    // Clone, commit and push with basic auth.
    let clone = env.path("clone");
    ok(env
        .git(&[
            "clone",
            "-q",
            &env.authed_url("demo"),
            clone.to_str().unwrap(),
        ])
        .await);
    commit(&clone, &[("new.txt", b"through the proxy\n")], "via proxy").await;
    ok(git_in(&clone, &["push", "-q", "origin", "main"]).await);
    let head = ok(git_in(&clone, &["rev-parse", "HEAD"]).await);
    let remote = ok(env
        .git(&["ls-remote", &env.url("demo"), "refs/heads/main"])
        .await);
    assert!(
        remote.starts_with(head.trim()),
        "pushed {head}, server has {remote}"
    );

    let pushes = |entries: &[RequestLogEntry]| {
        entries
            .iter()
            .filter(|e| e.service == GitService::ReceivePack && e.status == 200)
            .count()
    };
    wait_until("the push is recorded", || {
        pushes(&env.entries("alice/demo")) == 1
    })
    .await;
    let entries = env.entries("alice/demo");
    let pairs: Vec<(u64, i64)> = entries.iter().map(|e| (e.seq, e.unix_nanos)).collect();
    assert!(
        pairs
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "one git command at a time: sequence and arrival agree: {pairs:?}"
    );
    let services: Vec<GitService> = entries
        .iter()
        .filter(|e| e.outcome == Outcome::Ok)
        .map(|e| e.service)
        .collect();
    assert_eq!(
        services,
        vec![
            // ls-remote
            GitService::UploadPackAdvertisement,
            GitService::UploadPack,
            // clone: ls-refs, fetch
            GitService::UploadPackAdvertisement,
            GitService::UploadPack,
            GitService::UploadPack,
            // push
            GitService::ReceivePackAdvertisement,
            GitService::ReceivePack,
            // ls-remote
            GitService::UploadPackAdvertisement,
            GitService::UploadPack,
        ],
        "{entries:#?}"
    );
    let fetch_commands: Vec<Option<&str>> = entries
        .iter()
        .filter(|e| e.service == GitService::UploadPack)
        .map(|e| e.command.as_deref())
        .collect();
    assert_eq!(
        fetch_commands,
        vec![
            Some("ls-refs"),
            Some("ls-refs"),
            Some("fetch"),
            Some("ls-refs")
        ]
    );
    for entry in entries
        .iter()
        .filter(|e| e.service == GitService::ReceivePack)
    {
        assert_eq!(
            entry.user.as_deref(),
            Some(USER),
            "the name, never the password"
        );
    }
    // A push is challenged first: git sends its credentials after a 401, which both logs
    // record the same way.
    assert!(
        entries
            .iter()
            .filter(|e| e.status == 401)
            .all(|e| e.outcome == Outcome::Unauthorized && e.user.is_none())
    );
    assert!(
        entries
            .iter()
            .all(|e| e.duration_ms >= 0.0 && e.repo == "alice/demo"),
        "{entries:#?}"
    );

    // The server behind the proxy saw the same advertisements.
    let adverts = RequestFilter::repo("alice/demo").service(GitService::UploadPackAdvertisement);
    let proxy_adverts = env.proxy.requests(&adverts).len();
    assert_eq!(proxy_adverts, 3);
    let upstream = env.server.request_log();
    wait_until("the server has logged every advertisement", || {
        upstream.query(&adverts).len() == proxy_adverts
    })
    .await;
    // The server logs a request when its `git http-backend` has exited, a moment after the
    // response the proxy relayed: wait for it to catch up before comparing.
    let everything = RequestFilter::repo("alice/demo");
    let proxy_statuses: Vec<u16> = env.entries("alice/demo").iter().map(|e| e.status).collect();
    wait_until("the server has logged every request", || {
        upstream.query(&everything).len() >= proxy_statuses.len()
    })
    .await;
    let upstream_statuses: Vec<u16> = upstream
        .query(&everything)
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(upstream_statuses, proxy_statuses);

    // Filters narrow like the server's.
    let after = entries[2].seq;
    let later = env.proxy.requests(&RequestFilter {
        after_seq: Some(after),
        limit: Some(2),
        ..RequestFilter::default()
    });
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|e| e.seq > after));
    let since = jiff::Timestamp::from_nanosecond(i128::from(entries[3].unix_nanos)).unwrap();
    assert_eq!(
        env.proxy
            .requests(&RequestFilter::default().since(since))
            .len(),
        entries.len() - 3
    );
    assert!(
        env.proxy
            .requests(&RequestFilter::repo("alice/other"))
            .is_empty()
    );
    env.proxy.shutdown().await;
    env.server.shutdown().await;
}

#[tokio::test]
async fn faults_make_git_fail_are_recorded_and_clearing_restores() {
    fleetbench::init_crypto();
    let env = Env::start().await;
    env.create_repo("broken").await;
    env.create_repo("healthy").await;
    let url = env.url("broken");
    let advert_count = || {
        env.server
            .request_log()
            .query(&RequestFilter::repo("alice/broken"))
            .len()
    };

    for (fault, status, outcome, message) in [
        (ProxyFault::Refuse, 503, Outcome::Refused, "503"),
        (ProxyFault::NotFound, 404, Outcome::NotFound, "not found"),
        (
            ProxyFault::RateLimit {
                retry_after: Duration::from_secs(30),
            },
            429,
            Outcome::Refused,
            "429",
        ),
    ] {
        env.proxy.set_fault("Alice/Broken.git", fault);
        assert_eq!(env.proxy.faults(), vec![("alice/broken".to_owned(), fault)]);
        let before = env.entries("alice/broken").len();
        let upstream_before = advert_count();
        let stderr = failed(env.git(&["ls-remote", &url]).await);
        assert!(stderr.contains(message), "{fault:?}: {stderr}");
        wait_until("the refused request is recorded", || {
            env.entries("alice/broken").len() > before
        })
        .await;
        let last = env.entries("alice/broken").pop().unwrap();
        assert_eq!(
            (last.service, last.status, last.outcome),
            (GitService::UploadPackAdvertisement, status, outcome),
            "{fault:?}"
        );
        assert_eq!(
            advert_count(),
            upstream_before,
            "a faulted request is not forwarded"
        );

        // Other repositories, and the faulted one's REST API, are untouched.
        ok(env.git(&["ls-remote", &env.url("healthy")]).await);
        bounded(env.forge().get_repo(USER, "broken")).await.unwrap();
    }

    // GitHub's rate-limit answer carries the wait.
    let response = bounded(
        reqwest::Client::new()
            .get(format!("{url}/info/refs?service=git-upload-pack"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");

    env.proxy.clear_fault("alice/broken");
    assert!(env.proxy.faults().is_empty());
    let refs = ok(env.git(&["ls-remote", &url]).await);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    wait_until("the recovered request is recorded", || {
        env.entries("alice/broken")
            .last()
            .is_some_and(|e| e.outcome == Outcome::Ok)
    })
    .await;
    env.proxy.shutdown().await;
}

#[tokio::test]
async fn a_delay_holds_requests_back_then_forwards_them() {
    let env = Env::start().await;
    env.create_repo("slow").await;
    let delay = Duration::from_millis(1500);
    env.proxy.set_fault("alice/slow", ProxyFault::Delay(delay));
    let started = Instant::now();
    let refs = ok(env.git(&["ls-remote", &env.url("slow")]).await);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    // ls-remote makes at least two git requests, each delayed.
    assert!(started.elapsed() >= delay * 2, "{:?}", started.elapsed());
    wait_until("the delayed requests are recorded", || {
        env.entries("alice/slow").len() >= 2
    })
    .await;
    for entry in env.entries("alice/slow") {
        assert_eq!(entry.outcome, Outcome::Ok);
        assert!(entry.duration_ms >= 1500.0, "{entry:?}");
    }

    // A client that gives up during the delay is recorded as an error, not forgotten.
    let before = env.entries("alice/slow").len();
    let path = "/alice/slow.git/info/refs?service=git-upload-pack";
    let mut stream = tokio::net::TcpStream::connect(env.proxy.local_addr())
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: proxy\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    wait_until("the abandoned request is recorded", || {
        env.entries("alice/slow").len() > before
    })
    .await;
    let abandoned = env.entries("alice/slow").pop().unwrap();
    assert_eq!(abandoned.outcome, Outcome::Error);
    assert_eq!(abandoned.status, 499);
    env.proxy.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_recorded_bad_gateway() {
    fleetbench::init_crypto();
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = GitProxy::start(ProxyConfig::new(format!("http://{closed}")))
        .await
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let stderr = failed(git_in(scratch.path(), &["ls-remote", &proxy.clone_url("o", "r")]).await);
    assert!(stderr.contains("502"), "{stderr}");
    wait_until("the failure is recorded", || {
        !proxy.requests(&RequestFilter::default()).is_empty()
    })
    .await;
    let entries = proxy.requests(&RequestFilter::default());
    assert_eq!(
        summary(&entries),
        vec![(GitService::UploadPackAdvertisement, 502, Outcome::Error)]
    );

    // REST gets the same answer but is not a git request.
    let response = bounded(
        reqwest::Client::new()
            .get(format!("{}/api/v1/version", proxy.url()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(proxy.requests(&RequestFilter::default()).len(), 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn path_prefixes_on_either_side_are_mapped() {
    let env = Env::start().await;
    env.create_repo("prefixed").await;
    // The inner proxy is published under `/git` (its public host is irrelevant here); the
    // outer one has no prefix and forwards to the inner one's `/git`.
    let inner = GitProxy::start(
        ProxyConfig::new(env.server.url()).with_public_url("http://gateway.invalid/git/"),
    )
    .await
    .unwrap();
    let outer = GitProxy::start(ProxyConfig::new(format!(
        "http://{}/git/",
        inner.local_addr()
    )))
    .await
    .unwrap();
    let refs = ok(env
        .git(&["ls-remote", &outer.clone_url(USER, "prefixed")])
        .await);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    let filter = RequestFilter::repo("alice/prefixed").service(GitService::UploadPackAdvertisement);
    for proxy in [&inner, &outer] {
        wait_until("both proxies record the advertisement", || {
            proxy.requests(&filter).len() == 1
        })
        .await;
        assert_eq!(proxy.requests(&filter)[0].status, 200);
    }
    // REST through both prefixes.
    let forge = ForgeClient::new(outer.url(), Auth::Token(env.server.token().to_owned())).unwrap();
    bounded(forge.get_repo(USER, "prefixed")).await.unwrap();
    outer.shutdown().await;
    inner.shutdown().await;
}

/// Deterministic, incompressible bytes (xorshift), so the pack is as large as the file.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[tokio::test]
async fn a_large_push_and_clone_stream_through_intact() {
    let env = Env::start().await;
    env.create_repo("big").await;
    let work = env.path("work");
    ok(env
        .git(&[
            "clone",
            "-q",
            &env.authed_url("big"),
            work.to_str().unwrap(),
        ])
        .await);
    let content = noise(20 << 20);
    commit(&work, &[("big.bin", &content)], "20 MB").await;
    ok(git_in(&work, &["push", "-q", "origin", "main"]).await);

    let copy = env.path("copy");
    ok(env
        .git(&["clone", "-q", &env.url("big"), copy.to_str().unwrap()])
        .await);
    let cloned = std::fs::read(copy.join("big.bin")).unwrap();
    assert_eq!(cloned.len(), content.len());
    assert!(cloned == content, "the file came back different");

    wait_until("the push and the fetch are recorded", || {
        let entries = env.entries("alice/big");
        entries
            .iter()
            .any(|e| e.service == GitService::ReceivePack && e.outcome == Outcome::Ok)
            && entries
                .iter()
                .filter(|e| e.service == GitService::UploadPack && e.outcome == Outcome::Ok)
                .count()
                >= 4
    })
    .await;
    assert!(
        env.entries("alice/big")
            .iter()
            .all(|e| e.outcome == Outcome::Ok || e.outcome == Outcome::Unauthorized),
        "{:#?}",
        env.entries("alice/big")
    );
    env.proxy.shutdown().await;
}

/// Each direction waits for the other side to have seen the first chunk before sending the
/// rest: a proxy that buffered either body whole would deadlock here (and the bounded
/// waits would fail the test).
#[tokio::test]
async fn bodies_stream_both_ways_without_buffering() {
    use bytes::Bytes;
    use futures::SinkExt as _;
    use http_body_util::{BodyExt as _, StreamBody};
    use hyper::body::{Frame, Incoming};
    use std::convert::Infallible;
    use std::sync::Arc;
    use tokio::sync::oneshot;

    fleetbench::init_crypto();
    let (saw_first_tx, saw_first_rx) = oneshot::channel::<Bytes>();
    let (client_got_first_tx, client_got_first_rx) = oneshot::channel::<()>();
    let channels = Arc::new(parking_lot::Mutex::new(Some((
        saw_first_tx,
        client_got_first_rx,
    ))));

    // An upstream that echoes the request body after a first response chunk of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let channels = channels.clone();
            async move {
                let (saw_first, client_got_first) = channels.lock().take().unwrap();
                let mut body = request.into_body();
                let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
                saw_first.send(first.clone()).unwrap();
                let mut echo = first.to_vec();
                echo.extend_from_slice(&body.collect().await.unwrap().to_bytes());
                let (mut tx, rx) =
                    futures::channel::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                tx.send(Ok(Frame::data(Bytes::from_static(b"response-1;"))))
                    .await
                    .unwrap();
                tokio::spawn(async move {
                    if client_got_first.await.is_ok() {
                        let _ = tx.send(Ok(Frame::data(Bytes::from(echo)))).await;
                    }
                });
                Ok::<_, Infallible>(http::Response::new(StreamBody::new(rx)))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });

    let proxy = GitProxy::start(ProxyConfig::new(format!("http://{upstream_addr}")))
        .await
        .unwrap();
    let (mut request_tx, request_rx) =
        futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let send = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/o/stream.git/git-upload-pack", proxy.url()))
            .header("content-type", "application/x-git-upload-pack-request")
            .body(reqwest::Body::wrap_stream(request_rx))
            .send(),
    );

    request_tx
        .send(Ok(Bytes::from_static(b"0012command=fetch\n")))
        .await
        .unwrap();
    let first = bounded(saw_first_rx).await.unwrap();
    assert_eq!(
        &first[..],
        b"0012command=fetch\n",
        "the first request chunk arrived alone"
    );
    request_tx
        .send(Ok(Bytes::from_static(b"0000")))
        .await
        .unwrap();
    drop(request_tx);

    let mut response = bounded(send).await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let chunk = bounded(response.chunk()).await.unwrap().unwrap();
    assert_eq!(&chunk[..], b"response-1;");
    assert!(
        proxy.requests(&RequestFilter::default()).is_empty(),
        "an entry is written when the response has ended, not before"
    );
    client_got_first_tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(chunk) = bounded(response.chunk()).await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, b"0012command=fetch\n0000");

    wait_until("the streamed request is recorded", || {
        !proxy.requests(&RequestFilter::default()).is_empty()
    })
    .await;
    let entries = proxy.requests(&RequestFilter::default());
    assert_eq!(
        summary(&entries),
        vec![(GitService::UploadPack, 200, Outcome::Ok)]
    );
    assert_eq!(entries[0].repo, "o/stream");
    assert_eq!(entries[0].command.as_deref(), Some("fetch"));
    proxy.shutdown().await;
    bounded(upstream).await.unwrap();
}

/// An upstream that sends part of a body and then goes silent (without closing) cannot
/// hold the proxy forever: the body fails after the upstream timeout and is recorded.
#[tokio::test]
async fn a_stalled_upstream_body_is_cut_and_recorded_as_an_error() {
    use bytes::Bytes;
    use futures::SinkExt as _;
    use http_body_util::StreamBody;
    use hyper::body::{Frame, Incoming};
    use std::convert::Infallible;
    use tokio::sync::oneshot;

    fleetbench::init_crypto();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release = std::sync::Arc::new(parking_lot::Mutex::new(Some(release_rx)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = hyper::service::service_fn(move |_: http::Request<Incoming>| {
            let release = release.lock().take().unwrap();
            async move {
                let (mut tx, rx) =
                    futures::channel::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                tx.send(Ok(Frame::data(Bytes::from_static(
                    b"001e# service=git-upload-pack\n",
                ))))
                .await
                .unwrap();
                // Keeps the body open, silent, until the test ends.
                tokio::spawn(async move {
                    let _ = release.await;
                    drop(tx);
                });
                Ok::<_, Infallible>(http::Response::new(StreamBody::new(rx)))
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });

    let mut config = ProxyConfig::new(format!("http://{upstream_addr}"));
    config.upstream_timeout = Duration::from_secs(1);
    let proxy = GitProxy::start(config).await.unwrap();
    let mut response = bounded(
        reqwest::Client::new()
            .get(format!(
                "{}/o/stalled.git/info/refs?service=git-upload-pack",
                proxy.url()
            ))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let first = bounded(response.chunk()).await.unwrap().unwrap();
    assert!(first.starts_with(b"001e"));
    assert!(
        bounded(response.chunk()).await.is_err(),
        "the stalled body ends in an error"
    );
    wait_until("the cut request is recorded", || {
        !proxy.requests(&RequestFilter::default()).is_empty()
    })
    .await;
    assert_eq!(
        summary(&proxy.requests(&RequestFilter::default())),
        vec![(GitService::UploadPackAdvertisement, 200, Outcome::Error)]
    );
    drop(release_tx);
    proxy.shutdown().await;
    upstream.abort();
}
