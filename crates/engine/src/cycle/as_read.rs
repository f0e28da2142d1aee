//! The new users of a full read, created as the read gives them (see [`CreateAsRead`]): each
//! page's new users are mapped, planned and applied before the next page is read, so that a
//! first cycle holds a page of users, not the directory it provisions. A user whose userName a
//! record already holds, or an earlier user of the page, is left to the cycle's plan, which
//! decides between them as it always does (`refuse_shared_user_names`): the first user created
//! keeps the name. Creates are never held by the guard, so nothing the guard weighs is sent
//! early; the users created do not count among those the guard takes its shares of.
//!
//! When the source hands the read's groups over before its users (an LDIF file; LDAP when the
//! read is full from the start), the cycle is a first one (no user of the channel in the target
//! yet) and creates go in Bulk requests, the new groups are created empty first and each page's Bulk requests add
//! their users to them (`groups::Rides`), as a cycle's plan does for the users it creates: the
//! members the target confirmed are recorded after each page, and those still waiting for a
//! PATCH are left to the group stage.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use scimbridge_model::{
    DataStore, EffectiveSourceSettings, EntryGuid, GroupOperation, GroupRecord, Operation,
    PlannedGroupOperation, PlannedOperation, RecordStatus, TargetId,
};
use tokio::sync::{Mutex, OnceCell};

use super::full_read::CreateAsRead;
use super::groups::Rides;
use super::plan::map_candidate;
use super::users::apply_users;
use super::{CycleContext, CycleError, Tally, TargetSession, bulk_capabilities};
use crate::apply::Capabilities;
use crate::apply::bulk::{self, GroupRides};
use crate::apply::groups::{AppliedGroup, GroupOutcome};
use crate::detect::Fingerprinted;
use crate::plan::plan_users;
use crate::source::{SourceGroup, normalize_dn};
use crate::state::{MemberChange, RecordKey};

/// Creates the new users of a cycle's full read page by page, with the cycle's target session
/// and tally.
pub(super) struct CreatedAsRead<'c, 'a> {
    cx: &'c CycleContext<'a>,
    target: &'c TargetSession<'a>,
    settings: EffectiveSourceSettings,
    /// Whether creates go in Bulk requests: asked of the target with the first page.
    bulk: OnceCell<Option<Capabilities>>,
    tally: Mutex<&'c mut Tally>,
    /// Users created or linked so far.
    created: AtomicU64,
    /// The groups created ahead, when the read handed its groups over first.
    rides: OnceCell<ReadRides>,
}

/// Groups created empty before the first page, and who joins them.
struct ReadRides {
    rides: Rides,
    /// The hash of a member's normalized DN → the indexes in `rides.created` of the groups it
    /// joins: a member DN of a million held once, by the groups read, not twice.
    joins: HashMap<u128, Vec<u32>>,
}

impl ReadRides {
    /// The groups each of these creates joins.
    fn groups_of(&self, operations: &[PlannedOperation]) -> HashMap<EntryGuid, Vec<TargetId>> {
        operations
            .iter()
            .filter_map(|op| {
                let joins = self.joins.get(&dn_hash(&normalize_dn(&op.dn)))?;
                let groups = joins
                    .iter()
                    .filter_map(|&i| self.rides.created.get(i as usize)?.target_id.clone())
                    .collect();
                Some((op.guid.clone(), groups))
            })
            .collect()
    }
}

/// A 128-bit hash of a normalized DN: two DNs of a directory never share one in practice, and a
/// member who did would be removed again by the group stage, which compares by DN.
fn dn_hash(dn: &str) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        (salt, dn).hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

impl<'c, 'a> CreatedAsRead<'c, 'a> {
    pub(super) fn new(
        cx: &'c CycleContext<'a>,
        target: &'c TargetSession<'a>,
        data_store: &DataStore,
        tally: &'c mut Tally,
    ) -> CreatedAsRead<'c, 'a> {
        CreatedAsRead {
            cx,
            target,
            settings: cx.channel.source_settings.effective(data_store.ldap_type()),
            bulk: OnceCell::new(),
            tally: Mutex::new(tally),
            created: AtomicU64::new(0),
            rides: OnceCell::new(),
        }
    }

