//! The admin REST API, served by `scimbridge serve` under `/api`: data stores, connections (in
//! PingFederate's shape, see [`shape`]), the SCIM field catalogue, channel status, cycles, audit
//! events, held operations, and actions (plan, run now, approve, discard, reset). Every endpoint
//! requires the administrator (HTTP Basic) or an API token (Bearer).
//!
//! One module per resource holds its handlers; this one holds the router, the authentication in
//! front of it, the error answer and the extractors every handler shares. The work itself is
//! done by [`crate::ops`].

mod audit;
mod connections;
mod data_stores;
mod documents;
mod fields;
mod openapi;
mod operations;
mod plan;
pub mod shape;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model::Connection;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{Attempts, Refusal, authenticate};
use crate::context::DataDir;
use crate::ops::Refused;
use crate::ops::configure::{ActivationRefused, new_references, refusal_problems};
use crate::ops::service::RunNow;

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
            .route("/api/fields", get(fields::fields))
            .route(
                "/api/data-stores",
                get(data_stores::list_data_stores).post(data_stores::create_data_store),
            )
            .route(
                "/api/data-stores/{name}",
                get(data_stores::get_data_store)
                    .put(data_stores::replace_data_store)
                    .delete(data_stores::delete_data_store),
            )
            .route(
                "/api/connections",
                get(connections::list_connections).post(connections::create_connection),
            )
            .route(
                "/api/connections/{name}",
                get(connections::get_connection)
                    .put(connections::replace_connection)
                    .delete(connections::delete_connection),
            )
            .route("/api/connections/{name}/status", get(operations::status))
            .route("/api/connections/{name}/cycles", get(operations::cycles))
            .route("/api/connections/{name}/held", get(operations::held))
            .route(
                "/api/connections/{name}/held/approve",
                post(operations::approve),
            )
            .route(
                "/api/connections/{name}/held/discard",
                post(operations::discard),
            )
            .route("/api/connections/{name}/plan", post(plan::plan))
            .route("/api/connections/{name}/run", post(operations::run_now))
            .route(
                "/api/connections/{name}/channels/{channel}/reset",
                post(operations::reset_channel),
            )
            .route("/api/audit-events", get(audit::audit_events))
            .route("/api/openapi.json", get(openapi::openapi))
            .route("/api/{*rest}", axum::routing::any(no_such_endpoint))
            .layer(middleware::from_fn_with_state(self.clone(), require_caller))
            .with_state(self)
    }
}

/// Every error the API answers: its HTTP status again, and each problem found, naming the field
/// it is about.
#[derive(Debug, Serialize, ToSchema)]
struct Problems {
    #[schema(example = 422)]
    status: u16,
    #[schema(example = json!(["outboundProvision.channels[0]: attributeMapping: each item needs fieldName"]))]
    problems: Vec<String>,
}

/// An API error: a status and the problems, answered as [`Problems`].
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
        let body = Problems {
            status: self.status.as_u16(),
            problems: self.problems,
        };
        (self.status, Json(body)).into_response()
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
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            scimbridge_engine::state::full_message(&error),
        )
    }
}

/// A handler's answer: its typed body, or the problems.
type ApiResult<T> = Result<T, ApiError>;

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

async fn stored_connection(admin: &Admin, name: &str) -> Result<Connection, ApiError> {
    admin
        .dir
        .store
        .connection(name)
        .await?
        .ok_or_else(|| ApiError::not_found("connection", name))
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
struct Body<T = Value>(T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// A JSON body that may be left out (no `Content-Type`); a malformed one is a JSON error too.
impl<T: DeserializeOwned, S: Send + Sync> axum::extract::OptionalFromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Body<T>>, ApiError> {
        match <Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state).await
        {
            Ok(value) => Ok(value.map(|Json(value)| Body(value))),
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

/// A configuration `save_configuration` refused: every problem, one per entry.
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
