//! Clusters and cluster groups: register them, label them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_api::{Cluster, ClusterGroup, ClusterGroupSpec, ClusterSpec, labels};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};

use super::collect::{collect, existing_bundledeployment_writes, write_counts};
use super::quiet::until_quiet;
use super::world::{ClusterInfo, GroupInfo, to_kube_selector};
use super::{Context, StepError, StepOutput};
use crate::measure::recorder::{Change, Kind};
use crate::progress::Task;
use crate::provider::{MANAGED_BY, MANAGED_BY_LABEL, SUITE_LABEL};
use crate::results::Measurement;
use crate::slo::Unit;
use crate::suite::{CreateClusterGroup, CreateClusters, LabelCluster, MeasurementKind};

/// Labels on everything the harness creates.
pub fn ownership_labels(suite: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (SUITE_LABEL.to_string(), suite.to_string()),
    ])
}

/// `create_clusters`.
pub async fn create_clusters(
    ctx: &mut Context<'_>,
    spec: &CreateClusters,
    label: &str,
) -> Result<StepOutput, StepError> {
    let count = spec.count.unwrap_or(ctx.suite.scale.clusters) as usize;
    let namespace = ctx.namespace().to_string();
    ensure_namespace(ctx, &namespace).await?;
    let api: Api<Cluster> = Api::namespaced(ctx.kube.clone(), &namespace);
    let first = ctx.world.clusters.len();
    let task = Task::start(format!("{label}: register clusters"), Some(count as u64));
    let mut created = Vec::new();
    for offset in 0..count {
        let name = format!("cluster-{:03}", first + offset);
        let mut object_labels = ownership_labels(&ctx.suite.name);
        let labelled = offset < count - spec.unlabelled as usize;
        if labelled {
            object_labels.extend(spec.labels.clone());
        }
        // Providers with real downstream clusters create one here; with the
        // simulated agent there is none.
        let downstream = ctx
            .environment
            .downstream_cluster(&namespace, &name)
            .await
            .map_err(|source| StepError::Downstream {
                cluster: name.clone(),
                source: Box::new(source),
            })?
            .map(|d| d.kubeconfig_secret);
        let cluster = Cluster {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                labels: Some(object_labels),
                ..ObjectMeta::default()
            },
            spec: ClusterSpec {
                kube_config_secret: downstream,
                ..ClusterSpec::default()
            },
            status: None,
        };
        api.create(&PostParams::default(), &cluster)
            .await
            .map_err(StepError::kube(format!(
                "create Cluster {namespace}/{name}"
            )))?;
        created.push((
            name,
            if labelled {
                spec.labels.clone()
            } else {
                BTreeMap::new()
            },
        ));
        task.inc(1);
    }
    task.finish();
    // The controller gives each cluster a namespace for its BundleDeployments.
    let names: BTreeSet<String> = created.iter().map(|(n, _)| n.clone()).collect();
    let wait = Task::start(
        format!("{label}: wait for cluster namespaces"),
        Some(count as u64),
    );
    let namespaces = ctx
        .recorder
        .wait_until(spec.timeout.0, &ctx.cancel, |state| {
            let assigned: BTreeMap<String, String> = state
                .of_kind(Kind::Cluster)
                .filter(|(key, facts)| {
                    key.namespace == namespace
                        && names.contains(&key.name)
                        && !facts.cluster_namespace.is_empty()
                })
                .map(|(key, facts)| (key.name.clone(), facts.cluster_namespace.clone()))
                .collect();
            wait.set(assigned.len() as u64);
            (assigned.len() == names.len()).then_some(assigned)
        })
        .await
        .map_err(|e| {
            StepError::from_wait(
                e,
                "clusters getting their namespace (status.namespace) from the controller",
                format!("{count} clusters registered"),
            )
        })?;
    wait.finish();
    for (name, cluster_labels) in created {
        ctx.world.clusters.push(ClusterInfo {
            namespace: namespaces[&name].clone(),
            name,
            labels: cluster_labels,
        });
    }
    Ok(StepOutput {
        message: format!(
            "{count} clusters ({} labelled {:?}), namespaces assigned",
            count - spec.unlabelled as usize,
            spec.labels
        ),
        ..StepOutput::default()
    })
}

/// Creates the workspace namespace if it does not exist.
pub async fn ensure_namespace(ctx: &Context<'_>, name: &str) -> Result<(), StepError> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: Api<Namespace> = Api::all(ctx.kube.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(StepError::Kube {
            action: format!("create namespace {name}"),
            source: error.into(),
        }),
    }
}

