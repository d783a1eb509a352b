//! What suites do: each step of the suite vocabulary, executed against an environment.
//!
//! Steps act through the same interfaces a user has (the forge API, the Kubernetes API) and
//! observe through the watch recorder, so they work against the bundled controller and an
//! upstream Fleet alike. Every wait has a bound; a measuring step that runs out of time
//! still records what did arrive and how much did not (the SLO on `missing` judges that),
//! while a setup step that runs out of time stops the suite, since nothing after it would
//! mean anything.

mod batch;
mod cluster;
mod collect;
mod git;
mod gitrepo;
mod infra;
mod observe;
mod quiet;
mod status;
pub mod world;

use std::time::{Duration, Instant};

use gitserver::forge::{ForgeClient, ForgeError};
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::gitproxy::GitProxy;
use crate::measure::metrics::{MetricsError, RequestTotals};
use crate::measure::recorder::{Recorder, WaitError};
use crate::measure::scrape::RequestScraper;
use crate::provider::{Endpoints, Environment};
use crate::results::Measurement;
use crate::suite::{Step, Suite};
pub use world::World;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A Kubernetes API call failed.
    #[error("{action}")]
    Kube {
        /// What was being done.
        action: String,
        /// The error.
        source: fleet_api::error::Foreign<kube::Error>,
    },
    /// A forge API call failed.
    #[error("{action}")]
    Forge {
        /// What was being done.
        action: String,
        /// The error.
        source: ForgeError,
    },
    /// A setup wait ran out of time.
    #[error("{what}: not done after {after:?} ({progress})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        after: Duration,
        /// How far it got.
        progress: String,
    },
    /// Ctrl-C.
    #[error("interrupted")]
    Cancelled,
    /// The environment lacks something the step needs.
    #[error("{0}")]
    Unsupported(String),
    /// The environment could not do what the step asked of it (boxed: a provider's
    /// error is large, and steps return errors on every path).
    #[error(transparent)]
    Environment(Box<crate::provider::ProviderError>),
    /// The environment could not make a downstream cluster for a registered Cluster.
    #[error("downstream cluster {cluster}")]
    Downstream {
        /// The Cluster's name.
        cluster: String,
        /// The environment's error.
        source: Box<crate::provider::ProviderError>,
    },
    /// The API server's metrics could not be read.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

impl StepError {
    fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> StepError {
        let action = action.into();
        move |source| StepError::Kube {
            action,
            source: source.into(),
        }
    }

    fn forge(action: impl Into<String>) -> impl FnOnce(ForgeError) -> StepError {
        let action = action.into();
        move |source| StepError::Forge { action, source }
    }

    fn from_wait(error: WaitError, what: &str, progress: String) -> StepError {
        match error {
            WaitError::Cancelled => StepError::Cancelled,
            WaitError::Timeout(after) => StepError::Timeout {
                what: what.to_string(),
                after,
                progress,
            },
        }
    }
}

/// What a step reports.
#[derive(Debug, Default)]
pub struct StepOutput {
    /// One line for the steps table.
    pub message: String,
    /// Measurements taken.
    pub measurements: Vec<(String, Measurement)>,
    /// Problems with what the step measured or waited for, recorded with the results.
    pub quality: Vec<String>,
}

/// Everything a step can use.
pub struct Context<'a> {
    /// The suite (after overrides).
    pub suite: &'a Suite,
    /// Kubernetes client.
    pub kube: Client,
    /// Forge client.
    pub forge: ForgeClient,
    /// The environment's endpoints.
    pub endpoints: &'a Endpoints,
    /// The environment (hooks for downstream clusters).
    pub environment: &'a dyn Environment,
    /// The watch recorder.
    pub recorder: &'a Recorder,
    /// Reads the API server's request counters (from every replica).
    pub scraper: &'a RequestScraper,
    /// The recording, fault-injecting proxy every GitRepo clones through: the suites'
    /// view of the controller's git traffic, the same on every provider.
    pub git_proxy: &'a GitProxy,
    /// The controller's webhook URL as the git server reaches it, when known.
    pub webhook_url: Option<String>,
    /// Ctrl-C.
    pub cancel: CancellationToken,
    /// What exists so far.
    pub world: World,
    /// Set when a wait for quiet gave up with the controller still writing: measurements
    /// taken after it are flagged, since they may include that unfinished work.
    pub unsettled: Option<String>,
}

