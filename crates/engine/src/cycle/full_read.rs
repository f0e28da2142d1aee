//! A full read detected as it goes: each page of users the data store gives is compared with
//! the records of its users, read by key, and only what the cycle must plan (new users, changed
//! ones, failed ones) is kept; the unchanged are counted and dropped. Deletes are the known
//! users the read did not find, compared a page of record heads at a time. So a full read of a
//! channel without a scope by group holds the GUIDs in scope and what changed, not every entry
//! and every record. A cycle also creates the page's new users and updates its changed ones
//! while the read goes on, and `plan` plans and prints them ([`AsRead`]): neither holds the
//! directory it provisions, also when a mapping change touches every user.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use scimbridge_model::{
    Channel, ChannelKey, EffectiveSourceSettings, EntryGuid, Operation, PlannedOperation,
    ProvisioningOptions, Record, RecordStatus, SourceEntry,
};

use super::CycleError;
use super::plan::map_candidate;
use crate::detect::{Fingerprinted, entry_fingerprint};
use crate::plan::guard::blanks_nothing;
use crate::plan::{GuidSet, plan_users};
use crate::source::{FullReadPages, SourceError, SourceGroup, record_heads_where};
use crate::state::{RecordKey, Store, StoreError};

/// Creates the new users and updates the changed ones of a full read as the read gives them,
/// a page at a time (a cycle), or plans them (`plan`).
#[async_trait]
pub(super) trait AsRead: Send + Sync {
    /// The groups of the read, before its first page, where the source has them by then: new
    /// groups may be created ahead for the users' Bulk requests to fill.
    async fn groups(&self, groups: &[SourceGroup]) -> Result<(), CycleError>;

    /// Plans what it can of a page's new users (no record, nothing unsettled) and queues them to
    /// be applied; returns the rest, which the cycle's plan takes.
    async fn create(&self, new_users: Vec<Fingerprinted>)
    -> Result<Vec<Fingerprinted>, CycleError>;

    /// Plans a page's changed users (settled, provisioned, with a record: see
    /// [`updates_as_read`]) and queues what is safe before the read is over; returns the rest,
    /// which the cycle's plan takes.
    async fn update(&self, changed: Vec<Fingerprinted>) -> Result<Vec<Fingerprinted>, CycleError>;

    /// Waits until every page given is applied, once the read is over; the error of a page
    /// that failed. The plan goes on from there: the users created have their records.
    async fn finish(&self) -> Result<(), CycleError>;

    /// How many users it has created: the guard does not count them among those the channel
    /// had in the target.
    fn created(&self) -> u64;

    /// How many changed users it found unchanged after all (a refresh: nothing to send, the
    /// record brought up to date): the plan counts them among its unchanged.
    fn refreshed(&self) -> u64;

    /// The (DN, GUID) of the users it planned that have no record (`plan`'s), for the groups'
    /// members to resolve to; taken once.
    fn unsaved_users(&self) -> Vec<(String, EntryGuid)>;

    /// The DN of the entry whose planned create took `name` (lower-cased) and has no record
    /// (`plan`'s): the rest of the plan cannot give the name to another user.
    fn name_taken_by(&self, name: &str) -> Option<String>;
}

/// Compares each page of a full read with its records as the read goes (see the module).
pub(super) struct DetectedPages<'a> {
    store: &'a dyn Store,
    key: &'a ChannelKey,
    /// The channel's fingerprint, of which each entry's is made.
    fingerprint: &'a str,
    /// Users whose last operation was sent and never settled: planned again, changed or not.
    unsettled: HashSet<&'a str>,
    /// Creates new users and updates changed ones as the read goes (a cycle), or plans them
    /// (`plan`); `None`: keeps them.
    as_read: Option<&'a dyn AsRead>,
    found: Mutex<Found>,
    /// Why creating or updating a page's users stopped the read.
    stopped: Mutex<Option<CycleError>>,
}

/// What the pages of a full read found, besides the users kept.
#[derive(Debug, Default)]
pub(super) struct Found {
    /// Every user in scope (keyed), kept or not.
    pub in_scope: GuidSet,
    /// Users unchanged since their record was settled: not kept.
    pub unchanged: u64,
    /// The records of the users kept that have one, without images.
    pub heads: Vec<Record>,
}

