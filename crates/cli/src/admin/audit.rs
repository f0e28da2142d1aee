//! Provisioning events: `/api/audit-events`.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use scimbridge_engine::state::Store;
use serde::Deserialize;
use serde_json::Value;

use super::{Admin, ApiResult, Params, shape};

#[derive(Debug, Deserialize)]
pub(super) struct Who {
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
pub(super) async fn audit_events(
    State(admin): State<Admin>,
    Params(query): Params<Who>,
) -> ApiResult {
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
