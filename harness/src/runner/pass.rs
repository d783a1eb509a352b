//! One pass of a suite's steps in one environment: create the environment, start the
//! controller under test (when the harness runs it), put the git proxy and the watch
//! recorder in place, run the steps, collect what was measured, and tear everything down
//! again, whatever happened. A suite with a baseline runs two passes, one per profile.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::RunState;
use super::steps::{self, StepsOutcome};
use crate::cli::ControllerMode;
use crate::controller::{ControllerError, ControllerLaunch, DEFAULT_READY_TIMEOUT};
use crate::gitproxy::{GitProxy, GitProxyError, ProxyConfig};
use crate::measure::recorder::{Recorder, WaitError};
use crate::measure::resources::ResourceSampler;
use crate::measure::scrape::RequestScraper;
use crate::provider::{self, Environment, EnvironmentSpec, ProviderError, RunningController};
use crate::results::{ApiRequestCount, Measurement, ResourceUsage, StepResult};
use crate::steps::{Context, StepError, World};
use crate::suite::{LegacySwitch, Profile, Suite};

/// Sampling period of controller CPU and memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// Bound on tearing an environment down.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound on the watch recorder's initial lists.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Git requests the proxy keeps per suite pass (a 5-minute poll of 300 repos is ~3,000).
const GIT_PROXY_LOG_CAPACITY: usize = 1_000_000;
/// Bound on the git server's answer (its response head) to one proxied request.
const GIT_PROXY_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);
/// The controller's floor on polling intervals (Fleet's 15s default), which the bundled
/// controller enforces against runaway polling.
const CONTROLLER_MIN_POLLING_INTERVAL: Duration = Duration::from_secs(15);
/// The variable that lowers that floor.
const MIN_POLLING_INTERVAL_ENV: &str = "FLEET_MIN_POLLING_INTERVAL";

/// One pass of `suite` with the controller under `profile`.
pub(super) struct SuitePass<'a> {
    /// The run the pass belongs to (provider, controller mode, options).
    pub state: &'a RunState,
    /// The suite (after overrides).
    pub suite: &'a Suite,
    /// The profile the bundled controller runs with.
    pub profile: Profile,
    /// Legacy switches the bundled controller runs with.
    pub legacy: &'a [LegacySwitch],
    /// Where the controller's log and work files go.
    pub dir: PathBuf,
    /// Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// Whether what the pass learns of the cluster (versions) goes into the run's results:
    /// the subject pass's does, a baseline pass's would only repeat it.
    pub records_cluster_facts: bool,
}

/// What a pass learned about the cluster and its servers.
#[derive(Debug, Default)]
pub(super) struct ClusterFacts {
    pub kubernetes_version: Option<String>,
    pub git_server_version: Option<String>,
    /// Served versions of the fleet.cattle.io CRDs, as the cluster reports them.
    pub crd_versions: BTreeMap<String, Vec<String>>,
}

/// What a pass measured.
#[derive(Debug, Default)]
pub(super) struct PassOutput {
    pub measurements: BTreeMap<String, Measurement>,
    pub steps: Vec<StepResult>,
    pub api_requests: Vec<ApiRequestCount>,
    pub resources: Option<ResourceUsage>,
    pub controller_metrics: BTreeMap<String, f64>,
    /// Measurement-quality problems, in step order.
    pub quality: Vec<String>,
    /// Measurements taken by a step that had such a problem, with the problem.
    pub damaged: BTreeMap<String, String>,
}

