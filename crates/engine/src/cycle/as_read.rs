//! The new users of a full read, created as the read gives them (see [`AsRead`]): each
//! page's new users are mapped and planned as the read goes, and applied while the read goes
//! on (up to three pages at a time, see [`CreatedAsRead::send_pages`]), so that a first cycle
//! holds a few pages of users, not the directory it provisions, and the target is kept busy
//! while the next page is read. A user whose userName a record already holds, an earlier user of the
//! page, or a user of a page still being applied, is left to the cycle's plan, which decides
//! between them as it always does (`refuse_shared_user_names`) once every page is applied: the
//! first user created keeps the name. Creates are never held by the guard, so nothing the guard
//! weighs is sent early; the users created do not count among those the guard takes its shares
//! of.
//!
//! When the source hands the read's groups over before its users (an LDIF file; LDAP when the
//! read is full from the start), the cycle is a first one (no user of the channel in the target
//! yet) and creates go in Bulk requests, the new groups are created empty first and each page's Bulk requests add
//! their users to them (`groups::Rides`), as a cycle's plan does for the users it creates: the
//! members the target confirmed are recorded after each page, and those still waiting for a
//! PATCH are left to the group stage.

use std::collections::{HashMap, HashSet};
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::stream::{self, StreamExt};

use async_trait::async_trait;
use scimbridge_model::{
    ChannelKey, DataStore, EffectiveSourceSettings, EntryGuid, GroupOperation, GroupRecord,
    Operation, PlannedGroupOperation, PlannedOperation, Record, TargetId,
};
use tokio::sync::{Mutex, OnceCell, mpsc, watch};

use super::full_read::{AsRead, updates_as_read};
use super::groups::{NewGroup, Rides, create_ahead};
use super::plan::map_candidate;
use super::users::{Journaled, apply_users, close_unsent, journal_ahead};
use super::{CycleContext, CycleError, Tally, TargetSession, bulk_capabilities};
use crate::apply::Capabilities;
use crate::apply::bulk::GroupRides;
use crate::apply::groups::{AppliedGroup, GroupOutcome};
use crate::detect::Fingerprinted;
use crate::plan::guid_set::hash64;
use crate::plan::plan_users;
use crate::source::{SourceGroup, normalize_dn};
use crate::state::{MemberChange, RecordKey, Store};

/// How many pages of new users are applied at once: the requests of the next page start as
/// those of the page before are answered, so that the target always has `max_threads` of them,
/// also while two pages save what they settled (their records, audit events and the members of
/// the groups their Bulk requests filled).
const PAGES_IN_FLIGHT: usize = 3;

/// Creates the new users of a cycle's full read page by page, with the cycle's target session
/// and tally. The read plans each page and queues it; [`CreatedAsRead::send_pages`], run beside
/// the read in the same task, applies the pages queued.
pub(super) struct CreatedAsRead<'c, 'a> {
    cx: &'c CycleContext<'a>,
    target: &'c TargetSession<'a>,
    settings: EffectiveSourceSettings,
    /// Whether creates go in Bulk requests: asked of the target with the first page.
    bulk: OnceCell<Option<Capabilities>>,
    tally: Mutex<&'c mut Tally>,
    /// Users created or linked so far.
    created: AtomicU64,
    /// Changed users found unchanged after all whose records were refreshed.
    refreshed: AtomicU64,
    /// The groups created ahead, when the read handed its groups over first.
    rides: OnceCell<ReadRides>,
    /// Where the read queues each page's operations; `None` once the read is over.
    queue: std::sync::Mutex<Option<mpsc::Sender<Page>>>,
    /// The other end, taken by `send_pages`.
    queued: std::sync::Mutex<Option<mpsc::Receiver<Page>>>,
    /// The userNames (lower-cased) of the creates queued or being applied: their records are
    /// not saved yet, so the store does not know them.
    names_in_flight: std::sync::Mutex<HashSet<String>>,
    /// Why applying a page failed: the read stops with it.
    failed: std::sync::Mutex<Option<CycleError>>,
    /// A page failed: the pages still queued are not applied (the pages in flight finish, so
    /// that what they did is counted and audited).
    stopping: AtomicBool,
    /// Whether `send_pages` is over: every page queued applied, or one failed.
    all_sent: watch::Sender<bool>,
}

/// A page's operations queued to be applied: its new users' creates, or its changed users'
/// updates and refreshes with their whole records. Journaled before it is queued.
enum Page {
    Creates(Vec<PlannedOperation>),
    Updates {
        operations: Vec<PlannedOperation>,
        records: Vec<Record>,
    },
}

