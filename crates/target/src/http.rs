//! HTTP layer: routing, content negotiation, authentication, query
//! parameters and SCIM error responses.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, ETAG, HOST, IF_MATCH, LOCATION, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scimbridge_scim::discovery::{self, MAX_RESULTS};
use scimbridge_scim::error::scim_type;
use scimbridge_scim::filter::{self, AttrPath};
use scimbridge_scim::patch::PatchRequest;
use scimbridge_scim::{SCIM_MEDIA_TYPE, ScimErrorBody, list_response};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::BASE_PATH;
use crate::resources::{Kind, Reply, Resources, render};

#[derive(Clone)]
struct AppState {
    resources: Arc<Resources>,
    auth: Option<Arc<Credentials>>,
    faults: Arc<crate::faults::FaultState>,
}

/// The accepted credentials, kept only as SHA-256 digests so that the constant-time comparison
/// does not leak their length either.
pub(crate) struct Credentials {
    bearer: Option<[u8; 32]>,
    /// Digest of `user:password`.
    basic: Option<[u8; 32]>,
}

impl Credentials {
    /// `None` when neither is set: the target is open.
    pub(crate) fn new(bearer_token: Option<&str>, basic: Option<(&str, &str)>) -> Option<Self> {
        let digest = |text: &str| -> [u8; 32] { Sha256::digest(text.as_bytes()).into() };
        (bearer_token.is_some() || basic.is_some()).then(|| Self {
            bearer: bearer_token.map(digest),
            basic: basic.map(|(user, password)| digest(&format!("{user}:{password}"))),
        })
    }

    fn same(expected: &[u8; 32], presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = expected
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }

    /// Checks an `Authorization` header; the error says what is wrong.
    fn verify(&self, header: Option<&str>) -> Result<(), &'static str> {
        let Some(header) = header else {
            return Err("missing credentials");
        };
        if let (Some(expected), Some(token)) = (&self.bearer, parse_bearer(header)) {
            return if Self::same(expected, token) {
                Ok(())
            } else {
                Err("invalid bearer token")
            };
        }
        if let (Some(expected), Some(pair)) = (&self.basic, parse_basic(header)) {
            return if Self::same(expected, &pair) {
                Ok(())
            } else {
                Err("invalid user name or password")
            };
        }
        Err("unsupported authorization scheme")
    }

    fn challenge(&self) -> &'static str {
        if self.bearer.is_some() {
            "Bearer realm=\"scimbridge\""
        } else {
            "Basic realm=\"scimbridge\""
        }
    }
}

pub(crate) fn router(
    resources: Arc<Resources>,
    auth: Option<Arc<Credentials>>,
    faults: Arc<crate::faults::FaultState>,
) -> Router {
    let state = AppState {
        resources,
        auth,
        faults,
    };
    // SCIM 1.1 clients get the same resources at /scim/v1, translated at the edge.
    let v1 = routes(&state)
        .route(
            "/ServiceProviderConfigs",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .layer(middleware::from_fn(crate::v1::translate));
    Router::new()
        .nest(BASE_PATH, routes(&state))
        .nest(crate::v1::V1_BASE_PATH, v1)
        .fallback(not_found)
        .with_state(state)
}

fn routes(state: &AppState) -> Router<AppState> {
    let protected = Router::new()
        .route(
            "/Users",
            get(list_users)
                .post(create_user)
                .fallback(method_not_allowed),
        )
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups",
            get(list_groups)
                .post(create_group)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group)
                .fallback(method_not_allowed),
        )
        .route(
            "/Users/.search",
            post(search_users).fallback(method_not_allowed),
        )
        .route(
            "/Groups/.search",
            post(search_groups).fallback(method_not_allowed),
        )
        .route("/.search", post(search_all).fallback(method_not_allowed))
        .route("/Bulk", post(bulk).fallback(method_not_allowed))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth))
        .route_layer(middleware::from_fn_with_state(
            state.faults.clone(),
            crate::faults::inject,
        ));
    // Discovery stays public so clients can learn the auth scheme first.
    let public = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes",
            get(resource_types).fallback(method_not_allowed),
        )
        .route(
            "/ResourceTypes/{name}",
            get(resource_type).fallback(method_not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route("/Schemas/{id}", get(schema).fallback(method_not_allowed));
    protected.merge(public)
}

/// A SCIM error as an HTTP response.
struct ScimError(ScimErrorBody);

impl From<ScimErrorBody> for ScimError {
    fn from(body: ScimErrorBody) -> Self {
        Self(body)
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        scim_json(status, &self.0.to_json())
    }
}

type ApiResult = Result<Response, ScimError>;

fn scim_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(SCIM_MEDIA_TYPE))],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(scim_type: &str, detail: impl Into<String>) -> ScimError {
    ScimError(ScimErrorBody::bad_request(scim_type, detail))
}

