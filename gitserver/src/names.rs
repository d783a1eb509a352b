//! Owner and repository names, validated as Gitea validates them.
//!
//! Names become directories (`{data_dir}/{owner}/{repo}.git`), so validation is also what
//! keeps path traversal out: a valid name has no `/`, `\`, NUL, `..` or leading dot and
//! cannot name anything outside its owner directory. Names are compared and stored on disk
//! in lower case, as Gitea does, so `Foo` and `foo` are the same repository.

/// Why a name was refused (Gitea answers these with 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("name must not be empty")]
    Empty,
    /// The name is longer than Gitea allows.
    #[error("name is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The name has a character Gitea does not allow (only `[A-Za-z0-9_.-]`).
    #[error("name {0:?} must be valid alpha or numeric or dash(-_) or dot characters")]
    InvalidCharacters(String),
    /// The name is one Gitea reserves (`.`, `..`, `api`, ...).
    #[error("name {0:?} is reserved")]
    Reserved(String),
    /// The name matches a pattern Gitea reserves (`*.git`, `*.wiki`, ...).
    #[error("name {name:?} matches the reserved pattern {pattern:?}")]
    ReservedPattern {
        /// The name.
        name: String,
        /// The pattern it matches.
        pattern: &'static str,
    },
}

/// Gitea's `MaxSize(100)` on repository names.
const MAX_REPO_NAME: usize = 100;
/// Gitea's limit on user and organisation names.
const MAX_OWNER_NAME: usize = 40;

const RESERVED_REPO_NAMES: &[&str] = &[".", "..", "-"];
const RESERVED_REPO_SUFFIXES: &[(&str, &str)] = &[
    (".git", "*.git"),
    (".wiki", "*.wiki"),
    (".rss", "*.rss"),
    (".atom", "*.atom"),
];

