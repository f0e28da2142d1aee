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
use crate::mapping::{AttributeMapping, ExtensionMapping, validate_attribute_mapping};
use crate::secret::Secret;
pub use crate::source::{LdapSettings, LdapType, SourceLocation, SourceSettings};

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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DataStoreType {
    /// An LDIF file (RFC 2849 content records), re-read on every cycle.
    Ldif,
    /// A directory server, read over LDAP with the `[data_store.ldap]` settings.
    Ldap,
}

/// A source directory: an LDIF file or an LDAP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DataStoreFile", into = "DataStoreFile")]
pub struct DataStore {
    pub name: String,
    pub kind: DataStoreKind,
}

/// What a data store is, with the settings of that kind.
#[derive(Debug, Clone, PartialEq)]
pub enum DataStoreKind {
    /// An LDIF file; a relative path is resolved against the configuration file's folder.
    Ldif { path: String },
    /// A directory server, read over LDAP.
    Ldap(LdapSettings),
}

/// A data store as a configuration file writes it: `type`, and `path` or a `[data_store.ldap]`
/// table. Read into a [`DataStore`], where a type without its settings cannot exist.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataStoreFile {
    name: String,
    #[serde(rename = "type")]
    store_type: DataStoreType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ldap: Option<LdapSettings>,
}

impl TryFrom<DataStoreFile> for DataStore {
    type Error = String;

    fn try_from(file: DataStoreFile) -> Result<DataStore, String> {
        let DataStoreFile {
            name,
            store_type,
            path,
            ldap,
        } = file;
        let kind = match (store_type, path, ldap) {
            (DataStoreType::Ldif, Some(path), None) if !path.trim().is_empty() => {
                DataStoreKind::Ldif { path }
            }
            (DataStoreType::Ldif, _, Some(_)) => {
                return Err(format!(
                    "data store \"{name}\": type ldif takes a path, not a [data_store.ldap] table"
                ));
            }
            (DataStoreType::Ldif, _, None) => {
                return Err(format!("data store \"{name}\": type ldif needs a path"));
            }
            (DataStoreType::Ldap, None, Some(ldap)) => DataStoreKind::Ldap(ldap),
            (DataStoreType::Ldap, Some(_), _) => {
                return Err(format!(
                    "data store \"{name}\": type ldap takes a [data_store.ldap] table, not a path"
                ));
            }
            (DataStoreType::Ldap, None, None) => {
                return Err(format!(
                    "data store \"{name}\": type ldap needs a [data_store.ldap] table"
                ));
            }
        };
        Ok(DataStore { name, kind })
    }
}

impl From<DataStore> for DataStoreFile {
    fn from(data_store: DataStore) -> DataStoreFile {
        let (store_type, path, ldap) = match data_store.kind {
            DataStoreKind::Ldif { path } => (DataStoreType::Ldif, Some(path), None),
            DataStoreKind::Ldap(ldap) => (DataStoreType::Ldap, None, Some(ldap)),
        };
        DataStoreFile {
            name: data_store.name,
            store_type,
            path,
            ldap,
        }
    }
}

impl DataStore {
    fn validate(&self, problems: &mut Vec<String>) {
        if self.name.trim().is_empty() {
            problems.push("a data store has an empty name".into());
        }
        if let DataStoreKind::Ldap(ldap) = &self.kind {
            ldap.validate(&format!("data store \"{}\"", self.name), problems);
        }
    }

    /// `ldif` or `ldap`, as a configuration file says.
    pub fn store_type(&self) -> DataStoreType {
        match self.kind {
            DataStoreKind::Ldif { .. } => DataStoreType::Ldif,
            DataStoreKind::Ldap(_) => DataStoreType::Ldap,
        }
    }

    /// The LDAP settings of a directory server; `None` for a file.
    pub fn ldap(&self) -> Option<&LdapSettings> {
        match &self.kind {
            DataStoreKind::Ldap(ldap) => Some(ldap),
            DataStoreKind::Ldif { .. } => None,
        }
    }

    /// The file of an LDIF data store; `None` for a directory server.
    pub fn file(&self) -> Option<&str> {
        match &self.kind {
            DataStoreKind::Ldif { path } => Some(path),
            DataStoreKind::Ldap(_) => None,
        }
    }

