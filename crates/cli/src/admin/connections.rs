//! Connections, in PingFederate's shape: `/api/connections`.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model as model;

use super::documents::Connection;
use super::{
    Admin, ApiError, ApiResult, Body, Problems, refuse_new_references, rejected, shape,
    stored_connection, unprocessable, with_name,
};
use crate::ops::configure::save_objects;
use crate::ops::delete;

#[utoipa::path(
    get,
    path = "/api/connections",
    tag = "connections",
    summary = "Every connection, secrets left out",
    responses((status = 200, description = "Connections", body = Vec<Connection>))
)]
pub(super) async fn list_connections(
    State(admin): State<Admin>,
) -> ApiResult<Json<Vec<Connection>>> {
    let connections = admin.dir.store.connections().await?;
    Ok(Json(connections.iter().map(Connection::from).collect()))
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "One connection, secrets left out",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "The connection", body = Connection), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn get_connection(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Connection>> {
    let connection = stored_connection(&admin, &name).await?;
    Ok(Json((&connection).into()))
}

#[utoipa::path(
    post,
    path = "/api/connections",
    tag = "connections",
    summary = "Create a connection; an active one is checked first",
    request_body(content = Connection, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Connection), (status = 400, description = "Malformed JSON", body = Problems), (status = 415, description = "Not application/json", body = Problems), (status = 409, description = "Exists", body = Problems), (status = 422, description = "Invalid, or activation refused; every problem listed", body = Problems))
)]
pub(super) async fn create_connection(
    State(admin): State<Admin>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Connection>)> {
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
    let saved = save_connection(&admin, connection).await?;
    Ok((StatusCode::CREATED, saved))
}

#[utoipa::path(
    put,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "Replace a connection; omitted secrets are kept; an active one is checked first",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Connection, content_type = "application/json", description = "The name in the path wins; the body need not repeat it"),
    responses((status = 200, description = "Saved", body = Connection), (status = 400, description = "Malformed JSON", body = Problems), (status = 415, description = "Not application/json", body = Problems), (status = 404, description = "No such connection", body = Problems), (status = 422, description = "Invalid, or activation refused; every problem listed", body = Problems))
)]
pub(super) async fn replace_connection(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: Body,
) -> ApiResult<Json<Connection>> {
    let mut connection =
        shape::connection_from_api(with_name(body.0, &name)).map_err(unprocessable)?;
    stored_connection(&admin, &name).await?;
    connection.name = name;
    save_connection(&admin, connection).await
}

/// Saves through the same path as `scimbridge apply`: validated, omitted secrets kept, and an
/// active connection's target and LDAP data stores checked first. The connection as saved.
async fn save_connection(
    admin: &Admin,
    mut connection: model::Connection,
) -> ApiResult<Json<Connection>> {
    let name = connection.name.clone();
    let stored = admin.dir.store.connection(&name).await?;
    let mut stored_secrets = stored
        .map(|c| c.target)
        .unwrap_or_else(|| model::TargetSettings::new(String::new()));
    refuse_new_references(
        connection.target.secret_fields_mut(),
        stored_secrets.secret_fields_mut(),
        "outboundProvision.targetSettings",
    )?;
    save_objects(&admin.dir.store, Vec::new(), vec![connection])
        .await
        .map_err(rejected)?;
    let saved = stored_connection(admin, &name).await?;
    Ok(Json((&saved).into()))
}

#[utoipa::path(
    delete,
    path = "/api/connections/{name}",
    tag = "connections",
    summary = "Delete an inactive connection with its channels' state",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such connection", body = Problems), (status = 409, description = "Active", body = Problems))
)]
pub(super) async fn delete_connection(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<StatusCode> {
    delete::delete_connection(&admin.dir.store, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
