//! What differs between SCIM 2.0 (RFC 7643/7644) and SCIM 1.1 on the wire: schema URNs, media
//! type, the discovery path, the PATCH body, list and error formats. The engine builds 2.0
//! bodies; for a 1.1 target they are translated here, at the edge. Pure.

use scimbridge_model::ScimVersion;
use serde_json::{Map, Value, json};

use scimbridge_scim::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP_SCHEMA, USER_SCHEMA};

pub const V1_CORE_SCHEMA: &str = "urn:scim:schemas:core:1.0";
pub const V1_ENTERPRISE_SCHEMA: &str = "urn:scim:schemas:extension:enterprise:1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect(pub ScimVersion);

impl Dialect {
    pub fn media_type(self) -> &'static str {
        match self.0 {
            ScimVersion::V2 => scimbridge_scim::SCIM_MEDIA_TYPE,
            ScimVersion::V1_1 => "application/json",
        }
    }

    /// Both media types are accepted from either kind of server.
    pub fn accept(self) -> &'static str {
        "application/scim+json, application/json"
    }

    pub fn service_provider_config_path(self) -> &'static str {
        match self.0 {
            ScimVersion::V2 => "/ServiceProviderConfig",
            ScimVersion::V1_1 => "/ServiceProviderConfigs",
        }
    }

    /// A User or Group resource for the wire: 2.0 URNs become 1.1 ones for a 1.1 target.
    pub fn resource(self, resource: &Value) -> Value {
        match self.0 {
            ScimVersion::V2 => resource.clone(),
            ScimVersion::V1_1 => translate_urns(resource),
        }
    }

    /// A list response: 2.0 names its schema; 1.1 has `Resources` and `totalResults` only.
    pub fn is_list_response(self, body: &Value) -> bool {
        let has_list_schema = body
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|v| v == scimbridge_scim::LIST_RESPONSE_SCHEMA));
        match self.0 {
            ScimVersion::V2 => has_list_schema,
            ScimVersion::V1_1 => {
                has_list_schema
                    || (body.get("totalResults").is_some_and(Value::is_u64)
                        && body.get("Resources").is_none_or(Value::is_array))
            }
        }
    }

    /// The PATCH body for our operations (RFC 7644 `PatchOp` ops with simple, sub-attribute,
    /// extension and `members[value eq "…"]` paths).
    pub fn patch_body(self, operations: &[Value]) -> Value {
        match self.0 {
            ScimVersion::V2 => json!({ "schemas": [PATCH_OP_SCHEMA], "Operations": operations }),
            ScimVersion::V1_1 => v1_patch(operations),
        }
    }
}

/// `scimType` and detail of an error body, 2.0 (`detail`) or 1.1 (`Errors[].description`).
pub fn error_detail(body: &Value) -> Option<(Option<String>, String)> {
    if let Some(detail) = body.get("detail").and_then(Value::as_str) {
        let scim_type = body
            .get("scimType")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Some((scim_type, detail.to_owned()));
    }
    let errors = body.get("Errors").and_then(Value::as_array)?;
    let text: Vec<&str> = errors
        .iter()
        .filter_map(|e| e.get("description").and_then(Value::as_str))
        .collect();
    (!text.is_empty()).then(|| (None, text.join("; ")))
}

fn v1_urn(urn: &str) -> Option<&'static str> {
    match urn {
        USER_SCHEMA | GROUP_SCHEMA => Some(V1_CORE_SCHEMA),
        ENTERPRISE_USER_SCHEMA => Some(V1_ENTERPRISE_SCHEMA),
        _ => None,
    }
}

fn translate_urns(resource: &Value) -> Value {
    let Some(fields) = resource.as_object() else {
        return resource.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        if key == "schemas" {
            let mut schemas: Vec<Value> = Vec::new();
            for schema in value.as_array().into_iter().flatten() {
                let translated = schema
                    .as_str()
                    .and_then(v1_urn)
                    .map_or_else(|| schema.clone(), |u| Value::String(u.into()));
                if !schemas.contains(&translated) {
                    schemas.push(translated);
                }
            }
            out.insert(key.clone(), Value::Array(schemas));
        } else {
            let key = v1_urn(key).map_or_else(|| key.clone(), str::to_owned);
            out.insert(key, value.clone());
        }
    }
    Value::Object(out)
}

/// SCIM 1.1 PATCH: a partial resource; `meta.attributes` lists what to remove first, and a
/// member to remove carries `"operation": "delete"`. A multi-valued attribute replaced whole
/// is listed in `meta.attributes` and sent with its new values.
fn v1_patch(operations: &[Value]) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([V1_CORE_SCHEMA]));
    let mut removed: Vec<String> = Vec::new();
    for op in operations {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        if let Some(id) = member_filter_value(path) {
            push_member(&mut body, json!({"value": id, "operation": "delete"}));
            continue;
        }
        let (container, attribute) = split_path(path);
        match kind {
            "add" if path == "members" => {
                for member in value.as_array().into_iter().flatten() {
                    push_member(&mut body, member.clone());
                }
            }
            "remove" => removed.push(v1_path(path)),
            _ => {
                if value.is_array() && container.is_none() && !attribute.contains('.') {
                    removed.push(attribute.to_owned());
                }
                set(&mut body, container, attribute, value);
            }
        }
    }
    if !removed.is_empty() {
        body.insert("meta".into(), json!({ "attributes": removed }));
    }
    Value::Object(body)
}

