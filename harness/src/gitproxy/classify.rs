//! Which requests are git requests, of which repository, and by whom.
//!
//! Only git's smart HTTP endpoints are recorded and faulted: everything else (Gitea's REST
//! API, web pages, the dumb protocol) passes through untouched, so one proxy URL can serve
//! both the controller's clones and the harness's forge client. Anything that does not
//! parse cleanly is "not a git request": it is still forwarded, never rejected here.

use gitserver::GitService;

/// A git smart-HTTP request: the repository it addresses and the service it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRequest {
    /// `owner/name`, lower case, without `.git`.
    pub repo: String,
    /// The git service.
    pub service: GitService,
}

/// The part of `path` after the proxy's own public path prefix (`""` when it has none).
///
/// A path outside the prefix is returned whole: it is still forwarded (the upstream may
/// know what to do with it), and it can only be classified if it looks like a git path on
/// its own.
pub fn relative_path<'a>(path: &'a str, prefix: &str) -> &'a str {
    if prefix.is_empty() {
        return path;
    }
    match path.strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Classifies a request by its path (relative to the proxy's prefix) and query string.
///
/// Recognised: `/{owner}/{repo}(.git)?/info/refs?service=git-upload-pack|git-receive-pack`,
/// `/{owner}/{repo}(.git)?/git-upload-pack` and `/{owner}/{repo}(.git)?/git-receive-pack`.
/// The method is not checked: a wrong one is the upstream's to refuse, and the attempt
/// is still a git request of that repository.
pub fn classify(path: &str, query: Option<&str>) -> Option<GitRequest> {
    let rest = path.strip_prefix('/')?;
    let mut segments = rest.split('/');
    let owner = segments.next()?;
    let repo = segments.next()?;
    let service = match (segments.next()?, segments.next(), segments.next()) {
        ("git-upload-pack", None, None) => GitService::UploadPack,
        ("git-receive-pack", None, None) => GitService::ReceivePack,
        ("info", Some("refs"), None) => match service_parameter(query?)? {
            "git-upload-pack" => GitService::UploadPackAdvertisement,
            "git-receive-pack" => GitService::ReceivePackAdvertisement,
            _ => return None,
        },
        _ => return None,
    };
    let owner = owner.to_ascii_lowercase();
    let repo = repo.to_ascii_lowercase();
    let repo = repo.strip_suffix(".git").unwrap_or(&repo);
    if !is_name(&owner) || !is_name(repo) {
        return None;
    }
    Some(GitRequest {
        repo: format!("{owner}/{repo}"),
        service,
    })
}

/// The canonical key of a repository as callers name it (`Owner/Name.git`, `/owner/name/`):
/// the form [`classify`] produces, so faults and filters match what was recorded.
pub fn normalize_repo(repo: &str) -> String {
    let repo = repo.trim().trim_matches('/').to_ascii_lowercase();
    match repo.strip_suffix(".git") {
        Some(stripped) => stripped.to_owned(),
        None => repo,
    }
}

/// The value of `service=` in a query string, undecoded: git never encodes it, and a
/// value that needed decoding is not one of the two services anyway.
fn service_parameter(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("service="))
}