impl Page {
    fn operations(&self) -> &[PlannedOperation] {
        match self {
            Page::Creates(operations) | Page::Updates { operations, .. } => operations,
        }
    }
}

/// Groups created empty before the first page, and who joins them.
struct ReadRides {
    rides: Rides,
    joins: Joins,
}

impl ReadRides {
    /// The groups each of these creates joins.
    fn groups_of(&self, operations: &[PlannedOperation]) -> HashMap<EntryGuid, Vec<TargetId>> {
        operations
            .iter()
            .filter_map(|op| {
                let groups = self
                    .joins
                    .of(&normalize_dn(&op.dn))?
                    .iter()
                    .filter_map(|&i| self.rides.created.get(i as usize)?.target_id.clone())
                    .collect();
                Some((op.guid.clone(), groups))
            })
            .collect()
    }
}

/// Marks an entry of [`Joins::first`] that is an index in [`Joins::more`].
const MORE: u32 = 1 << 31;

/// Member DN → the groups it joins (indexes in `Rides::created`), for a million members in
/// about 16 bytes each: a member DN is held once, by the groups read, not twice.
#[derive(Default)]
struct Joins {
    /// The 64-bit hash of a member's normalized DN → the one group it joins, or, marked with
    /// [`MORE`], where in `more` the groups of a member of several are. Two DNs sharing a hash
    /// would ride along each other's groups until the group stage, which compares by DN, takes
    /// the stray member out (the next cycle's, if this one stops early).
    first: HashMap<u64, u32>,
    more: Vec<Vec<u32>>,
}

impl Joins {
    /// `dn` (normalized) joins the group at `index`; a member listed twice joins once.
    fn add(&mut self, dn: &str, index: u32) {
        let slot = self.first.entry(hash64(dn)).or_insert(index);
        if *slot == index {
            return;
        }
        if *slot & MORE == 0 {
            self.more.push(vec![*slot, index]);
            *slot = MORE | (self.more.len() - 1) as u32;
            return;
        }
        if let Some(groups) = self.more.get_mut((*slot & !MORE) as usize)
            && groups.last() != Some(&index)
        {
            groups.push(index);
        }
    }

    /// The groups `dn` (normalized) joins.
    fn of(&self, dn: &str) -> Option<&[u32]> {
        let slot = self.first.get(&hash64(dn))?;
        match *slot & MORE {
            0 => Some(std::slice::from_ref(slot)),
            _ => self.more.get((*slot & !MORE) as usize).map(Vec::as_slice),
        }
    }
}

impl<'c, 'a> CreatedAsRead<'c, 'a> {
    pub(super) fn new(
        cx: &'c CycleContext<'a>,
        target: &'c TargetSession<'a>,
        data_store: &DataStore,
        tally: &'c mut Tally,
    ) -> CreatedAsRead<'c, 'a> {
        // One page waits while the pages in flight are applied.
        let (queue, queued) = mpsc::channel(1);
        CreatedAsRead {
            cx,
            target,
            settings: cx.channel.source_settings.effective(data_store.ldap_type()),
            bulk: OnceCell::new(),
            tally: Mutex::new(tally),
            created: AtomicU64::new(0),
            refreshed: AtomicU64::new(0),
            rides: OnceCell::new(),
            queue: std::sync::Mutex::new(Some(queue)),
            queued: std::sync::Mutex::new(Some(queued)),
            names_in_flight: std::sync::Mutex::default(),
            failed: std::sync::Mutex::default(),
            stopping: AtomicBool::new(false),
            all_sent: watch::Sender::new(false),
        }
    }

    /// Applies the pages the read queues, [`PAGES_IN_FLIGHT`] at a time, until the read is over
    /// ([`CreatedAsRead::close`]) and every page queued is applied, or one fails (the read then
    /// stops with its error). Runs beside the read, in the same task: the read waits for it when
    /// the queue is full.
    pub(super) async fn send_pages(&self) {
        let queued = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(queued) = queued {
            let pages = stream::unfold(queued, |mut queued| async move {
                let page = queued.recv().await?;
                Some((page, queued))
            });
            let applied = pages
                .map(|page| self.apply_page(page))
                .buffer_unordered(PAGES_IN_FLIGHT);
            let mut applied = std::pin::pin!(applied);
            while let Some(result) = applied.next().await {
                if let Err(error) = result {
                    // The read stops at its next page; the pages in flight beside this one
                    // finish, and the pages still queued are counted as not sent (their
                    // journal entries closed).
                    self.stopping.store(true, Ordering::Relaxed);
                    self.failed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(error);
                }
            }
        }
        self.all_sent.send_replace(true);
    }

