//! Gitea for the kind provider: started with testcontainers-modules' gitea module on kind's
//! Docker network, an access token made for the harness, and the URLs each side uses.
//!
//! The harness drives Gitea with the same [`ForgeClient`] it drives the embedded git server
//! with (Gitea's own API, which the embedded server follows), so everything here is tested
//! against the embedded server; only starting the container needs the Gitea image. The
//! harness reaches Gitea at a 127.0.0.1 port; kind's nodes (and whatever runs in them)
//! reach it by container name on kind's network, which is the clone URL GitRepos get.

use std::time::Duration;

use gitserver::forge::types::CreateAccessTokenOption;
use gitserver::forge::{Auth, ForgeClient, ForgeError};
use testcontainers::core::IntoContainerPort as _;
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, ContainerRequest, Image as _, ImageExt as _};
use testcontainers_modules::gitea::Gitea;

use crate::provider::docker::run::{Role, RunId};

/// The Docker network kind puts its nodes on (kind's own default).
pub const KIND_NETWORK: &str = "kind";
/// Gitea's HTTP port inside its container.
pub const GITEA_PORT: u16 = 3000;
/// Scopes of the harness's token: repositories, the user, organisations.
pub const TOKEN_SCOPES: [&str; 3] = ["write:repository", "write:user", "write:organization"];

/// The gitea module's image (`gitea/gitea:1.22.3-rootless`).
pub fn image_reference() -> String {
    let image = Gitea::default();
    format!("{}:{}", image.name(), image.tag())
}

/// How the Gitea container is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiteaSettings {
    /// Admin user.
    pub user: String,
    /// Admin password.
    pub password: String,
    /// Docker network shared with the kind nodes.
    pub network: String,
    /// Bound on Gitea becoming ready.
    pub startup_timeout: Duration,
}

/// The testcontainers request for the run's Gitea, published on `127.0.0.1:host_port`.
///
/// Gitea's root URL is its in-network name and port, so the clone URLs it reports are the
/// ones kind's nodes can use; webhooks may go to any host (Gitea refuses private addresses
/// by default, and everything here is private).
pub fn request(run: &RunId, settings: &GiteaSettings, host_port: u16) -> ContainerRequest<Gitea> {
    let name = run.container_name(&Role::GitServer);
    Gitea::default()
        .with_admin_account(settings.user.clone(), settings.password.clone(), None)
        .with_git_hostname(format!("{name}:{GITEA_PORT}"))
        .with_container_name(name)
        .with_labels(run.labels(Some(&Role::GitServer)))
        .with_network(settings.network.clone())
        .with_env_var("GITEA__webhook__ALLOWED_HOST_LIST", "*")
        .with_startup_timeout(settings.startup_timeout)
        .with_host_config_modifier(move |host| {
            host.publish_all_ports = Some(false);
            host.port_bindings = Some(
                [(
                    GITEA_PORT.tcp().to_string(),
                    Some(vec![bollard::models::PortBinding {
                        host_ip: Some("127.0.0.1".to_string()),
                        host_port: Some(host_port.to_string()),
                    }]),
                )]
                .into_iter()
                .collect(),
            );
        })
}

/// What the harness and the clusters need to use a forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeAccess {
    /// API base as the harness reaches it (`http://127.0.0.1:PORT`).
    pub api_url: String,
    /// Clone base as the clusters reach it (`http://NAME:3000`).
    pub clone_base_in_cluster: String,
    /// The user.
    pub user: String,
    /// An access token of the user.
    pub token: String,
}

impl ForgeAccess {
    /// A client authenticating with the token.
    pub fn client(&self) -> Result<ForgeClient, ForgeError> {
        ForgeClient::new(&self.api_url, Auth::Token(self.token.clone()))
    }

    /// Clone URL of `owner/repo` as kind's nodes reach it.
    pub fn clone_url_in_cluster(&self, owner: &str, repo: &str) -> String {
        format!(
            "{}/{owner}/{repo}.git",
            self.clone_base_in_cluster.trim_end_matches('/')
        )
    }
}

