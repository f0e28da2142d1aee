//! The LDIF data store: the whole file is the directory, read on every cycle.
//!
//! A file is only as good as its last byte: one cut short (a full disk, an interrupted copy) or
//! still being written looks like a directory whose last entries left. So a file is read once it
//! has been left alone for a moment and did not change during the read; a file that ends in the
//! middle of a line is refused; and a file that is the beginning of the one read last time is
//! flagged, so that the guard holds what it would deprovision, clear or remove.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use scimbridge_ldap::RawEntry;
use scimbridge_ldap::ldif::parse_ldif_bytes;
use scimbridge_model::{
    ChangeDetection, Channel, EffectiveSourceSettings, EntryGuid, LdapType, SourceEntry,
    SourceLocation, SourceSettings, SyncState,
};
use sha2::{Digest, Sha256};

use super::live::LiveFeed;
use super::scope::GroupIndex;
use super::{
    DataStoreSample, EntryFailure, OneUserRead, ReadRequest, Source, SourceError, SourceRead,
    SourceScan, UserLookup, apply_group_scope, entry_guid, is_within, normalize_dn, to_entry,
    to_group,
};

/// How long a file must have been left alone before it is read: an editor or an export still
/// writing it would otherwise be read half-written.
const SETTLE: Duration = Duration::from_millis(500);
/// How many times a file that keeps changing is waited for before the read gives up.
const SETTLE_ATTEMPTS: u32 = 60;

/// A read of the file: what it holds, and its signature for the next read.
pub struct LdifRead {
    pub scan: SourceScan,
    pub signature: FileSignature,
}

/// Reads the file and keeps the user entries within the source location. `previous` is the
/// signature of the file last read by a cycle that completed; `settle`: wait for a file modified
/// just now to be left alone first (a channel that has provisioned nobody yet need not: a file
/// read half-written deprovisions nobody).
pub async fn read_file(
    data_store: &str,
    path: &Path,
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
    previous: Option<&FileSignature>,
    settle: bool,
) -> Result<LdifRead, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        data_store: data_store.to_owned(),
        reason,
    };
    let bytes = read_settled(path, settle).await.map_err(unreadable)?;
    let mut scan = scan_bytes(data_store, path, &bytes, settings, location)?;
    let signature = FileSignature::of(&bytes);
    if let Some(previous) = previous
        && previous.is_cut_short(&bytes)
    {
        scan.suspect = Some(format!(
            "{} is the beginning of the file read last time ({} of {} bytes): it looks cut \
             short, or its last lines were deleted",
            path.display(),
            bytes.len(),
            previous.len
        ));
    }
    Ok(LdifRead { scan, signature })
}

/// An LDIF file as a data store: the whole file is the directory, read on every cycle.
pub struct LdifSource {
    name: String,
    path: PathBuf,
}

impl LdifSource {
    pub fn new(name: &str, path: &str) -> LdifSource {
        LdifSource {
            name: name.to_owned(),
            path: PathBuf::from(path),
        }
    }

    fn unreadable(&self, reason: String) -> SourceError {
        SourceError::Unreadable {
            data_store: self.name.clone(),
            reason,
        }
    }
}

#[async_trait]
impl Source for LdifSource {
    async fn read(
        &self,
        request: &ReadRequest<'_>,
    ) -> Result<(SourceScan, SourceRead), SourceError> {
        // The file read by the last cycle that was applied, to recognise this one cut short.
        let last_read = last_file(request.previous);
        let provisioned = request.known.any_provisioned().await?;
        let file = read_file(
            &self.name,
            &self.path,
            request.settings,
            &request.channel.source_location,
            last_read.as_ref(),
            provisioned,
        )
        .await?;
        let read = SourceRead {
            mechanism: ChangeDetection::FullScan,
            full: true,
            next_state: Some(SyncState {
                mechanism: ChangeDetection::FullScan,
                cursor: file.signature.encode(),
                settings_fingerprint: request.fingerprint.to_owned(),
                last_full_read_ms: request.now_ms,
                last_sweep_ms: request.now_ms,
            }),
            groups_read_whole: None,
            swept_for_deletes: false,
        };
        let mut scan = file.scan;
        if let Some(pages) = request.pages {
            pages.groups(&scan.groups).await?;
        }
        scan.users = super::keep_pages(request.pages, std::mem::take(&mut scan.users)).await?;
        Ok((scan, read))
    }