    /// The read is over: no page comes any more.
    pub(super) fn close(&self) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    fn take_failure(&self) -> Option<CycleError> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Applies one page's operations, with a tally of its own added to the cycle's.
    async fn apply_page(&self, page: Page) -> Result<(), CycleError> {
        let (operations, records, creates) = match page {
            Page::Creates(operations) => (operations, Vec::new(), true),
            Page::Updates {
                operations,
                records,
            } => (operations, records, false),
        };
        let cx = self.cx;
        let mut tally = Tally::default();
        if self.stopping.load(Ordering::Relaxed) {
            // A page failed and the cycle ends with its error: nothing of this one was sent.
            tally.not_sent = operations.len() as u64;
            self.tally.lock().await.absorb(tally);
            let unsent: Vec<&PlannedOperation> = operations.iter().collect();
            return close_unsent(cx.store, cx.key, &unsent).await;
        }
        let bulk = self.bulk().await;
        let rides = self.rides.get().filter(|_| bulk.is_some());
        let ridden = rides.map(|r| &r.rides);
        let mut applied = apply_users(
            cx,
            self.target,
            (&operations, &records),
            Journaled::Ahead,
            bulk,
            ridden,
            &mut tally,
        )
        .await;
        if let (Ok(()), Some(read)) = (&applied, rides) {
            applied = self.record_rides(read).await;
        }
        if let Some(read) = rides {
            read.rides
                .rides
                .forget_users(operations.iter().map(|op| &op.guid));
        }
        if applied.is_ok() {
            // The page's records are saved: the store answers for the users it claimed.
            let saved: HashSet<&EntryGuid> = operations.iter().map(|op| &op.guid).collect();
            self.target.owners.forget_saved(&saved);
        }
        // And knows the names of its creates, unless some went unsent (the cycle is stopping):
        // their names stay taken, so that no later user of this cycle takes one.
        if creates && applied.is_ok() && tally.not_sent == 0 {
            let mut names = self
                .names_in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for name in operations.iter().filter_map(|op| op.user_name.as_deref()) {
                names.remove(&name.to_lowercase());
            }
        }
        // Users of a page of updates created again (the target had lost them) were in the
        // target before the cycle: the guard's population keeps them.
        if creates {
            let created = tally.summary.created + tally.summary.linked;
            self.created.fetch_add(created, Ordering::Relaxed);
        } else if applied.is_ok() {
            let refreshed = operations
                .iter()
                .filter(|op| op.operation == Operation::Refresh)
                .count();
            self.refreshed
                .fetch_add(refreshed as u64, Ordering::Relaxed);
        }
        let mut cycle = self.tally.lock().await;
        cycle.absorb(tally);
        applied?;
        cycle.record_events(cx, false).await?;
        Ok(())
    }

    /// Whether a page of `users` goes no further: the error of a page that failed, or `true`
    /// when the target is down or the cycle stops. As `users::apply_users` decides for each
    /// unit: a chunk left unsent by a target that answers again does not stop later pages.
    async fn stopped_before(&self, users: usize) -> Result<bool, CycleError> {
        if let Some(error) = self.take_failure() {
            return Err(error);
        }
        if !(self.target.outage.is_down() || self.cx.progress.should_stop()) {
            return Ok(false);
        }
        // The cycle stops early and keeps its cursor: the next one reads these users again.
        // Every one counts (a failure to record too), so that the cycle is seen stopped.
        self.tally.lock().await.not_sent += users as u64;
        Ok(true)
    }

