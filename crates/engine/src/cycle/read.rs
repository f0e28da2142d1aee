//! Reading the channel's data store: fully, or from where the last cycle's read stopped.

use std::path::Path;

use scimbridge_model::{
    ChangeDetection, Channel, DataStore, DataStoreType, EffectiveSourceSettings, Record,
    RecordStatus, SyncState,
};

use super::CycleError;
use crate::map::mapped_attributes;
use crate::source::ldap::{self, KnownUser};
use crate::source::{SourceScan, ldif};

/// How a channel's data store was read, and where the next incremental read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRead {
    /// The change detection used: `full-scan` for LDIF files.
    pub mechanism: ChangeDetection,
    /// Whether every entry was read (the first read, a full reconciliation, new settings).
    pub full: bool,
    /// Saved once the cycle has been applied; `None` when the next read must be a full one.
    pub next_state: Option<SyncState>,
}

impl SourceRead {
    /// "content-sync, incremental" and the like, for logs and `plan`.
    pub fn describe(&self) -> String {
        format!(
            "{}, {}",
            self.mechanism.name(),
            if self.full {
                "full read"
            } else {
                "incremental"
            }
        )
    }
}

/// Whether the next read may continue from the stored state: the channel settings are the
/// ones it was taken under, and no full reconciliation is due (`hours` 0: never due).
pub fn incremental_allowed(state: &SyncState, fingerprint: &str, hours: u32, now_ms: i64) -> bool {
    let reconciliation_ms = i64::from(hours) * 3_600_000;
    state.settings_fingerprint == fingerprint
        && (reconciliation_ms == 0 || now_ms - state.last_full_read_ms < reconciliation_ms)
}

/// Reads the channel's data store: incrementally when `previous` allows it. `records` are the
/// channel's records (heads), whose GUIDs an incremental read checks.
pub(super) async fn read_source(
    channel: &Channel,
    data_store: &DataStore,
    settings: &EffectiveSourceSettings,
    fingerprint: &str,
    records: &[Record],
    previous: Option<&SyncState>,
    now_ms: i64,
) -> Result<(SourceScan, SourceRead), CycleError> {
    if channel.data_store != data_store.name {
        return Err(CycleError::UnknownDataStore {
            channel: channel.name.clone(),
            data_store: channel.data_store.clone(),
        });
    }
    match data_store.store_type {
        DataStoreType::Ldif => {
            let path = data_store.path.as_deref().unwrap_or_default();
            // The file read by the last cycle that was applied, to recognise this one cut short.
            let last_read = previous
                .filter(|state| state.mechanism == ChangeDetection::FullScan.name())
                .and_then(|state| ldif::FileSignature::decode(&state.cursor));
            let provisioned = records.iter().any(|r| r.target_id.is_some());
            let file = ldif::read_file(
                &data_store.name,
                Path::new(path),
                settings,
                &channel.source_location,
                last_read.as_ref(),
                provisioned,
            )
            .await?;
            let read = SourceRead {
                mechanism: ChangeDetection::FullScan,
                full: true,
                next_state: Some(SyncState {
                    mechanism: ChangeDetection::FullScan.name().to_owned(),
                    cursor: file.signature.encode(),
                    settings_fingerprint: fingerprint.to_owned(),
                    last_full_read_ms: now_ms,
                }),
            };
            Ok((file.scan, read))
        }
        DataStoreType::Ldap => {
            // A cursor belongs to the directory it was taken from: other hosts, a full read.
            let hosts = data_store
                .ldap
                .as_ref()
                .map(|l| l.urls().join(" "))
                .unwrap_or_default();
            let fingerprint = &format!("{fingerprint} {hosts}");
            let previous = previous.filter(|state| {
                incremental_allowed(
                    state,
                    fingerprint,
                    settings.full_reconciliation_hours,
                    now_ms,
                )
            });
            let known: Vec<KnownUser> = records
                .iter()
                .filter(|r| r.source_fingerprint.is_some() || r.status == RecordStatus::Failed)
                .map(|r| KnownUser {
                    guid: r.guid.clone(),
                    dn: r.dn.clone(),
                    // Read again when its retry is due; an entry that changed meanwhile is
                    // among the changes anyway.
                    retry: r.status == RecordStatus::Failed
                        && r.retry_after_ms.is_none_or(|after| after <= now_ms),
                })
                .collect();
            let mut client = ldap::connect(data_store).await?;
            let mapped = mapped_attributes(&channel.attribute_mapping, &channel.extension_mapping);
            let result = ldap::read(
                &mut client,
                &data_store.name,
                settings,
                &channel.source_location,
                &mapped,
                previous,
                &known,
            )
            .await;
            client.close().await;
            let read = result?;
            let full = read.scan.complete;
            let next_state = SyncState {
                mechanism: read.mechanism.name().to_owned(),
                cursor: read.cursor,
                settings_fingerprint: fingerprint.to_owned(),
                last_full_read_ms: match previous {
                    Some(state) if !full => state.last_full_read_ms,
                    _ => now_ms,
                },
            };
            let source_read = SourceRead {
                mechanism: read.mechanism,
                full,
                next_state: (!next_state.cursor.is_empty()).then_some(next_state),
            };
            Ok((read.scan, source_read))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_full_read_after_new_settings_or_when_reconciliation_is_due() {
        let hour = 3_600_000;
        let state = SyncState {
            mechanism: "content-sync".into(),
            cursor: "c".into(),
            settings_fingerprint: "f1".into(),
            last_full_read_ms: 10 * hour,
        };
        assert!(incremental_allowed(&state, "f1", 24, 33 * hour));
        assert!(!incremental_allowed(&state, "f1", 24, 34 * hour));
        assert!(!incremental_allowed(&state, "f2", 24, 11 * hour));
        assert!(incremental_allowed(&state, "f1", 0, 1000 * hour));
    }
}