impl<'a> DetectedPages<'a> {
    pub(super) fn new(
        store: &'a dyn Store,
        key: &'a ChannelKey,
        fingerprint: &'a str,
        unsettled: HashSet<&'a str>,
        as_read: Option<&'a dyn AsRead>,
    ) -> DetectedPages<'a> {
        DetectedPages {
            store,
            key,
            fingerprint,
            unsettled,
            as_read,
            found: Mutex::new(Found::default()),
            stopped: Mutex::new(None),
        }
    }

    pub(super) fn found(self) -> Found {
        self.found
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Why creating new users stopped the read, if it did: the cycle stops with it.
    pub(super) fn stopped_by(&self) -> Option<CycleError> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Whether an entry with this fingerprint is as its record was settled: not failed,
    /// nothing unsettled, the same fingerprint.
    fn unchanged(&self, fingerprint: &str, record: Option<&Record>) -> bool {
        record.is_some_and(|record| {
            record.status != RecordStatus::Failed
                && !self.unsettled.contains(record.guid.as_str())
                && record.source_fingerprint.as_deref() == Some(fingerprint)
        })
    }

    /// Creates the new users of a page when the cycle does (see [`AsRead`]); returns
    /// those left to the plan.
    async fn create(&self, new_users: Vec<Fingerprinted>) -> Result<Vec<SourceEntry>, SourceError> {
        let Some(as_read) = self.as_read.filter(|_| !new_users.is_empty()) else {
            return Ok(new_users.into_iter().map(|u| u.entry).collect());
        };
        match as_read.create(new_users).await {
            Ok(rest) => Ok(rest.into_iter().map(|u| u.entry).collect()),
            Err(error) => Err(self.stop(error)),
        }
    }

    /// Whether the changed user of this record is handed to [`AsRead::update`]: its record is
    /// settled (nothing unsettled, not failed), provisioned and in the source location last
    /// time. A user coming back, disabled or failed is left to the plan, as it was.
    fn may_update_as_read(&self, record: &Record) -> bool {
        self.as_read.is_some()
            && record.status == RecordStatus::Provisioned
            && record.source_fingerprint.is_some()
            && !self.unsettled.contains(record.guid.as_str())
    }

    /// Updates the changed users of a page when the cycle does; returns those left to the plan.
    async fn update(&self, changed: Vec<Fingerprinted>) -> Result<Vec<Fingerprinted>, SourceError> {
        let Some(as_read) = self.as_read.filter(|_| !changed.is_empty()) else {
            return Ok(changed);
        };
        as_read
            .update(changed)
            .await
            .map_err(|error| self.stop(error))
    }

    /// Keeps why the cycle's work stopped the read, and stops it.
    fn stop(&self, error: CycleError) -> SourceError {
        let reason = crate::state::full_message(&error);
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        SourceError::Stopped { reason }
    }
}

