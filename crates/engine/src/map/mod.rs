//! Stage 3, map: applies a channel's attribute mapping to an entry, giving the SCIM image the
//! target should hold. Pure.

use scimbridge_model::{AttributeMapping, AttributeValue, FieldMapping, ScimField, SourceEntry};
use serde_json::{Map, Value, json};

/// The desired state of one user in the target.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredUser {
    pub user_name: String,
    /// Whether the user is active in the source.
    pub active: bool,
    /// The full SCIM 2.0 User resource (without `id` and `meta`).
    pub image: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("required field userName has no value (mapped from {attributes})")]
    MissingUserName { attributes: String },
    #[error("attribute {attribute} has a binary value, which cannot be mapped to {field}")]
    BinaryValue { attribute: String, field: ScimField },
    #[error(
        "cannot read active from \"{value}\": expected true/false, yes/no, 1/0, enabled/disabled or active/inactive"
    )]
    NotABoolean { value: String },
}

/// Maps one entry. A missing optional field is left out of the image, so a value that became
/// empty in the source is cleared in the target when the image replaces the user.
pub fn map_user(
    entry: &SourceEntry,
    mapping: &AttributeMapping,
) -> Result<DesiredUser, MappingError> {
    let value = |field: ScimField| -> Result<Option<String>, MappingError> {
        match mapping.get(&field) {
            Some(field_mapping) => field_value(entry, field, field_mapping),
            None => Ok(None),
        }
    };
    let user_name = value(ScimField::UserName)?.ok_or_else(|| MappingError::MissingUserName {
        attributes: mapping
            .get(&ScimField::UserName)
            .map(|m| m.attributes.join(", "))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "nothing".into()),
    })?;
    let active = match value(ScimField::Active)? {
        Some(text) => parse_boolean(&text).ok_or(MappingError::NotABoolean { value: text })?,
        None => true,
    };

    let mut image = Map::new();
    image.insert("schemas".into(), json!([scimbridge_scim::USER_SCHEMA]));
    image.insert("userName".into(), Value::String(user_name.clone()));
    if let Some(external_id) = value(ScimField::ExternalId)? {
        image.insert("externalId".into(), Value::String(external_id));
    }
    let mut name = Map::new();
    for (field, key) in [
        (ScimField::FormattedName, "formatted"),
        (ScimField::FamilyName, "familyName"),
        (ScimField::GivenName, "givenName"),
    ] {
        if let Some(text) = value(field)? {
            name.insert(key.into(), Value::String(text));
        }
    }
    if !name.is_empty() {
        image.insert("name".into(), Value::Object(name));
    }
    if let Some(display_name) = value(ScimField::DisplayName)? {
        image.insert("displayName".into(), Value::String(display_name));
    }
    if let Some(title) = value(ScimField::Title)? {
        image.insert("title".into(), Value::String(title));
    }
    if let Some(email) = value(ScimField::WorkEmail)? {
        image.insert(
            "emails".into(),
            json!([{ "value": email, "type": "work", "primary": true }]),
        );
    }
    image.insert("active".into(), Value::Bool(active));
    Ok(DesiredUser {
        user_name,
        active,
        image: Value::Object(image),
    })
}

/// The first non-empty value of the mapped attributes, else the default value.
fn field_value(
    entry: &SourceEntry,
    field: ScimField,
    mapping: &FieldMapping,
) -> Result<Option<String>, MappingError> {
    for attribute in &mapping.attributes {
        for value in entry.values(attribute) {
            match value {
                AttributeValue::Text(text) if !text.trim().is_empty() => {
                    return Ok(Some(text.clone()));
                }
                AttributeValue::Text(_) => {}
                AttributeValue::Binary(_) => {
                    return Err(MappingError::BinaryValue {
                        attribute: attribute.clone(),
                        field,
                    });
                }
            }
        }
    }
    Ok(mapping.default_value.clone().filter(|d| !d.is_empty()))
}

fn parse_boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "enabled" | "active" | "on" => Some(true),
        "false" | "no" | "0" | "disabled" | "inactive" | "off" => Some(false),
        _ => None,
    }
}

/// A copy of the image with `active` set, used to disable a user.
pub fn with_active(image: &Value, active: bool) -> Value {
    let mut image = image.clone();
    if let Value::Object(map) = &mut image {
        map.insert("active".into(), Value::Bool(active));
    }
    image
}

