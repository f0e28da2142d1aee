//! One user on demand (`scimbridge sync CONNECTION --user WHO`): the same stages as a cycle, for
//! one entry, read by DN (or by GUID when it moved). The mass-change guard does not apply: an
//! operator asked for it.

use std::collections::HashMap;
use std::time::Duration;

use scimbridge_model::{
    Channel, ChannelKey, Connection, DataStore, EntryGuid, JournalEntry, Operation,
    PlannedOperation, Record, RecordStatus,
};

use super::CycleError;
use super::groups::forget_group_versions;
use super::plan::{map_candidate, outcome_unknown};
use super::users::{save_user_record, schedule_retry};
use crate::apply::{Applied, CheckFailure, Outcome, Owners, ScimClient, apply_operation};
use crate::audit::AuditContext;
use crate::clock::Clock;
use crate::detect::{Fingerprinted, channel_fingerprint, entry_fingerprint};
use crate::plan::{
    Candidate, GuidSet, plan_users, protect_shared_targets, refuse_shared_user_names,
};
use crate::source::{UserLookup, normalize_dn, source_of};
use crate::state::Store;

/// What was planned for the user, and what applying it gave (`None` for a dry run).
#[derive(Debug, Clone, PartialEq)]
pub struct OneUser {
    pub operation: PlannedOperation,
    pub applied: Option<Applied>,
    /// The target was found down: nothing was counted against the record.
    pub target_down: bool,
}

