//! Turning a commit into Bundles, the way `fleet apply` does in Fleet's git job.
//!
//! Each path of `spec.paths` (default: the repo root; `*` and `?` glob directory names) is
//! walked: the path itself is a bundle if it has a `fleet.yaml` or holds manifests outside any
//! fleet.yaml directory, and every directory below it with a `fleet.yaml` is a bundle too.
//! A bundle's resources are the non-hidden files under its directory except its fleet.yaml,
//! its helm values files and the directories of nested bundles. Bundles are named
//! `<gitrepo>-<path>` by Fleet's Helm-release rules; they carry the `repo-name` and `commit`
//! labels; their targets are the fleet.yaml customizations followed by the GitRepo's targets
//! (which are also the target restrictions; `default` group when there are none).

use std::collections::BTreeMap;

use base64::Engine as _;
use git2::{ObjectType, Oid, Repository, Tree};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::names;
use fleet_api::{Bundle, BundleResource, BundleSpec, BundleTarget, GitRepo, GitTarget, labels};

use super::fleetyaml::{self, FleetYaml};

/// The largest Bundle (as JSON) the controller writes. Real clusters store objects in etcd,
/// whose default request limit is 1.5 MiB (`--max-request-bytes` 1572864), and a Bundle also
/// carries metadata and a status; 1 MiB leaves room for both. Checking before any write
/// turns an oversized path into a condition naming the file, rather than an API error
/// halfway through a sync.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;

fn join_path(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Why a commit cannot be turned into Bundles.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path of `spec.paths` does not exist (or is not a directory) at the commit.
    #[error("path {path:?} not found at commit {commit}; check spec.paths")]
    NoSuchPath {
        /// The path.
        path: String,
        /// The commit.
        commit: String,
    },
    /// A fleet.yaml is malformed.
    #[error(transparent)]
    FleetYaml(#[from] fleetyaml::Error),
    /// No path yielded a bundle.
    #[error(
        "no resource found at the following paths to deploy: [{0}]; add manifests or a fleet.yaml"
    )]
    NoResources(String),
    /// One file alone is larger than a Bundle may be.
    #[error(
        "{path} is {size} bytes, over the {limit}-byte limit for one Bundle (kept under etcd's 1.5 MiB request limit); move large content out of the bundle's path"
    )]
    FileTooLarge {
        /// The file's path in the repository.
        path: String,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A bundle's files together make a Bundle larger than the limit.
    #[error(
        "Bundle {bundle} from path {dir:?} would be {size} bytes, over the {limit}-byte limit for one Bundle (kept under etcd's 1.5 MiB request limit); its largest file is {largest}; split the path or move large content out"
    )]
    BundleTooLarge {
        /// The Bundle's name.
        bundle: String,
        /// The bundle's directory in the repository.
        dir: String,
        /// The Bundle's size as JSON.
        size: usize,
        /// The limit.
        limit: usize,
        /// Path in the repository of its largest file.
        largest: String,
    },
    /// The git objects could not be read.
    #[error("reading commit {commit}: {message}")]
    Git {
        /// The commit.
        commit: String,
        /// libgit2's message.
        message: String,
    },
}

impl Error {
    /// The condition reason this error is reported with.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::FileTooLarge { .. } | Error::BundleTooLarge { .. } => "BundleTooLarge",
            _ => "Error",
        }
    }
}

/// Whether `name` matches the glob `pattern` (`*` any run, `?` one character).
fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn clean(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect()
}

struct Reader<'r> {
    repo: &'r Repository,
    commit: String,
}

impl<'r> Reader<'r> {
    fn git_err(&self, e: &git2::Error) -> Error {
        Error::Git {
            commit: self.commit.clone(),
            message: e.message().to_owned(),
        }
    }

