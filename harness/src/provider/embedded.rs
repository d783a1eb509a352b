//! `embedded`: the apiserver and gitserver in this process, the controller as a subprocess.
//!
//! Nothing to install and nothing pulled: the default, and what the tests and
//! `make conformance` use. The servers bind to 127.0.0.1 on ephemeral ports, so suites can
//! run side by side (conformance runs the long polling suite alongside the others).

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::{Endpoints, Environment, EnvironmentSpec, Provider, ProviderError};

/// The embedded provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddedProvider;

/// A running embedded environment.
pub struct EmbeddedEnvironment {
    endpoints: Endpoints,
    apiserver: Option<apiserver::RunningApiServer>,
    gitserver: Option<gitserver::RunningGitServer>,
}

#[async_trait]
impl Provider for EmbeddedProvider {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn create(
        &self,
        spec: &EnvironmentSpec,
        _cancel: &CancellationToken,
    ) -> Result<Box<dyn Environment>, ProviderError> {
        std::fs::create_dir_all(&spec.work_dir).map_err(|source| ProviderError::Io {
            path: spec.work_dir.clone(),
            source,
        })?;
        let api = apiserver::ApiServer::start(apiserver::Config::default())
            .await
            .map_err(|e| ProviderError::ApiServer(e.into()))?;
        let kubeconfig_path = spec.work_dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig_path)
            .map_err(|e| ProviderError::ApiServer(e.into()))?;
        let git_data = spec.work_dir.join("git");
        let git = gitserver::GitServer::start(gitserver::Config::new(&git_data))
            .await
            .map_err(|e| ProviderError::GitServerStart(e.into()))?;
        let endpoints =
            Endpoints::with_local_git(api.kubeconfig_yaml(), kubeconfig_path, &git, true);
        tracing::debug!(api = %api.url(), git = %git.url(), "embedded environment up");
        Ok(Box::new(EmbeddedEnvironment {
            endpoints,
            apiserver: Some(api),
            gitserver: Some(git),
        }))
    }
}

#[async_trait]
impl Environment for EmbeddedEnvironment {
    fn provider(&self) -> &'static str {
        "embedded"
    }

    fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    async fn teardown(mut self: Box<Self>) -> Result<(), ProviderError> {
        let started = std::time::Instant::now();
        if let Some(git) = self.gitserver.take() {
            git.shutdown().await;
        }
        let git = started.elapsed();
        if let Some(api) = self.apiserver.take() {
            api.shutdown().await;
        }
        tracing::debug!(
            git_s = git.as_secs_f64(),
            total_s = started.elapsed().as_secs_f64(),
            "embedded servers stopped"
        );
        Ok(())
    }
}