#[async_trait]
impl FullReadPages for DetectedPages<'_> {
    async fn groups(&self, groups: &[SourceGroup]) -> Result<(), SourceError> {
        match self.as_read {
            Some(as_read) => as_read.groups(groups).await.map_err(|e| self.stop(e)),
            None => Ok(()),
        }
    }

    async fn keep(&self, page: Vec<SourceEntry>) -> Result<Vec<SourceEntry>, SourceError> {
        let guids: Vec<EntryGuid> = page.iter().map(|u| u.guid.clone()).collect();
        let records = self
            .store
            .record_heads_with(self.key, RecordKey::Guids(&guids))
            .await?;
        let records: HashMap<&EntryGuid, &Record> = records.iter().map(|r| (&r.guid, r)).collect();
        let mut kept = Vec::new();
        let mut new_users = Vec::new();
        let mut changed = Vec::new();
        let mut changed_heads = HashMap::new();
        {
            let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
            for entry in page {
                if !found.in_scope.insert(&entry.guid) {
                    // Two entries with one GUID: the first wins; the directory is inconsistent.
                    tracing::warn!(channel = %self.key, guid = %entry.guid, dn = %entry.dn, "entry GUID appears twice; the second entry is ignored");
                    continue;
                }
                let record = records.get(&entry.guid).copied();
                // A new user is created (or planned) now, unless an operation sent for it was
                // never settled: it is checked in the target first, planned whole.
                let created_now = record.is_none()
                    && self.as_read.is_some()
                    && !self.unsettled.contains(entry.guid.as_str());
                if record.is_none() && !created_now {
                    kept.push(entry);
                    continue;
                }
                let fingerprint = entry_fingerprint(self.fingerprint, &entry);
                if self.unchanged(&fingerprint, record) {
                    found.unchanged += 1;
                    continue;
                }
                match record {
                    Some(record) if self.may_update_as_read(record) => {
                        changed_heads.insert(entry.guid.clone(), record.clone());
                        changed.push(Fingerprinted { entry, fingerprint });
                    }
                    Some(record) => {
                        found.heads.push(record.clone());
                        kept.push(entry);
                    }
                    None => new_users.push(Fingerprinted { entry, fingerprint }),
                }
            }
        }
        kept.extend(self.create(new_users).await?);
        let left = self.update(changed).await?;
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        for user in left {
            found.heads.extend(changed_heads.remove(&user.entry.guid));
            kept.push(user.entry);
        }
        Ok(kept)
    }
}

/// What of a page's changed users a full read updates (or `plan` shows) as it reads them, with
/// the whole records they are applied from: the updates that keep the user's userName and blank
/// no attribute, and the refreshes (nothing to send). Neither is anything the mass-change guard
/// weighs, nor a name two users could want. The rest (renames, blanking updates, disables) is
/// left to the cycle's plan, which holds them until the read is over and weighs them together.
#[derive(Debug, Default)]
pub(super) struct UpdatesAsRead {
    pub operations: Vec<PlannedOperation>,
    pub records: Vec<Record>,
    /// The users left to the plan, by GUID.
    pub left: HashSet<EntryGuid>,
}

/// Maps and plans a page's changed users against their whole records (see [`UpdatesAsRead`]).
pub(super) async fn updates_as_read(
    store: &dyn Store,
    key: &ChannelKey,
    channel: &Channel,
    settings: &EffectiveSourceSettings,
    options: &ProvisioningOptions,
    changed: &[Fingerprinted],
) -> Result<UpdatesAsRead, CycleError> {
    let guids: Vec<EntryGuid> = changed.iter().map(|u| u.entry.guid.clone()).collect();
    let mut records: HashMap<EntryGuid, Record> = store
        .records_by_guid(key, &guids)
        .await?
        .into_iter()
        .map(|r| (r.guid.clone(), r))
        .collect();
    let candidates = changed
        .iter()
        .map(|user| map_candidate(user.clone(), channel, settings, &records))
        .collect();
    let plan = plan_users(candidates, Vec::new(), &records, options, 0);
    let mut updates = UpdatesAsRead::default();
    for op in plan.operations {
        let safe = match &op.operation {
            Operation::Refresh => true,
            Operation::Update { image, .. } => records.get(&op.guid).is_some_and(|record| {
                record.user_name == op.user_name && blanks_nothing(record, image)
            }),
            _ => false,
        };
        match safe {
            true => updates.operations.push(op),
            false => {
                updates.left.insert(op.guid);
            }
        }
    }
    updates.records = updates
        .operations
        .iter()
        .filter_map(|op| records.remove(&op.guid))
        .collect();
    Ok(updates)
}

