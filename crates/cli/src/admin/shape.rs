//! The admin API's JSON documents and the model. A connection reads like PingFederate's
//! `SpConnection` where it has an equivalent — `outboundProvision` with `targetSettings` and
//! `channels`, each channel's `channelSource` (`dataSource.id`) and `attributeMapping` as a list of
//! `{fieldName, saasFieldInfo: {attributeNames, …}}` — with camelCase keys throughout. The
//! conversion goes through the model's own serde form, so the API accepts exactly what a
//! configuration file accepts.

use scimbridge_model::{
    Channel, Connection, DataStore, GuardSettings, ProvisioningOptions, TargetSettings,
};
use serde_json::{Map, Value, json};

/// A connection as the API shows it: literal secrets left out (they are write-only), their
/// names listed in `targetSettings.storedSecrets`.
pub fn connection_to_api(connection: &Connection) -> Value {
    let mut shown = connection.clone();
    let mut stored = Vec::new();
    for (name, secret) in shown.target.secret_fields_mut() {
        if secret.as_ref().is_some_and(|s| s.is_literal()) {
            *secret = None;
            stored.push(Value::String(camel_case(name)));
        }
    }
    let mut model = serde_json::to_value(&shown).unwrap_or(Value::Null);
    let field = |model: &mut Value, key: &str| {
        model
            .as_object_mut()
            .and_then(|m| m.remove(key))
            .unwrap_or(Value::Null)
    };
    let channels: Vec<Value> = match field(&mut model, "channel") {
        Value::Array(channels) => channels.into_iter().map(channel_to_api).collect(),
        _ => Vec::new(),
    };
    let mut target = field(&mut model, "target");
    if let Some(target) = target.as_object_mut() {
        target.insert("stored_secrets".into(), Value::Array(stored));
    }
    let document = json!({
        "name": field(&mut model, "name"),
        "active": field(&mut model, "active"),
        "outbound_provision": {
            "type": "SCIM",
            "target_settings": target,
            "provisioning_options": field(&mut model, "options"),
            "guard": field(&mut model, "guard"),
            "channels": channels,
        }
    });
    camel_json(document)
}

fn channel_to_api(mut channel: Value) -> Value {
    let Some(fields) = channel.as_object_mut() else {
        return channel;
    };
    let mapping = |value: Option<Value>, key: &str| -> Value {
        let Some(Value::Object(map)) = value else {
            return Value::Array(Vec::new());
        };
        Value::Array(
            map.into_iter()
                .map(|(name, mut info)| {
                    if let Some(info) = info.as_object_mut()
                        && let Some(attributes) = info.remove("attributes")
                    {
                        info.insert("attribute_names".into(), attributes);
                    }
                    json!({ key: name, "saas_field_info": info })
                })
                .collect(),
        )
    };
    let attribute_mapping = mapping(fields.remove("attribute_mapping"), "field_name");
    let extension_mapping = mapping(fields.remove("extension_mapping"), "path");
    let source = json!({
        "data_source": { "id": fields.remove("data_store").unwrap_or(Value::Null) },
        "source_settings": fields.remove("source_settings").unwrap_or(json!({})),
        "source_location": fields.remove("source_location").unwrap_or(json!({})),
    });
    fields.insert("channel_source".into(), source);
    fields.insert("attribute_mapping".into(), attribute_mapping);
    fields.insert("extension_mapping".into(), extension_mapping);
    channel
}

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

pub fn data_store_to_api(data_store: &DataStore) -> Value {
    let mut shown = data_store.clone();
    let mut stored = Vec::new();
    for (name, secret) in shown.secret_fields_mut() {
        if secret.as_ref().is_some_and(|s| s.is_literal()) {
            *secret = None;
            stored.push(Value::String(camel_case(name)));
        }
    }
    let mut model = serde_json::to_value(&shown).unwrap_or(Value::Null);
    if let Some(map) = model.as_object_mut() {
        map.insert("stored_secrets".into(), Value::Array(stored));
    }
    camel_json(model)
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

/// Any model value with the API's camelCase keys.
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use scimbridge_model::ConfigFile;

    const CONFIG: &str = r#"
version = 1
[[data_store]]
name = "corp"
type = "ldif"
path = "/tmp/d.ldif"
[[connection]]
name = "Slack"
active = false
[connection.target]
scim_url = "https://api.example.com/scim/v2"
authentication = "oauth2-bearer"
access_token = "s3cret"
[[connection.channel]]
name = "staff"
data_store = "corp"
[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
familyName = { attributes = ["sn"], create_only = true }
[connection.channel.extension_mapping]
"urn:example:params:scim:schemas:extension:corp:2.0:User:badge_number" = { attributes = ["badge"] }
"#;

    #[test]
    fn a_connection_reads_like_pingfederate_and_comes_back_unchanged() {
        let file = ConfigFile::from_toml(CONFIG).unwrap();
        let connection = &file.connections[0];
        let document = connection_to_api(connection);
        let provision = &document["outboundProvision"];
        assert_eq!(
            provision["targetSettings"]["scimUrl"],
            "https://api.example.com/scim/v2"
        );
        assert_eq!(provision["targetSettings"]["accessToken"], Value::Null);
        assert_eq!(
            provision["targetSettings"]["storedSecrets"],
            json!(["accessToken"])
        );
        let channel = &provision["channels"][0];
        assert_eq!(channel["channelSource"]["dataSource"]["id"], "corp");
        assert_eq!(
            channel["channelSource"]["sourceLocation"]["baseDn"],
            "ou=people,dc=example,dc=com"
        );
        let family = channel["attributeMapping"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["fieldName"] == "familyName")
            .unwrap();
        assert_eq!(family["saasFieldInfo"]["attributeNames"], json!(["sn"]));
        assert_eq!(family["saasFieldInfo"]["createOnly"], true);
        assert_eq!(
            channel["extensionMapping"][0]["path"],
            "urn:example:params:scim:schemas:extension:corp:2.0:User:badge_number"
        );
        assert!(!document.to_string().contains("s3cret"));

        let back = connection_from_api(document).unwrap();
        let mut expected = connection.clone();
        expected.target.access_token = None;
        assert_eq!(back, expected);
    }

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
