//! Planning a cycle: load the state, read the data store, detect, map, plan, guard.
//! [`plan_channel_streamed`] writes nothing: `scimbridge plan` prints what it streams and
//! returns. A cycle's full read creates its new users as it reads them ([`plan_creating`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::state::{GroupKey, RecordCounts, RecordKey};
use scimbridge_model::{
    Channel, ChannelKey, Connection, DataStore, DesiredGroup, EffectiveSourceSettings, EntryGuid,
    EpochMs, GroupRecord, JournalEntry, Operation, Plan, PlannedOperation, Record, RecordStatus,
    TargetId,
};

use super::CycleError;
use super::full_read::{self, AsRead, DetectedPages};
use super::planned_as_read::{PlanStream, PlannedAsRead};
use super::read_groups::{ReadGroups, stream_read_groups};
use crate::apply::{Link, links};
use crate::detect::{
    Changes, Fingerprinted, channel_fingerprint, defer_retries, detect, detect_incremental,
    duplicate_guids,
};
use crate::map::fields::keep_create_only;
use crate::map::map_user;
use crate::plan::groups::{Members, desired_groups, plan_groups, unchanged_group};
use crate::plan::guard::{
    Approvals, GuardInput, Provisioned, guard_groups, guard_users, refuse_to_empty,
};
use crate::plan::{
    Candidate, GuidSet, plan_users, protect_shared_targets, refuse_names_taken_as_read,
    refuse_shared_user_names,
};
use crate::source::{
    EntryFailure, FullReadPages, Known, ReadRequest, SourceRead, SourceScan, needs_every_record,
    normalize_dn, source_of,
};
use crate::state::Store;

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
    pub in_scope: GuidSet,
    /// Held operations an operator approved.
    pub approved: Approvals,
    /// Why the read may be incomplete (see `SourceScan::suspect`).
    pub suspect_read: Option<String>,
    /// Target id → the entry each target user belongs to, among the records read.
    pub links: HashMap<TargetId, Link>,
    /// The records were read by key (an incremental read, or a full read compared page by
    /// page): the owner of a target user the plan's records do not hold is looked up in the
    /// state store.
    pub by_key: bool,
    /// With groups read incrementally: the GUIDs of the groups planned (`desired_groups` and
    /// the group records gone); `group_records` holds their records only. `None`: every group.
    pub planned_groups: Option<Vec<EntryGuid>>,
    /// Group records to save without their version before anything is applied: groups read
    /// whole although their version did not move (a user the target did not hold joined them), and
    /// unchanged groups planned for users who come or go, so that a cycle stopped before the
    /// group stage reads them whole again.
    pub unstamped_groups: Vec<GroupRecord>,
    /// A cycle's full read by key: the groups as read, which the group stage plans a few at a
    /// time once the users are in (`desired_groups` and `group_records` are then empty, and the
    /// plan has no group operation).
    pub read_groups: Option<ReadGroups>,
}

/// Reads the channel's data store and computes the plan, writing nothing. `now_ms` decides
/// whether a full reconciliation is due and which failed records wait for their retry.
///
/// A channel without a scope by group is planned by key: an incremental read is compared with
/// the records it touches, and a full read with the records of each page of users as it reads
/// them (`full_read`), keeping only what changed; its cost follows the change, not the
/// directory. With a scope by group, every record of the channel (without images) is read.
///
/// Streamed: a full read by key hands the creates (and failures) of each page's new users to
/// `stream` as it reads them, and the plan returned holds the rest. So the plan of a first
/// cycle holds a page of images at a time and, for the rest of the plan, each new user's
/// userName and DN (and GUID, with groups), not every image.
pub async fn plan_channel_streamed(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    now_ms: EpochMs,
    stream: &dyn PlanStream,
) -> Result<ChannelPlan, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let planned = PlannedAsRead::new(store, &key, channel, &connection.options, settings, stream);
    let mut planned = plan_creating(
        store,
        connection,
        channel,
        data_store,
        now_ms,
        Some(&planned),
    )
    .await?;
    // The groups of a full read come a batch at a time, after the users: as they look
    // before the users are applied, so the users the plan deprovisions lose their memberships.
    if let Some(read) = planned.read_groups.take() {
        let operations = std::mem::take(&mut planned.plan.operations);
        let leaving: HashSet<EntryGuid> = operations
            .iter()
            .filter(|o| o.operation.deprovisions())
            .map(|o| o.guid.clone())
            .collect();
        stream.operations(operations);
        let leaving: HashSet<&str> = leaving.iter().map(EntryGuid::as_str).collect();
        let guard = &connection.guard;
        stream_read_groups(store, &key, guard, &planned, &read, leaving, stream).await?;
    }
    Ok(planned)
}

