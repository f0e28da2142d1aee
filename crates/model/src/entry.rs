//! Entries read from a data store.

use std::collections::BTreeMap;

use crate::ids::EntryGuid;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttributeValue {
    Text(String),
    /// A value that is not valid UTF-8 (a photo, a binary GUID).
    Binary(Vec<u8>),
}

/// One directory entry, keyed by its GUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub dn: String,
    pub guid: EntryGuid,
    /// Attribute names are lower-cased: LDAP names are case-insensitive.
    pub attributes: BTreeMap<String, Vec<AttributeValue>>,
}

impl SourceEntry {
    pub fn values(&self, attribute: &str) -> &[AttributeValue] {
        self.attributes
            .get(&attribute.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Whether the entry has the object class, compared case-insensitively.
    pub fn has_object_class(&self, object_class: &str) -> bool {
        self.values("objectClass")
            .iter()
            .any(|v| matches!(v, AttributeValue::Text(t) if t.eq_ignore_ascii_case(object_class)))
    }
}