/// The absolute SCIM base URL as seen by the client, for `meta.location`.
/// Falls back to the bare path when the request carries no usable host.
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            // Reflected into Location headers, so only plain host[:port].
            .filter(|h| {
                !h.is_empty()
                    && h.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']' | '_')
                    })
            });
        let https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|p| p.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        let scheme = if https { "https" } else { "http" };
        Ok(Base(match host {
            Some(host) => format!("{scheme}://{host}{BASE_PATH}"),
            None => BASE_PATH.to_owned(),
        }))
    }
}

async fn require_auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(auth) = &state.auth {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        if let Err(detail) = auth.verify(header) {
            let mut response = ScimError(ScimErrorBody::unauthorized(detail)).into_response();
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(auth.challenge()));
            return response;
        }
    }
    next.run(request).await
}

/// `Basic <base64(user:password)>` → `user:password`.
fn parse_basic(header: &str) -> Option<String> {
    use base64::Engine as _;
    let (scheme, encoded) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    String::from_utf8(decoded).ok()
}

/// `Bearer <token>`, scheme case-insensitive (RFC 7235 §2.1).
fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(char::is_whitespace)?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Accepts `application/scim+json`, `application/json` or no Content-Type.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ScimError> {
    if let Some(content_type) = headers.get(CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .ok()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !(essence.eq_ignore_ascii_case(SCIM_MEDIA_TYPE)
            || essence.eq_ignore_ascii_case("application/json"))
        {
            return Err(ScimError(ScimErrorBody::new(
                415,
                None,
                format!("unsupported Content-Type; use {SCIM_MEDIA_TYPE}"),
            )));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request(
            scim_type::INVALID_SYNTAX,
            "request body is empty",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_request(scim_type::INVALID_SYNTAX, format!("malformed JSON: {e}")))
}

fn json_object_body(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ScimError> {
    match json_body(headers, body)? {
        Value::Object(map) => Ok(map),
        _ => Err(bad_request(
            scim_type::INVALID_SYNTAX,
            "request body must be a JSON object",
        )),
    }
}

/// Runs a write on its own task: if the client disconnects mid-request the
/// handler future is dropped, but a started write must still finish so the
/// database and the in-memory state stay in step.
async fn spawn_write<T: Send + 'static>(
    write: impl Future<Output = Result<T, ScimErrorBody>> + Send + 'static,
) -> Result<T, ScimError> {
    match tokio::spawn(write).await {
        Ok(result) => result.map_err(ScimError),
        Err(e) => {
            tracing::error!(error = %e, "SCIM target: write task failed");
            Err(ScimError(ScimErrorBody::internal("internal error")))
        }
    }
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.9).
#[derive(Default)]
struct Projection {
    attributes: Vec<AttrPath>,
    excluded: Vec<AttrPath>,
}

struct ListParams {
    filter: Option<String>,
    start_index: usize,
    count: usize,
    projection: Projection,
    /// `sortBy` and whether `sortOrder` is descending (RFC 7644 §3.4.2.3).
    sort: Option<(AttrPath, bool)>,
}

/// Query parameters, names matched case-insensitively.
fn query_pairs(uri: &Uri) -> Result<Vec<(String, String)>, ScimError> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|Query(pairs)| pairs)
        .map_err(|e| {
            bad_request(
                scim_type::INVALID_SYNTAX,
                format!("malformed query string: {e}"),
            )
        })
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_paths(list: Option<&str>, name: &str) -> Result<Vec<AttrPath>, ScimError> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            filter::parse_attr_path(p)
                .map_err(|e| bad_request(scim_type::INVALID_VALUE, format!("{name}: {e}")))
        })
        .collect()
}

fn projection(pairs: &[(String, String)]) -> Result<Projection, ScimError> {
    Ok(Projection {
        attributes: parse_paths(param(pairs, "attributes"), "attributes")?,
        excluded: parse_paths(param(pairs, "excludedAttributes"), "excludedAttributes")?,
    })
}

fn int_param(pairs: &[(String, String)], name: &str) -> Result<Option<i64>, ScimError> {
    param(pairs, name)
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                bad_request(
                    scim_type::INVALID_VALUE,
                    format!("{name} must be an integer"),
                )
            })
        })
        .transpose()
}

