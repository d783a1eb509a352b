//! Ctrl-C during a run on `--provider docker`: the run stops within seconds, keeps its
//! partial results, and removes every container and network it had started. (Its own test
//! binary, so no other docker test's containers are on the engine meanwhile.)
//!
//! Needs a Docker engine and `make images`; without them it passes after printing
//! `SKIPPED (docker provider): <why and what to do>` (and fails under CI, where a skipped
//! check would read as a passed one).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{controller_bin, docker_ready, fleetbench, interrupt, results, smoke, wait_bounded};
use fleetbench::provider::docker::cleanup::{self, Selector};

#[test]
fn ctrl_c_on_the_docker_provider_removes_everything_and_keeps_partial_results() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ready = docker_ready(&runtime);
    let engine = match ready {
        Ok(engine) => engine,
        Err(why) => {
            common::skip_or_fail("docker provider", &why);
            return;
        }
    };
    let on_engine = || {
        runtime.block_on(async {
            cleanup::find(&engine.docker, &Selector::AnyRun)
                .await
                .expect("engine lists")
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let mut child = fleetbench()
        .arg("run")
        .arg(smoke("downstream-partition-smoke"))
        .args(["--provider", "docker", "--controller-bin"])
        .arg(controller_bin())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fleetbench starts");

    // Interrupt once the run's downstream clusters are up (two API servers and two agents
    // beside the management cluster, git server and controller).
    let started = Instant::now();
    loop {
        let running = on_engine();
        if running.containers.len() >= 5 {
            break;
        }
        if let Some(status) = child.try_wait().expect("waitable") {
            panic!("the run ended ({status}) before its containers were seen: {running}");
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the run's containers did not appear within 120s: {running}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    interrupt(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(60));

    assert_eq!(status.code(), Some(1), "an interrupted run is not a pass");
    let results = results(&out);
    let suite = &results["suites"][0];
    assert_eq!(suite["status"], "error", "{suite}");
    assert!(
        suite["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{suite}"
    );
    let left = on_engine();
    assert!(
        left.containers.is_empty() && left.networks.is_empty(),
        "left behind after Ctrl-C: {left}"
    );
}
