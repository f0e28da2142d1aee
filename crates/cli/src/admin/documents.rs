//! The configuration documents of the API, typed: a connection in PingFederate's shape and a
//! data store, as the API answers them and as its OpenAPI description shows them.
//!
//! A document is built from the model field by field, every model struct taken apart whole, so
//! that a setting added to the model does not compile here until the API says where it goes.
//! Documents sent in are read by [`super::shape`] through the model's own serde form instead, so
//! that the API accepts exactly what a configuration file accepts, with the same messages; the
//! serde attributes here that only matter to reading (`deny_unknown_fields`) are there for the
//! schema, which says so.

use scimbridge_model::{self as model, ScimField, Secret};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::shape::camel_case;

/// A provisioning connection to one SCIM target, read like PingFederate's `SpConnection`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connection {
    /// Unique. A PUT takes it from the path.
    pub name: String,
    /// Only active connections provision. Saving an active connection checks its target, and
    /// the LDAP data stores of its active channels, first.
    #[schema(required = false, default = false)]
    pub active: bool,
    pub outbound_provision: OutboundProvision,
}

/// What the connection provisions, and where to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutboundProvision {
    #[serde(rename = "type")]
    #[schema(required = false)]
    pub provision_type: ProvisionType,
    pub target_settings: TargetSettings,
    #[schema(required = false)]
    pub provisioning_options: ProvisioningOptions,
    #[schema(required = false)]
    pub guard: Guard,
    #[schema(required = false)]
    pub channels: Vec<Channel>,
}

/// The protocol spoken to the target: SCIM.
#[derive(Debug, Serialize, ToSchema)]
pub enum ProvisionType {
    #[serde(rename = "SCIM")]
    Scim,
}

/// Where the SCIM service is and how to authenticate; only the settings of the chosen
/// authentication method are used. Secrets are write-only: a literal one is never returned
/// (`storedSecrets` names those held) and a document that leaves it out keeps it. `env:NAME`
/// and `file:PATH` references are shown as they are; the API accepts only those stored already.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSettings {
    /// An http:// or https:// URL.
    pub scim_url: String,
    #[schema(required = false)]
    pub scim_version: model::ScimVersion,
    /// Appended to `scimUrl`.
    #[schema(required = false, default = "/Users")]
    pub users_path: String,
    /// Appended to `scimUrl`.
    #[schema(required = false, default = "/Groups")]
    pub groups_path: String,
    #[schema(required = false)]
    pub authentication: model::AuthenticationMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_username: Option<String>,
    /// A secret: write-only unless an `env:` or `file:` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_password: Option<String>,
    /// A secret: write-only unless an `env:` or `file:` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A secret: write-only unless an `env:` or `file:` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Comma-separated scopes asked for in the token request.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scopes: String,
    #[schema(required = false)]
    pub client_authentication: model::ClientAuthentication,
    /// The scheme keyword in front of OAuth 2 tokens in the `Authorization` header.
    #[schema(required = false, default = "Bearer")]
    pub authorization_header_type: String,
    /// PEM file of CA certificates trusted in addition to the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// PEM file with the client certificate chain, for mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    /// PEM file with the private key of `clientCertificate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    #[schema(required = false)]
    pub unique_user_identifier: model::UniqueUserIdentifier,
    /// A SCIM filter with `%s` where the identifier's value goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// Page size when listing groups.
    #[schema(required = false, default = 100, minimum = 1)]
    pub results_per_page: u32,
    #[schema(required = false)]
    pub group_membership_handling: model::GroupMembershipHandling,
    /// At most this many member changes per group PATCH request.
    #[schema(required = false, default = 100, minimum = 1)]
    pub group_member_chunk_size: u32,
    /// Create users with SCIM Bulk requests when the target advertises Bulk.
    #[schema(required = false, default = true)]
    pub use_bulk: bool,
    /// Requests per second allowed to this target; 0: no limit.
    #[schema(required = false, default = 0.0, minimum = 0.0)]
    pub requests_per_second: f64,
    /// Retries of a request that failed for a transient reason.
    #[schema(required = false, default = 3)]
    pub max_retries: u32,
    /// The secrets held, which a document that leaves them out keeps.
    #[schema(read_only)]
    pub stored_secrets: Vec<String>,
}