fn list_params(uri: &Uri) -> Result<ListParams, ScimError> {
    params_from_pairs(&query_pairs(uri)?)
}

fn params_from_pairs(pairs: &[(String, String)]) -> Result<ListParams, ScimError> {
    // RFC 7644 §3.4.2.4: startIndex < 1 means 1, negative count means 0.
    let start_index = int_param(pairs, "startIndex")?.unwrap_or(1).max(1);
    let count = int_param(pairs, "count")?
        .unwrap_or(i64::MAX)
        .clamp(0, i64::try_from(MAX_RESULTS).unwrap_or(i64::MAX));
    Ok(ListParams {
        filter: param(pairs, "filter")
            .filter(|f| !f.trim().is_empty())
            .map(str::to_owned),
        start_index: usize::try_from(start_index).unwrap_or(usize::MAX),
        count: usize::try_from(count).unwrap_or(MAX_RESULTS),
        projection: projection(pairs)?,
        sort: sort_params(pairs)?,
    })
}

fn sort_params(pairs: &[(String, String)]) -> Result<Option<(AttrPath, bool)>, ScimError> {
    let Some(sort_by) = param(pairs, "sortBy").filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let path = filter::parse_attr_path(sort_by)
        .map_err(|e| bad_request(scim_type::INVALID_VALUE, format!("sortBy: {e}")))?;
    let descending = match param(pairs, "sortOrder").map(str::trim) {
        None | Some("") => false,
        Some(order) if order.eq_ignore_ascii_case("ascending") => false,
        Some(order) if order.eq_ignore_ascii_case("descending") => true,
        Some(order) => {
            return Err(bad_request(
                scim_type::INVALID_VALUE,
                format!("sortOrder must be ascending or descending, not {order}"),
            ));
        }
    };
    Ok(Some((path, descending)))
}

/// What a resource is sorted by: numbers as numbers, text case-insensitively; a multi-valued
/// attribute by its primary (else first) value.
#[derive(Debug, PartialEq, PartialOrd)]
enum SortKey {
    Number(f64),
    Text(String),
}

fn sort_key(resource: &Value, path: &AttrPath) -> Option<SortKey> {
    let object = resource.as_object()?;
    let container = match &path.urn {
        Some(urn) => find_ci(object, urn)?.1.as_object()?,
        None => object,
    };
    let mut value = find_ci(container, &path.name)?.1;
    if let Value::Array(items) = value {
        value = items
            .iter()
            .find(|i| i.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?;
    }
    if let Some(sub) = &path.sub_attr {
        value = find_ci(value.as_object()?, sub)?.1;
    } else if let Value::Object(inner) = value {
        value = find_ci(inner, "value")?.1;
    }
    match value {
        Value::String(text) => Some(SortKey::Text(text.to_lowercase())),
        Value::Number(n) => n.as_f64().map(SortKey::Number),
        Value::Bool(b) => Some(SortKey::Text(b.to_string())),
        _ => None,
    }
}

fn find_ci<'a>(map: &'a Map<String, Value>, name: &str) -> Option<(&'a String, &'a Value)> {
    map.get_key_value(name)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
}

fn extension_key<'a>(map: &'a Map<String, Value>, path: &AttrPath) -> Option<&'a String> {
    let urn = path.urn.as_deref()?;
    find_ci(map, urn).map(|(k, _)| k)
}

