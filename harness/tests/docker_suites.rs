//! The smoke suites on `--provider docker`, through the `fleetbench` command line: every
//! smoke suite of the embedded provider runs unchanged with the controller in a container,
//! and `downstream-partition-smoke` cuts a real downstream cluster off the network, heals
//! it, and restarts the controller container. Afterwards nothing the run created is left on
//! the engine.
//!
//! Needs a Docker engine and `make images`; without them it passes after printing
//! `SKIPPED (docker provider): <why and what to do>` (and fails under CI, where a skipped
//! check would read as a passed one).

mod common;

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{controller_bin, docker_ready, fleetbench, results, suites_dir};
use fleetbench::provider::docker::cleanup;
use fleetbench::provider::docker::run::OWNER_PID_LABEL;

#[test]
fn smoke_suites_pass_on_the_docker_provider_and_leave_nothing_behind() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let engine = match docker_ready(&runtime) {
        Ok(engine) => engine,
        Err(why) => {
            common::skip_or_fail("docker provider", &why);
            return;
        }
    };
    let controller = controller_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut child = fleetbench()
        .arg("conformance")
        .arg("--suites-dir")
        .arg(suites_dir().join("smoke"))
        .arg("--provider")
        .arg("docker")
        // Not run (the controller runs from its image), but the command line checks it.
        .arg("--controller-bin")
        .arg(&controller)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fleetbench starts");
    let pid = child.id();
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let bound = Duration::from_secs(1200);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("conformance on docker did not finish within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let message = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert_eq!(status.code(), Some(0), "{message}");
    let results = results(&out);
    let slos: usize = results["suites"]
        .as_array()
        .expect("suites")
        .iter()
        .map(|suite| suite["slos"].as_array().expect("slos").len())
        .sum();
    assert!(slos >= 20, "every smoke suite asserts SLOs: {slos}");
    assert!(
        message.contains(&format!("PASSED: {slos}/{slos} SLOs passed")),
        "{message}"
    );
    assert_eq!(results["provider"], "docker");
    assert_eq!(results["passed"], true);
    let suites = results["suites"].as_array().expect("suites");
    assert_eq!(
        suites.len(),
        8,
        "the 7 smoke suites and downstream-partition-smoke"
    );
    for suite in suites {
        assert_eq!(suite["status"], "passed", "{suite}");
        // The controller's container is sampled through the engine's stats API.
        let resources = &suite["resources"];
        let name = &suite["name"];
        assert!(
            resources["peak_rss_bytes"].as_u64().unwrap_or(0) > 1_000_000,
            "{name}: controller memory sampled: {resources}"
        );
    }
    // CPU time is a difference between samples: a suite of a few seconds may get only
    // one, so the longer suites prove it.
    let with_cpu = suites
        .iter()
        .filter(|suite| suite["resources"]["cpu_seconds"].as_f64().unwrap_or(0.0) > 0.0)
        .count();
    assert!(
        with_cpu >= suites.len() / 2,
        "controller CPU sampled in {with_cpu} of {} suites",
        suites.len()
    );
    let partition = suites
        .iter()
        .find(|s| s["name"] == "downstream-partition-smoke")
        .expect("the partition suite ran");
    // While cut off, exactly that cluster's 2 BundleDeployments (2 GitRepos x 1 path) stayed
    // behind; after the heal all 4 were applied.
    let during = &partition["measurements"]["during-partition"];
    assert_eq!(during["stats"]["missing"], 2.0, "{during}");
    let healed = &partition["measurements"]["heal-to-deployed"];
    assert_eq!(healed["stats"]["missing"], 0.0, "{healed}");
    assert_eq!(healed["stats"]["expected"], 4.0, "{healed}");

    // Every container and network of every suite's run is gone.
    let left = runtime.block_on(async {
        cleanup::find(&engine.docker, &cleanup::Selector::AnyRun)
            .await
            .expect("engine lists")
    });
    let ours: Vec<&String> = left.containers.iter().chain(&left.networks).collect();
    assert!(
        ours.is_empty(),
        "left behind by the conformance run (process {pid}, label {OWNER_PID_LABEL}): {left}"
    );
}
