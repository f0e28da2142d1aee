//! Stage 1, source: reads entries from a data store. Only reads.
//!
//! A data store is a [`Source`]: an LDIF file ([`ldif::LdifSource`]) or an LDAP directory
//! ([`ldap::LdapSource`]); [`source_of`] is the one place that tells them apart. Both turn raw
//! records into [`SourceEntry`]s and [`SourceGroup`]s the same way, with the functions here.

pub mod ldap;
pub mod ldif;
pub mod live;
pub mod scope;

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use scimbridge_ldap::{GuidLayout, RawEntry, print_guid};
/// DNs are compared normalised, as the state store keeps them.
pub use scimbridge_model::normalize_dn;
use scimbridge_model::{
    AttributeValue, ChangeDetection, Channel, ChannelKey, DataStore, DataStoreKind,
    EffectiveSourceSettings, EntryGuid, EpochMs, GroupNameSource, GroupRecord, Record,
    RecordStatus, SourceEntry, SourceLocation, SyncState,
};

use crate::state::{RecordKey, Store, StoreError};

/// A data store as a channel reads it.
#[async_trait]
pub trait Source: Send + Sync {
    /// Reads the channel's users and groups: everything, or what changed since the last read
    /// when `request.previous` allows it.
    async fn read(
        &self,
        request: &ReadRequest<'_>,
    ) -> Result<(SourceScan, SourceRead), SourceError>;

    /// One user for `sync --user`, as a cycle would read it: within the source location, and,
    /// when the DN finds nothing, by the GUID of its record (the entry may have moved).
    async fn read_one_user(
        &self,
        channel: &Channel,
        settings: &EffectiveSourceSettings,
        lookup: &UserLookup<'_>,
    ) -> Result<OneUserRead, SourceError>;

    /// The entry at a DN, with the attributes a cycle reads, for `mapping test`; `None` when
    /// there is no such user.
    async fn read_entry(
        &self,
        channel: &Channel,
        settings: &EffectiveSourceSettings,
        dn: &str,
    ) -> Result<Option<RawEntry>, SourceError>;

    /// Proves the channel can read the data store; says what it found, for people.
    async fn check(
        &self,
        settings: &EffectiveSourceSettings,
        location: &SourceLocation,
    ) -> Result<String, SourceError>;

    /// Proves the data store answers without any channel (the console's Test of a data store)
    /// and reads up to `limit` of its user entries, whose attribute names the mapping offers:
    /// entries of `user_object_class`, or of the LDAP type's default one.
    async fn sample(
        &self,
        limit: u32,
        user_object_class: Option<&str>,
    ) -> Result<DataStoreSample, SourceError>;

    /// Whether activating a connection proves this data store answers first (a directory must;
    /// a file may be written after the connection is activated).
    fn checked_on_activation(&self) -> bool {
        true
    }

    /// Whether the data store may have a live change feed worth opening (a directory; not a
    /// file).
    fn may_have_live_feed(&self) -> bool {
        true
    }

    /// The data store's live change feed, when it has one; `None`: the channel is read on its
    /// schedule alone.
    async fn live_feed(
        &self,
        location: &SourceLocation,
        poll_interval: std::time::Duration,
    ) -> Result<Option<live::LiveFeed>, SourceError>;
}

/// What [`Source::sample`] found.
#[derive(Debug, Clone, Default)]
pub struct DataStoreSample {
    /// Where and how it was read, for people: the server (and its vendor) or the file.
    pub summary: String,
    /// A directory's naming contexts (suffixes); none for a file.
    pub naming_contexts: Vec<String>,
    /// A few user entries (the LDAP type's user object class), every attribute read.
    pub entries: Vec<RawEntry>,
}

impl DataStoreSample {
    /// The attribute names of the sampled entries, each once, sorted without regard to case.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for entry in &self.entries {
            for attribute in &entry.attributes {
                if !names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&attribute.name))
                {
                    names.push(attribute.name.clone());
                }
            }
        }
        names.sort_by_key(|n| n.to_ascii_lowercase());
        names
    }
}

