//! Batched orphan deletion (`bundle/orphans.rs`) against the embedded apiserver: one
//! `deletecollection` per cluster namespace where a label selector names exactly the
//! orphans, single DELETEs where it cannot, and single DELETEs again when the server fails
//! the collection call.

use crate::common;

use std::sync::Arc;

use apiserver::{ErrorRule, FaultConfig};
use common::{Crds, Env, NS, within};
use fleet_api::{BundleDeployment, BundleDeploymentSpec, labels};
use fleet_controller::bundle::deployments::Writer;
use fleet_controller::bundle::orphans::OrphanDeleter;
use fleet_controller::metrics::Metrics;
use fleet_controller::store::{DeploymentEntry, Key, Store};
use kube::api::{Api, ListParams, PostParams};

const CLUSTER_NS: &str = "cluster-fleet-default-c1-0123456789ab";

/// Creates BundleDeployment `name` in the cluster namespace, labelled as bundle `bundle`'s.
async fn create(env: &Env, store: &Store, name: &str, bundle: &str) -> Arc<DeploymentEntry> {
    let mut bd = BundleDeployment::new(name, BundleDeploymentSpec::default());
    bd.metadata.namespace = Some(CLUSTER_NS.into());
    bd.metadata.labels = Some(
        [
            (labels::BUNDLE_NAME.to_owned(), bundle.to_owned()),
            (labels::BUNDLE_NAMESPACE.to_owned(), NS.to_owned()),
            (labels::MANAGED.to_owned(), "true".to_owned()),
        ]
        .into(),
    );
    let api: Api<BundleDeployment> = Api::namespaced(env.client.clone(), CLUSTER_NS);
    let created = within("create", api.create(&PostParams::default(), &bd))
        .await
        .unwrap();
    store.apply_deployment(&created);
    store.deployment(&Key::new(CLUSTER_NS, name)).unwrap()
}

async fn names(env: &Env) -> Vec<String> {
    let api: Api<BundleDeployment> = Api::namespaced(env.client.clone(), CLUSTER_NS);
    let mut names: Vec<String> = within("list", api.list(&ListParams::default()))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|bd| bd.metadata.name.unwrap_or_default())
        .collect();
    names.sort();
    names
}

/// `apiserver_request_total` for BundleDeployments with `verb`, summed over codes.
async fn requests(env: &Env, verb: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", env.api.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains(&format!("verb=\"{verb}\"")))
        .filter(|l| l.contains("resource=\"bundledeployments\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn setup() -> (Env, Arc<Store>, Arc<OrphanDeleter>) {
    let env = Env::start(Crds::Ours).await;
    env.create_namespace(CLUSTER_NS).await;
    let store = Store::new();
    let deleter = OrphanDeleter::new(Writer {
        client: env.client.clone(),
        store: store.clone(),
        metrics: Arc::new(Metrics::new()),
    });
    (env, store, deleter)
}

#[tokio::test]
async fn orphans_of_many_bundles_go_in_one_collection_call_and_nothing_else_does() {
    let (env, store, deleter) = setup().await;
    let mut orphans = Vec::new();
    for i in 0..20 {
        orphans.push(create(&env, &store, &format!("b{i:02}"), &format!("b{i:02}")).await);
    }
    // Same labels' neighbours that are not in the batch: another bundle's deployment, and
    // one with a label value sharing a prefix with a batched name.
    create(&env, &store, "keep", "keep").await;
    create(&env, &store, "b0", "b0").await;
    let results = within("delete", deleter.delete(orphans.clone())).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(names(&env).await, ["b0", "keep"]);
    assert_eq!(requests(&env, "DELETECOLLECTION").await, 1);
    assert_eq!(requests(&env, "DELETE").await, 0);
    // The store saw the deletions (written through, no watch here).
    for orphan in &orphans {
        assert!(store.deployment(&orphan.key).is_none());
    }
    assert!(store.deployment(&Key::new(CLUSTER_NS, "keep")).is_some());
    env.shutdown().await;
}

#[tokio::test]
async fn an_orphan_whose_selector_would_match_a_kept_deployment_is_deleted_singly() {
    let (env, store, deleter) = setup().await;
    // "stray" carries bundle "web"'s labels but is not its deployment: a selector naming
    // bundle "web" would also delete "web", which stays.
    create(&env, &store, "web", "web").await;
    let stray = create(&env, &store, "stray", "web").await;
    let db = create(&env, &store, "db", "db").await;
    let results = within("delete", deleter.delete(vec![stray, db])).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(names(&env).await, ["web"]);
    assert_eq!(requests(&env, "DELETECOLLECTION").await, 1);
    assert_eq!(requests(&env, "DELETE").await, 1);
    env.shutdown().await;
}

#[tokio::test]
async fn a_failed_collection_call_falls_back_to_single_deletes() {
    let (env, store, deleter) = setup().await;
    env.api.faults().set(FaultConfig {
        errors: vec![ErrorRule {
            verb: Some("DELETECOLLECTION".into()),
            resource: Some("bundledeployments".into()),
            code: 500,
            rate: 1.0,
        }],
        ..Default::default()
    });
    let a = create(&env, &store, "a", "a").await;
    let b = create(&env, &store, "b", "b").await;
    create(&env, &store, "c", "c").await;
    let results = within("delete", deleter.delete(vec![a, b])).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(names(&env).await, ["c"]);
    assert_eq!(requests(&env, "DELETE").await, 2);
    env.shutdown().await;
}

#[tokio::test]
async fn concurrent_callers_share_calls_and_each_gets_its_answer() {
    let (env, store, deleter) = setup().await;
    let mut batches = Vec::new();
    for i in 0..30 {
        let a = create(&env, &store, &format!("x{i:02}"), &format!("x{i:02}")).await;
        batches.push(vec![a]);
    }
    create(&env, &store, "kept", "kept").await;
    let calls = batches.into_iter().map(|batch| {
        let deleter = deleter.clone();
        async move { deleter.delete(batch).await }
    });
    let results = within("delete", futures::future::join_all(calls)).await;
    assert_eq!(results.len(), 30);
    assert!(results.iter().flatten().all(Result::is_ok));
    assert_eq!(names(&env).await, ["kept"]);
    // Callers that arrive while a call is in flight share the next one.
    let collections = requests(&env, "DELETECOLLECTION").await;
    assert!((1..30).contains(&collections), "{collections} calls");
    assert_eq!(requests(&env, "DELETE").await, 0);
    env.shutdown().await;
}
