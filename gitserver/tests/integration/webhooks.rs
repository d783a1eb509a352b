//! Push webhooks: fired by `git push` and by API commits, signed, retried and recorded.

use crate::common;

use base64::Engine as _;
use common::{Fixture, Receiver, bounded, commit_files, git_in, ok, wait_for};
use gitserver::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CreateHookOption, FileOperation, PushPayload,
};
use gitserver::webhook::verify;

const SECRET: &str = "s3cret";

#[tokio::test]
async fn a_push_fires_a_signed_gitea_and_github_compatible_webhook() {
    let fx = Fixture::start().await;
    fx.create_repo("hooked", false, false).await;
    let receiver = Receiver::start(0).await;
    let hook = bounded(fx.forge().create_hook(
        "alice",
        "hooked",
        &CreateHookOption::push_json(receiver.url(), SECRET),
    ))
    .await
    .unwrap();
    assert!(
        !hook.config.contains_key("secret"),
        "Gitea never returns the secret"
    );

    let local = fx.local_repo("local", &[("a.yaml", "a: 1\n")]).await;
    let first = ok(git_in(&local, &["rev-parse", "HEAD"]).await)
        .trim()
        .to_owned();
    ok(git_in(
        &local,
        &["push", "-q", &fx.authed_url("alice", "hooked"), "main"],
    )
    .await);
    let second = commit_files(&local, &[("b.yaml", "b: 1\n")], "second commit").await;
    ok(git_in(
        &local,
        &["push", "-q", &fx.authed_url("alice", "hooked"), "main"],
    )
    .await);

    let received = receiver.wait_for(2).await;
    for delivery in &received {
        let headers = &delivery.headers;
        assert_eq!(headers["x-gitea-event"], "push");
        assert_eq!(headers["x-github-event"], "push");
        assert_eq!(headers["x-gogs-event"], "push");
        assert_eq!(headers["content-type"], "application/json");
        assert!(!headers["x-gitea-delivery"].is_empty());
        let signature = headers["x-gitea-signature"].to_str().unwrap();
        let hub = headers["x-hub-signature-256"].to_str().unwrap();
        assert_eq!(hub, format!("sha256={signature}"));
        assert!(
            verify(SECRET.as_bytes(), &delivery.body, signature),
            "right secret verifies"
        );
        assert!(verify(SECRET.as_bytes(), &delivery.body, hub));
        assert!(
            !verify(b"wrong secret", &delivery.body, signature),
            "wrong secret does not"
        );
    }

    // Deliveries run concurrently: tell the two apart by content, not arrival order.
    let mut payloads: Vec<PushPayload> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    payloads.sort_by_key(|p| p.before != "0".repeat(40));
    let new_branch = payloads[0].clone();
    assert_eq!(new_branch.ref_name, "refs/heads/main");
    assert_eq!(new_branch.before, "0".repeat(40));
    assert_eq!(new_branch.after, first);
    assert_eq!(new_branch.total_commits, 1);
    assert!(new_branch.compare_url.is_empty());
    let repository = new_branch.repository.unwrap();
    assert_eq!(repository.full_name, "alice/hooked");
    assert_eq!(repository.clone_url, fx.server.clone_url("alice", "hooked"));
    assert_eq!(new_branch.pusher.unwrap().login, "alice");
    assert_eq!(new_branch.sender.unwrap().login, "alice");

    let update = payloads[1].clone();
    assert_eq!(update.before, first);
    assert_eq!(update.after, second);
    assert_eq!(update.commits.len(), 1);
    let commit = &update.commits[0];
    assert_eq!(commit.id, second);
    assert_eq!(commit.message.trim(), "second commit");
    assert_eq!(commit.added.as_deref(), Some(&["b.yaml".to_owned()][..]));
    assert_eq!(update.head_commit.unwrap().id, second);
    assert!(
        update
            .compare_url
            .ends_with(&format!("/alice/hooked/compare/{first}...{second}"))
    );

    // Both deliveries are recorded, in the library and over HTTP.
    let deliveries = wait_for(|| {
        let d = fx.server.deliveries().query(Some("alice/hooked"), None);
        (d.len() == 2).then_some(d)
    })
    .await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.success && d.attempts == 1 && d.status == Some(200))
    );
    assert!(deliveries.iter().all(|d| d.hook_id == hook.id));
    let over_http = bounded(
        fx.forge()
            .extensions()
            .deliveries(Some("alice/hooked"), Some(hook.id)),
    )
    .await
    .unwrap();
    assert_eq!(over_http.len(), 2);
    assert!(
        over_http
            .iter()
            .any(|d| d.after == second && d.ref_name == "refs/heads/main")
    );
}

