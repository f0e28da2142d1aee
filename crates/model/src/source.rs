//! The source side of the configuration: LDAP data store settings, LDAP type presets, and a
//! channel's source settings and source location, with PingFederate's names.
//!
//! Settings a channel leaves out take the default of its data store's LDAP type ("preset"), so
//! that an Active Directory channel needs no more than a base DN. [`EffectiveSourceSettings`] is
//! what the engine works with: every preset default filled in.

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The kind of directory server, which fills the defaults of the source settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum LdapType {
    ActiveDirectory,
    PingDirectory,
    #[serde(rename = "openldap")]
    OpenLdap,
    #[serde(rename = "389-directory-server")]
    Ds389,
    #[default]
    Generic,
}

impl LdapType {
    pub fn name(self) -> &'static str {
        match self {
            LdapType::ActiveDirectory => "active-directory",
            LdapType::PingDirectory => "ping-directory",
            LdapType::OpenLdap => "openldap",
            LdapType::Ds389 => "389-directory-server",
            LdapType::Generic => "generic",
        }
    }

    /// Entries per page: Active Directory's MaxPageSize is 1,000.
    pub fn default_page_size(self) -> u32 {
        match self {
            LdapType::ActiveDirectory => 1000,
            _ => 500,
        }
    }
}

/// How the engine binds to the directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum BindMethod {
    /// `user_dn` and `bind_password`.
    #[default]
    Simple,
    Anonymous,
    /// SASL EXTERNAL: the TLS client certificate (`client_certificate`, `client_key`) is the
    /// identity.
    SaslExternal,
}

/// The LDAP settings of a data store of type `ldap`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    #[serde(default)]
    pub ldap_type: LdapType,
    /// `host`, `host:port` or an `ldap://` / `ldaps://` URL; tried in order until one answers.
    pub hostnames: Vec<String>,
    /// Connect with LDAPS (port 636 unless given) to hostnames without a scheme.
    #[serde(default)]
    pub use_ldaps: bool,
    /// Upgrade plain connections with StartTLS.
    #[serde(default)]
    pub use_start_tls: bool,
    /// PEM file of the certificate authorities trusted for TLS, instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    #[serde(default)]
    pub bind_method: BindMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<Secret>,
    /// PEM client certificate and key, for SASL EXTERNAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connection_timeout")]
    pub connection_timeout: u64,
    /// Seconds to wait for any answer of the server.
    #[serde(default = "default_read_timeout")]
    pub read_timeout: u64,
    /// Entries per page of a paged search; default from the LDAP type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
}

fn default_connection_timeout() -> u64 {
    10
}

fn default_read_timeout() -> u64 {
    60
}

impl LdapSettings {
    pub fn new(hostnames: Vec<String>) -> LdapSettings {
        LdapSettings {
            ldap_type: LdapType::default(),
            hostnames,
            use_ldaps: false,
            use_start_tls: false,
            ca_certificate: None,
            bind_method: BindMethod::default(),
            user_dn: None,
            bind_password: None,
            client_certificate: None,
            client_key: None,
            connection_timeout: default_connection_timeout(),
            read_timeout: default_read_timeout(),
            page_size: None,
        }
    }

    /// The hostnames as URLs.
    pub fn urls(&self) -> Vec<String> {
        self.hostnames
            .iter()
            .map(|host| {
                let host = host.trim();
                if host.starts_with("ldap://") || host.starts_with("ldaps://") {
                    host.to_owned()
                } else if self.use_ldaps {
                    format!("ldaps://{host}")
                } else {
                    format!("ldap://{host}")
                }
            })
            .collect()
    }

