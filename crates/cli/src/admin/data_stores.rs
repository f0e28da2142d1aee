//! Data stores: `/api/data-stores`.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use scimbridge_engine::state::Store;

use super::{
    Admin, ApiError, ApiResult, Body, refuse_new_references, rejected, shape, unprocessable,
    with_name,
};
use crate::ops::apply::apply_objects;
use crate::ops::delete;

#[utoipa::path(
    get,
    path = "/api/data-stores",
    tag = "data-stores",
    summary = "Every data store",
    responses((status = 200, description = "Data stores", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
pub(super) async fn list_data_stores(State(admin): State<Admin>) -> ApiResult {
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
pub(super) async fn get_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
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
pub(super) async fn create_data_store(State(admin): State<Admin>, body: Body) -> ApiResult {
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
pub(super) async fn replace_data_store(
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

pub(super) async fn save_data_store(
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
pub(super) async fn delete_data_store(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
    delete::delete_data_store(&admin.dir.store, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
