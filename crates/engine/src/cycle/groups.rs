//! The groups of a cycle. New groups may be created ahead and ride along with the users' Bulk
//! requests; every group is then planned again once the users are in (so that members resolve to
//! the users just created), guarded, and applied.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::stream::{self, StreamExt};
use scimbridge_model::{
    ChannelKey, EntryGuid, GroupMember, GroupOperation, GroupRecord, PlannedGroupOperation, Record,
    RecordStatus, TargetId,
};

use super::driven::driven;
use super::outage::IN_DOUBT_LIMIT;
use super::plan::{ChannelPlan, active_users, with_whole};
use super::{CycleContext, CycleError, Tally, TargetSession};
use crate::apply::bulk::{self, GroupRides};
use crate::apply::groups::{AppliedGroup, GroupOutcome, GroupSettings, apply_group_operation};
use crate::plan::groups::{Members, plan_groups, settled_versions};
use crate::plan::guard::{GuardInput, guard_groups};
use crate::state::{GroupKey, MemberChange, RecordKey, Store};

/// Groups created empty ahead of the users, that the users' Bulk requests fill.
pub(super) struct Rides {
    pub rides: GroupRides,
    /// Their records, saved when created.
    pub created: Vec<GroupRecord>,
}

/// Creates the cycle's new groups empty with Bulk (those the target does not have already) and
/// saves their records, so that the users' Bulk requests can add the members. `None` when there
/// is nothing to ride along, or too many groups for the target's `maxOperations`.
pub(super) async fn prepare_rides(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    planned: &ChannelPlan,
    max_operations: usize,
) -> Result<Option<Rides>, CycleError> {
    let new_groups: Vec<NewGroup<'_>> = planned
        .plan
        .group_operations
        .iter()
        .filter(|g| matches!(g.operation, GroupOperation::Create { .. }))
        .map(|g| NewGroup {
            guid: &g.guid,
            dn: &g.dn,
            display_name: &g.display_name,
        })
        .collect();
    let Some(created) = create_ahead(cx, target, &new_groups, max_operations).await? else {
        return Ok(None);
    };
    let mut groups_of_user: HashMap<EntryGuid, Vec<TargetId>> = HashMap::new();
    for (_, record) in &created {
        let Some(target_id) = &record.target_id else {
            continue;
        };
        let desired = planned
            .desired_groups
            .iter()
            .find(|d| d.guid == record.guid);
        for member in desired.into_iter().flat_map(|d| &d.member_guids) {
            groups_of_user
                .entry(member.clone())
                .or_default()
                .push(target_id.clone());
        }
    }
    let chunk_size = cx.connection.target.group_member_chunk_size.max(1) as usize;
    Ok(Some(Rides {
        rides: GroupRides::new(groups_of_user, chunk_size),
        created: created.into_iter().map(|(_, record)| record).collect(),
    }))
}

/// A group to create empty ahead of its members.
pub(super) struct NewGroup<'g> {
    pub guid: &'g EntryGuid,
    pub dn: &'g str,
    pub display_name: &'g str,
}

/// Creates `new_groups` empty in Bulk requests (those the target does not have already: the
/// group stage links them, as usual) and saves their records; returns each group created with
/// its index in `new_groups`. `None` when none was created, a look-up failed, or there are too
/// many groups for the target's `maxOperations`: the groups then go after the users.
pub(super) async fn create_ahead(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    new_groups: &[NewGroup<'_>],
    max_operations: usize,
) -> Result<Option<Vec<(usize, GroupRecord)>>, CycleError> {
    if new_groups.is_empty() || (max_operations != 0 && new_groups.len() * 2 > max_operations) {
        return Ok(None);
    }
    let mut to_create = Vec::new();
    for group in new_groups {
        match target.client.find_group(group.display_name).await {
            Ok(None) => to_create.push((group.guid.clone(), group.display_name.to_owned())),
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "group look-up failed; groups go after the users");
                return Ok(None);
            }
        }
    }
    let ids = bulk::create_empty_groups(&target.client, &to_create, max_operations).await;
    let mut created = Vec::new();
    for (index, group) in new_groups.iter().enumerate() {
        let Some(target_id) = ids.get(group.guid) else {
            continue;
        };
        let record = GroupRecord {
            guid: group.guid.clone(),
            dn: group.dn.to_owned(),
            display_name: group.display_name.to_owned(),
            target_id: Some(target_id.clone()),
            members: Vec::new(),
            status: RecordStatus::Provisioned,
            last_error: None,
            attempts: 0,
            // The group stage that follows the users keeps the version, once every member is in.
            source_stamp: None,
        };
        // Saved at once: a crash before the members are recorded leaves a group the next cycle
        // fills, never a second group.
        cx.store.save_group_record(cx.key, &record).await?;
        created.push((index, record));
    }
    Ok((!created.is_empty()).then_some(created))
}

