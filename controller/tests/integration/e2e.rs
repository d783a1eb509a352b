//! End to end: the controller in-process against the embedded apiserver and git server.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Crds, Env, NS, by_labels, configmap, eventually, spec, test_config, within};
use fleet_api::LegacySwitch;
use fleet_api::{Bundle, BundleDeployment, GitRepo, GitTarget, labels};
use fleet_controller::config::Config;
use fleet_controller::metrics::Metrics;
use fleet_controller::names;
use gitserver::Fault;
use gitserver::forge::types::CreateHookOption;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};

fn condition<'a>(repo: &'a GitRepo, type_: &str) -> Option<&'a fleet_api::Condition> {
    repo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// `(bundle, cluster) -> (uid, deploymentID)` of every BundleDeployment.
async fn deployment_ids(env: &Env) -> BTreeMap<(String, String), (String, String)> {
    env.deployment_objects()
        .await
        .into_iter()
        .map(|bd| {
            let l = bd.metadata.labels.clone().unwrap_or_default();
            (
                (l[labels::BUNDLE_NAME].clone(), l[labels::CLUSTER].clone()),
                (
                    bd.metadata.uid.clone().unwrap_or_default(),
                    bd.spec.deployment_id.unwrap_or_default(),
                ),
            )
        })
        .collect()
}

fn reconciles(metrics: &Metrics, controller: &str) -> u64 {
    ["success", "error", "requeue_after"]
        .iter()
        .map(|result| {
            metrics
                .reconcile_total
                .get_or_create(&fleet_controller::metrics::ReconcileLabels {
                    controller: controller.to_owned(),
                    result: (*result).to_owned(),
                })
                .get()
        })
        .sum()
}

/// Two paths, one with a fleet.yaml; three clusters; the GitRepo targets `env=prod`.
async fn shop(env: &Env) -> String {
    env.cluster("c1", &[("env", "prod")]).await;
    env.cluster("c2", &[("env", "dev")]).await;
    env.cluster("c3", &[("env", "prod")]).await;
    let url = env
        .repo(
            "shop",
            &[
                ("app/web/cm.yaml", &configmap("web", "1")),
                ("app/db/cm.yaml", &configmap("db", "1")),
                ("app/db/fleet.yaml", "defaultNamespace: db\n"),
                ("docs/README.md", "not deployed\n"),
            ],
        )
        .await;
    env.gitrepo(
        "shop",
        spec(
            &url,
            &["app/web", "app/db"],
            vec![by_labels(&[("env", "prod")])],
            "1s",
        ),
    )
    .await;
    url
}

