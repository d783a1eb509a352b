//! Upstream Fleet on the kind provider: installed with Helm into the management cluster,
//! so the suites measure Rancher's own controller (`--controller external`) on the same
//! clusters, Gitea and git proxy the bundled controller is measured on.
//!
//! Why it is built this way: nothing here can run on the project's development machine (no
//! kind, no images, no Helm, no registry), so every decision is a pure function the unit
//! tests check exactly (the chart references, both `helm install` command lines, the values
//! file, Fleet's view of the management API server, the rollout check), and the effects are
//! thin: the bounded [`CommandLine::run`] of [`super::command`], and a bounded poll of one
//! Deployment. A stand-in `helm` script runs the whole install sequence in the tests.
//!
//! What is installed, in namespace [`FLEET_NAMESPACE`]:
//! 1. the `fleet-crd` chart (Fleet's CRDs), then
//! 2. the `fleet` chart, with a generated values file: `apiServerURL` and `apiServerCA`
//!    point at the management cluster as the downstream clusters' nodes reach it (kind's
//!    in-network name, so manager-initiated registration can deploy working agents),
//!    `gitops.enabled`, `metrics.enabled`, and every controller reconciler's worker count
//!    set explicitly (the chart's default is 50; a benchmark records what it ran with).
//!    Files named by [`VALUES_ENV`] come after it, so a user's values win.
//!
//! Both run with `--wait` and a bound; then `fleet-controller` must report Available
//! within the same bound. Downstream kind clusters are registered the Fleet way by the
//! environment (see [`super::downstream`]).

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use super::command::{CommandError, CommandLine};
use super::options::{Lookup, OptionsError};
use crate::provider::docker::kubeconfig::KubeconfigError;

/// The `fleet` chart to install; setting it turns upstream Fleet on.
pub const CHART_ENV: &str = "FLEETBENCH_KIND_FLEET_CHART";
/// The `fleet-crd` chart (default: the `fleet-crd` beside [`CHART_ENV`]'s chart).
pub const CRD_CHART_ENV: &str = "FLEETBENCH_KIND_FLEET_CRD_CHART";
/// `helm --version` for repository and OCI charts.
pub const VERSION_ENV: &str = "FLEETBENCH_KIND_FLEET_VERSION";
/// Extra values files for the `fleet` chart, comma-separated, applied after fleetbench's.
pub const VALUES_ENV: &str = "FLEETBENCH_KIND_FLEET_VALUES";
/// Workers of each controller reconciler (`controller.reconciler.workers.*`).
pub const WORKERS_ENV: &str = "FLEETBENCH_KIND_FLEET_WORKERS";
/// Bound, in seconds, on each `helm install` and on fleet-controller becoming available.
pub const TIMEOUT_ENV: &str = "FLEETBENCH_KIND_FLEET_TIMEOUT";

/// Where Fleet is installed (Fleet's own choice; its agents default to it too).
pub const FLEET_NAMESPACE: &str = "cattle-fleet-system";
/// Helm release of the CRD chart.
pub const CRD_RELEASE: &str = "fleet-crd";
/// Helm release of the Fleet chart.
pub const RELEASE: &str = "fleet";
/// The Deployment that must become available.
pub const CONTROLLER_DEPLOYMENT: &str = "fleet-controller";
/// The chart's own default worker count, used unless [`WORKERS_ENV`] says otherwise.
pub const DEFAULT_WORKERS: u32 = 50;
/// Default of [`TIMEOUT_ENV`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The controller reconcilers whose workers are set (`controller.reconciler.workers.<r>`).
pub const RECONCILERS: [&str; 5] = [
    "gitrepo",
    "bundle",
    "bundledeployment",
    "cluster",
    "clustergroup",
];
/// Fleet's chart repository (for messages).
pub const CHART_REPOSITORY: &str = "https://rancher.github.io/fleet-helm-charts/";
/// The values file written into the run's directory.
pub const VALUES_FILE: &str = "fleet-values.yaml";
/// How often the rollout is looked at.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// Slack between helm's own `--timeout` and the kill of its process.
const HELM_GRACE: Duration = Duration::from_secs(60);

/// Why Fleet could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A `helm` command failed or ran too long.
    #[error("installing upstream Fleet failed")]
    Helm(#[from] CommandError),
    /// The management cluster's in-network kubeconfig lacks what Fleet's values need.
    #[error(
        "the management cluster's in-network kubeconfig cannot give Fleet its apiServerURL/apiServerCA: {0}"
    )]
    Kubeconfig(String),
    /// The management cluster's in-network kubeconfig cannot be read.
    #[error(
        "the management cluster's in-network kubeconfig cannot give Fleet its apiServerURL/apiServerCA"
    )]
    KubeconfigUnreadable(#[source] KubeconfigError),
    /// The management cluster's CA data is not base64.
    #[error(
        "the management cluster's in-network kubeconfig cannot give Fleet its apiServerURL/apiServerCA: certificate-authority-data is not base64"
    )]
    CaData(#[source] serde_json::Error),
    /// The values could not be written as YAML.
    #[error("cannot write Fleet's values as YAML")]
    Values(#[source] serde_saphyr::SerializeError),
    /// A file could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No client for the management cluster.
    #[error("cannot watch Fleet's rollout on the management cluster")]
    Client(#[source] KubeconfigError),
    /// A Deployment did not become available in time.
    #[error(
        "Deployment {namespace}/{name} was not available within {after:?} of `helm install` (last seen: {last}); look with `kubectl --kubeconfig {kubeconfig} -n {namespace} describe deployment {name}` (missing images are the usual cause where the nodes cannot pull: list them in FLEETBENCH_KIND_LOAD_IMAGES)"
    )]
    NotAvailable {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The bound.
        after: Duration,
        /// Its last observed state.
        last: String,
        /// The management cluster's host kubeconfig file.
        kubeconfig: String,
    },
}

