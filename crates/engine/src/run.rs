//! One cycle of one channel: source → detect → map → plan → apply → state.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use scimbridge_model::{
    AuditEvent, ChangeDetection, Channel, ChannelKey, Connection, CycleSummary, DataStore,
    DataStoreType, DesiredGroup, EffectiveSourceSettings, GroupOperation, GroupRecord,
    HeldOperation, JournalEntry, Operation, Plan, PlannedGroupOperation, PlannedOperation, Record,
    RecordStatus, SyncState, retry_backoff_ms,
};

use crate::apply::groups::{AppliedGroup, GroupOutcome, GroupSettings, apply_group_operation};
use crate::apply::{Outcome, Owners, ScimClient, ScimClientError, apply_operation, bulk};
use crate::audit::AuditContext;
use crate::clock::Clock;
use crate::detect::{
    Fingerprinted, channel_fingerprint, defer_retries, detect, detect_incremental, duplicate_guids,
};
use crate::latency::Histogram;
use crate::map::fields::keep_create_only;
use crate::map::{map_user, mapped_attributes};
use crate::plan::groups::{Members, desired_groups, plan_groups};
use crate::plan::guard::{Approvals, GuardInput, guard_groups, guard_users};
use crate::plan::{Candidate, plan_users, protect_shared_targets, refuse_shared_user_names};
use crate::source::ldap::{self, KnownUser};
use crate::source::{SourceError, SourceScan, ldif, normalize_dn};
use crate::state::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Target(#[from] ScimClientError),
    /// The cycle was stopped to protect the target (nothing was deprovisioned).
    #[error("cycle stopped: {0}")]
    Refused(String),
    #[error("channel {channel}: data store \"{data_store}\" does not exist")]
    UnknownDataStore { channel: String, data_store: String },
}

/// Told about the cycle as it goes, for progress bars.
pub trait Progress: Send + Sync {
    /// `operations` is the number of operations that write to the target.
    fn begin(&self, _channel: &ChannelKey, _operations: u64) {}
    fn advance(&self, _operation: &PlannedOperation, _outcome: &Outcome) {}
    fn end(&self) {}
    /// Asked before each operation is sent: `true` (a service shutting down) sends nothing
    /// more; operations in flight finish and settle, and the next cycle sends the rest.
    fn should_stop(&self) -> bool {
        false
    }
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    pub channel: ChannelKey,
    pub cycle_id: i64,
    pub summary: CycleSummary,
    pub duration_ms: i64,
    /// Label and reason of each record that failed.
    pub failures: Vec<(String, String)>,
    /// How the data store was read: "content-sync, incremental" and the like.
    pub source: String,
    /// The cycle's provisioning events, also saved in the state store.
    pub events: Vec<AuditEvent>,
    /// How long the target took to answer the cycle's requests.
    pub request_latency: Histogram,
    /// Operations left undone because the cycle was told to stop, or because the target was
    /// found down; the next cycle does them.
    pub not_sent: u64,
    /// Why the target was found down (no connection, credentials refused, errors to
    /// everything): the cycle stopped there and counted those operations against no record.
    pub outage: Option<String>,
}

/// What applying a channel's plan gave.
struct Applied {
    summary: CycleSummary,
    failures: Vec<(String, String)>,
    source: String,
    events: Vec<AuditEvent>,
    request_latency: Histogram,
    not_sent: u64,
    outage: Option<String>,
}

/// A channel's plan with what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPlan {
    /// User operations, then group operations as they look before the users are applied.
    pub plan: Plan,
    /// The whole records of the entries the plan touches.
    pub records: Vec<Record>,
    pub desired_groups: Vec<DesiredGroup>,
    pub group_records: Vec<GroupRecord>,
    /// Group entries in scope that cannot be keyed: (DN, reason).
    pub group_failures: Vec<(String, String)>,
    /// How the data store was read.
    pub read: SourceRead,
    /// Operations an interrupted cycle sent and never settled; this plan tries them again.
    pub unsettled: Vec<JournalEntry>,
    /// GUIDs of the users in the source location now.
    pub in_scope: HashSet<String>,
    /// Held operations an operator approved.
    pub approved: Approvals,
    /// Why the read may be incomplete (see `SourceScan::suspect`).
    pub suspect_read: Option<String>,
    /// Target id → the entry each target user belongs to.
    pub links: HashMap<String, crate::apply::Link>,
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

