//! Applying the users' operations. They go in units (one operation, or a chunk of creates sent
//! with SCIM Bulk), journaled a batch ahead of sending (or all of them before, by the caller:
//! [`Journaled::Ahead`]), up to `max_threads` units at once over the
//! client's one connection pool; the records of settled operations are saved a batch at a time
//! (one write each batch), before their journal entries are closed; a create's claim of the
//! user it made is checked against the state store with others' before then. A failure that
//! may be the target's waits for the outage watch's verdict before it counts.

use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};
use scimbridge_model::{JournalEntry, Operation, PlannedOperation, Record, RecordStatus};

use super::driven::driven;
use super::groups::Rides;
use super::outage::IN_DOUBT_LIMIT;
use super::{CycleContext, CycleError, Tally, TargetSession};
use crate::apply::{Applied, Capabilities, Outcome, Owners, apply_operation, bulk};
use crate::audit::AuditContext;
use crate::state::Store;
use scimbridge_model::{ChannelKey, EntryGuid, EpochMs, TargetId, retry_backoff_ms};

/// How many units are journaled at once, ahead of sending them.
const JOURNAL_BATCH: usize = 64;
/// How many settled operations have their journal entries closed at once.
const JOURNAL_CLOSE_BATCH: usize = 256;
/// How many settled records are saved at once (their journal entries stay open until then).
const SAVE_BATCH: usize = 128;

/// Who journals the operations before they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Journaled {
    /// [`apply_users`], a batch of units ahead of sending them.
    AsSent,
    /// The caller, all of them, before [`apply_users`] (see [`journal_ahead`]): a full read's
    /// pages are journaled as they are queued, so that a page's first requests do not wait
    /// behind the store writes of the pages being settled.
    Ahead,
}

/// Journals `operations` (those that write the target) before they are applied with
/// [`Journaled::Ahead`].
pub(super) async fn journal_ahead(
    cx: &CycleContext<'_>,
    operations: &[PlannedOperation],
) -> Result<(), CycleError> {
    let entries = journal_entries(operations.iter(), cx.audit);
    if !entries.is_empty() {
        cx.store.journal_operations(cx.key, &entries).await?;
    }
    Ok(())
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

/// An operation with its record before, and what applying it gave.
type Done<'a> = (&'a PlannedOperation, Option<&'a Record>, Applied);

/// Applies user operations; `records` are the whole records of their entries. `bulk`: the
/// target's Bulk capabilities, when creates go in Bulk requests; `rides`: groups created ahead
/// that those requests fill.
pub(super) async fn apply_users(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    (operations, records): (&[PlannedOperation], &[Record]),
    journaled: Journaled,
    bulk: Option<&Capabilities>,
    rides: Option<&Rides>,
    tally: &mut Tally,
) -> Result<(), CycleError> {
    let writes = operations
        .iter()
        .filter(|o| o.operation.writes_target())
        .count() as u64;
    cx.progress.begin(cx.key, writes);
    let by_guid: HashMap<&str, &Record> = records.iter().map(|r| (r.guid.as_str(), r)).collect();
    let units = units(operations, bulk, rides);
    let sending = Sending {
        cx,
        target,
        units: &units,
        by_guid: &by_guid,
        journaled: tokio::sync::Mutex::new(match journaled {
            Journaled::AsSent => 0,
            Journaled::Ahead => units.len(),
        }),
        max_payload_size: bulk.map_or(0, |c| c.bulk_max_payload_size),
        rides,
    };
    let settled = stream::iter(0..units.len())
        .map(|index| sending.send(index))
        .buffer_unordered(cx.channel.max_threads.max(1) as usize);
    let (driving, mut answered) = driven(settled);
    let settling = async move {
        let mut settler = Settler {
            cx,
            owners: &target.owners,
            tally,
            settled_guids: Vec::new(),
            pending: Vec::new(),
            unchecked: Vec::new(),
        };
        let mut in_doubt: Vec<Done> = Vec::new();
        while let Some(result) = answered.recv().await {
            let (done, unsent) = result?;
            settler.tally.not_sent += unsent.len() as u64;
            close_unsent(cx.store, cx.key, &unsent).await?;
            for (op, existing, applied) in done {
                if applied.target_failure.is_none() {
                    // The target answers: the failures in doubt were the records' own. An
                    // operation that sends nothing (a refresh, a failure to map) says nothing
                    // of it.
                    if op.operation.writes_target() {
                        settler.resolve(in_doubt.drain(..), false).await?;
                    }
                    settler.answered(op, existing, applied).await?;
                } else if target.outage.is_down() {
                    // Sent while the target was found down: nobody's failure.
                    settler.leave(op, &applied).await?;
                } else {
                    in_doubt.push((op, existing, applied));
                    if in_doubt.len() >= IN_DOUBT_LIMIT {
                        let down = target
                            .outage
                            .target_down(
                                &target.client,
                                in_doubt.iter().map(|(_, _, a)| a.target_failure),
                            )
                            .await;
                        settler.resolve(in_doubt.drain(..), down).await?;
                    }
                }
            }
        }
        let down = !in_doubt.is_empty()
            && target
                .outage
                .target_down(
                    &target.client,
                    in_doubt.iter().map(|(_, _, a)| a.target_failure),
                )
                .await;
        settler.resolve(in_doubt.drain(..), down).await?;
        settler.check_claims().await?;
        settler.close_settled().await
    };
    let ((), settled) = tokio::join!(driving, settling);
    settled
}

/// What sending the units of one apply shares.
struct Sending<'s, 'a> {
    cx: &'s CycleContext<'s>,
    target: &'s TargetSession<'s>,
    units: &'s [Unit<'a>],
    by_guid: &'s HashMap<&'a str, &'a Record>,
    /// Units journaled so far, a batch at a time ahead of sending.
    journaled: tokio::sync::Mutex<usize>,
    max_payload_size: usize,
    rides: Option<&'s Rides>,
}

