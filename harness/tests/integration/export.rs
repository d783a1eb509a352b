//! `fleetbench export` end to end: the real binary reads a results.json from a run
//! directory and writes each dashboard format; bad input exits 2 with a clear message.
//!
//! The expected files in tests/fixtures/export/ are what the formats look like for a
//! small run with every kind of SLO (seconds, counts, writes, a ratio, a `>=` SLO, a damaged
//! measurement, one never measured), so a change of shape shows in review.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{fleetbench, run_bounded, text};

const BOUND: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/export")
        .join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A run directory holding the fixture's results.json.
fn run_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("results.json"), dir.path().join("results.json")).unwrap();
    dir
}

const FORMATS: [(&str, &str); 3] = [
    (
        "github-action-benchmark",
        "expected-github-action-benchmark.json",
    ),
    ("bencher", "expected-bencher.json"),
    ("openmetrics", "expected-openmetrics.txt"),
];

/// What every export of the fixture says on stderr about the SLO it cannot export.
const UNMEASURED: &str = "skipped embedded/current+no-poll-jitter/polling-jitter/interval-p99: not measured: the observe_polling step failed";

#[test]
fn each_format_writes_the_expected_file() {
    let dir = run_dir();
    for (format, expected) in FORMATS {
        let out = dir.path().join("dashboards").join(expected);
        let output = run_bounded(
            fleetbench()
                .args(["export", "--format", format])
                .arg(dir.path())
                .arg("--out")
                .arg(&out),
            BOUND,
        );
        let message = text(&output);
        assert_eq!(output.status.code(), Some(0), "{format}: {message}");
        assert!(
            output.stdout.is_empty(),
            "{format}: stdout is not the file: {message}"
        );
        assert_eq!(read(&out), read(&fixture(expected)), "{format}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(UNMEASURED), "{format}: {stderr}");
        assert!(
            stderr.contains("note: embedded/current/label-propagation-300/bundle-writes is exported but its measurement is damaged: settle gave up after 30s"),
            "{format}: {stderr}"
        );
    }
}

#[test]
fn without_out_the_export_is_stdout_and_the_skipped_slos_go_to_stderr() {
    let dir = run_dir();
    let output = run_bounded(
        fleetbench()
            .args(["export", "--format", "openmetrics"])
            .arg(dir.path().join("results.json")),
        BOUND,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        read(&fixture("expected-openmetrics.txt"))
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(UNMEASURED), "{stderr}");
    assert!(
        stderr.contains("exported 6 SLO figures as openmetrics, skipped 1"),
        "{stderr}"
    );
}

#[test]
fn github_action_benchmark_takes_one_direction_per_file() {
    let dir = run_dir();
    let output = run_bounded(
        fleetbench()
            .args([
                "export",
                "--format",
                "github-action-benchmark",
                "--direction",
                "bigger",
            ])
            .arg(dir.path()),
        BOUND,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let entries: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        entries,
        serde_json::json!([{
            "name": "embedded/current+no-poll-jitter/polling-jitter/jitter-spread",
            "unit": "s",
            "value": 0.0,
            "extra": "stddev of poll-interval >= 0.05s (= 0.05 s): fail"
        }])
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("skipped embedded/current/label-propagation-300/bd-p99: smaller is better (<= 10s); export it with --direction smaller"),
        "{stderr}"
    );
    assert!(stderr.contains("(bigger is better)"), "{stderr}");
}

#[test]
fn a_missing_results_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench.json");
    let output = run_bounded(
        fleetbench()
            .args(["export", "--format", "bencher"])
            .arg(dir.path())
            .arg("--out")
            .arg(&out),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("cannot read"), "{message}");
    assert!(
        message.contains(&dir.path().join("results.json").display().to_string()),
        "names the file: {message}"
    );
    assert!(output.stdout.is_empty(), "{message}");
    assert!(
        !out.exists(),
        "nothing is written for a run that cannot be read"
    );
}

#[test]
fn an_invalid_results_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("results.json"), "{\"suites\": 3}").unwrap();
    let output = run_bounded(
        fleetbench()
            .args(["export", "--format", "github-action-benchmark"])
            .arg(dir.path()),
        BOUND,
    );
    let message = text(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains("is not a fleetbench results file"),
        "{message}"
    );
    assert!(output.stdout.is_empty(), "{message}");
}