/// Reads the channel's data store and computes the plan, writing nothing. `now_ms` decides
/// whether a full reconciliation is due.
pub async fn plan_channel(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    now_ms: i64,
) -> Result<ChannelPlan, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let fingerprint = channel_fingerprint(&connection.options, channel, &settings);
    // Every record without its image; whole records only for the entries that need planning.
    let mut heads = store.record_heads(&key).await?;
    let unsettled = store.unsettled_operations(&key).await?;
    let unsettled_by_guid: HashMap<&str, &JournalEntry> =
        unsettled.iter().map(|e| (e.guid.as_str(), e)).collect();
    outcome_unknown(&mut heads, &unsettled_by_guid);
    let previous = store.sync_state(&key).await?;
    let (scan, read) = read_source(
        channel,
        data_store,
        &settings,
        &fingerprint,
        &heads,
        previous.as_ref(),
        now_ms,
    )
    .await?;
    let provisioned = heads.iter().filter(|r| r.target_id.is_some()).count();
    refuse_to_empty_the_target(&scan, &heads, provisioned, channel, data_store)?;
    let group_records = store.group_records(&key).await?;
    let provisioned_groups = group_records
        .iter()
        .filter(|r| r.target_id.is_some())
        .count();
    if let Some(group_base_dn) = &channel.source_location.group_base_dn
        && scan.groups.is_empty()
        && provisioned_groups > 0
    {
        return Err(CycleError::Refused(format!(
            "data store \"{}\" returned no groups below {group_base_dn} while {provisioned_groups} are provisioned; \
             refusing to delete every group (check the data store and the source location)",
            data_store.name
        )));
    }
    let users_by_dn: Vec<(&str, &str)> = scan
        .users
        .iter()
        .map(|u| (u.dn.as_str(), u.guid.as_str()))
        .chain(
            scan.unchanged_users
                .iter()
                .map(|(dn, guid)| (dn.as_str(), guid.as_str())),
        )
        .collect();
    let in_scope: HashSet<String> = users_by_dn
        .iter()
        .map(|(_, guid)| (*guid).to_owned())
        .collect();
    let desired_groups = desired_groups(&scan.groups, &users_by_dn);
    let group_failures = scan
        .group_failures
        .iter()
        .map(|f| (f.dn.clone(), f.reason.clone()))
        .collect();
    for (guid, dn) in duplicate_guids(&scan.users) {
        tracing::warn!(channel = %key, %guid, %dn, "entry GUID appears twice; the second entry is ignored");
    }
    let suspect_read = scan.suspect.clone();
    let mut changes = if scan.complete {
        detect(scan.users, &heads, &fingerprint)
    } else {
        detect_incremental(scan.users, &scan.removed_guids, &heads, &fingerprint)
    };

    // Entries that cannot be keyed by GUID are keyed by DN so that they fail alone, on the
    // record; the record of the user at that DN is not a leaver: its entry is there, unreadable.
    let failure_keys: Vec<String> = scan
        .failures
        .iter()
        .map(|f| format!("dn:{}", normalize_dn(&f.dn)))
        .collect();
    let failure_dns: HashSet<String> = scan.failures.iter().map(|f| normalize_dn(&f.dn)).collect();
    changes
        .removed
        .retain(|r| !failure_keys.contains(&r.guid) && !failure_dns.contains(&normalize_dn(&r.dn)));
    defer_retries(&mut changes, &heads, now_ms);
    let head_guids: HashSet<&str> = heads.iter().map(|r| r.guid.as_str()).collect();
    let wanted: Vec<String> = changes
        .added
        .iter()
        .chain(&changes.modified)
        .map(|item| item.entry.guid.clone())
        .chain(changes.removed.iter().map(|r| r.guid.clone()))
        .chain(failure_keys.iter().cloned())
        .filter(|guid| head_guids.contains(guid.as_str()))
        .collect();
    // Failed records this cycle does not retry (their backoff runs, or the read did not return
    // them) wait for a later one, whatever the change detection.
    let retried: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let waiting_retry = heads
        .iter()
        .filter(|r| r.status == RecordStatus::Failed && !retried.contains(r.guid.as_str()))
        .count() as u64;
    let mut records = store.records_by_guid(&key, &wanted).await?;
    outcome_unknown(&mut records, &unsettled_by_guid);
    let by_guid: HashMap<String, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    // The leavers' whole records, image included, for the disable that replaces the user.
    for removed in &mut changes.removed {
        if let Some(whole) = by_guid.get(&removed.guid) {
            *removed = whole.clone();
        }
    }
    let mut candidates: Vec<Candidate> = changes
        .added
        .into_iter()
        .chain(changes.modified)
        .map(|item| map_candidate(item, channel, &settings, &by_guid))
        .collect();
    for (failure, key) in scan.failures.into_iter().zip(failure_keys) {
        candidates.push(Candidate {
            guid: key,
            dn: failure.dn,
            fingerprint: String::new(),
            mapped: Err(failure.reason),
        });
    }
    let mut plan = plan_users(
        candidates,
        changes.removed,
        &by_guid,
        &connection.options,
        changes.unchanged,
    );
    refuse_shared_user_names(&mut plan, &heads);
    protect_shared_targets(&mut plan, &heads, &in_scope);
    plan.waiting_retry = waiting_retry;
    for op in &mut plan.operations {
        if let Some(entry) = unsettled_by_guid.get(op.guid.as_str()) {
            op.resumed_cycle = Some(entry.cycle_id);
            op.reason = format!(
                "{} (the {} sent in cycle {} was never settled)",
                op.reason, entry.operation, entry.cycle_id
            );
        }
    }
    let approved: Approvals = store
        .held_operations(&key)
        .await?
        .into_iter()
        .filter(|h| h.approved)
        .map(|h| (h.guid, h.operation))
        .collect();
    let guard = GuardInput {
        settings: &connection.guard,
        approved: &approved,
        provisioned: active_users(&heads),
        in_scope: &in_scope,
        suspect_read: suspect_read.as_deref(),
    };
    guard_users(&mut plan, &by_guid, &guard);
    // Without a group base DN the channel leaves groups alone, including those it provisioned
    // before: taking the setting out is not a reason to delete them.
    if channel.source_location.group_base_dn.is_some() {
        let leaving: HashSet<&str> = plan
            .operations
            .iter()
            .filter(|o| {
                matches!(
                    o.operation,
                    Operation::Disable { .. } | Operation::Delete { .. }
                )
            })
            .map(|o| o.guid.as_str())
            .collect();
        let members = Members::of(&heads, &in_scope, &leaving);
        let operations = plan_groups(&desired_groups, &group_records, &members);
        (plan.group_operations, plan.held_groups) =
            guard_groups(operations, &group_records, &guard);
    }
    Ok(ChannelPlan {
        plan,
        records,
        desired_groups,
        group_records,
        group_failures,
        read,
        unsettled,
        in_scope,
        approved,
        suspect_read,
        links: crate::apply::links(&heads),
    })
}