impl<'a> Sending<'_, 'a> {
    /// Sends the unit at `index`, journaled first.
    async fn send(
        &self,
        index: usize,
    ) -> Result<(Vec<Done<'a>>, Vec<&'a PlannedOperation>), CycleError> {
        let (cx, unit) = (self.cx, &self.units[index]);
        if cx.progress.should_stop() || self.target.outage.is_down() {
            return Ok((Vec::new(), unit.operations()));
        }
        // Journaled before anything is sent: a crash from here on leaves an operation the
        // next cycle knows to check.
        {
            let mut journaled = self.journaled.lock().await;
            if *journaled <= index {
                let end = (*journaled + JOURNAL_BATCH).min(self.units.len());
                let batch = &self.units[*journaled..end];
                let operations = batch.iter().flat_map(Unit::operations);
                cx.store
                    .journal_operations(cx.key, &journal_entries(operations, cx.audit))
                    .await?;
                *journaled += batch.len();
            }
        }
        // Never closed: a permit is always given. Waiting for one may take a while: asked again.
        let _permit = self.target.sending.acquire().await.ok();
        if cx.progress.should_stop() || self.target.outage.is_down() {
            // Journaled and not sent: its entry is closed with the unsent.
            return Ok((Vec::new(), unit.operations()));
        }
        let (by_guid, payload, rides) = (self.by_guid, self.max_payload_size, self.rides);
        send_unit(cx, self.target, unit, by_guid, payload, rides).await
    }
}

