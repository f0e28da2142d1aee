//! The types the roles speak in that the model does not already define.

use scimbridge_model::{ChannelKey, CycleSummary, EntryGuid, EpochMs, GroupMember, TargetId};
use serde::{Deserialize, Serialize};

/// What saving a named configuration object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
    Unchanged,
}

impl Saved {
    /// What saving `new` where `stored` is (if anything) does.
    pub fn compare<T: PartialEq>(stored: Option<&T>, new: &T) -> Saved {
        match stored {
            None => Saved::Created,
            Some(stored) if stored == new => Saved::Unchanged,
            Some(_) => Saved::Updated,
        }
    }
}

/// One cycle of one channel, as kept in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    pub id: i64,
    pub channel: ChannelKey,
    pub started_at_ms: EpochMs,
    pub finished_at_ms: Option<EpochMs>,
    pub summary: CycleSummary,
    /// Set when the cycle stopped early (for example the data store could not be read).
    pub error: Option<String>,
}

/// The administrator account of the admin API and console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAccount {
    pub username: String,
    /// Argon2id, in the PHC string format.
    pub password_hash: String,
}

/// An API token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    pub created_at_ms: EpochMs,
}

/// Record counts of one channel, for `scimbridge channels` and for cycles that read the
/// records they need by key rather than all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordCounts {
    /// Records whose user is in the target (provisioned or disabled).
    pub users: u64,
    pub failed: u64,
    pub blocked: u64,
    /// Records whose user is in the target and not disabled: the population the mass-change
    /// guard's shares are taken of.
    pub active: u64,
    /// Records of entries in the source location that did not fail (they have a source
    /// fingerprint): what an incremental read that does not return them counts as unchanged.
    pub settled_in_source: u64,
}

/// Which records [`crate::RecordStore::record_heads_with`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKey<'a> {
    /// The records of these GUIDs.
    Guids(&'a [EntryGuid]),
    /// The records with one of these user names, compared without regard to case.
    UserNames(&'a [String]),
    /// The records linked to one of these target users.
    TargetIds(&'a [TargetId]),
    /// The records of entries at one of these DNs (compared normalised, as
    /// [`scimbridge_model::normalize_dn`] does).
    Dns(&'a [String]),
    /// The failed records.
    Failed,
}

/// Which group records [`crate::RecordStore::group_records_with`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKey<'a> {
    /// The groups of these GUIDs.
    Guids(&'a [EntryGuid]),
    /// The groups one of these users (by GUID) is a member of.
    Members(&'a [EntryGuid]),
}

/// How a group's members change, for [`crate::RecordStore::save_group_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberChange<'a> {
    /// Members now in the target group (a member of the same GUID is replaced).
    pub added: &'a [GroupMember],
    /// GUIDs of members no longer in it (a GUID also added stays, as added).
    pub removed: &'a [EntryGuid],
}