#[tokio::test]
async fn change_files_commits_are_cloneable_and_fire_the_webhook() {
    let fx = Fixture::start().await;
    fx.create_repo("api", false, false).await;
    let receiver = Receiver::start(0).await;
    bounded(fx.forge().create_hook(
        "alice",
        "api",
        &CreateHookOption::push_json(receiver.url(), SECRET),
    ))
    .await
    .unwrap();

    // Into the empty repository: the first commit of `main`.
    let options = ChangeFilesOptions {
        files: vec![
            ChangeFileOperation::create("path-0/configmap.yaml", "kind: ConfigMap\n"),
            ChangeFileOperation::create("path-1/fleet.yaml", "namespace: x\n"),
        ],
        message: "two paths".into(),
        ..ChangeFilesOptions::default()
    };
    let created = bounded(fx.forge().change_files("alice", "api", &options))
        .await
        .unwrap();
    let first = created.commit.unwrap();
    assert!(first.parents.is_empty());
    assert_eq!(created.files.len(), 2);
    let file = created.files[0].as_ref().unwrap();
    assert_eq!(file.path, "path-0/configmap.yaml");
    assert_eq!(file.entry_type, "file");
    let blob_sha = file.sha.clone();

    // Update (with the right blob sha) and delete in one commit.
    let mut update =
        ChangeFileOperation::update("path-0/configmap.yaml", "kind: ConfigMap\ndata: {}\n");
    update.sha = blob_sha;
    let options = ChangeFilesOptions {
        files: vec![update, ChangeFileOperation::delete("path-1/fleet.yaml", "")],
        ..ChangeFilesOptions::default()
    };
    let changed = bounded(fx.forge().change_files("alice", "api", &options))
        .await
        .unwrap();
    assert!(
        changed.files[1].is_none(),
        "deleted files are null, as in Gitea"
    );
    let second = changed.commit.unwrap();
    assert_eq!(second.parents[0].sha, first.sha);
    assert_eq!(
        second.message.trim(),
        "Update path-0/configmap.yaml\nDelete path-1/fleet.yaml"
    );

    ok(fx
        .git(&["clone", "-q", &fx.anonymous_url("alice", "api"), "clone"])
        .await);
    assert_eq!(
        std::fs::read_to_string(fx.path("clone/path-0/configmap.yaml")).unwrap(),
        "kind: ConfigMap\ndata: {}\n"
    );
    assert!(!fx.path("clone/path-1").exists());
    let head = ok(git_in(&fx.path("clone"), &["rev-parse", "HEAD"]).await);
    assert_eq!(head.trim(), second.sha);

    let received = receiver.wait_for(2).await;
    let mut payloads: Vec<PushPayload> = received
        .iter()
        .map(|r| {
            assert!(verify(
                SECRET.as_bytes(),
                &r.body,
                r.headers["x-gitea-signature"].to_str().unwrap()
            ));
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect();
    payloads.sort_by_key(|p| p.before != "0".repeat(40));
    assert_eq!(payloads[0].after, first.sha);
    assert_eq!(payloads[1].before, first.sha);
    assert_eq!(payloads[1].after, second.sha);
    let head_commit = payloads[1].head_commit.clone().unwrap();
    assert_eq!(head_commit.modified.unwrap(), vec!["path-0/configmap.yaml"]);
    assert_eq!(head_commit.removed.unwrap(), vec!["path-1/fleet.yaml"]);

    // The file reads back through the contents API.
    let read = bounded(
        fx.forge()
            .get_file("alice", "api", "path-0/configmap.yaml", Some("main")),
    )
    .await
    .unwrap();
    let content = base64::engine::general_purpose::STANDARD
        .decode(read.content.unwrap())
        .unwrap();
    assert_eq!(content, b"kind: ConfigMap\ndata: {}\n");
    assert_eq!(read.last_commit_sha, second.sha);
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_a_bound_and_recorded() {
    let fx = Fixture::start().await;
    fx.create_repo("flaky", false, false).await;
    // Fails twice, then accepts: the third attempt succeeds.
    let flaky = Receiver::start(2).await;
    // Always fails: four attempts (the default bound), then given up.
    let broken = Receiver::start(usize::MAX).await;
    let forge = fx.forge();
    let flaky_hook = bounded(forge.create_hook(
        "alice",
        "flaky",
        &CreateHookOption::push_json(flaky.url(), SECRET),
    ))
    .await
    .unwrap();
    let broken_hook = bounded(forge.create_hook(
        "alice",
        "flaky",
        &CreateHookOption::push_json(broken.url(), SECRET),
    ))
    .await
    .unwrap();
    // An inactive hook (Gitea's default when `active` is not sent) gets nothing.
    let silent = Receiver::start(0).await;
    let mut inactive = CreateHookOption::push_json(silent.url(), SECRET);
    inactive.active = false;
    bounded(forge.create_hook("alice", "flaky", &inactive))
        .await
        .unwrap();

    let options = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("f", "x")],
        ..ChangeFilesOptions::default()
    };
    bounded(forge.change_files("alice", "flaky", &options))
        .await
        .unwrap();

    let deliveries = wait_for(|| {
        let d = fx.server.deliveries().all();
        (d.len() == 2).then_some(d)
    })
    .await;
    let flaky_delivery = deliveries
        .iter()
        .find(|d| d.hook_id == flaky_hook.id)
        .unwrap();
    assert!(flaky_delivery.success);
    assert_eq!(flaky_delivery.attempts, 3);
    let broken_delivery = deliveries
        .iter()
        .find(|d| d.hook_id == broken_hook.id)
        .unwrap();
    assert!(!broken_delivery.success);
    assert_eq!(broken_delivery.attempts, 4);
    assert_eq!(broken_delivery.status, Some(500));
    assert_eq!(flaky.received.lock().len(), 3);
    assert_eq!(broken.received.lock().len(), 4);
    // The same delivery id on every attempt, as a receiver deduplicating by it expects.
    let ids: Vec<_> = broken
        .received
        .lock()
        .iter()
        .map(|r| r.headers["x-gitea-delivery"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    assert!(silent.received.lock().is_empty());
}

#[tokio::test]
async fn branch_filters_and_deleted_hooks_limit_deliveries() {
    let fx = Fixture::start().await;
    fx.create_repo("filtered", false, true).await;
    let receiver = Receiver::start(0).await;
    let forge = fx.forge();
    let mut only_release = CreateHookOption::push_json(receiver.url(), SECRET);
    only_release.branch_filter = "release/*".into();
    bounded(forge.create_hook("alice", "filtered", &only_release))
        .await
        .unwrap();
    let everything = bounded(forge.create_hook(
        "alice",
        "filtered",
        &CreateHookOption::push_json(receiver.url(), SECRET),
    ))
    .await
    .unwrap();

    let on_main = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("a", "a")],
        ..ChangeFilesOptions::default()
    };
    bounded(forge.change_files("alice", "filtered", &on_main))
        .await
        .unwrap();
    let release = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("b", "b")],
        new_branch: "release/1".into(),
        ..ChangeFilesOptions::default()
    };
    bounded(forge.change_files("alice", "filtered", &release))
        .await
        .unwrap();
    // main: one delivery (unfiltered hook); release/1: two.
    let received = receiver.wait_for(3).await;
    let payloads: Vec<PushPayload> = received
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let refs: Vec<&str> = payloads.iter().map(|p| p.ref_name.as_str()).collect();
    assert_eq!(refs.iter().filter(|r| **r == "refs/heads/main").count(), 1);
    assert_eq!(
        refs.iter()
            .filter(|r| **r == "refs/heads/release/1")
            .count(),
        2
    );
    let new_branch = payloads
        .iter()
        .find(|p| p.ref_name == "refs/heads/release/1")
        .unwrap();
    assert_eq!(
        new_branch.total_commits, 1,
        "only the commit new to the branch"
    );

    bounded(forge.delete_hook("alice", "filtered", everything.id))
        .await
        .unwrap();
    let hooks = bounded(forge.list_hooks("alice", "filtered"))
        .await
        .unwrap();
    assert_eq!(hooks.len(), 1);
    let update = ChangeFileOperation::update("a", "a2");
    assert_eq!(update.operation, FileOperation::Update);
    let again = ChangeFilesOptions {
        files: vec![update],
        ..ChangeFilesOptions::default()
    };
    bounded(forge.change_files("alice", "filtered", &again))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received.lock().len(),
        3,
        "no hook matches main any more"
    );
}

