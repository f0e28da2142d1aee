//! Attribute mapping: which SCIM fields a channel fills, and from which LDAP attributes.
//!
//! The fields are PingFederate's flat names (`workEmail`, `homeCity`, `costCenter`…), each
//! writing one place of the SCIM 2.0 User. Attributes of custom schema extensions are mapped
//! by their full path in a separate table (`extension_mapping`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a field's value goes in the SCIM User.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldTarget {
    /// A top-level attribute (`userName`, `title`…).
    Simple(&'static str),
    /// A sub-attribute of `name`.
    Name(&'static str),
    /// A sub-attribute of the value of a given `type` of a multi-valued attribute:
    /// `emails[type eq "work"].value`, `addresses[type eq "home"].locality`.
    Typed {
        attribute: &'static str,
        kind: &'static str,
        sub: &'static str,
    },
    /// An attribute of the enterprise extension.
    Enterprise(&'static str),
    /// A sub-attribute of the enterprise `manager`.
    Manager(&'static str),
    /// `active`, read as a boolean.
    Active,
}

impl FieldTarget {
    /// The SCIM path it writes, for documentation and screens.
    pub fn path(self) -> String {
        match self {
            FieldTarget::Simple(name) => name.to_owned(),
            FieldTarget::Name(sub) => format!("name.{sub}"),
            FieldTarget::Typed {
                attribute,
                kind,
                sub,
            } => format!("{attribute}[type eq \"{kind}\"].{sub}"),
            FieldTarget::Enterprise(name) => format!("{ENTERPRISE}:{name}"),
            FieldTarget::Manager(sub) => format!("{ENTERPRISE}:manager.{sub}"),
            FieldTarget::Active => "active".into(),
        }
    }

    /// Whether the SCIM attribute written is multi-valued.
    pub fn multi_valued(self) -> bool {
        matches!(self, FieldTarget::Typed { .. })
    }
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

macro_rules! scim_fields {
    ($($variant:ident = $name:literal, $label:literal, $target:expr;)*) => {
        /// The SCIM fields a channel can map.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ScimField {
            $($variant),*
        }

        impl ScimField {
            /// Every field, in catalogue order.
            pub const ALL: &'static [ScimField] = &[$(ScimField::$variant),*];

            /// The name used in configuration files (PingFederate's field name).
            pub fn name(self) -> &'static str {
                match self {
                    $(ScimField::$variant => $name),*
                }
            }

            /// A short label for screens.
            pub fn label(self) -> &'static str {
                match self {
                    $(ScimField::$variant => $label),*
                }
            }

            pub fn target(self) -> FieldTarget {
                match self {
                    $(ScimField::$variant => $target),*
                }
            }
        }
    };
}

const fn typed(attribute: &'static str, kind: &'static str, sub: &'static str) -> FieldTarget {
    FieldTarget::Typed {
        attribute,
        kind,
        sub,
    }
}

scim_fields! {
    UserName = "userName", "User name", FieldTarget::Simple("userName");
    ExternalId = "externalId", "External id", FieldTarget::Simple("externalId");
    GivenName = "givenName", "Given name", FieldTarget::Name("givenName");
    FamilyName = "familyName", "Family name", FieldTarget::Name("familyName");
    MiddleName = "middleName", "Middle name", FieldTarget::Name("middleName");
    HonorificPrefix = "honorificPrefix", "Honorific prefix", FieldTarget::Name("honorificPrefix");
    HonorificSuffix = "honorificSuffix", "Honorific suffix", FieldTarget::Name("honorificSuffix");
    FormattedName = "formattedName", "Formatted name", FieldTarget::Name("formatted");
    DisplayName = "displayName", "Display name", FieldTarget::Simple("displayName");
    NickName = "nickName", "Nick name", FieldTarget::Simple("nickName");
    ProfileUrl = "profileUrl", "Profile URL", FieldTarget::Simple("profileUrl");
    Title = "title", "Title", FieldTarget::Simple("title");
    UserType = "userType", "User type", FieldTarget::Simple("userType");
    PreferredLanguage = "preferredLanguage", "Preferred language", FieldTarget::Simple("preferredLanguage");
    Locale = "locale", "Locale", FieldTarget::Simple("locale");
    Timezone = "timezone", "Time zone", FieldTarget::Simple("timezone");
    Password = "password", "Password", FieldTarget::Simple("password");
    Active = "active", "Active", FieldTarget::Active;
    WorkEmail = "workEmail", "Work email", typed("emails", "work", "value");
    HomeEmail = "homeEmail", "Home email", typed("emails", "home", "value");
    OtherEmail = "otherEmail", "Other email", typed("emails", "other", "value");
    WorkPhone = "workPhone", "Work phone", typed("phoneNumbers", "work", "value");
    MobilePhone = "mobilePhone", "Mobile phone", typed("phoneNumbers", "mobile", "value");
    HomePhone = "homePhone", "Home phone", typed("phoneNumbers", "home", "value");
    Fax = "fax", "Fax", typed("phoneNumbers", "fax", "value");
    Pager = "pager", "Pager", typed("phoneNumbers", "pager", "value");
    OtherPhone = "otherPhone", "Other phone", typed("phoneNumbers", "other", "value");
    Photo = "photo", "Photo URL", typed("photos", "photo", "value");
    Thumbnail = "thumbnail", "Thumbnail URL", typed("photos", "thumbnail", "value");
    WorkStreet = "workStreet", "Work street", typed("addresses", "work", "streetAddress");
    WorkCity = "workCity", "Work city", typed("addresses", "work", "locality");
    WorkState = "workState", "Work state", typed("addresses", "work", "region");
    WorkPostalCode = "workPostalCode", "Work postal code", typed("addresses", "work", "postalCode");
    WorkCountry = "workCountry", "Work country (ISO 3166-1 alpha-2)", typed("addresses", "work", "country");
    WorkFormattedAddress = "workFormattedAddress", "Work address, formatted", typed("addresses", "work", "formatted");
    HomeStreet = "homeStreet", "Home street", typed("addresses", "home", "streetAddress");
    HomeCity = "homeCity", "Home city", typed("addresses", "home", "locality");
    HomeState = "homeState", "Home state", typed("addresses", "home", "region");
    HomePostalCode = "homePostalCode", "Home postal code", typed("addresses", "home", "postalCode");
    HomeCountry = "homeCountry", "Home country (ISO 3166-1 alpha-2)", typed("addresses", "home", "country");
    HomeFormattedAddress = "homeFormattedAddress", "Home address, formatted", typed("addresses", "home", "formatted");
    OtherStreet = "otherStreet", "Other street", typed("addresses", "other", "streetAddress");
    OtherCity = "otherCity", "Other city", typed("addresses", "other", "locality");
    OtherState = "otherState", "Other state", typed("addresses", "other", "region");
    OtherPostalCode = "otherPostalCode", "Other postal code", typed("addresses", "other", "postalCode");
    OtherCountry = "otherCountry", "Other country (ISO 3166-1 alpha-2)", typed("addresses", "other", "country");
    OtherFormattedAddress = "otherFormattedAddress", "Other address, formatted", typed("addresses", "other", "formatted");
    EmployeeNumber = "employeeNumber", "Employee number", FieldTarget::Enterprise("employeeNumber");
    CostCenter = "costCenter", "Cost center", FieldTarget::Enterprise("costCenter");
    Organization = "organization", "Organization", FieldTarget::Enterprise("organization");
    Division = "division", "Division", FieldTarget::Enterprise("division");
    Department = "department", "Department", FieldTarget::Enterprise("department");
    ManagerId = "managerId", "Manager (target id)", FieldTarget::Manager("value");
    ManagerDisplayName = "managerDisplayName", "Manager display name", FieldTarget::Manager("displayName");
}

impl ScimField {
    pub fn parse(name: &str) -> Option<ScimField> {
        ScimField::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Only `userName` is required.
    pub fn required(self) -> bool {
        self == ScimField::UserName
    }
}

impl fmt::Display for ScimField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ScimField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ScimField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScimField, D::Error> {
        let name = String::deserialize(deserializer)?;
        ScimField::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown SCIM field `{name}`; the fields are {} (attributes of custom schema extensions go in extension_mapping)",
                ScimField::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// Per SCIM field, where its value comes from.
pub type AttributeMapping = BTreeMap<ScimField, FieldMapping>;

/// Per attribute path of a custom schema extension, where its value comes from.
pub type ExtensionMapping = BTreeMap<String, FieldMapping>;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// LDAP attributes tried in order; the first one with a value wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Used when none of the attributes has a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    /// Extension attributes only: send every value of the attributes, as an array.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multi_valued: bool,
    /// Remove leading and trailing white space from the directory's values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trim: bool,
    #[serde(default, skip_serializing_if = "CharacterCase::is_none")]
    pub character_case: CharacterCase,
    #[serde(default, skip_serializing_if = "ValueParser::is_none")]
    pub parser: ValueParser,
    /// An expression computing the value instead of the attributes (docs/attribute-mapping.md);
    /// the default value is used when it gives nothing or fails on an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Sent when the user is created, never on updates (a first password, say).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_only: bool,
    /// Shown as ******** in plans and `mapping test` ("Mask Log Values").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub masked: bool,
}

/// PingFederate's "Character Case" mapping option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CharacterCase {
    #[default]
    None,
    Upper,
    Lower,
}

impl CharacterCase {
    fn is_none(&self) -> bool {
        *self == CharacterCase::None
    }
}

/// PingFederate's "Parser" mapping option: what part of the directory's value is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ValueParser {
    #[default]
    None,
    /// `cn=Ann Lee,ou=people,…` → `Ann Lee` (a manager or group DN, say).
    ExtractCnFromDn,
    /// `ann.lee@example.com` → `ann.lee`.
    ExtractUserNameFromEmail,
}