/// Names of the top-level attributes that differ between two images, for plan reasons.
pub fn changed_attributes(before: Option<&Value>, after: &Value) -> Vec<String> {
    let empty = Map::new();
    let before = before.and_then(Value::as_object).unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut names: Vec<String> = after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(value))
        .map(|(key, _)| key.clone())
        .chain(
            before
                .keys()
                .filter(|key| !after.contains_key(*key))
                .cloned(),
        )
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> SourceEntry {
        let mut attributes: BTreeMap<String, Vec<AttributeValue>> = BTreeMap::new();
        for (name, value) in pairs {
            attributes
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(AttributeValue::Text((*value).to_owned()));
        }
        SourceEntry {
            dn: "uid=x,dc=example,dc=com".into(),
            guid: "g".into(),
            attributes,
        }
    }

    fn mapping(pairs: &[(ScimField, &[&str], Option<&str>)]) -> AttributeMapping {
        pairs
            .iter()
            .map(|(field, attributes, default)| {
                (
                    *field,
                    FieldMapping {
                        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
                        default_value: default.map(str::to_owned),
                    },
                )
            })
            .collect()
    }

    fn full_mapping() -> AttributeMapping {
        mapping(&[
            (ScimField::UserName, &["uid"], None),
            (ScimField::ExternalId, &["entryUUID"], None),
            (ScimField::GivenName, &["givenName"], None),
            (ScimField::FamilyName, &["sn"], None),
            (ScimField::FormattedName, &["cn"], None),
            (ScimField::DisplayName, &["displayName", "cn"], None),
            (ScimField::WorkEmail, &["mail"], None),
            (ScimField::Title, &["title"], Some("Staff")),
            (ScimField::Active, &["employeeStatus"], None),
        ])
    }

    #[test]
    fn maps_every_field_into_the_scim_image() {
        let e = entry(&[
            ("uid", "zoe.mueller"),
            ("entryUUID", "u-1"),
            ("givenName", "Zoë"),
            ("sn", "Müller"),
            ("cn", "Zoë Müller"),
            ("mail", "zoe.mueller@example.com"),
            ("mail", "zm@example.com"),
        ]);
        let user = map_user(&e, &full_mapping()).unwrap();
        assert_eq!(
            user.image,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "zoe.mueller",
                "externalId": "u-1",
                "name": {"formatted": "Zoë Müller", "familyName": "Müller", "givenName": "Zoë"},
                "displayName": "Zoë Müller",
                "title": "Staff",
                "emails": [{"value": "zoe.mueller@example.com", "type": "work", "primary": true}],
                "active": true
            })
        );
        assert!(user.active);
    }

    #[test]
    fn attribute_names_are_case_insensitive_and_order_sets_priority() {
        let e = entry(&[("UID", "a"), ("CN", "Common"), ("displayname", "Display")]);
        let user = map_user(&e, &full_mapping()).unwrap();
        assert_eq!(user.image["displayName"], "Display");
        let e = entry(&[("uid", "a"), ("cn", "Common")]);
        assert_eq!(
            map_user(&e, &full_mapping()).unwrap().image["displayName"],
            "Common"
        );
    }

    #[test]
    fn empty_values_are_left_out_so_the_target_clears_them() {
        let e = entry(&[("uid", "a"), ("title", "  ")]);
        let m = mapping(&[
            (ScimField::UserName, &["uid"], None),
            (ScimField::Title, &["title"], None),
        ]);
        let user = map_user(&e, &m).unwrap();
        assert!(user.image.get("title").is_none());
        assert!(user.image.get("name").is_none());
    }

    #[test]
    fn missing_user_name_fails_the_record_with_a_reason() {
        let err = map_user(&entry(&[("cn", "x")]), &full_mapping()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "required field userName has no value (mapped from uid)"
        );
    }

    #[test]
    fn active_is_read_as_a_boolean() {
        for (text, expected) in [
            ("FALSE", false),
            ("disabled", false),
            ("1", true),
            ("Active", true),
        ] {
            let e = entry(&[("uid", "a"), ("employeeStatus", text)]);
            let user = map_user(&e, &full_mapping()).unwrap();
            assert_eq!(user.active, expected, "{text}");
            assert_eq!(user.image["active"], expected);
        }
        let e = entry(&[("uid", "a"), ("employeeStatus", "maybe")]);
        let err = map_user(&e, &full_mapping()).unwrap_err();
        assert!(err.to_string().contains("\"maybe\""));
    }

    #[test]
    fn binary_values_are_refused() {
        let mut e = entry(&[("uid", "a")]);
        e.attributes.insert(
            "title".into(),
            vec![AttributeValue::Binary(vec![0xff, 0xfe])],
        );
        let err = map_user(&e, &full_mapping()).unwrap_err();
        assert!(matches!(err, MappingError::BinaryValue { .. }));
    }

    #[test]
    fn reports_changed_attributes() {
        let before = json!({"userName": "a", "title": "x", "displayName": "A"});
        let after = json!({"userName": "a", "title": "y", "active": true});
        assert_eq!(
            changed_attributes(Some(&before), &after),
            ["active", "displayName", "title"]
        );
    }
}
