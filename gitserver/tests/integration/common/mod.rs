//! Fixtures shared by the end-to-end tests: a server in a temporary directory, the real
//! `git` CLI with an isolated configuration, a webhook receiver, and bounded waits.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use gitserver::forge::types::CreateRepoOption;
use gitserver::{Config, GitServer, RunningGitServer};
use parking_lot::Mutex;
use tempfile::TempDir;

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(60);

/// A server with its data directory and a scratch directory for clones.
pub struct Fixture {
    pub server: RunningGitServer,
    pub data: TempDir,
    pub scratch: TempDir,
}

impl Fixture {
    pub async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data).await
    }

    /// A server whose configuration `adjust` changes first (timeouts, limits, modes).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(data.path());
        adjust(&mut config);
        let server = bounded(GitServer::start(config)).await.unwrap();
        Self {
            server,
            data,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn start_in(data: TempDir) -> Self {
        let server = start_server(data.path()).await;
        Self {
            server,
            data,
            scratch: tempfile::tempdir().unwrap(),
        }
    }

    pub fn forge(&self) -> gitserver::forge::ForgeClient {
        self.server.forge_client()
    }

    /// A clone URL carrying the user's token as basic-auth password.
    pub fn authed_url(&self, owner: &str, repo: &str) -> String {
        let url = url::Url::parse(&self.server.clone_url(owner, repo)).unwrap();
        let mut url = url;
        url.set_username(self.server.user()).unwrap();
        url.set_password(Some(self.server.token())).unwrap();
        url.to_string()
    }

    pub fn anonymous_url(&self, owner: &str, repo: &str) -> String {
        self.server.clone_url(owner, repo)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Creates a repository of the user through the API.
    pub async fn create_repo(&self, name: &str, private: bool, auto_init: bool) {
        let option = CreateRepoOption {
            private,
            auto_init,
            ..CreateRepoOption::named(name)
        };
        bounded(self.forge().create_repo(&option)).await.unwrap();
    }

    /// Runs `git` in the scratch directory.
    pub async fn git(&self, args: &[&str]) -> Output {
        git_in(self.scratch.path(), args).await
    }

    /// Makes a local repository with one commit of `files`, ready to push to `url`.
    pub async fn local_repo(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        ok(git_in(&dir, &["init", "-q", "-b", "main"]).await);
        commit_files(&dir, files, "initial").await;
        dir
    }
}

/// The configuration every test server starts from: user `alice`, fast webhook retries.
pub fn test_config(data: &Path) -> Config {
    let mut config = Config::new(data);
    config.user = "alice".into();
    config.password = "alice-password".into();
    config.webhooks.initial_backoff = Duration::from_millis(50);
    config
}

pub async fn start_server(data: &Path) -> RunningGitServer {
    bounded(GitServer::start(test_config(data))).await.unwrap()
}

/// Awaits `future` for at most [`STEP`].
pub async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(STEP, future)
        .await
        .expect("a test step took longer than its bound")
}

/// Runs `git` with a configuration isolated from the machine's, in `dir`.
pub async fn git_in(dir: &Path, args: &[&str]) -> Output {
    // An empty HOME keeps the user's git configuration out.
    let home = std::env::temp_dir().join("fleetbench-gitserver-test-home");
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

/// Asserts a git command succeeded; returns its stdout.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "git failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("git printed UTF-8")
}

/// Asserts a git command failed; returns its stderr.
pub fn failed(output: Output) -> String {
    assert!(
        !output.status.success(),
        "git unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("git printed UTF-8")
}

/// Writes `files` in `dir` and commits them.
pub async fn commit_files(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (path, content) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, content).unwrap();
    }
    ok(git_in(dir, &["add", "-A"]).await);
    ok(git_in(dir, &["commit", "-q", "-m", message]).await);
    ok(git_in(dir, &["rev-parse", "HEAD"]).await)
        .trim()
        .to_owned()
}

/// Polls `check` every 20 ms until it returns `Some`, for at most [`STEP`].
pub async fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> T {
    bounded(async {
        loop {
            if let Some(value) = check() {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// An HTTP client with a timeout, for raw requests.
pub fn http() -> reqwest::Client {
    // reqwest is built without a rustls provider in this workspace; ring is the one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(STEP).build().unwrap()
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A webhook receiver on 127.0.0.1 that answers `failures` requests with 500 first.
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(failures: usize) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let remaining = Arc::new(Mutex::new(failures));
        let log = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                let remaining = remaining.clone();
                async move {
                    log.lock().push(Received { headers, body });
                    let mut remaining = remaining.lock();
                    if *remaining > 0 {
                        *remaining -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Waits until `count` requests arrived; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let received = self.received.clone();
        wait_for(move || {
            let got = received.lock();
            (got.len() >= count).then(|| got.clone())
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `git fsck --strict` of a bare repository of the server.
pub async fn fsck(data: &Path, owner: &str, repo: &str) {
    let path = data.join(owner).join(format!("{repo}.git"));
    ok(git_in(&path, &["fsck", "--strict", "--no-progress"]).await);
}
