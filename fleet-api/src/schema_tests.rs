//! Every property our generated schemas declare must exist at the same path, with the same
//! JSON type, in Fleet's own CRDs: otherwise an apiserver serving Fleet's CRDs would prune
//! what the controller writes.

use std::collections::BTreeMap;

use serde_json::Value;

use super::crds;

const FLEET_CRDS: &str = include_str!("../../apiserver/tests/fixtures/fleet-crds.yaml");

/// Fleet's CRDs by kind.
fn fleet_crds() -> BTreeMap<String, Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(FLEET_CRDS).expect("Fleet's CRDs parse");
    docs.into_iter()
        .filter(|doc| !doc.is_null())
        .map(|doc| {
            (
                doc["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
                doc,
            )
        })
        .collect()
}

fn schema_of(crd: &Value) -> &Value {
    &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
}

/// Walks `ours` and records every path where `theirs` lacks the property or types it
/// differently.
fn compare(path: &str, ours: &Value, theirs: &Value, problems: &mut Vec<String>) {
    if let (Some(a), Some(b)) = (ours.get("type"), theirs.get("type"))
        && a != b
    {
        problems.push(format!("{path}: type {a} here, {b} in Fleet"));
    }
    if let Some(props) = ours.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let child = format!("{path}.{name}");
            match theirs.get("properties").and_then(|p| p.get(name)) {
                Some(their_sub) => compare(&child, sub, their_sub, problems),
                // metadata is opaque (`type: object`) in every CRD.
                None if path.is_empty() && name == "metadata" => {}
                None => problems.push(format!("{child}: not in Fleet's schema")),
            }
        }
    }
    if let Some(items) = ours.get("items") {
        match theirs.get("items") {
            Some(their_items) => compare(&format!("{path}[]"), items, their_items, problems),
            None => problems.push(format!("{path}[]: Fleet's schema has no items")),
        }
    }
    if let Some(values) = ours.get("additionalProperties").filter(|v| v.is_object()) {
        match theirs.get("additionalProperties") {
            Some(their_values) => compare(&format!("{path}{{}}"), values, their_values, problems),
            None => problems.push(format!("{path}{{}}: Fleet's schema has no map values")),
        }
    }
}

