//! The legacy switches change exactly the behaviour they name, next to the current one.

use crate::common;

use std::time::Duration;

use common::{Crds, Env, by_labels, configmap, eventually, spec, test_config};
use fleet_api::LegacySwitch;
use fleet_controller::metrics::{Metrics, ReconcileLabels};
use gitserver::{Fault, RequestFilter};

fn reconciles(metrics: &Metrics, controller: &str) -> u64 {
    ["success", "error", "requeue_after"]
        .iter()
        .map(|result| {
            metrics
                .reconcile_total
                .get_or_create(&ReconcileLabels {
                    controller: controller.to_owned(),
                    result: (*result).to_owned(),
                })
                .get()
        })
        .sum()
}

/// Polls of `repo` seen by the git server since `since` (one advertisement per ls-remote).
fn polls_since(env: &Env, repo: &str, since: jiff::Timestamp) -> usize {
    env.git
        .request_log()
        .query(&RequestFilter {
            since: Some(since),
            ..RequestFilter::repo(format!("fleet/{repo}"))
        })
        .len()
}

/// Fails the repo's polls for a while, recovers, commits: with `drop`, the GitRepo stays
/// dropped (no more requests, old commit) until its spec is edited.
async fn fail_recover_commit(drop: bool) {
    let env = Env::start(Crds::Ours).await;
    let mut config = test_config();
    if drop {
        config.legacy.insert(LegacySwitch::DropGitRepoAfterError);
    }
    let controller = env.controller(config).await;
    env.cluster("c1", &[("env", "prod")]).await;
    let url = env
        .repo("unstable", &[("cm.yaml", &configmap("unstable", "1"))])
        .await;
    env.gitrepo(
        "unstable",
        spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1s"),
    )
    .await;
    env.wait_deployments(&[("unstable", "c1")]).await;
    env.git
        .faults()
        .set_by_name("fleet/unstable", Fault::Refuse)
        .unwrap();
    eventually("a poll failed", || async {
        let repo = env.get_gitrepo("unstable").await;
        let failed = repo
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "GitPolling"))
            .is_some_and(|c| c.status == "False");
        if failed {
            Ok(())
        } else {
            Err("still polling fine".into())
        }
    })
    .await;
    env.git.faults().clear_by_name("fleet/unstable");
    let recovered_at = jiff::Timestamp::now();
    let commit = env
        .commit("unstable", &[("cm.yaml", &configmap("unstable", "2"))], &[])
        .await;
    if drop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            polls_since(&env, "unstable", recovered_at),
            0,
            "no poll after the error"
        );
        assert_ne!(
            env.get_gitrepo("unstable").await.status.unwrap().commit,
            commit
        );
        // Only an edit brings it back.
        env.patch_gitrepo_spec("unstable", serde_json::json!({"pollingInterval": "2s"}))
            .await;
    }
    eventually("the new commit is picked up", || async {
        let status = env.get_gitrepo("unstable").await.status.unwrap_or_default();
        if status.commit == commit {
            Ok(())
        } else {
            Err(status.commit)
        }
    })
    .await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_failed_poll_keeps_the_gitrepo_on_the_schedule() {
    Box::pin(fail_recover_commit(false)).await;
}

#[tokio::test]
async fn legacy_drop_gitrepo_after_error_stops_polling_until_edited() {
    Box::pin(fail_recover_commit(true)).await;
}

#[tokio::test]
async fn legacy_requeue_all_reconciles_every_bundle_on_a_label_change() {
    let env = Env::start(Crds::Ours).await;
    let mut config = test_config();
    config
        .legacy
        .insert(LegacySwitch::RequeueAllBundlesOnClusterChange);
    let controller = env.controller(config).await;
    env.cluster("c1", &[("env", "prod")]).await;
    env.cluster("c2", &[]).await;
    let url = env
        .repo(
            "many",
            &[
                ("a/cm.yaml", &configmap("a", "1")),
                ("b/cm.yaml", &configmap("b", "1")),
                ("c/cm.yaml", &configmap("c", "1")),
            ],
        )
        .await;
    env.gitrepo(
        "many",
        spec(&url, &["a", "b"], vec![by_labels(&[("env", "prod")])], "1h"),
    )
    .await;
    env.gitrepo(
        "unrelated",
        spec(&url, &["c"], vec![by_labels(&[("team", "x")])], "1h"),
    )
    .await;
    env.wait_deployments(&[("many-a", "c1"), ("many-b", "c1")])
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = reconciles(&controller.metrics(), "bundle");
    env.label_cluster("c2", &[("env", "prod")]).await;
    env.wait_deployments(&[
        ("many-a", "c1"),
        ("many-a", "c2"),
        ("many-b", "c1"),
        ("many-b", "c2"),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // All three bundles, including the one selecting on another key, and every existing
    // BundleDeployment re-written.
    assert_eq!(reconciles(&controller.metrics(), "bundle") - before, 3);
    let updates = controller
        .metrics()
        .object_writes
        .get_or_create(&fleet_controller::metrics::ObjectWriteLabels {
            resource: "bundledeployments".into(),
            verb: "update".into(),
        })
        .get();
    assert!(updates >= 2, "existing deployments re-patched: {updates}");
    controller.shutdown().await;
    env.shutdown().await;
}

/// Status writes for a GitRepo of `paths` bundles on 3 clusters while the simulated agent
/// reports every deployment.
async fn status_writes(unthrottled: bool) -> (u64, u64) {
    let env = Env::start(Crds::Ours).await;
    let mut config = test_config();
    config.status_window = Duration::from_millis(500);
    if unthrottled {
        config.legacy.insert(LegacySwitch::UnthrottledStatusWrites);
    }
    let controller = env.controller(config).await;
    for c in ["c1", "c2", "c3"] {
        env.cluster(c, &[("env", "prod")]).await;
    }
    let files: Vec<(String, String)> = (0..6)
        .map(|i| (format!("p{i}/cm.yaml"), configmap(&format!("cm{i}"), "1")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let url = env.repo("burst", &refs).await;
    let paths: Vec<String> = (0..6).map(|i| format!("p{i}")).collect();
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    env.gitrepo(
        "burst",
        spec(&url, &path_refs, vec![by_labels(&[("env", "prod")])], "1h"),
    )
    .await;
    eventually("all 18 ready", || async {
        let s = env.get_gitrepo("burst").await.status.unwrap_or_default();
        if s.display.ready_bundle_deployments == "18/18" {
            Ok(())
        } else {
            Err(s.display.ready_bundle_deployments)
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let metrics = controller.metrics();
    let issued =
        metrics.status_writes_of("gitrepos", true) + metrics.status_writes_of("bundles", true);
    let skipped =
        metrics.status_writes_of("gitrepos", false) + metrics.status_writes_of("bundles", false);
    controller.shutdown().await;
    env.shutdown().await;
    (issued, skipped)
}

#[tokio::test]
async fn throttled_status_writes_issue_far_fewer_patches_than_the_legacy_writer() {
    let (current, skipped) = Box::pin(status_writes(false)).await;
    let (legacy, legacy_skipped) = Box::pin(status_writes(true)).await;
    eprintln!(
        "GitRepo+Bundle status writes: current {current} (skipped {skipped}), legacy {legacy}"
    );
    assert_eq!(legacy_skipped, 0, "the legacy writer never skips");
    assert!(
        current * 10 <= legacy * 6,
        "at least 40% fewer: current {current}, legacy {legacy}"
    );
}