impl Context<'_> {
    /// Reads `apiserver_request_total` from every API server replica (authenticated like
    /// every other call, so it works on any provider).
    pub async fn scrape_requests(&self) -> Result<RequestTotals, StepError> {
        Ok(self.scraper.scrape().await?)
    }

    /// Sleeps, unless interrupted.
    pub async fn sleep(&self, duration: Duration) -> Result<(), StepError> {
        tokio::select! {
            () = tokio::time::sleep(duration) => Ok(()),
            () = self.cancel.cancelled() => Err(StepError::Cancelled),
        }
    }

    /// The workspace namespace.
    pub fn namespace(&self) -> &str {
        &self.suite.scale.namespace
    }
}

/// Runs one step.
pub async fn run(
    ctx: &mut Context<'_>,
    index: usize,
    step: &Step,
) -> Result<StepOutput, StepError> {
    let started = Instant::now();
    let label = format!("step {index} {}", step.action());
    let output = match step {
        Step::CreateClusters(spec) => cluster::create_clusters(ctx, spec, &label).await,
        Step::CreateClusterGroup(spec) => cluster::create_group(ctx, spec).await,
        Step::LabelCluster(spec) => cluster::label_cluster(ctx, spec, &label).await,
        Step::CreateRepos(spec) => git::create_repos(ctx, spec, &label).await,
        Step::Commit(spec) => git::commit(ctx, spec, &label).await,
        Step::BreakRepos(spec) => git::break_repos(ctx, spec).await,
        Step::HealRepos(spec) => git::heal_repos(ctx, spec).await,
        Step::CreateGitrepos(spec) => gitrepo::create_gitrepos(ctx, spec, &label).await,
        Step::EditTargets(spec) => gitrepo::edit_targets(ctx, spec, &label).await,
        Step::ApiFaults(spec) => api_faults(ctx, &spec.config).await,
        Step::Sleep(spec) => ctx.sleep(spec.duration.0).await.map(|()| StepOutput {
            message: format!("slept {}", spec.duration),
            ..StepOutput::default()
        }),
        Step::Settle(spec) => quiet::settle(ctx, spec, &label).await,
        Step::ObservePolling(spec) => observe::observe_polling(ctx, spec, &label).await,
        Step::StatusBurst(spec) => status::status_burst(ctx, spec, &label).await,
        Step::PartitionCluster(spec) => infra::partition_cluster(ctx, spec).await,
        Step::HealCluster(spec) => infra::heal_cluster(ctx, spec).await,
        Step::StopController(spec) => infra::stop_controller(ctx, spec).await,
        Step::StartController(_) => infra::start_controller(ctx).await,
        Step::WaitDeployed(spec) => infra::wait_deployed(ctx, spec, &label).await,
    }?;
    tracing::info!(
        "{label}: {} ({:.1}s)",
        output.message,
        started.elapsed().as_secs_f64()
    );
    Ok(output)
}

/// `api_faults`: PUT the JSON to the API server's `/fleetbench/faults`.
async fn api_faults(
    ctx: &Context<'_>,
    config: &serde_json::Value,
) -> Result<StepOutput, StepError> {
    if !ctx.endpoints.api_faults {
        return Err(StepError::Unsupported(
            "api_faults needs fleetbench's API server (/fleetbench/faults); this provider's cluster has none".to_string(),
        ));
    }
    let body = serde_json::to_vec(config).expect("JSON values serialise");
    let request = http::Request::put("/fleetbench/faults")
        .header("content-type", "application/json")
        .body(body)
        .expect("a static request builds");
    ctx.kube
        .request_text(request)
        .await
        .map_err(StepError::kube("set API server faults"))?;
    Ok(StepOutput {
        message: format!("API server faults set to {config}"),
        ..StepOutput::default()
    })
}