/// The units of the plan: creates in Bulk chunks when `bulk` is set, everything else one by one.
fn units<'a>(
    operations: &'a [PlannedOperation],
    bulk: Option<&Capabilities>,
    rides: Option<&Rides>,
) -> Vec<Unit<'a>> {
    let Some(capabilities) = bulk else {
        return operations.iter().map(Unit::One).collect();
    };
    let (creates, others): (Vec<&PlannedOperation>, Vec<&PlannedOperation>) = operations
        .iter()
        .partition(|o| matches!(o.operation, Operation::Create { .. }));
    others
        .into_iter()
        .map(Unit::One)
        .chain(
            creates
                .chunks(user_chunk(capabilities, rides))
                .map(|chunk| Unit::Bulk(chunk.to_vec())),
        )
        .collect()
}

/// How many user creates go in one Bulk request: fewer when group PATCHes ride along, so that
/// the request stays within the target's `maxOperations`.
fn user_chunk(capabilities: &Capabilities, rides: Option<&Rides>) -> usize {
    let users = bulk::chunk_size(capabilities.bulk_max_operations);
    let groups = rides.map_or(0, |r| r.created.len());
    match capabilities.bulk_max_operations {
        0 => users,
        max => users.min(max.saturating_sub(groups)).max(1),
    }
}

/// Sends one unit and saves the records that settled; returns them, and the operations left
/// unsent because the target failed on an earlier one of a Bulk chunk.
async fn send_unit<'a>(
    cx: &CycleContext<'_>,
    target: &TargetSession<'_>,
    unit: &Unit<'a>,
    by_guid: &HashMap<&str, &'a Record>,
    max_payload_size: usize,
    rides: Option<&Rides>,
) -> Result<(Vec<Done<'a>>, Vec<&'a PlannedOperation>), CycleError> {
    let options = &cx.connection.options;
    let ops: Vec<(&PlannedOperation, Option<&Record>)> = unit
        .operations()
        .into_iter()
        .map(|op| (op, by_guid.get(op.guid.as_str()).copied()))
        .collect();
    let results = match unit {
        Unit::One(op) => {
            vec![Some(
                apply_operation(&target.client, op, ops[0].1, options, &target.owners).await,
            )]
        }
        Unit::Bulk(_) => {
            bulk::create_users(
                &target.client,
                &ops,
                options,
                max_payload_size,
                rides.map(|r| &r.rides),
                &target.owners,
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
            schedule_retry(record, cx.now_ms);
        }
        done.push((op, existing, applied));
    }
    Ok((done, unsent))
}

/// The record a settled operation saves, when that is all it does (no record dropped, no
/// account taken over).
fn plain_save<'r>(
    op: &PlannedOperation,
    existing: Option<&Record>,
    applied: &'r Applied,
) -> Option<&'r Record> {
    let record = applied.record.as_ref()?;
    let changed = existing != Some(record) || op.operation.writes_target();
    (changed && applied.took_over.is_none()).then_some(record)
}

/// Counts what settled: events, failures, the summary, progress; saves the records a batch at a
/// time, and then closes the journal entries of settled operations a batch at a time (a crash
/// before a batch is saved or closed only makes the next cycle check those users in the target
/// once more: their journal entries are still open). Creates whose claim of the user they made
/// is unchecked wait until a batch of them is checked against the state store at once.
struct Settler<'c, 'a, 'o> {
    cx: &'c CycleContext<'a>,
    owners: &'c Owners<'a>,
    tally: &'c mut Tally,
    settled_guids: Vec<EntryGuid>,
    /// Records to save, whose journal entries stay open until they are.
    pending: Vec<Record>,
    /// Creates waiting for their claim of the user they made (its target id) to be checked
    /// ([`Owners::claim_created`]).
    unchecked: Vec<(TargetId, Done<'o>)>,
}

impl<'o> Settler<'_, '_, 'o> {
    /// An operation the target answered: saved and settled, or, for a create whose claim is
    /// unchecked, once a batch of them is checked.
    async fn answered(
        &mut self,
        op: &'o PlannedOperation,
        existing: Option<&'o Record>,
        applied: Applied,
    ) -> Result<(), CycleError> {
        if let Some(claim) = &applied.unchecked_claim {
            self.unchecked
                .push((claim.target_id.clone(), (op, existing, applied)));
            if self.unchecked.len() >= SAVE_BATCH {
                self.check_claims().await?;
            }
            return Ok(());
        }
        self.save(op, existing, &applied).await?;
        self.settle(op, existing, applied).await
    }

