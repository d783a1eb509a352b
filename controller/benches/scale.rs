//! The scale curve: label propagation and orphan cleanup at several sizes, to show that
//! their cost follows the objects a change affects and not everything stored.
//!
//! Per size (`BUNDLES x CLUSTERS`) an in-process apiserver holds CLUSTERS Clusters (all but
//! the last labelled `env=prod`) and BUNDLES + 300 Bundles created directly: BUNDLES target
//! `env=prod`, 300 more target `tier=hot` (which no cluster has yet). The controller creates
//! the initial BundleDeployments, then:
//!
//! - `scale/label-all/BxC`: label the last Cluster `env=prod`, until its BUNDLES new
//!   BundleDeployments exist (BUNDLES affected); then unlabel it.
//! - `scale/cleanup-all/BxC`: the unlabelling, until those BundleDeployments are deleted
//!   again (orphans of every `env=prod` bundle).
//! - `scale/label-300/BxC`: label the last Cluster `tier=hot`: 300 new BundleDeployments
//!   whatever BUNDLES is; then unlabel it. A flat line over BUNDLES is the goal.
//!
//! Sizes: `SCALE_SIZES` (comma-separated `BxC`), default `300x10,1000x10,3000x10`; the
//! large ones (`10000x10`, `1000x100`, `3000x100`) only when asked for. This is a bench
//! with `harness = false`, so `cargo test` never runs it (and `make test` neither).
//! Run: `SCALE_SIZES=300x10,1000x10,3000x10,10000x10 cargo bench -p fleet-controller --bench scale -- --warm-up-time 1 --measurement-time 5`.
//! API writes per operation are printed (the controller's `fleet_object_writes_total`).

use std::time::{Duration, Instant};

use apiserver::{ApiServer, RunningApiServer};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fleet_api::{Bundle, BundleSpec, BundleTarget, Cluster, ClusterSpec, GitTarget, labels};
use fleet_controller::Controller;
use fleet_controller::config::{AgentMode, Config};
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, Patch, PatchParams, PostParams};

const NS: &str = "fleet-default";
const HOT: usize = 300;
const LIMIT: Duration = Duration::from_secs(900);

fn sizes() -> Vec<(usize, usize)> {
    let text = std::env::var("SCALE_SIZES").unwrap_or_else(|_| "300x10,1000x10,3000x10".into());
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (b, c) = s
                .trim()
                .split_once('x')
                .expect("SCALE_SIZES entries are BUNDLESxCLUSTERS");
            (
                b.parse().expect("bundle count"),
                c.parse().expect("cluster count"),
            )
        })
        .collect()
}

