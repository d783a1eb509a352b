//! The apply agent: deploys a BundleDeployment's manifests to its downstream cluster with
//! server-side apply, and reports resource counts, readiness and errors back.
//!
//! In the controller (`--agent apply`) it serves every Cluster that has a kubeconfig Secret
//! (`spec.kubeConfigSecret`, key `value`, as Fleet's agentless import uses); standalone
//! (`fleet-controller agent --cluster NS/NAME ...`) it serves one cluster with a given
//! downstream client, like Fleet's per-cluster agent. Manifests are the bundle's `.yaml`,
//! `.yml` and `.json` files; `yaml.overlays` replace files (`overlays/<name>/<file>`) or
//! merge-patch them (`overlays/<name>/<base>_patch.yaml`); `namespace` forces, and
//! `defaultNamespace` defaults, the namespace of namespaced objects. Helm charts and
//! kustomizations are not rendered (the deployment reports that as an error).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, Scope};
use kube::{Api, Client};
use parking_lot::Mutex;
use serde_json::Value;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::bundle::options::merge_maps;
use crate::kubeutil::{is_already_exists, is_not_found};
use crate::metrics::Metrics;
use crate::queue::{Action, ReconcileFailure, WorkQueue, backoff};
use crate::status::StatusWriter;
use crate::store::{Key, Store};
use fleet_api::error::{Foreign, chain};
use fleet_api::{
    Bundle, BundleDeployment, BundleDeploymentOptions, BundleResource, Cluster, NonReadyStatus,
    ResourceCounts, ResourceSummary,
};

use super::{applied_status, failed_status};

/// Field manager of the agent's server-side applies.
pub const FIELD_MANAGER: &str = "fleet-agent";

/// How long to wait before re-checking resources that are not ready yet.
const READY_RECHECK: Duration = Duration::from_secs(5);

