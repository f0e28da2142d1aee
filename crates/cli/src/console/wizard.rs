//! The "Create Connection" wizard of the console: the steps of PingFederate's flow, in order,
//! and the draft connection they fill, kept in the administrator's session between steps.

use std::collections::BTreeMap;

use scimbridge_model::{Connection, LdapType, ScimField};

use super::settings;
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
    /// SCIM field name → its other mapping options, where any is given.
    pub mapping_options: BTreeMap<String, FieldOptions>,
    /// Custom schema extension attributes (`extension_mapping`), in path order.
    pub extensions: Vec<ExtensionRow>,
    pub active: bool,
    /// The stored connection's name when the wizard edits one (the name cannot change).
    pub editing: Option<String>,
    /// Secrets the stored connection holds and an empty box keeps.
    pub kept_secrets: std::collections::BTreeSet<&'static str>,
    /// The connection's other channels, which the wizard leaves as they are.
    pub other_channels: usize,
    /// Which stored channel the wizard edits, by its name when the wizard opened: found again
    /// by name at Save, so that channels added or removed meanwhile are not overwritten.
    pub editing_channel: Option<String>,
    /// The wizard adds a channel to a stored connection.
    pub adding_channel: bool,
    /// Fields the stored channel maps by expression or default value, without attributes:
    /// kept as they are while their box stays empty.
    pub kept_mappings: std::collections::BTreeSet<String>,
    /// The attribute names the mapping step offers, with what they were read from (data store
    /// and user object class): read once, not at every page.
    pub attribute_names: Option<(String, Vec<String>)>,
    /// The steps' other settings (`settings::SETTINGS`), by form field; empty: the default.
    pub more: BTreeMap<String, String>,
}

/// A mapped field's options beyond its attributes, as the mapping step's boxes hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOptions {
    pub expression: String,
    pub default_value: String,
    pub create_only: bool,
    pub masked: bool,
    pub trim: bool,
    /// `upper`, `lower`, or empty for as in the directory.
    pub character_case: String,
    /// `extract_cn_from_dn`, `extract_user_name_from_email`, or empty for none.
    pub parser: String,
}

/// One attribute of a custom schema extension, by its full path, as the mapping step's rows
/// hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionRow {
    pub path: String,
    pub attributes: String,
    pub multi_valued: bool,
    /// The same options as a field's; their boxes are named after `ext{index}`.
    pub options: FieldOptions,
}

/// The mapping a new channel starts with, for the data store's directory type: what those
/// directories usually hold (`mapping test` and Preview show what an entry gets).
pub fn default_mapping(ldap_type: LdapType) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match ldap_type {
        // objectGUID is binary: externalId is left to the administrator.
        LdapType::ActiveDirectory => &[
            ("userName", "userPrincipalName"),
            ("givenName", "givenName"),
            ("familyName", "sn"),
            ("displayName", "displayName"),
            ("workEmail", "mail"),
            ("title", "title"),
        ],
        LdapType::Ds389 => &[
            ("userName", "uid"),
            ("externalId", "nsUniqueId"),
            ("givenName", "givenName"),
            ("familyName", "sn"),
            ("displayName", "cn"),
            ("workEmail", "mail"),
            ("title", "title"),
        ],
        _ => &[
            ("userName", "uid"),
            ("externalId", "entryUUID"),
            ("givenName", "givenName"),
            ("familyName", "sn"),
            ("displayName", "cn"),
            ("workEmail", "mail"),
            ("title", "title"),
        ],
    };
    pairs
        .iter()
        .map(|(field, attribute)| ((*field).to_owned(), (*attribute).to_owned()))
        .collect()
}

