//! Operating a connection: status, cycles, held operations and the decision on them, run now,
//! channel reset.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use scimbridge_engine::state::Cycle as StoredCycle;
use scimbridge_model::{self as model, ChannelKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Admin, ApiError, ApiResult, Body, Params, Problems, stored_connection};
use crate::ops::channels::{Reset, channel_key};
use crate::ops::status::{channel_status, format_utc, recent_cycles};
use crate::ops::{held, service};

/// A connection's channels and what each is doing.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectionStatus {
    name: String,
    active: bool,
    channels: Vec<ChannelStatus>,
}

/// What one channel is doing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ChannelStatus {
    name: String,
    /// The channel and its connection are active.
    active: bool,
    /// Users in the target.
    users: u64,
    /// Records whose last attempt failed.
    failed: u64,
    /// Records a provisioning option blocks.
    blocked: u64,
    /// Operations the mass-change guard holds.
    held: usize,
    /// The last cycle found the target down and stopped; its `error` says why.
    target_unreachable: bool,
    /// The change detection of the last read that left a cursor (`full-scan` until one does).
    #[schema(example = "content-sync")]
    change_detection: String,
    last_cycle: Option<Cycle>,
}

/// One cycle of one channel.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Cycle {
    id: i64,
    /// The channel's name.
    channel: String,
    #[schema(example = "2026-11-28 15:04:05Z")]
    started_at: String,
    /// None while it runs, or when it was interrupted.
    finished_at: Option<String>,
    summary: CycleSummary,
    /// Why the cycle stopped early.
    error: Option<String>,
}

/// What one cycle did, in counts.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct CycleSummary {
    created: u64,
    /// Existing target users found by the unique user identifier and linked.
    linked: u64,
    updated: u64,
    disabled: u64,
    deleted: u64,
    failed: u64,
    blocked: u64,
    skipped: u64,
    unchanged: u64,
    groups_created: u64,
    groups_linked: u64,
    groups_updated: u64,
    groups_deleted: u64,
    groups_failed: u64,
    /// Requests sent to the target.
    requests: u64,
    /// Operations held by the mass-change guard.
    held: u64,
    /// Failed records left for a later cycle by their retry backoff.
    waiting_retry: u64,
    /// The cycle found the target down and stopped there; only when it did.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    target_unreachable: bool,
}

impl From<&StoredCycle> for Cycle {
    fn from(cycle: &StoredCycle) -> Cycle {
        Cycle {
            id: cycle.id,
            channel: cycle.channel.channel.clone(),
            started_at: format_utc(cycle.started_at_ms),
            finished_at: cycle.finished_at_ms.map(format_utc),
            summary: (&cycle.summary).into(),
            error: cycle.error.clone(),
        }
    }
}

