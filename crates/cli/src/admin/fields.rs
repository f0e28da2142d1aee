//! The catalogue of SCIM fields a channel can map.

use axum::Json;
use scimbridge_model::{FieldTarget, ScimField};
use serde_json::{Value, json};

#[utoipa::path(
    get,
    path = "/api/fields",
    tag = "fields",
    summary = "The SCIM fields a channel can map",
    responses((status = 200, description = "Catalogue", body = Object), (status = 401, description = "No or wrong credentials", body = Object), (status = 429, description = "Too many failed attempts", body = Object)),
    security(("token" = []), ("administrator" = []))
)]
pub(super) async fn fields() -> Json<Value> {
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