    /// Asks the state store at once whether other entries have the users the waiting creates
    /// made, then saves and settles each as the verdict leaves it (a user another entry has is
    /// not linked: the create fails, as a claim refused in the create would).
    async fn check_claims(&mut self) -> Result<(), CycleError> {
        let waiting = std::mem::take(&mut self.unchecked);
        let claims: Vec<(TargetId, &EntryGuid)> = waiting
            .iter()
            .map(|(target_id, (op, _, _))| (target_id.clone(), &op.guid))
            .collect();
        let verdicts = match self.owners.check(&claims).await {
            Ok(verdicts) => verdicts.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(crate::state::full_message(&e)); claims.len()],
        };
        for ((_, (op, existing, applied)), verdict) in waiting.into_iter().zip(verdicts) {
            let verdict = verdict.as_ref().map_err(String::as_str);
            let mut applied = applied.checked(op, existing, verdict);
            if let Some(record) = &mut applied.record {
                schedule_retry(record, self.cx.now_ms);
            }
            self.save(op, existing, &applied).await?;
            self.settle(op, existing, applied).await?;
        }
        Ok(())
    }

    /// Saves what a settled operation left: a plain save joins the batch, the rest (a record
    /// dropped, an account taken over) is done at once.
    async fn save(
        &mut self,
        op: &PlannedOperation,
        existing: Option<&Record>,
        applied: &Applied,
    ) -> Result<(), CycleError> {
        match plain_save(op, existing, applied) {
            Some(record) => {
                self.pending.push(record.clone());
                if self.pending.len() >= SAVE_BATCH {
                    self.flush().await?;
                }
                Ok(())
            }
            None => save_user_record(self.cx.store, self.cx.key, op, existing, applied).await,
        }
    }

    /// Saves the pending records, in one write.
    async fn flush(&mut self) -> Result<(), CycleError> {
        let cx = self.cx;
        match self.pending.as_slice() {
            [] => {}
            [record] => cx.store.save_record(cx.key, record).await?,
            many => cx.store.save_records(cx.key, many).await?,
        }
        self.pending.clear();
        Ok(())
    }

    /// Saves what is pending, then closes the journal entries of what settled.
    async fn close_settled(&mut self) -> Result<(), CycleError> {
        self.flush().await?;
        let cx = self.cx;
        cx.store
            .close_journal_entries(cx.key, &self.settled_guids)
            .await?;
        self.settled_guids.clear();
        Ok(())
    }

    async fn settle(
        &mut self,
        op: &PlannedOperation,
        existing: Option<&Record>,
        applied: Applied,
    ) -> Result<(), CycleError> {
        let cx = self.cx;
        if op.operation.writes_target() {
            self.settled_guids.push(op.guid.clone());
        }
        if self.settled_guids.len() >= JOURNAL_CLOSE_BATCH {
            self.close_settled().await?;
        }
        self.tally
            .events
            .extend(cx.audit.user(op, &applied, existing));
        if self.tally.events_due() {
            // Only what is settled is logged: a crash after this cannot send it again.
            self.close_settled().await?;
            self.tally.record_events(cx, false).await?;
        }
        match &applied.outcome {
            Outcome::Failed(reason) => {
                tracing::warn!(channel = %cx.key, user = op.label(), operation = op.operation.verb(), %reason, "record failed");
                self.tally
                    .failures
                    .push((op.label().to_owned(), reason.clone()));
            }
            Outcome::Blocked
                if existing.and_then(|r| r.last_error.as_deref()) != Some(op.reason.as_str()) =>
            {
                // Once per record, not once per cycle.
                tracing::warn!(channel = %cx.key, user = op.label(), reason = %op.reason, "action blocked by a provisioning option");
            }
            _ => tracing::debug!(channel = %cx.key, "{op}"),
        }
        if op.operation != Operation::Refresh {
            applied.outcome.count(&mut self.tally.summary);
        }
        if op.operation.writes_target() {
            cx.progress.advance(op, &applied.outcome);
        }
        Ok(())
    }

    /// The verdict on failures in doubt: the target is down (`down`), and they are nobody's;
    /// or it answers, and they are the records' own.
    async fn resolve(
        &mut self,
        in_doubt: impl Iterator<Item = Done<'o>>,
        down: bool,
    ) -> Result<(), CycleError> {
        for (op, existing, applied) in in_doubt {
            if down {
                self.leave(op, &applied).await?;
            } else {
                self.answered(op, existing, applied).await?;
            }
        }
        Ok(())
    }

    /// An operation sent while the target was found down: its record is left as it was, and
    /// its journal entry stays open when the target may have acted, so that the next cycle
    /// checks the user before sending it again.
    async fn leave(&mut self, op: &PlannedOperation, applied: &Applied) -> Result<(), CycleError> {
        self.tally.not_sent += 1;
        let acted = applied.target_failure.is_some_and(|f| f.outcome_unknown);
        if !acted && op.resumed_cycle.is_none() {
            self.cx
                .store
                .close_journal_entries(self.cx.key, std::slice::from_ref(&op.guid))
                .await?;
        }
        Ok(())
    }
}

