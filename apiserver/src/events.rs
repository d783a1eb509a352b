//! One store for both Event APIs: `v1` Events (what `kubectl get events` reads) and
//! `events.k8s.io/v1` Events (what kube-rs' `Recorder` and client-go's new recorder
//! write). Objects are stored in the core shape, as kube-apiserver stores them, and
//! converted field by field when served or written through `events.k8s.io/v1`.

use serde_json::{Map, Value};

/// `(core v1 field, events.k8s.io/v1 field)` pairs that differ only in name.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

fn rename(object: Value, api_version: &str, to_v1: bool) -> Value {
    let Value::Object(map) = object else {
        return object;
    };
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let renamed = RENAMED
            .iter()
            .find(|(core, v1)| if to_v1 { key == *core } else { key == *v1 })
            .map(|(core, v1)| if to_v1 { *v1 } else { *core });
        out.insert(renamed.map_or(key, str::to_string), value);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(out)
}

/// A core `v1` Event as `events.k8s.io/v1` serves it.
pub fn to_events_v1(object: Value) -> Value {
    rename(object, "events.k8s.io/v1", true)
}

/// An `events.k8s.io/v1` Event in the stored core shape.
pub fn to_core(object: Value) -> Value {
    rename(object, "v1", false)
}

/// A field selector path of `events.k8s.io/v1` in the stored core shape.
pub fn core_field(path: &str) -> String {
    for (core, v1) in RENAMED {
        if path == *v1 {
            return (*core).to_string();
        }
        if let Some(rest) = path.strip_prefix(v1).and_then(|r| r.strip_prefix('.')) {
            return format!("{core}.{rest}");
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_both_ways() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "GitRepo", "name": "r"}, "note": "synced", "reason": "Synced",
            "reportingController": "fleet", "reportingInstance": "fleet-0", "type": "Normal", "action": "Sync"});
        let core = to_core(v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "r");
        assert_eq!(core["message"], "synced");
        assert_eq!(core["reportingComponent"], "fleet");
        assert_eq!(to_events_v1(core), v1);
        assert_eq!(core_field("regarding.name"), "involvedObject.name");
        assert_eq!(core_field("reason"), "reason");
    }
}
