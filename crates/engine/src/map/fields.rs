//! Where a mapped field sits in a SCIM image, for the mapping options that act on one field
//! after mapping: create-only (keep the target's value on updates) and masked (hide the value
//! in plans and `mapping test`). Pure.

use scimbridge_model::{AttributeMapping, ExtensionMapping, ExtensionPath, FieldTarget};
use serde_json::{Map, Value};

/// What a masked value is shown as.
pub const MASK: &str = "********";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    /// The element of a multi-valued attribute with this `type`.
    Typed(String),
}

fn field_steps(target: FieldTarget) -> Option<Vec<Step>> {
    let key = |k: &str| Step::Key(k.to_owned());
    let enterprise = scimbridge_scim::ENTERPRISE_USER_SCHEMA;
    Some(match target {
        FieldTarget::Simple(attribute) => vec![key(attribute)],
        FieldTarget::Name(sub) => vec![key("name"), key(sub)],
        FieldTarget::Typed {
            attribute,
            kind,
            sub,
        } => vec![key(attribute), Step::Typed(kind.to_owned()), key(sub)],
        FieldTarget::Enterprise(attribute) => vec![key(enterprise), key(attribute)],
        FieldTarget::Manager(sub) => vec![key(enterprise), key("manager"), key(sub)],
        FieldTarget::Active => return None,
    })
}

fn extension_steps(path: &str) -> Option<Vec<Step>> {
    let path = ExtensionPath::parse(path).ok()?;
    let mut steps = vec![Step::Key(path.urn), Step::Key(path.attribute)];
    if let Some(kind) = path.kind {
        steps.push(Step::Typed(kind));
    }
    if let Some(sub) = path.sub {
        steps.push(Step::Key(sub));
    }
    Some(steps)
}

/// The paths of the fields whose mapping matches `wanted`.
fn selected_paths(
    mapping: &AttributeMapping,
    extensions: &ExtensionMapping,
    wanted: impl Fn(&scimbridge_model::FieldMapping) -> bool,
) -> Vec<Vec<Step>> {
    mapping
        .iter()
        .filter(|(_, m)| wanted(m))
        .filter_map(|(field, _)| field_steps(field.target()))
        .chain(
            extensions
                .iter()
                .filter(|(_, m)| wanted(m))
                .filter_map(|(path, _)| extension_steps(path)),
        )
        .collect()
}

fn get<'a>(value: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(value);
    };
    let next = match step {
        Step::Key(key) => value.get(key)?,
        Step::Typed(kind) => value
            .as_array()?
            .iter()
            .find(|item| item.get("type").and_then(Value::as_str) == Some(kind))?,
    };
    get(next, rest)
}

fn get_mut<'a>(value: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(value);
    };
    let next = match step {
        Step::Key(key) => value.get_mut(key)?,
        Step::Typed(kind) => value
            .as_array_mut()?
            .iter_mut()
            .find(|item| item.get("type").and_then(Value::as_str) == Some(kind))?,
    };
    get_mut(next, rest)
}

/// Sets the value at the path, creating what is missing on the way.
fn set(value: &mut Value, steps: &[Step], new: Value) {
    let Some((step, rest)) = steps.split_first() else {
        *value = new;
        return;
    };
    match step {
        Step::Key(key) => {
            if !value.is_object() {
                *value = Value::Object(Map::new());
            }
            if let Value::Object(map) = value {
                let default = if matches!(rest.first(), Some(Step::Typed(_))) {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                };
                set(map.entry(key.clone()).or_insert(default), rest, new);
            }
        }
        Step::Typed(kind) => {
            if !value.is_array() {
                *value = Value::Array(Vec::new());
            }
            if let Value::Array(items) = value {
                let position = items
                    .iter()
                    .position(|item| item.get("type").and_then(Value::as_str) == Some(kind));
                let index = position.unwrap_or_else(|| {
                    let mut item = Map::new();
                    item.insert("type".into(), Value::String(kind.clone()));
                    items.push(Value::Object(item));
                    items.len() - 1
                });
                if let Some(item) = items.get_mut(index) {
                    set(item, rest, new);
                }
            }
        }
    }
}

