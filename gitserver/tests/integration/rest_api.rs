//! The Gitea REST subset through the forge client and raw HTTP: paths, JSON and status codes.

use crate::common;

use common::{Fixture, bounded, http};
use gitserver::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CreateAccessTokenOption, CreateHookOption,
    CreateRepoOption,
};
use gitserver::forge::{Auth, ForgeClient, ForgeError};
use serde_json::{Value, json};

#[tokio::test]
async fn version_and_current_user() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let version = bounded(forge.version()).await.unwrap().version;
    assert!(version.starts_with("1.22.3+fleetbench."), "{version}");

    let user = bounded(forge.current_user()).await.unwrap();
    assert_eq!((user.id, user.login.as_str()), (1, "alice"));
    let basic = forge.with_auth(Auth::Basic {
        user: "alice".into(),
        password: "alice-password".into(),
    });
    assert_eq!(bounded(basic.current_user()).await.unwrap().login, "alice");

    let anonymous = forge.with_auth(Auth::None);
    assert!(matches!(
        bounded(anonymous.current_user()).await,
        Err(ForgeError::Unauthorized { .. })
    ));
    let wrong = forge.with_auth(Auth::Token("nope".into()));
    assert!(matches!(
        bounded(wrong.current_user()).await,
        Err(ForgeError::Unauthorized { .. })
    ));
    // Anonymous access to the version works, as in Gitea.
    assert!(bounded(anonymous.version()).await.is_ok());
}

