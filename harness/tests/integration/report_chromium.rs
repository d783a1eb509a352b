//! `report.html` opened in headless Chromium: it renders its charts and tables, and no
//! request leaves the machine.
//!
//! The proof of "no request" is Chromium's own network log: every request a page makes is a
//! `URL_REQUEST_START_JOB` event keyed to the page's site (`file://`); a control page with
//! an external image and stylesheet shows that the check sees such requests. DNS is mapped
//! to nothing and the proxy points at a closed port, so even a missed request could not
//! reach anything. Skipped, with a message, where Chromium is not installed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{fleetbench, run_bounded, text};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let output = Command::new("which").arg(name).output().ok()?;
            output
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
        })
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smoke-run")
}

/// Chromium with everything that could reach a network shut off.
fn offline_chromium(binary: &Path, profile: &Path) -> Command {
    let mut command = Command::new(binary);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// URLs the page itself requested, from a Chromium net log.
fn page_requests(netlog: &Path) -> Vec<String> {
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(netlog).expect("net log written"))
            .expect("net log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("event type known");
    log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| {
            e["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|k| k.contains("file://"))
        })
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .collect()
}

fn load(chromium: &Path, dir: &Path, page: &Path, name: &str) -> (String, Vec<String>) {
    let netlog = dir.join(format!("{name}.netlog.json"));
    let output = run_bounded(
        offline_chromium(chromium, &dir.join(format!("{name}-profile")))
            .arg(format!("--log-net-log={}", netlog.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}", page.display())),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", text(&output));
    (
        String::from_utf8_lossy(&output.stdout).to_string(),
        page_requests(&netlog),
    )
}

#[test]
fn report_renders_offline_in_chromium() {
    let Some(chromium) = chromium() else {
        common::skip_or_fail(
            "Chromium",
            "report_renders_offline_in_chromium needs chromium (apt-get install -y chromium)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let output = run_bounded(
        fleetbench()
            .arg("report")
            .arg(fixture())
            .arg("--baseline")
            .arg(fixture())
            .arg("--out")
            .arg(&report),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", text(&output));
    let html = std::fs::read_to_string(&report).unwrap();
    // Nothing in the file points elsewhere.
    for forbidden in [
        "<script", "src=", "<link", "@import", "url(", "<iframe", "<object",
    ] {
        assert!(!html.contains(forbidden), "report contains {forbidden}");
    }
    let external = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
        .count();
    assert_eq!(external, 0, "only the SVG namespace may look like a URL");

    // The control: the check sees a page's requests when there are some.
    let leak = dir.path().join("leak.html");
    std::fs::write(
        &leak,
        r#"<html><body><img src="http://example.com/x.png"><link rel="stylesheet" href="https://cdn.example.com/a.css"></body></html>"#,
    )
    .unwrap();
    let (_, leaked) = load(&chromium, dir.path(), &leak, "leak");
    assert!(
        leaked.iter().any(|u| u.contains("example.com")),
        "the net log check must see external requests: {leaked:?}"
    );

    let (dom, requests) = load(&chromium, dir.path(), &report, "report");
    assert!(
        requests.iter().all(|u| u.starts_with("file://")),
        "the report made requests: {requests:?}"
    );
    // Rendered: every chart and table is in the live DOM.
    let charts = html.matches(r#"<svg class="chart""#).count();
    assert!(charts >= 30, "{charts} charts in the file");
    assert_eq!(dom.matches(r#"<svg class="chart""#).count(), charts);
    assert!(dom.contains("SLO verdicts"));
    assert!(dom.contains("PASS · 19/19 SLOs"));
    assert!(dom.contains("Comparison with baseline"));
    assert!(dom.contains("Poll intervals against the [5s, 5.5s] band"));
    assert!(dom.contains("Controller memory"));
    assert!(dom.matches("<table").count() >= 10);

    // A screenshot, for people (kept next to the report when FLEETBENCH_SCREENSHOT_DIR is set).
    let png = std::env::var_os("FLEETBENCH_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf())
        .join("report.png");
    let output = run_bounded(
        offline_chromium(&chromium, &dir.path().join("shot-profile"))
            .arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1400,2200")
            .arg(format!("file://{}", report.display())),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", text(&output));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        bytes.len() > 100_000,
        "a rendered page, not a blank one: {} bytes",
        bytes.len()
    );
}

/// The rule every tool-dependent test follows: skip with a message on a laptop, fail under
/// CI, where a skipped check would read as a passed one.
#[test]
fn a_missing_tool_skips_locally_and_fails_under_ci() {
    assert!(common::ci_value_means_ci(Some("true")));
    assert!(common::ci_value_means_ci(Some("1")));
    assert!(!common::ci_value_means_ci(Some("false")));
    assert!(!common::ci_value_means_ci(Some("")));
    assert!(!common::ci_value_means_ci(None));
    common::skip_or_fail_as(false, "Chromium", "not installed");
    let under_ci = std::panic::catch_unwind(|| {
        common::skip_or_fail_as(true, "Chromium", "not installed");
    });
    let message = under_ci.expect_err("under CI a missing tool fails the test");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("Chromium is missing and CI is set"),
        "{message}"
    );
}