/// Makes an access token named `token_name` for `user` (Gitea only allows that with the
/// password) and checks it authenticates as that user.
pub async fn provision(
    api_url: &str,
    clone_base_in_cluster: &str,
    user: &str,
    password: &str,
    token_name: &str,
) -> Result<ForgeAccess, ForgeError> {
    let basic = ForgeClient::new(
        api_url,
        Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        },
    )?;
    let token = basic
        .create_token(
            user,
            &CreateAccessTokenOption {
                name: token_name.to_string(),
                scopes: TOKEN_SCOPES.iter().map(|s| s.to_string()).collect(),
            },
        )
        .await?
        .sha1;
    let access = ForgeAccess {
        api_url: api_url.to_string(),
        clone_base_in_cluster: clone_base_in_cluster.to_string(),
        user: user.to_string(),
        token,
    };
    let me = access.client()?.current_user().await?;
    if !me.login.eq_ignore_ascii_case(user) {
        return Err(ForgeError::InvalidUrl(format!(
            "{api_url}: the new token authenticates as {:?}, not {user:?}",
            me.login
        )));
    }
    Ok(access)
}

/// The run's Gitea container and how to use it.
pub struct RunningGitea {
    /// The container (removed when dropped).
    pub container: ContainerAsync<Gitea>,
    /// URLs and token.
    pub access: ForgeAccess,
}