fn project(resource: Value, projection: &Projection) -> Value {
    let Value::Object(mut src) = resource else {
        return resource;
    };
    if !projection.attributes.is_empty() {
        let mut out = Map::new();
        // Always returned (RFC 7643 §7 "returned": "always").
        for key in ["schemas", "id", "meta"] {
            if let Some(v) = src.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        for path in &projection.attributes {
            include(&src, &mut out, path);
        }
        src = out;
    }
    for path in &projection.excluded {
        exclude(&mut src, path);
    }
    Value::Object(src)
}

fn include(src: &Map<String, Value>, out: &mut Map<String, Value>, path: &AttrPath) {
    let (from, to) = if path.is_extension() {
        let Some(ext_key) = extension_key(src, path) else {
            return;
        };
        let Some(Value::Object(from)) = src.get(ext_key) else {
            return;
        };
        let slot = out
            .entry(ext_key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(to) = slot else { return };
        (from, to)
    } else {
        (src, out)
    };
    let Some((key, value)) = find_ci(from, &path.name) else {
        return;
    };
    let Some(sub) = &path.sub_attr else {
        to.insert(key.clone(), value.clone());
        return;
    };
    match value {
        Value::Object(obj) => {
            if let Some((sk, sv)) = find_ci(obj, sub) {
                let slot = to
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(o) = slot {
                    o.insert(sk.clone(), sv.clone());
                }
            }
        }
        Value::Array(items) => {
            let slot = to.entry(key.clone()).or_insert_with(|| {
                Value::Array(items.iter().map(|_| Value::Object(Map::new())).collect())
            });
            if let Value::Array(out_items) = slot {
                for (item, out_item) in items.iter().zip(out_items.iter_mut()) {
                    if let (Some((sk, sv)), Value::Object(o)) =
                        (item.as_object().and_then(|m| find_ci(m, sub)), out_item)
                    {
                        o.insert(sk.clone(), sv.clone());
                    }
                }
            }
        }
        _ => {}
    }
}

fn exclude(src: &mut Map<String, Value>, path: &AttrPath) {
    let container = if path.is_extension() {
        let Some(ext_key) = extension_key(src, path).cloned() else {
            return;
        };
        match src.get_mut(&ext_key) {
            Some(Value::Object(ext)) => ext,
            _ => return,
        }
    } else {
        if path.sub_attr.is_none()
            && ["schemas", "id", "meta"]
                .iter()
                .any(|k| path.name.eq_ignore_ascii_case(k))
        {
            return;
        }
        src
    };
    let Some(key) = find_ci(container, &path.name).map(|(k, _)| k.clone()) else {
        return;
    };
    match &path.sub_attr {
        None => {
            container.remove(&key);
        }
        Some(sub) => {
            let strip = |obj: &mut Map<String, Value>| {
                if let Some(k) = find_ci(obj, sub).map(|(k, _)| k.clone()) {
                    obj.remove(&k);
                }
            };
            match container.get_mut(&key) {
                Some(Value::Object(obj)) => strip(obj),
                Some(Value::Array(items)) => items
                    .iter_mut()
                    .filter_map(Value::as_object_mut)
                    .for_each(strip),
                _ => {}
            }
        }
    }
}

async fn list(state: AppState, kind: Kind, base: Base, uri: Uri) -> ApiResult {
    let params = list_params(&uri)?;
    list_with(&state, &[kind], &base, params)
}

/// POST `/.search` (RFC 7644 §3.4.3): the query parameters as a JSON body.
fn search_params(headers: &HeaderMap, body: &Bytes) -> Result<ListParams, ScimError> {
    let body = json_object_body(headers, body)?;
    let text = |name: &str| -> Option<String> {
        match find_ci(&body, name).map(|(_, v)| v) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let pairs: Vec<(String, String)> = [
        "filter",
        "startIndex",
        "count",
        "attributes",
        "excludedAttributes",
        "sortBy",
        "sortOrder",
    ]
    .iter()
    .filter_map(|name| text(name).map(|v| ((*name).to_owned(), v)))
    .collect();
    params_from_pairs(&pairs)
}

macro_rules! search_handler {
    ($name:ident, $kinds:expr) => {
        async fn $name(
            State(state): State<AppState>,
            base: Base,
            headers: HeaderMap,
            body: Bytes,
        ) -> ApiResult {
            let params = search_params(&headers, &body)?;
            list_with(&state, $kinds, &base, params)
        }
    };
}

search_handler!(search_users, &[Kind::User]);
search_handler!(search_groups, &[Kind::Group]);
search_handler!(search_all, &[Kind::User, Kind::Group]);

/// One page of the resources of `kinds` (in that order) that match the filter.
fn list_with(state: &AppState, kinds: &[Kind], base: &Base, params: ListParams) -> ApiResult {
    let filter = params
        .filter
        .as_deref()
        .map(filter::parse)
        .transpose()
        .map_err(|e| bad_request(scim_type::INVALID_FILTER, e.to_string()))?;
    // One resource type in creation order: the resources pages (using its indexes). Otherwise every
    // match is gathered, sorted when asked, then paged here.
    if let ([kind], None) = (kinds, &params.sort) {
        let (total, page) =
            state
                .resources
                .list(*kind, filter.as_ref(), params.start_index, params.count);
        let resources = page
            .into_iter()
            .map(|json| project(render(*kind, json, &base.0), &params.projection))
            .collect();
        return Ok(scim_json(
            StatusCode::OK,
            &list_response(total, params.start_index, resources),
        ));
    }
    let mut all = Vec::new();
    for kind in kinds {
        let (_, page) = state.resources.list(*kind, filter.as_ref(), 1, usize::MAX);
        all.extend(page.into_iter().map(|json| (*kind, json)));
    }
    if let Some((path, descending)) = &params.sort {
        // Resources without the attribute go last, whichever the order.
        all.sort_by(
            |(_, a), (_, b)| match (sort_key(a, path), sort_key(b, path)) {
                (Some(x), Some(y)) => {
                    let order = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                    if *descending { order.reverse() } else { order }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            },
        );
    }
    let total = all.len();
    let resources = all
        .into_iter()
        .skip(params.start_index - 1)
        .take(params.count)
        .map(|(kind, json)| project(render(kind, json, &base.0), &params.projection))
        .collect();
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, params.start_index, resources),
    ))
}

async fn get_one(state: AppState, kind: Kind, id: String, base: Base, uri: Uri) -> ApiResult {
    let projection = projection(&query_pairs(&uri)?)?;
    let json = state.resources.get(kind, &id).ok_or_else(|| {
        ScimError(ScimErrorBody::not_found(format!(
            "{} {id} not found",
            kind.resource_type()
        )))
    })?;
    // `meta` is always returned, so the projection keeps the version for the ETag.
    Ok(resource_response(
        StatusCode::OK,
        &project(render(kind, json, &base.0), &projection),
    ))
}

async fn create(
    state: AppState,
    kind: Kind,
    base: Base,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let attrs = json_object_body(&headers, &body)?;
    let resources = state.resources.clone();
    let json = spawn_write(async move { resources.create(kind, attrs).await }).await?;
    let json = render(kind, json, &base.0);
    let mut response = resource_response(StatusCode::CREATED, &json);
    if let Some(location) = json
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .and_then(|l| HeaderValue::from_str(l).ok())
    {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

async fn replace(
    state: AppState,
    kind: Kind,
    id: String,
    base: Base,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let attrs = json_object_body(&headers, &body)?;
    let resources = state.resources.clone();
    let if_match = if_match(&headers);
    let json = spawn_write(async move {
        resources
            .replace(kind, &id, attrs, if_match.as_deref())
            .await
    })
    .await?;
    Ok(resource_response(
        StatusCode::OK,
        &render(kind, json, &base.0),
    ))
}

async fn patch(
    state: AppState,
    kind: Kind,
    id: String,
    base: Base,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let request =
        PatchRequest::from_json(json_body(&headers, &body)?).map_err(ScimErrorBody::from)?;
    let resources = state.resources.clone();
    let if_match = if_match(&headers);
    let minimal = prefers_minimal(&headers);
    let reply = if minimal {
        Reply::WithoutMembers
    } else {
        Reply::Whole
    };
    let json = spawn_write(async move {
        resources
            .patch(kind, &id, request, if_match.as_deref(), reply)
            .await
    })
    .await?;
    let json = render(kind, json, &base.0);
    if minimal {
        // RFC 7644 §3.5.2 allows 204; the version still comes back as the ETag.
        let mut response = resource_response(StatusCode::NO_CONTENT, &json);
        *response.body_mut() = axum::body::Body::empty();
        response.headers_mut().remove(CONTENT_TYPE);
        response.headers_mut().insert(
            HeaderName::from_static("preference-applied"),
            HeaderValue::from_static("return=minimal"),
        );
        return Ok(response);
    }
    Ok(resource_response(StatusCode::OK, &json))
}

/// Whether the client asked for no body in the answer (`Prefer: return=minimal`, RFC 7240):
/// the engine does for group PATCHes, whose answer would otherwise carry every member.
fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
        })
    })
}

