//! `POST /webhook`: git push events that trigger a sync at once.
//!
//! As in Fleet (`pkg/webhook`): the provider is told by its headers (Gogs/Gitea first, since
//! Gitea also sends GitHub's headers; then GitHub, GitLab, Bitbucket Cloud and Server, Azure
//! DevOps); the payload's repository URLs are matched against every GitRepo's `spec.repo`
//! (scheme, user, `.git` and trailing slash ignored, host case-insensitive); GitRepos pinned
//! to a revision, or following another branch, are skipped. When a GitRepo names a
//! `spec.webhookSecret` (a Secret in its namespace, which must exist), or the global
//! `gitjob-webhook` Secret exists, the request must be signed with the provider's key of that
//! Secret (`github`, `gogs` — `gitea` accepted too —, `gitlab`, `bitbucket`,
//! `bitbucket-server`, `azure-username`/`azure-password`): unsigned or mis-signed requests
//! get 401. A match sets `webhookCommit` and `lastWebhookTime`, queues a sync, and — like
//! Fleet — sets `pollingInterval` to 1h when the GitRepo had none, since webhooks now
//! announce commits.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use sha2::Sha256;

use crate::kubeutil::is_not_found;
use crate::metrics::Metrics;
use crate::queue::WorkQueue;
use crate::status::{StatusKey, StatusWriter, WebhookFacts};
use crate::store::{Key, Store};
use fleet_api::GitRepo;
use fleet_api::error::{Foreign, chain};

/// Name of Fleet's global webhook Secret.
pub const GLOBAL_SECRET: &str = "gitjob-webhook";

/// The git host that sent a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// GitHub (and GitHub-style senders).
    GitHub,
    /// Gogs or Gitea.
    Gogs,
    /// GitLab.
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
    /// Bitbucket Server.
    BitbucketServer,
    /// Azure DevOps.
    Azure,
}