/// The source a data store is: the one place that tells LDIF files from LDAP directories.
pub fn source_of(data_store: &DataStore) -> Box<dyn Source + '_> {
    match &data_store.kind {
        DataStoreKind::Ldif { path } => Box::new(ldif::LdifSource::new(&data_store.name, path)),
        DataStoreKind::Ldap(_) => Box::new(ldap::LdapSource::new(data_store)),
    }
}

/// What a cycle asks of its data store.
pub struct ReadRequest<'a> {
    pub channel: &'a Channel,
    pub settings: &'a EffectiveSourceSettings,
    /// Fingerprint of the channel's settings: a cursor taken under other settings is not used.
    pub fingerprint: &'a str,
    /// What the channel knows of its users: what an incremental read checks against.
    pub known: &'a Known<'a>,
    /// Where the last completed cycle's read stopped.
    pub previous: Option<&'a SyncState>,
    pub now_ms: EpochMs,
    /// Where a full read hands its users, a page at a time, as it reads them: the users it
    /// returns are those the scan keeps. `None`: the scan holds every user.
    pub pages: Option<&'a dyn FullReadPages>,
}

/// Told the users of a full read a page at a time, as the data store gives them, and before the
/// next page is read: it keeps those the cycle must plan (new, changed, failing) and counts the
/// rest, so that a full read of a million users never holds them all.
#[async_trait]
pub trait FullReadPages: Send + Sync {
    /// The groups in scope of the full read, handed over before its first page of users by a
    /// source that has them by then (so that the users created as the read goes can join
    /// them); they stay in the scan all the same.
    async fn groups(&self, _groups: &[SourceGroup]) -> Result<(), SourceError> {
        Ok(())
    }

    /// The users of `page` the scan keeps.
    async fn keep(&self, page: Vec<SourceEntry>) -> Result<Vec<SourceEntry>, SourceError>;
}

/// How many users a source that reads everything at once hands to [`FullReadPages`] at a time.
pub const FULL_READ_PAGE: usize = 1_000;

/// The users of a full read `pages` keeps, handed over [`FULL_READ_PAGE`] at a time; every
/// user without `pages`.
pub async fn keep_pages(
    pages: Option<&dyn FullReadPages>,
    users: Vec<SourceEntry>,
) -> Result<Vec<SourceEntry>, SourceError> {
    let Some(pages) = pages else {
        return Ok(users);
    };
    let mut kept = Vec::new();
    let mut users = users.into_iter().peekable();
    while users.peek().is_some() {
        let page: Vec<SourceEntry> = users.by_ref().take(FULL_READ_PAGE).collect();
        kept.extend(pages.keep(page).await?);
    }
    Ok(kept)
}

/// How a channel's data store was read, and where the next incremental read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRead {
    /// The change detection used: `full-scan` for LDIF files.
    pub mechanism: ChangeDetection,
    /// Whether every entry was read (the first read, a full reconciliation, new settings).
    pub full: bool,
    /// Saved once the cycle has been applied; `None` when the next read must be a full one.
    pub next_state: Option<SyncState>,
    /// Groups read incrementally: how many were read whole, of how many in scope.
    pub groups_read_whole: Option<(usize, usize)>,
    /// An incremental read swept every GUID in scope for deletes (`delete_sweep_minutes`).
    pub swept_for_deletes: bool,
}

impl SourceRead {
    /// "content-sync, incremental" and the like, for logs and `plan`.
    pub fn describe(&self) -> String {
        let groups = match self.groups_read_whole {
            Some((whole, of)) => format!(", {whole} of {of} groups read whole"),
            None => String::new(),
        };
        format!(
            "{}, {}{groups}{}",
            self.mechanism.name(),
            if self.full {
                "full read"
            } else {
                "incremental"
            },
            if self.swept_for_deletes {
                ", swept for deletes"
            } else {
                ""
            }
        )
    }
}

