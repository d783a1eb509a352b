//! kind's Docker network and its gateway: where the harness's git proxy listens on kind.
//!
//! GitRepos clone through the harness's recording git proxy, so the proxy must be reachable
//! by the controller under test. On kind that controller is either a local subprocess (the
//! bundled one) or a pod in the management cluster's node (upstream Fleet's gitjob). Both
//! reach the gateway of the Docker network kind puts its nodes on: it is this machine's
//! address on that bridge, and pods' traffic leaves the node container through it. Loopback
//! would only serve the first, a LAN address may be firewalled or absent.
//!
//! kind names the network `kind` unless `KIND_EXPERIMENTAL_DOCKER_NETWORK` says otherwise,
//! and creates it dual-stack: the IPAM configuration lists an IPv6 subnet (usually first)
//! and an IPv4 one. The proxy binds the IPv4 gateway; an IPv6-only network is refused with
//! a message rather than guessed at. The network is asked about through the negotiated
//! bollard client of [`crate::provider::docker::engine`], after the first cluster exists
//! (kind creates the network then).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{IpamConfig, NetworkInspect};

/// The network kind puts its nodes on when `KIND_EXPERIMENTAL_DOCKER_NETWORK` is unset.
pub const DEFAULT_NETWORK: &str = "kind";
/// kind's own variable naming another network (kind reads it; so does the provider, to put
/// Gitea and the git proxy where the nodes are).
pub const NETWORK_ENV: &str = "KIND_EXPERIMENTAL_DOCKER_NETWORK";
/// Bound on inspecting the network.
pub const INSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway is not known.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The engine refused or failed the inspect call.
    #[error(
        "cannot inspect Docker network {network:?}, the one kind puts its nodes on (set {NETWORK_ENV} if kind uses another)"
    )]
    Inspect {
        /// The network.
        network: String,
        /// bollard's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
    /// The engine did not answer in time.
    #[error("Docker did not answer an inspect of network {network:?} within {after:?}")]
    Timeout {
        /// The network.
        network: String,
        /// The bound.
        after: Duration,
    },
    /// The network has no IPAM configuration at all.
    #[error(
        "Docker network {network:?} reports no IPAM configuration, so its gateway is unknown; the harness's git proxy must listen there for the controller under test to clone through it (recreate the network with `docker network rm {network}` once no kind cluster uses it; kind makes it again)"
    )]
    NoIpamConfig {
        /// The network.
        network: String,
    },
    /// The network has IPAM configuration, but no IPv4 gateway or subnet.
    #[error(
        "Docker network {network:?} has no IPv4 gateway or subnet (IPAM configuration: {seen}); the harness's git proxy listens on the IPv4 gateway, so kind's network must have IPv4 (kind's default dual-stack network does)"
    )]
    NoIpv4 {
        /// The network.
        network: String,
        /// Its IPAM configuration entries, as `subnet gateway`.
        seen: String,
    },
}

/// The network kind uses, given the value of [`NETWORK_ENV`].
pub fn network_name(configured: Option<&str>) -> String {
    configured
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NETWORK)
        .to_string()
}

/// The IPv4 gateway of `network`'s inspect answer.
///
/// An explicit IPv4 `Gateway` wins; an IPv4 subnet without one (some engines leave the
/// field out when they chose the gateway themselves) gives its first host address, which
/// is the gateway Docker's bridge driver assigns by default. IPv6 entries are skipped.
pub fn gateway_of(network: &str, inspected: &NetworkInspect) -> Result<IpAddr, NetworkError> {
    let configs = inspected
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.as_deref())
        .filter(|configs| !configs.is_empty())
        .ok_or_else(|| NetworkError::NoIpamConfig {
            network: network.to_string(),
        })?;
    let explicit = configs
        .iter()
        .filter_map(|c| c.gateway.as_deref()?.trim().parse::<Ipv4Addr>().ok())
        .next();
    let from_subnet = || {
        configs
            .iter()
            .filter_map(|c| first_host(c.subnet.as_deref()?))
            .next()
    };
    explicit
        .or_else(from_subnet)
        .map(IpAddr::V4)
        .ok_or_else(|| NetworkError::NoIpv4 {
            network: network.to_string(),
            seen: describe(configs),
        })
}

/// The first host address of an IPv4 CIDR (`172.18.0.0/16` -> `172.18.0.1`); `None` for
/// IPv6, malformed values and prefixes too long to hold a host.
fn first_host(subnet: &str) -> Option<Ipv4Addr> {
    let (address, prefix) = subnet.trim().split_once('/')?;
    let address: Ipv4Addr = address.parse().ok()?;
    let prefix: u32 = prefix.parse().ok()?;
    if prefix > 30 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    Some(Ipv4Addr::from((u32::from(address) & mask) + 1))
}

