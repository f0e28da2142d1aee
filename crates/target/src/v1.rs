//! SCIM 1.1 at `/scim/v1`: the same resources, translated at the edge. Requests in the 1.1
//! dialect (URNs `urn:scim:schemas:core:1.0` and `…:extension:enterprise:1.0`, PATCH as a partial
//! resource with `meta.attributes` listing removals and `"operation": "delete"` on members)
//! become 2.0 requests; answers become 1.1 ones (1.1 URNs, `application/json`, errors as
//! `{"Errors": [{"description", "code"}]}`).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use scimbridge_scim::{
    ENTERPRISE_USER_SCHEMA, ERROR_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE_SCHEMA, PATCH_OP_SCHEMA,
    USER_SCHEMA,
};
use serde_json::{Map, Value, json};

pub(crate) const V1_BASE_PATH: &str = "/scim/v1";
const CORE: &str = "urn:scim:schemas:core:1.0";
const ENTERPRISE: &str = "urn:scim:schemas:extension:enterprise:1.0";

/// Largest body translated; bigger ones are refused by the 2.0 handlers anyway.
const MAX_BODY: usize = 8 * 1024 * 1024;

pub(crate) async fn translate(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_ascii_lowercase();
    let group = path.contains("/groups");
    let method = request.method().clone();
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return v1_error(413, "request body too large");
    };
    let body = if bytes.is_empty() {
        bytes
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => {
                let translated = if method == Method::PATCH {
                    patch_to_v2(&value)
                } else {
                    resource_to_v2(&value, group)
                };
                parts.headers.remove(CONTENT_LENGTH);
                parts
                    .headers
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(translated.to_string())
            }
            // Let the 2.0 handler say what is wrong with it.
            Err(_) => bytes,
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return v1_error(500, "answer too large");
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let translated = answer_to_v1(value);
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(translated.to_string()))
}

fn v1_error(status: u16, detail: &str) -> Response {
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        json!({"Errors": [{"description": detail, "code": status.as_u16().to_string()}]})
            .to_string(),
    )
        .into_response()
}

fn v2_urn(urn: &str, group: bool) -> String {
    match urn {
        CORE if group => GROUP_SCHEMA.into(),
        CORE => USER_SCHEMA.into(),
        ENTERPRISE => ENTERPRISE_USER_SCHEMA.into(),
        other => other.into(),
    }
}

fn v1_urn(urn: &str) -> String {
    match urn {
        USER_SCHEMA | GROUP_SCHEMA => CORE.into(),
        ENTERPRISE_USER_SCHEMA => ENTERPRISE.into(),
        other => other.into(),
    }
}

/// A 1.1 User or Group body as 2.0.
fn resource_to_v2(value: &Value, group: bool) -> Value {
    let Some(fields) = value.as_object() else {
        return value.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if key == "schemas" {
            let schemas: Vec<Value> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| Value::String(v2_urn(s, group)))
                .collect();
            out.insert(key.clone(), Value::Array(schemas));
        } else {
            out.insert(v2_urn(key, group), value.clone());
        }
    }
    Value::Object(out)
}

/// A 1.1 path (`title`, `name.givenName`, `urn:…:enterprise:1.0:department`) as 2.0.
fn path_to_v2(path: &str) -> String {
    match path.strip_prefix(ENTERPRISE) {
        Some(rest) => format!("{ENTERPRISE_USER_SCHEMA}{rest}"),
        None => path.to_owned(),
    }
}

/// A 1.1 PATCH (partial resource) as a 2.0 PatchOp: first the removals of `meta.attributes`,
/// then members to delete, then every attribute given (multi-valued ones added, the others
/// replaced sub-attribute by sub-attribute, as 1.1 merges them).
fn patch_to_v2(value: &Value) -> Value {
    let Some(fields) = value.as_object() else {
        return value.clone();
    };
    let mut operations = Vec::new();
    for path in fields
        .get("meta")
        .and_then(|m| m.get("attributes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        operations.push(json!({"op": "remove", "path": path_to_v2(path)}));
    }
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("schemas" | "meta" | "id", _) => {}
            ("members", Value::Array(members)) => {
                let mut added = Vec::new();
                for member in members {
                    let deleted = member.get("operation").and_then(Value::as_str) == Some("delete");
                    match (deleted, member.get("value").and_then(Value::as_str)) {
                        (true, Some(id)) => operations.push(json!({
                            "op": "remove",
                            "path": format!("members[value eq {}]", scimbridge_scim::filter::quote(id))
                        })),
                        _ => added.push(member.clone()),
                    }
                }
                if !added.is_empty() {
                    operations.push(json!({"op": "add", "path": "members", "value": added}));
                }
            }
            (_, Value::Array(_)) => {
                operations.push(json!({"op": "add", "path": key, "value": value}));
            }
            (_, Value::Object(sub)) => {
                let (prefix, separator) = if key == ENTERPRISE {
                    (ENTERPRISE_USER_SCHEMA.to_owned(), ":")
                } else {
                    (key.clone(), ".")
                };
                for (name, value) in sub {
                    operations.push(json!({
                        "op": "replace",
                        "path": format!("{prefix}{separator}{name}"),
                        "value": value
                    }));
                }
            }
            _ => operations.push(json!({"op": "replace", "path": key, "value": value})),
        }
    }
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})
}

