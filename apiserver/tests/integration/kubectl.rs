//! The real `kubectl` against the embedded server: every installed version on the core
//! flow, plus watches, finalizers, and Fleet's own CRDs.
//!
//! kubectl is found on `PATH`; versioned binaries (`kubectl.1.27` ... `kubectl.1.33`) are
//! looked for beside it. Without kubectl the tests print why and pass.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use apiserver::{Config, RunningApiServer};
use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn kubectl_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file())
}

/// `kubectl` and every versioned `kubectl.1.N` beside it.
fn kubectls() -> Vec<PathBuf> {
    let Some(kubectl) = kubectl_on_path() else {
        eprintln!("SKIPPED: kubectl is not on PATH");
        return Vec::new();
    };
    let mut found = vec![kubectl.clone()];
    let dir = std::fs::canonicalize(&kubectl)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = dir {
        let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("kubectl.1."))
                    })
                    .collect()
            })
            .unwrap_or_default();
        versioned.sort();
        found.extend(versioned);
    }
    found
}

/// One kubectl bound to one server, with its own kubeconfig and cache.
struct Kubectl {
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Kubectl {
    fn new(binary: &Path, server: &RunningApiServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        server
            .write_kubeconfig(dir.path().join("kubeconfig"))
            .unwrap();
        Self {
            binary: binary.to_path_buf(),
            dir,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let output = within(&format!("kubectl {args:?}"), self.command(args).output())
            .await
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs kubectl and fails the test unless it succeeds; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(
            ok,
            "{} {args:?} failed:\nstdout: {out}\nstderr: {err}",
            self.binary.display()
        );
        out
    }

    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }
}

fn widget_crd_yaml() -> String {
    serde_json::to_string(&widget_crd()).unwrap()
}

fn widget_yaml(name: &str, size: i64, labels: &str, finalizers: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n  labels: {labels}\n  finalizers: {finalizers}\nspec:\n  size: {size}\n"
    )
}

