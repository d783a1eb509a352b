//! The apply agent (in the controller and standalone) against a second, downstream apiserver;
//! the simulated agent's failures; private repositories with basic-auth credentials.

use crate::common;

use std::time::Duration;

use apiserver::ApiServer;
use common::{Crds, Env, NS, by_labels, configmap, eventually, spec, test_config, within};
use fleet_api::{Cluster, ClusterSpec};
use fleet_controller::config::AgentMode;
use fleet_controller::store::Key;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

async fn kubeconfig_secret(env: &Env, name: &str, kubeconfig: &str) {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "stringData": {"value": kubeconfig}
    }))
    .unwrap();
    within(
        "kubeconfig secret",
        secrets.create(&PostParams::default(), &secret),
    )
    .await
    .unwrap();
}

fn downstream_client(server: &apiserver::RunningApiServer) -> kube::Client {
    kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap()
}

#[tokio::test]
async fn the_apply_agent_deploys_manifests_to_the_downstream_cluster_and_reports_back() {
    let env = Env::start(Crds::Ours).await;
    let downstream = within("downstream", ApiServer::start(apiserver::Config::default()))
        .await
        .unwrap();
    kubeconfig_secret(&env, "c1-kubeconfig", &downstream.kubeconfig_yaml()).await;
    let mut cluster = Cluster::new(
        "c1",
        ClusterSpec {
            kube_config_secret: Some("c1-kubeconfig".into()),
            ..Default::default()
        },
    );
    cluster.metadata.namespace = Some(NS.into());
    cluster.metadata.labels = Some(common::to_map(&[("env", "prod")]));
    let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), NS);
    within("cluster", clusters.create(&PostParams::default(), &cluster))
        .await
        .unwrap();

    let mut config = test_config();
    config.agent = AgentMode::Apply;
    let controller = env.controller(config).await;
    let two_docs = format!("{}---\n{}", configmap("one", "1"), configmap("two", "2"));
    let url = env
        .repo(
            "real",
            &[
                ("cms.yaml", two_docs.as_str()),
                (
                    "fleet.yaml",
                    "defaultNamespace: apps\nyaml:\n  overlays: [prod]\n",
                ),
                (
                    "overlays/prod/cms_patch.yaml",
                    "data:\n  value: \"patched\"\n",
                ),
            ],
        )
        .await;
    env.gitrepo(
        "real",
        spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1s"),
    )
    .await;

    let downstream_cms: Api<ConfigMap> = Api::namespaced(downstream_client(&downstream), "apps");
    let one = eventually("ConfigMap applied downstream", || async {
        downstream_cms.get("one").await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(
        one.data.unwrap()["value"],
        "patched",
        "the overlay patch applies to the first document"
    );
    let two = within("second", downstream_cms.get("two")).await.unwrap();
    assert_eq!(two.data.unwrap()["value"], "2");
    assert!(
        one.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some("fleet-agent")),
        "server-side applied by the agent"
    );

    let bd = eventually("BundleDeployment ready", || async {
        let bd = env
            .deployment_objects()
            .await
            .into_iter()
            .next()
            .ok_or("no deployment")?;
        let status = bd.status.clone().unwrap_or_default();
        if status.ready && status.applied_deployment_id == bd.spec.deployment_id {
            Ok(bd)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
    let status = bd.status.unwrap();
    assert_eq!(status.resource_counts.desired_ready, 2);
    assert_eq!(status.resource_counts.ready, 2);
    eventually("GitRepo resource counts", || async {
        let s = env.get_gitrepo("real").await.status.unwrap_or_default();
        if s.resource_counts.ready == 2 && s.display.ready_bundle_deployments == "1/1" {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;

    // An object the downstream API rejects shows as an error on the deployment.
    env.commit(
        "real",
        &[(
            "bad.yaml",
            "apiVersion: example.com/v1\nkind: Unknown\nmetadata:\n  name: x\n",
        )],
        &[],
    )
    .await;
    eventually("ErrApplied", || async {
        let bd = env
            .deployment_objects()
            .await
            .into_iter()
            .next()
            .ok_or("no deployment")?;
        let status = bd.status.unwrap_or_default();
        let deployed = status.conditions.iter().find(|c| c.type_ == "Deployed");
        match deployed {
            Some(c) if c.status == "False" && c.message.contains("Unknown") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    controller.shutdown().await;
    downstream.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn a_standalone_agent_serves_its_one_cluster() {
    let env = Env::start(Crds::Ours).await;
    let downstream = within("downstream", ApiServer::start(apiserver::Config::default()))
        .await
        .unwrap();
    env.cluster("edge", &[("env", "prod")]).await;
    env.cluster("other", &[("env", "prod")]).await;
    let mut config = test_config();
    config.agent = AgentMode::None;
    let controller = env.controller(config).await;
    let url = env
        .repo("edgeapp", &[("cm.yaml", &configmap("edge-cm", "1"))])
        .await;
    env.gitrepo(
        "edgeapp",
        spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1h"),
    )
    .await;
    env.wait_deployments(&[("edgeapp", "edge"), ("edgeapp", "other")])
        .await;

    let cancel = CancellationToken::new();
    let agent = tokio::spawn(fleet_controller::agent::apply::run_standalone(
        env.client.clone(),
        downstream_client(&downstream),
        Key::new(NS, "edge"),
        2,
        cancel.clone(),
    ));
    let cms: Api<ConfigMap> = Api::namespaced(downstream_client(&downstream), "default");
    eventually("applied by the standalone agent", || async {
        cms.get("edge-cm").await.map_err(|e| e.to_string())
    })
    .await;
    let states = eventually("only its cluster reports", || async {
        let mut states: Vec<(String, bool)> = env
            .deployment_objects()
            .await
            .iter()
            .map(|bd| {
                (
                    bd.metadata.labels.as_ref().unwrap()["fleet.cattle.io/cluster"].clone(),
                    bd.status.as_ref().is_some_and(|s| s.ready),
                )
            })
            .collect();
        states.sort();
        if states == [("edge".to_owned(), true), ("other".to_owned(), false)] {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    assert_eq!(states.len(), 2);
    let clusters: Api<Cluster> = Api::namespaced(env.client.clone(), NS);
    eventually("heartbeat", || async {
        let c = clusters.get("edge").await.map_err(|e| e.to_string())?;
        if c.status.and_then(|s| s.agent.last_seen).is_some() {
            Ok(())
        } else {
            Err("no lastSeen".into())
        }
    })
    .await;
    cancel.cancel();
    within("agent stops", agent).await.unwrap().unwrap();
    controller.shutdown().await;
    downstream.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn the_simulated_agent_fails_the_clusters_it_is_told_to() {
    let env = Env::start(Crds::Ours).await;
    let mut config = test_config();
    config.agent_fail_clusters = vec!["bad".into()];
    let controller = env.controller(config).await;
    env.cluster("good", &[("env", "prod")]).await;
    env.cluster("bad", &[("env", "prod")]).await;
    let url = env
        .repo("app", &[("cm.yaml", &configmap("app", "1"))])
        .await;
    env.gitrepo(
        "app",
        spec(&url, &["."], vec![by_labels(&[("env", "prod")])], "1h"),
    )
    .await;
    let repo = eventually("ErrApplied shows in the GitRepo", || async {
        let repo = env.get_gitrepo("app").await;
        let s = repo.status.clone().unwrap_or_default();
        if s.summary.err_applied == 1 && s.summary.ready == 1 {
            Ok(repo)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let status = repo.status.unwrap();
    assert_eq!(status.display.state, "ErrApplied");
    assert!(status.display.error);
    assert!(
        status.display.message.contains("simulated failure"),
        "{}",
        status.display.message
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "False");
    assert!(
        ready
            .message
            .starts_with("ErrApplied(1) [Bundle app: simulated failure"),
        "{}",
        ready.message
    );
    assert_eq!(status.ready_clusters, 1);
    assert_eq!(status.desired_ready_clusters, 2);
    controller.shutdown().await;
    env.shutdown().await;
}

#[tokio::test]
async fn private_repositories_sync_with_basic_auth_credentials() {
    let env = Env::start(Crds::Ours).await;
    let controller = env.controller(test_config()).await;
    env.cluster("c1", &[("env", "prod")]).await;
    let option = gitserver::forge::types::CreateRepoOption {
        private: true,
        ..gitserver::forge::types::CreateRepoOption::named("secret-app")
    };
    let repo = within("private repo", env.forge.create_repo(&option))
        .await
        .unwrap();
    env.commit(
        "secret-app",
        &[("cm.yaml", &configmap("secret-app", "1"))],
        &[],
    )
    .await;
    let mut gitrepo_spec = spec(
        &repo.clone_url,
        &["."],
        vec![by_labels(&[("env", "prod")])],
        "1s",
    );
    gitrepo_spec.client_secret_name = Some("git-creds".into());
    env.gitrepo("secret-app", gitrepo_spec).await;
    // Without the Secret: an actionable error.
    eventually("missing credentials reported", || async {
        let repo = env.get_gitrepo("secret-app").await;
        let stalled = repo
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Stalled").cloned());
        match stalled {
            Some(c)
                if c.status == "True"
                    && c.message.contains("git-creds")
                    && c.message.contains("basic-auth") =>
            {
                Ok(())
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NS);
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
        "metadata": {"name": "git-creds", "namespace": NS},
        "stringData": {"username": env.git.user(), "password": env.git.password()}
    }))
    .unwrap();
    within("secret", secrets.create(&PostParams::default(), &secret))
        .await
        .unwrap();
    env.wait_deployments(&[("secret-app", "c1")]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    controller.shutdown().await;
    env.shutdown().await;
}