/// [`plan_channel_streamed`] for a cycle: with `creates`, a full read by key creates its new users as it
/// reads them, and the plan holds the rest.
pub(super) async fn plan_creating(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    now_ms: EpochMs,
    creates: Option<&dyn AsRead>,
) -> Result<ChannelPlan, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    if channel.data_store != data_store.name {
        return Err(CycleError::UnknownDataStore {
            channel: channel.name.clone(),
            data_store: channel.data_store.clone(),
        });
    }
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let fingerprint = channel_fingerprint(&connection.options, channel, &settings);
    let unsettled = store.unsettled_operations(&key).await?;
    let unsettled_by_guid: HashMap<&str, &JournalEntry> =
        unsettled.iter().map(|e| (e.guid.as_str(), e)).collect();
    let by_key = !needs_every_record(&channel.source_location);
    // By key, a full read is compared with its records page by page as it goes.
    let pages = DetectedPages::new(
        store,
        &key,
        &fingerprint,
        unsettled_by_guid.keys().copied().collect(),
        creates.filter(|_| by_key),
    );
    // Before the read: every record without its image, or, by key, those that may be retried.
    let stored = match by_key {
        true => retrying(store, &key, &unsettled).await?,
        false => store.record_heads(&key).await?,
    };
    let mut held = stored.clone();
    outcome_unknown(&mut held, &unsettled_by_guid);
    let previous = store.sync_state(&key).await?;
    // Every group record without its members: few, and what an incremental read of the
    // groups compares versions with.
    let group_heads = match channel.source_location.group_base_dn {
        Some(_) => store.group_heads(&key).await?,
        None => Vec::new(),
    };
    let (mut scan, read) = {
        let known = match by_key {
            true => Known::of_store(store, &key, &held, now_ms),
            false => Known::of_records(&held, now_ms),
        }
        .with_groups(&group_heads);
        let request = ReadRequest {
            channel,
            settings: &settings,
            fingerprint: &fingerprint,
            known: &known,
            previous: previous.as_ref(),
            now_ms,
            pages: by_key.then_some(&pages as &dyn FullReadPages),
        };
        let read = source_of(data_store).read(&request).await;
        // The pages of new users still being applied are applied first: what follows reads
        // their records.
        let finished = match creates {
            Some(creates) => creates.finish().await,
            None => Ok(()),
        };
        match (read, finished) {
            (Ok(read), Ok(())) => read,
            // Creating a page's new users stopped the read: the cycle stops for that reason.
            (Err(error), _) => return Err(pages.stopped_by().unwrap_or(error.into())),
            (Ok(_), Err(error)) => return Err(error),
        }
    };
    // A full read by key went through the pages: `scan.users` holds what they kept.
    let mut found = (by_key && scan.complete).then(|| pages.found());
    let (mut heads, counts) = match (by_key, &mut found) {
        (true, None) => {
            let (heads, counts) = touched_heads(store, &key, &scan, stored).await?;
            (heads, Some(counts))
        }
        (true, Some(found)) => {
            let absent = full_read::absent(store, &key, &found.in_scope).await?;
            let kept = std::mem::take(&mut found.heads);
            let heads = merge_heads(stored, merge_heads(kept, absent));
            (heads, Some(store.record_counts(&key).await?))
        }
        (false, _) => (held, None),
    };
    // The records an incremental read did not touch are unchanged, and in scope: counted
    // before an unsettled operation makes its record look failed, as the store counts them.
    let unread_settled = counts.filter(|_| found.is_none()).map(|c| {
        c.settled_in_source
            .saturating_sub(settled_in_source(&heads))
    });
    outcome_unknown(&mut heads, &unsettled_by_guid);
    let (users, active) = match counts {
        Some(c) => (c.users as usize, c.active as usize),
        None => (provisioned_users(&heads), active_users(&heads)),
    };
    let users_found = found
        .as_ref()
        .map_or(scan.users.len(), |f| f.in_scope.len());
    refuse_to_empty(
        &scan,
        users_found,
        Provisioned::count(users, active, &heads, &scan),
        &group_heads,
        &channel.source_location,
    )
    .map_err(|why| CycleError::Refused(format!("data store \"{}\" {why}", data_store.name)))?;
    for (guid, dn) in duplicate_guids(&scan.users) {
        tracing::warn!(channel = %key, %guid, %dn, "entry GUID appears twice; the second entry is ignored");
    }
    // Everything the read removed is out of scope, whether or not this cycle deprovisions it.
    let removed_by_read: HashSet<EntryGuid> = match (by_key, &found) {
        (true, None) => scan.removed_guids.iter().cloned().collect(),
        // A full read removed every known user it did not find.
        (true, Some(found)) => heads
            .iter()
            .filter(|r| !found.in_scope.contains(&r.guid))
            .map(|r| r.guid.clone())
            .collect(),
        (false, _) => HashSet::new(),
    };
    // Users `plan` planned as it read have no record: members resolve to them as read.
    let mut unsaved = creates.map(|c| c.unsaved_users()).unwrap_or_default();
    // A full read by key leaves its groups to the group stage (a cycle's, or `plan`'s once the
    // users are planned), which finds their members a few groups at a time: the plan does not
    // hold every member's record.
    let read_groups = (creates.is_some()
        && found.is_some()
        && !scan.groups_incremental
        && channel.source_location.group_base_dn.is_some())
    .then(|| ReadGroups::take(&mut scan, std::mem::take(&mut unsaved)));
    // By key, the members of the groups read are found by DN among the records.
    let member_heads = match by_key {
        true => members_by_dn(store, &key, &mut scan, &removed_by_read, &unsaved).await?,
        false => Vec::new(),
    };
    scan.unchanged_users.extend(unsaved);
    let removed_groups = std::mem::take(&mut scan.removed_group_guids);
    let every_group_read = !scan.groups_incremental;
    let mut detected = detect_changes(scan, &heads, &fingerprint, now_ms);
    let mut records = store.records_by_guid(&key, &detected.wanted).await?;
    outcome_unknown(&mut records, &unsettled_by_guid);
    if let Some(unread_settled) = unread_settled {
        detected.changes.unchanged += unread_settled;
        widen_scope(&mut detected.in_scope, &heads, &removed_by_read);
    }
    if let Some(found) = found {
        detected.changes.unchanged += found.unchanged + creates.map_or(0, |c| c.refreshed());
        detected.in_scope = found.in_scope;
    }
    let by_guid: HashMap<EntryGuid, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    let Detected {
        changes,
        failures,
        mut in_scope,
        mut desired_groups,
        group_failures,
        suspect_read,
        waiting_retry,
        ..
    } = detected;
    let mut plan = plan_changes(changes, failures, &by_guid, connection, channel, &settings);
    // By key, the records that share a user name or a target user with the plan are read too.
    if by_key {
        heads = with_sharers(store, &key, &plan, heads, &mut in_scope).await?;
        heads = merge_heads(member_heads, heads);
    }
    refuse_shared_user_names(&mut plan, &heads);
    if let Some(creates) = creates {
        refuse_names_taken_as_read(&mut plan, &heads, |name| creates.name_taken_by(name));
    }
    protect_shared_targets(&mut plan, &heads, &in_scope);
    plan.waiting_retry = waiting_retry;
    note_unsettled(&mut plan, &unsettled_by_guid);
    let approved: Approvals = store
        .held_operations(&key)
        .await?
        .into_iter()
        .filter(|h| h.approved)
        .map(|h| (h.guid, h.operation))
        .collect();
    // Users this cycle created as it read do not make what it deprovisions look a smaller share.
    let created = creates.map_or(0, |c| c.created()) as usize;
    let provisioned = counts.map_or_else(
        || active_users(&heads),
        |c| (c.active as usize).saturating_sub(created),
    );
    let guard = GuardInput {
        settings: &connection.guard,
        approved: &approved,
        provisioned,
        in_scope: &in_scope,
        suspect_read: suspect_read.as_deref(),
    };
    guard_users(&mut plan, &by_guid, &guard);
    let groups_by_key =
        by_key && channel.source_location.group_base_dn.is_some() && read_groups.is_none();
    let (group_records, planned_groups) = match groups_by_key {
        true => {
            let planned = PlannedGroups {
                store,
                key: &key,
                plan: &plan,
                removed_users: &removed_by_read,
                removed_groups: &removed_groups,
                every_group_read,
            };
            let records = planned
                .read(&mut desired_groups, &mut heads, &mut in_scope)
                .await?;
            let guids: BTreeSet<EntryGuid> = records
                .iter()
                .map(|r| r.guid.clone())
                .chain(desired_groups.iter().map(|d| d.guid.clone()))
                .collect();
            (records, Some(guids.into_iter().collect()))
        }
        false => match channel.source_location.group_base_dn {
            Some(_) if read_groups.is_none() => (store.group_records(&key).await?, None),
            _ => (Vec::new(), None),
        },
    };
    // Groups planned at the version their record keeps (read whole for a new user, or planned
    // from the record for a user who comes or goes) forget it until the group stage: a cycle
    // stopped before then leaves them to be read whole, as no later read may name those users.
    let unstamped_groups = match &read_groups {
        Some(read) => unstamped(&group_heads, read.versions()),
        None => unstamped(
            &group_heads,
            desired_groups
                .iter()
                .map(|g| (&g.guid, g.source_stamp.as_deref())),
        ),
    };
    let guard = GuardInput {
        settings: &connection.guard,
        approved: &approved,
        provisioned,
        in_scope: &in_scope,
        suspect_read: suspect_read.as_deref(),
    };
    // Without a group base DN the channel leaves groups alone, including those it provisioned
    // before: taking the setting out is not a reason to delete them.
    if channel.source_location.group_base_dn.is_some() {
        let groups = GroupsToPlan {
            desired: &desired_groups,
            records: &group_records,
            population: &with_whole(&group_heads, &group_records),
        };
        plan_guarded_groups(&mut plan, &heads, &groups, &guard);
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
        links: links(&heads),
        by_key,
        planned_groups,
        unstamped_groups,
        read_groups,
    })
}