/// Errors of the apply agent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster's kubeconfig Secret is missing or invalid.
    #[error("kubeconfig of cluster {cluster}")]
    Kubeconfig {
        /// The cluster.
        cluster: Key,
        /// What is wrong.
        #[source]
        source: KubeconfigError,
    },
    /// The manifests cannot be deployed (unsupported content); the text says why.
    #[error("{0}")]
    Deploy(String),
    /// A manifest file's content is not valid base64.
    #[error("{file}: invalid base64")]
    Base64 {
        /// The file.
        file: String,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// A manifest file is not YAML.
    #[error("{file}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's error (it names line and column itself).
        #[source]
        source: Foreign<Box<serde_saphyr::Error>>,
    },
    /// An API call on the downstream cluster failed.
    #[error("{what}")]
    Downstream {
        /// What was being done.
        what: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// Reading the BundleDeployment's Bundle, or writing its status, failed.
    #[error("{what}")]
    Upstream {
        /// What was being done.
        what: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
}

/// Why a cluster's kubeconfig Secret gave no client.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The Secret could not be read.
    #[error("reading Secret {namespace}/{name}")]
    Read {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// The Secret holds no kubeconfig.
    #[error("Secret {namespace}/{name} has no \"value\" key with a kubeconfig")]
    NoValue {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The kubeconfig is not a kubeconfig.
    #[error("invalid kubeconfig")]
    Invalid(#[source] Foreign<kube::config::KubeconfigError>),
    /// The kubeconfig does not describe a usable cluster and user.
    #[error("unusable kubeconfig")]
    Unusable(#[source] Foreign<kube::config::KubeconfigError>),
    /// No client could be built from it.
    #[error("building client")]
    Client(#[source] Foreign<Box<kube::Error>>),
}

/// Which clusters this agent serves.
pub enum Targets {
    /// Every Cluster with a kubeconfig Secret (in-controller mode).
    AllClusters,
    /// One cluster, with a fixed downstream client (standalone mode).
    Single {
        /// The Cluster served.
        cluster: Key,
        /// Its API.
        client: Client,
    },
}

/// What the apply agent needs.
pub struct Context {
    client: Client,
    store: Arc<Store>,
    status: Option<Arc<StatusWriter>>,
    metrics: Arc<Metrics>,
    queue: WorkQueue<Key>,
    targets: Targets,
    /// Downstream clients by cluster, with the Secret resourceVersion they were built from.
    clients: Mutex<HashMap<Key, (String, Client)>>,
}

impl Context {
    /// An apply agent.
    pub fn new(
        client: Client,
        store: Arc<Store>,
        status: Option<Arc<StatusWriter>>,
        metrics: Arc<Metrics>,
        targets: Targets,
    ) -> Self {
        Context {
            queue: WorkQueue::new("agent", metrics.clone()),
            client,
            store,
            status,
            metrics,
            targets,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The agent's queue.
    pub fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    /// The downstream client of `cluster`, or `None` when the cluster has no kubeconfig.
    async fn downstream(&self, cluster: &Key) -> Result<Option<Client>, Error> {
        match &self.targets {
            Targets::Single {
                cluster: served,
                client,
            } => Ok((served == cluster).then(|| client.clone())),
            Targets::AllClusters => {
                let Some(object) = self.store.cluster(cluster) else {
                    return Ok(None);
                };
                self.client_from_secret(cluster, &object).await
            }
        }
    }

    async fn client_from_secret(
        &self,
        key: &Key,
        cluster: &Cluster,
    ) -> Result<Option<Client>, Error> {
        let Some(name) = cluster
            .spec
            .kube_config_secret
            .as_deref()
            .filter(|n| !n.is_empty())
        else {
            return Ok(None);
        };
        let namespace = cluster
            .spec
            .kube_config_secret_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| key.namespace.clone());
        let bad = |source: KubeconfigError| Error::Kubeconfig {
            cluster: key.clone(),
            source,
        };
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let secret = secrets.get(name).await.map_err(|e| {
            bad(KubeconfigError::Read {
                namespace: namespace.clone(),
                name: name.to_owned(),
                source: Foreign(Box::new(e)),
            })
        })?;
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        if let Some((v, client)) = self.clients.lock().get(key)
            && *v == version
        {
            return Ok(Some(client.clone()));
        }
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get("value"))
            .ok_or_else(|| {
                bad(KubeconfigError::NoValue {
                    namespace: namespace.clone(),
                    name: name.to_owned(),
                })
            })?;
        let text = String::from_utf8_lossy(&value.0);
        let client = client_from_kubeconfig(&text).await.map_err(bad)?;
        self.clients
            .lock()
            .insert(key.clone(), (version, client.clone()));
        Ok(Some(client))
    }
}

/// A client from kubeconfig text.
pub async fn client_from_kubeconfig(text: &str) -> Result<Client, KubeconfigError> {
    let kubeconfig =
        Kubeconfig::from_yaml(text).map_err(|e| KubeconfigError::Invalid(Foreign(e)))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| KubeconfigError::Unusable(Foreign(e)))?;
    Client::try_from(config).map_err(|e| KubeconfigError::Client(Foreign(Box::new(e))))
}

fn decode(resource: &BundleResource) -> Result<String, Error> {
    let content = resource.content.clone().unwrap_or_default();
    match resource.encoding.as_deref().unwrap_or_default() {
        "" => Ok(content),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.as_bytes())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|source| Error::Base64 {
                file: resource.name.clone().unwrap_or_default(),
                source,
            }),
        other => Err(Error::Deploy(format!(
            "{}: encoding {other:?} is not supported by this agent",
            resource.name.as_deref().unwrap_or_default()
        ))),
    }
}

fn is_manifest(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json")
}

/// The objects of a bundle for `options`: base manifests with overlays applied.
pub fn render(
    resources: &[BundleResource],
    options: &BundleDeploymentOptions,
) -> Result<Vec<Value>, Error> {
    if options
        .helm
        .as_ref()
        .is_some_and(|h| h.chart.as_deref().is_some_and(|c| !c.is_empty()))
    {
        return Err(Error::Deploy(
            "helm charts are not rendered by this agent; use plain manifests".to_owned(),
        ));
    }
    if options
        .kustomize
        .as_ref()
        .is_some_and(|k| k.dir.as_deref().is_some_and(|d| !d.is_empty()))
    {
        return Err(Error::Deploy(
            "kustomize is not rendered by this agent; use plain manifests".to_owned(),
        ));
    }
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for resource in resources {
        let name = resource.name.clone().unwrap_or_default();
        if name.starts_with("overlays/") || !is_manifest(&name) {
            continue;
        }
        files.insert(name, decode(resource)?);
    }
    for overlay in options
        .yaml
        .iter()
        .flat_map(|y| y.overlays.iter().flatten())
    {
        let prefix = format!("overlays/{overlay}/");
        for resource in resources {
            let name = resource.name.clone().unwrap_or_default();
            let Some(relative) = name.strip_prefix(&prefix) else {
                continue;
            };
            let content = decode(resource)?;
            let stem = relative
                .strip_suffix(".yaml")
                .or_else(|| relative.strip_suffix(".yml"))
                .or_else(|| relative.strip_suffix(".json"));
            match stem.and_then(|s| s.strip_suffix("_patch")) {
                Some(base) => {
                    let target = ["yaml", "yml", "json"]
                        .iter()
                        .map(|ext| format!("{base}.{ext}"))
                        .find(|f| files.contains_key(f))
                        .ok_or_else(|| {
                            Error::Deploy(format!("{name}: no base file {base}.yaml to patch"))
                        })?;
                    let patch: Value = serde_saphyr::from_str_with_options(
                        &content,
                        crate::gitrepo::fleetyaml::yaml_options(),
                    )
                    .map_err(|e| Error::Yaml {
                        file: name.clone(),
                        source: Foreign(Box::new(e)),
                    })?;
                    let mut docs: Vec<Value> = serde_saphyr::from_multiple_with_options(
                        &files[&target],
                        crate::gitrepo::fleetyaml::yaml_options(),
                    )
                    .map_err(|e| Error::Yaml {
                        file: target.clone(),
                        source: Foreign(Box::new(e)),
                    })?;
                    // The patch merges into the file's first document.
                    if let (Some(Value::Object(base_map)), Value::Object(patch_map)) =
                        (docs.first_mut(), &patch)
                    {
                        merge_maps(base_map, patch_map);
                    }
                    let text: Vec<String> = docs.iter().map(Value::to_string).collect();
                    files.insert(target, text.join("\n---\n"));
                }
                None => {
                    files.insert(relative.to_owned(), content);
                }
            }
        }
    }
    let mut objects = Vec::new();
    for (name, content) in files {
        let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(
            &content,
            crate::gitrepo::fleetyaml::yaml_options(),
        )
        .map_err(|e| Error::Yaml {
            file: name.clone(),
            source: Foreign(Box::new(e)),
        })?;
        for doc in docs {
            match doc {
                Value::Null => {}
                Value::Object(ref map)
                    if map.contains_key("kind") && map.contains_key("apiVersion") =>
                {
                    if map["kind"] == "List" {
                        objects.extend(
                            map.get("items")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default(),
                        );
                    } else {
                        objects.push(doc);
                    }
                }
                _ => {
                    return Err(Error::Deploy(format!(
                        "{name}: a document without apiVersion and kind"
                    )));
                }
            }
        }
    }
    Ok(objects)
}

fn gvk_of(object: &Value) -> Result<GroupVersionKind, Error> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Ok(GroupVersionKind::gvk(group, version, kind))
}

/// Whether a deployed object is ready (Deployments and StatefulSets by replicas, the rest
/// once applied).
fn readiness(object: &DynamicObject) -> Option<String> {
    let kind = object
        .types
        .as_ref()
        .map(|t| t.kind.as_str())
        .unwrap_or_default();
    if !matches!(kind, "Deployment" | "StatefulSet") {
        return None;
    }
    let wanted = object.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = object.data["status"]["readyReplicas"].as_i64().unwrap_or(0);
    (ready < wanted).then(|| format!("{ready}/{wanted} replicas ready"))
}

async fn ensure_namespace(client: &Client, name: &str) -> Result<(), Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(Error::Downstream {
            what: format!("creating namespace {name}"),
            source: Foreign(Box::new(e)),
        }),
    }
}

