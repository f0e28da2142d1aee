//! Provisioning events: `/api/audit-events`.

use axum::Json;
use axum::extract::State;
use scimbridge_engine::state::AuditStore;
use scimbridge_model as model;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Admin, ApiResult, Params, Problems};

#[derive(Debug, Deserialize)]
pub(super) struct Who {
    who: String,
    limit: Option<u32>,
}

/// One provisioning event, with the fields of PingFederate's provisioner audit log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditEvent {
    /// Milliseconds since the epoch.
    time_ms: i64,
    cycle_id: i64,
    connection: String,
    channel: String,
    /// `user-create`, `user-link`, `user-update`, `user-disable`, `user-delete`, `user-held`,
    /// `user-blocked`, `user-skipped`, `group-create`, …
    #[schema(example = "user-create")]
    event_type: String,
    /// The entry's GUID in the data store.
    source_id: String,
    dn: String,
    /// The user name or group display name, when known.
    name: Option<String>,
    target_id: Option<String>,
    success: bool,
    /// Why it was done (the plan's reason), or why it failed.
    cause: String,
}

impl From<model::AuditEvent> for AuditEvent {
    fn from(event: model::AuditEvent) -> AuditEvent {
        let model::AuditEvent {
            time_ms,
            cycle_id,
            connection,
            channel,
            event_type,
            source_id,
            dn,
            name,
            target_id,
            success,
            cause,
        } = event;
        AuditEvent {
            time_ms: time_ms.millis(),
            cycle_id,
            connection,
            channel,
            event_type: event_type.to_string(),
            source_id: source_id.into(),
            dn,
            name,
            target_id: target_id.map(String::from),
            success,
            cause,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/audit-events",
    tag = "operations",
    summary = "One user's or group's provisioning events",
    params(("who" = String, Query, description = "User name, group name, DN, GUID or target id"), ("limit" = Option<u32>, Query, description = "At most this many (100)")),
    responses((status = 200, description = "Events, oldest first", body = Vec<AuditEvent>), (status = 400, description = "A query parameter is missing or malformed", body = Problems))
)]
pub(super) async fn audit_events(
    State(admin): State<Admin>,
    Params(query): Params<Who>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    let events = admin
        .dir
        .store
        .audit_events_of(&query.who, query.limit.unwrap_or(100).min(10_000))
        .await?;
    Ok(Json(events.into_iter().map(AuditEvent::from).collect()))
}