    async fn read_one_user(
        &self,
        channel: &Channel,
        settings: &EffectiveSourceSettings,
        lookup: &UserLookup<'_>,
    ) -> Result<OneUserRead, SourceError> {
        let last_read = last_file(lookup.previous);
        let file = read_file(
            &self.name,
            &self.path,
            settings,
            &channel.source_location,
            last_read.as_ref(),
            lookup.provisioned,
        )
        .await?;
        let wanted = normalize_dn(lookup.dn);
        let scan = file.scan;
        let by_dn = scan
            .users
            .iter()
            .find(|u| normalize_dn(&u.dn) == wanted)
            .cloned()
            .map(Ok)
            .or_else(|| {
                scan.failures
                    .iter()
                    .find(|f| normalize_dn(&f.dn) == wanted)
                    .map(|f| Err(f.reason.clone()))
            });
        let entry = by_dn.or_else(|| {
            let guid = lookup.guid?;
            scan.users.iter().find(|u| u.guid == guid).cloned().map(Ok)
        });
        Ok(OneUserRead {
            entry,
            suspect: scan.suspect,
        })
    }

    async fn read_entry(
        &self,
        _channel: &Channel,
        settings: &EffectiveSourceSettings,
        dn: &str,
    ) -> Result<Option<RawEntry>, SourceError> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| self.unreadable(format!("{}: {e}", self.path.display())))?;
        let records = parse_ldif_bytes(&bytes, &self.path.display().to_string())
            .map_err(|e| self.unreadable(e.to_string()))?;
        let wanted = normalize_dn(dn);
        Ok(records.into_iter().find(|r| {
            normalize_dn(&r.dn) == wanted
                && to_entry(r).has_object_class(&settings.user_object_class)
        }))
    }

    async fn check(
        &self,
        _settings: &EffectiveSourceSettings,
        _location: &SourceLocation,
    ) -> Result<String, SourceError> {
        if !self.path.exists() {
            return Err(self.unreadable(format!("{} does not exist", self.path.display())));
        }
        Ok(format!(
            "is the LDIF file {}, read in full every cycle",
            self.path.display()
        ))
    }

    async fn sample(
        &self,
        limit: u32,
        user_object_class: Option<&str>,
    ) -> Result<DataStoreSample, SourceError> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| self.unreadable(format!("{}: {e}", self.path.display())))?;
        let records = parse_ldif_bytes(&bytes, &self.path.display().to_string())
            .map_err(|e| self.unreadable(e.to_string()))?;
        let user_class = user_object_class.map_or_else(
            || {
                SourceSettings::default()
                    .effective(LdapType::OpenLdap)
                    .user_object_class
            },
            str::to_owned,
        );
        let total = records.len();
        let users: Vec<RawEntry> = records
            .into_iter()
            .filter(|r| to_entry(r).has_object_class(&user_class))
            .collect();
        let summary = format!(
            "{} read: {total} entries, {} of them {user_class} users",
            self.path.display(),
            users.len()
        );
        Ok(DataStoreSample {
            summary,
            naming_contexts: Vec::new(),
            entries: users.into_iter().take(limit as usize).collect(),
        })
    }

    fn checked_on_activation(&self) -> bool {
        false
    }

    fn may_have_live_feed(&self) -> bool {
        true
    }

    async fn live_feed(
        &self,
        _location: &SourceLocation,
        _poll_interval: Duration,
    ) -> Result<Option<LiveFeed>, SourceError> {
        Ok(Some(LiveFeed::FileWatch {
            path: self.path.to_path_buf(),
            last: file_stamp(&self.path),
            interval: FILE_WATCH_INTERVAL,
        }))
    }
}

/// The signature of the file the last completed cycle read, from the channel's sync state.
fn last_file(previous: Option<&SyncState>) -> Option<FileSignature> {
    previous
        .filter(|state| state.mechanism == ChangeDetection::FullScan)
        .and_then(|state| FileSignature::decode(&state.cursor))
}

/// The file's bytes, read once it has not changed for [`SETTLE`] (when `settle`) and did not
/// change while it was read.
async fn read_settled(path: &Path, settle: bool) -> Result<Vec<u8>, String> {
    let stamp = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| FileStamp::of(&m))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    for _ in 0..SETTLE_ATTEMPTS {
        let before = stamp(path)?;
        let recent = settle
            && before
                .modified
                .is_none_or(|modified| crate::clock::age(modified) < SETTLE);
        if recent {
            // Written just now (or stamped in the future): read it once it has been quiet.
            tokio::time::sleep(SETTLE).await;
            if stamp(path)? != before {
                continue;
            }
        }
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if stamp(path)? == before {
            return Ok(bytes);
        }
    }
    Err(format!(
        "{} kept changing for {} seconds; it is read once it has been left alone for {} ms",
        path.display(),
        (SETTLE * SETTLE_ATTEMPTS).as_secs(),
        SETTLE.as_millis()
    ))
}