async fn delete(state: AppState, kind: Kind, id: String, headers: HeaderMap) -> ApiResult {
    let resources = state.resources.clone();
    let if_match = if_match(&headers);
    spawn_write(async move { resources.delete(kind, &id, if_match.as_deref()).await }).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A single resource, with its version as the `ETag` header (RFC 7644 §3.14).
fn resource_response(status: StatusCode, json: &Value) -> Response {
    let mut response = scim_json(status, json);
    if let Some(etag) = json
        .pointer("/meta/version")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// Per-resource-type handler wrappers, so routes stay plain fn items.
macro_rules! resource_handlers {
    ($kind:expr, $list:ident, $create:ident, $get:ident, $replace:ident, $patch:ident, $delete:ident) => {
        async fn $list(State(state): State<AppState>, base: Base, uri: Uri) -> ApiResult {
            list(state, $kind, base, uri).await
        }
        async fn $create(
            State(state): State<AppState>,
            base: Base,
            headers: HeaderMap,
            body: Bytes,
        ) -> ApiResult {
            create(state, $kind, base, headers, body).await
        }
        async fn $get(
            State(state): State<AppState>,
            Path(id): Path<String>,
            base: Base,
            uri: Uri,
        ) -> ApiResult {
            get_one(state, $kind, id, base, uri).await
        }
        async fn $replace(
            State(state): State<AppState>,
            Path(id): Path<String>,
            base: Base,
            headers: HeaderMap,
            body: Bytes,
        ) -> ApiResult {
            replace(state, $kind, id, base, headers, body).await
        }
        async fn $patch(
            State(state): State<AppState>,
            Path(id): Path<String>,
            base: Base,
            headers: HeaderMap,
            body: Bytes,
        ) -> ApiResult {
            patch(state, $kind, id, base, headers, body).await
        }
        async fn $delete(
            State(state): State<AppState>,
            Path(id): Path<String>,
            headers: HeaderMap,
        ) -> ApiResult {
            delete(state, $kind, id, headers).await
        }
    };
}

resource_handlers!(
    Kind::User,
    list_users,
    create_user,
    get_user,
    replace_user,
    patch_user,
    delete_user
);
resource_handlers!(
    Kind::Group,
    list_groups,
    create_group,
    get_group,
    replace_group,
    patch_group,
    delete_group
);

async fn service_provider_config(State(state): State<AppState>, base: Base) -> Response {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(
            &base.0,
            state.auth.as_ref().is_some_and(|a| a.bearer.is_some()),
            state.auth.as_ref().is_some_and(|a| a.basic.is_some()),
        ),
    )
}

async fn resource_types(base: Base) -> Response {
    let all = discovery::resource_types(&base.0);
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn resource_type(Path(name): Path<String>, base: Base) -> ApiResult {
    discovery::resource_type(&base.0, &name)
        .map(|rt| scim_json(StatusCode::OK, &rt))
        .ok_or_else(|| {
            ScimError(ScimErrorBody::not_found(format!(
                "resource type {name} not found"
            )))
        })
}

async fn schemas(base: Base) -> Response {
    let all = discovery::schemas(&base.0);
    scim_json(StatusCode::OK, &list_response(all.len(), 1, all))
}

async fn schema(Path(id): Path<String>, base: Base) -> ApiResult {
    discovery::schema(&base.0, &id)
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ScimError(ScimErrorBody::not_found(format!("schema {id} not found"))))
}

const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// POST `/Bulk` (RFC 7644 §3.7): operations in order, `bulkId` references resolved (in paths
/// and in data, such as group members created in the same request), `failOnErrors` honoured,
/// each result reported on its own.
async fn bulk(
    State(state): State<AppState>,
    base: Base,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if body.len() > discovery::BULK_MAX_PAYLOAD_SIZE {
        return Err(ScimError(ScimErrorBody::new(
            413,
            None,
            format!(
                "the bulk request is {} bytes; maxPayloadSize is {}",
                body.len(),
                discovery::BULK_MAX_PAYLOAD_SIZE
            ),
        )));
    }
    let mut request = json_object_body(&headers, &body)?;
    let schemas_ok = find_ci(&request, "schemas")
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|s| s.iter().any(|v| v == BULK_REQUEST_SCHEMA));
    if !schemas_ok {
        return Err(bad_request(
            scim_type::INVALID_SYNTAX,
            format!("schemas must list {BULK_REQUEST_SCHEMA}"),
        ));
    }
    let fail_on_errors = find_ci(&request, "failOnErrors")
        .and_then(|(_, v)| v.as_u64())
        .filter(|n| *n > 0);
    let operations = match request.remove("Operations") {
        Some(Value::Array(operations)) => operations,
        _ => {
            return Err(bad_request(
                scim_type::INVALID_SYNTAX,
                "Operations must be an array",
            ));
        }
    };
    if operations.len() > discovery::BULK_MAX_OPERATIONS {
        return Err(ScimError(ScimErrorBody::new(
            413,
            None,
            format!(
                "the bulk request has {} operations; maxOperations is {}",
                operations.len(),
                discovery::BULK_MAX_OPERATIONS
            ),
        )));
    }
    let resources = state.resources.clone();
    let base_url = base.0.clone();
    let results = spawn_write(async move {
        let mut bulk_ids: std::collections::HashMap<String, String> = Default::default();
        let mut results = Vec::with_capacity(operations.len());
        let mut errors = 0u64;
        for operation in operations {
            let result = bulk_operation(&resources, &base_url, operation, &mut bulk_ids).await;
            if result
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.starts_with('2'))
            {
                errors += 1;
            }
            results.push(result);
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
        }
        Ok(results)
    })
    .await?;
    Ok(scim_json(
        StatusCode::OK,
        &serde_json::json!({ "schemas": [BULK_RESPONSE_SCHEMA], "Operations": results }),
    ))
}

