//! The groups of a cycle's full read by key, planned and applied a few at a time once the users
//! are in. For each batch of groups, their members are found by DN among the records, compared
//! with those groups' records, guarded and sent before the next batch is looked at; the groups
//! gone from the source location are planned together first, so that the guard weighs how many
//! go at once. A full read then holds the member DNs of its groups as read, not the record of
//! every member and every group member row (a million of each at a million users).

use std::collections::{BTreeSet, HashMap, HashSet};

use scimbridge_model::{
    ChannelKey, DesiredGroup, EntryGuid, GroupRecord, GuardSettings, PlannedGroupOperation, Record,
};

use super::groups::{report_group_failures, send_all};
use super::plan::{ChannelPlan, members_found_by_dn, with_whole};
use super::planned_as_read::PlanStream;
use super::{CycleContext, CycleError, Tally, TargetSession};
use crate::plan::GuidSet;
use crate::plan::groups::{Members, desired_groups, plan_groups, settled_versions};
use crate::plan::guard::{GuardInput, guard_groups};
use crate::source::{SourceGroup, SourceScan, normalize_dn};
use crate::state::{GroupKey, MemberChange, RecordKey, Store};

/// The member DNs a batch of groups names, at most (a group larger than this is a batch of
/// its own): what bounds the records the group stage holds at once.
const MEMBERS_PER_BATCH: usize = 5_000;

/// The groups a full read returned, left by the plan to the group stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadGroups {
    /// Every group in scope, as read.
    pub entries: Vec<SourceGroup>,
    /// The users the read kept (new to the plan, changed, failed), by normalized DN: found here
    /// rather than by their record's DN, which may be the one before a rename.
    pub kept_users: HashMap<String, EntryGuid>,
}

impl ReadGroups {
    /// Takes the groups out of a full read's scan. `unsaved`: the (DN, GUID) of the users
    /// `plan` planned as it read, who have no record; members resolve to them as read.
    pub(super) fn take(scan: &mut SourceScan, unsaved: Vec<(String, EntryGuid)>) -> ReadGroups {
        let read = scan
            .users
            .iter()
            .map(|u| (normalize_dn(&u.dn), u.guid.clone()));
        let unsaved = unsaved
            .into_iter()
            .map(|(dn, guid)| (normalize_dn(&dn), guid));
        ReadGroups {
            entries: std::mem::take(&mut scan.groups),
            kept_users: read.chain(unsaved).collect(),
        }
    }

    /// Each group read with its version.
    pub(super) fn versions(&self) -> impl Iterator<Item = (&EntryGuid, Option<&str>)> {
        self.entries.iter().map(|g| (&g.guid, g.stamp.as_deref()))
    }
}

/// Plans, guards and applies the groups of a full read (see the module); returns the
/// operations the guard holds.
pub(super) async fn apply_read_groups(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    planned: &ChannelPlan,
    read: &ReadGroups,
    tally: &mut Tally,
) -> Result<Vec<PlannedGroupOperation>, CycleError> {
    report_group_failures(cx, planned, tally);
    let heads = cx.store.group_heads(cx.key).await?;
    if read.entries.is_empty() && heads.is_empty() {
        return Ok(Vec::new());
    }
    let guard = GuardInput {
        settings: &cx.connection.guard,
        approved: &planned.approved,
        provisioned: cx.store.record_counts(cx.key).await?.active as usize,
        in_scope: &planned.in_scope,
        suspect_read: planned.suspect_read.as_deref(),
    };
    let stage = GroupStage {
        cx,
        target,
        heads: &heads,
        guard: &guard,
    };
    let mut held = Vec::new();
    let gone = gone_records(cx.store, cx.key, &heads, read).await?;
    if !gone.is_empty() {
        held.extend(stage.send(&[], &gone, Members::default(), tally).await?);
    }
    // The users are applied: their records say who left.
    let members = MemberFinder::new(cx.store, cx.key, read, &planned.in_scope, HashSet::new());
    let mut looked_at = 0;
    for batch in batches(&read.entries, MEMBERS_PER_BATCH) {
        if target.outage.is_down() || cx.progress.should_stop() {
            // The cycle stops here: the groups not looked at are not done. Their records
            // forgot their version before the users were applied, so the next cycle reads
            // them whole and plans them.
            tally.not_sent += (read.entries.len() - looked_at) as u64;
            break;
        }
        looked_at += batch.len();
        let (desired, records, users) = members.batch(batch).await?;
        held.extend(stage.send(&desired, &records, users, tally).await?);
    }
    Ok(held)
}