/// The channel's users active in the target: the population of the guard's shares (leavers
/// disabled long ago do not make a mass deprovisioning look small).
fn active_users(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| r.target_id.is_some() && r.status != RecordStatus::Disabled)
        .count()
}

/// A read that would deprovision every provisioned user stops the cycle: that is a directory or
/// a source location gone wrong, not the company emptied.
fn refuse_to_empty_the_target(
    scan: &SourceScan,
    heads: &[Record],
    provisioned: usize,
    channel: &Channel,
    data_store: &DataStore,
) -> Result<(), CycleError> {
    if scan.complete && scan.users.is_empty() && provisioned > 0 {
        return Err(CycleError::Refused(format!(
            "data store \"{}\" returned no users below {} while {provisioned} are provisioned; \
             refusing to deprovision everyone (check the data store and the source location)",
            data_store.name, channel.source_location.base_dn
        )));
    }
    if !scan.complete && provisioned > 1 {
        let removed: HashSet<&str> = scan.removed_guids.iter().map(String::as_str).collect();
        let all_gone = heads
            .iter()
            .filter(|r| r.target_id.is_some())
            .all(|r| removed.contains(r.guid.as_str()));
        if all_gone {
            return Err(CycleError::Refused(format!(
                "data store \"{}\" says every one of the {provisioned} provisioned users is gone; \
                 refusing to deprovision everyone (check the data store and the source location)",
                data_store.name
            )));
        }
    }
    Ok(())
}

/// Maps a changed entry to the user the target should hold. Create-only fields keep what the
/// target was given when the user was created.
pub(crate) fn map_candidate(
    item: Fingerprinted,
    channel: &Channel,
    settings: &EffectiveSourceSettings,
    records: &HashMap<String, Record>,
) -> Candidate {
    let mut mapped = map_user(
        &item.entry,
        &channel.attribute_mapping,
        &channel.extension_mapping,
        &settings.account_status,
    );
    if let (Ok(user), Some(applied)) = (
        &mut mapped,
        records
            .get(&item.entry.guid)
            .and_then(|r| r.applied_image.as_ref()),
    ) {
        keep_create_only(
            &mut user.image,
            applied,
            &channel.attribute_mapping,
            &channel.extension_mapping,
        );
    }
    Candidate {
        mapped: mapped.map_err(|e| e.to_string()),
        guid: item.entry.guid,
        dn: item.entry.dn,
        fingerprint: item.fingerprint,
    }
}

/// A record whose last operation was sent and never settled is retried like a failed one:
/// its outcome is unknown, so the next cycle writes it again (whatever the backoff says), and
/// a create looks the user up first.
pub(crate) fn outcome_unknown(records: &mut [Record], unsettled: &HashMap<&str, &JournalEntry>) {
    for record in records {
        if let Some(entry) = unsettled.get(record.guid.as_str()) {
            record.status = RecordStatus::Failed;
            record.retry_after_ms = None;
            record.last_error = Some(format!(
                "the {} sent in cycle {} was never settled",
                entry.operation, entry.cycle_id
            ));
        }
    }
}

/// When a failed record is tried again.
pub(crate) fn schedule_retry(record: &mut Record, now_ms: i64) {
    if record.status == RecordStatus::Failed {
        record.retry_after_ms = retry_backoff_ms(record.attempts).map(|wait| now_ms + wait);
    }
}

/// How many user creates go in one Bulk request: fewer when group PATCHes ride along, so that
/// the request stays within the target's `maxOperations`.
fn user_chunk(
    capabilities: &crate::apply::Capabilities,
    rides: Option<&(bulk::GroupRides, Vec<GroupRecord>)>,
) -> usize {
    let users = bulk::chunk_size(capabilities.bulk_max_operations);
    let groups = rides.map_or(0, |(_, created)| created.len());
    match capabilities.bulk_max_operations {
        0 => users,
        max => users.min(max.saturating_sub(groups)).max(1),
    }
}

/// Creates the cycle's new groups empty with Bulk (those the target does not have already) and
/// saves their records, so that the users' Bulk requests can add the members. `None` when there
/// is nothing to ride along, or too many groups for the target's `maxOperations`.
async fn prepare_group_rides(
    store: &dyn Store,
    key: &ChannelKey,
    client: &ScimClient,
    plan: &Plan,
    desired: &[DesiredGroup],
    max_operations: usize,
    member_chunk_size: usize,
) -> Result<Option<(bulk::GroupRides, Vec<GroupRecord>)>, CycleError> {
    let new_groups: Vec<&PlannedGroupOperation> = plan
        .group_operations
        .iter()
        .filter(|g| matches!(g.operation, GroupOperation::Create { .. }))
        .collect();
    if new_groups.is_empty() || (max_operations != 0 && new_groups.len() * 2 > max_operations) {
        return Ok(None);
    }
    let mut to_create = Vec::new();
    for group in &new_groups {
        // A group the target already has is linked by the group stage, as usual.
        match client.find_group(&group.display_name).await {
            Ok(None) => to_create.push((group.guid.clone(), group.display_name.clone())),
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "group look-up failed; groups go after the users");
                return Ok(None);
            }
        }
    }
    let created = bulk::create_empty_groups(client, &to_create, max_operations).await;
    let mut records = Vec::new();
    let mut groups_of_user: HashMap<String, Vec<String>> = HashMap::new();
    for group in new_groups {
        let Some(target_id) = created.get(&group.guid) else {
            continue;
        };
        let record = GroupRecord {
            guid: group.guid.clone(),
            dn: group.dn.clone(),
            display_name: group.display_name.clone(),
            target_id: Some(target_id.clone()),
            members: Vec::new(),
            status: RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
        };
        // Saved at once: a crash before the members are recorded leaves a group the next cycle
        // fills, never a second group.
        store.save_group_record(key, &record).await?;
        if let Some(desired) = desired.iter().find(|d| d.guid == group.guid) {
            for member in &desired.member_guids {
                groups_of_user
                    .entry(member.clone())
                    .or_default()
                    .push(target_id.clone());
            }
        }
        records.push(record);
    }
    if records.is_empty() {
        return Ok(None);
    }
    Ok(Some((
        bulk::GroupRides::new(groups_of_user, member_chunk_size),
        records,
    )))
}

