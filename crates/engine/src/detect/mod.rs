//! Stage 2, detect: compares the scanned entries with the stored records. Pure.
//!
//! An entry is *modified* when its fingerprint changed since its record was settled. The
//! fingerprint covers the entry (DN and every attribute) and the channel's settings, so a change
//! to the attribute mapping or the provisioning options re-evaluates every entry once.

use std::collections::{BTreeMap, HashMap, HashSet};

use scimbridge_model::{
    AttributeValue, Channel, EffectiveSourceSettings, EntryGuid, EpochMs, ProvisioningOptions,
    Record, RecordStatus, SourceEntry,
};
use sha2::{Digest, Sha256};

/// An entry together with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprinted {
    pub entry: SourceEntry,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Entries without a record.
    pub added: Vec<Fingerprinted>,
    /// Entries whose fingerprint changed, or whose last attempt failed.
    pub modified: Vec<Fingerprinted>,
    pub unchanged: u64,
    /// Records whose entry is no longer in the source location and that still need handling.
    pub removed: Vec<Record>,
}

/// Fingerprint of the settings that shape a channel's output.
pub fn channel_fingerprint(
    options: &ProvisioningOptions,
    channel: &Channel,
    source_settings: &EffectiveSourceSettings,
) -> String {
    let settings = serde_json::json!({
        "options": options,
        "source_settings": source_settings,
        "source_location": channel.source_location,
        "attribute_mapping": channel.attribute_mapping,
        "extension_mapping": channel.extension_mapping,
        "data_store": channel.data_store,
    });
    hex::encode(Sha256::digest(settings.to_string().as_bytes()))
}

pub fn entry_fingerprint(channel_fingerprint: &str, entry: &SourceEntry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel_fingerprint.as_bytes());
    hasher.update([0]);
    hasher.update(entry.dn.as_bytes());
    for (name, values) in &entry.attributes {
        hasher.update([1]);
        hasher.update(name.as_bytes());
        // Value order carries no meaning in LDAP.
        let mut sorted: Vec<&AttributeValue> = values.iter().collect();
        sorted.sort();
        for value in sorted {
            match value {
                AttributeValue::Text(text) => {
                    hasher.update([2]);
                    hasher.update((text.len() as u64).to_le_bytes());
                    hasher.update(text.as_bytes());
                }
                AttributeValue::Binary(bytes) => {
                    hasher.update([3]);
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
            }
        }
    }
    hex::encode(hasher.finalize())
}

pub fn detect(entries: Vec<SourceEntry>, records: &[Record], channel_fingerprint: &str) -> Changes {
    let by_guid: BTreeMap<&str, &Record> = records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let mut seen: HashSet<EntryGuid> = HashSet::with_capacity(entries.len());
    let mut changes = Changes::default();
    for entry in entries {
        if !seen.insert(entry.guid.clone()) {
            // Two entries with one GUID: the first wins; the directory is inconsistent.
            continue;
        }
        let fingerprint = entry_fingerprint(channel_fingerprint, &entry);
        let item = Fingerprinted { entry, fingerprint };
        match by_guid.get(item.entry.guid.as_str()) {
            None => changes.added.push(item),
            Some(record)
                if record.status == RecordStatus::Failed
                    || record.source_fingerprint.as_deref() != Some(item.fingerprint.as_str()) =>
            {
                changes.modified.push(item)
            }
            Some(_) => changes.unchanged += 1,
        }
    }
    for record in records {
        let needs_handling =
            record.source_fingerprint.is_some() || record.status == RecordStatus::Failed;
        if !seen.contains(&record.guid) && needs_handling {
            changes.removed.push(record.clone());
        }
    }
    changes
}

