//! The settings the wizard's steps show beyond their main fields, so that everything a
//! configuration file can hold is reachable in the console: one table, read from and written to
//! the connection in its configuration-file form. Left empty, a setting takes its default.

use serde_json::{Map, Value, json};

/// Where a setting lives in a connection (its first channel for the channel's parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Target,
    Guard,
    Channel,
    SourceSettings,
    SourceLocation,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Target => "target",
            Section::Guard => "guard",
            Section::Channel => "channel",
            Section::SourceSettings => "source_settings",
            Section::SourceLocation => "source_location",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Text,
    /// A whole number, or a decimal one where `decimal`.
    Number {
        decimal: bool,
    },
    /// Yes, no, or the default (said in the label).
    Flag,
    Choice(&'static [(&'static str, &'static str)]),
}

#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub step: &'static str,
    pub section: Section,
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
}

impl Setting {
    /// The form field's name, unique across sections.
    pub fn field(&self) -> String {
        format!("{}__{}", self.section.name(), self.key)
    }
}

const fn setting(
    step: &'static str,
    section: Section,
    key: &'static str,
    label: &'static str,
    kind: Kind,
) -> Setting {
    Setting {
        step,
        section,
        key,
        label,
        kind,
    }
}

const TEXT: Kind = Kind::Text;
const WHOLE: Kind = Kind::Number { decimal: false };
const FLAG: Kind = Kind::Flag;
use Section::{Channel, Guard, SourceLocation, SourceSettings, Target};

pub const SETTINGS: &[Setting] = &[
    setting(
        "target",
        Target,
        "scim_version",
        "SCIM Version",
        Kind::Choice(&[("", "2.0 (default)"), ("2.0", "2.0"), ("1.1", "1.1")]),
    ),
    setting(
        "target",
        Target,
        "users_path",
        "Users Path (default /Users)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "groups_path",
        "Groups Path (default /Groups)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "scopes",
        "OAuth 2 Scopes (comma-separated)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "client_authentication",
        "OAuth 2 Client Authentication",
        Kind::Choice(&[
            ("", "Basic header (default)"),
            ("client_secret_basic", "Basic header"),
            ("client_secret_post", "Form fields"),
        ]),
    ),
    setting(
        "target",
        Target,
        "authorization_header_type",
        "Authorization Header Type (default Bearer)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "ca_certificate",
        "Trusted CA Certificates (PEM file on the server)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "client_certificate",
        "Client Certificate for Mutual TLS (PEM file)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "client_key",
        "Client Key for Mutual TLS (PEM file)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "unique_user_identifier",
        "Unique User Identifier",
        Kind::Choice(&[
            ("", "userName (default)"),
            ("userName", "userName"),
            ("workEmail", "Work email"),
        ]),
    ),
    setting(
        "target",
        Target,
        "filter_expression",
        "Filter Expression (%s for the identifier)",
        TEXT,
    ),
    setting(
        "target",
        Target,
        "results_per_page",
        "Results per Page (default 100)",
        WHOLE,
    ),
    setting(
        "target",
        Target,
        "group_membership_handling",
        "Group Membership Handling",
        Kind::Choice(&[
            ("", "Merge (default)"),
            ("merge", "Merge"),
            ("overwrite", "Overwrite"),
        ]),
    ),
    setting(
        "target",
        Target,
        "group_member_chunk_size",
        "Member Changes per Group Request (default 100)",
        WHOLE,
    ),
    setting("target", Target, "use_bulk", "Use Bulk (default yes)", FLAG),
    setting(
        "target",
        Target,
        "requests_per_second",
        "Requests per Second (0: no limit)",
        Kind::Number { decimal: true },
    ),
    setting(
        "target",
        Target,
        "max_retries",
        "Retries of a Failed Request (default 3)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "enabled",
        "Mass-Change Guard (default on)",
        FLAG,
    ),
    setting(
        "options",
        Guard,
        "max_deprovisions",
        "Hold Deprovisions Above (default 500)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_deprovision_percent",
        "… or Above this % of Users (default 10)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_blanked",
        "Hold Attribute Clearing Above (default 500)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_blanked_percent",
        "… or Above this % of Users (default 10)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_group_deletes",
        "Hold Group Deletes Above (default 100)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_group_delete_percent",
        "… or Above this % of Groups (default 10)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_member_removals",
        "Hold Member Removals Above (default 500)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "max_member_removal_percent",
        "… or Above this % of Members (default 25)",
        WHOLE,
    ),
    setting(
        "options",
        Guard,
        "percent_from",
        "Shares Count From (default 5)",
        WHOLE,
    ),
    setting(
        "channel",
        Channel,
        "active",
        "Channel Active (default yes; an inactive channel is skipped)",
        FLAG,
    ),
    setting(
        "channel",
        Channel,
        "synchronization_frequency",
        "Synchronization Frequency (seconds; default the service's)",
        WHOLE,
    ),
    setting(
        "channel",
        Channel,
        "live_poll_interval",
        "Live Poll Interval (seconds; default 5, 0 off)",
        WHOLE,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "guid_binary",
        "GUID Is Binary",
        FLAG,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "use_dn_when_guid_missing",
        "Use the DN When the GUID Is Missing",
        FLAG,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "group_object_class",
        "Group Object Class",
        TEXT,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "group_member_attribute",
        "Group Member Attribute",
        TEXT,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "member_of_group_attribute",
        "Member-of Attribute",
        TEXT,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "group_name_source",
        "Group Name From",
        Kind::Choice(&[("", "cn (default)"), ("cn", "cn"), ("dn", "DN")]),
    ),
    setting(
        "source-settings",
        SourceSettings,
        "usn_attribute",
        "USN Attribute (default uSNChanged)",
        TEXT,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "timestamp_attribute",
        "Timestamp Attribute",
        TEXT,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "flag_comparison_status",
        "Flag: a Match Means Active",
        FLAG,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "default_status",
        "Flag: Active Without the Attribute (default yes)",
        FLAG,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "full_reconciliation_hours",
        "Full Reconciliation Every (hours; default 24)",
        WHOLE,
    ),
    setting(
        "source-settings",
        SourceSettings,
        "delete_sweep_minutes",
        "Sweep for Deletes Every (minutes; default 15)",
        WHOLE,
    ),
    setting(
        "location",
        SourceLocation,
        "user_nested_search",
        "Users: Nested Groups Count",
        FLAG,
    ),
    setting(
        "location",
        SourceLocation,
        "group_base_dn",
        "Groups: Base DN (groups are provisioned when set)",
        TEXT,
    ),
    setting(
        "location",
        SourceLocation,
        "group_filter",
        "Groups: Filter",
        TEXT,
    ),
    setting(
        "location",
        SourceLocation,
        "group_group_dn",
        "Groups: Only Members of This Group",
        TEXT,
    ),
    setting(
        "location",
        SourceLocation,
        "group_nested_search",
        "Groups: Nested Too",
        FLAG,
    ),
];

