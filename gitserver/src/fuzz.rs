//! Property-based fuzzing of everything that decodes or checks client input: REST bodies
//! (ChangeFiles, repository creation, hooks), ref and path validators, the fault decoder,
//! webhook payloads and signatures, branch filters, credentials and git's pkt-lines.
//!
//! Each property calls the decoder directly (no server), so a few thousand cases run in
//! seconds even in a debug build. Two kinds of property: nothing panics on any input, and
//! whatever is accepted really satisfies the rule it was checked against (every refusal of
//! a REST body is a 422, never a 500). Inputs are drawn from alphabets rich in the
//! characters the rules are about, plus fully arbitrary strings and bytes.

use proptest::prelude::*;

use crate::api::{contents, hooks, repos};
use crate::faults::{Fault, MAX_FAULT_DELAY};
use crate::forge::types::{
    ChangeFileOperation, ChangeFilesOptions, CommitDateOptions, CreateHookOption, CreateRepoOption,
    FileOperation, Identity, PayloadCommit, PushPayload,
};
use crate::gitops::{self, MAX_PATH, MAX_PATH_COMPONENT};
use crate::names;
use crate::webhook;

/// Strings made mostly of the characters ref and path rules care about.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9./@{}~^:?*\\[\\\\ \t\\-_]{0,24}",
        1 => "[a./-]{0,12}(\\.lock)?/?",
        1 => any::<String>(),
    ]
}

/// Repository paths: short and tricky, or one very long component, or very deep.
fn tree_path() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "(/|\\./|\\.\\./|\\.git/|[a-z]{1,3}/){0,4}[a-z.]{0,6}",
        1 => (250usize..300).prop_map(|n| format!("d/{}", "c".repeat(n))),
        1 => (15usize..25).prop_map(|n| vec!["d".repeat(200); n].join("/")),
        1 => any::<String>(),
    ]
}

fn operation() -> impl Strategy<Value = FileOperation> {
    prop_oneof![
        Just(FileOperation::Create),
        Just(FileOperation::Update),
        Just(FileOperation::Delete),
    ]
}

fn file_change() -> impl Strategy<Value = ChangeFileOperation> {
    (
        operation(),
        tree_path(),
        prop_oneof!["[A-Za-z0-9+/]{0,12}={0,2}", any::<String>()],
        prop_oneof![Just(String::new()), tree_path()],
    )
        .prop_map(
            |(operation, path, content, from_path)| ChangeFileOperation {
                operation,
                path,
                content,
                sha: String::new(),
                from_path,
            },
        )
}

fn identity() -> impl Strategy<Value = Identity> {
    ("[a-z<> \0]{0,6}", "[a-z@.<>\0]{0,8}").prop_map(|(name, email)| Identity { name, email })
}

fn change_files_options() -> impl Strategy<Value = ChangeFilesOptions> {
    (
        proptest::collection::vec(file_change(), 0..5),
        prop_oneof![Just(String::new()), tricky()],
        prop_oneof![Just(String::new()), tricky()],
        prop_oneof![Just(String::new()), "[a-z \0]{0,8}"],
        identity(),
        identity(),
        prop_oneof![Just(String::new()), "[0-9TZ:-]{0,20}"],
    )
        .prop_map(
            |(files, branch, new_branch, message, author, committer, date)| ChangeFilesOptions {
                files,
                message,
                branch,
                new_branch,
                author,
                committer,
                dates: CommitDateOptions {
                    author: date.clone(),
                    committer: date,
                },
            },
        )
}

