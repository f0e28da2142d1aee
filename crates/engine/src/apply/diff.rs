//! PATCH operations (RFC 7644 §3.5.2) that turn the image last applied into the new one,
//! touching only what changed. Pure.
//!
//! Simple and multi-valued attributes are replaced whole (a multi-valued `replace` without a
//! filter replaces every value); complex attributes (`name`) and extension attributes are
//! changed sub-attribute by sub-attribute, because a `replace` of a complex attribute leaves the
//! sub-attributes it does not name untouched, so clearing one needs its own `remove`.

use serde_json::{Map, Value, json};

/// Attributes the target owns or that a PATCH must not name.
const NOT_PATCHED: [&str; 3] = ["schemas", "id", "meta"];

/// The operations that turn `old` into `new`; empty when they are equivalent.
pub fn patch_operations(old: &Value, new: &Value) -> Vec<Value> {
    let empty = Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut operations = Vec::new();
    for (key, value) in new {
        if NOT_PATCHED.contains(&key.as_str()) {
            continue;
        }
        let before = old.get(key);
        if before.is_some_and(|b| equivalent(b, value)) {
            continue;
        }
        match (value, before) {
            (Value::Object(fields), before) if is_extension(key) => {
                let before = before.and_then(Value::as_object).unwrap_or(&empty);
                diff_fields(&format!("{key}:"), before, fields, true, &mut operations);
            }
            (Value::Object(fields), Some(Value::Object(before))) => {
                diff_fields(&format!("{key}."), before, fields, false, &mut operations);
            }
            _ => operations.push(replace(key, value)),
        }
    }
    for (key, value) in old {
        if NOT_PATCHED.contains(&key.as_str()) || new.contains_key(key) {
            continue;
        }
        match value {
            // Each extension attribute is removed by its own path: targets differ on whether a
            // bare schema URN is a valid path.
            Value::Object(fields) if is_extension(key) => {
                for field in fields.keys() {
                    operations.push(remove(&format!("{key}:{field}")));
                }
            }
            _ => operations.push(remove(key)),
        }
    }
    operations
}

/// Sub-attributes of a complex attribute or of an extension; `nested` allows one more level
/// (a complex attribute inside an extension, such as the enterprise `manager`).
fn diff_fields(
    prefix: &str,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    nested: bool,
    operations: &mut Vec<Value>,
) {
    for (key, value) in new {
        let path = format!("{prefix}{key}");
        match (value, old.get(key)) {
            (_, Some(before)) if equivalent(before, value) => {}
            (Value::Object(fields), Some(Value::Object(before))) if nested => {
                diff_fields(&format!("{path}."), before, fields, false, operations);
            }
            _ => operations.push(replace(&path, value)),
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            operations.push(remove(&format!("{prefix}{key}")));
        }
    }
}

fn is_extension(key: &str) -> bool {
    key.starts_with("urn:")
}

fn replace(path: &str, value: &Value) -> Value {
    json!({ "op": "replace", "path": path, "value": value })
}

fn remove(path: &str) -> Value {
    json!({ "op": "remove", "path": path })
}

/// Equal, except that multi-valued attributes are compared as sets and their `type` values
/// case-insensitively (`Work` and `work` are the same email type).
pub fn equivalent(a: &Value, b: &Value) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalized).collect();
            items.sort_by_cached_key(|item| item.to_string());
            Value::Array(items)
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("type", Value::String(text)) => Value::String(text.to_lowercase()),
                        _ => normalized(value),
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn render(operations: &[Value]) -> Vec<String> {
        operations
            .iter()
            .map(|op| match op.get("value") {
                Some(value) => format!(
                    "{} {} {value}",
                    op["op"].as_str().unwrap(),
                    op["path"].as_str().unwrap()
                ),
                None => format!(
                    "{} {}",
                    op["op"].as_str().unwrap(),
                    op["path"].as_str().unwrap()
                ),
            })
            .collect()
    }

    #[test]
    fn equal_images_need_no_operation() {
        let image = json!({"schemas": ["s"], "userName": "ann", "active": true,
            "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]});
        let reordered = json!({"schemas": ["s"], "userName": "ann", "active": true,
            "emails": [{"value": "b@x", "type": "Home"}, {"value": "a@x", "type": "WORK"}]});
        assert!(patch_operations(&image, &reordered).is_empty());
    }

    #[test]
    fn changed_simple_attributes_are_replaced_and_cleared_ones_removed() {
        let old =
            json!({"userName": "ann", "title": "Engineer", "displayName": "Ann", "active": true});
        let new = json!({"userName": "ann", "displayName": "Ann B", "active": false});
        assert_eq!(
            render(&patch_operations(&old, &new)),
            [
                r#"replace displayName "Ann B""#,
                "replace active false",
                "remove title"
            ]
        );
    }

    #[test]
    fn complex_attributes_change_by_sub_attribute() {
        let old = json!({"name": {"givenName": "Ann", "middleName": "Q", "familyName": "Lee"}});
        let new = json!({"name": {"givenName": "Anne", "familyName": "Lee"}});
        assert_eq!(
            render(&patch_operations(&old, &new)),
            [r#"replace name.givenName "Anne""#, "remove name.middleName"]
        );
        let added = json!({"userName": "ann", "name": {"givenName": "Ann"}});
        assert_eq!(
            render(&patch_operations(&json!({"userName": "ann"}), &added)),
            [r#"replace name {"givenName":"Ann"}"#]
        );
    }

    #[test]
    fn multi_valued_attributes_are_replaced_whole() {
        let old = json!({"emails": [{"value": "a@x", "type": "work", "primary": true}]});
        let new = json!({"emails": [{"value": "c@x", "type": "work", "primary": true}]});
        assert_eq!(
            render(&patch_operations(&old, &new)),
            [r#"replace emails [{"value":"c@x","type":"work","primary":true}]"#]
        );
        assert_eq!(
            render(&patch_operations(&old, &json!({}))),
            ["remove emails"]
        );
    }

    #[test]
    fn extension_attributes_use_urn_paths() {
        let old = json!({ ENTERPRISE: {"department": "Sales", "costCenter": "42",
            "manager": {"value": "m1", "displayName": "Bob"}}});
        let new = json!({ ENTERPRISE: {"department": "Support",
            "manager": {"value": "m2", "displayName": "Bob"}}, "title": "Lead"});
        assert_eq!(
            render(&patch_operations(&old, &new)),
            [
                format!(r#"replace {ENTERPRISE}:department "Support""#),
                format!(r#"replace {ENTERPRISE}:manager.value "m2""#),
                format!("remove {ENTERPRISE}:costCenter"),
                r#"replace title "Lead""#.to_owned(),
            ]
        );
        assert_eq!(
            render(&patch_operations(&new, &json!({"title": "Lead"}))),
            [
                format!("remove {ENTERPRISE}:department"),
                format!("remove {ENTERPRISE}:manager"),
            ]
        );
        assert_eq!(
            render(&patch_operations(
                &json!({}),
                &json!({ ENTERPRISE: {"division": "R&D"}})
            )),
            [format!(r#"replace {ENTERPRISE}:division "R&D""#)]
        );
    }
}