#[tokio::test]
async fn every_kubectl_version_runs_the_core_flow() {
    for binary in kubectls() {
        let server = server(Config::default()).await;
        let k = Kubectl::new(&binary, &server);
        let crd = k.file("crd.json", &widget_crd_yaml());
        k.ok(&["apply", "-f", &crd]).await;
        k.ok(&[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=20s",
        ])
        .await;
        let a = k.file("a.yaml", &widget_yaml("a", 1, "{team: red}", "[]"));
        let b = k.file("b.yaml", &widget_yaml("b", 2, "{team: blue}", "[]"));
        k.ok(&["create", "-f", &a]).await;
        k.ok(&["apply", "-f", &b]).await;
        let red = k
            .ok(&["get", "widgets", "-l", "team=red", "-o", "name"])
            .await;
        assert_eq!(red.trim(), "widget.example.com/a", "{}", binary.display());
        k.ok(&["label", "widget", "b", "team=red", "--overwrite"])
            .await;
        let red = k
            .ok(&["get", "widgets", "-l", "team=red", "-o", "name"])
            .await;
        assert_eq!(red.lines().count(), 2, "{}: {red}", binary.display());
        k.ok(&[
            "patch",
            "widget",
            "a",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"size":5}}"#,
        ])
        .await;
        let size = k
            .ok(&["get", "widget", "a", "-o", "jsonpath={.spec.size}"])
            .await;
        assert_eq!(size, "5");
        // Server-side tables: the CRD's printer column.
        let table = k.ok(&["get", "widgets"]).await;
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(header, ["NAME", "SIZE"], "{}: {table}", binary.display());
        assert!(
            table
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["a", "5"]),
            "{table}"
        );
        // Re-applying a changed file patches it.
        let b2 = k.file("b.yaml", &widget_yaml("b", 7, "{team: blue}", "[]"));
        k.ok(&["apply", "-f", &b2]).await;
        assert_eq!(
            k.ok(&["get", "widget", "b", "-o", "jsonpath={.spec.size}"])
                .await,
            "7"
        );
        // Typed create commands send protobuf.
        k.ok(&["create", "namespace", "team"]).await;
        k.ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "team",
            "--from-literal=mode=fast",
        ])
        .await;
        k.ok(&[
            "create",
            "secret",
            "generic",
            "creds",
            "-n",
            "team",
            "--from-literal=token=abc",
        ])
        .await;
        let mode = k
            .ok(&[
                "get",
                "configmap",
                "settings",
                "-n",
                "team",
                "-o",
                "jsonpath={.data.mode}",
            ])
            .await;
        assert_eq!(mode, "fast");
        let token = k
            .ok(&[
                "get",
                "secret",
                "creds",
                "-n",
                "team",
                "-o",
                "jsonpath={.data.token}",
            ])
            .await;
        assert_eq!(token, "YWJj");
        k.ok(&["delete", "widget", "a"]).await;
        let (found, _, err) = k.run(&["get", "widget", "a"]).await;
        assert!(!found && err.contains("NotFound"), "{err}");
        // Invalid objects are refused with the server's message.
        let bad = k.file("bad.yaml", &widget_yaml("c", -1, "{}", "[]"));
        let (ok, _, err) = k.run(&["create", "-f", &bad]).await;
        assert!(!ok, "{}: negative size must be refused", binary.display());
        assert!(
            err.contains("is invalid") || err.contains("Invalid"),
            "{err}"
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn kubectl_get_watch_sees_changes() {
    let Some(binary) = kubectls().into_iter().next() else {
        return;
    };
    let server = server(Config::default()).await;
    let k = Kubectl::new(&binary, &server);
    let crd = k.file("crd.json", &widget_crd_yaml());
    k.ok(&["apply", "-f", &crd]).await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ])
    .await;
    k.ok(&[
        "apply",
        "-f",
        &k.file("w.yaml", &widget_yaml("w", 1, "{}", "[]")),
    ])
    .await;
    let mut watch = k
        .command(&[
            "get",
            "widgets",
            "-w",
            "-o",
            "jsonpath={.metadata.name}={.spec.size}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = within("initial line", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "w=1");
    k.ok(&[
        "patch",
        "widget",
        "w",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":2}}"#,
    ])
    .await;
    assert_eq!(
        within("patched line", lines.next_line())
            .await
            .unwrap()
            .unwrap(),
        "w=2"
    );
    k.ok(&[
        "apply",
        "-f",
        &k.file("v.yaml", &widget_yaml("v", 9, "{}", "[]")),
    ])
    .await;
    assert_eq!(
        within("created line", lines.next_line())
            .await
            .unwrap()
            .unwrap(),
        "v=9"
    );
    watch.kill().await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_delete_waits_for_finalizers() {
    let Some(binary) = kubectls().into_iter().next() else {
        return;
    };
    let server = server(Config::default()).await;
    let k = Kubectl::new(&binary, &server);
    k.ok(&["apply", "-f", &k.file("crd.json", &widget_crd_yaml())])
        .await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ])
    .await;
    k.ok(&[
        "apply",
        "-f",
        &k.file("f.yaml", &widget_yaml("f", 1, "{}", "[example.com/hold]")),
    ])
    .await;
    // A blocking delete waits until the finalizer is gone.
    let delete = k
        .command(&["delete", "widget", "f", "--timeout=20s"])
        .output();
    let delete = tokio::spawn(delete);
    eventually("deletionTimestamp set", || async {
        let ts = k
            .ok(&[
                "get",
                "widget",
                "f",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ])
            .await;
        (!ts.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !delete.is_finished(),
        "kubectl delete must wait for the finalizer"
    );
    k.ok(&[
        "patch",
        "widget",
        "f",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    let output = within("kubectl delete returns", delete)
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (found, _, _) = k.run(&["get", "widget", "f"]).await;
    assert!(!found);
    server.shutdown().await;
}

#[tokio::test]
async fn kubectl_applies_fleets_crds() {
    let Some(binary) = kubectls().into_iter().next() else {
        return;
    };
    let server = server(Config::default()).await;
    let k = Kubectl::new(&binary, &server);
    let crds = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fleet-crds.yaml"
    );
    let out = k.ok(&["apply", "-f", crds]).await;
    assert_eq!(
        out.lines().filter(|l| l.ends_with(" created")).count(),
        14,
        "{out}"
    );
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=20s",
    ])
    .await;
    let again = k.ok(&["apply", "-f", crds]).await;
    assert_eq!(
        again.lines().filter(|l| l.ends_with(" unchanged")).count(),
        14,
        "{again}"
    );
    let gitrepo = "apiVersion: fleet.cattle.io/v1alpha1\nkind: GitRepo\nmetadata:\n  name: r\nspec:\n  repo: https://example.com/r\n  paths: [a]\n  unknownField: dropped\n";
    k.ok(&[
        "apply",
        "--validate=false",
        "-f",
        &k.file("r.yaml", gitrepo),
    ])
    .await;
    let spec = k
        .ok(&["get", "gitrepo", "r", "-o", "jsonpath={.spec}"])
        .await;
    assert!(
        spec.contains("example.com/r") && !spec.contains("unknownField"),
        "unknown fields are pruned: {spec}"
    );
    let names = k
        .ok(&["api-resources", "--api-group=fleet.cattle.io", "-o", "name"])
        .await;
    assert_eq!(names.lines().count(), 14, "{names}");
    k.ok(&["delete", "crd", "gitrepos.fleet.cattle.io"]).await;
    let (ok, _, _) = k.run(&["get", "gitrepos"]).await;
    assert!(!ok, "a deleted CRD's resource is no longer served");
    server.shutdown().await;
}
