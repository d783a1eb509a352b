//! Hostile GitRepo specs and repository content, end to end: each is refused with a
//! condition that names the field (or file) and the problem, and none reaches the
//! controller's disk, the git server at a high rate, or the API half-written.

use crate::common;

use std::time::Duration;

use common::{Crds, Env, NS, configmap, eventually, spec, test_config, within};
use fleet_api::{Condition, GitRepo, GitRepoSpec, GitTarget};
use gitserver::{GitService, RequestFilter};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, PostParams};

fn condition<'a>(repo: &'a GitRepo, type_: &str) -> Option<&'a Condition> {
    repo.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Waits until GitRepo `name` is Ready=False with `reason`; returns its Ready condition.
async fn refused(env: &Env, namespace: &str, name: &str, reason: &str) -> Condition {
    let api: Api<GitRepo> = Api::namespaced(env.client.clone(), namespace);
    eventually(&format!("{name} refused with {reason}"), || async {
        let repo = api.get(name).await.map_err(|e| e.to_string())?;
        match condition(&repo, "Ready") {
            Some(c) if c.status == "False" && c.reason == reason => Ok(c.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

async fn gitrepo_in(env: &Env, namespace: &str, name: &str, spec: GitRepoSpec) {
    let mut repo = GitRepo::new(name, spec);
    repo.metadata.namespace = Some(namespace.into());
    let api: Api<GitRepo> = Api::namespaced(env.client.clone(), namespace);
    within("create gitrepo", api.create(&PostParams::default(), &repo))
        .await
        .unwrap();
}

/// A bare repository on the local disk with one manifest, as `file://` URL.
fn local_repo(dir: &std::path::Path) -> String {
    let path = dir.join("local.git");
    let repo = git2::Repository::init_bare(&path).unwrap();
    let blob = repo.blob(configmap("local", "x").as_bytes()).unwrap();
    let mut sub = repo.treebuilder(None).unwrap();
    sub.insert("cm.yaml", blob, 0o100644).unwrap();
    let sub = sub.write().unwrap();
    let mut root = repo.treebuilder(None).unwrap();
    root.insert("app", sub, 0o040000).unwrap();
    let tree = repo.find_tree(root.write().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("refs/heads/main"), &sig, &sig, "c", &tree, &[])
        .unwrap();
    format!("file://{}", path.display())
}

#[tokio::test]
async fn local_repositories_are_refused_and_local_paths_never_reported() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = local_repo(dir.path());
    env.gitrepo("local", spec(&url, &["app"], vec![], "1m"))
        .await;
    env.gitrepo("etc", spec("/etc", &["app"], vec![], "1m"))
        .await;
    let local = refused(&env, NS, "local", "InvalidRepo").await;
    assert!(
        local.message.contains("file:// repositories are disabled"),
        "{}",
        local.message
    );
    let etc = refused(&env, NS, "etc", "InvalidRepo").await;
    assert!(
        !etc.message.contains("could not find repository"),
        "no filesystem probe: {}",
        etc.message
    );
    let repo = env.get_gitrepo("local").await;
    for type_ in ["Accepted", "Stalled"] {
        let c = condition(&repo, type_).unwrap();
        assert_eq!(c.reason, "InvalidRepo", "{type_}");
    }
    assert!(env.bundles("local").await.is_empty());
    assert!(env.bundles("etc").await.is_empty());
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn another_namespaces_cache_cannot_be_named_even_with_file_repos_allowed() {
    let env = Env::start(Crds::Ours).await;
    env.create_namespace("tenant-b").await;
    let cache = tempfile::tempdir().unwrap();
    let mut config = test_config();
    config.git_cache_dir = Some(cache.path().to_path_buf());
    config.allow_file_repos = true;
    let controller = env.controller(config).await;
    let url = env
        .repo(
            "private",
            &[("app/cm.yaml", &configmap("secret", "s3cret"))],
        )
        .await;
    env.gitrepo("private", spec(&url, &["app"], vec![], "1m"))
        .await;
    eventually("private synced", || async {
        let bundles = env.bundles("private").await;
        if bundles.is_empty() {
            Err("no bundle yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    // The cache directory name used to be `<namespace>-<hash of namespace/name>`, computable
    // by anyone; now nothing in the cache root carries the namespace or that hash.
    let old_name = format!(
        "{NS}-{}",
        fleet_controller::names::key_hash(&format!("{NS}/private"))
    );
    let entries: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|e| !e.contains(NS) && *e != old_name),
        "{entries:?}"
    );
    for entry in &entries {
        let path = cache.path().join(entry);
        if path.is_dir() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{entry}");
        }
    }
    let guessed = format!("file://{}", cache.path().join(&old_name).display());
    gitrepo_in(
        &env,
        "tenant-b",
        "steal",
        spec(&guessed, &["app"], vec![], "1m"),
    )
    .await;
    refused(&env, "tenant-b", "steal", "Error").await;
    let api: Api<fleet_api::Bundle> = Api::namespaced(env.client.clone(), "tenant-b");
    let bundles = api.list(&Default::default()).await.unwrap();
    assert!(
        bundles.items.is_empty(),
        "no Bundle from another tenant's cache"
    );
    // A deleted GitRepo's cache goes with it.
    let dirs = |root: &std::path::Path| {
        std::fs::read_dir(root)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    // `private`'s, and the one the refused `steal` fetched into.
    assert_eq!(dirs(cache.path()), 2);
    env.delete_gitrepo("private").await;
    eventually("the deleted GitRepo's cache is removed", || async {
        match dirs(cache.path()) {
            1 => Ok(()),
            n => Err(format!("{n} directories")),
        }
    })
    .await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn invalid_polling_intervals_are_refused_naming_the_value() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    let url = env
        .repo("intervals", &[("app/cm.yaml", &configmap("a", "1"))])
        .await;
    for (name, value) in [("abc", "abc"), ("negative", "-5s"), ("zero", "0s")] {
        env.gitrepo(name, spec(&url, &["app"], vec![], value)).await;
    }
    for (name, value) in [("abc", "abc"), ("negative", "-5s"), ("zero", "0s")] {
        let ready = refused(&env, NS, name, "InvalidPollingInterval").await;
        assert!(
            ready
                .message
                .starts_with(&format!("spec.pollingInterval {value:?} is invalid")),
            "{}",
            ready.message
        );
        let stalled = condition(&env.get_gitrepo(name).await, "Stalled")
            .cloned()
            .unwrap();
        assert_eq!(stalled.status, "True");
        assert!(
            env.bundles(name).await.is_empty(),
            "{name}: nothing deployed"
        );
    }
    // Fixing the value brings the GitRepo back.
    env.patch_gitrepo_spec("abc", serde_json::json!({"pollingInterval": "1m"}))
        .await;
    eventually("fixed GitRepo syncs", || async {
        let bundles = env.bundles("abc").await;
        if bundles.is_empty() {
            Err("no bundle".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn intervals_below_the_floor_are_raised_and_reported() {
    let env = Env::start(Crds::Ours).await;
    let mut config = test_config();
    config.min_polling_interval = Duration::from_secs(1);
    let controller = env.controller(config).await;
    let url = env
        .repo("storm", &[("app/cm.yaml", &configmap("a", "1"))])
        .await;
    env.gitrepo("storm", spec(&url, &["app"], vec![], "1ns"))
        .await;
    let polling = eventually("GitPolling reports the raised interval", || async {
        let repo = env.get_gitrepo("storm").await;
        match condition(&repo, "GitPolling") {
            Some(c) if c.reason == "PollingIntervalRaised" => Ok(c.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(polling.status, "True");
    assert!(
        polling.message.contains("\"1ns\"") && polling.message.contains("minimum of 1s"),
        "{}",
        polling.message
    );
    let log = env.git.request_log();
    let filter = RequestFilter::repo(format!("{}/storm", env.git.user()))
        .service(GitService::UploadPackAdvertisement);
    let before = log.query(&filter).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = log.query(&filter).len() - before;
    // At most one poll per second (plus jitter slack); a 1ns interval used to make hundreds.
    assert!(during <= 6, "{during} ls-remotes in 3s");
    controller.shutdown().await;
    env.shutdown().await;
}

fn selector(key: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(key.to_owned(), "x".to_owned())].into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn malformed_targets_are_reported_on_the_gitrepo() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    let url = env
        .repo("targets", &[("app/cm.yaml", &configmap("a", "1"))])
        .await;
    let bad_key = vec![GitTarget {
        name: Some("prod".into()),
        cluster_selector: Some(selector("a b/c!")),
        ..Default::default()
    }];
    let bad_name = vec![
        GitTarget {
            cluster_group: Some("default".into()),
            ..Default::default()
        },
        GitTarget {
            cluster_name: Some("../../x".into()),
            ..Default::default()
        },
    ];
    env.gitrepo("badkey", spec(&url, &["app"], bad_key, "1m"))
        .await;
    env.gitrepo("badname", spec(&url, &["app"], bad_name, "1m"))
        .await;
    let key = refused(&env, NS, "badkey", "InvalidTarget").await;
    assert!(
        key.message.starts_with(
            "spec.targets[0] (name \"prod\"): clusterSelector: invalid label key \"a b/c!\""
        ),
        "{}",
        key.message
    );
    let name = refused(&env, NS, "badname", "InvalidTarget").await;
    assert!(
        name.message
            .starts_with("spec.targets[1]: clusterName \"../../x\""),
        "{}",
        name.message
    );
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn oversized_content_is_refused_naming_the_file_and_nothing_is_written() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    // Over the Bundle limit, yet under the embedded apiserver's 3 MiB request limit: only
    // the controller's own check stops it.
    // (The git server's API takes the file base64-encoded in a JSON body of at most 2 MB.)
    let big = "#".repeat(1_100_000);
    let url = env
        .repo(
            "big",
            &[
                ("ok/cm.yaml", &configmap("a", "1")),
                ("huge/fleet.yaml", &big),
                ("huge/cm.yaml", &configmap("b", "1")),
            ],
        )
        .await;
    env.gitrepo("big", spec(&url, &["ok", "huge"], vec![], "1m"))
        .await;
    let ready = refused(&env, NS, "big", "BundleTooLarge").await;
    assert!(
        ready
            .message
            .starts_with("huge/fleet.yaml is 1100000 bytes, over the 1048576-byte limit"),
        "{}",
        ready.message
    );
    assert!(
        env.bundles("big").await.is_empty(),
        "not even the small path's Bundle"
    );
    controller.shutdown().await;
    env.shutdown().await;
}