/// Where a chart comes from, as `helm install` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartRef {
    /// A chart directory or a packaged `.tgz` on this machine (the preflight checks it).
    Local(PathBuf),
    /// A packaged chart at an `http(s)://` URL.
    Url(String),
    /// `repo/chart` from a repository added with `helm repo add`.
    Repo(String),
    /// An `oci://` reference.
    Oci(String),
}

impl fmt::Display for ChartRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartRef::Local(path) => write!(f, "{}", path.display()),
            ChartRef::Url(s) | ChartRef::Repo(s) | ChartRef::Oci(s) => f.write_str(s),
        }
    }
}

impl ChartRef {
    /// Classifies `value` as helm would: URLs and OCI references by scheme; `name/chart`
    /// is a repository chart unless such a path exists here (helm prefers the path);
    /// everything else is a path.
    pub fn parse(value: &str, exists: &dyn Fn(&Path) -> bool) -> Self {
        let value = value.trim();
        if value.starts_with("oci://") {
            return ChartRef::Oci(value.to_string());
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            return ChartRef::Url(value.to_string());
        }
        let name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && !s.starts_with('.')
        };
        let repo_like = value
            .split_once('/')
            .is_some_and(|(repo, chart)| name(repo) && name(chart) && !chart.ends_with(".tgz"));
        if repo_like && !exists(Path::new(value)) {
            ChartRef::Repo(value.to_string())
        } else {
            ChartRef::Local(PathBuf::from(value))
        }
    }

    /// Whether `helm --version` selects what gets installed (it does not for a path or a
    /// URL, whose version is what the file is).
    pub fn is_versioned(&self) -> bool {
        matches!(self, ChartRef::Repo(_) | ChartRef::Oci(_))
    }

    /// The `fleet-crd` chart published beside this `fleet` chart, when the name says so:
    /// `fleet/fleet` -> `fleet/fleet-crd`, `.../fleet` -> `.../fleet-crd`,
    /// `.../fleet-0.12.13.tgz` -> `.../fleet-crd-0.12.13.tgz` (Fleet's release assets and
    /// `helm pull` use these names).
    pub fn crd_sibling(&self) -> Option<ChartRef> {
        let text = self.to_string();
        let trimmed = text.trim_end_matches('/');
        let (dir, last) = match trimmed.rsplit_once('/') {
            Some((dir, last)) => (Some(dir), last),
            None => (None, trimmed),
        };
        let sibling = if last == "fleet" {
            "fleet-crd".to_string()
        } else {
            let rest = last.strip_prefix("fleet-")?;
            let versioned = rest
                .trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit());
            if !versioned || !(rest.ends_with(".tgz") || rest.ends_with(".tar.gz")) {
                return None;
            }
            format!("fleet-crd-{rest}")
        };
        let joined = match dir {
            Some(dir) => format!("{dir}/{sibling}"),
            None => sibling,
        };
        Some(match self {
            ChartRef::Local(_) => ChartRef::Local(PathBuf::from(joined)),
            ChartRef::Url(_) => ChartRef::Url(joined),
            ChartRef::Repo(_) => ChartRef::Repo(joined),
            ChartRef::Oci(_) => ChartRef::Oci(joined),
        })
    }
}

/// How upstream Fleet is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSettings {
    /// The `fleet` chart.
    pub chart: ChartRef,
    /// The `fleet-crd` chart.
    pub crd_chart: ChartRef,
    /// `--version` (repository and OCI charts only).
    pub version: Option<String>,
    /// The user's values files, applied after fleetbench's.
    pub values_files: Vec<PathBuf>,
    /// Workers of each controller reconciler.
    pub workers: u32,
    /// Bound on each install and on the rollout.
    pub timeout: Duration,
}