    fn subtree(&self, tree: &Tree<'_>, name: &str) -> Result<Option<Tree<'r>>, Error> {
        match tree.get_name(name) {
            Some(entry) if entry.kind() == Some(ObjectType::Tree) => self
                .repo
                .find_tree(entry.id())
                .map(Some)
                .map_err(|e| self.git_err(&e)),
            _ => Ok(None),
        }
    }

    /// Expands a (possibly globbed) path to the matching directories, as `(path, tree)`.
    fn expand(&self, root: &Tree<'r>, path: &str) -> Result<Vec<(String, Tree<'r>)>, Error> {
        let mut current = vec![(String::new(), root.clone())];
        for segment in clean(path) {
            let mut next = Vec::new();
            for (prefix, tree) in &current {
                let join = |name: &str| {
                    if prefix.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{prefix}/{name}")
                    }
                };
                if segment.contains(['*', '?']) {
                    for entry in tree.iter() {
                        let Ok(name) = entry.name() else {
                            continue;
                        };
                        if entry.kind() == Some(ObjectType::Tree) && glob_match(segment, name) {
                            let sub = self
                                .repo
                                .find_tree(entry.id())
                                .map_err(|e| self.git_err(&e))?;
                            next.push((join(name), sub));
                        }
                    }
                } else if let Some(sub) = self.subtree(tree, segment)? {
                    next.push((join(segment), sub));
                }
            }
            current = next;
        }
        Ok(current)
    }

    fn has_fleet_yaml(tree: &Tree<'_>) -> bool {
        tree.get_name("fleet.yaml")
            .is_some_and(|e| e.kind() == Some(ObjectType::Blob))
    }

