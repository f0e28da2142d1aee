//! Data stores: `/api/data-stores`.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use scimbridge_engine::state::ConfigurationStore;
use scimbridge_model as model;

use super::documents::DataStore;
use super::{
    Admin, ApiError, ApiResult, Body, Problems, refuse_new_references, rejected, shape,
    unprocessable, with_name,
};
use crate::ops::configure::save_objects;
use crate::ops::delete;

#[utoipa::path(
    get,
    path = "/api/data-stores",
    tag = "data-stores",
    summary = "Every data store",
    responses((status = 200, description = "Data stores", body = Vec<DataStore>))
)]
pub(super) async fn list_data_stores(
    State(admin): State<Admin>,
) -> ApiResult<Json<Vec<DataStore>>> {
    let stores = admin.dir.store.data_stores().await?;
    Ok(Json(stores.iter().map(DataStore::from).collect()))
}

#[utoipa::path(
    get,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "One data store",
    params(("name" = String, Path, description = "The data store name")),
    responses((status = 200, description = "The data store", body = DataStore), (status = 404, description = "No such data store", body = Problems))
)]
pub(super) async fn get_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<DataStore>> {
    let stores = admin.dir.store.data_stores().await?;
    let found = stores
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found("data store", &name))?;
    Ok(Json(found.into()))
}

#[utoipa::path(
    post,
    path = "/api/data-stores",
    tag = "data-stores",
    summary = "Create a data store",
    request_body(content = DataStore, content_type = "application/json"),
    responses((status = 201, description = "Created", body = DataStore), (status = 400, description = "Malformed JSON", body = Problems), (status = 415, description = "Not application/json", body = Problems), (status = 409, description = "Exists", body = Problems), (status = 422, description = "Invalid; every problem listed", body = Problems))
)]
pub(super) async fn create_data_store(
    State(admin): State<Admin>,
    body: Body,
) -> ApiResult<(StatusCode, Json<DataStore>)> {
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
    let saved = save_data_store(&admin, data_store).await?;
    Ok((StatusCode::CREATED, saved))
}

#[utoipa::path(
    put,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "Replace a data store; omitted secrets are kept",
    params(("name" = String, Path, description = "The data store name")),
    request_body(content = DataStore, content_type = "application/json", description = "The name in the path wins; the body need not repeat it"),
    responses((status = 200, description = "Saved", body = DataStore), (status = 400, description = "Malformed JSON", body = Problems), (status = 415, description = "Not application/json", body = Problems), (status = 404, description = "No such data store", body = Problems), (status = 422, description = "Invalid; every problem listed", body = Problems))
)]
pub(super) async fn replace_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: Body,
) -> ApiResult<Json<DataStore>> {
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
    save_data_store(&admin, data_store).await
}

/// Saves through the same path as `scimbridge apply`; the data store as saved.
async fn save_data_store(
    admin: &Admin,
    mut data_store: model::DataStore,
) -> ApiResult<Json<DataStore>> {
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
    save_objects(&admin.dir.store, vec![data_store], Vec::new())
        .await
        .map_err(rejected)?;
    let stores = admin.dir.store.data_stores().await?;
    let saved = stores
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::not_found("data store", &name))?;
    Ok(Json(saved.into()))
}

#[utoipa::path(
    delete,
    path = "/api/data-stores/{name}",
    tag = "data-stores",
    summary = "Delete a data store no channel reads",
    params(("name" = String, Path, description = "The data store name")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such data store", body = Problems), (status = 409, description = "Read by a channel", body = Problems))
)]
pub(super) async fn delete_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<StatusCode> {
    delete::delete_data_store(&admin.dir.store, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
