//! The stand-in for "kind + Gitea + upstream Fleet": every suite (downstream-partition
//! aside, which needs the docker provider's network faults) run against servers and a
//! controller the harness did not start, reached only through non-loopback addresses.
//!
//! - The management API is a separately started `fleetbench apiserver`, bound to the
//!   gateway address of a Docker network this test creates (so it gets a token, as any
//!   non-loopback API server does).
//! - The forge is `fleetbench gitserver --plain-gitea` on the same address: Gitea's API and
//!   git over HTTP, no request log, no fault endpoints, like a real Gitea.
//! - The controller is the bundled one in its container on that network: it sees only
//!   network addresses, and the harness knows nothing of its settings.
//! - The harness runs `--provider existing --controller external`, its git proxy on the
//!   same gateway address, and must judge every suite as it does on the embedded provider.
//!
//! Needs the Docker engine and `make images` (or `make test`, which builds them); without
//! them it prints `SKIPPED (black box): <why>` and passes, except under CI (`CI=true`),
//! where a missing engine or image fails it.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fleetbench, results, run_bounded, smoke, text};

/// The controller image `make images` builds.
const CONTROLLER_IMAGE: &str = "fleetbench/controller:dev";
/// Label on everything this test makes on the engine, so a sweep can find leftovers.
const LABEL: &str = "fleetbench.test=black-box";

/// The smoke suites that run here: all but downstream-partition (docker provider only).
const SUITES: [&str; 7] = [
    "batch-commit-webhook-smoke",
    "batch-commit-polling-smoke",
    "label-propagation-smoke",
    "target-edit-cleanup-smoke",
    "polling-jitter-smoke",
    "resync-recovery-smoke",
    "status-write-volume-smoke",
];

fn docker(args: &[&str]) -> Result<String, String> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if let Err(error) = docker(&["version", "--format", "{{.Server.APIVersion}}"]) {
        return Some(format!("no Docker engine answers ({error})"));
    }
    if docker(&["image", "inspect", CONTROLLER_IMAGE]).is_err() {
        return Some(format!(
            "image {CONTROLLER_IMAGE} is missing: run `make images` (or `make test`, which builds it)"
        ));
    }
    None
}

/// A Docker network and the containers on it, removed on drop (also when an assertion
/// fails).
struct Network {
    name: String,
    containers: Vec<String>,
}

impl Network {
    fn create() -> Network {
        let name = format!("fb-blackbox-{}", uuid::Uuid::new_v4().simple());
        docker(&["network", "create", "--label", LABEL, &name]).expect("a network is created");
        Network {
            name,
            containers: Vec::new(),
        }
    }

    fn gateway(&self) -> IpAddr {
        docker(&[
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
            &self.name,
        ])
        .expect("the network can be inspected")
        .split_whitespace()
        .filter_map(|g| g.parse::<IpAddr>().ok())
        .find(IpAddr::is_ipv4)
        .expect("the network has an IPv4 gateway")
    }

    fn run(&mut self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--label", LABEL, "--network", &self.name];
        all.extend_from_slice(args);
        let id = docker(&all).expect("the container starts");
        self.containers.push(id.clone());
        id
    }

    fn address_of(&self, container: &str) -> String {
        docker(&[
            "inspect",
            "--format",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ])
        .expect("the container can be inspected")
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = docker(&["rm", "-f", container]);
        }
        let _ = docker(&["network", "rm", &self.name]);
    }
}

