//! What each container of a run is: image, command line, files, ports, labels, network and
//! readiness check, as testcontainers requests.
//!
//! Building a request is separate from starting it so the command lines and host settings
//! are unit-tested without an engine. Settings testcontainers 0.27 has no builder for go
//! through its host-config modifier: ports are published on 127.0.0.1 only (at a port we
//! pick, so a restarted or reconnected container keeps it), `init` runs Docker's tiny init
//! as PID 1 (signals reach our processes, children are reaped), and a downstream cluster's
//! agent joins its API server's network namespace (`container:<id>`), like two containers
//! of one pod: they talk over 127.0.0.1, and cutting the API server's container off the
//! network cuts the whole cluster off.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};
use testcontainers::core::wait::HttpWaitStrategy;
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::{ContainerRequest, GenericImage, ImageExt as _};

use super::images::{ComponentImage, ImageSet};
use super::run::{ClusterName, Role, RunId};

/// The API servers' port inside their containers.
pub const API_PORT: u16 = 6443;
/// The git server's port inside its container.
pub const GIT_PORT: u16 = 3000;
/// The controller's metrics/webhook port inside its container.
pub const CONTROLLER_PORT: u16 = 8080;
/// Where an API server writes its kubeconfig inside its container.
pub const KUBECONFIG_OUT: &str = "/tmp/kubeconfig";
/// Where kubeconfigs are copied into the controller and agent containers.
pub const CONFIG_DIR: &str = "/etc/fleetbench";
/// The git server's data directory inside its container.
pub const GIT_DATA: &str = "/var/lib/fleetbench/git";
/// Environment variable the API server reads its bearer token from (`fleetbench apiserver`).
pub const TOKEN_ENV: &str = "FLEETBENCH_APISERVER_TOKEN";

/// What every container of one run shares.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The run.
    pub run: RunId,
    /// Its network's name.
    pub network: String,
    /// The images.
    pub images: ImageSet,
    /// Bound on each container becoming ready.
    pub startup_timeout: Duration,
}

impl Placement {
    fn base(&self, role: &Role, image: ComponentImage) -> ContainerRequest<GenericImage> {
        GenericImage::new(image.repository(), self.images.tag().to_string())
            .with_container_name(self.run.container_name(role))
            .with_labels(self.run.labels(Some(role)))
            .with_startup_timeout(self.startup_timeout)
    }

    /// The DNS name of `role`'s container on the run's network.
    pub fn dns_name(&self, role: &Role) -> String {
        self.run.container_name(role)
    }
}

/// Host settings of a container on the run's network publishing `port` at
/// `127.0.0.1:host_port`.
fn published(port: u16, host_port: u16) -> impl Fn(&mut HostConfig) + Send + Sync + 'static {
    move |host: &mut HostConfig| {
        host.init = Some(true);
        host.publish_all_ports = Some(false);
        host.port_bindings = Some(
            [(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_string()),
                    host_port: Some(host_port.to_string()),
                }]),
            )]
            .into_iter()
            .collect(),
        );
    }
}

/// Host settings of a container living in `owner`'s network namespace, restarted when it
/// exits with an error (as a pod's container would be).
fn borrowed_network(owner: String) -> impl Fn(&mut HostConfig) + Send + Sync + 'static {
    move |host: &mut HostConfig| {
        host.init = Some(true);
        host.network_mode = Some(format!("container:{owner}"));
        // Docker refuses published ports and extra hosts in another container's namespace.
        host.publish_all_ports = Some(false);
        host.port_bindings = None;
        host.extra_hosts = None;
        host.restart_policy = Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(30),
        });
    }
}

fn ready_at(path: &str, port: u16) -> WaitFor {
    WaitFor::http(
        HttpWaitStrategy::new(path)
            .with_port(port.tcp())
            .with_poll_interval(Duration::from_millis(200))
            .with_expected_status_code(200_u16),
    )
}

/// An API server (`fleetbench apiserver`): the management cluster, or a downstream
/// cluster's API when `role` is [`Role::DownstreamApi`].
pub fn apiserver(
    placement: &Placement,
    role: &Role,
    host_port: u16,
    token: &str,
) -> ContainerRequest<GenericImage> {
    placement
        .base(role, ComponentImage::Apiserver)
        .with_network(placement.network.clone())
        .with_cmd([
            "apiserver".to_string(),
            "--listen".to_string(),
            format!("0.0.0.0:{API_PORT}"),
            "--kubeconfig-out".to_string(),
            KUBECONFIG_OUT.to_string(),
        ])
        .with_env_var(TOKEN_ENV, token)
        .with_ready_conditions(vec![ready_at("/readyz", API_PORT)])
        .with_host_config_modifier(published(API_PORT, host_port))
}