/// Who `sync --user` asks for: the DN, and the GUID of its record when the channel has one, so
/// that an entry moved since its last cycle is still found.
#[derive(Debug, Clone, Default)]
pub struct UserLookup<'a> {
    pub dn: &'a str,
    pub guid: Option<&'a str>,
    /// The channel's sync state: for an LDIF file, the signature of the file the last completed
    /// cycle read.
    pub previous: Option<&'a SyncState>,
    /// Whether the channel has provisioned users (an LDIF file written just now settles first).
    pub provisioned: bool,
}

/// What `sync --user` read of one user.
#[derive(Debug, Clone)]
pub struct OneUserRead {
    /// The entry keyed like a cycle keys it (`Err`: it has no GUID); `None`: not in the source
    /// location, by DN or by GUID.
    pub entry: Option<Result<SourceEntry, String>>,
    /// Why the read may be incomplete (an LDIF file cut short): nothing is written then.
    pub suspect: Option<String>,
}

/// What the channel already knows of a user, from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUser {
    pub guid: EntryGuid,
    pub dn: String,
    /// The last attempt failed: read the entry again so that it is retried.
    pub retry: bool,
    /// The target holds its user (active or disabled): it counts in its groups.
    pub in_target: bool,
}

/// Whether a cycle of a channel with this source location needs every record of the channel
/// whatever the read: a scope given by group is worked out from every group and every user.
/// Other channels' incremental cycles read the records they touch by key.
pub fn needs_every_record(location: &SourceLocation) -> bool {
    location.user_group_dn.is_some() || location.group_group_dn.is_some()
}

/// How many record heads [`record_heads_where`] reads at once (a few in tests, to see pages turn).
#[cfg(not(test))]
const KNOWN_PAGE: u32 = 10_000;
#[cfg(test)]
const KNOWN_PAGE: u32 = 3;

/// What `take` makes of the channel's record heads (without images), read a page of heads at a
/// time, so that what is held is the answer, not every record.
pub async fn record_heads_where<T>(
    store: &dyn Store,
    channel: &ChannelKey,
    mut take: impl FnMut(Record) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    let mut taken = Vec::new();
    let mut after: Option<EntryGuid> = None;
    loop {
        let page = store
            .record_heads_page(channel, after.as_ref(), KNOWN_PAGE)
            .await?;
        let Some(last) = page.last() else {
            return Ok(taken);
        };
        after = Some(last.guid.clone());
        taken.extend(page.into_iter().filter_map(&mut take));
    }
}

/// The users a channel knows (records in the source location, and failed ones), as a read asks
/// for them: the records a cycle already holds, or the state store, read by key, or a page at a
/// time when a read must compare every known user with what it found (a sweep for deletes).
pub struct Known<'a> {
    from: KnownFrom<'a>,
    now_ms: EpochMs,
    everyone: tokio::sync::OnceCell<Vec<KnownUser>>,
    /// The channel's group records without their members, when the read may read groups
    /// incrementally.
    groups: &'a [GroupRecord],
}

enum KnownFrom<'a> {
    Records(&'a [Record]),
    Store {
        store: &'a dyn Store,
        channel: &'a ChannelKey,
        /// The records that may be retried (failed, or never settled), already read: they
        /// stand for the stored ones.
        retrying: &'a [Record],
        by_guid: HashMap<&'a EntryGuid, &'a Record>,
    },
}