#[tokio::test]
async fn a_repo_with_several_paths_becomes_bundles_and_deployments_on_the_right_clusters() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    let bundles = env.bundles("shop").await;
    assert_eq!(
        bundles.keys().collect::<Vec<_>>(),
        ["shop-app-db", "shop-app-web"]
    );
    let db = &bundles["shop-app-db"];
    assert_eq!(db.spec.options.default_namespace.as_deref(), Some("db"));
    assert_eq!(db.spec.resources.len(), 1);
    assert_eq!(db.spec.target_restrictions.len(), 1);

    // BundleDeployments live in the clusters' namespaces, named after the bundle.
    for bd in env.deployment_objects().await {
        let l = bd.metadata.labels.clone().unwrap();
        assert_eq!(
            bd.metadata.name.as_deref(),
            Some(l[labels::BUNDLE_NAME].as_str())
        );
        assert_eq!(
            bd.metadata.namespace.clone().unwrap(),
            names::cluster_namespace(NS, &l[labels::CLUSTER])
        );
        assert_eq!(l[labels::REPO_NAME], "shop");
        assert_eq!(l[labels::BUNDLE_NAMESPACE], NS);
        assert!(bd.spec.deployment_id.as_deref().unwrap().starts_with("s-"));
    }

    // The simulated agent reports; the GitRepo's status shows the commit and 4/4 ready.
    let head = within(
        "branch head",
        env.forge.branch_head("fleet", "shop", "main"),
    )
    .await
    .unwrap();
    let repo = eventually("GitRepo ready", || async {
        let repo = env.get_gitrepo("shop").await;
        let status = repo.status.clone().unwrap_or_default();
        let ready = condition(&repo, "Ready").is_some_and(|c| c.status == "True");
        let polled = status.polling_commit == head;
        if status.commit == head
            && status.display.ready_bundle_deployments == "4/4"
            && ready
            && polled
        {
            Ok(repo)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    let status = repo.status.unwrap();
    assert_eq!(status.ready_clusters, 2);
    assert_eq!(status.desired_ready_clusters, 2);
    assert_eq!(status.summary.ready, 4);
    assert_eq!(status.summary.desired_ready, 4);
    assert_eq!(status.resource_counts.ready, 4);
    assert_eq!(status.polling_commit, head);
    assert!(status.last_polling_triggered.is_some());
    assert_eq!(status.observed_generation, 1);
    assert_eq!(status.display.state, "");
    for type_ in ["Accepted", "GitPolling"] {
        assert_eq!(
            condition(&env.get_gitrepo("shop").await, type_)
                .unwrap()
                .status,
            "True",
            "{type_}"
        );
    }
    assert_eq!(
        condition(&env.get_gitrepo("shop").await, "Stalled")
            .unwrap()
            .status,
        "False"
    );

    // Bundle and Cluster status.
    let bundles: Api<Bundle> = Api::namespaced(env.client.clone(), NS);
    let web = eventually("bundle status", || async {
        let b = bundles.get("shop-app-web").await.unwrap();
        match b
            .status
            .as_ref()
            .and_then(|s| s.display.ready_clusters.clone())
        {
            Some(r) if r == "2/2" => Ok(b),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(web.status.unwrap().summary.ready, 2);
    let clusters: Api<fleet_api::Cluster> = Api::namespaced(env.client.clone(), NS);
    let c1 = eventually("cluster status", || async {
        let c = clusters.get("c1").await.unwrap();
        let s = c.status.clone().unwrap_or_default();
        if s.display.ready_bundles == "2/2" && s.ready_git_repos == 1 {
            Ok(c)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(
        c1.status.unwrap().namespace,
        names::cluster_namespace(NS, "c1")
    );
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_new_commit_updates_only_what_changed() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    let before = deployment_ids(&env).await;
    let commit = env
        .commit("shop", &[("app/web/cm.yaml", &configmap("web", "2"))], &[])
        .await;
    let bundles = eventually("bundles at the new commit", || async {
        let bundles = env.bundles("shop").await;
        if bundles
            .values()
            .all(|b| b.metadata.labels.as_ref().unwrap()[labels::COMMIT] == commit)
        {
            Ok(bundles)
        } else {
            Err("old commit label".to_owned())
        }
    })
    .await;
    assert!(
        bundles["shop-app-web"].spec.resources[0]
            .content
            .as_deref()
            .unwrap()
            .contains("\"2\"")
    );
    let after = eventually("new deploymentIDs", || async {
        let after = deployment_ids(&env).await;
        if after[&("shop-app-web".to_owned(), "c1".to_owned())].1
            != before[&("shop-app-web".to_owned(), "c1".to_owned())].1
            && after[&("shop-app-web".to_owned(), "c3".to_owned())].1
                != before[&("shop-app-web".to_owned(), "c3".to_owned())].1
        {
            Ok(after)
        } else {
            Err("web deploymentIDs unchanged".into())
        }
    })
    .await;
    // The db bundle's content did not change: same objects, same deploymentIDs.
    for cluster in ["c1", "c3"] {
        let key = ("shop-app-db".to_owned(), cluster.to_owned());
        assert_eq!(after[&key], before[&key], "{key:?}");
        let web = ("shop-app-web".to_owned(), cluster.to_owned());
        assert_eq!(
            after[&web].0, before[&web].0,
            "updated in place, not recreated"
        );
    }
    eventually("GitRepo at the new commit", || async {
        let status = env.get_gitrepo("shop").await.status.unwrap_or_default();
        if status.commit == commit {
            Ok(())
        } else {
            Err(status.commit)
        }
    })
    .await;

    // forceSyncGeneration redeploys unchanged content: new deploymentIDs everywhere.
    let before_force = deployment_ids(&env).await;
    env.patch_gitrepo_spec("shop", serde_json::json!({"forceSyncGeneration": 1}))
        .await;
    eventually("forced redeploy", || async {
        let now = deployment_ids(&env).await;
        let all_new = now.iter().all(|(k, v)| {
            before_force
                .get(k)
                .is_some_and(|b| b.1 != v.1 && b.0 == v.0)
        });
        if all_new && now.len() == 4 {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    eventually("updateGeneration", || async {
        let s = env.get_gitrepo("shop").await.status.unwrap_or_default();
        if s.update_generation == 1 {
            Ok(())
        } else {
            Err(format!("{}", s.update_generation))
        }
    })
    .await;

    // Removing a path's directory removes its Bundle and its deployments.
    env.commit("shop", &[], &["app/db/cm.yaml", "app/db/fleet.yaml"])
        .await;
    env.patch_gitrepo_spec("shop", serde_json::json!({"paths": ["app/web"]}))
        .await;
    env.wait_deployments(&[("shop-app-web", "c1"), ("shop-app-web", "c3")])
        .await;
    eventually("db bundle deleted", || async {
        let bundles = env.bundles("shop").await;
        if bundles.contains_key("shop-app-db") {
            Err("still there".into())
        } else {
            Ok(())
        }
    })
    .await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_target_edit_removes_orphans_at_once() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    let before = deployment_ids(&env).await;
    let fetches = |result: &str| {
        controller
            .metrics()
            .gitrepo_fetches
            .get_or_create(&fleet_controller::metrics::ResultLabels {
                result: result.to_owned(),
            })
            .get()
    };
    let fetched = fetches("fetched");
    env.patch_gitrepo_spec(
        "shop",
        serde_json::json!({"targets": [{"clusterName": "c1"}]}),
    )
    .await;
    env.wait_deployments(&[("shop-app-db", "c1"), ("shop-app-web", "c1")])
        .await;
    // Only the targets changed: the sync read the commit it had, without a git round trip.
    assert!(fetches("cached") >= 1);
    assert_eq!(fetches("fetched"), fetched);
    let after = deployment_ids(&env).await;
    for bundle in ["shop-app-db", "shop-app-web"] {
        let key = (bundle.to_owned(), "c1".to_owned());
        assert_eq!(
            after[&key].0, before[&key].0,
            "kept deployments are not recreated"
        );
    }
    // No legacy pass ran: the orphans went with the bundle reconcile.
    assert_eq!(
        controller
            .metrics()
            .object_writes
            .get_or_create(&fleet_controller::metrics::ObjectWriteLabels {
                resource: "bundledeployments".into(),
                verb: "delete".into(),
            })
            .get(),
        2
    );
    // A commit after the cached sync is still fetched and deployed.
    let commit = env
        .commit("shop", &[("app/web/cm.yaml", &configmap("web", "2"))], &[])
        .await;
    eventually("bundles at the commit after the edit", || async {
        let bundles = env.bundles("shop").await;
        if bundles
            .values()
            .all(|b| b.metadata.labels.as_ref().unwrap()[labels::COMMIT] == commit)
        {
            Ok(())
        } else {
            Err("old commit label".to_owned())
        }
    })
    .await;
    assert!(fetches("fetched") > fetched);
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_cluster_label_change_creates_exactly_the_new_deployments() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    shop(&env).await;
    // An unrelated GitRepo whose bundle selects on another label key.
    let other = env
        .repo("other", &[("cm.yaml", &configmap("other", "1"))])
        .await;
    env.gitrepo(
        "other",
        spec(&other, &["."], vec![by_labels(&[("team", "blue")])], "1h"),
    )
    .await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    eventually("other bundle", || async {
        if env.bundles("other").await.contains_key("other") {
            Ok(())
        } else {
            Err("missing".into())
        }
    })
    .await;
    // Let every queue drain before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = deployment_ids(&env).await;
    let bundle_reconciles = reconciles(&controller.metrics(), "bundle");

    env.label_cluster("c2", &[("env", "prod")]).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c2"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c2"),
        ("shop-app-web", "c3"),
    ])
    .await;
    let after = deployment_ids(&env).await;
    for (key, value) in &before {
        assert_eq!(after.get(key), Some(value), "{key:?} untouched");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reconciles(&controller.metrics(), "bundle") - bundle_reconciles,
        2,
        "only the two bundles selecting on `env` were reconciled"
    );
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_webhook_triggers_a_sync_and_bad_signatures_are_rejected() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    let addr = controller.addr().unwrap();
    env.cluster("c1", &[("env", "prod")]).await;
    let url = env
        .repo("hooked", &[("cm.yaml", &configmap("hooked", "1"))])
        .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook-secret", "namespace": NS},
        "stringData": {"gogs": "s3cret"}
    }))
    .unwrap();
    within("secret", secrets.create(&PostParams::default(), &secret))
        .await
        .unwrap();
    let mut gitrepo_spec = spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1h");
    gitrepo_spec.webhook_secret = "hook-secret".into();
    env.gitrepo("hooked", gitrepo_spec).await;
    env.wait_deployments(&[("hooked", "c1")]).await;
    within(
        "create hook",
        env.forge.create_hook(
            "fleet",
            "hooked",
            &CreateHookOption::push_json(format!("http://{addr}/webhook"), "s3cret"),
        ),
    )
    .await
    .unwrap();

    let commit = env
        .commit("hooked", &[("cm.yaml", &configmap("hooked", "2"))], &[])
        .await;
    // Polling is hourly: only the webhook can bring the new commit this fast.
    let repo = eventually("webhook sync", || async {
        let repo = env.get_gitrepo("hooked").await;
        let status = repo.status.clone().unwrap_or_default();
        if status.commit == commit && status.webhook_commit == commit {
            Ok(repo)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    assert!(repo.status.unwrap().last_webhook_time.is_some());
    let bundle = env.bundles("hooked").await.remove("hooked").unwrap();
    assert_eq!(bundle.metadata.labels.unwrap()[labels::COMMIT], commit);

    // Unsigned and mis-signed pushes are refused.
    let body = serde_json::json!({
        "ref": "refs/heads/main", "after": "1111111111111111111111111111111111111111",
        "repository": {"html_url": url.trim_end_matches(".git"), "clone_url": url}
    })
    .to_string();
    let http = reqwest::Client::builder()
        .timeout(common::TIMEOUT)
        .build()
        .unwrap();
    let unsigned = http
        .post(format!("http://{addr}/webhook"))
        .header("X-Gitea-Event", "push")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let missigned = http
        .post(format!("http://{addr}/webhook"))
        .header("X-Gitea-Event", "push")
        .header("X-Gitea-Signature", "00".repeat(32))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(missigned.status(), 401);
    assert_eq!(
        env.get_gitrepo("hooked")
            .await
            .status
            .unwrap()
            .webhook_commit,
        commit
    );
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fleet_webhooks_total{result=\"unauthorized\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fleet_webhooks_total{result=\"accepted\"}"),
        "{metrics}"
    );
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_repo_shows_an_error_condition_and_recovers() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    env.cluster("c1", &[("env", "prod")]).await;
    let url = env
        .repo("flaky", &[("cm.yaml", &configmap("flaky", "1"))])
        .await;
    env.git
        .faults()
        .set_by_name("fleet/flaky", Fault::Refuse)
        .unwrap();
    env.gitrepo(
        "flaky",
        spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1s"),
    )
    .await;
    let repo = eventually("error condition", || async {
        let repo = env.get_gitrepo("flaky").await;
        match condition(&repo, "GitPolling") {
            Some(c) if c.status == "False" => Ok(repo),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let polling = condition(&repo, "GitPolling").unwrap();
    assert!(polling.message.contains(&url), "{}", polling.message);
    assert!(
        polling.message.contains("check spec.repo"),
        "{}",
        polling.message
    );
    assert_eq!(condition(&repo, "Stalled").unwrap().status, "True");
    assert_eq!(condition(&repo, "Ready").unwrap().status, "False");
    assert!(repo.status.as_ref().unwrap().display.error);
    assert!(env.bundles("flaky").await.is_empty());

    env.git.faults().clear_by_name("fleet/flaky");
    env.wait_deployments(&[("flaky", "c1")]).await;
    eventually("recovered", || async {
        let repo = env.get_gitrepo("flaky").await;
        let ok = |t| condition(&repo, t).is_some_and(|c| c.status == "True");
        let stalled = condition(&repo, "Stalled").is_some_and(|c| c.status == "True");
        if ok("GitPolling")
            && ok("Accepted")
            && !stalled
            && !repo.status.as_ref().unwrap().commit.is_empty()
        {
            Ok(())
        } else {
            Err(format!("{:?}", repo.status))
        }
    })
    .await;

    // A missing branch and a malformed fleet.yaml are reported with what to fix.
    env.patch_gitrepo_spec("flaky", serde_json::json!({"branch": "nope"}))
        .await;
    eventually("bad branch", || async {
        let repo = env.get_gitrepo("flaky").await;
        match condition(&repo, "Stalled") {
            Some(c)
                if c.message.contains("branch \"nope\" not found")
                    && c.message.contains("check spec.branch") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    env.patch_gitrepo_spec("flaky", serde_json::json!({"branch": "main"}))
        .await;
    env.commit("flaky", &[("fleet.yaml", "helm: [\n")], &[])
        .await;
    eventually("bad fleet.yaml", || async {
        let repo = env.get_gitrepo("flaky").await;
        match condition(&repo, "Accepted") {
            Some(c) if c.status == "False" && c.message.starts_with("fleet.yaml: ") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The deployments of the last good commit stay.
    env.wait_deployments(&[("flaky", "c1")]).await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_controller_restarted_mid_way_converges_with_nothing_orphaned_or_missing() {
    let env = Env::start(Crds::Ours).await;
    let first = env.controller(test_config()).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    first.shutdown().await;

    // While it is down: a target edit (c3 stops matching), a new matching cluster, a new
    // commit, and a GitRepo deleted with its bundles still there.
    env.patch_gitrepo_spec(
        "shop",
        serde_json::json!({"targets": [{"clusterSelector": {"matchLabels": {"tier": "gold"}}}]}),
    )
    .await;
    env.label_cluster("c1", &[("tier", "gold")]).await;
    env.cluster("c4", &[("tier", "gold")]).await;
    let commit = env
        .commit("shop", &[("app/web/cm.yaml", &configmap("web", "3"))], &[])
        .await;

    let second = env.controller(test_config()).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c4"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c4"),
    ])
    .await;
    eventually("new commit", || async {
        let status = env.get_gitrepo("shop").await.status.unwrap_or_default();
        if status.commit == commit && status.display.ready_bundle_deployments == "4/4" {
            Ok(())
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    // The GitRepo is deleted while the controller is down: its Bundles and deployments go
    // once it is back.
    second.shutdown().await;
    env.delete_gitrepo("shop").await;
    let third = env.controller(test_config()).await;
    env.wait_deployments(&[]).await;
    eventually("bundles gone", || async {
        let n = env.bundles("shop").await.len();
        if n == 0 {
            Ok(())
        } else {
            Err(format!("{n} bundles"))
        }
    })
    .await;
    third.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn objects_written_with_fleets_own_crds_installed_work_too() {
    let env = Env::start(Crds::Fleets).await;
    // --install-crds leaves CRDs it did not install alone: Fleet's wider schemas stay.
    within(
        "install over Fleet's CRDs",
        fleet_api::install_crds(&env.client),
    )
    .await
    .unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client.clone());
    let gitrepos = within("get CRD", crds.get("gitrepos.fleet.cattle.io"))
        .await
        .unwrap();
    let schema = serde_json::to_value(&gitrepos.spec.versions[0].schema).unwrap();
    assert!(
        schema["openAPIV3Schema"]["properties"]["spec"]["properties"]
            .get("imageScanCommit")
            .is_some(),
        "Fleet's schema kept"
    );
    let controller = env.controller(test_config()).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    // Every status field the controller writes survives Fleet's schema.
    let repo = eventually("status under Fleet's schema", || async {
        let repo = env.get_gitrepo("shop").await;
        let status = repo.status.clone().unwrap_or_default();
        let polled = status.last_polling_triggered.is_some() && !status.polling_commit.is_empty();
        if status.display.ready_bundle_deployments == "4/4" && !status.commit.is_empty() && polled {
            Ok(repo)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    let status = repo.status.unwrap();
    assert!(status.last_polling_triggered.is_some());
    assert_eq!(status.summary.ready, 4);
    assert!(status.conditions.iter().any(|c| c.type_ == "GitPolling"));
    let bds: Vec<BundleDeployment> = env.deployment_objects().await;
    assert!(
        bds.iter()
            .all(|bd| bd.spec.deployment_id.is_some() && bd.spec.staged_deployment_id.is_some())
    );
    let applied = eventually("agent status", || async {
        let bds = env.deployment_objects().await;
        if bds
            .iter()
            .all(|bd| bd.status.as_ref().is_some_and(|s| s.ready))
        {
            Ok(bds)
        } else {
            Err("not ready".into())
        }
    })
    .await;
    assert!(
        applied
            .iter()
            .all(|bd| bd.status.as_ref().unwrap().applied_deployment_id == bd.spec.deployment_id)
    );
    // Bundle targetCustomizationMode is defaulted by Fleet's schema; no endless rewrites.
    let bundles: Api<Bundle> = Api::namespaced(env.client.clone(), NS);
    let before = bundles
        .get("shop-app-web")
        .await
        .unwrap()
        .metadata
        .resource_version;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = bundles.get("shop-app-web").await.unwrap();
    assert_eq!(
        after.metadata.resource_version.clone().map(|_| ()),
        before.map(|_| ())
    );
    assert_eq!(
        controller
            .metrics()
            .object_writes
            .get_or_create(&fleet_controller::metrics::ObjectWriteLabels {
                resource: "bundles".into(),
                verb: "update".into()
            })
            .get(),
        0,
        "polls of an unchanged repo rewrite nothing"
    );
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn legacy_orphan_cleanup_waits_for_the_cluster_pass() {
    let env = Env::start(Crds::Ours).await;
    let mut config: Config = test_config();
    config
        .legacy
        .insert(LegacySwitch::OrphanCleanupInClusterPass);
    config.legacy_cluster_pass_period = Duration::from_secs(3);
    let controller = env.controller(config).await;
    shop(&env).await;
    env.wait_deployments(&[
        ("shop-app-db", "c1"),
        ("shop-app-db", "c3"),
        ("shop-app-web", "c1"),
        ("shop-app-web", "c3"),
    ])
    .await;
    env.patch_gitrepo_spec(
        "shop",
        serde_json::json!({"targets": [{"clusterName": "c1"}]}),
    )
    .await;
    // The bundles follow the edit at once...
    eventually("bundles retargeted", || async {
        let bundles = env.bundles("shop").await;
        if bundles.values().all(|b| {
            b.spec
                .target_restrictions
                .first()
                .and_then(|t| t.cluster_name.as_deref())
                == Some("c1")
        }) {
            Ok(())
        } else {
            Err("old targets".into())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...but the orphans stay until the periodic pass.
    assert_eq!(
        env.deployments().await.len(),
        4,
        "orphans wait for the pass"
    );
    env.wait_deployments(&[("shop-app-db", "c1"), ("shop-app-web", "c1")])
        .await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn the_default_cluster_group_is_the_target_when_a_gitrepo_has_none() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    env.cluster("a", &[("fleet", "yes")]).await;
    env.cluster("b", &[]).await;
    env.group("default", &[("fleet", "yes")]).await;
    let url = env
        .repo("plain", &[("cm.yaml", &configmap("plain", "1"))])
        .await;
    env.gitrepo("plain", spec(&url, &[], Vec::<GitTarget>::new(), "1h"))
        .await;
    env.wait_deployments(&[("plain", "a")]).await;
    // Joining the group (a label change) adds the cluster.
    env.label_cluster("b", &[("fleet", "yes")]).await;
    env.wait_deployments(&[("plain", "a"), ("plain", "b")])
        .await;
    let groups: Api<fleet_api::ClusterGroup> = Api::namespaced(env.client.clone(), NS);
    eventually("group status", || async {
        let g = groups.get("default").await.unwrap();
        let s = g.status.unwrap_or_default();
        if s.cluster_count == 2 && s.non_ready_cluster_count == 0 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    controller.shutdown().await;
    env.shutdown().await;
}