/// Gitea's reserved user names, plus the paths this server serves beside repositories.
const RESERVED_OWNER_NAMES: &[&str] = &[
    ".",
    "..",
    ".well-known",
    "admin",
    "api",
    "assets",
    "attachments",
    "avatar",
    "avatars",
    "captcha",
    "commits",
    "debug",
    "error",
    "explore",
    "favicon.ico",
    "ghost",
    "healthz",
    "issues",
    "login",
    "manifest.json",
    "metrics",
    "milestones",
    "new",
    "notifications",
    "org",
    "pulls",
    "raw",
    "repo",
    "repo-avatars",
    "robots.txt",
    "search",
    "serviceworker.js",
    "ssh_info",
    "swagger.v1.json",
    "user",
    "v2",
];
const RESERVED_OWNER_SUFFIXES: &[(&str, &str)] = &[
    (".keys", "*.keys"),
    (".gpg", "*.gpg"),
    (".rss", "*.rss"),
    (".atom", "*.atom"),
    (".png", "*.png"),
];

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn check_suffixes(name: &str, suffixes: &[(&str, &'static str)]) -> Result<(), NameError> {
    let lower = name.to_ascii_lowercase();
    for (suffix, pattern) in suffixes {
        if lower.ends_with(suffix) {
            return Err(NameError::ReservedPattern {
                name: name.to_owned(),
                pattern,
            });
        }
    }
    Ok(())
}

/// Checks a repository name (Gitea's `AlphaDashDot;MaxSize(100)` and reserved names).
pub fn validate_repo(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_REPO_NAME {
        return Err(NameError::TooLong { max: MAX_REPO_NAME });
    }
    if !name.chars().all(is_name_char) {
        return Err(NameError::InvalidCharacters(name.to_owned()));
    }
    if RESERVED_REPO_NAMES.contains(&name) {
        return Err(NameError::Reserved(name.to_owned()));
    }
    check_suffixes(name, RESERVED_REPO_SUFFIXES)
}

/// Checks a user or organisation name (Gitea's user name rules and reserved names).
///
/// A name starts with a letter or digit, has no two `-._` in a row and does not end in one.
pub fn validate_owner(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_OWNER_NAME {
        return Err(NameError::TooLong {
            max: MAX_OWNER_NAME,
        });
    }
    let is_special = |c: char| matches!(c, '-' | '_' | '.');
    let starts_alnum = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let doubled_special = name
        .as_bytes()
        .windows(2)
        .any(|w| is_special(w[0] as char) && is_special(w[1] as char));
    let ends_special = name.chars().last().is_some_and(is_special);
    if !name.chars().all(is_name_char) || !starts_alnum || doubled_special || ends_special {
        return Err(NameError::InvalidCharacters(name.to_owned()));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_OWNER_NAMES.contains(&lower.as_str()) {
        return Err(NameError::Reserved(name.to_owned()));
    }
    check_suffixes(name, RESERVED_OWNER_SUFFIXES)
}

/// Why a branch name was refused (answered with 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BranchNameError {
    /// The name is empty.
    #[error("branch name must not be empty")]
    Empty,
    /// The name is longer than Gitea's `MaxSize(100)` on branch names.
    #[error("branch name is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The name breaks one of git's ref-name rules (`git check-ref-format --branch`).
    #[error("branch name {name:?} is not a valid git branch name: {rule}")]
    Invalid {
        /// The name (control characters escaped by `Debug`).
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
}

/// Gitea's `MaxSize(100)` on branch names in requests (`branch`, `new_branch`,
/// `default_branch`).
pub const MAX_BRANCH_NAME: usize = 100;

/// Checks a branch name as `git check-ref-format --branch` does, plus Gitea's length limit.
///
/// Request bodies name branches that become files under `refs/heads/` and arguments to git,
/// so this is both a compatibility check and what keeps `--orphan`-style option injection and
/// lock-file names out. The one deliberate difference from git: `@` alone is refused (git
/// reads it as `HEAD` in most commands, so a branch of that name is a trap).
pub fn validate_branch(name: &str) -> Result<(), BranchNameError> {
    let invalid = |rule: &'static str| BranchNameError::Invalid {
        name: name.to_owned(),
        rule,
    };
    if name.is_empty() {
        return Err(BranchNameError::Empty);
    }
    if name.chars().count() > MAX_BRANCH_NAME {
        return Err(BranchNameError::TooLong {
            max: MAX_BRANCH_NAME,
        });
    }
    if name.starts_with('-') {
        return Err(invalid("it must not start with '-'"));
    }
    if name == "HEAD" || name == "@" {
        return Err(invalid("HEAD and @ are reserved"));
    }
    if let Some(c) = name.chars().find(|&c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return Err(match c {
            c if c.is_ascii_control() => invalid("no control characters"),
            _ => invalid("none of ' ', '~', '^', ':', '?', '*', '[', '\\'"),
        });
    }
    if name.contains("..") {
        return Err(invalid("no '..'"));
    }
    if name.contains("@{") {
        return Err(invalid("no '@{'"));
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(invalid("no leading, trailing or doubled '/'"));
    }
    if name.ends_with('.') {
        return Err(invalid("it must not end with '.'"));
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err(invalid("no component may start with '.'"));
        }
        if component.ends_with(".lock") {
            return Err(invalid("no component may end with '.lock'"));
        }
    }
    Ok(())
}

/// A validated `owner/name` pair, as a repository is addressed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath {
    owner: String,
    name: String,
}

impl RepoPath {
    /// Validates both parts.
    pub fn new(owner: &str, name: &str) -> Result<Self, NameError> {
        validate_owner(owner)?;
        validate_repo(name)?;
        Ok(Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Parses `owner/name` (an optional `.git` suffix on the name is dropped).
    pub fn parse(full_name: &str) -> Result<Self, NameError> {
        let (owner, name) = full_name
            .split_once('/')
            .ok_or_else(|| NameError::InvalidCharacters(full_name.to_owned()))?;
        Self::new(owner, name.strip_suffix(".git").unwrap_or(name))
    }

    /// The owner as given.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The repository name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The case-insensitive identity: `owner/name` in lower case.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.owner.to_ascii_lowercase(),
            self.name.to_ascii_lowercase()
        )
    }
}

