//! The CustomResourceDefinitions of the five kinds, generated from the Rust types, and
//! their installation.
//!
//! The controller installs them with `--install-crds` and prints them with
//! `fleet-controller crds`; the harness installs them on clusters it prepares itself. Both
//! go through this module so that what is served is always what the types declare.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};

use crate::{Bundle, BundleDeployment, Cluster, ClusterGroup, GitRepo, labels};

/// Why the CRDs could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, creating or replacing one CRD failed.
    #[error("installing CRD {name}")]
    Install {
        /// CRD name.
        name: String,
        /// Client error.
        source: Box<kube::Error>,
    },
}

/// The CRDs of the five kinds, generated from the Rust types, in install order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        GitRepo::crd(),
        Bundle::crd(),
        BundleDeployment::crd(),
        Cluster::crd(),
        ClusterGroup::crd(),
    ];
    for crd in &mut crds {
        // The apiserver defaults listKind; Fleet's CRDs spell it out, and so do we.
        crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
        crd.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(
                labels::MANAGED_BY.to_owned(),
                labels::CONTROLLER_NAME.to_owned(),
            );
    }
    crds
}

/// Renders [`crds`] as a multi-document YAML stream (what `--install-crds --dry-run` prints
/// and what `kubectl apply -f` accepts).
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

/// Renders [`crds`] as a JSON `List`.
pub fn crds_json() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": crds(),
    })
}

/// Installs the five CRDs. A CRD that exists and was not installed by the bundled
/// controller (for instance Fleet's own) is left alone: its schema is a superset of ours.
pub async fn install_crds(client: &Client) -> Result<(), Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let err = |source| Error::Install {
            name: name.clone(),
            source: Box::new(source),
        };
        match api.get(&name).await {
            Ok(existing) => {
                let ours = existing
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::MANAGED_BY))
                    .is_some_and(|v| v == labels::CONTROLLER_NAME);
                if !ours {
                    tracing::info!(crd = name, "CRD exists and is not ours; leaving it");
                    continue;
                }
                let mut updated = crd.clone();
                updated.metadata.resource_version = existing.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &updated)
                    .await
                    .map_err(err)?;
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {
                match api.create(&PostParams::default(), &crd).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status))
                        if status.code == 409 && status.reason == "AlreadyExists" => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
        tracing::info!(crd = name, "CRD installed");
    }
    Ok(())
}