/// For `plan`: the groups of a full read planned a batch at a time as the group stage plans
/// them, as they look before the users are applied (`leaving`: the GUIDs of the users whose
/// disable or delete the plan sends, who lose their memberships), guarded, and handed to
/// `stream` (see the module).
pub(super) async fn stream_read_groups(
    store: &dyn Store,
    key: &ChannelKey,
    guard: &GuardSettings,
    planned: &ChannelPlan,
    read: &ReadGroups,
    leaving: HashSet<&str>,
    stream: &dyn PlanStream,
) -> Result<(), CycleError> {
    let heads = store.group_heads(key).await?;
    if read.entries.is_empty() && heads.is_empty() {
        return Ok(());
    }
    let guard = GuardInput {
        settings: guard,
        approved: &planned.approved,
        provisioned: store.record_counts(key).await?.active as usize,
        in_scope: &planned.in_scope,
        suspect_read: planned.suspect_read.as_deref(),
    };
    let planned_groups = |desired: &[DesiredGroup], records: &[GroupRecord], users: &Members| {
        let operations = plan_groups(desired, records, users);
        let (operations, held) = guard_groups(operations, &with_whole(&heads, records), &guard);
        stream.groups(operations, held);
    };
    let gone = gone_records(store, key, &heads, read).await?;
    if !gone.is_empty() {
        planned_groups(&[], &gone, &Members::default());
    }
    let members = MemberFinder::new(store, key, read, &planned.in_scope, leaving);
    for batch in batches(&read.entries, MEMBERS_PER_BATCH) {
        let (desired, records, users) = members.batch(batch).await?;
        planned_groups(&desired, &records, &users);
    }
    Ok(())
}

/// The records of the groups recorded (`heads`) that the read did not return.
async fn gone_records(
    store: &dyn Store,
    key: &ChannelKey,
    heads: &[GroupRecord],
    read: &ReadGroups,
) -> Result<Vec<GroupRecord>, CycleError> {
    let read_guids: HashSet<&EntryGuid> = read.entries.iter().map(|g| &g.guid).collect();
    let gone: Vec<EntryGuid> = heads
        .iter()
        .filter(|head| !read_guids.contains(&head.guid))
        .map(|head| head.guid.clone())
        .collect();
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    Ok(store
        .group_records_with(key, GroupKey::Guids(&gone))
        .await?)
}

/// What each batch of groups is planned, guarded and sent with.
struct GroupStage<'s, 'c, 'a> {
    cx: &'c CycleContext<'a>,
    target: &'c TargetSession<'a>,
    /// Every group record without members: what the guard takes its shares of.
    heads: &'s [GroupRecord],
    guard: &'s GuardInput<'s>,
}

impl GroupStage<'_, '_, '_> {
    /// Plans `desired` against `records` (the records of those groups, and of the groups gone
    /// when `desired` is empty), saves the versions of the groups that need no operation,
    /// guards and sends the rest; returns the operations held.
    async fn send(
        &self,
        desired: &[DesiredGroup],
        records: &[GroupRecord],
        members: Members,
        tally: &mut Tally,
    ) -> Result<Vec<PlannedGroupOperation>, CycleError> {
        let (cx, target) = (self.cx, self.target);
        let operations = plan_groups(desired, records, &members);
        for record in settled_versions(desired, records, &operations) {
            cx.store
                .save_group_change(cx.key, &record, MemberChange::default())
                .await?;
        }
        let population = with_whole(self.heads, records);
        let (operations, held) = guard_groups(operations, &population, self.guard);
        send_all(cx, target, &operations, records, tally).await?;
        Ok(held)
    }
}

/// Groups in order, a batch at a time, each batch naming at most `members_per_batch` member
/// DNs unless one group alone names more.
fn batches(
    groups: &[SourceGroup],
    members_per_batch: usize,
) -> impl Iterator<Item = &[SourceGroup]> {
    let mut rest = groups;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut members = 0;
        let mut end = 0;
        while end < rest.len()
            && (end == 0 || members + rest[end].member_dns.len() <= members_per_batch)
        {
            members += rest[end].member_dns.len();
            end += 1;
        }
        let (batch, after) = rest.split_at(end);
        rest = after;
        Some(batch)
    })
}

/// Finds the members of a batch of groups among the channel's records.
struct MemberFinder<'a> {
    store: &'a dyn Store,
    key: &'a ChannelKey,
    read: &'a ReadGroups,
    kept_guids: HashSet<&'a EntryGuid>,
    in_scope: &'a GuidSet,
    /// The users whose disable or delete is planned and not yet applied (`plan`'s).
    leaving: HashSet<&'a str>,
}

