//! The smoke suites end to end on the embedded provider with the bundled controller: the
//! conformance command passes, writes every output, and an SLO that fails turns the exit
//! status non-zero. (The full-scale suites are `make conformance`, not tests.)

mod common;

use std::time::Duration;

use common::{controller_bin, fleetbench, results, run_bounded, smoke, suites_dir, text};

#[test]
fn smoke_conformance_passes_and_writes_every_output() {
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("conformance")
            .arg("--suites-dir")
            .arg(suites_dir().join("smoke"))
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(900),
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(0), "{message}");
    let results = results(&out);
    let total: usize = results["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|suite| suite["slos"].as_array().unwrap().len())
        .sum();
    assert!(total >= 20, "every smoke suite's SLOs were judged: {total}");
    assert!(
        message.contains(&format!("PASSED: {total}/{total} SLOs passed")),
        "{message}"
    );

    assert_eq!(results["passed"], true);
    assert_eq!(results["provider"], "embedded");
    assert_eq!(results["controller"]["mode"], "bundled");
    assert!(results["environment"]["cpus"].as_u64().unwrap() >= 1);
    assert!(
        !results["environment"]["kernel"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(results["environment"]["kubernetes_version"].is_string());
    assert!(results["finished_at"].is_string());
    let suites = results["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 7);
    for suite in suites {
        let name = suite["name"].as_str().unwrap();
        assert_eq!(suite["status"], "passed", "{name}: {suite}");
        assert_eq!(suite["profile"], "current", "{name}");
        assert!(
            suite["settings"]["scale"]["gitrepos"].as_u64().unwrap() > 0,
            "{name}"
        );
        for slo in suite["slos"].as_array().unwrap() {
            for field in ["name", "threshold", "observed", "unit", "pass"] {
                assert!(!slo[field].is_null(), "{name}: {field} in {slo}");
            }
        }
        let resources = &suite["resources"];
        assert!(
            resources["peak_rss_bytes"].as_u64().unwrap() > 1_000_000,
            "{name}: controller RSS sampled"
        );
        assert!(
            !suite["api_requests"].as_array().unwrap().is_empty(),
            "{name}: API calls counted"
        );
    }
    let by_name = |n: &str| suites.iter().find(|s| s["name"] == n).unwrap();
    // Latencies: percentiles and raw samples.
    let commit = &by_name("batch-commit-webhook-smoke")["measurements"]["commit-to-bundle"];
    assert_eq!(commit["stats"]["count"], 10.0);
    assert_eq!(commit["samples"].as_array().unwrap().len(), 10);
    for stat in ["p50", "p90", "p99", "max"] {
        assert!(commit["stats"][stat].as_f64().unwrap() > 0.0, "{stat}");
    }
    // Where the commit's time went: every stage of every commit, to ready, and the notice
    // came by webhook (polling is off in this suite).
    let webhook = &by_name("batch-commit-webhook-smoke")["measurements"];
    let stage_count = |stage: &str| {
        webhook[format!("commit-to-bundle/{stage}")]["stats"]["count"]
            .as_f64()
            .unwrap_or_else(|| panic!("stage {stage} in {webhook}"))
    };
    for (stage, expected) in [
        ("push", 5.0),
        ("notify", 5.0),
        ("gitrepo", 5.0),
        ("bundle", 10.0),
        ("deployment", 10.0),
        ("applied", 10.0),
        ("ready", 10.0),
    ] {
        assert_eq!(stage_count(stage), expected, "{stage}");
        let since = &webhook[format!("commit-to-bundle/{stage}")]["breakdown"]["since commit p50"];
        assert!(since.as_f64().unwrap() > 0.0, "{stage}: {since}");
    }
    assert_eq!(
        webhook["commit-to-bundle/notify"]["breakdown"]["by webhook"], 5.0,
        "{webhook}"
    );
    // The write ledger of the commit step: the controller rewrote the Bundles, and
    // status is told apart from spec.
    let steps = by_name("batch-commit-webhook-smoke")["steps"]
        .as_array()
        .unwrap();
    let commit_step = steps.iter().find(|s| s["action"] == "commit").unwrap();
    let ledger = commit_step["ledger"].as_array().unwrap();
    let writes = |resource: &str, part: &str| -> u64 {
        ledger
            .iter()
            .filter(|l| l["resource"] == resource && l["part"] == part)
            .map(|l| l["count"].as_u64().unwrap())
            .sum()
    };
    assert!(writes("bundles", "spec") >= 10, "{ledger:?}");
    assert!(writes("gitrepos", "status") >= 5, "{ledger:?}");
    // Poll intervals: from the git request log, inside the band, cross-checked.
    let polls = &by_name("polling-jitter-smoke")["measurements"]["poll-interval"];
    assert!(polls["samples"].as_array().unwrap().len() >= 40, "{polls}");
    assert_eq!(polls["band"], serde_json::json!([5.0, 5.5]));
    assert_eq!(polls["stats"]["mismatches"], 0.0);
    // Both profiles in one run, with the ratio.
    let volume = by_name("status-write-volume-smoke");
    assert_eq!(volume["baseline"]["profile"], "fleet-v0.10");
    let ratio = volume["measurements"]["status-write-ratio"]["stats"]["value"]
        .as_f64()
        .unwrap();
    assert!(ratio > 0.0 && ratio <= 0.4, "{ratio}");

    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!(r#"tests="{total}""#)) && junit.contains(r#"failures="0""#),
        "{junit}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains(&format!("PASS · {total}/{total} SLOs")));
    for suite in suites {
        assert!(report.contains(suite["name"].as_str().unwrap()));
    }
    assert!(report.contains("Poll intervals against the [5s, 5.5s] band"));
    assert!(
        report.contains(r#"aria-label="stages of commit-to-bundle""#),
        "a waterfall"
    );
    assert!(report.contains("Dominant stage: <b>"));
    assert!(report.contains("<h4>API write ledger</h4>"));
    assert!(
        out.join("suites/polling-jitter-smoke/controller.log")
            .exists()
    );
}

#[test]
fn a_failing_slo_makes_the_run_fail() {
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .arg("--controller-bin")
            .arg(&controller)
            .args([
                "--set",
                "slos.webhook-commit-to-bundle-p99.max=1ms",
                "--out",
            ])
            .arg(&out),
        Duration::from_secs(300),
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("FAIL webhook-commit-to-bundle-p99"),
        "{message}"
    );
    let results = results(&out);
    assert_eq!(results["passed"], false);
    assert_eq!(results["suites"][0]["status"], "failed");
    assert_eq!(
        results["suites"][0]["settings"]["overrides"][0],
        "slos.webhook-commit-to-bundle-p99.max=1ms",
        "the override is recorded with the numbers"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains(r#"failures="1""#), "{junit}");
}

#[test]
fn sensitivity_proof_catches_the_legacy_switches() {
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .args([
                "sensitivity",
                "label-propagation-smoke",
                "target-edit-cleanup-smoke",
                "--suites-dir",
            ])
            .arg(suites_dir().join("smoke"))
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(600),
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(0), "{message}");
    assert!(message.contains("PROVEN (controller switch) label-propagation-smoke: passes on current; with requeue-all-bundles-on-cluster-change fails exactly bundle-writes-only-for-affected-bundles, label-cost-follows-new-bundledeployments"), "{message}");
    assert!(
        message.contains("PROVEN (controller switch) target-edit-cleanup-smoke"),
        "{message}"
    );
    let verdicts: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sensitivity.json")).unwrap())
            .unwrap();
    assert!(
        verdicts
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["proven"] == true)
    );
    let legacy = results(&out.join("target-edit-cleanup-smoke/legacy"));
    assert_eq!(
        legacy["suites"][0]["settings"]["controller"]["legacy"],
        serde_json::json!(["orphan-cleanup-in-cluster-pass"]),
        "the switch is recorded with the numbers"
    );
    assert!(out.join("report.html").exists());
}

#[test]
fn existing_provider_runs_suites_on_a_running_cluster_and_cleans_up() {
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    // The "existing cluster": fleetbench's API server, started on its own.
    let (mut cluster, url, kubeconfig) = standalone_cluster(dir.path());
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .arg(smoke("target-edit-cleanup-smoke"))
            .args(["--provider", "existing", "--kubeconfig"])
            .arg(&kubeconfig)
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(300),
    );
    let message = text(&output);
    let leftovers = |resource: &str| -> usize {
        let listing = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .arg(format!("{url}/apis/fleet.cattle.io/v1alpha1/{resource}"))
            .output()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
        body["items"].as_array().map_or(0, Vec::len)
    };
    let (gitrepos, clusters) = (leftovers("gitrepos"), leftovers("clusters"));
    let _ = cluster.kill();
    let _ = cluster.wait();
    assert_eq!(output.status.code(), Some(0), "{message}");
    assert_eq!(results(&out)["provider"], "existing");
    assert_eq!(
        (gitrepos, clusters),
        (0, 0),
        "the harness deleted what it created"
    );
}

/// Starts `fleetbench ARGS...` as a long-running server and returns it with the first
/// `http://` URL it prints on its first line.
fn serve(args: &[&str], extra: &[&std::path::Path]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = fleetbench()
        .args(args)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (child, url)
}

/// A standalone `fleetbench apiserver` as "a cluster you already have": the process, its
/// URL and its kubeconfig (in `dir`).
fn standalone_cluster(dir: &std::path::Path) -> (std::process::Child, String, std::path::PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let (child, url) = serve(
        &["apiserver", "--listen", "127.0.0.1:0", "--kubeconfig-out"],
        &[&kubeconfig],
    );
    (child, url, kubeconfig)
}

#[test]
fn existing_provider_uses_the_chosen_context_and_a_remote_forge_and_deletes_only_its_own() {
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, cluster_url, kubeconfig) = standalone_cluster(dir.path());
    // The "existing forge": a separate git server speaking Gitea's API, holding a
    // repository of someone else's that must survive the run.
    let data = dir.path().join("forge");
    let (mut forge, forge_url) = serve(
        &[
            "gitserver",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:s3cret",
            "--data",
        ],
        &[&data],
    );
    let curl = |args: &[&str]| -> serde_json::Value {
        let output = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "10", "-u", "alice:s3cret"])
            .args(args)
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
    };
    curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name":"keep-me","auto_init":true}"#,
        &format!("{forge_url}/api/v1/user/repos"),
    ]);

    // A kubeconfig whose current context points at nothing; --context picks the live one.
    let live: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let live_context = live["current-context"].as_str().unwrap().to_string();
    let mut two = live.clone();
    two["clusters"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}));
    two["contexts"].as_array_mut().unwrap().push(
        serde_json::json!({"name": "gone", "context": {"cluster": "gone", "user": live["users"][0]["name"]}}),
    );
    two["current-context"] = "gone".into();
    let two_contexts = dir.path().join("two-contexts");
    std::fs::write(&two_contexts, serde_json::to_string(&two).unwrap()).unwrap();

    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .args(["--provider", "existing", "--kubeconfig"])
            .arg(&two_contexts)
            .args(["--context", &live_context])
            .args(["--git-url", &forge_url, "--git-user", "alice"])
            .env("FLEETBENCH_GIT_TOKEN", "s3cret")
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(300),
    );
    let message = text(&output);
    let gitrepos = curl(&[&format!(
        "{cluster_url}/apis/fleet.cattle.io/v1alpha1/gitrepos"
    )]);
    let repos = curl(&[&format!("{forge_url}/api/v1/user/repos")]);
    let _ = cluster.kill();
    let _ = cluster.wait();
    let _ = forge.kill();
    let _ = forge.wait();
    assert_eq!(output.status.code(), Some(0), "{message}");
    let results = results(&out);
    assert_eq!(results["provider"], "existing");
    let commit = &results["suites"][0]["measurements"]["commit-to-bundle"];
    assert_eq!(commit["stats"]["missing"], 0.0, "{commit}");
    assert_eq!(gitrepos["items"].as_array().map(Vec::len), Some(0));
    let names: Vec<&str> = repos
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["keep-me"],
        "only the run's repositories were deleted"
    );

    // The current context alone is dead: the same run stops at once, saying where.
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("batch-commit-webhook-smoke"))
            .args(["--provider", "existing", "--kubeconfig"])
            .arg(&two_contexts)
            .arg("--controller-bin")
            .arg(&controller)
            .arg("--out")
            .arg(dir.path().join("out-dead")),
        Duration::from_secs(120),
    );
    let message = text(&output);
    assert_ne!(output.status.code(), Some(0), "{message}");
    assert!(message.contains("127.0.0.1:9"), "{message}");
}