impl FieldOptions {
    /// The options of the row named `name` (a SCIM field, or `ext0`…) in a posted form.
    fn take(form: &BTreeMap<String, String>, name: &str) -> FieldOptions {
        let text = |key: String| {
            form.get(&key)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let checked = |key: String| form.contains_key(&key);
        FieldOptions {
            expression: text(format!("expr_{name}")),
            default_value: text(format!("default_{name}")),
            create_only: checked(format!("create_only_{name}")),
            masked: checked(format!("masked_{name}")),
            trim: checked(format!("trim_{name}")),
            character_case: text(format!("case_{name}")),
            parser: text(format!("parser_{name}")),
        }
    }

    /// The options of a stored mapping.
    fn of(mapping: &scimbridge_model::FieldMapping) -> FieldOptions {
        FieldOptions {
            expression: mapping.expression.clone().unwrap_or_default(),
            default_value: mapping.default_value.clone().unwrap_or_default(),
            create_only: mapping.create_only,
            masked: mapping.masked,
            trim: mapping.trim,
            character_case: json_text(&mapping.character_case).replace("none", ""),
            parser: json_text(&mapping.parser).replace("none", ""),
        }
    }

    /// Writes the options into a mapping entry of the connection's document; an empty box
    /// removes its key (the default).
    fn write(&self, entry: &mut Map<String, Value>) {
        set_or_remove(entry, "expression", &self.expression);
        set_or_remove(entry, "default_value", &self.default_value);
        set_or_remove(entry, "character_case", &self.character_case);
        set_or_remove(entry, "parser", &self.parser);
        for (key, on) in [
            ("create_only", self.create_only),
            ("masked", self.masked),
            ("trim", self.trim),
        ] {
            if on {
                entry.insert(key.into(), json!(true));
            } else {
                entry.remove(key);
            }
        }
    }

    /// The options in words, for the summary.
    fn describe(&self, parts: &mut Vec<String>) {
        if !self.expression.is_empty() {
            parts.push(format!("expression {}", self.expression));
        }
        if !self.default_value.is_empty() {
            parts.push(format!("default {}", self.default_value));
        }
        for (on, word) in [
            (self.create_only, "create only"),
            (self.masked, "masked"),
            (self.trim, "trimmed"),
        ] {
            if on {
                parts.push(word.into());
            }
        }
        if !self.character_case.is_empty() {
            parts.push(format!("{} case", self.character_case));
        }
        if !self.parser.is_empty() {
            parts.push(self.parser.replace('_', " "));
        }
    }

    fn is_empty(&self) -> bool {
        *self == FieldOptions::default()
    }

    /// Whether the field has a value without attributes (an expression or a default).
    fn gives_a_value(&self) -> bool {
        !self.expression.is_empty() || !self.default_value.is_empty()
    }
}

impl Draft {
    pub fn new() -> Draft {
        Draft {
            // The only template and the only type: chosen already, as a person would.
            use_template: true,
            outbound: true,
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
        for setting in settings::of_step(step) {
            let field = setting.field();
            self.more.insert(field.clone(), text(&field));
        }
        match step {
            "template" => {
                self.use_template = checked("use_template");
                self.template = text("template");
            }
            "type" => self.outbound = checked("outbound"),
            // A stored connection keeps its name.
            "general" if self.editing.is_none() => self.name = text("name"),
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
                self.mapping_options = ScimField::ALL
                    .iter()
                    .filter_map(|field| {
                        let options = FieldOptions::take(form, field.name());
                        (!options.is_empty()).then(|| (field.name().to_owned(), options))
                    })
                    .collect();
                // As many extension rows as the page showed; a row without a path is unused.
                self.extensions = (0..)
                    .map_while(|i| {
                        form.contains_key(&format!("ext_path_{i}"))
                            .then(|| ExtensionRow {
                                path: text(&format!("ext_path_{i}")),
                                attributes: text(&format!("ext_attributes_{i}")),
                                multi_valued: checked(&format!("ext_multi_{i}")),
                                options: FieldOptions::take(form, &format!("ext{i}")),
                            })
                    })
                    .filter(|row| !row.path.is_empty())
                    .collect();
            }
            "summary" => self.active = checked("active"),
            _ => {}
        }
    }

