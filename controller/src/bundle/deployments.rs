//! Building the desired BundleDeployment for a (bundle, cluster) pair, and writing it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::kubeutil::{is_already_exists, is_not_found};
use crate::metrics::Metrics;
use crate::store::{BundleEntry, DeploymentEntry, Key, Store};
use fleet_api::{BundleDeployment, BundleDeploymentSpec, Cluster, labels};

use super::Error;
use super::targeting::Resolved;

/// The labels of a BundleDeployment: the bundle's labels without kubectl's and cattle.io's
/// (Fleet's `CleanAnnotationsForExport`), then every `fleet.cattle.io/` label of the bundle
/// (repo name, commit), then the bundle, managed and cluster labels.
pub fn deployment_labels(bundle: &BundleEntry, cluster: &Key) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = bundle
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("kubectl.kubernetes.io/") && !k.contains("cattle.io/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &bundle.labels {
        if k.starts_with("fleet.cattle.io/") {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert(labels::BUNDLE_NAME.to_owned(), bundle.key.name.clone());
    out.insert(
        labels::BUNDLE_NAMESPACE.to_owned(),
        bundle.key.namespace.clone(),
    );
    out.insert(labels::MANAGED.to_owned(), "true".to_owned());
    out.insert(
        labels::CLUSTER_NAMESPACE.to_owned(),
        cluster.namespace.clone(),
    );
    out.insert(labels::CLUSTER.to_owned(), cluster.name.clone());
    out
}

/// The desired BundleDeployment of `bundle` on `cluster` (whose namespace is
/// `cluster_namespace`). A paused one gets the new content staged only: its deployed ID and
/// options stay those of `deployed` (the current object, when there is one).
pub fn desired_deployment(
    bundle: &BundleEntry,
    cluster: &Cluster,
    cluster_namespace: &str,
    resolved: &Resolved,
    deployed: Option<&BundleDeploymentSpec>,
) -> BundleDeployment {
    let cluster_key = Key::of(&cluster.metadata);
    let paused = cluster.spec.paused || bundle.spec.paused;
    let (deployment_id, options) = match (paused, deployed) {
        (false, _) => (
            Some(resolved.deployment_id.clone()),
            resolved.options.clone(),
        ),
        (true, Some(current)) => (current.deployment_id.clone(), current.options.clone()),
        (true, None) => (None, Default::default()),
    };
    let mut bd = BundleDeployment::new(
        &bundle.key.name,
        BundleDeploymentSpec {
            paused,
            staged_options: resolved.options.clone(),
            staged_deployment_id: Some(resolved.deployment_id.clone()),
            options,
            deployment_id,
            depends_on: bundle.spec.depends_on.clone(),
            correct_drift: resolved.options.correct_drift.clone(),
        },
    );
    bd.metadata.namespace = Some(cluster_namespace.to_owned());
    bd.metadata.labels = Some(deployment_labels(bundle, &cluster_key));
    bd
}

/// Writes BundleDeployments and feeds the results into the store.
#[derive(Clone)]
pub struct Writer {
    /// API client.
    pub client: Client,
    /// The store to write through to.
    pub store: Arc<Store>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl Writer {
    fn api(&self, namespace: &str) -> Api<BundleDeployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Creates `bd`; if it already exists (a stale cache), replaces it instead.
    pub async fn create(&self, bd: BundleDeployment) -> Result<(), Error> {
        let key = Key::of(&bd.metadata);
        match self
            .api(&key.namespace)
            .create(&PostParams::default(), &bd)
            .await
        {
            Ok(created) => {
                self.metrics.object_write("bundledeployments", "create");
                self.store.apply_deployment(&created);
                Ok(())
            }
            Err(e) if is_already_exists(&e) => {
                let current = self
                    .api(&key.namespace)
                    .get(&key.name)
                    .await
                    .map_err(|source| Error::Get {
                        key: key.clone(),
                        source: source.into(),
                    })?;
                self.replace(bd, current.metadata.resource_version.unwrap_or_default())
                    .await
            }
            Err(source) => Err(Error::Create {
                key,
                source: source.into(),
            }),
        }
    }

    /// Replaces the labels and spec of an existing BundleDeployment (`resource_version` guards
    /// against overwriting a change we have not seen).
    pub async fn replace(
        &self,
        mut bd: BundleDeployment,
        resource_version: String,
    ) -> Result<(), Error> {
        let key = Key::of(&bd.metadata);
        bd.metadata.resource_version = Some(resource_version);
        let updated = self
            .api(&key.namespace)
            .replace(&key.name, &PostParams::default(), &bd)
            .await
            .map_err(|source| Error::Update {
                key: key.clone(),
                source: source.into(),
            })?;
        self.metrics.object_write("bundledeployments", "update");
        self.store.apply_deployment(&updated);
        Ok(())
    }

    /// Fetches the full current object (for paused deployments, whose deployed options the
    /// store does not keep).
    pub async fn get(&self, key: &Key) -> Result<Option<BundleDeployment>, Error> {
        match self.api(&key.namespace).get(&key.name).await {
            Ok(bd) => Ok(Some(bd)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(source) => Err(Error::Get {
                key: key.clone(),
                source: source.into(),
            }),
        }
    }

    /// Deletes a BundleDeployment (gone already is fine).
    pub async fn delete(&self, entry: &DeploymentEntry) -> Result<(), Error> {
        let key = &entry.key;
        match self
            .api(&key.namespace)
            .delete(&key.name, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                self.metrics.object_write("bundledeployments", "delete");
                self.store.delete_deployment(key);
                Ok(())
            }
            Err(e) if is_not_found(&e) => {
                self.store.delete_deployment(key);
                Ok(())
            }
            Err(source) => Err(Error::Delete {
                key: key.clone(),
                source: source.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_api::{Bundle, BundleSpec, ClusterSpec, ClusterStatus};

    #[test]
    fn labels_carry_fleet_labels_and_drop_cattle_ones() {
        let mut bundle = Bundle::new("repo-path", BundleSpec::default());
        bundle.metadata.namespace = Some("fleet-default".into());
        bundle.metadata.labels = Some(BTreeMap::from([
            (labels::REPO_NAME.to_owned(), "repo".to_owned()),
            (labels::COMMIT.to_owned(), "abc".to_owned()),
            ("app".to_owned(), "web".to_owned()),
            ("management.cattle.io/x".to_owned(), "y".to_owned()),
            (
                "kubectl.kubernetes.io/last-applied".to_owned(),
                "z".to_owned(),
            ),
        ]));
        let entry = BundleEntry::from_bundle(&bundle);
        let labels = deployment_labels(&entry, &Key::new("fleet-default", "c1"));
        assert_eq!(labels[labels::REPO_NAME], "repo");
        assert_eq!(labels[labels::COMMIT], "abc");
        assert_eq!(labels["app"], "web");
        assert_eq!(labels[labels::BUNDLE_NAME], "repo-path");
        assert_eq!(labels[labels::BUNDLE_NAMESPACE], "fleet-default");
        assert_eq!(labels[labels::CLUSTER], "c1");
        assert_eq!(labels[labels::MANAGED], "true");
        assert!(!labels.contains_key("management.cattle.io/x"));
        assert!(!labels.contains_key("kubectl.kubernetes.io/last-applied"));
    }

    #[test]
    fn paused_deployments_stage_without_deploying() {
        let mut bundle = Bundle::new("b", BundleSpec::default());
        bundle.metadata.namespace = Some("ns".into());
        let entry = BundleEntry::from_bundle(&bundle);
        let mut cluster = Cluster::new("c1", ClusterSpec::default());
        cluster.metadata.namespace = Some("ns".into());
        cluster.status = Some(ClusterStatus {
            namespace: "cluster-ns".into(),
            ..Default::default()
        });
        let resolved = Resolved {
            target: 0,
            options: Default::default(),
            deployment_id: "s-new:x".into(),
        };
        let active = desired_deployment(&entry, &cluster, "cluster-ns", &resolved, None);
        assert_eq!(active.spec.deployment_id.as_deref(), Some("s-new:x"));
        assert_eq!(active.metadata.namespace.as_deref(), Some("cluster-ns"));
        assert_eq!(active.metadata.name.as_deref(), Some("b"));
        cluster.spec.paused = true;
        let current = BundleDeploymentSpec {
            deployment_id: Some("s-old:x".into()),
            ..Default::default()
        };
        let paused = desired_deployment(&entry, &cluster, "cluster-ns", &resolved, Some(&current));
        assert!(paused.spec.paused);
        assert_eq!(paused.spec.deployment_id.as_deref(), Some("s-old:x"));
        assert_eq!(paused.spec.staged_deployment_id.as_deref(), Some("s-new:x"));
    }
}