    pub fn page_size(&self) -> u32 {
        self.page_size
            .unwrap_or_else(|| self.ldap_type.default_page_size())
    }

    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<String>) {
        if self.hostnames.iter().all(|h| h.trim().is_empty()) {
            problems.push(format!("{at}: type ldap needs at least one hostname"));
        }
        for host in &self.hostnames {
            if host.contains("://") && !host.starts_with("ldap://") && !host.starts_with("ldaps://")
            {
                problems.push(format!(
                    "{at}: hostname \"{host}\" must be host[:port] or an ldap:// or ldaps:// URL"
                ));
            }
        }
        match self.bind_method {
            BindMethod::Simple => {
                if self.user_dn.as_deref().is_none_or(|d| d.trim().is_empty()) {
                    problems.push(format!(
                        "{at}: bind_method = \"simple\" needs user_dn (or bind_method = \"anonymous\")"
                    ));
                }
                if self.bind_password.is_none() {
                    problems.push(format!(
                        "{at}: bind_method = \"simple\" needs bind_password"
                    ));
                }
            }
            BindMethod::Anonymous => {}
            BindMethod::SaslExternal => {
                if self.client_certificate.is_none() || self.client_key.is_none() {
                    problems.push(format!(
                        "{at}: bind_method = \"sasl-external\" needs client_certificate and client_key"
                    ));
                }
            }
        }
        if self.client_certificate.is_some() != self.client_key.is_some() {
            problems.push(format!(
                "{at}: client_certificate and client_key go together"
            ));
        }
        if self.connection_timeout == 0 || self.read_timeout == 0 {
            problems.push(format!(
                "{at}: connection_timeout and read_timeout must be at least 1 second"
            ));
        }
        if self.page_size == Some(0) {
            problems.push(format!("{at}: page_size must be at least 1"));
        }
    }
}

/// How changed entries are found ("Changed Users Algorithm").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum ChangeDetection {
    /// The best the server offers: content synchronization, else DirSync (Active Directory),
    /// else the USN, else timestamps.
    Auto,
    /// RFC 4533 content synchronization (syncrepl refreshOnly) with a stored cookie.
    ContentSync,
    /// Active Directory's DirSync control with a stored cookie.
    #[serde(rename = "dirsync")]
    DirSync,
    /// `uSNChanged` greater than the last one seen.
    ActiveDirectoryUsn,
    /// The timestamp attribute newer than the last one seen, with a NOT filter.
    Timestamp,
    /// The timestamp attribute at or after the last one seen, without negation.
    TimestampNoNegation,
    /// Read every entry every cycle.
    FullScan,
}

impl ChangeDetection {
    pub const ALL: [ChangeDetection; 7] = [
        ChangeDetection::Auto,
        ChangeDetection::ContentSync,
        ChangeDetection::DirSync,
        ChangeDetection::ActiveDirectoryUsn,
        ChangeDetection::Timestamp,
        ChangeDetection::TimestampNoNegation,
        ChangeDetection::FullScan,
    ];

    /// The method of a [`name`](Self::name).
    pub fn parse(name: &str) -> Option<ChangeDetection> {
        Self::ALL.into_iter().find(|method| method.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            ChangeDetection::Auto => "auto",
            ChangeDetection::ContentSync => "content-sync",
            ChangeDetection::DirSync => "dirsync",
            ChangeDetection::ActiveDirectoryUsn => "active-directory-usn",
            ChangeDetection::Timestamp => "timestamp",
            ChangeDetection::TimestampNoNegation => "timestamp-no-negation",
            ChangeDetection::FullScan => "full-scan",
        }
    }
}

impl std::str::FromStr for ChangeDetection {
    type Err = crate::words::UnknownWord;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ChangeDetection::parse(name).ok_or_else(|| crate::words::UnknownWord {
            kind: "ChangeDetection",
            text: name.to_owned(),
            expected: ChangeDetection::ALL.iter().map(|m| m.name()).collect(),
        })
    }
}

/// How an entry's enabled or disabled state is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum AccountStatusAlgorithm {
    /// No status attribute: users are active unless the `active` field is mapped.
    None,
    /// Active Directory: disabled when bit 0x2 of `userAccountControl` is set.
    ActiveDirectory,
    /// Disabled or enabled when the status attribute equals `flag_comparison_value`.
    Flag,
}

