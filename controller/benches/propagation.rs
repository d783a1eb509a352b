//! Label propagation end to end on the embedded apiserver, and the controller's memory.
//!
//! Setup: an in-process apiserver with 10 Clusters (9 labelled `env=prod`) and 3000
//! Bundles targeting `env=prod` (created directly, as 300 GitRepos x 10 paths would), so
//! the controller starts with 27,000 BundleDeployments to create (reported).
//!
//! - `propagation/label-one-cluster-3000-bds`: label the tenth Cluster `env=prod` and time
//!   until the 3000 new BundleDeployments exist (the controller's write-through cache
//!   counts a BundleDeployment once the apiserver accepted its create); then unlabel it
//!   and wait for the 3000 deletions (not timed). The goal is < 2s.
//! - Then the same label change once with the `fleet-v0.10` profile (printed, to compare).
//! - Then the `fleet-controller` binary is started as a subprocess against the same
//!   apiserver (30,000 BundleDeployments with the tenth Cluster labelled), and its RSS is
//!   read from /proc once its queues are idle. The goal is < 200 MiB.
//!
//! Controller and apiserver share the 2 cores of the machine (as on the embedded provider).
//! Run: `cargo bench -p fleet-controller --bench propagation -- --warm-up-time 1 --measurement-time 3`.

use std::time::{Duration, Instant};

use apiserver::{ApiServer, RunningApiServer};
use criterion::{Criterion, criterion_group, criterion_main};
use fleet_api::{Bundle, BundleSpec, BundleTarget, Cluster, ClusterSpec, GitTarget, labels};
use fleet_controller::Controller;
use fleet_controller::config::{AgentMode, Config};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, Patch, PatchParams, PostParams};

const NS: &str = "fleet-default";
const CLUSTERS: usize = 10;
const BUNDLES: usize = 3000;
const LIMIT: Duration = Duration::from_secs(600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime builds")
}