    /// Makes a relative LDIF path absolute against `base` (the configuration file's folder),
    /// so that later commands work from any folder.
    pub fn resolve_file_against(&mut self, base: &std::path::Path) {
        if let DataStoreKind::Ldif { path } = &mut self.kind
            && std::path::Path::new(path.as_str()).is_relative()
        {
            *path = base.join(path.as_str()).display().to_string();
        }
    }

    /// The LDAP type whose defaults fill the channels' source settings (an LDIF file reads
    /// like OpenLDAP).
    pub fn ldap_type(&self) -> LdapType {
        self.ldap()
            .map_or(LdapType::OpenLdap, |ldap| ldap.ldap_type)
    }

    /// The data store's secrets with their setting names, for encryption at rest and redaction.
    pub fn secret_fields_mut(&mut self) -> Vec<(&'static str, &mut Option<Secret>)> {
        match &mut self.kind {
            DataStoreKind::Ldap(ldap) => vec![("bind_password", &mut ldap.bind_password)],
            DataStoreKind::Ldif { .. } => Vec::new(),
        }
    }

    /// Keeps a stored bind password that an update leaves out.
    pub fn keep_omitted_secrets(&mut self, stored: &DataStore) {
        if let (DataStoreKind::Ldap(mine), DataStoreKind::Ldap(theirs)) =
            (&mut self.kind, &stored.kind)
            && mine.bind_password.is_none()
        {
            mine.bind_password = theirs.bind_password.clone();
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
    #[serde(default)]
    pub guard: GuardSettings,
    #[serde(default, rename = "channel", skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Channel>,
}

/// The mass-change guard: a cycle that would deprovision users, clear their attributes, delete
/// groups or empty them at a scale that looks like a mistake (a mapping typo, a source glitch, a
/// cut export) holds those operations for an operator to approve or discard, and applies the rest.
/// Each rule has an absolute count and a share; a share counts only from `percent_from` affected
/// users (or groups, or members), so that small changes in small channels are not held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSettings {
    pub enabled: bool,
    /// More disables and deletes than this in one cycle of a channel are held.
    pub max_deprovisions: u64,
    /// … or more than this share (in percent) of the channel's users in the target.
    pub max_deprovision_percent: u64,
    /// The shares count only from this many affected users, groups or members.
    pub percent_from: u64,
    /// Updates that would clear the same attribute on more users than this in one cycle are
    /// held (a mapping or a directory export gone wrong).
    pub max_blanked: u64,
    /// … or on more than this share of the channel's users in the target.
    pub max_blanked_percent: u64,
    /// More group deletes than this in one cycle are held.
    pub max_group_deletes: u64,
    /// … or more than this share of the channel's groups in the target.
    pub max_group_delete_percent: u64,
    /// A group that would lose more members than this in one cycle has its removals held.
    pub max_member_removals: u64,
    /// … or more than this share of its members in the target.
    pub max_member_removal_percent: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            enabled: true,
            max_deprovisions: 500,
            max_deprovision_percent: 10,
            percent_from: 5,
            max_blanked: 500,
            max_blanked_percent: 10,
            max_group_deletes: 100,
            max_group_delete_percent: 10,
            max_member_removals: 500,
            max_member_removal_percent: 25,
        }
    }
}

impl GuardSettings {
    /// Each share setting with its name, to check that it is a percentage.
    fn shares(&self) -> [(&'static str, u64); 4] {
        [
            ("max_deprovision_percent", self.max_deprovision_percent),
            ("max_blanked_percent", self.max_blanked_percent),
            ("max_group_delete_percent", self.max_group_delete_percent),
            (
                "max_member_removal_percent",
                self.max_member_removal_percent,
            ),
        ]
    }
}

impl Connection {
    fn validate(&self, data_stores: &BTreeSet<String>, problems: &mut Vec<String>) {
        let at = format!("connection \"{}\"", self.name);
        for (name, percent) in self.guard.shares() {
            if percent > 100 {
                problems.push(format!("{at}: guard.{name} must be between 0 and 100"));
            }
        }
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
        let target = &self.target;
        [
            &target.basic_password,
            &target.access_token,
            &target.client_secret,
        ]
        .into_iter()
        .flatten()
    }