/// The "Provisioning Options" screen; the defaults are PingFederate's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProvisioningOptions {
    #[schema(required = false, default = true)]
    pub user_create: bool,
    #[schema(required = false, default = true)]
    pub user_update: bool,
    #[schema(required = false, default = true)]
    pub user_disable_delete: bool,
    #[schema(required = false, default = false)]
    pub provision_disabled_users: bool,
    #[schema(required = false)]
    pub remove_user_action: model::RemoveUserAction,
}

/// The mass-change guard: a cycle that would deprovision, clear attributes, delete groups or
/// empty them at a scale that looks like a mistake holds those operations for an operator.
/// Each rule has a count and a share (percent), the shares counting from `percentFrom`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guard {
    #[schema(required = false, default = true)]
    pub enabled: bool,
    #[schema(required = false, default = 500)]
    pub max_deprovisions: u64,
    #[schema(required = false, default = 10, maximum = 100)]
    pub max_deprovision_percent: u64,
    #[schema(required = false, default = 5)]
    pub percent_from: u64,
    #[schema(required = false, default = 500)]
    pub max_blanked: u64,
    #[schema(required = false, default = 10, maximum = 100)]
    pub max_blanked_percent: u64,
    #[schema(required = false, default = 100)]
    pub max_group_deletes: u64,
    #[schema(required = false, default = 10, maximum = 100)]
    pub max_group_delete_percent: u64,
    #[schema(required = false, default = 500)]
    pub max_member_removals: u64,
    #[schema(required = false, default = 25, maximum = 100)]
    pub max_member_removal_percent: u64,
}

/// One source location and attribute mapping feeding the connection's target.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Channel {
    pub name: String,
    #[schema(required = false, default = true)]
    pub active: bool,
    /// Seconds allowed for each operation against the target.
    #[schema(required = false, default = 60, minimum = 1)]
    pub timeout: u64,
    /// Operations of this channel at once against the target.
    #[schema(required = false, default = 1, minimum = 1, maximum = 64)]
    pub max_threads: u32,
    /// Seconds between cycles under `scimbridge serve`; without it, the service's frequency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synchronization_frequency: Option<u64>,
    /// Seconds between the reads that tell an Active Directory's changes; 0: none.
    #[schema(required = false, default = 5)]
    pub live_poll_interval: u64,
    pub channel_source: ChannelSource,
    pub attribute_mapping: Vec<FieldMapping>,
    /// Attributes of custom schema extensions, by full path.
    #[schema(required = false)]
    pub extension_mapping: Vec<ExtensionMapping>,
}

/// The data store a channel reads, and what it reads there.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelSource {
    pub data_source: DataSource,
    #[schema(required = false)]
    pub source_settings: SourceSettings,
    pub source_location: SourceLocation,
}

/// A reference to a data store.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataSource {
    /// The data store's name.
    pub id: String,
}

/// Which LDAP attributes identify entries, which entries are users and groups, and how changes
/// and account status are read. Every setting left out takes the LDAP type's default.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_guid_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guid_binary: Option<bool>,
    #[schema(required = false, default = false)]
    pub use_dn_when_guid_missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_object_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_object_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_member_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_of_group_attribute: Option<String>,
    #[schema(required = false)]
    pub group_name_source: model::GroupNameSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_users_algorithm: Option<model::ChangeDetection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usn_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status_algorithm: Option<model::AccountStatusAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_comparison_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_comparison_status: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_status: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_reconciliation_hours: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_sweep_minutes: Option<u32>,
}

/// Where the channel's users and groups are, and which of them are in scope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceLocation {
    /// Only entries at or below this DN are read.
    pub base_dn: String,
    /// Groups at or below this DN are provisioned; without it, no group is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_base_dn: Option<String>,
    /// Only members of this group are users of the channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_group_dn: Option<String>,
    /// Only entries matching this LDAP filter are users of the channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[schema(required = false, default = false)]
    pub user_nested_search: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_group_dn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    #[schema(required = false, default = false)]
    pub group_nested_search: bool,
}

/// Where one SCIM field's value comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMapping {
    /// The field's name, as `GET /api/fields` lists them.
    #[schema(schema_with = scim_field_names)]
    pub field_name: String,
    #[schema(required = false)]
    pub saas_field_info: SaasFieldInfo,
}

