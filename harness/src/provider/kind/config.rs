//! kind cluster configs: the checked-in files of `kind-configs/`, rendered per cluster.
//!
//! The files in `kind-configs/` are complete kind configs (`make kind-up` uses them as
//! they are); a run renders a copy per cluster that sets only what must differ: the
//! cluster's name, and where its API server is published on the host. Everything else a
//! user adds to the files (nodes, labels, patches, mounts) is carried over untouched.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The management cluster's config, in the configs directory.
pub const MANAGEMENT_CONFIG: &str = "management.yaml";
/// The config every downstream cluster is created from.
pub const DOWNSTREAM_CONFIG: &str = "downstream.yaml";
/// Environment variable naming the configs directory.
pub const CONFIGS_ENV: &str = "FLEETBENCH_KIND_CONFIGS";
/// The config API kind understands.
pub const KIND_API_VERSION: &str = "kind.x-k8s.io/v1alpha4";

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read kind config {path} (set {CONFIGS_ENV} to the kind-configs directory)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It is not YAML.
    #[error("{origin} is not a kind cluster config")]
    Yaml {
        /// Where it came from.
        origin: String,
        /// The YAML parser's error (boxed: it carries the snippet it points at).
        source: Box<serde_saphyr::Error>,
    },
    /// Its rendering cannot be written as YAML.
    #[error("cannot render {origin} as YAML")]
    Render {
        /// Where it came from.
        origin: String,
        /// The YAML writer's error.
        source: serde_saphyr::SerializeError,
    },
    /// It is YAML, but not a kind cluster config.
    #[error("{origin} is not a kind cluster config: {reason}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The cluster name is not one kind accepts.
    #[error(
        "invalid kind cluster name {0:?}: expected 1 to 40 characters of [a-z0-9-], starting with a letter or digit"
    )]
    Name(String),
}

/// Which config a cluster is created from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    /// The management cluster.
    Management,
    /// A downstream cluster.
    Downstream,
}

impl ClusterRole {
    /// Its file in the configs directory.
    pub fn file_name(self) -> &'static str {
        match self {
            ClusterRole::Management => MANAGEMENT_CONFIG,
            ClusterRole::Downstream => DOWNSTREAM_CONFIG,
        }
    }
}

/// What a rendered config sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// The kind cluster's name (its node containers are `NAME-control-plane`, ...).
    pub name: String,
    /// Host address the API server is published on (`127.0.0.1`, or `0.0.0.0` when the
    /// harness itself runs in a container).
    pub api_server_address: String,
    /// Host port (0: kind picks a free one).
    pub api_server_port: u16,
}

/// Checks a kind cluster name (kind derives container and kubeconfig context names from
/// it, so it must be a short DNS-style name).
pub fn validate_name(name: &str) -> Result<(), ConfigError> {
    let valid = (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Name(name.to_string()))
    }
}

/// The configs directory: `$FLEETBENCH_KIND_CONFIGS`, else `./kind-configs`, else the one
/// of the source tree this binary was built from.
pub fn configs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CONFIGS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("kind-configs");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("kind-configs")
}

/// Reads the config file of `role` from `dir`.
pub fn load(dir: &Path, role: ClusterRole) -> Result<String, ConfigError> {
    let path = dir.join(role.file_name());
    std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })
}