/// A server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fleetbench <args>` and returns it with the URL from its first line.
fn serve(args: &[&str], log: &Path) -> (Server, String) {
    use std::io::{BufRead as _, BufReader};
    let mut child = fleetbench()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("a log file"))
        .spawn()
        .expect("fleetbench starts");
    let line = BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| {
            panic!(
                "no URL in {line:?}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    (Server(child), url)
}

/// A copy of `kubeconfig` the container's unprivileged user can read, in a directory of
/// its own (the test's temporary directory is private to this user).
fn shareable_copy(kubeconfig: &Path, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let shared = dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = shared.join("kubeconfig");
    std::fs::copy(kubeconfig, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    copy
}

fn wait_for(what: &str, bound: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn every_suite_judges_a_controller_it_did_not_start_through_network_addresses_only() {
    if let Some(why) = unavailable() {
        assert!(
            std::env::var_os("CI").is_none(),
            "under CI the black-box test must run: {why}"
        );
        eprintln!("SKIPPED (black box): {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut network = Network::create();
    let gateway = network.gateway();
    assert!(!gateway.is_loopback());

    let kubeconfig = dir.path().join("kubeconfig");
    let (_api, api_url) = serve(
        &[
            "apiserver",
            "--listen",
            &format!("{gateway}:0"),
            "--kubeconfig-out",
            kubeconfig.to_str().unwrap(),
        ],
        &dir.path().join("apiserver.log"),
    );
    assert!(api_url.contains(&gateway.to_string()), "{api_url}");
    let (_forge, forge_url) = serve(
        &[
            "gitserver",
            "--plain-gitea",
            "--listen",
            &format!("{gateway}:0"),
            "--user",
            "alice:s3cret",
            "--data",
            dir.path().join("forge").to_str().unwrap(),
        ],
        &dir.path().join("gitserver.log"),
    );
    // A plain Gitea has no request log: the suites must not need one.
    let log = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-u",
            "alice:s3cret",
        ])
        .arg(format!("{forge_url}/api/fleetbench/requests"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout), "404");

    // The controller under test, in a container: it knows the API server and the proxy
    // only by their network addresses. Polling intervals as short as the smoke suites'
    // are allowed explicitly, as an operator tuning it for a test would.
    let shared_kubeconfig = shareable_copy(&kubeconfig, dir.path());
    let mount = format!(
        "{}:/etc/fleetbench/kubeconfig:ro",
        shared_kubeconfig.display()
    );
    let controller = network.run(&[
        "-v",
        &mount,
        "-e",
        "FLEET_MIN_POLLING_INTERVAL=1s",
        CONTROLLER_IMAGE,
        "--kubeconfig",
        "/etc/fleetbench/kubeconfig",
        "--install-crds",
        "--agent",
        "simulated",
        "--listen",
        "0.0.0.0:8080",
    ]);
    let controller_ip = network.address_of(&controller);
    wait_for(
        "the controller serves fleet.cattle.io",
        Duration::from_secs(90),
        || {
            Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--max-time", "5"])
                .arg(format!("http://{controller_ip}:8080/readyz"))
                .status()
                .is_ok_and(|s| s.success())
        },
    );

    let out = dir.path().join("out");
    let mut command = fleetbench();
    command.arg("run");
    for suite in SUITES {
        command.arg(smoke(suite));
    }
    command
        .args(["--provider", "existing", "--controller", "external"])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--git-url", &forge_url, "--git-user", "alice"])
        .env("FLEETBENCH_GIT_TOKEN", "s3cret")
        .args(["--git-listen", &format!("{gateway}:0")])
        .args([
            "--webhook-url",
            &format!("http://{controller_ip}:8080/webhook"),
        ])
        .args([
            "--controller-version",
            "fleet-controller (container, black-box test)",
        ])
        .arg("--out")
        .arg(&out);
    let output = run_bounded(&mut command, Duration::from_secs(900));
    let message = text(&output);
    let logs = docker(&["logs", "--tail", "40", &controller]).unwrap_or_default();
    let still_running = docker(&["inspect", "--format", "{{.State.Running}}", &controller])
        .is_ok_and(|state| state == "true");

    assert_eq!(
        output.status.code(),
        Some(0),
        "{message}\n--- controller log ---\n{logs}"
    );
    assert!(
        still_running,
        "the harness left the external controller alone"
    );
    let results = results(&out);
    assert_eq!(results["controller"]["mode"], "external");
    assert_eq!(
        results["controller"]["version"],
        "fleet-controller (container, black-box test)"
    );
    assert_eq!(
        results["controller"]["observed_crd_versions"]["gitrepos.fleet.cattle.io"],
        serde_json::json!(["v1alpha1"]),
        "the served API is observed, not assumed"
    );
    let suites = results["suites"].as_array().unwrap();
    assert_eq!(suites.len(), SUITES.len());
    for suite in suites {
        let name = suite["name"].as_str().unwrap();
        assert_ne!(suite["status"], "error", "{name} could not run: {suite}");
        // Nothing is claimed about settings the harness never applied.
        assert!(suite["profile"].is_null(), "{name}: {}", suite["profile"]);
        assert!(
            suite["settings"]["controller"].is_null(),
            "{name}: {}",
            suite["settings"]["controller"]
        );
        assert!(
            suite["baseline"].is_null(),
            "{name}: no baseline was measured"
        );
        for slo in suite["slos"].as_array().unwrap() {
            let slo_name = slo["name"].as_str().unwrap();
            if slo_name == "status-writes-60pct-fewer" {
                // A same-run ratio needs the controller under another profile.
                assert_eq!(slo["pass"], false, "{slo}");
                let reason = slo["not_applicable"].as_str().unwrap_or_default();
                assert!(reason.contains("--baseline-run"), "{slo}");
                continue;
            }
            // The same verdicts as on the embedded provider, where every smoke SLO passes.
            assert_eq!(slo["pass"], true, "{name}/{slo_name}: {slo}");
        }
    }
    let jitter = suites
        .iter()
        .find(|s| s["name"] == "polling-jitter-smoke")
        .unwrap();
    let intervals = &jitter["measurements"]["poll-interval"];
    assert!(
        intervals["description"]
            .as_str()
            .unwrap()
            .contains("git proxy's request log"),
        "{intervals}"
    );
    assert!(
        intervals["stats"]["count"].as_f64().unwrap() > 0.0,
        "{intervals}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        report.contains("git proxy&#39;s request log")
            || report.contains("git proxy's request log")
    );
    assert!(report.contains("settings unknown (external)"));
    // The verdicts and figures, for whoever runs this with --nocapture.
    println!("{message}");
}