/// How often a live feed looks at the file: a `stat`, cheap enough to make an edit reach the
/// target within a second (the read then waits for the file to settle).
const FILE_WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// What tells one state of the file from another without reading it: its size, modification
/// time and identity (device, inode, change time), so that a file replaced by a rename counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    id: (u64, u64, i64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            id: file_id(metadata),
        }
    }
}

/// The file's stamp; `None` when it cannot be seen (gone, or not readable).
pub fn file_stamp(path: &Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().map(|m| FileStamp::of(&m))
}

#[cfg(unix)]
fn file_id(metadata: &std::fs::Metadata) -> (u64, u64, i64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino(), metadata.ctime_nsec())
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> (u64, u64, i64) {
    (0, 0, 0)
}

/// Parses the file's bytes and keeps the user entries within the source location.
pub fn scan_bytes(
    data_store: &str,
    path: &Path,
    bytes: &[u8],
    settings: &EffectiveSourceSettings,
    location: &SourceLocation,
) -> Result<SourceScan, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        data_store: data_store.to_owned(),
        reason,
    };
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        return Err(unreadable(format!(
            "{} ends in the middle of a line (no line break after its last line): it was cut \
             short or is still being written, so nothing is read from it; if it is complete, end \
             it with a line break",
            path.display()
        )));
    }
    let records = parse_ldif_bytes(bytes, &path.display().to_string())
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
                let group = to_group(entry, EntryGuid::default(), settings);
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

/// What a cycle remembers of the file it read, to recognise the next one as that file cut short:
/// its length, and a digest of the file up to the end of each of its lines. A file that ends
/// where a line of the last one ended, with the same bytes up to there, is that file cut short
/// (or that file with its last lines deleted, which looks the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSignature {
    len: usize,
    /// Offset right after each line break → the first 4 bytes of the SHA-256 of the file up
    /// to there.
    line_ends: HashMap<usize, u32>,
}

const SIGNATURE_PREFIX: &str = "ldif-line-ends-v1";

impl FileSignature {
    pub fn of(bytes: &[u8]) -> FileSignature {
        FileSignature {
            len: bytes.len(),
            line_ends: line_ends(bytes).collect(),
        }
    }

    /// Whether `bytes` is this file cut short at the end of one of its lines.
    pub fn is_cut_short(&self, bytes: &[u8]) -> bool {
        bytes.len() < self.len
            && self
                .line_ends
                .get(&bytes.len())
                .is_some_and(|digest| *digest == prefix_digest(&Sha256::new_with_prefix(bytes)))
    }

    /// The signature as text, kept as the channel's sync state: the length, then each line's
    /// length (LEB128) and digest, base64-encoded.
    pub fn encode(&self) -> String {
        let mut ends: Vec<(&usize, &u32)> = self.line_ends.iter().collect();
        ends.sort();
        let mut binary = Vec::with_capacity(ends.len() * 6);
        let mut previous = 0;
        for (offset, digest) in ends {
            let mut length = offset - previous;
            previous = *offset;
            loop {
                let byte = (length & 0x7f) as u8;
                length >>= 7;
                if length == 0 {
                    binary.push(byte);
                    break;
                }
                binary.push(byte | 0x80);
            }
            binary.extend_from_slice(&digest.to_be_bytes());
        }
        format!(
            "{SIGNATURE_PREFIX} {} {}",
            self.len,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(binary)
        )
    }

