//! Bad input ends with a clear message and a non-zero exit, and whatever ran is kept.

use crate::common;

use std::time::Duration;

use common::{fake_controller, fleetbench, results, run_bounded, smoke, suites_dir, text};

const BOUND: Duration = Duration::from_secs(120);

#[test]
fn invalid_suite_file_names_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("broken.yaml");
    let original = std::fs::read_to_string(smoke("batch-commit-webhook-smoke")).unwrap();
    std::fs::write(&suite, original.replace("  paths: 2", "  pathz: 2")).unwrap();
    let output = run_bounded(fleetbench().arg("run").arg(&suite), BOUND);
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    let line = original.lines().position(|l| l == "  paths: 2").unwrap() + 1;
    assert!(
        message.contains(&format!("{}:{line}:", suite.display())),
        "path and line: {message}"
    );
    assert!(message.contains("pathz"), "the field: {message}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn inconsistent_suite_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("broken.yaml");
    let original = std::fs::read_to_string(smoke("batch-commit-webhook-smoke")).unwrap();
    std::fs::write(
        &suite,
        original.replace(
            "measurement: commit-to-bundle",
            "measurement: commit-to-bundel",
        ),
    )
    .unwrap();
    let output = run_bounded(fleetbench().arg("run").arg(&suite), BOUND);
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("slos[1].measurement"), "{message}");
    assert!(message.contains("commit-to-bundel"), "{message}");
    assert!(
        message.contains("known: commit-to-bundle"),
        "suggests: {message}"
    );
}

#[test]
fn unknown_suite_lists_the_known_ones() {
    let output = run_bounded(
        fleetbench()
            .args(["run", "label-propagation-3000", "--suites-dir"])
            .arg(suites_dir()),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("unknown suite \"label-propagation-3000\""),
        "{message}"
    );
    assert!(
        message.contains("label-propagation-300"),
        "lists known suites: {message}"
    );
    assert!(
        message.contains("polling-jitter-smoke"),
        "including smoke/: {message}"
    );
}

#[test]
fn missing_controller_binary_says_how_to_build_it() {
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .args(["--controller-bin", "/nonexistent/fleet-controller"]),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("controller binary not found at /nonexistent/fleet-controller"),
        "{message}"
    );
    assert!(
        message.contains("cargo build --release -p fleet-controller"),
        "{message}"
    );
}

#[test]
fn controller_that_never_becomes_ready_fails_with_its_log_and_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let controller = fake_controller(
        dir.path(),
        "echo 'waiting for a lease that never comes'; exec sleep 60",
    );
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .arg(smoke("target-edit-cleanup-smoke"))
            .arg("--controller-bin")
            .arg(&controller)
            .args(["--set", "controller.ready_timeout=2s", "--out"])
            .arg(&out),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("did not become ready within 2s"),
        "{message}"
    );
    assert!(
        message.contains("waiting for a lease that never comes"),
        "log tail: {message}"
    );
    let results = results(&out);
    assert_eq!(results["passed"], false);
    let suites = results["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2, "both suites are accounted for");
    assert_eq!(suites[0]["status"], "error");
    assert!(
        suites[0]["error"]
            .as_str()
            .unwrap()
            .contains("did not become ready")
    );
    assert_eq!(suites[1]["status"], "error");
    assert!(
        suites[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("not run: an earlier suite"),
        "the second suite is not tried against a broken setup: {}",
        suites[1]["error"]
    );
    assert!(
        suites[0]["slos"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["pass"] == false)
    );
    assert!(out.join("junit.xml").exists());
    assert!(out.join("report.html").exists());
    assert!(
        out.join("suites/batch-commit-webhook-smoke/controller.log")
            .exists()
    );
}

#[test]
fn controller_that_exits_fails_with_its_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let controller = fake_controller(
        dir.path(),
        "echo 'error: no such flag --install-crds' >&2; exit 2",
    );
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("exited (exit status: 2) before becoming ready"),
        "{message}"
    );
    assert!(message.contains("no such flag --install-crds"), "{message}");
    assert_eq!(results(&out)["suites"][0]["status"], "error");
}

