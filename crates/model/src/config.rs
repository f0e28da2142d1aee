//! Configuration: data stores and provisioning connections, with PingFederate's names.
//!
//! The same types are read from the versioned TOML file (`scimbridge apply -f`), kept in the state
//! store, and printed back by `scimbridge export`. Unknown keys are rejected: toml reports the key's
//! name and line.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::mapping::ScimField;
use crate::mapping::{AttributeMapping, validate_attribute_mapping};
use crate::secret::Secret;

/// The only configuration file version this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// A whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub version: u32,
    #[serde(default, rename = "data_store", skip_serializing_if = "Vec::is_empty")]
    pub data_stores: Vec<DataStore>,
    #[serde(default, rename = "connection", skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<Connection>,
}

impl ConfigFile {
    /// Parses TOML text; syntax errors and unknown keys name the line.
    pub fn from_toml(text: &str) -> Result<ConfigFile, ConfigError> {
        let file: ConfigFile = toml::from_str(text)
            .map_err(|e| ConfigError::Parse(e.to_string().trim_end().to_owned()))?;
        if file.version != CONFIG_VERSION {
            return Err(ConfigError::Parse(format!(
                "unsupported configuration version {}; this scimbridge reads version {CONFIG_VERSION}",
                file.version
            )));
        }
        Ok(file)
    }

    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Checks what can be checked without the state store: names, references within the file
    /// (data stores may also come from `known_data_stores`), required fields.
    pub fn validate(&self, known_data_stores: &BTreeSet<String>) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut data_store_names = known_data_stores.clone();
        let mut seen = BTreeSet::new();
        for data_store in &self.data_stores {
            data_store.validate(&mut problems);
            if !seen.insert(data_store.name.clone()) {
                problems.push(format!(
                    "data store \"{}\" is defined twice",
                    data_store.name
                ));
            }
            data_store_names.insert(data_store.name.clone());
        }
        let mut seen = BTreeSet::new();
        for connection in &self.connections {
            connection.validate(&data_store_names, &mut problems);
            if !seen.insert(connection.name.clone()) {
                problems.push(format!(
                    "connection \"{}\" is defined twice",
                    connection.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataStoreType {
    /// An LDIF file (RFC 2849 content records), re-read on every cycle.
    Ldif,
}

/// A source directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataStore {
    pub name: String,
    #[serde(rename = "type")]
    pub store_type: DataStoreType,
    /// LDIF file path; relative paths are resolved against the configuration file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl DataStore {
    fn validate(&self, problems: &mut Vec<String>) {
        if self.name.trim().is_empty() {
            problems.push("a data store has an empty name".into());
        }
        match self.store_type {
            DataStoreType::Ldif => {
                if self.path.as_deref().is_none_or(|p| p.trim().is_empty()) {
                    problems.push(format!(
                        "data store \"{}\": type ldif needs a path",
                        self.name
                    ));
                }
            }
        }
    }
}

/// A provisioning connection to one SCIM target service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub name: String,
    /// Only active connections provision. Default false, as in PingFederate.
    #[serde(default)]
    pub active: bool,
    pub target: TargetSettings,
    #[serde(default)]
    pub options: ProvisioningOptions,
    #[serde(default, rename = "channel", skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
}

impl Connection {
    fn validate(&self, data_stores: &BTreeSet<String>, problems: &mut Vec<String>) {
        let at = format!("connection \"{}\"", self.name);
        if self.name.trim().is_empty() {
            problems.push("a connection has an empty name".into());
        }
        self.target.validate(&at, problems);
        let mut seen = BTreeSet::new();
        for channel in &self.channels {
            if !seen.insert(channel.name.clone()) {
                problems.push(format!(
                    "{at}: channel \"{}\" is defined twice",
                    channel.name
                ));
            }
            channel.validate(&at, data_stores, problems);
        }
    }

    /// Every secret of the connection.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.target.access_token.iter()
    }

    /// Every secret of the connection, for encryption at rest and redaction.
    pub fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret> {
        self.target.access_token.iter_mut()
    }

    /// Keeps stored secrets that an update leaves out, so an exported (redacted) file can be
    /// applied again without wiping credentials.
    pub fn keep_omitted_secrets(&mut self, stored: &Connection) {
        if self.target.access_token.is_none() {
            self.target.access_token = stored.target.access_token.clone();
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScimVersion {
    #[default]
    #[serde(rename = "2.0")]
    V2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticationMethod {
    #[default]
    None,
    /// A static OAuth 2 access token sent as `Authorization: Bearer …`.
    Oauth2Bearer,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UniqueUserIdentifier {
    /// Existing target users are found with `userName eq "…"`.
    #[default]
    #[serde(rename = "userName")]
    UserName,
}

/// The "Target" screen: where the SCIM service is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub scim_url: String,
    #[serde(default)]
    pub scim_version: ScimVersion,
    #[serde(default)]
    pub authentication: AuthenticationMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    #[serde(default)]
    pub unique_user_identifier: UniqueUserIdentifier,
}

impl TargetSettings {
    fn validate(&self, at: &str, problems: &mut Vec<String>) {
        let url = self.scim_url.trim();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            problems.push(format!(
                "{at}: target.scim_url \"{}\" must be an http:// or https:// URL",
                self.scim_url
            ));
        }
        if self.authentication == AuthenticationMethod::Oauth2Bearer && self.access_token.is_none()
        {
            problems.push(format!(
                "{at}: target.authentication = \"oauth2-bearer\" needs target.access_token"
            ));
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoveUserAction {
    #[default]
    Disable,
    Delete,
}

impl fmt::Display for RemoveUserAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoveUserAction::Disable => "disable",
            RemoveUserAction::Delete => "delete",
        })
    }
}

/// The "Provisioning Options" screen. Defaults are PingFederate's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningOptions {
    pub user_create: bool,
    pub user_update: bool,
    pub user_disable_delete: bool,
    pub provision_disabled_users: bool,
    pub remove_user_action: RemoveUserAction,
}

impl Default for ProvisioningOptions {
    fn default() -> Self {
        ProvisioningOptions {
            user_create: true,
            user_update: true,
            user_disable_delete: true,
            provision_disabled_users: false,
            remove_user_action: RemoveUserAction::Disable,
        }
    }
}

/// One source location and attribute mapping feeding the connection's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    #[serde(default = "default_true")]
    pub active: bool,
    pub data_store: String,
    /// Seconds allowed for each operation against the target.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default)]
    pub source_settings: SourceSettings,
    pub source_location: SourceLocation,
    pub attribute_mapping: AttributeMapping,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    60
}

impl Channel {
    fn validate(&self, at: &str, data_stores: &BTreeSet<String>, problems: &mut Vec<String>) {
        let at = format!("{at} channel \"{}\"", self.name);
        if self.name.trim().is_empty() {
            problems.push(format!("{at}: empty channel name"));
        }
        if !data_stores.contains(&self.data_store) {
            problems.push(format!(
                "{at}: data store \"{}\" is not defined",
                self.data_store
            ));
        }
        if self.timeout == 0 {
            problems.push(format!("{at}: timeout must be at least 1 second"));
        }
        if self.source_settings.entry_guid_attribute.trim().is_empty() {
            problems.push(format!(
                "{at}: source_settings.entry_guid_attribute is empty"
            ));
        }
        if self.source_location.base_dn.trim().is_empty() {
            problems.push(format!("{at}: source_location.base_dn is empty"));
        }
        validate_attribute_mapping(&at, &self.attribute_mapping, problems);
    }
}

/// Which LDAP attributes identify entries and which entries are users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// The attribute holding each entry's immutable GUID.
    pub entry_guid_attribute: String,
    /// Key entries without the GUID attribute by their DN instead of failing them. A DN changes
    /// on rename, so a renamed entry then looks like a leaver plus a joiner: off by default.
    pub use_dn_when_guid_missing: bool,
    pub user_object_class: String,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            entry_guid_attribute: "entryUUID".into(),
            use_dn_when_guid_missing: false,
            user_object_class: "inetOrgPerson".into(),
        }
    }
}