/// `members[value eq "id"]` → `id`.
fn member_filter_value(path: &str) -> Option<String> {
    let inner = path.strip_prefix("members[value eq ")?.strip_suffix(']')?;
    serde_json::from_str::<String>(inner).ok()
}

/// Splits `urn:…:User:attr.sub` into the extension URN and `attr.sub`; core paths have none.
fn split_path(path: &str) -> (Option<&str>, &str) {
    if path.starts_with("urn:")
        && let Some((urn, attribute)) = path.rsplit_once(':')
    {
        return (Some(urn), attribute);
    }
    (None, path)
}

fn v1_path(path: &str) -> String {
    match split_path(path) {
        (Some(urn), attribute) => format!("{}:{attribute}", v1_urn(urn).unwrap_or(urn)),
        (None, attribute) => attribute.to_owned(),
    }
}

fn set(body: &mut Map<String, Value>, container: Option<&str>, attribute: &str, value: Value) {
    let mut leaf = Map::new();
    match attribute.split_once('.') {
        Some((parent, child)) => {
            leaf.insert(parent.to_owned(), json!({ child: value }));
        }
        None => {
            leaf.insert(attribute.to_owned(), value);
        }
    }
    let part = match container {
        Some(urn) => {
            let mut outer = Map::new();
            outer.insert(v1_urn(urn).unwrap_or(urn).to_owned(), Value::Object(leaf));
            outer
        }
        None => leaf,
    };
    merge(body, part);
}

/// Deep-merges objects; anything else in `source` replaces what `target` has.
fn merge(target: &mut Map<String, Value>, source: Map<String, Value>) {
    for (key, value) in source {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(more)) => merge(inner, more),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

fn push_member(body: &mut Map<String, Value>, member: Value) {
    let members = body
        .entry("members")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = members {
        list.push(member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Dialect = Dialect(ScimVersion::V1_1);

    #[test]
    fn resources_get_1_1_urns() {
        let user = json!({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": "ann",
            ENTERPRISE_USER_SCHEMA: {"department": "R&D"}});
        assert_eq!(
            V1.resource(&user),
            json!({"schemas": [V1_CORE_SCHEMA, V1_ENTERPRISE_SCHEMA], "userName": "ann",
                V1_ENTERPRISE_SCHEMA: {"department": "R&D"}})
        );
        assert_eq!(Dialect(ScimVersion::V2).resource(&user), user);
    }

    #[test]
    fn patch_operations_become_a_partial_resource() {
        let ops = [
            json!({"op": "replace", "path": "title", "value": "Lead"}),
            json!({"op": "replace", "path": "name.givenName", "value": "Anne"}),
            json!({"op": "remove", "path": "name.middleName"}),
            json!({"op": "replace", "path": "emails", "value": [{"value": "a@x", "type": "work"}]}),
            json!({"op": "replace", "path": format!("{ENTERPRISE_USER_SCHEMA}:department"), "value": "Ops"}),
            json!({"op": "remove", "path": format!("{ENTERPRISE_USER_SCHEMA}:costCenter")}),
            json!({"op": "remove", "path": "nickName"}),
        ];
        assert_eq!(
            V1.patch_body(&ops),
            json!({
                "schemas": [V1_CORE_SCHEMA],
                "title": "Lead",
                "name": {"givenName": "Anne"},
                "emails": [{"value": "a@x", "type": "work"}],
                V1_ENTERPRISE_SCHEMA: {"department": "Ops"},
                "meta": {"attributes": ["name.middleName", "emails", format!("{V1_ENTERPRISE_SCHEMA}:costCenter"), "nickName"]}
            })
        );
    }

    #[test]
    fn member_changes_use_operation_delete() {
        let ops = [
            json!({"op": "replace", "path": "displayName", "value": "crew"}),
            json!({"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}),
            json!({"op": "remove", "path": "members[value eq \"u3\"]"}),
        ];
        assert_eq!(
            V1.patch_body(&ops),
            json!({"schemas": [V1_CORE_SCHEMA], "displayName": "crew",
                "members": [{"value": "u1"}, {"value": "u2"}, {"value": "u3", "operation": "delete"}]})
        );
    }

    #[test]
    fn list_and_error_formats_of_both_versions() {
        assert!(V1.is_list_response(&json!({"totalResults": 0, "Resources": []})));
        assert!(!V1.is_list_response(&json!({"html": true})));
        assert!(!Dialect(ScimVersion::V2).is_list_response(&json!({"totalResults": 0})));
        assert_eq!(
            error_detail(&json!({"Errors": [{"description": "exists", "code": "409"}]})),
            Some((None, "exists".into()))
        );
        assert_eq!(
            error_detail(&json!({"detail": "d", "scimType": "uniqueness"})),
            Some((Some("uniqueness".into()), "d".into()))
        );
    }
}