/// Like [`detect`], after an incremental read: `entries` are only the changed entries, and the
/// records that are gone are named by `removed_guids`; every other record is unchanged.
pub fn detect_incremental(
    entries: Vec<SourceEntry>,
    removed_guids: &[EntryGuid],
    records: &[Record],
    channel_fingerprint: &str,
) -> Changes {
    let removed: HashSet<&EntryGuid> = removed_guids.iter().collect();
    let changed: HashSet<EntryGuid> = entries.iter().map(|e| e.guid.clone()).collect();
    let mut changes = detect(entries, &[], channel_fingerprint);
    let by_guid: BTreeMap<&str, &Record> = records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let (mut added, mut modified) = (Vec::new(), Vec::new());
    for item in changes.added.drain(..) {
        match by_guid.get(item.entry.guid.as_str()) {
            None => added.push(item),
            Some(record)
                if record.status == RecordStatus::Failed
                    || record.source_fingerprint.as_deref() != Some(item.fingerprint.as_str()) =>
            {
                modified.push(item)
            }
            Some(_) => changes.unchanged += 1,
        }
    }
    changes.added = added;
    changes.modified = modified;
    for record in records {
        let needs_handling =
            record.source_fingerprint.is_some() || record.status == RecordStatus::Failed;
        if changed.contains(&record.guid) {
            continue;
        }
        if removed.contains(&record.guid) && needs_handling {
            changes.removed.push(record.clone());
        } else if needs_handling && record.status != RecordStatus::Failed {
            // A failed record the read did not return is waiting for its retry, not unchanged.
            changes.unchanged += 1;
        }
    }
    changes
}

/// Leaves out of the changes the failed records whose retry backoff has not run out at `now_ms`
/// (unless their entry changed since the failed attempt), and returns how many.
pub fn defer_retries(changes: &mut Changes, records: &[Record], now_ms: EpochMs) -> u64 {
    let waiting: HashMap<&str, &Record> = records
        .iter()
        .filter(|r| r.status == RecordStatus::Failed && r.retry_after_ms.is_some())
        .map(|r| (r.guid.as_str(), r))
        .collect();
    if waiting.is_empty() {
        return 0;
    }
    let before = changes.modified.len() + changes.removed.len();
    changes.modified.retain(|item| {
        waiting
            .get(item.entry.guid.as_str())
            .is_none_or(|r| r.retry_due(Some(&item.fingerprint), now_ms))
    });
    changes.removed.retain(|removed| {
        waiting
            .get(removed.guid.as_str())
            .is_none_or(|r| r.retry_due(None, now_ms))
    });
    (before - changes.modified.len() - changes.removed.len()) as u64
}