#[tokio::test]
async fn form_hooks_post_the_payload_field_signed_over_the_json() {
    let fx = Fixture::start().await;
    fx.create_repo("form", false, true).await;
    let receiver = Receiver::start(0).await;
    let mut option = CreateHookOption::push_json(receiver.url(), SECRET);
    option.config.insert("content_type".into(), "form".into());
    option.authorization_header = "Bearer hook-token".into();
    bounded(fx.forge().create_hook("alice", "form", &option))
        .await
        .unwrap();
    let files = ChangeFilesOptions {
        files: vec![ChangeFileOperation::create("f", "x")],
        ..ChangeFilesOptions::default()
    };
    bounded(fx.forge().change_files("alice", "form", &files))
        .await
        .unwrap();
    let received = receiver.wait_for(1).await;
    let delivery = &received[0];
    assert_eq!(
        delivery.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(delivery.headers["authorization"], "Bearer hook-token");
    let payload = url::form_urlencoded::parse(&delivery.body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    let signature = delivery.headers["x-gitea-signature"].to_str().unwrap();
    assert!(verify(SECRET.as_bytes(), payload.as_bytes(), signature));
    let parsed: PushPayload = serde_json::from_str(&payload).unwrap();
    assert_eq!(parsed.ref_name, "refs/heads/main");
}
