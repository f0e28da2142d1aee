//! The OpenAPI description of the API, `GET /api/openapi.json`: every endpoint, and the schema
//! of every body it takes and answers, so that clients can be generated from it.

use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{Ref, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder};

use super::{audit, connections, data_stores, fields, operations, plan};

/// The OpenAPI 3 description of the API, built from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "scimbridge admin API", description = "Data stores, provisioning connections and their operation."),
    paths(fields::fields, data_stores::list_data_stores, data_stores::get_data_store, data_stores::create_data_store, data_stores::replace_data_store, data_stores::delete_data_store, connections::list_connections, connections::get_connection, connections::create_connection, connections::replace_connection, connections::delete_connection, operations::status, operations::cycles, operations::held, operations::approve, operations::discard, plan::plan, operations::run_now, operations::reset_channel, audit::audit_events),
    modifiers(&Conventions)
)]
struct ApiDescription;

/// What holds for every endpoint: it takes the administrator or an API token, and may answer
/// that neither came (401) or that a password was guessed too often (429); a body it may go
/// without is optional rather than nullable.
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "administrator",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        let problems = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problems")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(vec![
                    SecurityRequirement::new("token", [""; 0]),
                    SecurityRequirement::new("administrator", [""; 0]),
                ]);
                let responses = &mut operation.responses.responses;
                responses.insert("401".into(), problems("No or wrong credentials").into());
                responses.insert("429".into(), problems("Too many failed attempts").into());
                optional_body(operation);
            }
        }
    }
}

/// utoipa describes an optional body (`Option<T>`) as "T or null"; what the API takes is T, or
/// no body at all, which `required: false` says already.
fn optional_body(operation: &mut Operation) {
    let Some(RefOr::T(body)) = &mut operation.request_body else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema
            && let [RefOr::Ref(reference), RefOr::T(Schema::Object(null))] = one_of.items.as_slice()
            && null.schema_type == SchemaType::Type(Type::Null)
        {
            content.schema = Some(RefOr::Ref(reference.clone()));
        }
    }
}

pub(super) async fn openapi() -> Json<OpenApi> {
    Json(<ApiDescription as utoipa::OpenApi>::openapi())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Whether a schema names a component, directly, as the items of a list or as the values
    /// of a map.
    fn typed(schema: &Value) -> bool {
        schema["$ref"].is_string()
            || schema["items"]["$ref"].is_string()
            || schema["additionalProperties"]["$ref"].is_string()
    }

    #[test]
    fn every_body_has_a_schema() {
        let document =
            serde_json::to_value(<ApiDescription as utoipa::OpenApi>::openapi()).unwrap();
        let mut bodies = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                if let Some(content) = operation["requestBody"]["content"].as_object() {
                    for media in content.values() {
                        assert!(typed(&media["schema"]), "{at}: request {media}");
                        bodies += 1;
                    }
                }
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let Some(content) = response["content"].as_object() else {
                        assert_eq!(status, "204", "{at}: {status} without a body");
                        continue;
                    };
                    for media in content.values() {
                        assert!(typed(&media["schema"]), "{at}: {status} {media}");
                        bodies += 1;
                    }
                }
                assert!(operation["responses"]["401"].is_object(), "{at}");
            }
        }
        assert!(bodies > 60, "{bodies}");
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for (name, schema) in schemas {
            assert!(
                schema["properties"].is_object() || schema["enum"].is_array(),
                "{name}: {schema}"
            );
        }
    }
}
