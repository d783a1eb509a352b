//! Which resources are served, and the discovery documents that describe them.
//!
//! Built-in kinds are a fixed table; custom resources come and go with their
//! CustomResourceDefinitions. Every served group/version/resource maps to a
//! [`ResourceInfo`], and all versions of one resource share one [`ResourceStore`].

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Value, json};

use crate::store::{ResourceStore, Store};

/// How objects of a resource are treated beyond the generic rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `v1 Namespace`: lifecycle phases, cleanup on delete.
    Namespace,
    /// `v1 Secret`: `stringData` folded into `data`.
    Secret,
    /// `apiextensions.k8s.io/v1 CustomResourceDefinition`: registers resources.
    CustomResourceDefinition,
    /// A built-in kind stored as given.
    Plain,
    /// A custom resource.
    Custom,
    /// `events.k8s.io/v1` Event: shares the core Events' store, converted on the way.
    EventsV1,
}

/// The schema-related parts of one served CRD version.
#[derive(Debug)]
pub struct CustomVersion {
    /// The compiled structural schema, when the version has one.
    pub schema: Option<crate::custom::CompiledSchema>,
    /// The CRD version object (for printer columns and selectable fields).
    pub version: Value,
    /// The version objects are stored at (all versions share the store).
    pub storage_version: String,
}

/// One served group/version/resource.
#[derive(Debug)]
pub struct ResourceInfo {
    /// API group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name, the URL segment.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// List kind.
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource.
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Special handling.
    pub special: Kind,
    /// Custom-resource parts.
    pub custom: Option<Arc<CustomVersion>>,
    /// The objects.
    pub store: Arc<ResourceStore>,
    /// The columns of `kubectl get` tables.
    pub columns: crate::table::PrinterColumns,
}

impl ResourceInfo {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        });
        if !self.short_names.is_empty() {
            main["shortNames"] = json!(self.short_names);
        }
        if !self.categories.is_empty() {
            main["categories"] = json!(self.categories);
        }
        let mut entries = vec![main];
        if self.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
    generation: bool,
    special: Kind,
}

const fn builtin(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version: "v1",
        plural,
        kind,
        namespaced,
        short_names,
        status,
        generation: status,
        special: Kind::Plain,
    }
}

/// The built-in kinds, in kube-apiserver's discovery order of groups.
const BUILTINS: &[Builtin] = &[
    Builtin {
        special: Kind::Namespace,
        generation: false,
        ..builtin("", "namespaces", "Namespace", false, &["ns"], true)
    },
    builtin("", "configmaps", "ConfigMap", true, &["cm"], false),
    Builtin {
        special: Kind::Secret,
        ..builtin("", "secrets", "Secret", true, &[], false)
    },
    builtin("", "events", "Event", true, &["ev"], false),
    builtin(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
    ),
    Builtin {
        generation: false,
        ..builtin("", "services", "Service", true, &["svc"], true)
    },
    builtin("", "endpoints", "Endpoints", true, &["ep"], false),
    builtin("", "pods", "Pod", true, &["po"], true),
    Builtin {
        generation: false,
        ..builtin(
            "",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
        )
    },
    Builtin {
        generation: false,
        ..builtin("", "nodes", "Node", false, &["no"], true)
    },
    builtin("apps", "deployments", "Deployment", true, &["deploy"], true),
    builtin("apps", "statefulsets", "StatefulSet", true, &["sts"], true),
    builtin("apps", "daemonsets", "DaemonSet", true, &["ds"], true),
    builtin("apps", "replicasets", "ReplicaSet", true, &["rs"], true),
    Builtin {
        special: Kind::EventsV1,
        ..builtin("events.k8s.io", "events", "Event", true, &["ev"], false)
    },
    builtin("batch", "jobs", "Job", true, &[], true),
    builtin("batch", "cronjobs", "CronJob", true, &["cj"], true),
    builtin(
        "networking.k8s.io",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        true,
    ),
    builtin(
        "networking.k8s.io",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        false,
    ),
    builtin(
        "rbac.authorization.k8s.io",
        "roles",
        "Role",
        true,
        &[],
        false,
    ),
    Builtin {
        special: Kind::CustomResourceDefinition,
        generation: true,
        ..builtin(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        )
    },
    builtin("coordination.k8s.io", "leases", "Lease", true, &[], false),
];