    /// Fleet's `hasSubDirectoryWithResourcesAndWithoutFleetYaml`.
    fn has_loose_manifests(&self, tree: &Tree<'_>) -> Result<bool, Error> {
        if Self::has_fleet_yaml(tree) {
            return Ok(false);
        }
        for entry in tree.iter() {
            let name = entry.name().unwrap_or_default();
            match entry.kind() {
                Some(ObjectType::Blob) if name.ends_with(".yaml") || name.ends_with(".yml") => {
                    return Ok(true);
                }
                Some(ObjectType::Tree) if name != ".git" => {
                    let sub = self
                        .repo
                        .find_tree(entry.id())
                        .map_err(|e| self.git_err(&e))?;
                    if self.has_loose_manifests(&sub)? {
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
        Ok(false)
    }

    /// The bundle directories under `base` (included when it qualifies).
    fn bundle_dirs(
        &self,
        base: &str,
        tree: &Tree<'r>,
        out: &mut Vec<(String, Tree<'r>)>,
    ) -> Result<(), Error> {
        if Self::has_fleet_yaml(tree) || self.has_loose_manifests(tree)? {
            out.push((base.to_owned(), tree.clone()));
        }
        self.nested_bundle_dirs(base, tree, out)
    }

    fn nested_bundle_dirs(
        &self,
        base: &str,
        tree: &Tree<'r>,
        out: &mut Vec<(String, Tree<'r>)>,
    ) -> Result<(), Error> {
        for entry in tree.iter() {
            let name = entry.name().unwrap_or_default();
            if entry.kind() != Some(ObjectType::Tree) || name == ".git" {
                continue;
            }
            let sub = self
                .repo
                .find_tree(entry.id())
                .map_err(|e| self.git_err(&e))?;
            let path = if base.is_empty() {
                name.to_owned()
            } else {
                format!("{base}/{name}")
            };
            if Self::has_fleet_yaml(&sub) {
                out.push((path.clone(), sub.clone()));
            }
            self.nested_bundle_dirs(&path, &sub, out)?;
        }
        Ok(())
    }

    /// The content of the blob at `path` (its path in the repository), refused before it is
    /// loaded when it alone exceeds the Bundle limit.
    fn blob_text(&self, id: Oid, path: &str) -> Result<(String, Option<String>), Error> {
        let odb = self.repo.odb().map_err(|e| self.git_err(&e))?;
        let (size, _) = odb.read_header(id).map_err(|e| self.git_err(&e))?;
        if size > MAX_BUNDLE_BYTES {
            return Err(Error::FileTooLarge {
                path: path.to_owned(),
                size,
                limit: MAX_BUNDLE_BYTES,
            });
        }
        let blob = self.repo.find_blob(id).map_err(|e| self.git_err(&e))?;
        Ok(match std::str::from_utf8(blob.content()) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(blob.content()),
                Some("base64".to_owned()),
            ),
        })
    }

    /// Files of a bundle directory, skipping hidden entries, nested bundles and `skip`.
    fn resources(
        &self,
        dir: &str,
        prefix: &str,
        tree: &Tree<'_>,
        skip: &[String],
        out: &mut Vec<BundleResource>,
    ) -> Result<(), Error> {
        for entry in tree.iter() {
            let name = entry.name().unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            let path = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    let sub = self
                        .repo
                        .find_tree(entry.id())
                        .map_err(|e| self.git_err(&e))?;
                    if Self::has_fleet_yaml(&sub) {
                        continue;
                    }
                    self.resources(dir, &path, &sub, skip, out)?;
                }
                Some(ObjectType::Blob) => {
                    if skip.contains(&path) {
                        continue;
                    }
                    let (content, encoding) = self.blob_text(entry.id(), &join_path(dir, &path))?;
                    out.push(BundleResource {
                        name: Some(path),
                        content: Some(content),
                        encoding,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The GitRepo's targets, or Fleet's default (`clusterGroup: default`).
pub fn gitrepo_targets(repo: &GitRepo) -> Vec<GitTarget> {
    if repo.spec.targets.is_empty() {
        vec![GitTarget {
            name: Some("default".to_owned()),
            cluster_group: Some(labels::DEFAULT_CLUSTER_GROUP.to_owned()),
            ..Default::default()
        }]
    } else {
        repo.spec.targets.clone()
    }
}

/// Builds the Bundle of one directory.
fn bundle_for(
    gitrepo: &GitRepo,
    dir: &str,
    fleet_yaml: &FleetYaml,
    resources: Vec<BundleResource>,
    commit: &str,
) -> Bundle {
    let repo_name = gitrepo.metadata.name.clone().unwrap_or_default();
    let name = fleet_yaml
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| names::bundle_name(&repo_name, dir));
    let mut bundle_labels = fleet_yaml.labels.clone();
    bundle_labels.insert(labels::REPO_NAME.to_owned(), repo_name);
    bundle_labels.insert(labels::COMMIT.to_owned(), commit.to_owned());

    let mut customizations: Vec<BundleTarget> = fleet_yaml
        .targets
        .iter()
        .chain(fleet_yaml.target_customizations.iter())
        .cloned()
        .collect();
    for (i, target) in customizations.iter_mut().enumerate() {
        if target.name.as_deref().is_none_or(str::is_empty) {
            target.name = Some(format!("target{i:03}"));
        }
        // Fleet propagates the chart coordinates to customizations that set helm options.
        if let (Some(root), Some(helm)) = (&fleet_yaml.options.helm, &mut target.options.helm) {
            for (field, root_value) in [
                (&mut helm.repo, &root.repo),
                (&mut helm.chart, &root.chart),
                (&mut helm.version, &root.version),
            ] {
                if field.as_deref().is_none_or(str::is_empty) {
                    field.clone_from(root_value);
                }
            }
        }
    }
    let restrictions = fleet_yaml
        .override_targets
        .clone()
        .unwrap_or_else(|| gitrepo_targets(gitrepo));
    let mut targets = customizations;
    targets.extend(restrictions.iter().cloned().map(BundleTarget::from));

    let spec_of = &gitrepo.spec;
    let mut options = fleet_yaml.options.clone();
    if let Some(sa) = spec_of.service_account.clone().filter(|s| !s.is_empty()) {
        options.service_account = Some(sa);
    }
    options.force_sync_generation = spec_of.force_sync_generation;
    options.keep_resources |= spec_of.keep_resources;
    options.delete_namespace |= spec_of.delete_namespace;
    if let Some(drift) = spec_of.correct_drift.clone().filter(|d| d.enabled) {
        options.correct_drift = Some(drift);
    }
    if let Some(ns) = spec_of.target_namespace.clone().filter(|n| !n.is_empty()) {
        options.namespace = Some(ns.clone());
        for target in &mut targets {
            target.options.namespace = Some(ns.clone());
        }
    }
    let mut bundle = Bundle::new(
        &name,
        BundleSpec {
            options,
            paused: fleet_yaml.paused || spec_of.paused,
            rollout_strategy: fleet_yaml.rollout_strategy.clone(),
            resources,
            target_customization_mode: Some(
                fleet_yaml.target_customization_mode.unwrap_or_default(),
            ),
            targets,
            target_restrictions: restrictions,
            depends_on: fleet_yaml.depends_on.clone(),
            contents_id: None,
        },
    );
    bundle.metadata.namespace = gitrepo.metadata.namespace.clone();
    bundle.metadata.labels = Some(bundle_labels);
    // The apiserver collects the Bundles of a GitRepo deleted while no controller ran.
    if let Some(uid) = gitrepo.metadata.uid.clone() {
        bundle.metadata.owner_references = Some(vec![OwnerReference {
            api_version: fleet_api::API_VERSION.to_owned(),
            kind: "GitRepo".to_owned(),
            name: gitrepo.metadata.name.clone().unwrap_or_default(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
    }
    bundle
}

fn check_size(bundle: &Bundle, dir: &str) -> Result<(), Error> {
    let size = serde_json::to_vec(bundle).map_or(usize::MAX, |json| json.len());
    if size <= MAX_BUNDLE_BYTES {
        return Ok(());
    }
    let largest = bundle
        .spec
        .resources
        .iter()
        .max_by_key(|r| r.content.as_ref().map_or(0, String::len))
        .and_then(|r| r.name.as_deref())
        .map_or_else(|| join_path(dir, "fleet.yaml"), |name| join_path(dir, name));
    Err(Error::BundleTooLarge {
        bundle: bundle.metadata.name.clone().unwrap_or_default(),
        dir: dir.to_owned(),
        size,
        limit: MAX_BUNDLE_BYTES,
        largest,
    })
}

/// Reads every Bundle of `gitrepo` at `commit` from `repo` (the fetched cache).
pub fn read_bundles(
    repo: &Repository,
    commit: Oid,
    gitrepo: &GitRepo,
) -> Result<Vec<Bundle>, Error> {
    let commit_str = commit.to_string();
    let reader = Reader {
        repo,
        commit: commit_str.clone(),
    };
    let root = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| reader.git_err(&e))?;
    let paths = gitrepo.spec.paths_or_root();
    let mut dirs: Vec<(String, Tree<'_>)> = Vec::new();
    for path in &paths {
        let matched = reader.expand(&root, path)?;
        if matched.is_empty() {
            return Err(Error::NoSuchPath {
                path: path.clone(),
                commit: commit_str,
            });
        }
        for (base, tree) in matched {
            reader.bundle_dirs(&base, &tree, &mut dirs)?;
        }
    }
    let mut bundles: BTreeMap<String, Bundle> = BTreeMap::new();
    for (dir, tree) in dirs {
        let fleet_yaml = match tree.get_name("fleet.yaml") {
            Some(entry) if entry.kind() == Some(ObjectType::Blob) => {
                let file = join_path(&dir, "fleet.yaml");
                let (text, _) = reader.blob_text(entry.id(), &file)?;
                FleetYaml::parse(&file, &text)?
            }
            _ => FleetYaml::default(),
        };
        let mut skip = vec!["fleet.yaml".to_owned()];
        skip.extend(fleet_yaml.values_files());
        let mut resources = Vec::new();
        reader.resources(&dir, "", &tree, &skip, &mut resources)?;
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        let has_chart = fleet_yaml
            .options
            .helm
            .as_ref()
            .is_some_and(|h| h.chart.as_deref().is_some_and(|c| !c.is_empty()));
        if resources.is_empty() && !has_chart {
            tracing::info!(dir, "no resources in bundle directory; skipped");
            continue;
        }
        let bundle = bundle_for(gitrepo, &dir, &fleet_yaml, resources, &commit_str);
        check_size(&bundle, &dir)?;
        bundles.insert(bundle.metadata.name.clone().unwrap_or_default(), bundle);
    }
    if bundles.is_empty() {
        return Err(Error::NoResources(paths.join(", ")));
    }
    Ok(bundles.into_values().collect())
}

#[cfg(test)]
mod tests {
    use git2::Signature;

    use super::*;
    use fleet_api::{GitRepoSpec, TargetCustomizationMode};

    /// Builds a commit from `(path, content)` pairs.
    fn commit(repo: &Repository, files: &[(&str, &str)]) -> Oid {
        let mut index = repo.index().unwrap();
        index.clear().unwrap();
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).unwrap();
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: 0o100644,
                uid: 0,
                gid: 0,
                file_size: content.len() as u32,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).unwrap();
        }
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        repo.commit(None, &sig, &sig, "c", &tree, &[]).unwrap()
    }

    fn gitrepo(paths: &[&str]) -> GitRepo {
        let mut repo = GitRepo::new(
            "shop",
            GitRepoSpec {
                repo: "http://git/shop".into(),
                paths: if paths.is_empty() {
                    None
                } else {
                    Some(paths.iter().map(|p| (*p).to_owned()).collect())
                },
                ..Default::default()
            },
        );
        repo.metadata.namespace = Some("fleet-default".into());
        repo
    }

    fn names(bundles: &[Bundle]) -> Vec<String> {
        bundles
            .iter()
            .map(|b| b.metadata.name.clone().unwrap())
            .collect()
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n";

    #[test]
    fn each_path_becomes_a_bundle_named_like_fleet() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let c = commit(
            &repo,
            &[
                ("apps/web/cm.yaml", CM),
                ("apps/db/cm.yaml", CM),
                ("apps/db/fleet.yaml", "defaultNamespace: db\n"),
                ("README.md", "x"),
            ],
        );
        let bundles = read_bundles(&repo, c, &gitrepo(&["apps/web", "apps/db"])).unwrap();
        assert_eq!(names(&bundles), ["shop-apps-db", "shop-apps-web"]);
        let db = &bundles[0];
        assert_eq!(db.spec.options.default_namespace.as_deref(), Some("db"));
        assert_eq!(db.spec.resources.len(), 1, "fleet.yaml is not a resource");
        assert_eq!(
            db.metadata.labels.as_ref().unwrap()[labels::COMMIT],
            c.to_string()
        );
        assert_eq!(
            db.metadata.labels.as_ref().unwrap()[labels::REPO_NAME],
            "shop"
        );
        assert_eq!(db.metadata.namespace.as_deref(), Some("fleet-default"));
        // No GitRepo targets: the default group, also as restriction.
        assert_eq!(db.spec.targets.len(), 1);
        assert_eq!(db.spec.targets[0].cluster_group.as_deref(), Some("default"));
        assert_eq!(db.spec.target_restrictions.len(), 1);
    }

    #[test]
    fn the_root_and_nested_fleet_yaml_directories_are_bundles() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let c = commit(
            &repo,
            &[
                ("cm.yaml", CM),
                ("sub/more.yaml", CM),
                ("nested/fleet.yaml", "namespace: n\n"),
                ("nested/cm.yaml", CM),
                (".hidden/x.yaml", CM),
            ],
        );
        let bundles = read_bundles(&repo, c, &gitrepo(&[])).unwrap();
        assert_eq!(names(&bundles), ["shop", "shop-nested"]);
        let root = &bundles[0];
        let files: Vec<&str> = root
            .spec
            .resources
            .iter()
            .map(|r| r.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            files,
            ["cm.yaml", "sub/more.yaml"],
            "nested bundles and hidden entries excluded"
        );
    }

    #[test]
    fn globs_customizations_and_target_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let fleet_yaml = "targetCustomizations:\n- clusterSelector:\n    matchLabels: {env: prod}\n  namespace: prod\n";
        let c = commit(
            &repo,
            &[
                ("charts/a/cm.yaml", CM),
                ("charts/b/cm.yaml", CM),
                ("charts/b/fleet.yaml", fleet_yaml),
            ],
        );
        let mut gr = gitrepo(&["charts/*"]);
        gr.spec.targets = vec![GitTarget {
            cluster_name: Some("c1".into()),
            ..Default::default()
        }];
        gr.spec.target_namespace = Some("forced".into());
        let bundles = read_bundles(&repo, c, &gr).unwrap();
        assert_eq!(names(&bundles), ["shop-charts-a", "shop-charts-b"]);
        let b = &bundles[1];
        assert_eq!(b.spec.targets.len(), 2);
        assert_eq!(b.spec.targets[0].name.as_deref(), Some("target000"));
        assert_eq!(b.spec.targets[1].cluster_name.as_deref(), Some("c1"));
        assert_eq!(b.spec.target_restrictions.len(), 1);
        assert!(
            b.spec
                .targets
                .iter()
                .all(|t| t.options.namespace.as_deref() == Some("forced"))
        );
        assert_eq!(b.spec.options.namespace.as_deref(), Some("forced"));
        assert_eq!(
            b.spec.target_customization_mode,
            Some(TargetCustomizationMode::FirstMatch)
        );
    }

    #[test]
    fn errors_say_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let c = commit(
            &repo,
            &[
                ("a/cm.yaml", CM),
                ("bad/fleet.yaml", "helm: [\n"),
                ("bad/cm.yaml", CM),
            ],
        );
        let missing = read_bundles(&repo, c, &gitrepo(&["nope"])).unwrap_err();
        assert_eq!(
            missing.to_string(),
            format!("path \"nope\" not found at commit {c}; check spec.paths")
        );
        let bad = read_bundles(&repo, c, &gitrepo(&["bad"])).unwrap_err();
        assert!(bad.to_string().starts_with("bad/fleet.yaml: "), "{bad}");
        let c2 = commit(&repo, &[("docs/README.md", "x")]);
        let empty = read_bundles(&repo, c2, &gitrepo(&["docs"])).unwrap_err();
        assert!(
            empty.to_string().starts_with("no resource found"),
            "{empty}"
        );
    }

    #[test]
    fn oversized_files_and_bundles_are_named_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let huge = "x".repeat(MAX_BUNDLE_BYTES + 1);
        let c = commit(&repo, &[("app/cm.yaml", CM), ("app/fleet.yaml", &huge)]);
        let err = read_bundles(&repo, c, &gitrepo(&["app"])).unwrap_err();
        assert_eq!(err.reason(), "BundleTooLarge");
        assert!(
            err.to_string().starts_with(&format!(
                "app/fleet.yaml is {} bytes, over the {MAX_BUNDLE_BYTES}-byte limit",
                MAX_BUNDLE_BYTES + 1
            )),
            "{err}"
        );
        let c = commit(&repo, &[("app/big.yaml", &huge)]);
        let err = read_bundles(&repo, c, &gitrepo(&["app"])).unwrap_err();
        assert!(err.to_string().starts_with("app/big.yaml is "), "{err}");
        // Files under the limit that together exceed it: the Bundle is refused and its
        // largest file named.
        let half = "y".repeat(MAX_BUNDLE_BYTES / 2);
        let bigger = "z".repeat(MAX_BUNDLE_BYTES / 2 + 100);
        let c = commit(
            &repo,
            &[
                ("app/a.yaml", &half),
                ("app/b.yaml", &bigger),
                ("ok/cm.yaml", CM),
            ],
        );
        let err = read_bundles(&repo, c, &gitrepo(&["ok", "app"])).unwrap_err();
        assert!(
            matches!(&err, Error::BundleTooLarge { largest, dir, .. } if largest == "app/b.yaml" && dir == "app"),
            "{err}"
        );
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn globbing_matches_stars_and_question_marks() {
        assert!(glob_match("app-*", "app-web"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("app-*", "db"));
    }
}
