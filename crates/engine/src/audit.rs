//! The audit trail: one event per provisioning action of a cycle, with PingFederate's
//! provisioner audit fields, built from the plan and what applying it gave.

use scimbridge_model::{
    AuditEvent, AuditEventType, ChannelKey, EntryGuid, GroupOperation, GroupRecord, JournalEntry,
    Operation, PlannedGroupOperation, PlannedOperation, Record, TargetId,
};

use crate::apply::groups::{AppliedGroup, GroupOutcome};
use crate::apply::{Applied, Outcome};
use crate::clock::Clock;

/// What an event is about.
struct Subject<'a> {
    event_type: AuditEventType,
    /// The entry GUID.
    source_id: &'a EntryGuid,
    dn: &'a str,
    name: Option<String>,
    target_id: Option<TargetId>,
}

/// What every event of one cycle shares.
pub struct AuditContext<'a> {
    pub channel: &'a ChannelKey,
    pub cycle_id: i64,
    pub clock: &'a dyn Clock,
}

impl AuditContext<'_> {
    fn event(&self, subject: Subject<'_>, success: bool, cause: String) -> AuditEvent {
        let Subject {
            event_type,
            source_id,
            dn,
            name,
            target_id,
        } = subject;
        AuditEvent {
            time_ms: self.clock.now_ms(),
            cycle_id: self.cycle_id,
            connection: self.channel.connection.clone(),
            channel: self.channel.channel.clone(),
            event_type,
            source_id: source_id.clone(),
            dn: dn.to_owned(),
            name,
            target_id,
            success,
            cause,
        }
    }

    /// An operation an interrupted cycle sent, whose outcome stays unknown: this cycle planned
    /// nothing that would settle it.
    pub fn unsettled(&self, entry: &JournalEntry) -> AuditEvent {
        self.event(
            Subject {
                event_type: AuditEventType::UserUnsettled,
                source_id: &entry.guid,
                dn: &entry.dn,
                name: Some(entry.label.clone()),
                target_id: None,
            },
            false,
            format!(
                "the {} sent in cycle {} was interrupted before its answer was recorded, and \
                 this cycle had nothing to send for the user; check the user in the target",
                entry.operation, entry.cycle_id
            ),
        )
    }

    /// The event of a user operation; `None` when nothing happened worth auditing (the target
    /// already matched, or a record of a gone entry was dropped).
    pub fn user(
        &self,
        op: &PlannedOperation,
        applied: &Applied,
        existing: Option<&Record>,
    ) -> Option<AuditEvent> {
        use AuditEventType as Type;
        let (event_type, success, cause) = match &applied.outcome {
            Outcome::Created => (Type::UserCreate, true, op.reason.clone()),
            Outcome::Linked => (Type::UserLink, true, op.reason.clone()),
            Outcome::Updated => (Type::UserUpdate, true, op.reason.clone()),
            Outcome::Disabled => (Type::UserDisable, true, op.reason.clone()),
            Outcome::Deleted => (Type::UserDelete, true, op.reason.clone()),
            Outcome::Blocked => (Type::UserBlocked, false, op.reason.clone()),
            Outcome::Skipped => (Type::UserSkipped, true, op.reason.clone()),
            Outcome::Failed(reason) => (failed_user(&op.operation), false, reason.clone()),
            Outcome::Unchanged | Outcome::Forgotten => return None,
        };
        let target_id = applied
            .record
            .as_ref()
            .and_then(|r| r.target_id.clone())
            .or_else(|| existing.and_then(|r| r.target_id.clone()));
        Some(self.event(
            Subject {
                event_type,
                source_id: &op.guid,
                dn: &op.dn,
                name: op.user_name.clone(),
                target_id,
            },
            success,
            cause,
        ))
    }

    /// The event of an operation the mass-change guard held.
    pub fn held(&self, op: &PlannedOperation, existing: Option<&Record>) -> AuditEvent {
        self.event(
            Subject {
                event_type: AuditEventType::UserHeld,
                source_id: &op.guid,
                dn: &op.dn,
                name: op.user_name.clone(),
                target_id: existing.and_then(|r| r.target_id.clone()),
            },
            false,
            op.reason.clone(),
        )
    }

    /// The event of a group operation the mass-change guard held.
    pub fn held_group(&self, op: &PlannedGroupOperation) -> AuditEvent {
        let target_id = match &op.operation {
            GroupOperation::Update { target_id, .. } | GroupOperation::Delete { target_id } => {
                Some(target_id.clone())
            }
            _ => None,
        };
        self.event(
            Subject {
                event_type: AuditEventType::GroupHeld,
                source_id: &op.guid,
                dn: &op.dn,
                name: Some(op.display_name.clone()),
                target_id,
            },
            false,
            op.reason.clone(),
        )
    }

    /// The event of a group operation; `None` when a record of a gone group was dropped.
    pub fn group(
        &self,
        op: &PlannedGroupOperation,
        applied: &AppliedGroup,
        existing: Option<&GroupRecord>,
    ) -> Option<AuditEvent> {
        use AuditEventType as Type;
        let (event_type, success, cause) = match &applied.outcome {
            GroupOutcome::Created => (Type::GroupCreate, true, op.reason.clone()),
            GroupOutcome::Linked => (Type::GroupLink, true, op.reason.clone()),
            GroupOutcome::Updated => (Type::GroupUpdate, true, op.reason.clone()),
            GroupOutcome::Deleted => (Type::GroupDelete, true, op.reason.clone()),
            GroupOutcome::Failed(reason) => (Type::GroupFailed, false, reason.clone()),
            GroupOutcome::Forgotten => return None,
        };
        let target_id = applied
            .record
            .as_ref()
            .and_then(|r| r.target_id.clone())
            .or_else(|| existing.and_then(|r| r.target_id.clone()));
        Some(self.event(
            Subject {
                event_type,
                source_id: &op.guid,
                dn: &op.dn,
                name: Some(op.display_name.clone()),
                target_id,
            },
            success,
            cause,
        ))
    }
}

/// The event type of a user operation that failed: named after what was attempted.
fn failed_user(operation: &Operation) -> AuditEventType {
    match operation {
        Operation::Create { .. } => AuditEventType::UserCreate,
        Operation::Update { .. } => AuditEventType::UserUpdate,
        Operation::Disable { .. } => AuditEventType::UserDisable,
        Operation::Delete { .. } => AuditEventType::UserDelete,
        // Only writes and mapping failures fail; anything else is the entry's own failure.
        _ => AuditEventType::UserFail,
    }
}