    /// The target's Bulk capabilities when creates go in Bulk requests: asked once.
    async fn bulk(&self) -> Option<&Capabilities> {
        self.bulk
            .get_or_init(|| bulk_capabilities(self.cx, self.target, true))
            .await
            .as_ref()
    }

    /// Records the members the target confirmed in groups created ahead since the last call.
    async fn record_rides(&self, read: &ReadRides) -> Result<(), CycleError> {
        let cx = self.cx;
        for (target_id, mut members) in read.rides.rides.take_confirmed() {
            let record = read
                .rides
                .created
                .iter()
                .find(|r| r.target_id.as_ref() == Some(&target_id));
            let Some(record) = record else {
                continue;
            };
            members.sort();
            members.dedup();
            let change = MemberChange {
                added: &members,
                removed: &[],
            };
            cx.store.save_group_change(cx.key, record, change).await?;
        }
        Ok(())
    }

    /// The cycle's tally, with what was created.
    pub(super) fn into_tally(self) -> &'c mut Tally {
        self.tally.into_inner()
    }

    /// The userNames (lower-cased) of `operations`' creates that a record of the channel holds.
    async fn names_held(
        &self,
        operations: &[PlannedOperation],
    ) -> Result<HashSet<String>, CycleError> {
        let names: Vec<String> = operations
            .iter()
            .filter(|o| matches!(o.operation, Operation::Create { .. }))
            .filter_map(|o| o.user_name.clone())
            .collect();
        if names.is_empty() {
            return Ok(HashSet::new());
        }
        let holders = self
            .cx
            .store
            .record_heads_with(self.cx.key, RecordKey::UserNames(&names))
            .await?;
        Ok(holders
            .iter()
            .filter_map(|r| r.user_name.as_deref())
            .map(str::to_lowercase)
            .collect())
    }
}