/// Applies `objects` to `client`; returns resource counts and the non-ready objects.
pub async fn apply_objects(
    client: &Client,
    objects: Vec<Value>,
    options: &BundleDeploymentOptions,
) -> Result<(ResourceCounts, Vec<NonReadyStatus>), Error> {
    let mut discovered: HashMap<GroupVersionKind, (ApiResource, ApiCapabilities)> = HashMap::new();
    let forced = options.namespace.clone().filter(|n| !n.is_empty());
    let default_ns = options
        .default_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let mut counts = ResourceCounts::default();
    let mut non_ready = Vec::new();
    let mut ensured = Vec::new();
    for mut object in objects {
        let gvk = gvk_of(&object)?;
        if !discovered.contains_key(&gvk) {
            let found = kube::discovery::pinned_kind(client, &gvk)
                .await
                .map_err(|e| Error::Downstream {
                    what: format!("unknown kind {}/{} {}", gvk.group, gvk.version, gvk.kind),
                    source: Foreign(Box::new(e)),
                })?;
            discovered.insert(gvk.clone(), found);
        }
        let (resource, caps) = &discovered[&gvk];
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(Error::Deploy(format!(
                "a {} without metadata.name",
                gvk.kind
            )));
        }
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), resource),
            Scope::Namespaced => {
                let namespace = forced
                    .clone()
                    .or_else(|| object["metadata"]["namespace"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| default_ns.clone());
                object["metadata"]["namespace"] = Value::String(namespace.clone());
                if !ensured.contains(&namespace) {
                    ensure_namespace(client, &namespace).await?;
                    ensured.push(namespace.clone());
                }
                Api::namespaced_with(client.clone(), &namespace, resource)
            }
        };
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .map_err(|e| Error::Downstream {
                what: format!("applying {} {name}", gvk.kind),
                source: Foreign(Box::new(e)),
            })?;
        counts.desired_ready += 1;
        match readiness(&applied) {
            None => counts.ready += 1,
            Some(message) => {
                counts.not_ready += 1;
                non_ready.push(NonReadyStatus {
                    uid: applied.metadata.uid.clone(),
                    kind: Some(gvk.kind.clone()),
                    api_version: object["apiVersion"].as_str().map(str::to_owned),
                    namespace: applied.metadata.namespace.clone(),
                    name: Some(name),
                    summary: ResourceSummary {
                        state: "in-progress".to_owned(),
                        transitioning: true,
                        message: vec![message],
                        ..Default::default()
                    },
                });
            }
        }
    }
    Ok((counts, non_ready))
}

