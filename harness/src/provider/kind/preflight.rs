//! What the kind provider needs before it creates anything: the `kind` binary, the kind
//! node image and the Gitea image, all on this machine; with upstream Fleet also `helm`
//! and the charts and values files given as paths; and any image to side-load.
//!
//! Where a registry is unreachable (as here) a missing image does not fail fast on its own:
//! kind and testcontainers both try to pull it first. So everything is checked up front,
//! and the error lists every missing piece with how to get it, before a cluster exists.
//! Charts named by repository, URL or OCI reference are fetched by helm and cannot be
//! checked without the network; helm's own error says what went wrong with them.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::provider::docker::images::ImageLookup;

use super::command::Kind;
use super::fleet::{self, FleetSettings, Helm};
use super::options::LOAD_IMAGES_ENV;

/// The kind node image used unless `FLEETBENCH_KIND_NODE_IMAGE` says otherwise: Kubernetes
/// 1.33, the API version the harness's client types are built for.
pub const DEFAULT_NODE_IMAGE: &str = "kindest/node:v1.33.1";
/// Environment variable choosing the node image.
pub const NODE_IMAGE_ENV: &str = "FLEETBENCH_KIND_NODE_IMAGE";
/// The kind release whose default node image is [`DEFAULT_NODE_IMAGE`].
pub const KIND_RELEASE: &str = "v0.29.0";

/// One thing the kind provider needs and does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// No `kind` binary on `PATH`.
    KindBinary {
        /// The directories searched.
        searched: String,
    },
    /// The kind node image is not local.
    NodeImage {
        /// The image.
        image: String,
    },
    /// The Gitea image is not local.
    GiteaImage {
        /// The image.
        image: String,
    },
    /// Upstream Fleet is asked for and no `helm` is on `PATH`.
    HelmBinary {
        /// The directories searched.
        searched: String,
    },
    /// A chart or values file of upstream Fleet's settings does not exist.
    FleetFile {
        /// Where its name came from (a variable, or how it was derived).
        source: String,
        /// The path.
        path: PathBuf,
    },
    /// A values file for upstream Fleet does not exist.
    ValuesFile {
        /// The path.
        path: PathBuf,
    },
    /// An image to load into the clusters is not local.
    LoadImage {
        /// The image.
        image: String,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::KindBinary { searched } => write!(
                f,
                "`kind` is not on PATH (searched {searched}): install kind {KIND_RELEASE} or newer, e.g. `go install sigs.k8s.io/kind@{KIND_RELEASE}` or the release binary from https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
            ),
            Missing::NodeImage { image } => write!(
                f,
                "the kind node image {image} is not on this machine, and images cannot be pulled from here: run `docker pull {image}` where a registry is reachable and bring it over with `docker save {image} | docker load`, or set {NODE_IMAGE_ENV} to a node image you have"
            ),
            Missing::GiteaImage { image } => write!(
                f,
                "the Gitea image {image} (testcontainers-modules' gitea module) is not on this machine: run `docker pull {image}` where a registry is reachable and bring it over with `docker save {image} | docker load`"
            ),
            Missing::HelmBinary { searched } => write!(
                f,
                "`helm` is not on PATH (searched {searched}), and upstream Fleet ({chart_env}) is installed with it: install Helm 3 (https://helm.sh/docs/intro/install/, or the release binary from https://github.com/helm/helm/releases), or unset {chart_env} to measure the bundled controller",
                chart_env = fleet::CHART_ENV
            ),
            Missing::FleetFile { source, path } => write!(
                f,
                "{path} ({source}) does not exist: fetch Fleet's charts where a network is reachable (`helm repo add fleet {repo} && helm pull fleet/fleet --version VERSION && helm pull fleet/fleet-crd --version VERSION`) and point {chart_env} at the fleet .tgz (the fleet-crd one beside it is found) or at an unpacked chart directory",
                path = path.display(),
                repo = fleet::CHART_REPOSITORY,
                chart_env = fleet::CHART_ENV
            ),
            Missing::ValuesFile { path } => write!(
                f,
                "{path} ({values_env}) does not exist: name existing Helm values files for the fleet chart, comma-separated",
                path = path.display(),
                values_env = fleet::VALUES_ENV
            ),
            Missing::LoadImage { image } => write!(
                f,
                "{image} ({LOAD_IMAGES_ENV}) is not on this machine, so it cannot be loaded into the clusters: run `docker pull {image}` where a registry is reachable and bring it over with `docker save {image} | docker load`"
            ),
        }
    }
}

/// The kind provider cannot run here.
#[derive(Debug, thiserror::Error)]
#[error(
    "the kind provider cannot run on this machine:\n{}\n(--provider docker runs the same suites on this project's own images, built by `make images`; --provider embedded needs nothing)",
    missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
)]
pub struct PreflightError {
    /// Everything missing.
    pub missing: Vec<Missing>,
}

/// The images the kind provider uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindImages {
    /// The node image.
    pub node: String,
    /// The Gitea image.
    pub gitea: String,
}