fn bundle(i: usize) -> Bundle {
    let target = GitTarget {
        cluster_selector: Some(LabelSelector {
            match_labels: Some([("env".to_owned(), "prod".to_owned())].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let repo = format!("repo{:03}", i / 10);
    let mut b = Bundle::new(
        &format!("{repo}-path-{}", i % 10),
        BundleSpec {
            targets: vec![BundleTarget::from(target.clone())],
            target_restrictions: vec![target],
            resources: vec![fleet_api::BundleResource {
                name: Some("path/configmap.yaml".into()),
                content: Some(format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {repo}-{i}\ndata:\n  revision: \"0\"\n"
                )),
                encoding: None,
            }],
            ..Default::default()
        },
    );
    b.metadata.namespace = Some(NS.into());
    b.metadata.labels = Some([(labels::REPO_NAME.to_owned(), repo)].into());
    b
}

async fn wait_count(controller: &Controller, want: usize, what: &str) -> Duration {
    let started = Instant::now();
    let mut reported = Instant::now();
    while controller.store().deployment_count() != want {
        if reported.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{what}: {:?} after {:.0}s",
                controller.store(),
                started.elapsed().as_secs_f64()
            );
            reported = Instant::now();
        }
        assert!(
            started.elapsed() < LIMIT,
            "{what}: {} of {want}",
            controller.store().deployment_count()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

struct Setup {
    api: RunningApiServer,
    client: kube::Client,
    controller: Option<Controller>,
}

async fn setup() -> Setup {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let api = ApiServer::start(apiserver::Config::default())
        .await
        .expect("apiserver starts");
    let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
    fleet_api::install_crds(&client).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), NS);
    for i in 0..CLUSTERS {
        let mut c = Cluster::new(&format!("c{i}"), ClusterSpec::default());
        c.metadata.namespace = Some(NS.into());
        if i < CLUSTERS - 1 {
            c.metadata.labels = Some([("env".to_owned(), "prod".to_owned())].into());
        }
        clusters.create(&PostParams::default(), &c).await.unwrap();
    }
    let bundles: Api<Bundle> = Api::namespaced(client.clone(), NS);
    futures::stream::iter(0..BUNDLES)
        .map(|i| {
            let bundles = bundles.clone();
            async move {
                bundles
                    .create(&PostParams::default(), &bundle(i))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let config = Config {
        agent: AgentMode::None,
        ..Config::default()
    };
    let started = Instant::now();
    let controller = Controller::start(client.clone(), config).await.unwrap();
    let initial = wait_count(&controller, BUNDLES * (CLUSTERS - 1), "initial deployments").await;
    eprintln!(
        "setup: {} BundleDeployments created from scratch in {:.1}s ({:.1}s after start)",
        BUNDLES * (CLUSTERS - 1),
        initial.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Setup {
        api,
        client,
        controller: Some(controller),
    }
}

async fn set_label(client: &kube::Client, labelled: bool) {
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), NS);
    let value = if labelled {
        serde_json::json!("prod")
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({"metadata": {"labels": {"env": value}}});
    clusters
        .patch(
            &format!("c{}", CLUSTERS - 1),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts the controller binary against the apiserver and reports its RSS once idle.
async fn measure_binary_rss(setup: &Setup) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    setup.api.write_kubeconfig(&kubeconfig).unwrap();
    let address = dir.path().join("address");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet-controller"))
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--agent",
            "none",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--address-file", address.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("fleet-controller starts");
    let started = Instant::now();
    while !address.exists() {
        assert!(
            started.elapsed() < LIMIT,
            "controller binary never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr = std::fs::read_to_string(&address).unwrap().trim().to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Idle: every queue empty on three consecutive scrapes.
    let mut idle = 0;
    while idle < 3 && started.elapsed() < LIMIT {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let busy = text
            .lines()
            .filter(|l| l.starts_with("workqueue_depth{"))
            .any(|l| !l.ends_with(" 0"));
        idle = if busy { 0 } else { idle + 1 };
    }
    let pid = child.id().unwrap();
    let rss = rss_kib(pid).unwrap_or_default();
    eprintln!(
        "fleet-controller binary with {BUNDLES} Bundles x {CLUSTERS} Clusters ({} BundleDeployments): RSS {:.1} MiB (synced and idle after {:.1}s)",
        BUNDLES * CLUSTERS,
        rss as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    let _ = child.kill().await;
}

fn propagation(c: &mut Criterion) {
    let rt = runtime();
    let mut setup = rt.block_on(setup());
    let mut group = c.benchmark_group("propagation");
    group.sample_size(10);
    group.bench_function("label-one-cluster-3000-bds", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let controller = setup.controller.as_ref().unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    set_label(&setup.client, true).await;
                    total += wait_count(controller, BUNDLES * CLUSTERS, "new deployments").await;
                    set_label(&setup.client, false).await;
                    wait_count(controller, BUNDLES * (CLUSTERS - 1), "deletions").await;
                }
                total
            })
        });
    });
    group.finish();
    rt.block_on(async {
        // The same label change with the fleet-v0.10 profile (single shots, printed).
        let controller = setup.controller.take().unwrap();
        controller.shutdown().await;
        let legacy = Controller::start(
            setup.client.clone(),
            Config {
                agent: AgentMode::None,
                legacy: fleet_api::Profile::FleetV010.switches(),
                ..Config::default()
            },
        )
        .await
        .unwrap();
        wait_count(&legacy, BUNDLES * (CLUSTERS - 1), "legacy start").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        set_label(&setup.client, true).await;
        let took = wait_count(&legacy, BUNDLES * CLUSTERS, "legacy new deployments").await;
        eprintln!(
            "fleet-v0.10 profile: {BUNDLES} new BundleDeployments after one label change in {:.2}s",
            took.as_secs_f64()
        );
        legacy.shutdown().await;
        measure_binary_rss(&setup).await;
    });
}

criterion_group!(benches, propagation);
criterion_main!(benches);