/// Owner and repository names as Gitea and GitHub allow them. Anything else (empty, `..`,
/// percent-encoded) is treated as not a git path rather than guessed at.
fn is_name(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The user name of an `Authorization: Basic` header; never the password.
///
/// Forges also accept a token in the user-name position with an empty (or
/// `x-oauth-basic`) password; that "name" is a secret, so it is not returned.
pub fn basic_auth_user(value: &str) -> Option<String> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode_base64(encoded.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() || password.is_empty() || password == "x-oauth-basic" {
        return None;
    }
    Some(user.to_owned())
}

/// Standard or URL-safe base64, padding optional. Small enough to keep a dependency out.
fn decode_base64(input: &str) -> Option<Vec<u8>> {
    let input = input.trim_end_matches('=');
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for byte in input.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The protocol v2 command of an upload-pack request body, from its first pkt-line
/// (`0014command=ls-refs\n`). A protocol v0 body starts with `want` and has none.
pub fn v2_command(first_chunk: &[u8]) -> Option<String> {
    let length = std::str::from_utf8(first_chunk.get(..4)?).ok()?;
    let length = usize::from_str_radix(length, 16).ok()?;
    let line = std::str::from_utf8(first_chunk.get(4..length)?).ok()?;
    let command = line.trim_end().strip_prefix("command=")?;
    (!command.is_empty()).then(|| command.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(repo: &str, service: GitService) -> Option<GitRequest> {
        Some(GitRequest {
            repo: repo.to_owned(),
            service,
        })
    }

    #[test]
    fn the_four_git_endpoints_are_recognised_with_or_without_dot_git() {
        use GitService::*;
        let advert = Some("service=git-upload-pack");
        assert_eq!(
            classify("/o/r.git/info/refs", advert),
            git("o/r", UploadPackAdvertisement)
        );
        assert_eq!(
            classify("/o/r/info/refs", advert),
            git("o/r", UploadPackAdvertisement)
        );
        assert_eq!(
            classify("/o/r.git/info/refs", Some("service=git-receive-pack")),
            git("o/r", ReceivePackAdvertisement)
        );
        assert_eq!(
            classify("/o/r.git/git-upload-pack", None),
            git("o/r", UploadPack)
        );
        assert_eq!(
            classify("/o/r/git-receive-pack", Some("x=1")),
            git("o/r", ReceivePack)
        );
    }

    #[test]
    fn names_are_lower_cased() {
        assert_eq!(
            classify("/Alice/My-Repo.GIT/git-upload-pack", None),
            git("alice/my-repo", GitService::UploadPack)
        );
        assert_eq!(
            classify("/ORG/x_y.z/info/refs", Some("service=git-upload-pack")),
            git("org/x_y.z", GitService::UploadPackAdvertisement)
        );
    }

    #[test]
    fn the_service_parameter_may_be_anywhere_in_the_query() {
        assert_eq!(
            classify("/o/r/info/refs", Some("a=b&service=git-upload-pack&c")),
            git("o/r", GitService::UploadPackAdvertisement)
        );
    }

    #[test]
    fn other_paths_and_dumb_protocol_requests_are_not_git_requests() {
        for (path, query) in [
            // The dumb protocol and unknown services.
            ("/o/r.git/info/refs", None),
            ("/o/r.git/info/refs", Some("service=git-upload-archive")),
            ("/o/r.git/info/refs", Some("service=")),
            ("/o/r.git/HEAD", None),
            ("/o/r.git/objects/info/packs", None),
            // REST and web paths.
            ("/api/v1/repos/o/r", None),
            ("/api/v1/repos/o/r/git-upload-pack", None),
            ("/o/r", None),
            ("/o", None),
            ("/", None),
            ("", None),
            ("*", None),
            // Odd shapes.
            ("/o/r.git/git-upload-pack/", None),
            ("/o/r.git/info/refs/", Some("service=git-upload-pack")),
            ("//r/git-upload-pack", None),
            ("/o//git-upload-pack", None),
            ("/o/.git/git-upload-pack", None),
            ("/../r/git-upload-pack", None),
            ("/o/%2e%2e/git-upload-pack", None),
            ("/o/r x/git-upload-pack", None),
            ("o/r/git-upload-pack", None),
        ] {
            assert_eq!(classify(path, query), None, "{path} ? {query:?}");
        }
    }

    #[test]
    fn a_public_prefix_is_stripped_only_where_it_matches_whole_segments() {
        assert_eq!(
            relative_path("/o/r/git-upload-pack", ""),
            "/o/r/git-upload-pack"
        );
        assert_eq!(
            relative_path("/git/o/r/git-upload-pack", "/git"),
            "/o/r/git-upload-pack"
        );
        assert_eq!(relative_path("/git", "/git"), "/");
        assert_eq!(relative_path("/gitea/o/r", "/git"), "/gitea/o/r");
        assert_eq!(relative_path("/o/r", "/git"), "/o/r");
        // Behind the prefix, a path is a git path only if it is one on its own.
        assert_eq!(
            classify(
                relative_path("/git/o/r.git/info/refs", "/git"),
                Some("service=git-upload-pack")
            ),
            git("o/r", GitService::UploadPackAdvertisement)
        );
        assert_eq!(
            classify(relative_path("/other/o/r/git-upload-pack", "/git"), None),
            None
        );
    }

    #[test]
    fn repository_keys_are_normalised_like_recorded_ones() {
        assert_eq!(normalize_repo("Alice/Demo.git"), "alice/demo");
        assert_eq!(normalize_repo(" /alice/demo/ "), "alice/demo");
        assert_eq!(normalize_repo("alice/demo"), "alice/demo");
    }

    #[test]
    fn basic_auth_yields_the_user_name_only() {
        // "alice:secret"
        assert_eq!(
            basic_auth_user("Basic YWxpY2U6c2VjcmV0").as_deref(),
            Some("alice")
        );
        // Case-insensitive scheme, padded ("bob:pw" -> "Ym9iOnB3").
        assert_eq!(basic_auth_user("basic Ym9iOnB3").as_deref(), Some("bob"));
        // "al:c:d": the password may contain colons.
        assert_eq!(basic_auth_user("Basic YWw6Yzpk").as_deref(), Some("al"));
        // A token as user name ("tok:" and "tok:x-oauth-basic") is a secret.
        assert_eq!(basic_auth_user("Basic dG9rOg=="), None);
        assert_eq!(basic_auth_user("Basic dG9rOngtb2F1dGgtYmFzaWM="), None);
        assert_eq!(basic_auth_user("token abc"), None);
        assert_eq!(basic_auth_user("Bearer abc"), None);
        assert_eq!(basic_auth_user("Basic !!!"), None);
        assert_eq!(basic_auth_user("Basic"), None);
        // No colon at all.
        assert_eq!(basic_auth_user("Basic YWxpY2U="), None);
    }

    #[test]
    fn base64_decodes_every_alphabet_position() {
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("Zg").unwrap(), b"f");
        assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
        assert_eq!(decode_base64("Zm9v").unwrap(), b"foo");
        assert_eq!(decode_base64("+/+/").unwrap(), vec![0xfb, 0xff, 0xbf]);
        assert_eq!(decode_base64("-_-_").unwrap(), vec![0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn v2_commands_come_from_the_first_pkt_line() {
        assert_eq!(
            v2_command(b"0014command=ls-refs\n0000").as_deref(),
            Some("ls-refs")
        );
        assert_eq!(v2_command(b"0012command=fetch\n").as_deref(), Some("fetch"));
        assert_eq!(
            v2_command(b"0032want 0123456789012345678901234567890123456789\n"),
            None
        );
        assert_eq!(v2_command(b"0010command=\n"), None);
        assert_eq!(v2_command(b"00"), None);
        assert_eq!(v2_command(b"0000"), None);
        assert_eq!(v2_command(b"ffffcommand=x"), None);
        assert_eq!(v2_command(b"zzzzcommand=x"), None);
    }
}
