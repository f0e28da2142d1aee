//! What the state store knows of each source entry, and of each cycle.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{EntryGuid, EpochMs, TargetId};
use crate::source::ChangeDetection;
use crate::words::words;

/// Identifies a channel: connection name plus channel name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelKey {
    pub connection: String,
    pub channel: String,
}

impl ChannelKey {
    pub fn new(connection: impl Into<String>, channel: impl Into<String>) -> ChannelKey {
        ChannelKey {
            connection: connection.into(),
            channel: channel.into(),
        }
    }
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.connection, self.channel)
    }
}

words! {
    /// Where a record stands with the target.
    pub enum RecordStatus {
        /// In the target and active.
        Provisioned = "provisioned",
        /// In the target with `active: false`.
        Disabled = "disabled",
        /// Deleted from the target while the entry stays in the directory (disabled there).
        Deleted = "deleted",
        /// Deliberately not in the target: disabled in the source and provision disabled users
        /// is off.
        Skipped = "skipped",
        /// A needed action is switched off by a provisioning option; the reason says which.
        Blocked = "blocked",
        /// The last attempt failed; retried next cycle.
        Failed = "failed",
    }
}

words! {
    /// What an operation that writes to the target does: the kind of a journaled operation
    /// (users only) and of a held one, whose approval covers that kind only.
    pub enum OperationKind {
        Create = "create",
        Update = "update",
        Disable = "disable",
        Delete = "delete",
        CreateGroup = "create group",
        UpdateGroup = "update group",
        DeleteGroup = "delete group",
    }
}

words! {
    /// The type of an audit event: what happened to a user or a group.
    pub enum AuditEventType {
        UserCreate = "user-create",
        /// An existing target user found by the unique user identifier and linked.
        UserLink = "user-link",
        UserUpdate = "user-update",
        UserDisable = "user-disable",
        UserDelete = "user-delete",
        UserBlocked = "user-blocked",
        UserSkipped = "user-skipped",
        /// The entry cannot be provisioned (a mapping failed, a user name is taken).
        UserFail = "user-fail",
        /// Held by the mass-change guard.
        UserHeld = "user-held",
        /// An interrupted cycle's operation that this cycle could not settle.
        UserUnsettled = "user-unsettled",
        GroupCreate = "group-create",
        GroupLink = "group-link",
        GroupUpdate = "group-update",
        GroupDelete = "group-delete",
        GroupFailed = "group-failed",
        GroupHeld = "group-held",
    }
}

/// The state of one source entry in one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub guid: EntryGuid,
    pub dn: String,
    pub user_name: Option<String>,
    /// The target's `id` for this user, once created or linked.
    pub target_id: Option<TargetId>,
    /// Fingerprint of the entry and the channel settings when the record was last settled;
    /// `None` once the entry left the directory.
    pub source_fingerprint: Option<String>,
    /// The SCIM image last written to the target.
    pub applied_image: Option<serde_json::Value>,
    /// The target's version (ETag) of the user after our last write, for `If-Match`.
    #[serde(default)]
    pub target_version: Option<String>,
    pub status: RecordStatus,
    /// Why the last attempt failed, or which option blocks the needed action.
    pub last_error: Option<String>,
    /// Consecutive failed attempts.
    pub attempts: u32,
    /// A failed record is not tried again before this time; `None`: at the next cycle.
    #[serde(default)]
    pub retry_after_ms: Option<EpochMs>,
    /// The entry's fingerprint when the last attempt failed: an entry changed since is tried
    /// again at once, whatever the backoff says.
    #[serde(default)]
    pub failed_fingerprint: Option<String>,
}

impl Record {
    /// A user who left the source location and was disabled in the target: its account may pass
    /// to a new entry with the same user name (a rehire), which then owns it.
    pub fn left_and_disabled(&self) -> bool {
        self.status == RecordStatus::Disabled && self.source_fingerprint.is_none()
    }

    /// Whether a failed record is tried again in a cycle at `now` with the entry at
    /// `fingerprint` (`None`: the entry left the directory).
    pub fn retry_due(&self, fingerprint: Option<&str>, now: EpochMs) -> bool {
        self.retry_after_ms.is_none_or(|after| after <= now)
            || self.failed_fingerprint.as_deref() != fingerprint
    }
}