/// The journal entries of those of `operations` that write to the target.
fn journal_entries<'o>(
    operations: impl Iterator<Item = &'o PlannedOperation>,
    audit: &AuditContext<'_>,
) -> Vec<JournalEntry> {
    let now_ms = audit.clock.now_ms();
    operations
        .filter_map(|op| {
            Some(JournalEntry {
                guid: op.guid.clone(),
                dn: op.dn.clone(),
                label: op.label().to_owned(),
                operation: op.operation.kind()?,
                cycle_id: audit.cycle_id,
                sent_at_ms: now_ms,
            })
        })
        .collect()
}

/// Closes the journal entries of operations journaled ahead and then not sent (the cycle was
/// told to stop): nothing was sent, so there is nothing to check. An entry an earlier,
/// interrupted cycle left stays.
pub(super) async fn close_unsent(
    store: &dyn Store,
    key: &ChannelKey,
    unsent: &[&PlannedOperation],
) -> Result<(), CycleError> {
    let guids: Vec<EntryGuid> = unsent
        .iter()
        .filter(|op| op.operation.writes_target() && op.resumed_cycle.is_none())
        .map(|op| op.guid.clone())
        .collect();
    if !guids.is_empty() {
        store.close_journal_entries(key, &guids).await?;
    }
    Ok(())
}

/// When a failed record is tried again.
pub(super) fn schedule_retry(record: &mut Record, now_ms: EpochMs) {
    if record.status == RecordStatus::Failed {
        record.retry_after_ms = retry_backoff_ms(record.attempts).map(|wait| now_ms.plus_ms(wait));
    }
}

/// Saves what a settled user operation left: a settled write is always saved (its journal
/// entry is closed next), a dropped record deleted.
pub(super) async fn save_user_record(
    store: &dyn Store,
    key: &ChannelKey,
    op: &PlannedOperation,
    existing: Option<&Record>,
    applied: &Applied,
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
async fn hand_over(
    store: &dyn Store,
    key: &ChannelKey,
    old: &EntryGuid,
    new: &EntryGuid,
) -> Result<(), CycleError> {
    tracing::info!(channel = %key, from = %old, to = %new, "a disabled account passed to a new entry");
    store.move_group_memberships(key, old, new).await?;
    store.delete_record(key, old).await?;
    Ok(())
}