fn describe(configs: &[IpamConfig]) -> String {
    configs
        .iter()
        .map(|c| {
            format!(
                "subnet {} gateway {}",
                c.subnet.as_deref().unwrap_or("-"),
                c.gateway.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inspects `network` (bounded) and returns its IPv4 gateway.
pub async fn gateway(docker: &Docker, network: &str) -> Result<IpAddr, NetworkError> {
    let inspected = tokio::time::timeout(
        INSPECT_TIMEOUT,
        docker.inspect_network(
            network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        ),
    )
    .await
    .map_err(|_| NetworkError::Timeout {
        network: network.to_string(),
        after: INSPECT_TIMEOUT,
    })?
    .map_err(|source| NetworkError::Inspect {
        network: network.to_string(),
        source: source.into(),
    })?;
    gateway_of(network, &inspected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GET /networks/kind` as Docker 20.10 answers it for the network kind v0.29 creates
    /// (dual-stack, the IPv6 entry first).
    const KIND_NETWORK: &str = r#"{
  "Name": "kind",
  "Id": "6f1c4b0f0e3a9d2c7b8e5f4a3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
  "Created": "2026-12-03T07:01:02.123456789Z",
  "Scope": "local",
  "Driver": "bridge",
  "EnableIPv6": true,
  "IPAM": {
    "Driver": "default",
    "Options": {},
    "Config": [
      {"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"},
      {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}
    ]
  },
  "Internal": false,
  "Attachable": false,
  "Ingress": false,
  "ConfigFrom": {"Network": ""},
  "ConfigOnly": false,
  "Containers": {
    "0d1e2f3a4b5c": {
      "Name": "fleetbench-0a1b2c3d4e-mgmt-control-plane",
      "EndpointID": "9a8b7c6d5e4f",
      "MacAddress": "02:42:ac:12:00:02",
      "IPv4Address": "172.18.0.2/16",
      "IPv6Address": "fc00:f853:ccd:e793::2/64"
    }
  },
  "Options": {
    "com.docker.network.bridge.enable_ip_masquerade": "true",
    "com.docker.network.driver.mtu": "1500"
  },
  "Labels": {}
}"#;

    fn inspect(json: &str) -> NetworkInspect {
        serde_json::from_str(json).expect("fixture parses as an inspect answer")
    }

    #[test]
    fn the_ipv4_gateway_is_picked_and_the_ipv6_one_ignored() {
        assert_eq!(
            gateway_of("kind", &inspect(KIND_NETWORK)).expect("gateway"),
            "172.18.0.1".parse::<IpAddr>().expect("valid")
        );
    }

    #[test]
    fn an_ipv4_subnet_without_a_gateway_gives_its_first_host() {
        let json = KIND_NETWORK.replace(r#", "Gateway": "172.18.0.1""#, "");
        assert!(!json.contains("172.18.0.1"), "fixture edited");
        assert_eq!(
            gateway_of("kind", &inspect(&json)).expect("gateway"),
            "172.18.0.1".parse::<IpAddr>().expect("valid")
        );
        // The subnet's network address is masked first.
        assert_eq!(
            first_host("10.89.3.77/24"),
            Some(Ipv4Addr::new(10, 89, 3, 1))
        );
        assert_eq!(first_host("0.0.0.0/0"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        for no_host in ["10.0.0.0/31", "10.0.0.0/33", "fc00::/64", "10.0.0.0", "x/8"] {
            assert_eq!(first_host(no_host), None, "{no_host}");
        }
    }

    #[test]
    fn no_ipam_config_is_a_clear_error() {
        for json in [
            r#"{"Name": "kind", "Driver": "bridge"}"#,
            r#"{"Name": "kind", "IPAM": {"Driver": "default"}}"#,
            r#"{"Name": "kind", "IPAM": {"Driver": "default", "Config": []}}"#,
        ] {
            let error = gateway_of("kind", &inspect(json)).expect_err(json);
            assert!(
                matches!(error, NetworkError::NoIpamConfig { .. }),
                "{error}"
            );
            let text = error.to_string();
            assert!(text.contains("\"kind\" reports no IPAM"), "{text}");
            assert!(text.contains("git proxy"), "{text}");
        }
    }

    #[test]
    fn an_ipv6_only_network_is_refused_naming_what_it_has() {
        let json = r#"{"Name": "v6", "IPAM": {"Config": [{"Subnet": "fc00:f853:ccd:e793::/64", "Gateway": "fc00:f853:ccd:e793::1"}]}}"#;
        let error = gateway_of("v6", &inspect(json)).expect_err("IPv6 only");
        assert!(matches!(error, NetworkError::NoIpv4 { .. }), "{error}");
        let text = error.to_string();
        assert!(
            text.contains("subnet fc00:f853:ccd:e793::/64 gateway fc00:f853:ccd:e793::1"),
            "{text}"
        );
    }

    #[test]
    fn the_network_is_kinds_default_unless_kind_is_told_otherwise() {
        assert_eq!(network_name(None), "kind");
        assert_eq!(network_name(Some("  ")), "kind");
        assert_eq!(network_name(Some("bench-net")), "bench-net");
    }
}
