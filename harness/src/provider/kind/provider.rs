//! `--provider kind` behind the harness's [`Provider`] and [`Environment`] traits.
//!
//! Each suite gets a management kind cluster and a Gitea; the bundled controller runs as a
//! local subprocess (so its CPU and RSS are measured as on the embedded provider) against
//! the management cluster's host kubeconfig, and clones from Gitea's host port. Where
//! kind, the node image or the Gitea image is missing, creating the environment fails at
//! once with the preflight's message.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::environment::{KindEnvironment, KindSettings};
use crate::provider::{Endpoints, Environment, EnvironmentSpec, Provider, ProviderError};

/// The kind provider.
#[derive(Debug, Clone, Default)]
pub struct KindProvider;

impl KindProvider {
    /// Settings from the environment (`FLEETBENCH_KIND_*`).
    pub fn from_env() -> Self {
        Self
    }
}

/// A suite's kind environment.
pub struct KindEnv {
    environment: Option<KindEnvironment>,
    endpoints: Endpoints,
}

#[async_trait]
impl Provider for KindProvider {
    fn name(&self) -> &'static str {
        "kind"
    }

    async fn create(
        &self,
        spec: &EnvironmentSpec,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError> {
        let settings = KindSettings::new(spec.work_dir.join("kind"), 0);
        let environment = tokio::select! {
            created = KindEnvironment::create(&settings) => created?,
            () = cancel.cancelled() => return Err(ProviderError::Unsupported("interrupted".to_string())),
        };
        let management = environment.clusters().management();
        let forge = environment.forge();
        let endpoints = Endpoints {
            kubeconfig_yaml: management.kubeconfig_host.clone(),
            kubeconfig_path: management.kubeconfig_path.clone(),
            git_api_url: forge.api_url.clone(),
            git_clone_base: forge.api_url.clone(),
            git_user: settings.gitea.user.clone(),
            git_password: settings.gitea.password.clone(),
            git_extensions: false,
            repo_prefix: "bench".to_string(),
            api_faults: false,
            git_server_version: Some(format!("Gitea ({})", settings.images.gitea)),
        };
        Ok(Box::new(KindEnv {
            environment: Some(environment),
            endpoints,
        }))
    }
}

#[async_trait]
impl Environment for KindEnv {
    fn provider(&self) -> &'static str {
        "kind"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn teardown(mut self: Box<Self>) -> Result<(), ProviderError> {
        if let Some(environment) = self.environment.take() {
            environment.teardown().await?;
        }
        Ok(())
    }
}
