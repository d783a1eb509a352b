//! Fleet's naming rules for the objects the controller creates.
//!
//! Names must match Fleet's byte for byte: the harness looks Bundles up by the names Fleet
//! would give them, and a user switching between Fleet and the bundled controller must find
//! the same objects. Reimplemented from Fleet's behaviour (`internal/names`): Bundle names are
//! Helm-release-safe `<repo>-<path>`, cut to 53 characters with an MD5 suffix; cluster
//! namespaces are `cluster-<ns>-<name>-<sha256 prefix>`, cut to 63 characters.

use md5::{Digest as _, Md5};
use sha2::Sha256;

/// Helm's limit on release names, which Fleet applies to Bundle names.
pub const MAX_HELM_RELEASE_NAME_LEN: usize = 53;

/// The first `len` hex characters of the MD5 of `s` (Fleet's `names.Hex`).
pub fn md5_hex(s: &str, len: usize) -> String {
    let digest = hex::encode(Md5::digest(s.as_bytes()));
    digest[..len.min(digest.len())].to_owned()
}

/// The first 12 hex characters of the SHA-256 of the first 100 bytes of `s` (Fleet's
/// `names.KeyHash`).
pub fn key_hash(s: &str) -> String {
    let bytes = &s.as_bytes()[..s.len().min(100)];
    hex::encode(Sha256::digest(bytes))[..12].to_owned()
}

/// Cuts `s` to `count` bytes, replacing the tail with `-<5 hex of md5(s)>` (Fleet's
/// `names.Limit`). Inputs are ASCII by the time this is called.
pub fn limit(s: &str, count: usize) -> String {
    const HEX_LEN: usize = 5;
    if s.len() <= count {
        return s.to_owned();
    }
    if count <= HEX_LEN + 1 {
        return s[..count].to_owned();
    }
    let keep = count - HEX_LEN - 1;
    // A kept trailing dash doubles as the separator.
    let separator = if s.as_bytes()[keep - 1] == b'-' {
        ""
    } else {
        "-"
    };
    format!("{}{separator}{}", &s[..keep], md5_hex(s, HEX_LEN))
}

fn is_disallowed(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || c == '-')
}

/// Whether `s` is a DNS-1123 label made of `[a-z0-9-]`, starting and ending alphanumerically.
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A unique, DNS-label-safe, Helm-release-safe name for `s` (Fleet's
/// `names.HelmReleaseName`): slashes become dashes; when case or disallowed characters had
/// to be changed, an 8-hex MD5 suffix keeps distinct inputs distinct; the result is cut to
/// 53 characters by [`limit`]; if nothing valid remains, a 24-hex MD5 of the input is used.
pub fn helm_release_name(input: &str) -> String {
    let mut s = input.replace('/', "-");
    let need_hex = s != s.to_lowercase() || s.chars().any(is_disallowed);
    if need_hex {
        s = format!("{s}-{}", md5_hex(&s, 8));
    }
    let lowered = s.to_lowercase();
    let mut cleaned = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        let c = if is_disallowed(c) { '-' } else { c };
        if c == '-' && cleaned.ends_with('-') {
            continue;
        }
        cleaned.push(c);
    }
    let trimmed = cleaned.trim_matches('-');
    if is_dns_label(trimmed) {
        limit(trimmed, MAX_HELM_RELEASE_NAME_LEN)
    } else {
        md5_hex(input, 24)
    }
}

/// Joins `parts` with `-`; when the result is 64 bytes or longer, cuts it to 57 (or 56)
/// bytes and appends a SHA-256 suffix (Fleet's `names.SafeConcatName`).
pub fn safe_concat_name(parts: &[&str]) -> String {
    let full = parts.join("-");
    if full.len() < 64 {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    let c = full.as_bytes()[56];
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        format!("{}-{}", &full[..57], &digest[..5])
    } else {
        format!("{}-{}", &full[..56], &digest[..6])
    }
}

