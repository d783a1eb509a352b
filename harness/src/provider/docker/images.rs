//! The images containers are started from, and the check that they are on this machine.
//!
//! Nothing can be pulled here, and testcontainers answers a missing image by trying to pull
//! it (which fails slowly and obscurely), so every provider checks its images first and
//! stops at once with a list of what is missing and how to get it. `make images` builds the
//! docker provider's images (`images/build.sh`): one `FROM scratch` runtime with this
//! project's binaries, tagged once per component with that component's entrypoint.

use async_trait::async_trait;
use bollard::Docker;

/// Tag of locally built images unless `FLEETBENCH_IMAGE_TAG` says otherwise.
pub const DEFAULT_TAG: &str = "dev";
/// Environment variable choosing the tag (`images/build.sh` reads the same one).
pub const TAG_ENV: &str = "FLEETBENCH_IMAGE_TAG";

/// What to do when the docker provider's images are missing.
pub const BUILD_REMEDY: &str = "run `make images` in the fleetbench checkout: it builds them from this project's release binaries, nothing is pulled";

/// Why images are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Images are not on this machine.
    #[error("missing Docker image(s) {}: {remedy}", missing.join(", "))]
    Missing {
        /// The references not found.
        missing: Vec<String>,
        /// How to get them.
        remedy: String,
    },
    /// The engine could not say.
    #[error("cannot look up Docker image {image}")]
    Lookup {
        /// The reference.
        image: String,
        /// The engine's error.
        source: fleet_api::error::Foreign<bollard::errors::Error>,
    },
}

/// One image of the docker provider (a stage of `images/Dockerfile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentImage {
    /// `fleetbench apiserver`: the management cluster and each downstream cluster's API.
    Apiserver,
    /// `fleetbench gitserver`.
    Gitserver,
    /// `fleet-controller`.
    Controller,
    /// `fleet-controller agent`: a downstream cluster's apply agent.
    Agent,
}

impl ComponentImage {
    /// Every image, in build order.
    pub const ALL: [ComponentImage; 4] = [
        ComponentImage::Apiserver,
        ComponentImage::Gitserver,
        ComponentImage::Controller,
        ComponentImage::Agent,
    ];

    /// The Dockerfile stage and the last part of the repository name.
    pub fn stage(self) -> &'static str {
        match self {
            ComponentImage::Apiserver => "apiserver",
            ComponentImage::Gitserver => "gitserver",
            ComponentImage::Controller => "controller",
            ComponentImage::Agent => "agent",
        }
    }

    /// The repository (`fleetbench/apiserver`).
    pub fn repository(self) -> String {
        format!("fleetbench/{}", self.stage())
    }
}

/// Which tag of the images a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    tag: String,
}

impl Default for ImageSet {
    fn default() -> Self {
        Self::new(DEFAULT_TAG)
    }
}

impl ImageSet {
    /// Images tagged `tag`.
    pub fn new(tag: impl Into<String>) -> Self {
        Self { tag: tag.into() }
    }

    /// Images tagged `$FLEETBENCH_IMAGE_TAG`, or `dev`.
    pub fn from_env() -> Self {
        std::env::var(TAG_ENV)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .map(Self::new)
            .unwrap_or_default()
    }

    /// The tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `fleetbench/apiserver:dev`.
    pub fn reference(&self, image: ComponentImage) -> String {
        format!("{}:{}", image.repository(), self.tag)
    }

    /// Every reference of the set.
    pub fn all(&self) -> Vec<String> {
        ComponentImage::ALL
            .iter()
            .map(|i| self.reference(*i))
            .collect()
    }
}

/// Answers whether an image is on this machine (the engine, or a fake in tests).
#[async_trait]
pub trait ImageLookup: Send + Sync {
    /// `Ok(false)` when the engine does not have `reference`.
    async fn is_present(&self, reference: &str) -> Result<bool, bollard::errors::Error>;
}

#[async_trait]
impl ImageLookup for Docker {
    async fn is_present(&self, reference: &str) -> Result<bool, bollard::errors::Error> {
        match self.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Fails unless every image of `references` is on this machine; the error names each
/// missing one and says `remedy`.
pub async fn require(
    lookup: &dyn ImageLookup,
    references: &[String],
    remedy: &str,
) -> Result<(), ImageError> {
    let mut missing = Vec::new();
    for reference in references {
        match lookup.is_present(reference).await {
            Ok(true) => {}
            Ok(false) => missing.push(reference.clone()),
            Err(source) => {
                return Err(ImageError::Lookup {
                    image: reference.clone(),
                    source: source.into(),
                });
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImageError::Missing {
            missing,
            remedy: remedy.to_string(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    /// An engine that has exactly the listed images.
    pub(crate) struct FakeImages(pub BTreeSet<String>);

    #[async_trait]
    impl ImageLookup for FakeImages {
        async fn is_present(&self, reference: &str) -> Result<bool, bollard::errors::Error> {
            Ok(self.0.contains(reference))
        }
    }

    fn repo_file(path: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn references_use_the_tag() {
        let set = ImageSet::new("nightly");
        assert_eq!(
            set.reference(ComponentImage::Controller),
            "fleetbench/controller:nightly"
        );
        assert_eq!(ImageSet::default().tag(), "dev");
        assert_eq!(set.all().len(), 4);
    }

    #[tokio::test]
    async fn missing_images_are_named_with_the_remedy() {
        let set = ImageSet::default();
        let lookup = FakeImages(BTreeSet::from([set.reference(ComponentImage::Apiserver)]));
        let error = require(&lookup, &set.all(), BUILD_REMEDY)
            .await
            .expect_err("three are missing")
            .to_string();
        assert!(!error.contains("fleetbench/apiserver:dev"), "{error}");
        for missing in ["gitserver", "controller", "agent"] {
            assert!(
                error.contains(&format!("fleetbench/{missing}:dev")),
                "{error}"
            );
        }
        assert!(error.contains("make images"), "{error}");
        let all = FakeImages(set.all().into_iter().collect());
        require(&all, &set.all(), BUILD_REMEDY)
            .await
            .expect("all present");
    }

    #[test]
    fn every_image_is_a_stage_of_the_dockerfile_and_built_by_the_script() {
        let dockerfile = repo_file("images/Dockerfile");
        let script = repo_file("images/build.sh");
        for image in ComponentImage::ALL {
            let stage = format!("FROM runtime AS {}", image.stage());
            assert!(dockerfile.contains(&stage), "Dockerfile lacks {stage:?}");
            assert!(
                script
                    .lines()
                    .any(|l| l.starts_with("COMPONENTS=") && l.contains(image.stage())),
                "build.sh's COMPONENTS lacks {}",
                image.stage()
            );
        }
        assert!(script.contains(TAG_ENV), "build.sh ignores {TAG_ENV}");
    }
}