impl<'a> Known<'a> {
    /// From every record of the channel (without images).
    pub fn of_records(records: &'a [Record], now_ms: EpochMs) -> Known<'a> {
        Known {
            from: KnownFrom::Records(records),
            now_ms,
            everyone: tokio::sync::OnceCell::new(),
            groups: &[],
        }
    }

    /// From the state store; `retrying` holds the records that may be retried, as a cycle
    /// reads them by key (they take precedence over the stored ones).
    pub fn of_store(
        store: &'a dyn Store,
        channel: &'a ChannelKey,
        retrying: &'a [Record],
        now_ms: EpochMs,
    ) -> Known<'a> {
        Known {
            from: KnownFrom::Store {
                store,
                channel,
                retrying,
                by_guid: retrying.iter().map(|r| (&r.guid, r)).collect(),
            },
            now_ms,
            everyone: tokio::sync::OnceCell::new(),
            groups: &[],
        }
    }

    /// With the channel's group records (without members): an incremental read then reads
    /// whole only the groups that need it.
    pub fn with_groups(self, groups: &'a [GroupRecord]) -> Known<'a> {
        Known { groups, ..self }
    }

    /// The channel's group records given to [`Known::with_groups`], without members.
    pub fn groups(&self) -> &[GroupRecord] {
        self.groups
    }

    fn known_user(&self, record: &Record) -> Option<KnownUser> {
        let failed = record.status == RecordStatus::Failed;
        (record.source_fingerprint.is_some() || failed).then(|| KnownUser {
            guid: record.guid.clone(),
            dn: record.dn.clone(),
            in_target: record.target_id.is_some() && record.status != RecordStatus::Deleted,
            // Read again when its retry is due; an entry that changed meanwhile is among the
            // changes anyway.
            retry: failed
                && record
                    .retry_after_ms
                    .is_none_or(|after| after <= self.now_ms),
        })
    }

    /// A stored record as the read must see it: the retrying one of its GUID, if any.
    fn as_known<'r>(&'r self, stored: &'r Record) -> &'r Record {
        match &self.from {
            KnownFrom::Store { by_guid, .. } => {
                by_guid.get(&stored.guid).copied().unwrap_or(stored)
            }
            KnownFrom::Records(_) => stored,
        }
    }

    /// Every known user. Only for a cycle that holds every record anyway
    /// ([`needs_every_record`]); other reads ask for [`Known::absent`] or [`Known::among`].
    pub async fn everyone(&self) -> Result<&[KnownUser], SourceError> {
        let everyone = self
            .everyone
            .get_or_try_init(|| async { self.absent(&|_| false).await })
            .await;
        everyone.map(Vec::as_slice)
    }

    /// The known users that `present` does not hold: those a sweep, or a refresh that reports
    /// deletes by absence, finds gone. The state store is read a page at a time: what is held
    /// is the answer, not every record.
    pub async fn absent(
        &self,
        present: &(dyn Fn(&EntryGuid) -> bool + Sync),
    ) -> Result<Vec<KnownUser>, SourceError> {
        let (store, channel) = match &self.from {
            KnownFrom::Records(records) => {
                return Ok(records
                    .iter()
                    .filter(|r| !present(&r.guid))
                    .filter_map(|r| self.known_user(r))
                    .collect());
            }
            KnownFrom::Store { store, channel, .. } => (*store, *channel),
        };
        let absent = record_heads_where(store, channel, |r| {
            (!present(&r.guid))
                .then(|| self.known_user(self.as_known(&r)))
                .flatten()
        })
        .await?;
        Ok(absent)
    }

    /// Those of these GUIDs that are known users.
    pub async fn among(&self, guids: &[EntryGuid]) -> Result<Vec<KnownUser>, SourceError> {
        let wanted: HashSet<&EntryGuid> = guids.iter().collect();
        match &self.from {
            KnownFrom::Records(records) => Ok(records
                .iter()
                .filter(|r| wanted.contains(&r.guid))
                .filter_map(|r| self.known_user(r))
                .collect()),
            KnownFrom::Store { store, channel, .. } => {
                let stored = store
                    .record_heads_with(channel, RecordKey::Guids(guids))
                    .await?;
                Ok(stored
                    .iter()
                    .filter_map(|r| self.known_user(self.as_known(r)))
                    .collect())
            }
        }
    }

    /// The known users whose last attempt failed and whose retry is due.
    pub fn due_for_retry(&self) -> Vec<KnownUser> {
        let records = match &self.from {
            KnownFrom::Records(records) => records,
            KnownFrom::Store { retrying, .. } => retrying,
        };
        records
            .iter()
            .filter_map(|r| self.known_user(r))
            .filter(|k| k.retry)
            .collect()
    }

    /// Whether the channel has users in the target.
    pub async fn any_provisioned(&self) -> Result<bool, SourceError> {
        match &self.from {
            KnownFrom::Records(records) => Ok(records.iter().any(|r| r.target_id.is_some())),
            KnownFrom::Store { store, channel, .. } => {
                Ok(store.record_counts(channel).await?.users > 0)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The state store could not tell what the channel knows.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data store could not be read at all; the cycle stops and nobody is deprovisioned.
    #[error("cannot read data store \"{data_store}\": {reason}")]
    Unreadable { data_store: String, reason: String },
    /// The channel's scope cannot be worked out; the cycle stops and nobody is deprovisioned.
    #[error("data store \"{data_store}\": {reason}")]
    Scope { data_store: String, reason: String },
    /// The cycle stopped the read: what it did with a page failed (the state store, the target).
    #[error("the read was stopped: {reason}")]
    Stopped { reason: String },
}

/// An entry in scope that cannot be keyed (no GUID): it fails alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFailure {
    pub dn: String,
    pub reason: String,
}

/// A group entry in scope: its name and the normalised DNs of its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    pub guid: EntryGuid,
    pub dn: String,
    pub display_name: String,
    pub member_dns: MemberDns,
    /// The entry's version ([`group_stamp`]).
    pub stamp: Option<String>,
}

/// A group's member DNs (normalized), sorted, each once, in one buffer: the million member DNs
/// of a full read cost their own length and an offset each, not a string each (72 bytes a DN
/// of 43 characters; 51 here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberDns {
    text: String,
    /// Where each DN ends in `text`.
    ends: Vec<usize>,
}

impl MemberDns {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The DNs, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(start, end)| self.text.get(start..end))
    }
}