/// Where one attribute of a custom schema extension comes from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionMapping {
    /// `URN:attr`, `URN:attr.sub` or `URN:attr[type=kind].sub`.
    pub path: String,
    #[schema(required = false)]
    pub saas_field_info: SaasFieldInfo,
}

/// How a mapped value is read from the directory.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaasFieldInfo {
    /// LDAP attributes tried in order; the first one with a value wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attribute_names: Vec<String>,
    /// Used when none of the attributes has a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Extension attributes only: every value, as an array.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multi_valued: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub trim: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub character_case: model::CharacterCase,
    #[serde(skip_serializing_if = "is_default")]
    pub parser: model::ValueParser,
    /// An expression computing the value instead of the attributes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Sent when the user is created, never on updates.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
    /// Shown as ******** in plans.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
}

/// A source directory: an LDIF file, or an LDAP server.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataStore {
    /// Unique. A PUT takes it from the path.
    pub name: String,
    #[serde(rename = "type")]
    pub store_type: model::DataStoreType,
    /// The LDIF file, for type `ldif`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The connection settings, for type `ldap`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapSettings>,
    /// The secrets held (`bindPassword`), which a document that leaves them out keeps.
    #[schema(read_only)]
    pub stored_secrets: Vec<String>,
}

/// How to reach and bind to an LDAP server. `bindPassword` is write-only, as the target's
/// secrets are.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapSettings {
    #[schema(required = false)]
    pub ldap_type: model::LdapType,
    /// `host`, `host:port` or an `ldap://` / `ldaps://` URL, tried in order.
    pub hostnames: Vec<String>,
    #[schema(required = false, default = false)]
    pub use_ldaps: bool,
    #[schema(required = false, default = false)]
    pub use_start_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    #[schema(required = false)]
    pub bind_method: model::BindMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_dn: Option<String>,
    /// A secret: write-only unless an `env:` or `file:` reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Seconds to wait for a connection.
    #[schema(required = false, default = 10, minimum = 1)]
    pub connection_timeout: u64,
    /// Seconds to wait for any answer of the server.
    #[schema(required = false, default = 60, minimum = 1)]
    pub read_timeout: u64,
    /// Entries per page of a paged search; default from the LDAP type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The names of the SCIM fields, as an enumeration.
fn scim_field_names() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ScimField::ALL.iter().map(|field| field.name())))
}

/// A secret as shown: a reference as it is, a literal one left out and named in `held`.
fn shown(name: &str, secret: &Option<Secret>, held: &mut Vec<String>) -> Option<String> {
    match secret {
        Some(secret) if secret.is_literal() => {
            held.push(camel_case(name));
            None
        }
        Some(reference) => Some(reference.to_config_text()),
        None => None,
    }
}

impl From<&model::Connection> for Connection {
    fn from(connection: &model::Connection) -> Connection {
        let model::Connection {
            name,
            active,
            target,
            options,
            guard,
            channels,
        } = connection;
        Connection {
            name: name.clone(),
            active: *active,
            outbound_provision: OutboundProvision {
                provision_type: ProvisionType::Scim,
                target_settings: target.into(),
                provisioning_options: options.into(),
                guard: guard.into(),
                channels: channels.iter().map(Channel::from).collect(),
            },
        }
    }
}

impl From<&model::TargetSettings> for TargetSettings {
    fn from(target: &model::TargetSettings) -> TargetSettings {
        let model::TargetSettings {
            scim_url,
            scim_version,
            users_path,
            groups_path,
            authentication,
            basic_username,
            basic_password,
            access_token,
            token_endpoint,
            client_id,
            client_secret,
            scopes,
            client_authentication,
            authorization_header_type,
            ca_certificate,
            client_certificate,
            client_key,
            unique_user_identifier,
            filter_expression,
            results_per_page,
            group_membership_handling,
            group_member_chunk_size,
            use_bulk,
            requests_per_second,
            max_retries,
        } = target;
        // In the order of the model's secret fields, as the list has always been.
        let mut stored_secrets = Vec::new();
        let basic_password = shown("basic_password", basic_password, &mut stored_secrets);
        let access_token = shown("access_token", access_token, &mut stored_secrets);
        let client_secret = shown("client_secret", client_secret, &mut stored_secrets);
        TargetSettings {
            scim_url: scim_url.clone(),
            scim_version: *scim_version,
            users_path: users_path.clone(),
            groups_path: groups_path.clone(),
            authentication: *authentication,
            basic_username: basic_username.clone(),
            basic_password,
            access_token,
            token_endpoint: token_endpoint.clone(),
            client_id: client_id.clone(),
            client_secret,
            scopes: scopes.clone(),
            client_authentication: *client_authentication,
            authorization_header_type: authorization_header_type.clone(),
            ca_certificate: ca_certificate.clone(),
            client_certificate: client_certificate.clone(),
            client_key: client_key.clone(),
            unique_user_identifier: *unique_user_identifier,
            filter_expression: filter_expression.clone(),
            results_per_page: *results_per_page,
            group_membership_handling: *group_membership_handling,
            group_member_chunk_size: *group_member_chunk_size,
            use_bulk: *use_bulk,
            requests_per_second: *requests_per_second,
            max_retries: *max_retries,
            stored_secrets,
        }
    }
}

