//! Stage 3, map: applies a channel's attribute mapping to an entry, giving the SCIM image the
//! target should hold. Pure.

pub mod expression;
pub mod fields;

use scimbridge_model::{
    AccountStatus, AttributeMapping, AttributeValue, ExtensionMapping, ExtensionPath, FieldMapping,
    FieldTarget, ScimField, SourceEntry,
};
use serde_json::{Map, Value, json};

/// The desired state of one user in the target.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredUser {
    pub user_name: String,
    /// Whether the user is active in the source.
    pub active: bool,
    /// The full SCIM 2.0 User resource (without `id` and `meta`).
    pub image: Value,
    /// The image without its create-only fields, for linking an existing target user; `None`
    /// when the mapping has none.
    pub link_image: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("required field userName has no value (mapped from {attributes})")]
    MissingUserName { attributes: String },
    #[error("attribute {attribute} has a binary value, which cannot be mapped to {field}")]
    BinaryValue { attribute: String, field: String },
    #[error(
        "attribute {attribute} has a value with a NUL character, which is not sent to the target as {field} (many SCIM targets cut the text there or refuse it)"
    )]
    NulCharacter { attribute: String, field: String },
    #[error(
        "cannot read active from \"{value}\": expected true/false, yes/no, 1/0, enabled/disabled or active/inactive"
    )]
    NotABoolean { value: String },
    #[error("{0}")]
    InvalidExtensionPath(String),
    #[error(
        "{attribute} \"{value}\" is not a number; the Active Directory account status algorithm reads it as flags"
    )]
    NotAnAccountControl { attribute: String, value: String },
    #[error("the expression for {field} failed: {reason}")]
    Expression { field: String, reason: String },
}

