//! The OpenAPI description of the API, `GET /api/openapi.json`.

use axum::Json;

use super::{audit, connections, data_stores, fields, operations};

/// The OpenAPI 3 description of the API, built from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "scimbridge admin API", description = "Data stores, provisioning connections and their operation."),
    paths(fields::fields, data_stores::list_data_stores, data_stores::get_data_store, data_stores::create_data_store, data_stores::replace_data_store, data_stores::delete_data_store, connections::list_connections, connections::get_connection, connections::create_connection, connections::replace_connection, connections::delete_connection, operations::status, operations::cycles, operations::held, operations::approve, operations::discard, operations::plan, operations::run_now, operations::reset_channel, audit::audit_events),
    modifiers(&Security)
)]
struct ApiDescription;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "administrator",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

pub(super) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDescription as utoipa::OpenApi>::openapi())
}