/// Which LDAP attributes identify entries, which entries are users and groups, and how changes
/// and account status are read. Every field left out takes the LDAP type's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSettings {
    /// The attribute holding each entry's immutable GUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_guid_attribute: Option<String>,
    /// Whether the GUID is binary (Active Directory `objectGUID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guid_binary: Option<bool>,
    /// Key entries without the GUID attribute by their DN instead of failing them. A DN changes
    /// on rename, so a renamed entry then looks like a leaver plus a joiner: off by default.
    pub use_dn_when_guid_missing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_object_class: Option<String>,
    /// Entries with this object class are groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_object_class: Option<String>,
    /// The attribute of a group entry that lists its members' DNs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_member_attribute: Option<String>,
    /// The attribute of a user entry that lists its groups' DNs (informational: membership is
    /// read from the group entries, which every server keeps up to date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_of_group_attribute: Option<String>,
    pub group_name_source: crate::config::GroupNameSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_users_algorithm: Option<ChangeDetection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usn_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status_algorithm: Option<AccountStatusAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_status_attribute: Option<String>,
    /// The flag algorithm compares the status attribute with this value (case-insensitive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_comparison_value: Option<String>,
    /// The state a match means: true = active, false = disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag_comparison_status: Option<bool>,
    /// The state of an entry without the status attribute: true = active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_status: Option<bool>,
    /// Hours between full reconciliations of an incremental channel: every entry is read and
    /// compared, which catches anything the incremental path cannot see. 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_reconciliation_hours: Option<u32>,
    /// Minutes between sweeps for deletes: where the change detection cannot see a delete
    /// (timestamps, the USN without a tombstone, a GUID attribute the server does not name
    /// deletes by), the GUIDs in scope are read and compared with the known users. 0 = every
    /// cycle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_sweep_minutes: Option<u32>,
}

/// Minutes between sweeps for deletes by default: a delete the change detection cannot see
/// reaches the target within this; a sweep reads every GUID in scope (16 s at a million users).
pub const DEFAULT_DELETE_SWEEP_MINUTES: u32 = 15;

/// The account status rule after the preset is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AccountStatus {
    None,
    ActiveDirectory {
        attribute: String,
    },
    Flag {
        attribute: String,
        value: String,
        /// The state a match means (true = active).
        match_status: bool,
        default_status: bool,
    },
}

/// Source settings with every preset default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EffectiveSourceSettings {
    pub entry_guid_attribute: String,
    pub guid_binary: bool,
    pub use_dn_when_guid_missing: bool,
    pub user_object_class: String,
    pub group_object_class: String,
    pub group_member_attribute: String,
    pub member_of_group_attribute: String,
    pub group_name_source: crate::config::GroupNameSource,
    pub changed_users_algorithm: ChangeDetection,
    pub usn_attribute: String,
    pub timestamp_attribute: String,
    pub account_status: AccountStatus,
    pub full_reconciliation_hours: u32,
    /// Not part of the channel's fingerprint: when deletes are looked for changes nothing that
    /// was read, so a new value needs no full read.
    #[serde(skip)]
    pub delete_sweep_minutes: u32,
}