impl From<&model::CycleSummary> for CycleSummary {
    fn from(summary: &model::CycleSummary) -> CycleSummary {
        let model::CycleSummary {
            created,
            linked,
            updated,
            disabled,
            deleted,
            failed,
            blocked,
            skipped,
            unchanged,
            groups_created,
            groups_linked,
            groups_updated,
            groups_deleted,
            groups_failed,
            requests,
            held,
            waiting_retry,
            target_unreachable,
        } = *summary;
        CycleSummary {
            created,
            linked,
            updated,
            disabled,
            deleted,
            failed,
            blocked,
            skipped,
            unchanged,
            groups_created,
            groups_linked,
            groups_updated,
            groups_deleted,
            groups_failed,
            requests,
            held,
            waiting_retry,
            target_unreachable,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}/status",
    tag = "operations",
    summary = "Each channel's state",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Status", body = ConnectionStatus), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn status(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<ConnectionStatus>> {
    let connection = stored_connection(&admin, &name).await?;
    let mut channels = Vec::new();
    for channel in &connection.channels {
        let key = ChannelKey::new(&connection.name, &channel.name);
        let found = channel_status(&admin.dir.store, &key).await?;
        channels.push(ChannelStatus {
            name: channel.name.clone(),
            active: connection.active && channel.active,
            users: found.counts.users,
            failed: found.counts.failed,
            blocked: found.counts.blocked,
            held: found.held,
            target_unreachable: found.target_down.is_some(),
            change_detection: found.detection.name().to_owned(),
            last_cycle: found.last_cycle.as_ref().map(Cycle::from),
        });
    }
    Ok(Json(ConnectionStatus {
        name: connection.name,
        active: connection.active,
        channels,
    }))
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
    responses((status = 200, description = "Cycles", body = Vec<Cycle>), (status = 400, description = "A query parameter is malformed", body = Problems), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn cycles(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    Params(query): Params<Limit>,
) -> ApiResult<Json<Vec<Cycle>>> {
    let connection = stored_connection(&admin, &name).await?;
    let limit = query.limit.unwrap_or(20).min(1000);
    let cycles = recent_cycles(&admin.dir.store, &connection, limit).await?;
    Ok(Json(cycles.iter().map(Cycle::from).collect()))
}

/// An operation the mass-change guard holds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct HeldOperation {
    /// The entry's GUID, by which a decision picks it.
    guid: String,
    /// The user name, else the DN.
    label: String,
    /// `disable` or `delete`.
    #[schema(example = "disable")]
    operation: String,
    reason: String,
    /// Milliseconds since the epoch.
    held_at_ms: i64,
    /// Approved by an operator: the next cycle applies it.
    approved: bool,
    /// The channel's name.
    channel: String,
}

#[utoipa::path(
    get,
    path = "/api/connections/{name}/held",
    tag = "operations",
    summary = "Operations the mass-change guard holds",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 200, description = "Held operations", body = Vec<HeldOperation>), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn held(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<Json<Vec<HeldOperation>>> {
    let connection = stored_connection(&admin, &name).await?;
    let held = held::held_operations(&admin.dir.store, &connection).await?;
    Ok(Json(
        held.into_iter()
            .map(|(channel, operation)| {
                let model::HeldOperation {
                    guid,
                    label,
                    operation,
                    reason,
                    held_at_ms,
                    approved,
                } = operation;
                HeldOperation {
                    guid: guid.into(),
                    label,
                    operation: operation.to_string(),
                    reason,
                    held_at_ms: held_at_ms.millis(),
                    approved,
                    channel,
                }
            })
            .collect(),
    ))
}

/// Which held operations a decision is about: the GUIDs the operator reviewed, or, without
/// them (or without a body), every one.
#[derive(Debug, Deserialize, Default, ToSchema)]
pub(super) struct Decision {
    guids: Option<Vec<String>>,
}

/// Held operations approved: the next cycle applies them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Approved {
    approved: usize,
    #[schema(example = "the next cycle")]
    applied_by: String,
}

/// Held operations dropped.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Discarded {
    discarded: usize,
}

async fn decide(admin: &Admin, name: &str, body: &[u8], approve: bool) -> ApiResult<usize> {
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
    Ok(held::decide_reviewed(&admin.dir.store, &connection, chosen, approve).await?)
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/held/approve",
    tag = "operations",
    summary = "Approve the held operations (those of `guids` when given)",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Option<Decision>, content_type = "application/json", description = "Optional: only the operations of these GUIDs"),
    responses((status = 200, description = "Approved", body = Approved), (status = 400, description = "The body is not a decision", body = Problems), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn approve(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Approved>> {
    let approved = decide(&admin, &name, &body, true).await?;
    Ok(Json(Approved {
        approved,
        applied_by: "the next cycle".into(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/held/discard",
    tag = "operations",
    summary = "Discard the held operations (those of `guids` when given)",
    params(("name" = String, Path, description = "The connection name")),
    request_body(content = Option<Decision>, content_type = "application/json", description = "Optional: only the operations of these GUIDs"),
    responses((status = 200, description = "Discarded", body = Discarded), (status = 400, description = "The body is not a decision", body = Problems), (status = 404, description = "No such connection", body = Problems))
)]
pub(super) async fn discard(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Discarded>> {
    let discarded = decide(&admin, &name, &body, false).await?;
    Ok(Json(Discarded { discarded }))
}

/// The channels told to run a cycle now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Started {
    started: Vec<String>,
    /// Channels without a running worker: inactive, or not picked up by the service yet.
    not_running: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/run",
    tag = "operations",
    summary = "Start a cycle of each running channel now",
    params(("name" = String, Path, description = "The connection name")),
    responses((status = 202, description = "Started", body = Started), (status = 404, description = "No such connection", body = Problems), (status = 409, description = "No channel runs", body = Problems))
)]
pub(super) async fn run_now(
    State(admin): State<Admin>,
    UrlPath(name): UrlPath<String>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let connection = stored_connection(&admin, &name).await?;
    let run = service::run_now(&admin.run_now, &connection)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            started: run.started,
            not_running: run.not_running,
        }),
    ))
}