#[test]
fn every_generated_property_exists_in_fleets_crds() {
    let fleet = fleet_crds();
    let mut checked = 0;
    for crd in crds() {
        let ours = serde_json::to_value(&crd).unwrap();
        let kind = ours["spec"]["names"]["kind"].as_str().unwrap().to_owned();
        let theirs = fleet
            .get(&kind)
            .unwrap_or_else(|| panic!("{kind} not in Fleet's CRDs"));
        let mut problems = Vec::new();
        compare("", schema_of(&ours), schema_of(theirs), &mut problems);
        assert!(problems.is_empty(), "{kind}:\n{}", problems.join("\n"));
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn the_comparison_catches_a_field_fleet_does_not_have() {
    let fleet = fleet_crds();
    let theirs = schema_of(&fleet["GitRepo"]);
    let mut ours = schema_of(&serde_json::to_value(crds()[0].clone()).unwrap()).clone();
    ours["properties"]["status"]["properties"]["notAFleetField"] =
        serde_json::json!({"type": "string"});
    ours["properties"]["spec"]["properties"]["paths"]["type"] = serde_json::json!("string");
    let mut problems = Vec::new();
    compare("", &ours, theirs, &mut problems);
    assert_eq!(
        problems,
        vec![
            ".spec.paths: type \"string\" here, \"array\" in Fleet".to_owned(),
            ".status.notAFleetField: not in Fleet's schema".to_owned(),
        ]
    );
}

#[test]
fn names_printer_columns_and_subresources_match_fleet() {
    let fleet = fleet_crds();
    for crd in crds() {
        let ours = serde_json::to_value(&crd).unwrap();
        let kind = ours["spec"]["names"]["kind"].as_str().unwrap().to_owned();
        let theirs = &fleet[&kind];
        assert_eq!(ours["spec"]["group"], theirs["spec"]["group"], "{kind}");
        assert_eq!(ours["spec"]["scope"], theirs["spec"]["scope"], "{kind}");
        for key in ["plural", "singular", "listKind", "categories", "shortNames"] {
            assert_eq!(
                ours["spec"]["names"][key], theirs["spec"]["names"][key],
                "{kind} names.{key}"
            );
        }
        let version = &ours["spec"]["versions"][0];
        let their_version = &theirs["spec"]["versions"][0];
        assert_eq!(version["name"], their_version["name"], "{kind}");
        assert_eq!(
            version["subresources"], their_version["subresources"],
            "{kind} subresources"
        );
        let columns = |v: &Value| -> Vec<(Value, Value, Value)> {
            v["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| (c["name"].clone(), c["jsonPath"].clone(), c["type"].clone()))
                .collect()
        };
        assert_eq!(columns(version), columns(their_version), "{kind} columns");
    }
}

#[test]
fn crds_render_as_yaml_and_json() {
    let yaml = super::crds_yaml().unwrap();
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 5);
    let parsed: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    assert_eq!(parsed.len(), 5);
    assert_eq!(parsed[0]["metadata"]["name"], "gitrepos.fleet.cattle.io");
    let json = super::crds_json();
    assert_eq!(json["items"].as_array().unwrap().len(), 5);
}

#[test]
fn a_fleet_style_gitrepo_deserialises_and_round_trips_its_field_names() {
    let json = serde_json::json!({
        "apiVersion": "fleet.cattle.io/v1alpha1",
        "kind": "GitRepo",
        "metadata": {"name": "sample", "namespace": "fleet-local"},
        "spec": {
            "repo": "https://github.com/rancher/fleet-examples",
            "branch": "main",
            "paths": ["simple"],
            "pollingInterval": "1m",
            "insecureSkipTLSVerify": true,
            "webhookSecret": "hook",
            "targets": [{"clusterSelector": {"matchLabels": {"env": "dev"}}}],
            "someFieldWeDoNotModel": {"x": 1}
        },
        "status": {"commit": "abc", "lastPollingTriggered": "2024-05-01T10:00:00Z",
                   "display": {"readyBundleDeployments": "1/1"}}
    });
    let repo: super::GitRepo = serde_json::from_value(json).unwrap();
    assert_eq!(repo.spec.polling_interval.as_deref(), Some("1m"));
    assert!(repo.spec.insecure_skip_tls_verify);
    let status = repo.status.clone().unwrap();
    assert_eq!(status.commit, "abc");
    assert_eq!(status.display.ready_bundle_deployments, "1/1");
    let back = serde_json::to_value(&repo).unwrap();
    assert_eq!(back["spec"]["insecureSkipTLSVerify"], true);
    assert_eq!(
        back["spec"]["targets"][0]["clusterSelector"]["matchLabels"]["env"],
        "dev"
    );
    assert_eq!(
        back["status"]["lastPollingTriggered"],
        "2024-05-01T10:00:00Z"
    );
    // Fleet always writes these counters, even when zero.
    assert_eq!(back["status"]["readyClusters"], 0);
    assert_eq!(back["status"]["observedGeneration"], 0);
    assert!(back["status"].get("pollingCommit").is_none());
}

#[test]
fn bundle_deployment_ids_use_fleets_capitalisation() {
    let spec = super::BundleDeploymentSpec {
        deployment_id: Some("s-abc:def".into()),
        staged_deployment_id: Some("s-abc:def".into()),
        ..Default::default()
    };
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["deploymentID"], "s-abc:def");
    assert_eq!(json["stagedDeploymentID"], "s-abc:def");
    let status = super::BundleDeploymentStatus {
        applied_deployment_id: Some("s-abc:def".into()),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&status).unwrap()["appliedDeploymentID"],
        "s-abc:def"
    );
}