/// Operations applied together: one, or a chunk of creates sent with SCIM Bulk.
enum Unit<'a> {
    One(&'a PlannedOperation),
    Bulk(Vec<&'a PlannedOperation>),
}

impl<'a> Unit<'a> {
    fn operations(&self) -> Vec<&'a PlannedOperation> {
        match self {
            Unit::One(op) => vec![*op],
            Unit::Bulk(ops) => ops.clone(),
        }
    }
}

/// How many units are journaled at once, ahead of sending them.
const JOURNAL_BATCH: usize = 64;
/// How many settled operations have their journal entries closed at once.
const JOURNAL_CLOSE_BATCH: usize = 256;

/// The journal entries of the operations of these units that write to the target.
fn journal_entries(units: &[Unit], audit: &AuditContext<'_>) -> Vec<JournalEntry> {
    let now_ms = audit.clock.now_ms();
    units
        .iter()
        .flat_map(Unit::operations)
        .filter(|op| op.operation.writes_target())
        .map(|op| JournalEntry {
            guid: op.guid.clone(),
            dn: op.dn.clone(),
            label: op.label().to_owned(),
            operation: op.operation.verb().to_owned(),
            cycle_id: audit.cycle_id,
            sent_at_ms: now_ms,
        })
        .collect()
}

/// Whether the next read may continue from the stored state: the channel settings are the
/// ones it was taken under, and no full reconciliation is due (`hours` 0: never due).
pub fn incremental_allowed(state: &SyncState, fingerprint: &str, hours: u32, now_ms: i64) -> bool {
    let reconciliation_ms = i64::from(hours) * 3_600_000;
    state.settings_fingerprint == fingerprint
        && (reconciliation_ms == 0 || now_ms - state.last_full_read_ms < reconciliation_ms)
}

async fn read_source(
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

/// Runs one cycle and records it in the history. Records that fail are counted and kept with
/// their reason; a failure of the source, the target set-up or the store stops the cycle with an
/// error, and a target found down stops it with `CycleReport::outage`.
pub async fn run_cycle(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<CycleReport, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    let started = clock.now_ms();
    let cycle_id = store.begin_cycle(&key, started).await?;
    let audit = AuditContext {
        channel: &key,
        cycle_id,
        clock,
    };
    let result = run_planned(
        store, connection, channel, data_store, progress, &audit, started,
    )
    .await;
    let finished = clock.now_ms();
    match result {
        Ok(Applied {
            mut summary,
            failures,
            source,
            events,
            request_latency,
            not_sent,
            outage,
        }) => {
            summary.target_unreachable = outage.is_some();
            let stopped = match &outage {
                Some(reason) => Some(outage_text(reason, not_sent)),
                None => (not_sent > 0).then(|| {
                    format!(
                        "stopped early: {not_sent} operations not done; the next cycle does them"
                    )
                }),
            };
            store
                .end_cycle(cycle_id, finished, &summary, stopped.as_deref())
                .await?;
            Ok(CycleReport {
                channel: key,
                cycle_id,
                summary,
                duration_ms: finished - started,
                failures,
                source,
                events,
                request_latency,
                not_sent,
                outage,
            })
        }
        Err(error) => {
            let message = error.to_string();
            tracing::error!(channel = %key, error = %message, "cycle stopped");
            store
                .end_cycle(cycle_id, finished, &CycleSummary::default(), Some(&message))
                .await?;
            Err(error)
        }
    }
}

/// How a cycle that found the target down is described in the history and by `channels`.
pub fn outage_text(reason: &str, not_sent: u64) -> String {
    format!(
        "target unreachable: {reason}; {not_sent} operations not sent and counted against no \
         record: the next cycle sends them"
    )
}

/// Operations in flight that fail for a reason that may be the target's, before a probe says
/// whether the target is down (they are then nobody's failure) or the records are at fault.
const IN_DOUBT_LIMIT: usize = 3;

/// Decides, when operations keep failing for reasons that may be the target's, whether the
/// target is down: one probe request that any working target answers.
#[derive(Default)]
struct OutageWatch {
    /// Why the target was found down; once set, nothing more is sent this cycle.
    down: std::sync::OnceLock<String>,
}

impl OutageWatch {
    fn is_down(&self) -> bool {
        self.down.get().is_some()
    }

    /// Probes the target; `true` (and nothing more is sent) when it is down. `all_forbidden`:
    /// every failure in doubt was a 403, so that a 403 to the probe too means the credentials
    /// may do nothing any more (revoked scopes), not one resource refused.
    async fn target_down(&self, client: &ScimClient, all_forbidden: bool) -> bool {
        if self.is_down() {
            return true;
        }
        match client.probe().await {
            Err(e) if e.status() == Some(403) && !all_forbidden => false,
            Err(e) if e.target_unavailable() => {
                let hint = crate::apply::CheckFailure::from(e);
                tracing::error!(error = %hint, "the target is down; the cycle stops");
                let _ = self.down.set(hint.to_string());
                true
            }
            _ => false,
        }
    }

    fn reason(self) -> Option<String> {
        self.down.into_inner()
    }
}

/// What the units of a cycle gave back: the operations that were sent with what applying them
/// gave, and the GUIDs of those left unsent because the cycle was told to stop.
type UnitResult<'a> = (
    Vec<(
        &'a PlannedOperation,
        Option<&'a Record>,
        crate::apply::Applied,
    )>,
    Vec<&'a PlannedOperation>,
);