fn hook_option() -> impl Strategy<Value = CreateHookOption> {
    let key = prop_oneof![
        Just("url".to_owned()),
        Just("content_type".to_owned()),
        Just("http_method".to_owned()),
        Just("secret".to_owned()),
        "[a-z_]{1,8}",
    ];
    let value = prop_oneof![
        Just("json".to_owned()),
        Just("form".to_owned()),
        Just("PUT".to_owned()),
        Just("http://127.0.0.1:9/hook".to_owned()),
        "(https?|ftp)://[a-z.]{0,8}(:[0-9]{1,5})?/[a-z]{0,4}",
        any::<String>(),
    ];
    (
        prop_oneof![
            Just("gitea".to_owned()),
            Just("gogs".to_owned()),
            "[a-z]{0,6}"
        ],
        proptest::collection::btree_map(key, value, 0..6),
        prop_oneof!["[a-z*?{},/]{0,40}", any::<String>()],
        prop_oneof!["[ -~]{0,20}", "[a-z\r\n\0]{0,10}"],
    )
        .prop_map(|(hook_type, config, branch_filter, authorization_header)| {
            CreateHookOption {
                hook_type,
                config,
                events: Vec::new(),
                branch_filter,
                authorization_header,
                active: true,
            }
        })
}

/// A deliberately simple (exponential) glob matcher to check the linear one against.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| reference_glob(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && reference_glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && reference_glob(rest, &text[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn branch_names_accepted_are_valid_git_refs(name in tricky()) {
        if names::validate_branch(&name).is_ok() {
            prop_assert!(git2::Reference::is_valid_name(&format!("refs/heads/{name}")), "{name:?}");
            prop_assert!(!name.starts_with('-'));
            prop_assert!(name.chars().count() <= names::MAX_BRANCH_NAME);
        }
    }

    #[test]
    fn tree_paths_accepted_are_clean_bounded_and_stable(raw in tree_path()) {
        if let Ok(clean) = gitops::clean_tree_path(&raw) {
            prop_assert!(clean.len() <= MAX_PATH);
            for component in clean.split('/') {
                prop_assert!(!component.is_empty() && component != "." && component != "..");
                prop_assert!(!component.eq_ignore_ascii_case(".git"));
                prop_assert!(component.len() <= MAX_PATH_COMPONENT);
            }
            prop_assert!(!clean.contains('\0') && !clean.contains('\\'));
            prop_assert_eq!(gitops::clean_tree_path(&clean).ok(), Some(clean));
        }
    }

    #[test]
    fn names_never_escape_their_directory(owner in tricky(), repo in tricky()) {
        if let Ok(path) = names::RepoPath::new(&owner, &repo) {
            let key = path.key();
            prop_assert_eq!(key.matches('/').count(), 1);
            for part in key.split('/') {
                prop_assert!(!part.is_empty() && part != "." && part != "..", "{key}");
            }
            prop_assert!(!key.contains('\0') && !key.contains('\\'));
        }
    }

    #[test]
    fn change_files_bodies_decode_or_are_422(options in change_files_options()) {
        match contents::decode_request(&options, "main", "alice") {
            Ok(spec) => {
                prop_assert!(names::validate_branch(&spec.branch).is_ok());
                if let Some(new_branch) = &spec.new_branch {
                    prop_assert!(names::validate_branch(new_branch).is_ok());
                }
                prop_assert_eq!(spec.files.len(), options.files.len());
                prop_assert!(gitops::check_overlaps(&spec.files).is_ok());
                for file in &spec.files {
                    prop_assert_eq!(gitops::clean_tree_path(&file.path).ok(), Some(file.path.clone()));
                }
                prop_assert!(gitops::check_person(&spec.author).is_ok());
                prop_assert!(gitops::check_person(&spec.committer).is_ok());
            }
            Err(e) => prop_assert_eq!(e.status().as_u16(), 422),
        }
    }

    #[test]
    fn raw_rest_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ChangeFilesOptions>(&bytes);
        let _ = serde_json::from_slice::<CreateRepoOption>(&bytes);
        let _ = serde_json::from_slice::<CreateHookOption>(&bytes);
        let _ = serde_json::from_slice::<Fault>(&bytes);
        let _ = serde_json::from_slice::<PushPayload>(&bytes);
        if let Ok(options) = serde_json::from_slice::<ChangeFilesOptions>(&bytes) {
            let _ = contents::decode_request(&options, "main", "alice");
        }
    }

    #[test]
    fn repository_bodies_decode_or_are_422(
        name in tricky(),
        description in prop_oneof!["[a-z]{0,8}", (2040usize..2060).prop_map(|n| "d".repeat(n))],
        default_branch in prop_oneof![Just(String::new()), tricky()],
        private in any::<bool>(),
    ) {
        let option = CreateRepoOption {
            name,
            description,
            private,
            default_branch,
            ..CreateRepoOption::default()
        };
        match repos::decode_create(option) {
            Ok(new) => {
                prop_assert!(names::validate_repo(&new.name).is_ok());
                prop_assert!(names::validate_branch(&new.default_branch).is_ok());
                prop_assert!(new.description.chars().count() <= 2048);
                prop_assert_eq!(new.private, private);
            }
            Err(e) => prop_assert_eq!(e.status().as_u16(), 422),
        }
    }

    #[test]
    fn hook_bodies_validate_or_are_422(option in hook_option()) {
        match hooks::validate(&option) {
            Ok(()) => {
                let url = url::Url::parse(&option.config["url"]).expect("accepted URLs parse");
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(matches!(option.config["content_type"].as_str(), "json" | "form"));
                prop_assert!(webhook::check_branch_filter(&option.branch_filter).is_ok());
                prop_assert!(option.authorization_header.is_empty()
                    || http::HeaderValue::from_str(&option.authorization_header).is_ok());
            }
            Err(e) => prop_assert_eq!(e.status().as_u16(), 422),
        }
    }

    #[test]
    fn faults_decode_only_within_bounds(
        mode in prop_oneof![
            Just("refuse".to_owned()),
            Just("delay".to_owned()),
            Just("missing".to_owned()),
            "[a-z]{0,7}",
        ],
        delay_ms in prop_oneof![any::<u64>(), 0u64..=3_700_000],
    ) {
        let json = serde_json::json!({"mode": mode, "delay_ms": delay_ms}).to_string();
        let decoded = serde_json::from_str::<Fault>(&json);
        let known = matches!(mode.as_str(), "refuse" | "delay" | "missing");
        let in_bounds = mode != "delay" || u128::from(delay_ms) <= MAX_FAULT_DELAY.as_millis();
        prop_assert_eq!(decoded.is_ok(), known && in_bounds, "{}", json);
        if let Ok(fault) = decoded {
            prop_assert!(fault.validate().is_ok());
            prop_assert!(fault.wait() <= MAX_FAULT_DELAY);
            let again: Fault = serde_json::from_str(&serde_json::to_string(&fault).unwrap()).unwrap();
            prop_assert_eq!(again, fault);
        }
    }

    #[test]
    fn signatures_verify_with_their_secret_only(
        secret in proptest::collection::vec(any::<u8>(), 0..48),
        body in proptest::collection::vec(any::<u8>(), 1..256),
        flip in any::<proptest::sample::Index>(),
    ) {
        let signature = webhook::sign(&secret, &body);
        prop_assert!(webhook::verify(&secret, &body, &signature));
        let prefixed = format!("sha256={signature}");
        prop_assert!(webhook::verify(&secret, &body, &prefixed));
        let mut tampered = body.clone();
        tampered[flip.index(body.len())] ^= 0x01;
        prop_assert!(!webhook::verify(&secret, &tampered, &signature));
        // HMAC pads short keys with zeros, so `k` and `k\0` sign alike; any other change
        // to the secret must not verify.
        let mut other = secret;
        other.push(1);
        prop_assert!(!webhook::verify(&other, &body, &signature));
    }

    #[test]
    fn arbitrary_signatures_never_verify_or_panic(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        signature in prop_oneof!["(sha256=)?[0-9a-fA-F]{0,70}", any::<String>()],
    ) {
        prop_assume!(signature.trim_start_matches("sha256=") != webhook::sign(b"k", &body));
        prop_assert!(!webhook::verify(b"k", &body, &signature));
    }

    #[test]
    fn push_payloads_survive_encoding_signing_and_form_posting(
        ref_name in any::<String>(),
        message in any::<String>(),
        paths in proptest::collection::vec(any::<String>(), 0..4),
        total in any::<i64>(),
        form in any::<bool>(),
    ) {
        let commit = PayloadCommit {
            id: "0".repeat(40),
            message,
            added: Some(paths.clone()),
            removed: Some(paths),
            ..PayloadCommit::default()
        };
        let payload = PushPayload {
            ref_name,
            commits: vec![commit.clone()],
            head_commit: Some(commit),
            total_commits: total,
            ..PushPayload::default()
        };
        let json = serde_json::to_vec_pretty(&payload).unwrap();
        let (body, content_type) =
            webhook::encode_body(if form { "form" } else { "json" }, &json);
        // What a receiver does: take the JSON out of the body, check the signature over it.
        let received = if form {
            prop_assert_eq!(content_type, "application/x-www-form-urlencoded");
            url::form_urlencoded::parse(&body)
                .find(|(key, _)| key == "payload")
                .map(|(_, value)| value.into_owned().into_bytes())
                .expect("a payload field")
        } else {
            body
        };
        prop_assert_eq!(&received, &json);
        prop_assert!(webhook::verify(b"s", &received, &webhook::sign(b"s", &json)));
        let parsed: PushPayload = serde_json::from_slice(&received).unwrap();
        prop_assert_eq!(parsed, payload);
    }

    #[test]
    fn branch_filters_match_like_a_reference_glob(
        pattern in "[ab*?]{0,8}",
        branch in "[ab]{0,8}",
    ) {
        let pattern: Vec<char> = pattern.chars().collect();
        let branch: Vec<char> = branch.chars().collect();
        prop_assert_eq!(
            webhook::glob_matches(&pattern, &branch),
            reference_glob(&pattern, &branch)
        );
    }

    #[test]
    fn branch_filters_never_panic(filter in prop_oneof!["[a-z{},*?/]{0,64}", any::<String>()],
                                  branch in tricky()) {
        let checked = webhook::check_branch_filter(&filter);
        let _ = webhook::branch_filter_matches(&filter, &branch);
        if filter.len() > webhook::MAX_BRANCH_FILTER {
            prop_assert!(checked.is_err());
        }
    }

    #[test]
    fn paging_never_panics_and_stays_within_limits(
        page in proptest::option::of(any::<usize>()),
        limit in proptest::option::of(any::<usize>()),
        items in 0usize..200,
    ) {
        let (shown, total) = crate::api::Page::new(page, limit).apply((0..items).collect());
        prop_assert_eq!(total, items);
        prop_assert!(shown.len() <= 50);
    }

    #[test]
    fn pkt_lines_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = crate::smart_http::parse_v2_command(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn only_the_right_credentials_authenticate(
        header in prop_oneof![
            "(token|Bearer|Basic|basic|Digest) [A-Za-z0-9+/=:]{0,40}",
            "[ -~]{0,40}",
        ],
        query in prop_oneof![Just(None), "(token|access_token)=[a-z0-9%]{0,12}".prop_map(Some)],
    ) {
        use crate::auth::{self, Authenticated};
        let dir = tempfile::tempdir().unwrap();
        let (store, token) =
            crate::store::Store::open(dir.path(), "alice", "pw-not-guessable", Some("t0ken-secret"))
                .unwrap();
        let mut headers = http::HeaderMap::new();
        if let Ok(value) = http::HeaderValue::from_str(&header) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let (who, _) = auth::authenticate(&store, &headers, query.as_deref());
        // Random input never contains the token or the password, so it never signs in.
        prop_assert!(!matches!(who, Authenticated::User(_)), "{header:?} {query:?} {token}");
    }
}