#[tokio::test]
async fn create_get_list_and_delete_repositories() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let option = CreateRepoOption {
        description: "demo".into(),
        auto_init: true,
        ..CreateRepoOption::named("App")
    };
    let repo = bounded(forge.create_repo(&option)).await.unwrap();
    assert_eq!(repo.full_name, "alice/App");
    assert_eq!(repo.owner.login, "alice");
    assert_eq!(repo.default_branch, "main");
    assert!(!repo.empty && !repo.private);
    assert_eq!(repo.clone_url, format!("{}/alice/App.git", fx.server.url()));
    assert_eq!(repo.html_url, format!("{}/alice/App", fx.server.url()));
    assert_eq!(
        repo.url,
        format!("{}/api/v1/repos/alice/App", fx.server.url())
    );

    // Raw HTTP: 201 and Gitea's JSON field names.
    let client = http();
    let response = bounded(
        client
            .post(format!("{}/api/v1/user/repos", fx.server.url()))
            .header("Authorization", format!("token {}", fx.server.token()))
            .json(&json!({"name": "raw", "private": true}))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    for field in [
        "id",
        "owner",
        "full_name",
        "clone_url",
        "html_url",
        "private",
        "empty",
        "default_branch",
    ] {
        assert!(body.get(field).is_some(), "missing {field}: {body}");
    }
    assert_eq!(body["private"], true);
    assert_eq!(body["empty"], true);

    // Duplicates are 409, whatever the case.
    for name in ["App", "app", "APP"] {
        let err = bounded(forge.create_repo(&CreateRepoOption::named(name)))
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Conflict { .. }), "{name}: {err}");
    }

    // Get: by any case; private ones hidden from anonymous callers.
    assert_eq!(
        bounded(forge.get_repo("ALICE", "app")).await.unwrap().id,
        repo.id
    );
    let anonymous = forge.with_auth(Auth::None);
    assert!(bounded(anonymous.get_repo("alice", "App")).await.is_ok());
    assert!(
        bounded(anonymous.get_repo("alice", "raw"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        bounded(forge.get_repo("alice", "nope"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        bounded(forge.get_repo("nobody", "App"))
            .await
            .unwrap_err()
            .is_not_found()
    );

    let mine = bounded(forge.list_my_repos()).await.unwrap();
    assert_eq!(
        mine.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["App", "raw"]
    );
    let searched = bounded(anonymous.search_repos("ap")).await.unwrap();
    assert_eq!(searched.len(), 1);

    bounded(forge.delete_repo("alice", "App")).await.unwrap();
    assert!(
        bounded(forge.get_repo("alice", "App"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        bounded(forge.delete_repo("alice", "App"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(!fx.data.path().join("alice/app.git").exists());
    // The name is free again.
    bounded(forge.create_repo(&CreateRepoOption::named("App")))
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_repository_names_are_422_like_gitea() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let long = "x".repeat(101);
    for name in [
        "",
        "..",
        ".",
        "-",
        "a b",
        "a/b",
        "../etc",
        "/abs",
        "a\\b",
        "%2e%2e",
        "x.git",
        "w.wiki",
        long.as_str(),
    ] {
        let err = bounded(forge.create_repo(&CreateRepoOption::named(name)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ForgeError::Unprocessable { .. }),
            "{name:?}: {err}"
        );
    }
    // A body that is not the expected JSON is 422 too.
    let response = bounded(
        http()
            .post(format!("{}/api/v1/user/repos", fx.server.url()))
            .header("Authorization", format!("token {}", fx.server.token()))
            .header("Content-Type", "application/json")
            .body("{not json")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string() && body["url"].is_string());
    assert!(bounded(forge.list_my_repos()).await.unwrap().is_empty());
    // Nothing but the server's own metadata file is in the data directory.
    let entries: Vec<String> = std::fs::read_dir(fx.data.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(entries, ["fleetbench-server.json"]);
}

#[tokio::test]
async fn organisations_own_repositories() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    let org = bounded(forge.ensure_org("fleet")).await.unwrap();
    assert_eq!(org.name, "fleet");
    assert_eq!(bounded(forge.ensure_org("fleet")).await.unwrap().id, org.id);
    let repo = bounded(forge.create_org_repo("fleet", &CreateRepoOption::named("r1")))
        .await
        .unwrap();
    assert_eq!(repo.owner.login, "fleet");
    assert_eq!(repo.full_name, "fleet/r1");
    assert!(fx.data.path().join("fleet/r1.git").exists());
    let listed = bounded(forge.list_org_repos("fleet")).await.unwrap();
    assert_eq!(listed.len(), 1);
    let err = bounded(forge.create_org_repo("ghosts", &CreateRepoOption::named("r")))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let dup = bounded(forge.create_org(&gitserver::forge::types::CreateOrgOption {
        username: "FLEET".into(),
        ..Default::default()
    }))
    .await
    .unwrap_err();
    assert!(matches!(dup, ForgeError::Unprocessable { .. }), "{dup}");
    let reserved = bounded(forge.ensure_org("api")).await.unwrap_err();
    assert!(
        matches!(reserved, ForgeError::Unprocessable { .. }),
        "{reserved}"
    );
}

#[tokio::test]
async fn listing_pages_like_gitea() {
    let fx = Fixture::start().await;
    let forge = fx.forge();
    for i in 0..55 {
        bounded(forge.create_repo(&CreateRepoOption::named(format!("r{i:02}"))))
            .await
            .unwrap();
    }
    let response = bounded(
        http()
            .get(format!(
                "{}/api/v1/user/repos?page=2&limit=50",
                fx.server.url()
            ))
            .header("Authorization", format!("token {}", fx.server.token()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["x-total-count"], "55");
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(page.len(), 5);
    let all = bounded(forge.list_my_repos()).await.unwrap();
    assert_eq!(all.len(), 55);
    assert_eq!(all[54].name, "r54");
}

#[tokio::test]
async fn access_tokens_are_made_with_basic_auth() {
    let fx = Fixture::start().await;
    let basic = fx.forge().with_auth(Auth::Basic {
        user: "alice".into(),
        password: "alice-password".into(),
    });
    let option = CreateAccessTokenOption {
        name: "harness".into(),
        scopes: vec!["write:repository".into(), "write:user".into()],
    };
    let token = bounded(basic.create_token("alice", &option)).await.unwrap();
    assert_eq!(token.sha1.len(), 40);
    assert_eq!(token.token_last_eight, token.sha1[32..]);
    let with_token = basic.with_auth(Auth::Token(token.sha1.clone()));
    assert_eq!(
        bounded(with_token.current_user()).await.unwrap().login,
        "alice"
    );
    // Gitea: tokens are made with a password, not with another token; names are unique.
    assert!(matches!(
        bounded(with_token.create_token("alice", &option)).await,
        Err(ForgeError::Unauthorized { .. })
    ));
    assert_eq!(
        bounded(basic.create_token("alice", &option))
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
}

#[tokio::test]
async fn hooks_are_validated_like_gitea() {
    let fx = Fixture::start().await;
    fx.create_repo("h", false, false).await;
    let forge = fx.forge();
    let good = CreateHookOption::push_json("http://127.0.0.1:9/hook", "s");
    let mut bad_type = good.clone();
    bad_type.hook_type = "slackish".into();
    let mut no_url = good.clone();
    no_url.config.remove("url");
    let mut bad_content_type = good.clone();
    bad_content_type
        .config
        .insert("content_type".into(), "xml".into());
    let mut bad_url = good.clone();
    bad_url
        .config
        .insert("url".into(), "file:///etc/passwd".into());
    for option in [bad_type, no_url, bad_content_type, bad_url] {
        let err = bounded(forge.create_hook("alice", "h", &option))
            .await
            .unwrap_err();
        assert!(matches!(err, ForgeError::Unprocessable { .. }), "{err}");
    }
    assert!(
        bounded(forge.create_hook("alice", "missing", &good))
            .await
            .unwrap_err()
            .is_not_found()
    );
    let hook = bounded(forge.create_hook("alice", "h", &good))
        .await
        .unwrap();
    assert_eq!(hook.hook_type, "gitea");
    assert_eq!(hook.config["url"], "http://127.0.0.1:9/hook");
    assert_eq!(hook.config["content_type"], "json");
    assert_eq!(hook.events, ["push"]);
    assert!(hook.active);
    assert_eq!(
        bounded(forge.list_hooks("alice", "h")).await.unwrap(),
        vec![hook.clone()]
    );
    assert!(
        bounded(forge.delete_hook("alice", "h", hook.id + 1000))
            .await
            .unwrap_err()
            .is_not_found()
    );
    bounded(forge.delete_hook("alice", "h", hook.id))
        .await
        .unwrap();
    assert!(
        bounded(forge.list_hooks("alice", "h"))
            .await
            .unwrap()
            .is_empty()
    );
    let anonymous = forge.with_auth(Auth::None);
    assert!(matches!(
        bounded(anonymous.list_hooks("alice", "h")).await,
        Err(ForgeError::Unauthorized { .. })
    ));
}

#[tokio::test]
async fn change_files_errors_follow_gitea() {
    let fx = Fixture::start().await;
    fx.create_repo("c", false, true).await;
    let forge = fx.forge();
    let commit = |files: Vec<ChangeFileOperation>| ChangeFilesOptions {
        files,
        ..ChangeFilesOptions::default()
    };
    let head_before = bounded(forge.branch_head("alice", "c", "main"))
        .await
        .unwrap();
    let cases: Vec<(ChangeFilesOptions, u16)> = vec![
        (
            commit(vec![ChangeFileOperation::create("README.md", "x")]),
            422,
        ),
        (
            commit(vec![ChangeFileOperation::update("missing.yaml", "x")]),
            404,
        ),
        (
            commit(vec![ChangeFileOperation::delete("missing.yaml", "")]),
            404,
        ),
        (
            commit(vec![ChangeFileOperation::delete(
                "README.md",
                "0".repeat(40),
            )]),
            422,
        ),
        (
            commit(vec![ChangeFileOperation::create("../outside", "x")]),
            422,
        ),
        (
            commit(vec![ChangeFileOperation::create(".git/config", "x")]),
            422,
        ),
        (
            commit(vec![ChangeFileOperation::create("a/.git/hooks/x", "x")]),
            422,
        ),
        (commit(vec![]), 422),
        (
            ChangeFilesOptions {
                branch: "nope".into(),
                ..commit(vec![ChangeFileOperation::create("x", "x")])
            },
            404,
        ),
        (
            ChangeFilesOptions {
                new_branch: "main".into(),
                branch: "main".into(),
                ..commit(vec![ChangeFileOperation::create("x", "x")])
            },
            201,
        ),
        (
            ChangeFilesOptions {
                branch: "bad..name".into(),
                ..commit(vec![ChangeFileOperation::create("y", "x")])
            },
            422,
        ),
    ];
    for (options, expected) in cases {
        let result = bounded(forge.change_files("alice", "c", &options)).await;
        let status = result
            .as_ref()
            .map_or_else(|e| e.status().unwrap(), |_| 201);
        assert_eq!(status, expected, "{options:?}: {result:?}");
    }
    let mut not_base64 = commit(vec![ChangeFileOperation::create("z", "x")]);
    not_base64.files[0].content = "!!!".into();
    let err = bounded(forge.change_files("alice", "c", &not_base64))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    // An existing new_branch is refused.
    let on_feature = ChangeFilesOptions {
        new_branch: "feature".into(),
        ..commit(vec![ChangeFileOperation::create("f1", "x")])
    };
    bounded(forge.change_files("alice", "c", &on_feature))
        .await
        .unwrap();
    let err = bounded(forge.change_files("alice", "c", &on_feature))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(422));
    let anonymous = forge.with_auth(Auth::None);
    let err = bounded(anonymous.change_files("alice", "c", &on_feature))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(
        bounded(forge.branch("alice", "c", "nope"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Only the successful commit moved main (plus the feature branch).
    let head_after = bounded(forge.branch_head("alice", "c", "main"))
        .await
        .unwrap();
    assert_ne!(head_before, head_after);
    let branch = bounded(forge.branch("alice", "c", "main")).await.unwrap();
    let commit = branch.commit.unwrap();
    assert_eq!(commit.id, head_after);
    assert_eq!(commit.added.unwrap(), vec!["x"]);
    common::fsck(fx.data.path(), "alice", "c").await;
}

#[tokio::test]
async fn create_file_is_a_single_file_commit() {
    let fx = Fixture::start().await;
    fx.create_repo("one", false, false).await;
    let forge = fx.forge();
    let options = gitserver::forge::types::CreateFileOptions {
        content: "aGk=".into(),
        message: "add hi".into(),
        ..Default::default()
    };
    let created = bounded(forge.create_file("alice", "one", "dir/hi.txt", &options))
        .await
        .unwrap();
    let content = created.content.unwrap();
    assert_eq!(content.path, "dir/hi.txt");
    assert_eq!(content.name, "hi.txt");
    assert_eq!(content.size, 2);
    assert_eq!(created.commit.unwrap().message.trim(), "add hi");
    let head = bounded(forge.branch_head("alice", "one", "main"))
        .await
        .unwrap();
    assert_eq!(head.len(), 40);
    let repo = bounded(forge.get_repo("alice", "one")).await.unwrap();
    assert!(!repo.empty);
}

#[tokio::test]
async fn a_forge_client_is_shared_across_tasks() {
    let fx = Fixture::start().await;
    let forge: ForgeClient = fx.forge();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let forge = forge.clone();
            tokio::spawn(async move {
                forge
                    .create_repo(&CreateRepoOption::named(format!("p{i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        bounded(task).await.unwrap().unwrap();
    }
    assert_eq!(bounded(forge.list_my_repos()).await.unwrap().len(), 20);
}
