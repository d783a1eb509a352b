//! Git object work done in-process with libgit2: repository creation, Gitea's multi-file
//! commit, ref snapshots around a push, and the commit details webhooks and the API show.
//!
//! The ChangeFiles API is the harness's fast path, so it writes blobs, trees and the commit
//! straight into the bare repository (no clone, no work tree, no `git` process) and moves
//! the branch with a compare-and-swap, as Gitea's temporary-clone approach achieves more
//! slowly. Everything here blocks: callers run it on the blocking pool.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, Signature, Sort};

use crate::forge::types::FileOperation;

/// A name and e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub name: String,
    pub email: String,
}

/// A name, e-mail address and time, as recorded in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PersonTime {
    pub name: String,
    pub email: String,
    pub time: jiff::Timestamp,
}

/// What the API and webhooks show of a commit.
#[derive(Debug, Clone)]
pub(crate) struct CommitInfo {
    pub id: Oid,
    pub tree: Oid,
    pub parents: Vec<Oid>,
    pub message: String,
    pub author: PersonTime,
    pub committer: PersonTime,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub modified: Vec<String>,
}

/// A file written by a commit.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    pub path: String,
    pub sha: Oid,
    pub size: usize,
    pub content: Vec<u8>,
}

/// Refs by full name, as seen at one moment.
pub(crate) type RefSnapshot = BTreeMap<String, Oid>;

/// One ref that changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefUpdate {
    pub name: String,
    pub old: Option<Oid>,
    pub new: Option<Oid>,
}

/// Creates a bare repository whose `HEAD` names `default_branch`.
pub(crate) fn init_bare(path: &Path, default_branch: &str) -> Result<Repository, git2::Error> {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true)
        .initial_head(default_branch)
        .mkpath(true)
        .no_reinit(true);
    Repository::init_opts(path, &opts)
}

/// Whether the repository has no branch yet (Gitea's "empty").
pub(crate) fn has_no_branches(repo: &Repository) -> bool {
    repo.references_glob("refs/heads/*")
        .map(|mut refs| refs.next().is_none())
        .unwrap_or(true)
}

fn signature<'a>(person: &Person, time: jiff::Timestamp) -> Result<Signature<'a>, git2::Error> {
    Signature::new(
        &person.name,
        &person.email,
        &git2::Time::new(time.as_second(), 0),
    )
}

/// Checks that `person` can sign a commit (libgit2 refuses angle brackets, NUL and names
/// that are empty once trimmed), so a request is refused with 422 rather than failing
/// halfway through the commit.
pub(crate) fn check_person(person: &Person) -> Result<(), git2::Error> {
    signature(person, jiff::Timestamp::UNIX_EPOCH).map(drop)
}

/// Makes the first commit of an empty repository, on `branch`, with `files`.
pub(crate) fn initial_commit(
    repo: &Repository,
    branch: &str,
    files: &[(&str, &[u8])],
    person: &Person,
    message: &str,
) -> Result<Oid, git2::Error> {
    let mut builder = repo.treebuilder(None)?;
    for (name, content) in files {
        let blob = repo.blob(content)?;
        builder.insert(name, blob, FileMode::Blob.into())?;
    }
    let tree = repo.find_tree(builder.write()?)?;
    let sig = signature(person, jiff::Timestamp::now())?;
    repo.commit(
        Some(&format!("refs/heads/{branch}")),
        &sig,
        &sig,
        &format!("{message}\n"),
        &tree,
        &[],
    )
}

/// Every ref of the repository at `path` (symbolic ones such as `HEAD` left out).
pub(crate) fn snapshot_refs(path: &Path) -> Result<RefSnapshot, git2::Error> {
    let repo = Repository::open_bare(path)?;
    let mut refs = RefSnapshot::new();
    for reference in repo.references()? {
        let reference = reference?;
        if let (Ok(name), Some(target)) = (reference.name(), reference.target()) {
            refs.insert(name.to_owned(), target);
        }
    }
    Ok(refs)
}