/// What a reset forgets.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResetRequest {
    /// False: the sync state (the next cycle is a full read). True: every record too (the next
    /// cycle links to the target's users and groups by the unique identifier).
    #[serde(default)]
    all_state: bool,
}

/// What a reset forgot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Forgotten {
    channel: String,
    #[schema(example = "the sync state")]
    forgot: String,
    #[schema(example = "a full read")]
    next_cycle: String,
}

#[utoipa::path(
    post,
    path = "/api/connections/{name}/channels/{channel}/reset",
    tag = "operations",
    summary = "Forget a channel's sync state, or all its state",
    params(("name" = String, Path, description = "The connection name"), ("channel" = String, Path, description = "The channel name")),
    request_body(content = Option<ResetRequest>, content_type = "application/json", description = "Optional: the sync state only when left out"),
    responses((status = 200, description = "Forgotten", body = Forgotten), (status = 400, description = "Malformed JSON", body = Problems), (status = 404, description = "No such connection or channel", body = Problems), (status = 415, description = "Not application/json", body = Problems), (status = 422, description = "Not a reset request", body = Problems))
)]
pub(super) async fn reset_channel(
    State(admin): State<Admin>,
    UrlPath((name, channel)): UrlPath<(String, String)>,
    body: Option<Body<ResetRequest>>,
) -> ApiResult<Json<Forgotten>> {
    let connection = stored_connection(&admin, &name).await?;
    let key = channel_key(&connection, &channel)?;
    let all_state = body.map(|b| b.0.all_state).unwrap_or_default();
    let reset = if all_state {
        Reset::AllState
    } else {
        Reset::SyncState
    };
    crate::ops::channels::reset(&admin.dir.store, &key, reset).await?;
    let forgot = if all_state {
        "every record and the sync state"
    } else {
        "the sync state"
    };
    Ok(Json(Forgotten {
        channel,
        forgot: forgot.into(),
        next_cycle: "a full read".into(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::admin::audit::AuditEvent;
    use crate::admin::shape::camel_json;

    fn cycle(summary: model::CycleSummary, finished: Option<i64>) -> StoredCycle {
        StoredCycle {
            id: 4,
            channel: ChannelKey::new("App", "staff"),
            started_at_ms: model::EpochMs::from_millis(1_795_878_245_000),
            finished_at_ms: finished.map(model::EpochMs::from_millis),
            summary,
            error: finished.is_none().then(|| "the target is down".to_owned()),
        }
    }

    /// A cycle as the API wrote it before its bodies were typed.
    fn untyped(cycle: &StoredCycle) -> Value {
        json!({
            "id": cycle.id,
            "channel": cycle.channel.channel,
            "startedAt": format_utc(cycle.started_at_ms),
            "finishedAt": cycle.finished_at_ms.map(format_utc),
            "summary": camel_json(serde_json::to_value(&cycle.summary).unwrap()),
            "error": cycle.error,
        })
    }

    #[test]
    fn typed_operation_bodies_write_what_the_untyped_ones_did() {
        let counted = model::CycleSummary {
            created: 1,
            linked: 2,
            updated: 3,
            disabled: 4,
            deleted: 5,
            failed: 6,
            blocked: 7,
            skipped: 8,
            unchanged: 9,
            groups_created: 10,
            groups_linked: 11,
            groups_updated: 12,
            groups_deleted: 13,
            groups_failed: 14,
            requests: 15,
            held: 16,
            waiting_retry: 17,
            target_unreachable: true,
        };
        for cycle in [
            cycle(counted, None),
            cycle(model::CycleSummary::default(), Some(1_795_878_246_000)),
        ] {
            assert_eq!(
                serde_json::to_value(Cycle::from(&cycle)).unwrap(),
                untyped(&cycle)
            );
        }

        let event = model::AuditEvent {
            time_ms: model::EpochMs::from_millis(1),
            cycle_id: 2,
            connection: "App".into(),
            channel: "staff".into(),
            event_type: model::AuditEventType::UserCreate,
            source_id: "g1".into(),
            dn: "uid=ann".into(),
            name: None,
            target_id: Some("t1".into()),
            success: true,
            cause: "new".into(),
        };
        assert_eq!(
            serde_json::to_value(AuditEvent::from(event.clone())).unwrap(),
            camel_json(serde_json::to_value(&event).unwrap())
        );
    }
}