#[test]
fn an_external_controller_is_measured_not_deployed() {
    use std::process::Stdio;
    let controller = controller_bin();
    let dir = tempfile::tempdir().unwrap();
    let (mut cluster, cluster_url, kubeconfig) = standalone_cluster(dir.path());
    // Someone else's controller, already running in the cluster before fleetbench starts.
    let mut external = std::process::Command::new(&controller)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--install-crds",
            "--agent",
            "simulated",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("controller.log")).unwrap())
        .spawn()
        .unwrap();
    let served = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--max-time", "5"])
                .arg(format!("{cluster_url}/apis/fleet.cattle.io/v1alpha1"))
                .status()
                .unwrap();
            if status.success() || std::time::Instant::now() > deadline {
                break status.success();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let out = dir.path().join("out");
    let output = run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke("target-edit-cleanup-smoke"))
            .args(["--provider", "existing", "--controller", "external"])
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--out")
            .arg(&out),
        Duration::from_secs(300),
    );
    let message = text(&output);
    let still_running = external.try_wait().unwrap().is_none();
    let _ = external.kill();
    let _ = external.wait();
    let _ = cluster.kill();
    let _ = cluster.wait();
    assert!(
        served,
        "the external controller installed fleet.cattle.io within 60s"
    );
    assert_eq!(output.status.code(), Some(0), "{message}");
    assert!(
        still_running,
        "fleetbench left the external controller alone"
    );
    let results = results(&out);
    assert_eq!(results["controller"]["mode"], "external");
    let suite = &results["suites"][0];
    assert_eq!(suite["status"], "passed", "{suite}");
    let cleanup = &suite["measurements"]["edit-to-orphan-deleted"]["stats"];
    assert_eq!(cleanup["missing"], 0.0, "{cleanup}");
    assert!(cleanup["count"].as_f64().unwrap() > 0.0, "{cleanup}");
}

