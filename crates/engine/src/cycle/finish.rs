//! The end of a cycle: what waits for an operator (held operations), what an interrupted cycle
//! left unsettled, the audit trail, and where the next read starts.

use std::collections::{HashMap, HashSet};

use scimbridge_model::{
    ChangeDetection, EntryGuid, HeldOperation, JournalEntry, OperationKind, PlannedGroupOperation,
    PlannedOperation, Record,
};

use super::plan::ChannelPlan;
use super::{CycleContext, CycleError, Tally};

/// A cycle that stopped after the users (told to stop, or the target found down): what settled
/// is saved; groups, held operations and the cursor wait for the next cycle, which plans the
/// unsent operations again.
pub(super) async fn stopped(cx: &CycleContext<'_>, tally: &mut Tally) -> Result<(), CycleError> {
    tally.record_events(cx, true).await?;
    // What the last completed cycle held still waits.
    tally.summary.held = cx.store.held_operations(cx.key).await?.len() as u64;
    Ok(())
}

/// A cycle that ran to its end: held operations saved for an operator, the unsettled journal
/// entries it did not send again closed, the events recorded, and the cursor moved on.
pub(super) async fn completed(
    cx: &CycleContext<'_>,
    planned: &ChannelPlan,
    held_groups: &[PlannedGroupOperation],
    tally: &mut Tally,
) -> Result<(), CycleError> {
    let plan = &planned.plan;
    // Held operations wait for an operator; approved ones were applied above.
    tally.summary.held = (plan.held.len() + held_groups.len()) as u64;
    let records: HashMap<&str, &Record> = planned
        .records
        .iter()
        .map(|r| (r.guid.as_str(), r))
        .collect();
    tally.events.extend(
        plan.held
            .iter()
            .map(|op| cx.audit.held(op, records.get(op.guid.as_str()).copied())),
    );
    tally
        .events
        .extend(held_groups.iter().map(|op| cx.audit.held_group(op)));
    close_unsettled(cx, &plan.operations, &planned.unsettled, tally).await?;
    let held = held_operations(cx, &plan.held, held_groups);
    cx.store.save_held_operations(cx.key, &held).await?;
    tally.record_events(cx, true).await?;
    // The cursor moves only once the changes it covers are applied: a crash before this line
    // reads them again, and the fingerprints make the second pass a no-op. While operations are
    // held it stays, so that the next cycle sees the held changes again. A full read's state
    // (an LDIF file's signature) is no cursor: it moves on while operations are held, unless the
    // read looked incomplete, so that the next file is compared with the last one known whole.
    let read = &planned.read;
    let full_read_state =
        read.mechanism == ChangeDetection::FullScan && planned.suspect_read.is_none();
    if held.is_empty() || full_read_state {
        cx.store
            .save_sync_state(cx.key, read.next_state.as_ref())
            .await?;
    }
    Ok(())
}

/// Unsettled operations this cycle did not send again (the user left the scope, or the guard
/// holds it): nothing more to learn from them; said once, then closed.
async fn close_unsettled(
    cx: &CycleContext<'_>,
    operations: &[PlannedOperation],
    unsettled: &[JournalEntry],
    tally: &mut Tally,
) -> Result<(), CycleError> {
    let sent_again: HashSet<&str> = operations
        .iter()
        .filter(|o| o.operation.writes_target())
        .map(|o| o.guid.as_str())
        .collect();
    let mut closed = Vec::new();
    for entry in unsettled
        .iter()
        .filter(|e| !sent_again.contains(e.guid.as_str()))
    {
        tracing::warn!(channel = %cx.key, user = %entry.label, operation = %entry.operation, cycle = entry.cycle_id, "an operation an interrupted cycle sent was not sent again; check this user in the target");
        tally.events.push(cx.audit.unsettled(entry));
        closed.push(entry.guid.clone());
    }
    cx.store.close_journal_entries(cx.key, &closed).await?;
    Ok(())
}

/// The operations the guard holds, as the state store keeps them for an operator.
fn held_operations(
    cx: &CycleContext<'_>,
    users: &[PlannedOperation],
    groups: &[PlannedGroupOperation],
) -> Vec<HeldOperation> {
    // The guard holds only operations that write to the target, which all have a kind.
    let held = |guid: &EntryGuid, label: &str, kind: OperationKind, reason: &str| HeldOperation {
        guid: guid.clone(),
        label: label.to_owned(),
        operation: kind,
        reason: reason.to_owned(),
        held_at_ms: cx.now_ms,
        approved: false,
    };
    let users = users.iter().filter_map(|op| {
        let kind = op.operation.kind()?;
        Some(held(&op.guid, op.label(), kind, &op.reason))
    });
    let groups = groups.iter().filter_map(|op| {
        let kind = op.operation.kind()?;
        Some(held(&op.guid, &op.display_name, kind, &op.reason))
    });
    users.chain(groups).collect()
}
