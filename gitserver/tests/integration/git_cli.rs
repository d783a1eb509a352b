//! Clone, fetch, ls-remote and push with the real `git` CLI and with libgit2, and what the
//! request log records of them.

use crate::common;

use common::{Fixture, bounded, commit_files, failed, git_in, ok};
use gitserver::request_log::Outcome;
use gitserver::{GitService, RequestFilter};

#[tokio::test]
async fn push_clone_ls_remote_and_fetch_with_the_git_cli_are_logged() {
    let fx = Fixture::start().await;
    // Private, so every git command authenticates (after git's anonymous first try).
    fx.create_repo("app", true, false).await;
    let local = fx.local_repo("local", &[("README.md", "hello\n")]).await;
    let url = fx.authed_url("alice", "app");
    ok(git_in(&local, &["push", "-q", &url, "main"]).await);
    let head = ok(git_in(&local, &["rev-parse", "HEAD"]).await)
        .trim()
        .to_owned();

    // ls-remote with protocol v2 and v0 see the pushed head.
    for version in ["2", "0"] {
        let out = ok(fx
            .git(&[
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                &url,
            ])
            .await);
        assert!(
            out.contains(&format!("{head}\trefs/heads/main")),
            "v{version}: {out}"
        );
    }
    ok(fx.git(&["clone", "-q", &url, "clone"]).await);
    assert_eq!(
        std::fs::read_to_string(fx.path("clone/README.md")).unwrap(),
        "hello\n"
    );

    // A second commit, then fetch from the clone.
    let second = commit_files(&local, &[("b.txt", "b")], "second").await;
    ok(git_in(&local, &["push", "-q", &url, "main"]).await);
    ok(git_in(&fx.path("clone"), &["fetch", "-q", "origin"]).await);
    let fetched = ok(git_in(&fx.path("clone"), &["rev-parse", "origin/main"]).await);
    assert_eq!(fetched.trim(), second);

    let log = fx.server.request_log();
    // An entry is recorded when `git http-backend` has exited, which can be a moment after
    // the client is done: wait until the last fetch's entries are in.
    let all = common::wait_for(|| {
        let all = log.query(&RequestFilter::repo("alice/app"));
        let adverts = all
            .iter()
            .filter(|e| {
                e.service == GitService::UploadPackAdvertisement && e.outcome == Outcome::Ok
            })
            .count();
        let fetches = all
            .iter()
            .filter(|e| e.command.as_deref() == Some("fetch"))
            .count();
        (adverts == 4 && fetches >= 2).then_some(all)
    })
    .await;
    // git asks anonymously first and authenticates after the 401 challenge.
    let (challenged, entries): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|e| e.outcome == Outcome::Unauthorized);
    assert!(
        challenged
            .iter()
            .all(|e| e.status == 401 && e.user.is_none())
    );
    assert!(challenged.iter().all(|e| matches!(
        e.service,
        GitService::UploadPackAdvertisement | GitService::ReceivePackAdvertisement
    )));
    let count = |service| entries.iter().filter(|e| e.service == service).count();
    // 2 pushes; 2 ls-remotes + clone + fetch start with an advertisement.
    assert_eq!(count(GitService::ReceivePack), 2);
    assert_eq!(count(GitService::ReceivePackAdvertisement), 2);
    assert_eq!(count(GitService::UploadPackAdvertisement), 4);
    assert!(
        count(GitService::UploadPack) >= 3,
        "v2 ls-refs and the fetches: {entries:#?}"
    );
    assert!(
        entries
            .iter()
            .all(|e| e.outcome == Outcome::Ok && e.status == 200),
        "{entries:#?}"
    );
    assert!(entries.iter().all(|e| e.user.as_deref() == Some("alice")));
    assert!(entries.iter().all(|e| e.client.starts_with("127.0.0.1:")));
    assert!(
        entries
            .windows(2)
            .all(|w| w[0].unix_nanos <= w[1].unix_nanos)
    );
    // The protocol v2 ls-remote said which command it ran.
    assert!(
        entries
            .iter()
            .any(|e| e.command.as_deref() == Some("ls-refs")
                && e.protocol.as_deref() == Some("version=2"))
    );
    assert!(
        entries
            .iter()
            .any(|e| e.command.as_deref() == Some("fetch"))
    );
    // Timestamps: RFC 3339 with nanoseconds, consistent with the Unix nanos.
    let first = &entries[0];
    let parsed: jiff::Timestamp = first.time.parse().unwrap();
    assert_eq!(parsed.as_nanosecond(), i128::from(first.unix_nanos));
    assert_eq!(
        first.time.split('.').nth(1).unwrap().len(),
        10,
        "9 digits and Z"
    );
    assert_eq!(
        log.poll_times("alice/app").len(),
        4 + challenged
            .iter()
            .filter(|e| e.service == GitService::UploadPackAdvertisement)
            .count()
    );
}