/// Why Gitea is not usable.
#[derive(Debug, thiserror::Error)]
pub enum GiteaError {
    /// The container did not start.
    #[error("the Gitea container did not start")]
    Start(#[source] Box<fleet_api::error::Foreign<testcontainers::TestcontainersError>>),
    /// No free local port.
    #[error("cannot find a free port on 127.0.0.1")]
    Port(#[source] std::io::Error),
    /// Setting up the token failed.
    #[error("cannot set up Gitea's access token")]
    Forge(#[from] ForgeError),
}

/// Starts the run's Gitea on `settings.network` and makes the harness's token.
pub async fn start(run: &RunId, settings: &GiteaSettings) -> Result<RunningGitea, GiteaError> {
    let host_port =
        crate::provider::docker::containers::free_local_port().map_err(GiteaError::Port)?;
    let container = request(run, settings, host_port)
        .start()
        .await
        .map_err(|e| GiteaError::Start(Box::new(e.into())))?;
    let access = provision(
        &format!("http://127.0.0.1:{host_port}"),
        &format!(
            "http://{}:{GITEA_PORT}",
            run.container_name(&Role::GitServer)
        ),
        &settings.user,
        &settings.password,
        &format!("fleetbench-{run}"),
    )
    .await?;
    Ok(RunningGitea { container, access })
}

#[cfg(test)]
mod tests {
    use gitserver::forge::types::{ChangeFileOperation, ChangeFilesOptions, CreateRepoOption};

    use super::*;

    const USER: &str = "gitadmin";
    const PASSWORD: &str = "pa55word";

    async fn embedded() -> (tempfile::TempDir, gitserver::RunningGitServer) {
        let dir = tempfile::tempdir().expect("tempdir");
        let credentials: gitserver::Credentials =
            format!("{USER}:{PASSWORD}").parse().expect("valid");
        let server = gitserver::GitServer::start(
            gitserver::Config::new(dir.path()).with_credentials(credentials),
        )
        .await
        .expect("gitserver starts");
        (dir, server)
    }

    fn bounded<F: Future>(future: F) -> tokio::time::Timeout<F> {
        tokio::time::timeout(Duration::from_secs(30), future)
    }

    #[test]
    fn the_image_is_the_gitea_modules() {
        assert_eq!(image_reference(), "gitea/gitea:1.22.3-rootless");
    }

    #[test]
    fn the_container_joins_kinds_network_by_name_and_publishes_on_loopback() {
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        let settings = GiteaSettings {
            user: USER.to_string(),
            password: PASSWORD.to_string(),
            network: KIND_NETWORK.to_string(),
            startup_timeout: Duration::from_secs(90),
        };
        let request = request(&run, &settings, 43000);
        assert_eq!(request.network().as_deref(), Some("kind"));
        assert_eq!(
            request.container_name().as_deref(),
            Some("fleetbench-0a1b2c3d4e-git")
        );
        assert_eq!(request.labels()["fleetbench.run"], "0a1b2c3d4e");
        let env: Vec<String> = request
            .env_vars()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert!(
            env.contains(&"GITEA__webhook__ALLOWED_HOST_LIST=*".to_string()),
            "{env:?}"
        );
        let mut host = bollard::models::HostConfig::default();
        request.host_config_modifier().expect("modifier")(&mut host);
        let bindings = host.port_bindings.expect("bindings");
        let binding = &bindings["3000/tcp"].as_ref().expect("bound")[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("43000"));
        // The module's app.ini carries the root URL kind's nodes clone from.
        let copies = format!("{:?}", request.copy_to_sources().collect::<Vec<_>>());
        assert!(copies.contains("/etc/gitea/app.ini"), "{copies}");
        // testcontainers shows copied data only as Debug bytes: compare them that way.
        let root_url = format!(
            "{:?}",
            b"ROOT_URL = http://fleetbench-0a1b2c3d4e-git:3000/".to_vec()
        );
        assert!(
            copies.contains(root_url.trim_matches(['[', ']'])),
            "app.ini lacks the in-network root URL"
        );
    }

    #[tokio::test]
    async fn a_token_is_made_and_drives_the_forge_like_a_gitea_one() {
        let (_dir, server) = embedded().await;
        let access = bounded(provision(
            server.url(),
            "http://fleetbench-0a1b2c3d4e-git:3000/",
            USER,
            PASSWORD,
            "fleetbench-0a1b2c3d4e",
        ))
        .await
        .expect("bounded")
        .expect("token made");
        assert!(!access.token.is_empty());
        let forge = access.client().expect("client");
        let repo = bounded(forge.create_repo(&CreateRepoOption {
            auto_init: true,
            ..CreateRepoOption::named("bundles")
        }))
        .await
        .expect("bounded")
        .expect("repo created with the token");
        assert_eq!(repo.name, "bundles");
        bounded(forge.change_files(
            USER,
            "bundles",
            &ChangeFilesOptions {
                files: vec![ChangeFileOperation::create(
                    "app/cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
                )],
                message: "add app".to_string(),
                ..Default::default()
            },
        ))
        .await
        .expect("bounded")
        .expect("committed with the token");
        assert_eq!(
            access.clone_url_in_cluster(USER, "bundles"),
            "http://fleetbench-0a1b2c3d4e-git:3000/gitadmin/bundles.git"
        );
        // The host's clone URL serves the commit over git's smart HTTP with the token as
        // the password, as Fleet's gitjob authenticates.
        let mut url = reqwest::Url::parse(&forge.clone_url(USER, "bundles")).expect("url");
        url.set_username(USER).expect("user");
        url.set_password(Some(&access.token)).expect("password");
        let output = bounded(
            tokio::process::Command::new("git")
                .args(["ls-remote", url.as_str(), "refs/heads/main"])
                .env("GIT_TERMINAL_PROMPT", "0")
                .output(),
        )
        .await
        .expect("bounded")
        .expect("git runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("refs/heads/main"));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_password_or_a_reused_token_name_fails_with_gitea_status() {
        let (_dir, server) = embedded().await;
        let error = bounded(provision(
            server.url(),
            "http://x:3000",
            USER,
            "wrong",
            "t1",
        ))
        .await
        .expect("bounded")
        .expect_err("wrong password");
        assert_eq!(error.status(), Some(401), "{error}");
        bounded(provision(
            server.url(),
            "http://x:3000",
            USER,
            PASSWORD,
            "t1",
        ))
        .await
        .expect("bounded")
        .expect("first token");
        let error = bounded(provision(
            server.url(),
            "http://x:3000",
            USER,
            PASSWORD,
            "t1",
        ))
        .await
        .expect("bounded")
        .expect_err("name reused");
        assert_eq!(error.status(), Some(400), "{error}");
        server.shutdown().await;
    }
}
