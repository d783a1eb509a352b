//! The watches that feed the store: one kube-runtime watcher per kind, with kube's default
//! backoff, so a failed or cut watch relists and the store drops what disappeared meanwhile.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt as _;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use fleet_api::{Bundle, BundleDeployment, Cluster, ClusterGroup, GitRepo};

use super::{Key, Kind, Store};

/// Starts the five watches; they run until `cancel` fires.
pub fn spawn_watches(
    client: &Client,
    store: &Arc<Store>,
    cancel: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    vec![
        spawn::<GitRepo>(
            client,
            store,
            cancel,
            Kind::GitRepo,
            |s, o| s.apply_gitrepo(o),
            Store::delete_gitrepo,
        ),
        spawn::<Bundle>(
            client,
            store,
            cancel,
            Kind::Bundle,
            |s, o| s.apply_bundle(&o),
            Store::delete_bundle,
        ),
        spawn::<BundleDeployment>(
            client,
            store,
            cancel,
            Kind::BundleDeployment,
            |s, o| s.apply_deployment(&o),
            Store::delete_deployment,
        ),
        spawn::<Cluster>(
            client,
            store,
            cancel,
            Kind::Cluster,
            |s, o| s.apply_cluster(o),
            Store::delete_cluster,
        ),
        spawn::<ClusterGroup>(
            client,
            store,
            cancel,
            Kind::ClusterGroup,
            |s, o| s.apply_group(o),
            Store::delete_group,
        ),
    ]
}

fn spawn<K>(
    client: &Client,
    store: &Arc<Store>,
    cancel: &CancellationToken,
    kind: Kind,
    apply: fn(&Store, K),
    delete: fn(&Store, &Key),
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let store = store.clone();
    let cancel = cancel.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                () = cancel.cancelled() => return,
            };
            match event {
                None => return,
                Some(Ok(Event::Init)) => store.begin_relist(kind),
                Some(Ok(Event::InitApply(obj) | Event::Apply(obj))) => apply(&store, obj),
                Some(Ok(Event::Delete(obj))) => {
                    let key = Key::of(obj.meta());
                    let deleted_rv = obj.meta().resource_version.clone().unwrap_or_default();
                    if store.deletion_applies(kind, &key, &deleted_rv) {
                        delete(&store, &key);
                    }
                }
                Some(Ok(Event::InitDone)) => store.end_relist(kind),
                Some(Err(error)) => {
                    tracing::warn!(?kind, %error, "watch failed; retrying with backoff");
                }
            }
        }
    })
}

fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    watcher::watcher(api, config)
}