/// What a push event says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Push {
    /// The new commit.
    pub revision: String,
    /// Branch pushed to (empty for tags).
    pub branch: String,
    /// Repository URLs from the payload.
    pub urls: Vec<String>,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not the JSON the provider sends.
    #[error("invalid {provider:?} payload")]
    Payload {
        /// Provider.
        provider: Provider,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Signature missing or wrong.
    #[error("webhook signature verification failed for GitRepo {gitrepo}: {reason}")]
    Unauthorized {
        /// The GitRepo whose secret was used.
        gitrepo: String,
        /// What was wrong.
        reason: String,
    },
    /// The referenced Secret is missing or lacks the provider's key.
    #[error("{0}")]
    Secret(String),
    /// The referenced Secret could not be read.
    #[error("reading secret {namespace}/{name}")]
    ReadSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// The GitRepo's default polling interval could not be set.
    #[error("setting pollingInterval of {key}")]
    SetPollingInterval {
        /// The GitRepo.
        key: Key,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
}

impl Error {
    /// The HTTP status Fleet answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Payload { .. } => StatusCode::BAD_REQUEST,
            Error::Secret(_) | Error::ReadSecret { .. } | Error::SetPollingInterval { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Which provider sent the request, and whether it is a push (or tag push) event.
pub fn provider(headers: &HeaderMap) -> Option<(Provider, bool)> {
    if let Some(event) =
        header(headers, "X-Gitea-Event").or_else(|| header(headers, "X-Gogs-Event"))
    {
        return Some((Provider::Gogs, event == "push"));
    }
    if let Some(event) = header(headers, "X-GitHub-Event") {
        return Some((Provider::GitHub, event == "push"));
    }
    if let Some(event) = header(headers, "X-Gitlab-Event") {
        return Some((
            Provider::GitLab,
            event == "Push Hook" || event == "Tag Push Hook",
        ));
    }
    if header(headers, "X-Hook-UUID").is_some() {
        return Some((
            Provider::Bitbucket,
            header(headers, "X-Event-Key") == Some("repo:push"),
        ));
    }
    if let Some(event) = header(headers, "X-Event-Key") {
        return Some((Provider::BitbucketServer, event == "repo:refs_changed"));
    }
    if header(headers, "X-Vss-Activityid").is_some()
        || header(headers, "X-Vss-Subscriptionid").is_some()
    {
        return Some((Provider::Azure, true));
    }
    None
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for key in path {
        current = &current[*key];
    }
    current.as_str().unwrap_or_default()
}

fn branch_of(reference: &str) -> String {
    reference
        .strip_prefix("refs/heads/")
        .unwrap_or_default()
        .to_owned()
}

/// Parses a push payload.
pub fn parse(provider: Provider, body: &[u8]) -> Result<Push, Error> {
    let json: Value =
        serde_json::from_slice(body).map_err(|source| Error::Payload { provider, source })?;
    let urls = |candidates: &[&str]| -> Vec<String> {
        candidates
            .iter()
            .map(|s| (*s).to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let push = match provider {
        Provider::GitHub | Provider::Gogs => Push {
            revision: str_at(&json, &["after"]).to_owned(),
            branch: branch_of(str_at(&json, &["ref"])),
            urls: urls(&[
                str_at(&json, &["repository", "html_url"]),
                str_at(&json, &["repository", "clone_url"]),
                str_at(&json, &["repository", "ssh_url"]),
            ]),
        },
        Provider::GitLab => Push {
            revision: str_at(&json, &["checkout_sha"]).to_owned(),
            branch: branch_of(str_at(&json, &["ref"])),
            urls: urls(&[
                str_at(&json, &["project", "web_url"]),
                str_at(&json, &["project", "git_http_url"]),
                str_at(&json, &["project", "git_ssh_url"]),
            ]),
        },
        Provider::Bitbucket => {
            let change = &json["push"]["changes"][0]["new"];
            Push {
                revision: str_at(change, &["target", "hash"]).to_owned(),
                branch: if str_at(change, &["type"]) == "branch" {
                    str_at(change, &["name"]).to_owned()
                } else {
                    String::new()
                },
                urls: urls(&[str_at(&json, &["repository", "links", "html", "href"])]),
            }
        }
        Provider::BitbucketServer => {
            let change = &json["changes"][0];
            let clone_urls = json["repository"]["links"]["clone"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["href"].as_str().map(str::to_owned))
                .collect();
            Push {
                revision: str_at(change, &["toHash"]).to_owned(),
                branch: branch_of(str_at(change, &["refId"])),
                urls: clone_urls,
            }
        }
        Provider::Azure => {
            let update = &json["resource"]["refUpdates"][0];
            Push {
                revision: str_at(update, &["newObjectId"]).to_owned(),
                branch: branch_of(str_at(update, &["name"])),
                urls: urls(&[str_at(&json, &["resource", "repository", "remoteUrl"])]),
            }
        }
    };
    Ok(push)
}

/// Reduces a repository URL to `host/path` for matching: no scheme, no user, no port-less
/// difference in case of the host, no `.git`, no trailing slash; scp-style
/// `git@host:owner/repo` becomes `host/owner/repo`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_owned(),
        None => match url.split_once('@') {
            // scp-like syntax: user@host:path
            Some((_, hostpath)) => hostpath.replacen(':', "/", 1),
            None => url.to_owned(),
        },
    };
    let rest = rest.rsplit_once('@').map_or(rest.as_str(), |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = host.to_lowercase();
    // Default ports carry no information.
    let host = host
        .strip_suffix(":443")
        .or_else(|| host.strip_suffix(":80"))
        .unwrap_or(&host);
    format!("{host}/{}", path.trim_end_matches('/'))
}

fn hmac_hex_ok(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(expected) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| v.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.clone().into_bytes())
        })
}

/// Checks the request against the provider's key in `secret`.
pub fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
    gitrepo: &str,
) -> Result<(), Error> {
    let unauthorized = |reason: &str| Error::Unauthorized {
        gitrepo: gitrepo.to_owned(),
        reason: reason.to_owned(),
    };
    // A secret without this provider's key cannot verify the request, so the request is
    // unauthenticated (401), not a server fault; which key the secret lacks is the
    // operator's business and goes to the log only.
    let key_of = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| secret_value(secret, k))
            .ok_or_else(|| {
                tracing::warn!(
                    gitrepo,
                    secret = secret.metadata.name.as_deref().unwrap_or_default(),
                    key = keys[0],
                    "webhook secret has no key for this provider; request refused"
                );
                unauthorized("no webhook secret is configured for this provider")
            })
    };
    match provider {
        Provider::GitHub => {
            let key = key_of(&["github"])?;
            let signature = header(headers, "X-Hub-Signature-256")
                .ok_or_else(|| unauthorized("missing X-Hub-Signature-256 header"))?;
            let hex = signature
                .strip_prefix("sha256=")
                .ok_or_else(|| unauthorized("malformed X-Hub-Signature-256 header"))?;
            if hmac_hex_ok(&key, body, hex) {
                Ok(())
            } else {
                Err(unauthorized("HMAC mismatch"))
            }
        }
        Provider::Gogs => {
            let key = key_of(&["gogs", "gitea"])?;
            let signature = header(headers, "X-Gitea-Signature")
                .or_else(|| header(headers, "X-Gogs-Signature"))
                .ok_or_else(|| unauthorized("missing X-Gitea-Signature/X-Gogs-Signature header"))?;
            if hmac_hex_ok(&key, body, signature) {
                Ok(())
            } else {
                Err(unauthorized("HMAC mismatch"))
            }
        }
        Provider::BitbucketServer => {
            let key = key_of(&["bitbucket-server"])?;
            let signature = header(headers, "X-Hub-Signature")
                .ok_or_else(|| unauthorized("missing X-Hub-Signature header"))?;
            let hex = signature.strip_prefix("sha256=").unwrap_or(signature);
            if hmac_hex_ok(&key, body, hex) {
                Ok(())
            } else {
                Err(unauthorized("HMAC mismatch"))
            }
        }
        Provider::GitLab => {
            let key = key_of(&["gitlab"])?;
            match header(headers, "X-Gitlab-Token") {
                Some(token) if token.as_bytes() == key.as_slice() => Ok(()),
                Some(_) => Err(unauthorized("X-Gitlab-Token mismatch")),
                None => Err(unauthorized("missing X-Gitlab-Token header")),
            }
        }
        Provider::Bitbucket => {
            let key = key_of(&["bitbucket"])?;
            match header(headers, "X-Hook-UUID") {
                Some(uuid) if uuid.as_bytes() == key.as_slice() => Ok(()),
                _ => Err(unauthorized("X-Hook-UUID mismatch")),
            }
        }
        Provider::Azure => {
            let user = key_of(&["azure-username"])?;
            let password = key_of(&["azure-password"])?;
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode([user.as_slice(), b":", password.as_slice()].concat())
            );
            match header(headers, "Authorization") {
                Some(auth) if auth == expected => Ok(()),
                _ => Err(unauthorized("basic auth mismatch")),
            }
        }
    }
}