/// The group records of the groups planned at the version they keep (read whole though it did
/// not move, or planned from the record), without it.
fn unstamped<'r>(
    heads: &[GroupRecord],
    read: impl Iterator<Item = (&'r EntryGuid, Option<&'r str>)>,
) -> Vec<GroupRecord> {
    let read: HashMap<&EntryGuid, Option<&str>> = read.collect();
    heads
        .iter()
        .filter(|head| {
            head.source_stamp.is_some()
                && read.get(&head.guid).copied().flatten() == head.source_stamp.as_deref()
        })
        .map(|head| GroupRecord {
            source_stamp: None,
            ..head.clone()
        })
        .collect()
}

/// By key: the records of the users the groups read name by DN, other than those the read
/// returned (kept, or `unsaved`: planned as read, without a record), in scope and not removed
/// by the read; listed in the scan as unchanged users, so that the members resolve. Their
/// heads are returned.
async fn members_by_dn(
    store: &dyn Store,
    key: &ChannelKey,
    scan: &mut SourceScan,
    removed: &HashSet<EntryGuid>,
    unsaved: &[(String, EntryGuid)],
) -> Result<Vec<Record>, CycleError> {
    if scan.groups.is_empty() {
        return Ok(Vec::new());
    }
    let read: HashSet<String> = scan
        .users
        .iter()
        .map(|u| &u.dn)
        .chain(unsaved.iter().map(|(dn, _)| dn))
        .map(|dn| normalize_dn(dn))
        .collect();
    let read_guids: HashSet<&EntryGuid> = scan.users.iter().map(|u| &u.guid).collect();
    let dns: BTreeSet<&str> = scan
        .groups
        .iter()
        .flat_map(|g| &g.member_dns)
        .filter(|dn| !read.contains(*dn))
        .collect();
    let dns: Vec<String> = dns.into_iter().map(str::to_owned).collect();
    let found = store.record_heads_with(key, RecordKey::Dns(&dns)).await?;
    // A user read at another DN is not at the DN its record keeps (renamed, and a group still
    // names the old DN).
    let found = members_found_by_dn(found, |r| {
        !removed.contains(&r.guid) && !read_guids.contains(&r.guid)
    });
    scan.unchanged_users
        .extend(found.iter().map(|r| (r.dn.clone(), r.guid.clone())));
    Ok(found)
}

