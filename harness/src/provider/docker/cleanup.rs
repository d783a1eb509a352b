//! Removing what runs leave behind, by label.
//!
//! testcontainers removes a container when its handle is dropped, which covers normal
//! ends, errors and panics while the process lives. It does not cover the network we
//! create, a process killed by a second Ctrl-C, or a crash. So everything a run creates is
//! labelled `fleetbench.run=<id>` ([`super::run`]) and this sweeper removes by label:
//! containers first (agents, which borrow another container's network namespace, before
//! the rest), then networks, then volumes. [`sweep_abandoned`] finds runs whose owning
//! process on this machine is gone; `images/cleanup.sh` does the same by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder,
};

use super::run::{OWNER_HOST_LABEL, OWNER_PID_LABEL, RUN_LABEL, RunId, this_host};

/// Bound on one whole sweep.
pub const SWEEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a sweep did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Listing objects failed.
    #[error("cannot list {what} labelled {selector}")]
    List {
        /// Containers, networks or volumes.
        what: &'static str,
        /// The label filter.
        selector: String,
        /// bollard's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
    /// Some objects could not be removed.
    #[error("could not remove {}: remove them with images/cleanup.sh or `docker rm -f`/`docker network rm`", failures.join("; "))]
    Remove {
        /// One line per object: what, and why.
        failures: Vec<String>,
    },
    /// The sweep took longer than [`SWEEP_TIMEOUT`].
    #[error("cleanup did not finish within {0:?}")]
    Timeout(Duration),
    /// No runtime for a cleanup outside one.
    #[error("cannot start a cleanup runtime")]
    Runtime(#[source] std::io::Error),
    /// No thread for a cleanup outside a runtime.
    #[error("cannot start a cleanup thread")]
    Thread(#[source] std::io::Error),
    /// The cleanup thread panicked.
    #[error("the cleanup thread panicked")]
    Panicked,
    /// No engine to clean up with.
    #[error(transparent)]
    Engine(#[from] super::engine::EngineError),
}

/// Which runs to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One run.
    Run(RunId),
    /// Every fleetbench run on the engine.
    AnyRun,
}

impl Selector {
    /// The engine's label filter.
    pub fn label_filter(&self) -> String {
        match self {
            Selector::Run(run) => format!("{RUN_LABEL}={run}"),
            Selector::AnyRun => RUN_LABEL.to_string(),
        }
    }

    fn filters(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![self.label_filter()])])
    }
}

/// What was found (or removed): names of containers, networks and volumes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Container names.
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Volume names.
    pub volumes: Vec<String>,
}

impl Leftovers {
    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

impl std::fmt::Display for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "containers [{}], networks [{}], volumes [{}]",
            self.containers.join(", "),
            self.networks.join(", "),
            self.volumes.join(", ")
        )
    }
}

/// A labelled container as the sweeper sees it.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    name: String,
    borrows_network: bool,
    labels: HashMap<String, String>,
}

async fn containers(docker: &Docker, selector: &Selector) -> Result<Vec<Found>, CleanupError> {
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&selector.filters())
        .build();
    let list = docker
        .list_containers(Some(options))
        .await
        .map_err(|source| CleanupError::List {
            what: "containers",
            selector: selector.label_filter(),
            source: source.into(),
        })?;
    Ok(list
        .into_iter()
        .filter_map(|c| {
            let id = c.id?;
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.clone());
            let borrows_network = c
                .host_config
                .and_then(|h| h.network_mode)
                .is_some_and(|m| m.starts_with("container:"));
            Some(Found {
                id,
                name,
                borrows_network,
                labels: c.labels.unwrap_or_default(),
            })
        })
        .collect())
}

async fn networks(docker: &Docker, selector: &Selector) -> Result<Vec<String>, CleanupError> {
    let options = ListNetworksOptionsBuilder::new()
        .filters(&selector.filters())
        .build();
    let list = docker
        .list_networks(Some(options))
        .await
        .map_err(|source| CleanupError::List {
            what: "networks",
            selector: selector.label_filter(),
            source: source.into(),
        })?;
    Ok(list.into_iter().filter_map(|n| n.name).collect())
}

