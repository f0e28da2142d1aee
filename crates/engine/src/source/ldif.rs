//! The LDIF data store: the whole file is the directory, read on every cycle.

use std::collections::BTreeMap;
use std::path::Path;

use scimbridge_ldap::LdifRecord;
use scimbridge_ldap::ldif::parse_ldif_bytes;
use scimbridge_model::{AttributeValue, SourceEntry, SourceLocation, SourceSettings};

use super::{EntryFailure, SourceError, SourceScan, is_within, normalize_dn};

/// Reads the file and keeps the user entries within the source location.
pub fn scan_file(
    data_store: &str,
    path: &Path,
    settings: &SourceSettings,
    location: &SourceLocation,
) -> Result<SourceScan, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        data_store: data_store.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
    let records = parse_ldif_bytes(&bytes, &path.display().to_string())
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(select_users(records, settings, location))
}

/// Keeps the entries below the base DN with the user object class, keyed by their GUID.
pub fn select_users(
    records: Vec<LdifRecord>,
    settings: &SourceSettings,
    location: &SourceLocation,
) -> SourceScan {
    let base = normalize_dn(&location.base_dn);
    let mut scan = SourceScan::default();
    for record in records {
        if !is_within(&normalize_dn(&record.dn), &base) {
            continue;
        }
        let entry = to_entry(&record);
        if !entry.has_object_class(&settings.user_object_class) {
            continue;
        }
        match entry_guid(&entry, settings) {
            Ok(guid) => scan.users.push(SourceEntry { guid, ..entry }),
            Err(reason) => scan.failures.push(EntryFailure {
                dn: record.dn.clone(),
                reason,
            }),
        }
    }
    scan
}

fn to_entry(record: &LdifRecord) -> SourceEntry {
    let mut attributes: BTreeMap<String, Vec<AttributeValue>> = BTreeMap::new();
    for attribute in &record.attributes {
        let value = match std::str::from_utf8(&attribute.value) {
            Ok(text) => AttributeValue::Text(text.to_owned()),
            Err(_) => AttributeValue::Binary(attribute.value.clone()),
        };
        attributes
            .entry(attribute.name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }
    SourceEntry {
        dn: record.dn.clone(),
        guid: String::new(),
        attributes,
    }
}

fn entry_guid(entry: &SourceEntry, settings: &SourceSettings) -> Result<String, String> {
    let attribute = &settings.entry_guid_attribute;
    match entry.values(attribute).first() {
        Some(AttributeValue::Text(text)) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Some(AttributeValue::Binary(bytes)) => {
            Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
        }
        _ if settings.use_dn_when_guid_missing => Ok(format!("dn:{}", normalize_dn(&entry.dn))),
        _ => Err(format!(
            "entry has no {attribute} (the entry GUID attribute); set source_settings.use_dn_when_guid_missing to key it by DN"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use scimbridge_ldap::parse_ldif;

    const LDIF: &str = "\
dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
entryUUID: 1111

dn: uid=nouuid,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: nouuid

dn: cn=staff,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: staff
entryUUID: 2222

dn: uid=bob,ou=contractors,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
entryUUID: 3333
";

    fn scan(use_dn: bool) -> SourceScan {
        let records = parse_ldif(LDIF, "test.ldif").unwrap();
        let settings = SourceSettings {
            use_dn_when_guid_missing: use_dn,
            ..SourceSettings::default()
        };
        let location = SourceLocation {
            base_dn: "OU=People, DC=example,DC=com".into(),
        };
        select_users(records, &settings, &location)
    }

    #[test]
    fn keeps_users_below_the_base_dn_keyed_by_guid() {
        let scan = scan(false);
        let guids: Vec<_> = scan.users.iter().map(|u| u.guid.as_str()).collect();
        assert_eq!(guids, ["1111"]);
        assert_eq!(scan.failures.len(), 1);
        assert_eq!(
            scan.failures[0].dn,
            "uid=nouuid,ou=people,dc=example,dc=com"
        );
        assert!(scan.failures[0].reason.contains("entryUUID"));
    }

    #[test]
    fn falls_back_to_the_dn_only_when_configured() {
        let scan = scan(true);
        assert!(scan.failures.is_empty());
        assert_eq!(
            scan.users[1].guid,
            "dn:uid=nouuid,ou=people,dc=example,dc=com"
        );
    }
}