/// `create_cluster_group`.
pub async fn create_group(
    ctx: &mut Context<'_>,
    spec: &CreateClusterGroup,
) -> Result<StepOutput, StepError> {
    let namespace = ctx.namespace().to_string();
    ensure_namespace(ctx, &namespace).await?;
    let api: Api<ClusterGroup> = Api::namespaced(ctx.kube.clone(), &namespace);
    let group = ClusterGroup {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(ownership_labels(&ctx.suite.name)),
            ..ObjectMeta::default()
        },
        spec: ClusterGroupSpec {
            selector: Some(to_kube_selector(&spec.selector)),
        },
        status: None,
    };
    api.create(&PostParams::default(), &group)
        .await
        .map_err(StepError::kube(format!(
            "create ClusterGroup {namespace}/{}",
            spec.name
        )))?;
    ctx.world.groups.push(GroupInfo {
        name: spec.name.clone(),
        selector: spec.selector.clone(),
    });
    Ok(StepOutput {
        message: format!(
            "cluster group {} selecting {:?}",
            spec.name, spec.selector.match_labels
        ),
        ..StepOutput::default()
    })
}

/// `label_cluster`: label one cluster and time each BundleDeployment it must get.
pub async fn label_cluster(
    ctx: &mut Context<'_>,
    spec: &LabelCluster,
    label: &str,
) -> Result<StepOutput, StepError> {
    let index = spec
        .cluster
        .map_or(ctx.world.clusters.len().saturating_sub(1), |i| i as usize);
    let Some(before) = ctx.world.clusters.get(index).cloned() else {
        return Err(StepError::Unsupported(format!(
            "label_cluster: no cluster with index {index}"
        )));
    };
    let mut after = before.clone();
    after.labels.extend(spec.labels.clone());
    // GitRepos that reach the cluster after the label and did not before.
    let newly: BTreeSet<String> = ctx
        .world
        .gitrepos
        .iter()
        .filter(|g| {
            ctx.world.matches(&g.targets, &after) && !ctx.world.matches(&g.targets, &before)
        })
        .map(|g| g.name.clone())
        .collect();
    let namespace = ctx.namespace().to_string();
    let bundles: BTreeSet<String> = ctx.recorder.with_state(|state| {
        state
            .of_kind(Kind::Bundle)
            .filter(|(key, facts)| {
                key.namespace == namespace
                    && facts
                        .label(labels::REPO_NAME)
                        .is_some_and(|r| newly.contains(r))
            })
            .map(|(key, _)| key.name.clone())
            .collect()
    });
    let expected = bundles.len();
    let api: Api<Cluster> = Api::namespaced(ctx.kube.clone(), &namespace);
    let before_requests = ctx.scrape_requests().await?;
    let cursor = ctx.recorder.cursor();
    let started = Instant::now();
    let patch = serde_json::json!({"metadata": {"labels": spec.labels}});
    api.patch(&before.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(StepError::kube(format!(
            "label Cluster {namespace}/{}",
            before.name
        )))?;
    ctx.world.clusters[index] = after.clone();
    let task = Task::start(
        format!("{label}: new BundleDeployments on {}", before.name),
        Some(expected as u64),
    );
    let cluster_namespace = after.namespace.clone();
    let collected = collect(ctx, cursor, expected, spec.timeout.0, &task, |observed| {
        (observed.key.kind == Kind::BundleDeployment
            && observed.change == Change::Added
            && observed.key.namespace == cluster_namespace
            && bundles.contains(&observed.key.name))
        .then(|| (observed.key.name.clone(), started))
    })
    .await?;
    task.finish();
    let mut output = StepOutput {
        message: format!(
            "labelled {} with {:?}: {}/{} new BundleDeployments, last after {:.2}s",
            before.name,
            spec.labels,
            collected.arrivals.len(),
            expected,
            collected
                .arrivals
                .iter()
                .map(|(_, s)| *s)
                .fold(0.0, f64::max)
        ),
        ..StepOutput::default()
    };
    if let Some(name) = &spec.measure {
        let arrived: BTreeSet<&String> = collected.arrivals.iter().map(|(k, _)| k).collect();
        let missing = bundles
            .iter()
            .filter(|b| !arrived.contains(b))
            .map(|b| format!("{cluster_namespace}/{b}"))
            .collect();
        output.measurements.push((
            name.clone(),
            collected.measurement(
                &format!(
                    "label on {} to each of its new BundleDeployments (watch ADDED)",
                    before.name
                ),
                missing,
            ),
        ));
    }
    if spec.count_writes.is_empty() && spec.measure_existing_writes.is_none() {
        return Ok(output);
    }
    // Counted until the controller's writes stop, not for a fixed time after the last new
    // BundleDeployment: writes deferred past any fixed window are still the label's cost.
    let quiet = until_quiet(ctx, &before_requests, spec.settle, spec.timeout, label).await?;
    output.quality.extend(quiet.problem());
    let requests = quiet.after.since(&before_requests);
    output
        .measurements
        .extend(write_counts(&spec.count_writes, &requests, &quiet.note));
    if let Some(name) = &spec.measure_existing_writes {
        let (total, breakdown) = existing_bundledeployment_writes(&requests);
        let mut measurement = Measurement::value(
            Unit::Writes,
            format!(
                "updates and patches of existing BundleDeployments (not their status) after the label on {}",
                before.name
            ),
            total as f64,
        );
        measurement.kind = MeasurementKind::Count;
        measurement.breakdown = breakdown;
        measurement.notes.push(quiet.note);
        output.measurements.push((name.clone(), measurement));
    }
    Ok(output)
}