async fn report(
    ctx: &Context,
    key: &Key,
    status: fleet_api::BundleDeploymentStatus,
) -> Result<(), Error> {
    let api: Api<BundleDeployment> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = Patch::Merge(serde_json::json!({ "status": status }));
    match api
        .patch_status(&key.name, &PatchParams::default(), &patch)
        .await
    {
        Ok(updated) => {
            ctx.metrics.status_write("bundledeployments", true);
            ctx.store.apply_deployment(&updated);
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::Upstream {
            what: format!("reporting status of BundleDeployment {key}"),
            source: Foreign(Box::new(source)),
        }),
    }
}

/// Deploys one BundleDeployment and reports the outcome.
pub async fn reconcile(key: Key, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(bd) = ctx.store.deployment(&key) else {
        return Ok(Action::await_change());
    };
    if bd.deleting || bd.deployment_id.is_empty() || bd.paused {
        return Ok(Action::await_change());
    }
    let Some(cluster) = bd.cluster.clone() else {
        return Ok(Action::await_change());
    };
    let client = match ctx.downstream(&cluster).await {
        Ok(Some(client)) => client,
        Ok(None) => return Ok(Action::await_change()),
        Err(error) => {
            report(
                &ctx,
                &key,
                failed_status(
                    Some(bd.status.applied_deployment_id.to_string()).filter(|s| !s.is_empty()),
                    &chain(&error),
                ),
            )
            .await?;
            return Err(error);
        }
    };
    let bundles: Api<Bundle> = Api::namespaced(ctx.client.clone(), &bd.bundle.namespace);
    let bundle = bundles
        .get(&bd.bundle.name)
        .await
        .map_err(|source| Error::Upstream {
            what: format!("reading Bundle {}", bd.bundle),
            source: Foreign(Box::new(source)),
        })?;
    let deployments: Api<BundleDeployment> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let full = deployments
        .get(&key.name)
        .await
        .map_err(|source| Error::Upstream {
            what: format!("reading BundleDeployment {key}"),
            source: Foreign(Box::new(source)),
        })?;
    let options = full.spec.options.clone();
    let outcome = match render(&bundle.spec.resources, &options) {
        Ok(objects) => apply_objects(&client, objects, &options).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok((counts, non_ready)) => {
            let ready = non_ready.is_empty();
            let message = non_ready
                .iter()
                .flat_map(|n| {
                    n.summary.message.iter().map(move |m| {
                        format!(
                            "{} {}: {m}",
                            n.kind.as_deref().unwrap_or_default(),
                            n.name.as_deref().unwrap_or_default()
                        )
                    })
                })
                .collect::<Vec<_>>()
                .join("; ");
            let mut status = applied_status(&bd.deployment_id, counts, ready, &message);
            if !ready {
                status.non_ready_status = Some(non_ready);
            }
            report(&ctx, &key, status).await?;
            if let (Some(cluster_key), Some(status)) = (&bd.cluster, &ctx.status) {
                status.set_cluster_last_seen(cluster_key, Time(jiff::Timestamp::now()));
            }
            Ok(if ready {
                Action::await_change()
            } else {
                Action::requeue(READY_RECHECK)
            })
        }
        Err(error) => {
            let previous =
                Some(bd.status.applied_deployment_id.to_string()).filter(|s| !s.is_empty());
            report(&ctx, &key, failed_status(previous, &chain(&error))).await?;
            Err(error)
        }
    }
}

