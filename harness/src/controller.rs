//! The controller under test: start the bundled `fleet-controller` as a subprocess, wait
//! until it is ready, supervise it, stop it.
//!
//! A subprocess rather than an in-process call so that its CPU and memory can be measured
//! apart from the harness, and so that a crash or hang of the controller shows up as what
//! it is (an exit status, a readiness timeout) with the tail of its log in the message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::suite::{AgentMode, LegacySwitch, Profile};

/// The bundled controller's binary name.
pub const BINARY_NAME: &str = "fleet-controller";

/// Default bound on the controller becoming ready.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start the controller for one suite.
#[derive(Debug, Clone)]
pub struct ControllerLaunch {
    /// The binary.
    pub binary: PathBuf,
    /// Kubeconfig of the management cluster.
    pub kubeconfig: PathBuf,
    /// `--profile`.
    pub profile: Profile,
    /// `--legacy` switches.
    pub legacy: Vec<LegacySwitch>,
    /// `--agent`.
    pub agent: AgentMode,
    /// Environment (Fleet's variables).
    pub env: BTreeMap<String, String>,
    /// Extra arguments, last.
    pub extra_args: Vec<String>,
    /// Bound on readiness.
    pub ready_timeout: Duration,
    /// Where the log and the address file go.
    pub work_dir: PathBuf,
}

impl ControllerLaunch {
    /// The command-line arguments (documented contract of `fleet-controller`).
    pub fn args(&self, address_file: &Path) -> Vec<String> {
        let mut args = vec![
            "--kubeconfig".to_string(),
            self.kubeconfig.display().to_string(),
            "--install-crds".to_string(),
            "--agent".to_string(),
            self.agent.as_str().to_string(),
            "--profile".to_string(),
            self.profile.as_str().to_string(),
        ];
        if !self.legacy.is_empty() {
            args.push("--legacy".to_string());
            args.push(
                self.legacy
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        args.extend([
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
            "--address-file".to_string(),
            address_file.display().to_string(),
        ]);
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// Why the controller could not be started or kept running.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// No binary at the expected place.
    #[error(
        "controller binary not found at {path}: build it with `cargo build --release -p fleet-controller` (or `make release`), or pass --controller-bin PATH"
    )]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The OS refused to start it.
    #[error("cannot start the controller {path}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It exited before becoming ready.
    #[error("the controller exited ({status}) before becoming ready; its log is {log}:\n{tail}")]
    ExitedEarly {
        /// Exit status.
        status: String,
        /// Log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// It did not become ready in time.
    #[error(
        "the controller did not become ready within {after:?} (no address file or /readyz not 200); its log is {log}:\n{tail}"
    )]
    NotReady {
        /// The bound.
        after: Duration,
        /// Log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// It exited while a suite was running.
    #[error("the controller exited ({status}) during the suite; its log is {log}:\n{tail}")]
    Died {
        /// Exit status.
        status: String,
        /// Log file.
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// Ctrl-C while waiting.
    #[error("interrupted while starting the controller")]
    Cancelled,
    /// File system error around the log.
    #[error("cannot prepare {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Finds the binary: `explicit`, else `fleet-controller` beside the running executable.
pub fn resolve_binary(explicit: Option<&Path>) -> Result<PathBuf, ControllerError> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_default()
            .join(BINARY_NAME),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(ControllerError::NotFound { path })
    }
}

/// `fleet-controller --version`, when it answers within a few seconds.
pub async fn version(binary: &Path) -> Option<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(5),
        Command::new(binary)
            .arg("--version")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// Processes the harness started, killed on a forced exit (second Ctrl-C) when destructors
/// do not run.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Kills every child the harness started (best effort; for the forced-exit path).
pub fn kill_all_children() {
    for pid in CHILDREN.lock().drain(..) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// A running bundled controller.
#[derive(Debug)]
pub struct LocalController {
    child: Child,
    pid: u32,
    address: SocketAddr,
    log: PathBuf,
}

impl LocalController {
    /// Starts the controller and waits until `/readyz` answers 200.
    pub async fn start(
        launch: &ControllerLaunch,
        cancel: &CancellationToken,
    ) -> Result<LocalController, ControllerError> {
        if !launch.binary.is_file() {
            return Err(ControllerError::NotFound {
                path: launch.binary.clone(),
            });
        }
        std::fs::create_dir_all(&launch.work_dir).map_err(|source| ControllerError::Io {
            path: launch.work_dir.clone(),
            source,
        })?;
        let log = launch.work_dir.join("controller.log");
        let address_file = launch.work_dir.join("controller.addr");
        let _ = std::fs::remove_file(&address_file);
        let log_file = std::fs::File::create(&log).map_err(|source| ControllerError::Io {
            path: log.clone(),
            source,
        })?;
        let log_err = log_file.try_clone().map_err(|source| ControllerError::Io {
            path: log.clone(),
            source,
        })?;
        let mut command = Command::new(&launch.binary);
        command
            .args(launch.args(&address_file))
            .envs(&launch.env)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .kill_on_drop(true);
        if !launch.env.contains_key("RUST_LOG") {
            command.env("RUST_LOG", "info");
        }
        tracing::debug!(binary = %launch.binary.display(), args = ?launch.args(&address_file), "starting controller");
        let child = command.spawn().map_err(|source| ControllerError::Spawn {
            path: launch.binary.clone(),
            source,
        })?;
        let pid = child.id().unwrap_or_default();
        CHILDREN.lock().push(pid);
        let mut starting = Starting {
            child: Some(child),
            pid,
        };
        let address = wait_ready(
            &mut starting,
            &address_file,
            &log,
            launch.ready_timeout,
            cancel,
        )
        .await?;
        let child = starting.child.take().expect("still owned");
        tracing::info!(%address, pid, profile = %launch.profile, "controller ready");
        Ok(LocalController {
            child,
            pid,
            address,
            log,
        })
    }

    /// The process id (for CPU/RSS sampling).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Where `/metrics`, `/readyz` and `/webhook` are served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// An error if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), ControllerError> {
        match self.child.try_wait() {
            Ok(Some(status)) => Err(ControllerError::Died {
                status: status.to_string(),
                log: self.log.clone(),
                tail: tail(&self.log),
            }),
            _ => Ok(()),
        }
    }

    /// Stops the process (bounded).
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        CHILDREN.lock().retain(|pid| *pid != self.pid);
    }
}