/// Of the records found at the DNs groups name, those that are the members named: users known
/// in the source location (or failed) that `keep` accepts, one per DN (where two records claim
/// one, an entry deleted while its record was failing and another at its DN, the settled one).
pub(super) fn members_found_by_dn(
    found: Vec<Record>,
    keep: impl Fn(&Record) -> bool,
) -> Vec<Record> {
    // Each DN normalised once: sorting by a key computed in every comparison cost seconds at
    // a few hundred thousand members.
    let failed = |r: &Record| r.status == RecordStatus::Failed;
    let mut by_dn: Vec<(String, Record)> = found
        .into_iter()
        .filter(|r| (r.source_fingerprint.is_some() || failed(r)) && keep(r))
        .map(|r| (normalize_dn(&r.dn), r))
        .collect();
    by_dn.sort_by(|(a, ra), (b, rb)| (a, failed(ra)).cmp(&(b, failed(rb))));
    by_dn.dedup_by(|(a, _), (b, _)| a == b);
    by_dn.into_iter().map(|(_, r)| r).collect()
}

/// By key, which groups a cycle plans: those the read returned, those gone (every group record,
/// when the read returned every group), and those a member of which this plan changes in the
/// target (a leaver, a user created anew).
struct PlannedGroups<'a> {
    store: &'a dyn Store,
    key: &'a ChannelKey,
    plan: &'a Plan,
    removed_users: &'a HashSet<EntryGuid>,
    removed_groups: &'a [EntryGuid],
    /// The read returned every group: every group record is compared.
    every_group_read: bool,
}