#[tokio::test]
async fn anonymous_users_read_public_repositories_only_and_never_push() {
    let fx = Fixture::start().await;
    fx.create_repo("public", false, true).await;
    fx.create_repo("private", true, true).await;

    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "public")])
        .await);
    ok(fx
        .git(&["clone", "-q", &fx.anonymous_url("alice", "public"), "pub"])
        .await);
    let err = failed(
        fx.git(&["ls-remote", &fx.anonymous_url("alice", "private")])
            .await,
    );
    assert!(
        err.contains("Authentication failed") || err.contains("could not read Username"),
        "{err}"
    );
    ok(fx
        .git(&["ls-remote", &fx.authed_url("alice", "private")])
        .await);

    // Anonymous push to a public repository is refused.
    commit_files(&fx.path("pub"), &[("x", "x")], "x").await;
    failed(git_in(&fx.path("pub"), &["push", "-q", "origin", "main"]).await);

    let log = fx.server.request_log();
    common::wait_for(|| {
        (log.query(&RequestFilter::repo("alice/private")).len() >= 2).then_some(())
    })
    .await;
    let private = log.query(&RequestFilter::repo("alice/private"));
    assert_eq!(private[0].outcome, Outcome::Unauthorized);
    assert_eq!(private[0].status, 401);
    assert!(private[0].user.is_none());
    let pushes = log
        .query(&RequestFilter::repo("alice/public").service(GitService::ReceivePackAdvertisement));
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].status, 401);
}