/// Runs the channel's plan against the target: the user operations, then the groups, then what
/// waits (held operations, unsettled journal entries, the cursor).
async fn run_planned(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    progress: &dyn Progress,
    audit: &AuditContext<'_>,
    now_ms: i64,
) -> Result<Applied, CycleError> {
    let key = audit.channel;
    let mut events: Vec<AuditEvent> = Vec::new();
    let ChannelPlan {
        plan,
        records,
        desired_groups,
        group_records,
        group_failures,
        read,
        unsettled,
        in_scope,
        approved,
        suspect_read,
        links,
    } = plan_channel(store, connection, channel, data_store, now_ms).await?;
    tracing::info!(channel = %key, source = %read.describe(), "data store read");
    if let Some(suspect) = &suspect_read {
        tracing::warn!(channel = %key, %suspect, "the data store read may be incomplete; what it would deprovision, clear or remove is held");
    }
    for entry in &unsettled {
        tracing::warn!(channel = %key, user = %entry.label, operation = %entry.operation, cycle = entry.cycle_id, "an interrupted cycle sent this operation and never settled it; checking the target before sending it again");
    }
    let client = ScimClient::new(&connection.target, Duration::from_secs(channel.timeout))?;
    let outage = OutageWatch::default();
    let by_guid: HashMap<&str, &Record> = records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let mut summary = CycleSummary {
        unchanged: plan.unchanged,
        waiting_retry: plan.waiting_retry,
        ..CycleSummary::default()
    };
    let mut failures = Vec::new();
    let writes = plan
        .operations
        .iter()
        .filter(|o| o.operation.writes_target())
        .count() as u64;
    progress.begin(key, writes);
    // A target user belongs to one entry: every user the channel links, and those it creates.
    let owners = Owners::new(links);
    // Creates go in SCIM Bulk requests when the target offers Bulk (and users are identified
    // by userName, so that a chunk is looked up with one filter); everything else one by one.
    let bulk = if connection.target.use_bulk
        && client.identifies_by_user_name()
        && plan
            .operations
            .iter()
            .any(|o| matches!(o.operation, Operation::Create { .. }))
    {
        client.capabilities().await.ok().filter(|c| c.bulk)
    } else {
        None
    };
    // New groups ride along: created empty first, then each Bulk request of users also adds
    // its users to their groups by bulkId.
    let rides = match &bulk {
        Some(capabilities) if channel.source_location.group_base_dn.is_some() => {
            prepare_group_rides(
                store,
                key,
                &client,
                &plan,
                &desired_groups,
                capabilities.bulk_max_operations,
                connection.target.group_member_chunk_size.max(1) as usize,
            )
            .await?
        }
        _ => None,
    };
    let units: Vec<Unit> = match &bulk {
        Some(capabilities) => {
            let (creates, others): (Vec<&PlannedOperation>, Vec<&PlannedOperation>) = plan
                .operations
                .iter()
                .partition(|o| matches!(o.operation, Operation::Create { .. }));
            others
                .into_iter()
                .map(Unit::One)
                .chain(
                    creates
                        .chunks(user_chunk(capabilities, rides.as_ref()))
                        .map(|chunk| Unit::Bulk(chunk.to_vec())),
                )
                .collect()
        }
        None => plan.operations.iter().map(Unit::One).collect(),
    };
    let max_payload_size = bulk.as_ref().map_or(0, |c| c.bulk_max_payload_size);
    // Up to max_threads units in flight over the client's one connection pool; each record is
    // saved as soon as its operation settles.
    let group_rides = rides.as_ref().map(|(r, _)| r);
    // Units journaled so far, a batch at a time ahead of sending.
    let journaled = tokio::sync::Mutex::new(0usize);
    let mut not_sent: u64 = 0;
    let mut settled = {
        stream::iter(units.iter().enumerate().map(|(index, unit)| {
            let outage = &outage;
            let client = &client;
            let by_guid = &by_guid;
            let journaled = &journaled;
            let units = &units;
            let owners = &owners;
            async move {
                if progress.should_stop() || outage.is_down() {
                    return Ok::<UnitResult, CycleError>((Vec::new(), unit.operations()));
                }
                // Journaled before anything is sent: a crash from here on leaves an operation
                // the next cycle knows to check.
                {
                    let mut journaled = journaled.lock().await;
                    if *journaled <= index {
                        let batch =
                            &units[*journaled..(*journaled + JOURNAL_BATCH).min(units.len())];
                        store
                            .journal_operations(key, &journal_entries(batch, audit))
                            .await?;
                        *journaled += batch.len();
                    }
                }
                let ops: Vec<(&PlannedOperation, Option<&Record>)> = unit
                    .operations()
                    .into_iter()
                    .map(|op| (op, by_guid.get(op.guid.as_str()).copied()))
                    .collect();
                let results = match &unit {
                    Unit::One(op) => {
                        vec![Some(
                            apply_operation(client, op, ops[0].1, &connection.options, owners)
                                .await,
                        )]
                    }
                    Unit::Bulk(_) => {
                        bulk::create_users(
                            client,
                            &ops,
                            &connection.options,
                            max_payload_size,
                            group_rides,
                            owners,
                        )
                        .await
                    }
                };
                let mut done = Vec::with_capacity(ops.len());
                let mut unsent = Vec::new();
                for ((op, existing), applied) in ops.into_iter().zip(results) {
                    let Some(mut applied) = applied else {
                        unsent.push(op);
                        continue;
                    };
                    if let Some(record) = &mut applied.record {
                        schedule_retry(record, now_ms);
                    }
                    // A failure that may be the target's waits for the cycle's verdict.
                    if applied.target_failure.is_none() {
                        save_user_record(store, key, op, existing, &applied).await?;
                    }
                    done.push((op, existing, applied));
                }
                Ok((done, unsent))
            }
        }))
        .buffer_unordered(channel.max_threads.max(1) as usize)
    };
    // Journal entries of settled operations, closed a batch at a time: a crash before a batch
    // is closed only makes the next cycle check those users in the target once more.
    let mut settled_guids: Vec<String> = Vec::new();
    let mut in_doubt: Vec<(&PlannedOperation, Option<&Record>, crate::apply::Applied)> = Vec::new();
    let mut settle = async |op: &PlannedOperation,
                            existing: Option<&Record>,
                            applied: crate::apply::Applied,
                            settled_guids: &mut Vec<String>|
           -> Result<(), CycleError> {
        if op.operation.writes_target() {
            settled_guids.push(op.guid.clone());
        }
        if settled_guids.len() >= JOURNAL_CLOSE_BATCH {
            store.close_journal_entries(key, settled_guids).await?;
            settled_guids.clear();
        }
        events.extend(audit.user(op, &applied, existing));
        match &applied.outcome {
            Outcome::Failed(reason) => {
                tracing::warn!(channel = %key, user = op.label(), operation = op.operation.verb(), %reason, "record failed");
                failures.push((op.label().to_owned(), reason.clone()));
            }
            Outcome::Blocked
                if existing.and_then(|r| r.last_error.as_deref()) != Some(op.reason.as_str()) =>
            {
                // Once per record, not once per cycle.
                tracing::warn!(channel = %key, user = op.label(), reason = %op.reason, "action blocked by a provisioning option");
            }
            _ => tracing::debug!(channel = %key, "{op}"),
        }
        if op.operation != Operation::Refresh {
            applied.outcome.count(&mut summary);
        }
        if op.operation.writes_target() {
            progress.advance(op, &applied.outcome);
        }
        Ok(())
    };
    while let Some(result) = settled.next().await {
        let (done, unsent) = result?;
        not_sent += unsent.len() as u64;
        close_unsent(store, key, &unsent).await?;
        for (op, existing, applied) in done {
            if applied.target_failure.is_none() {
                // The target answers: the failures in doubt were the records' own.
                for (op, existing, applied) in in_doubt.drain(..) {
                    save_user_record(store, key, op, existing, &applied).await?;
                    settle(op, existing, applied, &mut settled_guids).await?;
                }
                settle(op, existing, applied, &mut settled_guids).await?;
                continue;
            }
            if outage.is_down() {
                // Sent while the target was found down: nobody's failure.
                left_in_doubt(store, key, op, &applied, &mut not_sent).await?;
                continue;
            }
            in_doubt.push((op, existing, applied));
            if in_doubt.len() < IN_DOUBT_LIMIT {
                continue;
            }
            let down = outage.target_down(&client, all_forbidden(&in_doubt)).await;
            for (op, existing, applied) in in_doubt.drain(..) {
                if down {
                    left_in_doubt(store, key, op, &applied, &mut not_sent).await?;
                } else {
                    save_user_record(store, key, op, existing, &applied).await?;
                    settle(op, existing, applied, &mut settled_guids).await?;
                }
            }
        }
    }
    drop(settled);
    let down = !in_doubt.is_empty() && outage.target_down(&client, all_forbidden(&in_doubt)).await;
    for (op, existing, applied) in in_doubt.drain(..) {
        if down {
            left_in_doubt(store, key, op, &applied, &mut not_sent).await?;
        } else {
            save_user_record(store, key, op, existing, &applied).await?;
            settle(op, existing, applied, &mut settled_guids).await?;
        }
    }
    store.close_journal_entries(key, &settled_guids).await?;
    progress.end();
    if let Some((rides, created)) = &rides {
        summary.groups_created += created.len() as u64;
        let confirmed = rides.confirmed();
        for record in created {
            let mut record = record.clone();
            if let Some(target_id) = &record.target_id {
                record.members = confirmed.get(target_id).cloned().unwrap_or_default();
                record.members.sort();
                record.members.dedup();
            }
            store.save_group_record(key, &record).await?;
            let planned = plan.group_operations.iter().find(|g| g.guid == record.guid);
            if let Some(op) = planned {
                let applied = AppliedGroup {
                    record: Some(record),
                    outcome: GroupOutcome::Created,
                    target_failure: None,
                };
                events.extend(audit.group(op, &applied, None));
            }
        }
    }

    if not_sent > 0 || outage.is_down() {
        // Told to stop, or the target is down: what settled is saved; groups, held operations
        // and the cursor wait for the next cycle, which plans the unsent operations again.
        if !outage.is_down() {
            tracing::warn!(channel = %key, not_done = not_sent, "cycle stopped early; the next cycle does the rest");
        }
        store.record_audit_events(&events).await?;
        summary.requests = client.requests();
        // What the last completed cycle held still waits.
        summary.held = store.held_operations(key).await?.len() as u64;
        return Ok(Applied {
            summary,
            failures,
            source: read.describe(),
            events,
            request_latency: client.request_latency(),
            not_sent,
            outage: outage.reason(),
        });
    }
    // Groups go after the users, so that members resolve to the users just created.
    for (dn, reason) in group_failures {
        tracing::warn!(channel = %key, group = %dn, %reason, "group failed");
        summary.groups_failed += 1;
        failures.push((format!("group {dn}"), reason));
    }
    let mut held_groups = Vec::new();
    if channel.source_location.group_base_dn.is_some()
        && (!desired_groups.is_empty() || !group_records.is_empty())
    {
        let records = store.record_heads(key).await?;
        // Read again: groups created with the users' Bulk requests are in there now.
        let group_records = store.group_records(key).await?;
        let members = Members::of(&records, &in_scope, &HashSet::new());
        let guard = GuardInput {
            settings: &connection.guard,
            approved: &approved,
            provisioned: active_users(&records),
            in_scope: &in_scope,
            suspect_read: suspect_read.as_deref(),
        };
        let (operations, held) = guard_groups(
            plan_groups(&desired_groups, &group_records, &members),
            &group_records,
            &guard,
        );
        held_groups = held;
        let existing: HashMap<&str, &GroupRecord> =
            group_records.iter().map(|r| (r.guid.as_str(), r)).collect();
        let settings = GroupSettings {
            membership: connection.target.group_membership_handling,
            chunk_size: connection.target.group_member_chunk_size.max(1) as usize,
        };
        let mut settled = {
            stream::iter(operations.iter().map(|op| {
                let outage = &outage;
                let existing = existing.get(op.guid.as_str()).copied();
                let client = &client;
                async move {
                    if outage.is_down() {
                        return Ok::<_, CycleError>(None);
                    }
                    let applied = apply_group_operation(client, op, existing, settings).await;
                    if applied.target_failure.is_none() {
                        save_group_record(store, key, op, existing, &applied).await?;
                    }
                    Ok(Some((op, applied)))
                }
            }))
            .buffer_unordered(channel.max_threads.max(1) as usize)
        };
        let mut in_doubt: Vec<(&PlannedGroupOperation, AppliedGroup)> = Vec::new();
        let mut settle_group = |op: &PlannedGroupOperation, applied: AppliedGroup| {
            events.extend(audit.group(op, &applied, existing.get(op.guid.as_str()).copied()));
            match &applied.outcome {
                GroupOutcome::Created => summary.groups_created += 1,
                GroupOutcome::Linked => summary.groups_linked += 1,
                GroupOutcome::Updated => summary.groups_updated += 1,
                GroupOutcome::Deleted => summary.groups_deleted += 1,
                GroupOutcome::Forgotten => {}
                GroupOutcome::Failed(reason) => {
                    tracing::warn!(channel = %key, group = %op.display_name, %reason, "group failed");
                    summary.groups_failed += 1;
                    failures.push((format!("group {}", op.display_name), reason.clone()));
                }
            }
            if !matches!(applied.outcome, GroupOutcome::Failed(_)) {
                tracing::debug!(channel = %key, "{op}");
            }
        };
        while let Some(result) = settled.next().await {
            let Some((op, applied)) = result? else {
                not_sent += 1;
                continue;
            };
            if applied.target_failure.is_none() {
                for (op, applied) in in_doubt.drain(..) {
                    let existing = existing.get(op.guid.as_str()).copied();
                    save_group_record(store, key, op, existing, &applied).await?;
                    settle_group(op, applied);
                }
                settle_group(op, applied);
                continue;
            }
            if outage.is_down() {
                not_sent += 1;
                continue;
            }
            in_doubt.push((op, applied));
            if in_doubt.len() < IN_DOUBT_LIMIT {
                continue;
            }
            let forbidden = in_doubt
                .iter()
                .all(|(_, a)| a.target_failure.is_some_and(|f| f.forbidden));
            let down = outage.target_down(&client, forbidden).await;
            for (op, applied) in in_doubt.drain(..) {
                if down {
                    not_sent += 1;
                } else {
                    let existing = existing.get(op.guid.as_str()).copied();
                    save_group_record(store, key, op, existing, &applied).await?;
                    settle_group(op, applied);
                }
            }
        }
        drop(settled);
        let forbidden = in_doubt
            .iter()
            .all(|(_, a)| a.target_failure.is_some_and(|f| f.forbidden));
        let down = !in_doubt.is_empty() && outage.target_down(&client, forbidden).await;
        for (op, applied) in in_doubt.drain(..) {
            if down {
                not_sent += 1;
            } else {
                let existing = existing.get(op.guid.as_str()).copied();
                save_group_record(store, key, op, existing, &applied).await?;
                settle_group(op, applied);
            }
        }
        if outage.is_down() {
            store.record_audit_events(&events).await?;
            summary.requests = client.requests();
            summary.held = store.held_operations(key).await?.len() as u64;
            return Ok(Applied {
                summary,
                failures,
                source: read.describe(),
                events,
                request_latency: client.request_latency(),
                not_sent,
                outage: outage.reason(),
            });
        }
    }
    summary.requests = client.requests();
    // Held operations wait for an operator; approved ones were applied above.
    summary.held = (plan.held.len() + held_groups.len()) as u64;
    events.extend(
        plan.held
            .iter()
            .map(|op| audit.held(op, by_guid.get(op.guid.as_str()).copied())),
    );
    events.extend(held_groups.iter().map(|op| audit.held_group(op)));
    // Unsettled operations this cycle did not send again (the user left the scope, or the
    // guard holds it): nothing more to learn from them; said once, then closed.
    let sent_again: HashSet<&str> = plan
        .operations
        .iter()
        .filter(|o| o.operation.writes_target())
        .map(|o| o.guid.as_str())
        .collect();
    let closed: Vec<&JournalEntry> = unsettled
        .iter()
        .filter(|e| !sent_again.contains(e.guid.as_str()))
        .collect();
    for entry in &closed {
        tracing::warn!(channel = %key, user = %entry.label, operation = %entry.operation, cycle = entry.cycle_id, "an operation an interrupted cycle sent was not sent again; check this user in the target");
        events.push(audit.unsettled(entry));
    }
    let closed: Vec<String> = closed.into_iter().map(|e| e.guid.clone()).collect();
    store.close_journal_entries(key, &closed).await?;
    let held: Vec<HeldOperation> = plan
        .held
        .iter()
        .map(|op| HeldOperation {
            guid: op.guid.clone(),
            label: op.label().to_owned(),
            operation: op.operation.verb().to_owned(),
            reason: op.reason.clone(),
            held_at_ms: now_ms,
            approved: false,
        })
        .chain(held_groups.iter().map(|op| HeldOperation {
            guid: op.guid.clone(),
            label: op.display_name.clone(),
            operation: op.operation.verb().to_owned(),
            reason: op.reason.clone(),
            held_at_ms: now_ms,
            approved: false,
        }))
        .collect();
    store.save_held_operations(key, &held).await?;
    // The cursor moves only once the changes it covers are applied: a crash before this line
    // reads them again, and the fingerprints make the second pass a no-op. While operations are
    // held it stays, so that the next cycle sees the held changes again.
    store.record_audit_events(&events).await?;
    // A full read's state (an LDIF file's signature) is no cursor: it moves on while operations
    // are held, unless the read looked incomplete, so that the next file is compared with the
    // last one known to be whole.
    let full_read_state = read.mechanism == ChangeDetection::FullScan && suspect_read.is_none();
    if held.is_empty() || full_read_state {
        store.save_sync_state(key, read.next_state.as_ref()).await?;
    }
    Ok(Applied {
        summary,
        failures,
        source: read.describe(),
        events,
        request_latency: client.request_latency(),
        not_sent: 0,
        outage: None,
    })
}