/// Sorts the DNs and keeps each once.
impl From<Vec<String>> for MemberDns {
    fn from(mut dns: Vec<String>) -> MemberDns {
        dns.sort();
        dns.dedup();
        let mut members = MemberDns {
            text: String::with_capacity(dns.iter().map(String::len).sum()),
            ends: Vec::with_capacity(dns.len()),
        };
        for dn in dns {
            members.text.push_str(&dn);
            members.ends.push(members.text.len());
        }
        members
    }
}

impl FromIterator<String> for MemberDns {
    fn from_iter<I: IntoIterator<Item = String>>(dns: I) -> MemberDns {
        MemberDns::from(dns.into_iter().collect::<Vec<String>>())
    }
}

impl<'a> IntoIterator for &'a MemberDns {
    type Item = &'a str;
    type IntoIter = Box<dyn Iterator<Item = &'a str> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// What a read of the data store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceScan {
    /// Every user in scope after a full read; only the changed ones after an incremental one.
    pub users: Vec<SourceEntry>,
    pub failures: Vec<EntryFailure>,
    /// Every group in scope, or with `groups_incremental` only those to plan whole. Empty
    /// unless the channel has a group base DN.
    pub groups: Vec<SourceGroup>,
    /// Groups in scope that cannot be keyed (no GUID).
    pub group_failures: Vec<EntryFailure>,
    /// `groups` holds only the groups whose version moved, those the channel must read whole
    /// again (failed, or their version forgotten), and those a user the read found and the
    /// target does not hold is a member of; the others did not change.
    pub groups_incremental: bool,
    /// With `groups_incremental`: GUIDs of the channel's groups gone from the directory or
    /// out of scope.
    pub removed_group_guids: Vec<EntryGuid>,
    /// With `groups_incremental`: how many groups are in scope.
    pub groups_in_scope: usize,
    /// Whether `users` holds every user in scope, so that a record without an entry is gone.
    pub complete: bool,
    /// After an incremental read: GUIDs of users deleted or out of scope.
    pub removed_guids: Vec<EntryGuid>,
    /// After an incremental read: DN → GUID of users in scope that did not change, so that
    /// group members resolve without reading them.
    pub unchanged_users: Vec<(String, EntryGuid)>,
    /// Why this read may be incomplete although it succeeded (an LDIF file that looks cut
    /// short): the guard then holds whatever it would deprovision, clear or remove.
    pub suspect: Option<String>,
}