impl PlannedGroups<'_> {
    /// The records of the groups to plan. Adds the groups unchanged in the directory to
    /// `desired` (as their records hold them, less the members out of scope), and the heads of
    /// their members to `heads` and, in scope, to `in_scope`.
    async fn read(
        &self,
        desired: &mut Vec<DesiredGroup>,
        heads: &mut Vec<Record>,
        in_scope: &mut GuidSet,
    ) -> Result<Vec<GroupRecord>, CycleError> {
        let (store, key) = (self.store, self.key);
        let read: Vec<EntryGuid> = desired
            .iter()
            .map(|d| d.guid.clone())
            .chain(self.removed_groups.iter().cloned())
            .collect();
        let mut records = match self.every_group_read {
            true => store.group_records(key).await?,
            false => {
                store
                    .group_records_with(key, GroupKey::Guids(&read))
                    .await?
            }
        };
        let read: Vec<EntryGuid> = read
            .into_iter()
            .chain(records.iter().map(|r| r.guid.clone()))
            .collect();
        // Users whose target user comes, goes, or changes: an update leaves memberships be.
        let changed_users: Vec<EntryGuid> = self
            .plan
            .operations
            .iter()
            .filter(|o| {
                matches!(
                    o.operation,
                    Operation::Create { .. } | Operation::Disable { .. } | Operation::Delete { .. }
                )
            })
            .map(|o| o.guid.clone())
            .chain(self.removed_users.iter().cloned())
            .collect();
        let known: HashSet<EntryGuid> = read.into_iter().collect();
        // Every group record is among those read already when every group was.
        let mut unchanged = match self.every_group_read {
            true => Vec::new(),
            false => {
                store
                    .group_records_with(key, GroupKey::Members(&changed_users))
                    .await?
            }
        };
        unchanged.retain(|r| !known.contains(&r.guid));
        // The members' heads: whether each is in the target, and in scope.
        let held: HashSet<&EntryGuid> = heads.iter().map(|r| &r.guid).collect();
        let members: BTreeSet<EntryGuid> = records
            .iter()
            .chain(&unchanged)
            .flat_map(|r| r.members.iter().map(|m| &m.guid))
            .filter(|guid| !held.contains(guid))
            .cloned()
            .collect();
        let members: Vec<EntryGuid> = members.into_iter().collect();
        let member_heads = store
            .record_heads_with(key, RecordKey::Guids(&members))
            .await?;
        widen_scope(in_scope, &member_heads, self.removed_users);
        *heads = merge_heads(member_heads, std::mem::take(heads));
        desired.extend(unchanged.iter().map(|r| {
            let mut group = unchanged_group(r);
            group.member_guids.retain(|guid| in_scope.contains(guid));
            group
        }));
        records.extend(unchanged);
        records.sort_by(|a, b| a.guid.cmp(&b.guid));
        Ok(records)
    }
}