/// Whether every user operation in doubt failed with a 403.
fn all_forbidden(in_doubt: &[(&PlannedOperation, Option<&Record>, crate::apply::Applied)]) -> bool {
    in_doubt
        .iter()
        .all(|(_, _, a)| a.target_failure.is_some_and(|f| f.forbidden))
}

/// Saves what a settled user operation left: a settled write is always saved (its journal
/// entry is closed next), a dropped record deleted.
async fn save_user_record(
    store: &dyn Store,
    key: &ChannelKey,
    op: &PlannedOperation,
    existing: Option<&Record>,
    applied: &crate::apply::Applied,
) -> Result<(), CycleError> {
    match &applied.record {
        Some(record) if existing != Some(record) || op.operation.writes_target() => {
            store.save_record(key, record).await?
        }
        Some(_) => {}
        None if existing.is_some() => store.delete_record(key, &op.guid).await?,
        None => {}
    }
    if let (Some(old), Some(_)) = (&applied.took_over, &applied.record) {
        hand_over(store, key, old, &op.guid).await?;
    }
    Ok(())
}

/// A new entry took over the disabled account of one that left (a rehire): the old record goes,
/// and the groups the account is in name the new entry. A crash before this leaves the old
/// record behind, inert: it left and is disabled, and the links prefer the new one.
pub(crate) async fn hand_over(
    store: &dyn Store,
    key: &ChannelKey,
    old: &str,
    new: &str,
) -> Result<(), CycleError> {
    tracing::info!(channel = %key, from = old, to = new, "a disabled account passed to a new entry");
    for mut group in store.group_records(key).await? {
        let mut renamed = false;
        for member in group.members.iter_mut().filter(|m| m.guid == old) {
            member.guid = new.to_owned();
            renamed = true;
        }
        if renamed {
            group.members.sort();
            store.save_group_record(key, &group).await?;
        }
    }
    store.delete_record(key, old).await?;
    Ok(())
}