impl FleetSettings {
    /// Reads the `FLEETBENCH_KIND_FLEET_*` variables: `None` when [`CHART_ENV`] is unset
    /// (and no other of them is, which would be a mistake worth stopping for).
    pub fn from_lookup(
        lookup: &Lookup<'_>,
        exists: &dyn Fn(&Path) -> bool,
    ) -> Result<Option<Self>, OptionsError> {
        let Some(chart) = lookup(CHART_ENV) else {
            let stray = [
                CRD_CHART_ENV,
                VERSION_ENV,
                VALUES_ENV,
                WORKERS_ENV,
                TIMEOUT_ENV,
            ]
            .into_iter()
            .find(|v| lookup(v).is_some());
            return match stray {
                Some(variable) => Err(OptionsError::Needs {
                    variable,
                    needs: CHART_ENV,
                    why: "upstream Fleet is installed only when its chart is named".to_string(),
                }),
                None => Ok(None),
            };
        };
        let chart = ChartRef::parse(&chart, exists);
        let crd_chart = match lookup(CRD_CHART_ENV) {
            Some(crd) => ChartRef::parse(&crd, exists),
            None => chart.crd_sibling().ok_or_else(|| OptionsError::Invalid {
                variable: CHART_ENV,
                value: chart.to_string(),
                reason: format!(
                    "the fleet-crd chart cannot be told from this name; set {CRD_CHART_ENV} too"
                ),
            })?,
        };
        let version = lookup(VERSION_ENV);
        if let Some(version) = &version {
            for (variable, chart) in [(CHART_ENV, &chart), (CRD_CHART_ENV, &crd_chart)] {
                if !chart.is_versioned() {
                    return Err(OptionsError::Invalid {
                        variable: VERSION_ENV,
                        value: version.clone(),
                        reason: format!(
                            "helm --version picks a chart from a repository or an OCI registry; {variable} names {chart}, whose version is fixed (unset {VERSION_ENV}, or name a repository chart such as fleet/fleet)"
                        ),
                    });
                }
            }
        }
        let values_files = lookup(VALUES_ENV)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let workers = match lookup(WORKERS_ENV) {
            None => DEFAULT_WORKERS,
            Some(value) => match value.parse::<u32>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(OptionsError::Invalid {
                        variable: WORKERS_ENV,
                        value,
                        reason: "expected a number of workers from 1 to 10000".to_string(),
                    });
                }
            },
        };
        let timeout = match lookup(TIMEOUT_ENV) {
            None => DEFAULT_TIMEOUT,
            Some(value) => match value.parse::<u64>() {
                Ok(s) if (30..=3600).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(OptionsError::Invalid {
                        variable: TIMEOUT_ENV,
                        value,
                        reason: "expected seconds, from 30 to 3600".to_string(),
                    });
                }
            },
        };
        Ok(Some(Self {
            chart,
            crd_chart,
            version,
            values_files,
            workers,
            timeout,
        }))
    }

    /// What is installed, for messages and results (`fleet/fleet 0.12.13`).
    pub fn describe(&self) -> String {
        match &self.version {
            Some(version) => format!("{} {version}", self.chart),
            None => self.chart.to_string(),
        }
    }

    /// The charts given as paths, each with where its name came from: what the preflight
    /// checks (with [`FleetSettings::values_files`]).
    pub fn local_charts(&self) -> Vec<(String, PathBuf)> {
        let crd_source = if self.chart.crd_sibling().as_ref() == Some(&self.crd_chart) {
            format!("the fleet-crd chart expected beside {CHART_ENV}; or set {CRD_CHART_ENV}")
        } else {
            CRD_CHART_ENV.to_string()
        };
        let mut files = Vec::new();
        for (source, chart) in [
            (CHART_ENV.to_string(), &self.chart),
            (crd_source, &self.crd_chart),
        ] {
            if let ChartRef::Local(path) = chart {
                files.push((source, path.clone()));
            }
        }
        files
    }
}

/// The `helm` CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    binary: PathBuf,
}

impl Helm {
    /// `helm` at `binary`.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `helm install RELEASE CHART` into [`FLEET_NAMESPACE`] of the cluster `kubeconfig`
    /// reaches, waiting for its resources up to `timeout`.
    pub fn install(
        &self,
        release: &str,
        chart: &ChartRef,
        version: Option<&str>,
        kubeconfig: &Path,
        values: &[PathBuf],
        timeout: Duration,
    ) -> CommandLine {
        let mut args: Vec<String> = [
            "install",
            release,
            &chart.to_string(),
            "--namespace",
            FLEET_NAMESPACE,
            "--create-namespace",
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--wait",
            "--timeout",
            &format!("{}s", timeout.as_secs().max(1)),
        ]
        .into_iter()
        .map(str::to_string)
        .collect();
        if let Some(version) = version.filter(|_| chart.is_versioned()) {
            args.extend(["--version".to_string(), version.to_string()]);
        }
        for file in values {
            args.extend(["--values".to_string(), file.display().to_string()]);
        }
        CommandLine {
            program: self.binary.clone(),
            args,
        }
    }

    /// `helm version --short`.
    pub fn version(&self) -> CommandLine {
        CommandLine {
            program: self.binary.clone(),
            args: vec!["version".to_string(), "--short".to_string()],
        }
    }
}

