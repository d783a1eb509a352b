//! Fault injection: refuse, delay, hide and restore repositories, from the library and over
//! HTTP; and the extensions client's clear failure against a server that is not ours.

use crate::common;

use std::time::{Duration, Instant};

use common::{Fixture, bounded, commit_files, failed, fsck, git_in, ok};
use gitserver::forge::{Auth, ForgeClient, ForgeError};
use gitserver::request_log::Outcome;
use gitserver::{Fault, GitService, RequestFilter};

#[tokio::test]
async fn refuse_answers_503_to_git_and_rest_until_cleared() {
    let fx = Fixture::start().await;
    fx.create_repo("r", false, true).await;
    fx.create_repo("other", false, true).await;
    let url = fx.authed_url("alice", "r");
    fx.server
        .faults()
        .set_by_name("alice/r", Fault::Refuse)
        .unwrap();

    let err = failed(fx.git(&["ls-remote", &url]).await);
    assert!(err.contains("503"), "{err}");
    let rest = bounded(fx.forge().get_repo("alice", "r"))
        .await
        .unwrap_err();
    assert!(matches!(rest, ForgeError::Unavailable { .. }), "{rest}");
    // Other repositories are unaffected.
    ok(fx
        .git(&["ls-remote", &fx.authed_url("alice", "other")])
        .await);

    let refused = fx
        .server
        .request_log()
        .query(&RequestFilter::repo("alice/r").service(GitService::UploadPackAdvertisement));
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].status, refused[0].outcome),
        (503, Outcome::Refused)
    );

    assert!(fx.server.faults().clear_by_name("alice/r"));
    ok(fx.git(&["ls-remote", &url]).await);
    bounded(fx.forge().get_repo("alice", "r")).await.unwrap();
}

