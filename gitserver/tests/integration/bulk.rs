//! The harness's fast path: many manifest repositories at once, and a burst commit to all.

use crate::common;

use common::{Fixture, Receiver, bounded, git_in, ok};
use gitserver::forge::bulk::{self, ManifestLayout, RepoRef};
use gitserver::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CreateHookOption, PushPayload,
};

#[tokio::test]
async fn create_manifest_repositories_then_commit_to_all_of_them_at_once() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let layout = ManifestLayout {
        paths: 4,
        fleet_yaml: Some("defaultNamespace: bench\n".into()),
        private: false,
    };
    let mut repos: Vec<RepoRef> = (0..30)
        .map(|i| RepoRef::new("fleet", format!("repo-{i:03}")))
        .collect();
    repos.push(RepoRef::new("alice", "own"));
    let created = bounded(bulk::create_repos(&forge, &repos, &layout, 16))
        .await
        .unwrap();
    assert_eq!(created.len(), 31);
    assert_eq!(created[0].repository.full_name, "fleet/repo-000");
    assert_eq!(created[30].repository.full_name, "alice/own");
    assert!(created.iter().all(|c| c.head.len() == 40));

    ok(fx
        .git(&["clone", "-q", &created[5].repository.clone_url, "five"])
        .await);
    for index in 0..4 {
        let manifest =
            std::fs::read_to_string(fx.path(&format!("five/{}", bulk::manifest_path(index))))
                .unwrap();
        assert_eq!(manifest, bulk::configmap_manifest("repo-005", index, 0));
        assert!(fx.path(&format!("five/path-{index}/fleet.yaml")).exists());
    }

    // One hook a repository, so the burst's webhooks can be counted.
    let receiver = Receiver::start(0).await;
    for repo in &repos {
        bounded(forge.create_hook(
            &repo.owner,
            &repo.name,
            &CreateHookOption::push_json(receiver.url(), "s"),
        ))
        .await
        .unwrap();
    }
    let results = bounded(bulk::bump_revision(&forge, &repos, &layout, 1, repos.len())).await;
    assert_eq!(results.len(), 31);
    for (result, repo) in results.iter().zip(&repos) {
        assert_eq!(&result.repo, repo);
        let sha = result.result.as_ref().unwrap();
        assert_eq!(
            &bounded(forge.branch_head(&repo.owner, &repo.name, "main"))
                .await
                .unwrap(),
            sha
        );
    }
    let received = receiver.wait_for(31).await;
    let mut pushed: Vec<String> = received
        .iter()
        .map(|r| serde_json::from_slice::<PushPayload>(&r.body).unwrap())
        .map(|p| {
            assert_eq!(p.head_commit.unwrap().modified.unwrap().len(), 4);
            p.repository.unwrap().full_name
        })
        .collect();
    pushed.sort();
    let mut expected: Vec<String> = repos.iter().map(RepoRef::full_name).collect();
    expected.sort();
    assert_eq!(pushed, expected, "one webhook per repository");

    ok(git_in(&fx.path("five"), &["pull", "-q"]).await);
    let manifest = std::fs::read_to_string(fx.path("five/path-2/configmap.yaml")).unwrap();
    assert_eq!(manifest, bulk::configmap_manifest("repo-005", 2, 1));
}

#[tokio::test]
async fn a_burst_reports_failures_per_repository() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let layout = ManifestLayout::default();
    let existing = vec![RepoRef::new("alice", "ok")];
    bounded(bulk::create_repos(&forge, &existing, &layout, 4))
        .await
        .unwrap();
    let targets = vec![
        RepoRef::new("alice", "ok"),
        RepoRef::new("alice", "missing"),
    ];
    let results = bounded(bulk::commit_to_many(
        &forge,
        &targets,
        |repo| ChangeFilesOptions {
            files: vec![ChangeFileOperation::create(
                format!("{}.txt", repo.name),
                "x",
            )],
            ..ChangeFilesOptions::default()
        },
        2,
    ))
    .await;
    assert!(results[0].result.is_ok());
    assert!(results[1].result.as_ref().unwrap_err().is_not_found());

    // Creating a repository that exists fails with its name.
    let err = bounded(bulk::create_repos(&forge, &existing, &layout, 4))
        .await
        .unwrap_err();
    assert_eq!(err.repo, "alice/ok");
    assert_eq!(err.source.status(), Some(409));
}