/// Every group record, the whole one (with members) where `whole` has it: what the guard
/// takes its shares of.
pub(super) fn with_whole(heads: &[GroupRecord], whole: &[GroupRecord]) -> Vec<GroupRecord> {
    let whole: HashMap<&EntryGuid, &GroupRecord> = whole.iter().map(|r| (&r.guid, r)).collect();
    heads
        .iter()
        .map(|head| whole.get(&head.guid).map_or(head, |r| *r).clone())
        .collect()
}

/// By key, before the read: the failed records and those whose last operation was never
/// settled, without their images.
async fn retrying(
    store: &dyn Store,
    key: &ChannelKey,
    unsettled: &[JournalEntry],
) -> Result<Vec<Record>, CycleError> {
    let never_settled: Vec<EntryGuid> = unsettled.iter().map(|e| e.guid.clone()).collect();
    let failed = store.record_heads_with(key, RecordKey::Failed).await?;
    let never_settled = store
        .record_heads_with(key, RecordKey::Guids(&never_settled))
        .await?;
    Ok(merge_heads(failed, never_settled))
}

/// By key, after an incremental read: the records the read touches (changed, removed, or
/// failing to be keyed) with those that may be retried, without their images; and the
/// channel's counts, for what is not read.
async fn touched_heads(
    store: &dyn Store,
    key: &ChannelKey,
    scan: &SourceScan,
    retrying: Vec<Record>,
) -> Result<(Vec<Record>, RecordCounts), CycleError> {
    let touched: Vec<EntryGuid> = scan
        .users
        .iter()
        .map(|u| u.guid.clone())
        .chain(scan.removed_guids.iter().cloned())
        .chain(
            scan.failures
                .iter()
                .map(|f| EntryGuid::of_dn(&normalize_dn(&f.dn))),
        )
        .collect();
    let touched = store
        .record_heads_with(key, RecordKey::Guids(&touched))
        .await?;
    let counts = store.record_counts(key).await?;
    Ok((merge_heads(retrying, touched), counts))
}

/// The records of both lists once each (the second's where both have one), without images,
/// ordered by GUID.
fn merge_heads(first: Vec<Record>, second: Vec<Record>) -> Vec<Record> {
    let mut by_guid: BTreeMap<EntryGuid, Record> = BTreeMap::new();
    for record in first.into_iter().chain(second) {
        by_guid.insert(
            record.guid.clone(),
            Record {
                applied_image: None,
                ..record
            },
        );
    }
    by_guid.into_values().collect()
}

/// How many of these records are settled in the source, as [`RecordCounts`] counts them.
fn settled_in_source(records: &[Record]) -> u64 {
    records
        .iter()
        .filter(|r| r.source_fingerprint.is_some() && r.status != RecordStatus::Failed)
        .count() as u64
}

/// By key, the users in scope among the records read: every known user the read did not
/// remove (the records not read are in scope too; nothing asks about them).
fn widen_scope(in_scope: &mut GuidSet, heads: &[Record], removed: &HashSet<EntryGuid>) {
    in_scope.extend(
        heads
            .iter()
            .filter(|r| r.source_fingerprint.is_some() || r.status == RecordStatus::Failed)
            .filter(|r| !removed.contains(&r.guid))
            .map(|r| r.guid.clone()),
    );
}