#[tokio::test]
async fn bad_credentials_are_refused_even_for_public_repositories() {
    let fx = Fixture::start().await;
    fx.create_repo("public", false, true).await;
    fx.create_repo("private", true, true).await;
    let client = common::http();
    let advertise = |repo: &str| {
        format!(
            "{}/alice/{repo}.git/info/refs?service=git-upload-pack",
            fx.server.url()
        )
    };
    // git sends credentials only after a challenge, so this is checked over raw HTTP.
    let wrong = bounded(
        client
            .get(advertise("public"))
            .basic_auth("alice", Some("wrong"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(wrong.headers()["www-authenticate"], "Basic realm=\"Gitea\"");
    for (user, password) in [("alice", "alice-password"), ("alice", fx.server.token())] {
        let right = bounded(
            client
                .get(advertise("private"))
                .basic_auth(user, Some(password))
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(right.status(), 200);
        assert_eq!(
            right.headers()["content-type"],
            "application/x-git-upload-pack-advertisement"
        );
    }
    // With git: a wrong password on a private repository fails.
    let mut url = url::Url::parse(&fx.anonymous_url("alice", "private")).unwrap();
    url.set_username("alice").unwrap();
    url.set_password(Some("wrong")).unwrap();
    failed(fx.git(&["ls-remote", url.as_str()]).await);
    let entries = fx
        .server
        .request_log()
        .query(&RequestFilter::repo("alice/public"));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, Outcome::Unauthorized);
}

fn git2_callbacks(user: String, token: String) -> git2::RemoteCallbacks<'static> {
    let mut callbacks = git2::RemoteCallbacks::new();
    let mut attempts = 0;
    callbacks.credentials(move |_url, _user, _allowed| {
        attempts += 1;
        if attempts > 3 {
            return Err(git2::Error::from_str("credentials rejected"));
        }
        git2::Cred::userpass_plaintext(&user, &token)
    });
    callbacks
}

#[tokio::test]
async fn libgit2_clones_lists_and_pushes() {
    let fx = Fixture::start().await;
    fx.create_repo("lib", true, true).await;
    let url = fx.server.clone_url("alice", "lib");
    let (user, token) = (fx.server.user().to_owned(), fx.server.token().to_owned());
    let clone_dir = fx.path("git2-clone");

    let pushed = bounded(tokio::task::spawn_blocking(move || {
        // ls-remote.
        let mut remote = git2::Remote::create_detached(url.as_str()).unwrap();
        let connection = remote
            .connect_auth(
                git2::Direction::Fetch,
                Some(git2_callbacks(user.clone(), token.clone())),
                None,
            )
            .unwrap();
        let heads: Vec<String> = connection
            .list()
            .unwrap()
            .iter()
            .map(|h| h.name().to_owned())
            .collect();
        assert!(heads.contains(&"refs/heads/main".to_owned()), "{heads:?}");
        drop(connection);

        // Clone, commit, push.
        let mut fetch = git2::FetchOptions::new();
        fetch.remote_callbacks(git2_callbacks(user.clone(), token.clone()));
        let repo = git2::build::RepoBuilder::new()
            .fetch_options(fetch)
            .clone(&url, &clone_dir)
            .unwrap();
        assert!(clone_dir.join("README.md").exists());
        std::fs::write(clone_dir.join("new.txt"), "via libgit2").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(std::path::Path::new("new.txt")).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let parent = repo.head().unwrap().peel_to_commit().unwrap();
        let sig = git2::Signature::now("T", "t@example.com").unwrap();
        let commit = repo
            .commit(Some("HEAD"), &sig, &sig, "via libgit2", &tree, &[&parent])
            .unwrap();
        let mut push = git2::PushOptions::new();
        push.remote_callbacks(git2_callbacks(user, token));
        repo.find_remote("origin")
            .unwrap()
            .push(&["refs/heads/main:refs/heads/main"], Some(&mut push))
            .unwrap();
        commit.to_string()
    }))
    .await
    .unwrap();

    let head = bounded(fx.forge().branch_head("alice", "lib", "main"))
        .await
        .unwrap();
    assert_eq!(head, pushed);
    let log = fx.server.request_log();
    let entries = common::wait_for(|| {
        let entries = log.query(&RequestFilter::repo("alice/lib"));
        entries
            .iter()
            .any(|e| e.service == GitService::ReceivePack)
            .then_some(entries)
    })
    .await;
    assert!(
        entries
            .iter()
            .any(|e| e.service == GitService::ReceivePack && e.outcome == Outcome::Ok)
    );
    // libgit2 speaks protocol v0/v1: no Git-Protocol header.
    assert!(entries.iter().all(|e| e.protocol.is_none()), "{entries:#?}");
}

#[tokio::test]
async fn metrics_count_requests_by_repository_service_and_code() {
    let fx = Fixture::start().await;
    fx.create_repo("m", false, true).await;
    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "m")])
        .await);
    let log = fx.server.request_log();
    common::wait_for(|| (!log.is_empty()).then_some(())).await;
    let client = common::http();
    let text = bounded(client.get(format!("{}/metrics", fx.server.url())).send())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"gitserver_requests_total{repo="alice/m",service="upload-pack-advertisement",code="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("gitserver_repositories 1"), "{text}");
    let health = bounded(client.get(format!("{}/healthz", fx.server.url())).send())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn gzip_encoded_fetch_requests_are_served() {
    let fx = Fixture::start().await;
    fx.create_repo("many", false, false).await;
    let local = fx.local_repo("local", &[("a", "a")]).await;
    // 80 branches at 80 different commits: a clone then asks for 80 objects, a request
    // over git's 1 KiB threshold for gzip-compressing upload-pack request bodies.
    for i in 0..80 {
        ok(git_in(
            &local,
            &["commit", "-q", "--allow-empty", "-m", &format!("c{i}")],
        )
        .await);
        ok(git_in(&local, &["branch", &format!("b{i:02}")]).await);
    }
    ok(git_in(
        &local,
        &["push", "-q", &fx.authed_url("alice", "many"), "--all"],
    )
    .await);
    ok(fx
        .git(&[
            "clone",
            "-q",
            "--no-single-branch",
            &fx.anonymous_url("alice", "many"),
            "clone",
        ])
        .await);
    let branches = ok(git_in(&fx.path("clone"), &["branch", "-r"]).await);
    assert_eq!(
        branches.lines().filter(|l| l.contains("origin/b")).count(),
        80
    );
    let log = fx.server.request_log();
    let fetch_posts = common::wait_for(|| {
        let posts: Vec<_> = log
            .query(&RequestFilter::repo("alice/many").service(GitService::UploadPack))
            .into_iter()
            .filter(|e| e.command.as_deref() != Some("ls-refs"))
            .collect();
        (!posts.is_empty()).then_some(posts)
    })
    .await;
    // Every protocol v2 request starts with `command=`; the server cannot read it from a
    // gzip body (it leaves that to git http-backend), so an unnamed one was compressed.
    assert!(
        fetch_posts
            .iter()
            .any(|e| e.command.is_none() && e.outcome == Outcome::Ok),
        "{fetch_posts:#?}"
    );
}