/// The configuration file's names of the wizard's main fields, and what the console calls them.
const MAIN_FIELDS: &[(&str, &str)] = &[
    ("target.scim_url", "Target: SCIM URL"),
    ("target.authentication", "Target: Authentication Method"),
    ("target.access_token", "Target: Access Token"),
    ("target.basic_username", "Target: User Name"),
    ("target.basic_password", "Target: Password"),
    ("target.token_endpoint", "Target: Token Endpoint"),
    ("target.client_id", "Target: Client ID"),
    ("target.client_secret", "Target: Client Secret"),
    (
        "source_settings.changed_users_algorithm",
        "Source Settings: Changed Users Algorithm",
    ),
    (
        "source_settings.entry_guid_attribute",
        "Source Settings: Entry GUID Attribute",
    ),
    (
        "source_settings.user_object_class",
        "Source Settings: User Object Class",
    ),
    (
        "source_settings.account_status_algorithm",
        "Source Settings: Account Status Algorithm",
    ),
    (
        "source_settings.account_status_attribute",
        "Source Settings: Account Status Attribute",
    ),
    (
        "source_settings.flag_comparison_value",
        "Source Settings: Flag Comparison Value",
    ),
    ("source_location.base_dn", "Source Location: Base DN"),
    (
        "source_location.user_filter",
        "Source Location: Users: Filter",
    ),
    (
        "source_location.user_group_dn",
        "Source Location: Users: Group DN",
    ),
];

/// The title of a step in messages.
fn step_title(step: &str) -> &'static str {
    match step {
        "target" => "Target",
        "options" => "Provisioning Options",
        "channel" => "Channel Info",
        "source-settings" => "Source Settings",
        "location" => "Source Location",
        _ => "Settings",
    }
}