impl From<&model::ProvisioningOptions> for ProvisioningOptions {
    fn from(options: &model::ProvisioningOptions) -> ProvisioningOptions {
        let model::ProvisioningOptions {
            user_create,
            user_update,
            user_disable_delete,
            provision_disabled_users,
            remove_user_action,
        } = *options;
        ProvisioningOptions {
            user_create,
            user_update,
            user_disable_delete,
            provision_disabled_users,
            remove_user_action,
        }
    }
}

impl From<&model::GuardSettings> for Guard {
    fn from(guard: &model::GuardSettings) -> Guard {
        let model::GuardSettings {
            enabled,
            max_deprovisions,
            max_deprovision_percent,
            percent_from,
            max_blanked,
            max_blanked_percent,
            max_group_deletes,
            max_group_delete_percent,
            max_member_removals,
            max_member_removal_percent,
        } = *guard;
        Guard {
            enabled,
            max_deprovisions,
            max_deprovision_percent,
            percent_from,
            max_blanked,
            max_blanked_percent,
            max_group_deletes,
            max_group_delete_percent,
            max_member_removals,
            max_member_removal_percent,
        }
    }
}

impl From<&model::Channel> for Channel {
    fn from(channel: &model::Channel) -> Channel {
        let model::Channel {
            name,
            active,
            data_store,
            timeout,
            max_threads,
            synchronization_frequency,
            live_poll_interval,
            source_settings,
            source_location,
            attribute_mapping,
            extension_mapping,
        } = channel;
        Channel {
            name: name.clone(),
            active: *active,
            timeout: *timeout,
            max_threads: *max_threads,
            synchronization_frequency: *synchronization_frequency,
            live_poll_interval: *live_poll_interval,
            channel_source: ChannelSource {
                data_source: DataSource {
                    id: data_store.clone(),
                },
                source_settings: source_settings.into(),
                source_location: source_location.into(),
            },
            attribute_mapping: attribute_mapping
                .iter()
                .map(|(field, info)| FieldMapping {
                    field_name: field.name().to_owned(),
                    saas_field_info: info.into(),
                })
                .collect(),
            extension_mapping: extension_mapping
                .iter()
                .map(|(path, info)| ExtensionMapping {
                    path: path.clone(),
                    saas_field_info: info.into(),
                })
                .collect(),
        }
    }
}

impl From<&model::SourceSettings> for SourceSettings {
    fn from(settings: &model::SourceSettings) -> SourceSettings {
        let model::SourceSettings {
            entry_guid_attribute,
            guid_binary,
            use_dn_when_guid_missing,
            user_object_class,
            group_object_class,
            group_member_attribute,
            member_of_group_attribute,
            group_name_source,
            changed_users_algorithm,
            usn_attribute,
            timestamp_attribute,
            account_status_algorithm,
            account_status_attribute,
            flag_comparison_value,
            flag_comparison_status,
            default_status,
            full_reconciliation_hours,
            delete_sweep_minutes,
        } = settings.clone();
        SourceSettings {
            entry_guid_attribute,
            guid_binary,
            use_dn_when_guid_missing,
            user_object_class,
            group_object_class,
            group_member_attribute,
            member_of_group_attribute,
            group_name_source,
            changed_users_algorithm,
            usn_attribute,
            timestamp_attribute,
            account_status_algorithm,
            account_status_attribute,
            flag_comparison_value,
            flag_comparison_status,
            default_status,
            full_reconciliation_hours,
            delete_sweep_minutes,
        }
    }
}

