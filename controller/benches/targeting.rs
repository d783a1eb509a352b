//! Target resolution and the selector index at 3000 bundles x 100 clusters.
//!
//! - `resolve/3000x100`: compile every bundle's targets and resolve it against every
//!   cluster (300,000 pairs), the work of reconciling every bundle once.
//! - `plan/one-bundle` and `plan/all-3000`: the bundle reconciler's planning step against a
//!   populated store (cluster groups, existing deployments, content hashes) — no API calls.
//! - `index/...`: the selector index lookup for a cluster label change that affects 30,
//!   300 or 3000 bundles, next to a scan of all 3000 bundles' selectors: the index's cost
//!   follows the number of affected bundles, the scan's the number of bundles.
//!
//! Run: `cargo bench -p fleet-controller --bench targeting -- --warm-up-time 1 --measurement-time 3`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fleet_api::{
    Bundle, BundleSpec, BundleTarget, Cluster, ClusterGroup, ClusterGroupSpec, ClusterSpec,
    ClusterStatus, GitTarget, labels,
};
use fleet_controller::bundle::index::{ClusterChange, TargetIndex};
use fleet_controller::bundle::targeting::{ClusterFacts, CompiledGroup, Targeting, groups_of};
use fleet_controller::store::{Key, Store};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

const BUNDLES: usize = 3000;
const CLUSTERS: usize = 100;
const NS: &str = "fleet-default";

fn map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Cluster i: env prod/dev alternating, one of 10 regions, one of 30 teams.
fn cluster(i: usize) -> Cluster {
    let mut c = Cluster::new(&format!("c{i:03}"), ClusterSpec::default());
    c.metadata.namespace = Some(NS.into());
    c.metadata.labels = Some(map(&[
        (
            "env",
            if i.is_multiple_of(2) { "prod" } else { "dev" }.to_owned(),
        ),
        ("region", format!("r{}", i % 10)),
        ("team", format!("t{}", i % 30)),
    ]));
    c.status = Some(ClusterStatus {
        namespace: format!("cluster-{NS}-c{i:03}"),
        ..Default::default()
    });
    c
}

fn selector(key: &str, value: String) -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(map(&[(key, value)])),
        ..Default::default()
    })
}

/// Bundle i of repo i/10: GitRepo targets by env (most), region, team or the default group;
/// a customization by region on every third bundle. `selector_key` overrides the key the
/// GitRepo target selects on (for index scenarios).
fn bundle(i: usize, selector_key: Option<&str>) -> Bundle {
    let repo = format!("repo{}", i / 10);
    let target = match (selector_key, i % 10) {
        (Some(key), _) => GitTarget {
            cluster_selector: selector(key, "x".into()),
            ..Default::default()
        },
        (None, 0) => GitTarget {
            cluster_group: Some("default".into()),
            ..Default::default()
        },
        (None, 1) => GitTarget {
            cluster_selector: selector("region", format!("r{}", i % 10)),
            ..Default::default()
        },
        (None, 2) => GitTarget {
            cluster_selector: selector("team", format!("t{}", i % 30)),
            ..Default::default()
        },
        _ => GitTarget {
            cluster_selector: selector("env", "prod".into()),
            ..Default::default()
        },
    };
    let mut targets = Vec::new();
    if i.is_multiple_of(3) {
        targets.push(BundleTarget {
            name: Some("eu".into()),
            cluster_selector: selector("region", "r1".into()),
            options: fleet_api::BundleDeploymentOptions {
                namespace: Some("eu".into()),
                ..Default::default()
            },
            ..Default::default()
        });
    }
    targets.push(BundleTarget::from(target.clone()));
    let mut b = Bundle::new(
        &format!("{repo}-path-{}", i % 10),
        BundleSpec {
            targets,
            target_restrictions: vec![target],
            resources: vec![fleet_api::BundleResource {
                name: Some("configmap.yaml".into()),
                content: Some(format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"
                )),
                encoding: None,
            }],
            ..Default::default()
        },
    );
    b.metadata.namespace = Some(NS.into());
    b.metadata.resource_version = Some("1".into());
    b.metadata.labels = Some(map(&[(labels::REPO_NAME, repo)]));
    b
}