/// Plans (and unless `dry_run`, applies) the one user with this DN. `None` when the channel
/// neither reads such an entry nor has a record of it.
pub async fn sync_one_user(
    store: &dyn Store,
    connection: &Connection,
    channel: &Channel,
    data_store: &DataStore,
    dn: &str,
    dry_run: bool,
    clock: &dyn Clock,
) -> Result<Option<OneUser>, CycleError> {
    let key = ChannelKey::new(&connection.name, &channel.name);
    let settings = channel.source_settings.effective(data_store.ldap_type());
    let fingerprint = channel_fingerprint(&connection.options, channel, &settings);
    let wanted = normalize_dn(dn);
    let heads = store.record_heads(&key).await?;
    let known = heads.iter().find(|r| normalize_dn(&r.dn) == wanted);
    let previous = store.sync_state(&key).await?;
    let lookup = UserLookup {
        dn,
        guid: known.map(|r| r.guid.as_str()),
        previous: previous.as_ref(),
        provisioned: heads.iter().any(|r| r.target_id.is_some()),
    };
    let read = source_of(data_store)
        .read_one_user(channel, &settings, &lookup)
        .await?;
    if let Some(suspect) = read.suspect {
        return Err(CycleError::Refused(format!(
            "{suspect}; nothing is written on demand from it (fix the file, or run a cycle and \
             approve what it holds)"
        )));
    }
    let entry = read.entry;
    let guid = match &entry {
        Some(Ok(entry)) => Some(entry.guid.clone()),
        _ => known.map(|r| r.guid.clone()),
    };
    let records: Vec<Record> = match &guid {
        Some(guid) => {
            store
                .records_by_guid(&key, std::slice::from_ref(guid))
                .await?
        }
        None => Vec::new(),
    };
    let unsettled = store.unsettled_operations(&key).await?;
    let unsettled_by_guid: HashMap<&str, &JournalEntry> =
        unsettled.iter().map(|e| (e.guid.as_str(), e)).collect();
    let mut records = records;
    outcome_unknown(&mut records, &unsettled_by_guid);
    let by_guid: HashMap<EntryGuid, Record> = records
        .iter()
        .map(|r| (r.guid.clone(), r.clone()))
        .collect();
    let plan = match entry {
        Some(Ok(entry)) => {
            let item = Fingerprinted {
                fingerprint: entry_fingerprint(&fingerprint, &entry),
                entry,
            };
            let candidate = map_candidate(item, channel, &settings, &by_guid);
            plan_users(
                vec![candidate],
                Vec::new(),
                &by_guid,
                &connection.options,
                0,
            )
        }
        Some(Err(reason)) => {
            let candidate = Candidate {
                guid: EntryGuid::of_dn(&wanted),
                dn: dn.to_owned(),
                fingerprint: String::new(),
                mapped: Err(reason),
            };
            plan_users(
                vec![candidate],
                Vec::new(),
                &by_guid,
                &connection.options,
                0,
            )
        }
        // Gone from the channel's scope: a leaver.
        None => match records.into_iter().next() {
            Some(record) => plan_users(
                Vec::new(),
                vec![record],
                &HashMap::new(),
                &connection.options,
                0,
            ),
            None => return Ok(None),
        },
    };
    let mut plan = plan;
    refuse_shared_user_names(&mut plan, &heads);
    // The entries in scope at their last cycle: their target users are never deprovisioned
    // for another entry.
    let seen: GuidSet = heads
        .iter()
        .filter(|r| r.source_fingerprint.is_some())
        .map(|r| &r.guid)
        .collect();
    protect_shared_targets(&mut plan, &heads, &seen);
    let Some(mut operation) = plan.operations.into_iter().next() else {
        return Ok(None);
    };
    if let Some(entry) = unsettled_by_guid.get(operation.guid.as_str()) {
        operation.resumed_cycle = Some(entry.cycle_id);
    }
    if dry_run {
        return Ok(Some(OneUser {
            operation,
            applied: None,
            target_down: false,
        }));
    }
    let existing = by_guid.get(&operation.guid);
    // No group stage follows: the user's groups are read whole at the next cycle. The groups
    // a new user is a member of are not recorded (a group record lists the members in the
    // target), and no later read may name the user again: every group is read whole; so for a
    // user coming back into scope (it left its groups when it left).
    let returning = existing
        .is_some_and(|r| r.source_fingerprint.is_none() || r.status == RecordStatus::Deleted);
    match operation.operation {
        Operation::Create { .. } => forget_group_versions(store, &key, None).await?,
        Operation::Disable { .. } | Operation::Delete { .. } => {
            let user = std::slice::from_ref(&operation.guid);
            forget_group_versions(store, &key, Some(user)).await?;
        }
        Operation::Update { .. } if returning => {
            forget_group_versions(store, &key, None).await?;
        }
        _ => {}
    }
    let client = ScimClient::new(&connection.target, Duration::from_secs(channel.timeout))?;
    let writes = operation.operation.writes_target();
    if let Some(kind) = operation.operation.kind() {
        let entry = JournalEntry {
            guid: operation.guid.clone(),
            dn: operation.dn.clone(),
            label: operation.label().to_owned(),
            operation: kind,
            cycle_id: 0,
            sent_at_ms: clock.now_ms(),
        };
        store.journal_operations(&key, &[entry]).await?;
    }
    let owners = Owners::from_records(&heads);
    let mut applied =
        apply_operation(&client, &operation, existing, &connection.options, &owners).await;
    if let Some(record) = &mut applied.record {
        schedule_retry(record, clock.now_ms());
    }
    if let Some(failure) = applied.target_failure
        && let Err(e) = client.probe().await
        && e.target_unavailable()
        && (e.status() != Some(403) || failure.forbidden)
    {
        // The target is down: the record keeps what it had, and its journal entry stays when
        // the target may have acted.
        if !failure.outcome_unknown && writes && operation.resumed_cycle.is_none() {
            store
                .close_journal_entries(&key, std::slice::from_ref(&operation.guid))
                .await?;
        }
        let reason = format!(
            "target unreachable: {}; nothing was counted against the record",
            CheckFailure::from(e)
        );
        return Ok(Some(OneUser {
            operation,
            applied: Some(Applied {
                record: existing.cloned(),
                outcome: Outcome::Failed(reason),
                target_failure: Some(failure),
                took_over: None,
                unchecked_claim: None,
            }),
            target_down: true,
        }));
    }
    save_user_record(store, &key, &operation, existing, &applied).await?;
    if writes {
        store
            .close_journal_entries(&key, std::slice::from_ref(&operation.guid))
            .await?;
    }
    let audit = AuditContext {
        channel: &key,
        cycle_id: 0,
        clock,
    };
    let events: Vec<_> = audit
        .user(&operation, &applied, existing)
        .into_iter()
        .collect();
    store.record_audit_events(&events).await?;
    Ok(Some(OneUser {
        operation,
        applied: Some(applied),
        target_down: false,
    }))
}
