//! The LDIF data store: the whole file is the directory, read on every cycle.

use std::path::Path;

use scimbridge_ldap::LdifRecord;
use scimbridge_ldap::ldif::parse_ldif_bytes;
use scimbridge_model::{EffectiveSourceSettings, SourceEntry, SourceLocation};

use super::scope::GroupIndex;
use super::{
    EntryFailure, SourceError, SourceScan, apply_group_scope, entry_guid, is_within, normalize_dn,
    to_entry, to_group,
};

/// Reads the file and keeps the user entries within the source location.
pub fn scan_file(
    data_store: &str,
    path: &Path,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
) -> Result<SourceScan, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        data_store: data_store.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
    let records = parse_ldif_bytes(&bytes, &path.display().to_string())
        .map_err(|e| unreadable(e.to_string()))?;
    if location.user_filter.is_some() || location.group_filter.is_some() {
        return Err(SourceError::Scope {
            data_store: data_store.to_owned(),
            reason: "user_filter and group_filter need an LDAP data store; an LDIF file can be \
                     scoped by base DN and group DN"
                .into(),
        });
    }
    let mut index = GroupIndex::default();
    if location.user_group_dn.is_some() || location.group_group_dn.is_some() {
        for record in &records {
            let entry = to_entry(record);
            if entry.has_object_class(&settings.group_object_class) {
                let group = to_group(entry, String::new(), settings);
                index.insert(&group.dn, group.member_dns);
            }
        }
    }
    let mut scan = select_entries(records, settings, location);
    apply_group_scope(
        &mut scan,
        &index,
        location,
        &settings.group_object_class,
        data_store,
    )?;
    Ok(scan)
}

/// Keeps the entries below the base DN with the user object class, and the entries below the
/// group base DN with the group object class, keyed by their GUID.
pub fn select_entries(
    records: Vec<LdifRecord>,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
) -> SourceScan {
    let base = normalize_dn(&location.base_dn);
    let group_base = location.group_base_dn.as_deref().map(normalize_dn);
    let mut scan = SourceScan::complete();
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use scimbridge_ldap::parse_ldif;
    use scimbridge_model::{GroupNameSource, LdapType, SourceSettings};

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
        select_entries(records, &settings.effective(LdapType::OpenLdap), &location)
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
        let effective = SourceSettings::default().effective(LdapType::OpenLdap);
        let scan = select_entries(records.clone(), &effective, &location);
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
        let scan = select_entries(records, &settings.effective(LdapType::OpenLdap), &location);
        assert_eq!(
            scan.groups[0].display_name,
            "cn=staff,ou=groups,dc=example,dc=com"
        );
    }
}
