//! Where each GitRepo's fetched repository lives on the controller's disk.
//!
//! A cache directory holds what a GitRepo's credentials fetched, so it must be neither
//! guessable nor shared: its name is a keyed hash of the GitRepo's namespace, name and UID
//! under a random secret kept in the cache root (mode 0600), and the directory is mode 0700.
//! Knowing a GitRepo's namespace and name (all that another tenant knows) is not enough to
//! compute its directory, and a GitRepo recreated under the same name gets a fresh one. The
//! secret persists in the root, so a restarted controller finds its caches again. A deleted
//! GitRepo's directory is removed with it (those this process used; a directory of a
//! GitRepo deleted while no controller ran stays, unreachable, until the root is cleaned).

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use sha2::{Digest as _, Sha256};

use fleet_api::GitRepo;

/// Name of the secret file in the cache root.
const SECRET_FILE: &str = ".cache-key";

/// Bytes of randomness in the secret.
const SECRET_LEN: usize = 32;

/// The cache root could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating the root or reading/writing its secret failed.
    #[error("git cache directory {path}")]
    Io {
        /// The path involved (the operator's own configuration, never shown in conditions).
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file exists but is not one this controller wrote.
    #[error("git cache directory {path}: {SECRET_FILE} is corrupt; remove it to start afresh")]
    CorruptSecret {
        /// The cache root.
        path: String,
    },
}

/// The cache root and its secret.
#[derive(Clone)]
pub struct Cache {
    root: PathBuf,
    secret: [u8; SECRET_LEN],
    /// `namespace/name` -> directory, for the GitRepos this process synced: after a
    /// deletion the UID that names the directory is gone from the API.
    used: Arc<Mutex<HashMap<String, PathBuf>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Cache").field("root", &self.root).finish()
    }
}

impl Cache {
    /// Opens (creating if needed) the cache root `root`, and its secret.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        if !root.exists() {
            super::git::create_private_dir(root).map_err(io(root))?;
        }
        let file = root.join(SECRET_FILE);
        let secret = match read_secret(&file) {
            Ok(Some(secret)) => secret,
            Ok(None) => write_secret(&file).map_err(io(&file))?,
            Err(ReadError::Io(e)) => return Err(io(&file)(e)),
            Err(ReadError::Corrupt) => {
                return Err(Error::CorruptSecret {
                    path: root.display().to_string(),
                });
            }
        };
        Ok(Cache {
            root: root.to_path_buf(),
            secret,
            used: Arc::default(),
        })
    }

    /// The cache directory of `repo`.
    pub fn dir_for(&self, repo: &GitRepo) -> PathBuf {
        let mut hash = Sha256::new();
        hash.update(self.secret);
        for part in [
            repo.metadata.namespace.as_deref().unwrap_or_default(),
            repo.metadata.name.as_deref().unwrap_or_default(),
            repo.metadata.uid.as_deref().unwrap_or_default(),
        ] {
            // Length-prefixed, so ("a-b", "c") and ("a", "b-c") differ.
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hex::encode(hash.finalize());
        let dir = self.root.join(&digest[..40]);
        self.used.lock().insert(
            format!(
                "{}/{}",
                repo.metadata.namespace.as_deref().unwrap_or_default(),
                repo.metadata.name.as_deref().unwrap_or_default()
            ),
            dir.clone(),
        );
        dir
    }

    /// Forgets the directory of deleted GitRepo `namespace/name`, returning it for removal.
    pub fn forget(&self, namespace: &str, name: &str) -> Option<PathBuf> {
        self.used.lock().remove(&format!("{namespace}/{name}"))
    }
}

enum ReadError {
    Io(std::io::Error),
    Corrupt,
}

fn read_secret(file: &Path) -> Result<Option<[u8; SECRET_LEN]>, ReadError> {
    let mut text = String::new();
    match std::fs::File::open(file) {
        Ok(mut f) => {
            f.read_to_string(&mut text).map_err(ReadError::Io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    }
    let bytes = hex::decode(text.trim()).map_err(|_| ReadError::Corrupt)?;
    bytes.try_into().map(Some).map_err(|_| ReadError::Corrupt)
}

fn write_secret(file: &Path) -> std::io::Result<[u8; SECRET_LEN]> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let secret: [u8; SECRET_LEN] = rand::random();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(mut f) => {
            f.write_all(hex::encode(secret).as_bytes())?;
            f.sync_all()?;
            Ok(secret)
        }
        // Another controller on the same root won the race: use its secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read_secret(file) {
            Ok(Some(secret)) => Ok(secret),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use fleet_api::GitRepoSpec;

    fn repo(ns: &str, name: &str, uid: &str) -> GitRepo {
        let mut r = GitRepo::new(name, GitRepoSpec::default());
        r.metadata.namespace = Some(ns.into());
        r.metadata.uid = Some(uid.into());
        r
    }

    #[test]
    fn directories_are_keyed_by_a_secret_and_the_gitrepo_uid() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let cache = Cache::open(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let key_mode = std::fs::metadata(root.join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);
        let a = cache.dir_for(&repo("team-a", "app", "u1"));
        assert!(a.starts_with(&root));
        // Nothing computable from namespace and name alone.
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains("team-a"), "{name}");
        assert_ne!(
            name,
            crate::names::key_hash("team-a/app"),
            "not the old guessable name"
        );
        assert_ne!(a, cache.dir_for(&repo("team-a", "app", "u2")), "new uid");
        assert_ne!(a, cache.dir_for(&repo("team-b", "app", "u1")));
        // The same root gives the same directories after a restart; another root does not.
        assert_eq!(
            a,
            Cache::open(&root)
                .unwrap()
                .dir_for(&repo("team-a", "app", "u1"))
        );
        let other = Cache::open(&dir.path().join("other")).unwrap();
        assert_ne!(
            a.file_name(),
            other.dir_for(&repo("team-a", "app", "u1")).file_name()
        );
        assert!(!format!("{cache:?}").contains(&hex::encode(cache.secret)));
        // The directory last used for a name is the one removed with its GitRepo.
        assert_eq!(cache.dir_for(&repo("team-a", "app", "u1")), a);
        assert_eq!(cache.forget("team-a", "app"), Some(a));
        assert_eq!(cache.forget("team-a", "app"), None);
    }

    #[test]
    fn a_corrupt_secret_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SECRET_FILE), "not hex").unwrap();
        assert!(matches!(
            Cache::open(dir.path()),
            Err(Error::CorruptSecret { .. })
        ));
    }
}