/// Retries failed deployments with backoff (up to a minute apart).
pub fn error_policy(
    _key: &Key,
    _error: &ReconcileFailure<Error>,
    retries: u32,
    _ctx: &Context,
) -> Action {
    Action::requeue(backoff(retries.saturating_add(6), Duration::from_secs(60)))
}

/// Errors of the standalone agent.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The Cluster could not be read.
    #[error("reading Cluster {cluster}")]
    Cluster {
        /// The cluster.
        cluster: Key,
        /// Client error (kube prints its own cause).
        #[source]
        source: Foreign<Box<kube::Error>>,
    },
    /// The Cluster got no namespace in time (is the controller running?).
    #[error("Cluster {0} has no status.namespace after 60s; is the fleet controller running?")]
    NoNamespace(Key),
}

/// Runs the apply agent for one cluster until `cancel` fires: watches the BundleDeployments
/// in the cluster's namespace on the management cluster (`upstream`), applies them to
/// `downstream`, reports status, and refreshes the Cluster's `status.agent.lastSeen`.
pub async fn run_standalone(
    upstream: Client,
    downstream: Client,
    cluster: Key,
    workers: usize,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), StandaloneError> {
    use futures::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;
    use kube::runtime::watcher::{self, Event};

    let clusters: Api<Cluster> = Api::namespaced(upstream.clone(), &cluster.namespace);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let namespace = loop {
        let object =
            clusters
                .get(&cluster.name)
                .await
                .map_err(|source| StandaloneError::Cluster {
                    cluster: cluster.clone(),
                    source: Foreign(Box::new(source)),
                })?;
        if let Some(ns) = object.status.map(|s| s.namespace).filter(|n| !n.is_empty()) {
            break ns;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StandaloneError::NoNamespace(cluster));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let metrics = Arc::new(Metrics::new());
    let store = Store::new();
    let ctx = Arc::new(Context::new(
        upstream.clone(),
        store.clone(),
        None,
        metrics,
        Targets::Single {
            cluster: cluster.clone(),
            client: downstream,
        },
    ));
    let _workers =
        crate::queue::spawn_workers(ctx.queue(), workers, &ctx, reconcile, error_policy, &cancel);
    let heartbeat = {
        let clusters = clusters.clone();
        let cluster = cluster.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let patch = Patch::Merge(
                    serde_json::json!({"status": {"agent": {"lastSeen": Time(jiff::Timestamp::now()), "namespace": "fleet-agent"}}}),
                );
                if let Err(error) = clusters
                    .patch_status(&cluster.name, &PatchParams::default(), &patch)
                    .await
                {
                    tracing::warn!(%error, "agent heartbeat failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(60)) => {}
                    () = cancel.cancelled() => return,
                }
            }
        })
    };
    let api: Api<BundleDeployment> = Api::namespaced(upstream, &namespace);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = cancel.cancelled() => break,
        };
        match event {
            None => break,
            Some(Ok(Event::Apply(bd) | Event::InitApply(bd))) => {
                let key = Key::of(&bd.metadata);
                store.apply_deployment(&bd);
                if let Some(entry) = store.deployment(&key)
                    && !entry.deployment_id.is_empty()
                    && entry.status.applied_deployment_id != entry.deployment_id
                {
                    ctx.queue().add(key);
                }
            }
            Some(Ok(Event::Delete(bd))) => {
                let key = Key::of(&bd.metadata);
                let deleted_rv = bd.metadata.resource_version.clone().unwrap_or_default();
                if store.deletion_applies(crate::store::Kind::BundleDeployment, &key, &deleted_rv) {
                    store.delete_deployment(&key);
                }
            }
            Some(Ok(Event::Init | Event::InitDone)) => {}
            Some(Err(error)) => tracing::warn!(%error, "BundleDeployment watch failed; retrying"),
        }
    }
    ctx.queue().shutdown();
    heartbeat.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_api::YamlOptions;

    fn resource(name: &str, content: &str) -> BundleResource {
        BundleResource {
            name: Some(name.into()),
            content: Some(content.into()),
            encoding: None,
        }
    }

    #[test]
    fn manifests_render_with_overlays() {
        let resources = vec![
            resource(
                "cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: base\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
            ),
            resource(
                "svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n",
            ),
            resource("README.md", "not a manifest"),
            resource("overlays/prod/cm_patch.yaml", "data:\n  k: prod\n"),
            resource(
                "overlays/prod/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: s-prod\n",
            ),
        ];
        let plain = render(&resources, &BundleDeploymentOptions::default()).unwrap();
        assert_eq!(plain.len(), 3);
        let prod = render(
            &resources,
            &BundleDeploymentOptions {
                yaml: Some(YamlOptions {
                    overlays: Some(vec!["prod".into()]),
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let names: Vec<&str> = prod
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["a", "b", "s-prod"],
            "the patch merges into the first document; svc.yaml is replaced"
        );
        assert_eq!(prod[0]["data"]["k"], "prod");
    }

    #[test]
    fn helm_bundles_and_bad_documents_are_errors() {
        let helm = BundleDeploymentOptions {
            helm: Some(fleet_api::HelmOptions {
                chart: Some("nginx".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(render(&[], &helm).is_err());
        let bad = render(
            &[resource("x.yaml", "just: data\n")],
            &BundleDeploymentOptions::default(),
        )
        .unwrap_err();
        assert!(
            bad.to_string().contains("without apiVersion and kind"),
            "{bad}"
        );
    }
}
