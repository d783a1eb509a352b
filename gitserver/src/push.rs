//! What follows a ref change, whether from `git push` or from an API commit: the push
//! webhooks (Gitea sends them for both) and the metrics.

use std::sync::Arc;
use std::time::Instant;

use fleet_api::error::chain;

use crate::api::convert;
use crate::forge::types::{PayloadCommit, PushPayload};
use crate::gitops::{self, RefSnapshot, RefUpdate};
use crate::server::SharedState;
use crate::store::RepoHandle;
use crate::webhook::{DeliveryJob, HookTarget, branch_filter_matches};

/// Gitea's `FeedMaxCommitNum`: the most commits a push payload lists.
const PAYLOAD_COMMITS: usize = 5;
/// How far commits are counted for `total_commits`.
const COUNT_LIMIT: usize = 10_000;

/// Sends the push webhooks for `updates` (made by `pusher`) and counts them.
///
/// `before` is the ref snapshot taken before the change; it decides which commits a new
/// branch brought. Ref deletions send nothing (Gitea sends a `delete` event, which this
/// server does not implement). Runs the git work on the blocking pool.
pub(crate) async fn notify(
    state: &SharedState,
    handle: &Arc<RepoHandle>,
    updates: Vec<RefUpdate>,
    before: RefSnapshot,
    pusher: &str,
    source: &'static str,
) {
    let updates: Vec<RefUpdate> = updates.into_iter().filter(|u| u.new.is_some()).collect();
    if updates.is_empty() {
        return;
    }
    state.metrics.observe_ref_updates(source, updates.len());
    let meta = handle.meta();
    let hooks: Vec<_> = meta
        .hooks
        .iter()
        .filter(|hook| {
            hook.active && (hook.events.is_empty() || hook.events.iter().any(|e| e == "push"))
        })
        .cloned()
        .collect();
    if hooks.is_empty() {
        return;
    }
    let queued_at = jiff::Timestamp::now();
    let queued = Instant::now();
    let repository = convert::repository(state, handle, Some(pusher));
    let pusher_user = convert::user(state);
    let full_name = handle.full_name();
    let path = handle.path.clone();
    let state_for_payload = state.clone();
    let built = tokio::task::spawn_blocking(move || {
        let repo = git2::Repository::open_bare(&path)?;
        let mut payloads = Vec::new();
        for update in updates {
            let (commits, total) =
                gitops::pushed_commits(&repo, &update, &before, PAYLOAD_COMMITS, COUNT_LIMIT)?;
            let after = update.new.expect("deletions were filtered out");
            let head = match commits.first() {
                Some(newest) => newest.clone(),
                None => gitops::commit_info(&repo, gitops::peel_to_commit(&repo, after)?)?,
            };
            let to_payload = |info: &gitops::CommitInfo| -> PayloadCommit {
                convert::payload_commit(&state_for_payload, &full_name, info)
            };
            let zero = git2::Oid::ZERO_SHA1.to_string();
            let before_id = update.old.map_or(zero, |old| old.to_string());
            let compare_url = match update.old {
                Some(old) => format!(
                    "{}/compare/{old}...{after}",
                    state_for_payload.html_url(&full_name)
                ),
                None => String::new(),
            };
            let payload = PushPayload {
                ref_name: update.name.clone(),
                before: before_id,
                after: after.to_string(),
                compare_url,
                commits: commits.iter().rev().map(to_payload).collect(),
                total_commits: i64::try_from(total).unwrap_or(i64::MAX),
                head_commit: Some(to_payload(&head)),
                repository: Some(repository.clone()),
                pusher: Some(pusher_user.clone()),
                sender: Some(pusher_user.clone()),
            };
            let body = serde_json::to_vec_pretty(&payload)?;
            payloads.push((update, body));
        }
        Ok::<_, PayloadError>(payloads)
    })
    .await;
    let payloads = match built {
        Ok(Ok(payloads)) => payloads,
        Ok(Err(e)) => {
            tracing::error!(repo = %handle.key, error = %chain(&e), "cannot build the push payload");
            return;
        }
        Err(e) => {
            tracing::error!(repo = %handle.key, error = %e, "building the push payload panicked");
            return;
        }
    };
    for (update, body) in payloads {
        let body = Arc::new(body);
        let branch = update.name.strip_prefix("refs/heads/");
        for hook in &hooks {
            if let Some(branch) = branch
                && !branch_filter_matches(&hook.branch_filter, branch)
            {
                continue;
            }
            state.dispatcher.enqueue(DeliveryJob {
                target: HookTarget {
                    id: hook.id,
                    url: hook.url.clone(),
                    content_type: hook.content_type.clone(),
                    http_method: hook.http_method.clone(),
                    secret: hook.secret.clone(),
                    authorization_header: hook.authorization_header.clone(),
                },
                repo: handle.full_name(),
                event: "push",
                ref_name: update.name.clone(),
                after: update.new.map(|oid| oid.to_string()).unwrap_or_default(),
                payload: body.clone(),
                queued_at,
                queued,
            });
        }
    }
}

/// Why the webhook payloads of a push could not be built.
#[derive(Debug, thiserror::Error)]
enum PayloadError {
    /// Reading the pushed commits failed.
    #[error(transparent)]
    Git(#[from] git2::Error),
    /// A payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}