/// Renders `template` (a kind config, as YAML) for one cluster.
pub fn render(
    template: &str,
    origin: &str,
    options: &RenderOptions,
) -> Result<String, ConfigError> {
    validate_name(&options.name)?;
    let invalid = |reason: String| ConfigError::Invalid {
        origin: origin.to_string(),
        reason,
    };
    let mut config: Value =
        serde_saphyr::from_str(template).map_err(|source| ConfigError::Yaml {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
    let object = config
        .as_object_mut()
        .ok_or_else(|| invalid("not a mapping".to_string()))?;
    if object.get("kind").and_then(Value::as_str) != Some("Cluster") {
        return Err(invalid("kind is not Cluster".to_string()));
    }
    if object.get("apiVersion").and_then(Value::as_str) != Some(KIND_API_VERSION) {
        return Err(invalid(format!("apiVersion is not {KIND_API_VERSION}")));
    }
    object.insert("name".to_string(), Value::String(options.name.clone()));
    let networking = object
        .entry("networking")
        .or_insert_with(|| Value::Object(Default::default()));
    let networking = networking
        .as_object_mut()
        .ok_or_else(|| invalid("networking is not a mapping".to_string()))?;
    networking.insert(
        "apiServerAddress".to_string(),
        Value::String(options.api_server_address.clone()),
    );
    networking.insert(
        "apiServerPort".to_string(),
        Value::from(options.api_server_port),
    );
    let header = format!(
        "# Rendered by fleetbench from {origin} for kind cluster {}.\n",
        options.name
    );
    let body = serde_saphyr::to_string(&config).map_err(|source| ConfigError::Render {
        origin: origin.to_string(),
        source,
    })?;
    Ok(header + &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_configs() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("kind-configs")
    }

    fn options(name: &str) -> RenderOptions {
        RenderOptions {
            name: name.to_string(),
            api_server_address: "127.0.0.1".to_string(),
            api_server_port: 0,
        }
    }

    fn parse(yaml: &str) -> Value {
        serde_saphyr::from_str(yaml).expect("rendered YAML parses")
    }

    #[test]
    fn the_checked_in_configs_render_with_the_clusters_name_and_address() {
        for role in [ClusterRole::Management, ClusterRole::Downstream] {
            let template = load(&repo_configs(), role).expect("config exists");
            let rendered = render(
                &template,
                role.file_name(),
                &RenderOptions {
                    name: "fleetbench-0a1b2c3d4e-ds-1".to_string(),
                    api_server_address: "0.0.0.0".to_string(),
                    api_server_port: 46443,
                },
            )
            .expect("renders");
            let config = parse(&rendered);
            assert_eq!(config["kind"], "Cluster");
            assert_eq!(config["apiVersion"], KIND_API_VERSION);
            assert_eq!(config["name"], "fleetbench-0a1b2c3d4e-ds-1");
            assert_eq!(config["networking"]["apiServerAddress"], "0.0.0.0");
            assert_eq!(config["networking"]["apiServerPort"], 46443);
            assert_eq!(config["nodes"][0]["role"], "control-plane");
            assert!(
                rendered.starts_with("# Rendered by fleetbench"),
                "{rendered}"
            );
        }
    }

    #[test]
    fn whatever_else_the_file_says_is_kept() {
        let template = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  extraMounts:\n  - hostPath: /tmp/x\n    containerPath: /x\n- role: worker\nfeatureGates:\n  SomeGate: true\n";
        let rendered = render(template, "t.yaml", &options("c1")).expect("renders");
        let config = parse(&rendered);
        assert_eq!(config["nodes"][0]["extraMounts"][0]["hostPath"], "/tmp/x");
        assert_eq!(config["nodes"][1]["role"], "worker");
        assert_eq!(config["featureGates"]["SomeGate"], true);
        assert_eq!(config["networking"]["apiServerAddress"], "127.0.0.1");
    }

    #[test]
    fn configs_that_are_not_kind_clusters_are_refused() {
        for (template, reason) in [
            ("- a\n- b\n", "not a mapping"),
            (
                "kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n",
                "kind is not Cluster",
            ),
            ("kind: Cluster\napiVersion: v1\n", "apiVersion is not"),
            (
                "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking: 3\n",
                "networking is not a mapping",
            ),
        ] {
            let error = render(template, "bad.yaml", &options("c1"))
                .expect_err(template)
                .to_string();
            assert!(
                error.contains(reason) && error.contains("bad.yaml"),
                "{error}"
            );
        }
    }

    #[test]
    fn cluster_names_kind_cannot_use_are_refused() {
        for bad in ["", "Upper", "-lead", "a_b", &"x".repeat(41)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        validate_name("fleetbench-0a1b2c3d4e-mgmt").expect("valid");
    }

    #[test]
    fn a_missing_config_names_the_file_and_the_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = load(dir.path(), ClusterRole::Management)
            .expect_err("absent")
            .to_string();
        assert!(error.contains("management.yaml"), "{error}");
        assert!(error.contains(CONFIGS_ENV), "{error}");
    }
}