/// Records the groups that rode along with the members the target confirmed, and their
/// creation in the audit trail.
pub(super) async fn record_rides(
    cx: &CycleContext<'_>,
    planned: &ChannelPlan,
    rides: Rides,
    tally: &mut Tally,
) -> Result<(), CycleError> {
    tally.summary.groups_created += rides.created.len() as u64;
    let confirmed = rides.rides.confirmed();
    for mut record in rides.created {
        if let Some(target_id) = &record.target_id {
            record.members = confirmed.get(target_id).cloned().unwrap_or_default();
            record.members.sort();
            record.members.dedup();
        }
        // Saved empty when created: the members are all added.
        let change = MemberChange {
            added: &record.members,
            removed: &[],
        };
        cx.store.save_group_change(cx.key, &record, change).await?;
        let planned = planned
            .plan
            .group_operations
            .iter()
            .find(|g| g.guid == record.guid);
        if let Some(op) = planned {
            let applied = AppliedGroup {
                record: Some(record),
                outcome: GroupOutcome::Created,
                target_failure: None,
            };
            tally.events.extend(cx.audit.group(op, &applied, None));
        }
    }
    Ok(())
}

/// Plans the groups again now that the users are in, guards them and applies them; returns the
/// operations the guard holds.
pub(super) async fn apply_groups(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    planned: &ChannelPlan,
    tally: &mut Tally,
) -> Result<Vec<PlannedGroupOperation>, CycleError> {
    report_group_failures(cx, planned, tally);
    if cx.channel.source_location.group_base_dn.is_none()
        || (planned.desired_groups.is_empty() && planned.group_records.is_empty())
    {
        return Ok(Vec::new());
    }
    // Read again: the users are in now, and groups created with their Bulk requests too.
    let read = read_again(cx, planned).await?;
    let members = Members::of(&read.users, &planned.in_scope, &HashSet::new());
    let guard = GuardInput {
        settings: &cx.connection.guard,
        approved: &planned.approved,
        provisioned: read.active_users,
        in_scope: &planned.in_scope,
        suspect_read: planned.suspect_read.as_deref(),
    };
    let planned_operations = plan_groups(&planned.desired_groups, &read.groups, &members);
    let versions = settled_versions(&planned.desired_groups, &read.groups, &planned_operations);
    for record in versions {
        let change = MemberChange::default();
        cx.store.save_group_change(cx.key, &record, change).await?;
    }
    let (operations, held) = guard_groups(planned_operations, &read.population, &guard);
    send_all(cx, target, &operations, &read.groups, tally).await?;
    Ok(held)
}

/// Counts the group entries in scope that could not be keyed as failed groups.
pub(super) fn report_group_failures(
    cx: &CycleContext<'_>,
    planned: &ChannelPlan,
    tally: &mut Tally,
) {
    for (dn, reason) in &planned.group_failures {
        tracing::warn!(channel = %cx.key, group = %dn, %reason, "group failed");
        tally.summary.groups_failed += 1;
        tally.failures.push((format!("group {dn}"), reason.clone()));
    }
}

/// What the group stage reads again once the users are applied.
struct ReadAgain {
    /// The heads of the users the groups name (every user, when every group is planned).
    users: Vec<Record>,
    /// The records of the groups planned.
    groups: Vec<GroupRecord>,
    /// Every group record, whole where planned: what the guard takes its shares of.
    population: Vec<GroupRecord>,
    /// The channel's users active in the target.
    active_users: usize,
}