impl ValueParser {
    fn is_none(&self) -> bool {
        *self == ValueParser::None
    }
}

impl FieldMapping {
    /// A mapping from these LDAP attributes, with no other option.
    pub fn from_attributes(attributes: &[&str]) -> FieldMapping {
        FieldMapping {
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
            ..FieldMapping::default()
        }
    }

    /// A directory value as this mapping sends it: parsed, then trimmed, then cased. `None`
    /// when nothing is left (a DN without CN, an email without user part).
    pub fn transform(&self, value: &str) -> Option<String> {
        let parsed = match self.parser {
            ValueParser::None => Some(value.to_owned()),
            ValueParser::ExtractCnFromDn => cn_of_dn(value),
            ValueParser::ExtractUserNameFromEmail => value
                .split_once('@')
                .map(|(user, _)| user.to_owned())
                .filter(|user| !user.trim().is_empty()),
        }?;
        let trimmed = if self.trim {
            parsed.trim().to_owned()
        } else {
            parsed
        };
        let cased = match self.character_case {
            CharacterCase::None => trimmed,
            CharacterCase::Upper => trimmed.to_uppercase(),
            CharacterCase::Lower => trimmed.to_lowercase(),
        };
        (!cased.trim().is_empty()).then_some(cased)
    }
}