/// GUIDs that appear more than once in a scan, to report them.
pub fn duplicate_guids(entries: &[SourceEntry]) -> Vec<(EntryGuid, String)> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter(|e| !seen.insert(e.guid.as_str()))
        .map(|e| (e.guid.clone(), e.dn.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guid: &str, title: &str) -> SourceEntry {
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "uid".to_owned(),
            vec![AttributeValue::Text(guid.to_owned())],
        );
        attributes.insert(
            "title".to_owned(),
            vec![AttributeValue::Text(title.to_owned())],
        );
        SourceEntry {
            dn: format!("uid={guid},dc=x"),
            guid: guid.into(),
            attributes,
        }
    }

    fn record(entry: &SourceEntry, status: RecordStatus) -> Record {
        Record {
            guid: entry.guid.clone(),
            dn: entry.dn.clone(),
            user_name: None,
            target_id: Some(format!("t-{}", entry.guid).into()),
            source_fingerprint: Some(entry_fingerprint("c", entry)),
            applied_image: None,
            target_version: None,
            status,
            last_error: None,
            attempts: 0,
            retry_after_ms: None,
            failed_fingerprint: None,
        }
    }

    #[test]
    fn classifies_added_modified_unchanged_removed() {
        let same = entry("same", "Engineer");
        let changed_before = entry("changed", "Engineer");
        let failed = entry("failed", "Engineer");
        let gone = entry("gone", "Engineer");
        let records = vec![
            record(&same, RecordStatus::Provisioned),
            record(&changed_before, RecordStatus::Provisioned),
            record(&failed, RecordStatus::Failed),
            record(&gone, RecordStatus::Provisioned),
        ];
        let entries = vec![
            same,
            entry("changed", "Manager"),
            failed,
            entry("new", "Intern"),
        ];
        let changes = detect(entries, &records, "c");
        let guids = |items: &[Fingerprinted]| {
            items
                .iter()
                .map(|i| i.entry.guid.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(guids(&changes.added), ["new"]);
        assert_eq!(guids(&changes.modified), ["changed", "failed"]);
        assert_eq!(changes.unchanged, 1);
        assert_eq!(
            changes
                .removed
                .iter()
                .map(|r| r.guid.as_str())
                .collect::<Vec<_>>(),
            ["gone"]
        );
    }

    #[test]
    fn a_settled_leaver_is_not_reported_again() {
        let gone = entry("gone", "x");
        let mut settled = record(&gone, RecordStatus::Disabled);
        settled.source_fingerprint = None;
        assert!(detect(vec![], &[settled], "c").removed.is_empty());
    }

    #[test]
    fn a_failed_record_waits_for_its_backoff_unless_its_entry_changed() {
        let waiting = entry("waiting", "Engineer");
        let edited = entry("edited", "Engineer");
        let due = entry("due", "Engineer");
        let leaver = entry("leaver", "Engineer");
        let failed = |e: &SourceEntry, retry_after_ms: i64| Record {
            retry_after_ms: Some(EpochMs::from_millis(retry_after_ms)),
            failed_fingerprint: Some(entry_fingerprint("c", e)),
            attempts: 3,
            ..record(e, RecordStatus::Failed)
        };
        let records = vec![
            failed(&waiting, 2_000),
            failed(&edited, 2_000),
            failed(&due, 1_000),
            Record {
                failed_fingerprint: None,
                ..failed(&leaver, 2_000)
            },
        ];
        let entries = vec![waiting, entry("edited", "Manager"), due];
        let mut changes = detect(entries, &records, "c");
        assert_eq!(changes.modified.len(), 3);
        assert_eq!(changes.removed.len(), 1);

        assert_eq!(
            defer_retries(&mut changes, &records, EpochMs::from_millis(1_000)),
            2
        );
        let modified: Vec<&str> = changes
            .modified
            .iter()
            .map(|i| i.entry.guid.as_str())
            .collect();
        assert_eq!(modified, ["edited", "due"]);
        assert!(changes.removed.is_empty());
    }

    #[test]
    fn backoff_starts_with_the_next_cycle_and_stops_growing_at_an_hour() {
        use scimbridge_model::retry_backoff_ms;
        let minutes: Vec<Option<i64>> = (0..12)
            .map(|n| retry_backoff_ms(n).map(|ms| ms / 60_000))
            .collect();
        assert_eq!(
            minutes,
            [
                None,
                None,
                Some(1),
                Some(2),
                Some(4),
                Some(8),
                Some(16),
                Some(32),
                Some(60),
                Some(60),
                Some(60),
                Some(60)
            ]
        );
    }

    #[test]
    fn channel_settings_are_part_of_the_fingerprint() {
        let e = entry("a", "x");
        assert_ne!(entry_fingerprint("c1", &e), entry_fingerprint("c2", &e));
        let mut reordered = e.clone();
        reordered.attributes.insert(
            "mail".into(),
            vec![
                AttributeValue::Text("b".into()),
                AttributeValue::Text("a".into()),
            ],
        );
        let mut other = e.clone();
        other.attributes.insert(
            "mail".into(),
            vec![
                AttributeValue::Text("a".into()),
                AttributeValue::Text("b".into()),
            ],
        );
        assert_eq!(
            entry_fingerprint("c", &reordered),
            entry_fingerprint("c", &other)
        );
    }
}