async fn volumes(docker: &Docker, selector: &Selector) -> Result<Vec<String>, CleanupError> {
    let options = ListVolumesOptionsBuilder::new()
        .filters(&selector.filters())
        .build();
    let list = docker
        .list_volumes(Some(options))
        .await
        .map_err(|source| CleanupError::List {
            what: "volumes",
            selector: selector.label_filter(),
            source: source.into(),
        })?;
    Ok(list
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect())
}

/// What exists for `selector`, without removing anything.
pub async fn find(docker: &Docker, selector: &Selector) -> Result<Leftovers, CleanupError> {
    Ok(Leftovers {
        containers: containers(docker, selector)
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect(),
        networks: networks(docker, selector).await?,
        volumes: volumes(docker, selector).await?,
    })
}

fn gone_already(error: &bollard::errors::Error) -> bool {
    // 404: removed meanwhile; 409 on containers: removal already in progress.
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }
    )
}

/// Removes everything `selector` matches and returns what was removed (bounded by
/// [`SWEEP_TIMEOUT`]).
pub async fn sweep(docker: &Docker, selector: &Selector) -> Result<Leftovers, CleanupError> {
    tokio::time::timeout(SWEEP_TIMEOUT, sweep_unbounded(docker, selector))
        .await
        .map_err(|_| CleanupError::Timeout(SWEEP_TIMEOUT))?
}

async fn sweep_unbounded(docker: &Docker, selector: &Selector) -> Result<Leftovers, CleanupError> {
    let mut removed = Leftovers::default();
    let mut failures = Vec::new();
    let mut found = containers(docker, selector).await?;
    // Containers that borrow another's network namespace go first.
    found.sort_by_key(|c| !c.borrows_network);
    let remove = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    for container in found {
        match docker
            .remove_container(&container.id, Some(remove.clone()))
            .await
        {
            Ok(()) => removed.containers.push(container.name),
            Err(error) if gone_already(&error) => removed.containers.push(container.name),
            Err(error) => failures.push(format!("container {}: {error}", container.name)),
        }
    }
    for network in networks(docker, selector).await? {
        // Endpoints of just-removed containers can linger for a moment.
        let mut outcome = docker.remove_network(&network).await;
        for _ in 0..10 {
            match &outcome {
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 403 | 409 | 500,
                    ..
                }) => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    outcome = docker.remove_network(&network).await;
                }
                _ => break,
            }
        }
        match outcome {
            Ok(()) => removed.networks.push(network),
            Err(error) if gone_already(&error) => removed.networks.push(network),
            Err(error) => failures.push(format!("network {network}: {error}")),
        }
    }
    for volume in volumes(docker, selector).await? {
        match docker
            .remove_volume(
                &volume,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
        {
            Ok(()) => removed.volumes.push(volume),
            Err(error) if gone_already(&error) => removed.volumes.push(volume),
            Err(error) => failures.push(format!("volume {volume}: {error}")),
        }
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        Err(CleanupError::Remove { failures })
    }
}

