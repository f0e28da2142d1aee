//! The "Create Connection" wizard of the console: the steps of PingFederate's flow, in order,
//! and the draft connection they fill, kept in the administrator's session between steps.

use std::collections::BTreeMap;

use scimbridge_model::{Connection, ScimField};
use serde_json::{Map, Value, json};

/// The steps, in the seed's order: (path segment, title shown in the step list).
pub const STEPS: &[(&str, &str)] = &[
    ("template", "Connection Template"),
    ("type", "Connection Type"),
    ("general", "General Info"),
    ("target", "Outbound Provisioning: Target"),
    ("options", "Provisioning Options"),
    ("channel", "Manage Channels: Channel Info"),
    ("source", "Source"),
    ("source-settings", "Source Settings"),
    ("location", "Source Location"),
    ("mapping", "Attribute Mapping"),
    ("summary", "Activation & Summary"),
];

pub fn step_index(step: &str) -> Option<usize> {
    STEPS.iter().position(|(name, _)| *name == step)
}

/// What the wizard has gathered so far; every field as typed.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub use_template: bool,
    pub template: String,
    pub outbound: bool,
    pub name: String,
    pub scim_url: String,
    pub authentication: String,
    pub access_token: String,
    pub basic_username: String,
    pub basic_password: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub user_create: bool,
    pub user_update: bool,
    pub user_disable_delete: bool,
    pub provision_disabled_users: bool,
    pub remove_user_action: String,
    pub channel_name: String,
    pub data_store: String,
    pub max_threads: String,
    pub timeout: String,
    pub changed_users_algorithm: String,
    pub entry_guid_attribute: String,
    pub user_object_class: String,
    pub account_status_algorithm: String,
    pub account_status_attribute: String,
    pub flag_comparison_value: String,
    pub base_dn: String,
    pub user_filter: String,
    pub user_group_dn: String,
    /// SCIM field name → directory attribute names, comma-separated.
    pub mapping: BTreeMap<String, String>,
    pub active: bool,
}

impl Draft {
    pub fn new() -> Draft {
        Draft {
            template: "SCIM Provisioner".into(),
            authentication: "oauth2-bearer".into(),
            user_create: true,
            user_update: true,
            user_disable_delete: true,
            remove_user_action: "disable".into(),
            max_threads: "1".into(),
            timeout: "60".into(),
            ..Draft::default()
        }
    }