/// Removes the value at the path, and the objects and typed elements it leaves empty.
fn remove(value: &mut Value, steps: &[Step]) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    match step {
        Step::Key(key) => {
            let Value::Object(map) = value else { return };
            if rest.is_empty() {
                map.remove(key);
                return;
            }
            if let Some(inner) = map.get_mut(key) {
                remove(inner, rest);
                if is_empty_container(inner) {
                    map.remove(key);
                }
            }
        }
        Step::Typed(kind) => {
            let Value::Array(items) = value else { return };
            for item in items.iter_mut() {
                if item.get("type").and_then(Value::as_str) == Some(kind) {
                    remove(item, rest);
                }
            }
            // An element left with only its type (and primary flag) carries nothing.
            items.retain(|item| {
                item.as_object()
                    .is_none_or(|map| map.keys().any(|k| k != "type" && k != "primary"))
            });
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// For an update: the create-only fields keep the value last written to the target (or stay
/// absent when none was), so an update never changes them.
pub fn keep_create_only(
    desired: &mut Value,
    applied: &Value,
    mapping: &AttributeMapping,
    extensions: &ExtensionMapping,
) {
    for steps in selected_paths(mapping, extensions, |m| m.create_only) {
        match get(applied, &steps).cloned() {
            Some(previous) => set(desired, &steps, previous),
            None => remove(desired, &steps),
        }
    }
}

/// The image without its create-only fields (what linking an existing user may write); `None`
/// when the mapping has no create-only field.
pub fn without_create_only(
    image: &Value,
    mapping: &AttributeMapping,
    extensions: &ExtensionMapping,
) -> Option<Value> {
    let paths = selected_paths(mapping, extensions, |m| m.create_only);
    if paths.is_empty() {
        return None;
    }
    let mut stripped = image.clone();
    for steps in paths {
        remove(&mut stripped, &steps);
    }
    Some(stripped)
}

/// A copy of the image with the masked fields' values replaced by [`MASK`].
pub fn mask(image: &Value, mapping: &AttributeMapping, extensions: &ExtensionMapping) -> Value {
    let mut masked = image.clone();
    for steps in selected_paths(mapping, extensions, |m| m.masked) {
        if let Some(value) = get_mut(&mut masked, &steps) {
            *value = match value {
                Value::Array(items) => Value::Array(vec![Value::String(MASK.into()); items.len()]),
                _ => Value::String(MASK.into()),
            };
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use scimbridge_model::{FieldMapping, ScimField};
    use serde_json::json;

    fn option(create_only: bool, masked: bool) -> FieldMapping {
        FieldMapping {
            attributes: vec!["x".into()],
            create_only,
            masked,
            ..FieldMapping::default()
        }
    }

    #[test]
    fn create_only_fields_keep_the_target_value_on_update() {
        let mut mapping = AttributeMapping::new();
        mapping.insert(ScimField::Password, option(true, true));
        mapping.insert(ScimField::WorkEmail, option(true, false));
        mapping.insert(ScimField::Title, option(false, false));
        let mut extensions = ExtensionMapping::new();
        extensions.insert("urn:ex:1.0:badge".into(), option(true, false));
        let applied = json!({"userName": "ann", "password": "first",
            "emails": [{"type": "work", "value": "ann@old", "primary": true}],
            "title": "Engineer"});
        let mut desired = json!({"userName": "ann", "password": "second",
            "emails": [{"type": "work", "value": "ann@new", "primary": true}],
            "title": "Lead", "urn:ex:1.0": {"badge": "7"}});
        keep_create_only(&mut desired, &applied, &mapping, &extensions);
        assert_eq!(
            desired,
            json!({"userName": "ann", "password": "first",
                "emails": [{"type": "work", "value": "ann@old", "primary": true}],
                "title": "Lead"})
        );
        let mut fresh = json!({"userName": "ann"});
        keep_create_only(&mut fresh, &applied, &mapping, &extensions);
        assert_eq!(
            fresh["emails"],
            json!([{"type": "work", "value": "ann@old"}])
        );
    }

    #[test]
    fn masked_fields_are_hidden() {
        let mut mapping = AttributeMapping::new();
        mapping.insert(ScimField::Password, option(false, true));
        mapping.insert(ScimField::MobilePhone, option(false, true));
        let image = json!({"userName": "ann", "password": "s3cret",
            "phoneNumbers": [{"type": "mobile", "value": "+1 555"}]});
        let masked = mask(&image, &mapping, &ExtensionMapping::new());
        assert_eq!(masked["password"], MASK);
        assert_eq!(masked["phoneNumbers"][0]["value"], MASK);
        assert_eq!(masked["userName"], "ann");
    }
}