/// How long a record that failed `attempts` times in a row waits before its next attempt: the
/// first retry comes with the next cycle (most failures are passing ones), then 1, 2, 4 … minutes,
/// at most an hour, so that a record the target keeps refusing costs one request an hour.
pub fn retry_backoff_ms(attempts: u32) -> Option<i64> {
    const MINUTE_MS: i64 = 60_000;
    const MAX_MS: i64 = 60 * MINUTE_MS;
    match attempts {
        0 | 1 => None,
        n => Some((MINUTE_MS << (n - 2).min(6)).min(MAX_MS)),
    }
}

/// An operation sent to the target and not yet settled in the state store. A crash leaves it
/// behind; the next cycle knows the operation's outcome is unknown and checks the target
/// before sending it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub guid: EntryGuid,
    pub dn: String,
    /// The user name, else the DN.
    pub label: String,
    /// `create`, `update`, `disable` or `delete`.
    pub operation: OperationKind,
    pub cycle_id: i64,
    pub sent_at_ms: EpochMs,
}

/// Counts of one cycle of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CycleSummary {
    pub created: u64,
    /// Existing target users found by the unique user identifier and linked (then updated).
    pub linked: u64,
    pub updated: u64,
    pub disabled: u64,
    pub deleted: u64,
    pub failed: u64,
    pub blocked: u64,
    pub skipped: u64,
    pub unchanged: u64,
    pub groups_created: u64,
    /// Groups found by `displayName` and linked.
    pub groups_linked: u64,
    pub groups_updated: u64,
    pub groups_deleted: u64,
    pub groups_failed: u64,
    /// Requests sent to the target.
    pub requests: u64,
    /// Operations held by the mass-change guard.
    pub held: u64,
    /// Failed records left for a later cycle by their retry backoff.
    pub waiting_retry: u64,
    /// The cycle found the target down and stopped there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub target_unreachable: bool,
}

impl CycleSummary {
    pub fn add(&mut self, other: &CycleSummary) {
        self.created += other.created;
        self.linked += other.linked;
        self.updated += other.updated;
        self.disabled += other.disabled;
        self.deleted += other.deleted;
        self.failed += other.failed;
        self.blocked += other.blocked;
        self.skipped += other.skipped;
        self.unchanged += other.unchanged;
        self.groups_created += other.groups_created;
        self.groups_linked += other.groups_linked;
        self.groups_updated += other.groups_updated;
        self.groups_deleted += other.groups_deleted;
        self.groups_failed += other.groups_failed;
        self.requests += other.requests;
        self.held += other.held;
        self.waiting_retry += other.waiting_retry;
        self.target_unreachable |= other.target_unreachable;
    }

    /// Whether any group was touched.
    pub fn has_group_changes(&self) -> bool {
        self.groups_created
            + self.groups_linked
            + self.groups_updated
            + self.groups_deleted
            + self.groups_failed
            > 0
    }
}

/// Where a channel's last incremental read of its data store stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// The change detection the cursor belongs to.
    pub mechanism: ChangeDetection,
    /// An RFC 4533 cookie (base64), a timestamp or a USN.
    pub cursor: String,
    /// The channel settings the cursor was taken under; other settings need a full read.
    pub settings_fingerprint: String,
    /// When the last full read was.
    pub last_full_read_ms: EpochMs,
    /// When the GUIDs in scope were last compared with the known users (a full read or a
    /// sweep for deletes); 0: never.
    #[serde(default)]
    pub last_sweep_ms: EpochMs,
}

/// An operation the mass-change guard held: shown by `scimbridge held`, applied once approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOperation {
    pub guid: EntryGuid,
    /// The user name, else the DN.
    pub label: String,
    /// A user's `update` (clearing values), `disable` or `delete`, a group's `update group`
    /// (removing members) or `delete group`.
    pub operation: OperationKind,
    pub reason: String,
    pub held_at_ms: EpochMs,
    /// Approved by an operator: the next cycle applies it.
    pub approved: bool,
}

/// One provisioning event, with the fields of PingFederate's provisioner audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub time_ms: EpochMs,
    pub cycle_id: i64,
    pub connection: String,
    pub channel: String,
    pub event_type: AuditEventType,
    /// The entry's GUID in the data store.
    pub source_id: EntryGuid,
    pub dn: String,
    /// The user name or group display name, when known.
    pub name: Option<String>,
    pub target_id: Option<TargetId>,
    pub success: bool,
    /// Why it was done (the plan's reason), or why it failed.
    pub cause: String,
}