/// What the webhook handler needs.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Object cache.
    pub store: Arc<Store>,
    /// Status writes.
    pub status: Arc<StatusWriter>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The GitRepo sync queue.
    pub sync_queue: WorkQueue<Key>,
    /// Namespace of the global `gitjob-webhook` Secret.
    pub global_secret_namespace: String,
}

impl Context {
    async fn secret_for(&self, repo: &GitRepo) -> Result<Option<Secret>, Error> {
        let (namespace, name, must_exist) = if repo.spec.webhook_secret.is_empty() {
            (
                self.global_secret_namespace.clone(),
                GLOBAL_SECRET.to_owned(),
                false,
            )
        } else {
            (
                repo.metadata.namespace.clone().unwrap_or_default(),
                repo.spec.webhook_secret.clone(),
                true,
            )
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        match api.get(&name).await {
            Ok(secret) => Ok(Some(secret)),
            Err(e) if is_not_found(&e) && !must_exist => Ok(None),
            Err(e) if is_not_found(&e) => Err(Error::Secret(format!(
                "secret {name:?} in namespace {namespace:?} (spec.webhookSecret) does not exist"
            ))),
            Err(e) => Err(Error::ReadSecret {
                namespace,
                name,
                source: Foreign(Box::new(e)),
            }),
        }
    }
}

/// Handles one webhook request; returns the HTTP status and body to answer with.
pub async fn handle(ctx: &Context, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String) {
    match handle_inner(ctx, headers, body).await {
        Ok(Some(matched)) => {
            Metrics::count(
                &ctx.metrics.webhooks,
                if matched > 0 { "accepted" } else { "unmatched" },
            );
            (StatusCode::OK, "succeeded".to_owned())
        }
        Ok(None) => {
            Metrics::count(&ctx.metrics.webhooks, "ignored");
            (StatusCode::OK, "Webhook received successfully".to_owned())
        }
        Err(error) => {
            let result = if error.status() == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "error"
            };
            Metrics::count(&ctx.metrics.webhooks, result);
            tracing::warn!(error = %chain(&error), "webhook rejected");
            // Senders are unauthenticated: server-side problems (a missing Secret, an API
            // failure) name objects and keys, so they stay in the log.
            let body = match &error {
                Error::Secret(_) | Error::ReadSecret { .. } | Error::SetPollingInterval { .. } => {
                    "Webhook processing failed: server error; see the controller's log".to_owned()
                }
                Error::Payload { .. } | Error::Unauthorized { .. } => {
                    format!("Webhook processing failed: {}", chain(&error))
                }
            };
            (error.status(), body)
        }
    }
}

