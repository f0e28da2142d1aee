//! The admin REST API, served by `scimbridge serve` under `/api`: data stores, connections (in
//! PingFederate's shape, see [`shape`]), the SCIM field catalogue, channel status, cycles, audit
//! events, held operations, and actions (plan, run now, approve, discard, reset). Every endpoint
//! requires the administrator (HTTP Basic) or an API token (Bearer).

pub mod auth;
pub mod shape;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scimbridge_engine::state::Store;
use scimbridge_model::{ChannelKey, Connection, FieldTarget, ScimField};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::context::DataDir;
use crate::ops::Refused;
use crate::ops::apply::{ActivationRefused, apply_objects, new_references, refusal_problems};
use crate::ops::channels::{Reset, channel_key};
use crate::ops::service::RunNow;
use crate::ops::status::{channel_status, format_utc, recent_cycles};
use crate::ops::{delete, held, plan, service};
use auth::{Attempts, Refusal, authenticate};

#[derive(Clone)]
pub struct Admin {
    dir: Arc<DataDir>,
    attempts: Attempts,
    run_now: RunNow,
}

impl Admin {
    pub fn new(dir: Arc<DataDir>, run_now: RunNow, attempts: Attempts) -> Admin {
        Admin {
            dir,
            attempts,
            run_now,
        }
    }

    /// The same authentication as the API, in front of another router (`/metrics`).
    pub fn protect(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), require_caller))
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/api/fields", get(fields))
            .route(
                "/api/data-stores",
                get(list_data_stores).post(create_data_store),
            )
            .route(
                "/api/data-stores/{name}",
                get(get_data_store)
                    .put(replace_data_store)
                    .delete(delete_data_store),
            )
            .route(
                "/api/connections",
                get(list_connections).post(create_connection),
            )
            .route(
                "/api/connections/{name}",
                get(get_connection)
                    .put(replace_connection)
                    .delete(delete_connection),
            )
            .route("/api/connections/{name}/status", get(status))
            .route("/api/connections/{name}/cycles", get(cycles))
            .route("/api/connections/{name}/held", get(held))
            .route("/api/connections/{name}/held/approve", post(approve))
            .route("/api/connections/{name}/held/discard", post(discard))
            .route("/api/connections/{name}/plan", post(plan))
            .route("/api/connections/{name}/run", post(run_now))
            .route(
                "/api/connections/{name}/channels/{channel}/reset",
                post(reset_channel),
            )
            .route("/api/audit-events", get(audit_events))
            .route("/api/openapi.json", get(openapi))
            .route("/api/{*rest}", axum::routing::any(no_such_endpoint))
            .layer(middleware::from_fn_with_state(self.clone(), require_caller))
            .with_state(self)
    }
}

/// The OpenAPI 3 description of the API, built from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "scimbridge admin API", description = "Data stores, provisioning connections and their operation."),
    paths(fields, list_data_stores, get_data_store, create_data_store, replace_data_store, delete_data_store, list_connections, get_connection, create_connection, replace_connection, delete_connection, status, cycles, held, approve, discard, plan, run_now, reset_channel, audit_events),
    modifiers(&Security)
)]
struct ApiDescription;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "administrator",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDescription as utoipa::OpenApi>::openapi())
}

/// An API error: a status and the problems, as `{"status": …, "problems": […]}`.
struct ApiError {
    status: StatusCode,
    problems: Vec<String>,
}

impl ApiError {
    fn new(status: StatusCode, problem: impl Into<String>) -> ApiError {
        ApiError {
            status,
            problems: vec![problem.into()],
        }
    }

    fn not_found(what: &str, name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("no {what} named \"{name}\""))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": self.status.as_u16(), "problems": self.problems})),
        )
            .into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:#}"))
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        let status = match &refused {
            Refused::NotFound { .. } => StatusCode::NOT_FOUND,
            Refused::Conflict(_) => StatusCode::CONFLICT,
            Refused::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, refused.to_string())
    }
}

impl From<scimbridge_engine::state::StoreError> for ApiError {
    fn from(error: scimbridge_engine::state::StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

async fn no_such_endpoint() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint (see /api/openapi.json)",
    )
}

