//! Watches: a stream of newline-delimited JSON events per client.
//!
//! A watcher keeps a cursor (the last revision it has seen) into its resource's event
//! history and, on every commit notification, copies out the events after it under a
//! short read lock. Under load that batches many events into one write. A watcher that
//! falls behind the kept history is closed; it re-watches from its cursor and gets
//! `410 Gone` if that is too old, exactly as with kube-apiserver's watch cache.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use serde_json::json;
use tokio::sync::mpsc;

use crate::present::{self, Format};
use crate::query::Filters;
use crate::registry::ResourceInfo;
use crate::state::ServerState;
use crate::status::ApiError;
use crate::store::{EventType, StoredObject, WatchEvent};

/// What a watch asked for.
#[derive(Debug)]
pub struct WatchRequest {
    /// The resource.
    pub info: Arc<ResourceInfo>,
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Selectors.
    pub filters: Filters,
    /// Start after this revision; `None` starts with the current state as ADDED events.
    pub since: Option<u64>,
    /// Whether to send a bookmark marking the end of the initial events.
    pub initial_events_bookmark: bool,
    /// Whether bookmarks are wanted.
    pub bookmarks: bool,
    /// When the server ends the watch.
    pub timeout: Duration,
    /// Representation of the objects.
    pub format: Format,
}

/// Starts a watch; the returned channel yields the response body chunks.
pub fn start(
    shared: Arc<ServerState>,
    request: WatchRequest,
) -> mpsc::Receiver<Result<Bytes, Infallible>> {
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move { run(shared, request, tx).await });
    rx
}

fn matches(request: &WatchRequest, object: &StoredObject) -> bool {
    if let Some(ns) = &request.namespace
        && *object.meta.namespace != **ns
    {
        return false;
    }
    request.filters.matches_object(object)
}

/// The type a watcher sees for an event, given its filters (objects that enter or leave
/// the selection appear as ADDED or DELETED).
fn visible_type(request: &WatchRequest, event: &WatchEvent) -> Option<EventType> {
    let now = matches(request, &event.object);
    let before = event.prev.as_ref().is_some_and(|prev| {
        request
            .namespace
            .as_ref()
            .is_none_or(|ns| *prev.namespace == **ns)
            && request.filters.matches(prev, None)
    });
    match event.kind {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => now.then_some(EventType::Deleted),
        EventType::Modified => match (before || (request.filters.is_empty() && now), now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}

fn object_line(out: &mut BytesMut, request: &WatchRequest, kind: &str, object: &StoredObject) {
    let bytes = present::one(&request.info, request.format, object);
    present::watch_line(out, kind, &bytes);
}

fn bookmark_line(out: &mut BytesMut, request: &WatchRequest, revision: u64, initial_end: bool) {
    let mut object = json!({
        "kind": request.info.kind,
        "apiVersion": request.info.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
    });
    if initial_end {
        object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    present::watch_line(out, "BOOKMARK", object.to_string().as_bytes());
}

/// The ERROR event that tells a client its revision is too old.
pub fn expired_line(revision: u64, oldest: u64) -> Bytes {
    let status =
        ApiError::expired(format!("too old resource version: {revision} ({oldest})")).to_status();
    let mut out = BytesMut::new();
    present::watch_line(&mut out, "ERROR", status.to_string().as_bytes());
    out.freeze()
}

async fn run(
    shared: Arc<ServerState>,
    request: WatchRequest,
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    let store = request.info.store.clone();
    let mut cuts = shared.faults.watch_cuts();
    cuts.borrow_and_update();
    let mut cursor = match request.since {
        Some(revision) => revision,
        None => {
            let (items, revision) = store.snapshot(&shared.store, request.namespace.as_deref());
            let mut out = BytesMut::new();
            for object in items.iter().filter(|o| matches(&request, o)) {
                object_line(&mut out, &request, "ADDED", object);
                if out.len() > 256 * 1024 && tx.send(Ok(out.split().freeze())).await.is_err() {
                    return;
                }
            }
            if request.initial_events_bookmark {
                bookmark_line(&mut out, &request, revision, true);
            }
            if !out.is_empty() && tx.send(Ok(out.freeze())).await.is_err() {
                return;
            }
            revision
        }
    };
    let mut delivered = cursor;
    let deadline = tokio::time::sleep(request.timeout);
    tokio::pin!(deadline);
    let mut bookmarks = tokio::time::interval(shared.config.bookmark_interval);
    bookmarks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    bookmarks.reset();
    let mut events = Vec::new();
    loop {
        let changed = store.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        events.clear();
        let safe_revision = match store.events_after_at(&shared.store, cursor, &mut events) {
            Ok(revision) => revision,
            Err(too_old) => {
                if request.since == Some(cursor) && delivered == cursor {
                    let _ = tx.send(Ok(expired_line(cursor, too_old.oldest))).await;
                }
                return;
            }
        };
        if store.is_removed() {
            return;
        }
        if !events.is_empty() {
            let mut out = BytesMut::new();
            for event in &events {
                cursor = event.rv();
                if let Some(kind) = visible_type(&request, event) {
                    object_line(&mut out, &request, kind.as_str(), &event.object);
                }
            }
            delivered = cursor;
            if !out.is_empty() && tx.send(Ok(out.freeze())).await.is_err() {
                return;
            }
            continue;
        }
        // Everything up to `safe_revision` has been delivered.
        let bookmark_revision = safe_revision.max(delivered);
        tokio::select! {
            () = &mut changed => {}
            () = &mut deadline => return,
            _ = cuts.changed() => return,
            () = shared.shutdown.cancelled() => return,
            () = tx.closed() => return,
            _ = bookmarks.tick(), if request.bookmarks => {
                let mut out = BytesMut::new();
                bookmark_line(&mut out, &request, bookmark_revision, false);
                if tx.send(Ok(out.freeze())).await.is_err() {
                    return;
                }
                delivered = delivered.max(bookmark_revision);
            }
        }
    }
}

/// Checks up front that a watch from `since` can be served; the error is sent as an
/// ERROR event on a 200 response, as kube-apiserver does.
pub fn check_start(info: &ResourceInfo, shared: &ServerState, since: u64) -> Result<(), Bytes> {
    let mut sink = Vec::new();
    info.store
        .events_after_at(&shared.store, since, &mut sink)
        .map(|_| ())
        .map_err(|too_old| expired_line(since, too_old.oldest))
}
