//! The admin API's documents read into the model. A connection reads like PingFederate's
//! `SpConnection` where it has an equivalent — `outboundProvision` with `targetSettings` and
//! `channels`, each channel's `channelSource` (`dataSource.id`) and `attributeMapping` as a list of
//! `{fieldName, saasFieldInfo: {attributeNames, …}}` — with camelCase keys throughout (see
//! [`super::documents`], which writes them). The conversion goes through the model's own serde
//! form, so the API accepts exactly what a configuration file accepts, unknown fields refused.

use scimbridge_model::{
    Channel, Connection, DataStore, GuardSettings, ProvisioningOptions, TargetSettings,
};
use serde_json::{Map, Value, json};

/// A connection from an API document; every problem found, by field.
pub fn connection_from_api(document: Value) -> Result<Connection, Vec<String>> {
    let Value::Object(mut top) = snake_keys(document) else {
        return Err(vec!["the body must be a JSON object".into()]);
    };
    let Some(Value::Object(mut provision)) = top.remove("outbound_provision") else {
        return Err(vec![
            "outboundProvision: required, with targetSettings and channels".into(),
        ]);
    };
    let mut model = Map::new();
    for key in ["name", "active"] {
        if let Some(value) = top.remove(key) {
            model.insert(key.into(), value);
        }
    }
    let mut problems: Vec<String> = top
        .keys()
        .map(|key| format!("{}: unknown field", camel_case(key)))
        .collect();
    provision.remove("type");
    if let Some(mut target) = provision.remove("target_settings") {
        if let Some(target) = target.as_object_mut() {
            target.remove("stored_secrets");
        }
        model.insert("target".into(), target);
    }
    for (from, to) in [("provisioning_options", "options"), ("guard", "guard")] {
        if let Some(value) = provision.remove(from) {
            model.insert(to.into(), value);
        }
    }
    if let Some(channels) = provision.remove("channels") {
        match channels {
            Value::Array(channels) => {
                let mut converted = Vec::new();
                for (index, channel) in channels.into_iter().enumerate() {
                    match channel_from_api(channel) {
                        Ok(channel) => converted.push(channel),
                        Err(reason) => {
                            problems.push(format!("outboundProvision.channels[{index}]: {reason}"))
                        }
                    }
                }
                model.insert("channel".into(), Value::Array(converted));
            }
            _ => problems.push("outboundProvision.channels: must be a list".into()),
        }
    }
    problems.extend(
        provision
            .keys()
            .map(|key| format!("outboundProvision.{}: unknown field", camel_case(key))),
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let sections = section_problems(&model);
    serde_json::from_value(Value::Object(model)).map_err(|e| {
        // serde stops at the first problem: each section is read on its own too, so that one
        // answer names a problem in each section that has one.
        if sections.is_empty() {
            vec![camel_message(&e.to_string())]
        } else {
            sections
        }
    })
}

/// The first problem of each section of a connection's model form, with the section's path.
fn section_problems(model: &Map<String, Value>) -> Vec<String> {
    fn first<T: serde::de::DeserializeOwned>(value: &Value, at: &str) -> Option<String> {
        serde_json::from_value::<T>(value.clone())
            .err()
            .map(|e| format!("{at}: {}", camel_message(&e.to_string())))
    }
    let mut problems = Vec::new();
    if let Some(target) = model.get("target") {
        problems.extend(first::<TargetSettings>(
            target,
            "outboundProvision.targetSettings",
        ));
    }
    if let Some(options) = model.get("options") {
        problems.extend(first::<ProvisioningOptions>(
            options,
            "outboundProvision.provisioningOptions",
        ));
    }
    if let Some(guard) = model.get("guard") {
        problems.extend(first::<GuardSettings>(guard, "outboundProvision.guard"));
    }
    if let Some(Value::Array(channels)) = model.get("channel") {
        for (index, channel) in channels.iter().enumerate() {
            problems.extend(first::<Channel>(
                channel,
                &format!("outboundProvision.channels[{index}]"),
            ));
        }
    }
    problems
}

fn channel_from_api(channel: Value) -> Result<Value, String> {
    let Value::Object(mut fields) = channel else {
        return Err("must be an object".into());
    };
    if let Some(Value::Object(mut source)) = fields.remove("channel_source") {
        if let Some(id) = source
            .remove("data_source")
            .and_then(|d| d.get("id").cloned())
        {
            fields.insert("data_store".into(), id);
        }
        for key in ["source_settings", "source_location"] {
            if let Some(value) = source.remove(key) {
                fields.insert(key.into(), value);
            }
        }
        if let Some(key) = source.keys().next() {
            return Err(format!("channelSource.{}: unknown field", camel_case(key)));
        }
    }
    for (key, name_key) in [
        ("attribute_mapping", "field_name"),
        ("extension_mapping", "path"),
    ] {
        let Some(list) = fields.remove(key) else {
            continue;
        };
        let Value::Array(items) = list else {
            return Err(format!("{}: must be a list", camel_case(key)));
        };
        let mut map = Map::new();
        for item in items {
            let name = item.get(name_key).and_then(Value::as_str).ok_or_else(|| {
                format!(
                    "{}: each item needs {}",
                    camel_case(key),
                    camel_case(name_key)
                )
            })?;
            let mut info = item.get("saas_field_info").cloned().unwrap_or(json!({}));
            if let Some(info) = info.as_object_mut()
                && let Some(names) = info.remove("attribute_names")
            {
                info.insert("attributes".into(), names);
            }
            map.insert(name.to_owned(), info);
        }
        fields.insert(key.into(), Value::Object(map));
    }
    Ok(Value::Object(fields))
}

pub fn data_store_from_api(document: Value) -> Result<DataStore, Vec<String>> {
    let mut model = snake_keys(document);
    if let Some(map) = model.as_object_mut() {
        map.remove("stored_secrets");
    }
    serde_json::from_value(model).map_err(|e| vec![camel_message(&e.to_string())])
}

/// Renames every key of every object, recursively.
fn rename_keys(value: Value, rename: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (rename(&key), rename_keys(value, rename)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| rename_keys(v, rename)).collect())
        }
        other => other,
    }
}