async fn save_group_record(
    store: &dyn Store,
    key: &ChannelKey,
    op: &PlannedGroupOperation,
    existing: Option<&GroupRecord>,
    applied: &AppliedGroup,
) -> Result<(), CycleError> {
    match &applied.record {
        Some(record) if existing != Some(record) => store.save_group_record(key, record).await?,
        Some(_) => {}
        None if existing.is_some() => store.delete_group_record(key, &op.guid).await?,
        None => {}
    }
    Ok(())
}

/// An operation sent while the target was found down: its record is left as it was (the
/// failure is nobody's), and its journal entry stays open when the target may have acted, so
/// that the next cycle checks the user before sending it again.
async fn left_in_doubt(
    store: &dyn Store,
    key: &ChannelKey,
    op: &PlannedOperation,
    applied: &crate::apply::Applied,
    not_sent: &mut u64,
) -> Result<(), CycleError> {
    *not_sent += 1;
    let acted = applied.target_failure.is_some_and(|f| f.outcome_unknown);
    if !acted && op.resumed_cycle.is_none() {
        store
            .close_journal_entries(key, std::slice::from_ref(&op.guid))
            .await?;
    }
    Ok(())
}

/// Closes the journal entries of operations journaled ahead and then not sent (the cycle was
/// told to stop): nothing was sent, so there is nothing to check. An entry an earlier,
/// interrupted cycle left stays.
async fn close_unsent(
    store: &dyn Store,
    key: &ChannelKey,
    unsent: &[&PlannedOperation],
) -> Result<(), CycleError> {
    let guids: Vec<String> = unsent
        .iter()
        .filter(|op| op.operation.writes_target() && op.resumed_cycle.is_none())
        .map(|op| op.guid.clone())
        .collect();
    if !guids.is_empty() {
        store.close_journal_entries(key, &guids).await?;
    }
    Ok(())
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