fn selector(key: &str, value: &str) -> GitTarget {
    GitTarget {
        cluster_selector: Some(LabelSelector {
            match_labels: Some([(key.to_owned(), value.to_owned())].into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn bundle(i: usize) -> Bundle {
    let target = if i < HOT {
        selector("tier", "hot")
    } else {
        selector("env", "prod")
    };
    let repo = format!("repo{:04}", i / 10);
    let mut b = Bundle::new(
        &format!("{repo}-path-{}", i % 10),
        BundleSpec {
            targets: vec![BundleTarget::from(target.clone())],
            target_restrictions: vec![target],
            resources: vec![fleet_api::BundleResource {
                name: Some("path/configmap.yaml".into()),
                content: Some(format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {repo}-{i}\n"
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

struct Setup {
    _api: RunningApiServer,
    client: kube::Client,
    controller: Controller,
    bundles: usize,
    clusters: usize,
}

impl Setup {
    async fn start(bundles: usize, clusters: usize) -> Setup {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = ApiServer::start(apiserver::Config::default())
            .await
            .expect("apiserver starts");
        let client = kube::Client::try_from(kube::Config::new(api.url().parse().unwrap())).unwrap();
        fleet_api::install_crds(&client).await.unwrap();
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": NS}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let cluster_api: Api<Cluster> = Api::namespaced(client.clone(), NS);
        for i in 0..clusters {
            let mut c = Cluster::new(&format!("c{i}"), ClusterSpec::default());
            c.metadata.namespace = Some(NS.into());
            if i < clusters - 1 {
                c.metadata.labels = Some([("env".to_owned(), "prod".to_owned())].into());
            }
            cluster_api
                .create(&PostParams::default(), &c)
                .await
                .unwrap();
        }
        let bundle_api: Api<Bundle> = Api::namespaced(client.clone(), NS);
        futures::stream::iter(0..bundles + HOT)
            .map(|i| {
                let api = bundle_api.clone();
                async move {
                    api.create(&PostParams::default(), &bundle(i))
                        .await
                        .unwrap()
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        let controller = Controller::start(
            client.clone(),
            Config {
                agent: AgentMode::None,
                ..Config::default()
            },
        )
        .await
        .unwrap();
        let setup = Setup {
            _api: api,
            client,
            controller,
            bundles,
            clusters,
        };
        let started = Instant::now();
        setup.wait_count(setup.base(), "initial deployments").await;
        eprintln!(
            "{bundles}x{clusters}: {} BundleDeployments created in {:.1}s",
            setup.base(),
            started.elapsed().as_secs_f64()
        );
        setup
    }

    /// BundleDeployments with the last cluster unlabelled.
    fn base(&self) -> usize {
        self.bundles * (self.clusters - 1)
    }

    async fn wait_count(&self, want: usize, what: &str) -> Duration {
        let started = Instant::now();
        while self.controller.store().deployment_count() != want {
            assert!(
                started.elapsed() < LIMIT,
                "{what}: {} of {want}",
                self.controller.store().deployment_count()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        started.elapsed()
    }

    async fn label(&self, key: &str, value: Option<&str>) {
        let patch = serde_json::json!({"metadata": {"labels": {key: value}}});
        Api::<Cluster>::namespaced(self.client.clone(), NS)
            .patch(
                &format!("c{}", self.clusters - 1),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
    }

    fn writes(&self) -> u64 {
        let metrics = self.controller.metrics();
        ["create", "update", "delete"]
            .iter()
            .map(|verb| {
                metrics
                    .object_writes
                    .get_or_create(&fleet_controller::metrics::ObjectWriteLabels {
                        resource: "bundledeployments".into(),
                        verb: (*verb).into(),
                    })
                    .get()
            })
            .sum()
    }
}

fn scale(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime builds");
    let mut group = c.benchmark_group("scale");
    group.sample_size(10);
    for (bundles, clusters) in sizes() {
        assert!(bundles > 0 && clusters > 1, "sizes start at 1x2");
        let setup = rt.block_on(Setup::start(bundles, clusters));
        let id = format!("{bundles}x{clusters}");
        let (all, base) = (setup.base() + bundles, setup.base());
        group.bench_function(BenchmarkId::new("label-all", &id), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        setup.label("env", Some("prod")).await;
                        total += setup.wait_count(all, "label-all").await;
                        setup.label("env", None).await;
                        setup.wait_count(base, "unlabel").await;
                    }
                    total
                })
            });
        });
        group.bench_function(BenchmarkId::new("cleanup-all", &id), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        setup.label("env", Some("prod")).await;
                        setup.wait_count(all, "label").await;
                        setup.label("env", None).await;
                        total += setup.wait_count(base, "cleanup-all").await;
                    }
                    total
                })
            });
        });
        group.bench_function(BenchmarkId::new("label-300", &id), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        setup.label("tier", Some("hot")).await;
                        total += setup.wait_count(base + HOT, "label-300").await;
                        setup.label("tier", None).await;
                        setup.wait_count(base, "unlabel-300").await;
                    }
                    total
                })
            });
        });
        // One more of each, counting the controller's BundleDeployment writes.
        rt.block_on(async {
            let before = setup.writes();
            setup.label("tier", Some("hot")).await;
            setup.wait_count(base + HOT, "label-300").await;
            let label_300 = setup.writes() - before;
            setup.label("tier", None).await;
            setup.wait_count(base, "unlabel-300").await;
            let before = setup.writes();
            setup.label("env", Some("prod")).await;
            setup.wait_count(all, "label-all").await;
            let label_all = setup.writes() - before;
            let before = setup.writes();
            setup.label("env", None).await;
            setup.wait_count(base, "cleanup-all").await;
            let cleanup_all = setup.writes() - before;
            eprintln!(
                "{id}: BundleDeployment writes: label-all {label_all} (affected {}), cleanup-all {cleanup_all} (objects deleted), label-300 {label_300} (affected {HOT}); stored {}",
                bundles,
                setup.controller.store().deployment_count()
            );
        });
        rt.block_on(setup.controller.shutdown());
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