impl SourceSettings {
    /// Fills what the channel left out with the LDAP type's defaults.
    pub fn effective(&self, ldap_type: LdapType) -> EffectiveSourceSettings {
        let ad = ldap_type == LdapType::ActiveDirectory;
        let text = |value: &Option<String>, default: &str| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
                .to_owned()
        };
        let (guid, group_class, member, member_of) = match ldap_type {
            LdapType::ActiveDirectory => ("objectGUID", "group", "member", "memberOf"),
            LdapType::PingDirectory => (
                "entryUUID",
                "groupOfUniqueNames",
                "uniqueMember",
                "isMemberOf",
            ),
            LdapType::Ds389 => ("nsUniqueId", "groupOfNames", "member", "memberOf"),
            LdapType::OpenLdap | LdapType::Generic => {
                ("entryUUID", "groupOfNames", "member", "memberOf")
            }
        };
        let default_algorithm = match ldap_type {
            LdapType::Generic => ChangeDetection::Timestamp,
            _ => ChangeDetection::Auto,
        };
        let (status_algorithm, status_attribute, flag_value, flag_status) = match ldap_type {
            LdapType::ActiveDirectory => (
                AccountStatusAlgorithm::ActiveDirectory,
                "userAccountControl",
                "",
                true,
            ),
            LdapType::PingDirectory => (
                AccountStatusAlgorithm::Flag,
                "ds-pwp-account-disabled",
                "true",
                false,
            ),
            LdapType::Ds389 => (AccountStatusAlgorithm::Flag, "nsAccountLock", "true", false),
            LdapType::OpenLdap | LdapType::Generic => (AccountStatusAlgorithm::None, "", "", true),
        };
        let algorithm = self.account_status_algorithm.unwrap_or(status_algorithm);
        let attribute = text(&self.account_status_attribute, status_attribute);
        let account_status = match algorithm {
            AccountStatusAlgorithm::None => AccountStatus::None,
            AccountStatusAlgorithm::ActiveDirectory => AccountStatus::ActiveDirectory {
                attribute: text(&self.account_status_attribute, "userAccountControl"),
            },
            AccountStatusAlgorithm::Flag => AccountStatus::Flag {
                attribute,
                value: text(&self.flag_comparison_value, flag_value),
                match_status: self.flag_comparison_status.unwrap_or(flag_status),
                default_status: self.default_status.unwrap_or(true),
            },
        };
        EffectiveSourceSettings {
            entry_guid_attribute: text(&self.entry_guid_attribute, guid),
            guid_binary: self.guid_binary.unwrap_or(ad),
            use_dn_when_guid_missing: self.use_dn_when_guid_missing,
            user_object_class: text(
                &self.user_object_class,
                if ad { "user" } else { "inetOrgPerson" },
            ),
            group_object_class: text(&self.group_object_class, group_class),
            group_member_attribute: text(&self.group_member_attribute, member),
            member_of_group_attribute: text(&self.member_of_group_attribute, member_of),
            group_name_source: self.group_name_source,
            changed_users_algorithm: self.changed_users_algorithm.unwrap_or(default_algorithm),
            usn_attribute: text(&self.usn_attribute, "uSNChanged"),
            timestamp_attribute: text(
                &self.timestamp_attribute,
                if ad { "whenChanged" } else { "modifyTimestamp" },
            ),
            account_status,
            full_reconciliation_hours: self.full_reconciliation_hours.unwrap_or(24),
            delete_sweep_minutes: self
                .delete_sweep_minutes
                .unwrap_or(DEFAULT_DELETE_SWEEP_MINUTES),
        }
    }

    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<String>) {
        let fields = [
            ("entry_guid_attribute", &self.entry_guid_attribute),
            ("user_object_class", &self.user_object_class),
            ("group_object_class", &self.group_object_class),
            ("group_member_attribute", &self.group_member_attribute),
            ("usn_attribute", &self.usn_attribute),
            ("timestamp_attribute", &self.timestamp_attribute),
        ];
        for (key, value) in fields {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                problems.push(format!(
                    "{at}: source_settings.{key} is empty; leave it out to use the LDAP type's default"
                ));
            }
        }
        if self.account_status_algorithm == Some(AccountStatusAlgorithm::Flag)
            && self
                .flag_comparison_value
                .as_deref()
                .is_none_or(|v| v.trim().is_empty())
        {
            problems.push(format!(
                "{at}: account_status_algorithm = \"flag\" needs flag_comparison_value"
            ));
        }
        if self.account_status_algorithm == Some(AccountStatusAlgorithm::Flag)
            && self
                .account_status_attribute
                .as_deref()
                .is_none_or(|v| v.trim().is_empty())
        {
            problems.push(format!(
                "{at}: account_status_algorithm = \"flag\" needs account_status_attribute"
            ));
        }
    }
}

/// Where the channel's users and groups are, and which of them are in scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceLocation {
    /// Only entries at or below this DN are read.
    pub base_dn: String,
    /// Groups at or below this DN are provisioned, with their members that are users of the
    /// channel; without it, no group is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base_dn: Option<String>,
    /// Only members of this group are users of the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_group_dn: Option<String>,
    /// Only entries matching this LDAP filter are users of the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    /// With `user_group_dn`: members of nested groups count too.
    #[serde(default)]
    pub user_nested_search: bool,
    /// Only members of this group are provisioned groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_group_dn: Option<String>,
    /// Only group entries matching this LDAP filter are provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// With `group_group_dn`: groups nested deeper count too.
    #[serde(default)]
    pub group_nested_search: bool,
}

impl SourceLocation {
    pub fn new(base_dn: impl Into<String>) -> SourceLocation {
        SourceLocation {
            base_dn: base_dn.into(),
            group_base_dn: None,
            user_group_dn: None,
            user_filter: None,
            user_nested_search: false,
            group_group_dn: None,
            group_filter: None,
            group_nested_search: false,
        }
    }