#[test]
fn unreachable_cluster_is_named_and_results_kept() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: gone\n  context:\n    cluster: gone\n    user: u\nusers:\n- name: u\n  user:\n    token: t\ncurrent-context: gone\n",
    )
    .unwrap();
    let controller = fake_controller(dir.path(), "exec sleep 60");
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .args(["--provider", "existing", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("cannot reach the Kubernetes API server at http://127.0.0.1:1"),
        "{message}"
    );
    assert!(
        message.contains(&kubeconfig.display().to_string()),
        "names the kubeconfig: {message}"
    );
    assert_eq!(results(&out)["suites"][0]["status"], "error");
}

#[test]
fn container_providers_without_their_images_stop_at_once_saying_what_is_missing() {
    // Images that exist nowhere, so the outcome is the same on every machine: with a Docker
    // engine the preflight names the missing images, without one it says there is none.
    for (provider, missing) in [
        ("docker", "make images"),
        ("kind", "the kind provider cannot run on this machine"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // Bounded: a provider that tried to pull instead of stopping would hang here.
        let output = run_bounded(
            fleetbench()
                .arg("run")
                .arg(smoke("batch-commit-webhook-smoke"))
                .args(["--provider", provider, "--controller-bin", "/bin/true"])
                .arg("--out")
                .arg(dir.path())
                .env("FLEETBENCH_IMAGE_TAG", "absent-for-this-test")
                .env("FLEETBENCH_KIND_NODE_IMAGE", "fleetbench-test/absent:never"),
            BOUND,
        );
        let message = text(&output);
        assert_eq!(output.status.code(), Some(1), "{message}");
        assert!(
            message.contains(missing) || message.contains("no Docker engine at"),
            "{provider}: {message}"
        );
        assert_eq!(results(dir.path())["suites"][0]["status"], "error");
    }
}

#[test]
fn external_controller_needs_a_cluster_that_has_one() {
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .args(["--controller", "external"]),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("--provider existing"), "{message}");
}

#[test]
fn bad_overrides_are_rejected_before_anything_runs() {
    for (arg, expected) in [
        ("scale.gitrepos", "expected key=value"),
        ("scale.gitrepoz=3", "gitrepoz"),
        (
            "slos.nope.max=1s",
            "has no slos.nope (no element of this list has that name",
        ),
        (
            "other-suite:scale.gitrepos=3",
            "no suite named \"other-suite\"",
        ),
    ] {
        let output = run_bounded(
            fleetbench()
                .arg("run")
                .arg(smoke("batch-commit-webhook-smoke"))
                .args(["--set", arg, "--controller-bin", "/bin/true"]),
            BOUND,
        );
        let message = text(&output);
        assert_eq!(output.status.code(), Some(2), "{arg}: {message}");
        assert!(message.contains(expected), "{arg}: {message}");
    }
}

#[test]
fn report_and_compare_of_missing_runs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_bounded(
        fleetbench()
            .args(["report", "/nonexistent/run", "--out"])
            .arg(dir.path().join("r.html")),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("cannot read /nonexistent/run/results.json"),
        "{message}"
    );
    let output = run_bounded(
        fleetbench().args(["compare", "/nonexistent/a", "/nonexistent/b"]),
        BOUND,
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
}

#[test]
fn help_explains_the_commands() {
    let output = run_bounded(fleetbench().arg("--help"), BOUND);
    let message = text(&output);
    assert!(output.status.success());
    for command in [
        "run",
        "conformance",
        "sensitivity",
        "report",
        "compare",
        "publish",
        "apiserver",
        "gitserver",
    ] {
        assert!(message.contains(command), "{command}: {message}");
    }
    let output = run_bounded(fleetbench().args(["run", "--help"]), BOUND);
    let message = text(&output);
    for flag in [
        "--provider",
        "--controller",
        "--profile",
        "--legacy",
        "--set",
        "--out",
        "--repeat",
        "--git-listen",
        "--baseline-run",
        "--controller-version",
    ] {
        assert!(message.contains(flag), "{flag}: {message}");
    }
}

#[test]
fn an_api_server_beyond_loopback_without_a_way_to_its_token_is_refused() {
    // Refused before anything binds (the address is a documentation range, never used).
    let output = run_bounded(
        fleetbench().args(["apiserver", "--listen", "192.0.2.1:0"]),
        BOUND,
    );
    let message = text(&output);
    assert_ne!(output.status.code(), Some(0), "{message}");
    assert!(message.contains("--token"), "{message}");
    assert!(message.contains("--kubeconfig-out"), "{message}");
}