impl From<&model::SourceLocation> for SourceLocation {
    fn from(location: &model::SourceLocation) -> SourceLocation {
        let model::SourceLocation {
            base_dn,
            group_base_dn,
            user_group_dn,
            user_filter,
            user_nested_search,
            group_group_dn,
            group_filter,
            group_nested_search,
        } = location.clone();
        SourceLocation {
            base_dn,
            group_base_dn,
            user_group_dn,
            user_filter,
            user_nested_search,
            group_group_dn,
            group_filter,
            group_nested_search,
        }
    }
}

impl From<&model::FieldMapping> for SaasFieldInfo {
    fn from(mapping: &model::FieldMapping) -> SaasFieldInfo {
        let model::FieldMapping {
            attributes,
            default_value,
            multi_valued,
            trim,
            character_case,
            parser,
            expression,
            create_only,
            masked,
        } = mapping.clone();
        SaasFieldInfo {
            attribute_names: attributes,
            default_value,
            multi_valued,
            trim,
            character_case,
            parser,
            expression,
            create_only,
            masked,
        }
    }
}

impl From<&model::DataStore> for DataStore {
    fn from(data_store: &model::DataStore) -> DataStore {
        let model::DataStore { name, kind } = data_store;
        let mut stored_secrets = Vec::new();
        let (path, ldap) = match kind {
            model::DataStoreKind::Ldif { path } => (Some(path.clone()), None),
            model::DataStoreKind::Ldap(ldap) => {
                (None, Some(LdapSettings::shown(ldap, &mut stored_secrets)))
            }
        };
        DataStore {
            name: name.clone(),
            store_type: data_store.store_type(),
            path,
            ldap,
            stored_secrets,
        }
    }
}

