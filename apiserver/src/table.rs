//! Server-side `meta.k8s.io/v1` Tables, the output `kubectl get` asks for.
//!
//! kubectl does not format objects itself: it sends
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` and prints the rows the server
//! returns. For custom resources kube-apiserver builds the columns from the CRD version's
//! `additionalPrinterColumns` (a JSONPath each), or `Age` when there are none, always after
//! a `Name` column; `date` cells are sent already humanized (`5m2s`), and each row carries
//! the object as `PartialObjectMetadata` unless `includeObject` says otherwise. Built-in
//! kinds have their own printers (ConfigMap: Name, Data, Age; ...); kinds without one get
//! Name and Created At. This module builds those tables; the JSONPath that CRD columns are
//! written in is evaluated by [`crate::jsonpath`], and which columns a served resource gets
//! is decided once, when it is registered ([`PrinterColumns::for_resource`]).
//!
//! Known differences from kube-apiserver: the built-in printers cover the kinds fleetbench
//! serves (Namespace, ConfigMap, Secret, ServiceAccount, Lease, Event) and print fewer
//! wide (`-o wide`) columns; column descriptions are worded here; see [`crate::jsonpath`]
//! for the JSONPath dialect's gaps.

use std::borrow::Borrow;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::jsonpath;

/// Why printer columns or table options could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A column's `jsonPath` is not a JSONPath kube-apiserver can evaluate.
    #[error("unrecognized column definition {path:?} for column {column:?}")]
    InvalidJsonPath {
        /// The column's name.
        column: String,
        /// The JSONPath as written.
        path: String,
        /// What is wrong with it.
        #[source]
        source: jsonpath::Error,
    },
    /// `additionalPrinterColumns` is not a list of column objects with `name`, `type` and
    /// `jsonPath` strings.
    #[error("malformed additionalPrinterColumns: {0}")]
    MalformedColumns(String),
    /// The `includeObject` query parameter is not `None`, `Metadata` or `Object`
    /// (kube-apiserver answers 400 with this message).
    #[error("unrecognized includeObject value: {0:?}")]
    UnknownIncludeObject(String),
}

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object (`"object": null`).
    None,
    /// `PartialObjectMetadata`: kind, apiVersion and the object's metadata. kubectl's
    /// default and the server's.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; empty means the default, `Metadata`.
    pub fn parse(value: &str) -> Result<IncludeObject, TableError> {
        match value {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "None" => Ok(IncludeObject::None),
            "Object" => Ok(IncludeObject::Object),
            other => Err(TableError::UnknownIncludeObject(other.to_owned())),
        }
    }
}

/// How to render a table beyond its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// `meta.k8s.io/v1` (the default) or `meta.k8s.io/v1beta1`, as the client asked.
    pub api_version: String,
    /// What each row's `object` holds.
    pub include_object: IncludeObject,
    /// Leave `columnDefinitions` out (the `noHeaders` table option).
    pub no_headers: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            api_version: "meta.k8s.io/v1".to_owned(),
            include_object: IncludeObject::Metadata,
            no_headers: false,
        }
    }
}

/// The list metadata a table carries (from the list it renders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableListMeta {
    /// The list's (or single object's) resourceVersion.
    pub resource_version: Option<String>,
    /// The continue token of a paged list.
    pub continue_token: Option<String>,
    /// How many items remain after this page, when known.
    pub remaining_item_count: Option<i64>,
}

/// How a column's cell is computed.
#[derive(Debug, Clone)]
enum Source {
    /// `metadata.name`.
    Name,
    /// A JSONPath, converted by the column's type like kube-apiserver's CRD convertor.
    Path(jsonpath::Path),
    /// The age of `metadata.creationTimestamp`, humanized (`<unknown>` when unset), as
    /// built-in printers do.
    Age,
    /// `metadata.creationTimestamp` in RFC 3339, as the generic convertor sends it.
    CreatedAt,
    /// How many keys the listed maps hold together (ConfigMap and Secret `Data`).
    KeyCount(&'static [&'static str]),
    /// An Event's involved object: `kind/name`, lowercased kind.
    EventObject,
    /// An Event's last time seen, humanized.
    EventLastSeen,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    type_name: String,
    format: String,
    description: String,
    priority: i64,
    source: Source,
}

impl Column {
    fn new(name: &str, type_name: &str, description: &str, source: Source) -> Column {
        Column {
            name: name.to_owned(),
            type_name: type_name.to_owned(),
            format: String::new(),
            description: description.to_owned(),
            priority: 0,
            source,
        }
    }

    fn name_column() -> Column {
        Column {
            format: "name".to_owned(),
            ..Column::new("Name", "string", NAME_DESCRIPTION, Source::Name)
        }
    }

    fn age_column() -> Column {
        Column::new("Age", "string", AGE_DESCRIPTION, Source::Age)
    }

    fn with_priority(mut self, priority: i64) -> Column {
        self.priority = priority;
        self
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace; it identifies the object together with its namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is when the server created the object, in RFC 3339 form and UTC. Populated by the system; read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The columns of a table for one resource.
#[derive(Debug, Clone)]
pub struct PrinterColumns {
    columns: Vec<Column>,
}

impl PrinterColumns {
    /// The columns of a CRD version (one entry of `spec.versions`): `Name`, then its
    /// `additionalPrinterColumns`, or `Age` when it declares none.
    pub fn from_crd_version(version: &Value) -> Result<PrinterColumns, TableError> {
        let declared = match version.get("additionalPrinterColumns") {
            None | Some(Value::Null) => return Ok(PrinterColumns::default_columns()),
            Some(Value::Array(columns)) if columns.is_empty() => {
                return Ok(PrinterColumns::default_columns());
            }
            Some(Value::Array(columns)) => columns,
            Some(_) => {
                return Err(TableError::MalformedColumns(
                    "additionalPrinterColumns must be a list".to_owned(),
                ));
            }
        };
        let mut columns = vec![Column::name_column()];
        for (i, column) in declared.iter().enumerate() {
            let get = |k: &str| column.get(k).and_then(Value::as_str);
            let (Some(name), Some(path)) = (get("name"), get("jsonPath")) else {
                return Err(TableError::MalformedColumns(format!(
                    "column {i} needs a name and a jsonPath"
                )));
            };
            let parsed =
                jsonpath::Path::parse(path).map_err(|source| TableError::InvalidJsonPath {
                    column: name.to_owned(),
                    path: path.to_owned(),
                    source,
                })?;
            let description = get("description")
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    format!("Custom resource definition column (in JSONPath format): {path}")
                });
            columns.push(Column {
                name: name.to_owned(),
                type_name: get("type").unwrap_or("string").to_owned(),
                format: get("format").unwrap_or_default().to_owned(),
                description,
                priority: column.get("priority").and_then(Value::as_i64).unwrap_or(0),
                source: Source::Path(parsed),
            });
        }
        Ok(PrinterColumns { columns })
    }

    /// The columns of a served resource: its CRD version's printer columns (`Name` and
    /// `Age` when they are unusable, as kube-apiserver falls back), a built-in kind's
    /// printer, or `Name` and `Created At`.
    pub fn for_resource(group: &str, plural: &str, crd_version: Option<&Value>) -> PrinterColumns {
        match crd_version {
            Some(version) => PrinterColumns::from_crd_version(version)
                .unwrap_or_else(|_| PrinterColumns::default_columns()),
            None => {
                PrinterColumns::for_builtin(group, plural).unwrap_or_else(PrinterColumns::generic)
            }
        }
    }

    /// kube-apiserver's columns for a CRD version without `additionalPrinterColumns`:
    /// `Name`, and `Age` (a `date` column over `.metadata.creationTimestamp`).
    pub fn default_columns() -> PrinterColumns {
        let age_path = jsonpath::Path::parse(".metadata.creationTimestamp")
            .expect("a constant, valid JSONPath");
        PrinterColumns {
            columns: vec![
                Column::name_column(),
                Column::new("Age", "date", AGE_DESCRIPTION, Source::Path(age_path)),
            ],
        }
    }

    /// kube-apiserver's generic columns for resources without a printer: `Name`, and
    /// `Created At` holding the RFC 3339 creation time.
    pub fn generic() -> PrinterColumns {
        PrinterColumns {
            columns: vec![
                Column::name_column(),
                Column::new("Created At", "date", AGE_DESCRIPTION, Source::CreatedAt),
            ],
        }
    }

    /// The columns kube-apiserver's printers use for the built-in resources fleetbench
    /// serves (`namespaces`, `configmaps`, `secrets`, `events`, `leases`,
    /// `serviceaccounts`), by group and plural resource; `None` for others (use
    /// [`PrinterColumns::generic`] or the CRD's columns).
    pub fn for_builtin(group: &str, resource: &str) -> Option<PrinterColumns> {
        let path = |p: &str| Source::Path(jsonpath::Path::parse(p).expect("constant JSONPath"));
        let columns = match (group, resource) {
            ("", "namespaces") => vec![
                Column::name_column(),
                Column::new(
                    "Status",
                    "string",
                    "The status of the namespace",
                    path(".status.phase"),
                ),
                Column::age_column(),
            ],
            ("", "configmaps") => vec![
                Column::name_column(),
                Column::new(
                    "Data",
                    "string",
                    "How many entries data and binaryData hold",
                    Source::KeyCount(&["data", "binaryData"]),
                ),
                Column::age_column(),
            ],
            ("", "secrets") => vec![
                Column::name_column(),
                Column::new("Type", "string", "The type of the secret", path(".type")),
                Column::new(
                    "Data",
                    "string",
                    "How many entries data holds",
                    Source::KeyCount(&["data"]),
                ),
                Column::age_column(),
            ],
            ("", "serviceaccounts") => vec![
                Column::name_column(),
                Column::new(
                    "Secrets",
                    "string",
                    "How many secrets the service account lists",
                    Source::KeyCount(&["secrets"]),
                ),
                Column::age_column(),
            ],
            ("coordination.k8s.io", "leases") => vec![
                Column::name_column(),
                Column::new(
                    "Holder",
                    "string",
                    "The holder of the lease",
                    path(".spec.holderIdentity"),
                ),
                Column::age_column(),
            ],
            ("", "events") | ("events.k8s.io", "events") => vec![
                Column::new(
                    "Last Seen",
                    "string",
                    "When the event was last seen",
                    Source::EventLastSeen,
                ),
                Column::new("Type", "string", "The type of the event", path(".type")),
                Column::new(
                    "Reason",
                    "string",
                    "Why the event happened",
                    path(".reason"),
                ),
                Column::new(
                    "Object",
                    "string",
                    "The object the event is about",
                    Source::EventObject,
                ),
                Column::new(
                    "Message",
                    "string",
                    "What happened, for humans",
                    path(".message"),
                ),
                Column::name_column().with_priority(1),
            ],
            _ => return None,
        };
        Some(PrinterColumns { columns })
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The `columnDefinitions` of a table.
    pub fn column_definitions(&self) -> Value {
        Value::Array(
            self.columns
                .iter()
                .map(|c| {
                    json!({
                        "name": c.name,
                        "type": c.type_name,
                        "format": c.format,
                        "description": c.description,
                        "priority": c.priority,
                    })
                })
                .collect(),
        )
    }

    /// The cells of one object's row, with ages relative to `now`.
    pub fn cells(&self, object: &Value, now: Timestamp) -> Vec<Value> {
        self.columns
            .iter()
            .map(|column| cell(column, object, now))
            .collect()
    }

    /// Renders objects as a Table, with ages relative to the current time.
    pub fn to_table<I>(&self, objects: I, list: &TableListMeta, options: &TableOptions) -> Value
    where
        I: IntoIterator,
        I::Item: Borrow<Value>,
    {
        self.to_table_at(objects, list, options, Timestamp::now())
    }

    /// Renders objects as a Table, with ages relative to `now`.
    pub fn to_table_at<I>(
        &self,
        objects: I,
        list: &TableListMeta,
        options: &TableOptions,
        now: Timestamp,
    ) -> Value
    where
        I: IntoIterator,
        I::Item: Borrow<Value>,
    {
        let rows: Vec<Value> = objects
            .into_iter()
            .map(|object| {
                let object = object.borrow();
                let mut row = Map::new();
                row.insert("cells".to_owned(), Value::Array(self.cells(object, now)));
                let embedded = match options.include_object {
                    IncludeObject::None => Value::Null,
                    IncludeObject::Object => object.clone(),
                    IncludeObject::Metadata => json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": options.api_version,
                        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    }),
                };
                row.insert("object".to_owned(), embedded);
                Value::Object(row)
            })
            .collect();
        let mut metadata = Map::new();
        if let Some(rv) = list.resource_version.as_ref().filter(|v| !v.is_empty()) {
            metadata.insert("resourceVersion".to_owned(), json!(rv));
        }
        if let Some(token) = list.continue_token.as_ref().filter(|v| !v.is_empty()) {
            metadata.insert("continue".to_owned(), json!(token));
        }
        if let Some(remaining) = list.remaining_item_count {
            metadata.insert("remainingItemCount".to_owned(), json!(remaining));
        }
        let mut table = Map::new();
        table.insert("kind".to_owned(), json!("Table"));
        table.insert("apiVersion".to_owned(), json!(options.api_version));
        table.insert("metadata".to_owned(), Value::Object(metadata));
        table.insert(
            "columnDefinitions".to_owned(),
            if options.no_headers {
                Value::Null
            } else {
                self.column_definitions()
            },
        );
        table.insert("rows".to_owned(), Value::Array(rows));
        Value::Object(table)
    }
}

fn creation_timestamp(object: &Value) -> Option<Timestamp> {
    object
        .get("metadata")?
        .get("creationTimestamp")?
        .as_str()?
        .parse()
        .ok()
}

fn cell(column: &Column, object: &Value, now: Timestamp) -> Value {
    match &column.source {
        Source::Name => object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .cloned()
            .unwrap_or_else(|| json!("")),
        Source::Age => Value::String(match creation_timestamp(object) {
            Some(t) => human_duration(now.duration_since(t).as_secs()),
            None => "<unknown>".to_owned(),
        }),
        Source::CreatedAt => Value::String(match creation_timestamp(object) {
            Some(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            None => "0001-01-01T00:00:00Z".to_owned(),
        }),
        Source::KeyCount(fields) => {
            let count: usize = fields
                .iter()
                .map(|f| match object.get(*f) {
                    Some(Value::Object(m)) => m.len(),
                    Some(Value::Array(a)) => a.len(),
                    _ => 0,
                })
                .sum();
            json!(count)
        }
        Source::EventObject => {
            let involved = object
                .get("involvedObject")
                .or_else(|| object.get("regarding"));
            let get = |k: &str| {
                involved
                    .and_then(|o| o.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            json!(format!("{}/{}", get("kind").to_lowercase(), get("name")))
        }
        Source::EventLastSeen => {
            let seen = ["lastTimestamp", "eventTime", "deprecatedLastTimestamp"]
                .iter()
                .find_map(|k| object.get(*k).and_then(Value::as_str))
                .and_then(|s| s.parse::<Timestamp>().ok())
                .or_else(|| creation_timestamp(object));
            json!(match seen {
                Some(t) => human_duration(now.duration_since(t).as_secs()),
                None => "<unknown>".to_owned(),
            })
        }
        Source::Path(path) => match path.first(object) {
            None => Value::Null,
            Some(value) => typed_cell(&column.type_name, value, now),
        },
    }
}

/// kube-apiserver's `cellForJSONValue`, with `string` columns printed as its JSONPath
/// printer prints (strings bare, other scalars as text, objects and lists as JSON).
fn typed_cell(type_name: &str, value: &Value, now: Timestamp) -> Value {
    if value.is_null() {
        return Value::Null;
    }
    match type_name {
        "string" => Value::String(match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) => crate::goformat::go_format_float(f),
                _ => n.to_string(),
            },
            Value::Bool(b) => b.to_string(),
            other => other.to_string(),
        }),
        "integer" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, Value::from),
            _ => Value::Null,
        },
        "number" => match value.as_f64() {
            Some(f) => json!(f),
            None => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(b) => Value::Bool(*b),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(s) => Value::String(match s.parse::<Timestamp>() {
                Ok(t) => human_duration(now.duration_since(t).as_secs()),
                Err(_) => "<invalid>".to_owned(),
            }),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// A duration for people, with two or three significant figures, as kubectl and
/// kube-apiserver print ages: `45s`, `5m2s`, `3h10m`, `2d5h`, `400d`, `3y10d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().expect("timestamp")
    }

    fn gitrepo_version() -> Value {
        json!({
            "name": "v1alpha1",
            "additionalPrinterColumns": [
                {"jsonPath": ".spec.repo", "name": "Repo", "type": "string"},
                {"jsonPath": ".status.commit", "name": "Commit", "type": "string"},
                {"jsonPath": ".status.display.readyBundleDeployments", "name": "BundleDeployments-Ready", "type": "string"},
                {"jsonPath": ".status.conditions[?(@.type==\"Ready\")].message", "name": "Status", "type": "string"}
            ]
        })
    }

    fn gitrepo(name: &str) -> Value {
        json!({
            "apiVersion": "fleet.cattle.io/v1alpha1", "kind": "GitRepo",
            "metadata": {"name": name, "namespace": "fleet-local", "resourceVersion": "42",
                         "creationTimestamp": "2024-05-01T11:55:00Z", "labels": {"a": "b"}},
            "spec": {"repo": "https://github.com/rancher/fleet-examples"},
            "status": {"commit": "abc123", "display": {"readyBundleDeployments": "1/1"},
                       "conditions": [{"type": "Ready", "status": "True", "message": ""}]}
        })
    }

    #[test]
    fn crd_columns_follow_additional_printer_columns() {
        let columns = PrinterColumns::from_crd_version(&gitrepo_version()).expect("columns");
        assert_eq!(
            columns.names(),
            [
                "Name",
                "Repo",
                "Commit",
                "BundleDeployments-Ready",
                "Status"
            ]
        );
        let defs = columns.column_definitions();
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(defs[0]["type"], "string");
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.repo"
        );
        assert_eq!(defs[1]["priority"], 0);
        assert_eq!(
            columns.cells(&gitrepo("simple"), now()),
            [
                json!("simple"),
                json!("https://github.com/rancher/fleet-examples"),
                json!("abc123"),
                json!("1/1"),
                json!("")
            ]
        );
        // Missing values are null cells.
        let bare = json!({"metadata": {"name": "bare"}, "spec": {}});
        assert_eq!(
            columns.cells(&bare, now()),
            [
                json!("bare"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
    }

    #[test]
    fn crds_without_columns_get_name_and_age() {
        let columns = PrinterColumns::from_crd_version(&json!({"name": "v1"})).expect("columns");
        assert_eq!(columns.names(), ["Name", "Age"]);
        assert_eq!(columns.column_definitions()[1]["type"], "date");
        assert_eq!(
            columns.cells(&gitrepo("x"), now()),
            [json!("x"), json!("5m")]
        );
        let empty = PrinterColumns::from_crd_version(&json!({"additionalPrinterColumns": []}))
            .expect("columns");
        assert_eq!(empty.names(), ["Name", "Age"]);
    }

    #[test]
    fn typed_cells_follow_kube_apiserver() {
        let version = json!({"additionalPrinterColumns": [
            {"jsonPath": ".n", "name": "N", "type": "integer"},
            {"jsonPath": ".f", "name": "F", "type": "number"},
            {"jsonPath": ".b", "name": "B", "type": "boolean"},
            {"jsonPath": ".t", "name": "T", "type": "date"},
            {"jsonPath": ".bad", "name": "Bad", "type": "date"},
            {"jsonPath": ".labels", "name": "Labels", "type": "string", "priority": 1},
            {"jsonPath": ".n", "name": "NS", "type": "string"},
            {"jsonPath": ".b", "name": "Mismatch", "type": "integer"}
        ]});
        let columns = PrinterColumns::from_crd_version(&version).expect("columns");
        let object = json!({"metadata": {"name": "o"}, "n": 3.7, "f": 2, "b": true,
                            "t": "2024-04-29T12:00:00Z", "bad": "yesterday", "labels": {"a": "b"}});
        assert_eq!(
            columns.cells(&object, now()),
            [
                json!("o"),
                json!(3),
                json!(2.0),
                json!(true),
                json!("2d"),
                json!("<invalid>"),
                json!("{\"a\":\"b\"}"),
                json!("3.7"),
                Value::Null
            ]
        );
        assert_eq!(columns.column_definitions()[6]["priority"], 1);
    }

    #[test]
    fn bad_columns_are_refused() {
        let err = PrinterColumns::from_crd_version(&json!({"additionalPrinterColumns": [
            {"jsonPath": ".a[", "name": "A", "type": "string"}
        ]}))
        .unwrap_err();
        assert!(matches!(err, TableError::InvalidJsonPath { ref column, .. } if column == "A"));
        let err =
            PrinterColumns::from_crd_version(&json!({"additionalPrinterColumns": [{"name": "A"}]}))
                .unwrap_err();
        assert!(matches!(err, TableError::MalformedColumns(_)));
        assert!(matches!(
            PrinterColumns::from_crd_version(&json!({"additionalPrinterColumns": {}})),
            Err(TableError::MalformedColumns(_))
        ));
    }

    #[test]
    fn tables_carry_list_meta_and_partial_object_metadata() {
        let columns = PrinterColumns::from_crd_version(&gitrepo_version()).expect("columns");
        let objects = vec![gitrepo("a"), gitrepo("b")];
        let list = TableListMeta {
            resource_version: Some("100".to_owned()),
            continue_token: Some("next".to_owned()),
            remaining_item_count: Some(3),
        };
        let table = columns.to_table_at(&objects, &list, &TableOptions::default(), now());
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            table["metadata"],
            json!({"resourceVersion": "100", "continue": "next", "remainingItemCount": 3})
        );
        assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(5));
        assert_eq!(table["rows"].as_array().map(Vec::len), Some(2));
        assert_eq!(table["rows"][1]["cells"][0], "b");
        assert_eq!(
            table["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": gitrepo("a")["metadata"]})
        );

        let whole = TableOptions {
            include_object: IncludeObject::Object,
            ..TableOptions::default()
        };
        let table = columns.to_table_at(objects.iter(), &TableListMeta::default(), &whole, now());
        assert_eq!(table["rows"][0]["object"], gitrepo("a"));
        assert_eq!(table["metadata"], json!({}));

        let bare = TableOptions {
            api_version: "meta.k8s.io/v1beta1".to_owned(),
            include_object: IncludeObject::None,
            no_headers: true,
        };
        let table = columns.to_table_at(objects, &TableListMeta::default(), &bare, now());
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(table["rows"][0]["object"], Value::Null);
        assert_eq!(table["columnDefinitions"], Value::Null);
    }

    #[test]
    fn include_object_parameter() {
        assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse("Metadata"),
            Ok(IncludeObject::Metadata)
        );
        assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
        assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
        assert_eq!(
            IncludeObject::parse("All").unwrap_err().to_string(),
            "unrecognized includeObject value: \"All\""
        );
    }

    #[test]
    fn generic_and_builtin_columns() {
        let cm = json!({"metadata": {"name": "cm", "creationTimestamp": "2024-05-01T09:00:00Z"},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        let generic = PrinterColumns::generic();
        assert_eq!(generic.names(), ["Name", "Created At"]);
        assert_eq!(
            generic.cells(&cm, now()),
            [json!("cm"), json!("2024-05-01T09:00:00Z")]
        );
        let configmaps = PrinterColumns::for_builtin("", "configmaps").expect("printer");
        assert_eq!(configmaps.names(), ["Name", "Data", "Age"]);
        assert_eq!(
            configmaps.cells(&cm, now()),
            [json!("cm"), json!(3), json!("3h")]
        );
        let secrets = PrinterColumns::for_builtin("", "secrets").expect("printer");
        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        assert_eq!(
            secrets.cells(&secret, now()),
            [json!("s"), json!("Opaque"), json!(1), json!("<unknown>")]
        );
        let ns = PrinterColumns::for_builtin("", "namespaces").expect("printer");
        assert_eq!(
            ns.cells(
                &json!({"metadata": {"name": "default"}, "status": {"phase": "Active"}}),
                now()
            )[1],
            "Active"
        );
        let leases = PrinterColumns::for_builtin("coordination.k8s.io", "leases").expect("printer");
        assert_eq!(
            leases.cells(
                &json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}),
                now()
            )[1],
            "me"
        );
        let events = PrinterColumns::for_builtin("", "events").expect("printer");
        assert_eq!(
            events.names(),
            ["Last Seen", "Type", "Reason", "Object", "Message", "Name"]
        );
        let event = json!({"metadata": {"name": "e"}, "type": "Normal", "reason": "Synced",
                           "involvedObject": {"kind": "GitRepo", "name": "simple"},
                           "lastTimestamp": "2024-05-01T11:59:00Z", "message": "ok"});
        assert_eq!(
            events.cells(&event, now()),
            [
                json!("60s"),
                json!("Normal"),
                json!("Synced"),
                json!("gitrepo/simple"),
                json!("ok"),
                json!("e")
            ]
        );
        assert!(PrinterColumns::for_builtin("apps", "deployments").is_none());
    }

    #[test]
    fn human_durations_match_kubectl() {
        for (seconds, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (302, "5m2s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 600, "3h10m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (53 * 3600, "2d5h"),
            (8 * 86400, "8d"),
            (400 * 86400, "400d"),
            (730 * 86400, "2y"),
            (740 * 86400, "2y10d"),
            (8 * 365 * 86400, "8y"),
        ] {
            assert_eq!(human_duration(seconds), text, "{seconds}");
        }
    }

    #[test]
    fn every_fleet_crd_has_usable_columns() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fleet-crds.yaml"
        );
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("fixture parses");
        let mut with_status = 0;
        for crd in docs.iter().filter(|d| !d.is_null()) {
            for version in crd["spec"]["versions"].as_array().expect("versions") {
                let columns = PrinterColumns::from_crd_version(version)
                    .unwrap_or_else(|e| panic!("{}: {e}", crd["metadata"]["name"]));
                assert_eq!(columns.names()[0], "Name");
                if columns.names().contains(&"Status") {
                    with_status += 1;
                }
            }
        }
        // GitRepo, HelmOp, Bundle, BundleDeployment, Cluster and ClusterGroup show the
        // Ready condition's message.
        assert_eq!(with_status, 6);
    }
}