async fn read_again(cx: &CycleContext<'_>, planned: &ChannelPlan) -> Result<ReadAgain, CycleError> {
    let Some(guids) = &planned.planned_groups else {
        let users = cx.store.record_heads(cx.key).await?;
        let groups = cx.store.group_records(cx.key).await?;
        return Ok(ReadAgain {
            active_users: active_users(&users),
            users,
            population: groups.clone(),
            groups,
        });
    };
    let groups = cx
        .store
        .group_records_with(cx.key, GroupKey::Guids(guids))
        .await?;
    let members: BTreeSet<EntryGuid> = planned
        .desired_groups
        .iter()
        .flat_map(|d| d.member_guids.iter())
        .chain(
            groups
                .iter()
                .flat_map(|g| g.members.iter().map(|m| &m.guid)),
        )
        .cloned()
        .collect();
    let members: Vec<EntryGuid> = members.into_iter().collect();
    let users = cx
        .store
        .record_heads_with(cx.key, RecordKey::Guids(&members))
        .await?;
    let heads = cx.store.group_heads(cx.key).await?;
    let active_users = cx.store.record_counts(cx.key).await?.active as usize;
    Ok(ReadAgain {
        users,
        population: with_whole(&heads, &groups),
        groups,
        active_users,
    })
}

/// Sends the group operations, up to `max_threads` at once; failures that may be the target's
/// wait for the outage watch's verdict, as the users' do.
pub(super) async fn send_all(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    operations: &[PlannedGroupOperation],
    group_records: &[GroupRecord],
    tally: &mut Tally,
) -> Result<(), CycleError> {
    let existing: HashMap<&str, &GroupRecord> =
        group_records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let settings = GroupSettings {
        membership: cx.connection.target.group_membership_handling,
        chunk_size: cx.connection.target.group_member_chunk_size.max(1) as usize,
    };
    let settled = stream::iter(operations.iter().map(|op| {
        let existing = existing.get(op.guid.as_str()).copied();
        async move {
            if target.outage.is_down() {
                return Ok::<_, CycleError>(None);
            }
            let applied = apply_group_operation(&target.client, op, existing, settings).await;
            if applied.target_failure.is_none() {
                save_group_record(cx.store, cx.key, op, existing, &applied).await?;
            }
            Ok(Some((op, applied)))
        }
    }))
    .buffer_unordered(cx.channel.max_threads.max(1) as usize);
    // Driven beside the settling: the settler's saves never wait for a group in flight.
    let (driving, mut answered) = driven(settled);
    let existing = &existing;
    let settling = async move {
        let mut settler = GroupSettler {
            cx,
            existing,
            tally,
        };
        let mut in_doubt: Vec<(&PlannedGroupOperation, AppliedGroup)> = Vec::new();
        while let Some(result) = answered.recv().await {
            let Some((op, applied)) = result? else {
                settler.tally.not_sent += 1;
                continue;
            };
            if applied.target_failure.is_none() {
                settler.resolve(in_doubt.drain(..), false).await?;
                settler.settle(op, applied);
            } else if target.outage.is_down() {
                settler.tally.not_sent += 1;
            } else {
                in_doubt.push((op, applied));
                if in_doubt.len() >= IN_DOUBT_LIMIT {
                    let down = target
                        .outage
                        .target_down(
                            &target.client,
                            in_doubt.iter().map(|(_, a)| a.target_failure),
                        )
                        .await;
                    settler.resolve(in_doubt.drain(..), down).await?;
                }
            }
        }
        let down = !in_doubt.is_empty()
            && target
                .outage
                .target_down(
                    &target.client,
                    in_doubt.iter().map(|(_, a)| a.target_failure),
                )
                .await;
        settler.resolve(in_doubt.drain(..), down).await
    };
    let ((), settled) = tokio::join!(driving, settling);
    settled
}

/// Counts the group operations that settled.
struct GroupSettler<'c, 'a> {
    cx: &'c CycleContext<'a>,
    existing: &'c HashMap<&'c str, &'c GroupRecord>,
    tally: &'c mut Tally,
}

