//! Fixture helpers for the end-to-end tests: the built binaries, temporary run directories,
//! bounded process runs.
#![allow(dead_code, reason = "each test file uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `fleetbench` binary under test.
pub fn fleetbench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetbench"));
    command
        .env("RUST_BACKTRACE", "0")
        .env_remove("FLEETBENCH_CONTROLLER_BIN")
        .env_remove("FLEETBENCH_PROVIDER")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    command
}

/// The repository's `suites/` directory.
pub fn suites_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../suites")
}

/// A smoke suite file by name.
pub fn smoke(name: &str) -> PathBuf {
    suites_dir().join("smoke").join(format!("{name}.yaml"))
}

/// The bundled controller: `$FLEETBENCH_CONTROLLER_BIN`, or `fleet-controller` beside
/// `fleetbench` in the target directory, built on demand (a test of the harness needs the
/// real controller; `cargo test -p fleetbench` does not build other packages' binaries).
pub fn controller_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEETBENCH_CONTROLLER_BIN") {
        return PathBuf::from(path);
    }
    let beside = Path::new(env!("CARGO_BIN_EXE_fleetbench"))
        .parent()
        .expect("the binary is in a directory")
        .join("fleet-controller");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "fleet-controller",
            "--bin",
            "fleet-controller",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building fleet-controller failed");
    assert!(beside.is_file(), "no controller at {}", beside.display());
    beside
}

/// Runs a command with a bound; kills it when the bound passes. Output is drained while
/// the command runs (a full pipe would otherwise stall it).
pub fn run_bounded(command: &mut Command, bound: Duration) -> Output {
    use std::io::Read;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = stdout.join().unwrap_or_default();
            let stderr = stderr.join().unwrap_or_default();
            panic!(
                "{command:?} did not finish within {bound:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// stdout and stderr together, for assertions and failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A script that stands in for the controller.
pub fn fake_controller(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-controller");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("writable");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Reads a run's results.json.
pub fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json"))
        .unwrap_or_else(|e| panic!("no results.json in {}: {e}", dir.display()));
    serde_json::from_str(&text).expect("results.json is JSON")
}

/// Sends SIGINT (Ctrl-C) to a child.
pub fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for a child to exit, at most `bound` (then kills it and fails the test).
pub fn wait_bounded(child: &mut std::process::Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not exit within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The Docker engine with this project's images, or why the docker tests must skip.
pub fn docker_ready(
    runtime: &tokio::runtime::Runtime,
) -> Result<fleetbench::provider::docker::engine::Engine, String> {
    use fleetbench::provider::docker::{engine, images};
    runtime.block_on(async {
        let engine = engine::preflight().await.map_err(|e| e.to_string())?;
        images::require(
            &engine.docker,
            &images::ImageSet::from_env().all(),
            images::BUILD_REMEDY,
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(engine)
    })
}

/// Whether the tests run under CI: `CI` set to anything but empty, `0` or `false` (CI
/// systems set `CI=true`).
pub fn in_ci() -> bool {
    ci_value_means_ci(std::env::var("CI").ok().as_deref())
}

/// How a value of `CI` reads.
pub fn ci_value_means_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// A test that cannot run because `what` is missing (a Docker engine, images, Chromium):
/// outside CI it prints `SKIPPED (what): why` and the caller returns, so the workspace's
/// tests still run on a laptop without the tool; under CI (`CI` set) it fails the test,
/// since there a skipped check would read as a passed one.
pub fn skip_or_fail(what: &str, why: &str) {
    skip_or_fail_as(in_ci(), what, why);
}

/// [`skip_or_fail`] with the CI decision given.
pub fn skip_or_fail_as(ci: bool, what: &str, why: &str) {
    assert!(
        !ci,
        "{what} is missing and CI is set, so this test fails instead of skipping: {why}"
    );
    eprintln!("SKIPPED ({what}): {why}");
}