impl KindImages {
    /// `$FLEETBENCH_KIND_NODE_IMAGE` (or [`DEFAULT_NODE_IMAGE`]) and the gitea module's image.
    pub fn from_env() -> Self {
        Self {
            node: std::env::var(NODE_IMAGE_ENV)
                .ok()
                .filter(|i| !i.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_NODE_IMAGE.to_string()),
            gitea: super::gitea::image_reference(),
        }
    }
}

/// `program` in the directories of `path` (a `PATH` value), if it is an executable file.
pub fn find_on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What a run needs beyond `kind` and the node and Gitea images.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras<'a> {
    /// Upstream Fleet's settings, when it is to be installed.
    pub fleet: Option<&'a FleetSettings>,
    /// Images to load into every cluster.
    pub load_images: &'a [String],
}

/// The CLIs a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `kind`.
    pub kind: Kind,
    /// `helm`, when upstream Fleet is installed.
    pub helm: Option<Helm>,
}

fn searched(path: Option<&OsStr>) -> String {
    path.map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "(PATH is not set)".to_string())
}

/// Checks for `kind` on `path` and for `images` on the engine; returns the `kind` CLI, or
/// every missing piece at once.
pub async fn check(
    path: Option<&OsStr>,
    lookup: &dyn ImageLookup,
    images: &KindImages,
) -> Result<Kind, PreflightError> {
    check_all(path, lookup, images, Extras::default(), &|p| p.exists())
        .await
        .map(|tools| tools.kind)
}