impl GroupSettler<'_, '_> {
    fn settle(&mut self, op: &PlannedGroupOperation, applied: AppliedGroup) {
        let cx = self.cx;
        let existing = self.existing.get(op.guid.as_str()).copied();
        self.tally
            .events
            .extend(cx.audit.group(op, &applied, existing));
        let summary = &mut self.tally.summary;
        match &applied.outcome {
            GroupOutcome::Created => summary.groups_created += 1,
            GroupOutcome::Linked => summary.groups_linked += 1,
            GroupOutcome::Updated => summary.groups_updated += 1,
            GroupOutcome::Deleted => summary.groups_deleted += 1,
            GroupOutcome::Forgotten => {}
            GroupOutcome::Failed(reason) => {
                tracing::warn!(channel = %cx.key, group = %op.display_name, %reason, "group failed");
                summary.groups_failed += 1;
                self.tally
                    .failures
                    .push((format!("group {}", op.display_name), reason.clone()));
            }
        }
        if !matches!(applied.outcome, GroupOutcome::Failed(_)) {
            tracing::debug!(channel = %cx.key, "{op}");
        }
    }

    /// The verdict on failures in doubt: down, they are nobody's and wait for the next cycle;
    /// else they are the groups' own.
    async fn resolve<'o>(
        &mut self,
        in_doubt: impl Iterator<Item = (&'o PlannedGroupOperation, AppliedGroup)>,
        down: bool,
    ) -> Result<(), CycleError> {
        for (op, applied) in in_doubt {
            if down {
                self.tally.not_sent += 1;
                continue;
            }
            let existing = self.existing.get(op.guid.as_str()).copied();
            save_group_record(self.cx.store, self.cx.key, op, existing, &applied).await?;
            self.settle(op, applied);
        }
        Ok(())
    }
}

async fn save_group_record(
    store: &dyn Store,
    key: &ChannelKey,
    op: &PlannedGroupOperation,
    existing: Option<&GroupRecord>,
    applied: &AppliedGroup,
) -> Result<(), CycleError> {
    match (&applied.record, existing) {
        (Some(record), Some(existing)) if existing != record => {
            let (added, removed) = member_change(&existing.members, &record.members);
            let change = MemberChange {
                added: &added,
                removed: &removed,
            };
            store.save_group_change(key, record, change).await?
        }
        (Some(record), None) => store.save_group_record(key, record).await?,
        (Some(_), Some(_)) => {}
        (None, Some(_)) => store.delete_group_record(key, &op.guid).await?,
        (None, None) => {}
    }
    Ok(())
}

/// What turns the members `before` into those `after`: the members added (or whose target user
/// changed), and the GUIDs of those removed.
fn member_change(
    before: &[GroupMember],
    after: &[GroupMember],
) -> (Vec<GroupMember>, Vec<EntryGuid>) {
    let before_set: HashSet<&GroupMember> = before.iter().collect();
    let after_guids: HashSet<&EntryGuid> = after.iter().map(|m| &m.guid).collect();
    let added = after
        .iter()
        .filter(|m| !before_set.contains(m))
        .cloned()
        .collect();
    let removed = before
        .iter()
        .filter(|m| !after_guids.contains(&m.guid))
        .map(|m| m.guid.clone())
        .collect();
    (added, removed)
}

/// The groups these users are members of (as recorded), or every group (`None`), forget their
/// version, so that the next cycle reads them whole: for a user who comes or goes without the
/// group stage of a cycle.
pub(super) async fn forget_group_versions(
    store: &dyn Store,
    key: &ChannelKey,
    users: Option<&[EntryGuid]>,
) -> Result<(), CycleError> {
    let groups = match users {
        Some(users) => {
            store
                .group_records_with(key, GroupKey::Members(users))
                .await?
        }
        None => store.group_heads(key).await?,
    };
    for group in groups {
        if group.source_stamp.is_some() {
            let head = GroupRecord {
                source_stamp: None,
                members: Vec::new(),
                ..group
            };
            store
                .save_group_change(key, &head, MemberChange::default())
                .await?;
        }
    }
    Ok(())
}