/// The child while it starts; killed if starting fails.
struct Starting {
    child: Option<Child>,
    pid: u32,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
            CHILDREN.lock().retain(|pid| *pid != self.pid);
        }
    }
}

async fn wait_ready(
    starting: &mut Starting,
    address_file: &Path,
    log: &Path,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<SocketAddr, ControllerError> {
    let started = Instant::now();
    crate::init_crypto();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .expect("a plain HTTP client builds");
    let mut address: Option<SocketAddr> = None;
    loop {
        if cancel.is_cancelled() {
            return Err(ControllerError::Cancelled);
        }
        let child = starting.child.as_mut().expect("owned while starting");
        if let Ok(Some(status)) = child.try_wait() {
            starting.child = None;
            return Err(ControllerError::ExitedEarly {
                status: status.to_string(),
                log: log.to_path_buf(),
                tail: tail(log),
            });
        }
        if address.is_none() {
            address = std::fs::read_to_string(address_file)
                .ok()
                .and_then(|text| text.trim().parse().ok());
        }
        if let Some(addr) = address {
            let ready = http
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(addr);
            }
        }
        if started.elapsed() >= timeout {
            return Err(ControllerError::NotReady {
                after: timeout,
                log: log.to_path_buf(),
                tail: tail(log),
            });
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = cancel.cancelled() => return Err(ControllerError::Cancelled),
        }
    }
}

/// The last lines of a log, for error messages.
pub fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    let tail = lines[start..].join("\n");
    if tail.is_empty() {
        "(the log is empty)".to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(binary: &Path, dir: &Path) -> ControllerLaunch {
        ControllerLaunch {
            binary: binary.to_path_buf(),
            kubeconfig: dir.join("kubeconfig"),
            profile: Profile::FleetV010,
            legacy: vec![
                LegacySwitch::NoPollJitter,
                LegacySwitch::UnthrottledStatusWrites,
            ],
            agent: AgentMode::Simulated,
            env: BTreeMap::from([("GITREPO_SYNC_PERIOD".into(), "1m".into())]),
            extra_args: vec!["--extra".into()],
            ready_timeout: Duration::from_millis(800),
            work_dir: dir.to_path_buf(),
        }
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-controller");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn arguments_follow_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let args = launch(Path::new("/bin/true"), dir.path()).args(Path::new("/x/addr"));
        let joined = args.join(" ");
        assert!(joined.contains("--install-crds"));
        assert!(joined.contains("--agent simulated --profile fleet-v0.10"));
        assert!(joined.contains("--legacy no-poll-jitter,unthrottled-status-writes"));
        assert!(joined.contains("--listen 127.0.0.1:0 --address-file /x/addr"));
        assert!(joined.ends_with("--extra"));
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let error = resolve_binary(Some(Path::new("/nonexistent/fleet-controller"))).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("/nonexistent/fleet-controller"),
            "{message}"
        );
        assert!(
            message.contains("cargo build --release -p fleet-controller"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_controller_that_exits_reports_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "echo 'cannot reach the API server' >&2; exit 3");
        let error = LocalController::start(&launch(&binary, dir.path()), &CancellationToken::new())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, ControllerError::ExitedEarly { .. }),
            "{message}"
        );
        assert!(message.contains("cannot reach the API server"), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
    }

    #[tokio::test]
    async fn a_controller_that_never_gets_ready_times_out_and_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let binary = script(
            dir.path(),
            &format!(
                "echo starting; echo $$ > {}; exec sleep 30",
                pid_file.display()
            ),
        );
        let started = Instant::now();
        let error = LocalController::start(&launch(&binary, dir.path()), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(error, ControllerError::NotReady { .. }), "{error}");
        assert!(error.to_string().contains("starting"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        assert!(
            !CHILDREN.lock().contains(&pid.parse().unwrap()),
            "forgotten"
        );
        let mut running = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting to be reaped: either way, killed.
            if stat.is_empty() || stat.contains(") Z ") {
                running = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!running, "the controller that never got ready was killed");
    }

    #[tokio::test]
    async fn a_controller_that_serves_readyz_is_ready() {
        // A fake controller: python's http.server answers 200 on any path of a directory.
        let dir = tempfile::tempdir().unwrap();
        if std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: python3 not installed");
            return;
        }
        std::fs::write(dir.path().join("readyz"), "ok").unwrap();
        let binary = script(
            dir.path(),
            &format!(
                "cd {dir}; for a in \"$@\"; do if [ \"$prev\" = --address-file ]; then out=$a; fi; prev=$a; done\nport=$(python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])')\necho 127.0.0.1:$port > $out\nexec python3 -m http.server $port --bind 127.0.0.1",
                dir = dir.path().display()
            ),
        );
        let mut settings = launch(&binary, dir.path());
        settings.ready_timeout = Duration::from_secs(10);
        let mut controller = LocalController::start(&settings, &CancellationToken::new())
            .await
            .unwrap();
        assert!(controller.check_alive().is_ok());
        assert!(controller.address().ip().is_loopback());
        controller.stop().await;
    }
}