/// By key: `heads` with the records that hold a user name the plan creates or renames a user
/// to, or a target user it deprovisions, so that one target user stays with one entry.
async fn with_sharers(
    store: &dyn Store,
    key: &ChannelKey,
    plan: &Plan,
    heads: Vec<Record>,
    in_scope: &mut GuidSet,
) -> Result<Vec<Record>, CycleError> {
    // The names of creates, and of updates that rename (to another name than their record's).
    let held: HashMap<&EntryGuid, Option<&str>> = heads
        .iter()
        .map(|r| (&r.guid, r.user_name.as_deref()))
        .collect();
    let renames = |o: &&PlannedOperation| {
        matches!(o.operation, Operation::Update { .. })
            && held
                .get(&o.guid)
                .copied()
                .flatten()
                .zip(o.user_name.as_deref())
                .is_some_and(|(old, new)| old.to_lowercase() != new.to_lowercase())
    };
    let names: Vec<String> = plan
        .operations
        .iter()
        .filter(|o| matches!(o.operation, Operation::Create { .. }) || renames(o))
        .filter_map(|o| o.user_name.clone())
        .collect();
    let targets: Vec<TargetId> = plan
        .operations
        .iter()
        .filter_map(|o| match &o.operation {
            Operation::Disable { target_id, .. } | Operation::Delete { target_id } => {
                Some(target_id.clone())
            }
            _ => None,
        })
        .collect();
    let mut sharers = store
        .record_heads_with(key, RecordKey::UserNames(&names))
        .await?;
    sharers.extend(
        store
            .record_heads_with(key, RecordKey::TargetIds(&targets))
            .await?,
    );
    let known: HashSet<EntryGuid> = heads.iter().map(|r| r.guid.clone()).collect();
    // Records not read before were not touched by the read: in scope if the source has them.
    sharers.retain(|r| !known.contains(&r.guid));
    in_scope.extend(
        sharers
            .iter()
            .filter(|r| r.source_fingerprint.is_some() || r.status == RecordStatus::Failed)
            .map(|r| r.guid.clone()),
    );
    Ok(merge_heads(sharers, heads))
}

fn provisioned_users(records: &[Record]) -> usize {
    records.iter().filter(|r| r.target_id.is_some()).count()
}

/// The groups a plan compares: the groups as the directory has them, their records, and every
/// group record (the whole ones where planned), of which the guard takes its shares.
pub(super) struct GroupsToPlan<'a> {
    pub desired: &'a [DesiredGroup],
    pub records: &'a [GroupRecord],
    pub population: &'a [GroupRecord],
}

/// The group operations as they look before the users are applied (the users this plan
/// deprovisions lose their memberships), guarded.
fn plan_guarded_groups(
    plan: &mut Plan,
    heads: &[Record],
    groups: &GroupsToPlan,
    guard: &GuardInput,
) {
    let leaving: HashSet<&str> = plan
        .operations
        .iter()
        .filter(|o| o.operation.deprovisions())
        .map(|o| o.guid.as_str())
        .collect();
    let members = Members::of(heads, guard.in_scope, &leaving);
    let operations = plan_groups(groups.desired, groups.records, &members);
    (plan.group_operations, plan.held_groups) = guard_groups(operations, groups.population, guard);
}

/// What the read holds, compared with the records.
struct Detected {
    changes: Changes,
    /// Entries that cannot be keyed by GUID, each with the DN key its record goes under.
    failures: Vec<(EntryFailure, EntryGuid)>,
    /// GUIDs of the records the plan needs whole.
    wanted: Vec<EntryGuid>,
    in_scope: GuidSet,
    desired_groups: Vec<DesiredGroup>,
    group_failures: Vec<(String, String)>,
    suspect_read: Option<String>,
    waiting_retry: u64,
}

/// Compares the read with the records (`heads`): what was added, changed and removed, and the
/// failed records whose retry waits.
fn detect_changes(
    scan: SourceScan,
    heads: &[Record],
    fingerprint: &str,
    now_ms: EpochMs,
) -> Detected {
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
    let in_scope: GuidSet = users_by_dn
        .iter()
        .map(|(_, guid)| EntryGuid::from(*guid))
        .collect();
    let desired_groups = desired_groups(&scan.groups, &users_by_dn);
    let group_failures = scan
        .group_failures
        .iter()
        .map(|f| (f.dn.clone(), f.reason.clone()))
        .collect();
    let mut changes = if scan.complete {
        detect(scan.users, heads, fingerprint)
    } else {
        detect_incremental(scan.users, &scan.removed_guids, heads, fingerprint)
    };
    // Entries that cannot be keyed by GUID are keyed by DN so that they fail alone, on the
    // record; the record of the user at that DN is not a leaver: its entry is there, unreadable.
    let failures: Vec<(EntryFailure, EntryGuid)> = scan
        .failures
        .into_iter()
        .map(|f| {
            let key = EntryGuid::of_dn(&normalize_dn(&f.dn));
            (f, key)
        })
        .collect();
    let failure_dns: HashSet<String> = failures.iter().map(|(f, _)| normalize_dn(&f.dn)).collect();
    changes.removed.retain(|r| {
        !failures.iter().any(|(_, key)| *key == r.guid)
            && !failure_dns.contains(&normalize_dn(&r.dn))
    });
    defer_retries(&mut changes, heads, now_ms);
    let head_guids: HashSet<&str> = heads.iter().map(|r| r.guid.as_str()).collect();
    let wanted: Vec<EntryGuid> = changes
        .added
        .iter()
        .chain(&changes.modified)
        .map(|item| item.entry.guid.clone())
        .chain(changes.removed.iter().map(|r| r.guid.clone()))
        .chain(failures.iter().map(|(_, key)| key.clone()))
        .filter(|guid| head_guids.contains(guid.as_str()))
        .collect();
    // Failed records this cycle does not retry (their backoff runs, or the read did not return
    // them) wait for a later one, whatever the change detection.
    let retried: HashSet<&str> = wanted.iter().map(EntryGuid::as_str).collect();
    let waiting_retry = heads
        .iter()
        .filter(|r| r.status == RecordStatus::Failed && !retried.contains(r.guid.as_str()))
        .count() as u64;
    Detected {
        changes,
        failures,
        wanted,
        in_scope,
        desired_groups,
        group_failures,
        suspect_read: scan.suspect,
        waiting_retry,
    }
}