    /// `None` for text that is not a signature (a cursor of another kind, or none).
    pub fn decode(text: &str) -> Option<FileSignature> {
        let mut parts = text.split(' ');
        if parts.next() != Some(SIGNATURE_PREFIX) {
            return None;
        }
        let len = parts.next()?.parse().ok()?;
        let binary = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(parts.next().unwrap_or_default())
            .ok()?;
        let mut line_ends = HashMap::new();
        let mut rest = binary.as_slice();
        let mut offset = 0usize;
        while !rest.is_empty() {
            let mut length = 0usize;
            let mut shift = 0;
            loop {
                let (&byte, tail) = rest.split_first()?;
                rest = tail;
                length |= usize::from(byte & 0x7f).checked_shl(shift)?;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let (digest, tail) = rest.split_first_chunk::<4>()?;
            rest = tail;
            offset = offset.checked_add(length)?;
            line_ends.insert(offset, u32::from_be_bytes(*digest));
        }
        Some(FileSignature { len, line_ends })
    }
}

fn prefix_digest(hasher: &Sha256) -> u32 {
    let full = hasher.clone().finalize();
    u32::from_be_bytes([full[0], full[1], full[2], full[3]])
}

/// The offset right after each line break, with the digest of the bytes before it.
fn line_ends(bytes: &[u8]) -> impl Iterator<Item = (usize, u32)> + '_ {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| line.ends_with(b"\n"))
        .map(move |line| {
            hasher.update(line);
            offset += line.len();
            (offset, prefix_digest(&hasher))
        })
}

/// Keeps the entries below the base DN with the user object class, and the entries below the
/// group base DN with the group object class, keyed by their GUID.
pub fn select_entries(
    records: Vec<RawEntry>,
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
mod tests {
    use super::*;
    use scimbridge_ldap::parse_ldif;
    use scimbridge_model::{GroupNameSource, LdapType, SourceSettings};

    #[test]
    fn a_sample_reads_the_users_of_the_object_class_asked_for() {
        let path =
            std::env::temp_dir().join(format!("scimbridge-sample-{}.ldif", std::process::id()));
        std::fs::write(
            &path,
            "dn: uid=ann,dc=x\nobjectClass: inetOrgPerson\nuid: ann\n\n\
             dn: uid=svc,dc=x\nobjectClass: account\nuid: svc\nhost: db1\n",
        )
        .unwrap();
        let source = LdifSource::new("file", &path.display().to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let default = runtime.block_on(source.sample(5, None)).unwrap();
        let accounts = runtime.block_on(source.sample(5, Some("account"))).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(default.entries.len(), 1);
        assert!(
            default
                .summary
                .contains("2 entries, 1 of them inetOrgPerson users")
        );
        assert_eq!(accounts.attribute_names(), ["host", "objectClass", "uid"]);
    }

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
    fn a_file_cut_at_the_end_of_any_line_is_recognised_and_an_edit_is_not() {
        let signature = FileSignature::of(LDIF.as_bytes());
        let decoded = FileSignature::decode(&signature.encode()).unwrap();
        assert_eq!(decoded, signature);
        let ends: Vec<usize> = LDIF.match_indices('\n').map(|(i, _)| i + 1).collect();
        assert!(ends.len() > 20);
        for end in &ends[..ends.len() - 1] {
            assert!(
                decoded.is_cut_short(&LDIF.as_bytes()[..*end]),
                "cut at {end}"
            );
        }
        // The whole file, a longer one, and edits are not cuts.
        assert!(!decoded.is_cut_short(LDIF.as_bytes()));
        assert!(!decoded.is_cut_short(format!("{LDIF}\ndn: cn=more\n").as_bytes()));
        let edited = LDIF.replace("uid: nouuid\n", "");
        assert!(!decoded.is_cut_short(edited.as_bytes()));
        let shorter_last_line = LDIF.replace("entryUUID: 3333\n", "entryUUID: 33\n");
        assert!(!decoded.is_cut_short(shorter_last_line.as_bytes()));
        // Not a signature.
        assert_eq!(FileSignature::decode("content-sync cookie"), None);
        assert_eq!(FileSignature::decode("ldif-line-ends-v1 12 !!"), None);
    }

    #[test]
    fn a_file_that_ends_in_the_middle_of_a_line_is_refused() {
        let settings = SourceSettings::default().effective(LdapType::OpenLdap);
        let location = SourceLocation::new("ou=people,dc=example,dc=com");
        let cut = &LDIF[..LDIF.find("entryUUID: 1111").unwrap() + 13];
        let error = scan_bytes(
            "corp",
            Path::new("d.ldif"),
            cut.as_bytes(),
            &settings,
            &location,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("ends in the middle of a line"), "{error}");
        assert!(
            scan_bytes(
                "corp",
                Path::new("d.ldif"),
                LDIF.as_bytes(),
                &settings,
                &location
            )
            .is_ok()
        );
        assert!(scan_bytes("corp", Path::new("d.ldif"), b"", &settings, &location).is_ok());
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
            staff.member_dns.iter().collect::<Vec<_>>(),
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