impl LdapSettings {
    fn shown(ldap: &model::LdapSettings, held: &mut Vec<String>) -> LdapSettings {
        let model::LdapSettings {
            ldap_type,
            hostnames,
            use_ldaps,
            use_start_tls,
            ca_certificate,
            bind_method,
            user_dn,
            bind_password,
            client_certificate,
            client_key,
            connection_timeout,
            read_timeout,
            page_size,
        } = ldap;
        LdapSettings {
            ldap_type: *ldap_type,
            hostnames: hostnames.clone(),
            use_ldaps: *use_ldaps,
            use_start_tls: *use_start_tls,
            ca_certificate: ca_certificate.clone(),
            bind_method: *bind_method,
            user_dn: user_dn.clone(),
            bind_password: shown("bind_password", bind_password, held),
            client_certificate: client_certificate.clone(),
            client_key: client_key.clone(),
            connection_timeout: *connection_timeout,
            read_timeout: *read_timeout,
            page_size: *page_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use scimbridge_model::ConfigFile;
    use serde_json::{Value, json};

    use super::*;
    use crate::admin::shape::{camel_json, connection_from_api, data_store_from_api};

    /// Every setting there is, none at its default, and a second channel with only the
    /// required ones.
    const EVERY_SETTING: &str = r#"
version = 1
[[data_store]]
name = "corp"
type = "ldap"
[data_store.ldap]
ldap_type = "active-directory"
hostnames = ["ldaps://dc1.example.com", "dc2.example.com:636"]
use_ldaps = true
use_start_tls = true
ca_certificate = "/etc/ca.pem"
bind_method = "sasl-external"
user_dn = "cn=svc,dc=example,dc=com"
bind_password = "s3cret-bind"
client_certificate = "/etc/client.pem"
client_key = "/etc/client.key"
connection_timeout = 5
read_timeout = 30
page_size = 200
[[data_store]]
name = "file"
type = "ldif"
path = "/var/lib/directory.ldif"

[[connection]]
name = "Slack"
active = true
[connection.target]
scim_url = "https://api.example.com/scim/v2"
scim_version = "1.1"
users_path = "/People"
groups_path = "/Teams"
authentication = "oauth2-client-credentials"
basic_username = "u"
basic_password = "env:BASIC_PASSWORD"
access_token = "s3cret-token"
token_endpoint = "https://auth.example.com/token"
client_id = "cid"
client_secret = "file:/run/client-secret"
scopes = "scim:read, scim:write"
client_authentication = "client_secret_post"
authorization_header_type = "Token"
ca_certificate = "/etc/ca.pem"
client_certificate = "/etc/c.pem"
client_key = "/etc/c.key"
unique_user_identifier = "workEmail"
filter_expression = "emails.value eq %s"
results_per_page = 50
group_membership_handling = "overwrite"
group_member_chunk_size = 25
use_bulk = false
requests_per_second = 2.5
max_retries = 5
[connection.options]
user_create = false
user_update = false
user_disable_delete = false
provision_disabled_users = true
remove_user_action = "delete"
[connection.guard]
enabled = false
max_deprovisions = 1
max_deprovision_percent = 2
percent_from = 3
max_blanked = 4
max_blanked_percent = 5
max_group_deletes = 6
max_group_delete_percent = 7
max_member_removals = 8
max_member_removal_percent = 9
[[connection.channel]]
name = "staff"
active = false
data_store = "corp"
timeout = 30
max_threads = 4
synchronization_frequency = 300
live_poll_interval = 0
[connection.channel.source_settings]
entry_guid_attribute = "objectGUID"
guid_binary = true
use_dn_when_guid_missing = true
user_object_class = "user"
group_object_class = "group"
group_member_attribute = "member"
member_of_group_attribute = "memberOf"
group_name_source = "dn"
changed_users_algorithm = "dirsync"
usn_attribute = "uSNChanged"
timestamp_attribute = "whenChanged"
account_status_algorithm = "flag"
account_status_attribute = "nsAccountLock"
flag_comparison_value = "true"
flag_comparison_status = false
default_status = false
full_reconciliation_hours = 12
delete_sweep_minutes = 30
[connection.channel.source_location]
base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
user_group_dn = "cn=staff,ou=groups,dc=example,dc=com"
user_filter = "(employeeType=staff)"
user_nested_search = true
group_group_dn = "cn=synced,ou=groups,dc=example,dc=com"
group_filter = "(cn=*)"
group_nested_search = true
[connection.channel.attribute_mapping]
userName = { attributes = ["sAMAccountName", "uid"], trim = true, character_case = "lower" }
managerDisplayName = { attributes = ["manager"], parser = "extract_cn_from_dn" }
displayName = { expression = "{{ givenName }} {{ sn }}", default_value = "Someone" }
password = { attributes = ["initialPassword"], create_only = true, masked = true }
[connection.channel.extension_mapping]
"urn:example:params:scim:schemas:extension:corp:2.0:User:badge_number" = { attributes = ["badge"], multi_valued = true }
[[connection.channel]]
name = "contractors"
data_store = "file"
[connection.channel.source_location]
base_dn = "ou=contractors,dc=example,dc=com"
[connection.channel.attribute_mapping]
userName = { attributes = ["uid"] }
"#;

    /// A connection as the API wrote it before its documents were typed: the model's serde form,
    /// reshaped and renamed to camelCase.
    fn untyped_connection(connection: &model::Connection) -> Value {
        let mut shown = connection.clone();
        let mut stored = Vec::new();
        for (name, secret) in shown.target.secret_fields_mut() {
            if secret.as_ref().is_some_and(|s| s.is_literal()) {
                *secret = None;
                stored.push(Value::String(camel_case(name)));
            }
        }
        let mut model = serde_json::to_value(&shown).unwrap();
        let mut field = |key: &str| {
            model
                .as_object_mut()
                .unwrap()
                .remove(key)
                .unwrap_or(Value::Null)
        };
        let channels: Vec<Value> = match field("channel") {
            Value::Array(channels) => channels.into_iter().map(untyped_channel).collect(),
            _ => Vec::new(),
        };
        let mut target = field("target");
        target
            .as_object_mut()
            .unwrap()
            .insert("stored_secrets".into(), Value::Array(stored));
        camel_json(json!({
            "name": field("name"),
            "active": field("active"),
            "outbound_provision": {
                "type": "SCIM",
                "target_settings": target,
                "provisioning_options": field("options"),
                "guard": field("guard"),
                "channels": channels,
            }
        }))
    }

    fn untyped_channel(mut channel: Value) -> Value {
        let fields = channel.as_object_mut().unwrap();
        let mapping = |value: Option<Value>, key: &str| -> Value {
            let Some(Value::Object(map)) = value else {
                return Value::Array(Vec::new());
            };
            Value::Array(
                map.into_iter()
                    .map(|(name, mut info)| {
                        let info = info.as_object_mut().unwrap();
                        if let Some(attributes) = info.remove("attributes") {
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
            "data_source": { "id": fields.remove("data_store").unwrap() },
            "source_settings": fields.remove("source_settings").unwrap(),
            "source_location": fields.remove("source_location").unwrap(),
        });
        fields.insert("channel_source".into(), source);
        fields.insert("attribute_mapping".into(), attribute_mapping);
        fields.insert("extension_mapping".into(), extension_mapping);
        channel
    }

    fn untyped_data_store(data_store: &model::DataStore) -> Value {
        let mut shown = data_store.clone();
        let mut stored = Vec::new();
        for (name, secret) in shown.secret_fields_mut() {
            if secret.as_ref().is_some_and(|s| s.is_literal()) {
                *secret = None;
                stored.push(Value::String(camel_case(name)));
            }
        }
        let mut model = serde_json::to_value(&shown).unwrap();
        model
            .as_object_mut()
            .unwrap()
            .insert("stored_secrets".into(), Value::Array(stored));
        camel_json(model)
    }

    #[test]
    fn typed_documents_write_exactly_what_the_untyped_ones_did() {
        let file = ConfigFile::from_toml(EVERY_SETTING).unwrap();
        for connection in &file.connections {
            let typed = serde_json::to_value(Connection::from(connection)).unwrap();
            assert_eq!(typed, untyped_connection(connection));
        }
        let minimal = ConfigFile::from_toml(
            r#"
version = 1
[[connection]]
name = "Bare"
[connection.target]
scim_url = "https://x.example.com"
"#,
        )
        .unwrap();
        let typed = serde_json::to_value(Connection::from(&minimal.connections[0])).unwrap();
        assert_eq!(typed, untyped_connection(&minimal.connections[0]));
        for data_store in &file.data_stores {
            let typed = serde_json::to_value(DataStore::from(data_store)).unwrap();
            assert_eq!(typed, untyped_data_store(data_store));
        }
    }

    #[test]
    fn a_document_read_back_is_the_same_configuration_but_its_literal_secrets() {
        let file = ConfigFile::from_toml(EVERY_SETTING).unwrap();
        let connection = &file.connections[0];
        let document = serde_json::to_value(Connection::from(connection)).unwrap();
        let text = document.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(
            document["outboundProvision"]["targetSettings"]["storedSecrets"],
            json!(["accessToken"])
        );
        // References are shown as they are: they name where the secret is, not what it is.
        assert_eq!(
            document["outboundProvision"]["targetSettings"]["clientSecret"],
            "file:/run/client-secret"
        );
        let mut expected = connection.clone();
        expected.target.access_token = None;
        assert_eq!(connection_from_api(document).unwrap(), expected);

        let data_store = &file.data_stores[0];
        let document = serde_json::to_value(DataStore::from(data_store)).unwrap();
        assert_eq!(document["storedSecrets"], json!(["bindPassword"]));
        assert!(!document.to_string().contains("s3cret"));
        let mut expected = data_store.clone();
        if let model::DataStoreKind::Ldap(ldap) = &mut expected.kind {
            ldap.bind_password = None;
        }
        assert_eq!(data_store_from_api(document).unwrap(), expected);
    }

    #[test]
    fn a_connection_reads_like_pingfederate() {
        let file = ConfigFile::from_toml(EVERY_SETTING).unwrap();
        let document = serde_json::to_value(Connection::from(&file.connections[0])).unwrap();
        let provision = &document["outboundProvision"];
        assert_eq!(provision["type"], "SCIM");
        assert_eq!(
            provision["targetSettings"]["scimUrl"],
            "https://api.example.com/scim/v2"
        );
        let channel = &provision["channels"][0];
        assert_eq!(channel["channelSource"]["dataSource"]["id"], "corp");
        assert_eq!(
            channel["channelSource"]["sourceLocation"]["baseDn"],
            "ou=people,dc=example,dc=com"
        );
        let password = channel["attributeMapping"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["fieldName"] == "password")
            .unwrap();
        assert_eq!(
            password["saasFieldInfo"],
            json!({"attributeNames": ["initialPassword"], "createOnly": true, "masked": true})
        );
        // Extension paths are values: they keep their spelling.
        assert_eq!(
            channel["extensionMapping"][0]["path"],
            "urn:example:params:scim:schemas:extension:corp:2.0:User:badge_number"
        );
    }
}