/// A 2.0 answer as 1.1: errors, list responses and resources.
fn answer_to_v1(value: Value) -> Value {
    let schemas: Vec<String> = value
        .get("schemas")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if schemas.iter().any(|s| s == ERROR_SCHEMA) {
        let detail = value
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let code = value.get("status").cloned().unwrap_or(Value::Null);
        return json!({"Errors": [{"description": detail, "code": code}]});
    }
    if schemas.iter().any(|s| s == LIST_RESPONSE_SCHEMA) {
        let Value::Object(mut list) = value else {
            return value;
        };
        list.insert("schemas".into(), json!([CORE]));
        if let Some(Value::Array(resources)) = list.remove("Resources") {
            let resources = resources.into_iter().map(resource_to_v1).collect();
            list.insert("Resources".into(), Value::Array(resources));
        }
        return Value::Object(list);
    }
    if value.get("id").is_some() {
        return resource_to_v1(value);
    }
    value
}

fn resource_to_v1(value: Value) -> Value {
    let Value::Object(fields) = value else {
        return value;
    };
    let mut out = Map::new();
    for (key, mut value) in fields {
        if key == "schemas" {
            let mut schemas: Vec<Value> = Vec::new();
            for schema in value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let schema = Value::String(v1_urn(schema));
                if !schemas.contains(&schema) {
                    schemas.push(schema);
                }
            }
            out.insert(key, Value::Array(schemas));
            continue;
        }
        if key == "meta"
            && let Some(location) = value.get("location").and_then(Value::as_str)
        {
            let location = location.replacen(crate::BASE_PATH, V1_BASE_PATH, 1);
            if let Some(meta) = value.as_object_mut() {
                meta.insert("location".into(), Value::String(location));
            }
        }
        out.insert(v1_urn(&key), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_1_patch_becomes_removals_then_changes() {
        let patch = json!({
            "schemas": [CORE],
            "title": "Lead",
            "name": {"givenName": "Anne"},
            "emails": [{"value": "a@x", "type": "work"}],
            ENTERPRISE: {"department": "Ops"},
            "members": [{"value": "u1"}, {"value": "u2", "operation": "delete"}],
            "meta": {"attributes": ["emails", "name.middleName", format!("{ENTERPRISE}:costCenter")]}
        });
        let ops = patch_to_v2(&patch)["Operations"].clone();
        let rendered: Vec<String> = ops
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o["op"].as_str().unwrap(),
                    o["path"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            rendered,
            [
                "remove emails".to_owned(),
                "remove name.middleName".to_owned(),
                format!("remove {ENTERPRISE_USER_SCHEMA}:costCenter"),
                "replace title".to_owned(),
                "replace name.givenName".to_owned(),
                "add emails".to_owned(),
                format!("replace {ENTERPRISE_USER_SCHEMA}:department"),
                "remove members[value eq \"u2\"]".to_owned(),
                "add members".to_owned(),
            ]
        );
    }

    #[test]
    fn answers_get_1_1_urns_and_errors() {
        let user = json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "id": "1",
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"},
            "meta": {"location": "http://h/scim/v2/Users/1"}});
        assert_eq!(
            answer_to_v1(user),
            json!({"schemas": [CORE, ENTERPRISE], "id": "1", ENTERPRISE: {"department": "R&D"},
                "meta": {"location": "http://h/scim/v1/Users/1"}})
        );
        assert_eq!(
            answer_to_v1(json!({"schemas": [ERROR_SCHEMA], "status": "409", "detail": "taken"})),
            json!({"Errors": [{"description": "taken", "code": "409"}]})
        );
        assert_eq!(
            resource_to_v2(&json!({"schemas": [CORE], "displayName": "g"}), true),
            json!({"schemas": [GROUP_SCHEMA], "displayName": "g"})
        );
    }
}
