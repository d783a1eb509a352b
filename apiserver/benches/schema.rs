//! What a custom-object write costs in schema work: prune, default and validate (CEL
//! rules included) realistic Fleet objects against Fleet's real CRDs, and compiling the
//! CRDs themselves (done once per CRD change).

use std::hint::black_box;

use apiserver::schema::StructuralSchema;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn fleet_crds() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fleet-crds.yaml"
    );
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("fixture parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn schema_of<'a>(crds: &'a [Value], plural: &str) -> &'a Value {
    let name = format!("{plural}.fleet.cattle.io");
    let crd = crds
        .iter()
        .find(|c| c["metadata"]["name"] == name.as_str())
        .expect("CRD in fixture");
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// A Bundle of about 2 KiB of JSON: two manifests, helm values, targets, status.
fn bundle() -> Value {
    let manifest =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  key: value\n"
            .repeat(16);
    json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "Bundle",
        "metadata": {"name": "repo-path", "namespace": "fleet-default",
                     "labels": {"fleet.cattle.io/repo-name": "repo", "fleet.cattle.io/commit": "0123456789abcdef"}},
        "spec": {
            "defaultNamespace": "default",
            "resources": [{"name": "a.yaml", "content": manifest}, {"name": "b.yaml", "content": "kind: Service\n"}],
            "helm": {"releaseName": "app", "values": {"replicas": 2, "image": {"repository": "nginx", "tag": "1.27"}}},
            "targets": [{"name": "dev", "clusterSelector": {"matchLabels": {"env": "dev"}}},
                        {"name": "prod", "clusterGroup": "prod"}],
            "rolloutStrategy": {"maxUnavailable": "10%", "autoPartitionSize": 25}
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "lastUpdateTime": "2024-05-01T10:00:00Z"}],
            "summary": {"ready": 3, "desiredReady": 3},
            "display": {"readyClusters": "3/3"},
            "observedGeneration": 4
        }
    })
}

fn gitrepo() -> Value {
    json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": "repo", "namespace": "fleet-default"},
        "spec": {"repo": "https://git.example.com/org/repo", "branch": "main", "paths": ["a", "b"],
                 "pollingInterval": "60s",
                 "targets": [{"clusterSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}}]},
        "status": {"commit": "0123456789abcdef", "readyClusters": 3, "desiredReadyClusters": 3,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn benches(c: &mut Criterion) {
    let crds = fleet_crds();
    let bundles = StructuralSchema::from_openapi_v3(schema_of(&crds, "bundles")).expect("compiles");
    let gitrepos =
        StructuralSchema::from_openapi_v3(schema_of(&crds, "gitrepos")).expect("compiles");
    let bundle = bundle();
    let gitrepo = gitrepo();
    eprintln!(
        "bundle object: {} bytes of JSON",
        serde_json::to_vec(&bundle).map(|v| v.len()).unwrap_or(0)
    );

    c.bench_function("bundle: validate", |b| {
        b.iter(|| black_box(bundles.validate(black_box(&bundle))));
    });
    c.bench_function("bundle: prune + default + validate (a whole write)", |b| {
        b.iter_batched(
            || bundle.clone(),
            |mut object| {
                bundles.prune(&mut object);
                bundles.apply_defaults(&mut object);
                let errors = bundles.validate(&object);
                // Returned, so dropping the object is not timed.
                black_box((object, errors))
            },
            criterion::BatchSize::SmallInput,
        );
    });
    c.bench_function("bundle: prune", |b| {
        b.iter_batched(
            || bundle.clone(),
            |mut object| {
                bundles.prune(&mut object);
                black_box(object)
            },
            criterion::BatchSize::SmallInput,
        );
    });
    c.bench_function("bundle: apply_defaults", |b| {
        b.iter_batched(
            || bundle.clone(),
            |mut object| {
                bundles.apply_defaults(&mut object);
                black_box(object)
            },
            criterion::BatchSize::SmallInput,
        );
    });
    c.bench_function("gitrepo: validate (with the duration CEL rule)", |b| {
        b.iter(|| black_box(gitrepos.validate(black_box(&gitrepo))));
    });
    c.bench_function(
        "gitrepo: validate_update (with the duration CEL rule)",
        |b| {
            b.iter(|| {
                black_box(gitrepos.validate_update(black_box(&gitrepo), black_box(&gitrepo)))
            });
        },
    );
    c.bench_function("compile all 14 Fleet CRDs", |b| {
        b.iter(|| {
            for crd in &crds {
                for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                    black_box(
                        StructuralSchema::from_openapi_v3(&version["schema"]["openAPIV3Schema"])
                            .is_ok(),
                    );
                }
            }
        });
    });
}

criterion_group!(schema, benches);
criterion_main!(schema);