/// Why a pass did not run to its end. The variants before [`PassError::Watch`] are set-up
/// failures of the environment or the controller, most of which every following suite
/// would meet again ([`PassError::is_fatal`] says which); from there on, the pass had
/// started, and what it measured until it stopped is kept ([`PassError::into_partial`]).
#[derive(Debug, thiserror::Error)]
pub(super) enum PassError {
    /// No scratch directory for the environment's files.
    #[error("cannot create a temporary directory")]
    Scratch(#[source] std::io::Error),
    /// The provider could not create the environment.
    #[error(transparent)]
    Environment(ProviderError),
    /// The environment's kubeconfig cannot be used.
    #[error(transparent)]
    Kubeconfig(ProviderError),
    /// No Kubernetes client can be built from the environment's kubeconfig.
    #[error("the environment's kubeconfig")]
    Client(#[source] fleet_api::error::Foreign<kube::Error>),
    /// The environment's API server does not answer.
    #[error(transparent)]
    Unreachable(ProviderError),
    /// The bundled controller was asked for without a binary.
    #[error("no controller binary")]
    NoControllerBinary,
    /// The controller did not start.
    #[error(transparent)]
    ControllerStart(ProviderError),
    /// The controller's start was interrupted (Ctrl-C): nothing that would repeat.
    #[error(transparent)]
    ControllerStartInterrupted(ProviderError),
    /// The git proxy could not start.
    #[error("cannot start the git proxy in front of {upstream}")]
    GitProxy {
        /// The git server it was to forward to.
        upstream: String,
        /// The proxy's error.
        source: GitProxyError,
    },
    /// The watches of fleet.cattle.io objects did not sync.
    #[error("watching fleet.cattle.io objects (are Fleet's CRDs installed? {first_watch_error:?})")]
    Watch {
        /// The first error a watch met, if any.
        first_watch_error: Option<String>,
        /// Why the wait ended.
        source: WaitError,
        /// What was measured.
        partial: Box<PassOutput>,
    },
    /// No client for the git server.
    #[error("git server at {url}")]
    Forge {
        /// The git server.
        url: String,
        /// The forge client's error.
        source: gitserver::forge::ForgeError,
        /// What was measured.
        partial: Box<PassOutput>,
    },
    /// Ctrl-C between steps.
    #[error("interrupted")]
    Interrupted {
        /// What was measured.
        partial: Box<PassOutput>,
    },
    /// The controller under test exited between steps. (Its exit is the whole message, as
    /// with `#[error(transparent)]`, which cannot carry the partial output beside it.)
    #[error("{}", crate::error_text(died))]
    ControllerDied {
        /// How it exited.
        died: ControllerError,
        /// What was measured.
        partial: Box<PassOutput>,
    },
    /// A step failed.
    #[error("step {index} ({action}) failed{}", died.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Step {
        /// The step's index in the suite.
        index: usize,
        /// The step's action.
        action: String,
        /// How the controller exited, when it had (often why the step failed).
        died: Option<String>,
        /// The step's error.
        source: StepError,
        /// What was measured.
        partial: Box<PassOutput>,
    },
}

impl PassError {
    /// The failure will repeat for every following suite (environment or controller
    /// unusable), so running them would only waste time.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            PassError::Scratch(_)
                | PassError::Environment(_)
                | PassError::Kubeconfig(_)
                | PassError::Client(_)
                | PassError::Unreachable(_)
                | PassError::NoControllerBinary
                | PassError::ControllerStart(_)
                | PassError::GitProxy { .. }
        )
    }

    /// What the pass measured before it stopped, if it had started.
    pub fn into_partial(self) -> Option<PassOutput> {
        match self {
            PassError::Watch { partial, .. }
            | PassError::Forge { partial, .. }
            | PassError::Interrupted { partial }
            | PassError::ControllerDied { partial, .. }
            | PassError::Step { partial, .. } => Some(*partial),
            _ => None,
        }
    }
}