/// Whether a run with these labels was left by a process of this machine that is gone.
/// Runs of other machines (a shared engine) and runs without owner labels are never
/// called abandoned.
pub fn is_abandoned(
    labels: &HashMap<String, String>,
    this_host: &str,
    alive: impl Fn(u32) -> bool,
) -> bool {
    let same_host = labels.get(OWNER_HOST_LABEL).is_some_and(|h| h == this_host);
    let pid = labels
        .get(OWNER_PID_LABEL)
        .and_then(|p| p.parse::<u32>().ok());
    same_host && pid.is_some_and(|pid| !alive(pid))
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes every run that a process of this machine started and that process is gone
/// (killed, crashed, or exited on a second Ctrl-C); returns the runs removed.
pub async fn sweep_abandoned(docker: &Docker) -> Result<Vec<RunId>, CleanupError> {
    let host = this_host();
    let mut runs: BTreeMap<String, bool> = BTreeMap::new();
    for container in containers(docker, &Selector::AnyRun).await? {
        if let Some(run) = container.labels.get(RUN_LABEL) {
            let abandoned = is_abandoned(&container.labels, &host, process_alive);
            // One live-owned container keeps the whole run.
            let entry = runs.entry(run.clone()).or_insert(true);
            *entry &= abandoned;
        }
    }
    // Networks left without containers carry the same labels.
    let options = ListNetworksOptionsBuilder::new()
        .filters(&Selector::AnyRun.filters())
        .build();
    let networks = docker
        .list_networks(Some(options))
        .await
        .map_err(|source| CleanupError::List {
            what: "networks",
            selector: RUN_LABEL.to_string(),
            source: source.into(),
        })?;
    for network in networks {
        let labels = network.labels.unwrap_or_default();
        if let Some(run) = labels.get(RUN_LABEL) {
            let abandoned = is_abandoned(&labels, &host, process_alive);
            let entry = runs.entry(run.clone()).or_insert(true);
            *entry &= abandoned;
        }
    }
    let mut swept = BTreeSet::new();
    for (run, abandoned) in runs {
        let Ok(run) = run.parse::<RunId>() else {
            continue;
        };
        if abandoned {
            let removed = sweep(docker, &Selector::Run(run.clone())).await?;
            tracing::info!(run = %run, removed = %removed, "removed an abandoned fleetbench run");
            swept.insert(run.to_string());
        }
    }
    Ok(swept.into_iter().filter_map(|r| r.parse().ok()).collect())
}

/// Sweeps `run` from a thread of its own (with its own runtime and engine client), waiting
/// at most [`SWEEP_TIMEOUT`]. For `Drop`: works during a panic, outside any runtime, and
/// on a single-threaded runtime.
pub fn sweep_blocking(run: &RunId) -> Result<Leftovers, CleanupError> {
    let run = run.clone();
    let worker = std::thread::Builder::new()
        .name(format!("fleetbench-cleanup-{run}"))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(CleanupError::Runtime)?;
            runtime.block_on(async move {
                let host = super::engine::DockerHost::from_env();
                let docker = super::engine::connect(&host).await?;
                sweep(&docker, &Selector::Run(run)).await
            })
        })
        .map_err(CleanupError::Thread)?;
    worker.join().map_err(|_| CleanupError::Panicked)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(host: &str, pid: &str) -> HashMap<String, String> {
        HashMap::from([
            (RUN_LABEL.to_string(), "0a1b2c3d4e".to_string()),
            (OWNER_HOST_LABEL.to_string(), host.to_string()),
            (OWNER_PID_LABEL.to_string(), pid.to_string()),
        ])
    }

    #[test]
    fn a_run_is_abandoned_only_when_its_owner_here_is_gone() {
        let dead = |_| false;
        let alive = |_| true;
        assert!(is_abandoned(&labels("box", "42"), "box", dead));
        assert!(!is_abandoned(&labels("box", "42"), "box", alive));
        // Another machine's run on a shared engine: never ours to judge.
        assert!(!is_abandoned(&labels("other", "42"), "box", dead));
        // Without owner labels (or a readable pid) nothing is assumed.
        assert!(!is_abandoned(&labels("box", "x"), "box", dead));
        assert!(!is_abandoned(&HashMap::new(), "box", dead));
    }

    #[test]
    fn this_process_is_alive_and_a_huge_pid_is_not() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX - 1));
    }

    #[test]
    fn selectors_filter_by_the_run_label() {
        let run: RunId = "0a1b2c3d4e".parse().expect("valid");
        assert_eq!(
            Selector::Run(run).label_filter(),
            "fleetbench.run=0a1b2c3d4e"
        );
        assert_eq!(Selector::AnyRun.label_filter(), "fleetbench.run");
    }

    #[test]
    fn leftovers_print_every_kind() {
        let leftovers = Leftovers {
            containers: vec!["c".into()],
            networks: vec!["n".into()],
            volumes: vec![],
        };
        assert!(!leftovers.is_empty());
        assert_eq!(
            leftovers.to_string(),
            "containers [c], networks [n], volumes []"
        );
        assert!(Leftovers::default().is_empty());
    }
}