    /// Every secret of the connection, for encryption at rest and redaction.
    pub fn secrets_mut(&mut self) -> impl Iterator<Item = &mut Secret> {
        self.target
            .secret_fields_mut()
            .into_iter()
            .filter_map(|(_, secret)| secret.as_mut())
    }

    /// Keeps stored secrets that an update leaves out, so an exported (redacted) file can be
    /// applied again without wiping credentials.
    pub fn keep_omitted_secrets(&mut self, stored: &Connection) {
        let mut stored = stored.clone();
        for ((_, mine), (_, theirs)) in self
            .target
            .secret_fields_mut()
            .into_iter()
            .zip(stored.target.secret_fields_mut())
        {
            if mine.is_none() {
                *mine = theirs.take();
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ScimVersion {
    #[default]
    #[serde(rename = "2.0")]
    V2,
    /// The older protocol: `urn:scim:schemas:core:1.0`, `application/json`, PATCH with
    /// `meta.attributes`, `/ServiceProviderConfigs`.
    #[serde(rename = "1.1")]
    V1_1,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticationMethod {
    #[default]
    None,
    /// HTTP Basic with `basic_username` and `basic_password`.
    Basic,
    /// A static OAuth 2 access token, sent as `Authorization: <header type> <token>`.
    Oauth2Bearer,
    /// An access token obtained from `token_endpoint` with the client credentials grant,
    /// cached and renewed before it expires.
    Oauth2ClientCredentials,
}

impl AuthenticationMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthenticationMethod::None => "none",
            AuthenticationMethod::Basic => "basic",
            AuthenticationMethod::Oauth2Bearer => "oauth2-bearer",
            AuthenticationMethod::Oauth2ClientCredentials => "oauth2-client-credentials",
        }
    }
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthentication {
    /// Client id and secret in an HTTP Basic header.
    #[default]
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum UniqueUserIdentifier {
    /// Existing target users are found with `userName eq "…"`.
    #[default]
    #[serde(rename = "userName")]
    UserName,
    /// Existing target users are found with `emails eq "…"` and the mapped work email.
    #[serde(rename = "workEmail")]
    WorkEmail,
}

/// How memberships of a group that already exists in the target are reconciled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroupMembershipHandling {
    /// Add and remove only the members this channel manages; keep the others.
    #[default]
    Merge,
    /// Make the target group's members exactly the source group's.
    Overwrite,
}

/// Which part of a group entry becomes its SCIM `displayName`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum GroupNameSource {
    /// The `cn` value ("Common Name").
    #[default]
    Cn,
    /// The whole DN ("Distinguished Name").
    Dn,
}

/// The "Target" screen: where the SCIM service is and how to authenticate. Only the fields of
/// the chosen authentication method are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub scim_url: String,
    #[serde(default)]
    pub scim_version: ScimVersion,
    /// Path of the Users resource, appended to `scim_url`.
    #[serde(default = "default_users_path")]
    pub users_path: String,
    /// Path of the Groups resource, appended to `scim_url`.
    #[serde(default = "default_groups_path")]
    pub groups_path: String,
    #[serde(default)]
    pub authentication: AuthenticationMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Comma-separated scopes asked for in the token request; empty asks for none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scopes: String,
    #[serde(default)]
    pub client_authentication: ClientAuthentication,
    /// The scheme keyword in front of OAuth 2 tokens in the `Authorization` header.
    #[serde(default = "default_authorization_header_type")]
    pub authorization_header_type: String,
    /// PEM file of CA certificates trusted for the target's (and token endpoint's) TLS, in
    /// addition to the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// PEM file with the client certificate chain for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// PEM file with the private key of `client_certificate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[serde(default)]
    pub unique_user_identifier: UniqueUserIdentifier,
    /// A SCIM filter with `%s` where the identifier's value goes (quoted and escaped);
    /// overrides the filter `unique_user_identifier` implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// Page size when listing groups.
    #[serde(default = "default_results_per_page")]
    pub results_per_page: u32,
    /// Whether target group members this channel does not manage are kept.
    #[serde(default)]
    pub group_membership_handling: GroupMembershipHandling,
    /// At most this many member changes per group PATCH request.
    #[serde(default = "default_group_member_chunk_size")]
    pub group_member_chunk_size: u32,
    /// Create users with SCIM Bulk requests when the target advertises Bulk.
    #[serde(default = "default_true")]
    pub use_bulk: bool,
    /// Requests per second allowed to this target (token bucket); 0 means no limit.
    #[serde(default)]
    pub requests_per_second: f64,
    /// How many times a request that failed for a transient reason (timeout, connection reset,
    /// 5xx, 429) is retried before its record fails for this cycle.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

fn default_users_path() -> String {
    "/Users".into()
}

fn default_groups_path() -> String {
    "/Groups".into()
}

fn default_authorization_header_type() -> String {
    "Bearer".into()
}

fn default_results_per_page() -> u32 {
    100
}

fn default_group_member_chunk_size() -> u32 {
    100
}

fn default_max_retries() -> u32 {
    3
}

impl TargetSettings {
    /// Settings for `scim_url` with every default: no authentication.
    pub fn new(scim_url: impl Into<String>) -> TargetSettings {
        TargetSettings {
            scim_url: scim_url.into(),
            scim_version: ScimVersion::default(),
            users_path: default_users_path(),
            groups_path: default_groups_path(),
            authentication: AuthenticationMethod::None,
            basic_username: None,
            basic_password: None,
            access_token: None,
            token_endpoint: None,
            client_id: None,
            client_secret: None,
            scopes: String::new(),
            client_authentication: ClientAuthentication::default(),
            authorization_header_type: default_authorization_header_type(),
            ca_certificate: None,
            client_certificate: None,
            client_key: None,
            unique_user_identifier: UniqueUserIdentifier::default(),
            filter_expression: None,
            results_per_page: default_results_per_page(),
            group_membership_handling: GroupMembershipHandling::default(),
            group_member_chunk_size: default_group_member_chunk_size(),
            use_bulk: true,
            requests_per_second: 0.0,
            max_retries: default_max_retries(),
        }
    }

    /// The scopes of `scopes`, trimmed, empty ones dropped.
    pub fn scope_list(&self) -> Vec<&str> {
        self.scopes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The secrets of the target with their setting names.
    pub fn secret_fields_mut(&mut self) -> [(&'static str, &mut Option<Secret>); 3] {
        [
            ("basic_password", &mut self.basic_password),
            ("access_token", &mut self.access_token),
            ("client_secret", &mut self.client_secret),
        ]
    }

    fn validate(&self, at: &str, problems: &mut Vec<String>) {
        if !is_http_url(&self.scim_url) {
            problems.push(format!(
                "{at}: target.scim_url \"{}\" must be an http:// or https:// URL",
                self.scim_url
            ));
        }
        for (key, path) in [
            ("users_path", &self.users_path),
            ("groups_path", &self.groups_path),
        ] {
            // Leading and trailing slashes are tolerated: the client normalises them.
            if path.trim_matches('/').is_empty() || path.contains(['?', '#', ' ']) {
                problems.push(format!(
                    "{at}: target.{key} \"{path}\" must be a path such as \"/Users\""
                ));
            }
        }
        let method = self.authentication.name();
        let mut require = |present: bool, key: &str| {
            if !present {
                problems.push(format!(
                    "{at}: target.authentication = \"{method}\" needs target.{key}"
                ));
            }
        };
        match self.authentication {
            AuthenticationMethod::None => {}
            AuthenticationMethod::Basic => {
                require(
                    self.basic_username
                        .as_deref()
                        .is_some_and(|u| !u.is_empty()),
                    "basic_username",
                );
                require(self.basic_password.is_some(), "basic_password");
            }
            AuthenticationMethod::Oauth2Bearer => {
                require(self.access_token.is_some(), "access_token")
            }
            AuthenticationMethod::Oauth2ClientCredentials => {
                require(self.token_endpoint.is_some(), "token_endpoint");
                require(
                    self.client_id.as_deref().is_some_and(|c| !c.is_empty()),
                    "client_id",
                );
                require(self.client_secret.is_some(), "client_secret");
            }
        }
        if self.authentication == AuthenticationMethod::Oauth2ClientCredentials
            && let Some(endpoint) = &self.token_endpoint
            && !is_http_url(endpoint)
        {
            problems.push(format!(
                "{at}: target.token_endpoint \"{endpoint}\" must be an http:// or https:// URL"
            ));
        }
        let header_type = self.authorization_header_type.trim();
        if header_type.is_empty() || header_type.contains(char::is_whitespace) {
            problems.push(format!(
                "{at}: target.authorization_header_type \"{}\" must be one word such as \"Bearer\"",
                self.authorization_header_type
            ));
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            problems.push(format!(
                "{at}: target.client_certificate and target.client_key go together"
            ));
        }
        if let Some(expression) = &self.filter_expression
            && expression.matches("%s").count() != 1
        {
            problems.push(format!(
                "{at}: target.filter_expression \"{expression}\" must contain %s exactly once"
            ));
        }
        if self.results_per_page == 0 {
            problems.push(format!("{at}: target.results_per_page must be at least 1"));
        }
        if self.group_member_chunk_size == 0 {
            problems.push(format!(
                "{at}: target.group_member_chunk_size must be at least 1"
            ));
        }
        if !self.requests_per_second.is_finite() || self.requests_per_second < 0.0 {
            problems.push(format!(
                "{at}: target.requests_per_second must be 0 (no limit) or more"
            ));
        }
    }
}

fn is_http_url(url: &str) -> bool {
    let url = url.trim();
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// How many operations of this channel run at once against the target.
    #[serde(default = "default_max_threads")]
    pub max_threads: u32,
    /// Seconds between cycles under `scimbridge serve`; without it, the service's frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronization_frequency: Option<u64>,
    /// Seconds between the small reads (its root DSE's `highestCommittedUSN`) that tell an
    /// Active Directory's changes under `serve` and `sync --watch`; 0 turns them off.
    /// Directories with content synchronization push their changes instead.
    #[serde(default = "default_live_poll_interval")]
    pub live_poll_interval: u64,
    #[serde(default)]
    pub source_settings: SourceSettings,
    pub source_location: SourceLocation,
    pub attribute_mapping: AttributeMapping,
    /// Attributes of custom schema extensions, by full path (`URN:attr`, `URN:attr.sub`,
    /// `URN:attr[type=kind].sub`).
    #[serde(default, skip_serializing_if = "ExtensionMapping::is_empty")]
    pub extension_mapping: ExtensionMapping,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    60
}

fn default_max_threads() -> u32 {
    1
}

fn default_live_poll_interval() -> u64 {
    5
}

/// More than this many parallel requests per channel would only queue at the target.
pub const MAX_THREADS_LIMIT: u32 = 64;

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
        if self.synchronization_frequency == Some(0) {
            problems.push(format!(
                "{at}: synchronization_frequency must be at least 1 second"
            ));
        }
        if !(1..=MAX_THREADS_LIMIT).contains(&self.max_threads) {
            problems.push(format!(
                "{at}: max_threads must be between 1 and {MAX_THREADS_LIMIT}"
            ));
        }
        self.source_settings.validate(&at, problems);
        self.source_location.validate(&at, problems);
        validate_attribute_mapping(
            &at,
            &self.attribute_mapping,
            &self.extension_mapping,
            problems,
        );
    }
}

#[cfg(test)]
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
        let effective = channel
            .source_settings
            .effective(file.data_stores[0].ldap_type());
        assert_eq!(effective.entry_guid_attribute, "entryUUID");
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

    #[test]
    fn the_documented_examples_are_valid() {
        let doc = include_str!("../../../docs/configuration.md");
        let examples: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|part| part.split("```").next())
            .filter(|example| example.starts_with("version = 1"))
            .collect();
        assert!(examples.len() >= 3, "{}", examples.len());
        for example in examples {
            let file = ConfigFile::from_toml(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
            file.validate(&BTreeSet::new())
                .unwrap_or_else(|e| panic!("{e}\n{example}"));
        }
    }
}