/// [`check`], plus what `extras` need (`helm`, chart and values files through `exists`,
/// images to load); every missing piece is reported at once.
pub async fn check_all(
    path: Option<&OsStr>,
    lookup: &dyn ImageLookup,
    images: &KindImages,
    extras: Extras<'_>,
    exists: &(dyn Fn(&Path) -> bool + Sync),
) -> Result<Tools, PreflightError> {
    let mut missing = Vec::new();
    let kind = find_on_path("kind", path);
    if kind.is_none() {
        missing.push(Missing::KindBinary {
            searched: searched(path),
        });
    }
    // A lookup error is reported as missing: either way the image cannot be used.
    if !lookup.is_present(&images.node).await.unwrap_or(false) {
        missing.push(Missing::NodeImage {
            image: images.node.clone(),
        });
    }
    if !lookup.is_present(&images.gitea).await.unwrap_or(false) {
        missing.push(Missing::GiteaImage {
            image: images.gitea.clone(),
        });
    }
    let mut helm = None;
    if let Some(settings) = extras.fleet {
        helm = find_on_path("helm", path).map(Helm::new);
        if helm.is_none() {
            missing.push(Missing::HelmBinary {
                searched: searched(path),
            });
        }
        for (source, file) in settings.local_charts() {
            if !exists(&file) {
                missing.push(Missing::FleetFile { source, path: file });
            }
        }
        for file in &settings.values_files {
            if !exists(file) {
                missing.push(Missing::ValuesFile { path: file.clone() });
            }
        }
    }
    for image in extras.load_images {
        if !lookup.is_present(image).await.unwrap_or(false) {
            missing.push(Missing::LoadImage {
                image: image.clone(),
            });
        }
    }
    match kind {
        Some(binary) if missing.is_empty() => Ok(Tools {
            kind: Kind::new(binary),
            helm,
        }),
        _ => Err(PreflightError { missing }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::provider::docker::images::tests::FakeImages;

    fn images() -> KindImages {
        KindImages {
            node: DEFAULT_NODE_IMAGE.to_string(),
            gitea: "gitea/gitea:1.22.3-rootless".to_string(),
        }
    }

    /// A directory holding an executable `kind` (and a PATH value naming it).
    fn fake_kind_dir() -> (tempfile::TempDir, OsString) {
        let dir = tempfile::tempdir().expect("tempdir");
        let kind = dir.path().join("kind");
        std::fs::write(&kind, "#!/bin/sh\necho kind v0.29.0\n").expect("write");
        std::fs::set_permissions(&kind, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let path = std::env::join_paths([PathBuf::from("/nonexistent"), dir.path().to_path_buf()])
            .expect("joins");
        (dir, path)
    }

    #[tokio::test]
    async fn everything_missing_is_reported_at_once_with_how_to_get_it() {
        let empty = tempfile::tempdir().expect("tempdir");
        let path = empty.path().as_os_str().to_owned();
        let error = check(Some(&path), &FakeImages(BTreeSet::new()), &images())
            .await
            .expect_err("nothing is there");
        assert_eq!(error.missing.len(), 3, "{error}");
        let text = error.to_string();
        assert!(text.contains("`kind` is not on PATH"), "{text}");
        assert!(text.contains(&empty.path().display().to_string()), "{text}");
        assert!(
            text.contains("go install sigs.k8s.io/kind@v0.29.0"),
            "{text}"
        );
        assert!(text.contains("docker pull kindest/node:v1.33.1"), "{text}");
        assert!(text.contains(NODE_IMAGE_ENV), "{text}");
        assert!(
            text.contains("docker pull gitea/gitea:1.22.3-rootless"),
            "{text}"
        );
        assert!(text.contains("--provider docker"), "{text}");
    }

    #[tokio::test]
    async fn only_the_missing_image_is_named_when_kind_is_installed() {
        let (_dir, path) = fake_kind_dir();
        let lookup = FakeImages(BTreeSet::from(["gitea/gitea:1.22.3-rootless".to_string()]));
        let error = check(Some(&path), &lookup, &images())
            .await
            .expect_err("node image missing");
        assert_eq!(
            error.missing,
            [Missing::NodeImage {
                image: DEFAULT_NODE_IMAGE.to_string()
            }]
        );
    }

    #[tokio::test]
    async fn with_everything_present_the_kind_binary_is_returned() {
        let (dir, path) = fake_kind_dir();
        let lookup = FakeImages(BTreeSet::from([
            DEFAULT_NODE_IMAGE.to_string(),
            "gitea/gitea:1.22.3-rootless".to_string(),
        ]));
        let kind = check(Some(&path), &lookup, &images())
            .await
            .expect("all there");
        assert_eq!(kind.binary(), dir.path().join("kind"));
    }

    fn fleet_settings(chart: &str, crd: &str, values: &[&str]) -> FleetSettings {
        FleetSettings {
            chart: fleet::ChartRef::Local(chart.into()),
            crd_chart: fleet::ChartRef::Local(crd.into()),
            version: None,
            values_files: values.iter().map(PathBuf::from).collect(),
            workers: fleet::DEFAULT_WORKERS,
            timeout: fleet::DEFAULT_TIMEOUT,
        }
    }

    #[tokio::test]
    async fn upstream_fleet_adds_helm_its_files_and_images_to_load_all_at_once() {
        let empty = tempfile::tempdir().expect("tempdir");
        let path = empty.path().as_os_str().to_owned();
        let settings = fleet_settings(
            "/charts/fleet-0.12.13.tgz",
            "/charts/fleet-crd-0.12.13.tgz",
            &["/v/bench.yaml"],
        );
        let load = ["rancher/fleet:v0.12.13".to_string()];
        let error = check_all(
            Some(&path),
            &FakeImages(BTreeSet::new()),
            &images(),
            Extras {
                fleet: Some(&settings),
                load_images: &load,
            },
            &|p| p == Path::new("/charts/fleet-crd-0.12.13.tgz"),
        )
        .await
        .expect_err("nothing is there");
        assert_eq!(
            error.missing[3..],
            [
                Missing::HelmBinary {
                    searched: empty.path().display().to_string()
                },
                Missing::FleetFile {
                    source: fleet::CHART_ENV.to_string(),
                    path: "/charts/fleet-0.12.13.tgz".into()
                },
                Missing::ValuesFile {
                    path: "/v/bench.yaml".into()
                },
                Missing::LoadImage {
                    image: "rancher/fleet:v0.12.13".to_string()
                },
            ]
        );
        assert!(matches!(error.missing[0], Missing::KindBinary { .. }));
        let text = error.to_string();
        assert!(text.contains("`helm` is not on PATH"), "{text}");
        assert!(
            text.contains("https://helm.sh/docs/intro/install/"),
            "{text}"
        );
        assert!(
            text.contains("/charts/fleet-0.12.13.tgz (FLEETBENCH_KIND_FLEET_CHART) does not exist"),
            "{text}"
        );
        assert!(text.contains("helm pull fleet/fleet-crd"), "{text}");
        assert!(text.contains("FLEETBENCH_KIND_LOAD_IMAGES"), "{text}");
        assert!(
            text.contains("/v/bench.yaml (FLEETBENCH_KIND_FLEET_VALUES) does not exist: name existing Helm values files"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn with_helm_and_the_files_present_both_tools_are_returned() {
        let (dir, path) = fake_kind_dir();
        let helm = dir.path().join("helm");
        std::fs::write(&helm, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let lookup = FakeImages(BTreeSet::from([
            DEFAULT_NODE_IMAGE.to_string(),
            "gitea/gitea:1.22.3-rootless".to_string(),
        ]));
        let settings = fleet_settings("/c/fleet", "/c/fleet-crd", &[]);
        let tools = check_all(
            Some(&path),
            &lookup,
            &images(),
            Extras {
                fleet: Some(&settings),
                load_images: &[],
            },
            &|_| true,
        )
        .await
        .expect("all there");
        assert_eq!(tools.kind.binary(), dir.path().join("kind"));
        assert_eq!(tools.helm.as_ref().map(Helm::binary), Some(helm.as_path()));
        // Without upstream Fleet, helm is neither looked for nor returned.
        let tools = check_all(Some(&path), &lookup, &images(), Extras::default(), &|_| {
            false
        })
        .await
        .expect("all there");
        assert_eq!(tools.helm, None);
    }

    #[test]
    fn non_executable_files_and_unset_paths_are_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kind"), "not executable").expect("write");
        assert_eq!(find_on_path("kind", Some(dir.path().as_os_str())), None);
        assert_eq!(find_on_path("kind", None), None);
        assert!(find_on_path("sh", std::env::var_os("PATH").as_deref()).is_some());
    }
}