    /// Journals a page and queues it for `send_pages`, or applies it here when nobody applies
    /// pages any more (the read was closed); the error of a page that failed. Journaled here,
    /// while the pages queued before are applied: the read has time, the target does not.
    async fn queue_page(&self, page: Page) -> Result<(), CycleError> {
        journal_ahead(self.cx, page.operations()).await?;
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let unsent = match queue {
            Some(queue) => queue.send(page).await.err().map(|e| e.0),
            None => Some(page),
        };
        let Some(page) = unsent else {
            return Ok(());
        };
        // Nobody applies the pages any more: a page failed, or the read was closed.
        match self.take_failure() {
            Some(error) => {
                let unsent: Vec<&PlannedOperation> = page.operations().iter().collect();
                close_unsent(self.cx.store, self.cx.key, &unsent).await?;
                Err(error)
            }
            None => self.apply_page(page).await,
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

    /// The userNames (lower-cased) of `operations`' creates that a record of the channel holds,
    /// or a create still being applied.
    async fn names_held(
        &self,
        operations: &[PlannedOperation],
    ) -> Result<HashSet<String>, CycleError> {
        // Taken before the store is asked: a page applied meanwhile has its records saved.
        let mut held = self
            .names_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        held.extend(names_held_by_records(self.cx.store, self.cx.key, operations).await?);
        Ok(held)
    }
}

/// The userNames (lower-cased) of `operations`' creates that a record of the channel holds.
pub(super) async fn names_held_by_records(
    store: &dyn Store,
    key: &ChannelKey,
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
    let holders = store
        .record_heads_with(key, RecordKey::UserNames(&names))
        .await?;
    Ok(holders
        .iter()
        .filter_map(|r| r.user_name.as_deref())
        .map(str::to_lowercase)
        .collect())
}

#[async_trait]
impl AsRead for CreatedAsRead<'_, '_> {
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
        let ahead: Vec<NewGroup<'_>> = new_groups
            .iter()
            .map(|g| NewGroup {
                guid: &g.guid,
                dn: &g.dn,
                display_name: &g.display_name,
            })
            .collect();
        let Some(records) = create_ahead(cx, self.target, &ahead, max_operations).await? else {
            return Ok(());
        };
        let mut created: Vec<GroupRecord> = Vec::with_capacity(records.len());
        let mut joins = Joins::default();
        let mut tally = self.tally.lock().await;
        for (index, record) in records {
            let group = new_groups[index];
            let position = created.len() as u32;
            for dn in &group.member_dns {
                joins.add(dn, position);
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
        if self.stopped_before(new_users.len()).await? {
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
        if let Some(read) = self.rides.get().filter(|_| bulk.is_some()) {
            read.rides.rides.add_users(read.groups_of(&now));
        }
        self.names_in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(taken);
        self.queue_page(Page::Creates(now)).await?;
        Ok(new_users
            .into_iter()
            .filter(|user| left.contains(&user.entry.guid))
            .collect())
    }

    async fn update(&self, changed: Vec<Fingerprinted>) -> Result<Vec<Fingerprinted>, CycleError> {
        let cx = self.cx;
        if self.stopped_before(changed.len()).await? {
            return Ok(Vec::new());
        }
        let updates = updates_as_read(
            cx.store,
            cx.key,
            cx.channel,
            &self.settings,
            &cx.connection.options,
            &changed,
        )
        .await?;
        if !updates.operations.is_empty() {
            self.queue_page(Page::Updates {
                operations: updates.operations,
                records: updates.records,
            })
            .await?;
        }
        Ok(changed
            .into_iter()
            .filter(|user| updates.left.contains(&user.entry.guid))
            .collect())
    }

    async fn finish(&self) -> Result<(), CycleError> {
        self.close();
        let mut all_sent = self.all_sent.subscribe();
        // The sender lives as long as `self`: waiting ends when `send_pages` is over.
        let _ = all_sent.wait_for(|sent| *sent).await;
        match self.take_failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn refreshed(&self) -> u64 {
        self.refreshed.load(Ordering::Relaxed)
    }

    /// The users created have their records, saved page by page.
    fn unsaved_users(&self) -> Vec<(String, EntryGuid)> {
        Vec::new()
    }

    /// The records of the users created hold their names.
    fn name_taken_by(&self, _name: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member of one group takes no list; members of several keep every group once, in the
    /// order the groups were read, also when listed twice by one group.
    #[test]
    fn joins_hold_each_member_s_groups_once() {
        let mut joins = Joins::default();
        for (dn, group) in [
            ("uid=ann", 0),
            ("uid=bob", 0),
            ("uid=bob", 0),
            ("uid=bob", 1),
            ("uid=cara", 1),
            ("uid=bob", 2),
            ("uid=cara", 2),
            ("uid=cara", 2),
        ] {
            joins.add(dn, group);
        }
        assert_eq!(joins.of("uid=ann"), Some(&[0][..]));
        assert_eq!(joins.of("uid=bob"), Some(&[0, 1, 2][..]));
        assert_eq!(joins.of("uid=cara"), Some(&[1, 2][..]));
        assert_eq!(joins.of("uid=dan"), None);
        assert_eq!(joins.more.len(), 2);
    }
}