/// A message (a refusal of Save, a check's answer) with the configuration file's names of
/// settings replaced by the console's: `Source Location: Base DN`, not `source_location.base_dn`.
pub fn in_console_words(text: &str) -> String {
    let mut names: Vec<(String, String)> = MAIN_FIELDS
        .iter()
        .map(|(file, console)| ((*file).to_owned(), (*console).to_owned()))
        // A bare word (`active`) is not replaced: it is also ordinary English.
        .chain(
            SETTINGS
                .iter()
                .filter(|s| s.section != Section::Channel || s.key.contains('_'))
                .map(|s| {
                    let label = s.label.split(" (").next().unwrap_or(s.label);
                    // A channel's own keys stand bare in messages.
                    let file = match s.section {
                        Section::Channel => s.key.to_owned(),
                        section => format!("{}.{}", section.name(), s.key),
                    };
                    (file, format!("{}: {label}", step_title(s.step)))
                }),
        )
        .collect();
    // Longer names first, so that one is never replaced inside another.
    names.sort_by_key(|(file, _)| std::cmp::Reverse(file.len()));
    let mut text = text.to_owned();
    for (file, console) in names {
        text = text.replace(&file, &console);
    }
    text
}

/// The settings of one step.
pub fn of_step(step: &str) -> impl Iterator<Item = &'static Setting> + '_ {
    SETTINGS.iter().filter(move |s| s.step == step)
}

/// The object a setting's section is, in a connection's document.
fn section(
    root: &mut Map<String, Value>,
    channel: usize,
    section: Section,
) -> Option<&mut Map<String, Value>> {
    let parent = match section {
        Section::Target | Section::Guard => root,
        Section::Channel | Section::SourceSettings | Section::SourceLocation => root
            .get_mut("channel")?
            .as_array_mut()?
            .get_mut(channel)?
            .as_object_mut()?,
    };
    match section {
        Section::Channel => Some(parent),
        other => {
            let entry = parent
                .entry(other.name())
                .or_insert_with(|| Value::Object(Map::new()));
            entry.as_object_mut()
        }
    }
}

/// Each setting's value in a stored connection's document, as the form shows it.
pub fn read(document: &Value, channel: usize) -> Vec<(String, String)> {
    let mut document = document.clone();
    let Some(root) = document.as_object_mut() else {
        return Vec::new();
    };
    SETTINGS
        .iter()
        .map(|setting| {
            let value = section(root, channel, setting.section)
                .and_then(|object| object.get(setting.key).cloned())
                .unwrap_or(Value::Null);
            let text = match value {
                Value::String(text) => text,
                Value::Bool(flag) => flag.to_string(),
                Value::Number(number) => number.to_string(),
                _ => String::new(),
            };
            (setting.field(), text)
        })
        .collect()
}

/// Settings that must be at least 1 (a frequency, a page, a chunk).
const AT_LEAST_ONE: &[&str] = &[
    "synchronization_frequency",
    "results_per_page",
    "group_member_chunk_size",
];

/// File settings: the console names certificate and key files only, so that a browser cannot
/// make the server read (and say whether it finds) any file; others are set with `apply`.
const PEM_FILES: &[&str] = &["ca_certificate", "client_certificate", "client_key"];

/// Whether a path names a certificate or key file, as the console accepts them.
pub fn is_pem_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".pem", ".crt", ".cer", ".key"]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

/// What is wrong with a typed value, in the console's words.
pub fn problem(setting: &Setting, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let label = setting.label.split(" (").next().unwrap_or(setting.label);
    match setting.kind {
        Kind::Number { decimal: false } => match text.parse::<u32>() {
            Err(_) => Some(format!("{label}: a whole number up to {}.", u32::MAX)),
            Ok(0) if AT_LEAST_ONE.contains(&setting.key) => Some(format!("{label}: at least 1.")),
            Ok(_) => None,
        },
        Kind::Number { decimal: true } => match text.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => None,
            _ => Some(format!("{label}: a number from 0.")),
        },
        Kind::Text if PEM_FILES.contains(&setting.key) && !is_pem_path(text) => Some(format!(
            "{label}: the console names .pem, .crt, .cer or .key files; set another with scimbridge apply on the server."
        )),
        _ => None,
    }
}

