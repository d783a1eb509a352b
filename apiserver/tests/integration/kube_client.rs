//! kube-rs against the embedded server: CRUD, conflicts, status and generation, watches
//! across cuts and 410s, a Controller, garbage collection, namespaces, selectors, paging.

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apiserver::Config;
use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::runtime::{Controller, WatchStreamExt, controller::Action, watcher};
use serde_json::json;

fn configmap(name: &str, labels: &[(&str, &str)], data: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"value": data}
    }))
    .unwrap()
}

fn api_status(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.reason),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_and_stale_update_conflict() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let created = cms
        .create(&PostParams::default(), &configmap("a", &[], "1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let (code, reason) = api_status(
        cms.create(&PostParams::default(), &configmap("a", &[], "1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("value".into(), "2".into())]));
    let updated = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );

    // The same stale object again: its resourceVersion is outdated.
    let (code, reason) = api_status(
        cms.replace("a", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["value"], "2");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let (code, _) = api_status(cms.get("a").await.unwrap_err());
    assert_eq!(code, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let server = server(Config::default()).await;
    let client = client(&server);
    install_widgets(&client).await;
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &widget_resource());
    let mut w = widget("w1", 1);
    w.data["status"] = json!({"ready": true});
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    // Status writes go through /status and do not bump generation.
    let status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"size": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(status.data["spec"]["size"], 1, "spec is ignored on /status");
    assert_eq!(status.metadata.generation, Some(1));

    // Spec writes bump generation and cannot change status.
    let spec = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"ready": false}})),
        )
        .await
        .unwrap();
    assert_eq!(spec.metadata.generation, Some(2));
    assert_eq!(spec.data["status"]["ready"], true);

    // Label changes are metadata: no generation bump.
    let labelled = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));

    // A no-op write does not change the resourceVersion.
    let again = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        labelled.metadata.resource_version
    );
    server.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_creates_merges_and_removes_fields() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let pp = PatchParams::apply("test-manager");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1", "b": "2"}});
    let created = cms.patch("ssa", &pp, &Patch::Apply(&first)).await.unwrap();
    assert_eq!(created.data.as_ref().unwrap().len(), 2);
    let managers = created.metadata.managed_fields.unwrap();
    assert_eq!(managers[0].manager.as_deref(), Some("test-manager"));
    assert_eq!(managers[0].operation.as_deref(), Some("Apply"));

    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let applied = cms.patch("ssa", &pp, &Patch::Apply(&second)).await.unwrap();
    assert_eq!(
        applied.data.unwrap(),
        BTreeMap::from([("a".to_string(), "1".to_string())])
    );

    // Another manager changing an owned field conflicts unless forced.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "x"}});
    let (code, _) = api_status(
        cms.patch("ssa", &PatchParams::apply("other"), &Patch::Apply(&other))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 409);
    let forced = cms
        .patch(
            "ssa",
            &PatchParams::apply("other").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "x");
    server.shutdown().await;
}

#[tokio::test]
async fn patch_formats() {
    let server = server(Config::default()).await;
    let client = client(&server);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &configmap("p", &[("x", "1")], "1"))
        .await
        .unwrap();
    let json_patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/value", "value": "2"}]))
            .unwrap();
    let patched = cms
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(json_patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["value"], "2");
    let failed =
        serde_json::from_value(json!([{"op": "test", "path": "/data/value", "value": "nope"}]))
            .unwrap();
    let (code, _) = api_status(
        cms.patch("p", &PatchParams::default(), &Patch::<()>::Json(failed))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    let smp = cms
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"y": "2"}}, "data": {"other": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(smp.metadata.labels.unwrap().len(), 2);
    assert_eq!(smp.data.unwrap().len(), 2);

    install_widgets(&client).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client, "default", &widget_resource());
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let (code, reason) = api_status(
        widgets
            .patch(
                "w",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (415, "UnsupportedMediaType"));
    server.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let mut cm = configmap("f", &[], "1");
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let pending = cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = pending
        .left()
        .expect("object returned while finalizers remain");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("f")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    // No new finalizers once deleting.
    let (code, _) = api_status(
        cms.patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "new"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422);
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let (code, _) = api_status(cms.get("f").await.unwrap_err());
    assert_eq!(code, 404);
    server.shutdown().await;
}

async fn collect_names(api: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect()
}