/// Normalises a repo path the way Go's `filepath.Join` does before naming: `.` segments,
/// empty segments and leading/trailing slashes disappear.
fn clean_path(path: &str) -> String {
    path.split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The name of the Bundle generated from `path` of GitRepo `repo_name`.
pub fn bundle_name(repo_name: &str, path: &str) -> String {
    let path = clean_path(path);
    if path.is_empty() {
        helm_release_name(repo_name)
    } else {
        helm_release_name(&format!("{repo_name}/{path}"))
    }
}

/// The namespace that holds the BundleDeployments of Cluster `namespace/name`.
pub fn cluster_namespace(namespace: &str, name: &str) -> String {
    safe_concat_name(&[
        "cluster",
        namespace,
        name,
        &key_hash(&format!("{namespace}::{name}")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_names_join_repo_and_path() {
        assert_eq!(bundle_name("simple", ""), "simple");
        assert_eq!(bundle_name("simple", "."), "simple");
        assert_eq!(bundle_name("repo", "apps/frontend"), "repo-apps-frontend");
        assert_eq!(
            bundle_name("repo", "./apps/frontend/"),
            "repo-apps-frontend"
        );
        assert_eq!(bundle_name("r", "a//b"), "r-a-b");
    }

    #[test]
    fn upper_case_and_odd_characters_get_an_md5_suffix() {
        // "repo-Apps_x" has upper case and '_', so "-<md5[:8] of repo-Apps_x>" is appended
        // before lowering and cleaning.
        let suffix = md5_hex("repo-Apps_x", 8);
        assert_eq!(
            bundle_name("repo", "Apps_x"),
            format!("repo-apps-x-{suffix}")
        );
        // Distinct inputs that clean to the same text stay distinct.
        assert_ne!(bundle_name("repo", "a_b"), bundle_name("repo", "a-b"));
        assert_eq!(bundle_name("repo", "a-b"), "repo-a-b");
    }

    #[test]
    fn long_names_are_limited_to_53_characters_with_a_hash() {
        let path = "a-very-long-directory-name/with-several/levels-of-nesting/inside";
        let full = format!("repo-{}", path.replace('/', "-"));
        let name = bundle_name("repo", path);
        assert_eq!(name.len(), 53);
        assert_eq!(&name[..47], &full[..47]);
        assert_eq!(&name[47..], format!("-{}", md5_hex(&full, 5)));
        assert!(is_dns_label(&name));
    }

    #[test]
    fn limit_does_not_double_the_separator() {
        // Byte 46 (the last kept) is a dash: it serves as the separator, 52 characters.
        let s = format!("{}-{}", "a".repeat(46), "b".repeat(20));
        let limited = limit(&s, 53);
        assert_eq!(limited.len(), 52);
        assert_eq!(limited, format!("{}-{}", "a".repeat(46), md5_hex(&s, 5)));
        assert_eq!(limit("short", 53), "short");
        assert_eq!(limit("abcdefgh", 4), "abcd");
    }

    #[test]
    fn names_with_nothing_valid_fall_back_to_a_checksum() {
        assert_eq!(helm_release_name(""), md5_hex("", 24));
        // Only the appended hash survives cleaning: that is still a valid name.
        assert_eq!(helm_release_name("___"), md5_hex("___", 8));
    }

    #[test]
    fn cluster_namespaces_follow_fleets_pattern() {
        let ns = cluster_namespace("fleet-default", "downstream1");
        let hash = key_hash("fleet-default::downstream1");
        assert_eq!(ns, format!("cluster-fleet-default-downstream1-{hash}"));
        assert_eq!(hash.len(), 12);
        let long = cluster_namespace("fleet-default", &"c".repeat(60));
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("cluster-fleet-default-ccc"));
    }

    #[test]
    fn hashes_match_known_digests() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e, sha256("") = e3b0c442...
        assert_eq!(md5_hex("", 8), "d41d8cd9");
        assert_eq!(key_hash(""), "e3b0c44298fc");
    }
}