    /// What keeps a step from going on, by field.
    pub fn problems(&self, step: &str) -> BTreeMap<&'static str, String> {
        let mut problems = BTreeMap::new();
        for setting in settings::of_step(step) {
            let typed = self.more.get(&setting.field()).map(String::as_str);
            if let Some(problem) = settings::problem(setting, typed.unwrap_or_default()) {
                problems.insert(setting.key, problem);
            }
        }
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
                    _ if self.typed_reference() => need(
                        false,
                        "access_token",
                        "env: and file: references are taken only from configuration files applied on the server (scimbridge apply); type the secret itself.",
                    ),
                    "oauth2-bearer" => need(
                        self.has_secret("access_token"),
                        "access_token",
                        "The access token is required for OAuth 2 bearer.",
                    ),
                    "basic" => need(
                        !self.basic_username.is_empty() && self.has_secret("basic_password"),
                        "basic_username",
                        "User name and password are required for Basic.",
                    ),
                    "oauth2-client-credentials" => need(
                        !self.token_endpoint.is_empty()
                            && !self.client_id.is_empty()
                            && self.has_secret("client_secret"),
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
                self.maps("userName"),
                "map_userName",
                "userName is required: map it to a directory attribute or an expression.",
            ),
            _ => {}
        }
        problems
    }

    /// The connection the draft describes, built in the model's own form so that defaults and
    /// checks are those of a configuration file. `base` is the stored connection when editing:
    /// what the wizard does not show is kept — other settings, other channels, secrets left
    /// empty, and each mapped field's other options.
    pub fn connection(&self, base: Option<&Connection>) -> Result<Connection, String> {
        let mut document = match base {
            Some(connection) => serde_json::to_value(connection).map_err(|e| e.to_string())?,
            None => json!({ "name": self.name }),
        };
        let root = object(&mut document)?;
        root.insert("active".into(), json!(self.active));
        let target = object(root.entry("target").or_insert_with(|| json!({})))?;
        target.insert("scim_url".into(), json!(self.scim_url));
        target.insert("authentication".into(), json!(self.authentication));
        for (key, value) in [
            ("basic_username", &self.basic_username),
            ("token_endpoint", &self.token_endpoint),
            ("client_id", &self.client_id),
        ] {
            set_or_remove(target, key, value);
        }
        // An empty secret box keeps the stored secret.
        for (key, value) in [
            ("access_token", &self.access_token),
            ("basic_password", &self.basic_password),
            ("client_secret", &self.client_secret),
        ] {
            if !value.is_empty() {
                target.insert(key.into(), json!(value));
            }
        }
        let options = object(root.entry("options").or_insert_with(|| json!({})))?;
        options.insert("user_create".into(), json!(self.user_create));
        options.insert("user_update".into(), json!(self.user_update));
        options.insert(
            "user_disable_delete".into(),
            json!(self.user_disable_delete),
        );
        options.insert(
            "provision_disabled_users".into(),
            json!(self.provision_disabled_users),
        );
        options.insert("remove_user_action".into(), json!(self.remove_user_action));
        let channels = root.entry("channel").or_insert_with(|| json!([]));
        if !channels.is_array() {
            *channels = json!([]);
        }
        let Some(channels) = channels.as_array_mut() else {
            return Err("channels are not a list".into());
        };
        let index = match (&self.editing_channel, self.adding_channel) {
            (Some(name), _) => channels
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str()))
                .ok_or_else(|| format!("Channel {name} no longer exists."))?,
            (None, true) => channels.len(),
            (None, false) => 0,
        };
        if channels.len() <= index {
            channels.push(json!({}));
        }
        let channel = object(&mut channels[index])?;
        channel.insert("name".into(), json!(self.channel_name));
        channel.insert("data_store".into(), json!(self.data_store));
        channel.insert(
            "max_threads".into(),
            json!(self.max_threads.parse::<u32>().unwrap_or(1)),
        );
        channel.insert(
            "timeout".into(),
            json!(self.timeout.parse::<u64>().unwrap_or(60)),
        );
        let settings = object(
            channel
                .entry("source_settings")
                .or_insert_with(|| json!({})),
        )?;
        for (key, value) in [
            ("changed_users_algorithm", &self.changed_users_algorithm),
            ("entry_guid_attribute", &self.entry_guid_attribute),
            ("user_object_class", &self.user_object_class),
            ("account_status_algorithm", &self.account_status_algorithm),
            ("account_status_attribute", &self.account_status_attribute),
            ("flag_comparison_value", &self.flag_comparison_value),
        ] {
            // Left empty: the LDAP type's default.
            set_or_remove(settings, key, value);
        }
        let location = object(
            channel
                .entry("source_location")
                .or_insert_with(|| json!({})),
        )?;
        location.insert("base_dn".into(), json!(self.base_dn));
        for (key, value) in [
            ("user_filter", &self.user_filter),
            ("user_group_dn", &self.user_group_dn),
        ] {
            set_or_remove(location, key, value);
        }
        let mapping = object(
            channel
                .entry("attribute_mapping")
                .or_insert_with(|| json!({})),
        )?;
        let no_options = FieldOptions::default();
        for field in ScimField::ALL {
            let name = field.name();
            let options = self.mapping_options.get(name).unwrap_or(&no_options);
            let attributes = self.mapping.get(name);
            if attributes.is_none() && !options.gives_a_value() {
                // Nothing typed: a stored mapping the console does not show stays.
                if !self.kept_mappings.contains(name) {
                    mapping.remove(name);
                }
                continue;
            }
            let names: Vec<&str> = attributes
                .map(|a| {
                    a.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            // The stored entry is the base: options the console does not show stay.
            let entry = object(mapping.entry(name.to_owned()).or_insert_with(|| json!({})))?;
            entry.insert("attributes".into(), json!(names));
            options.write(entry);
        }
        {
            let channels = object(&mut document)?
                .get_mut("channel")
                .and_then(Value::as_array_mut)
                .ok_or("channels are not a list")?;
            let channel = object(&mut channels[index])?;
            let extensions = object(
                channel
                    .entry("extension_mapping")
                    .or_insert_with(|| json!({})),
            )?;
            // Paths no row names any more are unmapped; the others keep what the rows do not show.
            extensions.retain(|path, _| self.extensions.iter().any(|row| row.path == *path));
            for row in &self.extensions {
                let entry = object(
                    extensions
                        .entry(row.path.clone())
                        .or_insert_with(|| json!({})),
                )?;
                let names: Vec<&str> = row
                    .attributes
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect();
                entry.insert("attributes".into(), json!(names));
                row.options.write(entry);
                if row.multi_valued {
                    entry.insert("multi_valued".into(), json!(true));
                } else {
                    entry.remove("multi_valued");
                }
            }
        }
        settings::write(&mut document, index, &self.more);
        serde_json::from_value(document).map_err(|e| e.to_string())
    }

    /// A draft of a stored connection, to edit it: its first channel, secrets kept, not shown.
    pub fn of(connection: &Connection) -> Draft {
        Draft::of_channel(connection, 0)
    }

    /// A draft of a stored connection and its channel at `index`; one past the last is a new
    /// channel, which starts empty.
    pub fn of_channel(connection: &Connection, index: usize) -> Draft {
        let target = &connection.target;
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let mut draft = Draft {
            editing: Some(connection.name.clone()),
            use_template: true,
            template: "SCIM Provisioner".into(),
            outbound: true,
            name: connection.name.clone(),
            scim_url: target.scim_url.clone(),
            authentication: target.authentication.name().into(),
            basic_username: text(&target.basic_username),
            token_endpoint: text(&target.token_endpoint),
            client_id: text(&target.client_id),
            user_create: connection.options.user_create,
            user_update: connection.options.user_update,
            user_disable_delete: connection.options.user_disable_delete,
            provision_disabled_users: connection.options.provision_disabled_users,
            remove_user_action: json_text(&connection.options.remove_user_action),
            active: connection.active,
            ..Draft::new()
        };
        for (name, secret) in [
            ("access_token", &target.access_token),
            ("basic_password", &target.basic_password),
            ("client_secret", &target.client_secret),
        ] {
            if secret.is_some() {
                draft.kept_secrets.insert(name);
            }
        }
        let existing = connection.channels.get(index);
        draft.editing_channel = existing.map(|c| c.name.clone());
        draft.adding_channel = existing.is_none();
        draft.other_channels = connection.channels.len() - usize::from(existing.is_some());
        if let Some(channel) = existing {
            let settings = &channel.source_settings;
            let location = &channel.source_location;
            draft.channel_name = channel.name.clone();
            draft.data_store = channel.data_store.clone();
            draft.max_threads = channel.max_threads.to_string();
            draft.timeout = channel.timeout.to_string();
            draft.changed_users_algorithm = settings
                .changed_users_algorithm
                .map(|a| json_text(&a))
                .unwrap_or_default();
            draft.entry_guid_attribute = text(&settings.entry_guid_attribute);
            draft.user_object_class = text(&settings.user_object_class);
            draft.account_status_algorithm = settings
                .account_status_algorithm
                .map(|a| json_text(&a))
                .unwrap_or_default();
            draft.account_status_attribute = text(&settings.account_status_attribute);
            draft.flag_comparison_value = text(&settings.flag_comparison_value);
            draft.base_dn = location.base_dn.clone();
            draft.user_filter = text(&location.user_filter);
            draft.user_group_dn = text(&location.user_group_dn);
            draft.mapping = channel
                .attribute_mapping
                .iter()
                .filter(|(_, mapping)| !mapping.attributes.is_empty())
                .map(|(field, mapping)| (field.name().to_owned(), mapping.attributes.join(", ")))
                .collect();
            draft.mapping_options = channel
                .attribute_mapping
                .iter()
                .map(|(field, mapping)| (field.name().to_owned(), FieldOptions::of(mapping)))
                .filter(|(_, options)| !options.is_empty())
                .collect();
            // Mapped by nothing the console shows: kept as stored.
            draft.kept_mappings = channel
                .attribute_mapping
                .iter()
                .filter(|(_, mapping)| {
                    mapping.attributes.is_empty()
                        && mapping.expression.is_none()
                        && mapping.default_value.is_none()
                })
                .map(|(field, _)| field.name().to_owned())
                .collect();
            draft.extensions = channel
                .extension_mapping
                .iter()
                .map(|(path, mapping)| ExtensionRow {
                    path: path.clone(),
                    attributes: mapping.attributes.join(", "),
                    multi_valued: mapping.multi_valued,
                    options: FieldOptions::of(mapping),
                })
                .collect();
        }
        if let Ok(document) = serde_json::to_value(connection) {
            draft.more = settings::read(&document, index).into_iter().collect();
        }
        draft
    }

    /// Everything Save will store, one line per setting given, in the steps' order (secrets
    /// only said to be set).
    pub fn summary(&self) -> Vec<(String, String)> {
        let yes_no = |flag: bool| if flag { "yes" } else { "no" }.to_owned();
        let mut rows: Vec<(String, String)> = vec![
            ("Connection Name".into(), self.name.clone()),
            ("Template".into(), self.template.clone()),
            ("SCIM URL".into(), self.scim_url.clone()),
            ("Authentication".into(), self.authentication.clone()),
        ];
        for (label, value) in [
            ("Basic: User Name", &self.basic_username),
            ("OAuth 2: Token Endpoint", &self.token_endpoint),
            ("OAuth 2: Client ID", &self.client_id),
        ] {
            if !value.is_empty() {
                rows.push((label.into(), value.clone()));
            }
        }
        for (label, field) in [
            ("Access Token", "access_token"),
            ("Basic: Password", "basic_password"),
            ("OAuth 2: Client Secret", "client_secret"),
        ] {
            if self.has_secret(field) {
                rows.push((label.into(), "set (stored encrypted)".into()));
            }
        }
        rows.extend([
            ("User Create".into(), yes_no(self.user_create)),
            ("User Update".into(), yes_no(self.user_update)),
            (
                "User Disable / Delete".into(),
                yes_no(self.user_disable_delete),
            ),
            (
                "Provision Disabled Users".into(),
                yes_no(self.provision_disabled_users),
            ),
            ("Remove User Action".into(), self.remove_user_action.clone()),
            ("Channel".into(), self.channel_name.clone()),
            ("Max Threads".into(), self.max_threads.clone()),
            ("Timeout (seconds)".into(), self.timeout.clone()),
            ("Data Store".into(), self.data_store.clone()),
        ]);
        for (label, value) in [
            ("Changed Users Algorithm", &self.changed_users_algorithm),
            ("Entry GUID Attribute", &self.entry_guid_attribute),
            ("User Object Class", &self.user_object_class),
            ("Account Status Algorithm", &self.account_status_algorithm),
            ("Account Status Attribute", &self.account_status_attribute),
            ("Flag Comparison Value", &self.flag_comparison_value),
            ("Base DN", &self.base_dn),
            ("Users: Filter", &self.user_filter),
            ("Users: Group DN", &self.user_group_dn),
        ] {
            if !value.is_empty() {
                rows.push((label.into(), value.clone()));
            }
        }
        for setting in settings::SETTINGS {
            if let Some(value) = self.more.get(&setting.field()).filter(|v| !v.is_empty()) {
                rows.push((setting.label.into(), value.clone()));
            }
        }
        let mapped: Vec<String> = ScimField::ALL
            .iter()
            .map(|field| field.name())
            .filter(|name| self.maps(name))
            .map(|name| self.describe_mapping(name))
            .collect();
        rows.push(("Mapped fields".into(), mapped.join("; ")));
        if !self.extensions.is_empty() {
            let extensions: Vec<String> = self
                .extensions
                .iter()
                .map(|row| {
                    let mut parts = vec![row.attributes.clone()];
                    row.options.describe(&mut parts);
                    if row.multi_valued {
                        parts.push("every value".into());
                    }
                    format!("{} ← {}", row.path, parts.join(", "))
                })
                .collect();
            rows.push(("Extension attributes".into(), extensions.join("; ")));
        }
        rows
    }

    /// Whether the field gets a value: attributes, an expression, a default, or a stored
    /// mapping the console keeps.
    pub fn maps(&self, field: &str) -> bool {
        self.mapping.contains_key(field)
            || self
                .mapping_options
                .get(field)
                .is_some_and(FieldOptions::gives_a_value)
            || self.kept_mappings.contains(field)
    }

    /// One field's mapping in words, for the summary.
    fn describe_mapping(&self, field: &str) -> String {
        let options = self.mapping_options.get(field).cloned().unwrap_or_default();
        let mut parts = Vec::new();
        if let Some(attributes) = self.mapping.get(field) {
            parts.push(attributes.clone());
        }
        options.describe(&mut parts);
        if parts.is_empty() {
            parts.push("kept as stored".into());
        }
        format!("{field} ← {}", parts.join(", "))
    }

    /// Whether a typed secret is an `env:` or `file:` reference, which would make the server
    /// read its own environment or files on behalf of a browser.
    fn typed_reference(&self) -> bool {
        [
            &self.access_token,
            &self.basic_password,
            &self.client_secret,
        ]
        .iter()
        .any(|s| s.starts_with("env:") || s.starts_with("file:"))
    }

    /// Whether a secret is typed in this draft, or stored and kept.
    pub fn has_secret(&self, name: &str) -> bool {
        let typed = match name {
            "access_token" => &self.access_token,
            "basic_password" => &self.basic_password,
            "client_secret" => &self.client_secret,
            _ => return false,
        };
        !typed.is_empty() || self.kept_secrets.contains(name)
    }
}