    /// Takes the fields of one step's form. Check boxes absent from a submitted form are off.
    pub fn take(&mut self, step: &str, form: &BTreeMap<String, String>) {
        let text = |key: &str| {
            form.get(key)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let checked = |key: &str| form.contains_key(key);
        match step {
            "template" => {
                self.use_template = checked("use_template");
                self.template = text("template");
            }
            "type" => self.outbound = checked("outbound"),
            "general" => self.name = text("name"),
            "target" => {
                self.scim_url = text("scim_url");
                self.authentication = text("authentication");
                self.basic_username = text("basic_username");
                self.token_endpoint = text("token_endpoint");
                self.client_id = text("client_id");
                // Secrets: an empty box keeps what was typed before.
                for (key, slot) in [
                    ("access_token", &mut self.access_token),
                    ("basic_password", &mut self.basic_password),
                    ("client_secret", &mut self.client_secret),
                ] {
                    let value = text(key);
                    if !value.is_empty() {
                        *slot = value;
                    }
                }
            }
            "options" => {
                self.user_create = checked("user_create");
                self.user_update = checked("user_update");
                self.user_disable_delete = checked("user_disable_delete");
                self.provision_disabled_users = checked("provision_disabled_users");
                self.remove_user_action = text("remove_user_action");
            }
            "channel" => {
                self.channel_name = text("channel_name");
                self.max_threads = text("max_threads");
                self.timeout = text("timeout");
            }
            "source" => self.data_store = text("data_store"),
            "source-settings" => {
                self.changed_users_algorithm = text("changed_users_algorithm");
                self.entry_guid_attribute = text("entry_guid_attribute");
                self.user_object_class = text("user_object_class");
                self.account_status_algorithm = text("account_status_algorithm");
                self.account_status_attribute = text("account_status_attribute");
                self.flag_comparison_value = text("flag_comparison_value");
            }
            "location" => {
                self.base_dn = text("base_dn");
                self.user_filter = text("user_filter");
                self.user_group_dn = text("user_group_dn");
            }
            "mapping" => {
                self.mapping = ScimField::ALL
                    .iter()
                    .filter_map(|field| {
                        let value = text(&format!("map_{}", field.name()));
                        (!value.is_empty()).then(|| (field.name().to_owned(), value))
                    })
                    .collect();
            }
            "summary" => self.active = checked("active"),
            _ => {}
        }
    }

    /// What keeps a step from going on, by field.
    pub fn problems(&self, step: &str) -> BTreeMap<&'static str, String> {
        let mut problems = BTreeMap::new();
        let mut need = |ok: bool, field: &'static str, message: &str| {
            if !ok {
                problems.insert(field, message.to_owned());
            }
        };
        match step {
            "template" => need(
                self.use_template && self.template == "SCIM Provisioner",
                "use_template",
                "Use the SCIM Provisioner template.",
            ),
            "type" => need(
                self.outbound,
                "outbound",
                "Choose Outbound Provisioning: scimbridge provisions outbound only.",
            ),
            "general" => need(
                !self.name.is_empty(),
                "name",
                "The connection name is required.",
            ),
            "target" => {
                need(
                    self.scim_url.starts_with("http://") || self.scim_url.starts_with("https://"),
                    "scim_url",
                    "The SCIM URL must start with http:// or https://.",
                );
                match self.authentication.as_str() {
                    "oauth2-bearer" => need(
                        !self.access_token.is_empty(),
                        "access_token",
                        "The access token is required for OAuth 2 bearer.",
                    ),
                    "basic" => need(
                        !self.basic_username.is_empty() && !self.basic_password.is_empty(),
                        "basic_username",
                        "User name and password are required for Basic.",
                    ),
                    "oauth2-client-credentials" => need(
                        !self.token_endpoint.is_empty()
                            && !self.client_id.is_empty()
                            && !self.client_secret.is_empty(),
                        "token_endpoint",
                        "Token endpoint, client id and client secret are required.",
                    ),
                    _ => {}
                }
            }
            "channel" => {
                need(
                    !self.channel_name.is_empty(),
                    "channel_name",
                    "The channel name is required.",
                );
                need(
                    self.max_threads.parse::<u32>().is_ok_and(|n| n >= 1),
                    "max_threads",
                    "Max threads must be a whole number from 1.",
                );
                need(
                    self.timeout.parse::<u64>().is_ok_and(|n| n >= 1),
                    "timeout",
                    "The timeout must be a whole number of seconds from 1.",
                );
            }
            "source" => need(
                !self.data_store.is_empty(),
                "data_store",
                "Choose the data store the channel reads.",
            ),
            "source-settings" => need(
                self.account_status_algorithm != "flag"
                    || (!self.account_status_attribute.is_empty()
                        && !self.flag_comparison_value.is_empty()),
                "account_status_attribute",
                "The flag algorithm needs the status attribute and the comparison value.",
            ),
            "location" => need(
                !self.base_dn.is_empty(),
                "base_dn",
                "The base DN is required.",
            ),
            "mapping" => need(
                self.mapping.contains_key("userName"),
                "map_userName",
                "userName is required: map it to a directory attribute.",
            ),
            _ => {}
        }
        problems
    }

    /// The connection the draft describes, in the model's own form (so defaults and checks are
    /// those of a configuration file).
    pub fn connection(&self) -> Result<Connection, String> {
        let mut target = Map::new();
        target.insert("scim_url".into(), json!(self.scim_url));
        target.insert("authentication".into(), json!(self.authentication));
        for (key, value) in [
            ("access_token", &self.access_token),
            ("basic_username", &self.basic_username),
            ("basic_password", &self.basic_password),
            ("token_endpoint", &self.token_endpoint),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ] {
            if !value.is_empty() {
                target.insert(key.into(), json!(value));
            }
        }
        let mut location = Map::new();
        location.insert("base_dn".into(), json!(self.base_dn));
        for (key, value) in [
            ("user_filter", &self.user_filter),
            ("user_group_dn", &self.user_group_dn),
        ] {
            if !value.is_empty() {
                location.insert(key.into(), json!(value));
            }
        }
        let mut settings = Map::new();
        for (key, value) in [
            ("changed_users_algorithm", &self.changed_users_algorithm),
            ("entry_guid_attribute", &self.entry_guid_attribute),
            ("user_object_class", &self.user_object_class),
            ("account_status_algorithm", &self.account_status_algorithm),
            ("account_status_attribute", &self.account_status_attribute),
            ("flag_comparison_value", &self.flag_comparison_value),
        ] {
            // Left empty: the LDAP type's default.
            if !value.is_empty() {
                settings.insert(key.into(), json!(value));
            }
        }
        let mapping: Map<String, Value> = self
            .mapping
            .iter()
            .map(|(field, attributes)| {
                let names: Vec<&str> = attributes
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect();
                (field.clone(), json!({ "attributes": names }))
            })
            .collect();
        let document = json!({
            "name": self.name,
            "active": self.active,
            "target": target,
            "options": {
                "user_create": self.user_create,
                "user_update": self.user_update,
                "user_disable_delete": self.user_disable_delete,
                "provision_disabled_users": self.provision_disabled_users,
                "remove_user_action": self.remove_user_action,
            },
            "channel": [{
                "name": self.channel_name,
                "data_store": self.data_store,
                "max_threads": self.max_threads.parse::<u32>().unwrap_or(1),
                "timeout": self.timeout.parse::<u64>().unwrap_or(60),
                "source_settings": settings,
                "source_location": location,
                "attribute_mapping": mapping,
            }],
        });
        serde_json::from_value(document).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_steps_fill_a_connection_and_say_what_is_missing() {
        let mut draft = Draft::new();
        assert!(draft.problems("template").contains_key("use_template"));
        draft.take(
            "template",
            &form(&[("use_template", "on"), ("template", "SCIM Provisioner")]),
        );
        assert!(draft.problems("template").is_empty());
        draft.take("general", &form(&[("name", " Slack ")]));
        draft.take(
            "target",
            &form(&[
                ("scim_url", "https://api.example.com/scim/v2"),
                ("authentication", "oauth2-bearer"),
            ]),
        );
        assert!(draft.problems("target").contains_key("access_token"));
        draft.take(
            "target",
            &form(&[
                ("scim_url", "https://api.example.com/scim/v2"),
                ("authentication", "oauth2-bearer"),
                ("access_token", "t0ken"),
            ]),
        );
        // Back and Next again with an empty secret box keep the secret.
        draft.take(
            "target",
            &form(&[
                ("scim_url", "https://api.example.com/scim/v2"),
                ("authentication", "oauth2-bearer"),
            ]),
        );
        assert!(draft.problems("target").is_empty());
        draft.take(
            "channel",
            &form(&[
                ("channel_name", "staff"),
                ("max_threads", "4"),
                ("timeout", "60"),
            ]),
        );
        assert!(draft.problems("source").contains_key("data_store"));
        draft.take("source", &form(&[("data_store", "corp")]));
        draft.take(
            "source-settings",
            &form(&[
                ("changed_users_algorithm", "timestamp"),
                ("account_status_algorithm", "flag"),
            ]),
        );
        assert!(
            draft
                .problems("source-settings")
                .contains_key("account_status_attribute")
        );
        draft.take(
            "source-settings",
            &form(&[
                ("changed_users_algorithm", "timestamp"),
                ("account_status_algorithm", "flag"),
                ("account_status_attribute", "employeeStatus"),
                ("flag_comparison_value", "terminated"),
            ]),
        );
        assert!(draft.problems("source-settings").is_empty());
        draft.take(
            "location",
            &form(&[("base_dn", "ou=people,dc=example,dc=com")]),
        );
        draft.take("mapping", &form(&[("map_familyName", "sn")]));
        assert!(draft.problems("mapping").contains_key("map_userName"));
        draft.take(
            "mapping",
            &form(&[("map_userName", "uid"), ("map_familyName", "sn, surname")]),
        );
        let connection = draft.connection().unwrap();
        assert_eq!(connection.name, "Slack");
        assert!(!connection.active);
        assert_eq!(connection.channels[0].max_threads, 4);
        let settings = &connection.channels[0].source_settings;
        assert_eq!(
            settings.changed_users_algorithm,
            Some(scimbridge_model::ChangeDetection::Timestamp)
        );
        assert_eq!(
            settings.flag_comparison_value.as_deref(),
            Some("terminated")
        );
        let family = &connection.channels[0].attribute_mapping[&ScimField::FamilyName];
        assert_eq!(family.attributes, ["sn", "surname"]);
    }
}