/// The refs that differ between two snapshots, by name.
pub(crate) fn diff_refs(before: &RefSnapshot, after: &RefSnapshot) -> Vec<RefUpdate> {
    let mut updates = Vec::new();
    for (name, new) in after {
        let old = before.get(name).copied();
        if old != Some(*new) {
            updates.push(RefUpdate {
                name: name.clone(),
                old,
                new: Some(*new),
            });
        }
    }
    for (name, old) in before {
        if !after.contains_key(name) {
            updates.push(RefUpdate {
                name: name.clone(),
                old: Some(*old),
                new: None,
            });
        }
    }
    updates
}

fn person_time(sig: &Signature<'_>) -> PersonTime {
    PersonTime {
        name: String::from_utf8_lossy(sig.name_bytes()).into_owned(),
        email: String::from_utf8_lossy(sig.email_bytes()).into_owned(),
        time: jiff::Timestamp::from_second(sig.when().seconds()).unwrap_or_default(),
    }
}

/// The commit `id` with the paths it added, removed and modified against its first parent.
pub(crate) fn commit_info(repo: &Repository, id: Oid) -> Result<CommitInfo, git2::Error> {
    let commit = repo.find_commit(id)?;
    let tree = commit.tree()?;
    let parent_tree = match commit.parents().next() {
        Some(parent) => Some(parent.tree()?),
        None => None,
    };
    let diff = repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)?;
    let (mut added, mut removed, mut modified) = (Vec::new(), Vec::new(), Vec::new());
    for delta in diff.deltas() {
        let path = |file: git2::DiffFile<'_>| {
            file.path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match delta.status() {
            git2::Delta::Added => added.push(path(delta.new_file())),
            git2::Delta::Deleted => removed.push(path(delta.old_file())),
            _ => modified.push(path(delta.new_file())),
        }
    }
    Ok(CommitInfo {
        id,
        tree: tree.id(),
        parents: commit.parent_ids().collect(),
        message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
        author: person_time(&commit.author()),
        committer: person_time(&commit.committer()),
        added,
        removed,
        modified,
    })
}

/// Commits a push brought to one ref: newest first, at most `keep`, plus how many there were
/// in all (counted up to `count_limit`).
///
/// An updated ref lists `old..new`; a new branch lists what no other branch had before the
/// push (as Gitea does); a tag lists nothing, its head commit being the tagged one.
pub(crate) fn pushed_commits(
    repo: &Repository,
    update: &RefUpdate,
    before: &RefSnapshot,
    keep: usize,
    count_limit: usize,
) -> Result<(Vec<CommitInfo>, usize), git2::Error> {
    let Some(new) = update.new else {
        return Ok((Vec::new(), 0));
    };
    if !update.name.starts_with("refs/heads/") {
        return Ok((Vec::new(), 0));
    }
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
    walk.push(new)?;
    match update.old {
        Some(old) => {
            // A forced push may make `old` unreachable or gone: hide it only if it exists.
            if repo.find_commit(old).is_ok() {
                walk.hide(old)?;
            }
        }
        None => {
            for (name, oid) in before {
                if name.starts_with("refs/heads/") && *name != update.name {
                    let _ = walk.hide(*oid);
                }
            }
        }
    }
    let mut commits = Vec::new();
    let mut total = 0;
    for id in walk {
        let id = id?;
        total += 1;
        if commits.len() < keep {
            commits.push(commit_info(repo, id)?);
        }
        if total >= count_limit {
            break;
        }
    }
    Ok((commits, total))
}

/// The commit a ref points at (a tag peeled to its commit).
pub(crate) fn peel_to_commit(repo: &Repository, id: Oid) -> Result<Oid, git2::Error> {
    Ok(repo.find_object(id, None)?.peel_to_commit()?.id())
}