/// The object inside a value, made one when it is not.
fn object(value: &mut Value) -> Result<&mut Map<String, Value>, String> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    value
        .as_object_mut()
        .ok_or_else(|| "a setting is not a table".to_owned())
}

fn set_or_remove(map: &mut Map<String, Value>, key: &str, value: &str) {
    if value.is_empty() {
        map.remove(key);
    } else {
        map.insert(key.into(), json!(value));
    }
}

/// A model value's configuration-file spelling (`disable`, `timestamp`).
fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
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
        // The only template and type are chosen already; unticked, they are asked for.
        assert!(draft.problems("template").is_empty());
        assert!(draft.problems("type").is_empty());
        draft.take("template", &form(&[("template", "SCIM Provisioner")]));
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
        let connection = draft.connection(None).unwrap();
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

        // An expression alone maps a field; the options go where a file puts them, and an
        // edit of the saved connection shows them again.
        draft.take(
            "mapping",
            &form(&[
                ("map_userName", "uid"),
                ("expr_displayName", "Join(\" \", [givenName], [sn])"),
                ("default_title", "Staff"),
                ("create_only_title", "on"),
                ("masked_title", "on"),
                ("case_userName", "lower"),
            ]),
        );
        assert!(draft.problems("mapping").is_empty());
        let connection = draft.connection(None).unwrap();
        let mapping = &connection.channels[0].attribute_mapping;
        assert!(mapping[&ScimField::DisplayName].attributes.is_empty());
        assert_eq!(
            mapping[&ScimField::DisplayName].expression.as_deref(),
            Some("Join(\" \", [givenName], [sn])")
        );
        let title = &mapping[&ScimField::Title];
        assert_eq!(title.default_value.as_deref(), Some("Staff"));
        assert!(title.create_only && title.masked && !title.trim);
        assert_eq!(
            mapping[&ScimField::UserName].character_case,
            scimbridge_model::CharacterCase::Lower
        );
        assert!(
            !mapping.contains_key(&ScimField::FamilyName),
            "emptied: unmapped"
        );

        // A parser, and custom schema extension rows: a row without a path is left out.
        let badge = "urn:example:params:scim:schemas:extension:acme:2.0:User:badgeNumber";
        let skills = "urn:example:params:scim:schemas:extension:acme:2.0:User:skills";
        draft.take(
            "mapping",
            &form(&[
                ("map_userName", "uid"),
                ("map_nickName", "manager"),
                ("parser_nickName", "extract_cn_from_dn"),
                ("expr_displayName", "Join(\" \", [givenName], [sn])"),
                ("default_title", "Staff"),
                ("create_only_title", "on"),
                ("masked_title", "on"),
                ("case_userName", "lower"),
                ("ext_path_0", badge),
                ("ext_attributes_0", "employeeBadge"),
                ("trim_ext0", "on"),
                ("default_ext0", "none"),
                ("ext_path_1", skills),
                ("ext_attributes_1", "skill"),
                ("ext_multi_1", "on"),
                ("ext_path_2", ""),
                ("ext_attributes_2", "ignored"),
            ]),
        );
        let connection = draft.connection(None).unwrap();
        let channel = &connection.channels[0];
        assert_eq!(
            channel.attribute_mapping[&ScimField::NickName].parser,
            scimbridge_model::ValueParser::ExtractCnFromDn
        );
        assert_eq!(channel.extension_mapping.len(), 2);
        assert_eq!(
            channel.extension_mapping[badge].attributes,
            ["employeeBadge"]
        );
        assert!(channel.extension_mapping[skills].multi_valued);
        assert!(channel.extension_mapping[badge].trim);
        assert_eq!(
            channel.extension_mapping[badge].default_value.as_deref(),
            Some("none")
        );
        let edited = Draft::of(&connection);
        assert_eq!(edited.extensions, draft.extensions);
        assert_eq!(edited.mapping_options, draft.mapping_options);
        assert!(
            edited
                .summary()
                .iter()
                .any(|(label, value)| label == "Mapped fields"
                    && value.contains("title ← default Staff, create only, masked"))
        );
    }

    #[test]
    fn a_channel_removed_while_the_wizard_was_open_is_not_overwritten() {
        // Slack has two channels, staff then contractors.
        let stored = &slack();
        let draft = Draft::of_channel(stored, 1);
        let mut without = stored.clone();
        without.channels.remove(1);
        let refused = draft.connection(Some(&without)).unwrap_err();
        assert!(
            refused.contains("Channel contractors no longer exists"),
            "{refused}"
        );
        // With the first one removed instead, contractors is found by name, not position.
        let mut first_gone = stored.clone();
        first_gone.channels.remove(0);
        let saved = draft.connection(Some(&first_gone)).unwrap();
        assert_eq!(saved.channels.len(), 1);
        assert_eq!(saved.channels[0].name, "contractors");
    }

    #[test]
    fn a_new_channel_starts_from_its_directory_type_s_usual_attributes() {
        let openldap = default_mapping(LdapType::OpenLdap);
        assert_eq!(openldap["userName"], "uid");
        assert_eq!(openldap["externalId"], "entryUUID");
        let ad = default_mapping(LdapType::ActiveDirectory);
        assert_eq!(ad["userName"], "userPrincipalName");
        assert!(!ad.contains_key("externalId"), "objectGUID is binary");
    }

    /// A stored connection with secrets, settings the wizard shows under More settings, a
    /// mapping by expression and options, and two channels (staff, then contractors).
    fn slack() -> Connection {
        let file = scimbridge_model::ConfigFile::from_toml(
            r#"
version = 1
[[data_store]]
name = "corp"
type = "ldif"
path = "/tmp/d.ldif"
[[connection]]
name = "Slack"
[connection.target]
scim_url = "https://api.example.com/scim/v2"
authentication = "oauth2-bearer"
access_token = "s3cret"
requests_per_second = 5.0
[connection.guard]
max_deprovisions = 7
[[connection.channel]]
name = "staff"
data_store = "corp"
[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
password = { attributes = ["initialPassword"], create_only = true, masked = true }
displayName = { expression = 'Join(" ", [givenName], [sn])' }
[[connection.channel]]
name = "contractors"
data_store = "corp"
[connection.channel.source_location]
base_dn = "ou=contractors,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
"#,
        )
        .unwrap();
        file.connections[0].clone()
    }

    #[test]
    fn editing_keeps_what_the_wizard_does_not_show() {
        let stored = &slack();
        let mut draft = Draft::of(stored);
        assert_eq!(draft.editing.as_deref(), Some("Slack"));
        assert!(draft.access_token.is_empty() && draft.has_secret("access_token"));
        assert!(
            draft.problems("target").is_empty(),
            "the stored token counts"
        );
        assert_eq!(draft.other_channels, 1);
        // The stored mapping options are shown, as the page's boxes hold them.
        assert_eq!(
            draft.mapping_options["displayName"].expression,
            r#"Join(" ", [givenName], [sn])"#
        );
        assert!(draft.mapping_options["password"].create_only);
        // The name stays; the options and a mapping change (the form sends every box back).
        draft.take("general", &form(&[("name", "Renamed")]));
        draft.user_update = false;
        draft.take(
            "mapping",
            &form(&[
                ("map_userName", "mail"),
                ("map_password", "initialPassword"),
                ("create_only_password", "on"),
                ("masked_password", "on"),
                ("expr_displayName", r#"Join(" ", [givenName], [sn])"#),
            ]),
        );
        let edited = draft.connection(Some(stored)).unwrap();
        assert_eq!(edited.name, "Slack");
        assert!(!edited.options.user_update);
        assert_eq!(edited.target.access_token, stored.target.access_token);
        assert_eq!(edited.target.requests_per_second, 5.0);
        assert_eq!(edited.guard.max_deprovisions, 7);
        assert_eq!(edited.channels.len(), 2);
        assert_eq!(edited.channels[1], stored.channels[1]);
        let staff = &edited.channels[0];
        assert_eq!(
            staff.source_location.group_base_dn.as_deref(),
            Some("ou=groups,dc=example,dc=com")
        );
        assert_eq!(
            staff.attribute_mapping[&ScimField::UserName].attributes,
            ["mail"]
        );
        let password = &staff.attribute_mapping[&ScimField::Password];
        assert!(password.create_only && password.masked);
        // A field mapped by expression keeps it.
        assert!(draft.kept_mappings.is_empty());
        assert_eq!(
            staff.attribute_mapping[&ScimField::DisplayName]
                .expression
                .as_deref(),
            Some(r#"Join(" ", [givenName], [sn])"#)
        );
    }

    #[test]
    fn a_typed_secret_cannot_point_at_the_server_s_files() {
        let mut draft = Draft::new();
        draft.take(
            "target",
            &form(&[
                ("scim_url", "https://api.example.com/scim/v2"),
                ("authentication", "oauth2-bearer"),
                ("access_token", "file:/var/lib/scimbridge/secret.key"),
            ]),
        );
        assert!(
            draft.problems("target")["access_token"].contains("env: and file: references"),
            "{:?}",
            draft.problems("target")
        );
    }
}
