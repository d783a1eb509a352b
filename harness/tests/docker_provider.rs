//! The docker provider against the real Docker engine: this project's images started with
//! testcontainers on a private network, reached from the host with kube-rs and the forge
//! client, a downstream cluster partitioned and healed, the controller stopped and
//! restarted, and nothing left behind afterwards (also after a panic or an early return).
//!
//! Needs a Docker engine and the images `make images` builds. Without them every test
//! passes after printing `SKIPPED (docker provider): <why>` with what to do, so the
//! workspace's tests still run on machines without Docker; under CI (`CI` set) they fail
//! instead, since a skipped check is not a passed one.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use fleetbench::provider::docker::cleanup::{self, Selector};
use fleetbench::provider::docker::containers::free_local_port;
use fleetbench::provider::docker::engine::{self, CLIENT_API_VERSION, Engine};
use fleetbench::provider::docker::images::{self, ComponentImage, ImageSet};
use fleetbench::provider::docker::kubeconfig;
use fleetbench::provider::docker::run::{RUN_LABEL, RunId};
use fleetbench::provider::docker::{ClusterName, DockerEnvironment, DockerError, DockerSettings};
use gitserver::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CreateHookOption, CreateRepoOption,
};
use gitserver::forge::{Auth, ForgeClient};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use testcontainers::core::IntoContainerPort as _;
use testcontainers::core::wait::HttpWaitStrategy;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{GenericImage, ImageExt as _, core::WaitFor};

/// Bound on any single network step of these tests.
const STEP: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {STEP:?}"))
}

/// The engine, when there is one with the images; `None` after saying why not.
async fn engine_with_images() -> Option<Engine> {
    let engine = match engine::preflight().await {
        Ok(engine) => engine,
        Err(error) => {
            common::skip_or_fail("docker provider", &fleetbench::error_text(&error));
            return None;
        }
    };
    let set = ImageSet::from_env();
    if let Err(error) = images::require(&engine.docker, &set.all(), images::BUILD_REMEDY).await {
        common::skip_or_fail("docker provider", &fleetbench::error_text(&error));
        return None;
    }
    Some(engine)
}

fn settings() -> DockerSettings {
    DockerSettings {
        startup_timeout: Duration::from_secs(60),
        ..DockerSettings::default()
    }
}

