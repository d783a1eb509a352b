//! A restart on the same data directory keeps repositories, organisations, hooks (with
//! their secrets) and tokens.

use crate::common;

use common::{Fixture, Receiver, bounded, commit_files, fsck, git_in, ok, start_server};
use gitserver::forge::types::{CreateAccessTokenOption, CreateHookOption, CreateRepoOption};
use gitserver::forge::{Auth, ForgeClient};
use gitserver::webhook::verify;

#[tokio::test]
async fn repositories_hooks_and_tokens_survive_a_restart() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let private = CreateRepoOption {
        private: true,
        auto_init: true,
        description: "kept".into(),
        ..CreateRepoOption::named("Kept")
    };
    let kept = bounded(forge.create_repo(&private)).await.unwrap();
    bounded(forge.ensure_org("team")).await.unwrap();
    let org_repo = bounded(forge.create_org_repo("team", &CreateRepoOption::named("shared")))
        .await
        .unwrap();
    let receiver = Receiver::start(0).await;
    let hook = bounded(forge.create_hook(
        "alice",
        "Kept",
        &CreateHookOption::push_json(receiver.url(), "persisted"),
    ))
    .await
    .unwrap();
    let basic = forge.with_auth(Auth::Basic {
        user: "alice".into(),
        password: "alice-password".into(),
    });
    let extra_token = bounded(basic.create_token(
        "alice",
        &CreateAccessTokenOption {
            name: "extra".into(),
            scopes: vec!["all".into()],
        },
    ))
    .await
    .unwrap()
    .sha1;
    ok(fx
        .git(&["clone", "-q", &fx.authed_url("alice", "Kept"), "work"])
        .await);
    let head = commit_files(&fx.path("work"), &[("a.txt", "a")], "before restart").await;
    ok(git_in(&fx.path("work"), &["push", "-q", "origin", "main"]).await);
    receiver.wait_for(1).await;
    let primary_token = fx.server.token().to_owned();

    // Restart on the same directory (a new port).
    let Fixture {
        server,
        data,
        scratch,
    } = fx;
    server.shutdown().await;
    let server = start_server(data.path()).await;
    assert_eq!(
        server.token(),
        primary_token,
        "the generated token is persisted"
    );
    let forge = server.forge_client();

    let repos = bounded(forge.list_my_repos()).await.unwrap();
    let names: Vec<&str> = repos.iter().map(|r| r.full_name.as_str()).collect();
    assert_eq!(names, ["alice/Kept", "team/shared"]);
    let again = bounded(forge.get_repo("alice", "kept")).await.unwrap();
    assert_eq!(
        (again.id, again.private, again.description.as_str()),
        (kept.id, true, "kept")
    );
    assert_eq!(again.created_at, kept.created_at);
    assert_eq!(
        bounded(forge.get_repo("team", "shared")).await.unwrap().id,
        org_repo.id
    );
    assert_eq!(
        bounded(forge.branch_head("alice", "Kept", "main"))
            .await
            .unwrap(),
        head
    );
    assert!(
        bounded(forge.with_auth(Auth::None).get_repo("alice", "Kept"))
            .await
            .unwrap_err()
            .is_not_found(),
        "still private"
    );
    let hooks = bounded(forge.list_hooks("alice", "Kept")).await.unwrap();
    assert_eq!(hooks, vec![hook.clone()]);
    let with_extra = ForgeClient::new(server.url(), Auth::Token(extra_token)).unwrap();
    assert_eq!(
        bounded(with_extra.current_user()).await.unwrap().login,
        "alice"
    );

    // The persisted hook, with its persisted secret, fires on the next push.
    let mut url = url::Url::parse(&server.clone_url("alice", "Kept")).unwrap();
    url.set_username("alice").unwrap();
    url.set_password(Some(server.token())).unwrap();
    let work = scratch.path().join("work");
    let next = commit_files(&work, &[("b.txt", "b")], "after restart").await;
    ok(git_in(&work, &["push", "-q", url.as_str(), "main"]).await);
    let received = receiver.wait_for(2).await;
    let last = &received[1];
    assert!(verify(
        b"persisted",
        &last.body,
        last.headers["x-gitea-signature"].to_str().unwrap()
    ));
    let payload: gitserver::forge::types::PushPayload = serde_json::from_slice(&last.body).unwrap();
    assert_eq!((payload.before, payload.after), (head, next));

    // New ids do not collide with old ones.
    let fresh = bounded(forge.create_repo(&CreateRepoOption::named("fresh")))
        .await
        .unwrap();
    assert!(fresh.id > hook.id && fresh.id > org_repo.id);
    fsck(data.path(), "alice", "kept").await;
    server.shutdown().await;
}

#[tokio::test]
async fn bare_repositories_put_in_the_data_directory_are_adopted() {
    let data = tempfile::tempdir().unwrap();
    // A bare repository made by hand, as an operator might copy one in.
    let seed = tempfile::tempdir().unwrap();
    ok(git_in(seed.path(), &["init", "-q", "-b", "main"]).await);
    commit_files(seed.path(), &[("x", "x")], "seeded").await;
    let bare = data.path().join("alice/seeded.git");
    ok(git_in(
        seed.path(),
        &["clone", "-q", "--bare", ".", bare.to_str().unwrap()],
    )
    .await);
    let server = start_server(data.path()).await;
    let repo = bounded(server.forge_client().get_repo("alice", "seeded"))
        .await
        .unwrap();
    assert!(!repo.private && !repo.empty);
    assert!(repo.id > 1);
    assert!(bare.join("fleetbench.json").exists());
    server.shutdown().await;
}

#[tokio::test]
async fn run_until_serves_until_the_signal_then_stops() {
    let data = tempfile::tempdir().unwrap();
    let server = start_server(data.path()).await;
    let url = format!("{}/healthz", server.url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    let client = common::http();
    assert_eq!(
        bounded(client.get(&url).send()).await.unwrap().status(),
        200
    );
    stop.send(()).unwrap();
    bounded(running).await.unwrap();
    assert!(
        bounded(client.get(&url).send()).await.is_err(),
        "no longer listening"
    );
}
