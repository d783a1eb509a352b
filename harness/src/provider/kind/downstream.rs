//! Downstream kind clusters handed to the suites' Cluster objects: the Fleet way of
//! registering a cluster from the management side.
//!
//! Fleet's manager-initiated registration needs two objects in the workspace namespace: a
//! Secret holding the downstream cluster's kubeconfig under key `value`, and a Cluster
//! whose `spec.kubeConfigSecret` names it; Fleet then deploys its agent into that cluster
//! with the kubeconfig. The suites create their Clusters themselves (their count, names
//! and labels are what the SLOs are about), asking the environment first for a downstream
//! cluster; so this module makes the Secret and the suite's Cluster carries its name. The
//! environment's pre-made kind clusters go to the first Clusters registered; later ones
//! get none and stay agentless (targeting and BundleDeployment creation, which most suites
//! measure, do not need an agent).
//!
//! Which kubeconfig the Secret holds depends on who reads it: upstream Fleet reads it in a
//! pod on the management cluster's node, which reaches the downstream API server by its
//! node name on kind's network; the bundled controller's in-process apply agent reads it
//! on this machine, which reaches the host-published port.

use std::collections::{BTreeMap, VecDeque};

use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use super::environment::KindCluster;
use crate::provider::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::suite::AgentMode;

/// The Secret key Fleet reads a kubeconfig from.
pub const KUBECONFIG_KEY: &str = "value";

/// Which of a kind cluster's two kubeconfigs a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeconfigView {
    /// `https://<cluster>-control-plane:6443`, from kind's Docker network.
    Internal,
    /// `https://127.0.0.1:<port>`, from this machine.
    Host,
}

/// Whether Clusters get a downstream cluster, and which view of it: always with upstream
/// Fleet (it deploys real agents); with the bundled controller only in `apply` agent mode
/// (the simulated agent plays clusters that need no API server).
pub fn secret_view(upstream_fleet: bool, agent: Option<AgentMode>) -> Option<KubeconfigView> {
    if upstream_fleet {
        Some(KubeconfigView::Internal)
    } else if agent == Some(AgentMode::Apply) {
        Some(KubeconfigView::Host)
    } else {
        None
    }
}

/// The kubeconfig of `cluster` in `view`.
pub fn kubeconfig(cluster: &KindCluster, view: KubeconfigView) -> &str {
    match view {
        KubeconfigView::Internal => &cluster.kubeconfig_internal,
        KubeconfigView::Host => &cluster.kubeconfig_host,
    }
}

/// The Secret name for Cluster `cluster`.
pub fn secret_name(cluster: &str) -> String {
    format!("{cluster}-kubeconfig")
}

/// The kubeconfig Secret for Cluster `namespace/cluster`, holding `kubeconfig`.
pub fn kubeconfig_secret(namespace: &str, cluster: &str, kubeconfig: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(cluster)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([(
            KUBECONFIG_KEY.to_string(),
            kubeconfig.to_string(),
        )])),
        ..Secret::default()
    }
}

/// The downstream kind clusters not yet given to a Cluster, in creation order.
#[derive(Debug, Default)]
pub struct Pool {
    free: VecDeque<KindCluster>,
}

impl Pool {
    /// A pool of `clusters`.
    pub fn new(clusters: impl IntoIterator<Item = KindCluster>) -> Self {
        Self {
            free: clusters.into_iter().collect(),
        }
    }

    /// The next free cluster, if any; each is given out once.
    pub fn claim(&mut self) -> Option<KindCluster> {
        self.free.pop_front()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::provider::kind::config::ClusterRole;

    pub(crate) fn cluster(name: &str) -> KindCluster {
        KindCluster {
            name: name.to_string(),
            role: ClusterRole::Downstream,
            config_path: PathBuf::from(format!("/run/{name}.yaml")),
            kubeconfig_path: PathBuf::from(format!("/run/{name}.kubeconfig")),
            kubeconfig_host: format!("server: https://127.0.0.1:40001 # {name}"),
            kubeconfig_internal: format!("server: https://{name}-control-plane:6443"),
        }
    }

    #[test]
    fn upstream_fleet_reads_the_in_network_view_and_the_bundled_apply_agent_the_hosts() {
        for agent in [
            None,
            Some(AgentMode::None),
            Some(AgentMode::Simulated),
            Some(AgentMode::Apply),
        ] {
            assert_eq!(secret_view(true, agent), Some(KubeconfigView::Internal));
        }
        assert_eq!(
            secret_view(false, Some(AgentMode::Apply)),
            Some(KubeconfigView::Host)
        );
        for agent in [None, Some(AgentMode::None), Some(AgentMode::Simulated)] {
            assert_eq!(secret_view(false, agent), None, "{agent:?}");
        }
        let ds = cluster("ds-1");
        assert_eq!(
            kubeconfig(&ds, KubeconfigView::Internal),
            "server: https://ds-1-control-plane:6443"
        );
        assert!(kubeconfig(&ds, KubeconfigView::Host).contains("127.0.0.1"));
    }

    #[test]
    fn the_secret_is_the_one_fleets_kube_config_secret_reads() {
        let secret = kubeconfig_secret("fleet-default", "cluster-000", "apiVersion: v1\n");
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("cluster-000-kubeconfig")
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("fleet-default"));
        assert_eq!(
            secret.string_data,
            Some(BTreeMap::from([(
                "value".to_string(),
                "apiVersion: v1\n".to_string()
            )]))
        );
        assert_eq!(
            secret.metadata.labels.expect("labelled")[MANAGED_BY_LABEL],
            MANAGED_BY
        );
    }

    #[test]
    fn each_cluster_is_given_out_once_in_order() {
        let mut pool = Pool::new([cluster("ds-1"), cluster("ds-2")]);
        assert_eq!(pool.claim().map(|c| c.name), Some("ds-1".to_string()));
        assert_eq!(pool.claim().map(|c| c.name), Some("ds-2".to_string()));
        assert_eq!(pool.claim(), None);
    }
}