impl<'a> MemberFinder<'a> {
    fn new(
        store: &'a dyn Store,
        key: &'a ChannelKey,
        read: &'a ReadGroups,
        in_scope: &'a GuidSet,
        leaving: HashSet<&'a str>,
    ) -> MemberFinder<'a> {
        MemberFinder {
            store,
            key,
            read,
            kept_guids: read.kept_users.values().collect(),
            in_scope,
            leaving,
        }
    }

    /// The groups of `batch` as read, their records, and who can be their members.
    async fn batch(
        &self,
        batch: &[SourceGroup],
    ) -> Result<(Vec<DesiredGroup>, Vec<GroupRecord>, Members), CycleError> {
        let (desired, member_heads) = self.of(batch).await?;
        let guids: Vec<EntryGuid> = batch.iter().map(|g| g.guid.clone()).collect();
        let records = self
            .store
            .group_records_with(self.key, GroupKey::Guids(&guids))
            .await?;
        let member_heads = self.with_recorded(member_heads, &desired, &records).await?;
        let users = Members::of(&member_heads, self.in_scope, &self.leaving);
        Ok((desired, records, users))
    }

    /// The groups of `batch` with their members in scope, and the records of those members
    /// found by DN (the users the read kept are found by the DN read, their heads not yet read).
    async fn of(
        &self,
        batch: &[SourceGroup],
    ) -> Result<(Vec<DesiredGroup>, Vec<Record>), CycleError> {
        let named: BTreeSet<&str> = batch.iter().flat_map(|g| &g.member_dns).collect();
        let (kept, by_record): (Vec<&str>, Vec<&str>) = named
            .into_iter()
            .partition(|dn| self.read.kept_users.contains_key(*dn));
        let by_record: Vec<String> = by_record.into_iter().map(str::to_owned).collect();
        let found = self
            .store
            .record_heads_with(self.key, RecordKey::Dns(&by_record))
            .await?;
        // A user the read kept at another DN is no longer at the DN its record keeps (renamed,
        // and a group still names the old DN); a user the read did not return left the scope.
        let found = members_found_by_dn(found, |r| {
            self.in_scope.contains(&r.guid) && !self.kept_guids.contains(&r.guid)
        });
        let users: Vec<(&str, &str)> = kept
            .iter()
            .filter_map(|dn| {
                let guid = self.read.kept_users.get(*dn)?;
                Some((*dn, guid.as_str()))
            })
            .chain(found.iter().map(|r| (r.dn.as_str(), r.guid.as_str())))
            .collect();
        let desired = desired_groups(batch, &users);
        Ok((desired, found))
    }

    /// `heads` with the heads of the other members `desired` or the groups' records name:
    /// whether each is in the target, and whether one out of scope keeps its memberships.
    async fn with_recorded(
        &self,
        mut heads: Vec<Record>,
        desired: &[DesiredGroup],
        records: &[GroupRecord],
    ) -> Result<Vec<Record>, CycleError> {
        let held: HashSet<&EntryGuid> = heads.iter().map(|r| &r.guid).collect();
        let others: BTreeSet<EntryGuid> = desired
            .iter()
            .flat_map(|d| &d.member_guids)
            .chain(
                records
                    .iter()
                    .flat_map(|r| r.members.iter().map(|m| &m.guid)),
            )
            .filter(|guid| !held.contains(guid))
            .cloned()
            .collect();
        let others: Vec<EntryGuid> = others.into_iter().collect();
        heads.extend(
            self.store
                .record_heads_with(self.key, RecordKey::Guids(&others))
                .await?,
        );
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, members: usize) -> SourceGroup {
        SourceGroup {
            guid: name.into(),
            dn: format!("cn={name},ou=groups,dc=example,dc=com"),
            display_name: name.to_owned(),
            member_dns: (0..members)
                .map(|i| format!("uid=u{i},ou=people,dc=example,dc=com"))
                .collect(),
            stamp: None,
        }
    }

    /// Batches keep the groups' order and stay within the member limit; a group larger than
    /// the limit is a batch of its own, and groups without members join their neighbours.
    #[test]
    fn groups_go_in_batches_of_bounded_members() {
        let groups = [
            group("a", 3),
            group("b", 2),
            group("c", 0),
            group("d", 9),
            group("e", 4),
            group("f", 1),
        ];
        let names: Vec<Vec<&str>> = batches(&groups, 5)
            .map(|batch| batch.iter().map(|g| g.display_name.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["a", "b", "c"], vec!["d"], vec!["e", "f"]]);
        assert_eq!(batches(&[], 5).count(), 0);
    }
}
