//! The LDIF data store: the whole file is the directory, read on every cycle.

use std::collections::BTreeMap;
use std::path::Path;

use scimbridge_ldap::LdifRecord;
use scimbridge_ldap::ldif::parse_ldif_bytes;
use scimbridge_model::{
    AttributeValue, GroupNameSource, SourceEntry, SourceLocation, SourceSettings,
};

use super::{EntryFailure, SourceError, SourceGroup, SourceScan, is_within, normalize_dn};

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
    Ok(select_entries(records, settings, location))
}

/// Keeps the entries below the base DN with the user object class, and the entries below the
/// group base DN with the group object class, keyed by their GUID.
pub fn select_entries(
    records: Vec<LdifRecord>,
    settings: &SourceSettings,
    location: &SourceLocation,
) -> SourceScan {
    let base = normalize_dn(&location.base_dn);
    let group_base = location.group_base_dn.as_deref().map(normalize_dn);
    let mut scan = SourceScan::default();
    for record in records {
        let dn = normalize_dn(&record.dn);
        if let Some(group_base) = &group_base
            && is_within(&dn, group_base)
        {
            let entry = to_entry(&record);
            if entry.has_object_class(&settings.group_object_class) {
                match entry_guid(&entry, settings) {
                    Ok(guid) => scan.groups.push(to_group(entry, guid, settings)),
                    Err(reason) => scan.group_failures.push(EntryFailure {
                        dn: record.dn.clone(),
                        reason,
                    }),
                }
                continue;
            }
        }
        if !is_within(&dn, &base) {
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

fn to_group(entry: SourceEntry, guid: String, settings: &SourceSettings) -> SourceGroup {
    let text = |value: &AttributeValue| match value {
        AttributeValue::Text(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let display_name = match settings.group_name_source {
        GroupNameSource::Cn => entry.values("cn").iter().find_map(text),
        GroupNameSource::Dn => None,
    }
    .unwrap_or_else(|| entry.dn.clone());
    let mut member_dns: Vec<String> = entry
        .values(&settings.group_member_attribute)
        .iter()
        .filter_map(text)
        .map(|dn| normalize_dn(&dn))
        .collect();
    member_dns.sort();
    member_dns.dedup();
    SourceGroup {
        guid,
        dn: entry.dn,
        display_name,
        member_dns,
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
member: uid=alice, ou=people,dc=example,dc=com
member: uid=bob,ou=contractors,dc=example,dc=com

dn: cn=nouuid,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: nouuid

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
        let location = SourceLocation::new("OU=People, DC=example,DC=com");
        select_entries(records, &settings, &location)
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

    #[test]
    fn reads_groups_below_the_group_base_dn_only_when_set() {
        assert!(scan(false).groups.is_empty());
        let records = parse_ldif(LDIF, "test.ldif").unwrap();
        let location = SourceLocation {
            group_base_dn: Some("ou=groups,dc=example,dc=com".into()),
            ..SourceLocation::new("ou=people,dc=example,dc=com")
        };
        let scan = select_entries(records.clone(), &SourceSettings::default(), &location);
        assert_eq!(scan.groups.len(), 1);
        let staff = &scan.groups[0];
        assert_eq!(
            (staff.guid.as_str(), staff.display_name.as_str()),
            ("2222", "staff")
        );
        assert_eq!(
            staff.member_dns,
            [
                "uid=alice,ou=people,dc=example,dc=com",
                "uid=bob,ou=contractors,dc=example,dc=com"
            ]
        );
        assert_eq!(scan.group_failures.len(), 1);
        assert_eq!(
            scan.group_failures[0].dn,
            "cn=nouuid,ou=groups,dc=example,dc=com"
        );

        let settings = SourceSettings {
            group_name_source: GroupNameSource::Dn,
            ..SourceSettings::default()
        };
        let scan = select_entries(records, &settings, &location);
        assert_eq!(
            scan.groups[0].display_name,
            "cn=staff,ou=groups,dc=example,dc=com"
        );
    }
}