#[tokio::test]
async fn missing_hides_a_repository_that_comes_back_with_its_history() {
    let fx = Fixture::start().await;
    fx.create_repo("vanish", false, false).await;
    let url = fx.authed_url("alice", "vanish");
    let local = fx.local_repo("local", &[("a", "1")]).await;
    commit_files(&local, &[("b", "2")], "second").await;
    ok(git_in(&local, &["push", "-q", &url, "main"]).await);
    let head = ok(git_in(&local, &["rev-parse", "HEAD"]).await)
        .trim()
        .to_owned();

    // Over HTTP, as the harness does when the server runs elsewhere.
    let extensions = fx.forge().extensions();
    let set = bounded(extensions.set_fault("alice", "vanish", Fault::Missing))
        .await
        .unwrap();
    assert_eq!(set.repo, "alice/vanish");
    assert_eq!(bounded(extensions.faults()).await.unwrap(), vec![set]);

    let err = failed(fx.git(&["ls-remote", &url]).await);
    assert!(err.contains("not found"), "{err}");
    failed(git_in(&local, &["push", &url, "main"]).await);
    assert!(
        bounded(fx.forge().get_repo("alice", "vanish"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        bounded(fx.forge().list_my_repos())
            .await
            .unwrap()
            .is_empty()
    );
    let hidden = fx
        .server
        .request_log()
        .query(&RequestFilter::repo("alice/vanish"));
    assert!(
        hidden
            .iter()
            .any(|e| e.status == 404 && e.outcome == Outcome::NotFound)
    );

    bounded(extensions.clear_fault("alice", "vanish"))
        .await
        .unwrap();
    assert!(bounded(extensions.faults()).await.unwrap().is_empty());
    let listed = ok(fx.git(&["ls-remote", &url]).await);
    assert!(
        listed.contains(&format!("{head}\trefs/heads/main")),
        "{listed}"
    );
    ok(fx.git(&["clone", "-q", &url, "back"]).await);
    let log = ok(git_in(&fx.path("back"), &["log", "--format=%s"]).await);
    assert_eq!(log.lines().collect::<Vec<_>>(), ["second", "initial"]);
    fsck(fx.data.path(), "alice", "vanish").await;
}

#[tokio::test]
async fn delay_slows_every_request_of_the_repository() {
    let fx = Fixture::start().await;
    fx.create_repo("slow", false, true).await;
    let url = fx.authed_url("alice", "slow");
    fx.server
        .faults()
        .set_by_name("alice/slow", Fault::delay(Duration::from_millis(400)))
        .unwrap();
    let started = Instant::now();
    ok(fx.git(&["ls-remote", &url]).await);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    bounded(fx.forge().get_repo("alice", "slow")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let entries = fx
        .server
        .request_log()
        .query(&RequestFilter::repo("alice/slow"));
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e.duration_ms >= 400.0),
        "{entries:#?}"
    );
}

#[tokio::test]
async fn fault_api_validates_its_input() {
    let fx = Fixture::start().await;
    fx.create_repo("f", false, true).await;
    let extensions = fx.forge().extensions();
    let unknown = bounded(extensions.set_fault("alice", "unknown", Fault::Refuse))
        .await
        .unwrap_err();
    assert!(unknown.is_not_found(), "{unknown}");
    let client = common::http();
    let put = |body: &'static str| {
        client
            .put(format!("{}/api/fleetbench/faults/alice/f", fx.server.url()))
            .header("Authorization", format!("token {}", fx.server.token()))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        bounded(put(r#"{"mode":"explode"}"#))
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        bounded(put(r#"{"mode":"delay"}"#)).await.unwrap().status(),
        422
    );
    assert_eq!(
        bounded(put(r#"{"mode":"delay","delay_ms":5}"#))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        fx.server
            .faults()
            .get(&gitserver::names::RepoPath::parse("alice/f").unwrap()),
        Some(Fault::Delay { delay_ms: 5 })
    );
    let anonymous = fx.forge().with_auth(Auth::None).extensions();
    let err = bounded(anonymous.set_fault("alice", "f", Fault::Refuse))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized { .. }), "{err}");
    bounded(extensions.clear_all_faults()).await.unwrap();
    assert!(fx.server.faults().list().is_empty());
    let info = bounded(extensions.info()).await.unwrap();
    assert_eq!(info.server, "fleetbench-gitserver");
    assert_eq!(info.gitea_api, gitserver::GITEA_API_VERSION);
}

#[tokio::test]
async fn request_log_over_http_filters_by_repository_time_and_service() {
    let fx = Fixture::start().await;
    fx.create_repo("a", false, true).await;
    fx.create_repo("b", false, true).await;
    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "a")])
        .await);
    let between = jiff::Timestamp::now();
    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "a")])
        .await);
    ok(fx
        .git(&["ls-remote", &fx.anonymous_url("alice", "b")])
        .await);
    // Entries land when `git http-backend` exits, a moment after the client is done.
    let log = fx.server.request_log();
    let adverts = RequestFilter::default().service(GitService::UploadPackAdvertisement);
    common::wait_for(|| (log.query(&adverts).len() == 3).then_some(())).await;
    let extensions = fx.forge().extensions();
    let a_all = bounded(extensions.requests(&RequestFilter::repo("alice/a")))
        .await
        .unwrap();
    let a_since = bounded(extensions.requests(&RequestFilter::repo("alice/a").since(between)))
        .await
        .unwrap();
    assert!(a_all.len() > a_since.len() && !a_since.is_empty());
    assert!(
        a_since
            .iter()
            .all(|e| e.time.parse::<jiff::Timestamp>().unwrap() >= between)
    );
    let all_adverts = bounded(extensions.requests(&adverts)).await.unwrap();
    assert_eq!(all_adverts.len(), 3);
    assert_eq!(
        all_adverts,
        fx.server.request_log().query(&adverts),
        "HTTP and library agree"
    );
    let response = bounded(
        common::http()
            .get(format!(
                "{}/api/fleetbench/requests?since=yesterday",
                fx.server.url()
            ))
            .header("Authorization", format!("token {}", fx.server.token()))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn extensions_fail_clearly_on_a_server_that_is_not_fleetbench() {
    // A stand-in for a real Gitea: it answers everything with its own 404.
    let app = axum::Router::new()
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "404 page not found") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = ForgeClient::new(&format!("http://{addr}"), Auth::Token("t".into())).unwrap();
    let extensions = client.extensions();
    for result in [
        bounded(extensions.info()).await.map(drop),
        bounded(extensions.set_fault("o", "r", Fault::Refuse))
            .await
            .map(drop),
        bounded(extensions.requests(&RequestFilter::default()))
            .await
            .map(drop),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, ForgeError::NotFleetbench { .. }), "{err}");
        assert!(err.to_string().contains("real Gitea"));
    }
    // Gitea calls on it are ordinary 404s.
    assert!(
        bounded(client.get_repo("o", "r"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    server.abort();
}