async fn leftovers(engine: &Engine, run: &RunId) -> cleanup::Leftovers {
    cleanup::find(&engine.docker, &Selector::Run(run.clone()))
        .await
        .expect("engine lists labelled objects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testcontainers_client_talks_to_this_engine() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    // testcontainers' client is built for API 1.52 and does not negotiate; this engine may
    // be older. Starting, stopping and restarting one of our containers through it is the
    // proof that its (unversioned) requests are understood here.
    eprintln!(
        "engine {} speaks API {} (min {:?}); testcontainers' client is built for {}",
        engine.info.engine_version,
        engine.info.api_version,
        engine.info.min_api_version,
        CLIENT_API_VERSION
    );
    let run = RunId::random();
    let port = free_local_port().expect("port");
    let set = ImageSet::from_env();
    let container = bounded(
        "starting the apiserver image through testcontainers",
        GenericImage::new(
            ComponentImage::Apiserver.repository(),
            set.tag().to_string(),
        )
        .with_wait_for(WaitFor::http(
            HttpWaitStrategy::new("/readyz")
                .with_port(6443.tcp())
                .with_expected_status_code(200_u16),
        ))
        .with_label(RUN_LABEL, run.as_str())
        .with_mapped_port(port, 6443.tcp())
        .start(),
    )
    .await
    .expect("testcontainers starts our image on this engine");
    assert!(container.is_running().await.expect("inspect"));
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let answer = bounded("readyz", reqwest::get(&readyz))
        .await
        .expect("answers");
    assert!(answer.status().is_success());
    bounded("stop", container.stop_with_timeout(Some(5)))
        .await
        .expect("stops");
    assert!(!container.is_running().await.expect("inspect"));
    bounded("start", container.start())
        .await
        .expect("starts again");
    assert!(container.is_running().await.expect("inspect"));
    bounded("rm", container.rm()).await.expect("removed");
    assert!(leftovers(&engine, &run).await.is_empty());
}

/// Commits a change to `owner/repo` and returns when the push's webhook delivery is
/// recorded, with whether it got an HTTP answer (any status) from its target.
async fn push_and_probe(
    forge: &ForgeClient,
    owner: &str,
    repo: &str,
    revision: u32,
) -> Option<u16> {
    let before = forge
        .extensions()
        .deliveries(Some(&format!("{owner}/{repo}")), None)
        .await
        .expect("deliveries")
        .len();
    bounded(
        "commit",
        forge.change_files(
            owner,
            repo,
            &ChangeFilesOptions {
                files: vec![ChangeFileOperation::create(
                    format!("probe-{revision}.txt"),
                    format!("{revision}\n"),
                )],
                message: format!("probe {revision}"),
                ..Default::default()
            },
        ),
    )
    .await
    .expect("committed");
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let deliveries = forge
            .extensions()
            .deliveries(Some(&format!("{owner}/{repo}")), None)
            .await
            .expect("deliveries");
        if deliveries.len() > before {
            let last = deliveries.last().expect("one more");
            eprintln!(
                "delivery to {}: status {:?}, error {:?}, {} attempt(s)",
                last.url, last.status, last.error, last.attempts
            );
            return last.status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no delivery recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_git_and_a_downstream_cluster_on_a_private_network() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    let mut env = bounded("create", DockerEnvironment::create(settings()))
        .await
        .expect("environment");
    let run = env.run().clone();
    let network = env.network().to_string();

    // The management cluster, from the host, with its own (token) kubeconfig.
    let management = bounded("management", env.start_management())
        .await
        .expect("management cluster starts");
    assert_eq!(
        kubeconfig::server_of(&management.kubeconfig_network).expect("server"),
        format!("http://fleetbench-{run}-mgmt:6443")
    );
    let mgmt = kubeconfig::client(&management.kubeconfig_host)
        .await
        .expect("client");
    let namespaces: Api<Namespace> = Api::all(mgmt.clone());
    bounded(
        "create namespace",
        namespaces.create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("fleet-default".to_string()),
                    ..Default::default()
                },
                ..Default::default()
            },
        ),
    )
    .await
    .expect("kube-rs writes to the management cluster from the host");

    // The git server, from the host, through the forge client.
    let git = bounded("git server", env.start_gitserver())
        .await
        .expect("git server starts");
    let forge = ForgeClient::new(
        &git.endpoint.host_url,
        Auth::Basic {
            user: git.user.clone(),
            password: git.password.clone(),
        },
    )
    .expect("forge client");
    let owner = git.user.clone();
    bounded(
        "create repo",
        forge.create_repo(&CreateRepoOption {
            auto_init: true,
            ..CreateRepoOption::named("probe")
        }),
    )
    .await
    .expect("repo created in the container");
    // Smart HTTP through the container's git http-backend (with the host's git).
    let mut clone_url = reqwest::Url::parse(&forge.clone_url(&owner, "probe")).expect("url");
    clone_url.set_username(&git.user).expect("user");
    clone_url
        .set_password(Some(&git.password))
        .expect("password");
    let listed = bounded(
        "git ls-remote",
        tokio::process::Command::new("git")
            .args(["ls-remote", clone_url.as_str(), "refs/heads/main"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .output(),
    )
    .await
    .expect("git runs");
    assert!(
        listed.status.success(),
        "git ls-remote through the container failed: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("refs/heads/main"));

    // A downstream cluster, reachable from the host...
    let east: ClusterName = "east".parse().expect("valid");
    let downstream = bounded("downstream", env.add_downstream(east.clone()))
        .await
        .expect("downstream cluster starts");
    let downstream_network_url = downstream.endpoint.network_url.clone();
    assert_eq!(
        kubeconfig::server_of(&downstream.kubeconfig_local).expect("server"),
        "http://127.0.0.1:6443"
    );
    let secret = downstream.kubeconfig_secret("fleet-default");
    assert_eq!(secret.metadata.name.as_deref(), Some("east-kubeconfig"));
    let ds = kubeconfig::client(&downstream.kubeconfig_host)
        .await
        .expect("client");
    let configmaps: Api<ConfigMap> = Api::namespaced(ds.clone(), "default");
    let configmap = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    bounded(
        "create configmap",
        configmaps.create(&PostParams::default(), &configmap("before")),
    )
    .await
    .expect("kube-rs writes to the downstream cluster from the host");
    // ... and from the git server's container, by name on the private network: a webhook
    // aimed at the downstream API gets an HTTP answer.
    let hook = CreateHookOption::push_json(format!("{downstream_network_url}/healthz"), "s3cret");
    bounded("create hook", forge.create_hook(&owner, "probe", &hook))
        .await
        .expect("hook");
    let status = push_and_probe(&forge, &owner, "probe", 1).await;
    assert!(
        status.is_some(),
        "the git server cannot reach {downstream_network_url}"
    );

    // Partition: the downstream cluster is off the network, for the git server and the host.
    bounded("partition", env.partition(&east))
        .await
        .expect("partitioned");
    assert!(!env.is_connected(&east).await.expect("inspect"));
    let status = push_and_probe(&forge, &owner, "probe", 2).await;
    assert_eq!(
        status, None,
        "the partitioned cluster still answered in-network"
    );
    let cut = tokio::time::timeout(
        Duration::from_secs(10),
        configmaps.create(&PostParams::default(), &configmap("during")),
    )
    .await;
    assert!(
        !matches!(cut, Ok(Ok(_))),
        "the partitioned cluster still answered the host"
    );
    // The management cluster is unaffected.
    bounded("list namespaces", namespaces.list(&Default::default()))
        .await
        .expect("management still reachable");

    // Heal: both paths work again and the data is intact.
    bounded("heal", env.heal(&east)).await.expect("healed");
    assert!(env.is_connected(&east).await.expect("inspect"));
    let status = push_and_probe(&forge, &owner, "probe", 3).await;
    assert!(
        status.is_some(),
        "the healed cluster is not reachable in-network"
    );
    let ds = kubeconfig::client(&env.downstream(&east).expect("east").kubeconfig_host)
        .await
        .expect("client");
    let configmaps: Api<ConfigMap> = Api::namespaced(ds, "default");
    bounded("get configmap", configmaps.get("before"))
        .await
        .expect("the downstream cluster kept its objects across the partition");

    let removed = Box::pin(bounded("teardown", env.teardown()))
        .await
        .expect("teardown");
    assert!(removed.networks.contains(&network), "{removed}");
    assert!(leftovers(&engine, &run).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_container_stops_and_restarts() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    let mut env = bounded("create", DockerEnvironment::create(settings()))
        .await
        .expect("environment");
    let run = env.run().clone();
    bounded("management", env.start_management())
        .await
        .expect("management cluster");
    let args = [
        "--install-crds".to_string(),
        "--agent".to_string(),
        "none".to_string(),
    ];
    let controller = bounded(
        "controller",
        env.start_controller(&args, &BTreeMap::new(), None),
    )
    .await
    .expect("controller starts and becomes ready");
    let metrics = format!("http://{}/metrics", controller.host_address);
    let text = bounded("metrics", async {
        reqwest::get(&metrics)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body")
    })
    .await;
    // OpenMetrics text (families appear as the controller works; the terminator is always
    // there).
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    // The CRDs it installed are in the management cluster.
    let mgmt = kubeconfig::client(&env.management().expect("mgmt").kubeconfig_host)
        .await
        .expect("client");
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(mgmt);
    bounded("crd", crds.get("gitrepos.fleet.cattle.io"))
        .await
        .expect("the controller installed Fleet's CRDs");

    bounded("stop", env.stop_controller(Duration::from_secs(10)))
        .await
        .expect("stopped");
    let down = tokio::time::timeout(Duration::from_secs(5), reqwest::get(&metrics)).await;
    assert!(!matches!(down, Ok(Ok(_))), "a stopped controller answered");
    bounded("restart", env.restart_controller())
        .await
        .expect("restarted and ready");
    let after = bounded("metrics", reqwest::get(&metrics))
        .await
        .expect("answers");
    assert!(after.status().is_success());
    Box::pin(bounded("teardown", env.teardown()))
        .await
        .expect("teardown");
    assert!(leftovers(&engine, &run).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_leaves_nothing_behind() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut env = DockerEnvironment::create(settings())
            .await
            .expect("environment");
        env.start_management().await.expect("management cluster");
        sender.send(env.run().clone()).expect("test waits");
        panic!("a suite step panicked with containers running");
    });
    let outcome = bounded("task", task).await;
    assert!(outcome.expect_err("it panicked").is_panic());
    let run = receiver.await.expect("run id sent before the panic");
    let left = leftovers(&engine, &run).await;
    assert!(left.is_empty(), "left behind after a panic: {left}");
}

async fn fails_midway(run_id: &mut Option<RunId>) -> Result<(), DockerError> {
    let mut env = DockerEnvironment::create(settings()).await?;
    *run_id = Some(env.run().clone());
    env.start_gitserver().await?;
    // Starting an agent for a cluster that does not exist is an error: the early return
    // drops the environment with the git server running.
    env.start_agent(&"nowhere".parse().expect("valid"), "fleet-default")
        .await?;
    unreachable!("start_agent must fail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_return_leaves_nothing_behind() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    let mut run = None;
    let error = bounded("fails", fails_midway(&mut run))
        .await
        .expect_err("fails midway");
    assert!(
        matches!(
            error,
            DockerError::NotStarted(_) | DockerError::UnknownCluster(_)
        ),
        "{error}"
    );
    let run = run.expect("environment was created");
    let left = leftovers(&engine, &run).await;
    assert!(left.is_empty(), "left behind after an early return: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_a_run_by_label_alone() {
    let Some(engine) = engine_with_images().await else {
        return;
    };
    let mut env = bounded("create", DockerEnvironment::create(settings()))
        .await
        .expect("environment");
    let run = env.run().clone();
    bounded("management", env.start_management())
        .await
        .expect("management cluster");
    // As if the process had been killed: nothing of the environment runs its cleanup.
    std::mem::forget(env);
    let before = leftovers(&engine, &run).await;
    assert_eq!(before.containers.len(), 1, "{before}");
    assert_eq!(before.networks.len(), 1, "{before}");
    let removed = bounded(
        "sweep",
        cleanup::sweep(&engine.docker, &Selector::Run(run.clone())),
    )
    .await
    .expect("swept");
    assert_eq!(removed, before);
    assert!(leftovers(&engine, &run).await.is_empty());
}