impl std::fmt::Display for RepoPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_alpha_dash_dot() {
        for ok in ["a", "repo-1", "Repo_2", "my.repo", "x".repeat(100).as_str()] {
            assert_eq!(validate_repo(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "a/b", "a b", "..", ".", "-", "x.git", "X.GIT", "w.wiki", "%2e%2e",
        ] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
        assert!(validate_repo("a\\b").is_err());
        assert!(validate_repo("a\0b").is_err());
        assert!(validate_repo(&"x".repeat(101)).is_err());
    }

    #[test]
    fn owner_names_follow_gitea_user_rules() {
        for ok in ["alice", "a1", "team-a", "org.name", "A_b"] {
            assert_eq!(validate_owner(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", ".hidden", "-x", "x-", "a--b", "a._b", "api", "API", "user", "..", "a/b", "/abs",
            "k.keys",
        ] {
            assert!(validate_owner(bad).is_err(), "{bad}");
        }
    }

    /// Names `git check-ref-format --branch` accepts or refuses (checked against git 2.47).
    const BRANCH_CORPUS: &[(&str, bool)] = &[
        ("main", true),
        ("feature/x", true),
        ("release-1.0", true),
        ("a@b", true),
        ("@x", true),
        ("x@", true),
        ("a/@/b", true),
        ("ü", true),
        ("refs/heads/x", true),
        ("HEADx", true),
        ("x/HEAD", true),
        ("a.b", true),
        ("HEAD", false),
        ("-x", false),
        ("--orphan", false),
        ("a.lock", false),
        ("a/b.lock/c", false),
        (".lock", false),
        (".a", false),
        ("a/.b", false),
        ("a/./b", false),
        ("a..b", false),
        ("a@{b", false),
        ("a.", false),
        ("a/", false),
        ("/a", false),
        ("a//b", false),
        ("a b", false),
        ("a~b", false),
        ("a^", false),
        ("a:b", false),
        ("a?", false),
        ("a*", false),
        ("a[", false),
        ("a\\b", false),
        ("a\tb", false),
        ("a\u{7f}b", false),
        ("", false),
    ];

    #[test]
    fn branch_names_follow_git_check_ref_format() {
        for (name, valid) in BRANCH_CORPUS {
            assert_eq!(validate_branch(name).is_ok(), *valid, "{name:?}");
        }
        assert!(
            validate_branch("@").is_err(),
            "refused although git allows it"
        );
        assert!(validate_branch(&"b".repeat(MAX_BRANCH_NAME)).is_ok());
        assert_eq!(
            validate_branch(&"b".repeat(MAX_BRANCH_NAME + 1)),
            Err(BranchNameError::TooLong {
                max: MAX_BRANCH_NAME
            })
        );
    }

    #[test]
    fn branch_corpus_agrees_with_the_git_cli() {
        // The corpus above is what the validator is held to; this keeps the corpus honest.
        for (name, valid) in BRANCH_CORPUS.iter().filter(|(n, _)| !n.is_empty()) {
            let status = std::process::Command::new("git")
                .args(["check-ref-format", "--branch", name])
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .current_dir(std::env::temp_dir())
                .output()
                .expect("git runs");
            assert_eq!(status.status.success(), *valid, "git on {name:?}");
        }
    }

    #[test]
    fn repo_path_key_is_case_insensitive() {
        let a = RepoPath::parse("Alice/Repo.git").unwrap();
        let b = RepoPath::new("alice", "repo").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.to_string(), "Alice/Repo");
        assert!(RepoPath::parse("alice").is_err());
        assert!(RepoPath::parse("alice/../etc").is_err());
    }
}