/// The head commit of `branch`, or `None` if there is no such branch.
pub(crate) fn branch_head(path: &Path, branch: &str) -> Result<Option<CommitInfo>, git2::Error> {
    let repo = Repository::open_bare(path)?;
    let reference = match repo.find_reference(&format!("refs/heads/{branch}")) {
        Ok(reference) => reference,
        Err(e) if e.code() == ErrorCode::NotFound || e.code() == ErrorCode::InvalidSpec => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let id = reference.peel_to_commit()?.id();
    commit_info(&repo, id).map(Some)
}

/// Every branch with its head commit, sorted by name.
pub(crate) fn branches(path: &Path) -> Result<Vec<(String, CommitInfo)>, git2::Error> {
    let repo = Repository::open_bare(path)?;
    let mut result = Vec::new();
    for reference in repo.references_glob("refs/heads/*")? {
        let reference = reference?;
        let Some(name) = reference
            .name()
            .ok()
            .and_then(|n| n.strip_prefix("refs/heads/"))
        else {
            continue;
        };
        let name = name.to_owned();
        let id = reference.peel_to_commit()?.id();
        result.push((name, commit_info(&repo, id)?));
    }
    result.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(result)
}

/// A file at `reference` (branch, tag or commit; empty means HEAD), with the commit read.
pub(crate) fn read_file(
    path: &Path,
    reference: &str,
    file_path: &str,
) -> Result<Option<(FileEntry, Oid)>, git2::Error> {
    let repo = Repository::open_bare(path)?;
    let spec = if reference.is_empty() {
        "HEAD"
    } else {
        reference
    };
    let commit = match repo.revparse_single(spec).and_then(|o| o.peel_to_commit()) {
        Ok(commit) => commit,
        Err(e)
            if matches!(
                e.code(),
                ErrorCode::NotFound
                    | ErrorCode::UnbornBranch
                    | ErrorCode::InvalidSpec
                    | ErrorCode::Ambiguous
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let entry = match commit.tree()?.get_path(Path::new(file_path)) {
        Ok(entry) => entry,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Ok(None);
    }
    let blob = repo.find_blob(entry.id())?;
    Ok(Some((
        FileEntry {
            path: file_path.to_owned(),
            sha: blob.id(),
            size: blob.size(),
            content: blob.content().to_vec(),
        },
        commit.id(),
    )))
}

/// One file of a ChangeFiles request, decoded.
#[derive(Debug, Clone)]
pub(crate) struct FileChange {
    pub operation: FileOperation,
    pub path: String,
    pub content: Vec<u8>,
    pub sha: Option<String>,
    pub from_path: Option<String>,
}

/// A ChangeFiles request, decoded and defaulted.
#[derive(Debug, Clone)]
pub(crate) struct CommitSpec {
    pub branch: String,
    pub new_branch: Option<String>,
    pub message: String,
    pub author: Person,
    pub committer: Person,
    pub author_time: jiff::Timestamp,
    pub committer_time: jiff::Timestamp,
    pub files: Vec<FileChange>,
}

/// What a ChangeFiles commit did.
#[derive(Debug, Clone)]
pub(crate) struct CommitOutcome {
    /// The branch moved (`refs/heads/...`).
    pub ref_name: String,
    /// The branch's commit before (`None` if the branch is new).
    pub before: Option<Oid>,
    /// The new commit.
    pub commit: CommitInfo,
    /// The branch the commit was made on, short name.
    pub branch: String,
    /// Each file after the commit, in request order (`None` for deletions).
    pub files: Vec<Option<FileEntry>>,
}

/// Why a ChangeFiles request was refused. The API maps each to Gitea's status code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeFilesError {
    /// The base branch does not exist (404).
    #[error("branch does not exist [name: {0}]")]
    BranchNotFound(String),
    /// `new_branch` exists already (422).
    #[error("branch already exists [name: {0}]")]
    BranchExists(String),
    /// A branch name is not a valid git branch name (422).
    #[error(transparent)]
    InvalidBranch(#[from] crate::names::BranchNameError),
    /// `create` of a path that exists (422).
    #[error("repository file already exists [path: {0}]")]
    FileExists(String),
    /// `update` or `delete` of a path that does not exist (404).
    #[error("repository file does not exist [path: {0}]")]
    FileNotFound(String),
    /// The `sha` given is not the file's current blob (422).
    #[error("sha does not match [given: {given}, expected: {current}]")]
    ShaMismatch {
        /// The sha given.
        given: String,
        /// The file's blob id.
        current: String,
    },
    /// A path is empty, absolute after cleaning, or goes through `..` or `.git` (422).
    #[error("path is invalid [path: {0}]")]
    InvalidPath(String),
    /// A path, or one of its components, is longer than the limits (422).
    #[error(
        "path is too long [path: {path}]: at most {MAX_PATH_COMPONENT} bytes a component and {MAX_PATH} in all"
    )]
    PathTooLong {
        /// The path's first 100 characters.
        path: String,
    },
    /// Two files of one request are the same path, or one is inside the other (422).
    #[error("paths overlap in one request [path: {0}]")]
    OverlappingPaths(String),
    /// The path would need a file to be a directory, or a directory to be a file (409).
    #[error("path conflicts with the tree [path: {path}]: {reason}")]
    PathConflict {
        /// The path.
        path: String,
        /// What is in the way.
        reason: &'static str,
    },
    /// No files were given (422).
    #[error("no files to change")]
    NoFiles,
    /// The branch moved while the commit was being made (409; retry).
    #[error("the branch moved during the commit")]
    Raced,
    /// libgit2 failed (500).
    #[error("git")]
    Git(#[from] git2::Error),
}

/// The longest path component accepted, in bytes (`NAME_MAX` of common file systems, so
/// a clone can check the file out).
pub(crate) const MAX_PATH_COMPONENT: usize = 255;
/// The longest path accepted, in bytes (`PATH_MAX` on Linux).
pub(crate) const MAX_PATH: usize = 4096;

/// Cleans a repository path as Gitea does (`a//b/./c` → `a/b/c`, no leading `/`) and
/// refuses the ones that could escape the tree, write git's own files, or could not be
/// checked out (components over 255 bytes, paths over 4096).
pub(crate) fn clean_tree_path(raw: &str) -> Result<String, ChangeFilesError> {
    let invalid = || ChangeFilesError::InvalidPath(raw.chars().take(100).collect());
    let too_long = || ChangeFilesError::PathTooLong {
        path: raw.chars().take(100).collect(),
    };
    if raw.len() > MAX_PATH {
        return Err(too_long());
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err(invalid());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid()),
            part if part.eq_ignore_ascii_case(".git") => return Err(invalid()),
            part if part.len() > MAX_PATH_COMPONENT => return Err(too_long()),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(invalid());
    }
    Ok(parts.join("/"))
}

/// Whether `inner` is `outer` or lies inside it (`a/b` is inside `a`, `ab` is not).
fn path_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Refuses requests whose paths collide with each other: the same path twice, or one file
/// inside another. Applied in order, such a request is ambiguous; libgit2 would fail on it
/// halfway through building the tree.
pub(crate) fn check_overlaps(files: &[FileChange]) -> Result<(), ChangeFilesError> {
    let mut seen: Vec<&str> = Vec::with_capacity(files.len() * 2);
    for file in files {
        let moved = file.from_path.as_deref().filter(|from| *from != file.path);
        for path in std::iter::once(file.path.as_str()).chain(moved) {
            if let Some(other) = seen
                .iter()
                .find(|other| path_within(path, other) || path_within(other, path))
            {
                let shorter = if other.len() < path.len() {
                    other
                } else {
                    path
                };
                return Err(ChangeFilesError::OverlappingPaths(shorter.to_owned()));
            }
        }
        seen.push(file.path.as_str());
        seen.extend(moved);
    }
    Ok(())
}

/// Refuses a path that cannot become a file in `tree`: one of its parent directories is a
/// file (`a/b` when `a` is a file), or it is itself a directory.
fn check_file_slot(tree: &git2::Tree<'_>, path: &str) -> Result<(), ChangeFilesError> {
    let conflict = |reason| ChangeFilesError::PathConflict {
        path: path.to_owned(),
        reason,
    };
    let mut end = 0;
    while let Some(offset) = path[end..].find('/') {
        end += offset;
        if let Ok(entry) = tree.get_path(Path::new(&path[..end]))
            && entry.kind() != Some(ObjectType::Tree)
        {
            return Err(conflict("a parent directory is a file"));
        }
        end += 1;
    }
    if let Ok(entry) = tree.get_path(Path::new(path))
        && entry.kind() != Some(ObjectType::Blob)
    {
        return Err(conflict("it is a directory or a submodule, not a file"));
    }
    Ok(())
}

/// Gitea's generated message: `Add a, b`, `Update c`, `Delete d`, one line each.
pub(crate) fn default_message(files: &[FileChange]) -> String {
    let pick = |op: FileOperation| -> Vec<&str> {
        files
            .iter()
            .filter(|f| f.operation == op)
            .map(|f| f.path.as_str())
            .collect()
    };
    let mut lines = Vec::new();
    for (op, verb) in [
        (FileOperation::Create, "Add"),
        (FileOperation::Update, "Update"),
        (FileOperation::Delete, "Delete"),
    ] {
        let paths = pick(op);
        if !paths.is_empty() {
            lines.push(format!("{verb} {}", paths.join(", ")));
        }
    }
    lines.join("\n")
}

fn check_branch_name(name: &str) -> Result<(), ChangeFilesError> {
    crate::names::validate_branch(name)?;
    Ok(())
}

fn check_sha(given: Option<&String>, current: Oid) -> Result<(), ChangeFilesError> {
    match given {
        Some(given) if !given.is_empty() && *given != current.to_string() => {
            Err(ChangeFilesError::ShaMismatch {
                given: given.clone(),
                current: current.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Gitea's ChangeFiles: one commit creating, updating and deleting files on a branch.
///
/// The caller holds the repository's write lock; the branch is still moved with a
/// compare-and-swap so a writer that bypassed the lock (a hook, a human) is detected.
pub(crate) fn change_files(
    path: &Path,
    spec: &CommitSpec,
) -> Result<CommitOutcome, ChangeFilesError> {
    if spec.files.is_empty() {
        return Err(ChangeFilesError::NoFiles);
    }
    check_branch_name(&spec.branch)?;
    if let Some(new_branch) = &spec.new_branch {
        check_branch_name(new_branch)?;
    }
    let repo = Repository::open_bare(path)?;
    let base_ref = format!("refs/heads/{}", spec.branch);
    let head = match repo.find_reference(&base_ref) {
        Ok(reference) => Some(reference.peel_to_commit()?),
        Err(e) if e.code() == ErrorCode::NotFound && has_no_branches(&repo) => None,
        Err(e) if e.code() == ErrorCode::NotFound => {
            return Err(ChangeFilesError::BranchNotFound(spec.branch.clone()));
        }
        Err(e) => return Err(e.into()),
    };
    let (target_branch, target_ref) = match &spec.new_branch {
        Some(new_branch) if *new_branch != spec.branch => {
            let target_ref = format!("refs/heads/{new_branch}");
            if repo.find_reference(&target_ref).is_ok() {
                return Err(ChangeFilesError::BranchExists(new_branch.clone()));
            }
            (new_branch.clone(), target_ref)
        }
        _ => (spec.branch.clone(), base_ref),
    };
    let base_tree = match &head {
        Some(commit) => commit.tree()?,
        None => repo.find_tree(repo.treebuilder(None)?.write()?)?,
    };

    check_overlaps(&spec.files)?;
    let mut update = git2::build::TreeUpdateBuilder::new();
    let mut written = Vec::with_capacity(spec.files.len());
    for file in &spec.files {
        check_file_slot(&base_tree, &file.path)?;
        if let Some(from) = &file.from_path {
            check_file_slot(&base_tree, from)?;
        }
        let existing = base_tree.get_path(Path::new(&file.path)).ok();
        match file.operation {
            FileOperation::Create => {
                if existing.is_some() {
                    return Err(ChangeFilesError::FileExists(file.path.clone()));
                }
                let blob = repo.blob(&file.content)?;
                update.upsert(file.path.as_str(), blob, FileMode::Blob);
                written.push(Some(file_entry(file, blob)));
            }
            FileOperation::Update => {
                let from = file.from_path.as_deref().unwrap_or(&file.path);
                if from != file.path && existing.is_some() {
                    return Err(ChangeFilesError::FileExists(file.path.clone()));
                }
                let entry = if from == file.path {
                    existing
                } else {
                    base_tree.get_path(Path::new(from)).ok()
                };
                let entry = entry.ok_or_else(|| ChangeFilesError::FileNotFound(from.to_owned()))?;
                check_sha(file.sha.as_ref(), entry.id())?;
                let mode = if entry.filemode() == i32::from(FileMode::BlobExecutable) {
                    FileMode::BlobExecutable
                } else {
                    FileMode::Blob
                };
                if from != file.path {
                    update.remove(from);
                }
                let blob = repo.blob(&file.content)?;
                update.upsert(file.path.as_str(), blob, mode);
                written.push(Some(file_entry(file, blob)));
            }
            FileOperation::Delete => {
                let entry =
                    existing.ok_or_else(|| ChangeFilesError::FileNotFound(file.path.clone()))?;
                check_sha(file.sha.as_ref(), entry.id())?;
                update.remove(file.path.as_str());
                written.push(None);
            }
        }
    }
    let tree = repo.find_tree(update.create_updated(&repo, &base_tree)?)?;
    let author = signature(&spec.author, spec.author_time)?;
    let committer = signature(&spec.committer, spec.committer_time)?;
    let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
    let mut message = spec.message.trim().to_owned();
    message.push('\n');
    let id = repo.commit(None, &author, &committer, &message, &tree, &parents)?;
    let log_message = "fleetbench: change files";
    let before = match (&head, &spec.new_branch) {
        (Some(head), None) => {
            repo.reference_matching(&target_ref, id, true, head.id(), log_message)
                .map_err(|e| match e.code() {
                    ErrorCode::Modified | ErrorCode::Locked => ChangeFilesError::Raced,
                    _ => ChangeFilesError::Git(e),
                })?;
            Some(head.id())
        }
        (Some(head), Some(new_branch)) if *new_branch == spec.branch => {
            repo.reference_matching(&target_ref, id, true, head.id(), log_message)
                .map_err(|e| match e.code() {
                    ErrorCode::Modified | ErrorCode::Locked => ChangeFilesError::Raced,
                    _ => ChangeFilesError::Git(e),
                })?;
            Some(head.id())
        }
        _ => {
            repo.reference(&target_ref, id, false, log_message)
                .map_err(|e| match e.code() {
                    ErrorCode::Exists => ChangeFilesError::BranchExists(target_branch.clone()),
                    _ => ChangeFilesError::Git(e),
                })?;
            None
        }
    };
    Ok(CommitOutcome {
        ref_name: target_ref,
        before,
        commit: commit_info(&repo, id)?,
        branch: target_branch,
        files: written,
    })
}

fn file_entry(file: &FileChange, blob: Oid) -> FileEntry {
    FileEntry {
        path: file.path.clone(),
        sha: blob,
        size: file.content.len(),
        content: file.content.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            name: "Tester".into(),
            email: "t@example.com".into(),
        }
    }

    fn spec(files: Vec<FileChange>) -> CommitSpec {
        let now = jiff::Timestamp::now();
        CommitSpec {
            branch: "main".into(),
            new_branch: None,
            message: "change".into(),
            author: person(),
            committer: person(),
            author_time: now,
            committer_time: now,
            files,
        }
    }

    fn change(operation: FileOperation, path: &str, content: &str) -> FileChange {
        FileChange {
            operation,
            path: path.into(),
            content: content.as_bytes().to_vec(),
            sha: None,
            from_path: None,
        }
    }

    #[test]
    fn change_files_on_an_empty_repository_then_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        init_bare(dir.path(), "main").unwrap();
        let first = change_files(
            dir.path(),
            &spec(vec![
                change(FileOperation::Create, "a/one.yaml", "1"),
                change(FileOperation::Create, "two.yaml", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(first.before, None);
        assert_eq!(first.commit.added.len(), 2);
        let mut update = change(FileOperation::Update, "a/one.yaml", "1b");
        update.sha = Some(first.files[0].as_ref().unwrap().sha.to_string());
        let second = change_files(
            dir.path(),
            &spec(vec![update, change(FileOperation::Delete, "two.yaml", "")]),
        )
        .unwrap();
        assert_eq!(second.before, Some(first.commit.id));
        assert_eq!(second.commit.modified, vec!["a/one.yaml"]);
        assert_eq!(second.commit.removed, vec!["two.yaml"]);
        assert!(second.files[1].is_none());
        let (file, _) = read_file(dir.path(), "main", "a/one.yaml")
            .unwrap()
            .unwrap();
        assert_eq!(file.content, b"1b");
        assert!(read_file(dir.path(), "main", "two.yaml").unwrap().is_none());
    }

    #[test]
    fn change_files_refuses_conflicts_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        init_bare(dir.path(), "main").unwrap();
        let first = change_files(
            dir.path(),
            &spec(vec![change(FileOperation::Create, "f", "1")]),
        )
        .unwrap();
        let err = change_files(
            dir.path(),
            &spec(vec![change(FileOperation::Create, "f", "2")]),
        );
        assert!(matches!(err, Err(ChangeFilesError::FileExists(_))));
        let err = change_files(
            dir.path(),
            &spec(vec![change(FileOperation::Update, "g", "2")]),
        );
        assert!(matches!(err, Err(ChangeFilesError::FileNotFound(_))));
        let mut wrong_sha = change(FileOperation::Update, "f", "2");
        wrong_sha.sha = Some("0".repeat(40));
        let err = change_files(dir.path(), &spec(vec![wrong_sha]));
        assert!(matches!(err, Err(ChangeFilesError::ShaMismatch { .. })));
        let mut other_branch = spec(vec![change(FileOperation::Create, "h", "1")]);
        other_branch.branch = "nope".into();
        assert!(matches!(
            change_files(dir.path(), &other_branch),
            Err(ChangeFilesError::BranchNotFound(_))
        ));
        let head = branch_head(dir.path(), "main").unwrap().unwrap();
        assert_eq!(
            head.id, first.commit.id,
            "no failed request moved the branch"
        );
    }

    #[test]
    fn new_branch_starts_from_the_base_branch() {
        let dir = tempfile::tempdir().unwrap();
        init_bare(dir.path(), "main").unwrap();
        let first = change_files(
            dir.path(),
            &spec(vec![change(FileOperation::Create, "f", "1")]),
        )
        .unwrap();
        let mut on_feature = spec(vec![change(FileOperation::Create, "g", "1")]);
        on_feature.new_branch = Some("feature/x".into());
        let outcome = change_files(dir.path(), &on_feature).unwrap();
        assert_eq!(outcome.ref_name, "refs/heads/feature/x");
        assert_eq!(outcome.commit.parents, vec![first.commit.id]);
        assert!(matches!(
            change_files(dir.path(), &on_feature),
            Err(ChangeFilesError::BranchExists(_))
        ));
        assert_eq!(branches(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn tree_paths_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_tree_path("/a//b/./c.yaml").unwrap(), "a/b/c.yaml");
        for bad in [
            "",
            "/",
            "../x",
            "a/../../x",
            ".git/config",
            "a/.GIT/x",
            "a\\b",
            "a\0",
        ] {
            assert!(clean_tree_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ref_diffs_and_pushed_commits() {
        let dir = tempfile::tempdir().unwrap();
        let repo = init_bare(dir.path(), "main").unwrap();
        let before = snapshot_refs(dir.path()).unwrap();
        let mut ids = Vec::new();
        for i in 0..7 {
            let kind = if i == 0 {
                FileOperation::Create
            } else {
                FileOperation::Update
            };
            ids.push(
                change_files(dir.path(), &spec(vec![change(kind, "f", &i.to_string())]))
                    .unwrap()
                    .commit
                    .id,
            );
        }
        let after = snapshot_refs(dir.path()).unwrap();
        let updates = diff_refs(&before, &after);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].old, None);
        let (commits, total) = pushed_commits(&repo, &updates[0], &before, 5, 1000).unwrap();
        assert_eq!(total, 7);
        assert_eq!(commits.len(), 5);
        assert_eq!(commits[0].id, ids[6], "newest first");
        let partial = RefUpdate {
            name: "refs/heads/main".into(),
            old: Some(ids[4]),
            new: Some(ids[6]),
        };
        let (commits, total) = pushed_commits(&repo, &partial, &after, 5, 1000).unwrap();
        assert_eq!((commits.len(), total), (2, 2));
        assert_eq!(
            default_message(&[
                change(FileOperation::Create, "a", ""),
                change(FileOperation::Create, "b", "")
            ]),
            "Add a, b"
        );
    }
}