/// Where the channel's users are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceLocation {
    /// Only entries at or below this DN are read.
    pub base_dn: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version = 1

[[data_store]]
name = "corp"
type = "ldif"
path = "directory.ldif"

[[connection]]
name = "Slack"
active = true

[connection.target]
scim_url = "https://api.example.com/scim/v2/"
authentication = "oauth2-bearer"
access_token = "env:SLACK_TOKEN"

[connection.options]
remove_user_action = "delete"

[[connection.channel]]
name = "employees"
data_store = "corp"

[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"

[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
title = { attributes = ["title"], default_value = "Staff" }
"#;

    #[test]
    fn reads_a_full_file_with_defaults() {
        let file = ConfigFile::from_toml(SAMPLE).unwrap();
        file.validate(&BTreeSet::new()).unwrap();
        let connection = &file.connections[0];
        assert!(connection.active);
        assert_eq!(
            connection.target.access_token,
            Some(Secret::Env("SLACK_TOKEN".into()))
        );
        assert_eq!(
            connection.options.remove_user_action,
            RemoveUserAction::Delete
        );
        assert!(connection.options.user_create && !connection.options.provision_disabled_users);
        let channel = &connection.channels[0];
        assert!(channel.active);
        assert_eq!(channel.timeout, 60);
        assert_eq!(channel.source_settings.entry_guid_attribute, "entryUUID");
        assert_eq!(
            channel.attribute_mapping[&ScimField::Title]
                .default_value
                .as_deref(),
            Some("Staff")
        );
    }

    #[test]
    fn round_trips_through_toml() {
        let file = ConfigFile::from_toml(SAMPLE).unwrap();
        let again = ConfigFile::from_toml(&file.to_toml().unwrap()).unwrap();
        assert_eq!(file, again);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name_and_line() {
        let text = SAMPLE.replace("remove_user_action", "remove_usr_action");
        let err = ConfigFile::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("remove_usr_action"), "{err}");
        assert!(err.contains("line 19"), "{err}");
    }

    #[test]
    fn unknown_scim_field_is_rejected() {
        let text = SAMPLE.replace("title = {", "jobTitle = {");
        let err = ConfigFile::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("jobTitle"), "{err}");
    }

    #[test]
    fn wrong_version_is_rejected() {
        let err = ConfigFile::from_toml("version = 2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported configuration version 2"), "{err}");
    }

    #[test]
    fn validation_lists_every_problem() {
        let text = SAMPLE
            .replace("data_store = \"corp\"", "data_store = \"nope\"")
            .replace("userName = { attributes = [\"uid\"] }", "")
            .replace("access_token = \"env:SLACK_TOKEN\"", "")
            .replace("https://api.example.com", "ftp://x");
        let err = ConfigFile::from_toml(&text)
            .unwrap()
            .validate(&BTreeSet::new())
            .unwrap_err();
        let ConfigError::Invalid(problems) = err else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        let all = problems.join("\n");
        for needle in [
            "data store \"nope\"",
            "must map userName",
            "needs target.access_token",
            "scim_url",
        ] {
            assert!(all.contains(needle), "{needle} missing in {all}");
        }
    }
}
