//! Throughput of the API server over HTTP on loopback: create, update (merge patch), list,
//! and creates fanned out to 10 open watches; plus the resident memory per stored 2 KiB
//! object (RSS growth over 20,000 objects, printed before the benchmarks run).
//!
//! Run: `cargo bench -p fleetbench-apiserver --bench http` (add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apiserver::{ApiServer, Config, RunningApiServer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const CONCURRENCY: usize = 32;
const BATCH: u64 = 2_000;
const WATCHERS: usize = 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime builds")
}

/// A ConfigMap of about 2 KiB when serialized.
fn object(name: &str) -> Vec<u8> {
    let filler: String = (0..1900)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "data": {"payload": filler}
    }))
    .expect("serializes")
}

struct Bench {
    server: RunningApiServer,
    http: reqwest::Client,
    next: AtomicU64,
}

impl Bench {
    async fn start() -> Arc<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let server = ApiServer::start(Config::default())
            .await
            .expect("server starts");
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY * 2)
            .build()
            .expect("client builds");
        Arc::new(Self {
            server,
            http,
            next: AtomicU64::new(0),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Creates `count` objects with `CONCURRENCY` requests in flight.
    async fn create(self: &Arc<Self>, count: u64) {
        let start = self.next.fetch_add(count, Ordering::Relaxed);
        futures::stream::iter(start..start + count)
            .map(|i| {
                let this = self.clone();
                async move {
                    let response = this
                        .http
                        .post(this.url(CONFIGMAPS))
                        .header("Content-Type", "application/json")
                        .body(object(&format!("cm-{i}")))
                        .send()
                        .await
                        .expect("request succeeds");
                    assert_eq!(response.status().as_u16(), 201);
                    response.bytes().await.expect("body arrives");
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<()>()
            .await;
    }

    /// Merge-patches `count` existing objects.
    async fn update(self: &Arc<Self>, count: u64, round: u64) {
        let existing = self.next.load(Ordering::Relaxed).max(1);
        futures::stream::iter(0..count)
            .map(|i| {
                let this = self.clone();
                async move {
                    let name = format!("cm-{}", i % existing);
                    let response = this
                        .http
                        .patch(this.url(&format!("{CONFIGMAPS}/{name}")))
                        .header("Content-Type", "application/merge-patch+json")
                        .body(format!(
                            r#"{{"metadata":{{"annotations":{{"round":"{round}-{i}"}}}}}}"#
                        ))
                        .send()
                        .await
                        .expect("request succeeds");
                    assert_eq!(response.status().as_u16(), 200);
                    response.bytes().await.expect("body arrives");
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<()>()
            .await;
    }

    /// Opens a watch that counts the events it receives.
    async fn watch(self: &Arc<Self>, events: Arc<AtomicU64>) {
        let list: serde_json::Value = self
            .http
            .get(self.url(&format!("{CONFIGMAPS}?limit=1")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let response = self
            .http
            .get(self.url(&format!(
                "{CONFIGMAPS}?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"
            )))
            .send()
            .await
            .expect("watch starts");
        tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                let lines = chunk.iter().filter(|b| **b == b'\n').count() as u64;
                events.fetch_add(lines, Ordering::Relaxed);
            }
        });
    }
}

/// CPU time used by this process so far (user + system), from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at state (3rd field).
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    let ticks: u64 = fields.iter().sum();
    Duration::from_millis(ticks * 10)
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// CPU per create (with and without 10 watchers), and resident memory per stored object: RSS growth while 20,000 more objects are stored,
/// after 2,000 warm-up objects sized the allocator's pools and the connection buffers.
fn resource_costs() {
    let rt = runtime();
    rt.block_on(async {
        let bench = Bench::start().await;
        bench.create(2_000).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_bytes();
        const STORED: u64 = 20_000;
        let cpu_before = cpu_time();
        let started = Instant::now();
        bench.create(STORED).await;
        let (cpu, wall) = (cpu_time() - cpu_before, started.elapsed());
        eprintln!(
            "cpu: {:.0} µs of CPU per create over HTTP, server and client together ({STORED} creates in {:.2} s wall, {:.2} s CPU)",
            cpu.as_secs_f64() * 1e6 / STORED as f64,
            wall.as_secs_f64(),
            cpu.as_secs_f64()
        );
        let counters: Vec<Arc<AtomicU64>> = (0..WATCHERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
        for counter in &counters {
            bench.watch(counter.clone()).await;
        }
        let cpu_before = cpu_time();
        const FANNED: u64 = 5_000;
        bench.create(FANNED).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        while counters.iter().any(|c| c.load(Ordering::Relaxed) < FANNED) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cpu = cpu_time() - cpu_before;
        eprintln!(
            "cpu: {:.0} µs of CPU per create delivered to {WATCHERS} watchers, server and client together",
            cpu.as_secs_f64() * 1e6 / FANNED as f64
        );
        let stored = STORED + FANNED;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_bytes();
        let per_object = after.saturating_sub(before) / stored;
        eprintln!(
            "memory: {per_object} bytes of RSS per stored ConfigMap of {} bytes ({stored} objects, RSS {} -> {} MiB)",
            object("cm-00000").len() + 120,
            before >> 20,
            after >> 20
        );
    });
}

fn benches(c: &mut Criterion) {
    resource_costs();
    let rt = runtime();
    let bench = rt.block_on(Bench::start());
    rt.block_on(bench.create(1_000));

    let mut group = c.benchmark_group("http");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("create", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    bench.create(BATCH).await;
                }
                started.elapsed()
            }
        });
    });
    let round = AtomicU64::new(0);
    group.bench_function("update", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            let r = round.fetch_add(1, Ordering::Relaxed);
            async move {
                let started = Instant::now();
                for i in 0..iters {
                    bench.update(BATCH, r * 1_000 + i).await;
                }
                started.elapsed()
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("http_list");
    group.sample_size(10);
    let list_bench = rt.block_on(async {
        let fresh = Bench::start().await;
        fresh.create(1_000).await;
        fresh
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("list_1000_objects", |b| {
        b.to_async(&rt).iter(|| {
            let bench = list_bench.clone();
            async move {
                let body = bench
                    .http
                    .get(bench.url(CONFIGMAPS))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert!(body.len() > 1_000 * 2_000);
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("http_watch_fanout");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH));
    let counters: Vec<Arc<AtomicU64>> =
        (0..WATCHERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    rt.block_on(async {
        for counter in &counters {
            bench.watch(counter.clone()).await;
        }
    });
    group.bench_function("create_with_10_watchers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            let counters = counters.clone();
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let targets: Vec<u64> = counters
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed) + BATCH)
                        .collect();
                    bench.create(BATCH).await;
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while counters
                        .iter()
                        .zip(&targets)
                        .any(|(c, t)| c.load(Ordering::Relaxed) < *t)
                    {
                        assert!(Instant::now() < deadline, "watchers fell behind");
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                }
                started.elapsed()
            }
        });
    });
    group.finish();
}

criterion_group!(http_benches, benches);
criterion_main!(http_benches);