impl SourceScan {
    /// An empty scan of a full read.
    pub fn complete() -> SourceScan {
        SourceScan {
            complete: true,
            ..SourceScan::default()
        }
    }
}

/// Whether `dn` is `base` or below it; both already normalised.
pub fn is_within(dn: &str, base: &str) -> bool {
    dn == base
        || dn
            .strip_suffix(base)
            .is_some_and(|rest| rest.ends_with(','))
}

/// Keeps the users that are members of `user_group_dn` and the groups that are members of
/// `group_group_dn`, when set. A scope group that does not exist stops the cycle: reading it
/// as "no members" would deprovision everyone.
pub fn apply_group_scope(
    scan: &mut SourceScan,
    index: &scope::GroupIndex,
    location: &scimbridge_model::SourceLocation,
    settings_group_class: &str,
    data_store: &str,
) -> Result<(), SourceError> {
    let members = |dn: &str, nested: bool, key: &str| {
        index.members_of(dn, nested).ok_or_else(|| SourceError::Scope {
            data_store: data_store.to_owned(),
            reason: format!(
                "source_location.{key} {dn} is not a group of the directory (object class {}); nobody is deprovisioned while it is missing",
                settings_group_class
            ),
        })
    };
    if let Some(dn) = &location.user_group_dn {
        let in_scope = members(dn, location.user_nested_search, "user_group_dn")?;
        scan.users
            .retain(|user| in_scope.contains(&normalize_dn(&user.dn)));
        scan.unchanged_users
            .retain(|(dn, _)| in_scope.contains(&normalize_dn(dn)));
    }
    if let Some(dn) = &location.group_group_dn {
        let in_scope = members(dn, location.group_nested_search, "group_group_dn")?;
        scan.groups
            .retain(|group| in_scope.contains(&normalize_dn(&group.dn)));
    }
    Ok(())
}

/// A record keyed like a cycle keys it: `Err` when it has no GUID.
pub fn keyed_entry(
    record: &RawEntry,
    settings: &EffectiveSourceSettings,
) -> Result<SourceEntry, String> {
    let entry = to_entry(record);
    entry_guid(&entry, settings).map(|guid| SourceEntry { guid, ..entry })
}

/// A raw record as a source entry, attribute names lower-cased; the GUID is filled in later.
pub fn to_entry(record: &RawEntry) -> SourceEntry {
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
        guid: EntryGuid::default(),
        attributes,
    }
}