/// Maps the changed entries and plans every user operation.
fn plan_changes(
    mut changes: Changes,
    failures: Vec<(EntryFailure, EntryGuid)>,
    by_guid: &HashMap<EntryGuid, Record>,
    connection: &Connection,
    channel: &Channel,
    settings: &EffectiveSourceSettings,
) -> Plan {
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
        .map(|item| map_candidate(item, channel, settings, by_guid))
        .collect();
    candidates.extend(failures.into_iter().map(|(failure, key)| Candidate {
        guid: key,
        dn: failure.dn,
        fingerprint: String::new(),
        mapped: Err(failure.reason),
    }));
    plan_users(
        candidates,
        changes.removed,
        by_guid,
        &connection.options,
        changes.unchanged,
    )
}

/// Says in the plan which operations an interrupted cycle sent and never settled.
fn note_unsettled(plan: &mut Plan, unsettled: &HashMap<&str, &JournalEntry>) {
    for op in &mut plan.operations {
        if let Some(entry) = unsettled.get(op.guid.as_str()) {
            op.resumed_cycle = Some(entry.cycle_id);
            op.reason = format!(
                "{} (the {} sent in cycle {} was never settled)",
                op.reason, entry.operation, entry.cycle_id
            );
        }
    }
}

/// The channel's users active in the target: the population of the guard's shares (leavers
/// disabled long ago do not make a mass deprovisioning look small).
pub(super) fn active_users(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| r.target_id.is_some() && r.status != RecordStatus::Disabled)
        .count()
}

/// Maps a changed entry to the user the target should hold. Create-only fields keep what the
/// target was given when the user was created.
pub(super) fn map_candidate(
    item: Fingerprinted,
    channel: &Channel,
    settings: &EffectiveSourceSettings,
    records: &HashMap<EntryGuid, Record>,
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
pub(super) fn outcome_unknown(records: &mut [Record], unsettled: &HashMap<&str, &JournalEntry>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group(guid: &str, stamp: Option<&str>) -> GroupRecord {
        GroupRecord {
            guid: guid.into(),
            dn: format!("cn={guid}"),
            display_name: guid.into(),
            target_id: Some(format!("t-{guid}").into()),
            members: Vec::new(),
            status: RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            source_stamp: stamp.map(str::to_owned),
        }
    }

    fn read(guid: &str, stamp: &str) -> DesiredGroup {
        DesiredGroup {
            guid: guid.into(),
            dn: format!("cn={guid}"),
            display_name: guid.into(),
            member_guids: Vec::new(),
            source_stamp: Some(stamp.into()),
        }
    }

    #[test]
    fn a_group_read_whole_at_the_version_its_record_keeps_forgets_it_until_planned() {
        let heads = [
            group("joined", Some("entryCSN:1")),
            group("moved", Some("entryCSN:1")),
            group("waiting", None),
            group("unread", Some("entryCSN:1")),
        ];
        let read = [
            read("joined", "entryCSN:1"),
            read("moved", "entryCSN:2"),
            read("waiting", "entryCSN:1"),
        ];
        let read = read.iter().map(|g| (&g.guid, g.source_stamp.as_deref()));
        let unstamped = unstamped(&heads, read);
        assert_eq!(unstamped, [group("joined", None)]);
    }
}