/// The git server (`fleetbench gitserver`).
pub fn gitserver(
    placement: &Placement,
    host_port: u16,
    user: &str,
    password: &str,
) -> ContainerRequest<GenericImage> {
    placement
        .base(&Role::GitServer, ComponentImage::Gitserver)
        .with_network(placement.network.clone())
        .with_cmd([
            "gitserver".to_string(),
            "--listen".to_string(),
            format!("0.0.0.0:{GIT_PORT}"),
            "--data".to_string(),
            GIT_DATA.to_string(),
            "--user".to_string(),
            format!("{user}:{password}"),
            // Clone URLs and webhook payloads name the server as the controller reaches
            // it (the controller matches webhooks to GitRepos by these URLs).
            "--external-url".to_string(),
            format!("http://{}:{GIT_PORT}", placement.dns_name(&Role::GitServer)),
        ])
        .with_ready_conditions(vec![ready_at("/api/v1/version", GIT_PORT)])
        .with_host_config_modifier(published(GIT_PORT, host_port))
}

/// The controller (`fleet-controller`), reading the management cluster through
/// `kubeconfig_yaml` (in-network URL); `args` and `env` are the profile, legacy switches,
/// agent mode and Fleet's variables.
pub fn controller(
    placement: &Placement,
    host_port: u16,
    kubeconfig_yaml: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> ContainerRequest<GenericImage> {
    let kubeconfig = format!("{CONFIG_DIR}/kubeconfig");
    let mut cmd = vec![
        "--kubeconfig".to_string(),
        kubeconfig.clone(),
        "--listen".to_string(),
        format!("0.0.0.0:{CONTROLLER_PORT}"),
    ];
    cmd.extend(args.iter().cloned());
    let mut request = placement
        .base(&Role::Controller, ComponentImage::Controller)
        .with_network(placement.network.clone())
        .with_cmd(cmd)
        .with_copy_to(kubeconfig, kubeconfig_yaml.as_bytes().to_vec())
        .with_ready_conditions(vec![ready_at("/readyz", CONTROLLER_PORT)])
        .with_host_config_modifier(published(CONTROLLER_PORT, host_port));
    for (name, value) in env {
        request = request.with_env_var(name, value);
    }
    request
}

/// A downstream cluster's apply agent (`fleet-controller agent`) in the network namespace
/// of the cluster's API server container `apiserver_id`: it reaches that API at 127.0.0.1
/// (`downstream_kubeconfig`) and the management cluster by its in-network name
/// (`upstream_kubeconfig`). It serves the Cluster `namespace/cluster`.
pub fn agent(
    placement: &Placement,
    cluster: &ClusterName,
    namespace: &str,
    apiserver_id: &str,
    upstream_kubeconfig: &str,
    downstream_kubeconfig: &str,
) -> ContainerRequest<GenericImage> {
    let upstream = format!("{CONFIG_DIR}/upstream.kubeconfig");
    let downstream = format!("{CONFIG_DIR}/downstream.kubeconfig");
    placement
        .base(&Role::Agent(cluster.clone()), ComponentImage::Agent)
        .with_cmd([
            "agent".to_string(),
            "--cluster".to_string(),
            format!("{namespace}/{cluster}"),
            "--upstream-kubeconfig".to_string(),
            upstream.clone(),
            "--downstream-kubeconfig".to_string(),
            downstream.clone(),
        ])
        .with_copy_to(upstream, upstream_kubeconfig.as_bytes().to_vec())
        .with_copy_to(downstream, downstream_kubeconfig.as_bytes().to_vec())
        .with_ready_conditions(vec![WaitFor::Nothing])
        .with_host_config_modifier(borrowed_network(apiserver_id.to_string()))
}

/// A free TCP port on 127.0.0.1 (the OS picks; there is a short window in which another
/// process could take it, in which case starting the container fails with "port is
/// already allocated").
pub fn free_local_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement() -> Placement {
        Placement {
            run: "0a1b2c3d4e".parse().expect("valid"),
            network: "fleetbench-0a1b2c3d4e".to_string(),
            images: ImageSet::new("dev"),
            startup_timeout: Duration::from_secs(30),
        }
    }

    fn host_config(request: &ContainerRequest<GenericImage>) -> HostConfig {
        let mut host = HostConfig::default();
        let modifier = request.host_config_modifier().expect("has a modifier");
        modifier(&mut host);
        host
    }

    fn cmd(request: &ContainerRequest<GenericImage>) -> Vec<String> {
        request.cmd().map(|c| c.to_string()).collect()
    }

    /// The files a request copies in (testcontainers exposes them only through `Debug`).
    fn copied_targets(request: &ContainerRequest<GenericImage>) -> Vec<String> {
        request
            .copy_to_sources()
            .filter_map(|c| {
                let debug = format!("{c:?}");
                let start = debug.find("target: \"")? + "target: \"".len();
                let end = debug[start..].find('"')? + start;
                Some(debug[start..end].to_string())
            })
            .collect()
    }

    #[test]
    fn the_management_apiserver_listens_on_all_interfaces_and_publishes_on_loopback() {
        let request = apiserver(&placement(), &Role::Management, 41000, "tok");
        assert_eq!(request.descriptor(), "fleetbench/apiserver:dev");
        assert_eq!(
            cmd(&request),
            [
                "apiserver",
                "--listen",
                "0.0.0.0:6443",
                "--kubeconfig-out",
                "/tmp/kubeconfig"
            ]
        );
        assert_eq!(request.network().as_deref(), Some("fleetbench-0a1b2c3d4e"));
        assert_eq!(
            request.container_name().as_deref(),
            Some("fleetbench-0a1b2c3d4e-mgmt")
        );
        let env: Vec<(String, String)> = request
            .env_vars()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, [(TOKEN_ENV.to_string(), "tok".to_string())]);
        assert_eq!(request.labels()["fleetbench.run"], "0a1b2c3d4e");
        assert_eq!(request.labels()["fleetbench.component"], "apiserver");
        let host = host_config(&request);
        assert_eq!(host.init, Some(true));
        assert_eq!(host.publish_all_ports, Some(false));
        let bindings = host.port_bindings.expect("bindings");
        let binding = &bindings["6443/tcp"].as_ref().expect("bound")[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("41000"));
    }

    #[test]
    fn a_downstream_apiserver_is_named_and_labelled_for_its_cluster() {
        let cluster: ClusterName = "east".parse().expect("valid");
        let request = apiserver(&placement(), &Role::DownstreamApi(cluster), 41001, "t");
        assert_eq!(
            request.container_name().as_deref(),
            Some("fleetbench-0a1b2c3d4e-ds-east")
        );
        assert_eq!(request.labels()["fleetbench.cluster"], "east");
        assert_eq!(
            request.labels()["fleetbench.component"],
            "downstream-apiserver"
        );
    }

    #[test]
    fn the_gitserver_keeps_its_data_in_the_image_data_dir() {
        let request = gitserver(&placement(), 41002, "fleetbench", "pw");
        assert_eq!(request.descriptor(), "fleetbench/gitserver:dev");
        assert_eq!(
            cmd(&request),
            [
                "gitserver",
                "--listen",
                "0.0.0.0:3000",
                "--data",
                GIT_DATA,
                "--user",
                "fleetbench:pw",
                "--external-url",
                "http://fleetbench-0a1b2c3d4e-git:3000"
            ]
        );
        let host = host_config(&request);
        assert!(
            host.port_bindings
                .expect("bindings")
                .contains_key("3000/tcp")
        );
    }

    #[test]
    fn the_controller_gets_its_kubeconfig_as_a_file_and_its_settings_after_ours() {
        let env = BTreeMap::from([("GITREPO_SYNC_PERIOD".to_string(), "1m".to_string())]);
        let args = ["--profile".to_string(), "fleet-v0.10".to_string()];
        let request = controller(&placement(), 41003, "kubeconfig: yes", &args, &env);
        assert_eq!(request.descriptor(), "fleetbench/controller:dev");
        assert_eq!(
            cmd(&request),
            [
                "--kubeconfig",
                "/etc/fleetbench/kubeconfig",
                "--listen",
                "0.0.0.0:8080",
                "--profile",
                "fleet-v0.10"
            ]
        );
        assert_eq!(copied_targets(&request), ["/etc/fleetbench/kubeconfig"]);
        let env: Vec<String> = request
            .env_vars()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(env, ["GITREPO_SYNC_PERIOD=1m"]);
    }

    #[test]
    fn the_agent_borrows_its_apiservers_network_namespace_and_restarts_on_failure() {
        let cluster: ClusterName = "east".parse().expect("valid");
        let request = agent(
            &placement(),
            &cluster,
            "fleet-default",
            "abc123",
            "up",
            "down",
        );
        assert_eq!(request.descriptor(), "fleetbench/agent:dev");
        assert_eq!(
            cmd(&request),
            [
                "agent",
                "--cluster",
                "fleet-default/east",
                "--upstream-kubeconfig",
                "/etc/fleetbench/upstream.kubeconfig",
                "--downstream-kubeconfig",
                "/etc/fleetbench/downstream.kubeconfig"
            ]
        );
        // testcontainers would try to create a network named "container:..."; the mode is
        // set in the host config instead.
        assert_eq!(request.network(), &None);
        let host = host_config(&request);
        assert_eq!(host.network_mode.as_deref(), Some("container:abc123"));
        assert_eq!(host.publish_all_ports, Some(false));
        assert!(host.port_bindings.is_none());
        assert_eq!(
            host.restart_policy.and_then(|p| p.name),
            Some(RestartPolicyNameEnum::ON_FAILURE)
        );
        assert_eq!(
            copied_targets(&request),
            [
                "/etc/fleetbench/upstream.kubeconfig",
                "/etc/fleetbench/downstream.kubeconfig"
            ]
        );
        assert_eq!(request.labels()["fleetbench.component"], "agent");
    }

    #[test]
    fn free_ports_are_on_loopback_and_bindable() {
        let port = free_local_port().expect("a port");
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }
}