/// `Ok(None)` for events that are not pushes; `Ok(Some(n))` with the number of GitRepos
/// the push was applied to.
async fn handle_inner(
    ctx: &Context,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<usize>, Error> {
    let Some((provider, is_push)) = provider(headers) else {
        return Ok(None);
    };
    if !is_push {
        return Ok(None);
    }
    let push = parse(provider, body)?;
    let urls: Vec<String> = push.urls.iter().map(|u| normalize_url(u)).collect();
    let mut matched = 0;
    let mut repos = ctx.store.gitrepos();
    repos.sort_by(|a, b| Key::of(&a.metadata).cmp(&Key::of(&b.metadata)));
    for repo in repos {
        if repo.spec.revision.as_deref().is_some_and(|r| !r.is_empty()) {
            continue;
        }
        if !urls.contains(&normalize_url(&repo.spec.repo)) {
            continue;
        }
        if let Some(branch) = repo.spec.branch.as_deref().filter(|b| !b.is_empty())
            && branch != push.branch
        {
            continue;
        }
        let key = Key::of(&repo.metadata);
        let current = ctx
            .status
            .gitrepo_facts(&key)
            .webhook
            .map(|w| w.commit)
            .or_else(|| repo.status.as_ref().map(|s| s.webhook_commit.clone()))
            .unwrap_or_default();
        if push.revision.is_empty() || current == push.revision {
            matched += 1;
            continue;
        }
        match ctx.secret_for(&repo).await? {
            Some(secret) => verify(provider, headers, body, &secret, &key.to_string())?,
            None => {
                tracing::warn!(gitrepo = %key, "unauthenticated webhook accepted: set spec.webhookSecret");
            }
        }
        ctx.status.update_gitrepo(&key, |facts| {
            facts.webhook = Some(WebhookFacts {
                commit: push.revision.clone(),
                at: Time(jiff::Timestamp::now()),
            });
        });
        ctx.status.request_now(StatusKey::GitRepo(key.clone()));
        ctx.sync_queue.add(key.clone());
        if repo
            .spec
            .polling_interval
            .as_deref()
            .is_none_or(str::is_empty)
        {
            let api: Api<GitRepo> = Api::namespaced(ctx.client.clone(), &key.namespace);
            let patch = Patch::Merge(serde_json::json!({"spec": {"pollingInterval": "1h0m0s"}}));
            api.patch(&key.name, &PatchParams::default(), &patch)
                .await
                .map_err(|e| Error::SetPollingInterval {
                    key: key.clone(),
                    source: Foreign(Box::new(e)),
                })?;
        }
        matched += 1;
    }
    Ok(Some(matched))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use http::HeaderValue;
    use k8s_openapi::ByteString;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn secret(key: &str, value: &str) -> Secret {
        Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("hook".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    fn sign(key: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    const GITEA_PUSH: &str = r#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567",
        "repository":{"html_url":"http://127.0.0.1:3000/fleet/shop","clone_url":"http://127.0.0.1:3000/fleet/shop.git","ssh_url":"git@127.0.0.1:fleet/shop.git"}}"#;

    #[test]
    fn providers_are_told_by_headers_with_gitea_before_github() {
        let gitea = headers(&[("X-Gitea-Event", "push"), ("X-GitHub-Event", "push")]);
        assert_eq!(provider(&gitea), Some((Provider::Gogs, true)));
        assert_eq!(
            provider(&headers(&[("X-GitHub-Event", "ping")])),
            Some((Provider::GitHub, false))
        );
        assert_eq!(
            provider(&headers(&[("X-Gitlab-Event", "Push Hook")])),
            Some((Provider::GitLab, true))
        );
        assert_eq!(provider(&HeaderMap::new()), None);
    }

    #[test]
    fn push_payloads_parse_per_provider() {
        let push = parse(Provider::Gogs, GITEA_PUSH.as_bytes()).unwrap();
        assert_eq!(push.branch, "main");
        assert_eq!(push.revision, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(push.urls.len(), 3);
        let gitlab = parse(
            Provider::GitLab,
            br#"{"ref":"refs/heads/dev","checkout_sha":"abc","project":{"web_url":"https://gitlab.com/g/p"}}"#,
        )
        .unwrap();
        assert_eq!(
            (gitlab.branch.as_str(), gitlab.revision.as_str()),
            ("dev", "abc")
        );
        let bitbucket = parse(
            Provider::Bitbucket,
            br#"{"push":{"changes":[{"new":{"type":"branch","name":"main","target":{"hash":"h"}}}]},"repository":{"links":{"html":{"href":"https://bitbucket.org/o/r"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            (bitbucket.branch.as_str(), bitbucket.revision.as_str()),
            ("main", "h")
        );
        let azure = parse(
            Provider::Azure,
            br#"{"resource":{"refUpdates":[{"name":"refs/heads/main","newObjectId":"n"}],"repository":{"remoteUrl":"https://dev.azure.com/o/p/_git/r"}}}"#,
        )
        .unwrap();
        assert_eq!(azure.revision, "n");
        assert!(parse(Provider::GitHub, b"not json").is_err());
    }

    #[test]
    fn urls_match_across_scheme_suffix_user_and_case() {
        let canonical = normalize_url("http://127.0.0.1:3000/fleet/shop");
        for variant in [
            "http://127.0.0.1:3000/fleet/shop.git",
            "https://127.0.0.1:3000/fleet/shop/",
            "http://user:pw@127.0.0.1:3000/fleet/shop",
        ] {
            assert_eq!(normalize_url(variant), canonical, "{variant}");
        }
        assert_eq!(
            normalize_url("git@GitHub.com:org/repo.git"),
            normalize_url("https://github.com/org/repo")
        );
        assert_ne!(
            normalize_url("http://127.0.0.1:3000/fleet/other"),
            canonical
        );
    }

    #[test]
    fn signatures_are_verified_and_unsigned_or_missigned_requests_rejected() {
        let body = GITEA_PUSH.as_bytes();
        let good = headers(&[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &sign("s3cret", body)),
        ]);
        assert!(matches!(
            verify(
                Provider::Gogs,
                &good,
                body,
                &secret("gogs", "s3cret"),
                "ns/r"
            ),
            Ok(())
        ));
        assert!(matches!(
            verify(
                Provider::Gogs,
                &good,
                body,
                &secret("gitea", "s3cret"),
                "ns/r"
            ),
            Ok(())
        ));
        let wrong = headers(&[("X-Gitea-Signature", &sign("other", body))]);
        let err = verify(
            Provider::Gogs,
            &wrong,
            body,
            &secret("gogs", "s3cret"),
            "ns/r",
        )
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        let unsigned = verify(
            Provider::Gogs,
            &HeaderMap::new(),
            body,
            &secret("gogs", "s3cret"),
            "ns/r",
        )
        .unwrap_err();
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);

        let github = headers(&[(
            "X-Hub-Signature-256",
            &format!("sha256={}", sign("k", body)),
        )]);
        assert!(matches!(
            verify(
                Provider::GitHub,
                &github,
                body,
                &secret("github", "k"),
                "ns/r"
            ),
            Ok(())
        ));
        let tampered = b"{}";
        assert!(
            verify(
                Provider::GitHub,
                &github,
                tampered,
                &secret("github", "k"),
                "ns/r"
            )
            .is_err()
        );
        let missing_key = verify(
            Provider::GitHub,
            &github,
            body,
            &secret("gitlab", "k"),
            "ns/r",
        )
        .unwrap_err();
        assert_eq!(missing_key.status(), StatusCode::UNAUTHORIZED);
        let text = missing_key.to_string();
        assert!(
            !text.contains("github") && !text.contains("secret \""),
            "{text}"
        );
        // Every provider whose key is absent answers 401, signed or not.
        let cases: [(Provider, &[(&'static str, &str)]); 6] = [
            (Provider::GitHub, &[("X-Hub-Signature-256", "sha256=00")]),
            (Provider::Gogs, &[("X-Gitea-Signature", "00")]),
            (Provider::GitLab, &[("X-Gitlab-Token", "k")]),
            (Provider::Bitbucket, &[("X-Hook-UUID", "k")]),
            (
                Provider::BitbucketServer,
                &[("X-Hub-Signature", "sha256=00")],
            ),
            (Provider::Azure, &[("Authorization", "Basic eDp5")]),
        ];
        for (provider, pairs) in cases {
            let err = verify(
                provider,
                &headers(pairs),
                body,
                &secret("other", "k"),
                "ns/r",
            )
            .unwrap_err();
            assert_eq!(err.status(), StatusCode::UNAUTHORIZED, "{provider:?}");
            assert!(!err.to_string().contains("other"), "{err}");
        }

        let gitlab = headers(&[("X-Gitlab-Token", "tok")]);
        assert!(matches!(
            verify(
                Provider::GitLab,
                &gitlab,
                body,
                &secret("gitlab", "tok"),
                "ns/r"
            ),
            Ok(())
        ));
        assert!(
            verify(
                Provider::GitLab,
                &gitlab,
                body,
                &secret("gitlab", "nope"),
                "ns/r"
            )
            .is_err()
        );
    }
}