#[test]
fn a_repeated_run_reports_each_slos_spread() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run_smoke("target-edit-cleanup-smoke", &["--repeat", "2"], &out);
    let message = text(&output);
    assert_eq!(output.status.code(), Some(0), "{message}");
    for run in ["run-1", "run-2"] {
        let results = results(&out.join(run));
        assert_eq!(results["passed"], true, "{run}");
    }
    let spreads: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("spread.json")).unwrap()).unwrap();
    let spreads = spreads.as_array().unwrap();
    assert!(!spreads.is_empty());
    for spread in spreads {
        let values = spread["values"].as_array().unwrap();
        assert_eq!(values.len(), 2, "{spread}");
        let (min, max) = (
            spread["min"].as_f64().unwrap(),
            spread["max"].as_f64().unwrap(),
        );
        assert!(min <= spread["median"].as_f64().unwrap(), "{spread}");
        assert!(spread["median"].as_f64().unwrap() <= max, "{spread}");
    }
    assert!(
        message.contains("spread target-edit-cleanup-smoke/"),
        "{message}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains(r#"id="spread""#));
}

#[test]
fn a_git_hiccup_the_controller_never_met_fails_the_step() {
    // Broken and healed at once: no poll can fall in between, so the hiccup tested
    // nothing, and the suite must say so rather than pass.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = run_smoke(
        "resync-recovery-smoke",
        &["--set", "steps.sleep.duration=0s"],
        &out,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    let results = results(&out);
    let error = results["suites"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("heal_repos"), "{error}");
    assert!(error.contains("tested nothing"), "{error}");
}

/// `fleetbench run` of one smoke suite with the bundled controller, `extra` arguments and
/// results in `out` (bounded).
fn run_smoke(suite: &str, extra: &[&str], out: &std::path::Path) -> std::process::Output {
    run_bounded(
        fleetbench()
            .arg("run")
            .arg(smoke(suite))
            .args(extra)
            .arg("--controller-bin")
            .arg(controller_bin())
            .arg("--out")
            .arg(out),
        Duration::from_secs(600),
    )
}