fn singular_of(kind: &str) -> String {
    kind.to_ascii_lowercase()
}

fn categories_of(group: &str, plural: &str) -> Vec<String> {
    let in_all = matches!(
        (group, plural),
        ("", "pods" | "services")
            | (
                "apps",
                "deployments" | "statefulsets" | "daemonsets" | "replicasets"
            )
            | ("batch", "jobs" | "cronjobs")
    );
    if in_all {
        vec!["all".to_string()]
    } else {
        Vec::new()
    }
}

#[derive(Default)]
struct Inner {
    /// `group/version/plural` → resource.
    by_path: HashMap<String, Arc<ResourceInfo>>,
    /// group → versions, preferred first; in discovery order.
    groups: Vec<(String, Vec<String>)>,
    /// `plural.group` → shared store.
    stores: HashMap<String, Arc<ResourceStore>>,
}

/// The served resources.
pub struct Registry {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn path_key(group: &str, version: &str, plural: &str) -> String {
    format!("{group}/{version}/{plural}")
}

impl Registry {
    /// The built-in resources, with empty stores.
    pub fn with_builtins(store: &Store) -> Self {
        let registry = Self {
            inner: RwLock::new(Inner::default()),
        };
        for b in BUILTINS {
            let resource_store = match b.special {
                Kind::EventsV1 => registry
                    .store_of("", "events")
                    .expect("core events come first"),
                _ => store.new_resource(b.group, b.plural, b.namespaced),
            };
            registry.insert(ResourceInfo {
                group: b.group.into(),
                version: b.version.into(),
                plural: b.plural.into(),
                singular: singular_of(b.kind),
                kind: b.kind.into(),
                list_kind: format!("{}List", b.kind),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: categories_of(b.group, b.plural),
                status_subresource: b.status,
                generation: b.generation,
                special: b.special,
                custom: None,
                store: resource_store,
                columns: crate::table::PrinterColumns::for_resource(b.group, b.plural, None),
            });
        }
        registry
    }

    /// Serves one more group/version/resource.
    pub fn insert(&self, info: ResourceInfo) {
        let mut inner = self.inner.write();
        let key = path_key(&info.group, &info.version, &info.plural);
        inner.stores.insert(
            crate::status::group_resource(&info.group, &info.plural),
            info.store.clone(),
        );
        match inner.groups.iter_mut().find(|(g, _)| *g == info.group) {
            Some((_, versions)) => {
                if !versions.contains(&info.version) {
                    versions.push(info.version.clone());
                    sort_versions(versions);
                }
            }
            None => inner
                .groups
                .push((info.group.clone(), vec![info.version.clone()])),
        }
        inner.by_path.insert(key, Arc::new(info));
    }

    /// Stops serving every version of a resource; returns the removed infos.
    pub fn remove_resource(&self, group: &str, plural: &str) -> Vec<Arc<ResourceInfo>> {
        let mut inner = self.inner.write();
        let keys: Vec<String> = inner
            .by_path
            .iter()
            .filter(|(_, i)| i.group == group && i.plural == plural)
            .map(|(k, _)| k.clone())
            .collect();
        let removed: Vec<_> = keys
            .iter()
            .filter_map(|k| inner.by_path.remove(k))
            .collect();
        inner
            .stores
            .remove(&crate::status::group_resource(group, plural));
        let still_served: Vec<(String, String)> = inner
            .by_path
            .values()
            .map(|i| (i.group.clone(), i.version.clone()))
            .collect();
        for (g, versions) in inner.groups.iter_mut() {
            versions.retain(|v| still_served.iter().any(|(sg, sv)| sg == g && sv == v));
        }
        inner.groups.retain(|(_, versions)| !versions.is_empty());
        removed
    }

    /// Stops serving one version of a resource.
    pub fn remove_version(&self, group: &str, version: &str, plural: &str) {
        let mut inner = self.inner.write();
        inner.by_path.remove(&path_key(group, version, plural));
        let served = inner
            .by_path
            .values()
            .any(|i| i.group == group && i.version == version);
        if !served {
            for (g, versions) in inner.groups.iter_mut() {
                if g == group {
                    versions.retain(|v| v != version);
                }
            }
            inner.groups.retain(|(_, versions)| !versions.is_empty());
        }
    }

    /// The resource served at a group/version/plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.inner
            .read()
            .by_path
            .get(&path_key(group, version, plural))
            .cloned()
    }