/// Any model value with the API's camelCase keys: what the API wrote before its documents were
/// typed, which they are tested against.
#[cfg(test)]
pub fn camel_json(value: Value) -> Value {
    rename_keys(value, &camel_case)
}

fn snake_keys(value: Value) -> Value {
    rename_keys(value, &snake_case)
}

pub fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// serde's messages name fields in backticks, in the model's snake_case: say them as the API
/// spells them.
fn camel_message(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(index, part)| {
            if index % 2 == 1 {
                camel_case(part)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_named_as_the_api_spells_them() {
        let problems = connection_from_api(json!({"name": "x", "colour": "red"})).unwrap_err();
        assert_eq!(
            problems,
            ["outboundProvision: required, with targetSettings and channels"]
        );
        let problems = connection_from_api(json!({
            "name": "x", "colour": "red",
            "outboundProvision": {"targetSettings": {}, "channels": [{"attributeMapping": [{}]}]}
        }))
        .unwrap_err();
        assert_eq!(
            problems,
            [
                "colour: unknown field",
                "outboundProvision.channels[0]: attributeMapping: each item needs fieldName"
            ]
        );
        let problems = connection_from_api(json!({
            "name": "x",
            "outboundProvision": {"targetSettings": {"usersPath": "/Users"}, "channels": []}
        }))
        .unwrap_err();
        assert!(problems[0].contains("`scimUrl`"), "{problems:?}");

        // One problem per section that has one, each with its path.
        let problems = connection_from_api(json!({
            "name": "x",
            "outboundProvision": {
                "targetSettings": {"scimUrl": "https://x", "maxRetries": "three"},
                "provisioningOptions": {"removeUserAction": "shred"},
                "channels": [
                    {"name": "a", "channelSource": {"dataSource": {"id": "d"}, "sourceLocation": {"baseDn": "dc=x"}}, "attributeMapping": []},
                    {"name": "b", "timeout": -1, "channelSource": {"dataSource": {"id": "d"}, "sourceLocation": {"baseDn": "dc=x"}}, "attributeMapping": []}
                ]
            }
        }))
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].starts_with("outboundProvision.targetSettings: "),
            "{problems:?}"
        );
        assert!(problems[1].contains("shred"), "{problems:?}");
        assert!(
            problems[2].starts_with("outboundProvision.channels[1]: "),
            "{problems:?}"
        );
    }
}