/// A change asked for by another site's page (a browser sending remembered Basic credentials
/// along with a cross-site form) is refused.
fn cross_site(request: &Request) -> bool {
    let headers = request.headers();
    if matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) {
        return false;
    }
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site" || site == "same-site")
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            host != Some(origin_host)
        }
        None => false,
    }
}

async fn require_caller(
    State(admin): State<Admin>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if cross_site(&request) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "a change from another site's page is refused",
        )
        .into_response();
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authenticate(
        &admin.dir.store,
        &admin.attempts,
        client.ip(),
        authorization,
    )
    .await
    {
        Ok(_) => next.run(request).await,
        Err(Refusal::Unauthenticated) => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication required: the administrator (HTTP Basic) or an API token (Bearer)",
            )
            .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scimbridge\""),
            );
            response
        }
        Err(Refusal::TooManyAttempts(wait)) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong passwords for this user name from this address; wait before trying again, or use an API token",
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&(wait.as_secs() + 1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/fields",
    tag = "fields",
    summary = "The SCIM fields a channel can map",
    responses((status = 200, description = "Catalogue", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn fields() -> Json<Value> {
    Json(Value::Array(
        ScimField::ALL
            .iter()
            .map(|field| {
                let target = field.target();
                // Whether the SCIM attribute is multi-valued (RFC 7643): the field is then the
                // value of one type of it (`emails[type eq "work"].value`).
                let multi_valued = matches!(target, FieldTarget::Typed { .. });
                let notes = match field {
                    ScimField::UserName => "required; the unique user identifier by default",
                    ScimField::Password => "write-only; use with createOnly and masked",
                    ScimField::Active => "read as a boolean; the account status algorithm sets it",
                    _ => "",
                };
                json!({
                    "name": field.name(),
                    "label": field.label(),
                    "scimPath": target.path(),
                    "required": field.required(),
                    "multiValued": multi_valued,
                    "notes": notes,
                })
            })
            .collect(),
    ))
}

#[utoipa::path(
    get,
    path = "/api/data-stores",
    tag = "data-stores",
    summary = "Every data store",
    responses((status = 200, description = "Data stores", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn list_data_stores(State(admin): State<Admin>) -> ApiResult {
    let stores = admin.dir.store.data_stores().await?;
    Ok(Json(
        stores
            .iter()
            .map(shape::data_store_to_api)
            .collect::<Vec<_>>(),
    )
    .into_response())
}

#[utoipa::path(
    get,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "One data store",
    params(("name" = String, Path, description = "The data store name")),
    responses((status = 200, description = "The data store", body = Object), (status = 404, description = "No such data store", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn get_data_store(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let stores = admin.dir.store.data_stores().await?;
    let found = stores
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found("data store", &name))?;
    Ok(Json(shape::data_store_to_api(found)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/data-stores",
    tag = "data-stores",
    summary = "Create a data store",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Object), (status = 409, description = "Exists", body = Object), (status = 422, description = "Invalid; every problem listed", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn create_data_store(State(admin): State<Admin>, body: Body) -> ApiResult {
    let data_store = shape::data_store_from_api(body.0).map_err(unprocessable)?;
    if admin
        .dir
        .store
        .data_stores()
        .await?
        .iter()
        .any(|d| d.name == data_store.name)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a data store named \"{}\" exists; PUT replaces it",
                data_store.name
            ),
        ));
    }
    save_data_store(&admin, data_store, StatusCode::CREATED).await
}

#[utoipa::path(
    put,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "Replace a data store; omitted secrets are kept",
    params(("name" = String, Path, description = "The data store name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Saved", body = Object), (status = 404, description = "No such data store", body = Object), (status = 422, description = "Invalid; every problem listed", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn replace_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: Body,
) -> ApiResult {
    // The name in the path wins; the body need not repeat it.
    let mut data_store =
        shape::data_store_from_api(with_name(body.0, &name)).map_err(unprocessable)?;
    if !admin
        .dir
        .store
        .data_stores()
        .await?
        .iter()
        .any(|d| d.name == name)
    {
        return Err(ApiError::not_found("data store", &name));
    }
    data_store.name = name;
    save_data_store(&admin, data_store, StatusCode::OK).await
}

async fn save_data_store(
    admin: &Admin,
    mut data_store: scimbridge_model::DataStore,
    status: StatusCode,
) -> ApiResult {
    let name = data_store.name.clone();
    let mut stored = admin
        .dir
        .store
        .data_stores()
        .await?
        .into_iter()
        .find(|d| d.name == name);
    let mut none = Vec::new();
    let stored_fields = match &mut stored {
        Some(stored) => stored.secret_fields_mut(),
        None => std::mem::take(&mut none),
    };
    refuse_new_references(data_store.secret_fields_mut(), stored_fields, "ldap")?;
    apply_objects(&admin.dir.store, vec![data_store], Vec::new())
        .await
        .map_err(rejected)?;
    let stores = admin.dir.store.data_stores().await?;
    let saved = stores
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found("data store", &name))?;
    Ok((status, Json(shape::data_store_to_api(saved))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "Delete a data store no channel reads",
    params(("name" = String, Path, description = "The data store name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such data store", body = Object), (status = 409, description = "Read by a channel", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn delete_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    delete::delete_data_store(&admin.dir.store, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/api/connections",
    tag = "connections",
    summary = "Every connection, secrets left out",
    responses((status = 200, description = "Connections", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn list_connections(State(admin): State<Admin>) -> ApiResult {
    let connections = admin.dir.store.connections().await?;
    Ok(Json(
        connections
            .iter()
            .map(shape::connection_to_api)
            .collect::<Vec<_>>(),
    )
    .into_response())
}

async fn stored_connection(admin: &Admin, name: &str) -> Result<Connection, ApiError> {
    admin
        .dir
        .store
        .connection(name)
        .await?
        .ok_or_else(|| ApiError::not_found("connection", name))
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "One connection, secrets left out",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "The connection", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn get_connection(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    Ok(Json(shape::connection_to_api(&connection)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/connections",
    tag = "connections",
    summary = "Create a connection; an active one is checked first",
    request_body(content = Object, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Object), (status = 409, description = "Exists", body = Object), (status = 422, description = "Invalid, or activation refused; every problem listed", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn create_connection(State(admin): State<Admin>, body: Body) -> ApiResult {
    let connection = shape::connection_from_api(body.0).map_err(unprocessable)?;
    if admin
        .dir
        .store
        .connection(&connection.name)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "a connection named \"{}\" exists; PUT replaces it",
                connection.name
            ),
        ));
    }
    save_connection(&admin, connection, StatusCode::CREATED).await
}

#[utoipa::path(
    put,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "Replace a connection; omitted secrets are kept; an active one is checked first",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Saved", body = Object), (status = 404, description = "No such connection", body = Object), (status = 422, description = "Invalid, or activation refused; every problem listed", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn replace_connection(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: Body,
) -> ApiResult {
    let mut connection =
        shape::connection_from_api(with_name(body.0, &name)).map_err(unprocessable)?;
    stored_connection(&admin, &name).await?;
    connection.name = name;
    save_connection(&admin, connection, StatusCode::OK).await
}

/// Saves through the same path as `scimbridge apply`: validated, omitted secrets kept, and an
/// active connection's target and LDAP data stores checked first.
async fn save_connection(
    admin: &Admin,
    mut connection: Connection,
    status: StatusCode,
) -> ApiResult {
    let name = connection.name.clone();
    let stored = admin.dir.store.connection(&name).await?;
    let mut stored_secrets = stored
        .map(|c| c.target)
        .unwrap_or_else(|| scimbridge_model::TargetSettings::new(String::new()));
    refuse_new_references(
        connection.target.secret_fields_mut(),
        stored_secrets.secret_fields_mut(),
        "outboundProvision.targetSettings",
    )?;
    apply_objects(&admin.dir.store, Vec::new(), vec![connection])
        .await
        .map_err(rejected)?;
    let saved = stored_connection(admin, &name).await?;
    Ok((status, Json(shape::connection_to_api(&saved))).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "Delete an inactive connection with its channels' state",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such connection", body = Object), (status = 409, description = "Active", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn delete_connection(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    delete::delete_connection(&admin.dir.store, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `env:` and `file:` secrets make the server read its own environment or files: through the
/// API only those already stored are accepted (a document read and sent back), new ones come
/// from configuration files applied on the server.
fn refuse_new_references<'a>(
    incoming: impl IntoIterator<Item = (&'static str, &'a mut Option<scimbridge_model::Secret>)>,
    stored: impl IntoIterator<Item = (&'static str, &'a mut Option<scimbridge_model::Secret>)>,
    at: &str,
) -> Result<(), ApiError> {
    let problems: Vec<String> = new_references(incoming, stored)
        .into_iter()
        .map(|name| {
            format!(
                "{at}.{}: env: and file: references are taken only from configuration files applied on the server (scimbridge apply); send the secret itself",
                shape::camel_case(name)
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(unprocessable(problems))
    }
}

/// A body's `name` set from the path.
fn with_name(mut body: Value, name: &str) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.insert("name".into(), Value::String(name.to_owned()));
    }
    body
}

/// A JSON body; a malformed one is a JSON error like every other.
struct Body(Value);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body, ApiError> {
        match Json::<Value>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// Query parameters; malformed ones are a JSON error like every other.
struct Params<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for Params<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Params<T>, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Params(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

fn unprocessable(problems: Vec<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        problems,
    }
}

/// A configuration `apply_config` refused: every problem, one per entry.
fn rejected(error: anyhow::Error) -> ApiError {
    let activation = error.downcast_ref::<ActivationRefused>().is_some();
    let problems = refusal_problems(&error)
        .into_iter()
        .map(|p| {
            if activation {
                format!("activation refused: {p}")
            } else {
                p
            }
        })
        .collect();
    unprocessable(problems)
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}/status",
    tag = "operations",
    summary = "Each channel's state",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Status", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn status(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let mut channels = Vec::new();
    for channel in &connection.channels {
        let key = ChannelKey::new(&connection.name, &channel.name);
        let found = channel_status(&admin.dir.store, &key).await?;
        channels.push(json!({
            "name": channel.name,
            "active": connection.active && channel.active,
            "users": found.counts.users,
            "failed": found.counts.failed,
            "blocked": found.counts.blocked,
            "held": found.held,
            "targetUnreachable": found.last_cycle.as_ref().is_some_and(|c| c.summary.target_unreachable),
            "changeDetection": found.detection,
            "lastCycle": found.last_cycle.as_ref().map(cycle_json),
        }));
    }
    Ok(
        Json(json!({"name": connection.name, "active": connection.active, "channels": channels}))
            .into_response(),
    )
}

fn cycle_json(cycle: &scimbridge_engine::state::CycleRecord) -> Value {
    json!({
        "id": cycle.id,
        "channel": cycle.channel.channel,
        "startedAt": format_utc(cycle.started_at_ms),
        "finishedAt": cycle.finished_at_ms.map(format_utc),
        "summary": shape::camel_json(serde_json::to_value(&cycle.summary).unwrap_or_default()),
        "error": cycle.error,
    })
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}/cycles",
    tag = "operations",
    summary = "The last cycles, newest first",
    params(("name" = String, Path, description = "The connection name"), ("limit" = Option<u32>, Query, description = "At most this many (20)")),
    responses((status = 200, description = "Cycles", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn cycles(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<Limit>,
) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let limit = query.limit.unwrap_or(20).min(1000);
    let cycles = recent_cycles(&admin.dir.store, &connection, limit).await?;
    Ok(Json(cycles.iter().map(cycle_json).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
struct Who {
    who: String,
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/audit-events",
    tag = "operations",
    summary = "One user's or group's provisioning events",
    params(("who" = String, Query, description = "User name, group name, DN, GUID or target id"), ("limit" = Option<u32>, Query, description = "At most this many (100)")),
    responses((status = 200, description = "Events, oldest first", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn audit_events(State(admin): State<Admin>, Params(query): Params<Who>) -> ApiResult {
    let events = admin
        .dir
        .store
        .audit_events_of(&query.who, query.limit.unwrap_or(100).min(10_000))
        .await?;
    let events: Vec<Value> = events
        .iter()
        .map(|e| shape::camel_json(serde_json::to_value(e).unwrap_or_default()))
        .collect();
    Ok(Json(events).into_response())
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}/held",
    tag = "operations",
    summary = "Operations the mass-change guard holds",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Held operations", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn held(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let mut all = Vec::new();
    for (channel, operation) in held::held_operations(&admin.dir.store, &connection).await? {
        let mut value = shape::camel_json(serde_json::to_value(&operation).unwrap_or_default());
        if let Some(map) = value.as_object_mut() {
            map.insert("channel".into(), Value::String(channel));
        }
        all.push(value);
    }
    Ok(Json(all).into_response())
}

/// Which held operations a decision is about: the GUIDs the operator reviewed, or all.
#[derive(Debug, Deserialize, Default)]
struct Decision {
    guids: Option<Vec<String>>,
}

async fn decide(admin: &Admin, name: &str, body: &[u8], approve: bool) -> ApiResult {
    let connection = stored_connection(admin, name).await?;
    // No body: every held operation.
    let decision: Decision = if body.iter().all(u8::is_ascii_whitespace) {
        Decision::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"guids\": [\"…\"]}}: {e}"),
            )
        })?
    };
    let chosen = |_channel: &str, guid: &str| {
        decision
            .guids
            .as_ref()
            .is_none_or(|guids| guids.iter().any(|g| g == guid))
    };
    let count = held::decide_reviewed(&admin.dir.store, &connection, chosen, approve).await?;
    Ok(Json(if approve {
        json!({"approved": count, "appliedBy": "the next cycle"})
    } else {
        json!({"discarded": count})
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/held/approve",
    tag = "operations",
    summary = "Approve the held operations (those of `guids` when given)",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Object, content_type = "application/json", description = "Optional: {\"guids\": [\"…\"]}"),
    responses((status = 200, description = "Approved", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn approve(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    decide(&admin, &name, &body, true).await
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/held/discard",
    tag = "operations",
    summary = "Discard the held operations (those of `guids` when given)",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Object, content_type = "application/json", description = "Optional: {\"guids\": [\"…\"]}"),
    responses((status = 200, description = "Discarded", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn discard(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult {
    decide(&admin, &name, &body, false).await
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/plan",
    tag = "operations",
    summary = "What the next cycle would do; writes nothing",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Plan per channel", body = Object), (status = 404, description = "No such connection", body = Object), (status = 422, description = "The data store cannot be read", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn plan(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let plans = plan::plan_connection(&admin.dir, &connection)
        .await
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut channels = serde_json::Map::new();
    for planned in plans {
        let mut value = serde_json::to_value(&planned.plan).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("source_read".into(), Value::String(planned.read));
        }
        channels.insert(planned.channel, shape::camel_json(value));
    }
    Ok(Json(Value::Object(channels)).into_response())
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/run",
    tag = "operations",
    summary = "Start a cycle of each running channel now",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 202, description = "Started", body = Object), (status = 404, description = "No such connection", body = Object), (status = 409, description = "No channel runs", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn run_now(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let run = service::run_now(&admin.run_now, &connection)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"started": run.started, "notRunning": run.not_running})),
    )
        .into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResetBody {
    #[serde(default)]
    all_state: bool,
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/channels/{channel}/reset",
    tag = "operations",
    summary = "Forget a channel's sync state, or all its state",
    params(("name" = String, Path, description = "The connection name"), ("channel" = String, Path, description = "The channel name")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Forgotten", body = Object), (status = 404, description = "No such connection or channel", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
async fn reset_channel(
    State(admin): State<Admin>,
    UrlPath((name, channel)): UrlPath<(String, String)>,
    body: Option<Json<ResetBody>>,
) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let key = channel_key(&connection, &channel)?;
    let all_state = body.map(|b| b.0.all_state).unwrap_or_default();
    let reset = if all_state {
        Reset::AllState
    } else {
        Reset::SyncState
    };
    crate::ops::channels::reset(&admin.dir.store, &key, reset).await?;
    Ok(Json(json!({
        "channel": channel,
        "forgot": if all_state { "every record and the sync state" } else { "the sync state" },
        "nextCycle": "a full read",
    }))
    .into_response())
}