impl SuitePass<'_> {
    /// Runs the pass in a new environment, and tears that environment down.
    pub async fn run(&self) -> Result<PassOutput, PassError> {
        let origin = Instant::now();
        let scratch = tempfile::Builder::new()
            .prefix("fleetbench-")
            .tempdir_in(scratch_root())
            .map_err(PassError::Scratch)?;
        let spec = EnvironmentSpec {
            suite: self.suite.name.clone(),
            work_dir: scratch.path().to_path_buf(),
            timeout: Duration::from_secs(120),
        };
        let environment = self
            .state
            .options
            .provider
            .create(&spec, self.cancel)
            .await
            .map_err(PassError::Environment)?;
        self.record(ClusterFacts {
            git_server_version: environment.endpoints().git_server_version.clone(),
            ..ClusterFacts::default()
        });
        let mut controller: Option<Box<dyn RunningController>> = None;
        let outcome = async {
            let (config, client) = self.connect(&*environment).await?;
            controller = self.start_controller(&*environment).await?;
            self.measure(&*environment, config, client, controller.as_mut(), origin)
                .await
        }
        .await;
        // Tear down while the controller still runs: on a real cluster it must remove its
        // finalizers and children as the harness deletes what it created.
        let suite = &self.suite.name;
        let teardown = Instant::now();
        match tokio::time::timeout(TEARDOWN_TIMEOUT, environment.teardown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(suite = %suite, error = %crate::error_text(&error), "teardown");
            }
            Err(_) => tracing::warn!(
                suite = %suite,
                "teardown did not finish within {TEARDOWN_TIMEOUT:?}; moving on"
            ),
        }
        tracing::debug!(
            suite = %suite,
            seconds = teardown.elapsed().as_secs_f64(),
            "environment torn down"
        );
        if let Some(controller) = controller {
            controller.stop().await;
        }
        let removing = Instant::now();
        let _ = tokio::task::spawn_blocking(move || drop(scratch)).await;
        tracing::debug!(
            suite = %suite,
            seconds = removing.elapsed().as_secs_f64(),
            "scratch directory removed"
        );
        outcome
    }

    fn record(&self, facts: ClusterFacts) {
        if self.records_cluster_facts {
            self.state.record_cluster_facts(facts);
        }
    }

    /// A client for the environment's API server, once it answers.
    async fn connect(
        &self,
        environment: &dyn Environment,
    ) -> Result<(kube::Config, kube::Client), PassError> {
        let endpoints = environment.endpoints();
        let config =
            provider::kube_config(&endpoints.kubeconfig_yaml, "the environment's kubeconfig")
                .await
                .map_err(PassError::Kubeconfig)?;
        let client =
            kube::Client::try_from(config.clone()).map_err(|e| PassError::Client(e.into()))?;
        let server_url = endpoints.kubeconfig_path.display().to_string();
        let version = provider::check_reachable(&client, &server_url, &server_url)
            .await
            .map_err(PassError::Unreachable)?;
        self.record(ClusterFacts {
            kubernetes_version: Some(version),
            ..ClusterFacts::default()
        });
        Ok((config, client))
    }

    /// Starts the bundled controller; an external one is already running.
    async fn start_controller(
        &self,
        environment: &dyn Environment,
    ) -> Result<Option<Box<dyn RunningController>>, PassError> {
        let options = &self.state.options;
        if options.controller_mode != ControllerMode::Bundled {
            return Ok(None);
        }
        let Some(binary) = options.controller_bin.clone() else {
            return Err(PassError::NoControllerBinary);
        };
        let suite = self.suite;
        let launch = ControllerLaunch {
            binary,
            kubeconfig: environment.endpoints().kubeconfig_path.clone(),
            profile: self.profile,
            legacy: self.legacy.to_vec(),
            agent: suite.controller.agent,
            env: controller_env(suite),
            extra_args: suite.controller.args.clone(),
            ready_timeout: suite
                .controller
                .ready_timeout
                .map_or(DEFAULT_READY_TIMEOUT, |d| d.0),
            work_dir: self.dir.clone(),
        };
        environment
            .start_controller(&launch, self.cancel)
            .await
            .map(Some)
            .map_err(|error| {
                if self.cancel.is_cancelled() {
                    PassError::ControllerStartInterrupted(error)
                } else {
                    PassError::ControllerStart(error)
                }
            })
    }

    /// The git proxy, the recorder and the steps, with the controller's resources sampled
    /// throughout.
    async fn measure(
        &self,
        environment: &dyn Environment,
        config: kube::Config,
        client: kube::Client,
        mut controller: Option<&mut Box<dyn RunningController>>,
        origin: Instant,
    ) -> Result<PassOutput, PassError> {
        let endpoints = environment.endpoints();
        let sampler = controller
            .as_ref()
            .and_then(|c| c.resources())
            .map(|source| ResourceSampler::start(source, origin, SAMPLE_EVERY));
        let webhook_url = controller
            .as_ref()
            .map(|c| c.webhook_url())
            .or_else(|| self.state.options.webhook_url.clone());
        let controller_address = controller.as_ref().map(|c| c.address());
        self.record(ClusterFacts {
            crd_versions: served_fleet_crd_versions(&client).await,
            ..ClusterFacts::default()
        });
        let placement = environment.git_proxy_placement();
        let git_proxy = GitProxy::start(ProxyConfig {
            listen: placement.listen,
            upstream: endpoints.git_api_url.clone(),
            public_url: placement.public_url.clone(),
            log_capacity: GIT_PROXY_LOG_CAPACITY,
            upstream_timeout: GIT_PROXY_UPSTREAM_TIMEOUT,
        })
        .await
        .map_err(|source| PassError::GitProxy {
            upstream: endpoints.git_api_url.clone(),
            source,
        })?;
        tracing::debug!(proxy = %git_proxy.url(), upstream = %endpoints.git_api_url, "git proxy up");
        let scraper = RequestScraper::discover(client.clone(), &config).await;
        if let Some(problem) = scraper.problem() {
            tracing::warn!("{problem}");
        }
        let recorder = Recorder::start(&client, origin);
        let ran = async {
            if let Err(source) = recorder.wait_synced(SYNC_TIMEOUT, self.cancel).await {
                return Err(Stopped::Watch {
                    first_watch_error: recorder.errors().into_iter().next(),
                    source,
                });
            }
            let forge = gitserver::forge::ForgeClient::new(
                &endpoints.git_api_url,
                gitserver::forge::Auth::Basic {
                    user: endpoints.git_user.clone(),
                    password: endpoints.git_password.clone(),
                },
            )
            .map_err(|source| Stopped::Forge {
                url: endpoints.git_api_url.clone(),
                source,
            })?;
            let mut context = Context {
                suite: self.suite,
                kube: client.clone(),
                forge,
                endpoints,
                environment,
                recorder: &recorder,
                scraper: &scraper,
                git_proxy: &git_proxy,
                webhook_url,
                cancel: self.cancel.clone(),
                world: World::default(),
                unsettled: None,
            };
            Ok(steps::run(&mut context, controller.as_deref_mut(), origin).await)
        }
        .await;
        drop(recorder);
        git_proxy.shutdown().await;
        let resources = sampler.and_then(|sampler| {
            let usage = sampler.finish();
            // No sample at all is no measurement, not a controller that used nothing.
            if usage.samples.is_empty() {
                tracing::warn!("the controller's CPU and memory could not be read; none reported");
                None
            } else {
                Some(usage)
            }
        });
        let controller_metrics = match controller_address {
            Some(address) => controller_metrics(address).await,
            None => BTreeMap::new(),
        };
        let finish = |steps: StepsOutcome| -> (PassOutput, Option<steps::StepsStopped>) {
            let output = PassOutput {
                measurements: steps.measurements,
                steps: steps.steps,
                api_requests: steps.api_requests,
                resources,
                controller_metrics,
                quality: steps.quality,
                damaged: steps.damaged,
            };
            (output, steps.stopped)
        };
        match ran {
            Ok(steps) => {
                let (output, stopped) = finish(steps);
                let partial = Box::new(output);
                match stopped {
                    None => Ok(*partial),
                    Some(steps::StepsStopped::Interrupted) => {
                        Err(PassError::Interrupted { partial })
                    }
                    Some(steps::StepsStopped::ControllerDied(died)) => {
                        Err(PassError::ControllerDied { died, partial })
                    }
                    Some(steps::StepsStopped::Step {
                        index,
                        action,
                        died,
                        source,
                    }) => Err(PassError::Step {
                        index,
                        action,
                        died,
                        source,
                        partial,
                    }),
                }
            }
            Err(stopped) => {
                let (output, _) = finish(StepsOutcome::default());
                let partial = Box::new(output);
                Err(match stopped {
                    Stopped::Watch {
                        first_watch_error,
                        source,
                    } => PassError::Watch {
                        first_watch_error,
                        source,
                        partial,
                    },
                    Stopped::Forge { url, source } => PassError::Forge {
                        url,
                        source,
                        partial,
                    },
                })
            }
        }
    }
}

