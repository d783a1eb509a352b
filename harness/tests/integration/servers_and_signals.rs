//! `fleetbench apiserver` and `fleetbench gitserver` serve until interrupted; a run
//! interrupted with Ctrl-C stops cleanly and keeps what it measured.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{fake_controller, fleetbench, interrupt, results, smoke, wait_bounded};

/// Waits (bounded) for a line of the child's stdout containing `needle`.
fn wait_for_line(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && line.contains(needle)
        {
            return line;
        }
    }
    let _ = child.kill();
    panic!("no line containing {needle:?} within 60s");
}

fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a URL in the line")
        .to_string()
}

fn get(url: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "10", url])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[test]
fn apiserver_serves_until_interrupted_and_writes_a_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = fleetbench()
        .args(["apiserver", "--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = wait_for_line(&mut child, "serving at");
    let url = url_in(&line);
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        written.contains(&url),
        "the kubeconfig points at the server: {written}"
    );
    assert!(get(&format!("{url}/version")).contains("gitVersion"));
    interrupt(&child);
    assert!(wait_bounded(&mut child, Duration::from_secs(30)).success());
}

#[test]
fn gitserver_serves_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = fleetbench()
        .args([
            "gitserver",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:s3cret",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = wait_for_line(&mut child, "serving at");
    assert!(line.contains("for user alice"), "{line}");
    let url = url_in(&line);
    assert!(get(&format!("{url}/api/v1/version")).contains("version"));
    interrupt(&child);
    assert!(wait_bounded(&mut child, Duration::from_secs(30)).success());
    assert!(
        dir.path().join("data").is_dir(),
        "repositories persist in --data"
    );
}

#[test]
fn gitserver_rejects_a_bad_user_flag() {
    let output = fleetbench()
        .args(["gitserver", "--data", "/tmp/x", "--user", "nopassword"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--user \"nopassword\""));
}

#[test]
fn ctrl_c_stops_the_run_and_keeps_partial_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // A controller that never gets ready keeps the run waiting where Ctrl-C lands.
    let controller = fake_controller(dir.path(), "exec sleep 120");
    let mut child = fleetbench()
        .arg("run")
        .arg(smoke("batch-commit-webhook-smoke"))
        .arg(smoke("target-edit-cleanup-smoke"))
        .arg("--controller-bin")
        .arg(&controller)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first suite has started (its controller log exists).
    let log = out.join("suites/batch-commit-webhook-smoke/controller.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.exists() {
        assert!(Instant::now() < deadline, "the suite never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    interrupt(&child);
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    let results = results(&out);
    let suites = results["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2);
    assert!(
        suites[0]["error"].as_str().unwrap().contains("interrupted"),
        "{}",
        suites[0]
    );
    assert_eq!(suites[1]["error"], "not run: interrupted");
    assert!(results["finished_at"].is_string());
    // The fake controller was stopped, not left behind.
    let leftover = Command::new("pgrep")
        .args(["-f", &controller.display().to_string()])
        .output()
        .unwrap();
    assert!(leftover.stdout.is_empty(), "controller left running");
}
