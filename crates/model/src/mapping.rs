//! Attribute mapping: which SCIM fields a channel fills, and from which LDAP attributes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The SCIM fields a channel can map in this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScimField {
    #[serde(rename = "userName")]
    UserName,
    #[serde(rename = "externalId")]
    ExternalId,
    #[serde(rename = "givenName")]
    GivenName,
    #[serde(rename = "familyName")]
    FamilyName,
    #[serde(rename = "formattedName")]
    FormattedName,
    #[serde(rename = "displayName")]
    DisplayName,
    #[serde(rename = "workEmail")]
    WorkEmail,
    #[serde(rename = "title")]
    Title,
    #[serde(rename = "active")]
    Active,
}

impl ScimField {
    pub const ALL: [ScimField; 9] = [
        ScimField::UserName,
        ScimField::ExternalId,
        ScimField::GivenName,
        ScimField::FamilyName,
        ScimField::FormattedName,
        ScimField::DisplayName,
        ScimField::WorkEmail,
        ScimField::Title,
        ScimField::Active,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScimField::UserName => "userName",
            ScimField::ExternalId => "externalId",
            ScimField::GivenName => "givenName",
            ScimField::FamilyName => "familyName",
            ScimField::FormattedName => "formattedName",
            ScimField::DisplayName => "displayName",
            ScimField::WorkEmail => "workEmail",
            ScimField::Title => "title",
            ScimField::Active => "active",
        }
    }
}

impl fmt::Display for ScimField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Per SCIM field, where its value comes from.
pub type AttributeMapping = BTreeMap<ScimField, FieldMapping>;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// LDAP attributes tried in order; the first one with a value wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Used when none of the attributes has a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

/// Adds every problem of a channel's attribute mapping; `at` names the channel.
pub(crate) fn validate_attribute_mapping(
    at: &str,
    mapping: &AttributeMapping,
    problems: &mut Vec<String>,
) {
    if !mapping.contains_key(&ScimField::UserName) {
        problems.push(format!(
            "{at}: attribute_mapping must map userName (required)"
        ));
    }
    for (field, field_mapping) in mapping {
        if field_mapping.attributes.is_empty() && field_mapping.default_value.is_none() {
            problems.push(format!(
                "{at}: attribute_mapping.{field} needs attributes or a default_value"
            ));
        }
    }
}