    pub(crate) fn validate(&self, at: &str, problems: &mut Vec<String>) {
        if self.base_dn.trim().is_empty() {
            problems.push(format!("{at}: source_location.base_dn is empty"));
        }
        if self
            .group_base_dn
            .as_deref()
            .is_some_and(|dn| dn.trim().is_empty())
        {
            problems.push(format!(
                "{at}: source_location.group_base_dn is empty; leave it out to provision no groups"
            ));
        }
        for (key, filter) in [
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
        ] {
            if let Some(filter) = filter
                && let Err(reason) = check_filter_syntax(filter)
            {
                problems.push(format!(
                    "{at}: source_location.{key} \"{filter}\" is not an LDAP filter: {reason}"
                ));
            }
        }
    }
}

/// A light syntax check of an LDAP filter: balanced parentheses around every component.
fn check_filter_syntax(filter: &str) -> Result<(), String> {
    let filter = filter.trim();
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err("it must be enclosed in parentheses".into());
    }
    let mut depth = 0i32;
    for (position, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ')' at position {}", position + 1));
                }
                if depth == 0 && position + 1 != filter.len() {
                    return Err(format!(
                        "text after the filter ends at position {}",
                        position + 1
                    ));
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    if filter.contains("()") {
        return Err("an empty component \"()\"".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_fill_what_the_channel_leaves_out() {
        let settings = SourceSettings::default();
        let ad = settings.effective(LdapType::ActiveDirectory);
        assert_eq!(ad.entry_guid_attribute, "objectGUID");
        assert!(ad.guid_binary);
        assert_eq!(ad.user_object_class, "user");
        assert_eq!(ad.timestamp_attribute, "whenChanged");
        assert_eq!(
            ad.account_status,
            AccountStatus::ActiveDirectory {
                attribute: "userAccountControl".into()
            }
        );
        let ping = settings.effective(LdapType::PingDirectory);
        assert_eq!(
            (
                ping.group_object_class.as_str(),
                ping.group_member_attribute.as_str()
            ),
            ("groupOfUniqueNames", "uniqueMember")
        );
        let ds = settings.effective(LdapType::Ds389);
        assert_eq!(ds.entry_guid_attribute, "nsUniqueId");
        assert!(
            matches!(ds.account_status, AccountStatus::Flag { ref attribute, match_status: false, .. } if attribute == "nsAccountLock")
        );
        let generic = settings.effective(LdapType::Generic);
        assert_eq!(generic.changed_users_algorithm, ChangeDetection::Timestamp);
        assert_eq!(generic.account_status, AccountStatus::None);

        let mine = SourceSettings {
            entry_guid_attribute: Some("employeeId".into()),
            account_status_algorithm: Some(AccountStatusAlgorithm::Flag),
            account_status_attribute: Some("employeeStatus".into()),
            flag_comparison_value: Some("terminated".into()),
            flag_comparison_status: Some(false),
            ..SourceSettings::default()
        };
        let effective = mine.effective(LdapType::OpenLdap);
        assert_eq!(effective.entry_guid_attribute, "employeeId");
        assert_eq!(
            effective.account_status,
            AccountStatus::Flag {
                attribute: "employeeStatus".into(),
                value: "terminated".into(),
                match_status: false,
                default_status: true
            }
        );
    }

    #[test]
    fn hostnames_become_urls() {
        let mut settings = LdapSettings::new(vec![
            "dc1.example.com".into(),
            "dc2.example.com:3269".into(),
            "ldap://dc3.example.com:389".into(),
        ]);
        assert_eq!(
            settings.urls(),
            [
                "ldap://dc1.example.com",
                "ldap://dc2.example.com:3269",
                "ldap://dc3.example.com:389"
            ]
        );
        settings.use_ldaps = true;
        assert_eq!(settings.urls()[0], "ldaps://dc1.example.com");
    }

    #[test]
    fn filters_are_checked_for_balance() {
        assert!(check_filter_syntax("(&(objectClass=user)(!(cn=x)))").is_ok());
        assert!(check_filter_syntax("objectClass=user").is_err());
        assert!(check_filter_syntax("(&(a=b)").is_err());
        assert!(check_filter_syntax("(a=b))(").is_err());
        assert!(check_filter_syntax("(&())").is_err());
    }
}