/// Why the steps did not start, before there is anything to keep.
enum Stopped {
    Watch {
        first_watch_error: Option<String>,
        source: WaitError,
    },
    Forge {
        url: String,
        source: gitserver::forge::ForgeError,
    },
}

/// Where environments keep their files (git repositories, kubeconfigs): `$FLEETBENCH_SCRATCH`,
/// else memory-backed `/dev/shm` when it exists (git writes and the removal of hundreds of
/// repositories then cost nothing measurable), else the system's temporary directory.
fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLEETBENCH_SCRATCH") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && tempfile::Builder::new()
            .prefix("fleetbench-probe-")
            .tempfile_in(shm)
            .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The bundled controller's environment: the suite's, plus a lower polling floor when the
/// suite polls faster than the controller allows by default (the smoke suites poll every
/// few seconds). The floor is lowered exactly to the suite's shortest interval, so it still
/// catches anything faster, and it shows in the results' settings like any other variable.
pub(super) fn controller_env(suite: &Suite) -> BTreeMap<String, String> {
    let mut env = suite.controller.env.clone();
    let shortest = suite
        .steps
        .iter()
        .filter_map(|step| match step {
            crate::suite::Step::CreateGitrepos(spec) => spec.polling_interval,
            _ => None,
        })
        .chain([suite.scale.polling_interval])
        .map(|interval| interval.0)
        .min()
        .unwrap_or(CONTROLLER_MIN_POLLING_INTERVAL);
    if shortest < CONTROLLER_MIN_POLLING_INTERVAL {
        env.entry(MIN_POLLING_INTERVAL_ENV.to_string())
            .or_insert_with(|| format!("{}ms", shortest.as_millis()));
    }
    env
}