#[async_trait]
impl CreateAsRead for CreatedAsRead<'_, '_> {
    async fn groups(&self, groups: &[SourceGroup]) -> Result<(), CycleError> {
        let cx = self.cx;
        // A first cycle creates every user; a later full read creates few, and the group stage
        // creates a new group with its members in one request.
        if cx.channel.source_location.group_base_dn.is_none()
            || groups.is_empty()
            || cx.store.record_counts(cx.key).await?.users > 0
        {
            return Ok(());
        }
        // New: no record of the group in the target. The rest is the group stage's.
        let heads = cx.store.group_heads(cx.key).await?;
        let known: HashSet<&EntryGuid> = heads
            .iter()
            .filter(|h| h.target_id.is_some())
            .map(|h| &h.guid)
            .collect();
        let new_groups: Vec<&SourceGroup> =
            groups.iter().filter(|g| !known.contains(&g.guid)).collect();
        if new_groups.is_empty() {
            return Ok(());
        }
        let Some(max_operations) = self.bulk().await.map(|c| c.bulk_max_operations) else {
            return Ok(());
        };
        if max_operations != 0 && new_groups.len() * 2 > max_operations {
            return Ok(());
        }
        let mut to_create = Vec::new();
        for group in &new_groups {
            // A group the target already has is linked by the group stage, as usual.
            match self.target.client.find_group(&group.display_name).await {
                Ok(None) => to_create.push((group.guid.clone(), group.display_name.clone())),
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "group look-up failed; groups go after the users");
                    return Ok(());
                }
            }
        }
        let ids = bulk::create_empty_groups(&self.target.client, &to_create, max_operations).await;
        let mut created: Vec<GroupRecord> = Vec::new();
        let mut joins: HashMap<u128, Vec<u32>> = HashMap::new();
        let mut tally = self.tally.lock().await;
        for group in new_groups {
            let Some(target_id) = ids.get(&group.guid) else {
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
                // The group stage keeps the version, once every member is in.
                source_stamp: None,
            };
            // Saved at once: a crash before the members are recorded leaves a group the next
            // cycle fills, never a second group.
            cx.store.save_group_record(cx.key, &record).await?;
            let index = created.len() as u32;
            for dn in &group.member_dns {
                let groups = joins.entry(dn_hash(dn)).or_default();
                // A member listed twice joins once.
                if groups.last() != Some(&index) {
                    groups.push(index);
                }
            }
            let planned = PlannedGroupOperation {
                guid: group.guid.clone(),
                dn: group.dn.clone(),
                display_name: group.display_name.clone(),
                operation: GroupOperation::Create {
                    display_name: group.display_name.clone(),
                    members: Vec::new(),
                },
                pending_members: Vec::new(),
                reason: "new in the source location".into(),
                source_stamp: None,
            };
            let applied = AppliedGroup {
                record: Some(record.clone()),
                outcome: GroupOutcome::Created,
                target_failure: None,
            };
            tally
                .events
                .extend(cx.audit.group(&planned, &applied, None));
            tally.summary.groups_created += 1;
            created.push(record);
        }
        if created.is_empty() {
            return Ok(());
        }
        let chunk_size = cx.connection.target.group_member_chunk_size.max(1) as usize;
        let rides = Rides {
            rides: GroupRides::new(HashMap::new(), chunk_size),
            created,
        };
        // Handed over once, before the first page.
        let _ = self.rides.set(ReadRides { rides, joins });
        Ok(())
    }

    async fn create(
        &self,
        new_users: Vec<Fingerprinted>,
    ) -> Result<Vec<Fingerprinted>, CycleError> {
        let cx = self.cx;
        let mut tally = self.tally.lock().await;
        // As `users::apply_users` decides for each unit: a chunk left unsent by a target that
        // answers again does not stop the creates of later pages.
        if self.target.outage.is_down() || cx.progress.should_stop() {
            // The cycle stops early and keeps its cursor: the next one reads these users again.
            // Every one counts (a failure to record too), so that the cycle is seen stopped.
            tally.not_sent += new_users.len() as u64;
            return Ok(Vec::new());
        }
        let no_records = HashMap::new();
        let candidates = new_users
            .iter()
            .map(|user| map_candidate(user.clone(), cx.channel, &self.settings, &no_records))
            .collect();
        let plan = plan_users(
            candidates,
            Vec::new(),
            &no_records,
            &cx.connection.options,
            0,
        );
        let held = self.names_held(&plan.operations).await?;
        let mut taken = HashSet::new();
        let (now, left): (Vec<PlannedOperation>, Vec<PlannedOperation>) = plan
            .operations
            .into_iter()
            .partition(|op| match (&op.operation, op.user_name.as_deref()) {
                (Operation::Create { .. }, Some(name)) => {
                    let name = name.to_lowercase();
                    !held.contains(&name) && taken.insert(name)
                }
                _ => true,
            });
        let left: HashSet<&EntryGuid> = left.iter().map(|op| &op.guid).collect();
        let bulk = self.bulk().await;
        let rides = self.rides.get().filter(|_| bulk.is_some());
        if let Some(read) = rides {
            read.rides.rides.next_users(read.groups_of(&now));
        }
        let before = tally.summary.created + tally.summary.linked;
        let ridden = rides.map(|r| &r.rides);
        apply_users(cx, self.target, (&now, &[]), bulk, ridden, &mut tally).await?;
        if let Some(read) = rides {
            self.record_rides(read).await?;
        }
        // The page's records are saved: the store answers for the users it claimed.
        self.target.owners.forget_saved();
        let created = tally.summary.created + tally.summary.linked - before;
        self.created.fetch_add(created, Ordering::Relaxed);
        Ok(new_users
            .into_iter()
            .filter(|user| left.contains(&user.entry.guid))
            .collect())
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }
}