    /// The shared store of a resource (any version).
    pub fn store_of(&self, group: &str, plural: &str) -> Option<Arc<ResourceStore>> {
        self.inner
            .read()
            .stores
            .get(&crate::status::group_resource(group, plural))
            .cloned()
    }

    /// Every served resource (one entry per version).
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.inner.read().by_path.values().cloned().collect()
    }

    /// Every distinct store with its group-resource name.
    pub fn stores(&self) -> Vec<(String, Arc<ResourceStore>)> {
        let mut stores: Vec<_> = self
            .inner
            .read()
            .stores
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Shared stores (events) are listed once, under their own name.
        stores.retain(|(name, store)| *name == store.group_resource());
        stores.sort_by(|a, b| a.0.cmp(&b.0));
        stores
    }

    /// Served versions of a group, preferred first.
    pub fn versions(&self, group: &str) -> Option<Vec<String>> {
        self.inner
            .read()
            .groups
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, v)| v.clone())
    }

    /// `GET /api`.
    pub fn api_versions(&self) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        })
    }

    fn group_json(group: &str, versions: &[String]) -> Value {
        let entries: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        json!({
            "name": group,
            "versions": entries,
            "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
        })
    }

    /// `GET /apis`.
    pub fn api_group_list(&self) -> Value {
        let inner = self.inner.read();
        let groups: Vec<Value> = inner
            .groups
            .iter()
            .filter(|(g, _)| !g.is_empty())
            .map(|(g, versions)| Self::group_json(g, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `GET /apis/{group}`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let versions = self.versions(group).filter(|_| !group.is_empty())?;
        let mut doc = Self::group_json(group, &versions);
        doc["kind"] = json!("APIGroup");
        doc["apiVersion"] = json!("v1");
        Some(doc)
    }

    /// `GET /api/v1` or `/apis/{group}/{version}`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let inner = self.inner.read();
        let mut infos: Vec<&Arc<ResourceInfo>> = inner
            .by_path
            .values()
            .filter(|i| i.group == group && i.version == version)
            .collect();
        if infos.is_empty() {
            return None;
        }
        infos.sort_by(|a, b| a.plural.cmp(&b.plural));
        let resources: Vec<Value> = infos.iter().flat_map(|i| i.discovery_entries()).collect();
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }))
    }

    /// Every group/version served, as `(group, version)`.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let inner = self.inner.read();
        inner
            .groups
            .iter()
            .flat_map(|(g, vs)| vs.iter().map(move |v| (g.clone(), v.clone())))
            .collect()
    }
}

/// Orders versions as Kubernetes prefers them: GA before beta before alpha, higher
/// major first; other names last, alphabetically.
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by_key(|v| version_priority(v));
}

fn version_priority(version: &str) -> (u8, std::cmp::Reverse<u32>, std::cmp::Reverse<u32>, String) {
    let parsed = version.strip_prefix('v').and_then(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u32 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        let (stage, minor) = if tail.is_empty() {
            (0, 0)
        } else if let Some(n) = tail.strip_prefix("beta") {
            (1, n.parse().ok()?)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n.parse().ok()?)
        } else {
            return None;
        };
        Some((stage, major, minor))
    });
    match parsed {
        Some((stage, major, minor)) => (
            stage,
            std::cmp::Reverse(major),
            std::cmp::Reverse(minor),
            String::new(),
        ),
        None => (
            3,
            std::cmp::Reverse(0),
            std::cmp::Reverse(0),
            version.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v: Vec<String> = [
            "v1alpha1", "v2", "v1beta1", "v1", "foo", "v2beta2", "v2beta1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        sort_versions(&mut v);
        assert_eq!(
            v,
            [
                "v2", "v1", "v2beta2", "v2beta1", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn discovery_lists_builtins() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let store = Store::new(10, tx);
        let registry = Registry::with_builtins(&store);
        let core = registry.resource_list("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"configmaps") && names.contains(&"namespaces/status"));
        let groups = registry.api_group_list();
        assert!(
            groups["groups"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g["name"] == "coordination.k8s.io")
        );
        assert!(
            registry
                .lookup("coordination.k8s.io", "v1", "leases")
                .is_some()
        );
        assert!(registry.lookup("apps", "v1", "deployments").is_some());
    }
}