/// The two installs, in order: the CRDs, then Fleet with fleetbench's values file and the
/// user's after it.
pub fn install_lines(
    helm: &Helm,
    settings: &FleetSettings,
    kubeconfig: &Path,
    generated_values: &Path,
) -> [CommandLine; 2] {
    let version = settings.version.as_deref();
    let values: Vec<PathBuf> = std::iter::once(generated_values.to_path_buf())
        .chain(settings.values_files.iter().cloned())
        .collect();
    [
        helm.install(
            CRD_RELEASE,
            &settings.crd_chart,
            version,
            kubeconfig,
            &[],
            settings.timeout,
        ),
        helm.install(
            RELEASE,
            &settings.chart,
            version,
            kubeconfig,
            &values,
            settings.timeout,
        ),
    ]
}

/// The management cluster's API server as the downstream clusters' nodes reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementApi {
    /// `https://<cluster>-control-plane:6443`.
    pub url: String,
    /// The cluster CA, PEM.
    pub ca_pem: String,
}

/// Reads [`ManagementApi`] from the management cluster's in-network kubeconfig (`kind get
/// kubeconfig --internal`): its current context's server and CA data.
pub fn management_api(internal_kubeconfig: &str) -> Result<ManagementApi, FleetError> {
    let bad = |reason: String| FleetError::Kubeconfig(reason);
    let url = crate::provider::docker::kubeconfig::server_of(internal_kubeconfig)
        .map_err(FleetError::KubeconfigUnreadable)?;
    let config = kube::config::Kubeconfig::from_yaml(internal_kubeconfig)
        .map_err(|e| FleetError::KubeconfigUnreadable(KubeconfigError::Parse(e)))?;
    let current = config.current_context.as_deref().unwrap_or_default();
    let cluster_name = config
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let data = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| {
            bad(format!(
                "cluster {cluster_name:?} has no certificate-authority-data"
            ))
        })?;
    // k8s-openapi's ByteString reads base64 as the API does; no extra decoder needed.
    let bytes: k8s_openapi::ByteString =
        serde_json::from_value(Value::String(data)).map_err(FleetError::CaData)?;
    let ca_pem = String::from_utf8(bytes.0)
        .ok()
        .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| bad("certificate-authority-data is not a PEM certificate".to_string()))?;
    Ok(ManagementApi { url, ca_pem })
}

/// fleetbench's values for the `fleet` chart (names as in Fleet's chart).
pub fn values(settings: &FleetSettings, api: &ManagementApi) -> Value {
    let workers: serde_json::Map<String, Value> = RECONCILERS
        .iter()
        // The chart quotes them: they become environment variables.
        .map(|r| (r.to_string(), Value::String(settings.workers.to_string())))
        .collect();
    json!({
        "apiServerURL": api.url,
        "apiServerCA": api.ca_pem,
        "gitops": { "enabled": true },
        "metrics": { "enabled": true },
        "controller": { "reconciler": { "workers": workers } },
    })
}

/// [`values`] as the YAML file helm reads.
pub fn values_yaml(settings: &FleetSettings, api: &ManagementApi) -> Result<String, FleetError> {
    let body = serde_saphyr::to_string(&values(settings, api)).map_err(FleetError::Values)?;
    Ok(format!(
        "# Written by fleetbench for upstream Fleet on kind; {VALUES_ENV} files override it.\n{body}"
    ))
}

/// Runs both installs against the management cluster whose kubeconfigs are given
/// (`kubeconfig_file`: the host's view; `internal_kubeconfig`: the nodes' view), writing
/// the values file into `work_dir`.
pub async fn install_charts(
    helm: &Helm,
    settings: &FleetSettings,
    kubeconfig_file: &Path,
    internal_kubeconfig: &str,
    work_dir: &Path,
) -> Result<(), FleetError> {
    let api = management_api(internal_kubeconfig)?;
    let path = work_dir.join(VALUES_FILE);
    std::fs::write(&path, values_yaml(settings, &api)?).map_err(|source| FleetError::Io {
        path: path.clone(),
        source,
    })?;
    for line in install_lines(helm, settings, kubeconfig_file, &path) {
        tracing::info!(command = %line, "installing upstream Fleet");
        line.run(settings.timeout + HELM_GRACE).await?;
    }
    Ok(())
}

/// What a Deployment's status says about its rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    /// There is no such Deployment.
    Absent,
    /// Not available yet, and why.
    Waiting(String),
    /// Available, for the current generation.
    Available,
}

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollout::Absent => f.write_str("the Deployment does not exist"),
            Rollout::Waiting(why) => f.write_str(why),
            Rollout::Available => f.write_str("available"),
        }
    }
}

