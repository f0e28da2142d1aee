//! The catalogue of SCIM fields a channel can map.

use axum::Json;
use scimbridge_model::{FieldTarget, ScimField};
use serde::Serialize;
use utoipa::ToSchema;

/// A SCIM field a channel can map.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Field {
    /// The name a mapping uses (`fieldName`), PingFederate's.
    #[schema(example = "workEmail")]
    name: String,
    label: String,
    /// What it writes in the SCIM User.
    #[schema(example = "emails[type eq \"work\"].value")]
    scim_path: String,
    /// Every channel maps it.
    required: bool,
    /// The SCIM attribute is multi-valued: the field is the value of one type of it.
    multi_valued: bool,
    notes: String,
}

#[utoipa::path(
    get,
    path = "/api/fields",
    tag = "fields",
    summary = "The SCIM fields a channel can map",
    responses((status = 200, description = "Catalogue", body = Vec<Field>))
)]
pub(super) async fn fields() -> Json<Vec<Field>> {
    Json(
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
                Field {
                    name: field.name().to_owned(),
                    label: field.label().to_owned(),
                    scim_path: target.path(),
                    required: field.required(),
                    multi_valued,
                    notes: notes.to_owned(),
                }
            })
            .collect(),
    )
}
