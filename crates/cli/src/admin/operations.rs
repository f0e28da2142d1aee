//! Operating a connection: status, cycles, held operations and the decision on them, plan, run
//! now, channel reset.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use scimbridge_model::ChannelKey;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, ApiError, ApiResult, Params, shape, stored_connection};
use crate::ops::channels::{Reset, channel_key};
use crate::ops::status::{channel_status, format_utc, recent_cycles};
use crate::ops::{held, plan, service};

#[utoipa::path(
    get,
    path = "/api/connections/{name}/status",
    tag = "operations",
    summary = "Each channel's state",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Status", body = Object), (status = 404, description = "No such connection", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
pub(super) async fn status(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
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
pub(super) struct Limit {
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
pub(super) async fn cycles(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<Limit>,
) -> ApiResult {
    let connection = stored_connection(&admin, &name).await?;
    let limit = query.limit.unwrap_or(20).min(1000);
    let cycles = recent_cycles(&admin.dir.store, &connection, limit).await?;
    Ok(Json(cycles.iter().map(cycle_json).collect::<Vec<_>>()).into_response())
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
pub(super) async fn held(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
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

pub(super) async fn decide(admin: &Admin, name: &str, body: &[u8], approve: bool) -> ApiResult {
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
pub(super) async fn approve(
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
pub(super) async fn discard(
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
pub(super) async fn plan(State(admin): State<Admin>, UrlPath(name): UrlPath<String>) -> ApiResult {
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
pub(super) async fn run_now(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult {
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
pub(super) struct ResetBody {
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
pub(super) async fn reset_channel(
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