/// The value of the first `cn` RDN of a DN, with RFC 4514 escapes (`\,`, `\+`, `\2C`) undone.
fn cn_of_dn(dn: &str) -> Option<String> {
    let mut rdns = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' | '+' => rdns.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    rdns.push(current);
    let value = rdns.iter().find_map(|rdn| {
        let (kind, value) = rdn.split_once('=')?;
        kind.trim()
            .eq_ignore_ascii_case("cn")
            .then(|| value.trim().to_owned())
    })?;
    let unescaped = unescape_dn_value(&value);
    (!unescaped.is_empty()).then_some(unescaped)
}

fn unescape_dn_value(value: &str) -> String {
    let mut bytes = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        let first = chars.next();
        let second = chars.peek().copied();
        match (first, second) {
            (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                chars.next();
                let hex = format!("{a}{b}");
                bytes.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            (Some(a), _) => {
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(a.encode_utf8(&mut buffer).as_bytes());
            }
            (None, _) => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An attribute of a custom schema extension, by its full path:
/// `URN:attr`, `URN:attr.sub`, or `URN:attr[type=kind].sub` (one value per type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionPath {
    pub urn: String,
    pub attribute: String,
    pub sub: Option<String>,
    pub kind: Option<String>,
}

impl ExtensionPath {
    pub fn parse(path: &str) -> Result<ExtensionPath, String> {
        let bad = |why: &str| format!("extension attribute path `{path}`: {why}");
        if !path.starts_with("urn:") {
            return Err(bad("must start with the schema URN (urn:…)"));
        }
        // The attribute starts after the last ':' that is outside a [type=…] filter.
        let head = path.split('[').next().unwrap_or(path);
        let split = head
            .rfind(':')
            .ok_or_else(|| bad("has no attribute after the URN"))?;
        let urn = &path[..split];
        let rest = &path[split + 1..];
        if urn.split(':').count() < 3 {
            return Err(bad("the schema URN is too short"));
        }
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let (attribute, kind, sub) = match rest.split_once('[') {
            Some((attribute, filter)) => {
                let (filter, sub) = filter
                    .split_once("].")
                    .ok_or_else(|| bad("a [type=…] filter must be followed by .subAttribute"))?;
                let kind = filter
                    .strip_prefix("type=")
                    .filter(|k| !k.is_empty() && !k.contains([']', '"', ' ']))
                    .ok_or_else(|| bad("the filter must be [type=value]"))?;
                (attribute, Some(kind.to_owned()), Some(sub))
            }
            None => match rest.split_once('.') {
                Some((attribute, sub)) => (attribute, None, Some(sub)),
                None => (rest, None, None),
            },
        };
        if !name_ok(attribute) || sub.is_some_and(|s| !name_ok(s)) {
            return Err(bad("attribute names are letters, digits, _ and -"));
        }
        Ok(ExtensionPath {
            urn: urn.to_owned(),
            attribute: attribute.to_owned(),
            sub: sub.map(str::to_owned),
            kind,
        })
    }
}

/// Adds every problem of a channel's attribute mappings; `at` names the channel.
pub(crate) fn validate_attribute_mapping(
    at: &str,
    mapping: &AttributeMapping,
    extensions: &ExtensionMapping,
    problems: &mut Vec<String>,
) {
    if !mapping.contains_key(&ScimField::UserName) {
        problems.push(format!(
            "{at}: attribute_mapping must map userName (required)"
        ));
    }
    let empty = |m: &FieldMapping| {
        m.attributes.is_empty() && m.default_value.is_none() && m.expression.is_none()
    };
    for (field, field_mapping) in mapping {
        if empty(field_mapping) {
            problems.push(format!(
                "{at}: attribute_mapping.{field} needs attributes, an expression or a default_value"
            ));
        }
        if field_mapping.multi_valued {
            problems.push(format!(
                "{at}: attribute_mapping.{field}: multi_valued is for extension attributes only"
            ));
        }
        if field_mapping.create_only && matches!(field, ScimField::UserName | ScimField::Active) {
            problems.push(format!(
                "{at}: attribute_mapping.{field} cannot be create_only: updates need it"
            ));
        }
    }
    for (path, field_mapping) in extensions {
        match ExtensionPath::parse(path) {
            Err(problem) => problems.push(format!("{at}: extension_mapping: {problem}")),
            Ok(parsed) => {
                if field_mapping.multi_valued && (parsed.sub.is_some() || parsed.kind.is_some()) {
                    problems.push(format!(
                        "{at}: extension_mapping.\"{path}\": multi_valued applies to a simple attribute path (URN:attr)"
                    ));
                }
                if parsed.urn == ENTERPRISE
                    || parsed.urn.starts_with("urn:ietf:params:scim:schemas:core:")
                {
                    problems.push(format!(
                        "{at}: extension_mapping.\"{path}\": core and enterprise attributes are mapped in attribute_mapping"
                    ));
                }
            }
        }
        if empty(field_mapping) {
            problems.push(format!(
                "{at}: extension_mapping.\"{path}\" needs attributes, an expression or a default_value"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_by_name_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for field in ScimField::ALL {
            assert_eq!(ScimField::parse(field.name()), Some(*field));
            assert!(names.insert(field.name()), "{field} twice");
        }
        assert_eq!(ScimField::parse("jobTitle"), None);
        assert_eq!(
            ScimField::HomeCity.target().path(),
            "addresses[type eq \"home\"].locality"
        );
        assert_eq!(
            ScimField::ManagerId.target().path(),
            format!("{ENTERPRISE}:manager.value")
        );
        assert!(ScimField::Fax.target().multi_valued());
        assert!(ScimField::UserName.required() && !ScimField::Title.required());
    }

    #[test]
    fn extension_paths_parse_or_say_why_not() {
        let urn = "urn:example:params:scim:schemas:extension:acme:2.0:User";
        assert_eq!(
            ExtensionPath::parse(&format!("{urn}:badge")).unwrap(),
            ExtensionPath {
                urn: urn.into(),
                attribute: "badge".into(),
                sub: None,
                kind: None
            }
        );
        let complex = ExtensionPath::parse(&format!("{urn}:badge.number")).unwrap();
        assert_eq!(
            (complex.attribute.as_str(), complex.sub.as_deref()),
            ("badge", Some("number"))
        );
        let typed = ExtensionPath::parse(&format!("{urn}:devices[type=laptop].serial")).unwrap();
        assert_eq!(typed.kind.as_deref(), Some("laptop"));
        assert_eq!(typed.sub.as_deref(), Some("serial"));
        for bad in [
            "badge".to_owned(),
            "urn:x".to_owned(),
            format!("{urn}:"),
            format!("{urn}:devices[type=laptop]"),
            format!("{urn}:devices[kind=laptop].serial"),
            format!("{urn}:bad name"),
        ] {
            assert!(ExtensionPath::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_parsed_trimmed_and_cased() {
        let mapping = |parser, trim, character_case| FieldMapping {
            parser,
            trim,
            character_case,
            ..FieldMapping::default()
        };
        let cn = mapping(ValueParser::ExtractCnFromDn, false, CharacterCase::None);
        assert_eq!(
            cn.transform(r"CN=Lee\, Ann,OU=People,DC=example,DC=com")
                .as_deref(),
            Some("Lee, Ann")
        );
        assert_eq!(
            cn.transform(r"uid=ann,cn=M\C3\BCller,dc=x").as_deref(),
            Some("Müller")
        );
        assert_eq!(cn.transform("uid=ann,dc=example,dc=com"), None);
        let user = mapping(
            ValueParser::ExtractUserNameFromEmail,
            true,
            CharacterCase::Lower,
        );
        assert_eq!(
            user.transform(" Ann.Lee@Example.com").as_deref(),
            Some("ann.lee")
        );
        assert_eq!(user.transform("no-at-sign"), None);
        let upper = mapping(ValueParser::None, true, CharacterCase::Upper);
        assert_eq!(upper.transform("  straße ").as_deref(), Some("STRASSE"));
        let plain = FieldMapping::default();
        assert_eq!(plain.transform(" kept ").as_deref(), Some(" kept "));
    }
}
