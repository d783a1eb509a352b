//! Throughput of the embedded git server on the suites' shapes.
//!
//! - `ls_remote/300_concurrent_http`: 300 repositories polled at once, each poll one
//!   `GET info/refs?service=git-upload-pack` (the request every ls-remote starts with, and
//!   the one the request log counts as a poll), over one shared HTTP client.
//! - `ls_remote/300_concurrent_git2`: the same 300 polls as libgit2 `ls-remote`s
//!   (`Remote::connect` + `list`), each on its own blocking thread, new connection each.
//! - `ls_remote/sequential_http` and `http_backend/spawn_advertisement`: one poll at a time
//!   through the server, and one `git http-backend` process run directly with the same CGI
//!   environment, to show what the process per request costs.
//! - `commit/batch_30`: one ChangeFiles commit (4 files) to each of 30 repositories at once.
//! - `create/300_repos`: 300 repositories with one manifest path each (create + commit).
//!
//! Run with short times while developing:
//! `cargo bench -p fleetbench-gitserver -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gitserver::forge::ForgeClient;
use gitserver::forge::bulk::{self, ManifestLayout, RepoRef};
use gitserver::{Config, GitServer, RunningGitServer};

const POLLED: usize = 300;

struct Bench {
    runtime: tokio::runtime::Runtime,
    server: RunningGitServer,
    forge: ForgeClient,
    _data: tempfile::TempDir,
}

fn setup() -> Bench {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new(data.path());
    config.user = "bench".into();
    config.password = "bench-password".into();
    let server = runtime.block_on(GitServer::start(config)).unwrap();
    let forge = server.forge_client();
    let layout = ManifestLayout {
        paths: 4,
        ..ManifestLayout::default()
    };
    let repos: Vec<RepoRef> = (0..POLLED)
        .map(|i| RepoRef::new("fleet", format!("poll-{i:03}")))
        .collect();
    runtime
        .block_on(bulk::create_repos(&forge, &repos, &layout, 32))
        .unwrap();
    Bench {
        runtime,
        server,
        forge,
        _data: data,
    }
}

fn advertisement_url(server: &RunningGitServer, i: usize) -> String {
    format!(
        "{}/fleet/poll-{i:03}.git/info/refs?service=git-upload-pack",
        server.url()
    )
}

fn ls_remote(c: &mut Criterion, bench: &Bench) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(POLLED)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let urls: Arc<Vec<String>> = Arc::new(
        (0..POLLED)
            .map(|i| advertisement_url(&bench.server, i))
            .collect(),
    );
    let token = bench.server.token().to_owned();

    let mut group = c.benchmark_group("ls_remote");
    group.sample_size(10);
    group.throughput(Throughput::Elements(POLLED as u64));
    group.bench_function("300_concurrent_http", |b| {
        b.to_async(&bench.runtime).iter(|| {
            let (client, urls, token) = (client.clone(), urls.clone(), token.clone());
            async move {
                let polls = urls.iter().map(|url| {
                    let request = client
                        .get(url)
                        .header("Authorization", format!("token {token}"));
                    async move {
                        let response = request.send().await.unwrap();
                        assert!(response.status().is_success());
                        response.bytes().await.unwrap().len()
                    }
                });
                futures::future::join_all(polls).await
            }
        });
    });

    let clone_urls: Arc<Vec<String>> = Arc::new(
        (0..POLLED)
            .map(|i| bench.server.clone_url("fleet", &format!("poll-{i:03}")))
            .collect(),
    );
    let user = bench.server.user().to_owned();
    group.bench_function("300_concurrent_git2", |b| {
        b.to_async(&bench.runtime).iter(|| {
            let (clone_urls, user, token) = (clone_urls.clone(), user.clone(), token.clone());
            async move {
                let polls = (0..POLLED).map(|i| {
                    let (clone_urls, user, token) =
                        (clone_urls.clone(), user.clone(), token.clone());
                    tokio::task::spawn_blocking(move || {
                        let mut callbacks = git2::RemoteCallbacks::new();
                        callbacks.credentials(move |_, _, _| {
                            git2::Cred::userpass_plaintext(&user, &token)
                        });
                        let mut remote =
                            git2::Remote::create_detached(clone_urls[i].as_str()).unwrap();
                        let connection = remote
                            .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
                            .unwrap();
                        connection.list().unwrap().len()
                    })
                });
                futures::future::join_all(polls).await
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("ls_remote");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential_http", |b| {
        let (client, url, token) = (client.clone(), urls[0].clone(), token.clone());
        b.to_async(&bench.runtime).iter(|| {
            let request = client
                .get(&url)
                .header("Authorization", format!("token {token}"));
            async move { request.send().await.unwrap().bytes().await.unwrap().len() }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("http_backend");
    group.sample_size(20);
    let root = bench.server.data_dir().to_path_buf();
    // By absolute path, as the server spawns it (a bare name with PATH set makes the
    // standard library fork instead of posix_spawn).
    let git = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("git"))
        .find(|candidate| candidate.is_file())
        .expect("git on PATH");
    group.bench_function("spawn_advertisement", |b| {
        b.iter(|| {
            let output = std::process::Command::new(&git)
                .arg("http-backend")
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("GIT_PROJECT_ROOT", &root)
                .env("GIT_HTTP_EXPORT_ALL", "1")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("PATH_INFO", "/fleet/poll-000.git/info/refs")
                .env("REQUEST_METHOD", "GET")
                .env("QUERY_STRING", "service=git-upload-pack")
                .output()
                .unwrap();
            assert!(output.status.success());
            output.stdout.len()
        });
    });
    group.finish();
}

fn commits(c: &mut Criterion, bench: &Bench) {
    let layout = ManifestLayout {
        paths: 4,
        ..ManifestLayout::default()
    };
    let targets: Vec<RepoRef> = (0..30)
        .map(|i| RepoRef::new("fleet", format!("poll-{i:03}")))
        .collect();
    let revision = AtomicUsize::new(1);
    let mut group = c.benchmark_group("commit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(30));
    group.bench_function("batch_30", |b| {
        b.to_async(&bench.runtime).iter(|| {
            let revision = revision.fetch_add(1, Ordering::Relaxed) as u64;
            let (forge, targets, layout) = (bench.forge.clone(), targets.clone(), layout.clone());
            async move {
                let results = bulk::bump_revision(&forge, &targets, &layout, revision, 30).await;
                assert!(results.iter().all(|r| r.result.is_ok()));
            }
        });
    });
    group.finish();

    let batch = AtomicUsize::new(0);
    let mut group = c.benchmark_group("create");
    group.sample_size(10);
    group.throughput(Throughput::Elements(300));
    group.bench_function("300_repos", |b| {
        b.to_async(&bench.runtime).iter_custom(|iterations| {
            let forge = bench.forge.clone();
            let first = batch.fetch_add(iterations as usize, Ordering::Relaxed);
            async move {
                let layout = ManifestLayout::default();
                let mut total = Duration::ZERO;
                for iteration in 0..iterations as usize {
                    let repos: Vec<RepoRef> = (0..300)
                        .map(|i| RepoRef::new("bench", format!("b{}-{i:03}", first + iteration)))
                        .collect();
                    let started = Instant::now();
                    bulk::create_repos(&forge, &repos, &layout, 32)
                        .await
                        .unwrap();
                    total += started.elapsed();
                }
                total
            }
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let bench = setup();
    ls_remote(c, &bench);
    commits(c, &bench);
    bench
        .runtime
        .block_on(async move { bench.server.shutdown().await });
}

criterion_group!(gitserver_benches, benches);
criterion_main!(gitserver_benches);
