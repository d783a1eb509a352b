//! The Kubernetes API over HTTP: path routing, content negotiation, and the mapping of
//! each request to a store operation and back to a response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fleet_api::error::chain;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use rand::RngExt;
use serde_json::{Value, json};

use crate::metrics::DurationLabels;
use crate::patch::PatchType;
use crate::present::{self, Format};
use crate::query::{ContinueToken, Filters, Query, parse_propagation};
use crate::registry::ResourceInfo;
use crate::state::ServerState;
use crate::status::ApiError;
use crate::store::ListRange;
use crate::watch::{self, WatchRequest};
use crate::write::{DeleteOptions, Deleted, Outcome, Part, WriteOptions};

/// kube-apiserver's verbs, as metrics and fault rules name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read one object.
    Get,
    /// Read a collection.
    List,
    /// Stream changes.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (server-side apply included).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::List => "LIST",
            Self::Watch => "WATCH",
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::DeleteCollection => "DELETECOLLECTION",
        }
    }
}

/// A request for a resource, after routing.
struct Route {
    info: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    legacy_watch: bool,
}

fn json_response(code: StatusCode, body: Bytes) -> Response {
    (
        code,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn value_response(code: StatusCode, body: &Value) -> Response {
    json_response(
        code,
        Bytes::from(serde_json::to_vec(body).expect("JSON values serialize")),
    )
}

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// Discovery documents: `/api`, `/apis`, and the per group and version lists.
fn discovery(shared: &ServerState, segments: &[&str]) -> Option<Value> {
    match segments {
        ["api"] => Some(shared.registry.api_versions()),
        ["api", version] => shared.registry.resource_list("", version),
        ["apis"] => Some(shared.registry.api_group_list()),
        ["apis", group] => shared.registry.api_group(group),
        ["apis", group, version] => shared.registry.resource_list(group, version),
        _ => None,
    }
}

fn route(shared: &ServerState, segments: &[&str]) -> Result<Route, ApiError> {
    let (group, version, mut rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::no_route()),
    };
    let legacy_watch = rest.first() == Some(&"watch");
    if legacy_watch {
        rest = &rest[1..];
    }
    let namespaces_sub = group.is_empty()
        && rest.len() == 3
        && rest[0] == "namespaces"
        && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) = if rest.len() >= 3 && rest[0] == "namespaces" && !namespaces_sub {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(name.to_string()), None),
        [resource, name, sub] => (*resource, Some(name.to_string()), Some(sub.to_string())),
        _ => return Err(ApiError::no_route()),
    };
    let info = shared
        .registry
        .lookup(group, version, resource)
        .ok_or_else(ApiError::no_route)?;
    if info.namespaced != namespace.is_some() && name.is_some() {
        return Err(ApiError::no_route());
    }
    if !info.namespaced && namespace.is_some() {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = &subresource
        && !(sub == "status" && info.status_subresource)
    {
        return Err(ApiError::no_route());
    }
    Ok(Route {
        info,
        namespace,
        name,
        subresource,
        legacy_watch,
    })
}

fn verb_of(method: &Method, route: &Route, query: &Query) -> Result<Verb, ApiError> {
    let item = route.name.is_some();
    let watch = query.watch || route.legacy_watch;
    Ok(match (method, item) {
        (&Method::GET, _) if watch => Verb::Watch,
        (&Method::GET, false) => Verb::List,
        (&Method::GET, true) => Verb::Get,
        (&Method::POST, false) => Verb::Create,
        (&Method::PUT, true) => Verb::Update,
        (&Method::PATCH, true) => Verb::Patch,
        (&Method::DELETE, true) => Verb::Delete,
        (&Method::DELETE, false) => Verb::DeleteCollection,
        _ => return Err(ApiError::method_not_allowed()),
    })
}

