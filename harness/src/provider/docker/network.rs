//! The run's private network, and partitions: cutting a container off it and back.
//!
//! Each run gets its own bridge network, so containers of concurrent runs never see each
//! other and every in-network name is the run's own. A partition disconnects a downstream
//! cluster's API server container from that network: its agent shares the container's
//! network namespace, so the whole "cluster" loses the management cluster (and the host
//! loses its mapped port) until it is connected again. These are direct engine calls
//! through the negotiated bollard client, not testcontainers.

use bollard::Docker;
use bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};

use super::run::RunId;

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The network has no IPv4 gateway (no IPAM configuration the engine reports).
    #[error("network {network} has no IPv4 gateway, so containers on it cannot reach this machine")]
    NoGateway {
        /// The network.
        network: String,
    },
    /// The engine refused or failed the call.
    #[error("cannot {action} network {network}")]
    Engine {
        /// What was being done.
        action: String,
        /// The network.
        network: String,
        /// bollard's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
}

/// Creates the run's network (a labelled bridge) and returns its name.
pub async fn create(docker: &Docker, run: &RunId) -> Result<String, NetworkError> {
    let name = run.network_name();
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_string()),
            labels: Some(run.labels(None)),
            ..Default::default()
        })
        .await
        .map_err(|source| NetworkError::Engine {
            action: "create".to_string(),
            network: name.clone(),
            source: source.into(),
        })?;
    Ok(name)
}

/// The IPv4 gateway of `network`: this machine's address on it, where containers on the
/// network reach services of the harness (the git proxy).
pub async fn gateway(docker: &Docker, network: &str) -> Result<std::net::IpAddr, NetworkError> {
    let inspected = docker
        .inspect_network(
            network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .map_err(|source| NetworkError::Engine {
            action: "inspect".to_string(),
            network: network.to_string(),
            source: source.into(),
        })?;
    ipv4_gateway(inspected.ipam.as_ref()).ok_or_else(|| NetworkError::NoGateway {
        network: network.to_string(),
    })
}

/// The first IPv4 gateway of an IPAM configuration.
fn ipv4_gateway(ipam: Option<&bollard::models::Ipam>) -> Option<std::net::IpAddr> {
    ipam?
        .config
        .as_ref()?
        .iter()
        .filter_map(|config| config.gateway.as_deref()?.parse::<std::net::IpAddr>().ok())
        .find(std::net::IpAddr::is_ipv4)
}

/// Cuts `container` off `network` (forcefully: it may be running and busy).
pub async fn disconnect(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<(), NetworkError> {
    docker
        .disconnect_network(
            network,
            NetworkDisconnectRequest {
                container: container.to_string(),
                force: Some(true),
            },
        )
        .await
        .map_err(|source| NetworkError::Engine {
            action: format!("disconnect {container} from"),
            network: network.to_string(),
            source: source.into(),
        })
}

/// Connects `container` to `network` again; `aliases` are extra DNS names on it (its
/// container name always resolves).
pub async fn connect(
    docker: &Docker,
    network: &str,
    container: &str,
    aliases: &[String],
) -> Result<(), NetworkError> {
    docker
        .connect_network(
            network,
            NetworkConnectRequest {
                container: container.to_string(),
                endpoint_config: Some(EndpointSettings {
                    aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                    ..Default::default()
                }),
            },
        )
        .await
        .map_err(|source| NetworkError::Engine {
            action: format!("connect {container} to"),
            network: network.to_string(),
            source: source.into(),
        })
}

/// Whether `container` is attached to `network` right now.
pub async fn is_connected(
    docker: &Docker,
    network: &str,
    container: &str,
) -> Result<bool, NetworkError> {
    let inspected = docker
        .inspect_container(container, None)
        .await
        .map_err(|source| NetworkError::Engine {
            action: format!("inspect {container} on"),
            network: network.to_string(),
            source: source.into(),
        })?;
    Ok(inspected
        .network_settings
        .and_then(|s| s.networks)
        .is_some_and(|networks| networks.contains_key(network)))
}

#[cfg(test)]
mod tests {
    use bollard::models::{Ipam, IpamConfig};

    use super::*;

    #[test]
    fn the_ipv4_gateway_is_picked_and_ipv6_ignored() {
        let ipam = Ipam {
            config: Some(vec![
                IpamConfig {
                    gateway: Some("fd00::1".into()),
                    ..IpamConfig::default()
                },
                IpamConfig {
                    gateway: Some("172.19.0.1".into()),
                    ..IpamConfig::default()
                },
            ]),
            ..Ipam::default()
        };
        assert_eq!(
            ipv4_gateway(Some(&ipam)),
            Some("172.19.0.1".parse().unwrap())
        );
        assert_eq!(ipv4_gateway(None), None);
        assert_eq!(ipv4_gateway(Some(&Ipam::default())), None);
    }
}