/// A group entry with its display name and the normalised DNs of its members.
pub fn to_group(
    entry: SourceEntry,
    guid: EntryGuid,
    settings: &EffectiveSourceSettings,
) -> SourceGroup {
    let text = |value: &AttributeValue| match value {
        AttributeValue::Text(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        _ => None,
    };
    let display_name = match settings.group_name_source {
        GroupNameSource::Cn => entry.values("cn").iter().find_map(text),
        GroupNameSource::Dn => None,
    }
    .unwrap_or_else(|| entry.dn.clone());
    let member_dns: Vec<String> = entry
        .values(&settings.group_member_attribute)
        .iter()
        .filter_map(text)
        .map(|dn| normalize_dn(&dn))
        .collect();
    let member_dns = MemberDns::from(member_dns);
    SourceGroup {
        guid,
        stamp: group_stamp(&entry),
        dn: entry.dn,
        display_name,
        member_dns,
    }
}

/// The attributes that version an entry, most precise first: any change of the entry moves
/// them (a `member` added or removed included).
pub const STAMP_ATTRIBUTES: [&str; 3] = ["entryCSN", "uSNChanged", "modifyTimestamp"];

/// The entry's version, behind the name of the attribute it comes from: `None` when the entry
/// has none of [`STAMP_ATTRIBUTES`] (an LDIF file without operational attributes).
pub fn group_stamp(entry: &SourceEntry) -> Option<String> {
    STAMP_ATTRIBUTES.iter().find_map(|attribute| {
        entry
            .values(attribute)
            .iter()
            .find_map(|value| match value {
                AttributeValue::Text(text) if !text.trim().is_empty() => {
                    Some(format!("{attribute}:{}", text.trim()))
                }
                _ => None,
            })
    })
}

/// The entry's GUID as text: a binary GUID in Active Directory's printed form, a text one as
/// it is; the DN when configured and the GUID is missing.
pub fn entry_guid(
    entry: &SourceEntry,
    settings: &EffectiveSourceSettings,
) -> Result<EntryGuid, String> {
    let attribute = &settings.entry_guid_attribute;
    match entry.values(attribute).first() {
        Some(AttributeValue::Binary(bytes)) => Ok(print_guid(bytes, GuidLayout::Microsoft).into()),
        Some(AttributeValue::Text(text)) if settings.guid_binary && text.len() == 16 => {
            Ok(print_guid(text.as_bytes(), GuidLayout::Microsoft).into())
        }
        Some(AttributeValue::Text(text)) if !text.trim().is_empty() => Ok(text.trim().into()),
        _ if settings.use_dn_when_guid_missing => Ok(EntryGuid::of_dn(&normalize_dn(&entry.dn))),
        _ => Err(format!(
            "entry has no {attribute} (the entry GUID attribute); set source_settings.use_dn_when_guid_missing to key it by DN"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::RecordStore;

    /// The conformance suite's record, in the source location or not, with its retry due.
    fn record(guid: &str, status: RecordStatus, in_source: bool) -> Record {
        let mut record = scimbridge_testkit::store_conformance::record(guid, status);
        record.source_fingerprint = in_source.then(|| "fp".into());
        record.retry_after_ms = None;
        record
    }

    /// Known users read from the state store a page at a time answer as those read from every
    /// record: who is absent, who is among some GUIDs, who is due for a retry.
    #[tokio::test]
    async fn known_users_from_the_store_by_pages_are_those_of_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = scimbridge_store::SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
        let channel = ChannelKey::new("app", "staff");
        let mut records: Vec<Record> = (0..10)
            .map(|i| record(&format!("u{i}"), RecordStatus::Provisioned, true))
            .collect();
        // A leaver long gone, a failed hire due for its retry, one whose retry waits.
        records.push(record("gone", RecordStatus::Disabled, false));
        records.push(record("hire", RecordStatus::Failed, true));
        let mut waiting = record("wait", RecordStatus::Failed, true);
        waiting.retry_after_ms = Some(EpochMs::from_millis(2_000));
        records.push(waiting);
        for r in &records {
            store.save_record(&channel, r).await.unwrap();
        }
        // The cycle read u3 again and found its last operation never settled: now a retry.
        let mut unsettled = record("u3", RecordStatus::Failed, true);
        unsettled.retry_after_ms = None;
        let now = EpochMs::from_millis(1_000);
        let retrying = vec![records[10].clone(), records[11].clone(), unsettled.clone()];
        let mut all = records.clone();
        all[3] = unsettled;
        let from_store = Known::of_store(&store, &channel, &retrying, now);
        let from_records = Known::of_records(&all, now);
        let present = |g: &EntryGuid| !matches!(g.as_str(), "u1" | "u3" | "u7" | "gone" | "wait");
        let guids = |known: Vec<KnownUser>| -> Vec<(String, bool)> {
            let mut g: Vec<(String, bool)> = known
                .into_iter()
                .map(|k| (k.guid.as_str().to_owned(), k.retry))
                .collect();
            g.sort();
            g
        };
        let absent = guids(from_store.absent(&present).await.unwrap());
        // The leaver is not a known user; u3 is, as a retry.
        assert_eq!(
            absent,
            [
                ("u1".to_owned(), false),
                ("u3".to_owned(), true),
                ("u7".to_owned(), false),
                ("wait".to_owned(), false)
            ]
        );
        assert_eq!(absent, guids(from_records.absent(&present).await.unwrap()));
        let wanted: Vec<EntryGuid> = ["u3", "gone", "nobody", "u9"].map(EntryGuid::from).to_vec();
        let among = guids(from_store.among(&wanted).await.unwrap());
        assert_eq!(among, [("u3".to_owned(), true), ("u9".to_owned(), false)]);
        assert_eq!(among, guids(from_records.among(&wanted).await.unwrap()));
        assert_eq!(
            guids(from_store.due_for_retry()),
            [("hire".to_owned(), true), ("u3".to_owned(), true)]
        );
        assert_eq!(
            guids(from_store.due_for_retry()),
            guids(from_records.due_for_retry())
        );
        assert_eq!(from_store.everyone().await.unwrap().len(), 12);
        assert!(from_store.any_provisioned().await.unwrap());
    }

    #[test]
    fn a_sample_names_each_attribute_once_whatever_its_case_sorted() {
        let entries = scimbridge_ldap::parse_ldif(
            "dn: uid=a,dc=x\nuid: a\nsn: A\nmail: a@x\n\ndn: uid=b,dc=x\nUID: b\nentryUUID: 1\nsn: B\n",
            "sample",
        )
        .unwrap();
        let sample = DataStoreSample {
            entries,
            ..DataStoreSample::default()
        };
        assert_eq!(sample.attribute_names(), ["entryUUID", "mail", "sn", "uid"]);
    }

    /// Member DNs are kept sorted and once each, every one whole, also when empty.
    #[test]
    fn member_dns_hold_each_dn_once_in_order() {
        let dns: MemberDns = ["uid=cara", "uid=ann", "uid=bob", "uid=ann", ""]
            .map(String::from)
            .into_iter()
            .collect();
        assert_eq!(dns.len(), 4);
        assert_eq!(
            dns.iter().collect::<Vec<_>>(),
            ["", "uid=ann", "uid=bob", "uid=cara"]
        );
        assert!(MemberDns::default().is_empty());
        assert_eq!(MemberDns::default().iter().count(), 0);
    }

    #[test]
    fn group_scope_keeps_members_and_refuses_a_missing_group() {
        let mut index = scope::GroupIndex::default();
        index.insert(
            "cn=app,ou=groups,dc=x",
            vec!["uid=ann,ou=people,dc=x".to_owned()].into(),
        );
        let user = |uid: &str| SourceEntry {
            dn: format!("uid={uid},ou=people,dc=x"),
            guid: uid.into(),
            attributes: BTreeMap::new(),
        };
        let mut scan = SourceScan {
            users: vec![user("ann"), user("bob")],
            ..SourceScan::complete()
        };
        let mut location = scimbridge_model::SourceLocation::new("ou=people,dc=x");
        location.user_group_dn = Some("CN=App,ou=groups,dc=x".into());
        apply_group_scope(&mut scan, &index, &location, "groupOfNames", "corp").unwrap();
        assert_eq!(scan.users.len(), 1);
        assert_eq!(scan.users[0].guid, "ann");

        location.user_group_dn = Some("cn=gone,ou=groups,dc=x".into());
        let err = apply_group_scope(&mut scan, &index, &location, "groupOfNames", "corp")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cn=gone,ou=groups,dc=x") && err.contains("nobody is deprovisioned"),
            "{err}"
        );
    }
}