/// Entry point for every path under `/api` and `/apis`.
pub async fn api(State(shared): State<Arc<ServerState>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(doc) = discovery(&shared, &segments) {
        if request.method() != Method::GET {
            return ApiError::method_not_allowed().into_response();
        }
        return value_response(StatusCode::OK, &doc);
    }
    let started = Instant::now();
    let query = match Query::parse(request.uri().query()) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let route = match route(&shared, &segments) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let verb = match verb_of(request.method(), &route, &query) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let labels = DurationLabels {
        verb: verb.as_str().into(),
        group: route.info.group.clone(),
        version: route.info.version.clone(),
        resource: route.info.plural.clone(),
        subresource: route.subresource.clone().unwrap_or_default(),
    };
    if let Some(delay) = shared.faults.latency(verb.as_str()) {
        tokio::time::sleep(delay).await;
    }
    let response = match shared
        .faults
        .error(verb.as_str(), &route.info.plural, &route.info.group)
    {
        Some(429) => ApiError::too_many_requests().into_response(),
        Some(_) => ApiError::internal("fleetbench injected fault").into_response(),
        None => match serve(&shared, route, verb, query, request).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    shared
        .metrics
        .observe(labels, response.status().as_u16(), started.elapsed());
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn read_body(shared: &ServerState, request: Request) -> Result<(HeaderMap, Bytes), ApiError> {
    let (parts, body) = request.into_parts();
    let limits = crate::body::Limits::of(&shared.config);
    let bytes = crate::body::read_request(&parts.headers, body, limits).await?;
    Ok((parts.headers, bytes))
}

pub(crate) fn decode_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub(crate) fn decode_yaml(bytes: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Decodes a create or update body by its content type.
pub(crate) fn decode_object(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("application/json");
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let value = match essence {
        "application/json" | "" | "*/*" => decode_json(bytes)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(bytes)?,
        "application/vnd.kubernetes.protobuf" => {
            crate::protobuf::decode(bytes).map_err(|e| match e {
                crate::protobuf::ProtobufError::Malformed(_) => ApiError::bad_request(chain(&e)),
                crate::protobuf::ProtobufError::Unsupported(_) => {
                    ApiError::unsupported_media_type(content_type)
                }
            })?
        }
        _ => return Err(ApiError::unsupported_media_type(content_type)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: expected an object, got {}",
            type_name(&value)
        )));
    }
    Ok(value)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn manager_of(headers: &HeaderMap, query: &Query) -> String {
    if let Some(manager) = &query.field_manager {
        return manager.clone();
    }
    header_str(headers, header::USER_AGENT)
        .and_then(|ua| ua.split('/').next())
        .filter(|m| !m.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn write_options(headers: &HeaderMap, query: &Query, apply: bool) -> WriteOptions {
    WriteOptions {
        dry_run: query.dry_run,
        manager: if apply {
            query.field_manager.clone().unwrap_or_default()
        } else {
            manager_of(headers, query)
        },
        field_validation: query.field_validation.unwrap_or_default(),
        force: query.force,
    }
}

fn outcome_response(outcome: Outcome, info: &ResourceInfo, format: Format) -> Response {
    let code = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let bytes = if format == Format::Json && !present::needs_conversion(info) {
        outcome.bytes
    } else {
        let value: Value = serde_json::from_slice(&outcome.bytes).unwrap_or(Value::Null);
        let stored = crate::store::StoredObject {
            bytes: outcome.bytes.clone(),
            meta: Arc::new(crate::meta::ObjMeta::from_object(&value)),
        };
        present::one(info, format, &stored)
    };
    with_warnings(json_response(code, bytes), &outcome.warnings)
}

async fn serve(
    shared: &Arc<ServerState>,
    route: Route,
    verb: Verb,
    query: Query,
    request: Request,
) -> Result<Response, ApiError> {
    let format = match Format::from_accept(header_str(request.headers(), header::ACCEPT)) {
        Format::Table(default) => Format::Table(query.include_object.unwrap_or(default)),
        other => other,
    };
    let info = route.info.clone();
    let namespace = route.namespace.as_deref();
    let part = if route.subresource.as_deref() == Some("status") {
        Part::Status
    } else {
        Part::Main
    };
    match verb {
        Verb::Get => {
            let name = route.name.as_deref().unwrap_or_default();
            let key = crate::meta::object_key(namespace.unwrap_or_default(), name);
            let object = info
                .store
                .get(&key)
                .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
            Ok(json_response(
                StatusCode::OK,
                present::one(&info, format, &object),
            ))
        }
        Verb::List => list(shared, &info, namespace, &query, format),
        Verb::Watch => watch(shared, route, &query, format),
        Verb::Create => {
            if info.namespaced && namespace.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            let (headers, bytes) = read_body(shared, request).await?;
            let body = decode_object(&headers, &bytes)?;
            let opts = write_options(&headers, &query, false);
            let outcome = shared.create(&info, namespace, body, &opts, true)?;
            Ok(outcome_response(outcome, &info, format))
        }
        Verb::Update => {
            let name = route.name.clone().unwrap_or_default();
            let (headers, bytes) = read_body(shared, request).await?;
            let body = decode_object(&headers, &bytes)?;
            let opts = write_options(&headers, &query, false);
            let outcome = shared.update(&info, namespace, &name, part, &body, &opts)?;
            Ok(outcome_response(outcome, &info, format))
        }
        Verb::Patch => {
            let name = route.name.clone().unwrap_or_default();
            let (headers, bytes) = read_body(shared, request).await?;
            let content_type = header_str(&headers, header::CONTENT_TYPE)
                .unwrap_or_default()
                .to_string();
            let kind = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            let body = match kind {
                PatchType::Apply => decode_json(&bytes).or_else(|_| decode_yaml(&bytes))?,
                _ => decode_json(&bytes)?,
            };
            let opts = write_options(&headers, &query, kind == PatchType::Apply);
            let outcome = shared.patch(&info, namespace, &name, part, kind, body, &opts)?;
            Ok(outcome_response(outcome, &info, format))
        }
        Verb::Delete => {
            let name = route.name.clone().unwrap_or_default();
            let (headers, bytes) = read_body(shared, request).await?;
            let opts = delete_options(&headers, &bytes, &query)?;
            match shared.delete(&info, namespace, &name, &opts)? {
                Deleted::Pending(bytes) => {
                    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    let stored = crate::store::StoredObject {
                        meta: Arc::new(crate::meta::ObjMeta::from_object(&value)),
                        bytes,
                    };
                    Ok(json_response(
                        StatusCode::OK,
                        present::one(&info, format, &stored),
                    ))
                }
                Deleted::Gone(object) => Ok(value_response(
                    StatusCode::OK,
                    &json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {"name": name, "group": info.group, "kind": info.plural, "uid": &*object.meta.uid},
                    }),
                )),
            }
        }
        Verb::DeleteCollection => {
            let (headers, bytes) = read_body(shared, request).await?;
            let opts = delete_options(&headers, &bytes, &query)?;
            let filters = Filters::new(&info, &query)?;
            let page = info.store.list(
                &|| shared.store.current_revision(),
                ListRange {
                    namespace,
                    ..Default::default()
                },
                |o| filters.matches_object(o),
            );
            let mut deleted = Vec::new();
            for object in &page.items {
                let ns = (!object.meta.namespace.is_empty()).then_some(&*object.meta.namespace);
                match shared.delete(&info, ns, &object.meta.name, &opts) {
                    Ok(Deleted::Gone(gone)) => deleted.push(gone),
                    Ok(Deleted::Pending(_)) => {
                        if let Some(current) = info.store.get(&object.meta.key()) {
                            deleted.push(current);
                        }
                    }
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(json_response(
                StatusCode::OK,
                present::list(
                    &info,
                    format,
                    &deleted,
                    shared.store.current_revision(),
                    None,
                ),
            ))
        }
    }
}

/// `DeleteOptions` as sent in a DELETE body (the fields acted on).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    propagation_policy: Option<String>,
    orphan_dependents: Option<bool>,
    preconditions: Option<DeletePreconditions>,
    dry_run: Option<Vec<String>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletePreconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

pub(crate) fn delete_options(
    headers: &HeaderMap,
    bytes: &[u8],
    query: &Query,
) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions {
        propagation: query.propagation,
        dry_run: query.dry_run,
        ..Default::default()
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(opts);
    }
    let body: DeleteBody = serde_json::from_value(decode_object(headers, bytes)?)
        .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
    if let Some(policy) = body.propagation_policy {
        opts.propagation = Some(parse_propagation(&policy)?);
    } else if let Some(orphan) = body.orphan_dependents {
        opts.propagation = Some(if orphan {
            crate::write::Propagation::Orphan
        } else {
            crate::write::Propagation::Background
        });
    }
    if let Some(pre) = body.preconditions {
        opts.uid = pre.uid;
        opts.resource_version = pre.resource_version;
    }
    for value in body.dry_run.iter().flatten() {
        if value != "All" {
            return Err(crate::query::invalid_dry_run(value));
        }
        opts.dry_run = true;
    }
    Ok(opts)
}

pub(crate) fn parse_revision(value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {value:?}")))
}

fn list(
    shared: &ServerState,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    query: &Query,
    format: Format,
) -> Result<Response, ApiError> {
    let filters = Filters::new(info, query)?;
    let token = query
        .continue_token
        .as_deref()
        .map(ContinueToken::decode)
        .transpose()?;
    let current = shared.store.current_revision();
    if token.is_none()
        && let Some(rv) = query.resource_version.as_deref().filter(|rv| *rv != "0")
    {
        let requested = parse_revision(rv)?;
        if requested > current {
            let mut err = ApiError::expired(format!(
                "Too large resource version: {requested}, current: {current}"
            ));
            err.code = 504;
            err.reason = "Timeout";
            err.details = Some(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            );
            return Err(err);
        }
        if query.resource_version_match.as_deref() == Some("Exact") && requested != current {
            return Err(ApiError::expired(format!(
                "The resourceVersion for the provided list is too old: {requested}"
            )));
        }
    }
    let range = ListRange {
        namespace,
        after: token.as_ref().map(|t| t.after.as_str()),
        limit: query.limit,
    };
    let page = info
        .store
        .list(&|| shared.store.current_revision(), range, |o| {
            filters.matches_object(o)
        });
    let revision = token.as_ref().map_or(page.revision, |t| t.revision);
    let next = page
        .continue_after
        .map(|after| ContinueToken { revision, after }.encode());
    Ok(json_response(
        StatusCode::OK,
        present::list(info, format, &page.items, revision, next),
    ))
}

fn watch(
    shared: &Arc<ServerState>,
    route: Route,
    query: &Query,
    format: Format,
) -> Result<Response, ApiError> {
    let info = route.info.clone();
    let mut filters = Filters::new(&info, query)?;
    if let Some(name) = &route.name {
        let mut q = query.clone();
        let selector = format!("metadata.name={name}");
        q.field_selector = Some(match &query.field_selector {
            Some(existing) => format!("{existing},{selector}"),
            None => selector,
        });
        filters = Filters::new(&info, &q)?;
    }
    let initial = query.send_initial_events == Some(true);
    let since = match query.resource_version.as_deref() {
        None | Some("0") => None,
        Some(_) if initial => None,
        Some(rv) => Some(parse_revision(rv)?),
    };
    if let Some(since) = since {
        if since > shared.store.current_revision() {
            // A revision from the future: kube-apiserver waits for it briefly, then times out.
            return Err(ApiError::bad_request(format!(
                "Too large resource version: {since}, current: {}",
                shared.store.current_revision()
            )));
        }
        if let Err(line) = watch::check_start(&info, shared, since) {
            return Ok(json_response(StatusCode::OK, line));
        }
    }
    let timeout = query.timeout.unwrap_or_else(|| {
        let min = shared.config.min_request_timeout.as_secs_f64();
        Duration::from_secs_f64(min * rand::rng().random_range(1.0..2.0))
    });
    let request = WatchRequest {
        info,
        namespace: route.namespace,
        filters,
        since,
        initial_events_bookmark: initial && query.bookmarks,
        bookmarks: query.bookmarks,
        timeout,
        format,
    };
    let receiver = watch::start(shared.clone(), request);
    let stream = futures::stream::unfold(receiver, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(response)
}