#[tokio::test]
async fn label_and_field_selectors() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    for (name, env, tier) in [
        ("a", "prod", "web"),
        ("b", "dev", "web"),
        ("c", "prod", "db"),
    ] {
        cms.create(
            &PostParams::default(),
            &configmap(name, &[("env", env), ("tier", tier)], "1"),
        )
        .await
        .unwrap();
    }
    cms.create(&PostParams::default(), &configmap("d", &[], "1"))
        .await
        .unwrap();
    let names = |s: &str| ListParams::default().labels(s);
    assert_eq!(collect_names(&cms, &names("env=prod")).await, ["a", "c"]);
    assert_eq!(collect_names(&cms, &names("env!=prod")).await, ["b", "d"]);
    assert_eq!(
        collect_names(&cms, &names("env in (dev,prod),tier notin (db)")).await,
        ["a", "b"]
    );
    assert_eq!(collect_names(&cms, &names("!env")).await, ["d"]);
    assert_eq!(collect_names(&cms, &names("tier")).await, ["a", "b", "c"]);
    assert_eq!(
        collect_names(&cms, &ListParams::default().fields("metadata.name=b")).await,
        ["b"]
    );
    assert_eq!(
        collect_names(
            &cms,
            &ListParams::default().fields("metadata.namespace!=default")
        )
        .await,
        Vec::<String>::new()
    );
    let (code, _) = api_status(
        cms.list(&ListParams::default().fields("spec.nothing=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn paging_with_limit_and_continue() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    for i in 0..25 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("cm-{i:02}"), &[], "1"),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(10);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        seen.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "paging terminates");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("cm-{i:02}")).collect();
    assert_eq!(seen, expected);
    server.shutdown().await;
}

#[tokio::test]
async fn namespaces_lifecycle() {
    let server = server(Config::default()).await;
    let client = client(&server);
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let (code, reason) = api_status(
        missing
            .create(&PostParams::default(), &configmap("a", &[], "1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let (code, reason) = api_status(
        namespaces
            .delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &configmap("free", &[], "1"))
        .await
        .unwrap();
    let mut held = configmap("held", &[], "1");
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    eventually("free object deleted", || async {
        cms.get_opt("free").await.unwrap().is_none().then_some(())
    })
    .await;
    let (code, _) = api_status(
        cms.create(&PostParams::default(), &configmap("late", &[], "1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    // The finalizer holds the namespace until it is removed.
    assert!(namespaces.get_opt("team").await.unwrap().is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace removed", || async {
        namespaces
            .get_opt("team")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    server.shutdown().await;
}

fn owned_by(name: &str, owner: &ConfigMap, block: bool) -> ConfigMap {
    let mut cm = configmap(name, &[], "1");
    cm.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner.metadata.name.clone().unwrap(),
            uid: owner.metadata.uid.clone().unwrap(),
            block_owner_deletion: Some(block),
            controller: Some(true),
        },
    ]);
    cm
}

#[tokio::test]
async fn owner_reference_garbage_collection() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let pp = PostParams::default();

    // Background: the owner goes at once, dependents follow.
    let owner = cms
        .create(&pp, &configmap("owner", &[], "1"))
        .await
        .unwrap();
    cms.create(&pp, &owned_by("child", &owner, false))
        .await
        .unwrap();
    cms.create(
        &pp,
        &owned_by("grandchild", &cms.get("child").await.unwrap(), false),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("dependents collected", || async {
        (cms.get_opt("child").await.unwrap().is_none()
            && cms.get_opt("grandchild").await.unwrap().is_none())
        .then_some(())
    })
    .await;

    // Foreground: the owner waits for blocking dependents.
    let owner = cms.create(&pp, &configmap("fg", &[], "1")).await.unwrap();
    let mut blocking = owned_by("fg-child", &owner, true);
    blocking.metadata.finalizers = Some(vec!["example.com/slow".into()]);
    cms.create(&pp, &blocking).await.unwrap();
    cms.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let waiting = cms.get("fg").await.unwrap();
    assert!(
        waiting
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    eventually("dependent marked for deletion", || async {
        cms.get("fg-child")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    assert!(
        cms.get_opt("fg").await.unwrap().is_some(),
        "owner waits for its blocking dependent"
    );
    cms.patch(
        "fg-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("owner deleted after dependents", || async {
        cms.get_opt("fg").await.unwrap().is_none().then_some(())
    })
    .await;

    // Orphan: dependents stay, without the reference.
    let owner = cms
        .create(&pp, &configmap("orphaner", &[], "1"))
        .await
        .unwrap();
    cms.create(&pp, &owned_by("orphan", &owner, false))
        .await
        .unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    cms.delete("orphaner", &dp).await.unwrap();
    eventually("owner gone", || async {
        cms.get_opt("orphaner")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let orphan = cms.get("orphan").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // A dependent whose owner never existed is collected.
    let mut ghost_owner = configmap("ghost", &[], "1");
    ghost_owner.metadata.uid = Some("00000000-0000-0000-0000-000000000000".into());
    cms.create(&pp, &owned_by("dangling", &ghost_owner, false))
        .await
        .unwrap();
    eventually("dangling dependent collected", || async {
        cms.get_opt("dangling")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    server.shutdown().await;
}

/// Reads objects from a reflector store by name.
fn snapshot(store: &kube::runtime::reflector::Store<ConfigMap>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap(),
                c.data
                    .as_ref()
                    .and_then(|d| d.get("value").cloned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn server_state(cms: &Api<ConfigMap>) -> BTreeMap<String, String> {
    cms.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap(),
                c.data
                    .and_then(|d| d.get("value").cloned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn watcher_sees_every_change_across_a_cut_and_a_410() {
    let server = server(
        Config::default()
            .with_watch_history(8)
            .with_bookmark_interval(Duration::from_millis(200)),
    )
    .await;
    let client = client(&server);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("w{i}"), &[], "0"),
        )
        .await
        .unwrap();
    }
    let (reader, writer) = kube::runtime::reflector::store::<ConfigMap>();
    let inits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = inits.clone();
    let stream = watcher(cms.clone(), watcher::Config::default())
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::Init) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .reflect(writer);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    let target = server_state(&cms).await;
    eventually("initial list", || async {
        (snapshot(&reader) == target).then_some(())
    })
    .await;

    // Changes, then a cut: the watcher resumes from its last resourceVersion.
    cms.patch(
        "w0",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": "1"}})),
    )
    .await
    .unwrap();
    server.faults().cut_watches();
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": "1"}})),
    )
    .await
    .unwrap();
    cms.create(&PostParams::default(), &configmap("w3", &[], "new"))
        .await
        .unwrap();
    let target = server_state(&cms).await;
    eventually("changes after cut", || async {
        (snapshot(&reader) == target).then_some(())
    })
    .await;
    let inits_before = inits.load(std::sync::atomic::Ordering::SeqCst);

    // Block re-watches, cut, and push the history past the watcher's revision: its next
    // watch gets 410 Gone and it must re-list.
    server.faults().set(apiserver::FaultConfig {
        errors: vec![apiserver::ErrorRule {
            verb: Some("WATCH".into()),
            resource: None,
            code: 500,
            rate: 1.0,
        }],
        ..Default::default()
    });
    server.faults().cut_watches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        cms.patch(
            "w2",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"value": format!("v{i}")}})),
        )
        .await
        .unwrap();
    }
    cms.delete("w0", &DeleteParams::default()).await.unwrap();
    server.faults().clear();
    let target = server_state(&cms).await;
    eventually("state after 410 re-list", || async {
        (snapshot(&reader) == target).then_some(())
    })
    .await;
    assert!(
        inits.load(std::sync::atomic::Ordering::SeqCst) > inits_before,
        "a 410 forces a re-list"
    );
    task.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn controller_reconciles_every_change() {
    let server = server(Config::default().with_watch_history(8)).await;
    let client = client(&server);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let seen: Arc<parking_lot::Mutex<BTreeMap<String, String>>> = Arc::default();

    async fn reconcile(
        cm: Arc<ConfigMap>,
        seen: Arc<parking_lot::Mutex<BTreeMap<String, String>>>,
    ) -> Result<Action, kube::Error> {
        let value = cm
            .data
            .as_ref()
            .and_then(|d| d.get("value").cloned())
            .unwrap_or_default();
        seen.lock().insert(cm.metadata.name.clone().unwrap(), value);
        Ok(Action::await_change())
    }
    fn error_policy(
        _: Arc<ConfigMap>,
        _: &kube::Error,
        _: Arc<parking_lot::Mutex<BTreeMap<String, String>>>,
    ) -> Action {
        Action::requeue(Duration::from_millis(50))
    }
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, seen.clone())
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    for i in 0..5 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("c{i}"), &[], "0"),
        )
        .await
        .unwrap();
    }
    let expect = |cms: Api<ConfigMap>, seen: Arc<parking_lot::Mutex<BTreeMap<String, String>>>| async move {
        let target = server_state(&cms).await;
        eventually("controller caught up", || async {
            (*seen.lock() == target).then_some(())
        })
        .await;
    };
    expect(cms.clone(), seen.clone()).await;
    server.faults().cut_watches();
    for i in 0..5 {
        cms.patch(
            &format!("c{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"value": "1"}})),
        )
        .await
        .unwrap();
    }
    expect(cms.clone(), seen.clone()).await;
    // Past the kept history while watches are cut: the controller re-lists after 410.
    server.faults().set(apiserver::FaultConfig {
        errors: vec![apiserver::ErrorRule {
            verb: Some("WATCH".into()),
            resource: None,
            code: 500,
            rate: 1.0,
        }],
        ..Default::default()
    });
    server.faults().cut_watches();
    for round in 0..3 {
        for i in 0..5 {
            cms.patch(
                &format!("c{i}"),
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"value": format!("r{round}")}})),
            )
            .await
            .unwrap();
        }
    }
    server.faults().clear();
    expect(cms.clone(), seen.clone()).await;
    task.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn watch_bookmarks_and_410_for_old_revisions() {
    let server = server(
        Config::default()
            .with_watch_history(4)
            .with_bookmark_interval(Duration::from_millis(100)),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    let first = cms
        .create(&PostParams::default(), &configmap("b0", &[], "0"))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for i in 1..10 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("b{i}"), &[], "0"),
        )
        .await
        .unwrap();
    }
    let wp = kube::api::WatchParams::default();
    let mut stream = within("watch starts", cms.watch(&wp, &old_rv))
        .await
        .unwrap()
        .boxed();
    let first_event = within("410 arrives", stream.next()).await.unwrap();
    match first_event {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 410),
        Ok(kube::api::WatchEvent::Error(status)) => assert_eq!(status.code, 410),
        other => panic!("expected 410, got {other:?}"),
    }
    let current = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = kube::api::WatchParams::default();
    let mut stream = within("watch starts", cms.watch(&wp, &current))
        .await
        .unwrap()
        .boxed();
    let event = within("bookmark arrives", stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, kube::api::WatchEvent::Bookmark(_)),
        "{event:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn both_event_apis_share_one_store() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let server = server(Config::default()).await;
    let client = client(&server);
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "GitRepo", "name": "repo", "namespace": "default"},
        "note": "cloned",
        "reason": "Synced",
        "type": "Normal",
        "action": "Sync",
        "reportingController": "fleet",
        "reportingInstance": "fleet-0"
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let seen = core.get("e1").await.unwrap();
    assert_eq!(seen.involved_object.name.as_deref(), Some("repo"));
    assert_eq!(seen.message.as_deref(), Some("cloned"));
    assert_eq!(seen.reporting_component.as_deref(), Some("fleet"));
    let by_object = core
        .list(&ListParams::default().fields("involvedObject.name=repo"))
        .await
        .unwrap();
    assert_eq!(by_object.items.len(), 1);
    let by_regarding = events
        .list(&ListParams::default().fields("regarding.name=repo"))
        .await
        .unwrap();
    assert_eq!(by_regarding.items.len(), 1);
    assert_eq!(by_regarding.items[0].note.as_deref(), Some("cloned"));
    let patched = events
        .patch(
            "e1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "updated"})),
        )
        .await
        .unwrap();
    assert_eq!(patched.note.as_deref(), Some("updated"));
    assert_eq!(
        core.get("e1").await.unwrap().message.as_deref(),
        Some("updated")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_lists_and_metadata_watchers() {
    let server = server(Config::default().with_bookmark_interval(Duration::from_millis(200))).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    for i in 0..3 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("s{i}"), &[("app", "x")], "0"),
        )
        .await
        .unwrap();
    }
    // sendInitialEvents: ADDED for each object, then the initial-events-end bookmark.
    let (reader, writer) = kube::runtime::reflector::store::<ConfigMap>();
    let stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).reflect(writer);
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    eventually("streamed initial state", || async {
        (reader.state().len() == 3).then_some(())
    })
    .await;
    cms.create(&PostParams::default(), &configmap("s3", &[], "0"))
        .await
        .unwrap();
    eventually("later changes", || async {
        (reader.state().len() == 4).then_some(())
    })
    .await;
    task.abort();

    // Metadata-only watches get PartialObjectMetadata.
    let mut names: Vec<String> = within(
        "metadata watcher",
        watcher(
            Api::<kube::core::PartialObjectMeta<ConfigMap>>::namespaced(client(&server), "default"),
            watcher::Config::default().labels("app=x"),
        )
        .applied_objects()
        .take(3)
        .map(|m| m.unwrap().metadata.name.unwrap())
        .collect::<Vec<_>>(),
    )
    .await;
    names.sort();
    assert_eq!(names, ["s0", "s1", "s2"]);
    let meta = cms.get_metadata("s0").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["app"], "x");
    server.shutdown().await;
}

#[tokio::test]
async fn watches_see_objects_enter_and_leave_their_selector() {
    let server = server(Config::default()).await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&server), "default");
    cms.create(
        &PostParams::default(),
        &configmap("in", &[("app", "x")], "0"),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &configmap("out", &[("app", "y")], "0"),
    )
    .await
    .unwrap();
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = kube::api::WatchParams::default()
        .labels("app=x")
        .disable_bookmarks();
    let mut stream = within("watch starts", cms.watch(&wp, &rv))
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "out",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "in",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "out",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": "1"}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = within("event", stream.next()).await.unwrap().unwrap();
        seen.push(match event {
            kube::api::WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap()),
            kube::api::WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap()),
            kube::api::WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["ADDED out", "DELETED in", "MODIFIED out"]);
    server.shutdown().await;
}