/// Writes the typed values into a connection's document; an empty one takes the default.
pub fn write(
    document: &mut Value,
    channel: usize,
    values: &std::collections::BTreeMap<String, String>,
) {
    let Some(root) = document.as_object_mut() else {
        return;
    };
    for setting in SETTINGS {
        let text = values
            .get(&setting.field())
            .map(String::as_str)
            .unwrap_or_default();
        let Some(object) = section(root, channel, setting.section) else {
            continue;
        };
        let value = match setting.kind {
            _ if text.is_empty() => None,
            Kind::Flag => Some(json!(text == "true")),
            Kind::Number { decimal: false } => text.parse::<u32>().ok().map(|n| json!(n)),
            Kind::Number { decimal: true } => text.parse::<f64>().ok().map(|n| json!(n)),
            Kind::Text | Kind::Choice(_) => Some(json!(text)),
        };
        match value {
            Some(value) => {
                object.insert(setting.key.into(), value);
            }
            None => {
                object.remove(setting.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn values_go_where_a_configuration_file_puts_them_and_empty_ones_take_the_default() {
        let mut document = json!({
            "name": "App",
            "target": {"scim_url": "http://x", "use_bulk": false},
            "channel": [{"name": "staff", "source_location": {"base_dn": "dc=x"}}]
        });
        let values: BTreeMap<String, String> = [
            ("target__scim_version", "1.1"),
            ("target__use_bulk", ""),
            ("target__requests_per_second", "2.5"),
            ("guard__max_deprovisions", "20"),
            ("channel__synchronization_frequency", "300"),
            ("source_location__group_base_dn", "ou=groups,dc=x"),
            ("source_location__user_nested_search", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        write(&mut document, 0, &values);
        assert_eq!(document["target"]["scim_version"], "1.1");
        assert!(
            document["target"].get("use_bulk").is_none(),
            "emptied: the default"
        );
        assert_eq!(document["target"]["requests_per_second"], 2.5);
        assert_eq!(document["guard"]["max_deprovisions"], 20);
        assert_eq!(document["channel"][0]["synchronization_frequency"], 300);
        assert_eq!(
            document["channel"][0]["source_location"]["group_base_dn"],
            "ou=groups,dc=x"
        );
        assert_eq!(
            document["channel"][0]["source_location"]["user_nested_search"],
            true
        );

        let read: BTreeMap<String, String> = read(&document, 0).into_iter().collect();
        assert_eq!(read["guard__max_deprovisions"], "20");
        assert_eq!(read["source_location__user_nested_search"], "true");
        assert_eq!(read["target__use_bulk"], "");
    }

    #[test]
    fn messages_name_settings_as_the_console_does() {
        assert_eq!(
            in_console_words("source_location.base_dn ou=x does not exist; check target.scim_url"),
            "Source Location: Base DN ou=x does not exist; check Target: SCIM URL"
        );
        assert_eq!(
            in_console_words("source_location.group_base_dn is missing"),
            "Source Location: Groups: Base DN is missing"
        );
        assert_eq!(
            in_console_words("synchronization_frequency must be at least 1; it is active"),
            "Channel Info: Synchronization Frequency must be at least 1; it is active"
        );
    }

    #[test]
    fn a_number_box_says_what_it_takes() {
        let whole = SETTINGS.iter().find(|s| s.key == "max_retries").unwrap();
        assert!(problem(whole, "three").unwrap().contains("a whole number"));
        assert!(problem(whole, "99999999999").is_some(), "beyond u32");
        let frequency = SETTINGS
            .iter()
            .find(|s| s.key == "synchronization_frequency")
            .unwrap();
        assert!(problem(frequency, "0").unwrap().contains("at least 1"));
        let ca = SETTINGS.iter().find(|s| s.key == "ca_certificate").unwrap();
        assert!(problem(ca, "/etc/shadow").is_some());
        assert!(problem(ca, "/etc/ssl/corp-ca.pem").is_none());
        assert!(problem(whole, "").is_none());
        let rate = SETTINGS
            .iter()
            .find(|s| s.key == "requests_per_second")
            .unwrap();
        assert!(problem(rate, "0.5").is_none());
        assert!(problem(rate, "-1").is_some());
        assert!(problem(rate, "inf").is_some());
        assert!(problem(rate, "NaN").is_some());
    }
}