/// The records of users the channel knows (in the source location, or failed) that are not in
/// `in_scope`: those a full read did not find. Read a page of heads at a time.
pub(super) async fn absent(
    store: &dyn Store,
    key: &ChannelKey,
    in_scope: &GuidSet,
) -> Result<Vec<Record>, StoreError> {
    record_heads_where(store, key, |r| {
        let known = r.source_fingerprint.is_some() || r.status == RecordStatus::Failed;
        (known && !in_scope.contains(&r.guid)).then_some(r)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::state::RecordStore;
    use scimbridge_model::AttributeValue;

    const CHANNEL_FINGERPRINT: &str = "channel";

    fn entry(guid: &str, title: &str) -> SourceEntry {
        SourceEntry {
            dn: format!("uid={guid},ou=people,dc=example,dc=com"),
            guid: guid.into(),
            attributes: [("title".to_owned(), vec![AttributeValue::Text(title.into())])].into(),
        }
    }

    /// The record of `entry` as a cycle settled it, with `status`.
    fn settled(entry: &SourceEntry, status: RecordStatus) -> Record {
        let mut record = scimbridge_testkit::store_conformance::record(entry.guid.as_str(), status);
        record.source_fingerprint = Some(entry_fingerprint(CHANNEL_FINGERPRINT, entry));
        record
    }

    fn guids(entries: &[SourceEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.guid.as_str()).collect()
    }

    /// Page by page, the users kept are those to plan: new, changed, failed, or with an
    /// operation never settled; the unchanged are counted; a second entry with a GUID already
    /// read is dropped. The users gone are the known ones not read, found a page of record
    /// heads at a time.
    #[tokio::test]
    async fn a_full_read_keeps_what_changed_page_by_page_and_finds_who_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = scimbridge_store::SqliteStore::open(&dir.path().join("state.db"))
            .await
            .unwrap();
        let key = ChannelKey::new("app", "staff");
        let same: Vec<SourceEntry> = (0..5).map(|i| entry(&format!("u{i}"), "clerk")).collect();
        let changed = entry("changed", "manager");
        let failed = entry("failed", "clerk");
        let unsettled = entry("unsettled", "clerk");
        let mut records: Vec<Record> = same
            .iter()
            .chain([&failed, &unsettled])
            .map(|e| settled(e, RecordStatus::Provisioned))
            .collect();
        records.push(settled(
            &entry("changed", "clerk"),
            RecordStatus::Provisioned,
        ));
        records[5].status = RecordStatus::Failed;
        records.push(settled(&entry("gone", "clerk"), RecordStatus::Provisioned));
        records.push(settled(
            &entry("gone-failed", "clerk"),
            RecordStatus::Failed,
        ));
        // A leaver disabled long ago has no entry and is no longer a known user.
        let mut leaver = settled(&entry("leaver", "clerk"), RecordStatus::Disabled);
        leaver.source_fingerprint = None;
        records.push(leaver);
        for record in &records {
            store.save_record(&key, record).await.unwrap();
        }

        let pages = DetectedPages::new(
            &store,
            &key,
            CHANNEL_FINGERPRINT,
            ["unsettled"].into_iter().collect(),
            None,
        );
        let first = vec![
            same[0].clone(),
            changed.clone(),
            entry("hire", "clerk"),
            same[1].clone(),
        ];
        let kept = pages.keep(first).await.unwrap();
        assert_eq!(guids(&kept), ["changed", "hire"]);
        let mut twin = entry("u0", "clerk");
        twin.dn = "uid=twin,ou=people,dc=example,dc=com".into();
        let second = vec![
            same[2].clone(),
            failed.clone(),
            same[3].clone(),
            twin,
            unsettled.clone(),
            same[4].clone(),
        ];
        let kept = pages.keep(second).await.unwrap();
        assert_eq!(guids(&kept), ["failed", "unsettled"]);

        let found = pages.found();
        assert_eq!(found.unchanged, 5);
        let in_scope = [
            "changed",
            "failed",
            "hire",
            "u0",
            "u1",
            "u2",
            "u3",
            "u4",
            "unsettled",
        ];
        assert_eq!(found.in_scope.len(), in_scope.len());
        assert!(
            in_scope
                .iter()
                .all(|g| found.in_scope.contains(&(*g).into()))
        );
        let heads: Vec<&str> = found.heads.iter().map(|r| r.guid.as_str()).collect();
        assert_eq!(heads, ["changed", "failed", "unsettled"]);
        assert!(found.heads.iter().all(|r| r.applied_image.is_none()));

        let gone = absent(&store, &key, &found.in_scope).await.unwrap();
        let gone: Vec<&str> = gone.iter().map(|r| r.guid.as_str()).collect();
        assert_eq!(gone, ["gone", "gone-failed"]);
    }
}
