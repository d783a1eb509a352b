//! `Table` responses for `kubectl get`: the rows of [`crate::table::PrinterColumns`] for a
//! resource (its CRD version's printer columns, a built-in printer, or Name/Created At).

use serde_json::Value;

use crate::registry::ResourceInfo;
use crate::store::StoredObject;
use crate::table::{IncludeObject, PrinterColumns, TableListMeta, TableOptions};

/// The printer columns of a resource.
pub fn columns_for(group: &str, plural: &str, crd_version: Option<&Value>) -> PrinterColumns {
    match crd_version {
        Some(version) => PrinterColumns::from_crd_version(version)
            .unwrap_or_else(|_| PrinterColumns::default_columns()),
        None => PrinterColumns::for_builtin(group, plural).unwrap_or_else(PrinterColumns::generic),
    }
}

/// The `Table` of some objects.
pub fn table(
    info: &ResourceInfo,
    objects: &[StoredObject],
    list_meta: Option<&Value>,
    include_object: IncludeObject,
) -> Option<Value> {
    let values: Vec<Value> = objects
        .iter()
        .map(|o| {
            serde_json::from_slice(&crate::present::object_bytes(info, o)).unwrap_or(Value::Null)
        })
        .collect();
    let list = TableListMeta {
        resource_version: list_meta
            .as_ref()
            .and_then(|m| m["resourceVersion"].as_str())
            .map(str::to_string),
        continue_token: list_meta
            .as_ref()
            .and_then(|m| m["continue"].as_str())
            .map(str::to_string),
        remaining_item_count: None,
    };
    let options = TableOptions {
        include_object,
        ..TableOptions::default()
    };
    Some(info.columns.to_table(&values, &list, &options))
}
