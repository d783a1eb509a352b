//! The `kind` command lines the provider runs, built in one place and run with a bound.
//!
//! Every cluster gets its own kubeconfig file (`--kubeconfig`), so a run never touches the
//! user's `~/.kube/config`; `get kubeconfig --internal` gives the address the other
//! containers on kind's network use (the `NAME-control-plane:6443` node name), which is
//! what a downstream cluster's kubeconfig Secret must hold.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// It could not be started.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// It exited unsuccessfully.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// It ran too long and was killed.
    #[error("`{command}` did not finish within {after:?} and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The bound.
        after: Duration,
    },
}

/// A program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl fmt::Display for CommandLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let quote = |word: &str| {
            if !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,".contains(&b))
            {
                word.to_string()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        };
        write!(f, "{}", quote(&self.program.display().to_string()))?;
        for arg in &self.args {
            write!(f, " {}", quote(arg))?;
        }
        Ok(())
    }
}

impl CommandLine {
    /// Runs it, killing it after `timeout`; returns its standard output.
    pub async fn run(&self, timeout: Duration) -> Result<String, CommandError> {
        let command = self.to_string();
        let child = tokio::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| CommandError::Spawn {
                command: command.clone(),
                source,
            })?;
        let output = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| CommandError::Timeout {
                command: command.clone(),
                after: timeout,
            })?
            .map_err(|source| CommandError::Spawn {
                command: command.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            Err(CommandError::Failed {
                command,
                status: output.status.to_string(),
                stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            })
        }
    }
}

/// The `kind` CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    binary: PathBuf,
}

impl Kind {
    /// `kind` at `binary`.
    pub fn new(binary: impl Into<PathBuf>) -> Self {
        Self {
            binary: binary.into(),
        }
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    fn line(&self, args: &[&str]) -> CommandLine {
        CommandLine {
            program: self.binary.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// `kind create cluster`: from `config`, with `node_image`, its kubeconfig written to
    /// `kubeconfig`, waiting up to `wait` for the control plane.
    pub fn create_cluster(
        &self,
        name: &str,
        config: &Path,
        node_image: &str,
        kubeconfig: &Path,
        wait: Duration,
    ) -> CommandLine {
        self.line(&[
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            &config.display().to_string(),
            "--image",
            node_image,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--wait",
            &format!("{}s", wait.as_secs().max(1)),
        ])
    }

    /// `kind get kubeconfig`: the host's view (`internal`: the view from kind's network).
    pub fn get_kubeconfig(&self, name: &str, internal: bool) -> CommandLine {
        let mut line = self.line(&["get", "kubeconfig", "--name", name]);
        if internal {
            line.args.push("--internal".to_string());
        }
        line
    }

    /// `kind delete cluster` (also removes its entry from `kubeconfig`).
    pub fn delete_cluster(&self, name: &str, kubeconfig: &Path) -> CommandLine {
        self.line(&[
            "delete",
            "cluster",
            "--name",
            name,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
        ])
    }

    /// `kind load docker-image`: copies `images` from this machine's Docker into every node
    /// of cluster `name` (for nodes that cannot pull them).
    pub fn load_images(&self, name: &str, images: &[String]) -> CommandLine {
        let mut line = self.line(&["load", "docker-image", "--name", name]);
        line.args.extend(images.iter().cloned());
        line
    }

    /// `kind get clusters`.
    pub fn get_clusters(&self) -> CommandLine {
        self.line(&["get", "clusters"])
    }

    /// `kind version`.
    pub fn version(&self) -> CommandLine {
        self.line(&["version"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind() -> Kind {
        Kind::new("/usr/local/bin/kind")
    }

    #[test]
    fn create_uses_the_rendered_config_its_own_kubeconfig_and_a_bounded_wait() {
        let line = kind().create_cluster(
            "fleetbench-abc-mgmt",
            Path::new("/work/run/kind/fleetbench-abc-mgmt.yaml"),
            "kindest/node:v1.33.1",
            Path::new("/work/run/kind/fleetbench-abc-mgmt.kubeconfig"),
            Duration::from_secs(120),
        );
        assert_eq!(
            line.to_string(),
            "/usr/local/bin/kind create cluster --name fleetbench-abc-mgmt --config /work/run/kind/fleetbench-abc-mgmt.yaml --image kindest/node:v1.33.1 --kubeconfig /work/run/kind/fleetbench-abc-mgmt.kubeconfig --wait 120s"
        );
    }

    #[test]
    fn kubeconfigs_come_in_a_host_and_an_internal_view() {
        assert_eq!(
            kind().get_kubeconfig("c", false).args,
            ["get", "kubeconfig", "--name", "c"]
        );
        assert_eq!(
            kind().get_kubeconfig("c", true).args,
            ["get", "kubeconfig", "--name", "c", "--internal"]
        );
    }

    #[test]
    fn delete_names_the_cluster_and_its_kubeconfig() {
        assert_eq!(
            kind()
                .delete_cluster("c", Path::new("/tmp/c.kubeconfig"))
                .to_string(),
            "/usr/local/bin/kind delete cluster --name c --kubeconfig /tmp/c.kubeconfig"
        );
        assert_eq!(kind().get_clusters().args, ["get", "clusters"]);
    }

    #[test]
    fn images_are_loaded_into_one_named_cluster() {
        assert_eq!(
            kind()
                .load_images(
                    "fleetbench-abc-ds-1",
                    &[
                        "rancher/fleet:v0.12.13".to_string(),
                        "rancher/fleet-agent:v0.12.13".to_string()
                    ]
                )
                .to_string(),
            "/usr/local/bin/kind load docker-image --name fleetbench-abc-ds-1 rancher/fleet:v0.12.13 rancher/fleet-agent:v0.12.13"
        );
    }

    #[test]
    fn display_quotes_words_a_shell_would_split() {
        let line = CommandLine {
            program: PathBuf::from("/opt/my tools/kind"),
            args: vec!["--name".into(), "it's".into(), String::new()],
        };
        assert_eq!(
            line.to_string(),
            r"'/opt/my tools/kind' --name 'it'\''s' ''"
        );
    }

    #[tokio::test]
    async fn failures_carry_the_command_and_its_stderr() {
        let line = CommandLine {
            program: PathBuf::from("sh"),
            args: vec![
                "-c".into(),
                "echo out; echo 'no such node image' >&2; exit 3".into(),
            ],
        };
        let error = line
            .run(Duration::from_secs(10))
            .await
            .expect_err("exits 3")
            .to_string();
        assert!(error.contains("no such node image"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        let ok = CommandLine {
            program: PathBuf::from("sh"),
            args: vec!["-c".into(), "echo hello".into()],
        };
        assert_eq!(
            ok.run(Duration::from_secs(10)).await.expect("runs"),
            "hello\n"
        );
    }

    #[tokio::test]
    async fn a_hung_command_is_killed_at_its_bound() {
        let line = CommandLine {
            program: PathBuf::from("sleep"),
            args: vec!["30".into()],
        };
        let started = std::time::Instant::now();
        let error = line
            .run(Duration::from_millis(200))
            .await
            .expect_err("too slow");
        assert!(matches!(error, CommandError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error() {
        let error = Kind::new("/nonexistent/kind")
            .version()
            .run(Duration::from_secs(5))
            .await
            .expect_err("absent");
        assert!(matches!(error, CommandError::Spawn { .. }), "{error}");
    }
}