/// One operation of a bulk request; its result, success or error.
async fn bulk_operation(
    resources: &Resources,
    base: &str,
    operation: Value,
    bulk_ids: &mut std::collections::HashMap<String, String>,
) -> Value {
    let field = |name: &str| {
        operation
            .as_object()
            .and_then(|o| find_ci(o, name))
            .map(|(_, v)| v.clone())
    };
    let method = field("method")
        .and_then(|m| m.as_str().map(str::to_uppercase))
        .unwrap_or_default();
    let bulk_id = field("bulkId").and_then(|b| b.as_str().map(str::to_owned));
    let version = field("version").and_then(|v| v.as_str().map(str::to_owned));
    let path = field("path")
        .and_then(|p| p.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut result = Map::new();
    result.insert("method".into(), Value::String(method.clone()));
    if let Some(bulk_id) = &bulk_id {
        result.insert("bulkId".into(), Value::String(bulk_id.clone()));
    }
    let outcome: Result<(u16, Option<Value>), ScimErrorBody> = async {
        let (kind, id) = bulk_path(&path, bulk_ids)?;
        let mut data = field("data").unwrap_or(Value::Null);
        resolve_bulk_ids(&mut data, bulk_ids)?;
        let object = |data: Value| match data {
            Value::Object(map) => Ok(map),
            _ => Err(ScimErrorBody::bad_request(
                scim_type::INVALID_SYNTAX,
                "data must be a JSON object",
            )),
        };
        match (method.as_str(), id) {
            ("POST", None) => {
                let json = resources.create(kind, object(data)?).await?;
                if let (Some(bulk_id), Some(id)) =
                    (&bulk_id, json.get("id").and_then(Value::as_str))
                {
                    bulk_ids.insert(bulk_id.clone(), id.to_owned());
                }
                Ok((201, Some(json)))
            }
            ("PUT", Some(id)) => Ok((
                200,
                Some(
                    resources
                        .replace(kind, &id, object(data)?, version.as_deref())
                        .await?,
                ),
            )),
            ("PATCH", Some(id)) => {
                let request = PatchRequest::from_json(data).map_err(ScimErrorBody::from)?;
                Ok((
                    200,
                    Some(
                        // Only the location and version go in the Bulk answer.
                        resources
                            .patch(
                                kind,
                                &id,
                                request,
                                version.as_deref(),
                                Reply::WithoutMembers,
                            )
                            .await?,
                    ),
                ))
            }
            ("DELETE", Some(id)) => {
                resources.delete(kind, &id, version.as_deref()).await?;
                Ok((204, None))
            }
            _ => Err(ScimErrorBody::bad_request(
                scim_type::INVALID_SYNTAX,
                format!("{method} {path} is not a bulk operation this service performs"),
            )),
        }
    }
    .await;
    match outcome {
        Ok((status, json)) => {
            if let Some(json) = json {
                let json = render(kind_of(&path), json, base);
                if let Some(location) = json.pointer("/meta/location") {
                    result.insert("location".into(), location.clone());
                }
                if let Some(version) = json.pointer("/meta/version") {
                    result.insert("version".into(), version.clone());
                }
            }
            result.insert("status".into(), Value::String(status.to_string()));
        }
        Err(error) => {
            result.insert("status".into(), Value::String(error.status.to_string()));
            result.insert("response".into(), error.to_json());
        }
    }
    Value::Object(result)
}

fn kind_of(path: &str) -> Kind {
    if path
        .trim_start_matches('/')
        .to_ascii_lowercase()
        .starts_with("groups")
    {
        Kind::Group
    } else {
        Kind::User
    }
}

/// `/Users`, `/Groups/{id}`, `/Users/bulkId:{bulkId}` → kind and resolved id.
fn bulk_path(
    path: &str,
    bulk_ids: &std::collections::HashMap<String, String>,
) -> Result<(Kind, Option<String>), ScimErrorBody> {
    let trimmed = path.trim().trim_start_matches('/');
    let (resource, id) = match trimmed.split_once('/') {
        Some((resource, id)) => (resource, Some(id)),
        None => (trimmed, None),
    };
    let kind = if resource.eq_ignore_ascii_case("Users") {
        Kind::User
    } else if resource.eq_ignore_ascii_case("Groups") {
        Kind::Group
    } else {
        return Err(ScimErrorBody::bad_request(
            scim_type::INVALID_PATH,
            format!("unknown bulk path {path}"),
        ));
    };
    let id = match id {
        Some(id) => Some(match id.strip_prefix("bulkId:") {
            Some(bulk_id) => bulk_ids.get(bulk_id).cloned().ok_or_else(|| {
                ScimErrorBody::new(
                    409,
                    Some(scim_type::INVALID_VALUE),
                    format!("bulkId {bulk_id} is not defined by an earlier operation"),
                )
            })?,
            None => id.to_owned(),
        }),
        None => None,
    };
    Ok((kind, id))
}

/// Replaces every `"bulkId:xyz"` string in `data` with the id created for `xyz`.
fn resolve_bulk_ids(
    data: &mut Value,
    bulk_ids: &std::collections::HashMap<String, String>,
) -> Result<(), ScimErrorBody> {
    match data {
        Value::String(text) => {
            if let Some(bulk_id) = text.strip_prefix("bulkId:") {
                let id = bulk_ids.get(bulk_id).ok_or_else(|| {
                    ScimErrorBody::new(
                        409,
                        Some(scim_type::INVALID_VALUE),
                        format!("bulkId {bulk_id} is not defined by an earlier operation"),
                    )
                })?;
                *text = id.clone();
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| resolve_bulk_ids(item, bulk_ids)),
        Value::Object(fields) => fields
            .values_mut()
            .try_for_each(|value| resolve_bulk_ids(value, bulk_ids)),
        _ => Ok(()),
    }
}

async fn method_not_allowed() -> ScimError {
    ScimError(ScimErrorBody::new(
        405,
        None,
        "method not allowed on this endpoint",
    ))
}

async fn not_found(uri: Uri) -> ScimError {
    ScimError(ScimErrorBody::not_found(format!(
        "no endpoint at {}",
        uri.path()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bearer_parsing_and_verification() {
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("bEaReR   abc "), Some("abc"));
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("Bearer"), None);
        assert_eq!(parse_bearer("Bearer   "), None);
        let auth = Credentials::new(Some("s3cret"), None).unwrap();
        assert!(auth.verify(Some("Bearer s3cret")).is_ok());
        assert_eq!(
            auth.verify(Some("Bearer s3cre")),
            Err("invalid bearer token")
        );
        assert!(auth.verify(Some("Bearer S3cret")).is_err());
        assert_eq!(auth.verify(None), Err("missing credentials"));
        assert_eq!(
            auth.verify(Some("Basic YWRtaW46czNjcmV0")),
            Err("unsupported authorization scheme")
        );
        let basic = Credentials::new(None, Some(("admin", "s3cret"))).unwrap();
        assert!(basic.verify(Some("Basic YWRtaW46czNjcmV0")).is_ok());
        assert_eq!(
            basic.verify(Some("basic YWRtaW46d3Jvbmc=")),
            Err("invalid user name or password")
        );
        assert!(Credentials::new(None, None).is_none());
    }

    #[test]
    fn projection_includes_and_excludes() {
        let ent = scimbridge_scim::ENTERPRISE_USER_SCHEMA;
        let user = json!({
            "schemas": ["x"], "id": "1", "userName": "a", "title": "t",
            "name": {"givenName": "G", "familyName": "F"},
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x"}],
            ent: {"department": "D", "costCenter": "C"},
            "meta": {"version": "W/\"1\""}
        });
        let p = Projection {
            attributes: [
                "userName",
                "name.givenName",
                "emails.value",
                &format!("{ent}:department"),
            ]
            .iter()
            .map(|s| filter::parse_attr_path(s).unwrap())
            .collect(),
            excluded: vec![],
        };
        assert_eq!(
            project(user.clone(), &p),
            json!({
                "schemas": ["x"], "id": "1", "meta": {"version": "W/\"1\""},
                "userName": "a", "name": {"givenName": "G"},
                "emails": [{"value": "a@x"}, {"value": "b@x"}],
                ent: {"department": "D"}
            })
        );
        let p = Projection {
            attributes: vec![],
            excluded: ["title", "emails.type", "id", &format!("{ent}:costCenter")]
                .iter()
                .map(|s| filter::parse_attr_path(s).unwrap())
                .collect(),
        };
        let out = project(user, &p);
        assert!(out.get("title").is_none());
        assert_eq!(out["id"], "1");
        assert_eq!(out["emails"][0], json!({"value": "a@x"}));
        assert_eq!(out[ent], json!({"department": "D"}));
    }
}