/// Reads a Deployment's rollout: available when its `Available` condition is true for the
/// generation the controller last observed (an older observation says nothing about the
/// current spec).
pub fn rollout(deployment: Option<&Deployment>) -> Rollout {
    let Some(deployment) = deployment else {
        return Rollout::Absent;
    };
    let Some(status) = deployment.status.as_ref() else {
        return Rollout::Waiting("no status yet".to_string());
    };
    if let (Some(generation), Some(observed)) =
        (deployment.metadata.generation, status.observed_generation)
        && observed < generation
    {
        return Rollout::Waiting(format!(
            "generation {generation} not observed yet (observed {observed})"
        ));
    }
    let available = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Available");
    match available {
        Some(c) if c.status == "True" => Rollout::Available,
        other => Rollout::Waiting(format!(
            "{}/{} replicas available{}",
            status.available_replicas.unwrap_or(0),
            deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1),
            other
                .and_then(|c| c.message.as_deref())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
    }
}

/// Polls `fetch` every `every` until the Deployment is available, for at most `timeout`.
/// Errors while fetching count as "not yet" (an API server may blink during an install);
/// the last one is reported if time runs out.
pub async fn wait_available<F, Fut, E>(
    mut fetch: F,
    timeout: Duration,
    every: Duration,
) -> Result<(), StillUnavailable>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<Deployment>, E>>,
    E: std::error::Error,
{
    let mut last = "not looked at yet".to_string();
    let polled = tokio::time::timeout(timeout, async {
        loop {
            match fetch().await {
                Ok(deployment) => match rollout(deployment.as_ref()) {
                    Rollout::Available => return,
                    waiting => last = waiting.to_string(),
                },
                Err(error) => last = format!("cannot read it: {}", crate::error_text(&error)),
            }
            tokio::time::sleep(every).await;
        }
    })
    .await;
    polled.map_err(|_| StillUnavailable { last })
}

/// A Deployment that was not available when the wait for it ended.
#[derive(Debug, thiserror::Error)]
#[error("not available; last seen: {last}")]
pub struct StillUnavailable {
    /// Its last observed state, or why it could not be read.
    pub last: String,
}

/// Waits (bounded) for `fleet-controller` to be available on the cluster `client` reaches.
pub async fn wait_controller(
    client: &kube::Client,
    timeout: Duration,
    kubeconfig_file: &Path,
) -> Result<(), FleetError> {
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), FLEET_NAMESPACE);
    wait_available(
        || async { api.get_opt(CONTROLLER_DEPLOYMENT).await },
        timeout,
        POLL_EVERY,
    )
    .await
    .map_err(|StillUnavailable { last }| FleetError::NotAvailable {
        namespace: FLEET_NAMESPACE.to_string(),
        name: CONTROLLER_DEPLOYMENT.to_string(),
        after: timeout,
        last,
        kubeconfig: kubeconfig_file.display().to_string(),
    })
}