/// What the cluster serves of fleet.cattle.io: each CRD's served versions. Observed, not
/// assumed, so that results about a controller the harness did not start say at least
/// which API it spoke. Best effort: empty when CRDs cannot be listed (RBAC, timeout).
async fn served_fleet_crd_versions(client: &kube::Client) -> BTreeMap<String, Vec<String>> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let listed = tokio::time::timeout(
        Duration::from_secs(15),
        api.list(&kube::api::ListParams::default()),
    )
    .await;
    let Ok(Ok(list)) = listed else {
        tracing::debug!("cannot list CRDs; the results will not name the served versions");
        return BTreeMap::new();
    };
    list.items
        .into_iter()
        .filter(|crd| crd.spec.group == crate::results::FLEET_GROUP)
        .filter_map(|crd| {
            let name = crd.metadata.name?;
            let versions = crd
                .spec
                .versions
                .into_iter()
                .filter(|v| v.served)
                .map(|v| v.name)
                .collect();
            Some((name, versions))
        })
        .collect()
}

/// The controller's own counters (best effort: an empty map when it does not answer).
async fn controller_metrics(address: SocketAddr) -> BTreeMap<String, f64> {
    crate::init_crypto();
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
    else {
        return BTreeMap::new();
    };
    let text = match client.get(format!("http://{address}/metrics")).send().await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    crate::measure::metrics::samples_with_prefix(
        &text,
        &["fleet_", "controller_runtime_reconcile_total"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::parse_suite;

    #[test]
    fn the_polling_floor_is_lowered_only_to_the_suites_shortest_interval() {
        let mut fast = parse_suite(
            r#"
name: polls
scale: {gitrepos: 3}
controller: {agent: none}
steps:
  - create_clusters: {labels: {env: a}}
  - create_repos: {}
  - create_gitrepos: {targets: [{clusterSelector: {matchLabels: {env: a}}}]}
  - settle: {}
  - status_burst: {measure: writes}
slos:
  - {name: few, measurement: writes, stat: value, max: 10}
"#,
            Path::new("t.yaml"),
        )
        .unwrap();
        assert!(
            !controller_env(&fast).contains_key(MIN_POLLING_INTERVAL_ENV),
            "15s needs no change"
        );
        fast.scale.polling_interval = crate::suite::GoDuration::from_secs(5);
        assert_eq!(
            controller_env(&fast)[MIN_POLLING_INTERVAL_ENV],
            "5000ms",
            "exactly the suite's interval, so anything faster is still caught"
        );
    }
}