fn default_group() -> ClusterGroup {
    let mut g = ClusterGroup::new(
        "default",
        ClusterGroupSpec {
            selector: selector("env", "prod".into()),
        },
    );
    g.metadata.namespace = Some(NS.into());
    g.metadata.resource_version = Some("1".into());
    g
}

fn resolve_all(c: &mut Criterion) {
    let bundles: Vec<Bundle> = (0..BUNDLES).map(|i| bundle(i, None)).collect();
    let clusters: Vec<Cluster> = (0..CLUSTERS).map(cluster).collect();
    let groups = vec![CompiledGroup::compile(&default_group())];
    let mut group = c.benchmark_group("resolve");
    group.throughput(Throughput::Elements((BUNDLES * CLUSTERS) as u64));
    group.sample_size(10);
    group.bench_function("3000x100", |b| {
        b.iter(|| {
            let mut matched = 0usize;
            let memberships: Vec<_> = clusters
                .iter()
                .map(|c| groups_of(c.metadata.labels.as_ref().unwrap(), &groups))
                .collect();
            for bundle in &bundles {
                let targeting = Targeting::compile(&bundle.spec).unwrap();
                for (cluster, member_of) in clusters.iter().zip(&memberships) {
                    let facts = ClusterFacts::from(cluster);
                    if targeting
                        .resolve(&bundle.spec, "s-1", &facts, member_of)
                        .is_some()
                    {
                        matched += 1;
                    }
                }
            }
            black_box(matched)
        });
    });
    group.finish();
}

fn plan(c: &mut Criterion) {
    let store = Store::new();
    store.apply_group(default_group());
    for i in 0..CLUSTERS {
        let mut cl = cluster(i);
        cl.metadata.resource_version = Some("1".into());
        store.apply_cluster(cl);
    }
    for i in 0..BUNDLES {
        store.apply_bundle(&bundle(i, None));
    }
    let keys: Vec<Key> = store.bundle_keys();
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("one-bundle", |b| {
        b.iter(|| {
            black_box(
                fleet_controller::bundle::plan(&store, &keys[7], false, false)
                    .unwrap()
                    .create
                    .len(),
            )
        });
    });
    group.throughput(Throughput::Elements(BUNDLES as u64));
    group.bench_function("all-3000", |b| {
        b.iter(|| {
            let mut creates = 0;
            for key in &keys {
                creates += fleet_controller::bundle::plan(&store, key, false, false)
                    .unwrap()
                    .create
                    .len();
            }
            black_box(creates)
        });
    });
    group.finish();
}

fn index(c: &mut Criterion) {
    let mut group = c.benchmark_group("index");
    for affected in [30usize, 300, 3000] {
        // `affected` bundles select on key "hot", the rest on 100 other keys.
        let mut index = TargetIndex::default();
        let mut targetings = Vec::new();
        for i in 0..BUNDLES {
            let key = if i < affected {
                "hot".to_owned()
            } else {
                format!("cold{}", i % 100)
            };
            let b = bundle(i, Some(&key));
            let t = Targeting::compile(&b.spec).unwrap();
            index.upsert(NS, b.metadata.name.as_deref().unwrap(), &t);
            targetings.push(t);
        }
        let change = ClusterChange {
            names: vec!["c001"],
            changed_keys: vec!["hot"],
            ..Default::default()
        };
        group.bench_with_input(BenchmarkId::new("lookup", affected), &affected, |b, _| {
            b.iter(|| black_box(index.affected(NS, &change).len()));
        });
        group.bench_with_input(
            BenchmarkId::new("scan-all-3000", affected),
            &affected,
            |b, _| {
                b.iter(|| {
                    black_box(
                        targetings
                            .iter()
                            .filter(|t| {
                                t.criteria().any(|c| {
                                    c.cluster_selector()
                                        .is_some_and(|s| s.keys().any(|k| k == "hot"))
                                })
                            })
                            .count(),
                    )
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, resolve_all, plan, index);
criterion_main!(benches);
