//! Kubeconfigs as each party needs them.
//!
//! A cluster in a container is one server reached three ways: the harness on the host goes
//! through the port mapped to 127.0.0.1, containers on the run's network go to the
//! container's DNS name, and an agent sharing the cluster's network namespace goes to
//! 127.0.0.1 inside it. The server writes one kubeconfig (with its token, or for kind its
//! certificates); everyone else gets that file with only the server URL of the current
//! context's cluster replaced, so credentials are never re-typed.

use kube::config::Kubeconfig;

/// Why a kubeconfig could not be read or rewritten.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Not a kubeconfig.
    #[error("not a valid kubeconfig")]
    Parse(#[source] kube::config::KubeconfigError),
    /// Not text.
    #[error("not a valid kubeconfig")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    /// It has no current context, or the context names no cluster it defines.
    #[error("the kubeconfig has no usable current context: {0}")]
    NoCurrentCluster(String),
    /// Writing YAML failed.
    #[error("cannot write the kubeconfig as YAML")]
    Serialize(#[source] serde_saphyr::SerializeError),
    /// kube-rs cannot read a client configuration from it.
    #[error("cannot build a Kubernetes client from the kubeconfig")]
    ClientConfig(#[source] kube::config::KubeconfigError),
    /// kube-rs cannot build a client from that configuration.
    #[error("cannot build a Kubernetes client from the kubeconfig")]
    Client(#[source] fleet_api::error::Foreign<kube::Error>),
}

fn parse(yaml: &str) -> Result<Kubeconfig, KubeconfigError> {
    Kubeconfig::from_yaml(yaml).map_err(KubeconfigError::Parse)
}

fn current_cluster_name(config: &Kubeconfig) -> Result<String, KubeconfigError> {
    let current = config
        .current_context
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| KubeconfigError::NoCurrentCluster("current-context is not set".into()))?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| {
            KubeconfigError::NoCurrentCluster(format!("context {current:?} is not defined"))
        })?;
    Ok(context.cluster.clone())
}

/// The server URL of the current context's cluster.
pub fn server_of(yaml: &str) -> Result<String, KubeconfigError> {
    let config = parse(yaml)?;
    let cluster = current_cluster_name(&config)?;
    config
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .ok_or_else(|| {
            KubeconfigError::NoCurrentCluster(format!("cluster {cluster:?} has no server"))
        })
}

/// `yaml` with the current context's cluster pointing at `server`; everything else
/// (credentials, CA data, namespaces, other contexts) is kept.
pub fn with_server(yaml: &str, server: &str) -> Result<String, KubeconfigError> {
    let mut config = parse(yaml)?;
    let cluster_name = current_cluster_name(&config)?;
    let cluster = config
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_mut())
        .ok_or_else(|| {
            KubeconfigError::NoCurrentCluster(format!("cluster {cluster_name:?} is not defined"))
        })?;
    cluster.server = Some(server.to_string());
    serde_saphyr::to_string(&config).map_err(KubeconfigError::Serialize)
}

/// A kube-rs client for the kubeconfig's current context, with bounded connects and reads.
pub async fn client(yaml: &str) -> Result<kube::Client, KubeconfigError> {
    // kube uses ring, testcontainers' reqwest aws-lc-rs: with both linked rustls needs the
    // choice made (the binary makes it at start; this covers library callers and tests).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = parse(yaml)?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(KubeconfigError::ClientConfig)?;
    config.connect_timeout = Some(std::time::Duration::from_secs(10));
    config.read_timeout = Some(std::time::Duration::from_secs(295));
    kube::Client::try_from(config).map_err(|e| KubeconfigError::Client(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kind writes (`kind get kubeconfig`), certificates shortened.
    const KIND: &str = r#"apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi1DQQ==
    server: https://127.0.0.1:41235
  name: kind-fleetbench-mgmt
contexts:
- context:
    cluster: kind-fleetbench-mgmt
    user: kind-fleetbench-mgmt
  name: kind-fleetbench-mgmt
current-context: kind-fleetbench-mgmt
kind: Config
preferences: {}
users:
- name: kind-fleetbench-mgmt
  user:
    client-certificate-data: LS0tLS1DRVJULQ==
    client-key-data: LS0tLS1LRVktLQ==
"#;

    #[tokio::test]
    async fn the_apiservers_own_kubeconfig_is_rewritten_keeping_its_token() {
        let server =
            apiserver::ApiServer::start(apiserver::Config::default().with_token("s3cret-token"))
                .await
                .expect("apiserver starts");
        let original = server.kubeconfig_yaml();
        let rewritten =
            with_server(&original, "http://fleetbench-abc-mgmt:6443").expect("rewrites");
        assert_eq!(
            server_of(&rewritten).expect("has a server"),
            "http://fleetbench-abc-mgmt:6443"
        );
        assert!(rewritten.contains("s3cret-token"), "{rewritten}");
        // The rewritten file still works: point it back at the real address and list.
        let back = with_server(&rewritten, &server.url()).expect("rewrites");
        let client = client(&back).await.expect("client");
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            namespaces.list(&Default::default()),
        )
        .await
        .expect("bounded")
        .expect("the token still authenticates");
        server.shutdown().await;
    }

    #[test]
    fn kind_kubeconfigs_keep_their_certificates() {
        let internal =
            with_server(KIND, "https://fleetbench-mgmt-control-plane:6443").expect("rewrites");
        assert_eq!(
            server_of(&internal).expect("server"),
            "https://fleetbench-mgmt-control-plane:6443"
        );
        for kept in [
            "LS0tLS1CRUdJTi1DQQ==",
            "LS0tLS1DRVJULQ==",
            "LS0tLS1LRVktLQ==",
            "kind-fleetbench-mgmt",
        ] {
            assert!(internal.contains(kept), "{kept} lost: {internal}");
        }
    }

    #[test]
    fn only_the_current_contexts_cluster_changes() {
        let two = KIND.replace(
            "contexts:\n",
            "- cluster:\n    server: https://other:6443\n  name: other\ncontexts:\n- context:\n    cluster: other\n    user: kind-fleetbench-mgmt\n  name: other\n",
        );
        let rewritten = with_server(&two, "https://new:6443").expect("rewrites");
        assert!(rewritten.contains("https://other:6443"), "{rewritten}");
        assert_eq!(server_of(&rewritten).expect("server"), "https://new:6443");
    }

    #[test]
    fn broken_kubeconfigs_are_refused_with_the_reason() {
        assert!(matches!(
            with_server("clusters: [unclosed", "http://x"),
            Err(KubeconfigError::Parse(_))
        ));
        let no_context = KIND.replace("current-context: kind-fleetbench-mgmt\n", "");
        let error = with_server(&no_context, "http://x").expect_err("no current context");
        assert!(
            error.to_string().contains("current-context is not set"),
            "{error}"
        );
        let dangling = KIND.replace(
            "current-context: kind-fleetbench-mgmt",
            "current-context: gone",
        );
        let error = server_of(&dangling).expect_err("dangling context");
        assert!(
            error.to_string().contains("\"gone\" is not defined"),
            "{error}"
        );
    }
}