/// Maps one entry. A missing optional field is left out of the image (and an object or array
/// left empty is left out whole), so a value that became empty in the source is cleared in the
/// target when the image replaces the user.
pub fn map_user(
    entry: &SourceEntry,
    mapping: &AttributeMapping,
    extensions: &ExtensionMapping,
    account_status: &AccountStatus,
) -> Result<DesiredUser, MappingError> {
    let value = |field: ScimField| -> Result<Option<String>, MappingError> {
        match mapping.get(&field) {
            Some(field_mapping) => first_value(entry, field.name(), field_mapping),
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
    // A mapped `active` field wins over the account status algorithm.
    let active = match value(ScimField::Active)? {
        Some(text) => parse_boolean(&text).ok_or(MappingError::NotABoolean { value: text })?,
        None => account_active(entry, account_status)?,
    };

    let mut image = Map::new();
    let mut schemas = vec![Value::String(scimbridge_scim::USER_SCHEMA.into())];
    image.insert("userName".into(), Value::String(user_name.clone()));
    let mut name = Map::new();
    // (attribute, type) → the value of that type, in catalogue order (work first).
    let mut typed: Vec<TypedValue> = Vec::new();
    let mut enterprise = Map::new();
    let mut manager = Map::new();
    for field in ScimField::ALL.iter().copied() {
        if matches!(field, ScimField::UserName | ScimField::Active) {
            continue;
        }
        let Some(text) = value(field)? else {
            continue;
        };
        let text = Value::String(text);
        match field.target() {
            FieldTarget::Simple(attribute) => {
                image.insert(attribute.into(), text);
            }
            FieldTarget::Name(sub) => {
                name.insert(sub.into(), text);
            }
            FieldTarget::Typed {
                attribute,
                kind,
                sub,
            } => {
                slot(&mut typed, (attribute, kind)).insert(sub.into(), text);
            }
            FieldTarget::Enterprise(attribute) => {
                enterprise.insert(attribute.into(), text);
            }
            FieldTarget::Manager(sub) => {
                manager.insert(sub.into(), text);
            }
            FieldTarget::Active => {}
        }
    }
    if !name.is_empty() {
        image.insert("name".into(), Value::Object(name));
    }
    insert_multi_valued(&mut image, typed);
    if !manager.is_empty() {
        enterprise.insert("manager".into(), Value::Object(manager));
    }
    if !enterprise.is_empty() {
        schemas.push(Value::String(
            scimbridge_scim::ENTERPRISE_USER_SCHEMA.into(),
        ));
        image.insert(
            scimbridge_scim::ENTERPRISE_USER_SCHEMA.into(),
            Value::Object(enterprise),
        );
    }
    for (urn, fields) in map_extensions(entry, extensions)? {
        schemas.push(Value::String(urn.clone()));
        image.insert(urn, Value::Object(fields));
    }
    image.insert("active".into(), Value::Bool(active));
    let mut ordered = Map::new();
    ordered.insert("schemas".into(), Value::Array(schemas));
    ordered.extend(image);
    let image = Value::Object(ordered);
    let link_image = fields::without_create_only(&image, mapping, extensions);
    Ok(DesiredUser {
        user_name,
        active,
        image,
        link_image,
    })
}

/// Every directory attribute the mapping reads (attribute lists and expressions), so that the
/// source asks for operational attributes too (`memberOf`, `createTimestamp`…).
pub fn mapped_attributes(mapping: &AttributeMapping, extensions: &ExtensionMapping) -> Vec<String> {
    let mut names: Vec<String> = mapping
        .values()
        .chain(extensions.values())
        .flat_map(|m| {
            m.attributes.iter().cloned().chain(
                m.expression
                    .as_deref()
                    .map(expression::referenced_attributes)
                    .unwrap_or_default(),
            )
        })
        .collect();
    names.sort_by_key(|n| n.to_ascii_lowercase());
    names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    names
}

/// Whether the entry's account is enabled, by the channel's account status algorithm.
pub fn account_active(entry: &SourceEntry, status: &AccountStatus) -> Result<bool, MappingError> {
    let first_text = |attribute: &str| {
        entry.values(attribute).iter().find_map(|v| match v {
            AttributeValue::Text(text) => Some(text.trim().to_owned()),
            AttributeValue::Binary(_) => None,
        })
    };
    match status {
        AccountStatus::None => Ok(true),
        AccountStatus::ActiveDirectory { attribute } => match first_text(attribute) {
            None => Ok(true),
            Some(text) => {
                let flags: i64 = text
                    .parse()
                    .map_err(|_| MappingError::NotAnAccountControl {
                        attribute: attribute.clone(),
                        value: text.clone(),
                    })?;
                // ACCOUNTDISABLE, bit 0x2 of userAccountControl.
                Ok(flags & 0x2 == 0)
            }
        },
        AccountStatus::Flag {
            attribute,
            value,
            match_status,
            default_status,
        } => Ok(match first_text(attribute) {
            None => *default_status,
            Some(text) if text.eq_ignore_ascii_case(value) => *match_status,
            Some(_) => !*match_status,
        }),
    }
}

/// One value per type, `type` in lower case; the first value of each attribute (the work one
/// when there is one, catalogue order) is the primary one.
fn insert_multi_valued(image: &mut Map<String, Value>, typed: Vec<TypedValue>) {
    let mut attributes: Vec<(&str, Vec<Value>)> = Vec::new();
    for ((attribute, kind), mut value) in typed {
        value.insert("type".into(), Value::String(kind.into()));
        let values = slot(&mut attributes, attribute);
        value.insert("primary".into(), Value::Bool(values.is_empty()));
        values.push(Value::Object(value));
    }
    for (attribute, values) in attributes {
        image.insert(attribute.into(), Value::Array(values));
    }
}

/// An extension schema URN and its attributes.
type ExtensionObject = (String, Map<String, Value>);

/// One value of a multi-valued attribute: (attribute, type) and its sub-attributes.
type TypedValue = ((&'static str, &'static str), Map<String, Value>);

/// The value for `key` in a list kept in first-seen order, added empty when missing.
fn slot<K: PartialEq, V: Default>(list: &mut Vec<(K, V)>, key: K) -> &mut V {
    let index = match list.iter().position(|(k, _)| *k == key) {
        Some(index) => index,
        None => {
            list.push((key, V::default()));
            list.len() - 1
        }
    };
    &mut list[index].1
}

/// The custom extension objects, by schema URN, leaving out URNs with no value.
fn map_extensions(
    entry: &SourceEntry,
    extensions: &ExtensionMapping,
) -> Result<Vec<ExtensionObject>, MappingError> {
    let mut out: Vec<ExtensionObject> = Vec::new();
    for (path_text, field_mapping) in extensions {
        let path = ExtensionPath::parse(path_text).map_err(MappingError::InvalidExtensionPath)?;
        let value = if field_mapping.multi_valued {
            let values = all_values(entry, path_text, field_mapping)?;
            (!values.is_empty())
                .then(|| Value::Array(values.into_iter().map(Value::String).collect()))
        } else {
            first_value(entry, path_text, field_mapping)?.map(Value::String)
        };
        let Some(value) = value else {
            continue;
        };
        let fields = slot(&mut out, path.urn.clone());
        match (&path.kind, &path.sub) {
            (None, None) => {
                fields.insert(path.attribute.clone(), value);
            }
            (None, Some(sub)) => {
                let slot = fields
                    .entry(path.attribute.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(object) = slot {
                    object.insert(sub.clone(), value);
                }
            }
            (Some(kind), Some(sub)) => {
                let slot = fields
                    .entry(path.attribute.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = slot {
                    let position = items
                        .iter()
                        .position(|item| item.get("type").and_then(Value::as_str) == Some(kind));
                    match position.and_then(|p| items.get_mut(p)) {
                        Some(Value::Object(item)) => {
                            item.insert(sub.clone(), value);
                        }
                        _ => items.push(json!({ "type": kind, sub.as_str(): value })),
                    }
                }
            }
            // The parser gives a type filter only with a sub-attribute.
            (Some(_), None) => {}
        }
    }
    Ok(out)
}

/// The first non-empty value of the mapped attributes, else the default value.
fn first_value(
    entry: &SourceEntry,
    field: &str,
    mapping: &FieldMapping,
) -> Result<Option<String>, MappingError> {
    values(entry, field, mapping, true).map(|v| v.into_iter().next())
}

/// Every non-empty value of the mapped attributes in order, else the default value.
fn all_values(
    entry: &SourceEntry,
    field: &str,
    mapping: &FieldMapping,
) -> Result<Vec<String>, MappingError> {
    values(entry, field, mapping, false)
}

fn values(
    entry: &SourceEntry,
    field: &str,
    mapping: &FieldMapping,
    first_only: bool,
) -> Result<Vec<String>, MappingError> {
    let mut values = Vec::new();
    if let Some(source) = &mapping.expression {
        match expression::evaluate(source, entry) {
            Ok(results) => {
                values.extend(results.iter().filter_map(|r| mapping.transform(r)));
                if first_only {
                    values.truncate(1);
                }
                if values.iter().any(|v| v.contains('\0')) {
                    return Err(MappingError::Expression {
                        field: field.to_owned(),
                        reason: "its value has a NUL character, which is not sent to the target"
                            .into(),
                    });
                }
            }
            // The default value stands in for an expression that fails on this entry.
            Err(_)
                if mapping
                    .default_value
                    .as_deref()
                    .is_some_and(|d| !d.is_empty()) => {}
            Err(e) => {
                return Err(MappingError::Expression {
                    field: field.to_owned(),
                    reason: e.to_string(),
                });
            }
        }
    }
    let attributes: &[String] = if mapping.expression.is_some() {
        &[]
    } else {
        &mapping.attributes
    };
    for attribute in attributes {
        for value in entry.values(attribute) {
            match value {
                AttributeValue::Text(text) if !text.trim().is_empty() => {
                    // Parsed, trimmed and cased as the mapping says; nothing left, no value.
                    if let Some(value) = mapping.transform(text) {
                        // Valid JSON (\u0000), but targets cut the text there or refuse the
                        // request; it comes from a base64 value, LDAP, or a `\00` in a DN.
                        if value.contains('\0') {
                            return Err(MappingError::NulCharacter {
                                attribute: attribute.clone(),
                                field: field.to_owned(),
                            });
                        }
                        values.push(value);
                        if first_only {
                            return Ok(values);
                        }
                    }
                }
                AttributeValue::Text(_) => {}
                AttributeValue::Binary(_) => {
                    return Err(MappingError::BinaryValue {
                        attribute: attribute.clone(),
                        field: field.to_owned(),
                    });
                }
            }
        }
    }
    if values.is_empty()
        && let Some(default) = mapping.default_value.clone().filter(|d| !d.is_empty())
    {
        values.push(default);
    }
    Ok(values)
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
                        ..FieldMapping::default()
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
        let user = map_user(
            &e,
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap();
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
        let user = map_user(
            &e,
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap();
        assert_eq!(user.image["displayName"], "Display");
        let e = entry(&[("uid", "a"), ("cn", "Common")]);
        assert_eq!(
            map_user(
                &e,
                &full_mapping(),
                &ExtensionMapping::new(),
                &AccountStatus::None
            )
            .unwrap()
            .image["displayName"],
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
        let user = map_user(&e, &m, &ExtensionMapping::new(), &AccountStatus::None).unwrap();
        assert!(user.image.get("title").is_none());
        assert!(user.image.get("name").is_none());
    }

    #[test]
    fn missing_user_name_fails_the_record_with_a_reason() {
        let err = map_user(
            &entry(&[("cn", "x")]),
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap_err();
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
            let user = map_user(
                &e,
                &full_mapping(),
                &ExtensionMapping::new(),
                &AccountStatus::None,
            )
            .unwrap();
            assert_eq!(user.active, expected, "{text}");
            assert_eq!(user.image["active"], expected);
        }
        let e = entry(&[("uid", "a"), ("employeeStatus", "maybe")]);
        let err = map_user(
            &e,
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"maybe\""));
    }

    #[test]
    fn binary_values_are_refused() {
        let mut e = entry(&[("uid", "a")]);
        e.attributes.insert(
            "title".into(),
            vec![AttributeValue::Binary(vec![0xff, 0xfe])],
        );
        let err = map_user(
            &e,
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap_err();
        assert!(matches!(err, MappingError::BinaryValue { .. }));
    }

    #[test]
    fn a_value_with_a_nul_is_not_sent_and_fails_the_entry_with_the_attribute_named() {
        let e = entry(&[("uid", "a"), ("title", "Chief\0Officer")]);
        let err = map_user(
            &e,
            &full_mapping(),
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute title has a value with a NUL character, which is not sent to the target as title (many SCIM targets cut the text there or refuse it)"
        );
        // A `\00` in a DN becomes a NUL once the cn is taken out of it.
        let mut mapping = full_mapping();
        mapping.insert(
            ScimField::Department,
            FieldMapping {
                attributes: vec!["departmentDn".into()],
                parser: scimbridge_model::ValueParser::ExtractCnFromDn,
                ..FieldMapping::default()
            },
        );
        let e = entry(&[("uid", "a"), ("departmentDn", "cn=R\\00D,ou=org")]);
        let err =
            map_user(&e, &mapping, &ExtensionMapping::new(), &AccountStatus::None).unwrap_err();
        assert!(matches!(err, MappingError::NulCharacter { .. }), "{err}");
        // From an expression, with a default value that must not hide it.
        let mut mapping = full_mapping();
        mapping.insert(
            ScimField::NickName,
            FieldMapping {
                expression: Some("[title]".into()),
                default_value: Some("none".into()),
                ..FieldMapping::default()
            },
        );
        let e = entry(&[("uid", "a"), ("title", "x\0y")]);
        mapping.remove(&ScimField::Title);
        let err =
            map_user(&e, &mapping, &ExtensionMapping::new(), &AccountStatus::None).unwrap_err();
        assert!(err.to_string().contains("NUL character"), "{err}");
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

    fn extension(pairs: &[(&str, &[&str], bool)]) -> ExtensionMapping {
        pairs
            .iter()
            .map(|(path, attributes, multi_valued)| {
                (
                    (*path).to_owned(),
                    FieldMapping {
                        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
                        default_value: None,
                        multi_valued: *multi_valued,
                        ..FieldMapping::default()
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_attribute_family_lands_in_its_place() {
        let e = entry(&[
            ("uid", "ann"),
            ("middle", "Q"),
            ("prefix", "Dr."),
            ("nick", "Annie"),
            ("lang", "fr-CA"),
            ("tz", "America/Toronto"),
            ("mail", "ann@corp.example"),
            ("homeMail", "ann@home.example"),
            ("phone", "+1 555 0100"),
            ("mobile", "+1 555 0101"),
            ("jpegURL", "https://img.example/ann.jpg"),
            ("street", "1 Main St"),
            ("l", "Toronto"),
            ("c", "CA"),
            ("homeCity", "Oakville"),
            ("employeeNumber", "42"),
            ("ou", "R&D"),
            ("managerId", "m-7"),
            ("managerName", "Bob"),
        ]);
        let m = mapping(&[
            (ScimField::UserName, &["uid"], None),
            (ScimField::MiddleName, &["middle"], None),
            (ScimField::HonorificPrefix, &["prefix"], None),
            (ScimField::NickName, &["nick"], None),
            (ScimField::PreferredLanguage, &["lang"], None),
            (ScimField::Timezone, &["tz"], None),
            (ScimField::UserType, &["employeeType"], Some("Employee")),
            (ScimField::WorkEmail, &["mail"], None),
            (ScimField::HomeEmail, &["homeMail"], None),
            (ScimField::OtherEmail, &["otherMail"], None),
            (ScimField::WorkPhone, &["phone"], None),
            (ScimField::MobilePhone, &["mobile"], None),
            (ScimField::Photo, &["jpegURL"], None),
            (ScimField::WorkStreet, &["street"], None),
            (ScimField::WorkCity, &["l"], None),
            (ScimField::WorkCountry, &["c"], None),
            (ScimField::HomeCity, &["homeCity"], None),
            (ScimField::EmployeeNumber, &["employeeNumber"], None),
            (ScimField::Department, &["ou"], None),
            (ScimField::ManagerId, &["managerId"], None),
            (ScimField::ManagerDisplayName, &["managerName"], None),
        ]);
        let image = map_user(&e, &m, &ExtensionMapping::new(), &AccountStatus::None)
            .unwrap()
            .image;
        assert_eq!(
            image,
            json!({
                "schemas": [scimbridge_scim::USER_SCHEMA, scimbridge_scim::ENTERPRISE_USER_SCHEMA],
                "userName": "ann",
                "name": {"middleName": "Q", "honorificPrefix": "Dr."},
                "nickName": "Annie",
                "userType": "Employee",
                "preferredLanguage": "fr-CA",
                "timezone": "America/Toronto",
                "emails": [
                    {"value": "ann@corp.example", "type": "work", "primary": true},
                    {"value": "ann@home.example", "type": "home", "primary": false}
                ],
                "phoneNumbers": [
                    {"value": "+1 555 0100", "type": "work", "primary": true},
                    {"value": "+1 555 0101", "type": "mobile", "primary": false}
                ],
                "photos": [{"value": "https://img.example/ann.jpg", "type": "photo", "primary": true}],
                "addresses": [
                    {"streetAddress": "1 Main St", "locality": "Toronto", "country": "CA", "type": "work", "primary": true},
                    {"locality": "Oakville", "type": "home", "primary": false}
                ],
                scimbridge_scim::ENTERPRISE_USER_SCHEMA: {
                    "employeeNumber": "42",
                    "department": "R&D",
                    "manager": {"value": "m-7", "displayName": "Bob"}
                },
                "active": true
            })
        );
        // Without a work email, the first one present is the primary one.
        let e = entry(&[("uid", "ann"), ("homeMail", "ann@home.example")]);
        let image = map_user(&e, &m, &ExtensionMapping::new(), &AccountStatus::None)
            .unwrap()
            .image;
        assert_eq!(
            image["emails"],
            json!([{"value": "ann@home.example", "type": "home", "primary": true}])
        );
    }

    #[test]
    fn emptied_objects_and_extensions_are_left_out_whole() {
        let m = mapping(&[
            (ScimField::UserName, &["uid"], None),
            (ScimField::WorkCity, &["l"], None),
            (ScimField::Department, &["ou"], None),
            (ScimField::GivenName, &["givenName"], None),
        ]);
        let image = map_user(
            &entry(&[("uid", "ann")]),
            &m,
            &ExtensionMapping::new(),
            &AccountStatus::None,
        )
        .unwrap()
        .image;
        assert_eq!(
            image,
            json!({"schemas": [scimbridge_scim::USER_SCHEMA], "userName": "ann", "active": true})
        );
    }

    #[test]
    fn custom_extension_attributes_of_every_kind() {
        let urn = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        let other = "urn:example:params:scim:schemas:extension:other:1.0:User";
        let e = entry(&[
            ("uid", "ann"),
            ("badge", "B-1"),
            ("skill", "rust"),
            ("skill", "ldap"),
            ("floor", "3"),
            ("room", "301"),
            ("laptop", "SN-9"),
            ("phoneSerial", "P-2"),
        ]);
        let extensions = extension(&[
            (&format!("{urn}:badgeNumber"), &["badge"], false),
            (&format!("{urn}:skills"), &["skill"], true),
            (&format!("{urn}:office.floor"), &["floor"], false),
            (&format!("{urn}:office.room"), &["room"], false),
            (
                &format!("{urn}:devices[type=laptop].serial"),
                &["laptop"],
                false,
            ),
            (
                &format!("{urn}:devices[type=phone].serial"),
                &["phoneSerial"],
                false,
            ),
            (&format!("{other}:nothing"), &["absent"], false),
        ]);
        let m = mapping(&[(ScimField::UserName, &["uid"], None)]);
        let image = map_user(&e, &m, &extensions, &AccountStatus::None)
            .unwrap()
            .image;
        assert_eq!(image["schemas"], json!([scimbridge_scim::USER_SCHEMA, urn]));
        assert_eq!(
            image[urn],
            json!({
                "badgeNumber": "B-1",
                "devices": [{"type": "laptop", "serial": "SN-9"}, {"type": "phone", "serial": "P-2"}],
                "office": {"floor": "3", "room": "301"},
                "skills": ["rust", "ldap"]
            })
        );
        assert!(image.get(other).is_none());
    }

    #[test]
    fn mapping_options_shape_the_values() {
        let e = entry(&[
            ("mail", " Ann.Lee@Example.COM "),
            ("manager", "cn=Bob Stone,ou=people,dc=example,dc=com"),
        ]);
        let mut m = mapping(&[
            (ScimField::UserName, &["mail"], None),
            (ScimField::ManagerDisplayName, &["manager"], None),
        ]);
        if let Some(user_name) = m.get_mut(&ScimField::UserName) {
            user_name.trim = true;
            user_name.parser = scimbridge_model::ValueParser::ExtractUserNameFromEmail;
            user_name.character_case = scimbridge_model::CharacterCase::Lower;
        }
        if let Some(manager) = m.get_mut(&ScimField::ManagerDisplayName) {
            manager.parser = scimbridge_model::ValueParser::ExtractCnFromDn;
        }
        let user = map_user(&e, &m, &ExtensionMapping::new(), &AccountStatus::None).unwrap();
        assert_eq!(user.user_name, "ann.lee");
        assert_eq!(
            user.image[scimbridge_scim::ENTERPRISE_USER_SCHEMA]["manager"]["displayName"],
            "Bob Stone"
        );
    }
}

#[cfg(test)]
mod account_status_tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(attribute: &str, value: Option<&str>) -> SourceEntry {
        let mut attributes = BTreeMap::new();
        if let Some(value) = value {
            attributes.insert(
                attribute.to_ascii_lowercase(),
                vec![AttributeValue::Text(value.into())],
            );
        }
        SourceEntry {
            dn: "cn=x".into(),
            guid: "g".into(),
            attributes,
        }
    }

    #[test]
    fn active_directory_reads_the_disabled_bit() {
        let status = AccountStatus::ActiveDirectory {
            attribute: "userAccountControl".into(),
        };
        let active = |v: Option<&str>| account_active(&entry("userAccountControl", v), &status);
        assert_eq!(active(Some("512")), Ok(true));
        assert_eq!(active(Some("514")), Ok(false));
        assert_eq!(active(Some("66050")), Ok(false));
        assert_eq!(active(None), Ok(true));
        let err = active(Some("disabled")).unwrap_err().to_string();
        assert!(err.contains("userAccountControl"), "{err}");
    }

    #[test]
    fn flag_compares_with_the_value_and_falls_back_to_the_default() {
        let status = AccountStatus::Flag {
            attribute: "nsAccountLock".into(),
            value: "true".into(),
            match_status: false,
            default_status: true,
        };
        let active = |v: Option<&str>| account_active(&entry("nsAccountLock", v), &status).unwrap();
        assert!(!active(Some("TRUE")));
        assert!(active(Some("false")));
        assert!(active(None));
        let inverted = AccountStatus::Flag {
            attribute: "employeeStatus".into(),
            value: "active".into(),
            match_status: true,
            default_status: false,
        };
        let active =
            |v: Option<&str>| account_active(&entry("employeeStatus", v), &inverted).unwrap();
        assert!(active(Some("Active")));
        assert!(!active(Some("terminated")));
        assert!(!active(None));
    }

    #[test]
    fn a_mapped_active_field_wins() {
        let mut mapping = AttributeMapping::new();
        mapping.insert(ScimField::UserName, FieldMapping::from_attributes(&["uid"]));
        mapping.insert(
            ScimField::Active,
            FieldMapping::from_attributes(&["employeeStatus"]),
        );
        let mut e = entry("employeeStatus", Some("yes"));
        e.attributes
            .insert("uid".into(), vec![AttributeValue::Text("ann".into())]);
        e.attributes.insert(
            "useraccountcontrol".into(),
            vec![AttributeValue::Text("514".into())],
        );
        let status = AccountStatus::ActiveDirectory {
            attribute: "userAccountControl".into(),
        };
        assert!(
            map_user(&e, &mapping, &ExtensionMapping::new(), &status)
                .unwrap()
                .active
        );
        mapping.remove(&ScimField::Active);
        assert!(
            !map_user(&e, &mapping, &ExtensionMapping::new(), &status)
                .unwrap()
                .active
        );
    }
}