/// Installs Fleet into the management cluster and waits for its controller.
pub async fn install(
    helm: &Helm,
    settings: &FleetSettings,
    kubeconfig_file: &Path,
    host_kubeconfig: &str,
    internal_kubeconfig: &str,
    work_dir: &Path,
) -> Result<(), FleetError> {
    install_charts(
        helm,
        settings,
        kubeconfig_file,
        internal_kubeconfig,
        work_dir,
    )
    .await?;
    let client = crate::provider::docker::kubeconfig::client(host_kubeconfig)
        .await
        .map_err(FleetError::Client)?;
    wait_controller(&client, settings.timeout, kubeconfig_file).await
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt as _;

    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};

    use super::*;

    /// A self-signed certificate's PEM, shortened (only its framing is looked at).
    pub(crate) const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBADAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwprdWJlcm5ldGVz\n-----END CERTIFICATE-----\n";

    /// What `kind get kubeconfig --internal` prints for `cluster`, with [`CA_PEM`].
    pub(crate) fn internal_kubeconfig(cluster: &str) -> String {
        let ca: String = serde_json::to_value(k8s_openapi::ByteString(CA_PEM.as_bytes().to_vec()))
            .expect("encodes")
            .as_str()
            .expect("a string")
            .to_string();
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://{cluster}-control-plane:6443\n  name: kind-{cluster}\ncontexts:\n- context:\n    cluster: kind-{cluster}\n    user: kind-{cluster}\n  name: kind-{cluster}\ncurrent-context: kind-{cluster}\npreferences: {{}}\nusers:\n- name: kind-{cluster}\n  user:\n    client-certificate-data: eA==\n    client-key-data: eA==\n"
        )
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    fn nothing_exists(_: &Path) -> bool {
        false
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Option<FleetSettings>, OptionsError> {
        FleetSettings::from_lookup(&lookup(vars), &nothing_exists)
    }

    fn local(chart: &str, crd: &str) -> FleetSettings {
        settings(&[(CHART_ENV, chart), (CRD_CHART_ENV, crd)])
            .expect("valid")
            .expect("set")
    }

    #[test]
    fn chart_references_are_classified_as_helm_reads_them() {
        let parse = |v: &str| ChartRef::parse(v, &nothing_exists);
        assert_eq!(parse("fleet/fleet"), ChartRef::Repo("fleet/fleet".into()));
        assert_eq!(
            parse("oci://ghcr.io/rancher/fleet"),
            ChartRef::Oci("oci://ghcr.io/rancher/fleet".into())
        );
        assert_eq!(
            parse("https://example.com/fleet-0.12.13.tgz"),
            ChartRef::Url("https://example.com/fleet-0.12.13.tgz".into())
        );
        for path in [
            "/charts/fleet",
            "./fleet",
            "charts/fleet-0.12.13.tgz",
            "fleet-0.12.13.tgz",
            "a/b/c",
            "fleet",
        ] {
            assert_eq!(parse(path), ChartRef::Local(path.into()), "{path}");
        }
        // helm prefers an existing directory over a repository of the same name.
        let here = |p: &Path| p == Path::new("charts/fleet");
        assert_eq!(
            ChartRef::parse("charts/fleet", &here),
            ChartRef::Local("charts/fleet".into())
        );
        assert!(parse("fleet/fleet").is_versioned() && parse("oci://r/fleet").is_versioned());
        assert!(
            !parse("/c/fleet").is_versioned() && !parse("https://h/fleet-1.tgz").is_versioned()
        );
    }

    #[test]
    fn the_crd_chart_is_found_beside_the_fleet_chart() {
        let sibling = |v: &str| ChartRef::parse(v, &nothing_exists).crd_sibling();
        assert_eq!(
            sibling("fleet/fleet"),
            Some(ChartRef::Repo("fleet/fleet-crd".into()))
        );
        assert_eq!(
            sibling("/tmp/charts/fleet-0.12.13.tgz"),
            Some(ChartRef::Local("/tmp/charts/fleet-crd-0.12.13.tgz".into()))
        );
        assert_eq!(
            sibling("/src/fleet/charts/fleet/"),
            Some(ChartRef::Local("/src/fleet/charts/fleet-crd".into()))
        );
        assert_eq!(
            sibling(
                "https://github.com/rancher/fleet/releases/download/v0.12.13/fleet-0.12.13.tgz"
            ),
            Some(ChartRef::Url(
                "https://github.com/rancher/fleet/releases/download/v0.12.13/fleet-crd-0.12.13.tgz"
                    .into()
            ))
        );
        assert_eq!(
            sibling("oci://ghcr.io/rancher/fleet-charts/fleet"),
            Some(ChartRef::Oci(
                "oci://ghcr.io/rancher/fleet-charts/fleet-crd".into()
            ))
        );
        assert_eq!(
            sibling("fleet-v0.13.0.tgz"),
            Some(ChartRef::Local("fleet-crd-v0.13.0.tgz".into()))
        );
        for unknown in [
            "/charts/my-fleet",
            "fleet-agent",
            "/c/fleet-crd",
            "fleet-1.0",
        ] {
            assert_eq!(sibling(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn settings_come_from_the_variables_with_the_charts_defaults() {
        assert_eq!(settings(&[]).expect("valid"), None);
        let s = settings(&[(CHART_ENV, "fleet/fleet"), (VERSION_ENV, "0.12.13")])
            .expect("valid")
            .expect("set");
        assert_eq!(s.chart, ChartRef::Repo("fleet/fleet".into()));
        assert_eq!(s.crd_chart, ChartRef::Repo("fleet/fleet-crd".into()));
        assert_eq!(s.version.as_deref(), Some("0.12.13"));
        assert_eq!(s.workers, DEFAULT_WORKERS);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert!(s.values_files.is_empty());
        assert_eq!(s.describe(), "fleet/fleet 0.12.13");
        let s = settings(&[
            (CHART_ENV, "/c/fleet-0.12.13.tgz"),
            (VALUES_ENV, "/v/a.yaml, /v/b.yaml,"),
            (WORKERS_ENV, "8"),
            (TIMEOUT_ENV, "600"),
        ])
        .expect("valid")
        .expect("set");
        assert_eq!(
            s.values_files,
            [PathBuf::from("/v/a.yaml"), PathBuf::from("/v/b.yaml")]
        );
        assert_eq!(s.workers, 8);
        assert_eq!(s.timeout, Duration::from_secs(600));
        assert_eq!(
            s.local_charts(),
            [
                (CHART_ENV.to_string(), PathBuf::from("/c/fleet-0.12.13.tgz")),
                (
                    format!(
                        "the fleet-crd chart expected beside {CHART_ENV}; or set {CRD_CHART_ENV}"
                    ),
                    PathBuf::from("/c/fleet-crd-0.12.13.tgz")
                ),
            ]
        );
        // A CRD chart named on its own is reported under its own variable.
        assert_eq!(
            local("/c/fleet", "/elsewhere/crds").local_charts()[1],
            (CRD_CHART_ENV.to_string(), PathBuf::from("/elsewhere/crds"))
        );
    }

    type Vars<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn settings_that_cannot_work_are_refused_naming_the_variable() {
        let cases: [(Vars<'_>, &str, &str); 6] = [
            (&[(VERSION_ENV, "0.12.13")], VERSION_ENV, CHART_ENV),
            (&[(CHART_ENV, "/c/my-chart")], CHART_ENV, CRD_CHART_ENV),
            (
                &[
                    (CHART_ENV, "/c/fleet-0.12.13.tgz"),
                    (VERSION_ENV, "0.12.13"),
                ],
                VERSION_ENV,
                "version is fixed",
            ),
            (
                &[(CHART_ENV, "fleet/fleet"), (WORKERS_ENV, "0")],
                WORKERS_ENV,
                "1 to 10000",
            ),
            (
                &[(CHART_ENV, "fleet/fleet"), (WORKERS_ENV, "many")],
                WORKERS_ENV,
                "1 to 10000",
            ),
            (
                &[(CHART_ENV, "fleet/fleet"), (TIMEOUT_ENV, "5m")],
                TIMEOUT_ENV,
                "seconds",
            ),
        ];
        for (vars, variable, hint) in cases {
            let error = settings(vars).expect_err("refused").to_string();
            assert!(
                error.contains(variable) && error.contains(hint),
                "{vars:?}: {error}"
            );
        }
    }

    #[test]
    fn both_installs_are_exact_command_lines() {
        let helm = Helm::new("/usr/local/bin/helm");
        let mut s = local("/c/fleet-0.12.13.tgz", "/c/fleet-crd-0.12.13.tgz");
        s.values_files = vec![PathBuf::from("/v/mine.yaml")];
        let [crds, fleet] = install_lines(
            &helm,
            &s,
            Path::new("/run/kind/mgmt.kubeconfig"),
            Path::new("/run/kind/fleet-values.yaml"),
        );
        assert_eq!(
            crds.to_string(),
            "/usr/local/bin/helm install fleet-crd /c/fleet-crd-0.12.13.tgz --namespace cattle-fleet-system --create-namespace --kubeconfig /run/kind/mgmt.kubeconfig --wait --timeout 300s"
        );
        assert_eq!(
            fleet.to_string(),
            "/usr/local/bin/helm install fleet /c/fleet-0.12.13.tgz --namespace cattle-fleet-system --create-namespace --kubeconfig /run/kind/mgmt.kubeconfig --wait --timeout 300s --values /run/kind/fleet-values.yaml --values /v/mine.yaml"
        );
        let s = settings(&[(CHART_ENV, "fleet/fleet"), (VERSION_ENV, "0.12.13")])
            .expect("valid")
            .expect("set");
        let [crds, fleet] = install_lines(&helm, &s, Path::new("/k"), Path::new("/v.yaml"));
        assert_eq!(
            crds.args[2..].join(" "),
            "fleet/fleet-crd --namespace cattle-fleet-system --create-namespace --kubeconfig /k --wait --timeout 300s --version 0.12.13"
        );
        assert_eq!(
            fleet.args[2..].join(" "),
            "fleet/fleet --namespace cattle-fleet-system --create-namespace --kubeconfig /k --wait --timeout 300s --version 0.12.13 --values /v.yaml"
        );
        assert_eq!(helm.version().args, ["version", "--short"]);
    }

    #[test]
    fn fleet_is_told_the_management_cluster_as_the_nodes_reach_it() {
        let api =
            management_api(&internal_kubeconfig("fleetbench-0a1b2c3d4e-mgmt")).expect("reads");
        assert_eq!(
            api.url,
            "https://fleetbench-0a1b2c3d4e-mgmt-control-plane:6443"
        );
        assert_eq!(api.ca_pem, CA_PEM);
        let no_ca = internal_kubeconfig("c").replace(
            "certificate-authority-data",
            "insecure-skip-tls-verify: true\n    x",
        );
        let error = management_api(&no_ca).expect_err("no CA").to_string();
        assert!(error.contains("certificate-authority-data"), "{error}");
        let not_pem = internal_kubeconfig("c").replace(
            &internal_kubeconfig("c")
                .lines()
                .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
                .expect("has CA")
                .to_string(),
            "aGVsbG8=",
        );
        let error = management_api(&not_pem).expect_err("not PEM").to_string();
        assert!(error.contains("not a PEM certificate"), "{error}");
        assert!(management_api("not: [a kubeconfig").is_err());
    }

    #[test]
    fn the_values_file_sets_exactly_what_a_benchmark_needs() {
        let mut s = local("/c/fleet", "/c/fleet-crd");
        s.workers = 8;
        let api = ManagementApi {
            url: "https://m-control-plane:6443".to_string(),
            ca_pem: CA_PEM.to_string(),
        };
        assert_eq!(
            values(&s, &api),
            json!({
                "apiServerURL": "https://m-control-plane:6443",
                "apiServerCA": CA_PEM,
                "gitops": {"enabled": true},
                "metrics": {"enabled": true},
                "controller": {"reconciler": {"workers": {
                    "gitrepo": "8", "bundle": "8", "bundledeployment": "8",
                    "cluster": "8", "clustergroup": "8"
                }}},
            })
        );
        // The YAML helm reads says the same, the multi-line CA included.
        let yaml = values_yaml(&s, &api).expect("renders");
        assert!(yaml.starts_with("# Written by fleetbench"), "{yaml}");
        let parsed: Value = serde_saphyr::from_str(&yaml).expect("parses");
        assert_eq!(parsed, values(&s, &api));
    }

    fn deployment(generation: i64, observed: i64, available: &str) -> Deployment {
        Deployment {
            metadata: kube::api::ObjectMeta {
                name: Some(CONTROLLER_DEPLOYMENT.to_string()),
                generation: Some(generation),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                ..Default::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(observed),
                available_replicas: Some(i32::from(available == "True")),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Available".to_string(),
                    status: available.to_string(),
                    message: Some("Deployment does not have minimum availability.".to_string())
                        .filter(|_| available != "True"),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_rollout_is_available_only_when_the_current_generation_is() {
        assert_eq!(rollout(None), Rollout::Absent);
        assert_eq!(rollout(Some(&deployment(2, 2, "True"))), Rollout::Available);
        assert_eq!(
            rollout(Some(&deployment(1, 1, "False"))),
            Rollout::Waiting(
                "0/1 replicas available: Deployment does not have minimum availability."
                    .to_string()
            )
        );
        assert!(matches!(
            rollout(Some(&deployment(3, 2, "True"))),
            Rollout::Waiting(w) if w.contains("generation 3 not observed")
        ));
        let mut no_status = deployment(1, 1, "True");
        no_status.status = None;
        assert_eq!(
            rollout(Some(&no_status)),
            Rollout::Waiting("no status yet".to_string())
        );
    }

    #[tokio::test]
    async fn waiting_polls_through_absence_and_errors_until_available() {
        let mut answers = vec![
            Ok(Some(deployment(1, 1, "True"))),
            Ok(Some(deployment(1, 1, "False"))),
            Err(std::io::Error::other("connection refused")),
            Ok(None),
        ];
        let mut calls = 0;
        wait_available(
            || {
                calls += 1;
                let answer = answers.pop().unwrap_or(Ok(None));
                async move { answer }
            },
            Duration::from_secs(30),
            Duration::from_millis(1),
        )
        .await
        .expect("available on the fourth look");
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn waiting_gives_up_at_its_bound_with_the_last_state() {
        let StillUnavailable { last } = wait_available(
            || async { Ok::<_, std::io::Error>(Some(deployment(1, 1, "False"))) },
            Duration::from_millis(50),
            Duration::from_millis(5),
        )
        .await
        .expect_err("never available");
        assert!(last.contains("0/1 replicas available"), "{last}");
        let error = FleetError::NotAvailable {
            namespace: FLEET_NAMESPACE.to_string(),
            name: CONTROLLER_DEPLOYMENT.to_string(),
            after: Duration::from_secs(300),
            last,
            kubeconfig: "/run/kind/m.kubeconfig".to_string(),
        }
        .to_string();
        assert!(
            error.contains("cattle-fleet-system/fleet-controller"),
            "{error}"
        );
        assert!(error.contains("FLEETBENCH_KIND_LOAD_IMAGES"), "{error}");
    }

    /// A stand-in `helm` that records its arguments and copies each `--values` file it is
    /// given, failing for release `fail_release`.
    pub(crate) fn fake_helm(dir: &Path, fail_release: &str) -> Helm {
        let log = dir.join("helm.log");
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
release="$2"
while [ $# -gt 0 ]; do
  case "$1" in
    --values) cp "$2" '{dir}/seen-values-'"$(basename "$2")"; shift 2;;
    *) shift;;
  esac
done
if [ "$release" = '{fail_release}' ]; then echo "Error: INSTALLATION FAILED: context deadline exceeded" >&2; exit 1; fi
"#,
            log = log.display(),
            dir = dir.display(),
        );
        let path = dir.join("helm");
        std::fs::write(&path, script).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Helm::new(path)
    }

    #[tokio::test]
    async fn the_install_runs_crds_then_fleet_with_the_values_it_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let helm = fake_helm(dir.path(), "none");
        let s = local("/c/fleet", "/c/fleet-crd");
        install_charts(
            &helm,
            &s,
            Path::new("/run/m.kubeconfig"),
            &internal_kubeconfig("m"),
            dir.path(),
        )
        .await
        .expect("installs");
        let calls = std::fs::read_to_string(dir.path().join("helm.log")).expect("log");
        let calls: Vec<&str> = calls.lines().collect();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(
            calls[0].starts_with("install fleet-crd /c/fleet-crd "),
            "{calls:?}"
        );
        assert!(calls[1].starts_with("install fleet /c/fleet "), "{calls:?}");
        let seen = std::fs::read_to_string(dir.path().join(format!("seen-values-{VALUES_FILE}")))
            .expect("helm got the values file");
        let seen: Value = serde_saphyr::from_str(&seen).expect("parses");
        assert_eq!(seen["apiServerURL"], "https://m-control-plane:6443");
        assert_eq!(seen["apiServerCA"], CA_PEM);
    }

    #[tokio::test]
    async fn a_failed_crd_install_stops_before_fleet_with_helms_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let helm = fake_helm(dir.path(), CRD_RELEASE);
        let error = install_charts(
            &helm,
            &local("/c/fleet", "/c/fleet-crd"),
            Path::new("/run/m.kubeconfig"),
            &internal_kubeconfig("m"),
            dir.path(),
        )
        .await
        .expect_err("CRDs fail");
        // As users read it: with its causes.
        let error = crate::error_text(&error);
        assert!(error.contains("context deadline exceeded"), "{error}");
        assert!(error.contains("install fleet-crd"), "{error}");
        let calls = std::fs::read_to_string(dir.path().join("helm.log")).expect("log");
        assert_eq!(calls.lines().count(), 1, "{calls}");
    }
}
